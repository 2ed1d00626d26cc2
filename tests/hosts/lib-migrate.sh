# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for the migration tests between test hosts (test-migrate-*.sh).
# Source lib-hosts.sh first, then this file, then call mig_setup.
# Every client is busctl run inside a host (host_exec), as root.
#
# Environment (set by meson):
#   VMTEST_KERNEL     the test guest kernel (vmigrate-test-guest.elf)
#   VMTEST_GUESTCTL   tests/guest/guestctl.py

# shellcheck source=../guest/lib-guest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../guest/lib-guest.sh"

MIG_PY=/usr/bin/python3
VM_DOMAIN_IFACE=org.vmigrate.Migrate1.Domain
VM_JOB_IFACE=org.vmigrate.Migrate1.Job
VM_ERR=org.vmigrate.Migrate1.Error
MIG_UUID_RE='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

# mig_setup [--qemu] HOST...: hosts_setup plus the prerequisites; with
# --qemu the qemu backend must be usable on every host (and MIG_KVM tells
# whether KVM is).
mig_setup() {
        local need_qemu=0 h
        if [ "${1:-}" = --qemu ]; then
                need_qemu=1
                shift
        fi
        [ -x "$MIG_PY" ] || skip_all "$MIG_PY not installed"
        [ "$need_qemu" = 1 ] && guest_require
        hosts_setup "$@"
        MIG_KVM=0
        guest_kvm_usable && MIG_KVM=1
        if [ "$need_qemu" = 1 ]; then
                for h in "$@"; do
                        guest_require_qemu_backend " on host $h" mig_bus "$h"
                done
        fi
}

# mig_idle_type KVM-WHY TCG-WHY: sets MIG_TYPE, the domain type of idle
# guests (kvm when KVM can run them, else qemu: TCG), and prints the
# "# accel:" line with the reason that applies.
mig_idle_type() {
        if [ "$MIG_KVM" = 1 ]; then
                MIG_TYPE=kvm
                guest_print_accel kvm "$1"
        else
                MIG_TYPE=qemu
                guest_print_accel tcg "$2"
        fi
}

# mig_bus HOST BUSCTL-ARGS...: busctl inside HOST, on its own bus.
mig_bus() {
        local h=$1
        shift
        host_exec "$h" busctl --no-pager "$@"
}

# mig_mgr HOST METHOD [SIG ARGS...]
mig_mgr() {
        local h=$1
        shift
        mig_bus "$h" --timeout=120 call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" "$@"
}

# mig_dom HOST PATH METHOD [SIG ARGS...]
mig_dom() {
        local h=$1 p=$2
        shift 2
        mig_bus "$h" --timeout=120 call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" "$@"
}

