#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# How long a post-copy guest waits on a missing page, with and without
# postcopy-preempt:
#
#     bench/postcopy-stall-bench.sh [--rounds N] [--rate 1gbit] [--mem 256] [--write-pct 1]
#                                   [--pulse-ms 1] [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh) joined by a link shaped to
# --rate; the TCG test guest (--mem MiB, test area = 3/4 of it, all of it
# the working set) rewrites pages at --write-pct % of the link rate and
# pulses on its second serial port every --pulse-ms ms. The default, 1%
# of 1gbit (305 pages/s, one every ~3 ms), keeps the faults apart: a gap
# then holds at most one or two of them, and a wait shows as it is, not
# as a pile of waits (at 5% the guest spends most of its time blocked and
# the gaps measure how many faults it queued, not how long one takes).
# Per round, from host-a to host-b, two post-copy migrations, in turns
# first:
#
#   preempt on    Domain.Migrate {postcopy: true} (postcopy-preempt is on
#                 by default with post-copy), Domain.StartPostCopy at once:
#                 QEMU switches as soon as the stream starts, so nearly all
#                 the guest's memory comes over in post-copy
#   preempt off   the same with {postcopy-preempt: false}: a page the guest
#                 faults on queues behind the background copy in the one
#                 stream
#
# Each is measured twice:
#
#   QEMU          the destination's QEMU times how long the vCPUs were
#                 blocked on missing pages (capability postcopy-blocktime,
#                 turned on by vmigrate on the destination of a post-copy;
#                 GetJobStats on host-b: postcopy-blocktime-ms) and the
#                 source counts the pages asked for (host-a:
#                 postcopy-requests). QEMU 10.0 gives totals only, not a
#                 distribution (postcopy-latency came later): their ratio
#                 is the mean wait per page request.
#   the guest     tests/hosts/guest-pulse.py --dest-gaps on both hosts: the
#                 gaps between pulses heard on host-b after the switch-over
#                 (not the switch-over itself), p50/p90/p99/max. A gap is
#                 one period plus whatever the guest waited meanwhile.
#                 Then the gaps over two periods on the guest's clock
#                 (under TCG it runs on while a vCPU waits for a page):
#                 the waits themselves, p50/p99.
#
# Read the two together. Without preempt, QEMU's background copy jumps
# to the page asked for and goes on from there; the test guest rewrites
# its area with a large stride, which comes back near a recent page every
# few writes, so that copy then brings the next pages before they are
# asked for: the guest faults far less often (tens of page requests
# against hundreds with preempt), and most gaps have no wait in them.
# The percentiles of all gaps mix how often with how long; how long one
# wait takes is QEMU's mean per request and the long gaps.
#
# Printed per run, then the medians over the rounds and the ratio
# off/on. After every run the guest verifies every page on host-b.
# Exit status 0 whatever the figures, 1 if a migration or verification
# failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=1 rate=1gbit mem=256 pct=1 pulse_ms=1 build=$top/build keep_logs= do_build=1 warmup=2
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --rate) rate=${2:-} ;;
        --mem) mem=${2:-} ;;
        --write-pct) pct=${2:-} ;;
        --pulse-ms) pulse_ms=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "postcopy-stall-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "postcopy-stall-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "postcopy-stall-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] ||
        { echo "postcopy-stall-bench: --rate '$rate': e.g. 1gbit or 200mbit" >&2; exit 2; }
[[ $mem =~ ^[1-9][0-9]*$ ]] && [ "$mem" -ge 32 ] && [ "$mem" -le 2048 ] ||
        { echo "postcopy-stall-bench: --mem '$mem': MiB, 32 to 2048" >&2; exit 2; }
[[ $pct =~ ^[1-9][0-9]*$ ]] && [ "$pct" -le 1000 ] ||
        { echo "postcopy-stall-bench: --write-pct '$pct': 1 to 1000 (% of the link rate)" >&2; exit 2; }
[[ $pulse_ms =~ ^[1-9][0-9]?$ ]] && [ "$pulse_ms" -le 20 ] ||
        { echo "postcopy-stall-bench: --pulse-ms '$pulse_ms': 1 to 20" >&2; exit 2; }

bench=postcopy-stall-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"

uuid=b3e1c0de-0000-4000-8000-00000057a11e
failures=0
t_start=$SECONDS

