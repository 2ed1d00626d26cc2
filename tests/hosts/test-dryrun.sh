#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Domain.DryRun between two test hosts: each check that must stop a
# migration is provoked for real where this machine allows it, and every dry
# run must leave the destination exactly as it was (no QEMU, no run dir, no
# migration port, no domain object, no new file in its state dir, no job on
# either host). Then a clean pass: ok=true, and the real migration succeeds.
#
#   memory      a KVM guest whose memory is just below this machine's
#               MemTotal: QEMU allocates guest RAM lazily, so it runs on a
#               idle, but memory + overhead exceeds any MemAvailable b (the
#               same machine) can have -> resources.memory naming host-b
#   disk        a raw image in a's host-private images dir -> storage.disk
#               naming host-b and the path; one in the shared dir -> none
#   cpu         both hosts share this machine's CPU, so b cannot lack a
#               feature a has: the guest requires a feature this CPU lacks
#               (QEMU under KVM warns and runs it on a without it) ->
#               cpu.features naming host-b and the feature
#   down        b's vmigrated stopped and its activation file removed
#               -> destination.reachable naming b's bus
#   bad URI     -> destination.reachable (InvalidDestination's message)
#   same host   a to a's own bus -> host.same
#   clean       ok=true (warnings allowed), also through vmigratectl
#               migrate --dry-run --json, then Migrate completes
#
# The test backend has no host checks (no migrate_check op: memory, CPU
# and disks are simulated), so every provoked case uses the qemu backend.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

mig_setup --qemu a b
mig_idle_type "idle guests, /dev/kvm usable" \
        "/dev/kvm missing: cpu.features is not checked for TCG guests"
type=$MIG_TYPE
VMIGRATECTL=$VMIGRATE_BUILD_ROOT/client/vmigratectl
[ -x "$VMIGRATECTL" ] || bail_out "$VMIGRATECTL not built"
dest_a=$(mig_dest a)
dest_b=$(mig_dest b)
idle='vmtest.mem=256K vmtest.rate=0'

# ---- helpers

# dr_call HOST PATH DEST [N KEY TYPE VALUE...] > FILE: DryRun through busctl,
# its reply as JSON ({"type":"ba(sss)","data":[ok,[[sev,id,msg]...]]}).
dr_call() {
        local h=$1 p=$2 dest=$3
        shift 3
        [ $# -eq 0 ] && set -- 0
        mig_bus "$h" --timeout=120 --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" DryRun \
                'sa{sv}' "$dest" "$@"
}

# dr_ok FILE: true or false, as the reply says.
dr_ok() {
        $MIG_PY -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["data"][0]).lower())' "$1"
}

# dr_findings FILE [SEVERITY]: "severity id message" lines.
dr_findings() {
        $MIG_PY - "$1" "${2:-}" <<'PY'
import json, sys
ok, findings = json.load(open(sys.argv[1]))["data"]
for sev, fid, msg in findings:
    if not sys.argv[2] or sev == sys.argv[2]:
        print(sev, fid, msg)
PY
}

# dr_message FILE SEVERITY ID: the message of the first such finding.
dr_message() {
        dr_findings "$1" "$2" | awk -v id="$3" '$2 == id { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }'
}

# dr_show FILE: the findings as diagnostics, for whoever reads the log.
dr_show() {
        diag "$(dr_findings "$1")"
}

# State of b that a dry run must not change: its state dir (names, sizes,
# mtimes), its run dir's names, and the job objects on both hosts.
dr_snapshot() {
        {
                echo "== b state"
                find "$(host_path b state)" -mindepth 1 -printf '%P %s %T@\n' | sort
                echo "== b runtime"
                find "$(host_path b runtime)" -mindepth 1 -printf '%P\n' | sort
                echo "== a jobs"
                dr_job_objects a
                echo "== b jobs"
                dr_job_objects b
        }
}

