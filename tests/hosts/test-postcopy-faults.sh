#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Post-copy when things go wrong, with the TCG test guest writing faster
# than the 200 Mbit/s link carries:
#   link cut  post-copy slowed to 2 MB/s (postcopy-bandwidth) so that it
#             lasts, then b's cable unplugged: within ~30 s both hosts say
#             postcopy-failed (Lifecycle and StateReason), both jobs fail,
#             nothing is killed; cable back, Migrate with postcopy-resume
#             completes and every page verifies.
#   AbortJob  in post-copy it pauses instead of cancelling: postcopy-failed
#             on both hosts, the job's error says so (and Migrate with
#             wait=true fails with it); resumed, it completes and verifies.
#   lifecycle calls during a migration: on the source (pre-copy and
#             post-copy) and on the destination before post-copy they are
#             refused with InvalidState saying what to do instead; the
#             migration goes on untouched.
#   Destroy on the destination in post-copy: the guest runs there, so it
#             may be destroyed: the call replies, both jobs fail, the
#             source waits paused (postcopy-failed) and its Destroy
#             replies too; nothing is left on either host.
#   NotConverging  no post-copy, no auto-converge: the default policy can
#             only lengthen the pause, which is not enough; the job says it
#             is not converging (property and signal) and goes on until the
#             policy's budget; AbortJob cancels the pre-copy and the guest
#             still verifies on the source.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-postcopy.sh"

pc_setup
pc_guest pcfault

# dom_gdbus HOST METHOD: a Domain method through gdbus, which prints the
# error's name ("GDBus.Error:NAME: message").
dom_gdbus() {
        host_exec "$1" gdbus call --system --timeout 60 --dest "$VM_BUS_NAME" --object-path "$p" \
                --method "$VM_DOMAIN_IFACE.$2" 2>&1
}

# refused_during DESC HOST METHOD REGEX: METHOD on HOST is refused with
# InvalidState and a message matching REGEX.
refused_during() {
        local out
        out=$(dom_gdbus "$2" "$3")
        like "$out" "GDBus.Error:$VM_ERR\\.InvalidState: .*$4" "$1: $3 on $2 is refused ($out)"
}

# failed_both DESC FROM TO SECONDS: postcopy-failed on both hosts within
# SECONDS, both jobs failed, both QEMUs still there; prints the time taken.
failed_both() {
        local desc=$1 from=$2 to=$3 secs=$4 t0 ms jin
        t0=$(mig_now_ms)
        mig_wait_state "$secs" "$from" "$p" 'paused/postcopy-failed'
        ok $? "$desc: $from says paused/postcopy-failed ($(mig_state "$from" "$p"), $(($(mig_now_ms) - t0)) ms)"
        mig_wait_state 15 "$to" "$p" '[a-z]+/postcopy-failed'
        ok $? "$desc: $to says postcopy-failed ($(mig_state "$to" "$p"))"
        ms=$(($(mig_now_ms) - t0))
        ok "mig_wait_phase 15 $from '$job' failed" "$desc: the source job failed"
        fail_err=$(mig_jprop "$from" "$job" Error)
        like "$fail_err" 'post-copy' "$desc: its error tells of post-copy ($fail_err)"
        jin=$(mig_jobs "$to" | tail -n1)
        ok "[ -n '$jin' ] && mig_wait_phase 15 $to '$jin' failed" "$desc: the destination job ($jin) failed"
        diag "$desc: destination job error: $(mig_jprop "$to" "$jin" Error)"
        ok "wait_until 10 eval '[[ \"\$(pc_events_since $from)\" =~ suspended/postcopy-failed\$ ]]'" \
                "$desc: Lifecycle suspended/postcopy-failed on $from's bus ($(pc_events_since "$from"))"
        ok "wait_until 10 eval '[[ \"\$(pc_events_since $to)\" =~ resumed/postcopy-failed\$ ]]'" \
                "$desc: Lifecycle resumed/postcopy-failed on $to's bus ($(pc_events_since "$to"))"
        ok "wait_until 10 eval '[ \"\$(pc_count_since $from JobCompleted)\" = 1 ] && [ \"\$(pc_count_since $to JobCompleted)\" = 1 ]'" \
                "$desc: JobCompleted on both buses"
        is "$(mig_qemu_pids "$from" "$uuid" | wc -l)/$(mig_qemu_pids "$to" "$uuid" | wc -l)" 1/1 \
                "$desc: nothing killed: the guest's QEMU still runs on both hosts"
        failed_ms=$ms
}

