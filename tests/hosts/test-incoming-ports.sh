#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Eight TCG guests evacuated from a to b at once (parallel 8): their
# Prepares on b run in the same moment. b's vmigrated gave each the first
# port of the range that bind() found free, but a QEMU binds its port
# only when it answers migrate-incoming: two Prepares at once got the same
# port, and the second QEMU failed ("Illegal migration incoming state:
# setup": after its failed bind QEMU takes no second migrate-incoming).
# Without the fix this test failed in 2 runs of 3.
# Every guest arrives and verifies every page; nothing is left listening.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

HOSTS_DAEMON_ARGS="--max-outgoing-migrations=8 --max-incoming-migrations=8"
mig_setup --qemu a b
guest_print_accel tcg "eight guests at once"
mig_require_tcg_precopy

EVAC_IFACE=org.vmigrate.Migrate1.Evacuation
names=(p1 p2 p3 p4 p5 p6 p7 p8)
declare -A uuid path
for n in "${names[@]}"; do
        path[$n]=$(mig_define a "$(guest_domain_xml "$n" qemu 'vmtest.mem=16M vmtest.rate=0' 64)") &&
                mig_dom a "${path[$n]}" Start >/dev/null
        ok $? "guest $n runs on a"
        uuid[$n]=$(mig_uuid a "${path[$n]}")
done
for n in "${names[@]}"; do
        ok "mig_guest a ${uuid[$n]} wait-heartbeat >/dev/null" "guest $n sends heartbeats"
done

out=$(mig_bus a call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Evacuate 'asa{sv}' 1 \
        "$(mig_dest b)" 1 parallel u 8 2>&1)
like "$out" '^o "/org/vmigrate/Migrate1/evacuation/[0-9]+"$' "Evacuate a to b, eight at once" ||
        bail_out "no evacuation: $out"
ev=$(vm_reply_path "$out")
ok "wait_until 120 eval '[ \"\$(mig_prop a $ev $EVAC_IFACE State)\" != running ]'" "the evacuation ends"
ok "! grep -q 'Illegal migration incoming state' '$(host_path b log)'" "no QEMU on b was asked for a second migrate-incoming"
is "$(mig_prop a "$ev" "$EVAC_IFACE" Done)" 8 "Done 8: every guest moved" ||
        bail_out "$(mig_bus a get-property "$VM_BUS_NAME" "$ev" "$EVAC_IFACE" Results | head -c 800)"
is "$(mig_prop a "$ev" "$EVAC_IFACE" State)" completed "State completed"
for n in "${names[@]}"; do
        is "$(mig_state b "${path[$n]}")" running/migrated "guest $n is running/migrated on b"
        like "$(mig_guest b "${uuid[$n]}" verify)" '^VERIFY OK ' "... and every page verifies"
done
ok "wait_until 30 eval '[ -z \"\$(mig_running_jobs a)\$(mig_running_jobs b)\" ]'" "no job still running"
is "$(mig_listening_ports b | tr '\n' ' ')" "" "no migration port left listening on b"

hosts_finish
