#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vmigratectl's bash completion without a service: the commands, each
# command's options and the options' values are those the program itself
# has. The program is the oracle: the commands are read from its --help,
# an option counts for a command when vmigratectl takes it there (it says
# "only applies to" otherwise), and a value list is the one vmigratectl
# names when refusing a wrong value. Also: names are asked on the right bus
# and quoted for the shell, and a missing or silent service costs no
# output and at most a couple of seconds. Domain names from a real
# vmigrated: tests/bus/test-completion.sh.
#
# Environment (set by meson): VMIGRATE_SOURCE_ROOT, VMIGRATECTL.

. "$(dirname "$0")/../bus/lib.sh"
. "$(dirname "$0")/lib-completion.sh"

: "${VMIGRATECTL:?VMIGRATECTL must be set}"
comp_load || skip_all "bash-completion is not installed (Debian package bash-completion)"

tmp=$(mktemp -d /tmp/vmigrate-completion-test.XXXXXX) || bail_out "mktemp failed"
server_pid= server_start=
cleanup() {
        # Only while it is still our server: it exits by itself after
        # 120 s, and its pid may be another program's by then.
        [ -n "$server_pid" ] && vm_same_process "$server_pid" "$server_start" && kill "$server_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
# meson stops a test that runs too long with SIGTERM: clean up then too.
trap 'exit 143' TERM
# No vmigrated anywhere: every test here must pass without one.
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/no-bus
nohost=--host=unix://$tmp/no-bus

# ---- commands ----

commands=$("$VMIGRATECTL" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [^ ]/ { print $1 }' |
        LC_ALL=C sort)
like "$commands" $'^[a-z-]+(\n[a-z-]+){19,}$' "vmigratectl --help lists its commands" || diag "$commands"
comp "$VMIGRATECTL" "vmigratectl "
is "$(comp_reply)" "$commands" "the first word offers exactly the commands of vmigratectl --help"
comp "$VMIGRATECTL" "vmigratectl mig"
is "$(comp_reply)" $'migrate\nmigrate-postcopy\nmigrate-setmaxdowntime\nmigrate-setspeed' "a prefix narrows them"
comp "$VMIGRATECTL" "vmigratectl help "
is "$(comp_reply)" "$(grep -vx help <<<"$commands")" "help offers the commands it explains"
comp "$VMIGRATECTL" "vmigratectl --json -q list --names "
is "$(comp_reply)" "" "list takes no argument: nothing to offer"

# ---- options, per command ----

# Every option the help texts mention that vmigratectl takes.
helps=$("$VMIGRATECTL" --help)
for c in $commands; do
        [ "$c" = help ] || helps+=$'\n'$("$VMIGRATECTL" "$c" --help)
done
candidates=$( (grep -oE -- '(^|[^a-z-])--[a-z][a-z0-9-]*' <<<"$helps" | sed 's/^[^-]*//'; echo -H; echo -q; echo -h) | LC_ALL=C sort -u)
options=()
for o in $candidates; do
        "$VMIGRATECTL" "$o" help 2>&1 >/dev/null | grep -q "unknown option" || options+=("$o")
done
ok "[ ${#options[@]} -gt 55 ]" "vmigratectl takes the ${#options[@]} options its help texts name"

# A value vmigratectl accepts for an option with COMMAND, by the name the
# command's help gives the value (--bandwidth=RATE), or all help texts do
# when the command's does not name the option or COMMAND is empty; empty
# for an option without one. By command, since one name can mean two
# things: evacuate's --parallel=N, virsh's --parallel switch for migrate.
sample_value() {
        local metavar text=$helps
        [ -n "$1" ] && text=$("$VMIGRATECTL" "$1" --help)
        grep -qE -- "(^|[^a-z-])$2([^a-z0-9-]|$)" <<<"$text" || text=$helps
        metavar=$(grep -oE -- "(^|[^a-z-])$2=[A-Za-z|]+" <<<"$text" | head -n1 | sed 's/.*=//')
        case $metavar in
        '') ;;
        RATE) echo 1M ;;
        N) echo 2 ;;
        MS) echo 300 ;;
        SECONDS) echo 30 ;;
        FILE) echo /dev/null ;;
        URI) [ "$2" = --host ] && echo "unix://$tmp/no-bus" || echo tcp://h:1 ;;
        ADDR) echo 127.0.0.1 ;;
        METHOD | MODE) echo none ;;
        ACTION) echo abort ;;
        *'|'*) echo "${metavar%%|*}" ;;
        *) echo x ;;
        esac
}
# The arguments a command's usage line asks for, as samples.
sample_arguments() {
        local w
        for w in $("$VMIGRATECTL" "$1" --help | sed -n "s/^Usage: vmigratectl \[OPTIONS\] $1//p"); do
                case $w in
                DOMAIN) echo d ;;
                FILE) echo /dev/null ;;
                DESTINATION | DESTINATION...) echo "unix://$tmp/no-bus" ;;
                MS) echo 300 ;;
                RATE) echo 1M ;;
                esac
        done
}
# applies COMMAND OPTION: whether vmigratectl takes OPTION with COMMAND.
applies() {
        local value args out
        value=$(sample_value "$1" "$2")
        mapfile -t args < <(sample_arguments "$1")
        out=$("$VMIGRATECTL" "$nohost" "$1" "${args[@]}" "$2${value:+=$value}" </dev/null 2>&1 >/dev/null)
        # The command's help named it in passing ("migrate --policy"): the value all help texts give.
        if [[ -z $value && $out == *"needs an argument"* ]]; then
                value=$(sample_value "" "$2")
                out=$("$VMIGRATECTL" "$nohost" "$1" "${args[@]}" "$2${value:+=$value}" </dev/null 2>&1 >/dev/null)
        fi
        ! grep -q "only applies to" <<<"$out"
}

