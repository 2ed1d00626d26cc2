#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What parallel-connections + zstd buys on a guest whose memory compresses
# well (issue 13: effective memory throughput >= 2x the link rate):
#
#     bench/compression-bench.sh [--rounds N] [--rate 1gbit] [--mem 512] [--write-pct 15]
#                                      [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh) joined by a link shaped to
# --rate. The TCG test guest (--mem MiB; its test area is all of its free
# RAM, all of it the working set) runs with vmtest.compressible=1: every
# page is its header and a 32-byte pattern repeated (~50-100x with zstd),
# and it rewrites pages at --write-pct % of the link rate, so that plain
# pre-copy converges too. Per round, from host-a to host-b, the order
# rotating each round:
#
#   plain      Domain.Migrate {wait: true}
#   zstd       Domain.Migrate {parallel-connections: 4, compression: zstd,
#              wait: true}
#   raw-zstd   the floor: bench/raw-qmp-migrate.py --multifd-channels 4
#              --multifd-compression zstd, the QEMU command line vmigrated
#              used for this guest, driven by hand over QMP with the same
#              capabilities and parameters as vmigrate's backend sets.
#
# After each the guest verifies every page on host-b (VERIFY OK).
#
# Figures, per migration:
#   wall       vmigrate: the busctl call, start to reply; raw: spawning the
#              destination QEMU to the source QEMU's exit (as in
#              migrate-bench.sh).
#   stream     the memory stream: from the source QEMU being set up for the
#              migration (migrate-set-capabilities, -parameters, migrate) to
#              its report that the stream completed, downtime included.
#              vmigrate: the source job's phase "perform" to "finish"
#              (phase-log.py on host-a's bus); raw: raw-qmp-migrate.py's
#              stream-ms (the same QMP steps, timed by the script).
#   sent       RAM bytes QEMU put on the wire (query-migrate's
#              ram.transferred: after compression; vmigrate: GetJobStats
#              data-processed on host-b), and sent / guest RAM.
#   effective  guest RAM (--mem MiB, 2^20 bytes each) / stream time, in
#              Gbit/s (10^9 bits/s): how fast the guest's memory moved
#              as the guest sees it, whatever crossed the wire.
#   x link     effective / --rate (tc's gbit and mbit are 10^9 and 10^6
#              bits/s). Target for zstd: >= 2.
#
# Exit status 0 whatever the figures (a measurement), 1 if a migration or
# a verification failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=3 rate=1gbit mem=512 pct=15 build=$top/build keep_logs= do_build=1 warmup=2 channels=4
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --rate) rate=${2:-} ;;
        --mem) mem=${2:-} ;;
        --write-pct) pct=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "compression-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "compression-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "compression-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] ||
        { echo "compression-bench: --rate '$rate': e.g. 1gbit or 500mbit" >&2; exit 2; }
[[ $mem =~ ^[1-9][0-9]*$ ]] && [ "$mem" -ge 32 ] && [ "$mem" -le 2048 ] ||
        { echo "compression-bench: --mem '$mem': MiB, 32 to 2048" >&2; exit 2; }
[[ $pct =~ ^[0-9]+$ ]] && [ "$pct" -le 100 ] ||
        { echo "compression-bench: --write-pct '$pct': 0 to 100 (% of the link rate)" >&2; exit 2; }

bench=compression-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"
bench_call_timeout=300

raw=$top/bench/raw-qmp-migrate.py
uuid=b3e1c0de-0000-4000-8000-0000000025d1
failures=0
t_start=$SECONDS
rate_bps=$(hosts_rate_bps "$rate")
write_rate=$((rate_bps / 8 / 4096 * pct / 100))
ram_bytes=$((mem * 1048576))

bench_hosts "$rate"

# Phase timestamps of vmigrate's jobs on host-a: the stream's start and end.
phase_log=$bench_dir/phases.log
$py "$top/bench/phase-log.py" "a=$bus_a" >"$phase_log" 2>"$phase_log.err" &
phase_pid=$!
wait_until 10 eval "grep -q ' ready\$' '$phase_log' || ! kill -0 $phase_pid" &&
        grep -q ' ready$' "$phase_log" || bail_out "phase-log.py did not start: $(cat "$phase_log.err")"
bench_cleanup() {
        kill "$phase_pid" 2>/dev/null && wait "$phase_pid" 2>/dev/null
}
trap '_rc=$?; bench_cleanup; (exit $_rc); _hosts_on_exit' EXIT

