#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The contract as clients nobody on the project wrote see it: a C client on
# the proxies gdbus-codegen generates from interfaces/*.xml
# (tests/clients/codegen-client.c) and a Python client on Gio
# (tests/clients/migrate.py, the README's example), each run on host a's
# bus as root: define a test-backend domain, start it, migrate it to b,
# follow the job's PropertiesChanged to the end, read GetJobStats. Each
# step a client prints is checked against what busctl sees on the hosts;
# GLib's warnings are fatal in both (G_DEBUG=fatal-warnings), so a reply or
# property whose type differs from the XML fails the C client. Then each
# client is refused a migration and must say so and fail.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

: "${VMIGRATE_CODEGEN_CLIENT:?must be set (meson does)}" "${VMIGRATE_PY_CLIENT:?must be set (meson does)}"
/usr/bin/python3 -c 'import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio' 2>/dev/null ||
        skip_all "python3-gi is not installed"
mig_setup a b
dest_b=$(mig_dest b)

# 2 GiB dirtied at 100 MB/s over the test backend's 1 GiB/s: two passes and
# about 2 s, long enough for ~20 coalesced progress updates.
MEM_MIB=2048
DIRTY_RATE=100000000

# run_client NAME CLIENT-COMMAND...: the client on a's bus with NAME's XML
# and b as destination; sets OUT, ERR (file contents) and STATUS.
run_client() {
        local name=$1 xml=$HOSTS_RUN/$1.xml
        shift
        mig_test_xml "$name" "$MEM_MIB" "$DIRTY_RATE" >"$xml"
        host_exec a env G_DEBUG=fatal-warnings timeout 150 "$@" "$xml" "$dest_b" \
                >"$HOSTS_RUN/$name.out" 2>"$HOSTS_RUN/$name.err"
        STATUS=$?
        OUT=$(cat "$HOSTS_RUN/$name.out")
        ERR=$(cat "$HOSTS_RUN/$name.err")
}

# stat_of KEY: the value of a "stats KEY VALUE" line of OUT.
stat_of() {
        sed -n "s/^stats $1 //p" <<<"$OUT"
}

# check_client LABEL NAME CLIENT-COMMAND...: one migration, one test per step.
check_client() {
        local label=$1 name=$2 path job progress n_progress last_phase
        shift 2
        run_client "$name" "$@"
        is "$STATUS" 0 "$label: runs to the end and exits 0" || { diag "stdout: $OUT"; diag "stderr: $ERR"; }
        [ -z "$ERR" ] || diag "$label stderr: $ERR"

        path=$(sed -n 's/^domain //p' <<<"$OUT")
        is "$path" "$(mig_lookup a "$name")" "$label: DefineXML gave $name's object path on a"
        like "$OUT" $'(^|\n)started\njob ' "$label: Start replied, then Migrate"
        job=$(sed -n 's/^job //p' <<<"$OUT")
        is "$(mig_jprop a "$job" Kind)/$(mig_jprop a "$job" Domain)" "migration-out/$path" \
                "$label: Migrate answered with a's migration-out job of $name"

        # Progress the client heard from PropertiesChanged before the job's
        # final phase (a change carried by the final signal does not count).
        progress=$(sed -n '/^phase \(completed\|failed\|cancelled\)$/q; s/^progress \([0-9.]*\).*/\1/p' <<<"$OUT")
        n_progress=$(grep -c . <<<"$progress")
        ok "[ $n_progress -ge 1 ]" "$label: heard Progress change in $n_progress PropertiesChanged signals before the end"
        ok "awk 'BEGIN { p = 0 } \$1 < p || \$1 < 0 || \$1 > 1 { exit 1 } { p = \$1 }' <<<'$progress'" \
                "$label: the Progress it heard stayed within 0..1 and never went down"
        last_phase=$(sed -n 's/^phase //p' <<<"$OUT" | tail -n1)
        is "$last_phase/$(mig_jprop a "$job" Phase)" completed/completed \
                "$label: the last Phase it heard is completed, as busctl reads it on a"

        is "$(stat_of phase)/$(stat_of kind)" completed/migration-out "$label: GetJobStats says completed, migration-out"
        ok "[ '$(stat_of elapsed-ms)' -gt 0 ] && [ '$(stat_of data-total)' -ge $((MEM_MIB << 20)) ]" \
                "$label: ... elapsed-ms $(stat_of elapsed-ms) > 0, data-total $(stat_of data-total) >= the guest's $MEM_MIB MiB"
        like "$(mig_dom a "$path" GetJobStats)" "\"data-total\" t $(stat_of data-total)( |\$)" \
                "$label: ... the data-total busctl reads on a"
        is "$(mig_state b "$(mig_lookup b "$name")")" running/migrated "$label: $name runs on b"
}

# check_refusal LABEL NAME CLIENT-COMMAND...: b already has a domain NAME
# (another UUID): Migrate is refused and the client must fail saying why.
check_refusal() {
        local label=$1 name=$2
        shift 2
        mig_define b "$(mig_test_xml "$name" 256)" >/dev/null || bail_out "cannot define $name on b"
        run_client "$name" "$@"
        isnt "$STATUS" 0 "$label: a refused Migrate (b has another $name) makes it exit non-zero"
        like "$ERR" "$VM_ERR\\.DomainExists" "$label: ... naming the error DomainExists"
        unlike "$OUT" $'(^|\n)job ' "$label: ... and no job"
        is "$(mig_state a "$(mig_lookup a "$name")")" running/booted "$label: ... $name still runs on a"
}

check_client "C client (gdbus-codegen)" gen1 "$VMIGRATE_CODEGEN_CLIENT"
diag "C client: $(sed -n 's/^end //p' <<<"$OUT")"
check_client "Python client (Gio)" py1 /usr/bin/python3 -u "$VMIGRATE_PY_CLIENT"
check_refusal "C client (gdbus-codegen)" gen2 "$VMIGRATE_CODEGEN_CLIENT"
check_refusal "Python client (Gio)" py2 /usr/bin/python3 -u "$VMIGRATE_PY_CLIENT"

hosts_finish
