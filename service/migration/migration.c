/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "hooks.h"
#include "host-features.h"
#include "log.h"
#include "manager.h"
#include "migration.h"
#include "preflight.h"

#define PEER_CONNECT_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
#define PEER_PREPARE_TIMEOUT_USEC (120 * G_USEC_PER_SEC)
#define PEER_FINISH_TIMEOUT_USEC (120 * G_USEC_PER_SEC)
/* Passes without progress before the convergence policy acts. */
#define MIGRATION_STALL_PASSES 2

void manager_set_peer_ops(Manager *m, const PeerOps *ops, void *ctx) {
        m->peer_ops = ops;
        m->peer_ctx = ctx;
}

static const MigrateOptionSupport *backend_option_support(const Domain *d, size_t *ret_n) {
        *ret_n = 0;
        if (!d->backend->migrate_options)
                return NULL;
        return d->backend->migrate_options(manager_backend_data(d->manager, d->backend), ret_n);
}

/* ---- requests ---- */

MigrationRequest *migration_request_parse(const char *uri, GVariant *options) {
        MigrationRequest *req = g_new0(MigrationRequest, 1);

        req->uri = g_strdup(uri);
        (void) migrate_options_parse(options, &req->options, &req->options_error);
        (void) destination_parse(uri, &req->destination, &req->destination_error);
        return req;
}

void migration_request_free(MigrationRequest *req) {
        if (!req)
                return;
        g_free(req->uri);
        destination_free(req->destination);
        g_clear_error(&req->destination_error);
        migrate_options_free(req->options);
        g_clear_error(&req->options_error);
        g_free(req);
}

const GError *migration_request_error(const MigrationRequest *req) {
        return req->options_error ? req->options_error : req->destination_error;
}

const char *migration_request_destination(const MigrationRequest *req) {
        return req->destination ? req->destination->canonical : req->uri;
}

/* ---- cookies ---- */

static int cookie_check_size(GVariant *cookie, const char *what, GError **error) {
        if (!g_variant_is_of_type(cookie, G_VARIANT_TYPE_VARDICT))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie is not an a{sv} dictionary", what);
        if (g_variant_get_size(cookie) > MIGRATION_COOKIE_MAX_BYTES)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie is %zu bytes, more than the %d allowed",
                                    what, g_variant_get_size(cookie), MIGRATION_COOKIE_MAX_BYTES);
        uint32_t version = 0;
        if (!g_variant_lookup(cookie, "version", "u", &version) || version != MIGRATION_COOKIE_VERSION)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "%s: cookie version %u, this vmigrate speaks version %d; upgrade the older host",
                                    what, version, MIGRATION_COOKIE_VERSION);
        return 0;
}

/* A string member that must be there, of bounded length, valid UTF-8
 * (GVariant guarantees that) and without control characters. */
static const char *cookie_string(GVariant *cookie, const char *key, size_t max, const char *what, GError **error) {
        const char *value = NULL;

        if (!g_variant_lookup(cookie, key, "&s", &value)) {
                vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie lacks '%s' (or it is not a string)",
                             what, key);
                return NULL;
        }
        if (strlen(value) > max) {
                vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: cookie member '%s' is longer than %zu bytes", what,
                             key, max);
                return NULL;
        }
        return value;
}

/* The other host's warnings ("warnings" as in a reply): shown on our job
 * too. Hostile input: bounded, and anything with control characters is
 * dropped. */
static void job_add_peer_warnings(Job *j, GVariant *reply) {
        g_autofree const char **warnings = NULL;

        if (!reply || !g_variant_lookup(reply, "warnings", "^a&s", &warnings))
                return;
        for (size_t i = 0; warnings[i] && i < JOB_WARNINGS_MAX; i++) {
                bool clean = strlen(warnings[i]) <= FINDING_MESSAGE_MAX;
                for (const char *p = warnings[i]; clean && *p; p++)
                        clean = (unsigned char) *p >= 0x20 && *p != 0x7f;
                if (clean)
                        job_add_warning(j, warnings[i]);
        }
}

static void cookie_add_host(GVariantDict *dict, Manager *m) {
        g_autofree char *hostname = manager_get_hostname();

        g_variant_dict_insert(dict, "version", "u", (uint32_t) MIGRATION_COOKIE_VERSION);
        g_variant_dict_insert(dict, "host-uuid", "s", m->host_uuid);
        g_variant_dict_insert(dict, "hostname", "s", hostname);
}

/* ---- source side ---- */

typedef struct Outgoing {
        Manager *manager;
        Domain *domain; /* reference */
        Job *job;       /* reference */
        Destination *destination;
        MigrateOptions *options;
        GVariant *cookie;
        Peer *peer;
        char *data_uri;

        MigrationStarted started;
        MigrationEnded ended;
        void *userdata;
        bool reported_start;

        /* The first failure decides the job's result and error. */
        char *failure;
        VmError failure_code;
        bool cancelled;
        bool postcopy_requested; /* StartPostCopy before Perform began */
        bool paused_by_abort;    /* AbortJob paused the post-copy */

        /* Convergence: passes whose remaining data did not shrink. */
        uint64_t pass;
        uint64_t remaining_at_pass;
        unsigned stalled_passes;
        unsigned slow_passes; /* expected downtime above max-downtime */
        sd_event_source *timeout;
} Outgoing;

static void outgoing_free(Outgoing *o) {
        if (!o)
                return;
        sd_event_source_disable_unref(o->timeout);
        if (o->peer)
                o->manager->peer_ops->close(o->peer);
        if (o->job)
                o->job->migration = NULL;
        job_unref(o->job);
        domain_unref(o->domain);
        destination_free(o->destination);
        migrate_options_free(o->options);
        if (o->cookie)
                g_variant_unref(o->cookie);
        g_free(o->data_uri);
        g_free(o->failure);
        g_free(o);
}

static void outgoing_record_failure(Outgoing *o, const GError *error, const char *context) {
        if (o->failure)
                return;
        o->failure = g_strdup_printf("%s: %s", context, error ? error->message : "failed");
        o->failure_code = error && error->domain == VM_ERROR ? error->code : VM_ERROR_MIGRATION_FAILED;
}

static void outgoing_end(Outgoing *o) {
        JobPhase final = o->cancelled ? JOB_PHASE_CANCELLED : o->failure ? JOB_PHASE_FAILED : JOB_PHASE_COMPLETED;

        if (!o->reported_start) {
                /* Migrate is still waiting for its answer: it gets the error. */
                g_autoptr(GError) error = g_error_new_literal(VM_ERROR, o->failure_code, o->failure);
                o->reported_start = true;
                if (o->started)
                        o->started(NULL, error, o->userdata);
        }
        job_end(o->job, final, o->failure);
        if (o->ended) {
                g_autoptr(GError) error = NULL;
                /* A broken post-copy is not retried but resumed: say which it is. */
                if (final != JOB_PHASE_COMPLETED)
                        error = g_error_new(VM_ERROR,
                                            o->job->stats.postcopy_active ? VM_ERROR_POSTCOPY_FAILED
                                                                          : VM_ERROR_MIGRATION_FAILED,
                                            "migration %s: %s", job_phase_to_string(final),
                                            o->failure ? o->failure : "unknown error");
                o->ended(o->job, error, o->userdata);
        }
        outgoing_free(o);
}

static void on_destination_paused(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;

        if (error)
                log_warning("could not pause the post-copy on the destination: %s", error->message);
        outgoing_end(o);
}

/* The destination may not notice a dead link for a long time: tell it,
 * then end. */
