#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Option copy-storage=all against the same copy driven by hand, on the same hosts, link and guest:
#
#     bench/storage-bench.sh [--rounds N] [--rate 1gbit] [--disk-size MIB] [--warmup SECONDS]
#                                 [--build-dir DIR] [--no-build] [--keep-logs DIR]
#
# Two test hosts (tests/hosts/lib-hosts.sh), each with its own
# /srv/vmigrate/images, joined by a link shaped to --rate (tc HTB). The
# guest is the TCG test guest (128 MiB, rewriting a 32 MiB area at 1000
# pages/s) with two disks, both copied:
#
#   vda  raw, --disk-size MiB (256), virtio-blk, filled with random bytes
#        before each migration (zero blocks are skipped by the mirror and
#        would flatter the rate). The test guest has no virtio driver, so
#        nothing writes to it: the destination's image must equal the
#        source's byte for byte (cmp).
#   hda  qcow2, 4 MiB, IDE, fresh before each migration and rewritten by
#        the guest at 100 blocks/s the whole time; the guest verifies every
#        block on the destination (disk-verify). Each 4 KiB write dirties a
#        64 KiB granule of its mirror, which copies it again: up to 6.5 MB/s
#        on the link, counted in the disk bytes.
#
# Per round the guest is migrated host-a -> host-b in two ways, alternating
# which goes first:
#
#   vmigrate  Domain.Migrate(host-b's bus, {copy-storage: all, wait: true})
#             with busctl, of a domain defined on host-a and started there.
#   raw       bench/raw-qmp-mirror.py: the QEMU command line vmigrated used
#             for the guest, driven over QMP the way libvirt does
#             --copy-storage-all: qemu-img create on host-b, QEMU started
#             with -incoming defer, nbd-server-start + block-export-add
#             (writable); on host-a blockdev-add (nbd) + blockdev-mirror
#             sync=full, wait for every BLOCK_JOB_READY, migrate, then
#             block-job-cancel (the mirrors complete), nbd-server-stop and
#             cont on host-b, quit on host-a.
#
# Wall time: vmigrate, the busctl call from its start to its reply; raw,
# from the first qemu-img create to the source QEMU's exit. Both have
# started the guest and let it run --warmup seconds before. The disk phase
# runs from the first mirror command to the memory's "migrate": raw, timed
# inside raw-qmp-mirror.py; vmigrate, the times host-a's vmigrated logs
# "copying its disks first" and "every disk is in sync ...: the memory
# goes now" (its log, followed with tail -F and stamped as lines arrive).
# Split further: mirror (to the last BLOCK_JOB_READY) and ready lag (that
# event to "migrate"), then memory (to every mirror completed) and finish
# (to the end). Disk bytes, what the mirrors copied by the end of the disk
# phase: vmigrate, GetJobStats disk-total of host-a's job (its last poll of
# the mirrors); raw, their len in query-block-jobs just before "migrate".
# The disk copy rate is disk bytes / disk phase, shown against the link
# rate, and so is what one plain TCP stream gets over the same link first
# (tests/hosts/xfer.py; HTB counts whole frames, so no payload reaches the
# rate). After each migration the guest's memory (verify) and IDE disk
# (disk-verify) are checked on host-b and vda is compared with its source.
#
# Prints a table per round, the ratios (vmigrate disk rate / link, / raw
# disk rate, vmigrate wall / raw wall) and their medians. Exit status 0
# whatever the ratios (it is a measurement), 1 if a migration or a
# verification failed, 2 on bad usage.
set -u
cd "$(dirname "$0")/.."
top=$PWD

usage() {
        sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//'
        exit "${1:-2}"
}

