/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "domain.h"
#include "job.h"
#include "options.h"
#include "peer.h"
#include "uri.h"

/*
 * Live migration, after libvirt's protocol v3, peer to peer: the source
 * daemon drives all five phases and the client only talks to the source.
 *
 *   source                               destination (Incoming.*)
 *   Begin    check domain + options,
 *            build the cookie
 *            ── connect ─────────────────▶ (same host? refused)
 *            ── Prepare(cookie) ─────────▶ check, start the guest waiting
 *                                          for the stream ◀── data URI
 *   (Migrate replies with the job here: the rest runs in the background)
 *   Perform  stream memory to the data URI
 *            ── Finish(success) ─────────▶ run the guest (or discard it)
 *   Confirm  stop the source guest (or run it again)
 *
 * Invariant: after a failure in any phase the guest runs on exactly one
 * host (the source), and the destination keeps nothing.
 */

#define MIGRATION_COOKIE_VERSION 1
#define MIGRATION_COOKIE_MAX_BYTES (1024 * 1024)

/*
 * What Migrate and DryRun were asked: the destination URI and the options
 * a{sv}, parsed once (by the bus layer, before it asks polkit, so that the
 * canonical destination is what rules see) and handed to the core whole.
 * A part that does not parse is NULL, with its error kept: Migrate refuses
 * with it, DryRun reports it as a finding.
 */
typedef struct MigrationRequest {
        char *uri;                 /* as given */
        Destination *destination;  /* NULL: see destination_error */
        GError *destination_error;
        MigrateOptions *options;   /* parsed, not yet checked against a backend; NULL: see options_error */
        GError *options_error;
} MigrationRequest;

MigrationRequest *migration_request_parse(const char *uri, GVariant *options);
void migration_request_free(MigrationRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigrationRequest, migration_request_free)
/* The first error (options, then destination), or NULL. */
const GError *migration_request_error(const MigrationRequest *req);
/* For polkit's "destination": the canonical URI, or the URI as given when
 * it does not parse. */
const char *migration_request_destination(const MigrationRequest *req);

/* The Migrate call's answer: job set once Prepare succeeded, or error. */
typedef void (*MigrationStarted)(Job *job, const GError *error, void *userdata);
/* The job has ended (for callers that wait for the end): error NULL when
 * it completed, else what to answer (MigrationFailed, or PostCopyFailed
 * when the guest is stuck in a broken post-copy: to be resumed, not retried). */
typedef void (*MigrationEnded)(Job *job, const GError *error, void *userdata);

/* Source side. Takes req, whose parts must have parsed. */
int migration_start(Manager *m, Domain *d, MigrationRequest *req, MigrationStarted started, MigrationEnded ended,
                    void *userdata, GError **error);
int migration_cancel(Job *job, GError **error);

/* SetMaxDowntime / SetMaxBandwidth on a migration leaving this host
 * (VM_ERROR_NO_JOB for any other job, or a backend that cannot). */
int migration_set_max_downtime(Job *job, uint64_t milliseconds, GError **error);
int migration_set_max_bandwidth(Job *job, uint64_t bytes_per_second, bool postcopy, GError **error);

/* Domain.DryRun: Begin's checks here, CheckPrepare's on the destination;
 * nothing is started, bound, created or reserved on either host. findings
 * is a floating a(sss). Takes req; its parse errors become findings. */
typedef void (*DryRunDone)(bool ok, GVariant *findings, void *userdata);
int migration_dry_run(Manager *m, Domain *d, MigrationRequest *req, DryRunDone done, void *userdata,
                      GError **error);
/* StartPostCopy: switch the job's pre-copy to post-copy (now, or as soon
 * as the stream has started). */
int migration_start_postcopy(Job *job, GError **error);

/* Destination side: Incoming.Prepare and Incoming.Finish. caller identifies
 * the source connection (so that its disappearance can abort the incoming
 * migration). done's reply is a floating a{sv}. */
typedef void (*IncomingDone)(GVariant *reply, const GError *error, void *userdata);
int migration_incoming_prepare(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                               GError **error);
/* Incoming.CheckPrepare: the checks Prepare runs, nothing started or
 * reserved; the reply has "findings" a(sss). */
int migration_incoming_check(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error);
/* Incoming.Pause: the source saw the post-copy stream break (or paused it
 * with AbortJob): pause it here too, so both hosts say so. */
int migration_incoming_pause(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error);
int migration_incoming_finish(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                              GError **error);
/* The source connection went away: abandon what it left half done. */
void migration_incoming_caller_vanished(Manager *m, const char *caller);

/* vmigrated is stopping: cancel pre-copy migrations leaving (the guest
 * stays on this host), discard the ones arriving, refuse new ones. */
void migration_shutdown(Manager *m);
bool migration_any_running(Manager *m);

/* For the bus layer: the peer implementation to use. */
void manager_set_peer_ops(Manager *m, const PeerOps *ops, void *ctx);
