/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated backend, "test" on the bus (domain type "test"): domains
 * simulated in-process, for client developers and fast tests. State
 * transitions are real (they take event-loop time and are reported like a
 * hypervisor would report them); nothing is executed.
 *
 * Simulated timings (CLOCK_MONOTONIC):
 *   start      20 ms   shutoff → running (started/booted)
 *   shutdown   100 ms  running → shutdown at once, then → shutoff (the
 *                      "guest" acknowledges the ACPI request)
 *   destroy, suspend, resume: next event-loop iteration
 *
 * Migration is simulated from the domain's memory size, the bandwidth and
 * the rate at which the "guest" dirties memory, so that passes, progress,
 * convergence and downtime behave as with a real hypervisor (pre-copy):
 * every SIM_MIGRATION_TICK_USEC the stream moves bandwidth × tick bytes
 * of the current pass while the guest dirties dirty-rate × tick bytes;
 * when a pass ends and what is dirty fits in max-downtime, the guest is
 * paused and the rest sent. The dirty rate comes from the domain's
 * <description>, as "test-dirty-rate=<bytes per second>" (default 0: an
 * idle guest). No data moves between hosts: the destination only changes
 * state when told.
 */
#include <errno.h>
#include <string.h>

#include "backend.h"
#include "domain.h"
#include "errors.h"

#define SIM_START_USEC (20 * 1000)
#define SIM_SHUTDOWN_USEC (100 * 1000)
#define SIM_MIGRATION_TICK_USEC (50 * 1000)
#define SIM_DEFAULT_BANDWIDTH (1024ULL * 1024 * 1024) /* bytes/s */
#define SIM_DEFAULT_MAX_DOWNTIME_MS 300
/* auto-converge as QEMU's defaults have it: a throttle of 20% at the third
 * pass, 10% more at each pass after, at most 99%. */
#define SIM_THROTTLE_INITIAL 20
#define SIM_THROTTLE_INCREMENT 10
#define SIM_THROTTLE_MAX 99

typedef struct SimMigration {
        sd_event_source *timer;
        MigrateProgressFn progress;
        BackendDone done;
        void *userdata;

        MigrationStats stats;
        uint64_t memory;
        uint64_t bandwidth;
        double dirty_rate;   /* the guest's, before any throttle */
        uint64_t max_downtime_ms;
        bool auto_converge;
        unsigned throttle;   /* percent of CPU time taken from the guest */
        unsigned throttle_initial, throttle_increment, throttle_max;
        uint64_t pass_left;  /* bytes of this pass still to send */
        double dirtied;      /* bytes dirtied since this pass began */
        uint64_t started_usec;
        bool cancelled;
        bool postcopy_allowed;
        bool postcopy_requested;
} SimMigration;

typedef struct SimBackend {
        sd_event *event;
} SimBackend;

typedef struct SimDomain {
        SimBackend *backend;
        Domain *domain; /* borrowed: the domain owns us */

        /* The operation in flight, completed by `timer`. */
        sd_event_source *timer;
        void (*finish)(struct SimDomain *td);
        BackendDone done;
        void *userdata;
        /* A shutdown that a destroy overtook: it completes with the destroy. */
        BackendDone overtaken_done;
        void *overtaken_userdata;

        SimMigration *migration; /* outgoing stream in progress */
        /* A dirty rate measurement in progress (DryRun). */
        sd_event_source *measure_timer;
        BackendDirtyRateDone measure_done;
        void *measure_userdata;
        bool ran_before_migration;
        /* Post-copy: what is left to pull after the switch, and how fast. */
        uint64_t postcopy_left;
        uint64_t postcopy_bandwidth;
        bool in_postcopy;
        MigrationStats postcopy_stats; /* at the switch; completed when Confirm is done */
        MigrateProgressFn postcopy_progress;
        void *postcopy_progress_userdata;
        sd_event_source *postcopy_timer; /* destination: the last pages arriving */
        BackendDone postcopy_ended;
        void *postcopy_userdata;
} SimDomain;

static int sim_init(const BackendContext *ctx, void **ret_backend_data, GError **error) {
        SimBackend *b = g_new0(SimBackend, 1);

        b->event = sd_event_ref(ctx->event);
        *ret_backend_data = b;
        return 0;
}

