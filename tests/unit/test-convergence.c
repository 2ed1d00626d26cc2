/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <string.h>

#include "convergence.h"
#include "log.h"

#define MB 1000000ULL
#define MIB (1024ULL * 1024ULL)

/* ---- the model */

static void test_predict_converges(void) {
        ConvergencePrediction p;

        /* q = 0.5: 100 MB -> 50 -> 25 (fits in 300 ms at 100 MB/s) */
        convergence_predict(100 * MB, 50 * MB, 100 * MB, 300, &p);
        g_assert_true(p.known);
        g_assert_true(p.converges);
        g_assert_cmpuint(p.passes, ==, 2);
        g_assert_cmpuint(p.time_ms, ==, 1750); /* 1 s + 0.5 s + 0.25 s pause */
        g_assert_cmpuint(p.needed_downtime_ms, ==, 1000);
        g_assert_cmpuint(p.throttle_percent, ==, 0);

        /* fits at once */
        convergence_predict(20 * MB, 90 * MB, 100 * MB, 300, &p);
        g_assert_true(p.converges);
        g_assert_cmpuint(p.passes, ==, 0);
        g_assert_cmpuint(p.time_ms, ==, 200);
        g_assert_cmpuint(p.throttle_percent, ==, 12); /* 1 - 0.8/0.9 */
}

static void test_predict_diverges(void) {
        ConvergencePrediction p;
        g_autofree char *text = NULL;

        /* The bench's guest: dirtying at 150% of the link. */
        convergence_predict(200 * MB, 150 * MB, 100 * MB, 300, &p);
        g_assert_true(p.known);
        g_assert_false(p.converges);
        g_assert_cmpuint(p.needed_downtime_ms, ==, 2000);
        g_assert_cmpuint(p.throttle_percent, ==, 47); /* 150 * 0.53 < 80 */
        text = convergence_prediction_describe(&p, 300);
        g_assert_cmpstr(text, ==, "pre-copy cannot converge at 300 ms pauses: the switch-over would need a 2000 ms pause");

        /* q = 0.97: it would, in a hundred passes: not worth waiting for */
        convergence_predict(200 * MB, 97 * MB, 100 * MB, 300, &p);
        g_assert_false(p.converges);

        /* no bandwidth yet */
        convergence_predict(200 * MB, 97 * MB, 0, 300, &p);
        g_assert_false(p.known);
        g_assert_false(p.converges);
}

/* ---- the engine, on pre-copy simulated by the model's own rules: each
 * pass sends what is left at the link's rate while the guest, slowed by
 * the throttle, dirties at most its working set. */

typedef struct Run {
        Convergence *c;
        MigrationStats s;
        uint64_t now_usec;
        uint64_t dirty_rate, bandwidth, working_set;
        GString *log; /* "pass:action value[+downtime]" */
        bool postcopy, suspended, aborted, converged;
        ConvergenceAction last;
} Run;

static void run_init(Run *r, const char *policy, uint64_t ram, uint64_t dirty_rate, uint64_t bandwidth,
                     uint64_t downtime, bool postcopy, bool throttle) {
        g_autoptr(GPtrArray) all = policy_load_all(NULL);

        memset(r, 0, sizeof(*r));
        r->c = convergence_new(policy_lookup(all, policy), ram, downtime, postcopy, throttle, 1000);
        r->now_usec = 1000;
        r->dirty_rate = dirty_rate;
        r->bandwidth = bandwidth;
        r->working_set = ram;
        r->s.data_total = ram;
        r->s.data_remaining = ram;
        r->s.iteration = 1;
        r->log = g_string_new(NULL);
}

static void run_clear(Run *r) {
        convergence_free(r->c);
        convergence_action_clear(&r->last);
        g_string_free(r->log, TRUE);
}

static void run_feed(Run *r) {
        ConvergenceAction a = { 0 };
        bool nc;

        if (convergence_update(r->c, &r->s, r->now_usec, &a, &nc) <= 0)
                return;
        g_string_append_printf(r->log, "%s%" G_GUINT64_FORMAT ":%s", r->log->len ? " " : "", r->s.iteration,
                               policy_action_to_string(a.action));
        if (a.value)
                g_string_append_printf(r->log, " %" G_GUINT64_FORMAT, a.value);
        if (a.downtime_ms)
                g_string_append_printf(r->log, "+%" G_GUINT64_FORMAT, a.downtime_ms);
        g_assert_nonnull(a.reason);
        if (a.action == POLICY_ACTION_POSTCOPY)
                r->postcopy = true;
        else if (a.action == POLICY_ACTION_SUSPEND)
                r->suspended = true;
        else if (a.action == POLICY_ACTION_ABORT)
                r->aborted = true;
        convergence_action_clear(&r->last);
        r->last = a;
}

