/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The generic pre-flight checks (preflight.h): each check fires with its id
 * and a message that names the host and the thing, and stays quiet when all
 * is well. Host facts are filled in by hand and files live in a temporary
 * directory, so nothing depends on this machine but the ability to bind a
 * local port. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "errors.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "preflight.h"
#include "unit-util.h"

static void source_says_size(TestHost *f, const char *dev, uint64_t size) {
        g_hash_table_insert(f->source->disk_sizes, g_strdup(dev), g_memdup2(&size, sizeof(size)));
}

static DomainDef *test_def(const char *name, const char *uuid, const char *memory_mib) {
        g_autofree char *xml = g_strdup_printf("<domain type='test'><name>%s</name><uuid>%s</uuid>"
                                               "<memory unit='MiB'>%s</memory><vcpu>2</vcpu></domain>",
                                               name, uuid, memory_mib);
        return parse_def(xml);
}

/* ---- destination: the generic checks ---- */

static void check_destination(TestHost *f, const DomainDef *def, const MigrateOptions *o,
                              const char *source_uuid) {
        preflight_destination_with_facts(f->manager, &f->facts, def, o, source_uuid, f->source, f->out);
}

static void test_destination_quiet(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = parse_options(NULL);

        check_destination(f, def, o, SOURCE_UUID);
        assert_quiet(f->out);

        /* The same definition stored here, shut off: the normal case of a
         * persistent domain coming back. */
        define_domain(f, "vm1", UUID_A, "256");
        check_destination(f, def, o, SOURCE_UUID);
        assert_quiet(f->out);
}

static void test_destination_same_host(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = parse_options(NULL);

        check_destination(f, def, o, f->manager->host_uuid);
        assert_finding(f->out, "host.same", FINDING_ERROR, f->manager->host_uuid, "another host", NULL);
        g_assert_cmpint(findings_find(f->out, "host.same")->code, ==, VM_ERROR_INVALID_DESTINATION);
}

static void test_destination_limit(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        Domain *other = define_domain(f, "other", UUID_B, "64");
        Job *job;

        f->manager->max_incoming = 1;
        check_destination(f, def, o, SOURCE_UUID);
        assert_quiet(f->out);

        job = job_new(f->manager, JOB_MIGRATION_IN, other, "host-a");
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "limits.incoming", FINDING_ERROR, "1 migrations are already arriving",
                       "--max-incoming-migrations", NULL);
        g_assert_cmpint(findings_find(f->out, "limits.incoming")->code, ==, VM_ERROR_LIMIT_REACHED);
        job_end(job, JOB_PHASE_FAILED, "test over");

        findings_free(f->out);
        f->out = findings_new("host-b");
        f->manager->shutting_down = true;
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "limits.incoming", FINDING_ERROR, "stopping", NULL);
        f->manager->shutting_down = false;
}

static void test_destination_name_conflict(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = parse_options(NULL);

        define_domain(f, "vm1", UUID_B, "256");
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "domain.name-conflict", FINDING_ERROR, "'vm1'", UUID_B, "destination-name",
                       NULL);
        g_assert_cmpint(findings_find(f->out, "domain.name-conflict")->code, ==, VM_ERROR_DOMAIN_EXISTS);
}

static void test_destination_running(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        Domain *d = define_domain(f, "vm1", UUID_A, "256");

        start_domain(f, d);
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "domain.running", FINDING_ERROR, "'vm1'", "already running here", NULL);
}

static void test_destination_defined_differently(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(DomainDef) bigger = test_def("vm1", UUID_A, "512");
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) persist = parse_options("{'persist': <true>}");

        define_domain(f, "old", UUID_A, "256");
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "domain.defined-differently", FINDING_ERROR, UUID_A, "'old'", "'vm1'", NULL);

        /* Same name, other definition: allowed, said. */
        Findings *out = findings_new("host-b");
        define_domain(f, "vm2", UUID_B, "256");
        g_autoptr(DomainDef) vm2 = test_def("vm2", UUID_B, "512");
        preflight_destination_with_facts(f->manager, &f->facts, vm2, o, SOURCE_UUID, f->source, out);
        assert_finding(out, "domain.defined-differently", FINDING_WARNING, "'vm2'", "kept for its next boot",
                       NULL);
        g_assert_false(findings_has_errors(out));
        findings_free(out);
        out = findings_new("host-b");
        preflight_destination_with_facts(f->manager, &f->facts, vm2, persist, SOURCE_UUID, f->source, out);
        assert_finding(out, "domain.defined-differently", FINDING_WARNING, "replaces", NULL);
        findings_free(out);
}

