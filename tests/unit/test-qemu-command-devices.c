/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU command line of a desktop guest's devices (qemu-command-devices.c):
 * what each element becomes, and that QEMU (the one on PATH, under TCG)
 * starts with it and answers on its monitor. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>

#include "domain-xml.h"
#include "errors.h"
#include "qemu-command-devices.h"
#include "qemu-command.h"

#define QEMU_BINARY "/usr/bin/qemu-system-x86_64"
#define UUID "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f"

#define DOMAIN(machine, body)                                                                               \
        "<domain type='qemu'><name>demo</name><uuid>" UUID "</uuid><memory unit='MiB'>64</memory>"          \
        "<vcpu>2</vcpu><os><type arch='x86_64' machine='" machine "'>hvm</type></os>" body "</domain>"

/* What virt-install writes for a desktop guest, without the display. */
#define DESKTOP_Q35                                                                                         \
        DOMAIN("q35",                                                                                       \
               "<features><acpi/><apic/><vmport state='off'/></features>"                                   \
               "<clock offset='utc'><timer name='rtc' tickpolicy='catchup'/>"                               \
               "<timer name='pit' tickpolicy='delay'/><timer name='hpet' present='no'/></clock>"            \
               "<pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>"                     \
               "<devices><controller type='usb' model='qemu-xhci' ports='15'/>"                             \
               "<controller type='pci' model='pcie-root'/>"                                                 \
               "<controller type='pci' model='pcie-root-port'/>"                                            \
               "<console type='pty'/>"                                                                      \
               "<channel type='unix'><source mode='bind'/>"                                                 \
               "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"                            \
               "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>"       \
               "<input type='tablet' bus='usb'/><sound model='ich9'/><audio id='1' type='none'/>"           \
               "<redirdev bus='usb' type='spicevmc'/><redirdev bus='usb' type='spicevmc'/>"                 \
               "<memballoon model='virtio'/>"                                                               \
               "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"                   \
               "<watchdog model='itco' action='reset'/></devices>")

/* libvirt's USB set for older guests: EHCI with three UHCI companions. */
#define USB_COMPANIONS                                                                                      \
        DOMAIN("q35",                                                                                       \
               "<devices><controller type='usb' index='0' model='ich9-ehci1'/>"                             \
               "<controller type='usb' index='0' model='ich9-uhci1'><master startport='0'/></controller>"   \
               "<controller type='usb' index='0' model='ich9-uhci2'><master startport='2'/></controller>"   \
               "<controller type='usb' index='0' model='ich9-uhci3'><master startport='4'/></controller>"   \
               "<input type='tablet' bus='usb'/></devices>")

#define OLDER_PC                                                                                            \
        "<domain type='qemu'><name>demo</name><uuid>" UUID "</uuid><memory unit='MiB'>64</memory>"          \
        "<vcpu>4</vcpu><cpu><topology sockets='1' cores='2' threads='2'/></cpu>"                            \
        "<os><type machine='pc'>hvm</type><bootmenu enable='yes' timeout='2000'/></os>"                     \
        "<clock offset='localtime'/>"                                                                       \
        "<devices><controller type='usb' model='piix3-uhci'/>"                                              \
        "<controller type='scsi' model='lsilogic'/>"                                                        \
        "<input type='mouse' bus='usb'/><input type='keyboard' bus='virtio'/>"                              \
        "<sound model='ac97'/><sound model='ich6'><codec type='output'/></sound>"                           \
        "<watchdog model='ib700' action='pause'/><memballoon model='virtio' autodeflate='on'/>"             \
        "<rng model='virtio'><rate bytes='2048'/><backend model='builtin'/></rng></devices></domain>"

typedef struct Host {
        char *dir;
        QemuPaths *paths;
} Host;

static void host_free(Host *h) {
        if (!h)
                return;
        if (h->dir) {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", h->dir);
                (void) !system(cmd);
        }
        qemu_paths_free(h->paths);
        g_free(h->dir);
        g_free(h);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Host, host_free)

