/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pre-flight checks: each check fires with its id and a message that names
 * the host and the thing, and stays quiet when all is well. Host facts are
 * filled in by hand and files live in a temporary directory, so nothing
 * depends on this machine but the ability to bind a local port. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "backends.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "preflight.h"
#include "qemu-preflight.h"

#define UUID_A "8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10"
#define UUID_B "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
#define SOURCE_UUID "11111111-2222-4333-8444-555555555555"

typedef struct Fixture {
        char *top;
        sd_event *event;
        Manager *manager;
        HostFacts facts;
        SourceFacts *source;
        Findings *out;
        bool done;
} Fixture;

static void rm_rf(const char *path) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (dir)
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *child = g_build_filename(path, name, NULL);
                        rm_rf(child);
                }
        (void) g_remove(path);
}

static char *path_in(Fixture *f, const char *name) {
        return g_build_filename(f->top, name, NULL);
}

static void write_file(Fixture *f, const char *name, size_t size) {
        g_autofree char *path = path_in(f, name);
        g_autofree char *data = g_malloc0(size);

        g_assert_true(g_file_set_contents(path, data, size, NULL));
}

/* A qcow2 header that says the guest sees `virtual_size` bytes. */
static void write_qcow2(Fixture *f, const char *name, uint64_t virtual_size) {
        g_autofree char *path = path_in(f, name);
        unsigned char header[104] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };

        for (int i = 0; i < 8; i++)
                header[24 + i] = (unsigned char) (virtual_size >> (56 - 8 * i));
        g_assert_true(g_file_set_contents(path, (const char *) header, sizeof(header), NULL));
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        const char *flags[] = { "fpu", "sse4_1", "avx2", "lm", "pni", "constant_tsc", NULL };

        f->top = g_dir_make_tmp("test-preflight-XXXXXX", NULL);
        g_assert_nonnull(f->top);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_autofree char *state = path_in(f, "state"), *run = path_in(f, "run");
        g_assert_cmpint(manager_new(f->event, state, run, builtin_backends, n_builtin_backends, &f->manager, &error), ==, 0);
        g_assert_no_error(error);

        f->facts.mem_total = 16ULL << 30;
        f->facts.mem_available = 8ULL << 30;
        f->facts.cpus = 4;
        f->facts.cpu_flags = g_strdupv((char **) flags);
        f->facts.kvm = true;
        f->facts.userfaultfd = true;
        f->facts.sys_class_net = path_in(f, "net");
        f->facts.port_min = PREFLIGHT_PORT_MIN;
        f->facts.port_max = PREFLIGHT_PORT_MAX;
        g_autofree char *bridge = g_build_filename(f->facts.sys_class_net, "br0", "bridge", NULL);
        g_autofree char *plain = g_build_filename(f->facts.sys_class_net, "eth0", NULL);
        g_assert_cmpint(g_mkdir_with_parents(bridge, 0755), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(plain, 0755), ==, 0);

        f->source = g_new0(SourceFacts, 1);
        f->source->hostname = g_strdup("host-a");
        f->source->disk_sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        f->out = findings_new("host-b");
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        findings_free(f->out);
        source_facts_free(f->source);
        host_facts_clear(&f->facts);
        manager_free(f->manager);
        sd_event_unref(f->event);
        rm_rf(f->top);
        g_free(f->top);
}

static void source_says_size(Fixture *f, const char *dev, uint64_t size) {
        g_hash_table_insert(f->source->disk_sizes, g_strdup(dev), g_memdup2(&size, sizeof(size)));
}

static MigrateOptions *options(const char *text) {
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(text ? text : "@a{sv} {}"));
        g_autoptr(GError) error = NULL;
        MigrateOptions *o = NULL;

        g_assert_cmpint(migrate_options_parse(v, &o, &error), ==, 0);
        g_assert_no_error(error);
        return o;
}

