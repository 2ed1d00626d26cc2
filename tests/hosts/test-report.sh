#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vmigratectl report between two test hosts: real migrations drawn from
# Domain.GetJobStats' history, each picture checked as a reader would get
# it: valid XML (xmllint), rendered by rsvg-convert to a PNG of the
# expected size with the curves' colours in it, and, read with
# xml.etree (report-check.py), three titled axes, one marker per pass of
# the history, the switch-over with the downtime GetJobStats reports or the
# post-copy switch. Three migrations: pre-copy of a test-backend domain
# that converges in a few passes; post-copy of one that cannot, switched by
# the convergence policy; and pre-copy of the TCG test guest writing
# nearly as fast as a 200 Mbit/s link carries, whose every page then
# verifies. Then what the command says when there is nothing to draw: the
# destination's job, no job, no such domain, an unwritable file, no
# --output.
# VMIGRATE_REPORT_KEEP=DIR keeps the pictures there, SVG and PNG, with the
# GetJobStats they come from (the README's docs/report-example.svg is
# writer.svg).
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"
. "$(dirname "$0")/lib-postcopy.sh"

VMIGRATECTL=$VMIGRATE_BUILD_ROOT/client/vmigratectl
CHECK=$(dirname "$0")/report-check.py
[ -x "$VMIGRATECTL" ] || bail_out "$VMIGRATECTL not built"
command -v rsvg-convert >/dev/null || bail_out "rsvg-convert is missing (librsvg2-bin; tools/install-deps.sh)"
command -v xmllint >/dev/null || bail_out "xmllint is missing (libxml2-utils; tools/install-deps.sh)"

mig_setup --qemu a b
dest_b=$(mig_dest b)

# ctl HOST ARGS...: vmigratectl on HOST, as its root.
ctl() {
        local h=$1
        shift
        host_exec "$h" env HOME=/root "$VMIGRATECTL" "$@"
}

# check_picture DESC HOST DOMAIN SVG: the report's file read back; sets
# $facts (report-check.py's KEY=VALUE lines).
check_picture() {
        local desc=$1 h=$2 dom=$3 svg=$4 png=${4%.svg}.png stats=${4%.svg}.json out
        ok "xmllint --noout '$svg'" "$desc: the SVG is well-formed XML (xmllint)"
        out=$(rsvg-convert --format=png --output "$png" "$svg" 2>&1)
        ok $? "$desc: rsvg-convert renders it to PNG" || diag "$out"
        mig_bus "$h" --json=short call "$VM_BUS_NAME" "$(mig_lookup "$h" "$dom")" "$VM_DOMAIN_IFACE" GetJobStats \
                >"$stats"
        facts=$($MIG_PY "$CHECK" "$svg" "$png" "$stats" 2>&1)
        ok $? "$desc: report-check.py reads the SVG, the PNG and GetJobStats" || diag "$facts"
        is "$(fact png)" 960x540 "$desc: the PNG is 960x540"
        ok "[ '$(fact png-dark)' -gt 2000 ] && [ '$(fact png-remaining)' -gt 300 ] && [ '$(fact png-dirty)' -gt 100 ]" \
                "$desc: it shows text and both curves in their colours ($(fact png-dark) dark, $(fact png-remaining) blue, $(fact png-dirty) red pixels)"
        is "$(fact axes)" "time since the migration started (s)|remaining to send (MiB)|dirty rate and link (MiB/s)" \
                "$desc: three axes, each with its title"
        ok "[ -n '$(fact history-passes)' ]" "$desc: GetJobStats has a history with passes ($(fact history-passes))"
        is "$(fact marker-passes)" "$(fact history-passes)" "$desc: one marker per pass of the history, in order"
        like "$(fact title)" "^Migration of '$dom' to unix://.*: $(fact phase) in [0-9.]+ (ms|s)$" \
                "$desc: the title says the domain, destination, result and total time"
}

# fact KEY: from $facts.
fact() {
        sed -n "s/^$1=//p" <<<"$facts"
}

# --- pre-copy that converges: 512 MiB, dirtied at 128 MiB/s, sent at 256 MiB/s
p=$(mig_define a "$(mig_test_xml r1 512 $((128 << 20)))") && mig_dom a "$p" Start >/dev/null
ok $? "test domain r1 (persistent, dirtying 128 MiB/s) runs on a"
out=$(ctl a migrate r1 "$dest_b" --bandwidth=256M --quiet 2>&1)
is "$?" 0 "r1 migrates a -> b at 256 MiB/s" || diag "$out"
svg=$HOSTS_RUN/r1.svg
out=$(ctl a report r1 --output "$svg" 2>&1)
is "$?" 0 "vmigratectl report r1 --output FILE on a" || diag "$out"
is "$out" "Wrote the picture of the last migration of domain 'r1' to $svg." "... says where it wrote it"
check_picture "r1, pre-copy" a r1 "$svg"
ok "[ '$(fact markers)' -ge 3 ]" "r1: a converging pre-copy of several passes ($(fact markers))"
ok "[ '$(fact downtime-ms)' -gt 0 ]" "r1: GetJobStats has the downtime ($(fact downtime-ms) ms)"
is "$(fact switchover)" "switch-over, downtime $(fact downtime-ms) ms" "r1: the switch-over is marked with that downtime"
is "$(fact postcopy)" - "r1: no post-copy marker"
out=$(ctl a report r1 -o - 2>&1 | head -c 100)
like "$out" '^<\?xml version="1.0" encoding="UTF-8"\?>' "-o -: the SVG on standard output"