# resume DESC FROM TO: Migrate with postcopy-resume; it completes and
# the guest verifies on TO.
resume() {
        local desc=$1 from=$2 to=$3 t0 ev v
        pc_mark
        t0=$(mig_now_ms)
        pc_migrate "$desc: resume" "$from" "$to" 2 postcopy b true postcopy-resume b true || return 1
        pc_wait_end "$from" "$job" 90
        is "$(mig_jprop "$from" "$job" Phase)" completed \
                "$desc: the resumed post-copy completed ($(($(mig_now_ms) - t0)) ms)" ||
                diag "  error: $(mig_jprop "$from" "$job" Error)"
        ev=$(pc_events_since "$from")
        like "$ev" 'stopped/migrated$' "$desc: Lifecycle on $from's bus after the resume ($ev)"
        ev=$(pc_events_since "$to")
        like "$ev" 'resumed/migrated( defined/(added|updated))?$' "$desc: Lifecycle on $to's bus after the resume ($ev)"
        ok "wait_until 10 eval '[ \"\$(pc_count_since $from JobCompleted)\" = 1 ] && [ \"\$(pc_count_since $to JobCompleted)\" = 1 ]'" \
                "$desc: JobCompleted on both buses after the resume"
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $from $uuid)\" ]'" "$desc: no QEMU left for it on $from"
        v=$(mig_guest "$to" "$uuid" verify)
        like "$v" "^VERIFY OK pages=$PC_PAGES " "$desc: every page verifies on $to ($v)"
        like "$(mig_guest "$to" "$uuid" status)" "rate=$PC_RATE " "$desc: the guest still writes on $to"
}

# --- 1. link cut during post-copy, then recovery
pc_mark
pc_migrate "link cut" a b 2 postcopy b true postcopy-bandwidth t 2000000
out=$(mig_dom a "$p" StartPostCopy 2>&1)
ok $? "link cut: StartPostCopy" || diag "$out"
ok "mig_wait_phase 30 a '$job' postcopy" "link cut: the job is in post-copy"
is "$(mig_state a "$p")" paused/postcopy "link cut: a says paused/postcopy"
ok "mig_wait_state 10 b '$p' running/postcopy" "link cut: b says running/postcopy"
ok "wait_until 10 eval '[[ \"\$(pc_events_since b)\" =~ resumed/postcopy ]]'" "link cut: resumed/postcopy on b's bus"
refused_during "in post-copy" a Destroy "runs on .* in post-copy .*stopping it here would lose the guest; stop it on the destination host"
refused_during "in post-copy" a Resume "runs on .* in post-copy .*controlled on the destination host now"
refused_during "in post-copy" b Suspend "runs here in post-copy .*only Destroy is possible"
refused_during "in post-copy" b Shutdown "runs here in post-copy"
link_down b
ok $? "link cut: b's cable unplugged during post-copy ($(mig_jprop a "$job" DataRemaining) bytes still to send)"
failed_both "link cut" a b 45
ok "[ $failed_ms -le 35000 ]" "link cut: noticed within ~30 s ($failed_ms ms)"
link_up b
ok $? "link cut: b's cable plugged back"
resume "link cut" a b

# --- 2. AbortJob during post-copy pauses it; then resume
pc_mark
wait_out=$HOSTS_RUN/abort-wait.out
mig_migrate_gdbus b "$p" "$(mig_dest a)" "{'postcopy': <true>, 'postcopy-bandwidth': <uint64 2000000>, 'wait': <true>}" \
        >"$wait_out" 2>&1 &
