#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2154 # set by the libraries
# The destination's vmigrated restarted between its answer to the
# source's question before the switch to post-copy (Incoming.Arrival,
# 'arriving') and the switch, the instant held open with the stopping
# point source-after-postcopy-check (lib-breakpoints.sh). A TCG guest
# writing 16 MiB at 500 pages/s, pre-copy held to 1 MB/s so that it does
# not complete by itself:
#   switched      (an Arrival with postcopy-switch from a connection that
#                 did not make the migration is refused) b's vmigrated
#                 killed and activated again while a holds
#                 the switch: b keeps the arriving guest, paused with
#                 StateReason postcopy-coming (before, the restart
#                 discarded it, and the switch that followed lost the
#                 guest); released, a switches, b runs the guest once its
#                 QEMU has the switch, and a's job completes (its Finish
#                 found b restarted: a warning says b runs the guest);
#                 every page verifies on b, nothing is left on a.
#   not switched  the same restart, but the pre-copy completes while the
#                 switch is held (its limit lifted): b's restart finds the
#                 stream complete, which does not say whether it switched,
#                 and holds the guest; released, a sends Finish without
#                 post-copy: b discards its copy, a runs the guest again,
#                 and its job failed, naming b.
#   SIGTERM       b's vmigrated stopped with SIGTERM while a holds the
#                 switch: it leaves the arrival to the next vmigrated, as a
#                 SIGKILL would (before, it discarded it on its way out,
#                 and the switch lost the guest), its job ending with an
#                 error that says so; released, a switches, its Finish
#                 activates b again, which runs the guest; every page
#                 verifies on b.
#   source gone   a's vmigrated killed while it holds the switch: its
#                 connection to b goes, and b holds the arrival, paused
#                 with StateReason postcopy-coming, as a restart would
#                 (before, it discarded it, which would have lost the
#                 guest had the switch already been sent); a's vmigrated,
#                 activated again, cancels the pre-copy nobody drives, the
#                 stream ends without a switch, and b discards its copy;
#                 the guest runs on a, every page verifies.
#   stalled switch  b's QEMU stopped (SIGSTOP) while a switches: the
#                 switch's device state waits in the sockets, and no data
#                 gets across for 20 s. a waits instead of pausing the
#                 post-copy (before, it paused it, which made b's QEMU,
#                 still loading the device state, quit: the guest was
#                 lost, as a 30% lossy link did in the fault matrix), and
#                 its job's Warnings say why it waits; b's QEMU continued,
#                 the job completes on b, every page verifies.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-breakpoints.sh"

bp_setup
mig_setup_writing --link 200mbit a b

mig_writing_guest pcc
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"

# held DESC: Migrate a -> b with post-copy, pre-copy at 1 MB/s (less than
# the guest dirties), StartPostCopy; returns once a holds the switch
# after b said 'arriving'. Sets $job, $mpid.
held() {
        local desc=$1 out
        bp_arm a source-after-postcopy-check
        mig_migrate a "$p" "$(mig_dest b)" 3 postcopy b true bandwidth t 1000000 \
                postcopy-bandwidth t 20000000 >"$HOSTS_RUN/migrate.out" 2>&1 &
        mpid=$!
        ok "wait_until 20 eval '[ \"\$(mig_job_of a $p)\" != / ]'" "$desc: Migrate made a job on a"
        job=$(mig_job_of a "$p")
        out=$(mig_bus a call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" StartPostCopy 2>&1)
        ok $? "$desc: StartPostCopy ($out)"
        ok "bp_wait a source-after-postcopy-check 60" "$desc: a holds the switch, b having said it holds the guest"
        is "$(mig_job_phase a "$job")" perform "$desc: ... the job is still copying (pre-copy)"
}

# restart_b DESC: b's vmigrated killed; a call to b's bus activates a new
# one, whose first answers say how it found the guest.
# signal_daemon DESC HOST SIGNAL: SIGNAL to HOST's vmigrated, whose pid is
# left in $old; b's log from here on is b_log_since's.
signal_daemon() {
        local desc=$1 h=$2 sig=$3
        mark_b=$(wc -l <"$(host_path b log)")
        old=$(host_daemon_pid "$h")
        ok "[ -n '$old' ] && kill -$sig $old" "$desc: SIG$sig to $h's vmigrated (pid $old)"
}

restart_b() {
        local desc=$1 new
        signal_daemon "$desc" b KILL
        ok "wait_until 10 eval '! host_daemon_pid b >/dev/null'" "$desc: ... its bus name is free"
        mig_lookup b "$uuid" >/dev/null 2>&1
        new=$(host_daemon_pid b)
        ok "[ -n '$new' ] && [ '$new' != '$old' ]" "$desc: a call activates b's vmigrated again (pid $new)"
}

# ran_on_b DESC: the switched migration ended with the guest on b, whole;
# then it goes back to a.
ran_on_b() {
        local desc=$1 v out
        ok "mig_wait_state 20 b '$p' running/.*" "$desc: the guest runs on b ($(mig_state b "$p"))"
        ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids a $uuid)\" ]'" "$desc: no QEMU left for it on a"
        v=$(mig_guest b "$uuid" verify)
        like "$v" "^VERIFY OK pages=$PAGES " "$desc: every page verifies on b ($v)"
        wait "$mpid"
        out=$(mig_migrate b "$p" "$(mig_dest a)" 1 wait b true)
        ok "mig_wait_state 20 a '$p' 'running/.*'" "$desc: the guest back on a ($out)"
        mig_guest a "$uuid" wait-heartbeat >/dev/null
}

