#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs what is missing, builds build/ and runs the whole test suite:
#
#     tools/test.sh [MESON-TEST-ARGS...]   e.g. --suite unit, --setup valgrind
#
# The last line of output is "N passed, N failed[, N skipped]", counting
# individual test cases; the exit status is 0 only when nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

build=build
rm -f "$build"/meson-logs/testlog*.json
built=true
if [[ ! -f "$build/build.ninja" ]]; then
        meson setup "$build" || built=false
fi
if $built; then
        ninja -C "$build" || built=false
fi

if $built; then
        tools/run-tests.sh "$build" "$@" || true
else
        echo "test: the build failed; no test was run" >&2
fi

# meson names the log after the test setup, if one was asked for.
log=testlog.json
prev=
for arg in "$@"; do
        case "$arg" in
        --setup=*) log="testlog-${arg#--setup=}.json" ;;
        *) [[ "$prev" == --setup ]] && log="testlog-$arg.json" ;;
        esac
        prev=$arg
done

# A missing log (failed build) counts as a failure.
exec /usr/bin/python3 tools/tap-summary.py "$build/meson-logs/$log"