/* Runs passes (and progress reports within them) until the switch-over,
 * post-copy, an abort, or max_passes. */
static void run_passes(Run *r, unsigned max_passes) {
        for (unsigned i = 0; i < max_passes && !r->postcopy && !r->aborted; i++) {
                uint64_t pass_usec = r->s.data_remaining * G_USEC_PER_SEC / r->bandwidth;
                /* what the pause allowed now lets through */
                if (r->s.data_remaining * 1000 <= r->bandwidth * r->c->downtime_ms) {
                        r->converged = true;
                        return;
                }
                /* two progress reports a pass, as QEMU's are polled */
                r->now_usec += pass_usec / 2;
                run_feed(r);
                r->now_usec += pass_usec - pass_usec / 2;
                uint64_t rate = r->suspended ? 0 : r->dirty_rate * (100 - r->c->throttle) / 100;
                r->s.data_remaining = MIN(r->working_set, rate * pass_usec / G_USEC_PER_SEC);
                r->s.iteration++;
                r->s.dirty_rate = rate;
                r->s.bandwidth = r->bandwidth;
                run_feed(r);
        }
}

static void test_engine_converging_guest(void) {
        Run r;

        /* dirtying at 30% of the link: nothing to do */
        run_init(&r, "default", 1024 * MIB, 30 * MB, 100 * MB, 0, false, true);
        run_passes(&r, 20);
        g_assert_true(r.converged);
        g_assert_cmpstr(r.log->str, ==, "");
        run_clear(&r);
}

static void test_engine_default_throttles(void) {
        Run r;

        /* 256 MiB at 150% of a 1 Gbit/s link: the pauses the policy allows
         * (500 ms at most) cannot do it; the model says a 47% throttle
         * would: straight to 'throttle 60' with the 500 ms pause, at pass 2. */
        run_init(&r, "default", 256 * MIB, 178 * MB, 119 * MB, 0, false, true);
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:throttle 60+500");
        g_assert_true(r.converged);
        g_assert_false(r.postcopy);
        run_clear(&r);
}

static void test_engine_downtime_suffices(void) {
        Run r;

        /* A small working set (40 MB) dirtied fast: a 400 ms pause is enough
         * (40 MB at 119 MB/s = 337 ms): no throttle. */
        run_init(&r, "default", 256 * MIB, 178 * MB, 119 * MB, 0, false, true);
        r.working_set = 40 * MB;
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:downtime 400");
        g_assert_true(r.converged);
        run_clear(&r);
}

static void test_engine_postcopy_at_once(void) {
        Run r;

        /* With post-copy allowed: no pause the policy allows is enough, so it
         * switches at the first pass that knows the rates, not after stalls. */
        run_init(&r, "default", 256 * MIB, 178 * MB, 119 * MB, 0, true, true);
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:postcopy");
        g_assert_cmpuint(r.last.step, ==, 0); /* not a step of 'default' */
        g_assert_nonnull(strstr(r.last.reason, "switching to post-copy"));
        run_clear(&r);

        run_init(&r, "postcopy", 256 * MIB, 178 * MB, 119 * MB, 0, true, false);
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:postcopy");
        g_assert_cmpuint(r.last.step, ==, 3);
        run_clear(&r);
}

static void test_engine_caller_downtime_is_a_cap(void) {
        Run r;

        /* max-downtime=200 given: no step pauses longer; throttles only. */
        run_init(&r, "default", 256 * MIB, 178 * MB, 119 * MB, 200, false, true);
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:throttle 60");
        g_assert_cmpuint(r.c->downtime_ms, ==, 200);
        run_clear(&r);
}

