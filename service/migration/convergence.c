/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The convergence model and the policy engine (convergence.h).
 *
 * The model is pre-copy's own arithmetic. A pass sends what is left, R
 * bytes, at the link's B bytes/s, while the guest dirties D bytes/s; the
 * next pass has R·q to send, q = D/B. QEMU switches over when what is left
 * fits in the allowed pause T (R ≤ B·T). With q < 1 that happens after
 * n = ⌈log(B·T/R) / log q⌉ passes, after (R/B)·(1 − qⁿ)/(1 − q) seconds;
 * with q near (from 0.8: CONVERGENCE_MAX_RATIO) or above 1 what is left
 * stops shrinking (it levels off at
 * the guest's working set), and only a pause of R/B, a slower guest
 * (throttle: D·(1 − p)) or post-copy ends it. QEMU reports D and B
 * from the second pass on (the first has nothing to compare with).
 *
 * The engine walks the policy's steps with it: from pass 2 on, when the
 * model says pre-copy will not converge at the current settings (or will
 * not within the completion budget), or when what is left stopped
 * shrinking for two passes though the model hoped otherwise, it takes the
 * next step that can help, skipping those the numbers already rule out:
 * a pause too short when a longer one follows, a throttle too light when
 * a harder one follows. With post-copy allowed, it switches as soon as no
 * pause the policy allows is long enough, instead of throttling the
 * guest. Out of steps, the final action: post-copy and suspend at once,
 * abort when out of time (the completion budget or the progress timeout).
 */
#include <math.h>
#include <string.h>

#include "convergence.h"

/* A pass that sends less than 5% of what the previous one had to is a
 * stall; two in a row make the engine act even when the model hoped. */
#define STALL_PASSES 2
/* q at or above this converges too slowly to wait for: at 0.8 a pass
 * sends only a fifth less than the one before, and QEMU's dirty rate is a
 * one-second sample (a guest at 0.9 by one sample is often at 1.0 by the
 * next): help now rather than after ten more passes that may not shrink. */
#define CONVERGENCE_MAX_RATIO 0.8
/* A throttle aims the dirty rate at this share of the link. */
#define THROTTLE_TARGET_RATIO 0.8
/* What is left must fall by 1% to count as progress (progress timeout). */
#define PROGRESS_MIN_PERMILLE 10

#define MIB (1024 * 1024)

void convergence_predict(uint64_t remaining, uint64_t dirty_rate, uint64_t bandwidth, uint64_t downtime_ms,
                         ConvergencePrediction *ret) {
        ConvergencePrediction p = { 0 };

        if (bandwidth == 0) {
                *ret = p;
                return;
        }
        p.known = true;
        double r = (double) remaining, b = (double) bandwidth, q = (double) dirty_rate / b;
        double threshold = b * (double) downtime_ms / 1000.0;

        p.needed_downtime_ms = (uint64_t) ceil(r * 1000.0 / b);
        if (q > THROTTLE_TARGET_RATIO)
                p.throttle_percent = MIN((uint64_t) ceil((1.0 - THROTTLE_TARGET_RATIO / q) * 100.0), 99);

        if (r <= threshold) {
                p.converges = true;
                p.time_ms = (uint64_t) (r * 1000.0 / b);
        } else if (q < CONVERGENCE_MAX_RATIO) {
                double n = q <= 0.0 ? 1.0 : ceil(log(threshold / r) / log(q));
                n = MAX(n, 1.0);
                p.converges = true;
                p.passes = (uint64_t) n;
                /* the passes, then the last bit sent during the pause */
                p.time_ms = (uint64_t) ((r / b) * (1.0 - pow(q, n)) / (1.0 - q) * 1000.0 +
                                        r * pow(q, n) * 1000.0 / b);
        }
        *ret = p;
}

char *convergence_prediction_describe(const ConvergencePrediction *p, uint64_t downtime_ms) {
        if (!p->known)
                return g_strdup("no bandwidth measured yet");
        if (p->converges)
                return g_strdup_printf("pre-copy converges at %" G_GUINT64_FORMAT " ms pauses in ~%" G_GUINT64_FORMAT
                                       " more passes, ~%.1f s",
                                       downtime_ms, p->passes, (double) p->time_ms / 1000.0);
        return g_strdup_printf("pre-copy cannot converge at %" G_GUINT64_FORMAT " ms pauses: the switch-over "
                               "would need a %" G_GUINT64_FORMAT " ms pause%s",
                               downtime_ms, p->needed_downtime_ms,
                               p->throttle_percent ? "" : " (what is left does not shrink)");
}

void convergence_action_clear(ConvergenceAction *a) {
        g_clear_pointer(&a->reason, g_free);
        memset(a, 0, sizeof(*a));
}

Convergence *convergence_new(const Policy *policy, uint64_t ram_bytes, uint64_t downtime_ms, bool postcopy_allowed,
                             bool throttle_allowed, uint64_t now_usec) {
        Convergence *c = g_new0(Convergence, 1);

        c->policy = policy_copy(policy);
        c->postcopy_allowed = postcopy_allowed;
        c->throttle_allowed = throttle_allowed;
        c->downtime_cap = downtime_ms ? downtime_ms : UINT64_MAX;
        c->downtime_ms = downtime_ms          ? downtime_ms
                         : policy->initial_downtime ? policy->initial_downtime
                                                    : CONVERGENCE_DEFAULT_DOWNTIME_MS;
        if (policy->completion_timeout_per_gib) {
                uint64_t s = (uint64_t) ceil((double) policy->completion_timeout_per_gib * (double) ram_bytes /
                                             (1024.0 * 1024.0 * 1024.0));
                c->budget_usec = MAX(s, (uint64_t) POLICY_COMPLETION_MIN_S) * G_USEC_PER_SEC;
        }
        c->start_usec = now_usec;
        c->lowest_at_usec = now_usec;
        return c;
}

void convergence_free(Convergence *c) {
        if (!c)
                return;
        policy_free(c->policy);
        g_free(c);
}

static char *rates(const MigrationStats *s) {
        return g_strdup_printf("%" G_GUINT64_FORMAT " MiB still to send after pass %" G_GUINT64_FORMAT
                               ", the guest dirties %" G_GUINT64_FORMAT " MiB/s and %" G_GUINT64_FORMAT
                               " MiB/s get across",
                               s->data_remaining / MIB, s->iteration, s->dirty_rate / MIB, s->bandwidth / MIB);
}

/* The final action: now for post-copy and suspend; abort only with a
 * reason it is time (`why`), else 0: wait, not converging. */
static int take_final(Convergence *c, const MigrationStats *stats, const char *why, ConvergenceAction *ret) {
        PolicyActionType a = c->policy->final_action;
        g_autofree char *r = rates(stats);

        if (a == POLICY_ACTION_POSTCOPY && !c->postcopy_allowed)
                a = POLICY_ACTION_ABORT;
        if (a == POLICY_ACTION_ABORT && !why)
                return 0;
        c->done = true;
        *ret = (ConvergenceAction) { .action = a, .step = 0 };
        ret->reason = g_strdup_printf("%s: %s", why ? why : "the policy has no step left", r);
        return 1;
}

/* The kind of step that helps only as far as its value goes. */
static bool step_graded(PolicyActionType a) {
        return a == POLICY_ACTION_DOWNTIME || a == POLICY_ACTION_THROTTLE;
}

static bool step_usable(const Convergence *c, const PolicyStep *s) {
        switch (s->action) {
        case POLICY_ACTION_DOWNTIME:
                return s->value > c->downtime_ms && s->value <= c->downtime_cap;
        case POLICY_ACTION_THROTTLE:
                return c->throttle_allowed && s->value > c->throttle;
        case POLICY_ACTION_POSTCOPY:
                return c->postcopy_allowed;
        default:
                return true;
        }
}

/* Would the step be enough by the model's numbers? */
static bool step_sufficient(const PolicyStep *s, const ConvergencePrediction *p) {
        if (!p->known)
                return true;
        if (s->action == POLICY_ACTION_DOWNTIME)
                return s->value >= p->needed_downtime_ms;
        if (s->action == POLICY_ACTION_THROTTLE)
                return s->value >= p->throttle_percent;
        return true;
}

/* Whether the next usable step after steps[i] is of the same kind (steps
 * that cannot be used here, say throttles without auto-converge, do not
 * count). */
static bool has_later_graded(const Convergence *c, size_t i) {
        for (size_t j = i + 1; j < c->policy->n_steps; j++) {
                const PolicyStep *s = &c->policy->steps[j];
                if (step_usable(c, s))
                        return s->action == c->policy->steps[i].action;
        }
        return false;
}

/* The longest pause any step left (or the cap) allows. */
static uint64_t longest_downtime_left(const Convergence *c) {
        uint64_t longest = c->downtime_ms;

        for (size_t j = c->next_step; j < c->policy->n_steps; j++) {
                const PolicyStep *s = &c->policy->steps[j];
                if (s->action == POLICY_ACTION_DOWNTIME && s->value <= c->downtime_cap)
                        longest = MAX(longest, s->value);
        }
        return longest;
}

static int take_step(Convergence *c, const MigrationStats *stats, const ConvergencePrediction *p,
                     ConvergenceAction *ret) {
        g_autofree char *model = convergence_prediction_describe(p, c->downtime_ms);
        uint64_t pending_downtime = 0;

        /* Post-copy allowed: better than throttling the guest, once no
         * pause the policy allows is long enough. */
        if (c->postcopy_allowed && p->known && !p->converges && p->needed_downtime_ms > longest_downtime_left(c)) {
                c->done = true;
                *ret = (ConvergenceAction) { .action = POLICY_ACTION_POSTCOPY };
                for (size_t j = c->next_step; j < c->policy->n_steps; j++)
                        if (c->policy->steps[j].action == POLICY_ACTION_POSTCOPY) {
                                ret->step = (unsigned) j + 1;
                                break;
                        }
                ret->reason = g_strdup_printf("%s, longer than the %" G_GUINT64_FORMAT
                                              " ms the policy allows: switching to post-copy",
                                              model, longest_downtime_left(c));
                return 1;
        }

        for (size_t i = c->next_step; i < c->policy->n_steps; i++) {
                const PolicyStep *s = &c->policy->steps[i];

                if (!step_usable(c, s))
                        continue;
                if (step_graded(s->action) && !step_sufficient(s, p) && has_later_graded(c, i)) {
                        if (s->action == POLICY_ACTION_DOWNTIME)
                                pending_downtime = MAX(pending_downtime, s->value);
                        continue; /* a bigger one follows: go straight to it */
                }
                /* A run of pauses none of which is enough, then a throttle:
                 * both at once, the longest pause with the throttle. */
                if (s->action == POLICY_ACTION_DOWNTIME && !step_sufficient(s, p) && i + 1 < c->policy->n_steps &&
                    c->policy->steps[i + 1].action == POLICY_ACTION_THROTTLE &&
                    step_usable(c, &c->policy->steps[i + 1])) {
                        pending_downtime = MAX(pending_downtime, s->value);
                        continue;
                }
                c->next_step = i + 1;
                if (s->action == POLICY_ACTION_THROTTLE && c->postcopy_allowed) {
                        /* The guest may run at full speed on the destination instead. */
                        c->done = true;
                        *ret = (ConvergenceAction) { .action = POLICY_ACTION_POSTCOPY, .step = (unsigned) i + 1 };
                        ret->reason = g_strdup_printf("%s: switching to post-copy rather than throttling", model);
                        return 1;
                }
                *ret = (ConvergenceAction) { .action = s->action, .value = s->value, .step = (unsigned) i + 1 };
                if (s->action == POLICY_ACTION_DOWNTIME)
                        c->downtime_ms = s->value;
                else if (s->action == POLICY_ACTION_THROTTLE) {
                        c->throttle = s->value;
                        if (pending_downtime > c->downtime_ms) {
                                ret->downtime_ms = pending_downtime;
                                c->downtime_ms = pending_downtime;
                        }
                } else
                        c->done = true;
                ret->reason = g_strdup(model);
                return 1;
        }
        c->next_step = c->policy->n_steps;
        c->steps_exhausted = true;
        if (pending_downtime > c->downtime_ms) {
                /* Nothing else left, but a longer pause still helps. */
                c->downtime_ms = pending_downtime;
                *ret = (ConvergenceAction) { .action = POLICY_ACTION_DOWNTIME, .value = pending_downtime };
                ret->reason = g_strdup(model);
                return 1;
        }
        return take_final(c, stats, c->policy->completion_timeout_per_gib || c->policy->progress_timeout
                                            ? NULL
                                            : "the policy has no step left and no time limit",
                          ret);
}

static const char *check_time(Convergence *c, const MigrationStats *stats, uint64_t now_usec, char **ret_why) {
        const Policy *p = c->policy;

        if (stats->data_remaining * 1000 < c->lowest_remaining * (1000 - PROGRESS_MIN_PERMILLE) ||
            c->lowest_remaining == 0) {
                c->lowest_remaining = stats->data_remaining;
                c->lowest_at_usec = now_usec;
        }
        if (c->budget_usec && now_usec - c->start_usec >= c->budget_usec)
                return *ret_why = g_strdup_printf("still copying after %" G_GUINT64_FORMAT
                                                  " s, the policy's budget (%" G_GUINT64_FORMAT
                                                  " s per GiB of memory)",
                                                  c->budget_usec / G_USEC_PER_SEC, p->completion_timeout_per_gib);
        if (p->progress_timeout && now_usec - c->lowest_at_usec >= p->progress_timeout * G_USEC_PER_SEC)
                return *ret_why = g_strdup_printf("no progress for %" G_GUINT64_FORMAT
                                                  " s (what is left did not shrink below %" G_GUINT64_FORMAT
                                                  " MiB)",
                                                  p->progress_timeout, c->lowest_remaining / MIB);
        return NULL;
}

int convergence_update(Convergence *c, const MigrationStats *stats, uint64_t now_usec, ConvergenceAction *ret,
                       bool *ret_not_converging) {
        g_autofree char *why = NULL;
        ConvergencePrediction p;

        *ret_not_converging = c->not_converging;
        if (c->done || stats->postcopy_active)
                return 0;
        if (check_time(c, stats, now_usec, &why)) {
                *ret_not_converging = c->not_converging = true;
                return take_final(c, stats, why, ret);
        }
        if (stats->iteration > c->pass) {
                bool stalled = c->remaining_at_pass > 0 &&
                               stats->data_remaining * 20 >= c->remaining_at_pass * 19;
                c->pass = stats->iteration;
                c->remaining_at_pass = stats->data_remaining;
                c->stalled_passes = stalled ? c->stalled_passes + 1 : 0;
        }
        /* From pass 2 on (the rates describe a pass), at every report, for
         * the rates may come a report late; but one step a pass, so that
         * each has a pass to show what it did. */
        if (stats->iteration < 2 || c->acted_pass == c->pass)
                return 0;

        convergence_predict(stats->data_remaining, stats->dirty_rate, stats->bandwidth, c->downtime_ms, &p);
        uint64_t left_usec = c->budget_usec ? c->budget_usec - MIN(c->budget_usec, now_usec - c->start_usec) : 0;
        bool too_slow = p.known && p.converges && c->budget_usec && p.time_ms * 1000 > left_usec;
        bool needs_help = (p.known && !p.converges) || too_slow || c->stalled_passes >= STALL_PASSES;

        *ret_not_converging = c->not_converging = needs_help;
        if (!needs_help)
                return 0;
        c->stalled_passes = 0;
        c->acted_pass = c->pass;
        if (c->steps_exhausted)
                return take_final(c, stats, NULL, ret);
        /* Stalled though the rates say it converges: the numbers are off
         * (QEMU's dirty rate is a sample), so no step is skipped on them. */
        if (p.known && p.converges && !too_slow)
                p.known = false;
        return take_step(c, stats, &p, ret);
}
