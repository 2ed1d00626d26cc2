#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Downtime as the guest sees it: times the test guest's pulse across a migration.

    guest-pulse.py --socket a=PATH --socket b=PATH [--period-ms 5] [--after 50]
                   [--ready FILE] [--ready-pulses 10] [--log FILE] [--timeout 120]
                   [--dest-gaps]

The test guest started with vmtest.pulse=MS writes "PULSE seq=N us=T" on
its second serial port (COM2) every MS ms: N counts pulses, T is the
guest's own clock in microseconds (tests/guest/README.md). Each QEMU keeps
that port as a unix socket (vmigrated: serial1.sock in the guest's run
dir), so the stream comes from the source QEMU until the switch-over and
from the destination QEMU after it. This tool connects to every PATH as
soon as it exists (polling every 2 ms, and again after a QEMU went away),
stamps each pulse with its arrival time, and merges the streams by the
guest's sequence numbers. All sockets are read by this one process, on one
clock (CLOCK_MONOTONIC): the test hosts are namespaces of one machine and
share it anyway.

A line cut in two by the switch-over (the guest was stopped in the middle
of writing it; the UART's state moves with the guest) is put back
together: its first part came from the source, its end from the
destination.

Figures, across the switch-over (the last pulse from one socket and the
first from the next, by sequence number):

  switch_gap_ms     the time between their arrivals on the host
  switch_guest_ms   the time between them on the guest's clock: about one
                    period under TCG, whose guest clock stops while QEMU has
                    the guest paused; more under KVM, where the guest's TSC
                    counted most of the pause on our test machines
  downtime_ms       switch_gap_ms - the period: how much longer the guest
                    was silent than it should have been, i.e. the downtime
                    as the guest's peers see it
  frozen_ms         switch_gap_ms - switch_guest_ms: the part of the gap the
                    guest's clock did not see (the whole pause under TCG,
                    only part of it under KVM)
  max_gap_ms        the longest gap between consecutive pulses anywhere in
                    the recording, and where (max_gap_where: a label, or
                    A>B across the switch); in post-copy the guest can
                    stall on the destination after the switch, on pages
                    that are not there yet
  lost              sequence numbers never received between the first and
                    the last pulse; gaps across lost pulses are
                    overestimated, so a result with lost > 0 is not a
                    measurement of the downtime
  batched           pulses that arrived in the same read as an earlier
                    one: this process was late, and its gaps are blurred
                    by as much

