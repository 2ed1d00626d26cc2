#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# How a migration ended outlives the daemon: vmigrated on the source gets
# SIGTERM in the middle of a migration of the TCG test guest (writing
# faster than the 5 MB/s it may use, so it is still copying); the
# migration is cancelled, the guest stays on the source, a client that
# listened heard Finished before the daemon went, and once vmigrated is
# back GetJobStats and ListJobHistory on the source, and ListJobHistory
# on the destination, say how it ended.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup --qemu a b
guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"
mig_monitors a

p=$(mig_define a "$(guest_domain_xml rec qemu 'vmtest.mem=48M vmtest.ws=16M vmtest.rate=2000' 64)") &&
        mig_dom a "$p" Start >/dev/null
ok $? "the test guest, writing 8 MB/s, runs on a"
uuid=$(mig_uuid a "$p")
out=$(mig_migrate a "$p" "$(mig_dest b)" 1 bandwidth t 5000000)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "it leaves for b at 5 MB/s"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 20 a $job perform" "the job copies memory"
pid=$(host_daemon_pid a)
kill -TERM "$pid"
ok "wait_until 30 eval '! kill -0 $pid 2>/dev/null'" "SIGTERM: vmigrated on a exits"
ok "wait_until 10 eval 'vm_signals $mon_a Finished $job | grep -q cancelled'" \
        "a client heard the job's Finished (cancelled) before it went"

like "$(mig_state a "$p")" '^running/' "vmigrated is back (activation): the guest still runs on a"
like "$(mig_guest a "$uuid" verify)" '^VERIFY OK ' "... and every page verifies"
stats=$(mig_dom a "$p" GetJobStats 2>&1)
like "$stats" '"phase" s "cancelled"' "GetJobStats on a: the migration was cancelled" || diag "$stats"
like "$stats" '"error" s "perform phase, on host-a \(source\): cancelled because vmigrated is stopping: ' \
        "... with its error: the phase, the host, and that vmigrated stopped"
like "$stats" "\"id\" t ${job##*/} " "... the same job id"
hist=$(mig_mgr a ListJobHistory 'a{sv}' 1 domain s rec)
like "$hist" "\"phase\" s \"cancelled\"" "ListJobHistory on a has it"
arrival_ended() {
        mig_mgr b ListJobHistory 'a{sv}' 1 kind s migration-in | grep -q -E '"phase" s "(failed|cancelled)"'
}
ok "wait_until 20 arrival_ended" \
        "ListJobHistory on b: the arrival ended without the guest"
is "$(mig_domains b | wc -l)" 0 "b keeps no domain"
is "$(mig_qemu_pids b | wc -l)" 0 "... and no QEMU"

hosts_finish
