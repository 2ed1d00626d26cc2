#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A guest that dirties memory faster than the link carries, vmigrate
# against raw QEMU pre-copy:
#
#     bench/convergence-bench.sh [--rounds N] [--rate 1gbit] [--mem 256] [--write-pct 150]
#                                     [--budget 60] [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh) joined by a link shaped to
# --rate; the TCG test guest (--mem MiB, test area = 3/4 of it, all of it
# the working set) rewrites pages at --write-pct % of the link rate. Per
# round, from host-a to host-b:
#
#   vmigrate postcopy   Domain.Migrate {postcopy: true, wait: true} and no
#                       other help: no StartPostCopy call, no timeout. The
#                       default policy switches to post-copy by itself as
#                       soon as the numbers say pre-copy cannot converge.
#   (reference)         the same with Domain.StartPostCopy called by the
#                       client once pass 2 has begun: what a client that
#                       does not wait for the policy gets.
#   vmigrate defaults   Domain.Migrate {wait: true} (post-copy is off by
#                       default): the default policy lengthens the pause,
#                       then throttles the guest until pre-copy converges;
#                       timed to the end (target: <= 6x the RAM copy).
#   raw pre-copy        bench/raw-precopy-budget.py: the same QEMU command
#                       line and parameters, plain `migrate`, given --budget
#                       seconds; then query-migrate and migrate_cancel.
#
# The guest pulses on its second serial port every 5 ms (vmtest.pulse) and
# tests/hosts/guest-pulse.py listens on both hosts during the post-copy
# runs, until the job ends: "the guest saw" is the gap across the
# switch-over minus one period (the downtime as the guest's peers see
# it), "longest silence" the longest gap anywhere, post-copy's page
# faults on host-b included. Raw pre-copy never switches over here: it has
# no such figure.
#
# Printed: the time to copy the guest's RAM once (RAM / link rate), the
# vmigrate total (busctl call to reply) and its ratio to that (target <= 3),
# the downtime against max-downtime (target <=), what defaults alone take,
# and whether raw pre-copy converged within its budget. After every
# completed migration the guest verifies every page on host-b.
# Exit status 0 whatever the figures, 1 if a migration or verification
# failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=1 rate=1gbit mem=256 pct=150 budget=60 build=$top/build keep_logs= do_build=1 warmup=2
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --rate) rate=${2:-} ;;
        --mem) mem=${2:-} ;;
        --write-pct) pct=${2:-} ;;
        --budget) budget=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "convergence-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "convergence-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "convergence-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] ||
        { echo "convergence-bench: --rate '$rate': e.g. 1gbit or 200mbit" >&2; exit 2; }
[[ $mem =~ ^[1-9][0-9]*$ ]] && [ "$mem" -ge 32 ] && [ "$mem" -le 2048 ] ||
        { echo "convergence-bench: --mem '$mem': MiB, 32 to 2048" >&2; exit 2; }
[[ $pct =~ ^[1-9][0-9]*$ ]] && [ "$pct" -le 1000 ] ||
        { echo "convergence-bench: --write-pct '$pct': 1 to 1000 (% of the link rate)" >&2; exit 2; }
[[ $budget =~ ^[1-9][0-9]*$ ]] && [ "$budget" -le 3600 ] ||
        { echo "convergence-bench: --budget '$budget': seconds, 1 to 3600" >&2; exit 2; }

bench=convergence-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"

uuid=b3e1c0de-0000-4000-8000-0000000c0be1
failures=0
t_start=$SECONDS

rate_bps=$(hosts_rate_bps "$rate")
area=$((mem * 3 / 4))
write_rate=$((rate_bps / 8 * pct / 100 / 4096)) # pages per second
[ "$write_rate" -le 1000000 ] || bench_fail "$write_rate pages/s is more than the guest can be asked"
# Copying the guest's RAM once at the link rate, in ms.
once_ms=$(awk -v m="$mem" -v r="$rate_bps" 'BEGIN { printf "%.0f", m * 1048576 * 8 / r * 1000 }')

bench_hosts "$rate"

stat_of() { # JSON-REPLY KEY
        $py -c 'import json, sys; print(json.loads(sys.argv[1])["data"][0].get(sys.argv[2], {}).get("data", "-"))' "$1" "$2" 2>/dev/null
}

max_downtime=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager GetBackends --json=short | $py -c '
import json, sys
print(json.load(sys.stdin)["data"][0]["qemu"]["migration-options"]["data"]["max-downtime"]["data"].get("default", {}).get("data", "300"))
' 2>/dev/null) || max_downtime=300
[[ $max_downtime =~ ^[0-9]+$ ]] || max_downtime=300

pulse_ms=5
xml=$(guest_domain_xml conv qemu "vmtest.mem=${area}M vmtest.rate=$write_rate vmtest.pulse=$pulse_ms" "$mem" "$uuid" \
        '<serial type="pty"/>')

