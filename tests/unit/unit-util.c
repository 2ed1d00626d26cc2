/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the unit tests of the migration modules share (unit-util.h). */
#include <stdarg.h>
#include <string.h>

#include <glib/gstdio.h>

#include "backends.h"
#include "unit-util.h"

void test_host_setup(TestHost *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        const char *flags[] = { "fpu", "sse4_1", "avx2", "lm", "pni", "constant_tsc", NULL };

        /* No QEMU probe: the qemu backend is unavailable, the checks that
         * need QEMU get a hand-made QemuCaps. */
        g_setenv("VMIGRATE_QEMU", "/nonexistent/qemu-system-x86_64", true);
        f->top = g_dir_make_tmp("test-unit-XXXXXX", NULL);
        g_assert_nonnull(f->top);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_autofree char *state = path_in(f, "state"), *run = path_in(f, "run");
        g_assert_cmpint(
                manager_new(f->event, state, run, builtin_backends, n_builtin_backends, &f->manager, &error),
                ==, 0);
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
        f->facts.own_address = g_strdup("192.0.2.2");
        g_autofree char *bridge = g_build_filename(f->facts.sys_class_net, "br0", "bridge", NULL);
        g_autofree char *plain = g_build_filename(f->facts.sys_class_net, "eth0", NULL);
        g_assert_cmpint(g_mkdir_with_parents(bridge, 0755), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(plain, 0755), ==, 0);

        f->source = g_new0(SourceFacts, 1);
        f->source->hostname = g_strdup("host-a");
        f->source->disk_sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        f->out = findings_new("host-b");
}

void test_host_teardown(TestHost *f, gconstpointer data) {
        findings_free(f->out);
        source_facts_free(f->source);
        host_facts_clear(&f->facts);
        manager_free(f->manager);
        sd_event_unref(f->event);
        rm_rf(f->top);
        g_free(f->top);
}

/* ---- files ---- */

void rm_rf(const char *path) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (dir)
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *child = g_build_filename(path, name, NULL);
                        rm_rf(child);
                }
        (void) g_remove(path);
}

char *path_in(const TestHost *f, const char *name) {
        return g_build_filename(f->top, name, NULL);
}

void write_file(const TestHost *f, const char *name, size_t size) {
        g_autofree char *path = path_in(f, name);
        g_autofree char *data = g_malloc0(size);

        g_assert_true(g_file_set_contents(path, data, size, NULL));
}

static void put_be(unsigned char *p, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                p[i] = (unsigned char) (v >> (8 * (n - 1 - i)));
}

void write_qcow2_backing(const TestHost *f, const char *name, uint64_t virtual_size, const char *backing,
                         const char *backing_format) {
        g_autofree char *path = path_in(f, name);
        /* Version 3, header_length 104, the backing format extension, the
         * end of the extensions, the backing file name: what qemu-img
         * writes, less the tables. */
        unsigned char buf[1024] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
        size_t n = 104;

        put_be(buf + 24, virtual_size, 8);
        put_be(buf + 100, 104, 4);
        if (backing_format) {
                size_t len = strlen(backing_format);
                put_be(buf + n, 0xe2792aca, 4);
                put_be(buf + n + 4, len, 4);
                memcpy(buf + n + 8, backing_format, len);
                n += 8 + ((len + 7) & ~(size_t) 7);
        }
        n += 8; /* end of extensions: zeroes */
        if (backing) {
                size_t len = strlen(backing);
                g_assert_cmpuint(n + len, <=, sizeof(buf));
                put_be(buf + 8, n, 8);
                put_be(buf + 16, len, 4);
                memcpy(buf + n, backing, len);
                n += len;
        }
        g_assert_true(g_file_set_contents(path, (const char *) buf, (gssize) n, NULL));
}

void write_qcow2(const TestHost *f, const char *name, uint64_t virtual_size) {
        write_qcow2_backing(f, name, virtual_size, NULL, NULL);
}

/* ---- domains and options ---- */

DomainDef *parse_def(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

char *qemu_xml(const char *extra_os, const char *devices) {
        return g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                               "<memory unit='GiB'>2</memory><vcpu>2</vcpu>"
                               "<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>%s</os>"
                               "<devices>%s</devices></domain>",
                               extra_os ? extra_os : "", devices ? devices : "");
}

MigrateOptions *parse_options(const char *text) {
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(text ? text : "@a{sv} {}"));
        g_autoptr(GError) error = NULL;
        MigrateOptions *o = NULL;

        g_assert_cmpint(migrate_options_parse(v, &o, &error), ==, 0);
        g_assert_no_error(error);
        return o;
}

Domain *define_domain(TestHost *f, const char *name, const char *uuid, const char *memory_mib) {
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
        ((TestHost *) userdata)->done = true;
}

void start_domain(TestHost *f, Domain *d) {
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        f->done = false;
        g_assert_cmpint(domain_start(d, on_started, f, &error), ==, 0);
        while (!f->done && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

PreflightContext preflight_context(const TestHost *f, PreflightSide side, const DomainDef *def,
                                   const MigrateOptions *o) {
        return (PreflightContext){
                .side = side,
                .def = def,
                .options = o,
                .facts = &f->facts,
                .source = f->source,
        };
}

/* ---- errors and findings ---- */

void assert_vm_error(const GError *error, VmError code, const char *word) {
        g_assert_nonnull(error);
        if (!error)
                return;
        g_assert_error((GError *) error, VM_ERROR, (int) code);
        if (!strstr(error->message, word)) {
                g_test_message("'%s' not in: %s", word, error->message);
                g_test_fail();
        }
}

void assert_finding(const Findings *out, const char *id, FindingSeverity severity, ...) {
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

void assert_quiet(const Findings *out) {
        for (size_t i = 0; i < findings_count(out); i++)
                g_test_message("unexpected: %s %s", findings_get(out, i)->id, findings_get(out, i)->message);
        g_assert_cmpuint(findings_count(out), ==, 0);
}
