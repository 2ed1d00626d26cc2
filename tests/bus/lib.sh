# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Fixture for the bus tests: a private system-like bus with the project's
# bus policy, the real polkitd with the project's actions and example
# rules, and vmigrated from the build tree started by bus activation.
# Everything lives in one temporary directory per test program and is torn
# down on exit. Source this file, call vm_setup, write TAP with the helpers,
# end with vm_finish.
#
# Needs: root (dbus-daemon, polkitd, setpriv, useradd), unshare -m.
#
# Environment (set by meson):
#   VMIGRATE_BUILD_ROOT   build directory (has service/vmigrated)
#   VMIGRATE_SOURCE_ROOT  source directory (has dbus-config/, polkit/)

set -u

# shellcheck source=lib-pids.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-pids.sh"

# ---------------------------------------------------------------------------
# TAP

_tap_n=0
_tap_failed=0
_tap_planned=
_tap_done=0

plan() {
        _tap_planned=$1
        echo "1..$1"
}

diag() {
        local line
        while IFS= read -r line; do
                echo "# $line"
        done <<<"$*"
}

# Runs in a subshell so that a failing test cannot change the caller.
_tap_result() {
        local status=$1 desc=$2
        _tap_n=$((_tap_n + 1))
        if [ "$status" -eq 0 ]; then
                echo "ok $_tap_n - $desc"
        else
                echo "not ok $_tap_n - $desc"
                _tap_failed=$((_tap_failed + 1))
        fi
        return "$status"
}

# ok COND DESC: COND is an exit status (0 = pass) or a shell expression
# evaluated with eval.
ok() {
        local cond=$1 desc=$2 status
        if [[ $cond =~ ^[0-9]+$ ]]; then
                status=$cond
        else
                eval "$cond"
                status=$?
        fi
        _tap_result "$status" "$desc" || {
                [[ $cond =~ ^[0-9]+$ ]] || diag "  condition: $cond"
                return 1
        }
}

# is GOT EXPECTED DESC
is() {
        local got=$1 expected=$2 desc=$3
        [ "$got" = "$expected" ]
        _tap_result $? "$desc" || {
                diag "  got:      '$got'"
                diag "  expected: '$expected'"
                return 1
        }
}

# isnt GOT UNEXPECTED DESC
isnt() {
        local got=$1 unexpected=$2 desc=$3
        [ "$got" != "$unexpected" ]
        _tap_result $? "$desc" || {
                diag "  got '$got', which it must not be"
                return 1
        }
}

# like GOT REGEX DESC (bash extended regular expression)
like() {
        local got=$1 regex=$2 desc=$3
        [[ $got =~ $regex ]]
        _tap_result $? "$desc" || {
                diag "  got:      '$got'"
                diag "  expected: /$regex/"
                return 1
        }
}

# unlike GOT REGEX DESC
unlike() {
        local got=$1 regex=$2 desc=$3
        ! [[ $got =~ $regex ]]
        _tap_result $? "$desc" || {
                diag "  got:          '$got'"
                diag "  not expected: /$regex/"
                return 1
        }
}

# _tap_conclude: the plan if none was given (a plan that does not match the
# count is a failure); the TAP output is complete. Succeeds if no test
# failed.
_tap_conclude() {
        if [ -z "$_tap_planned" ]; then
                echo "1..$_tap_n"
        elif [ "$_tap_planned" -ne "$_tap_n" ]; then
                diag "planned $_tap_planned tests but ran $_tap_n"
                _tap_failed=$((_tap_failed + 1))
        fi
        _tap_done=1
        [ "$_tap_failed" -eq 0 ]
}

# Only for a prerequisite that is really missing (not root, no unshare...),
# never to hide a failure.
skip_all() {
        echo "1..0 # SKIP $*"
        _tap_done=1
        exit 0
}

# bail_out REASON: the fixture itself broke; stop here (counts as failure).
bail_out() {
        echo "Bail out! $*"
        vm_dump_logs
        exit 1
}