static Host *host_new(void) {
        Host *h = g_new0(Host, 1);
        g_autoptr(GError) error = NULL;

        h->dir = g_dir_make_tmp("qcd-XXXXXX", &error);
        g_assert_no_error(error);
        h->paths = qemu_paths_new(h->dir, UUID);
        g_assert_cmpint(g_mkdir_with_parents(h->paths->dir, 0700), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(h->paths->log_dir, 0700), ==, 0);
        return h;
}

static DomainDef *parse(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

static GStrv build(const DomainDef *def, const QemuPaths *paths) {
        QemuCommandOptions options = { .binary = QEMU_BINARY, .kvm = false, .qmp_fd = 3 };
        g_autoptr(GError) error = NULL;
        GStrv argv = NULL;

        g_assert_cmpint(qemu_build_argv(def, paths, &options, &argv, &error), ==, 0);
        g_assert_no_error(error);
        return argv ? argv : g_new0(char *, 1);
}

/* The whole command line as one string, for looking for pieces of it. */
static char *joined(GStrv argv) {
        return g_strjoinv(" ", argv);
}

static void assert_has(const char *cmdline, const char *piece) {
        if (!strstr(cmdline, piece))
                g_test_message("'%s' not in: %s", piece, cmdline);
        g_assert_nonnull(strstr(cmdline, piece));
}

static void test_desktop_q35(void) {
        g_autoptr(Host) h = host_new();
        g_autoptr(DomainDef) def = parse(DESKTOP_Q35);
        g_auto(GStrv) argv = build(def, h->paths);
        g_autofree char *cmd = joined(argv);
        g_autofree char *ga = qemu_paths_channel_socket(h->paths, 0);

        assert_has(cmd, "-machine q35,vmport=off,hpet=off ");
        assert_has(cmd, "-global ICH9-LPC.disable_s3=1 -global ICH9-LPC.disable_s4=1");
        assert_has(cmd, "-rtc base=utc,driftfix=slew");
        assert_has(cmd, "-device qemu-xhci,id=usb,p2=15,p3=15 -device usb-tablet,id=input0,bus=usb.0");
        assert_has(cmd,
                   "-audiodev none,id=audio1 -device ich9-intel-hda,id=sound0 "
                   "-device hda-duplex,id=sound0-codec0,bus=sound0.0,cad=0,audiodev=audio1");
        assert_has(cmd, "-device virtio-serial-pci,id=virtio-serial0");
        assert_has(cmd, ga);
        assert_has(cmd,
                   "virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,"
                   "name=org.qemu.guest_agent.0");
        assert_has(cmd, "-chardev spicevmc,id=charchannel1,name=vdagent");
        assert_has(cmd, "-device usb-redir,chardev=charredir1,id=redir1,bus=usb.0");
        assert_has(cmd,
                   "-object rng-random,id=objrng0,filename=/dev/urandom -device "
                   "virtio-rng-pci,rng=objrng0,id=rng0");
        assert_has(cmd, "-global ICH9-LPC.noreboot=off -action watchdog=reset");
        assert_has(cmd, "-device virtio-balloon-pci,id=balloon0");
        /* The console that stood alone became serial port 0. */
        assert_has(cmd, "isa-serial,chardev=serial0,index=0");
}

static void test_usb_companions(void) {
        g_autoptr(Host) h = host_new();
        g_autoptr(DomainDef) def = parse(USB_COMPANIONS);
        g_auto(GStrv) argv = build(def, h->paths);
        g_autofree char *cmd = joined(argv);

        assert_has(cmd, "-device ich9-usb-ehci1,id=usb -device ich9-usb-uhci1,id=usb-uhci1,masterbus=usb.0,"
                        "firstport=0 -device ich9-usb-uhci2,id=usb-uhci2,masterbus=usb.0,firstport=2 -device "
                        "ich9-usb-uhci3,id=usb-uhci3,masterbus=usb.0,firstport=4");
}

static void test_older_pc(void) {
        g_autoptr(Host) h = host_new();
        g_autoptr(DomainDef) def = parse(OLDER_PC);
        g_auto(GStrv) argv = build(def, h->paths);
        g_autofree char *cmd = joined(argv);

        assert_has(cmd, "-smp 4,sockets=1,dies=1,clusters=1,cores=2,threads=2");
        assert_has(cmd, "-boot menu=on,splash-time=2000");
        assert_has(cmd, "-rtc base=localtime");
        assert_has(cmd, "-device piix3-usb-uhci,id=usb -device usb-mouse,id=input0,bus=usb.0");
        assert_has(cmd, "-device virtio-keyboard-pci,id=input1");
        assert_has(cmd, "-device AC97,id=sound0,audiodev=audio1");
        assert_has(cmd, "-device hda-output,id=sound1-codec0,bus=sound1.0,cad=0,audiodev=audio1");
        assert_has(cmd, "-device ib700,id=watchdog0 -action watchdog=pause");
        assert_has(cmd, "virtio-balloon-pci,id=balloon0,deflate-on-oom=on");
        assert_has(
                cmd,
                "-object rng-builtin,id=objrng0 -device virtio-rng-pci,rng=objrng0,id=rng0,max-bytes=2048,"
                "period=1000");
}

static char *disks_xml(const char *dir, const char *machine) {
        return g_strdup_printf(
                "<domain type='qemu'><name>demo</name><uuid>" UUID "</uuid><memory unit='MiB'>64</memory>"
                "<os><type machine='%s'>hvm</type><boot dev='cdrom'/><boot dev='hd'/></os><devices>"
                "<controller type='scsi' model='lsilogic'/>"
                "<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none' io='native' "
                "discard='unmap' detect_zeroes='unmap'/><source file='%s/a.img'/><target dev='vda' "
                "bus='virtio'/>"
                "</disk>"
                "<disk type='file' device='disk'><driver name='qemu' type='raw' io='io_uring'/>"
                "<source file='%s/b.img'/><target dev='sda' bus='scsi'/></disk>"
                "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sdb' "
                "bus='sata'/>"
                "<readonly/></disk></devices></domain>",
                machine, dir, dir);
}

static void test_disks(void) {
        g_autoptr(Host) h = host_new();
        g_autofree char *xml = disks_xml(h->dir, "q35");
        g_autoptr(DomainDef) def = parse(xml);
        g_auto(GStrv) argv = build(def, h->paths);
        g_autofree char *cmd = joined(argv);

        assert_has(cmd, "{\"driver\":\"lsi53c895a\",\"id\":\"scsi0\"}");
        assert_has(cmd, "\"aio\":\"native\",\"discard\":\"unmap\"}");
        assert_has(cmd, "\"discard\":\"unmap\",\"detect-zeroes\":\"unmap\"}");
        assert_has(cmd, "\"aio\":\"io_uring\"}");
        /* <os><boot dev>: the first CD-ROM, then the first disk. */
        assert_has(cmd,
                   "{\"driver\":\"virtio-blk-pci\",\"id\":\"vda\",\"drive\":\"disk-vda\",\"bootindex\":2}");
        assert_has(cmd, "{\"driver\":\"ide-cd\",\"id\":\"sdb\",\"bootindex\":1}");
        g_assert_null(
                strstr(cmd, "\"id\":\"sda\",\"drive\":\"disk-sda\",\"bus\":\"scsi0.0\",\"bootindex\""));
}

static void test_bootindex_per_device(void) {
        g_autoptr(DomainDef) def = parse(DOMAIN(
                "pc",
                "<devices><disk type='file'><source file='/a'/><target dev='vda'/><boot order='2'/></disk>"
                "<interface type='user'><boot order='1'/></interface></devices>"));

        g_assert_cmpuint(qemu_devices_disk_bootindex(def, 0), ==, 2);
        g_assert_cmpuint(qemu_devices_interface_bootindex(def, 0), ==, 1);
}

static void test_itco_needs_q35(void) {
        g_autoptr(Host) h = host_new();
        g_autoptr(DomainDef) def = parse(DOMAIN("pc", "<devices><watchdog model='itco'/></devices>"));
        QemuCommandOptions options = { .binary = QEMU_BINARY, .qmp_fd = 3 };
        g_autoptr(GError) error = NULL;
        GStrv argv = NULL;

        g_assert_cmpint(qemu_build_argv(def, h->paths, &options, &argv, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_BACKEND);
        g_assert_nonnull(error ? strstr(error->message, "use model='i6300esb'") : NULL);
}

/* ---- QEMU starts with it ---- */

static int listen_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpuint(strlen(path), <, sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(fd, 1), ==, 0);
        return fd;
}

/* Reads QMP lines until one contains want (or the 20 s deadline). */
static bool qmp_wait_for(GDataInputStream *in, const char *want) {
        for (;;) {
                g_autoptr(GError) error = NULL;
                g_autofree char *line = g_data_input_stream_read_line(in, NULL, NULL, &error);

                if (!line) {
                        g_test_message("QMP: %s", error ? error->message : "end of stream");
                        return false;
                }
                if (strstr(line, want))
                        return true;
                if (strstr(line, "\"error\"")) {
                        g_test_message("QMP: %s", line);
                        return false;
                }
        }
}

/* Starts QEMU with def's command line (plus extra, if any) under TCG and
 * asks it for its status over the monitor: true when the command line was
 * accepted and the machine built. */
static bool qemu_starts(const DomainDef *def, Host *h, const char *extra) {
        QemuCommandOptions options = { .binary = QEMU_BINARY, .kvm = false, .qmp_fd = 3 };
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE);
        g_autoptr(GSubprocess) qemu = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GSocket) socket = NULL;
        g_autoptr(GSocketConnection) conn = NULL;
        g_autoptr(GDataInputStream) in = NULL;
        g_autoptr(GSocketAddress) addr = NULL;
        g_auto(GStrv) argv = NULL;
        GOutputStream *out;
        int fd;

        g_assert_cmpint(qemu_build_argv(def, h->paths, &options, &argv, &error), ==, 0);
        g_assert_no_error(error);
        if (!argv)
                return false;
        if (extra) {
                guint n = g_strv_length(argv);
                argv = g_renew(char *, argv, n + 3);
                argv[n] = g_strdup("-device");
                argv[n + 1] = g_strdup(extra);
                argv[n + 2] = NULL;
        }
        fd = listen_unix(h->paths->qmp_socket);
        g_subprocess_launcher_take_fd(launcher, fd, 3);
        qemu = g_subprocess_launcher_spawnv(launcher, (const char *const *) argv, &error);
        g_assert_no_error(error);
        if (!qemu)
                return false;

        socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
        g_assert_no_error(error);
        g_socket_set_timeout(socket, 20);
        addr = g_unix_socket_address_new(h->paths->qmp_socket);
        /* QEMU was handed the listening socket: connecting needs no wait. */
        g_assert_true(g_socket_connect(socket, addr, NULL, &error));
        g_assert_no_error(error);
        conn = g_socket_connection_factory_create_connection(socket);
        in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
        out = g_io_stream_get_output_stream(G_IO_STREAM(conn));

        if (!qmp_wait_for(in, "\"QMP\"")) {
                g_autofree char *err = NULL;
                (void) g_subprocess_communicate_utf8(qemu, NULL, NULL, NULL, &err, NULL);
                g_test_message("QEMU said: %s", err ? err : "");
                return false;
        }
        g_output_stream_write_all(out,
                                  "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-status\"}\n", 59,
                                  NULL, NULL, NULL);
        if (!qmp_wait_for(in, "\"status\": \"prelaunch\"")) {
                g_autofree char *err = NULL;
                (void) g_subprocess_communicate_utf8(qemu, NULL, NULL, NULL, &err, NULL);
                g_test_message("QEMU said: %s", err ? err : "");
                return false;
        }
        g_test_message("QEMU %s is up (prelaunch): %u arguments accepted", argv[0], g_strv_length(argv));
        g_output_stream_write_all(out, "{\"execute\":\"quit\"}\n", 19, NULL, NULL, NULL);
        g_assert_true(g_subprocess_wait(qemu, NULL, &error));
        g_assert_no_error(error);
        return true;
}

