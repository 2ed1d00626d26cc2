/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain XML: a strict subset of libvirt's domain format (see domain-xml.h).
 *
 * Safety. The document is hostile. It is capped at DOMAIN_XML_MAX_BYTES and
 * must not contain NUL bytes, both checked before libxml2 sees it. It is
 * parsed as UTF-8 whatever its declaration says, without network access and
 * without entity substitution, and any <!DOCTYPE> stops the parser at once
 * (from the SAX internalSubset callback, before a single entity declaration
 * is read), so "billion laughs" and external entities never get a chance.
 * libxml2 reports errors through a structured handler that we install for
 * the duration of the parse and restore afterwards: nothing is printed, and
 * the first error (with its line and column) goes into the GError.
 *
 * What is accepted beyond the subset. `virsh dumpxml` output should load
 * where it describes a guest vmigrate can run. The rule:
 *
 *   - What libvirt generates for its own bookkeeping or that describes what
 *     every vmigrate guest gets anyway is accepted and DROPPED:
 *       <domain id='N'> (runtime id), <resource> (cgroup partition),
 *       <seclabel> (security driver labels), <devices><emulator> (vmigrate
 *       probes its own QEMU), <console> when a <serial> exists (libvirt
 *       mirrors the first serial there; without one it becomes serial port
 *       0, as in libvirt), <controller> of types pci, virtio-serial, sata,
 *       ide and fdc (vmigrate lays out buses itself, the same way on both
 *       hosts of a migration), <alias>, <address>, <backingStore> inside
 *       devices, the runtime <target dev='vnetN'/> of an interface, the
 *       runtime <source path='/dev/pts/N'/> of a pty serial, libvirt's own
 *       socket path of a <channel>, <source portid/bridge> of a network
 *       interface, <input type='mouse|keyboard' bus='ps2'> (a PC always has
 *       them), <features> <acpi/>, <apic/>, <pae/> (QEMU's PC defaults),
 *       <timer name='pit' tickpolicy='delay'> (the in-kernel PIT's own),
 *       <vcpu placement='static'>, <cpu match='exact' check='...'
 *       migratable='on'>, <model fallback='forbid'>, <driver name='qemu'>,
 *       <target type='isa-serial'> and its <model name='isa-serial'/>, a
 *       channel target's state='connected', <features><smm state='on'/>
 *       (QEMU's q35 has SMM; secure boot turns it on).
 *   - The devices and settings of a desktop guest (USB and SCSI
 *     controllers, input, sound and audio, channels, USB redirection, RNG,
 *     watchdog, balloon, boot order and menu, CPU topology, vmport, clock,
 *     <pm>, disk <driver> tuning, other applications' <metadata>) are
 *     parsed in domain-xml-devices.c and configured for real; so are the
 *     Hyper-V enlightenments of Windows guests (domain-xml-hyperv.c).
 *   - What a user asked for and vmigrate cannot honour is REFUSED by name
 *     with a reason and "remove it" (e.g. <cputune>,
 *     <hyperv mode='passthrough'>, <pm> with suspend enabled,
 *     <clock offset='variable'>), because dropping it would silently give
 *     the user a different guest than the one they defined.
 *   - Anything else is unknown and refused as such, as are unknown
 *     attributes and namespaced (application-specific) elements.
 *
 * Displays (<graphics>, <video>) are parsed and written by
 * domain-xml-graphics.c, which says what of them is accepted and refused.
 *
 * Dropped things are not written back by domain_def_format(): GetXML
 * returns the definition vmigrate actually runs.
 *
 * One answer for all problems: parse_domain() and parse_devices() go on
 * after a refusal and report the first with "(and N more problems)".
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlwriter.h>

#include "domain-xml-devices.h"
#include "domain-xml-firmware.h"
#include "domain-xml-graphics.h"
#include "domain-xml-hyperv.h"
#include "domain-xml-netdisk.h"
#include "domain-xml-tpm.h"
#include "domain-xml-util.h"
#include "domain-xml.h"
#include "errors.h"
#include "text.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlTextWriter, xmlFreeTextWriter)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

#define DOMAIN_DISKS_MAX 64
#define DOMAIN_INTERFACES_MAX 32
#define DOMAIN_SERIALS_MAX 4 /* isa-serial has four ports */
#define DOMAIN_CPU_FEATURES_MAX 256
#define DOMAIN_CMDLINE_MAX 4096
#define DOMAIN_TITLE_MAX 1024


/* ---- definition lifetime ---- */

static void disk_def_free(DomainDiskDef *d) {
        if (!d)
                return;
        g_free(d->device);
        g_free(d->driver_type);
        g_free(d->cache);
        g_free(d->source_file);
        g_free(d->target_dev);
        g_free(d->target_bus);
        devices_disk_clear(d);
        netdisk_def_clear(d);
        g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainDiskDef, disk_def_free)

static void interface_def_free(DomainInterfaceDef *i) {
        if (!i)
                return;
        g_free(i->type);
        g_free(i->source);
        g_free(i->mac);
        g_free(i->model);
        g_free(i);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainInterfaceDef, interface_def_free)

static void serial_def_free(DomainSerialDef *s) {
        if (!s)
                return;
        g_free(s->type);
        g_free(s->source_path);
        g_free(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainSerialDef, serial_def_free)

static void cpu_feature_def_free(DomainCpuFeatureDef *f) {
        if (!f)
                return;
        g_free(f->name);
        g_free(f->policy);
        g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainCpuFeatureDef, cpu_feature_def_free)

DomainDef *domain_def_new(void) {
        DomainDef *def = g_new0(DomainDef, 1);

        /* "hvm" is the only OS type and always written back, so a fresh
         * definition already carries it and round-trips unchanged. */
        def->os_type = g_strdup("hvm");
        def->vcpus = 1;
        def->cpu_features = g_ptr_array_new_with_free_func((GDestroyNotify)cpu_feature_def_free);
        def->disks = g_ptr_array_new_with_free_func((GDestroyNotify)disk_def_free);
        def->interfaces = g_ptr_array_new_with_free_func((GDestroyNotify)interface_def_free);
        def->serials = g_ptr_array_new_with_free_func((GDestroyNotify)serial_def_free);
        def->graphics = g_ptr_array_new_with_free_func((GDestroyNotify)domain_graphics_def_free);
        def->videos = g_ptr_array_new_with_free_func((GDestroyNotify)domain_video_def_free);
        devices_def_init(def);
        return def;
}

void domain_def_free(DomainDef *def) {
        if (!def)
                return;
        g_free(def->type);
        g_free(def->name);
        g_free(def->title);
        g_free(def->description);
        g_free(def->os_type);
        g_free(def->vcpu_cpuset);
        g_free(def->os_arch);
        g_free(def->os_machine);
        g_free(def->os_loader);
        g_free(def->os_kernel);
        g_free(def->os_initrd);
        g_free(def->os_cmdline);
        g_free(def->cpu_mode);
        g_free(def->cpu_model);
        g_free(def->on_poweroff);
        g_free(def->on_reboot);
        g_free(def->on_crash);
        if (def->cpu_features)
                g_ptr_array_unref(def->cpu_features);
        if (def->disks)
                g_ptr_array_unref(def->disks);
        if (def->interfaces)
                g_ptr_array_unref(def->interfaces);
        if (def->serials)
                g_ptr_array_unref(def->serials);
        if (def->graphics)
                g_ptr_array_unref(def->graphics);
        if (def->videos)
                g_ptr_array_unref(def->videos);
        g_strfreev(def->require_interfaces);
        g_strfreev(def->require_hooks);
        devices_def_clear(def);
        firmware_def_clear(def);
        tpm_def_clear(def);
        g_free(def);
}

/* ---- names and UUIDs ---- */

bool domain_uuid_parse(const char *s, char ret_canonical[37]) {
        char out[37];
        size_t len, j = 0;
        bool dashed;

        if (!s)
                return false;
        len = strlen(s);
        if (len == 36)
                dashed = true;
        else if (len == 32)
                dashed = false;
        else
                return false;

        for (size_t i = 0; i < len; i++) {
                bool dash_here = dashed && (i == 8 || i == 13 || i == 18 || i == 23);

                if (dash_here) {
                        if (s[i] != '-')
                                return false;
                        continue;
                }
                if (!g_ascii_isxdigit(s[i]))
                        return false;
                /* Output dashes go at 8, 13, 18, 23 of the canonical form. */
                if (j == 8 || j == 13 || j == 18 || j == 23)
                        out[j++] = '-';
                out[j++] = g_ascii_tolower(s[i]);
        }
        out[36] = '\0';
        memcpy(ret_canonical, out, sizeof(out));
        return true;
}

void domain_uuid_generate(char ret_canonical[37]) {
        g_autofree char *u = g_uuid_string_random();

        /* g_uuid_string_random() already is canonical lower-case; parse to be sure. */
        if (!domain_uuid_parse(u, ret_canonical))
                g_assert_not_reached();
}

static const struct {
        const char *name;
        uint64_t scale;
} memory_units[] = {
        /* libvirt's units, matched case-insensitively as libvirt does:
         * a bare letter or "XiB" is binary, "XB" is decimal. */
        { "b", 1ULL },       { "byte", 1ULL },      { "bytes", 1ULL },
        { "k", 1ULL << 10 }, { "KiB", 1ULL << 10 }, { "KB", 1000ULL },
        { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "MB", 1000ULL * 1000 },
        { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "GB", 1000ULL * 1000 * 1000 },
        { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 }, { "TB", 1000ULL * 1000 * 1000 * 1000 },
        { "P", 1ULL << 50 }, { "PiB", 1ULL << 50 }, { "PB", 1000ULL * 1000 * 1000 * 1000 * 1000 },
        { "E", 1ULL << 60 }, { "EiB", 1ULL << 60 }, { "EB", 1000ULL * 1000 * 1000 * 1000 * 1000 * 1000 },
};

static int parse_memory(xmlNode *node, uint64_t *ret_bytes, GError **error) {
        g_autofree char *unit = NULL, *text = NULL, *what = NULL;
        uint64_t scale = 1024, value;
        int r;

        r = check_attributes(node, STRV("unit"), error);
        if (r < 0)
                return r;
        unit = get_attr(node, "unit");
        if (unit) {
                bool found = false;

                for (size_t i = 0; i < G_N_ELEMENTS(memory_units); i++)
                        if (g_ascii_strcasecmp(unit, memory_units[i].name) == 0) {
                                scale = memory_units[i].scale;
                                found = true;
                                break;
                        }
                if (!found) {
                        g_autofree char *q = text_quote(unit, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<%s unit='%s'>: unknown unit; use KiB, MiB, GiB, TiB or bytes",
                                            node_name(node), q);
                }
        }

        r = get_text(node, true, &text, error);
        if (r < 0)
                return r;
        what = g_strdup_printf("<%s>", node_name(node));
        r = parse_u64(what, text, &value, error);
        if (r < 0)
                return r;

        if (value > DOMAIN_MEMORY_MAX_BYTES / scale)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<%s>: %s %s is above the maximum; the nearest valid value is 16 TiB "
                                    "(<%s unit='GiB'>16384</%s>)",
                                    node_name(node), text, unit ? unit : "KiB", node_name(node), node_name(node));
        value *= scale;
        if (value == 0)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<%s>: a guest needs memory; the smallest valid value is 1 MiB", node_name(node));
        /* QEMU sizes guest RAM in whole MiB on a PC (as libvirt, round up:
         * the guest gets at least what was asked for). GetXML gives the
         * rounded size. */
        value = (value + DOMAIN_MEMORY_MIN_BYTES - 1) / DOMAIN_MEMORY_MIN_BYTES * DOMAIN_MEMORY_MIN_BYTES;
        if (value > DOMAIN_MEMORY_MAX_BYTES)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<%s>: %s %s is above the maximum; the nearest valid value is 16 TiB "
                                    "(<%s unit='GiB'>16384</%s>)",
                                    node_name(node), text, unit ? unit : "KiB", node_name(node), node_name(node));

        *ret_bytes = value;
        return 0;
}

static void generate_mac(char **ret) {
        /* QEMU's OUI, as libvirt does. */
        *ret = g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                               g_random_int_range(0, 256), g_random_int_range(0, 256));
}

/* ---- sections ---- */

static int parse_os(xmlNode *node, DomainDef *def, GError **error) {
        bool seen_type = false, seen_loader = false, seen_kernel = false, seen_initrd = false,
             seen_cmdline = false, seen_nvram = false, seen_firmware = false;
        int r;

        r = parse_os_attributes(node, def, error);
        if (r < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "type")) {
                        g_autofree char *text = NULL, *arch = NULL, *machine = NULL;

                        if ((r = check_once(&seen_type, c, node, error)) < 0 ||
                            (r = check_attributes(c, STRV("arch", "machine"), error)) < 0 ||
                            (r = get_text(c, true, &text, error)) < 0)
                                return r;
                        if (!g_str_equal(text, "hvm")) {
                                g_autofree char *q = text_quote(text, -1);
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<os><type>: unknown OS type '%s'; vmigrate runs 'hvm' guests", q);
                        }
                        arch = get_attr(c, "arch");
                        if (arch &&
                            (r = check_attr_choice(c, "arch", arch, "architecture",
                                                   STRV("x86_64", "i686", "aarch64", "armv7l", "ppc64",
                                                        "ppc64le", "riscv64", "s390x"),
                                                   error)) < 0)
                                return r;
                        machine = get_attr(c, "machine");
                        if (machine && !is_token(machine, 64, "._-")) {
                                g_autofree char *q = text_quote(machine, -1);
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<type machine='%s'>: not a machine type name (letters, "
                                                    "digits, '.', '_', '-')",
                                                    q);
                        }
                        g_free(def->os_type);
                        def->os_type = g_steal_pointer(&text);
                        def->os_arch = g_steal_pointer(&arch);
                        def->os_machine = g_steal_pointer(&machine);
                } else if (node_is(c, "loader")) {
                        if ((r = check_once(&seen_loader, c, node, error)) < 0 ||
                            (r = parse_os_loader(c, def, error)) < 0)
                                return r;
                } else if (node_is(c, "nvram")) {
                        if ((r = check_once(&seen_nvram, c, node, error)) < 0 ||
                            (r = parse_os_nvram(c, def, error)) < 0)
                                return r;
                } else if (node_is(c, "firmware")) {
                        if ((r = check_once(&seen_firmware, c, node, error)) < 0 ||
                            (r = parse_os_firmware(c, def, error)) < 0)
                                return r;
                } else if (node_is(c, "kernel") || node_is(c, "initrd")) {
                        g_autofree char *text = NULL, *what = NULL;
                        char **field = node_is(c, "kernel") ? &def->os_kernel : &def->os_initrd;
                        bool *seen = node_is(c, "kernel") ? &seen_kernel : &seen_initrd;

                        if ((r = no_attributes(c, error)) < 0)
                                return r;
                        if ((r = check_once(seen, c, node, error)) < 0 ||
                            (r = get_text(c, false, &text, error)) < 0)
                                return r;
                        what = g_strdup_printf("<os><%s>", node_name(c));
                        if ((r = check_path(what, text, error)) < 0)
                                return r;
                        *field = g_steal_pointer(&text);
                } else if (node_is(c, "cmdline")) {
                        g_autofree char *text = NULL;

                        if ((r = check_once(&seen_cmdline, c, node, error)) < 0 ||
                            (r = no_attributes(c, error)) < 0 || (r = get_text(c, false, &text, error)) < 0)
                                return r;
                        if (has_control_chars(text))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<os><cmdline>: contains a newline or control character");
                        if (strlen(text) > DOMAIN_CMDLINE_MAX)
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<os><cmdline>: longer than %d bytes",
                                                    DOMAIN_CMDLINE_MAX);
                        def->os_cmdline = g_steal_pointer(&text);
                } else if (node_is(c, "boot")) {
                        if ((r = devices_parse_os_boot(c, def, error)) < 0)
                                return r;
                } else if (node_is(c, "bootmenu")) {
                        if ((r = devices_parse_bootmenu(c, def, error)) < 0)
                                return r;
                } else if (strv_contains(STRV("smbios", "bios", "initarg", "acpi",
                                              "dtb", "init", "initenv", "initdir", "inituser",
                                              "initgroup"),
                                         node_name(c)))
                        return unsupported_element(c, node, NULL, error);
                else
                        return unknown_element(c, node, error);
        }

        if (!seen_type)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<os>: <type>hvm</type> is required");
        if (def->os_initrd && !def->os_kernel)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<os>: <initrd> needs a <kernel>");
        if (def->os_cmdline && !def->os_kernel)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<os>: <cmdline> needs a <kernel>");
        return check_os_firmware(def, error);
}