# dr_job_objects HOST: job objects the ObjectManager lists.
dr_job_objects() {
        mig_bus "$1" --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" org.freedesktop.DBus.ObjectManager \
                GetManagedObjects | $MIG_PY -c '
import json, sys
for path in sorted(json.load(sys.stdin)["data"][0]):
    if path.startswith("/org/vmigrate/Migrate1/job/"):
        print(path)
'
}

# dr_check_untouched WHAT UUID BEFORE-FILE A-PATH A-STATE: nothing of the
# guest on b, nothing new on b, no job anywhere, the guest as it was on a
# (A-STATE: State/StateReason before the dry run).
dr_check_untouched() {
        local what=$1 uuid=$2 before=$3 pa=$4 state_a=$5
        is "$(mig_qemu_pids b "$uuid" | wc -l)" 0 "$what: no QEMU for the guest on host b"
        ok "[ ! -e '$(mig_rundir b "$uuid")' ]" "$what: no $HOSTS_RUNTIME_DIR/qemu/$uuid on host b"
        is "$(mig_listening_ports b | tr '\n' ' ')" "" "$what: nothing listens on 49152-49215 on host b"
        ok "! mig_lookup b '$uuid' >/dev/null" "$what: host b has no domain object for the guest"
        is "$(dr_snapshot | diff "$before" - | tr '\n' ' ')" "" \
                "$what: b's state and run dirs unchanged, no job object on either host"
        is "$(mig_state a "$pa")" "$state_a" "$what: the guest is still $state_a on host a"
}

# dr_case NAME: a fresh snapshot file for the case.
dr_before() {
        local f=$HOSTS_RUN/before-$1.txt
        dr_snapshot >"$f"
        echo "$f"
}

before0=$(dr_before setup)
is "$(sed -n '/== a jobs/,$p' "$before0" | grep -c /job/)" 0 "no job object on either host to begin with"

# ---- memory: more than b can ever have available

total_mib=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
# overhead = max(64 MiB, memory / 64) > total / 256: memory + overhead >
# MemTotal >= MemAvailable whatever else runs on this machine meanwhile.
margin=$((total_mib / 256 > 32 ? total_mib / 256 : 32))
big_mib=$((total_mib - margin))
diag "memory: MemTotal ${total_mib} MiB, guest ${big_mib} MiB (runs on a: QEMU allocates lazily, the guest touches 256 KiB)"
pm=$(mig_create a "$(guest_domain_xml dr-mem "$type" "$idle" "$big_mib")")
ok $? "dr-mem (${big_mib} MiB) created and running on host a"
uuid_m=$(mig_uuid a "$pm")
st_m=$(mig_state a "$pm")
like "$st_m" '^running/' "... its state on a: $st_m"
before=$(dr_before mem)
t0=$(mig_now_ms)
dr_call a "$pm" "$dest_b" >"$HOSTS_RUN/dr-mem.json"
ok $? "DryRun dr-mem a -> b answers ($(($(mig_now_ms) - t0)) ms)"
dr_show "$HOSTS_RUN/dr-mem.json"
is "$(dr_ok "$HOSTS_RUN/dr-mem.json")" false "... ok=false"
msg=$(dr_message "$HOSTS_RUN/dr-mem.json" error resources.memory)
like "$msg" '^host-b: .* of memory available, the domain needs ' "... error resources.memory from host-b"
like "$msg" "needs $((big_mib / 1024))\.[0-9] GiB" "... naming the guest's memory"
is "$(dr_message "$HOSTS_RUN/dr-mem.json" info dry-run.best-effort | cut -d: -f1)" host-a \
        "... and the info dry-run.best-effort from host-a"
dr_check_untouched memory "$uuid_m" "$before" "$pm" "$st_m"
mig_dom a "$pm" Destroy >/dev/null
ok $? "dr-mem destroyed on host a"

# ---- a disk only the source has

