#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Authorization of every mutating method through the real polkitd with the
# project's actions and the example rules (group vmigrate may do
# everything): root is never asked, vmtest-admin (in group vmigrate) is
# allowed, vmtest-user is denied or challenged; read-only members are open
# to all; polkit gone means denied for everyone but root. A denied call must
# change nothing. Rules can match on the details vmigrated passes, the
# destination of Migrate and DryRun and the details of Incoming.* included.
. "$(dirname "$0")/lib.sh"

ACTION=org.vmigrate.migrate1.manage-domains
DENIED=org.freedesktop.DBus.Error.AccessDenied
CHALLENGE=org.freedesktop.DBus.Error.InteractiveAuthorizationRequired

U_PK=11111111-2222-4333-8444-555555555555
U_DELEG=22222222-3333-4444-8555-666666666666
U_MV=44444444-5555-4666-8777-888888888888
U_IN=55555555-6666-4777-8888-999999999999
IN_DEST=unix:///run/vmtest-in/bus

# Rules only for this test, before the example: vmtest-user may Start the
# domain "pk-delegated" (matched by name) and Suspend it (matched by UUID)
# and nothing else. This checks the details the daemon passes to polkit.
VM_EXTRA_RULES='
polkit.addRule(function(action, subject) {
        if (action.id == "org.vmigrate.migrate1.manage-domains" &&
            subject.user == "vmtest-user") {
                if (action.lookup("domain") == "pk-delegated" &&
                    action.lookup("operation") == "Start")
                        return polkit.Result.YES;
                if (action.lookup("uuid") == "'$U_DELEG'" &&
                    action.lookup("operation") == "Suspend")
                        return polkit.Result.YES;
        }
});

// The example of 50-vmigrate.rules.example and README.md, for the group
// vmtest-movers (vmtest-user is in it): migrate, dry-run and control-job
// to host-b only.
polkit.addRule(function(action, subject) {
        if (["org.vmigrate.migrate1.migrate",
             "org.vmigrate.migrate1.dry-run",
             "org.vmigrate.migrate1.control-job"].indexOf(action.id) >= 0 &&
            action.lookup("destination") == "ssh://root@host-b" &&
            subject.isInGroup("vmtest-movers"))
                return polkit.Result.YES;
});

// Incoming.*: vmtest-user may bring the domain pk-in here, from a source
// that connected to '$IN_DEST', with CheckPrepare and Finish.
polkit.addRule(function(action, subject) {
        if (action.id == "org.vmigrate.migrate1.migrate-incoming" &&
            subject.user == "vmtest-user" &&
            action.lookup("domain") == "pk-in" &&
            action.lookup("uuid") == "'$U_IN'" &&
            action.lookup("destination") == "'$IN_DEST'" &&
            ["CheckPrepare", "Finish"].indexOf(action.lookup("operation")) >= 0)
                return polkit.Result.YES;
});'
vm_setup 0

# vmtest-user is in the group the destination rule names (created here, under
# lib.sh's lock for test users, since test programs run in parallel).
(
        flock -w 60 9 || exit 1
        getent group vmtest-movers >/dev/null || groupadd --system vmtest-movers || exit 1
        id -nG vmtest-user | grep -qw vmtest-movers || usermod -a -G vmtest-movers vmtest-user
) 9>/run/lock/vmigrate-test-users.lock 2>&1 || bail_out "cannot put vmtest-user in group vmtest-movers"

# DryRun connects to its destination: an ssh that fails at once stands in
# for the real one, which would look for a host-b that does not exist.
mkdir "$VM_TMP/fake-ssh" &&
        printf '#!/bin/sh\necho "ssh: fake ssh of the bus tests" >&2\nexit 255\n' >"$VM_TMP/fake-ssh/ssh" &&
        chmod 0755 "$VM_TMP/fake-ssh" "$VM_TMP/fake-ssh/ssh" || bail_out "cannot write the fake ssh"
vm_set_daemon_env PATH="$VM_TMP/fake-ssh:$PATH"

# busctl allows interactive authorization by default: say which each time.
NOI=--allow-interactive-authorization=no
YESI=--allow-interactive-authorization=yes

mgr_as() { local u=$1; shift; vm_call_as "$u" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" "$@"; }
dom_root() { local p=$1; shift; vm_call_as root call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" "$@" ||
        diag "setup call $* failed: $VM_ERROR_NAME: $VM_ERROR_MESSAGE"; }
state() { vm_domain_state "$1"; }

# root defines the domain the unprivileged calls are aimed at
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml pk "$U_PK")"
ok $? "root defines domain pk" || bail_out "cannot define a domain as root: $VM_ERROR_NAME: $VM_ERROR_MESSAGE"
PK=$(vm_reply_path "$VM_REPLY")

