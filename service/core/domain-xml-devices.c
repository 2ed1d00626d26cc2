/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The devices and settings of a desktop guest: see domain-xml-devices.h.
 *
 * Each element here is either configured in QEMU for real (by the qemu
 * backend's qemu-command-devices.c) or refused with a reason and a fix.
 * What QEMU decides by itself on one host must come out the same on a
 * migration's destination, which starts QEMU from the same definition: so
 * defaults that depend on the document (the USB controller a USB device
 * needs, the audio backend of a sound card) are filled in here, once, and
 * written back by GetXML, and devices are numbered in document order.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <libxml/tree.h>

#include "cpuset.h"
#include "domain-xml-devices.h"
#include "domain-xml-firmware.h"
#include "domain-xml-hyperv.h"
#include "domain-xml-util.h"
#include "errors.h"
#include "text.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

#define METADATA_OTHER_MAX 32
#define INPUTS_MAX 8
#define SOUNDS_MAX 4
#define AUDIOS_MAX 8
#define CHANNELS_MAX 16
#define REDIRDEVS_MAX 4
#define BOOT_DEVS_MAX 4
#define BOOT_ORDER_MAX 1000
#define BOOTMENU_TIMEOUT_MAX 65535 /* QEMU's splash-time limit */

/* ---- lifetime ---- */

static void input_def_free(DomainInputDef *i) {
        if (!i)
                return;
        g_free(i->type);
        g_free(i->bus);
        g_free(i);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainInputDef, input_def_free)

static void sound_def_free(DomainSoundDef *s) {
        if (!s)
                return;
        g_free(s->model);
        g_free(s->codec);
        g_free(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainSoundDef, sound_def_free)

static void audio_def_free(DomainAudioDef *a) {
        if (!a)
                return;
        g_free(a->type);
        g_free(a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainAudioDef, audio_def_free)

static void channel_def_free(DomainChannelDef *c) {
        if (!c)
                return;
        g_free(c->type);
        g_free(c->name);
        g_free(c->source_path);
        g_free(c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainChannelDef, channel_def_free)

void devices_def_init(DomainDef *def) {
        def->metadata_other = g_ptr_array_new_with_free_func(g_free);
        def->inputs = g_ptr_array_new_with_free_func((GDestroyNotify) input_def_free);
        def->sounds = g_ptr_array_new_with_free_func((GDestroyNotify) sound_def_free);
        def->audios = g_ptr_array_new_with_free_func((GDestroyNotify) audio_def_free);
        def->channels = g_ptr_array_new_with_free_func((GDestroyNotify) channel_def_free);
}

void devices_def_clear(DomainDef *def) {
        g_clear_pointer(&def->metadata_other, g_ptr_array_unref);
        g_clear_pointer(&def->os_boot_devs, g_strfreev);
        g_clear_pointer(&def->os_bootmenu, g_free);
        g_clear_pointer(&def->vmport, g_free);
        g_clear_pointer(&def->clock_offset, g_free);
        g_clear_pointer(&def->timer_rtc_tickpolicy, g_free);
        g_clear_pointer(&def->timer_pit_tickpolicy, g_free);
        g_clear_pointer(&def->timer_hpet_present, g_free);
        g_clear_pointer(&def->pm_suspend_to_mem, g_free);
        g_clear_pointer(&def->pm_suspend_to_disk, g_free);
        g_clear_pointer(&def->usb_model, g_free);
        g_clear_pointer(&def->scsi_model, g_free);
        g_clear_pointer(&def->inputs, g_ptr_array_unref);
        g_clear_pointer(&def->sounds, g_ptr_array_unref);
        g_clear_pointer(&def->audios, g_ptr_array_unref);
        g_clear_pointer(&def->channels, g_ptr_array_unref);
        g_clear_pointer(&def->rng_backend, g_free);
        g_clear_pointer(&def->rng_device, g_free);
        g_clear_pointer(&def->watchdog_model, g_free);
        g_clear_pointer(&def->watchdog_action, g_free);
        g_clear_pointer(&def->memballoon, g_free);
        g_clear_pointer(&def->memballoon_autodeflate, g_free);
        g_clear_pointer(&def->memballoon_free_page_reporting, g_free);
        hyperv_def_clear(def);
}

void devices_def_copy(DomainDef *dst, const DomainDef *src) {
        for (guint i = 0; src->metadata_other && i < src->metadata_other->len; i++)
                g_ptr_array_add(dst->metadata_other, g_strdup(src->metadata_other->pdata[i]));
        dst->os_boot_devs = g_strdupv(src->os_boot_devs);
        dst->os_bootmenu = g_strdup(src->os_bootmenu);
        dst->os_bootmenu_timeout = src->os_bootmenu_timeout;
        dst->cpu_sockets = src->cpu_sockets;
        dst->cpu_dies = src->cpu_dies;
        dst->cpu_clusters = src->cpu_clusters;
        dst->cpu_cores = src->cpu_cores;
        dst->cpu_threads = src->cpu_threads;
        dst->vmport = g_strdup(src->vmport);
        dst->pc_features = src->pc_features;
        dst->clock_offset = g_strdup(src->clock_offset);
        dst->timer_rtc_tickpolicy = g_strdup(src->timer_rtc_tickpolicy);
        dst->timer_pit_tickpolicy = g_strdup(src->timer_pit_tickpolicy);
        dst->timer_hpet_present = g_strdup(src->timer_hpet_present);
        dst->pm_suspend_to_mem = g_strdup(src->pm_suspend_to_mem);
        dst->pm_suspend_to_disk = g_strdup(src->pm_suspend_to_disk);
        dst->usb_model = g_strdup(src->usb_model);
        dst->usb_companions = src->usb_companions;
        dst->usb_ports = src->usb_ports;
        dst->scsi_model = g_strdup(src->scsi_model);
        for (guint i = 0; src->inputs && i < src->inputs->len; i++) {
                const DomainInputDef *s = src->inputs->pdata[i];
                DomainInputDef *n = g_new0(DomainInputDef, 1);
                n->type = g_strdup(s->type);
                n->bus = g_strdup(s->bus);
                g_ptr_array_add(dst->inputs, n);
        }
        for (guint i = 0; src->sounds && i < src->sounds->len; i++) {
                const DomainSoundDef *s = src->sounds->pdata[i];
                DomainSoundDef *n = g_new0(DomainSoundDef, 1);
                n->model = g_strdup(s->model);
                n->codec = g_strdup(s->codec);
                n->audio = s->audio;
                g_ptr_array_add(dst->sounds, n);
        }
        for (guint i = 0; src->audios && i < src->audios->len; i++) {
                const DomainAudioDef *s = src->audios->pdata[i];
                DomainAudioDef *n = g_new0(DomainAudioDef, 1);
                n->id = s->id;
                n->type = g_strdup(s->type);
                g_ptr_array_add(dst->audios, n);
        }
        for (guint i = 0; src->channels && i < src->channels->len; i++) {
                const DomainChannelDef *s = src->channels->pdata[i];
                DomainChannelDef *n = g_new0(DomainChannelDef, 1);
                n->type = g_strdup(s->type);
                n->name = g_strdup(s->name);
                n->source_path = g_strdup(s->source_path);
                g_ptr_array_add(dst->channels, n);
        }
        dst->redirdevs = src->redirdevs;
        dst->rng_backend = g_strdup(src->rng_backend);
        dst->rng_device = g_strdup(src->rng_device);
        dst->rng_rate_bytes = src->rng_rate_bytes;
        dst->rng_rate_period = src->rng_rate_period;
        dst->watchdog_model = g_strdup(src->watchdog_model);
        dst->watchdog_action = g_strdup(src->watchdog_action);
        dst->memballoon = g_strdup(src->memballoon);
        dst->memballoon_autodeflate = g_strdup(src->memballoon_autodeflate);
        dst->memballoon_free_page_reporting = g_strdup(src->memballoon_free_page_reporting);
        hyperv_def_copy(dst, src);
}

static bool strv_equal0(char **a, char **b) {
        if (!a || !b)
                return !a && !b;
        return g_strv_equal((const char *const *) a, (const char *const *) b);
}

static guint len0(const GPtrArray *a) {
        return a ? a->len : 0;
}

/* What the guest sees: everything but other applications' metadata and
 * where the host keeps a channel's socket. */
static bool guest_equal(const DomainDef *a, const DomainDef *b) {
        if (!strv_equal0(a->os_boot_devs, b->os_boot_devs) ||
            g_strcmp0(a->os_bootmenu, b->os_bootmenu) != 0 ||
            a->os_bootmenu_timeout != b->os_bootmenu_timeout || a->cpu_sockets != b->cpu_sockets ||
            a->cpu_dies != b->cpu_dies || a->cpu_clusters != b->cpu_clusters ||
            a->cpu_cores != b->cpu_cores || a->cpu_threads != b->cpu_threads ||
            g_strcmp0(a->vmport, b->vmport) != 0 || a->pc_features != b->pc_features ||
            g_strcmp0(a->clock_offset, b->clock_offset) != 0 ||
            g_strcmp0(a->timer_rtc_tickpolicy, b->timer_rtc_tickpolicy) != 0 ||
            g_strcmp0(a->timer_pit_tickpolicy, b->timer_pit_tickpolicy) != 0 ||
            g_strcmp0(a->timer_hpet_present, b->timer_hpet_present) != 0 ||
            g_strcmp0(a->pm_suspend_to_mem, b->pm_suspend_to_mem) != 0 ||
            g_strcmp0(a->pm_suspend_to_disk, b->pm_suspend_to_disk) != 0 ||
            g_strcmp0(a->usb_model, b->usb_model) != 0 || a->usb_ports != b->usb_ports ||
            a->usb_companions != b->usb_companions || g_strcmp0(a->scsi_model, b->scsi_model) != 0 ||
            a->redirdevs != b->redirdevs || g_strcmp0(a->rng_backend, b->rng_backend) != 0 ||
            a->rng_rate_bytes != b->rng_rate_bytes || a->rng_rate_period != b->rng_rate_period ||
            g_strcmp0(a->watchdog_model, b->watchdog_model) != 0 ||
            g_strcmp0(a->watchdog_action, b->watchdog_action) != 0 ||
            g_strcmp0(a->memballoon, b->memballoon) != 0 ||
            g_strcmp0(a->memballoon_autodeflate, b->memballoon_autodeflate) != 0 ||
            g_strcmp0(a->memballoon_free_page_reporting, b->memballoon_free_page_reporting) != 0 ||
            !hyperv_def_equal(a, b))
                return false;
        if (len0(a->inputs) != len0(b->inputs) || len0(a->sounds) != len0(b->sounds) ||
            len0(a->audios) != len0(b->audios) || len0(a->channels) != len0(b->channels))
                return false;
        for (guint i = 0; i < len0(a->inputs); i++) {
                const DomainInputDef *x = a->inputs->pdata[i], *y = b->inputs->pdata[i];
                if (g_strcmp0(x->type, y->type) != 0 || g_strcmp0(x->bus, y->bus) != 0)
                        return false;
        }
        for (guint i = 0; i < len0(a->sounds); i++) {
                const DomainSoundDef *x = a->sounds->pdata[i], *y = b->sounds->pdata[i];
                if (g_strcmp0(x->model, y->model) != 0 || g_strcmp0(x->codec, y->codec) != 0 ||
                    x->audio != y->audio)
                        return false;
        }
        for (guint i = 0; i < len0(a->audios); i++) {
                const DomainAudioDef *x = a->audios->pdata[i], *y = b->audios->pdata[i];
                if (x->id != y->id || g_strcmp0(x->type, y->type) != 0)
                        return false;
        }
        for (guint i = 0; i < len0(a->channels); i++) {
                const DomainChannelDef *x = a->channels->pdata[i], *y = b->channels->pdata[i];
                if (g_strcmp0(x->type, y->type) != 0 || g_strcmp0(x->name, y->name) != 0)
                        return false;
        }
        return true;
}

bool devices_def_equal(const DomainDef *a, const DomainDef *b) {
        if (!guest_equal(a, b) || len0(a->metadata_other) != len0(b->metadata_other) ||
            g_strcmp0(a->rng_device, b->rng_device) != 0)
                return false;
        for (guint i = 0; i < len0(a->metadata_other); i++)
                if (!g_str_equal(a->metadata_other->pdata[i], b->metadata_other->pdata[i]))
                        return false;
        for (guint i = 0; i < len0(a->channels); i++) {
                const DomainChannelDef *x = a->channels->pdata[i], *y = b->channels->pdata[i];
                if (g_strcmp0(x->source_path, y->source_path) != 0)
                        return false;
        }
        return true;
}

int devices_check_abi_stable(const DomainDef *src, const DomainDef *dst, GError **error) {
        /* The RNG's host device, channel sockets and metadata are the host's
         * or the applications' business; everything else reaches the guest. */
        if (!guest_equal(src, dst))
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "option 'destination-xml': the desktop devices or settings (USB, input, "
                                    "sound, channels, RNG, watchdog, balloon, boot order, topology, "
                                    "<features> including <hyperv>, <clock>, <pm>) differ from the running "
                                    "domain; the guest "
                                    "would see the change, start from Domain.GetXML");
        return 0;
}

void devices_disk_clear(DomainDiskDef *d) {
        g_clear_pointer(&d->discard, g_free);
        g_clear_pointer(&d->io, g_free);
        g_clear_pointer(&d->detect_zeroes, g_free);
}

void devices_disk_copy(DomainDiskDef *dst, const DomainDiskDef *src) {
        dst->discard = g_strdup(src->discard);
        dst->io = g_strdup(src->io);
        dst->detect_zeroes = g_strdup(src->detect_zeroes);
        dst->boot_order = src->boot_order;
}

bool devices_disk_equal(const DomainDiskDef *a, const DomainDiskDef *b) {
        return g_strcmp0(a->discard, b->discard) == 0 && g_strcmp0(a->io, b->io) == 0 &&
                g_strcmp0(a->detect_zeroes, b->detect_zeroes) == 0 && a->boot_order == b->boot_order;
}

/* discard, io and detect_zeroes are how the host stores the blocks; the
 * boot order is the guest's firmware's. */
bool devices_disk_abi_equal(const DomainDiskDef *a, const DomainDiskDef *b) {
        return a->boot_order == b->boot_order;
}

/* ---- helpers ---- */

static int parse_uint(const char *what, const char *s, unsigned min, unsigned max, unsigned *ret,
                      GError **error) {
        uint64_t v;
        int r;

        if ((r = parse_u64(what, s, &v, error)) < 0)
                return r;
        if (v < min || v > max)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "%s: %" PRIu64 " is out of range; use %u to %u", what, v, min, max);
        *ret = (unsigned) v;
        return 0;
}

/* An optional attribute from a list of choices: *ret stays NULL when absent. */
static int get_choice(xmlNode *node, const char *attr, const char *what, const char *const *choices,
                      char **ret, GError **error) {
        g_autofree char *v = get_attr(node, attr);
        int r;

        if (v && (r = check_attr_choice(node, attr, v, what, choices, error)) < 0)
                return r;
        *ret = g_steal_pointer(&v);
        return 0;
}

/* Children libvirt writes for its own bookkeeping: where it put the device
 * (vmigrate lays out buses itself, the same way on both hosts of a
 * migration) and what it called it. */
static bool is_bookkeeping(const xmlNode *node) {
        return node_is(node, "address") || node_is(node, "alias");
}

/* ---- <metadata> of other applications ---- */

int devices_parse_metadata_other(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(xmlDoc) doc = NULL;
        g_autoptr(xmlBuffer) buf = NULL;
        xmlNode *copy;

        if (!node->ns || !node->ns->href || !node->ns->href[0]) {
                g_autofree char *n = text_quote(node_name(node), -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<%s> in <metadata> has no namespace: as in libvirt, each application's "
                        "metadata needs one of its own (<app:%s xmlns:app='https://example.org/app'>)",
                        n, n);
        }
        for (xmlNode *p = node->prev; p; p = p->prev)
                if (p->type == XML_ELEMENT_NODE && p->ns && p->ns->href &&
                    xmlStrEqual(p->ns->href, node->ns->href)) {
                        g_autofree char *q = text_quote((const char *) node->ns->href, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<metadata>: two elements in namespace '%s'; as in libvirt, an "
                                            "application keeps one element per namespace: merge them",
                                            q);
                }
        if (def->metadata_other->len >= METADATA_OTHER_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<metadata>: more than %d applications' elements", METADATA_OTHER_MAX);

        /* A copy as the root of a document of its own declares the
         * namespaces it uses that were declared further up, so the text
         * stands on its own and GetXML gives back what the application
         * wrote, whatever vmigrate writes around it. */
        doc = xmlNewDoc((const xmlChar *) "1.0");
        copy = xmlDocCopyNode(node, doc, 1);
        buf = xmlBufferCreate();
        if (!doc || !copy || !buf)
                g_error("out of memory");
        xmlDocSetRootElement(doc, copy);
        if (xmlNodeDump(buf, doc, copy, 0, 0) < 0)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<metadata>: cannot serialise <%s>",
                                    node_name(node));
        g_ptr_array_add(def->metadata_other,
                        g_strndup((const char *) xmlBufferContent(buf), (gsize) xmlBufferLength(buf)));
        return 0;
}

void devices_format_metadata(xmlTextWriter *w, const DomainDef *def) {
        for (guint i = 0; def->metadata_other && i < def->metadata_other->len; i++)
                xmlTextWriterWriteRaw(w, (const xmlChar *) def->metadata_other->pdata[i]);
}

/* ---- <os> ---- */

int devices_parse_os_boot(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *dev = NULL;
        guint n = def->os_boot_devs ? g_strv_length(def->os_boot_devs) : 0;
        int r;

        if ((r = check_empty(node, STRV("dev"), error)) < 0 ||
            (r = require_attr(node, "dev", "(hd, cdrom or network)", &dev, error)) < 0)
                return r;
        if (g_str_equal(dev, "fd"))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<boot dev='fd'> in <os>: vmigrate guests have no floppy drive; use hd, "
                                    "cdrom or network");
        if ((r = check_attr_choice(node, "dev", dev, "boot device", STRV("hd", "cdrom", "network"), error)) <
            0)
                return r;
        if (def->os_boot_devs && g_strv_contains((const char *const *) def->os_boot_devs, dev))
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<boot dev='%s'> given twice in <os>", dev);
        if (n >= BOOT_DEVS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<os>: more than %d <boot> elements",
                                    BOOT_DEVS_MAX);
        def->os_boot_devs = g_renew(char *, def->os_boot_devs, n + 2);
        def->os_boot_devs[n] = g_steal_pointer(&dev);
        def->os_boot_devs[n + 1] = NULL;
        return 0;
}

int devices_parse_bootmenu(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *enable = NULL, *timeout = NULL;
        int r;

        if (def->os_bootmenu)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<bootmenu> given twice in <os>");
        if ((r = check_empty(node, STRV("enable", "timeout"), error)) < 0 ||
            (r = require_attr(node, "enable", "('yes' or 'no')", &enable, error)) < 0 ||
            (r = check_attr_choice(node, "enable", enable, "value", STRV("yes", "no"), error)) < 0)
                return r;
        timeout = get_attr(node, "timeout");
        if (timeout) {
                if (g_str_equal(enable, "no"))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<bootmenu enable='no' timeout>: a timeout needs enable='yes'; "
                                            "remove 'timeout'");
                if ((r = parse_uint("<bootmenu timeout>", timeout, 0, BOOTMENU_TIMEOUT_MAX,
                                    &def->os_bootmenu_timeout, error)) < 0)
                        return r;
        }
        def->os_bootmenu = g_steal_pointer(&enable);
        return 0;
}