static int parse_cpu(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *mode = NULL, *match = NULL, *check = NULL, *migratable = NULL;
        bool seen_model = false, mode_given;
        int r;

        if ((r = check_attributes(node, STRV("mode", "match", "check", "migratable"), error)) < 0)
                return r;
        mode = get_attr(node, "mode");
        mode_given = mode != NULL;
        if (!mode)
                mode = g_strdup("custom"); /* libvirt's default */
        if ((r = check_attr_choice(node, "mode", mode, "mode",
                                   STRV("custom", "host-model", "host-passthrough", "maximum"), error)) < 0)
                return r;
        match = get_attr(node, "match");
        if (match &&
            (r = check_attr_choice(node, "match", match, "match; vmigrate always matches exactly",
                                   STRV("exact"), error)) < 0)
                return r;
        check = get_attr(node, "check");
        if (check &&
            (r = check_attr_choice(node, "check", check, "check", STRV("none", "partial", "full"), error)) <
                    0)
                return r;
        migratable = get_attr(node, "migratable");
        if (migratable &&
            (r = check_attr_choice(node, "migratable", migratable,
                                   "value; a vmigrate guest must stay migratable", STRV("on"), error)) < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "model")) {
                        g_autofree char *text = NULL, *fallback = NULL;

                        if ((r = check_once(&seen_model, c, node, error)) < 0 ||
                            (r = check_attributes(c, STRV("fallback"), error)) < 0 ||
                            (r = get_text(c, true, &text, error)) < 0)
                                return r;
                        fallback = get_attr(c, "fallback");
                        if (fallback &&
                            (r = check_attr_choice(c, "fallback", fallback,
                                                   "fallback; vmigrate never substitutes a CPU model",
                                                   STRV("forbid"), error)) < 0)
                                return r;
                        if (!is_token(text, 64, "._-")) {
                                g_autofree char *q = text_quote(text, -1);
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<cpu><model>: '%s' is not a CPU model name", q);
                        }
                        def->cpu_model = g_steal_pointer(&text);
                } else if (node_is(c, "feature")) {
                        g_autoptr(DomainCpuFeatureDef) f = g_new0(DomainCpuFeatureDef, 1);

                        if ((r = check_empty(c, STRV("policy", "name"), error)) < 0 ||
                            (r = require_attr(c, "name", NULL, &f->name, error)) < 0)
                                return r;
                        f->policy = get_attr(c, "policy");
                        if (!f->policy)
                                f->policy = g_strdup("require"); /* libvirt's default */
                        if ((r = check_attr_choice(c, "policy", f->policy, "policy",
                                                   STRV("require", "disable", "optional", "force", "forbid"),
                                                   error)) < 0)
                                return r;
                        if (!is_token(f->name, 64, "._-")) {
                                g_autofree char *q = text_quote(f->name, -1);
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<feature name='%s'> in <cpu>: not a CPU feature name",
                                                    q);
                        }
                        for (guint i = 0; i < def->cpu_features->len; i++) {
                                DomainCpuFeatureDef *o = g_ptr_array_index(def->cpu_features, i);
                                if (g_str_equal(o->name, f->name))
                                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                            "<feature name='%s'> given twice in <cpu>",
                                                            f->name);
                        }
                        if (def->cpu_features->len >= DOMAIN_CPU_FEATURES_MAX)
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<cpu>: more than %d <feature> elements",
                                                    DOMAIN_CPU_FEATURES_MAX);
                        g_ptr_array_add(def->cpu_features, g_steal_pointer(&f));
                } else if (node_is(c, "topology")) {
                        if ((r = devices_parse_topology(c, def, error)) < 0)
                                return r;
                } else if (strv_contains(STRV("vendor", "cache", "numa", "maxphysaddr"),
                                         node_name(c)))
                        return unsupported_element(c, node, NULL, error);
                else
                        return unknown_element(c, node, error);
        }

        /* <cpu><topology/></cpu> alone: the default CPU, so arranged. */
        if (!mode_given && !def->cpu_model && def->cpu_features->len == 0 && def->cpu_sockets)
                return 0;
        if (g_str_equal(mode, "custom") && !def->cpu_model)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<cpu mode='custom'> needs a <model> (or use mode='host-model')");
        if (!g_str_equal(mode, "custom") && def->cpu_model)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<cpu mode='%s'>: <model> only applies to mode='custom'; remove it",
                                    mode);
        def->cpu_mode = g_steal_pointer(&mode);
        return 0;
}

