#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Test builds' stopping points (lib-breakpoints.sh): for every point, on
# the source (a) or the destination (b), a migration of a test-backend
# domain stops there: the point's file appears, both hosts show the state
# that point means (the source job's phase, the destination job's phase
# or its absence, where the guest runs), and that state holds while the
# point is held; released, the migration completes and the guest runs on
# the destination. The domain then goes back to a for the next point.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-breakpoints.sh"

bp_setup
mig_setup a b
dest_b=$(mig_dest b)
dest_a=$(mig_dest a)

# 1 GiB dirtied at 300 MiB/s through 1 GiB/s: a few passes (~1.5 s), long
# enough for StartPostCopy to find the stream running.
p=$(mig_create a "$(mig_test_xml bp1 1024 314572800)")
ok $? "a test-backend domain runs on a"

# check_held DESC HOST POINT SRC-PHASE DST-PHASE STATE-ON-B: while held,
# the source job's phase, the destination job's phase ("none": no
# incoming job yet) and the domain's state on b ("none": not there yet).
# Checked twice, 1 s apart: held means nothing moved on.
check_held() {
        local desc=$1 sp=$2 dp=$3 sb=$4 i jb dphase st
        for i in 1 2; do
                jb=$(mig_jobs b | grep -v -x -F -f "$HOSTS_RUN/jobs-before" | tail -n1)
                dphase=none
                [ -n "$jb" ] && dphase=$(mig_job_phase b "$jb")
                st=none
                mig_lookup b bp1 >/dev/null 2>&1 && st=$(mig_state b "$(mig_lookup b bp1)")
                is "$(mig_job_phase a "$job") $dphase ${st%%/*}" "$sp $dp $sb" \
                        "$desc: held (look $i): source job, destination job, state on b"
                [ "$i" = 1 ] && sleep 1 # a negative: nothing may move while held
        done
}

# cancel_refused DESC REGEX: while held, AbortJob (on the domain) and
# Cancel (on the job) are both refused with InvalidState saying REGEX, and
# the job goes on (the checks after the release see it complete).
cancel_refused() {
        local out
        out=$(host_exec a gdbus call --system --timeout 30 --dest "$VM_BUS_NAME" --object-path "$p" \
                --method "$VM_DOMAIN_IFACE.AbortJob" 2>&1)
        like "$out" "GDBus.Error:$VM_ERR\\.InvalidState: .*$2" "$1: AbortJob is refused ($out)"
        out=$(host_exec a gdbus call --system --timeout 30 --dest "$VM_BUS_NAME" --object-path "$job" \
                --method "$VM_JOB_IFACE.Cancel" 2>&1)
        like "$out" "GDBus.Error:$VM_ERR\\.InvalidState: .*$2" "$1: Job.Cancel is refused ($out)"
}

# run_point HOST POINT POSTCOPY SRC-PHASE DST-PHASE STATE-ON-B [CANCEL-REFUSED-REGEX]
run_point() {
        local h=$1 pt=$2 pc=$3 desc="$2 on $1" t0 out
        local opts=(0)
        [ "$pc" = 1 ] && opts=(1 postcopy b true)
        # The destination's jobs of earlier rounds linger: only a new one counts.
        mig_jobs b >"$HOSTS_RUN/jobs-before"
        echo /none >>"$HOSTS_RUN/jobs-before"
        bp_arm "$h" "$pt"
        mig_migrate a "$p" "$dest_b" "${opts[@]}" >"$HOSTS_RUN/migrate.out" 2>&1 &
        local mpid=$!
        ok "wait_until 20 eval '[ \"\$(mig_job_of a $p)\" != / ]'" "$desc: Migrate made a job on a"
        job=$(mig_job_of a "$p")
        [ "$pc" = 1 ] && mig_bus a call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" StartPostCopy >/dev/null 2>&1
        ok "bp_wait $h $pt 30" "$desc: the migration stopped there"
        diag "$desc: $(cat "$(host_path "$h" dir)/bp/$pt.reached" 2>/dev/null)"
        check_held "$desc" "$4" "$5" "$6"
        [ -n "${7:-}" ] && cancel_refused "$desc" "$7"
        bp_release "$h" "$pt"
        ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "$desc: released, the job ends"
        is "$(mig_jprop a "$job" Phase)" completed "$desc: ... completed ($(mig_jprop a "$job" Error))"
        wait "$mpid"
        out=$(cat "$HOSTS_RUN/migrate.out")
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate answered with the job"
        ok "mig_wait_state 10 b '$(mig_lookup b bp1)' 'running/.*'" "$desc: the guest runs on b"
        ok "! bp_reached $h $pt" "$desc: the point's file is gone"
        # Back to a, unstopped.
        out=$(mig_migrate b "$(mig_lookup b bp1)" "$dest_a" 1 wait b true)
        ok "mig_wait_state 10 a '$p' 'running/.*'" "$desc: back on a ($out)"
}

# Source points. The destination job's phase and the state on b while held:
run_point a source-after-begin 0 begin none none
run_point a source-before-prepare 0 begin none none
run_point a source-after-prepare 0 prepare perform paused
run_point a source-perform-first-pass 0 perform perform paused
run_point a source-perform-mid-stream 0 perform perform paused
run_point a source-before-postcopy-switch 1 perform perform paused
run_point a source-after-postcopy-check 1 perform perform paused
run_point a source-after-postcopy-switch 1 postcopy perform paused
# Copied but not yet told to run there: too late to cancel (a cancel
# would leave the guest nowhere to run, or on both hosts).
run_point a source-before-finish 0 perform perform paused 'too late to cancel, it is about to run on host-b'
run_point a source-after-finish 0 finish completed running 'only a migration that is copying'
run_point a source-before-confirm 0 finish completed running
run_point a source-before-end 0 confirm completed running
# Destination points.
run_point b destination-before-prepare 0 prepare prepare shutoff
run_point b destination-after-prepare 0 prepare perform paused
run_point b destination-before-finish 0 finish finish paused
run_point b destination-after-finish 0 finish finish running

# Post-copy at the destination's points: the guest runs there before
# Finish is answered.
run_point b destination-after-finish 1 postcopy finish running

mig_check_clean a "$(mig_uuid a "$p")" "after every point"
hosts_finish
