/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Job object on its own: what the bus layer reads from it and hears
 * about through the manager's observer, on a real sd-event loop with the
 * test backend. No migration is running: the tests drive the job the way
 * migration.c does. */
#include <errno.h>
#include <glib/gstdio.h>

#include "backends.h"
#include "log.h"
#include "manager.h"
#include "unit-util.h"

#define DEMO_XML                                                                                            \
        "<domain type='test'><name>demo</name><uuid>8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10</uuid>"            \
        "<memory unit='MiB'>256</memory><vcpu>2</vcpu></domain>"
#define OTHER_XML                                                                                           \
        "<domain type='test'><name>other</name><uuid>0d6f1c9e-7a41-4d8e-b7a5-3c2e1f0a9b88</uuid>"           \
        "<memory unit='MiB'>128</memory><vcpu>1</vcpu></domain>"
#define DEST_URI "unix:///run/dest/system_bus_socket"

typedef struct Fixture {
        sd_event *event;
        char *dir;
        Manager *manager;
        Domain *demo;
        /* What the observer heard, in order: "job-added 1",
         * "job-changed 1 phase|stats", "job-ended 1 failed", "job-removed 1",
         * "domain-changed demo job". */
        GPtrArray *events;
        /* What the bus layer would find while emitting Finished. */
        bool ended_seen;
        Job *ended_domain_job;
        char *ended_stats_phase;
        unsigned n_removed;
        bool removed;
        bool removed_was_findable;
} Fixture;

static char *change_to_string(JobChange what) {
        static const struct {
                JobChange flag;
                const char *name;
        } names[] = {
                { JOB_CHANGE_PHASE, "phase" },       { JOB_CHANGE_STATS, "stats" },
                { JOB_CHANGE_ERROR, "error" },       { JOB_CHANGE_CONVERGENCE, "convergence" },
                { JOB_CHANGE_WARNINGS, "warnings" },
        };
        GString *s = g_string_new(NULL);

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                if (what & names[i].flag)
                        g_string_append_printf(s, "%s%s", s->len ? "|" : "", names[i].name);
        return g_string_free(s, false);
}

static void on_domain_changed(Manager *m, Domain *d, DomainChange what, void *userdata) {
        Fixture *f = userdata;

        if (what & DOMAIN_CHANGE_JOB)
                g_ptr_array_add(f->events, g_strdup_printf("domain-changed %s job", domain_name(d)));
}

static void on_job_added(Manager *m, Job *j, void *userdata) {
        Fixture *f = userdata;
        g_ptr_array_add(f->events, g_strdup_printf("job-added %" G_GUINT64_FORMAT, j->id));
}

static void on_job_changed(Manager *m, Job *j, JobChange what, void *userdata) {
        Fixture *f = userdata;
        g_autofree char *flags = change_to_string(what);
        g_ptr_array_add(f->events, g_strdup_printf("job-changed %" G_GUINT64_FORMAT " %s", j->id, flags));
}

static void on_job_ended(Manager *m, Job *j, void *userdata) {
        Fixture *f = userdata;
        g_autoptr(GVariant) stats = g_variant_ref_sink(job_stats_to_variant(j));

        g_ptr_array_add(
                f->events,
                g_strdup_printf("job-ended %" G_GUINT64_FORMAT " %s", j->id, job_phase_to_string(j->phase)));
        f->ended_seen = true;
        f->ended_domain_job = j->domain->job;
        g_free(f->ended_stats_phase);
        f->ended_stats_phase = NULL;
        (void) g_variant_lookup(stats, "phase", "s", &f->ended_stats_phase);
}

static void on_job_removed(Manager *m, Job *j, void *userdata) {
        Fixture *f = userdata;

        g_ptr_array_add(f->events, g_strdup_printf("job-removed %" G_GUINT64_FORMAT, j->id));
        f->n_removed++;
        f->removed = true;
        /* The bus layer builds the object path from it and says InterfacesRemoved. */
        f->removed_was_findable = manager_lookup_job(m, j->id) == j;
}

static const ManagerObserver observer = {
        .domain_changed = on_domain_changed,
        .job_added = on_job_added,
        .job_changed = on_job_changed,
        .job_ended = on_job_ended,
        .job_removed = on_job_removed,
};

