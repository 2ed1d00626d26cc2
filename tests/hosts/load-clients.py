#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Many bus clients reading a migration's job while it runs, in one process.

    load-clients.py --source ADDR --source-uri URI --dest ADDR --dest-uri URI
                    --domain PATH [--clients 100] [--hz 10] [--rounds N]
                    [--bandwidth BYTES/S]

ADDR: a bus address (unix:path=...) valid here; URI: that host's
destination URI for Domain.Migrate (unix:///...). The domain runs on the
source host.

--clients separate D-Bus connections (each its own unique name) to the
source's bus, driven asynchronously by one GLib main loop, poll at --hz
each: Domain.GetJobStats and org.freedesktop.DBus.Properties.GetAll on the
job (a call of a kind is not sent again while the previous one is
unanswered). One more connection calls Manager.ListDomains in a loop, the
next call as soon as the last is answered. Every call's latency is the
time from sending it to its reply reaching the callback.

A migration is timed from the Migrate call (options: bandwidth, if given),
1 s after the previous migration ended, to the job's Finished signal. In a
loaded one the ListDomains loop runs during that second and on, and the
pollers from Migrate's reply (when the job exists: Migrate replies once
the destination is ready, before the copy) to Finished. Each migration is followed by an untimed, unloaded one back.
--rounds N: N pairs (unloaded, loaded), the order alternating, each
migration followed by one back; --rounds 0: one loaded migration only.

Prints one line per timed migration, then a JSON summary on the last line:
wall times, ratios, call counts, errors (with the first few messages),
unanswered calls, latency max/p99 (ms) overall and per method, the
pollers' timer lateness, the number of distinct unique names. Exit status
0 if every migration completed and every call was answered without error,
1 otherwise, 2 on bad usage or a failed connection.
"""
import argparse
import json
import sys
import time

import gi

gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

NAME = 'org.vmigrate.Migrate1'
MGR_PATH = '/org/vmigrate/Migrate1'
IFACE = NAME + '.'
CALL_TIMEOUT_MS = 30000


def now():
    return time.monotonic()


def connect(address):
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
             Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    # nearest rank
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


class Stats:
    def __init__(self):
        self.lat = {}         # method -> [ms]
        self.errors = []      # "method: message"
        self.pending = 0
        self.lateness = []    # ms a poller's tick came after it was due

    def record(self, method, ms, error):
        self.lat.setdefault(method, []).append(ms)
        if error is not None:
            self.errors.append('%s: %s' % (method, error))

    def summary(self):
        every = [v for vs in self.lat.values() for v in vs]
        out = {
            'calls': len(every),
            'errors': len(self.errors),
            'first-errors': self.errors[:5],
            'unanswered': self.pending,
            'max-ms': round(max(every), 2) if every else None,
            'p99-ms': round(percentile(every, 99), 2) if every else None,
            'over-100ms': sum(1 for v in every if v > 100),
            'methods': {},
            'tick-late-max-ms': round(max(self.lateness), 2) if self.lateness else None,
            'tick-late-p99-ms': round(percentile(self.lateness, 99), 2) if self.lateness else None,
        }
        for m, vs in sorted(self.lat.items()):
            out['methods'][m] = {'calls': len(vs), 'max-ms': round(max(vs), 2),
                                 'p99-ms': round(percentile(vs, 99), 2)}
        return out


def send(conn, stats, path, iface, method, params, label, done=None):
    """An asynchronous call, its latency recorded under label."""
    t0 = now()
    stats.pending += 1

    def on_reply(c, res, _data):
        error = None
        try:
            c.call_finish(res)
        except GLib.Error as e:
            error = e.message
        stats.pending -= 1
        stats.record(label, (now() - t0) * 1000, error)
        if done:
            done()

    conn.call(NAME, path, iface, method, params, None, Gio.DBusCallFlags.NONE,
              CALL_TIMEOUT_MS, None, on_reply, None)


class Poller:
    """One client: GetJobStats and the job's GetAll at hz."""

    def __init__(self, conn, stats, domain, hz):
        self.conn, self.stats, self.domain = conn, stats, domain
        self.period = 1.0 / hz
        self.job = None
        self.running = False
        self.busy = {'stats': False, 'props': False}
        self.answered = {'stats': 0, 'props': 0}

    def start(self, job, offset):
        self.job, self.running = job, True
        self.due = now() + offset
        # A tick still queued from an earlier run must not start a second
        # chain of ticks: each chain carries its generation.
        self.generation = getattr(self, 'generation', 0) + 1
        GLib.timeout_add(max(0, int(offset * 1000)), self.tick, self.generation)

    def stop(self):
        self.running = False

    def tick(self, generation):
        if not self.running or generation != self.generation:
            return False
        t = now()
        self.stats.lateness.append(max(0.0, (t - self.due) * 1000))
        self.due += self.period
        self.call('stats', self.domain, IFACE + 'Domain', 'GetJobStats', None, 'GetJobStats')
        self.call('props', self.job, 'org.freedesktop.DBus.Properties', 'GetAll',
                  GLib.Variant('(s)', (IFACE + 'Job',)), 'Job.GetAll')
        # Next tick at the due time, not a period after this one: no drift.
        GLib.timeout_add(max(0, int((self.due - now()) * 1000)), self.tick, generation)
        return False

    def call(self, kind, path, iface, method, params, label):
        if self.busy[kind]:
            return

        def done():
            self.busy[kind] = False
            self.answered[kind] += 1
        self.busy[kind] = True
        send(self.conn, self.stats, path, iface, method, params, label, done)


