# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for the bus tests that run real QEMU (the qemu backend) with the
# project's test guest (tests/guest). Source lib.sh first, then this file,
# then call vmq_setup instead of vm_setup.
#
# Environment (set by meson):
#   VMTEST_KERNEL     the test guest kernel (vmigrate-test-guest.elf)
#   VMTEST_GUESTCTL   tests/guest/guestctl.py
#   VMTEST_GUESTMEM   tests/bus/guest-mem.py

# shellcheck source=../guest/lib-guest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../guest/lib-guest.sh"

VMQ_PY=/usr/bin/python3
# Serial answers of a KVM guest under nested KVM take up to a few seconds
# (verify reads every page at ~140 pages/s): be generous, it is a deadline.
VMQ_CTL_TIMEOUT=60

# vmq_setup: lib.sh's vm_setup plus the QEMU prerequisites; chooses
# VMQ_TYPE, the domain type of idle guests: kvm when /dev/kvm is usable,
# else qemu (TCG); VMTEST_ACCEL=tcg in the environment forces TCG (to test
# that path on a KVM host). The tests print which and why.
vmq_setup() {
        vm_require_prereqs
        guest_require
        vm_setup 0
        guest_require_qemu_backend "" busctl --no-pager
        if [ "${VMTEST_ACCEL:-}" = tcg ]; then
                VMQ_TYPE=qemu
                VMQ_ACCEL_WHY="VMTEST_ACCEL=tcg asks for TCG"
        elif guest_kvm_usable; then
                VMQ_TYPE=kvm
                VMQ_ACCEL_WHY="/dev/kvm is usable"
        else
                VMQ_TYPE=qemu
                VMQ_ACCEL_WHY="/dev/kvm is missing or cannot be opened"
        fi
}

# vmq_domain_xml NAME TYPE CMDLINE [MEMORY_MIB] [EXTRA]: a test guest with
# one serial port, booting qboot whatever TYPE; EXTRA is inserted in
# <devices> (disks) or, when it starts with <cpu, after <os>.
vmq_domain_xml() {
        guest_domain_xml --qboot "$1" "$2" "$3" "${4:-64}" "" "${5:-}"
}

# vmq_define XML: DefineXML as root; prints the object path.
vmq_define() {
        local out
        out=$(vm_mgr DefineXML s "$1") || return 1
        vm_reply_path "$out"
}

# vmq_create XML: CreateXML as root; prints the object path.
vmq_create() {
        local out
        out=$(busctl --no-pager --timeout=120 call "$VM_BUS_NAME" "$VM_MANAGER_PATH" \
                "$VM_MANAGER_IFACE" CreateXML s "$1") || return 1
        vm_reply_path "$out"
}

# vmq_dom PATH METHOD [SIGNATURE ARGS...]: a Domain method as root, with a
# timeout long enough for a guest start.
vmq_dom() {
        local path=$1
        shift
        busctl --no-pager --timeout=120 call "$VM_BUS_NAME" "$path" "$VM_DOMAIN_IFACE" "$@"
}

