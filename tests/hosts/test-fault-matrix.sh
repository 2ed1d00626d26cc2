#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2154 # set by the libraries
# shellcheck disable=SC2046 # lists of pids, one word each
# The fault matrix: a migration a -> b of a TCG test guest that writes its
# memory is stopped at a point (lib-breakpoints.sh) on the source or the
# destination, a fault is injected, the point released; then the same
# checks for every cell, whatever the fault:
#   - the guest runs on exactly one host, in exactly one QEMU, and that
#     host says running; or, in post-copy, it is paused on both hosts with
#     postcopy-failed, and Migrate with postcopy-resume then completes it
#     on b; or the fault killed the only QEMU that had the guest (the
#     source's before the destination runs it, the destination's after,
#     either after the switch to post-copy), and no host runs it;
#   - nothing is left anywhere else: no QEMU, run dir, migration port,
#     record of an unconfirmed migration, no domain said to be running or
#     paused where the guest is not, no job still running on either host;
#   - every page of the guest verifies where it runs;
#   - the source's job ended (in ListJobHistory on a, which outlives its
#     daemon: the job itself or the restarted daemon's recovery job) with
#     a result, and one that is not "completed" has an error naming the
#     phase and the host: "PHASE phase, on host-X (source|destination): ".
# A table of the cells (outcome, time from the release to settled) ends
# the output.
#
# Faults: SIGKILL of either QEMU, SIGKILL or SIGTERM of either vmigrated,
# b's cable unplugged (until the source job has ended, then plugged back),
# 30% loss both ways on b's link (until both jobs ended, at most 30 s),
# b's state dir on a small full tmpfs, b's polkitd killed (both put back
# once the cell settled).
# Points: every stopping point of a pre-copy, and post-copy cells ("pc:"
# POINT: Migrate with postcopy, StartPostCopy at once, post-copy slowed to
# 4 MB/s so that it lasts a few seconds) at the switch and after it.
# Cells that mean nothing are left out (b's QEMU killed before it exists).
#
# FAULT_MATRIX=ci (the default: 20 cells that hold, ~4 min), full (all
# 196 cells, ~55 min); FAULT_MATRIX_REPEAT=N runs each cell N times
# (nightly: full, 3); FAULT_MATRIX_CELLS="FAULT/POINT ..." runs those.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-breakpoints.sh"

FAULTS_ALL="kill-src-qemu kill-dst-qemu kill-src-daemon kill-dst-daemon term-src-daemon term-dst-daemon
            link-down loss30 state-full polkitd-gone"
POINTS_PRE="source-after-begin source-before-prepare destination-before-prepare destination-after-prepare
            source-after-prepare source-perform-first-pass source-perform-mid-stream source-before-finish
            destination-before-finish destination-after-finish source-after-finish source-before-confirm
            source-before-end"
POINTS_PC="pc:source-before-postcopy-switch pc:source-after-postcopy-check pc:source-after-postcopy-switch
           pc:source-before-finish
           pc:destination-before-finish pc:destination-after-finish pc:source-before-confirm"

# meaningful FAULT POINT: whether the cell tests anything.
meaningful() {
        case $1/$2 in
        # b's QEMU starts in Prepare.
        kill-dst-qemu/source-after-begin | kill-dst-qemu/source-before-prepare) return 1 ;;
        kill-dst-qemu/destination-before-prepare) return 1 ;;
        # a's QEMU is gone once Confirm is done.
        kill-src-qemu/source-before-end) return 1 ;;
        esac
        return 0
}

if [ -n "${FAULT_MATRIX_CELLS:-}" ]; then
        CELLS=$FAULT_MATRIX_CELLS