static void test_destination_options(TestHost *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        /* The test backend has one simulated connection. */
        g_autoptr(MigrateOptions) o = parse_options("{'parallel-connections': <uint32 4>}");

        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "options.valid", FINDING_ERROR, "'parallel-connections'", "'test' backend",
                       NULL);
        g_assert_cmpint(findings_find(f->out, "options.valid")->code, ==, VM_ERROR_UNSUPPORTED_OPTION);
}

static void test_destination_backend(TestHost *f, gconstpointer data) {
        /* VMIGRATE_QEMU points nowhere: the qemu backend is unavailable. */
        g_autoptr(DomainDef) def = parse_def("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                             "<memory unit='MiB'>256</memory><vcpu>1</vcpu></domain>");
        g_autoptr(MigrateOptions) o = parse_options(NULL);

        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "backend.available", FINDING_ERROR, "'qemu' backend is unavailable here",
                       NULL);
        g_assert_cmpint(findings_find(f->out, "backend.available")->code, ==, VM_ERROR_UNSUPPORTED_BACKEND);
}

/* ---- source ---- */

static void test_source(TestHost *f, gconstpointer data) {
        Domain *d = define_domain(f, "vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) paused = parse_options("{'live': <false>}");
        g_autoptr(MigrateOptions) offline = parse_options("{'offline': <true>}");
        g_autoptr(MigrateOptions) bad = parse_options("{'compression': <'zstd'>}");

        preflight_source_with_facts(d, &f->facts, o, f->out);
        assert_finding(f->out, "domain.state", FINDING_ERROR, "'vm1' is shutoff", "running or paused", NULL);
        g_assert_cmpint(findings_find(f->out, "domain.state")->code, ==, VM_ERROR_INVALID_STATE);

        /* Offline moves the definition of a shut-off domain: fine. */
        findings_free(f->out);
        f->out = findings_new("host-a");
        preflight_source_with_facts(d, &f->facts, offline, f->out);
        assert_quiet(f->out);

        start_domain(f, d);
        findings_free(f->out);
        f->out = findings_new("host-a");
        preflight_source_with_facts(d, &f->facts, o, f->out);
        assert_quiet(f->out);

        preflight_source_with_facts(d, &f->facts, offline, f->out);
        assert_finding(f->out, "domain.state", FINDING_ERROR, "'vm1' is running", "shut it down", NULL);

        findings_free(f->out);
        f->out = findings_new("host-a");
        preflight_source_with_facts(d, &f->facts, paused, f->out);
        assert_finding(f->out, "options.valid", FINDING_WARNING, "'live'=false", NULL);
        g_assert_false(findings_has_errors(f->out));

        findings_free(f->out);
        f->out = findings_new("host-a");
        preflight_source_with_facts(d, &f->facts, bad, f->out);
        assert_finding(f->out, "options.valid", FINDING_ERROR, "'compression'", NULL);
        g_assert_cmpint(findings_find(f->out, "options.valid")->code, ==, VM_ERROR_UNSUPPORTED_OPTION);

        /* The outgoing limit and a job in progress. */
        findings_free(f->out);
        f->out = findings_new("host-a");
        Domain *other = define_domain(f, "other", UUID_B, "64");
        f->manager->max_outgoing = 1;
        Job *job = job_new(f->manager, JOB_MIGRATION_OUT, other, "ssh://host-b");
        preflight_source_with_facts(d, &f->facts, o, f->out);
        assert_finding(f->out, "limits.outgoing", FINDING_ERROR, "1 migrations are already leaving", NULL);
        preflight_source_with_facts(other, &f->facts, o, f->out);
        assert_finding(f->out, "domain.state", FINDING_ERROR, "'other' already has a job", NULL);
        g_assert_cmpint(findings_find(f->out, "domain.state")->code, ==, VM_ERROR_JOB_ACTIVE);
        job_end(job, JOB_PHASE_FAILED, "test over");

        /* destination-xml that changes what the guest sees. */
        findings_free(f->out);
        f->out = findings_new("host-a");
        f->manager->max_outgoing = 0;
        g_autoptr(MigrateOptions) xml = parse_options(
                "{'destination-xml': <\"<domain type='test'><name>vm1</name><uuid>" UUID_A "</uuid>"
                "<memory unit='MiB'>512</memory><vcpu>2</vcpu></domain>\">}");
        preflight_source_with_facts(d, &f->facts, xml, f->out);
        assert_finding(f->out, "options.valid", FINDING_ERROR, "'destination-xml'", "memory", NULL);
}

/* ---- destination: host resources ---- */

static void check_resources(TestHost *f, const char *xml, const MigrateOptions *o) {
        g_autoptr(DomainDef) def = parse_def(xml);
        PreflightContext ctx = preflight_context(f, PREFLIGHT_DESTINATION, def, o);

        preflight_host_resources(&ctx, f->out);
}

static void test_resources_memory_vcpus(TestHost *f, gconstpointer data) {
        g_autofree char *xml = qemu_xml(NULL, NULL);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) offline = parse_options("{'offline': <true>}");

        check_resources(f, xml, o);
        assert_quiet(f->out);

        f->facts.mem_available = (uint64_t) (1.2 * (1 << 30));
        f->facts.cpus = 1;
        check_resources(f, xml, o);
        assert_finding(f->out, "resources.memory", FINDING_ERROR,
                       "host-b: 1.2 GiB of memory available, the domain needs 2.0 GiB + 64.0 MiB overhead",
                       NULL);
        assert_finding(f->out, "resources.vcpus", FINDING_WARNING, "2 vCPUs", "1 CPUs", NULL);

        /* Just enough is enough; offline starts nothing. */
        findings_free(f->out);
        f->out = findings_new("host-b");
        f->facts.mem_available = (2ULL << 30) + (64ULL << 20);
        f->facts.cpus = 2;
        check_resources(f, xml, o);
        assert_quiet(f->out);
        f->facts.mem_available = 1;
        check_resources(f, xml, offline);
        assert_quiet(f->out);
}