static void sim_fini(void *backend_data) {
        SimBackend *b = backend_data;

        sd_event_unref(b->event);
        g_free(b);
}

static int sim_validate(void *backend_data, const DomainDef *def, GError **error) {
        /* Anything the parser accepted can be simulated; paths are not
         * touched, so they need not exist. */
        return 0;
}

static int sim_domain_attach(void *backend_data, Domain *domain, void **ret_domain_data, GError **error) {
        SimDomain *td = g_new0(SimDomain, 1);

        td->backend = backend_data;
        td->domain = domain;
        *ret_domain_data = td;
        return 0;
}

static int sim_domain_forget(void *domain_data, GError **error) {
        /* Nothing to drop: a simulated domain keeps no state outside the
         * daemon's memory, which goes with its object. */
        return 0;
}

static void sim_domain_cancel(SimDomain *td) {
        td->timer = sd_event_source_disable_unref(td->timer);
        td->finish = NULL;
        td->done = NULL;
        td->userdata = NULL;
        td->overtaken_done = NULL;
        td->overtaken_userdata = NULL;
}

static void sim_domain_detach(void *domain_data) {
        SimDomain *td = domain_data;

        /* The core holds a reference to the domain while an operation is in
         * flight, so none can be pending here. */
        g_assert(!td->done && !td->overtaken_done && !td->migration && !td->postcopy_ended);
        sd_event_source_disable_unref(td->postcopy_timer);
        if (td->measure_done) {
                g_autoptr(GError) error = NULL;
                vm_error_set(&error, VM_ERROR_NO_SUCH_DOMAIN, "the domain went away while it was measured");
                td->measure_timer = sd_event_source_disable_unref(td->measure_timer);
                td->measure_done(-ECANCELED, 0, error, td->measure_userdata);
        }
        sim_domain_cancel(td);
        g_free(td);
}

static int sim_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        SimDomain *td = userdata;
        BackendDone done = td->done;
        void *done_userdata = td->userdata;
        BackendDone overtaken_done = td->overtaken_done;
        void *overtaken_userdata = td->overtaken_userdata;
        void (*finish)(SimDomain *) = td->finish;

        sim_domain_cancel(td);
        finish(td);
        if (overtaken_done)
                overtaken_done(0, NULL, overtaken_userdata);
        done(0, NULL, done_userdata);
        return 0;
}

/* Replaces whatever was in flight (only destroy does that, see below). */
static int sim_schedule(SimDomain *td, uint64_t delay_usec, void (*finish)(SimDomain *), BackendDone done,
                         void *userdata, GError **error) {
        sd_event_source *timer = NULL;
        int r;

        r = sd_event_add_time_relative(td->backend->event, &timer, CLOCK_MONOTONIC, delay_usec, 1000, sim_on_timer,
                                       td);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot schedule simulated operation: %s",
                                    g_strerror(-r));
        (void) sd_event_source_set_description(timer, "test-backend-op");

        sim_domain_cancel(td);
        td->timer = timer;
        td->finish = finish;
        td->done = done;
        td->userdata = userdata;
        return 0;
}

static void finish_start(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "booted", "started", "booted");
}

static void finish_shutdown(SimDomain *td) {
        /* As QEMU reports it: the guest finished, then the domain stopped. */
        domain_backend_event(td->domain, td->domain->state, td->domain->state_reason, "shutdown", "finished");
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTOFF, "shutdown", "stopped", "shutdown");
}

static void finish_destroy(SimDomain *td) {
        BackendDone ended = g_steal_pointer(&td->postcopy_ended);

        domain_backend_event(td->domain, DOMAIN_STATE_SHUTOFF, "destroyed", "stopped", "destroyed");
        /* Destroyed on the destination during post-copy: its last pages
         * will never arrive. */
        td->postcopy_timer = sd_event_source_disable_unref(td->postcopy_timer);
        if (ended) {
                g_autoptr(GError) error = g_error_new(VM_ERROR, VM_ERROR_POSTCOPY_FAILED,
                                                      "the guest was destroyed on the destination during post-copy");
                ended(-EIO, error, td->postcopy_userdata);
        }
}

