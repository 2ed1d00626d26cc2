#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigrated restarting on either host during a post-copy, with the TCG test
# guest writing faster than the 200 Mbit/s link carries and the post-copy
# slowed down (postcopy-bandwidth) so that it outlasts the restart. Neither
# host has the whole guest during a post-copy: whatever happens to the
# daemons, its QEMUs must never be killed, and a restarted daemon takes the
# migration up again (the marker in the QEMU's runtime dir tells it which
# side it is on):
#   source SIGKILL       the daemon on the source is killed, the next call
#                        activates it again; the stream, still going, is
#                        seen through: the source QEMU quits when the last
#                        page is across (shutoff/migrated), the guest runs
#                        on the destination (running/migrated) in the QEMU
#                        it started in, and every page verifies there.
#   destination SIGKILL  the same with the destination's daemon; the source
#                        job's result is reported.
#   paused, both SIGKILL AbortJob pauses the post-copy, both daemons are
#                        killed and activated again: both say
#                        postcopy-failed, same QEMUs; Migrate with
#                        postcopy-resume completes it and every page verifies.
#   source SIGTERM       a graceful stop does not cancel the post-copy (it
#                        cannot be) nor kill the guest, and exits cleanly;
#                        activated again, the daemon sees it through.
#   resume activates     paused, both daemons SIGKILLed, and Migrate with
#                        postcopy-resume is the call that activates them.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-postcopy.sh"

# The post-copy rate: the guest's 48 MiB at 2 MB/s (plus the pages it
# faults in, which come at once on postcopy-preempt's channel) takes ~10 s.
# The restart cases use 1 MB/s: an ASan daemon activated again on a
# loaded machine took over 10 s to pick the post-copy up.
PCR_BW=${PCR_BW:-2000000}

pc_setup
pc_guest pcrestart

# daemon_exit_status HOST PID: the exit status the activation wrapper
# recorded for that vmigrated (empty while it runs).
daemon_exit_status() {
        cat "$(host_path "$1" dir)/exits/$2" 2>/dev/null
}

# daemon_gone HOST PID: that vmigrated has exited and its bus name is free.
# shellcheck disable=SC2317 # called through wait_until
daemon_gone() {
        [ -n "$(daemon_exit_status "$1" "$2")" ] && ! host_daemon_pid "$1" >/dev/null
}

# stop_daemon DESC HOST SIGNAL SECONDS: signals the host's vmigrated and
# waits up to SECONDS for it to exit; sets $old_pid and $stop_ms. Nothing
# here talks to the host's bus name (a call would activate a new daemon).
stop_daemon() {
        local desc=$1 h=$2 sig=$3 secs=$4 t0
        old_pid=$(host_daemon_pid "$h")
        ok "[ -n '$old_pid' ] && kill -$sig $old_pid" "$desc: SIG$sig to $h's vmigrated (pid $old_pid)"
        t0=$(mig_now_ms)
        ok "wait_until $secs daemon_gone $h $old_pid" "$desc: $h's vmigrated exited"
        stop_ms=$(($(mig_now_ms) - t0))
}

# activate DESC HOST: a call to HOST's bus activates a new vmigrated.
activate() {
        local desc=$1 h=$2 st new
        st=$(mig_dprop "$h" "$p" State)
        new=$(host_daemon_pid "$h")
        ok "[ -n '$st' ] && [ -n '$new' ] && [ '$new' != '$old_pid' ]" \
                "$desc: a call activates $h's vmigrated again (pid $new; its first answer: State $st)"
}

