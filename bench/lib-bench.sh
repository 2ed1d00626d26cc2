# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # variables set for, or by, the bench that sources it
#
# What the benchmarks share: the checks and the build before anything is
# measured, and two test hosts a and b from the tests' own fixtures
# (tests/hosts/lib-hosts.sh, lib-migrate.sh, tests/guest/lib-guest.sh)
# joined by a shaped link, with the test guest. Source it once the bench
# has read its options, with $bench set to its name (for messages); then
#
#   bench_prepare BUILD-DIR DO-BUILD KEEP-LOGS
#   bench_hosts RATE
#
# Functions:
#   bench_fail MESSAGE        "$bench: MESSAGE" on stderr, exit status 2
#   bench_prepare BUILD-DIR DO-BUILD KEEP-LOGS
#                             root, QEMU, vmigrated and the test guest built
#                             in BUILD-DIR (built first if DO-BUILD is 1);
#                             sets build (absolute), kernel, guestctl, py;
#                             KEEP-LOGS (a dir, or empty) keeps the hosts'
#                             logs
#   bench_hosts RATE          hosts a and b, both daemons up with their qemu
#                             backend, the link shaped to RATE; sets MIG_KVM,
#                             bench_dir, bus_a, bus_b, dest (host-b's bus as
#                             a destination) and bench_raw_args (what the raw
#                             runners in bench/ take to run QEMU in the hosts)
#   bench_call ADDRESS PATH IFACE METHOD ARGS...
#                             busctl call on that bus, IFACE one of
#                             org.vmigrate.Migrate1's (Manager, Domain, Job);
#                             timeout $bench_call_timeout s
#   bench_prop ADDRESS PATH IFACE PROP   the value, strings without quotes
#   bench_unquote REPLY       busctl's `TYPE VALUE` -> the value, unquoted
#   bench_serial HOST         the socket of the guest $uuid's serial port
#                             on HOST, from the root namespace
#   bench_destroy HOST PATH   Destroy on HOST, then waits (20 s at most) for
#                             the guest $uuid's QEMU run dir there to go;
#                             the status of Destroy
#   bench_now_ns              nanoseconds since the epoch
#   bench_median FORMAT       the median of numbers on stdin ("-" if none),
#                             printf FORMAT when it falls between two
#   bench_describe_machine    the "# vmigrate ..., QEMU ..." and "# N CPUs"
#                             lines
#   bench_load                the load average (1, 5, 15 min)

_bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/hosts/lib-hosts.sh
. "$_bench_top/tests/hosts/lib-hosts.sh"
# shellcheck source=../tests/hosts/lib-migrate.sh
. "$_bench_top/tests/hosts/lib-migrate.sh"

# A missing prerequisite means nothing was measured: say so, exit 2.
skip_all() {
        bench_fail "cannot run: $*"
}

bench_fail() {
        echo "$bench: $*" >&2
        exit 2
}

bench_call_timeout=600

bench_prepare() {
        local f
        [ "$(id -u)" -eq 0 ] || bench_fail "needs root (network namespaces, QEMU): sudo $0"
        command -v qemu-system-x86_64 >/dev/null ||
                bench_fail "qemu-system-x86_64 is missing: run tools/install-deps.sh"
        build=$(readlink -f "$1")
        if [ "$2" = 1 ]; then
                if [ ! -f "$build/build.ninja" ]; then
                        meson setup "$build" >/dev/null || bench_fail "meson setup $build failed"
                fi
                # Only what the benchmarks run.
                ninja -C "$build" service/vmigrated tests/guest/vmigrate-test-guest.elf >/dev/null ||
                        bench_fail "building vmigrated and the test guest in $build failed"
        fi
        for f in service/vmigrated tests/guest/vmigrate-test-guest.elf; do
                [ -e "$build/$f" ] || bench_fail "$build/$f is not built"
        done
        export VMIGRATE_BUILD_ROOT=$build VMIGRATE_SOURCE_ROOT=$_bench_top
        if [ -n "$3" ]; then
                export HOSTS_KEEP_LOGS=$3
        fi
        py=/usr/bin/python3
        kernel=$build/tests/guest/vmigrate-test-guest.elf
        guestctl=$_bench_top/tests/guest/guestctl.py
        # What lib-migrate.sh and lib-guest.sh use.
        VMTEST_KERNEL=$kernel
        VMTEST_GUESTCTL=$guestctl
}

bench_hosts() {
        local rate=$1 h
        # Both daemons up (bus activation probes QEMU) before anything is
        # timed.
        mig_setup --qemu a b
        bench_dir=$HOSTS_RUN/bench
        mkdir -p "$bench_dir"
        link_shape a --rate "$rate" && link_shape b --rate "$rate" || bail_out "cannot shape the link to $rate"
        # The raw QEMUs run inside the hosts like vmigrated's: a command
        # prefix entering a host's namespaces.
        for h in a b; do
                printf '#!/bin/sh\nexec %s "$@"\n' "$(host_enter "$h")" >"$bench_dir/in-$h"
                chmod +x "$bench_dir/in-$h"
        done
        bench_raw_args=(--argv-from "$bench_dir/argv.log" --workdir "$bench_dir/raw"
                --src-exec "$bench_dir/in-a" --dst-exec "$bench_dir/in-b" --dest-host host-b --port 49200
                --guestctl "$guestctl")
        bus_a=$(host_bus_address a)
        bus_b=$(host_bus_address b)
        dest=$(mig_dest b)
}

bench_call() {
        local addr=$1 path=$2 iface=$3
        shift 3
        busctl --no-pager --address="$addr" --timeout="$bench_call_timeout" call org.vmigrate.Migrate1 "$path" \
                "org.vmigrate.Migrate1.$iface" "$@"
}

bench_prop() {
        local v
        v=$(busctl --no-pager --address="$1" get-property org.vmigrate.Migrate1 "$2" "org.vmigrate.Migrate1.$3" "$4") ||
                return 1
        bench_unquote "$v"
}

bench_unquote() {
        local v=${1#* }
        v=${v#\"}
        echo "${v%\"}"
}

bench_serial() {
        echo "$(host_path "$1" runtime)/qemu/$uuid/serial0.sock"
}

bench_destroy() {
        local rc
        bench_call "$(host_bus_address "$1")" "$2" Domain Destroy >/dev/null 2>&1
        rc=$?
        wait_until 20 eval "! test -e '$(host_path "$1" runtime)/qemu/$uuid'"
        return "$rc"
}

bench_now_ns() {
        date +%s%N
}

bench_median() {
        sort -g | awk -v f="$1" '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf f "\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

bench_describe_machine() {
        echo "# vmigrate $(bench_prop "$bus_a" /org/vmigrate/Migrate1 Manager Version), $(qemu-system-x86_64 --version | head -1)"
        echo "# $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
}

bench_load() {
        cut -d' ' -f1-3 /proc/loadavg
}
