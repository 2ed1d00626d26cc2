#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2154 # set by the libraries
# The fault matrix (pre-copy so far): a migration a -> b of a TCG test
# guest that writes its memory is stopped at a point (lib-breakpoints.sh),
# a fault is injected, the point released; then the same checks for
# every cell, whatever the fault:
#   - the guest runs on exactly one host, in exactly one QEMU, and that
#     host says running; or the fault killed the only QEMU that had it
#     (the source's before the switch-over, the destination's after it
#     ran there), and no host runs it;
#   - nothing is left on the other host (QEMU, run dir, port, job);
#   - every page of the guest verifies where it runs;
#   - the source's job ended (or went with its daemon), with an error
#     when it did not complete.
# A table of the cells ends the output.
#
# FAULT_MATRIX=ci (the default: the cells CI runs, ~1.5 min), full (every
# cell); FAULT_MATRIX_REPEAT=N runs each cell N times (nightly: full, 3).
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-breakpoints.sh"

FAULTS_ALL="kill-src-qemu kill-dst-qemu kill-src-daemon kill-dst-daemon term-src-daemon term-dst-daemon link-down"
POINTS_ALL="source-perform-first-pass destination-before-finish source-before-confirm"
case ${FAULT_MATRIX:-ci} in
ci)
        # Cells that hold today. Not yet: vmigrated killed on the source
        # once the destination has Finish (the restarted source runs its
        # paused copy again while the destination runs the guest: both
        # run it, README Status); the daemon and link cells after it were
        # not yet seen on a clean start (FAULT_MATRIX=full shows them).
        CELLS="kill-src-qemu/source-perform-first-pass kill-dst-qemu/source-perform-first-pass
               kill-dst-qemu/destination-before-finish kill-src-daemon/source-perform-first-pass
               kill-src-qemu/source-before-confirm"
        ;;
full)
        CELLS=""
        for f in $FAULTS_ALL; do for pt in $POINTS_ALL; do CELLS+=" $f/$pt"; done; done
        ;;
*) bail_out "FAULT_MATRIX=${FAULT_MATRIX}: ci or full" ;;
esac
REPEAT=${FAULT_MATRIX_REPEAT:-1}

bp_setup
mig_setup --qemu a b
guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"
mig_require_tcg_precopy
link_shape a --rate 200mbit && link_shape b --rate 200mbit || bail_out "cannot shape the link"
dest_b=$(mig_dest b)
dest_a=$(mig_dest a)

# 16 MiB rewritten slowly: pre-copy converges in a few passes (~1-2 s).
PAGES=4096
p=$(mig_define a "$(guest_domain_xml fm1 qemu 'vmtest.mem=16M vmtest.rate=500' 32)") && mig_dom a "$p" Start >/dev/null
ok $? "a TCG guest writing 500 pages/s over 16 MiB runs on a"
uuid=$(mig_uuid a "$p")

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
        esac
}

# may_lose FAULT POINT: whether the fault kills the only copy of the guest.
may_lose() {
        case $1/$2 in
        kill-src-qemu/source-perform-first-pass) return 0 ;;
        kill-dst-qemu/source-before-confirm) return 0 ;;
        esac
        return 1
}

# running_where: the hosts whose vmigrated says the guest runs there.
running_where() {
        local h out=
        for h in a b; do
                [[ $(mig_state "$h" "$p" 2>/dev/null) =~ ^running/ ]] && out+="$h"
        done
        echo "${out:--}"
}

settled() {
        [ -z "$(mig_running_jobs a)" ] && [ -z "$(mig_running_jobs b)" ]
}

