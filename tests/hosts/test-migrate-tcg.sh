#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2154 # mon_a, mon_b are set by mig_monitors (lib-migrate.sh)
# Live migration of the test guest under TCG while it rewrites memory,
# back and forth between two hosts, once per option set: plain, 4 parallel
# connections with zstd, auto-converge, a bandwidth limit raised on the fly
# (SetMaxBandwidth, SetMaxDowntime; Progress never goes down, Job
# PropertiesChanged at most ~10 Hz), max-downtime. After every successful
# migration the guest verifies every page on its new host.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup_writing a b
mig_monitors a b

p=$(mig_define a "$(guest_domain_xml writer qemu 'vmtest.mem=48M vmtest.ws=16M vmtest.rate=5000' 64)") &&
        mig_dom a "$p" Start >/dev/null
ok $? "a TCG guest writing 5000 pages/s over 16 MiB runs on a"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"
like "$(mig_guest a "$uuid" status)" 'rate=5000 ' "... and writes at 5000 pages/s"

here=a
# leg DESCRIPTION N KEY TYPE VALUE...: migrate from $here to the other
# host, wait, check, verify; sets $job and $here.
leg() {
        local desc=$1 from=$here to out t0 ms before
        shift
        if [ "$from" = a ]; then to=b; else to=a; fi
        before=$(mig_qemu_pids "$from" "$uuid")
        t0=$(mig_now_ms)
        out=$(mig_migrate "$from" "$p" "$(mig_dest "$to")" "$@")
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate $from -> $to answers with a job" ||
                return 1
        job=$(vm_reply_path "$out")
        leg_extra "$from" "$to"
        mig_wait_phase 60 "$from" "$job" 'completed|failed|cancelled' || {
                diag "$desc: still $(mig_job_phase "$from" "$job") after 60 s: AbortJob"
                mig_dom "$from" "$p" AbortJob
                mig_wait_phase 30 "$from" "$job" 'completed|failed|cancelled'
        }
        ms=$(($(mig_now_ms) - t0))
        is "$(mig_jprop "$from" "$job" Phase)" completed "$desc: the job completed ($ms ms, $(mig_jprop "$from" "$job" Iteration) passes)" ||
                diag "  error: $(mig_jprop "$from" "$job" Error)"
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $from $uuid)\" ]'" "$desc: its QEMU on $from ($before) is gone"
        is "$(mig_qemu_pids "$to" "$uuid" | wc -l)" 1 "$desc: one QEMU on $to"
        local v
        v=$(mig_guest "$to" "$uuid" verify)
        like "$v" '^VERIFY OK pages=12288 ' "$desc: every page verifies on $to ($v)"
        like "$(mig_guest "$to" "$uuid" status)" 'rate=5000 ' "$desc: the guest still writes at 5000 pages/s"
        here=$to
}
leg_extra() { :; }

leg "plain"
leg "parallel-connections=4 compression=zstd" 2 parallel-connections u 4 compression s zstd
leg "auto-converge" 1 auto-converge b true
leg "max-downtime=50" 1 max-downtime t 50

# --- 10 MB/s cannot keep up with 20 MB/s of writes: the migration goes on
# until SetMaxBandwidth opens the tap; SetMaxDowntime on the way.
leg_extra() {
        local from=$1 p1 p2
        ok "mig_wait_phase 20 $from '$job' perform" "bandwidth: the job is copying"
        ok "wait_until 20 eval '[ \"\$(mig_jprop $from $job Iteration)\" -ge 2 ]'" \
                "bandwidth: at 10 MB/s a second pass starts"
        p1=$(mig_jprop "$from" "$job" Progress)
        sleep 1.5 # let it run at the low rate: what is measured is the rate of signals
        is "$(mig_jprop "$from" "$job" Phase)" perform "bandwidth: still copying after 1.5 s more (it cannot converge)"
        p2=$(mig_jprop "$from" "$job" Progress)
        ok "awk -v a='$p1' -v b='$p2' 'BEGIN { exit !(b >= a && b < 1) }'" \
                "bandwidth: Progress does not go down and is below 1 ($p1 -> $p2)"
        out=$(mig_dom "$from" "$p" SetMaxDowntime t 500 2>&1)
        ok $? "bandwidth: SetMaxDowntime(500) during the migration" || diag "$out"
        out=$(mig_dom "$from" "$p" SetMaxBandwidth tb 1000000000 false 2>&1)
        ok $? "bandwidth: SetMaxBandwidth(1 GB/s) during the migration" || diag "$out"
}
from_bw=$here
leg "bandwidth=10MB/s, then raised" 1 bandwidth t 10000000
leg_extra() { :; }
mon=$mon_a
[ "$from_bw" = b ] && mon=$mon_b
changes=$(mig_job_changes "$mon" "$job")
n=$(wc -l <<<"$changes")
ok "[ $n -ge 5 ]" "bandwidth: several PropertiesChanged of the job were seen ($n)"
prog=$(awk '$2 != "-" { print $2 }' <<<"$changes")
ok "sort -g -c <<<'$prog'" "bandwidth: Progress in PropertiesChanged never goes down"
last=$(tail -n1 <<<"$prog")
ok "awk -v p='$last' 'BEGIN { exit !(p == 1) }'" "bandwidth: the last Progress is 1 ($last)"
span=$(awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%.3f", (b - a) / 1e6 }' <<<"$changes")
# Bursts aside (phase changes), at most ~10 per second: count the busiest second.
busiest=$(awk '{ print int($1 / 1e6) }' <<<"$changes" | uniq -c | sort -rn | head -n1 | awk '{ print $1 }')
ok "[ $busiest -le 14 ]" "bandwidth: at most ~10 Hz of PropertiesChanged ($n over $span s, busiest second $busiest)"
stats=$(mig_dom "$from_bw" "$p" GetJobStats 2>&1)
like "$stats" '"phase" s "completed"' "bandwidth: GetJobStats shows the completed job" ||
        diag "$stats"

hosts_finish
