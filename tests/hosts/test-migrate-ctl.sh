#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigratectl between two test hosts (test backend): a real migrate with
# options of every kind (rates, numbers, virsh's names, switches), a bad
# value refused before any call, and --host in each form of the
# destination URI grammar it shares with vmigrated: unix://, ssh://user@,
# ssh:// and a bare host name, then a migration driven over --host ssh://.
# The job's warnings (an admin hook on b that fails) are printed as they come.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

HOSTS_DAEMON_ARGS="--hooks-dir=@HOSTDIR@/hooks.d"
mig_setup a b
dest_a=$(mig_dest a)
dest_b=$(mig_dest b)
VMIGRATECTL=$VMIGRATE_BUILD_ROOT/client/vmigratectl
[ -x "$VMIGRATECTL" ] || bail_out "$VMIGRATECTL not built"

# ctl HOST ARGS...: vmigratectl on HOST, as its root (ssh keys and config in /root).
ctl() {
        local h=$1
        shift
        host_exec "$h" env HOME=/root "$VMIGRATECTL" "$@"
}

# --- migrate, with options the client types and checks itself
mig_create a "$(mig_test_xml c1 512 0)" >/dev/null
ok $? "test domain c1 runs on a"
out=$(ctl a migrate c1 "$dest_b" --bandwidth=1G --max-downtime=500 --postcopy --postcopy-bandwidth=100M \
        --auto-converge --timeout=600 --timeout-suspend --dname=c1 --quiet 2>&1)
is "$?" 0 "vmigratectl migrate c1 with rates, numbers, switches and virsh's --dname completes" || diag "$out"
like "$(mig_state b "$(mig_lookup b c1)")" '^running/' "... c1 runs on b"

out=$(ctl b migrate c1 "$dest_a" --compression=lz4 2>&1)
is "$?" 2 "--compression=lz4: usage error (status 2)"
is "$out" "vmigratectl: invalid --compression: option 'compression'='lz4' is not allowed: give 'none', 'zstd', 'zlib' or 'xbzrle'" \
        "... with vmigrated's message, after the flag"
out=$(ctl b migrate c1 "$dest_a" --downtime=2000001 2>&1)
like "$out" "^vmigratectl: invalid --downtime: option 'max-downtime'=2000001 is out of range: give 1\\.\\.2000000 ms$" \
        "--downtime (virsh's name) out of range: the flag as written, the option's range"
like "$(mig_state b "$(mig_lookup b c1)")" '^running/' "... c1 still runs on b"

# --- the job's warnings: a hook on b that fails, not required by the domain
hooks_b=$(host_path b dir)/hooks.d
mkdir -p "$hooks_b" && chmod 0755 "$hooks_b"
printf '#!/bin/sh\ncat >/dev/null\necho "storage for $1 is not mounted" >&2\nexit 1\n' >"$hooks_b/20-check"
chmod 0755 "$hooks_b/20-check"
mig_create a "$(mig_test_xml c2 512 0)" >/dev/null
ok $? "test domain c2 runs on a"
ctl a migrate c2 "$dest_b" >"$HOSTS_RUN/ctl.out" 2>"$HOSTS_RUN/ctl.err"
is "$?" 0 "vmigratectl migrate c2, b's hook 20-check failing: completes" || diag "$(cat "$HOSTS_RUN/ctl.err")"
like "$(cat "$HOSTS_RUN/ctl.err")" \
        "(^|"$'\n'")vmigratectl: warning: host-b: hook .*20-check.* [(]migrate prepare[)] exited with status 1: storage for c2 is not mounted" \
        "... the hook's failure is printed on stderr as a warning" || diag "$(cat "$HOSTS_RUN/ctl.err")"
is "$(grep -c 'migrate prepare' "$HOSTS_RUN/ctl.err")" 1 "... once" || diag "$(cat "$HOSTS_RUN/ctl.err")"
like "$(cat "$HOSTS_RUN/ctl.out")" "Migration of domain 'c2' to .* completed\." "... the summary says completed"
out=$(ctl b migrate c2 "$dest_a" --quiet 2>&1)
is "$?/$out" "0/" "c2 back to a with --quiet"
out=$(ctl a migrate c2 "$dest_b" --quiet 2>&1)
is "$?/$out" "0/" "... and to b again with --quiet, the hook failing: no warning printed (only errors)"
rm -f "$hooks_b/20-check"

# --- --host: the URI grammar of Domain.Migrate's destination
out=$(ctl a --host "$dest_b" list --all 2>&1)
ok $? "--host $dest_b list" || diag "$out"
like "$out" c1 "... shows c1 (on b)"
out=$(ctl a --host "$dest_b/" list 2>&1)
is "$?" 2 "--host with a trailing '/': usage error (status 2)"
like "$out" "^vmigratectl: invalid --host: destination '.*/': the socket path ends in '/'" "... naming the part"

host_start_sshd b
ok $? "sshd runs on host b"
for h in ssh://root@host-b ssh://host-b host-b; do
        out=$(ctl a --host "$h" list --all 2>&1)
        ok $? "--host $h list" || diag "$out"
        like "$out" c1 "... shows c1 (on b)"
done
out=$(ctl a --host ssh://nobody@host-b list 2>&1)
is "$?" 3 "--host ssh://nobody@host-b (login refused): status 3" || diag "$out"

out=$(ctl a --host ssh://host-b migrate c1 "$dest_a" --quiet 2>&1)
is "$?" 0 "vmigratectl --host ssh://host-b migrate c1 back to a" || diag "$out"
like "$(mig_state a "$(mig_lookup a c1)")" '^running/' "... c1 runs on a again"
is "$(mig_running_jobs a)$(mig_running_jobs b)" "" "no job runs on a or b"

hosts_finish