host_exec a qemu-img create -q -f raw /srv/vmigrate/images/dr-private.raw 16M
ok $? "a raw image in host a's private /srv/vmigrate/images"
ok "[ ! -e '$(host_path b images)/dr-private.raw' ]" "... which host b does not see"
disk_xml() { # NAME FILE
        guest_domain_xml "$1" "$type" "$idle" 64 | sed "s|<devices>|<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$2'/><target dev='vda' bus='virtio'/></disk>|"
}
pd=$(mig_create a "$(disk_xml dr-disk /srv/vmigrate/images/dr-private.raw)")
ok $? "dr-disk (vda on the private image) running on host a"
uuid_d=$(mig_uuid a "$pd")
st_d=$(mig_state a "$pd")
before=$(dr_before disk)
dr_call a "$pd" "$dest_b" >"$HOSTS_RUN/dr-disk.json"
ok $? "DryRun dr-disk a -> b answers"
dr_show "$HOSTS_RUN/dr-disk.json"
is "$(dr_ok "$HOSTS_RUN/dr-disk.json")" false "... ok=false"
msg=$(dr_message "$HOSTS_RUN/dr-disk.json" error storage.disk)
like "$msg" '^host-b: disk /srv/vmigrate/images/dr-private\.raw \(vda\) is missing \(host-a has it' \
        "... error storage.disk from host-b naming the path, the target and host-a"
dr_check_untouched "disk on a only" "$uuid_d" "$before" "$pd" "$st_d"

# The same through vmigratectl: a table, a verdict, exit status 1.
out=$(host_exec a "$VMIGRATECTL" migrate dr-disk "$dest_b" --dry-run 2>&1)
rc=$?
is "$rc" 1 "vmigratectl migrate --dry-run exits 1 when the check finds errors"
like "$(head -n1 <<<"$out")" '^SEVERITY +CHECK +MESSAGE$' "... prints the table header"
like "$out" $'\nerror +storage\.disk +host-b: disk /srv/vmigrate/images/dr-private\.raw \\(vda\\) is missing' \
        "... a row for storage.disk, not wrapped (stdout is not a terminal)"
like "$(tail -n1 <<<"$out")" "^Migrating domain 'dr-disk' to .* would fail: 1 error\.$" "... and the verdict"
out=$(host_exec a "$VMIGRATECTL" --quiet migrate dr-disk "$dest_b" --dry-run 2>&1)
is "$(grep -c -v -E '^(SEVERITY|error) ' <<<"$out")" 0 "... --quiet prints only the header and the errors"
dr_check_untouched "vmigratectl --dry-run" "$uuid_d" "$before" "$pd" "$st_d"
mig_dom a "$pd" Destroy >/dev/null
ok $? "dr-disk destroyed on host a"

# ---- a feature this CPU lacks

# QEMU's names; /proc/cpuinfo spells them with '_'. Candidates newer than
# most CPUs this runs on.
feature=
for f in amx-tile amx-int8 amx-fp16 avx512-fp16 avx512-vp2intersect avx10; do
        grep -q -w "${f//-/_}" <(grep -m1 '^flags' /proc/cpuinfo) || { feature=$f; break; }
done
if [ "$type" != kvm ]; then
        ok 0 "# SKIP cpu.features: checked for KVM guests only (TCG emulates the CPU), and /dev/kvm is missing"
elif [ -z "$feature" ]; then
        ok 0 "# SKIP cpu.features: this CPU has every candidate feature"
else
        diag "cpu: both hosts are this machine, so b's CPU cannot lack a feature a has; the guest requires"
        diag "'$feature', which this CPU lacks (QEMU under KVM warns and runs the guest on a without it)"
        cpu_xml=$(guest_domain_xml dr-cpu kvm "$idle" 64 |
                sed "s|<vcpu>1</vcpu>|<vcpu>1</vcpu><cpu mode='custom'><model>kvm64</model><feature policy='require' name='$feature'/></cpu>|")
        pc=$(mig_create a "$cpu_xml")
        ok $? "dr-cpu (kvm64 + required $feature) running on host a"
        uuid_c=$(mig_uuid a "$pc")
        st_c=$(mig_state a "$pc")
        before=$(dr_before cpu)
        dr_call a "$pc" "$dest_b" >"$HOSTS_RUN/dr-cpu.json"
        ok $? "DryRun dr-cpu a -> b answers"
        dr_show "$HOSTS_RUN/dr-cpu.json"
        is "$(dr_ok "$HOSTS_RUN/dr-cpu.json")" false "... ok=false"
        like "$(dr_message "$HOSTS_RUN/dr-cpu.json" error cpu.features)" \
                "^host-b: this host's CPU lacks $feature, required by the domain's <cpu>" \
                "... error cpu.features from host-b naming $feature"
        dr_check_untouched "cpu feature" "$uuid_c" "$before" "$pc" "$st_c"
        mig_dom a "$pc" Destroy >/dev/null
        ok $? "dr-cpu destroyed on host a"