wait_pid=$!
ok "wait_until 20 eval '[ \"\$(mig_job_of b $p)\" != / ]'" "AbortJob: Migrate b -> a with wait=true started a job"
job=$(mig_job_of b "$p")
out=$(mig_bus b call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" StartPostCopy 2>&1)
ok $? "AbortJob: Job.StartPostCopy" || diag "$out"
ok "mig_wait_phase 30 b '$job' postcopy" "AbortJob: the job is in post-copy"
# The guest runs on the destination: AbortJob pauses at once (an
# AbortJob in the first instant, remembered until then, is
# hosts-postcopy-holes').
ok "mig_wait_state 10 a '$p' running/postcopy" "AbortJob: a says running/postcopy"
out=$(mig_dom b "$p" AbortJob 2>&1)
ok $? "AbortJob: AbortJob() in post-copy is accepted" || diag "$out"
failed_both "AbortJob" b a 20
like "$fail_err" 'paus' "AbortJob: the job's error says it was paused"
ok "wait_until 20 eval '! kill -0 $wait_pid 2>/dev/null'" "AbortJob: Migrate with wait=true replied"
wout=$(cat "$wait_out")
# Domain.Migrate documents MigrationFailed for a wait=true job that failed;
# PostCopyFailed would be as right. Either, saying it was paused.
like "$wout" "GDBus.Error:$VM_ERR\\.(PostCopyFailed|MigrationFailed): .*post-copy.*paus" \
        "AbortJob: ... with an error saying the post-copy was paused ($wout)"
resume "AbortJob" b a

# --- 3. NotConverging: no post-copy, no auto-converge
pc_mark
pc_migrate "NotConverging" a b 1 auto-converge b false
wait_until 60 eval '[ "$(mig_jprop a $job NotConverging)" = true ]'
ok $? "NotConverging: the job says it is not converging (property true at pass $(mig_jprop a "$job" Iteration))"
ok "wait_until 10 eval 'pc_since a | grep \"\\\"member\\\":\\\"NotConverging\\\"\" | grep -q -F \"\\\"path\\\":\\\"$job\\\"\"'" \
        "NotConverging: the NotConverging signal was seen on a's bus"
diag "NotConverging: $(pc_since a | grep '"member":"NotConverging"' | head -n1 | sed -n -E 's/.*"data":\["([^"]*)".*/\1/p')"
for m in Destroy Suspend Shutdown; do
        refused_during "in pre-copy" a $m "migrating to .* \\(job [0-9]+, phase perform\\): call AbortJob first"
done
refused_during "in pre-copy" b Destroy "arriving from .*cancel the migration on the source host"
refused_during "in pre-copy" b Resume "arriving from "
like "$(mig_state a "$p")" "^running/" "in pre-copy: the guest still runs on a"
is "$(mig_jprop a "$job" Phase)" perform "NotConverging: it is still copying (the policy gives up only at its budget)"
out=$(mig_dom a "$p" AbortJob 2>&1)
ok $? "NotConverging: AbortJob" || diag "$out"
ok "mig_wait_phase 30 a '$job' cancelled" "NotConverging: the job is cancelled"
ok "mig_wait_state 10 a '$p' 'running/.*'" "NotConverging: the guest runs on a ($(mig_state a "$p"))"
v=$(mig_guest a "$uuid" verify)
like "$v" "^VERIFY OK pages=$PC_PAGES " "NotConverging: every page verifies on a ($v)"
ok "wait_until 15 eval '[ -z \"\$(mig_qemu_pids b $uuid)\" ]'" "NotConverging: no QEMU for it on b"
mig_check_clean b "$uuid" "NotConverging"

# --- 4. Destroy on the destination during post-copy: the guest is lost,
# and nothing of it stays on either host.
pc_mark
d="Destroy on b"
pc_migrate "$d" a b 2 postcopy b true postcopy-bandwidth t 2000000
out=$(mig_dom a "$p" StartPostCopy 2>&1)
ok $? "$d: StartPostCopy" || diag "$out"
ok "mig_wait_phase 30 a '$job' postcopy" "$d: the job is in post-copy"
ok "mig_wait_state 10 b '$p' running/postcopy" "$d: b says running/postcopy"
jin=$(mig_jobs b | tail -n1)
t0=$(mig_now_ms)
out=$(dom_gdbus b Destroy)
ok $? "$d: Destroy on b replies ($(($(mig_now_ms) - t0)) ms)" || diag "$out"
ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids b $uuid)\" ]'" "$d: no QEMU for it on b"
ok "wait_until 10 eval '[[ \"\$(pc_events_since b)\" =~ stopped/destroyed ]]'" \
        "$d: Lifecycle stopped/destroyed on b's bus ($(pc_events_since b))"
ok "[ -n '$jin' ] && mig_wait_phase 15 b '$jin' failed" "$d: the destination job ($jin) failed"
like "$(mig_jprop b "$jin" Error)" 'destroyed on the destination during post-copy' "$d: its error says why"
# The part on a can never run without b's: a stops it by itself (it asks
# b, which no longer has the guest), and says why.
ok "mig_wait_phase 30 a '$job' failed" "$d: the source job failed ($(mig_jprop a "$job" Error))"
like "$(mig_jprop a "$job" Error)" 'on host-b \(destination\): its QEMU is gone with its part of the guest, which is lost; the part on the source was stopped' \
        "$d: its error names b and says the guest is lost"
ok "mig_wait_state 10 a '$p' 'shutoff/destroyed'" "$d: a stopped its part: shutoff/destroyed ($(mig_state a "$p"))"
ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids a $uuid)\" ]'" "$d: no QEMU for it on a"
mig_check_clean a "$uuid" "$d"
mig_check_clean b "$uuid" "$d"

hosts_finish