static Domain *define(Fixture *f, const char *xml) {
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        g_assert_cmpint(manager_define_xml(f->manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(d);
        return d;
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *state = NULL, *run = NULL;

        f->dir = g_dir_make_tmp("test-job-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        state = g_build_filename(f->dir, "state", NULL);
        run = g_build_filename(f->dir, "run", NULL);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(manager_new(f->event, state, run, builtin_backends, n_builtin_backends, &f->manager, &error), ==, 0);
        g_assert_no_error(error);
        manager_set_observer(f->manager, &observer, f);
        f->events = g_ptr_array_new_with_free_func(g_free);
        f->demo = define(f, DEMO_XML);
        g_ptr_array_set_size(f->events, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        /* Frees running and lingering jobs alike: valgrind checks that. */
        manager_free(f->manager);
        sd_event_unref(f->event);
        rm_rf(f->dir);
        g_free(f->dir);
        g_free(f->ended_stats_phase);
        g_ptr_array_unref(f->events);
}

/* Asserts the observer heard exactly `expected` (NULL-terminated) since the
 * last call, then forgets it. */
static void assert_events(Fixture *f, const char *const *expected) {
        guint n = g_strv_length((char **) expected);

        for (guint i = 0; i < f->events->len; i++)
                g_test_message("heard: %s", (const char *) f->events->pdata[i]);
        g_assert_cmpuint(f->events->len, ==, n);
        for (guint i = 0; i < MIN(n, f->events->len); i++)
                g_assert_cmpstr(f->events->pdata[i], ==, expected[i]);
        g_ptr_array_set_size(f->events, 0);
}
#define ASSERT_EVENTS(f, ...) assert_events(f, (const char *const[]){ __VA_ARGS__, NULL })
#define ASSERT_NO_EVENTS(f) assert_events(f, (const char *const[]){ NULL })

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        *(bool *) userdata = true;
        return 0;
}

/* Drives the loop until *flag is set, for at most 5 s. */
static bool run_until(Fixture *f, const bool *flag) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (!*flag && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        return *flag;
}

/* Drives the loop until its clock has moved on by at least usec. */
static void run_for(Fixture *f, uint64_t usec) {
        sd_event_source *timer = NULL;
        bool fired = false;

        g_assert_cmpint(
                sd_event_add_time_relative(f->event, &timer, CLOCK_MONOTONIC, usec, 0, on_timer, &fired), >=,
                0);
        g_assert_true(run_until(f, &fired));
        sd_event_source_disable_unref(timer);
}

static GVariant *stats_of(const Job *j) {
        return g_variant_ref_sink(job_stats_to_variant(j));
}

static void update(Job *j, uint64_t processed, uint64_t remaining) {
        MigrationStats stats = {
                .data_total = processed + remaining,
                .data_processed = processed,
                .data_remaining = remaining,
        };
        job_update_stats(j, &stats);
}

/* ---- names ---- */

/* Kind and Phase on the bus, and the "kind"/"phase" statistics. */
static void test_names(void) {
        static const char *const phases[] = { "begin",   "prepare",   "perform", "postcopy", "finish",
                                              "confirm", "completed", "failed",  "cancelled" };

        G_STATIC_ASSERT(G_N_ELEMENTS(phases) == _JOB_PHASE_MAX);
        g_assert_cmpstr(job_kind_to_string(JOB_MIGRATION_OUT), ==, "migration-out");
        g_assert_cmpstr(job_kind_to_string(JOB_MIGRATION_IN), ==, "migration-in");
        g_assert_null(job_kind_to_string(_JOB_KIND_MAX));
        g_assert_null(job_kind_to_string((JobKind) -1));
        for (JobPhase p = 0; p < _JOB_PHASE_MAX; p++)
                g_assert_cmpstr(job_phase_to_string(p), ==, phases[p]);
        g_assert_null(job_phase_to_string(_JOB_PHASE_MAX));
        g_assert_null(job_phase_to_string((JobPhase) -1));
}

static void test_final_phases(void) {
        for (JobPhase p = 0; p < _JOB_PHASE_MAX; p++) {
                bool final = p == JOB_PHASE_COMPLETED || p == JOB_PHASE_FAILED || p == JOB_PHASE_CANCELLED;
                g_test_message("phase %s", job_phase_to_string(p));
                g_assert_true(job_phase_is_final(p) == final);
        }
}

/* ---- creation ---- */

static void test_new(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);

        g_assert_cmpuint(j->id, ==, 1);
        g_assert_true(manager_lookup_job(f->manager, 1) == j);
        g_assert_true(j->manager == f->manager);
        g_assert_true(j->domain == f->demo);
        g_assert_true(f->demo->job == j);
        g_assert_cmpint(j->kind, ==, JOB_MIGRATION_OUT);
        g_assert_cmpstr(j->peer, ==, DEST_URI);
        g_assert_cmpint(j->phase, ==, JOB_PHASE_BEGIN);
        g_assert_cmpfloat(j->progress, ==, 0.0);
        g_assert_null(j->error);
        g_assert_false(j->not_converging);
        g_assert_cmpuint(j->warnings->len, ==, 0);
        g_assert_cmpuint(j->ended_usec, ==, 0);
        g_assert_cmpuint(j->started_usec, >, 0);
        /* The bus layer exports the object first, then says Domain.Job changed. */
        ASSERT_EVENTS(f, "job-added 1", "domain-changed demo job");

        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_OUT), ==, 1);
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_IN), ==, 0);
        g_assert_false(manager_is_idle(f->manager));
}

static void test_new_incoming(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_IN, f->demo, "host-a");
        g_autoptr(GVariant) stats = stats_of(j);
        const char *s = NULL;

        g_assert_cmpint(j->kind, ==, JOB_MIGRATION_IN);
        g_assert_true(g_variant_lookup(stats, "kind", "&s", &s));
        g_assert_cmpstr(s, ==, "migration-in");
        g_assert_true(g_variant_lookup(stats, "peer", "&s", &s));
        g_assert_cmpstr(s, ==, "host-a");
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_IN), ==, 1);
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_OUT), ==, 0);
}

/* Ids name bus objects (/org/vmigrate/Migrate1/Job/<id>): a removed job's
 * id must not come back for another job. */
static void test_ids(Fixture *f, gconstpointer data) {
        Domain *other = define(f, OTHER_XML);
        Job *first = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        Job *second, *third;

        job_end(first, JOB_PHASE_FAILED, "refused");
        second = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_assert_cmpuint(first->id, ==, 1);
        g_assert_cmpuint(second->id, ==, 2);
        g_assert_true(manager_lookup_job(f->manager, 1) == first); /* still lingering */
        g_assert_true(manager_lookup_job(f->manager, 2) == second);
        g_assert_true(f->demo->job == second);

        manager_remove_job(f->manager, first);
        g_assert_null(manager_lookup_job(f->manager, 1));
        third = job_new(f->manager, JOB_MIGRATION_IN, other, "host-a");
        g_assert_cmpuint(third->id, ==, 3);
        g_assert_true(manager_lookup_job(f->manager, 3) == third);
        g_assert_null(manager_lookup_job(f->manager, 4));
        g_assert_null(manager_lookup_job(f->manager, 0));
}

