#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Option 'tunnelled' between two hosts: the stream travels inside the
# control transport and no data port is opened. Over unix:// the
# destination's vmigrated hands the source a connected socket by D-Bus
# file-descriptor passing; over ssh:// (a real sshd on each host) the
# source runs vmigrate-tunnel on the destination through ssh. A TCG guest
# rewriting its memory moves each way, pre-copy and post-copy, every page
# verified; `ss` in the destination shows no TCP listener while the
# stream is waited for; the tunnel killed on the destination fails the
# migration at once with the tunnel's words, and the guest stays on the
# source; killed in post-copy, the migration is resumed through a new
# tunnel; a wrong token and refused combinations are answered clearly.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

tunnel_command=$VMIGRATE_BUILD_ROOT/service/vmigrate-tunnel
[ -x "$tunnel_command" ] || bail_out "$tunnel_command not built"
HOSTS_DAEMON_ARGS="--tunnel-command=$tunnel_command"
# ssh-exit-late/ssh: the real ssh, whose end a case below delays.
HOSTS_DAEMON_ENV="${HOSTS_DAEMON_ENV:-} PATH=$(readlink -f "$(dirname "$0")")/ssh-exit-late:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTS_DAEMON_ENV+=" VMIGRATE_TEST_SSH_EXIT_LATE=@HOSTDIR@/ssh-exit-late"
mig_setup --qemu a b
host_start_sshd a || bail_out "no sshd on host a"
host_start_sshd b || bail_out "no sshd on host b"
guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"


# tcp_listeners HOST: the TCP ports HOST listens on, sorted, one line.
tcp_listeners() {
        ip netns exec "$(host_netns "$1")" ss -Hltn 2>/dev/null |
                awk '{ n = split($4, a, ":"); print a[n] }' | sort -n | uniq | tr '\n' ' '
}

p=$(mig_define a "$(guest_domain_xml tunguest qemu 'vmtest.mem=48M vmtest.ws=16M vmtest.rate=5000' 64)") &&
        mig_dom a "$p" Start >/dev/null
ok $? "a TCG guest writing 5000 pages/s runs on a"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"

dest_unix_b=$(mig_dest b)
out=$(mig_dry_run a "$p" "$dest_unix_b" 1 tunnelled b true)
like "$out" '^ok=true' "DryRun with 'tunnelled' passes" || diag "$out"
unlike "$out" 'security.plaintext' "... with no security.plaintext finding"

# Refused combinations, by name and why.
out=$(mig_migrate a "$p" "$dest_unix_b" 2 tunnelled b true parallel-connections u 2 2>&1)
like "$out" "tunnelled.*parallel-connections.*single connection" \
        "tunnelled with parallel-connections: refused, saying the tunnel is one connection"
out=$(mig_migrate a "$p" "$dest_unix_b" 2 tunnelled b true tls b true 2>&1)
like "$out" "ssh encrypts it" "tunnelled with tls: refused, saying to choose one"
out=$(mig_migrate a "$p" "$dest_unix_b" 2 tunnelled b true listen-address s 0.0.0.0 2>&1)
like "$out" "no data port" "tunnelled with listen-address: refused, there is no data port"
is "$(mig_state a "$p")" running/booted "... and the guest still runs on a"

here=a
# leg DESC DEST-KIND [N KEY TYPE VALUE...]: migrate from $here to the
# other host over unix:// or ssh://, tunnelled; verify every page; both
# hosts' jobs say 'tunnel'. leg_extra FROM TO JOB runs while it migrates.
leg_extra() { :; }
leg() {
        local desc=$1 kind=$2 from=$here to dest out job
        shift 2
        if [ "$from" = a ]; then to=b; else to=a; fi
        if [ "$kind" = ssh ]; then dest=ssh://host-$to; else dest=$(mig_dest "$to"); fi
        out=$(mig_migrate "$from" "$p" "$dest" "$@")
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$desc: Migrate $from -> $dest answers with a job" ||
                { diag "$out"; return 1; }
        job=$(vm_reply_path "$out")
        leg_extra "$from" "$to" "$job"
        mig_wait_phase 90 "$from" "$job" 'completed|failed|cancelled'
        is "$(mig_jprop "$from" "$job" Phase)" completed "$desc: the job completed" ||
                diag "  error: $(mig_jprop "$from" "$job" Error)"
        is "$(mig_state "$to" "$p")" running/migrated "$desc: the guest runs on $to"
        like "$(mig_guest "$to" "$uuid" verify)" '^VERIFY OK pages=12288 ' "$desc: every page verifies on $to"
        is "$(mig_jprop "$from" "$job" Encryption)" tunnel "$desc: the source's Job.Encryption is 'tunnel'"
        like "$(mig_dom "$to" "$p" GetJobStats)" '"encryption" s "tunnel"' \
                "$desc: the destination's statistics say encryption 'tunnel'"
        is "$(mig_qemu_pids "$from" "$uuid" | wc -l)" 0 "$desc: no QEMU of the guest left on $from"
        here=$to
}

