#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Timestamps of vmigrate's migration phases, for bench/migrate-bench.sh.

    phase-log.py LABEL=BUS_ADDRESS...

Listens on each bus for PropertiesChanged of org.vmigrate.Migrate1 job
objects and prints, one line each, as it happens:

    <unix time ns> <label> <job path> <phase>

Runs until killed. Uses python3-gi (Debian's /usr/bin/python3).
"""

import sys
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

JOB_IFACE = "org.vmigrate.Migrate1.Job"


def main():
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    conns = []
    for arg in sys.argv[1:]:
        label, address = arg.split("=", 1)
        flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)

        def on_signal(conn, sender, path, iface, member, params, label=label):
            changed_iface, changed, _ = params.unpack()
            if changed_iface == JOB_IFACE and "Phase" in changed:
                print(f"{time.time_ns()} {label} {path} {changed['Phase']}", flush=True)

        conn.signal_subscribe(
            None, "org.freedesktop.DBus.Properties", "PropertiesChanged", None, None,
            Gio.DBusSignalFlags.NONE, on_signal,
        )
        conns.append(conn)
    # Tell the caller we are subscribed: a round trip on each bus after
    # the AddMatch calls.
    for conn in conns:
        conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
                       None, None, Gio.DBusCallFlags.NONE, 5000, None)
    print(f"{time.time_ns()} - - ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
