#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Raw QEMU pre-copy with a time budget: the baseline of
bench/convergence-bench.sh.

The same QEMU command line, capabilities and parameters as
bench/raw-qmp-migrate.py (whose helpers this imports): the source guest
is started and warmed up, the destination started with -incoming defer,
then `migrate`. If the migration has not completed after --budget seconds,
query-migrate says how far it got and migrate_cancel stops it; the guest
keeps running on the source, whose memory is then verified.

Prints one JSON object: converged (bool), wall-ms (migrate .. completed,
or the budget), passes, transferred, remaining, total, dirty-pages-rate,
mbps, downtime-ms (when converged), verify (the source after a cancel,
the destination after a completion), error. Exit 0 when the run went as
measured (converged or not), 1 on failure, 2 on usage errors.
"""

import argparse
import importlib.util
import json
import os
import signal
import sys
import time

_spec = importlib.util.spec_from_file_location(
    "raw_qmp_migrate", os.path.join(os.path.dirname(os.path.abspath(__file__)), "raw-qmp-migrate.py")
)
raw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw)


def run(args):
    os.makedirs(args.workdir, exist_ok=True)
    for name in os.listdir(args.workdir):
        if name.endswith(".sock"):
            os.unlink(os.path.join(args.workdir, name))
    base = raw.read_argv(args.argv_from)
    src_argv, src_qmp_path, src_serial = raw.rewrite_argv(base, args.workdir, "src")
    dst_argv, dst_qmp_path, dst_serial = raw.rewrite_argv(base, args.workdir, "dst")
    dst_argv += ["-incoming", "defer"]
    result = {"converged": False, "verify": None}
    src = dst = src_qmp = dst_qmp = None
    try:
        src = raw.spawn(args.src_exec, src_argv, os.path.join(args.workdir, "src-qemu.log"))
        src_qmp = raw.Qmp(src_qmp_path, "source", time.monotonic() + 30)
        src_qmp.execute("cont")
        rc, out = raw.guestctl(args.guestctl, src_serial, "wait-heartbeat", timeout=60)
        if rc != 0:
            raise raw.Failure(f"the source guest has no heartbeat: {out}")
        if args.warmup > 0:
            time.sleep(args.warmup)

        dst = raw.spawn(args.dst_exec, dst_argv, os.path.join(args.workdir, "dst-qemu.log"))
        dst_qmp = raw.Qmp(dst_qmp_path, "destination", time.monotonic() + 30)
        dst_qmp.execute("migrate-set-capabilities", raw.capabilities())
        dst_qmp.execute("migrate-incoming", {"uri": f"tcp:0.0.0.0:{args.port}"})
        src_qmp.execute("migrate-set-capabilities", raw.capabilities())
        src_qmp.execute(
            "migrate-set-parameters",
            {"max-bandwidth": args.max_bandwidth, "downtime-limit": args.downtime_limit},
        )
        t0 = time.monotonic()
        src_qmp.execute("migrate", {"uri": f"tcp:{args.dest_host}:{args.port}"})
        status = None
        try:
            ev = src_qmp.wait_event(
                "MIGRATION", lambda d: d.get("status") in ("completed", "failed", "cancelled"), args.budget
            )
            status = ev["data"]["status"]
        except raw.Failure as e:
            if "timed out" not in str(e):
                raise
        t1 = time.monotonic()
        info = src_qmp.execute("query-migrate")
        ram = info.get("ram", {})
        result.update(
            {
                "wall-ms": raw.ms(t0, t1),
                "passes": ram.get("dirty-sync-count"),
                "transferred": ram.get("transferred"),
                "remaining": ram.get("remaining"),
                "total": ram.get("total"),
                "dirty-pages-rate": ram.get("dirty-pages-rate"),
                "mbps": ram.get("mbps"),
                "status": info.get("status"),
            }
        )
        if status == "completed":
            result["converged"] = True
            result["downtime-ms"] = info.get("downtime")
            dst_qmp.wait_event("MIGRATION", lambda d: d.get("status") in ("completed", "failed"), 60)
            dst_qmp.execute("cont")
            rc, out = raw.guestctl(args.guestctl, dst_serial, "verify", timeout=120)
        elif status is None:
            # Out of budget: cancel; the guest goes on running on the source.
            src_qmp.execute("migrate_cancel")
            src_qmp.wait_event("MIGRATION", lambda d: d.get("status") in ("cancelled", "failed"), 30)
            rc, out = raw.guestctl(args.guestctl, src_serial, "verify", timeout=120)
        else:
            raise raw.Failure(f"the migration {status}: {info.get('error-desc', '')}")
        result["verify"] = out
        if rc != 0:
            raise raw.Failure(f"the guest's memory does not verify: {out}")
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
    p.add_argument("--workdir", required=True)
    p.add_argument("--src-exec", default="")
    p.add_argument("--dst-exec", default="")
    p.add_argument("--dest-host", required=True)
    p.add_argument("--port", type=int, default=49200)
    p.add_argument("--guestctl", required=True)
    p.add_argument("--warmup", type=float, default=0)
    p.add_argument("--budget", type=float, default=60, help="seconds pre-copy may take")
    p.add_argument("--max-bandwidth", type=int, default=raw.UNLIMITED_BANDWIDTH)
    p.add_argument("--downtime-limit", type=int, default=raw.DEFAULT_DOWNTIME_MS)
    args = p.parse_args()
    if not 1 <= args.port <= 65535:
        p.error(f"--port {args.port}: not a TCP port")
    if not 0 < args.budget <= 3600:
        p.error(f"--budget {args.budget}: 0 to 3600 seconds")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run(args)
    except raw.Failure as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
