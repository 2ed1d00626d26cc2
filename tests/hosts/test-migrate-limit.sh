#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The concurrency limits (vmigrated --max-outgoing-migrations and
# --max-incoming-migrations, default 2): with two migrations leaving a,
# a third is refused with LimitReached and changes nothing; with two
# arriving at b, one from c is refused by b; when one ends, the next one
# is accepted. Test-backend domains (4 GiB at 20 MB/s: minutes) keep the
# migrations running as long as needed.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup a b c
dest_b=$(mig_dest b)
slow=(1 bandwidth t 20000000)

for n in 1 2 3; do
        p[n]=$(mig_create a "$(mig_test_xml t$n 4096)")
        ok $? "test domain t$n (4 GiB) runs on a"
done
u=$(mig_create c "$(mig_test_xml u1 4096)")
ok $? "test domain u1 (4 GiB) runs on c"

for n in 1 2; do
        out=$(mig_migrate a "${p[n]}" "$dest_b" "${slow[@]}")
        like "$out" '^o "' "t$n: Migrate a -> b at 20 MB/s answers with a job"
        job[n]=$(vm_reply_path "$out")
        ok "mig_wait_phase 10 a '${job[n]}' perform" "t$n: the job is copying"
done

state() {
        local h
        for h in a b c; do
                echo "$h: $(mig_running_jobs "$h" | tr '\n' ' ')"
                echo "$h: $(mig_domains "$h" | tr '\n' ' ')"
        done
}
before=$(state)
out=$(mig_migrate_gdbus a "${p[3]}" "$dest_b" "{'bandwidth': <uint64 20000000>}")
like "$out" "GDBus.Error:$VM_ERR\\.LimitReached: " "t3: a third migration leaving a is refused: LimitReached"
like "$out" "2 migrations" "... saying that 2 are already leaving"
like "$out" "max-outgoing-migrations" "... and naming the setting"
is "$(state)" "$before" "... nothing changed on a, b or c"
is "$(mig_dprop a "${p[3]}" Job)" / "... t3 has no job"

out=$(mig_migrate_gdbus c "$u" "$dest_b" "{'bandwidth': <uint64 20000000>}")
like "$out" "GDBus.Error:$VM_ERR\\.LimitReached: " "u1: a third migration arriving at b (from c) is refused: LimitReached"
like "$out" "host-b" "... naming the destination host"
like "$out" "max-incoming-migrations" "... and the setting"
is "$(state)" "$before" "... nothing changed on a, b or c"
like "$(mig_state c "$u")" '^running/' "... u1 still runs on c"

out=$(mig_dom a "${p[1]}" AbortJob 2>&1)
ok $? "t1: AbortJob" || diag "$out"
ok "mig_wait_phase 30 a '${job[1]}' cancelled" "t1: its job is cancelled"
ok "wait_until 15 eval '[ \"\$(mig_running_jobs b | wc -l)\" = 1 ]'" "b receives one migration now"

out=$(mig_migrate a "${p[3]}" "$dest_b" "${slow[@]}")
like "$out" '^o "' "t3: once t1 stopped, a third migration may leave a"
job[3]=$(vm_reply_path "$out")
out=$(mig_migrate_gdbus c "$u" "$dest_b" "{'bandwidth': <uint64 20000000>}")
like "$out" "GDBus.Error:$VM_ERR\\.LimitReached: .*max-incoming" "u1: b receives 2 again: c's migration is still refused"

for n in 2 3; do
        mig_dom a "${p[n]}" AbortJob >/dev/null 2>&1
        ok "mig_wait_phase 30 a '${job[n]}' cancelled" "t$n: cancelled"
done
ok "wait_until 15 eval '[ -z \"\$(mig_running_jobs b)\" ]'" "b receives nothing any more"
out=$(mig_migrate a "${p[1]}" "$dest_b")
job[1]=$(vm_reply_path "$out")
ok "mig_wait_phase 30 a '${job[1]}' completed" "t1 now migrates to b at full speed"
out=$(mig_migrate c "$u" "$dest_b")
ok "mig_wait_phase 30 c '$(vm_reply_path "$out")' completed" "u1 now migrates from c to b"
for n in 2 3; do
        like "$(mig_state a "${p[n]}")" '^running/' "t$n still runs on a"
done
is "$(mig_running_jobs a)$(mig_running_jobs b)$(mig_running_jobs c)" "" "no job runs on any host"

hosts_finish
