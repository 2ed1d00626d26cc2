/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An emulated TPM in the domain XML, as libvirt and virt-install write it:
 *
 *   <tpm model='tpm-crb'>                 tpm-crb or tpm-tis; none: tpm-tis,
 *     <backend type='emulator' version='2.0'/>   libvirt's default on x86
 *   </tpm>
 *
 * The backend runs one swtpm per guest on a state directory of its own
 * (vmigrate's, as libvirt's default one is libvirt's), and the TPM's state
 * travels in the migration stream. Version 2.0 only: a TPM 1.2 is what no
 * current guest asks for and vmigrate does not test it.
 *
 * What is refused, and why: a host TPM passed through or an external
 * swtpm (either stays on its host: the guest could not move), an encrypted
 * state (<encryption secret=…>: vmigrate has no secret store),
 * persistent_state='yes' (the state is removed with the definition, which
 * vmigrate does anyway at Undefine), <active_pcr_banks> and <profile>
 * (they need swtpm_setup, which vmigrate does not run: swtpm makes the TPM
 * at its first start with its default banks), debug logging, more than one
 * TPM, and the POWER models.
 */
#include "domain-xml-tpm.h"
#include "domain-xml-util.h"
#include "errors.h"

static int parse_backend(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *type = NULL, *version = NULL, *persistent = NULL, *debug = NULL;
        int r;

        if ((r = check_attributes(node, STRV("type", "version", "persistent_state", "debug"), error)) < 0 ||
            (r = require_attr(node, "type", "('emulator': vmigrate runs swtpm for the guest)", &type,
                              error)) < 0)
                return r;
        if (g_str_equal(type, "passthrough") || g_str_equal(type, "external"))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<tpm><backend type='%s'>: a %s stays on its host and the guest could not be "
                        "migrated with it; use type='emulator' (vmigrate runs swtpm and moves its state "
                        "with the guest)",
                        type,
                        g_str_equal(type, "passthrough") ? "host TPM passed through"
                                                         : "swtpm "
                                                           "started by "
                                                           "someone else");
        if ((r = check_attr_choice(node, "type", type, "TPM backend type; vmigrate runs swtpm",
                                   STRV("emulator"), error)) < 0)
                return r;

        version = get_attr(node, "version");
        if (version && g_str_equal(version, "1.2"))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<tpm><backend version='1.2'>: vmigrate emulates TPM 2.0 only; use "
                                    "version='2.0' or leave the attribute out");
        if (version &&
            (r = check_attr_choice(node, "version", version, "TPM version", STRV("2.0"), error)) < 0)
                return r;

        persistent = get_attr(node, "persistent_state");
        if (persistent && g_str_equal(persistent, "yes"))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<tpm><backend persistent_state='yes'>: vmigrate removes a domain's TPM state "
                        "when the domain is undefined, and cannot keep it after; remove the attribute");
        if (persistent &&
            (r = check_attr_choice(node, "persistent_state", persistent, "value", STRV("no"), error)) < 0)
                return r;
        debug = get_attr(node, "debug");
        if (debug)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<tpm><backend debug='%s'>: swtpm's debug logging is not supported by "
                                    "vmigrate (it logs swtpm's errors next to QEMU's log); remove the "
                                    "attribute",
                                    debug);

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "encryption"))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<tpm><backend><encryption>: vmigrate has no secret store to keep the "
                                "state's key in; remove <encryption> (the state directory is readable by "
                                "root only)");
                if (node_is(c, "active_pcr_banks") || node_is(c, "profile"))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<tpm><backend><%s> is not supported by vmigrate: it needs swtpm_setup, "
                                "which "
                                "vmigrate does not run (swtpm makes the TPM at its first start, with its "
                                "default PCR banks); remove it",
                                node_name(c));
                if (node_is(c, "source"))
                        return unsupported_element(c, node,
                                                   "it belongs to backend types 'passthrough' and "
                                                   "'external'",
                                                   error);
                return unknown_element(c, node, error);
        }
        g_free(def->tpm_version);
        def->tpm_version = g_strdup("2.0");
        return 0;
}

int tpm_parse(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *model = NULL;
        bool backend = false;
        int r;

        if (def->tpm_model)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<tpm> given twice in <devices>: vmigrate gives a guest one TPM (as QEMU "
                        "does on x86); keep one");
        if ((r = check_attributes(node, STRV("model"), error)) < 0)
                return r;
        model = get_attr(node, "model");
        if (model && (g_str_equal(model, "spapr") || g_str_equal(model, "spapr-tpm-proxy")))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<tpm model='%s'>: a POWER (pSeries) TPM; vmigrate runs x86 guests: use "
                                    "'tpm-crb' or 'tpm-tis'",
                                    model);
        if (!model)
                model = g_strdup("tpm-tis"); /* libvirt's default on x86 */
        if ((r = check_attr_choice(node, "model", model, "TPM model", STRV("tpm-crb", "tpm-tis"), error)) <
            0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "backend")) {
                        if ((r = check_once(&backend, c, node, error)) < 0 ||
                            (r = parse_backend(c, def, error)) < 0)
                                return r;
                } else if (node_is(c, "alias") || node_is(c, "address"))
                        ; /* libvirt's bookkeeping, as for other devices */
                else
                        return unknown_element(c, node, error);
        }
        if (!backend)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<tpm>: <backend type='emulator'/> is required (vmigrate runs swtpm for "
                                    "the guest)");
        def->tpm_model = g_steal_pointer(&model);
        return 0;
}

void tpm_format(xmlTextWriter *w, const DomainDef *def) {
        if (!def->tpm_model)
                return;
        start_element(w, "tpm");
        write_attribute(w, "model", def->tpm_model);
        start_element(w, "backend");
        write_attribute(w, "type", "emulator");
        write_attribute(w, "version", def->tpm_version);
        end_element(w);
        end_element(w);
}

void tpm_def_clear(DomainDef *def) {
        g_clear_pointer(&def->tpm_model, g_free);
        g_clear_pointer(&def->tpm_version, g_free);
}

void tpm_def_copy(DomainDef *dst, const DomainDef *src) {
        dst->tpm_model = g_strdup(src->tpm_model);
        dst->tpm_version = g_strdup(src->tpm_version);
}

bool tpm_def_equal(const DomainDef *a, const DomainDef *b) {
        return g_strcmp0(a->tpm_model, b->tpm_model) == 0 && g_strcmp0(a->tpm_version, b->tpm_version) == 0;
}

const char *tpm_abi_difference(const DomainDef *src, const DomainDef *dst) {
        if (!src->tpm_model != !dst->tpm_model)
                return "a TPM on one side only";
        if (!tpm_def_equal(src, dst))
                return "the TPM's model or version";
        return NULL;
}
