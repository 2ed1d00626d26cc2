#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The guest's integrity check through the qemu backend, proven both ways: a
# guest that keeps writing its memory verifies OK over its serial socket;
# one page corrupted from the host (through /proc/PID/mem, the guest
# paused) is then reported by verify, exactly that page.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-qemu.sh"

vmq_setup
# Always TCG: under the nested KVM of the test machines guest memory
# writes crawl (~1 MiB/s), and this guest writes 2000 pages a second.
guest_print_accel qemu "this guest writes memory at 2000 pages/s; memory writes crawl under nested KVM"
: "${VMTEST_GUESTMEM:?VMTEST_GUESTMEM must be set}"

mem_mib=64
dom=$(vmq_define "$(vmq_domain_xml writer qemu "vmtest.mem=16M vmtest.ws=8M vmtest.rate=2000 vmtest.hb=500" "$mem_mib")")
ok $? "DefineXML of a TCG (type qemu) domain writing its memory" || bail_out "cannot define the guest"
uuid=$(vmq_prop "$dom" UUID)
dpid=$(vm_daemon_pid)
fds_before=$(vmq_fd_count "$dpid")

vmq_dom "$dom" Start >/dev/null
ok $? "Start" || bail_out "the guest does not start"
qpid=$(vmq_pid "$uuid")
like "$(tr '\0' ' ' <"/proc/$qpid/cmdline")" "-accel tcg " "QEMU runs under TCG"
serial_log=$(vmq_serial_log "$uuid")
ok 'vmq_wait_log "$serial_log" "^VMTEST READY"' "the guest filled its test area (READY)"

# The boot banner gives the test area: area=0xSTART-0xEND pages=N ws_pages=N
banner=$(grep -m1 '^VMTEST BOOT' "$serial_log")
like "$banner" 'area=0x[0-9a-f]+-0x[0-9a-f]+ pages=4096 ws_pages=2048 rate=2000' \
        "the boot banner: a 16 MiB area, 8 MiB working set, 2000 pages/s"
[[ $banner =~ area=0x([0-9a-f]+)-0x([0-9a-f]+) ]] || bail_out "no area in the banner: $banner"
area_start=$((16#${BASH_REMATCH[1]}))
area_end=$((16#${BASH_REMATCH[2]}))
diag "test area 0x$(printf %x $area_start)-0x$(printf %x $area_end)"

# It writes: the written count grows at about the rate.
written() {
        local s
        s=$(vmq_ctl "$uuid" status) || return 1
        [[ $s =~ written=([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}
w1=$(written)
ok $? "status answers (written=$w1)"
_written_more() {
        local w
        w=$(written) && [ "$w" -ge $((w1 + 2000)) ]
}
ok 'wait_until 20 _written_more' "the guest keeps writing (2000 more pages written)"
out=$(vmq_ctl "$uuid" verify)
ok $? "a writing guest verifies OK over its serial socket" || diag "  $out"
like "$out" '^VERIFY OK pages=4096 ' "... all 4096 pages ($out)"

# --- corrupt one page outside the working set (the writer would repair a
# page inside it): the third-last page of the area.
index=4093
page=$((area_start + index * 4096))
ok '[ $((page + 4096)) -le $area_end ]' "page $index (0x$(printf %x $page)) lies in the area"
vmq_dom "$dom" Suspend >/dev/null
ok $? "Suspend the guest (its vCPU must not race the host's write)"
is "$(vmq_state "$dom")" paused/user "paused"
base=$($VMQ_PY "$VMTEST_GUESTMEM" "$qpid" $((mem_mib << 20)) find)
ok $? "found QEMU's guest RAM mapping in /proc/$qpid/maps ($base)"
before=$($VMQ_PY "$VMTEST_GUESTMEM" "$qpid" $((mem_mib << 20)) read $((page + 8)) 16)
ok $? "read the page through /proc/$qpid/mem"
header=$($VMQ_PY "$VMTEST_GUESTMEM" "$qpid" $((mem_mib << 20)) read $((page + 4)) 4)
# Word 1 of every page is its own guest physical address (little endian):
# proves the mapping and the address arithmetic before writing anything.
is "$header" "$(printf '%02x%02x%02x%02x' $((page & 255)) $(((page >> 8) & 255)) $(((page >> 16) & 255)) $((page >> 24)))" \
        "word 1 of the page holds its guest physical address: the mapping is the guest's RAM"
$VMQ_PY "$VMTEST_GUESTMEM" "$qpid" $((mem_mib << 20)) write $((page + 8)) efbeaddeefbeaddeefbeaddeefbeadde
ok $? "wrote 16 bytes of 0xdeadbeef into words 2-5 of that page (were $before)"
vmq_dom "$dom" Resume >/dev/null
ok $? "Resume"

out=$(vmq_ctl "$uuid" verify)
is $? 1 "verify now fails (guestctl exit 1)"
like "$out" "^VERIFY BAD page=0x0*$(printf %x $page) index=$index " "VERIFY BAD names exactly that page ($out)"
like "$out" " word=2 value=0xdeadbeef " "... the first bad word is word 2, 0xdeadbeef"
like "$out" " bad_pages=1 " "... and it is the only bad page"

# --- stop; nothing left
vmq_dom "$dom" Destroy >/dev/null
ok $? "Destroy"
ok 'vmq_wait_gone "$qpid"' "QEMU is gone"
vmq_check_stopped "after Destroy" "$uuid" "$dpid" "$fds_before"
vmq_no_qemu_left "no QEMU of this test is left running"

vm_finish
