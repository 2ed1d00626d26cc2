#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2154 # mon_a is set by mig_monitors (lib-migrate.sh)
# Manager.Evacuate between three test hosts. Host a runs six TCG test
# guests (two of them writing) and one test-backend domain that requires
# an admin hook neither destination has; host c "has" 150 MiB of memory
# (its /proc/meminfo says so, in its own mount namespace), too little for
# the 160 MiB guest. a is evacuated to c and b with option maintenance:
# every guest arrives and verifies every page, the big one on b, both
# destinations take some, never more than two migrations at once (from
# the job history's times), the hook-bound domain is reported with both
# hosts' reasons and stays, and a is then in maintenance (an arrival and
# a start refused with HostInMaintenance, also after a restart). Then b
# is evacuated back, one at a time over a slow link, and cancelled in the
# middle: every guest runs on exactly one host, in one QEMU, and
# verifies.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup --qemu a b c
guest_print_accel tcg "writing guests: nested KVM crawls on memory writes"
mig_require_tcg_precopy
mig_monitors a b

EVAC_IFACE=org.vmigrate.Migrate1.Evacuation

# c's memory as its vmigrated reads it.
printf 'MemTotal:        4194304 kB\nMemFree:          153600 kB\nMemAvailable:     153600 kB\n' \
        >"$HOSTS_RUN/meminfo-c"
host_exec c mount --bind "$HOSTS_RUN/meminfo-c" /proc/meminfo
ok $? "host c has 150 MiB of memory available (its /proc/meminfo): one 64 MiB guest arriving at a time"

names=(g1 g2 g3 g4 g5 big)
declare -A uuid path
for n in "${names[@]}"; do
        mem=64 cmd='vmtest.mem=16M vmtest.rate=0'
        case $n in
        g1 | g4) cmd='vmtest.mem=16M vmtest.ws=8M vmtest.rate=2000' ;;
        big) mem=160 ;;
        esac
        path[$n]=$(mig_define a "$(guest_domain_xml "$n" qemu "$cmd" "$mem")") &&
                mig_dom a "${path[$n]}" Start >/dev/null
        ok $? "guest $n (${mem} MiB) runs on a"
        uuid[$n]=$(mig_uuid a "${path[$n]}")