# --- read-only members are open to everyone
for u in vmtest-user vmtest-admin; do
        vm_expect_ok "$u" "$u: ListDomains" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
        is "$VM_REPLY" "ao 1 \"$PK\"" "$u sees the domain in ListDomains"
        vm_expect_ok "$u" "$u: GetDomain" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s pk
        vm_expect_ok "$u" "$u: GetXML" $NOI call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" GetXML
        like "$VM_REPLY" 'pk' "$u gets the XML"
        vm_expect_ok "$u" "$u: domain properties" $NOI get-property "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Name State UUID
        vm_expect_ok "$u" "$u: Properties.GetAll" $NOI call "$VM_BUS_NAME" "$PK" org.freedesktop.DBus.Properties GetAll s "$VM_DOMAIN_IFACE"
        vm_expect_ok "$u" "$u: GetManagedObjects" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects
        vm_expect_ok "$u" "$u: GetCapabilities" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetCapabilities
        vm_expect_ok "$u" "$u: GetBackends" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetBackends
        vm_expect_ok "$u" "$u: manager properties" $NOI get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Version HostUUID
done

# --- vmtest-user is denied every mutating method, without and with
# interactive authorization, and nothing changes.
# expect_denied MODE DESC EXPECTED-STATE BUSCTL-CALL-ARGS... (MODE no|yes)
expect_denied() {
        local mode=$1 desc=$2 st=$3 name
        shift 3
        if [ "$mode" = yes ]; then name=$CHALLENGE; else name=$DENIED; fi
        vm_expect_error vmtest-user "vmtest-user: $desc → ${name##*.}" "$name" "$ACTION" \
                --allow-interactive-authorization="$mode" "$@"
        is "$(state "$PK")" "\"$st\"" "  ... and pk is still $st"
}

for mode in no yes; do
        expect_denied $mode "DefineXML" shutoff \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml pk-new)"
        vm_expect_error root "  ... and no domain pk-new was defined" "$VM_ERROR.NoSuchDomain" . \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s pk-new
        expect_denied $mode "DefineXML updating pk" shutoff \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s \
                "$(vm_domain_xml pk "$U_PK" | sed 's|<vcpu>2</vcpu>|<vcpu>4</vcpu>|')"
        is "$(vm_get_prop "$PK" "$VM_DOMAIN_IFACE" VCPUs)" 2 "  ... and pk's definition is unchanged"
        expect_denied $mode "CreateXML" shutoff \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" CreateXML s "$(vm_domain_xml pk-tr)"
        vm_expect_error root "  ... and no domain pk-tr was created" "$VM_ERROR.NoSuchDomain" . \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s pk-tr
        expect_denied $mode "Start" shutoff call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Start
        dom_root "$PK" Start
        expect_denied $mode "Suspend" running call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Suspend
        expect_denied $mode "Shutdown" running call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Shutdown
        expect_denied $mode "Destroy" running call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Destroy
        dom_root "$PK" Suspend
        expect_denied $mode "Resume" paused call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Resume
        dom_root "$PK" Destroy
        expect_denied $mode "Undefine" shutoff call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Undefine
        vm_expect_ok root "  ... and pk is still defined" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s pk
done

# --- root and vmtest-admin may do everything
# full_cycle USER NAME: every mutating method, each checked by its effect.
full_cycle() {
        local u=$1 n=$2 p
        vm_expect_ok "$u" "$u: DefineXML" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml "$n")"
        p=$(vm_reply_path "$VM_REPLY")
        is "$(state "$p")" '"shutoff"' "  ... $n is defined, shut off"
        vm_expect_ok "$u" "$u: Start" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Start
        is "$(state "$p")" '"running"' "  ... $n runs"
        vm_expect_ok "$u" "$u: Suspend" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Suspend
        is "$(state "$p")" '"paused"' "  ... $n is paused"
        vm_expect_ok "$u" "$u: Resume" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Resume
        is "$(state "$p")" '"running"' "  ... $n runs again"
        vm_expect_ok "$u" "$u: Shutdown" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Shutdown
        is "$(state "$p")" '"shutoff"' "  ... $n is shut off"
        vm_expect_ok "$u" "$u: Start again" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Start
        vm_expect_ok "$u" "$u: Destroy" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Destroy
        is "$(state "$p")" '"shutoff"' "  ... $n is shut off"
        vm_expect_ok "$u" "$u: Undefine" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Undefine
        vm_expect_error root "  ... $n is gone" "$VM_ERROR.NoSuchDomain" . \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s "$n"
        vm_expect_ok "$u" "$u: CreateXML" $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" CreateXML s "$(vm_domain_xml "$n-tr")"
        p=$(vm_reply_path "$VM_REPLY")
        is "$(state "$p")" '"running"' "  ... $n-tr runs"
        vm_expect_ok "$u" "$u: Destroy transient" $NOI call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Destroy
}
full_cycle root pk-root
full_cycle vmtest-admin pk-admin