/* ---- phases ---- */

static void test_phase_changes(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);

        g_ptr_array_set_size(f->events, 0);
        job_set_phase(j, JOB_PHASE_PREPARE);
        g_assert_cmpint(j->phase, ==, JOB_PHASE_PREPARE);
        ASSERT_EVENTS(f, "job-changed 1 phase");

        /* Phase is EMITS_CHANGE: no PropertiesChanged when nothing changed. */
        job_set_phase(j, JOB_PHASE_PREPARE);
        ASSERT_NO_EVENTS(f);

        job_set_phase(j, JOB_PHASE_PERFORM);
        job_set_phase(j, JOB_PHASE_POSTCOPY);
        job_set_phase(j, JOB_PHASE_FINISH);
        job_set_phase(j, JOB_PHASE_CONFIRM);
        g_assert_cmpint(j->phase, ==, JOB_PHASE_CONFIRM);
        ASSERT_EVENTS(f, "job-changed 1 phase", "job-changed 1 phase", "job-changed 1 phase",
                      "job-changed 1 phase");
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_OUT), ==, 1);
}

/* Once a job has its result, a late event from the migration (a phase
 * change racing the failure) must not turn it back into a running one. */
static void test_final_is_final(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);

        job_set_phase(j, JOB_PHASE_PERFORM);
        job_end(j, JOB_PHASE_FAILED, "connection reset");
        g_ptr_array_set_size(f->events, 0);

        job_set_phase(j, JOB_PHASE_CONFIRM);
        g_assert_cmpint(j->phase, ==, JOB_PHASE_FAILED);
        job_set_phase(j, JOB_PHASE_COMPLETED);
        g_assert_cmpint(j->phase, ==, JOB_PHASE_FAILED);
        ASSERT_NO_EVENTS(f);
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_OUT), ==, 0);
}

/* ---- progress and statistics ---- */

static void test_progress_follows_data(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);

        /* Setup: QEMU knows no figures yet. */
        update(j, 0, 0);
        g_assert_cmpfloat(j->progress, ==, 0.0);
        update(j, 25, 75);
        g_assert_cmpfloat_with_epsilon(j->progress, 0.25, 1e-9);
        update(j, 50, 50);
        g_assert_cmpfloat_with_epsilon(j->progress, 0.5, 1e-9);
        update(j, 100, 0);
        g_assert_cmpfloat(j->progress, ==, 1.0);
}

static void test_progress_never_goes_down(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_autoptr(GVariant) stats = NULL;
        double progress = -1;
        guint64 remaining = 0;

        update(j, 600, 400);
        g_assert_cmpfloat_with_epsilon(j->progress, 0.6, 1e-9);
        /* A new pass: the guest dirtied more than was sent meanwhile. */
        update(j, 700, 1300);
        g_assert_cmpfloat_with_epsilon(j->progress, 0.6, 1e-9);
        /* The figures themselves are what QEMU said, dip included. */
        g_assert_cmpuint(j->stats.data_remaining, ==, 1300);
        stats = stats_of(j);
        g_assert_true(g_variant_lookup(stats, "progress", "d", &progress));
        g_assert_cmpfloat_with_epsilon(progress, 0.6, 1e-9);
        g_assert_true(g_variant_lookup(stats, "data-remaining", "t", &remaining));
        g_assert_cmpuint(remaining, ==, 1300);
        /* No figures (a query between passes) do not reset it either. */
        update(j, 0, 0);
        g_assert_cmpfloat_with_epsilon(j->progress, 0.6, 1e-9);
        /* And it moves on once the copy overtakes it. */
        update(j, 1800, 200);
        g_assert_cmpfloat_with_epsilon(j->progress, 0.9, 1e-9);
}

/* A completed job reads 100 % even if the last figures said less; one
 * that failed keeps how far it got. */
static void test_progress_at_end(Fixture *f, gconstpointer data) {
        Domain *other = define(f, OTHER_XML);
        Job *done = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        Job *failed = job_new(f->manager, JOB_MIGRATION_OUT, other, DEST_URI);

        update(done, 90, 10);
        job_end(done, JOB_PHASE_COMPLETED, NULL);
        g_assert_cmpfloat(done->progress, ==, 1.0);

        update(failed, 40, 60);
        job_end(failed, JOB_PHASE_FAILED, "destination went away");
        g_assert_cmpfloat_with_epsilon(failed->progress, 0.4, 1e-9);
}

static void test_stats_update(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        MigrationStats stats = {
                .data_total = 1000,
                .data_processed = 300,
                .data_remaining = 700,
                .iteration = 2,
                .dirty_rate = 4096,
                .bandwidth = 1 << 20,
                .expected_downtime_ms = 30,
                .setup_ms = 5,
        };

        g_ptr_array_set_size(f->events, 0);
        job_update_stats(j, &stats);
        g_assert_cmpmem(&j->stats, sizeof(j->stats), &stats, sizeof(stats));
        ASSERT_EVENTS(f, "job-changed 1 stats");
        stats.iteration = 3;
        job_update_stats(j, &stats);
        g_assert_cmpuint(j->stats.iteration, ==, 3);
        ASSERT_EVENTS(f, "job-changed 1 stats");
}

