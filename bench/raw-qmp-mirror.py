#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One live migration with its disks copied, done by hand over QMP the way
libvirt does --copy-storage-all: the baseline of bench/storage-bench.sh.

The QEMU command line is the one vmigrated used for the same guest (the
"## vmigrated <date>: starting <argv>" line of its per-domain log), with the
monitor and serial sockets moved to --workdir (bench/raw-qmp-migrate.py,
whose helpers this imports). The disks are the writable -blockdev format
nodes of that command line ("disk-<dev>" on a file node); their format and
virtual size come from the source QEMU (query-block). The QMP arguments of
every step are those of vmigrate's qemu backend (qemu-storage.c,
qemu-migration.c), so that only the driving differs:

  source QEMU started (-S), cont; the guest's heartbeat; --warmup seconds
  of guest activity                                            (not timed)
  t0        destination: qemu-img create of each image (same format and
            virtual size; qcow2 with preallocation=off), QEMU started with
            -incoming defer, migrate-set-capabilities (events on;
            auto-converge, multifd, xbzrle off), migrate-set-parameters {},
            nbd-server-start on --nbd-port, block-export-add (writable) per
            disk, migrate-incoming tcp:0.0.0.0:PORT
            source: migrate-set-capabilities (same), migrate-set-parameters
            (max-bandwidth 2^40 B/s, downtime-limit 300 ms)
  t_mirror  source, per disk: blockdev-add (driver nbd, the export on
            DEST-HOST:NBD-PORT), blockdev-mirror sync=full
            wait for BLOCK_JOB_READY of every mirror (events), then
            query-block-jobs (what they have copied)
  t_migrate source: migrate tcp:DEST-HOST:PORT; wait for MIGRATION completed
            source: block-job-cancel per mirror (in sync: it completes),
            wait for BLOCK_JOB_COMPLETED of each
  t_disks_done
            source: blockdev-del of each NBD node
            destination: wait for MIGRATION completed, nbd-server-stop, cont
  t_running (the guest runs on the destination)
            source: query-status, quit, wait for the process to exit
  t_done
  then (not timed) the guest's memory and disks are verified on the
  destination (guestctl verify, disk-verify).

