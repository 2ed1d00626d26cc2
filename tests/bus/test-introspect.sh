#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Drift between interfaces/*.xml (the public contract) and what the running
# daemon answers to Introspect, on the manager object and on a domain
# object, compared by tools/check-introspection.py.
. "$(dirname "$0")/lib.sh"

vm_setup 0

check=$VMIGRATE_SOURCE_ROOT/tools/check-introspection.py
ifaces=$VMIGRATE_SOURCE_ROOT/interfaces

ok '[ -r "$check" ]' "tools/check-introspection.py exists"
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Manager.xml" ]' "interfaces/org.vmigrate.Migrate1.Manager.xml exists"
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Domain.xml" ]' "interfaces/org.vmigrate.Migrate1.Domain.xml exists"

busctl --no-pager introspect --xml-interface "$VM_BUS_NAME" "$VM_MANAGER_PATH" >"$VM_TMP/live-manager.xml"
ok $? "introspect the manager object"
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml introspected)"
ok $? "define a domain" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
dom=$(vm_reply_path "$VM_REPLY")
busctl --no-pager introspect --xml-interface "$VM_BUS_NAME" "$dom" >"$VM_TMP/live-domain.xml"
ok $? "introspect the domain object $dom"

# The manager node lists the domain as a child (the node enumerator).
like "$(cat "$VM_TMP/live-manager.xml")" "<node name=\"domain\"" "the manager node has a child node 'domain'"
child=$(busctl --no-pager introspect --xml-interface "$VM_BUS_NAME" "$VM_MANAGER_PATH/domain")
like "$child" "<node name=\"${dom##*/}\"" "the domain object is enumerated under /org/vmigrate/Migrate1/domain"

out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-manager.xml" "$ifaces/org.vmigrate.Migrate1.Manager.xml" 2>&1)
ok $? "the live manager object matches interfaces/org.vmigrate.Migrate1.Manager.xml" || diag "$out"
out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-domain.xml" "$ifaces/org.vmigrate.Migrate1.Domain.xml" 2>&1)
ok $? "the live domain object matches interfaces/org.vmigrate.Migrate1.Domain.xml" || diag "$out"

# The checker must be able to fail: a contract with an extra method does
# not match the live object.
sed 's|<method name="ListDomains">|<method name="NoSuchMethodInDaemon"/><method name="ListDomains">|' \
        "$ifaces/org.vmigrate.Migrate1.Manager.xml" >"$VM_TMP/drifted.xml"
out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-manager.xml" "$VM_TMP/drifted.xml" 2>&1)
is "$?" 1 "a drifted contract is reported (exit status 1)"
like "$out" 'NoSuchMethodInDaemon' "  ... naming the difference"

vm_finish
