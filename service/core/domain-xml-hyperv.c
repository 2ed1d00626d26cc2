/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * <features><hyperv> and <timer name='hypervclock'>: the Hyper-V
 * enlightenments libvirt (and so virt-install) gives Windows guests. They
 * are CPU flags the guest sees, so they are part of what a migration's
 * destination must give it unchanged (hyperv_def_equal()).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "domain-xml-hyperv.h"
#include "domain-xml-util.h"
#include "errors.h"
#include "text.h"

/* Retries before a spinning guest tells the hypervisor: libvirt's floor;
 * QEMU's hv-spinlocks is 32 bits (0xffffffff: never tell). */
#define SPINLOCKS_RETRIES_MIN 4095u
/* QEMU's hv-vendor-id: CPUID 0x40000000's EBX..EDX. */
#define VENDOR_ID_MAX 12

/* Children of <hyperv> have no parent; <direct> and <extended> have one. */
#define TOP DOMAIN_HYPERV_N
static const struct {
        const char *name;
        DomainHyperv parent;
} features[DOMAIN_HYPERV_N] = {
        [DOMAIN_HYPERV_RELAXED] = { "relaxed", TOP },
        [DOMAIN_HYPERV_VAPIC] = { "vapic", TOP },
        [DOMAIN_HYPERV_SPINLOCKS] = { "spinlocks", TOP },
        [DOMAIN_HYPERV_VPINDEX] = { "vpindex", TOP },
        [DOMAIN_HYPERV_RUNTIME] = { "runtime", TOP },
        [DOMAIN_HYPERV_SYNIC] = { "synic", TOP },
        [DOMAIN_HYPERV_STIMER] = { "stimer", TOP },
        [DOMAIN_HYPERV_RESET] = { "reset", TOP },
        [DOMAIN_HYPERV_VENDOR_ID] = { "vendor_id", TOP },
        [DOMAIN_HYPERV_FREQUENCIES] = { "frequencies", TOP },
        [DOMAIN_HYPERV_REENLIGHTENMENT] = { "reenlightenment", TOP },
        [DOMAIN_HYPERV_TLBFLUSH] = { "tlbflush", TOP },
        [DOMAIN_HYPERV_IPI] = { "ipi", TOP },
        [DOMAIN_HYPERV_EVMCS] = { "evmcs", TOP },
        [DOMAIN_HYPERV_AVIC] = { "avic", TOP },
        [DOMAIN_HYPERV_EMSR_BITMAP] = { "emsr_bitmap", TOP },
        [DOMAIN_HYPERV_XMM_INPUT] = { "xmm_input", TOP },
        [DOMAIN_HYPERV_STIMER_DIRECT] = { "direct", DOMAIN_HYPERV_STIMER },
        [DOMAIN_HYPERV_TLBFLUSH_DIRECT] = { "direct", DOMAIN_HYPERV_TLBFLUSH },
        [DOMAIN_HYPERV_TLBFLUSH_EXTENDED] = { "extended", DOMAIN_HYPERV_TLBFLUSH },
};

/* hv-time, which comes from <clock> rather than <hyperv>: a dependency only. */
#define HYPERVCLOCK DOMAIN_HYPERV_N

/* What needs what: QEMU's own table (docs/system/i386/hyperv.rst), which
 * QEMU checks only under KVM; checked here for every type, so that a
 * definition that would not start on a KVM host is not accepted on a TCG
 * one either. */
static const struct {
        DomainHyperv feature;
        unsigned needs; /* DomainHyperv, or HYPERVCLOCK */
} dependencies[] = {
        { DOMAIN_HYPERV_SYNIC, DOMAIN_HYPERV_VPINDEX },
        { DOMAIN_HYPERV_STIMER, DOMAIN_HYPERV_SYNIC },
        { DOMAIN_HYPERV_STIMER, HYPERVCLOCK },
        { DOMAIN_HYPERV_STIMER_DIRECT, DOMAIN_HYPERV_STIMER },
        { DOMAIN_HYPERV_TLBFLUSH, DOMAIN_HYPERV_VPINDEX },
        { DOMAIN_HYPERV_TLBFLUSH_EXTENDED, DOMAIN_HYPERV_TLBFLUSH },
        { DOMAIN_HYPERV_TLBFLUSH_DIRECT, DOMAIN_HYPERV_TLBFLUSH },
        { DOMAIN_HYPERV_TLBFLUSH_DIRECT, DOMAIN_HYPERV_VAPIC },
        { DOMAIN_HYPERV_IPI, DOMAIN_HYPERV_VPINDEX },
        { DOMAIN_HYPERV_EVMCS, DOMAIN_HYPERV_VAPIC },
};