xml=$(guest_domain_xml bench qemu "vmtest.rate=$write_rate vmtest.compressible=1" "$mem" "$uuid")

# vmigrate_one MODE: one migration through vmigrate (plain or zstd); sets o_*.
vmigrate_one() {
        local mode=$1 out p job t0 t1 stats rc
        local opts=(1 wait b true)
        [ "$mode" = zstd ] && opts=(3 wait b true parallel-connections u "$channels" compression s zstd)
        out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager CreateXML s "$xml" 2>&1) ||
                { o_err="CreateXML on host-a: $out"; return 1; }
        p=$(bench_unquote "$out")
        # The QEMU command line vmigrated used: the raw runs reuse it.
        cp "$(host_path a runtime)/qemu/log/$uuid.log" "$bench_dir/argv.log"
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) ||
                { o_err="no heartbeat from the guest on host-a: $out"; bench_destroy a "$p"; return 1; }
        sleep "$warmup"
        t0=$(bench_now_ns)
        out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$dest" "${opts[@]}" 2>&1)
        rc=$?
        t1=$(bench_now_ns)
        if [ $rc -ne 0 ]; then
                o_err="Migrate: $out"
                bench_destroy a "$p"
                return 1
        fi
        job=$(bench_unquote "$out")
        o_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", d / 1e6 }')
        o_stream=$(awk -v t0="$t0" -v t1="$t1" -v job="$job" '
                $1 >= t0 && $1 <= t1 && $2 == "a" && $3 == job { t[$4] = $1 }
                END { if (("perform" in t) && ("finish" in t)) printf "%.0f\n", (t["finish"] - t["perform"]) / 1e6 }' \
                "$phase_log")
        [ -n "$o_stream" ] || o_err="no perform and finish phases of $job in $phase_log"
        stats=$(bench_call "$bus_b" "$p" Domain GetJobStats --json=short 2>&1)
        read -r o_sent o_passes o_down < <($py -c '
import json, sys
d = json.loads(sys.argv[1])["data"][0]
g = lambda k: d.get(k, {}).get("data", 0)
print(g("data-processed"), g("iteration"), g("downtime-ms"))
' "$stats" 2>/dev/null) || o_err=${o_err:-"GetJobStats on host-b: $stats"}
        out=$($py "$guestctl" --socket "$(bench_serial b)" --timeout 120 verify 2>&1)
        rc=$?
        o_verify=$out
        [ $rc -eq 0 ] || o_err=${o_err:-"the guest's memory on host-b: $out"}
        bench_destroy b "$p" || o_err=${o_err:-"Destroy on host-b failed"}
        [ -z "$o_err" ]
}

# raw_one: the floor, QEMU by hand with multifd + zstd; sets o_*.
raw_one() {
        local out rc
        out=$($py "$raw" "${bench_raw_args[@]}" --warmup "$warmup" --multifd-channels "$channels" \
                --multifd-compression zstd 2>&1)
        rc=$?
        eval "$($py -c '
import json, shlex, sys
try:
    d = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    d = {"error": sys.argv[1].strip()[-400:]}
v = lambda k: "" if d.get(k) is None else d.get(k)
out = {
    "o_wall": "%.0f" % d["wall-ms"] if d.get("wall-ms") is not None else "",
    "o_stream": "%.0f" % d["stream-ms"] if d.get("stream-ms") is not None else "",
    "o_sent": v("transferred"), "o_passes": v("passes"), "o_down": v("downtime-ms"),
    "o_qemu": v("qemu-total-ms"), "o_verify": v("verify"), "o_err": d.get("error", ""),
}
for k, val in out.items():
    print(f"{k}={shlex.quote(str(val))}")
' "$out")"
        [ $rc -eq 0 ] && [ -z "$o_err" ] || { o_err=${o_err:-"raw-qmp-migrate.py exited $rc"}; return 1; }
}

one() {
        o_wall= o_stream= o_sent= o_passes= o_down= o_qemu= o_verify= o_err=
        case $1 in
        raw-zstd) raw_one ;;
        *) vmigrate_one "$1" ;;
        esac
}

# effective STREAM-MS: guest RAM / stream time, in Gbit/s, and its ratio to
# the link rate.
effective() {
        awk -v b="$ram_bytes" -v s="$1" -v l="$rate_bps" \
                'BEGIN { e = b * 8 / (s / 1000); printf "%.2f %.2f\n", e / 1e9, e / l }'
}

# med FORMAT WORDS: the median of the numbers in WORDS.
med() {
        tr ' ' '\n' <<<"$2" | grep . | bench_median "$1"
}

