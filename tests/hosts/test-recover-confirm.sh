#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigrated on the source killed (SIGKILL) between the destination's Finish
# and Confirm, or just before Finish: the guest is paused on the source
# (QEMU's postmigrate) and may already run on the destination. The next
# vmigrated on the source must not run it again blindly (the guest would
# run twice, on two hosts, with one disk: a split brain); it asks the
# destination (Incoming.Arrival), as recorded before Finish (recover.h):
#   1. killed at source-before-confirm: b runs the guest; a's restarted
#      daemon stops its copy; a recovery job on a completes;
#   2. killed at source-before-finish (no Finish sent, no record): b
#      discards its half when a's connection goes; a runs its copy again;
#   3. killed at source-before-confirm, and b's QEMU killed too: b says
#      the guest is absent; a runs its copy again, which is all there is;
#   4. killed at source-before-confirm with b's vmigrated stopped (SIGSTOP):
#      a keeps the guest paused (migration-unconfirmed) and asks again;
#      SIGTERM of a's vmigrated ends the recovery job, the record stays;
#      with b back, the next vmigrated on a stops its copy.
# And the destination's vmigrated killed while Finish is under way there:
# the source's Finish gets no answer, so the source asks there (the
# restarted daemon) before it does anything with its paused copy:
#   5. killed at destination-after-finish: b runs the guest; a stops its
#      copy, and the job completes with a warning that Finish's answer
#      was lost;
#   6. killed at destination-before-finish: b discards its half; a runs
#      its copy again; the job failed, naming the phase and b.
# And the source's vmigrated killed while b's Prepare is under way:
#   7. b answers Prepare to nobody, then discards what it prepared: no
#      QEMU, no job left on b; the guest never stopped on a.
#   8. killed once the stream switched to post-copy, before Finish: the
#      guest can run only on b now (a's QEMU stopped it for good, and
#      still serves its pages): b runs it without Finish, its job
#      completes with a warning; a's restarted vmigrated stops its copy
#      once the last page is across.
# Each time: the guest runs on exactly one host, in one QEMU, and every
# page of it verifies there; nothing is left on the other host; the
# record is gone; the recovery job's error names the phase and the host.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-breakpoints.sh"

bp_setup
mig_setup_writing a b
dest_b=$(mig_dest b)
dest_a=$(mig_dest a)

mig_writing_guest rc1
record=$(host_path a runtime)/unconfirmed/$uuid

# A job of a's restarted daemon for the domain that is over: its path.
recovery_job() {
        local j
        for j in $(mig_jobs a); do
                [ "$(mig_jprop a "$j" Kind 2>/dev/null)" = migration-out ] || continue
                [[ $(mig_job_phase a "$j") =~ ^(completed|failed)$ ]] && echo "$j"
        done | tail -n1
}

# kill_at POINT: migrates a -> b, stops at POINT, SIGKILLs a's vmigrated.
kill_at() {
        local pt=$1 pid mpid
        bp_arm a "$pt"
        mig_migrate a "$p" "$dest_b" >"$HOSTS_RUN/migrate.out" 2>&1 &
        mpid=$!
        ok "bp_wait a $pt 60" "$pt: the migration stopped there"
        pid=$(host_daemon_pid a)
        kill -KILL "$pid"
        ok "wait_until 10 eval '! kill -0 $pid 2>/dev/null'" "$pt: vmigrated on a is killed"
        wait "$mpid"
        bp_clear a
}

