#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vmigrate against QEMU driven by hand, on the same hosts, link and guest:
#
#     bench/migrate-bench.sh [--rounds N] [--rate 1gbit] [--scenarios idle,writing]
#                                 [--warmup SECONDS] [--pulse-ms 5] [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh: network namespaces with their
# own bus, polkitd and vmigrated) joined by a link shaped to --rate. For
# each scenario and round the same guest is migrated from host-a to host-b
# twice:
#
#   raw       bench/raw-qmp-migrate.py: the QEMU command line vmigrated
#             used for this guest, the same capabilities and parameters
#             (events; max-bandwidth 2^40 B/s; downtime-limit 300 ms),
#             -incoming defer + migrate-incoming, migrate, cont on the
#             destination, quit on the source.
#   vmigrate  Domain.Migrate(host-b's bus, {wait: true}) with busctl.
#
# Wall time covers the same work for both: starting the destination QEMU,
# setting it up, the stream, running the guest on the destination, and the
# source QEMU's exit. raw: from spawning the destination QEMU to the source
# QEMU's exit (timed inside raw-qmp-migrate.py). vmigrate: the busctl call,
# from its start to its reply (so it also pays busctl's start, the D-Bus
# round trips, Begin, the connection to host-b's daemon and Confirm). The
# guest has been started and has run for the same warm-up before either.
# QEMU's own figures: total-time and downtime from query-migrate on the
# source (raw); downtime from GetJobStats (vmigrate; its GetJobStats has no
# QEMU total-time, the "perform" phase is shown instead). After each
# migration the guest verifies every page of its memory on host-b.
#
# Downtime as the guest sees it: the guest writes a pulse on its second
# serial port every --pulse-ms ms (vmtest.pulse; 0: none), and
# tests/hosts/guest-pulse.py, started before the timed part, listens on
# both QEMUs' end of it. "seen ms" is the gap between the last pulse from
# the source and the first from the destination, minus one period: how
# long the guest was silent to the outside, from the source's stop to the
# destination running it. QEMU's "downtime" ends earlier, with the stream.
#
# Scenarios:
#   idle     a 1 GiB guest, idle, with a tiny test area (256 KiB): memory
#            mostly untouched. KVM when /dev/kvm is usable (qboot), else TCG.
#   writing  the test guest (256 MiB, 192 MiB test area) rewriting pages at
#            half the link rate, under TCG (nested KVM cannot run a guest
#            that writes memory at a useful rate).
#
# BENCH_PHASE_LOG=FILE keeps the raw phase timestamps (bench/phase-log.py).
#
# Prints a table per round, the median ratio vmigrate / raw per scenario and
# a summary line per scenario. Exit status 0 whatever the ratios (it is a
# measurement), 1 if a migration or a verification failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=3 rate=1gbit scenarios=idle,writing build=$top/build keep_logs= warmup=2 do_build=1 pulse_ms=5
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --rate) rate=${2:-} ;;
        --scenarios) scenarios=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        --warmup) warmup=${2:-} ;;
        --pulse-ms) pulse_ms=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "migrate-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "migrate-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "migrate-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] ||
        { echo "migrate-bench: --rate '$rate': e.g. 1gbit or 500mbit" >&2; exit 2; }
[[ $warmup =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "migrate-bench: --warmup '$warmup': seconds" >&2; exit 2; }
[[ $pulse_ms =~ ^[0-9]+$ ]] && [ "$pulse_ms" -le 1000 ] ||
        { echo "migrate-bench: --pulse-ms '$pulse_ms': 0 (none) to 1000" >&2; exit 2; }
IFS=, read -r -a scenario_list <<<"$scenarios"
for s in "${scenario_list[@]}"; do
        case $s in
        idle | writing) ;;
        *) echo "migrate-bench: unknown scenario '$s' (idle, writing)" >&2; exit 2 ;;
        esac
done

bench=migrate-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"
bench_call_timeout=300

raw=$top/bench/raw-qmp-migrate.py
uuid=b3e1c0de-0000-4000-8000-00000000be11
failures=0
t_start=$SECONDS

