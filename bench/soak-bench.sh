#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Soak: many migrations back and forth, and whether the daemons leak:
#
#     bench/soak-bench.sh [--count 200] [--rss-warmup 110] [--rss-bound-kib 256]
#                         [--rate 1gbit] [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh, through bench/lib-bench.sh)
# joined by a link shaped to --rate. The test guest (64 MiB, TCG, rewriting
# a 48 MiB area: 16 MiB working set at 5000 pages/s, as in
# tests/hosts/test-migrate-tcg.sh) is migrated --count times, a -> b -> a
# ..., each with Domain.Migrate {wait} on the host it runs on. After each:
# the job completed, the guest runs on the other host, no QEMU of it is
# left on the one it left, and it verifies every page of its memory there.
#
# Sampled after every migration, for both vmigrated: VmRSS
# (/proc/PID/status), the number of open fds (/proc/PID/fd), and the pid
# (a daemon that restarted would hide a leak); also each host's listening
# sockets (ss: TCP, UDP and unix, inside the host's namespace) and the
# files under its runtime dir (/run/vmigrate in the host).
#
# What "no leak" means here (each is a failure, exit status 1):
#   - sockets and runtime files: after migration i they are exactly what
#     they were with the guest in the same place: right after the guest
#     started on a (before the first migration) for even i, after
#     migration 1 for odd i. At the end the guest is destroyed and both
#     hosts must be back to what they were before it was created. Apart,
#     in every comparison, from the guest's QEMU logs (qemu/log/UUID*.log):
#     written on a host with its first QEMU there and kept on purpose.
#   - fds: for each daemon, the last count equals the count after the
#     first migration that left the guest in the same place (1 or 2). The
#     fds a daemon holds depend on where the guest runs (its QMP socket,
#     pidfd), so the comparison is between like states; the max is shown.
#   - RSS: ended jobs stay on the bus for 60 s (JOB_LINGER_USEC), the job
#     history keeps the last 100 jobs of each host (JobHistorySize; every
#     migration adds one on each host) and malloc keeps what it freed, so
#     RSS rises until the history is full (~+2 MiB by migration 100), hence
#     the default warm-up of 110 migrations. From the sample after
#     migration --rss-warmup (or the first one at least 90 s after the first
#     migration, whichever is later) to the last one it must grow by less
#     than --rss-bound-kib KiB. The default, 256 KiB, is about 6 times the
#     largest growth seen after the warm-up in two full runs here (+32 and
#     +44 KiB over 80 migrations: the tail of the lingering jobs' ramp,
#     flat from ~110 s on; README): a leak of ~3 KiB per migration (a
#     job's statistics, a GError, a strdup'd path per call) exceeds it over
#     80 migrations, malloc's own noise does not. Too few migrations after
#     the warm-up: RSS is shown, not judged (said so). With gdb installed,
#     the heap in use (glibc's malloc_stats, which leaves out what malloc
#     keeps after a free) is shown too, taken 65 s after the warm-up's
#     migration, every 90 migrations after it and after the last one (the
#     jobs ended meanwhile gone from the bus, the history full: alike
#     states; each adds 65 s): not judged, but where RSS grew it says
#     whether the daemon holds more.
#
# Prints one line per migration and a summary: first/last/max of RSS and
# fds per daemon. Exit status 0 if every check passed, 1 if a migration, a
# verification or a leak check failed (the reason is printed), 2 on bad
# usage or a missing prerequisite.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

count=200 rss_warmup=110 rss_bound=256 rate=1gbit build=$top/build keep_logs= do_build=1
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --count) count=${2:-} ;;
        --rss-warmup) rss_warmup=${2:-} ;;
        --rss-bound-kib) rss_bound=${2:-} ;;
        --rate) rate=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "soak-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "soak-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $count =~ ^[1-9][0-9]{0,4}$ ]] || { echo "soak-bench: --count '$count': a number from 1 to 99999" >&2; exit 2; }
