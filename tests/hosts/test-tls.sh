#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Option 'tls' between two hosts: credentials made at test time
# (tools/make-tls-certs.sh, one CA, a directory per host passed with
# --tls-dir), a TCG guest rewriting its memory migrated with TLS, plain
# and with 4 parallel connections, every page verified after each move;
# with no options TLS is the default, as both hosts can. Then the
# credentials broken one way at a time on the destination
# (expired, another CA, a certificate that does not name the host): DryRun
# reports the finding naming the host and the file, Migrate is refused
# with Incompatible, and nothing is left on either host.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

command -v certtool >/dev/null || bail_out "certtool not installed (package gnutls-bin)"
HOSTS_DAEMON_ARGS="--tls-dir=@HOSTDIR@/pki"
mig_setup --qemu a b
guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"
make_certs=$VMIGRATE_SOURCE_ROOT/tools/make-tls-certs.sh

# certs DIR [make-tls-certs options]: a fresh set for both hosts in DIR,
# each host's copied to its --tls-dir.
certs() {
        local dir=$1 h
        shift
        rm -rf "$dir"
        "$make_certs" "$@" "$dir" "host-a=$(host_ip a)" "host-b=$(host_ip b)" || return 1
        for h in a b; do
                rm -rf "$(host_path "$h" dir)/pki"
                cp -a "$dir/host-$h" "$(host_path "$h" dir)/pki" || return 1
        done
}
certs "$HOSTS_RUN/pki"
ok $? "credentials for host-a and host-b from one CA"


dest_b=$(mig_dest b)
dest_a=$(mig_dest a)
p=$(mig_define a "$(guest_domain_xml tlsguest qemu 'vmtest.mem=48M vmtest.ws=16M vmtest.rate=5000' 64)") &&
        mig_dom a "$p" Start >/dev/null
ok $? "a TCG guest writing 5000 pages/s runs on a"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"

out=$(mig_dry_run a "$p" "$dest_b" 1 tls b false)
like "$out" $'\nwarning security.plaintext host-b: the guest\'s memory will cross the network to host-b unencrypted' \
        "DryRun with 'tls'=false: a security.plaintext warning naming host-b"
out=$(mig_dry_run a "$p" "$dest_b" 0)
like "$out" $'\ninfo tls.default host-b: the stream will be encrypted with TLS' \
        "DryRun with no options: TLS by default, both hosts having credentials from one CA" || diag "$out"
unlike "$out" 'security.plaintext' "... and no security.plaintext finding"
out=$(mig_dry_run a "$p" "$dest_b" 1 tls b true)
like "$out" '^ok=true' "DryRun with 'tls' passes" || diag "$out"
unlike "$out" 'security.plaintext|tls\.' "... with no TLS or plain-text finding"

here=a
# leg DESC ENCRYPTION [N KEY TYPE VALUE...]: migrate from $here to the
# other host, verify; both jobs say what protected the stream. leg_extra
# FROM JOB runs while it migrates.
leg_extra() { :; }
leg() {
        local desc=$1 enc=$2 from=$here to out job
        shift 2
        if [ "$from" = a ]; then to=b; else to=a; fi
        out=$(mig_migrate "$from" "$p" "$(mig_dest "$to")" "$@")
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate $from -> $to answers with a job" ||
                return 1
        job=$(vm_reply_path "$out")
        leg_extra "$from" "$job"
        mig_wait_phase 90 "$from" "$job" 'completed|failed|cancelled'
        is "$(mig_jprop "$from" "$job" Phase)" completed "$desc: the job completed" ||
                diag "  error: $(mig_jprop "$from" "$job" Error)"
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        like "$(mig_guest "$to" "$uuid" verify)" '^VERIFY OK pages=12288 ' "$desc: every page verifies on $to"
        is "$(mig_jprop "$from" "$job" Encryption)" "$enc" "$desc: the source's Job.Encryption is '$enc'"
        like "$(mig_dom "$to" "$p" GetJobStats)" "\"encryption\" s \"$enc\"" \
                "$desc: the destination's statistics say encryption '$enc'"
        here=$to
}
leg "tls" tls 1 tls b true
# No open door: b listened on its own address (what host-b resolves to),
# not on every address.
like "$(grep -h 'waiting for the stream on' "$(host_path b log)")" "waiting for the stream on $(host_ip b):49[0-9]+" \
        "b listened for the stream on $(host_ip b) only, not on every address"
