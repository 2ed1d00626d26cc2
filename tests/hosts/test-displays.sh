#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Displays between two hosts: a TCG test guest with a VGA card, a VNC
# display (no password) and a SPICE display (with one), both on every
# address with autoport from a display range of 5910-5919 per host. The
# guest writes its banner and heartbeat into VGA text memory. Checked:
# Domain.Displays names host-a and the ports QEMU listens on; passwords
# only in root's GetXML; a VNC client (tests/hosts/rfb-client.py) connected
# before the migration sees the connection end, reads the new Displays and
# connects to host-b, where the banner's pixels are those it saw on host-a;
# the source sent client_migrate_info for SPICE before the switch-over and
# quit only once its SPICE server had handed its clients over;
# PropertiesChanged for Displays on both hosts, the source's naming the
# destination (migrated-to). Then the port check: with every display port
# of host-a taken, DryRun b -> a reports network.display-port and Migrate
# is refused (the guest stays on b); once freed, the guest goes back and
# gets the range's first ports again (nothing held by the failed attempt),
# and host-b no longer listens on any display port.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
RFB="$MIG_PY $HERE/rfb-client.py"
HOSTS_DAEMON_ARGS="--display-ports=5910-5919"
mig_setup --qemu a b
guest_print_accel tcg "SeaBIOS must set up the VGA card's text mode, which qboot (for nested KVM) does not"
vm_setup_users

spice=0
qemu-system-x86_64 -spice help 2>&1 | grep -q "port=" && spice=1
[ "$spice" = 1 ] || diag "this QEMU has no SPICE (qemu-system-modules-spice): the SPICE checks are skipped"
spice_xml=''
[ "$spice" = 1 ] && spice_xml="<graphics type='spice' autoport='yes' listen='0.0.0.0' passwd='sp1ce-pw'><listen type='address' address='0.0.0.0'/></graphics>"
devices="<graphics type='vnc' port='-1' autoport='yes' listen='0.0.0.0'/>
    $spice_xml
    <video><model type='vga' vram='16384' heads='1' primary='yes'/></video>"

uri_of() { awk -v t="$1" '$1 == t { print $2 }'; }
display_ports() { # HOST: TCP listeners in 5910-5919 inside HOST
        ip netns exec "$(host_netns "$1")" ss -Hltn 2>/dev/null |
                awk '{ n = split($4, a, ":"); p = a[n]; if (p >= 5910 && p <= 5919) print p }' | sort -u | tr '\n' ' '
}

p=$(mig_define a "$(guest_domain_xml dispguest qemu 'vmtest.mem=4M' 64 '' "$devices")") && mig_dom a "$p" Start >/dev/null
ok $? "a guest with VNC${spice_xml:+ and SPICE} displays and a VGA card runs on a"
uuid=$(mig_uuid a "$p")
ok "mig_guest a $uuid wait-heartbeat >/dev/null" "... it sends heartbeats"

d=$(mig_displays a "$p")
is "$(uri_of vnc <<<"$d")" "vnc://host-a:5910" "Displays on a: VNC at vnc://host-a:5910 (every address: the host's name; the range's first port)"
if [ "$spice" = 1 ]; then
        like "$(grep ^spice <<<"$d")" '^spice spice://host-a:5911 password=true ' "Displays on a: SPICE at spice://host-a:5911, with a password"
        like "$(mig_dom a "$p" GetXML)" "passwd=.\"?sp1ce-pw" "GetXML as root has the SPICE password"
        xml_user=$(host_exec a setpriv --reuid=vmtest-user --regid="$(id -g vmtest-user)" --init-groups \
                busctl --no-pager call "$VM_BUS_NAME" "$p" "$VM_DOMAIN_IFACE" GetXML 2>&1)
        like "$xml_user" "<graphics type=.\"?spice" "GetXML as another user shows the SPICE display" || diag "$xml_user"
        unlike "$xml_user" "passwd|sp1ce-pw" "... without its password"
        ok "! grep -q sp1ce-pw '$(host_path a log)'" "the password is in no log of host a"
        ok "! grep -rq sp1ce-pw '$(host_path a runtime)/qemu/log'" "... nor in QEMU's log (not on its command line)"
fi
like "$(mig_dom a "$p" GetXML)" "<graphics type=.\"?vnc.\"? port=.\"?5910.\"? autoport=.\"?yes" \
        "GetXML of the running guest has the port it got (port='5910' autoport='yes')"
is "$(host_exec b $RFB "$(uri_of vnc <<<"$d")" security)" "1" "a VNC client on b reaches it by that URI (no password: security type None)"

# The banner is on the screen once SeaBIOS has handed over to the guest.
banner_lit() {
        host_exec b $RFB "$1" snapshot "$HOSTS_RUN/$2.ppm" >/dev/null &&
                [[ $($MIG_PY "$HERE/ppm-compare.py" "$HOSTS_RUN/$2.ppm" "$HOSTS_RUN/$2.ppm" 16) =~ ^SAME\ [1-9] ]]
}
ok "wait_until 30 banner_lit vnc://host-a:5910 before" "the guest's banner is on its VGA screen (VNC snapshot, 720x400 text mode)"

