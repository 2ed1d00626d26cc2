/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "qemu-command-graphics.h"
#include "qemu-command.h"

#define DOMAIN(devices)                                                                                     \
        "<domain type='kvm'><name>d</name><uuid>5a1e2d3c-0000-4000-8000-000000000001</uuid>"                \
        "<memory unit='MiB'>64</memory><devices>" devices "</devices></domain>"

/* The whole command line as one string, arguments separated by '\n'. */
static char *argv_of(const char *xml, GError **error) {
        g_autoptr(DomainDef) def = NULL;
        g_autoptr(QemuPaths) paths =
                qemu_paths_new("/run/vmigrate/qemu", "5a1e2d3c-0000-4000-8000-000000000001");
        QemuCommandOptions options = { .binary = "qemu-system-x86_64", .kvm = true, .qmp_fd = 3 };
        g_auto(GStrv) argv = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, NULL), ==, 0);
        if (qemu_build_argv(def, paths, &options, &argv, error) < 0)
                return NULL;
        return g_strjoinv("\n", argv);
}

static void assert_has(const char *argv, const char *expect) {
        if (!strstr(argv, expect))
                g_test_message("no '%s' in:\n%s", expect, argv);
        g_assert_nonnull(strstr(argv, expect));
}

static void test_vnc(void) {
        g_autofree char *a =
                argv_of(DOMAIN("<graphics type='vnc' port='5905' autoport='no' listen='0.0.0.0' "
                               "passwd='pw123' keymap='de'/>"),
                        NULL);

        assert_has(a, "\n-vnc\n0.0.0.0:5,password=on\n");
        assert_has(a, "\n-k\nde\n");
        assert_has(a, "\n-device\n{\"driver\":\"VGA\",\"id\":\"video0\"}\n"); /* libvirt's default video */
        g_assert_null(strstr(a, "pw123"));                                    /* set over QMP instead */

        g_autofree char *b = argv_of(DOMAIN("<graphics type='vnc'><listen type='socket'/></graphics>"
                                            "<video><model type='virtio' heads='2'/></video>"),
                                     NULL);
        assert_has(b, "\n-vnc\nunix:/run/vmigrate/qemu/5a1e2d3c-0000-4000-8000-000000000001/vnc.sock\n");
        assert_has(b, "{\"driver\":\"virtio-vga\",\"id\":\"video0\",\"max_outputs\":2}");

        g_autofree char *c = argv_of(DOMAIN("<graphics type='vnc' listen='::1'/>"), NULL);
        assert_has(c, "\n-vnc\n[::1]:0\n"); /* autoport, unresolved: validation only */

        g_autofree char *d = argv_of(DOMAIN("<graphics type='vnc'><listen type='none'/></graphics>"), NULL);
        assert_has(d, "\n-vnc\nnone\n");
}

static void test_spice(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *a =
                argv_of(DOMAIN("<graphics type='spice' port='5930' autoport='no' passwd='pw'>"
                               "<image compression='off'/></graphics>"
                               "<video><model type='qxl' ram='65536' vram='32768' vgamem='16384'/></video>"),
                        &error);

        if (!qemu_spice_available(NULL)) {
                g_assert_null(a);
                g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_BACKEND);
                g_assert_nonnull(strstr(error->message, "qemu-system-modules-spice"));
                return;
        }
        assert_has(a, "\n-spice\nport=5930,addr=127.0.0.1,image-compression=off,seamless-migration=on\n");
        assert_has(a,
                   "{\"driver\":\"qxl-vga\",\"id\":\"video0\",\"ram_size\":67108864,\"vram_size\":33554432,"
                   "\"vgamem_mb\":16}");
        g_assert_null(strstr(a, "disable-ticketing")); /* a password: ticketing stays on */

        g_autofree char *b =
                argv_of(DOMAIN("<graphics type='spice'><listen type='none'/></graphics>"), NULL);
        assert_has(b, "\n-spice\nport=0,disable-ticketing=on,seamless-migration=on\n");
}

static void test_video(void) {
        g_autofree char *a = argv_of(DOMAIN("<video><model type='bochs' vram='8192'/></video>"), NULL);
        g_autofree char *b = argv_of(DOMAIN("<video><model type='ramfb'/></video>"), NULL);
        g_autofree char *c = argv_of(DOMAIN("<video><model type='none'/></video>"), NULL);
        g_autofree char *d = argv_of(DOMAIN("<video><model type='vga' vram='32768'/></video>"), NULL);

        assert_has(a, "{\"driver\":\"bochs-display\",\"id\":\"video0\",\"vgamem\":8388608}");
        assert_has(b, "{\"driver\":\"ramfb\",\"id\":\"video0\"}");
        g_assert_null(strstr(c, "video0"));
        assert_has(d, "{\"driver\":\"VGA\",\"id\":\"video0\",\"vgamem_mb\":32}");
}

/* A modular QEMU without its SPICE module has no SPICE; one that is not
 * modular is taken at its word. */
static void test_spice_available(void) {
        g_autofree char *dir = g_dir_make_tmp("vmigrate-qemu-modules-XXXXXX", NULL);
        g_autofree char *module = g_build_filename(dir, "ui-spice-core.so", NULL);

        g_assert_false(qemu_spice_available(dir));
        g_assert_true(g_file_set_contents(module, "", 0, NULL));
        g_assert_true(qemu_spice_available(dir));
        g_assert_true(qemu_spice_available("/nonexistent/qemu-modules"));
        unlink(module);
        rmdir(dir);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/qemu-command/displays/vnc", test_vnc);
        g_test_add_func("/qemu-command/displays/spice", test_spice);
        g_test_add_func("/qemu-command/displays/video", test_video);
        g_test_add_func("/qemu-command/displays/spice-available", test_spice_available);
        return g_test_run();
}