rounds=3 rate=1gbit disk_mib=256 warmup=2 build=$top/build keep_logs= do_build=1
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) do_build=0; shift; continue ;;
        --rounds) rounds=${2:-} ;;
        --rate) rate=${2:-} ;;
        --disk-size) disk_mib=${2:-} ;;
        --warmup) warmup=${2:-} ;;
        --build-dir) build=${2:-} ;;
        --keep-logs) keep_logs=${2:-} ;;
        -h | --help) usage 0 ;;
        *) echo "storage-bench: unknown option '$1'" >&2; usage ;;
        esac
        [ $# -ge 2 ] || { echo "storage-bench: $1 needs a value" >&2; exit 2; }
        shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "storage-bench: --rounds '$rounds': a number from 1 to 99" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*(mbit|gbit)$ ]] ||
        { echo "storage-bench: --rate '$rate': e.g. 1gbit or 500mbit" >&2; exit 2; }
[[ $disk_mib =~ ^[1-9][0-9]{0,4}$ ]] && [ "$disk_mib" -ge 16 ] && [ "$disk_mib" -le 16384 ] ||
        { echo "storage-bench: --disk-size '$disk_mib': MiB from 16 to 16384" >&2; exit 2; }
[[ $warmup =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "storage-bench: --warmup '$warmup': seconds" >&2; exit 2; }

bench=storage-bench
# shellcheck source=lib-bench.sh
. "$top/bench/lib-bench.sh"
bench_prepare "$build" "$do_build" "$keep_logs"
command -v qemu-img >/dev/null || bench_fail "qemu-img is missing (package qemu-utils)"
# The random master, the source's copy and the destination's: three times
# the disk, in the hosts' run dir under /tmp.
free_mib=$(($(df -Pk /tmp | awk 'NR == 2 { print $4 }') / 1024))
[ "$free_mib" -gt $((disk_mib * 3 + 1024)) ] ||
        bench_fail "--disk-size $disk_mib needs $((disk_mib * 3 + 1024)) MiB free in /tmp, there are $free_mib"

raw=$top/bench/raw-qmp-mirror.py
uuid=b3e1c0de-0000-4000-8000-00000000d15c
failures=0
t_start=$SECONDS
export LC_ALL=C # EPOCHREALTIME with a dot
rate_bps=$(hosts_rate_bps "$rate")
guest_cmdline="vmtest.mem=32M vmtest.rate=1000 vmtest.disk_rate=100"
imgdir=/srv/vmigrate/images
data_img=sb-data.raw ide_img=sb-ide.qcow2 ide_mib=4

bench_hosts "$rate"
bench_call_timeout=600
ia=$(host_path a images) ib=$(host_path b images)
master=$bench_dir/data.master
dd if=/dev/urandom of="$master" bs=1M count="$disk_mib" status=none || bail_out "cannot write $master"

# host-a's vmigrated log lines that delimit the disk phase, stamped (µs
# since the epoch) as they are written. Through a fifo, so that tail has a
# pid of its own to stop; the stamping ends when it does.
marks=$bench_dir/marks
mkfifo "$bench_dir/log.fifo" || bail_out "cannot make a fifo in $bench_dir"
stamp_lines() {
        grep --line-buffered -E \
                "copying its disks first|QMP event BLOCK_JOB_READY|every disk is in sync|disk copies completed" |
                while IFS= read -r line; do
                        printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"
                done
}
stamp_lines <"$bench_dir/log.fifo" >"$marks" &
stamp_pid=$!
tail -n0 -F --pid=$$ "$(host_path a log)" >"$bench_dir/log.fifo" 2>/dev/null &
tail_pid=$!
bench_cleanup() {
        kill "$tail_pid" 2>/dev/null
        wait "$tail_pid" "$stamp_pid" 2>/dev/null
}
trap '_rc=$?; bench_cleanup; (exit $_rc); _hosts_on_exit' EXIT

# Fresh images before each migration: host-a's as described above,
# host-b's absent (vmigrate never overwrites one; raw creates them).
reset_images() {
        rm -f "$ib/$data_img" "$ib/$ide_img" "$ia/$ide_img" &&
                qemu-img create -q -f qcow2 "$ia/$ide_img" "${ide_mib}M" &&
                dd if="$master" of="$ia/$data_img" bs=1M oflag=direct status=none
}

disks="<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>
      <source file='$imgdir/$data_img'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
      <source file='$imgdir/$ide_img'/><target dev='hda' bus='ide'/></disk>"
xml=$(guest_domain_xml bench qemu "$guest_cmdline" 128 "$uuid" "$disks")
reset_images || bail_out "cannot make the images on host-a"
out=$(bench_call "$bus_a" /org/vmigrate/Migrate1 Manager DefineXML s "$xml" 2>&1) || bail_out "DefineXML on host-a: $out"
# Persistent on host-a: after the migration the domain stays there (shut
# off) with the job's statistics, and is started again for the next round.
dom=$(bench_unquote "$out")

# check_guest_on_b SERIAL: the guest's memory and IDE disk on host-b; sets
# c_verify ("ok/ok", BAD for what failed) and c_err. check_vda then adds
# "/ok" or "/BAD" for vda against its source.
check_guest_on_b() {
        local out v=() serial=$1
        c_err=
        if out=$($py "$guestctl" --socket "$serial" --timeout 120 verify 2>&1); then
                v+=(ok)
        else
                v+=(BAD) c_err="memory on host-b: $out"
        fi
        if out=$($py "$guestctl" --socket "$serial" --timeout 120 disk-verify 2>&1); then
                v+=(ok)
        else
                v+=(BAD) c_err=${c_err:-"IDE disk on host-b: $out"}
        fi
        c_verify=$(
                IFS=/
                echo "${v[*]}"
        )
}

check_vda() {
        if cmp -s "$ia/$data_img" "$ib/$data_img"; then
                c_verify+=/ok
        else
                c_verify+=/BAD
                c_err=${c_err:-"vda on host-b differs from host-a's ($(cmp "$ia/$data_img" "$ib/$data_img" 2>&1 | head -1))"}
        fi
}

# marks_since T0 TEXT: whether a line with TEXT was stamped at T0 (ns) or later.
marks_since() {
        awk -v t0="$1" -v text="$2" '$1 * 1000 >= t0 && index($0, text) { f = 1 } END { exit !f }' "$marks"
}

# vmigrate_round: one copy-storage migration through vmigrate; sets v_*.
vmigrate_round() {
        local out rc t0 t1 stats
        v_ok=0 v_wall= v_setup= v_disk= v_mirror= v_lag= v_memory= v_finish= v_bytes= v_down= v_verify= v_err=
        reset_images || { v_err="cannot reset the images"; return 1; }
        out=$(bench_call "$bus_a" "$dom" Domain Start 2>&1) || { v_err="Start on host-a: $out"; return 1; }
        # The QEMU command line vmigrated used: the raw runs reuse it.
        cp "$(host_path a runtime)/qemu/log/$uuid.log" "$bench_dir/argv.log"
        out=$($py "$guestctl" --socket "$(bench_serial a)" --timeout 60 wait-heartbeat 2>&1) ||
                { v_err="no heartbeat from the guest on host-a: $out"; bench_destroy a "$dom"; return 1; }
        sleep "$warmup"
        t0=$(bench_now_ns)
        out=$(bench_call "$bus_a" "$dom" Domain Migrate 'sa{sv}' "$dest" 2 copy-storage s all wait b true 2>&1)
        rc=$?
        t1=$(bench_now_ns)
        if [ $rc -ne 0 ]; then
                v_err="Migrate: $out"
                bench_destroy a "$dom"
                bench_destroy b "$dom"
                return 1
        fi
        v_wall=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e6 }')
        stats=$(bench_call "$bus_a" "$dom" Domain GetJobStats --json=short 2>&1)
        read -r v_bytes v_down v_enc < <($py -c '
import json, sys
d = json.loads(sys.argv[1])["data"][0]
g = lambda k: d.get(k, {}).get("data", "")
print(g("disk-total") or "-", g("downtime-ms"), g("encryption") or "-")
' "$stats" 2>/dev/null) || v_err="GetJobStats on host-a: $stats"
        [ "${v_enc:-}" = none ] || v_err=${v_err:-"host-a says encryption '${v_enc:-}' (expected none: no TLS here)"}
        # The log follower may lag the reply by a line or two.
        wait_until 5 marks_since "$t0" "every disk is in sync"
        read -r v_setup v_disk v_mirror v_lag v_memory v_finish < <(awk -v t0="$t0" -v t1="$t1" '
                $1 * 1000 < t0 || $1 * 1000 > t1 { next }
                /copying its disks first/ && !m { m = $1 * 1000 }
                /BLOCK_JOB_READY/ && m && !g { r = $1 * 1000 }
                /every disk is in sync/ && m && !g { g = $1 * 1000 }
                /disk copies completed/ && g && !c { c = $1 * 1000 }
                END {
                        if (!m || !g || !r || !c) { print "- - - - - -"; exit }
                        printf "%.1f %.1f %.1f %.1f %.1f %.1f\n", (m - t0) / 1e6, (g - m) / 1e6, (r - m) / 1e6,
                                (g - r) / 1e6, (c - g) / 1e6, (t1 - c) / 1e6
                }' "$marks")
        [ "$v_disk" != - ] || v_err=${v_err:-"host-a's log has no disk phase between the call and its reply"}
        check_guest_on_b "$(bench_serial b)"
        v_verify=$c_verify v_err=${v_err:-$c_err}
        bench_destroy b "$dom" || v_err=${v_err:-"Destroy on host-b failed"}
        check_vda
        v_verify=$c_verify v_err=${v_err:-$c_err}
        [ -z "$v_err" ] && v_ok=1
        [ "$v_ok" = 1 ]
}

# raw_round: the same by hand; sets r_*.
raw_round() {
        local out rc
        r_ok=0 r_wall= r_setup= r_disk= r_mirror= r_lag= r_memory= r_finish= r_bytes= r_down= r_verify= r_err=
        reset_images || { r_err="cannot reset the images"; return 1; }
        out=$($py "$raw" "${bench_raw_args[@]}" --nbd-port 49201 --warmup "$warmup" 2>&1)
        rc=$?
        eval "$($py -c '
import json, shlex, sys
try:
    d = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    d = {"error": sys.argv[1].strip()[-400:]}
v = lambda k: "" if d.get(k) is None else d.get(k)
ok = lambda k: "ok" if str(d.get(k) or "").split()[1:2] == ["OK"] else "BAD"
out = {
    "r_wall": v("wall-ms"), "r_setup": v("setup-ms"), "r_disk": v("disk-ms"), "r_mirror": v("mirror-ms"),
    "r_lag": v("ready-lag-ms"), "r_memory": v("memory-ms"), "r_finish": v("finish-ms"), "r_bytes": v("disk-bytes"),
    "r_down": v("downtime-ms"),
    "r_mem_ok": ok("verify"), "r_disk_ok": ok("disk-verify"), "r_err": d.get("error", ""),
}
for k, val in out.items():
    print(f"{k}={shlex.quote(str(val))}")
' "$out")"
        [ $rc -eq 0 ] || r_err=${r_err:-"raw-qmp-mirror.py exited with $rc"}
        c_verify="$r_mem_ok/$r_disk_ok" c_err=
        [ -n "$r_err" ] || check_vda
        r_verify=$c_verify r_err=${r_err:-$c_err}
        [ -z "$r_err" ] && r_ok=1
        [ "$r_ok" = 1 ]
}

# disk_rate BYTES MS: the disk copy rate in Mbit/s.
disk_rate() {
        awk -v b="$1" -v t="$2" 'BEGIN {
                if (b == "" || b == "-" || t == "" || t == "-" || t <= 0) print "-"
                else printf "%.1f", b * 8 / (t / 1000) / 1e6
        }'
}
ratio() {
        awk -v a="$1" -v b="$2" 'BEGIN {
                if (a == "-" || b == "-" || a == "" || b == "" || b == 0) print "-"
                else printf "%.3f", a / b
        }'
}
median() { bench_median %.3f; }

