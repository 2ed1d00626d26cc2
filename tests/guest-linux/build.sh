#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the Linux test guest from Debian packages only:
#
#     tests/guest-linux/build.sh OUTDIR
#
# OUTDIR/vmlinuz     the kernel of the package linux-image-amd64 depends on
# OUTDIR/initrd.img  gzip'd newc cpio: busybox-static, ./init (this dir),
#                    the virtio/ATA driver modules and their dependencies
#                    taken from the same kernel package, and qemu-ga from
#                    qemu-guest-agent with the libraries it links
# OUTDIR/info        KEY=VALUE lines: release, packages, sizes, what was loaded
#
# The packages are fetched with `apt-get download` into OUTDIR/debs and
# kept: a second run with the same package versions, init and build.sh
# does nothing (OUTDIR/stamp). Concurrent runs (two tests of one meson run)
# serialise on OUTDIR/.lock. Nothing is installed on the machine and
# nothing but Debian's archive is used.
#
# Exit status: 0 built or up to date; 77 a prerequisite is missing (the
# reason is printed on a line "SKIP: ..."), e.g. no apt or the archive is
# unreachable; anything else is a build error.
#
# Environment:
#   VMIGRATE_GUEST_KERNEL_PACKAGE  the metapackage (default linux-image-amd64)
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
[[ $# -eq 1 ]] || {
        echo "usage: $0 OUTDIR" >&2
        exit 2
}
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

skip() {
        echo "SKIP: $*"
        exit 77
}
die() {
        echo "build.sh: error: $*" >&2
        exit 1
}
log() {
        echo "build.sh: $*" >&2
}

for tool in apt-get apt-cache dpkg-deb tar gzip cpio flock sha256sum; do
        command -v "$tool" >/dev/null || {
                case $tool in
                cpio) skip "cpio not installed (Debian package cpio; tools/install-deps.sh installs it)" ;;
                *) skip "$tool not found: the Linux test guest is built from Debian packages with apt and dpkg" ;;
                esac
        }
done

exec 9>"$out/.lock"
flock 9

t_start=$(date +%s%N)
meta=${VMIGRATE_GUEST_KERNEL_PACKAGE:-linux-image-amd64}
# The driver modules the guest loads, in any order (dependencies are
# found in the modules' own .modinfo and loaded first): PCI virtio
# transport and devices, and the PIIX IDE controller of -machine pc with
# the SCSI disk driver libata needs for ATA disks.
wanted_modules=(virtio_pci virtio_blk virtio_net virtio_console virtio_rng ata_piix sd_mod)

updated=0
# apt_update_once: the machine's package lists may predate the archive
# (a security update removes the old kernel from the pool): refresh them
# once, as root, before giving up.
apt_update_once() {
        [[ $updated = 0 && $(id -u) = 0 ]] || return 1
        updated=1
        log "apt-get update (package lists missing or stale)"
        apt-get update -qq >&2 || return 1
}

# candidate PKG: the version apt-get download would fetch.
candidate() {
        apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n1
}

