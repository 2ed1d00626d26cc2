#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The host as a whole, on one real daemon: maintenance mode (polkit
# manage-host, PropertiesChanged, Start and CreateXML refused with
# HostInMaintenance, kept across a restart) and the job history
# (ListJobHistory and its filter, kept across restarts with job ids that
# count on, GetJobStats of a domain whose job ended before the restart,
# JobHistorySize=, a damaged file set aside). The jobs are migrations to
# this very host, which fail once the job exists.
. "$(dirname "$0")/lib.sh"

vm_setup 0

self="unix://$VM_TMP/bus/system_bus_socket"
etc_dir=$("$VM_DAEMON" --help | sed -n -E 's/.*DIR(\/[^ ]*)\/vmigrated\.conf, and so on\..*/\1/p')
[ -n "$etc_dir" ] || bail_out "cannot read the configuration directory from 'vmigrated --help'"
conf_dir=$VM_TMP/config$etc_dir
mkdir -p "$conf_dir"

restart() {
        local pid
        pid=$(vm_daemon_pid) || return 1
        vm_stop_daemon_pid "$pid" >/dev/null || return 1
        busctl --no-pager get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Version >/dev/null
}

# history [FILTER-ARGS...]: ListJobHistory's reply as JSON.
history() {
        busctl --no-pager --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" \
                ListJobHistory 'a{sv}' "${@:-0}"
}

# jq-like field access without jq: python over the JSON reply.
hist_py() {
        /usr/bin/python3 -c "import json,sys; h=json.load(sys.stdin)['data'][0]; $1"
}

# --- maintenance
is "$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" false "a new host is not in maintenance"
vm_expect_error vmtest-user "a user without rights cannot set maintenance" \
        org.freedesktop.DBus.Error.InteractiveAuthorizationRequired 'org.vmigrate.migrate1.manage-host' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" SetMaintenance b true
is "$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" false "... and nothing changed"
vm_monitor_start "$VM_TMP/monitor.json"
vm_expect_ok vmtest-admin "a member of group vmigrate sets maintenance (the example rules)" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" SetMaintenance b true
is "$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" true "the host is in maintenance"
wait_until 5 eval 'vm_signals "$VM_TMP/monitor.json" PropertiesChanged "$VM_MANAGER_PATH" | grep -q Maintenance'
ok $? "PropertiesChanged announced Maintenance"
like "$(cat "$VM_TMP/state/maintenance" 2>&1)" '^set by :[0-9.]+ \(UID [0-9]+\) at 20' \
        "the state directory records who set it and when"
vm_expect_ok vmtest-admin "setting it again changes nothing and is no error" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" SetMaintenance b true

dom=$(vm_define admin1 11111111-2222-3333-4444-555555555555)
ok $? "defining a domain is still allowed in maintenance"
vm_expect_error root "Start is refused in maintenance" "$VM_ERROR.HostInMaintenance" \
        "is in maintenance: starting domain 'admin1' is refused until an admin ends it" \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start
is "$(vm_domain_state "$dom")" '"shutoff"' "... and the domain stays off"
vm_expect_error root "CreateXML is refused in maintenance" "$VM_ERROR.HostInMaintenance" \
        "creating domain 'admin2' is refused" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" CreateXML s "$(vm_domain_xml admin2)"
vm_expect_error root "... and leaves no domain behind" "$VM_ERROR.NoSuchDomain" "admin2" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s admin2

restart
ok $? "restart vmigrated"
is "$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Maintenance)" true "maintenance survives a restart"
vm_expect_error root "... and Start is still refused" "$VM_ERROR.HostInMaintenance" "in maintenance" \
        call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start
vm_expect_ok root "root leaves maintenance" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" SetMaintenance b false
ok '[ ! -e "$VM_TMP/state/maintenance" ]' "... and the record is gone"
vm_expect_ok root "Start works again" call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start

# --- job history
is "$(history | hist_py 'print(len(h))')" 0 "no job yet: the history is empty"
for i in 1 2 3; do
        vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "$self" 0
        is "$VM_ERROR_NAME" "$VM_ERROR.InvalidDestination" "migration $i to this very host fails"
