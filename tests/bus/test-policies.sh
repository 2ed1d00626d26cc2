#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Convergence policies on the bus: Manager.GetPolicies lists the four
# built-in ones and an admin's NAME.policy files from --policies-dir (a
# file replaces the built-in of its name, a broken one is skipped and
# logged), read by busctl and by gdbus; option 'policy' is checked by
# Migrate and DryRun (a name that is no policy, a name the host does not
# have, a policy that needs post-copy against 'postcopy'=false).
. "$(dirname "$0")/lib.sh"

vm_setup 0
pdir=$VM_TMP/policies.d
mkdir -p "$pdir"
cat >"$pdir/gentle.policy" <<'POLICY'
# the site's own
[Policy]
Description=Pauses only, then gives up
Steps=downtime 150;downtime 250
CompletionTimeoutPerGiB=60
FinalAction=abort
POLICY
printf '[Policy]\nDescription=Site default\nSteps=throttle 30\n' >"$pdir/default.policy"
printf '[Policy]\nSteps=warp 9\n' >"$pdir/broken.policy"
_vm_write_service_file "--state-dir=$VM_TMP/state --runtime-dir=$VM_TMP/run --idle-timeout=0 --log-level=debug --policies-dir=$pdir"

mgr() { vm_call_as root "$@" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE"; }

vm_expect_ok vmtest-user "GetPolicies needs no authorization" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetPolicies
json=$(busctl --no-pager --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetPolicies)
ok $? "busctl --json reads GetPolicies"
names=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(p[0] for p in json.load(sys.stdin)["data"][0]))' <<<"$json")
is "$names" "default gentle minimal-downtime postcopy suspend-workload-if-needed" \
        "the built-in ones and gentle, sorted; broken.policy skipped"
field() {
        /usr/bin/python3 -c '
import json, sys
for name, desc, d in json.load(sys.stdin)["data"][0]:
    if name == sys.argv[1]:
        v = desc if sys.argv[2] == "description" else d[sys.argv[2]]["data"]
        print(" | ".join(v) if isinstance(v, list) else v)' "$1" "$2" <<<"$json"
}
is "$(field gentle steps)" "downtime 150 ms | downtime 250 ms" "gentle's steps, as written"
is "$(field gentle completion-timeout-per-gib)" 60 "gentle's completion timeout per GiB"
is "$(field gentle origin)" "$pdir/gentle.policy" "gentle's origin is its file"
is "$(field default description)" "Site default" "the admin's default.policy replaces the built-in default"
is "$(field postcopy steps)" "downtime 150 ms | downtime 200 ms | postcopy" "the built-in postcopy policy's steps"
is "$(field postcopy final-action)" postcopy "... and its final action"
is "$(field minimal-downtime initial-downtime-ms)" 100 "minimal-downtime starts at 100 ms"
like "$(grep 'broken.policy' "$VM_TMP/daemon.log")" "broken.policy skipped: policy 'broken': step 'warp 9' is not one of" \
        "the log says why broken.policy was skipped"
out=$(gdbus call --system --dest "$VM_BUS_NAME" --object-path "$VM_MANAGER_PATH" \
        --method "$VM_MANAGER_IFACE.GetPolicies" 2>&1)
like "$out" "'suspend-workload-if-needed', 'Moves even a guest under heavy load" "gdbus reads GetPolicies too" || diag "$out"

out=$("$VMIGRATE_BUILD_ROOT/client/vmigratectl" policies 2>&1)
like "$out" "gentle \\($pdir/gentle.policy\\)"$'\n'"  Pauses only, then gives up"$'\n'"  step 1: downtime 150 ms"$'\n'"  step 2: downtime 250 ms"$'\n'"  then: abort, at 60 s per GiB of memory" \
        "vmigratectl policies shows gentle's steps and end" || diag "$out"
like "$out" "postcopy \\(built-in\\)" "... and the built-in ones"

# Option 'policy' on a running test domain.
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml pol)"
dom=$(vm_reply_path "$VM_REPLY")
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start
ok $? "a test domain runs" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
dest=ssh://host-b.invalid
vm_expect_error root "Migrate with policy '../x': InvalidOption before anything starts" "$VM_ERROR.InvalidOption" \
        "option 'policy'='../x' is not a policy name" \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "$dest" 1 policy s ../x
vm_expect_error root "Migrate with a policy this host lacks: InvalidOption naming the ones it has" \
        "$VM_ERROR.InvalidOption" "no such policy on this host \(it has default, gentle, minimal-downtime, postcopy, suspend-workload-if-needed" \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "$dest" 1 policy s fastest
vm_expect_error root "policy 'postcopy' with 'postcopy'=false: ConflictingOptions" "$VM_ERROR.ConflictingOptions" \
        "policy 'postcopy' switches to post-copy, and 'postcopy' is false" \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "$dest" 2 policy s postcopy postcopy b false
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" DryRun 'sa{sv}' "$dest" 1 policy s fastest
like "$VM_REPLY" 'options.policy' "DryRun reports the unknown policy as options.policy" ||
        diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE $VM_REPLY"
is "$(vm_get_prop "$dom" "$VM_DOMAIN_IFACE" State)" '"running"' "the domain still runs here"

vm_finish
