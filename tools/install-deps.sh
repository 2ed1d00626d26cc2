#!/bin/bash
# Install everything vmigrate's build, test suite and demo need on Debian 12.
#
# Idempotent: when every package is already installed (checked with
# dpkg-query) it does no apt work at all, so it is cheap to run before every
# build, and needs root only when something is missing.
#
# QEMU comes from bookworm-backports (QEMU 10): Debian 12's own QEMU 7.2
# loses guest writes during TCG pre-copy migration (fixed upstream in 9.0),
# see NOTES-machines.md. The backports source reuses the URI of the
# machine's existing Debian source, so mirrors and snapshots keep working.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Packages from the release itself.
packages=(
        build-essential
        gcc
        meson
        ninja-build
        pkg-config
        libsystemd-dev
        libglib2.0-dev
        libglib2.0-bin
        # gdbus-codegen: the test client built on proxies generated from
        # interfaces/*.xml (tests/clients).
        libglib2.0-dev-bin
        libjson-glib-dev
        libxml2-dev
        libxml2-utils
        libgnutls28-dev
        gnutls-bin
        # The manual pages (man/*.scd), and man(1)/groff for their test.
        scdoc
        man-db
        groff-base
        dbus-daemon
        polkitd
        systemd
        python3
        python3-dbus
        python3-gi
        python3-dbusmock
        iproute2
        iputils-ping
        openssh-server
        openssh-client
        util-linux
        passwd
        valgrind
        # The Linux test guest's initramfs (tests/guest-linux/build.sh); its
        # kernel and busybox are fetched with apt-get download, not installed.
        cpio
        # <tpm><backend type='emulator'/>: the qemu backend runs swtpm per
        # guest (swtpm-tools: swtpm_setup, for whoever makes TPM state by hand).
        swtpm
        swtpm-tools
        # The hosts suite runs the daemons under the systemd unit's seccomp
        # filters (tests/hosts/unit-sandbox.py).
        python3-seccomp
        # vmigratectl report's pictures rendered to PNG by the hosts suite
        # (tests/hosts/test-report.sh).
        librsvg2-bin
        # The package suite (tools/check-deb.sh): dpkg-buildpackage with
        # dh, and a throwaway Debian 12 root to install the .deb into.
        debhelper
        mmdebstrap
        # The bash completion (shell-completion/bash) and its test.
        bash-completion
        # UEFI guests (<os firmware='efi'>): OVMF and its firmware
        # descriptors (hosts-uefi, hosts-virt-install). Not left to
        # QEMU's recommends, which a machine may not install.
        ovmf
)
# Packages taken from bookworm-backports.
backports_packages=(
        qemu-system-x86
        qemu-utils
        # SPICE (<graphics type='spice'>, <video model='qxl'>) is a module
        # of Debian's QEMU; without it vmigrate refuses both by name.
        qemu-system-modules-spice
)
# The lowest QEMU we accept from backports (see the header).
qemu_min_major=9

backports_list=/etc/apt/sources.list.d/vmigrate-bookworm-backports.list

log() {
        echo "install-deps: $*"
}

die() {
        echo "install-deps: error: $*" >&2
        exit 1
}

# Prints the packages among "$@" that are not fully installed.
missing_packages() {
        local p status
        for p in "$@"; do
                status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
                [[ "$status" == installed ]] || echo "$p"
        done
}