void devices_format_os(xmlTextWriter *w, const DomainDef *def) {
        for (char **dev = def->os_boot_devs; dev && *dev; dev++) {
                start_element(w, "boot");
                write_attribute(w, "dev", *dev);
                end_element(w);
        }
        if (def->os_bootmenu) {
                g_autofree char *t =
                        def->os_bootmenu_timeout ? g_strdup_printf("%u", def->os_bootmenu_timeout) : NULL;
                start_element(w, "bootmenu");
                write_attribute(w, "enable", def->os_bootmenu);
                write_attribute(w, "timeout", t);
                end_element(w);
        }
}

/* ---- <vcpu>, <cpu> ---- */

/* The host CPUs the guest runs on: a host-side setting (destination-xml
 * may change it), checked on a migration's destination (resources.cpuset). */
int devices_parse_vcpu_cpuset(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *text = get_attr(node, "cpuset");
        CpuSet set;
        int r;

        if (!text)
                return 0;
        r = cpuset_parse(text, "<vcpu cpuset>", &set, error);
        if (r < 0)
                return r;
        g_free(def->vcpu_cpuset);
        def->vcpu_cpuset = cpuset_format(&set);
        return 0;
}

int devices_parse_topology(xmlNode *node, DomainDef *def, GError **error) {
        static const char *const names[] = { "sockets", "dies", "clusters", "cores", "threads" };
        unsigned *fields[] = { &def->cpu_sockets, &def->cpu_dies, &def->cpu_clusters, &def->cpu_cores,
                               &def->cpu_threads };
        int r;

        if (def->cpu_sockets)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<topology> given twice in <cpu>");
        if ((r = check_empty(node, STRV("sockets", "dies", "clusters", "cores", "threads"), error)) < 0)
                return r;
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *v = get_attr(node, names[i]);
                g_autofree char *what = g_strdup_printf("<topology %s>", names[i]);

                if (!v) {
                        /* libvirt needs the three; dies and clusters default to 1. */
                        if (i == 1 || i == 2) {
                                *fields[i] = 1;
                                continue;
                        }
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<cpu><topology>: attribute '%s' is required (give sockets, cores "
                                "and threads)",
                                names[i]);
                }
                if ((r = parse_uint(what, v, 1, DOMAIN_VCPUS_MAX, fields[i], error)) < 0)
                        return r;
        }
        return 0;
}