# kernel_package: the versioned kernel package the metapackage depends on.
kernel_package() {
        apt-cache depends "$meta" 2>/dev/null |
                awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

kpkg=$(kernel_package)
if [[ -z "$kpkg" ]] && apt_update_once; then
        kpkg=$(kernel_package)
fi
[[ -n "$kpkg" ]] || skip "apt knows no kernel package behind '$meta' (no Debian package lists: run apt-get update)"
kver=$(candidate "$kpkg")
bbver=$(candidate busybox-static)
gaver=$(candidate qemu-guest-agent)
[[ -n "$kver" && -n "$bbver" && -n "$gaver" ]] || skip "apt has no candidate for $kpkg, busybox-static or qemu-guest-agent"

# fetch PKG VERSION: prints the path of PKG's .deb at VERSION in
# OUTDIR/debs, downloading it unless it is there already.
fetch() {
        local pkg=$1 ver=$2 f
        mkdir -p "$out/debs"
        for f in "$out/debs/${pkg}_"*.deb; do
                [[ -e "$f" ]] || continue
                if [[ $(dpkg-deb -f "$f" Version) == "$ver" ]]; then
                        echo "$f"
                        return 0
                fi
                rm -f "$f" # an older version
        done
        local tmp
        tmp=$(mktemp -d "$out/debs/.dl.XXXXXX")
        # Sandbox user root: apt's _apt user cannot write into a build dir.
        if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver") >"$tmp.log" 2>&1; then
                if apt_update_once; then
                        rm -rf "$tmp"
                        fetch "$pkg" "$(candidate "$pkg")"
                        return
                fi
                cat "$tmp.log" >&2
                rm -rf "$tmp" "$tmp.log"
                skip "apt-get download $pkg=$ver failed (is Debian's archive reachable?)"
        fi
        rm -f "$tmp.log"
        f=$(echo "$tmp"/*.deb)
        [[ -f "$f" ]] || die "apt-get download $pkg left no .deb"
        mv "$f" "$out/debs/"
        rmdir "$tmp"
        echo "$out/debs/${f##*/}"
}

key=$(
        echo "kernel=$kpkg=$kver busybox=$bbver qemu-guest-agent=$gaver modules=${wanted_modules[*]}"
        sha256sum "$src/init" "$src/build.sh" | cut -d' ' -f1
)
if [[ -f "$out/stamp" && "$(cat "$out/stamp")" == "$key" && -f "$out/vmlinuz" && -f "$out/initrd.img" && -f "$out/info" ]]; then
        log "up to date: $kpkg $kver, busybox-static $bbver"
        exit 0
fi
rm -f "$out/stamp"

log "fetching $kpkg $kver, busybox-static $bbver, qemu-guest-agent $gaver"
kdeb=$(fetch "$kpkg" "$kver")
bbdeb=$(fetch busybox-static "$bbver")
gadeb=$(fetch qemu-guest-agent "$gaver")
t_fetched=$(date +%s%N)

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the kernel, its release and the module paths in the package.
# Decompressed once (~400 MB): tar then seeks in the file, where every
# look into the .deb would decompress all of it again.
ktar=$work/kernel.tar
dpkg-deb --fsys-tarfile "$kdeb" >"$ktar"
tar -x -f "$ktar" -C "$work" --wildcards './boot/vmlinuz-*' './lib/modules/*/modules.builtin'
vmlinuz=$(echo "$work"/boot/vmlinuz-*)
[[ -f "$vmlinuz" ]] || die "$kdeb has no /boot/vmlinuz-*"
release=${vmlinuz##*/vmlinuz-}
moddir=lib/modules/$release

# name (dashes as underscores, as the kernel names modules) -> path in the
# package; .ko, or .ko.xz/.ko.zst on kernels that compress modules.
declare -A modpath=()
while read -r p; do
        n=${p##*/}
        n=${n%%.ko*}
        modpath[${n//-/_}]=${p#./}
done < <(tar -t -f "$ktar" | grep -E '\.ko(\.xz|\.zst)?$')
[[ ${#modpath[@]} -gt 0 ]] || die "$kdeb has no kernel modules"
declare -A builtin=()
while read -r p; do
        n=${p##*/}
        n=${n%.ko}
        builtin[${n//-/_}]=1
done <"$work/$moddir/modules.builtin"

# Resolve dependencies: extract what is needed, read each module's
# "depends=" from its .modinfo, repeat until nothing new is needed.
declare -A deps=() have=()
todo=()
for m in "${wanted_modules[@]}"; do
        if [[ -n ${builtin[$m]:-} ]]; then
                log "$m is built into $release"
        elif [[ -z ${modpath[$m]:-} ]]; then
                die "$kpkg has no module $m"
        else
                todo+=("$m")
        fi
done
while [[ ${#todo[@]} -gt 0 ]]; do
        paths=()
        for m in "${todo[@]}"; do paths+=("./${modpath[$m]}"); done
        tar -x -f "$ktar" -C "$work" "${paths[@]}"
        next=()
        for m in "${todo[@]}"; do
                f=$work/${modpath[$m]}
                case $f in
                *.xz) xz -d "$f" && f=${f%.xz} ;;
                *.zst) zstd -q -d --rm "$f" && f=${f%.zst} ;;
                esac
                have[$m]=$f
                d=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n1)
                deps[$m]=${d//,/ }
                deps[$m]=${deps[$m]//-/_}
                for dep in ${deps[$m]}; do
                        [[ -n ${have[$dep]:-} || -n ${builtin[$dep]:-} || " ${next[*]} " == *" $dep "* ]] && continue
                        [[ -n ${modpath[$dep]:-} ]] || die "module $m needs $dep, which $kpkg does not have"
                        next+=("$dep")
                done
        done
        todo=("${next[@]}")
done

# Load order: every module after its dependencies.
order=()
declare -A placed=()
place() {
        local m=$1 dep
        [[ -n ${placed[$m]:-} || -n ${builtin[$m]:-} ]] && return
        placed[$m]=1
        for dep in ${deps[$m]}; do place "$dep"; done
        order+=("$m")
}
for m in "${wanted_modules[@]}"; do place "$m"; done

rm -f "$ktar"

# --- the initramfs tree
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,etc,lib/modules}
dpkg-deb --fsys-tarfile "$bbdeb" | tar -x -C "$work" ./bin/busybox
install -m 0755 "$work/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$src/init" "$root/init"
for m in "${order[@]}"; do
        install -m 0644 "${have[$m]}" "$root/lib/modules/$m.ko"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/load.order"

# qemu-ga is a dynamic binary: it goes in with the libraries the host's
# loader resolves for it (ldd), which are Debian's own (the host is
# Debian) and at their own paths. Without one of them the guest is built
# without the agent and says why (agent= in OUTDIR/info).
agent=yes
dpkg-deb --fsys-tarfile "$gadeb" | tar -x -C "$work" ./usr/sbin/qemu-ga
libs=$(ldd "$work/usr/sbin/qemu-ga" 2>&1) || libs="ldd failed: $libs"
if grep -q 'not found\|ldd failed' <<<"$libs"; then
        agent="no: $(grep 'not found\|ldd failed' <<<"$libs" | tr -s ' \t\n' ' ')"
        log "qemu-ga left out, $agent"
else
        install -D -m 0755 "$work/usr/sbin/qemu-ga" "$root/usr/sbin/qemu-ga"
        # "name => /path (addr)" and the loader's "/path (addr)".
        for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs"); do
                install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
        done
fi
echo "$kpkg=$kver" >"$root/etc/vmigrate-guest-kernel"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
        cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
        gzip -9 -n >"$work/initrd.img"
install -m 0644 "$vmlinuz" "$work/vmlinuz"

t_end=$(date +%s%N)
cat >"$work/info" <<EOF
release=$release
kernel_package=$kpkg
kernel_version=$kver
busybox_version=$bbver
modules=${order[*]}
vmlinuz_bytes=$(stat -c %s "$work/vmlinuz")
initrd_bytes=$(stat -c %s "$work/initrd.img")
qemu_guest_agent_version=$gaver
agent=$agent
debs_bytes=$(($(stat -c %s "$kdeb") + $(stat -c %s "$bbdeb") + $(stat -c %s "$gadeb")))
fetch_ms=$(((t_fetched - t_start) / 1000000))
build_ms=$(((t_end - t_start) / 1000000))
EOF
mv -f "$work/vmlinuz" "$work/initrd.img" "$work/info" "$out/"
echo "$key" >"$out/stamp"
log "built $release in $(((t_end - t_start) / 1000000)) ms: $(tr '\n' ' ' <"$out/info")"