static int parse_disk(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainDiskDef) d = g_new0(DomainDiskDef, 1);
        g_autofree char *type = NULL;
        bool seen_driver = false, seen_source = false, seen_target = false, seen_ro = false,
             seen_share = false;
        int r;

        if ((r = check_attributes(node, STRV("type", "device"), error)) < 0 ||
            (r = require_attr(node, "type", "(vmigrate supports type='file', 'block' and 'network')", &type,
                              error)) < 0 ||
            (r = check_attr_choice(node, "type", type, "disk type", STRV("file", "block", "network"), error)) < 0)
                return r;
        d->block = g_str_equal(type, "block");
        d->device = get_attr(node, "device");
        if (!d->device)
                d->device = g_strdup("disk");
        if ((r = check_attr_choice(node, "device", d->device, "device", STRV("disk", "cdrom"), error)) < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "driver")) {
                        if ((r = check_once(&seen_driver, c, node, error)) < 0 ||
                            (r = devices_parse_disk_driver(c, d, error)) < 0)
                                return r;
                } else if (node_is(c, "source") && g_str_equal(type, "network")) {
                        if ((r = check_once(&seen_source, c, node, error)) < 0 ||
                            (r = parse_disk_network_source(c, d, error)) < 0)
                                return r;
                } else if (node_is(c, "auth")) {
                        return refuse_disk_auth(c, error);
                } else if (node_is(c, "source")) {
                        /* index is libvirt's runtime numbering of the backing chain. */
                        const char *attr = d->block ? "dev" : "file";

                        if ((r = check_once(&seen_source, c, node, error)) < 0 ||
                            (r = check_empty(c, d->block ? STRV("dev", "index") : STRV("file", "index"),
                                             error)) < 0 ||
                            (r = require_attr(c, attr, NULL, &d->source_file, error)) < 0 ||
                            (r = check_path(d->block ? "<disk><source dev>" : "<disk><source file>",
                                            d->source_file, error)) < 0)
                                return r;
                } else if (node_is(c, "target")) {
                        if ((r = check_once(&seen_target, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("dev", "bus"), error)) < 0 ||
                            (r = require_attr(c, "dev", "(e.g. dev='vda')", &d->target_dev, error)) < 0)
                                return r;
                        d->target_bus = get_attr(c, "bus");
                        if (d->target_bus &&
                            (r = check_attr_choice(c, "bus", d->target_bus, "bus",
                                                   STRV("virtio", "sata", "ide", "scsi"), error)) < 0)
                                return r;
                } else if (node_is(c, "readonly")) {
                        if ((r = check_once(&seen_ro, c, node, error)) < 0 ||
                            (r = check_empty(c, NULL, error)) < 0)
                                return r;
                        d->readonly = true;
                } else if (node_is(c, "shareable")) {
                        if ((r = check_once(&seen_share, c, node, error)) < 0 ||
                            (r = check_empty(c, NULL, error)) < 0)
                                return r;
                        d->shareable = true;
                } else if (strv_contains(STRV("alias", "address", "backingStore"), node_name(c)))
                        continue; /* libvirt's runtime bookkeeping */
                else if (node_is(c, "boot")) {
                        if ((r = devices_parse_boot_order(c, &d->boot_order, error)) < 0)
                                return r;
                } else if (strv_contains(STRV("serial", "wwn", "vendor", "product", "iotune",
                                            "encryption", "auth", "geometry", "blockio", "mirror",
                                            "transient"),
                                       node_name(c)))
                        return unsupported_element(c, node, NULL, error);
                else
                        return unknown_element(c, node, error);
        }

        if (!d->target_dev)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<disk>: <target dev='...'/> is required");
        {
                const char *t = d->target_dev;
                size_t n = strlen(t);
                bool ok = n >= 3 && n <= 5 &&
                        (g_str_has_prefix(t, "vd") || g_str_has_prefix(t, "sd") ||
                         g_str_has_prefix(t, "hd"));

                for (size_t i = 2; ok && i < n; i++)
                        if (!g_ascii_islower(t[i]))
                                ok = false;
                if (!ok) {
                        g_autofree char *q = text_quote(t, -1);
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<disk><target dev='%s'>: not a disk name; use vd, sd or hd followed "
                                "by 1-3 letters (vda, sdb, hdc)",
                                q);
                }
        }
        if (!d->target_bus) {
                /* What libvirt derives from the name. */
                if (g_str_has_prefix(d->target_dev, "vd"))
                        d->target_bus = g_strdup("virtio");
                else if (g_str_has_prefix(d->target_dev, "sd"))
                        d->target_bus = g_strdup("scsi");
                else
                        d->target_bus = g_strdup("ide");
        }
        if (g_str_equal(type, "network") && (r = check_disk_network(d, error)) < 0)
                return r;
        if (!d->source_file && !d->protocol && g_str_equal(d->device, "disk"))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<disk device='disk'> (target %s): <source %s='...'/> is required",
                                    d->target_dev, d->block ? "dev" : "file");

        for (guint i = 0; i < def->disks->len; i++) {
                DomainDiskDef *o = g_ptr_array_index(def->disks, i);
                if (g_str_equal(o->target_dev, d->target_dev))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<disk><target dev='%s'>: two disks have the same target device",
                                            d->target_dev);
        }
        if (def->disks->len >= DOMAIN_DISKS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<devices>: more than %d <disk> elements",
                                    DOMAIN_DISKS_MAX);
        g_ptr_array_add(def->disks, g_steal_pointer(&d));
        return 0;
}

static int parse_interface(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainInterfaceDef) n = g_new0(DomainInterfaceDef, 1);
        bool seen_source = false, seen_mac = false, seen_model = false, seen_target = false;
        int r;

        if ((r = check_attributes(node, STRV("type"), error)) < 0 ||
            (r = require_attr(node, "type", "(bridge, network or user)", &n->type, error)) < 0 ||
            (r = check_attr_choice(node, "type", n->type, "interface type",
                                   STRV("bridge", "network", "user"), error)) < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "source")) {
                        if ((r = check_once(&seen_source, c, node, error)) < 0)
                                return r;
                        if (g_str_equal(n->type, "bridge")) {
                                if ((r = check_empty(c, STRV("bridge"), error)) < 0 ||
                                    (r = require_attr(c, "bridge", NULL, &n->source, error)) < 0)
                                        return r;
                                if (!bridge_name_is_valid(n->source)) {
                                        g_autofree char *q = text_quote(n->source, -1);
                                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                            "<source bridge='%s'>: not a bridge name (1-15 "
                                                            "bytes, no '/', ':' or whitespace)",
                                                            q);
                                }
                        } else if (g_str_equal(n->type, "network")) {
                                /* portid and bridge are what libvirt's running network assigned. */
                                if ((r = check_empty(c, STRV("network", "portid", "bridge"), error)) < 0 ||
                                    (r = require_attr(c, "network", NULL, &n->source, error)) < 0)
                                        return r;
                                if (!is_token(n->source, 64, "_.:+-") || n->source[0] == '.') {
                                        g_autofree char *q = text_quote(n->source, -1);
                                        return vm_error_set(
                                                error, VM_ERROR_INVALID_XML,
                                                "<source network='%s'>: not a network name (1-64 "
                                                "letters, digits, '_', '.', ':', '+', '-')",
                                                q);
                                }
                        } else
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<interface type='user'> takes no <source>; remove it");
                } else if (node_is(c, "mac")) {
                        g_autofree char *addr = NULL;

                        if ((r = check_once(&seen_mac, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("address"), error)) < 0 ||
                            (r = require_attr(c, "address", NULL, &addr, error)) < 0 ||
                            (r = parse_mac(addr, &n->mac, error)) < 0)
                                return r;
                } else if (node_is(c, "model")) {
                        if ((r = check_once(&seen_model, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("type"), error)) < 0 ||
                            (r = require_attr(c, "type", NULL, &n->model, error)) < 0 ||
                            (r = check_attr_choice(c, "type", n->model, "NIC model",
                                                   STRV("virtio", "e1000", "e1000e", "rtl8139"), error)) < 0)
                                return r;
                } else if (node_is(c, "target")) {
                        /* The tap device libvirt created (vnetN); vmigrate makes its own. */
                        if ((r = check_once(&seen_target, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("dev", "managed"), error)) < 0)
                                return r;
                } else if (strv_contains(STRV("alias", "address"), node_name(c)))
                        continue;
                else if (node_is(c, "boot")) {
                        if ((r = devices_parse_boot_order(c, &n->boot_order, error)) < 0)
                                return r;
                } else if (strv_contains(STRV("driver", "rom", "link", "mtu", "bandwidth", "filterref",
                                            "virtualport", "vlan", "ip", "route", "script", "coalesce",
                                            "tune", "guest", "teaming", "backend", "port", "acpi"),
                                       node_name(c)))
                        return unsupported_element(c, node, NULL, error);
                else
                        return unknown_element(c, node, error);
        }

        if (!n->source && !g_str_equal(n->type, "user"))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<interface type='%s'>: <source %s='...'/> is required", n->type,
                                    n->type);
        if (!n->mac)
                /* Generated once at definition so the guest keeps its MAC across
                 * restarts and migrations, as libvirt does. */
                generate_mac(&n->mac);
        for (guint i = 0; i < def->interfaces->len; i++) {
                DomainInterfaceDef *o = g_ptr_array_index(def->interfaces, i);
                if (g_str_equal(o->mac, n->mac))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<mac address='%s'>: two interfaces have the same MAC address",
                                            n->mac);
        }
        if (def->interfaces->len >= DOMAIN_INTERFACES_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<devices>: more than %d <interface> elements", DOMAIN_INTERFACES_MAX);
        g_ptr_array_add(def->interfaces, g_steal_pointer(&n));
        return 0;
}

