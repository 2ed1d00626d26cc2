#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The qemu backend on the real bus: vmigrated stops (SIGTERM) while guests
# run; they keep running, and the next call's daemon re-attaches to them
# with their state and reasons, and controls them. A QEMU that died while
# the daemon was away leaves a stale record, which is cleaned up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-qemu.sh"

vmq_setup
guest_print_accel "$VMQ_TYPE" "idle guests; $VMQ_ACCEL_WHY"

monitor=$VM_TMP/monitor.json
vm_monitor_start "$monitor"
cmdline="vmtest.mem=256K vmtest.rate=0 vmtest.hb=200"

declare -A path uuid qpid
for name in g-run g-paused g-stale; do
        path[$name]=$(vmq_define "$(vmq_domain_xml "$name" "$VMQ_TYPE" "$cmdline")") ||
                bail_out "cannot define $name"
done
dpid=$(vm_daemon_pid)
fds_idle=$(vmq_fd_count "$dpid")
for name in g-run g-paused g-stale; do
        vmq_dom "${path[$name]}" Start >/dev/null
        ok $? "Start $name"
done
for name in t-live t-stale; do
        path[$name]=$(vmq_create "$(vmq_domain_xml "$name" "$VMQ_TYPE" "$cmdline")")
        ok $? "CreateXML $name (transient)"
done
vmq_dom "${path[g-paused]}" Suspend >/dev/null
ok $? "Suspend g-paused"
for name in g-run g-paused g-stale t-live t-stale; do
        uuid[$name]=$(vmq_prop "${path[$name]}" UUID)
        qpid[$name]=$(vmq_pid "${uuid[$name]}")
done
out=$(vmq_ctl "${uuid[g-run]}" verify)
ok $? "g-run verifies OK before the restart" || diag "  $out"

# --- the daemon goes away, the guests stay
status=$(vm_stop_daemon_pid "$dpid" TERM)
ok $? "vmigrated exits on SIGTERM with guests running"
is "$status" 0 "its exit status is 0"
for name in g-run g-paused g-stale t-live t-stale; do
        ok 'vmq_alive "${qpid[$name]}"' "$name's QEMU (pid ${qpid[$name]}) still runs"
done
ok '[ -e "$(vmq_rundir "${uuid[g-run]}")/pid" ]' "the runtime records stay"
ok 'vmq_log_grows "$(vmq_serial_log "${uuid[g-run]}")" 10' "g-run's guest keeps running: its heartbeats go on"

# While nobody watches, two QEMUs die: their records are stale.
kill -KILL "${qpid[g-stale]}" "${qpid[t-stale]}"
ok 'vmq_wait_gone "${qpid[g-stale]}" && vmq_wait_gone "${qpid[t-stale]}"' \
        "g-stale's and t-stale's QEMUs are killed while the daemon is down"

# --- the next call brings a daemon that finds them again
list=$(vm_mgr ListDomains)
ok $? "the next call re-activates vmigrated"
dpid2=$(vm_daemon_pid)
isnt "$dpid2" "$dpid" "a new daemon answers (pid $dpid2)"
for name in g-run g-paused g-stale t-live; do
        like "$list" "\"${path[$name]}\"" "ListDomains lists $name"
done
unlike "$list" "\"${path[t-stale]}\"" "ListDomains does not list t-stale (transient, its QEMU died)"

ok 'vmq_wait_state "${path[g-run]}" running' "g-run is running"
is "$(vmq_state "${path[g-run]}")" running/booted "g-run: running/booted, as before the restart"
ok 'vmq_wait_state "${path[g-paused]}" paused' "g-paused is paused"
is "$(vmq_state "${path[g-paused]}")" paused/user "g-paused: paused/user, as before the restart"
is "$(vmq_state "${path[t-live]}")" running/booted "t-live: running/booted"
is "$(vmq_prop "${path[t-live]}" Persistent)" false "t-live is still transient"
for name in g-run g-paused t-live; do
        is "$(vmq_pid "${uuid[$name]}")" "${qpid[$name]}" "$name: the same QEMU (pid ${qpid[$name]})"
        is "$(vmq_prop "${path[$name]}" Active)" true "$name: Active"
done
stale_state=$(vmq_state "${path[g-stale]}")
like "$stale_state" '^(shutoff|crashed)/' "g-stale is not shown as running ($stale_state)"
is "$(vmq_prop "${path[g-stale]}" Active)" false "g-stale is not Active"
ok '[ ! -e "$(vmq_rundir "${uuid[g-stale]}")" ]' "g-stale's stale runtime record is removed"
ok '[ ! -e "$(vmq_rundir "${uuid[t-stale]}")" ]' "t-stale's stale runtime record is removed"
ok 'grep -q "stale record" "$VM_TMP/daemon.log"' "the daemon logged that it removed stale records"
ok '! grep -q -e "re-attached to QEMU pid ${qpid[g-stale]}\$" -e "re-attached to QEMU pid ${qpid[t-stale]}\$" "$VM_TMP/daemon.log"' \
        "it did not re-attach to the dead QEMUs"

# --- and controls them
vmq_dom "${path[g-paused]}" Resume >/dev/null
ok $? "Resume g-paused through the new daemon"
is "$(vmq_state "${path[g-paused]}")" running/unpaused "g-paused: running/unpaused"
ok 'vmq_wait_event "$monitor" "${path[g-paused]}" resumed/unpaused' "Lifecycle resumed/unpaused"
ok 'vmq_log_grows "$(vmq_serial_log "${uuid[g-paused]}")" 10' "g-paused's guest runs again (heartbeats)"
out=$(vmq_ctl "${uuid[g-paused]}" verify)
ok $? "g-paused verifies OK" || diag "  $out"
out=$(vmq_ctl "${uuid[g-run]}" verify)
ok $? "g-run verifies OK after the restart" || diag "  $out"
vmq_dom "${path[g-run]}" Suspend >/dev/null
ok $? "Suspend g-run through the new daemon"
is "$(vmq_state "${path[g-run]}")" paused/user "g-run: paused/user"

for name in g-run g-paused t-live; do
        vmq_dom "${path[$name]}" Destroy >/dev/null
        ok $? "Destroy $name"
        ok 'vmq_wait_gone "${qpid[$name]}"' "$name's QEMU is gone"
        ok '[ ! -e "$(vmq_rundir "${uuid[$name]}")" ]' "$name's runtime directory is gone"
done
is "$(vmq_state "${path[g-run]}")" shutoff/destroyed "g-run: shutoff/destroyed"
is "$(vmq_event_count "$monitor" "${path[g-paused]}" stopped/destroyed)" 1 "Lifecycle stopped/destroyed for g-paused"
vm_expect_error root "t-live is gone after its Destroy" "$VM_ERROR.NoSuchDomain" '.' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s t-live

vmq_dom "${path[g-stale]}" Start >/dev/null
ok $? "g-stale starts again"
out=$(vmq_ctl "${uuid[g-stale]}" wait-heartbeat)
ok $? "g-stale's new guest runs" || diag "  $out"
vmq_dom "${path[g-stale]}" Destroy >/dev/null
ok $? "Destroy g-stale"
vmq_check_stopped "after all guests stopped" "${uuid[g-stale]}" "$dpid2" "$fds_idle"
vmq_no_qemu_left "no QEMU of this test is left running"
is "$(ls "$VM_TMP/run/qemu")" log "only the log directory is left in <runtime-dir>/qemu"

vm_finish