global=" ${options[*]} "
for c in $commands; do
        [ "$c" = help ] && continue
        expected=()
        for o in "${options[@]}"; do
                if applies "$c" "$o"; then
                        expected+=("$o")
                else
                        global=${global/ $o / }
                fi
        done
        comp "$VMIGRATECTL" "vmigratectl $c -"
        got=$(comp_reply | sed 's/=$//' | LC_ALL=C sort)
        is "$got" "$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)" \
                "'$c -' offers exactly the ${#expected[@]} options vmigratectl takes with $c"
done
comp "$VMIGRATECTL" "vmigratectl -"
# shellcheck disable=SC2086 # split on purpose
is "$(comp_reply | sed 's/=$//' | LC_ALL=C sort)" "$(printf '%s\n' $global | LC_ALL=C sort)" \
        "before a command: the options every command takes"
like "$global" " --host .*--json " "... which include --host and --json"

comp "$VMIGRATECTL" "vmigratectl migrate --bandw"
is "$(comp_reply)" "--bandwidth=" "an option that takes a value is offered with its '='"
like "$COMP_OPTIONS" "-o nospace" "... and no space after it"
comp "$VMIGRATECTL" "vmigratectl migrate --live"
unlike "$COMP_OPTIONS" "nospace" "a switch gets its space"
comp "$VMIGRATECTL" "vmigratectl start -- -"
is "$(comp_reply)" "" "after '--' a word starting with '-' is no option"

# ---- option values ----

for o in compression copy-storage zero-page-detection timeout-action; do
        values=$("$VMIGRATECTL" "$nohost" migrate d x "--$o=no-such-value" 2>&1 |
                sed -n "s/.*is not allowed: give //p" | grep -oE "'[a-z-]+'" | tr -d "'" | LC_ALL=C sort)
        like "$values" $'^[a-z-]+(\n[a-z-]+)+$' "vmigratectl names the values of --$o" || continue
        comp "$VMIGRATECTL" "vmigratectl migrate --$o="
        is "$(comp_reply)" "$values" "--$o= offers exactly the values vmigratectl takes"
        comp "$VMIGRATECTL" "vmigratectl migrate d x --$o "
        is "$(comp_reply)" "$values" "--$o VALUE, as a separate word, too"
done
# evacuate's orders, by the values vmigratectl names when refusing one.
values=$("$VMIGRATECTL" "$nohost" evacuate x --order=no-such-value 2>&1 | grep -oE "'[a-z-]+'" | tr -d "'" |
        grep -vx no-such-value | LC_ALL=C sort)
like "$values" $'^[a-z-]+(\n[a-z-]+)+$' "vmigratectl names the values of --order"
comp "$VMIGRATECTL" "vmigratectl evacuate --order="
is "$(comp_reply)" "$values" "--order= offers exactly the values vmigratectl takes"
comp "$VMIGRATECTL" "vmigratectl evacuate hv2 --order "
is "$(comp_reply)" "$values" "--order VALUE, as a separate word, too"
comp "$VMIGRATECTL" "vmigratectl maintenance "
is "$(comp_reply)" $'off\non' "maintenance offers on and off"
for v in on off; do
        "$VMIGRATECTL" "$nohost" maintenance "$v" 2>/dev/null
        is $? 3 "vmigratectl takes maintenance $v (it then fails to connect, status 3)"
done
comp "$VMIGRATECTL" "vmigratectl maintenance on "
is "$(comp_reply)" "" "... and nothing after it"
comp "$VMIGRATECTL" "vmigratectl migrate --compression=z"
is "$(comp_reply)" $'zlib\nzstd' "a typed prefix narrows the values"
comp "$VMIGRATECTL" "vmigratectl migrate --policy="
is "$(comp_reply)" $'default\nminimal-downtime\npostcopy\nsuspend-workload-if-needed' \
        "--policy= without a service: the built-in policies"
for p in "${COMPREPLY[@]}"; do
        "$VMIGRATECTL" "$nohost" migrate d x --policy="$p" 2>/dev/null
        is $? 3 "vmigratectl takes --policy=$p (it then fails to connect, status 3)"
