#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#     tools/check-deb.sh SOURCE-DIR
#
# A TAP test of the Debian package (meson test 'package-deb', suite
# 'package'; needs root). It
#   1. builds it with `dpkg-buildpackage -us -uc -b` from a copy of the
#      source tree in a temporary directory (nothing lands in the tree);
#   2. checks the .deb: every file meson installs is in it, the bus, polkit
#      and systemd files at the paths those read, QEMU among its Depends;
#   3. makes a throwaway Debian 12 root with `mmdebstrap --variant=apt`,
#      installs the .deb there with apt (dependencies resolved from the
#      archive, QEMU from bookworm-backports) and checks, in that root, that
#      the files are where the system bus, polkit and systemd look: a
#      dbus-daemon --system started there accepts the policy and lists the
#      service as activatable, activating it starts the installed vmigrated,
#      which answers; polkitd there lists the actions (pkaction); systemd
#      finds the unit.
# Step 3 needs Debian's archive: without the network its tests are reported
# as skipped, with the reason. Takes a few minutes (the package build
# compiles the tree and runs its unit suite; apt fetches what the local apt
# cache lacks). VMIGRATE_DEB_KEEP=1 keeps the temporary directory.
set -u

src=${1:?usage: $0 SOURCE-DIR}
src=$(cd "$src" && pwd) || exit 2

n=0
failed=0
ok() {
        n=$((n + 1))
        echo "ok $n - $*"
}
not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        echo "not ok $n - $*"
}
skip() {
        n=$((n + 1))
        echo "ok $n - $1 # SKIP $2"
}
diag() {
        sed 's/^/# /'
}
# check DESCRIPTION CMD...: one test; the command's output becomes diagnostics on failure.
check() {
        local what=$1 out
        shift
        if out=$("$@" 2>&1); then
                ok "$what"
        else
                not_ok "$what"
                printf '%s\n' "$out" | tail -n 40 | diag
        fi
}

PLAN=11
if [ "$(id -u)" -ne 0 ]; then
        # mmdebstrap's root mode and chroot need root (CI runs as root).
        echo "1..0 # SKIP needs root (mmdebstrap, chroot)"
        exit 0
fi
echo "1..$PLAN"
for p in dpkg-buildpackage dpkg-deb mmdebstrap meson; do
        command -v "$p" >/dev/null || {
                not_ok "$p is installed (tools/install-deps.sh installs it)"
                exit 1
        }
done

tmp=$(mktemp -d /tmp/vmigrate-deb.XXXXXX)
cleanup() {
        if [ "${VMIGRATE_DEB_KEEP:-0}" = 1 ]; then
                echo "# kept $tmp" >&2
        else
                rm -rf "$tmp"
        fi
}
trap cleanup EXIT

# ---- 1. build -------------------------------------------------------------

# The tree as git sees it (tracked files and new ones not ignored: no build
# directories), else everything but build*/.
mkdir "$tmp/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$src" && git ls-files -z --cached --others --exclude-standard |
                xargs -0 -r stat --printf '%n\0' 2>/dev/null |
                tar --null -T - -cf -) | tar -xf - -C "$tmp/src"
else
        tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$tmp/src"
fi