static void test_resources_boot(TestHost *f, gconstpointer data) {
        g_autofree char *kernel = path_in(f, "vmlinuz"), *initrd = path_in(f, "initrd.img"),
                        *firmware = path_in(f, "qboot.rom");
        g_autofree char *os = g_strdup_printf("<loader>%s</loader><kernel>%s</kernel><initrd>%s</initrd>",
                                              firmware, kernel, initrd);
        g_autofree char *xml = qemu_xml(os, NULL);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) offline = parse_options("{'offline': <true>}");

        check_resources(f, xml, o);
        assert_finding(f->out, "boot.kernel", FINDING_ERROR, "host-b: kernel", kernel, "is missing", NULL);
        assert_finding(f->out, "boot.initrd", FINDING_ERROR, "host-b: initrd", initrd, "is missing", NULL);
        assert_finding(f->out, "boot.firmware", FINDING_ERROR, "host-b: firmware", firmware, "is missing",
                       NULL);

        /* Offline: it matters at the next boot only. */
        findings_free(f->out);
        f->out = findings_new("host-b");
        check_resources(f, xml, offline);
        assert_finding(f->out, "boot.kernel", FINDING_WARNING, kernel, NULL);

        findings_free(f->out);
        f->out = findings_new("host-b");
        g_assert_cmpint(g_mkdir(kernel, 0755), ==, 0);
        write_file(f, "initrd.img", 100);
        write_file(f, "qboot.rom", 100);
        check_resources(f, xml, o);
        assert_finding(f->out, "boot.kernel", FINDING_ERROR, kernel, "not a regular file", NULL);
        g_assert_null(findings_find(f->out, "boot.initrd"));
        g_assert_null(findings_find(f->out, "boot.firmware"));

        findings_free(f->out);
        f->out = findings_new("host-b");
        g_assert_cmpint(g_rmdir(kernel), ==, 0);
        write_file(f, "vmlinuz", 100);
        check_resources(f, xml, o);
        assert_quiet(f->out);
}