# start_postcopy DESC FROM TO: Migrate with post-copy switched on at once
# and slowed to $PCR_BW; returns once both hosts say the guest is in
# post-copy. Sets $job, $qemu_from, $qemu_to, $t_start.
start_postcopy() {
        local desc=$1 from=$2 to=$3 out
        pc_mark
        t_start=$(mig_now_ms)
        pc_migrate "$desc" "$from" "$to" 2 postcopy b true postcopy-bandwidth t "$PCR_BW" || return 1
        out=$(mig_bus "$from" call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" StartPostCopy 2>&1)
        ok $? "$desc: Job.StartPostCopy" || diag "$out"
        ok "mig_wait_phase 40 $from '$job' postcopy" "$desc: the job on $from is in post-copy"
        ok "mig_wait_state 10 $from '$p' paused/postcopy" "$desc: $from says paused/postcopy"
        ok "mig_wait_state 15 $to '$p' running/postcopy" "$desc: $to says running/postcopy"
        qemu_from=$(mig_qemu_pids "$from" "$uuid")
        qemu_to=$(mig_qemu_pids "$to" "$uuid")
        ok "[ \$(wc -w <<<'$qemu_from') = 1 ] && [ \$(wc -w <<<'$qemu_to') = 1 ]" \
                "$desc: one QEMU for the guest on each host ($from: $qemu_from, $to: $qemu_to)"
        diag "$desc: post-copy began after $(($(mig_now_ms) - t_start)) ms," \
                "$(mig_jprop "$from" "$job" DataRemaining) bytes still to send"
}

# still_split DESC FROM TO [from-paused]: after the restart the post-copy
# has not ended by itself yet and both QEMUs are the ones it began with
# (and with from-paused, FROM still says paused/postcopy). On a loaded
# machine the post-copy may end by itself before or during these checks
# (the pages the guest faults on come at once on postcopy-preempt's
# channel, and only the rest is slowed): when what they saw is off and TO
# then says running/migrated, the post-copy completed, and they are
# reported as skipped, not passed. A restart that killed either QEMU
# during the post-copy would not get there ('completed' then checks the
# same QEMU on TO and every page there).
still_split() {
        local desc=$1 from=$2 to=$3 from_paused=${4:-} pids st fst=paused/postcopy seen why
        pids="$(mig_qemu_pids "$from" "$uuid")/$(mig_qemu_pids "$to" "$uuid")"
        st=$(mig_state "$to" "$p")
        seen="QEMUs $pids, $to $st"
        [ -z "$from_paused" ] || { fst=$(mig_state "$from" "$p"); seen+=", $from $fst"; }
        if { [ "$pids" != "$qemu_from/$qemu_to" ] || [ "$st" != running/postcopy ] || [ "$fst" != paused/postcopy ]; } &&
                mig_wait_state 10 "$to" "$p" running/migrated; then
                why="the post-copy completed by itself during the checks after the restart ($(($(mig_now_ms) - t_start)) ms after Migrate; saw $seen)"
                ok 0 "# SKIP $desc: nothing killed, the same QEMUs on $from and $to: $why"
                ok 0 "# SKIP $desc: the post-copy is still going after the restart: $why"
                [ -z "$from_paused" ] || ok 0 "# SKIP $desc: $from still says paused/postcopy: $why"
                return
        fi
        is "$pids" "$qemu_from/$qemu_to" "$desc: nothing killed: the same QEMUs run on $from and $to"
        like "$st" '^running/postcopy$' "$desc: the post-copy is still going after the restart ($to: $st)"
        [ -z "$from_paused" ] || is "$fst" paused/postcopy "$desc: $from still says paused/postcopy"
}

# completed DESC FROM TO SECONDS: the post-copy completes by itself within
# SECONDS: the source domain shutoff/migrated with no QEMU left, the guest
# running/migrated on TO in the QEMU it started in, every page there.
completed() {
        local desc=$1 from=$2 to=$3 secs=$4 v
        mig_wait_state "$secs" "$from" "$p" shutoff/migrated
        ok $? "$desc: $from says shutoff/migrated ($(mig_state "$from" "$p"), $(($(mig_now_ms) - t_start)) ms after Migrate)"
        ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $from $uuid)\" ]'" "$desc: no QEMU left for the guest on $from"
        ok "mig_wait_state 10 $to '$p' running/migrated" "$desc: $to says running/migrated ($(mig_state "$to" "$p"))"
        is "$(mig_qemu_pids "$to" "$uuid")" "$qemu_to" "$desc: the guest runs on $to in the QEMU it started in ($qemu_to)"
        ok "wait_until 10 eval '! test -e \"$(mig_rundir "$to" "$uuid")/postcopy\"'" \
                "$desc: $to's post-copy marker is gone"
        v=$(mig_guest "$to" "$uuid" verify)
        like "$v" "^VERIFY OK pages=$PC_PAGES " "$desc: every page verifies on $to ($v)"
        like "$(mig_guest "$to" "$uuid" status)" "rate=$PC_RATE " "$desc: the guest still writes on $to"
        is "$(mig_running_jobs "$from" | tr '\n' ' ')$(mig_running_jobs "$to" | tr '\n' ' ')" "" \
                "$desc: no job still running on either host"
}