static void outgoing_pause_destination_and_end(Outgoing *o) {
        g_autoptr(GError) error = NULL;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        cookie_add_host(&dict, o->manager);
        g_variant_dict_insert(&dict, "uuid", "s", domain_uuid(o->domain));
        if (!o->peer || o->manager->peer_ops->call(o->peer, "Pause", g_variant_dict_end(&dict),
                                                   PEER_FINISH_TIMEOUT_USEC, on_destination_paused, o, &error) < 0) {
                if (error)
                        log_warning("could not ask the destination to pause the post-copy: %s", error->message);
                outgoing_end(o);
        }
}

static void on_confirmed(int r, const GError *error, void *userdata) {
        Outgoing *o = userdata;

        if (r < 0 && o->job->stats.postcopy_active) {
                /* Post-copy broke: the guest is split between the hosts and
                 * paused; nothing may be killed. The destination may not
                 * notice a dead link for a long time: tell it. */
                outgoing_record_failure(o, error, o->paused_by_abort ? "post-copy paused by AbortJob" : "post-copy");
                outgoing_pause_destination_and_end(o);
                return;
        } else if (r < 0) {
                /* Confirm(failure) failing means the source guest did not come
                 * back: the admin must know. */
                log_error("domain '%s': confirm after %s failed: %s", domain_name(o->domain),
                          o->failure ? "a failed migration" : "the migration", error ? error->message : "?");
                outgoing_record_failure(o, error, "confirm on the source");
        }
        if (!o->failure && o->options->undefine_source && domain_is_persistent(o->domain) && o->domain->manager) {
                g_autoptr(GError) local = NULL;
                if (domain_undefine(o->domain, &local) < 0)
                        log_warning("domain '%s' migrated, but undefining it here failed: %s",
                                    domain_name(o->domain), local->message);
        }
        outgoing_end(o);
}

static void outgoing_confirm(Outgoing *o) {
        g_autoptr(GError) error = NULL;
        bool success = !o->failure;

        if (o->job->phase != JOB_PHASE_POSTCOPY)
                job_set_phase(o->job, JOB_PHASE_CONFIRM);
        if (o->options->offline) {
                on_confirmed(0, NULL, o); /* nothing ran here */
                return;
        }
        if (o->domain->backend->migrate_confirm(o->domain->backend_data, success, on_confirmed, o, &error) < 0)
                on_confirmed(-EIO, error, o);
}

static void on_finished(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) bad = NULL;

        if (!error && cookie_check_size(reply, "Finish reply", &bad) < 0)
                error = bad;
        if (!error)
                job_add_peer_warnings(o->job, reply);
        if (error)
                outgoing_record_failure(o, error, "finish on the destination");
        outgoing_confirm(o);
}

/* Tells the destination how the stream went; it runs or discards the guest. */
static void outgoing_finish(Outgoing *o) {
        g_autoptr(GError) error = NULL;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        /* In post-copy the phase stays postcopy until the last page is in. */
        if (o->job->phase != JOB_PHASE_POSTCOPY)
                job_set_phase(o->job, JOB_PHASE_FINISH);
        cookie_add_host(&dict, o->manager);
        g_variant_dict_insert(&dict, "uuid", "s", domain_uuid(o->domain));
        g_variant_dict_insert(&dict, "success", "b", !o->failure);
        g_variant_dict_insert(&dict, "postcopy", "b", o->job->stats.postcopy_active);
        if (o->failure)
                g_variant_dict_insert(&dict, "error", "s", o->failure);
        g_variant_dict_insert_value(&dict, "stats", job_stats_to_variant(o->job));

        if (o->manager->peer_ops->call(o->peer, "Finish", g_variant_dict_end(&dict), PEER_FINISH_TIMEOUT_USEC,
                                       on_finished, o, &error) < 0)
                on_finished(NULL, error, o);
}

/* The default convergence policy, checked at each new pass: when what is
 * left to send has not shrunk, or could not be sent within max-downtime,
 * for MIGRATION_STALL_PASSES passes (two: one can be noise, three cost a
 * whole extra pass of a guest that will not converge anyway), switch to
 * post-copy if it was enabled, otherwise throttle the guest harder if
 * auto-converge is on, otherwise say on the job that it is not converging
 * (it never gives up on its own: the caller decides). */
static void outgoing_check_convergence(Outgoing *o, const MigrationStats *stats) {
        g_autoptr(GError) error = NULL;
        Job *j = o->job;

        uint64_t max_downtime = o->options->max_downtime ? o->options->max_downtime : 300;
        bool stalled, too_slow;

        if (stats->iteration <= o->pass || stats->postcopy_active)
                return;
        o->pass = stats->iteration;
        /* Two signs, as DESIGN.md has them: what is left does not shrink,
         * or what is left could not be sent within max-downtime (counted
         * from the second pass: the first one always sends everything). */
        stalled = o->remaining_at_pass > 0 && stats->data_remaining * 20 >= o->remaining_at_pass * 19;
        too_slow = stats->iteration >= 2 && stats->expected_downtime_ms > max_downtime;
        o->stalled_passes = stalled ? o->stalled_passes + 1 : 0;
        o->slow_passes = too_slow ? o->slow_passes + 1 : 0;
        if (!stalled && !too_slow)
                job_set_not_converging(j, false, NULL);
        o->remaining_at_pass = stats->data_remaining;
        if (o->stalled_passes < MIGRATION_STALL_PASSES && o->slow_passes < MIGRATION_STALL_PASSES)
                return;
        bool not_shrinking = o->stalled_passes >= MIGRATION_STALL_PASSES;
        o->stalled_passes = 0;
        o->slow_passes = 0;

        if (o->options->postcopy) {
                log_info("job %" G_GUINT64_FORMAT ": pre-copy is not converging after %d passes: switching to "
                         "post-copy",
                         j->id, MIGRATION_STALL_PASSES);
                if (o->domain->backend->migrate_start_postcopy(o->domain->backend_data, &error) < 0)
                        log_warning("job %" G_GUINT64_FORMAT ": %s", j->id, error->message);
                return;
        }
        if (o->options->auto_converge && o->domain->backend->migrate_step_throttle &&
            o->domain->backend->migrate_step_throttle(o->domain->backend_data, &error) >= 0) {
                log_info("job %" G_GUINT64_FORMAT ": pre-copy is not converging: throttling the guest harder",
                         j->id);
                return;
        }
        /* Slow but still shrinking is not "not converging": say nothing yet. */
        if (!not_shrinking)
                return;
        g_autofree char *detail = g_strdup_printf(
                "pre-copy is not converging: %" G_GUINT64_FORMAT " MiB still to send after pass %" G_GUINT64_FORMAT
                ", the guest dirties %" G_GUINT64_FORMAT " MiB/s and %" G_GUINT64_FORMAT
                " MiB/s get across; switch to post-copy (StartPostCopy, if enabled), raise the bandwidth or "
                "max-downtime, or cancel",
                stats->data_remaining >> 20, stats->iteration, stats->dirty_rate >> 20, stats->bandwidth >> 20);
        job_set_not_converging(j, true, detail);
}

static int on_migration_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) error = NULL;
        const char *action = o->options->timeout_action == MIGRATE_TIMEOUT_ACTION_POSTCOPY  ? "switching to post-copy"
                             : o->options->timeout_action == MIGRATE_TIMEOUT_ACTION_SUSPEND ? "pausing the guest"
                                                                                            : "cancelling";
        int r;

        o->timeout = sd_event_source_disable_unref(o->timeout);
        if (o->job->phase != JOB_PHASE_PERFORM)
                return 0;
        log_info("job %" G_GUINT64_FORMAT ": still copying after %" G_GUINT64_FORMAT " s: %s (timeout-action)",
                 o->job->id, o->options->timeout, action);
        switch (o->options->timeout_action) {
        case MIGRATE_TIMEOUT_ACTION_POSTCOPY:
                r = o->domain->backend->migrate_start_postcopy(o->domain->backend_data, &error);
                break;
        case MIGRATE_TIMEOUT_ACTION_SUSPEND:
                /* A paused guest dirties nothing: the copy converges, at the
                 * price of a longer pause. */
                r = domain_suspend(o->domain, NULL, NULL, &error);
                break;
        default:
                r = migration_cancel(o->job, &error);
                break;
        }
        if (r < 0)
                log_warning("job %" G_GUINT64_FORMAT ": timeout action failed: %s", o->job->id, error->message);
        return 0;
}

