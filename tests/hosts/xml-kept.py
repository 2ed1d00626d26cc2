#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""xml-kept.py GIVEN RETURNED: does the domain XML RETURNED (Domain.GetXML)
keep every element, attribute and text of GIVEN (what the user defined)?

Elements are matched by their path from <domain>, each step named by its
tag and its type/model/name/dev attribute, in document order among equal
steps. What vmigrate is documented to drop or translate (README, "Supported
domain XML"; the top of service/core/domain-xml.c) is listed below; any
other loss or change is reported, one line each, and the exit status is 1.
"""
import sys
import xml.etree.ElementTree as ET

# Steps (tag, key) under which nothing is compared: libvirt's bookkeeping.
DROPPED = {
    ("emulator", None),   # vmigrate probes its own QEMU
    ("controller", "pci"),  # vmigrate lays out PCI buses itself
    ("console", "pty"),   # becomes serial port 0 (written as <serial>)
}
# Paths under which nothing is compared: bookkeeping inside a device.
DROPPED_PATHS = {
    (("devices", None), ("channel", "unix"), ("source", None)),  # libvirt's socket path: vmigrate picks its own
}
# Attributes whose value may change: (tag, attribute).
TRANSLATED = {
    ("graphics", "port"),     # port='-1' (autoport) becomes the port it got
    ("graphics", "autoport"),
    ("graphics", "tlsPort"),  # '-1': a TLS port only where SPICE TLS is set up; vmigrate has none
    ("type", "machine"),      # 'q35' becomes the versioned machine it runs ('pc-q35-10.0')
}
# Elements whose text may be written in another unit: compared in bytes.
UNITS = {"b": 1, "bytes": 1, "KiB": 1024, "k": 1024, "MiB": 1 << 20, "M": 1 << 20, "GiB": 1 << 30, "G": 1 << 30}
SIZED = {"memory", "currentMemory"}


def key(el):
    for a in ("type", "model", "name", "dev"):
        if a in el.attrib:
            return el.attrib[a]
    return None


def local(tag):
    return tag.split("}")[-1]


def index(root):
    """path tuple -> list of elements, in document order."""
    out = {}

    def walk(el, path):
        for child in el:
            if not isinstance(child.tag, str):
                continue
            step = (local(child.tag), key(child))
            p = path + (step,)
            out.setdefault(p, []).append(child)
            walk(child, p)

    walk(root, ())
    return out


def size_of(el):
    return int((el.text or "0").strip()) * UNITS.get(el.attrib.get("unit", "KiB"), 0)


def main():
    given = ET.parse(sys.argv[1]).getroot()
    returned = ET.parse(sys.argv[2]).getroot()
    want, have = index(given), index(returned)
    problems = []
    for path, elements in want.items():
        if any(step in DROPPED for step in path) or any(path[:len(d)] == d for d in DROPPED_PATHS):
            continue
        got = have.get(path, [])
        where = "/".join(t + ("[%s]" % k if k else "") for t, k in path)
        if len(got) < len(elements):
            problems.append("%s: %d given, %d returned" % (where, len(elements), len(got)))
            continue
        for mine, theirs in zip(elements, got):
            tag = local(mine.tag)
            if tag in SIZED:
                if size_of(mine) != size_of(theirs):
                    problems.append("%s: %d bytes given, %d returned" % (where, size_of(mine), size_of(theirs)))
                continue
            for attr, value in mine.attrib.items():
                if (tag, attr) in TRANSLATED:
                    continue
                if theirs.attrib.get(attr) != value:
                    problems.append("%s: %s='%s' given, %r returned" % (where, attr, value, theirs.attrib.get(attr)))
            text = (mine.text or "").strip()
            if text and text != (theirs.text or "").strip():
                problems.append("%s: text '%s' given, '%s' returned" % (where, text, (theirs.text or "").strip()))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