# --- post-copy by the policy: dirtied faster (300 MiB/s) than sent (128 MiB/s)
p=$(mig_define a "$(mig_test_xml r2 256 $((300 << 20)))") && mig_dom a "$p" Start >/dev/null
ok $? "test domain r2 (dirtying 300 MiB/s) runs on a"
out=$(ctl a migrate r2 "$dest_b" --bandwidth=128M --postcopy --quiet 2>&1)
is "$?" 0 "r2 migrates a -> b with --postcopy" || diag "$out"
svg=$HOSTS_RUN/r2.svg
out=$(ctl a report r2 -o "$svg" 2>&1)
is "$?" 0 "vmigratectl report r2 -o FILE" || diag "$out"
check_picture "r2, post-copy" a r2 "$svg"
like "$(fact postcopy)" "^switch to post-copy" "r2: the post-copy switch is marked"
is "$(fact switchover)" - "r2: no pre-copy switch-over marker"
is "$(grep -c 'class="policy"' "$svg")" "$($MIG_PY -c '
import json, sys
h = json.load(open(sys.argv[1]))["data"][0]["history"]["data"]
print(sum(1 for s in h if s["event"]["data"] == "policy"))' "${svg%.svg}.json")" \
        "r2: a line per policy step of the history"
ok "grep -q 'class=\"policy-text\">policy: postcopy' '$svg'" "r2: the policy's switch to post-copy is labelled"

# --- nothing to draw
out=$(ctl b report r1 -o "$HOSTS_RUN/x.svg" 2>&1)
is "$?" 1 "report on the destination: status 1"
is "$out" "vmigratectl: cannot draw a report of domain 'r1': the last job of domain 'r1' here was its arrival from host-a: the passes are the source's, draw them there" \
        "... saying the passes are on the source"
p=$(mig_define a "$(mig_test_xml idle 64 0)")
out=$(ctl a report idle -o "$HOSTS_RUN/x.svg" 2>&1)
is "$?" 1 "report of a domain without a job: status 1"
like "$out" "^vmigratectl: cannot get the last migration of domain 'idle': domain 'idle' has no job on record [^"$'\n'"]*"$'\n'"hint: " \
        "... with NoJob's message and a hint"
ok "[ ! -e '$HOSTS_RUN/x.svg' ]" "... and no file written"
out=$(ctl a report nosuch -o "$HOSTS_RUN/x.svg" 2>&1)
is "$?" 4 "report of no such domain: status 4"
out=$(ctl a report r1 -o /nonexistent/dir/r1.svg 2>&1)
is "$?" 1 "report into a missing directory: status 1"
is "$out" "vmigratectl: cannot write the report to '/nonexistent/dir/r1.svg': No such file or directory" \
        "... naming the file and why"
out=$(ctl a report r1 2>&1)
is "$?" 2 "report without --output: usage error (status 2)"
like "$out" "needs --output=FILE" "... saying what is missing"
out=$(ctl a list -o "$HOSTS_RUN/x.svg" 2>&1)
is "$?" 2 "--output with another command: usage error (status 2)"

# --- a real guest: the TCG test guest rewriting 32 MiB at 5000 pages/s
# (~20 MB/s), nearly as fast as the 200 Mbit/s link (25 MB/s) carries: with
# the default policy pre-copy creeps to the switch-over pass after pass
# (or the policy lengthens the pauses it allows, then throttles the guest).
guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"
mig_require_tcg_precopy
link_shape a --rate "$PC_LINK" && link_shape b --rate "$PC_LINK" || bail_out "cannot shape the link"
PC_RATE=5000
PC_GUEST_CMDLINE="vmtest.mem=48M vmtest.ws=32M vmtest.rate=$PC_RATE"
pc_guest writer
out=$(ctl a migrate writer "$dest_b" --quiet 2>&1)
is "$?" 0 "the writing guest migrates a -> b" || diag "$out"
v=$(mig_guest b "$uuid" verify)
like "$v" "^VERIFY OK pages=$PC_PAGES " "... every page verifies on b ($v)"
svg=$HOSTS_RUN/writer.svg
out=$(ctl a report writer -o "$svg" 2>&1)
is "$?" 0 "vmigratectl report writer" || diag "$out"
check_picture "writer, QEMU" a writer "$svg"
ok "[ '$(fact markers)' -ge 4 ]" "writer: a pre-copy of many passes ($(fact markers))"
# Whichever ended it: post-copy, or pre-copy's switch-over.
if [ "$(fact postcopy-active)" = true ]; then
        like "$(fact postcopy)" "^switch to post-copy" "writer: it ended in post-copy, and the switch is marked"
else
        is "$(fact switchover)" "switch-over, downtime $(fact downtime-ms) ms" \
                "writer: it converged, and the switch-over is marked with its downtime"
fi
size=$(stat -c %s "$svg")
ok "[ '$size' -lt 30000 ]" "writer: the picture is small ($size bytes)"
if [ -n "${VMIGRATE_REPORT_KEEP:-}" ]; then
        mkdir -p "$VMIGRATE_REPORT_KEEP" && cp "$HOSTS_RUN"/{r1,r2,writer}.{svg,png,json} "$VMIGRATE_REPORT_KEEP" &&
                diag "pictures kept in $VMIGRATE_REPORT_KEEP"
fi

hosts_finish
