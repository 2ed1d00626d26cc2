#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The main job, on a fresh Debian 12 machine as root:
#
#     sudo tools/demo.sh
#
# Installs what is missing, builds, then runs vmigrated on a private
# system-like bus (the project's bus policy, the real polkitd with the
# project's actions) and drives the project's test guest under the qemu
# backend with vmigratectl: define, start (KVM when /dev/kvm is usable,
# TCG otherwise: it says which), watch the guest's heartbeat, check its
# memory, suspend, resume, stop. Each step is checked and reported; the
# exit status is 0 only if all of them passed.
#
# Live migration between two hosts arrives with the migration work; this
# script then grows into it.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

tools/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build
ninja -C build

export VMIGRATE_BUILD_ROOT=$top/build VMIGRATE_SOURCE_ROOT=$top
# shellcheck source=../tests/bus/lib.sh
source tests/bus/lib.sh
set +e

vm_setup
ctl=$top/build/client/vmigratectl
guestctl=$top/tests/guest/guestctl.py
kernel=$top/build/tests/guest/vmigrate-test-guest.elf

if [[ -r /dev/kvm && -w /dev/kvm ]]; then
        accel=kvm
        # Nested KVM here boots multiboot kernels with qboot (SeaBIOS hangs)
        # and writes memory slowly: an idle guest with a small test area.
        type=kvm loader="<loader>/usr/share/qemu/qboot.rom</loader>" cmdline="vmtest.mem=256K vmtest.rate=0"
else
        accel=tcg
        type=qemu loader="" cmdline="vmtest.mem=32M vmtest.ws=8M vmtest.rate=2000"
fi
diag "accel: $accel ($( [[ $accel == kvm ]] && echo "/dev/kvm is usable" || echo "/dev/kvm is missing: TCG"))"

cat >"$VM_TMP/demo.xml" <<XML
<domain type="$type">
  <name>demo</name>
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os>
    <type>hvm</type>
    $loader
    <kernel>$kernel</kernel>
    <cmdline>$cmdline</cmdline>
  </os>
  <devices>
    <serial type="pty"/>
  </devices>
</domain>
XML

state_of() {
        "$ctl" --json status "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}

step() {
        echo
        echo "\$ vmigratectl $*"
        "$ctl" "$@"
}

step backends
step define "$VM_TMP/demo.xml"
ok $? "demo guest defined"
step start demo
ok $? "demo guest started under $accel"
step list
uuid=$("$ctl" --json status demo | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
serial=$VM_TMP/run/qemu/$uuid/serial0.sock
/usr/bin/python3 "$guestctl" --socket "$serial" --timeout 30 wait-heartbeat
ok $? "the guest's heartbeat arrives on its serial port"
/usr/bin/python3 "$guestctl" --socket "$serial" --timeout 60 verify
ok $? "the guest verifies every page of its memory"
step suspend demo
is "$(state_of demo)" paused "suspended: State is paused"
step resume demo
is "$(state_of demo)" running "resumed: State is running"
step status demo
step destroy demo
ok $? "demo guest stopped"
step list --all
vm_finish
