#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bounded TCP transfer between test hosts, for throughput checks.

  xfer.py serve PORT            accept one connection, read to EOF, answer
                                one byte, print the byte count
  xfer.py send HOST PORT BYTES  connect (retrying up to 10 s), send BYTES,
                                wait for the answer, print the seconds taken

The sender's time covers delivery: the receiver answers only after it has
read everything.
"""
import socket
import sys
import time

CHUNK = 64 * 1024
TIMEOUT = 60


def serve(port):
    with socket.create_server(("0.0.0.0", port), reuse_port=False) as srv:
        srv.settimeout(TIMEOUT)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            total = 0
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    break
                total += len(data)
            conn.sendall(b"k")
    print(total)


def send(host, port, nbytes):
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock:
        sock.settimeout(TIMEOUT)
        buf = b"\xa5" * CHUNK
        start = time.monotonic()
        left = nbytes
        while left > 0:
            n = min(left, CHUNK)
            sock.sendall(buf[:n])
            left -= n
        sock.shutdown(socket.SHUT_WR)
        if sock.recv(1) != b"k":
            sys.exit("xfer: no acknowledgement from the receiver")
        print(f"{time.monotonic() - start:.4f}")


def main(argv):
    if len(argv) == 3 and argv[1] == "serve":
        serve(int(argv[2]))
    elif len(argv) == 5 and argv[1] == "send":
        send(argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
