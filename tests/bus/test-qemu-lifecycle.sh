#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The qemu backend on the real bus: capabilities, and the whole lifecycle of
# the test guest (define, start, heartbeat, verify, suspend, resume,
# shutdown with a timeout, start, destroy), with nothing left behind after
# each stop.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-qemu.sh"

vmq_setup
guest_print_accel "$VMQ_TYPE" "idle guest; $VMQ_ACCEL_WHY"
ctl=$VMIGRATE_BUILD_ROOT/client/vmigratectl
[ -x "$ctl" ] || bail_out "$ctl not built"

# --- what the host offers
caps=$(vm_json_reply_string call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetCapabilities)
ok $? "GetCapabilities works"
printf '%s' "$caps" | xmllint --noout - 2>/dev/null
ok $? "the capabilities are well-formed XML"
qemu_version=$(qemu-system-x86_64 --version | sed -n -E '1s/.*version ([0-9]+\.[0-9]+\.[0-9]+).*/\1/p')
like "$caps" "<qemu [^>]*version='${qemu_version//./\\.}'" "capabilities name QEMU's version ($qemu_version)"
if [ -c /dev/kvm ] && { exec 8<>/dev/kvm; } 2>/dev/null; then
        exec 8>&-
        kvm=yes
else
        kvm=no
fi
like "$caps" "<kvm available='$kvm'" "capabilities say kvm available='$kvm', as /dev/kvm here"
like "$caps" "<machine( default='yes')?>pc</machine>" "the machine list includes pc"
like "$caps" "postcopy-ram" "the migration capabilities include postcopy-ram"

