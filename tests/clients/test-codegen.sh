#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# interfaces/*.xml through every generator of gdbus-codegen, with its
# defaults and with the options the build uses: no warning (a warning is
# an annotation or a name the stock tool does not take as we meant it),
# and the generated C gives callers the file descriptors the contract
# passes (Incoming.OpenTunnel's 'h'), which with codegen's defaults it does
# only when the method says org.gtk.GDBus.C.UnixFD.
#
# Usage: test-codegen.sh GDBUS-CODEGEN FILE.xml...
set -u
codegen=$1
shift
files=("$@")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=0

result() { # STATUS DESCRIPTION [OUTPUT]
        n=$((n + 1))
        if [ "$1" = 0 ]; then
                echo "ok $n - $2"
        else
                echo "not ok $n - $2"
                [ -z "${3:-}" ] || sed 's/^/# /' <<<"$3"
        fi
}

# generate NAME OPTION...: gdbus-codegen on every file into $dir/NAME.
generate() {
        local name=$1 out status
        shift
        mkdir -p "$dir/$name"
        out=$("$codegen" --output-directory "$dir/$name" "$@" "${files[@]}" 2>&1)
        status=$?
        [ "$status" = 0 ] && [ -n "$out" ] && status=1
        result "$status" "gdbus-codegen $* succeeds without a warning" "$out"
}

generate default --interface-prefix org.vmigrate. --generate-c-code gen
generate build --interface-prefix org.vmigrate. --c-namespace Vm --glib-min-required 2.66 \
        --c-generate-autocleanup all --c-generate-object-manager --generate-c-code gen
generate docs --interface-prefix org.vmigrate. --generate-docbook doc --generate-rst rst

for h in default build; do
        decl=$(sed -n '/call_open_tunnel_sync (/,/);/p' "$dir/$h/gen.h")
        [[ $decl == *"GUnixFDList **out_fd_list"* ]]
        result $? "the OpenTunnel call generated with the $h options hands the caller the stream's file descriptor" "$decl"
done

echo "1..$n"