link_mbit=$(awk -v b="$rate_bps" 'BEGIN { printf "%.0f", b / 1e6 }')

# What one plain TCP stream gets over the shaped link (HTB counts frames,
# headers included): the ceiling any disk copy over it can approach.
tcp_ceiling() {
        local port=49202 bytes=$((128 * 1048576)) srv t
        host_exec b "$py" "$top/tests/hosts/xfer.py" serve "$port" >"$bench_dir/xfer.out" 2>&1 &
        srv=$!
        wait_until 10 eval "ip netns exec $(host_netns b) ss -Hltn 'sport = :$port' | grep -q LISTEN" ||
                { kill "$srv"; return 1; }
        t=$(host_exec a "$py" "$top/tests/hosts/xfer.py" send host-b "$port" "$bytes") || { kill "$srv"; return 1; }
        wait "$srv" && [ "$(cat "$bench_dir/xfer.out")" = "$bytes" ] || return 1
        awk -v b="$bytes" -v t="$t" 'BEGIN { printf "%.1f", b * 8 / t / 1e6 }'
}
tcp_mbit=$(tcp_ceiling) || tcp_mbit=-
bench_describe_machine
echo "# link host-a <-> host-b: $rate (tc HTB$(hosts_have_netem && echo '/netem')), $rounds round(s), warm-up ${warmup} s"
echo "# guest: 128 MiB, TCG, $guest_cmdline;" \
        "vda raw ${disk_mib} MiB of random bytes (virtio), hda qcow2 ${ide_mib} MiB (IDE, written by the guest)"
