/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "errors.h"
#include "qemu-command-devices.h"
#include "qemu-command.h"
#include "qemu-command-graphics.h"
#include "qemu-firmware.h"

QemuPaths *qemu_paths_new(const char *qemu_dir, const char *uuid) {
        QemuPaths *paths = g_new0(QemuPaths, 1);
        g_autofree char *log_name = g_strconcat(uuid, ".log", NULL);

        paths->dir = g_build_filename(qemu_dir, uuid, NULL);
        paths->qmp_socket = g_build_filename(paths->dir, "qmp.sock", NULL);
        paths->pid = g_build_filename(paths->dir, "pid", NULL);
        paths->live_xml = g_build_filename(paths->dir, "domain.xml", NULL);
        paths->reason = g_build_filename(paths->dir, "reason", NULL);
        paths->incoming = g_build_filename(paths->dir, "incoming", NULL);
        paths->stream_socket = g_build_filename(paths->dir, "stream.sock", NULL);
        paths->nbd_socket = g_build_filename(paths->dir, "nbd.sock", NULL);
        paths->postcopy = g_build_filename(paths->dir, "postcopy", NULL);
        paths->log_dir = g_build_filename(qemu_dir, "log", NULL);
        paths->log = g_build_filename(paths->log_dir, log_name, NULL);
        paths->swtpm_socket = g_build_filename(paths->dir, "swtpm.sock", NULL);
        paths->swtpm_pid = g_build_filename(paths->dir, "swtpm.pid", NULL);
        g_autofree char *swtpm_log = g_strconcat(uuid, "-swtpm.log", NULL);
        paths->swtpm_log = g_build_filename(paths->log_dir, swtpm_log, NULL);
        return paths;
}

void qemu_paths_free(QemuPaths *paths) {
        if (!paths)
                return;
        g_free(paths->dir);
        g_free(paths->qmp_socket);
        g_free(paths->pid);
        g_free(paths->live_xml);
        g_free(paths->reason);
        g_free(paths->incoming);
        g_free(paths->stream_socket);
        g_free(paths->nbd_socket);
        g_free(paths->postcopy);
        g_free(paths->log_dir);
        g_free(paths->log);
        g_free(paths->swtpm_socket);
        g_free(paths->swtpm_pid);
        g_free(paths->swtpm_log);
        g_free(paths);
}

char *qemu_paths_serial_socket(const QemuPaths *paths, unsigned port) {
        g_autofree char *name = g_strdup_printf("serial%u.sock", port);
        return g_build_filename(paths->dir, name, NULL);
}

char *qemu_paths_serial_log(const QemuPaths *paths, unsigned port) {
        g_autofree char *base = g_path_get_basename(paths->dir);
        g_autofree char *name = g_strdup_printf("%s-serial%u.log", base, port);
        return g_build_filename(paths->log_dir, name, NULL);
}

/* QEMU's option syntax uses ',' as separator and ',,' as an escaped comma. */
static char *escape_commas(const char *s) {
        GString *out = g_string_new(NULL);

        for (; *s; s++) {
                g_string_append_c(out, *s);
                if (*s == ',')
                        g_string_append_c(out, ',');
        }
        return g_string_free(out, false);
}

/* -blockdev and -device take JSON, which needs no escaping rules of our own. */
static char *json_object_to_arg(JsonBuilder *builder) {
        g_autoptr(JsonNode) root = json_builder_get_root(builder);
        g_autoptr(JsonGenerator) gen = json_generator_new();

        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
}

static void add(GPtrArray *argv, const char *arg) {
        g_ptr_array_add(argv, g_strdup(arg));
}

static void add_pair(GPtrArray *argv, const char *option, char *value /* taken */) {
        g_ptr_array_add(argv, g_strdup(option));
        g_ptr_array_add(argv, value);
}

static const char *disk_device_for_bus(const char *bus) {
        if (!bus || g_str_equal(bus, "virtio"))
                return "virtio-blk-pci";
        if (g_str_equal(bus, "ide") || g_str_equal(bus, "sata"))
                return "ide-hd";
        if (g_str_equal(bus, "scsi"))
                return "scsi-hd";
        return NULL;
}

/* libvirt's IDE placement on the PC machine: hda/hdb are the primary
 * channel's master and slave, hdc/hdd the secondary's; other IDE devices
 * (sdX on bus 'sata') take the free positions in order. Left to itself
 * QEMU fills positions in command-line order, which is not the names', and
 * a guest would see its disks where the XML does not say. On q35 (AHCI,
 * one device per port) QEMU's order stands: positions[] stays -1. */