void devices_format_cpu_topology(xmlTextWriter *w, const DomainDef *def) {
        static const char *const names[] = { "sockets", "dies", "clusters", "cores", "threads" };
        const unsigned values[] = { def->cpu_sockets, def->cpu_dies, def->cpu_clusters, def->cpu_cores,
                                    def->cpu_threads };

        if (!def->cpu_sockets)
                return;
        start_element(w, "topology");
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *v = g_strdup_printf("%u", values[i]);
                write_attribute(w, names[i], v);
        }
        end_element(w);
}

/* ---- <features>, <clock>, <pm> ---- */

int devices_parse_features(xmlNode *node, DomainDef *def, GError **error) {
        int r;

        if ((r = no_attributes(node, error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                if (strv_contains(STRV("acpi", "apic", "pae"), node_name(c))) {
                        /* QEMU's PC defaults, which every vmigrate guest has;
                         * kept so that GetXML says what was asked. */
                        if ((r = check_empty(c, NULL, error)) < 0)
                                return r;
                        def->pc_features |= node_is(c, "acpi")   ? DOMAIN_FEATURE_ACPI
                                            : node_is(c, "apic") ? DOMAIN_FEATURE_APIC
                                                                 : DOMAIN_FEATURE_PAE;
                } else if (node_is(c, "vmport")) {
                        g_autofree char *state = NULL;

                        if (def->vmport)
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<vmport> given twice in <features>");
                        if ((r = check_empty(c, STRV("state"), error)) < 0 ||
                            (r = require_attr(c, "state", "('on' or 'off')", &state, error)) < 0 ||
                            (r = check_attr_choice(c, "state", state, "state", STRV("on", "off"), error)) <
                                    0)
                                return r;
                        def->vmport = g_steal_pointer(&state);
                } else if (node_is(c, "smm")) {
                        /* domain-xml-firmware.c: secure boot's */
                        if ((r = check_feature_smm(c, error)) < 0)
                                return r;
                } else if (node_is(c, "hyperv")) {
                        if ((r = parse_features_hyperv(c, def, error)) < 0)
                                return r;
                } else {
                        g_autofree char *n = text_quote(node_name(c), -1);
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<%s> in <features> is not supported by vmigrate (only <acpi/>, "
                                "<apic/> and <pae/>, which it always provides, <hyperv>, <vmport> "
                                "and <smm>); "
                                "remove it",
                                n);
                }
        }
        return 0;
}

static int parse_timer(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *name = NULL, *tickpolicy = NULL, *present = NULL;
        char **field;
        int r;

        if ((r = require_attr(node, "name", NULL, &name, error)) < 0)
                return r;
        if (g_str_equal(name, "hypervclock"))
                return parse_timer_hypervclock(node, def, error);
        if (!strv_contains(STRV("rtc", "pit", "hpet"), name)) {
                g_autofree char *q = text_quote(name, -1);
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<timer name='%s'> in <clock> is not supported by vmigrate (it sets the "
                                    "rtc, pit, hpet and hypervclock timers); remove it",
                                    q);
        }
        if ((r = check_empty(node,
                             g_str_equal(name, "hpet") ? STRV("name", "present")
                                                       : STRV("name", "tickpolicy", "present"),
                             error)) < 0)
                return r;
        present = get_attr(node, "present");
        tickpolicy = get_attr(node, "tickpolicy");
        if (g_str_equal(name, "hpet")) {
                field = &def->timer_hpet_present;
                if (!present)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<timer name='hpet'>: attribute 'present' is required ('yes' or "
                                            "'no')");
                if ((r = check_attr_choice(node, "present", present, "value", STRV("yes", "no"), error)) < 0)
                        return r;
        } else {
                field = g_str_equal(name, "rtc") ? &def->timer_rtc_tickpolicy : &def->timer_pit_tickpolicy;
                if (present && !g_str_equal(present, "yes"))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<timer name='%s' present='%s'>: a PC always has its %s; remove "
                                            "'present'",
                                            name, present, g_str_equal(name, "rtc") ? "RTC" : "PIT");
                /* QEMU's RTC can only slew (catch up) or deliver late ticks
                 * (delay, its default); its PIT's policy is the in-kernel
                 * one's, which is delay. */
                if (tickpolicy &&
                    (r = check_attr_choice(
                             node, "tickpolicy", tickpolicy, "tick policy",
                             g_str_equal(name, "rtc") ? STRV("catchup", "delay") : STRV("delay"), error)) <
                            0)
                        return r;
        }
        if (*field)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<timer name='%s'> given twice in <clock>",
                                    name);
        *field = g_str_equal(name, "hpet") ? g_steal_pointer(&present)
                                           : g_strdup(tickpolicy ? tickpolicy : "delay");
        return 0;
}