static void finish_suspend(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_PAUSED, "user", "suspended", "paused");
}

static void finish_resume(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "unpaused", "resumed", "unpaused");
}

static int sim_start(void *domain_data, const DomainDef *def, BackendDone done, void *userdata,
                      GError **error) {
        return sim_schedule(domain_data, SIM_START_USEC, finish_start, done, userdata, error);
}

static int sim_shutdown(void *domain_data, uint64_t timeout_usec, BackendDone done, void *userdata,
                         GError **error) {
        SimDomain *td = domain_data;
        int r;

        r = sim_schedule(td, SIM_SHUTDOWN_USEC, finish_shutdown, done, userdata, error);
        if (r < 0)
                return r;
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTDOWN, "user", NULL, NULL);
        return 0;
}

static int sim_destroy(void *domain_data, BackendDone done, void *userdata, GError **error) {
        SimDomain *td = domain_data;
        BackendDone overtaken_done = td->done;
        void *overtaken_userdata = td->userdata;
        int r;

        /* Destroy overrides a shutdown in progress: the shutdown caller hears,
         * when the destroy completes, that the domain is off, which is what
         * it asked for. */
        r = sim_schedule(td, 0, finish_destroy, done, userdata, error);
        if (r < 0)
                return r;
        td->overtaken_done = overtaken_done;
        td->overtaken_userdata = overtaken_userdata;
        return 0;
}

static int sim_suspend(void *domain_data, BackendDone done, void *userdata, GError **error) {
        return sim_schedule(domain_data, 0, finish_suspend, done, userdata, error);
}

static int sim_resume(void *domain_data, BackendDone done, void *userdata, GError **error) {
        return sim_schedule(domain_data, 0, finish_resume, done, userdata, error);
}

/* ---- migration ---- */

static const MigrateOptionSupport sim_migrate_options[] = {
        { .key = "live", .supported = true, .default_value = "true" },
        { .key = "offline", .supported = true },
        { .key = "paused", .supported = true },
        { .key = "persist", .supported = true },
        { .key = "undefine-source", .supported = true },
        { .key = "postcopy", .supported = true, .default_value = "false" },
        { .key = "postcopy-resume", .why_not = "the simulated stream never breaks, so there is nothing to resume" },
        { .key = "auto-converge", .supported = true, .default_value = "false" },
        { .key = "compression", .why_not = "the simulated stream is not compressed" },
        { .key = "parallel-connections", .why_not = "the simulated stream has one connection" },
        { .key = "tunnelled", .why_not = "the test backend sends no data to tunnel" },
        { .key = "tls", .why_not = "the test backend sends no data to encrypt" },
        { .key = "copy-storage", .why_not = "the test backend has no disks to copy" },
        { .key = "reuse-images", .why_not = "the test backend has no disks to copy" },
        { .key = "bandwidth", .supported = true, .default_value = "1073741824" },
        { .key = "postcopy-bandwidth", .supported = true },
        { .key = "max-downtime", .supported = true, .default_value = "300" },
        { .key = "destination-name", .supported = true },
        { .key = "destination-xml", .supported = true },
        { .key = "data-uri", .why_not = "the test backend sends no data" },
        { .key = "listen-address", .why_not = "the test backend sends no data" },
        { .key = "abort-on-error", .supported = true },
        { .key = "unsafe", .supported = true },
        { .key = "timeout", .supported = true },
        { .key = "timeout-action", .supported = true, .default_value = "'abort'" },
        { .key = "wait", .supported = true },
};

static const MigrateOptionSupport *sim_migrate_option_support(void *backend_data, size_t *ret_n) {
        *ret_n = G_N_ELEMENTS(sim_migrate_options);
        return sim_migrate_options;
}

static uint64_t description_dirty_rate(const DomainDef *def) {
        const char *p = def->description ? strstr(def->description, "test-dirty-rate=") : NULL;
        guint64 rate = 0;

        if (p) {
                g_autofree char *digits = g_strndup(p + strlen("test-dirty-rate="),
                                                    strspn(p + strlen("test-dirty-rate="), "0123456789"));
                (void) g_ascii_string_to_unsigned(digits, 10, 0, G_MAXUINT64, &rate, NULL);
        }
        return rate;
}