#define IDE_POSITIONS 4

static bool disk_is_ide(const DomainDiskDef *disk) {
        const char *device = disk_device_for_bus(disk->target_bus);
        return device && (g_str_has_prefix(device, "ide-") ||
                          (g_strcmp0(disk->device, "cdrom") == 0 && !g_str_equal(device, "scsi-hd")));
}

static int ide_positions(const DomainDef *def, int *positions, GError **error) {
        bool used[IDE_POSITIONS] = { false };
        unsigned next = 0;

        for (unsigned i = 0; i < def->disks->len; i++)
                positions[i] = -1;
        if (def->os_machine && strstr(def->os_machine, "q35"))
                return 0;
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                const char *t = disk->target_dev;
                if (!disk_is_ide(disk) || strlen(t) != 3 || !g_str_has_prefix(t, "hd") || t[2] < 'a' || t[2] > 'd')
                        continue;
                positions[i] = t[2] - 'a';
                used[positions[i]] = true;
        }
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                if (!disk_is_ide(disk) || positions[i] >= 0)
                        continue;
                while (next < IDE_POSITIONS && used[next])
                        next++;
                if (next == IDE_POSITIONS)
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                            "<disk><target dev='%s'>: the pc machine has %d IDE positions, all "
                                            "taken",
                                            disk->target_dev, IDE_POSITIONS);
                positions[i] = (int) next;
                used[next] = true;
        }
        return 0;
}

static int add_disks(GPtrArray *argv, const DomainDef *def, GError **error) {
        g_autofree int *positions = g_new(int, def->disks->len ? def->disks->len : 1);
        bool need_scsi = false;
        int r;

        r = ide_positions(def, positions, error);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                const char *device = disk_device_for_bus(disk->target_bus);
                const char *cache = disk->cache ? disk->cache : "writeback";
                g_autofree char *file_node = g_strdup_printf("file-%s", disk->target_dev);
                g_autofree char *fmt_node = g_strdup_printf("disk-%s", disk->target_dev);
                g_autoptr(JsonBuilder) b = NULL;
                bool direct, no_flush;

                if (!device)
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                            "<disk><target dev='%s' bus='%s'>: the qemu backend supports buses "
                                            "virtio, sata, ide and scsi",
                                            disk->target_dev, disk->target_bus);
                if (g_strcmp0(disk->device, "cdrom") == 0)
                        device = g_str_equal(device, "scsi-hd") ? "scsi-cd" : "ide-cd";
                need_scsi |= g_str_has_prefix(device, "scsi-");

                /* libvirt's mapping of cache modes onto QEMU's two switches. */
                direct = g_str_equal(cache, "none") || g_str_equal(cache, "directsync");
                no_flush = g_str_equal(cache, "unsafe");

                /* A CD-ROM drive with no medium (virsh dumpxml writes one for most
                 * guests): the device alone, with no nodes to open. */
                if (disk->source_file || domain_disk_is_network(disk)) {
                        b = json_builder_new();
                        json_builder_begin_object(b);
                        if (domain_disk_is_network(disk))
                                qemu_command_netdisk_members(b, disk); /* qemu-command-firmware.c */
                        else {
                                json_builder_set_member_name(b, "driver");
                                json_builder_add_string_value(b, disk->block ? "host_device" : "file");
                                json_builder_set_member_name(b, "filename");
                                json_builder_add_string_value(b, disk->source_file);
                        }
                        json_builder_set_member_name(b, "node-name");
                        json_builder_add_string_value(b, file_node);
                        json_builder_set_member_name(b, "cache");
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "direct");
                        json_builder_add_boolean_value(b, direct);
                        json_builder_set_member_name(b, "no-flush");
                        json_builder_add_boolean_value(b, no_flush);
                        json_builder_end_object(b);
                        json_builder_set_member_name(b, "read-only");
                        json_builder_add_boolean_value(b, disk->readonly);
                        json_builder_set_member_name(b, "auto-read-only");
                        json_builder_add_boolean_value(b, false);
                        qemu_devices_disk_file_props(b, disk);
                        json_builder_end_object(b);
                        add_pair(argv, "-blockdev", json_object_to_arg(b));

                        g_clear_object(&b);
                        b = json_builder_new();
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "driver");
                        json_builder_add_string_value(b, disk->driver_type ? disk->driver_type : "raw");
                        json_builder_set_member_name(b, "node-name");
                        json_builder_add_string_value(b, fmt_node);
                        json_builder_set_member_name(b, "file");
                        json_builder_add_string_value(b, file_node);
                        json_builder_set_member_name(b, "read-only");
                        json_builder_add_boolean_value(b, disk->readonly);
                        qemu_devices_disk_format_props(b, disk);
                        json_builder_end_object(b);
                        add_pair(argv, "-blockdev", json_object_to_arg(b));
                }

                g_clear_object(&b);
                b = json_builder_new();
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "driver");
                json_builder_add_string_value(b, device);
                json_builder_set_member_name(b, "id");
                json_builder_add_string_value(b, disk->target_dev);
                if (disk->source_file || domain_disk_is_network(disk)) {
                        json_builder_set_member_name(b, "drive");
                        json_builder_add_string_value(b, fmt_node);
                }
                if (g_str_has_prefix(device, "scsi-")) {
                        json_builder_set_member_name(b, "bus");
                        json_builder_add_string_value(b, "scsi0.0");
                } else if (positions[i] >= 0) {
                        g_autofree char *bus = g_strdup_printf("ide.%d", positions[i] / 2);
                        json_builder_set_member_name(b, "bus");
                        json_builder_add_string_value(b, bus);
                        json_builder_set_member_name(b, "unit");
                        json_builder_add_int_value(b, positions[i] % 2);
                }
                if (qemu_devices_disk_bootindex(def, i)) {
                        json_builder_set_member_name(b, "bootindex");
                        json_builder_add_int_value(b, qemu_devices_disk_bootindex(def, i));
                }
                json_builder_end_object(b);
                add_pair(argv, "-device", json_object_to_arg(b));
        }
        if (need_scsi) {
                /* Before the disks that refer to it is not required: QEMU
                 * creates devices in command-line order, but -device
                 * virtio-scsi-pci must exist when scsi-hd is realized. */
                g_ptr_array_insert(argv, 1, g_strdup("-device"));
                g_ptr_array_insert(argv, 2, g_strdup_printf("{\"driver\":\"%s\",\"id\":\"scsi0\"}",
                                                             qemu_devices_scsi_controller(def)));
        }
        return 0;
}