#define SERIAL_PORT_UNSET UINT_MAX

static int parse_serial(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(DomainSerialDef) s = g_new0(DomainSerialDef, 1);
        bool seen_source = false, seen_target = false;
        int r;

        s->port = SERIAL_PORT_UNSET;
        if ((r = check_attributes(node, STRV("type"), error)) < 0 ||
            (r = require_attr(node, "type", "(pty, file, null or stdio)", &s->type, error)) < 0 ||
            (r = check_attr_choice(node, "type", s->type, "serial type",
                                   STRV("pty", "file", "null", "stdio"), error)) < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "source")) {
                        g_autofree char *path = NULL;

                        if ((r = check_once(&seen_source, c, node, error)) < 0 ||
                            (r = check_empty(c, STRV("path"), error)) < 0)
                                return r;
                        if (g_str_equal(s->type, "null") || g_str_equal(s->type, "stdio"))
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<serial type='%s'> takes no <source>; remove it",
                                                    s->type);
                        path = get_attr(c, "path");
                        if (g_str_equal(s->type, "file")) {
                                if (!path)
                                        return vm_error_set(
                                                error, VM_ERROR_INVALID_XML,
                                                "<serial type='file'><source>: attribute 'path' is "
                                                "required");
                                if ((r = check_path("<serial><source path>", path, error)) < 0)
                                        return r;
                                s->source_path = g_steal_pointer(&path);
                        }
                        /* For a pty, path is the /dev/pts/N libvirt got: dropped. */
                } else if (node_is(c, "target")) {
                        g_autofree char *port = NULL, *type = NULL;

                        if ((r = check_once(&seen_target, c, node, error)) < 0 ||
                            (r = check_attributes(c, STRV("port", "type"), error)) < 0)
                                return r;
                        type = get_attr(c, "type");
                        if (type &&
                            (r = check_attr_choice(c, "type", type, "serial target type", STRV("isa-serial"),
                                                   error)) < 0)
                                return r;
                        port = get_attr(c, "port");
                        if (port) {
                                uint64_t v;

                                if ((r = parse_u64("<serial><target port>", port, &v, error)) < 0)
                                        return r;
                                if (v >= DOMAIN_SERIALS_MAX)
                                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                            "<serial><target port='%" PRIu64
                                                            "'>: the port must be 0 to %d",
                                                            v, DOMAIN_SERIALS_MAX - 1);
                                s->port = (unsigned)v;
                        }
                        for_each_child_element(m, c, r, error) {
                                g_autofree char *name = NULL;

                                if (!node_is(m, "model"))
                                        return unknown_element(m, c, error);
                                if ((r = check_empty(m, STRV("name"), error)) < 0)
                                        return r;
                                name = get_attr(m, "name");
                                if (name &&
                                    (r = check_attr_choice(m, "name", name, "serial model",
                                                           STRV("isa-serial"), error)) < 0)
                                        return r;
                        }
                } else if (node_is(c, "alias"))
                        continue;
                else if (strv_contains(STRV("log", "protocol"), node_name(c)))
                        return unsupported_element(c, node, NULL, error);
                else
                        return unknown_element(c, node, error);
        }

        if (g_str_equal(s->type, "file") && !s->source_path)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<serial type='file'>: <source path='...'/> is required");
        if (s->port != SERIAL_PORT_UNSET)
                for (guint i = 0; i < def->serials->len; i++) {
                        DomainSerialDef *o = g_ptr_array_index(def->serials, i);
                        if (o->port == s->port)
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<serial><target port='%u'>: two serial ports use port %u", s->port,
                                        s->port);
                }
        if (def->serials->len >= DOMAIN_SERIALS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<devices>: more than %d <serial> elements",
                                    DOMAIN_SERIALS_MAX);
        g_ptr_array_add(def->serials, g_steal_pointer(&s));
        return 0;
}

static void assign_serial_ports(DomainDef *def) {
        /* Ports not given take the lowest free one, in document order, as libvirt does. */
        for (guint i = 0; i < def->serials->len; i++) {
                DomainSerialDef *s = g_ptr_array_index(def->serials, i);

                if (s->port != SERIAL_PORT_UNSET)
                        continue;
                for (unsigned port = 0;; port++) {
                        bool used = false;

                        for (guint j = 0; j < def->serials->len; j++)
                                if (((DomainSerialDef *)g_ptr_array_index(def->serials, j))->port == port)
                                        used = true;
                        if (!used) {
                                s->port = port;
                                break;
                        }
                }
        }
}

/* Each device on its own: a refusal is counted in problems and the rest are
 * still looked at, so that one answer lists what a document needs fixed. */
static int parse_devices(xmlNode *node, DomainDef *def, Problems *problems, GError **error) {
        g_autoptr(GError) e = NULL;
        int r;

        if ((r = no_attributes(node, error)) < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "disk"))
                        r = parse_disk(c, def, &e);
                else if (node_is(c, "interface"))
                        r = parse_interface(c, def, &e);
                else if (node_is(c, "serial"))
                        r = parse_serial(c, def, &e);
                else if (node_is(c, "emulator"))
                        r = 0; /* see the top of this file */
                else if ((r = devices_parse_device(c, node, def, &e)) != 0)
                        ; /* domain-xml-devices.c */
                else if (node_is(c, "graphics"))
                        r = domain_graphics_parse(c, def, &e);
                else if (node_is(c, "video"))
                        r = domain_video_parse(c, def, &e);
                else if (node_is(c, "tpm"))
                        r = tpm_parse(c, def, &e);
                else if (strv_contains(STRV("hostdev", "filesystem", "redirfilter", "smartcard", "hub",
                                            "parallel", "panic", "shmem", "iommu", "vsock", "lease",
                                            "memory", "nvram", "crypto", "pstore"),
                                       node_name(c)))
                        r = unsupported_element(c, node, NULL, &e);
                else
                        r = unknown_element(c, node, &e);
                if (r < 0)
                        problems_add(problems, &e);
        }
        /* Defaults and references between devices: only once the devices
         * themselves are right, or one mistake would be counted twice. */
        if (!problems->first && (r = devices_finish(node, def, &e)) < 0)
                problems_add(problems, &e);
        assign_serial_ports(def);
        return domain_displays_finish(def, error);
}

bool domain_hook_name_is_valid(const char *name) {
        return name && name[0] != '.' && is_token(name, DOMAIN_HOOK_NAME_MAX, "._-");
}

bool domain_def_requires_interface(const DomainDef *def, const DomainInterfaceDef *iface) {
        return def->require_interfaces && iface->mac &&
               g_strv_contains((const char *const *)def->require_interfaces, iface->mac);
}

bool domain_def_requires_hook(const DomainDef *def, const char *hook) {
        return def->require_hooks && g_strv_contains((const char *const *)def->require_hooks, hook);
}

static bool node_is_ours(const xmlNode *node) {
        return node->ns && node->ns->href && g_str_equal((const char *)node->ns->href, DOMAIN_XMLNS_MIGRATION);
}

static char *node_qname(const xmlNode *node) {
        g_autofree char *n = text_quote(node_name(node), -1);
        if (node->ns && node->ns->prefix)
                return g_strdup_printf("%s:%s", (const char *)node->ns->prefix, n);
        return g_steal_pointer(&n);
}

/* <vmigrate:require interface='MAC'/> or <vmigrate:require hook='NAME'/>. */
static int parse_require(xmlNode *node, GStrvBuilder *macs, GStrvBuilder *hooks, GPtrArray *seen,
                         GError **error) {
        g_autofree char *iface = NULL, *hook = NULL, *value = NULL;
        int r;

        if ((r = check_empty(node, STRV("interface", "hook"), error)) < 0)
                return r;
        iface = get_attr(node, "interface");
        hook = get_attr(node, "hook");
        if (!!iface == !!hook)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<vmigrate:require>: give exactly one of 'interface' (a MAC address) or "
                                    "'hook' (a hook's file name)");
        if (iface) {
                if ((r = parse_mac(iface, &value, error)) < 0) {
                        g_prefix_error(error, "<vmigrate:require interface>: ");
                        return r;
                }
        } else {
                if (!domain_hook_name_is_valid(hook)) {
                        g_autofree char *q = text_quote(hook, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<vmigrate:require hook='%s'>: not a hook name (1-%d letters, "
                                            "digits, '.', '_', '-', not starting with '.')",
                                            q, DOMAIN_HOOK_NAME_MAX);
                }
                value = g_strdup_printf("hook:%s", hook);
        }
        for (guint i = 0; i < seen->len; i++)
                if (g_str_equal(seen->pdata[i], value))
                        return vm_error_set(error, VM_ERROR_INVALID_XML, "<vmigrate:require %s='%s'> given twice",
                                            iface ? "interface" : "hook", iface ? value : hook);
        if (seen->len >= 2 * DOMAIN_INTERFACES_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<vmigrate:migration>: more than %d requirements",
                                    2 * DOMAIN_INTERFACES_MAX);
        g_ptr_array_add(seen, g_strdup(value));
        if (iface)
                g_strv_builder_add(macs, value);
        else
                g_strv_builder_add(hooks, hook);
        return 0;
}

