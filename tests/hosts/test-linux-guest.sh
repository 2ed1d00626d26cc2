#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real Linux guest live-migrated between two hosts and back: Debian's
# kernel with a busybox initramfs (tests/guest-linux, built from Debian
# packages at test time) under TCG, 256 MiB, a virtio disk on shared
# storage, and a background writer dirtying its memory during both
# migrations. After each one the guest answers on its serial port on the
# new host, has not rebooted (same boot_id, uptime went on), its tmpfs data
# and disk data read back with the checksums taken before, the writer kept
# running, its kernel log has no oops, BUG, WARNING, RCU stall or lockup,
# and the QEMU guest agent in it answers guest-ping through the <channel>
# vmigrate gave it on that host.
#
# Its display: a VGA card in text mode, where the guest's init draws a
# banner with its boot_id on the console (tty0) and nothing changes
# afterwards, and a VNC display from each host's range 5910-5919 (5910
# taken on b, so the guest gets 5911 there). Screendumps of it are VNC
# framebuffer snapshots (tests/hosts/rfb-client.py, from b): the pixels
# QMP's screendump would write, which the test cannot ask for as
# vmigrated owns the guest's monitor. Before a -> b: Displays names
# host-a:5910, the banner's lines are lit and nothing below them, and two
# snapshots a second apart are identical; a VNC client stays connected to
# host-a. After: that client saw its connection close, Displays on b
# names host-b:5911, a new client connects there, and the whole 720x400
# screen equals the one taken on a. After b -> a the screen at
# host-a:5910 is that one again.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

: "${VMTEST_LINUX_BUILD:?VMTEST_LINUX_BUILD must be set}"
: "${VMTEST_LINUX_DIR:?VMTEST_LINUX_DIR must be set}"

HERE=$(cd "$(dirname "$0")" && pwd)
RFB="$MIG_PY $HERE/rfb-client.py"
HOSTS_DAEMON_ARGS="--display-ports=5910-5919"
mig_setup --qemu a b
guest_print_accel tcg "a Linux kernel turns on paging, and nested KVM here resets such a guest"
mig_require_tcg_precopy
dest_a=$(mig_dest a)
dest_b=$(mig_dest b)

# --- the guest, built (or found up to date) from Debian packages
t0=$(mig_now_ms)
out=$("$VMTEST_LINUX_BUILD" "$VMTEST_LINUX_DIR" 2>"$HOSTS_RUN/build.err")
rc=$?
case $rc in
0) ;;
77) skip_all "the Linux guest cannot be built here: $(sed -n 's/^SKIP: //p' <<<"$out")" ;;
*) bail_out "tests/guest-linux/build.sh failed ($rc): $(tail -n 5 "$HOSTS_RUN/build.err")" ;;
esac
info() { sed -n "s/^$1=//p" "$VMTEST_LINUX_DIR/info"; }
release=$(info release)
ok "[ -n '$release' ]" "the Linux guest is ready ($(($(mig_now_ms) - t0)) ms): $(info kernel_package) $(info kernel_version), busybox-static $(info busybox_version)"
diag "vmlinuz $(info vmlinuz_bytes) bytes, initrd $(info initrd_bytes) bytes, modules: $(info modules)"

mem_mib=256
data_mib=64
disk_mib=16
img=/srv/vmigrate/shared/linux-vda.raw
host_exec a qemu-img create -q -f raw "$img" 64M
ok $? "a 64 MiB raw disk in the shared storage"

xml="<domain type='qemu'>
  <name>linux</name>
  <memory unit='MiB'>$mem_mib</memory>
  <vcpu>1</vcpu>
  <os>
    <type>hvm</type>
    <kernel>$VMTEST_LINUX_DIR/vmlinuz</kernel>
    <initrd>$VMTEST_LINUX_DIR/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'/>
    <graphics type='vnc' autoport='yes' listen='0.0.0.0'/>
    <video><model type='vga'/></video>
    <channel type='unix'>
      <source mode='bind'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
  </devices>
</domain>"
t0=$(mig_now_ms)
p=$(mig_define a "$xml") && mig_dom a "$p" Start >/dev/null
ok $? "the Linux guest ($mem_mib MiB, TCG, virtio disk, VGA, VNC) starts on a" || bail_out "cannot start the guest"
uuid=$(mig_uuid a "$p")
serial_log="$(host_path a runtime)/qemu/log/$uuid-serial0.log"
wait_until 120 grep -q '^LINUX READY' "$serial_log"
ok $? "it boots to its /init and prints the banner ($(($(mig_now_ms) - t0)) ms after Define)" ||
        bail_out "no banner; the serial log ends with: $(tail -n 20 "$serial_log" 2>/dev/null)"
