#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs vmigrate's test suite in one build directory:
#
#     tools/run-tests.sh BUILD_DIR [MESON-TEST-ARGS...]
#
# e.g. tools/run-tests.sh build --suite unit
#      tools/run-tests.sh build --setup valgrind
#
# For a sanitizer build (b_sanitize is not "none") it exports ASAN_OPTIONS and
# UBSAN_OPTIONS so every sanitized program aborts on the first error. They
# reach the daemon too: the bus tests start dbus-daemon, which starts
# vmigrated with its own environment, inherited from the test.
#
# It never stops before meson has run every test: its exit status is
# meson test's, and the per-case totals come from tools/tap-summary.py on
# BUILD_DIR/meson-logs/testlog.json (testlog-NAME.json with --setup NAME).
set -uo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
        echo "usage: $0 BUILD_DIR [MESON-TEST-ARGS...]" >&2
        exit 2
fi
build=$1
shift

if [[ ! -f "$build/build.ninja" ]]; then
        echo "run-tests: $build is not a configured meson build directory (run: meson setup $build)" >&2
        exit 2
fi

# The options meson recorded for this build directory.
sanitize=$(/usr/bin/python3 - "$build" <<'PY'
import json, sys, os
try:
    with open(os.path.join(sys.argv[1], "meson-info", "intro-buildoptions.json")) as f:
        opts = {o["name"]: o["value"] for o in json.load(f)}
except (OSError, ValueError, KeyError):
    opts = {}
print(opts.get("b_sanitize", "none"))
PY
)

args=(--print-errorlogs --num-processes "${VMIGRATE_TEST_JOBS:-2}")
if [[ "$sanitize" != none && -n "$sanitize" ]]; then
        # abort_on_error turns a report into SIGABRT, which meson shows as a
        # crash of the test (or the daemon dies and the test fails).
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        # GLib 2.74 allocates GError (and other small blocks) from its slice
        # allocator, where LeakSanitizer cannot see a leak: use malloc.
        export G_SLICE=always-malloc
        # Sanitized code runs a few times slower.
        args+=(--timeout-multiplier "${VMIGRATE_TEST_TIMEOUT_MULTIPLIER:-3}")
        echo "run-tests: $build is built with -Db_sanitize=$sanitize"
        echo "run-tests: ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
fi

# A stale log from an earlier run must never be counted as this run's
# (with --setup NAME meson writes testlog-NAME.json instead).
rm -f "$build"/meson-logs/testlog*.json

echo "run-tests: meson test -C $build ${args[*]} $*"
meson test -C "$build" "${args[@]}" "$@"
rc=$?
echo "run-tests: meson test in $build exited with status $rc"
exit "$rc"
