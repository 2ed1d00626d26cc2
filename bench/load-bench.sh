#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A migration while many clients read its job:
#
#     bench/load-bench.sh [--guest test|tcg] [--rounds 5] [--clients 100] [--hz 10]
#                         [--seconds 6] [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh), a persistent domain on
# host-a migrated to host-b with option bandwidth set so that the copy
# takes about --seconds, then back:
#   test  a test-backend (simulated) domain of 1 GiB: the copy is the
#         daemon's own work, a timer every 50 ms on its event loop, so a
#         daemon slowed by the clients shows directly in the wall time;
#   tcg   the test guest (256 MiB, a 192 MiB area written once, then idle;
#         TCG) on the qemu backend: the copy is QEMU's, the daemon drives
#         it (QMP events, a query-migrate poll every 100 ms, Prepare,
#         Finish, Confirm), and the clients' own CPU time competes with
#         the QEMUs on this machine's cores.
# Per round one migration unloaded and one loaded, the order alternating.
# Loaded: tests/hosts/load-clients.py, one Python process, --clients
# separate bus connections to host-a's bus (distinct unique names), each
# polling Domain.GetJobStats and Properties.GetAll on the job at --hz,
# from Migrate's reply (the job exists) to the job's Finished signal; one
# more connection calls Manager.ListDomains in a loop from 1 s before
# Migrate (the unloaded run waits the same second, idle).
#
# Wall time: from the Migrate call to the Finished signal. Reports the
# ratio loaded / unloaded per round and its median (the target: within
# 1.05), the latency of every call (max and p99; the target: none over
# 100 ms), and how late the clients' own timers fired (a busy client
# process inflates the latencies it measures). With --guest test the
# loaded run comes out ~1.3% faster, not slower: the simulated stream
# re-arms its 50 ms timer after each tick with 1 ms accuracy, so an idle
# loop wakes up to 1 ms late ~120 times, while a loop kept awake by the
# clients runs each tick on time (see README). Exit status 0 whatever the
# figures (a measurement), 1 if a migration failed or a call failed or
# went unanswered, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

guest=test rounds=5 clients=100 hz=10 seconds=6 build=$top/build keep_logs= do_build=1
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --guest) guest=${2:-} ;;
        --rounds) rounds=${2:-} ;;
        --clients) clients=${2:-} ;;
        --hz) hz=${2:-} ;;
        --seconds) seconds=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "load-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "load-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $guest =~ ^(test|tcg)$ ]] || { echo "load-bench: --guest '$guest': test or tcg" >&2; exit 2; }
[[ $rounds =~ ^[1-9]$|^[1-4][0-9]$|^50$ ]] || { echo "load-bench: --rounds '$rounds': 1 to 50" >&2; exit 2; }
[[ $clients =~ ^[1-9][0-9]{0,2}$ ]] || { echo "load-bench: --clients '$clients': 1 to 999" >&2; exit 2; }
[[ $hz =~ ^[1-9][0-9]?$ ]] || { echo "load-bench: --hz '$hz': 1 to 99" >&2; exit 2; }
[[ $seconds =~ ^[1-9][0-9]?$ ]] || { echo "load-bench: --seconds '$seconds': 1 to 99" >&2; exit 2; }
if [ -n "$keep_logs" ]; then
        mkdir -p "$keep_logs" || { echo "load-bench: cannot create --keep-logs '$keep_logs'" >&2; exit 2; }
        keep_logs=$(readlink -f "$keep_logs")
fi

bench=load-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"
$py -c 'import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio' 2>/dev/null ||
        bench_fail "python3-gi is not installed (tools/install-deps.sh)"

t_start=$SECONDS
uuid=b3e1c0de-0000-4000-8000-00000010adbe
if [ "$guest" = test ]; then
        mig_setup a b
        mem_mib=1024
        # The copy of an idle simulated guest takes memory / bandwidth.
        bandwidth=$((mem_mib * 1048576 / seconds))
        xml=$(mig_test_xml load "$mem_mib" 0 "$uuid")
        what="a persistent 1 GiB test-backend domain"