echo "# one TCP stream over the link (tests/hosts/xfer.py, 128 MiB): $tcp_mbit Mbit/s = $(ratio "$tcp_mbit" "$link_mbit") of $rate"
echo "# load average at start: $(bench_load) (figures mean little on a busy machine)"
echo "# wall: raw = qemu-img create on host-b .. source QEMU exited; vmigrate = busctl Migrate {copy-storage: all, wait} start .. reply"
echo "# ms: setup = wall start .. first mirror command; disk = .. migrate (mirror = .. last BLOCK_JOB_READY, lag = that .. migrate);"
echo "#     memory = .. every mirror completed (the memory, then block-job-cancel); finish = .. wall end"
echo "# disk MiB: what the mirrors copied by the end of the disk phase (blocks the guest rewrote and were copied again included)"

# row METHOD: the round's figures of METHOD (vmigrate or raw), in the
# order of the table's numeric columns, "-" for what is missing.
row() {
        local p=${1:0:1} f v out=()
        for f in wall setup disk mirror lag memory finish mib rate link down; do
                v=${p}_$f
                out+=("${!v:--}")
        done
        echo "${out[*]}"
}
# figures P: disk MiB, disk rate and its ratio to the link from P's bytes
# and disk phase (P = v or r).
figures() {
        local b=${1}_bytes d=${1}_disk
        printf -v "${1}_mib" '%s' "$(awk -v b="${!b:-}" \
                'BEGIN { if (b == "" || b == "-") print "-"; else printf "%.1f", b / 1048576 }')"
        printf -v "${1}_rate" '%s' "$(disk_rate "${!b:-}" "${!d:-}")"
        local rt=${1}_rate
        printf -v "${1}_link" '%s' "$(ratio "${!rt}" "$link_mbit")"
}
columns="wall ms|setup|disk ms|mirror|lag|memory|finish|disk MiB|Mbit/s|÷ link|downtime"
fmt='%-9s %8s %6s %8s %7s %5s %7s %7s %9s %7s %7s %9s %s\n'
print_row() { # LABEL ROW [VERIFY]
        # shellcheck disable=SC2086 # the row's numbers are words
        printf "$fmt" "$1" $2 "${3:-}"
}
print_header() {
        local IFS='|'
        # shellcheck disable=SC2086 # the column names are '|'-separated
        printf "$fmt" "$1" $columns "${2:-}"
}
# column_medians ROW...: the median of each column.
column_medians() {
        local i out=()
        for ((i = 1; i <= 11; i++)); do
                out+=("$(printf '%s\n' "$@" | awk -v c=$i '$c != "-" { print $c }' | bench_median %.1f)")
        done
        echo "${out[*]}"
}
med() { printf '%s\n' "$@" | grep -v '^-$' | median; }

