# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Sourced by lib.sh and by tests/hosts/lib-hosts.sh (also in its --reap
# process, which does not source lib.sh): which recorded daemon pids are
# still ours to signal.

# vm_live_daemon_pids DIR: the pids in DIR/daemon-pids ("PID STARTTIME"
# lines) that are still vmigrated daemons started there: not those whose
# exit the wrapper recorded (DIR/exits/PID), nor a pid the kernel has since
# given to another process (tests run side by side: a stale pid may be
# another test's, even another test's vmigrated).
vm_live_daemon_pids() {
        local dir=$1 pid start
        [ -f "$dir/daemon-pids" ] || return 0
        while read -r pid start; do
                [[ $pid =~ ^[0-9]+$ ]] || continue
                [ -e "$dir/exits/$pid" ] && continue
                vm_same_process "$pid" "$start" || continue
                tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q vmigrated || continue
                echo "$pid"
        done <"$dir/daemon-pids"
}

# vm_proc_starttime PID: when the process started, in clock ticks since
# boot (field 22 of /proc/PID/stat); fails if there is no such process.
# With the pid it names one process for good: pids come round again
# (pid_max is 32768 on these machines), so a pid kept for later may be
# another program's by then.
vm_proc_starttime() {
        local s f
        s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        read -ra f <<<"${s##*) }"
        echo "${f[19]}"
}

# vm_same_process PID STARTTIME: whether PID is still the process that
# vm_proc_starttime saw.
vm_same_process() {
        [ -n "$2" ] && [ "$(vm_proc_starttime "$1")" = "$2" ]
}

# vm_kill_if_same PID STARTTIME [SIGNAL]: signals PID (SIGTERM by default)
# only while it is still the process that vm_proc_starttime saw; fails
# otherwise.
vm_kill_if_same() {
        vm_same_process "$1" "$2" && kill -"${3:-TERM}" "$1" 2>/dev/null
}
