#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# exe_wrapper of the 'valgrind' meson test setup:
#
#     meson test -C build --setup valgrind      (or tools/run-tests.sh build --setup valgrind)
#
# meson puts the wrapper in front of every test command, including
# interpreters running scripts (/usr/bin/python3 test.py, bash test.sh).
# Only the project's own compiled programs are worth running under memcheck:
# valgrinding python or bash reports their problems, not ours, and is slow.
# So: an ELF executable outside the system directories runs under valgrind;
# anything else runs as it is, with VMIGRATE_VALGRIND set to the valgrind
# command line, for test scripts that start the project's programs
# themselves (the bus tests' vmigrated) to put in front of them.
#
# A memcheck error or a definite leak makes the program exit with status
# 99, which meson reports as a failure of that test.
set -euo pipefail

if [[ $# -lt 1 ]]; then
        echo "usage: $0 PROGRAM [ARGS...]" >&2
        exit 2
fi

valgrind=(valgrind --quiet --error-exitcode=99 --leak-check=full
          --show-leak-kinds=definite --errors-for-leak-kinds=definite
          --track-origins=yes --num-callers=30)
supp=/usr/share/glib-2.0/valgrind/glib.supp
[[ -r "$supp" ]] && valgrind+=(--suppressions="$supp")

# GLib: plain malloc for GSlice (2.74 still has it) so leaks are precise.
export G_SLICE=always-malloc
export G_DEBUG=${G_DEBUG:-gc-friendly}
export VMIGRATE_VALGRIND="${valgrind[*]}"

prog=$1
path=$(command -v -- "$prog" || true)
if [[ -n "$path" && -f "$path" ]]; then
        case "$(readlink -f -- "$path")" in
        /usr/* | /bin/* | /sbin/* | /lib/* | /lib64/*)
                ;;
        *)
                if [[ "$(head -c 4 -- "$path" | od -An -c | tr -d ' ')" == '177ELF' ]]; then
                        exec "${valgrind[@]}" "$@"
                fi
                ;;
        esac
fi
exec "$@"
