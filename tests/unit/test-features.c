/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu backend's side of host features: bridge interfaces on the QEMU
 * command line (the tap itself needs root and is tested in
 * tests/hosts/test-features.sh). */
#include <string.h>

#include "domain-xml.h"
#include "errors.h"
#include "qemu-command.h"

static DomainDef *parse(const char *devices) {
        g_autofree char *xml = g_strdup_printf("<domain type='kvm'><name>vm1</name>"
                                               "<uuid>11111111-2222-3333-4444-555555555555</uuid>"
                                               "<memory unit='MiB'>64</memory><devices>%s</devices></domain>",
                                               devices);
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

static char *build(const DomainDef *def, const int *tap_fds, GError **error) {
        g_autoptr(QemuPaths) paths = qemu_paths_new("/run/vmigrate/qemu", def->uuid);
        QemuCommandOptions options = { .binary = "qemu-system-x86_64", .kvm = true, .qmp_fd = 3, .tap_fds = tap_fds };
        g_auto(GStrv) argv = NULL;

        if (qemu_build_argv(def, paths, &options, &argv, error) < 0)
                return NULL;
        return g_strjoinv(" ", argv);
}

static void test_bridge_command_line(void) {
        g_autoptr(DomainDef) def = parse(
                "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>"
                "<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:00:00:02'/>"
                "<model type='e1000'/></interface>"
                "<interface type='bridge'><source bridge='br1'/><mac address='52:54:00:00:00:03'/></interface>");
        static const int taps[] = { -1, 4, 5 };
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = build(def, taps, &error);

        g_assert_no_error(error);
        g_test_message("%s", cmd);
        g_assert_nonnull(strstr(cmd, "-netdev user,id=net0 -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01"));
        g_assert_nonnull(strstr(cmd, "-netdev tap,id=net1,fd=4 -device e1000,netdev=net1,mac=52:54:00:00:00:02"));
        g_assert_nonnull(strstr(cmd, "-netdev tap,id=net2,fd=5 -device virtio-net-pci,netdev=net2,mac=52:54:00:00:00:03"));
        /* The monitor keeps fd 3 and QEMU still may not spawn anything
         * (no script=, no helper=: the daemon made the taps). */
        g_assert_nonnull(strstr(cmd, "socket,id=monitor,fd=3,"));
        g_assert_nonnull(strstr(cmd, "spawn=deny"));
        g_assert_null(strstr(cmd, "script="));
        g_assert_null(strstr(cmd, "helper="));
}

/* A network is a bridge found through the host's table: QEMU gets a tap
 * the daemon made, as for type='bridge'. */
static void test_network_is_a_tap(void) {
        g_autoptr(DomainDef) def = parse("<interface type='network'><source network='default'/></interface>");
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = build(def, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(cmd);
        g_assert_nonnull(strstr(cmd, "tap,id=net0,fd="));
        g_assert_null(strstr(cmd, "script="));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/features/qemu/bridge-command-line", test_bridge_command_line);
        g_test_add_func("/features/qemu/network-is-a-tap", test_network_is_a_tap);
        return g_test_run();
}