# settled_on HOST OTHER DESC: the invariant, once a's daemon is back.
settled_on() {
        local h=$1 other=$2 d=$3 v ph po
        ph=$(mig_lookup "$h" rc1)
        po=$(mig_lookup "$other" rc1 2>/dev/null)
        ok "mig_wait_state 60 $h '$ph' 'running/.*'" "$d: the guest runs on $h ($(mig_state "$h" "$ph"))"
        is "$(mig_qemu_pids "$h" "$uuid" | wc -l)" 1 "$d: in one QEMU on $h"
        v=$(mig_guest "$h" "$uuid" verify)
        like "$v" "^VERIFY OK pages=$PAGES " "$d: every page verifies on $h ($v)"
        ok "wait_until 30 eval '[ \$(mig_qemu_pids $other $uuid | wc -l) = 0 ]'" "$d: no QEMU for it on $other"
        local st=none
        [ -n "$po" ] && st=$(mig_state "$other" "$po")
        unlike "$st" '^(running|paused)/' "$d: $other does not say it runs it ($st)"
        is "$(mig_running_jobs a | tr '\n' ' ')$(mig_running_jobs b | tr '\n' ' ')" "" "$d: no job left running"
        ok "! test -e '$record'" "$d: a keeps no record of the unconfirmed migration"
}

# --- 1. killed after b's Finish: b runs it, a stops its copy
d="killed before Confirm"
kill_at source-before-confirm
like "$(mig_state b "$(mig_lookup b rc1)")" '^running/' "$d: b runs the guest (Finish ran there)"
ok "test -s '$record'" "$d: a's runtime keeps where the guest was sent ($(cat "$record" 2>/dev/null))"
# Any call activates a's vmigrated again; it settles the guest.
ok "wait_until 60 eval '[ -n \"\$(recovery_job)\" ]'" "$d: a's restarted vmigrated ran a recovery job"
job=$(recovery_job)
is "$(mig_job_phase a "$job")" completed "$d: ... which completed"
pb=$(mig_lookup b rc1)
settled_on b a "$d"
like "$(mig_state a "$p" 2>/dev/null || echo gone)" '^(shutoff/migrated|gone)' "$d: a's copy was stopped as migrated"
hist=$(mig_mgr a ListJobHistory 'a{sv}' 1 domain s rc1)
like "$hist" '"phase" s "completed"' "$d: a's job history has the recovery"

# Back to a for the next case.
mig_migrate b "$pb" "$dest_a" 1 wait b true >/dev/null
ok "mig_wait_state 60 a '$p' 'running/.*'" "the guest runs on a again"
mig_guest a "$uuid" wait-heartbeat >/dev/null

# --- 2. killed before Finish: b discards, a runs its copy again
d="killed before Finish"
kill_at source-before-finish
ok "! test -e '$record'" "$d: no record: Finish was never sent"
ok "wait_until 60 eval '[ -n \"\$(recovery_job)\" ] && [ \"\$(mig_job_phase a \"\$(recovery_job)\")\" = failed ]'" \
        "$d: a's restarted vmigrated ended a recovery job (failed: the guest did not move)"
job=$(recovery_job)
like "$(mig_jprop a "$job" Error)" '^confirm phase, on host-a \(source\): vmigrated restarted before the destination was told' \
        "$d: its error names the phase, the host and what happened"
settled_on a b "$d"
is "$(mig_state a "$p")" running/migration-failed "$d: a says running/migration-failed"

# --- 3. killed after Finish, and b's QEMU lost: a's copy is all there is
d="killed before Confirm, b's QEMU gone"
kill_at source-before-confirm
pb=$(mig_lookup b rc1)
kill -KILL $(mig_qemu_pids b "$uuid")
ok "wait_until 30 eval '! [[ \$(mig_state b $pb 2>/dev/null) =~ ^(running|paused)/ ]]'" "$d: b's guest is gone"
ok "wait_until 60 eval '[ -n \"\$(recovery_job)\" ] && [ \"\$(mig_job_phase a \"\$(recovery_job)\")\" = failed ]'" \
        "$d: a's restarted vmigrated ended a recovery job"
job=$(recovery_job)
like "$(mig_jprop a "$job" Error)" '^confirm phase, on host-a \(source\): vmigrated restarted before Confirm; .* does not run the guest: it runs here again' \
        "$d: its error says the destination does not run it"
settled_on a b "$d"