static void on_progress(const MigrationStats *stats, void *userdata) {
        Outgoing *o = userdata;

        job_update_stats(o->job, stats);
        outgoing_check_convergence(o, stats);
        if (stats->postcopy_active && o->job->phase == JOB_PHASE_PERFORM) {
                log_info("job %" G_GUINT64_FORMAT ": switched to post-copy", o->job->id);
                job_set_phase(o->job, JOB_PHASE_POSTCOPY);
        }
}

static void on_performed(int r, const GError *error, void *userdata) {
        Outgoing *o = userdata;

        if (r < 0)
                outgoing_record_failure(o, error, o->cancelled ? "cancelled" : "sending the guest");
        outgoing_finish(o);
}

static void outgoing_perform(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        job_set_phase(o->job, JOB_PHASE_PERFORM);
        if (o->domain->backend->migrate_perform(o->domain->backend_data, o->data_uri, o->options, on_progress,
                                                on_performed, o, &error) < 0) {
                on_performed(-EIO, error, o);
                return;
        }
        if (o->postcopy_requested &&
            o->domain->backend->migrate_start_postcopy(o->domain->backend_data, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot switch to post-copy: %s", o->job->id, error->message);
        if (migrate_options_has(o->options, MIGRATE_OPTION_TIMEOUT) &&
            sd_event_add_time_relative(o->manager->event, &o->timeout, CLOCK_MONOTONIC,
                                       o->options->timeout * G_USEC_PER_SEC, 1000, on_migration_timeout, o) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot arm the migration timeout", o->job->id);
}

static void on_prepared(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) bad = NULL;
        const char *data_uri;

        if (!error && cookie_check_size(reply, "Prepare reply", &bad) >= 0 &&
            (data_uri = cookie_string(reply, "data-uri", 1024, "Prepare reply", &bad))) {
                o->data_uri = g_strdup(data_uri);
                job_add_peer_warnings(o->job, reply);
        }
        if (!error && bad)
                error = bad;
        if (!error && o->manager->shutting_down) {
                /* Prepared, but we are stopping: undo it on the destination. */
                vm_error_set(&bad, VM_ERROR_MIGRATION_FAILED, "vmigrated on the source is stopping");
                outgoing_record_failure(o, bad, "before copying");
                o->reported_start = true;
                if (o->started)
                        o->started(NULL, bad, o->userdata);
                outgoing_finish(o);
                return;
        }
        if (error) {
                outgoing_record_failure(o, error, "prepare on the destination");
                outgoing_end(o); /* nothing was started anywhere */
                return;
        }

        /* Everything that can be checked before copying was: answer Migrate. */
        o->reported_start = true;
        if (o->started)
                o->started(o->job, NULL, o->userdata);
        if (o->options->offline)
                outgoing_finish(o); /* no stream: the definition went with Prepare */
        else
                outgoing_perform(o);
}

static void on_connected(Peer *peer, const char *remote_host_uuid, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) local = NULL;

        if (error) {
                outgoing_record_failure(o, error, "connecting to the destination");
                outgoing_end(o);
                return;
        }
        o->peer = peer;
        if (g_strcmp0(remote_host_uuid, o->manager->host_uuid) == 0) {
                vm_error_set(&local, VM_ERROR_INVALID_DESTINATION,
                             "%s is this host (same host UUID %s): migrate to another host",
                             o->destination->canonical, remote_host_uuid);
                outgoing_record_failure(o, local, "checking the destination");
                outgoing_end(o);
                return;
        }

        job_set_phase(o->job, JOB_PHASE_PREPARE);
        if (o->manager->peer_ops->call(o->peer, "Prepare", o->cookie, PEER_PREPARE_TIMEOUT_USEC,
                                       on_prepared, o, &local) < 0)
                on_prepared(NULL, local, o);
}

/* The Prepare cookie for migrating d with options (checked, defaulted). */
static int build_cookie(Manager *m, Domain *d, const MigrateOptions *options, GVariant **ret, GError **error) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        g_auto(GVariantDict) backend = G_VARIANT_DICT_INIT(NULL);
        g_autoptr(DomainDef) def = domain_def_copy(d->def);
        g_autoptr(GVariant) cookie = NULL;
        g_autofree char *xml = NULL;
        int r;

        if (migrate_options_has(options, MIGRATE_OPTION_DESTINATION_XML)) {
                g_autoptr(DomainDef) dest = NULL;
                r = domain_def_parse(options->destination_xml, strlen(options->destination_xml), &dest, error);
                if (r < 0) {
                        g_prefix_error(error, "option 'destination-xml': ");
                        return r;
                }
                r = domain_def_check_abi_stable(def, dest, error);
                if (r < 0)
                        return r;
                domain_def_free(def);
                def = g_steal_pointer(&dest);
        }
        if (migrate_options_has(options, MIGRATE_OPTION_DESTINATION_NAME)) {
                g_free(def->name);
                def->name = g_strdup(options->destination_name);
        }

        if (!options->offline) {
                r = d->backend->migrate_begin(d->backend_data, def, options, &backend, error);
                if (r < 0)
                        return r;
        }

        xml = domain_def_format(def);
        cookie_add_host(&dict, m);
        {
                g_auto(HostFacts) facts = { 0 };
                (void) host_facts_read(&facts);
                /* Measured from the domain as it runs here, keyed on target
                 * devices, so that destination-xml may move the files. */
                source_facts_add_to_cookie(d->def, &facts, &dict);
        }
        g_variant_dict_insert(&dict, "domain-xml", "s", xml);
        g_variant_dict_insert(&dict, "persistent", "b", domain_is_persistent(d));
        g_variant_dict_insert_value(&dict, "options", migrate_options_to_variant(options));
        g_variant_dict_insert_value(&dict, "backend", g_variant_dict_end(&backend));
        cookie = g_variant_ref_sink(g_variant_dict_end(&dict));
        r = cookie_check_size(cookie, "the migration cookie", error);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&cookie);
        return 0;
}

/* Begin: everything checkable here, through the same checks a dry run
 * reports (preflight.c); the first error refuses the migration. */
static int migration_begin(Domain *d, MigrateOptions *options, GError **error) {
        g_autofree char *hostname = manager_get_hostname();
        g_autoptr(Findings) findings = findings_new(hostname);
        const MigrateOptionSupport *support;
        size_t n_support;
        int r;

        if (d->job)
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE,
                                    "domain '%s' already has a job (%s, phase %s): wait for it or cancel it",
                                    domain_name(d), job_kind_to_string(d->job->kind),
                                    job_phase_to_string(d->job->phase));
        if (d->pending_op != DOMAIN_OP_NONE)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' is busy: '%s' is in progress",
                                    domain_name(d), domain_op_to_string(d->pending_op));

        if (options->postcopy_resume && g_strcmp0(d->state_reason, "postcopy-failed") != 0)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' has no failed post-copy to resume (it is %s, %s): migrate it "
                                    "without 'postcopy-resume'",
                                    domain_name(d), domain_state_to_string(d->state),
                                    d->state_reason ? d->state_reason : "unknown");
        preflight_source(d, options, findings);
        r = findings_to_error(findings, error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < findings_count(findings); i++) {
                const Finding *f = findings_get(findings, i);
                if (f->severity == FINDING_WARNING)
                        log_warning("domain '%s': %s", domain_name(d), f->message);
        }
        support = backend_option_support(d, &n_support);
        migrate_options_apply_defaults(options, support, n_support);
        return 0;
}

