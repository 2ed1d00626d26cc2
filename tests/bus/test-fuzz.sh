#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bus fuzzing (tests/fuzz/bus-fuzz.py) against the daemon on a private bus:
# every method of the contract with random, boundary and wrongly typed
# arguments, as root (past polkit) and as the two test users (through
# polkit). The daemon must answer every call, stay up (same pid) and
# report nothing to the sanitizers or valgrind.
#
# BUS_FUZZ_SECONDS (default 20: CI) is the whole budget, BUS_FUZZ_SEED the
# seed of the root run (the users' runs use the next two). For a long run:
#     BUS_FUZZ_SECONDS=600 tools/run-tests.sh build-asan --timeout-multiplier 0 bus-fuzz
. "$(dirname "$0")/lib.sh"

seconds=${BUS_FUZZ_SECONDS:-20}
seed=${BUS_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 3 ]] || bail_out "BUS_FUZZ_SECONDS must be a number of seconds >= 3"
[[ $seed =~ ^[0-9]+$ ]] || bail_out "BUS_FUZZ_SEED must be a number"

vm_setup 0
# The qemu backend must not start real guests on whatever the fuzzer
# defines: make it unavailable (its refusals are still exercised).
vm_set_daemon_env VMIGRATE_QEMU=/nonexistent/qemu-system-x86_64

vm_expect_ok root "the service starts" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
pid=$(vm_daemon_pid)
ok $? "daemon pid $pid"

# Under valgrind the daemon is tens of times slower: a call that takes
# long there is not a hang.
call_timeout=30
[ -n "${VMIGRATE_VALGRIND:-}" ] && call_timeout=300

# fuzz USER SECONDS SEED: one run of the fuzzer; its TAP results become
# ours (its own plan line is dropped).
fuzz() {
        local user=$1 secs=$2 s=$3 line rc=
        diag "fuzzing as $user for $secs s, seed $s"
        while IFS= read -r line; do
                case $line in
                "ok "*) _tap_result 0 "$user: ${line#* - }" ;;
                "not ok "*) _tap_result 1 "$user: ${line#* - }" ;;
                1..*) ;;
                "exit-status "*) rc=${line#exit-status } ;;
                *) echo "$line" ;;
                esac
        done < <(as_user "$user" /usr/bin/python3 "$VMIGRATE_SOURCE_ROOT/tests/fuzz/bus-fuzz.py" \
                --interfaces "$VMIGRATE_SOURCE_ROOT/interfaces" --corpus "$VMIGRATE_SOURCE_ROOT/tests/fuzz/corpus" \
                --seconds "$secs" --seed "$s" --call-timeout "$call_timeout" 2>&1; echo "exit-status $?")
        is "$rc" 0 "$user: the fuzzer ran to its end and found nothing"
}

# Most of the time as root, who gets past authorization to the code that
# acts; the rest through polkit: vmtest-admin (allowed) and vmtest-user
# (denied).
fuzz root $((seconds * 3 / 5)) "$seed"
fuzz vmtest-admin $((seconds / 5)) $((seed + 1))
fuzz vmtest-user $((seconds / 5)) $((seed + 2))

is "$(vm_daemon_pid)" "$pid" "the daemon that got all this is still running (same pid)"
vm_finish