# wait_until DEADLINE_SECONDS CMD...: polls CMD every 50 ms until it
# succeeds (returns 0) or the deadline passes (returns 1).
wait_until() {
        local deadline=$1
        shift
        local end=$((SECONDS + deadline))
        # $SECONDS has a granularity of one second; add one so that a
        # deadline of N never gives less than N seconds.
        end=$((end + 1))
        while :; do
                "$@" && return 0
                [ "$SECONDS" -ge "$end" ] && return 1
                sleep 0.05
        done
}

# ---------------------------------------------------------------------------
# Fixture

VM_BUS_NAME=org.vmigrate.Migrate1
VM_MANAGER_PATH=/org/vmigrate/Migrate1
VM_MANAGER_IFACE=org.vmigrate.Migrate1.Manager
VM_DOMAIN_IFACE=org.vmigrate.Migrate1.Domain
VM_ERROR=org.vmigrate.Migrate1.Error

VM_TMP=
# The helpers' pids with their start times ("PID STARTTIME"): signalled
# only while still the process started (vm_kill_if_same); one that died
# early leaves a pid the kernel may have given to another test's process.
_vm_dbus_pid=
_vm_polkit_pid=
_vm_monitor_pids=()

# _vm_require_root WHY PROGRAM...: skips the test unless it runs as root
# and has the PROGRAMs and polkitd. Shared with tests/hosts/lib-hosts.sh.
_vm_require_root() {
        [ "$(id -u)" -eq 0 ] || skip_all "needs root ($1)"
        shift
        local p
        for p in "$@"; do
                command -v "$p" >/dev/null || skip_all "$p not installed"
        done
        [ -x /usr/lib/polkit-1/polkitd ] || skip_all "polkitd not installed"
}

# _vm_require_daemon: sets VM_DAEMON, the build tree's vmigrated.
_vm_require_daemon() {
        : "${VMIGRATE_BUILD_ROOT:?VMIGRATE_BUILD_ROOT must be set}"
        : "${VMIGRATE_SOURCE_ROOT:?VMIGRATE_SOURCE_ROOT must be set}"
        VM_DAEMON=$VMIGRATE_BUILD_ROOT/service/vmigrated
        # A missing daemon in a build that registers these tests is a build
        # bug, not a missing prerequisite.
        [ -x "$VM_DAEMON" ] || bail_out "$VM_DAEMON not built"
}

vm_require_prereqs() {
        _vm_require_root "dbus-daemon, polkitd, setpriv" dbus-daemon busctl setpriv unshare flock useradd groupadd
        unshare -m --propagation private true 2>/dev/null ||
                skip_all "cannot create a mount namespace (unshare -m)"
        _vm_require_daemon
}

# Test users are shared by all test programs, which may run in parallel:
# create them under a lock, and only when missing.
vm_setup_users() {
        (
                flock -w 60 9 || { echo "cannot lock user creation" >&2; exit 1; }
                getent group vmigrate >/dev/null || groupadd --system vmigrate || exit 1
                if ! getent passwd vmtest-admin >/dev/null; then
                        useradd --system --no-create-home --shell /usr/sbin/nologin \
                                --groups vmigrate vmtest-admin || exit 1
                fi
                if ! id -nG vmtest-admin | grep -qw vmigrate; then
                        usermod -a -G vmigrate vmtest-admin || exit 1
                fi
                if ! getent passwd vmtest-user >/dev/null; then
                        useradd --system --no-create-home --shell /usr/sbin/nologin \
                                vmtest-user || exit 1
                fi
                if id -nG vmtest-user | grep -qw vmigrate; then
                        gpasswd -d vmtest-user vmigrate >/dev/null || exit 1
                fi
        ) 9>/run/lock/vmigrate-test-users.lock 2>&1 || bail_out "cannot create test users"
}