/* <vmigrate:priority>N</vmigrate:priority>: the order of an evacuation
 * that asks for it (higher leaves first). */
static int parse_priority(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *text = NULL;
        uint64_t v;
        int r;

        if ((r = no_attributes(node, error)) < 0 || (r = get_text(node, true, &text, error)) < 0 ||
            (r = parse_u64("<vmigrate:priority>", text, &v, error)) < 0)
                return r;
        if (v > DOMAIN_PRIORITY_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<vmigrate:priority>: %s is above the maximum of %d", text, DOMAIN_PRIORITY_MAX);
        def->priority = (unsigned) v;
        def->has_priority = true;
        return 0;
}

/* <metadata> is where libvirt keeps applications' data, each in its own
 * namespace. vmigrate's own is understood; other applications' elements
 * (libosinfo's, virt-manager's, Cockpit's) are kept verbatim and given back
 * by GetXML: metadata is theirs. */
static int parse_metadata(xmlNode *node, DomainDef *def, GError **error) {
        g_autoptr(GStrvBuilder) macs = g_strv_builder_new();
        g_autoptr(GStrvBuilder) hooks = g_strv_builder_new();
        g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
        bool seen_migration = false, seen_priority = false;
        int r;

        if ((r = no_attributes(node, error)) < 0)
                return r;
        for (xmlNode *c = node->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE) {
                        if ((r = classify_child(c, node, error)) < 0)
                                return r;
                        continue;
                }
                if (!node_is_ours(c)) {
                        if ((r = devices_parse_metadata_other(c, def, error)) < 0)
                                return r;
                        continue;
                }
                if (!node_is(c, "migration")) {
                        g_autofree char *n = node_qname(c);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<%s> in <metadata> is not supported by vmigrate: only "
                                            "<migration xmlns='%s'> is; remove it",
                                            n, DOMAIN_XMLNS_MIGRATION);
                }
                if ((r = check_once(&seen_migration, c, node, error)) < 0 || (r = no_attributes(c, error)) < 0)
                        return r;
                for (xmlNode *q = c->children; q; q = q->next) {
                        if (q->type != XML_ELEMENT_NODE) {
                                if ((r = classify_child(q, c, error)) < 0)
                                        return r;
                                continue;
                        }
                        if (node_is_ours(q) && node_is(q, "priority")) {
                                if ((r = check_once(&seen_priority, q, c, error)) < 0 ||
                                    (r = parse_priority(q, def, error)) < 0)
                                        return r;
                                continue;
                        }
                        if (!node_is_ours(q) || !node_is(q, "require")) {
                                g_autofree char *n = node_qname(q);
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "unknown element <%s> in <vmigrate:migration>: only "
                                                    "<vmigrate:require> and <vmigrate:priority> are known",
                                                    n);
                        }
                        if ((r = parse_require(q, macs, hooks, seen, error)) < 0)
                                return r;
                }
        }
        g_strfreev(def->require_interfaces);
        g_strfreev(def->require_hooks);
        def->require_interfaces = g_strv_builder_end(macs);
        def->require_hooks = g_strv_builder_end(hooks);
        if (!def->require_interfaces[0])
                g_clear_pointer(&def->require_interfaces, g_strfreev);
        if (!def->require_hooks[0])
                g_clear_pointer(&def->require_hooks, g_strfreev);
        return 0;
}

static bool type_token_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 32 || !g_ascii_islower(s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_islower(s[i]) && !g_ascii_isdigit(s[i]))
                        return false;
        return true;
}

/* What parse_domain() has seen so far. */
typedef struct DomainSeen {
        bool name, uuid, title, description, memory, current, vcpu, os, cpu, poweroff, reboot, crash, devices,
                features, clock, pm, metadata;
        uint64_t current_bytes;
} DomainSeen;

/* One child of <domain>. */
static int parse_domain_child(xmlNode *c, xmlNode *root, DomainDef *def, DomainSeen *seen, Problems *problems,
                              GError **error) {
        int r;

        if (node_is(c, "name")) {
                const char *why = NULL;

                if ((r = check_once(&seen->name, c, root, error)) < 0 ||
                    (r = no_attributes(c, error)) < 0 ||
                    (r = get_text(c, false, &def->name, error)) < 0)
                        return r;
                if (!domain_name_is_valid(def->name, &why))
                        return vm_error_set(error, VM_ERROR_INVALID_XML, "<name>: %s", why);
        } else if (node_is(c, "uuid")) {
                g_autofree char *text = NULL;

                if ((r = check_once(&seen->uuid, c, root, error)) < 0 ||
                    (r = no_attributes(c, error)) < 0 || (r = get_text(c, true, &text, error)) < 0)
                        return r;
                if (!domain_uuid_parse(text, def->uuid)) {
                        g_autofree char *q = text_quote(text, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<uuid>: '%s' is not a UUID (32 hex digits, optionally "
                                            "dashed)",
                                            q);
                }
                if (g_str_equal(def->uuid, "00000000-0000-0000-0000-000000000000"))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<uuid>: the nil UUID is not allowed; remove <uuid> to have "
                                "one generated");
        } else if (node_is(c, "title")) {
                if ((r = check_once(&seen->title, c, root, error)) < 0 ||
                    (r = no_attributes(c, error)) < 0 ||
                    (r = get_text(c, false, &def->title, error)) < 0)
                        return r;
                if (strpbrk(def->title, "\r\n"))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<title>: must be a single line (use <description>)");
                if (strlen(def->title) > DOMAIN_TITLE_MAX)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<title>: longer than %d bytes", DOMAIN_TITLE_MAX);
        } else if (node_is(c, "description")) {
                if ((r = check_once(&seen->description, c, root, error)) < 0 ||
                    (r = no_attributes(c, error)) < 0 ||
                    (r = get_text(c, false, &def->description, error)) < 0)
                        return r;
        } else if (node_is(c, "memory")) {
                if ((r = check_once(&seen->memory, c, root, error)) < 0 ||
                    (r = parse_memory(c, &def->memory_bytes, error)) < 0)
                        return r;
        } else if (node_is(c, "currentMemory")) {
                if ((r = check_once(&seen->current, c, root, error)) < 0 ||
                    (r = parse_memory(c, &seen->current_bytes, error)) < 0)
                        return r;
        } else if (node_is(c, "vcpu")) {
                g_autofree char *text = NULL, *placement = NULL, *current = NULL;
                uint64_t v, cur;

                if ((r = check_once(&seen->vcpu, c, root, error)) < 0)
                        return r;
                if ((r = check_attributes(c, STRV("placement", "current", "cpuset"), error)) < 0 ||
                    (r = devices_parse_vcpu_cpuset(c, def, error)) < 0 ||
                    (r = get_text(c, true, &text, error)) < 0 ||
                    (r = parse_u64("<vcpu>", text, &v, error)) < 0)
                        return r;
                if (v < 1)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<vcpu>: %s is below the minimum of 1", text);
                if (v > DOMAIN_VCPUS_MAX)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<vcpu>: %s is above the maximum of %d", text,
                                            DOMAIN_VCPUS_MAX);
                placement = get_attr(c, "placement");
                if (placement &&
                    (r = check_attr_choice(c, "placement", placement, "placement", STRV("static"),
                                           error)) < 0)
                        return r;
                current = get_attr(c, "current");
                if (current) {
                        if ((r = parse_u64("<vcpu current>", current, &cur, error)) < 0)
                                return r;
                        if (cur != v)
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<vcpu current='%" PRIu64 "'>: vmigrate does not "
                                        "hot-plug vCPUs; remove 'current' or make it equal to "
                                        "%" PRIu64,
                                        cur, v);
                }
                def->vcpus = (unsigned)v;
        } else if (node_is(c, "os")) {
                if ((r = check_once(&seen->os, c, root, error)) < 0 ||
                    (r = parse_os(c, def, error)) < 0)
                        return r;
        } else if (node_is(c, "cpu")) {
                if ((r = check_once(&seen->cpu, c, root, error)) < 0 ||
                    (r = parse_cpu(c, def, error)) < 0)
                        return r;
        } else if (node_is(c, "on_poweroff") || node_is(c, "on_reboot") || node_is(c, "on_crash")) {
                g_autofree char *text = NULL;
                char **field = node_is(c, "on_poweroff") ? &def->on_poweroff
                        : node_is(c, "on_reboot")        ? &def->on_reboot
                                                         : &def->on_crash;
                bool *once = node_is(c, "on_poweroff") ? &seen->poweroff
                        : node_is(c, "on_reboot")      ? &seen->reboot
                                                       : &seen->crash;

                if ((r = check_once(once, c, root, error)) < 0 ||
                    (r = no_attributes(c, error)) < 0 || (r = get_text(c, true, &text, error)) < 0)
                        return r;
                if (!strv_contains(STRV("destroy", "restart", "preserve"), text)) {
                        g_autofree char *q = text_quote(text, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<%s>: unknown action '%s'; use 'destroy', 'restart' or "
                                            "'preserve'",
                                            node_name(c), q);
                }
                *field = g_steal_pointer(&text);
        } else if (node_is(c, "devices")) {
                if ((r = check_once(&seen->devices, c, root, error)) < 0 ||
                    (r = parse_devices(c, def, problems, error)) < 0)
                        return r;
        } else if (node_is(c, "features")) {
                if ((r = check_once(&seen->features, c, root, error)) < 0 ||
                    (r = devices_parse_features(c, def, error)) < 0)
                        return r;
        } else if (node_is(c, "clock")) {
                if ((r = check_once(&seen->clock, c, root, error)) < 0 ||
                    (r = devices_parse_clock(c, def, error)) < 0)
                        return r;
        } else if (node_is(c, "pm")) {
                if ((r = check_once(&seen->pm, c, root, error)) < 0 || (r = devices_parse_pm(c, def, error)) < 0)
                        return r;
        } else if (node_is(c, "metadata")) {
                if ((r = check_once(&seen->metadata, c, root, error)) < 0 ||
                    (r = parse_metadata(c, def, error)) < 0)
                        return r;
        } else if (node_is(c, "resource") || node_is(c, "seclabel"))
                return 0; /* libvirt's host-side bookkeeping: dropped */
        else if (strv_contains(STRV("maxMemory", "memoryBacking", "memtune", "blkiotune",
                                    "iothreads", "iothreadids", "cputune", "numatune", "vcpus",
                                    "sysinfo", "idmap", "keywrap", "launchSecurity", "genid",
                                    "bootloader", "bootloader_args", "perf", "throttlegroups",
                                    "on_lockfailure"),
                               node_name(c)))
                return unsupported_element(c, root, NULL, error);
        else
                return unknown_element(c, root, error);
        return 0;
}

