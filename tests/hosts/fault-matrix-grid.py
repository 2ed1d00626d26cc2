#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fault matrix's rows (FAULT|POINT|OUTCOME|SETTLED-MS|..., one per
line on standard input) as a Markdown grid: a row per point, a column per
fault, in the order they came; a cell run more than once shows every
round. ok: the guest runs on one host; lost: the fault killed its only
copy and nothing is left; resumed: post-copy failed on both hosts and
postcopy-resume completed it; FAIL: the invariant did not hold."""
import sys

faults, points, cells = [], [], {}
for line in sys.stdin:
    parts = line.rstrip("\n").split("|")
    if len(parts) < 4:
        continue
    fault, point, outcome, ms = parts[:4]
    if fault not in faults:
        faults.append(fault)
    if point not in points:
        points.append(point)
    word = outcome.split()[0].rstrip(":")
    word = {"lost-by-fault": "lost"}.get(word, word)
    if "(resumed)" in outcome and word == "ok":
        word = "resumed"
    secs = "%.0f s" % (int(ms) / 1000) if ms.isdigit() else ""
    cells.setdefault((fault, point), []).append(("%s %s" % (word, secs)).strip())

print("| point | " + " | ".join(faults) + " |")
print("|---" * (len(faults) + 1) + "|")
for point in points:
    row = [", ".join(cells.get((f, point), ["–"])) for f in faults]
    print("| %s | %s |" % (point, " | ".join(row)))
