/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMU's newer migration features and the Migrate options behind them.
 *
 * Which QEMU has what is probed (query-migrate-capabilities, and the
 * members of query-migrate-parameters' reply): a distribution's QEMU may
 * lack what its version number promises. The source tells the destination
 * what its QEMU has ("qemu-features" in the Prepare cookie); the
 * destination, which sets its QEMU up first, decides from both and its
 * options, and tells the source in its Prepare reply. An option given
 * explicitly is a requirement: refused by name when a QEMU that must take
 * part lacks the feature. An option left out is a default:
 *
 *  - postcopy-preempt: on with post-copy when both QEMUs have it, unless
 *    tunnelled (QEMU opens the channel as a second connection to the
 *    destination, and a tunnel is one file descriptor). A page
 *    the guest faults on otherwise waits behind the background stream on
 *    the one connection; on its own channel it comes at once (QEMU's
 *    measurements: ~10.7 ms → ~0.6 ms per 4 KiB fault). QEMU opens the
 *    channel again itself when a broken post-copy is recovered.
 *  - zero-page-detection: 'multifd' when both QEMUs have the parameter
 *    (9.0), which is QEMU's own default for new machine types; QEMU keeps
 *    'legacy' for machine types up to 8.2, because a destination before 9.0
 *    cannot read zero pages in multifd packets. When only the source has
 *    the parameter it is set to 'legacy' explicitly: QEMU keeps parameters
 *    for its lifetime, and one that arrived with 'multifd' must not leave
 *    with it for an older destination.
 *  - switchover-ack: off. Only devices that ask for it (VFIO) wait for it,
 *    and vmigrate runs none; on request, return-path is turned on with it.
 *  - zero-copy-send and switchover-bandwidth concern the sender alone:
 *    off, and set only on request (where this QEMU has them).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "qemu-features.h"

static const QemuFeatureInfo feature_table[_QEMU_FEATURE_MAX] = {
        [QEMU_FEATURE_POSTCOPY_PREEMPT] = { "postcopy-preempt", "postcopy-preempt", false, "8.0", true },
        [QEMU_FEATURE_ZERO_PAGE_DETECTION] = { "zero-page-detection", "zero-page-detection", true, "9.0",
                                               true },
        [QEMU_FEATURE_ZERO_COPY_SEND] = { "zero-copy-send", "zero-copy-send", false, "7.1", false },
        [QEMU_FEATURE_SWITCHOVER_ACK] = { "switchover-ack", "switchover-ack", false, "8.1", true },
        [QEMU_FEATURE_SWITCHOVER_BANDWIDTH] = { "switchover-bandwidth", "avail-switchover-bandwidth", true,
                                                "8.2", false },
};

static const char *const zero_page_values[] = { "none", "legacy", "multifd" };
G_STATIC_ASSERT(G_N_ELEMENTS(zero_page_values) == MIGRATE_ZERO_PAGE_DETECTION_MULTIFD + 1);

#define COOKIE_MAX_FEATURES 64

const QemuFeatureInfo *qemu_feature_info(QemuFeatureId id) {
        g_assert(id < _QEMU_FEATURE_MAX);
        return &feature_table[id];
}

bool qemu_caps_has_feature(const QemuCaps *caps, QemuFeatureId id) {
        const QemuFeatureInfo *f = qemu_feature_info(id);

        return f->parameter ? qemu_caps_has_migration_parameter(caps, f->qemu_name)
                            : qemu_caps_has_migration_capability(caps, f->qemu_name);
}

static char *lacks_why(const QemuCaps *caps, QemuFeatureId id, const char *host) {
        const QemuFeatureInfo *f = qemu_feature_info(id);

        return g_strdup_printf("QEMU %u.%u.%u (%s) on %s has no migration %s '%s' (QEMU %s or newer has "
                               "it): install a QEMU that has it there, or leave the option out",
                               caps->major, caps->minor, caps->micro, caps->binary ? caps->binary : "?",
                               host ? host : "this host", f->parameter ? "parameter" : "capability",
                               f->qemu_name, f->since);
}

void qemu_features_option_support(const QemuCaps *caps, MigrateOptionSupport *support, size_t n) {
        char host[256] = "";

        (void) gethostname(host, sizeof(host) - 1);
        for (QemuFeatureId id = 0; id < _QEMU_FEATURE_MAX; id++)
                for (size_t i = 0; i < n; i++) {
                        if (!g_str_equal(support[i].key, feature_table[id].option))
                                continue;
                        g_free((char *) support[i].why_not);
                        if (caps && qemu_caps_has_feature(caps, id)) {
                                support[i].supported = true;
                                support[i].why_not = NULL;
                        } else {
                                support[i].supported = false;
                                support[i].why_not = caps ? lacks_why(caps, id, *host ? host : NULL)
                                                          : g_strdup("QEMU has not been probed");
                                support[i].default_value = NULL;
                        }
                }
}

void qemu_features_add_to_cookie(const QemuCaps *caps, GVariantDict *cookie) {
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_auto(GStrv) names = NULL;

        for (QemuFeatureId id = 0; id < _QEMU_FEATURE_MAX; id++)
                if (qemu_caps_has_feature(caps, id))
                        g_strv_builder_add(b, feature_table[id].option);
        names = g_strv_builder_end(b);
        g_variant_dict_insert_value(cookie, "qemu-features",
                                    g_variant_new_strv((const char *const *) names, -1));
}

/* The source's features by our ids; names we do not know (a newer
 * source) are ignored. */
static int source_features(GVariant *cookie, bool ret_has[_QEMU_FEATURE_MAX], GError **error) {
        g_autoptr(GVariant) v = cookie ? g_variant_lookup_value(cookie, "qemu-features", NULL) : NULL;
        GVariantIter iter;
        const char *name;

        memset(ret_has, 0, sizeof(bool) * _QEMU_FEATURE_MAX);
        if (!v)
                return 0; /* an older source: it uses none of them */
        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY) ||
            g_variant_n_children(v) > COOKIE_MAX_FEATURES)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source's cookie member 'qemu-features' is not a list of at most %d "
                                    "names",
                                    COOKIE_MAX_FEATURES);
        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "&s", &name))
                for (QemuFeatureId id = 0; id < _QEMU_FEATURE_MAX; id++)
                        if (g_str_equal(name, feature_table[id].option))
                                ret_has[id] = true;
        return 0;
}