# vm_write_service_file IDLE_TIMEOUT: (re)writes the activation file. It is
# derived from the build tree's org.vmigrate.Migrate1.service so that the
# name and user come from the file the project installs; only Exec= is
# replaced (the wrapper records each daemon's pid and exit status).
vm_write_service_file() {
        local idle=$1
        _vm_write_service_file "--state-dir=$VM_TMP/state --runtime-dir=$VM_TMP/run --config-root=$VM_TMP/config --idle-timeout=$idle --log-level=debug"
        # dbus-daemon rereads service directories when a name is unknown,
        # but not for a changed file: make it reload now.
        if [ -n "$_vm_dbus_pid" ]; then
                busctl call org.freedesktop.DBus /org/freedesktop/DBus \
                        org.freedesktop.DBus ReloadConfig >/dev/null ||
                        bail_out "dbus-daemon ReloadConfig failed"
        fi
}

# _vm_write_service_file DAEMON-OPTIONS: $VM_TMP/services' activation file,
# whose Exec= runs the wrapper with DAEMON-OPTIONS. Shared with
# tests/hosts/lib-hosts.sh (VM_TMP set to a host's dir).
_vm_write_service_file() {
        local src=$VMIGRATE_BUILD_ROOT/dbus-config/org.vmigrate.Migrate1.service
        local dst=$VM_TMP/services/org.vmigrate.Migrate1.service
        [ -r "$src" ] || bail_out "$src not generated"
        grep -v '^Exec=' "$src" >"$dst.new"
        echo "Exec=$VM_TMP/vmigrated-wrapper $1" >>"$dst.new"
        mv "$dst.new" "$dst"
}

# _vm_write_bus_config: $VM_TMP/bus.conf, and the bus policies it includes
# (the project's and polkit's) in $VM_TMP/system.d. Shared with
# tests/hosts/lib-hosts.sh (VM_TMP set to a host's dir).
_vm_write_bus_config() {
        cp "$VMIGRATE_SOURCE_ROOT/dbus-config/org.vmigrate.Migrate1.conf" \
                /usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf "$VM_TMP/system.d/" || return 1
        cat >"$VM_TMP/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- Like the stock system.conf, minus user switching, forking, the
       launch helper and the system's service directories. -->
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$VM_TMP/bus/system_bus_socket</listen>
  <servicedir>$VM_TMP/services</servicedir>

  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus" />
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>

  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>

  <includedir>$VM_TMP/system.d</includedir>
</busconfig>
EOF
}

# _vm_write_wrapper: $VM_TMP/vmigrated-wrapper. Shared with
# tests/hosts/lib-hosts.sh (VM_TMP set to a host's dir), which sets
# VM_DAEMON_SANDBOX: a command prefix that runs the daemon under the unit's
# sandbox (tests/hosts/unit-sandbox.py), outside valgrind.
_vm_write_wrapper() {
        # dbus-daemon runs this as the activated service. It keeps the
        # daemon's pid equal to what the bus reports for the name (the
        # daemon is the one connecting) and records its exit status in
        # exits/<pid>, which the tests cannot get otherwise: the daemon is
        # dbus-daemon's child, not ours. set -m: a background job of a
        # non-interactive shell would otherwise ignore SIGINT.
        cat >"$VM_TMP/vmigrated-wrapper" <<EOF
#!/bin/bash
set -m
# Variables a test asked for (vm_set_daemon_env), read at each activation.
if [ -r "$VM_TMP/daemon.env" ]; then
        set -a
        . "$VM_TMP/daemon.env"
        set +a
fi
# Under meson test --setup valgrind, VMIGRATE_VALGRIND is the valgrind
# command line. valgrind runs the program in its own process, so the pid
# recorded below is still the one owning the bus name, as it is through the
# sandbox's setpriv and python, which exec the next program.
${VM_DAEMON_SANDBOX:-} ${VMIGRATE_VALGRIND:-} "$VM_DAEMON" "\$@" &
pid=\$!
# With its start time (field 22 of its stat): pids come round again.
stat=\$(cat /proc/\$pid/stat 2>/dev/null)
read -ra f <<<"\${stat##*) }"
echo "\$pid \${f[19]:-}" >>"$VM_TMP/daemon-pids"
trap 'kill -TERM \$pid 2>/dev/null' TERM
trap 'kill -INT \$pid 2>/dev/null' INT
while :; do
        wait "\$pid"
        rc=\$?
        kill -0 "\$pid" 2>/dev/null || break
done
echo "\$rc" >"$VM_TMP/exits/\$pid.tmp"
mv "$VM_TMP/exits/\$pid.tmp" "$VM_TMP/exits/\$pid"
exit "\$rc"
EOF
        chmod 0755 "$VM_TMP/vmigrated-wrapper"
}

