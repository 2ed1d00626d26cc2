#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Boots the test guest directly with qemu-system-x86_64 (no daemon) and
# checks that it boots, heartbeats, answers commands, holds its write rate,
# and that `verify` catches a corrupted, a zeroed, a stale and a torn page
# written into guest RAM from the host through a /dev/shm memory backend.
# With a raw and a qcow2 IDE disk, it checks the disk writer and that
# `disk-verify` catches a garbage block, a never-written block that is not
# zero, and a stale block, written into the raw image from the host while
# the guest is stopped (QMP). TAP output. Writing guests run under TCG (nested KVM on the test machines
# crawls on guest memory writes); one idle guest boots under KVM when
# /dev/kvm exists.
#
# Environment (set by meson):
#   VMTEST_KERNEL    the guest kernel (vmigrate-test-guest.elf)
#   VMTEST_GUESTCTL  guestctl.py
#   QEMU             optional, default qemu-system-x86_64
#   QEMU_IMG         optional, default qemu-img

set -u
# shellcheck source=../bus/lib-pids.sh
. "$(dirname "$0")/../bus/lib-pids.sh"

kernel=${VMTEST_KERNEL:-}
guestctl=${VMTEST_GUESTCTL:-$(dirname "$0")/guestctl.py}
qemu=${QEMU:-qemu-system-x86_64}
qemu_img=${QEMU_IMG:-qemu-img}
python=/usr/bin/python3
qboot=/usr/share/qemu/qboot.rom
ram_mib=64
page=4096

if [[ -z $kernel || ! -f $kernel ]]; then
        echo "1..0 # SKIP VMTEST_KERNEL is not set to the built guest kernel"
        exit 0
fi
if ! command -v "$qemu" >/dev/null; then
        echo "1..0 # SKIP $qemu not found"
        exit 0
fi

tmp=$(mktemp -d /tmp/vmtest-guest.XXXXXX)
shm_prefix=/dev/shm/vmtest-guest-$$-
# Each guest's timeout(1) process and its start time: a pid is signalled
# only while it is still the process started (tests run side by side and
# pid_max is 32768: by the end, a guest's old pid may be another test's
# process, another test's polkitd say).
declare -A qemu_pid qemu_start

# stop_guests NAME...: stops those of the guests still running, waits for
# them, and forgets them.
stop_guests() {
        local name
        for name; do
                [[ -n ${qemu_pid[$name]:-} ]] || continue
                vm_kill_if_same "${qemu_pid[$name]}" "${qemu_start[$name]}"
        done
        for name; do
                [[ -n ${qemu_pid[$name]:-} ]] || continue
                wait "${qemu_pid[$name]}" 2>/dev/null
                unset "qemu_pid[$name]" "qemu_start[$name]"
        done
}

