#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigratectl's host commands against one real vmigrated: maintenance
# (read by anyone, set only with polkit's manage-host, shown as
# vmigratectl says and as the bus says), history (empty, as table and
# JSON), and evacuate: nothing to move (exit 0), a domain no destination
# can take (this very host: not placed, the table says so, exit 1),
# --detach and --json, and a caller without polkit's evacuate (exit 5).
# Evacuations that move domains between hosts: tests/hosts.
. "$(dirname "$0")/lib.sh"

ctl=$VMIGRATE_BUILD_ROOT/client/vmigratectl
[ -x "$ctl" ] || skip_all "vmigratectl is not built"

vm_setup 0
self=unix://$VM_TMP/bus/system_bus_socket

# json_get JSON EXPRESSION: a value of the JSON (Python syntax on 'j').
json_get() {
        /usr/bin/python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---- evacuate with nothing to move ----

out=$("$ctl" evacuate "$self" 2>&1)
is "$?" 0 "evacuate with no running domain succeeds" || diag "$out"
like "$out" "Nothing to move off this host" "... and says there was nothing to move"
ok "vm_daemon_running" "... and vmigrated is still running"

vm_domain_xml demo >"$VM_TMP/demo.xml"
"$ctl" -q define "$VM_TMP/demo.xml" && "$ctl" -q start demo
ok $? "a test domain runs"

# ---- maintenance ----

out=$(as_user vmtest-user "$ctl" maintenance 2>&1)
is "$?|$out" "0|$(hostname) is not in maintenance." "anyone may read the maintenance mode"
out=$(as_user vmtest-user "$ctl" --no-ask-password maintenance on 2>&1)
is "$?" 5 "a user without manage-host may not set it (exit 5)"
like "$out" "org.vmigrate.migrate1.manage-host" "... and is told which action was refused"
out=$(as_user vmtest-admin "$ctl" --no-ask-password maintenance on 2>&1)
is "$?" 0 "a member of group vmigrate may set it" || diag "$out"
like "$out" "is in maintenance: it refuses incoming migrations" "... and is told what it means"
is "$(busctl --no-pager get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" \
        "b true" "the Maintenance property says so"
json=$("$ctl" --json maintenance)
is "$(json_get "$json" 'j["maintenance"], j["hostname"] != ""')" "(True, True)" "--json: {maintenance: true, hostname}"
"$ctl" -q maintenance off
is "$?|$(busctl --no-pager get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" \
        "0|b false" "maintenance off takes it out"

# ---- history, before any job ----

out=$("$ctl" history 2>"$VM_TMP/err")
is "$?|$out|$(cat "$VM_TMP/err")" "0||No job has ended on this host yet." \
        "an empty history: nothing on stdout, a note on stderr"
is "$("$ctl" --json history --domain=demo --limit=5)" "[]" "--json: an empty array"

# ---- evacuate, with a domain it cannot place ----

out=$("$ctl" evacuate "$self" --order=priority --parallel=1 2>"$VM_TMP/err")
is "$?" 1 "an evacuation whose domain cannot be placed exits 1" || diag "$out" "$(cat "$VM_TMP/err")"
like "$out" $'DOMAIN +DESTINATION +RESULT +TIME +MESSAGE\ndemo +- +not-placed +- +' "the table shows demo not placed"
like "$(cat "$VM_TMP/err")" "did not complete \\(failed\\): 1 of 1 domains did not move" "stderr says it failed"
is "$(vm_domain_state "$(vm_reply_path "$(busctl --no-pager call "$VM_BUS_NAME" "$VM_MANAGER_PATH" \
        "$VM_MANAGER_IFACE" GetDomain s demo)")")" '"running"' "demo still runs here"

json=$("$ctl" --json evacuate "$self" 2>/dev/null)
is "$?" 1 "--json: exit 1 too"
is "$(json_get "$json" 'j["result"], j["total"], j["failed"], j["domains"][0]["domain"], j["domains"][0]["state"]')" \
        "('failed', 1, 1, 'demo', 'not-placed')" "--json: the result and the domain's state"
like "$(json_get "$json" 'j["domains"][0]["message"]')" "." "--json: with the reasons"

path=$("$ctl" evacuate --detach "$self")
is "$?" 0 "--detach returns at once"
like "$path" '^/org/vmigrate/Migrate1/evacuation/[0-9]+$' "... printing the evacuation's path"
state() { busctl --no-pager get-property "$VM_BUS_NAME" "$path" org.vmigrate.Migrate1.Evacuation State; }
state_is_failed() { [ "$(state)" = 's "failed"' ]; }
wait_until 30 state_is_failed
is "$(state)" 's "failed"' "... and the evacuation goes on to its end without us"

out=$(as_user vmtest-user "$ctl" --no-ask-password evacuate "$self" 2>&1)
is "$?" 5 "a user without evacuate may not evacuate (exit 5)"
like "$out" "org.vmigrate.migrate1.evacuate" "... and is told which action was refused"

out=$("$ctl" evacuate "$self" --parallel=0 2>&1)
is "$?" 2 "a bad --parallel is a usage error, before any call"

vm_finish
