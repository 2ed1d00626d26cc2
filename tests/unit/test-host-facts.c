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

/* A qcow2 on a raw backing file, relative to its directory, with the
 * format said; another whose backing file has no format extension. */
static void test_disk_image_backing(TestHost *f, gconstpointer data) {
        g_autofree char *top = path_in(f, "top.qcow2"), *base = path_in(f, "base.raw"),
                        *top2 = path_in(f, "top2.qcow2");
        g_auto(DiskImageInfo) info = {};
        uint64_t chain = 0;

        write_file(f, "base.raw", 8192);
        write_qcow2_backing(f, "top.qcow2", 8192, "base.raw", "raw");
        g_assert_cmpint(disk_image_read(top, "qcow2", &info), ==, 0);
        g_assert_cmpuint(info.virtual_size, ==, 8192);
        g_assert_cmpstr(info.backing_file, ==, "base.raw");
        g_assert_cmpstr(info.backing_format, ==, "raw");
        g_assert_false(info.external_data);
        g_autofree char *resolved = disk_image_backing_path(top, info.backing_file);
        g_assert_cmpstr(resolved, ==, base);
        g_autofree char *absolute = disk_image_backing_path(top, "/srv/base.qcow2");
        g_assert_cmpstr(absolute, ==, "/srv/base.qcow2");

        /* The chain takes what both files take. */
        g_auto(DiskImageInfo) base_info = {};
        g_assert_cmpint(disk_image_read(base, NULL, &base_info), ==, 0);
        g_assert_cmpint(disk_image_chain_allocation(top, "qcow2", &chain), ==, 0);
        g_assert_cmpuint(chain, ==, info.allocation + base_info.allocation);

        /* No format extension: the backing file's first bytes say. */
        write_qcow2_backing(f, "top2.qcow2", 8192, "top.qcow2", NULL);
        g_assert_cmpstr(disk_image_probe_format(top), ==, "qcow2");
        g_assert_cmpstr(disk_image_probe_format(base), ==, "raw");
        g_assert_cmpint(disk_image_chain_allocation(top2, "qcow2", &chain), ==, 0);

        /* A chain that loops on itself ends. */
        write_qcow2_backing(f, "loop.qcow2", 8192, "loop.qcow2", "qcow2");
        g_autofree char *loop = path_in(f, "loop.qcow2");
        g_assert_cmpint(disk_image_chain_allocation(loop, "qcow2", &chain), ==, -ELOOP);

        /* A missing backing file: the chain says so. */
        write_qcow2_backing(f, "orphan.qcow2", 8192, "gone.raw", "raw");
        g_autofree char *orphan = path_in(f, "orphan.qcow2");
        g_assert_cmpint(disk_image_chain_allocation(orphan, "qcow2", &chain), ==, -ENOENT);
}

/* Headers that are not qcow2 are refused, whatever their bytes. */
static void test_disk_image_hostile(void) {
        uint8_t buf[256] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
        g_auto(DiskImageInfo) info = {};

        /* Version 3 with a header_length of 0. */
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
        buf[103] = 104;
        /* Quiet: the extensions end at once (zeroes). */
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, 0);
        disk_image_info_clear(&info);
        /* An extension longer than the buffer. */
        buf[104] = 0xe2, buf[105] = 0x79, buf[106] = 0x2a, buf[107] = 0xca, buf[110] = 0xff;
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
        /* A backing format with a NUL in it. */
        buf[110] = 0, buf[111] = 4, buf[112] = 'r', buf[113] = 0;
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
        /* A backing format with no backing file. */
        buf[113] = 'a', buf[114] = 'w', buf[115] = ' ';
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
        /* A backing name beyond the buffer. */
        buf[15] = 250, buf[19] = 10;
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
        /* Within it: read. */
        buf[15] = 200;
        memcpy(buf + 200, "/base.img", 9);
        buf[19] = 9;
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, 0);
        g_assert_cmpstr(info.backing_file, ==, "/base.img");
        g_assert_cmpstr(info.backing_format, ==, "raw ");
        disk_image_info_clear(&info);
        /* Version 4, too short, another magic. */
        buf[7] = 4;
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
        buf[7] = 3;
        g_assert_cmpint(disk_image_parse_qcow2(buf, 100, &info), ==, -EBADMSG);
        buf[0] = 'X';
        g_assert_cmpint(disk_image_parse_qcow2(buf, sizeof(buf), &info), ==, -EBADMSG);
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
        g_assert_nonnull(s->disk_images);
        g_assert_cmpuint(g_hash_table_size(s->disk_images), ==, 1);
        const SourceDiskImage *image = g_hash_table_lookup(s->disk_images, "vda");
        g_assert_nonnull(image);
        g_assert_null(image->backing);
        g_assert_cmpuint(image->chain_allocation, ==, image->allocation);
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
        refuse_cookie("{'disk-images': <{'vda': (uint64 1, uint64 1, 'base.img', 'raw', uint64 1)}>}",
                      "absolute path");
        refuse_cookie("{'disk-images': <{'vda': (uint64 1, uint64 1, '/base.img', 'vmdk', uint64 1)}>}",
                      "raw or qcow2");
        refuse_cookie("{'disk-images': <{'vda': (uint64 1, uint64 1, '/a\\nb', 'raw', uint64 1)}>}",
                      "absolute path");
        refuse_cookie("{'disk-images': <{'vda': uint64 1}>}", "not a{s(ttsst)}");

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
        g_test_add_func("/disk-image/hostile", test_disk_image_hostile);
#define ADD(path, fn) g_test_add(path, TestHost, NULL, test_host_setup, fn, test_host_teardown)
        ADD("/source-facts/disk-size", test_disk_virtual_size);
        ADD("/disk-image/backing", test_disk_image_backing);
        ADD("/source-facts/cookie", test_source_facts_cookie);
        return g_test_run();
}