With --dest-gaps, also the gaps after the switch-over on the side the
stream switched to (between consecutive sequence numbers both heard from
that QEMU, so neither the switch-over gap itself nor a gap across a lost
pulse): in post-copy each one the guest spent waiting for pages that were
not there yet is a gap longer than the period.

  dest_gaps         how many
  dest_gap_p50_ms   their median, 90th and 99th percentiles (nearest
  dest_gap_p90_ms   rank) and the longest, between arrivals on the host
  dest_gap_p99_ms
  dest_gap_max_ms
  dest_guest_p50_ms the same on the guest's clock: under TCG it runs on
  ...               while the vCPU waits for a page (only a stopped guest's
  dest_guest_max_ms clock stops), and it has none of this process's lateness
                    (batched) in it
  dest_long_gaps    how many of those gaps were longer than two periods on
                    the guest's clock: the ones the guest lost at least
                    about a period in (a wait much shorter than the period
                    hides in the pulse's own jitter)
  dest_long_p50_ms  their median, 99th percentile and longest, on the
  dest_long_p99_ms  guest's clock
  dest_long_max_ms
  dest_span_ms      from the first to the last pulse heard there

It stops after --after pulses from the socket the stream switched to (0:
at SIGTERM or SIGINT), or at --timeout, and prints one line:

    PULSE-GAP pulses=N lost=N ... switch=a>b switch_gap_ms=X ... error=WHY

Exit status 0 when a switch-over was seen with no pulse lost, 1 when not
(error= says why), 2 on bad usage. --ready FILE is created once
--ready-pulses pulses have arrived (start the migration after that).
Stdlib only.
"""

import argparse
import errno
import math
import os
import re
import select
import signal
import socket
import sys
import time

PULSE_RE = re.compile(rb"^PULSE seq=([0-9]+) us=([0-9]+)$")
POLL_S = 0.002


class Source:
    """One socket path; a connection to it (a QEMU) is a generation."""

    def __init__(self, label, path):
        self.label = label
        self.path = path
        self.sock = None
        self.generation = 0
        self.buf = b""
        self.first_line = True

    def try_connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            if e.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN, errno.ENOTDIR):
                return False
            raise
        s.setblocking(False)
        self.sock = s
        self.generation += 1
        self.buf = b""
        self.first_line = True
        return True

    def key(self):
        return (self.label, self.generation)


class Recorder:
    def __init__(self, args):
        self.args = args
        self.sources = [Source(label, path) for label, path in args.socket]
        self.pulses = {}  # seq -> (arrival ns, guest us, label, generation)
        self.arrival_order = []
        self.first_key = None
        self.after_switch = 0
        self.batched = 0
        self.garbage = 0
        self.stitched = 0
        self.dups = 0
        self.ready_done = args.ready is None
        self.log = open(args.log, "w") if args.log else None

    def accept(self, line, src, now, in_batch):
        m = PULSE_RE.match(line)
        if not m:
            return False
        seq, us = int(m.group(1)), int(m.group(2))
        if seq in self.pulses:
            self.dups += 1
            return True
        self.pulses[seq] = (now, us, src.label, src.generation)
        self.arrival_order.append(seq)
        if in_batch:
            self.batched += 1
        if self.first_key is None:
            self.first_key = src.key()
        elif src.key() != self.first_key:
            self.after_switch += 1
        if self.log:
            self.log.write(f"{now} {src.label} {src.generation} {seq} {us}\n")
        if not self.ready_done and len(self.pulses) >= self.args.ready_pulses:
            with open(self.args.ready, "w") as f:
                f.write(f"{len(self.pulses)}\n")
            self.ready_done = True
        return True

    def stitch(self, line, src):
        """A first line that is the end of another connection's unfinished one."""
        for other in self.sources:
            if other is src or not other.buf.startswith(b"PULSE"):
                continue
            joined = other.buf + line
            if PULSE_RE.match(joined):
                other.buf = b""
                self.stitched += 1
                return joined
        return None

    def read(self, src, now):
        try:
            chunk = src.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            src.sock.close()
            src.sock = None  # keep src.buf: the destination may finish its line
            return
        src.buf += chunk
        n = 0
        while b"\n" in src.buf:
            line, src.buf = src.buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            first, src.first_line = src.first_line, False
            if self.accept(line, src, now, n > 0):
                n += 1
                continue
            joined = self.stitch(line, src) if first else None
            if joined is not None and self.accept(joined, src, now, n > 0):
                n += 1
            elif line:
                self.garbage += 1  # e.g. the tail of a line sent before we connected

    def done(self):
        return self.args.after > 0 and self.after_switch >= self.args.after

    def run(self):
        deadline = time.monotonic() + self.args.timeout
        stop = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.append(1))
        while not stop and not self.done():
            if time.monotonic() > deadline:
                return f"timed out after {self.args.timeout:g} s"
            for s in self.sources:
                if s.sock is None:
                    s.try_connect()
            socks = {s.sock: s for s in self.sources if s.sock is not None}
            waiting = len(socks) < len(self.sources)
            try:
                r, _, _ = select.select(list(socks), [], [], POLL_S if waiting else 0.1)
            except InterruptedError:
                continue
            now = time.monotonic_ns()
            for sock in r:
                self.read(socks[sock], now)
        return None

    def dest_gaps(self, seqs, first):
        """The figures of --dest-gaps, from the first pulse after the switch."""
        key = self.pulses[first][2:4]
        gaps, guest = [], []
        last = first
        for prev, cur in zip(seqs, seqs[1:]):
            if prev < first:
                continue
            a, b = self.pulses[prev], self.pulses[cur]
            if b[2:4] != key:
                break
            last = cur
            if cur == prev + 1 and a[2:4] == key:
                gaps.append((b[0] - a[0]) / 1e6)
                guest.append(((b[1] - a[1]) % (1 << 32)) / 1000)
        long_gaps = [g for g in guest if g > 2 * self.args.period_ms]
        out = {"dest_gaps": len(gaps)}
        for name, values, ranks in (("gap", gaps, (50, 90, 99)), ("guest", guest, (50, 90, 99)),
                                    ("long", long_gaps, (50, 99))):
            if name == "long":
                out["dest_long_gaps"] = len(values)
            if not values:
                continue
            values.sort()
            for p in ranks:
                v = values[max(0, math.ceil(p / 100 * len(values)) - 1)]
                out[f"dest_{name}_p{p}_ms"] = f"{v:.2f}"
            out[f"dest_{name}_max_ms"] = f"{values[-1]:.2f}"
        out["dest_span_ms"] = f"{(self.pulses[last][0] - self.pulses[first][0]) / 1e6:.0f}"
        return out

    def report(self, error):
        out = {"pulses": len(self.pulses)}
        period = self.args.period_ms
        if self.pulses:
            seqs = sorted(self.pulses)
            out["first_seq"], out["last_seq"] = seqs[0], seqs[-1]
            lost = seqs[-1] - seqs[0] + 1 - len(seqs)
            out["lost"] = lost
            counts = {}
            for seq in seqs:
                lab = self.pulses[seq][2]
                counts[lab] = counts.get(lab, 0) + 1
            out["per_socket"] = ",".join(f"{k}:{v}" for k, v in counts.items())
            out["dups"], out["batched"], out["stitched"], out["garbage"] = (
                self.dups, self.batched, self.stitched, self.garbage)
            max_gap = None
            switch = None
            for prev, cur in zip(seqs, seqs[1:]):
                a, b = self.pulses[prev], self.pulses[cur]
                gap = (b[0] - a[0]) / 1e6
                crosses = (a[2], a[3]) != (b[2], b[3])
                where = f"{a[2]}>{b[2]}" if crosses else a[2]
                if max_gap is None or gap > max_gap[0]:
                    max_gap = (gap, cur, where)
                if crosses and switch is None:
                    guest = ((b[1] - a[1]) % (1 << 32)) / 1000
                    switch = (prev, cur, a[2], b[2], gap, guest)
            if max_gap:
                out["max_gap_ms"] = f"{max_gap[0]:.2f}"
                out["max_gap_seq"] = max_gap[1]
                out["max_gap_where"] = max_gap[2]
            if switch and self.args.dest_gaps:
                out.update(self.dest_gaps(seqs, switch[1]))
            if switch:
                prev, cur, la, lb, gap, guest = switch
                out["switch"] = f"{la}>{lb}"
                out["switch_seqs"] = f"{prev}-{cur}"
                out["switch_gap_ms"] = f"{gap:.2f}"
                out["switch_guest_ms"] = f"{guest:.2f}"
                out["downtime_ms"] = f"{gap - period:.2f}"
                out["frozen_ms"] = f"{gap - guest:.2f}"
            elif error is None:
                error = "no switch-over seen: every pulse came from one QEMU"
            if lost and error is None:
                error = f"{lost} pulse(s) lost: the gaps are not the downtime"
        elif error is None:
            error = "no pulse received"
        out["period_ms"] = period
        if error:
            out["error"] = "'" + error.replace("'", "") + "'"
        print("PULSE-GAP " + " ".join(f"{k}={v}" for k, v in out.items()), flush=True)
        if self.log:
            self.log.close()
        return 1 if error else 0


