/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "domain-state.h"
#include "domain-xml.h"
#include "migration-stats.h"
#include "findings.h"
#include "host-facts.h"
#include "options.h"

typedef struct Domain Domain;

typedef enum PreflightSide {
        PREFLIGHT_SOURCE,
        PREFLIGHT_DESTINATION,
} PreflightSide;

/* What a backend's migrate_check op is given (see migration/preflight.h). */
typedef struct PreflightContext {
        PreflightSide side;
        const DomainDef *def;          /* as it runs (source) / will run (destination) */
        const MigrateOptions *options; /* checked and defaulted */
        const HostFacts *facts;        /* this host's */
        const SourceFacts *source;     /* destination: what the source said (may be NULL); source: NULL */
} PreflightContext;


/* What the manager gives every backend. Borrowed; lives as long as the manager. */
typedef struct BackendContext {
        sd_event *event;
        const char *state_dir;   /* the backend may keep files under <state_dir>/<backend name>/ */
        const char *runtime_dir; /* likewise under <runtime_dir>/<backend name>/ */
} BackendContext;

/*
 * Completion of an asynchronous operation. r >= 0 on success; on failure r
 * is a negative errno and error (borrowed, VM_ERROR domain) says why.
 * A backend never calls it before the operation function has returned:
 * completion always comes from the event loop.
 */
typedef void (*BackendDone)(int r, const GError *error, void *userdata);
/* A measured dirty rate, bytes/s (r < 0: error says why). */
typedef void (*BackendDirtyRateDone)(int r, uint64_t bytes_per_second, const GError *error, void *userdata);

/* Option 'tls', as the core checked it (NULL: the stream is not
 * encrypted). The backend's hypervisor reads the credentials in dir
 * (tls-creds.h names the files). The source verifies that the
 * destination's certificate names the host of the data URI; the
 * destination lets in only a client whose certificate's distinguished
 * name is peer_dn. */
typedef struct MigrationTls {
        const char *dir;
        const char *peer_dn; /* destination only */
} MigrationTls;

/* Migration: the destination is ready; data_uri is where the source sends
 * the stream ("tcp://host:port" for QEMU). With option 'tunnelled' it is
 * "unix:/absolute/path", a socket on this host that only the daemon
 * connects to (Incoming.OpenTunnel hands the connection to the source):
 * no port is opened on the network; a backend that needs more connections
 * through the tunnel (a disk copy's) names their sockets in its reply's
 * "tunnel-sockets" a{ss} (name -> absolute path), which the core keeps
 * here, opening each for the source (MigrationTarget.tunnel_fds).
 * backend_reply (borrowed, a{sv}, may
 * be NULL) is what the source's backend needs to know besides (Perform's
 * MigrationTarget.backend_reply), e.g. where to copy disks. */
typedef void (*MigratePrepareDone)(int r, const GError *error, const char *data_uri, GVariant *backend_reply,
                                   void *userdata);
/* Where Perform sends the stream, as the destination prepared it. */
typedef struct MigrationTarget {
        const char *data_uri;    /* "tcp://host:port"; NULL with option 'tunnelled' */
        int data_fd;             /* option 'tunnelled': a socket whose other end reaches the
                                  * destination's stream (the backend keeps a duplicate; the
                                  * caller closes its own); otherwise -1 */
        GHashTable *tunnel_fds;  /* option 'tunnelled': the other sockets the destination's
                                  * backend asked for (its Prepare reply's "tunnel-sockets",
                                  * by name) as GINT_TO_POINTER(fd), the same way; or NULL */
        GVariant *backend_reply; /* a{sv}: the destination backend's Prepare reply, or NULL */
} MigrationTarget;

/* Migration progress, as often as the backend learns something. */
typedef void (*MigrateProgressFn)(const MigrationStats *stats, void *userdata);

/*
 * A backend is a const table of these. The core calls through it and never
 * asks which backend it holds. Per-domain backend state is the opaque
 * "domain_data" returned by domain_attach.
 *
 * Backends report what happens to a domain (state changes, lifecycle
 * events) with domain_backend_event() from domain.h, both for changes that
 * an operation caused (before calling its BackendDone) and for changes the
 * guest caused on its own (guest shutdown, crash).
 *
 * Migration follows the phases of DESIGN.md (see migration.c): the core
 * drives both hosts; each phase is one backend call of the same
 * (domain_data, ..., done, userdata, error) shape, so a migration is a
 * state machine driven by completions.
 */