done
stuck=$(mig_define a '<domain type="test"><name>stuck</name><memory unit="MiB">64</memory><vcpu>1</vcpu>
  <metadata><vmigrate:migration xmlns:vmigrate="https://vmigrate.org/xmlns/migration/1">
    <vmigrate:require hook="san-attach"/></vmigrate:migration></metadata></domain>') &&
        mig_dom a "$stuck" Start >/dev/null
ok $? "domain 'stuck' (needs hook san-attach) runs on a"
for n in g1 g4; do
        ok "mig_guest a ${uuid[$n]} wait-heartbeat >/dev/null" "guest $n sends heartbeats"
done

# evac_prop HOST PATH PROP
evac_prop() {
        mig_prop "$1" "$2" "$EVAC_IFACE" "$3"
}
# evac_results HOST PATH: "name state destination" per domain, then the
# message of the not-placed ones as "name: message".
evac_results() {
        mig_bus "$1" --json=short get-property "$VM_BUS_NAME" "$2" "$EVAC_IFACE" Results | $MIG_PY -c '
import json, sys
for r in json.load(sys.stdin)["data"]:
    print(r["domain"]["data"], r["state"]["data"], r["destination"]["data"] or "-", r["message"]["data"])'
}

# --- evacuate a to c and b
out=$(mig_bus a call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Evacuate 'asa{sv}' 2 \
        "$(mig_dest c)" "$(mig_dest b)" 2 maintenance b true parallel u 2 2>&1)
like "$out" '^o "/org/vmigrate/Migrate1/evacuation/[0-9]+"$' "Evacuate answers with an evacuation object" ||
        bail_out "no evacuation: $out"
ev=$(vm_reply_path "$out")
is "$(mig_prop a "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" true "option maintenance: a is in maintenance at once"
is "$(evac_prop a "$ev" Total)" 7 "Total: the seven running domains"
ok "wait_until 240 eval '[ \"\$(evac_prop a $ev State)\" != running ]'" "the evacuation ends"
is "$(evac_prop a "$ev" State)" failed "State failed: one domain could not go"
is "$(evac_prop a "$ev" Done) $(evac_prop a "$ev" Failed) $(evac_prop a "$ev" Remaining)" "6 1 0" \
        "Done 6, Failed 1, Remaining 0"
is "$(evac_prop a "$ev" Progress)" 1 "Progress 1"
results=$(evac_results a "$ev")
diag "$results"
# Two placed at once may both pass c's check; c's Prepare then refuses
# the second (the first is arriving) and it goes to b: said in the log.
diag "retried elsewhere: $(grep -c 'trying the next destination' "$(host_path a log)")"
like "$(grep '^stuck ' <<<"$results")" '^stuck not-placed - .*host-c.*san-attach.*host-b.*san-attach|^stuck not-placed - .*host-b.*san-attach.*host-c.*san-attach' \
        "'stuck' is not placed, with both hosts' reasons (the missing hook)"
like "$(grep '^big ' <<<"$results")" "^big completed unix://.*/b/" "the 160 MiB guest went to b (c has too little memory)"
to_b=$(grep -c "completed unix://.*/b/" <<<"$results")
to_c=$(grep -c "completed unix://.*/c/" <<<"$results")
ok "[ $to_b -ge 1 ] && [ $to_c -ge 1 ]" "both destinations took guests (b $to_b, c $to_c)"
jobs=$(mig_bus a --json=short get-property "$VM_BUS_NAME" "$ev" "$EVAC_IFACE" Jobs |
        $MIG_PY -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
is "$jobs" 6 "Jobs lists the six migrations"
ok "wait_until 10 eval 'vm_signals $mon_a Finished $ev | grep -q failed'" "Finished(failed, ...) was signalled"

# where HOST...: the hosts where the guest runs a QEMU
where() {
        local n=$1 h out=
        for h in a b c; do
                [ -n "$(mig_qemu_pids "$h" "${uuid[$n]}")" ] && out+="$h"
        done
        echo "$out"
}
declare -A home
for n in "${names[@]}"; do
        home[$n]=$(where "$n")
        like "${home[$n]}" '^[bc]$' "guest $n runs in exactly one QEMU, on ${home[$n]:-no host}"
        is "$(mig_state "${home[$n]:-b}" "${path[$n]}")" running/migrated "... and is running/migrated there"
        like "$(mig_guest "${home[$n]:-b}" "${uuid[$n]}" verify)" '^VERIFY OK ' "... and every page verifies"
done
is "$(mig_state a "$stuck")" running/booted "'stuck' still runs on a"

# At most two at once: the job history's start and end times.
overlap=$(mig_bus a --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListJobHistory 'a{sv}' \
        1 kind s migration-out | $MIG_PY -c '
import json, sys
events = []
for j in json.load(sys.stdin)["data"][0]:
    events += [(j["started-at"]["data"], 1), (j["ended-at"]["data"], -1)]
n = top = 0
for _, d in sorted(events, key=lambda e: (e[0], e[1])):
    n += d
    top = max(top, n)
print(len(events) // 2, top)')
completed=$(mig_mgr a ListJobHistory 'a{sv}' 2 kind s migration-out result s completed | grep -o '"phase" s "completed"' | wc -l)
is "$completed" 6 "the job history has the six completed migrations (of ${overlap% *} started)"
ok "[ ${overlap#* } -le 2 ] && [ ${overlap#* } -ge 1 ]" "never more than two at once (at most ${overlap#* })"

# --- a in maintenance
n=g2
out=$(mig_migrate_gdbus "${home[$n]}" "${path[$n]}" "$(mig_dest a)")
like "$out" "GDBus.Error:$VM_ERR\\.HostInMaintenance: .*maintenance" "a migration to a is refused: HostInMaintenance"
is "$(where $n)" "${home[$n]}" "... and the guest stays where it was"
like "$(mig_dry_run "${home[$n]}" "${path[$n]}" "$(mig_dest a)" 0 | grep '^error host.maintenance ')" \
        '^error host.maintenance host-a: this host is in maintenance' "DryRun to a names the maintenance (host.maintenance)"
p=$(mig_define a "$(mig_test_xml later 64)")
out=$(host_exec a gdbus call --system --dest "$VM_BUS_NAME" --object-path "$p" --method "$VM_DOMAIN_IFACE.Start" 2>&1)
like "$out" "GDBus.Error:$VM_ERR\\.HostInMaintenance: host-a is in maintenance: starting domain 'later'" \
        "Start on a is refused: HostInMaintenance"
pid=$(host_daemon_pid a) && kill "$pid" && wait_until 20 eval "! kill -0 $pid 2>/dev/null"
ok $? "restart a's vmigrated"
is "$(mig_prop a "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" true "a is still in maintenance"
ok "mig_bus a call $VM_BUS_NAME $VM_MANAGER_PATH $VM_MANAGER_IFACE SetMaintenance b false" "a leaves maintenance"

# --- cancel in the middle: b back to a, one at a time, slowly
on_b=$(for n in "${names[@]}"; do [ "${home[$n]}" = b ] && echo "$n"; done | wc -l)
out=$(mig_bus b call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Evacuate 'asa{sv}' 1 \
        "$(mig_dest a)" 2 parallel u 1 bandwidth t 8000000 2>&1)
like "$out" '^o "/org/vmigrate/Migrate1/evacuation/[0-9]+"$' "evacuate b ($on_b guests) to a, one at a time at 8 MB/s"
ev=$(vm_reply_path "$out")
ok "wait_until 120 eval '[ \"\$(evac_prop b $ev Done)\" -ge 1 ]'" "one guest has arrived on a"
ok "wait_until 60 eval 'evac_results b $ev | grep -q \" migrating \"'" "another is on its way"
ok "mig_bus b call $VM_BUS_NAME $ev $EVAC_IFACE Cancel" "Cancel"
ok "wait_until 60 eval '[ \"\$(evac_prop b $ev State)\" = cancelled ]'" "the evacuation ends cancelled"
results=$(evac_results b "$ev")
diag "$results"
done_n=$(evac_prop b "$ev" Done)
ok "[ $done_n -ge 1 ] && [ $(evac_prop b "$ev" Remaining) -ge 1 ]" \
        "some moved ($done_n), the rest stayed ($(evac_prop b "$ev" Remaining))"
is "$(grep -c ' cancelled ' <<<"$results")" "$(evac_prop b "$ev" Remaining)" "the ones left are 'cancelled'"
for n in "${names[@]}"; do
        h=$(where "$n")
        like "$h" '^[abc]$' "after the cancel, guest $n runs in exactly one QEMU (on ${h:-no host})"
        like "$(mig_state "${h:-a}" "${path[$n]}")" '^running/' "... running there"
        like "$(mig_guest "${h:-a}" "${uuid[$n]}" verify)" '^VERIFY OK ' "... and every page verifies"
done
ok "wait_until 30 eval '[ -z \"\$(mig_running_jobs a)\$(mig_running_jobs b)\$(mig_running_jobs c)\" ]'" \
        "no job still running on any host"
is "$(mig_listening_ports a)$(mig_listening_ports b)$(mig_listening_ports c)" "" "no migration port left listening"

hosts_finish