static void test_starts(gconstpointer data) {
        const char *which = data;
        g_autoptr(Host) h = NULL;
        g_autoptr(DomainDef) def = NULL;
        g_autofree char *xml = NULL;

        if (!g_file_test(QEMU_BINARY, G_FILE_TEST_IS_EXECUTABLE)) {
                g_test_skip("no " QEMU_BINARY);
                return;
        }
        h = host_new();
        if (g_str_equal(which, "desktop-q35"))
                xml = g_strdup(DESKTOP_Q35);
        else if (g_str_equal(which, "older-pc"))
                xml = g_strdup(OLDER_PC);
        else if (g_str_equal(which, "usb-companions"))
                xml = g_strdup(USB_COMPANIONS);
        else {
                g_autofree char *a = g_build_filename(h->dir, "a.img", NULL);
                g_autofree char *b = g_build_filename(h->dir, "b.img", NULL);
                g_assert_true(g_file_set_contents(a, "", 0, NULL) && truncate(a, 1 << 20) == 0);
                g_assert_true(g_file_set_contents(b, "", 0, NULL) && truncate(b, 1 << 20) == 0);
                xml = disks_xml(h->dir, g_str_equal(which, "disks-q35") ? "q35" : "pc");
        }
        def = parse(xml);
        if (def)
                g_assert_true(qemu_starts(def, h, NULL));
}