v_rows=() r_rows=() ratios_rate=() ratios_disk=() ratios_wall=() v_mirror_links=() r_mirror_links=()
for ((r = 1; r <= rounds; r++)); do
        # vmigrate first in odd rounds (the first writes the command line
        # the raw runs reuse), raw first in even ones.
        if ((r % 2 == 1)); then order="vmigrate raw"; else order="raw vmigrate"; fi
        for m in $order; do
                if [ "$m" = vmigrate ]; then
                        vmigrate_round || { failures=$((failures + 1)); echo "# round $r vmigrate FAILED: $v_err"; }
                else
                        raw_round || { failures=$((failures + 1)); echo "# round $r raw FAILED: $r_err"; }
                fi
        done
        figures v
        figures r
        printf '\n-- round %d/%d (%s)\n' "$r" "$rounds" "${order/ /, then }"
        print_header method mem/hda/vda
        print_row raw "$(row raw)" "${r_verify:--}"
        print_row vmigrate "$(row vmigrate)" "${v_verify:--}"
        # The mirrors alone, without the wait from the last
        # BLOCK_JOB_READY to "migrate": what QEMU's copy reaches.
        [ "$v_ok" = 1 ] && v_rows+=("$(row vmigrate)") \
                v_mirror_links+=("$(ratio "$(disk_rate "$v_bytes" "$v_mirror")" "$link_mbit")")
        [ "$r_ok" = 1 ] && r_rows+=("$(row raw)") \
                r_mirror_links+=("$(ratio "$(disk_rate "$r_bytes" "$r_mirror")" "$link_mbit")")
        if [ "$v_ok" = 1 ] && [ "$r_ok" = 1 ]; then
                ratios_rate+=("$(ratio "$v_rate" "$r_rate")") ratios_wall+=("$(ratio "$v_wall" "$r_wall")")
                ratios_disk+=("$(ratio "$v_disk" "$r_disk")")
                echo "ratios: vmigrate disk rate ÷ link $v_link, ÷ raw disk rate ${ratios_rate[-1]};" \
                        "disk phase vmigrate ÷ raw ${ratios_disk[-1]}; wall vmigrate ÷ raw ${ratios_wall[-1]}"
        fi
