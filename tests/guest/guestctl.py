#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Talk to the vmigrate test guest over its serial port.

QEMU exposes the guest's COM1 as a unix socket:

    -chardev socket,id=s0,path=PATH,server=on,wait=off,logfile=LOG
    -serial chardev:s0

Usage:
    guestctl.py --socket PATH status
    guestctl.py --socket PATH verify
    guestctl.py --socket PATH rate 5000
    guestctl.py --socket PATH disk-status
    guestctl.py --socket PATH disk-verify
    guestctl.py --socket PATH disk-rate 200
    guestctl.py --socket PATH wait-heartbeat
    guestctl.py --socket PATH raw 'some line'

Prints the guest's answer line. Exit status: 0 success (VERIFY OK, STATUS,
RATE, DISK-VERIFY OK, DISK-STATUS, DISK-RATE, a heartbeat), 1 the guest said
no (VERIFY BAD, DISK-VERIFY BAD, DISK-VERIFY ERROR, ERR ...), 2 timeout,
connection or usage error.

Every command is sent as "COMMAND @TAG" with a fresh tag and the guest echoes
the tag at the end of its answer: heartbeat lines, and answers meant for an
earlier client that gave up, are skipped. The tag is removed before printing.
"""

import argparse
import secrets
import select
import socket
import struct
import sys
import time

EXIT_OK = 0
EXIT_NO = 1
EXIT_ERROR = 2


class GuestError(Exception):
    pass


class Guest:
    def __init__(self, path, deadline):
        self.deadline = deadline
        self.buf = b""
        self.sock = self._connect(path)

    def remaining(self):
        return self.deadline - time.monotonic()

    def _connect(self, path):
        # The socket may not exist yet right after QEMU was started, and
        # QEMU accepts one client at a time: retry until the deadline.
        last = None
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except OSError as e:
                s.close()
                last = e
            if self.remaining() <= 0:
                raise GuestError(f"cannot connect to {path}: {last.strerror}")
            time.sleep(0.05)

    def send_line(self, line):
        # A leading newline ends any partial line a previous client left in
        # the guest's input buffer; the guest ignores empty lines.
        self.sock.sendall(b"\n" + line.encode() + b"\n")

    def read_line(self):
        while b"\n" not in self.buf:
            left = self.remaining()
            if left <= 0:
                raise GuestError("timed out waiting for the guest")
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            chunk = self.sock.recv(4096)
            if not chunk:
                raise GuestError("QEMU closed the serial socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def command(self, line):
        tag = "@" + secrets.token_hex(4)
        self.send_line(f"{line} {tag}")
        suffix = " " + tag
        while True:
            answer = self.read_line()
            if answer.endswith(suffix):
                return answer[: -len(suffix)]


BLOCK_SIZE = 4096
COUNTER_BASE = 0xFFFFFFFF
M32 = 0xFFFFFFFF


def mix32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def base_block(disk, block):
    """Block `block` of disk `disk` at version COUNTER_BASE, as guest.c's
    block_fill() writes it: counter, disk, block, then seed ^ (k * golden)."""
    block_id = (disk << 28) | block
    seed = mix32(block_id ^ mix32((COUNTER_BASE * 0x9E3779B1 + 0x632BE5AB) & M32))
    words = [COUNTER_BASE, disk, block]
    words += [seed ^ ((k * 0x9E3779B9) & M32) for k in range(3, BLOCK_SIZE // 4)]
    return struct.pack(f"<{BLOCK_SIZE // 4}I", *words)


def make_base(args):
    """A raw image whose every block holds the base version for disk
    args.disk: what the guest expects of blocks it never wrote on a disk
    named in vmtest.disk_base."""
    if args.size <= 0 or args.size % BLOCK_SIZE:
        print(f"guestctl: make-base: the size must be a positive multiple of {BLOCK_SIZE}", file=sys.stderr)
        return EXIT_ERROR
    if not 0 <= args.disk <= 3:
        print("guestctl: make-base: the disk index is 0..3", file=sys.stderr)
        return EXIT_ERROR
    with open(args.file, "xb") as f:
        for b in range(args.size // BLOCK_SIZE):
            f.write(base_block(args.disk, b))
    return EXIT_OK


def run(args):
    deadline = time.monotonic() + args.timeout
    guest = Guest(args.socket, deadline)
    try:
        if args.cmd == "wait-heartbeat":
            while True:
                line = guest.read_line()
                if line.startswith("HB "):
                    print(line)
                    return EXIT_OK
        if args.cmd == "rate":
            line = f"rate {args.pages_per_second}"
        elif args.cmd == "disk-rate":
            line = f"disk-rate {args.blocks_per_second}"
        elif args.cmd == "raw":
            if "\n" in args.line or "\r" in args.line:
                raise GuestError("raw: the line must not contain a newline")
            line = args.line
        else:
            line = args.cmd
        answer = guest.command(line)
        print(answer)
        if answer.startswith(("ERR", "VERIFY BAD", "DISK-VERIFY BAD", "DISK-VERIFY ERROR")):
            return EXIT_NO
        expected = {
            "status": "STATUS ",
            "verify": "VERIFY OK",
            "rate": "RATE ",
            "disk-status": "DISK-STATUS ",
            "disk-verify": "DISK-VERIFY OK",
            "disk-rate": "DISK-RATE ",
        }.get(args.cmd)
        if expected and not answer.startswith(expected):
            raise GuestError(f"unexpected answer to '{line}': {answer}")
        return EXIT_OK
    finally:
        guest.sock.close()


def main():
    ap = argparse.ArgumentParser(description="Talk to the vmigrate test guest over its serial socket.")
    ap.add_argument("--socket", help="QEMU chardev unix socket of the guest's COM1 (required but for make-base)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for connection and answer (default 30)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="print STATUS (pages, written count, rate, uptime, area)")
    sub.add_parser("verify", help="check every page: exit 0 on VERIFY OK, 1 on VERIFY BAD")
    r = sub.add_parser("rate", help="set the page-write rate")
    r.add_argument("pages_per_second", type=int)
    sub.add_parser("disk-status", help="print DISK-STATUS (disks, blocks written, disk rate, last block written)")
    sub.add_parser("disk-verify",
                   help="read back every disk block: exit 0 on DISK-VERIFY OK, 1 on DISK-VERIFY BAD or ERROR")
    d = sub.add_parser("disk-rate", help="set the disk block-write rate (blocks/s over all disks)")
    d.add_argument("blocks_per_second", type=int)
    sub.add_parser("wait-heartbeat", help="wait for the next heartbeat line and print it")
    raw = sub.add_parser("raw", help="send one line and print the answer")
    raw.add_argument("line")
    mb = sub.add_parser("make-base",
                        help="write a new raw image FILE whose blocks hold the base version the guest expects "
                             "of unwritten blocks of disk DISK with vmtest.disk_base (no --socket needed)")
    mb.add_argument("--disk", type=int, required=True, help="the guest's disk index (0..3)")
    mb.add_argument("--size", type=int, required=True, help="bytes, a multiple of 4096")
    mb.add_argument("file")
    args = ap.parse_args()
    if args.cmd == "make-base":
        return make_base(args)
    if not args.socket:
        ap.error("the following arguments are required: --socket")

    if args.timeout <= 0:
        print("guestctl: --timeout must be positive", file=sys.stderr)
        return EXIT_ERROR
    if args.cmd == "rate" and args.pages_per_second < 0:
        print("guestctl: rate must be >= 0", file=sys.stderr)
        return EXIT_ERROR
    if args.cmd == "disk-rate" and args.blocks_per_second < 0:
        print("guestctl: disk-rate must be >= 0", file=sys.stderr)
        return EXIT_ERROR
    try:
        return run(args)
    except GuestError as e:
        print(f"guestctl: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"guestctl: {args.socket}: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