static int parse_domain(xmlNode *root, DomainDef *def, GError **error) {
        g_auto(Problems) problems = {};
        DomainSeen seen = {};
        g_autoptr(GError) e = NULL;
        int r;

        /* id is the running domain's number in libvirt: dropped. */
        if ((r = check_attributes(root, STRV("type", "id"), error)) < 0)
                return r;
        def->type = get_attr(root, "type");
        if (!def->type)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<domain>: attribute 'type' is required ('test', 'kvm' or 'qemu')");
        /* Which types run here is the backends' business (UnsupportedBackend
         * from the manager); the parser only keeps junk out. */
        if (!type_token_is_valid(def->type)) {
                g_autofree char *q = text_quote(def->type, -1);
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<domain type='%s'>: not a domain type (lower-case letters and digits)", q);
        }

        /* Each child on its own: a refusal is counted and the rest are still
         * looked at (see problems_finish()). */
        for_each_child_element(c, root, r, error) {
                if ((r = parse_domain_child(c, root, def, &seen, &problems, &e)) < 0)
                        problems_add(&problems, &e);
        }
        if (!seen.name) {
                vm_error_set(&e, VM_ERROR_INVALID_XML, "<name> is required");
                problems_add(&problems, &e);
        }
        if (!seen.memory) {
                vm_error_set(&e, VM_ERROR_INVALID_XML, "<memory> is required (e.g. <memory unit='MiB'>512</memory>)");
                problems_add(&problems, &e);
        }
        if (problems.first)
                return problems_finish(&problems, error);

        if (seen.current && seen.current_bytes != def->memory_bytes)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<currentMemory> (%" PRIu64 " bytes) differs from <memory> (%" PRIu64
                        " bytes): vmigrate does not balloon; make them equal or remove <currentMemory>",
                        seen.current_bytes, def->memory_bytes);
        if (!seen.uuid)
                domain_uuid_generate(def->uuid);
        for (char **mac = def->require_interfaces; mac && *mac; mac++) {
                bool found = false;
                for (guint i = 0; i < def->interfaces->len && !found; i++)
                        found = g_str_equal(((DomainInterfaceDef *)def->interfaces->pdata[i])->mac, *mac);
                if (!found)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<vmigrate:require interface='%s'>: no <interface> has this MAC "
                                            "address; give it <mac address='%s'/> or remove the requirement",
                                            *mac, *mac);
        }
        if ((r = devices_check_domain(def, error)) < 0)
                return r;
        return check_hyperv(def, error);
}

/* ---- parsing the document ---- */

typedef struct XmlErrorCollector {
        char *message;
        int line;
        int column;
        bool saw_doctype;
} XmlErrorCollector;

static void collect_structured_error(void *userdata, xmlErrorPtr err) {
        XmlErrorCollector *c = userdata;

        /* The first error is the cause; later ones are consequences. */
        if (!err || err->level < XML_ERR_ERROR || c->message)
                return;
        c->message = g_utf8_make_valid(err->message ? err->message : "unknown error", -1);
        g_strstrip(c->message);
        c->line = err->line;
        c->column = err->int2;
}

static void swallow_generic_error(void *ctx, const char *msg, ...) {
        /* Without this, errors raised outside a parser context (encoding
         * conversion, I/O) would go to stderr. */
}

static void refuse_internal_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                                   const xmlChar *system_id) {
        xmlParserCtxtPtr ctxt = ctx;
        XmlErrorCollector *c = ctxt->_private;

        /* Called as soon as "<!DOCTYPE name ..." has been read, before any
         * declaration in the internal subset: stop right here. */
        c->saw_doctype = true;
        xmlStopParser(ctxt);
}

int domain_def_parse(const char *xml, size_t len, DomainDef **ret_def, GError **error) {
        g_autoptr(DomainDef) def = NULL;
        g_autoptr(xmlParserCtxt) ctxt = NULL;
        g_autoptr(xmlDoc) doc = NULL;
        XmlErrorCollector collector = {};
        xmlStructuredErrorFunc old_serror;
        xmlGenericErrorFunc old_gerror;
        void *old_sctx, *old_gctx;
        const void *nul;
        xmlNode *root;
        int r;

        g_return_val_if_fail(ret_def, -EINVAL);

        if (!xml || len == 0)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "the document is empty");
        if (len > DOMAIN_XML_MAX_BYTES)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "the document is %zu bytes; the limit is %d bytes (1 MiB)", len,
                                    DOMAIN_XML_MAX_BYTES);
        nul = memchr(xml, '\0', len);
        if (nul)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "the document contains a NUL byte at offset %zu",
                                    (size_t)((const char *)nul - xml));

        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return vm_error_set(error, VM_ERROR_FAILED, "could not allocate an XML parser");
        ctxt->_private = &collector;
        ctxt->sax->internalSubset = refuse_internal_subset;

        old_serror = xmlStructuredError;
        old_sctx = xmlStructuredErrorContext;
        old_gerror = xmlGenericError;
        old_gctx = xmlGenericErrorContext;
        xmlSetStructuredErrorFunc(&collector, collect_structured_error);
        xmlSetGenericErrorFunc(&collector, swallow_generic_error);

        /* No NOENT (entities stay unexpanded), no DTDLOAD, NONET; the
         * declared encoding is ignored: D-Bus strings are UTF-8. */
        doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC);

        xmlSetStructuredErrorFunc(old_sctx, old_serror);
        xmlSetGenericErrorFunc(old_gctx, old_gerror);

        g_autofree char *message = g_steal_pointer(&collector.message);

        if (collector.saw_doctype || (doc && (doc->intSubset || doc->extSubset)))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "the document has a <!DOCTYPE>: DTDs and entity declarations are refused "
                        "(they are how 'billion laughs' and external-entity attacks work); remove it");
        if (!doc || !ctxt->wellFormed) {
                if (message)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "not well-formed XML: line %d, column %d: %s", collector.line,
                                            collector.column, message);
                return vm_error_set(error, VM_ERROR_INVALID_XML, "not well-formed XML");
        }
        if (doc->version && !g_str_equal((const char *)doc->version, "1.0"))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "XML version '%s' is not supported; use version='1.0'",
                                    g_str_equal((const char *)doc->version, "1.1") ? "1.1" : "?");

        root = xmlDocGetRootElement(doc);
        if (!root)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "the document has no root element");
        for (xmlNode *n = doc->children; n; n = n->next)
                if (n->type == XML_PI_NODE) {
                        g_autofree char *q = text_quote(node_name(n), -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "processing instruction <?%s?> is not allowed; remove it", q);
                }
        if (root->ns || !node_is(root, "domain")) {
                g_autofree char *q = text_quote(node_name(root), -1);
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "the root element is <%s%s%s>; expected <domain> without a namespace",
                                    root->ns && root->ns->prefix ? (const char *)root->ns->prefix : "",
                                    root->ns && root->ns->prefix ? ":" : "", q);
        }

        def = domain_def_new();
        r = parse_domain(root, def, error);
        if (r < 0)
                return r;

        *ret_def = g_steal_pointer(&def);
        return 0;
}

/* ---- formatting ---- */