leg "tls, 4 parallel connections" tls 2 tls b true parallel-connections u 4
leg "plain ('tls'=false)" none 1 tls b false
leg "no options: TLS by default" tls 0

# Post-copy through TLS: a pre-copy that cannot converge (5 MB/s against 20 MB/s of
# writes) switched by StartPostCopy; the pages the guest then faults in
# come over the same TLS connection.
leg_extra() {
        local from=$1 job=$2 out
        ok "mig_wait_phase 30 $from '$job' perform" "tls post-copy: the job is copying"
        out=$(mig_dom "$from" "$p" StartPostCopy 2>&1)
        ok $? "tls post-copy: StartPostCopy" || diag "$out"
        ok "mig_wait_phase 30 $from '$job' 'postcopy|completed'" "tls post-copy: the job switched to post-copy"
}
leg "tls post-copy" tls 3 tls b true postcopy b true bandwidth t 5000000
leg_extra() { :; }
if [ "$here" = a ]; then src=b; else src=a; fi
like "$(mig_dom "$src" "$p" GetJobStats)" '"postcopy" b true' "tls post-copy: the source's statistics say it went post-copy"

# broken DESC ID PATTERN: DryRun a -> b with tls finds ID (error) whose
# message matches PATTERN; Migrate is refused with Incompatible; nothing
# changed on either host.
broken() {
        local desc=$1 id=$2 pattern=$3 out before
        [ "$here" = a ] || bail_out "the guest should be on a"
        out=$(mig_dry_run a "$p" "$dest_b" 1 tls b true)
        like "$out" '^ok=false' "$desc: DryRun fails"
        like "$out" $'\nerror '"$id $pattern" "$desc: finding $id names host and file" || diag "$out"
        out=$(mig_dry_run a "$p" "$dest_b" 0)
        like "$out" $'\ninfo tls.default host-b: the stream will not be encrypted by default although host-a has TLS' \
                "$desc: with no options, DryRun says TLS will not be the default, and why" || diag "$out"
        before=$(mig_domains b)
        out=$(mig_migrate_gdbus a "$p" "$dest_b" "{'tls': <true>}")
        like "$out" "GDBus.Error:$VM_ERR\\.Incompatible: .*$id|GDBus.Error:$VM_ERR\\.Incompatible" \
                "$desc: Migrate is refused with Incompatible"
        like "$(mig_state a "$p")" '^running/' "$desc: the guest still runs on a"
        is "$(mig_domains b)" "$before" "$desc: nothing was defined on b"
        is "$(mig_qemu_pids b "$uuid" | wc -l)" 0 "$desc: no QEMU of the guest on b"
}

if [ "$here" != a ]; then
        leg "tls, back to a" tls 1 tls b true
fi

"$make_certs" --days -3 --ca-dir "$HOSTS_RUN/pki/ca" "$HOSTS_RUN/pki-old" "host-b=$(host_ip b)" >/dev/null &&
        cp "$HOSTS_RUN/pki-old/host-b/"*-cert.pem "$HOSTS_RUN/pki-old/host-b/"*-key.pem "$(host_path b dir)/pki/"
ok $? "b's certificates expired three days ago (same CA)"
broken "expired certificates" tls.credentials "host-b: option 'tls': this host's credentials are not usable: .*/pki/server-cert.pem expired on"

certs "$HOSTS_RUN/pki"
"$make_certs" "$HOSTS_RUN/pki-other" host-b >/dev/null && cp "$HOSTS_RUN/pki-other/host-b/"* "$(host_path b dir)/pki/"
ok $? "b gets credentials from another CA"
broken "another CA" tls.ca "host-b: option 'tls': host-a's CA .* is not this host's"

certs "$HOSTS_RUN/pki"
"$make_certs" --ca-dir "$HOSTS_RUN/pki/ca" "$HOSTS_RUN/pki-name" host-elsewhere >/dev/null &&
        cp "$HOSTS_RUN/pki-name/host-elsewhere/server-"* "$(host_path b dir)/pki/"