# --- 1. the source's vmigrated SIGKILLed during the post-copy
d="source SIGKILL"
PCR_BW=1000000 start_postcopy "$d" a b
ok "[ -f '$(mig_rundir a "$uuid")/postcopy' ] && [ \"\$(cat '$(mig_rundir a "$uuid")/postcopy')\" = out ]" \
        "$d: a's runtime dir marks the QEMU as the outgoing side"
stop_daemon "$d" a KILL 10
is "$(daemon_exit_status a "$old_pid")" 137 "$d: killed by SIGKILL"
activate "$d" a
ok "wait_until 10 eval 'pc_log_since a | grep -q \"picked up its outgoing post-copy after a restart (still streaming)\"'" \
        "$d: a's new vmigrated picked the outgoing post-copy up"
still_split "$d" a b from-paused
completed "$d" a b 120
diag "$d: $(($(mig_now_ms) - t_start)) ms from Migrate to the checks' end"

# --- 2. the destination's vmigrated SIGKILLed during the post-copy
d="destination SIGKILL"
PCR_BW=1000000 start_postcopy "$d" b a
ok "[ -f '$(mig_rundir a "$uuid")/postcopy' ] && [ \"\$(cat '$(mig_rundir a "$uuid")/postcopy')\" = in ]" \
        "$d: a's runtime dir marks the QEMU as the incoming side"
stop_daemon "$d" a KILL 10
is "$(daemon_exit_status a "$old_pid")" 137 "$d: killed by SIGKILL"
activate "$d" a
ok "wait_until 10 eval 'pc_log_since a | grep -q \"picked up its incoming post-copy after a restart (still streaming)\"'" \
        "$d: a's new vmigrated picked the incoming post-copy up"
still_split "$d" b a
completed "$d" b a 120
pc_wait_end b "$job" 30
src_result="$(mig_job_phase b "$job") $(mig_jprop b "$job" Error)"
diag "$d: the source job (on b) ended as: $src_result"
like "$src_result" '^(completed|failed)' "$d: the source job ended ($src_result)"

# --- 3. post-copy paused by AbortJob, both daemons SIGKILLed, then resumed
d="paused, both SIGKILL"
start_postcopy "$d" a b
out=$(mig_dom a "$p" AbortJob 2>&1)
ok $? "$d: AbortJob during the post-copy" || diag "$out"
ok "mig_wait_state 30 a '$p' paused/postcopy-failed" "$d: a says paused/postcopy-failed ($(mig_state a "$p"))"
ok "mig_wait_state 30 b '$p' '[a-z]+/postcopy-failed'" "$d: b says postcopy-failed ($(mig_state b "$p"))"
ok "mig_wait_phase 15 a '$job' failed" "$d: the source job failed"
stop_daemon "$d" a KILL 10
pid_a_old=$old_pid
stop_daemon "$d" b KILL 10
pid_b_old=$old_pid
is "$(daemon_exit_status a "$pid_a_old")/$(daemon_exit_status b "$pid_b_old")" 137/137 "$d: both killed by SIGKILL"
old_pid=$pid_a_old
activate "$d" a
old_pid=$pid_b_old
activate "$d" b
ok "mig_wait_state 10 a '$p' paused/postcopy-failed" "$d: after the restart a says paused/postcopy-failed ($(mig_state a "$p"))"
ok "mig_wait_state 10 b '$p' '(running|paused)/postcopy-failed'" \
        "$d: after the restart b says postcopy-failed ($(mig_state b "$p"))"
is "$(mig_qemu_pids a "$uuid")/$(mig_qemu_pids b "$uuid")" "$qemu_from/$qemu_to" \
        "$d: nothing killed: the same QEMUs run on a and b"
ok "wait_until 10 eval 'pc_log_since a | grep -q \"picked up its outgoing post-copy after a restart (paused\"'" \
        "$d: a's new vmigrated picked the paused outgoing post-copy up"
ok "wait_until 10 eval 'pc_log_since b | grep -q \"picked up its incoming post-copy after a restart (paused\"'" \
        "$d: b's new vmigrated picked the paused incoming post-copy up"
