#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigrated.conf(5) on the real daemon, in a tree of its own
# (--config-root): --show-config and the origin of each value, a wrong
# file refusing the start with FILE:LINE and the key, then a running
# daemon reloading on SIGHUP: what can change changes (a policies
# directory: GetPolicies shows it at once), what cannot is logged as
# needing a restart, a wrong file changes nothing, the command line still
# wins, /run's drop-ins count and /etc's mask them, and a new idle timeout
# takes effect.
. "$(dirname "$0")/lib.sh"

vm_setup 0

root=$VM_TMP/config-root
# <sysconfdir>/vmigrate as compiled in, from --help (its --config-root line).
etc_dir=$("$VM_DAEMON" --help | sed -n -E 's/.*DIR(\/[^ ]*)\/vmigrated\.conf, and so on\..*/\1/p')
[ -n "$etc_dir" ] || bail_out "cannot read the configuration directory from 'vmigrated --help'"
etc=$root$etc_dir
run=$root/run/vmigrate
mkdir -p "$etc/vmigrated.conf.d" "$run/vmigrated.conf.d"
for p in a b c; do
        mkdir -p "$VM_TMP/policies-$p"
        printf '[Policy]\nDescription=from policies-%s\nSteps=downtime 150\n' "$p" \
                >"$VM_TMP/policies-$p/policy-$p.policy"
done

show() { "$VM_DAEMON" --config-root="$root" --show-config "$@"; }

# The admin's policy names GetPolicies returns, space-separated.
site_policies() {
        busctl --no-pager --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetPolicies |
                /usr/bin/python3 -c 'import json,sys; print(" ".join(p[0] for p in json.load(sys.stdin)["data"][0] if p[0].startswith("policy-")))'
}

# --- --show-config, without a bus
out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent show 2>&1)
ok $? "--show-config with no file exits 0 without a bus"
like "$out" $'# Files read: none.\n' "... says no file was read"
keys=$(grep -c -E '^[A-Za-z]+=' <<<"$out")
defaults=$(grep -c -x '# default' <<<"$out")
is "$defaults" "$keys" "... and every one of its $keys keys is a default"
like "$out" $'\n\\[Daemon\\]\n# default\nIdleTimeoutSec=120\n' "the idle timeout's default is 120 s"

cat >"$etc/vmigrated.conf" <<EOF
# the test's
[Daemon]
LogLevel=info

[Migration]
PoliciesDirectory=$VM_TMP/policies-a
MaxOutgoingMigrations=3

[TLS]
Directory=$VM_TMP/pki-a
EOF
printf '[Migration]\nMaxIncomingMigrations=5\n' >"$etc/vmigrated.conf.d/50-test.conf"
out=$(show --idle-timeout=0 --log-level=debug 2>&1)
ok $? "--show-config with a main file and a drop-in exits 0"
like "$out" $'# Files read, in this order \\(a later one wins\\):\n#   '"$etc/vmigrated.conf"$'\n#   '"$etc/vmigrated.conf.d/50-test.conf"$'\n' \
        "... lists both files, main file first"
like "$out" $'\n# '"$etc/vmigrated.conf"$':7\nMaxOutgoingMigrations=3\n' "... names the file and line of a value"
like "$out" $'\n# '"$etc/vmigrated.conf.d/50-test.conf"$':2\nMaxIncomingMigrations=5\n' "... and of a drop-in's"
like "$out" $'\n# command line\nIdleTimeoutSec=0\n' "... says what came from the command line"
like "$out" $'\n# command line \\(overrides '"$etc/vmigrated.conf"$':3\\)\nLogLevel=debug\n' \
        "... and which file line an option overrides"