# start_guest: the guest on host-a, warmed up; sets $p. Checks that it
# keeps up the asked rate (a busy machine may not let TCG reach it).
start_guest() {
        local out hb
        # Defined (persistent) on host-a, so that after the migration
        # GetJobStats there still has the source's figures (the downtime).
        if [ -z "${p:-}" ]; then
                out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager DefineXML s "$xml" 2>&1) || { err="DefineXML: $out"; return 1; }
                p=$(bench_unquote "$out")
        fi
        out=$(bench_call "$bus_a" "$p" Domain Start 2>&1) || { err="Start on host-a: $out"; return 1; }
        cp "$(host_path a runtime)/qemu/log/$uuid.log" "$bench_dir/argv.log"
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) || { err="no heartbeat: $out"; return 1; }
        sleep "$warmup"
        hb=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 10 wait-heartbeat 2>&1)
        wps=$(sed -n -E 's/.* wps=([0-9]+).*/\1/p' <<<"$hb")
}

# destroy_both: after a failed run, the guest goes on neither host. The
# destination first: a source in post-copy refuses Destroy (the guest runs
# on host-b) until the post-copy has failed.
destroy_both() {
        bench_call "$bus_b" "$p" Domain Destroy >/dev/null 2>&1
        wait_until 30 eval 'bench_call "$bus_a" "$p" Domain Destroy >/dev/null 2>&1 ||
                [[ ! $(bench_prop "$bus_a" "$p" Domain State) =~ ^(running|paused)$ ]]'
}

# vm_postcopy [call]: sets pc_* (wall ms, ratio, downtime, pass of the
# switch). Without "call": Migrate {postcopy, wait} and nothing else. With
# "call": Migrate {postcopy}, Domain.StartPostCopy once the second pass has
# begun, wait for the end by polling the job (what a client can do).
# The downtime is the source's (GetJobStats on host-a): the destination's
# job only knows the stream's figures up to the switch (downtime-ms 0).
vm_postcopy() {
        local mode=${1:-} t0 t1 out rc job v
        pc_ok=0 pc_wall=- pc_ratio=- pc_down=- pc_pass=- pc_verify=- pc_wps=- err= pc_seen=- pc_silence=- pc_pulse=
        pc_first=client
        start_guest || return 1
        pc_wps=$wps
        # Until the job ends (SIGTERM below): post-copy goes on after the switch.
        MIG_PULSE_AFTER=0 mig_pulse_start a b "$uuid" "$bench_dir/pulse.out" "$pulse_ms" ||
                pc_pulse="guest-pulse.py never heard the guest: $(tail -n 2 "$bench_dir/pulse.out")"
        t0=$(bench_now_ns)
        if [ "$mode" = call ]; then
                out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$dest" 1 postcopy b true 2>&1)
                rc=$?
                if [ $rc -eq 0 ]; then
                        job=$(bench_unquote "$out")
                        # The policy may have switched already: InvalidState
                        # "already in post-copy" is what a client then hears.
                        if wait_until 60 eval "[ \"\$(bench_prop '$bus_a' '$job' Job Iteration)\" -ge 2 ]"; then
                                v=$(bench_call "$bus_a" "$p" Domain StartPostCopy 2>&1) ||
                                        { [[ $v == *"already in post-copy"* ]] && pc_first=policy; } ||
                                        { rc=1; out="StartPostCopy: $v"; }
                        fi
                        [ $rc -eq 0 ] &&
                                wait_until 120 eval "[[ \$(bench_prop '$bus_a' '$job' Job Phase) =~ ^(completed|failed|cancelled)\$ ]]"
                        if [ $rc -eq 0 ] && [ "$(bench_prop "$bus_a" "$job" Job Phase)" != completed ]; then
                                rc=1
                                out="job $(bench_prop "$bus_a" "$job" Job Phase): $(bench_prop "$bus_a" "$job" Job Error)"
                        fi
                fi
        else
                out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$dest" 2 postcopy b true wait b true 2>&1)
                rc=$?
                job=$(bench_unquote "$out")
        fi
        t1=$(bench_now_ns)
        mig_pulse_stop
        mig_pulse_wait "$bench_dir/pulse.out"
        pc_pulse=${pc_pulse:-$MIG_PULSE}
        if ! mig_pulse_field "$MIG_PULSE" error >/dev/null; then
                pc_seen=$(mig_pulse_field "$MIG_PULSE" downtime_ms)
                pc_silence="$(mig_pulse_field "$MIG_PULSE" max_gap_ms) ms ($(mig_pulse_field "$MIG_PULSE" max_gap_where))"
        fi
        if [ $rc -ne 0 ]; then
                err="Migrate {postcopy${mode:+, StartPostCopy}}: $out"
                destroy_both
                return 1
        fi
        pc_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", d / 1e6 }')
        pc_ratio=$(awk -v w="$pc_wall" -v o="$once_ms" 'BEGIN { printf "%.2f", w / o }')
        pc_pass=$(bench_prop "$bus_a" "$job" Job Iteration)
        pc_down=$(stat_of "$(bench_call "$bus_a" "$p" Domain GetJobStats --json=short 2>&1)" downtime-ms)
        v=$($py "$guestctl" --socket "$(bench_serial b)" --timeout 120 verify 2>&1)
        pc_verify=$(awk '{ print $1, $2 }' <<<"$v")
        [[ $v == "VERIFY OK"* ]] || err="the guest's memory on host-b: $v"
        bench_destroy b "$p"
        [ -z "$err" ] && pc_ok=1
        [ "$pc_ok" = 1 ]
}