typedef struct BackendOps {
        const char *name;        /* "test", "qemu" */
        const char *description; /* one line, shown by GetBackends */
        const char *const *domain_types; /* NULL-terminated <domain type=…> values it runs */

        /* Returns 0, or a negative errno with *error saying why the backend
         * is unavailable on this host (the others still work). */
        int (*init)(const BackendContext *ctx, void **ret_backend_data, GError **error);
        void (*fini)(void *backend_data);

        /* Checks beyond XML syntax that a definition can run here
         * (machine type known, files exist, ...). Synchronous, cheap. */
        int (*validate)(void *backend_data, const DomainDef *def, GError **error);

        /* At daemon start-up, before any domain object exists: the running
         * definitions (DomainDef*, the array owns them) of guests this
         * backend finds still running from before a restart. Records of
         * guests that died meanwhile are cleaned up and logged. May be NULL. */
        GPtrArray *(*recover)(void *backend_data);

        /* A domain object appears (defined, created, or found at start-up).
         * The backend may find it already running (re-attach) and report
         * that with domain_backend_event(). */
        int (*domain_attach)(void *backend_data, Domain *domain, void **ret_domain_data, GError **error);
        void (*domain_detach)(void *domain_data);
        /* The domain is gone for good: undefined and not running (Undefine,
         * the undefine-source migration option), or transient and stopped.
         * The backend drops the state it keeps for this domain alone (the
         * qemu backend: the NVRAM it made in its own directory, a TPM's
         * state), never what
         * the definition names. Called before domain_detach; a failure is
         * logged and does not keep the domain. */
        int (*domain_forget)(void *domain_data, GError **error);

        /* Lifecycle. Each validates nothing the core already checked
         * (state); it returns < 0 with *error for immediate failure, else 0
         * and calls done exactly once later. */
        int (*start)(void *domain_data, const DomainDef *def, BackendDone done, void *userdata, GError **error);
        int (*shutdown)(void *domain_data, uint64_t timeout_usec, BackendDone done, void *userdata,
                        GError **error);
        int (*destroy)(void *domain_data, BackendDone done, void *userdata, GError **error);
        int (*suspend)(void *domain_data, BackendDone done, void *userdata, GError **error);
        int (*resume)(void *domain_data, BackendDone done, void *userdata, GError **error);

        /* ---- migration; all may be NULL for a backend that cannot migrate ---- */

        /* Source, DryRun: how fast the running guest dirties its memory,
         * measured over `seconds` without migrating anything; done exactly
         * once later (also with an error when the domain goes away
         * first). May be NULL. */
        int (*measure_dirty_rate)(void *domain_data, unsigned seconds, BackendDirtyRateDone done, void *userdata,
                                  GError **error);
        /* Which Migrate options this backend honours and their defaults. */
        const MigrateOptionSupport *(*migrate_options)(void *backend_data, size_t *ret_n);
        /* Both sides, before Begin/Prepare and in a dry run: the backend's
         * own checks (preflight.h), added to `out`. Touches nothing. May be
         * NULL (a simulated backend has no host resources to check). */
        void (*migrate_check)(void *backend_data, const PreflightContext *ctx, Findings *out);
        /* Source, Begin: may this domain go with these (checked, defaulted)
         * options, e.g. no known defect of this hypervisor in the way? Adds
         * what the destination's backend must know to `cookie`. Sync. */
        int (*migrate_begin)(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                             GVariantDict *cookie, GError **error);
        /* Destination, Prepare: the domain object exists (shut off); check
         * the source backend's cookie, start the guest waiting for the
         * stream, and say where to send it. Reports started/migrated. */
        int (*migrate_prepare)(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                               const MigrationTls *tls, GVariant *source_cookie, MigratePrepareDone done,
                               void *userdata, GError **error);
        /* Source, Perform: stream to target until the guest's state is on
         * the destination (reported suspended/migrated) or it failed. */
        int (*migrate_perform)(void *domain_data, const MigrationTarget *target, const MigrateOptions *options,
                               const MigrationTls *tls, MigrateProgressFn progress, BackendDone done,
                               void *userdata, GError **error);
        /* Destination, Finish: success → wait for the stream to end, then
         * run the guest (resumed/migrated), or leave it paused if
         * options->paused; failure → stop and discard it. In post-copy
         * (the source switched) the guest runs at once (resumed/postcopy)
         * while its pages still arrive: done then comes when it runs, and
         * ended when the stream has completed or failed. Otherwise ended
         * follows done. Both get userdata. */
        int (*migrate_finish)(void *domain_data, bool success, bool postcopy, const MigrateOptions *options,
                              BackendDone done, BackendDone ended, void *userdata, GError **error);
        /* Source, after Perform succeeded (the guest stopped here, its state
         * on the destination) and before Finish: what the destination's
         * backend must have before the guest runs there that it cannot
         * keep from the stream alone (qemu: the UEFI NVRAM file as it was
         * when the guest stopped). Sent in the Finish cookie as "backend".
         * An error fails the migration (the guest runs on here), except in
         * post-copy, where it is a warning. May be NULL. */
        int (*migrate_finish_cookie)(void *domain_data, GVariantDict *cookie, GError **error);
        /* Destination, Finish with success, before migrate_finish: the
         * source backend's migrate_finish_cookie (a{sv}, hostile input).
         * An error discards the guest here (the source runs it again),
         * except in post-copy, where it is a warning. May be NULL. */
        int (*migrate_finish_accept)(void *domain_data, GVariant *source_cookie, GError **error);
        /* Destination, once a post-copy's stream completed (ended with
         * success): what only the destination measured, written into
         * stats (has_postcopy_blocktime and postcopy_blocktime_ms). May be
         * NULL. */
        void (*migrate_incoming_stats)(void *domain_data, MigrationStats *stats);
        /* Destination, before Finish: whether the arriving stream switched
         * to post-copy. The source has then stopped its guest for good:
         * it can run only here. May be NULL (never). */
        bool (*migrate_incoming_postcopy)(void *domain_data);
        /* Destination, before Finish: the source is about to switch to
         * post-copy (it asked Incoming.Arrival first). Records it where a
         * restart of vmigrated finds it, so that the restart keeps the
         * arriving guest instead of discarding it: once switched it can
         * run only here. A restart that cannot tell which way the stream
         * went keeps it paused with StateReason postcopy-coming, for
         * migrate_settle_coming. Fails if it cannot record it: then the
         * source does not switch. May be NULL (nothing survives a
         * restart). */
        int (*migrate_postcopy_coming)(void *domain_data, GError **error);
        /* Destination, after a restart: a guest reported paused with
         * StateReason postcopy-coming, and its source's word. switched →
         * it runs here: 1 when it was started, 0 while the hypervisor has
         * not seen the switch yet (ask again). !switched → the source runs
         * its own copy: this one is discarded (shut off, reason failed),
         * and 0 is returned. May be NULL. */
        int (*migrate_settle_coming)(void *domain_data, bool switched, GError **error);
        /* Destination, before Finish: the connection of a source that was
         * told it may switch (migrate_postcopy_coming) went away, so
         * nobody drives the arrival any more, and the switch may be on its
         * way. The backend takes it over as after a restart: what was made
         * for it stays; the stream decides (a switch: it runs here; an end
         * without one: it is discarded) or, while it cannot tell, holds it
         * paused with StateReason postcopy-coming for
         * migrate_settle_coming. The migration is over for the core. May
         * be NULL: the arrival is then discarded. */
        void (*migrate_hold_coming)(void *domain_data);
        /* Source, Confirm: success → stop the source guest (stopped/migrated);
         * failure → run it again if it ran before (resumed/migrated). */
        int (*migrate_confirm)(void *domain_data, bool success, BackendDone done, void *userdata, GError **error);
        /* Source, after a restart: a guest the backend found copied but
         * never confirmed, which it reported paused with StateReason
         * migration-unconfirmed (recover.h). guest_left → stop it
         * (stopped/migrated); else run it again (resumed/migrated). May
         * be NULL: such guests then stay paused. */
        int (*migrate_settle_unconfirmed)(void *domain_data, bool guest_left, BackendDone done,
                                          void *userdata, GError **error);
        /* Source, instead of Confirm, when nobody can say whether the
         * destination runs the guest: forget the migration and leave the
         * guest paused, reported with StateReason migration-unconfirmed
         * (as after a restart). May be NULL. */
        void (*migrate_leave_unconfirmed)(void *domain_data);
        /* Source: switch a running pre-copy to post-copy. May be asked
         * before the hypervisor can (first pass not started): then it is
         * remembered and done as soon as it can. Perform's progress then
         * reports postcopy_active, and Perform ends once the guest's state
         * is on the destination; Confirm(success) waits for the last pages
         * and fails with VM_ERROR_POSTCOPY_FAILED if the stream breaks
         * (the guest is then paused on both hosts: nothing is killed). */
        int (*migrate_start_postcopy)(void *domain_data, GError **error);
        /* Post-copy, either side: pause the stream (QEMU migrate-pause); the
         * guest waits on both hosts, resumable with postcopy-resume. */
        int (*migrate_pause)(void *domain_data, GError **error);
        /* Source, post-copy: the destination said it runs the guest
         * (Finish answered). Until then the backend must not pause the
         * post-copy on its own (say, on a stalled link): a destination
         * still loading the device state quits when its stream breaks, and
         * the guest is lost. May be NULL. */
        void (*migrate_destination_runs)(void *domain_data);
        /* Source, with auto-converge on: the most the guest's CPUs may be
         * throttled from now on, in percent (1-99); 0 holds the throttle
         * back (at most 1%) until a convergence policy's throttle step.
         * May be NULL. */
        int (*migrate_set_throttle)(void *domain_data, unsigned percent, GError **error);
        /* Stops a Perform in progress: its done then reports the failure. */
        int (*migrate_cancel)(void *domain_data, GError **error);
        int (*migrate_set_max_downtime)(void *domain_data, uint64_t milliseconds, GError **error);
        /* 0 lifts the limit (as a Perform without 'bandwidth'): what the
         * end of a share of the link gives back (source.c). */
        int (*migrate_set_max_bandwidth)(void *domain_data, uint64_t bytes_per_second, bool postcopy,
                                         GError **error);

        /* Host capabilities: appends elements inside <backend name=…>. May be NULL. */
        void (*append_capabilities)(void *backend_data, GString *xml);
        /* a{sv} describing the backend for GetBackends (keys beyond the ones
         * the manager adds: "domain-types", "description", "available"). May be NULL. */
        GVariant *(*describe)(void *backend_data);
} BackendOps;
