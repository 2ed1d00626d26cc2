/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration cookies (cookie.h). What the other host sends is hostile:
 * each refusal is VM_ERROR_INCOMPATIBLE and says what was wrong. What this
 * host sends is built from a domain running on the test backend, with a
 * disk image in a temporary directory. */
#include <limits.h>
#include <string.h>

#include "cookie.h"
#include "errors.h"
#include "host-facts.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "unit-util.h"

#define WHAT "the Prepare reply"

/* The domain vm1 of the test backend, with disk vda: a qcow2 image whose
 * guest sees 2 GiB, at `disk` (by default vm1.qcow2 in the temporary
 * directory). */
static char *vm1_xml(const TestHost *f, const char *name, const char *memory_mib, const char *disk) {
        g_autofree char *image = path_in(f, "vm1.qcow2");

        return g_strdup_printf("<domain type='test'><name>%s</name><uuid>" UUID_A "</uuid>"
                               "<memory unit='MiB'>%s</memory><vcpu>2</vcpu><devices>"
                               "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                               "<source file='%s'/><target dev='vda' bus='virtio'/></disk>"
                               "</devices></domain>",
                               name, memory_mib, disk ? disk : image);
}

static Domain *define_vm1(TestHost *f) {
        g_autofree char *xml = vm1_xml(f, "vm1", "256", NULL);
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        write_qcow2(f, "vm1.qcow2", 2ULL << 30);
        g_assert_cmpint(manager_define_xml(f->manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        return d;
}

/* Options as Migrate hands them over: parsed from GVariant text (format
 * as for g_variant_new_parsed), checked against d's backend, defaulted. */
static MigrateOptions *ready_options(Domain *d, const char *format, ...) {
        g_autoptr(GError) error = NULL;
        MigrateOptions *o = NULL;
        const MigrateOptionSupport *support;
        size_t n;
        va_list ap;

        va_start(ap, format);
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed_va(format, &ap));
        va_end(ap);
        g_assert_cmpint(migrate_options_parse(v, &o, &error), ==, 0);
        g_assert_no_error(error);
        support = domain_migrate_option_support(d, &n);
        g_assert_cmpint(migrate_options_check(o, d->backend->name, support, n, &error), ==, 0);
        g_assert_no_error(error);
        migrate_options_apply_defaults(o, support, n);
        return o;
}

static GVariant *build_prepare(TestHost *f, Domain *d, const MigrateOptions *o) {
        g_autoptr(GError) error = NULL;
        GVariant *cookie = NULL;

        g_assert_cmpint(cookie_build_prepare(f->manager, d, o, &cookie, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(cookie);
        return cookie;
}

static DomainDef *cookie_domain(GVariant *cookie) {
        const char *xml = NULL;

        g_assert_true(g_variant_lookup(cookie, "domain-xml", "&s", &xml));
        return parse_def(xml ? xml : "");
}

/* The size the destination reads for disk dev; 0 when it is not there. */
static uint64_t disk_size(const SourceFacts *s, const char *dev) {
        const guint64 *size = s && s->disk_sizes ? g_hash_table_lookup(s->disk_sizes, dev) : NULL;

        return size ? *size : 0;
}

/* ---- what arrives: size, type, version ---- */

static void refuse_cookie(GVariant *cookie, const char *why) {
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(cookie_check_size(cookie, WHAT, &error), ==, -vm_error_errno(VM_ERROR_INCOMPATIBLE));
        assert_vm_error(error, VM_ERROR_INCOMPATIBLE, WHAT ": ");
        assert_vm_error(error, VM_ERROR_INCOMPATIBLE, why);
}

/* An a{sv} of version 1 whose serialised size is exactly `size`. */
static GVariant *cookie_of_size(size_t size) {
        size_t pad = size / 2;

        for (int tries = 0; tries < 8; tries++) {
                g_autofree char *text = g_strnfill(pad, 'x');
                GVariantBuilder b;

                g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&b, "{sv}", "version", g_variant_new_uint32(MIGRATION_COOKIE_VERSION));
                g_variant_builder_add(&b, "{sv}", "padding", g_variant_new_string(text));
                g_autoptr(GVariant) cookie = g_variant_ref_sink(g_variant_builder_end(&b));
                if (g_variant_get_size(cookie) == size)
                        return g_steal_pointer(&cookie);
                pad = pad + size - g_variant_get_size(cookie);
        }
        g_assert_not_reached();
}

static void test_check_size_accepts(void) {
        g_autoptr(GVariant) small = g_variant_ref_sink(g_variant_new_parsed("{'version': <uint32 1>}"));
        g_autoptr(GVariant) largest = cookie_of_size(MIGRATION_COOKIE_MAX_BYTES);

        g_assert_cmpint(cookie_check_size(small, WHAT, NULL), ==, 0);
        g_assert_cmpint(cookie_check_size(largest, WHAT, NULL), ==, 0);
}

static void test_check_size_not_a_dict(void) {
        const char *not_dicts[] = { "@a{ss} {'version': '1'}", "@as ['version']", "('version', <uint32 1>)",
                                    "uint32 1" };

        for (size_t i = 0; i < G_N_ELEMENTS(not_dicts); i++) {
                g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(not_dicts[i]));
                refuse_cookie(v, "the cookie is not an a{sv} dictionary");
        }
}

static void test_check_size_too_big(void) {
        g_autoptr(GVariant) over = cookie_of_size(MIGRATION_COOKIE_MAX_BYTES + 1);
        g_autofree char *why = g_strdup_printf("the cookie is %d bytes, more than the %d allowed",
                                               MIGRATION_COOKIE_MAX_BYTES + 1, MIGRATION_COOKIE_MAX_BYTES);

        refuse_cookie(over, why);
}

static void test_check_size_version(void) {
        g_autoptr(GVariant) none = g_variant_ref_sink(g_variant_new_parsed("{'hostname': <'host-a'>}"));
        g_autoptr(GVariant) empty = g_variant_ref_sink(g_variant_new_parsed("@a{sv} {}"));
        g_autoptr(GVariant) newer = g_variant_ref_sink(g_variant_new_parsed("{'version': <uint32 2>}"));
        g_autoptr(GVariant) zero = g_variant_ref_sink(g_variant_new_parsed("{'version': <uint32 0>}"));
        g_autoptr(GVariant) text = g_variant_ref_sink(g_variant_new_parsed("{'version': <'1'>}"));
        g_autoptr(GVariant) wide = g_variant_ref_sink(g_variant_new_parsed("{'version': <uint64 1>}"));

        refuse_cookie(none, "cookie version 0, this vmigrate speaks version 1; upgrade the older host");
        refuse_cookie(empty, "cookie version 0");
        refuse_cookie(newer, "cookie version 2, this vmigrate speaks version 1");
        refuse_cookie(zero, "cookie version 0");
        /* Of another type, it is no version. */
        refuse_cookie(text, "cookie version 0");
        refuse_cookie(wide, "cookie version 0");
}

/* ---- what arrives: string members ---- */

static void refuse_string(GVariant *cookie, const char *key, size_t max, const char *why) {
        g_autoptr(GError) error = NULL;

        g_assert_null(cookie_string(cookie, key, max, WHAT, &error));
        assert_vm_error(error, VM_ERROR_INCOMPATIBLE, WHAT ": ");
        assert_vm_error(error, VM_ERROR_INCOMPATIBLE, why);
}

static void test_string(void) {
        g_autoptr(GVariant) cookie = g_variant_ref_sink(
                g_variant_new_parsed("{'version': <uint32 1>, 'hostname': <'host-a'>, 'count': <uint32 3>, "
                                     "'path': <objectpath '/org/vmigrate'>, 'list': <['host-a']>}"));
        g_autoptr(GError) error = NULL;

        /* At the limit: there, borrowed from the cookie. */
        const char *hostname = cookie_string(cookie, "hostname", strlen("host-a"), WHAT, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(hostname, ==, "host-a");
        const char *again = cookie_string(cookie, "hostname", 64, WHAT, NULL);
        g_assert_true(again == hostname);

        refuse_string(cookie, "hostname", strlen("host-a") - 1,
                      "cookie member 'hostname' is longer than 5 bytes");
        refuse_string(cookie, "host-uuid", 36, "the cookie lacks 'host-uuid' (or it is not a string)");
        refuse_string(cookie, "count", 64, "the cookie lacks 'count' (or it is not a string)");
        refuse_string(cookie, "path", 64, "the cookie lacks 'path' (or it is not a string)");
        refuse_string(cookie, "list", 64, "the cookie lacks 'list' (or it is not a string)");
}

/* ---- what arrives: the other host's warnings ---- */

static GVariant *reply_with_warnings(const char *const *warnings, gssize n) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        g_variant_dict_insert(&dict, "version", "u", (uint32_t) MIGRATION_COOKIE_VERSION);
        g_variant_dict_insert_value(&dict, "warnings", g_variant_new_strv(warnings, n));
        return g_variant_ref_sink(g_variant_dict_end(&dict));
}

static void test_warnings_bounded(TestHost *f, gconstpointer data) {
        Domain *d = define_domain(f, "vm1", UUID_A, "256");
        Job *job = job_new(f->manager, JOB_MIGRATION_OUT, d, "ssh://host-b");
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);

        for (int i = 0; i < 2 * JOB_WARNINGS_MAX; i++)
                g_ptr_array_add(warnings, g_strdup_printf("host-b: warning %d", i));
        g_autoptr(GVariant) reply =
                reply_with_warnings((const char *const *) warnings->pdata, warnings->len);

        cookie_add_warnings_to_job(job, reply);
        g_assert_cmpuint(job->warnings->len, ==, JOB_WARNINGS_MAX);
        for (guint i = 0; i < job->warnings->len; i++)
                g_assert_cmpstr(job->warnings->pdata[i], ==, warnings->pdata[i]);
        job_end(job, JOB_PHASE_FAILED, "test over");
}