class Lister:
    """Manager.ListDomains in a loop."""

    def __init__(self, conn, stats):
        self.conn, self.stats = conn, stats
        self.running = False
        self.busy = False

    def start(self):
        self.running = True
        if not self.busy:
            self.next()

    def stop(self):
        self.running = False

    def next(self):
        if not self.running:
            return

        def done():
            self.busy = False
            self.next()
        self.busy = True
        send(self.conn, self.stats, MGR_PATH, IFACE + 'Manager', 'ListDomains', None, 'ListDomains', done)


class Bench:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.stats = Stats()
        self.ctl = {'source': connect(args.source), 'dest': connect(args.dest)}
        self.finished = {}  # job path -> (time, result, error)
        for conn in self.ctl.values():
            conn.signal_subscribe(NAME, IFACE + 'Job', 'Finished', None, None,
                                  Gio.DBusSignalFlags.NONE, self.on_finished, None)
        self.client_conns = [connect(args.source) for _ in range(args.clients)]
        self.lister_conn = connect(args.source)
        names = {c.get_unique_name() for c in self.client_conns + [self.lister_conn]}
        self.unique_names = len(names)
        self.pollers = [Poller(c, self.stats, args.domain, args.hz) for c in self.client_conns]
        self.lister = Lister(self.lister_conn, self.stats)
        self.waiting = None  # (job, callback) waiting for Finished

    def on_finished(self, conn, sender, path, iface, signal, params, _data):
        result, error, _stats = params.unpack()
        self.finished[path] = (now(), result, error)
        if self.waiting and self.waiting[0] == path:
            _job, cb = self.waiting
            self.waiting = None
            cb()

    def run_until(self, predicate, timeout):
        # What the predicate reads changes only in callbacks, which the
        # blocking iteration dispatches; the timeout source wakes it up.
        expired = []

        def on_timeout():
            expired.append(True)
            return False
        source = GLib.timeout_add(int(timeout * 1000), on_timeout)
        ctx = self.loop.get_context()
        while not predicate() and not expired:
            ctx.iteration(True)
        if not expired:
            GLib.source_remove(source)
        return predicate()

    def migrate(self, where, uri, loaded, timeout=300):
        """One migration from where ('source' or 'dest'); returns a dict."""
        conn = self.ctl[where]
        state = {'job': None, 'error': None, 'end': None}
        # The same 1 s before every timed Migrate (the loaded run's
        # ListDomains head start): the migration back just ended, and what
        # it leaves to settle must weigh on both runs alike.
        if loaded:
            self.lister.start()
        self.run_until(lambda: False, 1.0)
        opts = {}
        if self.args.bandwidth:
            opts['bandwidth'] = GLib.Variant('t', self.args.bandwidth)
        t0 = now()

        def on_end():
            state['end'] = now()

        def on_reply(c, res, _data):
            try:
                job = c.call_finish(res).unpack()[0]
            except GLib.Error as e:
                state['error'] = 'Migrate: ' + e.message
                return
            state['job'] = job
            if job in self.finished:
                state['end'] = self.finished[job][0]
            else:
                self.waiting = (job, on_end)
            if loaded:
                n = len(self.pollers)
                for k, p in enumerate(self.pollers):
                    p.start(job, k * (1.0 / self.args.hz) / n)

        conn.call(NAME, self.args.domain, IFACE + 'Domain', 'Migrate',
                  GLib.Variant('(sa{sv})', (uri, opts)), None, Gio.DBusCallFlags.NONE,
                  CALL_TIMEOUT_MS * 4, None, on_reply, None)
        self.run_until(lambda: state['error'] or state['end'] is not None, timeout)
        for p in self.pollers:
            p.stop()
        self.lister.stop()
        # Every call sent must be answered: wait for the last replies.
        self.run_until(lambda: self.stats.pending == 0, CALL_TIMEOUT_MS / 1000 + 5)
        out = {'loaded': loaded, 'job': state['job']}
        if state['error']:
            out['error'] = state['error']
        elif state['end'] is None:
            out['error'] = 'job %s did not finish within %d s' % (state['job'], timeout)
        else:
            _t, result, error = self.finished[state['job']]
            out['wall-ms'] = round((state['end'] - t0) * 1000, 1)
            out['result'] = result
            if result != 'completed':
                out['error'] = 'job %s %s: %s' % (state['job'], result, error)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--source', required=True)
    ap.add_argument('--source-uri', required=True)
    ap.add_argument('--dest', required=True)
    ap.add_argument('--dest-uri', required=True)
    ap.add_argument('--domain', required=True)
    ap.add_argument('--clients', type=int, default=100)
    ap.add_argument('--hz', type=float, default=10.0)
    ap.add_argument('--rounds', type=int, default=0)
    ap.add_argument('--bandwidth', type=int, default=0)
    args = ap.parse_args()
    if not (1 <= args.clients <= 1000 and 0 < args.hz <= 100 and 0 <= args.rounds <= 50):
        ap.error('--clients 1..1000, --hz 0..100, --rounds 0..50')
    try:
        bench = Bench(args)
    except GLib.Error as e:
        print('load-clients: cannot connect: %s' % e.message, file=sys.stderr)
        return 2

    plan = [True] if args.rounds == 0 else \
        [x for r in range(args.rounds) for x in ((False, True) if r % 2 == 0 else (True, False))]
    runs = []
    ok = True
    for loaded in plan:
        r = bench.migrate('source', args.dest_uri, loaded)
        runs.append(r)
        print('%s %s' % ('loaded  ' if loaded else 'unloaded', json.dumps(r)), flush=True)
        if 'error' in r:
            ok = False
            break
        back = bench.migrate('dest', args.source_uri, False)
        if 'error' in back:
            print('back     %s' % json.dumps(back), flush=True)
            ok = False
            break

    summary = {'clients': args.clients, 'hz': args.hz, 'unique-names': bench.unique_names,
               'migrations': runs}
    summary.update(bench.stats.summary())
    # How many clients had at least one answer of each kind.
    summary['clients-answered'] = {k: sum(1 for p in bench.pollers if p.answered[k])
                                   for k in ('stats', 'props')}
    pairs = []
    for i in range(0, len(runs) - 1, 2):
        a, b = runs[i], runs[i + 1]
        if 'wall-ms' in a and 'wall-ms' in b:
            u, l_ = (a, b) if not a['loaded'] else (b, a)
            pairs.append(round(l_['wall-ms'] / u['wall-ms'], 4))
    summary['ratios'] = pairs
    if summary['errors'] or summary['unanswered'] or bench.unique_names != args.clients + 1:
        ok = False
    summary['ok'] = ok
    print(json.dumps(summary), flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
