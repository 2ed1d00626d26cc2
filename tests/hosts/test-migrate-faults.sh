#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Faults injected for real while a TCG test guest that writes memory is
# migrated from a to b (at 20 MB/s it cannot converge, so the migration is
# in phase perform until the fault): the destination QEMU killed, the
# source job cancelled, the link cut, the destination vmigrated killed
# before Finish, the destination refusing in Prepare, the source vmigrated
# killed during Perform. After each: the job
# fails (in bounded time), the guest runs on a only, in one QEMU, and
# verifies every page; b keeps nothing (QEMU, run dir, port, domain, job).
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup --qemu a b
guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"
dest_b=$(mig_dest b)

p=$(mig_create a "$(guest_domain_xml writer qemu 'vmtest.mem=48M vmtest.ws=16M vmtest.rate=5000' 64)")
ok $? "a TCG guest writing 20 MB/s runs on a (transient)"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"
qemu_a=$(mig_qemu_pids a "$uuid")

# start DESC: a -> b at 20 MB/s, returns once the job copies on both sides.
start() {
        local desc=$1 out
        out=$(mig_migrate a "$p" "$dest_b" 1 bandwidth t 20000000)
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate answers with a job" || return 1
        job=$(vm_reply_path "$out")
        ok "mig_wait_phase 20 a '$job' perform && wait_until 20 eval '[ \"\$(mig_jprop a $job DataProcessed)\" -gt 1000000 ]'" \
                "$desc: the job is copying"
        ok "wait_until 20 eval 'test -s \"$(mig_rundir b "$uuid")/pid\"'" "$desc: the incoming QEMU runs on b"
}

# settled DESC SECONDS RESULT-REGEX: the job ends within SECONDS as RESULT,
# and the one-host invariant holds with nothing left on b.
settled() {
        local desc=$1 secs=$2 re=$3 t0 ms v
        t0=$(mig_now_ms)
        mig_wait_phase "$secs" a "$job" "$re"
        ok $? "$desc: the job ends as $re within $secs s ($(($(mig_now_ms) - t0)) ms: $(mig_job_phase a "$job"))" || {
                diag "$desc: the job is still $(mig_job_phase a "$job") on a; b: $(mig_running_jobs b)"
                diag "$desc: cancelling it so that the checks below mean something"
                mig_dom a "$p" AbortJob >/dev/null 2>&1
                mig_wait_phase 30 a "$job" 'failed|cancelled|completed'
        }
        diag "$desc: job error: $(mig_jprop a "$job" Error)"
        one_host "$desc"
}

# one_host DESC: the guest runs on a only, in the QEMU it started in, with
# every page intact; b keeps nothing of it.
one_host() {
        local desc=$1 v
        is "$(mig_qemu_pids a "$uuid")" "$qemu_a" "$desc: the guest's QEMU on a is the one it started in"
        ok "mig_wait_state 10 a '$p' 'running/.*'" "$desc: the guest runs on a ($(mig_state a "$p"))"
        is "$(mig_dprop a "$p" Job)" / "$desc: no job on the domain on a"
        v=$(mig_guest a "$uuid" verify)
        like "$v" '^VERIFY OK pages=12288 ' "$desc: every page verifies on a ($v)"
        like "$(mig_guest a "$uuid" status)" 'rate=5000 ' "$desc: the guest still writes on a"
        ok "wait_until 15 eval '! mig_lookup b $uuid >/dev/null 2>&1'" "$desc: no domain object for the guest on b"
        ok "wait_until 15 eval '[ -z \"\$(mig_qemu_pids b $uuid)\" ]'" "$desc: no QEMU for it on b"
        mig_check_clean b "$uuid" "$desc"
}

# --- 1. destination QEMU killed during Perform
start "QEMU killed on b"
read -r pid _ <"$(mig_rundir b "$uuid")/pid"
ok "[ -n '$pid' ] && host_exec b kill -9 $pid" "QEMU killed on b: kill -9 of b's QEMU ($pid) while copying"
settled "QEMU killed on b" 30 failed

# --- 2. source job cancelled (Job.Cancel), then AbortJob
start "Job.Cancel"
out=$(mig_bus a call "$VM_BUS_NAME" "$job" "$VM_JOB_IFACE" Cancel 2>&1)
ok $? "Job.Cancel: Cancel() on a's job object" || diag "$out"
settled "Job.Cancel" 30 cancelled
is "$(mig_jprop a "$job" Phase)" cancelled "Job.Cancel: the result is cancelled"
start "AbortJob"
out=$(mig_dom a "$p" AbortJob 2>&1)
ok $? "AbortJob: AbortJob() on the domain" || diag "$out"
settled "AbortJob" 30 cancelled

