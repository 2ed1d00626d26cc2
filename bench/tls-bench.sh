#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What options 'tls' and 'tunnelled' cost: the same migration through
# vmigrate plain, with TLS and tunnelled through ssh, on the same hosts,
# link and guest, in one run:
#
#     bench/tls-bench.sh [--rounds N] [--rate 1gbit|unshaped] [--build-dir DIR] [--no-build]
#
# Two test hosts (tests/hosts/lib-hosts.sh) with credentials from one CA
# made by tools/make-tls-certs.sh (--tls-dir on both daemons) and a real
# sshd each, joined by a link shaped to --rate (or not shaped at all). Per
# round the test guest (256 MiB, rewriting a 192 MiB area: at a quarter of
# a shaped link's rate, or 20000 pages/s on an unshaped one; TCG) is
# migrated host-a -> host-b with Domain.Migrate {tls=false, wait}
# ("plain", QEMU to QEMU over TCP), {tls, wait}, and {tunnelled, wait} to ssh://host-b (the
# stream inside an ssh session, vmigrate-tunnel on host-b), the order
# rotating each round, and its memory is verified on host-b after each.
#
# For each: wall time (the busctl call, start to reply), data sent and
# passes (host-b's GetJobStats), throughput (data sent / wall time), and the
# CPU time the whole machine spent during the call (busy jiffies of
# /proc/stat: on an otherwise quiet machine, the two QEMUs', the daemons'
# and ssh's work). Prints the median ratios tls / plain and tunnel /
# plain. Exit status 0 whatever the ratios, 1 if a migration or a
# verification failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=3 rate=1gbit build=$top/build do_build=1 warmup=2
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --rate) rate=${2:-} ;;
        --build-dir) build=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "tls-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "tls-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "tls-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $rate =~ ^([1-9][0-9]*(mbit|gbit)|unshaped)$ ]] ||
        { echo "tls-bench: --rate '$rate': e.g. 1gbit, 500mbit or unshaped" >&2; exit 2; }

bench=tls-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" ""
bench_call_timeout=300
command -v certtool >/dev/null || bench_fail "certtool not installed (package gnutls-bin)"

uuid=b3e1c0de-0000-4000-8000-0000000071e5
failures=0
t_start=$SECONDS
HOSTS_DAEMON_ARGS="--tls-dir=@HOSTDIR@/pki --tunnel-command=$build/service/vmigrate-tunnel"
if [ "$rate" = unshaped ]; then
        bench_hosts 10gbit
        link_clear a && link_clear b || bail_out "cannot unshape the link"
        write_rate=20000
else
        bench_hosts "$rate"
        write_rate=$(($(hosts_rate_bps "$rate") / 8 / 4096 / 4))
fi
"$top/tools/make-tls-certs.sh" "$bench_dir/pki" "host-a=$(host_ip a)" "host-b=$(host_ip b)" >/dev/null ||
        bail_out "cannot make the credentials"
for h in a b; do
        cp -a "$bench_dir/pki/host-$h" "$(host_path "$h" dir)/pki" || bail_out "cannot install host-$h's credentials"
        host_start_sshd "$h" || bail_out "no sshd on host-$h"
done