ok $? "b's server certificate names host-elsewhere, not host-b"
broken "a certificate for another name" tls.hostname "host-b: option 'tls': .*/server-cert.pem is not valid for 'host-b'"

certs "$HOSTS_RUN/pki"
leg "tls again, with the credentials mended" tls 1 tls b true

# --- --require-encryption on a: it refuses to receive a plain migration.
# restart_daemon HOST EXTRA-ARGS: the next activation runs with them.
restart_daemon() {
        local h=$1 extra=$2 dir pid service
        dir=$(host_path "$h" dir)
        service=$dir/services/org.vmigrate.Migrate1.service
        sed -i -E "s|^(Exec=.*)$|\1 $extra|" "$service" || return 1
        busctl --address="$(host_bus_address "$h")" call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus ReloadConfig >/dev/null || return 1
        pid=$(host_daemon_pid "$h") || return 1
        kill -TERM "$pid" || return 1
        wait_until 20 eval "! kill -0 $pid 2>/dev/null"
}
[ "$here" = b ] || bail_out "the guest should be on b"
restart_daemon a --require-encryption
ok $? "vmigrated on a restarts with --require-encryption"
out=$(mig_dry_run b "$p" "$dest_a" 1 tls b false)
like "$out" $'\nerror security.plaintext host-a: this host does not let guest memory cross the network unencrypted' \
        "DryRun b -> a with 'tls'=false: host-a refuses clear text (security.plaintext error)"
out=$(mig_migrate_gdbus b "$p" "$dest_a" "{'tls': <false>}")
like "$out" "GDBus.Error:$VM_ERR\\.UnsupportedOption: .*--require-encryption" \
        "Migrate b -> a with 'tls'=false is refused with UnsupportedOption naming --require-encryption"
is "$(mig_state b "$p")" running/migrated "... the guest still runs on b"
out=$(mig_dry_run b "$p" "$dest_a" 1 tunnelled b true)
like "$out" '^ok=true' "DryRun b -> a with 'tunnelled': the tunnel is not clear text, host-a accepts" || diag "$out"
leg "no options, to a host that requires encryption: TLS by default" tls 0

# --- strangers reach b's data port before the source does. a's cable
# is unplugged while the migration starts (the control connection is a
# unix socket, unaffected; the source's SYN is lost and retried a second
# later), so the strangers, on b itself, connect first: a second QEMU
# migrating a valid stream of another guest, then one who sends a forged
# stream header, both in clear text;
# then the cable goes back. With TLS, b's QEMU refuses the stranger's
# handshake: the migration must still end cleanly (succeed, or fail with
# the guest whole on a and nothing left on b), and a guest that runs on b
# must be ours (every page verifies).
[ "$here" = a ] || bail_out "the guest should be on a"
# A permanent neighbour entry for b on a: without it, a's connect could
# fail at once on a failed ARP lookup ("No route to host") instead of
# being retried once the cable is back.
b_mac=$(ip -n "$(host_netns b)" -o link show eth0 | sed -n -E 's/.*link\/ether ([0-9a-f:]+).*/\1/p')
ip -n "$(host_netns a)" neigh replace "$(host_ip b)" lladdr "$b_mac" dev eth0 nud permanent
ok $? "stranger: a knows b's MAC address ($b_mac) without asking"
link_down a
wait_out=$HOSTS_RUN/stranger-migrate.out
mig_migrate_gdbus a "$p" "$dest_b" "{'tls': <true>, 'wait': <true>}" >"$wait_out" 2>&1 &
wait_pid=$!
stranger_port() { mig_listening_ports b | head -n1; }
wait_until 30 eval '[ -n "$(stranger_port)" ]'
ok $? "stranger: b listens for the stream ($(stranger_port)) while a's cable is out"
addr=$(stranger_port)
# First a stranger's QEMU: the same machine, another guest (40 MiB of
# test-guest memory, not 48), a valid migration stream in clear text.
out=$(/usr/bin/python3 "$(dirname "$0")/stranger-qemu.py" --argv-from "$(host_path a runtime)/qemu/log/$uuid.log" \
        --workdir "$HOSTS_RUN/stranger" --exec "$(host_enter b)" --to "$addr" --timeout 20 2>&1)