int migration_start(Manager *m, Domain *d, MigrationRequest *request, MigrationStarted started,
                    MigrationEnded ended, void *userdata, GError **error) {
        g_autoptr(MigrationRequest) req = request;
        Outgoing *o;
        int r;

        g_assert(!migration_request_error(req));
        if (!m->peer_ops)
                return vm_error_set(error, VM_ERROR_FAILED, "no way to reach other hosts is configured");
        if (m->shutting_down)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "vmigrated is stopping; try again when it is back");
        r = migration_begin(d, req->options, error);
        if (r < 0)
                return r;

        o = g_new0(Outgoing, 1);
        o->manager = m;
        o->domain = domain_ref(d);
        o->destination = g_steal_pointer(&req->destination);
        o->options = g_steal_pointer(&req->options);
        o->started = started;
        o->ended = ended;
        o->userdata = userdata;
        r = build_cookie(m, d, o->options, &o->cookie, error);
        if (r < 0) {
                outgoing_free(o);
                return r;
        }

        o->job = job_ref(job_new(m, JOB_MIGRATION_OUT, d, o->destination->canonical));
        o->job->migration = o;
        r = m->peer_ops->connect(m->peer_ctx, o->destination, on_connected, o, error);
        if (r < 0) {
                job_end(o->job, JOB_PHASE_FAILED, (*error)->message);
                outgoing_free(o);
                return r;
        }
        return 0;
}

int migration_start_postcopy(Job *job, GError **error) {
        Outgoing *o = job->migration;

        if (job->kind != JOB_MIGRATION_OUT || !o)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "job %" G_GUINT64_FORMAT " is not a migration leaving this host: switch to "
                                    "post-copy on the source",
                                    job->id);
        if (job->phase == JOB_PHASE_POSTCOPY)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "job %" G_GUINT64_FORMAT " is already in post-copy",
                                    job->id);
        if (!o->options->postcopy)
                return vm_error_set(error, VM_ERROR_POSTCOPY_NOT_ENABLED,
                                    "job %" G_GUINT64_FORMAT " was started without option 'postcopy'; post-copy "
                                    "must be enabled on both QEMUs before the stream starts: cancel and migrate "
                                    "again with 'postcopy'",
                                    job->id);
        if (job->phase != JOB_PHASE_PERFORM && job->phase != JOB_PHASE_PREPARE && job->phase != JOB_PHASE_BEGIN)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "job %" G_GUINT64_FORMAT " is in phase %s: too late to switch to post-copy",
                                    job->id, job_phase_to_string(job->phase));
        if (job->phase != JOB_PHASE_PERFORM) {
                /* Not streaming yet: remember it; Perform asks as soon as it can. */
                o->postcopy_requested = true;
                return 0;
        }
        return o->domain->backend->migrate_start_postcopy(o->domain->backend_data, error);
}

/* ---- dry run ---- */

typedef struct DryRun {
        Manager *manager;
        Domain *domain; /* reference */
        Destination *destination;
        Findings *findings;
        GVariant *cookie;
        Peer *peer;
        DryRunDone done;
        void *userdata;
} DryRun;

static void dry_run_end(DryRun *dr) {
        bool ok;

        preflight_dry_run_note(dr->findings);
        ok = !findings_has_errors(dr->findings);
        dr->done(ok, findings_to_variant(dr->findings), dr->userdata);
        if (dr->peer)
                dr->manager->peer_ops->close(dr->peer);
        domain_unref(dr->domain);
        destination_free(dr->destination);
        findings_free(dr->findings);
        if (dr->cookie)
                g_variant_unref(dr->cookie);
        g_free(dr);
}

static void on_dry_run_checked(GVariant *reply, const GError *error, void *userdata) {
        DryRun *dr = userdata;
        g_autoptr(GVariant) findings = NULL;
        g_autoptr(GError) bad = NULL;

        if (!error && cookie_check_size(reply, "CheckPrepare reply", &bad) >= 0) {
                findings = g_variant_lookup_value(reply, "findings", G_VARIANT_TYPE("a(sss)"));
                if (!findings)
                        vm_error_set(&bad, VM_ERROR_INCOMPATIBLE, "CheckPrepare reply: no findings");
                else
                        (void) findings_append_variant(dr->findings, findings, &bad);
        }
        if (!error && bad)
                error = bad;
        if (error)
                findings_add(dr->findings, FINDING_ERROR, "destination.reachable",
                             "cannot check %s: %s", dr->destination->canonical, error->message);
        dry_run_end(dr);
}

static void on_dry_run_connected(Peer *peer, const char *remote_host_uuid, const GError *error, void *userdata) {
        DryRun *dr = userdata;
        g_autoptr(GError) local = NULL;

        if (error) {
                findings_add(dr->findings, FINDING_ERROR, "destination.reachable", "%s", error->message);
                dry_run_end(dr);
                return;
        }
        dr->peer = peer;
        if (g_strcmp0(remote_host_uuid, dr->manager->host_uuid) == 0) {
                findings_add(dr->findings, FINDING_ERROR, "host.same",
                             "%s is this host (same host UUID %s): migrate to another host",
                             dr->destination->canonical, remote_host_uuid);
                dry_run_end(dr);
                return;
        }
        if (!dr->cookie) {
                dry_run_end(dr); /* the source's own errors already say why */
                return;
        }
        if (dr->manager->peer_ops->call(dr->peer, "CheckPrepare", dr->cookie, PEER_PREPARE_TIMEOUT_USEC,
                                        on_dry_run_checked, dr, &local) < 0)
                on_dry_run_checked(NULL, local, dr);
}

int migration_dry_run(Manager *m, Domain *d, MigrationRequest *request, DryRunDone done, void *userdata,
                      GError **error) {
        g_autoptr(MigrationRequest) req = request;
        g_autofree char *hostname = manager_get_hostname();
        g_autoptr(GError) local = NULL;
        DryRun *dr;
        int r;

        if (!m->peer_ops)
                return vm_error_set(error, VM_ERROR_FAILED, "no way to reach other hosts is configured");
        dr = g_new0(DryRun, 1);
        dr->manager = m;
        dr->domain = domain_ref(d);
        dr->findings = findings_new(hostname);
        dr->done = done;
        dr->userdata = userdata;

        if (req->options_error) {
                findings_add_code(dr->findings, FINDING_ERROR, req->options_error->code, "options.valid", "%s",
                                  req->options_error->message);
        } else {
                MigrateOptions *options = req->options;
                preflight_source(d, options, dr->findings);
                if (!findings_has_errors(dr->findings)) {
                        size_t n_support;
                        const MigrateOptionSupport *support = backend_option_support(d, &n_support);
                        migrate_options_apply_defaults(options, support, n_support);
                        if (build_cookie(m, d, options, &dr->cookie, &local) < 0) {
                                findings_add_code(dr->findings, FINDING_ERROR, local->code, "domain.state", "%s",
                                                  local->message);
                                g_clear_error(&local);
                        }
                }
        }
        if (req->destination_error) {
                findings_add_code(dr->findings, FINDING_ERROR, req->destination_error->code,
                                  "destination.reachable", "%s", req->destination_error->message);
                dry_run_end(dr);
                return 0;
        }
        dr->destination = g_steal_pointer(&req->destination);
        /* Even with errors here, ask whether the destination is there: a
         * dry run reports everything it can find in one go. */
        r = m->peer_ops->connect(m->peer_ctx, dr->destination, on_dry_run_connected, dr, &local);
        if (r < 0) {
                findings_add(dr->findings, FINDING_ERROR, "destination.reachable", "%s", local->message);
                dry_run_end(dr);
        }
        return 0;
}

