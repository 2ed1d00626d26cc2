#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The main job, on a fresh Debian 12 machine as root:
#
#     tools/demo.sh [--build-dir DIR] [--no-build]
#
# Installs what is missing, builds, then makes two test hosts on this
# machine (tests/hosts/lib-hosts.sh: network namespaces host-a and host-b,
# each with its own system bus, polkitd and vmigrated, joined by a link
# shaped to 1 Gbit/s) and migrates the project's test guest live from one
# to the other with vmigratectl:
#
#   1. define and start the test guest on host-a; it keeps rewriting its
#      memory at a set rate, so the migration has real work to do (TCG: a
#      guest that writes memory at a set rate needs TCG here, nested KVM
#      cannot run it; on a machine where KVM can, it says so and uses KVM);
#   2. vmigratectl list on both hosts; the guest checks every page of its
#      memory on host-a;
#   3. vmigratectl migrate demo <host-b's bus> inside host-a, with its
#      progress bar (plain lines when the output is not a terminal);
#   4. vmigratectl list on both hosts: the guest runs on host-b only;
#   5. the guest checks every page of its memory on host-b (VERIFY OK means
#      not one page was lost, torn or stale);
#   6. the final statistics (vmigratectl job-status: total time, downtime,
#      data sent, passes).
#
# Each step is checked and reported (ok / not ok); the exit status is 0
# only if all of them passed. Everything is torn down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

build=$top/build do_build=1
while [ $# -gt 0 ]; do
        case $1 in
        --build-dir)
                [ $# -ge 2 ] || { echo "demo: --build-dir needs a directory" >&2; exit 2; }
                build=$2
                shift 2
                ;;
        --no-build) do_build=0; shift ;;
        -h | --help) sed -n '3,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown option '$1' (--build-dir DIR, --no-build)" >&2; exit 2 ;;
        esac
done

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (packages, network namespaces, QEMU): sudo $0" >&2; exit 1; }
if [ "$do_build" = 1 ]; then
        tools/install-deps.sh
        [[ -f $build/build.ninja ]] || meson setup "$build"
        ninja -C "$build"
fi
build=$(readlink -f "$build")

export VMIGRATE_BUILD_ROOT=$build VMIGRATE_SOURCE_ROOT=$top
# The test hosts (lib-hosts.sh) and the host tests' helpers for the test
# guest (lib-migrate.sh: its domain XML, the KVM probe, guestctl in a host).
# shellcheck source=../tests/hosts/lib-hosts.sh
source tests/hosts/lib-hosts.sh
# shellcheck source=../tests/hosts/lib-migrate.sh
source tests/hosts/lib-migrate.sh
set +e
# A missing prerequisite is a failed demo, not a skipped test.
skip_all() {
        echo "demo: cannot run: $*" >&2
        exit 1
}
t_demo=$(date +%s%N)

ctl=$build/client/vmigratectl
VMTEST_GUESTCTL=$top/tests/guest/guestctl.py
VMTEST_KERNEL=$build/tests/guest/vmigrate-test-guest.elf
py=/usr/bin/python3
for f in "$ctl" "$VMTEST_KERNEL" "$build/service/vmigrated"; do
        [ -e "$f" ] || { echo "demo: $f is not built" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "demo: qemu-system-x86_64 is missing" >&2; exit 1; }

# The link between the hosts and the guest's write rate: half the link.
rate=1gbit
rate_pages=15000 # 4 KiB pages/s = 61 MB/s, about half of 1 Gbit/s

mig_setup --qemu a b
link_shape a --rate "$rate" && link_shape b --rate "$rate"
ok $? "host-a and host-b joined by a link shaped to $rate"

# KVM only when it can run a guest that writes memory: on nested KVM
# (these machines) such a guest crawls, so probe it rather than assume.
accel=tcg type=qemu
why="a guest that writes memory at a set rate needs TCG here: nested KVM cannot run it"
if [ "$MIG_KVM" = 0 ]; then
        why="/dev/kvm is not usable"
elif ! grep -q '^flags.* hypervisor' /proc/cpuinfo; then
        accel=kvm type=kvm
        why="/dev/kvm is usable and this machine is not itself a VM"
fi
diag "accel: $accel ($why)"

xml=$HOSTS_RUN/demo.xml
guest_domain_xml demo "$type" "vmtest.mem=96M vmtest.rate=$rate_pages" 128 >"$xml"
dest=$(mig_dest b)

# step HOST ARGS...: echo and run vmigratectl inside HOST.
step() {
        local h=$1
        shift
        echo
        echo "host-$h\$ vmigratectl $*"
        host_exec "$h" "$ctl" "$@"
}

domain_names() { # HOST: the names of its running domains
        host_exec "$1" "$ctl" --json list 2>/dev/null |
                $py -c 'import json, sys; print(" ".join(d["name"] for d in json.load(sys.stdin)))'
}

guest() { # HOST SECONDS CMD...: guestctl on the demo guest's serial port in HOST
        local h=$1 secs=$2 uuid
        shift 2
        uuid=$(host_exec "$h" "$ctl" --json status demo 2>/dev/null |
                $py -c 'import json, sys; print(json.load(sys.stdin)["uuid"])' 2>/dev/null) || return 2
        MIG_GUEST_TIMEOUT=$secs mig_guest "$h" "$uuid" "$@"
}

step a define "$xml"
ok $? "the demo guest is defined on host-a"
step a start demo
ok $? "the demo guest started on host-a under $accel"
out=$(guest a 60 wait-heartbeat)
ok $? "the guest's heartbeat arrives on host-a's serial port: $out"
out=$(guest a 30 status)
like "$out" "rate=$rate_pages" "the guest rewrites its memory at $rate_pages pages/s: $out"
written_before=$(sed -n -E 's/.* written=([0-9]+).*/\1/p' <<<"$out")
step a list
step b list
is "$(domain_names a)/$(domain_names b)" "demo/" "the guest runs on host-a, not on host-b"
out=$(guest a 120 verify)
like "$out" '^VERIFY OK' "the guest verifies every page of its memory on host-a: $out"

t0=$(date +%s%N)
step a migrate demo "$dest"
rc=$?
t1=$(date +%s%N)
ok $rc "vmigratectl migrate: demo moved live from host-a to host-b in $(((t1 - t0) / 1000000)) ms"

step a list --all
step b list
is "$(domain_names a)/$(domain_names b)" "/demo" "the guest runs on host-b, not on host-a"
out=$(guest b 30 status)
written_after=$(sed -n -E 's/.* written=([0-9]+).*/\1/p' <<<"$out")
ok "[ '${written_after:-0}' -gt '${written_before:-0}' ]" \
        "the guest kept running through the move: it answers on host-b and has written more pages ($written_before before, $written_after now)"
out=$(guest b 120 verify)
like "$out" '^VERIFY OK' "the guest verifies every page of its memory on host-b: $out"

step a job-status demo
ok $? "the final statistics of the migration, as host-a saw it"
stats=$(host_exec a "$ctl" --json job-status demo 2>&1)
summary=$($py -c '
import json, sys
s = json.loads(sys.argv[1])
print("{} {}, total {} ms, downtime {} ms, {:.1f} MiB sent, {} passes".format(
    s["kind"], s["phase"], s["elapsed-ms"], s["downtime-ms"], s["data-processed"] / 1048576, s["iteration"]))
' "$stats" 2>&1)
like "$summary" '^migration-out completed, ' "the migration completed: $summary"

step b destroy demo
ok $? "the demo guest is stopped on host-b"
diag "demo finished in $((($(date +%s%N) - t_demo) / 1000000)) ms after the build"
hosts_finish
