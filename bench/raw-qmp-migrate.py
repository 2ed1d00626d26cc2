#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One live migration done by hand over QMP, the way a script would do it
without vmigrate: the baseline of bench/migrate-bench.sh.

The QEMU command line is the one vmigrated used for the same guest (the
"## vmigrated <date>: starting <argv>" line of its per-domain log), with the
monitor and serial sockets moved to --workdir. The steps and settings are
those of vmigrate's qemu backend (service/backends/qemu/qemu-migration.c):

  source QEMU started (-S), qmp_capabilities, cont; the guest's heartbeat;
  --warmup seconds of guest activity                        (not timed)
  t0  destination QEMU started with -incoming defer, QMP connected,
      migrate-set-capabilities (events on; auto-converge, multifd, xbzrle
      off), migrate-set-parameters {}, query-status,
      migrate-incoming tcp:0.0.0.0:PORT
      source: migrate-set-capabilities (same), migrate-set-parameters
      (max-bandwidth 2^40 B/s, downtime-limit 300 ms), migrate
      tcp:DEST-HOST:PORT; wait for MIGRATION completed (events)
      query-migrate on the source (QEMU's own figures)
      destination: wait for MIGRATION completed, cont
  t_running  (the guest runs on the destination)
      source: query-status, quit, wait for the process to exit
  t_done
  then (not timed) the guest's memory is verified on the destination.

With --multifd-channels N (N >= 1) the multifd capability is on and both
QEMUs get multifd-channels N and multifd-compression (--multifd-compression,
default none), as vmigrate's backend sets them for Migrate's
parallel-connections and compression options: the floor of
bench/compression-bench.sh.

With --pulse TOOL (tests/hosts/guest-pulse.py; the guest needs
vmtest.pulse=--pulse-ms and a second serial port), TOOL listens on both
QEMUs' second serial port from before t0 and its figures are in "pulse":
the downtime as the guest saw it (see TOOL).

Prints one JSON object: wall-ms (t_done - t0), running-ms (t_running - t0),
listening-ms (destination ready), qemu-total-ms, downtime-ms, setup-ms,
transferred, total, passes, verify, pulse (with --pulse: guest-pulse.py's
PULSE-GAP line as an object), start-us, stream-end-us and end-us (t0,
the source's report that the stream completed and t_done, in microseconds
since the epoch: to line several runs up). Exit 0 on success, 1 when the
migration or the verification failed, 2 on usage errors. Stdlib only.

With --sync-dir DIR several runs start together (bench/fleet-bench.sh):
once warmed up, each creates DIR/ready.PORT and waits for DIR/go before
t0; after t_done it creates DIR/done.PORT and waits for DIR/verify before
verifying, so that no run verifies (a CPU-heavy walk under TCG) while
another still streams.
"""

import argparse
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time

UNLIMITED_BANDWIDTH = 1 << 40  # what vmigrate sets when no bandwidth is asked
DEFAULT_DOWNTIME_MS = 300


class Failure(Exception):
    pass


class Qmp:
    """A minimal synchronous QMP client that keeps events for later."""

    def __init__(self, path, name, deadline):
        self.name = name
        self.buf = b""
        self.events = []
        self.sock = None
        last = None
        while self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                self.sock = s
            except OSError as e:
                s.close()
                last = e
                if time.monotonic() > deadline:
                    raise Failure(f"{name}: cannot connect to QMP at {path}: {last}")
                time.sleep(0.002)
        greeting = self._read(deadline)
        if "QMP" not in greeting:
            raise Failure(f"{name}: no QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.name}: QMP timed out")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure(f"{self.name}: QEMU closed the QMP connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None, timeout=30):
        msg = {"execute": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise Failure(f"{self.name}: {command}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return")

    def wait_event(self, event, match, timeout):
        """The first event named EVENT whose data matches MATCH (a function)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == event and match(e.get("data", {})):
                    del self.events[: i + 1]
                    return e
            self.events.append(self._read(deadline))

    def close(self):
        self.sock.close()


def split_opts(value):
    """QEMU's option syntax: ',' separates, ',,' is a literal comma."""
    parts, cur, i = [], "", 0
    while i < len(value):
        if value[i] == ",":
            if value[i + 1 : i + 2] == ",":
                cur += ","
                i += 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += value[i]
        i += 1
    parts.append(cur)
    return parts


def join_opts(parts):
    return ",".join(p.replace(",", ",,") for p in parts)


def read_argv(log_path):
    """The argv of the last QEMU vmigrated started for this domain."""
    line = None
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for ln in f:
            if ln.startswith("## vmigrated ") and ": starting " in ln:
                line = ln
    if line is None:
        raise Failure(f"{log_path}: no '## vmigrated ...: starting ...' line")
    argv = shlex.split(line.split(": starting ", 1)[1])
    # The destination gets "-incoming defer" below; never inherit one.
    out = []
    i = 0
    while i < len(argv):
        if argv[i] == "-incoming":
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def rewrite_argv(argv, workdir, role):
    """Monitor and serial sockets (and serial logs) into workdir."""
    out = list(argv)
    qmp = os.path.join(workdir, f"{role}-qmp.sock")
    found_monitor = False
    for i in range(len(out) - 1):
        if out[i] != "-chardev":
            continue
        parts = split_opts(out[i + 1])
        ident = next((p[3:] for p in parts if p.startswith("id=")), None)
        if ident == "monitor":
            out[i + 1] = f"socket,id=monitor,path={qmp},server=on,wait=off"
            found_monitor = True
        elif ident and ident.startswith("serial"):
            new = []
            for p in parts:
                if p.startswith("path="):
                    p = "path=" + os.path.join(workdir, f"{role}-{ident}.sock")
                elif p.startswith("logfile="):
                    p = "logfile=" + os.path.join(workdir, f"{role}-{ident}.log")
                new.append(p)
            out[i + 1] = join_opts(new)
    if not found_monitor:
        raise Failure("the command line has no '-chardev socket,id=monitor,...'")
    return out, qmp, os.path.join(workdir, f"{role}-serial0.sock")


def pulse_start(args):
    """guest-pulse.py on both QEMUs' second serial port; returns once it hears the source."""
    ready = os.path.join(args.workdir, "pulse.ready")
    if os.path.exists(ready):
        os.unlink(ready)
    out = open(os.path.join(args.workdir, "pulse.out"), "w")
    proc = subprocess.Popen(
        ["/usr/bin/python3", args.pulse,
         "--socket", "a=" + os.path.join(args.workdir, "src-serial1.sock"),
         "--socket", "b=" + os.path.join(args.workdir, "dst-serial1.sock"),
         "--period-ms", str(args.pulse_ms), "--ready", ready, "--timeout", str(args.timeout + 60)],
        stdout=out, stderr=subprocess.STDOUT,
    )
    out.close()
    deadline = time.monotonic() + 30
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise Failure(f"guest-pulse.py never heard the source guest's pulse: {pulse_text(args)}")
        time.sleep(0.01)
    return proc


def pulse_text(args):
    with open(os.path.join(args.workdir, "pulse.out")) as f:
        return f.read().strip()


def pulse_result(args, proc):
    """guest-pulse.py's PULSE-GAP line as a dict (error= when it measured nothing)."""
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait()
    text = pulse_text(args)
    line = next((ln for ln in text.splitlines() if ln.startswith("PULSE-GAP ")), None)
    if line is None:
        return {"error": text[-300:] or "guest-pulse.py said nothing"}
    return dict(w.split("=", 1) for w in shlex.split(line[len("PULSE-GAP "):]) if "=" in w)


def spawn(wrapper, argv, log_path):
    log = open(log_path, "ab")
    cmd = shlex.split(wrapper) + argv if wrapper else argv
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    return proc


def guestctl(path, sock, *args, timeout=60):
    r = subprocess.run(
        ["/usr/bin/python3", path, "--socket", sock, "--timeout", str(timeout), *args],
        capture_output=True,
        text=True,
    )
    return r.returncode, (r.stdout.strip() or r.stderr.strip())


def capabilities(args=None):
    """The migration capabilities, as vmigrate's backend sets them; multifd
    only when args (this script's options) ask for channels. The other
    scripts that import this one call it without."""
    multifd = args is not None and args.multifd_channels > 0
    caps = [("events", True), ("auto-converge", False), ("multifd", multifd), ("xbzrle", False)]
    return {"capabilities": [{"capability": c, "state": s} for c, s in caps]}


def multifd_parameters(args):
    """What both QEMUs must agree on: channels and compression."""
    if args.multifd_channels == 0:
        return {}
    return {"multifd-channels": args.multifd_channels, "multifd-compression": args.multifd_compression}


def stop(proc, qmp=None):
    if proc.poll() is not None:
        return
    if qmp is not None:
        try:
            qmp.execute("quit", timeout=5)
        except (Failure, OSError):
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def sync(args, mine, wait_for, timeout):
    """With --sync-dir: DIR/MINE.PORT exists, then DIR/WAIT_FOR does."""
    if not args.sync_dir:
        return
    open(os.path.join(args.sync_dir, f"{mine}.{args.port}"), "w").close()
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(args.sync_dir, wait_for)):
        if time.monotonic() > deadline:
            raise Failure(f"--sync-dir: no {wait_for} after {timeout:.0f} s")
        time.sleep(0.005)


