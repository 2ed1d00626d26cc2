/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain.DryRun (dry-run.h): Begin's checks here, CheckPrepare's on the
 * destination, through the same code as the real migration; nothing is
 * started, bound, created or reserved on either host.
 */
#include "cookie.h"
#include "dry-run.h"
#include "errors.h"
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
} DryRun;

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
                g_autoptr(Policy) policy = NULL;
                if (preflight_policy(d, options, &policy, &local) < 0) {
                        findings_add_code(dr->findings, FINDING_ERROR, local->code, "options.policy", "%s",
                                          local->message);
                        g_clear_error(&local);
                }
                preflight_source(d, options, dr->findings);
                if (!findings_has_errors(dr->findings)) {
                        size_t n_support;
                        const MigrateOptionSupport *support = domain_migrate_option_support(d, &n_support);
                        migrate_options_apply_defaults(options, support, n_support);
                        if (cookie_build_prepare(m, d, options, &dr->cookie, &local) < 0) {
                                findings_add_code(dr->findings, FINDING_ERROR, local->code,
                                                  begin_finding_id(local->code), "%s", local->message);
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
