/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "display-ports.h"
#include "domain-xml.h"
#include "errors.h"
#include "findings.h"
#include "host-facts.h"
#include "preflight.h"

/* A listening socket on 127.0.0.1, port 0 = any: its port, or 0. */
static int listen_loopback(uint16_t port, uint16_t *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static void test_parse_range(void) {
        uint16_t min, max;

        g_assert_cmpint(display_ports_parse_range("5900-5999", &min, &max, NULL), ==, 0);
        g_assert_cmpuint(min, ==, 5900);
        g_assert_cmpuint(max, ==, 5999);
        g_assert_cmpint(display_ports_parse_range("6000-5999", &min, &max, NULL), <, 0);
        g_assert_cmpint(display_ports_parse_range("0-10", &min, &max, NULL), <, 0);
        g_assert_cmpint(display_ports_parse_range("5900", &min, &max, NULL), <, 0);
        g_assert_cmpint(display_ports_parse_range("5900-70000", &min, &max, NULL), <, 0);
        g_assert_cmpint(display_ports_parse_range(NULL, &min, &max, NULL), <, 0);
}

/* Held ports are skipped, bound ones too, released ones come back. */
static void test_acquire(void) {
        uint16_t busy, first, second, again;
        int fd = listen_loopback(0, &busy);
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(fd, >=, 0);
        /* A range of three ports starting at the one someone listens on. */
        display_ports_set_range(busy, busy + 2);
        g_assert_cmpint(display_port_acquire("127.0.0.1", 0, false, 0, 0, &first, NULL), ==, 0);
        g_assert_cmpuint(first, ==, busy + 1);
        g_assert_true(display_port_is_held(first));
        g_assert_cmpint(display_port_acquire("127.0.0.1", 0, false, 0, 0, &second, NULL), ==, 0);
        g_assert_cmpuint(second, ==, busy + 2);
        g_assert_cmpint(display_port_acquire("127.0.0.1", 0, false, 0, 0, &again, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_BACKEND_FAILED);
        g_assert_nonnull(strstr(error->message, "no free display port"));
        g_clear_error(&error);
        /* A fixed port held by another guest, or bound: refused. */
        g_assert_cmpint(display_port_acquire("127.0.0.1", first, false, 0, 0, &again, &error), <, 0);
        g_assert_nonnull(strstr(error->message, "in use"));
        g_clear_error(&error);
        g_assert_cmpint(display_port_acquire("127.0.0.1", busy, false, 0, 0, &again, NULL), <, 0);
        display_port_release(first);
        g_assert_false(display_port_is_held(first));
        g_assert_cmpint(display_port_acquire("127.0.0.1", 0, false, 0, 0, &again, NULL), ==, 0);
        g_assert_cmpuint(again, ==, first);
        /* The skipped range (the migration data ports) is never handed out. */
        display_port_release(again);
        display_port_release(second);
        g_assert_cmpint(display_port_acquire("127.0.0.1", 0, false, busy + 1, busy + 1, &again, NULL), ==,
                        0);
        g_assert_cmpuint(again, ==, busy + 2);
        display_port_release(again);
        close(fd);
        display_ports_set_range(DISPLAY_PORT_MIN, DISPLAY_PORT_MAX);
}

static DomainDef *parse(const char *xml) {
        DomainDef *def = NULL;
        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, NULL), ==, 0);
        return def;
}

/* network.display-port: a fixed port in use, a range with nothing free, a
 * listen address that is not this host's; sockets and none need nothing. */
static void test_preflight(void) {
        uint16_t busy;
        int fd = listen_loopback(0, &busy);
        HostFacts facts = { .port_min = 49152, .port_max = 49215 };
        g_autofree char *fixed =
                g_strdup_printf("<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><devices>"
                                "<graphics type='spice' port='%u' autoport='no'/></devices></domain>",
                                busy);
        g_autoptr(DomainDef) def_fixed = parse(fixed);
        g_autoptr(DomainDef) def_auto =
                parse("<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory>"
                      "<devices><graphics type='spice'/></devices></domain>");
        g_autoptr(DomainDef) def_foreign =
                parse("<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><devices>"
                      "<graphics type='vnc' listen='192.0.2.1'/></devices></domain>");
        g_autoptr(DomainDef) def_socket =
                parse("<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><devices>"
                      "<graphics type='vnc'><listen type='socket'/></graphics>"
                      "<graphics type='spice'><listen type='none'/></graphics></devices></domain>");
        g_autoptr(Findings) f1 = findings_new("host-b"), f2 = findings_new("host-b"),
                            f3 = findings_new("host-b"), f4 = findings_new("host-b"),
                            f5 = findings_new("host-b");
        const Finding *f;

        g_assert_cmpint(fd, >=, 0);
        facts.display_port_min = busy;
        facts.display_port_max = busy;
        preflight_display_ports(&facts, def_fixed, f1);
        f = findings_find(f1, "network.display-port");
        g_assert_nonnull(f);
        g_assert_nonnull(f ? strstr(f->message, "is in use here") : NULL);

        preflight_display_ports(&facts, def_auto, f2);
        f = findings_find(f2, "network.display-port");
        g_assert_nonnull(f ? strstr(f->message, "no free display port") : NULL);

        facts.display_port_max = busy + 1;
        preflight_display_ports(&facts, def_auto, f3);
        g_assert_false(findings_has_errors(f3));

        facts.display_port_min = DISPLAY_PORT_MIN;
        facts.display_port_max = DISPLAY_PORT_MAX;
        preflight_display_ports(&facts, def_foreign, f4);
        f = findings_find(f4, "network.display-port");
        g_assert_nonnull(f ? strstr(f->message, "not an address of this host") : NULL);

        preflight_display_ports(&facts, def_socket, f5);
        g_assert_cmpuint(findings_count(f5), ==, 0);
        close(fd);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/display-ports/parse-range", test_parse_range);
        g_test_add_func("/display-ports/acquire", test_acquire);
        g_test_add_func("/display-ports/preflight", test_preflight);
        return g_test_run();
}
