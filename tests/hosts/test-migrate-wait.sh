#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A migration scripted with busctl alone: option wait defers the reply
# until the job has ended (the job path on success, MigrationFailed when
# it fails or is cancelled). And ssh:// destinations: a test-backend
# domain migrated over ssh://root@host-b and to a bare host name, and an
# unreachable ssh destination refused with DestinationUnreachable naming
# the host.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup a b
dest_b=$(mig_dest b)

# --- wait=true: the reply comes when the job has completed
w1=$(mig_create a "$(mig_test_xml w1 1024 0)")
ok $? "test domain w1 (1 GiB) runs on a"
t0=$(mig_now_ms)
out=$(mig_migrate a "$w1" "$dest_b" 2 wait b true bandwidth t 500000000)
ms=$(($(mig_now_ms) - t0))
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "Migrate with wait=true answers with the job path ($ms ms)"
job=$(vm_reply_path "$out")
is "$(mig_jprop a "$job" Phase)" completed "... when the reply comes the job has completed"
ok "[ $ms -ge 1500 ]" "... after the copy (1 GiB at 500 MB/s: >= 2 s; took $ms ms)"
ok "! mig_lookup a w1 >/dev/null 2>&1" "... the transient w1 is gone from a"
like "$(mig_state b "$(mig_lookup b w1)")" '^running/migrated$' "... and runs on b"

# --- wait=true, and the job cancelled from elsewhere: MigrationFailed
w2=$(mig_create a "$(mig_test_xml w2 4096 0)")
ok $? "test domain w2 (4 GiB) runs on a"
mig_migrate_gdbus a "$w2" "$dest_b" "{'wait': <true>, 'bandwidth': <uint64 20000000>}" >"$HOSTS_RUN/w2.out" &
waiter=$!
ok "wait_until 15 eval '[ \"\$(mig_job_of a $w2)\" != / ]'" "w2: while the caller waits, the domain has a job"
job=$(mig_job_of a "$w2")
ok "mig_wait_phase 10 a '$job' perform" "w2: the job is copying"
ok "kill -0 $waiter" "w2: the Migrate call is still unanswered"
mig_bus a call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" Cancel
ok $? "w2: another client cancels the job"
ok "wait_until 15 eval '! kill -0 $waiter 2>/dev/null'" "w2: the waiting Migrate call returns"
wait "$waiter"
out=$(cat "$HOSTS_RUN/w2.out")
like "$out" "GDBus.Error:$VM_ERR\\.MigrationFailed: .*cancel" "w2: with MigrationFailed saying it was cancelled ($out)"
like "$(mig_state a "$w2")" '^running/' "w2: still runs on a"
ok "! mig_lookup b w2 >/dev/null 2>&1" "w2: nothing of it on b"

# --- wait=true and a refusal before any copy: the refusal itself
mig_define b "$(mig_test_xml w2 256)" >/dev/null
out=$(mig_migrate_gdbus a "$w2" "$dest_b" "{'wait': <true>}")
like "$out" "GDBus.Error:$VM_ERR\\.DomainExists: " "w2 with wait=true to a host that has another w2: DomainExists at once"

# --- ssh:// destinations
if ! command -v sshd >/dev/null || ! command -v systemd-stdio-bridge >/dev/null; then
        bail_out "sshd or systemd-stdio-bridge missing (packages openssh-server, systemd)"
fi
host_start_sshd b
ok $? "sshd runs on host b"
s1=$(mig_create a "$(mig_test_xml s1 512)")
out=$(mig_migrate a "$s1" ssh://root@host-b 1 wait b true)
like "$out" '^o "' "s1 migrated to ssh://root@host-b with wait=true"
is "$(mig_jprop a "$(vm_reply_path "$out")" Phase)" completed "... completed"
is "$(mig_jprop a "$(vm_reply_path "$out")" Destination)" ssh://root@host-b "... the job's Destination is the ssh URI"
like "$(mig_state b "$(mig_lookup b s1)")" '^running/migrated$' "... s1 runs on b"
s2=$(mig_create a "$(mig_test_xml s2 512)")
out=$(mig_migrate a "$s2" host-b 1 wait b true)
like "$out" '^o "' "s2 migrated to the bare host name host-b"
like "$(mig_state b "$(mig_lookup b s2)")" '^running/migrated$' "... s2 runs on b"
s3=$(mig_create a "$(mig_test_xml s3 512)")
out=$(mig_migrate_gdbus a "$s3" ssh://root@host-b:2222 "{'wait': <true>}")
like "$out" "GDBus.Error:$VM_ERR\\.DestinationUnreachable: .*host-b" \
        "ssh://root@host-b:2222 (nobody listens): DestinationUnreachable naming host-b"
out=$(mig_migrate_gdbus a "$s3" ssh://nobody@host-b "@a{sv} {}")
like "$out" "GDBus.Error:$VM_ERR\\.DestinationUnreachable: .*host-b" \
        "ssh://nobody@host-b (authentication refused): DestinationUnreachable naming host-b"
like "$(mig_state a "$s3")" '^running/' "... s3 still runs on a"
ok "! mig_lookup b s3 >/dev/null 2>&1" "... and is not on b"
is "$(mig_running_jobs a)$(mig_running_jobs b)" "" "no job runs on a or b"

hosts_finish
