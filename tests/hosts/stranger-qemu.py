#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stranger's QEMU: another guest, started by hand from the command line
vmigrated used for a guest (its per-domain log), with the test guest's
memory size changed so that it is a different guest, migrating a valid
stream in clear text to a destination's data port. For hosts-tls: the
destination's QEMU, waiting for a TLS migration, must turn it away.

    stranger-qemu.py --argv-from LOG --workdir DIR --to HOST:PORT
                     [--exec PREFIX] [--mem 40M] [--timeout S]

Prints one line: "completed", or "failed: <QEMU's error>" (the stream was
refused), or "setup-failed: <why>" (the stranger could not even start).
Exit 0 whatever the stream's fate, 2 on usage errors. The QMP client and
the command-line rewriting are bench/raw-qmp-migrate.py's.
"""

import argparse
import importlib.util
import os
import re
import sys
import time


def load_raw():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "bench", "raw-qmp-migrate.py")
    spec = importlib.util.spec_from_file_location("raw_qmp_migrate", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def with_memory(argv, mem):
    """The same guest kernel told to use another amount of memory."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "-append":
            out[i + 1], n = re.subn(r"vmtest\.mem=\S+", f"vmtest.mem={mem}", out[i + 1])
            if n == 0:
                out[i + 1] += f" vmtest.mem={mem}"
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--argv-from", required=True, help="vmigrated's per-domain QEMU log")
    p.add_argument("--workdir", required=True)
    p.add_argument("--to", required=True, help="HOST:PORT of the destination's data port")
    p.add_argument("--exec", default="", help="command prefix running QEMU in its host")
    p.add_argument("--mem", default="40M", help="the stranger guest's vmtest.mem")
    p.add_argument("--timeout", type=float, default=30)
    args = p.parse_args()
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit():
        p.error(f"--to '{args.to}': HOST:PORT")

    raw = load_raw()
    os.makedirs(args.workdir, exist_ok=True)
    proc = qmp = None
    try:
        argv, qmp_path, _ = raw.rewrite_argv(with_memory(raw.read_argv(args.argv_from), args.mem), args.workdir,
                                             "stranger")
        proc = raw.spawn(args.exec, argv, os.path.join(args.workdir, "stranger-qemu.log"))
        deadline = time.monotonic() + args.timeout
        qmp = raw.Qmp(qmp_path, "stranger", deadline)
        qmp.execute("cont")
        qmp.execute("migrate-set-capabilities", raw.capabilities())
        qmp.execute("migrate", {"uri": f"tcp:{host}:{port}"})
    except raw.Failure as e:
        print(f"setup-failed: {e}")
        if proc is not None:
            raw.stop(proc, qmp)
        return 0
    try:
        qmp.wait_event("MIGRATION", lambda d: d.get("status") in ("completed", "failed"), args.timeout)
        info = qmp.execute("query-migrate")
        if info.get("status") == "completed":
            print("completed")
        else:
            print(f"failed: {info.get('error-desc', info.get('status'))}")
    except raw.Failure as e:
        print(f"failed: no end within {args.timeout:.0f} s ({e})")
    finally:
        raw.stop(proc, qmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
