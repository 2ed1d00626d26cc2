#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The domain XML virt-install writes for ordinary guests
# (tests/unit/data/virt-install/*.xml: q35, a qcow2 disk on virtio with
# discard, an empty SATA CD-ROM, libvirt's default network, SPICE or VNC
# or no display, the guest-agent and spicevmc channels, a USB tablet,
# sound, USB redirection, a virtio RNG, a balloon, libosinfo metadata,
# BIOS or UEFI), each as written but for its disk's path (moved to the
# storage the test hosts share): it defines on host a, starts under TCG
# (no OS: the firmware finds nothing to boot, which is all a migration
# needs), migrates live to host b, and GetXML on b gives back every
# element and attribute the user wrote, but for what libvirt writes as its
# own bookkeeping and vmigrate's documented translations (the list is in
# xml-kept.py); UEFI Fedora's and Windows 11's with their TPM (an swtpm on
# each host), Windows 11's with its Hyper-V enlightenments on QEMU's -cpu
# (under TCG QEMU gives the guest no Hyper-V interface, so what is tested
# is the definition, the command line and the migration, not the
# enlightenments).
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

command -v qemu-img >/dev/null || bail_out "qemu-img not installed (package qemu-utils)"
HERE=$(cd "$(dirname "$0")" && pwd)
data=$VMIGRATE_SOURCE_ROOT/tests/unit/data/virt-install
# libvirt's default network on both hosts: a bridge of that name.
HOSTS_DAEMON_ARGS="--networks-dir=@HOSTDIR@/networks.d"
mig_setup --qemu a b
guest_print_accel tcg "the guests' own firmware under TCG: nested KVM here resets a guest that turns on paging"
for h in a b; do
        mkdir -p "$(host_path "$h" dir)/networks.d" && echo vibr0 >"$(host_path "$h" dir)/networks.d/default" &&
                host_exec "$h" ip link add vibr0 type bridge && host_exec "$h" ip link set vibr0 up ||
                bail_out "cannot make the default network's bridge on host $h"
done

spice=0
qemu-system-x86_64 -spice help 2>&1 | grep -q "port=" && spice=1