static void test_engine_no_throttle_aborts_in_time(void) {
        Run r;
        bool nc = false;
        ConvergenceAction a = { 0 };

        /* auto-converge off: the pauses are tried, then it waits, not
         * converging, and aborts at the budget (60 s minimum: 256 MiB
         * would get 37.5 s at 150 s per GiB). */
        run_init(&r, "default", 256 * MIB, 178 * MB, 119 * MB, 0, false, false);
        run_passes(&r, 20);
        g_assert_cmpstr(r.log->str, ==, "2:downtime 500");
        g_assert_false(r.aborted);
        g_assert_cmpint(convergence_update(r.c, &r.s, r.now_usec, &a, &nc), ==, 0);
        g_assert_true(nc);
        g_assert_cmpuint(r.now_usec, <, 60 * G_USEC_PER_SEC);
        run_passes(&r, 100);
        g_assert_true(r.aborted);
        g_assert_cmpuint(r.now_usec, >=, 60 * G_USEC_PER_SEC);
        g_assert_cmpuint(r.now_usec, <, 64 * G_USEC_PER_SEC);
        g_assert_nonnull(strstr(r.last.reason, "still copying after 60 s, the policy's budget (150 s per GiB"));
        g_assert_nonnull(strstr(r.last.reason, "MiB still to send after pass"));
        run_clear(&r);
}

static void test_engine_suspend_last(void) {
        Run r;

        /* Throttling cannot help a guest whose dirtying does not follow
         * its CPU (say, a device writing memory): the suspend policy ends
         * by pausing it. Modelled as a throttle without effect. */
        run_init(&r, "suspend-workload-if-needed", 256 * MIB, 178 * MB, 119 * MB, 0, false, false);
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:downtime 5000");
        /* 5 s covers 256 MiB at 119 MB/s: it converges there */
        g_assert_true(r.converged);
        run_clear(&r);

        run_init(&r, "suspend-workload-if-needed", 1024 * MIB, 178 * MB, 119 * MB, 0, false, false);
        run_passes(&r, 30);
        g_assert_cmpstr(r.log->str, ==, "2:downtime 5000 3:suspend");
        g_assert_true(r.converged);
        run_clear(&r);
}

static void test_engine_stall_fallback(void) {
        Convergence *c;
        g_autoptr(GPtrArray) all = policy_load_all(NULL);
        ConvergenceAction a = { 0 };
        MigrationStats s = { .data_remaining = 100 * MB, .iteration = 1 };
        bool nc;

        /* The rates say it converges (a dirty rate QEMU underestimates),
         * but what is left does not shrink: two stalled passes, a step. */
        c = convergence_new(policy_lookup(all, "minimal-downtime"), 1024 * MIB, 0, false, true, 0);
        for (unsigned pass = 1; pass <= 3; pass++) {
                s.iteration = pass;
                s.dirty_rate = 10 * MB;
                s.bandwidth = 100 * MB;
                int r = convergence_update(c, &s, pass * G_USEC_PER_SEC, &a, &nc);
                if (pass < 3) {
                        g_assert_cmpint(r, ==, 0);
                        continue;
                }
                g_assert_cmpint(r, ==, 1);
                g_assert_cmpint(a.action, ==, POLICY_ACTION_DOWNTIME);
                g_assert_cmpuint(a.value, ==, 150);
                g_assert_cmpuint(a.step, ==, 1);
                g_assert_true(nc);
        }
        convergence_action_clear(&a);
        convergence_free(c);
}

static void test_engine_progress_timeout(void) {
        Convergence *c;
        g_autoptr(GPtrArray) all = policy_load_all(NULL);
        ConvergenceAction a = { 0 };
        MigrationStats s = { .data_remaining = 100 * MB, .iteration = 1 };
        bool nc;

        /* A huge guest (large budget) whose copy stops moving: 150 s
         * without a new low aborts, long before the budget. */
        c = convergence_new(policy_lookup(all, "minimal-downtime"), 64 * 1024 * MIB, 0, false, false, 0);
        g_assert_cmpint(convergence_update(c, &s, 0, &a, &nc), ==, 0);
        g_assert_cmpint(convergence_update(c, &s, 149 * G_USEC_PER_SEC, &a, &nc), ==, 0);
        g_assert_cmpint(convergence_update(c, &s, 150 * G_USEC_PER_SEC, &a, &nc), ==, 1);
        g_assert_cmpint(a.action, ==, POLICY_ACTION_ABORT);
        g_assert_nonnull(strstr(a.reason, "no progress for 150 s"));
        g_assert_true(nc);
        convergence_action_clear(&a);
        /* once ended, nothing more */
        g_assert_cmpint(convergence_update(c, &s, 300 * G_USEC_PER_SEC, &a, &nc), ==, 0);
        convergence_free(c);
}