static int sim_migrate_begin(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                              GVariantDict *cookie, GError **error) {
        g_variant_dict_insert(cookie, "simulated", "b", true);
        return 0;
}

static void sim_migration_free(SimMigration *m) {
        if (!m)
                return;
        sd_event_source_disable_unref(m->timer);
        g_free(m);
}

static uint64_t now_usec(SimDomain *td) {
        uint64_t now = 0;
        (void) sd_event_now(td->backend->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void sim_migration_end(SimDomain *td, int r, const char *failure) {
        SimMigration *m = g_steal_pointer(&td->migration);
        g_autoptr(GError) error = NULL;

        if (r < 0)
                error = g_error_new_literal(VM_ERROR, VM_ERROR_MIGRATION_FAILED, failure);
        m->progress(&m->stats, m->userdata);
        m->done(r, error, m->userdata);
        sim_migration_free(m);
}

static int on_migration_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        SimDomain *td = userdata;
        SimMigration *m = td->migration;
        double tick = SIM_MIGRATION_TICK_USEC / 1e6;
        uint64_t sent = MIN(m->pass_left, (uint64_t) (m->bandwidth * tick));

        if (m->cancelled) {
                sim_migration_end(td, -ECANCELED, "migration cancelled");
                return 0;
        }
        if (m->postcopy_requested) {
                /* Switch: the guest stops here and runs on the destination,
                 * which pulls what is still dirty. */
                domain_backend_event(td->domain, DOMAIN_STATE_PAUSED, "postcopy", "suspended", "postcopy");
                m->stats.postcopy_active = true;
                td->in_postcopy = true;
                td->postcopy_left = m->pass_left + (uint64_t) m->dirtied;
                td->postcopy_stats = m->stats;
                td->postcopy_progress = m->progress;
                td->postcopy_progress_userdata = m->userdata;
                sim_migration_end(td, 0, NULL);
                return 0;
        }

        m->pass_left -= sent;
        /* A paused guest (timeout-action suspend) dirties nothing. */
        if (td->domain->state == DOMAIN_STATE_RUNNING)
                m->dirtied = MIN((double) m->memory,
                                 m->dirtied + m->dirty_rate * (100 - m->throttle) / 100.0 * tick);
        m->stats.data_processed += sent;
        m->stats.data_remaining = m->pass_left + (uint64_t) m->dirtied;
        m->stats.dirty_rate = (uint64_t) (m->dirty_rate * (100 - m->throttle) / 100.0);
        m->stats.bandwidth = m->bandwidth;
        m->stats.expected_downtime_ms = (uint64_t) (m->dirtied * 1000 / m->bandwidth);

        if (m->pass_left == 0) {
                uint64_t dirty = (uint64_t) m->dirtied;
                uint64_t downtime_ms = dirty * 1000 / m->bandwidth;

                if (downtime_ms <= m->max_downtime_ms) {
                        /* Converged: pause the guest and send the rest. */
                        domain_backend_event(td->domain, DOMAIN_STATE_PAUSED, "migration", "suspended", "migrated");
                        m->stats.data_processed += dirty;
                        m->stats.data_total = m->stats.data_processed;
                        m->stats.data_remaining = 0;
                        m->stats.downtime_ms = downtime_ms;
                        sim_migration_end(td, 0, NULL);
                        return 0;
                }
                m->stats.iteration++;
                m->pass_left = dirty;
                m->dirtied = 0;
                m->stats.data_total += dirty;
                if (m->auto_converge && m->stats.iteration >= 3)
                        m->throttle = MIN(m->throttle ? m->throttle + m->throttle_increment : m->throttle_initial,
                                          m->throttle_max);
        }
        m->progress(&m->stats, m->userdata);
        return sd_event_source_set_time_relative(s, SIM_MIGRATION_TICK_USEC) < 0
                       ? 0
                       : sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static int sim_migrate_perform(void *domain_data, const MigrationTarget *target, const MigrateOptions *options,
                         const MigrationTls *tls,
                                MigrateProgressFn progress, BackendDone done, void *userdata, GError **error) {
        SimDomain *td = domain_data;
        SimMigration *m;
        int r;

        if (td->migration)
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE, "a migration is already in progress");
        m = g_new0(SimMigration, 1);
        m->progress = progress;
        m->done = done;
        m->userdata = userdata;
        m->memory = td->domain->def->memory_bytes;
        m->bandwidth = options->bandwidth ? options->bandwidth : SIM_DEFAULT_BANDWIDTH;
        m->max_downtime_ms = options->max_downtime ? options->max_downtime : SIM_DEFAULT_MAX_DOWNTIME_MS;
        m->auto_converge = options->auto_converge;
        m->throttle_initial = SIM_THROTTLE_INITIAL;
        m->throttle_increment = SIM_THROTTLE_INCREMENT;
        m->throttle_max = SIM_THROTTLE_MAX;
        m->postcopy_allowed = options->postcopy;
        td->postcopy_bandwidth = options->postcopy_bandwidth ? options->postcopy_bandwidth : m->bandwidth;
        m->dirty_rate = description_dirty_rate(td->domain->def);
        m->pass_left = m->memory;
        m->stats.data_total = m->memory;
        m->stats.data_remaining = m->memory;
        m->stats.iteration = 1;
        m->started_usec = now_usec(td);

        r = sd_event_add_time_relative(td->backend->event, &m->timer, CLOCK_MONOTONIC, SIM_MIGRATION_TICK_USEC, 1000,
                                       on_migration_tick, td);
        if (r < 0) {
                sim_migration_free(m);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot schedule the simulated stream: %s",
                                    g_strerror(-r));
        }
        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
        td->ran_before_migration = td->domain->state == DOMAIN_STATE_RUNNING;
        td->migration = m;
        return 0;
}