# --- 3. the link cut during Perform (the control channel is b's bus
# socket, reached by path: only the data stream is cut)
start "link cut"
link_down b
ok $? "link cut: b's cable unplugged while copying"
settled "link cut" 60 failed
link_up b
ok $? "link cut: b's cable plugged back"

# --- 4. the destination refuses in Prepare: its copy of the guest's kernel
# is unreadable (a private bind mount in b's mount namespace)
host_exec b mount --bind /dev/null "$VMTEST_KERNEL"
ok $? "Prepare refused: the guest kernel is hidden on b"
out=$(mig_migrate_gdbus a "$p" "$dest_b" "{'bandwidth': <uint64 20000000>}")
like "$out" "GDBus.Error:$VM_ERR\\.[A-Za-z]+: " "Prepare refused: Migrate fails with a vmigrate error ($out)"
unlike "$out" "MigrationFailed|Error.Failed:" "Prepare refused: ... a specific one"
like "$out" "prepare|destination|host-b" "Prepare refused: ... saying that the destination refused"
is "$(mig_qemu_pids a "$uuid")" "$qemu_a" "Prepare refused: the guest's QEMU on a is untouched"
is "$(mig_state a "$p")" running/booted "Prepare refused: the guest runs on a, never paused"
ok "wait_until 15 eval '! mig_lookup b $uuid >/dev/null 2>&1'" "Prepare refused: no domain object on b"
mig_check_clean b "$uuid" "Prepare refused"
host_exec b umount "$VMTEST_KERNEL"

# --- 5. destination vmigrated killed before Finish: SIGKILL during
# Perform, then let the stream converge so that the source goes on to
# Finish, which activates a fresh vmigrated on b that knows nothing of it.
start "vmigrated killed on b"
dpid=$(host_daemon_pid b)
ok "[ -n '$dpid' ] && kill -9 $dpid" "vmigrated killed on b: kill -9 of b's vmigrated ($dpid) while copying"
mig_dom a "$p" SetMaxBandwidth tb 1000000000 false >/dev/null 2>&1
settled "vmigrated killed on b" 90 failed
ok "host_daemon_pid b >/dev/null" "vmigrated killed on b: b has a vmigrated again (activated)"
# If b kept the guest, say how, and remove it so that the last check means
# something.
if left=$(mig_lookup b "$uuid" 2>/dev/null); then
        diag "vmigrated killed on b: b kept $left: $(mig_state b "$left"), QEMU $(mig_qemu_pids b "$uuid" | tr '\n' ' ')"
        diag "$(grep -E 'vmigrated: ' "$(host_path b log)" | grep -v 'QMP event' | tail -n 25)"
        mig_dom b "$left" Destroy >/dev/null 2>&1
        wait_until 15 eval '! mig_lookup b "$uuid" >/dev/null 2>&1'
fi

# --- 6. source vmigrated killed during Perform: nobody drives the
# pre-copy any more. The vmigrated the next call activates on a finds it,
# cancels it and keeps the guest; b discards its half when the source's
# bus connection goes away.
start "vmigrated killed on a"
spid=$(host_daemon_pid a)
ok "[ -n '$spid' ] && kill -9 $spid" "vmigrated killed on a: kill -9 of a's vmigrated ($spid) while copying"
ok "wait_until 10 eval '! host_daemon_pid a >/dev/null'" "vmigrated killed on a: it is gone"
ok "wait_until 10 eval 'mig_state a \"$p\" >/dev/null'" "vmigrated killed on a: a call activates a new one"
# Which side settles it first is a race: usually b, which discards its half
# as soon as the source's bus connection is gone, breaking the stream;
# otherwise the new vmigrated on a cancels the pre-copy it finds. Either
# way the guest must stay on a alone.
if grep -q "found an outgoing pre-copy nobody drives" "$(host_path a log)"; then
        diag "vmigrated killed on a: the new vmigrated on a cancelled the pre-copy it found"
else
        diag "vmigrated killed on a: b discarded its half first; a found the stream broken"
fi
one_host "vmigrated killed on a"

# --- and after all that, the guest still migrates
out=$(mig_migrate a "$p" "$dest_b")
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 a '$job' completed" "after the faults the guest migrates to b"
like "$(mig_guest b "$uuid" verify)" '^VERIFY OK pages=12288 ' "... and verifies there"
mig_check_clean a "$uuid" "after the final migration"

hosts_finish