# --- 4. killed before Confirm while b cannot answer; a's vmigrated
# stopped meanwhile; the next one asks again
d="killed before Confirm, b not answering"
kill_at source-before-confirm
pb=$(mig_lookup b rc1)
bpid=$(host_daemon_pid b)
kill -STOP "$bpid"
ok "wait_until 60 eval '[ \"\$(mig_state a $p)\" = paused/migration-unconfirmed ]'" \
        "$d: a's restarted vmigrated keeps the guest paused (migration-unconfirmed) while b says nothing"
job=$(mig_job_of a "$p")
is "$(mig_job_phase a "$job")" confirm "$d: ... in a recovery job of phase confirm"
apid=$(host_daemon_pid a)
kill -TERM "$apid"
ok "wait_until 30 eval '! kill -0 $apid 2>/dev/null'" "$d: SIGTERM: a's vmigrated exits"
hist=$(mig_mgr a ListJobHistory 'a{sv}' 1 domain s rc1)
like "$hist" 'confirm phase, on host-a \(source\): vmigrated stopped before it could settle the guest' \
        "$d: the recovery job ended, saying so (a's job history)"
ok "test -s '$record'" "$d: the record stays for the next start"
kill -CONT "$bpid"
ok "wait_until 60 eval '[ \"\$(mig_state a $p 2>/dev/null)\" = shutoff/migrated ]'" \
        "$d: b answers again: the next vmigrated on a stops its copy (shutoff/migrated)"
settled_on b a "$d"

# migrate_killing_b POINT DESC: migrates a -> b (wait), stops at POINT on
# b, SIGKILLs b's vmigrated; the Migrate reply is in $HOSTS_RUN/migrate.out.
migrate_killing_b() {
        local pt=$1 d=$2 pid mpid
        bp_arm b "$pt"
        mig_migrate a "$p" "$dest_b" 1 wait b true >"$HOSTS_RUN/migrate.out" 2>&1 &
        mpid=$!
        ok "bp_wait b $pt 60" "$d: the migration stopped at $pt on b"
        pid=$(host_daemon_pid b)
        kill -KILL "$pid"
        ok "wait_until 10 eval '! kill -0 $pid 2>/dev/null'" "$d: vmigrated on b is killed"
        bp_clear b
        wait "$mpid"
}

# Back to a.
pb=$(mig_lookup b rc1)
mig_migrate b "$pb" "$dest_a" 1 wait b true >/dev/null
ok "mig_wait_state 60 a '$p' 'running/.*'" "the guest runs on a again"
mig_guest a "$uuid" wait-heartbeat >/dev/null

# --- 5. b's vmigrated killed once the guest runs there, before it answers
d="b's vmigrated killed after its Finish"
migrate_killing_b destination-after-finish "$d"
rc=$?
ok "[ $rc = 0 ]" "$d: Migrate answers success ($(head -c 200 "$HOSTS_RUN/migrate.out"))"
job=$(vm_reply_path "$(cat "$HOSTS_RUN/migrate.out")")
is "$(mig_job_phase a "$job")" completed "$d: a's job completed"
like "$(mig_jprop a "$job" Warnings)" 'Finish got no answer .*, but host-b runs the guest' \
        "$d: ... warning that Finish's answer was lost and that b runs the guest"
settled_on b a "$d"
like "$(mig_state a "$p" 2>/dev/null || echo gone)" '^(shutoff/migrated|gone)' "$d: a's copy was stopped as migrated"

pb=$(mig_lookup b rc1)
mig_migrate b "$pb" "$dest_a" 1 wait b true >/dev/null
ok "mig_wait_state 60 a '$p' 'running/.*'" "the guest runs on a again"
mig_guest a "$uuid" wait-heartbeat >/dev/null

