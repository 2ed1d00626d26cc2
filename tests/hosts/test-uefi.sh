#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A UEFI guest (<os firmware='efi'>, OVMF from Debian's ovmf package, under
# TCG) and its NVRAM between two hosts.
#
# What it proves, and what not. The guest is OVMF itself, booted to its
# built-in UEFI shell on the serial console (no OS: the project's test
# guest is a multiboot ELF that OVMF cannot boot, and a real Linux guest is
# another fixture's job). Through that shell the firmware writes
# non-volatile UEFI variables (setvar -nv), so the NVRAM content checked
# here is the firmware's own, written while the guest runs:
#   - firmware='efi' makes vmigrated pick OVMF from QEMU's descriptors,
#     write the choice into the running definition, and make the NVRAM
#     file (its state dir, per domain) from the template at the first start;
#   - a variable set on a is in b's NVRAM file after a live migration,
#     and b's file is a's byte for byte (a's guest stopped, its file final);
#     a stale copy b had from before is gone (not merely renamed);
#   - the firmware on b (running) sees the variable (dmpstore), and sets
#     another; a migration back that fails after Prepare (a required
#     finish hook on a) leaves a's own copy exactly as it was; the next
#     one (option 'paused') brings b's NVRAM, both variables, to a byte
#     for byte before the guest runs there (QEMU's own write-back of the
#     flash happens only when it runs: the file is vmigrated's copy);
#   It does not tell the Prepare-time copy from the Finish-time one (the
#   firmware writes nothing during the copy); test-qemu-firmware does.
#   - Undefine removes the NVRAM vmigrated made in its own directory, on
#     each host that had the domain; a user-given <nvram> file stays; the
#     undefine-source option removes the source's (stale) copy too;
#   - secure boot: firmware='efi' with the secure-boot feature picks the
#     secboot code and runs with SMM and a secure flash;
#   - a network disk (<disk type='network'>, nbd): the image is in a's
#     private storage, served by qemu-nbd on a; DryRun's storage.network
#     reaches it from b, and says so when it cannot (destination-xml
#     pointing at a port nobody serves); after the migration b's QEMU
#     reads it (the firmware's dblk on b shows the image's first block);
#   - <interface type='network'><source network='lan'/> (on the secure
#     boot guest, which need not reach the shell: OVMF tries PXE on a NIC
#     first): each host's table (--networks-dir, lan -> br-lan) names the
#     bridge its tap is attached to, on a and after a migration (with SMM)
#     on b; DryRun warns about a network b's table lacks (destination-xml).
# It does not boot an operating system, nor check secure boot's policy.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] && [ -r /usr/share/qemu/firmware/60-edk2-x86_64.json ] ||
        skip_all "OVMF not installed (package ovmf)"
command -v qemu-nbd >/dev/null || skip_all "qemu-nbd not installed (package qemu-utils)"
HOSTS_DAEMON_ARGS="--hooks-dir=@HOSTDIR@/hooks.d --networks-dir=@HOSTDIR@/networks.d"
mig_setup --qemu a b
guest_print_accel tcg "OVMF under nested KVM is unreliable here; TCG boots it to its shell in ~10 s"
mig_require_tcg_precopy

GUID=5b8a7b5e-1f4c-4f2e-9d6a-3e1c2b4a5d6f
UUID=2f6e1a3c-8b4d-4c7e-9a1f-0d2c3b4a5e6f
FLAG=$(host_path a shared)/fail-finish
for h in a b; do
        mkdir -p "$(host_path $h dir)/hooks.d" && chmod 0755 "$(host_path $h dir)/hooks.d"
        # Required by the domain: fails the Finish of an incoming migration
        # while $FLAG exists (after Prepare staged the NVRAM).
        cat >"$(host_path $h dir)/hooks.d/50-gate" <<EOF