[[ $rss_warmup =~ ^[1-9][0-9]{0,4}$ ]] || { echo "soak-bench: --rss-warmup '$rss_warmup': a number of migrations" >&2; exit 2; }
[[ $rss_bound =~ ^[1-9][0-9]{0,7}$ ]] || { echo "soak-bench: --rss-bound-kib '$rss_bound': KiB" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] || { echo "soak-bench: --rate '$rate': e.g. 1gbit or 500mbit" >&2; exit 2; }
if [ -n "$keep_logs" ]; then
        mkdir -p "$keep_logs" || { echo "soak-bench: cannot create --keep-logs '$keep_logs'" >&2; exit 2; }
        keep_logs=$(readlink -f "$keep_logs")
fi

bench=soak-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"
bench_call_timeout=300

uuid=b3e1c0de-0000-4000-8000-00000050a4be
pages=12288 # 48 MiB of 4 KiB pages: what verify must report
t_start=$SECONDS

bench_hosts "$rate"
trap '_rc=$?; (exit $_rc); _hosts_on_exit' EXIT

# soak_fail MESSAGE: the reason on stdout and stderr, exit status 1 (the
# EXIT trap tears the hosts down).
soak_fail() {
        echo "# FAILED: $*"
        echo "$bench: FAILED: $*" >&2
        exit 1
}

# snapshot HOST: the host's listening sockets (netid and local address;
# unix sockets by path) and the files under its runtime dir, sorted.
snapshot() {
        local h=$1 rt
        rt=$(host_path "$h" runtime)
        ip netns exec "$(host_netns "$h")" ss -Hln -t -u -x 2>/dev/null | awk '{ print "listen", $1, $5 }' | sort
        (cd "$rt" && find . -mindepth 1 -printf 'file %P\n') | sort
}

# check_snapshot HOST REF-VAR [IGNORE-REGEX]: whether HOST's snapshot is
# the one in the variable REF-VAR (lines matching IGNORE-REGEX left out of
# both). What goes away after a migration (the source's QEMU run dir, its
# sockets) may take a moment: polled for 10 s. Else the difference is in
# $snapshot_diff.
snapshot_is() {
        [ "$(snapshot "$1" | grep -v -E "${3:-^$}")" = "$(grep -v -E "${3:-^$}" <<<"${!2}")" ]
}
check_snapshot() {
        wait_until 10 snapshot_is "$@" && return 0
        snapshot_diff=$(diff <(grep -v -E "${3:-^$}" <<<"${!2}") <(snapshot "$1" | grep -v -E "${3:-^$}") |
                grep '^[<>]' | sed 's/^</-/; s/^>/+/')
        return 1
}

# rss_kib PID / nfds PID
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# How long an ended job stays on the bus (JOB_LINGER_USEC), and a margin.
job_linger=65

# heap_kib PID HOST: what the daemon's malloc has handed out and not got
# back (glibc's "in use bytes", all arenas and mmap'd blocks, in KiB): gdb
# makes it call malloc_stats(), which writes to its stderr, the host's log.
# Unlike RSS it does not count what malloc keeps after a free. Empty when
# gdb is missing or the call fails.
heap_kib() {
        local log mark
        command -v gdb >/dev/null || return 0
        log=$(host_path "$2" log)
        mark=$(wc -l <"$log")
        gdb -p "$1" -batch -nx -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || return 0
        wait_until 5 eval "tail -n +$((mark + 1)) '$log' | grep -q '^max mmap bytes'"
        tail -n +"$((mark + 1))" "$log" | awk '/^Total/ { t = 1 } t && /^in use bytes/ { print int($NF / 1024); exit }'
}

# The guest's QEMU logs (qemu/log/UUID.log, UUID-serial0.log) appear on a
# host with its first QEMU there and stay, on purpose: not a leak.
keep="^file qemu/log/$uuid"
pid_a=$(host_daemon_pid a) && pid_b=$(host_daemon_pid b) || soak_fail "no vmigrated on host a or b"
before_a=$(snapshot a) before_b=$(snapshot b)

bench_describe_machine
echo "# link host-a <-> host-b: $rate; $count migrations of a 64 MiB TCG guest rewriting 16 MiB of a 48 MiB area at 5000 pages/s"
echo "# daemons: host-a pid $pid_a, host-b pid $pid_b; load average at start: $(bench_load)"

