#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Boots the test guest directly with qemu-system-x86_64 (no daemon) and
# checks that it boots, heartbeats, answers commands, holds its write rate,
# and that `verify` catches a corrupted, a zeroed, a stale and a torn page
# written into guest RAM from the host through a /dev/shm memory backend.
# TAP output. Writing guests run under TCG (nested KVM on the test machines
# crawls on guest memory writes); one idle guest boots under KVM when
# /dev/kvm exists.
#
# Environment (set by meson):
#   VMTEST_KERNEL    the guest kernel (vmigrate-test-guest.elf)
#   VMTEST_GUESTCTL  guestctl.py
#   QEMU             optional, default qemu-system-x86_64

set -u

kernel=${VMTEST_KERNEL:-}
guestctl=${VMTEST_GUESTCTL:-$(dirname "$0")/guestctl.py}
qemu=${QEMU:-qemu-system-x86_64}
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
declare -A qemu_pid

# shellcheck disable=SC2317  # called through the trap
cleanup() {
        local name pid
        for name in "${!qemu_pid[@]}"; do
                pid=${qemu_pid[$name]}
                kill "$pid" 2>/dev/null
        done
        for name in "${!qemu_pid[@]}"; do
                wait "${qemu_pid[$name]}" 2>/dev/null
        done
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

# start_guest NAME ACCEL APPEND [shm]: starts QEMU in the background with COM1
# on $tmp/NAME.sock (log in $tmp/NAME.log); with "shm", guest RAM is the
# file $shm_prefix$NAME, so file offset == guest physical address.
start_guest() {
        local name=$1 accel=$2 append=$3 shm=${4:-}
        local -a args=(-display none -nodefaults -no-user-config -no-reboot
                -m "${ram_mib}M" -kernel "$kernel" -append "$append"
                -chardev "socket,id=s0,path=$tmp/$name.sock,server=on,wait=off,logfile=$tmp/$name.log"
                -serial chardev:s0)
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
}

qemu_process() {                # the QEMU under the timeout(1) of NAME
        pgrep -P "${qemu_pid[$1]}" | head -n 1
}

alive() {
        kill -0 "${qemu_pid[$1]}" 2>/dev/null
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
# uptime, from two status answers, into $rate_seen; $host_ms is the host
# time between the two answers.
measure_rate() {
        local name=$1 span=$2 w0 t0 w1 t1 h0
        rate_seen=
        ctl "$name" status || return 1
        w0=$(field "$answer" written)
        t0=$(field "$answer" uptime_ms)
        h0=$(now_ms)
        while :; do
                sleep 0.05
                ctl "$name" status || return 1
                t1=$(field "$answer" uptime_ms)
                ((t1 - t0 >= span)) && break
        done
        host_ms=$(($(now_ms) - h0))
        w1=$(field "$answer" written)
        rate_seen=$(((w1 - w0) * 1000 / (t1 - t0)))
}

cpu_ticks() {                   # utime + stime of a process, in clock ticks
        awk '{ print $14 + $15 }' "/proc/$1/stat"
}

echo "1..21"

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
# The guest clock is the TSC calibrated against the PIT: it must follow host time.
if ((host_ms >= 1800 && host_ms <= 2600)); then
        ok "guest uptime follows host time (2000+ guest ms took $host_ms host ms)"
else
        not_ok "guest uptime follows host time (2000+ guest ms took $host_ms host ms)"
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

start_guest c tcg "vmtest.mem=1G vmtest.ws=2G vmtest.rate=bogus"
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
kill "${qemu_pid[c]}" "${qemu_pid[a]}" 2>/dev/null

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

((tap_n == 21)) || diag "planned 21 tests, ran $tap_n"
exit $((tap_failed > 0))
