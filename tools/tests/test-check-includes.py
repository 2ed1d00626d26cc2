#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Self-test of tools/check-includes.py: it must see a cycle, a core file
that reaches a backend header, sd-bus in the core, and accept a clean tree.
TAP on stdout. Usage: test-check-includes.py PATH/TO/check-includes.py"""
import importlib.util
import os
import sys
import tempfile

spec = importlib.util.spec_from_file_location("check_includes", sys.argv[1])
ci = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ci)


def tree(files):
    root = tempfile.mkdtemp()
    for path, text in files.items():
        os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(root, path), "w") as f:
            f.write(text)
    return root


CLEAN = {
    "common/errors.h": "#pragma once\n",
    "service/core/domain.h": '#include "job.h"\n#include "errors.h"\n',
    "service/core/job.h": '#include "manager.h"\n',
    "service/core/manager.h": '#include "domain.h"\n',
    "service/core/backend.h": '#include "domain-xml.h"\n',
    "service/core/domain-xml.h": "#pragma once\n",
    "service/migration/migration.c": '#include "manager.h"\n#include <systemd/sd-event.h>\n',
    "service/backends/qemu/qmp.h": '#include "backend.h"\n',
    "service/main.c": '#include "qmp.h"\n#include "migration.h"\n',
    "service/migration/migration.h": "#pragma once\n",
    "client/ctl.c": '#include "errors.h"\n',
}

cases = []


def case(name, files, expect):
    problems, _ = ci.check(tree(files))
    ok = all(any(e in p for p in problems) for e in expect) and (expect or not problems)
    cases.append((name, ok, problems))


case("clean tree passes (registry triangle allowed)", CLEAN, [])
case("cycle outside the triangle", dict(CLEAN, **{
    "service/migration/migration.h": '#include "preflight.h"\n',
    "service/migration/preflight.h": '#include "migration.h"\n'}), ["include cycle"])
case("core cannot see a backend header", dict(CLEAN, **{
    "service/migration/preflight.c": '#include "qmp.h"\n'}), ["cannot see"])
case("core does not use sd-bus", dict(CLEAN, **{
    "service/core/job.c": '#include <systemd/sd-bus.h>\n'}), ["never touches sd-bus"])
case("common cannot see the core", dict(CLEAN, **{
    "common/options.c": '#include "domain-xml.h"\n'}), ["cannot see"])
case("client cannot see the daemon", dict(CLEAN, **{
    "client/ctl.c": '#include "manager.h"\n'}), ["cannot see"])

print(f"1..{len(cases)}")
for i, (name, ok, problems) in enumerate(cases, 1):
    for p in problems:
        print(f"# {p}")
    print(f"{'ok' if ok else 'not ok'} {i} {name}")