xml=$(guest_domain_xml soak qemu 'vmtest.mem=48M vmtest.ws=16M vmtest.rate=5000' 64 "$uuid")
out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager CreateXML s "$xml" 2>&1) ||
        soak_fail "CreateXML on host-a: $out"
path=$(bench_unquote "$out")
out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) ||
        soak_fail "no heartbeat from the guest on host-a: $out"
# The reference for even i: the guest runs on a, nothing migrated yet.
ref0_a=$(snapshot a) ref0_b=$(snapshot b)

# samples: "i rss_a fds_a rss_b fds_b seconds" per migration.
samples=$bench_dir/samples
: >"$samples"
here=a
printf '%5s %-6s %8s %8s %9s %6s %9s %6s\n' "#" from-to "wall ms" verify-ms "rss-a KiB" fds-a "rss-b KiB" fds-b
for ((i = 1; i <= count; i++)); do
        from=$here
        if [ "$from" = a ]; then to=b; else to=a; fi
        src_bus=$(host_bus_address "$here") dst_bus=$(host_bus_address "$to")
        t0=$(bench_now_ns)
        out=$(bench_call "$src_bus" "$path" Domain Migrate 'sa{sv}' "$(mig_dest "$to")" 1 wait b true 2>&1) ||
                soak_fail "migration $i ($here -> $to): Migrate: $out"
        wall=$((($(bench_now_ns) - t0) / 1000000))
        job=$(bench_unquote "$out")
        phase=$(bench_prop "$src_bus" "$job" Job Phase)
        [ "$phase" = completed ] ||
                soak_fail "migration $i ($here -> $to): job $job is '$phase': $(bench_prop "$src_bus" "$job" Job Error)"
        state=$(bench_prop "$dst_bus" "$path" Domain State)/$(bench_prop "$dst_bus" "$path" Domain StateReason)
        [ "$state" = running/migrated ] || soak_fail "migration $i ($here -> $to): the guest is $state on host-$to"
        wait_until 10 eval "[ -z \"\$(mig_qemu_pids $here $uuid)\" ]" ||
                soak_fail "migration $i ($here -> $to): QEMU $(mig_qemu_pids "$here" "$uuid" | tr '\n' ' ')still runs on host-$here"
        out=$($py "$guestctl" --socket "$(bench_serial "$to")" --timeout 120 verify 2>&1)
        [[ $out =~ ^VERIFY\ OK\ pages=$pages\ ms=([0-9]+) ]] ||
                soak_fail "migration $i ($here -> $to): the guest's memory on host-$to: $out"
        verify_ms=${BASH_REMATCH[1]}
        here=$to

        for h in a b; do
                p=$(host_daemon_pid "$h") || soak_fail "after migration $i: no vmigrated on host-$h"
                eval "[ \"\$p\" = \"\$pid_$h\" ]" || soak_fail "after migration $i: vmigrated on host-$h restarted (pid $p)"
        done
        ra=$(rss_kib "$pid_a") fa=$(nfds "$pid_a") rb=$(rss_kib "$pid_b") fb=$(nfds "$pid_b")
        echo "$i $ra $fa $rb $fb $((SECONDS - t_start))" >>"$samples"
        printf '%5d %-6s %8d %8d %9d %6d %9d %6d\n' "$i" "$from-$to" "$wall" "$verify_ms" "$ra" "$fa" "$rb" "$fb"

        if ((i == 1)); then
                ref1_a=$(snapshot a) ref1_b=$(snapshot b)
        fi
        if ((i == count || (i >= rss_warmup && (i - rss_warmup) % 90 == 0))) && command -v gdb >/dev/null; then
                # Once the jobs ended meanwhile have left the bus: alike
                # states, the job history full in both.
                sleep "$job_linger"
                heap_a[i]=$(heap_kib "$pid_a" a) heap_b[i]=$(heap_kib "$pid_b" b)
        fi
        for h in a b; do
                check_snapshot "$h" "ref$((i % 2))_$h" "$keep" ||
                        soak_fail "after migration $i: host-$h's listening sockets or runtime files differ from after migration $((i % 2 == 0 ? 0 : 1)) (- then, + now):
