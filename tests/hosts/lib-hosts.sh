# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Multi-host fixture: N "hosts" on this machine, each a network namespace,
# a mount namespace and a UTS namespace with
#   - its own /run (tmpfs), /run/dbus (its own system bus socket, so
#     sd_bus_open_system() with no environment reaches the host's bus),
#     its own vmigrated state dir (the daemon's compiled default, e.g.
#     /var/lib/vmigrate or /var/local/lib/vmigrate), /run/vmigrate and
#     /srv/vmigrate/images, and /srv/vmigrate/shared (one directory shared
#     by all hosts of the run: "shared storage");
#   - /etc/hosts naming every host (host-a, host-b, ...), hostname host-NAME;
#   - the project's polkit actions and example rules (and nothing else) in
#     polkit's directories;
#   - its own system-like dbus-daemon (the project's bus policy, polkit's),
#     its own polkitd, and the build-tree vmigrated by bus activation
#     (default paths, --log-level=debug, logs in the host's dbus.log).
# Hosts share one L2 segment: each host's eth0 is a veth whose peer is a
# port of a bridge in a separate "switch" namespace, so any number of hosts
# can talk and each link can be shaped (tc netem) or unplugged on its own.
# Addresses come from a /24 in 10.0.0.0/8 chosen per run; they exist only
# inside the namespaces (nothing is routed, the root namespace's interfaces
# and routes are never touched).
#
# Usage (a TAP test; the TAP helpers come from ../bus/lib.sh):
#
#   . "$(dirname "$0")/lib-hosts.sh"
#   hosts_setup 2                   # hosts a, b (or: hosts_setup a b c)
#   host_exec a busctl get-property org.vmigrate.Migrate1 \
#           /org/vmigrate/Migrate1 org.vmigrate.Migrate1.Manager HostUUID
#   host_exec a ping -c1 host-b
#   busctl --address="$(host_bus_address b)" ...   # from anywhere
#   link_shape a --rate 1gbit --delay 5ms --loss 1%
#   link_down b; link_up b; link_clear a
#   hosts_finish                    # plan, exit status; teardown via trap
#
# Functions:
#   hosts_setup N | NAME...   create the hosts (names: [a-z][a-z0-9]{0,7});
#                             installs EXIT/TERM/INT traps for the teardown
#   host_exec NAME CMD...     run CMD inside the host (net+mount+uts), with
#                             DBUS_SYSTEM_BUS_ADDRESS set to its own bus
#   host_bus_address NAME     unix:path=... of the host's bus, valid from the
#                             root namespace and from every host
#   host_ip NAME              the host's address;  host_hostname NAME: host-NAME
#   host_path NAME WHAT       where a host's dir is seen from the root
#                             namespace: state, runtime, images, shared, bus,
#                             log (its dbus-daemon + vmigrated log), dir
#   host_daemon_pid NAME      pid of the host's vmigrated (fails if none)
#   host_polkitd_stop NAME    SIGKILL the host's polkitd (polkit gone: the
#                             bus has no activation file for it, so it stays
#                             gone); host_polkitd_start NAME starts it again
#   host_state_fill NAME      the host's vmigrated state dir becomes a small
#                             tmpfs holding a copy of it, then filled up
#                             (every write there fails with ENOSPC);
#                             host_state_restore NAME puts the real dir back,
#                             with what the daemon wrote meanwhile
#   HOSTS_DAEMON_ARGS         (set before hosts_setup) more vmigrated options,
#                             @HOSTDIR@ replaced by each host's dir
#   HOSTS_DAEMON_ENV          (set before hosts_setup) NAME=VALUE... for every
#                             vmigrated's environment (the host's daemon.env,
#                             read at each activation), @HOSTDIR@ likewise
#   host_netns NAME           the host's network namespace name (ip -n ...)
#   host_enter NAME           the nsenter command prefix that runs a program
#                             in the host (environment unchanged)
#   hosts_switch_netns, host_switch_port NAME   where the shaping lives
#   link_shape NAME [--rate R] [--delay D] [--jitter J] [--loss P%]
#                             shape the host's link in both directions
#                             (in the switch, on the host's port); R in
#                             bit/kbit/mbit/gbit, D/J in us/ms/s. netem if
#                             the kernel has it, else HTB (rate) and a BPF
#                             classifier (loss); delay then is refused
#   hosts_have_netem          whether the kernel has sch_netem
#   hosts_rate_bps RATE       bits per second of a link_shape --rate
#   link_clear NAME           remove the shaping
#   link_down NAME / link_up NAME   unplug / replug the host's cable
#   host_start_sshd NAME      sshd on port 22 of the host; root of every
#                             host may then `ssh host-NAME` (and busctl
#                             --host=root@host-NAME) with a per-run key
#   host_ssh_config           prints the ssh client config hosts use
#   hosts_loop_attach FILE    a loop device over FILE (a block device for
#                             disks of type 'block'; /dev is every host's);
#                             prints its path; detached at the teardown
#   hosts_teardown            stop everything, delete everything (idempotent;
#                             called by the EXIT trap)
#   hosts_leftovers           after teardown: prints anything of this run
#                             still present (empty output = clean)
#   hosts_check_daemon_logs   stop the daemons; one TAP test: no sanitizer
#                             or valgrind reports (before the teardown)
#   hosts_finish              like lib.sh's vm_finish, for all hosts
#
# Environment:
#   VMIGRATE_BUILD_ROOT, VMIGRATE_SOURCE_ROOT   set by meson (as in tests/bus)
#   VMIGRATE_VALGRIND     command prefix for the daemon (e.g. "valgrind -q
#                         --error-exitcode=1 --leak-check=full")
#   HOSTS_EXTRA_RULES     a polkit rules file's text, installed before the
#                         example rules on every host (40-test.rules)
#   HOSTS_IDLE_TIMEOUT    the daemon's --idle-timeout (default 0: never)
#   HOSTS_KEEP_LOGS=DIR   copy every host's logs to DIR at teardown
#   HOSTS_SANDBOX=0       run the daemons without the unit's sandbox (for
#                         debugging; by default every daemon runs under
#                         what unit-sandbox.py can apply of the built
#                         dbus-config/vmigrated.service, and the first test
#                         output says what that is)
#
# Variables after hosts_setup: HOSTS_RUN (run dir), HOSTS_ID, HOSTS_NAMES
# (array), HOSTS_SUBNET (e.g. 10.137.42), HOSTS_STATE_DIR and
# HOSTS_RUNTIME_DIR (the daemon's default paths, as seen inside a host).
#
# Teardown stops by pid everything the fixture started, then kills any
# process still inside one of the run's namespaces (QEMU started by a
# daemon, a test's background job), unmounts, deletes the namespaces (and
# so the veths) and removes the run dir. On SIGTERM (meson's timeout) the
# teardown runs in a detached process ("lib-hosts.sh --reap RUN_DIR"),
# because meson SIGKILLs the test's process group half a second later.
#
# Needs root, iproute2 (ip, tc), util-linux (nsenter, unshare, findmnt),
# dbus-daemon, polkitd, busctl; ping (iputils-ping) and sshd
# (openssh-server) only for the functions that use them.

set -u

_hosts_lib=$(readlink -f "${BASH_SOURCE[0]}")
_hosts_libdir=$(dirname "$_hosts_lib")