static void test_engine_postcopy_not_allowed(void) {
        Run r;

        /* policy 'postcopy' without post-copy allowed (the caller turned
         * it off): its pauses, then it waits, and aborts at the 60 s budget
         * (pass 28 of ~2.25 s each). */
        run_init(&r, "postcopy", 256 * MIB, 178 * MB, 119 * MB, 0, false, false);
        run_passes(&r, 100);
        g_assert_cmpstr(r.log->str, ==, "2:downtime 200 28:abort");
        g_assert_false(r.postcopy);
        g_assert_true(r.aborted);
        run_clear(&r);
}

/* What vmigrated logged (job N: pass P: remaining … dirty-rate …
 * bandwidth …) in hosts-postcopy: the TCG test guest writing at about
 * the 200 Mbit/s link's rate, 48 MiB, reports ~100 ms apart. */
static const MigrationStats recorded_tcg[] = {
        { .iteration = 1, .data_remaining = 63180800 },
        { .iteration = 2, .data_remaining = 32256000, .dirty_rate = 16216064, .bandwidth = 24569520 },
        { .iteration = 2, .data_remaining = 32423936, .dirty_rate = 23715840, .bandwidth = 23952763 },
        { .iteration = 3, .data_remaining = 32423936, .dirty_rate = 23715840, .bandwidth = 23952763 },
        { .iteration = 4, .data_remaining = 32423936, .dirty_rate = 23715840, .bandwidth = 23952763 },
};

static void replay(const char *policy, bool postcopy, bool throttle, GString *log) {
        g_autoptr(GPtrArray) all = policy_load_all(NULL);
        Convergence *c = convergence_new(policy_lookup(all, policy), 64 * MIB, 0, postcopy, throttle, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(recorded_tcg); i++) {
                ConvergenceAction a = { 0 };
                bool nc;
                if (convergence_update(c, &recorded_tcg[i], (i + 1) * 100000, &a, &nc) > 0) {
                        g_autofree char *what =
                                policy_step_describe(&(PolicyStep) { .action = a.action, .value = a.value });
                        g_string_append_printf(log, "%s%" G_GUINT64_FORMAT ":%s", log->len ? " " : "",
                                               recorded_tcg[i].iteration, what);
                        if (a.downtime_ms)
                                g_string_append_printf(log, "+%" G_GUINT64_FORMAT, a.downtime_ms);
                }
                convergence_action_clear(&a);
        }
        convergence_free(c);
}

static void test_recorded_tcg(void) {
        g_autoptr(GString) pc = g_string_new(NULL), th = g_string_new(NULL), none = g_string_new(NULL);

        /* q = 0.66 at the first report of pass 2: wait; 0.99 at the next:
         * post-copy when allowed, at once, still in pass 2 ... */
        replay("default", true, true, pc);
        g_assert_cmpstr(pc->str, ==, "2:postcopy");
        /* ... else the 500 ms pause and a throttle of 20% (0.8 / 0.99), one
         * step a pass: as the recording goes on as if the throttle did
         * nothing, a harder one at each pass after. */
        replay("default", false, true, th);
        g_assert_cmpstr(th->str, ==, "2:throttle 20%+500 3:throttle 40% 4:throttle 60%");
        /* without a throttle: the pause, then only waiting */
        replay("default", false, false, none);
        g_assert_cmpstr(none->str, ==, "2:downtime 500 ms");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_ERR);
        g_test_add_func("/convergence/predict/converges", test_predict_converges);
        g_test_add_func("/convergence/predict/diverges", test_predict_diverges);
        g_test_add_func("/convergence/engine/converging-guest", test_engine_converging_guest);
        g_test_add_func("/convergence/engine/default-throttles", test_engine_default_throttles);
        g_test_add_func("/convergence/engine/downtime-suffices", test_engine_downtime_suffices);
        g_test_add_func("/convergence/engine/postcopy-at-once", test_engine_postcopy_at_once);
        g_test_add_func("/convergence/engine/caller-downtime-is-a-cap", test_engine_caller_downtime_is_a_cap);
        g_test_add_func("/convergence/engine/no-throttle-aborts-in-time", test_engine_no_throttle_aborts_in_time);
        g_test_add_func("/convergence/engine/suspend-last", test_engine_suspend_last);
        g_test_add_func("/convergence/engine/stall-fallback", test_engine_stall_fallback);
        g_test_add_func("/convergence/engine/progress-timeout", test_engine_progress_timeout);
        g_test_add_func("/convergence/engine/postcopy-not-allowed", test_engine_postcopy_not_allowed);
        g_test_add_func("/convergence/recorded/tcg-guest", test_recorded_tcg);
        return g_test_run();
}
