#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# copy-storage beyond one full copy into new files: a TCG test guest whose
# first disk is a qcow2 top image on a read-only base image in storage both
# hosts share (its blocks hold a pattern the guest checks wherever it has
# not written: guestctl.py make-base), a raw data disk in host-private
# storage, and a disk of type 'block' (a loop device on each host, named
# per host by destination-xml), writing the whole time.
#  - DryRun with the base missing on the destination: storage.backing;
#  - a -> b with copy-storage 'incremental': only the top image moves, onto
#    the shared base; the block device is copied into b's (reuse-images);
#    every block verifies on b, base blocks included;
#  - back b -> a with 'incremental' onto a's old top image: refused, it
#    would show through;
#  - back b -> a with 'all' and reuse-images: a's old images (stale by now)
#    are written over in place, same files, and every block verifies;
#  - then 'tunnelled' over ssh:// (a -> b) and unix:// (b -> a): the disks'
#    NBD connections go through the tunnel too (one per disk), with no
#    data port opened, and every block verifies.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

command -v qemu-img >/dev/null || bail_out "qemu-img not installed (package qemu-utils)"
command -v losetup >/dev/null || bail_out "losetup not installed (package mount)"
tunnel_command=$VMIGRATE_BUILD_ROOT/service/vmigrate-tunnel
[ -x "$tunnel_command" ] || bail_out "$tunnel_command not built"
HOSTS_DAEMON_ARGS="--tunnel-command=$tunnel_command"
mig_setup --qemu a b
host_start_sshd a || bail_out "no sshd on host a"
host_start_sshd b || bail_out "no sshd on host b"
guest_print_accel tcg "a guest that writes memory and disk blocks: nested KVM crawls on both"

imgdir=/srv/vmigrate/images shared=/srv/vmigrate/shared
base=$shared/cm-base.raw top=$imgdir/cm-top.qcow2 data=$imgdir/cm-data.raw
"$MIG_PY" "$VMTEST_GUESTCTL" make-base --disk 0 --size $((16 << 20)) "$(host_path a shared)/cm-base.raw" &&
        chmod 0444 "$(host_path a shared)/cm-base.raw" &&
        host_exec a qemu-img create -q -f qcow2 -b "$base" -F raw "$top" &&
        qemu-img create -q -f raw "$(host_path a images)/cm-data.raw" 8M
ok $? "a shared read-only base image, a's qcow2 top image on it, a's raw data disk"
base_sum=$(sha256sum <"$(host_path a shared)/cm-base.raw")

truncate -s 8M "$(host_path a images)/cm-blk.raw" "$(host_path b images)/cm-blk.raw"
loop_a=$(hosts_loop_attach "$(host_path a images)/cm-blk.raw") &&
        loop_b=$(hosts_loop_attach "$(host_path b images)/cm-blk.raw")
ok $? "a loop device for each host ($loop_a on a, $loop_b on b)" ||
        bail_out "no loop devices here: disks of type 'block' cannot be tested"

uuid=$(cat /proc/sys/kernel/random/uuid)
# domain_xml LOOP: the guest's definition, with LOOP as its block device.
domain_xml() {
        guest_domain_xml cmguest qemu \
                'vmtest.mem=32M vmtest.ws=8M vmtest.rate=2000 vmtest.disk_rate=300 vmtest.disk_ws=4M vmtest.disk_base=1' \
                64 "$uuid" "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='$top'/><target dev='hda' bus='ide'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='$data'/><target dev='hdb' bus='ide'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw' cache='none'/><source dev='$1'/><target dev='hdc' bus='ide'/></disk>"
}
p=$(mig_define a "$(domain_xml "$loop_a")") && mig_dom a "$p" Start >/dev/null
# moved_xml HOST FROM TO: the domain's definition as HOST runs it
# (Domain.GetXML: the machine type and all filled in), with block device
# FROM replaced by TO: what destination-xml takes, as an admin makes it.
moved_xml() {
        mig_bus "$1" --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" GetXML |
                $MIG_PY -c 'import json, sys; print(json.load(sys.stdin)["data"][0])' | sed "s|'$2'|'$3'|; s|\"$2\"|\"$3\"|"
}
ok $? "the guest runs on a with its three disks"
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"
like "$(mig_guest a "$uuid" disk-verify)" '^DISK-VERIFY OK disks=3 blocks=8192 ' \
        "... and every block verifies on a: the base image's pattern under the top image"
sleep 2
like "$(mig_guest a "$uuid" disk-status)" 'written=[1-9]' "... and it writes disk blocks"

# The base image missing on b: an empty file system over b's view of the
# shared storage.
host_exec b mount -t tmpfs -o size=1M tmpfs "$shared" || bail_out "cannot hide the shared storage from b"
out=$(mig_dry_run a "$p" "$(mig_dest b)" 3 copy-storage s incremental reuse-images b true \
        destination-xml s "$(moved_xml a "$loop_a" "$loop_b")")
host_exec b umount "$shared" || bail_out "cannot uncover the shared storage on b"
like "$out" '^ok=false' "no base on b: DryRun 'incremental' fails"
like "$out" $'\nerror storage.backing host-b: backing file '"$base"' of disk '"$top"' \(hda\) is missing here' \
        "... naming host-b, the backing file, the disk and what to do" || diag "$out"

# a -> b, incremental.
out=$(mig_dry_run a "$p" "$(mig_dest b)" 3 copy-storage s incremental reuse-images b true \
        destination-xml s "$(moved_xml a "$loop_a" "$loop_b")")