int devices_parse_clock(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *offset = get_attr(node, "offset");
        int r;

        /* The offset first: it is what a user needs to hear about. */
        if (offset && !strv_contains(STRV("utc", "localtime"), offset)) {
                g_autofree char *q = text_quote(offset, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<clock offset='%s'> is not supported by vmigrate: it starts the guest's clock at "
                        "the "
                        "host's UTC or local time, and does not keep a guest's own clock across restarts "
                        "(libvirt's 'variable', 'timezone' and 'absolute'); use offset='utc' (or "
                        "'localtime' "
                        "for Windows)",
                        q);
        }
        if ((r = check_attributes(node, STRV("offset"), error)) < 0)
                return r;
        if (offset && g_str_equal(offset, "localtime"))
                def->clock_offset = g_steal_pointer(&offset);
        for_each_child_element(c, node, r, error) {
                if (!node_is(c, "timer"))
                        return unknown_element(c, node, error);
                if ((r = parse_timer(c, def, error)) < 0)
                        return r;
        }
        return 0;
}

int devices_parse_pm(xmlNode *node, DomainDef *def, GError **error) {
        int r;

        if ((r = no_attributes(node, error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                g_autofree char *enabled = NULL;
                char **field;

                if (node_is(c, "suspend-to-mem"))
                        field = &def->pm_suspend_to_mem;
                else if (node_is(c, "suspend-to-disk"))
                        field = &def->pm_suspend_to_disk;
                else
                        return unknown_element(c, node, error);
                if (*field)
                        return vm_error_set(error, VM_ERROR_INVALID_XML, "<%s> given twice in <pm>",
                                            node_name(c));
                if ((r = check_empty(c, STRV("enabled"), error)) < 0 ||
                    (r = require_attr(c, "enabled", NULL, &enabled, error)) < 0)
                        return r;
                /* A suspended guest waits for a wake-up vmigrate has no call
                 * for, and cannot be migrated. */
                if (!g_str_equal(enabled, "no")) {
                        g_autofree char *q = text_quote(enabled, -1);
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<pm><%s enabled='%s'>: guest suspend is not supported by vmigrate "
                                "(a suspended guest cannot be woken or migrated); use enabled='no' "
                                "or remove it",
                                node_name(c), q);
                }
                *field = g_steal_pointer(&enabled);
        }
        return 0;
}

void devices_format_settings(xmlTextWriter *w, const DomainDef *def) {
        if (def->vmport || def->pc_features || def->hyperv) {
                start_element(w, "features");
                if (def->pc_features & DOMAIN_FEATURE_ACPI) {
                        start_element(w, "acpi");
                        end_element(w);
                }
                if (def->pc_features & DOMAIN_FEATURE_APIC) {
                        start_element(w, "apic");
                        end_element(w);
                }
                if (def->pc_features & DOMAIN_FEATURE_PAE) {
                        start_element(w, "pae");
                        end_element(w);
                }
                format_features_hyperv(w, def);
                if (def->vmport) {
                        start_element(w, "vmport");
                        write_attribute(w, "state", def->vmport);
                        end_element(w);
                }
                end_element(w);
        }
        if (def->clock_offset || def->timer_rtc_tickpolicy || def->timer_pit_tickpolicy ||
            def->timer_hpet_present || def->timer_hypervclock_present) {
                start_element(w, "clock");
                write_attribute(w, "offset", def->clock_offset ? def->clock_offset : "utc");
                if (def->timer_rtc_tickpolicy) {
                        start_element(w, "timer");
                        write_attribute(w, "name", "rtc");
                        write_attribute(w, "tickpolicy", def->timer_rtc_tickpolicy);
                        end_element(w);
                }
                if (def->timer_pit_tickpolicy) {
                        start_element(w, "timer");
                        write_attribute(w, "name", "pit");
                        write_attribute(w, "tickpolicy", def->timer_pit_tickpolicy);
                        end_element(w);
                }
                if (def->timer_hpet_present) {
                        start_element(w, "timer");
                        write_attribute(w, "name", "hpet");
                        write_attribute(w, "present", def->timer_hpet_present);
                        end_element(w);
                }
                format_timer_hypervclock(w, def);
                end_element(w);
        }
        if (def->pm_suspend_to_mem || def->pm_suspend_to_disk) {
                start_element(w, "pm");
                if (def->pm_suspend_to_mem) {
                        start_element(w, "suspend-to-mem");
                        write_attribute(w, "enabled", def->pm_suspend_to_mem);
                        end_element(w);
                }
                if (def->pm_suspend_to_disk) {
                        start_element(w, "suspend-to-disk");
                        write_attribute(w, "enabled", def->pm_suspend_to_disk);
                        end_element(w);
                }
                end_element(w);
        }
}

/* ---- disks: <driver> and <boot order> ---- */

int devices_parse_disk_driver(xmlNode *node, DomainDiskDef *d, GError **error) {
        g_autofree char *name = NULL;
        int r;

        if ((r = check_empty(node, STRV("name", "type", "cache", "discard", "io", "detect_zeroes"), error)) <
            0)
                return r;
        name = get_attr(node, "name");
        if (name && (r = check_attr_choice(node, "name", name, "driver", STRV("qemu"), error)) < 0)
                return r;
        if ((r = get_choice(node, "type", "image format", STRV("raw", "qcow2"), &d->driver_type, error)) <
                    0 ||
            (r = get_choice(node, "cache", "cache mode",
                            STRV("none", "writeback", "writethrough", "directsync", "unsafe"), &d->cache,
                            error)) < 0 ||
            (r = get_choice(node, "discard", "discard mode", STRV("unmap", "ignore"), &d->discard, error)) <
                    0 ||
            (r = get_choice(node, "io", "I/O mode", STRV("threads", "native", "io_uring"), &d->io, error)) <
                    0 ||
            (r = get_choice(node, "detect_zeroes", "value", STRV("off", "on", "unmap"), &d->detect_zeroes,
                            error)) < 0)
                return r;
        /* QEMU refuses both combinations when it opens the image. */
        if (g_strcmp0(d->io, "native") == 0 && !strv_contains(STRV("none", "directsync"), d->cache))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<driver io='native'>: native AIO needs the host's page cache bypassed; add "
                        "cache='none' (or 'directsync'), or use io='threads'");
        if (g_strcmp0(d->detect_zeroes, "unmap") == 0 && g_strcmp0(d->discard, "unmap") != 0)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<driver detect_zeroes='unmap'>: unmapping zeroes needs discard='unmap'; add "
                        "it, or use detect_zeroes='on'");
        return 0;
}

bool devices_disk_has_driver_attrs(const DomainDiskDef *d) {
        return d->discard || d->io || d->detect_zeroes;
}

void devices_format_disk_driver_attrs(xmlTextWriter *w, const DomainDiskDef *d) {
        write_attribute(w, "discard", d->discard);
        write_attribute(w, "io", d->io);
        write_attribute(w, "detect_zeroes", d->detect_zeroes);
}

int devices_parse_boot_order(xmlNode *node, unsigned *ret_order, GError **error) {
        g_autofree char *order = NULL;
        int r;

        if (*ret_order)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<boot> given twice in <%s>",
                                    node_name(node->parent));
        if ((r = check_empty(node, STRV("order"), error)) < 0 ||
            (r = require_attr(node, "order", "(1 for the first device to boot from)", &order, error)) < 0 ||
            (r = parse_uint("<boot order>", order, 1, BOOT_ORDER_MAX, ret_order, error)) < 0)
                return r;
        return 0;
}