t0=$SECONDS
if (cd "$tmp/src" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
        ok "dpkg-buildpackage -us -uc -b builds the package ($((SECONDS - t0)) s, unit suite included)"
else
        not_ok "dpkg-buildpackage -us -uc -b builds the package"
        tail -n 60 "$tmp/build.log" | diag
        exit 1
fi
mapfile -t debs < <(ls "$tmp"/vmigrate_*.deb 2>/dev/null)
if [ "${#debs[@]}" -ne 1 ]; then
        not_ok "exactly one vmigrate_*.deb was built (found ${#debs[@]})"
        exit 1
fi
deb=${debs[0]}
echo "# built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# ---- 2. the .deb ----------------------------------------------------------

# Files and links (not directories), as absolute paths.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$tmp/deb-files"

# Every file meson installs (the package build's own build directory),
# whatever subdirectory added it: man pages, completions, configuration.
# Man pages are compressed by dh_compress.
installed_by_meson() {
        local builddir missing=0 f
        builddir=$(ls -d "$tmp"/src/obj-* 2>/dev/null | head -n1)
        [ -n "$builddir" ] || { echo "no obj-* build directory"; return 1; }
        meson introspect "$builddir" --installed |
                /usr/bin/python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin).values())))' \
                >"$tmp/meson-files" || return 1
        [ -s "$tmp/meson-files" ] || { echo "meson installs nothing?"; return 1; }
        while read -r f; do
                case $f in
                /usr/share/man/*) grep -qxF -e "$f" -e "$f.gz" "$tmp/deb-files" ;;
                *) grep -qxF "$f" "$tmp/deb-files" ;;
                esac || { echo "missing from the .deb: $f"; missing=1; }
        done <"$tmp/meson-files"
        echo "$(wc -l <"$tmp/meson-files") files installed by meson"
        return "$missing"
}
check "the .deb holds every file meson installs" installed_by_meson

# Where the system bus, polkit and systemd (Debian 12) read them.
standard_paths=(
        /usr/libexec/vmigrated
        /usr/libexec/vmigrate-tunnel
        /usr/bin/vmigratectl
        /usr/share/dbus-1/system.d/org.vmigrate.Migrate1.conf
        /usr/share/dbus-1/system-services/org.vmigrate.Migrate1.service
        /usr/share/dbus-1/interfaces/org.vmigrate.Migrate1.Manager.xml
        /usr/share/dbus-1/interfaces/org.vmigrate.Migrate1.Domain.xml
        /usr/share/dbus-1/interfaces/org.vmigrate.Migrate1.Job.xml
        /usr/share/dbus-1/interfaces/org.vmigrate.Migrate1.Evacuation.xml
        /usr/share/dbus-1/interfaces/org.vmigrate.Migrate1.Incoming.xml
        /usr/share/polkit-1/actions/org.vmigrate.migrate1.policy
        /lib/systemd/system/vmigrated.service
)
deb_paths() {
        local p bad=0
        for p in "${standard_paths[@]}"; do
                grep -qxF "$p" "$tmp/deb-files" || { echo "not in the .deb: $p"; bad=1; }
        done
        # Man pages and completions, when the tree installs them.
        while read -r p; do
                [[ $p =~ ^/usr/share/man/man[1-9]/[^/]+\.[1-9]\.gz$ ]] ||
                        { echo "man page outside /usr/share/man/manN/ or uncompressed: $p"; bad=1; }
        done < <(grep -E '/man/.*\.[1-9](\.gz)?$' "$tmp/deb-files")
        while read -r p; do
                [[ $p == /usr/share/bash-completion/completions/* ]] ||
                        { echo "completion outside /usr/share/bash-completion/completions/: $p"; bad=1; }
        done < <(grep -F 'completion' "$tmp/deb-files")
        return "$bad"
}
check "the bus policy, activation file, unit, polkit actions and interfaces are at their standard paths in the .deb" deb_paths

deb_depends() {
        local dep
        dep=$(dpkg-deb -f "$deb" Depends) || return 1
        echo "Depends: $dep"
        grep -Eq '(^|, )qemu-system-x86 \(>= ' <<<"$dep" && grep -Eq '(^|, )polkitd' <<<"$dep" &&
                grep -Eq '(^|[ ,|])dbus(,|$| )' <<<"$dep" && grep -q 'libsystemd0' <<<"$dep"
}
check "the .deb depends on QEMU (versioned), polkitd, the system bus and its shared libraries" deb_depends

# The fault tests' stopping points are for test builds only (meson
# test_hooks, off for the plain buildtype debhelper uses): the packaged
# daemon must not even know their variable's name.
deb_no_test_hooks() {
        local n
        n=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/libexec/vmigrated | grep -a -c VMIGRATE_TEST_BREAKPOINTS) || true
        [ "$n" = 0 ] || { echo "the packaged vmigrated mentions VMIGRATE_TEST_BREAKPOINTS ($n)"; return 1; }
}
check "the packaged vmigrated has no test stopping points (no VMIGRATE_TEST_BREAKPOINTS in it)" deb_no_test_hooks

# ---- 3. a throwaway root --------------------------------------------------

# This machine's apt sources for the suites wanted (a mirror or a snapshot
# keeps working), else Debian's own.
apt_uri() {
        apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk -v s="$1" '$2 == s { print $1; exit }'
}
main_uri=$(apt_uri bookworm)
main_uri=${main_uri:-http://deb.debian.org/debian/}
security_uri=$(apt_uri bookworm-security)
security_uri=${security_uri:-http://deb.debian.org/debian-security/}
host=$(sed -E 's|^[a-z]+://([^/:]+).*|\1|' <<<"$main_uri")
reachable() {
        timeout 15 bash -c "exec 3<>/dev/tcp/$host/80" 2>/dev/null
}
if ! reachable; then
        reason="no network to $host (Debian's archive): the install into a throwaway root was not tried"
        for ((i = n + 1; i <= PLAN; i++)); do skip "install into a throwaway root" "$reason"; done
        exit $((failed > 0))
fi

root=$tmp/root
# The .debs this machine already fetched (tools/install-deps.sh installed
# most of what the package needs) save downloading them again.
# mmdebstrap and apt run in a pid namespace of their own (its /proc is the
# one mounted in the root): a maintainer script there must not see this
# machine's processes. polkitd's postinst, with no systemd running, stops
# "every polkitd" with `start-stop-daemon --stop --exec
# /usr/lib/polkit-1/polkitd`, which matches by that path and so killed the
# polkitds of the test hosts running beside this test (caught with the
# kernel's signal_generate tracepoint).
t0=$SECONDS
if unshare --pid --fork --mount-proc mmdebstrap --variant=apt --mode=root --format=directory \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
        --setup-hook='find /var/cache/apt/archives -maxdepth 1 -name "*.deb" -exec cp -t "$1"/var/cache/apt/archives {} +' \
        --customize-hook="copy-in $deb /tmp" \
        --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -t bookworm-backports /tmp/$(basename "$deb")" \
        --customize-hook='chroot "$1" apt-get install -y --no-install-recommends systemd' \
        bookworm "$root" \
        "deb $main_uri bookworm main" \
        "deb $main_uri bookworm-updates main" \
        "deb $security_uri bookworm-security main" \
        "deb $main_uri bookworm-backports main" >"$tmp/mmdebstrap.log" 2>&1; then
        ok "mmdebstrap makes a Debian 12 root and apt installs the .deb there with its dependencies ($((SECONDS - t0)) s)"
else
        not_ok "mmdebstrap makes a Debian 12 root and apt installs the .deb there with its dependencies"
        tail -n 60 "$tmp/mmdebstrap.log" | diag
        exit 1
fi
echo "# QEMU in the root: $(chroot "$root" dpkg-query -W -f='${Version}' qemu-system-x86)"

# Runs a shell script inside the root, in fresh mount and pid namespaces
# with /proc, /dev and an empty /run: every process it starts (dbus-daemon,
# polkitd, vmigrated) dies with it, and no mount outlives it.
in_root() {
        unshare --mount --pid --fork --propagation private /bin/sh -c '
                root=$1; shift
                mount -t proc proc "$root/proc" &&
                mount --rbind /dev "$root/dev" &&
                mount -t tmpfs tmpfs "$root/run" &&
                mkdir -p "$root/run/dbus" && exec chroot "$root" /bin/sh -c "$@"' sh "$root" "$@"
}

root_paths() {
        local p bad=0
        for p in "${standard_paths[@]}"; do
                [ -e "$root$p" ] || { echo "missing in the root: $p"; bad=1; }
                chroot "$root" dpkg -S "$p" >/dev/null 2>&1 || { echo "$p not owned by a package"; bad=1; }
        done
        # The activation file and the unit start the installed daemon.
        grep -qx 'Exec=/usr/libexec/vmigrated' \
                "$root/usr/share/dbus-1/system-services/org.vmigrate.Migrate1.service" || { echo "activation Exec= wrong"; bad=1; }
        grep -qx 'SystemdService=vmigrated.service' \
                "$root/usr/share/dbus-1/system-services/org.vmigrate.Migrate1.service" || { echo "no SystemdService="; bad=1; }
        grep -qx 'ExecStart=/usr/libexec/vmigrated' \
                "$root/lib/systemd/system/vmigrated.service" || { echo "unit ExecStart= wrong"; bad=1; }
        chroot "$root" /usr/bin/vmigratectl --help >/dev/null || { echo "vmigratectl --help failed in the root"; bad=1; }
        return "$bad"
}
check "installed: the files at their paths, owned by the package, and the programs run" root_paths

# systemd (offline: it is not running in the root) finds the unit in its
# search path, and accepts it.
unit_found() {
        systemctl --root="$root" list-unit-files vmigrated.service --no-legend --no-pager | tee /dev/stderr |
                grep -Eq '^vmigrated\.service +static' || return 1
        in_root 'SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no vmigrated.service 2>&1 |
                grep -F vmigrated.service && exit 1; exit 0'
}
check "systemd finds vmigrated.service in the root (static: bus-activated) and systemd-analyze verify accepts it" unit_found

# The stock system bus of the root: its configuration with the package's
# policy, the activation file in its service directory. Activating the
# name runs /usr/libexec/vmigrated through dbus-daemon's launch helper
# (systemd is not running), which must take the name and answer.
bus_check() {
        in_root '
                dbus-daemon --system --nofork --nopidfile >/tmp/dbus.log 2>&1 &
                i=0; while [ ! -S /run/dbus/system_bus_socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
                if grep -E "Encountered error|Unknown|not valid" /tmp/dbus.log; then echo "dbus-daemon refused its configuration"; exit 1; fi
                names=$(dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                        org.freedesktop.DBus.ListActivatableNames) || exit 1
                echo "$names" | grep -q "\"org.vmigrate.Migrate1\"" || { echo "not activatable: $names"; exit 1; }
                reply=$(timeout 60 busctl --system get-property org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \
                        org.vmigrate.Migrate1.Manager Version) || { echo "activation failed"; cat /tmp/dbus.log; exit 1; }
                echo "Manager.Version from the activated daemon: $reply"
                pid=$(dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                        org.freedesktop.DBus.GetConnectionUnixProcessID string:org.vmigrate.Migrate1 |
                        sed -n "s/^ *uint32 //p")
                exe=$(readlink "/proc/$pid/exe")
                echo "owner of org.vmigrate.Migrate1: pid $pid, $exe"
                [ "$exe" = /usr/libexec/vmigrated ]'
}
check "the root's system bus accepts the policy, lists org.vmigrate.Migrate1 as activatable and activates the installed vmigrated" bus_check

polkit_check() {
        in_root '
                dbus-daemon --system --nofork --nopidfile >/tmp/dbus.log 2>&1 &
                i=0; while [ ! -S /run/dbus/system_bus_socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
                /usr/lib/polkit-1/polkitd --no-debug >/tmp/polkitd.log 2>&1 &
                i=0; until busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1 || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
                actions=$(pkaction) || { cat /tmp/polkitd.log; exit 1; }
                ours=$(echo "$actions" | grep "^org\.vmigrate\.") || { echo "pkaction lists no org.vmigrate action"; exit 1; }
                echo "$ours"
                want=$(sed -n "s/.*<action id=\"\([^\"]*\)\".*/\1/p" /usr/share/polkit-1/actions/org.vmigrate.migrate1.policy | sort)
                [ "$(echo "$ours" | sort)" = "$want" ] || { echo "pkaction differs from the policy file: $want"; exit 1; }'
}
check "polkitd in the root reads the actions: pkaction lists every org.vmigrate action of the policy" polkit_check

removed() {
        unshare --pid --fork --mount-proc chroot "$root" env DEBIAN_FRONTEND=noninteractive \
                apt-get purge -y vmigrate >/dev/null || return 1
        local p bad=0
        for p in "${standard_paths[@]}"; do
                [ ! -e "$root$p" ] || { echo "left after purge: $p"; bad=1; }
        done
        return "$bad"
}
check "apt-get purge removes the package's files" removed

[ "$n" -eq "$PLAN" ] || echo "# ran $n tests, planned $PLAN" >&2
exit $((failed > 0))
