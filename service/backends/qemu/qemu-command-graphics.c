/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The displays of a QEMU command line: <graphics> → -vnc / -spice, <video>
 * → one -device. Mapping (libvirt's, reworded):
 *
 *   vnc   address A port P  -vnc A:(P-5900)[,password=on]      (QEMU counts VNC displays from 5900)
 *         socket S          -vnc unix:S[,password=on]
 *         none              -vnc none
 *   spice address A port P  -spice port=P,addr=A,seamless-migration=on[,disable-ticketing=on]
 *         socket S          -spice unix=on,addr=S,…
 *         none              -spice port=0,… (no listening socket; QMP still sees the server)
 *   keymap                  -k KEYMAP
 *   video vga    VGA (vgamem_mb = vram/1024)    virtio  virtio-vga (max_outputs = heads)
 *         qxl    qxl-vga (ram_size, vram_size, vgamem_mb, max_outputs)
 *         bochs  bochs-display (vgamem)          ramfb   ramfb          none   nothing
 *
 * seamless-migration=on lets a SPICE client follow the guest to the
 * destination (client_migrate_info, qemu-migration.c) without losing its
 * state; it changes nothing when no client is connected.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "display-ports.h"
#include "errors.h"
#include "qemu-command-graphics.h"

#define QEMU_MODULE_DIR "/usr/lib/x86_64-linux-gnu/qemu"
#define SPICE_PACKAGE_HINT "install qemu-system-modules-spice (Debian) or a QEMU built with SPICE"

char *qemu_display_socket_path(const char *dir, const char *type) {
        g_autofree char *name = g_strconcat(type, ".sock", NULL);
        return g_build_filename(dir, name, NULL);
}

bool qemu_spice_available(const char *module_dir) {
        g_autofree char *module = NULL;

        if (!module_dir)
                module_dir = QEMU_MODULE_DIR;
        if (access(module_dir, F_OK) < 0)
                return true; /* not modular: SPICE is built in or QEMU says so at start */
        module = g_build_filename(module_dir, "ui-spice-core.so", NULL);
        return access(module, R_OK) == 0;
}

static char *escape_commas(const char *s) {
        GString *out = g_string_new(NULL);

        for (; *s; s++) {
                g_string_append_c(out, *s);
                if (*s == ',')
                        g_string_append_c(out, ',');
        }
        return g_string_free(out, false);
}

static const char *listen_address(const DomainGraphicsDef *g) {
        return g->listen_address ? g->listen_address : "127.0.0.1";
}

static int graphics_port(const DomainGraphicsDef *g) {
        return g->port > 0 ? g->port : DISPLAY_PORT_MIN;
}

static char *vnc_arg(const DomainGraphicsDef *g, const char *dir) {
        GString *arg = g_string_new(NULL);

        if (g_str_equal(g->listen_type, "none"))
                g_string_append(arg, "none");
        else if (g_str_equal(g->listen_type, "socket")) {
                g_autofree char *path =
                        g->socket ? g_strdup(g->socket) : qemu_display_socket_path(dir, "vnc");
                g_autofree char *escaped = escape_commas(path);
                g_string_append_printf(arg, "unix:%s", escaped);
        } else {
                const char *host = listen_address(g);
                g_string_append_printf(arg, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                                       graphics_port(g) - DISPLAY_PORT_MIN);
        }
        /* -vnc none with a password would refuse every client anyway. */
        if (g->passwd && !g_str_equal(g->listen_type, "none"))
                g_string_append(arg, ",password=on");
        return g_string_free(arg, false);
}

static char *spice_arg(const DomainGraphicsDef *g, const char *dir) {
        GString *arg = g_string_new(NULL);

        if (g_str_equal(g->listen_type, "none"))
                g_string_append(arg, "port=0");
        else if (g_str_equal(g->listen_type, "socket")) {
                g_autofree char *path =
                        g->socket ? g_strdup(g->socket) : qemu_display_socket_path(dir, "spice");
                g_autofree char *escaped = escape_commas(path);
                g_string_append_printf(arg, "unix=on,addr=%s", escaped);
        } else
                g_string_append_printf(arg, "port=%d,addr=%s", graphics_port(g), listen_address(g));
        if (!g->passwd)
                g_string_append(arg, ",disable-ticketing=on");
        if (g->image_compression)
                g_string_append_printf(arg, ",image-compression=%s", g->image_compression);
        g_string_append(arg, ",seamless-migration=on");
        return g_string_free(arg, false);
}

static char *json_to_arg(JsonBuilder *b) {
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        g_autoptr(JsonGenerator) gen = json_generator_new();

        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
}

static void member_int(JsonBuilder *b, const char *name, gint64 value) {
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, value);
}