void devices_format_boot_order(xmlTextWriter *w, unsigned order) {
        g_autofree char *v = NULL;

        if (!order)
                return;
        v = g_strdup_printf("%u", order);
        start_element(w, "boot");
        write_attribute(w, "order", v);
        end_element(w);
}

/* ---- <devices> ---- */

/* A device's children: bookkeeping is dropped, anything else refused. */
static int check_no_children(xmlNode *node, GError **error) {
        int r;

        for_each_child_element(c, node, r, error) {
                if (!is_bookkeeping(c))
                        return unknown_element(c, node, error);
        }
        return 0;
}

static int parse_index(xmlNode *node, unsigned *ret, GError **error) {
        g_autofree char *index = get_attr(node, "index");

        *ret = 0;
        return index ? parse_uint("<controller index>", index, 0, 255, ret, error) : 0;
}

static const char *const scsi_models[] = { "virtio-scsi", "lsilogic", "lsisas1068",
                                           "lsisas1078",  "vmpvscsi", NULL };
static const char *const usb_models[] = { "qemu-xhci",  "nec-xhci",   "ich9-ehci1", "ehci",
                                          "piix3-uhci", "piix4-uhci", "none",       NULL };

/* <controller type='usb' model='ich9-uhciN'><master startport='2N-2'/>:
 * a USB 1 companion of the ich9-ehci1 given before it (libvirt's USB set
 * for older guests). */
static int parse_usb_companion(xmlNode *node, const char *model, DomainDef *def, GError **error) {
        unsigned n = (unsigned) (model[strlen("ich9-uhci")] - '0');
        g_autofree char *startport = NULL;
        bool seen_master = false;
        int r;

        if (strlen(model) != strlen("ich9-uhci1") || n < 1 || n > 3)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<controller type='usb' model='%s'>: unknown USB companion; libvirt's are "
                                    "ich9-uhci1, ich9-uhci2 and ich9-uhci3",
                                    model);
        if (g_strcmp0(def->usb_model, "ich9-ehci1") != 0)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<controller type='usb' model='%s'>: a USB companion needs its "
                                    "<controller type='usb' model='ich9-ehci1'/> before it",
                                    model);
        if (def->usb_companions & (1u << n))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<controller type='usb' model='%s'> given twice in <devices>", model);
        for_each_child_element(c, node, r, error) {
                if (node_is(c, "master")) {
                        if ((r = check_once(&seen_master, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("startport"), error)) < 0 ||
                            (r = require_attr(c, "startport", NULL, &startport, error)) < 0)
                                return r;
                } else if (!is_bookkeeping(c))
                        return unsupported_element(c, node, NULL, error);
        }
        g_autofree char *want = g_strdup_printf("%u", 2 * n - 2);
        if (g_strcmp0(startport, want) != 0)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<controller type='usb' model='%s'>: <master startport='%s'/> is required "
                                    "(its ports on the EHCI controller)",
                                    model, want);
        def->usb_companions |= 1u << n;
        return 0;
}

static int parse_controller(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *type = NULL, *model = NULL;
        unsigned index;
        int r;

        if ((r = check_attributes(node, STRV("type", "index", "model", "ports", "vectors"), error)) < 0 ||
            (r = require_attr(node, "type", NULL, &type, error)) < 0 ||
            (r = parse_index(node, &index, error)) < 0)
                return r;
        model = get_attr(node, "model");

        if (g_str_equal(type, "pci") || g_str_equal(type, "virtio-serial") || g_str_equal(type, "sata") ||
            g_str_equal(type, "ide") || g_str_equal(type, "fdc")) {
                /* Buses: vmigrate lays them out itself (see domain-xml.c).
                 * Expander buses tie devices to host NUMA nodes: refused. */
                if (g_str_equal(type, "pci") && model &&
                    (r = check_attr_choice(node, "model", model,
                                           "PCI controller model (vmigrate lays out PCI "
                                           "buses itself and keeps only these)",
                                           STRV("pci-root", "pcie-root", "pcie-root-port", "pci-bridge",
                                                "pcie-to-pci-bridge", "dmi-to-pci-bridge",
                                                "pcie-switch-upstream-port", "pcie-switch-downstream-port"),
                                           error)) < 0)
                        return r;
                if (!g_str_equal(type, "pci") && !g_str_equal(type, "virtio-serial") && index != 0)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<controller type='%s' index='%u'>: vmigrate guests have the "
                                            "machine's one %s controller; remove it",
                                            type, index, type);
                for_each_child_element(c, node, r, error) {
                        if (!is_bookkeeping(c) && !node_is(c, "model") && !node_is(c, "target") &&
                            !node_is(c, "driver"))
                                return unknown_element(c, node, error);
                }
                return 0;
        }
        if (g_str_equal(type, "usb") || g_str_equal(type, "scsi")) {
                bool usb = g_str_equal(type, "usb");
                char **field = usb ? &def->usb_model : &def->scsi_model;
                g_autofree char *ports = get_attr(node, "ports");

                if (usb && model && g_str_has_prefix(model, "ich9-uhci") && index == 0)
                        return parse_usb_companion(node, model, def, error);
                if (index != 0)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<controller type='%s' index='%u'>: vmigrate gives a guest one %s "
                                "controller, index 0; put the devices on it and remove this one",
                                type, index, usb ? "USB" : "SCSI");
                if (*field)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<controller type='%s' index='0'> given twice in <devices>",
                                            type);
                if (!model)
                        /* vmigrate's defaults, written back by GetXML. */
                        model = g_strdup(usb ? "qemu-xhci" : "virtio-scsi");
                if ((r = check_attr_choice(node, "model", model,
                                           usb ? "USB controller model" : "SCSI controller model",
                                           usb ? usb_models : scsi_models, error)) < 0)
                        return r;
                if (ports) {
                        if (!usb || !g_str_has_suffix(model, "xhci"))
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<controller type='%s' model='%s' ports>: only xHCI USB "
                                                    "controllers have a number of ports; remove 'ports'",
                                                    type, model);
                        if ((r = parse_uint("<controller ports>", ports, 1, 15, &def->usb_ports, error)) < 0)
                                return r;
                }
                for_each_child_element(c, node, r, error) {
                        if (!is_bookkeeping(c))
                                return unsupported_element(c, node, NULL, error);
                }
                *field = g_steal_pointer(&model);
                return 0;
        }
        {
                g_autofree char *q = text_quote(type, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<controller type='%s'> is not supported by vmigrate (it keeps usb and scsi "
                        "controllers, and lays out pci, virtio-serial, sata and ide itself); remove "
                        "it",
                        q);
        }
}

static int parse_input(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainInputDef) in = g_new0(DomainInputDef, 1);
        int r;

        if ((r = check_attributes(node, STRV("type", "bus"), error)) < 0 ||
            (r = require_attr(node, "type", "(tablet, mouse or keyboard)", &in->type, error)) < 0 ||
            (r = check_attr_choice(node, "type", in->type, "input type", STRV("tablet", "mouse", "keyboard"),
                                   error)) < 0)
                return r;
        in->bus = get_attr(node, "bus");
        if (!in->bus)
                /* libvirt's defaults on a PC. */
                in->bus = g_strdup(g_str_equal(in->type, "tablet") ? "usb" : "ps2");
        if ((r = check_attr_choice(node, "bus", in->bus, "input bus", STRV("usb", "virtio", "ps2"), error)) <
                    0 ||
            (r = check_no_children(node, error)) < 0)
                return r;
        if (g_str_equal(in->bus, "ps2")) {
                if (g_str_equal(in->type, "tablet"))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<input type='tablet' bus='ps2'>: there is no PS/2 tablet; use "
                                            "bus='usb' or bus='virtio'");
                return 0; /* every PC has a PS/2 mouse and keyboard: not kept */
        }
        if (def->inputs->len >= INPUTS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<devices>: more than %d <input> elements",
                                    INPUTS_MAX);
        g_ptr_array_add(def->inputs, g_steal_pointer(&in));
        return 0;
}