printf '%s\n' "$out" >"$VM_TMP/shown.conf"
mkdir -p "$VM_TMP/shown-root$etc_dir"
cp "$VM_TMP/shown.conf" "$VM_TMP/shown-root$etc_dir/vmigrated.conf"
again=$("$VM_DAEMON" --config-root="$VM_TMP/shown-root" --show-config 2>&1)
ok $? "--show-config's output is itself a configuration file vmigrated accepts"
is "$(grep -E '^[A-Za-z]+=' <<<"$again")" "$(grep -E '^[A-Za-z]+=' <<<"$out")" "... with the same values"

# --- a wrong file: no start at all
bad=$VM_TMP/bad-root
mkdir -p "$bad$etc_dir/vmigrated.conf.d"
printf '[Daemon]\nLogLevel=debug\n[Migration]\nMaxOutgoingMigrations=abc\n' >"$bad$etc_dir/vmigrated.conf.d/20-bad.conf"
msg="vmigrated: $bad$etc_dir/vmigrated.conf.d/20-bad.conf:4: [Migration] MaxOutgoingMigrations=abc: not a number from 0 to 1000 (0: no limit)"
out=$("$VM_DAEMON" --config-root="$bad" --show-config 2>&1)
is "$?" 1 "--show-config exits 1 on a wrong value"
is "$out" "$msg" "... naming the file, the line, the key and what is wrong"
out=$("$VM_DAEMON" --config-root="$bad" --state-dir="$VM_TMP/bad-state" --runtime-dir="$VM_TMP/bad-run" 2>&1)
is "$?" 1 "vmigrated does not start with a wrong value in a drop-in"
is "$out" "$msg" "... and says why, in the same words"
ok '[ ! -e "$VM_TMP/bad-state" ]' "... before touching its state directory"
printf '[Daemon]\nMaxOutgoingMigrations=3\n' >"$bad$etc_dir/vmigrated.conf.d/20-bad.conf"
out=$("$VM_DAEMON" --config-root="$bad" --show-config 2>&1)
like "$out" ':2: \[Daemon\] MaxOutgoingMigrations=3: unknown key in \[Daemon\]; MaxOutgoingMigrations belongs in \[Migration\]$' \
        "a key in the wrong group is refused, and where it belongs is said"
out=$("$VM_DAEMON" --max-outgoing-migrations=abc --show-config 2>&1)
is "$?" 2 "the same value as an option is a usage error"
is "$out" "vmigrated: --max-outgoing-migrations=abc: not a number from 0 to 1000 (0: no limit)" \
        "... refused in the same words"

# --- a running daemon and SIGHUP
_vm_write_service_file "--state-dir=$VM_TMP/state --runtime-dir=$VM_TMP/run --idle-timeout=0 --config-root=$root"
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null ||
        bail_out "dbus-daemon ReloadConfig failed"
vm_expect_ok root "the daemon starts with the files" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
pid=$(vm_daemon_pid)
is "$(site_policies)" "policy-a" "GetPolicies reads the file's PoliciesDirectory"

# reload: SIGHUP, then waits for the daemon to say it has reloaded (or failed to).
reload() {
        local before
        before=$(grep -c -E 'reloaded the configuration|reloading the configuration:' "$VM_TMP/daemon.log")
        kill -HUP "$pid" || return 1
        wait_until 10 eval '[ "$(grep -c -E "reloaded the configuration|reloading the configuration:" "$VM_TMP/daemon.log")" -gt "$before" ]'
}

sed -i -e "s|policies-a|policies-b|" -e "s|MaxOutgoingMigrations=3|MaxOutgoingMigrations=4|" \
        -e "s|pki-a|pki-b|" -e "s|LogLevel=info|LogLevel=debug|" "$etc/vmigrated.conf"
reload
ok $? "SIGHUP: the daemon reloads"
is "$(vm_daemon_pid)" "$pid" "... in the same process"
is "$(site_policies)" "policy-b" "a new PoliciesDirectory applies at once"
log=$(cat "$VM_TMP/daemon.log")
like "$log" "configuration: \[Migration\] MaxOutgoingMigrations=4 \($etc/vmigrated.conf:7\), was 3" \
        "the log names each change, its origin and the old value"