# --- 6. b's vmigrated killed before it ran the guest
d="b's vmigrated killed before its Finish"
migrate_killing_b destination-before-finish "$d"
rc=$?
ok "[ $rc != 0 ]" "$d: Migrate answers an error"
like "$(cat "$HOSTS_RUN/migrate.out")" 'finish phase, on host-b \(destination\): finish: .*host-b does not run the guest: it runs here again' \
        "$d: ... naming the phase and b, saying the guest runs on a again"
settled_on a b "$d"
is "$(mig_state a "$p")" running/migration-failed "$d: a says running/migration-failed"

# --- 7. a's vmigrated killed while b prepares
d="a's vmigrated killed during b's Prepare"
mig_guest a "$uuid" wait-heartbeat >/dev/null
bp_arm b destination-after-prepare
mig_migrate a "$p" "$dest_b" >"$HOSTS_RUN/migrate.out" 2>&1 &
mpid=$!
ok "bp_wait b destination-after-prepare 60" "$d: b holds its answer to Prepare"
pid=$(host_daemon_pid a)
kill -KILL "$pid"
ok "wait_until 10 eval '! kill -0 $pid 2>/dev/null'" "$d: vmigrated on a is killed"
wait "$mpid"
bjob=$(mig_dprop b "$(mig_lookup b rc1)" Job 2>/dev/null)
bp_release b destination-after-prepare
bp_clear b
ok "wait_until 30 eval '[ \$(mig_qemu_pids b $uuid | wc -l) = 0 ]'" "$d: b discards the QEMU it prepared"
ok "wait_until 30 eval '[ -z \"\$(mig_running_jobs b)\" ]'" "$d: no job left running on b ($(mig_running_jobs b | tr '\n' ' '))"
ok "[ -n '$bjob' ]" "$d: b had an incoming job while it prepared ($bjob)"
like "$(mig_job_phase b "$bjob")" '^(failed|gone)$' "$d: b's incoming job ended ($(mig_job_phase b "$bjob"))"
settled_on a b "$d"

# --- 8. a's vmigrated killed after the switch to post-copy
d="a's vmigrated killed after the switch to post-copy"
mig_guest a "$uuid" wait-heartbeat >/dev/null
mig_jobs b >"$HOSTS_RUN/jobs-before"
echo /none >>"$HOSTS_RUN/jobs-before"
bp_arm a source-after-postcopy-switch
# 2 MB/s: the first pass lasts seconds, long enough for StartPostCopy.
mig_migrate a "$p" "$dest_b" 2 postcopy b true bandwidth t 2000000 >"$HOSTS_RUN/migrate.out" 2>&1 &
mpid=$!
ok "wait_until 20 eval '[ \"\$(mig_job_of a $p)\" != / ]'" "$d: Migrate made a job on a"
mig_bus a call "$VM_BUS_NAME" "$(mig_job_of a "$p")" "$VM_JOB_IFACE" StartPostCopy >/dev/null 2>&1
ok "bp_wait a source-after-postcopy-switch 60" "$d: the migration stopped after the switch"
pid=$(host_daemon_pid a)
kill -KILL "$pid"
ok "wait_until 10 eval '! kill -0 $pid 2>/dev/null'" "$d: vmigrated on a is killed"
wait "$mpid"
bp_clear a
bjob=$(mig_jobs b | grep -v -x -F -f "$HOSTS_RUN/jobs-before" | tail -n1)
ok "[ -n '$bjob' ]" "$d: b has the incoming job ($bjob)"
ok "mig_wait_phase 120 b '$bjob' 'completed|failed|cancelled'" "$d: b's job ends"
is "$(mig_job_phase b "$bjob")" completed "$d: ... completed ($(mig_jprop b "$bjob" Error))"
like "$(mig_jprop b "$bjob" Warnings)" 'the guest can run only here, so it runs without the source' \
        "$d: ... saying it ran the guest without Finish"
settled_on b a "$d"
like "$(mig_state a "$p" 2>/dev/null || echo gone)" '^(shutoff/migrated|gone)' "$d: a's copy was stopped as migrated"

hosts_finish