banner=$(grep -a -m1 '^LINUX READY' "$serial_log" | tr -d '\r')
diag "$banner"
like "$banner" " release=$release " "... running the packaged kernel $release"
like "$banner" " failed=none " "... every driver module loaded"
like "$banner" " disk=vda:64M " "... and virtio_blk found the disk"
like "$banner" " screen=vga " "... and drew its screen banner with vgacon, in VGA text mode"
agent=0
[[ $banner == *" agent=/dev/"* ]] && agent=1
[ "$agent" = 1 ] || diag "the guest has no agent ($(grep -o ' agent=[^ ]*' <<<"$banner")): guest-ping is not tried"
# ga_ping HOST: the QEMU guest agent's answer to guest-ping, through the
# <channel> socket vmigrate gave the guest on HOST.
ga_ping() {
        "$MIG_PY" "$VMIGRATE_SOURCE_ROOT/tests/guest-linux/qmp.py" --agent \
                "$(host_path "$1" runtime)/qemu/$uuid/channel0.sock" guest-ping 2>&1
}
if [ "$agent" = 1 ]; then
        is "$(ga_ping a)" "{}" "the guest agent answers guest-ping on a (<channel> org.qemu.guest_agent.0)"
else
        skip "the guest agent answers guest-ping on a" "no qemu-ga in the guest"
fi

# lg HOST LINE: one command line to the guest on HOST, its answer.
lg() {
        mig_guest "$1" "$uuid" raw "$2"
}
# field LINE KEY: the value of KEY=VALUE in LINE.
field() {
        sed -n -E "s/^(|.* )$2=([^ ]*).*$/\2/p" <<<"$1"
}

like "$(lg a "uname")" "^UNAME release=$release machine=x86_64$" "uname on a"
w=$(lg a "mem-write $data_mib")
like "$w" "^MEM-WRITE OK mib=$data_mib md5=[0-9a-f]{32} " "mem-write: $data_mib MiB of random data in a tmpfs"
mem_md5=$(field "$w" md5)
w=$(lg a "disk-write $disk_mib")
like "$w" "^DISK-WRITE OK dev=vda mib=$disk_mib md5=[0-9a-f]{32} " "disk-write: $disk_mib MiB to /dev/vda with O_DIRECT"
disk_md5=$(field "$w" md5)
is "$(head -c $((disk_mib << 20)) "$(host_path a shared)/linux-vda.raw" | md5sum | cut -d' ' -f1)" "$disk_md5" \
        "... which is what the image holds"
like "$(lg a churn-start)" '^CHURN-START OK ' "a background writer rewrites 8 x 4 MiB in turn"
ok "wait_until 30 eval '[ \"\$(field \"\$(lg a churn-status)\" rounds)\" -ge 2 ]'" "... and goes round"

# --- the screen, through VNC
vnc_uri() { mig_displays "$1" "$p" | awk '$1 == "vnc" { print $2 }'; }
# snap NAME URI: a VNC client on b saves the screen as NAME.ppm.
snap() { host_exec b $RFB "$2" snapshot "$HOSTS_RUN/$1.ppm" >/dev/null; }
# cmp_screen A B ROWS: ppm-compare.py on the top ROWS pixel rows of A.ppm
# and B.ppm: "SAME N-lit" or "DIFFER N". Text mode is 720x400, 9x16 cells:
# the banner's 4 lines are rows 0-63.
cmp_screen() { $MIG_PY "$HERE/ppm-compare.py" "$HOSTS_RUN/$1.ppm" "$HOSTS_RUN/$2.ppm" "$3"; }
lit() { cmp_screen "$1" "$1" "$2" | sed -n 's/^SAME \([0-9]*\)-lit$/\1/p'; }
is "$(vnc_uri a)" vnc://host-a:5910 "Displays on a: VNC at vnc://host-a:5910"
# shellcheck disable=SC2016 # expanded by eval
wait_until 20 eval 'snap s0 vnc://host-a:5910 && [ "$(lit s0 64)" -gt 0 ]'
ok $? "a VNC client on b connects to it and the banner's lines are lit ($(lit s0 64) pixels)"
is "$(lit s0 400)" "$(lit s0 64)" "... and nothing below them"
# Not a wait for a condition: the screen must stay the same for a while.
sleep 1
snap before vnc://host-a:5910
like "$(cmp_screen s0 before 400)" '^SAME [1-9]' "a second later the screen is the same, pixel for pixel (nothing blinks)"
host_exec b $RFB vnc://host-a:5910 hold "$HOSTS_RUN/held.ppm" >"$HOSTS_RUN/hold.out" 2>&1 &
ok "wait_until 20 grep -q CONNECTED '$HOSTS_RUN/hold.out'" "a VNC client stays connected to host-a during the migration"
# Port 5910 taken on b: the guest gets 5911 there, so the client must
# read the new port from Displays.
ip netns exec "$(host_netns b)" $MIG_PY -c '
import signal, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5910)); s.listen(1)
print("held", flush=True)
signal.pause()' >"$HOSTS_RUN/squat.out" 2>&1 &
# (until killed: a pid that ended by itself may be another test's by then)
squat=$!
ok "wait_until 10 grep -qs held '$HOSTS_RUN/squat.out'" "port 5910 on b is taken by another program"

