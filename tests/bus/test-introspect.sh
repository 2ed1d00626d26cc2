#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Drift between interfaces/*.xml (the public contract) and what the running
# daemon answers to Introspect, on the manager object (Manager, Incoming), on
# a domain object and on a job object, compared by
# tools/check-introspection.py.
. "$(dirname "$0")/lib.sh"

vm_setup 0

check=$VMIGRATE_SOURCE_ROOT/tools/check-introspection.py
ifaces=$VMIGRATE_SOURCE_ROOT/interfaces

ok '[ -r "$check" ]' "tools/check-introspection.py exists"
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Manager.xml" ]' "interfaces/org.vmigrate.Migrate1.Manager.xml exists"
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Domain.xml" ]' "interfaces/org.vmigrate.Migrate1.Domain.xml exists"
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Job.xml" ]' "interfaces/org.vmigrate.Migrate1.Job.xml exists"
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Incoming.xml" ]' "interfaces/org.vmigrate.Migrate1.Incoming.xml exists"

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

out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-manager.xml" "$ifaces/org.vmigrate.Migrate1.Incoming.xml" 2>&1)
ok $? "the live manager object matches interfaces/org.vmigrate.Migrate1.Incoming.xml" || diag "$out"

# A job object: a running test domain migrated to this very bus fails
# (InvalidDestination: the destination is this host) but only once the job
# exists, and the failed job lingers for 60 s.
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start
ok $? "start the domain" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
vm_call_as root call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "unix://$VM_TMP/bus/system_bus_socket" 0
is "$VM_ERROR_NAME" "$VM_ERROR.InvalidDestination" "Migrate to this very host fails with InvalidDestination"
job=$(busctl --no-pager call "$VM_BUS_NAME" "$VM_MANAGER_PATH" org.freedesktop.DBus.ObjectManager \
        GetManagedObjects | grep -o '"/org/vmigrate/Migrate1/job/[0-9]*"' | head -n1 | tr -d '"')
like "$job" '^/org/vmigrate/Migrate1/job/[0-9]+$' "the failed job lingers on the bus"
busctl --no-pager introspect --xml-interface "$VM_BUS_NAME" "${job:-/org/vmigrate/Migrate1/job/none}" >"$VM_TMP/live-job.xml"
ok $? "introspect the job object $job"
like "$(cat "$VM_TMP/live-job.xml")" 'interface name="org.vmigrate.Migrate1.Job"' "  ... it has the Job interface"
out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-job.xml" "$ifaces/org.vmigrate.Migrate1.Job.xml" 2>&1)
ok $? "the live job object matches interfaces/org.vmigrate.Migrate1.Job.xml" || diag "$out"

# An evacuation object: the only destination is this very host, so the
# running domain cannot be placed; the ended evacuation stays on the bus.
ok '[ -r "$ifaces/org.vmigrate.Migrate1.Evacuation.xml" ]' "interfaces/org.vmigrate.Migrate1.Evacuation.xml exists"
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" Evacuate 'asa{sv}' 1 \
        "unix://$VM_TMP/bus/system_bus_socket" 0
ok $? "Evacuate to this very host is accepted" || diag "$VM_ERROR_NAME: $VM_ERROR_MESSAGE"
evac=$(vm_reply_path "$VM_REPLY")
like "$evac" '^/org/vmigrate/Migrate1/evacuation/[0-9]+$' "  ... it answers an evacuation object"
busctl --no-pager introspect --xml-interface "$VM_BUS_NAME" "${evac:-/org/vmigrate/Migrate1/evacuation/none}" \
        >"$VM_TMP/live-evacuation.xml"
ok $? "introspect the evacuation object $evac"
out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-evacuation.xml" "$ifaces/org.vmigrate.Migrate1.Evacuation.xml" 2>&1)
ok $? "the live evacuation object matches interfaces/org.vmigrate.Migrate1.Evacuation.xml" || diag "$out"

# The checker must be able to fail: a contract with an extra method does
# not match the live object.
sed 's|<method name="ListDomains">|<method name="NoSuchMethodInDaemon"/><method name="ListDomains">|' \
        "$ifaces/org.vmigrate.Migrate1.Manager.xml" >"$VM_TMP/drifted.xml"
out=$(/usr/bin/python3 "$check" --live "$VM_TMP/live-manager.xml" "$VM_TMP/drifted.xml" 2>&1)
is "$?" 1 "a drifted contract is reported (exit status 1)"
like "$out" 'NoSuchMethodInDaemon' "  ... naming the difference"

vm_finish
