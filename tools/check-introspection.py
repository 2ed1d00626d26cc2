#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Compare interfaces/*.xml (the public contract) with a live Introspect reply.

    check-introspection.py --live LIVE.xml FILE.xml [FILE.xml...]

LIVE.xml is what the running service answers to
org.freedesktop.DBus.Introspectable.Introspect on one object ("-" reads it
from standard input), e.g.

    busctl introspect --xml-interface org.vmigrate.Migrate1 \\
        /org/vmigrate/Migrate1 > live.xml

For every interface defined in the FILEs, the interface of the same name in
LIVE must have the same methods (arguments in order: name, type, direction),
signals (arguments: name, type) and properties (type, access, and the value
of org.freedesktop.DBus.Property.EmitsChangedSignal, absent meaning "true";
an interface-level annotation applies to its properties). Documentation
annotations and the annotations only sd-bus adds (Privileged, NoReply,
Deprecated, ...) are not compared; neither are interfaces that appear only
in LIVE (the standard org.freedesktop.DBus.* ones, say) nor child nodes.

Exit status: 0 when they match, 1 when they differ (every difference is
printed), 2 on a usage error or a file that cannot be read or parsed.
"""

import argparse
import sys
import xml.etree.ElementTree as ET

EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"
EMITS_VALUES = ("true", "invalidates", "const", "false")


class ParseError(Exception):
    pass


def _name(elem, what, where):
    name = elem.get("name")
    if not name:
        raise ParseError(f"{where}: <{what}> without a name attribute")
    return name


def _emits(elem, default, where):
    for ann in elem.findall("annotation"):
        if ann.get("name") == EMITS:
            value = ann.get("value")
            if value not in EMITS_VALUES:
                raise ParseError(f"{where}: {EMITS} has value {value!r}, "
                                 f"expected one of {', '.join(EMITS_VALUES)}")
            return value
    return default


def parse_interfaces(text, source):
    """Returns {interface name: {"methods", "signals", "properties"}}."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ParseError(f"{source}: not well-formed XML: {e}") from None
    if root.tag != "node":
        raise ParseError(f"{source}: the root element is <{root.tag}>, expected <node>")

    interfaces = {}
    for iface in root.findall("interface"):
        iname = _name(iface, "interface", source)
        where = f"{source}: {iname}"
        if iname in interfaces:
            raise ParseError(f"{where}: interface defined twice")
        default_emits = _emits(iface, "true", where)
        methods, signals, properties = {}, {}, {}

        for m in iface.findall("method"):
            mname = _name(m, "method", where)
            if mname in methods:
                raise ParseError(f"{where}: method {mname} defined twice")
            methods[mname] = [(a.get("name", ""), a.get("type", ""), a.get("direction", "in"))
                              for a in m.findall("arg")]

        for s in iface.findall("signal"):
            sname = _name(s, "signal", where)
            if sname in signals:
                raise ParseError(f"{where}: signal {sname} defined twice")
            signals[sname] = [(a.get("name", ""), a.get("type", "")) for a in s.findall("arg")]

        for p in iface.findall("property"):
            pname = _name(p, "property", where)
            if pname in properties:
                raise ParseError(f"{where}: property {pname} defined twice")
            properties[pname] = (p.get("type", ""), p.get("access", ""),
                                 _emits(p, default_emits, f"{where}.{pname}"))

        interfaces[iname] = {"methods": methods, "signals": signals, "properties": properties}
    return interfaces


def _short(iname):
    return iname.rsplit(".", 1)[-1]


def _fmt_arg(arg):
    return f"'{arg[0]}' {arg[1]}" + (f" {arg[2]}" if len(arg) > 2 else "")


def _compare_args(label, file_args, bus_args, out):
    for i in range(max(len(file_args), len(bus_args))):
        fa = file_args[i] if i < len(file_args) else None
        ba = bus_args[i] if i < len(bus_args) else None
        if fa == ba:
            continue
        if fa is None:
            out.append(f"{label} arg {i}: on the bus ({_fmt_arg(ba)}) but not in the file")
        elif ba is None:
            out.append(f"{label} arg {i}: in the file ({_fmt_arg(fa)}) but not on the bus")
        else:
            out.append(f"{label} arg {i}: file {_fmt_arg(fa)}, bus {_fmt_arg(ba)}")


def _compare_members(prefix, kind, file_members, bus_members, compare, out):
    for name in sorted(set(file_members) | set(bus_members)):
        label = f"{prefix}.{name}"
        if name not in bus_members:
            out.append(f"{label}: {kind} in the file but not on the bus")
        elif name not in file_members:
            out.append(f"{label}: {kind} on the bus but not in the file")
        else:
            compare(label, file_members[name], bus_members[name], out)


def _compare_property(label, fp, bp, out):
    for what, f, b in zip(("type", "access", "EmitsChangedSignal"), fp, bp):
        if f != b:
            out.append(f"{label}: property {what}: file {f!r}, bus {b!r}")


def compare(file_ifaces, bus_ifaces):
    """Returns a list of human-readable differences (empty when they match)."""
    out = []
    for iname in sorted(file_ifaces):
        prefix = _short(iname)
        if iname not in bus_ifaces:
            out.append(f"{prefix}: interface {iname} in the file but not on the bus")
            continue
        f, b = file_ifaces[iname], bus_ifaces[iname]
        _compare_members(prefix, "method", f["methods"], b["methods"], _compare_args, out)
        _compare_members(prefix, "signal", f["signals"], b["signals"], _compare_args, out)
        _compare_members(prefix, "property", f["properties"], b["properties"], _compare_property, out)
    return out


def _read(path):
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ParseError(f"{path}: cannot read: {e}") from None


def main(argv):
    parser = argparse.ArgumentParser(
        description="Compare D-Bus interface XML files with a live Introspect reply.")
    parser.add_argument("--live", required=True, metavar="LIVE.xml",
                        help="Introspect output of the running object ('-' for stdin)")
    parser.add_argument("files", nargs="+", metavar="FILE.xml",
                        help="interface definitions (the contract)")
    args = parser.parse_args(argv)  # exits 2 on usage errors

    try:
        bus = parse_interfaces(_read(args.live), args.live)
        contract = {}
        for path in args.files:
            for iname, iface in parse_interfaces(_read(path), path).items():
                if iname in contract:
                    raise ParseError(f"{path}: interface {iname} is also defined in another file")
                contract[iname] = iface
    except ParseError as e:
        print(f"check-introspection: {e}", file=sys.stderr)
        return 2
    if not contract:
        print("check-introspection: the files define no interface", file=sys.stderr)
        return 2

    differences = compare(contract, bus)
    for line in differences:
        print(line)
    names = ", ".join(sorted(contract))
    if differences:
        print(f"check-introspection: {len(differences)} difference(s) between the files and "
              f"{args.live} for {names}", file=sys.stderr)
        return 1
    print(f"check-introspection: {names}: the bus matches the files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