like "$log" "configuration: \[Daemon\] LogLevel=debug \($etc/vmigrated.conf:3\), was info" "... the log level's too"
like "$log" "configuration: \[TLS\] Directory=$VM_TMP/pki-b \($etc/vmigrated.conf:10\) needs a restart of vmigrated to apply; $VM_TMP/pki-a stays in effect until then" \
        "a key that cannot change at run time is logged as needing a restart"
like "$log" "reloaded the configuration: 3 change\(s\) applied, 1 need\(s\) a restart" "... and counted apart"

sed -i -e "s|MaxOutgoingMigrations=4|MaxOutgoingMigrations=abc|" -e "s|policies-b|policies-c|" "$etc/vmigrated.conf"
reload
ok $? "SIGHUP with a wrong file: the daemon answers it"
like "$(cat "$VM_TMP/daemon.log")" "reloading the configuration: $etc/vmigrated.conf:7: \[Migration\] MaxOutgoingMigrations=abc: not a number from 0 to 1000 \(0: no limit\); nothing changed" \
        "... logs which line is wrong and that nothing changed"
is "$(site_policies)" "policy-b" "... and keeps the old configuration entirely (not the new PoliciesDirectory)"
ok 'vm_daemon_running && [ "$(vm_daemon_pid)" = "$pid" ]' "... and keeps running"
sed -i -e "s|MaxOutgoingMigrations=abc|MaxOutgoingMigrations=4|" -e "s|policies-c|policies-b|" "$etc/vmigrated.conf"

# The command line wins on a reload too: IdleTimeoutSec=1 must not make it exit.
printf '[Daemon]\nIdleTimeoutSec=1\n' >"$etc/vmigrated.conf.d/60-idle.conf"
reload
like "$(cat "$VM_TMP/daemon.log")" "$etc/vmigrated.conf.d/60-idle.conf:2: \[Daemon\] IdleTimeoutSec is overridden by --idle-timeout on vmigrated's command line" \
        "a file's value the command line overrides is logged as such"
sleep 3
ok 'vm_daemon_running && [ "$(vm_daemon_pid)" = "$pid" ]' "... and the option's --idle-timeout=0 stays in effect"
rm -f "$etc/vmigrated.conf.d/60-idle.conf"

# /run's drop-ins count; one in /etc of the same name masks it.
printf '[Migration]\nPoliciesDirectory=%s\n' "$VM_TMP/policies-c" >"$run/vmigrated.conf.d/90-runtime.conf"
reload
is "$(site_policies)" "policy-c" "a drop-in in /run/vmigrate/vmigrated.conf.d wins over the main file"
: >"$etc/vmigrated.conf.d/90-runtime.conf"
reload
is "$(site_policies)" "policy-b" "an empty /etc drop-in of the same name masks it"

# --- a new idle timeout on a daemon the command line leaves it to the files
vm_stop_daemon_pid "$pid" >/dev/null
ok $? "the daemon stops on SIGTERM"
_vm_write_service_file "--state-dir=$VM_TMP/state --runtime-dir=$VM_TMP/run --config-root=$root"
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null ||
        bail_out "dbus-daemon ReloadConfig failed"
printf '[Daemon]\nIdleTimeoutSec=0\n' >"$etc/vmigrated.conf.d/60-idle.conf"
vm_expect_ok root "a daemon without --idle-timeout starts" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
pid=$(vm_daemon_pid)
printf '[Daemon]\nIdleTimeoutSec=2\n' >"$etc/vmigrated.conf.d/60-idle.conf"
reload
ok $? "SIGHUP sets IdleTimeoutSec=2"
ok 'wait_until 15 test -f "$VM_TMP/exits/$pid"' "... and the idle daemon exits on its own"
is "$(vm_daemon_exit_status "$pid")" 0 "... with status 0"

vm_finish
