#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Option 'copy-storage'='all' between two hosts whose disk images are not
# shared (/srv/vmigrate/images is each host's own): a TCG test guest with
# a raw and a qcow2 disk on IDE, rewriting memory and disk blocks the
# whole time, moves a -> b with its disks, and every page and every disk
# block verifies on b (the guest's counters travel with its memory, so a
# write lost during the copy fails disk-verify). Then: a target image that
# exists on the destination is refused by DryRun and Migrate, nothing
# touched; the destination's QEMU killed while the disks are copied fails
# the migration, the guest runs on the source with its disks intact, and
# the destination keeps no image, no QEMU, no port; so does AbortJob
# during the copy; then back a <- b, with TLS chosen by default.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

command -v qemu-img >/dev/null || bail_out "qemu-img not installed (package qemu-utils)"
command -v certtool >/dev/null || bail_out "certtool not installed (package gnutls-bin)"
# Credentials appear only for the last leg: until then there is no TLS.
HOSTS_DAEMON_ARGS="--tls-dir=@HOSTDIR@/pki"
mig_setup --qemu a b
guest_print_accel tcg "a guest that writes memory and disk blocks: nested KVM crawls on both"

imgdir=/srv/vmigrate/images
raw=$imgdir/cs-0.raw qcow=$imgdir/cs-1.qcow2
qemu-img create -q -f raw "$(host_path a images)/cs-0.raw" 16M &&
        qemu-img create -q -f qcow2 "$(host_path a images)/cs-1.qcow2" 24M
ok $? "a raw (16 MiB) and a qcow2 (24 MiB) image in host a's own storage"
disks="<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='$raw'/><target dev='hda' bus='ide'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='$qcow'/><target dev='hdb' bus='ide'/></disk>"
p=$(mig_define a "$(guest_domain_xml csguest qemu 'vmtest.mem=32M vmtest.ws=8M vmtest.rate=2000 vmtest.disk_rate=300' 64 '' "$disks")") &&
        mig_dom a "$p" Start >/dev/null
ok $? "the guest runs on a with both disks"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"
like "$(mig_guest a "$uuid" disk-status)" '^DISK-STATUS disks=2 .* d0=4096:ide0-master d1=6144:ide0-slave' \
        "... and sees its two disks where the XML puts them (hda, hdb)"
sleep 2
like "$(mig_guest a "$uuid" disk-status)" 'written=[1-9]' "... and writes disk blocks"

# One leg: FROM -> TO with copy-storage, checked end to end; ENC is what
# protected it.
leg() {
        local desc=$1 from=$2 to=$3 enc=$4 out job
        out=$(mig_migrate "$from" "$p" "$(mig_dest "$to")" 2 copy-storage s all wait b true)
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate $from -> $to with copy-storage completes" ||
                { diag "$out"; return 1; }
        job=$(vm_reply_path "$out")
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        like "$(mig_guest "$to" "$uuid" verify)" '^VERIFY OK ' "$desc: every memory page verifies on $to"
        like "$(mig_guest "$to" "$uuid" disk-verify)" '^DISK-VERIFY OK disks=2 blocks=10240 ' \
                "$desc: every block of both disks verifies on $to, writes made during the copy included"
        ok "[ -s '$(host_path "$to" images)/cs-0.raw' ] && [ -s '$(host_path "$to" images)/cs-1.qcow2' ]" \
                "$desc: the images exist in $to's own storage"
        is "$(qemu-img info --output=json -U "$(host_path "$to" images)/cs-1.qcow2" | $MIG_PY -c 'import json,sys; print(json.load(sys.stdin)["format"])')" \
                qcow2 "$desc: the qcow2 disk is a qcow2 image on $to"
        ok "[ -e '$(host_path "$from" images)/cs-0.raw' ]" "$desc: the source's images are left as they were"
        like "$(mig_bus "$from" call "$VM_BUS_NAME" "$job" org.freedesktop.DBus.Properties Get ss "$VM_JOB_IFACE" \
                Warnings 2>&1)" "copy-storage: the source.{1,2}s images stay on host-$from \\($raw, $qcow\\)" \
                "$desc: the job says the source's images stay, and where"
        is "$(mig_jprop "$from" "$job" Phase)" completed "$desc: the source's job completed"
        is "$(mig_jprop "$from" "$job" Encryption)" "$enc" "$desc: Job.Encryption is '$enc'"
}
leg "copy" a b none

# The way back: a still has its old images at the same paths.
out=$(mig_dry_run b "$p" "$(mig_dest a)" 1 copy-storage s all)
like "$out" '^ok=false' "existing target: DryRun b -> a fails"
like "$out" $'\nerror storage.disk host-a: disk '"$raw"' \(hda\) already exists here' \
        "... naming host-a, the path and the disk" || diag "$out"
out=$(mig_migrate b "$p" "$(mig_dest a)" 1 copy-storage s all 2>&1)
like "$out" "already exists" "existing target: Migrate b -> a is refused" || diag "$out"
is "$(mig_state b "$p")" running/migrated "... the guest still runs on b"
ok "[ -e '$(host_path a images)/cs-0.raw' ]" "... and a's file was not touched"