static int add_interfaces(GPtrArray *argv, const DomainDef *def, const QemuCommandOptions *options,
                          GError **error) {
        for (unsigned i = 0; i < def->interfaces->len; i++) {
                const DomainInterfaceDef *iface = def->interfaces->pdata[i];
                g_autofree char *model = NULL, *bootindex = NULL;

                if (g_str_equal(iface->type, "bridge") || g_str_equal(iface->type, "network")) {
                        /* The daemon made the tap (QEMU may not: -sandbox
                         * spawn=deny, and it need not be privileged), on the
                         * bridge the network table names for a network. */
                        int fd = options->tap_fds ? options->tap_fds[i] : 100 + (int) i;
                        g_assert(fd >= 0);
                        add_pair(argv, "-netdev", g_strdup_printf("tap,id=net%u,fd=%d", i, fd));
                } else if (g_str_equal(iface->type, "user"))
                        add_pair(argv, "-netdev", g_strdup_printf("user,id=net%u", i));
                else
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                            "<interface type='%s'>: the qemu backend supports types 'bridge', "
                                            "'network' and 'user'; use one of them",
                                            iface->type);
                model = g_strdup(iface->model ? iface->model : "virtio");
                if (g_str_equal(model, "virtio")) {
                        g_free(model);
                        model = g_strdup("virtio-net-pci");
                }
                bootindex = qemu_devices_interface_bootindex(def, i)
                                    ? g_strdup_printf(",bootindex=%u", qemu_devices_interface_bootindex(def, i))
                                    : g_strdup("");
                add_pair(argv, "-device",
                         g_strdup_printf("%s,netdev=net%u%s%s%s", model, i, iface->mac ? ",mac=" : "",
                                         iface->mac ? iface->mac : "", bootindex));
        }
        return 0;
}

static void add_serials(GPtrArray *argv, const DomainDef *def, const QemuPaths *paths) {
        for (unsigned i = 0; i < def->serials->len; i++) {
                const DomainSerialDef *serial = def->serials->pdata[i];
                g_autofree char *socket = qemu_paths_serial_socket(paths, serial->port);
                g_autofree char *log = serial->source_path ? g_strdup(serial->source_path)
                                                           : qemu_paths_serial_log(paths, serial->port);
                g_autofree char *socket_esc = escape_commas(socket);
                g_autofree char *log_esc = escape_commas(log);

                /* Whatever the XML's type, the backend keeps every serial port
                 * as a socket (to talk to the guest) plus a log file (to read
                 * what it said, also after a crash). */
                add_pair(argv, "-chardev",
                         g_strdup_printf("socket,id=serial%u,path=%s,server=on,wait=off,logfile=%s,logappend=on",
                                         serial->port, socket_esc, log_esc));
                add_pair(argv, "-device",
                         g_strdup_printf("isa-serial,chardev=serial%u,index=%u", serial->port, serial->port));
        }
}