rate_bps=$(hosts_rate_bps "$rate")
# Half the link rate in 4 KiB pages per second.
write_rate=$((rate_bps / 8 / 4096 / 2))

bench_hosts "$rate"

# Phase timestamps of vmigrate's jobs on both hosts.
phase_log=${BENCH_PHASE_LOG:-$bench_dir/phases.log}
$py "$top/bench/phase-log.py" "a=$bus_a" "b=$bus_b" >"$phase_log" 2>"$phase_log.err" &
phase_pid=$!
wait_until 10 eval "grep -q ' ready\$' '$phase_log' || ! kill -0 $phase_pid" &&
        grep -q ' ready$' "$phase_log" || bail_out "phase-log.py did not start: $(cat "$phase_log.err")"
bench_cleanup() {
        kill "$phase_pid" 2>/dev/null && wait "$phase_pid" 2>/dev/null
}
trap '_rc=$?; bench_cleanup; (exit $_rc); _hosts_on_exit' EXIT

# busctl's own cost, for the record: a trivial call from start to exit.
t0=$(bench_now_ns)
for _ in 1 2 3 4 5; do
        busctl --no-pager --address="$bus_a" get-property org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \
                org.vmigrate.Migrate1.Manager Version >/dev/null
done
busctl_ms=$(awk -v d=$(($(bench_now_ns) - t0)) 'BEGIN { printf "%.1f", d / 5 / 1e6 }')

# vmigrate_round XML WARMUP: one migration through vmigrate; sets v_* vars.
vmigrate_round() {
        local xml=$1 wu=$2 out p job t0 t1 stats
        v_ok=0 v_wall= v_down= v_sent= v_passes= v_verify= v_phases= v_err= v_seen= v_pulse=
        out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager CreateXML s "$xml" 2>&1) ||
                { v_err="CreateXML on host-a: $out"; return 1; }
        p=$(bench_unquote "$out")
        # The QEMU command line vmigrated used: the raw runs reuse it.
        cp "$(host_path a runtime)/qemu/log/$uuid.log" "$bench_dir/argv.log"
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) ||
                { v_err="no heartbeat from the guest on host-a: $out"; bench_call "$bus_a" "$p" Domain Destroy >/dev/null 2>&1; return 1; }
        sleep "$wu"
        if [ "$pulse_ms" -gt 0 ] && ! mig_pulse_start a b "$uuid" "$bench_dir/pulse-vmigrate.out" "$pulse_ms"; then
                v_pulse="guest-pulse.py never heard the guest: $(tail -n 2 "$bench_dir/pulse-vmigrate.out")"
                mig_pulse_stop
        fi
        t0=$(bench_now_ns)
        out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$dest" 1 wait b true 2>&1)
        local rc=$?
        t1=$(bench_now_ns)
        [ $rc -ne 0 ] && [ "$pulse_ms" -gt 0 ] && mig_pulse_stop
        if [ "$pulse_ms" -gt 0 ]; then
                mig_pulse_wait "$bench_dir/pulse-vmigrate.out"
                v_pulse=${v_pulse:-$MIG_PULSE}
                v_seen=$(mig_pulse_field "$MIG_PULSE" downtime_ms)
                mig_pulse_field "$MIG_PULSE" error >/dev/null && v_seen=
        fi
        if [ $rc -ne 0 ]; then
                v_err="Migrate: $out"
                bench_call "$bus_a" "$p" Domain Destroy >/dev/null 2>&1
                return 1
        fi
        job=$(bench_unquote "$out")
        v_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e6 }')
        stats=$(bench_call "$bus_b" "$p" Domain GetJobStats --json=short 2>&1)
        read -r v_down v_sent v_passes < <($py -c '
import json, sys
d = json.loads(sys.argv[1])["data"][0]
g = lambda k: d.get(k, {}).get("data", 0)
print(g("downtime-ms"), "%.1f" % (g("data-processed") / 1048576), g("iteration"))
' "$stats" 2>/dev/null) || v_err="GetJobStats on host-b: $stats"
        v_phases=$(phases_between "$t0" "$t1" "$job")
        out=$($py "$guestctl" --socket "$(bench_serial b)" --timeout 120 verify 2>&1)
        rc=$?
        v_verify=${out%% *}
        [ "$v_verify" = VERIFY ] && v_verify=$(awk '{ print $2 }' <<<"$out")
        [ $rc -eq 0 ] || v_err="the guest's memory on host-b: $out"
        bench_destroy b "$p" || v_err="${v_err:-Destroy on host-b failed}"
        [ -z "$v_err" ] && v_ok=1
        [ "$v_ok" = 1 ]
}