# _vm_name_has_owner NAME [BUSCTL-OPTION...]: whether NAME has an owner on
# the bus (the test's, or the one BUSCTL-OPTIONs such as --address= name).
_vm_name_has_owner() {
        local name=$1 out
        shift
        out=$(busctl "$@" call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus NameHasOwner s "$name" 2>/dev/null) || return 1
        [ "$out" = "b true" ]
}

# _vm_install_polkit_files ACTIONS-DIR RULES-DIR EXTRA-RULES: the project's
# actions and example rules, which polkitd is made to see alone. Tests may
# add rules of their own (EXTRA-RULES, e.g. to check the details the daemon
# passes); they come before the example (40 < 50). Shared with
# tests/hosts/lib-hosts.sh.
_vm_install_polkit_files() {
        cp "$VMIGRATE_SOURCE_ROOT/polkit/org.vmigrate.migrate1.policy" "$1/" &&
                cp "$VMIGRATE_SOURCE_ROOT/polkit/50-vmigrate.rules.example" "$2/50-vmigrate.rules" ||
                return 1
        if [ -n "$3" ]; then
                printf '%s\n' "$3" >"$2/40-test.rules"
        fi
        chmod 0644 "$1"/* "$2"/*
}

vm_start_polkit() {
        # A private mount namespace in which polkitd sees only the project's
        # actions and rules: the host's (and other packages') rules must not
        # decide these tests.
        unshare -m --propagation private /bin/sh -c '
                set -e
                mount --bind "$1/polkit-actions" /usr/share/polkit-1/actions
                mount --bind "$1/polkit-rules" /usr/share/polkit-1/rules.d
                mount --bind "$1/polkit-etc-rules" /etc/polkit-1/rules.d
                exec /usr/lib/polkit-1/polkitd --no-debug
        ' sh "$VM_TMP" >>"$VM_TMP/polkitd.log" 2>&1 &
        _vm_polkit_pid="$! $(vm_proc_starttime $!)"
        wait_until 20 _vm_name_has_owner org.freedesktop.PolicyKit1 ||
                bail_out "polkitd did not take org.freedesktop.PolicyKit1"
}

vm_stop_polkit() {
        [ -n "$_vm_polkit_pid" ] || return 0
        _vm_stop_helper "$_vm_polkit_pid"
        _vm_polkit_pid=
        wait_until 10 eval '! _vm_name_has_owner org.freedesktop.PolicyKit1' ||
                bail_out "org.freedesktop.PolicyKit1 still owned after polkitd stopped"
}

# vm_set_daemon_env [NAME=VALUE...]: the environment of daemons activated
# from now on gets these variables (on top of dbus-daemon's, which is
# ours); without arguments, nothing extra. A running daemon keeps its own.
vm_set_daemon_env() {
        local kv
        : >"$VM_TMP/daemon.env.new"
        for kv in "$@"; do
                [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || bail_out "vm_set_daemon_env: bad '$kv'"
                printf '%s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$VM_TMP/daemon.env.new"
        done
        mv "$VM_TMP/daemon.env.new" "$VM_TMP/daemon.env"
}

# vm_setup [IDLE_TIMEOUT]: users, bus, polkit; the daemon is not started
# (bus activation starts it on the first call). IDLE_TIMEOUT defaults to 0
# (never exit on idle) so that tests that do not test idle exit are not
# raced by it.
vm_setup() {
        local idle=${1:-0}
        vm_require_prereqs
        vm_setup_users

        VM_TMP=$(mktemp -d /tmp/vmigrate-bus-test.XXXXXX) || bail_out "mktemp failed"
        trap vm_teardown EXIT
        # meson kills a test that times out with SIGTERM: exit through the
        # EXIT trap so that nothing is left running.
        trap 'exit 143' TERM
        trap 'exit 130' INT
        # Non-root callers must reach the socket, polkitd (its own user)
        # must read the policy and rules.
        chmod 0755 "$VM_TMP"
        mkdir -p "$VM_TMP"/{bus,services,system.d,state,run,exits} \
                "$VM_TMP"/{polkit-actions,polkit-rules,polkit-etc-rules}
        chmod 0755 "$VM_TMP"/{bus,polkit-actions,polkit-rules,polkit-etc-rules}

        _vm_install_polkit_files "$VM_TMP/polkit-actions" "$VM_TMP/polkit-rules" "${VM_EXTRA_RULES:-}" ||
                bail_out "cannot copy the polkit files"
        _vm_write_bus_config
        _vm_write_wrapper
        vm_write_service_file "$idle"

        dbus-daemon --config-file="$VM_TMP/bus.conf" --nofork \
                --print-address=3 3>"$VM_TMP/bus/address" \
                >>"$VM_TMP/daemon.log" 2>&1 &
        _vm_dbus_pid="$! $(vm_proc_starttime $!)"
        wait_until 10 test -s "$VM_TMP/bus/address" ||
                bail_out "dbus-daemon did not start"
        VM_BUS_ADDRESS=$(head -n1 "$VM_TMP/bus/address")
        export DBUS_SYSTEM_BUS_ADDRESS=$VM_BUS_ADDRESS
        # Make sure nobody talks to a real system bus by accident.
        unset DBUS_SESSION_BUS_ADDRESS
        if grep -E 'Encountered error' "$VM_TMP/daemon.log"; then
                bail_out "dbus-daemon refused part of its configuration"
        fi

        vm_start_polkit
        diag "bus $VM_BUS_ADDRESS, temp dir $VM_TMP"
}

vm_dump_logs() {
        [ -n "$VM_TMP" ] && [ -d "$VM_TMP" ] || return 0
        diag "---- dbus-daemon + vmigrated log ($VM_TMP/daemon.log) ----"
        [ -f "$VM_TMP/daemon.log" ] && diag "$(tail -n 300 "$VM_TMP/daemon.log")"
        diag "---- polkitd log ----"
        [ -f "$VM_TMP/polkitd.log" ] && diag "$(tail -n 50 "$VM_TMP/polkitd.log")"
}

# vm_qemu_pids: the QEMU processes started by this test's daemons, found
# by their standard error, which vmigrated points at <runtime-dir>/qemu/log/
# (QEMU runs in a session of its own and outlives the daemon, so it is not
# necessarily anybody's child we know).
vm_qemu_pids() {
        local fd pid target
        [ -n "$VM_TMP" ] || return 0
        for fd in /proc/[0-9]*/fd/2; do
                target=$(readlink "$fd" 2>/dev/null) || continue
                case $target in
                "$VM_TMP/run/qemu/log/"*)
                        pid=${fd#/proc/}
                        echo "${pid%%/*}"
                        ;;
                esac
        done
}

