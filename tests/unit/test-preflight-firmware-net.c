/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pre-flight checks of UEFI guests, libvirt networks and network disks
 * (preflight-firmware-net.c, and network.bridge for type='network'). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "errors.h"
#include "log.h"
#include "manager.h"
#include "networks.h"
#include "preflight-firmware-net.h"
#include "preflight.h"
#include "unit-util.h"

static void check_resources(TestHost *f, const char *xml) {
        g_autoptr(DomainDef) def = parse_def(xml);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        PreflightContext ctx = preflight_context(f, PREFLIGHT_DESTINATION, def, o);

        findings_free(f->out);
        f->out = findings_new("host-b");
        preflight_host_resources(&ctx, f->out);
}

/* Offline would leave the NVRAM behind: refused by name. */
static void test_offline_uefi(TestHost *f, gconstpointer data) {
        const char *xml =
                "<domain type='test'><name>efi</name><uuid>" UUID_A "</uuid><memory unit='MiB'>64</memory>"
                "<os firmware='efi'><type>hvm</type></os></domain>";
        g_autoptr(MigrateOptions) offline = parse_options("{'offline': <true>}");
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        g_assert_cmpint(manager_define_xml(f->manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        preflight_source_with_facts(d, &f->facts, offline, f->out);
        assert_finding(f->out, "boot.nvram", FINDING_ERROR,
                       "option 'offline' is not supported for UEFI domain 'efi'",
                       "its NVRAM (boot entries, secure boot keys) would stay here", NULL);
        g_assert_cmpint(findings_find(f->out, "boot.nvram")->code, ==, VM_ERROR_UNSUPPORTED_OPTION);
}

static void test_nvram_dir(TestHost *f, gconstpointer data) {
        g_autofree char *here = path_in(f, "nvram.fd");
        g_autofree char *a =
                g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                "<memory unit='GiB'>2</memory><vcpu>2</vcpu><os firmware='efi'>"
                                "<type arch='x86_64' machine='pc-q35-7.2'>hvm</type><nvram>%s</nvram>"
                                "</os></domain>",
                                here);
        const char *b =
                "<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid><memory unit='GiB'>2</memory>"
                "<vcpu>2</vcpu><os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>"
                "<nvram>/nonexistent/dir/vm1.fd</nvram></os></domain>";
        const char *c =
                "<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid><memory unit='GiB'>2</memory>"
                "<vcpu>2</vcpu><os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>"
                "<nvram template='/nonexistent/VARS.fd'/></os></domain>";
        check_resources(f, a);
        assert_quiet(f->out);
        check_resources(f, b);
        assert_finding(f->out, "boot.nvram", FINDING_ERROR, "directory /nonexistent/dir for the NVRAM",
                       "create it, or remove the path from <nvram>", NULL);
        check_resources(f, c);
        assert_finding(f->out, "boot.nvram", FINDING_WARNING,
                       "NVRAM template /nonexistent/VARS.fd is not readable", NULL);
        g_assert_false(findings_has_errors(f->out));
}

/* type='network': the bridge the table names, checked like a bridge. */
static void test_network_bridge(TestHost *f, gconstpointer data) {
        g_autofree char *dir = path_in(f, "networks.d");
        g_autofree char *lan = g_build_filename(dir, "lan", NULL);
        g_autofree char *wan = g_build_filename(dir, "wan", NULL);
        g_autofree char *via_lan = qemu_xml(NULL,
                                            "<interface type='network'><source network='lan'/>"
                                            "<mac address='52:54:00:00:00:01'/></interface>");
        g_autofree char *via_wan = qemu_xml(NULL,
                                            "<interface type='network'><source network='wan'/>"
                                            "<mac address='52:54:00:00:00:02'/></interface>");
        g_autofree char *via_none = qemu_xml(NULL,
                                             "<interface type='network'><source network='dmz'/>"
                                             "<mac address='52:54:00:00:00:03'/></interface>");

        g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
        g_assert_true(g_file_set_contents(lan, "br0\n", -1, NULL));
        g_assert_true(g_file_set_contents(wan, "br7\n", -1, NULL));
        f->facts.networks_dir = g_strdup(dir);

        check_resources(f, via_lan);
        assert_quiet(f->out);
        check_resources(f, via_wan);
        assert_finding(f->out, "network.bridge", FINDING_WARNING, "bridge br7 is missing",
                       "interface 52:54:00:00:00:02 would run unconnected",
                       "map network 'wan' to another bridge", NULL);
        check_resources(f, via_none);
        assert_finding(f->out, "network.bridge", FINDING_WARNING, "network 'dmz' is not defined here",
                       "name its bridge in", NULL);
}

static int listen_tcp(uint16_t *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(fd, 4), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static void test_network_disks(TestHost *f, gconstpointer data) {
        uint16_t port = 0, dead = 0;
        int fd = listen_tcp(&port), closed = listen_tcp(&dead);
        g_autofree char *sock = path_in(f, "nbd.sock");
        g_autofree char *devices = NULL, *xml = NULL, *bad = NULL, *bad_xml = NULL;
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        close(closed); /* nobody listens on `dead` now */
        g_strlcpy(sun.sun_path, sock, sizeof(sun.sun_path));
        g_assert_cmpint(bind(ufd, (struct sockaddr *) &sun, sizeof(sun)), ==, 0);
        g_assert_cmpint(listen(ufd, 4), ==, 0);

        devices = g_strdup_printf(
                "<disk type='network'><source protocol='nbd' name='x'><host name='127.0.0.1' "
                "port='%u'/></source><target dev='vda'/></disk>"
                "<disk type='network'><source protocol='nbd'><host transport='unix' socket='%s'/>"
                "</source><target dev='vdb'/></disk>",
                port, sock);
        xml = qemu_xml(NULL, devices);
        check_resources(f, xml);
        assert_quiet(f->out);

        /* One refusal at a time: a closed port, a name that does not
         * resolve, a socket that is not there. */
        bad = g_strdup_printf(
                "<disk type='network'><source protocol='iscsi' name='iqn.2013-07.com.example:s/1'>"
                "<host name='127.0.0.1' port='%u'/></source><target dev='vda'/></disk>",
                dead);
        bad_xml = qemu_xml(NULL, bad);
        check_resources(f, bad_xml);
        g_autofree char *refused =
                g_strdup_printf("disk vda (iscsi://127.0.0.1:%u/iqn.2013-07.com.example:s/1) "
                                "cannot be reached from here: Connection refused",
                                dead);
        assert_finding(f->out, "storage.network", FINDING_ERROR, refused, "is it running", NULL);
        g_autofree char *unresolved =
                qemu_xml(NULL,
                         "<disk type='network'><source protocol='nbd'><host "
                         "name='no-such-host.invalid'/></source><target dev='vdb'/></disk>");
        check_resources(f, unresolved);
        assert_finding(f->out, "storage.network", FINDING_ERROR,
                       "disk vdb (nbd://no-such-host.invalid:10809/)",
                       "host name 'no-such-host.invalid' does not resolve", NULL);
        g_autofree char *nosock =
                qemu_xml(NULL,
                         "<disk type='network'><source protocol='nbd'><host transport='unix' "
                         "socket='/nonexistent/nbd.sock'/></source><target dev='vdc'/></disk>");
        check_resources(f, nosock);
        assert_finding(
                f->out, "storage.network", FINDING_ERROR,
                "disk vdc (nbd+unix:///?socket=/nonexistent/nbd.sock) cannot be reached from here: No such "
                "file or directory",
                NULL);
        /* rbd with ceph.conf's monitors: only the configuration is looked for. */
        g_autofree char *rbd = qemu_xml(NULL,
                                        "<disk type='network'><source protocol='rbd' name='p/i'/>"
                                        "<target dev='vdd'/></disk>");
        check_resources(f, rbd);
        if (access("/etc/ceph/ceph.conf", R_OK) < 0)
                assert_finding(f->out, "storage.network", FINDING_ERROR,
                               "disk vdd (rbd:p/i) names no monitor", "/etc/ceph/ceph.conf is missing here",
                               NULL);
        close(fd);
        close(ufd);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);

#define ADD(path, fn) g_test_add(path, TestHost, NULL, test_host_setup, fn, test_host_teardown)
        ADD("/preflight-firmware-net/boot.nvram/offline-uefi-refused", test_offline_uefi);
        ADD("/preflight-firmware-net/boot.nvram/directory", test_nvram_dir);
        ADD("/preflight-firmware-net/network.bridge/network-table", test_network_bridge);
        ADD("/preflight-firmware-net/storage.network", test_network_disks);
        return g_test_run();
}