static void test_warnings_hostile(TestHost *f, gconstpointer data) {
        Domain *d = define_domain(f, "vm1", UUID_A, "256");
        Job *job = job_new(f->manager, JOB_MIGRATION_OUT, d, "ssh://host-b");
        g_autofree char *longest = g_strnfill(FINDING_MESSAGE_MAX, 'w');
        g_autofree char *too_long = g_strnfill(FINDING_MESSAGE_MAX + 1, 'w');
        const char *warnings[] = {
                "host-b: first",   "host-b: line\nbreak", too_long, "host-b: tab\there",
                "host-b: café",    "host-b: esc\x1b[31m", longest,  "host-b: del\x7f",
                "host-b: ctl\x01", "host-b: last",        NULL,
        };
        g_autoptr(GVariant) reply = reply_with_warnings(warnings, -1);

        cookie_add_warnings_to_job(job, reply);
        g_assert_cmpuint(job->warnings->len, ==, 4);
        if (job->warnings->len == 4) {
                g_assert_cmpstr(job->warnings->pdata[0], ==, "host-b: first");
                g_assert_cmpstr(job->warnings->pdata[1], ==, "host-b: café");
                g_assert_cmpstr(job->warnings->pdata[2], ==, longest);
                g_assert_cmpstr(job->warnings->pdata[3], ==, "host-b: last");
        }

        /* No "warnings", or not an as: nothing more. */
        g_autoptr(GVariant) none = g_variant_ref_sink(g_variant_new_parsed("{'version': <uint32 1>}"));
        g_autoptr(GVariant) text = g_variant_ref_sink(g_variant_new_parsed("{'warnings': <'host-b: one'>}"));
        cookie_add_warnings_to_job(job, none);
        cookie_add_warnings_to_job(job, text);
        cookie_add_warnings_to_job(job, NULL);
        g_assert_cmpuint(job->warnings->len, ==, 4);
        job_end(job, JOB_PHASE_FAILED, "test over");
}