# _vm_stop_helper "PID STARTTIME": SIGTERM to a helper started here, if it
# still runs, and waits for it.
_vm_stop_helper() {
        local pid start
        read -r pid start <<<"$1"
        vm_kill_if_same "$pid" "$start"
        wait "$pid" 2>/dev/null
}

vm_teardown() {
        local rc=$? pid
        # Whoever read our output may be gone (a pipe into head): still
        # clean up.
        trap '' PIPE
        for pid in "${_vm_monitor_pids[@]}"; do
                _vm_stop_helper "$pid"
        done
        if [ -n "$VM_TMP" ]; then
                for pid in $(vm_live_daemon_pids "$VM_TMP"); do
                        kill -TERM "$pid" 2>/dev/null || continue
                        wait_until 10 eval "! kill -0 $pid 2>/dev/null" ||
                                kill -KILL "$pid" 2>/dev/null
                done
        fi
        # Guests a failed test left behind (a passing one checks there are
        # none): they would outlive us otherwise.
        for pid in $(vm_qemu_pids); do
                echo "# killing QEMU pid $pid left running"
                kill -KILL "$pid" 2>/dev/null
        done
        [ -z "$_vm_polkit_pid" ] || _vm_stop_helper "$_vm_polkit_pid"
        [ -z "$_vm_dbus_pid" ] || _vm_stop_helper "$_vm_dbus_pid"
        if [ "$_tap_done" -ne 1 ]; then
                echo "# test program ended early (exit status $rc)"
                vm_dump_logs
                rc=1
        elif [ "$_tap_failed" -ne 0 ]; then
                vm_dump_logs
        fi
        [ -n "$VM_TMP" ] && rm -rf "$VM_TMP"
        exit "$rc"
}

