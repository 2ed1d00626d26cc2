#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A guest with an emulated TPM (<tpm model='tpm-crb'><backend
# type='emulator'/>): the real Linux test guest (tests/guest-linux) extends
# PCR 16 through /dev/tpm0 with raw TPM 2.0 commands, and reads it again
# after each migration. The PCR's value is TPM state only the swtpm holds,
# so finding it on the other host proves the state moved with the guest.
#
#   a        the guest starts with an swtpm on a's state dir; PCR 16 reads
#            zeros (its reset value), then the extended value
#   restart  vmigrated on a restarts: the same swtpm runs and answers
#   fail     b's vmigrated runs without swtpm: DryRun says host.swtpm,
#            Migrate fails, the guest runs on a with its TPM, b has no
#            swtpm and no state dir
#   a -> b   the PCR reads the same on b; b runs an swtpm, a none
#   b -> a   after one more extend on b, back onto a's old (stale) state
#            dir: the PCR is b's, not the stale one
#   end      Destroy leaves no swtpm; Undefine removes a's state dir
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

: "${VMTEST_LINUX_BUILD:?VMTEST_LINUX_BUILD must be set}"
: "${VMTEST_LINUX_DIR:?VMTEST_LINUX_DIR must be set}"
command -v swtpm >/dev/null || skip_all "swtpm not installed (package swtpm)"

mig_setup --qemu a b
guest_print_accel tcg "a Linux kernel turns on paging, and nested KVM here resets such a guest"
mig_require_tcg_precopy
dest_a=$(mig_dest a)
dest_b=$(mig_dest b)

out=$("$VMTEST_LINUX_BUILD" "$VMTEST_LINUX_DIR" 2>"$HOSTS_RUN/build.err")
rc=$?
case $rc in
0) ;;
77) skip_all "the Linux guest cannot be built here: $(sed -n 's/^SKIP: //p' <<<"$out")" ;;
*) bail_out "tests/guest-linux/build.sh failed ($rc): $(tail -n 5 "$HOSTS_RUN/build.err")" ;;
esac

xml="<domain type='qemu'>
  <name>tpm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type machine='q35'>hvm</type>
    <kernel>$VMTEST_LINUX_DIR/vmlinuz</kernel>
    <initrd>$VMTEST_LINUX_DIR/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1</cmdline>
  </os>
  <devices>
    <serial type='pty'/>
    <tpm model='tpm-crb'>
      <backend type='emulator'/>
    </tpm>
  </devices>
</domain>"