else
        case ${FAULT_MATRIX:-ci} in
        ci)
                # One or more cells of every fault, pre-copy and post-copy,
                # among those that hold (FAULT_MATRIX=full runs them all;
                # the README's "The fault matrix" has its grid), with one
                # cell of each repair the matrix led to: a post-copy whose
                # source QEMU dies (the destination stops its part), SIGTERM
                # after the copy is complete (the migration completes), the
                # destination's vmigrated killed just before the switch to
                # post-copy (the source asks it first, and keeps the guest),
                # or in Finish after it (the post-copy completes, and so
                # does the job).
                CELLS="kill-src-qemu/source-perform-first-pass kill-src-qemu/source-before-confirm
                       kill-dst-daemon/pc:source-before-postcopy-switch kill-dst-daemon/pc:destination-before-finish
                       kill-dst-qemu/source-perform-mid-stream kill-dst-qemu/destination-before-finish
                       kill-dst-qemu/pc:source-before-postcopy-switch
                       kill-src-daemon/source-before-finish kill-src-daemon/source-before-confirm
                       kill-dst-daemon/source-perform-first-pass
                       term-src-daemon/source-perform-first-pass term-dst-daemon/destination-before-finish
                       term-dst-daemon/pc:destination-after-finish
                       loss30/source-perform-first-pass state-full/destination-before-finish
                       polkitd-gone/destination-before-prepare link-down/pc:source-before-confirm
                       kill-src-qemu/pc:destination-after-finish kill-dst-qemu/pc:source-before-finish
                       term-src-daemon/source-before-finish"
                ;;
        full)
                CELLS=""
                for f in $FAULTS_ALL; do
                        for pt in $POINTS_PRE $POINTS_PC; do
                                meaningful "$f" "$pt" && CELLS+=" $f/$pt"
                        done
                done
                ;;
        *) bail_out "FAULT_MATRIX=${FAULT_MATRIX}: ci or full" ;;
        esac
fi
REPEAT=${FAULT_MATRIX_REPEAT:-1}
# A guest that answers at all answers a verify of its 16 MiB in < 1 s; one
# left waiting for pages that will never come must not cost a minute.
MIG_GUEST_TIMEOUT=${MIG_GUEST_TIMEOUT:-20}

bp_setup
LINK=200mbit
mig_setup_writing --link $LINK a b
dest_b=$(mig_dest b)
dest_a=$(mig_dest a)

mig_writing_guest fm1

point_host() { case $1 in source-*) echo a ;; *) echo b ;; esac; }

# inject FAULT: the fault itself.
inject() {
        case $1 in
        kill-src-qemu) kill -KILL $(mig_qemu_pids a "$uuid") ;;
        kill-dst-qemu) kill -KILL $(mig_qemu_pids b "$uuid") ;;
        kill-src-daemon) kill -KILL "$(host_daemon_pid a)" ;;
        kill-dst-daemon) kill -KILL "$(host_daemon_pid b)" ;;
        term-src-daemon) kill -TERM "$(host_daemon_pid a)" ;;
        term-dst-daemon) kill -TERM "$(host_daemon_pid b)" ;;
        link-down) link_down b ;;
        loss30) link_shape b --rate $LINK --loss 30% ;;
        state-full) host_state_fill b ;;
        polkitd-gone) host_polkitd_stop b ;;
        esac
}

# undo FAULT: what a fault leaves behind goes (after the cell settled;
# link-down and loss30 are undone earlier, see cell).
undo() {
        case $1 in
        link-down) ip -n "$(hosts_switch_netns)" link show "$(host_switch_port b)" | grep -q 'state UP' || link_up b ;;
        loss30) link_shape b --rate $LINK ;;
        state-full) host_state_restore b ;;
        polkitd-gone) host_polkitd_start b ;;
        esac
}

# may_lose FAULT POINT: whether the fault kills the only copy of the
# guest: the source's QEMU before the destination runs the guest, the
# destination's once it does; either after the switch to post-copy (each
# holds part of the guest).
may_lose() {
        local f=$1 pt=$2
        case $f/$pt in
        kill-src-qemu/pc:*) return 0 ;;
        kill-src-qemu/source-after-begin | kill-src-qemu/source-before-prepare) return 0 ;;
        kill-src-qemu/destination-before-prepare | kill-src-qemu/destination-after-prepare) return 0 ;;
        kill-src-qemu/source-after-prepare | kill-src-qemu/source-perform-*) return 0 ;;
        kill-dst-qemu/pc:source-before-postcopy-switch) return 1 ;;
        kill-dst-qemu/pc:*) return 0 ;;
        kill-dst-qemu/destination-after-finish | kill-dst-qemu/source-after-finish) return 0 ;;
        kill-dst-qemu/source-before-confirm | kill-dst-qemu/source-before-end) return 0 ;;
        esac
        return 1
}

# state_of HOST: the guest's State/StateReason there, "none" if undefined.
state_of() {
        mig_lookup "$1" "$uuid" >/dev/null 2>&1 || { echo none; return; }
        mig_state "$1" "$p" 2>/dev/null || echo none
}

# running_where: the hosts whose vmigrated says the guest runs there.
running_where() {
        local h out=
        for h in a b; do
                [[ $(state_of "$h") =~ ^running/ ]] && out+="$h"
        done
        echo "${out:--}"
}