rate_bps=$(hosts_rate_bps "$rate")
area=$((mem * 3 / 4))
write_rate=$((rate_bps / 8 * pct / 100 / 4096)) # pages per second
[ "$write_rate" -le 1000000 ] || bench_fail "$write_rate pages/s is more than the guest can be asked"
once_ms=$(awk -v m="$mem" -v r="$rate_bps" 'BEGIN { printf "%.0f", m * 1048576 * 8 / r * 1000 }')

bench_hosts "$rate"
log_a=$(host_path a log)

# stat_of JSON-REPLY KEY: a key of GetJobStats' reply, "-" if absent.
stat_of() {
        $py -c 'import json, sys; print(json.loads(sys.argv[1])["data"][0].get(sys.argv[2], {}).get("data", "-"))' "$1" "$2" 2>/dev/null
}

xml=$(guest_domain_xml stall qemu "vmtest.mem=${area}M vmtest.rate=$write_rate vmtest.pulse=$pulse_ms" "$mem" "$uuid" \
        '<serial type="pty"/>')

# start_guest: the guest on host-a, warmed up; sets $p and $wps (pages/s
# it wrote before the migration: TCG on a busy machine may not reach the
# rate asked).
start_guest() {
        local out hb
        # Defined on host-a, so that after the migration GetJobStats there
        # still has the source's figures.
        if [ -z "${p:-}" ]; then
                out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager DefineXML s "$xml" 2>&1) || { err="DefineXML: $out"; return 1; }
                p=$(bench_unquote "$out")
        fi
        out=$(bench_call "$bus_a" "$p" Domain Start 2>&1) || { err="Start on host-a: $out"; return 1; }
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) || { err="no heartbeat: $out"; return 1; }
        sleep "$warmup"
        hb=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 10 wait-heartbeat 2>&1)
        wps=$(sed -n -E 's/.* wps=([0-9]+).*/\1/p' <<<"$hb")
}

# wait_job_end HOST JOB SECONDS: until the job has ended (a job object
# gone counts as ended). Polls every 250 ms, not wait_until's 50: the
# machine's two cores also run both QEMUs and the pulse listener, and
# every busctl started takes some of that.
wait_job_end() {
        local ph end=$((SECONDS + $3 + 1))
        while [ "$SECONDS" -lt "$end" ]; do
                ph=$(bench_prop "$(host_bus_address "$1")" "$2" Job Phase 2>/dev/null) || return 0
                [[ $ph =~ ^(completed|failed|cancelled)$ ]] && return 0
                sleep 0.25
        done
        return 1
}

# b_job_done: host-b's GetJobStats says its (incoming) job ended.
b_job_done() {
        local s
        s=$(bench_call "$bus_b" "$p" Domain GetJobStats --json=short 2>/dev/null) || return 1
        [[ $(stat_of "$s" phase) =~ ^(completed|failed|cancelled)$ ]]
}