int migration_cancel(Job *job, GError **error) {
        Outgoing *o = job->migration;

        if (job->kind != JOB_MIGRATION_OUT || !o)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "job %" G_GUINT64_FORMAT " cannot be cancelled here: cancel a migration on its "
                                    "source host",
                                    job->id);
        if (job->phase == JOB_PHASE_POSTCOPY) {
                /* Cancelling is impossible: the guest already runs on the
                 * destination with part of its memory. Pausing is what can be
                 * done, and resumed later with postcopy-resume. */
                if (!o->domain->backend->migrate_pause)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "job %" G_GUINT64_FORMAT " is in post-copy and cannot be cancelled",
                                            job->id);
                log_info("job %" G_GUINT64_FORMAT ": AbortJob in post-copy: pausing it (resume with "
                         "postcopy-resume)",
                         job->id);
                o->paused_by_abort = true;
                return o->domain->backend->migrate_pause(o->domain->backend_data, error);
        }
        if (job->phase != JOB_PHASE_PERFORM)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "job %" G_GUINT64_FORMAT " is in phase %s; only a migration that is copying "
                                    "(phase perform) can be cancelled",
                                    job->id, job_phase_to_string(job->phase));
        o->cancelled = true;
        return o->domain->backend->migrate_cancel(o->domain->backend_data, error);
}

/* The source's job of a migration leaving this host, or an error. */
static Outgoing *outgoing_of(Job *job, GError **error) {
        Outgoing *o = job->kind == JOB_MIGRATION_OUT ? job->migration : NULL;

        if (!o)
                vm_error_set(error, VM_ERROR_NO_JOB, "domain '%s' is not migrating out of this host",
                             domain_name(job->domain));
        return o;
}

int migration_set_max_downtime(Job *job, uint64_t milliseconds, GError **error) {
        Outgoing *o = outgoing_of(job, error);
        const BackendOps *ops;

        if (!o)
                return -ESRCH;
        ops = o->domain->backend;
        if (!ops->migrate_set_max_downtime)
                return vm_error_set(error, VM_ERROR_NO_JOB, "the '%s' backend cannot change the downtime of a running "
                                    "migration", ops->name);
        return ops->migrate_set_max_downtime(o->domain->backend_data, milliseconds, error);
}

int migration_set_max_bandwidth(Job *job, uint64_t bytes_per_second, bool postcopy, GError **error) {
        Outgoing *o = outgoing_of(job, error);
        const BackendOps *ops;

        if (!o)
                return -ESRCH;
        ops = o->domain->backend;
        if (!ops->migrate_set_max_bandwidth)
                return vm_error_set(error, VM_ERROR_NO_JOB, "the '%s' backend cannot change the bandwidth of a "
                                    "running migration", ops->name);
        return ops->migrate_set_max_bandwidth(o->domain->backend_data, bytes_per_second, postcopy, error);
}

/* ---- destination side ---- */

typedef struct Incoming {
        Manager *manager;
        Domain *domain; /* reference */
        Job *job;       /* reference */
        MigrateOptions *options;
        char *caller;
        bool persist;
        bool created; /* the domain object was made for this migration */
        bool offline; /* only the definition moves */
        bool postcopy; /* the guest runs here while its last pages arrive */
        /* Host-side features (hooks, bridges): set up before the backend's
         * Prepare, undone when the guest does not stay. */
        Features *features;
        GVariant *backend_cookie; /* for the backend's Prepare, after the hooks */

        IncomingDone done;
        void *userdata;
} Incoming;

static void incoming_free(Incoming *in) {
        if (!in)
                return;
        if (in->job)
                in->job->migration = NULL;
        job_unref(in->job);
        domain_unref(in->domain);
        features_free(in->features);
        if (in->backend_cookie)
                g_variant_unref(in->backend_cookie);
        migrate_options_free(in->options);
        g_free(in->caller);
        g_free(in);
}

/* uuid → Incoming, owned; made when the first migration arrives. The
 * manager frees it (and with it what is left) without knowing its type. */
static GHashTable *incoming_table(Manager *m) {
        if (!m->incoming)
                m->incoming = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) incoming_free);
        return m->incoming;
}

static void incoming_forget(Incoming *in) {
        g_hash_table_remove(incoming_table(in->manager), domain_uuid(in->domain));
}

/* The guest did not arrive: nothing of it stays here. */
static void incoming_discard(Incoming *in) {
        g_autoptr(GError) ignored = NULL;
        Domain *d = in->domain;

        if (!d->manager || domain_is_active(d))
                return; /* the backend's stop report settles it */
        if (in->created && !domain_is_persistent(d))
                (void) manager_remove_domain(in->manager, d, &ignored);
        else if (domain_is_persistent(d) && !domain_def_equal(d->def, d->persistent_def)) {
                /* A defined copy lent its object: give it its definition back. */
                domain_def_free(d->def);
                d->def = domain_def_copy(d->persistent_def);
                manager_notify_changed(in->manager, d, DOMAIN_CHANGE_CONFIG);
        }
}

static Features *incoming_features_new(Manager *m, const DomainDef *def) {
        g_autofree char *hostname = manager_get_hostname();
        FeaturesConfig config = {
                .event = m->event,
                .host = hostname,
                .hooks_dir = m->hooks_dir,
                .hook_timeout_usec = m->hook_timeout_usec ? m->hook_timeout_usec : HOOK_DEFAULT_TIMEOUT_USEC,
        };
        return features_new(&config, def);
}

static void incoming_take_warnings(Incoming *in) {
        const GPtrArray *warnings = in->features ? features_warnings(in->features) : NULL;

        for (guint i = 0; warnings && i < warnings->len; i++)
                job_add_warning(in->job, warnings->pdata[i]);
}

/* The guest does not stay: undo the features, in reverse order (the
 * backend's part went with QEMU already). */
static void incoming_abort_features(Incoming *in) {
        features_abort(g_steal_pointer(&in->features));
}

static bool d_backend_can_receive(Manager *m, const char *type) {
        const BackendOps *ops = manager_backend_ops_for_type(m, type);
        return ops && ops->migrate_prepare && manager_backend_data(m, ops);
}

static GVariant *incoming_reply(Incoming *in) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        cookie_add_host(&dict, in->manager);
        g_variant_dict_insert(&dict, "job", "t", in->job->id);
        g_variant_dict_insert_value(&dict, "warnings",
                                    g_variant_new_strv((const char *const *) in->job->warnings->pdata,
                                                       in->job->warnings->len));
        return g_variant_dict_end(&dict);
}

static void on_incoming_prepared(int r, const GError *error, const char *data_uri, void *userdata) {
        Incoming *in = userdata;
        IncomingDone done = in->done;
        void *done_userdata = in->userdata;

        in->done = NULL;
        if (r < 0) {
                job_end(in->job, JOB_PHASE_FAILED, error ? error->message : "prepare failed");
                incoming_abort_features(in);
                incoming_discard(in);
                done(NULL, error, done_userdata);
                incoming_forget(in);
                return;
        }
        job_set_phase(in->job, JOB_PHASE_PERFORM);
        g_autoptr(GVariant) reply = g_variant_ref_sink(incoming_reply(in));
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(reply);
        g_variant_dict_insert(&dict, "data-uri", "s", data_uri);
        done(g_variant_dict_end(&dict), NULL, done_userdata);
}

