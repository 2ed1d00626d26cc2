#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A polkit answer is used only for the question it answers. vmigrated asks
# polkit asynchronously: the call waits, other calls run, and when polkit
# answers the call is dispatched again and its handler builds the details
# afresh. If the domain was undefined and another one defined under the
# same UUID (so the same object path) meanwhile, the answer was about
# another domain: vmigrated must ask again, never reuse it.
#
# A test rule lets vmtest-user Start the domain "rd-alpha" only, writes
# down the domain of every such check, and, when the test asks for it,
# holds polkitd's answer (polkit.spawn of a script that waits for a file)
# so that the test can swap the domain while the check is pending.
. "$(dirname "$0")/lib.sh"

DENIED=org.freedesktop.DBus.Error.AccessDenied
U_RD=33333333-4444-4555-8666-777777777777
NOI=--allow-interactive-authorization=no

vm_setup 0

# polkitd (its own user) writes into $SYNC; the test creates "hold" to
# have the next check held, the rule creates "held" while it holds and
# waits for "go" (7.5 s at most: polkitd times spawned helpers out).
SYNC=$VM_TMP/pk-sync
mkdir "$SYNC" && chmod 0777 "$SYNC" || bail_out "cannot create $SYNC"
cat >"$VM_TMP/polkit-rules/30-redispatch.rules" <<EOF
polkit.addRule(function(action, subject) {
        if (action.id != "org.vmigrate.migrate1.manage-domains" ||
            subject.user != "vmtest-user" || action.lookup("operation") != "Start")
                return polkit.Result.NOT_HANDLED;
        try {
                polkit.spawn(["/bin/sh", "-c",
                        'echo "\$2" >>"\$1/asked"; [ -e "\$1/hold" ] || exit 0; rm -f "\$1/hold"; ' +
                        ': >"\$1/held"; n=0; while [ ! -e "\$1/go" ] && [ \$n -lt 150 ]; do ' +
                        'sleep 0.05; n=\$((n + 1)); done; rm -f "\$1/held" "\$1/go"',
                        "sh", "$SYNC", action.lookup("domain")]);
        } catch (e) {
                polkit.log("redispatch test rule: " + e);
        }
        if (action.lookup("domain") == "rd-alpha")
                return polkit.Result.YES;
        return polkit.Result.NOT_HANDLED;
});
EOF
chmod 0644 "$VM_TMP/polkit-rules/30-redispatch.rules"
# polkitd reads its rules when it starts: restart it with this one.
vm_stop_polkit
vm_start_polkit

PATH_RD=$(vm_domain_path "$U_RD")
state() { vm_domain_state "$PATH_RD"; }
name() { vm_get_prop "$PATH_RD" "$VM_DOMAIN_IFACE" Name; }
asked() { tr '\n' ' ' <"$SYNC/asked" 2>/dev/null | sed 's/ $//'; }

# start_held: vmtest-user calls Start on $PATH_RD in the background with
# the next check held; returns once polkit holds it.
start_held() {
        rm -f "$SYNC/asked" "$SYNC/result"
        : >"$SYNC/hold"
        (
                vm_call_as vmtest-user $NOI call "$VM_BUS_NAME" "$PATH_RD" "$VM_DOMAIN_IFACE" Start
                echo "$? $VM_ERROR_NAME $VM_ERROR_MESSAGE" >"$SYNC/result.tmp"
                mv "$SYNC/result.tmp" "$SYNC/result"
        ) &
        BG=$!
        wait_until 10 test -e "$SYNC/held"
}

# release: lets polkit answer; waits for the call's result in RESULT.
release() {
        : >"$SYNC/go"
        wait "$BG"
        RESULT=$(cat "$SYNC/result" 2>/dev/null)
}

# swap_to NAME: as root, replaces the domain at $PATH_RD by one named NAME
# with the same UUID (a domain cannot be renamed by DefineXML).
swap_to() {
        vm_call "$PATH_RD" "$VM_DOMAIN_IFACE" Undefine >/dev/null &&
                vm_define "$1" "$U_RD" >/dev/null
}

# --- the held answer is used when nothing changed
is "$(vm_define rd-alpha "$U_RD")" "$PATH_RD" "root defines rd-alpha"
start_held
ok $? "vmtest-user: Start rd-alpha, polkit's answer held"
is "$(state)" '"shutoff"' "  ... nothing happens while polkit has not answered"
release
like "$RESULT" '^0 ' "  ... once polkit answers, Start is granted"
is "$(state)" '"running"' "  ... and rd-alpha runs"
is "$(asked)" "rd-alpha" "  ... polkit was asked once, about rd-alpha"
vm_call "$PATH_RD" "$VM_DOMAIN_IFACE" Destroy >/dev/null
ok $? "root destroys rd-alpha"

# --- a grant for rd-alpha is not used for rd-beta
start_held
ok $? "vmtest-user: Start rd-alpha, polkit's answer held"
swap_to rd-beta
ok $? "  ... meanwhile root undefines rd-alpha and defines rd-beta with the same UUID"
is "$(name)" '"rd-beta"' "  ... the object path now names rd-beta"
release
like "$RESULT" "^1 $DENIED " "  ... the grant for rd-alpha is not used: AccessDenied"
like "$RESULT" "org.vmigrate.migrate1.manage-domains" "  ... naming the action"
is "$(asked)" "rd-alpha rd-beta" "  ... polkit was asked again, about rd-beta"
is "$(state)" '"shutoff"' "  ... and rd-beta did not start"

# --- nor is a denial for rd-beta used for rd-alpha
start_held
ok $? "vmtest-user: Start rd-beta, polkit's answer held"
swap_to rd-alpha
ok $? "  ... meanwhile root undefines rd-beta and defines rd-alpha with the same UUID"
release
like "$RESULT" '^0 ' "  ... the denial for rd-beta is not used: polkit allows rd-alpha"
is "$(asked)" "rd-beta rd-alpha" "  ... polkit was asked again, about rd-alpha"
is "$(state)" '"running"' "  ... and rd-alpha runs"
vm_call "$PATH_RD" "$VM_DOMAIN_IFACE" Destroy >/dev/null
ok $? "root destroys rd-alpha"

vm_finish
