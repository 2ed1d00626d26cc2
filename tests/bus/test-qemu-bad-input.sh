#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The qemu backend refuses what it cannot run, with a specific error naming
# the cause (QEMU's own message where QEMU is the one refusing), before or
# at Start, and leaves nothing running or lying around; the daemon carries
# on. Also: no QEMU binary at all makes the backend unavailable, saying why.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-qemu.sh"

vmq_setup
guest_print_accel "$VMQ_TYPE" "guests that must not start; $VMQ_ACCEL_WHY"

vm_expect_ok root "the daemon answers" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
dpid=$(vm_daemon_pid)
fds_before=$(vmq_fd_count "$dpid")

# nothing_left DESC: after a refused domain: no QEMU, nothing in the runtime
# directory but QEMU's logs, no zombie, no fd leaked, the same daemon.
nothing_left() {
        local desc=$1
        vmq_no_qemu_left "$desc: no QEMU running"
        is "$(ls "$VM_TMP/run/qemu")" log "$desc: nothing but logs in <runtime-dir>/qemu"
        is "$(vmq_zombies "$dpid")" "" "$desc: no zombie among the daemon's children"
        wait_until 5 _vmq_fd_count_is "$dpid" "$fds_before"
        is "$(vmq_fd_count "$dpid")" "$fds_before" "$desc: the daemon has as many fds open as before" ||
                diag "$(vmq_fds "$dpid")"
        vm_call_as root call "$VM_BUS_NAME" / org.freedesktop.DBus.Peer Ping
        ok $? "$desc: the daemon still answers"
        is "$(vm_daemon_pid)" "$dpid" "$desc: the same daemon (pid $dpid)"
}

# refused_at_start NAME DESC ERROR REGEX XML: DefineXML works, Start fails
# with ERROR and a message matching REGEX, the domain stays shut off.
refused_at_start() {
        local name=$1 desc=$2 error=$3 regex=$4 xml=$5 dom
        dom=$(vmq_define "$xml")
        ok $? "$desc: DefineXML accepts it (the host may change before Start)" || return
        vm_expect_error root "$desc: Start fails with ${error##*.}" "$error" "$regex" \
                --timeout=120 call "$VM_BUS_NAME" "$dom" "$VM_DOMAIN_IFACE" Start
        diag "  $VM_ERROR_MESSAGE"
        is "$(vmq_state "$dom")" shutoff/unknown "$desc: the domain stays shut off"
        is "$(vmq_prop "$dom" Active)" false "$desc: not Active"
        nothing_left "$desc"
        vmq_dom "$dom" Undefine >/dev/null
}

kernel_xml() { # NAME KERNEL_PATH
        vmq_domain_xml "$1" "$VMQ_TYPE" "vmtest.mem=256K" | sed "s|<kernel>.*</kernel>|<kernel>$2</kernel>|"
}

# --- the kernel
refused_at_start no-kernel "kernel missing" "$VM_ERROR.BackendFailed" \
        '^kernel /nonexistent/vmlinuz is not readable: No such file or directory$' \
        "$(kernel_xml no-kernel /nonexistent/vmlinuz)"
ln -s /nonexistent/target "$VM_TMP/dangling-kernel"
refused_at_start dangling-kernel "kernel is a dangling symlink" "$VM_ERROR.BackendFailed" \
        "^kernel $VM_TMP/dangling-kernel is not readable: No such file or directory\$" \
        "$(kernel_xml dangling-kernel "$VM_TMP/dangling-kernel")"
# Root reads any file whatever its mode: a directory, or a FIFO (on
# which QEMU would hang), is what root cannot load; refused before QEMU.
mkdir "$VM_TMP/kernel-dir"
refused_at_start dir-kernel "kernel is a directory" "$VM_ERROR.BackendFailed" \
        "^kernel $VM_TMP/kernel-dir is not a regular file\$" \
        "$(kernel_xml dir-kernel "$VM_TMP/kernel-dir")"
mkfifo "$VM_TMP/kernel-fifo"
refused_at_start fifo-kernel "kernel is a FIFO" "$VM_ERROR.BackendFailed" \
        "^kernel $VM_TMP/kernel-fifo is not a regular file\$" \
        "$(kernel_xml fifo-kernel "$VM_TMP/kernel-fifo")"
printf 'not a kernel\n' >"$VM_TMP/not-a-kernel"
refused_at_start text-kernel "kernel is not a kernel" "$VM_ERROR.BackendFailed" \
        "QEMU exited with status 1 while starting the guest: .*(kernel|header)" \
        "$(kernel_xml text-kernel "$VM_TMP/not-a-kernel")"

