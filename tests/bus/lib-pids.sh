# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Sourced by lib.sh and by tests/hosts/lib-hosts.sh (also in its --reap
# process, which does not source lib.sh): which recorded daemon pids are
# still ours to signal.

# vm_live_daemon_pids DIR: the pids in DIR/daemon-pids that are still
# vmigrated daemons started there: not those whose exit the wrapper
# recorded (DIR/exits/PID), nor a pid the kernel has since given to another
# process (tests run side by side: a stale pid may be another test's).
vm_live_daemon_pids() {
        local dir=$1 pid
        [ -f "$dir/daemon-pids" ] || return 0
        while read -r pid; do
                [[ $pid =~ ^[0-9]+$ ]] || continue
                [ -e "$dir/exits/$pid" ] && continue
                tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q vmigrated || continue
                echo "$pid"
        done <"$dir/daemon-pids"
}
