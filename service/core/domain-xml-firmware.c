/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UEFI firmware in the domain XML, as libvirt writes it:
 *
 *   <os firmware='efi'>                       the backend picks OVMF from the
 *     <firmware>                              QEMU firmware descriptors
 *       <feature enabled='yes' name='secure-boot'/>     (/usr/share/qemu/firmware),
 *       <feature enabled='no' name='enrolled-keys'/>    honouring these
 *     </firmware>
 *     <loader readonly='yes' type='pflash' secure='yes'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>
 *     <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/…/vm1_VARS.fd</nvram>
 *   </os>
 *
 * The code is read-only flash; the variables (boot entries, secure boot
 * keys) live in the NVRAM file, one per domain, made from the template at
 * the first start and carried along by a migration. <nvram> without a path
 * (or no <nvram> at all) means the backend's own per-domain file, which
 * is what makes a definition portable between hosts whose state
 * directories differ. A plain <loader>/path</loader> (type 'rom') stays
 * what it was: a BIOS image given to -bios.
 *
 * What is refused, and why: a writable pflash loader (the variables would
 * be inside the code image, shared by every guest using it), stateless
 * firmware and qcow2 flash (not implemented), an NVRAM on network storage
 * (<nvram type=…><source/>), and combinations that contradict each other.
 */
#include <errno.h>
#include <string.h>

#include "domain-xml-firmware.h"
#include "domain-xml-util.h"
#include "errors.h"
#include "text.h"

static int parse_yes_no(xmlNode *node, const char *attr, const char *value, bool *ret, GError **error) {
        int r = check_attr_choice(node, attr, value, "value", STRV("yes", "no"), error);
        if (r < 0)
                return r;
        *ret = g_str_equal(value, "yes");
        return 0;
}

int parse_os_attributes(xmlNode *os, DomainDef *def, GError **error) {
        g_autofree char *firmware = NULL;
        int r;

        if ((r = check_attributes(os, STRV("firmware"), error)) < 0)
                return r;
        firmware = get_attr(os, "firmware");
        if (firmware &&
            (r = check_attr_choice(os, "firmware", firmware,
                                   "firmware; 'efi' boots UEFI (OVMF), 'bios' or none boots SeaBIOS",
                                   STRV("efi", "bios"), error)) < 0)
                return r;
        g_free(def->os_firmware);
        def->os_firmware = g_steal_pointer(&firmware);
        return 0;
}

int parse_os_loader(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *type = NULL, *readonly = NULL, *secure = NULL, *format = NULL, *stateless = NULL,
                        *text = NULL;
        bool ro = false, sec = false;
        int r;

        if ((r = check_attributes(node, STRV("type", "readonly", "secure", "format", "stateless"), error)) <
            0)
                return r;
        type = get_attr(node, "type");
        readonly = get_attr(node, "readonly");
        secure = get_attr(node, "secure");
        format = get_attr(node, "format");
        stateless = get_attr(node, "stateless");

        if (type &&
            (r = check_attr_choice(node, "type", type,
                                   "loader type; 'rom' is a BIOS image, 'pflash' UEFI "
                                   "code in flash",
                                   STRV("rom", "pflash"), error)) < 0)
                return r;
        if (readonly && (r = parse_yes_no(node, "readonly", readonly, &ro, error)) < 0)
                return r;
        if (secure && (r = parse_yes_no(node, "secure", secure, &sec, error)) < 0)
                return r;
        if (stateless) {
                bool yes = false;
                if ((r = parse_yes_no(node, "stateless", stateless, &yes, error)) < 0)
                        return r;
                if (yes)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<loader stateless='yes'>: stateless firmware (no NVRAM) is not "
                                "supported by vmigrate; remove the attribute to keep the variables "
                                "in an NVRAM file");
        }
        if (format &&
            (r = check_attr_choice(
                     node, "format", format,
                     "flash format; vmigrate supports raw images (what the ovmf package installs)",
                     STRV("raw"), error)) < 0)
                return r;
        /* libvirt's rule: readonly='yes' (or an EFI guest) without a type is
         * flash; anything else is a ROM image. */
        if (!type)
                type = g_strdup(ro || g_strcmp0(def->os_firmware, "efi") == 0 ? "pflash" : "rom");

        if (g_str_equal(type, "pflash")) {
                if (!ro)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<loader type='pflash' readonly='%s'>: a writable flash loader "
                                "keeps the UEFI variables inside the code image, shared by every "
                                "guest that uses it; use readonly='yes' and an <nvram> (or no "
                                "<nvram>: vmigrate keeps one per domain)",
                                readonly ? "no" : "");
        } else {
                if (readonly)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<loader readonly='%s'>: 'readonly' applies to type='pflash' "
                                "(UEFI code in flash); a ROM image is always read-only: remove it, "
                                "or add type='pflash' for OVMF",
                                ro ? "yes" : "no");
                if (secure)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<loader secure='%s'>: secure boot needs type='pflash' (UEFI code "
                                "in flash); add type='pflash' readonly='yes'",
                                sec ? "yes" : "no");
        }

        if ((r = get_text(node, false, &text, error)) < 0 ||
            (r = check_path("<os><loader>", text, error)) < 0)
                return r;
        def->os_loader = g_steal_pointer(&text);
        def->os_loader_pflash = g_str_equal(type, "pflash");
        def->os_loader_secure = sec;
        return 0;
}

