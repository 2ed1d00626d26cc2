/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The command line of UEFI guests and network disks (qemu-firmware.h),
 * apart from qemu-command.c so that each group of devices has its place.
 *
 * Flash, as libvirt does it since QEMU 5.1 (learned from its
 * qemu_command.c, not copied): one -blockdev pair (file + raw format)
 * per flash chip, the code read-only, the NVRAM read-write, handed to the
 * machine with pflash0=/pflash1= (no -drive if=pflash, no -bios). Secure
 * boot needs SMM on the machine and the flash's "secure" property, so
 * that only SMM code may write the variable store.
 */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "qemu-firmware.h"

static char *json_to_arg(JsonBuilder *b) {
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        g_autoptr(JsonGenerator) gen = json_generator_new();

        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
}

static void add_flash(GPtrArray *argv, unsigned unit, const char *path, bool read_only) {
        g_autofree char *file_node = g_strdup_printf("pflash%u-storage", unit);
        g_autofree char *fmt_node = g_strdup_printf("pflash%u-format", unit);
        g_autoptr(JsonBuilder) file = json_builder_new();
        g_autoptr(JsonBuilder) fmt = json_builder_new();

        json_builder_begin_object(file);
        json_builder_set_member_name(file, "driver");
        json_builder_add_string_value(file, "file");
        json_builder_set_member_name(file, "filename");
        json_builder_add_string_value(file, path);
        json_builder_set_member_name(file, "node-name");
        json_builder_add_string_value(file, file_node);
        json_builder_set_member_name(file, "read-only");
        json_builder_add_boolean_value(file, read_only);
        json_builder_set_member_name(file, "auto-read-only");
        json_builder_add_boolean_value(file, false);
        json_builder_end_object(file);
        g_ptr_array_add(argv, g_strdup("-blockdev"));
        g_ptr_array_add(argv, json_to_arg(file));

        json_builder_begin_object(fmt);
        json_builder_set_member_name(fmt, "driver");
        json_builder_add_string_value(fmt, "raw");
        json_builder_set_member_name(fmt, "node-name");
        json_builder_add_string_value(fmt, fmt_node);
        json_builder_set_member_name(fmt, "file");
        json_builder_add_string_value(fmt, file_node);
        json_builder_set_member_name(fmt, "read-only");
        json_builder_add_boolean_value(fmt, read_only);
        json_builder_end_object(fmt);
        g_ptr_array_add(argv, g_strdup("-blockdev"));
        g_ptr_array_add(argv, json_to_arg(fmt));
}

int qemu_command_add_firmware(GPtrArray *argv, const DomainDef *def, const char *machine, const char *nvram,
                              GString *machine_props, GError **error) {
        if (qemu_firmware_needs_resolving(def))
                return vm_error_set(
                        error, VM_ERROR_UNSUPPORTED_BACKEND,
                        "<os firmware='efi'>: no firmware was chosen for this domain (an internal "
                        "error: the backend chooses it before building the command line)");
        if (!def->os_loader_pflash)
                return 0;
        if (def->os_loader_secure && (!machine || !strstr(machine, "q35")))
                return vm_error_set(
                        error, VM_ERROR_UNSUPPORTED_BACKEND,
                        "<loader secure='yes'>: secure boot needs SMM, which the qemu backend gives the "
                        "q35 machine only; use <type machine='q35'>, or secure='no'");
        g_assert(nvram);
        add_flash(argv, 0, def->os_loader, true);
        add_flash(argv, 1, nvram, false);
        g_string_append(machine_props, ",pflash0=pflash0-format,pflash1=pflash1-format");
        if (def->os_loader_secure) {
                g_string_append(machine_props, ",smm=on");
                g_ptr_array_add(argv, g_strdup("-global"));
                g_ptr_array_add(argv, g_strdup("driver=cfi.pflash01,property=secure,value=on"));
        }
        return 0;
}

/* ---- network disks ---- */

static void add_inet_server(JsonBuilder *b, const DomainDiskHost *h, unsigned default_port) {
        g_autofree char *port = g_strdup_printf("%u", h->port ? h->port : default_port);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "host");
        json_builder_add_string_value(b, h->name);
        json_builder_set_member_name(b, "port");
        json_builder_add_string_value(b, port);
        json_builder_end_object(b);
}

void qemu_command_netdisk_members(JsonBuilder *b, const DomainDiskDef *disk) {
        const DomainDiskHost *h =
                disk->source_hosts && disk->source_hosts->len ? disk->source_hosts->pdata[0] : NULL;

        json_builder_set_member_name(b, "driver");
        json_builder_add_string_value(b, disk->protocol);
        if (g_str_equal(disk->protocol, "nbd")) {
                json_builder_set_member_name(b, "server");
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, h->socket ? "unix" : "inet");
                if (h->socket) {
                        json_builder_set_member_name(b, "path");
                        json_builder_add_string_value(b, h->socket);
                } else {
                        g_autofree char *port = g_strdup_printf("%u", h->port ? h->port : 10809);
                        json_builder_set_member_name(b, "host");
                        json_builder_add_string_value(b, h->name);
                        json_builder_set_member_name(b, "port");
                        json_builder_add_string_value(b, port);
                }
                json_builder_end_object(b);
                if (disk->source_name) {
                        json_builder_set_member_name(b, "export");
                        json_builder_add_string_value(b, disk->source_name);
                }
        } else if (g_str_equal(disk->protocol, "iscsi")) {
                const char *slash = strrchr(disk->source_name, '/');
                g_autofree char *target = slash ? g_strndup(disk->source_name, slash - disk->source_name)
                                                : g_strdup(disk->source_name);
                bool v6 = strchr(h->name, ':') != NULL;
                g_autofree char *portal = g_strdup_printf("%s%s%s:%u", v6 ? "[" : "", h->name, v6 ? "]" : "",
                                                          h->port ? h->port : 3260);
                json_builder_set_member_name(b, "transport");
                json_builder_add_string_value(b, "tcp");
                json_builder_set_member_name(b, "portal");
                json_builder_add_string_value(b, portal);
                json_builder_set_member_name(b, "target");
                json_builder_add_string_value(b, target);
                json_builder_set_member_name(b, "lun");
                json_builder_add_int_value(b, slash ? g_ascii_strtoll(slash + 1, NULL, 10) : 0);
        } else { /* rbd */
                g_auto(GStrv) parts = g_strsplit(disk->source_name, "/", 2);
                json_builder_set_member_name(b, "pool");
                json_builder_add_string_value(b, parts[0]);
                json_builder_set_member_name(b, "image");
                json_builder_add_string_value(b, parts[1]);
                if (disk->source_hosts && disk->source_hosts->len) {
                        json_builder_set_member_name(b, "server");
                        json_builder_begin_array(b);
                        for (guint i = 0; i < disk->source_hosts->len; i++)
                                add_inet_server(b, disk->source_hosts->pdata[i], 6789);
                        json_builder_end_array(b);
                }
        }
}
