#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Many migrations at once over one link (issue 14):
#
#     bench/fleet-bench.sh [--rounds N] [--guests 8] [--mem 256] [--rate 1gbit] [--write-rate PAGES]
#                          [--variants raw,evacuate,evacuate-noshare,migrate] [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh) joined by a link shaped to
# --rate (tc HTB), both daemons with --max-outgoing-migrations and
# --max-incoming-migrations = --guests. Each variant starts --guests TCG
# test guests of --mem MiB on host-a (every page of their RAM filled once
# at boot; then idle, or rewriting --write-rate pages/s each of an 8 MiB
# working set), lets them warm up, and moves all of them to host-b at
# once. Variants, each round, the order rotating:
#
#   raw               the floor: bench/raw-qmp-migrate.py, one per guest,
#                     all started together (--sync-dir), each driving its
#                     own pair of QEMUs over QMP with the QEMU command line
#                     vmigrated used for that guest, no bandwidth cap
#                     (TCP alone shares the link).
#   evacuate          one Manager.Evacuate([host-b], {parallel: GUESTS})
#                     on host-a, with [Migration] OutgoingBandwidthMbps=
#                     the link rate (set in a configuration drop-in, then
#                     SIGHUP): vmigrated gives every pre-copy stream
#                     leaving host-a a max-min fair share of the link.
#   evacuate-noshare  the same with OutgoingBandwidthMbps=0 (no shares:
#                     TCP alone shares).
#   migrate           GUESTS Domain.Migrate(host-b, {wait: true}) calls
#                     started at once, with the fair shares as evacuate.
#
# After each variant every guest verifies every page on host-b (VERIFY OK).
#
# Figures, per variant and round:
#   time       each migration's, from its start to its end. vmigrate: the
#              source job's started-at .. ended-at (ListJobHistory on
#              host-a); raw: spawning the destination QEMU .. the source
#              QEMU's exit (raw-qmp-migrate.py's start-us, end-us).
#   window     first start .. last end, and for evacuate the Evacuate call
#              .. its State leaving "running" (polled every 100 ms).
#   sent       RAM bytes on the wire, summed: the history's data-processed
#              (vmigrate), query-migrate's ram.transferred (raw).
#   aggregate  sent / window, in MB/s (10^6 B/s), and as a fraction of the
#              link (1 Gbit/s = 125 MB/s; HTB counts whole frames, headers
#              included, so the payload can reach at most ~0.94-0.95 of
#              it: the line "one TCP stream" shows that ceiling).
#   slow/fast  the slowest migration's time / the fastest's.
# Targets (issue 14): all complete, aggregate >= 0.9 of the link, slow/fast
# <= 1.5. Ratios vs raw: aggregate and window of each variant / raw's.
#
# Exit status 0 whatever the figures (a measurement), 1 if a migration or
# a verification failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=3 guests=8 mem=256 rate=1gbit write_rate=0 variants=raw,evacuate,evacuate-noshare,migrate
build=$top/build keep_logs= do_build=1 warmup=2
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --guests) guests=${2:-} ;;
        --mem) mem=${2:-} ;;
        --rate) rate=${2:-} ;;
        --write-rate) write_rate=${2:-} ;;
        --variants) variants=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "fleet-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "fleet-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "fleet-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $guests =~ ^[1-9][0-9]?$ ]] && [ "$guests" -ge 2 ] && [ "$guests" -le 16 ] ||
        { echo "fleet-bench: --guests '$guests': 2 to 16" >&2; exit 2; }
[[ $mem =~ ^[1-9][0-9]*$ ]] && [ "$mem" -ge 32 ] && [ "$mem" -le 1024 ] ||
        { echo "fleet-bench: --mem '$mem': MiB, 32 to 1024" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] ||
        { echo "fleet-bench: --rate '$rate': e.g. 1gbit or 500mbit" >&2; exit 2; }