like "$out" '^failed: ' "stranger: a second QEMU with another guest migrated to ${addr:-?} first: b's QEMU turned it away ($out)"
unlike "$out" 'refused' "... the connection was made (and refused by TLS, not by a closed port)"
like "$(mig_listening_ports b)" "${addr:-none}" "... and b still waits for the source on ${addr:-?}"
# Then one who sends a forged stream header: connect, send garbage, then see whether QEMU hangs up on us: its TLS
# server cannot make a handshake of random bytes.
stranger=$(host_exec b timeout 20 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || { echo no-connect; exit 0; }
        # What a forger would send: a QEMU stream header (magic QEVM,
        # version 3) and more, in clear text. (Random bytes could pass
        # for a TLS record header now and then and keep QEMU waiting.)
        { printf "QEVM\\0\\0\\0\\3"; head -c 4096 /dev/zero; } >&3 2>/dev/null
        timeout 10 cat <&3 >/dev/null 2>&1
        # 124: nothing for 10 s, still open; else EOF or a reset: hung up.
        if [ $? -eq 124 ]; then echo still-open; else echo closed; fi' _ "${addr%:*}" "${addr##*:}")
is "$stranger" closed "stranger: connected to ${addr:-?} first, sent a forged stream header, and b's QEMU hung up on it"
link_up a
ok $? "stranger: a's cable is back"
ok "wait_until 120 eval '! kill -0 $wait_pid 2>/dev/null'" "stranger: Migrate with wait=true answered"
out=$(cat "$wait_out")
diag "stranger: Migrate answered: $out"
if [[ $out =~ ^\(objectpath ]]; then
        is "$(mig_state b "$p")" running/migrated "stranger: the migration succeeded, the guest runs on b"
        like "$(mig_guest b "$uuid" verify)" '^VERIFY OK pages=12288 ' "stranger: it is our guest: every page verifies on b"
        here=b
else
        like "$out" "GDBus.Error:$VM_ERR\\.MigrationFailed" "stranger: the migration failed cleanly (MigrationFailed)"
        like "$(mig_state a "$p")" '^running/' "stranger: the guest still runs on a"
        like "$(mig_guest a "$uuid" verify)" '^VERIFY OK pages=12288 ' "stranger: every page verifies on a"
        mig_check_clean b "$uuid" "stranger"
fi

# --- post-copy through TLS broken by a cut cable, then resumed through
# TLS: the resume adds fresh TLS objects to the same two QEMUs.
if [ "$here" = a ]; then there=b; else there=a; fi
out=$(mig_migrate "$here" "$p" "$(mig_dest $there)" 4 tls b true postcopy b true bandwidth t 5000000 postcopy-bandwidth t 2000000)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "tls recovery: Migrate $here -> $there answers with a job"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 30 $here '$job' perform" "tls recovery: the job is copying"
out=$(mig_dom "$here" "$p" StartPostCopy 2>&1)
ok $? "tls recovery: StartPostCopy" || diag "$out"
ok "mig_wait_state 30 $there '$p' running/postcopy" "tls recovery: the guest runs on $there in post-copy"
link_down "$there"
ok $? "tls recovery: $there's cable unplugged during post-copy"
ok "mig_wait_state 45 $here '$p' paused/postcopy-failed" "tls recovery: $here says paused/postcopy-failed"
ok "mig_wait_state 15 $there '$p' '[a-z]+/postcopy-failed'" "tls recovery: $there says postcopy-failed"
link_up "$there"
ok $? "tls recovery: $there's cable plugged back"
out=$(mig_migrate "$here" "$p" "$(mig_dest $there)" 4 tls b true postcopy b true postcopy-resume b true wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "tls recovery: postcopy-resume with 'tls' completes" ||
        diag "$out"
is "$(mig_state $there "$p")" running/migrated "tls recovery: the guest runs on $there"
like "$(mig_guest $there "$uuid" verify)" '^VERIFY OK pages=12288 ' "tls recovery: every page verifies on $there"
ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids $here $uuid)\" ]'" "tls recovery: no QEMU left for it on $here"
here=$there

mig_dom "$here" "$p" Destroy >/dev/null
ok $? "Destroy the guest on $here"
mig_check_clean a "$uuid" "at the end"
mig_check_clean b "$uuid" "at the end"
hosts_finish
