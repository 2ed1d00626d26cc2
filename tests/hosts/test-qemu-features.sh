#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# QEMU's newer migration features (options postcopy-preempt,
# zero-page-detection, switchover-ack, zero-copy-send, switchover-bandwidth)
# between three hosts: a and b run the real QEMU; c runs it through
# qemu-without.py, whose probe answers as a QEMU without postcopy-preempt,
# zero-page-detection and switchover-ack would.
#   - GetBackends shows each option, supported on a, not on c (saying why);
#   - each of the three asked for towards c is refused by name (Migrate and
#     DryRun), naming host-c and the QEMU capability or parameter, and c
#     keeps nothing; asked for on c as the source, refused there too;
#   - left out, the defaults use only what both have: a -> c with parallel
#     connections and zero-copy-send completes with 'legacy' zero pages;
#   - a real post-copy a -> b with postcopy-preempt on (the default): both
#     logs say so, a's QEMU has the preempt channel open (a second
#     connection to b's data port), the writing TCG guest verifies every
#     page on b; back b -> a paused by AbortJob and resumed, the preempt
#     channel open again, every page verifying on a.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-postcopy.sh"

HIDE=postcopy-preempt,zero-page-detection,switchover-ack
[ -x "$MIG_PY" ] || skip_all "$MIG_PY not installed"
guest_require
hosts_setup a b c
# Before c's daemon is first activated (by the first call on its bus).
printf 'VMIGRATE_QEMU=%q\nVMTEST_QEMU_HIDE=%q\nVMTEST_QEMU_REAL=%q\n' \
        "$(cd "$(dirname "$0")" && pwd)/qemu-without.py" "$HIDE" "$(command -v qemu-system-x86_64)" \
        >"$(host_path c dir)/daemon.env"
MIG_KVM=0
guest_kvm_usable && MIG_KVM=1
for h in a b c; do
        guest_require_qemu_backend " on host $h" mig_bus "$h"
done
mig_require_tcg_precopy

# --- GetBackends
support_a=$(mig_option_support a qemu)
support_c=$(mig_option_support c qemu)
for o in postcopy-preempt zero-page-detection switchover-ack zero-copy-send switchover-bandwidth; do
        like "$(grep "^$o " <<<"$support_a")" "^$o supported" "GetBackends on a: '$o' supported"
done
like "$(grep '^postcopy-preempt ' <<<"$support_c")" \
        "^postcopy-preempt unsupported .*on host-c has no migration capability 'postcopy-preempt' \(QEMU 8\.0 or newer" \
        "GetBackends on c: 'postcopy-preempt' unsupported, saying why"
like "$(grep '^zero-page-detection ' <<<"$support_c")" \
        "^zero-page-detection unsupported .*no migration parameter 'zero-page-detection' \(QEMU 9\.0" \
        "GetBackends on c: 'zero-page-detection' unsupported, saying why"
like "$(grep '^switchover-ack ' <<<"$support_c")" "^switchover-ack unsupported .*'switchover-ack' \(QEMU 8\.1" \
        "GetBackends on c: 'switchover-ack' unsupported, saying why"
like "$(grep '^zero-copy-send ' <<<"$support_c")" "^zero-copy-send supported" \
        "GetBackends on c: 'zero-copy-send' supported (the sender's alone; c's QEMU has it)"

# --- refused by name when the destination's QEMU lacks it
mig_idle_type "idle guest, /dev/kvm usable" "/dev/kvm missing"
g=$(mig_create a "$(guest_domain_xml idle "$MIG_TYPE" 'vmtest.mem=256K vmtest.rate=0' 64)")
ok $? "an idle guest runs on a"
ug=$(mig_uuid a "$g")
dest_c=$(mig_dest c)
# refused FEATURE QEMU-KIND N KEY TYPE VALUE...
refused() {
        local f=$1 kind=$2 out
        shift 2
        out=$(mig_migrate a "$g" "$dest_c" "$@")
        like "$out" "option '$f' is not supported .*on host-c has no migration $kind '$f'" \
                "Migrate a -> c with '$f' is refused, naming the option, host-c and QEMU's $kind" ||
                diag "$out"
        is "$(mig_state a "$g")" running/booted "... the guest still runs on a"
        mig_check_clean c "$ug" "refused '$f'"
}
refused postcopy-preempt capability 3 postcopy b true live b true postcopy-preempt b true
refused zero-page-detection parameter 2 parallel-connections u 2 zero-page-detection s multifd
refused switchover-ack capability 1 switchover-ack b true
out=$(mig_dry_run a "$g" "$dest_c" 1 switchover-ack b true)
like "$out" "error options.valid .*option 'switchover-ack' .*host-c has no migration capability 'switchover-ack'" \
        "DryRun a -> c with 'switchover-ack': an options.valid error naming it and host-c"
# c as the source: its own QEMU is asked first.
gc=$(mig_create c "$(guest_domain_xml idlec "$MIG_TYPE" 'vmtest.mem=256K vmtest.rate=0' 64)")
ok $? "an idle guest runs on c (through qemu-without.py)"
out=$(mig_migrate c "$gc" "$(mig_dest a)" 3 postcopy b true live b true postcopy-preempt b true)
like "$out" "option 'postcopy-preempt' is not supported .*on host-c has no migration capability" \
        "Migrate c -> a with 'postcopy-preempt' is refused on c by name"
