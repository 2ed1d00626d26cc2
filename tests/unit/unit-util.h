/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "domain-xml.h"
#include "errors.h"
#include "findings.h"
#include "host-facts.h"
#include "manager.h"
#include "options.h"

/*
 * What the unit tests of the migration modules share (linked by those that
 * need it): a host in a temporary directory, made of a manager with the
 * built-in backends on its own event loop and facts filled in by hand,
 * and the asserts of refusals and pre-flight findings. The qemu backend
 * is unavailable (VMIGRATE_QEMU points nowhere): nothing depends on this
 * machine's QEMU.
 */

#define UUID_A "8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10"
#define UUID_B "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
#define SOURCE_UUID "11111111-2222-4333-8444-555555555555"

typedef struct TestHost {
        char *top; /* the temporary directory: the manager's state/ and run/, net/, test files */
        sd_event *event;
        Manager *manager;
        /* This host ("host-b", the destination) as the checks see it: 16 GiB,
         * 4 CPUs, KVM, userfaultfd, bridge br0 and plain interface eth0. */
        HostFacts facts;
        SourceFacts *source; /* what "host-a" said: its hostname, no disk sizes yet */
        Findings *out;       /* for "host-b" */
        bool done;           /* start_domain(): the backend has answered */
} TestHost;

/* For g_test_add(path, TestHost, NULL, test_host_setup, test, test_host_teardown). */
void test_host_setup(TestHost *f, gconstpointer data);
void test_host_teardown(TestHost *f, gconstpointer data);

/* ---- files ---- */

void rm_rf(const char *path);
char *path_in(const TestHost *f, const char *name);
/* `size` zero bytes. */
void write_file(const TestHost *f, const char *name, size_t size);
/* A qcow2 header that says the guest sees `virtual_size` bytes. */
/* A qcow2 header naming backing (NULL: none) and its format (NULL: not said). */
void write_qcow2_backing(const TestHost *f, const char *name, uint64_t virtual_size, const char *backing,
                         const char *backing_format);
void write_qcow2(const TestHost *f, const char *name, uint64_t virtual_size);

/* ---- domains and options ---- */

DomainDef *parse_def(const char *xml);
/* A kvm domain of 2 GiB and 2 vCPUs, with extra_os in <os> and devices. */
char *qemu_xml(const char *extra_os, const char *devices);
/* A parsed, unchecked a{sv} in GVariant text; NULL for none. */
MigrateOptions *parse_options(const char *text);
/* A persistent domain of the test backend, shut off. */
Domain *define_domain(TestHost *f, const char *name, const char *uuid, const char *memory_mib);
/* Starts d and runs the loop until it runs. */
void start_domain(TestHost *f, Domain *d);

/* What the checks get on `side` for def with options: this host's facts
 * and what the source said. */
PreflightContext preflight_context(const TestHost *f, PreflightSide side, const DomainDef *def,
                                   const MigrateOptions *o);

/* ---- errors and findings ---- */

/* error is `code` of VM_ERROR and its message contains `word`. */
void assert_vm_error(const GError *error, VmError code, const char *word);

/* The finding `id` is there, with severity, and its message starts with
 * the host and contains each of the NULL-terminated words. */
void assert_finding(const Findings *out, const char *id, FindingSeverity severity,
                    ...) G_GNUC_NULL_TERMINATED;
void assert_quiet(const Findings *out);
