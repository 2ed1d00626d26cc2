/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "domain-xml.h"

/*
 * The host-side features an incoming domain needs on the destination, set
 * up in this order and undone in the reverse one:
 *
 *   1. the admin hooks (hooks.h), in name order: sub-phase "prepare"
 *      before the guest's QEMU starts, "finish" before it runs; undone
 *      with "abort";
 *   2. each <interface type='bridge'> (or 'network': the bridge the host's
 *      network table names, networks.h): its bridge must be there here; the
 *      backend creates the tap and attaches it when it starts QEMU (a hook
 *      may have just created the bridge, hence after the hooks), and
 *      QEMU's exit takes it away again.
 *
 * A feature named in <vmigrate:require …/> must not fail: its failure
 * fails the migration (VM_ERROR_INCOMPATIBLE, the message naming the host,
 * the feature and, for a hook, its exit status and last output lines).
 * Any other failure is a warning (features_warnings) and the migration
 * goes on: a hook's failure is only reported, an interface whose bridge
 * is missing runs unconnected with its link down.
 */

typedef struct Features Features;

typedef struct FeaturesConfig {
        sd_event *event;
        const char *host;          /* prefixes messages: "host-b: …" */
        const char *hooks_dir;     /* NULL: no hooks */
        uint64_t hook_timeout_usec;
        const char *sys_class_net; /* NULL: /sys/class/net */
        const char *networks_dir;  /* the network table (networks.h); NULL: none */
} FeaturesConfig;

/* error: NULL on success (warnings may have been added), else why a
 * required feature failed (borrowed). */
typedef void (*FeaturesDone)(const GError *error, void *userdata);

/* Copies what it needs from config and def. */
Features *features_new(const FeaturesConfig *config, const DomainDef *def);
/* Stops a hook that is running (killed, its done never called). Nothing
 * is undone: see features_abort. */
void features_free(Features *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Features, features_free)

/* Prepare: the hooks at "prepare", then the bridges. On a required failure
 * done gets the error; the caller then calls features_abort. */
int features_prepare(Features *f, FeaturesDone done, void *userdata);
/* Finish: the hooks at "finish". may_fail false (post-copy: the guest can
 * go back nowhere) makes a required hook's failure a warning too. */
int features_finish(Features *f, bool may_fail, FeaturesDone done, void *userdata);
/* Undo: the hooks that ran get "abort", in reverse order, failures only
 * logged. Takes f and frees it once they are done (or at once). */
void features_abort(Features *f);

/* The warnings so far, in order ("host-b: …"). */
const GPtrArray *features_warnings(const Features *f);

/* NULL when <sys_class_net>/<bridge> is a bridge (sys_class_net NULL =
 * /sys/class/net), else what is wrong with it, one phrase
 * ("bridge br0 is missing"). */
char *host_bridge_problem(const char *sys_class_net, const char *bridge);