# run_postcopy on|off: one post-copy migration a -> b switched at once;
# sets r_* (see the printing below). Fails on a failed migration or
# verification, with $err.
run_postcopy() {
        local preempt=$1 t0 t1 out rc job ph v mark sa sb what="{postcopy: true}"
        local -a opts=(1 postcopy b true)
        [ "$preempt" = off ] && opts=(2 postcopy b true postcopy-preempt b false) what="{postcopy: true, postcopy-preempt: false}"

        r_wall=- r_req=- r_block=- r_mean=- r_down=- r_seen=- r_feat=- r_verify=- r_wps=- r_pulse= err=
        r_gaps=- r_p50=- r_p90=- r_p99=- r_max=- r_gp99=- r_gmax=- r_span=- r_batched=- r_long=- r_lp50=- r_lp99=-
        start_guest || return 1
        r_wps=$wps
        mark=$(wc -l <"$log_a")
        MIG_PULSE_AFTER=0 MIG_PULSE_DEST_GAPS=1 mig_pulse_start a b "$uuid" "$bench_dir/pulse.out" "$pulse_ms" ||
                r_pulse="guest-pulse.py never heard the guest: $(tail -n 2 "$bench_dir/pulse.out")"
        t0=$(bench_now_ns)
        out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$dest" "${opts[@]}" 2>&1)
        rc=$?
        if [ $rc -eq 0 ]; then
                job=$(bench_unquote "$out")
                # Asked before the stream has begun: vmigrate remembers it
                # and QEMU switches as soon as it can.
                out=$(bench_call "$bus_a" "$p" Domain StartPostCopy 2>&1) || { rc=1; out="StartPostCopy: $out"; }
                wait_job_end a "$job" 600 || { rc=1; out="the job did not end within 600 s"; }
                ph=$(bench_prop "$bus_a" "$job" Job Phase 2>/dev/null)
                [ $rc -ne 0 ] || [ "$ph" = completed ] || { rc=1; out="job $ph: $(bench_prop "$bus_a" "$job" Job Error)"; }
        fi
        t1=$(bench_now_ns)
        mig_pulse_stop
        mig_pulse_wait "$bench_dir/pulse.out"
        r_pulse=${r_pulse:-$MIG_PULSE}
        if ! mig_pulse_field "$MIG_PULSE" error >/dev/null; then
                r_seen=$(mig_pulse_field "$MIG_PULSE" downtime_ms)
                r_gaps=$(mig_pulse_field "$MIG_PULSE" dest_gaps)
                r_p50=$(mig_pulse_field "$MIG_PULSE" dest_gap_p50_ms)
                r_p90=$(mig_pulse_field "$MIG_PULSE" dest_gap_p90_ms)
                r_p99=$(mig_pulse_field "$MIG_PULSE" dest_gap_p99_ms)
                r_max=$(mig_pulse_field "$MIG_PULSE" dest_gap_max_ms)
                r_gp99=$(mig_pulse_field "$MIG_PULSE" dest_guest_p99_ms)
                r_gmax=$(mig_pulse_field "$MIG_PULSE" dest_guest_max_ms)
                r_span=$(mig_pulse_field "$MIG_PULSE" dest_span_ms)
                r_batched=$(mig_pulse_field "$MIG_PULSE" batched)
                r_long=$(mig_pulse_field "$MIG_PULSE" dest_long_gaps)
                r_lp50=$(mig_pulse_field "$MIG_PULSE" dest_long_p50_ms || echo -)
                r_lp99=$(mig_pulse_field "$MIG_PULSE" dest_long_p99_ms || echo -)
        fi
        r_feat=$(tail -n +"$((mark + 1))" "$log_a" | grep -m1 -o "domain 'stall': postcopy-preempt o[nf]*" | awk '{ print $NF }')
        if [ $rc -ne 0 ]; then
                err="Migrate $what + StartPostCopy: $out"
                bench_call "$bus_a" "$p" Domain Destroy >/dev/null 2>&1
                bench_call "$bus_b" "$p" Domain Destroy >/dev/null 2>&1
                return 1
        fi
        r_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", d / 1e6 }')
        sa=$(bench_call "$bus_a" "$p" Domain GetJobStats --json=short 2>&1)
        r_req=$(stat_of "$sa" postcopy-requests)
        r_down=$(stat_of "$sa" downtime-ms)
        wait_until 30 b_job_done
        sb=$(bench_call "$bus_b" "$p" Domain GetJobStats --json=short 2>&1)
        r_block=$(stat_of "$sb" postcopy-blocktime-ms)
        r_mean=$(awk -v b="$r_block" -v n="$r_req" 'BEGIN { if (b != "-" && n > 0) printf "%.2f", b / n; else print "-" }')
        v=$($py "$guestctl" --socket "$(bench_serial b)" --timeout 120 verify 2>&1)
        r_verify=$(awk '{ print $1, $2 }' <<<"$v")
        [[ $v == "VERIFY OK"* ]] || err="the guest's memory on host-b: $v"
        bench_destroy b "$p"
        [ -z "$err" ]
}

bench_describe_machine
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"
echo "# link host-a <-> host-b: $rate (tc HTB$(hosts_have_netem && echo '/netem')), $rounds round(s); copying the RAM once: $once_ms ms"
echo "# guest: TCG, 1 vCPU, $mem MiB, rewriting a $area MiB area at $write_rate pages/s ($(awk -v r=$write_rate 'BEGIN { printf "%.0f", r * 4096 / 1e6 }') MB/s = $pct% of the link), pulsing every $pulse_ms ms"
echo "# per round: post-copy with postcopy-preempt on (default) and off, in turns first, StartPostCopy at once"
echo "# QEMU: postcopy-blocktime (destination, total ms the vCPU was blocked) / postcopy-requests (source) = mean wait per page request"
echo "# guest: gaps between pulses heard on host-b after the switch-over; each is $pulse_ms ms plus what the guest waited"