# phases_between T0 T1 JOB: the source job's phases on host-a, in ms, as
# six numbers in the order of phase_names: busctl start .. "prepare"
# (busctl, the call, Begin, connecting to host-b's daemon), "prepare" ..
# "perform" (Incoming.Prepare: host-b starts and sets up its QEMU),
# "perform" .. "finish" (the stream), "finish" .. "confirm" (Incoming.Finish:
# the guest runs on host-b), "confirm" .. "completed" (the source QEMU
# quits), "completed" .. busctl's exit (the reply).
phase_names="call+begin dest-setup stream dest-resume source-stop reply"
phases_between() {
        awk -v t0="$1" -v t1="$2" -v job="$3" '
        $1 >= t0 && $1 <= t1 && $2 == "a" && $3 == job { t[$4] = $1 }
        END {
                n = split("prepare perform finish confirm completed", ph, " ")
                prev = t0; out = ""
                for (i = 1; i <= n; i++) {
                        if (!(ph[i] in t)) { out = out " -"; continue }
                        out = out sprintf(" %.0f", (t[ph[i]] - prev) / 1e6)
                        prev = t[ph[i]]
                }
                out = out sprintf(" %.0f", (t1 - prev) / 1e6)
                print substr(out, 2)
        }' "$phase_log"
}

# raw_round WARMUP: one migration by hand; sets r_* vars.
raw_round() {
        local wu=$1 out
        r_ok=0 r_wall= r_running= r_qemu= r_down= r_sent= r_passes= r_verify= r_listen= r_stream= r_err= r_seen= r_pulse=
        local pulse_args=()
        [ "$pulse_ms" -gt 0 ] && pulse_args=(--pulse "$top/tests/hosts/guest-pulse.py" --pulse-ms "$pulse_ms")
        out=$($py "$raw" "${bench_raw_args[@]}" "${pulse_args[@]}" --warmup "$wu" 2>&1)
        local rc=$?
        eval "$($py -c '
import json, shlex, sys
try:
    d = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    d = {"error": sys.argv[1].strip()[-400:]}
v = lambda k: "" if d.get(k) is None else d.get(k)
verify = str(d.get("verify") or "").split()
out = {
    "r_wall": v("wall-ms"), "r_running": v("running-ms"), "r_listen": v("listening-ms"),
    "r_stream": v("stream-ms"), "r_qemu": v("qemu-total-ms"), "r_down": v("downtime-ms"),
    "r_sent": "%.1f" % (d["transferred"] / 1048576) if d.get("transferred") is not None else "",
    "r_passes": v("passes"), "r_verify": verify[1] if len(verify) > 1 else "",
    "r_err": d.get("error", ""),
    "r_seen": "" if "error" in d.get("pulse", {}) else d.get("pulse", {}).get("downtime_ms", ""),
    "r_pulse": " ".join(f"{k}={v}" for k, v in d.get("pulse", {}).items()),
}
for k, val in out.items():
    print(f"{k}={shlex.quote(str(val))}")
' "$out")"
        [ $rc -eq 0 ] && [ -z "$r_err" ] && r_ok=1
        # The same six phases as phases_between (nothing before, no reply).
        r_phases=$(awk -v l="$r_listen" -v s="$r_stream" -v r="$r_running" -v w="$r_wall" \
                'BEGIN { if (w == "") print "- - - - - -"; else printf "0 %.0f %.0f %.0f %.0f 0\n", l, s, r - l - s, w - r }')
        [ "$r_ok" = 1 ]
}