# vm_sanitizer_check: one TAP test: no sanitizer or valgrind report from
# any daemon that ran (their stderr goes to dbus-daemon's, i.e.
# daemon.log; valgrind runs --quiet, so any "==PID== " line is a report).
vm_sanitizer_check() {
        local reports
        reports=$(grep -E -A20 'AddressSanitizer|LeakSanitizer|runtime error:|^==[0-9]+== ' \
                "$VM_TMP/daemon.log")
        is "$reports" "" "no sanitizer reports in the daemon's output"
}

# vm_finish: stops the daemon (so that LeakSanitizer reports), checks for
# sanitizer reports, prints the plan if none was given, and exits with the
# TAP result.
vm_finish() {
        local pid
        pid=$(vm_daemon_pid 2>/dev/null) && vm_stop_daemon_pid "$pid" >/dev/null
        vm_sanitizer_check
        _tap_conclude && exit 0
        exit 1
}

# ---------------------------------------------------------------------------
# Talking to the service

# as_user USER CMD...: runs CMD with USER's uid, primary gid and groups,
# against the private bus.
as_user() {
        local user=$1
        shift
        if [ "$user" = root ]; then
                "$@"
                return
        fi
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
                env DBUS_SYSTEM_BUS_ADDRESS="$VM_BUS_ADDRESS" HOME=/ "$@"
}

# _vm_owner_pid NAME [BUSCTL-OPTION...]: the pid of the connection owning
# NAME on the test's bus (or the one BUSCTL-OPTIONs such as --address=
# name); fails when it has no owner, never activates a service.
_vm_owner_pid() {
        local name=$1 out
        shift
        out=$(busctl "$@" call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetConnectionUnixProcessID s "$name" 2>/dev/null) || return 1
        echo "${out#u }"
}

# The pid of the connection owning org.vmigrate.Migrate1 (fails when it
# has no owner; never activates the service).
vm_daemon_pid() {
        _vm_owner_pid "$VM_BUS_NAME"
}

vm_daemon_running() {
        _vm_name_has_owner "$VM_BUS_NAME"
}

# vm_daemon_exit_status PID [DEADLINE]: the exit status of a daemon that
# exited (waits up to DEADLINE, default 10 s, for it), or fails.
vm_daemon_exit_status() {
        wait_until "${2:-10}" test -f "$VM_TMP/exits/$1" || return 1
        cat "$VM_TMP/exits/$1"
}

# vm_stop_daemon_pid PID [SIGNAL]: signals the daemon, waits until it and
# its bus name are gone, prints its exit status.
vm_stop_daemon_pid() {
        local pid=$1 sig=${2:-TERM}
        kill -"$sig" "$pid" || return 1
        vm_daemon_exit_status "$pid" || return 1
        wait_until 10 eval '! vm_daemon_running' || return 1
}

# vm_call ARGS...: busctl call to the service as root; stdout is the reply,
# stderr the error message.
vm_call() {
        busctl --no-pager call "$VM_BUS_NAME" "$@"
}