# Busy jiffies of the whole machine (all but idle and iowait).
busy_jiffies() {
        awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# one MODE: a migration with MODE (plain, tls or tunnel); sets o_* vars.
one() {
        local mode=$1 out p t0 t1 j0 j1 stats rc to=$dest
        o_ok=0 o_wall= o_sent= o_passes= o_cpu= o_err=
        xml=$(guest_domain_xml bench qemu "vmtest.mem=192M vmtest.rate=$write_rate" 256 "$uuid")
        out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager CreateXML s "$xml" 2>&1) ||
                { o_err="CreateXML on host-a: $out"; return 1; }
        p=$(bench_unquote "$out")
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) ||
                { o_err="no heartbeat on host-a: $out"; bench_destroy a "$p"; return 1; }
        sleep "$warmup"
        # Plain must say so: with credentials on both hosts TLS is the default.
        local opts=(2 wait b true tls b false)
        [ "$mode" = tls ] && opts=(2 wait b true tls b true)
        [ "$mode" = tunnel ] && opts=(2 wait b true tunnelled b true) to=ssh://host-b
        j0=$(busy_jiffies)
        t0=$(bench_now_ns)
        out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$to" "${opts[@]}" 2>&1)
        rc=$?
        t1=$(bench_now_ns)
        j1=$(busy_jiffies)
        if [ $rc -ne 0 ]; then
                o_err="Migrate: $out"
                bench_destroy a "$p"
                return 1
        fi
        o_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e6 }')
        o_cpu=$(awk -v j=$((j1 - j0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", j / hz }')
        stats=$(bench_call "$bus_b" "$p" Domain GetJobStats --json=short 2>&1)
        read -r o_sent o_passes o_enc < <($py -c '
import json, sys
d = json.loads(sys.argv[1])["data"][0]
g = lambda k: d.get(k, {}).get("data", 0)
print("%.1f" % (g("data-processed") / 1048576), g("iteration"), g("encryption"))
' "$stats" 2>/dev/null) || o_err="GetJobStats on host-b: $stats"
        [ "$o_enc" = "${mode/plain/none}" ] || o_err="host-b says encryption '$o_enc' for a $mode migration"
        out=$($py "$guestctl" --socket "$(bench_serial b)" --timeout 120 verify 2>&1) ||
                o_err=${o_err:-"the memory of the guest on host-b: $out"}
        bench_destroy b "$p" || o_err="${o_err:-Destroy on host-b failed}"
        [ -z "$o_err" ] && o_ok=1
        [ "$o_ok" = 1 ]
}

bench_describe_machine
echo "# link host-a <-> host-b: $rate, $rounds round(s), guest writing $write_rate pages/s ($(awk -v r=$write_rate 'BEGIN { printf "%.0f", r * 4096 / 1e6 }') MB/s), TCG, warm-up ${warmup} s"
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"
declare -A walls=() thrus=() cpus=()
modes=(plain tls tunnel)
for ((r = 1; r <= rounds; r++)); do
        # Rotate the order: whatever warms up or slows down over a round
        # falls on each mode in turn.
        order=()
        for ((i = 0; i < ${#modes[@]}; i++)); do
                order+=("${modes[$(((r - 1 + i) % ${#modes[@]}))]}")
        done
        declare -A wall=() sent=() cpu=() passes=()
        for m in "${order[@]}"; do
                if one "$m"; then
                        wall[$m]=$o_wall sent[$m]=$o_sent cpu[$m]=$o_cpu passes[$m]=$o_passes
                else
                        failures=$((failures + 1))
                        echo "# round $r $m FAILED: $o_err"
                fi
        done
        printf '\n-- round %d/%d (%s)\n%-6s %9s %9s %7s %12s %9s\n' "$r" "$rounds" "${order[*]}" mode "wall ms" \
                "sent MiB" passes "MiB/s" "CPU s"
        for m in "${modes[@]}"; do
                [ -n "${wall[$m]:-}" ] || continue
                printf '%-6s %9s %9s %7s %12s %9s\n' "$m" "${wall[$m]}" "${sent[$m]}" "${passes[$m]}" \
                        "$(awk -v s="${sent[$m]}" -v w="${wall[$m]}" 'BEGIN { printf "%.1f", s / (w / 1000) }')" "${cpu[$m]}"
        done
        [ -n "${wall[plain]:-}" ] || continue
        for m in tls tunnel; do
                [ -n "${wall[$m]:-}" ] || continue
                walls[$m]+="$(awk -v t="${wall[$m]}" -v p="${wall[plain]}" 'BEGIN { printf "%.3f", t / p }') "
                thrus[$m]+="$(awk -v ts="${sent[$m]}" -v tw="${wall[$m]}" -v ps="${sent[plain]}" -v pw="${wall[plain]}" \
                        'BEGIN { printf "%.3f", (ts / tw) / (ps / pw) }') "
                cpus[$m]+="$(awk -v t="${cpu[$m]}" -v p="${cpu[plain]}" 'BEGIN { printf "%.3f", (p > 0 ? t / p : 0) }') "
        done
        echo "ratios to plain: tls wall/throughput/CPU $(awk '{print $NF}' <<<"${walls[tls]:-}")/$(awk '{print $NF}' <<<"${thrus[tls]:-}")/$(awk '{print $NF}' <<<"${cpus[tls]:-}"), tunnel $(awk '{print $NF}' <<<"${walls[tunnel]:-}")/$(awk '{print $NF}' <<<"${thrus[tunnel]:-}")/$(awk '{print $NF}' <<<"${cpus[tunnel]:-}")"
        unset wall sent cpu passes
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
for m in tls tunnel; do
        if [ -n "${walls[$m]:-}" ]; then
                n=$(wc -w <<<"${walls[$m]}")
                echo "$rate: median ratios $m / plain over $n round(s): wall $(tr ' ' '\n' <<<"${walls[$m]}" | grep . | bench_median %.3f), throughput $(tr ' ' '\n' <<<"${thrus[$m]}" | grep . | bench_median %.3f), machine CPU time $(tr ' ' '\n' <<<"${cpus[$m]}" | grep . | bench_median %.3f)"
        else
                echo "$rate: no round completed both $m and plain"
        fi
done
[ "$failures" -eq 0 ] || echo "$failures migration(s) or verification(s) failed"
[ "$failures" -eq 0 ]
exit $?