/* ---- what this host sends ---- */

static void test_add_host(TestHost *f, gconstpointer data) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        g_autofree char *hostname = manager_get_hostname();
        uint32_t version = 0;
        const char *host_uuid = NULL;

        cookie_add_host(&dict, f->manager);
        g_autoptr(GVariant) cookie = g_variant_ref_sink(g_variant_dict_end(&dict));
        g_assert_true(g_variant_lookup(cookie, "version", "u", &version));
        g_assert_cmpuint(version, ==, MIGRATION_COOKIE_VERSION);
        g_assert_true(g_variant_lookup(cookie, "host-uuid", "&s", &host_uuid));
        g_assert_cmpuint(strlen(f->manager->host_uuid), ==, 36);
        g_assert_cmpstr(host_uuid, ==, f->manager->host_uuid);
        /* What the other host reads back with the checks above. */
        g_assert_cmpint(cookie_check_size(cookie, WHAT, NULL), ==, 0);
        g_assert_cmpstr(cookie_string(cookie, "hostname", HOST_NAME_MAX, WHAT, NULL), ==, hostname);
        g_assert_cmpuint(g_variant_n_children(cookie), ==, 3);
}

static void test_prepare_running(TestHost *f, gconstpointer data) {
        Domain *d = define_vm1(f);
        g_autofree char *disk = path_in(f, "vm1.qcow2");
        g_autofree char *hostname = manager_get_hostname();
        g_auto(HostFacts) facts = { 0 };
        g_autoptr(GError) error = NULL;
        gboolean persistent = false, simulated = false;
        const char *host_uuid = NULL;

        start_domain(f, d);
        g_autoptr(MigrateOptions) o = ready_options(d, "@a{sv} {}");
        g_autoptr(GVariant) cookie = build_prepare(f, d, o);
        g_assert_cmpint(cookie_check_size(cookie, WHAT, NULL), ==, 0);
        g_assert_true(g_variant_lookup(cookie, "host-uuid", "&s", &host_uuid));
        g_assert_cmpstr(host_uuid, ==, f->manager->host_uuid);

        g_autoptr(DomainDef) def = cookie_domain(cookie);
        g_assert_cmpstr(def->name, ==, "vm1");
        g_assert_cmpstr(def->uuid, ==, UUID_A);
        g_assert_cmpuint(def->memory_bytes, ==, 256ULL << 20);
        g_assert_cmpuint(def->disks->len, ==, 1);
        g_assert_cmpstr(((DomainDiskDef *) def->disks->pdata[0])->source_file, ==, disk);

        g_assert_true(g_variant_lookup(cookie, "persistent", "b", &persistent));
        g_assert_true(persistent);

        /* The options as given and defaulted, for the destination to parse. */
        g_autoptr(GVariant) sent = g_variant_lookup_value(cookie, "options", G_VARIANT_TYPE_VARDICT);
        g_autoptr(MigrateOptions) received = NULL;
        g_assert_nonnull(sent);
        g_assert_cmpint(migrate_options_parse(sent, &received, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_true(received && migrate_options_equal(received, o));

        /* The backend's Begin ran. */
        g_autoptr(GVariant) backend = g_variant_lookup_value(cookie, "backend", G_VARIANT_TYPE_VARDICT);
        g_assert_nonnull(backend);
        g_assert_true(backend && g_variant_lookup(backend, "simulated", "b", &simulated));
        g_assert_true(simulated);

        /* This host's facts, as the destination reads them. */
        g_autoptr(SourceFacts) s = NULL;
        g_assert_cmpint(source_facts_from_cookie(cookie, &s, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(s->hostname, ==, hostname);
        g_assert_cmpuint(disk_size(s, "vda"), ==, 2ULL << 30);
        g_assert_cmpuint(g_hash_table_size(s->disk_sizes), ==, 1);
        g_assert_cmpint(host_facts_read(&facts), ==, 0);
        if (facts.cpu_flags) {
                g_assert_nonnull(s->cpu_flags);
                g_assert_true(s->cpu_flags &&
                              g_strv_equal((const char *const *) s->cpu_flags,
                                           (const char *const *) facts.cpu_flags));
        } else
                g_assert_null(s->cpu_flags);
}

/* A transient domain arrives transient; offline, the backend has no part. */
static void test_prepare_transient_offline(TestHost *f, gconstpointer data) {
        Domain *d = define_vm1(f);
        gboolean persistent = true;

        g_autoptr(MigrateOptions) offline = ready_options(d, "{'offline': <true>}");
        g_autoptr(GVariant) moved = build_prepare(f, d, offline);
        g_autoptr(GVariant) backend = g_variant_lookup_value(moved, "backend", G_VARIANT_TYPE_VARDICT);
        g_assert_nonnull(backend);
        g_assert_cmpuint(backend ? g_variant_n_children(backend) : 1, ==, 0);
        g_assert_true(g_variant_lookup(moved, "persistent", "b", &persistent));
        g_assert_true(persistent);

        start_domain(f, d);
        g_assert_cmpint(domain_undefine(d, NULL), ==, 0);
        g_autoptr(MigrateOptions) o = ready_options(d, "@a{sv} {}");
        g_autoptr(GVariant) cookie = build_prepare(f, d, o);
        g_assert_true(g_variant_lookup(cookie, "persistent", "b", &persistent));
        g_assert_false(persistent);
}

static void test_prepare_destination_name(TestHost *f, gconstpointer data) {
        Domain *d = define_vm1(f);
        g_autofree char *renamed_xml = vm1_xml(f, "vm1-xml", "256", NULL);

        start_domain(f, d);
        g_autoptr(MigrateOptions) o = ready_options(d, "{'destination-name': <'vm1-moved'>}");
        g_autoptr(GVariant) cookie = build_prepare(f, d, o);
        g_autoptr(DomainDef) def = cookie_domain(cookie);
        g_assert_cmpstr(def->name, ==, "vm1-moved");
        g_assert_cmpstr(def->uuid, ==, UUID_A);
        /* Only what is sent is renamed. */
        g_assert_cmpstr(domain_name(d), ==, "vm1");
        g_assert_cmpstr(d->def->name, ==, "vm1");

        /* With destination-xml too: the name option wins. */
        g_autoptr(MigrateOptions) both = ready_options(
                d, "{'destination-xml': <%s>, 'destination-name': <'vm1-moved'>}", renamed_xml);
        g_autoptr(GVariant) cookie2 = build_prepare(f, d, both);
        g_autoptr(DomainDef) def2 = cookie_domain(cookie2);
        g_assert_cmpstr(def2->name, ==, "vm1-moved");
}

static void test_prepare_destination_xml(TestHost *f, gconstpointer data) {
        Domain *d = define_vm1(f);
        g_autofree char *moved = path_in(f, "elsewhere.qcow2");
        g_autofree char *xml = vm1_xml(f, "vm1", "256", moved);
        g_autoptr(SourceFacts) s = NULL;

        start_domain(f, d);
        g_autoptr(MigrateOptions) o = ready_options(d, "{'destination-xml': <%s>}", xml);
        g_autoptr(GVariant) cookie = build_prepare(f, d, o);
        g_autoptr(DomainDef) def = cookie_domain(cookie);
        g_assert_cmpstr(((DomainDiskDef *) def->disks->pdata[0])->source_file, ==, moved);
        /* The disk was measured where it is now, under its target name. */
        g_assert_cmpint(source_facts_from_cookie(cookie, &s, NULL), ==, 0);
        g_assert_cmpuint(disk_size(s, "vda"), ==, 2ULL << 30);
}

static void refuse_prepare(TestHost *f, Domain *d, const char *destination_xml, VmError code,
                           const char *why) {
        g_autoptr(MigrateOptions) o = ready_options(d, "{'destination-xml': <%s>}", destination_xml);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) cookie = NULL;

        g_assert_cmpint(cookie_build_prepare(f->manager, d, o, &cookie, &error), ==, -vm_error_errno(code));
        g_assert_null(cookie);
        g_assert_true(error && g_str_has_prefix(error->message, "option 'destination-xml': "));
        assert_vm_error(error, code, why);
}

static void test_prepare_destination_xml_refused(TestHost *f, gconstpointer data) {
        Domain *d = define_vm1(f);
        g_autofree char *bigger = vm1_xml(f, "vm1", "512", NULL);
        const char *other = "<domain type='test'><name>vm1</name><uuid>" UUID_B "</uuid>"
                            "<memory unit='MiB'>256</memory><vcpu>2</vcpu></domain>";

        start_domain(f, d);
        refuse_prepare(f, d, bigger, VM_ERROR_INVALID_OPTION, "<memory> differs from the running domain");
        refuse_prepare(f, d, other, VM_ERROR_INVALID_OPTION, "<uuid> differs from the running domain");
        refuse_prepare(f, d, "<domain type='test'><name>vm1</name>", VM_ERROR_INVALID_XML,
                       "not well-formed XML");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        /* Each warning a job gets is logged as a warning. */
        log_set_max_level(LOG_ERR);

        g_test_add_func("/cookie/check-size/accepts", test_check_size_accepts);
        g_test_add_func("/cookie/check-size/not-a-dict", test_check_size_not_a_dict);
        g_test_add_func("/cookie/check-size/too-big", test_check_size_too_big);
        g_test_add_func("/cookie/check-size/version", test_check_size_version);
        g_test_add_func("/cookie/string", test_string);

#define ADD(path, fn) g_test_add("/cookie/" path, TestHost, NULL, test_host_setup, fn, test_host_teardown)
        ADD("warnings/bounded", test_warnings_bounded);
        ADD("warnings/hostile", test_warnings_hostile);
        ADD("add-host", test_add_host);
        ADD("prepare/running", test_prepare_running);
        ADD("prepare/transient-offline", test_prepare_transient_offline);
        ADD("prepare/destination-name", test_prepare_destination_name);
        ADD("prepare/destination-xml", test_prepare_destination_xml);
        ADD("prepare/destination-xml-refused", test_prepare_destination_xml_refused);
        return g_test_run();
}
