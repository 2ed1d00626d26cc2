#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every refused Migrate between two hosts gets its specific error, naming
# what was wrong (both options of a conflict), and changes nothing on
# either host: unknown options, wrong types, unsupported and conflicting
# options (qemu and test backends), bad, same-host and unreachable
# destinations, a name clash on the destination, a second Migrate while
# one runs, a shut-off domain.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup --qemu a b
mig_idle_type "idle guest, /dev/kvm usable" "/dev/kvm missing"
type=$MIG_TYPE
dest_b=$(mig_dest b)

g=$(mig_create a "$(guest_domain_xml g "$type" 'vmtest.mem=256K vmtest.rate=0' 64)")
ok $? "an idle qemu guest g runs on a"
t=$(mig_create a "$(mig_test_xml t 512)")
ok $? "a test-backend domain t runs on a"
off=$(mig_define a "$(mig_test_xml off 512)")
ok $? "a test-backend domain 'off' is defined (shut off) on a"

# What a refusal must leave alone, on both hosts.
snapshot() {
        local h d
        for h in a b; do
                echo "[$h]"
                for d in $(mig_domains "$h"); do
                        echo "$d $(mig_dprop "$h" "$d" Name) $(mig_state "$h" "$d") $(mig_dprop "$h" "$d" Persistent) job=$(mig_dprop "$h" "$d" Job)"
                done
                echo "running jobs: $(mig_running_jobs "$h" | tr '\n' ' ')"
                echo "qemu: $(mig_qemu_pids "$h" | sort | tr '\n' ' ')"
                echo "ports: $(mig_listening_ports "$h" | tr '\n' ' ')"
                echo "rundirs: $(ls "$(host_path "$h" runtime)/qemu" 2>/dev/null | grep -v '^log$' | tr '\n' ' ')"
        done
}
before=$(snapshot)

