#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Must-not-fail features on the destination: bridge interfaces (a tap the
# daemon creates and attaches) and admin hooks (--hooks-dir). A required
# feature that fails fails the migration, what was set up is undone in
# reverse order and the guest stays running on the source; one that is not
# required gives a warning on both hosts' jobs (Warnings, and "warnings" in
# the statistics) and the migration succeeds.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

# Each host's hooks in <host dir>/hooks.d; a short timeout for the hang case.
HOSTS_DAEMON_ARGS="--hooks-dir=@HOSTDIR@/hooks.d --hook-timeout=3"
mig_setup --qemu a b
mig_idle_type "idle guests, /dev/kvm usable" "/dev/kvm missing"
type=$MIG_TYPE
dest_b=$(mig_dest b)
hooks_b=$(host_path b dir)/hooks.d
hooklog_b=$(host_path b dir)/hooks.log
mkdir -p "$hooks_b" && chmod 0755 "$hooks_b"
: >"$hooklog_b"

host_exec a ip link add br0 type bridge && host_exec a ip link set br0 up
ok $? "bridge br0 on host a (none on host b)"

NS=https://vmigrate.org/xmlns/migration/1
# guest_xml NAME MAC REQUIRES: the idle test guest with a bridge interface
# on br0 (MAC empty: none) and <vmigrate:require> elements (may be empty).
guest_xml() {
        local name=$1 mac=$2 requires=$3 iface='' meta=''
        [ -n "$mac" ] && iface="<interface type='bridge'><source bridge='br0'/><mac address='$mac'/><model type='virtio'/></interface>"
        [ -n "$requires" ] && meta="<metadata><vmigrate:migration xmlns:vmigrate='$NS'>$requires</vmigrate:migration></metadata>"
        guest_domain_xml "$name" "$type" 'vmtest.mem=256K vmtest.rate=0' 64 |
                sed -e "s|</name>|</name>$meta|" -e "s|<devices>|<devices>$iface|"
}
# tap_of HOST UUID: the guest's tap devices on HOST ("name master" lines).
tap_of() {
        ip -n "$(host_netns "$1")" -o link show 2>/dev/null |
                sed -n -E "s/^[0-9]+: (vm${2:0:8}-[0-9]+)[:@].*/\1/p" | while read -r t; do
                echo "$t $(ip -n "$(host_netns "$1")" -o link show "$t" | sed -n -E 's/.* master ([^ ]+) .*/\1/p')"
        done
}
# start_on_a NAME MAC REQUIRES: defines and starts it on a; prints path.
start_on_a() {
        local p
        p=$(mig_define a "$(guest_xml "$@")") || return 1
        mig_dom a "$p" Start >/dev/null || return 1
        echo "$p"
}

# --- 1. a required bridge missing on the destination
p1=$(start_on_a req-br 52:54:00:fe:00:01 "<vmigrate:require interface='52:54:00:fe:00:01'/>")
ok $? "req-br (requires its interface on br0) runs on a"
u1=$(mig_uuid a "$p1")
is "$(tap_of a "$u1")" "vm${u1:0:8}-0 br0" "its tap vm${u1:0:8}-0 is attached to br0 on a"
like "$(mig_guest a "$u1" status)" '^STATUS ' "the guest answers on a"
out=$(mig_migrate a "$p1" "$dest_b")
like "$out" 'host-b: bridge br0 is missing, and interface 52:54:00:fe:00:01 requires it' \
        "Migrate fails naming host-b, the bridge and the interface"
is "$(mig_state a "$p1")" running/booted "req-br still runs on a"
mig_check_clean b "$u1" "required bridge missing"
is "$(tap_of b "$u1")" "" "no tap of req-br on b"

# A normal Start with the bridge missing is an error naming it.
p1b=$(mig_define b "$(guest_xml start-br 52:54:00:fe:00:09 '')")
out=$(mig_dom b "$p1b" Start 2>&1)
like "$out" 'bridge br0 is missing' "Start on b without br0 fails naming the bridge"
is "$(mig_state b "$p1b")" shutoff/unknown "... and the domain stays shut off" ||
        diag "state: $(mig_state b "$p1b")"

# --- 2. the same interface, not required: it runs unconnected, with a warning
p2=$(start_on_a opt-br 52:54:00:fe:00:02 "")
ok $? "opt-br (interface on br0, not required) runs on a"
u2=$(mig_uuid a "$p2")
out=$(mig_migrate a "$p2" "$dest_b")
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "Migrate answers with a job"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "the job ends"
is "$(mig_jprop a "$job" Phase)" completed "... completed"
like "$(mig_jprop a "$job" Warnings)" 'host-b: bridge br0 is missing: interface 52:54:00:fe:00:02 runs unconnected' \
        "the source's job has the destination's warning"
job_b=$(mig_jobs b | tail -n1)
like "$(mig_jprop b "$job_b" Warnings)" 'host-b: bridge br0 is missing' "the destination's job has it too"
like "$(mig_dom a "$p2" GetJobStats)" '"warnings" as 1 "host-b: bridge br0 is missing' \
        "the statistics (JobCompleted, GetJobStats) carry it under 'warnings'"