def us(wall):
    return int(wall * 1e6)


def ms(a, b):
    return round((b - a) * 1000, 1)


def run(args):
    os.makedirs(args.workdir, exist_ok=True)
    for name in os.listdir(args.workdir):
        if name.endswith(".sock"):
            os.unlink(os.path.join(args.workdir, name))
    base = read_argv(args.argv_from)
    src_argv, src_qmp_path, src_serial = rewrite_argv(base, args.workdir, "src")
    dst_argv, dst_qmp_path, dst_serial = rewrite_argv(base, args.workdir, "dst")
    dst_argv += ["-incoming", "defer"]
    result = {"verify": None}
    src = dst = src_qmp = dst_qmp = pulse = None

    try:
        # --- the source guest, running and warmed up (not timed)
        src = spawn(args.src_exec, src_argv, os.path.join(args.workdir, "src-qemu.log"))
        src_qmp = Qmp(src_qmp_path, "source", time.monotonic() + 30)
        src_qmp.execute("cont")
        rc, out = guestctl(args.guestctl, src_serial, "wait-heartbeat", timeout=60)
        if rc != 0:
            raise Failure(f"the source guest has no heartbeat: {out}")
        if args.warmup > 0:
            time.sleep(args.warmup)
        if args.pulse:
            pulse = pulse_start(args)

        sync(args, "ready", "go", args.timeout + 600)

        # --- timed: from starting the destination to the source gone
        t0 = time.monotonic()
        w0 = time.time()
        dst = spawn(args.dst_exec, dst_argv, os.path.join(args.workdir, "dst-qemu.log"))
        dst_qmp = Qmp(dst_qmp_path, "destination", t0 + 30)
        dst_qmp.execute("migrate-set-capabilities", capabilities(args))
        dst_qmp.execute("migrate-set-parameters", multifd_parameters(args))
        dst_qmp.execute("query-status")
        dst_qmp.execute("migrate-incoming", {"uri": f"tcp:0.0.0.0:{args.port}"})
        t_listen = time.monotonic()

        src_qmp.execute("migrate-set-capabilities", capabilities(args))
        src_qmp.execute(
            "migrate-set-parameters",
            {"max-bandwidth": args.max_bandwidth, "downtime-limit": args.downtime_limit,
             **multifd_parameters(args)},
        )
        src_qmp.execute("migrate", {"uri": f"tcp:{args.dest_host}:{args.port}"})
        ev = src_qmp.wait_event(
            "MIGRATION", lambda d: d.get("status") in ("completed", "failed", "cancelled"), args.timeout
        )
        status = ev["data"]["status"]
        info = src_qmp.execute("query-migrate")
        t_src_done = time.monotonic()
        w_src_done = time.time()
        if status != "completed":
            raise Failure(f"the source reports the migration {status}: {info.get('error-desc', '')}")
        dst_qmp.wait_event("MIGRATION", lambda d: d.get("status") in ("completed", "failed"), 60)
        dst_qmp.execute("cont")
        t_running = time.monotonic()
        src_qmp.execute("query-status")
        stop(src, src_qmp)
        t_done = time.monotonic()
        w_done = time.time()

        ram = info.get("ram", {})
        result.update(
            {
                "wall-ms": ms(t0, t_done),
                "running-ms": ms(t0, t_running),
                "listening-ms": ms(t0, t_listen),
                "stream-ms": ms(t_listen, t_src_done),
                "qemu-total-ms": info.get("total-time"),
                "downtime-ms": info.get("downtime"),
                "setup-ms": info.get("setup-time"),
                "transferred": ram.get("transferred"),
                "total": ram.get("total"),
                "passes": ram.get("dirty-sync-count"),
                "start-us": us(w0),
                "stream-end-us": us(w_src_done),
                "end-us": us(w_done),
            }
        )
        if pulse is not None:
            result["pulse"] = pulse_result(args, pulse)
            pulse = None

        sync(args, "done", "verify", args.timeout + 600)

        # --- the guest's memory on the destination (not timed)
        rc, out = guestctl(args.guestctl, dst_serial, "verify", timeout=args.verify_timeout)
        result["verify"] = out
        if rc != 0:
            raise Failure(f"the guest's memory does not verify on the destination: {out}")
    finally:
        if pulse is not None:
            pulse.kill()
            pulse.wait()
        for proc, q in ((src, src_qmp), (dst, dst_qmp)):
            if proc is not None:
                stop(proc, q)
            if q is not None:
                q.close()
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--argv-from", required=True, help="vmigrated's per-domain QEMU log")
    p.add_argument("--workdir", required=True, help="sockets and logs of this run")
    p.add_argument("--src-exec", default="", help="command prefix running the source QEMU in its host")
    p.add_argument("--dst-exec", default="", help="command prefix running the destination QEMU in its host")
    p.add_argument("--dest-host", required=True, help="where the source sends the stream")
    p.add_argument("--port", type=int, default=49200)
    p.add_argument("--guestctl", required=True)
    p.add_argument("--warmup", type=float, default=0)
    p.add_argument("--max-bandwidth", type=int, default=UNLIMITED_BANDWIDTH)
    p.add_argument("--downtime-limit", type=int, default=DEFAULT_DOWNTIME_MS)
    p.add_argument("--timeout", type=float, default=120, help="seconds the stream may take")
    p.add_argument("--verify-timeout", type=float, default=120)
    p.add_argument("--multifd-channels", type=int, default=0,
                   help="multifd with this many channels (0: no multifd)")
    p.add_argument("--multifd-compression", choices=("none", "zlib", "zstd"), default="none",
                   help="with --multifd-channels")
    p.add_argument("--pulse", help="tests/hosts/guest-pulse.py: time the guest's pulse across the switch-over")
    p.add_argument("--pulse-ms", type=float, default=5, help="the guest's vmtest.pulse")
    p.add_argument("--sync-dir", help="start and verify together with other runs (see above)")
    args = p.parse_args()
    if not 1 <= args.port <= 65535:
        p.error(f"--port {args.port}: not a TCP port")
    if not 0 <= args.multifd_channels <= 255:
        p.error(f"--multifd-channels {args.multifd_channels}: 0 to 255")
    if args.multifd_compression != "none" and args.multifd_channels == 0:
        p.error("--multifd-compression needs --multifd-channels")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run(args)
    except Failure as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