fi

# ---- the guest of the clean pass, on shared storage

host_exec a qemu-img create -q -f raw /srv/vmigrate/shared/dr-shared.raw 16M
ok $? "a raw image in the shared /srv/vmigrate/shared"
ok "[ -e '$(host_path b shared)/dr-shared.raw' ]" "... which host b sees too"
pg=$(mig_define a "$(disk_xml dr-clean /srv/vmigrate/shared/dr-shared.raw)")
ok $? "dr-clean (vda on the shared image) defined on host a"
mig_dom a "$pg" Start >/dev/null
ok $? "... and started"
uuid_g=$(mig_uuid a "$pg")
ok "mig_wait_state 20 a '$pg' 'running/.*'" "... and runs"
st_g=$(mig_state a "$pg")

# ---- bad URIs

n=0
for uri in "ftp://host-b" "unix://relative/socket" "ssh://-oProxyCommand=x"; do
        n=$((n + 1))
        before=$(dr_before "uri$n")
        dr_call a "$pg" "$uri" >"$HOSTS_RUN/dr-uri$n.json"
        ok $? "DryRun to '$uri' answers (findings, not an error)"
        dr_show "$HOSTS_RUN/dr-uri$n.json"
        is "$(dr_ok "$HOSTS_RUN/dr-uri$n.json")" false "... ok=false"
        like "$(dr_message "$HOSTS_RUN/dr-uri$n.json" error destination.reachable)" '^host-a: .' \
                "... error destination.reachable from host-a"
        dr_check_untouched "bad URI '$uri'" "$uuid_g" "$before" "$pg" "$st_g"
done

# ---- same host

before=$(dr_before same)
dr_call a "$pg" "$dest_a" >"$HOSTS_RUN/dr-same.json"
ok $? "DryRun a -> a's own bus answers"
dr_show "$HOSTS_RUN/dr-same.json"
is "$(dr_ok "$HOSTS_RUN/dr-same.json")" false "... ok=false"
like "$(dr_message "$HOSTS_RUN/dr-same.json" error host.same)" "^host-a: $dest_a is this host" \
        "... error host.same from host-a naming the destination"
dr_check_untouched "same host" "$uuid_g" "$before" "$pg" "$st_g"
is "$(mig_qemu_pids a "$uuid_g" | wc -l)" 1 "same host: still exactly one QEMU for dr-clean on a"

# ---- destination daemon down, and not activatable

svc=$(host_path b dir)/services/org.vmigrate.Migrate1.service
[ -f "$svc" ] || bail_out "$svc: the fixture's activation file moved"
mv "$svc" "$svc.off"
mig_bus b call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
ok $? "host b's bus no longer knows how to activate vmigrated"
pid_b=$(host_daemon_pid b)
kill -TERM "$pid_b"
ok "wait_until 20 eval '! host_daemon_pid b >/dev/null'" "host b's vmigrated (pid $pid_b) stopped"
before=$(find "$(host_path b state)" -mindepth 1 -printf '%P %s %T@\n' | sort)
t0=$(mig_now_ms)
dr_call a "$pg" "$dest_b" >"$HOSTS_RUN/dr-down.json"
ok $? "DryRun a -> b with b's vmigrated down answers ($(($(mig_now_ms) - t0)) ms)"
dr_show "$HOSTS_RUN/dr-down.json"
is "$(dr_ok "$HOSTS_RUN/dr-down.json")" false "... ok=false"
msg=$(dr_message "$HOSTS_RUN/dr-down.json" error destination.reachable)
like "$msg" '^host-a: ' "... error destination.reachable from host-a"
like "$msg" "${dest_b#unix://}" "... naming b's bus"
ok "! host_daemon_pid b >/dev/null" "... and b's vmigrated was not started by it"
is "$(mig_qemu_pids b | wc -l)" 0 "daemon down: no QEMU on host b"
is "$(mig_listening_ports b | tr '\n' ' ')" "" "daemon down: nothing listens on 49152-49215 on host b"
is "$(find "$(host_path b state)" -mindepth 1 -printf '%P %s %T@\n' | sort | diff <(echo "$before") - | tr '\n' ' ')" "" \
        "daemon down: b's state dir unchanged"