static int sim_migrate_start_postcopy(void *domain_data, GError **error) {
        SimDomain *td = domain_data;

        if (!td->migration)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration in progress");
        if (!td->migration->postcopy_allowed)
                return vm_error_set(error, VM_ERROR_POSTCOPY_NOT_ENABLED, "the migration was started without post-copy");
        td->migration->postcopy_requested = true; /* the next tick switches */
        return 0;
}

/* As QEMU's (qemu_migrate_set_throttle): initial, increment and cap. */
static int sim_migrate_set_throttle(void *domain_data, unsigned percent, GError **error) {
        SimDomain *td = domain_data;
        SimMigration *m = td->migration;
        unsigned p = percent ? MIN(percent, SIM_THROTTLE_MAX) : 1;

        if (!m)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration in progress");
        m->throttle_initial = m->throttle_increment = m->throttle_max = p;
        m->throttle = MIN(m->throttle, p);
        return 0;
}

/* The description's test-dirty-rate, after the measuring time. */
static int sim_on_measured(sd_event_source *s, uint64_t usec, void *userdata) {
        SimDomain *td = userdata;
        BackendDirtyRateDone done = td->measure_done;

        td->measure_timer = sd_event_source_disable_unref(td->measure_timer);
        td->measure_done = NULL;
        done(0, description_dirty_rate(td->domain->def), NULL, td->measure_userdata);
        return 0;
}

static int sim_measure_dirty_rate(void *domain_data, unsigned seconds, BackendDirtyRateDone done, void *userdata,
                                  GError **error) {
        SimDomain *td = domain_data;
        int r;

        if (td->domain->state != DOMAIN_STATE_RUNNING)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' is not running",
                                    domain_name(td->domain));
        if (td->measure_done || td->migration)
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE, "domain '%s' is being measured or migrated already",
                                    domain_name(td->domain));
        r = sd_event_add_time_relative(td->backend->event, &td->measure_timer, CLOCK_MONOTONIC,
                                       (uint64_t) seconds * G_USEC_PER_SEC, 1000, sim_on_measured, td);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot arm a timer: %s", g_strerror(-r));
        td->measure_done = done;
        td->measure_userdata = userdata;
        return 0;
}