/* Every key a client reads from Finished, JobCompleted and GetJobStats. */
static void test_stats_variant(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        MigrationStats stats = {
                .data_total = 1000,
                .data_processed = 250,
                .data_remaining = 750,
                .iteration = 3,
                .dirty_rate = 11,
                .bandwidth = 12,
                .expected_downtime_ms = 13,
                .downtime_ms = 14,
                .setup_ms = 15,
                .postcopy_requests = 16,
                .postcopy_active = true,
                .has_postcopy_blocktime = true,
                .postcopy_blocktime_ms = 17,
        };
        static const struct {
                const char *key;
                guint64 value;
        } numbers[] = {
                { "data-total", 1000 },
                { "data-processed", 250 },
                { "data-remaining", 750 },
                { "iteration", 3 },
                { "dirty-rate", 11 },
                { "bandwidth", 12 },
                { "expected-downtime-ms", 13 },
                { "downtime-ms", 14 },
                { "setup-ms", 15 },
                { "postcopy-requests", 16 },
                { "postcopy-blocktime-ms", 17 },
        };
        g_autoptr(GVariant) v = NULL;
        g_autofree const char **warnings = NULL;
        const char *s = NULL;
        double progress = -1;
        gboolean b = false;
        guint64 t = 0;

        job_set_phase(j, JOB_PHASE_PERFORM);
        job_update_stats(j, &stats);
        job_set_not_converging(j, true, "dirty rate above bandwidth");
        job_add_warning(j, "first");
        job_add_warning(j, "second");
        v = stats_of(j);

        g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE("a{sv}")));
        g_assert_true(g_variant_lookup(v, "kind", "&s", &s));
        g_assert_cmpstr(s, ==, "migration-out");
        g_assert_true(g_variant_lookup(v, "phase", "&s", &s));
        g_assert_cmpstr(s, ==, "perform");
        g_assert_true(g_variant_lookup(v, "peer", "&s", &s));
        g_assert_cmpstr(s, ==, DEST_URI);
        g_assert_true(g_variant_lookup(v, "progress", "d", &progress));
        g_assert_cmpfloat_with_epsilon(progress, 0.25, 1e-9);
        g_assert_true(g_variant_lookup(v, "elapsed-ms", "t", &t));
        for (size_t i = 0; i < G_N_ELEMENTS(numbers); i++) {
                t = G_MAXUINT64;
                g_test_message("key %s", numbers[i].key);
                g_assert_true(g_variant_lookup(v, numbers[i].key, "t", &t));
                g_assert_cmpuint(t, ==, numbers[i].value);
        }
        g_assert_true(g_variant_lookup(v, "not-converging", "b", &b));
        g_assert_true(b);
        g_assert_true(g_variant_lookup(v, "postcopy", "b", &b));
        g_assert_true(b);
        g_assert_true(g_variant_lookup(v, "warnings", "^a&s", &warnings));
        g_assert_nonnull(warnings);
        if (warnings) {
                g_assert_cmpuint(g_strv_length((char **) warnings), ==, 2);
                g_assert_cmpstr(warnings[0], ==, "first");
                g_assert_cmpstr(warnings[1], ==, "second");
        }
        /* No error while it runs. */
        g_assert_false(g_variant_lookup(v, "error", "&s", &s));
}

static void test_stats_variant_minimal(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_IN, f->demo, NULL);
        g_autoptr(GVariant) v = stats_of(j);
        g_autofree const char **warnings = NULL;
        gboolean b = true;
        const char *s;

        g_assert_false(g_variant_lookup(v, "peer", "&s", &s));
        g_assert_false(g_variant_lookup(v, "error", "&s", &s));
        /* Only once a destination measured it. */
        g_assert_false(g_variant_lookup(v, "postcopy-blocktime-ms", "t", NULL));
        g_assert_true(g_variant_lookup(v, "not-converging", "b", &b));
        g_assert_false(b);
        b = true;
        g_assert_true(g_variant_lookup(v, "postcopy", "b", &b));
        g_assert_false(b);
        /* Present and empty: clients need not test for it. */
        g_assert_true(g_variant_lookup(v, "warnings", "^a&s", &warnings));
        g_assert_nonnull(warnings);
        if (warnings)
                g_assert_null(warnings[0]);
}

/* ElapsedMs counts while the job runs and stops when it ends. */
static void test_elapsed(Fixture *f, gconstpointer data) {
        /* Held, as a bus call in flight would: a job removed too early
         * fails the test instead of being read after it was freed. */
        g_autoptr(Job) j = job_ref(job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI));
        g_autoptr(GVariant) v = NULL;
        uint64_t at_end;
        guint64 t = 0;

        run_for(f, 30 * 1000);
        g_assert_cmpuint(job_elapsed_ms(j), >=, 30);
        job_end(j, JOB_PHASE_COMPLETED, NULL);
        at_end = job_elapsed_ms(j);
        g_assert_cmpuint(at_end, >=, 30);
        g_assert_cmpuint(at_end, ==, (j->ended_usec - j->started_usec) / 1000);

        run_for(f, 30 * 1000);
        g_assert_cmpuint(job_elapsed_ms(j), ==, at_end);
        v = stats_of(j);
        g_assert_true(g_variant_lookup(v, "elapsed-ms", "t", &t));
        g_assert_cmpuint(t, ==, at_end);
}

/* ---- NotConverging ---- */

