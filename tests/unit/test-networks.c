/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The admin's network table (networks.h): NAME -> bridge, one file each. */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "networks.h"

typedef struct {
        char *dir;
} Fixture;

static void setup(Fixture *f, gconstpointer data) {
        f->dir = g_dir_make_tmp("vmigrate-networks-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
}

static void teardown(Fixture *f, gconstpointer data) {
        g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(f->dir, name, NULL);
                g_unlink(p);
        }
        g_rmdir(f->dir);
        g_free(f->dir);
}

static void put(Fixture *f, const char *name, const char *contents) {
        g_autofree char *p = g_build_filename(f->dir, name, NULL);
        g_assert_true(g_file_set_contents(p, contents, -1, NULL));
}

static char *lookup(const char *dir, const char *name, int expect, const char *expect_problem) {
        g_autofree char *bridge = NULL, *problem = NULL;
        int r = network_lookup_bridge(dir, name, &bridge, &problem);

        g_assert_cmpint(r, ==, expect);
        if (expect_problem) {
                g_test_message("problem: %s", problem);
                g_assert_true(problem && strstr(problem, expect_problem));
        }
        return g_steal_pointer(&bridge);
}

static void test_default(Fixture *f, gconstpointer data) {
        g_autofree char *a = lookup(f->dir, "default", 0, NULL);
        g_autofree char *b = lookup(NULL, "default", 0, NULL);

        g_assert_cmpstr(a, ==, "virbr0");
        g_assert_cmpstr(b, ==, "virbr0");
        put(f, "default", "br-default\n");
        g_autofree char *c = lookup(f->dir, "default", 0, NULL);
        g_assert_cmpstr(c, ==, "br-default");
}

static void test_file(Fixture *f, gconstpointer data) {
        put(f, "lan", "# the office LAN\n\n   br-lan  \n# trailing\n");
        g_autofree char *b = lookup(f->dir, "lan", 0, NULL);
        g_assert_cmpstr(b, ==, "br-lan");
}

static void test_missing_and_bad(Fixture *f, gconstpointer data) {
        g_autofree char *expect = g_strdup_printf("network 'lan' is not defined here (no %s/lan)", f->dir);
        g_free(lookup(f->dir, "lan", -ENOENT, expect));
        g_free(lookup(NULL, "lan", -ENOENT, "no networks directory"));
        put(f, "empty", "# nothing\n");
        g_free(lookup(f->dir, "empty", -EINVAL, "names no bridge"));
        put(f, "long", "a-bridge-name-too-long\n");
        g_free(lookup(f->dir, "long", -EINVAL, "is not a bridge name (1-15 bytes"));
        put(f, "colon", "br:0\n");
        g_free(lookup(f->dir, "colon", -EINVAL, "is not a bridge name"));
        g_free(lookup(f->dir, "../etc/passwd", -EINVAL, "not a network name"));
        g_free(lookup(f->dir, ".hidden", -EINVAL, "not a network name"));
}

static void test_interface(Fixture *f, gconstpointer data) {
        DomainInterfaceDef bridge = { .type = (char *) "bridge", .source = (char *) "br0" };
        DomainInterfaceDef network = { .type = (char *) "network", .source = (char *) "default" };
        DomainInterfaceDef user = { .type = (char *) "user" };
        g_autofree char *b1 = NULL, *b2 = NULL, *b3 = NULL, *problem = NULL;

        g_assert_cmpint(interface_lookup_bridge(f->dir, &bridge, &b1, &problem), ==, 1);
        g_assert_cmpstr(b1, ==, "br0");
        g_assert_cmpint(interface_lookup_bridge(f->dir, &network, &b2, &problem), ==, 1);
        g_assert_cmpstr(b2, ==, "virbr0");
        g_assert_cmpint(interface_lookup_bridge(f->dir, &user, &b3, &problem), ==, 0);
        g_assert_null(b3);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add("/networks/default-is-virbr0", Fixture, NULL, setup, test_default, teardown);
        g_test_add("/networks/file-names-the-bridge", Fixture, NULL, setup, test_file, teardown);
        g_test_add("/networks/missing-and-bad", Fixture, NULL, setup, test_missing_and_bad, teardown);
        g_test_add("/networks/interface", Fixture, NULL, setup, test_interface, teardown);
        return g_test_run();
}