# refused DESC DOMAIN DEST OPTS ERROR REGEX...: Migrate through gdbus (it
# prints the error name) must fail with ERROR, its message must match
# every REGEX, and nothing may change.
refused() {
        local desc=$1 dom=$2 dest=$3 opts=$4 err=$5 out re now
        shift 5
        out=$(mig_migrate_gdbus a "$dom" "$dest" "$opts")
        if [[ $out =~ ^\(objectpath ]]; then
                # Accepted: the guest is on its way; what follows would
                # test a domain that is no longer here.
                _tap_result 1 "$desc: $err"
                bail_out "$desc: Migrate accepted $opts to $dest ($out) instead of refusing it with $err"
        fi
        like "$out" "GDBus.Error:$VM_ERR\\.$err: " "$desc: $err" || return 1
        for re in "$@"; do
                like "$out" "$re" "$desc: the message names $re"
        done
        now=$(snapshot)
        is "$now" "$before" "$desc: nothing changed on a or b"
}

# --- options the parser refuses
refused "unknown option" "$g" "$dest_b" "{'frobnicate': <true>}" InvalidOption "'frobnicate'"
refused "wrong type" "$g" "$dest_b" "{'bandwidth': <'fast'>}" InvalidOption "'bandwidth'" "t|uint64|type"
refused "wrong type (live as string)" "$g" "$dest_b" "{'live': <'yes'>}" InvalidOption "'live'"
refused "bad enum value" "$g" "$dest_b" "{'compression': <'lz4'>}" InvalidOption "'compression'" "lz4"
refused "parallel-connections out of range" "$g" "$dest_b" "{'parallel-connections': <uint32 1000>}" \
        InvalidOption "'parallel-connections'"
refused "bad data-uri" "$g" "$dest_b" "{'data-uri': <'http://x'>}" InvalidOption "'data-uri'"
refused "bad destination-name" "$g" "$dest_b" "{'destination-name': <'a/b'>}" InvalidOption "'destination-name'"

# --- conflicts (qemu backend supports both options of each)
refused "zstd without parallel-connections" "$g" "$dest_b" "{'compression': <'zstd'>}" \
        ConflictingOptions "'compression'" "'parallel-connections'"
refused "zlib without parallel-connections" "$g" "$dest_b" "{'compression': <'zlib'>}" \
        ConflictingOptions "'compression'" "'parallel-connections'"
refused "xbzrle with parallel-connections" "$g" "$dest_b" \
        "{'compression': <'xbzrle'>, 'parallel-connections': <uint32 4>}" \
        ConflictingOptions "'compression'" "'parallel-connections'"

# --- what GetBackends says is unsupported is refused by name, with its
# reason, never ignored; what it says is supported is checked against the
# conflict rules instead.
declare -A sample=([live]="<false>" [offline]="<true>" [paused]="<true>" [persist]="<true>"
        [undefine-source]="<true>" [postcopy]="<true>" [postcopy-resume]="<true>" [auto-converge]="<true>"
        [tunnelled]="<true>" [tls]="<true>" [copy-storage]="<'all'>" [postcopy-bandwidth]="<uint64 1000000>"
        [timeout]="<uint64 60>" [timeout-action]="<'abort'>" [abort-on-error]="<true>" [unsafe]="<true>")
support=$(mig_option_support a qemu)
like "$support" 'tunnelled supported' "GetBackends: the qemu backend supports tunnelled"
declare -A supported=()
while read -r key sup why; do
        [ "$sup" = supported ] && supported[$key]=1
        [ "$sup" = unsupported ] || continue
        if [ -z "${sample[$key]:-}" ]; then
                diag "no sample value for unsupported option '$key': not tried"
                continue
        fi
        refused "unsupported $key" "$g" "$dest_b" "{'$key': ${sample[$key]}}" UnsupportedOption "'$key'" \
                "$(sed 's/[][\\.^$*+?(){}|]/\\&/g' <<<"$why")"
done <<<"$support"
# tunnelled + data-uri: the conflict, naming both.
out=$(mig_migrate_gdbus a "$g" "$dest_b" "{'tunnelled': <true>, 'data-uri': <'tcp://host-b:49200'>}")
like "$out" "GDBus.Error:$VM_ERR\\.ConflictingOptions: .*('tunnelled'.*'data-uri'|'data-uri'.*'tunnelled')" \
        "tunnelled + data-uri: refused naming both"
is "$(snapshot)" "$before" "tunnelled + data-uri: nothing changed on a or b"
# offline + live: ConflictingOptions naming both (UnsupportedOption
# 'offline' where offline is not implemented).
if [ -n "${supported[offline]:-}" ]; then
        refused "offline + live" "$g" "$dest_b" "{'offline': <true>, 'live': <true>}" ConflictingOptions "'offline'" "'live'"
        refused "offline + postcopy" "$g" "$dest_b" "{'offline': <true>, 'postcopy': <true>}" ConflictingOptions "'offline'" "'postcopy'"
        refused "offline + persist=false" "$g" "$dest_b" "{'offline': <true>, 'persist': <false>}" ConflictingOptions "'offline'" "'persist'"
else
        refused "offline + live" "$g" "$dest_b" "{'offline': <true>, 'live': <true>}" UnsupportedOption "'offline'"
fi
if [ -n "${supported[postcopy]:-}" ]; then
        refused "postcopy + paused" "$g" "$dest_b" "{'postcopy': <true>, 'paused': <true>}" ConflictingOptions "'postcopy'" "'paused'"
        refused "postcopy + live=false" "$g" "$dest_b" "{'postcopy': <true>, 'live': <false>}" ConflictingOptions "'postcopy'" "'live'"
fi
# The test backend has one simulated stream: compression is refused by
# name, with the backend's name.
refused "compression on the test backend" "$t" "$dest_b" "{'compression': <'zstd'>, 'parallel-connections': <uint32 2>}" \
        UnsupportedOption "'(compression|parallel-connections)'" "test"

# --- destinations
refused "unknown scheme" "$g" "ftp://host-b" "@a{sv} {}" InvalidDestination "ftp"
refused "relative unix path" "$g" "unix://relative/bus" "@a{sv} {}" InvalidDestination "unix"
refused "empty host" "$g" "ssh://" "@a{sv} {}" InvalidDestination "host"
refused "empty destination" "$g" "" "@a{sv} {}" InvalidDestination ""
refused "this very host" "$g" "$(mig_dest a)" "@a{sv} {}" InvalidDestination "this host|same host"
refused "no bus at that path" "$g" "unix://$HOSTS_RUN/no-such-socket" "@a{sv} {}" DestinationUnreachable \
        "no-such-socket"

# --- the destination refuses in Prepare: another domain named g on b
clash=$(mig_define b "$(mig_test_xml g 256)")
ok $? "a different domain named g is defined on b"
before=$(snapshot)
refused "name clash on b" "$g" "$dest_b" "@a{sv} {}" DomainExists "'g'" "destination-name"
out=$(mig_migrate a "$g" "$dest_b" 1 destination-name s g2)
like "$out" '^o "' "... destination-name=g2 avoids the clash"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 a '$job' completed" "... and the migration completes"
ok "mig_lookup b g2 >/dev/null" "... g2 runs on b"
is "$(mig_dprop b "$clash" State)" shutoff "... next to the other g, untouched"

# --- a second Migrate while one runs: 4 GiB at 20 MB/s lasts minutes
big=$(mig_create a "$(mig_test_xml big 4096)")
ok $? "a 4 GiB test domain 'big' runs on a"
out=$(mig_migrate a "$big" "$dest_b" 1 bandwidth t 20000000)
like "$out" '^o "' "Migrate big at 20 MB/s answers with a job"
job=$(vm_reply_path "$out")
before=$(snapshot)
refused "Migrate twice" "$big" "$dest_b" "@a{sv} {}" JobActive "big"
out=$(mig_dom a "$big" AbortJob 2>&1)
ok $? "AbortJob ends the first one" || diag "$out"
ok "mig_wait_phase 30 a '$job' cancelled" "... its job is cancelled"
like "$(mig_state a "$big")" "^running/" "... big still runs on a (it was never paused)"
ok "wait_until 10 eval '! mig_lookup b big >/dev/null'" "... and nothing of it is left on b"

# --- a shut-off domain cannot be migrated live
before=$(snapshot)
refused "shut-off domain" "$off" "$dest_b" "@a{sv} {}" InvalidState "'off'"

hosts_finish