else
        mig_setup --qemu a b
        # What is sent is the written area (the rest is zero pages).
        bandwidth=$((192 * 1048576 / seconds))
        xml=$(guest_domain_xml load qemu "vmtest.mem=192M vmtest.rate=0" 256 "$uuid")
        what="the persistent TCG test guest (256 MiB, 192 MiB written)"
fi
bus_a=$(host_bus_address a)
bus_b=$(host_bus_address b)
# Both daemons up (bus activation) before anything is timed.
out=$(bench_call "$bus_b" /org/vmigrate/Migrate1 Manager ListDomains 2>&1) || bench_fail "host-b's daemon: $out"
# Persistent: a transient domain leaves the source's bus once migrated,
# and a poll sent just before Finished reaches the clients would get
# UnknownObject.
out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager DefineXML s "$xml" 2>&1) ||
        bench_fail "DefineXML on host-a: $out"
path=$(bench_unquote "$out")
out=$(bench_call "$bus_a" "$path" Domain Start 2>&1) || bench_fail "Start on host-a: $out"
if [ "$guest" = tcg ]; then
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) ||
                bench_fail "no heartbeat from the guest on host-a: $out"
fi

bench_describe_machine
echo "# $rounds round(s): $what, host-a -> host-b at $bandwidth B/s (~$seconds s), unloaded and loaded"
echo "# loaded: $clients connections polling GetJobStats + job GetAll at $hz Hz each, one ListDomains loop; load average at start: $(bench_load)"

out_file=$(mktemp)
$py "$top/tests/hosts/load-clients.py" --source "$bus_a" --source-uri "$(mig_dest a)" --dest "$bus_b" \
        --dest-uri "$(mig_dest b)" --domain "$path" --clients "$clients" --hz "$hz" --rounds "$rounds" \
        --bandwidth "$bandwidth" | tee "$out_file" | grep -v '^{'
rc=${PIPESTATUS[0]}
[ -n "$keep_logs" ] && cp "$out_file" "$keep_logs/load-clients.out"
summary=$(tail -n 1 "$out_file")
rm -f "$out_file"
for h in a b; do
        host_daemon_pid "$h" >/dev/null || { echo "# FAILED: vmigrated on host-$h is gone"; rc=1; }
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
$py -c '
import json, statistics, sys
s = json.loads(sys.argv[1])
walls = lambda loaded: [m["wall-ms"] for m in s["migrations"] if m["loaded"] == loaded and "wall-ms" in m]
if s["ratios"]:
    med = statistics.median(s["ratios"])
    print("wall ms unloaded %s; loaded %s" % (" ".join(map(str, walls(False))), " ".join(map(str, walls(True)))))
    print("ratio loaded / unloaded per round: %s; median %.3f (%s the 1.05 target)"
          % (" ".join("%.3f" % r for r in s["ratios"]), med, "meets" if med <= 1.05 else "above"))
print("%d connections (%d distinct unique names) + ListDomains; %d calls, %d errors, %d unanswered"
      % (s["clients"], s["unique-names"] - 1, s["calls"], s["errors"], s["unanswered"]))
print("latency ms: max %s, p99 %s; %d call(s) over 100 ms (the target: none)" % (s["max-ms"], s["p99-ms"], s["over-100ms"]))
for m, v in s["methods"].items():
    print("  %-12s %7d calls, max %s, p99 %s" % (m, v["calls"], v["max-ms"], v["p99-ms"]))
print("client timers late: max %s ms, p99 %s ms" % (s["tick-late-max-ms"], s["tick-late-p99-ms"]))
for e in s["first-errors"]:
    print("  error:", e)
' "$summary" || { echo "# no summary from load-clients.py: $summary"; rc=1; }
[ "$rc" -eq 0 ] || echo "# FAILED: a migration or a call failed (see above)"
exit "$rc"