/* Finds or makes the domain object that receives the guest; takes def. */
static int incoming_domain(Manager *m, DomainDef *new_def, Domain **ret, bool *ret_created, GError **error) {
        g_autoptr(DomainDef) def = new_def;
        Domain *by_uuid = g_hash_table_lookup(m->domains, def->uuid);
        Domain *by_name = manager_lookup(m, def->name);

        if (by_name && by_name != by_uuid)
                return vm_error_set(error, VM_ERROR_DOMAIN_EXISTS,
                                    "a different domain named '%s' (UUID %s) exists on the destination; migrate "
                                    "with option 'destination-name'",
                                    def->name, domain_uuid(by_name));
        if (by_uuid) {
                if (!g_str_equal(domain_name(by_uuid), def->name))
                        return vm_error_set(error, VM_ERROR_DOMAIN_EXISTS,
                                            "UUID %s is domain '%s' on the destination, not '%s'", def->uuid,
                                            domain_name(by_uuid), def->name);
                if (domain_is_active(by_uuid) || by_uuid->job || by_uuid->pending_op != DOMAIN_OP_NONE)
                        return vm_error_set(error, VM_ERROR_DOMAIN_EXISTS,
                                            "domain '%s' is already %s on the destination", def->name,
                                            domain_state_to_string(by_uuid->state));
                if (by_uuid->backend != manager_backend_ops_for_type(m, def->type))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "domain '%s' is defined on the destination for the '%s' backend",
                                            def->name, by_uuid->backend->name);
                /* A defined, shut-off copy: the incoming guest runs with the
                 * source's definition; the stored one is kept unless persist. */
                domain_def_free(by_uuid->def);
                by_uuid->def = g_steal_pointer(&def);
                *ret = by_uuid;
                *ret_created = false;
                return 0;
        }
        *ret_created = true;
        return manager_add_transient(m, g_steal_pointer(&def), ret, error);
}

/* Offline: the definition is stored at once (so that a clash shows now),
 * and removed again if the source reports failure. */
static int incoming_prepare_offline(Manager *m, DomainDef *new_def, MigrateOptions *options, const char *caller,
                                    const char *source_name, IncomingDone done, void *userdata, GError **error) {
        g_autoptr(DomainDef) def = new_def;
        g_autoptr(MigrateOptions) opts = options;
        g_autofree char *xml = domain_def_format(def);
        bool existed = g_hash_table_contains(m->domains, def->uuid);
        Domain *d;
        int r;

        r = manager_define_xml(m, xml, strlen(xml), &d, error);
        if (r < 0) {
                g_prefix_error(error, "the destination cannot define the domain: ");
                return r;
        }
        Incoming *in = g_new0(Incoming, 1);
        in->manager = m;
        in->domain = domain_ref(d);
        in->options = g_steal_pointer(&opts);
        in->caller = g_strdup(caller);
        in->created = !existed;
        in->offline = true;
        in->job = job_ref(job_new(m, JOB_MIGRATION_IN, d, source_name));
        in->job->migration = in;
        g_hash_table_insert(incoming_table(m), (gpointer) domain_uuid(d), in);
        job_set_phase(in->job, JOB_PHASE_PREPARE);

        g_autoptr(GVariant) reply = g_variant_ref_sink(incoming_reply(in));
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(reply);
        g_variant_dict_insert(&dict, "data-uri", "s", "");
        job_set_phase(in->job, JOB_PHASE_PERFORM);
        done(g_variant_dict_end(&dict), NULL, userdata);
        return 0;
}

/* What a Prepare or CheckPrepare cookie says, validated. */
typedef struct IncomingRequest {
        const char *source_uuid; /* borrowed from the cookie */
        const char *source_name;
        DomainDef *def;
        MigrateOptions *options;
        GVariant *backend_cookie;
        SourceFacts *source;
        gboolean persist;
} IncomingRequest;

static void incoming_request_clear(IncomingRequest *req) {
        domain_def_free(req->def);
        migrate_options_free(req->options);
        if (req->backend_cookie)
                g_variant_unref(req->backend_cookie);
        source_facts_free(req->source);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(IncomingRequest, incoming_request_clear)

static int incoming_request_parse(GVariant *cookie, const char *what, IncomingRequest *req, GError **error) {
        g_autoptr(GVariant) option_dict = NULL;
        const char *xml;
        int r;

        r = cookie_check_size(cookie, what, error);
        if (r < 0)
                return r;
        if (!(req->source_uuid = cookie_string(cookie, "host-uuid", 36, what, error)) ||
            !(req->source_name = cookie_string(cookie, "hostname", 255, what, error)) ||
            !(xml = cookie_string(cookie, "domain-xml", DOMAIN_XML_MAX_BYTES, what, error)))
                return -EPROTO;
        option_dict = g_variant_lookup_value(cookie, "options", G_VARIANT_TYPE_VARDICT);
        req->backend_cookie = g_variant_lookup_value(cookie, "backend", G_VARIANT_TYPE_VARDICT);
        if (!option_dict || !req->backend_cookie)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie lacks 'options' or 'backend'", what);
        (void) g_variant_lookup(cookie, "persistent", "b", &req->persist);

        r = migrate_options_parse(option_dict, &req->options, error);
        if (r < 0)
                return r;
        r = source_facts_from_cookie(cookie, &req->source, error);
        if (r < 0)
                return r;
        r = domain_def_parse(xml, strlen(xml), &req->def, error);
        if (r < 0) {
                g_prefix_error(error, "the destination cannot use the domain's definition: ");
                return r;
        }
        return 0;
}

static void on_incoming_prepared(int r, const GError *error, const char *data_uri, void *userdata);

/* Resuming a failed post-copy: the guest is already here (running on what
 * it has, waiting for the rest); its QEMU listens for the source again.
 * Nothing is created, so a failure removes nothing. */
static int incoming_prepare_resume(Manager *m, IncomingRequest *req, const char *caller, IncomingDone done,
                                   void *userdata, GError **error) {
        Domain *d = g_hash_table_lookup(m->domains, req->def->uuid);
        int r;

        if (!d || g_strcmp0(d->state_reason, "postcopy-failed") != 0)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "no failed post-copy of domain %s to resume on this host (%s)", req->def->uuid,
                                    d ? d->state_reason : "no such domain here");
        if (g_hash_table_contains(incoming_table(m), d->uuid))
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE, "domain %s is already being migrated here", d->uuid);

        Incoming *in = g_new0(Incoming, 1);
        in->manager = m;
        in->domain = domain_ref(d);
        in->options = g_steal_pointer(&req->options);
        in->caller = g_strdup(caller);
        in->persist = in->options->persist || (req->persist && !migrate_options_has(in->options, MIGRATE_OPTION_PERSIST));
        in->created = false;
        in->done = done;
        in->userdata = userdata;
        in->job = job_ref(job_new(m, JOB_MIGRATION_IN, d, req->source_name));
        in->job->migration = in;
        g_hash_table_insert(incoming_table(m), (gpointer) domain_uuid(d), in);

        job_set_phase(in->job, JOB_PHASE_PREPARE);
        r = d->backend->migrate_prepare(d->backend_data, d->def, in->options, req->backend_cookie, on_incoming_prepared,
                                        in, error);
        if (r < 0) {
                job_end(in->job, JOB_PHASE_FAILED, (*error)->message);
                incoming_forget(in);
                return r;
        }
        return 0;
}

/* The hooks ran and the bridges are there (or the ones that are not are
 * not required): start the guest's QEMU, waiting for the stream. */
static void on_incoming_features_prepared(const GError *error, void *userdata) {
        Incoming *in = userdata;
        Domain *d = in->domain;
        g_autoptr(GError) local = NULL;

        incoming_take_warnings(in);
        if (!error && d->backend->migrate_prepare(d->backend_data, d->def, in->options, in->backend_cookie,
                                                  on_incoming_prepared, in, &local) >= 0)
                return;
        if (!error)
                error = local;

        IncomingDone done = in->done;
        void *done_userdata = in->userdata;
        in->done = NULL;
        job_end(in->job, JOB_PHASE_FAILED, error->message);
        incoming_abort_features(in);
        incoming_discard(in);
        done(NULL, error, done_userdata);
        incoming_forget(in);
}

