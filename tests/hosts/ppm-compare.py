#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ppm-compare.py A.ppm B.ppm ROWS: compares the top ROWS pixel rows of two
PPM (P6) images: prints "SAME n-lit" (n pixels not black) or "DIFFER k".
With the VGA text mode's 9x16 font, rows 0-15 are the first text line."""
import sys


def load(path):
    data = open(path, "rb").read()
    magic, size, maxval, pixels = data.split(b"\n", 3)
    if magic != b"P6" or maxval != b"255":
        sys.exit(f"{path}: not a P6 PPM")
    width, height = map(int, size.split())
    return width, height, pixels


wa, ha, pa = load(sys.argv[1])
wb, hb, pb = load(sys.argv[2])
rows = int(sys.argv[3])
if (wa, ha) != (wb, hb):
    sys.exit(f"DIFFER size {wa}x{ha} {wb}x{hb}")
n = wa * rows * 3
a, b = pa[:n], pb[:n]
diff = sum(1 for i in range(0, n, 3) if a[i:i + 3] != b[i:i + 3])
lit = sum(1 for i in range(0, n, 3) if a[i:i + 3] != b"\0\0\0")
print(f"SAME {lit}-lit" if diff == 0 else f"DIFFER {diff}")
