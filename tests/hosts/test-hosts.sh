#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The multi-host fixture itself: two hosts with their own buses, daemons,
# state and addresses; names, shared and private storage, shaping, link
# faults, ssh between hosts, and a teardown (also on SIGTERM) that leaves
# nothing behind.
. "$(dirname "$0")/lib-hosts.sh"

here=$(cd "$(dirname "$0")" && pwd)
uuid_re='^s "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$'

mgr_prop() { # ADDRESS-ARGS... PROP
        busctl --no-pager "${@:1:$#-1}" get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" \
                "$VM_MANAGER_IFACE" "${!#}"
}

hosts_setup 2

# --- each host has its own bus, polkitd and vmigrated
uuid_a=$(host_exec a busctl --no-pager get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" \
        "$VM_MANAGER_IFACE" HostUUID)
like "$uuid_a" "$uuid_re" "host a's vmigrated answers on its own bus (HostUUID)"
uuid_b=$(host_exec b busctl --no-pager get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" \
        "$VM_MANAGER_IFACE" HostUUID)
like "$uuid_b" "$uuid_re" "host b's vmigrated answers on its own bus (HostUUID)"
isnt "$uuid_a" "$uuid_b" "the two hosts have different host UUIDs (separate state dirs)"
is "$(cat "$(host_path a state)/host-uuid")" "$(sed -E 's/^s "(.*)"$/\1/' <<<"$uuid_a")" \
        "host a's UUID lives in its state dir, seen from outside at host_path a state"
is "$(host_exec a busctl --no-pager get-property "$VM_BUS_NAME" "$VM_MANAGER_PATH" \
        "$VM_MANAGER_IFACE" Hostname)" 's "host-a"' "host a's vmigrated reports hostname host-a"
is "$(host_exec b env -u DBUS_SYSTEM_BUS_ADDRESS busctl --no-pager get-property \
        "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" HostUUID)" "$uuid_b" \
        "inside host b the default system bus path (/run/dbus) is b's own bus"
is "$(mgr_prop --address="$(host_bus_address b)" HostUUID)" "$uuid_b" \
        "host_bus_address b works from the root namespace"
is "$(host_exec a busctl --no-pager --address="$(host_bus_address b)" get-property \
        "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" HostUUID)" "$uuid_b" \
        "from inside host a, host b's bus socket path reaches b's vmigrated"
out=$(host_exec a busctl --no-pager call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus NameHasOwner s org.freedesktop.PolicyKit1)
is "$out" "b true" "host a's bus has its own polkitd"

pid_a=$(host_daemon_pid a)
ok $? "host a's vmigrated has a pid ($pid_a)"
pid_b=$(host_daemon_pid b)
isnt "$pid_a" "$pid_b" "each host runs its own vmigrated ($pid_a, $pid_b)"
is "$(stat -L -c %i "/proc/$pid_a/ns/net")" "$(stat -L -c %i "/run/netns/$(host_netns a)")" \
        "host a's vmigrated runs in host a's network namespace"
isnt "$(readlink "/proc/$pid_a/ns/mnt")" "$(readlink /proc/self/ns/mnt)" \
        "host a's vmigrated runs in a mount namespace of its own"

# --- names and addresses
like "$(host_exec a getent hosts host-b)" "^$(host_ip b)[[:space:]]+host-b" \
        "host-b resolves to b's address from host a"
is "$(host_exec b hostname)" host-b "host b's hostname is host-b"
host_exec a ping -c1 -W2 host-b >/dev/null
ok $? "host a can ping host-b by name"
host_exec b ping -c1 -W2 host-a >/dev/null
ok $? "host b can ping host-a by name"
root_addrs=$(ip -o addr show)
unlike "$root_addrs" "$HOSTS_SUBNET\\." "the test subnet does not exist in the root namespace"

# --- storage
host_exec a sh -c 'echo private >/srv/vmigrate/images/only-on-a.img'
ok $? "a file can be created in host a's /srv/vmigrate/images"
ok "host_exec a test -f /srv/vmigrate/images/only-on-a.img" "host a sees its image"
ok "! host_exec b test -e /srv/vmigrate/images/only-on-a.img" "host b does not see host a's image"
ok "test -f '$(host_path a images)/only-on-a.img'" "host_path a images shows it from outside"
host_exec a sh -c 'echo shared >/srv/vmigrate/shared/disk.img'
is "$(host_exec b cat /srv/vmigrate/shared/disk.img 2>&1)" shared \
        "a file written to /srv/vmigrate/shared on host a is read on host b"
ok "! test -e /srv/vmigrate" "nothing appears under /srv in the root namespace"

# --- shaping: a bounded transfer from a to b, unshaped and at 100 Mbit/s
xfer() { # PORT BYTES -> seconds on stdout
        local port=$1 bytes=$2 t got srv
        host_exec b /usr/bin/python3 "$here/xfer.py" serve "$port" >"$HOSTS_RUN/xfer.out" 2>&1 &
        srv=$!
        wait_until 10 eval "ip netns exec $(host_netns b) ss -Hltn 'sport = :$port' | grep -q LISTEN" ||
                { diag "receiver did not listen"; kill "$srv"; return 1; }
        t=$(host_exec a /usr/bin/python3 "$here/xfer.py" send host-b "$port" "$bytes") ||
                { kill "$srv"; return 1; }
        wait "$srv" || return 1
        got=$(cat "$HOSTS_RUN/xfer.out")
        [ "$got" = "$bytes" ] || { diag "receiver got '$got' bytes, expected $bytes"; return 1; }
        echo "$t"
}
bytes=$((20 * 1000 * 1000))
t_free=$(xfer 5001 "$bytes")
ok $? "unshaped transfer of 20 MB from a to b (${t_free} s)"
link_shape a --rate 100mbit
ok $? "link_shape a --rate 100mbit"
if hosts_have_netem; then
        like "$(ip netns exec "$(hosts_switch_netns)" tc qdisc show dev "$(host_switch_port a)")" \
                'netem.*rate 100Mbit' "host a's switch port has a netem qdisc at 100 Mbit/s"
else
        like "$(ip netns exec "$(hosts_switch_netns)" tc class show dev "$(host_switch_port a)")" \
                'htb 1:1 .*rate 100Mbit' "host a's switch port has an HTB class at 100 Mbit/s (no netem in this kernel)"
fi
is "$(ip netns exec "$(host_netns a)" tc qdisc show dev eth0 | grep -c -E 'htb|netem')" 0 \
        "host a's own eth0 is not shaped (shaping lives in the switch)"
t_shaped=$(xfer 5002 "$bytes")
ok $? "shaped transfer of 20 MB from a to b (${t_shaped} s)"
ok "awk -v s='$t_shaped' -v f='$t_free' 'BEGIN { exit !(s >= 1.3 && s >= 3 * f) }'" \
        "100 Mbit/s shaping slows 20 MB to >= 1.3 s and >= 3x unshaped (${t_shaped} s vs ${t_free} s)"
ok "awk -v s='$t_shaped' 'BEGIN { exit !(s < 4.0) }'" \
        "the shaped transfer is not far slower than 100 Mbit/s allows (${t_shaped} s < 4 s)"
# The other direction of a's cable: b sends to a.
host_exec a /usr/bin/python3 "$here/xfer.py" serve 5004 >"$HOSTS_RUN/xfer-rev.out" 2>&1 &
srv=$!
ok "wait_until 10 eval \"ip netns exec $(host_netns a) ss -Hltn 'sport = :5004' | grep -q LISTEN\"" \
        "receiver on host a listens"
t_rev=$(host_exec b /usr/bin/python3 "$here/xfer.py" send host-a 5004 "$bytes")
wait "$srv"
ok "awk -v s='$t_rev' -v f='$t_free' 'BEGIN { exit !(s >= 1.3 && s >= 3 * f) }'" \
        "the shaping also holds for traffic to host a (b -> a: ${t_rev} s)"
link_clear a
t_clear=$(xfer 5003 "$bytes")
ok "awk -v s='$t_shaped' -v c='$t_clear' 'BEGIN { exit !(c > 0 && 3 * c <= s) }'" \
        "link_clear removes the limit (${t_clear} s)"

if hosts_have_netem; then
        link_shape a --delay 40ms
        rtt=$(host_exec a ping -c1 -W3 host-b | sed -n -E 's/.*time=([0-9.]+) ms.*/\1/p')
        ok "awk -v r='$rtt' 'BEGIN { exit !(r >= 80) }'" \
                "--delay 40ms on a's link delays both directions (ping rtt ${rtt} ms >= 80 ms)"
        link_clear a
else
        out=$(link_shape a --delay 40ms 2>&1)
        isnt $? 0 "without sch_netem, link_shape --delay fails"
        like "$out" "needs sch_netem" "... and says that the kernel lacks netem"
        link_clear a
fi

# 50% loss each way: a round trip survives with probability 1/4 (of 200:
# mean 50, sd ~6).
link_shape a --loss 50%
ok $? "link_shape a --loss 50%"
got=$(host_exec a ping -q -n -c 200 -i 0.002 -W 0.5 host-b | sed -n -E 's/.* ([0-9]+) received.*/\1/p')
ok "[ '${got:-x}' -ge 20 ] && [ '$got' -le 85 ]" "with 50% loss each way, ${got:-?} of 200 pings come back (expected 20-85)"
link_clear a
ok "host_exec a ping -q -c 20 -i 0.002 -W 1 host-b >/dev/null" "after link_clear all pings come back"

out=$(link_shape a --rate 100mbps 2>&1)
isnt $? 0 "link_shape refuses a bad rate"
like "$out" "bad --rate '100mbps'" "... and says which value is wrong"
out=$(link_shape a --speed 1 2>&1)
like "$out" "unknown option '--speed'" "link_shape names an unknown option"
out=$(host_exec nosuch true 2>&1)
isnt $? 0 "host_exec refuses an unknown host"
like "$out" "no host 'nosuch'" "... and names it"

# --- link faults
link_down b
ok "! host_exec a ping -c1 -W1 host-b >/dev/null" "after link_down b, host a cannot ping host-b"
ok "! host_exec b ping -c1 -W1 host-a >/dev/null" "... nor host b host-a"
link_up b
ok $? "link_up b"
ok "wait_until 10 eval 'host_exec a ping -c1 -W1 host-b >/dev/null'" \
        "after link_up b, host a can ping host-b again"

# --- ssh between hosts (busctl --host, ssh:// destinations)
if command -v sshd >/dev/null && command -v systemd-stdio-bridge >/dev/null; then
        host_start_sshd b
        ok $? "sshd runs on host b"
        out=$(host_exec a ssh host-b hostname 2>&1)
        is "$out" host-b "root on host a logs in to host-b by ssh with the run's key"
        out=$(host_exec a busctl --no-pager --host=root@host-b get-property "$VM_BUS_NAME" \
                "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" HostUUID 2>&1)
        is "$out" "$uuid_b" "busctl --host=root@host-b from host a reaches b's vmigrated"
else
        diag "sshd or systemd-stdio-bridge missing: ssh checks not run"
fi

# --- teardown leaves nothing
# A process the fixture did not start and that left its session (like a
# QEMU the daemon spawned): only the namespace sweep can find it.
stray_sleep() { # the pid of a "sleep 600" inside one of this run's namespaces
        local p
        for p in $(_hosts_ns_pids $(cat "$HOSTS_RUN/inodes")); do
                [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "sleep 600 " ] && echo "$p"
        done
}
host_exec a setsid -f sleep 600
ok "wait_until 5 eval '[ -n \"\$(stray_sleep)\" ]'" "a detached process runs inside host a"
hosts_check_daemon_logs
run=$HOSTS_RUN
hosts_teardown
ok $? "hosts_teardown succeeds (${_hosts_teardown_ms} ms)"
is "$(hosts_leftovers)" "" "nothing is left: no namespaces, processes, mounts or run dir"
is "$(ip netns list | grep -c "^vmh-$_hosts_last_id-")" 0 "ip netns list has none of this run's namespaces"
ok "! test -e '$run'" "the run dir is gone"

# --- SIGTERM, as meson sends on a timeout: TERM to the process group, KILL
# half a second later; the detached reaper must still clean up.
info=$(mktemp /tmp/vmh-sigterm-test.XXXXXX)
setsid bash -c '
        . "$1/lib-hosts.sh"
        hosts_setup 1 >/dev/null
        host_exec a setsid -f sleep 600
        { echo "$HOSTS_RUN $HOSTS_ID"; cat "$HOSTS_RUN/inodes"; } >"$2.tmp"
        mv "$2.tmp" "$2"
        while :; do sleep 0.1; done
' sh "$here" "$info" >"$info.log" 2>&1 &
victim=$!
ok "wait_until 30 test -s '$info'" "a second test program set up its host" ||
        diag "its output: $(cat "$info.log")"
rm -f "$info.log"
read -r v_run v_id <"$info"
mapfile -t v_inodes < <(tail -n +2 "$info")
rm -f "$info"
v_ticks=$(_hosts_ticks)
kill -TERM -- "-$victim"
for _ in 1 2 3 4 5 6 7 8 9 10; do # meson's 0.5 s grace
        kill -0 "$victim" 2>/dev/null || break
        sleep 0.05
done
kill -KILL -- "-$victim" 2>/dev/null
wait "$victim" 2>/dev/null
v_left() {
        ip netns list | grep "^vmh-$v_id-"
        # Not a later process in a namespace that reuses a number of its.
        _hosts_started_before "$v_ticks" $(_hosts_ns_pids "${v_inodes[@]}")
        [ -e "$v_run" ] && echo "$v_run"
}
ok "wait_until 30 eval '[ -z \"\$(v_left)\" ]'" \
        "after SIGTERM + SIGKILL of its process group, nothing of that run is left"
[ -n "$(v_left)" ] && diag "left: $(v_left)"
diag "reaper log: $(cat "/tmp/vmh-reap-$v_id.log" 2>/dev/null)"
rm -f "/tmp/vmh-reap-$v_id.log"

hosts_finish
