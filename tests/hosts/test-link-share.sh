#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sharing host a's link (OutgoingBandwidthMbps=800: 100 MB/s) among the
# migrations leaving it, with the test backend, whose stream runs at
# exactly the bandwidth it is given (GetJobStats "bandwidth"): alone a
# migration has no share imposed; two share 50/50; a third capped by its
# caller at 10 MB/s keeps its cap and the others share the rest (45 each);
# as migrations end the shares grow back; a migration that shared the
# link leaves no link-speed record for DryRun.
. "$(dirname "$0")/lib-hosts.sh"
. "$(dirname "$0")/lib-migrate.sh"

HOSTS_DAEMON_ARGS="--outgoing-bandwidth=800 --max-outgoing-migrations=4 --max-incoming-migrations=4"
mig_setup a b
dest=$(mig_dest b)

# bw HOST PATH: the running job's bandwidth (bytes/s) from GetJobStats.
bw() {
        mig_dom "$1" "$2" GetJobStats | grep -o '"bandwidth" t [0-9]*' | head -n1 | awk '{ print $3 }'
}
# wait_bw PATH VALUE: until the job of PATH on a streams at VALUE (a
# share may get one byte/s more: the remainder of the division).
wait_bw() {
        wait_until 10 eval "v=\$(bw a $1); [ -n \"\$v\" ] && [ \"\$v\" -ge $2 ] && [ \"\$v\" -le $(($2 + 1)) ]"
}

declare -A p
for n in m1 m2 m3; do
        p[$n]=$(mig_define a "$(mig_test_xml "$n" 65536)") && mig_dom a "${p[$n]}" Start >/dev/null
        ok $? "a 64 GiB test domain $n runs on a"
done

like "$(mig_migrate a "${p[m1]}" "$dest")" '^o ' "m1 leaves alone"
ok "wait_bw ${p[m1]} 1073741824" "alone, m1 has no share imposed (the test backend's 1 GiB/s)"
like "$(mig_migrate a "${p[m2]}" "$dest")" '^o ' "m2 leaves too"
ok "wait_bw ${p[m1]} 50000000 && wait_bw ${p[m2]} 50000000" "m1 and m2 share the 100 MB/s: 50 MB/s each"
like "$(mig_migrate a "${p[m3]}" "$dest" 1 bandwidth t 10000000)" '^o ' "m3 leaves, capped by its caller at 10 MB/s"
ok "wait_bw ${p[m3]} 10000000" "m3 keeps its cap of 10 MB/s"
ok "wait_bw ${p[m1]} 45000000 && wait_bw ${p[m2]} 45000000" "m1 and m2 share the other 90 MB/s: 45 each"
ok "mig_dom a ${p[m3]} SetMaxBandwidth tb 80000000 false >/dev/null" "m3's caller raises its cap to 80 MB/s"
ok "wait_bw ${p[m3]} 33333333 && wait_bw ${p[m1]} 33333333 && wait_bw ${p[m2]} 33333333" \
        "now above its share: three equal shares (33.3 MB/s)"
ok "mig_dom a ${p[m2]} AbortJob >/dev/null" "m2 is cancelled"
ok "wait_bw ${p[m1]} 50000000 && wait_bw ${p[m3]} 50000000" "m1 and m3 get 50 MB/s each"
ok "mig_dom a ${p[m3]} AbortJob >/dev/null" "m3 is cancelled"
ok "wait_bw ${p[m1]} 1073741824" "m1 alone again: no share imposed"
ok "mig_dom a ${p[m1]} AbortJob >/dev/null" "m1 is cancelled"
ok "wait_until 20 eval '[ -z \"\$(mig_running_jobs a)\" ]'" "no job left running"
ok "grep -q 'sharing the link' '$(host_path a log)'" "the log says when a migration shares the link"
is "$(find "$(host_path a state)/links" -type f 2>/dev/null | wc -l)" 0 "no link speed was recorded"

hosts_finish
