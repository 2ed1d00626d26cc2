#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Many clients during a migration: tests/hosts/load-clients.py opens 100
# separate connections to host a's bus (one process, distinct unique names)
# that poll Domain.GetJobStats and the job's Properties.GetAll at 10 Hz each
# while a test-backend domain migrates a -> b (~4 s), and one more that
# calls Manager.ListDomains in a loop; then the domain goes back unloaded.
# Every call must be answered without error, the migration complete and
# both daemons survive, unrestarted. Nothing is timed here: the figures
# (wall time vs. unloaded, latencies) are bench/load-bench.sh's.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

/usr/bin/python3 -c 'import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio' 2>/dev/null ||
        skip_all "python3-gi is not installed"
mig_setup a b
CLIENTS=100
MEM_MIB=1024
# 1 GiB at 256 MiB/s: a copy of about 4 s.
BANDWIDTH=$((256 * 1048576))

# Persistent: a transient domain leaves the source's bus when it has
# migrated, and a GetJobStats sent just before the clients hear Finished
# would rightly get UnknownObject.
p=$(mig_define a "$(mig_test_xml load "$MEM_MIB")") && mig_dom a "$p" Start >/dev/null
ok $? "a persistent 1 GiB test-backend domain runs on a"
# Both daemons up (bus activation) before their pids are read.
mig_mgr b ListDomains >/dev/null
pid_a=$(host_daemon_pid a)
pid_b=$(host_daemon_pid b)

out=$(timeout 120 /usr/bin/python3 "$(dirname "$0")/load-clients.py" \
        --source "$(host_bus_address a)" --source-uri "$(mig_dest a)" \
        --dest "$(host_bus_address b)" --dest-uri "$(mig_dest b)" \
        --domain "$p" --clients "$CLIENTS" --hz 10 --rounds 0 --bandwidth "$BANDWIDTH" 2>&1)
is "$?" 0 "load-clients.py: the migration under load and the one back succeed, every call answered" ||
        diag "$out"
summary=$(tail -n 1 <<<"$out")
# field EXPR: a value of the JSON summary (Python expression on s).
field() {
        /usr/bin/python3 -c 'import json, sys; s = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' \
                "$summary" "$1" 2>/dev/null
}
is "$(field 's["unique-names"]')" $((CLIENTS + 1)) "$CLIENTS poller connections and the ListDomains one have distinct unique names"
is "$(field 's["migrations"][0]["result"]')" completed "the migration under load completed"
is "$(field 's["errors"]') $(field 's["unanswered"]')" "0 0" \
        "no call failed, none went unanswered ($(field 's["calls"]') calls)" || diag "$(field 's["first-errors"]')"
is "$(field 's["clients-answered"]["stats"]') $(field 's["clients-answered"]["props"]')" "$CLIENTS $CLIENTS" \
        "every client got answers to GetJobStats and to the job's GetAll"
ok "[ \"$(field 's["methods"]["ListDomains"]["calls"]')\" -gt 1 ]" "the ListDomains loop was answered"
job=$(field 's["migrations"][0]["job"]')
is "$(mig_jprop a "$job" Phase)" completed "the job's Phase on a is completed"
is "$(mig_state a "$p")" running/migrated "the domain came back and runs on a"
is "$(host_daemon_pid a) $(host_daemon_pid b)" "$pid_a $pid_b" "both daemons are alive, never restarted"
like "$(mig_mgr a ListDomains)" "\"$p\"" "host a's daemon still answers"

hosts_finish
