#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The example vmigrated.conf the package installs: every key vmigrated has,
# in its group, commented out at the default this build compiles in, in
# the order --show-config prints them; vmigrated accepts it as it is
# (nothing changes) and with every key uncommented (the same values).
#
#     test-example-config.sh EXAMPLE VMIGRATED
. "$(dirname "$0")/../bus/lib.sh"

example=$1
daemon=$2
tmp=$(mktemp -d) || bail_out "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

conf_dir=$("$daemon" --help | sed -n -E 's/.*DIR(\/[^ ]*)\/vmigrated\.conf, and so on\..*/\1/p')
[ -n "$conf_dir" ] || bail_out "cannot read the configuration directory from 'vmigrated --help'"
mkdir -p "$tmp/empty" "$tmp/as-is$conf_dir" "$tmp/uncommented$conf_dir"

defaults=$("$daemon" --config-root="$tmp/empty" --show-config | grep -E '^(\[|[A-Za-z]+=)')
[ -n "$defaults" ] || bail_out "vmigrated --show-config printed no key"
commented=$(grep -E '^(\[|#[A-Za-z]+=)' "$example" | sed 's/^#//')
is "$commented" "$defaults" "the example has every group and key, commented out at its default, in order"

cp "$example" "$tmp/as-is$conf_dir/vmigrated.conf"
out=$("$daemon" --config-root="$tmp/as-is" --show-config 2>&1)
ok $? "vmigrated accepts the example as it is"
is "$(grep -c -x '# default' <<<"$out")" "$(grep -c -E '^[A-Za-z]+=' <<<"$defaults")" "... every value stays the default"

sed -E 's/^#([A-Za-z]+=)/\1/' "$example" >"$tmp/uncommented$conf_dir/vmigrated.conf"
out=$("$daemon" --config-root="$tmp/uncommented" --show-config 2>&1)
ok $? "vmigrated accepts the example with every key uncommented" || diag "$out"
is "$(grep -E '^(\[|[A-Za-z]+=)' <<<"$out")" "$defaults" "... with the same values"
is "$(grep -c -F "# $tmp/uncommented$conf_dir/vmigrated.conf:" <<<"$out")" "$(grep -c -E '^[A-Za-z]+=' <<<"$defaults")" \
        "... each from its line of the file"

_tap_conclude && exit 0
exit 1