# --- rules can match on the details the daemon passes
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml pk-delegated "$U_DELEG")"
ok $? "root defines pk-delegated"
PD=$(vm_reply_path "$VM_REPLY")
vm_expect_ok vmtest-user "a rule on details domain+operation lets vmtest-user Start pk-delegated" \
        $NOI call "$VM_BUS_NAME" "$PD" "$VM_DOMAIN_IFACE" Start
is "$(state "$PD")" '"running"' "  ... it runs"
vm_expect_ok vmtest-user "a rule on details uuid+operation lets vmtest-user Suspend pk-delegated" \
        $NOI call "$VM_BUS_NAME" "$PD" "$VM_DOMAIN_IFACE" Suspend
is "$(state "$PD")" '"paused"' "  ... it is paused"
vm_expect_error vmtest-user "the same user may not Resume it (operation not in the rule)" "$DENIED" "$ACTION" \
        $NOI call "$VM_BUS_NAME" "$PD" "$VM_DOMAIN_IFACE" Resume
vm_expect_error vmtest-user "nor Start another domain (domain not in the rule)" "$DENIED" "$ACTION" \
        $NOI call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Start
is "$(state "$PK")" '"shutoff"' "  ... pk is still shut off"

# --- a rule on the destination: Migrate and DryRun alike, with the
# destination in its canonical form
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml pk-mv "$U_MV")"
ok $? "root defines pk-mv"
PM=$(vm_reply_path "$VM_REPLY")
MIGRATE_ACTION=org.vmigrate.migrate1.migrate
DRYRUN_ACTION=org.vmigrate.migrate1.dry-run
# Allowed, Migrate goes on to the domain's state: pk-mv is shut off.
for dest in ssh://root@host-b host-b SSH://root@HOST-B/; do
        vm_expect_error vmtest-user "vmtest-movers may Migrate to $dest (= ssh://root@host-b): past polkit" \
                "$VM_ERROR.InvalidState" . $NOI call "$VM_BUS_NAME" "$PM" "$VM_DOMAIN_IFACE" Migrate sa{sv} "$dest" 0
done
for dest in ssh://root@host-c ssh://host-b ssh://root@host-b:2222; do
        vm_expect_error vmtest-user "vmtest-movers may not Migrate to $dest" "$DENIED" "$MIGRATE_ACTION" \
                $NOI call "$VM_BUS_NAME" "$PM" "$VM_DOMAIN_IFACE" Migrate sa{sv} "$dest" 0
done
vm_expect_ok vmtest-user "vmtest-movers may DryRun to ssh://root@host-b" \
        $NOI call "$VM_BUS_NAME" "$PM" "$VM_DOMAIN_IFACE" DryRun sa{sv} ssh://root@host-b 0
like "$VM_REPLY" '^ba\(sss\) false .*"destination\.reachable"' "  ... and gets its findings (host-b is not there)"
vm_expect_ok vmtest-user "vmtest-movers may DryRun to host-b (= ssh://root@host-b)" \
        $NOI call "$VM_BUS_NAME" "$PM" "$VM_DOMAIN_IFACE" DryRun sa{sv} host-b 0
vm_expect_error vmtest-user "vmtest-movers may not DryRun to ssh://root@host-c" "$DENIED" "$DRYRUN_ACTION" \
        $NOI call "$VM_BUS_NAME" "$PM" "$VM_DOMAIN_IFACE" DryRun sa{sv} ssh://root@host-c 0
vm_expect_error vmtest-user "the destination rule does not let vmtest-movers Start pk-mv" "$DENIED" "$ACTION" \
        $NOI call "$VM_BUS_NAME" "$PM" "$VM_DOMAIN_IFACE" Start
is "$(state "$PM")" '"shutoff"' "  ... pk-mv is still shut off"

