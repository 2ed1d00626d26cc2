#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The qemu backend on the real bus: a QEMU that dies under a running guest
# (kill -9) is a crash: persistent domains say so and can be started again,
# transient ones disappear; nothing is left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-qemu.sh"

vmq_setup
guest_print_accel "$VMQ_TYPE" "idle guests; $VMQ_ACCEL_WHY"

monitor=$VM_TMP/monitor.json
vm_monitor_start "$monitor"

# --- a persistent domain
dom=$(vmq_define "$(vmq_domain_xml crashy "$VMQ_TYPE" "vmtest.mem=256K vmtest.rate=0")")
ok $? "DefineXML crashy" || bail_out "cannot define the guest"
uuid=$(vmq_prop "$dom" UUID)
dpid=$(vm_daemon_pid)
fds_before=$(vmq_fd_count "$dpid")

vmq_dom "$dom" Start >/dev/null
ok $? "Start crashy"
qpid=$(vmq_pid "$uuid")
ok $? "its QEMU runs as pid $qpid"
out=$(vmq_ctl "$uuid" wait-heartbeat)
ok $? "the guest runs (heartbeat)" || diag "  $out"

kill -KILL "$qpid"
ok $? "kill -9 QEMU pid $qpid"
ok 'vmq_wait_event "$monitor" "$dom" stopped/crashed' "Lifecycle stopped/crashed"
is "$(vmq_prop "$dom" State)" crashed "State crashed"
reason=$(vmq_reason "$dom")
like "$reason" '^crashed: QEMU was killed by signal 9 \(Killed\)' "StateReason says QEMU was killed by signal 9"
diag "StateReason: $reason"
is "$(vmq_prop "$dom" Active)" false "Active is false"
is "$(vmq_prop "$dom" Persistent)" true "it is still defined"
ok '[ -z "$(vm_lifecycle_events "$monitor" "$dom" | grep -v -x -e defined/added -e started/booted -e stopped/crashed)" ]' \
        "no other Lifecycle signal than defined, started and crashed"
vmq_check_stopped "after the crash" "$uuid" "$dpid" "$fds_before"
ok 'grep -q -E "crashy.*(crash|killed by signal 9)" "$VM_TMP/daemon.log"' "the daemon logged the crash"

vmq_dom "$dom" Start >/dev/null
ok $? "a crashed domain can be started again"
is "$(vmq_state "$dom")" running/booted "running/booted"
qpid2=$(vmq_pid "$uuid")
out=$(vmq_ctl "$uuid" verify)
ok $? "the new guest verifies OK" || diag "  $out"
vmq_dom "$dom" Destroy >/dev/null
ok $? "Destroy it"
is "$(vmq_state "$dom")" shutoff/destroyed "shutoff/destroyed (not crashed)"
ok 'vmq_wait_gone "$qpid2"' "its QEMU is gone"
vmq_check_stopped "after Destroy" "$uuid" "$dpid" "$fds_before"

# --- a crash of a paused guest is a crash too
vmq_dom "$dom" Start >/dev/null && vmq_dom "$dom" Suspend >/dev/null
ok $? "Start and Suspend crashy"
is "$(vmq_state "$dom")" paused/user "paused/user"
qpid3=$(vmq_pid "$uuid")
kill -KILL "$qpid3"
_two_crashes() {
        [ "$(vmq_event_count "$monitor" "$dom" stopped/crashed)" -eq 2 ]
}
ok 'wait_until 15 _two_crashes' "killing the QEMU of the paused guest: Lifecycle stopped/crashed"
is "$(vmq_prop "$dom" State)" crashed "State crashed"
like "$(vmq_reason "$dom")" 'signal 9' "StateReason names signal 9"
vmq_check_stopped "after the paused guest's crash" "$uuid" "$dpid" "$fds_before"

# --- a transient domain disappears when its QEMU crashes
tdom=$(vmq_create "$(vmq_domain_xml fleeting "$VMQ_TYPE" "vmtest.mem=256K vmtest.rate=0")")
ok $? "CreateXML fleeting (transient, started)" || bail_out "cannot create the transient guest"
tuuid=$(vmq_prop "$tdom" UUID)
is "$(vmq_state "$tdom")" running/booted "it runs"
is "$(vmq_prop "$tdom" Persistent)" false "it is transient"
ok 'vmq_wait_event "$monitor" "$tdom" started/booted' "Lifecycle started/booted"
out=$(vmq_ctl "$tuuid" wait-heartbeat)
ok $? "the transient guest runs (heartbeat)" || diag "  $out"
tpid=$(vmq_pid "$tuuid")
kill -KILL "$tpid"
ok $? "kill -9 its QEMU (pid $tpid)"
ok 'vmq_wait_event "$monitor" "$tdom" stopped/crashed' "Lifecycle stopped/crashed"
_removed() {
        grep -F '"member":"InterfacesRemoved"' "$monitor" | grep -q -F "\"$tdom\""
}
ok 'wait_until 15 _removed' "InterfacesRemoved announces that the transient domain is gone"
vm_expect_error root "GetDomain fleeting: NoSuchDomain" "$VM_ERROR.NoSuchDomain" 'fleeting' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s fleeting
domains=$(vm_mgr ListDomains)
unlike "$domains" "$(vm_path_encode "$tuuid")" "ListDomains no longer lists it"
vmq_check_stopped "after the transient crash" "$tuuid" "$dpid" "$fds_before"

# --- the daemon is fine
is "$(vm_daemon_pid)" "$dpid" "the same daemon still answers"
vmq_no_qemu_left "no QEMU of this test is left running"

vm_finish