done
comp "$VMIGRATECTL" "vmigratectl --host="
is "$(comp_reply)" $'ssh://\nunix:///' "--host= offers the URI schemes"
like "$COMP_OPTIONS" "nospace" "... to go on typing after"
comp "$VMIGRATECTL" "vmigratectl migrate --bandwidth="
is "$(comp_reply)" "" "a rate is not guessed"

mkdir "$tmp/files" && : >"$tmp/files/web.xml" && : >"$tmp/files/db.xml" || bail_out "cannot make files"
cd "$tmp/files" || bail_out "cannot cd to $tmp/files"
comp "$VMIGRATECTL" "vmigratectl define "
is "$(comp_reply)" $'db.xml\nweb.xml' "define offers files"
comp "$VMIGRATECTL" "vmigratectl migrate d x --destination-xml=w"
is "$(comp_reply)" "web.xml" "--destination-xml= offers files"
cd - >/dev/null || bail_out "cannot cd back"

# ---- names: which bus, which quoting ----

# A stand-in for vmigratectl that logs its arguments and knows some names.
stub=$tmp/stub
cat >"$stub" <<EOF
#!/bin/bash
printf '%s\n' "\$*" >>"$tmp/stub.log"
case " \$* " in
*" list --all --names "*) printf '%s\n' 'web 1' 'web2' 'db' '\$(touch $tmp/pwned)' "o'neil" ;;
*" policies --names "*) printf '%s\n' default gentle ;;
*) exit 2 ;;
esac
EOF
chmod +x "$stub"

comp "$stub" "vmigratectl start "
is "$(comp_reply)" "$(printf '%q\n' 'web 1' web2 db "\$(touch $tmp/pwned)" "o'neil" | LC_ALL=C sort)" \
        "a DOMAIN offers the domains' names, quoted for the shell"
ok "[ ! -e $tmp/pwned ]" "a name is never run as a command"
is "$(tail -n1 "$tmp/stub.log")" "--no-ask-password list --all --names" \
        "names are asked for with list --all --names, never with a password prompt"
comp "$stub" "vmigratectl start web\\ "
is "$(comp_reply)" 'web\ 1' "a typed, escaped prefix narrows them"
comp "$stub" "vmigratectl start 'we"
is "$(comp_reply)" $'web 1\nweb2' "inside quotes, the names as they are"
comp "$stub" "vmigratectl migrate --bandwidth 1M "
is "$(comp_reply | wc -l)" 5 "migrate's DOMAIN after an option and its value"
comp "$stub" "vmigratectl migrate --bandwidth 1M db "
is "$(comp_reply)" "" "no names for migrate's DESTINATION"
comp "$stub" "vmigratectl status db "
is "$(comp_reply)" "" "nor after the DOMAIN"
comp "$stub" "vmigratectl migrate --policy="
is "$(comp_reply)" $'default\ngentle' "--policy= offers the policies the service names"
is "$(tail -n1 "$tmp/stub.log")" "--no-ask-password policies --names" "... asked with policies --names"

for host in "-H unix:///run/other" "--host unix:///run/other" "--host=unix:///run/other" "-Hunix:///run/other"; do
        comp "$stub" "vmigratectl $host job-abort "
        is "$(tail -n1 "$tmp/stub.log")" "--no-ask-password --host=unix:///run/other list --all --names" \
                "'$host': names are asked on that bus"
done
: >"$tmp/stub.log"
comp "$stub" "vmigratectl --host ssh://root@hv2 start "
is "$(cat "$tmp/stub.log")$(comp_reply)" "" "over ssh nothing is asked (ssh might prompt)"

# ---- no service, or one that does not answer ----

start=$SECONDS
comp "$VMIGRATECTL" "vmigratectl start "
is "$(comp_reply)|$COMP_ERR" "|" "without a bus: no names and not a word on the terminal"
ok "[ $((SECONDS - start)) -le 1 ]" "... at once"

# A bus socket that takes connections and never answers.
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
open(sys.argv[2], "w").close()
time.sleep(120)' "$tmp/mute-bus" "$tmp/mute-ready" &
server_pid=$!
server_start=$(vm_proc_starttime "$server_pid")
wait_until 10 test -e "$tmp/mute-ready" || bail_out "the mute bus did not start"
start=$SECONDS
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/mute-bus comp "$VMIGRATECTL" "vmigratectl start "
elapsed=$((SECONDS - start))
is "$(comp_reply)|$COMP_ERR" "|" "a bus that does not answer: no names, nothing on the terminal"
ok "[ $elapsed -le 4 ]" "... within the completion's 2 s limit (took ${elapsed} s)"
start=$SECONDS
comp "$VMIGRATECTL" "vmigratectl --host=unix://$tmp/mute-bus migrate --policy="
elapsed=$((SECONDS - start))
is "$(comp_reply | wc -l)|$COMP_ERR" "4|" "--policy= with a mute service falls back to the built-in ones"
ok "[ $elapsed -le 4 ]" "... within the limit too (took ${elapsed} s)"

_tap_conclude