# shellcheck disable=SC2317  # called through the trap
cleanup() {
        stop_guests "${!qemu_pid[@]}"
        rm -f "$shm_prefix"*
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# ---------------------------------------------------------------------------
# TAP

tap_n=0
tap_failed=0

diag() {
        local line
        while IFS= read -r line; do
                echo "# $line"
        done <<<"$*"
}

ok() {
        tap_n=$((tap_n + 1))
        echo "ok $tap_n - $1"
}

not_ok() {
        tap_n=$((tap_n + 1))
        tap_failed=$((tap_failed + 1))
        echo "not ok $tap_n - $1"
        shift
        [[ $# -gt 0 ]] && diag "$*"
}

skip() {
        tap_n=$((tap_n + 1))
        echo "ok $tap_n - $1 # SKIP $2"
}

# ---------------------------------------------------------------------------
# Guests

now_ms() {
        echo $(($(date +%s%N) / 1000000))
}

# start_guest NAME ACCEL APPEND [shm|-] [QEMU-ARGS...]: starts QEMU in the
# background with COM1 on $tmp/NAME.sock (log in $tmp/NAME.log) and QMP on
# $tmp/NAME.qmp; with "shm", guest RAM is the file $shm_prefix$NAME, so file
# offset == guest physical address. QEMU-ARGS (disks) are appended.
start_guest() {
        local name=$1 accel=$2 append=$3 shm=${4:-}
        shift $(($# < 4 ? $# : 4))
        local -a args=(-display none -nodefaults -no-user-config -no-reboot
                -m "${ram_mib}M" -kernel "$kernel" -append "$append"
                -chardev "socket,id=s0,path=$tmp/$name.sock,server=on,wait=off,logfile=$tmp/$name.log"
                -serial chardev:s0 -qmp "unix:$tmp/$name.qmp,server=on,wait=off" "$@")
        if [[ $shm == shm ]]; then
                # shellcheck disable=SC2054  # QEMU's own comma syntax
                args+=(-object "memory-backend-file,id=ram,size=${ram_mib}M,mem-path=$shm_prefix$name,share=on"
                        -machine pc,memory-backend=ram)
        else
                args+=(-machine pc)
        fi
        if [[ $accel == kvm ]]; then
                # SeaBIOS hangs under the nested KVM of the test machines.
                args+=(-accel kvm -bios "$qboot")
        else
                args+=(-accel tcg)
        fi
        : >"$tmp/$name.log"
        # timeout(1) forwards our kill to QEMU, and stops QEMU by itself if
        # this script dies without running its EXIT trap.
        timeout --kill-after=10 600 "$qemu" "${args[@]}" >"$tmp/$name.err" 2>&1 &
        qemu_pid[$name]=$!
        qemu_start[$name]=$(vm_proc_starttime "$!")
}

qemu_process() {                # the QEMU under the timeout(1) of NAME
        pgrep -P "${qemu_pid[$1]}" | head -n 1
}

alive() {
        [[ -n ${qemu_pid[$1]:-} ]] && vm_same_process "${qemu_pid[$1]}" "${qemu_start[$1]}"
}

# wait_log NAME REGEX SECONDS: polls the serial log until a line matches.
wait_log() {
        local name=$1 regex=$2 deadline=$(($(now_ms) + $3 * 1000))
        while (($(now_ms) < deadline)); do
                grep -qE "$regex" "$tmp/$name.log" && return 0
                alive "$name" || return 1
                sleep 0.01
        done
        return 1
}

guest_failure() {
        local name=$1
        echo "serial log:"
        tail -n 5 "$tmp/$name.log"
        echo "qemu stderr:"
        grep -v 'CPUID.*pni' "$tmp/$name.err" | tail -n 15
}

# ctl NAME ARGS...: runs guestctl; the answer is in $answer, returns its rc.
ctl() {
        local name=$1
        shift
        answer=$("$python" "$guestctl" --socket "$tmp/$name.sock" --timeout 60 "$@" 2>&1)
}

# field LINE KEY: prints the value of KEY=value in LINE.
field() {
        local w
        for w in $1; do
                [[ $w == "$2="* ]] && echo "${w#*=}" && return 0
        done
        return 1
}

page_read() {                   # page_read NAME ADDR OUTFILE
        dd if="$shm_prefix$1" of="$3" bs=$page skip=$(($2 / page)) count=1 status=none
}

page_write() {                  # page_write NAME ADDR INFILE [OFFSET-IN-PAGE]
        local off=${4:-0}
        dd if="$3" of="$shm_prefix$1" bs=1 skip="$off" seek=$(($2 + off)) \
                count=$((page - off)) conv=notrunc status=none
}

page_counter() {                # word 0 of a saved page
        od -An -tu4 -N4 "$1" | tr -d ' '
}

# wait_written NAME COUNT SECONDS: polls status until written >= COUNT.
wait_written() {
        local name=$1 target=$2 deadline=$(($(now_ms) + $3 * 1000)) w
        while (($(now_ms) < deadline)); do
                ctl "$name" status || return 1
                w=$(field "$answer" written)
                ((w >= target)) && return 0
                sleep 0.02
        done
        return 1
}

# measure_rate NAME MS: pages/s the guest wrote over at least MS of guest
# uptime, from two status answers, into $rate_seen; $guest_ms is the guest
# uptime between the two answers, and $host_min_ms..$host_max_ms bound the
# host time between them: the guest reads its clock somewhere inside each
# call, and a loaded machine can make a call (a Python process) take
# hundreds of ms.
measure_rate() {
        local name=$1 span=$2 w0 t0 w1 t1 h0 h1 before
        rate_seen=
        h0=$(now_ms)
        ctl "$name" status || return 1
        h1=$(now_ms)
        w0=$(field "$answer" written)
        t0=$(field "$answer" uptime_ms)
        while :; do
                sleep 0.05
                before=$(now_ms)
                ctl "$name" status || return 1
                t1=$(field "$answer" uptime_ms)
                ((t1 - t0 >= span)) && break
        done
        host_max_ms=$(($(now_ms) - h0))
        host_min_ms=$((before - h1))
        guest_ms=$((t1 - t0))
        w1=$(field "$answer" written)
        rate_seen=$(((w1 - w0) * 1000 / guest_ms))
}

# qmp NAME COMMAND: runs one QMP command without arguments (stop, cont) and
# waits for its return. `stop` returns once QEMU has drained the guest's
# block requests: the images can then be read and written from the host.
qmp() {
        "$python" - "$tmp/$1.qmp" "$2" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
for cmd in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        m = json.loads(f.readline())
        if "error" in m:
            sys.exit(f"QMP {cmd}: {m['error']['desc']}")
        if "return" in m:
            break
EOF
}

# 4 KiB blocks of a raw image, numbered as the guest numbers them.
block_get() {                   # block_get IMAGE BLOCK OUTFILE
        dd if="$1" of="$3" bs=$page skip="$2" count=1 status=none
}

block_put() {                   # block_put IMAGE BLOCK INFILE
        dd if="$3" of="$1" bs=$page seek="$2" count=1 conv=notrunc status=none
}

# disk_written NAME: $disk_count = blocks the disk writer has written,
# $disk_uptime = the guest's uptime then, from disk-status.
disk_written() {
        ctl "$1" disk-status || return 1
        disk_uptime=$(field "$answer" uptime_ms)
        disk_count=$(field "$answer" written)
}

# wait_disk_written NAME COUNT SECONDS: polls disk-status until written >= COUNT.
wait_disk_written() {
        local name=$1 target=$2 deadline=$(($(now_ms) + $3 * 1000))
        while (($(now_ms) < deadline)); do
                disk_written "$name" || return 1
                ((disk_count >= target)) && return 0
                sleep 0.05
        done
        return 1
}

# measure_disk_rate NAME MS: blocks/s the disk writer wrote over at least MS
# of guest uptime, into $disk_rate_seen.
measure_disk_rate() {
        local name=$1 span=$2 w0 t0
        disk_rate_seen=
        disk_written "$name" || return 1
        w0=$disk_count
        t0=$disk_uptime
        while :; do
                sleep 0.05
                disk_written "$name" || return 1
                ((disk_uptime - t0 >= span)) && break
        done
        disk_rate_seen=$(((disk_count - w0) * 1000 / (disk_uptime - t0)))
}

cpu_ticks() {                   # utime + stime of a process, in clock ticks
        awk '{ print $14 + $15 }' "/proc/$1/stat"
}

echo "1..43"

# ---------------------------------------------------------------------------
# A writing guest under TCG: boot, heartbeat, verify, corruption, rate.

diag "accel: tcg"
t_start=$(now_ms)
start_guest a tcg "vmtest.mem=48M vmtest.ws=16M vmtest.rate=5000" shm
if wait_log a '^VMTEST READY' 30; then
        boot_ms=$(($(now_ms) - t_start))
        ready=$(grep -m1 '^VMTEST READY' "$tmp/a.log")
        ok "TCG guest boots and fills its area"
        diag "TCG boot (QEMU start to READY, 48 MiB fill included): ${boot_ms} ms; guest: $ready"
else
        not_ok "TCG guest boots and fills its area" "$(guest_failure a)"
        exit 1
fi

if wait_log a '^HB seq=1 ' 5; then
        ok "TCG guest heartbeats"
else
        not_ok "TCG guest heartbeats" "$(guest_failure a)"
fi

banner=$(grep -m1 '^VMTEST BOOT' "$tmp/a.log")
area=$(field "$banner" area)
area_start=$((${area%-*}))
area_end=$((${area#*-}))
pages=$(field "$banner" pages)
ws_pages=$(field "$banner" ws_pages)
if ((pages == 48 * 256 && ws_pages == 16 * 256 && area_end - area_start == pages * page &&
        area_start >= 0x100000 && area_end <= ram_mib * 1024 * 1024)); then
        ok "banner reports the area inside RAM: $area pages=$pages ws_pages=$ws_pages"
else
        not_ok "banner reports the area inside RAM" "banner: $banner"
fi

if ctl a verify && [[ $answer == "VERIFY OK pages=$pages "* ]]; then
        ok "untouched writing guest verifies OK"
        diag "$answer"
else
        not_ok "untouched writing guest verifies OK" "$answer"
fi

# A page outside the working set: the writer never heals it.
victim=$((area_start + (pages - 10) * page))
victim_hex=$(printf '0x%08x' "$victim")
page_read a "$victim" "$tmp/victim.orig"
head -c $page /dev/urandom >"$tmp/garbage"
page_write a "$victim" "$tmp/garbage"
ctl a verify
rc=$?
if ((rc == 1)) && [[ $(field "$answer" page) == "$victim_hex" && $(field "$answer" bad_pages) == 1 ]]; then
        ok "verify reports exactly the page overwritten with garbage ($victim_hex)"
        diag "$answer"
else
        not_ok "verify reports exactly the page overwritten with garbage ($victim_hex)" "rc=$rc: $answer"
fi

page_write a "$victim" "$tmp/victim.orig"
if ctl a verify; then
        ok "verify is OK again once the page is restored"
else
        not_ok "verify is OK again once the page is restored" "$answer"
fi

head -c $page /dev/zero >"$tmp/zeros"
page_write a "$victim" "$tmp/zeros"
ctl a verify
rc=$?
if ((rc == 1)) && [[ $(field "$answer" page) == "$victim_hex" && $(field "$answer" found) == 0 && $(field "$answer" word) == 0 ]]; then
        ok "verify reports a zeroed page (never arrived) with found=0"
        diag "$answer"
else
        not_ok "verify reports a zeroed page (never arrived) with found=0" "rc=$rc: $answer"
fi
page_write a "$victim" "$tmp/victim.orig"

if ctl a rate 2000 && [[ $answer == "RATE 2000" ]]; then
        ok "rate 2000 is acknowledged"
else
        not_ok "rate 2000 is acknowledged" "$answer"
fi
measure_rate a 2000
r=$rate_seen
if [[ -n $r ]] && ((r >= 1800 && r <= 2200)); then
        ok "guest writes at the set rate: $r pages/s for 2000"
else
        not_ok "guest writes at the set rate: ${r:-?} pages/s for 2000"
fi
# The guest clock is the TSC calibrated against the PIT: it must follow
# host time. Some host time within the bounds must be within -10%..+30% of
# the guest's: a clock off by half or twice fails unless the calls took
# most of a second.
clock="$guest_ms guest ms took $host_min_ms..$host_max_ms host ms"
if ((host_min_ms * 10 <= guest_ms * 13 && host_max_ms * 10 >= guest_ms * 9)); then
        ok "guest uptime follows host time ($clock)"
else
        not_ok "guest uptime follows host time ($clock)"
fi

ctl a rate 0
measure_rate a 500
r=$rate_seen
if [[ $answer == "STATUS "* && $r == 0 ]]; then
        ok "rate 0 stops the writer"
else
        not_ok "rate 0 stops the writer" "rate=$r: $answer"
fi

ctl a rate 1000000
measure_rate a 2000
r=$rate_seen
ctl a rate 0
if [[ -n $r ]] && ((r >= 10000)); then
        ok "unthrottled writer is fast enough for migration tests"
else
        not_ok "unthrottled writer is fast enough for migration tests" "${r:-?} pages/s"
fi
diag "max page-write rate under TCG: ${r:-?} pages/s ($((${r:-0} * 4 / 1024)) MiB/s)"

ctl a raw 'frobnicate'
rc=$?
ctl a raw 'rate fast'
rc2=$?
if ((rc == 1 && rc2 == 1)) && [[ $answer == "ERR rate needs a number"* ]]; then
        ok "unknown commands and bad arguments get ERR answers"
else
        not_ok "unknown commands and bad arguments get ERR answers" "rc=$rc rc2=$rc2: $answer"
fi

# Without a disk the disk commands answer, and change nothing.
if ctl a disk-status && [[ $answer == "DISK-STATUS disks=0 written=0 rate=0 errors=0 last=- "* ]]; then
        ok "a guest without disks: disk-status says disks=0"
else
        not_ok "a guest without disks: disk-status says disks=0" "$answer"
fi
ctl a disk-rate 100
rc=$?
ctl a raw 'disk-rate fast'
rc2=$?
if ((rc == 0 && rc2 == 1)) && [[ $answer == "ERR disk-rate needs a number"* ]] &&
        ctl a disk-verify && [[ $answer == "DISK-VERIFY OK disks=0 blocks=0 "* ]]; then
        ok "a guest without disks: disk-verify OK with 0 blocks, disk-rate answers"
else
        not_ok "a guest without disks: disk-verify OK with 0 blocks, disk-rate answers" "rc=$rc rc2=$rc2: $answer"
fi
ctl a disk-rate 0

if ctl a verify; then
        ok "verify is still OK after all the rate changes"
else
        not_ok "verify is still OK after all the rate changes" "$answer"
fi

# ---------------------------------------------------------------------------
# A small working set, rewritten quickly: stale and torn pages.

start_guest b tcg "vmtest.mem=4M vmtest.ws=64K vmtest.rate=0" shm
if ! wait_log b '^VMTEST READY' 30; then
        not_ok "second TCG guest boots" "$(guest_failure b)"
        exit 1
fi
banner=$(grep -m1 '^VMTEST BOOT' "$tmp/b.log")
area=$(field "$banner" area)
b_start=$((${area%-*}))
ws=$(field "$banner" ws_pages)

# inject_old NAME ADDR OFFSET: snapshot a page while the writer is stopped,
# let the writer rewrite the whole working set 3 times, stop it, copy the
# snapshot back from OFFSET to the end of the page.
inject_old() {
        local name=$1 addr=$2 off=$3 w
        page_read "$name" "$addr" "$tmp/snap"
        old_counter=$(page_counter "$tmp/snap")
        ctl "$name" status || return 1
        w=$(field "$answer" written)
        ctl "$name" rate 500 || return 1
        wait_written "$name" $((w + 3 * ws)) 30 || return 1
        ctl "$name" rate 0 || return 1
        ctl "$name" verify || return 1
        page_write "$name" "$addr" "$tmp/snap" "$off"
}

stale=$((b_start + 5 * page))
stale_hex=$(printf '0x%08x' "$stale")
if inject_old b "$stale" 0; then
        ctl b verify
        rc=$?
        expected=$(field "$answer" expected)
        found=$(field "$answer" found)
        if ((rc == 1)) && [[ $(field "$answer" page) == "$stale_hex" && $found == "$old_counter" ]] &&
                ((expected > found)); then
                ok "verify reports a stale page (old but self-consistent) with expected > found"
                diag "$answer"
        else
                not_ok "verify reports a stale page (old but self-consistent) with expected > found" \
                        "rc=$rc old_counter=$old_counter: $answer"
        fi
else
        not_ok "verify reports a stale page (old but self-consistent) with expected > found" \
                "could not prepare the stale page: $answer"
fi

# The writer rewrites the whole page: the stale page heals.
ctl b status
w=$(field "$answer" written)
ctl b rate 500
wait_written b $((w + 2 * ws)) 30
ctl b rate 0
if ctl b verify; then
        ok "a rewrite by the guest heals the stale page"
else
        not_ok "a rewrite by the guest heals the stale page" "$answer"
fi

torn=$((b_start + 7 * page))
torn_hex=$(printf '0x%08x' "$torn")
if inject_old b "$torn" 2048; then
        ctl b verify
        rc=$?
        if ((rc == 1)) && [[ $(field "$answer" page) == "$torn_hex" && $(field "$answer" word) == 512 &&
                $(field "$answer" expected) == "$(field "$answer" found)" ]]; then
                ok "verify reports a torn page (new header, old second half) at word 512"
                diag "$answer"
        else
                not_ok "verify reports a torn page (new header, old second half) at word 512" "rc=$rc: $answer"
        fi
else
        not_ok "verify reports a torn page (new header, old second half) at word 512" \
                "could not prepare the torn page: $answer"
fi

# Idle cost under TCG, for the report.
pid=$(qemu_process b)
c0=$(cpu_ticks "$pid")
h0=$(now_ms)
while (($(now_ms) - h0 < 2000)); do sleep 0.1; done
c1=$(cpu_ticks "$pid")
diag "idle host CPU under TCG: $(((c1 - c0) * 100 * 1000 / ($(getconf CLK_TCK) * ($(now_ms) - h0))))%"

# ---------------------------------------------------------------------------
# Too much memory asked for: clamped with a message.

start_guest c tcg "vmtest.mem=1G vmtest.ws=2G vmtest.rate=bogus vmtest.pulse=5"
if wait_log c '^VMTEST READY' 30 &&
        grep -q '^WARN vmtest.mem=1048576K does not fit' "$tmp/c.log" &&
        grep -q '^WARN vmtest.ws=2097152K is larger than the area' "$tmp/c.log" &&
        grep -q "^WARN vmtest.rate='bogus'" "$tmp/c.log"; then
        banner=$(grep -m1 '^VMTEST BOOT' "$tmp/c.log")
        area=$(field "$banner" area)
        if (($((${area#*-})) <= ram_mib * 1024 * 1024)) && ctl c verify; then
                ok "oversized and bad options are clamped or ignored with a WARN line"
                diag "$banner"
        else
                not_ok "oversized and bad options are clamped or ignored with a WARN line" "$banner / $answer"
        fi
else
        not_ok "oversized and bad options are clamped or ignored with a WARN line" "$(guest_failure c)"
fi
# Guest c has one serial port: no COM2 for its pulse.
banner=$(grep -m1 '^VMTEST BOOT' "$tmp/c.log")
if grep -q '^WARN vmtest.pulse=5 needs a second serial port (COM2' "$tmp/c.log" &&
        [[ $(field "$banner" pulse_ms) == 0 ]]; then
        ok "vmtest.pulse without a second serial port: a WARN line, pulse_ms=0"
else
        not_ok "vmtest.pulse without a second serial port: a WARN line, pulse_ms=0" "$(guest_failure c)"
fi
stop_guests c a b

# ---------------------------------------------------------------------------
# vmtest.compressible=1: page bodies repeat a 32-byte pattern, for the
# benchmarks of compressed migration. The pages must compress, and verify
# must still catch a stale page, a torn page and a word out of place.

# compress_ratio FILE: original size / zlib size (level 6) of FILE.
compress_ratio() {
        "$python" -c '
import sys, zlib
d = open(sys.argv[1], "rb").read()
print("%.1f" % (len(d) / len(zlib.compress(d, 6))))' "$1"
}

start_guest z tcg "vmtest.mem=4M vmtest.ws=64K vmtest.rate=5000 vmtest.compressible=1" shm
if wait_log z '^VMTEST READY' 30 && wait_log z '^HB seq=1 ' 5; then
        banner=$(grep -m1 '^VMTEST BOOT' "$tmp/z.log")
        area=$(field "$banner" area)
        z_start=$((${area%-*}))
        ws=$(field "$banner" ws_pages)
        if [[ $(field "$banner" compressible) == 1 &&
                $(field "$(grep -m1 '^VMTEST BOOT' "$tmp/a.log")" compressible) == 0 ]] &&
                ctl z verify && [[ $answer == "VERIFY OK pages=1024 "* ]]; then
                ok "vmtest.compressible=1: the banner says so (0 by default) and the writing guest verifies"
                diag "$answer"
        else
                not_ok "vmtest.compressible=1: the banner says so (0 by default) and the writing guest verifies" \
                        "$banner / $answer"
        fi

        # 1 MiB of each guest's area: the working set, rewritten, and
        # pages only the fill wrote. Guest a's (the default) must not compress.
        dd if="$shm_prefix"z of="$tmp/z.area" bs=$page skip=$((z_start / page)) count=256 status=none
        dd if="$shm_prefix"a of="$tmp/a.area" bs=$page skip=$((area_start / page)) count=256 status=none
        z_ratio=$(compress_ratio "$tmp/z.area")
        a_ratio=$(compress_ratio "$tmp/a.area")
        if awk -v z="$z_ratio" -v a="$a_ratio" 'BEGIN { exit !(z >= 10 && a < 1.1) }'; then
                ok "compressible pages compress ${z_ratio}x with zlib (default pages ${a_ratio}x)"
        else
                not_ok "compressible pages compress >= 10x with zlib, default ones not" \
                        "compressible ${z_ratio}x, default ${a_ratio}x"
        fi
        command -v zstd >/dev/null &&
                diag "zstd -1 on the same 1 MiB: $(zstd -1 -c "$tmp/z.area" | wc -c) bytes"

        ctl z rate 0
        # Right values in the wrong place: word 101 copied over word 100 of a
        # page outside the working set. verify checks the pattern's phase.
        shifted=$((z_start + 600 * page))
        dd if="$shm_prefix"z of="$tmp/word.orig" bs=4 skip=$((shifted / 4 + 100)) count=1 status=none
        dd if="$shm_prefix"z of="$tmp/word" bs=4 skip=$((shifted / 4 + 101)) count=1 status=none
        dd if="$tmp/word" of="$shm_prefix"z bs=4 seek=$((shifted / 4 + 100)) count=1 conv=notrunc status=none
        ctl z verify
        rc=$?
        if ((rc == 1)) && [[ $(field "$answer" page) == "$(printf '0x%08x' "$shifted")" &&
                $(field "$answer" word) == 100 && $(field "$answer" bad_pages) == 1 ]]; then
                ok "compressible: verify reports a pattern word out of place (word 100)"
        else
                not_ok "compressible: verify reports a pattern word out of place (word 100)" "rc=$rc: $answer"
        fi
        dd if="$tmp/word.orig" of="$shm_prefix"z bs=4 seek=$((shifted / 4 + 100)) count=1 conv=notrunc status=none

        stale=$((z_start + 5 * page))
        if inject_old z "$stale" 0; then
                ctl z verify
                rc=$?
                if ((rc == 1)) && [[ $(field "$answer" page) == "$(printf '0x%08x' "$stale")" &&
                        $(field "$answer" found) == "$old_counter" ]] &&
                        (($(field "$answer" expected) > old_counter)); then
                        ok "compressible: verify reports a stale page"
                else
                        not_ok "compressible: verify reports a stale page" "rc=$rc old_counter=$old_counter: $answer"
                fi
        else
                not_ok "compressible: verify reports a stale page" "could not prepare it: $answer"
        fi
        # The same page torn: the new header, the old body from word 520
        # (520 % 8 = 0: the pattern's first word).
        if inject_old z "$stale" 2080; then
                ctl z verify
                rc=$?
                if ((rc == 1)) && [[ $(field "$answer" word) == 520 &&
                        $(field "$answer" expected) == "$(field "$answer" found)" ]]; then
                        ok "compressible: verify reports a torn page at word 520"
                else
                        not_ok "compressible: verify reports a torn page at word 520" "rc=$rc: $answer"
                fi
        else
                not_ok "compressible: verify reports a torn page at word 520" "could not prepare it: $answer"
        fi
else
        for t in "the banner and verify" "pages compress" "a stale page" "a torn page" "a word out of place"; do
                not_ok "compressible guest: $t" "$(guest_failure z)"
        done
fi
stop_guests z

# ---------------------------------------------------------------------------
# The pulse: "PULSE seq=N us=T" on COM2 every vmtest.pulse ms. Nobody reads
# COM2's socket here (QEMU drops what it sends, after logging it): the
# guest must not stall on it.

pulse_log=$tmp/p.pulse.log
start_guest p tcg "vmtest.mem=4M vmtest.rate=1000 vmtest.pulse=5" - \
        -chardev "socket,id=s1,path=$tmp/p.pulse.sock,server=on,wait=off,logfile=$pulse_log" -serial chardev:s1
if wait_log p '^VMTEST READY' 30 && wait_log p '^HB seq=2 ' 10 &&
        [[ $(field "$(grep -m1 '^VMTEST BOOT' "$tmp/p.log")" pulse_ms) == 5 ]]; then
        # What the guest said in about two seconds of its clock: every
        # sequence number once, in order, from 1, and its clock between
        # them (a pulse can leave up to a tick late; the next one is not
        # moved, so the mean is the measure, on the guest's own clock).
        pulses=$(awk -v end="$(grep -c '^PULSE ' "$pulse_log")" '
                $1 == "PULSE" && NR <= end {
                        split($2, a, "="); split($3, b, "=")
                        if (a[2] != n + 1) { printf "seq %d after %d\n", a[2], n; bad = 1; exit }
                        n = a[2]; if (n == 1) first = b[2]; last = b[2]
                }
                END { if (!bad) printf "%d %.3f\n", n, (n > 1 ? (last - first) / (n - 1) / 1000 : 0) }' "$pulse_log")
        read -r n_pulses mean_ms <<<"$pulses"
        if [[ $n_pulses =~ ^[0-9]+$ ]] && ((n_pulses >= 200)) &&
                awk -v m="$mean_ms" 'BEGIN { exit !(m >= 5.0 && m <= 6.0) }'; then
                ok "the guest pulses on COM2: $n_pulses pulses in order, every $mean_ms ms of its clock (vmtest.pulse=5)"
        else
                not_ok "the guest pulses on COM2 every vmtest.pulse ms, in order" \
                        "$pulses; $(head -n 3 "$pulse_log")"
        fi
        if ctl p verify && [[ $answer == "VERIFY OK pages=1024 "* ]] && ! grep -q PULSE "$tmp/p.log"; then
                ok "while pulsing, COM1 answers and has no pulse on it"
        else
                not_ok "while pulsing, COM1 answers and has no pulse on it" "$answer"
        fi
else
        not_ok "the guest pulses on COM2 every vmtest.pulse ms, in order" "$(guest_failure p)"
        not_ok "while pulsing, COM1 answers and has no pulse on it" "the guest did not start"
fi
stop_guests p

# ---------------------------------------------------------------------------
# Disks: a raw and a qcow2 image on the primary IDE channel, an empty CD-ROM
# drive on the secondary (skipped by the guest), both writers on. Small
# disks: PIO under TCG moves a few MiB/s.

# disk_tests_run: the disk tests, on guest d.
disk_tests_run() {
        local rc r ms victim zero_victim old_counter expected w_before

        # Blocks below disk_ws (1M: 256 blocks per disk) are rewritten; the rest
        # stay zero and disk-verify checks that they are.
        ws_blocks=256
        # vmtest.ws=0 is refused and must leave the whole area as working set
        # (it used to leave 0, and the writer then wrote outside the area).
        start_guest d tcg "vmtest.mem=4M vmtest.ws=0 vmtest.rate=1000 vmtest.disk_rate=100000 vmtest.disk_ws=1M" - \
                -blockdev "{\"driver\":\"file\",\"filename\":\"$raw\",\"node-name\":\"f0\"}" \
                -blockdev '{"driver":"raw","file":"f0","node-name":"d0"}' \
                -device ide-hd,drive=d0,bus=ide.0,unit=0 \
                -blockdev "{\"driver\":\"file\",\"filename\":\"$qcow2\",\"node-name\":\"f1\"}" \
                -blockdev '{"driver":"qcow2","file":"f1","node-name":"d1"}' \
                -device ide-hd,drive=d1,bus=ide.0,unit=1 \
                -device ide-cd,bus=ide.1,unit=0
        if wait_log d '^VMTEST READY' 30 &&
                grep -q '^DISK 0 ide0-master sectors=32768 blocks=4096 ws_blocks=256 ' "$tmp/d.log" &&
                grep -q '^DISK 1 ide0-slave sectors=49152 blocks=6144 ws_blocks=256 ' "$tmp/d.log" &&
                grep -q '^NOTE ide1-master is an ATAPI device' "$tmp/d.log" &&
                grep -q '^VMTEST BOOT .* disks=2 disk_rate=100000 ' "$tmp/d.log"; then
                ok "guest with a raw and a qcow2 disk finds both and skips the CD-ROM drive"
                diag "$(grep -E '^(DISK|NOTE) ' "$tmp/d.log")"
        else
                not_ok "guest with a raw and a qcow2 disk finds both and skips the CD-ROM drive" "$(guest_failure d)"
                exit 1
        fi

        if grep -q "^WARN vmtest.ws='0' is not a size" "$tmp/d.log" &&
                grep -q '^VMTEST BOOT .* pages=1024 ws_pages=1024 ' "$tmp/d.log"; then
                ok "vmtest.ws=0 is refused with a WARN and the whole area is the working set"
        else
                not_ok "vmtest.ws=0 is refused with a WARN and the whole area is the working set" \
                        "$(grep -E '^(WARN|VMTEST BOOT)' "$tmp/d.log")"
        fi

        if ctl d disk-status &&
                [[ $answer == "DISK-STATUS disks=2 "*" d0=4096:ide0-master d1=6144:ide0-slave" ]]; then
                ok "disk-status lists 2 disks with their sizes in blocks"
        else
                not_ok "disk-status lists 2 disks with their sizes in blocks" "$answer"
        fi

        measure_disk_rate d 1500
        r=$disk_rate_seen
        if [[ -n $r ]] && ((r >= 100)); then
                ok "unthrottled disk writer writes ($r blocks/s)"
        else
                not_ok "unthrottled disk writer writes (${r:-?} blocks/s)" "$answer"
        fi
        diag "max disk-write rate under TCG (WRITE SECTORS, PIO): ${r:-?} blocks/s ($((${r:-0} * 4)) KiB/s)"

        ctl d disk-rate 200
        measure_disk_rate d 2000
        r=$disk_rate_seen
        if [[ -n $r ]] && ((r >= 170 && r <= 230)); then
                ok "disk writer holds the set rate: $r blocks/s for 200"
        else
                not_ok "disk writer holds the set rate: ${r:-?} blocks/s for 200"
        fi
        w_before=$disk_count

        ctl d disk-verify
        rc=$?
        if ((rc == 0)) && [[ $answer == "DISK-VERIFY OK disks=2 blocks=10240 "* ]]; then
                ok "disk-verify is OK on both disks while writing (written=$w_before)"
                ms=$(field "$answer" ms)
                diag "$answer"
                diag "disk-verify under TCG (READ MULTIPLE, PIO): $((10240 * 4 * 1000 / (ms > 0 ? ms : 1))) KiB/s"
        else
                not_ok "disk-verify is OK on both disks while writing" "rc=$rc: $answer"
        fi

        if ctl d verify && ctl d status && (($(field "$answer" written) > 0)); then
                ok "memory verify is OK next to the disk writer"
        else
                not_ok "memory verify is OK next to the disk writer" "$answer"
        fi

        # Garbage over a written block (7) and over a never-written one (ws_blocks +
        # 100) of the raw image, with the writer paused so that it cannot heal them,
        # and the guest stopped while the image changes under QEMU.
        victim=7
        zero_victim=$((ws_blocks + 100))
        ctl d disk-rate 0
        if qmp d stop; then
                block_get "$raw" $victim "$tmp/victim.block"
                block_get "$raw" $zero_victim "$tmp/zero.block"
                old_counter=$(page_counter "$tmp/victim.block")
                head -c $page /dev/urandom >"$tmp/garbage"
                block_put "$raw" $victim "$tmp/garbage"
                block_put "$raw" $zero_victim "$tmp/garbage"
                qmp d cont
        fi
        ctl d disk-verify
        rc=$?
        if ((rc == 1 && old_counter > 0)) && [[ $answer == "DISK-VERIFY BAD disk=0 block=$victim expected=$old_counter "* &&
                $(field "$answer" word) == 0 && $(field "$answer" bad_blocks) == 2 ]]; then
                ok "disk-verify reports the garbage block (disk 0 block $victim) and the dirtied zero block"
                diag "$answer"
        else
                not_ok "disk-verify reports the garbage block (disk 0 block $victim) and the dirtied zero block" \
                        "rc=$rc counter=$old_counter: $answer"
        fi

        # A lost write: put the saved version of the block back after the writer
        # has rewritten it. Self-consistent, but older than the counter in RAM.
        qmp d stop && block_put "$raw" $victim "$tmp/victim.block" &&
                block_put "$raw" $zero_victim "$tmp/zero.block" && qmp d cont
        ctl d disk-rate 100000
        disk_written d
        wait_disk_written d $((disk_count + 3 * 2 * ws_blocks)) 30
        ctl d disk-rate 0
        if qmp d stop; then
                block_put "$raw" $victim "$tmp/victim.block"
                qmp d cont
        fi
        ctl d disk-verify
        rc=$?
        expected=$(field "$answer" expected)
        if ((rc == 1)) && [[ $answer == "DISK-VERIFY BAD disk=0 block=$victim "* &&
                $(field "$answer" found) == "$old_counter" && $(field "$answer" bad_blocks) == 1 ]] &&
                ((expected > old_counter)); then
                ok "disk-verify reports a stale block (a lost write) with expected > found"
                diag "$answer"
        else
                not_ok "disk-verify reports a stale block (a lost write) with expected > found" \
                        "rc=$rc old_counter=$old_counter: $answer"
        fi

        if ctl d verify; then
                ok "memory verify is still OK on the disk guest"
        else
                not_ok "memory verify is still OK on the disk guest" "$answer"
        fi
        stop_guests d

        # vmtest.disk_base: blocks never written must hold the base version
        # (guestctl.py make-base), here under a qcow2 top image that the
        # writer fills; a zero disk fails the same check.
        rm -f "$tmp/base.raw"
        if $python "$guestctl" make-base --disk 0 --size $((4 * 1024 * 1024)) "$tmp/base.raw" &&
                "$qemu_img" create -q -f qcow2 -b "$tmp/base.raw" -F raw "$tmp/top.qcow2" &&
                "$qemu_img" create -q -f raw "$tmp/zero.raw" 4M; then
                start_guest e tcg "vmtest.mem=4M vmtest.disk_rate=2000 vmtest.disk_ws=256K vmtest.disk_base=1" - \
                        -blockdev "{\"driver\":\"file\",\"filename\":\"$tmp/top.qcow2\",\"node-name\":\"f0\"}" \
                        -blockdev '{"driver":"qcow2","file":"f0","node-name":"d0"}' \
                        -device ide-hd,drive=d0,bus=ide.0,unit=0
                start_guest f tcg "vmtest.mem=4M vmtest.disk_rate=0 vmtest.disk_base=1" - \
                        -blockdev "{\"driver\":\"file\",\"filename\":\"$tmp/zero.raw\",\"node-name\":\"f0\"}" \
                        -blockdev '{"driver":"raw","file":"f0","node-name":"d0"}' \
                        -device ide-hd,drive=d0,bus=ide.0,unit=0
        fi
        if wait_log e '^VMTEST READY' 30 && wait_disk_written e 64 30 && ctl e disk-verify &&
                [[ $answer == "DISK-VERIFY OK disks=1 blocks=1024 "* ]]; then
                ok "vmtest.disk_base: a top image over a base image verifies (written and base blocks)"
        else
                not_ok "vmtest.disk_base: a top image over a base image verifies (written and base blocks)" \
                        "$answer $(guest_failure e)"
        fi
        if wait_log f '^VMTEST READY' 30 && ! ctl f disk-verify &&
                [[ $answer == "DISK-VERIFY BAD disk=0 block=0 expected=4294967295 found=0 "* ]]; then
                ok "vmtest.disk_base: a disk without the base version fails disk-verify"
        else
                not_ok "vmtest.disk_base: a disk without the base version fails disk-verify" "$answer"
        fi
        stop_guests e f
}

disk_tests=12
raw=$tmp/d0.raw
qcow2=$tmp/d1.qcow2
if ! command -v "$qemu_img" >/dev/null; then
        for ((i = 0; i < disk_tests; i++)); do
                skip "disk test $((i + 1))/$disk_tests" "$qemu_img not found"
        done
elif ! "$qemu_img" create -q -f raw "$raw" 16M || ! "$qemu_img" create -q -f qcow2 "$qcow2" 24M; then
        not_ok "qemu-img creates the disk images"
        exit 1
else
        disk_tests_run
fi

# ---------------------------------------------------------------------------
# An idle guest under KVM.

if [[ ! -c /dev/kvm || ! -r /dev/kvm ]]; then
        skip "KVM guest boots and heartbeats" "no usable /dev/kvm"
        skip "KVM guest verifies OK" "no usable /dev/kvm"
        skip "idle KVM guest uses little host CPU" "no usable /dev/kvm"
else
        diag "accel: kvm"
        t_start=$(now_ms)
        # Small area: memory writes crawl under the nested KVM of the test
        # machines (~200 pages/s).
        start_guest k kvm "vmtest.mem=256K vmtest.rate=0"
        if wait_log k '^VMTEST READY' 60 && ready_ms=$(($(now_ms) - t_start)) && wait_log k '^HB seq=1 ' 5; then
                ok "KVM guest boots and heartbeats"
                diag "KVM boot (QEMU start to READY, 256 KiB fill included): ${ready_ms} ms; guest: $(grep -m1 '^VMTEST READY' "$tmp/k.log")"
        else
                not_ok "KVM guest boots and heartbeats" "$(guest_failure k)"
        fi
        if ctl k verify; then
                ok "KVM guest verifies OK"
                diag "$answer"
        else
                not_ok "KVM guest verifies OK" "$answer"
        fi
        pid=$(qemu_process k)
        if alive k; then
                c0=$(cpu_ticks "$pid")
                h0=$(now_ms)
                while (($(now_ms) - h0 < 3000)); do sleep 0.1; done
                c1=$(cpu_ticks "$pid")
                pct=$(((c1 - c0) * 100 * 1000 / ($(getconf CLK_TCK) * ($(now_ms) - h0))))
                diag "idle host CPU under KVM: ${pct}%"
                if ((pct < 50)); then
                        ok "idle KVM guest uses little host CPU (${pct}%)"
                else
                        not_ok "idle KVM guest uses little host CPU (${pct}%)"
                fi
        else
                not_ok "idle KVM guest uses little host CPU" "QEMU is gone"
        fi
fi

((tap_n == 43)) || diag "planned 43 tests, ran $tap_n"
exit $((tap_failed > 0))