/* What QEMU runs when given no -cpu (x86_64's), named when flags go with it. */
#define QEMU_DEFAULT_CPU_MODEL "qemu64"

/* QEMU's -cpu flag of each enlightenment (state='on'; off is QEMU's
 * default and written as nothing, as libvirt does). */
static const char *const hyperv_flags[DOMAIN_HYPERV_N] = {
        [DOMAIN_HYPERV_RELAXED] = "hv-relaxed",
        [DOMAIN_HYPERV_VAPIC] = "hv-vapic",
        [DOMAIN_HYPERV_SPINLOCKS] = "hv-spinlocks",
        [DOMAIN_HYPERV_VPINDEX] = "hv-vpindex",
        [DOMAIN_HYPERV_RUNTIME] = "hv-runtime",
        [DOMAIN_HYPERV_SYNIC] = "hv-synic",
        [DOMAIN_HYPERV_STIMER] = "hv-stimer",
        [DOMAIN_HYPERV_RESET] = "hv-reset",
        [DOMAIN_HYPERV_VENDOR_ID] = "hv-vendor-id",
        [DOMAIN_HYPERV_FREQUENCIES] = "hv-frequencies",
        [DOMAIN_HYPERV_REENLIGHTENMENT] = "hv-reenlightenment",
        [DOMAIN_HYPERV_TLBFLUSH] = "hv-tlbflush",
        [DOMAIN_HYPERV_IPI] = "hv-ipi",
        [DOMAIN_HYPERV_EVMCS] = "hv-evmcs",
        [DOMAIN_HYPERV_AVIC] = "hv-avic",
        [DOMAIN_HYPERV_EMSR_BITMAP] = "hv-emsr-bitmap",
        [DOMAIN_HYPERV_XMM_INPUT] = "hv-xmm-input",
        [DOMAIN_HYPERV_STIMER_DIRECT] = "hv-stimer-direct",
        [DOMAIN_HYPERV_TLBFLUSH_DIRECT] = "hv-tlbflush-direct",
        [DOMAIN_HYPERV_TLBFLUSH_EXTENDED] = "hv-tlbflush-ext",
};

/* The enlightenments, ",hv-…" each, in libvirt's order; "" when none. */
static char *hyperv_cpu_flags(const DomainDef *def) {
        GString *s = g_string_new(NULL);

        for (unsigned i = 0; i < DOMAIN_HYPERV_N; i++) {
                if (!domain_hyperv_on(def, i))
                        continue;
                if (i == DOMAIN_HYPERV_SPINLOCKS)
                        g_string_append_printf(s, ",%s=0x%x", hyperv_flags[i],
                                               def->hyperv_spinlocks_retries);
                else if (i == DOMAIN_HYPERV_VENDOR_ID)
                        g_string_append_printf(s, ",%s=%s", hyperv_flags[i], def->hyperv_vendor_id);
                else
                        g_string_append_printf(s, ",%s", hyperv_flags[i]);
        }
        /* <timer name='hypervclock'> is libvirt's name for hv-time */
        if (g_strcmp0(def->timer_hypervclock_present, "yes") == 0)
                g_string_append(s, ",hv-time");
        return g_string_free(s, false);
}

static int add_cpu(GPtrArray *argv, const DomainDef *def, GError **error) {
        g_autofree char *hyperv = hyperv_cpu_flags(def);
        GString *cpu;

        if (!def->cpu_mode || (g_str_equal(def->cpu_mode, "custom") && !def->cpu_model)) {
                /* QEMU's default model, named when enlightenments go with it */
                if (hyperv[0])
                        add_pair(argv, "-cpu", g_strconcat(QEMU_DEFAULT_CPU_MODEL, hyperv, NULL));
                return 0; /* features only would need a model: QEMU's default then */
        }
        if (g_str_equal(def->cpu_mode, "host-passthrough"))
                cpu = g_string_new("host");
        else if (g_str_equal(def->cpu_mode, "maximum"))
                cpu = g_string_new("max");
        else if (g_str_equal(def->cpu_mode, "custom"))
                cpu = g_string_new(def->cpu_model);
        else
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                    "<cpu mode='%s'>: the qemu backend supports custom, host-passthrough "
                                    "and maximum",
                                    def->cpu_mode);

        for (unsigned i = 0; i < def->cpu_features->len; i++) {
                const DomainCpuFeatureDef *f = def->cpu_features->pdata[i];
                bool on = g_str_equal(f->policy, "require") || g_str_equal(f->policy, "force") ||
                          g_str_equal(f->policy, "optional");
                g_string_append_printf(cpu, ",%s=%s", f->name, on ? "on" : "off");
        }
        g_string_append(cpu, hyperv);
        add_pair(argv, "-cpu", g_string_free(cpu, false));
        return 0;
}

