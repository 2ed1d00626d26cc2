#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a `vmigratectl report` picture shows, for test-report.sh to assert.

report-check.py SVG PNG STATS-JSON prints KEY=VALUE lines:
  png=WxH            the size rsvg-convert rendered
  png-dark=N         pixels drawn dark (text, axes): more than a few hundred
  png-remaining=N    pixels in the colour of the remaining-data curve
  png-dirty=N        pixels in the colour of the dirty-rate curve
  axes=T1|T2|T3      the axis titles, time axis first
  markers=N          pass markers (circles of class pass-marker)
  marker-passes=...  the pass numbers in their tooltips, in order
  history-passes=... the passes of the history's "pass" samples (GetJobStats)
  downtime-ms=N      GetJobStats' downtime-ms
  phase=P            GetJobStats' phase
  postcopy-active=B  GetJobStats' postcopy (true: it ended in post-copy)
  switchover=TEXT    the switch-over's label, or -
  postcopy=TEXT      the post-copy switch's label, or -
  title=TEXT         the heading
Nothing but the standard library: the PNG is decoded by hand.
"""
import json
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

NS = {"s": "http://www.w3.org/2000/svg"}


def png_pixels(path):
    """(width, height, rows of (r, g, b, a) tuples) of an 8-bit RGB(A) PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("%s: not a PNG" % path)
    pos, idat, width, height, ctype, depth = 8, b"", 0, 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or ctype not in (2, 6):
        raise SystemExit("%s: depth %d colour type %d, expected 8-bit RGB(A)" % (path, depth, ctype))
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def near(px, rgb, tol=40):
    return all(abs(px[i] - rgb[i]) <= tol for i in range(3))


def main():
    svg, png, stats_json = sys.argv[1:4]
    out = {}

    width, height, bpp, rows = png_pixels(png)
    out["png"] = "%dx%d" % (width, height)
    dark = blue = red = 0
    for line in rows:
        for x in range(0, len(line), bpp):
            px = line[x : x + 3]
            if bpp == 4 and line[x + 3] < 128:
                continue
            if max(px) < 100:
                dark += 1
            if near(px, (0x1F, 0x5F, 0xA8)):
                blue += 1
            if near(px, (0xC8, 0x43, 0x1B)):
                red += 1
    out["png-dark"] = dark
    out["png-remaining"] = blue
    out["png-dirty"] = red

    root = ET.parse(svg).getroot()
    axes = []
    for axis in ("axis-time", "axis-remaining", "axis-rate"):
        g = root.find(".//s:g[@id='%s']" % axis, NS)
        titles = [t.text for t in (g if g is not None else []) if "axis-title" in (t.get("class") or "")]
        axes.append(titles[0] if titles else "-")
    out["axes"] = "|".join(axes)
    markers = root.findall(".//s:circle[@class='pass-marker']", NS)
    out["markers"] = len(markers)
    passes = []
    for m in markers:
        t = m.find("s:title", NS)
        match = re.match(r"pass (\d+) ", t.text if t is not None else "")
        passes.append(match.group(1) if match else "?")
    out["marker-passes"] = " ".join(passes)
    events = {"switchover-text": "-", "postcopy-text": "-"}
    for t in root.findall(".//s:g[@id='events']/s:text", NS):
        if t.get("class") in events:
            events[t.get("class")] = t.text
    out["switchover"] = events["switchover-text"]
    out["postcopy"] = events["postcopy-text"]
    title = root.find("s:text[@class='title']", NS)
    out["title"] = title.text if title is not None else "-"

    stats = json.load(open(stats_json))["data"][0]
    history = stats.get("history", {}).get("data", [])
    out["history-passes"] = " ".join(
        str(s["pass"]["data"]) for s in history if s["event"]["data"] == "pass"
    )
    out["downtime-ms"] = stats["downtime-ms"]["data"]
    out["phase"] = stats["phase"]["data"]
    out["postcopy-active"] = str(stats["postcopy"]["data"]).lower()

    for k, v in out.items():
        print("%s=%s" % (k, v))


if __name__ == "__main__":
    main()
