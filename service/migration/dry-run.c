/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain.DryRun (dry-run.h): Begin's checks here, CheckPrepare's on the
 * destination, through the same code as the real migration; nothing is
 * started, bound, created or reserved on either host.
 */
#include "convergence.h"
#include "cookie.h"
#include "dry-run.h"
#include "errors.h"
#include "links.h"
#include "log.h"
#include "manager.h"
#include "preflight.h"

typedef struct DryRun {
        Manager *manager;
        Domain *domain; /* reference */
        Destination *destination;
        Findings *findings;
        GVariant *cookie;
        Peer *peer;
        DryRunDone done;
        void *userdata;
        /* Parts still running: the destination's check, the dirty rate. */
        unsigned pending;
        /* Convergence: the live migration's policy and what it would run
         * with (bandwidth, max-downtime, post-copy), and the measurement. */
        Policy *policy;
        uint64_t bandwidth; /* 0: not given */
        LinkRecord link;    /* else what the last migration to there measured (links.h) */
        uint64_t downtime_ms;
        bool postcopy;
        bool measure; /* the request wants the dirty rate */
        bool measured;
        uint64_t dirty_rate;
        char *measure_error;
} DryRun;

/* Long enough for QEMU's page sampling to see a working set, short
 * enough for a dry run. */
#define DRY_RUN_DIRTY_RATE_SECONDS 1
#define MIB (1024 * 1024)

/* What a refusal of Begin (the backend's checks, destination-xml) is
 * about, for its finding's id. */
static const char *begin_finding_id(int code) {
        switch (code) {
        case VM_ERROR_INVALID_XML:
        case VM_ERROR_INVALID_OPTION:
        case VM_ERROR_UNSUPPORTED_OPTION:
        case VM_ERROR_CONFLICTING_OPTIONS:
        case VM_ERROR_INCOMPATIBLE:
                return "options.valid";
        case VM_ERROR_STORAGE_FAILED:
                return "storage.disk";
        default:
                return "domain.state";
        }
}

/* Where the link's speed came from, for the finding: the last migration
 * to the same host, and how long ago. */
static char *link_source(const DryRun *dr) {
        int64_t age = g_get_real_time() / G_USEC_PER_SEC - dr->link.measured_unix;

        if (!dr->link.bandwidth)
                return NULL;
        return g_strdup_printf("measured by the last migration to %s, %" G_GINT64_FORMAT " %s ago",
                               dr->link.destination,
                               age >= 7200 ? age / 3600 : age >= 120 ? age / 60 : age,
                               age >= 7200 ? "h" : age >= 120 ? "min" : "s");
}

/* convergence.precopy: what the model says of pre-copy at the measured
 * dirty rate, the whole memory to send first. */
static void add_convergence_finding(DryRun *dr) {
        uint64_t ram = dr->domain->def->memory_bytes;
        ConvergencePrediction p;
        g_autofree char *rate = NULL;

        if (dr->measure_error) {
                findings_add(dr->findings, FINDING_INFO, "convergence.precopy",
                             "cannot predict pre-copy: the dirty rate was not measured (%s)", dr->measure_error);
                return;
        }
        if (!dr->measured)
                return;
        rate = g_strdup_printf("the guest dirties %" G_GUINT64_FORMAT " MiB/s (measured over %d s)",
                               dr->dirty_rate / MIB, DRY_RUN_DIRTY_RATE_SECONDS);
        uint64_t bandwidth = dr->bandwidth ? dr->bandwidth : dr->link.bandwidth;
        g_autofree char *source = dr->bandwidth ? g_strdup("'bandwidth'") : link_source(dr);
        if (!bandwidth) {
                findings_add(dr->findings, FINDING_INFO, "convergence.precopy",
                             "%s: pre-copy converges on a link that carries more than %" G_GUINT64_FORMAT
                             " MiB/s (%.1f Gbit/s); give option 'bandwidth' for an estimate of the time (a "
                             "completed migration to this destination also leaves one)",
                             rate, (uint64_t) ((double) dr->dirty_rate / 0.8) / MIB,
                             (double) dr->dirty_rate / 0.8 * 8 / 1e9);
                return;
        }
        convergence_predict(ram, dr->dirty_rate, bandwidth, dr->downtime_ms, &p);
        if (p.converges) {
                findings_add(dr->findings, FINDING_INFO, "convergence.precopy",
                             "%s: at %" G_GUINT64_FORMAT " MiB/s (%s) pre-copy of its %" G_GUINT64_FORMAT
                             " MiB converges with %" G_GUINT64_FORMAT " ms pauses in ~%" G_GUINT64_FORMAT
                             " pass%s, ~%" G_GUINT64_FORMAT " ms",
                             rate, bandwidth / MIB, source, ram / MIB, dr->downtime_ms, p.passes + 1,
                             p.passes ? "es" : "", p.time_ms);
                return;
        }
        g_autofree char *plan = NULL;
        if (dr->postcopy)
                plan = g_strdup("it will switch to post-copy after the first pass");
        else if (dr->policy && policy_has_action(dr->policy, POLICY_ACTION_THROTTLE))
                plan = g_strdup_printf("it will throttle the guest (by ~%" G_GUINT64_FORMAT "%%)", p.throttle_percent);
        else
                plan = g_strdup_printf("it has no step that makes it converge and ends with %s",
                                       dr->policy ? policy_action_to_string(dr->policy->final_action) : "abort");
        findings_add(dr->findings, FINDING_WARNING, "convergence.precopy",
                     "%s, faster than the %" G_GUINT64_FORMAT " MiB/s of the link (%s): pre-copy cannot converge "
                     "at %" G_GUINT64_FORMAT " ms pauses (it would need ~%" G_GUINT64_FORMAT
                     " ms); policy '%s': %s. Post-copy (option 'postcopy' or policy 'postcopy'), more bandwidth or "
                     "compression would help",
                     rate, bandwidth / MIB, source, dr->downtime_ms, p.needed_downtime_ms,
                     dr->policy ? dr->policy->name : "?", plan);
}

