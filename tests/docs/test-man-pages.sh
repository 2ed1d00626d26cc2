#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The manual pages as built: each renders with man(1) at 80 columns, and
# with groff's every warning on, without a word on stderr; vmigrated(8)
# documents every long option `vmigrated --help` lists (and no other) and
# every key of its configuration; vmigrated.conf(5) every group and key
# `vmigrated --show-config` prints (and no other). The lists come from the
# program, so a new option or key without its documentation fails here.
#
#     test-man-pages.sh MAN-BUILD-DIR VMIGRATED
. "$(dirname "$0")/../bus/lib.sh"

man_dir=$1
daemon=$2
tmp=$(mktemp -d) || bail_out "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

# render PAGE: its text as man(1) shows it at 80 columns, in ASCII, without
# hyphenation, a line broken after a hyphen joined again.
render() {
        LC_ALL=C MANWIDTH=80 MANROFFOPT=-rHY=0 MANPAGER=cat man -l "$1" 2>/dev/null |
                /usr/bin/python3 -c 'import re,sys; sys.stdout.write(re.sub(r"(?<=\S)-\n\s+", "-", sys.stdin.read()))'
}

shopt -s nullglob
pages=("$man_dir"/*.[1-8])
shopt -u nullglob
[ "${#pages[@]}" -gt 0 ] || bail_out "no page built in $man_dir"

for page in "${pages[@]}"; do
        name=$(basename "$page")
        out=$(LC_ALL=C MANWIDTH=80 MANPAGER=cat man --warnings -l "$page" 2>"$tmp/err")
        ok $? "$name: man -l renders it"
        is "$(cat "$tmp/err")" "" "$name: ... without a warning"
        like "$out" "^${name%.*}\\(${name##*.}\\)" "$name: ... under its name and section"
        if command -v groff >/dev/null; then
                LC_ALL=C groff -ww -z -man "$page" 2>"$tmp/err"
                is "$(cat "$tmp/err")" "" "$name: groff -ww finds nothing to warn about"
        fi
done

help=$("$daemon" --help) || bail_out "vmigrated --help failed"
mkdir -p "$tmp/empty"
shown=$("$daemon" --config-root="$tmp/empty" --show-config) || bail_out "vmigrated --show-config failed"
mapfile -t options < <(grep -o -E -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u)
mapfile -t keys < <(grep -o -E '^[A-Za-z]+=' <<<"$shown" | tr -d =)
mapfile -t groups < <(grep -o -E '^\[[A-Za-z]+\]' <<<"$shown")
[ "${#options[@]}" -gt 10 ] && [ "${#keys[@]}" -gt 10 ] && [ "${#groups[@]}" -gt 2 ] ||
        bail_out "too few options (${#options[@]}), keys (${#keys[@]}) or groups (${#groups[@]}) from vmigrated"

if [ -f "$man_dir/vmigrated.8" ]; then
        text=$(render "$man_dir/vmigrated.8")
        missing=()
        for o in "${options[@]}"; do
                grep -q -F -- "$o" <<<"$text" || missing+=("$o")
        done
        is "${missing[*]}" "" "vmigrated(8) documents every long option of vmigrated --help (${#options[@]})"
        # Entries of the page: lines "       --option..." in OPTIONS.
        stale=()
        for o in $(sed -n '/^OPTIONS/,/^[A-Z]/p' <<<"$text" | grep -o -E '^       (-h, )?--[a-z][a-z0-9-]+' |
                grep -o -E -- '--[a-z0-9-]+'); do
                printf '%s\n' "${options[@]}" | grep -q -x -F -- "$o" || stale+=("$o")
        done
        is "${stale[*]}" "" "... and no option vmigrated does not have"
        missing=()
        for k in "${keys[@]}"; do
                grep -q -F -- "$k=" <<<"$text" || missing+=("$k")
        done
        is "${missing[*]}" "" "vmigrated(8) names every configuration key with its option (${#keys[@]})"
        like "$text" $'\nSIGNALS\n.*SIGHUP.*SIGTERM' "vmigrated(8) documents SIGHUP and SIGTERM"
        for s in FILES ENVIRONMENT 'EXIT STATUS' 'SEE ALSO'; do
                like "$text" $'\n'"$s"$'\n' "vmigrated(8) has $s"
        done
fi

if [ -f "$man_dir/vmigrated.conf.5" ]; then
        text=$(render "$man_dir/vmigrated.conf.5")
        missing=()
        for g in "${groups[@]}"; do
                grep -q -F -- "$g SECTION OPTIONS" <<<"$text" || missing+=("$g")
        done
        is "${missing[*]}" "" "vmigrated.conf(5) has a section for every group (${groups[*]})"
        missing=()
        for k in "${keys[@]}"; do
                grep -q -E -- "^       $k=" <<<"$text" || missing+=("$k")
        done
        is "${missing[*]}" "" "vmigrated.conf(5) documents every key (${#keys[@]})"
        stale=()
        for k in $(grep -o -E '^       [A-Z][A-Za-z]+=' <<<"$text" | tr -d ' ='); do
                printf '%s\n' "${keys[@]}" | grep -q -x -F -- "$k" || stale+=("$k")
        done
        is "${stale[*]}" "" "... and no key vmigrated does not have"
        # Each key's entry says whether a reload applies it.
        unsaid=()
        for k in "${keys[@]}"; do
                entry=$(sed -n "/^       $k=/,/^$/p" <<<"$text" | tr -s ' \n' '  ')
                [[ $entry =~ "Changes at run time"|"Needs a restart" ]] || unsaid+=("$k")
        done
        is "${unsaid[*]}" "" "... each saying whether it changes at run time or needs a restart"
        like "$text" $'\nCONFIGURATION DIRECTORIES AND PRECEDENCE\n' "vmigrated.conf(5) explains the precedence"
fi

_tap_conclude && exit 0
exit 1
