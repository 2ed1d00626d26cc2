#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# call-file.py BUS-NAME PATH INTERFACE METHOD FILE: calls METHOD(s) with the
# contents of FILE on the system bus (DBUS_SYSTEM_BUS_ADDRESS), for strings
# too long for a command-line argument. Prints "reply <value>" or
# "error <D-Bus error name> <message>"; exits 0 on reply, 1 on error.
import sys

import dbus

name, path, iface, method, file = sys.argv[1:6]
with open(file, encoding="utf-8") as f:
    text = f.read()
bus = dbus.SystemBus()
try:
    obj = bus.get_object(name, path)
    reply = obj.get_dbus_method(method, iface)(dbus.String(text), timeout=60)
except dbus.exceptions.DBusException as e:
    print("error", e.get_dbus_name(), e.get_dbus_message())
    sys.exit(1)
print("reply", reply)
