#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a command under the sandbox of a systemd unit file, without systemd.

    unit-sandbox.py [--also-allow=NAMES] UNIT -- COMMAND [ARG...]
    unit-sandbox.py --describe UNIT

The hosts suite starts vmigrated through this, with the unit the build
generates (dbus-config/vmigrated.service), so that a setting of the unit
that takes away something the daemon, QEMU, swtpm or ssh needs makes the
tests fail here rather than on an admin's host. Every list comes from the
unit file itself; nothing is duplicated.

What it applies, as systemd does for a service:
  - CapabilityBoundingSet= (the bounding set; inheritable and ambient sets
    emptied) and NoNewPrivileges=, through util-linux's setpriv;
  - UMask=;
  - seccomp filters (python3-seccomp), each as systemd builds it:
    SystemCallFilter= with SystemCallErrorNumber= (an allow-list starts from
    @default; groups are expanded by `systemd-analyze syscall-filter`, so
    they are this systemd's), SystemCallArchitectures=native (the filters
    hold the native architecture only: any other is killed),
    RestrictAddressFamilies=, RestrictNamespaces=, LockPersonality=,
    RestrictRealtime=, and the system calls that ProtectKernelModules=,
    ProtectClock=, ProtectHostname=, ProtectKernelLogs= and
    ProtectKernelTunables= deny.

What it does not (--describe prints this for the unit at hand): the mount
namespace (ProtectSystem=, ReadWritePaths=, ProtectHome=, PrivateTmp=,
PrivateMounts=, ProtectProc=, the read-only /proc/sys and /sys of
ProtectKernelTunables= and ProtectControlGroups=), the device cgroup
(DevicePolicy=, DeviceAllow=), RestrictSUIDSGID=, StateDirectory= and
RuntimeDirectory= (the fixture makes those), KillMode= and Restart=.