static int sim_migrate_cancel(void *domain_data, GError **error) {
        SimDomain *td = domain_data;

        if (!td->migration)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration in progress");
        td->migration->cancelled = true; /* the next tick ends it */
        return 0;
}

static int sim_migrate_set_max_downtime(void *domain_data, uint64_t milliseconds, GError **error) {
        SimDomain *td = domain_data;

        if (!td->migration)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration in progress");
        td->migration->max_downtime_ms = milliseconds;
        return 0;
}

static int sim_migrate_set_max_bandwidth(void *domain_data, uint64_t bytes_per_second, bool postcopy,
                                          GError **error) {
        SimDomain *td = domain_data;

        if (!td->migration && !td->in_postcopy)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration in progress");
        if (postcopy)
                td->postcopy_bandwidth = bytes_per_second; /* 0: as fast as pre-copy */
        else if (td->migration)
                td->migration->bandwidth = bytes_per_second ? bytes_per_second : SIM_DEFAULT_BANDWIDTH;
        return 0;
}

/* The destination: the guest "arrives" when the source says it did. */

typedef struct PrepareCall {
        MigratePrepareDone done;
        void *userdata;
        char *data_uri;
        sd_event_source *defer;
} PrepareCall;

static int on_prepare_defer(sd_event_source *s, void *userdata) {
        PrepareCall *call = userdata;

        call->done(0, NULL, call->data_uri, NULL, call->userdata);
        sd_event_source_disable_unref(call->defer);
        g_free(call->data_uri);
        g_free(call);
        return 0;
}

static int sim_migrate_prepare(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                         const MigrationTls *tls,
                                GVariant *source_cookie, MigratePrepareDone done, void *userdata, GError **error) {
        SimDomain *td = domain_data;
        gboolean simulated = false;
        PrepareCall *call;
        int r;

        if (!g_variant_lookup(source_cookie, "simulated", "b", &simulated) || !simulated)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source's backend is not the simulated one; a test domain can only come "
                                    "from a test domain");
        call = g_new0(PrepareCall, 1);
        call->done = done;
        call->userdata = userdata;
        call->data_uri = g_strdup_printf("test:%s", def->uuid);
        r = sd_event_add_defer(td->backend->event, &call->defer, on_prepare_defer, call);
        if (r < 0) {
                g_free(call->data_uri);
                g_free(call);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot schedule: %s", g_strerror(-r));
        }
        domain_backend_event(td->domain, DOMAIN_STATE_PAUSED, "migration", "started", "migrated");
        return 0;
}

static void finish_incoming_run(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "migrated", "resumed", "migrated");
}

static void finish_incoming_paused(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_PAUSED, "user", NULL, NULL);
}

static void finish_incoming_discard(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTOFF, "failed", "stopped", "failed");
}

static int on_postcopy_arrived(sd_event_source *s, uint64_t usec, void *userdata) {
        SimDomain *td = userdata;
        BackendDone ended = td->postcopy_ended;
        void *ended_userdata = td->postcopy_userdata;

        td->postcopy_timer = sd_event_source_disable_unref(td->postcopy_timer);
        td->postcopy_ended = NULL;
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "migrated", "resumed", "migrated");
        ended(0, NULL, ended_userdata);
        return 0;
}

typedef struct FinishCall {
        SimDomain *td;
        bool postcopy;
        BackendDone done, ended;
        void *userdata;
} FinishCall;

/* done settles the guest; ended comes with it, or in post-copy once the
 * simulated last pages "arrived". */
static void on_finish_settled(int r, const GError *error, void *userdata) {
        g_autofree FinishCall *call = userdata;
        SimDomain *td = call->td;

        call->done(r, error, call->userdata);
        if (r < 0 || !call->postcopy) {
                call->ended(r, error, call->userdata);
                return;
        }
        td->postcopy_ended = call->ended;
        td->postcopy_userdata = call->userdata;
        if (sd_event_add_time_relative(td->backend->event, &td->postcopy_timer, CLOCK_MONOTONIC, 100 * 1000, 1000,
                                       on_postcopy_arrived, td) < 0)
                on_postcopy_arrived(NULL, 0, td);
}