# TAP helpers (plan, ok, is, like, diag, skip_all, bail_out, wait_until)
# and vm_setup_users come from the single-host bus fixture.
if [ "${1:-}" != --reap ]; then
        # shellcheck source=../bus/lib.sh
        . "$_hosts_libdir/../bus/lib.sh"
else
        # shellcheck source=../bus/lib-pids.sh
        . "$_hosts_libdir/../bus/lib-pids.sh"
fi

VM_BUS_NAME=${VM_BUS_NAME:-org.vmigrate.Migrate1}
VM_MANAGER_PATH=${VM_MANAGER_PATH:-/org/vmigrate/Migrate1}
VM_MANAGER_IFACE=${VM_MANAGER_IFACE:-org.vmigrate.Migrate1.Manager}

HOSTS_RUN=
HOSTS_ID=
HOSTS_SUBNET=
HOSTS_NAMES=()
HOSTS_STATE_DIR=
HOSTS_RUNTIME_DIR=
# Kept after teardown so that hosts_leftovers can look for remains.
_hosts_last_run=
_hosts_last_id=
_hosts_last_inodes=()
_hosts_last_ticks=0

# The last one is repeated in the bail-out line, which CI's summary shows.
_hosts_err() {
        _HOSTS_LAST_ERR=$*
        echo "lib-hosts: $*" >&2
}

# ---------------------------------------------------------------------------
# Names and paths

_hosts_check_name() {
        local name=${1#host-}
        [[ $name =~ ^[a-z][a-z0-9]{0,7}$ ]] || {
                _hosts_err "bad host name '$1': use 1-8 characters [a-z0-9], starting with a letter"
                return 1
        }
        [ -z "$HOSTS_RUN" ] || [ -d "$HOSTS_RUN/h/$name" ] || {
                _hosts_err "no host '$1' in this run (hosts: ${HOSTS_NAMES[*]})"
                return 1
        }
        echo "$name"
}

# The switch's namespace and the host's port in it (where link_shape
# puts its qdiscs; traffic from the host is shaped on ifb i-NAME).
host_switch_port() {
        local name
        name=$(_hosts_check_name "$1") || return 1
        echo "p-$name"
}

hosts_switch_netns() {
        echo "vmh-$HOSTS_ID-sw"
}

host_netns() {
        local name
        name=$(_hosts_check_name "$1") || return 1
        echo "vmh-$HOSTS_ID-$name"
}

host_hostname() {
        local name
        name=$(_hosts_check_name "$1") || return 1
        echo "host-$name"
}

host_ip() {
        local name
        name=$(_hosts_check_name "$1") || return 1
        cat "$HOSTS_RUN/h/$name/ip"
}

host_bus_address() {
        local name
        name=$(_hosts_check_name "$1") || return 1
        echo "unix:path=$HOSTS_RUN/h/$name/bus/system_bus_socket"
}

host_path() {
        local name h
        name=$(_hosts_check_name "$1") || return 1
        h=$HOSTS_RUN/h/$name
        case ${2:-} in
        state) echo "$h/state" ;;
        runtime) echo "$h/run" ;;
        images) echo "$h/images" ;;
        shared) echo "$HOSTS_RUN/shared" ;;
        bus) echo "$h/bus" ;;
        log) echo "$h/dbus.log" ;;
        dir) echo "$h" ;;
        *)
                _hosts_err "host_path: unknown '${2:-}' (state, runtime, images, shared, bus, log, dir)"
                return 1
                ;;
        esac
}

# _hosts_enter_argv NAME: sets _hosts_argv to the nsenter command that
# runs what follows it in the host's namespaces, environment unchanged.
_hosts_enter_argv() {
        _hosts_argv=(nsenter --mount="$HOSTS_RUN/ns/$1.mnt" --uts="$HOSTS_RUN/ns/$1.uts"
                --net="/run/netns/vmh-$HOSTS_ID-$1" --)
}

# host_enter NAME: that command as words (none holds a space), for
# programs that take a command prefix (bench/raw-*.py --src-exec).
host_enter() {
        local name
        name=$(_hosts_check_name "$1") || return 1
        _hosts_enter_argv "$name"
        echo "${_hosts_argv[*]}"
}

# _hosts_nsenter NAME CMD...: CMD in the host's namespaces, environment
# unchanged.
_hosts_nsenter() {
        _hosts_enter_argv "$1"
        shift
        "${_hosts_argv[@]}" "$@"
}

host_exec() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 125
        shift
        [ $# -gt 0 ] || { _hosts_err "host_exec: no command"; return 125; }
        # Entering a mount namespace moves the cwd to its root: come back
        # (all hosts see the root namespace's tree apart from /run and /srv).
        _hosts_nsenter "$name" env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket \
                /bin/sh -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' sh "$PWD" "$@"
}

# ---------------------------------------------------------------------------
# Set-up

_hosts_require() {
        _vm_require_root "namespaces, dbus-daemon, polkitd" ip tc nsenter unshare findmnt dbus-daemon busctl setpriv flock
        _vm_require_daemon
        # Probe the namespace kinds we need; a container may forbid them.
        unshare --mount --uts --net --propagation private true 2>/dev/null ||
                skip_all "cannot create mount/uts/net namespaces (unshare)"
}

# The daemon's default state and runtime dirs, as it prints them: the
# fixture mounts the host's dirs there so that no option is needed.
_hosts_daemon_defaults() {
        local help
        help=$("$VM_DAEMON" --help) || bail_out "vmigrated --help failed"
        HOSTS_STATE_DIR=$(sed -n -E 's/.*Default: \$STATE_DIRECTORY, else (\/[^ ]+)$/\1/p' <<<"$help")
        HOSTS_RUNTIME_DIR=$(sed -n -E 's/.*Default: \$RUNTIME_DIRECTORY, else (\/[^ ]+)$/\1/p' <<<"$help")
        [ -n "$HOSTS_STATE_DIR" ] && [ -n "$HOSTS_RUNTIME_DIR" ] ||
                bail_out "cannot read the default state/runtime dirs from 'vmigrated --help'"
}

# VM_DAEMON_SANDBOX for _vm_write_wrapper: the daemons run under the
# sandbox of the unit the build generated, as far as it can be applied
# without systemd as PID 1 (capabilities, no-new-privs, umask, seccomp
# filters; unit-sandbox.py --describe lists what is and is not), so a
# setting that takes away something vmigrated, QEMU, swtpm or ssh needs
# fails these tests. Not under valgrind, whose own system calls the unit
# does not cater for.
_hosts_sandbox() {
        local unit=$VMIGRATE_BUILD_ROOT/dbus-config/vmigrated.service
        local tool=$_hosts_libdir/unit-sandbox.py also=
        VM_DAEMON_SANDBOX=
        if [ "${HOSTS_SANDBOX:-1}" = 0 ]; then
                diag "HOSTS_SANDBOX=0: the daemons run without the unit's sandbox"
                return 0
        fi
        if [ -n "${VMIGRATE_VALGRIND:-}" ]; then
                diag "under valgrind: the daemons run without the unit's sandbox"
                return 0
        fi
        [ -r "$unit" ] || bail_out "$unit not generated"
        /usr/bin/python3 -c 'import seccomp' 2>/dev/null ||
                bail_out "python3-seccomp is missing (tools/install-deps.sh installs it)"
        # LeakSanitizer stops the daemon's threads with ptrace() to look for
        # leaks at exit: a sanitizer's need, not the daemon's.
        if ldd "$VM_DAEMON" 2>/dev/null | grep -q 'libasan'; then
                also=--also-allow=ptrace
                diag "sanitizer build: ptrace() allowed on top of the unit's SystemCallFilter= (LeakSanitizer)"
        fi
        diag "the daemons run under $(basename "$unit")'s sandbox as unit-sandbox.py applies it:" \
                "$("$tool" --describe "$unit" | sed -n 's/: emulated$//p' | tr '\n' ' ')"
        diag "not applied (no systemd as PID 1):" \
                "$("$tool" --describe "$unit" | grep -v ': emulated$' | sed -E 's/: partly.*/ (its mounts)/; s/: .*//' | tr '\n' ' ')"
        VM_DAEMON_SANDBOX="/usr/bin/python3 $tool${also:+ $also} $unit --"
}