like "$out" '^ok=true' "incremental: DryRun a -> b succeeds" || diag "$out"
out=$(mig_migrate a "$p" "$(mig_dest b)" 4 copy-storage s incremental reuse-images b true \
        destination-xml s "$(moved_xml a "$loop_a" "$loop_b")" wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "incremental: Migrate a -> b completes" || diag "$out"
is "$(mig_state b "$p")" running/migrated "incremental: the guest runs on b"
like "$(mig_guest b "$uuid" verify)" '^VERIFY OK ' "incremental: every memory page verifies on b"
like "$(mig_guest b "$uuid" disk-verify)" '^DISK-VERIFY OK disks=3 blocks=8192 ' \
        "incremental: every block verifies on b: the copied top, the shared base under it, the data and block disks"
info=$(qemu-img info --output=json -U "$(host_path b images)/cm-top.qcow2")
is "$($MIG_PY -c 'import json,sys; i=json.load(sys.stdin); print(i["format"], i.get("backing-filename"), i.get("backing-filename-format"))' <<<"$info")" \
        "qcow2 $base raw" "incremental: b's top image is a qcow2 on the shared base"
top_kib=$(du -k "$(host_path b images)/cm-top.qcow2" | cut -f1)
ok "[ '$top_kib' -lt 8192 ]" "incremental: b's top image holds the top only (${top_kib} KiB of a 16 MiB disk)"
is "$(sha256sum <"$(host_path a shared)/cm-base.raw")" "$base_sum" "incremental: the base image is untouched"
like "$(grep -h 'copy-storage: disk hdc is copied into' "$(host_path b log)" | tail -n 1)" "$loop_b.*reuse-images" \
        "incremental: b copied the block disk into its own device ($loop_b)"
ok "[ -e '$(host_path a images)/cm-top.qcow2' ] && [ -e '$(host_path a images)/cm-data.raw' ]" \
        "incremental: a's images are left as they were"

# Back onto a's old top image with 'incremental': refused (what the old
# image holds outside the top would show through).
out=$(mig_dry_run b "$p" "$(mig_dest a)" 3 copy-storage s incremental reuse-images b true \
        destination-xml s "$(moved_xml b "$loop_b" "$loop_a")")
like "$out" $'\nerror storage.disk host-a: disk '"$top"' \(hda\) already exists here, and .{1,2}incremental.{1,2} copies only the top image' \
        "back, incremental onto the old image: DryRun refuses it, naming the disk" || diag "$out"

# Back with 'all' and reuse-images: a's old images are stale (the guest
# wrote on b since), the copy writes over them in place.
ino_before=$(stat -c %i "$(host_path a images)/cm-top.qcow2" "$(host_path a images)/cm-data.raw" | tr '\n' ' ')
sleep 2
out=$(mig_migrate b "$p" "$(mig_dest a)" 4 copy-storage s all reuse-images b true \
        destination-xml s "$(moved_xml b "$loop_b" "$loop_a")" wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "back, all + reuse-images: Migrate b -> a completes" ||
        diag "$out"
is "$(mig_state a "$p")" running/migrated "back: the guest runs on a"
like "$(mig_guest a "$uuid" disk-verify)" '^DISK-VERIFY OK disks=3 blocks=8192 ' \
        "back: every block verifies on a: nothing stale of the reused images shows"
like "$(mig_guest a "$uuid" verify)" '^VERIFY OK ' "back: every memory page verifies on a"
is "$(stat -c %i "$(host_path a images)/cm-top.qcow2" "$(host_path a images)/cm-data.raw" | tr '\n' ' ')" \
        "$ino_before" "back: a's images are the same files, written over in place"
is "$(grep -c 'is copied into .*(option .reuse-images.)' "$(host_path a log)")" 3 \
        "back: a says it reused all three (two images and the block device)"

# tunnelled_leg DESC FROM TO DEST LOOP_FROM LOOP_TO: copy-storage through
# the tunnel onto TO's images (reuse-images), checked end to end.
tunnelled_leg() {
        local desc=$1 from=$2 to=$3 dest=$4 out
        out=$(mig_migrate "$from" "$p" "$dest" 5 copy-storage s all reuse-images b true tunnelled b true \
                destination-xml s "$(moved_xml "$from" "$5" "$6")" wait b true)
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate $from -> $to completes" || diag "$out"
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        like "$(mig_guest "$to" "$uuid" disk-verify)" '^DISK-VERIFY OK disks=3 blocks=8192 ' \
                "$desc: every block of the three disks verifies on $to"
        like "$(mig_guest "$to" "$uuid" verify)" '^VERIFY OK ' "$desc: every memory page verifies on $to"
        like "$(grep -h 'copy-storage: exporting' "$(host_path "$to" log)" | tail -n 1)" 'nbd\.sock, for the tunnel' \
                "$desc: $to's NBD server listened on a socket of the guest's own, not a port"
        is "$(grep -c "tunnel 'nbd-hd[abc]' is connected" "$(host_path "$to" log)")" 3 \
                "$desc: one tunnel per disk was connected on $to"
}
tunnelled_leg "tunnelled over ssh://" a b ssh://host-b "$loop_a" "$loop_b"
tunnelled_leg "tunnelled over unix://" b a "$(mig_dest a)" "$loop_b" "$loop_a"
mig_dom a "$p" Destroy >/dev/null
hosts_finish
