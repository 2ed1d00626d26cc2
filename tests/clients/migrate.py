#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's Python example, run by tests/hosts/test-clients.sh.
"""Define a domain, start it, migrate it live to DESTINATION, follow its job
to the end and print the statistics, with nothing but Gio (python3-gi).

Usage: migrate.py DOMAIN.xml DESTINATION   (e.g. ssh://root@host-b)"""
import sys
from gi.repository import Gio, GLib

bus = Gio.bus_get_sync(Gio.BusType.SYSTEM)


def proxy(path, interface):
    return Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, 'org.vmigrate.Migrate1',
                                  path, 'org.vmigrate.Migrate1.' + interface)


manager = proxy('/org/vmigrate/Migrate1', 'Manager')
with open(sys.argv[1]) as f:
    domain = proxy(manager.DefineXML('(s)', f.read()), 'Domain')
print('domain', domain.get_object_path())
domain.Start(timeout=120000)  # replies when the guest runs
print('started')
# Replies with the job once the destination is ready; the copy goes on.
job = proxy(domain.Migrate('(sa{sv})', sys.argv[2], {}, timeout=120000), 'Job')
print('job', job.get_object_path())

loop = GLib.MainLoop()
ended = ('completed', 'failed', 'cancelled')


def on_changed(job, changed, invalidated):
    changed = changed.unpack()
    if 'Progress' in changed:
        print('progress %.3f' % changed['Progress'])
    if 'Phase' in changed:
        print('phase', changed['Phase'])
        if changed['Phase'] in ended:
            loop.quit()


# The proxy read the properties after subscribing to their changes: what
# happened since Migrate replied is in its cache, what follows in signals.
job.connect('g-properties-changed', on_changed)
phase = job.get_cached_property('Phase').unpack()
print('phase', phase)
if phase not in ended:
    loop.run()

stats = domain.GetJobStats()
for key in sorted(stats):
    print('stats', key, stats[key])
sys.exit(0 if stats['phase'] == 'completed' and stats['elapsed-ms'] > 0 else 1)