static char *video_arg(const DomainVideoDef *v) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        const char *driver;

        if (g_str_equal(v->model, "vga"))
                driver = "VGA";
        else if (g_str_equal(v->model, "virtio"))
                driver = "virtio-vga";
        else if (g_str_equal(v->model, "qxl"))
                driver = "qxl-vga";
        else if (g_str_equal(v->model, "bochs"))
                driver = "bochs-display";
        else if (g_str_equal(v->model, "ramfb"))
                driver = "ramfb";
        else
                return NULL; /* none */

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "driver");
        json_builder_add_string_value(b, driver);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, "video0");
        if (g_str_equal(v->model, "vga") && v->vram)
                member_int(b, "vgamem_mb", MAX(v->vram / 1024, 1));
        if (g_str_equal(v->model, "bochs") && v->vram)
                member_int(b, "vgamem", (gint64) v->vram * 1024);
        if (g_str_equal(v->model, "qxl")) {
                if (v->ram)
                        member_int(b, "ram_size", (gint64) v->ram * 1024);
                if (v->vram)
                        member_int(b, "vram_size", (gint64) v->vram * 1024);
                if (v->vgamem)
                        member_int(b, "vgamem_mb", MAX(v->vgamem / 1024, 1));
        }
        if (v->heads && (g_str_equal(v->model, "qxl") || g_str_equal(v->model, "virtio")))
                member_int(b, "max_outputs", v->heads);
        json_builder_end_object(b);
        return json_to_arg(b);
}

int qemu_command_add_displays(GPtrArray *argv, const DomainDef *def, const char *dir, GError **error) {
        const char *keymap = NULL;
        bool spice = false;

        for (guint i = 0; def->graphics && i < def->graphics->len; i++) {
                const DomainGraphicsDef *g = def->graphics->pdata[i];

                if (g->keymap)
                        keymap = g->keymap;
                if (g_str_equal(g->type, "vnc")) {
                        g_ptr_array_add(argv, g_strdup("-vnc"));
                        g_ptr_array_add(argv, vnc_arg(g, dir));
                } else {
                        spice = true;
                        g_ptr_array_add(argv, g_strdup("-spice"));
                        g_ptr_array_add(argv, spice_arg(g, dir));
                }
        }
        for (guint i = 0; def->videos && i < def->videos->len; i++) {
                const DomainVideoDef *v = def->videos->pdata[i];
                char *arg;

                if (g_str_equal(v->model, "qxl"))
                        spice = true;
                arg = video_arg(v);
                if (arg) {
                        g_ptr_array_add(argv, g_strdup("-device"));
                        g_ptr_array_add(argv, arg);
                }
        }
        if (spice && !qemu_spice_available(NULL))
                return vm_error_set(
                        error, VM_ERROR_UNSUPPORTED_BACKEND,
                        "<graphics type='spice'> and <video><model type='qxl'> need QEMU's SPICE "
                        "support, which this QEMU lacks; %s, or use type 'vnc' and model 'vga' or "
                        "'virtio'",
                        SPICE_PACKAGE_HINT);
        if (keymap) {
                g_ptr_array_add(argv, g_strdup("-k"));
                g_ptr_array_add(argv, g_strdup(keymap));
        }
        return 0;
}