bench_describe_machine
echo "# link host-a <-> host-b: $rate (tc HTB$(hosts_have_netem && echo '/netem')), $rounds round(s), warm-up ${warmup} s"
echo "# guest: ${mem} MiB, TCG, vmtest.compressible=1 (every page: header + a 32-byte pattern), rewriting its whole area at $write_rate pages/s ($(awk -v r=$write_rate 'BEGIN { printf "%.1f", r * 4096 / 1e6 }') MB/s, ${pct}% of $rate)"
echo "# zstd: parallel-connections $channels, compression zstd (QEMU: multifd-channels $channels, multifd-compression zstd, level QEMU's default)"
echo "# stream = source QEMU set up and told to migrate .. its stream completed; effective = guest RAM / stream; x link = effective / $rate"
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"

modes=(plain zstd raw-zstd)
declare -A effs=() xlinks=() walls=() streams=() sents=()
for ((r = 1; r <= rounds; r++)); do
        # Rotate the order; plain (vmigrate) comes first in round 1: it
        # writes the QEMU command line the raw run reuses.
        order=()
        for ((i = 0; i < ${#modes[@]}; i++)); do
                order+=("${modes[$(((r - 1 + i) % ${#modes[@]}))]}")
        done
        declare -A row=() verify=()
        for m in "${order[@]}"; do
                if one "$m"; then
                        read -r eff xlink < <(effective "$o_stream")
                        row[$m]=$(printf '%-9s %8s %10s %9s %8s %7s %8s %10s %7s' "$m" "$o_wall" "$o_stream" \
                                "$(awk -v s="$o_sent" 'BEGIN { printf "%.1f", s / 1048576 }')" \
                                "$(awk -v s="$o_sent" -v b="$ram_bytes" 'BEGIN { printf "%.4f", s / b }')" \
                                "$o_passes" "$o_down" "$eff" "$xlink")
                        verify[$m]=$o_verify
                        [ "$m" = raw-zstd ] && raw_qemu=$o_qemu
                        effs[$m]+="$eff " xlinks[$m]+="$xlink " walls[$m]+="$o_wall " streams[$m]+="$o_stream "
                        sents[$m]+="$(awk -v s="$o_sent" -v b="$ram_bytes" 'BEGIN { printf "%.4f", s / b }') "
                else
                        failures=$((failures + 1))
                        echo "# round $r $m FAILED: $o_err"
                fi
        done
        printf '\n-- round %d/%d (%s)\n' "$r" "$rounds" "${order[*]}"
        printf '%-9s %8s %10s %9s %8s %7s %8s %10s %7s\n' mode "wall ms" "stream ms" "sent MiB" "sent/RAM" passes \
                "down ms" "eff Gbit/s" "x link"
        for m in "${modes[@]}"; do
                [ -n "${row[$m]:-}" ] && echo "${row[$m]}"
        done
        for m in "${modes[@]}"; do
                [ -n "${verify[$m]:-}" ] && echo "host-b after $m: ${verify[$m]}"
        done
        [ -n "${raw_qemu:-}" ] && echo "raw-zstd: QEMU's own total-time ${raw_qemu} ms (migrate .. completed)"
        raw_qemu=
        unset row verify
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
for m in "${modes[@]}"; do
        if [ -z "${effs[$m]:-}" ]; then
                echo "$m: no round completed"
                continue
        fi
        n=$(wc -w <<<"${effs[$m]}")
        x=$(med %.2f "${xlinks[$m]}")
        line="$m: medians over $n round(s): wall $(med %.0f "${walls[$m]}") ms, stream $(med %.0f "${streams[$m]}") ms, sent/RAM $(med %.4f "${sents[$m]}"), effective $(med %.2f "${effs[$m]}") Gbit/s = ${x}x $rate"
        [ "$m" = zstd ] && line+=" ($(awk -v x="$x" 'BEGIN { print (x >= 2) ? "meets" : "below" }') the 2x target)"
        echo "$line"
done
if [ -n "${streams[zstd]:-}" ] && [ -n "${streams[raw-zstd]:-}" ]; then
        echo "zstd stream vmigrate / raw: $(awk -v v="$(med %.1f "${streams[zstd]}")" -v w="$(med %.1f "${streams[raw-zstd]}")" \
                'BEGIN { printf "%.3f", v / w }') (medians)"
fi
[ "$failures" -eq 0 ] || echo "$failures migration(s) or verification(s) failed"
[ "$failures" -eq 0 ]
exit $?