# swtpm_pids HOST: the guest's swtpm processes in HOST's network namespace.
swtpm_pids() {
        local ino p
        ino=$(stat -L -c %i "/run/netns/$(host_netns "$1")") || return 1
        for p in $(pgrep -x swtpm 2>/dev/null); do
                [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$ino" ] || continue
                tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$uuid" || continue
                echo "$p"
        done
}
state_dir() { echo "$(host_path "$1" state)/qemu/swtpm/$uuid"; }

# TPM 2.0 commands, in hex. PCR_Read of PCR 16 in the SHA-256 bank;
# PCR_Extend of PCR 16 (a debug PCR, which only a reset clears) with
# SHA-256 digest D, authorised by the empty password (TPM_RS_PW).
PCR_READ=8001000000140000017e00000001000b03000001
pcr_extend_cmd() { echo "80020000004100000182000000100000000940000009000000000000000001000b$1"; }
ZERO=$(printf '0%.0s' {1..64})

lg() { mig_guest "$1" "$uuid" raw "$2"; }
# pcr16 HOST: PCR 16 (64 hex digits) as the guest on HOST reads it, or its answer.
pcr16() {
        local a rsp
        a=$(lg "$1" "tpm $PCR_READ")
        rsp=${a#TPM OK rsp=}
        # header (10 bytes, rc 0), update counter, selection, 1 digest of 32 bytes
        if [[ $a == "TPM OK rsp="* && ${rsp:12:8} == 00000000 && ${#rsp} -eq 124 ]]; then
                echo "${rsp: -64}"
        else
                echo "bad answer: $a"
        fi
}
# extend HOST HEX-DIGEST: PCR 16 extended on HOST; prints the TPM's rc.
extend() {
        local a
        a=$(lg "$1" "tpm $(pcr_extend_cmd "$2")")
        [[ $a == "TPM OK rsp="* ]] || {
                echo "bad answer: $a"
                return
        }
        a=${a#TPM OK rsp=}
        echo "${a:12:8}"
}
# expected OLD DIGEST: SHA-256(OLD || DIGEST), what PCR_Extend makes.
expected() {
        $MIG_PY -c 'import hashlib, sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1] + sys.argv[2])).hexdigest())' "$1" "$2"
}

# --- a: the guest starts with its TPM
p=$(mig_define a "$xml") && mig_dom a "$p" Start >/dev/null
ok $? "a guest with <tpm model='tpm-crb'> starts on a" || bail_out "cannot start the guest: $(tail -n 5 "$(host_path a runtime)"/qemu/log/*.log 2>/dev/null)"
uuid=$(mig_uuid a "$p")
is "$(swtpm_pids a | wc -l)" 1 "one swtpm runs for it on a"
swtpm_a=$(swtpm_pids a)
ok "[ -d '$(state_dir a)' ] && [ \"\$(stat -c %a '$(state_dir a)')\" = 700 ]" "its state dir $(state_dir a) exists, mode 0700"
like "$(tr '\0' ' ' <"/proc/$swtpm_a/cmdline")" "--terminate" "swtpm runs with --terminate (it ends with its QEMU's connection)"
like "$(tr '\0' ' ' <"/proc/$(mig_qemu_pids a "$uuid")/cmdline")" "-device tpm-crb,tpmdev=tpm0" "QEMU has -tpmdev emulator and a tpm-crb device"
serial_log="$(host_path a runtime)/qemu/log/$uuid-serial0.log"
wait_until 120 grep -q '^LINUX READY' "$serial_log"
ok $? "the Linux guest boots" || bail_out "no banner; the serial log ends with: $(tail -n 20 "$serial_log" 2>/dev/null)"

pcr0=$(pcr16 a)
is "$pcr0" "$ZERO" "PCR 16 reads its reset value (zeros) through /dev/tpm0 on a"
d1=$(printf 'vmigrate tpm one' | sha256sum | cut -d' ' -f1)
is "$(extend a "$d1")" 00000000 "PCR_Extend of PCR 16 succeeds on a"
want1=$(expected "$ZERO" "$d1")
pcr1=$(pcr16 a)
is "$pcr1" "$want1" "PCR 16 now reads SHA-256(zeros || digest), not zeros"

# --- restart: vmigrated on a restarts; the swtpm is neither killed nor lost
pid=$(host_daemon_pid a)
kill -TERM "$pid" && wait_until 20 eval "! kill -0 $pid 2>/dev/null"
ok $? "vmigrated on a stops (SIGTERM) with the guest running"
is "$(mig_state a "$p")" running/booted "a's vmigrated is activated again and finds the guest running"
is "$(swtpm_pids a)" "$swtpm_a" "... with the same swtpm (pid $swtpm_a)"
is "$(pcr16 a)" "$want1" "... which still answers: PCR 16 unchanged"
ok "grep -q 're-attached to swtpm pid $swtpm_a' '$(host_path a log)'" "a's log says it re-attached to the swtpm"

# --- fail: b has no swtpm
service_b=$(host_path b dir)/services/org.vmigrate.Migrate1.service
# restart_b: b's vmigrated activated again with the service file as it is now.
restart_b() {
        local pid
        busctl --address="$(host_bus_address b)" call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus ReloadConfig >/dev/null || return 1
        pid=$(host_daemon_pid b) || return 1
        kill -TERM "$pid" || return 1
        wait_until 20 eval "! kill -0 $pid 2>/dev/null"
}
cp "$service_b" "$HOSTS_RUN/service-b.orig"
sed -i -E 's|^Exec=|Exec=/usr/bin/env VMIGRATE_SWTPM=swtpm-not-installed |' "$service_b"
restart_b
ok $? "b's vmigrated restarts with no swtpm to find (VMIGRATE_SWTPM names a missing program)"
out=$(mig_dry_run a "$p" "$dest_b" 0)
like "$out" $'\nerror host.swtpm host-b: domain \'tpm\' has a TPM .*swtpm-not-installed not found.*package swtpm' \
        "DryRun a -> b: error host.swtpm from host-b, saying what to install" || diag "$out"
out=$(mig_migrate a "$p" "$dest_b")
like "$out" "swtpm-not-installed not found" "Migrate a -> b fails, naming the missing swtpm" || diag "$out"
like "$(mig_state a "$p")" "^running/" "... the guest runs on a"
is "$(swtpm_pids a)" "$swtpm_a" "... with its swtpm"
is "$(pcr16 a)" "$want1" "... and its TPM: PCR 16 unchanged"
is "$(swtpm_pids b | wc -l)" 0 "... no swtpm on b"
ok "[ ! -e '$(state_dir b)' ]" "... and no TPM state dir on b"
mig_check_clean b "$uuid" "after the failed migration"
cp "$HOSTS_RUN/service-b.orig" "$service_b"
restart_b
ok $? "b's vmigrated restarts with swtpm"

# --- a -> b
out=$(mig_migrate a "$p" "$dest_b" 1 wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "a -> b: the live migration completes" || diag "$out"
is "$(mig_state b "$p")" running/migrated "a -> b: the guest runs on b"
is "$(swtpm_pids b | wc -l)" 1 "a -> b: an swtpm runs for it on b"
ok "wait_until 10 eval '[ -z \"\$(swtpm_pids a)\" ]'" "a -> b: a's swtpm is gone"
ok "wait_until 10 eval '[ -z \"\$(mig_qemu_pids a $uuid)\" ]'" "a -> b: a's QEMU is gone"
ok "[ -d '$(state_dir b)' ]" "a -> b: b has its state dir"
is "$(pcr16 b)" "$want1" "a -> b: PCR 16 reads on b what the guest extended on a"
ok "[ -d '$(state_dir a)' ]" "a -> b: a's state dir stays (stale) while the domain is defined there"

# --- b -> a, onto a's stale state dir
d2=$(printf 'vmigrate tpm two' | sha256sum | cut -d' ' -f1)
is "$(extend b "$d2")" 00000000 "PCR_Extend of PCR 16 again, on b"
want2=$(expected "$want1" "$d2")
is "$(pcr16 b)" "$want2" "PCR 16 on b has both extends"
out=$(mig_migrate b "$p" "$dest_a" 1 wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "b -> a: the live migration completes" || diag "$out"
is "$(mig_state a "$p")" running/migrated "b -> a: the guest runs on a"
is "$(pcr16 a)" "$want2" "b -> a: PCR 16 is b's, not what a's stale state dir had"
ok "wait_until 10 eval '[ -z \"\$(swtpm_pids b)\" ]'" "b -> a: b's swtpm is gone"
is "$(swtpm_pids a | wc -l)" 1 "b -> a: one swtpm on a"

# --- end
mig_dom a "$p" Destroy >/dev/null
ok $? "the guest is destroyed on a"
ok "wait_until 10 eval '[ -z \"\$(swtpm_pids a)\" ]'" "Destroy: no swtpm left on a"
mig_check_clean a "$uuid" "after Destroy"
mig_check_clean b "$uuid" "after Destroy"
ok "[ -d '$(state_dir a)' ]" "the state dir stays on a while the domain is defined"
mig_dom a "$p" Undefine >/dev/null
ok $? "Undefine on a"
ok "[ ! -e '$(state_dir a)' ]" "Undefine removed the TPM state dir on a"
if [ -n "$(mig_lookup b "$uuid" 2>/dev/null)" ]; then
        ok "[ -d '$(state_dir b)' ]" "the domain is still defined on b: its (stale) state dir stays there"
else
        ok "[ ! -e '$(state_dir b)' ]" "the domain is gone from b, and so is its TPM state dir there"
fi

hosts_finish