static void test_not_converging(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);

        g_ptr_array_set_size(f->events, 0);
        job_set_not_converging(j, false, NULL);
        ASSERT_NO_EVENTS(f);

        job_set_not_converging(j, true, "the guest dirties 2 GiB/s, the link carries 1 GiB/s");
        g_assert_true(j->not_converging);
        g_assert_cmpstr(j->not_converging_detail, ==, "the guest dirties 2 GiB/s, the link carries 1 GiB/s");
        ASSERT_EVENTS(f, "job-changed 1 convergence");

        /* The same again: no second signal. */
        job_set_not_converging(j, true, "the guest dirties 2 GiB/s, the link carries 1 GiB/s");
        ASSERT_NO_EVENTS(f);

        /* Worse figures: clients hear the new sentence. */
        job_set_not_converging(j, true, "the guest dirties 3 GiB/s, the link carries 1 GiB/s");
        g_assert_cmpstr(j->not_converging_detail, ==, "the guest dirties 3 GiB/s, the link carries 1 GiB/s");
        ASSERT_EVENTS(f, "job-changed 1 convergence");

        job_set_not_converging(j, false, NULL);
        g_assert_false(j->not_converging);
        g_assert_null(j->not_converging_detail);
        ASSERT_EVENTS(f, "job-changed 1 convergence");
}

/* ---- warnings ---- */

static void test_warnings_in_order(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_IN, f->demo, "host-a");

        g_ptr_array_set_size(f->events, 0);
        job_add_warning(j, "host-b: interface 52:54:00:00:00:01: attach failed");
        job_add_warning(j, "host-b: hook 'net' failed");
        job_add_warning(j, "host-b: interface 52:54:00:00:00:02: attach failed");
        g_assert_cmpuint(j->warnings->len, ==, 3);
        g_assert_cmpstr(j->warnings->pdata[0], ==, "host-b: interface 52:54:00:00:00:01: attach failed");
        g_assert_cmpstr(j->warnings->pdata[1], ==, "host-b: hook 'net' failed");
        g_assert_cmpstr(j->warnings->pdata[2], ==, "host-b: interface 52:54:00:00:00:02: attach failed");
        ASSERT_EVENTS(f, "job-changed 1 warnings", "job-changed 1 warnings", "job-changed 1 warnings");
}

static void test_warnings_no_duplicates(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_IN, f->demo, "host-a");

        job_add_warning(j, "a");
        job_add_warning(j, "b");
        g_ptr_array_set_size(f->events, 0);
        job_add_warning(j, "a");
        job_add_warning(j, "b");
        g_assert_cmpuint(j->warnings->len, ==, 2);
        ASSERT_NO_EVENTS(f);
}

/* A peer that keeps finding things to warn about cannot grow the job (and
 * every GetJobStats reply) without bound. */
static void test_warnings_capped(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_IN, f->demo, "host-a");
        g_autoptr(GVariant) v = NULL;
        g_autofree const char **warnings = NULL;
        unsigned notified = 0;

        g_ptr_array_set_size(f->events, 0);
        for (unsigned i = 0; i < JOB_WARNINGS_MAX + 10; i++) {
                g_autofree char *w = g_strdup_printf("warning %u", i);
                job_add_warning(j, w);
        }
        g_assert_cmpuint(j->warnings->len, ==, JOB_WARNINGS_MAX);
        /* The first ones are kept: they are usually the cause of the rest. */
        for (unsigned i = 0; i < MIN(j->warnings->len, JOB_WARNINGS_MAX); i++) {
                g_autofree char *w = g_strdup_printf("warning %u", i);
                g_assert_cmpstr(j->warnings->pdata[i], ==, w);
        }
        for (guint i = 0; i < f->events->len; i++)
                notified += g_str_equal(f->events->pdata[i], "job-changed 1 warnings");
        g_assert_cmpuint(notified, ==, JOB_WARNINGS_MAX);
        g_assert_cmpuint(f->events->len, ==, JOB_WARNINGS_MAX);

        v = stats_of(j);
        g_assert_true(g_variant_lookup(v, "warnings", "^a&s", &warnings));
        g_assert_cmpuint(warnings ? g_strv_length((char **) warnings) : 0, ==, JOB_WARNINGS_MAX);
}

/* ---- the end ---- */

static void test_end_completed(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        const char *s = NULL;

        job_set_phase(j, JOB_PHASE_CONFIRM);
        job_end(j, JOB_PHASE_COMPLETED, NULL);
        g_assert_cmpint(j->phase, ==, JOB_PHASE_COMPLETED);
        g_assert_null(j->error);
        g_assert_cmpuint(j->ended_usec, >=, j->started_usec);
        g_assert_cmpuint(j->ended_usec, >, 0);
        /* The domain's Job property goes back to "/". */
        g_assert_null(f->demo->job);
        /* Lingers for late readers, but is no longer running. */
        g_assert_true(manager_lookup_job(f->manager, j->id) == j);
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_OUT), ==, 0);
        g_assert_true(manager_is_idle(f->manager));

        /* GetJobStats on the domain answers from here now. */
        g_assert_nonnull(f->demo->last_job_stats);
        if (f->demo->last_job_stats) {
                double progress = 0;
                g_assert_true(g_variant_lookup(f->demo->last_job_stats, "phase", "&s", &s));
                g_assert_cmpstr(s, ==, "completed");
                g_assert_true(g_variant_lookup(f->demo->last_job_stats, "progress", "d", &progress));
                g_assert_cmpfloat(progress, ==, 1.0);
                g_assert_false(g_variant_lookup(f->demo->last_job_stats, "error", "&s", &s));
        }
}