const char *hyperv_feature_name(DomainHyperv f) {
        assert(f < DOMAIN_HYPERV_N);
        return features[f].name;
}

/* "<stimer state='on'>", "<stimer><direct state='on'>", or the clock's timer. */
static char *describe(unsigned f) {
        if (f == HYPERVCLOCK)
                return g_strdup("<clock><timer name='hypervclock' present='yes'>");
        if (features[f].parent != TOP)
                return g_strdup_printf("<%s><%s state='on'>", features[features[f].parent].name,
                                       features[f].name);
        return g_strdup_printf("<%s state='on'>", features[f].name);
}

static int parse_state(xmlNode *node, DomainFwFeature *state, GError **error) {
        g_autofree char *s = NULL;
        int r;

        if (*state != DOMAIN_FW_FEATURE_UNSET)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<%s> given twice in <%s>", node_name(node),
                                    node_name(node->parent));
        if ((r = require_attr(node, "state", "('on' or 'off')", &s, error)) < 0 ||
            (r = check_attr_choice(node, "state", s, "state", STRV("on", "off"), error)) < 0)
                return r;
        *state = g_str_equal(s, "on") ? DOMAIN_FW_FEATURE_ON : DOMAIN_FW_FEATURE_OFF;
        return 0;
}

static int parse_spinlocks(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *retries = get_attr(node, "retries");
        uint64_t v;
        int r;

        if (!retries) {
                if (def->hyperv_state[DOMAIN_HYPERV_SPINLOCKS] == DOMAIN_FW_FEATURE_ON)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<spinlocks state='on'>: attribute 'retries' is required (how often "
                                "a guest spins before telling the hypervisor; virt-install "
                                "writes 8191)");
                return 0;
        }
        if ((r = parse_u64("<spinlocks retries>", retries, &v, error)) < 0)
                return r;
        if (v < SPINLOCKS_RETRIES_MIN || v > UINT32_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<spinlocks retries='%s'>: out of range; use %u to %" PRIu32
                                    " (virt-install writes 8191)",
                                    retries, SPINLOCKS_RETRIES_MIN, UINT32_MAX);
        def->hyperv_spinlocks_retries = (unsigned) v;
        return 0;
}

static int parse_vendor_id(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *value = get_attr(node, "value");

        if (!value) {
                if (def->hyperv_state[DOMAIN_HYPERV_VENDOR_ID] == DOMAIN_FW_FEATURE_ON)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<vendor_id state='on'>: attribute 'value' is required (the "
                                            "hypervisor's name the guest sees, up to %d characters)",
                                            VENDOR_ID_MAX);
                return 0;
        }
        /* It goes on QEMU's -cpu as it is: no commas. */
        if (!is_token(value, VENDOR_ID_MAX, " _.-")) {
                g_autofree char *q = text_quote(value, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<vendor_id value='%s'>: use 1 to %d letters, digits, spaces, '_', '.' or "
                        "'-' (CPUID has room for %d)",
                        q, VENDOR_ID_MAX, VENDOR_ID_MAX);
        }
        def->hyperv_vendor_id = g_steal_pointer(&value);
        return 0;
}

static int parse_feature(xmlNode *node, DomainHyperv f, DomainDef *def, GError **error);

/* <stimer> and <tlbflush>: their <direct>/<extended> children. */
static int parse_subfeatures(xmlNode *node, DomainHyperv parent, DomainDef *def, GError **error) {
        int r;

        for_each_child_element(c, node, r, error) {
                DomainHyperv f = DOMAIN_HYPERV_N;

                for (unsigned i = 0; i < DOMAIN_HYPERV_N && f == DOMAIN_HYPERV_N; i++)
                        if (features[i].parent == parent && node_is(c, features[i].name))
                                f = i;
                if (f == DOMAIN_HYPERV_N)
                        return unknown_element(c, node, error);
                if ((r = parse_feature(c, f, def, error)) < 0)
                        return r;
        }
        return 0;
}

