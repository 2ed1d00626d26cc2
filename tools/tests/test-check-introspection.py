#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""TAP test for tools/check-introspection.py.

    test-check-introspection.py CHECKER FILE.xml [FILE.xml...]

Builds, from the interface files, the reply sd-bus would give to Introspect
(standard interfaces added, DocStrings gone, default EmitsChangedSignal
annotations dropped, sd-bus-only annotations and a child node added), checks
that the checker accepts it, then breaks it in one way at a time and checks
that the checker notices each with the expected message. A checker that
cannot fail is useless.
"""

import copy
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

DOC = "org.gtk.GDBus.DocString"
EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"

STANDARD = """<node>
 <interface name="org.freedesktop.DBus.Peer">
  <method name="Ping"/>
  <method name="GetMachineId"><arg type="s" name="machine_uuid" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect"><arg name="xml_data" type="s" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.DBus.Properties">
  <method name="Get">
   <arg name="interface_name" direction="in" type="s"/>
   <arg name="property_name" direction="in" type="s"/>
   <arg name="value" direction="out" type="v"/>
  </method>
  <signal name="PropertiesChanged">
   <arg type="s" name="interface_name"/>
   <arg type="a{sv}" name="changed_properties"/>
   <arg type="as" name="invalidated_properties"/>
  </signal>
 </interface>
