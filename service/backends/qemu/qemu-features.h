/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "options.h"
#include "qemu-caps.h"

/*
 * QEMU's newer migration features, each behind a Migrate option, used only
 * where the QEMU that needs it has it (probed, never assumed from a
 * version). Some work on both ends of the stream and must be set on both
 * QEMUs; the others are the sender's business alone.
 */
typedef enum QemuFeatureId {
        QEMU_FEATURE_POSTCOPY_PREEMPT,
        QEMU_FEATURE_ZERO_PAGE_DETECTION,
        QEMU_FEATURE_ZERO_COPY_SEND,
        QEMU_FEATURE_SWITCHOVER_ACK,
        QEMU_FEATURE_SWITCHOVER_BANDWIDTH,
        _QEMU_FEATURE_MAX,
} QemuFeatureId;

typedef struct QemuFeatureInfo {
        const char *option;    /* the Migrate option */
        const char *qemu_name; /* QEMU's capability or parameter */
        bool parameter;        /* a parameter (query-migrate-parameters), else a capability */
        const char *since;     /* the first QEMU version that has it */
        bool both_sides;       /* the destination's QEMU must have it too */
} QemuFeatureInfo;

const QemuFeatureInfo *qemu_feature_info(QemuFeatureId id);
bool qemu_caps_has_feature(const QemuCaps *caps, QemuFeatureId id);

/* What one migration uses, as the destination decided from both QEMUs
 * and the options (qemu_features_negotiate). */
typedef struct QemuFeatures {
        bool postcopy_preempt;
        bool switchover_ack; /* and return-path, which it needs */
        bool zero_copy_send;
        MigrateZeroPageDetection zero_page_detection;
        bool set_zero_page_detection;  /* false: leave QEMU's (the machine type's) default */
        uint64_t switchover_bandwidth; /* 0: QEMU estimates from the stream */
} QemuFeatures;

/*
 * The Migrate options' entries for these features in the backend's support
 * table: supported when this QEMU has the feature, else why not (naming
 * the QEMU, its version and the version that has it). Strings in why_not
 * are the caller's to free (g_free on each entry's why_not).
 */
void qemu_features_option_support(const QemuCaps *caps, MigrateOptionSupport *support, size_t n);

/* Source, Begin: "qemu-features" as, the features this QEMU has. */
void qemu_features_add_to_cookie(const QemuCaps *caps, GVariantDict *cookie);

/*
 * Destination, Prepare: what this migration uses. An option given
 * explicitly needs the feature on both QEMUs that take part (else
 * VM_ERROR_UNSUPPORTED_OPTION naming the option, the QEMU capability or
 * parameter, the host that lacks it and its QEMU version); an option left
 * out turns on what both have where it helps (see qemu-features.c).
 * source_version: the source's QEMU as it said, for messages.
 */
int qemu_features_negotiate(const QemuCaps *own, GVariant *source_cookie, const MigrateOptions *o,
                            const char *own_host, const char *source_host, QemuFeatures *ret,
                            GError **error);

/* Destination's Prepare reply: "qemu-features" a{sv}; the source reads it
 * back with the sender-only features from its own options. An absent
 * member (an older destination) means the feature stays off. */
void qemu_features_add_to_reply(const QemuFeatures *f, GVariantDict *reply);
int qemu_features_from_reply(GVariant *backend_reply, const QemuCaps *own, const MigrateOptions *o,
                             QemuFeatures *ret, GError **error);

/* One line for the logs: "postcopy-preempt on, zero-page-detection=multifd, …". */
char *qemu_features_describe(const QemuFeatures *f);
