#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks a D-Bus bus policy file: well-formed, valid against the busconfig
# DTD when the machine has it (Debian ships it in some dbus packages only),
# and accepted by dbus-daemon itself when dbus-daemon is installed.
set -eu
xmllint=$1
policy=$2

"$xmllint" --noout "$policy"
echo "ok: $policy is well-formed"

dtd=/usr/share/xml/dbus-1/busconfig.dtd
if [ -r "$dtd" ]; then
        "$xmllint" --noout --dtdvalid "$dtd" "$policy"
        echo "ok: $policy is valid against $dtd"
else
        echo "note: $dtd not present, DTD validation skipped"
fi

# dbus-daemon is the real consumer: have it parse a config that includes the
# policy. It refuses unknown elements/attributes and bad policy rules.
if command -v dbus-daemon >/dev/null; then
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        mkdir "$tmp/system.d"
        cp "$policy" "$tmp/system.d/"
        cat >"$tmp/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$tmp/socket</listen>
  <auth>EXTERNAL</auth>
  <includedir>$tmp/system.d</includedir>
</busconfig>
EOC
        # dbus-daemon only logs errors in included files and goes on, so
        # start it, wait until it has read its configuration (it prints its
        # address after that), stop it and look at what it logged.
        dbus-daemon --config-file="$tmp/bus.conf" --nofork --print-address \
                >"$tmp/address" 2>"$tmp/log" &
        pid=$!
        for _ in $(seq 100); do
                [ -s "$tmp/address" ] && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        if [ ! -s "$tmp/address" ]; then
                echo "dbus-daemon did not start with the policy:" >&2
                cat "$tmp/log" >&2
                exit 1
        fi
        if grep -E 'Encountered error|while parsing' "$tmp/log" >&2; then
                echo "dbus-daemon refused part of $policy" >&2
                exit 1
        fi
        echo "ok: dbus-daemon accepts $policy"
fi