[[ $write_rate =~ ^[0-9]+$ ]] && [ "$write_rate" -le 100000 ] ||
        { echo "fleet-bench: --write-rate '$write_rate': pages/s per guest, 0 to 100000" >&2; exit 2; }
IFS=, read -r -a variant_list <<<"$variants"
[ ${#variant_list[@]} -gt 0 ] || { echo "fleet-bench: --variants: none given" >&2; exit 2; }
for v in "${variant_list[@]}"; do
        case $v in
        raw | evacuate | evacuate-noshare | migrate) ;;
        *) echo "fleet-bench: unknown variant '$v' (raw, evacuate, evacuate-noshare, migrate)" >&2; exit 2 ;;
        esac
done

bench=fleet-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"
bench_call_timeout=600

raw=$top/bench/raw-qmp-migrate.py
failures=0
t_start=$SECONDS
rate_bps=$(hosts_rate_bps "$rate")
link_mbps=$((rate_bps / 1000000))
link_Bps=$((rate_bps / 8))
uuids=()
for ((i = 1; i <= guests; i++)); do
        uuids+=("$(printf 'b3e1c0de-0000-4000-8000-0000000014%02x' "$i")")
done

HOSTS_DAEMON_ARGS="--max-outgoing-migrations=$guests --max-incoming-migrations=$guests"
bench_hosts "$rate"
log_a=$(host_path a log)
# Inside host-a's mount namespace /run/vmigrate is its runtime dir; the
# daemon reads its drop-ins under --config-root (lib-hosts.sh).
dropin_dir=$(host_path a dir)/config/run/vmigrate/vmigrated.conf.d

# set_share MBPS: [Migration] OutgoingBandwidthMbps=MBPS on host-a, applied
# by SIGHUP; returns once the daemon says it reloaded.
set_share() {
        local before
        mkdir -p "$dropin_dir"
        printf '[Migration]\nOutgoingBandwidthMbps=%s\n' "$1" >"$dropin_dir/50-fleet-bench.conf"
        before=$(grep -c 'reloaded the configuration' "$log_a")
        kill -HUP "$(host_daemon_pid a)" || return 1
        wait_until 10 eval "[ \$(grep -c 'reloaded the configuration' '$log_a') -gt $before ]" || return 1
        [ "$1" = 0 ] || grep -q "OutgoingBandwidthMbps=$1 " "$log_a"
}
# Every option the daemon took at start is logged once; make sure the
# drop-in path is right before anything is measured.
set_share "$link_mbps" && grep -q "OutgoingBandwidthMbps=$link_mbps " "$log_a" ||
        bail_out "host-a's vmigrated did not take OutgoingBandwidthMbps=$link_mbps from $dropin_dir"

# What one plain TCP stream gets over the shaped link (HTB counts frames,
# headers included): the ceiling of what a payload can reach.
tcp_ceiling() {
        local port=49299 bytes=$((128 * 1048576)) srv t
        host_exec b "$py" "$top/tests/hosts/xfer.py" serve "$port" >"$bench_dir/xfer.out" 2>&1 &
        srv=$!
        wait_until 10 eval "ip netns exec $(host_netns b) ss -Hltn 'sport = :$port' | grep -q LISTEN" ||
                { kill "$srv"; return 1; }
        t=$(host_exec a "$py" "$top/tests/hosts/xfer.py" send host-b "$port" "$bytes") || { kill "$srv"; return 1; }
        wait "$srv" && [ "$(cat "$bench_dir/xfer.out")" = "$bytes" ] || return 1
        awk -v b="$bytes" -v t="$t" -v l="$link_Bps" 'BEGIN { printf "%.1f MB/s = %.3f of the link\n", b / t / 1e6, b / t / l }'
}

guest_cmdline="vmtest.rate=$write_rate"
[ "$write_rate" -gt 0 ] && guest_cmdline+=" vmtest.ws=8M"