# swtpm_count HOST UUID: swtpm processes for the guest UUID in HOST's network namespace.
swtpm_count() {
        local ino p n=0
        ino=$(stat -L -c %i "/run/netns/$(host_netns "$1")") || return 1
        for p in $(pgrep -x swtpm 2>/dev/null); do
                [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$ino" ] || continue
                tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$2" && n=$((n + 1))
        done
        echo "$n"
}

# one NAME [FILE]: the sample as the user would give it, with its disk in
# the shared storage; defined on a, started, moved to b, compared.
one() {
        local name=$1 file=${2:-$data/$1.xml} xml p='' out='' uuid qpid
        local disk=/srv/vmigrate/shared/$name.qcow2
        if [ "$spice" = 0 ] && grep -q "spice" "$file"; then
                skip "$name" "this QEMU has no SPICE (install qemu-system-modules-spice)"
                return
        fi
        qemu-img create -q -f qcow2 "$(host_path a shared)/$name.qcow2" 1G
        xml=$(sed "s|/var/lib/libvirt/images/[^'\"]*\\.qcow2|$disk|" "$file")
        out=$(mig_mgr a DefineXML s "$xml" 2>&1) && p=$(vm_reply_path "$out") && out=$(mig_dom a "$p" Start 2>&1)
        ok $? "$name: defines and starts on a" || { diag "$out"; return; }
        uuid=$(mig_uuid a "$p")
        ok "mig_wait_state 30 a '$p' 'running/.*'" "$name: runs on a ($(mig_state a "$p"))"
        if grep -q "<hyperv>" "$file"; then
                # What QEMU was given; under TCG the guest does not see it
                # (QEMU builds the Hyper-V CPUID leaves under KVM only).
                qpid=$(mig_qemu_pids a "$uuid" | head -n 1)
                out=$(tr '\0' ' ' <"/proc/$qpid/cmdline" 2>/dev/null)
                like "$out" " -cpu qemu64,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-time " \
                        "$name: its QEMU has the Hyper-V enlightenments on -cpu" || diag "$out"
                like "$out" " -rtc base=localtime" "$name: and the RTC at the host's local time" || diag "$out"
        fi
        out=$(mig_migrate a "$p" "$(mig_dest b)" 1 wait b true)
        like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "$name: migrates live to b" || diag "$out"
        is "$(mig_state b "$p")" running/migrated "$name: runs on b"
        if grep -q "<tpm" "$file"; then
                is "$(swtpm_count a "$uuid")/$(swtpm_count b "$uuid")" 0/1 "$name: its TPM's swtpm runs on b, none on a"
        fi
        out=$(mig_bus b --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" GetXML |
                $MIG_PY -c 'import json, sys; print(json.load(sys.stdin)["data"][0])' |
                $MIG_PY "$HERE/xml-kept.py" <(echo "$xml") /dev/stdin 2>&1)
        ok $? "$name: GetXML on b gives back every element and attribute it was defined with" || diag "$out"
        mig_dom b "$p" Destroy >/dev/null
        mig_dom b "$p" Undefine >/dev/null 2>&1
        mig_dom a "$p" Undefine >/dev/null 2>&1
        mig_check_clean a "$uuid" "$name"
        if grep -q "<tpm" "$file"; then
                ok "[ ! -e '$(host_path a state)/qemu/swtpm/$uuid' ] && [ ! -e '$(host_path b state)/qemu/swtpm/$uuid' ]" \
                        "$name: undefined on both hosts, its TPM state is gone from both"
        fi
}

for f in "$data"/*.xml; do
        one "$(basename "$f" .xml)"
done

# <vcpu cpuset>: QEMU and all its threads run on those host CPUs; a
# destination without them is told so by DryRun; a CPU this host lacks
# fails the start with the reason.
pin_xml() { guest_domain_xml pinned qemu 'vmtest.mem=4M' 64 "$2" | sed "s|<vcpu>1</vcpu>|<vcpu cpuset='$1'>1</vcpu>|"; }
puuid=$(cat /proc/sys/kernel/random/uuid)
p=$(mig_define a "$(pin_xml 0 "$puuid")") && mig_dom a "$p" Start >/dev/null
ok $? "cpuset: a guest with <vcpu cpuset='0'> starts on a"
qpid=$(mig_qemu_pids a "$puuid" | head -n 1)
is "$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$qpid/status" 2>/dev/null)" 0 \
        "cpuset: its QEMU may run on host CPU 0 only"
is "$(for t in /proc/$qpid/task/*/status; do awk '/^Cpus_allowed_list/ { print $2 }' "$t"; done | sort -u)" 0 \
        "cpuset: and so may every one of its threads (the vCPU's included)"
running=$(mig_bus a --json=short call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" GetXML |
        $MIG_PY -c 'import json, sys; print(json.load(sys.stdin)["data"][0])')
out=$(mig_dry_run a "$p" "$(mig_dest b)" 1 destination-xml s "$(sed "s|cpuset=.0.|cpuset='0-1,1000'|" <<<"$running")")
like "$out" $'\nerror resources.cpuset host-b: <vcpu cpuset=.{1,2}0-1,1000.{1,2}> names host CPUs 1000, which are not online here' \
        "cpuset: DryRun to a destination without CPU 1000 says so, naming host-b and the CPU" || diag "$out"
mig_dom a "$p" Destroy >/dev/null
mig_dom a "$p" Undefine >/dev/null
p=$(mig_define a "$(pin_xml 1000 "$puuid")")
out=$(mig_dom a "$p" Start 2>&1)
like "$out" "cannot run QEMU on the host CPUs of <vcpu cpuset>" "cpuset: a CPU this host lacks fails the start, saying why" ||
        diag "$out"
mig_dom a "$p" Undefine >/dev/null
hosts_finish