is "$(dr_job_objects a | tr '\n' ' ')" "" "daemon down: no job object on host a"
mv "$svc.off" "$svc"
mig_bus b call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
ok $? "host b's activation file restored"
ok "wait_until 20 eval 'mig_mgr b ListDomains >/dev/null 2>&1'" "host b's vmigrated is activated again"

# ---- clean pass

before=$(dr_before clean)
dr_call a "$pg" "$dest_b" >"$HOSTS_RUN/dr-clean.json"
ok $? "DryRun dr-clean a -> b answers"
dr_show "$HOSTS_RUN/dr-clean.json"
is "$(dr_ok "$HOSTS_RUN/dr-clean.json")" true "... ok=true"
is "$(dr_findings "$HOSTS_RUN/dr-clean.json" error)" "" "... with no error finding"
unlike "$(dr_findings "$HOSTS_RUN/dr-clean.json")" 'storage\.disk' "... and no storage.disk finding for the shared disk"
dr_check_untouched "clean pass" "$uuid_g" "$before" "$pg" "$st_g"

json=$(host_exec a "$VMIGRATECTL" --json migrate dr-clean "$dest_b" --dry-run)
is "$?" 0 "vmigratectl --json migrate --dry-run exits 0 when it would succeed"
is "$($MIG_PY -c '
import json, sys
d = json.loads(sys.argv[1])
assert set(d) == {"ok", "findings"}, d
assert all(set(f) == {"severity", "check", "message"} for f in d["findings"]), d
errors = [f for f in d["findings"] if f["severity"] == "error"]
best = [f for f in d["findings"] if f["check"] == "dry-run.best-effort"]
print(d["ok"], len(errors), len(best), best[0]["message"].split(":")[0] if best else "-")
' "$json")" "True 0 1 host-a" "... {ok: true, findings: [...]}: no error, dry-run.best-effort from host-a"
dr_check_untouched "vmigratectl --json --dry-run" "$uuid_g" "$before" "$pg" "$st_g"

t0=$(mig_now_ms)
out=$(mig_migrate a "$pg" "$dest_b")
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "the real Migrate a -> b answers with a job"
job=$(vm_reply_path "$out")
ok "mig_wait_phase 60 a '$job' 'completed|failed|cancelled'" "... the job ends"
is "$(mig_jprop a "$job" Phase)" completed "... completed ($(($(mig_now_ms) - t0)) ms)"
is "$(mig_jprop a "$job" Error)" "" "... with no error"
pgb=$(mig_lookup b dr-clean)
is "$(mig_state b "$pgb")" running/migrated "dr-clean runs on host b"
is "$(mig_qemu_pids b "$uuid_g" | wc -l)" 1 "... one QEMU for it there"
like "$(mig_guest b "$uuid_g" status)" '^STATUS pages=64 ' "... and the guest answers on its serial port"
ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids a $uuid_g)\" ]'" "... no QEMU left for it on a"
# The checks above can see a change: the real migration made one.
changes=$(dr_snapshot | diff "$before" -)
like "$changes" '> [^ ]*domains/[^ ]*' "positive control: after the real migration b's state dir holds the domain"
like "$changes" '> /org/vmigrate/Migrate1/job/' "... and the ObjectManager lists its job objects"

hosts_finish