done

echo
echo "== summary ($((SECONDS - t_start)) s, load average at the end: $(bench_load))"
echo "-- medians ($rate, vda ${disk_mib} MiB; raw ${#r_rows[@]}/$rounds, vmigrate ${#v_rows[@]}/$rounds rounds)"
print_header method
[ ${#r_rows[@]} -gt 0 ] && print_row raw "$(column_medians "${r_rows[@]}")"
[ ${#v_rows[@]} -gt 0 ] && print_row vmigrate "$(column_medians "${v_rows[@]}")"
if [ ${#ratios_wall[@]} -gt 0 ]; then
        v_links=$(printf '%s\n' "${v_rows[@]}" | awk '{ print $10 }')
        # shellcheck disable=SC2086 # one ratio a word
        echo "$rate, vda ${disk_mib} MiB, median over ${#ratios_wall[@]} round(s):" \
                "vmigrate disk rate ÷ link $(med $v_links) (goal ≥ 0.9), ÷ raw disk rate $(med "${ratios_rate[@]}");" \
                "wall vmigrate ÷ raw $(med "${ratios_wall[@]}") (goal ≤ 1.1)"
        # The same disks either way: the disk phase's duration compares
        # them without the two ways of counting bytes.
        echo "disk phase vmigrate ÷ raw (time): median $(med "${ratios_disk[@]}")"
        echo "per round: disk rate ÷ raw ${ratios_rate[*]}; disk phase ÷ raw ${ratios_disk[*]};" \
                "wall ÷ raw ${ratios_wall[*]}"
        echo "the mirrors alone (disk bytes / mirror ms), median ÷ link: raw $(med "${r_mirror_links[@]}")," \
                "vmigrate $(med "${v_mirror_links[@]}"); one TCP stream $(ratio "$tcp_mbit" "$link_mbit")"
else
        echo "no round completed on both sides"
fi
[ "$failures" -eq 0 ] || echo "$failures migration(s) or verification(s) failed"
[ "$failures" -eq 0 ]
exit $?