int parse_os_nvram(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *template = NULL, *format = NULL, *template_format = NULL, *type = NULL,
                        *text = NULL;
        int r;

        type = get_attr(node, "type");
        if (type) {
                g_autofree char *q = text_quote(type, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<nvram type='%s'>: an NVRAM given as a <source> (network or block storage) "
                        "is not supported by vmigrate (it copies the NVRAM file along with the "
                        "guest); give a file path as the element's text, or none to let vmigrate "
                        "keep it",
                        q);
        }
        if ((r = check_attributes(node, STRV("template", "format", "templateFormat"), error)) < 0)
                return r;
        format = get_attr(node, "format");
        if (format &&
            (r = check_attr_choice(node, "format", format, "NVRAM format; vmigrate keeps raw files",
                                   STRV("raw"), error)) < 0)
                return r;
        template_format = get_attr(node, "templateFormat");
        if (template_format &&
            (r = check_attr_choice(node, "templateFormat", template_format,
                                   "template format; the ovmf package's templates are raw", STRV("raw"),
                                   error)) < 0)
                return r;
        template = get_attr(node, "template");
        if (template && (r = check_path("<nvram template>", template, error)) < 0)
                return r;

        for (xmlNode *c = node->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<%s> in <nvram> is not supported by vmigrate: the NVRAM is a file; "
                                "give its path as the element's text",
                                node_name(c));
        if ((r = get_text(node, true, &text, error)) < 0)
                return r;
        if (*text && (r = check_path("<os><nvram>", text, error)) < 0)
                return r;
        def->os_nvram = *text ? g_steal_pointer(&text) : NULL;
        def->os_nvram_template = g_steal_pointer(&template);
        return 0;
}

int parse_os_firmware(xmlNode *node, DomainDef *def, GError **error) {
        int r;

        if ((r = no_attributes(node, error)) < 0)
                return r;
        for_each_child_element(c, node, r, error) {
                g_autofree char *enabled = NULL, *name = NULL;
                DomainFwFeature *field;
                bool on;

                if (!node_is(c, "feature"))
                        return unknown_element(c, node, error);
                if ((r = check_empty(c, STRV("enabled", "name"), error)) < 0 ||
                    (r = require_attr(c, "name", "('secure-boot' or 'enrolled-keys')", &name, error)) < 0 ||
                    (r = require_attr(c, "enabled", "('yes' or 'no')", &enabled, error)) < 0 ||
                    (r = check_attr_choice(c, "name", name, "firmware feature",
                                           STRV("secure-boot", "enrolled-keys"), error)) < 0 ||
                    (r = parse_yes_no(c, "enabled", enabled, &on, error)) < 0)
                        return r;
                field = g_str_equal(name, "secure-boot") ? &def->os_fw_secure_boot
                                                         : &def->os_fw_enrolled_keys;
                if (*field != DOMAIN_FW_FEATURE_UNSET)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<os><firmware>: feature '%s' is given twice", name);
                *field = on ? DOMAIN_FW_FEATURE_ON : DOMAIN_FW_FEATURE_OFF;
        }
        return 0;
}

