# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Stopping a migration at a named point (test builds' stopping points,
# service/core/test-breakpoints.h; the points are listed in the README,
# "Stopping a migration at a named point"). Source lib-hosts.sh, then this
# file, then call bp_setup before hosts_setup (or mig_setup).
#
#   bp_setup                  every daemon gets VMIGRATE_TEST_BREAKPOINTS_DIR
#                             (HOSTDIR/bp); skips the test when vmigrated was
#                             built without them (meson -Dtest_hooks)
#   bp_arm HOST POINT         the next migration to reach POINT on HOST stops
#   bp_wait HOST POINT SECS   waits until it has stopped there
#   bp_release HOST POINT     lets it go on
#   bp_reached HOST POINT     whether it is stopped there now
#   bp_clear HOST             removes what is left (arms never reached, points
#                             a killed daemon held)

bp_setup() {
        local bin=$VMIGRATE_BUILD_ROOT/service/vmigrated
        grep -q -a VMIGRATE_TEST_BREAKPOINTS_DIR "$bin" ||
                skip_all "$bin has no test breakpoints (built with -Dtest_hooks=disabled or a plain/release buildtype)"
        HOSTS_DAEMON_ENV="${HOSTS_DAEMON_ENV:-} VMIGRATE_TEST_BREAKPOINTS_DIR=@HOSTDIR@/bp"
}

_bp_dir() {
        local d
        d=$(host_path "$1" dir)/bp
        mkdir -p "$d" && echo "$d"
}

bp_arm() {
        touch "$(_bp_dir "$1")/$2.arm"
}

bp_reached() {
        [ -e "$(_bp_dir "$1")/$2.reached" ]
}

bp_wait() {
        wait_until "$3" bp_reached "$1" "$2"
}

bp_release() {
        touch "$(_bp_dir "$1")/$2.release"
}

bp_clear() {
        # .reached too: a daemon killed while held never removes its own.
        rm -f "$(_bp_dir "$1")"/*.arm "$(_bp_dir "$1")"/*.release "$(_bp_dir "$1")"/*.reached
}