# --- the disk
refused_at_start no-disk "disk source missing" "$VM_ERROR.BackendFailed" \
        '^disk vda: /nonexistent\.img is not readable and writable: No such file or directory$' \
        "$(vmq_domain_xml no-disk "$VMQ_TYPE" "vmtest.mem=256K" 64 \
                "<disk type='file' device='disk'><source file='/nonexistent.img'/><target dev='vda' bus='virtio'/></disk>")"

# --- memory above the host's RAM
host_mib=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
big=$((host_mib * 2))
refused_at_start big-memory "memory above host RAM ($big MiB > $host_mib MiB)" "$VM_ERROR.BackendFailed" \
        "^<memory>: $big MiB is more than this host's $host_mib MiB of RAM\$" \
        "$(vmq_domain_xml big-memory "$VMQ_TYPE" "vmtest.mem=256K" "$big")"

# --- QEMU refusing its arguments: its own message is the error
refused_at_start bad-cpu "unknown CPU model" "$VM_ERROR.BackendFailed" \
        "QEMU exited with status 1 while starting the guest: .*unable to find CPU model 'nosuchcpu'" \
        "$(vmq_domain_xml bad-cpu "$VMQ_TYPE" "vmtest.mem=256K" 64 "<cpu mode='custom'><model>nosuchcpu</model></cpu>")"

# CreateXML: the same refusal, and no transient domain remains.
vm_expect_error root "CreateXML with an unknown CPU model fails with QEMU's message" "$VM_ERROR.BackendFailed" \
        "unable to find CPU model 'nosuchcpu'" \
        --timeout=120 call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" CreateXML s \
        "$(vmq_domain_xml bad-cpu-transient "$VMQ_TYPE" "vmtest.mem=256K" 64 "<cpu mode='custom'><model>nosuchcpu</model></cpu>")"
vm_expect_error root "... and leaves no domain behind" "$VM_ERROR.NoSuchDomain" '.' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s bad-cpu-transient
nothing_left "CreateXML refused"

# --- an unknown machine type: refused at DefineXML already
vm_expect_error root "unknown machine type: DefineXML fails with UnsupportedBackend naming it" \
        "$VM_ERROR.UnsupportedBackend" "machine='nosuchmachine'.*no such machine type" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s \
        "$(vmq_domain_xml bad-machine "$VMQ_TYPE" "vmtest.mem=256K" | sed "s|<type>hvm</type>|<type machine='nosuchmachine'>hvm</type>|")"
vm_expect_error root "... and defines nothing" "$VM_ERROR.NoSuchDomain" '.' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s bad-machine
ok '[ -z "$(ls "$VM_TMP/state/domains")" ]' "no definition is stored"
nothing_left "unknown machine type"

# --- no QEMU binary: the backend is unavailable and says why
status=$(vm_stop_daemon_pid "$dpid" TERM)
ok $? "stop the daemon to change its environment"
vm_set_daemon_env VMIGRATE_QEMU=/nonexistent/qemu-system-x86_64
backend_info() { # prints "available reason" for the qemu backend
        busctl --no-pager --json=short call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetBackends |
                $VMQ_PY -c '
import json, sys
q = json.load(sys.stdin)["data"][0]["qemu"]
print(q["available"]["data"], q.get("unavailable-reason", {}).get("data", "-"))
'
}
info=$(backend_info)
ok $? "GetBackends works with VMIGRATE_QEMU=/nonexistent/qemu-system-x86_64"
like "$info" "^False .*/nonexistent/qemu-system-x86_64 not found" \
        "the qemu backend is unavailable, its unavailable-reason names the missing binary"
vm_expect_error root "DefineXML of a $VMQ_TYPE domain then fails with UnsupportedBackend naming the reason" \
        "$VM_ERROR.UnsupportedBackend" "qemu.*unavailable.*/nonexistent/qemu-system-x86_64 not found" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s \
        "$(vmq_domain_xml no-qemu "$VMQ_TYPE" "vmtest.mem=256K")"
vm_expect_ok root "the test backend still works" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml still-works)"
dpid=$(vm_daemon_pid)

# A binary that is not QEMU at all.
vm_stop_daemon_pid "$dpid" TERM >/dev/null
vm_set_daemon_env VMIGRATE_QEMU=/bin/false
info=$(backend_info)
like "$info" "^False .+" "VMIGRATE_QEMU=/bin/false: the qemu backend is unavailable, with a reason"
diag "  $info"
dpid=$(vm_daemon_pid)

# Back to the real QEMU: available again.
vm_stop_daemon_pid "$dpid" TERM >/dev/null
vm_set_daemon_env
info=$(backend_info)
is "$info" "True -" "with QEMU back, the qemu backend is available again"
dpid=$(vm_daemon_pid)
fds_before=$(vmq_fd_count "$dpid")
vm_expect_ok root "DefineXML of a $VMQ_TYPE domain works again" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s \
        "$(vmq_domain_xml fine "$VMQ_TYPE" "vmtest.mem=256K")"
nothing_left "at the end"

vm_finish
