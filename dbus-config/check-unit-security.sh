#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#     check-unit-security.sh SYSTEMD-ANALYZE UNIT MAX
#
# A TAP test of the sandbox of the generated vmigrated.service, as
# `systemd-analyze security --offline=true` scores it (works without systemd
# as PID 1): its "Overall exposure level" must be at most MAX. The same
# figure for the unit without its hardening section must be above MAX, so
# the test shows it reads a figure that the sandbox moves (a parser that
# always found 0.0 would fail there).
set -u
systemd_analyze=$1
unit=$2
max=$3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "1..2"

# Prints the exposure of the unit file $1 (named vmigrated.service, as the
# package installs it), or nothing.
exposure() {
        local out
        out=$(SYSTEMD_LOG_LEVEL=err "$systemd_analyze" security --offline=true --no-pager "$1" 2>&1)
        printf '%s\n' "$out" >"$1.log"
        sed -n -E 's/^.*Overall exposure level for vmigrated\.service: ([0-9]+\.[0-9]+).*$/\1/p' <<<"$out" | tail -n1
}

# Whether $1 <= $2, both decimals with one digit.
le() {
        awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'
}

mkdir "$tmp/real" "$tmp/bare"
cp "$unit" "$tmp/real/vmigrated.service"
figure=$(exposure "$tmp/real/vmigrated.service")
if [ -n "$figure" ] && le "$figure" "$max"; then
        echo "ok 1 - exposure of vmigrated.service is $figure (at most $max)"
else
        echo "not ok 1 - exposure of vmigrated.service is ${figure:-unknown}, above $max"
        sed 's/^/# /' "$tmp/real/vmigrated.service.log"
fi

# Everything from the hardening comment on removed: what the service
# would be without its sandbox.
grep -q '^# Hardening' "$unit" || echo "# $unit has no '# Hardening' section"
sed '/^# Hardening/,$d' "$unit" >"$tmp/bare/vmigrated.service"
bare=$(exposure "$tmp/bare/vmigrated.service")
if [ -n "$bare" ] && ! le "$bare" "$max" && grep -q '^# Hardening' "$unit"; then
        echo "ok 2 - without its hardening section the unit's exposure is $bare (above $max)"
else
        echo "not ok 2 - without its hardening section the unit's exposure is ${bare:-unknown}, expected above $max"
        sed 's/^/# /' "$tmp/bare/vmigrated.service.log"
fi