static char *disk_xml(const char *path, const char *format, const char *dev, bool readonly) {
        return g_strdup_printf(
                "<disk type='file' device='disk'><driver name='qemu' type='%s'/><source file='%s'/>"
                "<target dev='%s' bus='virtio'/>%s</disk>",
                format, path, dev, readonly ? "<readonly/>" : "");
}

static void test_resources_shared_disks(TestHost *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.qcow2"), *b = path_in(f, "data.img"),
                        *c = path_in(f, "iso.img");
        g_autofree char *da = disk_xml(a, "qcow2", "vda", false), *db = disk_xml(b, "raw", "vdb", false),
                        *dc = disk_xml(c, "raw", "vdc", true);
        g_autofree char *devices = g_strconcat(da, db, dc, NULL);
        g_autofree char *xml = qemu_xml(NULL, devices);
        g_autoptr(MigrateOptions) o = parse_options(NULL);

        source_says_size(f, "vda", 2ULL << 30);
        source_says_size(f, "vdb", 4096);
        check_resources(f, xml, o);
        assert_finding(
                f->out, "storage.disk", FINDING_ERROR, "host-b: disk", a,
                "(vda) is missing (host-a has it, 2.0 GiB); put it on shared storage or use copy-storage",
                NULL);
        g_assert_cmpuint(findings_count(f->out), ==, 3);

        /* Present, but another image: the size says so. */
        findings_free(f->out);
        f->out = findings_new("host-b");
        write_qcow2(f, "vm1.qcow2", 1ULL << 30);
        write_file(f, "data.img", 4096);
        write_file(f, "iso.img", 10);
        check_resources(f, xml, o);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, a, "is 1.0 GiB here but 2.0 GiB on host-a",
                       "not the same image", NULL);
        g_assert_cmpuint(findings_count(f->out), ==, 1);

        /* The same: quiet (the qcow2 file itself is small; its virtual
         * size is what counts). */
        findings_free(f->out);
        f->out = findings_new("host-b");
        write_qcow2(f, "vm1.qcow2", 2ULL << 30);
        check_resources(f, xml, o);
        assert_quiet(f->out);

        /* Not a file. */
        g_assert_cmpint(g_unlink(b), ==, 0);
        g_assert_cmpint(g_mkdir(b, 0755), ==, 0);
        check_resources(f, xml, o);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, b, "not a regular file or block device", NULL);
}

static void test_resources_copied_disks(TestHost *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.img"), *b = g_build_filename(f->top, "nodir", "data.img", NULL);
        g_autofree char *da = disk_xml(a, "raw", "vda", false), *db = disk_xml(b, "raw", "vdb", false);
        g_autofree char *devices = g_strconcat(da, db, NULL);
        g_autofree char *xml = qemu_xml(NULL, devices);
        g_autoptr(MigrateOptions) o = parse_options("{'copy-storage': <'all'>}");

        /* Neither exists here, which is fine when copying, but vdb has no
         * directory to go to. */
        source_says_size(f, "vda", 1ULL << 20);
        source_says_size(f, "vdb", 1ULL << 20);
        check_resources(f, xml, o);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, "directory", "nodir", b, "(vdb)", NULL);
        g_assert_cmpuint(findings_count(f->out), ==, 1);

        /* Far more than any disk has. */
        findings_free(f->out);
        f->out = findings_new("host-b");
        source_says_size(f, "vda", 1ULL << 60);
        g_autofree char *nodir = g_path_get_dirname(b);
        g_assert_cmpint(g_mkdir(nodir, 0755), ==, 0);
        check_resources(f, xml, o);
        assert_finding(f->out, "storage.space", FINDING_ERROR, f->top, "copying 2 disks there needs 1.0 EiB",
                       NULL);

        /* The source did not say how big: said, not guessed. */
        findings_free(f->out);
        f->out = findings_new("host-b");
        g_hash_table_remove_all(f->source->disk_sizes);
        check_resources(f, xml, o);
        assert_finding(f->out, "storage.space", FINDING_INFO, "did not report its size", NULL);
        g_assert_false(findings_has_errors(f->out));
}

