#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tiny RFB (VNC) client for tests/hosts/test-displays.sh, stdlib only.

    rfb-client.py URI security             print the security types offered ("1", "2", "1 2")
    rfb-client.py URI snapshot OUT.ppm     the whole framebuffer (raw, 32 bpp) as a PPM
    rfb-client.py URI hold OUT.ppm         snapshot, then stay connected (one update
                                           request a second) until the server closes the
                                           connection; prints "CLOSED after N s"

URI is vnc://HOST:PORT as Domain.Displays gives it. Only security type None
is spoken beyond the list (VNC authentication needs DES, which the stdlib
has not).
"""
import socket
import struct
import sys
import time
import urllib.parse


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def connect(uri):
    u = urllib.parse.urlsplit(uri)
    if u.scheme != "vnc" or not u.hostname or not u.port:
        sys.exit(f"not a vnc://HOST:PORT URI: {uri}")
    sock = socket.create_connection((u.hostname, u.port), timeout=20)
    version = recv_exact(sock, 12)
    if not version.startswith(b"RFB "):
        sys.exit(f"not an RFB server: {version!r}")
    sock.sendall(b"RFB 003.008\n")
    n = recv_exact(sock, 1)[0]
    if n == 0:
        length = struct.unpack(">I", recv_exact(sock, 4))[0]
        sys.exit("refused: " + recv_exact(sock, length).decode(errors="replace"))
    types = list(recv_exact(sock, n))
    return sock, types


def handshake(sock, types):
    if 1 not in types:
        sys.exit(f"the server wants authentication (types {types}); this client speaks only None")
    sock.sendall(b"\x01")
    if struct.unpack(">I", recv_exact(sock, 4))[0] != 0:
        sys.exit("security handshake failed")
    sock.sendall(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", recv_exact(sock, 4))
    recv_exact(sock, 16)  # the server's pixel format: we set ours
    name_len = struct.unpack(">I", recv_exact(sock, 4))[0]
    recv_exact(sock, name_len)
    # SetPixelFormat: 32 bpp, depth 24, little endian, true colour, RGB at 16/8/0.
    sock.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    # SetEncodings: raw only.
    sock.sendall(struct.pack(">BxHi", 2, 1, 0))
    return width, height


def framebuffer(sock, width, height, incremental=False, fb=None):
    fb = fb if fb is not None else bytearray(width * height * 4)
    sock.sendall(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0, width, height))
    while True:
        kind = recv_exact(sock, 1)[0]
        if kind == 0:
            break
        if kind == 2:  # Bell
            continue
        if kind == 3:  # ServerCutText
            recv_exact(sock, 3)
            recv_exact(sock, struct.unpack(">I", recv_exact(sock, 4))[0])
            continue
        sys.exit(f"unexpected server message {kind}")
    recv_exact(sock, 1)
    (rects,) = struct.unpack(">H", recv_exact(sock, 2))
    for _ in range(rects):
        x, y, w, h, enc = struct.unpack(">HHHHi", recv_exact(sock, 12))
        if enc == -223:  # DesktopSize
            width, height = w, h
            fb = bytearray(width * height * 4)
            continue
        if enc != 0:
            sys.exit(f"unexpected encoding {enc}")
        data = recv_exact(sock, w * h * 4)
        for row in range(h):
            start = ((y + row) * width + x) * 4
            fb[start:start + w * 4] = data[row * w * 4:(row + 1) * w * 4]
    return width, height, fb


def write_ppm(path, width, height, fb):
    rgb = bytearray(width * height * 3)
    for i in range(width * height):
        b, g, r = fb[i * 4], fb[i * 4 + 1], fb[i * 4 + 2]
        rgb[i * 3:i * 3 + 3] = bytes((r, g, b))
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (width, height) + bytes(rgb))


def main():
    uri, mode = sys.argv[1], sys.argv[2]
    sock, types = connect(uri)
    if mode == "security":
        print(" ".join(str(t) for t in types))
        return
    width, height = handshake(sock, types)
    width, height, fb = framebuffer(sock, width, height)
    write_ppm(sys.argv[3], width, height, fb)
    if mode == "snapshot":
        print(f"SNAPSHOT {width}x{height}")
        return
    print(f"CONNECTED {width}x{height}", flush=True)
    start = time.monotonic()
    sock.settimeout(300)
    try:
        while True:
            width, height, fb = framebuffer(sock, width, height, incremental=True, fb=fb)
            time.sleep(1)
    except (EOFError, ConnectionError, OSError):
        pass
    print(f"CLOSED after {time.monotonic() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
