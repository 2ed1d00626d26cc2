/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "errors.h"
#include "links.h"

#define HOST "6add991f-6528-4d61-a0eb-64203c666e12"
#define NOW ((int64_t) 1796300000)

static char *make_state_dir(void) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("test-links-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

static void remove_state_dir(const char *dir) {
        g_autofree char *links = g_build_filename(dir, "links", NULL);
        g_autofree char *file = g_build_filename(links, HOST, NULL);

        (void) g_unlink(file);
        (void) g_rmdir(links);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void test_round_trip(void) {
        g_autofree char *dir = make_state_dir();
        g_auto(LinkRecord) r = {};
        g_autoptr(GError) error = NULL;
        g_autofree char *path = g_build_filename(dir, "links", HOST, NULL);
        GStatBuf st;

        g_assert_cmpint(link_record_load(dir, HOST, NOW, &r, &error), ==, -ENOENT);
        g_assert_no_error(error);
        g_assert_cmpint(link_record_save(dir, HOST, "ssh://host-b", 117728050, NOW, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(g_stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
        g_assert_cmpint(link_record_load(dir, HOST, NOW + 60, &r, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpuint(r.bandwidth, ==, 117728050);
        g_assert_cmpint(r.measured_unix, ==, NOW);
        g_assert_cmpstr(r.destination, ==, "ssh://host-b");

        /* A migration that measured nothing keeps the earlier record. */
        g_assert_cmpint(link_record_save(dir, HOST, "ssh://other", 0, NOW + 100, &error), ==, 0);
        link_record_clear(&r);
        g_assert_cmpint(link_record_load(dir, HOST, NOW + 120, &r, &error), ==, 0);
        g_assert_cmpstr(r.destination, ==, "ssh://host-b");
        remove_state_dir(dir);
}

static void test_stale(void) {
        g_autofree char *dir = make_state_dir();
        g_auto(LinkRecord) r = {};
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(link_record_save(dir, HOST, "ssh://host-b", 1000000, NOW, &error), ==, 0);
        /* A week says little about the link today; a record from the
         * future (a clock set back) says nothing either. */
        g_assert_cmpint(link_record_load(dir, HOST, NOW + LINK_RECORD_MAX_AGE_SECONDS + 1, &r, &error), ==, -ENOENT);
        g_assert_cmpint(link_record_load(dir, HOST, NOW - 1, &r, &error), ==, -ENOENT);
        g_assert_no_error(error);
        g_assert_cmpuint(r.bandwidth, ==, 0);
        remove_state_dir(dir);
}

static void test_hostile(void) {
        g_autofree char *dir = make_state_dir();
        g_autofree char *links = g_build_filename(dir, "links", NULL);
        g_autofree char *path = g_build_filename(links, HOST, NULL);
        g_auto(LinkRecord) r = {};
        g_autoptr(GError) error = NULL;

        /* The UUID comes from the other host: never a path. */
        g_assert_cmpint(link_record_save(dir, "../../etc/passwd", "x", 1, NOW, &error), ==, -EINVAL);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        g_assert_cmpint(link_record_load(dir, "", NOW, &r, &error), ==, -EINVAL);
        g_clear_error(&error);

        /* A damaged file is an error that names it, not a speed. */
        g_assert_cmpint(g_mkdir(links, 0700), ==, 0);
        g_assert_true(g_file_set_contents(path, "[Link]\nBandwidth=fast\nMeasured=1\nDestination=x\n", -1, NULL));
        g_assert_cmpint(link_record_load(dir, HOST, NOW, &r, &error), <, 0);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error->message, path));
        g_assert_cmpuint(r.bandwidth, ==, 0);
        remove_state_dir(dir);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/links/round-trip", test_round_trip);
        g_test_add_func("/links/stale", test_stale);
        g_test_add_func("/links/hostile", test_hostile);
        return g_test_run();
}