# --- Incoming.*: the domain (from the cookie's domain-xml, or its uuid and
# the domain here), the operation and where the source connected
IN_XML=$(vm_domain_xml pk-in "$U_IN")
SRC_UUID=66666666-7777-4888-8999-aaaaaaaaaaaa
# incoming_as DESC EXPECTED-ERROR METHOD COOKIE-ENTRIES...: vmtest-user calls
# Incoming.METHOD; EXPECTED-ERROR "" means anything but AccessDenied (the
# core may refuse the cookie after authorization).
incoming_as() {
        local desc=$1 expected=$2 method=$3 n
        shift 3
        n=$(($# / 3 + 3))
        vm_call_as vmtest-user $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" org.vmigrate.Migrate1.Incoming \
                "$method" a{sv} "$n" version u 1 host-uuid s "$SRC_UUID" hostname s vmtest-source "$@"
        if [ -z "$expected" ]; then
                isnt "$VM_ERROR_NAME" "$DENIED" "$desc" || diag "  $VM_ERROR_MESSAGE"
                diag "  (the core: ${VM_ERROR_NAME:-no error}${VM_ERROR_MESSAGE:+: $VM_ERROR_MESSAGE})"
        else
                is "$VM_ERROR_NAME" "$expected" "$desc" || diag "  $VM_ERROR_MESSAGE"
        fi
}
incoming_as "CheckPrepare of pk-in from $IN_DEST: past polkit" "" CheckPrepare \
        domain-xml s "$IN_XML" destination s "$IN_DEST" options a{sv} 0 backend a{sv} 0
incoming_as "CheckPrepare of pk-in from another destination: denied" "$DENIED" CheckPrepare \
        domain-xml s "$IN_XML" destination s unix:///run/vmtest-other/bus options a{sv} 0 backend a{sv} 0
incoming_as "CheckPrepare of pk-in without a destination (an older source): denied" "$DENIED" CheckPrepare \
        domain-xml s "$IN_XML" options a{sv} 0 backend a{sv} 0
incoming_as "CheckPrepare of another domain: denied" "$DENIED" CheckPrepare \
        domain-xml s "$(vm_domain_xml pk-other "$U_IN")" destination s "$IN_DEST" options a{sv} 0 backend a{sv} 0
incoming_as "CheckPrepare of pk-in under another UUID: denied" "$DENIED" CheckPrepare \
        domain-xml s "$(vm_domain_xml pk-in)" destination s "$IN_DEST" options a{sv} 0 backend a{sv} 0
incoming_as "CheckPrepare with a domain-xml that does not parse: denied" "$DENIED" CheckPrepare \
        domain-xml s "<domain><name>pk-in</name>" destination s "$IN_DEST" options a{sv} 0 backend a{sv} 0
incoming_as "Prepare of pk-in (not in the rule): denied" "$DENIED" Prepare \
        domain-xml s "$IN_XML" destination s "$IN_DEST" options a{sv} 0 backend a{sv} 0
incoming_as "Finish of a UUID no domain here has: denied" "$DENIED" Finish \
        uuid s "$U_IN" destination s "$IN_DEST"
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$IN_XML"
ok $? "root defines pk-in"
incoming_as "Finish of pk-in (the domain here with that UUID): past polkit" "" Finish \
        uuid s "$U_IN" destination s "$IN_DEST"
incoming_as "Finish of pk-in, its UUID in capitals: past polkit" "" Finish \
        uuid s "${U_IN^^}" destination s "$IN_DEST"
incoming_as "Pause of pk-in (not in the rule): denied" "$DENIED" Pause \
        uuid s "$U_IN" destination s "$IN_DEST"

# --- without polkit: everyone but root is denied
vm_stop_polkit
ok 0 "polkitd stopped"
vm_expect_error vmtest-admin "without polkit vmtest-admin is denied Start" "$DENIED" . \
        $NOI --timeout=20 call "$VM_BUS_NAME" "$VM_MANAGER_PATH/domain/$(vm_path_encode "$U_PK")" "$VM_DOMAIN_IFACE" Start
is "$(state "$PK")" '"shutoff"' "  ... pk is still shut off"
vm_expect_error vmtest-admin "without polkit vmtest-admin is denied DefineXML" "$DENIED" . \
        $NOI --timeout=20 call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml pk-nopolkit)"
vm_expect_error vmtest-user "without polkit vmtest-user is denied Start even when interactive" "$DENIED" . \
        $YESI --timeout=20 call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Start
vm_expect_ok vmtest-user "without polkit read-only calls still work" \
        $NOI call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
vm_expect_ok root "without polkit root may Start" call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Start
is "$(state "$PK")" '"running"' "  ... pk runs"
vm_expect_ok root "without polkit root may Destroy" call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Destroy

# --- and when polkit comes back, it is asked again
vm_start_polkit
vm_expect_ok vmtest-admin "polkit restarted: vmtest-admin may Start again" \
        $NOI call "$VM_BUS_NAME" "$PK" "$VM_DOMAIN_IFACE" Start
is "$(state "$PK")" '"running"' "  ... pk runs"

vm_finish