static int parse_sound(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainSoundDef) s = g_new0(DomainSoundDef, 1);
        bool seen_audio = false;
        int r;

        if ((r = check_attributes(node, STRV("model"), error)) < 0 ||
            (r = require_attr(node, "model", "(ich9, ich6 or ac97)", &s->model, error)) < 0 ||
            (r = check_attr_choice(node, "model", s->model, "sound model", STRV("ich9", "ich6", "ac97"),
                                   error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                if (node_is(c, "codec")) {
                        if (g_str_equal(s->model, "ac97"))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<sound model='ac97'><codec>: only HDA (ich6, ich9) sound has "
                                        "codecs; remove it");
                        if (s->codec)
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<codec> given twice in <sound>: vmigrate gives a sound card "
                                        "one codec; keep one");
                        if ((r = check_empty(c, STRV("type"), error)) < 0 ||
                            (r = require_attr(c, "type", NULL, &s->codec, error)) < 0 ||
                            (r = check_attr_choice(c, "type", s->codec, "codec type",
                                                   STRV("duplex", "micro", "output"), error)) < 0)
                                return r;
                } else if (node_is(c, "audio")) {
                        g_autofree char *id = NULL;

                        if ((r = check_once(&seen_audio, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("id"), error)) < 0 ||
                            (r = require_attr(c, "id", NULL, &id, error)) < 0 ||
                            (r = parse_uint("<sound><audio id>", id, 1, 1000, &s->audio, error)) < 0)
                                return r;
                } else if (!is_bookkeeping(c))
                        return unsupported_element(c, node, NULL, error);
        }
        if (!s->codec && !g_str_equal(s->model, "ac97"))
                s->codec = g_strdup("duplex"); /* libvirt's default codec */
        if (def->sounds->len >= SOUNDS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<devices>: more than %d <sound> elements",
                                    SOUNDS_MAX);
        g_ptr_array_add(def->sounds, g_steal_pointer(&s));
        return 0;
}

static int parse_audio(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainAudioDef) a = g_new0(DomainAudioDef, 1);
        g_autofree char *id = NULL;
        int r;

        if ((r = require_attr(node, "type", "('none' or 'spice')", &a->type, error)) < 0)
                return r;
        if (!strv_contains(STRV("none", "spice"), a->type)) {
                g_autofree char *q = text_quote(a->type, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<audio type='%s'> is not supported by vmigrate: it would play on this host's "
                        "sound system, which a migrated guest leaves behind; use type='spice' (the "
                        "sound goes to the SPICE client, wherever the guest runs) or type='none'",
                        q);
        }
        if ((r = check_attributes(node, STRV("id", "type"), error)) < 0 ||
            (r = check_no_children(node, error)) < 0)
                return r;
        id = get_attr(node, "id");
        a->id = 1;
        if (id && (r = parse_uint("<audio id>", id, 1, 1000, &a->id, error)) < 0)
                return r;
        for (guint i = 0; i < def->audios->len; i++)
                if (((DomainAudioDef *) def->audios->pdata[i])->id == a->id)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<audio id='%u'>: two <audio> elements have this id", a->id);
        if (def->audios->len >= AUDIOS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<devices>: more than %d <audio> elements",
                                    AUDIOS_MAX);
        g_ptr_array_add(def->audios, g_steal_pointer(&a));
        return 0;
}

static int parse_channel(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainChannelDef) ch = g_new0(DomainChannelDef, 1);
        bool seen_source = false, seen_target = false;
        int r;

        if ((r = check_attributes(node, STRV("type"), error)) < 0 ||
            (r = require_attr(node, "type", "('unix' or 'spicevmc')", &ch->type, error)) < 0)
                return r;
        if (!strv_contains(STRV("unix", "spicevmc"), ch->type)) {
                g_autofree char *q = text_quote(ch->type, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<channel type='%s'> is not supported by vmigrate: it keeps channels as unix "
                        "sockets it creates on each host; use type='unix' (or 'spicevmc' for the "
                        "SPICE agent)",
                        q);
        }
        for_each_child_element(c, node, r, error) {
                if (node_is(c, "source")) {
                        g_autofree char *mode = NULL, *path = NULL;

                        if ((r = check_once(&seen_source, c, node, error)) < 0)
                                return r;
                        if (g_str_equal(ch->type, "spicevmc"))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<channel type='spicevmc'> takes no <source>; remove it");
                        if ((r = check_empty(c, STRV("mode", "path"), error)) < 0)
                                return r;
                        mode = get_attr(c, "mode");
                        if (mode && !g_str_equal(mode, "bind"))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<channel><source mode='%s'>: QEMU listens on a channel's "
                                        "socket on each host (mode='bind'); a server to connect to "
                                        "would not follow the guest to another host",
                                        g_str_equal(mode, "connect") ? "connect" : "...");
                        path = get_attr(c, "path");
                        /* libvirt's generated socket: vmigrate makes its own. */
                        if (path && !g_str_has_prefix(path, DOMAIN_LIBVIRT_CHANNEL_DIR)) {
                                if ((r = check_path("<channel><source path>", path, error)) < 0)
                                        return r;
                                ch->source_path = g_steal_pointer(&path);
                        }
                } else if (node_is(c, "target")) {
                        g_autofree char *type = NULL;

                        /* The type first: libvirt's guestfwd and xen targets carry
                         * attributes of their own, and "unknown attribute 'address'"
                         * would hide that the target itself is what is refused. */
                        if ((r = check_once(&seen_target, c, node, error)) < 0 ||
                            (r = require_attr(c, "type", "('virtio')", &type, error)) < 0)
                                return r;
                        if (!g_str_equal(type, "virtio")) {
                                g_autofree char *q = text_quote(type, -1);
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<channel><target type='%s'> is not supported by vmigrate; "
                                        "use type='virtio'",
                                        q);
                        }
                        /* state='connected' is the running guest agent's. */
                        if ((r = check_empty(c, STRV("type", "name", "state"), error)) < 0)
                                return r;
                        ch->name = get_attr(c, "name");
                } else if (!is_bookkeeping(c))
                        return unsupported_element(c, node, NULL, error);
        }
        if (!seen_target)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<channel>: <target type='virtio' name='...'/> is required");
        if (g_str_equal(ch->type, "spicevmc")) {
                if (!ch->name)
                        ch->name = g_strdup("com.redhat.spice.0");
                if (!g_str_equal(ch->name, "com.redhat.spice.0"))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<channel type='spicevmc'><target name='%s'>: the SPICE agent's channel "
                                "is named 'com.redhat.spice.0'",
                                ch->name);
        }
        if (!ch->name)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<channel type='unix'><target>: attribute 'name' is required (e.g. "
                                    "name='org.qemu.guest_agent.0')");
        if (!is_token(ch->name, 64, "._-")) {
                g_autofree char *q = text_quote(ch->name, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<channel><target name='%s'>: not a port name (letters, digits, '.', '_', '-')", q);
        }
        for (guint i = 0; i < def->channels->len; i++)
                if (g_str_equal(((DomainChannelDef *) def->channels->pdata[i])->name, ch->name))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<channel><target name='%s'>: two channels have this name",
                                            ch->name);
        if (def->channels->len >= CHANNELS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<devices>: more than %d <channel> elements", CHANNELS_MAX);
        g_ptr_array_add(def->channels, g_steal_pointer(&ch));
        return 0;
}

