#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bus activation, the manager object, idle exit and clean shutdown.
. "$(dirname "$0")/lib.sh"

vm_setup 0

uuid_re='^"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$'

# --- the binary itself
out=$("$VM_DAEMON" --version 2>&1)
ok $? "vmigrated --version exits 0"
like "$out" "${VMIGRATE_VERSION//./\\.}" "vmigrated --version prints the project version"
out=$("$VM_DAEMON" --help 2>&1)
ok $? "vmigrated --help exits 0"
like "$out" '--idle-timeout' "vmigrated --help lists --idle-timeout"
"$VM_DAEMON" --no-such-option >/dev/null 2>&1
isnt $? 0 "vmigrated refuses an unknown option"

# --- activation
ok '! vm_daemon_running' "nobody owns $VM_BUS_NAME before the first call"
vm_expect_ok root "first call activates the service" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
is "$VM_REPLY" "ao 0" "ListDomains on a fresh state dir is empty"
pid1=$(vm_daemon_pid)
ok $? "the service owns its name after activation (pid $pid1)"
if [ -n "${VMIGRATE_VALGRIND:-}" ]; then
        # valgrind runs vmigrated in its own process (same pid), named
        # after the valgrind tool: look for the program in its arguments.
        like "$(tr '\0' ' ' <"/proc/$pid1/cmdline" 2>/dev/null)" "/vmigrated " \
                "the name is owned by vmigrated itself (under valgrind)"
else
        is "$(cat "/proc/$pid1/comm" 2>/dev/null)" vmigrated "the name is owned by vmigrated itself"
fi

# --- the manager object
intro=$(busctl --no-pager introspect "$VM_BUS_NAME" "$VM_MANAGER_PATH")
ok $? "busctl introspect on the manager path works"
like "$intro" $'(^|\n)'"$VM_MANAGER_IFACE"' +interface' "introspection shows the Manager interface"
like "$intro" $'(^|\n)org.freedesktop.DBus.ObjectManager +interface' "introspection shows ObjectManager"
for m in ListDomains GetDomain DefineXML CreateXML GetCapabilities GetBackends; do
        like "$intro" $'\n\\.'"$m"' +method' "introspection lists method $m"
done
like "$intro" $'\n\\.Version +property +s +"[^"]+" +const' "Version is a const string property"
like "$intro" $'\n\\.HostUUID +property +s +"[^"]+" +const' "HostUUID is a const string property"
like "$intro" $'\n\\.Hostname +property +s ' "Hostname is a string property"

version=$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Version)
is "$version" "\"$VMIGRATE_VERSION\"" "Version is the project version"
uuid1=$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" HostUUID)
like "$uuid1" "$uuid_re" "HostUUID is a lower-case UUID"
file_uuid=$(tr -d '\n' <"$VM_TMP/state/host-uuid" 2>/dev/null)
is "\"$file_uuid\"" "$uuid1" "HostUUID is stored in <state-dir>/host-uuid"
hostname=$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Hostname)
is "$hostname" "\"$(uname -n)\"" "Hostname is the kernel's host name"

# a user outside group vmigrate can read everything here
vm_expect_ok vmtest-user "an unprivileged user can read the manager's properties" \
        get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Version HostUUID Hostname
vm_expect_ok vmtest-user "an unprivileged user can introspect the manager" \
        introspect "$VM_BUS_NAME" "$VM_MANAGER_PATH"

vm_expect_ok root "GetManagedObjects works" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects
is "$VM_REPLY" "a{oa{sa{sv}}} 0" "GetManagedObjects is empty without domains"

caps=$(vm_json_reply_string call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetCapabilities)
ok $? "GetCapabilities works"
printf '%s' "$caps" | xmllint --noout - 2>/dev/null
ok $? "GetCapabilities returns well-formed XML"

backends=$(busctl --no-pager --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetBackends |
        /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["data"][0]
for name, props in sorted(d.items()):
    print(name, props.get("available", {}).get("data"), " ".join(props.get("domain-types", {}).get("data", [])))
')
ok $? "GetBackends works"
like "$backends" '(^|'$'\n'')test True test($|'$'\n'')' "the test backend is listed as available for domain type test"

vm_expect_ok root "Peer.Ping works" call "$VM_BUS_NAME" / org.freedesktop.DBus.Peer Ping

# --- clean exit on SIGTERM, re-activation, stable host UUID
status=$(vm_stop_daemon_pid "$pid1" TERM)
ok $? "the daemon exits after SIGTERM and releases its name"
is "$status" 0 "exit status after SIGTERM is 0"

uuid2=$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" HostUUID)
ok $? "the next call re-activates the service"
pid2=$(vm_daemon_pid)
isnt "$pid2" "$pid1" "a new daemon process answers"
is "$uuid2" "$uuid1" "HostUUID stays the same across restarts"

status=$(vm_stop_daemon_pid "$pid2" INT)
ok $? "the daemon exits after SIGINT"
is "$status" 0 "exit status after SIGINT is 0"

# --- idle exit
vm_write_service_file 2
vm_expect_ok root "call with --idle-timeout=2 activates" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
pid3=$(vm_daemon_pid)
ok $? "daemon with idle timeout runs (pid $pid3)"
status=$(vm_daemon_exit_status "$pid3" 15)
ok $? "the daemon exits on its own when idle"
is "$status" 0 "exit status after idle exit is 0"
ok 'wait_until 5 eval "! vm_daemon_running"' "the name is released after idle exit"

uuid3=$(vm_get_prop "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" HostUUID)
ok $? "the next call re-activates the service after idle exit"
pid4=$(vm_daemon_pid)
isnt "$pid4" "$pid3" "a new daemon process answers after idle exit"
is "$uuid3" "$uuid1" "HostUUID is still the same"

# A running domain keeps the daemon alive: no idle exit while it runs.
vm_expect_ok root "CreateXML of a running transient domain" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" CreateXML s "$(vm_domain_xml idle-keeper)"
dom=$(vm_reply_path "$VM_REPLY")
pid5=$(vm_daemon_pid)
# Deliberately waits past the idle timeout: the daemon must still be there.
wait_until 5 eval '! kill -0 "$pid5" 2>/dev/null'
ok '[ $? -ne 0 ]' "the daemon does not exit on idle while a domain runs"
is "$(vm_domain_state "$dom")" '"running"' "the domain still runs"
vm_expect_ok root "Destroy the transient domain" call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Destroy
ok 'wait_until 15 test -f "$VM_TMP/exits/$pid5"' "after the last domain stops the daemon exits on idle"
is "$(cat "$VM_TMP/exits/$pid5" 2>/dev/null)" 0 "exit status 0"

vm_finish
