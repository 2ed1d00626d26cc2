# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Drives shell-completion/bash/vmigratectl as bash does on <Tab>, without a
# terminal: a line typed up to the cursor at its end is split into
# COMP_WORDS the way readline splits it (whitespace separates words, a
# backslash keeps the next character, quotes keep their contents, and '='
# and ':', from COMP_WORDBREAKS, are words of their own), then the
# completion function runs and leaves its answer in COMPREPLY. Shared by
# tests/docs/test-completion.sh and tests/bus/test-completion.sh.
#
# Environment: VMIGRATE_SOURCE_ROOT; BASH_COMPLETION_MAIN, the main
# bash-completion script (default: Debian's path).

comp_load() {
        local main=${BASH_COMPLETION_MAIN:-/usr/share/bash-completion/bash_completion}
        [ -r "$main" ] || return 1
        # shellcheck source=/dev/null
        . "$main" || return 1
        # shellcheck source=../../shell-completion/bash/vmigratectl
        . "$VMIGRATE_SOURCE_ROOT/shell-completion/bash/vmigratectl" || return 1
        [ "$(complete -p vmigratectl 2>/dev/null)" = "complete -F _vmigratectl vmigratectl" ]
}

# The real compopt only works while readline runs a completion: record
# what the script asks for instead.
COMP_OPTIONS=
compopt() {
        COMP_OPTIONS+=" $*"
}

# comp_split LINE: COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT as
# bash sets them for LINE with the cursor at its end (checked against an
# interactive bash 5.2).
comp_split() {
        local line=$1 c word='' quote='' last=''
        local -i i
        COMP_WORDS=()
        for ((i = 0; i < ${#line}; i++)); do
                c=${line:i:1}
                if [ -n "$quote" ]; then
                        word+=$c
                        [ "$c" = "$quote" ] && quote=''
                        last=$c
                        continue
                fi
                case $c in
                \\)
                        word+=$c${line:i+1:1}
                        i+=1
                        ;;
                \' | \")
                        quote=$c
                        word+=$c
                        ;;
                ' ')
                        [ -n "$word" ] && COMP_WORDS+=("$word")
                        word=''
                        ;;
                [=:])
                        [ -n "$word" ] && COMP_WORDS+=("$word")
                        COMP_WORDS+=("$c")
                        word=''
                        ;;
                *) word+=$c ;;
                esac
                last=$c
        done
        if [ -n "$word" ] || [ "$last" = ' ' ]; then
                COMP_WORDS+=("$word")
        fi
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE=$line
        COMP_POINT=${#line}
}

# comp PROGRAM LINE: completes LINE as typed for PROGRAM (the command the
# completion runs to ask vmigrated; bash passes the command's name).
# COMPREPLY and COMP_OPTIONS hold the answer; COMP_ERR what the function
# wrote on standard error (nothing, when all is well).
comp() {
        local program=$1 errfile
        comp_split "$2"
        COMPREPLY=()
        COMP_OPTIONS=
        errfile=$(mktemp) || return 1
        _vmigratectl "$program" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>"$errfile"
        COMP_ERR=$(cat "$errfile")
        rm -f "$errfile"
}

# comp_reply: COMPREPLY sorted, one per line.
comp_reply() {
        ((${#COMPREPLY[@]})) || return 0
        printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort
}
