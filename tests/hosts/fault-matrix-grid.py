#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fault matrix's rows (FAULT|POINT|OUTCOME|SETTLED-MS|..., one per
line on standard input) as a Markdown grid: a row per point, a column per
fault, in the order they came; a cell run more than once shows every
round. ok: the guest runs on one host; lost: the fault killed its only
copy and nothing is left; resumed: post-copy failed on both hosts and
postcopy-resume completed it; FAIL: the invariant did not hold."""
import sys

# The test's order (test-fault-matrix.sh); anything else after, as it came.
FAULTS = ("kill-src-qemu kill-dst-qemu kill-src-daemon kill-dst-daemon term-src-daemon term-dst-daemon "
          "link-down loss30 state-full polkitd-gone").split()
POINTS = ("source-after-begin source-before-prepare destination-before-prepare destination-after-prepare "
          "source-after-prepare source-perform-first-pass source-perform-mid-stream source-before-finish "
          "destination-before-finish destination-after-finish source-after-finish source-before-confirm "
          "source-before-end").split()
POINTS += ["pc:" + p for p in ("source-before-postcopy-switch source-after-postcopy-check source-after-postcopy-switch "
                               "source-before-finish destination-before-finish destination-after-finish "
                               "source-before-confirm").split()]


def order(known, seen):
    return sorted(seen, key=lambda x: (known.index(x) if x in known else len(known), seen.index(x)))

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

faults, points = order(FAULTS, faults), order(POINTS, points)
print("| point | " + " | ".join(faults) + " |")
print("|---" * (len(faults) + 1) + "|")
for point in points:
    row = [", ".join(cells.get((f, point), ["–"])) for f in faults]
    print("| %s | %s |" % (point, " | ".join(row)))
