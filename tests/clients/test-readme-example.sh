#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's Python example ("Using vmigrate from Python") is migrate.py
# from its first import on, so the example readers copy is the client
# tests/hosts/test-clients.sh runs.
#
# Usage: test-readme-example.sh README.md migrate.py
set -u
echo "1..1"
example=$(awk '/^### Using vmigrate from Python$/ { s = 1; next }
        s == 1 && /^```python$/ { s = 2; next }
        s == 2 && /^```$/ { exit }
        s == 2 { print }' "$1")
client=$(sed -n '/^import /,$p' "$2")
if [ -n "$example" ] && [ "$example" = "$client" ]; then
        echo "ok 1 - the README's Python example is $(basename "$2") ($(wc -l <<<"$client") lines)"
else
        echo "not ok 1 - the README's Python example is $(basename "$2")"
        diff <(echo "$example") <(echo "$client") | sed 's/^/# /'
fi