# A run id and a /24 nobody else on this machine uses right now. The
# namespaces isolate runs anyway; distinct subnets keep logs unambiguous.
_hosts_pick_id() {
        local i
        for i in 1 2 3 4 5 6 7 8; do
                HOSTS_ID=$(printf '%04x' $(((RANDOM << 1 ^ $$ ^ i) & 0xffff)))
                [ -e "/run/netns/vmh-$HOSTS_ID-sw" ] && continue
                ls -d /tmp/vmh-"$HOSTS_ID".* >/dev/null 2>&1 && continue
                HOSTS_SUBNET=10.$((100 + 0x$HOSTS_ID % 150)).$((0x$HOSTS_ID >> 8 & 255))
                return 0
        done
        bail_out "cannot find a free run id"
}

# _hosts_daemon_options HOST-DIR: vmigrated's options on every host; no
# paths (the host's dirs are mounted on the defaults). HOSTS_DAEMON_ARGS:
# more options, @HOSTDIR@ standing for the host's dir (host_path NAME dir).
_hosts_daemon_options() {
        local extra=${HOSTS_DAEMON_ARGS:-}
        extra=${extra//@HOSTDIR@/$1}
        # --config-root: no configuration file of this machine applies.
        echo "--config-root=$1/config --idle-timeout=${HOSTS_IDLE_TIMEOUT:-0} --log-level=debug${extra:+ $extra}"
}

# Mounts inside a new host mount namespace. $1 = host dir, $2 = run dir,
# $3 = state dir, $4 = runtime dir.
# shellcheck disable=SC2016
_hosts_mount_script='
set -e
h=$1 run=$2 state=$3 runtime=$4
# The copy of the root namespace holds bind mounts of other namespaces
# (/run/netns/* of other runs, our ns files): drop them, or they would
# keep those namespaces alive as long as this one.
# Another run may drop its own namespace files meanwhile: a target that is
# no longer a mount point is what we wanted anyway.
findmnt -rn -t nsfs -o TARGET | sort -r | while read -r t; do
        umount -l "$t" 2>/dev/null || ! mountpoint -q "$t" || umount -l "$t"
done
mount -t tmpfs -o mode=0755,size=64m vmh-run /run
mount -t tmpfs -o mode=0755,size=1m vmh-srv /srv
mkdir -p /run/dbus /run/lock /run/sshd /srv/vmigrate/images /srv/vmigrate/shared \
        "$state" "$runtime"
mount --bind "$h/bus" /run/dbus
mount --bind "$h/state" "$state"
mount --bind "$h/run" "$runtime"
mount --bind "$h/images" /srv/vmigrate/images
mount --bind "$run/shared" /srv/vmigrate/shared
mount --bind "$run/etc-hosts" /etc/hosts
mount --bind "$run/polkit/actions" /usr/share/polkit-1/actions
mount --bind "$run/polkit/rules" /usr/share/polkit-1/rules.d
mount --bind "$run/polkit/etc-rules" /etc/polkit-1/rules.d
mkdir -p /root/.ssh
mount --bind "$h/root-ssh" /root/.ssh
'

# _hosts_start NAME LOG CMD...: starts CMD in the host's namespaces in the
# background and records its pid (nsenter execs CMD: same pid).
_hosts_start() {
        local name=$1 log=$2
        shift 2
        # Not through _hosts_nsenter: a backgrounded function is a subshell
        # whose pid is not the program's.
        _hosts_enter_argv "$name"
        "${_hosts_argv[@]}" "$@" </dev/null >>"$log" 2>&1 &
        _hosts_started_pid=$!
        # With its start time: the cleanup signals only the process we
        # started, never a later one that got its pid.
        echo "$_hosts_started_pid $(vm_proc_starttime "$_hosts_started_pid")" >>"$HOSTS_RUN/pids"
}

_hosts_add_host() {
        local name=$1 ip=$2 h=$HOSTS_RUN/h/$1 ns=vmh-$HOSTS_ID-$1 sw=vmh-$HOSTS_ID-sw
        mkdir -p "$h"/{bus,state,run,images,services,system.d,exits,root-ssh} || { _hosts_err "host $name: mkdir failed ($LINENO)"; return 1; }
        chmod 0755 "$h" "$h/bus"
        chmod 0700 "$h/root-ssh"
        echo "$ip" >"$h/ip"
        # The bus configuration, activation wrapper and service file of
        # tests/bus, with this host's socket, service and policy
        # directories: the wrapper records each daemon's pid and exit status
        # in the host's dir (the daemon is dbus-daemon's child, not ours).
        VM_TMP=$h _vm_write_bus_config || { _hosts_err "host $name: _vm_write_bus_config failed ($LINENO)"; return 1; }
        VM_TMP=$h _vm_write_wrapper
        VM_TMP=$h _vm_write_service_file "$(_hosts_daemon_options "$h")"
        local kv
        for kv in ${HOSTS_DAEMON_ENV:-}; do
                kv=${kv//@HOSTDIR@/$h}
                printf '%s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$h/daemon.env"
        done

        # Network: eth0 in the host, its peer p-NAME a port of the switch.
        # Both ends are created inside their namespaces, never in ours.
        echo "netns $ns" >>"$HOSTS_RUN/resources"
        # Serialised: the first 'ip netns add' of the machine makes /run/netns
        # a mount point, and two test programs doing that at once can race.
        flock /run/vmh-netns.lock ip netns add "$ns" || { _hosts_err "host $name: ip netns add failed ($LINENO)"; return 1; }
        stat -L -c %i "/run/netns/$ns" >>"$HOSTS_RUN/inodes" || { _hosts_err "host $name: stat failed ($LINENO)"; return 1; }
        ip link add eth0 netns "$ns" type veth peer name "p-$name" netns "$sw" || { _hosts_err "host $name: ip failed ($LINENO)"; return 1; }
        ip -n "$sw" link set "p-$name" master br0 up || { _hosts_err "host $name: ip failed ($LINENO)"; return 1; }
        ip -n "$ns" link set lo up || { _hosts_err "host $name: ip failed ($LINENO)"; return 1; }
        ip -n "$ns" addr add "$ip/24" dev eth0 || { _hosts_err "host $name: ip failed ($LINENO)"; return 1; }
        ip -n "$ns" link set eth0 up || { _hosts_err "host $name: ip failed ($LINENO)"; return 1; }

        # Mount and UTS namespaces, kept by bind mounts on files.
        touch "$HOSTS_RUN/ns/$name.mnt" "$HOSTS_RUN/ns/$name.uts"
        echo "nsfile $HOSTS_RUN/ns/$name.mnt" >>"$HOSTS_RUN/resources"
        echo "nsfile $HOSTS_RUN/ns/$name.uts" >>"$HOSTS_RUN/resources"
        unshare --mount="$HOSTS_RUN/ns/$name.mnt" --uts="$HOSTS_RUN/ns/$name.uts" \
                --propagation private true || { _hosts_err "host $name: unshare failed ($LINENO)"; return 1; }
        stat -L -c %i "$HOSTS_RUN/ns/$name.mnt" >>"$HOSTS_RUN/inodes" || { _hosts_err "host $name: stat failed ($LINENO)"; return 1; }
        nsenter --mount="$HOSTS_RUN/ns/$name.mnt" /bin/sh -xc "$_hosts_mount_script" sh \
                "$h" "$HOSTS_RUN" "$HOSTS_STATE_DIR" "$HOSTS_RUNTIME_DIR" 2>"$h/mount.log" || {
                _hosts_err "host $name: the mount script failed ($LINENO): $(tail -n 3 "$h/mount.log" | tr '\n' ' ')"
                return 1
        }
        # A sysfs of the host's own network namespace: /sys/class/net then
        # lists the host's devices (bridges), as on a real host.
        nsenter --mount="$HOSTS_RUN/ns/$name.mnt" --net="/run/netns/$ns" mount -t sysfs vmh-sys /sys || { _hosts_err "host $name: nsenter failed ($LINENO)"; return 1; }
        nsenter --uts="$HOSTS_RUN/ns/$name.uts" hostname "host-$name" || { _hosts_err "host $name: nsenter failed ($LINENO)"; return 1; }

        # The bus: listens on $h/bus/system_bus_socket, which is the
        # host's /run/dbus/system_bus_socket and, being under the run dir
        # (never overmounted), reachable by path from everywhere.
        _hosts_start "$name" "$h/dbus.log" dbus-daemon --config-file="$h/bus.conf" --nofork \
                --print-address=3 3>"$h/bus-address"
        wait_until 10 test -S "$h/bus/system_bus_socket" || {
                _hosts_err "dbus-daemon of host $name did not start"
                return 1
        }
        if grep -E 'Encountered error' "$h/dbus.log" >&2; then
                _hosts_err "dbus-daemon of host $name refused part of its configuration"
                return 1
        fi
        _hosts_start_polkitd "$name"
}

# _hosts_start_polkitd NAME: the host's polkitd, with its debug output and
# GLib's warnings in its log (--no-debug sends them to /dev/null), and its
# pid kept for _hosts_polkitd_end.
_hosts_start_polkitd() {
        local name=$1 h=$HOSTS_RUN/h/$1
        # polkitd finds the bus at its default path: no environment.
        _hosts_start "$name" "$h/polkitd.log" env -u DBUS_SYSTEM_BUS_ADDRESS \
                /usr/lib/polkit-1/polkitd
        echo "$_hosts_started_pid" >"$h/polkitd-pid"
        wait_until 20 _vm_name_has_owner org.freedesktop.PolicyKit1 \
                --address="unix:path=$h/bus/system_bus_socket" || {
                _hosts_err "polkitd of host $name did not take org.freedesktop.PolicyKit1"
                return 1
        }
}

# _hosts_polkitd_end NAME: reaps the host's polkitd, which has ended, and
# sets _hosts_polkitd_how to how ("exit status N", "signal S"). Only in
# the shell that started it, never in a $(...) subshell.
_hosts_polkitd_end() {
        local pid rc
        _hosts_polkitd_how="unknown: no pid"
        pid=$(cat "$HOSTS_RUN/h/$1/polkitd-pid" 2>/dev/null) || return 0
        wait "$pid" 2>/dev/null
        rc=$?
        if [ "$rc" -eq 127 ]; then
                _hosts_polkitd_how="pid $pid, unknown (not a child of this shell)"
        elif [ "$rc" -gt 128 ]; then
                _hosts_polkitd_how="pid $pid, signal $(kill -l "$rc" 2>/dev/null || echo $((rc - 128)))"
        else
                _hosts_polkitd_how="pid $pid, exit status $rc"
        fi
}

# hosts_setup N | NAME...
hosts_setup() {
        local names=() n i name t0 ip
        [ -z "$HOSTS_RUN" ] || bail_out "hosts_setup called twice"
        [ $# -gt 0 ] || bail_out "hosts_setup: give a number of hosts or their names"
        if [ $# -eq 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then
                n=$1
                [ "$n" -ge 1 ] && [ "$n" -le 26 ] || bail_out "hosts_setup: 1 to 26 hosts, not $n"
                for ((i = 0; i < n; i++)); do
                        names+=("$(printf "\\$(printf '%03o' $((97 + i)))")")
                done
        else
                for name in "$@"; do
                        name=$(_hosts_check_name "$name") || bail_out "hosts_setup: bad name '$name'"
                        [[ " ${names[*]} " == *" $name "* ]] && bail_out "hosts_setup: '$name' given twice"
                        names+=("$name")
                done
                [ "${#names[@]}" -le 200 ] || bail_out "hosts_setup: too many hosts"
        fi

        _hosts_require
        _hosts_daemon_defaults
        _hosts_sandbox
        vm_setup_users
        _hosts_pick_id
        t0=$(date +%s%N)

        HOSTS_RUN=$(mktemp -d "/tmp/vmh-$HOSTS_ID.XXXX") || bail_out "mktemp failed"
        trap _hosts_on_exit EXIT
        # meson SIGTERMs a test that times out and SIGKILLs its process
        # group 0.5 s later: hand the teardown to a process outside it.
        trap _hosts_on_term TERM
        trap 'exit 130' INT
        chmod 0755 "$HOSTS_RUN"
        echo "$$" >"$HOSTS_RUN/owner"
        mkdir -p "$HOSTS_RUN"/{ns,h,shared} "$HOSTS_RUN"/polkit/{actions,rules,etc-rules}
        chmod 0755 "$HOSTS_RUN"/{h,shared} "$HOSTS_RUN"/polkit "$HOSTS_RUN"/polkit/*
        : >"$HOSTS_RUN/pids"
        : >"$HOSTS_RUN/inodes"
        : >"$HOSTS_RUN/resources"

        # Namespace files must sit on a private mount (unshare refuses a
        # shared one, and a shared one would propagate them).
        echo "mount $HOSTS_RUN/ns" >>"$HOSTS_RUN/resources"
        mount --bind "$HOSTS_RUN/ns" "$HOSTS_RUN/ns" &&
                mount --make-private "$HOSTS_RUN/ns" || bail_out "cannot make $HOSTS_RUN/ns a private mount"

        _vm_install_polkit_files "$HOSTS_RUN/polkit/actions" "$HOSTS_RUN/polkit/rules" "${HOSTS_EXTRA_RULES:-}" ||
                bail_out "cannot copy the polkit files"

        {
                echo "127.0.0.1 localhost"
                echo "::1 localhost ip6-localhost ip6-loopback"
                for ((i = 0; i < ${#names[@]}; i++)); do
                        echo "$HOSTS_SUBNET.$((11 + i)) host-${names[i]}"
                done
        } >"$HOSTS_RUN/etc-hosts"
        chmod 0644 "$HOSTS_RUN/etc-hosts"

        # The switch: a bridge in a namespace of its own.
        echo "netns vmh-$HOSTS_ID-sw" >>"$HOSTS_RUN/resources"
        flock /run/vmh-netns.lock ip netns add "vmh-$HOSTS_ID-sw" || bail_out "ip netns add failed"
        stat -L -c %i "/run/netns/vmh-$HOSTS_ID-sw" >>"$HOSTS_RUN/inodes"
        ip -n "vmh-$HOSTS_ID-sw" link add br0 type bridge &&
                ip -n "vmh-$HOSTS_ID-sw" link set br0 up || bail_out "cannot create the switch bridge"

        for ((i = 0; i < ${#names[@]}; i++)); do
                ip=$HOSTS_SUBNET.$((11 + i))
                HOSTS_NAMES+=("${names[i]}")
                _hosts_add_host "${names[i]}" "$ip" || bail_out "cannot set up host ${names[i]}: ${_HOSTS_LAST_ERR:-see the log}"
        done
        _hosts_setup_ms=$((($(date +%s%N) - t0) / 1000000))
        diag "hosts ${HOSTS_NAMES[*]} up in ${_hosts_setup_ms} ms: run $HOSTS_ID, dir $HOSTS_RUN, subnet $HOSTS_SUBNET.0/24"
}

# ---------------------------------------------------------------------------
# Talking to the hosts' daemons

host_daemon_pid() {
        local address
        address=$(host_bus_address "$1") || return 1
        _vm_owner_pid "$VM_BUS_NAME" --address="$address"
}

# _hosts_ns_procs NAME COMM: pids of processes called COMM whose network
# namespace is the host's.
_hosts_ns_procs() {
        local ino p
        ino=$(stat -L -c %i "/run/netns/vmh-$HOSTS_ID-$1") || return 1
        for p in $(pgrep -x "$2" 2>/dev/null); do
                [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$ino" ] && echo "$p"
        done
}

host_polkitd_stop() {
        local name pids
        name=$(_hosts_check_name "${1:-}") || return 1
        pids=$(_hosts_ns_procs "$name" polkitd)
        [ -n "$pids" ] || {
                _hosts_polkitd_end "$name"
                _hosts_err "host $name runs no polkitd: it ended by itself ($_hosts_polkitd_how); its log ends: $(tail -n 20 "$HOSTS_RUN/h/$name/polkitd.log" | tr '\n' '|')"
                return 1
        }
        # shellcheck disable=SC2086 # one word per pid
        kill -KILL $pids || return 1
        wait_until 10 eval "[ -z \"\$(_hosts_ns_procs $name polkitd)\" ]" &&
                wait_until 10 eval "! _vm_name_has_owner org.freedesktop.PolicyKit1 --address=unix:path=$HOSTS_RUN/h/$name/bus/system_bus_socket"
}

host_polkitd_start() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 1
        [ -z "$(_hosts_ns_procs "$name" polkitd)" ] || return 0
        # Reap the one killed (its status is known).
        _hosts_polkitd_end "$name"
        _hosts_start_polkitd "$name"
}

# The state dir as the daemon sees it ($HOSTS_STATE_DIR in the host's
# mount namespace) is a bind mount of HOSTDIR/state; a tmpfs on top of it
# hides it from the daemon only (HOSTDIR/state stays the real one).
host_state_fill() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 1
        [ -e "$HOSTS_RUN/h/$name/state-full" ] && { _hosts_err "host $name: state dir already full"; return 1; }
        # shellcheck disable=SC2016
        _hosts_nsenter "$name" /bin/sh -c '
                set -e
                used=$(du -sk "$2" | cut -f1)
                mount -t tmpfs -o mode=0755,size=$((used + 512))k vmh-full "$1"
                cp -a "$2"/. "$1"/
                dd if=/dev/zero of="$1/.vmh-fill" bs=4k 2>/dev/null || true
                # The last blocks, for small writes too.
                i=0
                while echo x >"$1/.vmh-fill-$i" 2>/dev/null; do
                        i=$((i + 1))
                        [ "$i" -lt 1000 ] || break
                done
                if echo x >"$1/.vmh-probe" 2>/dev/null; then
                        echo "$1 is not full" >&2
                        exit 1
                fi
                ' sh "$HOSTS_STATE_DIR" "$HOSTS_RUN/h/$name/state" || {
                _hosts_err "host $name: cannot fill its state dir"
                host_state_restore "$name"
                return 1
        }
        touch "$HOSTS_RUN/h/$name/state-full"
}

host_state_restore() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 1
        # shellcheck disable=SC2016
        _hosts_nsenter "$name" /bin/sh -c '
                set -e
                findmnt -rn -t tmpfs "$1" >/dev/null || exit 0
                rm -f "$1"/.vmh-fill* "$1"/.vmh-probe
                find "$2" -mindepth 1 -delete
                cp -a "$1"/. "$2"/
                umount "$1"
                ' sh "$HOSTS_STATE_DIR" "$HOSTS_RUN/h/$name/state" || {
                _hosts_err "host $name: cannot restore its state dir"
                return 1
        }
        rm -f "$HOSTS_RUN/h/$name/state-full"
}

# ---------------------------------------------------------------------------
# Links

# hosts_rate_bps RATE: bits per second of a tc rate (bit, kbit, mbit, gbit).
hosts_rate_bps() {
        local v u
        [[ $1 =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] || return 1
        v=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]}
        case $u in
        bit) echo "$v" ;;
        kbit) echo $((v * 1000)) ;;
        mbit) echo $((v * 1000000)) ;;
        gbit) echo $((v * 1000000000)) ;;
        esac
}

# _hosts_time_us TIME: microseconds of a tc time (us, ms, s).
_hosts_time_us() {
        [[ $1 =~ ^([0-9]+)(us|ms|s)$ ]] || return 1
        case ${BASH_REMATCH[2]} in
        us) echo "${BASH_REMATCH[1]}" ;;
        ms) echo $((BASH_REMATCH[1] * 1000)) ;;
        s) echo $((BASH_REMATCH[1] * 1000000)) ;;
        esac
}

# hosts_have_netem: whether this kernel has sch_netem (delay, jitter; some
# kernels, like the CI VMs', are built without it).
_hosts_netem=
hosts_have_netem() {
        if [ -z "$_hosts_netem" ]; then
                _hosts_netem=no
                if ip netns exec "vmh-$HOSTS_ID-sw" tc qdisc add dev lo root netem 2>/dev/null; then
                        _hosts_netem=yes
                        ip netns exec "vmh-$HOSTS_ID-sw" tc qdisc del dev lo root 2>/dev/null
                fi
        fi
        [ "$_hosts_netem" = yes ]
}

# _hosts_loss_bytecode PERCENT: a classic BPF classifier matching a random
# PERCENT of packets (ld rand; jge threshold -> no match; ret -1 = match),
# in tc's "bytecode" syntax. For kernels without netem.
_hosts_loss_bytecode() {
        local thr
        thr=$(awk -v p="${1%\%}" 'BEGIN { t = p / 100 * 4294967296; if (t > 4294967295) t = 4294967295; printf "%d", t }')
        echo "4,32 0 0 4294963256,53 1 0 $thr,6 0 0 4294967295,6 0 0 0"
}

# _hosts_tc NETNS DEV NETEM-ARGS...: the shaping of one direction.
_hosts_tc() {
        local netns=$1 dev=$2 rate='' loss=''
        shift 2
        if hosts_have_netem; then
                ip netns exec "$netns" tc qdisc replace dev "$dev" root netem "$@"
                return
        fi
        # Without netem: HTB for the rate; for the loss, a random BPF
        # classifier sending packets to a class whose queue holds nothing.
        while [ $# -gt 0 ]; do
                case $1 in
                rate) rate=$2 ;;
                loss) loss=$2 ;;
                limit) ;;
                *) _hosts_err "link_shape: '$1' needs sch_netem, which this kernel lacks (CONFIG_NET_SCH_NETEM)"; return 1 ;;
                esac
                shift 2
        done
        # The queue holds 100 ms at the rate (at least 256 KiB), in bytes:
        # forwarded packets may be GRO-merged, a packet count means little.
        local bytes=262144 bps
        if [ -n "$rate" ]; then
                bps=$(hosts_rate_bps "$rate")
                [ $((bps / 80)) -gt "$bytes" ] && bytes=$((bps / 80))
        fi
        ip netns exec "$netns" tc qdisc del dev "$dev" root 2>/dev/null
        ip netns exec "$netns" tc qdisc add dev "$dev" root handle 1: htb default 1 &&
                ip netns exec "$netns" tc class add dev "$dev" parent 1: classid 1:1 htb \
                        rate "${rate:-100gbit}" ceil "${rate:-100gbit}" quantum 60000 &&
                ip netns exec "$netns" tc qdisc add dev "$dev" parent 1:1 handle 10: bfifo limit "$bytes" ||
                return 1
        if [ -n "$loss" ]; then
                ip netns exec "$netns" tc class add dev "$dev" parent 1: classid 1:2 htb rate 1gbit \
                        quantum 60000 &&
                        ip netns exec "$netns" tc qdisc add dev "$dev" parent 1:2 handle 2: pfifo limit 0 &&
                        ip netns exec "$netns" tc filter add dev "$dev" parent 1: prio 1 \
                                bpf bytecode "$(_hosts_loss_bytecode "$loss")" flowid 1:2 || return 1
        fi
}

# link_shape NAME [--rate R] [--delay D [--jitter J]] [--loss P%]: shapes
# both directions of the host's cable, in the switch: traffic to the host
# on the egress of its port p-NAME, traffic from the host on an ifb
# (i-NAME) its port's ingress is redirected to. So drops are silent to the
# sender (as on a real network, unlike drops in its own qdisc), the
# hosts' eth0 stays untouched, and a round trip between two hosts shaped
# with --delay 5ms each takes 20 ms. Replaces any earlier shaping of that
# link. netem does it all; without netem (see hosts_have_netem) rate and
# loss still work (HTB, a random BPF classifier), delay and jitter are
# refused.
link_shape() {
        local name rate='' delay='' jitter='' loss='' bps=0 us=0 limit args=()
        name=$(_hosts_check_name "${1:-}") || return 1
        shift
        while [ $# -gt 0 ]; do
                case $1 in
                --rate | --delay | --jitter | --loss)
                        [ $# -ge 2 ] || { _hosts_err "link_shape: $1 needs a value"; return 1; }
                        ;;
                *) _hosts_err "link_shape: unknown option '$1' (--rate, --delay, --jitter, --loss)"; return 1 ;;
                esac
                case $1 in
                --rate) rate=$2 ;;
                --delay) delay=$2 ;;
                --jitter) jitter=$2 ;;
                --loss) loss=$2 ;;
                esac
                shift 2
        done
        if [ -n "$rate" ]; then
                bps=$(hosts_rate_bps "$rate") && [ "$bps" -gt 0 ] || {
                        _hosts_err "link_shape: bad --rate '$rate' (e.g. 100mbit, 1gbit, 512kbit)"
                        return 1
                }
                args+=(rate "$rate")
        fi
        if [ -n "$delay" ]; then
                us=$(_hosts_time_us "$delay") || {
                        _hosts_err "link_shape: bad --delay '$delay' (e.g. 5ms, 200us, 1s)"
                        return 1
                }
                args+=(delay "$delay")
                if [ -n "$jitter" ]; then
                        _hosts_time_us "$jitter" >/dev/null || {
                                _hosts_err "link_shape: bad --jitter '$jitter' (e.g. 1ms)"
                                return 1
                        }
                        args+=("$jitter")
                fi
        elif [ -n "$jitter" ]; then
                _hosts_err "link_shape: --jitter needs --delay"
                return 1
        fi
        if [ -n "$loss" ]; then
                [[ $loss =~ ^[0-9]+(\.[0-9]+)?%$ ]] && awk -v p="${loss%\%}" 'BEGIN { exit !(p <= 100) }' || {
                        _hosts_err "link_shape: bad --loss '$loss' (a percentage, e.g. 1% or 0.5%)"
                        return 1
                }
                args+=(loss "$loss")
        fi
        [ ${#args[@]} -gt 0 ] || { _hosts_err "link_shape: nothing to shape (use link_clear to remove shaping)"; return 1; }
        # Room for twice the bandwidth-delay product (plus 50 ms of
        # queueing), at least netem's default: a too short queue would
        # drop packets nobody asked to lose.
        limit=1000
        if [ "$bps" -gt 0 ]; then
                local bdp=$(((bps / 8) * (us + 50000) / 1000000 / 1500 * 2))
                [ "$bdp" -gt "$limit" ] && limit=$bdp
        elif [ "$us" -gt 0 ]; then
                # No rate: assume up to 10 Gbit/s (~833 full packets per ms).
                limit=$(((us + 50000) * 833 / 1000 * 2))
        fi
        [ "$limit" -gt 1000000 ] && limit=1000000
        args+=(limit "$limit")
        local sw=vmh-$HOSTS_ID-sw
        link_clear "$name"
        if ! ip -n "$sw" link show "i-$name" >/dev/null 2>&1; then
                ip -n "$sw" link add "i-$name" type ifb &&
                        ip -n "$sw" link set "i-$name" up || return 1
        fi
        ip netns exec "$sw" tc qdisc add dev "p-$name" ingress &&
                ip netns exec "$sw" tc filter add dev "p-$name" parent ffff: protocol all prio 1 \
                        u32 match u32 0 0 action mirred egress redirect dev "i-$name" &&
                _hosts_tc "$sw" "i-$name" "${args[@]}" &&
                _hosts_tc "$sw" "p-$name" "${args[@]}" || {
                link_clear "$name"
                return 1
        }
}

hosts_loop_attach() {
        local dev
        dev=$(losetup --find --show -- "$1") || return 1
        echo "loop $dev" >>"$HOSTS_RUN/resources"
        echo "$dev"
}

link_clear() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 1
        # "No such file" when there is nothing to delete is fine.
        ip netns exec "vmh-$HOSTS_ID-sw" tc qdisc del dev "p-$name" ingress 2>/dev/null
        ip netns exec "vmh-$HOSTS_ID-sw" tc qdisc del dev "p-$name" root 2>/dev/null
        ip netns exec "vmh-$HOSTS_ID-sw" tc qdisc del dev "i-$name" root 2>/dev/null
        return 0
}

# Unplugging: the switch port goes down, the host's eth0 loses carrier and
# keeps its address and routes, as with a pulled cable.
link_down() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 1
        ip -n "vmh-$HOSTS_ID-sw" link set "p-$name" down
}

link_up() {
        local name
        name=$(_hosts_check_name "${1:-}") || return 1
        ip -n "vmh-$HOSTS_ID-sw" link set "p-$name" up || return 1
        # Carrier comes back at once on a veth; wait until the host sees it.
        wait_until 5 eval "ip -n vmh-$HOSTS_ID-$name -o link show eth0 | grep -q 'state UP'"
}

# ---------------------------------------------------------------------------
# ssh between hosts (for ssh:// destinations and busctl --host)

# One key pair per run, authorized for root on every host; every host's
# root has it, plus a config and known_hosts for all hosts.
_hosts_ssh_init() {
        [ -f "$HOSTS_RUN/ssh/id_ed25519" ] && return 0
        command -v sshd >/dev/null && command -v ssh-keygen >/dev/null || {
                _hosts_err "sshd/ssh-keygen not installed (apt-get install openssh-server)"
                return 1
        }
        mkdir -p "$HOSTS_RUN/ssh" && chmod 0700 "$HOSTS_RUN/ssh" || return 1
        ssh-keygen -q -t ed25519 -N '' -C "vmh-$HOSTS_ID" -f "$HOSTS_RUN/ssh/id_ed25519" || return 1
        ssh-keygen -q -t ed25519 -N '' -C "vmh-$HOSTS_ID-host" -f "$HOSTS_RUN/ssh/host_ed25519" || return 1
        # All hosts share a host key: known_hosts names them all.
        local name known=
        for name in "${HOSTS_NAMES[@]}"; do
                known+="host-$name,$(host_ip "$name") $(cut -d' ' -f1,2 "$HOSTS_RUN/ssh/host_ed25519.pub")"$'\n'
        done
        for name in "${HOSTS_NAMES[@]}"; do
                local d=$HOSTS_RUN/h/$name/root-ssh
                cp "$HOSTS_RUN/ssh/id_ed25519" "$HOSTS_RUN/ssh/id_ed25519.pub" "$d/" || return 1
                cp "$HOSTS_RUN/ssh/id_ed25519.pub" "$d/authorized_keys" || return 1
                printf '%s' "$known" >"$d/known_hosts"
                host_ssh_config >"$d/config"
                chmod 0600 "$d"/*
        done
}

host_ssh_config() {
        cat <<EOF
# vmigrate multi-host test run $HOSTS_ID
Host host-*
        User root
        IdentityFile /root/.ssh/id_ed25519
        IdentitiesOnly yes
        UserKnownHostsFile /root/.ssh/known_hosts
        StrictHostKeyChecking yes
        BatchMode yes
        ConnectTimeout 5
        ServerAliveInterval 5
        ServerAliveCountMax 2
EOF
}

host_start_sshd() {
        local name h
        name=$(_hosts_check_name "${1:-}") || return 1
        h=$HOSTS_RUN/h/$name
        [ -f "$h/sshd.pid-started" ] && return 0
        _hosts_ssh_init || return 1
        cat >"$h/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
HostKey $HOSTS_RUN/ssh/host_ed25519
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile /root/.ssh/authorized_keys
StrictModes no
PidFile none
UseDNS no
LogLevel VERBOSE
EOF
        # -D: stays our child, so it is stopped by pid; -e: log to stderr.
        _hosts_start "$name" "$h/sshd.log" /usr/sbin/sshd -D -e -f "$h/sshd_config"
        touch "$h/sshd.pid-started"
        wait_until 10 eval "ip netns exec vmh-$HOSTS_ID-$name ss -Hltn 'sport = :22' | grep -q LISTEN" || {
                _hosts_err "sshd of host $name does not listen"
                return 1
        }
}

# ---------------------------------------------------------------------------
# Teardown

hosts_dump_logs() {
        local run=${1:-$HOSTS_RUN} f
        [ -n "$run" ] && [ -d "$run/h" ] || return 0
        for f in "$run"/h/*/dbus.log "$run"/h/*/polkitd.log "$run"/h/*/sshd.log; do
                [ -s "$f" ] || continue
                diag "---- ${f#"$run"/h/} ----"
                diag "$(tail -n 200 "$f")"
        done
}

# lib.sh's bail_out dumps its own fixture's logs: make it dump ours.
vm_dump_logs() {
        hosts_dump_logs
}

# _hosts_kill_wait SECONDS PID...: TERM, wait up to SECONDS, then KILL.
_hosts_kill_wait() {
        local deadline=$1 pid alive end
        shift
        [ $# -gt 0 ] || return 0
        kill -TERM "$@" 2>/dev/null
        end=$(($(date +%s%N) + deadline * 1000000000))
        while :; do
                alive=()
                for pid in "$@"; do
                        # A zombie child of ours counts as gone.
                        [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null &&
                                alive+=("$pid")
                done
                [ ${#alive[@]} -eq 0 ] && break
                if [ "$(date +%s%N)" -ge "$end" ]; then
                        kill -KILL "${alive[@]}" 2>/dev/null
                        break
                fi
                sleep 0.02
        done
        # Reap our own children (no-op for the others).
        for pid in "$@"; do
                wait "$pid" 2>/dev/null
        done
        return 0
}

# _hosts_ns_pids INODE...: pids of processes whose network or mount
# namespace is one of these.
_hosts_ns_pids() {
        [ $# -gt 0 ] || return 0
        local pattern
        pattern=$(printf ' %s$|' "$@")
        pattern=${pattern%|}
        # One stat for all processes; races with exiting ones are harmless.
        stat -L -c '%n %i' /proc/[0-9]*/ns/net /proc/[0-9]*/ns/mnt 2>/dev/null |
                grep -E "$pattern" | cut -d/ -f3 | sort -un | grep -vx "$$"
}

# The kernel reuses the inode number of a namespace that is gone: once a
# run has let its namespaces go, another test (a bus test's mount
# namespace, another run's host) may get the same numbers. Two ways to
# tell our processes from theirs:
#
# _hosts_held_inodes RUN_DIR INODE...: those of INODE... that the run
# still holds by its own bind mounts (its /run/netns entries, its ns
# files); while held, a number cannot have been given to anyone else.
_hosts_held_inodes() {
        local run=$1 id f held=()
        shift
        [ $# -gt 0 ] || return 0
        id=${run##*/vmh-}
        id=${id%%.*}
        for f in /run/netns/vmh-"$id"-* "$run"/ns/*.mnt; do
                [ -e "$f" ] && held+=("$(stat -L -c %i "$f" 2>/dev/null)")
        done
        [ ${#held[@]} -gt 0 ] || return 0
        printf '%s\n' "$@" | grep -Fx -f <(printf '%s\n' "${held[@]}")
}

# _hosts_ticks: now, in clock ticks since boot (the unit of a process's
# start time in /proc/PID/stat).
_hosts_ticks() {
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", $1 * hz }' /proc/uptime
}

# _hosts_started_before TICKS PID...: those of PID... that started before
# TICKS. A process in a namespace that reuses one of ours started after
# ours was gone, so after the teardown that let it go began.
_hosts_started_before() {
        local t=$1 p start
        shift
        for p in "$@"; do
                start=$(vm_proc_starttime "$p") || continue # gone meanwhile
                [ "$start" -lt "$t" ] && echo "$p"
        done
        return 0
}

# _hosts_cleanup RUN_DIR: everything the run dir records, in order:
# processes by pid, stray processes in our namespaces, mounts, namespaces,
# the dir. Works from any process (the EXIT trap, or the detached reaper).
_hosts_cleanup() {
        local run=$1 pids=() inodes=() f kind what stray pid start
        [ -n "$run" ] && [ -d "$run" ] || return 0
        [ -f "$run/inodes" ] && mapfile -t inodes < <(_hosts_held_inodes "$run" $(cat "$run/inodes"))

        # 1. What we started, by pid: the daemons first (they may want the
        # bus to say goodbye), then sshd, polkitd and the buses.
        for f in "$run"/h/*/daemon-pids; do
                [ -f "$f" ] && mapfile -t -O "${#pids[@]}" pids < <(vm_live_daemon_pids "$(dirname "$f")")
        done
        _hosts_kill_wait 10 "${pids[@]}"
        pids=()
        if [ -f "$run/pids" ]; then
                while read -r pid start; do
                        vm_same_process "$pid" "$start" && pids+=("$pid")
                done <"$run/pids"
        fi
        _hosts_kill_wait 5 "${pids[@]}"

        # 2. Anything else inside the namespaces we still hold (QEMU, a
        # test's background job, a session of sshd); never a number that
        # may be someone else's now.
        mapfile -t stray < <(_hosts_ns_pids "${inodes[@]}")
        if [ ${#stray[@]} -gt 0 ]; then
                echo "# teardown: stopping ${#stray[@]} more process(es) in the hosts:" \
                        "$(for p in "${stray[@]}"; do printf '%s(%s) ' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)"; done)"
                _hosts_kill_wait 5 "${stray[@]}"
        fi

        if [ -n "${HOSTS_KEEP_LOGS:-}" ]; then
                local d
                for d in "$run"/h/*/; do
                        mkdir -p "$HOSTS_KEEP_LOGS/$(basename "$d")" &&
                                cp "$d"/*.log "$HOSTS_KEEP_LOGS/$(basename "$d")/" 2>/dev/null
                done
        fi

        # 3. Mounts and namespaces, newest first.
        if [ -f "$run/resources" ]; then
                while read -r kind what; do
                        case $kind in
                        nsfile) umount "$what" 2>/dev/null ;;
                        netns) ip netns del "$what" 2>/dev/null ;;
                        mount) umount "$what" 2>/dev/null ;;
                        loop) losetup -d "$what" 2>/dev/null ;;
                        esac
                done < <(tac "$run/resources")
        fi
        # Never rm -rf through a mount that is still there.
        if findmnt -rn -o TARGET | grep -q "^$run/"; then
                echo "# teardown: mounts left under $run; not removing it" >&2
                return 1
        fi
        rm -rf "$run"
}

hosts_teardown() {
        local t0 rc
        [ -n "$HOSTS_RUN" ] || return 0
        t0=$(date +%s%N)
        # Whoever reads our output may be gone (a pipe into head).
        trap '' PIPE
        # Remember how to find remains of this run once its dir is gone.
        _hosts_last_run=$HOSTS_RUN
        _hosts_last_id=$HOSTS_ID
        _hosts_last_inodes=()
        [ -f "$HOSTS_RUN/inodes" ] && mapfile -t _hosts_last_inodes <"$HOSTS_RUN/inodes"
        _hosts_last_ticks=$(_hosts_ticks)
        _hosts_cleanup "$HOSTS_RUN"
        rc=$?
        HOSTS_RUN=
        _hosts_teardown_ms=$((($(date +%s%N) - t0) / 1000000))
        echo "# hosts torn down in ${_hosts_teardown_ms} ms"
        return "$rc"
}

# hosts_leftovers: after hosts_teardown, prints what of the run is still
# there (namespaces, processes in them, the run dir); nothing if clean.
hosts_leftovers() {
        local p cmd
        [ -n "$_hosts_last_id" ] || return 0
        ip netns list 2>/dev/null | grep -E "^vmh-$_hosts_last_id-" | sed 's/^/netns /'
        # Only processes older than the teardown can be ours (see
        # _hosts_held_inodes).
        for p in $(_hosts_started_before "$_hosts_last_ticks" $(_hosts_ns_pids "${_hosts_last_inodes[@]}")); do
                cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue # it exited meanwhile
                echo "process $p $cmd"
        done
        [ -e "$_hosts_last_run" ] && echo "dir $_hosts_last_run"
        findmnt -rn -o TARGET | grep -E "^$_hosts_last_run(/|$)|/vmh-$_hosts_last_id-" | sed 's/^/mount /'
        losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null | grep -F " $_hosts_last_run/" |
                sed 's/^/loop /'
        return 0
}

_hosts_on_exit() {
        local rc=$?
        hosts_teardown
        if [ "$_tap_done" -ne 1 ] && [ -n "$_tap_planned$_tap_n" ] && [ "$_tap_n" -gt 0 ]; then
                echo "# test program ended early (exit status $rc)"
                rc=1
        fi
        exit "$rc"
}

_hosts_on_term() {
        trap - EXIT
        if [ -n "$HOSTS_RUN" ]; then
                echo "# SIGTERM: tearing down $HOSTS_RUN in the background"
                setsid -f /bin/bash "$_hosts_lib" --reap "$HOSTS_RUN" \
                        </dev/null >>"/tmp/vmh-reap-$HOSTS_ID.log" 2>&1
                # Until the reaper has its own session, a SIGKILL to our
                # process group would take it too: wait for its sign.
                local i
                for ((i = 0; i < 40; i++)); do
                        [ -e "$HOSTS_RUN/reaper" ] && break
                        sleep 0.01
                done
        fi
        exit 143
}

# hosts_check_daemon_logs: stops every host's vmigrated (so that
# LeakSanitizer and valgrind report), then one TAP test: no sanitizer or
# valgrind report in any host's log. Must run before the teardown.
hosts_check_daemon_logs() {
        local name pids=() f reports
        [ -n "$HOSTS_RUN" ] || { _hosts_err "hosts_check_daemon_logs: no hosts (torn down already?)"; return 1; }
        for f in "$HOSTS_RUN"/h/*/daemon-pids; do
                [ -f "$f" ] && mapfile -t -O "${#pids[@]}" pids < <(vm_live_daemon_pids "$(dirname "$f")")
        done
        _hosts_kill_wait 10 "${pids[@]}"
        reports=$(for name in "${HOSTS_NAMES[@]}"; do
                grep -E -A20 'AddressSanitizer|LeakSanitizer|runtime error:|==[0-9]+== (Invalid|Conditional|Syscall param|Mismatched)|definitely lost: [1-9]' \
                        "$HOSTS_RUN/h/$name/dbus.log" | sed "s/^/$name: /"
        done)
        is "$reports" "" "no sanitizer or valgrind reports from any host's daemon"
}

# hosts_finish: the daemon log check (if the hosts are still up), the plan
# if none was given, exit with the TAP result (the EXIT trap tears down).
hosts_finish() {
        [ -n "$HOSTS_RUN" ] && hosts_check_daemon_logs
        _tap_conclude && exit 0
        hosts_dump_logs
        exit 1
}

# ---------------------------------------------------------------------------
# Executed as a program: lib-hosts.sh --reap RUN_DIR (the SIGTERM path;
# also usable by hand after a SIGKILLed run).
if [ "${1:-}" = --reap ] && [ "${BASH_SOURCE[0]}" = "$0" ]; then
        [ $# -eq 2 ] && [[ $2 =~ ^/tmp/vmh-[0-9a-f]{4}\.[A-Za-z0-9]{4}$ ]] || {
                echo "usage: $0 --reap /tmp/vmh-ID.XXXX" >&2
                exit 2
        }
        echo "$$" >"$2/reaper"
        # Let the test's shell exit first (it may still hold children).
        owner=$(cat "$2/owner" 2>/dev/null)
        for _ in $(seq 100); do
                [ -n "$owner" ] && [ -e "/proc/$owner" ] || break
                sleep 0.05
        done
        _hosts_cleanup "$2"
        exit $?
fi