# settled: no job runs on either host, and no host says post-copy (after
# a restart of vmigrated a post-copy goes on without a job).
settled() {
        [ -z "$(mig_running_jobs a)" ] && [ -z "$(mig_running_jobs b)" ] &&
                ! [[ $(state_of a) =~ /postcopy$ ]] && ! [[ $(state_of b) =~ /postcopy$ ]]
}

# source_ended JOB: the source's job is over, or went with its daemon.
source_ended() {
        ! [[ $(mig_job_phase a "$1") =~ ^(begin|prepare|perform|postcopy|finish|confirm)$ ]]
}

# last_source_job SINCE-USEC: "PHASE|ERROR" of the newest migration of the
# guest leaving a that ended since then (a's ListJobHistory), or nothing.
last_source_job() {
        mig_bus a --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListJobHistory 'a{sv}' \
                3 domain s "$uuid" kind s migration-out since t "$1" 2>/dev/null | $MIG_PY -c '
import json, sys
jobs = json.load(sys.stdin)["data"][0]
if jobs:
    j = jobs[-1]
    err = j.get("error", {}).get("data", "").replace("\n", " ")
    print("%s|%s" % (j["phase"]["data"], err))'
}

# logs_since MARK-A MARK-B: the daemons' errors and warnings since then.
logs_since() {
        local h m
        for h in a b; do
                m=$1
                [ "$h" = b ] && m=$2
                tail -n +"$((m + 1))" "$(host_path "$h" log)" | grep -E -i '(error|warning|fail|crit|waiting)' |
                        grep -v 'test breakpoint' | tail -n 12 | sed "s/^/  $h: /"
        done
}

# scrub DESC: ends what a failed cell left running (jobs, a post-copy
# that cannot end), so that the next cell starts clean; after the checks,
# as a user would: AbortJob, then Destroy, then the QEMU and vmigrated.
scrub() {
        local d=$1 h
        settled && return 0
        diag "$d: left running (a: $(state_of a) $(mig_running_jobs a), b: $(state_of b) $(mig_running_jobs b)): cleaning up"
        for h in a b; do
                mig_dom "$h" "$p" AbortJob >/dev/null 2>&1
        done
        wait_until 15 settled && return 0
        mig_dom b "$p" Destroy >/dev/null 2>&1
        wait_until 15 settled && return 0
        for h in b a; do
                [ -n "$(mig_running_jobs "$h")" ] || [[ $(state_of "$h") =~ /postcopy$ ]] || continue
                kill -KILL $(mig_qemu_pids "$h" "$uuid") 2>/dev/null
                kill -TERM "$(host_daemon_pid "$h")" 2>/dev/null
        done
        wait_until 30 settled
}

