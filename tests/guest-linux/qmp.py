#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One command to QEMU's QMP monitor or to the QEMU guest agent.

    qmp.py SOCKET COMMAND [JSON-ARGUMENTS]
    qmp.py --agent SOCKET COMMAND [JSON-ARGUMENTS]

QMP: negotiates capabilities, sends the command, skips events and prints
the "return" value as JSON. Agent (a chardev socket of the virtio-serial
port org.qemu.guest_agent.0): the agent has no greeting, and a previous
client may have left a half-read answer in the channel, so it first sends
guest-sync with a fresh id and reads until that id comes back.

Exit status: 0 with the return value printed; 1 the command answered an
error (printed on stderr); 2 timeout, connection or protocol error.
Stdlib only.
"""

import argparse
import json
import random
import socket
import sys
import time


class Channel:
    def __init__(self, path, timeout):
        self.deadline = time.monotonic() + timeout
        self.buf = b""
        last = None
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                break
            except OSError as e:
                s.close()
                last = e
            if time.monotonic() >= self.deadline:
                raise OSError(f"cannot connect to {path}: {last}")
            time.sleep(0.05)
        self.sock = s

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for an answer")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("the peer closed the socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.strip().lstrip(b"\xff")
        return json.loads(line) if line else None


def answer(ch):
    while True:
        m = ch.recv()
        if m is None or "event" in m:
            continue
        return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", action="store_true", help="SOCKET is the guest agent's channel, not QMP")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("socket")
    ap.add_argument("command")
    ap.add_argument("arguments", nargs="?", help="the command's arguments as a JSON object")
    args = ap.parse_args()
    cmd = {"execute": args.command}
    if args.arguments:
        cmd["arguments"] = json.loads(args.arguments)
    try:
        ch = Channel(args.socket, args.timeout)
        if args.agent:
            # 0xFF makes the agent drop any partial command a previous
            # client left; then sync on a fresh id.
            ch.sock.sendall(b"\xff")
            sync_id = random.randrange(1, 2**31)
            ch.send({"execute": "guest-sync-delimited", "arguments": {"id": sync_id}})
            while answer(ch).get("return") != sync_id:
                pass
        else:
            greeting = ch.recv()
            if not greeting or "QMP" not in greeting:
                raise OSError(f"not a QMP greeting: {greeting}")
            ch.send({"execute": "qmp_capabilities"})
            if "return" not in answer(ch):
                raise OSError("qmp_capabilities failed")
        ch.send(cmd)
        m = answer(ch)
    except (OSError, TimeoutError, ValueError) as e:
        print(f"qmp.py: {args.command}: {e}", file=sys.stderr)
        return 2
    if "error" in m:
        print(f"qmp.py: {args.command}: {m['error'].get('class')}: {m['error'].get('desc')}", file=sys.stderr)
        return 1
    print(json.dumps(m.get("return")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
