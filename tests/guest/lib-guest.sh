# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# The test guest (this directory) as the shell tests and tools run it under
# vmigrated's qemu backend: what it needs, whether KVM can run it, its
# domain XML, the "# accel:" line and the check that the daemon's qemu
# backend is there. Shared by tests/bus/lib-qemu.sh (one host) and
# tests/hosts/lib-migrate.sh (test hosts, and through it bench/ and
# tools/demo.sh). Source tests/bus/lib.sh (TAP helpers) first.
#
# Environment:
#   VMTEST_KERNEL     the test guest kernel (vmigrate-test-guest.elf)
#   VMTEST_GUESTCTL   tests/guest/guestctl.py
#   VMIGRATE_QEMU     the QEMU the daemon runs (default qemu-system-x86_64)

# guest_require: skips the test when QEMU or python3 is missing; a guest
# kernel missing from a build that registers the test is a build bug, not a
# missing prerequisite.
guest_require() {
        : "${VMTEST_KERNEL:?VMTEST_KERNEL must be set}"
        : "${VMTEST_GUESTCTL:?VMTEST_GUESTCTL must be set}"
        command -v "${VMIGRATE_QEMU:-qemu-system-x86_64}" >/dev/null ||
                skip_all "qemu-system-x86_64 not installed (package qemu-system-x86)"
        [ -x /usr/bin/python3 ] || skip_all "/usr/bin/python3 not installed"
        [ -r "$VMTEST_KERNEL" ] || bail_out "$VMTEST_KERNEL not built"
}

# guest_kvm_usable: whether /dev/kvm is there and can be opened.
guest_kvm_usable() {
        [ -c /dev/kvm ] && { exec 8<>/dev/kvm; } 2>/dev/null || return 1
        exec 8>&-
}

# guest_print_accel DOMAIN-TYPE WHY: the "# accel:" line every test prints.
guest_print_accel() {
        local accel=tcg
        [ "$1" = kvm ] && accel=kvm
        echo "# accel: $accel ($2)"
}

# guest_domain_xml [--qboot] NAME TYPE CMDLINE [MEMORY_MIB] [UUID] [EXTRA]:
# the test guest with one serial port. TYPE kvm boots qboot (SeaBIOS hangs
# under nested KVM), every TYPE does with --qboot (the bus tests' guests
# always have). EXTRA is inserted in <devices> (disks) or, when it starts
# with <cpu, after <os>.
guest_domain_xml() {
        local qboot=0
        if [ "$1" = --qboot ]; then
                qboot=1
                shift
        fi
        local name=$1 type=$2 cmdline=$3 mem=${4:-64} uuid=${5:-} extra=${6:-} loader='' cpu='' devices=''
        [ "$type" = kvm ] && qboot=1
        [ "$qboot" = 1 ] && loader='<loader>/usr/share/qemu/qboot.rom</loader>'
        case $extra in
        "<cpu"*) cpu=$extra ;;
        *) devices=$extra ;;
        esac
        cat <<EOF
<domain type="$type">
  <name>$name</name>
  ${uuid:+<uuid>$uuid</uuid>}
  <memory unit="MiB">$mem</memory>
  <vcpu>1</vcpu>
  <os>
    <type>hvm</type>
    $loader
    <kernel>$VMTEST_KERNEL</kernel>
    <cmdline>$cmdline</cmdline>
  </os>
  $cpu
  <devices>
    <serial type="pty"/>
    $devices
  </devices>
</domain>
EOF
}

# guest_require_qemu_backend WHERE BUSCTL...: the daemon probes QEMU when it
# starts: with QEMU installed, its qemu backend must be available, else
# nothing the test does can work; say why at once. BUSCTL... runs busctl on
# the daemon's bus; WHERE ends the messages (e.g. " on host a").
# valgrind 3.19 (Debian 12) does not implement pidfd_open, which the backend
# needs to watch QEMU: under `meson test --setup valgrind` that is a missing
# prerequisite, not a failure of ours.
guest_require_qemu_backend() {
        local where=$1 info
        shift
        info=$("$@" --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetBackends |
                /usr/bin/python3 -c '
import json, sys
q = json.load(sys.stdin)["data"][0].get("qemu", {})
print(q.get("available", {}).get("data"), q.get("unavailable-reason", {}).get("data", ""))
') || bail_out "GetBackends failed$where"
        case $info in
        True*) return 0 ;;
        *"Function not implemented"*)
                [ -n "${VMIGRATE_VALGRIND:-}" ] &&
                        skip_all "the qemu backend cannot run under valgrind: ${info#False }"
                ;;
        esac
        bail_out "the qemu backend is unavailable$where: $info"
}