# back_to_a: the guest running on a again, whatever the cell left.
back_to_a() {
        local d=$1 sa sb
        scrub "$d"
        sa=$(state_of a) sb=$(state_of b)
        if [[ $sb =~ ^running/ ]] && ! [[ $sa =~ ^running/ ]]; then
                mig_migrate b "$p" "$dest_a" 1 wait b true >/dev/null
        elif [[ $sb =~ ^(running|paused)/ ]]; then
                mig_dom b "$p" Destroy >/dev/null 2>&1 # keep a's
        fi
        sa=$(state_of a)
        case $sa in
        running/*) ;;
        paused/*) mig_dom a "$p" Resume >/dev/null 2>&1 || mig_dom a "$p" Destroy >/dev/null 2>&1 ;;
        esac
        [[ $(state_of a) =~ ^running/ ]] || mig_dom a "$p" Start >/dev/null 2>&1
        if ! mig_wait_state 30 a "$p" 'running/.*'; then
                # The cell left a mess (reported above): start afresh.
                diag "$d: a says $(state_of a), b $(state_of b): destroying both, starting on a"
                mig_dom b "$p" Destroy >/dev/null 2>&1
                mig_dom a "$p" Destroy >/dev/null 2>&1
                kill -KILL $(mig_qemu_pids a "$uuid") $(mig_qemu_pids b "$uuid") 2>/dev/null
                mig_wait_state 20 a "$p" 'shutoff/.*'
                mig_dom a "$p" Start >/dev/null 2>&1
        fi
        ok "mig_wait_state 30 a '$p' 'running/.*'" "$d: the guest runs on a again for the next cell" ||
                bail_out "cannot bring the guest back to a: $(state_of a) / $(state_of b)"
        if [ -n "$(mig_qemu_pids b "$uuid")" ]; then
                diag "$d: a QEMU for the guest still on b: killed"
                kill -KILL $(mig_qemu_pids b "$uuid") 2>/dev/null
        fi
        mig_guest a "$uuid" wait-heartbeat >/dev/null
}

TABLE=()
NFAIL=0
# cell FAULT POINT ROUND
cell() {
        local f=$1 pt=$2 n=$3 bpt=${2#pc:} pc=0 h d t0 since where qa qb result=ok settle_ms v job out
        local sa sb other jphase jerr marka markb resumed=
        [[ $pt == pc:* ]] && pc=1
        h=$(point_host "$bpt")
        d="$f at $pt${n:+ #$n}"
        since=$(($(date +%s%N) / 1000))
        marka=$(wc -l <"$(host_path a log)") markb=$(wc -l <"$(host_path b log)")
        bp_arm "$h" "$bpt"
        local opts=(0)
        # Post-copy cells: pre-copy capped at 4 MB/s (~7 s for the guest),
        # so that a cell held before the switch still has a stream to
        # switch when it is released, instead of a pre-copy that completed
        # meanwhile; StartPostCopy comes at once, the other points see the
        # switch at the start of the stream.
        [ "$pc" = 1 ] && opts=(3 postcopy b true postcopy-bandwidth t 4000000 bandwidth t 4000000)
        mig_migrate a "$p" "$dest_b" "${opts[@]}" >"$HOSTS_RUN/migrate.out" 2>&1 &
        local mpid=$!
        if [ "$pc" = 1 ]; then
                wait_until 20 eval '[ "$(mig_job_of a "$p")" != / ]'
                out=$(mig_bus a call "$VM_BUS_NAME" "$(mig_job_of a "$p")" "$VM_JOB_IFACE" StartPostCopy 2>&1)
                ok $? "$d: StartPostCopy ($out)"
        fi
        if ! ok "bp_wait $h $bpt 60" "$d: the migration stopped at $bpt"; then
                bp_clear a
                bp_clear b
                mig_dom a "$p" AbortJob >/dev/null 2>&1
                wait_until 60 settled
                wait "$mpid"
                TABLE+=("$f|$pt|FAIL: not reached|-|-|-|")
                diag "cell: ${TABLE[-1]}"
                NFAIL=$((NFAIL + 1))
                back_to_a "$d"
                return
        fi
        job=$(mig_job_of a "$p")
        inject "$f"
        ok $? "$d: $f"
        bp_release "$h" "$bpt"
        t0=$(mig_now_ms)
        case $f in
        link-down)
                # Both sides notice within the stall timeout (20 s) or the
                # Finish deadline; then the cable goes back.
                wait_until 60 source_ended "$job"
                undo "$f"
                ;;
        loss30)
                wait_until 30 settled
                undo "$f"
                ;;
        esac
        # A post-copy that broke: both hosts keep their part, paused (if
        # b's QEMU is gone, so is the guest: the checks below).
        # At most 60 s from here: a link cut is noticed within ~30 s. After
        # 30 s of loss, a switch to post-copy may take up to 2 minutes more:
        # TCP's retransmission timer doubles with each loss (up to 120 s),
        # and the source waits for the destination to run the guest, since
        # stopping the migration before would lose it (its job says so).
        local settle_s=60
        [ "$f/$pc" = loss30/1 ] && settle_s=150
        if wait_until "$settle_s" eval 'settled || [[ $(state_of a) == paused/postcopy-failed ]]' &&
                [[ $(state_of a) == paused/postcopy-failed ]] &&
                mig_wait_state 30 b "$p" '[a-z]+/postcopy-failed'; then
                ok true "$d: post-copy failed: paused on a, b says postcopy-failed too ($(state_of b))"
                ok "wait_until 30 settled" "$d: ... both jobs ended" || result=FAIL
                # Cables back first: resuming is what a user does once the cause is gone.
                undo "$f"
                jerr=$(last_source_job "$since")
                out=$(mig_migrate a "$p" "$dest_b" 3 postcopy b true postcopy-resume b true wait b true)
                ok $? "$d: ... Migrate with postcopy-resume completes ($out)" || result=FAIL
                resumed=" (resumed)"
                wait_until 60 settled
        fi
        if ! ok settled "$d: no job left running, no post-copy going on, on either host (a: $(state_of a), b: $(state_of b))"; then
                result=FAIL
                # What the migration's TCP connections were going through.
                diag "$d: a's TCP connections to b: $(host_exec a ss -tin dst "$(host_ip b)" 2>&1 | tr -s ' \n' ' ')"
        fi
        settle_ms=$(($(mig_now_ms) - t0))
        wait "$mpid"
        bp_clear a
        bp_clear b
        undo "$f"

        where=$(running_where)
        sa=$(state_of a) sb=$(state_of b)
        qa=$(mig_qemu_pids a "$uuid" | wc -l)
        qb=$(mig_qemu_pids b "$uuid" | wc -l)
        if [ -n "$resumed" ]; then
                is "$where" b "$d: resumed, the guest runs on b (a: $sa, b: $sb)" || result=FAIL
        fi
        if may_lose "$f" "$pt" && [ "$where" = - ] && [ -z "$resumed" ]; then
                is "$qa/$qb" 0/0 "$d: the fault killed the only copy: no QEMU left anywhere (a: $sa, b: $sb)" ||
                        result=FAIL
                [ "$result" = ok ] && result=lost-by-fault
        else
                like "$where" '^[ab]$' "$d: the guest runs on exactly one host ($where; a: $sa, b: $sb)" || result=FAIL
                is "$((qa + qb))" 1 "$d: in exactly one QEMU ($qa on a, $qb on b)" || result=FAIL
        fi
        for other in a b; do
                [ "$other" = "$where" ] && continue
                ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $other $uuid)\" ] && ! test -e \"$(mig_rundir "$other" "$uuid")\"'" \
                        "$d: no QEMU, no run dir for it on $other" || result=FAIL
                like "$(state_of "$other")" '^(none|shutoff/.*|crashed/.*)$' \
                        "$d: $other does not say it runs it or has it half ($(state_of "$other"))" ||
                        result=FAIL
        done
        for other in a b; do
                is "$(mig_listening_ports "$other" | tr '\n' ' ')" "" "$d: no migration port listening on $other" || result=FAIL
                is "$(ls "$(host_path "$other" runtime)/unconfirmed" 2>/dev/null | tr '\n' ' ')" "" \
                        "$d: no record of an unconfirmed migration on $other" || result=FAIL
        done
        if [[ $where =~ ^[ab]$ ]]; then
                v=$(mig_guest "$where" "$uuid" verify)
                like "$v" "^VERIFY OK pages=$PAGES " "$d: every page verifies on $where ($v)" || result=FAIL
        fi
        # The job: when resumed, the first one (before the resume).
        [ -n "$resumed" ] || jerr=$(last_source_job "$since")
        jphase=${jerr%%|*}
        jerr=${jerr#*|}
        like "$jphase" '^(completed|failed|cancelled)$' "$d: the source job ended, in a's history (${jphase:-none})" ||
                result=FAIL
        # The destination's vmigrated gone while Finish waited: the QEMUs
        # went on between themselves, and a post-copy that completed is a
        # migration that completed (the job only warns about Finish).
        if [[ $f/$pt =~ ^(kill|term)-dst-daemon/pc:destination-(before|after)-finish$ ]] &&
                [ "$where" = b ] && [ -z "$resumed" ]; then
                is "$jphase" completed "$d: ... completed, as the post-copy did (${jerr:-no error})" || result=FAIL
        fi
        if [[ $jphase =~ ^(failed|cancelled)$ ]]; then
                like "$jerr" '^(begin|prepare|perform|postcopy|finish|confirm) phase, on host-[ab] \((source|destination)\): .' \
                        "$d: ... with an error naming the phase and the host ($jerr)" || result=FAIL
        fi
        if [ "$result" = FAIL ]; then
                NFAIL=$((NFAIL + 1))
                diag "$d: the daemons' complaints during the cell:"
                diag "$(logs_since "$marka" "$markb")"
        fi
        TABLE+=("$f|$pt|$result$resumed|$settle_ms|$where|${jphase:-none}|${jerr:0:100}")
        diag "cell: ${TABLE[-1]}" # the row now: an interrupted run keeps it
        back_to_a "$d"
}

for c in $CELLS; do
        for ((r = 1; r <= REPEAT; r++)); do
                [ "$REPEAT" -gt 1 ] && n=$r || n=
                cell "${c%%/*}" "${c#*/}" "$n"
        done
done

echo "# fault | point | outcome | settled (ms) | runs on | source job | its error"
for row in "${TABLE[@]}"; do
        echo "#   $row" | sed 's/|/ | /g'
done
echo "# ${#TABLE[@]} cells, $NFAIL failed; as a grid (the README's):"
printf '%s\n' "${TABLE[@]}" | $MIG_PY "$(dirname "$0")/fault-matrix-grid.py" | sed 's/^/# /'
hosts_finish