--also-allow adds system calls (or @groups) to an allow-list, for what a
sanitizer's run time needs on top of the program (LeakSanitizer stops the
threads with ptrace); the caller says so in its output.
"""

import errno
import functools
import os
import socket
import subprocess
import sys

SETPRIV = "/usr/bin/setpriv"
SYSTEMD_ANALYZE = "systemd-analyze"

# <linux/sched.h>: what RestrictNamespaces= knows.
NAMESPACE_FLAGS = {
    "cgroup": 0x02000000,
    "ipc": 0x08000000,
    "net": 0x40000000,
    "mnt": 0x00020000,
    "pid": 0x20000000,
    "user": 0x10000000,
    "uts": 0x04000000,
}
AF_MAX = 46  # Linux 6.x; families above it do not exist.

EMULATED = (
    "CapabilityBoundingSet", "NoNewPrivileges", "UMask", "SystemCallFilter",
    "SystemCallErrorNumber", "SystemCallArchitectures", "RestrictAddressFamilies",
    "RestrictNamespaces", "LockPersonality", "RestrictRealtime",
    "ProtectKernelModules", "ProtectClock", "ProtectHostname",
)
# Emulated in part: their system call side only.
PARTLY = ("ProtectKernelLogs", "ProtectKernelTunables")


def die(msg):
    print(f"unit-sandbox: {msg}", file=sys.stderr)
    sys.exit(127)


def parse_unit(path):
    """The [Service] section as a list of (key, value), in file order."""
    out = []
    section = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.append((key.strip(), value.strip()))
    return out


def last(settings, key, default=None):
    value = default
    for k, v in settings:
        if k == key:
            value = v
    return value


def boolean(value):
    return value is not None and value.lower() in ("1", "yes", "true", "on")


@functools.lru_cache(maxsize=None)
def expand(name):
    """The system calls of a name or @group, as this systemd defines them."""
    if not name.startswith("@"):
        return frozenset([name])
    res = subprocess.run([SYSTEMD_ANALYZE, "syscall-filter", "--no-pager", name],
                         capture_output=True, text=True)
    if res.returncode != 0:
        die(f"systemd-analyze syscall-filter {name} failed: {res.stderr.strip()}")
    calls = set()
    for line in res.stdout.splitlines():
        word = line.strip()
        if not word or word.startswith("#") or word == name:
            continue
        calls |= expand(word)
    return frozenset(calls)


def syscall_filter(settings):
    """(allow_list, names) from SystemCallFilter= lines, systemd's way: the
    first line decides the kind (a leading ~ makes a deny-list); an
    allow-list starts from @default; later lines of the other kind take
    their names away. An empty assignment resets."""
    allow_list = None
    names = set()
    for k, v in settings:
        if k != "SystemCallFilter":
            continue
        if not v:
            allow_list, names = None, set()
            continue
        invert = v.startswith("~")
        words = v[1:].split() if invert else v.split()
        if allow_list is None:
            allow_list = not invert
            if allow_list:
                names |= expand("@default")
        for w in words:
            w = w.split(":", 1)[0]  # name:errno: the per-call errno is not used here
            calls = expand(w)
            if invert == (not allow_list):
                names |= calls
            else:
                names -= calls
    return allow_list, names


def errno_action(settings):
    name = last(settings, "SystemCallErrorNumber")
    if not name:
        return seccomp_mod().KILL_PROCESS
    num = getattr(errno, name, None) if not name.isdigit() else int(name)
    if num is None:
        die(f"SystemCallErrorNumber={name} is no errno name")
    return seccomp_mod().ERRNO(num)


@functools.lru_cache(maxsize=None)
def seccomp_mod():
    try:
        import seccomp  # python3-seccomp
    except ImportError:
        die("python3-seccomp is missing (tools/install-deps.sh installs it)")
    return seccomp


def new_filter(default):
    # The native architecture only: SystemCallArchitectures=native.
    return seccomp_mod().SyscallFilter(defaction=default)


def add(f, action, name, *args):
    """Adds a rule; a system call this kernel/libseccomp does not know is
    skipped, as systemd skips it."""
    try:
        f.add_rule(action, name, *args)
    except (RuntimeError, ValueError):
        pass


def build_filters(settings, also_allow):
    sc = seccomp_mod()
    filters = []

    allow_list, names = syscall_filter(settings)
    if allow_list is not None:
        action = errno_action(settings)
        if allow_list:
            for extra in also_allow:
                names |= expand(extra)
            f = new_filter(action)
            for n in sorted(names):
                add(f, sc.ALLOW, n)
        else:
            f = new_filter(sc.ALLOW)
            for n in sorted(names):
                add(f, action, n)
        syscalls = f
    else:
        syscalls = None

    # The implied denials of the Protect* settings (systemd adds them as
    # their own filters).
    implied = set()
    if boolean(last(settings, "ProtectKernelModules")):
        implied |= expand("@module")
    if boolean(last(settings, "ProtectClock")):
        implied |= expand("@clock")
    if boolean(last(settings, "ProtectHostname")):
        implied |= {"sethostname", "setdomainname"}
    if boolean(last(settings, "ProtectKernelLogs")):
        implied |= {"syslog"}
    if boolean(last(settings, "ProtectKernelTunables")):
        implied |= {"_sysctl"}
    f = new_filter(sc.ALLOW)
    for n in sorted(implied):
        add(f, sc.ERRNO(errno.EPERM), n)
    filters.append(f)

    families = last(settings, "RestrictAddressFamilies")
    if families:
        invert = families.startswith("~")
        wanted = set()
        for w in (families[1:] if invert else families).split():
            num = getattr(socket, w, None)
            if num is None:
                die(f"RestrictAddressFamilies: unknown family {w}")
            wanted.add(int(num))
        f = new_filter(sc.ALLOW)
        deny = sc.ERRNO(errno.EAFNOSUPPORT)
        if invert:
            for af in sorted(wanted):
                add(f, deny, "socket", sc.Arg(0, sc.EQ, af))
        else:
            valid = sorted(af for af in wanted if 0 < af < AF_MAX)
            if not valid:
                add(f, deny, "socket")
            else:
                add(f, deny, "socket", sc.Arg(0, sc.LT, valid[0]))
                add(f, deny, "socket", sc.Arg(0, sc.GT, valid[-1]))
                for af in range(1, AF_MAX):
                    if af not in wanted:
                        add(f, deny, "socket", sc.Arg(0, sc.EQ, af))
        filters.append(f)

    ns = last(settings, "RestrictNamespaces")
    if ns and ns.lower() not in ("no", "false", "0", "off"):
        if boolean(ns):
            retain = set()
        elif ns.startswith("~"):
            retain = set(NAMESPACE_FLAGS) - set(ns[1:].split())
        else:
            retain = set(ns.split())
        f = new_filter(sc.ALLOW)
        eperm = sc.ERRNO(errno.EPERM)
        # clone3() takes its flags in a struct seccomp cannot read: ENOSYS
        # makes glibc fall back to clone(), as systemd does.
        add(f, sc.ERRNO(errno.ENOSYS), "clone3")
        if not retain:
            add(f, eperm, "setns")
        for name, flag in NAMESPACE_FLAGS.items():
            if name in retain:
                continue
            add(f, eperm, "unshare", sc.Arg(0, sc.MASKED_EQ, flag, flag))
            add(f, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))  # x86-64 argument order
            if retain:
                add(f, eperm, "setns", sc.Arg(1, sc.MASKED_EQ, flag, flag))
        filters.append(f)

    if boolean(last(settings, "LockPersonality")):
        f = new_filter(sc.ALLOW)
        add(f, sc.ERRNO(errno.EPERM), "personality", sc.Arg(0, sc.NE, 0))  # PER_LINUX
        filters.append(f)

    if boolean(last(settings, "RestrictRealtime")):
        # SCHED_OTHER 0, SCHED_BATCH 3, SCHED_IDLE 5 stay.
        f = new_filter(sc.ALLOW)
        for p in (1, 2, 4):
            add(f, sc.ERRNO(errno.EPERM), "sched_setscheduler", sc.Arg(1, sc.EQ, p))
        add(f, sc.ERRNO(errno.EPERM), "sched_setscheduler", sc.Arg(1, sc.GT, 5))
        filters.append(f)
    if syscalls:
        filters.append(syscalls)
    return filters


def setpriv_argv(settings):
    argv = [SETPRIV]
    caps = last(settings, "CapabilityBoundingSet")
    if caps is not None:
        if caps.startswith("~"):
            die("CapabilityBoundingSet=~... is not emulated; list the capabilities kept")
        # setpriv spells them without CAP_ and in lower case.
        kept = ",".join("+" + c.lower().removeprefix("cap_") for c in caps.split())
        argv += ["--bounding-set", "-all" + ("," + kept if kept else ""),
                 "--inh-caps", "-all", "--ambient-caps", "-all"]
    if boolean(last(settings, "NoNewPrivileges")):
        argv.append("--no-new-privs")
    return argv


def describe(settings):
    keys = []
    for k, _ in settings:
        if k not in keys:
            keys.append(k)
    for k in keys:
        if k in EMULATED:
            how = "emulated"
        elif k in PARTLY:
            how = "partly emulated (its system call filter, not its mounts)"
        else:
            how = "not emulated"
        print(f"{k}: {how}")


def main(argv):
    also_allow = []
    while argv and argv[0].startswith("--also-allow="):
        also_allow += [w for w in argv[0].split("=", 1)[1].replace(",", " ").split() if w]
        argv = argv[1:]
    if len(argv) == 2 and argv[0] == "--describe":
        describe(parse_unit(argv[1]))
        return 0
    stage2 = False
    if argv and argv[0] == "--stage2":
        stage2 = True
        argv = argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    unit, command = argv[0], argv[2:]
    settings = parse_unit(unit)

    if not stage2:
        # Capabilities and no-new-privs first (setpriv needs its own
        # capabilities for that, and capset is not in every filter), then
        # this script again under them for the filters.
        me = os.path.abspath(__file__)
        again = [sys.executable, me]
        if also_allow:
            again.append("--also-allow=" + ",".join(also_allow))
        again += ["--stage2", unit, "--"] + command
        argv = setpriv_argv(settings) + ["--"] + again
        os.execv(argv[0], argv)

    umask = last(settings, "UMask")
    if umask:
        os.umask(int(umask, 8))
    filters = build_filters(settings, also_allow)
    # Loaded right before the exec: this script's own calls stay
    # unfiltered. The system call list goes last: loading a filter is a
    # system call it may not allow.
    for f in filters:
        f.load()
    try:
        os.execvp(command[0], command)
    except OSError as e:
        die(f"cannot run {command[0]}: {e.strerror}")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