static MigrateOptionId option_of(QemuFeatureId id) {
        static const MigrateOptionId ids[_QEMU_FEATURE_MAX] = {
                [QEMU_FEATURE_POSTCOPY_PREEMPT] = MIGRATE_OPTION_POSTCOPY_PREEMPT,
                [QEMU_FEATURE_ZERO_PAGE_DETECTION] = MIGRATE_OPTION_ZERO_PAGE_DETECTION,
                [QEMU_FEATURE_ZERO_COPY_SEND] = MIGRATE_OPTION_ZERO_COPY_SEND,
                [QEMU_FEATURE_SWITCHOVER_ACK] = MIGRATE_OPTION_SWITCHOVER_ACK,
                [QEMU_FEATURE_SWITCHOVER_BANDWIDTH] = MIGRATE_OPTION_SWITCHOVER_BANDWIDTH,
        };
        return ids[id];
}

/* Whether option id asks for its feature: given, and not given as off. */
static bool option_requests(const MigrateOptions *o, QemuFeatureId id) {
        if (!migrate_options_has(o, option_of(id)))
                return false;
        switch (id) {
        case QEMU_FEATURE_POSTCOPY_PREEMPT:
                return o->postcopy_preempt;
        case QEMU_FEATURE_ZERO_COPY_SEND:
                return o->zero_copy_send;
        case QEMU_FEATURE_SWITCHOVER_ACK:
                return o->switchover_ack;
        case QEMU_FEATURE_ZERO_PAGE_DETECTION:
        case QEMU_FEATURE_SWITCHOVER_BANDWIDTH:
                return true;
        default:
                g_assert_not_reached();
        }
}

int qemu_features_negotiate(const QemuCaps *own, GVariant *source_cookie, const MigrateOptions *o,
                            const char *own_host, const char *source_host, QemuFeatures *ret,
                            GError **error) {
        bool source_has[_QEMU_FEATURE_MAX], both[_QEMU_FEATURE_MAX];
        QemuFeatures f = { 0 };
        int r;

        r = source_features(source_cookie, source_has, error);
        if (r < 0)
                return r;
        for (QemuFeatureId id = 0; id < _QEMU_FEATURE_MAX; id++) {
                const QemuFeatureInfo *info = &feature_table[id];
                bool own_has = qemu_caps_has_feature(own, id);

                both[id] = own_has && source_has[id];
                if (!info->both_sides || !option_requests(o, id) || both[id])
                        continue;
                if (!own_has) {
                        g_autofree char *why = lacks_why(own, id, own_host ? own_host : "the destination");
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                            "option '%s' needs both hosts' QEMU to have it, but %s",
                                            info->option, why);
                }
                return vm_error_set(
                        error, VM_ERROR_UNSUPPORTED_OPTION,
                        "option '%s' needs both hosts' QEMU to have it, but the QEMU on %s has no "
                        "migration %s '%s' (QEMU %s or newer has it): install a QEMU that has it "
                        "there, or leave the option out",
                        info->option, source_host ? source_host : "the source",
                        info->parameter ? "parameter" : "capability", info->qemu_name, info->since);
        }

        f.postcopy_preempt = o->postcopy && !o->tunnelled && both[QEMU_FEATURE_POSTCOPY_PREEMPT] &&
                (!migrate_options_has(o, MIGRATE_OPTION_POSTCOPY_PREEMPT) || o->postcopy_preempt);
        f.switchover_ack = option_requests(o, QEMU_FEATURE_SWITCHOVER_ACK);
        if (source_has[QEMU_FEATURE_ZERO_PAGE_DETECTION]) {
                f.set_zero_page_detection = true;
                f.zero_page_detection = migrate_options_has(o, MIGRATE_OPTION_ZERO_PAGE_DETECTION)
                        ? o->zero_page_detection
                        : both[QEMU_FEATURE_ZERO_PAGE_DETECTION] ? MIGRATE_ZERO_PAGE_DETECTION_MULTIFD
                                                                 : MIGRATE_ZERO_PAGE_DETECTION_LEGACY;
        }
        *ret = f;
        return 0;
}