static void finish_incoming_postcopy(SimDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "postcopy", "resumed", "postcopy");
}

static int sim_migrate_finish(void *domain_data, bool success, bool postcopy, const MigrateOptions *options,
                               BackendDone done, BackendDone ended, void *userdata, GError **error) {
        SimDomain *td = domain_data;
        void (*finish)(SimDomain *) = !success         ? finish_incoming_discard
                                       : postcopy        ? finish_incoming_postcopy
                                       : options->paused ? finish_incoming_paused
                                                         : finish_incoming_run;
        FinishCall *call = g_new0(FinishCall, 1);
        int r;

        *call = (FinishCall) { .td = td, .postcopy = postcopy && success, .done = done, .ended = ended,
                               .userdata = userdata };
        r = sim_schedule(td, 0, finish, on_finish_settled, call, error);
        if (r < 0)
                g_free(call);
        return r;
}

/* A simulated guest runs no code: it never waits for a page. */
static void sim_migrate_incoming_stats(void *domain_data, MigrationStats *stats) {
        stats->has_postcopy_blocktime = true;
        stats->postcopy_blocktime_ms = 0;
}

static void finish_confirm_success(SimDomain *td) {
        /* The pages pulled after the switch count as sent, too. */
        if (td->postcopy_progress) {
                MigrationStats *st = &td->postcopy_stats;
                st->data_processed += td->postcopy_left;
                st->postcopy_requests += td->postcopy_left / 4096;
                st->data_remaining = 0;
                td->postcopy_progress(st, td->postcopy_progress_userdata);
                td->postcopy_progress = NULL;
        }
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTOFF, "migrated", "stopped", "migrated");
}

static void finish_confirm_failure(SimDomain *td) {
        td->postcopy_progress = NULL;
        /* The guest stays where it was, running again if it ran before. */
        if (td->ran_before_migration && td->domain->state == DOMAIN_STATE_PAUSED)
                domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "migration-failed", "resumed", "migrated");
}

static int sim_migrate_confirm(void *domain_data, bool success, BackendDone done, void *userdata,
                                GError **error) {
        SimDomain *td = domain_data;
        /* After a post-copy switch the source still serves what the
         * destination has not pulled yet: that takes its time. */
        uint64_t delay = td->in_postcopy && success && td->postcopy_bandwidth
                                 ? td->postcopy_left * G_USEC_PER_SEC / td->postcopy_bandwidth
                                 : 0;

        td->in_postcopy = false;
        return sim_schedule(td, delay, success ? finish_confirm_success : finish_confirm_failure, done, userdata,
                             error);
}

static GVariant *sim_describe(void *backend_data) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "simulated", g_variant_new_boolean(true));
        return g_variant_builder_end(&b);
}

static const char *const sim_domain_types[] = { "test", NULL };

const BackendOps backend_test_ops = {
        .name = "test",
        .description = "Simulated domains in the daemon itself, for client development and tests",
        .domain_types = sim_domain_types,
        .init = sim_init,
        .fini = sim_fini,
        .validate = sim_validate,
        .domain_attach = sim_domain_attach,
        .domain_detach = sim_domain_detach,
        .domain_forget = sim_domain_forget,
        .start = sim_start,
        .shutdown = sim_shutdown,
        .destroy = sim_destroy,
        .suspend = sim_suspend,
        .resume = sim_resume,
        .migrate_options = sim_migrate_option_support,
        .migrate_begin = sim_migrate_begin,
        .migrate_prepare = sim_migrate_prepare,
        .migrate_perform = sim_migrate_perform,
        .migrate_finish = sim_migrate_finish,
        .migrate_incoming_stats = sim_migrate_incoming_stats,
        .migrate_confirm = sim_migrate_confirm,
        .migrate_start_postcopy = sim_migrate_start_postcopy,
        .migrate_set_throttle = sim_migrate_set_throttle,
        .measure_dirty_rate = sim_measure_dirty_rate,
        .migrate_cancel = sim_migrate_cancel,
        .migrate_set_max_downtime = sim_migrate_set_max_downtime,
        .migrate_set_max_bandwidth = sim_migrate_set_max_bandwidth,
        .describe = sim_describe,
};