static int parse_feature(xmlNode *node, DomainHyperv f, DomainDef *def, GError **error) {
        int r;

        if (f == DOMAIN_HYPERV_SPINLOCKS)
                r = check_attributes(node, STRV("state", "retries"), error);
        else if (f == DOMAIN_HYPERV_VENDOR_ID)
                r = check_attributes(node, STRV("state", "value"), error);
        else
                r = check_attributes(node, STRV("state"), error);
        if (r < 0 || (r = parse_state(node, &def->hyperv_state[f], error)) < 0)
                return r;

        if (f == DOMAIN_HYPERV_REENLIGHTENMENT && domain_hyperv_on(def, f))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<reenlightenment state='on'> in <hyperv> is not supported by vmigrate: a guest "
                        "with it migrates only to a host of the same TSC frequency, which needs the "
                        "frequency pinned (<timer name='tsc' frequency>, which vmigrate does not have); "
                        "remove it (it is for Hyper-V running nested in the guest)");

        switch (f) {
        case DOMAIN_HYPERV_SPINLOCKS:
                return check_empty(node, STRV("state", "retries"), error) < 0
                        ? -EINVAL
                        : parse_spinlocks(node, def, error);
        case DOMAIN_HYPERV_VENDOR_ID:
                return check_empty(node, STRV("state", "value"), error) < 0
                        ? -EINVAL
                        : parse_vendor_id(node, def, error);
        case DOMAIN_HYPERV_STIMER:
        case DOMAIN_HYPERV_TLBFLUSH:
                return parse_subfeatures(node, f, def, error);
        default:
                return check_empty(node, STRV("state"), error);
        }
}

int parse_features_hyperv(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *mode = get_attr(node, "mode");
        int r;

        if (def->hyperv)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<hyperv> given twice in <features>");
        if ((r = check_attributes(node, STRV("mode"), error)) < 0)
                return r;
        if (mode && g_str_equal(mode, "passthrough"))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<hyperv mode='passthrough'> is not supported by vmigrate: it gives the guest "
                        "whatever enlightenments this host's KVM has, which a migration's destination may "
                        "not have (QEMU: it \"effectively prevents migration\"); use mode='custom' and name "
                        "each enlightenment");
        if (mode &&
            (r = check_attr_choice(node, "mode", mode, "mode", STRV("custom", "passthrough"), error)) < 0)
                return r;
        def->hyperv = true;
        def->hyperv_mode = g_steal_pointer(&mode);

        for_each_child_element(c, node, r, error) {
                DomainHyperv f = DOMAIN_HYPERV_N;

                for (unsigned i = 0; i < DOMAIN_HYPERV_N && f == DOMAIN_HYPERV_N; i++)
                        if (features[i].parent == TOP && node_is(c, features[i].name))
                                f = i;
                if (f == DOMAIN_HYPERV_N) {
                        g_autofree char *n = text_quote(node_name(c), -1);
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<%s> in <hyperv> is not a Hyper-V enlightenment vmigrate knows "
                                "(libvirt's relaxed, vapic, spinlocks, vpindex, runtime, synic, "
                                "stimer, reset, vendor_id, frequencies, tlbflush, ipi, evmcs, avic, "
                                "emsr_bitmap, xmm_input); remove it",
                                n);
                }
                if ((r = parse_feature(c, f, def, error)) < 0)
                        return r;
        }
        return 0;
}

int parse_timer_hypervclock(xmlNode *node, DomainDef *def, GError **error) {
        g_autofree char *present = NULL;
        int r;

        if ((r = check_empty(node, STRV("name", "present"), error)) < 0)
                return r;
        if (def->timer_hypervclock_present)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<timer name='hypervclock'> given twice in <clock>");
        if ((r = require_attr(node, "present", "('yes' or 'no')", &present, error)) < 0 ||
            (r = check_attr_choice(node, "present", present, "value", STRV("yes", "no"), error)) < 0)
                return r;
        def->timer_hypervclock_present = g_steal_pointer(&present);
        return 0;
}