pc_mark
t0=$(mig_now_ms)
pc_migrate "$d: resume" a b 2 postcopy b true postcopy-resume b true
pc_wait_end a "$job" 90
is "$(mig_jprop a "$job" Phase)" completed "$d: the resumed post-copy completed ($(($(mig_now_ms) - t0)) ms)" ||
        diag "  error: $(mig_jprop a "$job" Error)"
completed "$d" a b 30
ok "wait_until 10 eval '[[ \"\$(pc_events_since a)\" =~ stopped/migrated\$ ]]'" \
        "$d: Lifecycle stopped/migrated on a's bus after the resume ($(pc_events_since a))"
ok "wait_until 10 eval '[[ \"\$(pc_events_since b)\" =~ resumed/migrated ]]'" \
        "$d: Lifecycle resumed/migrated on b's bus after the resume ($(pc_events_since b))"

# --- 4. SIGTERM to the source's vmigrated during the post-copy
d="source SIGTERM"
# With postcopy-preempt (on by default where both QEMUs have it) the pages
# the guest faults on come at once on their own channel and only the rest
# is slowed: slow it more here, for the post-copy to outlast the daemon's
# 10 s exit deadline and the restart path to be exercised.
PCR_BW=1000000 start_postcopy "$d" b a
stop_daemon "$d" b TERM 30
is "$(daemon_exit_status b "$old_pid")" 0 "$d: b's vmigrated exited cleanly ($stop_ms ms after SIGTERM)"
unlike "$(pc_log_since b)" "cancelling: vmigrated is stopping" "$d: it did not try to cancel the post-copy"
if [ -n "$(mig_qemu_pids b "$uuid")" ]; then
        # The daemon gave up waiting before the last page was across.
        diag "$d: the post-copy outlasted the stopping daemon"
        still_split "$d" b a
        activate "$d" b
        ok "wait_until 10 eval 'pc_log_since b | grep -q \"picked up its outgoing post-copy after a restart (still streaming)\"'" \
                "$d: b's new vmigrated picked the outgoing post-copy up"
else
        # It saw the post-copy through before exiting (allowed, but the
        # restart path was not exercised: say so).
        diag "$d: the post-copy completed before the daemon exited"
        activate "$d" b
fi
completed "$d" b a 120

# --- 5. paused, both SIGKILLed, and the resume is the call that activates
# them (what `vmigratectl migrate --postcopy-resume` does after a reboot of
# the daemons): it must not race the re-attach.
d="resume activates"
start_postcopy "$d" a b
out=$(mig_dom a "$p" AbortJob 2>&1)
ok $? "$d: AbortJob during the post-copy" || diag "$out"
ok "mig_wait_state 30 a '$p' paused/postcopy-failed && mig_wait_state 30 b '$p' '[a-z]+/postcopy-failed'" \
        "$d: both hosts say postcopy-failed"
ok "mig_wait_phase 15 a '$job' failed" "$d: the source job failed"
stop_daemon "$d" a KILL 10
stop_daemon "$d" b KILL 10
pc_mark
t0=$(mig_now_ms)
out=$(mig_migrate a "$p" "$(mig_dest b)" 2 postcopy b true postcopy-resume b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' \
        "$d: Migrate with postcopy-resume as the first call after the restart answers with a job ($out)"
if [[ $out =~ ^o ]]; then
        job=$(vm_reply_path "$out")
        pc_wait_end a "$job" 90
        is "$(mig_jprop a "$job" Phase)" completed "$d: the resumed post-copy completed ($(($(mig_now_ms) - t0)) ms)" ||
                diag "  error: $(mig_jprop a "$job" Error)"
else
        # Refused while the daemons were still re-attaching: the same
        # call a moment later must work, or the guest is stuck.
        diag "$d: states once re-attached: a $(mig_state a "$p"), b $(mig_state b "$p")"
        ok "mig_wait_state 10 a '$p' paused/postcopy-failed" "$d: a says paused/postcopy-failed once re-attached"
        pc_migrate "$d: resume again" a b 2 postcopy b true postcopy-resume b true
        pc_wait_end a "$job" 90
        is "$(mig_jprop a "$job" Phase)" completed "$d: the second resume completed ($(($(mig_now_ms) - t0)) ms)"
fi
completed "$d" a b 30

hosts_finish