int check_os_firmware(const DomainDef *def, GError **error) {
        bool efi = g_strcmp0(def->os_firmware, "efi") == 0;
        bool fw_features = def->os_fw_secure_boot || def->os_fw_enrolled_keys;

        if (g_strcmp0(def->os_firmware, "bios") == 0 && def->os_loader_pflash)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<os firmware='bios'> with <loader type='pflash'>: flash code is UEFI; use "
                        "firmware='efi', or a BIOS image without type='pflash'");
        if (efi && def->os_loader && !def->os_loader_pflash)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<os firmware='efi'> with <loader type='rom'>: OVMF runs from flash; use "
                        "<loader readonly='yes' type='pflash'>, or remove <loader> to let vmigrate "
                        "pick it");
        if (fw_features && !efi)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<os><firmware> asks features of an automatically chosen firmware: add "
                                    "<os firmware='efi'>, or remove <firmware>");
        /* <firmware> with a <loader> is what a running UEFI guest's
         * definition says (libvirt's live XML, and vmigrate's once the
         * backend has chosen): the loader is the choice the features made. */
        if (def->os_fw_enrolled_keys == DOMAIN_FW_FEATURE_ON &&
            def->os_fw_secure_boot == DOMAIN_FW_FEATURE_OFF)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<os><firmware>: 'enrolled-keys' needs 'secure-boot' (keys are enrolled for "
                        "secure boot); enable secure-boot or disable enrolled-keys");
        if ((def->os_nvram || def->os_nvram_template) && !domain_def_has_nvram(def))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<os><nvram>: only UEFI guests have an NVRAM; add <os firmware='efi'> or "
                        "<loader readonly='yes' type='pflash'>, or remove <nvram>");
        return 0;
}

int check_feature_smm(xmlNode *node, GError **error) {
        g_autofree char *state = NULL;
        int r;

        if ((r = check_attributes(node, STRV("state"), error)) < 0)
                return r;
        for (xmlNode *c = node->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<%s> in <smm> (SMRAM size) is not supported by vmigrate; remove it",
                                node_name(c));
        state = get_attr(node, "state");
        if (state &&
            (r = check_attr_choice(node, "state", state, "SMM state", STRV("on", "off"), error)) < 0)
                return r;
        if (state && g_str_equal(state, "off"))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<smm state='off'> in <features> is not supported by vmigrate: it leaves SMM "
                        "as QEMU's machine has it (on for q35, needed by secure boot); remove it");
        return 0;
}

void format_os_attributes(xmlTextWriter *w, const DomainDef *def) {
        write_attribute(w, "firmware", def->os_firmware);
}

void format_os_firmware(xmlTextWriter *w, const DomainDef *def) {
        if (def->os_fw_secure_boot || def->os_fw_enrolled_keys) {
                const struct {
                        const char *name;
                        DomainFwFeature value;
                } features[] = {
                        { "enrolled-keys", def->os_fw_enrolled_keys },
                        { "secure-boot", def->os_fw_secure_boot },
                };
                start_element(w, "firmware");
                for (size_t i = 0; i < G_N_ELEMENTS(features); i++) {
                        if (!features[i].value)
                                continue;
                        start_element(w, "feature");
                        write_attribute(w, "enabled",
                                        features[i].value == DOMAIN_FW_FEATURE_ON ? "yes" : "no");
                        write_attribute(w, "name", features[i].name);
                        end_element(w);
                }
                end_element(w);
        }
        if (def->os_loader) {
                start_element(w, "loader");
                if (def->os_loader_pflash) {
                        write_attribute(w, "readonly", "yes");
                        if (def->os_loader_secure)
                                write_attribute(w, "secure", "yes");
                        write_attribute(w, "type", "pflash");
                }
                xmlTextWriterWriteString(w, (const xmlChar *) def->os_loader);
                end_element(w);
        }
        if (def->os_nvram || def->os_nvram_template) {
                start_element(w, "nvram");
                write_attribute(w, "template", def->os_nvram_template);
                if (def->os_nvram)
                        xmlTextWriterWriteString(w, (const xmlChar *) def->os_nvram);
                end_element(w);
        }
}

void firmware_def_clear(DomainDef *def) {
        g_clear_pointer(&def->os_firmware, g_free);
        g_clear_pointer(&def->os_nvram, g_free);
        g_clear_pointer(&def->os_nvram_template, g_free);
}

void firmware_def_copy(DomainDef *dst, const DomainDef *src) {
        dst->os_firmware = g_strdup(src->os_firmware);
        dst->os_loader_pflash = src->os_loader_pflash;
        dst->os_loader_secure = src->os_loader_secure;
        dst->os_fw_secure_boot = src->os_fw_secure_boot;
        dst->os_fw_enrolled_keys = src->os_fw_enrolled_keys;
        dst->os_nvram = g_strdup(src->os_nvram);
        dst->os_nvram_template = g_strdup(src->os_nvram_template);
}

bool firmware_def_equal(const DomainDef *a, const DomainDef *b) {
        return g_strcmp0(a->os_firmware, b->os_firmware) == 0 &&
                a->os_loader_pflash == b->os_loader_pflash && a->os_loader_secure == b->os_loader_secure &&
                a->os_fw_secure_boot == b->os_fw_secure_boot &&
                a->os_fw_enrolled_keys == b->os_fw_enrolled_keys &&
                g_strcmp0(a->os_nvram, b->os_nvram) == 0 &&
                g_strcmp0(a->os_nvram_template, b->os_nvram_template) == 0;
}