static char *format_def(const DomainDef *def, bool secure) {
        g_autoptr(xmlBuffer) buf = NULL;
        g_autoptr(xmlTextWriter) w = NULL;
        g_autofree char *vcpus = NULL;

        g_return_val_if_fail(def, NULL);

        buf = xmlBufferCreate();
        if (!buf)
                g_error("out of memory");
        w = xmlNewTextWriterMemory(buf, 0);
        if (!w)
                g_error("out of memory");
        xmlTextWriterSetIndent(w, 1);
        xmlTextWriterSetIndentString(w, (const xmlChar *)"  ");

        start_element(w, "domain");
        write_attribute(w, "type", def->type);
        write_element(w, "name", def->name);
        if (def->uuid[0])
                write_element(w, "uuid", def->uuid);
        write_element(w, "title", def->title);
        write_element(w, "description", def->description);
        bool ours = def->require_interfaces || def->require_hooks || def->has_priority;
        if (ours || def->metadata_other->len) {
                start_element(w, "metadata");
                devices_format_metadata(w, def);
        }
        if (ours) {
                xmlTextWriterStartElementNS(w, (const xmlChar *)"vmigrate", (const xmlChar *)"migration",
                                            (const xmlChar *)DOMAIN_XMLNS_MIGRATION);
                if (def->has_priority) {
                        g_autofree char *priority = g_strdup_printf("%u", def->priority);
                        xmlTextWriterStartElementNS(w, (const xmlChar *)"vmigrate", (const xmlChar *)"priority", NULL);
                        xmlTextWriterWriteString(w, (const xmlChar *)priority);
                        end_element(w);
                }
                for (char **mac = def->require_interfaces; mac && *mac; mac++) {
                        xmlTextWriterStartElementNS(w, (const xmlChar *)"vmigrate", (const xmlChar *)"require", NULL);
                        write_attribute(w, "interface", *mac);
                        end_element(w);
                }
                for (char **hook = def->require_hooks; hook && *hook; hook++) {
                        xmlTextWriterStartElementNS(w, (const xmlChar *)"vmigrate", (const xmlChar *)"require", NULL);
                        write_attribute(w, "hook", *hook);
                        end_element(w);
                }
                end_element(w);
        }
        if (ours || def->metadata_other->len)
                end_element(w); /* metadata */
        write_memory(w, "memory", def->memory_bytes);
        write_memory(w, "currentMemory", def->memory_bytes);
        vcpus = g_strdup_printf("%u", def->vcpus);
        start_element(w, "vcpu");
        write_attribute(w, "placement", "static");
        write_attribute(w, "cpuset", def->vcpu_cpuset);
        xmlTextWriterWriteString(w, (const xmlChar *)vcpus);
        end_element(w);

        start_element(w, "os");
        format_os_attributes(w, def);
        start_element(w, "type");
        write_attribute(w, "arch", def->os_arch);
        write_attribute(w, "machine", def->os_machine);
        xmlTextWriterWriteString(w, (const xmlChar *)(def->os_type ? def->os_type : "hvm"));
        end_element(w);
        format_os_firmware(w, def);
        write_element(w, "kernel", def->os_kernel);
        write_element(w, "initrd", def->os_initrd);
        write_element(w, "cmdline", def->os_cmdline);
        devices_format_os(w, def);
        end_element(w);

        if (def->cpu_mode || def->cpu_sockets) {
                start_element(w, "cpu");
                write_attribute(w, "mode", def->cpu_mode);
                write_element(w, "model", def->cpu_model);
                devices_format_cpu_topology(w, def);
                for (guint i = 0; def->cpu_features && i < def->cpu_features->len; i++) {
                        DomainCpuFeatureDef *f = g_ptr_array_index(def->cpu_features, i);

                        start_element(w, "feature");
                        write_attribute(w, "policy", f->policy);
                        write_attribute(w, "name", f->name);
                        end_element(w);
                }
                end_element(w);
        }

        write_element(w, "on_poweroff", def->on_poweroff);
        write_element(w, "on_reboot", def->on_reboot);
        write_element(w, "on_crash", def->on_crash);
        devices_format_settings(w, def);

        start_element(w, "devices");
        for (guint i = 0; def->disks && i < def->disks->len; i++) {
                DomainDiskDef *d = g_ptr_array_index(def->disks, i);

                start_element(w, "disk");
                write_attribute(w, "type", d->protocol ? "network" : d->block ? "block" : "file");
                write_attribute(w, "device", d->device ? d->device : "disk");
                if (d->driver_type || d->cache || devices_disk_has_driver_attrs(d)) {
                        start_element(w, "driver");
                        write_attribute(w, "name", "qemu");
                        write_attribute(w, "type", d->driver_type);
                        write_attribute(w, "cache", d->cache);
                        devices_format_disk_driver_attrs(w, d);
                        end_element(w);
                }
                if (d->protocol)
                        format_disk_network_source(w, d);
                else if (d->source_file) {
                        start_element(w, "source");
                        write_attribute(w, d->block ? "dev" : "file", d->source_file);
                        end_element(w);
                }
                start_element(w, "target");
                write_attribute(w, "dev", d->target_dev);
                write_attribute(w, "bus", d->target_bus);
                end_element(w);
                if (d->readonly) {
                        start_element(w, "readonly");
                        end_element(w);
                }
                if (d->shareable) {
                        start_element(w, "shareable");
                        end_element(w);
                }
                devices_format_boot_order(w, d->boot_order);
                end_element(w);
        }
        for (guint i = 0; def->interfaces && i < def->interfaces->len; i++) {
                DomainInterfaceDef *n = g_ptr_array_index(def->interfaces, i);

                start_element(w, "interface");
                write_attribute(w, "type", n->type);
                if (n->mac) {
                        start_element(w, "mac");
                        write_attribute(w, "address", n->mac);
                        end_element(w);
                }
                if (n->source) {
                        start_element(w, "source");
                        write_attribute(w, g_strcmp0(n->type, "network") == 0 ? "network" : "bridge",
                                        n->source);
                        end_element(w);
                }
                if (n->model) {
                        start_element(w, "model");
                        write_attribute(w, "type", n->model);
                        end_element(w);
                }
                devices_format_boot_order(w, n->boot_order);
                end_element(w);
        }
        for (guint i = 0; def->serials && i < def->serials->len; i++) {
                DomainSerialDef *s = g_ptr_array_index(def->serials, i);
                g_autofree char *port = g_strdup_printf("%u", s->port);

                start_element(w, "serial");
                write_attribute(w, "type", s->type);
                if (s->source_path) {
                        start_element(w, "source");
                        write_attribute(w, "path", s->source_path);
                        end_element(w);
                }
                start_element(w, "target");
                write_attribute(w, "port", port);
                end_element(w);
                end_element(w);
        }
        domain_displays_format(w, def, secure);
        devices_format_devices(w, def);
        tpm_format(w, def);
        end_element(w); /* devices */

        end_element(w); /* domain */
        xmlTextWriterFlush(w);

        return g_strndup((const char *)xmlBufferContent(buf), (gsize)xmlBufferLength(buf));
}

char *domain_def_format(const DomainDef *def) {
        return format_def(def, true);
}

char *domain_def_format_public(const DomainDef *def) {
        return format_def(def, false);
}

/* ---- copy and compare ---- */

DomainDef *domain_def_copy(const DomainDef *def) {
        DomainDef *c;

        g_return_val_if_fail(def, NULL);

        c = domain_def_new();
        g_free(c->os_type);
        c->type = g_strdup(def->type);
        c->name = g_strdup(def->name);
        memcpy(c->uuid, def->uuid, sizeof(c->uuid));
        c->title = g_strdup(def->title);
        c->description = g_strdup(def->description);
        c->require_interfaces = g_strdupv(def->require_interfaces);
        c->require_hooks = g_strdupv(def->require_hooks);
        c->priority = def->priority;
        c->has_priority = def->has_priority;
        c->memory_bytes = def->memory_bytes;
        c->vcpus = def->vcpus;
        c->vcpu_cpuset = g_strdup(def->vcpu_cpuset);
        c->os_type = g_strdup(def->os_type);
        c->os_arch = g_strdup(def->os_arch);
        c->os_machine = g_strdup(def->os_machine);
        c->os_loader = g_strdup(def->os_loader);
        c->os_kernel = g_strdup(def->os_kernel);
        c->os_initrd = g_strdup(def->os_initrd);
        c->os_cmdline = g_strdup(def->os_cmdline);
        c->cpu_mode = g_strdup(def->cpu_mode);
        c->cpu_model = g_strdup(def->cpu_model);
        c->on_poweroff = g_strdup(def->on_poweroff);
        c->on_reboot = g_strdup(def->on_reboot);
        c->on_crash = g_strdup(def->on_crash);
        firmware_def_copy(c, def);
        tpm_def_copy(c, def);

        for (guint i = 0; def->cpu_features && i < def->cpu_features->len; i++) {
                const DomainCpuFeatureDef *f = g_ptr_array_index(def->cpu_features, i);
                DomainCpuFeatureDef *n = g_new0(DomainCpuFeatureDef, 1);

                n->name = g_strdup(f->name);
                n->policy = g_strdup(f->policy);
                g_ptr_array_add(c->cpu_features, n);
        }
        for (guint i = 0; def->disks && i < def->disks->len; i++) {
                const DomainDiskDef *d = g_ptr_array_index(def->disks, i);
                DomainDiskDef *n = g_new0(DomainDiskDef, 1);

                n->device = g_strdup(d->device);
                n->driver_type = g_strdup(d->driver_type);
                n->cache = g_strdup(d->cache);
                n->source_file = g_strdup(d->source_file);
                n->target_dev = g_strdup(d->target_dev);
                n->target_bus = g_strdup(d->target_bus);
                n->readonly = d->readonly;
                n->shareable = d->shareable;
                n->block = d->block;
                devices_disk_copy(n, d);
                netdisk_def_copy(n, d);
                g_ptr_array_add(c->disks, n);
        }
        for (guint i = 0; def->interfaces && i < def->interfaces->len; i++) {
                const DomainInterfaceDef *d = g_ptr_array_index(def->interfaces, i);
                DomainInterfaceDef *n = g_new0(DomainInterfaceDef, 1);

                n->type = g_strdup(d->type);
                n->source = g_strdup(d->source);
                n->mac = g_strdup(d->mac);
                n->model = g_strdup(d->model);
                n->boot_order = d->boot_order;
                g_ptr_array_add(c->interfaces, n);
        }
        for (guint i = 0; def->serials && i < def->serials->len; i++) {
                const DomainSerialDef *d = g_ptr_array_index(def->serials, i);
                DomainSerialDef *n = g_new0(DomainSerialDef, 1);

                n->type = g_strdup(d->type);
                n->port = d->port;
                n->source_path = g_strdup(d->source_path);
                g_ptr_array_add(c->serials, n);
        }
        domain_displays_copy(def, c);
        devices_def_copy(c, def);
        return c;
}