# No open door: while the destination waits for the stream (the copy is
# held to 10 MB/s so that there is time to look, then let go), it listens
# on no TCP port but sshd's, and on a unix socket in the guest's own
# directory.
before_b=$(tcp_listeners b)
is "$before_b" "22 " "before: b listens on TCP port 22 (sshd) only"
leg_extra() {
        local from=$1 to=$2 job=$3
        ok "mig_wait_phase 30 $from '$job' perform" "unix: the job is copying"
        is "$(tcp_listeners "$to")" "$before_b" "unix: while copying, $to opened no TCP port (ss -ltn)"
        like "$(ip netns exec "$(host_netns "$to")" ss -Hx 2>/dev/null | grep -c "qemu/$uuid/stream.sock")" '^[1-9]' \
                "unix: the stream reaches $to's QEMU by its unix socket (ss -x)"
        mig_dom "$from" "$p" SetMaxBandwidth tb 1000000000 false >/dev/null
}
leg "tunnelled over unix://" unix 2 tunnelled b true bandwidth t 10000000
leg_extra() {
        local from=$1 to=$2 job=$3
        ok "mig_wait_phase 30 $from '$job' perform" "ssh: the job is copying"
        is "$(tcp_listeners "$to")" "22 " "ssh: while copying, $to listens on no TCP port but sshd's"
        like "$(pgrep -f "vmigrate-tunnel $uuid" | wc -l)" '^[1-9]' "ssh: vmigrate-tunnel carries it on $to"
        mig_dom "$from" "$p" SetMaxBandwidth tb 1000000000 false >/dev/null
}
logins_a=$(grep -c 'Accepted publickey' "$(host_path a dir)/sshd.log")
leg "tunnelled over ssh://" ssh 2 tunnelled b true bandwidth t 10000000
leg_extra() { :; }
# The tunnel is a channel of the control connection's ssh, not a login.
is "$(($(grep -c 'Accepted publickey' "$(host_path a dir)/sshd.log") - logins_a))" 1 \
        "ssh: one ssh login on a for the control connection and its tunnel"
like "$(grep -c 'session opened\|Starting session' "$(host_path a dir)/sshd.log")" '^[2-9]' \
        "ssh: ... which carried two sessions (bus bridge, tunnel)"
like "$(grep -h "tunnel to ssh://" "$(host_path a log)" "$(host_path b log)" | head -n1)" "ssh started as pid" \
        "the source logged the ssh it started"

# Post-copy through the tunnel: a pre-copy that cannot converge (5 MB/s
# against 20 MB/s of writes) switched by StartPostCopy; the pages the
# guest faults in on the destination come back through the same tunnel.
leg_extra() {
        local from=$1 to=$2 job=$3 out
        ok "mig_wait_phase 30 $from '$job' perform" "post-copy: the job is copying"
        out=$(mig_dom "$from" "$p" StartPostCopy 2>&1)
        ok $? "post-copy: StartPostCopy" || diag "$out"
        ok "mig_wait_phase 30 $from '$job' 'postcopy|completed'" "post-copy: the job switched to post-copy"
}
leg "tunnelled post-copy over ssh://" ssh 3 tunnelled b true postcopy b true bandwidth t 5000000
if [ "$here" = a ]; then src=b; else src=a; fi
like "$(mig_dom "$src" "$p" GetJobStats)" '"postcopy" b true' \
        "ssh post-copy: the source's statistics say it went post-copy"
leg "tunnelled post-copy over unix://" unix 3 tunnelled b true postcopy b true bandwidth t 5000000
leg_extra() { :; }

# A token that is not the attempt's opens nothing.
out=$(mig_bus b call "$VM_BUS_NAME" /org/vmigrate/Migrate1 org.vmigrate.Migrate1.Incoming OpenTunnel 'a{sv}' 3 \
        version u 1 uuid s "$uuid" tunnel-token s 00112233 2>&1)
like "$out" "no tunnelled migration of domain $uuid waits here" "OpenTunnel with a made-up token: refused" ||
        diag "$out"

# Abort propagation: the tunnel's far end killed mid-copy. The source
# learns it from ssh at once (not from a timeout), says so, and the guest
# goes on running on the source; nothing is left on the destination.
# ssh closes QEMU's socket before it exits: QEMU's "broken pipe" can come
# first, and the source waits for ssh's end to report its words; here the
# tunnel's ssh exits a second after it let go of the socket
# (ssh-exit-late), so that it always comes second.
[ "$here" = a ] || bail_out "the guest should be on a"
touch "$(host_path a dir)/ssh-exit-late"
mark_a=$(wc -l <"$(host_path a log)")
out=$(mig_migrate a "$p" "ssh://host-b" 2 tunnelled b true bandwidth t 3000000)
job=$(vm_reply_path "$out")
ok "mig_wait_phase 30 a '$job' perform" "kill: the job is copying" || diag "$out"
# Its command line, not ssh's on a (which names it too).
ok "wait_until 10 eval 'pgrep -f \"^$tunnel_command $uuid\" >/dev/null'" "kill: vmigrate-tunnel runs on b"
t0=$(mig_now_ms)
pkill -KILL -f "^$tunnel_command $uuid"
mig_wait_phase 30 a "$job" 'completed|failed|cancelled'
t1=$(mig_now_ms)
is "$(mig_jprop a "$job" Phase)" failed "kill: the job failed"
err=$(mig_jprop a "$job" Error)
like "$err" "the tunnel to the destination: ssh to ssh://host-b exited with status" \
        "kill: the error says the tunnel's ssh to host-b ended: $err"