# Prints the installed upstream major version of qemu-system-x86, or nothing.
qemu_major() {
        local v
        v=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
        v=${v#*:}                    # drop the epoch ("1:10.0.2+ds-1~bpo12+1")
        if [[ "$v" =~ ^([0-9]+)\. ]]; then echo "${BASH_REMATCH[1]}"; fi
}

# Prints the URI of the machine's main Debian source: the one whose suites
# include plain "bookworm". deb822 files first (Debian 12's default), then
# the one-line format.
debian_uri() {
        local f uri
        local files=()
        shopt -s nullglob
        files=(/etc/apt/sources.list.d/*.sources)
        shopt -u nullglob
        for f in "${files[@]}"; do
                uri=$(awk '
                        # deb822: stanzas separated by blank lines.
                        function flush() {
                                if (uris != "" && has_bookworm && !done) {
                                        split(uris, u, /[ \t]+/)
                                        print u[1]
                                        done = 1
                                }
                                uris = ""; has_bookworm = 0; enabled = 1
                        }
                        BEGIN { enabled = 1 }
                        /^[ \t]*#/ { next }
                        /^[ \t]*$/ { flush(); next }
                        tolower($1) == "uris:" { $1 = ""; sub(/^[ \t]+/, ""); uris = $0 }
                        tolower($1) == "suites:" {
                                for (i = 2; i <= NF; i++) if ($i == "bookworm") has_bookworm = 1
                        }
                        tolower($1) == "enabled:" && tolower($2) == "no" { enabled = 0 }
                        { if (!enabled) has_bookworm = 0 }
                        END { flush() }
                ' "$f")
                if [[ -n "$uri" ]]; then
                        echo "$uri"
                        return 0
                fi
        done
        if [[ -r /etc/apt/sources.list ]]; then
                # deb [options] URI SUITE COMPONENT...
                uri=$(awk '
                        $1 != "deb" { next }
                        {
                                i = 2
                                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                                if ($(i + 1) == "bookworm") { print $i; exit }
                        }
                ' /etc/apt/sources.list)
                if [[ -n "$uri" ]]; then
                        echo "$uri"
                        return 0
                fi
        fi
        return 1
}

# True when some apt source already offers bookworm-backports.
have_backports_source() {
        local files=(/etc/apt/sources.list)
        shopt -s nullglob
        files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
        shopt -u nullglob
        local f
        for f in "${files[@]}"; do
                [[ -r "$f" ]] || continue
                grep -Eq '^[^#]*\bbookworm-backports\b' "$f" && return 0
        done
        return 1
}

command -v dpkg-query >/dev/null || die "dpkg-query not found: this script is for Debian 12"

if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        if [[ "${ID:-}" != debian || "${VERSION_ID:-}" != 12 ]]; then
                log "warning: this is ${PRETTY_NAME:-an unknown system}, not Debian 12; trying anyway"
        fi
fi

mapfile -t missing < <(missing_packages "${packages[@]}")
mapfile -t missing_bpo < <(missing_packages "${backports_packages[@]}")
major=$(qemu_major)
if [[ -n "$major" && "$major" -lt "$qemu_min_major" ]]; then
        log "qemu-system-x86 $major.x is installed; vmigrate needs >= $qemu_min_major from bookworm-backports"
        missing_bpo=("${backports_packages[@]}")
fi

if [[ ${#missing[@]} -eq 0 && ${#missing_bpo[@]} -eq 0 ]]; then
        log "all packages installed (QEMU $(dpkg-query -W -f='${Version}' qemu-system-x86)); nothing to do"
        exit 0
fi

[[ $(id -u) -eq 0 ]] || die "missing: ${missing[*]} ${missing_bpo[*]}; run me as root (apt-get needs it), e.g. sudo $0"

if [[ ${#missing_bpo[@]} -gt 0 ]] && ! have_backports_source; then
        uri=$(debian_uri) || die "found no apt source for suite 'bookworm' in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; add one, or a bookworm-backports source, by hand"
        log "adding apt source $backports_list: deb $uri bookworm-backports main"
        echo "deb $uri bookworm-backports main" > "$backports_list"
fi

log "apt-get update"
apt-get update

if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing: ${missing[*]}"
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ ${#missing_bpo[@]} -gt 0 ]]; then
        log "installing from bookworm-backports: ${missing_bpo[*]}"
        apt-get install -y --no-install-recommends -t bookworm-backports "${missing_bpo[@]}"
fi

# Make sure it worked rather than trusting apt's exit status alone.
mapfile -t still < <(missing_packages "${packages[@]}" "${backports_packages[@]}")
[[ ${#still[@]} -eq 0 ]] || die "still missing after apt-get: ${still[*]}"
major=$(qemu_major)
[[ -n "$major" && "$major" -ge "$qemu_min_major" ]] ||
        die "qemu-system-x86 is $(dpkg-query -W -f='${Version}' qemu-system-x86), need >= $qemu_min_major from bookworm-backports"

log "done (QEMU $(dpkg-query -W -f='${Version}' qemu-system-x86))"
