#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Domains over the bus with the test backend: define, look up, state
# transitions, signals, XML round trip, undefine, transient domains and
# persistence across daemon restarts. All calls as root (polkit is
# test-polkit.sh's business).
. "$(dirname "$0")/lib.sh"

vm_setup 0

U1=6f2a3c1e-0b4d-4e8a-9c7f-1a2b3c4d5e6f
U2=0a9b8c7d-6e5f-4a3b-8c1d-2e3f4a5b6c7d
mon=$VM_TMP/monitor.json

mgr() { vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" "$@"; }
dom() { local p=$1; shift; vm_call_as root call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" "$@"; }
prop() { vm_get_prop "$1" "$VM_DOMAIN_IFACE" "$2"; }

# --- define
vm_expect_ok root "ListDomains activates the service" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
vm_monitor_start "$mon"

mgr DefineXML s "$(vm_domain_xml demo "$U1")"
ok $? "DefineXML of a new domain succeeds" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
P1=$(vm_reply_path "$VM_REPLY")
is "$P1" "$(vm_domain_path "$U1")" "the object path is /org/vmigrate/Migrate1/domain/<sd_bus_path_encode(uuid)>"
ok '[ -f "$VM_TMP/state/domains/$U1.xml" ]' "the definition is stored as <state-dir>/domains/<uuid>.xml"

mgr DefineXML s "$(vm_domain_xml alpha)"
ok $? "DefineXML without a UUID succeeds" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
P2=$(vm_reply_path "$VM_REPLY")
u2=$(prop "$P2" UUID)
like "$u2" '^"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"$' "a missing UUID is generated (random, version 4)"
u2=${u2//\"/}
is "$P2" "$(vm_domain_path "$u2")" "its path encodes the generated UUID"

mgr ListDomains
is "$VM_REPLY" "ao 2 \"$P2\" \"$P1\"" "ListDomains lists both, sorted by name (alpha before demo)"

# --- look up
mgr GetDomain s demo
is "$(vm_reply_path "$VM_REPLY")" "$P1" "GetDomain by name"
mgr GetDomain s "$U1"
is "$(vm_reply_path "$VM_REPLY")" "$P1" "GetDomain by UUID"
mgr GetDomain s "${U1^^}"
ok '[ "$(vm_reply_path "$VM_REPLY")" = "$P1" ] || [ "$VM_ERROR_NAME" = "$VM_ERROR.NoSuchDomain" ]' \
        "GetDomain with an upper-case UUID finds it or says NoSuchDomain (never anything else)"
vm_expect_error root "GetDomain of an unknown name is NoSuchDomain naming it" \
        "$VM_ERROR.NoSuchDomain" 'nosuch' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s nosuch

# --- properties
is "$(prop "$P1" Name)" '"demo"' "Name"
is "$(prop "$P1" UUID)" "\"$U1\"" "UUID"
is "$(prop "$P1" Backend)" '"test"' "Backend is test"
is "$(prop "$P1" State)" '"shutoff"' "a defined domain is shut off"
is "$(prop "$P1" Persistent)" 'true' "Persistent"
is "$(prop "$P1" Active)" 'false' "not Active"
is "$(prop "$P1" MemoryBytes)" '536870912' "MemoryBytes is 512 MiB"
is "$(prop "$P1" VCPUs)" '2' "VCPUs"
vm_expect_ok root "GetAll on the domain" get-property "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" \
        Name UUID Backend State StateReason Persistent Active MemoryBytes VCPUs
intro=$(busctl --no-pager introspect "$VM_BUS_NAME" "$P1")
like "$intro" $'\n\\.Name +property +s +"demo" +const' "Name is const"
like "$intro" $'\n\\.State +property +s +"shutoff" +emits-change' "State emits change"

vm_expect_ok root "GetManagedObjects lists the domains" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects
like "$VM_REPLY" "^a\\{oa\\{sa\\{sv\\}\\}\\} 2 " "GetManagedObjects has two objects"

# --- state transitions
transition() { # PATH METHOD EXPECTED-STATE [EXPECTED-REASON]
        local p=$1 m=$2 st=$3 reason=${4:-}
        dom "$p" "$m"
        ok $? "$m succeeds" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
        is "$(prop "$p" State)" "\"$st\"" "State is $st after $m (the reply waits for it)"
        [ -n "$reason" ] && is "$(prop "$p" StateReason)" "\"$reason\"" "StateReason is $reason after $m"
        return 0
}
transition "$P1" Start running booted
is "$(prop "$P1" Active)" true "Active after Start"
transition "$P1" Suspend paused user
is "$(prop "$P1" Active)" true "still Active while paused"
transition "$P1" Resume running
transition "$P1" Shutdown shutoff shutdown
is "$(prop "$P1" Active)" false "not Active after Shutdown"
transition "$P1" Start running booted
transition "$P1" Destroy shutoff destroyed

# --- update, XML round trip
xml1=$(vm_json_reply_string call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" GetXML)
ok $? "GetXML works"
printf '%s' "$xml1" | xmllint --noout - 2>/dev/null
ok $? "GetXML returns well-formed XML"
like "$xml1" '<name>demo</name>' "GetXML has the name"
like "$xml1" "<uuid>$U1</uuid>" "GetXML has the UUID"
like "$xml1" '<domain[^>]* type=.test.' "GetXML has the domain type"
mgr DefineXML s "$xml1"
ok $? "GetXML output is accepted by DefineXML" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
is "$(vm_reply_path "$VM_REPLY")" "$P1" "redefining from GetXML updates the same object"
xml2=$(vm_json_reply_string call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" GetXML)
is "$xml2" "$xml1" "GetXML → DefineXML → GetXML is stable"

mgr DefineXML s "$(vm_domain_xml demo "$U1" | sed 's|<memory unit="MiB">512</memory>|<memory unit="GiB">1</memory>|')"
ok $? "DefineXML with the same name and UUID updates the definition" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
is "$(prop "$P1" MemoryBytes)" 1073741824 "MemoryBytes follows the update"

# --- undefine
dom "$P2" Undefine
ok $? "Undefine a shut-off domain" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
vm_expect_error root "GetDomain after Undefine is NoSuchDomain" "$VM_ERROR.NoSuchDomain" 'alpha' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s alpha
ok '[ ! -e "$VM_TMP/state/domains/$u2.xml" ]' "Undefine removes the stored definition"
vm_call_as root get-property "$VM_BUS_NAME" "$P2" "$VM_DOMAIN_IFACE" State
like "$VM_ERROR_NAME" '^org\.freedesktop\.DBus\.Error\.Unknown(Object|Interface|Property|Method)$' \
        "the undefined domain's object is gone"

# --- transient domains
mgr CreateXML s "$(vm_domain_xml transient1 "$U2")"
ok $? "CreateXML succeeds" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
PT=$(vm_reply_path "$VM_REPLY")
is "$PT" "$(vm_domain_path "$U2")" "CreateXML returns the domain's path"
is "$(prop "$PT" State)" '"running"' "a created domain runs when CreateXML replies"
is "$(prop "$PT" Persistent)" false "a created domain is not persistent"
ok '[ ! -e "$VM_TMP/state/domains/$U2.xml" ]' "a transient domain is not stored"
dom "$PT" Destroy
ok $? "Destroy the transient domain" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
vm_expect_error root "a transient domain vanishes when destroyed" "$VM_ERROR.NoSuchDomain" 'transient1' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s transient1
mgr ListDomains
is "$VM_REPLY" "ao 1 \"$P1\"" "ListDomains no longer lists it"

# --- signals (the monitor has seen everything since the first define)
wait_until 5 grep -q '"member":"Lifecycle".*"destroyed"' "$mon" >/dev/null
events=$(vm_lifecycle_events "$mon" | tr '\n' ' ')
diag "Lifecycle signals seen: $events"
for e in defined/added started/booted suspended/paused resumed/unpaused shutdown/finished \
         stopped/shutdown stopped/destroyed defined/updated undefined/removed; do
        like " $events" " $e " "Lifecycle $e was emitted"
done
like "$events" 'defined/added defined/added started/booted suspended/paused resumed/unpaused' \
        "Lifecycle signals come in the order of the operations"
ok "grep '\"member\":\"Lifecycle\"' '$mon' | grep -qF '\"path\":\"$P1\"'" \
        "Lifecycle is emitted on the domain's object path"
pc=$(grep '"member":"PropertiesChanged"' "$mon" | grep -F "\"path\":\"$P1\"")
like "$pc" '"State":\{"type":"s","data":"running"\}' "PropertiesChanged carries State=running"
like "$pc" '"State":\{"type":"s","data":"paused"\}' "PropertiesChanged carries State=paused"
like "$pc" '"State":\{"type":"s","data":"shutoff"\}' "PropertiesChanged carries State=shutoff"
ok "grep '\"member\":\"InterfacesAdded\"' '$mon' | grep -qF '$P1'" "ObjectManager InterfacesAdded for a new domain"
ok "grep '\"member\":\"InterfacesRemoved\"' '$mon' | grep -qF '$P2'" "ObjectManager InterfacesRemoved for an undefined domain"

# --- persistence across restarts
mgr CreateXML s "$(vm_domain_xml transient2 "$U2")"
ok $? "CreateXML another transient domain" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
pid=$(vm_daemon_pid)
status=$(vm_stop_daemon_pid "$pid" TERM)
ok $? "SIGTERM stops the daemon"
is "$status" 0 "with exit status 0"
mgr GetDomain s demo
ok $? "after a restart (re-activation) the persistent domain is still there" ||
        diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
is "$(vm_reply_path "$VM_REPLY")" "$P1" "at the same path"
isnt "$(vm_daemon_pid)" "$pid" "(a new daemon answered)"
is "$(prop "$P1" MemoryBytes)" 1073741824 "with its updated definition"
is "$(prop "$P1" State)" '"shutoff"' "shut off"
vm_expect_error root "the running transient domain did not survive the restart" "$VM_ERROR.NoSuchDomain" 'transient2' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s transient2
mgr ListDomains
is "$VM_REPLY" "ao 1 \"$P1\"" "ListDomains after the restart lists only the persistent domain"

# --- the project's own client against the same service, where it is built
ctl=$VMIGRATE_BUILD_ROOT/client/vmigratectl
if [ -x "$ctl" ]; then
        out=$("$ctl" list --all 2>&1)
        ok $? "vmigratectl list --all works" || diag "$out"
        like "$out" 'demo' "vmigratectl list --all shows domain demo"
        out=$("$ctl" start nosuch-domain 2>&1)
        isnt "$?" 0 "vmigratectl start of an unknown domain fails"
        like "$out" 'nosuch-domain' "  ... naming the domain"
        out=$("$ctl" start demo 2>&1)
        ok $? "vmigratectl start demo works" || diag "$out"
        is "$(prop "$P1" State)" '"running"' "  ... demo runs"
        out=$(as_user vmtest-user "$ctl" destroy demo 2>&1)
        isnt "$?" 0 "vmigratectl destroy as vmtest-user is refused"
        like "$out" 'org\.vmigrate\.migrate1\.manage-domains|[Aa]ccess|[Aa]uthoriz|[Pp]ermission' "  ... saying it is not authorized"
        is "$(prop "$P1" State)" '"running"' "  ... demo still runs"
        out=$("$ctl" list --postcopy-resume 2>&1)
        is "$?" 2 "vmigratectl list --postcopy-resume is a usage error (status 2)"
        is "$out" "vmigratectl: --postcopy-resume only applies to 'migrate', not to 'list'" "  ... naming the option"
        out=$("$ctl" list --timeout-suspend --postcopy 2>&1)
        like "$out" "^vmigratectl: --timeout-suspend only applies to 'migrate'" "  ... the first one given"
else
        # The build always makes it: its absence is a build defect.
        ok 1 "vmigratectl is built ($ctl)"
fi

vm_finish
