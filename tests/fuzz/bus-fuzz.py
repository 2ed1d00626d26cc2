#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Bus fuzzer: calls every method of the D-Bus contract (interfaces/*.xml)
# with random and boundary values of the right signature, and with wrong
# signatures, on the manager, on domain and job objects that exist and on
# objects that do not. It needs a running vmigrated (the test backend) on
# the bus it is pointed at; tests/bus/test-bus-fuzz.sh sets one up on a
# private bus, which is the only place it should ever run (it defines,
# starts and destroys domains).
#
#     bus-fuzz.py --interfaces DIR [--address ADDR] [--seed N]
#                 [--seconds S | --iterations N] [--corpus DIR]
#
# Calls go out in batches, asynchronously (so that they overlap in the
# daemon: a Destroy may overtake a Shutdown, an Undefine a Start). After
# each batch every call must have had a reply or an error within
# --call-timeout (a call that never returns is a hang), and the daemon
# must answer Peer.Ping and a property read. Output is TAP; the seed is
# printed so that a failure can be replayed with --seed.
import argparse
import glob
import math
import os
import random
import re
import signal
import sys
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET

# Before gi can start a thread, which would take a SIGTERM by default:
# see report_sigterm().
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

import gi  # noqa: E402

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = "org.vmigrate.Migrate1"
MANAGER_PATH = "/org/vmigrate/Migrate1"
MANAGER_IFACE = "org.vmigrate.Migrate1.Manager"
DOMAIN_IFACE = "org.vmigrate.Migrate1.Domain"
JOB_IFACE = "org.vmigrate.Migrate1.Job"
INCOMING_IFACE = "org.vmigrate.Migrate1.Incoming"
DOC = "org.gtk.GDBus.DocString"

# Standard interfaces sd-bus implements on every object: fuzzed too.
STANDARD = {
    "org.freedesktop.DBus.Peer": {"Ping": [], "GetMachineId": []},
    "org.freedesktop.DBus.Introspectable": {"Introspect": []},
    "org.freedesktop.DBus.Properties": {"Get": ["s", "s"], "GetAll": ["s"], "Set": ["s", "s", "v"]},
    "org.freedesktop.DBus.ObjectManager": {"GetManagedObjects": []},
}

BASIC = "ybnqiuxtdsog"
# Error names a wrong call may get from sd-bus (not in the contract's docs).
SD_BUS_ERRORS = {
    "org.freedesktop.DBus.Error.InvalidArgs",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownProperty",
    "org.freedesktop.DBus.Error.PropertyReadOnly",
    "org.freedesktop.DBus.Error.InconsistentMessage",
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
}


# ---------------------------------------------------------------------------
# The contract


class Method:
    def __init__(self, iface, name, in_sig, doc):
        self.iface = iface
        self.name = name
        self.in_sig = in_sig  # list of single complete types
        self.doc = doc

    def __repr__(self):
        return f"{self.iface}.{self.name}({''.join(self.in_sig)})"


def parse_interfaces(directory):
    methods, docs, props = [], [], {}
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        root = ET.parse(path).getroot()
        for iface in root.iter("interface"):
            iname = iface.get("name")
            for m in iface.findall("method"):
                doc = " ".join(a.get("value", "") for a in m.iter("annotation") if a.get("name") == DOC)
                sig = [a.get("type") for a in m.findall("arg") if a.get("direction", "in") == "in"]
                methods.append(Method(iname, m.get("name"), sig, doc))
            for p in iface.findall("property"):
                props.setdefault(iname, []).append((p.get("name"), p.get("type"), p.get("access")))
            docs.extend(a.get("value", "") for a in iface.iter("annotation") if a.get("name") == DOC)
    for iname, members in STANDARD.items():
        for name, sig in members.items():
            methods.append(Method(iname, name, sig, ""))
    return methods, " ".join(docs + [m.doc for m in methods]), props


# "parallel-connections u (1 to 255)", "compression s (none, zstd, zlib)":
# the dictionary keys the docs name, with their type and values.
KEY_RE = re.compile(r"(?<![\w.-])([a-z][a-z0-9]*(?:-[a-z0-9]+)*) (a\{sv\}|a\{ss\}|a\(sss\)|as|[bsutdqxyn])"
                    r"(?=[ ,;.)])(?: \(([^()]*)\))?")