# b_log_since: b's vmigrated's log since the last signal_daemon.
b_log_since() {
        tail -n +"$((mark_b + 1))" "$(host_path b log)"
}

# --- 1. the restart, then the switch
d="switched"
held "$d"
# Only the connection that made the migration may say a switch comes.
out=$(mig_bus b call "$VM_BUS_NAME" /org/vmigrate/Migrate1 org.vmigrate.Migrate1.Incoming Arrival 'a{sv}' 3 \
        version u 1 uuid s "$uuid" postcopy-switch b true 2>&1)
like "$out" "belongs to another connection" "$d: Arrival with postcopy-switch from another connection: refused ($out)"
restart_b "$d"
is "$(mig_state b "$p")" paused/postcopy-coming "$d: b keeps the arriving guest, paused, postcopy-coming"
like "$(b_log_since)" 'told it may switch to post-copy: held paused' "$d: ... and its log says why"
is "$(mig_qemu_pids b "$uuid" | wc -l)" 1 "$d: ... its QEMU lives"
bp_release a source-after-postcopy-check
ok "mig_wait_phase 90 a '$job' 'completed|failed|cancelled'" "$d: released, the job ends"
is "$(mig_jprop a "$job" Phase)" completed "$d: ... completed ($(mig_jprop a "$job" Error))"
like "$(mig_jprop a "$job" Warnings)" 'host-b runs the guest' "$d: ... its warning says b runs the guest"
like "$(b_log_since)" 'switched to post-copy .*: the guest can run only here' "$d: b ran it once its QEMU had the switch"
ran_on_b "$d"