# vm_defaults: Migrate {wait: true} and nothing else: the default policy
# (longer pauses, then a throttle) must finish it without post-copy; sets
# df_* (wall ms, ratio, downtime, the policy's last step, what the guest
# saw).
vm_defaults() {
        local t0 t1 out rc job v stats
        df_ok=0 df_wall=- df_ratio=- df_down=- df_pass=- df_step=- df_verify=- df_seen=- df_pulse= err=
        start_guest || return 1
        MIG_PULSE_AFTER=0 mig_pulse_start a b "$uuid" "$bench_dir/pulse.out" "$pulse_ms" ||
                df_pulse="guest-pulse.py never heard the guest: $(tail -n 2 "$bench_dir/pulse.out")"
        t0=$(bench_now_ns)
        out=$(bench_call "$bus_a" "$p" Domain Migrate 'sa{sv}' "$dest" 1 wait b true 2>&1)
        rc=$?
        t1=$(bench_now_ns)
        job=$(bench_unquote "$out")
        mig_pulse_stop
        mig_pulse_wait "$bench_dir/pulse.out"
        df_pulse=${df_pulse:-$MIG_PULSE}
        mig_pulse_field "$MIG_PULSE" error >/dev/null || df_seen=$(mig_pulse_field "$MIG_PULSE" downtime_ms)
        if [ $rc -ne 0 ]; then
                err="Migrate {}: $out"
                destroy_both
                return 1
        fi
        df_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", d / 1e6 }')
        df_ratio=$(awk -v w="$df_wall" -v o="$once_ms" 'BEGIN { printf "%.2f", w / o }')
        stats=$(bench_call "$bus_a" "$p" Domain GetJobStats --json=short 2>&1)
        df_down=$(stat_of "$stats" downtime-ms)
        df_pass=$(stat_of "$stats" iteration)
        df_step="step $(stat_of "$stats" policy-step): $(stat_of "$stats" policy-action)"
        v=$($py "$guestctl" --socket "$(bench_serial b)" --timeout 120 verify 2>&1)
        df_verify=$(awk '{ print $1, $2 }' <<<"$v")
        [[ $v == "VERIFY OK"* ]] || err="the guest's memory on host-b: $v"
        bench_destroy b "$p"
        [ -z "$err" ] && df_ok=1
        [ "$df_ok" = 1 ]
}

# raw_budget: sets rw_*.
raw_budget() {
        local out rc
        rw_ok=0 rw_conv=- rw_wall=- rw_passes=- rw_rem=- rw_sent=- rw_verify=- err=
        out=$($py "$top/bench/raw-precopy-budget.py" "${bench_raw_args[@]}" --warmup "$warmup" --budget "$budget" 2>&1)
        rc=$?
        eval "$($py -c '
import json, shlex, sys
try:
    d = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    d = {"error": sys.argv[1].strip()[-400:]}
mib = lambda k: "-" if d.get(k) is None else "%.0f" % (d[k] / 1048576)
out = {"rw_conv": d.get("converged", "-"), "rw_wall": d.get("wall-ms", "-"), "rw_passes": d.get("passes", "-"),
       "rw_rem": mib("remaining"), "rw_sent": mib("transferred"), "rw_down": d.get("downtime-ms", "-"),
       "rw_verify": " ".join(str(d.get("verify") or "-").split()[:2]), "err": d.get("error", "")}
for k, v in out.items():
    print(f"{k}={shlex.quote(str(v))}")
' "$out")"
        [ $rc -eq 0 ] && [ -z "$err" ] && rw_ok=1
        [ "$rw_ok" = 1 ]
}