# column_medians ROW...: the median of each column of rows of numbers.
column_medians() {
        local i out=()
        for i in 1 2 3 4 5 6; do
                out+=("$(printf '%s\n' "$@" | awk -v c=$i '$c != "-" { print $c }' | median)")
        done
        echo "${out[*]}"
}

median() { bench_median %.4g; }

bench_describe_machine
echo "# link host-a <-> host-b: $rate (tc HTB$(hosts_have_netem && echo '/netem')), $rounds round(s), warm-up ${warmup} s"
echo "# busctl call overhead (start to exit, trivial call): ${busctl_ms} ms"
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"
echo "# wall: raw = spawn destination QEMU .. source QEMU exited; vmigrate = busctl Migrate {wait} start .. reply"

summary=()
for scenario in "${scenario_list[@]}"; do
        case $scenario in
        idle)
                if [ "$MIG_KVM" = 1 ]; then
                        type=kvm accel="kvm (idle guest: nested KVM runs it, with qboot)"
                else
                        type=qemu accel="tcg (/dev/kvm is not usable)"
                fi
                xml=$(guest_domain_xml bench "$type" "vmtest.mem=256K vmtest.rate=0 vmtest.pulse=$pulse_ms" 1024 "$uuid" \
                        '<serial type="pty"/>')
                wu=0
                title="idle: 1 GiB guest, idle (256 KiB test area), accel $accel"
                ;;
        writing)
                xml=$(guest_domain_xml bench qemu "vmtest.mem=192M vmtest.rate=$write_rate vmtest.pulse=$pulse_ms" 256 "$uuid" \
                        '<serial type="pty"/>')
                wu=$warmup
                title="writing: 256 MiB guest rewriting a 192 MiB area at $write_rate pages/s ($(awk -v r=$write_rate 'BEGIN { printf "%.0f", r * 4096 / 1e6 }') MB/s, half of $rate), accel tcg (a guest that writes memory at a set rate needs TCG here: nested KVM cannot run it)"
                ;;
        esac
        echo
        echo "== $title"
        ratios=() raw_walls=() vm_walls=() raw_phase_rows=() vm_phase_rows=() r_seens=() v_seens=() r_downs=() v_downs=()
        for ((r = 1; r <= rounds; r++)); do
                # Alternate the order so neither method always runs on a
                # fresher machine. vmigrate goes first in round 1: it writes
                # the QEMU command line the raw runs reuse.
                if ((r % 2 == 1)); then order="vmigrate raw"; else order="raw vmigrate"; fi
                for m in $order; do
                        if [ "$m" = vmigrate ]; then
                                vmigrate_round "$xml" "$wu" || { failures=$((failures + 1)); echo "# round $r vmigrate FAILED: $v_err"; }
                        else
                                raw_round "$wu" || { failures=$((failures + 1)); echo "# round $r raw FAILED: $r_err"; }
                        fi
                done
                printf '\n-- %s round %d/%d\n' "$scenario" "$r" "$rounds"
                printf '%-9s %9s %11s %14s %12s %9s %9s %7s %7s\n' method "wall ms" "running ms" "qemu total ms" "downtime ms" "seen ms" "sent MiB" passes verify
                printf '%-9s %9s %11s %14s %12s %9s %9s %7s %7s\n' raw "${r_wall:--}" "${r_running:--}" "${r_qemu:--}" \
                        "${r_down:--}" "${r_seen:--}" "${r_sent:--}" "${r_passes:--}" "${r_verify:--}"
                printf '%-9s %9s %11s %14s %12s %9s %9s %7s %7s\n' vmigrate "${v_wall:--}" - "n/a" \
                        "${v_down:--}" "${v_seen:--}" "${v_sent:--}" "${v_passes:--}" "${v_verify:--}"
                if [ "$pulse_ms" -gt 0 ]; then
                        echo "pulse raw:      ${r_pulse:--}"
                        echo "pulse vmigrate: ${v_pulse:--}"
                        [ -n "$r_seen" ] && r_seens+=("$r_seen") r_downs+=("${r_down:--}")
                        [ -n "$v_seen" ] && v_seens+=("$v_seen") v_downs+=("${v_down:--}")
                fi
                printf '%-9s' "phases ms"
                printf ' %11s' $phase_names
                printf '\n%-9s' raw
                printf ' %11s' $r_phases
                printf '\n%-9s' vmigrate
                printf ' %11s' ${v_phases:-- - - - - -}
                echo
                if [ "$r_ok" = 1 ] && [ "$v_ok" = 1 ]; then
                        ratio=$(awk -v v="$v_wall" -v w="$r_wall" 'BEGIN { printf "%.3f", v / w }')
                        ratios+=("$ratio") raw_walls+=("$r_wall") vm_walls+=("$v_wall")
                        raw_phase_rows+=("$r_phases") vm_phase_rows+=("$v_phases")
                        echo "ratio wall vmigrate / raw: $ratio"
                fi
        done
        if [ ${#ratios[@]} -gt 0 ]; then
                med=$(printf '%s\n' "${ratios[@]}" | median)
                med_raw=$(printf '%s\n' "${raw_walls[@]}" | median)
                med_vm=$(printf '%s\n' "${vm_walls[@]}" | median)
                verdict=$(awk -v m="$med" 'BEGIN { print (m <= 1.05) ? "meets the 1.05 target" : "above the 1.05 target" }')
                echo
                echo "-- $scenario: medians over ${#ratios[@]} round(s): raw $med_raw ms, vmigrate $med_vm ms, ratio $med"
                printf '%-9s' "phases ms"
                printf ' %11s' $phase_names
                printf '\n%-9s' raw
                printf ' %11s' $(column_medians "${raw_phase_rows[@]}")
                printf '\n%-9s' vmigrate
                printf ' %11s' $(column_medians "${vm_phase_rows[@]}")
                echo
                # busctl's start-up is the client's, not vmigrated's: say
                # what the ratio would be without it (an estimate).
                med_nb=$(for ((i = 0; i < ${#ratios[@]}; i++)); do
                        awk -v v="${vm_walls[i]}" -v b="$busctl_ms" -v w="${raw_walls[i]}" 'BEGIN { printf "%.3f\n", (v - b) / w }'
                done | median)
                if [ "$pulse_ms" -gt 0 ]; then
                        echo "-- $scenario: downtime (QEMU's / as the guest saw it, ms) raw ${r_downs[*]:--} / ${r_seens[*]:--}; vmigrate ${v_downs[*]:--} / ${v_seens[*]:--}"
                        summary+=("$scenario: downtime as the guest saw it (pulse every $pulse_ms ms): raw median $(printf '%s\n' "${r_seens[@]}" | median) ms (QEMU's $(printf '%s\n' "${r_downs[@]}" | median)), vmigrate median $(printf '%s\n' "${v_seens[@]}" | median) ms (QEMU's $(printf '%s\n' "${v_downs[@]}" | median)); <= max-downtime (300 ms) in $(printf '%s\n' "${r_seens[@]}" | awk 'NF && $1 <= 300' | wc -l)/$rounds raw and $(printf '%s\n' "${v_seens[@]}" | awk 'NF && $1 <= 300' | wc -l)/$rounds vmigrate rounds")
                fi
                summary+=("$scenario: raw median ${med_raw} ms, vmigrate median ${med_vm} ms, median ratio ${med} ($verdict; ${#ratios[@]}/$rounds rounds); without busctl's own ${busctl_ms} ms start-up: ${med_nb}")
        else
                summary+=("$scenario: no round completed on both sides")
        fi
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
for line in "${summary[@]}"; do
        echo "$line"
done
[ "$failures" -eq 0 ] || echo "$failures migration(s) or verification(s) failed"
[ "$failures" -eq 0 ]
exit $?