$snapshot_diff"
        done
done

bench_destroy "$here" "$path" || soak_fail "Destroy on host-$here failed"
bench_call "$(host_bus_address "$here")" "$path" Domain Undefine >/dev/null 2>&1 || true
for h in a b; do
        check_snapshot "$h" "before_$h" "$keep" ||
                soak_fail "after the guest was destroyed: host-$h's listening sockets or runtime files differ from before it was created (- then, + now):
$snapshot_diff"
done

# The summary and the flatness verdicts.
echo
echo "== summary: $count migrations in $((SECONDS - t_start)) s, load average at the end: $(bench_load)"
echo "sockets and runtime files: unchanged after every migration and back to the start after Destroy"
verdict=$(awk -v warm="$rss_warmup" -v bound="$rss_bound" '
{ n++; i[n] = $1; r[1, n] = $2; f[1, n] = $3; r[2, n] = $4; f[2, n] = $5; t[n] = $6 }
END {
        # The RSS baseline: migration "warm", or the first one 90 s after
        # migration 1 (jobs linger 60 s), whichever comes later.
        base = 0
        for (k = 1; k <= n; k++)
                if (i[k] >= warm && t[k] - t[1] >= 90) { base = k; break }
        bad = 0
        for (d = 1; d <= 2; d++) {
                name = d == 1 ? "host-a" : "host-b"
                rmax = 0; fmax = 0
                for (k = 1; k <= n; k++) {
                        if (r[d, k] > rmax) rmax = r[d, k]
                        if (f[d, k] > fmax) fmax = f[d, k]
                }
                # fds: the last sample against the first with the guest in
                # the same place (same parity).
                fref = (n >= 2 && (n - 1) % 2 == 1) ? 2 : 1
                printf "%s vmigrated RSS KiB: first %d, last %d, max %d", name, r[d, 1], r[d, n], rmax
                if (base > 0 && base < n) {
                        g = r[d, n] - r[d, base]
                        printf "; after migration %d: %d -> %d (%+d KiB, bound %d)", i[base], r[d, base], r[d, n], g, bound
                        if (g >= bound) { printf " NOT FLAT"; bad = 1 }
                } else
                        printf "; not judged: no migration after the warm-up (migration %d and 90 s)", warm
                printf "\n"
                printf "%s vmigrated fds: first %d, last %d, max %d; last vs. migration %d (guest in the same place): %d -> %d", name, f[d, 1], f[d, n], fmax, i[fref], f[d, fref], f[d, n]
                if (f[d, n] != f[d, fref]) { printf " NOT FLAT"; bad = 1 }
                printf "\n"
        }
        exit bad
}' "$samples")
flat=$?
echo "$verdict"
# The heap, for whoever reads the RSS figures: not judged (malloc's own
# bookkeeping is in it too).
if [ -n "${heap_a[count]:-}" ] && [ -n "${heap_a[rss_warmup]:-}" ] && ((rss_warmup < count)); then
        for h in a b; do
                line="host-$h vmigrated heap in use KiB (malloc_stats, 65 s after migration N):" last=
                eval "heap=(\"\${!heap_$h[@]}\")"
                for n in "${heap[@]}"; do
                        eval "v=\${heap_$h[n]}"
                        [ -n "$v" ] || continue
                        line+=" $n: $v"
                        [ -n "$last" ] && line+=" ($(printf '%+d' $((v - last))))"
                        last=$v
                done
                echo "$line"
        done
fi
[ -n "$keep_logs" ] && cp "$samples" "$keep_logs/soak-samples.txt"
[ "$flat" -eq 0 ] || soak_fail "RSS or fds of a daemon are not flat (see above)"
if grep -q 'not judged' <<<"$verdict"; then
        echo "# soak: $count/$count migrations completed and verified, no socket, runtime file or fd leaked; RSS not judged (too few migrations)"
else
        echo "# soak: $count/$count migrations completed and verified, nothing leaked"
fi
exit 0