#!/bin/sh
[ "\$3" = finish ] && [ -e /srv/vmigrate/shared/fail-finish ] && { echo "finish refused by the test"; exit 1; }
exit 0
EOF
        chmod 0755 "$(host_path $h dir)/hooks.d/50-gate"
        # The network table: 'lan' is the bridge br-lan on every host.
        mkdir -p "$(host_path $h dir)/networks.d" && echo br-lan >"$(host_path $h dir)/networks.d/lan"
        host_exec $h ip link add br-lan type bridge && host_exec $h ip link set br-lan up ||
                bail_out "cannot create br-lan on host $h"
done
# tap_master HOST UUID: the bridge the guest's tap is attached to on HOST.
tap_master() {
        ip -n "$(host_netns "$1")" -o link show "vm${2:0:8}-0" 2>/dev/null | sed -n -E 's/.* master ([^ ]+) .*/\1/p'
}

# The network disk: an image only a has, served by qemu-nbd on a.
img=$(host_path a images)/nbd.raw
{ printf 'VMIGRATE-NBD-OK!'; head -c $((1024 * 1024 - 16)) /dev/zero; } >"$img"
host_exec a qemu-nbd --fork --persistent --shared=4 --format=raw --export-name=data --bind=0.0.0.0 --port=10809 \
        /srv/vmigrate/images/nbd.raw
ok $? "qemu-nbd serves an image of a's private storage on host-a:10809"
nbd_disk() {
        echo "<disk type='network' device='disk'><driver name='qemu' type='raw'/>
    <source protocol='nbd' name='data'><host name='host-a' port='$1'/></source><target dev='vda' bus='virtio'/></disk>"
}

xml="<domain type='qemu'>
  <name>uefi</name>
  <uuid>$UUID</uuid>
  <metadata><vmigrate:migration xmlns:vmigrate='https://vmigrate.org/xmlns/migration/1'>
    <vmigrate:require hook='50-gate'/></vmigrate:migration></metadata>
  <memory unit='MiB'>256</memory>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <firmware><feature enabled='no' name='secure-boot'/></firmware>
  </os>
  <devices>$(nbd_disk 10809)<serial type='pty'><target port='0'/></serial></devices>
</domain>"

nvram() { echo "$(host_path "$1" state)/qemu/nvram/${UUID}_VARS.fd"; }
serial_log() { echo "$(host_path "$1" runtime)/qemu/log/${UUID}-serial0.log"; }
# has_string FILE TEXT: the file holds TEXT in UTF-16LE (how UEFI stores L"…").
has_string() {
        $MIG_PY -c 'import sys; sys.exit(0 if open(sys.argv[1], "rb").read().find(sys.argv[2].encode("utf-16-le")) >= 0 else 1)' \
                "$1" "$2" 2>/dev/null
}
# shell HOST COMMAND: runs COMMAND in the firmware's UEFI shell on HOST's
# serial console and prints what it answered (escape sequences removed),
# staying connected until the next prompt: QEMU drops what a serial port
# says while its socket has no client.
shell() {
        host_exec "$1" "$MIG_PY" -c '
import re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(1)
s.sendall(sys.argv[2].encode() + b"\r")
out, deadline = b"", time.monotonic() + 60
while time.monotonic() < deadline and out.count(b"Shell>") < 1:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    if not data:
        break
    out += data
s.close()
text = re.sub(r"\x1b\[[0-9;=]*[A-Za-z]", "", out.decode("latin-1"))
print(text.replace("\r", ""))
sys.exit(0 if b"Shell>" in out else 1)' "$HOSTS_RUNTIME_DIR/qemu/$UUID/serial0.sock" "$2"
}
shell_prompts() { grep -o 'Shell>' "$(serial_log "$1")" 2>/dev/null | wc -l; }