void qemu_features_add_to_reply(const QemuFeatures *f, GVariantDict *reply) {
        g_auto(GVariantDict) d = G_VARIANT_DICT_INIT(NULL);

        g_variant_dict_insert(&d, "postcopy-preempt", "b", f->postcopy_preempt);
        g_variant_dict_insert(&d, "switchover-ack", "b", f->switchover_ack);
        if (f->set_zero_page_detection)
                g_variant_dict_insert(&d, "zero-page-detection", "s",
                                      zero_page_values[f->zero_page_detection]);
        g_variant_dict_insert_value(reply, "qemu-features", g_variant_dict_end(&d));
}

int qemu_features_from_reply(GVariant *backend_reply, const QemuCaps *own, const MigrateOptions *o,
                             QemuFeatures *ret, GError **error) {
        g_autoptr(GVariant) v = NULL;
        QemuFeatures f = { 0 };
        const char *zero = NULL;

        if (backend_reply && g_variant_is_of_type(backend_reply, G_VARIANT_TYPE_VARDICT))
                v = g_variant_lookup_value(backend_reply, "qemu-features", NULL);
        if (v && !g_variant_is_of_type(v, G_VARIANT_TYPE_VARDICT))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the destination's reply member 'qemu-features' is %s, not a{sv}",
                                    g_variant_get_type_string(v));
        if (v) {
                g_autoptr(GVariant) b = NULL;

                if ((b = g_variant_lookup_value(v, "postcopy-preempt", G_VARIANT_TYPE_BOOLEAN)))
                        f.postcopy_preempt = g_variant_get_boolean(b);
                g_clear_pointer(&b, g_variant_unref);
                if ((b = g_variant_lookup_value(v, "switchover-ack", G_VARIANT_TYPE_BOOLEAN)))
                        f.switchover_ack = g_variant_get_boolean(b);
                (void) g_variant_lookup(v, "zero-page-detection", "&s", &zero);
        }
        /* What the destination set up, this QEMU must do too; it cannot
         * ask for what this QEMU lacks or what the options exclude. */
        if ((f.postcopy_preempt &&
             (!o->postcopy || !qemu_caps_has_feature(own, QEMU_FEATURE_POSTCOPY_PREEMPT))) ||
            (f.switchover_ack && !qemu_caps_has_feature(own, QEMU_FEATURE_SWITCHOVER_ACK)))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the destination set up a migration feature (%s) that this host's QEMU "
                                    "has not or that the options exclude",
                                    f.postcopy_preempt ? "postcopy-preempt" : "switchover-ack");
        if (qemu_caps_has_feature(own, QEMU_FEATURE_ZERO_PAGE_DETECTION)) {
                f.set_zero_page_detection = true;
                f.zero_page_detection = MIGRATE_ZERO_PAGE_DETECTION_LEGACY; /* safe with any destination */
                for (size_t i = 0; zero && i < G_N_ELEMENTS(zero_page_values); i++)
                        if (g_str_equal(zero, zero_page_values[i]))
                                f.zero_page_detection = i;
        }
        f.zero_copy_send = option_requests(o, QEMU_FEATURE_ZERO_COPY_SEND);
        if (migrate_options_has(o, MIGRATE_OPTION_SWITCHOVER_BANDWIDTH))
                f.switchover_bandwidth = o->switchover_bandwidth;
        *ret = f;
        return 0;
}

char *qemu_features_describe(const QemuFeatures *f) {
        g_autofree char *bandwidth = f->switchover_bandwidth
                ? g_strdup_printf("%" G_GUINT64_FORMAT " bytes/s", f->switchover_bandwidth)
                : g_strdup("estimated by QEMU");

        return g_strdup_printf(
                "postcopy-preempt %s, switchover-ack %s, zero-copy-send %s, zero-page-detection %s, "
                "switchover-bandwidth %s",
                f->postcopy_preempt ? "on" : "off", f->switchover_ack ? "on" : "off",
                f->zero_copy_send ? "on" : "off",
                f->set_zero_page_detection ? zero_page_values[f->zero_page_detection] : "QEMU's default",
                bandwidth);
}