mig_monitors a b
host_exec b $RFB vnc://host-a:5910 hold "$HOSTS_RUN/held.ppm" >"$HOSTS_RUN/hold.out" 2>&1 &
ok "wait_until 20 grep -q CONNECTED '$HOSTS_RUN/hold.out'" "a VNC client stays connected to host-a during the migration"

out=$(mig_migrate a "$p" "$(mig_dest b)" 1 wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "Migrate a -> b completes" || diag "$out"
is "$(mig_state b "$p")" running/migrated "the guest runs on b"
if [ "$spice" = 1 ]; then
        like "$(grep -h 'client_migrate_info' "$(host_path a log)" | tail -n 1)" \
                "SPICE clients follow the guest to host-b:5911 \\(client_migrate_info\\)" \
                "a sent client_migrate_info (host-b:5911) before the switch-over"
fi
if [ "$spice" = 1 ]; then
        like "$(grep -h 'SPICE clients handed over\|SPICE clients not handed over' "$(host_path a log)" | tail -n 1)" \
                "SPICE clients handed over to the destination \\([0-9]+ ms\\)" \
                "a's QEMU quit only once its SPICE server said its clients were handed over (query-spice migrated)"
fi
ok "wait_until 20 grep -q CLOSED '$HOSTS_RUN/hold.out'" "the connected VNC client saw its connection end ($(tail -n 1 "$HOSTS_RUN/hold.out"))"

d=$(mig_displays b "$p")
is "$(uri_of vnc <<<"$d")" "vnc://host-b:5910" "Displays on b: vnc://host-b:5910"
[ "$spice" = 1 ] && like "$(grep ^spice <<<"$d")" '^spice spice://host-b:5911 password=true' "Displays on b: spice://host-b:5911"
d=$(mig_displays a "$p")
like "$(grep ^vnc <<<"$d")" '^vnc vnc://host-b:5910 password=false migrated-to=host-b$' \
        "Displays on a (shut off) names where the guest went: vnc://host-b:5910, migrated-to host-b"
ok "vm_signals '$mon_a' PropertiesChanged '$p' | grep -q '\"Displays\"'" "PropertiesChanged with Displays on a"
ok "vm_signals '$mon_b' PropertiesChanged '$p' | grep -q '\"Displays\"'" "PropertiesChanged with Displays on b"

ok "wait_until 20 banner_lit '$(uri_of vnc <<<"$d")' after" "the VNC client connects to the new address and sees the screen"
like "$($MIG_PY "$HERE/ppm-compare.py" "$HOSTS_RUN/before.ppm" "$HOSTS_RUN/after.ppm" 16)" '^SAME [1-9]' \
        "the banner's pixels on host-b are those seen on host-a"
like "$(mig_guest b "$uuid" verify)" '^VERIFY OK ' "every memory page verifies on b"

# host-a's whole display range taken: b -> a cannot get a port there.
ip netns exec "$(host_netns a)" $MIG_PY -c '
import signal, socket
ss = []
for p in range(5910, 5920):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(1); ss.append(s)
print("held", flush=True)
signal.pause()' >"$HOSTS_RUN/squat.out" 2>&1 &
# (until killed: a pid that ended by itself may be another test's by then)
squat=$!
ok "wait_until 10 grep -q held '$HOSTS_RUN/squat.out'" "every port of a's display range is taken by another program"
out=$(mig_dry_run b "$p" "$(mig_dest a)" 0)
like "$out" '^ok=false' "DryRun b -> a fails"
like "$out" $'\nerror network.display-port host-a: no free display port in 5910-5919 on 0.0.0.0' \
        "... with network.display-port naming host-a and the range" || diag "$out"
out=$(mig_migrate b "$p" "$(mig_dest a)" 1 wait b true 2>&1)
like "$out" "display port" "Migrate b -> a is refused for the display port" || diag "$out"
is "$(mig_state b "$p")" running/migrated "... the guest still runs on b"
kill "$squat" 2>/dev/null
wait "$squat" 2>/dev/null
out=$(mig_migrate b "$p" "$(mig_dest a)" 1 wait b true)
like "$out" '^o "/org/vmigrate/Migrate1/job/[0-9]+"$' "with the ports free again, Migrate b -> a completes" || diag "$out"
is "$(uri_of vnc <<<"$(mig_displays a "$p")")" "vnc://host-a:5910" "the guest has the range's first port on a again (no port kept by the failed attempt)"
ok "wait_until 10 eval '[ -z \"\$(display_ports b)\" ]'" "host-b listens on no display port any more"
mig_check_clean b "$uuid" "after leaving b"
hosts_finish