vm_mgr() {
        busctl --no-pager call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" "$@"
}

# vm_call_as USER BUSCTL-ARGS...: runs `busctl BUSCTL-ARGS` as USER and
# sets VM_REPLY (stdout), VM_ERROR_NAME and VM_ERROR_MESSAGE (empty on
# success); returns busctl's status. busctl prints only the error message,
# so the name comes from sd-bus' debug log of the received error.
VM_REPLY=
VM_ERROR_NAME=
VM_ERROR_MESSAGE=
vm_call_as() {
        local user=$1 rc line
        shift
        VM_REPLY=$(as_user "$user" env SYSTEMD_LOG_LEVEL=debug SYSTEMD_COLORS=0 \
                busctl --no-pager "$@" 2>"$VM_TMP/busctl.err")
        rc=$?
        VM_ERROR_NAME=
        VM_ERROR_MESSAGE=
        if [ "$rc" -ne 0 ]; then
                line=$(grep -m1 '^Got message type=error' "$VM_TMP/busctl.err")
                if [ -n "$line" ]; then
                        VM_ERROR_NAME=${line#* error-name=}
                        VM_ERROR_NAME=${VM_ERROR_NAME%% *}
                        VM_ERROR_MESSAGE=${line#* error-message=}
                else
                        # Not a D-Bus error (bad arguments to busctl, no bus).
                        VM_ERROR_NAME=busctl-failed
                        VM_ERROR_MESSAGE=$(grep -v -E '^(Bus |Sent message|Got message)' \
                                "$VM_TMP/busctl.err" | tail -n 3)
                fi
        fi
        return "$rc"
}

# vm_expect_error USER DESC ERROR-NAME MESSAGE-REGEX BUSCTL-ARGS...: one
# TAP test: the call fails with that error name and a message matching.
vm_expect_error() {
        local user=$1 desc=$2 name=$3 regex=$4
        shift 4
        if vm_call_as "$user" "$@"; then
                _tap_result 1 "$desc"
                diag "  call succeeded, expected $name; reply: $VM_REPLY"
                return 1
        fi
        [ "$VM_ERROR_NAME" = "$name" ] && [[ $VM_ERROR_MESSAGE =~ $regex ]]
        _tap_result $? "$desc" || {
                diag "  got:      $VM_ERROR_NAME: $VM_ERROR_MESSAGE"
                diag "  expected: $name: /$regex/"
                return 1
        }
}

# vm_expect_ok USER DESC BUSCTL-ARGS...: one TAP test: the call succeeds.
vm_expect_ok() {
        local user=$1 desc=$2
        shift 2
        vm_call_as "$user" "$@"
        _tap_result $? "$desc" || {
                diag "  failed: $VM_ERROR_NAME: $VM_ERROR_MESSAGE"
                return 1
        }
}

# vm_call_file USER METHOD FILE: calls Manager.METHOD(s) with the contents
# of FILE as argument, for documents too big for a command-line argument
# (Linux caps one at 128 KiB). Same result variables as vm_call_as.
vm_call_file() {
        local user=$1 method=$2 file=$3 out rc
        out=$(as_user "$user" /usr/bin/python3 "$VMIGRATE_SOURCE_ROOT/tests/bus/call-file.py" \
                "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" "$method" "$file" 2>&1)
        rc=$?
        VM_REPLY=
        VM_ERROR_NAME=
        VM_ERROR_MESSAGE=
        case $out in
        "reply "*) VM_REPLY=${out#reply } ;;
        "error "*)
                out=${out#error }
                VM_ERROR_NAME=${out%%[[:space:]]*}
                VM_ERROR_MESSAGE=${out#*[[:space:]]}
                ;;
        *) VM_ERROR_NAME=python-failed VM_ERROR_MESSAGE=$out ;;
        esac
        return "$rc"
}

# vm_path_encode UUID: what sd_bus_path_encode() makes of a path element:
# every byte but [A-Za-z0-9] (and a leading digit) becomes _xx.
vm_path_encode() {
        local s=$1 out= c i
        for ((i = 0; i < ${#s}; i++)); do
                c=${s:i:1}
                if [[ $c =~ [A-Za-z] ]] || { [[ $c =~ [0-9] ]] && [ "$i" -gt 0 ]; }; then
                        out+=$c
                else
                        out+=$(printf '_%02x' "'$c")
                fi
        done
        echo "$out"
}

vm_domain_path() {
        echo "$VM_MANAGER_PATH/domain/$(vm_path_encode "$1")"
}

# vm_json_reply_string BUSCTL-ARGS...: the first string of a busctl call
# reply, unescaped (busctl's plain output escapes quotes and newlines).
vm_json_reply_string() {
        busctl --no-pager --json=short "$@" |
                /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0], end="")'
}

# vm_get_prop PATH IFACE PROP: prints the value part of busctl get-property
# (e.g. `"running"` for a string, `true`, `2`).
vm_get_prop() {
        local out
        out=$(busctl --no-pager get-property "$VM_BUS_NAME" "$1" "$2" "$3") || return 1
        echo "${out#* }"
}

vm_domain_state() {
        vm_get_prop "$1" "$VM_DOMAIN_IFACE" State
}

# vm_domain_xml NAME [UUID] [TYPE]: a minimal valid domain document.
vm_domain_xml() {
        local name=$1 uuid=${2:-} type=${3:-test}
        echo "<domain type=\"$type\">"
        echo "  <name>$name</name>"
        [ -n "$uuid" ] && echo "  <uuid>$uuid</uuid>"
        echo '  <memory unit="MiB">512</memory>'
        echo '  <vcpu>2</vcpu>'
        echo '</domain>'
}

# vm_reply_path REPLY: `o "/path"` -> /path
vm_reply_path() {
        local r=$1
        r=${r#o }
        r=${r#\"}
        echo "${r%\"}"
}

# vm_define NAME [UUID]: DefineXML as root, prints the object path.
vm_define() {
        local out
        out=$(vm_mgr DefineXML s "$(vm_domain_xml "$@")") || return 1
        vm_reply_path "$out"
}

# ---------------------------------------------------------------------------
# Watching signals

# vm_monitor_start FILE [PREFIX...]: records all bus traffic as JSON lines
# in FILE (busctl monitor, as root; its errors in FILE.err), and returns
# once the monitor is known to receive messages (a probe signal has
# arrived). PREFIX runs busctl elsewhere (tests/hosts: host_exec HOST).
vm_monitor_start() {
        local file=$1
        shift
        "$@" busctl --no-pager --json=short monitor >"$file" 2>>"$file.err" &
        _vm_monitor_pids+=("$! $(vm_proc_starttime $!)")
        wait_until 10 _vm_monitor_probe "$file" "$@" ||
                bail_out "busctl monitor${1:+ ($*)} does not see messages"
}

# _vm_monitor_probe FILE [PREFIX...]: emits a probe signal; whether the
# monitor writing FILE has seen one.
_vm_monitor_probe() {
        local file=$1
        shift
        "$@" busctl emit /org/vmigrate/Test org.vmigrate.Test Probe >/dev/null 2>&1
        grep -q '"member":"Probe"' "$file"
}

# vm_signals FILE MEMBER [PATH]: the MEMBER signals in FILE (a monitor's,
# - for standard input), only those of object PATH if given.
vm_signals() {
        grep "\"member\":\"$2\"" "$1" | if [ -n "${3:-}" ]; then grep -F "\"path\":\"$3\""; else cat; fi
}

# vm_lifecycle_events FILE [PATH]: the Lifecycle signals in FILE (of object
# PATH) as "event/detail" lines, in order.
vm_lifecycle_events() {
        vm_signals "$1" Lifecycle "${2:-}" |
                sed -n -E 's/.*"data":\["([^"]*)","([^"]*)"\].*/\1\/\2/p'
}
