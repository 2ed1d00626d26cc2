/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "names.h"
#include "options.h"

/*
 * Convergence policies: what a migration does, step by step, when
 * pre-copy cannot catch up with what the guest dirties. Data, not code:
 * four are built in, an admin adds or overrides them with files in the
 * policies directory (vmigrated --policies-dir, one NAME.policy each).
 */

typedef enum PolicyActionType {
        POLICY_ACTION_DOWNTIME, /* allow a longer pause at the switch-over (value: ms) */
        POLICY_ACTION_THROTTLE, /* slow the guest's CPUs down (value: percent, 1-99) */
        POLICY_ACTION_POSTCOPY, /* switch to post-copy (needs post-copy allowed) */
        POLICY_ACTION_SUSPEND,  /* pause the guest: the copy then ends at once */
        POLICY_ACTION_ABORT,    /* give up: cancel the migration, NotConverging */
        _POLICY_ACTION_MAX,
} PolicyActionType;

typedef struct PolicyStep {
        PolicyActionType action;
        uint64_t value;
} PolicyStep;

typedef struct Policy {
        char *name;
        char *description;
        char *origin;              /* "built-in" or the file it came from */
        uint64_t initial_downtime; /* ms; 0 = the migration's max-downtime */
        PolicyStep *steps;
        size_t n_steps;
        uint64_t completion_timeout_per_gib; /* s per GiB of guest memory, 0 = none */
        uint64_t progress_timeout;           /* s without a new low of what is left, 0 = none */
        PolicyActionType final_action;       /* abort, postcopy or suspend */
} Policy;

#define POLICY_DEFAULT_NAME "default"
#define POLICY_STEPS_MAX 32
/* A completion budget never shorter than this, whatever the guest's size:
 * the first pass of a small guest on a slow link takes seconds too. */
#define POLICY_COMPLETION_MIN_S 60

void policy_free(Policy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Policy, policy_free);
Policy *policy_copy(const Policy *p);

const char *policy_action_to_string(PolicyActionType a);
bool policy_has_action(const Policy *p, PolicyActionType a);
/* "downtime 150 ms", "throttle 40%", "postcopy"; for logs and the bus. */
char *policy_step_describe(const PolicyStep *s);

/* A policy file's text (a GKeyFile with one [Policy] group). */
int policy_parse(const char *name, const char *text, const char *origin, Policy **ret, GError **error);

/* The policies: the built-in ones, then the files of dir (NULL: none),
 * which override a built-in of the same name. A bad file is skipped with
 * a warning naming it; the others still load. Sorted by name. */
GPtrArray *policy_load_all(const char *dir);
const Policy *policy_lookup(GPtrArray *policies, const char *name);
/* a(ssa{sv}), for Manager.GetPolicies. */
GVariant *policy_describe_all(GPtrArray *policies);

/* The policy a migration with these options runs (option 'policy', else
 * "default"), and what it implies for the options, before the backend's
 * defaults: post-copy on when the policy may switch to it (refused when
 * the caller said 'postcopy'=false), auto-converge on when it throttles
 * and the backend can (unless the caller said no), and its initial
 * downtime as max-downtime when the caller gave none. */
int policy_apply(GPtrArray *policies, MigrateOptions *o, const MigrateOptionSupport *support, size_t n_support,
                 Policy **ret, GError **error);