# mig_prop HOST PATH IFACE PROP: the value, strings without quotes.
mig_prop() {
        local v
        v=$(mig_bus "$1" get-property "$VM_BUS_NAME" "$2" "$3" "$4" 2>/dev/null) || return 1
        v=${v#* }
        v=${v#\"}
        echo "${v%\"}"
}
mig_dprop() { mig_prop "$1" "$2" "$VM_DOMAIN_IFACE" "$3"; }

# mig_displays HOST PATH: the Domain's Displays property on HOST, one line
# "TYPE URI password=BOOL migrated-to=HOST|-" per display.
mig_displays() {
        mig_bus "$1" --json=short get-property "$VM_BUS_NAME" "$2" "$VM_DOMAIN_IFACE" Displays | $MIG_PY -c '
import json, sys
for kind, uri, details in json.load(sys.stdin)["data"]:
    d = {k: v["data"] for k, v in details.items()}
    print(kind, uri, "password=%s" % str(d.get("password")).lower(), "migrated-to=%s" % d.get("migrated-to", "-"))'
}
mig_jprop() { mig_prop "$1" "$2" "$VM_JOB_IFACE" "$3"; }

# mig_state HOST PATH: State/StateReason
mig_state() {
        echo "$(mig_dprop "$1" "$2" State)/$(mig_dprop "$1" "$2" StateReason)"
}

# mig_lookup HOST NAME-OR-UUID: the domain's path, or fails.
mig_lookup() {
        local out
        out=$(mig_mgr "$1" GetDomain s "$2" 2>/dev/null) || return 1
        vm_reply_path "$out"
}

# mig_domains HOST: the sorted object paths of the host's domains.
mig_domains() {
        mig_mgr "$1" ListDomains | tr ' ' '\n' | grep '^"' | tr -d '"' | sort
}

# mig_uuid HOST PATH
mig_uuid() {
        mig_dprop "$1" "$2" UUID
}

# mig_test_xml NAME [MEMORY_MIB] [DIRTY_RATE] [UUID]: a test-backend domain.
mig_test_xml() {
        local name=$1 mem=${2:-512} rate=${3:-0} uuid=${4:-}
        cat <<EOF
<domain type="test">
  <name>$name</name>
  ${uuid:+<uuid>$uuid</uuid>}
  <description>test-dirty-rate=$rate</description>
  <memory unit="MiB">$mem</memory>
  <vcpu>1</vcpu>
</domain>
EOF
}

# mig_define HOST XML / mig_create HOST XML: the new domain's path.
mig_define() {
        local out
        out=$(mig_mgr "$1" DefineXML s "$2") || return 1
        vm_reply_path "$out"
}
mig_create() {
        local out
        out=$(mig_mgr "$1" CreateXML s "$2") || return 1
        vm_reply_path "$out"
}

# mig_dest HOST: the unix:// destination URI of HOST's bus (the path is
# valid inside every host).
mig_dest() {
        local a
        a=$(host_bus_address "$1") || return 1
        echo "unix://${a#unix:path=}"
}

# mig_dry_run HOST PATH DEST [N KEY TYPE VALUE...]: Domain.DryRun; prints
# "ok=BOOL" then one "severity id message" line per finding.
mig_dry_run() {
        local h=$1 p=$2 dest=$3
        shift 3
        mig_bus "$h" --timeout=120 --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" DryRun 'sa{sv}' \
                "$dest" "$@" | $MIG_PY -c '
import json, sys
ok, findings = json.load(sys.stdin)["data"]
print("ok=%s" % str(ok).lower())
for sev, fid, msg in findings:
    print(sev, fid, msg)'
}

# mig_migrate HOST PATH DEST [N KEY TYPE VALUE...]: Domain.Migrate with
# busctl; prints busctl's output (the reply, or the error on stderr merged).
# With no options given, passes an empty a{sv}.
mig_migrate() {
        local h=$1 p=$2 dest=$3
        shift 3
        [ $# -eq 0 ] && set -- 0
        mig_bus "$h" --timeout=180 call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" Migrate 'sa{sv}' "$dest" "$@" 2>&1
}

# mig_expect_error ERROR-NAME OUTPUT: whether busctl's output is that error.
# busctl prints only the message, so the error name is checked through
# gdbus (see mig_migrate_gdbus) where it matters.
#
# mig_migrate_gdbus HOST PATH DEST OPTIONS-GVARIANT-TEXT: Migrate through
# gdbus, which prints the error's name: "Error: GDBus.Error:NAME: message".
mig_migrate_gdbus() {
        local h=$1 p=$2 dest=$3 opts=${4:-'@a{sv} {}'}
        host_exec "$h" gdbus call --system --timeout 180 --dest "$VM_BUS_NAME" --object-path "$p" \
                --method "$VM_DOMAIN_IFACE.Migrate" "$dest" "$opts" 2>&1
}

# mig_job_phase HOST JOB: the job's phase, or "gone".
mig_job_phase() {
        mig_jprop "$1" "$2" Phase || echo gone
}

# mig_wait_phase SECONDS HOST JOB PHASE-REGEX
mig_wait_phase() {
        local secs=$1 h=$2 j=$3 re=$4
        _mig_phase_is() { [[ $(mig_job_phase "$1" "$2") =~ ^($3)$ ]]; }
        wait_until "$secs" _mig_phase_is "$h" "$j" "$re"
}

# mig_wait_state SECONDS HOST PATH STATE/REASON-REGEX
mig_wait_state() {
        local secs=$1 h=$2 p=$3 re=$4
        _mig_state_is() { [[ $(mig_state "$1" "$2") =~ ^($3)$ ]]; }
        wait_until "$secs" _mig_state_is "$h" "$p" "$re"
}

# mig_job_of HOST PATH: the domain's Job property ("/" when none).
mig_job_of() {
        mig_dprop "$1" "$2" Job
}

# mig_wait_jobs_gone HOST: no job object of kind migration-* left running.
# (Ended jobs linger a minute on purpose; they must be in a final phase.)
mig_running_jobs() {
        local h=$1 j ph
        for j in $(mig_bus "$h" tree --list "$VM_BUS_NAME" 2>/dev/null | grep "^$VM_MANAGER_PATH/job/"); do
                ph=$(mig_job_phase "$h" "$j")
                case $ph in
                completed | failed | cancelled | gone) ;;
                *) echo "$j($ph)" ;;
                esac
        done
}

# mig_jobs HOST: the job object paths on HOST.
mig_jobs() {
        mig_bus "$1" tree --list "$VM_BUS_NAME" 2>/dev/null | grep "^$VM_MANAGER_PATH/job/" | sort -V
}

# ---- the guest and its QEMU, seen inside a host

mig_rundir() { # HOST UUID -> the QEMU run dir as seen from the root namespace
        echo "$(host_path "$1" runtime)/qemu/$2"
}

# mig_qemu_pids HOST [UUID]: QEMU processes in HOST's network namespace
# (for the UUID: those whose command line names it).
mig_qemu_pids() {
        local h=$1 uuid=${2:-} ino p
        ino=$(stat -L -c %i "/run/netns/$(host_netns "$h")") || return 1
        for p in $(pgrep -f qemu-system 2>/dev/null); do
                [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$ino" ] || continue
                [ -z "$uuid" ] || tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$uuid" || continue
                echo "$p"
        done
}

# mig_listening_ports HOST: TCP listeners in 49152-49215 inside HOST.
mig_listening_ports() {
        ip netns exec "$(host_netns "$1")" ss -Hltn 2>/dev/null |
                awk '{ n = split($4, a, ":"); p = a[n]; if (p >= 49152 && p <= 49215) print $4 }'
}

# mig_guest HOST UUID CMD...: guestctl.py inside HOST on the guest's serial socket.
mig_guest() {
        local h=$1 uuid=$2
        shift 2
        host_exec "$h" "$MIG_PY" "$VMTEST_GUESTCTL" --timeout "${MIG_GUEST_TIMEOUT:-60}" \
                --socket "$HOSTS_RUNTIME_DIR/qemu/$uuid/serial0.sock" "$@"
}

# ---- watching a host's bus (vm_signals and vm_lifecycle_events of
# tests/bus/lib.sh read the files)

# mig_monitors HOST...: a busctl monitor of each HOST's bus, into
# $HOSTS_RUN/mon-HOST.json, whose path is in $mon_HOST (JSON lines);
# returns once they see messages.
mig_monitors() {
        local h
        for h in "$@"; do
                printf -v "mon_$h" '%s' "$HOSTS_RUN/mon-$h.json"
                vm_monitor_start "$HOSTS_RUN/mon-$h.json" host_exec "$h"
        done
}

# mig_require_tcg_precopy: prints QEMU's version; bails out below 9.0,
# which loses guest writes in TCG pre-copy (NOTES-machines.md): on such a
# QEMU a failed verify is QEMU's defect, not ours; CI installs 10.
mig_require_tcg_precopy() {
        local qv qmaj
        qv=$(qemu-system-x86_64 --version | sed -n -E '1s/.*version ([0-9]+)\.([0-9]+).*/\1 \2/p')
        read -r qmaj _ <<<"$qv"
        echo "# $(qemu-system-x86_64 --version | head -n1)"
        [ "${qmaj:-0}" -ge 9 ] ||
                bail_out "QEMU ${qv/ /.} < 9.0 corrupts TCG guests in pre-copy; install qemu-system-x86 from bookworm-backports"
}

# mig_writing_guest NAME: defines and starts on a the TCG test guest
# rewriting 16 MiB slowly (500 pages/s: pre-copy converges in a few
# passes, ~1-2 s) as NAME; TAP tests that it runs. Sets $p, $uuid and
# $PAGES (what a verify counts).
mig_writing_guest() {
        PAGES=4096
        p=$(mig_define a "$(guest_domain_xml "$1" qemu 'vmtest.mem=16M vmtest.rate=500' 32)") &&
                mig_dom a "$p" Start >/dev/null
        ok $? "a TCG guest writing 500 pages/s over 16 MiB runs on a"
        uuid=$(mig_uuid a "$p")
}

# mig_setup_writing [--link RATE] HOST...: mig_setup --qemu HOST... for
# the TCG test guest that writes its memory (the accelerator said, QEMU
# >= 9 required: mig_require_tcg_precopy); with --link, each host's link
# shaped to RATE (e.g. 200mbit).
mig_setup_writing() {
        local rate= h
        if [ "${1:-}" = --link ]; then
                rate=$2
                shift 2
        fi
        mig_setup --qemu "$@"
        guest_print_accel tcg "a guest that writes memory: nested KVM crawls on memory writes"
        mig_require_tcg_precopy
        [ -n "$rate" ] || return 0
        for h in "$@"; do
                link_shape "$h" --rate "$rate" || bail_out "cannot shape host $h's link"
        done
}

# mig_check_clean HOST UUID WHAT: TAP tests that HOST keeps nothing of the
# guest UUID: no QEMU, no run dir, no migration port listening, no
# running job. WHAT is put in the descriptions.
mig_check_clean() {
        local h=$1 uuid=$2 what=$3
        is "$(mig_qemu_pids "$h" "$uuid" | wc -l)" 0 "$what: no QEMU for the guest on host $h"
        ok "wait_until 10 eval '! test -e \"$(mig_rundir "$h" "$uuid")\"'" \
                "$what: no run dir $HOSTS_RUNTIME_DIR/qemu/$uuid on host $h"
        is "$(mig_listening_ports "$h" | tr '\n' ' ')" "" "$what: no migration port listening on host $h"
        is "$(mig_running_jobs "$h" | tr '\n' ' ')" "" "$what: no job still running on host $h"
}

# ms since the epoch
mig_now_ms() {
        echo $(($(date +%s%N) / 1000000))
}

# mig_job_props FILE JOB CLOCK PROP...: one line per PropertiesChanged of
# the job in a monitor file (- for standard input): "<usec> <PROP or ->...",
# the time on CLOCK (monotonic or realtime; the other one if it is missing).
mig_job_props() {
        $MIG_PY -c '
import json, sys
src, path, clock, props = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
other = "realtime" if clock == "monotonic" else "monotonic"
for line in sys.stdin if src == "-" else open(src):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("member") != "PropertiesChanged" or m.get("path") != path:
        continue
    data = m.get("payload", {}).get("data", [])
    if len(data) < 2 or data[0] != "org.vmigrate.Migrate1.Job":
        continue
    ts = m.get("timestamp-" + clock, m.get("timestamp-" + other, 0))
    print(ts, *(data[1].get(p, {}).get("data", "-") for p in props))
' "$@"
}

# mig_job_changes FILE JOB: "<monotonic usec> <Progress or -> <Phase or ->"
# per PropertiesChanged of the job in a monitor file.
mig_job_changes() {
        mig_job_props "$1" "$2" monotonic Progress Phase
}

# mig_option_support HOST BACKEND: "KEY supported|unsupported WHY" lines
# from GetBackends' migration-options.
mig_option_support() {
        mig_bus "$1" --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetBackends |
                $MIG_PY -c '
import json, sys
b = json.load(sys.stdin)["data"][0][sys.argv[1]]
opts = b["migration-options"]["data"]
for key, info in sorted(opts.items()):
    sup = info["supported"]["data"]
    why = info.get("why-not", {}).get("data", "")
    print(key, "supported" if sup else "unsupported", why)
' "$2"
}

# ---- the guest's pulse: downtime as the guest sees it (guest-pulse.py)

# mig_pulse_start SRC DST UUID OUT [PERIOD-MS]: tests/hosts/guest-pulse.py
# in the background, from the root namespace, on the pulse socket
# (serial1.sock: the guest's second <serial>) of the guest UUID on both
# hosts; its report goes to OUT. It stops by itself once 50 pulses came
# from DST after the switch-over ($MIG_PULSE_AFTER; 0: at SIGTERM), or
# after $MIG_PULSE_TIMEOUT s (120).
# Returns once it has heard 10 pulses from SRC (fails if it never does);
# its pid is in $MIG_PULSE_PID (mig_pulse_stop stops it). The guest needs
# vmtest.pulse=PERIOD-MS (default 5) and a second <serial type="pty"/>.
# MIG_PULSE_DEST_GAPS=1 adds the distribution of the gaps on DST after the
# switch (--dest-gaps).
mig_pulse_start() {
        local src=$1 dst=$2 uuid=$3 out=$4 period=${5:-5}
        rm -f "$out.ready"
        $MIG_PY "$(dirname "${BASH_SOURCE[0]}")/guest-pulse.py" \
                --socket "$src=$(mig_rundir "$src" "$uuid")/serial1.sock" \
                --socket "$dst=$(mig_rundir "$dst" "$uuid")/serial1.sock" \
                --period-ms "$period" --ready "$out.ready" --timeout "${MIG_PULSE_TIMEOUT:-120}" \
                --after "${MIG_PULSE_AFTER:-50}" ${MIG_PULSE_DEST_GAPS:+--dest-gaps} \
                >"$out" 2>&1 &
        MIG_PULSE_PID=$!
        MIG_PULSE_START=$(vm_proc_starttime "$MIG_PULSE_PID")
        wait_until 30 eval "[ -e '$out.ready' ] || ! kill -0 $MIG_PULSE_PID"
        [ -e "$out.ready" ]
}

# mig_pulse_stop: SIGTERM to the listener of mig_pulse_start while it is
# still that process (once it ended by itself, its pid may be another
# program's).
mig_pulse_stop() {
        [ -n "${MIG_PULSE_PID:-}" ] && vm_kill_if_same "$MIG_PULSE_PID" "${MIG_PULSE_START:-}"
}

# mig_pulse_wait OUT: waits for the listener of mig_pulse_start (at most
# its own timeout; not in a subshell: it must be this shell's child) and
# puts its PULSE-GAP line (or what it said instead) in $MIG_PULSE; its
# exit status (0: a switch-over seen, no pulse lost).
mig_pulse_wait() {
        local rc
        wait "$MIG_PULSE_PID"
        rc=$?
        MIG_PULSE=$(grep -m1 '^PULSE-GAP ' "$1" || tail -n 3 "$1")
        return "$rc"
}

# mig_pulse_field LINE KEY: the value of KEY=VALUE in a PULSE-GAP line.
mig_pulse_field() {
        local w
        for w in $1; do
                [[ $w == "$2="* ]] && echo "${w#*=}" && return 0
        done
        return 1
}
