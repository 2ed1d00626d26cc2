/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "errors.h"
#include "job-archive.h"

#define UUID_A "6add991f-6528-4d61-a0eb-64203c666e12"
#define UUID_B "0f0e0d0c-0b0a-4908-8706-050403020100"

static char *make_state_dir(void) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("test-job-archive-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

static void remove_state_dir(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(dir, name, NULL);
                g_assert_cmpint(g_unlink(path), ==, 0);
        }
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static GVariant *stats(const char *phase) {
        GVariantDict d;

        g_variant_dict_init(&d, NULL);
        g_variant_dict_insert(&d, "kind", "s", "migration-out");
        g_variant_dict_insert(&d, "phase", "s", phase);
        g_variant_dict_insert(&d, "downtime-ms", "t", (guint64) 42);
        return g_variant_ref_sink(g_variant_dict_end(&d));
}

static void record(JobArchive *a, uint64_t id, const char *name, const char *uuid, const char *phase) {
        g_autoptr(GVariant) s = stats(phase);
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(job_archive_record(a, id, name, uuid, 1500, s, &error), ==, 0);
        g_assert_no_error(error);
}

static GVariant *list(JobArchive *a, GVariant *filter_dict) {
        g_auto(JobArchiveFilter) f = {};
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) filter = g_variant_ref_sink(filter_dict ? filter_dict : g_variant_new("a{sv}", NULL));

        g_assert_cmpint(job_archive_filter_parse(filter, &f, &error), ==, 0);
        g_assert_no_error(error);
        return g_variant_ref_sink(job_archive_list(a, &f));
}

static uint64_t id_at(GVariant *l, gsize i) {
        g_autoptr(GVariant) e = g_variant_get_child_value(l, i);
        uint64_t id = 0;

        g_assert_true(g_variant_lookup(e, "id", "t", &id));
        return id;
}

static void test_round_trip(void) {
        g_autofree char *dir = make_state_dir();
        g_autoptr(JobArchive) a = job_archive_open(dir, 100);

        g_assert_cmpuint(job_archive_size(a), ==, 0);
        g_assert_cmpuint(job_archive_max_id(a), ==, 0);
        record(a, 7, "vm1", UUID_A, "completed");
        record(a, 8, "vm2", UUID_B, "failed");
        a = job_archive_free(a);

        a = job_archive_open(dir, 100);
        g_assert_cmpuint(job_archive_size(a), ==, 2);
        g_assert_cmpuint(job_archive_max_id(a), ==, 8);
        g_autoptr(GVariant) l = list(a, NULL);
        g_assert_cmpuint(g_variant_n_children(l), ==, 2);
        g_assert_cmpuint(id_at(l, 0), ==, 7);
        g_assert_cmpuint(id_at(l, 1), ==, 8);
        g_autoptr(GVariant) e = g_variant_get_child_value(l, 0);
        const char *s;
        uint64_t t, started, ended;
        g_assert_true(g_variant_lookup(e, "domain", "&s", &s));
        g_assert_cmpstr(s, ==, "vm1");
        g_assert_true(g_variant_lookup(e, "downtime-ms", "t", &t));
        g_assert_cmpuint(t, ==, 42);
        g_assert_true(g_variant_lookup(e, "started-at", "t", &started));
        g_assert_true(g_variant_lookup(e, "ended-at", "t", &ended));
        g_assert_cmpuint(ended - started, ==, 1500 * 1000);

        g_autoptr(GVariant) last = job_archive_last_for(a, UUID_A);
        g_assert_nonnull(last);
        g_assert_true(g_variant_lookup(last, "phase", "&s", &s));
        g_assert_cmpstr(s, ==, "completed");
        g_assert_null(job_archive_last_for(a, "00000000-0000-4000-8000-000000000000"));
        a = job_archive_free(a);
        remove_state_dir(dir);
}

