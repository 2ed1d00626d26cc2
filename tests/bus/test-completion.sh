#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigratectl's bash completion against a running vmigrated (test backend):
# 'list --names' and 'policies --names' give the names one per line,
# spaces and all; the completion offers the domains' names (quoted for the
# shell) and the host's policies, for root and for a user polkit gives
# nothing, on the system bus or on the one --host names; and its fixed
# value lists are those the service's GetBackends has. The rest of the
# completion, without a service: tests/docs/test-completion.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../docs/lib-completion.sh"

vm_setup 0
comp_load || skip_all "bash-completion is not installed (Debian package bash-completion)"
ctl=$VMIGRATE_BUILD_ROOT/client/vmigratectl
[ -x "$ctl" ] || bail_out "$ctl not built"

pdir=$VM_TMP/policies.d
mkdir -p "$pdir"
printf '[Policy]\nDescription=Pauses only\nSteps=downtime 150\nFinalAction=abort\n' >"$pdir/gentle.policy"
_vm_write_service_file "--state-dir=$VM_TMP/state --runtime-dir=$VM_TMP/run --idle-timeout=0 --log-level=debug --policies-dir=$pdir"

mgr() { vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" "$@"; }
for name in alpha "web 1" "ünïcode" beta; do
        mgr DefineXML s "$(vm_domain_xml "$name")"
        ok $? "DefineXML '$name'" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
done
out=$("$ctl" start alpha 2>&1)
ok $? "alpha runs" || diag "$out"

# ---- the machine-readable lists ----

out=$("$ctl" list --all --names 2>&1)
ok $? "vmigratectl list --all --names succeeds" || diag "$out"
is "$out" $'alpha\nbeta\nweb 1\nünïcode' "list --all --names: every name, one per line, sorted, spaces kept"
is "$("$ctl" list --names 2>&1)" "alpha" "list --names: the active ones only"
is "$("$ctl" -q list --names 2>&1)" "alpha" "... nothing more with --quiet"
out=$("$ctl" list --names --json 2>&1)
is "$?|$out" "2|vmigratectl: --names and --json ask for two different outputs; give one" \
        "--names with --json is a usage error"
out=$("$ctl" status alpha --names 2>&1)
is "$?|$out" "2|vmigratectl: --names only applies to 'list' and 'policies', not to 'status'" \
        "--names with another command is a usage error"
is "$("$ctl" policies --names 2>&1)" $'default\ngentle\nminimal-downtime\npostcopy\nsuspend-workload-if-needed' \
        "policies --names: the built-in ones and the admin's, sorted"
json_names=$("$ctl" --json policies | /usr/bin/python3 -c 'import json, sys; print("\n".join(p[0] for p in json.load(sys.stdin)))')
is "$("$ctl" policies --names)" "$json_names" "... the same as policies --json"

# ---- the completion ----

comp "$ctl" "vmigratectl start "
is "$(comp_reply)" "$(printf '%q\n' alpha beta 'web 1' 'ünïcode' | LC_ALL=C sort)" \
        "a DOMAIN offers every domain, quoted for the shell"
is "$COMP_ERR" "" "... and writes nothing on the terminal"
comp "$ctl" "vmigratectl start w"
is "$(comp_reply)" 'web\ 1' "a prefix picks the name with a space"
comp "$ctl" "vmigratectl migrate --live ü"
is "$(comp_reply)" "$(printf '%q' 'ünïcode')" "migrate's DOMAIN, after an option, by a UTF-8 prefix"
comp "$ctl" "vmigratectl migrate --policy="
is "$(comp_reply)" "$("$ctl" policies --names)" "--policy= offers the host's policies, the admin's gentle too"

# A user polkit gives nothing may still read: completion works for them.
out=$(as_user vmtest-user bash -c '. "$1" && comp_load || exit 9; comp "$2" "vmigratectl dumpxml b"; printf "%s\n" "${COMPREPLY[@]}"' \
        sh "$VMIGRATE_SOURCE_ROOT/tests/docs/lib-completion.sh" "$ctl" 2>&1)
is "$out" "beta" "an unprivileged user gets the names too"

# The bus --host names, not the system bus.
bus_path=${VM_BUS_ADDRESS#unix:path=}
bus_path=${bus_path%%,*}
(
        export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$VM_TMP/no-such-bus
        comp "$ctl" "vmigratectl start "
        [ "$(comp_reply)" = "" ] || exit 1
        comp "$ctl" "vmigratectl --host unix://$bus_path start a"
        [ "$(comp_reply)" = "alpha" ] || exit 2
)
is "$?" 0 "with --host unix://..., the names of that bus (none from the absent system bus)"

# The values the completion knows by heart are the service's.
backends=$("$ctl" --json backends)
for option in compression copy-storage zero-page-detection timeout-action; do
        values=$(/usr/bin/python3 -c '
import json, sys
o = json.load(sys.stdin)["test"]["migration-options"][sys.argv[1]]
print("\n".join(sorted(o["values"])))' "$option" <<<"$backends")
        comp "$ctl" "vmigratectl migrate --$option="
        is "$(comp_reply)" "$values" "--$option= offers the values GetBackends lists"
done

vm_finish