static void test_end_failed(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_autoptr(GVariant) v = NULL;
        const char *s = NULL;

        job_end(j, JOB_PHASE_FAILED, "sending the guest: Connection reset by peer");
        g_assert_cmpint(j->phase, ==, JOB_PHASE_FAILED);
        g_assert_cmpstr(j->error, ==, "sending the guest: Connection reset by peer");
        v = stats_of(j);
        g_assert_true(g_variant_lookup(v, "phase", "&s", &s));
        g_assert_cmpstr(s, ==, "failed");
        g_assert_true(g_variant_lookup(v, "error", "&s", &s));
        g_assert_cmpstr(s, ==, "sending the guest: Connection reset by peer");
        g_assert_nonnull(f->demo->last_job_stats);
        if (f->demo->last_job_stats) {
                g_assert_true(g_variant_lookup(f->demo->last_job_stats, "error", "&s", &s));
                g_assert_cmpstr(s, ==, "sending the guest: Connection reset by peer");
        }
        g_assert_null(f->demo->job);
}

static void test_end_cancelled(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_autoptr(GVariant) v = NULL;
        const char *s = NULL;

        update(j, 10, 90);
        job_end(j, JOB_PHASE_CANCELLED, "cancelled by the user");
        g_assert_cmpint(j->phase, ==, JOB_PHASE_CANCELLED);
        g_assert_cmpstr(j->error, ==, "cancelled by the user");
        g_assert_cmpfloat_with_epsilon(j->progress, 0.1, 1e-9);
        v = stats_of(j);
        g_assert_true(g_variant_lookup(v, "phase", "&s", &s));
        g_assert_cmpstr(s, ==, "cancelled");
        g_assert_cmpuint(manager_count_running_jobs(f->manager, JOB_MIGRATION_OUT), ==, 0);
}

/* The first result stands: a failure reported after the job completed (the
 * source's connection dropping once it is over, say) changes nothing. */
static void test_end_once(Fixture *f, gconstpointer data) {
        g_autoptr(Job) j = job_ref(job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI));
        GVariant *last;
        uint64_t ended;

        job_end(j, JOB_PHASE_COMPLETED, NULL);
        ended = j->ended_usec;
        last = f->demo->last_job_stats;
        g_ptr_array_set_size(f->events, 0);
        f->ended_seen = false;

        run_for(f, 2 * 1000);
        job_end(j, JOB_PHASE_FAILED, "too late");
        g_assert_cmpint(j->phase, ==, JOB_PHASE_COMPLETED);
        g_assert_null(j->error);
        g_assert_cmpuint(j->ended_usec, ==, ended);
        g_assert_true(f->demo->last_job_stats == last);
        g_assert_false(f->ended_seen);
        ASSERT_NO_EVENTS(f);
}

/* What the bus layer relies on to emit PropertiesChanged before Finished,
 * and Finished with the final figures. */
static void test_end_notifications(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);

        g_ptr_array_set_size(f->events, 0);
        job_end(j, JOB_PHASE_FAILED, "refused");
        ASSERT_EVENTS(f, "domain-changed demo job", "job-changed 1 phase|stats|error", "job-ended 1 failed");
        g_assert_true(f->ended_seen);
        g_assert_null(f->ended_domain_job);
        g_assert_cmpstr(f->ended_stats_phase, ==, "failed");
        /* Removal comes later, from the loop. */
        g_assert_cmpuint(f->n_removed, ==, 0);
}

/* An ended job stays on the bus JOB_LINGER_USEC so that a client that
 * reads it after Finished still finds the result, then goes away. */
static void test_linger(Fixture *f, gconstpointer data) {
        g_autoptr(Job) j = job_ref(job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI));
        uint64_t when = 0, now = 0;

        job_end(j, JOB_PHASE_COMPLETED, NULL);
        g_assert_nonnull(j->linger);
        if (!j->linger)
                return;
        g_assert_cmpint(sd_event_source_get_time(j->linger, &when), >=, 0);
        g_assert_cmpuint(when, >=, j->ended_usec + JOB_LINGER_USEC);
        g_assert_cmpuint(when, <=, j->ended_usec + JOB_LINGER_USEC + G_USEC_PER_SEC);

        run_for(f, 50 * 1000);
        g_assert_true(manager_lookup_job(f->manager, 1) == j);
        g_assert_cmpuint(f->n_removed, ==, 0);

        /* Rather than wait a minute: bring the timer forward and let the loop fire it. */
        g_assert_cmpint(sd_event_now(f->event, CLOCK_MONOTONIC, &now), >=, 0);
        g_assert_cmpint(sd_event_source_set_time(j->linger, now), >=, 0);
        g_ptr_array_set_size(f->events, 0);
        g_assert_true(run_until(f, &f->removed));
        g_assert_cmpuint(f->n_removed, ==, 1);
        g_assert_true(f->removed_was_findable);
        g_assert_null(manager_lookup_job(f->manager, 1));
        ASSERT_EVENTS(f, "job-removed 1");
        /* The domain remembers the result after the job has gone. */
        g_assert_nonnull(f->demo->last_job_stats);
}

/* A caller holding a reference (a bus call in flight) may still read the
 * job after it left the manager. */
static void test_ref_outlives_removal(Fixture *f, gconstpointer data) {
        g_autoptr(Job) j = job_ref(job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI));
        g_autoptr(GVariant) v = NULL;
        const char *s = NULL;
        uint64_t elapsed;

        job_end(j, JOB_PHASE_FAILED, "refused");
        elapsed = job_elapsed_ms(j);
        manager_remove_job(f->manager, j);
        g_assert_null(manager_lookup_job(f->manager, 1));
        g_assert_null(j->manager);
        g_assert_cmpuint(job_elapsed_ms(j), ==, elapsed);
        v = stats_of(j);
        g_assert_true(g_variant_lookup(v, "error", "&s", &s));
        g_assert_cmpstr(s, ==, "refused");
        /* Nothing the removed job does reaches the manager's observer. */
        g_ptr_array_set_size(f->events, 0);
        job_add_warning(j, "late");
        update(j, 1, 1);
        ASSERT_NO_EVENTS(f);
}

