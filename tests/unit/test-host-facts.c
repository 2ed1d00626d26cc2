/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host facts (host-facts.h): what this host reads about itself, and what
 * the source tells the destination in the Prepare cookie, which the
 * destination takes as hostile input. Disk images live in a temporary
 * directory. */
#include <errno.h>

#include "errors.h"
#include "host-facts.h"
#include "log.h"
#include "unit-util.h"

static void test_disk_virtual_size(TestHost *f, gconstpointer data) {
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

static void test_source_facts_cookie(TestHost *f, gconstpointer data) {
        g_autofree char *disk = path_in(f, "vm1.qcow2");
        g_autofree char *xml = g_strdup_printf(
                "<domain type='test'><name>vm1</name><uuid>" UUID_A "</uuid><memory unit='MiB'>64</memory>"
                "<vcpu>1</vcpu><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                "<source file='%s'/><target dev='vda' bus='virtio'/></disk>"
                "<disk type='file' device='disk'><source file='/nonexistent/gone.img'/>"
                "<target dev='vdb' bus='virtio'/></disk></devices></domain>",
                disk);
        g_autoptr(DomainDef) def = parse_def(xml);
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

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);

        g_test_add_func("/host-facts/read", test_host_facts_read);
        g_test_add_func("/source-facts/hostile", test_source_facts_hostile);
#define ADD(path, fn) g_test_add(path, TestHost, NULL, test_host_setup, fn, test_host_teardown)
        ADD("/source-facts/disk-size", test_disk_virtual_size);
        ADD("/source-facts/cookie", test_source_facts_cookie);
        return g_test_run();
}
