#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A QEMU that lacks some migration features, for a test host's
VMIGRATE_QEMU: the real QEMU with the capabilities and parameters named in
VMTEST_QEMU_HIDE (comma-separated) taken out of what its monitor answers to
query-migrate-capabilities and query-migrate-parameters, as an older QEMU
would answer.

Only vmigrated's probe ("-machine none", the monitor on a listening socket
passed as fd 3) is answered through this filter; any other command line
execs the real QEMU unchanged: a host whose probe says its QEMU lacks a
feature is refused migrations that need it before a guest's QEMU starts.

    VMTEST_QEMU_REAL   the real QEMU (default: qemu-system-x86_64 in PATH)
"""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def real_qemu():
    real = os.environ.get("VMTEST_QEMU_REAL") or shutil.which("qemu-system-x86_64")
    if not real or os.path.realpath(real) == os.path.realpath(__file__):
        sys.exit("qemu-without: no real QEMU (set VMTEST_QEMU_REAL)")
    return real


def is_probe(argv):
    return "none" in [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "-machine"] and any(
        a.startswith("socket,id=monitor,fd=3,") for a in argv)


def filtered(reply, command, hide):
    ret = reply.get("return")
    if command == "query-migrate-capabilities" and isinstance(ret, list):
        reply["return"] = [c for c in ret if c.get("capability") not in hide]
    elif command == "query-migrate-parameters" and isinstance(ret, dict):
        reply["return"] = {k: v for k, v in ret.items() if k not in hide}
    return reply


def die_with_parent():
    # PR_SET_PDEATHSIG: the real QEMU goes when the probe kills us.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def probe(real, argv, hide):
    tmp = tempfile.mkdtemp(prefix="qemu-without-")
    path = os.path.join(tmp, "qmp.sock")
    args = [a if not a.startswith("socket,id=monitor,fd=3,") else f"socket,id=monitor,path={path},server=on,wait=off"
            for a in argv]
    listener = socket.socket(fileno=3)
    proc = subprocess.Popen([real] + args, preexec_fn=die_with_parent, pass_fds=())
    try:
        deadline = time.monotonic() + 20
        upstream = socket.socket(socket.AF_UNIX)
        while True:
            try:
                upstream.connect(path)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return 1
                time.sleep(0.05)
        client, _ = listener.accept()
        pending = {}  # id (as JSON text) -> command
        bufs = {client: b"", upstream: b""}
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ)
        sel.register(upstream, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                src = key.fileobj
                data = src.recv(65536)
                if not data:
                    return 0
                bufs[src] += data
                while b"\n" in bufs[src]:
                    line, bufs[src] = bufs[src].split(b"\n", 1)
                    if src is client:
                        try:
                            msg = json.loads(line)
                            if "id" in msg:
                                pending[json.dumps(msg["id"])] = msg.get("execute")
                        except ValueError:
                            pass
                        upstream.sendall(line + b"\n")
                    else:
                        try:
                            msg = json.loads(line)
                            command = pending.pop(json.dumps(msg["id"]), None) if "id" in msg else None
                            if command:
                                line = json.dumps(filtered(msg, command, hide)).encode()
                        except ValueError:
                            pass
                        client.sendall(line + b"\n")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    argv = sys.argv[1:]
    real = real_qemu()
    if not is_probe(argv):
        os.execv(real, [real] + argv)
    hide = {h for h in os.environ.get("VMTEST_QEMU_HIDE", "").split(",") if h}
    return probe(real, argv, hide)


if __name__ == "__main__":
    sys.exit(main())
