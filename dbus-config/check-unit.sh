#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs `systemd-analyze verify` on the generated vmigrated.service. verify
# works offline (no systemd as PID 1 needed) but refuses an ExecStart= that
# does not exist, so it checks a copy whose daemon path points at the build
# tree. Any warning about the unit fails the test: verify exits 0 on some of
# them (unknown settings, bad values), so its output is checked too.
set -eu
systemd_analyze=$1
unit=$2
libexecdir=$3
daemon=$4

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$daemon" ] || { echo "daemon $daemon not built" >&2; exit 1; }
grep -Eq "^ExecStart=$libexecdir/vmigrated( |\$)" "$unit" || {
        echo "ExecStart= of $unit does not use $libexecdir/vmigrated" >&2
        exit 1
}
sed -E "s#^ExecStart=$libexecdir/vmigrated( |\$)#ExecStart=$daemon\\1#" "$unit" \
        >"$tmp/vmigrated.service"

rc=0
out=$(SYSTEMD_LOG_LEVEL=notice "$systemd_analyze" verify --man=no \
        "$tmp/vmigrated.service" 2>&1) || rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 0 ]; then
        echo "systemd-analyze verify failed with $rc" >&2
        exit 1
fi
# Only complaints about our unit count; verify also loads units from the
# host (dbus.socket, sysinit.target...) which may be incomplete here.
if printf '%s\n' "$out" | grep -F 'vmigrated.service' >&2; then
        echo "systemd-analyze verify complained about the unit" >&2
        exit 1
fi
echo "ok: systemd-analyze verify accepts vmigrated.service"
