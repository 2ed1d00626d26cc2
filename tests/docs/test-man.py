#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The manual pages: each renders without a warning from groff or man, and
says what the program and the bus contract say.

vmigratectl(1) must describe every command that 'vmigratectl --help' lists
and every option its help texts mention, each documented option must be one
vmigratectl accepts, and org.vmigrate.Migrate1(5) must describe every
method, signal and property of interfaces/*.xml (with its signature) in the
section of its interface, every error vmigrated can return, every polkit
action and every Migrate option. Everything is read from the program, the
XML, the policy and the source at test time: a new command, option or
member without documentation fails here.

Usage: test-man.py --vmigratectl PATH --source-root DIR [NAME.SECTION=PAGE...]
Without pages (scdoc was not installed at build time) it reports a skip.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

tests_run = 0
tests_failed = 0


def ok(cond, desc, diag=None):
    global tests_run, tests_failed
    tests_run += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (tests_run, desc))
    if not cond:
        tests_failed += 1
        for line in (diag or "").splitlines():
            print("# " + line)
    return cond


def run(argv, columns=None):
    env = dict(os.environ, LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
    env.pop("MANOPT", None)
    if columns:
        env["MANWIDTH"] = str(columns)
    return subprocess.run(argv, capture_output=True, text=True, env=env)


def render(page):
    """The page as plain text, one line per paragraph: no hyphenation, no
    line breaks inside a paragraph, no bold or underline."""
    r = run(["groff", "-man", "-Tascii", "-rHY=0", "-rLL=5000n", "-P-c", "-P-b", "-P-u", "-P-o", page])
    if r.returncode != 0:
        raise RuntimeError("groff failed on %s: %s" % (page, r.stderr))
    return r.stdout


def sections(text):
    """{HEADING: [lines]} of a rendered page: headings start in column 0,
    as do the page's header (first line) and footer (last one)."""
    lines = text.rstrip("\n").splitlines()[1:-1]
    result, current = {}, None
    for line in lines:
        if line and not line[0].isspace():
            current = line.strip()
            result[current] = []
        elif current is not None:
            result[current].append(line)
    return result


def terms(lines):
    """The terms of a section's definition list: the lines indented by the
    section's 7 columns that a more indented body follows."""
    return [
        line[7:]
        for line, following in zip(lines, lines[1:] + [""])
        if re.match(r"^ {7}\S", line) and re.match(r"^ {8,}\S", following)
    ]


def words_of(text):
    return set(re.findall(r"(?<![\w-])-{1,2}[A-Za-z][\w-]*", text))


# ---- rendering ----------------------------------------------------------


def check_renders(name, page):
    r = run(["groff", "-ww", "-z", "-man", page])
    ok(r.returncode == 0 and r.stderr == "", "%s: groff -ww -z -man gives no warning" % name, r.stderr)
    # man-db's own pipeline (preconv, tbl, the terminal's width); w: all of groff's warnings
    r = run(["man", "--warnings=w", "-l", page], columns=80)
    ok(
        r.returncode == 0 and r.stderr == "" and name.split(".")[0].lower() in r.stdout.lower(),
        "%s: man -l renders it at 80 columns without a warning" % name,
        r.stderr,
    )


# ---- vmigratectl(1) -----------------------------------------------------


def help_texts(vmigratectl):
    main = run([vmigratectl, "--help"])
    if main.returncode != 0:
        raise RuntimeError("vmigratectl --help failed: " + main.stderr)
    commands = []
    in_commands = False
    for line in main.stdout.splitlines():
        if line == "Commands:":
            in_commands = True
        elif in_commands and not line.strip():
            break
        elif in_commands and re.match(r"^  \S", line):
            commands.append(line.split()[0])
    texts = {"": main.stdout}
    for command in commands:
        if command == "help":
            continue
        r = run([vmigratectl, command, "--help"])
        if r.returncode != 0:
            raise RuntimeError("vmigratectl %s --help failed: %s" % (command, r.stderr))
        texts[command] = r.stdout
    return commands, texts


def option_is_known(vmigratectl, option):
    """Whether vmigratectl takes OPTION (whatever its argument)."""
    r = run([vmigratectl, option, "help"])
    return "unknown option" not in r.stderr


def check_vmigratectl(page, vmigratectl):
    text = render(page)
    secs = sections(text)
    commands, helps = help_texts(vmigratectl)
    ok(len(commands) >= 20 and "migrate" in commands, "vmigratectl --help lists the commands", "\n".join(commands))

    documented_commands = set()
    for term in terms(secs.get("COMMANDS", [])):
        for part in term.split(", "):
            documented_commands.add(part.split()[0])
    missing = [c for c in commands if c not in documented_commands]
    ok(not missing, "every command of vmigratectl --help has an entry under COMMANDS", "missing: %s" % missing)
    extra = sorted(documented_commands - set(commands))
    ok(not extra, "every command under COMMANDS exists", "not in --help: %s" % extra)

    # Every option any help text mentions (vmigrated's, named in passing
    # such as --shutdown-timeout, included) appears in the page.
    mentioned = set()
    for t in helps.values():
        mentioned |= {w for w in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", t)}
    page_words = words_of(text)
    missing = sorted(mentioned - page_words)
    ok(len(mentioned) > 50 and not missing, "every option the help texts mention (%d) appears in the page" % len(mentioned),
       "missing: %s" % missing)

    # Those vmigratectl takes have an entry of their own, or are virsh's
    # names, which the page lists in one paragraph.
    known = sorted(o for o in mentioned if option_is_known(vmigratectl, o))
    entries = set()
    for heading in ("OPTIONS", "MIGRATE OPTIONS"):
        for term in terms(secs.get(heading, [])):
            entries |= {w.split("=")[0] for w in re.findall(r"(?<![\w-])-{1,2}[A-Za-z][\w-]*", term)}
    virsh_paragraph = " ".join(l for l in secs.get("MIGRATE OPTIONS", []) if "virsh(1) migrate's names" in l)
    virsh_names = words_of(virsh_paragraph)
    missing = [o for o in known if o not in entries and o not in virsh_names]
    ok(len(known) > 50 and not missing, "every option vmigratectl takes (%d) is described under OPTIONS or MIGRATE OPTIONS" % len(known),
       "missing: %s" % missing)
    for short in ("-H", "-q", "-h"):
        ok(short in entries and option_is_known(vmigratectl, short), "short option %s is described" % short)
    unknown = sorted(o for o in entries | virsh_names if not option_is_known(vmigratectl, o))
    ok(not unknown, "every option the page describes is one vmigratectl takes", "unknown: %s" % unknown)

    exit_codes = {t.strip() for t in terms(secs.get("EXIT STATUS", []))}
    ok(exit_codes == {"0", "1", "2", "3", "4", "5"}, "EXIT STATUS lists the exit codes 0 to 5", str(sorted(exit_codes)))
    for heading in ("SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"):
        ok(heading in secs and any(l.strip() for l in secs[heading]), "vmigratectl(1) has a %s section" % heading)


# ---- org.vmigrate.Migrate1(5) -------------------------------------------


def signature(member):
    args = member.findall("arg")
    if member.tag == "method":
        ins = [a for a in args if a.get("direction", "in") == "in"]
        outs = [a.get("type") for a in args if a.get("direction") == "out"]
        s = "%s(%s)" % (member.get("name"), ", ".join("%s %s" % (a.get("type"), a.get("name")) for a in ins))
        if len(outs) == 1:
            s += " -> " + outs[0]
        elif outs:
            s += " -> (%s)" % ", ".join(outs)
        return s
    if member.tag == "signal":
        return "%s(%s), signal" % (member.get("name"), ", ".join("%s %s" % (a.get("type"), a.get("name")) for a in args))
    return None


def check_api(page, source_root):
    text = render(page)
    secs = sections(text)
    xml_files = sorted(glob.glob(os.path.join(source_root, "interfaces", "org.vmigrate.Migrate1.*.xml")))
    ok(len(xml_files) >= 4, "the interface files are found", str(xml_files))
    mentioned_errors = set()
    for path in xml_files:
        raw = open(path, encoding="utf-8").read()
        mentioned_errors |= set(re.findall(r"org\.vmigrate\.Migrate1\.Error\.(\w+)", raw))
        for iface in ET.parse(path).getroot().iter("interface"):
            name = iface.get("name")
            heading = "INTERFACE " + name
            ok(heading in secs, "%s has a section" % heading)
            section_terms = terms(secs.get(heading, []))
            for member in iface:
                if member.tag not in ("method", "signal", "property"):
                    continue
                mname = member.get("name")
                if member.tag == "property":
                    # "Name (type)" or "A, B, C (type)"
                    found = any(
                        re.match(r"^(?:[\w]+, )*%s(?:, [\w]+)* \(%s\)$" % (re.escape(mname), re.escape(member.get("type"))), t)
                        for t in section_terms
                    )
                    # several properties of one type share a term: "A (o), B (s)"
                    found = found or any(
                        re.search(r"(?:^|, )%s(?:, \w+)* \(%s\)" % (re.escape(mname), re.escape(member.get("type"))), t)
                        for t in section_terms
                    )
                    want = "%s (%s)" % (mname, member.get("type"))
                else:
                    want = signature(member)
                    found = want in section_terms
                ok(found, "%s.%s: %s %s is described with its signature" % (name, mname, member.tag, want),
                   "terms of the section:\n" + "\n".join(section_terms))

    # Every error the service can return (its table) and every one the
    # contract mentions has an entry.
    errors_c = open(os.path.join(source_root, "common", "errors.c"), encoding="utf-8").read()
    table = set(re.findall(r'\[VM_ERROR_\w+\] = \{ "(\w+)"', errors_c))
    ok(len(table) >= 20, "the error table is read from common/errors.c (%d names)" % len(table))
    error_terms = set()
    for t in terms(secs.get("ERRORS", [])):
        error_terms |= set(t.split(", "))
    missing = sorted((table | mentioned_errors) - error_terms)
    ok(not missing, "every error of common/errors.c and of the interfaces has an entry under ERRORS", "missing: %s" % missing)
    extra = sorted(error_terms - table)
    ok(not extra, "every error under ERRORS exists", "unknown: %s" % extra)

    policy = ET.parse(os.path.join(source_root, "polkit", "org.vmigrate.migrate1.policy")).getroot()
    actions = {a.get("id") for a in policy.iter("action")}
    auth_terms = {t.strip() for t in terms(secs.get("AUTHORIZATION", []))}
    ok(len(actions) >= 5 and actions == auth_terms, "AUTHORIZATION describes exactly the polkit actions of the policy",
       "policy: %s\npage: %s" % (sorted(actions), sorted(auth_terms)))

    options_c = open(os.path.join(source_root, "common", "options.c"), encoding="utf-8").read()
    keys = set(re.findall(r'BOOL_OPTION\("([a-z-]+)"|\.key = "([a-z-]+)"', options_c))
    keys = {a or b for a, b in keys}
    option_text = " ".join(secs.get("MIGRATE OPTIONS", []))
    missing = sorted(k for k in keys if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(k), option_text))
    ok(len(keys) >= 30 and not missing, "every Migrate option of common/options.c (%d) is listed" % len(keys),
       "missing: %s" % missing)
    ok("/usr/share/dbus-1/interfaces/" in text, "the page points to the installed interface files")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vmigratectl", required=True)
    parser.add_argument("--source-root", required=True)
    parser.add_argument("pages", nargs="*")
    args = parser.parse_args()

    pages = dict(p.split("=", 1) for p in args.pages)
    if not pages:
        print("1..0 # SKIP the manual pages were not built (scdoc was not installed)")
        return 0
    for tool in ("groff", "man"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            print("1..0 # SKIP %s is not installed" % tool)
            return 0

    expected = {"vmigratectl.1", "org.vmigrate.Migrate1.5"}
    ok(expected <= set(pages), "the pages checked here are built", str(sorted(pages)))
    for name, page in sorted(pages.items()):
        check_renders(name, page)
    if "vmigratectl.1" in pages:
        check_vmigratectl(pages["vmigratectl.1"], args.vmigratectl)
    if "org.vmigrate.Migrate1.5" in pages:
        check_api(pages["org.vmigrate.Migrate1.5"], args.source_root)
    print("1..%d" % tests_run)
    return 1 if tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
