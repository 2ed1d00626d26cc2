#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Validates a polkit .policy file: against polkit's DTD, and checks that
# every <defaults> value is one polkit knows (the DTD only says #PCDATA,
# and polkitd silently ignores an action with a bad value).
set -eu
policy=$1

command -v xmllint >/dev/null || { echo "xmllint missing" >&2; exit 1; }

dtd=
for candidate in /usr/share/polkit-1/policyconfig-1.dtd \
                 /usr/share/polkit-1/policyconfig.dtd; do
        [ -r "$candidate" ] && { dtd=$candidate; break; }
done
if [ -n "$dtd" ]; then
        xmllint --noout --dtdvalid "$dtd" "$policy"
        echo "ok: $policy is valid against $dtd"
else
        # No DTD on this machine: at least well-formed.
        xmllint --noout "$policy"
        echo "ok: $policy is well-formed (polkit DTD not installed)"
fi

bad=$(xmllint --xpath '//defaults/*/text()' "$policy" |
      tr -s ' \n' '\n\n' | grep -v -x -E 'no|yes|auth_self|auth_admin|auth_self_keep|auth_admin_keep|' || true)
if [ -n "$bad" ]; then
        echo "bad <defaults> values: $bad" >&2
        exit 1
fi
echo "ok: all <defaults> values are valid"

expected="org.vmigrate.migrate1.control-job
org.vmigrate.migrate1.dry-run
org.vmigrate.migrate1.evacuate
org.vmigrate.migrate1.manage-domains
org.vmigrate.migrate1.manage-host
org.vmigrate.migrate1.migrate
org.vmigrate.migrate1.migrate-incoming"
got=$(xmllint --xpath '//action/@id' "$policy" | sed -E 's/ *id="([^"]*)"/\1\n/g' | sed '/^$/d' | sort)
if [ "$got" != "$expected" ]; then
        printf 'action ids differ from the contract:\n%s\n' "$got" >&2
        exit 1
fi
echo "ok: action ids match the contract"