like "$(tail -n +"$((mark_a + 1))" "$(host_path a log)")" "the stream failed .* while a tunnel's ssh runs: waiting for its end" \
        "kill: ... though the stream's own failure came first (a waited for ssh's end)"
rm -f "$(host_path a dir)/ssh-exit-late"
ok "[ $((t1 - t0)) -lt 10000 ]" "kill: within 10 s ($((t1 - t0)) ms), not at a timeout"
ok "mig_wait_state 30 a '$p' 'running/.*'" "kill: the guest runs on a ($(mig_state a "$p"))"
like "$(mig_guest a "$uuid" verify)" '^VERIFY OK pages=12288 ' "kill: every page still verifies on a"
ok "wait_until 30 eval '[ \"\$(mig_qemu_pids b $uuid | wc -l)\" = 0 ]'" "kill: no QEMU of the guest left on b"
is "$(tcp_listeners b)" "22 " "kill: b listens on no new TCP port"

# Post-copy through the tunnel, the tunnel killed on b while pages are
# still missing there: nothing is killed, both hosts say
# postcopy-failed, and postcopy-resume finishes it through a new tunnel
# (migrate-recover on b's socket, a fresh token, a fresh ssh channel).
# Pre-copy is slowed too: at full speed it may have sent every page
# before StartPostCopy lands (a loaded machine), and post-copy would end
# before the tunnel can be killed.
out=$(mig_migrate a "$p" "ssh://host-b" 4 tunnelled b true postcopy b true bandwidth t 3000000 postcopy-bandwidth t 2000000)
job=$(vm_reply_path "$out")
ok "mig_wait_phase 30 a '$job' perform" "recovery: the job is copying" || diag "$out"
out=$(mig_dom a "$p" StartPostCopy 2>&1)
ok $? "recovery: StartPostCopy" || diag "$out"
ok "mig_wait_phase 30 a '$job' postcopy" "recovery: the job is in post-copy"
ok "mig_wait_state 20 b '$p' running/postcopy" "recovery: the guest runs on b while its pages arrive"
wait_until 10 eval 'pgrep -f "^$tunnel_command $uuid" >/dev/null' ||
        diag "  no process's command line starts with $tunnel_command $uuid; the tunnel's processes: $(pgrep -a -f vmigrate-tunnel | tr '\n' ';')"
pkill -KILL -f "^$tunnel_command $uuid"
ok $? "recovery: vmigrate-tunnel killed on b in post-copy" ||
        diag "  job $(mig_job_phase a "$job"), $(mig_jprop a "$job" DataRemaining) bytes to send"
mig_wait_phase 60 a "$job" 'completed|failed|cancelled'
is "$(mig_jprop a "$job" Phase)" failed "recovery: the job failed"
like "$(mig_jprop a "$job" Error)" "tunnel" "recovery: its error names the tunnel: $(mig_jprop a "$job" Error)"
ok "mig_wait_state 30 a '$p' paused/postcopy-failed" "recovery: a says paused/postcopy-failed ($(mig_state a "$p"))"
ok "mig_wait_state 30 b '$p' '.*/postcopy-failed'" "recovery: b says postcopy-failed ($(mig_state b "$p"))"
is "$(mig_qemu_pids a "$uuid" | wc -l)/$(mig_qemu_pids b "$uuid" | wc -l)" 1/1 \
        "recovery: nothing killed: the guest's QEMU runs on both hosts"
out=$(mig_migrate a "$p" "ssh://host-b" 3 tunnelled b true postcopy b true postcopy-resume b true)
job=$(vm_reply_path "$out")
like "$job" '^/org/vmigrate/Migrate1/job/' "recovery: Migrate with postcopy-resume through a new tunnel" || diag "$out"
mig_wait_phase 90 a "$job" 'completed|failed|cancelled'
is "$(mig_jprop a "$job" Phase)" completed "recovery: the resumed post-copy completed" ||
        diag "  error: $(mig_jprop a "$job" Error)"
ok "mig_wait_state 20 b '$p' running/migrated" "recovery: the guest runs on b"
like "$(mig_guest b "$uuid" verify)" '^VERIFY OK pages=12288 ' "recovery: every page verifies on b"
ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids a $uuid)\" ]'" "recovery: no QEMU left for it on a"
is "$(tcp_listeners b)" "22 " "recovery: b listens on no new TCP port"

hosts_finish