p=$(mig_define a "$xml")
ok $? "a UEFI domain (firmware='efi', secure boot off) is defined on a"
ok "[ ! -e '$(nvram a)' ]" "... it has no NVRAM before its first start"
out=$(mig_dom a "$p" Start 2>&1)
ok $? "it starts on a" || diag "$out"
live=$(mig_dom a "$p" GetXML)
like "$live" '<loader readonly=\\"yes\\" type=\\"pflash\\">/usr/share/OVMF/OVMF_CODE_4M.fd</loader>' \
        "the running definition names the firmware vmigrated chose (the plain 4M OVMF)"
like "$live" '<nvram template=\\"/usr/share/OVMF/OVMF_VARS_4M.fd\\"/>' "... and its NVRAM template; the file is vmigrated's own"
ok "[ -f '$(nvram a)' ] && [ \$(stat -c %s '$(nvram a)') = \$(stat -c %s /usr/share/OVMF/OVMF_VARS_4M.fd) ]" \
        "the NVRAM file was made from the template in a's state dir"
like "$(grep -h 'starting' "$(host_path a runtime)/qemu/log/$UUID.log" | tail -n 1)" \
        'pflash0=pflash0-format,pflash1=pflash1-format' "QEMU got the code and the NVRAM as flash (-machine pflash0/pflash1)"
ok "wait_until 120 eval '[ \$(shell_prompts a) -ge 1 ]'" "OVMF boots to its UEFI shell on a's serial console"

out=$(shell a "setvar VmigrateTest -guid $GUID -nv -bs -rt =L\"vmigrate-nvram-42\"")
ok $? "setvar in the UEFI shell on a" || diag "$out"
ok "wait_until 30 has_string '$(nvram a)' vmigrate-nvram-42" "the firmware writes a variable set in its shell into a's NVRAM file"

# A stale copy on b: the domain's NVRAM from an earlier stay there.
mkdir -p "$(dirname "$(nvram b)")" && { cat /usr/share/OVMF/OVMF_VARS_4M.fd; printf 'stale-copy-on-b'; } >"$(nvram b)"
ok $? "b has a stale NVRAM for the domain (a different size, even)"

out=$(mig_dry_run a "$p" "$(mig_dest b)" 0)
like "$out" '^ok=true' "DryRun a -> b passes (b reaches the NBD server)" || diag "$out"
unlike "$out" 'storage.network' "... with nothing to say about the network disk" || diag "$out"
# destination-xml starts from the running definition (firmware chosen).
running=$(mig_bus a --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" GetXML |
        $MIG_PY -c 'import json, sys; print(json.load(sys.stdin)["data"][0])')
out=$(mig_dry_run a "$p" "$(mig_dest b)" 1 destination-xml s "${running//10809/10899}")
like "$out" $'\nerror storage.network host-b: disk vda \\(nbd://host-a:10899/data\\) cannot be reached from here: Connection refused' \
        "DryRun to a port nobody serves: storage.network names the disk, the server and why" || diag "$out"