static bool needed_is_on(const DomainDef *def, unsigned f) {
        if (f == HYPERVCLOCK)
                return g_strcmp0(def->timer_hypervclock_present, "yes") == 0;
        return domain_hyperv_on(def, f);
}

int check_hyperv(const DomainDef *def, GError **error) {
        for (size_t i = 0; i < G_N_ELEMENTS(dependencies); i++) {
                if (!domain_hyperv_on(def, dependencies[i].feature) ||
                    needed_is_on(def, dependencies[i].needs))
                        continue;
                g_autofree char *what = describe(dependencies[i].feature);
                g_autofree char *needs = describe(dependencies[i].needs);
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "%s in <hyperv> needs %s (the guest would find the one without the "
                                    "other, and QEMU refuses it under KVM); add it, or turn %s off",
                                    what, needs, what);
        }
        return 0;
}

static void format_feature(xmlTextWriter *w, const DomainDef *def, DomainHyperv f) {
        DomainFwFeature state = def->hyperv_state[f];

        if (state == DOMAIN_FW_FEATURE_UNSET)
                return;
        start_element(w, features[f].name);
        write_attribute(w, "state", state == DOMAIN_FW_FEATURE_ON ? "on" : "off");
        if (f == DOMAIN_HYPERV_SPINLOCKS && def->hyperv_spinlocks_retries) {
                g_autofree char *v = g_strdup_printf("%u", def->hyperv_spinlocks_retries);
                write_attribute(w, "retries", v);
        }
        if (f == DOMAIN_HYPERV_VENDOR_ID && def->hyperv_vendor_id)
                write_attribute(w, "value", def->hyperv_vendor_id);
        for (unsigned i = 0; i < DOMAIN_HYPERV_N; i++)
                if (features[i].parent == f)
                        format_feature(w, def, i);
        end_element(w);
}

void format_features_hyperv(xmlTextWriter *w, const DomainDef *def) {
        if (!def->hyperv)
                return;
        start_element(w, "hyperv");
        if (def->hyperv_mode)
                write_attribute(w, "mode", def->hyperv_mode);
        for (unsigned i = 0; i < DOMAIN_HYPERV_N; i++)
                if (features[i].parent == TOP)
                        format_feature(w, def, i);
        end_element(w);
}

void format_timer_hypervclock(xmlTextWriter *w, const DomainDef *def) {
        if (!def->timer_hypervclock_present)
                return;
        start_element(w, "timer");
        write_attribute(w, "name", "hypervclock");
        write_attribute(w, "present", def->timer_hypervclock_present);
        end_element(w);
}

void hyperv_def_clear(DomainDef *def) {
        g_clear_pointer(&def->hyperv_mode, g_free);
        g_clear_pointer(&def->hyperv_vendor_id, g_free);
        g_clear_pointer(&def->timer_hypervclock_present, g_free);
}

void hyperv_def_copy(DomainDef *dst, const DomainDef *src) {
        dst->hyperv = src->hyperv;
        dst->hyperv_mode = g_strdup(src->hyperv_mode);
        memcpy(dst->hyperv_state, src->hyperv_state, sizeof(dst->hyperv_state));
        dst->hyperv_spinlocks_retries = src->hyperv_spinlocks_retries;
        dst->hyperv_vendor_id = g_strdup(src->hyperv_vendor_id);
        dst->timer_hypervclock_present = g_strdup(src->timer_hypervclock_present);
}

bool hyperv_def_equal(const DomainDef *a, const DomainDef *b) {
        return a->hyperv == b->hyperv && g_strcmp0(a->hyperv_mode, b->hyperv_mode) == 0 &&
                memcmp(a->hyperv_state, b->hyperv_state, sizeof(a->hyperv_state)) == 0 &&
                a->hyperv_spinlocks_retries == b->hyperv_spinlocks_retries &&
                g_strcmp0(a->hyperv_vendor_id, b->hyperv_vendor_id) == 0 &&
                g_strcmp0(a->timer_hypervclock_present, b->timer_hypervclock_present) == 0;
}