static DomainDef *parse(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

static DomainDef *test_def(const char *name, const char *uuid, const char *memory_mib) {
        g_autofree char *xml = g_strdup_printf("<domain type='test'><name>%s</name><uuid>%s</uuid>"
                                               "<memory unit='MiB'>%s</memory><vcpu>2</vcpu></domain>",
                                               name, uuid, memory_mib);
        return parse(xml);
}

static Domain *define(Fixture *f, const char *name, const char *uuid, const char *memory_mib) {
        g_autofree char *xml = g_strdup_printf("<domain type='test'><name>%s</name><uuid>%s</uuid>"
                                               "<memory unit='MiB'>%s</memory><vcpu>2</vcpu></domain>",
                                               name, uuid, memory_mib);
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        g_assert_cmpint(manager_define_xml(f->manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        return d;
}

static void on_started(Domain *d, int r, const GError *error, void *userdata) {
        ((Fixture *) userdata)->done = true;
}

static void start(Fixture *f, Domain *d) {
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        f->done = false;
        g_assert_cmpint(domain_start(d, on_started, f, &error), ==, 0);
        while (!f->done && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

/* The finding `id` is there, with severity, and its message starts with
 * the host and contains each of the NULL-terminated words. */
static void assert_finding(const Findings *out, const char *id, FindingSeverity severity, ...) {
        const Finding *x = findings_find(out, id);
        va_list ap;

        if (!x) {
                for (size_t i = 0; i < findings_count(out); i++)
                        g_test_message("have: %s %s", findings_get(out, i)->id,
                                       findings_get(out, i)->message);
                g_test_message("missing finding %s", id);
                g_test_fail();
                return;
        }
        g_assert_cmpstr(finding_severity_to_string(x->severity), ==, finding_severity_to_string(severity));
        g_assert_true(g_str_has_prefix(x->message, findings_host(out)));
        g_assert_true(g_str_has_prefix(x->message + strlen(findings_host(out)), ": "));
        va_start(ap, severity);
        for (const char *word = va_arg(ap, const char *); word; word = va_arg(ap, const char *))
                if (!strstr(x->message, word)) {
                        g_test_message("'%s' not in: %s", word, x->message);
                        g_test_fail();
                }
        va_end(ap);
}

static void assert_quiet(const Findings *out) {
        for (size_t i = 0; i < findings_count(out); i++)
                g_test_message("unexpected: %s %s", findings_get(out, i)->id, findings_get(out, i)->message);
        g_assert_cmpuint(findings_count(out), ==, 0);
}

/* ---- findings ---- */

static void test_findings_variant(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autoptr(GVariant) v = NULL;
        const char *severity, *id, *message;

        g_assert_false(findings_has_errors(f));
        g_assert_null(findings_first_error(f));
        findings_add(f, FINDING_INFO, "resources.vcpus", "one %d", 1);
        findings_add(f, FINDING_ERROR, "storage.disk", "disk %s is missing", "/x");
        findings_add(f, FINDING_WARNING, "machine.type", "alias");
        g_assert_true(findings_has_errors(f));
        g_assert_cmpstr(findings_first_error(f)->id, ==, "storage.disk");

        v = g_variant_ref_sink(findings_to_variant(f));
        g_assert_cmpstr(g_variant_get_type_string(v), ==, "a(sss)");
        g_assert_cmpuint(g_variant_n_children(v), ==, 3);
        g_variant_get_child(v, 0, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "info");
        g_assert_cmpstr(id, ==, "resources.vcpus");
        g_assert_cmpstr(message, ==, "host-b: one 1");
        g_variant_get_child(v, 1, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "error");
        g_assert_cmpstr(message, ==, "host-b: disk /x is missing");
        g_variant_get_child(v, 2, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "warning");

        /* What one host sends, the other takes. */
        g_autoptr(Findings) g = findings_new("host-a");
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(findings_append_variant(g, v, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpuint(findings_count(g), ==, 3);
        g_assert_cmpstr(findings_get(g, 1)->message, ==, "host-b: disk /x is missing");
        g_assert_true(findings_has_errors(g));
}

static void test_findings_sanitized(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autofree char *long_text = g_strnfill(3000, 'x');

        findings_add(f, FINDING_ERROR, "storage.disk", "disk /a\nb\x01 is missing");
        findings_add(f, FINDING_INFO, "storage.disk", "%s", long_text);
        g_assert_cmpstr(findings_get(f, 0)->message, ==, "host-b: disk /a?b? is missing");
        g_assert_cmpuint(strlen(findings_get(f, 1)->message), ==, FINDING_MESSAGE_MAX);

        /* Our own output is always acceptable to the other side. */
        g_autoptr(GVariant) v = g_variant_ref_sink(findings_to_variant(f));
        g_autoptr(Findings) g = findings_new("host-a");
        g_assert_cmpint(findings_append_variant(g, v, NULL), ==, 0);
}

static void refuse(const char *text, const char *why) {
        g_autoptr(Findings) f = findings_new("host-a");
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(text));
        g_autoptr(GError) error = NULL;

        findings_add(f, FINDING_INFO, "resources.vcpus", "mine");
        g_assert_cmpint(findings_append_variant(f, v, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        if (error && !strstr(error->message, why)) {
                g_test_message("'%s' not in: %s", why, error->message);
                g_test_fail();
        }
        /* All or nothing. */
        g_assert_cmpuint(findings_count(f), ==, 1);
}

static void test_findings_hostile(void) {
        refuse("[('error', 'storage.disk')]", "not a(sss)");
        refuse("@as ['x']", "not a(sss)");
        refuse("[('info', 'a.b', 'ok'), ('fatal', 'storage.disk', 'm')]", "unknown severity");
        refuse("[('ERROR', 'storage.disk', 'm')]", "unknown severity");
        refuse("[('error', 'Storage.disk', 'm')]", "id");
        refuse("[('error', 'storage disk', 'm')]", "id");
        refuse("[('error', '', 'm')]", "id");
        refuse("[('error', 'storage/../disk', 'm')]", "id");
        refuse("[('error', 'storage.disk', 'line\\nbreak')]", "control characters");
        refuse("[('error', 'storage.disk', 'esc\\u001b[31m')]", "control characters");

        g_autofree char *long_id = g_strnfill(FINDING_ID_MAX + 1, 'a');
        g_autofree char *t1 = g_strdup_printf("[('error', '%s', 'm')]", long_id);
        refuse(t1, "id");
        g_autofree char *long_msg = g_strnfill(FINDING_MESSAGE_MAX + 1, 'm');
        g_autofree char *t2 = g_strdup_printf("[('error', 'storage.disk', '%s')]", long_msg);
        refuse(t2, "longer than");

        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
        for (int i = 0; i < FINDINGS_MAX + 1; i++)
                g_variant_builder_add(&b, "(sss)", "info", "resources.vcpus", "m");
        g_autoptr(GVariant) many = g_variant_ref_sink(g_variant_builder_end(&b));
        g_autoptr(Findings) f = findings_new("host-a");
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(findings_append_variant(f, many, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_assert_cmpuint(findings_count(f), ==, 0);
        g_assert_cmpint(findings_append_variant(f, NULL, NULL), <, 0);

        /* The limits themselves are fine. */
        g_autofree char *max_msg = g_strnfill(FINDING_MESSAGE_MAX, 'm');
        g_autofree char *t3 = g_strdup_printf("[('warning', '%s', '%s')]", long_id + 1, max_msg);
        g_autoptr(GVariant) ok = g_variant_ref_sink(g_variant_new_parsed(t3));
        g_assert_cmpint(findings_append_variant(f, ok, NULL), ==, 0);
        g_assert_cmpuint(findings_count(f), ==, 1);
        g_assert_cmpint(findings_get(f, 0)->severity, ==, FINDING_WARNING);
}

static void test_findings_truncated(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autoptr(GVariant) v = NULL;
        const char *severity, *id, *message;

        for (int i = 0; i < 300; i++)
                findings_add(f, i < 290 ? FINDING_INFO : FINDING_ERROR, "storage.disk", "disk %d", i);
        g_assert_cmpuint(findings_count(f), ==, FINDINGS_MAX - 1);
        /* The errors were dropped, but still count. */
        g_assert_null(findings_first_error(f));
        g_assert_true(findings_has_errors(f));
        v = g_variant_ref_sink(findings_to_variant(f));
        g_assert_cmpuint(g_variant_n_children(v), ==, FINDINGS_MAX);
        g_variant_get_child(v, FINDINGS_MAX - 1, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "error");
        g_assert_cmpstr(id, ==, "findings.truncated");
        g_assert_cmpstr(message, ==, "host-b: 45 more findings not shown (10 of them errors)");

        g_autoptr(GError) error = NULL;
        g_assert_cmpint(findings_to_error(f, &error), <, 0);
        g_assert_nonnull(error);

        g_autoptr(Findings) g = findings_new("host-a");
        g_assert_cmpint(findings_append_variant(g, v, NULL), ==, 0);
        g_assert_true(findings_has_errors(g));
}

static void test_findings_to_error(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autoptr(GError) error = NULL;

        findings_add(f, FINDING_WARNING, "machine.type", "alias");
        g_assert_cmpint(findings_to_error(f, &error), ==, 0);
        g_assert_no_error(error);

        findings_add(f, FINDING_ERROR, "limits.incoming", "too many");
        g_assert_cmpint(findings_to_error(f, &error), ==, -vm_error_errno(VM_ERROR_LIMIT_REACHED));
        g_assert_error(error, VM_ERROR, VM_ERROR_LIMIT_REACHED);
        g_assert_cmpstr(error->message, ==, "host-b: too many");
        g_clear_error(&error);

        findings_add_code(f, FINDING_ERROR, VM_ERROR_CONFLICTING_OPTIONS, "options.valid", "x");
        findings_add(f, FINDING_ERROR, "storage.disk", "y");
        g_assert_cmpint(findings_to_error(f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_LIMIT_REACHED);
        g_assert_cmpstr(error->message, ==,
                        "host-b: too many (and 2 more problems; Domain.DryRun lists them)");
        g_assert_cmpint(findings_find(f, "options.valid")->code, ==, VM_ERROR_CONFLICTING_OPTIONS);
        g_assert_cmpint(findings_find(f, "storage.disk")->code, ==, VM_ERROR_INCOMPATIBLE);
        g_assert_cmpint(findings_find(f, "limits.incoming")->code, ==, VM_ERROR_LIMIT_REACHED);
}

/* ---- source facts ---- */

static void test_disk_virtual_size(Fixture *f, gconstpointer data) {
        g_autofree char *raw = path_in(f, "raw.img"), *qcow = path_in(f, "disk.qcow2"),
                        *bad = path_in(f, "bad.qcow2");
        uint64_t size = 0;

        write_file(f, "raw.img", 12345);
        write_qcow2(f, "disk.qcow2", 10ULL << 30);
        write_file(f, "bad.qcow2", 4096);
        g_assert_cmpint(disk_virtual_size(raw, NULL, &size), ==, 0);
        g_assert_cmpuint(size, ==, 12345);
        g_assert_cmpint(disk_virtual_size(raw, "raw", &size), ==, 0);
        g_assert_cmpuint(size, ==, 12345);
        g_assert_cmpint(disk_virtual_size(qcow, "qcow2", &size), ==, 0);
        g_assert_cmpuint(size, ==, 10ULL << 30);
        g_assert_cmpint(disk_virtual_size(bad, "qcow2", &size), ==, -EBADMSG);
        g_assert_cmpint(disk_virtual_size(f->top, NULL, &size), ==, -EBADFD);
        g_assert_cmpint(disk_virtual_size("/nonexistent/x", NULL, &size), ==, -ENOENT);
}

static void test_source_facts_cookie(Fixture *f, gconstpointer data) {
        g_autofree char *disk = path_in(f, "vm1.qcow2");
        g_autofree char *xml = g_strdup_printf(
                "<domain type='test'><name>vm1</name><uuid>" UUID_A "</uuid><memory unit='MiB'>64</memory>"
                "<vcpu>1</vcpu><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                "<source file='%s'/><target dev='vda' bus='virtio'/></disk>"
                "<disk type='file' device='disk'><source file='/nonexistent/gone.img'/>"
                "<target dev='vdb' bus='virtio'/></disk></devices></domain>",
                disk);
        g_autoptr(DomainDef) def = parse(xml);
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        g_autoptr(SourceFacts) s = NULL;
        g_autoptr(GError) error = NULL;

        write_qcow2(f, "vm1.qcow2", 2ULL << 30);
        g_variant_dict_insert(&dict, "hostname", "s", "host-a");
        source_facts_add_to_cookie(def, &f->facts, NULL, &dict);
        g_autoptr(GVariant) cookie = g_variant_ref_sink(g_variant_dict_end(&dict));

        g_assert_cmpint(source_facts_from_cookie(cookie, &s, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(s->hostname, ==, "host-a");
        g_assert_nonnull(s->disk_sizes);
        /* The unreadable disk is left out, not reported as 0. */
        g_assert_cmpuint(g_hash_table_size(s->disk_sizes), ==, 1);
        g_assert_cmpuint(*(guint64 *) g_hash_table_lookup(s->disk_sizes, "vda"), ==, 2ULL << 30);
        g_assert_true(
                g_strv_equal((const char *const *) s->cpu_flags, (const char *const *) f->facts.cpu_flags));

        /* An older source says nothing: fine. */
        g_autoptr(SourceFacts) empty = NULL;
        g_autoptr(GVariant) bare = g_variant_ref_sink(g_variant_new_parsed("@a{sv} {}"));
        g_assert_cmpint(source_facts_from_cookie(bare, &empty, NULL), ==, 0);
        g_assert_null(empty->disk_sizes);
        g_assert_null(empty->cpu_flags);
}

static void refuse_cookie(const char *text, const char *why) {
        g_autoptr(GVariant) cookie = g_variant_ref_sink(g_variant_new_parsed(text));
        g_autoptr(SourceFacts) s = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(source_facts_from_cookie(cookie, &s, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_assert_null(s);
        if (error && !strstr(error->message, why)) {
                g_test_message("'%s' not in: %s", why, error->message);
                g_test_fail();
        }
}

static void test_source_facts_hostile(void) {
        refuse_cookie("{'disk-sizes': <{'vda': uint32 1}>}", "not a{st}");
        refuse_cookie("{'disk-sizes': <{'../etc': uint64 1}>}", "target");
        refuse_cookie("{'disk-sizes': <{'VDA': uint64 1}>}", "target");
        refuse_cookie("{'disk-sizes': <[{'vda', uint64 1}, {'vda', uint64 2}]>}", "twice");
        refuse_cookie("{'cpu-flags': <['fpu', 'bad flag']>}", "CPU flag");
        refuse_cookie("{'cpu-flags': <'fpu'>}", "not as");
        refuse_cookie("{'hostname': <uint32 3>}", "hostname");

        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
        for (int i = 0; i <= SOURCE_FACTS_MAX_CPU_FLAGS; i++)
                g_variant_builder_add(&b, "s", "fpu");
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        g_variant_dict_insert_value(&dict, "cpu-flags", g_variant_builder_end(&b));
        g_autoptr(GVariant) cookie = g_variant_ref_sink(g_variant_dict_end(&dict));
        g_autoptr(SourceFacts) s = NULL;
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(source_facts_from_cookie(cookie, &s, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
}

static void test_host_facts_read(void) {
        g_auto(HostFacts) facts = { 0 };

        /* This machine, whatever it is: the reader finds something. */
        g_assert_cmpint(host_facts_read(&facts), ==, 0);
        g_assert_cmpuint(facts.cpus, >, 0);
        g_assert_cmpuint(facts.mem_total, >, 0);
        g_assert_cmpuint(facts.mem_available, <=, facts.mem_total);
        g_assert_cmpstr(facts.sys_class_net, ==, "/sys/class/net");
        g_assert_cmpuint(facts.port_min, ==, PREFLIGHT_PORT_MIN);
        g_assert_true(facts.userfaultfd || facts.userfaultfd_why);
}

/* ---- destination: the generic checks ---- */

static void check_destination(Fixture *f, const DomainDef *def, const MigrateOptions *o,
                              const char *source_uuid) {
        preflight_destination_with_facts(f->manager, &f->facts, def, o, source_uuid, f->source, f->out);
}

static void test_destination_quiet(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = options(NULL);

        check_destination(f, def, o, SOURCE_UUID);
        assert_quiet(f->out);

        /* The same definition stored here, shut off: the normal case of a
         * persistent domain coming back. */
        define(f, "vm1", UUID_A, "256");
        check_destination(f, def, o, SOURCE_UUID);
        assert_quiet(f->out);
}

static void test_destination_same_host(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = options(NULL);

        check_destination(f, def, o, f->manager->host_uuid);
        assert_finding(f->out, "host.same", FINDING_ERROR, f->manager->host_uuid, "another host", NULL);
        g_assert_cmpint(findings_find(f->out, "host.same")->code, ==, VM_ERROR_INVALID_DESTINATION);
}

static void test_destination_limit(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = options(NULL);
        Domain *other = define(f, "other", UUID_B, "64");
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

static void test_destination_name_conflict(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = options(NULL);

        define(f, "vm1", UUID_B, "256");
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "domain.name-conflict", FINDING_ERROR, "'vm1'", UUID_B, "destination-name",
                       NULL);
        g_assert_cmpint(findings_find(f->out, "domain.name-conflict")->code, ==, VM_ERROR_DOMAIN_EXISTS);
}

static void test_destination_running(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = options(NULL);
        Domain *d = define(f, "vm1", UUID_A, "256");

        start(f, d);
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "domain.running", FINDING_ERROR, "'vm1'", "already running here", NULL);
}

static void test_destination_defined_differently(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        g_autoptr(DomainDef) bigger = test_def("vm1", UUID_A, "512");
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autoptr(MigrateOptions) persist = options("{'persist': <true>}");

        define(f, "old", UUID_A, "256");
        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "domain.defined-differently", FINDING_ERROR, UUID_A, "'old'", "'vm1'", NULL);

        /* Same name, other definition: allowed, said. */
        Findings *out = findings_new("host-b");
        define(f, "vm2", UUID_B, "256");
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

static void test_destination_options(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = test_def("vm1", UUID_A, "256");
        /* The test backend has one simulated connection. */
        g_autoptr(MigrateOptions) o = options("{'parallel-connections': <uint32 4>}");

        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "options.valid", FINDING_ERROR, "'parallel-connections'", "'test' backend",
                       NULL);
        g_assert_cmpint(findings_find(f->out, "options.valid")->code, ==, VM_ERROR_UNSUPPORTED_OPTION);
}

static void test_destination_backend(Fixture *f, gconstpointer data) {
        /* VMIGRATE_QEMU points nowhere: the qemu backend is unavailable. */
        g_autoptr(DomainDef) def = parse("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                         "<memory unit='MiB'>256</memory><vcpu>1</vcpu></domain>");
        g_autoptr(MigrateOptions) o = options(NULL);

        check_destination(f, def, o, SOURCE_UUID);
        assert_finding(f->out, "backend.available", FINDING_ERROR, "'qemu' backend is unavailable here",
                       NULL);
        g_assert_cmpint(findings_find(f->out, "backend.available")->code, ==, VM_ERROR_UNSUPPORTED_BACKEND);
}

/* ---- source ---- */

static void test_source(Fixture *f, gconstpointer data) {
        Domain *d = define(f, "vm1", UUID_A, "256");
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autoptr(MigrateOptions) paused = options("{'live': <false>}");
        g_autoptr(MigrateOptions) offline = options("{'offline': <true>}");
        g_autoptr(MigrateOptions) bad = options("{'compression': <'zstd'>}");

        preflight_source_with_facts(d, &f->facts, o, f->out);
        assert_finding(f->out, "domain.state", FINDING_ERROR, "'vm1' is shutoff", "running or paused", NULL);
        g_assert_cmpint(findings_find(f->out, "domain.state")->code, ==, VM_ERROR_INVALID_STATE);

        /* Offline moves the definition of a shut-off domain: fine. */
        findings_free(f->out);
        f->out = findings_new("host-a");
        preflight_source_with_facts(d, &f->facts, offline, f->out);
        assert_quiet(f->out);

        start(f, d);
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
        Domain *other = define(f, "other", UUID_B, "64");
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
        g_autoptr(MigrateOptions) xml =
                options("{'destination-xml': <\"<domain type='test'><name>vm1</name><uuid>" UUID_A "</uuid>"
                        "<memory unit='MiB'>512</memory><vcpu>2</vcpu></domain>\">}");
        preflight_source_with_facts(d, &f->facts, xml, f->out);
        assert_finding(f->out, "options.valid", FINDING_ERROR, "'destination-xml'", "memory", NULL);
}

/* ---- destination: host resources ---- */

static void check_resources(Fixture *f, const char *xml, const MigrateOptions *o) {
        g_autoptr(DomainDef) def = parse(xml);
        PreflightContext ctx = {
                .side = PREFLIGHT_DESTINATION,
                .def = def,
                .options = o,
                .facts = &f->facts,
                .source = f->source,
        };

        preflight_host_resources(&ctx, f->out);
}

static char *qemu_xml(Fixture *f, const char *extra_os, const char *devices) {
        return g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                               "<memory unit='GiB'>2</memory><vcpu>2</vcpu>"
                               "<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>%s</os>"
                               "<devices>%s</devices></domain>",
                               extra_os ? extra_os : "", devices ? devices : "");
}

static void test_resources_memory_vcpus(Fixture *f, gconstpointer data) {
        g_autofree char *xml = qemu_xml(f, NULL, NULL);
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autoptr(MigrateOptions) offline = options("{'offline': <true>}");

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

static void test_resources_boot(Fixture *f, gconstpointer data) {
        g_autofree char *kernel = path_in(f, "vmlinuz"), *initrd = path_in(f, "initrd.img"),
                        *firmware = path_in(f, "qboot.rom");
        g_autofree char *os = g_strdup_printf("<loader>%s</loader><kernel>%s</kernel><initrd>%s</initrd>",
                                              firmware, kernel, initrd);
        g_autofree char *xml = qemu_xml(f, os, NULL);
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autoptr(MigrateOptions) offline = options("{'offline': <true>}");

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

static void test_resources_shared_disks(Fixture *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.qcow2"), *b = path_in(f, "data.img"),
                        *c = path_in(f, "iso.img");
        g_autofree char *da = disk_xml(a, "qcow2", "vda", false), *db = disk_xml(b, "raw", "vdb", false),
                        *dc = disk_xml(c, "raw", "vdc", true);
        g_autofree char *devices = g_strconcat(da, db, dc, NULL);
        g_autofree char *xml = qemu_xml(f, NULL, devices);
        g_autoptr(MigrateOptions) o = options(NULL);

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

static void test_resources_copied_disks(Fixture *f, gconstpointer data) {
        g_autofree char *a = path_in(f, "vm1.img"), *b = g_build_filename(f->top, "nodir", "data.img", NULL);
        g_autofree char *da = disk_xml(a, "raw", "vda", false), *db = disk_xml(b, "raw", "vdb", false);
        g_autofree char *devices = g_strconcat(da, db, NULL);
        g_autofree char *xml = qemu_xml(f, NULL, devices);
        g_autoptr(MigrateOptions) o = options("{'copy-storage': <'all'>}");

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

static void test_resources_bridges(Fixture *f, gconstpointer data) {
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autofree char *ok =
                qemu_xml(f, NULL, "<interface type='bridge'><source bridge='br0'/></interface>");
        g_autofree char *missing = qemu_xml(
                f, NULL, "<interface type='bridge'><source bridge='br9'/><mac address='52:54:00:00:00:09'/></interface>");
        g_autofree char *plain =
                qemu_xml(f, NULL, "<interface type='bridge'><source bridge='eth0'/></interface>");
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

static void test_data_port(Fixture *f, gconstpointer data) {
        uint16_t port;
        int fd = listen_on(&port);

        /* The only port of the range is taken. */
        f->facts.port_min = f->facts.port_max = port;
        preflight_data_port(&f->facts, NULL, 0, f->out);
        g_autofree char *range = g_strdup_printf("no free port in %u-%u on 0.0.0.0", port, port);
        assert_finding(f->out, "network.port", FINDING_ERROR, range, "data-uri", NULL);

        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_data_port(&f->facts, "127.0.0.1", port, f->out);
        g_autofree char *named =
                g_strdup_printf("port %u on 127.0.0.1, from option 'data-uri', is in use", port);
        assert_finding(f->out, "network.port", FINDING_ERROR, named, NULL);

        /* Freed: quiet, and the check left nothing bound behind. */
        close(fd);
        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_data_port(&f->facts, NULL, 0, f->out);
        preflight_data_port(&f->facts, NULL, 0, f->out);
        assert_quiet(f->out);

        /* TEST-NET-1 is nobody's address. */
        preflight_data_port(&f->facts, "192.0.2.1", 0, f->out);
        assert_finding(f->out, "network.port", FINDING_ERROR, "192.0.2.1 is not an address of this host",
                       "'listen-address'", NULL);
}

/* ---- qemu ---- */

static QemuCaps *caps_new(unsigned major, unsigned minor, const char *const *migration_caps) {
        const char *machines[] = { "pc-i440fx-7.2", "pc", "pc-q35-7.2", "q35", NULL };
        const char *models[] = { "qemu64", "Skylake-Client", NULL };
        QemuCaps *caps = g_new0(QemuCaps, 1);

        caps->binary = g_strdup("/usr/bin/qemu-system-x86_64");
        caps->major = major;
        caps->minor = minor;
        caps->machines = g_strdupv((char **) machines);
        caps->default_machine = g_strdup("pc-i440fx-7.2");
        caps->migration_capabilities = g_strdupv((char **) migration_caps);
        caps->cpu_models = g_strdupv((char **) models);
        return caps;
}

static const char *const all_caps[] = {
        "events", "multifd", "xbzrle", "auto-converge", "postcopy-ram", NULL
};

static void check_qemu(Fixture *f, const QemuCaps *caps, PreflightSide side, const char *xml,
                       const MigrateOptions *o) {
        g_autoptr(DomainDef) def = parse(xml);
        PreflightContext ctx = {
                .side = side,
                .def = def,
                .options = o,
                .facts = &f->facts,
                .source = f->source,
        };

        f->facts.port_min = 1;
        f->facts.port_max = 65535;
        qemu_preflight(caps, &ctx, f->out);
}

static void renew(Fixture *f) {
        findings_free(f->out);
        f->out = findings_new("host-b");
}

static void test_qemu_quiet(Fixture *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(10, 0, all_caps);
        g_autofree char *xml = qemu_xml(f, NULL, NULL);
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autoptr(MigrateOptions) fancy =
                options("{'postcopy': <true>, 'live': <true>, 'auto-converge': <true>, "
                        "'parallel-connections': <uint32 4>, 'compression': <'zstd'>}");

        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, o);
        assert_quiet(f->out);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, fancy);
        assert_quiet(f->out);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, fancy);
        assert_quiet(f->out);

        /* The source does not check this host's files or memory. */
        f->facts.mem_available = 1;
        g_autofree char *kernel = qemu_xml(f, "<kernel>/nonexistent/vmlinuz</kernel>", NULL);
        check_qemu(f, caps, PREFLIGHT_SOURCE, kernel, o);
        assert_quiet(f->out);
}

static void test_qemu_machine(Fixture *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(7, 2, all_caps);
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autofree char *newer = g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                                 "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os>"
                                                 "<type arch='x86_64' machine='pc-q35-10.0'>hvm</type></os>"
                                                 "</domain>");
        g_autofree char *alias = g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                                 "<memory unit='MiB'>256</memory><vcpu>1</vcpu></domain>");

        check_qemu(f, caps, PREFLIGHT_DESTINATION, newer, o);
        assert_finding(f->out, "machine.type", FINDING_ERROR,
                       "QEMU 7.2.0 here has no machine type 'pc-q35-10.0'", NULL);
        renew(f);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, alias, o);
        assert_finding(f->out, "machine.type", FINDING_WARNING, "alias", "host-a", "'pc-i440fx-7.2'", NULL);
        g_assert_false(findings_has_errors(f->out));

        renew(f);
        f->facts.kvm = false;
        g_autofree char *xml = qemu_xml(f, NULL, NULL);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, o);
        assert_finding(f->out, "machine.type", FINDING_ERROR, "domain type 'kvm' needs /dev/kvm", NULL);
}

static void test_qemu_cpu(Fixture *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(10, 0, all_caps);
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autofree char *model = qemu_xml(f, NULL, NULL);
        char *p;

        /* <cpu> goes after <os>: splice it in. */
        p = strstr(model, "<devices>");
        g_autofree char *unknown =
                g_strdup_printf("%.*s<cpu mode='custom'><model>Sapphire-Rapids</model></cpu>%s",
                                (int) (p - model), model, p);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, unknown, o);
        assert_finding(f->out, "cpu.model", FINDING_ERROR,
                       "QEMU 10.0.0 here has no CPU model 'Sapphire-Rapids'", NULL);

        renew(f);
        g_autofree char *required = g_strdup_printf(
                "%.*s<cpu mode='custom'><model>Skylake-Client</model><feature policy='require' "
                "name='avx512f'/>"
                "<feature policy='require' name='sse4.1'/><feature policy='disable' name='sha-ni'/></cpu>%s",
                (int) (p - model), model, p);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, required, o);
        assert_finding(f->out, "cpu.features", FINDING_ERROR, "lacks avx512f, required", NULL);
        /* sse4.1 is sse4_1 in /proc/cpuinfo; a disabled feature is not needed. */
        g_assert_null(strstr(findings_find(f->out, "cpu.features")->message, "sse4"));
        g_assert_null(strstr(findings_find(f->out, "cpu.features")->message, "sha"));
        g_assert_null(findings_find(f->out, "cpu.model"));

        renew(f);
        g_autofree char *passthrough =
                g_strdup_printf("%.*s<cpu mode='host-passthrough'/>%s", (int) (p - model), model, p);
        const char *source_flags[] = { "fpu", "sse4_1", "avx512f", "sha_ni", "nonstop_tsc", "vmx", NULL };
        f->source->cpu_flags = g_strdupv((char **) source_flags);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, passthrough, o);
        assert_finding(f->out, "cpu.features", FINDING_ERROR,
                       "lacks avx512f, sha_ni, which the guest may use", "host-passthrough", "host-a", NULL);

        /* The same CPU: quiet. */
        renew(f);
        g_strfreev(f->source->cpu_flags);
        f->source->cpu_flags = g_strdupv(f->facts.cpu_flags);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, passthrough, o);
        g_assert_null(findings_find(f->out, "cpu.features"));
}

static void test_qemu_features(Fixture *f, gconstpointer data) {
        const char *none[] = { "events", NULL };
        g_autoptr(QemuCaps) caps = caps_new(4, 2, none);
        g_autofree char *xml = qemu_xml(f, NULL, NULL);
        g_autoptr(MigrateOptions) postcopy = options("{'postcopy': <true>}");
        g_autoptr(MigrateOptions) multifd =
                options("{'parallel-connections': <uint32 2>, 'compression': <'zstd'>}");
        g_autoptr(MigrateOptions) xbzrle = options("{'compression': <'xbzrle'>}");
        g_autoptr(MigrateOptions) converge = options("{'auto-converge': <true>}");

        f->facts.userfaultfd = false;
        f->facts.userfaultfd_why = g_strdup("vm.unprivileged_userfaultfd is 0");
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, postcopy);
        assert_finding(f->out, "qemu.postcopy", FINDING_ERROR, "postcopy-ram", "QEMU 4.2.0 here", NULL);
        g_assert_cmpuint(findings_count(f->out), >=, 2);
        g_assert_nonnull(
                strstr(findings_get(f->out, findings_count(f->out) - 1)->message,
                       "userfaultfd, which QEMU cannot use here: vm.unprivileged_userfaultfd is 0"));

        /* The source needs no userfaultfd. */
        renew(f);
        g_autoptr(QemuCaps) good = caps_new(10, 0, all_caps);
        check_qemu(f, good, PREFLIGHT_SOURCE, xml, postcopy);
        assert_quiet(f->out);

        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, multifd);
        assert_finding(f->out, "qemu.multifd", FINDING_ERROR, "'parallel-connections'",
                       "QEMU 4.2.0 here lacks", NULL);
        assert_finding(f->out, "qemu.compression", FINDING_ERROR, "'zstd'", "QEMU 5.0", NULL);

        renew(f);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, xbzrle);
        assert_finding(f->out, "qemu.compression", FINDING_ERROR, "'xbzrle'", NULL);
        renew(f);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, converge);
        assert_finding(f->out, "qemu.auto-converge", FINDING_ERROR, "'auto-converge'", NULL);
}

static void test_qemu_defects(Fixture *f, gconstpointer data) {
        g_autoptr(QemuCaps) old = caps_new(7, 2, all_caps);
        g_autoptr(QemuCaps) fixed = caps_new(9, 0, all_caps);
        g_autofree char *tcg = g_strdup_printf("<domain type='qemu'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                               "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os>"
                                               "<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>"
                                               "</domain>");
        g_autofree char *kvm = qemu_xml(f, NULL, NULL);
        g_autoptr(MigrateOptions) o = options(NULL);
        g_autoptr(MigrateOptions) unsafe = options("{'unsafe': <true>}");
        g_autoptr(MigrateOptions) offline = options("{'offline': <true>}");
        g_autoptr(MigrateOptions) multifd = options("{'parallel-connections': <uint32 2>}");

        check_qemu(f, old, PREFLIGHT_SOURCE, tcg, o);
        assert_finding(f->out, "qemu.defect", FINDING_ERROR, "host-b: QEMU 7.2.0 here loses guest writes",
                       "TCG", "9.0", "'unsafe'", NULL);
        renew(f);
        check_qemu(f, old, PREFLIGHT_DESTINATION, tcg, unsafe);
        assert_finding(f->out, "qemu.defect", FINDING_WARNING, "loses guest writes", "'unsafe'", NULL);
        renew(f);
        check_qemu(f, old, PREFLIGHT_SOURCE, tcg, offline);
        check_qemu(f, old, PREFLIGHT_SOURCE, kvm, o);
        check_qemu(f, fixed, PREFLIGHT_SOURCE, tcg, o);
        assert_quiet(f->out);

        g_autoptr(QemuCaps) older = caps_new(7, 0, all_caps);
        check_qemu(f, older, PREFLIGHT_SOURCE, kvm, multifd);
        assert_finding(f->out, "qemu.defect", FINDING_INFO, "total-time", NULL);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);
        /* No QEMU probe: the qemu backend is unavailable, the checks that
         * need QEMU get a hand-made QemuCaps. */
        g_setenv("VMIGRATE_QEMU", "/nonexistent/qemu-system-x86_64", true);

        g_test_add_func("/preflight/findings/variant", test_findings_variant);
        g_test_add_func("/preflight/findings/sanitized", test_findings_sanitized);
        g_test_add_func("/preflight/findings/hostile", test_findings_hostile);
        g_test_add_func("/preflight/findings/truncated", test_findings_truncated);
        g_test_add_func("/preflight/findings/to-error", test_findings_to_error);
        g_test_add_func("/preflight/source-facts/hostile", test_source_facts_hostile);
        g_test_add_func("/preflight/host-facts/read", test_host_facts_read);

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/preflight/source-facts/disk-size", test_disk_virtual_size);
        ADD("/preflight/source-facts/cookie", test_source_facts_cookie);
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
        ADD("/preflight/resources/bridges", test_resources_bridges);
        ADD("/preflight/network.port", test_data_port);
        ADD("/preflight/qemu/quiet", test_qemu_quiet);
        ADD("/preflight/qemu/machine", test_qemu_machine);
        ADD("/preflight/qemu/cpu", test_qemu_cpu);
        ADD("/preflight/qemu/features", test_qemu_features);
        ADD("/preflight/qemu/defects", test_qemu_defects);
        return g_test_run();
}
