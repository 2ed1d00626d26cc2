/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "migration-stats.h"
#include "policy.h"

/*
 * Will pre-copy converge, and what to do when it will not. Pure
 * arithmetic on what the backend reports at each pass (no clock of its
 * own, no backend): the migration's source feeds it and carries out what
 * it answers; DryRun asks the same model with a measured dirty rate.
 */

/* The pause allowed when neither the caller nor the policy says. */
#define CONVERGENCE_DEFAULT_DOWNTIME_MS 300

/* Pre-copy at the rates of now (convergence_predict). */
typedef struct ConvergencePrediction {
        bool known;     /* the rates are known (a bandwidth was measured) */
        bool converges; /* at the given downtime, without help */
        uint64_t passes;    /* passes still to run before the switch-over, when it converges */
        uint64_t time_ms;   /* until the switch-over, when it converges */
        uint64_t needed_downtime_ms; /* the pause that would allow the switch-over at the steady state */
        uint64_t throttle_percent;   /* the CPU throttle that brings the dirty rate under the link's, 0 = none needed */
} ConvergencePrediction;

/* remaining bytes still to send, dirty_rate and bandwidth in bytes/s. */
void convergence_predict(uint64_t remaining, uint64_t dirty_rate, uint64_t bandwidth, uint64_t downtime_ms,
                         ConvergencePrediction *ret);
/* "converges in ~3 passes, ~2.1 s" / "cannot converge: … would need …". */
char *convergence_prediction_describe(const ConvergencePrediction *p, uint64_t downtime_ms);

typedef struct ConvergenceAction {
        PolicyActionType action;
        uint64_t value;          /* ms for downtime, percent for throttle */
        uint64_t downtime_ms;    /* with throttle: also allow this pause (0 = unchanged) */
        unsigned step;           /* 1-based step of the policy, 0 = its final action */
        char *reason;            /* why, with the numbers */
} ConvergenceAction;

void convergence_action_clear(ConvergenceAction *a);

typedef struct Convergence {
        Policy *policy;
        bool postcopy_allowed; /* option postcopy (or the policy turned it on) */
        bool throttle_allowed; /* auto-converge on and the backend can throttle */
        uint64_t budget_usec;  /* completion timeout, 0 = none */
        uint64_t start_usec;
        uint64_t downtime_ms;  /* allowed now */
        uint64_t downtime_cap; /* the caller's max-downtime: no step goes beyond it */
        uint64_t throttle;     /* percent, now */
        /* progress */
        uint64_t pass;
        uint64_t acted_pass; /* the pass of the last step */
        uint64_t remaining_at_pass;
        unsigned stalled_passes;
        uint64_t lowest_remaining;
        uint64_t lowest_at_usec;
        size_t next_step;
        bool steps_exhausted;
        bool not_converging; /* at the last pass */
        bool done;           /* its final action was taken */
} Convergence;

/* ram_bytes: the guest's memory, for the per-GiB completion budget;
 * downtime_ms: the migration's max-downtime when the caller gave one (it
 * then wins over the policy's initial downtime), else 0. */
Convergence *convergence_new(const Policy *policy, uint64_t ram_bytes, uint64_t downtime_ms, bool postcopy_allowed,
                             bool throttle_allowed, uint64_t now_usec);
void convergence_free(Convergence *c);

/* At each progress report: 1 and ret filled when something is to be
 * done now, 0 when not. Also says, through ret_not_converging, whether
 * pre-copy is not converging at the moment (Job.NotConverging). */
int convergence_update(Convergence *c, const MigrationStats *stats, uint64_t now_usec, ConvergenceAction *ret,
                       bool *ret_not_converging);