/* ---- history: what `vmigratectl report` draws ---- */

static void pass(Job *j, uint64_t iteration, uint64_t remaining, uint64_t dirty_rate, bool postcopy) {
        MigrationStats stats = {
                .data_total = 1000,
                .data_processed = 1000 - remaining,
                .data_remaining = remaining,
                .iteration = iteration,
                .dirty_rate = dirty_rate,
                .bandwidth = 100,
                .expected_downtime_ms = remaining * 10,
                .postcopy_active = postcopy,
        };
        job_update_stats(j, &stats);
}

/* The i-th sample of an aa{sv} history. */
static GVariant *sample_at(GVariant *history, gsize i) {
        return g_variant_get_child_value(history, i);
}

static char *sample_event(GVariant *sample) {
        const char *event = "?", *detail = "?";

        (void) g_variant_lookup(sample, "event", "&s", &event);
        (void) g_variant_lookup(sample, "detail", "&s", &detail);
        return *detail ? g_strdup_printf("%s %s", event, detail) : g_strdup(event);
}

static guint64 sample_t(GVariant *sample, const char *key) {
        guint64 v = G_MAXUINT64;

        g_assert_true(g_variant_lookup(sample, key, "t", &v));
        return v;
}

/* One sample per pass, taken at the pass's first report (what it has to
 * send), the policy's steps, the switch to post-copy and the end, in the
 * order they happened, on a clock that only goes forward; GetJobStats has
 * them, after the end too, and the signals do not carry them. */
static void test_history_passes(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_autoptr(GVariant) history = NULL, signal_stats = NULL;
        static const char *const expected[] = {
                "pass", "pass", "policy step 1: downtime 500 ms", "pass", "postcopy", "end completed",
        };
        guint64 last_t = 0;

        job_set_phase(j, JOB_PHASE_PERFORM);
        pass(j, 1, 1000, 0, false);
        run_for(f, 3 * 1000);
        pass(j, 1, 600, 50, false); /* the same pass goes on: no sample */
        pass(j, 2, 400, 60, false);
        job_set_policy(j, "default");
        job_policy_step(j, 1, "downtime 500 ms", "the model says 9 more passes");
        run_for(f, 3 * 1000);
        pass(j, 3, 300, 70, false);
        pass(j, 3, 200, 70, true);
        job_end(j, JOB_PHASE_COMPLETED, NULL);

        g_assert_nonnull(f->demo->last_job_stats);
        if (!f->demo->last_job_stats)
                return;
        history = g_variant_lookup_value(f->demo->last_job_stats, "history", G_VARIANT_TYPE("aa{sv}"));
        g_assert_nonnull(history);
        if (!history)
                return;
        g_assert_cmpuint(g_variant_n_children(history), ==, G_N_ELEMENTS(expected));
        for (gsize i = 0; i < MIN(g_variant_n_children(history), G_N_ELEMENTS(expected)); i++) {
                g_autoptr(GVariant) s = sample_at(history, i);
                g_autofree char *event = sample_event(s);
                guint64 t = sample_t(s, "t-ms");

                g_assert_cmpstr(event, ==, expected[i]);
                g_assert_cmpuint(t, >=, last_t);
                g_assert_cmpuint(t, <=, job_elapsed_ms(j));
                last_t = t;
        }
        {
                g_autoptr(GVariant) first = sample_at(history, 0), second = sample_at(history, 1),
                                    policy = sample_at(history, 2), third = sample_at(history, 3),
                                    postcopy = sample_at(history, 4);
                const char *reason = NULL;

                g_assert_cmpuint(sample_t(first, "pass"), ==, 1);
                g_assert_cmpuint(sample_t(first, "data-remaining"), ==, 1000);
                g_assert_cmpuint(sample_t(second, "pass"), ==, 2);
                g_assert_cmpuint(sample_t(second, "data-remaining"), ==, 400);
                g_assert_cmpuint(sample_t(second, "data-processed"), ==, 600);
                g_assert_cmpuint(sample_t(second, "dirty-rate"), ==, 60);
                g_assert_cmpuint(sample_t(second, "bandwidth"), ==, 100);
                g_assert_cmpuint(sample_t(second, "expected-downtime-ms"), ==, 4000);
                g_assert_true(g_variant_lookup(policy, "reason", "&s", &reason));
                g_assert_cmpstr(reason, ==, "the model says 9 more passes");
                g_assert_false(g_variant_lookup(first, "reason", "&s", &reason));
                /* The run_for()s lie between these. */
                g_assert_cmpuint(sample_t(second, "t-ms"), >=, sample_t(first, "t-ms") + 3);
                g_assert_cmpuint(sample_t(third, "t-ms"), >=, sample_t(policy, "t-ms") + 3);
                g_assert_cmpuint(sample_t(postcopy, "data-remaining"), ==, 200);
        }

        /* Finished and JobCompleted stay small. */
        signal_stats = stats_of(j);
        g_assert_null(g_variant_lookup_value(signal_stats, "history", NULL));
}

/* Pre-copy's end: the switch-over is the caller's to mark (the backend's
 * stream completed); nothing is sampled after the end. */
