/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* common/net.c: the bind test, and a host's own address from a hosts file. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "net.h"

static void test_try_bind(void) {
        g_assert_cmpint(net_try_bind("127.0.0.1", 0), ==, 0);
        g_assert_cmpint(net_try_bind("0.0.0.0", 0), ==, 0);
        g_assert_cmpint(net_try_bind("host-b", 0), ==, -EINVAL);
        g_assert_cmpint(net_try_bind("[::1]", 0), ==, -EINVAL); /* literals come without brackets */
        g_assert_cmpint(net_try_bind("", 0), ==, -EINVAL);
        /* TEST-NET-1: never an address of this host. */
        g_assert_cmpint(net_try_bind("192.0.2.1", 0), ==, -EADDRNOTAVAIL);
}

static char *write_hosts(const char *text) {
        g_autofree char *dir = g_dir_make_tmp("vmigrate-net-XXXXXX", NULL);
        char *path = g_build_filename(dir, "hosts", NULL);

        g_assert_true(g_file_set_contents(path, text, -1, NULL));
        return path;
}

static void remove_hosts(const char *path) {
        g_autofree char *dir = g_path_get_dirname(path);
        g_assert_cmpint(g_unlink(path), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* A non-loopback IPv4 address of this machine, or NULL. */
static char *some_local_address(void) {
        struct ifaddrs *list = NULL;
        char *found = NULL;

        if (getifaddrs(&list) < 0)
                return NULL;
        for (struct ifaddrs *i = list; i && !found; i = i->ifa_next) {
                char text[INET_ADDRSTRLEN];
                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
                        continue;
                inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, text, sizeof(text));
                if (!g_str_has_prefix(text, "127."))
                        found = g_strdup(text);
        }
        freeifaddrs(list);
        return found;
}

static void test_own_address_refusals(void) {
        g_autofree char *path = write_hosts("127.0.0.1 localhost\n"
                                            "127.0.1.1 vm1.example vm1\n" /* Debian's habit: loopback */
                                            "::1 localhost ip6-localhost\n"
                                            "192.0.2.7 vm2   # not an address of this host\n"
                                            "# 10.0.0.1 vm3\n"
                                            "   \n");

        g_assert_null(net_own_address(path, "vm1"));
        g_assert_null(net_own_address(path, "vm2"));
        g_assert_null(net_own_address(path, "vm3")); /* commented out */
        g_assert_null(net_own_address(path, "nobody"));
        g_assert_null(net_own_address("/nonexistent/hosts", "vm1"));
        remove_hosts(path);
}

static void test_own_address_found(void) {
        g_autofree char *local = some_local_address();
        if (!local) {
                g_test_skip("this machine has no non-loopback IPv4 address");
                return;
        }
        g_autofree char *text = g_strdup_printf("127.0.1.1 Host-B\n"
                                                "192.0.2.7 host-b\n"
                                                "%s\tother host-b.example HOST-B # ours\n",
                                                local);
        g_autofree char *path = write_hosts(text);
        g_autofree char *found = net_own_address(path, "host-b");

        /* Loopback and foreign entries skipped, aliases and case ignored. */
        g_assert_cmpstr(found, ==, local);
        remove_hosts(path);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/net/try-bind", test_try_bind);
        g_test_add_func("/net/own-address/refusals", test_own_address_refusals);
        g_test_add_func("/net/own-address/found", test_own_address_found);
        return g_test_run();
}