static void test_max_and_filters(void) {
        g_autofree char *dir = make_state_dir();
        g_autoptr(JobArchive) a = job_archive_open(dir, 3);

        for (uint64_t id = 1; id <= 5; id++)
                record(a, id, id % 2 ? "odd" : "even", id % 2 ? UUID_A : UUID_B, id == 4 ? "cancelled" : "completed");
        g_assert_cmpuint(job_archive_size(a), ==, 3); /* 3, 4, 5 */
        g_autoptr(GVariant) all = list(a, NULL);
        g_assert_cmpuint(id_at(all, 0), ==, 3);

        g_autoptr(GVariant) odd = list(a, g_variant_new_parsed("{'domain': <'odd'>}"));
        g_assert_cmpuint(g_variant_n_children(odd), ==, 2);
        g_autoptr(GVariant) by_uuid = list(a, g_variant_new_parsed("{'domain': <%s>}", UUID_B));
        g_assert_cmpuint(g_variant_n_children(by_uuid), ==, 1);
        g_autoptr(GVariant) cancelled = list(a, g_variant_new_parsed("{'result': <'cancelled'>}"));
        g_assert_cmpuint(g_variant_n_children(cancelled), ==, 1);
        g_assert_cmpuint(id_at(cancelled, 0), ==, 4);
        g_autoptr(GVariant) newest = list(a, g_variant_new_parsed("{'limit': <uint32 2>}"));
        g_assert_cmpuint(g_variant_n_children(newest), ==, 2);
        g_assert_cmpuint(id_at(newest, 0), ==, 4);
        g_autoptr(GVariant) future = list(a, g_variant_new_parsed("{'since': <uint64 %t>}", G_MAXUINT64));
        g_assert_cmpuint(g_variant_n_children(future), ==, 0);

        job_archive_set_max(a, 1);
        a = job_archive_free(a);
        a = job_archive_open(dir, 100);
        g_assert_cmpuint(job_archive_size(a), ==, 1);
        g_assert_cmpuint(job_archive_max_id(a), ==, 5);

        /* 0 keeps nothing, and removes the file. */
        job_archive_set_max(a, 0);
        g_autofree char *path = g_build_filename(dir, "job-history", NULL);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        a = job_archive_free(a);
        remove_state_dir(dir);
}

static void test_bad_filters(void) {
        static const char *const bad[] = {
                "{'colour': <'red'>}", "{'limit': <'3'>}", "{'kind': <'sideways'>}",
                "{'result': <'won'>}", "{'since': <int32 3>}", "{'domain': <3>}",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_auto(JobArchiveFilter) f = {};
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(bad[i]));
                g_assert_cmpint(job_archive_filter_parse(v, &f, &error), <, 0);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        }
}

/* Damaged files are set aside, never trusted, never fatal. */
static void test_damaged(void) {
        g_autofree char *dir = make_state_dir();
        g_autofree char *path = g_build_filename(dir, "job-history", NULL);
        g_autofree char *aside = g_build_filename(dir, "job-history.damaged", NULL);
        g_autoptr(GRand) rand = g_rand_new_with_seed(42);

        for (int round = 0; round < 200; round++) {
                size_t len = g_rand_int_range(rand, 0, 4096);
                g_autofree guint8 *junk = g_malloc(len + 1);
                for (size_t i = 0; i < len; i++)
                        junk[i] = (guint8) g_rand_int(rand);
                g_assert_true(g_file_set_contents(path, (const char *) junk, (gssize) len, NULL));
                g_autoptr(JobArchive) a = job_archive_open(dir, 100);
                /* Whatever survived has the keys every entry has. */
                g_autoptr(GVariant) l = list(a, NULL);
                for (gsize i = 0; i < g_variant_n_children(l); i++)
                        g_assert_cmpuint(id_at(l, i), >, 0);
                (void) g_unlink(aside);
                (void) g_unlink(path);
        }
        /* A valid file of entries of which one lacks its UUID. */
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
        g_variant_builder_add_parsed(&b, "{'id': <uint64 3>, 'ended-at': <uint64 5>, 'uuid': <%s>, 'domain': <'x'>,"
                                         " 'kind': <'migration-in'>, 'phase': <'failed'>}",
                                     UUID_A);
        g_variant_builder_add_parsed(&b, "{'id': <uint64 4>, 'ended-at': <uint64 5>, 'domain': <'x'>,"
                                         " 'kind': <'migration-in'>, 'phase': <'failed'>}");
        g_autoptr(GVariant) file = g_variant_ref_sink(g_variant_new("(u@aa{sv})", 1, g_variant_builder_end(&b)));
        g_assert_true(g_file_set_contents(path, g_variant_get_data(file), (gssize) g_variant_get_size(file), NULL));
        g_autoptr(JobArchive) a = job_archive_open(dir, 100);
        g_assert_cmpuint(job_archive_size(a), ==, 1);
        g_assert_cmpuint(job_archive_max_id(a), ==, 3);
        a = job_archive_free(a);
        remove_state_dir(dir);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/job-archive/round-trip", test_round_trip);
        g_test_add_func("/job-archive/max-and-filters", test_max_and_filters);
        g_test_add_func("/job-archive/bad-filters", test_bad_filters);
        g_test_add_func("/job-archive/damaged", test_damaged);
        return g_test_run();
}