Prints one JSON object: wall-ms (t_done - t0), setup-ms (t0 .. t_mirror),
disk-ms (t_mirror .. t_migrate: the disks alone), mirror-ms (t_mirror ..
the last BLOCK_JOB_READY), ready-lag-ms (that event .. t_migrate),
memory-ms (t_migrate .. t_disks_done), finish-ms (t_disks_done .. t_done),
disk-bytes (the sum of the mirrors' len at t_migrate: every byte they
copied, blocks the guest rewrote and were copied again included), disks,
downtime-ms, transferred, verify, disk-verify. Exit 0 on success,
1 when the migration or a verification failed, 2 on usage errors. Stdlib
only.
"""

import argparse
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time

_spec = importlib.util.spec_from_file_location(
    "raw_qmp_migrate", os.path.join(os.path.dirname(os.path.abspath(__file__)), "raw-qmp-migrate.py")
)
raw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw)

Failure = raw.Failure


def disks_of(argv):
    """(dev, path) of each writable disk: format node disk-DEV on a file node."""
    files, disks = {}, []
    for i in range(len(argv) - 1):
        if argv[i] != "-blockdev" or not argv[i + 1].startswith("{"):
            continue
        node = json.loads(argv[i + 1])
        if node.get("driver") == "file":
            files[node.get("node-name")] = node.get("filename")
        elif str(node.get("node-name", "")).startswith("disk-") and not node.get("read-only"):
            disks.append((node["node-name"][len("disk-"):], node.get("file")))
    out = []
    for dev, file_node in disks:
        if file_node not in files:
            raise Failure(f"disk {dev}: no file node '{file_node}' on the command line")
        out.append((dev, files[file_node]))
    if not out:
        raise Failure("the command line has no writable disk (-blockdev node-name disk-DEV)")
    return out


def describe_disks(qmp, disks):
    """[{dev, path, format, size}] with format and virtual size from query-block."""
    nodes = {}
    for b in qmp.execute("query-block"):
        ins = b.get("inserted") or {}
        if ins.get("node-name"):
            nodes[ins["node-name"]] = ins
    out = []
    for dev, path in disks:
        ins = nodes.get(f"disk-{dev}")
        if ins is None:
            raise Failure(f"query-block has no node disk-{dev}")
        out.append({"dev": dev, "path": path, "format": ins["image"]["format"], "size": ins["image"]["virtual-size"]})
    return out


def qemu_img_create(wrapper, disk):
    """What vmigrated runs on the destination (qemu-storage.c)."""
    opts = ["-o", "preallocation=off"] if disk["format"] == "qcow2" else []
    cmd = (shlex.split(wrapper) if wrapper else []) + [
        "qemu-img", "create", "-q", "-f", disk["format"], *opts, disk["path"], str(disk["size"])
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"qemu-img create {disk['path']}: {(r.stderr or r.stdout).strip()}")


def wait_jobs(qmp, event, jobs, timeout):
    """Until EVENT has come for every block job in JOBS: {job: data with the
    event's QEMU time "at" (s)}. Any other end of one of them fails. Other
    events stay queued."""
    got, kept = {}, []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < len(jobs):
            if not qmp.events:
                qmp.events.append(qmp._read(deadline))
                continue
            e = qmp.events.pop(0)
            data = e.get("data", {})
            job = data.get("device")
            if job not in jobs:
                kept.append(e)
                continue
            if e["event"] == event and "error" not in data:
                ts = e.get("timestamp", {})
                data["at"] = ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6
                got[job] = data
            elif e["event"] in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED", "BLOCK_JOB_ERROR"):
                raise Failure(f"{qmp.name}: {e['event']} for {job} while waiting for {event}: {data}")
    finally:
        qmp.events[:0] = kept
    return got


def run(args):
    os.makedirs(args.workdir, exist_ok=True)
    for name in os.listdir(args.workdir):
        if name.endswith(".sock"):
            os.unlink(os.path.join(args.workdir, name))
    base = raw.read_argv(args.argv_from)
    disk_nodes = disks_of(base)
    src_argv, src_qmp_path, src_serial = raw.rewrite_argv(base, args.workdir, "src")
    dst_argv, dst_qmp_path, dst_serial = raw.rewrite_argv(base, args.workdir, "dst")
    dst_argv += ["-incoming", "defer"]
    result = {"verify": None, "disk-verify": None}
    src = dst = src_qmp = dst_qmp = None

    try:
        # --- the source guest, running and warmed up (not timed)
        src = raw.spawn(args.src_exec, src_argv, os.path.join(args.workdir, "src-qemu.log"))
        src_qmp = raw.Qmp(src_qmp_path, "source", time.monotonic() + 30)
        src_qmp.execute("cont")
        rc, out = raw.guestctl(args.guestctl, src_serial, "wait-heartbeat", timeout=60)
        if rc != 0:
            raise Failure(f"the source guest has no heartbeat: {out}")
        disks = describe_disks(src_qmp, disk_nodes)
        if args.warmup > 0:
            time.sleep(args.warmup)

        # --- timed: from creating the images to the source gone
        t0 = time.time()
        for d in disks:
            qemu_img_create(args.dst_exec, d)
        dst = raw.spawn(args.dst_exec, dst_argv, os.path.join(args.workdir, "dst-qemu.log"))
        dst_qmp = raw.Qmp(dst_qmp_path, "destination", time.monotonic() + 30)
        dst_qmp.execute("migrate-set-capabilities", raw.capabilities())
        dst_qmp.execute("migrate-set-parameters", {})
        dst_qmp.execute(
            "nbd-server-start",
            {"addr": {"type": "inet", "data": {"host": "0.0.0.0", "port": str(args.nbd_port)}}},
        )
        for d in disks:
            dst_qmp.execute(
                "block-export-add",
                {"type": "nbd", "id": f"export-{d['dev']}", "node-name": f"disk-{d['dev']}", "name": d["dev"],
                 "writable": True},
            )
        dst_qmp.execute("migrate-incoming", {"uri": f"tcp:0.0.0.0:{args.port}"})
        src_qmp.execute("migrate-set-capabilities", raw.capabilities())
        src_qmp.execute(
            "migrate-set-parameters",
            {"max-bandwidth": args.max_bandwidth, "downtime-limit": args.downtime_limit},
        )

        t_mirror = time.time()
        jobs = {}
        for d in disks:
            job = f"mirror-{d['dev']}"
            src_qmp.execute(
                "blockdev-add",
                {"driver": "nbd", "node-name": f"nbd-{d['dev']}", "export": d["dev"],
                 "server": {"type": "inet", "host": args.dest_host, "port": str(args.nbd_port)}},
            )
            src_qmp.execute(
                "blockdev-mirror",
                {"job-id": job, "device": f"disk-{d['dev']}", "target": f"nbd-{d['dev']}", "sync": "full"},
            )
            jobs[job] = d
        ready = wait_jobs(src_qmp, "BLOCK_JOB_READY", jobs, args.timeout)
        t_ready = max(r["at"] for r in ready.values())
        # What the mirrors have copied by now, re-copies of what the guest
        # wrote meanwhile included: a disk ready early has gone on copying.
        copied = {j["device"]: j for j in src_qmp.execute("query-block-jobs") if j.get("device") in jobs}

        t_migrate = time.time()
        src_qmp.execute("migrate", {"uri": f"tcp:{args.dest_host}:{args.port}"})
        ev = src_qmp.wait_event(
            "MIGRATION", lambda d: d.get("status") in ("completed", "failed", "cancelled"), args.timeout
        )
        status = ev["data"]["status"]
        info = src_qmp.execute("query-migrate")
        if status != "completed":
            raise Failure(f"the source reports the migration {status}: {info.get('error-desc', '')}")
        for job in jobs:
            src_qmp.execute("block-job-cancel", {"device": job})
        wait_jobs(src_qmp, "BLOCK_JOB_COMPLETED", jobs, 60)
        t_disks_done = time.time()
        for d in disks:
            src_qmp.execute("blockdev-del", {"node-name": f"nbd-{d['dev']}"})
        dst_qmp.wait_event("MIGRATION", lambda d: d.get("status") in ("completed", "failed"), 60)
        dst_qmp.execute("nbd-server-stop")
        dst_qmp.execute("cont")
        t_running = time.time()
        src_qmp.execute("query-status")
        raw.stop(src, src_qmp)
        t_done = time.time()

        result.update(
            {
                "wall-ms": raw.ms(t0, t_done),
                "setup-ms": raw.ms(t0, t_mirror),
                "disk-ms": raw.ms(t_mirror, t_migrate),
                "mirror-ms": raw.ms(t_mirror, t_ready),
                "ready-lag-ms": raw.ms(t_ready, t_migrate),
                "memory-ms": raw.ms(t_migrate, t_disks_done),
                "finish-ms": raw.ms(t_disks_done, t_done),
                "running-ms": raw.ms(t0, t_running),
                "disk-bytes": sum(j.get("len", 0) for j in copied.values()),
                "disks": {
                    jobs[n]["dev"]: {"format": jobs[n]["format"], "size": jobs[n]["size"], "len": j.get("len")}
                    for n, j in copied.items()
                },
                "downtime-ms": info.get("downtime"),
                "transferred": info.get("ram", {}).get("transferred"),
            }
        )

        # --- the guest on the destination (not timed)
        rc, out = raw.guestctl(args.guestctl, dst_serial, "verify", timeout=args.verify_timeout)
        result["verify"] = out
        if rc != 0:
            raise Failure(f"the guest's memory does not verify on the destination: {out}")
        rc, out = raw.guestctl(args.guestctl, dst_serial, "disk-verify", timeout=args.verify_timeout)
        result["disk-verify"] = out
        if rc != 0:
            raise Failure(f"the guest's disks do not verify on the destination: {out}")
    finally:
        for proc, q in ((src, src_qmp), (dst, dst_qmp)):
            if proc is not None:
                raw.stop(proc, q)
            if q is not None:
                q.close()
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--argv-from", required=True, help="vmigrated's per-domain QEMU log")
    p.add_argument("--workdir", required=True, help="sockets and logs of this run")
    p.add_argument("--src-exec", default="", help="command prefix running the source QEMU in its host")
    p.add_argument("--dst-exec", default="", help="command prefix running qemu-img and QEMU in the destination")
    p.add_argument("--dest-host", required=True, help="where the source sends the disks and the stream")
    p.add_argument("--port", type=int, default=49200, help="the memory stream's port")
    p.add_argument("--nbd-port", type=int, default=49201, help="the destination's NBD server")
    p.add_argument("--guestctl", required=True)
    p.add_argument("--warmup", type=float, default=0)
    p.add_argument("--max-bandwidth", type=int, default=raw.UNLIMITED_BANDWIDTH)
    p.add_argument("--downtime-limit", type=int, default=raw.DEFAULT_DOWNTIME_MS)
    p.add_argument("--timeout", type=float, default=600, help="seconds the disk copy and the stream may take each")
    p.add_argument("--verify-timeout", type=float, default=120)
    args = p.parse_args()
    for name in ("port", "nbd_port"):
        if not 1 <= getattr(args, name) <= 65535:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)}: not a TCP port")
    if args.port == args.nbd_port:
        p.error("--port and --nbd-port must differ")
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