def label_path(text):
    label, sep, path = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", label) or not path:
        raise argparse.ArgumentTypeError(f"'{text}': LABEL=PATH, e.g. a=/run/.../serial1.sock")
    return label, path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", type=label_path, action="append", required=True, metavar="LABEL=PATH")
    p.add_argument("--period-ms", type=float, default=5, help="the guest's vmtest.pulse")
    p.add_argument("--after", type=int, default=50, help="pulses after the switch, then stop (0: at SIGTERM)")
    p.add_argument("--ready", help="created once --ready-pulses pulses have arrived")
    p.add_argument("--ready-pulses", type=int, default=10)
    p.add_argument("--log", help="every pulse: arrival-ns label generation seq guest-us")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--dest-gaps", action="store_true",
                   help="also the distribution of the gaps after the switch-over, on its side")
    args = p.parse_args()
    if len({lab for lab, _ in args.socket}) != len(args.socket):
        p.error("two --socket with the same label")
    if args.period_ms <= 0 or args.after < 0 or args.ready_pulses < 1 or args.timeout <= 0:
        p.error("--period-ms and --timeout must be > 0, --after >= 0, --ready-pulses >= 1")
    rec = Recorder(args)
    error = rec.run()
    return rec.report(error)


if __name__ == "__main__":
    sys.exit(main())