</node>"""


def sdbus_like(paths):
    """An Introspect reply as sd-bus would write it for these interfaces."""
    root = ET.fromstring(STANDARD)
    for path in paths:
        for iface in ET.parse(path).getroot().findall("interface"):
            iface = copy.deepcopy(iface)
            for parent in iface.iter():
                for ann in list(parent.findall("annotation")):
                    if ann.get("name") == DOC or (ann.get("name") == EMITS and ann.get("value") == "true"):
                        parent.remove(ann)
            for m in iface.findall("method"):
                ET.SubElement(m, "annotation", name="org.freedesktop.systemd1.Privileged", value="true")
            root.append(iface)
    ET.SubElement(root, "node", name="domain")
    doctype = ('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
               '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n')
    return doctype + ET.tostring(root, encoding="unicode")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=""):
        self.n += 1
        if not cond:
            self.failed += 1
            for line in diag.splitlines():
                print(f"# {line}")
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}")


def main():
    if len(sys.argv) < 3:
        print("usage: test-check-introspection.py CHECKER FILE.xml...", file=sys.stderr)
        return 2
    checker, files = sys.argv[1], sys.argv[2:]
    tap = Tap()
    tmpdir = tempfile.TemporaryDirectory(prefix="test-check-introspection-")
    tmp = tmpdir.name

    def run(live_text, *extra, files=files):
        live = os.path.join(tmp, "live.xml")
        with open(live, "w", encoding="utf-8") as f:
            f.write(live_text)
        p = subprocess.run([sys.executable, checker, "--live", live, *extra, *files],
                           capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    good = sdbus_like(files)
    ifaces = {i.get("name").rsplit(".", 1)[-1]: i.get("name")
              for path in files for i in ET.parse(path).getroot().findall("interface")}
    if not {"Manager", "Domain"} <= set(ifaces):
        print("Bail out! the mutations need both the Manager and the Domain interface files")
        return 1

    rc, out, err = run(good)
    tap.ok(rc == 0, "accepts an sd-bus-style reply of the same interfaces", out + err)

    # Each mutation: (description, function editing the live root, expected rc, expected line).
    def find(root, iface, kind, name):
        i = root.find(f"interface[@name='{ifaces[iface]}']")
        return i, i.find(f"{kind}[@name='{name}']")

    def drop_method(root):
        i, m = find(root, "Domain", "method", "Start")
        i.remove(m)

    def rename_arg(root):
        _, m = find(root, "Manager", "method", "GetDomain")
        m.find("arg").set("name", "name")

    def flip_direction(root):
        _, m = find(root, "Manager", "method", "ListDomains")
        m.find("arg").set("direction", "in")

    def extra_method(root):
        i, _ = find(root, "Domain", "method", "Start")
        ET.SubElement(i, "method", name="Reboot")

    def extra_arg(root):
        _, m = find(root, "Domain", "method", "Shutdown")
        ET.SubElement(m, "arg", name="flags", type="t", direction="in")

    def signal_type(root):
        _, s = find(root, "Domain", "signal", "Lifecycle")
        s.findall("arg")[1].set("type", "i")

    def emits_const(root):
        _, p = find(root, "Domain", "property", "State")
        ET.SubElement(p, "annotation", name=EMITS, value="const")

    def emits_dropped(root):
        # Hostname is "false" in the file; a bus without the annotation means "true".
        _, p = find(root, "Manager", "property", "Hostname")
        for ann in p.findall("annotation"):
            p.remove(ann)

    def emits_interface_level(root):
        # An interface-level annotation applies to properties without their own.
        i, _ = find(root, "Domain", "property", "State")
        i.insert(0, ET.Element("annotation", name=EMITS, value="false"))

    def property_type(root):
        _, p = find(root, "Domain", "property", "MemoryBytes")
        p.set("type", "u")

    def drop_interface(root):
        i, _ = find(root, "Manager", "method", "ListDomains")
        root.remove(i)

    mutations = [
        ("a missing method", drop_method, "Domain.Start: method in the file but not on the bus"),
        ("a renamed argument", rename_arg, "Manager.GetDomain arg 0: file 'name_or_uuid' s in, bus 'name' s in"),
        ("a flipped direction", flip_direction, "Manager.ListDomains arg 0: file 'domains' ao out, bus 'domains' ao in"),
        ("an extra method", extra_method, "Domain.Reboot: method on the bus but not in the file"),
        ("an extra argument", extra_arg, "Domain.Shutdown arg 0: on the bus ('flags' t in) but not in the file"),
        ("a signal argument type", signal_type, "Domain.Lifecycle arg 1: file 'detail' s, bus 'detail' i"),
        ("EmitsChangedSignal const vs true", emits_const,
         "Domain.State: property EmitsChangedSignal: file 'true', bus 'const'"),
        ("EmitsChangedSignal absent on the bus means true", emits_dropped,
         "Manager.Hostname: property EmitsChangedSignal: file 'false', bus 'true'"),
        ("an interface-level EmitsChangedSignal", emits_interface_level,
         "Domain.Active: property EmitsChangedSignal: file 'true', bus 'false'"),
        ("a property type", property_type, "Domain.MemoryBytes: property type: file 't', bus 'u'"),
        ("a missing interface", drop_interface,
         f"Manager: interface {ifaces.get('Manager')} in the file but not on the bus"),
    ]

    for what, mutate, expected in mutations:
        root = ET.fromstring(good.split("\n", 2)[2])
        mutate(root)
        rc, out, err = run(ET.tostring(root, encoding="unicode"))
        tap.ok(rc == 1 and expected in out.splitlines(), f"detects {what}",
               f"rc={rc}, expected line: {expected}\nstdout:\n{out}stderr:\n{err}")

    # The property whose inherited value is overridden must not be reported.
    root = ET.fromstring(good.split("\n", 2)[2])
    emits_interface_level(root)
    rc, out, _ = run(ET.tostring(root, encoding="unicode"))
    tap.ok(not any(line.startswith("Domain.Name:") for line in out.splitlines()),
           "an own annotation overrides the interface-level one", out)

    rc, out, err = run("<node><interface name='x'>")
    tap.ok(rc == 2 and "not well-formed" in err, "malformed live XML exits 2", f"rc={rc}\n{err}")
    rc, out, err = run(good, files=[os.path.join(tmp, "does-not-exist.xml")])
    tap.ok(rc == 2 and "cannot read" in err, "an unreadable file exits 2", f"rc={rc}\n{err}")
    p = subprocess.run([sys.executable, checker, *files], capture_output=True, text=True)
    tap.ok(p.returncode == 2, "missing --live exits 2", f"rc={p.returncode}\n{p.stderr}")

    print(f"1..{tap.n}")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
