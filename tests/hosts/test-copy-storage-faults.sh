#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Faults of option 'copy-storage'='all' that test-copy-storage.sh does not
# provoke, with a TCG test guest (a raw and a qcow2 disk on IDE, writing
# memory and disk blocks the whole time) on host a:
#  - not enough space on b: an 8 MiB tmpfs over b's whole image directory,
#    then only the 16 MiB raw disk moved into an 8 MiB tmpfs by option
#    'destination-xml'; each time DryRun finds storage.space (naming the
#    directory and the need) and Migrate is refused before b creates an
#    image or starts a QEMU; the guest runs on a as before;
#  - the link cut during the disk copy (b's link held to 20 Mbit/s so that
#    the mirror of a fully allocated 16 MiB image lasts seconds): the job
#    fails in bounded time, the guest runs on a in the same QEMU on the
#    same images, every page and disk block verifying; once the cable is
#    back b keeps no image, no QEMU, no NBD listener, no job; then the
#    guest moves a -> b with its disks and verifies there.
# The control channel is b's bus socket reached by path (unix://), as in
# test-migrate-faults.sh: the cut takes only the data (the NBD connections).
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

command -v qemu-img >/dev/null || bail_out "qemu-img not installed (package qemu-utils)"
mig_setup --qemu a b
guest_print_accel tcg "a guest that writes memory and disk blocks: nested KVM crawls on both"
dest_b=$(mig_dest b)

imgdir=/srv/vmigrate/images
raw=$imgdir/csf-0.raw qcow=$imgdir/csf-1.qcow2
small=/srv/vmigrate/small
# The raw image fully allocated: its mirror copies all 16 MiB, whatever the
# guest has written, so the copy lasts long enough to be cut.
qemu-img create -q -f raw -o preallocation=full "$(host_path a images)/csf-0.raw" 16M &&
        qemu-img create -q -f qcow2 "$(host_path a images)/csf-1.qcow2" 24M
ok $? "a raw (16 MiB, allocated) and a qcow2 (24 MiB) image in host a's own storage"

disks="<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='$raw'/><target dev='hda' bus='ide'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='$qcow'/><target dev='hdb' bus='ide'/></disk>"
p=$(mig_define a "$(guest_domain_xml csfguest qemu 'vmtest.mem=32M vmtest.ws=8M vmtest.rate=2000 vmtest.disk_rate=300' 64 '' "$disks")") &&
        mig_dom a "$p" Start >/dev/null
ok $? "the guest runs on a with both disks"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"
like "$(mig_guest a "$uuid" disk-status)" '^DISK-STATUS disks=2 .* d0=4096:ide0-master d1=6144:ide0-slave' \
        "... and sees its two disks"
qemu_a=$(mig_qemu_pids a "$uuid")
ok "wait_until 10 eval '[[ \$(mig_guest a $uuid disk-status) =~ written=[1-9] ]]'" "... and writes disk blocks"

# dev:inode of a's images, and of the files a's QEMU has open.
image_ids() {
        stat -c '%d:%i' "$(host_path a images)/csf-0.raw" "$(host_path a images)/csf-1.qcow2"
}
qemu_holds_images() {
        local held id
        held=$(stat -L -c '%d:%i' "/proc/$qemu_a/fd/"* 2>/dev/null)
        for id in $images_a; do
                grep -qx "$id" <<<"$held" || return 1
        done
}
images_a=$(image_ids)
ok qemu_holds_images "a's QEMU ($qemu_a) has both images open"

# TCP listeners inside host b.
listeners() {
        ip netns exec "$(host_netns "$1")" ss -Hltn 2>/dev/null | awk '{ print $4 }' | sort
}
listeners_b=$(listeners b)
diag "TCP listeners on b before any migration: ${listeners_b:-none}"

# nothing_on_b WHAT: b keeps nothing of the guest: no domain, no QEMU, no
# image at the target paths, no listener that was not there before, and
# mig_check_clean's (run dir, migration port, job).
nothing_on_b() {
        local what=$1
        ok "wait_until 15 eval '! mig_lookup b $uuid >/dev/null 2>&1'" "$what: no domain object for the guest on b"
        ok "wait_until 15 eval '[ -z \"\$(mig_qemu_pids b $uuid)\" ]'" "$what: no QEMU for the guest on b"
        ok "wait_until 15 eval '[ -z \"\$(ls -A \"$(host_path b images)\")\" ]'" \
                "$what: no image in b's $imgdir" || diag "$(ls -l "$(host_path b images)")"
        is "$(listeners b)" "$listeners_b" "$what: no TCP listener left on b (no NBD server, no migration port)"
        mig_check_clean b "$uuid" "$what"
}