out=$(mig_migrate c "$gc" "$(mig_dest a)" 1 switchover-bandwidth t 125000000)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' \
        "Migrate c -> a with switchover-bandwidth (the sender's alone) is accepted"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 c '$job' 'completed|failed|cancelled'" "... the job ends"
is "$(mig_jprop c "$job" Phase)" completed "... completed" || diag "$(mig_jprop c "$job" Error)"

# --- left out: only what both have. zero-copy-send is the sender's.
log_a=$(host_path a log)
mark=$(wc -l <"$log_a")
out=$(mig_migrate a "$g" "$dest_c" 2 parallel-connections u 2 zero-copy-send b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "Migrate a -> c with parallel connections and zero-copy-send"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "... the job ends"
is "$(mig_jprop a "$job" Phase)" completed "... completed" || diag "$(mig_jprop a "$job" Error)"
line=$(tail -n +"$((mark + 1))" "$log_a" | grep "domain 'idle': postcopy-preempt")
like "$line" "zero-copy-send on, zero-page-detection legacy" \
        "a's log: zero-copy-send on, zero pages found the way c's QEMU reads them (legacy)" || diag "$line"
is "$(mig_state c "$(mig_lookup c idle)")" running/migrated "the guest runs on c"
like "$(mig_guest c "$ug" status)" '^STATUS ' "... and answers there"

# --- post-copy a -> b with postcopy-preempt, by default
link_shape a --rate "$PC_LINK" && link_shape b --rate "$PC_LINK" || bail_out "cannot shape the link"
mig_monitors a b
pc_guest pcguest
pc_mark
# The background copy slowed to 4 MB/s: the post-copy lasts long enough
# to look at (the pages the guest faults on are not slowed: preempt).
pc_migrate preempt a b 4 postcopy b true timeout t 3 timeout-action s postcopy postcopy-bandwidth t 4000000
# QEMU's own evidence: the preempt channel is a second TCP connection from
# a's QEMU to b's data port, next to the stream.
# data_connections HOST: HOST's connections to a data port (the other's).
data_connections() {
        host_exec "${1:-a}" ss -Htn state established '( dport >= :49152 and dport <= :49215 )' | wc -l
}
ok "mig_wait_phase 60 a '$job' 'postcopy|completed|failed|cancelled'" "preempt: the job leaves pre-copy"
n=0
_two_connections() {
        n=$(data_connections)
        [ "$n" -ge 2 ]
}
ok "[ \"\$(mig_job_phase a '$job')\" = postcopy ] && wait_until 10 _two_connections" \
        "preempt: in post-copy, a's QEMU has two connections to b's data port (the stream and the preempt channel)"
diag "preempt: connections to b's data port seen: $n"
pc_wait_end a "$job" 90
pc_check_completed preempt a b "$job"
like "$(pc_log_since a | grep "domain 'pcguest': postcopy-preempt")" "postcopy-preempt on" \
        "a's log: postcopy-preempt on"
like "$(pc_log_since b | grep "domain 'pcguest': incoming")" "postcopy-preempt on" \
        "b's log: postcopy-preempt on for the incoming guest"


# --- post-copy recovery with postcopy-preempt: b -> a, paused by AbortJob,
# resumed; QEMU opens the preempt channel again.
pc_mark
pc_migrate "preempt recovery" b a 2 postcopy b true postcopy-bandwidth t 2000000
out=$(mig_bus b call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" StartPostCopy 2>&1)
ok $? "preempt recovery: Job.StartPostCopy" || diag "$out"
ok "mig_wait_state 30 a '$p' running/postcopy" "preempt recovery: a says running/postcopy"
ok "wait_until 10 eval '[ \$(data_connections b) -ge 2 ]'" \
        "preempt recovery: b's QEMU has two connections to a's data port"
out=$(mig_dom b "$p" AbortJob 2>&1)
ok $? "preempt recovery: AbortJob() pauses the post-copy" || diag "$out"
ok "mig_wait_state 20 b '$p' paused/postcopy-failed" "preempt recovery: b says paused/postcopy-failed"
ok "mig_wait_state 20 a '$p' '[a-z]+/postcopy-failed'" "preempt recovery: a says postcopy-failed"
ok "wait_until 10 eval '[ \$(data_connections b) -eq 0 ]'" "preempt recovery: no connection left to a's data port"
pc_mark
pc_migrate "preempt recovery: resume" b a 2 postcopy b true postcopy-resume b true
n=0
_two_connections_b() {
        n=$(data_connections b)
        [ "$n" -ge 2 ]
}
ok "wait_until 10 _two_connections_b" \
        "preempt recovery: after the resume b's QEMU has both connections to a's data port again"
pc_wait_end b "$job" 90
is "$(mig_jprop b "$job" Phase)" completed "preempt recovery: the resumed post-copy completed" ||
        diag "  error: $(mig_jprop b "$job" Error)"
is "$(mig_state a "$p")" running/migrated "preempt recovery: the guest runs on a"
v=$(mig_guest a "$uuid" verify)
like "$v" "^VERIFY OK pages=$PC_PAGES " "preempt recovery: every page verifies on a ($v)"

hosts_finish
