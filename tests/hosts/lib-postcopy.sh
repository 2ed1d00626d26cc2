# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2154 # mon_a, mon_b are set by mig_monitors (lib-migrate.sh)
#
# Helpers for the post-copy tests between test hosts (test-postcopy*.sh).
# Source lib-hosts.sh and lib-migrate.sh first, then this file.
#
# The guest: the TCG test guest in 64 MiB rewriting a 32 MiB working set at
# 20000 pages/s (~82 MB/s) over a link shaped to 200 Mbit/s (25 MB/s):
# plain pre-copy cannot converge (every pass leaves ~32 MiB to send), so
# only post-copy (or a cancel) ends the migration.

PC_RATE=20000
PC_GUEST_CMDLINE="vmtest.mem=48M vmtest.ws=32M vmtest.rate=$PC_RATE"
PC_GUEST_MIB=64
PC_LINK=200mbit
PC_PAGES=12288 # 48 MiB of 4 KiB pages

# pc_setup: two hosts a and b, QEMU >= 9 (TCG pre-copy loses writes before
# 9.0), the link shaped, a monitor on each bus ($mon_a, $mon_b).
pc_setup() {
        mig_setup_writing --link "$PC_LINK" a b
        echo "# link a <-> b: $PC_LINK; guest: $PC_GUEST_MIB MiB, $PC_GUEST_CMDLINE"
        mig_monitors a b
}

# pc_guest NAME: defines and starts the writing guest on a; sets $p, $uuid.
pc_guest() {
        p=$(mig_define a "$(guest_domain_xml "$1" qemu "$PC_GUEST_CMDLINE" "$PC_GUEST_MIB")") &&
                mig_dom a "$p" Start >/dev/null
        ok $? "a TCG guest writing $PC_RATE pages/s over 32 MiB runs on a"
        uuid=$(mig_uuid a "$p")
        ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"
}

# pc_mon HOST: that host's monitor file.
pc_mon() {
        if [ "$1" = a ]; then echo "$mon_a"; else echo "$mon_b"; fi
}

# pc_mark: remembers how far the monitor files and logs are, so that
# pc_events_since / pc_log_since see only what came after.
pc_mark() {
        mark_a=$(wc -l <"$mon_a")
        mark_b=$(wc -l <"$mon_b")
        mark_log_a=$(wc -l <"$(host_path a log)")
        mark_log_b=$(wc -l <"$(host_path b log)")
}

# pc_since HOST: the monitor lines of HOST since pc_mark.
pc_since() {
        local m=$mark_a
        [ "$1" = b ] && m=$mark_b
        tail -n +"$((m + 1))" "$(pc_mon "$1")"
}

# pc_events_since HOST: the domain's Lifecycle event/detail pairs on HOST
# since pc_mark, space separated.
pc_events_since() {
        pc_since "$1" | vm_lifecycle_events - "$p" | tr '\n' ' ' | sed 's/ $//'
}

# pc_count_since HOST MEMBER: how many MEMBER signals of the domain since pc_mark.
pc_count_since() {
        pc_since "$1" | vm_signals - "$2" "$p" | wc -l
}

# pc_log_since HOST: vmigrated's log lines on HOST since pc_mark.
pc_log_since() {
        local m=$mark_log_a
        [ "$1" = b ] && m=$mark_log_b
        tail -n +"$((m + 1))" "$(host_path "$1" log)"
}

# pc_job_summary HOST JOB: from HOST's monitor, the job's phases in order
# (consecutive duplicates merged, comma separated), the Iteration carried
# with or last before Phase=postcopy ("-" if never), and the seconds from
# Phase=perform to Phase=postcopy ("-").
pc_job_summary() {
        pc_since "$1" | mig_job_props - "$2" realtime Iteration Phase | awk '
        $2 != "-" { it = $2 }
        $3 == "-" { next }
        n == 0 || phases[n] != $3 { phases[++n] = $3 }
        $3 == "perform" && t_perform == "" { t_perform = $1 }
        $3 == "postcopy" && t_pc == "" { t_pc = $1; it_at = it }
        END {
                list = n ? phases[1] : "-"
                for (i = 2; i <= n; i++) list = list "," phases[i]
                secs = (t_perform != "" && t_pc != "") ? sprintf("%.1f", (t_pc - t_perform) / 1e6) : "-"
                print list, (it_at == "" ? "-" : it_at), secs
        }'
}

# pc_check_completed DESC FROM TO JOB: the checks after a post-copy
# migration that should have completed: the job went through postcopy to
# completed, Lifecycle in order on both buses, JobCompleted on both, the
# guest runs on TO only and verifies every page there. Sets $pc_summary
# ("PHASES ITERATION-AT-SWITCH SECONDS-TO-SWITCH").
pc_check_completed() {
        local desc=$1 from=$2 to=$3 job=$4 v ev_from ev_to
        pc_summary=$(pc_job_summary "$from" "$job")
        local phases=${pc_summary%% *}
        like "$phases" '(^|,)perform,postcopy,completed$' \
                "$desc: the source job went perform -> postcopy -> completed ($phases; switch at pass ${pc_summary#* })"
        is "$(mig_jprop "$from" "$job" Phase)" completed "$desc: the source job completed" ||
                diag "  error: $(mig_jprop "$from" "$job" Error)"
        ev_from=$(pc_events_since "$from")
        ev_to=$(pc_events_since "$to")
        is "$ev_from" "suspended/postcopy stopped/migrated" "$desc: Lifecycle on $from's bus"
        # (defined/added or /updated at the end: the source's definition is
        # persistent, so the destination keeps one too)
        like "$ev_to" '^started/migrated resumed/postcopy resumed/migrated( defined/(added|updated))?$' \
                "$desc: Lifecycle on $to's bus ($ev_to)"
        ok "wait_until 10 eval '[ \"\$(pc_count_since $from JobCompleted)\" = 1 ]'" \
                "$desc: JobCompleted once on $from's bus"
        ok "wait_until 10 eval '[ \"\$(pc_count_since $to JobCompleted)\" = 1 ]'" \
                "$desc: JobCompleted once on $to's bus"
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $from $uuid)\" ]'" "$desc: no QEMU left for it on $from"
        is "$(mig_qemu_pids "$to" "$uuid" | wc -l)" 1 "$desc: one QEMU on $to"
        v=$(mig_guest "$to" "$uuid" verify)
        like "$v" "^VERIFY OK pages=$PC_PAGES " "$desc: every page verifies on $to ($v)"
        like "$(mig_guest "$to" "$uuid" status)" "rate=$PC_RATE " "$desc: the guest still writes on $to"
}

# pc_migrate DESC FROM TO N KEY TYPE VALUE...: Migrate; sets $job.
pc_migrate() {
        local desc=$1 from=$2 to=$3 out
        shift 3
        out=$(mig_migrate "$from" "$p" "$(mig_dest "$to")" "$@")
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate $from -> $to answers with a job" ||
                return 1
        job=$(vm_reply_path "$out")
}

# pc_wait_end HOST JOB SECONDS: waits for a final phase; on a timeout says
# where it is and pauses/cancels it so that later checks mean something.
pc_wait_end() {
        local h=$1 j=$2 secs=$3
        mig_wait_phase "$secs" "$h" "$j" 'completed|failed|cancelled' && return 0
        diag "job $j on $h still $(mig_job_phase "$h" "$j") after $secs s (pass $(mig_jprop "$h" "$j" Iteration)): AbortJob"
        mig_dom "$h" "$p" AbortJob >/dev/null 2>&1
        mig_wait_phase 30 "$h" "$j" 'completed|failed|cancelled'
        return 1
}