out=$(mig_migrate a "$p" "$(mig_dest b)" 1 wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "Migrate a -> b completes" || diag "$out"
is "$(mig_state b "$p")" running/migrated "the guest runs on b"
ok "cmp -s '$(nvram a)' '$(nvram b)'" "b's NVRAM is a's, byte for byte (a's guest stopped: its file is final)"
ok "has_string '$(nvram b)' vmigrate-nvram-42" "... with the variable the firmware wrote on a"
ok "! grep -q stale-copy-on-b '$(nvram b)' && [ ! -e '$(nvram b).vmigrate-previous' ]" \
        "b's stale copy is gone, not kept aside"
out=$(shell b "dmpstore VmigrateTest -guid $GUID")
ok $? "the firmware on b answers in its shell after the migration" || diag "$out"
like "$out" 'v\.m\.i\.g\.r\.a\.t\.e\.' "... and dmpstore on b shows the variable's value" || diag "$out"
out=$(shell b "dblk blk0 0 1")
ok $? "dblk on b: the firmware reads the network disk's first block" || diag "$out"
like "$out" 'VMIGRATE-NBD-OK' "... whose content is the image a serves (no copy: the disk is shared by nature)" || diag "$out"
like "$(ip netns exec "$(host_netns a)" ss -Htn state established '( sport = :10809 )')" "$(host_ip b)" \
        "b's QEMU is connected to the NBD server on a"

out=$(shell b "setvar VmigrateBack -guid $GUID -nv -bs -rt =L\"came-back-77\"")
ok $? "setvar in the UEFI shell on b" || diag "$out"
ok "wait_until 30 has_string '$(nvram b)' came-back-77" "the firmware on b writes a second variable into b's NVRAM"

# The way back fails after Prepare: a's own (older) copy must survive it.
before=$(md5sum <"$(nvram a)")
touch "$FLAG"
out=$(mig_migrate b "$p" "$(mig_dest a)" 1 wait b true)
like "$out" "finish refused by the test" "Migrate b -> a fails at Finish (a required hook)" || diag "$out"
is "$(mig_state b "$p")" running/migration-failed "... the guest runs on b"
is "$(md5sum <"$(nvram a)")" "$before" "... and a's NVRAM is exactly what it was before the attempt"
ok "[ ! -e '$(nvram a).vmigrate-previous' ]" "... with nothing left aside"
mig_check_clean a "$UUID" "failed finish"
rm -f "$FLAG"

# Paused on arrival: QEMU writes the flash back only when the guest runs,
# so a right file before that is the copy vmigrated sent.
out=$(mig_migrate b "$p" "$(mig_dest a)" 2 wait b true paused b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "Migrate b -> a (option 'paused') completes" || diag "$out"
like "$(mig_state a "$p")" '^paused/' "the guest is paused on a"
ok "cmp -s '$(nvram b)' '$(nvram a)'" "a's NVRAM is b's, byte for byte, before the guest ran on a"
out=$(mig_dom a "$p" Resume 2>&1)
ok $? "resumed on a" || diag "$out"
ok "cmp -s '$(nvram b)' '$(nvram a)'" "... and the same after QEMU's own write-back"
ok "has_string '$(nvram a)' vmigrate-nvram-42 && has_string '$(nvram a)' came-back-77" \
        "... with both variables: the one from a and the one written on b"
out=$(mig_dom a "$p" Destroy 2>&1)
ok $? "destroyed on a" || diag "$out"
ok "[ -f '$(nvram a)' ]" "the NVRAM outlives the guest's QEMU (it is the domain's, for its next start)"
out=$(mig_dom a "$p" Undefine 2>&1)
ok $? "undefined on a" || diag "$out"
ok "[ ! -e '$(nvram a)' ]" "... and the NVRAM vmigrated made for it in its own directory is gone with it"
if [ -e "$(nvram b)" ]; then
        # b still has the domain, shut off since it left: the same there.
        out=$(mig_dom b "$p" Undefine 2>&1)
        ok $? "undefined on b too" || diag "$out"
        ok "[ ! -e '$(nvram b)' ]" "... and b's copy of its NVRAM is gone"
fi

# A user-given <nvram> path: the user's file, which vmigrated did not make
# (and could not tell from one on shared storage a destination now uses):
# it stays when the domain goes.
unvram_in=$HOSTS_STATE_DIR/user-nvram/uefi-user_VARS.fd
unvram=$(host_path a state)/user-nvram/uefi-user_VARS.fd
mkdir -p "$(dirname "$unvram")" && { cat /usr/share/OVMF/OVMF_VARS_4M.fd; } >"$unvram"
uxml="<domain type='qemu'><name>uefi-user</name><memory unit='MiB'>256</memory>
  <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>
    <firmware><feature enabled='no' name='secure-boot'/></firmware><nvram>$unvram_in</nvram></os>
  <devices><serial type='pty'/></devices></domain>"
up=$(mig_define a "$uxml") && out=$(mig_dom a "$up" Start 2>&1)
ok $? "a UEFI domain with a user-given <nvram> (a file the user made) starts on a" || diag "$out"
uuuid=$(mig_uuid a "$up")
mig_dom a "$up" Destroy >/dev/null 2>&1
out=$(mig_dom a "$up" Undefine 2>&1)
ok $? "... and is undefined" || diag "$out"
ok "[ -f '$unvram' ] && [ \$(stat -c %s '$unvram') = \$(stat -c %s /usr/share/OVMF/OVMF_VARS_4M.fd) ]" \
        "... leaving the user's NVRAM file where it was"
ok "[ ! -e '$(host_path a state)/qemu/nvram/${uuuid}_VARS.fd' ]" "... (vmigrated made none of its own for it)"

# Secure boot: the secboot code, SMM, a secure flash.
sxml="<domain type='qemu'><name>uefi-sb</name><memory unit='MiB'>256</memory>
  <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>
    <firmware><feature enabled='yes' name='secure-boot'/><feature enabled='no' name='enrolled-keys'/></firmware></os>
  <features><acpi/><smm state='on'/></features>
  <devices><interface type='network'><source network='lan'/></interface><serial type='pty'/></devices></domain>"
sp=$(mig_define a "$sxml") && out=$(mig_dom a "$sp" Start 2>&1)
ok $? "a secure-boot UEFI domain starts on a" || diag "$out"
like "$(mig_dom a "$sp" GetXML)" '<loader readonly=\\"yes\\" secure=\\"yes\\" type=\\"pflash\\">/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>' \
        "... with the secboot OVMF (keys not enrolled: the empty store)"
suuid=$(mig_uuid a "$sp")
cmdline=$(grep -h 'starting' "$(host_path a runtime)/qemu/log/$suuid.log" | tail -n 1)
like "$cmdline" 'pflash1=pflash1-format,smm=on' "... SMM on"
like "$cmdline" "'-global' 'driver=cfi.pflash01,property=secure,value=on'" "... and the flash secure (only SMM writes the variables)"
is "$(mig_state a "$sp")" running/booted "... and runs"
is "$(tap_master a "$suuid")" br-lan "network 'lan': its tap is on br-lan, the bridge a's table names"
running=$(mig_bus a --json=short call "$VM_BUS_NAME" "$sp" "$VM_DOMAIN_IFACE" GetXML |
        $MIG_PY -c 'import json, sys; print(json.load(sys.stdin)["data"][0])')
out=$(mig_dry_run a "$sp" "$(mig_dest b)" 1 destination-xml s "${running//network=\"lan\"/network=\"dmz\"}")
like "$out" $'\nwarning network.bridge host-b: network \'dmz\' is not defined here \\(no [^ ]*/networks.d/dmz\\)' \
        "DryRun with a network b's table lacks: network.bridge says which file is missing" || diag "$out"
out=$(mig_migrate a "$sp" "$(mig_dest b)" 2 wait b true undefine-source b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' \
        "the secure-boot guest migrates a -> b (SMM, secure flash; option undefine-source)" || diag "$out"
is "$(mig_state b "$sp")" running/migrated "... and runs on b"
is "$(tap_master b "$suuid")" br-lan "... its tap on br-lan, the bridge b's table names for 'lan'"
snvram_a=$(host_path a state)/qemu/nvram/${suuid}_VARS.fd
snvram_b=$(host_path b state)/qemu/nvram/${suuid}_VARS.fd
ok "[ -f '$snvram_b' ]" "... with its NVRAM on b"
ok "wait_until 20 eval '[ ! -e \"$snvram_a\" ]'" \
        "undefine-source: the domain's NVRAM on a (vmigrated's, now stale) is gone with its definition"
ok "[ ! -e '$(host_path a state)/domains/$suuid.xml' ] && ! mig_dom a '$sp' GetXML >/dev/null 2>&1" \
        "... and so is the domain on a"
hosts_finish
