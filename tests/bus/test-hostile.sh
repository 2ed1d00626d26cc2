#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile and wrong input: every refusal has a specific error whose message
# names what is wrong, nothing is defined by a refused call, and the daemon
# survives all of it (same pid at the end).
. "$(dirname "$0")/lib.sh"

vm_setup 0

INVALID=$VM_ERROR.InvalidXML
U1=33333333-4444-4555-8666-777777777777
U2=44444444-5555-4666-8777-888888888888

define_refused() { # DESC ERROR REGEX XML
        vm_expect_error root "$1" "$2" "$3" \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$4"
}
create_refused() { # DESC ERROR REGEX XML
        vm_expect_error root "$1" "$2" "$3" \
                call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" CreateXML s "$4"
}
with_memory() { vm_domain_xml "${3:-m}" | sed "s|<memory unit=\"MiB\">512</memory>|<memory unit=\"$1\">$2</memory>|"; }
with_name() { vm_domain_xml "$1"; }

vm_expect_ok root "the service starts" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
pid=$(vm_daemon_pid)
ok $? "daemon pid $pid"

# --- documents refused by the parser or the schema
define_refused "not well-formed XML" "$INVALID" . '<domain type="test"><name>x</name>'
define_refused "empty document" "$INVALID" . ''
define_refused "not a domain document" "$INVALID" 'domain' '<network><name>x</name></network>'
define_refused "an unknown element is named" "$INVALID" 'bogus' \
        "$(vm_domain_xml x | sed 's|</domain>|<bogus/></domain>|')"
define_refused "an unknown attribute is named" "$INVALID" 'frobnicate' \
        "$(vm_domain_xml x | sed 's|<vcpu>|<vcpu frobnicate="1">|')"
define_refused "a missing name is reported" "$INVALID" 'name' \
        "$(vm_domain_xml x | grep -v '<name>')"
define_refused "a bad memory unit is named" "$INVALID" 'memory|unit|parsecs' "$(with_memory parsecs 512)"
define_refused "memory 0 is refused" "$INVALID" 'memory' "$(with_memory MiB 0)"
define_refused "memory -5 is refused" "$INVALID" 'memory' "$(with_memory MiB -5)"
define_refused "memory that overflows 64 bits is refused" "$INVALID" 'memory' "$(with_memory KiB 18446744073709551616)"
define_refused "memory that overflows in bytes is refused" "$INVALID" 'memory' "$(with_memory EiB 16)"
define_refused "memory that is not a number is refused" "$INVALID" 'memory' "$(with_memory MiB 12abc)"
define_refused "vcpu 0 is refused" "$INVALID" 'vcpu' "$(vm_domain_xml x | sed 's|<vcpu>2</vcpu>|<vcpu>0</vcpu>|')"
define_refused "a bad UUID is refused" "$INVALID" 'uuid' "$(vm_domain_xml x not-a-uuid)"
define_refused "a UUID with a bad character is refused" "$INVALID" 'uuid' \
        "$(vm_domain_xml x 33333333-4444-4555-8666-77777777777g)"
define_refused "a name with '/' is refused" "$INVALID" 'name' "$(with_name a/b)"
define_refused "an empty name is refused" "$INVALID" 'name' "$(with_name '')"
define_refused "a name with a newline is refused" "$INVALID" 'name' "$(with_name 'a&#10;b')"
define_refused "a name with a tab is refused" "$INVALID" 'name' "$(with_name 'a&#9;b')"
define_refused "a name with ESC (not even XML 1.0) is refused" "$INVALID" . "$(with_name $'a\x1bb')"
define_refused "a name of 1000 characters is refused" "$INVALID" 'name' "$(with_name "$(printf 'n%.0s' {1..1000})")"
define_refused "two name elements are refused" "$INVALID" 'name' \
        "$(vm_domain_xml x | sed 's|</domain>|<name>y</name></domain>|')"
vm_expect_error root "an unknown domain type is refused naming it" "$VM_ERROR.UnsupportedBackend" 'xen' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml x '' xen)"
create_refused "CreateXML validates like DefineXML" "$INVALID" 'bogus' \
        "$(vm_domain_xml x | sed 's|</domain>|<bogus/></domain>|')"