int qemu_build_argv(const DomainDef *def, const QemuPaths *paths, const QemuCommandOptions *options,
                    GStrv *ret_argv, GError **error) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *qmp = NULL;
        int r;

        if (def->memory_bytes % (1024 * 1024) != 0)
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                    "<memory>: the qemu backend needs whole MiB, not %" G_GUINT64_FORMAT " bytes",
                                    def->memory_bytes);
        if (def->os_arch && !g_str_equal(def->os_arch, "x86_64"))
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                    "<os><type arch='%s'>: the qemu backend runs x86_64 guests only",
                                    def->os_arch);

        g_autofree char *name = escape_commas(def->name);

        add(argv, options->binary);
        add_pair(argv, "-name", g_strdup_printf("guest=%s,debug-threads=on", name));
        add_pair(argv, "-uuid", g_strdup(def->uuid));
        add(argv, "-nodefaults");
        add(argv, "-no-user-config");
        add_pair(argv, "-display", g_strdup("none"));
        g_autofree char *machine_base = qemu_devices_machine_arg(def);
        g_autoptr(GString) machine = g_string_new(machine_base);
        /* UEFI: the flash's -blockdevs, and their names for -machine. */
        r = qemu_command_add_firmware(argv, def, def->os_machine, options->nvram ? options->nvram : "/nvram",
                                      machine, error);
        if (r < 0)
                return r;
        add_pair(argv, "-machine", g_string_free(g_steal_pointer(&machine), false));
        add_pair(argv, "-accel", g_strdup(options->kvm ? "kvm" : "tcg"));
        add_pair(argv, "-m", g_strdup_printf("%" G_GUINT64_FORMAT "M", def->memory_bytes / (1024 * 1024)));
        add_pair(argv, "-smp", qemu_devices_smp_arg(def));
        r = add_cpu(argv, def, error);
        if (r < 0)
                return r;
        if (def->os_loader && !def->os_loader_pflash)
                add_pair(argv, "-bios", g_strdup(def->os_loader));
        if (def->os_kernel)
                add_pair(argv, "-kernel", g_strdup(def->os_kernel));
        if (def->os_initrd)
                add_pair(argv, "-initrd", g_strdup(def->os_initrd));
        if (def->os_cmdline)
                add_pair(argv, "-append", g_strdup(def->os_cmdline));

        r = add_disks(argv, def, error);
        if (r < 0)
                return r;
        r = add_interfaces(argv, def, options, error);
        if (r < 0)
                return r;
        add_serials(argv, def, paths);
        r = qemu_command_add_displays(argv, def, paths->dir, error);
        if (r >= 0)
                r = qemu_devices_add(argv, def, paths, error);
        if (r < 0)
                return r;

        /* The emulated TPM: swtpm (qemu-tpm.c) listens on a socket the
         * daemon bound before QEMU starts. */
        if (def->tpm_model) {
                g_autofree char *socket = escape_commas(paths->swtpm_socket);
                add_pair(argv, "-chardev", g_strdup_printf("socket,id=chrtpm,path=%s", socket));
                add_pair(argv, "-tpmdev", g_strdup("emulator,id=tpm0,chardev=chrtpm"));
                add_pair(argv, "-device", g_strdup_printf("%s,tpmdev=tpm0", def->tpm_model));
        }

        /* The monitor: a listening socket the daemon bound before exec. */
        add_pair(argv, "-chardev", g_strdup_printf("socket,id=monitor,fd=%d,server=on,wait=off", options->qmp_fd));
        add_pair(argv, "-mon", g_strdup("chardev=monitor,mode=control"));

        /* QEMU needs no new processes or privileges once started. */
        add_pair(argv, "-sandbox", g_strdup("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
        add(argv, "-S");
        if (options->incoming)
                add_pair(argv, "-incoming", g_strdup("defer"));

        g_ptr_array_add(argv, NULL);
        *ret_argv = (GStrv) g_ptr_array_free(g_steal_pointer(&argv), false);
        return 0;
}
