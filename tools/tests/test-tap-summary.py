#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""TAP test for tools/tap-summary.py.

    test-tap-summary.py TAP-SUMMARY TESTLOG-MIXED.json TESTLOG-CLEAN.json

testlog-mixed.json is a real meson 1.0.1 log (env and commands blanked) of
programs that pass, fail a case, crash with SIGSEGV after two passing cases,
skip as a whole, skip and TODO single cases, fail or skip as exit-code
tests, bail out, time out, plus one that passes every case and then exits 1
(what LeakSanitizer does). testlog-clean.json has nothing failing.
"""

import json
import os
import subprocess
import sys
import tempfile

n = 0
failed = 0


def check(cond, name, diag=""):
    global n, failed
    n += 1
    if not cond:
        failed += 1
        for line in diag.splitlines():
            print(f"# {line}")
    print(f"{'ok' if cond else 'not ok'} {n} - {name}")


def run(summary, *files):
    p = subprocess.run([sys.executable, summary, *files], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    if len(sys.argv) != 4:
        print("usage: test-tap-summary.py TAP-SUMMARY MIXED.json CLEAN.json", file=sys.stderr)
        return 2
    summary, mixed, clean = sys.argv[1:]

    rc, out, err = run(summary, mixed)
    lines = out.splitlines()
    diag = f"rc={rc}\nstdout:\n{out}stderr:\n{err}"
    # 2 (mixed) + 2 (crash) + 2 (pass) + 1 (exit-pass) + 1 (timeout) + 1 (bailout) + 2 (leak)
    # failed: not ok 2, crash, exit-fail, timeout, bailout, leak
    # skipped: SKIP case, TODO case, skip-all program, exit 77
    check(lines and lines[-1] == "11 passed, 6 failed, 4 skipped", "counts cases of the mixed log", diag)
    check(rc == 1, "exits 1 when something failed", diag)
    check(any("tap-crash" in l for l in lines) and any("killed by signal 11" in l for l in lines),
          "reports the crashed program", diag)
    check(any("tap-asan-leak" in l for l in lines) and any("exited with status 1" in l for l in lines),
          "reports a program that passed its cases and exited non-zero", diag)
    check(any("not ok 2 - /a/two" in l for l in lines), "names the failing case", diag)
    check(not any("tap-pass" in l or "tap-skip-all" in l for l in lines),
          "says nothing about programs that did not fail", diag)

    rc, out, err = run(summary, clean)
    lines = out.splitlines()
    diag = f"rc={rc}\nstdout:\n{out}stderr:\n{err}"
    check(lines == ["4 passed, 0 failed, 1 skipped"], "a clean log prints only the total", diag)
    check(rc == 0, "exits 0 when nothing failed", diag)

    with tempfile.TemporaryDirectory() as tmp:
        noskip = os.path.join(tmp, "noskip.json")
        with open(clean, encoding="utf-8") as src, open(noskip, "w", encoding="utf-8") as dst:
            dst.writelines(l for l in src if "SKIP" not in l)
        rc, out, err = run(summary, noskip)
        check(out.splitlines()[-1:] == ["4 passed, 0 failed"] and rc == 0,
              "omits 'skipped' when nothing was skipped", f"rc={rc}\n{out}{err}")

        missing = os.path.join(tmp, "build-asan", "meson-logs", "testlog.json")
        rc, out, err = run(summary, clean, mixed, missing)
        lines = out.splitlines()
        diag = f"rc={rc}\nstdout:\n{out}stderr:\n{err}"
        check(lines[-1:] == ["15 passed, 7 failed, 5 skipped"], "sums several builds; a missing log is a failure",
              diag)
        check(f"{clean}: 4 passed, 0 failed, 1 skipped" in lines and f"{mixed}: 11 passed, 6 failed, 4 skipped" in lines,
              "prints a line per build", diag)
        check(rc == 1, "exits 1 when a log is missing", diag)

        broken = os.path.join(tmp, "broken.json")
        with open(broken, "w", encoding="utf-8") as f:
            f.write('{"name": "x", "result": "OK", "stdout": ""}\n{not json\n')
        rc, out, err = run(summary, broken)
        check(out.splitlines()[-1:] == ["1 passed, 1 failed"] and rc == 1, "a broken line counts as a failure",
              f"rc={rc}\n{out}{err}")

        diagnosed = os.path.join(tmp, "diagnosed.json")
        with open(diagnosed, "w", encoding="utf-8") as f:
            tap = ["ok 1 - first", "not ok 2 - no reports", "#   got: 'a: ==7==ERROR: LeakSanitizer'",
                   "#   expected: ''"] + [f"# line {i}" for i in range(20)] + ["ok 3 - after", "# not kept", "1..3"]
            f.write(json.dumps({"name": "diag", "result": "FAIL", "returncode": 1, "stdout": "\n".join(tap)}) + "\n")
        rc, out, err = run(summary, diagnosed)
        diag = f"rc={rc}\nstdout:\n{out}stderr:\n{err}"
        check("==7==ERROR: LeakSanitizer" in out and "expected: ''" in out,
              "prints what a failed case said of itself", diag)
        check("line 11" not in out and "not kept" not in out, "but only its first lines, and none of a passing case's",
              diag)

    rc, out, err = run(summary)
    check(rc == 2, "no arguments is a usage error", f"rc={rc}\n{err}")

    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