# Billion laughs: an entity expanding to 10^9 "lol"s. A parser that expands
# entities would eat gigabytes; the daemon must refuse it (DTDs and entities
# have no place in domain XML) quickly.
laughs='<?xml version="1.0"?>
<!DOCTYPE domain [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<domain type="test"><name>&lol9;</name><memory unit="MiB">512</memory><vcpu>1</vcpu></domain>'
start=$SECONDS
vm_expect_error root "billion laughs is refused" "$INVALID" . \
        --timeout=20 call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$laughs"
ok '[ $((SECONDS - start)) -le 3 ]' "  ... within a few seconds"

# An external entity must not be read (XXE): the name would be the file.
xxe='<?xml version="1.0"?>
<!DOCTYPE domain [ <!ENTITY x SYSTEM "file:///etc/hostname"> ]>
<domain type="test"><name>&x;</name><memory unit="MiB">512</memory><vcpu>1</vcpu></domain>'
define_refused "an external entity (XXE) is refused" "$INVALID" . "$xxe"

# A 2 MiB document (a valid domain padded with a comment): too big for a
# command-line argument, so sent with python-dbus.
big=$VM_TMP/big.xml
{
        echo '<domain type="test"><name>big</name><memory unit="MiB">512</memory><vcpu>1</vcpu><!--'
        head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'x'
        echo '--></domain>'
} >"$big"
vm_call_file root DefineXML "$big"
is "$VM_ERROR_NAME" "$INVALID" "a 2 MiB document is refused as InvalidXML"
like "$VM_ERROR_MESSAGE" '(large|size|bytes|KiB|MiB|long)' "  ... saying it is too large" ||
        diag "message: $VM_ERROR_MESSAGE"

# --- duplicates
vm_expect_ok root "define dup1" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML s "$(vm_domain_xml dup1 "$U1")"
P1=$(vm_reply_path "$VM_REPLY")
define_refused "the same name with another UUID is DomainExists" "$VM_ERROR.DomainExists" 'dup1' \
        "$(vm_domain_xml dup1 "$U2")"
define_refused "the same UUID with another name is DomainExists" "$VM_ERROR.DomainExists" "$U1|dup1" \
        "$(vm_domain_xml dup2 "$U1")"
create_refused "CreateXML with a taken name is DomainExists" "$VM_ERROR.DomainExists" 'dup1' \
        "$(vm_domain_xml dup1)"
is "$(vm_get_prop "$P1" "$VM_DOMAIN_IFACE" Name)" '"dup1"' "dup1 is unchanged"

# --- wrong arguments, objects, states
vm_expect_error root "DefineXML with an int argument is InvalidArgs" org.freedesktop.DBus.Error.InvalidArgs . \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML i 5
vm_expect_error root "DefineXML with no argument is InvalidArgs" org.freedesktop.DBus.Error.InvalidArgs . \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" DefineXML
vm_expect_error root "GetDomain with two arguments is InvalidArgs" org.freedesktop.DBus.Error.InvalidArgs . \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain ss a b
vm_expect_error root "an unknown method is UnknownMethod" org.freedesktop.DBus.Error.UnknownMethod . \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" NoSuchMethod
vm_expect_error root "GetDomain of an unknown name is NoSuchDomain naming it" "$VM_ERROR.NoSuchDomain" 'nosuch' \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s nosuch
vm_expect_error root "GetDomain of an unknown UUID is NoSuchDomain" "$VM_ERROR.NoSuchDomain" "$U2" \
        call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" GetDomain s "$U2"
vm_call_as root call "$VM_BUS_NAME" "$VM_MANAGER_PATH/domain/nosuch" "$VM_DOMAIN_IFACE" Start
like "$VM_ERROR_NAME" '^org\.freedesktop\.DBus\.Error\.Unknown(Object|Method|Interface)$' \
        "a call on a domain path that does not exist is refused by sd-bus"
vm_call_as root set-property "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" State s running
like "$VM_ERROR_NAME" '^org\.freedesktop\.DBus\.Error\.(PropertyReadOnly|AccessDenied|UnknownProperty)$' \
        "setting the State property is refused"
is "$(vm_domain_state "$P1")" '"shutoff"' "  ... and State is unchanged"

vm_expect_error root "Resume on a shut-off domain is InvalidState" "$VM_ERROR.InvalidState" 'shutoff' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Resume
vm_expect_error root "Suspend on a shut-off domain is InvalidState" "$VM_ERROR.InvalidState" 'shutoff' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Suspend
vm_expect_error root "Shutdown on a shut-off domain is InvalidState" "$VM_ERROR.InvalidState" 'shutoff' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Shutdown
vm_expect_error root "Destroy on a shut-off domain is InvalidState" "$VM_ERROR.InvalidState" 'shutoff' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Destroy
vm_expect_ok root "Start dup1" call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Start
vm_expect_error root "Resume on a running domain is InvalidState" "$VM_ERROR.InvalidState" 'running' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Resume
vm_expect_error root "Start on a running domain is InvalidState" "$VM_ERROR.InvalidState" 'running' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Start
vm_expect_ok root "Suspend dup1" call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Suspend
vm_expect_error root "Suspend on a paused domain is InvalidState" "$VM_ERROR.InvalidState" 'paused' \
        call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Suspend
vm_expect_ok root "Destroy a paused domain" call "$VM_BUS_NAME" "$P1" "$VM_DOMAIN_IFACE" Destroy
is "$(vm_domain_state "$P1")" '"shutoff"' "  ... it is shut off"

# --- it survived
is "$(vm_daemon_pid)" "$pid" "the daemon that got all this is still running (same pid)"
vm_expect_ok root "and still answers" call "$VM_BUS_NAME" "$VM_MANAGER_PATH" "$VM_MANAGER_IFACE" ListDomains
is "$VM_REPLY" "ao 1 \"$P1\"" "only the one valid domain was ever defined"
ls "$VM_TMP/state/domains" >"$VM_TMP/stored" 2>/dev/null
is "$(cat "$VM_TMP/stored")" "$U1.xml" "only its definition is stored"

vm_finish