static void dry_run_end(DryRun *dr) {
        bool ok;

        add_convergence_finding(dr);
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
        policy_free(dr->policy);
        g_free(dr->measure_error);
        link_record_clear(&dr->link);
        g_free(dr);
}

/* One part (the destination's check, the measurement) is over. */
static void dry_run_part_done(DryRun *dr) {
        g_assert(dr->pending > 0);
        if (--dr->pending == 0)
                dry_run_end(dr);
}

static void on_dirty_rate(int r, uint64_t bytes_per_second, const GError *error, void *userdata) {
        DryRun *dr = userdata;

        if (r < 0)
                dr->measure_error = g_strdup(error ? error->message : g_strerror(-r));
        else {
                dr->measured = true;
                dr->dirty_rate = bytes_per_second;
        }
        dry_run_part_done(dr);
}

/* A running guest's dirty rate, measured while the destination answers. */
static void dry_run_measure(DryRun *dr) {
        const BackendOps *b = dr->domain->backend;
        g_autoptr(GError) error = NULL;

        if (!dr->measure || !dr->policy || dr->domain->state != DOMAIN_STATE_RUNNING || !b->measure_dirty_rate)
                return;
        dr->pending++;
        if (b->measure_dirty_rate(dr->domain->backend_data, DRY_RUN_DIRTY_RATE_SECONDS, on_dirty_rate, dr,
                                  &error) < 0)
                on_dirty_rate(-EIO, 0, error, dr);
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
        dry_run_part_done(dr);
}

static void on_dry_run_connected(Peer *peer, const char *remote_host_uuid, const char *remote_hostname,
                                 const GError *error, void *userdata) {
        DryRun *dr = userdata;
        g_autoptr(GError) local = NULL;

        if (error) {
                findings_add(dr->findings, FINDING_ERROR, "destination.reachable", "%s", error->message);
                dry_run_part_done(dr);
                return;
        }
        dr->peer = peer;
        if (!dr->bandwidth && dr->manager->state_dir &&
            link_record_load(dr->manager->state_dir, remote_host_uuid, g_get_real_time() / G_USEC_PER_SEC,
                             &dr->link, &local) < 0 && local) {
                log_warning("dry run: %s", local->message);
                g_clear_error(&local);
        }
        if (g_strcmp0(remote_host_uuid, dr->manager->host_uuid) == 0) {
                findings_add(dr->findings, FINDING_ERROR, "host.same",
                             "%s is this host (same host UUID %s): migrate to another host",
                             dr->destination->canonical, remote_host_uuid);
                dry_run_part_done(dr);
                return;
        }
        if (!dr->cookie) {
                dry_run_part_done(dr); /* the source's own errors already say why */
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
        dr->measure = !req->skip_measurement;

        if (req->options_error) {
                findings_add_code(dr->findings, FINDING_ERROR, req->options_error->code, "options.valid", "%s",
                                  req->options_error->message);
        } else {
                MigrateOptions *options = req->options;
                if (preflight_policy(d, options, &dr->policy, &local) < 0) {
                        findings_add_code(dr->findings, FINDING_ERROR, local->code, "options.policy", "%s",
                                          local->message);
                        g_clear_error(&local);
                }
                dr->bandwidth = migrate_options_has(options, MIGRATE_OPTION_BANDWIDTH) ? options->bandwidth : 0;
                dr->postcopy = options->postcopy;
                preflight_source(d, options, dr->findings);
                if (!findings_has_errors(dr->findings)) {
                        size_t n_support;
                        const MigrateOptionSupport *support = domain_migrate_option_support(d, &n_support);
                        migrate_options_apply_defaults(options, support, n_support);
                        dr->downtime_ms = options->max_downtime ? options->max_downtime
                                                                : CONVERGENCE_DEFAULT_DOWNTIME_MS;
                        if (cookie_build_prepare(m, d, options, &dr->cookie, &local) < 0) {
                                findings_add_code(dr->findings, FINDING_ERROR, local->code,
                                                  begin_finding_id(local->code), "%s", local->message);
                                g_clear_error(&local);
                        }
                }
        }
        dr->pending = 1; /* the destination's part */
        if (!findings_has_errors(dr->findings))
                dry_run_measure(dr);
        if (req->destination_error) {
                findings_add_code(dr->findings, FINDING_ERROR, req->destination_error->code,
                                  "destination.reachable", "%s", req->destination_error->message);
                dry_run_part_done(dr);
                return 0;
        }
        dr->destination = g_steal_pointer(&req->destination);
        /* Even with errors here, ask whether the destination is there: a
         * dry run reports everything it can find in one go. */
        r = m->peer_ops->connect(m->peer_ctx, dr->destination, on_dry_run_connected, dr, &local);
        if (r < 0) {
                findings_add(dr->findings, FINDING_ERROR, "destination.reachable", "%s", local->message);
                dry_run_part_done(dr);
        }
        return 0;
}
