#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Makes the TLS credentials vmigrated's --tls-dir wants, with GnuTLS's
# certtool (package gnutls-bin), for a few hosts sharing one CA:
#
#     tools/make-tls-certs.sh [--days N] [--ca-dir DIR] OUT-DIR HOST[=ADDRESS,...]...
#
# e.g. tools/make-tls-certs.sh /tmp/pki host-a=10.0.0.1 host-b=10.0.0.2
# writes OUT-DIR/ca/ca-{cert,key}.pem (unless --ca-dir names an existing CA
# to use) and, per host, OUT-DIR/HOST/ with libvirt's file names:
#   ca-cert.pem                    the CA
#   server-cert.pem server-key.pem the host as a destination: CN and
#                                  subjectAltName DNS = HOST, IP = ADDRESS...
#   client-cert.pem client-key.pem the host as a source: CN = HOST
# Copy OUT-DIR/HOST/ to that host's /etc/pki/vmigrate/ (mode 0700, the keys
# 0600). Keep the CA's key off the hosts.
#
# --days N: validity (default 365); a negative N makes certificates that
# have already expired (for tests). Exits non-zero on any failure.
set -euo pipefail

days=365
ca_dir=
while [[ $# -gt 0 ]]; do
        case $1 in
        --days) days=$2; shift 2 ;;
        --days=*) days=${1#--days=}; shift ;;
        --ca-dir) ca_dir=$2; shift 2 ;;
        --ca-dir=*) ca_dir=${1#--ca-dir=}; shift ;;
        -h|--help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "make-tls-certs: unknown option $1" >&2; exit 2 ;;
        *) break ;;
        esac
done
if [[ $# -lt 2 ]]; then
        echo "usage: $0 [--days N] [--ca-dir DIR] OUT-DIR HOST[=ADDRESS,...]..." >&2
        exit 2
fi
command -v certtool >/dev/null || { echo "make-tls-certs: certtool not found (apt-get install gnutls-bin)" >&2; exit 1; }
out=$1
shift
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# certtool takes the validity in days from now; for an expired certificate
# it is given explicit dates in the past instead.
validity() {
        if (( days < 0 )); then
                echo "activation_date = \"$(date -u -d "$((days * 2)) days" '+%Y-%m-%d %H:%M:%S')\""
                echo "expiration_date = \"$(date -u -d "$days days" '+%Y-%m-%d %H:%M:%S')\""
        else
                echo "expiration_days = $days"
        fi
}

if [[ -z "$ca_dir" ]]; then
        ca_dir=$out/ca
        mkdir -p "$ca_dir"
        certtool --generate-privkey --key-type=rsa --bits=2048 --outfile "$ca_dir/ca-key.pem" 2>/dev/null
        { echo 'cn = "vmigrate test CA"'; echo ca; echo cert_signing_key; validity; } >"$tmp/ca.info"
        certtool --generate-self-signed --load-privkey "$ca_dir/ca-key.pem" --template "$tmp/ca.info" \
                --outfile "$ca_dir/ca-cert.pem" 2>/dev/null
fi

for spec in "$@"; do
        host=${spec%%=*}
        addresses=
        [[ "$spec" == *=* ]] && addresses=${spec#*=}
        dir=$out/$host
        mkdir -p "$dir"
        chmod 0700 "$dir"
        cp "$ca_dir/ca-cert.pem" "$dir/ca-cert.pem"
        {
                echo "cn = \"$host\""
                echo "dns_name = \"$host\""
                IFS=, read -r -a ips <<<"$addresses"
                for ip in "${ips[@]}"; do
                        [[ -n "$ip" ]] && echo "ip_address = \"$ip\""
                done
                echo tls_www_server
                echo encryption_key
                echo signing_key
                validity
        } >"$tmp/server.info"
        { echo "cn = \"$host\""; echo tls_www_client; echo encryption_key; echo signing_key; validity; } \
                >"$tmp/client.info"
        for side in server client; do
                (umask 077 && certtool --generate-privkey --key-type=rsa --bits=2048 --outfile "$dir/$side-key.pem" 2>/dev/null)
                certtool --generate-certificate --load-privkey "$dir/$side-key.pem" \
                        --load-ca-certificate "$ca_dir/ca-cert.pem" --load-ca-privkey "$ca_dir/ca-key.pem" \
                        --template "$tmp/$side.info" --outfile "$dir/$side-cert.pem" 2>/dev/null
        done
done