done
out=$(history)
is "$(hist_py 'print(len(h))' <<<"$out")" 3 "ListJobHistory lists the three failed jobs"
is "$(hist_py 'print(" ".join(sorted({e["phase"]["data"] for e in h})))' <<<"$out")" failed "... each failed"
is "$(hist_py 'print(h[-1]["domain"]["data"], h[-1]["uuid"]["data"], h[-1]["kind"]["data"])' <<<"$out")" \
        "admin1 11111111-2222-3333-4444-555555555555 migration-out" "... naming the domain, its UUID and the kind"
like "$(hist_py 'print(h[-1]["error"]["data"])' <<<"$out")" 'same host|this very host|this host' \
        "... with the error"
ids=$(hist_py 'print(" ".join(str(e["id"]["data"]) for e in h))' <<<"$out")
like "$ids" '^[0-9]+ [0-9]+ [0-9]+$' "... oldest first, with ids ($ids)"
ok "$(hist_py 'print(0 if all(e["ended-at"]["data"] >= e["started-at"]["data"] > 1.7e15 for e in h) else 1)' <<<"$out")" \
        "... and start and end times in microseconds since the epoch"
is "$(history 1 limit u 1 | hist_py 'print(h[0]["id"]["data"])')" "${ids##* }" "limit 1 gives the newest"
is "$(history 1 domain s admin1 | hist_py 'print(len(h))')" 3 "filter domain by name"
is "$(history 1 domain s 11111111-2222-3333-4444-555555555555 | hist_py 'print(len(h))')" 3 "filter domain by UUID"
is "$(history 1 domain s other | hist_py 'print(len(h))')" 0 "filter domain: another name matches nothing"
is "$(history 1 result s completed | hist_py 'print(len(h))')" 0 "filter result=completed matches nothing"
is "$(history 2 kind s migration-out since t 1 | hist_py 'print(len(h))')" 3 "filters kind and since together"
vm_expect_error vmtest-user "an unknown filter is refused, naming it" "$VM_ERROR.InvalidArgument" \
        "unknown filter 'colour'" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListJobHistory 'a{sv}' 1 colour s red
vm_expect_error vmtest-user "a filter of the wrong type is refused" "$VM_ERROR.InvalidArgument" \
        "filter 'limit' must be of type u" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListJobHistory 'a{sv}' 1 limit s 3
vm_expect_error vmtest-user "a result that does not exist is refused" "$VM_ERROR.InvalidArgument" \
        "filter 'result' must be" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListJobHistory 'a{sv}' 1 result s won

restart
ok $? "restart vmigrated"
is "$(history | hist_py 'print(" ".join(str(e["id"]["data"]) for e in h))')" "$ids" \
        "the history survives the restart"
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" GetJobStats
ok $? "GetJobStats answers for the job that ended before the restart" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
like "$VM_REPLY" '"phase" s "failed"' "... with its result"
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "$self" 0
new=$(history 1 limit u 1 | hist_py 'print(h[0]["id"]["data"])')
ok "$([ "$new" -gt "${ids##* }" ] && echo 0 || echo 1)" "job ids count on after a restart ($new > ${ids##* })"

printf '[Migration]\nJobHistorySize=2\n' >"$conf_dir/vmigrated.conf"
kill -HUP "$(vm_daemon_pid)"
wait_until 10 eval '[ "$(history | hist_py "print(len(h))")" = 2 ]'
ok $? "JobHistorySize=2 and SIGHUP: two jobs kept"
is "$(history | hist_py 'print(h[-1]["id"]["data"])')" "$new" "... the newest ones"
restart
is "$(history | hist_py 'print(len(h))')" 2 "... also in the file"
rm -f "$conf_dir/vmigrated.conf"

head -c 3000 /dev/urandom >"$VM_TMP/state/job-history"
restart
ok $? "a damaged history does not stop vmigrated"
is "$(history | hist_py 'print(len(h))')" 0 "... which starts an empty history"
ok '[ -s "$VM_TMP/state/job-history.damaged" ]' "... and sets the damaged file aside"

vm_finish