rm -f "$(host_path a images)/cs-0.raw" "$(host_path a images)/cs-1.qcow2"
# The destination's QEMU dies while the disks are copied (the link held to
# 40 Mbit/s so that the copy takes a few seconds): the source notices, the
# guest keeps running on b on its own disks, a keeps nothing.
link_shape b --rate 40mbit || bail_out "cannot shape b's link"
out=$(mig_migrate b "$p" "$(mig_dest a)" 1 copy-storage s all)
job=$(vm_reply_path "$out")
like "$job" '^/org/vmigrate/Migrate1/job/' "kill: Migrate b -> a started" || diag "$out"
ok "wait_until 20 eval '[ -n \"\$(mig_qemu_pids a $uuid)\" ] && [ -e \"$(host_path a images)/cs-1.qcow2\" ]'" \
        "kill: a created the images and started the guest's QEMU"
disk_copy_counted() { [[ $(mig_dom b "$p" GetJobStats) =~ \"disk-processed\"\ t\ [1-9] ]]; }
ok "wait_until 10 disk_copy_counted" "kill: GetJobStats counts the disk copy (disk-total, disk-processed)" ||
        diag "$(mig_dom b "$p" GetJobStats)"
stats=$(mig_dom b "$p" GetJobStats)
progress=$(sed -n -E 's/.*"progress" d ([0-9.e+-]+).*/\1/p' <<<"$stats")
ok "awk -v p='$progress' 'BEGIN { exit !(p > 0 && p < 0.5) }'" \
        "kill: during the disk copy the progress ($progress) counts the memory still to send"
kill -KILL $(mig_qemu_pids a "$uuid") 2>/dev/null
ok $? "kill: the destination's QEMU killed during the disk copy"
mig_wait_phase 60 b "$job" 'completed|failed|cancelled'
is "$(mig_jprop b "$job" Phase)" failed "kill: the job failed"
diag "kill: $(mig_jprop b "$job" Error)"
ok "mig_wait_state 20 b '$p' 'running/.*'" "kill: the guest runs on b ($(mig_state b "$p"))"
like "$(mig_guest b "$uuid" disk-verify)" '^DISK-VERIFY OK disks=2 ' "kill: its disks on b are intact"
like "$(mig_guest b "$uuid" verify)" '^VERIFY OK ' "kill: and its memory"
ok "wait_until 20 eval '[ ! -e \"$(host_path a images)/cs-0.raw\" ] && [ ! -e \"$(host_path a images)/cs-1.qcow2\" ]'" \
        "kill: a deleted the images it had created"
mig_check_clean a "$uuid" "kill"

# AbortJob while the disks are copied: only mirrors run (the memory has
# not started), they are cancelled, a deletes what it made.
out=$(mig_migrate b "$p" "$(mig_dest a)" 1 copy-storage s all)
job=$(vm_reply_path "$out")
like "$job" '^/org/vmigrate/Migrate1/job/' "abort: Migrate b -> a started" || diag "$out"
ok "wait_until 20 disk_copy_counted" "abort: the disks are being copied"
out=$(mig_dom b "$p" AbortJob 2>&1)
ok $? "abort: AbortJob during the disk copy" || diag "$out"
mig_wait_phase 30 b "$job" 'completed|failed|cancelled'
is "$(mig_jprop b "$job" Phase)" cancelled "abort: the job was cancelled"
ok "mig_wait_state 20 b '$p' 'running/.*'" "abort: the guest runs on b ($(mig_state b "$p"))"
like "$(mig_guest b "$uuid" disk-verify)" '^DISK-VERIFY OK disks=2 ' "abort: its disks on b are intact"
ok "wait_until 20 eval '[ ! -e \"$(host_path a images)/cs-0.raw\" ] && [ ! -e \"$(host_path a images)/cs-1.qcow2\" ]'" \
        "abort: a deleted the images it had created"
mig_check_clean a "$uuid" "abort"
link_clear b

# With credentials on both hosts TLS is the default, for the disks' NBD
# connections as for the memory: the destination's NBD server takes only
# the source's client certificate.
"$VMIGRATE_SOURCE_ROOT/tools/make-tls-certs.sh" "$HOSTS_RUN/pki" "host-a=$(host_ip a)" "host-b=$(host_ip b)" >/dev/null &&
        cp -a "$HOSTS_RUN/pki/host-a" "$(host_path a dir)/pki" && cp -a "$HOSTS_RUN/pki/host-b" "$(host_path b dir)/pki"
ok $? "credentials for both hosts from one CA"
leg "back, TLS by default" b a tls
like "$(grep -h 'copy-storage: exporting' "$(host_path a log)" | tail -n 1)" 'over NBD on [^ ]+ \(TLS, the source' \
        "back: a exported the disks over NBD with TLS"
like "$(grep -h 'copy-storage: exporting' "$(host_path b log)" | tail -n 1)" '\(clear text\)' \
        "the first copy (no credentials) exported them in clear text"
hosts_finish