bench_describe_machine
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"
echo "# link host-a <-> host-b: $rate (tc HTB$(hosts_have_netem && echo '/netem')), $rounds round(s)"
echo "# guest: TCG, $mem MiB, rewriting a $area MiB area at $write_rate pages/s ($(awk -v r=$write_rate 'BEGIN { printf "%.0f", r * 4096 / 1e6 }') MB/s = $pct% of the link)"
echo "# copying its RAM once at $rate: $once_ms ms; targets: vmigrate total <= 3x that ($((once_ms * 3)) ms), downtime <= max-downtime ($max_downtime ms, the qemu backend's default)"
echo "# raw pre-copy: the same QEMU command line and parameters, budget $budget s"

pc_walls=() pc_downs=() pc_seens=() call_walls=() df_walls=()
for ((r = 1; r <= rounds; r++)); do
        echo
        echo "-- round $r/$rounds"
        if vm_postcopy; then
                echo "vmigrate {postcopy: true}: completed in $pc_wall ms = ${pc_ratio}x the RAM copy time ($(awk -v x="$pc_ratio" 'BEGIN { print (x <= 3) ? "meets" : "misses" }') the 3x target); switched to post-copy by itself at pass $pc_pass; downtime $pc_down ms vs max-downtime $max_downtime ms ($(awk -v d="$pc_down" -v m="$max_downtime" 'BEGIN { print (d != "-" && d <= m) ? "within" : "over" }')); the guest saw $pc_seen ms ($(awk -v d="$pc_seen" -v m="$max_downtime" 'BEGIN { print (d != "-" && d <= m) ? "within" : "over" }')), longest silence $pc_silence; guest wrote $pc_wps pages/s before; $pc_verify on host-b"
                echo "  pulse: $pc_pulse"
                pc_walls+=("$pc_wall") pc_downs+=("$pc_down") pc_seens+=("$pc_seen")
        else
                failures=$((failures + 1))
                echo "vmigrate {postcopy: true}: FAILED: $err"
        fi
        if vm_postcopy call; then
                echo "for reference, vmigrate {postcopy: true} + StartPostCopy when pass 2 begins (a client's call, not the default): completed in $pc_wall ms = ${pc_ratio}x; switched at pass $pc_pass (the $pc_first asked first); downtime $pc_down ms, the guest saw $pc_seen ms, longest silence $pc_silence; $pc_verify on host-b"
                echo "  pulse: $pc_pulse"
                call_walls+=("$pc_wall")
        else
                failures=$((failures + 1))
                echo "vmigrate {postcopy: true} + StartPostCopy: FAILED: $err"
        fi
        if vm_defaults; then
                echo "vmigrate {} (defaults: policy 'default', no post-copy): completed in $df_wall ms = ${df_ratio}x the RAM copy time ($(awk -v x="$df_ratio" 'BEGIN { print (x <= 6) ? "meets" : "misses" }') the 6x target); the policy's last step $df_step at pass $df_pass; downtime $df_down ms, the guest saw $df_seen ms; $df_verify on host-b"
                echo "  pulse: $df_pulse"
                df_walls+=("$df_wall")
        else
                failures=$((failures + 1))
                echo "vmigrate {} (defaults): FAILED: $err"
        fi
        if raw_budget; then
                if [ "$rw_conv" = True ]; then
                        echo "raw pre-copy: converged in $rw_wall ms ($rw_passes passes, downtime $rw_down ms); $rw_verify"
                else
                        echo "raw pre-copy: had NOT converged after its $budget s budget: $rw_passes passes, $rw_sent MiB sent, $rw_rem MiB still to send; cancelled, $rw_verify on the source"
                fi
        else
                failures=$((failures + 1))
                echo "raw pre-copy: FAILED: $err"
        fi
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
if [ ${#pc_walls[@]} -gt 0 ]; then
        med=$(printf '%s\n' "${pc_walls[@]}" | bench_median %.0f)
        echo "vmigrate {postcopy: true}: median $med ms over ${#pc_walls[@]} round(s) = $(awk -v w="$med" -v o="$once_ms" 'BEGIN { printf "%.2f", w / o }')x the $once_ms ms RAM copy (target <= 3x); downtimes ${pc_downs[*]} ms, as the guest saw them ${pc_seens[*]} ms (max-downtime $max_downtime ms)"
fi
if [ ${#call_walls[@]} -gt 0 ]; then
        med=$(printf '%s\n' "${call_walls[@]}" | bench_median %.0f)
        echo "reference, StartPostCopy at pass 2: median $med ms = $(awk -v w="$med" -v o="$once_ms" 'BEGIN { printf "%.2f", w / o }')x"
fi
if [ ${#df_walls[@]} -gt 0 ]; then
        med=$(printf '%s\n' "${df_walls[@]}" | bench_median %.0f)
        echo "vmigrate {} (defaults): median $med ms = $(awk -v w="$med" -v o="$once_ms" 'BEGIN { printf "%.2f", w / o }')x (target <= 6x)"
fi
[ "$failures" -eq 0 ] || echo "$failures run(s) failed"
[ "$failures" -eq 0 ]
exit $?