static void test_history_switchover(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_autoptr(GVariant) v = NULL, history = NULL;
        static const char *const expected[] = { "pass", "switchover", "end failed" };

        pass(j, 1, 1000, 0, false);
        job_history_add(j, JOB_EVENT_SWITCHOVER, NULL, NULL);
        job_end(j, JOB_PHASE_FAILED, "finish on the destination: refused");
        pass(j, 2, 10, 0, false);
        job_history_add(j, JOB_EVENT_SWITCHOVER, NULL, NULL);

        v = g_variant_ref_sink(job_stats_with_history_to_variant(j));
        history = g_variant_lookup_value(v, "history", G_VARIANT_TYPE("aa{sv}"));
        g_assert_nonnull(history);
        if (!history)
                return;
        g_assert_cmpuint(g_variant_n_children(history), ==, G_N_ELEMENTS(expected));
        for (gsize i = 0; i < MIN(g_variant_n_children(history), G_N_ELEMENTS(expected)); i++) {
                g_autoptr(GVariant) s = sample_at(history, i);
                g_autofree char *event = sample_event(s);
                g_assert_cmpstr(event, ==, expected[i]);
        }
}

/* The destination's job sees no passes: its history is empty, but there. */
static void test_history_incoming(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_IN, f->demo, "host-a");
        g_autoptr(GVariant) history = NULL;

        pass(j, 4, 10, 0, false);
        job_end(j, JOB_PHASE_COMPLETED, NULL);
        g_assert_nonnull(f->demo->last_job_stats);
        if (!f->demo->last_job_stats)
                return;
        history = g_variant_lookup_value(f->demo->last_job_stats, "history", G_VARIANT_TYPE("aa{sv}"));
        g_assert_nonnull(history);
        if (history)
                g_assert_cmpuint(g_variant_n_children(history), ==, 0);
}

/* A job that never converges cannot grow without bound: the history stays
 * under JOB_HISTORY_MAX, with the first pass, the newest passes, every
 * event, and the passes in between thinned evenly (still in order). */
static void test_history_capped(Fixture *f, gconstpointer data) {
        Job *j = job_new(f->manager, JOB_MIGRATION_OUT, f->demo, DEST_URI);
        g_autoptr(GVariant) history = NULL;
        const guint64 n = 5 * JOB_HISTORY_MAX;
        guint64 last_pass = 0, policies = 0, early = 0, late = 0;
        gsize len;

        for (guint64 i = 1; i <= n; i++) {
                pass(j, i, 500, 100, false);
                if (i == 10)
                        job_policy_step(j, 1, "downtime 500 ms", "early");
        }
        job_end(j, JOB_PHASE_CANCELLED, "cancelled by the user");
        history = g_variant_lookup_value(f->demo->last_job_stats, "history", G_VARIANT_TYPE("aa{sv}"));
        g_assert_nonnull(history);
        if (!history)
                return;
        len = g_variant_n_children(history);
        g_assert_cmpuint(len, <=, JOB_HISTORY_MAX);
        g_assert_cmpuint(len, >=, JOB_HISTORY_MAX / 2);
        for (gsize i = 0; i < len; i++) {
                g_autoptr(GVariant) s = sample_at(history, i);
                g_autofree char *event = sample_event(s);
                guint64 p = sample_t(s, "pass");

                if (i == 0) {
                        g_assert_cmpstr(event, ==, "pass");
                        g_assert_cmpuint(p, ==, 1);
                }
                if (i == len - 1)
                        g_assert_cmpstr(event, ==, "end cancelled");
                if (i == len - 2) {
                        g_assert_cmpstr(event, ==, "pass");
                        g_assert_cmpuint(p, ==, n);
                }
                if (g_str_has_prefix(event, "policy"))
                        policies++;
                else if (g_str_equal(event, "pass")) {
                        g_assert_cmpuint(p, >, last_pass);
                        last_pass = p;
                        early += p <= n / 2;
                        late += p > n / 2;
                }
        }
        g_assert_cmpuint(policies, ==, 1);
        /* Thinned over the whole run, not just its start. */
        g_assert_cmpuint(early, >, len / 8);
        g_assert_cmpuint(late, >, len / 8);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_ERR);

        g_test_add_func("/job/names/kinds-and-phases", test_names);
        g_test_add_func("/job/phase/final-ones", test_final_phases);
#define ADD(path, fn) g_test_add("/job/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("new/registered", test_new);
        ADD("new/incoming", test_new_incoming);
        ADD("new/ids-not-reused", test_ids);
        ADD("phase/changes-notify", test_phase_changes);
        ADD("phase/final-is-final", test_final_is_final);
        ADD("progress/follows-data", test_progress_follows_data);
        ADD("progress/never-goes-down", test_progress_never_goes_down);
        ADD("progress/at-end", test_progress_at_end);
        ADD("stats/update", test_stats_update);
        ADD("stats/variant", test_stats_variant);
        ADD("stats/variant-minimal", test_stats_variant_minimal);
        ADD("stats/elapsed-stops-at-end", test_elapsed);
        ADD("not-converging/set-and-clear", test_not_converging);
        ADD("warnings/in-order", test_warnings_in_order);
        ADD("warnings/no-duplicates", test_warnings_no_duplicates);
        ADD("warnings/capped", test_warnings_capped);
        ADD("end/completed", test_end_completed);
        ADD("end/failed", test_end_failed);
        ADD("end/cancelled", test_end_cancelled);
        ADD("end/only-once", test_end_once);
        ADD("end/notifications", test_end_notifications);
        ADD("end/lingers-then-removed", test_linger);
        ADD("ref/outlives-removal", test_ref_outlives_removal);
        ADD("history/passes-steps-postcopy-end", test_history_passes);
        ADD("history/switchover-and-nothing-after-end", test_history_switchover);
        ADD("history/incoming-empty", test_history_incoming);
        ADD("history/capped-and-thinned", test_history_capped);
        return g_test_run();
}