backends=$(busctl --no-pager --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetBackends |
        $VMQ_PY -c '
import json, sys
q = json.load(sys.stdin)["data"][0]["qemu"]
get = lambda k: q.get(k, {}).get("data")
print(get("available"), get("version"), " ".join(get("domain-types") or []),
      "defects=" + ("list" if isinstance(get("known-defects"), list) else "missing"))
')
ok $? "GetBackends works"
is "$backends" "True $qemu_version kvm qemu defects=list" \
        "GetBackends: qemu is available, with its version, domain types kvm and qemu, known-defects"

# --- define
monitor=$VM_TMP/monitor.json
vm_monitor_start "$monitor"
xml=$(vmq_domain_xml guest1 "$VMQ_TYPE" "vmtest.mem=256K vmtest.rate=0 vmtest.hb=200")
dom=$(vmq_define "$xml")
ok $? "DefineXML of a $VMQ_TYPE domain with the test guest" || bail_out "cannot define the guest"
uuid=$(vmq_prop "$dom" UUID)
is "$(vmq_prop "$dom" Backend)" qemu "its Backend is qemu"
is "$(vmq_state "$dom")" shutoff/unknown "it is shut off"
dpid=$(vm_daemon_pid)
fds_before=$(vmq_fd_count "$dpid")
diag "daemon pid $dpid has $fds_before fds open before the start"

# check_running DESC: the guest runs, as the runtime record says.
check_running() {
        local desc=$1 qpid
        qpid=$(vmq_pid "$uuid")
        ok $? "$desc: the runtime record has QEMU's pid ($qpid)"
        is "$(vmq_uuid_pids "$uuid")" "$qpid" "$desc: that is the one process with the guest's uuid"
        like "$(tr '\0' ' ' <"/proc/$qpid/cmdline")" "-accel $([ "$VMQ_TYPE" = kvm ] && echo kvm || echo tcg) " \
                "$desc: QEMU runs with the accelerator of domain type $VMQ_TYPE"
        is "$(awk '{print $4}' "/proc/$qpid/stat" 2>/dev/null)" "$dpid" "$desc: QEMU is the daemon's child"
        vmq_ctl "$uuid" wait-heartbeat >/dev/null
        ok $? "$desc: a heartbeat arrives on the serial socket"
        out=$(vmq_ctl "$uuid" verify)
        ok $? "$desc: the guest verifies its memory OK" || diag "  $out"
}

# --- start
SECONDS=0
vmq_dom "$dom" Start >/dev/null
ok $? "Start replies once the guest runs (${SECONDS}s)"
is "$(vmq_state "$dom")" running/booted "State running, StateReason booted"
is "$(vmq_prop "$dom" Active)" true "Active is true"
ok 'vmq_wait_event "$monitor" "$dom" started/booted' "Lifecycle started/booted"
rundir=$(vmq_rundir "$uuid")
for f in qmp.sock serial0.sock pid domain.xml reason; do
        ok '[ -e "$rundir/$f" ]' "the runtime directory has $f"
done
check_running "after Start"
qpid1=$(vmq_pid "$uuid")
ok 'vmq_wait_log "$(vmq_serial_log "$uuid")" "^VMTEST READY"' "the serial log has the guest's READY line"

# --- suspend: the guest stops, its heartbeats too
out=$("$ctl" suspend guest1 2>&1)
ok $? "vmigratectl suspend guest1" || diag "$out"
is "$(vmq_state "$dom")" paused/user "State paused, StateReason user"
ok 'vmq_wait_event "$monitor" "$dom" suspended/paused' "Lifecycle suspended/paused"
# Deliberately waits: a heartbeat every 200 ms would show within 2 s.
vmq_log_grows "$(vmq_serial_log "$uuid")" 2
ok '[ $? -ne 0 ]' "no heartbeat while paused: the serial log does not grow for 2 s"
is "$(vmq_pid "$uuid")" "$qpid1" "the same QEMU is still there"
vm_expect_error root "Suspend of a paused domain is refused" "$VM_ERROR.InvalidState" 'paused' \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Suspend

# --- resume
out=$("$ctl" resume guest1 2>&1)
ok $? "vmigratectl resume guest1" || diag "$out"
is "$(vmq_state "$dom")" running/unpaused "State running, StateReason unpaused"
ok 'vmq_wait_event "$monitor" "$dom" resumed/unpaused' "Lifecycle resumed/unpaused"
ok 'vmq_log_grows "$(vmq_serial_log "$uuid")" 10' "heartbeats again: the serial log grows"
out=$(vmq_ctl "$uuid" verify)
ok $? "after resume the guest verifies OK" || diag "  $out"

# --- shutdown with a timeout: the test guest ignores ACPI, so it is destroyed
vm_expect_error root "ShutdownWithTimeout(0) is refused" "$VM_ERROR.InvalidArgument" '.' \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" ShutdownWithTimeout t 0
vm_expect_error root "ShutdownWithTimeout(more than an hour) is refused" "$VM_ERROR.InvalidArgument" '.' \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" ShutdownWithTimeout t 3600001
is "$(vmq_state "$dom")" running/unpaused "refused shutdowns changed nothing"
SECONDS=0
vmq_dom "$dom" ShutdownWithTimeout t 1500 >/dev/null
rc=$?
took=$SECONDS
ok $rc "ShutdownWithTimeout(1500) succeeds though the guest ignores the power button"
ok '[ "$took" -ge 1 ] && [ "$took" -le 15 ]' "it took about the timeout (${took}s)"
is "$(vmq_state "$dom")" shutoff/destroyed "State shutoff, StateReason destroyed"
is "$(vmq_prop "$dom" Active)" false "Active is false"
ok 'vmq_wait_event "$monitor" "$dom" stopped/destroyed' "Lifecycle stopped/destroyed"
ok '! vmq_has_event "$monitor" "$dom" stopped/shutdown' "no stopped/shutdown: the guest did not shut down itself"
ok 'grep -F "\"path\":\"$dom\"" "$monitor" | grep -q -F "\"State\":{\"type\":\"s\",\"data\":\"shutdown\"}"' \
        "meanwhile PropertiesChanged said State shutdown"
vmq_check_stopped "after ShutdownWithTimeout" "$uuid" "$dpid" "$fds_before"
ok 'vmq_wait_log "$(vmq_qemu_log "$uuid")" "terminating on signal 15"' \
        "QEMU's log says it was terminated (it is kept after the stop)"

# --- start again (vmigratectl), shutdown --timeout (vmigratectl)
out=$("$ctl" start guest1 2>&1)
ok $? "vmigratectl start guest1 starts it again" || diag "$out"
is "$(vmq_state "$dom")" running/booted "running/booted again"
qpid2=$(vmq_pid "$uuid")
isnt "$qpid2" "$qpid1" "a new QEMU runs ($qpid2)"
check_running "after the second start"
is "$(vmq_event_count "$monitor" "$dom" started/booted)" 2 "a second Lifecycle started/booted"

out=$("$ctl" shutdown --timeout=0 guest1 2>&1)
is $? 2 "vmigratectl shutdown --timeout=0 is a usage error (exit 2)"
like "$out" "--timeout" "... naming --timeout"
out=$("$ctl" shutdown --timeout=soon guest1 2>&1)
is $? 2 "vmigratectl shutdown --timeout=soon is a usage error (exit 2)"
out=$("$ctl" start --timeout=1 guest1 2>&1)
is $? 2 "vmigratectl start --timeout=1 is a usage error (exit 2)"
like "$("$ctl" --help)" "shutdown --timeout=SECONDS|--timeout=SECONDS" "vmigratectl --help documents --timeout"
is "$(vmq_state "$dom")" running/booted "refused commands changed nothing"
SECONDS=0
out=$("$ctl" shutdown --timeout=0.5 guest1 2>&1)
ok $? "vmigratectl shutdown --timeout=0.5 guest1 (${SECONDS}s)" || diag "$out"
is "$(vmq_state "$dom")" shutoff/destroyed "shut off, destroyed after the timeout"
is "$(vmq_event_count "$monitor" "$dom" stopped/destroyed)" 2 "a second Lifecycle stopped/destroyed"
vmq_check_stopped "after vmigratectl shutdown --timeout" "$uuid" "$dpid" "$fds_before"

# --- start, destroy
vmq_dom "$dom" Start >/dev/null
ok $? "Start a third time"
qpid3=$(vmq_pid "$uuid")
ok 'vmq_ctl "$uuid" wait-heartbeat >/dev/null' "it runs (heartbeat)"
vmq_dom "$dom" Destroy >/dev/null
ok $? "Destroy"
is "$(vmq_state "$dom")" shutoff/destroyed "State shutoff, StateReason destroyed"
is "$(vmq_event_count "$monitor" "$dom" stopped/destroyed)" 3 "a third Lifecycle stopped/destroyed"
ok 'vmq_wait_gone "$qpid3"' "QEMU pid $qpid3 is gone"
vmq_check_stopped "after Destroy" "$uuid" "$dpid" "$fds_before"
vm_expect_error root "Destroy of a shut-off domain is refused" "$VM_ERROR.InvalidState" 'shut ?off|not active|not running' \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Destroy

# --- the whole story, in order
events=$(vm_lifecycle_events "$monitor" "$dom" | tr '\n' ' ')
is "$events" "defined/added started/booted suspended/paused resumed/unpaused stopped/destroyed started/booted stopped/destroyed started/booted stopped/destroyed " \
        "the Lifecycle signals came in order, once each"

# --- undefine
vmq_dom "$dom" Undefine >/dev/null
ok $? "Undefine"
ok '[ ! -e "$VM_TMP/state/domains/$uuid.xml" ]' "its definition is gone from the state directory"

# --- an empty CD-ROM drive, as virsh dumpxml writes one for most guests
cd_xml=$(vmq_domain_xml guest-cd "$VMQ_TYPE" "vmtest.mem=256K vmtest.rate=0 vmtest.hb=200" 64 \
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>")
cd_dom=$(vmq_create "$cd_xml")
ok $? "CreateXML of a guest with an empty CD-ROM drive starts it"
is "$(vmq_state "$cd_dom")" running/booted "it runs"
cd_uuid=$(vmq_prop "$cd_dom" UUID)
ok 'vmq_ctl "$cd_uuid" wait-heartbeat >/dev/null' "its guest runs (heartbeat)"
vmq_dom "$cd_dom" Destroy >/dev/null
ok $? "Destroy it (transient: it goes away)"

vmq_no_qemu_left "no QEMU of this test is left running"
is "$(ls "$VM_TMP/run/qemu")" log "only the log directory is left in <runtime-dir>/qemu"

vm_finish