pb=$(mig_lookup b opt-br)
is "$(mig_state b "$pb")" running/migrated "opt-br runs on b"
is "$(tap_of b "$u2")" "vm${u2:0:8}-0 " "its tap on b is attached to nothing"
like "$(mig_guest b "$u2" status)" '^STATUS ' "the guest answers on b"
mig_dom b "$pb" Destroy >/dev/null
ok "wait_until 10 eval '[ -z \"\$(tap_of b $u2)\" ]'" "destroyed on b: its tap is gone with its QEMU"

# --- 3. a required hook failing: the migration fails, hooks undone in reverse
cat >"$hooks_b/10-log" <<EOF
#!/bin/sh
echo "10-log \$1 \$2 \$3 \$VMIGRATE_PHASE" >>"$hooklog_b"
EOF
cat >"$hooks_b/20-check" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "checking storage"
echo "storage for $1 is not mounted" >&2
exit 1
EOF
chmod 0755 "$hooks_b/10-log" "$hooks_b/20-check"
p3=$(start_on_a req-hook "" "<vmigrate:require hook='20-check'/>")
ok $? "req-hook (requires hook 20-check) runs on a"
u3=$(mig_uuid a "$p3")
out=$(mig_migrate a "$p3" "$dest_b")
like "$out" "host-b: required hook '20-check' \\(migrate prepare\\) exited with status 1: checking storage; storage for req-hook is not mounted" \
        "Migrate fails with the hook's status and output"
is "$(mig_state a "$p3")" running/booted "req-hook still runs on a"
mig_check_clean b "$u3" "required hook failed"
ok "wait_until 10 grep -q abort '$hooklog_b'" "the hooks were undone"
is "$(tr '\n' '|' <"$hooklog_b")" "10-log req-hook migrate prepare prepare|10-log req-hook migrate abort abort|" \
        "10-log ran at prepare, then at abort (argv and VMIGRATE_PHASE)"

# --- 4. the same hook, not required: success with a warning
: >"$hooklog_b"
p4=$(start_on_a opt-hook "" "")
u4=$(mig_uuid a "$p4")
out=$(mig_migrate a "$p4" "$dest_b")
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "the migration of opt-hook ends"
is "$(mig_jprop a "$job" Phase)" completed "... completed although 20-check failed"
like "$(mig_jprop a "$job" Warnings)" "host-b: hook .*20-check.* [(]migrate prepare[)] exited with status 1: checking storage; storage for opt-hook is not mounted" \
        "the source's job warns about it (prepare)"
like "$(mig_jprop a "$job" Warnings)" "hook .*20-check.* [(]migrate finish[)]" "... and about its finish run"
is "$(tr '\n' '|' <"$hooklog_b")" "10-log opt-hook migrate prepare prepare|10-log opt-hook migrate finish finish|" \
        "10-log ran at prepare and finish"
is "$(mig_state b "$(mig_lookup b opt-hook)")" running/migrated "opt-hook runs on b"
mig_dom b "$(mig_lookup b opt-hook)" Destroy >/dev/null

# --- 5. a required hook that hangs: killed after --hook-timeout
rm -f "$hooks_b/20-check"
cat >"$hooks_b/30-hang" <<'EOF'
#!/bin/sh
echo "waiting for the SAN"
exec sleep 297.25
EOF
chmod 0755 "$hooks_b/30-hang"
p5=$(start_on_a hang-hook "" "<vmigrate:require hook='30-hang'/>")
u5=$(mig_uuid a "$p5")
t0=$(mig_now_ms)
out=$(mig_migrate a "$p5" "$dest_b")
t=$(($(mig_now_ms) - t0))
like "$out" "required hook '30-hang' \\(migrate prepare\\) did not finish within 3 s and was killed: waiting for the SAN" \
        "Migrate fails: the hanging hook was killed after the timeout (${t} ms)"
ok "[ $t -lt 20000 ]" "... within the timeout, not the hook's 300 s"
is "$(mig_state a "$p5")" running/booted "hang-hook still runs on a"
mig_check_clean b "$u5" "hook timed out"
# Its "abort" run hangs as well and is killed in turn; the abort runs go
# in reverse order, so 10-log's comes after it. (The hook's sleep has an
# odd length so that another program's 'sleep 300' on the machine does not
# count: one, in a shell of the session running CI, made this fail.)
ok "wait_until 30 eval '! pgrep -f \"sleep 297.25\" >/dev/null'" "no hook process is left" ||
        diag "left: $(ps -o pid,ppid,pgid,sid,etimes,args -C sleep 2>/dev/null | grep 'sleep 297.25'); b's log: $(grep -h '30-hang' "$(host_path b log)" | tail -n 5)"
ok "wait_until 10 grep -q 'hang-hook migrate abort' '$hooklog_b'" "10-log ran at abort after the killed hook"

# --- DryRun reports the hooks without running them
: >"$hooklog_b"
out=$(mig_bus a call "$VM_BUS_NAME" "$p5" "$VM_DOMAIN_IFACE" DryRun 'sa{sv}' "$dest_b" 0 2>&1)
like "$out" 'hooks.present" "host-b: hooks in .*hooks.d run at prepare and finish: 10-log, 30-hang \(required\)' \
        "DryRun lists the hooks that would run (hooks.present)"
is "$(cat "$hooklog_b")" "" "... without running any"

for p in "$p1" "$p3" "$p5"; do mig_dom a "$p" Destroy >/dev/null; done
hosts_check_daemon_logs
hosts_finish