/* What the source says of its images, through the cookie's own parser. */
static void source_says_image(TestHost *f, const char *dev, uint64_t allocation, uint64_t chain,
                              const char *backing, const char *format, uint64_t backing_size) {
        g_autoptr(GVariant) cookie = g_variant_ref_sink(g_variant_new_parsed(
                "{'disk-images': <{%s: (%t, %t, %s, %s, %t)}>}", dev, (guint64) allocation, (guint64) chain,
                backing ? backing : "", format ? format : "", (guint64) backing_size));
        g_autoptr(SourceFacts) s = NULL;

        g_assert_cmpint(source_facts_from_cookie(cookie, &s, NULL), ==, 0);
        if (f->source->disk_images)
                g_hash_table_unref(f->source->disk_images);
        f->source->disk_images = g_steal_pointer(&s->disk_images);
}

static void reset_findings(TestHost *f) {
        findings_free(f->out);
        f->out = findings_new("host-b");
}

/* A qcow2 needs what the source's image takes, not its virtual size; 'all'
 * copies its backing files into it too. */
static void test_resources_copy_need(TestHost *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.qcow2");
        g_autofree char *da = disk_xml(a, "qcow2", "vda", false);
        g_autofree char *xml = qemu_xml(NULL, da);
        g_autoptr(MigrateOptions) all = parse_options("{'copy-storage': <'all'>}");
        g_autoptr(MigrateOptions) inc = parse_options("{'copy-storage': <'incremental'>}");
        g_autofree char *base = path_in(f, "base.raw");

        write_file(f, "base.raw", 4096);
        source_says_size(f, "vda", 1ULL << 60);
        source_says_image(f, "vda", 1ULL << 20, 1ULL << 60, base, "raw", 4096);
        check_resources(f, xml, all);
        assert_finding(f->out, "storage.space", FINDING_ERROR, "needs 1.0 EiB plus a margin of", NULL);

        /* 'incremental' copies the top image only. */
        reset_findings(f);
        check_resources(f, xml, inc);
        assert_quiet(f->out);

        /* The margin counts: 2%, at least 64 MiB. */
        reset_findings(f);
        source_says_image(f, "vda", 1ULL << 20, 1ULL << 20, NULL, NULL, 0);
        check_resources(f, xml, all);
        assert_quiet(f->out);
}

/* 'incremental' needs the backing file here, the same format and size. */
static void test_resources_copy_backing(TestHost *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.qcow2"), *base = path_in(f, "base.qcow2");
        g_autofree char *da = disk_xml(a, "qcow2", "vda", false);
        g_autofree char *xml = qemu_xml(NULL, da);
        g_autoptr(MigrateOptions) inc = parse_options("{'copy-storage': <'incremental'>}");

        source_says_size(f, "vda", 1ULL << 30);
        source_says_image(f, "vda", 1ULL << 20, 2ULL << 20, base, "qcow2", 1ULL << 30);
        check_resources(f, xml, inc);
        assert_finding(f->out, "storage.backing", FINDING_ERROR, "host-b: backing file", base, a, "(vda)",
                       "is missing here", "copy-storage 'all'", NULL);

        reset_findings(f);
        write_file(f, "base.qcow2", 4096);
        check_resources(f, xml, inc);
        assert_finding(f->out, "storage.backing", FINDING_ERROR, base, "is raw here but qcow2 on host-a", NULL);

        reset_findings(f);
        write_qcow2(f, "base.qcow2", 2ULL << 30);
        check_resources(f, xml, inc);
        assert_finding(f->out, "storage.backing", FINDING_ERROR, base, "is 2.0 GiB here but 1.0 GiB on host-a",
                       "not the same image", NULL);

        reset_findings(f);
        write_qcow2(f, "base.qcow2", 1ULL << 30);
        check_resources(f, xml, inc);
        assert_quiet(f->out);
}