/* The destination's checks, the same for Prepare and CheckPrepare. */
static Findings *incoming_preflight(Manager *m, const IncomingRequest *req) {
        g_autofree char *hostname = manager_get_hostname();
        Findings *findings = findings_new(hostname);

        preflight_destination(m, req->def, req->options, req->source_uuid, req->source, findings);
        return findings;
}

int migration_incoming_check(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error) {
        g_auto(IncomingRequest) req = { 0 };
        g_autoptr(Findings) findings = NULL;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        int r;

        r = incoming_request_parse(cookie, "CheckPrepare", &req, error);
        if (r < 0)
                return r;
        findings = incoming_preflight(m, &req);
        cookie_add_host(&dict, m);
        g_variant_dict_insert_value(&dict, "findings", findings_to_variant(findings));
        done(g_variant_dict_end(&dict), NULL, userdata);
        return 0;
}

int migration_incoming_prepare(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                               GError **error) {
        g_auto(IncomingRequest) req = { 0 };
        g_autoptr(Findings) findings = NULL;
        g_autoptr(MigrateOptions) options = NULL;
        g_autoptr(DomainDef) def = NULL;
        g_autoptr(GVariant) backend_cookie = NULL;
        const char *source_name;
        Domain *d;
        bool created = false;
        gboolean persist;
        int r;

        r = incoming_request_parse(cookie, "Prepare", &req, error);
        if (r < 0)
                return r;
        if (req.options->postcopy_resume)
                return incoming_prepare_resume(m, &req, caller, done, userdata, error);
        /* One code path with the dry run: its errors refuse the migration. */
        findings = incoming_preflight(m, &req);
        r = findings_to_error(findings, error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < findings_count(findings); i++)
                if (findings_get(findings, i)->severity == FINDING_WARNING)
                        log_warning("incoming %s: %s", req.def->name, findings_get(findings, i)->message);

        source_name = req.source_name;
        persist = req.persist;
        def = g_steal_pointer(&req.def);
        options = g_steal_pointer(&req.options);
        backend_cookie = g_steal_pointer(&req.backend_cookie);
        if (options->offline)
                return incoming_prepare_offline(m, g_steal_pointer(&def), g_steal_pointer(&options), caller,
                                                source_name, done, userdata, error);
        if (!d_backend_can_receive(m, def->type))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the destination has no backend that can receive a domain of type '%s'",
                                    def->type);
        if (g_hash_table_contains(incoming_table(m), def->uuid))
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE, "domain %s is already being migrated here",
                                    def->uuid);

        r = incoming_domain(m, g_steal_pointer(&def), &d, &created, error);
        if (r < 0)
                return r;

        Incoming *in = g_new0(Incoming, 1);
        in->manager = m;
        in->domain = domain_ref(d);
        in->options = g_steal_pointer(&options);
        in->caller = g_strdup(caller);
        in->persist = in->options->persist || (persist && !migrate_options_has(in->options, MIGRATE_OPTION_PERSIST));
        in->created = created;
        in->done = done;
        in->userdata = userdata;
        in->job = job_ref(job_new(m, JOB_MIGRATION_IN, d, source_name));
        in->job->migration = in;
        g_hash_table_insert(incoming_table(m), (gpointer) domain_uuid(d), in);

        in->backend_cookie = g_steal_pointer(&backend_cookie);
        in->features = incoming_features_new(m, d->def);

        job_set_phase(in->job, JOB_PHASE_PREPARE);
        r = features_prepare(in->features, on_incoming_features_prepared, in);
        if (r < 0) {
                vm_error_set(error, VM_ERROR_FAILED, "cannot set up the domain's host-side features: %s",
                             g_strerror(-r));
                job_end(in->job, JOB_PHASE_FAILED, (*error)->message);
                incoming_discard(in);
                incoming_forget(in);
                return r;
        }
        return 0;
}

static void incoming_persist(Incoming *in) {
        g_autoptr(GError) error = NULL;
        Domain *d = in->domain;

        if (!in->persist || !d->manager)
                return;
        DomainDef *old = d->persistent_def;
        d->persistent_def = domain_def_copy(d->def);
        if (manager_save_domain(in->manager, d, &error) < 0) {
                log_error("domain '%s' arrived but cannot be made persistent: %s", domain_name(d), error->message);
                domain_def_free(d->persistent_def);
                d->persistent_def = old;
                return;
        }
        domain_def_free(old);
        manager_notify_lifecycle(in->manager, d, "defined", old ? "updated" : "added");
        manager_notify_changed(in->manager, d, DOMAIN_CHANGE_PERSISTENT);
}

typedef struct FinishCall {
        Incoming *in;
        bool success;
        bool postcopy;
        bool answered; /* done came: Finish was answered */
        GError *feature_error; /* a required feature failed at finish: the guest is discarded */
        char *source_error;
        GVariant *source_stats;
} FinishCall;

static void finish_call_free(FinishCall *call) {
        if (call->source_stats)
                g_variant_unref(call->source_stats);
        g_clear_error(&call->feature_error);
        g_free(call->source_error);
        g_free(call);
}

static void on_incoming_finished(int r, const GError *error, void *userdata) {
        FinishCall *call = userdata;
        Incoming *in = call->in;
        IncomingDone done = in->done;
        void *done_userdata = in->userdata;
        g_autoptr(GVariant) reply = NULL;

        in->done = NULL;
        /* Mirror the source's figures: they are what the stream did. */
        if (call->source_stats) {
                MigrationStats stats = in->job->stats;
                (void) g_variant_lookup(call->source_stats, "data-total", "t", &stats.data_total);
                (void) g_variant_lookup(call->source_stats, "data-processed", "t", &stats.data_processed);
                (void) g_variant_lookup(call->source_stats, "data-remaining", "t", &stats.data_remaining);
                (void) g_variant_lookup(call->source_stats, "iteration", "t", &stats.iteration);
                (void) g_variant_lookup(call->source_stats, "downtime-ms", "t", &stats.downtime_ms);
                (void) g_variant_lookup(call->source_stats, "bandwidth", "t", &stats.bandwidth);
                job_update_stats(in->job, &stats);
        }

        call->answered = true;
        if (call->success && r >= 0 && call->postcopy) {
                /* The guest runs here; its last pages are still on the way:
                 * the job ends when the stream does (on_incoming_ended). */
                job_set_phase(in->job, JOB_PHASE_POSTCOPY);
                in->postcopy = true;
                reply = g_variant_ref_sink(incoming_reply(in));
                if (done)
                        done(reply, NULL, done_userdata);
                return;
        }
        if (call->success && r >= 0) {
                incoming_persist(in);
                job_end(in->job, JOB_PHASE_COMPLETED, NULL);
                reply = g_variant_ref_sink(incoming_reply(in));
                if (done)
                        done(reply, NULL, done_userdata);
        } else if (call->feature_error) {
                job_end(in->job, JOB_PHASE_FAILED, call->feature_error->message);
                incoming_abort_features(in);
                incoming_discard(in);
                if (done)
                        done(NULL, call->feature_error, done_userdata);
        } else {
                g_autofree char *why = call->success ? g_strdup_printf("the guest could not be run here: %s",
                                                                       error ? error->message : "failed")
                                                     : g_strdup_printf("the source reported: %s",
                                                                       call->source_error ? call->source_error
                                                                                          : "failure");
                job_end(in->job, JOB_PHASE_FAILED, why);
                incoming_abort_features(in);
                incoming_discard(in);
                if (done && call->success)
                        done(NULL, error, done_userdata);
                else if (done) {
                        reply = g_variant_ref_sink(incoming_reply(in));
                        done(reply, NULL, done_userdata);
                }
        }
        /* ended follows for this call; it frees it. */
}