here=a
# leg: migrate from $here to the other host with the writer running, then
# check the guest there; sets $here.
leg() {
        local from=$here to dest out job s0 s1 up0 up1 id0 id1 r0 ms t0 w0 w1
        if [ "$from" = a ]; then to=b dest=$dest_b; else to=a dest=$dest_a; fi
        w0=$(mig_now_ms)
        s0=$(lg "$from" uptime)
        up0=$(field "$s0" s) id0=$(field "$s0" boot_id)
        r0=$(field "$(lg "$from" churn-status)" rounds)
        t0=$(mig_now_ms)
        out=$(mig_migrate "$from" "$p" "$dest" 2 wait b true bandwidth t 1000000000)
        ms=$(($(mig_now_ms) - t0))
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$from -> $to: the live migration completes ($ms ms)" || {
                diag "$out"
                return 1
        }
        job=$(vm_reply_path "$out")
        diag "$(mig_jprop "$from" "$job" Iteration) passes, downtime $(mig_dom "$from" "$p" GetJobStats 2>/dev/null |
                grep -o '"downtime-ms" [a-z] [0-9]*' | awk '{ print $3 }') ms"
        is "$(mig_state "$to" "$p")" running/migrated "$from -> $to: the guest runs on $to"
        ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $from $uuid)\" ]'" "$from -> $to: its QEMU on $from is gone"
        s1=$(lg "$to" uptime)
        w1=$(mig_now_ms)
        like "$s1" '^UPTIME ' "$from -> $to: the guest answers on $to's serial port"
        up1=$(field "$s1" s) id1=$(field "$s1" boot_id)
        is "$id1" "$id0" "$from -> $to: same boot_id: the kernel did not reboot"
        # The guest's clock stops only for the downtime: its uptime goes on
        # by about the host's time between the two questions (each answer
        # can lag its question by a serial round trip, hence the slack).
        ok "awk -v a='$up0' -v b='$up1' -v w='$((w1 - w0))' 'BEGIN { d = (b - a) * 1000; exit !(b >= a && d <= w + 500 && d >= w - 3000) }'" \
                "$from -> $to: its uptime went on with the host's clock ($up0 s -> $up1 s, $((w1 - w0)) ms on the host)"
        like "$(lg "$to" uname)" "^UNAME release=$release " "$from -> $to: uname -r is still $release"
        like "$(lg "$to" mem-verify)" "^MEM-VERIFY OK mib=$data_mib md5=$mem_md5 " "$from -> $to: the $data_mib MiB in tmpfs read back with their md5"
        like "$(lg "$to" disk-verify)" "^DISK-VERIFY OK dev=vda mib=$disk_mib md5=$disk_md5 " \
                "$from -> $to: the disk reads back with its md5 (O_DIRECT, through $to's QEMU)"
        # shellcheck disable=SC2016 # expanded by eval, in this function's scope
        wait_until 30 eval '[ "$(field "$(lg $to churn-status)" rounds)" -gt $r0 ]'
        ok $? "$from -> $to: the background writer went on (rounds $r0 -> $(field "$(lg "$to" churn-status)" rounds))"
        like "$(lg "$to" health)" '^HEALTH ok=yes ' "$from -> $to: no oops, BUG, WARNING, RCU stall or lockup in the kernel log"
        if [ "$agent" = 1 ]; then
                is "$(ga_ping "$to")" "{}" "$from -> $to: the guest agent answers guest-ping on $to"
        else
                skip "$from -> $to: the guest agent answers guest-ping" "no qemu-ga in the guest"
        fi
        here=$to
}

leg
kill "$squat" 2>/dev/null
wait "$squat" 2>/dev/null
wait_until 20 grep -q CLOSED "$HOSTS_RUN/hold.out"
ok $? "a -> b: the VNC client connected to host-a saw its connection close ($(tail -n 1 "$HOSTS_RUN/hold.out"))"
is "$(vnc_uri b)" vnc://host-b:5911 "a -> b: Displays on b: vnc://host-b:5911"
ok "wait_until 20 eval 'snap after \"\$(vnc_uri b)\" && [ \"\$(lit after 64)\" -gt 0 ]'" \
        "a -> b: a new VNC client connects to that URI and sees the banner"
like "$(cmp_screen before after 400)" '^SAME [1-9]' "a -> b: the screen on host-b is, pixel for pixel, the one on host-a before"
leg
is "$(vnc_uri a)" vnc://host-a:5910 "b -> a: Displays on a: vnc://host-a:5910 again"
ok "wait_until 20 eval 'snap back vnc://host-a:5910 && [ \"\$(lit back 64)\" -gt 0 ]'" "b -> a: a VNC client connects there"
like "$(cmp_screen before back 400)" '^SAME [1-9]' "b -> a: the screen is still the same pixels"

like "$(lg a churn-stop)" '^CHURN-STOP OK running=yes ' "the writer stops at a round's end"
like "$(lg a churn-verify)" '^CHURN-VERIFY OK files=8 ' "every file it wrote on a, on b and back on a matches its md5"
like "$(lg a status)" "^STATUS release=$release .* disk=vda:64M " "status on a after both migrations"

mig_dom a "$p" Destroy >/dev/null
ok $? "the guest is destroyed on a"
mig_check_clean a "$uuid" "after Destroy"
mig_check_clean b "$uuid" "after Destroy"

hosts_finish