/* An image already there: refused, unless reused; reused only if alike. */
static void test_resources_copy_reuse(TestHost *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.qcow2");
        g_autofree char *da = disk_xml(a, "qcow2", "vda", false);
        g_autofree char *xml = qemu_xml(NULL, da);
        g_autoptr(MigrateOptions) all = parse_options("{'copy-storage': <'all'>}");
        g_autoptr(MigrateOptions) reuse = parse_options("{'copy-storage': <'all'>, 'reuse-images': <true>}");
        g_autofree char *block = g_strdup_printf("<disk type='block'><source dev='%s/nodev'/>"
                                                 "<target dev='vdb'/></disk>",
                                                 f->top);
        g_autofree char *block_xml = qemu_xml(NULL, block);

        source_says_size(f, "vda", 1ULL << 30);
        write_qcow2(f, "vm1.qcow2", 1ULL << 30);
        check_resources(f, xml, all);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, a, "already exists here", "'reuse-images'", NULL);

        reset_findings(f);
        check_resources(f, xml, reuse);
        assert_quiet(f->out);

        /* A top-only copy onto an old image would let the old one show. */
        g_autoptr(MigrateOptions) inc_reuse =
                parse_options("{'copy-storage': <'incremental'>, 'reuse-images': <true>}");
        g_autofree char *base = path_in(f, "base.raw");
        write_file(f, "base.raw", 4096);
        source_says_image(f, "vda", 1ULL << 20, 2ULL << 20, base, "raw", 4096);
        reset_findings(f);
        check_resources(f, xml, inc_reuse);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, a, "'incremental' copies only the top image",
                       "copy with 'all'", NULL);
        g_hash_table_remove_all(f->source->disk_images);

        reset_findings(f);
        write_qcow2(f, "vm1.qcow2", 2ULL << 30);
        check_resources(f, xml, reuse);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, a, "is 2.0 GiB here but 1.0 GiB on host-a",
                       "same size only", NULL);

        reset_findings(f);
        write_file(f, "vm1.qcow2", 1ULL << 20);
        check_resources(f, xml, reuse);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, a, "is raw here, but the disk is qcow2", NULL);

        /* A block device is never made: it must be there. */
        reset_findings(f);
        source_says_size(f, "vdb", 1ULL << 30);
        check_resources(f, block_xml, all);
        assert_finding(f->out, "storage.disk", FINDING_ERROR, "block device", "nodev", "is missing",
                       "'reuse-images'", NULL);
}

static void test_resources_bridges(TestHost *f, gconstpointer data) {
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autofree char *ok = qemu_xml(NULL, "<interface type='bridge'><source bridge='br0'/></interface>");
        g_autofree char *missing = qemu_xml(NULL,
                                            "<interface type='bridge'><source bridge='br9'/>"
                                            "<mac address='52:54:00:00:00:09'/></interface>");
        g_autofree char *plain =
                qemu_xml(NULL, "<interface type='bridge'><source bridge='eth0'/></interface>");
        g_autofree char *required = g_strdup_printf(
                "<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid><memory unit='GiB'>2</memory>"
                "<vcpu>2</vcpu><os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>"
                "<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'>"
                "<v:require interface='52:54:00:00:00:09'/></v:migration></metadata>"
                "<devices><interface type='bridge'><source bridge='br9'/><mac address='52:54:00:00:00:09'/>"
                "</interface></devices></domain>");

        check_resources(f, ok, o);
        assert_quiet(f->out);
        /* Not required: the interface would run unconnected; a warning. */
        check_resources(f, missing, o);
        assert_finding(f->out, "network.bridge", FINDING_WARNING, "bridge br9 is missing",
                       "interface 52:54:00:00:00:09 would run unconnected", "ip link add br9", NULL);
        g_assert_false(findings_has_errors(f->out));
        findings_free(f->out);
        f->out = findings_new("host-b");
        /* Required (<vmigrate:require interface>): refused. */
        check_resources(f, required, o);
        assert_finding(f->out, "network.bridge", FINDING_ERROR, "bridge br9 is missing",
                       "interface 52:54:00:00:00:09 requires it", "ip link add br9", NULL);
        findings_free(f->out);
        f->out = findings_new("host-b");
        check_resources(f, plain, o);
        assert_finding(f->out, "network.bridge", FINDING_WARNING, "eth0 exists but is not a bridge", NULL);
}