# start_guests: the guests on host-a, each having filled its memory and
# run for the warm-up; sets paths[]. The first time, keeps each guest's
# QEMU command line for the raw runs.
declare -a paths=()
start_guests() {
        local i out
        paths=()
        for ((i = 0; i < guests; i++)); do
                out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager CreateXML s \
                        "$(guest_domain_xml "fleet$((i + 1))" qemu "$guest_cmdline" "$mem" "${uuids[i]}")" 2>&1) ||
                        { err="CreateXML of fleet$((i + 1)) on host-a: $out"; return 1; }
                paths+=("$(bench_unquote "$out")")
        done
        for ((i = 0; i < guests; i++)); do
                [ -e "$bench_dir/argv-$i.log" ] ||
                        cp "$(host_path a runtime)/qemu/log/${uuids[i]}.log" "$bench_dir/argv-$i.log"
                out=$($py "$guestctl" --socket "$(host_path a runtime)/qemu/${uuids[i]}/serial0.sock" --timeout 120 \
                        wait-heartbeat 2>&1) || { err="no heartbeat from fleet$((i + 1)) on host-a: $out"; return 1; }
        done
        sleep "$warmup"
}

# destroy_all HOST: every guest of the bench gone from HOST.
destroy_all() {
        local i addr
        addr=$(host_bus_address "$1")
        for ((i = 0; i < ${#paths[@]}; i++)); do
                bench_call "$addr" "${paths[i]}" Domain Destroy >/dev/null 2>&1
        done
        wait_until 30 eval "[ -z \"\$(ls '$(host_path "$1" runtime)/qemu' 2>/dev/null | grep -v '^log\$')\" ]"
}

# verify_all: every guest checks its memory on host-b; sets verified.
verify_all() {
        local i out sock ok=0
        for ((i = 0; i < guests; i++)); do
                sock=$(host_path b runtime)/qemu/${uuids[i]}/serial0.sock
                if [ ! -S "$sock" ]; then
                        err=${err:-"fleet$((i + 1)) does not run on host-b"}
                        continue
                fi
                out=$($py "$guestctl" --socket "$sock" --timeout 300 verify 2>&1) && ok=$((ok + 1)) ||
                        err=${err:-"fleet$((i + 1)) on host-b: $out"}
        done
        verified="$ok/$guests"
        [ "$ok" = "$guests" ]
}

# job_history SINCE-US: host-a's ended outgoing jobs since then, one line
# each: "start-us end-us bytes phase domain".
job_history() {
        local out
        out=$(busctl --no-pager --json=short --address="$bus_a" call org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \
                org.vmigrate.Migrate1.Manager ListJobHistory 'a{sv}' 2 kind s migration-out since t "$1") || return 1
        $py -c '
import json, sys
for j in json.loads(sys.argv[1])["data"][0]:
    g = lambda k: j.get(k, {}).get("data", "-")
    print(g("started-at"), g("ended-at"), g("data-processed"), g("phase"), g("domain"))
' "$out"
}

# shares_seen FROM-LINE: what host-a's log says of the shares since that
# line: "most streams sharing at once / the smallest share in MB/s".
shares_seen() {
        tail -n +"$1" "$log_a" | awk '
        / share [0-9]+ B\/s of [0-9]+ B\/s with [0-9]+ others/ {
                for (i = 1; i <= NF; i++) if ($i == "share") s = $(i + 1); else if ($i == "others") n = $(i - 1)
                if (n + 1 > most) most = n + 1
                if (min == "" || s < min) min = s
        }
        END { if (most == "") print "none"; else printf "%d/%.1f\n", most, min / 1e6 }'
}

# link_record: the link speed host-a keeps for host-b (links.h: what a
# migration that ran alone measured; the budget of the shares when
# OutgoingBandwidthMbps is 0), in MB/s, or "none".
link_record() {
        local f
        f=$(find "$(host_path a state)/links" -type f 2>/dev/null | head -n1)
        [ -n "$f" ] || { echo none; return; }
        awk -F= '$1 == "Bandwidth" { printf "%.1f\n", $2 / 1e6 }' "$f"
}

# run_vmigrate VARIANT: writes "start end bytes" lines to $lines.
run_vmigrate() {
        local v=$1 i out ev state since line0 deadline pids=() rc=0
        set_share "$([ "$v" = evacuate-noshare ] && echo 0 || echo "$link_mbps")" ||
                { err="host-a's vmigrated did not reload its configuration"; return 1; }
        start_guests || return 1
        line0=$(($(wc -l <"$log_a") + 1))
        since=$(($(bench_now_ns) / 1000))
        if [ "$v" = migrate ]; then
                for ((i = 0; i < guests; i++)); do
                        bench_call "$bus_a" "${paths[i]}" Domain Migrate 'sa{sv}' "$dest" 1 wait b true \
                                >"$bench_dir/migrate-$i.out" 2>&1 &
                        pids+=($!)
                done
                for ((i = 0; i < guests; i++)); do
                        wait "${pids[i]}" || { rc=1; err=${err:-"Migrate of fleet$((i + 1)): $(cat "$bench_dir/migrate-$i.out")"}; }
                done
                evac_ms=-
        else
                out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager Evacuate 'asa{sv}' 1 "$dest" 1 \
                        parallel u "$guests" 2>&1) || { err="Evacuate: $out"; destroy_all a; return 1; }
                ev=$(bench_unquote "$out")
                deadline=$((SECONDS + 600))
                while state=$(bench_prop "$bus_a" "$ev" Evacuation State) && [ "$state" = running ] &&
                        [ $SECONDS -lt $deadline ]; do
                        sleep 0.1
                done
                evac_ms=$((($(bench_now_ns) / 1000 - since) / 1000))
                if [ "$state" != completed ]; then
                        rc=1
                        err="evacuation $state: $(busctl --no-pager --address="$bus_a" get-property org.vmigrate.Migrate1 \
                                "$ev" org.vmigrate.Migrate1.Evacuation Results 2>&1 | head -c 600)"
                fi
        fi
        shares=$(shares_seen "$line0")
        record=$(link_record)
        job_history "$since" | awk '$4 == "completed" { print $1, $2, $3 }' >"$lines"
        [ "$(wc -l <"$lines")" = "$guests" ] ||
                { rc=1; err=${err:-"$(wc -l <"$lines")/$guests migrations completed in host-a's job history"}; }
        verify_all || rc=1
        destroy_all b
        destroy_all a
        return $rc
}

# run_raw: GUESTS raw-qmp-migrate.py at once; writes "start end bytes" lines.
run_raw() {
        local i sync=$bench_dir/sync pids=() rc=0
        shares=-
        evac_ms=-
        rm -rf "$sync" && mkdir -p "$sync"
        for ((i = 0; i < guests; i++)); do
                $py "$raw" --argv-from "$bench_dir/argv-$i.log" --workdir "$bench_dir/raw-$i" \
                        --src-exec "$bench_dir/in-a" --dst-exec "$bench_dir/in-b" --dest-host host-b \
                        --port $((49200 + i)) --guestctl "$guestctl" --warmup "$warmup" --sync-dir "$sync" \
                        --timeout 300 --verify-timeout 300 >"$bench_dir/raw-$i.out" 2>&1 &
                pids+=($!)
        done
        # all_at STAGE: every run has reached STAGE, or ended.
        all_at() {
                local i
                for ((i = 0; i < guests; i++)); do
                        [ -e "$sync/$1.$((49200 + i))" ] || ! kill -0 "${pids[i]}" 2>/dev/null || return 1
                done
        }
        wait_until 300 all_at ready
        touch "$sync/go"
        wait_until 600 all_at "done"
        touch "$sync/verify"
        : >"$lines"
        local ok=0
        for ((i = 0; i < guests; i++)); do
                wait "${pids[i]}" || rc=1
                eval "$($py -c '
import json, shlex, sys
try:
    d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    d = {"error": "no result: %s" % e}
print("r_err=%s" % shlex.quote(d.get("error", "")))
print("r_line=%s" % shlex.quote(" ".join(str(d.get(k, "")) for k in ("start-us", "end-us", "transferred"))))
print("r_verify=%s" % shlex.quote(str(d.get("verify") or "")))
' "$bench_dir/raw-$i.out")"
                if [ -n "$r_err" ]; then
                        rc=1
                        err=${err:-"raw fleet$((i + 1)): $r_err"}
                        continue
                fi
                echo "$r_line" >>"$lines"
                [ "${r_verify%% *}" = VERIFY ] && [ "$(awk '{ print $2 }' <<<"$r_verify")" = OK ] && ok=$((ok + 1))
        done
        verified="$ok/$guests"
        return $rc
}

# figures: from $lines ("start-us end-us bytes" per migration), "n window-s
# sent-MiB aggregate-MB/s xlink min-s median-s max-s slow/fast".
figures() {
        awk 'NF == 3 { print ($2 - $1) / 1e6, $1, $2, $3 }' "$lines" | sort -g | awk -v l="$link_Bps" '
        {
                n++; t[n] = $1; b += $4
                if (first == "" || $2 < first) first = $2
                if ($3 > last) last = $3
        }
        END {
                if (n == 0) { print "0 - - - - - - - -"; exit }
                w = (last - first) / 1e6
                med = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
                printf "%d %.2f %.1f %.1f %.3f %.2f %.2f %.2f %.2f\n", n, w, b / 1048576, b / w / 1e6, b / w / l,
                        t[1], med, t[n], t[n] / t[1]
        }'
}

med() {
        tr ' ' '\n' <<<"$2" | grep -v '^-\?$' | bench_median "$1"
}

bench_describe_machine
echo "# link host-a <-> host-b: $rate (tc HTB$(hosts_have_netem && echo '/netem')) = $((link_Bps / 1000000)) MB/s, $rounds round(s), warm-up ${warmup} s"
echo "# one TCP stream over the link (tests/hosts/xfer.py, 128 MiB): $(tcp_ceiling || echo -)"
echo "# $guests guests on host-a: TCG, $mem MiB each, all of it filled at boot, $([ "$write_rate" -gt 0 ] &&
        echo "rewriting $write_rate pages/s each in an 8 MiB working set" || echo "then idle")"
echo "# daemons: --max-outgoing-migrations=$guests --max-incoming-migrations=$guests; shares: OutgoingBandwidthMbps=$link_mbps (drop-in + SIGHUP)"
echo "# time = a migration's start .. end; window = first start .. last end; aggregate = RAM sent / window; x link = aggregate / $((link_Bps / 1000000)) MB/s"
echo "# shares = host-a's log: most pre-copy streams sharing at once / smallest share MB/s;"
echo "#     link rec = the link speed (MB/s) host-a keeps for host-b after the run (the shares' budget when OutgoingBandwidthMbps=0)"
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"

lines=$bench_dir/lines
declare -A aggs=() xlinks=() windows=() slowfast=() maxs=() evacs=()
for ((r = 1; r <= rounds; r++)); do
        # Rotate the order; a vmigrate variant comes first in round 1 (the
        # raw runs reuse the QEMU command lines vmigrated wrote), unless
        # raw is the only variant.
        order=()
        n=${#variant_list[@]}
        for ((i = 0; i < n; i++)); do
                order+=("${variant_list[$(((r + i) % n))]}")
        done
        if [ ! -e "$bench_dir/argv-0.log" ] && [ "${order[0]}" = raw ]; then
                if [ "$n" -gt 1 ]; then
                        order=("${order[@]:1}" raw)
                else
                        err=
                        start_guests || bench_fail "cannot start the guests: $err"
                        destroy_all a
                fi
        fi
        declare -A row=()
        for v in "${order[@]}"; do
                err= verified=- shares=- evac_ms=- record=-
                : >"$lines"
                if [ "$v" = raw ]; then run_raw; else run_vmigrate "$v"; fi
                rc=$?
                cp "$lines" "$bench_dir/lines-$r-$v"
                read -r f_n f_w f_mib f_agg f_x f_min f_med f_max f_sf < <(figures)
                row[$v]=$(printf '%-17s %5s %8s %9s %9s %7s %6s %6s %6s %6s %9s %9s %8s %8s' "$v" "$f_n/$guests" "$f_w" \
                        "$evac_ms" "$f_mib" "$f_agg" "$f_x" "$f_min" "$f_med" "$f_max" "$f_sf" "$shares" "$record" "$verified")
                if [ $rc -ne 0 ]; then
                        failures=$((failures + 1))
                        echo "# round $r $v FAILED: $err"
                        # Leave nothing behind for the next variant.
                        destroy_all b
                        destroy_all a
                fi
                if [ "$f_n" = "$guests" ]; then
                        aggs[$v]+="$f_agg " xlinks[$v]+="$f_x " windows[$v]+="$f_w " slowfast[$v]+="$f_sf "
                        maxs[$v]+="$f_max "
                        [ "$evac_ms" != - ] && evacs[$v]+="$evac_ms "
                fi
        done
        printf '\n-- round %d/%d (%s)\n' "$r" "$rounds" "${order[*]}"
        printf '%-17s %5s %8s %9s %9s %7s %6s %6s %6s %6s %9s %9s %8s %8s\n' variant "done" "window s" "evac ms" "sent MiB" \
                "MB/s" "x link" "min s" "med s" "max s" slow/fast shares "link rec" verified
        for v in "${variant_list[@]}"; do
                [ -n "${row[$v]:-}" ] && echo "${row[$v]}"
        done
        for v in "${variant_list[@]}"; do
                [ -s "$bench_dir/lines-$r-$v" ] && echo "$v times s: $(awk '{ printf "%.2f\n", ($2 - $1) / 1e6 }' \
                        "$bench_dir/lines-$r-$v" | sort -g | tr '\n' ' ')"
        done
        unset row
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
for v in "${variant_list[@]}"; do
        if [ -z "${aggs[$v]:-}" ]; then
                echo "$v: no round where all $guests completed"
                continue
        fi
        nr=$(wc -w <<<"${aggs[$v]}")
        x=$(med %.3f "${xlinks[$v]}")
        sf=$(med %.2f "${slowfast[$v]}")
        line="$v: medians over $nr round(s): window $(med %.2f "${windows[$v]}") s, aggregate $(med %.1f "${aggs[$v]}") MB/s = $x of the link"
        line+=" ($(awk -v x="$x" 'BEGIN { print (x >= 0.9) ? "meets" : "below" }') 0.9), slow/fast $sf"
        line+=" ($(awk -v s="$sf" 'BEGIN { print (s <= 1.5) ? "meets" : "above" }') 1.5), slowest $(med %.2f "${maxs[$v]}") s"
        [ -n "${evacs[$v]:-}" ] && line+=", Evacuate call .. ended $(med %.0f "${evacs[$v]}") ms"
        if [ "$v" != raw ] && [ -n "${aggs[raw]:-}" ]; then
                line+="; vs raw: aggregate $(awk -v a="$(med %.2f "${aggs[$v]}")" -v b="$(med %.2f "${aggs[raw]}")" \
                        'BEGIN { printf "%.3f", a / b }'), window $(awk -v a="$(med %.3f "${windows[$v]}")" \
                        -v b="$(med %.3f "${windows[raw]}")" 'BEGIN { printf "%.3f", a / b }')"
        fi
        echo "$line"
done
[ "$failures" -eq 0 ] || echo "$failures variant run(s) with a migration or a verification failed"
[ "$failures" -eq 0 ]
exit $?