TABLE=()
# cell FAULT POINT ROUND
cell() {
        local f=$1 pt=$2 n=$3 h d t0 where qa qb result=ok jphase jerr v
        h=$(point_host "$pt")
        d="$f at $pt${n:+ #$n}"
        bp_arm "$h" "$pt"
        mig_migrate a "$p" "$dest_b" >"$HOSTS_RUN/migrate.out" 2>&1 &
        local mpid=$!
        ok "bp_wait $h $pt 60" "$d: the migration stopped at $pt" || { bp_clear "$h"; TABLE+=("$f|$pt|not reached"); return; }
        job=$(mig_job_of a "$p")
        inject "$f"
        ok $? "$d: $f"
        bp_release "$h" "$pt"
        t0=$(mig_now_ms)
        if [ "$f" = link-down ]; then
                # Both sides notice within the stall timeout (20 s) or the
                # Finish deadline; then the cable goes back.
                wait_until 90 eval "! [[ \$(mig_job_phase a $job) =~ ^(begin|prepare|perform|finish|confirm)\$ ]]"
                link_up b
        fi
        ok "wait_until 90 settled" "$d: no job left running on either host ($(($(mig_now_ms) - t0)) ms)"
        wait "$mpid"
        bp_clear a
        bp_clear b
        where=$(running_where)
        qa=$(mig_qemu_pids a "$uuid" | wc -l)
        qb=$(mig_qemu_pids b "$uuid" | wc -l)
        if may_lose "$f" "$pt" && [ "$where" = - ]; then
                is "$qa/$qb" 0/0 "$d: the fault killed the only copy: no QEMU left anywhere"
                result=lost-by-fault
        else
                like "$where" '^[ab]$' "$d: the guest runs on exactly one host ($where; a: $(mig_state a "$p"), b: $(mig_state b "$p"))" || result=FAIL
                is "$((qa + qb))" 1 "$d: in exactly one QEMU ($qa on a, $qb on b)" || result=FAIL
        fi
        if [[ $where =~ ^[ab]$ ]]; then
                local other=b
                [ "$where" = b ] && other=a
                v=$(mig_guest "$where" "$uuid" verify)
                like "$v" "^VERIFY OK pages=$PAGES " "$d: every page verifies on $where ($v)" || result=FAIL
                is "$(mig_qemu_pids "$other" "$uuid" | wc -l)" 0 "$d: no QEMU for it on $other" || result=FAIL
                is "$(mig_listening_ports "$other" | tr '\n' ' ')" "" "$d: no migration port on $other" || result=FAIL
        fi
        jphase=$(mig_job_phase a "$job")
        jerr=$(mig_jprop a "$job" Error 2>/dev/null)
        like "$jphase" '^(completed|failed|cancelled|gone)$' "$d: the source job ended ($jphase)" || result=FAIL
        if [[ $jphase =~ ^(failed|cancelled)$ ]]; then
                [ -n "$jerr" ]
                ok $? "$d: ... with an error" || result=FAIL
        fi
        TABLE+=("$f|$pt|$result|runs on: $where|job: $jphase|${jerr:0:110}")
        # Back to the start: the guest running on a.
        case $where in
        b) mig_migrate b "$p" "$dest_a" 1 wait b true >/dev/null ;;
        ab) mig_dom b "$p" Destroy >/dev/null 2>&1 ;; # a split brain: keep a's
        -) mig_dom a "$p" Start >/dev/null 2>&1 ;;
        esac
        ok "mig_wait_state 30 a '$p' 'running/.*'" "$d: the guest runs on a again for the next cell" ||
                bail_out "cannot bring the guest back to a: $(mig_state a "$p") / $(mig_state b "$p")"
        mig_guest a "$uuid" wait-heartbeat >/dev/null
}

for c in $CELLS; do
        for ((r = 1; r <= REPEAT; r++)); do
                [ "$REPEAT" -gt 1 ] && n=$r || n=
                cell "${c%%/*}" "${c#*/}" "$n"
        done
done

echo "# fault | point | result | where the guest runs | source job | its error"
for row in "${TABLE[@]}"; do
        echo "#   $row" | sed 's/|/ | /g'
done
hosts_finish
