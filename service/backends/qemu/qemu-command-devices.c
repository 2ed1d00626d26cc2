/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU command line of a desktop guest's devices: see qemu-command-devices.h.
 * The mapping is libvirt's (qemu_command.c), checked against QEMU 10.0. */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "qemu-command-devices.h"

static void add_pair(GPtrArray *argv, const char *option, char *value /* taken */) {
        g_ptr_array_add(argv, g_strdup(option));
        g_ptr_array_add(argv, value);
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

static bool machine_is_q35(const DomainDef *def) {
        return def->os_machine && strstr(def->os_machine, "q35");
}

char *qemu_paths_channel_socket(const QemuPaths *paths, unsigned index) {
        g_autofree char *name = g_strdup_printf("channel%u.sock", index);
        return g_build_filename(paths->dir, name, NULL);
}

char *qemu_channel_socket(const DomainDef *def, const QemuPaths *paths, unsigned index) {
        const DomainChannelDef *ch = def->channels->pdata[index];
        return ch->source_path ? g_strdup(ch->source_path) : qemu_paths_channel_socket(paths, index);
}

char *qemu_devices_machine_arg(const DomainDef *def) {
        GString *m = g_string_new(def->os_machine ? def->os_machine : "pc");

        if (def->vmport)
                g_string_append_printf(m, ",vmport=%s", def->vmport);
        if (def->timer_hpet_present)
                g_string_append_printf(m, ",hpet=%s",
                                       g_str_equal(def->timer_hpet_present, "yes") ? "on" : "off");
        return g_string_free(m, false);
}

char *qemu_devices_smp_arg(const DomainDef *def) {
        if (!def->cpu_sockets)
                return g_strdup_printf("%u", def->vcpus);
        return g_strdup_printf("%u,sockets=%u,dies=%u,clusters=%u,cores=%u,threads=%u", def->vcpus,
                               def->cpu_sockets, def->cpu_dies, def->cpu_clusters, def->cpu_cores,
                               def->cpu_threads);
}

const char *qemu_devices_scsi_controller(const DomainDef *def) {
        static const struct {
                const char *model, *device;
        } map[] = {
                { "virtio-scsi", "virtio-scsi-pci" },
                { "lsilogic", "lsi53c895a" },
                { "lsisas1068", "mptsas1068" },
                { "lsisas1078", "megasas" },
                { "vmpvscsi", "pvscsi" },
        };

        for (size_t i = 0; def->scsi_model && i < G_N_ELEMENTS(map); i++)
                if (g_str_equal(def->scsi_model, map[i].model))
                        return map[i].device;
        return "virtio-scsi-pci";
}

void qemu_devices_disk_file_props(JsonBuilder *b, const DomainDiskDef *disk) {
        if (disk->io) {
                json_builder_set_member_name(b, "aio");
                json_builder_add_string_value(b, disk->io);
        }
        if (disk->discard) {
                json_builder_set_member_name(b, "discard");
                json_builder_add_string_value(b, disk->discard);
        }
}

void qemu_devices_disk_format_props(JsonBuilder *b, const DomainDiskDef *disk) {
        if (disk->discard) {
                json_builder_set_member_name(b, "discard");
                json_builder_add_string_value(b, disk->discard);
        }
        if (disk->detect_zeroes) {
                json_builder_set_member_name(b, "detect-zeroes");
                json_builder_add_string_value(b, disk->detect_zeroes);
        }
}

/* <os><boot dev> becomes the boot index of the first device of each kind,
 * as libvirt does since QEMU's -boot order does not reach -device disks. */
static unsigned os_boot_position(const DomainDef *def, const char *dev) {
        for (unsigned i = 0; def->os_boot_devs && def->os_boot_devs[i]; i++)
                if (g_str_equal(def->os_boot_devs[i], dev))
                        return i + 1;
        return 0;
}

unsigned qemu_devices_disk_bootindex(const DomainDef *def, unsigned index) {
        const DomainDiskDef *disk = def->disks->pdata[index];
        const char *kind = g_strcmp0(disk->device, "cdrom") == 0 ? "cdrom" : "disk";

        if (disk->boot_order || !def->os_boot_devs)
                return disk->boot_order;
        for (unsigned i = 0; i < index; i++)
                if (g_str_equal(g_strcmp0(((DomainDiskDef *) def->disks->pdata[i])->device, "cdrom") == 0
                                        ? "cdrom"
                                        : "disk",
                                kind))
                        return 0; /* not the first of its kind */
        return os_boot_position(def, g_str_equal(kind, "cdrom") ? "cdrom" : "hd");
}

unsigned qemu_devices_interface_bootindex(const DomainDef *def, unsigned index) {
        const DomainInterfaceDef *iface = def->interfaces->pdata[index];

        if (iface->boot_order || !def->os_boot_devs)
                return iface->boot_order;
        return index == 0 ? os_boot_position(def, "network") : 0;
}

static void add_settings(GPtrArray *argv, const DomainDef *def) {
        const char *pm = machine_is_q35(def) ? "ICH9-LPC" : "PIIX4_PM";

        if (def->pm_suspend_to_mem)
                add_pair(argv, "-global", g_strdup_printf("%s.disable_s3=1", pm));
        if (def->pm_suspend_to_disk)
                add_pair(argv, "-global", g_strdup_printf("%s.disable_s4=1", pm));
        if (def->clock_offset || g_strcmp0(def->timer_rtc_tickpolicy, "catchup") == 0)
                add_pair(argv, "-rtc",
                         g_strdup_printf("base=%s%s", def->clock_offset ? def->clock_offset : "utc",
                                         g_strcmp0(def->timer_rtc_tickpolicy, "catchup") == 0
                                                 ? ",driftfix=slew"
                                                 : ""));
        /* The PIT's 'delay' is the in-kernel PIT's own policy: nothing to set. */
        if (def->os_bootmenu) {
                if (g_str_equal(def->os_bootmenu, "yes") && def->os_bootmenu_timeout)
                        add_pair(argv, "-boot",
                                 g_strdup_printf("menu=on,splash-time=%u", def->os_bootmenu_timeout));
                else
                        add_pair(argv, "-boot",
                                 g_strdup_printf("menu=%s",
                                                 g_str_equal(def->os_bootmenu, "yes") ? "on" : "off"));
        }
}

static void add_usb(GPtrArray *argv, const DomainDef *def) {
        static const struct {
                const char *model, *device;
        } map[] = {
                { "qemu-xhci", "qemu-xhci" },       { "nec-xhci", "nec-usb-xhci" },
                { "ich9-ehci1", "ich9-usb-ehci1" }, { "ehci", "usb-ehci" },
                { "piix3-uhci", "piix3-usb-uhci" }, { "piix4-uhci", "piix4-usb-uhci" },
        };

        for (size_t i = 0; def->usb_model && i < G_N_ELEMENTS(map); i++)
                if (g_str_equal(def->usb_model, map[i].model)) {
                        /* An xHCI controller's ports: as many USB 2 as USB 3. */
                        if (def->usb_ports)
                                add_pair(argv, "-device",
                                         g_strdup_printf("%s,id=usb,p2=%u,p3=%u", map[i].device,
                                                         def->usb_ports, def->usb_ports));
                        else
                                add_pair(argv, "-device", g_strdup_printf("%s,id=usb", map[i].device));
                }
        /* libvirt's companion set: each UHCI takes two of the EHCI's ports
         * for USB 1 devices. */
        for (unsigned n = 1; n <= 3; n++)
                if (def->usb_companions & (1u << n))
                        add_pair(argv, "-device",
                                 g_strdup_printf("ich9-usb-uhci%u,id=usb-uhci%u,masterbus=usb.0,firstport=%u", n, n,
                                                 2 * n - 2));
}

static void add_inputs(GPtrArray *argv, const DomainDef *def) {
        for (unsigned i = 0; i < def->inputs->len; i++) {
                const DomainInputDef *in = def->inputs->pdata[i];
                const char *type = g_str_equal(in->type, "keyboard") ? "kbd" : in->type;

                if (g_str_equal(in->bus, "usb"))
                        add_pair(argv, "-device", g_strdup_printf("usb-%s,id=input%u,bus=usb.0", type, i));
                else
                        add_pair(argv, "-device", g_strdup_printf("virtio-%s-pci,id=input%u", in->type, i));
        }
}

static void add_sound(GPtrArray *argv, const DomainDef *def) {
        for (unsigned i = 0; i < def->audios->len; i++) {
                const DomainAudioDef *a = def->audios->pdata[i];
                add_pair(argv, "-audiodev", g_strdup_printf("%s,id=audio%u", a->type, a->id));
        }
        for (unsigned i = 0; i < def->sounds->len; i++) {
                const DomainSoundDef *s = def->sounds->pdata[i];

                if (g_str_equal(s->model, "ac97")) {
                        add_pair(argv, "-device",
                                 g_strdup_printf("AC97,id=sound%u,audiodev=audio%u", i, s->audio));
                        continue;
                }
                add_pair(argv, "-device",
                         g_strdup_printf("%s,id=sound%u",
                                         g_str_equal(s->model, "ich9") ? "ich9-intel-hda" : "intel-hda", i));
                add_pair(argv, "-device",
                         g_strdup_printf("hda-%s,id=sound%u-codec0,bus=sound%u.0,cad=0,audiodev=audio%u",
                                         s->codec, i, i, s->audio));
        }
}

static void add_channels(GPtrArray *argv, const DomainDef *def, const QemuPaths *paths) {
        if (def->channels->len == 0)
                return;
        add_pair(argv, "-device", g_strdup("virtio-serial-pci,id=virtio-serial0"));
        for (unsigned i = 0; i < def->channels->len; i++) {
                const DomainChannelDef *ch = def->channels->pdata[i];

                if (g_str_equal(ch->type, "spicevmc"))
                        add_pair(argv, "-chardev",
                                 g_strdup_printf("spicevmc,id=charchannel%u,name=vdagent", i));
                else {
                        g_autofree char *path = qemu_channel_socket(def, paths, i);
                        g_autofree char *esc = escape_commas(path);
                        add_pair(argv, "-chardev",
                                 g_strdup_printf("socket,id=charchannel%u,path=%s,server=on,wait=off", i,
                                                 esc));
                }
                /* Port numbers fixed by order (0 is the console's): the guest's
                 * driver finds its ports by name, but the numbers are device
                 * state that must match across a migration. */
                add_pair(argv, "-device",
                         g_strdup_printf("virtserialport,bus=virtio-serial0.0,nr=%u,chardev=charchannel%u,"
                                         "id=channel%u,"
                                         "name=%s",
                                         i + 1, i, i, ch->name));
        }
}

static void add_redirdevs(GPtrArray *argv, const DomainDef *def) {
        for (unsigned i = 0; i < def->redirdevs; i++) {
                add_pair(argv, "-chardev", g_strdup_printf("spicevmc,id=charredir%u,name=usbredir", i));
                add_pair(argv, "-device",
                         g_strdup_printf("usb-redir,chardev=charredir%u,id=redir%u,bus=usb.0", i, i));
        }
}

static void add_rng(GPtrArray *argv, const DomainDef *def) {
        GString *dev;

        if (!def->rng_backend)
                return;
        if (g_str_equal(def->rng_backend, "builtin"))
                add_pair(argv, "-object", g_strdup("rng-builtin,id=objrng0"));
        else
                add_pair(argv, "-object",
                         g_strdup_printf("rng-random,id=objrng0,filename=%s", def->rng_device));
        dev = g_string_new("virtio-rng-pci,rng=objrng0,id=rng0");
        if (def->rng_rate_bytes) {
                /* libvirt's default period when only bytes are given: 1 s. */
                g_string_append_printf(dev, ",max-bytes=%" G_GUINT64_FORMAT ",period=%" G_GUINT64_FORMAT,
                                       def->rng_rate_bytes,
                                       def->rng_rate_period ? def->rng_rate_period : 1000);
        }
        add_pair(argv, "-device", g_string_free(dev, false));
}

static int add_watchdog(GPtrArray *argv, const DomainDef *def, GError **error) {
        if (!def->watchdog_model)
                return 0;
        if (g_str_equal(def->watchdog_model, "itco")) {
                if (!machine_is_q35(def))
                        return vm_error_set(
                                error, VM_ERROR_UNSUPPORTED_BACKEND,
                                "<watchdog model='itco'>: the iTCO watchdog is the q35 machine's own; "
                                "use model='i6300esb' on machine '%s'",
                                def->os_machine ? def->os_machine : "pc");
                /* Always there on q35; left alone it never resets. */
                add_pair(argv, "-global", g_strdup("ICH9-LPC.noreboot=off"));
        } else
                add_pair(argv, "-device", g_strdup_printf("%s,id=watchdog0", def->watchdog_model));
        add_pair(argv, "-action", g_strdup_printf("watchdog=%s", def->watchdog_action));
        return 0;
}

static void add_memballoon(GPtrArray *argv, const DomainDef *def) {
        GString *dev;

        if (g_strcmp0(def->memballoon, "virtio") != 0)
                return;
        dev = g_string_new("virtio-balloon-pci,id=balloon0");
        if (def->memballoon_autodeflate)
                g_string_append_printf(dev, ",deflate-on-oom=%s", def->memballoon_autodeflate);
        if (def->memballoon_free_page_reporting)
                g_string_append_printf(dev, ",free-page-reporting=%s", def->memballoon_free_page_reporting);
        add_pair(argv, "-device", g_string_free(dev, false));
}

int qemu_devices_add(GPtrArray *argv, const DomainDef *def, const QemuPaths *paths, GError **error) {
        int r;

        add_settings(argv, def);
        add_usb(argv, def);
        add_inputs(argv, def);
        add_sound(argv, def);
        add_channels(argv, def, paths);
        add_redirdevs(argv, def);
        add_rng(argv, def);
        r = add_watchdog(argv, def, error);
        if (r < 0)
                return r;
        add_memballoon(argv, def);
        return 0;
}