declare -A p99s=() p50s=() p90s=() maxs=() means=() lp50s=() lp99s=() reqs=()
show() { # on|off
        echo "preempt $1 (log: postcopy-preempt $r_feat): done in $r_wall ms ($(awk -v w="$r_wall" -v o="$once_ms" 'BEGIN { printf "%.2f", w / o }')x the RAM copy); downtime $r_down ms, the guest saw $r_seen ms; guest wrote $r_wps pages/s before; $r_verify on host-b"
        echo "  QEMU: $r_req page requests, vCPU blocked $r_block ms in all = $r_mean ms per request"
        echo "  guest: $r_gaps gaps over $r_span ms on host-b: p50 $r_p50, p90 $r_p90, p99 $r_p99, max $r_max ms (guest's clock: p99 $r_gp99, max $r_gmax ms; $r_batched pulses read late)"
        echo "  guest, the $r_long gaps over $((2 * pulse_ms)) ms (guest's clock): p50 $r_lp50, p99 $r_lp99 ms"
        echo "  pulse: $r_pulse"
        p50s[$1]+="$r_p50 " p90s[$1]+="$r_p90 " p99s[$1]+="$r_p99 " maxs[$1]+="$r_max " means[$1]+="$r_mean "
        lp50s[$1]+="$r_lp50 " lp99s[$1]+="$r_lp99 " reqs[$1]+="$r_req "
}
ratio() { # OFF ON
        awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.1f", a / b }'
}
median_of() {
        tr ' ' '\n' <<<"$1" | grep -E '^[0-9.]+$' | bench_median %.2f
}

for ((r = 1; r <= rounds; r++)); do
        echo
        echo "-- round $r/$rounds"
        order="on off"
        [ $((r % 2)) -eq 0 ] && order="off on"
        declare -A round_p99=() round_mean=() round_lp99=()
        for mode in $order; do
                if run_postcopy "$mode"; then
                        show "$mode"
                        round_p99[$mode]=$r_p99 round_mean[$mode]=$r_mean round_lp99[$mode]=$r_lp99
                else
                        failures=$((failures + 1))
                        echo "preempt $mode: FAILED: $err"
                        [ -n "$r_pulse" ] && echo "  pulse: $r_pulse"
                        round_p99[$mode]=- round_mean[$mode]=- round_lp99[$mode]=-
                fi
        done
        echo "round $r, off/on: gap p99 $(ratio "${round_p99[off]}" "${round_p99[on]}")x, long-gap p99 $(ratio "${round_lp99[off]}" "${round_lp99[on]}")x, QEMU mean wait per request $(ratio "${round_mean[off]}" "${round_mean[on]}")x"
        unset round_p99 round_mean round_lp99
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load)), medians over the rounds"
for mode in on off; do
        echo "preempt $mode: gaps on host-b p50 $(median_of "${p50s[$mode]:-}"), p90 $(median_of "${p90s[$mode]:-}"), p99 $(median_of "${p99s[$mode]:-}"), max $(median_of "${maxs[$mode]:-}") ms; gaps over $((2 * pulse_ms)) ms p50 $(median_of "${lp50s[$mode]:-}"), p99 $(median_of "${lp99s[$mode]:-}") ms; QEMU mean wait per page request $(median_of "${means[$mode]:-}") ms (page requests per round: ${reqs[$mode]:-- })"
done
echo "off/on: gap p50 $(ratio "$(median_of "${p50s[off]:-}")" "$(median_of "${p50s[on]:-}")")x, p90 $(ratio "$(median_of "${p90s[off]:-}")" "$(median_of "${p90s[on]:-}")")x, p99 $(ratio "$(median_of "${p99s[off]:-}")" "$(median_of "${p99s[on]:-}")")x, max $(ratio "$(median_of "${maxs[off]:-}")" "$(median_of "${maxs[on]:-}")")x; long gaps p50 $(ratio "$(median_of "${lp50s[off]:-}")" "$(median_of "${lp50s[on]:-}")")x, p99 $(ratio "$(median_of "${lp99s[off]:-}")" "$(median_of "${lp99s[on]:-}")")x; QEMU mean wait $(ratio "$(median_of "${means[off]:-}")" "$(median_of "${means[on]:-}")")x"
[ "$failures" -eq 0 ] || echo "$failures run(s) failed"
[ "$failures" -eq 0 ]
exit $?
