#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Count individual test cases in meson's testlog.json files.

    tap-summary.py BUILD/meson-logs/testlog.json [MORE.json...]

meson 1.0.1 counts test programs; CI wants test cases. Each line of
testlog.json is one program's result: "name", "result" (OK, FAIL, SKIP,
ERROR, TIMEOUT, INTERRUPT, EXPECTEDFAIL, UNEXPECTEDPASS), "returncode" and
"stdout" (the TAP text for protocol 'tap'). Counting rules:

  - TAP programs: every top-level "ok N" passes and "not ok N" fails;
    a "# SKIP" directive counts as skipped; "not ok ... # TODO" (a known
    failure) counts as skipped and "ok ... # TODO" (an unexpected pass) as
    failed, matching meson's verdicts.
  - A program meson judged bad (FAIL, ERROR, TIMEOUT, INTERRUPT,
    UNEXPECTEDPASS) with no failing case of its own counts one extra
    failure, so a crash, a timeout or a short plan is never lost.
  - A program skipped as a whole ("1..0 # SKIP ...", or a non-TAP program
    with result SKIP) counts as one skipped.
  - Non-TAP programs count as one pass, failure or skip.
  - A missing or unreadable file counts as one failure (the build or the
    test run died before meson wrote it).

Prints the failures program by program (each failed case with the first
"# " lines it printed after itself), a line per file when given more
than one, and as its very last line "N passed, N failed" (plus
", N skipped" when any were skipped). Exit status 0 when nothing failed,
1 otherwise, 2 on a usage error.
"""

import json
import re
import sys

BAD = {"FAIL", "ERROR", "TIMEOUT", "INTERRUPT", "UNEXPECTEDPASS"}
GOOD = {"OK", "EXPECTEDFAIL"}

# "ok 3 - name # SKIP why", "not ok 4 name # TODO why", "ok" (number optional).
TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d*)\s*-?\s*([^#]*?)\s*(?:#\s*(.*))?$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
TAP_BAILOUT = re.compile(r"^Bail out!\s*(.*)$")
# Of the diagnostics after a failed case, the first lines, cut to a width.
DIAGNOSTIC_LINES = 12
DIAGNOSTIC_WIDTH = 240


class Counts:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def add(self, other):
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped

    def line(self):
        s = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            s += f", {self.skipped} skipped"
        return s


def parse_tap(stdout):
    """Returns (is_tap, counts, failed case descriptions, bail-out message)."""
    counts = Counts()
    failures = []
    is_tap = False
    bailout = None
    diagnostics = 0  # lines of "# ..." still to keep after a failed case
    for raw in stdout.splitlines():
        # Nested (indented) subtests are summarised by their parent's line.
        line = raw.rstrip()
        if diagnostics and line.startswith("#"):
            # What the failed case printed of itself (got/expected, the
            # sanitizer report): CI's summary is often all one gets to see.
            diagnostics -= 1
            failures[-1] += "\n      " + line[:DIAGNOSTIC_WIDTH]
            continue
        diagnostics = 0
        m = TAP_RESULT.match(line)
        if m:
            is_tap = True
            ok = m.group(1) == "ok"
            directive = (m.group(4) or "").strip()
            word = directive.split(None, 1)[0].upper() if directive else ""
            if word.startswith("SKIP"):
                counts.skipped += 1
            elif word == "TODO":
                if ok:
                    counts.failed += 1
                    failures.append(f"{line}  (unexpected pass of a TODO case)")
                else:
                    counts.skipped += 1
            elif ok:
                counts.passed += 1
            else:
                counts.failed += 1
                failures.append(line)
                diagnostics = DIAGNOSTIC_LINES
            continue
        if TAP_PLAN.match(line):
            is_tap = True
            continue
        m = TAP_BAILOUT.match(line)
        if m:
            is_tap = True
            bailout = m.group(1) or "(no reason given)"
    return is_tap, counts, failures, bailout


def summarize_file(path, out):
    """Counts one testlog.json; prints its failures to out."""
    total = Counts()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as e:
        print(f"MISSING {path}: {e} (did the build or the test run fail before any test ran?)", file=out)
        total.failed += 1
        return total

    if not lines:
        print(f"EMPTY {path}: no test results (no tests registered, or the run was interrupted)", file=out)
        total.failed += 1
        return total

    for lineno, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
            name = str(entry["name"])
            result = str(entry["result"])
        except (ValueError, KeyError, TypeError) as e:
            print(f"BROKEN {path}:{lineno}: not a meson test result ({e})", file=out)
            total.failed += 1
            continue
        stdout = entry.get("stdout") or ""
        is_tap, counts, failures, bailout = parse_tap(stdout)

        if not is_tap:
            # An exit-code test: the program is the case.
            if result in GOOD:
                counts.passed += 1
            elif result == "SKIP":
                counts.skipped += 1
            else:
                counts.failed += 1
                failures.append(f"exit status {entry.get('returncode')}")
        elif result == "SKIP" and counts.passed == counts.skipped == counts.failed == 0:
            counts.skipped += 1  # "1..0 # SKIP why"

        if result in BAD and counts.failed == 0:
            # Crashed, timed out, bailed out, or ran short of its plan:
            # meson says it failed although no case said so.
            why = {"TIMEOUT": "timed out", "INTERRUPT": "was interrupted",
                   "UNEXPECTEDPASS": "passed unexpectedly"}.get(result)
            if not why:
                rc = entry.get("returncode")
                if bailout:
                    why = f"bailed out: {bailout}"
                elif isinstance(rc, int) and rc < 0:
                    why = f"was killed by signal {-rc} after its last reported case"
                elif rc:
                    why = f"exited with status {rc} after its last reported case"
                else:
                    why = "did not complete its TAP plan"
            counts.failed += 1
            failures.append(f"the program {why}")

        if failures:
            print(f"{result} {name}: {counts.failed} failed", file=out)
            for f in failures:
                print(f"    {f}", file=out)
        total.add(counts)
    return total


def main(argv):
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip(), file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0

    grand = Counts()
    for path in argv:
        counts = summarize_file(path, sys.stdout)
        if len(argv) > 1:
            print(f"{path}: {counts.line()}")
        grand.add(counts)
    sys.stdout.flush()
    print(grand.line())
    return 0 if grand.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