# --- 2. the restart after a pre-copy that completed while the switch was held
d="not switched"
held "$d"
out=$(mig_bus a call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" SetMaxBandwidth tb 100000000 false 2>&1)
ok $? "$d: the pre-copy's limit lifted ($out)"
restart_b "$d"
ok "wait_until 30 eval 'b_log_since | grep -q -E \"found arriving \\(completed\\)|its stream completed, which does not say\"'" \
        "$d: b's QEMU has the whole stream, which does not say whether it switched"
is "$(mig_state b "$p")" paused/postcopy-coming "$d: ... b holds the guest: paused, postcopy-coming"
is "$(mig_qemu_pids a "$uuid" | wc -l)/$(mig_qemu_pids b "$uuid" | wc -l)" 1/1 "$d: ... a QEMU on each host"
bp_release a source-after-postcopy-check
ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "$d: released, the job ends"
is "$(mig_jprop a "$job" Phase)" failed "$d: ... failed"
like "$(mig_jprop a "$job" Error)" '^finish phase, on host-b \(destination\): .*no incoming migration' \
        "$d: ... its error names b, which no longer knows the migration ($(mig_jprop a "$job" Error))"
ok "mig_wait_state 20 a '$p' running/.*" "$d: the guest runs on a again ($(mig_state a "$p"))"
like "$(b_log_since)" 'source says the stream never switched to post-copy: discarding the copy' \
        "$d: b discarded its copy on a's word"
ok "wait_until 15 eval '[ -z \"\$(mig_qemu_pids b $uuid)\" ] && ! test -e \"$(mig_rundir b "$uuid")\"'" \
        "$d: no QEMU, no run dir for it on b"
st=none
mig_lookup b "$uuid" >/dev/null 2>&1 && st=$(mig_state b "$p")
like "$st" '^(none|shutoff/failed)$' "$d: b does not say it has it ($st)"
v=$(mig_guest a "$uuid" verify)
like "$v" "^VERIFY OK pages=$PAGES " "$d: every page verifies on a ($v)"
wait "$mpid"

# --- 3. a SIGTERM (a stop) instead of a restart
d="SIGTERM"
held "$d"
signal_daemon "$d" b TERM
ok "wait_until 30 eval '! kill -0 $old 2>/dev/null'" "$d: ... it exits"
like "$(b_log_since)" 'told it may switch to post-copy: keeping the arrival for the next vmigrated' \
        "$d: ... leaving the arrival to the next vmigrated (its log)"
is "$(mig_qemu_pids b "$uuid" | wc -l)" 1 "$d: ... its QEMU lives"
ok "test -e '$(mig_rundir b "$uuid")'" "$d: ... and so does its run dir"
bp_release a source-after-postcopy-check
ok "mig_wait_phase 90 a '$job' 'completed|failed|cancelled'" "$d: released, the job ends"
is "$(mig_jprop a "$job" Phase)" completed "$d: ... completed ($(mig_jprop a "$job" Error))"
ran_on_b "$d"

# --- 4. the source's vmigrated killed while it holds the switch
d="source gone"
held "$d"
signal_daemon "$d" a KILL
bp_clear a # the killed daemon's hold stays marked
ok "mig_wait_state 20 b '$p' paused/postcopy-coming" "$d: b holds the arrival: paused, postcopy-coming ($(mig_state b "$p"))"
like "$(b_log_since)" 'source host disconnected after its source was told it may switch to post-copy: holding' \
        "$d: ... and its log says why"
is "$(mig_qemu_pids a "$uuid" | wc -l)/$(mig_qemu_pids b "$uuid" | wc -l)" 1/1 "$d: ... a QEMU on each host"
wait "$mpid"
mig_lookup a "$uuid" >/dev/null 2>&1
new=$(host_daemon_pid a)
ok "[ -n '$new' ] && [ '$new' != '$old' ]" "$d: a call activates a's vmigrated again (pid $new)"
ok "wait_until 30 eval '[ -z \"\$(mig_qemu_pids b $uuid)\" ]'" \
        "$d: its pre-copy cancelled, the stream ends without a switch: b's QEMU goes"
like "$(b_log_since)" 'stream ended without a switch to post-copy: discarding the copy' "$d: ... b's log says why"
ok "mig_wait_state 20 a '$p' running/.*" "$d: the guest runs on a ($(mig_state a "$p"))"
v=$(mig_guest a "$uuid" verify)
like "$v" "^VERIFY OK pages=$PAGES " "$d: every page verifies on a ($v)"

# --- 5. the switch stalls before the destination runs the guest
d="stalled switch"
held "$d"
mark_a=$(wc -l <"$(host_path a log)")
qb=$(mig_qemu_pids b "$uuid")
ok "[ -n '$qb' ] && kill -STOP $qb" "$d: b's QEMU stopped (SIGSTOP): the switch's device state waits in the sockets"
bp_release a source-after-postcopy-check
ok "wait_until 45 eval 'tail -n +$((mark_a + 1)) \"$(host_path a log)\" | grep -q \"in the switch to post-copy: waiting\"'" \
        "$d: 20 s without progress: a waits, since a pause would make b's QEMU quit"
ok "wait_until 30 eval 'mig_jprop a $job Warnings | grep -q \"host-b has not run the guest 20 s after the switch to post-copy.*Waiting\"'" \
        "$d: ... and a's job says so in its Warnings" || diag "Warnings: $(mig_jprop a "$job" Warnings)"
ok "kill -CONT $qb" "$d: b's QEMU goes on"
ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "$d: the job ends"
is "$(mig_jprop a "$job" Phase)" completed "$d: ... completed ($(mig_jprop a "$job" Error))"
ran_on_b "$d"

mig_check_clean b "$uuid" "after all five"
hosts_finish