static int parse_redirdev(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *type = NULL, *bus = NULL;
        int r;

        if ((r = check_attributes(node, STRV("type", "bus"), error)) < 0 ||
            (r = require_attr(node, "type", "('spicevmc')", &type, error)) < 0)
                return r;
        if (!g_str_equal(type, "spicevmc")) {
                g_autofree char *q = text_quote(type, -1);
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<redirdev type='%s'> is not supported by vmigrate: USB devices are "
                                    "redirected from the SPICE client, which follows the guest; use "
                                    "type='spicevmc'",
                                    q);
        }
        bus = get_attr(node, "bus");
        if (bus && (r = check_attr_choice(node, "bus", bus, "bus", STRV("usb"), error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                if (!is_bookkeeping(c))
                        return unsupported_element(c, node, NULL, error);
        }
        if (def->redirdevs >= REDIRDEVS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<devices>: more than %d <redirdev> elements", REDIRDEVS_MAX);
        def->redirdevs++;
        return 0;
}

static int parse_rng(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *model = NULL;
        bool seen_backend = false, seen_rate = false;
        int r;

        if (def->rng_backend)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<rng> given twice in <devices>: vmigrate gives a guest one; keep one");
        if ((r = check_attributes(node, STRV("model"), error)) < 0 ||
            (r = require_attr(node, "model", "('virtio')", &model, error)) < 0 ||
            (r = check_attr_choice(node, "model", model, "RNG model", STRV("virtio"), error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                if (node_is(c, "backend")) {
                        g_autofree char *bmodel = NULL, *text = NULL;

                        if ((r = check_once(&seen_backend, c, node, error)) < 0 ||
                            (r = require_attr(c, "model", "('random' or 'builtin')", &bmodel, error)) < 0)
                                return r;
                        if (g_str_equal(bmodel, "egd"))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<rng><backend model='egd'> is not supported by vmigrate: "
                                        "the entropy daemon is this host's; use model='random' "
                                        "(/dev/urandom) or 'builtin'");
                        if ((r = check_attributes(c, STRV("model"), error)) < 0 ||
                            (r = check_attr_choice(c, "model", bmodel, "RNG backend",
                                                   STRV("random", "builtin"), error)) < 0 ||
                            (r = get_text(c, true, &text, error)) < 0)
                                return r;
                        if (g_str_equal(bmodel, "random")) {
                                if (!text[0]) {
                                        g_free(text);
                                        text = g_strdup("/dev/urandom");
                                }
                                if (!strv_contains(STRV("/dev/urandom", "/dev/random", "/dev/hwrng"),
                                                   text)) {
                                        g_autofree char *q = text_quote(text, -1);
                                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                            "<rng><backend model='random'>%s</backend>: use "
                                                            "/dev/urandom, /dev/random or /dev/hwrng",
                                                            q);
                                }
                                def->rng_device = g_steal_pointer(&text);
                        } else if (text[0])
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<rng><backend model='builtin'> takes no text; remove it");
                        def->rng_backend = g_steal_pointer(&bmodel);
                } else if (node_is(c, "rate")) {
                        g_autofree char *bytes = NULL, *period = NULL;

                        if ((r = check_once(&seen_rate, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("bytes", "period"), error)) < 0 ||
                            (r = require_attr(c, "bytes", NULL, &bytes, error)) < 0 ||
                            (r = parse_u64("<rng><rate bytes>", bytes, &def->rng_rate_bytes, error)) < 0)
                                return r;
                        if (def->rng_rate_bytes == 0 || def->rng_rate_bytes > INT64_MAX)
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<rng><rate bytes>: give a number of bytes above 0");
                        period = get_attr(c, "period");
                        if (period) {
                                if ((r = parse_u64("<rng><rate period>", period, &def->rng_rate_period,
                                                   error)) < 0)
                                        return r;
                                if (def->rng_rate_period == 0 || def->rng_rate_period > UINT32_MAX)
                                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                            "<rng><rate period>: give milliseconds, 1 to %u",
                                                            UINT32_MAX);
                        }
                } else if (!is_bookkeeping(c))
                        return unsupported_element(c, node, NULL, error);
        }
        if (!def->rng_backend)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<rng>: <backend model='random'>/dev/urandom</backend> is required");
        return 0;
}

static int parse_watchdog(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *model = NULL, *action = NULL;
        int r;

        if (def->watchdog_model)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<watchdog> given twice in <devices>: vmigrate gives a guest one; keep one");
        if ((r = check_attributes(node, STRV("model", "action"), error)) < 0 ||
            (r = require_attr(node, "model", "('i6300esb', 'itco' or 'ib700')", &model, error)) < 0 ||
            (r = check_attr_choice(node, "model", model, "watchdog model", STRV("i6300esb", "itco", "ib700"),
                                   error)) < 0 ||
            (r = check_no_children(node, error)) < 0)
                return r;
        action = get_attr(node, "action");
        if (action && g_str_equal(action, "dump"))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<watchdog action='dump'> is not supported by vmigrate: it has no place to "
                        "write guest dumps; use 'pause' to keep the guest for inspection, or 'reset'");
        if (!action)
                action = g_strdup("reset"); /* libvirt's default */
        if ((r = check_attr_choice(node, "action", action, "watchdog action",
                                   STRV("reset", "shutdown", "poweroff", "pause", "none", "inject-nmi"),
                                   error)) < 0)
                return r;
        def->watchdog_model = g_steal_pointer(&model);
        def->watchdog_action = g_steal_pointer(&action);
        return 0;
}

static int parse_memballoon(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *model = NULL;
        int r;

        if (def->memballoon)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<memballoon> given twice in <devices>");
        if ((r = check_attributes(node, STRV("model", "autodeflate", "freePageReporting"), error)) < 0 ||
            (r = require_attr(node, "model", "('virtio' or 'none')", &model, error)) < 0 ||
            (r = check_attr_choice(node, "model", model, "balloon model", STRV("virtio", "none"), error)) <
                    0 ||
            (r = get_choice(node, "autodeflate", "value", STRV("on", "off"), &def->memballoon_autodeflate,
                            error)) < 0 ||
            (r = get_choice(node, "freePageReporting", "value", STRV("on", "off"),
                            &def->memballoon_free_page_reporting, error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                if (node_is(c, "stats"))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<memballoon><stats> is not supported by vmigrate: it does not "
                                            "collect balloon statistics; remove <stats>");
                if (!is_bookkeeping(c))
                        return unsupported_element(c, node, NULL, error);
        }
        if (g_str_equal(model, "none") &&
            (def->memballoon_autodeflate || def->memballoon_free_page_reporting))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<memballoon model='none'>: there is no balloon to tune; remove "
                                    "'autodeflate' and 'freePageReporting'");
        def->memballoon = g_steal_pointer(&model);
        return 0;
}

/* Validated here; turned into a serial port by devices_finish() when it is
 * the only one (as libvirt does), dropped when it mirrors one. */
static int parse_console(xmlNode *node, GError **error) {
        g_autofree char *type = NULL;
        bool seen_source = false, seen_target = false;
        int r;

        if ((r = check_attributes(node, STRV("type", "tty"), error)) < 0 ||
            (r = require_attr(node, "type", "(pty, file, null or stdio)", &type, error)) < 0 ||
            (r = check_attr_choice(node, "type", type, "console type", STRV("pty", "file", "null", "stdio"),
                                   error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                if (node_is(c, "source")) {
                        g_autofree char *path = NULL;

                        if ((r = check_once(&seen_source, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("path"), error)) < 0)
                                return r;
                        path = get_attr(c, "path");
                        if (g_str_equal(type, "file") &&
                            (!path || (r = check_path("<console><source path>", path, error)) < 0))
                                return path ? r
                                            : vm_error_set(error, VM_ERROR_INVALID_XML,
                                                           "<console type='file'><source>: attribute 'path' "
                                                           "is required");
                } else if (node_is(c, "target")) {
                        g_autofree char *ttype = NULL, *port = NULL;

                        if ((r = check_once(&seen_target, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("type", "port"), error)) < 0)
                                return r;
                        ttype = get_attr(c, "type");
                        if (ttype && !g_str_equal(ttype, "serial")) {
                                g_autofree char *q = text_quote(ttype, -1);
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<console><target type='%s'> is not supported by vmigrate: "
                                        "its console is the first serial port; use "
                                        "<target type='serial'/> (and console=ttyS0 in the guest)",
                                        q);
                        }
                        port = get_attr(c, "port");
                        if (port && !g_str_equal(port, "0"))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<console><target port='%s'>: the console is serial port 0; "
                                        "use port='0' or remove 'port'",
                                        port);
                } else if (!node_is(c, "alias"))
                        return unsupported_element(c, node, NULL, error);
        }
        if (g_str_equal(type, "file") && !seen_source)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<console type='file'>: <source path='...'/> is required");
        return 0;
}

int devices_parse_device(xmlNode *node, xmlNode *devices, DomainDef *def, GError **error) {
        int r;

        (void) devices;
        if (node_is(node, "controller"))
                r = parse_controller(node, def, error);
        else if (node_is(node, "input"))
                r = parse_input(node, def, error);
        else if (node_is(node, "sound"))
                r = parse_sound(node, def, error);
        else if (node_is(node, "audio"))
                r = parse_audio(node, def, error);
        else if (node_is(node, "channel"))
                r = parse_channel(node, def, error);
        else if (node_is(node, "redirdev"))
                r = parse_redirdev(node, def, error);
        else if (node_is(node, "rng"))
                r = parse_rng(node, def, error);
        else if (node_is(node, "watchdog"))
                r = parse_watchdog(node, def, error);
        else if (node_is(node, "memballoon"))
                r = parse_memballoon(node, def, error);
        else if (node_is(node, "console"))
                r = parse_console(node, error);
        else
                return 0;
        return r < 0 ? r : 1;
}

static bool devices_have_spice(xmlNode *devices) {
        for (xmlNode *c = devices->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && !c->ns && node_is(c, "graphics")) {
                        g_autofree char *type = get_attr(c, "type");
                        if (g_strcmp0(type, "spice") == 0)
                                return true;
                }
        return false;
}

static const DomainAudioDef *find_audio(const DomainDef *def, unsigned id) {
        for (guint i = 0; i < def->audios->len; i++)
                if (((DomainAudioDef *) def->audios->pdata[i])->id == id)
                        return def->audios->pdata[i];
        return NULL;
}