def doc_keys(text):
    keys = {}
    for name, sig, extra in KEY_RE.findall(text):
        k = keys.setdefault(name, {"sigs": set(), "values": set(), "range": None})
        k["sigs"].add(sig)
        if extra:
            m = re.match(r"(\d+) to (\d+)", extra)
            if m:
                k["range"] = (int(m.group(1)), int(m.group(2)))
            elif sig == "s":
                k["values"].update(v.strip() for v in extra.split(",") if re.fullmatch(r"[a-z0-9-]+", v.strip()))
    return keys


# ---------------------------------------------------------------------------
# Signatures


def split_sig(sig):
    """Splits a signature into single complete types."""
    out, i = [], 0
    while i < len(sig):
        j = end_of_type(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def end_of_type(sig, i):
    c = sig[i]
    if c == "a":
        return end_of_type(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        i += 1
        while sig[i] != close:
            i = end_of_type(sig, i)
        return i + 1
    return i + 1


INT_RANGES = {
    "y": (0, 255), "n": (-(2 ** 15), 2 ** 15 - 1), "q": (0, 2 ** 16 - 1),
    "i": (-(2 ** 31), 2 ** 31 - 1), "u": (0, 2 ** 32 - 1),
    "x": (-(2 ** 63), 2 ** 63 - 1), "t": (0, 2 ** 64 - 1),
}


# The system bus's max_message_size is 32 MiB (dbus-daemon's system.conf):
# it disconnects a client that sends more. Big arguments below that still
# reach the daemon.
MAX_ARGS_BYTES = 16 * 1024 * 1024


class Gen:
    def __init__(self, rng, keys, corpus):
        self.rng = rng
        self.keys = keys
        self.corpus = corpus
        self.domain_paths = []
        self.job_paths = []
        self.domain_names = []
        self.domain_uuids = []
        self.bus_socket = None

    # -- values by type

    def random_sig(self, depth=0):
        r = self.rng.random()
        if depth > 3 or r < 0.6:
            return self.rng.choice(BASIC + "bv")
        if r < 0.75:
            return "a" + self.random_sig(depth + 1)
        if r < 0.85:
            return "a{" + self.rng.choice(BASIC + "b") + self.random_sig(depth + 1) + "}"
        return "(" + "".join(self.random_sig(depth + 1) for _ in range(self.rng.randint(1, 3))) + ")"

    def integer(self, sig, rng_hint=None):
        lo, hi = INT_RANGES[sig]
        cands = [lo, hi, 0, 1, lo + 1, hi - 1]
        if rng_hint:
            a, b = rng_hint
            cands += [a, b, a - 1, b + 1]
        v = self.rng.choice(cands) if self.rng.random() < 0.7 else self.rng.randint(lo, hi)
        return min(max(v, lo), hi)

    def string(self, hint=None):
        r = self.rng.random()
        pools = [
            "", "a", " ", "-", "..", "/", "%s%n%x", "\\", "'\"<>&", "\n", "\t", "\x01\x1f\x7f",
            "é", "日本語", "\U0001F600", "\uFFFD", "\uFFFF", "\u200b\u202e", "\ufeff", "\U0010FFFF",
            "x" * 255, "x" * 256, "x" * 4097, "name\n", " leading", "trailing ",
            "true", "0", "-1", "18446744073709551616", "nan", "NULL", "(null)",
        ]
        if hint and self.rng.random() < 0.6:
            return self.rng.choice(hint)
        if r < 0.35:
            return self.rng.choice(pools)
        if r < 0.45 and self.domain_names:
            return self.rng.choice(self.domain_names + [u.upper() for u in self.domain_uuids] + self.domain_uuids)
        if r < 0.55:
            return self.uri()
        if r < 0.65:
            return self.domain_xml()
        if r < 0.7:
            return self.rng.choice(["a", "é", "\U0001F600", "<"]) * self.rng.choice([1000, 65536, 300000])
        if r < 0.8:
            return str(uuidlib.UUID(int=self.rng.getrandbits(128)))
        n = self.rng.randint(0, 40)
        return "".join(chr(self.rng.choice([self.rng.randint(1, 0x7f), self.rng.randint(0x80, 0xd7ff),
                                            self.rng.randint(0xe000, 0x10ffff)])) for _ in range(n))

    def uri(self):
        cands = [
            "", "unix://", "unix:///", "unix:///nonexistent/socket", "unix:///dev/null", "unix:///etc/passwd",
            "unix://relative/path", "unix:///" + "a" * 5000, "ssh://", "ssh://@", "ssh://root@127.0.0.1:1",
            "ssh://[::1]:1", "ssh://u@127.0.0.1:0", "ssh://u@127.0.0.1:65536", "ssh://-oProxyCommand=id",
            "-oProxyCommand=id", "ssh://root@127.0.0.1:1/path?x#y", "tcp://127.0.0.1:1", "qemu+ssh://x/system",
            "ssh://user:pw@127.0.0.1:1", "127.0.0.1", "ssh://%00@127.0.0.1:1", "unix:///tmp/../tmp/x",
        ]
        if self.bus_socket:
            cands += ["unix://" + self.bus_socket] * 3
        cands += self.corpus.get("uri", [])
        return self.rng.choice(cands)

    def domain_xml(self):
        r = self.rng.random()
        if r < 0.4 and self.corpus.get("domain-xml"):
            return self.rng.choice(self.corpus["domain-xml"])
        name = self.rng.choice(["fz" + str(self.rng.randint(0, 30)), "", "a" * 300, "é", "x/y"])
        uuid = self.rng.choice(self.domain_uuids + [str(uuidlib.UUID(int=self.rng.getrandbits(128))), "bad"])
        mem = self.rng.choice(["512", "0", "1", "18446744073709551615", "-1", "x"])
        vcpu = self.rng.choice(["1", "2", "0", "4294967296", "1024"])
        typ = self.rng.choice(["test"] * 6 + ["qemu", "kvm", "", "xen"])
        desc = self.rng.choice(["", "<description>test-dirty-rate=%d</description>" % self.rng.randint(0, 2 ** 40)])
        doc = (f'<domain type="{typ}"><name>{name}</name><uuid>{uuid}</uuid>'
               f'<memory unit="{self.rng.choice(["MiB", "KiB", "GiB", "b", "EiB"])}">{mem}</memory>'
               f"<vcpu>{vcpu}</vcpu>{desc}</domain>")
        if self.rng.random() < 0.2:  # cut or mangle it
            i = self.rng.randint(0, len(doc))
            doc = doc[:i] + self.rng.choice(["", "<", "&", "]]>", "<x>" * 50]) + doc[i + self.rng.randint(0, 5):]
        return doc

    def object_path(self):
        cands = [MANAGER_PATH, "/", "/org/vmigrate/Migrate1/domain", "/org/vmigrate/Migrate1/domain/nosuch",
                 "/org/vmigrate/Migrate1/domain/_30", "/org/vmigrate/Migrate1/job/0",
                 "/org/vmigrate/Migrate1/job/18446744073709551615", "/org/vmigrate/Migrate1/job/99999999999999999999",
                 "/org/vmigrate/Migrate1/job/x", "/org/vmigrate/Migrate1/domain/" + "a" * 2000]
        return self.rng.choice(cands + self.domain_paths * 3 + self.job_paths * 3)

    def value(self, sig, depth=0, key=None):
        """A Python value for GLib.Variant(sig, value)."""
        c = sig[0]
        if c in INT_RANGES:
            return self.integer(c, key["range"] if key else None)
        if c == "b":
            return self.rng.random() < 0.5
        if c == "d":
            return self.rng.choice([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, math.inf, -math.inf, math.nan, 1e308, 5e-324,
                                    self.rng.uniform(-1e6, 1e6)])
        if c == "s":
            return self.string(sorted(key["values"]) if key and key["values"] else None)
        if c == "o":
            return self.object_path()
        if c == "g":
            return self.rng.choice(["", "s", "a{sv}", "(ii)", "v" * 200, self.random_sig()])
        if c == "h":
            return 0
        if c == "v":
            if depth > 6:
                return GLib.Variant("s", "deep")
            s = self.random_sig(depth)
            if self.rng.random() < 0.05:  # nested variants
                inner = GLib.Variant("s", "x")
                for _ in range(self.rng.randint(1, 30)):
                    inner = GLib.Variant("v", inner)
                return inner
            return GLib.Variant(s, self.value(s, depth + 1))
        if sig == "a{sv}":
            return self.vardict(depth)
        if c == "a":
            elem = sig[1:]
            n = self.rng.choice([0, 0, 1, 2, 3, 10, self.rng.randint(0, 50)])
            if elem.startswith("{"):
                ksig, vsig = split_sig(elem[1:-1])
                return {self.value(ksig, depth + 1): self.value(vsig, depth + 1) for _ in range(n)}
            if elem in ("y",) and self.rng.random() < 0.3:
                return bytes(self.rng.getrandbits(8) for _ in range(self.rng.choice([0, 1, 4096])))
            return [self.value(elem, depth + 1) for _ in range(n)]
        if c == "(":
            return tuple(self.value(s, depth + 1) for s in split_sig(sig[1:-1]))
        raise ValueError(sig)

    def vardict(self, depth=0):
        """a{sv}: the documented keys, right and wrong types, random keys."""
        d = {}
        r = self.rng.random()
        if r < 0.1:
            return d
        if r < 0.25 and depth == 0:
            return self.cookie()
        for _ in range(self.rng.choice([1, 2, 3, 5, 8, 30])):
            p = self.rng.random()
            if p < 0.75 and self.keys:
                name = self.rng.choice(sorted(self.keys))
                k = self.keys[name]
                s = self.rng.choice(sorted(k["sigs"])) if self.rng.random() < 0.8 else self.random_sig(depth + 1)
                try:
                    d[name] = GLib.Variant(s, self.value(s, depth + 1, k if s in k["sigs"] else None))
                except (TypeError, ValueError, OverflowError):
                    continue
            else:
                s = self.random_sig(depth + 1)
                d[self.string()] = GLib.Variant(s, self.value(s, depth + 1))
        return d

    def cookie(self):
        """A cookie that gets past the version check: Incoming's code is
        reached, not only its front door."""
        name = "fzin" + str(self.rng.randint(0, 20))
        u = self.rng.choice(self.domain_uuids + [str(uuidlib.UUID(int=self.rng.getrandbits(128)))] * 2)
        d = {
            "version": GLib.Variant("u", self.rng.choice([1, 1, 1, 1, 0, 2, 2 ** 32 - 1])),
            "host-uuid": GLib.Variant("s", str(uuidlib.UUID(int=self.rng.getrandbits(128)))),
            "hostname": GLib.Variant("s", self.rng.choice(["src", "", "x" * 300])),
            "domain-xml": GLib.Variant("s", f'<domain type="test"><name>{name}</name><uuid>{u}</uuid>'
                                            f'<memory unit="MiB">64</memory><vcpu>1</vcpu></domain>'
                                       if self.rng.random() < 0.8 else self.domain_xml()),
            "uuid": GLib.Variant("s", u),
            "persistent": GLib.Variant("b", self.rng.random() < 0.5),
            "success": GLib.Variant("b", self.rng.random() < 0.5),
            "error": GLib.Variant("s", self.string()),
            "options": GLib.Variant("a{sv}", self.vardict(1) if self.rng.random() < 0.5 else {}),
            "backend": GLib.Variant("a{sv}", {}),
            "stats": GLib.Variant("a{sv}", self.vardict(1) if self.rng.random() < 0.3 else {}),
            "tunnel-token": GLib.Variant("s", self.string()),
        }
        for k in list(d):
            if self.rng.random() < 0.1:
                del d[k]
        return d


# ---------------------------------------------------------------------------
# Calls


class Call:
    __slots__ = ("path", "iface", "method", "sig", "args", "wrong", "done", "error", "sent", "desc", "batch")

    def __init__(self, path, iface, method, sig, args, wrong, desc):
        self.path, self.iface, self.method, self.sig = path, iface, method, sig
        self.args, self.wrong, self.desc = args, wrong, desc
        self.done, self.error, self.sent, self.batch = False, None, 0.0, 0


def short(v, n=160):
    s = repr(v)
    return s if len(s) <= n else s[:n] + f"...({len(s)} chars)"


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.methods, alldocs, self.props = parse_interfaces(args.interfaces)
        self.keys = doc_keys(alldocs)
        self.corpus = load_corpus(args.corpus)
        self.gen = Gen(self.rng, self.keys, self.corpus)
        if args.address:
            self.bus = Gio.DBusConnection.new_for_address_sync(
                args.address,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
                None, None)
        else:
            self.bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        addr = args.address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
        m = re.search(r"unix:path=([^,;]+)", addr)
        self.gen.bus_socket = m.group(1) if m else None
        self.loop = GLib.MainLoop()
        self.ncalls = 0
        self.errors = {}
        self.hangs = []
        self.wrong_ok = []
        self.odd_errors = {}
        self.dead = None
        self.batches = 0
        self.contract_errors = set(re.findall(r"org\.(?:vmigrate\.Migrate1|freedesktop\.DBus)\.Error\.[A-Za-z]+",
                                              alldocs)) | SD_BUS_ERRORS

    # -- synchronous helpers (set-up and liveness)

    def call_sync(self, path, iface, method, params, timeout_ms=30000):
        return self.bus.call_sync(BUS_NAME, path, iface, method, params, None, Gio.DBusCallFlags.NONE,
                                  timeout_ms, None)

    def alive(self):
        try:
            self.call_sync(MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", None, 10000)
            self.call_sync(MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get",
                           GLib.Variant("(ss)", (MANAGER_IFACE, "Version")), 10000)
            return None
        except GLib.Error as e:
            return e.message

    def refresh_objects(self):
        try:
            r = self.call_sync(MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None)
        except GLib.Error:
            return
        objs = r.unpack()[0]
        self.gen.domain_paths = sorted(p for p, i in objs.items() if DOMAIN_IFACE in i)
        self.gen.job_paths = sorted(p for p, i in objs.items() if JOB_IFACE in i)
        self.gen.domain_names = sorted(i[DOMAIN_IFACE].get("Name", "") for i in objs.values() if DOMAIN_IFACE in i)
        self.gen.domain_uuids = sorted(i[DOMAIN_IFACE].get("UUID", "") for i in objs.values() if DOMAIN_IFACE in i)

    def setup(self):
        """A few domains in each state, so that calls reach past the state
        checks. Failures are fine (a non-root caller is denied)."""
        made = 0
        for i in range(6):
            xml = (f'<domain type="test"><name>fzset{i}</name><memory unit="MiB">{64 * (i + 1)}</memory>'
                   f"<vcpu>1</vcpu></domain>")
            try:
                path = self.call_sync(MANAGER_PATH, MANAGER_IFACE, "DefineXML", GLib.Variant("(s)", (xml,))).unpack()[0]
                made += 1
            except GLib.Error:
                try:
                    path = self.call_sync(MANAGER_PATH, MANAGER_IFACE, "GetDomain",
                                          GLib.Variant("(s)", (f"fzset{i}",))).unpack()[0]
                except GLib.Error:
                    continue
            for m in ["Start", "Suspend"][: i % 3]:
                try:
                    self.call_sync(path, DOMAIN_IFACE, m, None)
                except GLib.Error:
                    pass
        self.refresh_objects()
        return made

    # -- the fuzzing

    def target_path(self, m):
        r = self.rng.random()
        if r < 0.1:
            return self.gen.object_path()
        if m.iface in (MANAGER_IFACE, INCOMING_IFACE, "org.freedesktop.DBus.ObjectManager"):
            return MANAGER_PATH
        if m.iface == DOMAIN_IFACE and self.gen.domain_paths:
            return self.rng.choice(self.gen.domain_paths)
        if m.iface == JOB_IFACE and self.gen.job_paths:
            return self.rng.choice(self.gen.job_paths)
        return self.rng.choice([MANAGER_PATH] + self.gen.domain_paths + self.gen.job_paths)

    def make_call(self):
        m = self.rng.choice(self.methods)
        path = self.target_path(m)
        iface, name, sig = m.iface, m.name, list(m.in_sig)
        wrong = False
        r = self.rng.random()
        if r < 0.2:
            wrong = True
            k = self.rng.random()
            if k < 0.3 and sig:
                sig.pop(self.rng.randrange(len(sig)))
            elif k < 0.5:
                sig.insert(self.rng.randint(0, len(sig)), self.random_sig_single())
            elif k < 0.8 and sig:
                i = self.rng.randrange(len(sig))
                sig[i] = self.random_sig_single(avoid=sig[i])
            else:
                sig = [self.random_sig_single() for _ in range(self.rng.randint(0, 4))]
            # sd-bus answers the standard interfaces itself: Peer's
            # methods whatever the arguments, and Properties' and
            # Introspectable's reading only the arguments they take,
            # ignoring more after them. Not ours to check.
            sd_bus_ignores = iface == "org.freedesktop.DBus.Peer" or (
                iface.startswith("org.freedesktop.DBus.") and sig[:len(m.in_sig)] == list(m.in_sig))
            wrong = sig != list(m.in_sig) and not sd_bus_ignores
        elif r < 0.25:
            # A method name of another interface, or none known.
            other = self.rng.choice(self.methods)
            name = self.rng.choice([other.name, "NoSuchMethod", "Start" + "x" * 200])
            wrong = None  # may or may not exist on that interface
        if iface == "org.freedesktop.DBus.Properties" and not wrong and self.rng.random() < 0.8:
            return self.property_call(path, name)
        args = []
        for s in sig:
            args.append(self.gen.value(s))
        if name == "Migrate" and iface == DOMAIN_IFACE and len(args) == 2 and isinstance(args[1], dict) \
                and "wait" in args[1] and self.rng.random() < 0.5:
            # wait=true is allowed to take as long as the copy; keep it
            # in only for half the calls (none of them can reach a
            # destination here, so they still answer quickly).
            del args[1]["wait"]
        return Call(path, iface, name, "(" + "".join(sig) + ")", args, wrong, f"{iface}.{name} on {path}")

    def property_call(self, path, method):
        ifaces = list(self.props) + ["org.vmigrate.Nope", ""]
        iface = self.rng.choice(ifaces)
        props = self.props.get(iface, [])
        pname = self.rng.choice([p[0] for p in props] + ["Nope", ""]) if props else self.gen.string()
        if method == "GetAll":
            return Call(path, "org.freedesktop.DBus.Properties", method, "(s)", [iface], False, f"GetAll {iface}")
        if method == "Get":
            return Call(path, "org.freedesktop.DBus.Properties", method, "(ss)", [iface, pname], False,
                        f"Get {iface}.{pname}")
        ptype = dict((p[0], p[1]) for p in props).get(pname, "s")
        s = ptype if self.rng.random() < 0.7 else self.random_sig_single()
        return Call(path, "org.freedesktop.DBus.Properties", "Set", "(ssv)",
                    [iface, pname, GLib.Variant(s, self.gen.value(s))], False, f"Set {iface}.{pname}")

    def random_sig_single(self, avoid=None):
        for _ in range(10):
            s = self.gen.random_sig()
            if s != avoid:
                return s
        return "s" if avoid != "s" else "u"

    def send(self, call):
        try:
            params = GLib.Variant(call.sig, tuple(call.args))
        except (TypeError, ValueError, OverflowError) as e:
            # Our generator made something GLib will not serialize
            # (e.g. a dict key collision): not a call.
            call.done, call.error = True, "skip:" + str(e)
            return False
        if params.get_size() > MAX_ARGS_BYTES:
            # dbus-daemon, not vmigrated, would refuse it, by closing
            # our connection: not a call that reaches the daemon.
            call.done, call.error = True, f"skip: {params.get_size()} bytes of arguments"
            return False
        call.sent = time.monotonic()
        self.ncalls += 1
        if "h" in call.sig:
            fds = Gio.UnixFDList.new()
            fd = os.open("/dev/null", os.O_RDONLY)
            fds.append(fd)
            os.close(fd)
            self.bus.call_with_unix_fd_list(BUS_NAME, call.path, call.iface, call.method, params, None,
                                            Gio.DBusCallFlags.NONE, self.args.call_timeout * 1000, fds, None,
                                            self.on_reply_fd, call)
        else:
            self.bus.call(BUS_NAME, call.path, call.iface, call.method, params, None, Gio.DBusCallFlags.NONE,
                          self.args.call_timeout * 1000, None, self.on_reply, call)
        return True

    def on_reply(self, bus, result, call):
        self.finish(call, lambda: bus.call_finish(result))

    def on_reply_fd(self, bus, result, call):
        self.finish(call, lambda: bus.call_with_unix_fd_list_finish(result))

    def finish(self, call, fn):
        try:
            fn()
            call.error = None
        except GLib.Error as e:
            call.error = Gio.DBusError.get_remote_error(e) or f"local:{e.domain}:{e.code}:{e.message}"
            if e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
                call.error = "timeout"
            call.desc += f" -> {e.message[:200]}"
        call.done = True
        # A late answer to an earlier batch's call (already counted as a
        # hang) must not end this batch's wait.
        if call.batch == self.batches:
            self.pending -= 1
            if self.pending == 0:
                self.loop.quit()

    def batch(self):
        calls = [self.make_call() for _ in range(self.rng.randint(1, self.args.batch))]
        self.pending = 0
        for c in calls:
            c.batch = self.batches
            if self.send(c):
                self.pending += 1
        if self.pending:
            # Deadline a little past the call timeout: GDBus reports a
            # call that got nothing as TIMED_OUT itself.
            expired = []

            def deadline():
                expired.append(True)
                self.loop.quit()
                return GLib.SOURCE_REMOVE

            tid = GLib.timeout_add_seconds(self.args.call_timeout + 5, deadline)
            self.loop.run()
            if not expired:
                GLib.source_remove(tid)
        for c in calls:
            if c.error and c.error.startswith("skip:"):
                continue
            if not c.done or c.error == "timeout":
                self.hangs.append(f"{c.desc} sig {c.sig} args {short(c.args)}")
                continue
            if c.error is None:
                if c.wrong is True:
                    self.wrong_ok.append(f"{c.desc} sig {c.sig} args {short(c.args)}")
                key = "reply"
            else:
                key = c.error
                if c.error not in self.contract_errors and not c.error.startswith("local:"):
                    self.odd_errors.setdefault(c.error, f"{c.desc} sig {c.sig} args {short(c.args)}")
                if c.error.startswith("local:") or c.error in ("org.freedesktop.DBus.Error.NoReply",
                                                               "org.freedesktop.DBus.Error.ServiceUnknown",
                                                               "org.freedesktop.DBus.Error.NameHasNoOwner",
                                                               "org.freedesktop.DBus.Error.Disconnected"):
                    self.hangs.append(f"{c.desc} sig {c.sig} args {short(c.args)} [{c.error}]")
            self.errors[key] = self.errors.get(key, 0) + 1
        self.batches += 1
        if self.dead is None:
            why = self.alive()
            if why:
                self.dead = f"after batch {self.batches}: {why}; last calls: " + \
                            "; ".join(f"{c.desc} {short(c.args, 300)}" for c in calls)
        if self.batches % 10 == 0:
            self.refresh_objects()
            self.replenish()

    def replenish(self):
        """Fuzzed Undefines and Destroys empty the host: keep a few
        domains, some running, for the domain methods to work on."""
        if len(self.gen.domain_paths) >= 3:
            return
        for i in range(3):
            name = f"fzre{self.rng.randint(0, 99)}"
            xml = f'<domain type="test"><name>{name}</name><memory unit="MiB">64</memory><vcpu>1</vcpu></domain>'
            try:
                self.call_sync(MANAGER_PATH, MANAGER_IFACE, "CreateXML" if i else "DefineXML",
                               GLib.Variant("(s)", (xml,)))
            except GLib.Error:
                pass
        self.refresh_objects()

    def run(self):
        end = time.monotonic() + self.args.seconds if self.args.seconds else None
        while True:
            if end is not None and time.monotonic() >= end:
                break
            if self.args.iterations and self.ncalls >= self.args.iterations:
                break
            if self.dead or len(self.hangs) > 20:
                break
            self.batch()


def load_corpus(directory):
    out = {}
    if not directory:
        return out
    for kind in ("uri", "domain-xml"):
        for path in sorted(glob.glob(os.path.join(directory, kind, "*"))):
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if "\0" in text:
                continue
            if kind == "uri":
                text = text.strip()
                # No name lookups: an ssh:// host name would make the
                # daemon wait for DNS, which is slow, not wrong.
                if re.match(r"^(ssh://)?([^/@]*@)?[A-Za-z]", text) and not text.startswith(("unix:", "ssh://[")):
                    continue
            out.setdefault(kind, []).append(text)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interfaces", required=True, help="directory of the interface XML files")
    ap.add_argument("--corpus", help="tests/fuzz/corpus: URIs and domain XML to draw values from")
    ap.add_argument("--address", help="bus address (default: the system bus, DBUS_SYSTEM_BUS_ADDRESS)")
    ap.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    ap.add_argument("--seconds", type=float, default=0, help="run this long")
    ap.add_argument("--iterations", type=int, default=0, help="make this many calls")
    ap.add_argument("--batch", type=int, default=8, help="at most this many concurrent calls")
    ap.add_argument("--call-timeout", type=int, default=30, help="seconds a call may take (longer is a hang)")
    ap.add_argument("--no-setup", action="store_true", help="do not define the initial domains")
    args = ap.parse_args()
    if not args.seconds and not args.iterations:
        args.seconds = 10
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")

    n = 0

    def ok(cond, desc, details=()):
        nonlocal n
        n += 1
        print(f"{'ok' if cond else 'not ok'} {n} - {desc}")
        for d in details:
            print(f"#   {d}")
        return cond

    print(f"# bus-fuzz seed {args.seed} (replay with --seed {args.seed}), uid {os.getuid()}")
    fz = Fuzzer(args)
    methods = {f"{m.iface}.{m.name}" for m in fz.methods}
    ok(len(fz.methods) > 20, f"{len(methods)} methods from {args.interfaces}, {len(fz.keys)} dictionary keys "
                             f"from the docs")
    why = fz.alive()
    if not ok(why is None, "the daemon answers before fuzzing", [why] if why else []):
        print(f"1..{n}")
        return 1
    made = 0 if args.no_setup else fz.setup()
    print(f"# set-up defined {made} domains; {len(fz.gen.domain_paths)} domains, {len(fz.gen.job_paths)} jobs")
    start = time.monotonic()
    fz.run()
    took = time.monotonic() - start
    print(f"# {fz.ncalls} calls in {fz.batches} batches, {took:.1f} s")
    for k, v in sorted(fz.errors.items(), key=lambda kv: -kv[1]):
        print(f"#   {v:6d} {k}")
    ok(fz.dead is None, "the daemon answered Ping and a property read after every batch",
       [fz.dead] if fz.dead else [])
    ok(not fz.hangs, f"every call got a reply or an error within {args.call_timeout} s", fz.hangs[:20])
    ok(not fz.wrong_ok, "no call with a wrong signature succeeded", fz.wrong_ok[:20])
    ok(not fz.odd_errors, "every error is one the contract or sd-bus names",
       [f"{k}: {v}" for k, v in fz.odd_errors.items()][:20])
    print(f"1..{n}")
    return 0 if fz.dead is None and not fz.hangs and not fz.wrong_ok and not fz.odd_errors else 1


def report_sigterm():
    """A SIGTERM says who sent it before we go: something outside the test
    has killed this fuzzer mid-run (exit 143), and the sender is the only
    clue. Blocked in every thread (at the top, before gi is imported);
    one thread waits for it."""

    def wait():
        # Python starts threads with no signal blocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        info = signal.sigwaitinfo({signal.SIGTERM})
        try:
            with open(f"/proc/{info.si_pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "(gone)"
        print(f"# SIGTERM from pid {info.si_pid} (uid {info.si_uid}): {cmd}", flush=True)
        os._exit(143)

    threading.Thread(target=wait, daemon=True).start()


if __name__ == "__main__":
    report_sigterm()
    sys.exit(main())