static bool strv_equal0(char **a, char **b) {
        if (!a || !b)
                return !a && !b;
        return g_strv_equal((const char *const *)a, (const char *const *)b);
}

static guint array_len(const GPtrArray *a) {
        return a ? a->len : 0;
}

bool domain_def_equal(const DomainDef *a, const DomainDef *b) {
        if (a == b)
                return true;
        if (!a || !b)
                return false;

        if (g_strcmp0(a->type, b->type) != 0 || g_strcmp0(a->name, b->name) != 0 ||
            strcmp(a->uuid, b->uuid) != 0 || g_strcmp0(a->title, b->title) != 0 ||
            g_strcmp0(a->description, b->description) != 0 || a->memory_bytes != b->memory_bytes ||
            a->vcpus != b->vcpus || g_strcmp0(a->vcpu_cpuset, b->vcpu_cpuset) != 0 ||
            g_strcmp0(a->os_type, b->os_type) != 0 ||
            g_strcmp0(a->os_arch, b->os_arch) != 0 || g_strcmp0(a->os_machine, b->os_machine) != 0 ||
            g_strcmp0(a->os_loader, b->os_loader) != 0 || g_strcmp0(a->os_kernel, b->os_kernel) != 0 ||
            g_strcmp0(a->os_initrd, b->os_initrd) != 0 || g_strcmp0(a->os_cmdline, b->os_cmdline) != 0 ||
            g_strcmp0(a->cpu_mode, b->cpu_mode) != 0 || g_strcmp0(a->cpu_model, b->cpu_model) != 0 ||
            g_strcmp0(a->on_poweroff, b->on_poweroff) != 0 || g_strcmp0(a->on_reboot, b->on_reboot) != 0 ||
            g_strcmp0(a->on_crash, b->on_crash) != 0)
                return false;
        if (!strv_equal0(a->require_interfaces, b->require_interfaces) ||
            !strv_equal0(a->require_hooks, b->require_hooks) || !firmware_def_equal(a, b) ||
            !tpm_def_equal(a, b) || a->has_priority != b->has_priority || a->priority != b->priority)
                return false;

        if (array_len(a->cpu_features) != array_len(b->cpu_features) ||
            array_len(a->disks) != array_len(b->disks) ||
            array_len(a->interfaces) != array_len(b->interfaces) ||
            array_len(a->serials) != array_len(b->serials))
                return false;

        for (guint i = 0; i < array_len(a->cpu_features); i++) {
                const DomainCpuFeatureDef *x = g_ptr_array_index(a->cpu_features, i);
                const DomainCpuFeatureDef *y = g_ptr_array_index(b->cpu_features, i);

                if (g_strcmp0(x->name, y->name) != 0 || g_strcmp0(x->policy, y->policy) != 0)
                        return false;
        }
        for (guint i = 0; i < array_len(a->disks); i++) {
                const DomainDiskDef *x = g_ptr_array_index(a->disks, i);
                const DomainDiskDef *y = g_ptr_array_index(b->disks, i);

                if (g_strcmp0(x->device, y->device) != 0 || g_strcmp0(x->driver_type, y->driver_type) != 0 ||
                    g_strcmp0(x->cache, y->cache) != 0 || g_strcmp0(x->source_file, y->source_file) != 0 ||
                    g_strcmp0(x->target_dev, y->target_dev) != 0 ||
                    g_strcmp0(x->target_bus, y->target_bus) != 0 || x->readonly != y->readonly ||
                    x->shareable != y->shareable || x->block != y->block || !devices_disk_equal(x, y) ||
                    !netdisk_def_equal(x, y))
                        return false;
        }
        for (guint i = 0; i < array_len(a->interfaces); i++) {
                const DomainInterfaceDef *x = g_ptr_array_index(a->interfaces, i);
                const DomainInterfaceDef *y = g_ptr_array_index(b->interfaces, i);

                if (g_strcmp0(x->type, y->type) != 0 || g_strcmp0(x->source, y->source) != 0 ||
                    g_strcmp0(x->mac, y->mac) != 0 || g_strcmp0(x->model, y->model) != 0 ||
                    x->boot_order != y->boot_order)
                        return false;
        }
        for (guint i = 0; i < array_len(a->serials); i++) {
                const DomainSerialDef *x = g_ptr_array_index(a->serials, i);
                const DomainSerialDef *y = g_ptr_array_index(b->serials, i);

                if (g_strcmp0(x->type, y->type) != 0 || x->port != y->port ||
                    g_strcmp0(x->source_path, y->source_path) != 0)
                        return false;
        }
        return domain_displays_equal(a, b) && devices_def_equal(a, b);
}

static int abi_differs(GError **error, const char *element, const char *detail) {
        return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                            "option 'destination-xml': %s differs from the running domain (%s); the guest would "
                            "see the change, so only host-side settings (names, disk sources, cache modes, "
                            "interface sources, <graphics>) may differ",
                            element, detail);
}

int domain_def_check_abi_stable(const DomainDef *src, const DomainDef *dst, GError **error) {
        if (!g_str_equal(src->uuid, dst->uuid))
                return abi_differs(error, "<uuid>", "another UUID is another domain");
        if (!g_str_equal(src->type, dst->type))
                return abi_differs(error, "<domain type>", "the hypervisor type");
        if (src->memory_bytes != dst->memory_bytes)
                return abi_differs(error, "<memory>", "memory size");
        if (src->vcpus != dst->vcpus)
                return abi_differs(error, "<vcpu>", "number of vCPUs");
        if (g_strcmp0(src->os_arch, dst->os_arch) != 0 || g_strcmp0(src->os_machine, dst->os_machine) != 0) {
                /* The running domain's has what its backend filled in:
                 * Domain.GetXML gives it. */
                g_autofree char *detail = g_strdup_printf(
                        "arch '%s' machine '%s' here, arch '%s' machine '%s' there; start from Domain.GetXML",
                        src->os_arch ? src->os_arch : "", src->os_machine ? src->os_machine : "",
                        dst->os_arch ? dst->os_arch : "", dst->os_machine ? dst->os_machine : "");
                return abi_differs(error, "<os><type>", detail);
        }
        if (g_strcmp0(src->os_kernel, dst->os_kernel) != 0 || g_strcmp0(src->os_initrd, dst->os_initrd) != 0 ||
            g_strcmp0(src->os_cmdline, dst->os_cmdline) != 0 || g_strcmp0(src->os_loader, dst->os_loader) != 0)
                return abi_differs(error, "<os>", "kernel, initrd, command line or firmware");
        /* The NVRAM's path is the host's business; the firmware is the guest's. */
        if (g_strcmp0(src->os_firmware, dst->os_firmware) != 0 || src->os_loader_pflash != dst->os_loader_pflash ||
            src->os_loader_secure != dst->os_loader_secure || src->os_fw_secure_boot != dst->os_fw_secure_boot ||
            src->os_fw_enrolled_keys != dst->os_fw_enrolled_keys)
                return abi_differs(error, "<os>", "firmware type, flash or secure boot");
        if (g_strcmp0(src->cpu_mode, dst->cpu_mode) != 0 || g_strcmp0(src->cpu_model, dst->cpu_model) != 0 ||
            src->cpu_features->len != dst->cpu_features->len)
                return abi_differs(error, "<cpu>", "CPU mode, model or features");
        for (unsigned i = 0; i < src->cpu_features->len; i++) {
                const DomainCpuFeatureDef *a = src->cpu_features->pdata[i], *b = dst->cpu_features->pdata[i];
                if (!g_str_equal(a->name, b->name) || !g_str_equal(a->policy, b->policy))
                        return abi_differs(error, "<cpu><feature>", a->name);
        }
        if (src->disks->len != dst->disks->len)
                return abi_differs(error, "<devices><disk>", "number of disks");
        for (unsigned i = 0; i < src->disks->len; i++) {
                const DomainDiskDef *a = src->disks->pdata[i], *b = dst->disks->pdata[i];
                if (g_strcmp0(a->device, b->device) != 0 || g_strcmp0(a->target_dev, b->target_dev) != 0 ||
                    g_strcmp0(a->target_bus, b->target_bus) != 0 ||
                    g_strcmp0(a->driver_type, b->driver_type) != 0 || a->readonly != b->readonly ||
                    a->shareable != b->shareable || !devices_disk_abi_equal(a, b))
                        return abi_differs(error, "<devices><disk>", a->target_dev);
        }
        if (src->interfaces->len != dst->interfaces->len)
                return abi_differs(error, "<devices><interface>", "number of interfaces");
        for (unsigned i = 0; i < src->interfaces->len; i++) {
                const DomainInterfaceDef *a = src->interfaces->pdata[i], *b = dst->interfaces->pdata[i];
                if (g_strcmp0(a->mac, b->mac) != 0 || g_strcmp0(a->model, b->model) != 0 ||
                    a->boot_order != b->boot_order)
                        return abi_differs(error, "<devices><interface>", a->mac ? a->mac : "model");
        }
        if (src->serials->len != dst->serials->len)
                return abi_differs(error, "<devices><serial>", "number of serial ports");
        for (unsigned i = 0; i < src->serials->len; i++) {
                const DomainSerialDef *a = src->serials->pdata[i], *b = dst->serials->pdata[i];
                if (a->port != b->port)
                        return abi_differs(error, "<devices><serial>", "port numbers");
        }
        const char *tpm = tpm_abi_difference(src, dst);
        if (tpm)
                return abi_differs(error, "<devices><tpm>", tpm);
        const char *video = domain_displays_abi_difference(src, dst);
        if (video)
                return abi_differs(error, video, "the video device's model or memory");
        return devices_check_abi_stable(src, dst, error);
}

bool domain_disk_is_copyable(const DomainDiskDef *disk) {
        return disk->source_file && !domain_disk_is_network(disk) && !disk->readonly && !disk->shareable &&
               g_strcmp0(disk->device, "cdrom") != 0;
}