static void on_incoming_ended(int r, const GError *error, void *userdata) {
        FinishCall *call = userdata;
        Incoming *in = call->in;

        if (call->postcopy && call->success && call->answered) {
                if (r >= 0) {
                        incoming_persist(in);
                        job_end(in->job, JOB_PHASE_COMPLETED, NULL);
                } else {
                        /* Nothing is killed: the guest is split between the
                         * hosts; the source can resume the post-copy. */
                        g_autofree char *why = g_strdup_printf("post-copy failed: %s",
                                                               error ? error->message : "the stream broke");
                        job_end(in->job, JOB_PHASE_FAILED, why);
                }
        }
        incoming_forget(in);
        finish_call_free(call);
}

static int incoming_finish_backend(FinishCall *call, GError **error) {
        Incoming *in = call->in;
        return in->domain->backend->migrate_finish(in->domain->backend_data, call->success, call->postcopy,
                                                   in->options, on_incoming_finished, on_incoming_ended, call,
                                                   error);
}

/* The "finish" hooks ran: run the guest, or discard it if a required one
 * failed (the source then runs it again). */
static void on_incoming_features_finished(const GError *error, void *userdata) {
        FinishCall *call = userdata;
        Incoming *in = call->in;
        g_autoptr(GError) local = NULL;

        incoming_take_warnings(in);
        if (error) {
                call->feature_error = g_error_copy(error);
                call->success = false;
        }
        if (incoming_finish_backend(call, &local) >= 0)
                return;

        IncomingDone done = in->done;
        void *done_userdata = in->userdata;
        in->done = NULL;
        job_end(in->job, JOB_PHASE_FAILED, local->message);
        incoming_abort_features(in);
        incoming_discard(in);
        if (done)
                done(NULL, call->feature_error ? call->feature_error : local, done_userdata);
        finish_call_free(call);
        incoming_forget(in);
}

static int incoming_finish(Incoming *in, bool success, bool postcopy, const char *source_error,
                           GVariant *source_stats, IncomingDone done, void *userdata, GError **error) {
        FinishCall *call = g_new0(FinishCall, 1);
        int r;

        call->in = in;
        call->success = success;
        call->postcopy = postcopy;
        call->source_error = g_strdup(source_error);
        call->source_stats = source_stats ? g_variant_ref(source_stats) : NULL;
        in->done = done;
        in->userdata = userdata;
        job_set_phase(in->job, JOB_PHASE_FINISH);
        if (in->offline) {
                g_autoptr(GError) ignored = NULL;
                if (!success && in->created)
                        (void) domain_undefine(in->domain, &ignored);
                in->persist = false; /* defined already */
                on_incoming_finished(0, NULL, call);
                on_incoming_ended(0, NULL, call);
                return 0;
        }
        if (success && in->features) {
                /* In post-copy the guest can go back nowhere: a required
                 * hook's failure is then only a warning. */
                r = features_finish(in->features, !postcopy, on_incoming_features_finished, call);
                if (r >= 0)
                        return 0;
                in->done = NULL;
                finish_call_free(call);
                return vm_error_set(error, VM_ERROR_FAILED, "cannot run the finish hooks: %s", g_strerror(-r));
        }
        r = incoming_finish_backend(call, error);
        if (r < 0) {
                in->done = NULL;
                finish_call_free(call);
        }
        return r;
}

int migration_incoming_finish(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                              GError **error) {
        g_autoptr(GVariant) stats = NULL;
        const char *uuid, *source_error = NULL;
        gboolean success = false, postcopy = false;
        Incoming *in;
        int r;

        r = cookie_check_size(cookie, "Finish", error);
        if (r < 0)
                return r;
        if (!(uuid = cookie_string(cookie, "uuid", 36, "Finish", error)))
                return -EPROTO;
        if (!g_variant_lookup(cookie, "success", "b", &success))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "Finish: the cookie lacks 'success'");
        (void) g_variant_lookup(cookie, "error", "&s", &source_error);
        (void) g_variant_lookup(cookie, "postcopy", "b", &postcopy);
        stats = g_variant_lookup_value(cookie, "stats", G_VARIANT_TYPE_VARDICT);

        in = g_hash_table_lookup(incoming_table(m), uuid);
        if (!in)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no incoming migration of domain %s here", uuid);
        if (g_strcmp0(in->caller, caller) != 0)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "the incoming migration of domain %s belongs to another connection", uuid);
        if (in->done)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "the incoming migration of %s is busy", uuid);
        return incoming_finish(in, success, postcopy, source_error, stats, done, userdata, error);
}

int migration_incoming_pause(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        const char *uuid;
        Domain *d;
        int r;

        r = cookie_check_size(cookie, "Pause", error);
        if (r < 0)
                return r;
        if (!(uuid = cookie_string(cookie, "uuid", 36, "Pause", error)))
                return -EPROTO;
        d = g_hash_table_lookup(m->domains, uuid);
        if (!d || !d->backend->migrate_pause)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no post-copy of domain %s here", uuid);
        r = d->backend->migrate_pause(d->backend_data, error);
        if (r < 0)
                return r;
        cookie_add_host(&dict, m);
        done(g_variant_dict_end(&dict), NULL, userdata);
        return 0;
}

static void on_abandoned(GVariant *reply, const GError *error, void *userdata) {
        /* Nobody is waiting for this answer: the source is gone. */
}

static void incoming_abandon(Manager *m, const char *caller, const char *why) {
        g_autoptr(GPtrArray) gone = g_ptr_array_new();
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, incoming_table(m));
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Incoming *in = value;
                /* A guest in post-copy runs here and is only partly here:
                 * never discard it; its stream goes on without us. */
                if ((!caller || g_strcmp0(in->caller, caller) == 0) && !in->done && !in->postcopy)
                        g_ptr_array_add(gone, in);
        }
        for (unsigned i = 0; i < gone->len; i++) {
                g_autoptr(GError) error = NULL;
                Incoming *in = gone->pdata[i];
                log_warning("domain '%s': %s; discarding its incoming migration", domain_name(in->domain), why);
                if (incoming_finish(in, false, false, why, NULL, on_abandoned, NULL, &error) < 0) {
                        log_error("domain '%s': cannot discard the incoming guest: %s", domain_name(in->domain),
                                  error->message);
                        job_end(in->job, JOB_PHASE_FAILED, why);
                        incoming_forget(in);
                }
        }
}

void migration_incoming_caller_vanished(Manager *m, const char *caller) {
        incoming_abandon(m, caller, "the source host disconnected");
}

void migration_shutdown(Manager *m) {
        GHashTableIter iter;
        gpointer value;

        m->shutting_down = true;
        /* Guests keep running where they are: a pre-copy migration leaving
         * is cancelled (the source still has the whole guest), one arriving
         * is discarded. */
        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Job *j = value;
                g_autoptr(GError) error = NULL;

                if (j->kind != JOB_MIGRATION_OUT || j->phase != JOB_PHASE_PERFORM)
                        continue;
                log_info("job %" G_GUINT64_FORMAT ": cancelling: vmigrated is stopping", j->id);
                if (migration_cancel(j, &error) < 0)
                        log_warning("job %" G_GUINT64_FORMAT ": %s", j->id, error->message);
        }
        incoming_abandon(m, NULL, "vmigrated is stopping on the destination");
}

bool migration_any_running(Manager *m) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (!job_phase_is_final(((Job *) value)->phase))
                        return true;
        return false;
}