# --- 1. not enough space on the destination

# refused_for_space WHAT DIR N NEED N-OPTS OPTS...: DryRun a -> b with
# copy-storage and OPTS finds exactly one error, storage.space naming
# host-b, DIR, the N disks and the NEED; Migrate is refused for it; b
# created nothing (in DIR as seen inside b, nor anywhere per its log) and
# started no QEMU; the guest runs on a as before.
refused_for_space() {
        local what=$1 dir=$2 n=$3 need=$4 out created need_re
        shift 4
        local nopts=$(($1 + 1))
        shift
        need_re=${need//./\\.}
        created=$(grep -c 'copy-storage: created' "$(host_path b log)")
        out=$(mig_dry_run a "$p" "$dest_b" "$nopts" copy-storage s all "$@")
        like "$out" '^ok=false' "$what: DryRun a -> b fails" || diag "$out"
        like "$out" $'\nerror storage\.space host-b: [0-9.]+ (bytes|KiB|MiB) free in '"$dir; copying $n disks? there needs $need_re plus a margin of 64\\.0 MiB"';' \
                "$what: ... with a storage.space error naming host-b, $dir and the $need needed" || diag "$out"
        is "$(grep -c '^error ' <<<"$out")" 1 "$what: ... its only error"
        out=$(mig_migrate a "$p" "$dest_b" "$nopts" copy-storage s all "$@")
        unlike "$out" '^o "/' "$what: Migrate a -> b is refused"
        like "$out" "free in $dir; copying $n disks? there needs $need_re plus a margin" "$what: ... for that reason" || diag "$out"
        is "$(host_exec b ls -A "$dir")" "" "$what: nothing was created in $dir on b"
        is "$(grep -c 'copy-storage: created' "$(host_path b log)")" "$created" "$what: b's daemon created no image"
        is "$(mig_qemu_pids b "$uuid")" "" "$what: b started no QEMU for the guest"
        is "$(mig_qemu_pids a "$uuid")" "$qemu_a" "$what: the guest's QEMU on a is the one it started in"
        is "$(mig_state a "$p")" running/booted "$what: the guest runs on a, never paused"
}

out=$(mig_dry_run a "$p" "$dest_b" 1 copy-storage s all)
like "$out" '^ok=true' "space: DryRun a -> b with copy-storage passes while b's $imgdir has room" || diag "$out"

# b's whole image directory too small for both disks (the raw one's 16 MiB
# and what the qcow2 one takes on a).
host_exec b mount -t tmpfs -o size=8m,mode=0755 csf-images "$imgdir"
ok $? "space: an 8 MiB tmpfs over $imgdir on b"
refused_for_space "space in $imgdir" "$imgdir" 2 "[0-9.]+ MiB" 0
host_exec b umount "$imgdir"

# Only the raw disk moved, by option 'destination-xml', into a small
# tmpfs: the need there is its whole virtual size; the qcow2 disk stays in
# b's $imgdir, which has room. The definition is the running domain's (its
# machine type filled in: destination-xml must not change what the guest
# sees) with the raw disk's path changed.
host_exec b mkdir -p "$small" && host_exec b mount -t tmpfs -o size=8m,mode=0755 csf-small "$small"
ok $? "space: an 8 MiB tmpfs at $small on b"
live_xml=$(mig_bus a --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" GetXML |
        $MIG_PY -c 'import json, sys; print(json.load(sys.stdin)["data"][0])')
dxml=${live_xml//"$raw"/"$small/csf-0.raw"}
ok "[ -n \"\$live_xml\" ] && [ \"\$dxml\" != \"\$live_xml\" ]" "space: a destination-xml with the raw disk in $small"
refused_for_space "space in $small" "$small" 1 "16.0 MiB" 1 destination-xml s "$dxml"
host_exec b umount "$small"

like "$(mig_guest a "$uuid" disk-verify)" '^DISK-VERIFY OK disks=2 ' "space: the guest's disks verify on a"
nothing_on_b "space"

# --- 2. the link cut while the disks are copied
link_shape b --rate 20mbit || bail_out "cannot shape b's link"
out=$(mig_migrate a "$p" "$dest_b" 1 copy-storage s all)
job=$(vm_reply_path "$out")
like "$job" '^/org/vmigrate/Migrate1/job/' "cut: Migrate a -> b with copy-storage started" || diag "$out"
# The mirrors have started and are far from done.
mirror_midway() {
        local s
        s=$(mig_dom a "$p" GetJobStats 2>/dev/null) || return 1
        [[ $s =~ \"disk-processed\"\ t\ ([0-9]+) ]] || return 1
        disk_done=${BASH_REMATCH[1]}
        [[ $s =~ \"disk-total\"\ t\ ([0-9]+) ]] || return 1
        disk_total=${BASH_REMATCH[1]}
        [ "$disk_done" -gt 0 ] && [ "$disk_done" -lt "$disk_total" ]
}
disk_done=0 disk_total=0 t0=$(mig_now_ms)
ok "wait_until 20 mirror_midway" "cut: GetJobStats shows the disk copy under way" ||
        diag "$(mig_dom a "$p" GetJobStats 2>&1)"
diag "cut: $disk_done of $disk_total disk bytes copied $(($(mig_now_ms) - t0)) ms after Migrate returned"
ok "[ -e '$(host_path b images)/csf-0.raw' ] && [ -e '$(host_path b images)/csf-1.qcow2' ]" \
        "cut: b has created the images"
ok "[ -n \"\$(mig_qemu_pids b $uuid)\" ]" "cut: b runs a QEMU for the guest"
like "$(mig_listening_ports b)" ':[0-9]+' "cut: b's NBD server listens"
link_down b
ok $? "cut: b's cable unplugged at $disk_done of $disk_total disk bytes"
t0=$(mig_now_ms)
mig_wait_phase 60 a "$job" 'completed|failed|cancelled'
ok $? "cut: the job ends within 60 s ($(($(mig_now_ms) - t0)) ms, $(mig_job_phase a "$job"))" || {
        diag "cut: still $(mig_job_phase a "$job") on a: $(mig_dom a "$p" GetJobStats 2>&1)"
        diag "cut: b: $(mig_running_jobs b)"
        diag "cut: AbortJob so that the checks below mean something"
        diag "cut: AbortJob: $(mig_dom a "$p" AbortJob 2>&1 || echo failed)"
        t1=$(mig_now_ms)
        mig_wait_phase 60 a "$job" 'completed|failed|cancelled'
        diag "cut: after AbortJob: $(mig_job_phase a "$job") in $(($(mig_now_ms) - t1)) ms"
}
is "$(mig_job_phase a "$job")" failed "cut: the job failed"
diag "cut: job error: $(mig_jprop a "$job" Error)"
ok "mig_wait_state 10 a '$p' 'running/.*'" "cut: the guest runs on a ($(mig_state a "$p"))"
is "$(mig_qemu_pids a "$uuid")" "$qemu_a" "cut: in the QEMU it started in"
is "$(image_ids)" "$images_a" "cut: a's images are the same files"
ok qemu_holds_images "cut: a's QEMU still has them open"
like "$(mig_guest a "$uuid" disk-verify)" '^DISK-VERIFY OK disks=2 blocks=10240 ' \
        "cut: every block of both disks verifies on a"
like "$(mig_guest a "$uuid" verify)" '^VERIFY OK ' "cut: every memory page verifies on a"
link_up b
ok $? "cut: b's cable plugged back"
t_up=$(mig_now_ms)
nothing_on_b "cut"
like "$(grep -h "deleted $raw" "$(host_path b log)")" "created for a migration that did not complete" \
        "cut: b's daemon says it deleted the images it had created"

# The source's side of the NBD connections: a mirror blocked on the cut
# link ends only once its connection breaks (b's QEMU is gone: the next
# retransmission after the cable is back gets a reset), and until then it
# holds its NBD client (and a migration started meanwhile meets the old
# mirrors' events). Nothing of the failed migration may stay on a.
conns_a_b() { ip netns exec "$(host_netns a)" ss -Htn "dst $(host_ip b)" 2>/dev/null | grep -v '^TIME-WAIT'; }
diag "cut: a's TCP connections to b: $(conns_a_b | awk '{ print $1, $4, $5 }' | tr '\n' ';')"
conns_to_b() { [ -n "$(conns_a_b)" ]; }
wait_until 90 eval '! conns_to_b'
ok $? "cut: a's QEMU keeps no connection to b (gone $(($(mig_now_ms) - t_up)) ms after the cable came back)" ||
        diag "$(ip netns exec "$(host_netns a)" ss -Htnp "dst $(host_ip b)")"

# --- and after that the guest moves with its disks
link_clear b
out=$(mig_migrate a "$p" "$dest_b" 2 copy-storage s all wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "after: Migrate a -> b with copy-storage completes" || diag "$out"
is "$(mig_state b "$p")" running/migrated "after: the guest runs on b"
like "$(mig_guest b "$uuid" verify)" '^VERIFY OK ' "after: every memory page verifies on b"
like "$(mig_guest b "$uuid" disk-verify)" '^DISK-VERIFY OK disks=2 blocks=10240 ' \
        "after: every block of both disks verifies on b"
mig_check_clean a "$uuid" "after"
hosts_finish