static int listen_on(uint16_t *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(fd, 1), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static void test_data_port(TestHost *f, gconstpointer data) {
        uint16_t port;
        int fd = listen_on(&port);

        /* The only port of the range is taken. */
        f->facts.port_min = f->facts.port_max = port;
        preflight_data_port(&f->facts, NULL, 0, false, f->out);
        g_autofree char *range = g_strdup_printf("no free port in %u-%u on 0.0.0.0", port, port);
        assert_finding(f->out, "network.port", FINDING_ERROR, range, "data-uri", NULL);

        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_data_port(&f->facts, "127.0.0.1", port, false, f->out);
        g_autofree char *named =
                g_strdup_printf("port %u on 127.0.0.1, from option 'data-uri', is in use", port);
        assert_finding(f->out, "network.port", FINDING_ERROR, named, NULL);

        /* The disk copy (NBD) needs a port of the range too. */
        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_data_port(&f->facts, NULL, 0, true, f->out);
        g_autofree char *both = g_strdup_printf("no free ports in %u-%u on 0.0.0.0, and the migration stream "
                                                "and the disk copy (NBD) need one each",
                                                port, port);
        assert_finding(f->out, "network.port", FINDING_ERROR, both, NULL);

        /* Freed: quiet, and the check left nothing bound behind. */
        close(fd);
        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_data_port(&f->facts, NULL, 0, true, f->out);
        g_autofree char *one = g_strdup_printf("only one free port in %u-%u", port, port);
        assert_finding(f->out, "network.port", FINDING_ERROR, one, "disk copy (NBD)", NULL);
        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_data_port(&f->facts, NULL, 0, false, f->out);
        preflight_data_port(&f->facts, NULL, 0, false, f->out);
        assert_quiet(f->out);

        /* TEST-NET-1 is nobody's address. */
        preflight_data_port(&f->facts, "192.0.2.1", 0, false, f->out);
        assert_finding(f->out, "network.port", FINDING_ERROR, "192.0.2.1 is not an address of this host",
                       "'listen-address'", NULL);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);

#define ADD(path, fn) g_test_add(path, TestHost, NULL, test_host_setup, fn, test_host_teardown)
        ADD("/preflight/destination/quiet", test_destination_quiet);
        ADD("/preflight/destination/host.same", test_destination_same_host);
        ADD("/preflight/destination/limits.incoming", test_destination_limit);
        ADD("/preflight/destination/domain.name-conflict", test_destination_name_conflict);
        ADD("/preflight/destination/domain.running", test_destination_running);
        ADD("/preflight/destination/domain.defined-differently", test_destination_defined_differently);
        ADD("/preflight/destination/options.valid", test_destination_options);
        ADD("/preflight/destination/backend.available", test_destination_backend);
        ADD("/preflight/source", test_source);
        ADD("/preflight/resources/memory-vcpus", test_resources_memory_vcpus);
        ADD("/preflight/resources/boot", test_resources_boot);
        ADD("/preflight/resources/shared-disks", test_resources_shared_disks);
        ADD("/preflight/resources/copied-disks", test_resources_copied_disks);
        ADD("/preflight/resources/copy-need", test_resources_copy_need);
        ADD("/preflight/resources/copy-backing", test_resources_copy_backing);
        ADD("/preflight/resources/copy-reuse", test_resources_copy_reuse);
        ADD("/preflight/resources/bridges", test_resources_bridges);
        ADD("/preflight/network.port", test_data_port);
        return g_test_run();
}