static int console_to_serial(xmlNode *devices, DomainDef *def) {
        xmlNode *console = NULL;
        DomainSerialDef *s;

        for (xmlNode *c = devices->children; c && !console; c = c->next)
                if (c->type == XML_ELEMENT_NODE && !c->ns && node_is(c, "console"))
                        console = c;
        if (!console || def->serials->len > 0)
                return 0;
        /* libvirt gives a console with no serial port a serial port of its
         * own: without one the guest would lose its console. */
        s = g_new0(DomainSerialDef, 1);
        s->type = get_attr(console, "type");
        s->port = 0;
        if (g_strcmp0(s->type, "file") == 0)
                for (xmlNode *c = console->children; c; c = c->next)
                        if (c->type == XML_ELEMENT_NODE && node_is(c, "source"))
                                s->source_path = get_attr(c, "path");
        g_ptr_array_add(def->serials, s);
        return 0;
}

int devices_finish(xmlNode *devices, DomainDef *def, GError **error) {
        bool spice = devices_have_spice(devices);
        bool needs_usb = def->redirdevs > 0;

        for (guint i = 0; i < def->inputs->len; i++)
                needs_usb |= g_str_equal(((DomainInputDef *) def->inputs->pdata[i])->bus, "usb");
        if (needs_usb && !def->usb_model)
                /* What libvirt adds for a USB device; GetXML writes it. */
                def->usb_model = g_strdup("qemu-xhci");
        if (needs_usb && g_str_equal(def->usb_model, "none"))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<controller type='usb' model='none'>: %s needs a USB controller; use "
                                    "model='qemu-xhci' or put the device on bus='virtio'",
                                    def->redirdevs ? "<redirdev>" : "<input bus='usb'>");

        /* A sound card plays through the first <audio>, or the one libvirt
         * would add: SPICE's when the guest has a SPICE display, else none. */
        for (guint i = 0; i < def->sounds->len; i++) {
                DomainSoundDef *s = def->sounds->pdata[i];

                if (s->audio == 0) {
                        if (def->audios->len == 0) {
                                DomainAudioDef *a = g_new0(DomainAudioDef, 1);
                                a->id = 1;
                                a->type = g_strdup(spice ? "spice" : "none");
                                g_ptr_array_add(def->audios, a);
                        }
                        s->audio = ((DomainAudioDef *) def->audios->pdata[0])->id;
                } else if (!find_audio(def, s->audio))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<sound model='%s'><audio id='%u'>: no <audio id='%u'> in <devices>",
                                s->model, s->audio, s->audio);
        }
        for (guint i = 0; i < def->audios->len; i++) {
                const DomainAudioDef *a = def->audios->pdata[i];
                if (g_str_equal(a->type, "spice") && !spice)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<audio type='spice'> needs a <graphics type='spice'> to play "
                                            "through; add one or use <audio type='none'>");
        }
        return console_to_serial(devices, def);
}

int devices_check_domain(DomainDef *def, GError **error) {
        if (def->cpu_sockets) {
                uint64_t product = (uint64_t) def->cpu_sockets * def->cpu_dies * def->cpu_clusters *
                        def->cpu_cores * def->cpu_threads;
                if (product != def->vcpus)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<cpu><topology>: %u sockets × %u dies × %u clusters × %u cores × %u "
                                "threads is %" PRIu64 " vCPUs, but <vcpu> is %u; make them equal",
                                def->cpu_sockets, def->cpu_dies, def->cpu_clusters, def->cpu_cores,
                                def->cpu_threads, product, def->vcpus);
        }
        {
                g_autoptr(GHashTable) orders = g_hash_table_new(NULL, NULL);
                bool per_device = false;

                for (guint i = 0; i < def->disks->len + def->interfaces->len; i++) {
                        unsigned order = i < def->disks->len
                                ? ((DomainDiskDef *) def->disks->pdata[i])->boot_order
                                : ((DomainInterfaceDef *) def->interfaces->pdata[i - def->disks->len])
                                          ->boot_order;
                        if (!order)
                                continue;
                        per_device = true;
                        if (!g_hash_table_add(orders, GUINT_TO_POINTER(order)))
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<boot order='%u'>: two devices have this boot order",
                                                    order);
                }
                /* As libvirt: the two ways of saying it do not mix. */
                if (per_device && def->os_boot_devs)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<os><boot dev> and a device's <boot order> cannot be used together; "
                                "keep one of them");
        }
        return 0;
}

void devices_format_devices(xmlTextWriter *w, const DomainDef *def) {
        if (def->usb_model) {
                g_autofree char *ports = def->usb_ports ? g_strdup_printf("%u", def->usb_ports) : NULL;
                start_element(w, "controller");
                write_attribute(w, "type", "usb");
                write_attribute(w, "index", "0");
                write_attribute(w, "model", def->usb_model);
                write_attribute(w, "ports", ports);
                end_element(w);
        }
        for (unsigned n = 1; n <= 3; n++) {
                g_autofree char *model = g_strdup_printf("ich9-uhci%u", n);
                g_autofree char *startport = g_strdup_printf("%u", 2 * n - 2);

                if (!(def->usb_companions & (1u << n)))
                        continue;
                start_element(w, "controller");
                write_attribute(w, "type", "usb");
                write_attribute(w, "index", "0");
                write_attribute(w, "model", model);
                start_element(w, "master");
                write_attribute(w, "startport", startport);
                end_element(w);
                end_element(w);
        }
        if (def->scsi_model) {
                start_element(w, "controller");
                write_attribute(w, "type", "scsi");
                write_attribute(w, "index", "0");
                write_attribute(w, "model", def->scsi_model);
                end_element(w);
        }
        for (guint i = 0; i < len0(def->inputs); i++) {
                const DomainInputDef *in = def->inputs->pdata[i];
                start_element(w, "input");
                write_attribute(w, "type", in->type);
                write_attribute(w, "bus", in->bus);
                end_element(w);
        }
        for (guint i = 0; i < len0(def->sounds); i++) {
                const DomainSoundDef *s = def->sounds->pdata[i];
                g_autofree char *id = g_strdup_printf("%u", s->audio);
                start_element(w, "sound");
                write_attribute(w, "model", s->model);
                if (s->codec) {
                        start_element(w, "codec");
                        write_attribute(w, "type", s->codec);
                        end_element(w);
                }
                start_element(w, "audio");
                write_attribute(w, "id", id);
                end_element(w);
                end_element(w);
        }
        for (guint i = 0; i < len0(def->audios); i++) {
                const DomainAudioDef *a = def->audios->pdata[i];
                g_autofree char *id = g_strdup_printf("%u", a->id);
                start_element(w, "audio");
                write_attribute(w, "id", id);
                write_attribute(w, "type", a->type);
                end_element(w);
        }
        for (guint i = 0; i < len0(def->channels); i++) {
                const DomainChannelDef *ch = def->channels->pdata[i];
                start_element(w, "channel");
                write_attribute(w, "type", ch->type);
                if (ch->source_path) {
                        start_element(w, "source");
                        write_attribute(w, "mode", "bind");
                        write_attribute(w, "path", ch->source_path);
                        end_element(w);
                }
                start_element(w, "target");
                write_attribute(w, "type", "virtio");
                write_attribute(w, "name", ch->name);
                end_element(w);
                end_element(w);
        }
        for (unsigned i = 0; i < def->redirdevs; i++) {
                start_element(w, "redirdev");
                write_attribute(w, "bus", "usb");
                write_attribute(w, "type", "spicevmc");
                end_element(w);
        }
        if (def->rng_backend) {
                start_element(w, "rng");
                write_attribute(w, "model", "virtio");
                if (def->rng_rate_bytes) {
                        g_autofree char *bytes = g_strdup_printf("%" PRIu64, def->rng_rate_bytes);
                        g_autofree char *period = def->rng_rate_period
                                ? g_strdup_printf("%" PRIu64, def->rng_rate_period)
                                : NULL;
                        start_element(w, "rate");
                        write_attribute(w, "bytes", bytes);
                        write_attribute(w, "period", period);
                        end_element(w);
                }
                start_element(w, "backend");
                write_attribute(w, "model", def->rng_backend);
                if (def->rng_device)
                        xmlTextWriterWriteString(w, (const xmlChar *) def->rng_device);
                end_element(w);
                end_element(w);
        }
        if (def->watchdog_model) {
                start_element(w, "watchdog");
                write_attribute(w, "model", def->watchdog_model);
                write_attribute(w, "action", def->watchdog_action);
                end_element(w);
        }
        if (def->memballoon) {
                start_element(w, "memballoon");
                write_attribute(w, "model", def->memballoon);
                write_attribute(w, "autodeflate", def->memballoon_autodeflate);
                write_attribute(w, "freePageReporting", def->memballoon_free_page_reporting);
                end_element(w);
        }
}