# vmq_prop PATH PROP: the property's value without quotes.
vmq_prop() {
        local v
        v=$(vm_get_prop "$1" "$VM_DOMAIN_IFACE" "$2") || return 1
        v=${v#\"}
        echo "${v%\"}"
}

vmq_state() {
        echo "$(vmq_prop "$1" State)/$(vmq_prop "$1" StateReason)"
}

# vmq_reason PATH: StateReason unescaped (it may quote QEMU's words).
vmq_reason() {
        busctl --no-pager --json=short get-property "$VM_BUS_NAME" "$1" "$VM_DOMAIN_IFACE" StateReason |
                $VMQ_PY -c 'import json, sys; print(json.load(sys.stdin)["data"], end="")'
}

vmq_rundir() {
        echo "$VM_TMP/run/qemu/$1"
}

vmq_serial_sock() {
        echo "$VM_TMP/run/qemu/$1/serial0.sock"
}

vmq_serial_log() {
        echo "$VM_TMP/run/qemu/log/$1-serial0.log"
}

vmq_qemu_log() {
        echo "$VM_TMP/run/qemu/log/$1.log"
}

# vmq_pid UUID: the QEMU pid from the runtime record.
vmq_pid() {
        local pid
        read -r pid _ <"$VM_TMP/run/qemu/$1/pid" 2>/dev/null || return 1
        [[ $pid =~ ^[0-9]+$ ]] || return 1
        echo "$pid"
}

# vmq_uuid_pids UUID: processes whose command line has "-uuid UUID".
vmq_uuid_pids() {
        local f pid
        for f in /proc/[0-9]*/cmdline; do
                pid=${f#/proc/}
                pid=${pid%%/*}
                tr '\0' '\n' <"$f" 2>/dev/null | grep -A1 -x -e '-uuid' | grep -qx -e "$1" && echo "$pid"
        done
}

# vmq_ctl UUID ARGS...: guestctl.py on the guest's serial socket.
vmq_ctl() {
        local uuid=$1
        shift
        $VMQ_PY "$VMTEST_GUESTCTL" --socket "$(vmq_serial_sock "$uuid")" --timeout "$VMQ_CTL_TIMEOUT" "$@"
}

# vmq_size FILE: its size in bytes (0 when missing).
vmq_size() {
        stat -c %s "$1" 2>/dev/null || echo 0
}

# vmq_zombies PID: children of PID that are zombies ("pid comm" lines).
vmq_zombies() {
        local f line rest state ppid
        for f in /proc/[0-9]*/stat; do
                line=$(cat "$f" 2>/dev/null) || continue
                # comm may hold spaces and parentheses: split after the last ')'.
                rest=${line##*) }
                read -r state ppid _ <<<"$rest"
                if [ "$ppid" = "$1" ] && [ "$state" = Z ]; then
                        echo "${line%% *} $(cut -d' ' -f2 <<<"$line")"
                fi
        done
}

vmq_fd_count() {
        ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# vmq_fds PID: its open files, for a diagnostic.
vmq_fds() {
        local fd
        for fd in /proc/"$1"/fd/*; do
                echo "${fd##*/} -> $(readlink "$fd")"
        done
}

# vmq_has_event FILE PATH EVENT/DETAIL: whether the monitor (see
# vm_monitor_start) saw that Lifecycle signal of object PATH.
vmq_has_event() {
        vm_lifecycle_events "$1" "$2" | grep -qx -e "$3"
}

# vmq_wait_event FILE PATH EVENT/DETAIL [DEADLINE]
vmq_wait_event() {
        wait_until "${4:-30}" vmq_has_event "$1" "$2" "$3"
}

# vmq_event_count FILE PATH EVENT/DETAIL
vmq_event_count() {
        vm_lifecycle_events "$1" "$2" | grep -cx -e "$3"
}

_vmq_state_is() {
        [ "$(vmq_prop "$1" State 2>/dev/null)" = "$2" ]
}

# vmq_wait_state PATH STATE [DEADLINE]
vmq_wait_state() {
        wait_until "${3:-30}" _vmq_state_is "$1" "$2"
}

_vmq_log_has() {
        grep -q -E -e "$2" "$1" 2>/dev/null
}

# vmq_wait_log FILE REGEX [DEADLINE]: until FILE has a line matching.
vmq_wait_log() {
        wait_until "${3:-30}" _vmq_log_has "$1" "$2"
}

_vmq_grows() {
        [ "$(vmq_size "$1")" -gt "$2" ]
}

# vmq_log_grows FILE DEADLINE: FILE grows past its current size within
# DEADLINE seconds.
vmq_log_grows() {
        local size
        size=$(vmq_size "$1")
        wait_until "$2" _vmq_grows "$1" "$size"
}

# vmq_alive PID: the process exists and is not a zombie. A QEMU that
# outlived a daemon restart is an orphan; when it exits, its new parent
# (PID 1, or a subreaper) reaps it, or on some machines never does (this
# project's test machine's PID 1 does not): a zombie counts as gone.
vmq_alive() {
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        [ "${stat%% *}" != Z ]
}

_vmq_gone() {
        ! vmq_alive "$1"
}

# vmq_wait_gone PID [DEADLINE]
vmq_wait_gone() {
        wait_until "${2:-15}" _vmq_gone "$1"
}

_vmq_no_uuid_process() {
        [ -z "$(vmq_uuid_pids "$1")" ]
}

_vmq_fd_count_is() {
        [ "$(vmq_fd_count "$1")" -eq "$2" ]
}

# vmq_check_stopped DESC UUID DAEMON_PID FD_COUNT: TAP tests that a stopped
# guest left nothing behind: no process with its uuid, no runtime
# directory, no zombie child of the daemon, the daemon's fd count as
# before the start. The daemon reaps and closes as it handles the exit,
# which may come a moment after the reply: allow it the time.
vmq_check_stopped() {
        local desc=$1 uuid=$2 dpid=$3 fds=$4 dir
        dir=$(vmq_rundir "$uuid")
        wait_until 15 _vmq_no_uuid_process "$uuid"
        ok $? "$desc: no QEMU process with its uuid" || diag "  still running: $(vmq_uuid_pids "$uuid")"
        wait_until 5 test ! -e "$dir"
        ok $? "$desc: its runtime directory is gone" || diag "  left: $(ls -la "$dir" 2>&1)"
        is "$(vmq_zombies "$dpid")" "" "$desc: no zombie among the daemon's children"
        wait_until 5 _vmq_fd_count_is "$dpid" "$fds"
        is "$(vmq_fd_count "$dpid")" "$fds" "$desc: the daemon has as many fds open as before the start" ||
                diag "$(vmq_fds "$dpid")"
}

# vmq_no_qemu_left DESC: one TAP test: no QEMU of this test runs.
vmq_no_qemu_left() {
        local pids
        pids=$(vm_qemu_pids)
        is "$pids" "" "$1" || diag "  $(for p in $pids; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
}
