#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks vmigrate's layering from its #include "..." lines.

    tools/check-includes.py [--graph] [--tap] [--objects BUILD_DIR] [SOURCE_ROOT]

A module is a .c file and its .h (service/core/manager.c + manager.h); the
domain XML parser's files (domain-xml*.c|h) are one module. Module
A depends on module B when a file of A includes B's header. Two rules:

1. No include cycle between modules, except the registry triangle
   domain/job/manager (each names the others' objects, as in machined).
2. Each layer includes only what it may see:
     common/                  common/ only (shared by vmigrated and vmigratectl)
     service/core/,
     service/migration/       common/, core/, migration/; never sd-bus.h
     service/backends/NAME/   common/, core/, migration/ and its own folder
     service/backends/*.c|h   common/, core/, migration/, backends/*/
     service/*.c|h            anything of the daemon (the bus layer)
     client/                  common/ and client/
   Headers are resolved by the same search path the build gives that layer,
   so this says what the compiler would find, not what a name suggests.

3. With --objects BUILD_DIR, the same for what the linker sees: module A
   depends on B when A's object uses a symbol B's defines (nm). This
   catches what includes cannot: a header declaring functions that live in
   several files. Here a backend folder counts as one module (its files
   share a private header, as a plugin does).

Prints one line per problem and exits 1 if there is any; --graph prints the
module graph (for a reviewer); --tap reports the two rules as TAP for meson.
"""
import glob
import os
import re
import subprocess
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]', re.M)
ALLOWED_CYCLES = [{"service/core/domain", "service/core/job", "service/core/manager"}]

# layer name -> folders (relative to the root) searched for "..." includes
LAYERS = {
    "common": ["common"],
    "core": ["service/core", "service/migration", "common"],
    "backend": None,  # filled per backend folder
    "backends": ["service/backends", "service/core", "service/migration", "common"],
    "bus": ["service", "service/core", "service/migration", "service/backends",
            "service/backends/qemu", "common"],
    "client": ["client", "common"],
}


def layer_of(path):
    parts = path.split("/")
    if parts[0] == "common":
        return "common", LAYERS["common"]
    if parts[0] == "client":
        return "client", LAYERS["client"]
    if parts[0] != "service":
        return None, None
    if parts[1] in ("core", "migration"):
        return "core", LAYERS["core"]
    if parts[1] == "backends":
        if len(parts) == 3:
            return "backends", LAYERS["backends"]
        own = "/".join(parts[:3])
        return "backend", [own, "service/core", "service/migration", "common"]
    return "bus", LAYERS["bus"]


def module_of(path):
    # The domain XML parser is one module in several files: domain-xml.c and
    # its groups of elements (domain-xml-<group>.c) share domain-xml.h's types.
    base = os.path.splitext(path)[0]
    if re.fullmatch(r"service/core/domain-xml-[a-z-]+", base):
        return "service/core/domain-xml"
    return base


def sources(root):
    for top in ("common", "service", "client"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, f), root)


def resolve(root, path, name, search):
    # "x.h" is looked up next to the including file first, as cc does.
    for d in [os.path.dirname(path)] + search:
        candidate = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, candidate)):
            return candidate
    return None


def scc(graph):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                out.append(comp)
    return out


def check(root):
    problems = []
    graph = {}
    for path in sources(root):
        layer, search = layer_of(path)
        if layer is None:
            continue
        mod = module_of(path)
        graph.setdefault(mod, set())
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        for kind, name in INCLUDE_RE.findall(text):
            if kind == "<":
                if layer == "core" and name.startswith("systemd/sd-bus"):
                    problems.append(f"{path}: includes <{name}>: the core never touches sd-bus")
                continue
            target = resolve(root, path, name, search)
            if target is None:
                if name != "config.h":
                    problems.append(f"{path}: includes \"{name}\", which its layer ({layer}) cannot see")
                continue
            dep = module_of(target)
            if dep != mod:
                graph[mod].add(dep)
    for comp in scc(graph):
        if len(comp) < 2 or any(comp == allowed for allowed in ALLOWED_CYCLES):
            continue
        problems.append("include cycle: " + " <-> ".join(sorted(comp)))
    return problems, graph


def object_module(build, obj):
    """service/libvmigrate-core.a.p/core_manager.c.o -> service/core/manager
    (meson joins the source's folders below the target's with '_'; our
    file names use '-', never '_')."""
    rel = os.path.relpath(obj, build)
    target_dir = os.path.dirname(os.path.dirname(rel))
    name = os.path.basename(rel)[: -len(".c.o")].replace("_", "/")
    src = os.path.normpath(os.path.join(target_dir, name))
    parts = src.split("/")
    if parts[:2] == ["service", "backends"] and len(parts) > 3:
        return "/".join(parts[:3])
    return src


def check_objects(build):
    defs, uses = {}, {}
    objs = [o for top in ("common", "service") for o in glob.glob(os.path.join(build, top, "**", "*.c.o"),
                                                                   recursive=True)]
    for obj in objs:
        mod = object_module(build, obj)
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDRB":
                defs[f[2]] = mod
            elif len(f) == 2 and f[0] == "U":
                uses.setdefault(mod, set()).add(f[1])
    graph = {mod: set() for mod in set(defs.values()) | set(uses)}
    for mod, symbols in uses.items():
        for sym in symbols:
            if sym in defs and defs[sym] != mod:
                graph[mod].add(defs[sym])
    problems = []
    for comp in scc(graph):
        if len(comp) < 2 or any(comp == allowed for allowed in ALLOWED_CYCLES):
            continue
        problems.append("link cycle: " + " <-> ".join(sorted(comp)))
    if not objs:
        problems.append(f"link cycle check: no object files under {build}/common or {build}/service")
    return problems, graph


def main(argv):
    graph_wanted = "--graph" in argv
    tap = "--tap" in argv
    build = None
    if "--objects" in argv:
        i = argv.index("--objects")
        build = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    args = [a for a in argv if a not in ("--graph", "--tap")]
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems, graph = check(root)
    link_problems, link_graph = check_objects(build) if build else ([], {})
    if tap:
        cycles = [p for p in problems if p.startswith("include cycle")]
        layers = [p for p in problems if not p.startswith("include cycle")]
        checks = [("no include cycle outside domain/job/manager", cycles, len(graph)),
                  ("every layer includes only what it may see", layers, len(graph))]
        if build:
            checks.append(("no link cycle outside domain/job/manager", link_problems, len(link_graph)))
        print(f"1..{len(checks)}")
        for i, (name, found, n) in enumerate(checks, 1):
            for p in found:
                print(f"# {p}")
            print(f"{'not ok' if found else 'ok'} {i} {name} ({n} modules)")
        return 0
    problems += link_problems
    if graph_wanted and build:
        graph = link_graph
    if graph_wanted:
        for mod in sorted(graph):
            print(f"{mod}: {' '.join(sorted(graph[mod]))}")
    for p in problems:
        print(p)
    if problems:
        print(f"check-includes: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-includes: {len(graph)} modules, no cycle outside domain/job/manager, layers respected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