/* The check above can fail: a device QEMU does not know is caught. */
static void test_starts_catches_refusal(void) {
        g_autoptr(Host) h = NULL;
        g_autoptr(DomainDef) def = NULL;

        if (!g_file_test(QEMU_BINARY, G_FILE_TEST_IS_EXECUTABLE)) {
                g_test_skip("no " QEMU_BINARY);
                return;
        }
        h = host_new();
        def = parse(DESKTOP_Q35);
        if (def)
                g_assert_false(qemu_starts(def, h, "no-such-device,id=x"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/qemu-command-devices/desktop-q35", test_desktop_q35);
        g_test_add_func("/qemu-command-devices/older-pc", test_older_pc);
        g_test_add_func("/qemu-command-devices/usb-companions", test_usb_companions);
        g_test_add_data_func("/qemu-command-devices/starts/usb-companions", "usb-companions", test_starts);
        g_test_add_func("/qemu-command-devices/disks", test_disks);
        g_test_add_func("/qemu-command-devices/bootindex/per-device", test_bootindex_per_device);
        g_test_add_func("/qemu-command-devices/watchdog/itco-needs-q35", test_itco_needs_q35);
        g_test_add_data_func("/qemu-command-devices/starts/desktop-q35", "desktop-q35", test_starts);
        g_test_add_data_func("/qemu-command-devices/starts/older-pc", "older-pc", test_starts);
        g_test_add_data_func("/qemu-command-devices/starts/disks-q35", "disks-q35", test_starts);
        g_test_add_data_func("/qemu-command-devices/starts/disks-pc", "disks-pc", test_starts);
        g_test_add_func("/qemu-command-devices/starts/catches-refusal", test_starts_catches_refusal);
        return g_test_run();
}
