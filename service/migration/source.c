/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The source side of a migration (source.h): Begin, then Prepare on the
 * destination, Perform, Finish on the destination, Confirm. One Outgoing
 * per job, a state machine driven by the peer's replies and the backend's
 * completions; the first failure decides the job's result.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "convergence.h"
#include "cookie.h"
#include "errors.h"
#include "link-share.h"
#include "links.h"
#include "log.h"
#include "manager.h"
#include "policy.h"
#include "preflight.h"
#include "recover.h"
#include "source.h"
#include "test-breakpoints.h"
#include "text.h"

/* How long a failed tunnelled stream waits for its carrier's end. */
#define TUNNEL_END_WAIT_USEC (2 * G_USEC_PER_SEC)
/* How long the destination may take to say it holds the arriving guest
 * before the switch to post-copy (a restarted vmigrated there may first
 * wait for the last one to stop). */
#define POSTCOPY_CHECK_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
/* How long the destination may take to run the guest after the switch to
 * post-copy (it takes well under a second on a working link) before the
 * job warns that it waits (outgoing_watch_switch). */
#define POSTCOPY_SWITCH_SLOW_USEC (20 * G_USEC_PER_SEC)

typedef struct Outgoing {
        Manager *manager;
        Domain *domain; /* reference */
        Job *job;       /* reference */
        Destination *destination;
        MigrateOptions *options;
        GVariant *cookie;
        Peer *peer;
        char *data_uri;
        char *tunnel_token; /* option 'tunnelled': from Prepare, for open_tunnel */
        /* Option 'tunnelled': the backend's other channels (a disk copy's
         * NBD connections), Prepare's "tunnel-tokens", opened alongside the
         * stream's before Perform. */
        GPtrArray *tunnels;      /* OutgoingTunnel* */
        unsigned tunnels_pending;
        bool tunnel_open_failed;
        int stream_fd;
        GVariant *backend_reply; /* the destination backend's part of Prepare's reply, or NULL */

        MigrationStarted started;
        MigrationEnded ended;
        void *userdata;
        bool reported_start;

        /* The first failure decides the job's result and error. */
        char *failure;
        VmError failure_code;
        bool cancelled;
        const char *cancel_reason; /* static: what cancelled it, when not a caller */
        bool postcopy_requested; /* StartPostCopy before Perform began */
        bool postcopy_sent;      /* the backend was asked to switch to post-copy */
        bool postcopy_checking;  /* the destination is asked first (outgoing_send_postcopy) */
        bool paused_by_abort;    /* AbortJob paused the post-copy */
        /* AbortJob while switching to post-copy, or before the destination
         * said the guest runs there (Finish answered): pausing then would
         * make the destination's QEMU, still loading the device state,
         * quit, and leave the guest paused here for good. Done at once
         * when the destination runs it. */
        bool abort_requested;
        bool destination_runs; /* in post-copy: Finish answered, the guest runs there */
        sd_event_source *switch_slow; /* post-copy's Finish unanswered for long: warns */
        /* Test builds' stopping points (test-breakpoints.h): what came
         * while held, delivered on release. */
        bool seen_first_pass, seen_mid_stream;
        bool performed_deferred;
        int performed_r;
        GError *performed_error;
        bool perform_started;    /* the backend's Perform took over: Confirm must settle it */
        /* Finish(success) got no answer (the connection broke): the
         * destination is asked whether it runs the guest before anything
         * is done here. Left unsettled, the guest stays paused and the
         * unconfirmed record stays for the next start (recover.h). */
        ArrivalQuery *arrival;
        char *finish_lost;
        bool keep_unconfirmed_record;
        bool stream_ended;       /* the stream is over: the tunnel's end no longer matters */
        char *tunnel_failure;    /* how the tunnel's carrier ended, when it broke mid-stream */
        /* The stream failed while a tunnel's carrier still ran: its end,
         * likely the cause, is waited for a moment (TUNNEL_END_WAIT_USEC). */
        sd_event_source *tunnel_end_wait;

        /* Convergence (convergence.h): the policy, the max-downtime the
         * caller gave (0: none), and the last pass reported. */
        Policy *policy;
        uint64_t caller_downtime;
        Convergence *convergence;
        uint64_t pass;
        sd_event_source *timeout;
        /* For links.h: the destination host, and the bytes pre-copy had
         * sent at its first and its last report (none when the caller
         * capped the bandwidth: that says nothing of the link). */
        char *remote_host_uuid;
        char *remote_hostname; /* from Prepare's reply, checked */
        uint64_t link_first_usec, link_first_bytes;
        uint64_t link_last_usec, link_last_bytes;

        /* Sharing this host's link (link-share.h): the caller's own cap
         * ('bandwidth', SetMaxBandwidth; 0 = none), whether this pre-copy
         * stream takes part, the share it was given (0 = none imposed),
         * and whether it ever shared (then its throughput says nothing of
         * the link). */
        uint64_t caller_bandwidth;
        bool sharing;
        uint64_t share;
        bool link_shared;
} Outgoing;

typedef struct OutgoingTunnel {
        Outgoing *o; /* borrowed: the Outgoing owns this */
        char *name;  /* "stream" for the stream's own */
        char *token;
        int fd;      /* once opened */
        bool ended;  /* its carrier (ssh) ended */
} OutgoingTunnel;

static void outgoing_tunnel_free(OutgoingTunnel *t) {
        if (t->fd >= 0)
                close(t->fd);
        g_free(t->name);
        g_free(t->token);
        g_free(t);
}

static OutgoingTunnel *outgoing_tunnel_new(Outgoing *o, const char *name, const char *token) {
        OutgoingTunnel *t = g_new0(OutgoingTunnel, 1);

        t->o = o;
        t->name = g_strdup(name);
        t->token = g_strdup(token);
        t->fd = -1;
        g_ptr_array_add(o->tunnels, t);
        return t;
}

static void outgoing_set_sharing(Outgoing *o, bool sharing);

static void outgoing_free(Outgoing *o) {
        if (!o)
                return;
        breakpoint_forget(o->manager->breakpoints, o);
        arrival_query_cancel(o->arrival);
        g_free(o->finish_lost);
        g_clear_error(&o->performed_error);
        if (o->sharing && o->job)
                outgoing_set_sharing(o, false);
        sd_event_source_disable_unref(o->timeout);
        sd_event_source_disable_unref(o->tunnel_end_wait);
        sd_event_source_disable_unref(o->switch_slow);
        g_free(o->remote_host_uuid);
        convergence_free(o->convergence);
        policy_free(o->policy);
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
        g_free(o->tunnel_token);
        if (o->tunnels)
                g_ptr_array_unref(o->tunnels);
        if (o->backend_reply)
                g_variant_unref(o->backend_reply);
        g_free(o->tunnel_failure);
        g_free(o->failure);
        g_free(o->remote_hostname);
        g_free(o);
}

/* Where a failure was seen: this host, or the destination that said so. */
typedef enum SeenOn {
        SEEN_ON_SOURCE,
        SEEN_ON_DESTINATION,
} SeenOn;

/* The destination by the name it gave in Prepare's reply, else as the
 * caller wrote it. */
static const char *outgoing_destination_name(const Outgoing *o) {
        return o->remote_hostname ? o->remote_hostname : o->destination->canonical;
}

/* The job's error names the phase it failed in and the host that saw
 * it, so that an admin reading one line knows where to look. */
static void outgoing_record_failure(Outgoing *o, const GError *error, SeenOn seen_on, const char *context) {
        g_autofree char *here = NULL;

        if (o->failure)
                return;
        if (seen_on == SEEN_ON_SOURCE)
                here = manager_get_hostname();
        /* A broken tunnel is why the hypervisor's stream broke: say both. */
        o->failure =
                g_strdup_printf("%s phase, on %s (%s): %s: %s%s%s%s", job_phase_to_string(o->job->phase),
                                here ? here : outgoing_destination_name(o),
                                seen_on == SEEN_ON_SOURCE ? "source" : "destination", context,
                                error ? error->message : "failed",
                                o->tunnel_failure ? " (the tunnel to the destination: " : "",
                                o->tunnel_failure ? o->tunnel_failure : "", o->tunnel_failure ? ")" : "");
        o->failure_code = error && error->domain == VM_ERROR ? error->code : VM_ERROR_MIGRATION_FAILED;
}

static void on_performed(int r, const GError *error, void *userdata);

static const char *outgoing_cancel_context(const Outgoing *o) {
        if (o->cancel_reason)
                return o->cancel_reason;
        return o->manager->shutting_down ? "cancelled because vmigrated is stopping" : "cancelled";
}

static void outgoing_finish(Outgoing *o);

/* A cancel that came before the stream started: the stream never starts,
 * and the destination discards its guest. */
static bool outgoing_stop_if_cancelled(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        if (!o->cancelled)
                return false;
        vm_error_set(&error, VM_ERROR_MIGRATION_FAILED, "the migration was cancelled");
        outgoing_record_failure(o, error, SEEN_ON_SOURCE, outgoing_cancel_context(o));
        outgoing_finish(o);
        return true;
}

/* The switch is not asked for: the pre-copy stream stops, and the guest
 * stays here whole. */
static void outgoing_refuse_postcopy(Outgoing *o, const GError *why, SeenOn seen_on) {
        g_autoptr(GError) local = NULL;

        log_warning("job %" G_GUINT64_FORMAT ": not switching to post-copy: %s", o->job->id, why->message);
        o->postcopy_sent = false;
        outgoing_record_failure(o, why, seen_on, "before the switch to post-copy");
        if (o->domain->backend->migrate_cancel(o->domain->backend_data, &local) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot stop the stream: %s", o->job->id,
                            local->message);
}

static void outgoing_resume_stream(Outgoing *o);

/* The destination holds the arriving guest, and keeps it should its
 * vmigrated restart from now on: the switch. */
static void outgoing_start_switch(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        if (breakpoint_hold(o->manager->breakpoints, "source-after-postcopy-check", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_start_switch, o))
                return;
        if (o->performed_deferred) {
                /* Pre-copy completed while the switch was held. */
                o->postcopy_sent = false;
                outgoing_resume_stream(o);
                return;
        }
        if (o->stream_ended || o->job->phase != JOB_PHASE_PERFORM)
                return;
        if (o->domain->backend->migrate_start_postcopy(o->domain->backend_data, &error) < 0) {
                o->postcopy_sent = false;
                log_warning("job %" G_GUINT64_FORMAT ": cannot switch to post-copy: %s", o->job->id,
                            error->message);
        }
}

static void on_postcopy_checked(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) bad = NULL, local = NULL;
        const char *arrival = NULL;

        o->postcopy_checking = false;
        /* The stream ended meanwhile (pre-copy completed or failed):
         * nothing to switch. */
        if (o->stream_ended || o->performed_deferred || o->job->phase != JOB_PHASE_PERFORM)
                return;
        if (!error && !(arrival = arrival_reply_value(reply, &bad)))
                error = bad;
        if (error) {
                outgoing_refuse_postcopy(o, error, SEEN_ON_DESTINATION);
                return;
        }
        if (!g_str_equal(arrival, "arriving")) {
                vm_error_set(&local, VM_ERROR_MIGRATION_FAILED,
                             "its vmigrated no longer holds the arriving guest (Arrival: %s; it restarted?)",
                             arrival);
                outgoing_refuse_postcopy(o, local, SEEN_ON_DESTINATION);
                return;
        }
        outgoing_start_switch(o);
}

/* Every switch to post-copy goes through here: from then on a cancel
 * would race the switch (AbortJob then pauses instead). After the switch
 * only the destination can run the guest; its vmigrated is asked first
 * whether it still holds the arriving guest (Incoming.Arrival answers
 * 'arriving'). One that restarted since Prepare has discarded the half
 * that arrived, and a switch would lose the guest: the stream is stopped
 * instead, and the guest stays here. */
static int outgoing_send_postcopy(Outgoing *o, GError **error) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        if (o->postcopy_checking)
                return 0;
        cookie_add_host(&dict, o->manager);
        g_variant_dict_insert(&dict, "uuid", "s", domain_uuid(o->domain));
        g_variant_dict_insert(&dict, "postcopy-switch", "b", true);
        if (o->manager->peer_ops->call(o->peer, "Arrival", g_variant_dict_end(&dict),
                                       POSTCOPY_CHECK_TIMEOUT_USEC, on_postcopy_checked, o, error) < 0)
                return -EIO;
        o->postcopy_sent = true;
        o->postcopy_checking = true;
        return 0;
}

/* StartPostCopy, asked now or remembered from before the stream. */
static void outgoing_switch_postcopy(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        if (breakpoint_hold(o->manager->breakpoints, "source-before-postcopy-switch", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_switch_postcopy, o))
                return;
        if (o->performed_deferred) {
                /* Pre-copy completed while the switch was held: nothing
                 * left to switch; deliver the stream's end. */
                outgoing_resume_stream(o);
                return;
        }
        if (outgoing_send_postcopy(o, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot switch to post-copy: %s", o->job->id,
                            error->message);
}

/* AbortJob in post-copy: a pause, resumed later with postcopy-resume. */
static int outgoing_pause_postcopy_now(Outgoing *o, GError **error) {
        log_info("job %" G_GUINT64_FORMAT
                 ": AbortJob in post-copy: pausing it (resume with postcopy-resume)",
                 o->job->id);
        o->paused_by_abort = true;
        return o->domain->backend->migrate_pause(o->domain->backend_data, error);
}

/* The remembered AbortJob, now that the destination runs the guest. */
static void outgoing_pause_postcopy(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        o->abort_requested = false;
        if (outgoing_pause_postcopy_now(o, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot pause the post-copy: %s", o->job->id,
                            error->message);
}

/* copy-storage: the source's images stay where they were (the admin's to
 * delete): the job says so, and JobCompleted with it. */
static void outgoing_note_source_images(Outgoing *o) {
        g_autoptr(GString) paths = g_string_new(NULL);
        const DomainDef *def = o->domain->def;

        for (unsigned i = 0; def && i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                if (domain_disk_is_copyable(disk))
                        g_string_append_printf(paths, "%s%s", paths->len ? ", " : "", disk->source_file);
        }
        if (paths->len == 0)
                return;
        g_autofree char *hostname = manager_get_hostname();
        g_autofree char *note = g_strdup_printf("copy-storage: the source's images stay on %s (%s): delete them "
                                                "when you no longer need them",
                                                hostname, paths->str);
        job_add_warning(o->job, note);
}

/* ---- sharing the link ---- */

/* What the link carries: the admin's OutgoingBandwidthMbps=, else the
 * fastest link one of the destinations measured when a migration ran
 * alone there (links.h): the host's own link is at least that fast. */
static uint64_t link_budget(Manager *m, GPtrArray *sharing) {
        uint64_t best = 0;

        if (m->outgoing_bandwidth || !m->state_dir)
                return m->outgoing_bandwidth;
        for (unsigned i = 0; i < sharing->len; i++) {
                Outgoing *o = sharing->pdata[i];
                g_auto(LinkRecord) record = {};
                if (o->remote_host_uuid &&
                    link_record_load(m->state_dir, o->remote_host_uuid, g_get_real_time() / G_USEC_PER_SEC, &record,
                                     NULL) >= 0)
                        best = MAX(best, record.bandwidth);
        }
        return best;
}

static void outgoing_apply_share(Outgoing *o, uint64_t share) {
        g_autoptr(GError) error = NULL;

        if (share == o->share)
                return;
        o->share = share;
        if (!o->perform_started) {
                /* Not streaming yet: Perform starts with it. */
                o->options->bandwidth = share ? share : o->caller_bandwidth;
                return;
        }
        if (!o->domain->backend->migrate_set_max_bandwidth ||
            o->domain->backend->migrate_set_max_bandwidth(o->domain->backend_data, share ? share : o->caller_bandwidth,
                                                          false, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot set its share of the link: %s", o->job->id,
                            error ? error->message : "the backend cannot change the bandwidth");
}

/* Re-balances the shares of the pre-copy streams leaving this host: run
 * when one starts, ends or switches to post-copy, and when a caller
 * changes a cap. Alone, a migration has only its own cap. */
static void migration_share_link(Manager *m) {
        g_autoptr(GPtrArray) sharing = g_ptr_array_new();
        GHashTableIter iter;
        gpointer value;

        if (!m->jobs)
                return; /* the manager is going */
        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Job *j = value;
                Outgoing *o = j->kind == JOB_MIGRATION_OUT ? j->migration : NULL;
                if (o && o->sharing)
                        g_ptr_array_add(sharing, o);
        }
        uint64_t budget = sharing->len > 1 ? link_budget(m, sharing) : 0;
        g_autofree uint64_t *caps = g_new0(uint64_t, sharing->len + 1);
        g_autofree uint64_t *shares = g_new0(uint64_t, sharing->len + 1);
        for (unsigned i = 0; i < sharing->len; i++)
                caps[i] = ((Outgoing *) sharing->pdata[i])->caller_bandwidth;
        link_share_compute(budget, caps, sharing->len, shares);
        for (unsigned i = 0; i < sharing->len; i++) {
                Outgoing *o = sharing->pdata[i];
                uint64_t share = budget ? shares[i] : 0;
                /* With or without shares, a stream that had company saw
                 * only part of the link: its speed is no record of it. */
                if (sharing->len > 1)
                        o->link_shared = true;
                if (share != o->share)
                        log_info("job %" G_GUINT64_FORMAT ": %s", o->job->id,
                                 share ? "sharing the link" : "has the link to itself");
                if (share)
                        log_debug("job %" G_GUINT64_FORMAT ": share %" G_GUINT64_FORMAT " B/s of %" G_GUINT64_FORMAT
                                  " B/s with %u others",
                                  o->job->id, share, budget, sharing->len - 1);
                outgoing_apply_share(o, share);
        }
}

/* The stream starts (before Perform) or stops taking part. */
static void outgoing_set_sharing(Outgoing *o, bool sharing) {
        if (o->sharing == sharing)
                return;
        o->sharing = sharing;
        if (!sharing)
                o->share = 0;
        migration_share_link(o->manager);
}

/* Less than this says more about the start of a stream than the link. */
#define LINK_MIN_BYTES (32ULL * 1024 * 1024)
#define LINK_MIN_USEC G_USEC_PER_SEC

/* What this migration saw of the link, for the next DryRun to there: the
 * average pre-copy throughput, when it ran long enough to mean something
 * (an idle guest's few MiB do not fill a link). */
static void outgoing_record_link(Outgoing *o) {
        g_autoptr(GError) error = NULL;
        uint64_t bytes = o->link_last_bytes - o->link_first_bytes;
        uint64_t usec = o->link_last_usec - o->link_first_usec;

        if (!o->remote_host_uuid || !o->manager->state_dir || o->link_shared || bytes < LINK_MIN_BYTES ||
            usec < LINK_MIN_USEC)
                return;
        if (link_record_save(o->manager->state_dir, o->remote_host_uuid, o->destination->canonical,
                             bytes * G_USEC_PER_SEC / usec, g_get_real_time() / G_USEC_PER_SEC, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": not keeping the link's speed: %s", o->job->id,
                            error->message);
}

static void outgoing_end(Outgoing *o) {
        if (breakpoint_hold(o->manager->breakpoints, "source-before-end", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_end, o))
                return;
        JobPhase final = o->cancelled ? JOB_PHASE_CANCELLED : o->failure ? JOB_PHASE_FAILED : JOB_PHASE_COMPLETED;

        if (!o->keep_unconfirmed_record)
                unconfirmed_record_remove(o->manager, domain_uuid(o->domain));

        if (final == JOB_PHASE_COMPLETED && o->options->copy_storage != MIGRATE_COPY_STORAGE_NONE)
                outgoing_note_source_images(o);
        if (final == JOB_PHASE_COMPLETED)
                outgoing_record_link(o);

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

static void on_lost_half_stopped(int r, const GError *error, void *userdata) {
        Outgoing *o = userdata;

        if (r < 0)
                log_error("domain '%s': cannot stop its useless post-copy half: %s", domain_name(o->domain),
                          error ? error->message : "?");
        outgoing_end(o);
}

/* After a broken post-copy whose destination could not pause: does the
 * destination still hold its part of the guest? If not (its QEMU died),
 * the part here can never run either: the guest is lost, and the paused
 * QEMU here goes rather than wait for a resume that cannot come. */
static void on_destination_half_answer(ArrivalAnswer answer, const char *why, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) error = NULL;

        o->arrival = NULL;
        if (answer != ARRIVAL_ABSENT || !domain_state_is_active(o->domain->state)) {
                outgoing_end(o);
                return;
        }
        log_error(
                "domain '%s': %s no longer has its part of the guest: the guest is lost; stopping the part "
                "here, which can never run",
                domain_name(o->domain), outgoing_destination_name(o));
        g_free(o->failure);
        o->failure =
                g_strdup_printf("postcopy phase, on %s (destination): its QEMU is gone with its part of "
                                "the guest, which is lost; the part on the source was stopped",
                                outgoing_destination_name(o));
        if (o->domain->backend->destroy(o->domain->backend_data, on_lost_half_stopped, o, &error) < 0)
                on_lost_half_stopped(-EIO, error, o);
}

static void on_destination_paused(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) local = NULL;

        if (!error) {
                outgoing_end(o);
                return;
        }
        log_warning("could not pause the post-copy on the destination: %s", error->message);
        /* It answered, but has no post-copy to pause: ask what it has. */
        if (g_error_matches(error, VM_ERROR, VM_ERROR_DESTINATION_UNREACHABLE) ||
            !domain_state_is_active(o->domain->state) ||
            arrival_query_start(o->manager, o->destination, domain_uuid(o->domain), true,
                                on_destination_half_answer, o, &o->arrival, &local) < 0)
                outgoing_end(o);
}

/* The destination may not notice a dead link for a long time: tell it,
 * then end. When the QEMU here is gone, the guest's pages it held are
 * lost: the destination stops its part ("source-lost"). */
static void outgoing_pause_destination_and_end(Outgoing *o) {
        g_autoptr(GError) error = NULL;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        cookie_add_host(&dict, o->manager);
        g_variant_dict_insert(&dict, "uuid", "s", domain_uuid(o->domain));
        if (!domain_state_is_active(o->domain->state))
                g_variant_dict_insert(&dict, "source-lost", "b", true);
        if (!o->peer || o->manager->peer_ops->call(o->peer, "Pause", g_variant_dict_end(&dict),
                                                   PEER_FINISH_TIMEOUT_USEC, on_destination_paused, o, &error) < 0) {
                if (error)
                        log_warning("could not ask the destination to pause the post-copy: %s", error->message);
                outgoing_end(o);
        }
}

static void on_confirmed(int r, const GError *error, void *userdata) {
        Outgoing *o = userdata;

        o->stream_ended = true;
        if (r < 0 && o->job->stats.postcopy_active) {
                /* Post-copy broke: the guest is split between the hosts and
                 * paused; nothing may be killed. The destination may not
                 * notice a dead link for a long time: tell it. */
                outgoing_record_failure(o, error, SEEN_ON_SOURCE,
                                        o->paused_by_abort ? "post-copy paused by AbortJob"
                                                           : "the post-copy broke");
                outgoing_pause_destination_and_end(o);
                return;
        } else if (r < 0) {
                /* Confirm(failure) failing means the source guest did not come
                 * back: the admin must know. */
                log_error("domain '%s': confirm after %s failed: %s", domain_name(o->domain),
                          o->failure ? "a failed migration" : "the migration", error ? error->message : "?");
                outgoing_record_failure(o, error, SEEN_ON_SOURCE, "confirm");
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

        if (breakpoint_hold(o->manager->breakpoints, "source-after-finish", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_confirm, o) ||
            breakpoint_hold(o->manager->breakpoints, "source-before-confirm", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_confirm, o))
                return;
        if (o->job->phase != JOB_PHASE_POSTCOPY)
                job_set_phase(o->job, JOB_PHASE_CONFIRM);
        if (o->options->offline || !o->perform_started) {
                on_confirmed(0, NULL, o); /* nothing ran here, or nothing changed */
                return;
        }
        if (o->domain->backend->migrate_confirm(o->domain->backend_data, success, on_confirmed, o, &error) < 0)
                on_confirmed(-EIO, error, o);
}

/* Post-copy: the destination said it runs the guest. From now on a pause
 * (AbortJob, a stalled link) is safe: its QEMU no longer loads the device
 * state, and can wait for a resume. */
static void outgoing_destination_runs(Outgoing *o) {
        o->destination_runs = true;
        o->switch_slow = sd_event_source_disable_unref(o->switch_slow);
        if (o->domain->backend->migrate_destination_runs)
                o->domain->backend->migrate_destination_runs(o->domain->backend_data);
}

/* Nobody can say whether the destination runs the guest: it stays paused
 * here, for the admin or the next start of vmigrated to settle. */
static void outgoing_leave_unconfirmed(Outgoing *o, const char *why) {
        const char *name = outgoing_destination_name(o);
        g_autoptr(GError) error =
                g_error_new(VM_ERROR, VM_ERROR_MIGRATION_FAILED,
                            "Finish got no answer (%s) and whether %s runs the guest is not known (%s): "
                            "the guest stays paused here (StateReason migration-unconfirmed). If %s does "
                            "not run it, Resume it here; if it does, Destroy it here",
                            o->finish_lost, name, why, name);

        log_error("domain '%s': %s", domain_name(o->domain), error->message);
        outgoing_record_failure(o, error, SEEN_ON_SOURCE, "finish");
        o->keep_unconfirmed_record = true;
        if (o->domain->backend->migrate_leave_unconfirmed)
                o->domain->backend->migrate_leave_unconfirmed(o->domain->backend_data);
        outgoing_end(o);
}

static void on_arrival_answer(ArrivalAnswer answer, const char *why, void *userdata) {
        Outgoing *o = userdata;
        const char *name = outgoing_destination_name(o);
        g_autoptr(GError) error = NULL;
        g_autofree char *note = NULL;

        o->arrival = NULL;
        if (o->job->stats.postcopy_active) {
                /* The guest cannot run here again whatever the answer: the
                 * stream goes on to its end, and the job says where the
                 * guest is. */
                if (answer == ARRIVAL_RUNS) {
                        note = g_strdup_printf("Finish failed (%s), but %s runs the guest", o->finish_lost,
                                               name);
                        log_info("job %" G_GUINT64_FORMAT ": %s", o->job->id, note);
                        job_add_warning(o->job, note);
                        outgoing_destination_runs(o);
                } else {
                        if (answer == ARRIVAL_ABSENT)
                                error = g_error_new(VM_ERROR, VM_ERROR_POSTCOPY_FAILED,
                                                    "%s, and %s does not run the guest", o->finish_lost,
                                                    name);
                        else
                                error = g_error_new(VM_ERROR, VM_ERROR_POSTCOPY_FAILED,
                                                    "%s, and whether %s runs the guest is not known (%s)",
                                                    o->finish_lost, name, why ? why : "no answer");
                        outgoing_record_failure(o, error, SEEN_ON_DESTINATION, "finish");
                }
                outgoing_confirm(o);
                return;
        }
        switch (answer) {
        case ARRIVAL_RUNS:
                note = g_strdup_printf("Finish got no answer (%s), but %s runs the guest", o->finish_lost,
                                       name);
                log_info("job %" G_GUINT64_FORMAT ": %s", o->job->id, note);
                job_add_warning(o->job, note);
                outgoing_confirm(o);
                return;
        case ARRIVAL_ABSENT:
                error = g_error_new(VM_ERROR, VM_ERROR_MIGRATION_FAILED,
                                    "%s, and %s does not run the guest: it runs here again", o->finish_lost,
                                    name);
                outgoing_record_failure(o, error, SEEN_ON_DESTINATION, "finish");
                outgoing_confirm(o);
                return;
        case ARRIVAL_UNKNOWN:
                outgoing_leave_unconfirmed(o, why);
                return;
        }
        g_assert_not_reached();
}

/* Finish(success) was sent but its answer was lost with the connection:
 * the destination may run the guest, or may have discarded it. Resuming
 * here blindly could run it twice; ask. In post-copy the question is
 * another: a vmigrated restarted there, which no longer knows the
 * migration, runs the guest all the same (it can run nowhere else). */
static bool outgoing_finish_lost(Outgoing *o, const GError *error) {
        g_autoptr(GError) local = NULL;
        bool postcopy = o->job->stats.postcopy_active;

        if (o->failure || !o->perform_started || o->options->offline)
                return false;
        if (postcopy ? !g_error_matches(error, VM_ERROR, VM_ERROR_NO_JOB)
                     : !g_error_matches(error, VM_ERROR, VM_ERROR_DESTINATION_UNREACHABLE))
                return false;
        log_warning("job %" G_GUINT64_FORMAT ": %s: asking %s whether it runs the guest", o->job->id,
                    error->message, outgoing_destination_name(o));
        o->finish_lost = g_strdup(error->message);
        if (o->peer) {
                o->manager->peer_ops->close(o->peer);
                o->peer = NULL;
        }
        if (arrival_query_start(o->manager, o->destination, domain_uuid(o->domain), postcopy,
                                on_arrival_answer, o, &o->arrival, &local) < 0)
                on_arrival_answer(ARRIVAL_UNKNOWN, local->message, o);
        return true;
}

/* Post-copy: Finish got no answer (its connection broke, say with the
 * destination's vmigrated, or it timed out while the switch crawled over
 * a bad link). Nothing is decided by it: the QEMUs go on between
 * themselves, and the stream's end says whether the guest runs there
 * whole (Confirm waits for it). The job warns, rather than fail a
 * migration that may well complete. */
static bool outgoing_postcopy_goes_on(Outgoing *o, const GError *error) {
        g_autofree char *note = NULL;

        if (o->failure || !o->job->stats.postcopy_active ||
            !g_error_matches(error, VM_ERROR, VM_ERROR_DESTINATION_UNREACHABLE))
                return false;
        note = g_strdup_printf(
                "%s: the post-copy goes on without Finish's answer; its end says whether the guest "
                "runs on %s%s",
                error->message, outgoing_destination_name(o),
                o->abort_requested ? " (the AbortJob asked for is not done: without that answer a "
                                     "pause could lose the guest)"
                                   : "");
        o->abort_requested = false;
        job_add_warning(o->job, note);
        outgoing_confirm(o);
        return true;
}

static void on_finished(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) bad = NULL;

        o->switch_slow = sd_event_source_disable_unref(o->switch_slow);
        if (!error && cookie_check_size(reply, "Finish reply", &bad) < 0)
                error = bad;
        if (!error)
                cookie_add_warnings_to_job(o->job, reply);
        if (error && outgoing_finish_lost(o, error))
                return;
        if (error && outgoing_postcopy_goes_on(o, error))
                return;
        if (error)
                outgoing_record_failure(o, error, SEEN_ON_DESTINATION, "finish");
        else if (o->job->stats.postcopy_active) {
                outgoing_destination_runs(o);
                if (o->abort_requested)
                        outgoing_pause_postcopy(o);
        }
        outgoing_confirm(o);
}

/* From Finish(success) on, the destination may run the guest while it is
 * paused here: should this daemon die before Confirm, the next one must
 * ask there before it runs it again (recover.h). Without the record that
 * could not be known: then the migration fails here rather than risk the
 * guest running twice. A post-copy needs none: its guest already runs
 * there, and QEMU says so after a restart. */
static void outgoing_record_unconfirmed(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        if (o->failure || !o->perform_started || o->options->offline || o->job->stats.postcopy_active)
                return;
        if (unconfirmed_record_save(o->manager, domain_uuid(o->domain), o->destination->canonical, &error) <
            0)
                outgoing_record_failure(
                        o, error, SEEN_ON_SOURCE,
                        "recording where the guest goes, in case vmigrated stops before Confirm");
}

static int on_switch_slow(sd_event_source *s, uint64_t usec, void *userdata) {
        Outgoing *o = userdata;
        const char *name = outgoing_destination_name(o);
        g_autofree char *note = NULL;

        o->switch_slow = sd_event_source_disable_unref(o->switch_slow);
        if (o->destination_runs || o->failure)
                return 0;
        note = g_strdup_printf("%s has not run the guest %d s after the switch to post-copy: its QEMU is "
                               "still loading the guest's device state, over a slow or broken link? "
                               "Waiting, since stopping the migration now would lose the guest: it goes on "
                               "once the data gets across (an AbortJob pauses it then)",
                               name, (int) (POSTCOPY_SWITCH_SLOW_USEC / G_USEC_PER_SEC));
        job_add_warning(o->job, note);
        return 0;
}

/* Post-copy: until the destination runs the guest, nothing here can stop
 * the migration without losing the guest (a pause makes the destination's
 * QEMU, still loading the device state, quit; this one can then neither
 * cancel nor run it again), so the source waits for Finish's answer
 * however long the link takes, and the job says so when it takes long. */
static void outgoing_watch_switch(Outgoing *o) {
        if (!o->job->stats.postcopy_active || o->options->postcopy_resume || o->failure || o->switch_slow)
                return;
        if (sd_event_add_time_relative(o->manager->event, &o->switch_slow, CLOCK_MONOTONIC,
                                       POSTCOPY_SWITCH_SLOW_USEC, G_USEC_PER_SEC, on_switch_slow, o) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot arm a timer: the job will not say so "
                            "if the destination is slow to run the guest",
                            o->job->id);
}

/* Tells the destination how the stream went; it runs or discards the guest. */
static void outgoing_finish(Outgoing *o) {
        g_autoptr(GError) error = NULL;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        if (breakpoint_hold(o->manager->breakpoints, "source-before-finish", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_finish, o))
                return;

        /* In post-copy the phase stays postcopy until the last page is in. */
        if (o->job->phase != JOB_PHASE_POSTCOPY)
                job_set_phase(o->job, JOB_PHASE_FINISH);
        /* What the destination's backend needs before the guest runs there
         * (a UEFI guest's NVRAM as it left it here). */
        g_autoptr(GVariant) backend = NULL;
        if (!o->failure && o->perform_started && !o->options->offline &&
            o->domain->backend->migrate_finish_cookie) {
                g_auto(GVariantDict) part = G_VARIANT_DICT_INIT(NULL);
                if (o->domain->backend->migrate_finish_cookie(o->domain->backend_data, &part, &error) >= 0)
                        backend = g_variant_ref_sink(g_variant_dict_end(&part));
                else if (o->job->stats.postcopy_active) {
                        log_warning("job %" G_GUINT64_FORMAT ": %s", o->job->id, error->message);
                        job_add_warning(o->job, error->message);
                } else
                        outgoing_record_failure(o, error, SEEN_ON_SOURCE,
                                                "taking the guest's state for the destination");
                g_clear_error(&error);
        }
        outgoing_record_unconfirmed(o);
        cookie_add_host(&dict, o->manager);
        g_variant_dict_insert(&dict, "uuid", "s", domain_uuid(o->domain));
        g_variant_dict_insert(&dict, "success", "b", !o->failure);
        g_variant_dict_insert(&dict, "postcopy", "b", o->job->stats.postcopy_active);
        /* Post-copy: how long the guest has been paused here, for the
         * destination's figure of the pause (it adds its own part). A
         * resume has no switch-over: the guest ran there meanwhile. */
        if (o->job->stats.postcopy_active && !o->options->postcopy_resume &&
            o->domain->state == DOMAIN_STATE_PAUSED && o->domain->state_since_usec)
                g_variant_dict_insert(&dict, "paused-ms", "t",
                                      ((uint64_t) g_get_monotonic_time() - o->domain->state_since_usec) /
                                              1000);
        if (o->failure)
                g_variant_dict_insert(&dict, "error", "s", o->failure);
        else if (backend)
                g_variant_dict_insert_value(&dict, "backend", backend);
        g_variant_dict_insert_value(&dict, "stats", job_stats_to_variant(o->job));

        if (o->manager->peer_ops->call(o->peer, "Finish", g_variant_dict_end(&dict),
                                       PEER_FINISH_TIMEOUT_USEC, on_finished, o, &error) < 0) {
                on_finished(NULL, error, o);
                return;
        }
        outgoing_watch_switch(o);
}

/* Carries out what the convergence policy decided. */
static void outgoing_apply_policy(Outgoing *o, const ConvergenceAction *a) {
        const BackendOps *b = o->domain->backend;
        void *data = o->domain->backend_data;
        g_autoptr(GError) error = NULL;
        g_autofree char *action = policy_step_describe(&(PolicyStep) { .action = a->action, .value = a->value });
        int r = 0;

        job_policy_step(o->job, a->step, action, a->reason);
        switch (a->action) {
        case POLICY_ACTION_DOWNTIME:
                r = b->migrate_set_max_downtime(data, a->value, &error);
                break;
        case POLICY_ACTION_THROTTLE:
                if (a->downtime_ms)
                        r = b->migrate_set_max_downtime(data, a->downtime_ms, &error);
                if (r >= 0)
                        r = b->migrate_set_throttle(data, (unsigned) a->value, &error);
                break;
        case POLICY_ACTION_POSTCOPY:
                r = outgoing_send_postcopy(o, &error);
                break;
        case POLICY_ACTION_SUSPEND:
                /* A paused guest dirties nothing: the copy converges, at the
                 * price of a longer pause. */
                r = domain_suspend(o->domain, NULL, NULL, &error);
                break;
        case POLICY_ACTION_ABORT: {
                g_autoptr(GError) why = NULL;
                vm_error_set(&why, VM_ERROR_MIGRATION_FAILED,
                             "policy '%s' gave up: %s; the guest stays here. Try policy 'postcopy' or "
                             "'suspend-workload-if-needed', more bandwidth, or a longer max-downtime",
                             o->policy->name, a->reason);
                outgoing_record_failure(o, why, SEEN_ON_SOURCE, "pre-copy did not converge");
                r = b->migrate_cancel(data, &error);
                break;
        }
        default:
                g_assert_not_reached();
        }
        if (r < 0)
                log_warning("job %" G_GUINT64_FORMAT ": policy '%s': cannot %s: %s", o->job->id, o->policy->name,
                            action, error->message);
}

/* At each progress report: the policy's engine (convergence.c) says
 * whether pre-copy converges and what to do when it does not. */
static void outgoing_converge(Outgoing *o, const MigrationStats *stats) {
        ConvergenceAction a = { 0 };
        bool not_converging;
        int r;

        if (!o->convergence)
                return;
        if (!migrate_options_has(o->options, MIGRATE_OPTION_BANDWIDTH) && !stats->postcopy_active &&
            stats->data_processed > 0) {
                uint64_t now = (uint64_t) g_get_monotonic_time();
                if (o->link_first_usec == 0) {
                        o->link_first_usec = now;
                        o->link_first_bytes = stats->data_processed;
                }
                o->link_last_usec = now;
                o->link_last_bytes = stats->data_processed;
        }
        /* Sharing the link: the model counts on the share, not on the
         * last pass's throughput, which a new neighbour is about to cut. */
        MigrationStats seen = *stats;
        if (o->share && seen.bandwidth > o->share)
                seen.bandwidth = o->share;
        r = convergence_update(o->convergence, &seen, (uint64_t) g_get_monotonic_time(), &a, &not_converging);
        if (r > 0)
                outgoing_apply_policy(o, &a);
        if (stats->iteration != o->pass) {
                o->pass = stats->iteration;
                /* The model's inputs, pass by pass: what its unit tests replay. */
                log_debug("job %" G_GUINT64_FORMAT ": pass %" G_GUINT64_FORMAT ": remaining %" G_GUINT64_FORMAT
                          " dirty-rate %" G_GUINT64_FORMAT " bandwidth %" G_GUINT64_FORMAT
                          " expected-downtime %" G_GUINT64_FORMAT " ms",
                          o->job->id, stats->iteration, stats->data_remaining, stats->dirty_rate, stats->bandwidth,
                          stats->expected_downtime_ms);
                if (!not_converging)
                        job_set_not_converging(o->job, false, NULL);
                else {
                        g_autofree char *detail = g_strdup_printf(
                                "pre-copy is not converging: %" G_GUINT64_FORMAT
                                " MiB still to send after pass %" G_GUINT64_FORMAT ", the guest dirties %" G_GUINT64_FORMAT
                                " MiB/s and %" G_GUINT64_FORMAT " MiB/s get across; policy '%s' is at %s",
                                stats->data_remaining >> 20, stats->iteration, stats->dirty_rate >> 20,
                                stats->bandwidth >> 20, o->policy->name,
                                o->job->policy_action ? o->job->policy_action : "its start");
                        job_set_not_converging(o->job, true, detail);
                }
        }
        convergence_action_clear(&a);
}

/* Perform began: the policy takes over (none for postcopy-resume). */
static void outgoing_start_policy(Outgoing *o) {
        const BackendOps *b = o->domain->backend;
        bool throttle = o->options->auto_converge && b->migrate_set_throttle;
        /* timeout-action=postcopy: the caller said when to switch. */
        bool postcopy = o->options->postcopy && !(migrate_options_has(o->options, MIGRATE_OPTION_TIMEOUT) &&
                                                   o->options->timeout_action == MIGRATE_TIMEOUT_ACTION_POSTCOPY);
        g_autoptr(GError) error = NULL;

        if (!o->policy)
                return;
        o->convergence = convergence_new(o->policy, o->domain->def->memory_bytes, o->caller_downtime, postcopy,
                                         throttle, (uint64_t) g_get_monotonic_time());
        job_set_policy(o->job, o->policy->name);
        /* Its throttle steps say when and how hard: until then, none. */
        if (throttle && policy_has_action(o->policy, POLICY_ACTION_THROTTLE) &&
            b->migrate_set_throttle(o->domain->backend_data, 0, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot hold the throttle back: %s", o->job->id,
                            error->message);
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
                r = outgoing_send_postcopy(o, &error);
                break;
        case MIGRATE_TIMEOUT_ACTION_SUSPEND:
                /* A paused guest dirties nothing: the copy converges, at the
                 * price of a longer pause. */
                r = domain_suspend(o->domain, NULL, NULL, &error);
                break;
        default:
                o->cancel_reason = "cancelled by timeout-action";
                r = migration_cancel(o->job, &error);
                break;
        }
        if (r < 0)
                log_warning("job %" G_GUINT64_FORMAT ": timeout action failed: %s", o->job->id, error->message);
        return 0;
}

/* Held at a stopping point of the stream: deliver what came meanwhile. */
static void outgoing_resume_stream(Outgoing *o) {
        o->tunnel_end_wait = sd_event_source_disable_unref(o->tunnel_end_wait);
        if (!o->performed_deferred)
                return;
        g_autoptr(GError) error = g_steal_pointer(&o->performed_error);
        o->performed_deferred = false;
        on_performed(o->performed_r, error, o);
}

/* Test builds: the stream's stopping points. True when held. */
static bool outgoing_stream_breakpoints(Outgoing *o, const MigrationStats *stats) {
        Breakpoints *bp = o->manager->breakpoints;
        const char *uuid = domain_uuid(o->domain);

        if (!bp || stats->postcopy_active)
                return false;
        if (!o->seen_first_pass) {
                o->seen_first_pass = true;
                return breakpoint_hold(bp, "source-perform-first-pass", uuid,
                                       (BreakpointResume) outgoing_resume_stream, o);
        }
        if (!o->seen_mid_stream && stats->data_total > 0 && stats->data_processed * 2 >= stats->data_total) {
                o->seen_mid_stream = true;
                return breakpoint_hold(bp, "source-perform-mid-stream", uuid,
                                       (BreakpointResume) outgoing_resume_stream, o);
        }
        return false;
}

static void on_progress(const MigrationStats *stats, void *userdata) {
        Outgoing *o = userdata;

        job_update_stats(o->job, stats);
        if (breakpoint_holding(o->manager->breakpoints, o) || outgoing_stream_breakpoints(o, stats))
                return; /* held: no policy step either */
        outgoing_converge(o, stats);
        if (stats->postcopy_active)
                outgoing_set_sharing(o, false); /* post-copy has its own bandwidth (max-postcopy-bandwidth) */
        if (stats->postcopy_active && o->job->phase == JOB_PHASE_PERFORM) {
                log_info("job %" G_GUINT64_FORMAT ": switched to post-copy", o->job->id);
                job_set_phase(o->job, JOB_PHASE_POSTCOPY);
                (void) breakpoint_hold(o->manager->breakpoints, "source-after-postcopy-switch",
                                       domain_uuid(o->domain), (BreakpointResume) outgoing_resume_stream, o);
        }
}

/* The stream's end, kept to be delivered later (outgoing_resume_stream). */
static void outgoing_defer_stream_end(Outgoing *o, int r, const GError *error) {
        o->performed_deferred = true;
        o->performed_r = r;
        o->performed_error = error ? g_error_copy(error) : NULL;
}

static int on_tunnel_end_wait_over(sd_event_source *s, uint64_t usec, void *userdata) {
        outgoing_resume_stream(userdata);
        return 0;
}

/* A pre-copy stream through tunnels failed while a carrier still runs
 * (all were opened: Perform runs only then).
 * When the far end of a tunnel dies, ssh closes the hypervisor's socket
 * before it exits itself: the hypervisor's "broken pipe" comes first, and
 * the carrier's words, the cause, a moment later. True when waiting. */
static bool outgoing_wait_tunnel_end(Outgoing *o, int r, const GError *error) {
        bool running = false;

        if (r >= 0 || !o->tunnels || o->cancelled || o->failure || o->job->stats.postcopy_active ||
            o->tunnel_end_wait)
                return false;
        for (unsigned i = 0; i < o->tunnels->len; i++) {
                OutgoingTunnel *t = o->tunnels->pdata[i];
                running = running || !t->ended;
        }
        if (!running ||
            sd_event_add_time_relative(o->manager->event, &o->tunnel_end_wait, CLOCK_MONOTONIC,
                                       TUNNEL_END_WAIT_USEC, 10000, on_tunnel_end_wait_over, o) < 0)
                return false;
        log_info("job %" G_GUINT64_FORMAT
                 ": the stream failed (%s) while a tunnel's ssh runs: waiting for its end",
                 o->job->id, error ? error->message : g_strerror(-r));
        outgoing_defer_stream_end(o, r, error);
        return true;
}

static void on_performed(int r, const GError *error, void *userdata) {
        Outgoing *o = userdata;

        if (breakpoint_holding(o->manager->breakpoints, o)) {
                outgoing_defer_stream_end(o, r, error);
                return;
        }
        if (outgoing_wait_tunnel_end(o, r, error))
                return;

        /* In post-copy the stream goes on until Confirm has the last page. */
        if (r < 0 || !o->job->stats.postcopy_active)
                o->stream_ended = true;
        outgoing_set_sharing(o, false);
        /* Pre-copy's last pass is across: the guest was paused for the
         * switch-over up to now (post-copy's switch was sampled as such). */
        if (r >= 0 && !o->job->stats.postcopy_active)
                job_history_add(o->job, JOB_EVENT_SWITCHOVER, NULL, NULL);
        if (r < 0)
                outgoing_record_failure(o, error, SEEN_ON_SOURCE,
                                        o->cancelled ? outgoing_cancel_context(o) : "sending the guest");
        else if (o->cancelled) {
                /* The cancel lost the race with the last pass: the whole
                 * guest is across, and the migration goes on to its end. */
                g_autofree char *note = g_strdup_printf("the cancel (%s) came too late: the guest's state "
                                                        "was already copied, so the migration went on",
                                                        outgoing_cancel_context(o));
                log_info("job %" G_GUINT64_FORMAT ": %s", o->job->id, note);
                job_add_warning(o->job, note);
                o->cancelled = false;
        }
        outgoing_finish(o);
}

/* data_fd: the tunnel (option 'tunnelled'), else -1; tunnel_fds the
 * backend's other tunnels by name, or NULL; the backend keeps duplicates. */
static void outgoing_perform(Outgoing *o, int data_fd, GHashTable *tunnel_fds) {
        g_autoptr(GError) error = NULL;

        job_set_phase(o->job, JOB_PHASE_PERFORM);
        if (!o->options->offline)
                outgoing_set_sharing(o, true);
        MigrationTls tls = { .dir = o->manager->tls_dir };
        MigrationTarget target = {
                .data_uri = data_fd >= 0 ? NULL : o->data_uri,
                .data_fd = data_fd,
                .tunnel_fds = tunnel_fds,
                .backend_reply = o->backend_reply,
        };
        if (o->domain->backend->migrate_perform(o->domain->backend_data, &target, o->options,
                                                o->options->tls ? &tls : NULL, on_progress, on_performed, o,
                                                &error) < 0) {
                on_performed(-EIO, error, o);
                return;
        }
        o->perform_started = true;
        outgoing_start_policy(o);
        if (o->postcopy_requested)
                outgoing_switch_postcopy(o);
        if (migrate_options_has(o->options, MIGRATE_OPTION_TIMEOUT) &&
            sd_event_add_time_relative(o->manager->event, &o->timeout, CLOCK_MONOTONIC,
                                       o->options->timeout * G_USEC_PER_SEC, 1000, on_migration_timeout, o) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot arm the migration timeout", o->job->id);
}

/* The carrier of the tunnel (ssh) ended. While the stream runs that is a
 * failure, with the carrier's words. In pre-copy: record them and stop the
 * stream at once rather than wait for the hypervisor to notice. In
 * post-copy nothing is stopped (the hypervisor pauses it on both hosts):
 * the words go with the failure it reports. */
static void on_tunnel_ended(const GError *error, void *userdata) {
        OutgoingTunnel *t = userdata;
        Outgoing *o = t->o;
        g_autoptr(GError) local = NULL;

        t->ended = true;
        if (o->tunnel_end_wait) {
                /* The stream failed a moment ago: this is why. */
                if (error)
                        outgoing_record_failure(o, error, SEEN_ON_SOURCE, "the tunnel to the destination");
                outgoing_resume_stream(o);
                return;
        }
        if (!error || o->stream_ended)
                return;
        if (o->job->stats.postcopy_active) {
                g_free(o->tunnel_failure);
                o->tunnel_failure = g_strdup(error->message);
                return;
        }
        outgoing_record_failure(o, error, SEEN_ON_SOURCE, "the tunnel to the destination");
        if (o->job->phase == JOB_PHASE_PERFORM &&
            o->domain->backend->migrate_cancel(o->domain->backend_data, &local) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": cannot stop the stream: %s", o->job->id, local->message);
}

/* Every tunnel is open (or failed): Perform, with the stream's and the
 * others by name. */
static void outgoing_tunnels_opened(Outgoing *o) {
        g_autoptr(GHashTable) fds = g_hash_table_new(g_str_hash, g_str_equal);
        int stream_fd = -1;

        if (o->tunnel_open_failed) {
                outgoing_finish(o); /* the destination discards its guest */
                return;
        }
        if (outgoing_stop_if_cancelled(o))
                return;
        for (unsigned i = 0; i < o->tunnels->len; i++) {
                OutgoingTunnel *t = o->tunnels->pdata[i];
                if (g_str_equal(t->name, "stream"))
                        stream_fd = t->fd;
                else
                        g_hash_table_insert(fds, t->name, GINT_TO_POINTER(t->fd));
        }
        outgoing_perform(o, stream_fd, g_hash_table_size(fds) > 0 ? fds : NULL);
        /* The backend has its duplicates; each tunnel stays known, as the
         * userdata of its carrier's end. */
        for (unsigned i = 0; i < o->tunnels->len; i++) {
                OutgoingTunnel *t = o->tunnels->pdata[i];
                if (t->fd >= 0)
                        close(t->fd);
                t->fd = -1;
        }
}

static void on_tunnel_opened(int fd, const GError *error, void *userdata) {
        OutgoingTunnel *t = userdata;
        Outgoing *o = t->o;

        if (error) {
                g_autofree char *what = g_strdup_printf("opening the tunnel%s%s to the destination",
                                                        g_str_equal(t->name, "stream") ? "" : " for ",
                                                        g_str_equal(t->name, "stream") ? "" : t->name);
                outgoing_record_failure(o, error, SEEN_ON_SOURCE, what);
                o->tunnel_open_failed = true;
        } else
                t->fd = fd;
        if (--o->tunnels_pending == 0)
                outgoing_tunnels_opened(o);
}

static void outgoing_open_tunnel(Outgoing *o) {
        job_set_phase(o->job, JOB_PHASE_PERFORM);
        /* One more until every tunnel is asked for: a failure that calls
         * back at once must not end o under this loop. */
        o->tunnels_pending = o->tunnels->len + 1;
        for (unsigned i = 0; i < o->tunnels->len; i++) {
                OutgoingTunnel *t = o->tunnels->pdata[i];
                g_autoptr(GError) error = NULL;

                if (o->manager->peer_ops->open_tunnel(o->peer, domain_uuid(o->domain), t->token, on_tunnel_opened,
                                                      on_tunnel_ended, t, &error) < 0)
                        on_tunnel_opened(-1, error, t);
        }
        if (--o->tunnels_pending == 0)
                outgoing_tunnels_opened(o);
}

/* Option 'tunnelled': the stream's token and the backend's others
 * ("tunnel-tokens" a{ss}, name -> token), each to be opened. */
static int outgoing_read_tunnel_tokens(Outgoing *o, GVariant *reply, GError **error) {
        g_autoptr(GVariant) tokens = g_variant_lookup_value(reply, "tunnel-tokens", NULL);
        GVariantIter iter;
        const char *name, *token;

        o->tunnels = g_ptr_array_new_with_free_func((GDestroyNotify) outgoing_tunnel_free);
        (void) outgoing_tunnel_new(o, "stream", o->tunnel_token);
        if (!tokens)
                return 0;
        if (!g_variant_is_of_type(tokens, G_VARIANT_TYPE("a{ss}")) ||
            g_variant_n_children(tokens) > MIGRATION_TUNNELS_MAX)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "Prepare reply: 'tunnel-tokens' is not an a{ss} of at most %d tunnels",
                                    MIGRATION_TUNNELS_MAX);
        g_variant_iter_init(&iter, tokens);
        while (g_variant_iter_next(&iter, "{&s&s}", &name, &token)) {
                if (!*name || strlen(name) > 64 || text_has_control(name) || g_str_equal(name, "stream") ||
                    !*token || strlen(token) > 64 || text_has_control(token))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "Prepare reply: a malformed entry in 'tunnel-tokens'");
                (void) outgoing_tunnel_new(o, name, token);
        }
        return 0;
}

/* Where the stream goes: Prepare's "data-uri", or for a tunnelled stream
 * the token that opens the tunnel. */
/* The destination's name for errors, from its Hostname at connect and
 * from Prepare's reply: optional, a short printable string. */
static void outgoing_set_remote_hostname(Outgoing *o, const char *name) {
        if (!name || !*name || strlen(name) > HOST_NAME_MAX)
                return;
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p <= 0x20 || *p == 0x7f)
                        return;
        g_free(o->remote_hostname);
        o->remote_hostname = g_strdup(name);
}

static void outgoing_read_remote_hostname(Outgoing *o, GVariant *reply) {
        const char *name = NULL;

        if (g_variant_lookup(reply, "hostname", "&s", &name))
                outgoing_set_remote_hostname(o, name);
}

static int outgoing_read_prepared(Outgoing *o, GVariant *reply, GError **error) {
        gboolean tls = false;
        const char *s;

        if (cookie_check_size(reply, "Prepare reply", error) < 0)
                return -EPROTO;
        (void) g_variant_lookup(reply, "tls", "b", &tls);
        if (tls && !o->options->tls) {
                /* 'tls' left out, and the destination found both hosts able. */
                if (migrate_options_has(o->options, MIGRATE_OPTION_TLS) || o->options->tunnelled)
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "Prepare reply: the destination chose TLS against the options");
                o->options->tls = true;
                migrate_options_mark(o->options, MIGRATE_OPTION_TLS);
                job_set_encryption(o->job, JOB_ENCRYPTION_TLS);
                log_info("job %" G_GUINT64_FORMAT ": TLS, as both hosts can (option 'tls' left out)", o->job->id);
        } else if (!tls && o->options->tls)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "Prepare reply: the destination does not use the TLS that was asked for");
        else if (!tls && !o->options->tunnelled && !o->options->offline && o->manager->require_encryption)
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                    "this host does not let guest memory cross the network unencrypted "
                                    "(RequireEncryption=, vmigrated --require-encryption), and %s cannot use TLS "
                                    "with it (DryRun "
                                    "says why): migrate with option 'tls' or 'tunnelled'",
                                    o->destination->canonical);
        if (!o->options->offline) {
                s = cookie_string(reply, o->options->tunnelled ? "tunnel-token" : "data-uri", 1024, "Prepare reply",
                                  error);
                if (!s)
                        return -EPROTO;
                if (o->options->tunnelled)
                        o->tunnel_token = g_strdup(s);
                else
                        o->data_uri = g_strdup(s);
        }
        if (o->options->tunnelled && !o->options->offline && outgoing_read_tunnel_tokens(o, reply, error) < 0)
                return -EPROTO;
        o->backend_reply = g_variant_lookup_value(reply, "backend", G_VARIANT_TYPE_VARDICT);
        cookie_add_warnings_to_job(o->job, reply);
        outgoing_read_remote_hostname(o, reply);
        return 0;
}

/* Prepared, and Migrate answered: the stream (or, offline, Finish). */
static void outgoing_stream(Outgoing *o) {
        if (breakpoint_hold(o->manager->breakpoints, "source-after-prepare", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_stream, o))
                return;
        if (outgoing_stop_if_cancelled(o))
                return;
        if (o->options->offline)
                outgoing_finish(o); /* no stream: the definition went with Prepare */
        else if (o->options->tunnelled)
                outgoing_open_tunnel(o);
        else
                outgoing_perform(o, -1, NULL);
}

static void on_prepared(GVariant *reply, const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) bad = NULL;

        if (!error)
                (void) outgoing_read_prepared(o, reply, &bad);
        if (!error && bad)
                error = bad;
        if (!error && o->manager->shutting_down) {
                /* Prepared, but we are stopping: undo it on the destination. */
                vm_error_set(&bad, VM_ERROR_MIGRATION_FAILED, "vmigrated on the source is stopping");
                outgoing_record_failure(o, bad, SEEN_ON_SOURCE, "before copying");
                o->reported_start = true;
                if (o->started)
                        o->started(NULL, bad, o->userdata);
                outgoing_finish(o);
                return;
        }
        if (error) {
                outgoing_record_failure(o, error, SEEN_ON_DESTINATION, "prepare");
                outgoing_end(o); /* nothing was started anywhere */
                return;
        }

        /* Everything that can be checked before copying was: answer Migrate. */
        o->reported_start = true;
        if (o->started)
                o->started(o->job, NULL, o->userdata);
        outgoing_stream(o);
}

static void outgoing_prepare(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        if (breakpoint_hold(o->manager->breakpoints, "source-before-prepare", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_prepare, o))
                return;
        job_set_phase(o->job, JOB_PHASE_PREPARE);
        if (o->manager->peer_ops->call(o->peer, "Prepare", o->cookie, PEER_PREPARE_TIMEOUT_USEC, on_prepared,
                                       o, &error) < 0)
                on_prepared(NULL, error, o);
}

static void on_connected(Peer *peer, const char *remote_host_uuid, const char *remote_hostname,
                         const GError *error, void *userdata) {
        Outgoing *o = userdata;
        g_autoptr(GError) local = NULL;

        if (error) {
                outgoing_record_failure(o, error, SEEN_ON_SOURCE, "connecting to the destination");
                outgoing_end(o);
                return;
        }
        o->peer = peer;
        o->remote_host_uuid = g_strdup(remote_host_uuid);
        outgoing_set_remote_hostname(o, remote_hostname);
        if (g_strcmp0(remote_host_uuid, o->manager->host_uuid) == 0) {
                vm_error_set(&local, VM_ERROR_INVALID_DESTINATION,
                             "%s is this host (same host UUID %s): migrate to another host",
                             o->destination->canonical, remote_host_uuid);
                outgoing_record_failure(o, local, SEEN_ON_SOURCE, "checking the destination");
                outgoing_end(o);
                return;
        }

        outgoing_prepare(o);
}

/* Released at source-after-begin: reach the destination. */
static void outgoing_connect(Outgoing *o) {
        g_autoptr(GError) error = NULL;

        if (o->manager->peer_ops->connect(o->manager->peer_ctx, o->destination, on_connected, o, &error) <
            0) {
                outgoing_record_failure(o, error, SEEN_ON_SOURCE, "connecting to the destination");
                outgoing_end(o);
        }
}

/* Begin: everything checkable here, through the same checks a dry run
 * reports (preflight.c); the first error refuses the migration. */
static int migration_begin(Domain *d, MigrateOptions *options, Policy **ret_policy, GError **error) {
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
        r = preflight_policy(d, options, ret_policy, error);
        if (r < 0)
                return r;
        preflight_source(d, options, findings);
        r = findings_to_error(findings, error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < findings_count(findings); i++) {
                const Finding *f = findings_get(findings, i);
                if (f->severity == FINDING_WARNING)
                        log_warning("domain '%s': %s", domain_name(d), f->message);
        }
        support = domain_migrate_option_support(d, &n_support);
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
        g_autoptr(Policy) policy = NULL;
        uint64_t caller_downtime = migrate_options_has(req->options, MIGRATE_OPTION_MAX_DOWNTIME)
                                           ? req->options->max_downtime
                                           : 0;
        r = migration_begin(d, req->options, &policy, error);
        if (r < 0)
                return r;

        o = g_new0(Outgoing, 1);
        o->manager = m;
        o->domain = domain_ref(d);
        o->destination = g_steal_pointer(&req->destination);
        o->options = g_steal_pointer(&req->options);
        o->policy = g_steal_pointer(&policy);
        o->caller_downtime = caller_downtime;
        o->caller_bandwidth = migrate_options_has(o->options, MIGRATE_OPTION_BANDWIDTH) ? o->options->bandwidth : 0;
        o->started = started;
        o->ended = ended;
        o->userdata = userdata;
        r = cookie_build_prepare(m, d, o->options, &o->cookie, error);
        if (r < 0) {
                outgoing_free(o);
                return r;
        }

        o->job = job_ref(job_new(m, JOB_MIGRATION_OUT, d, o->destination->canonical));
        job_set_encryption(o->job, job_encryption_for(o->options->tls, o->options->tunnelled));
        o->job->migration = o;
        if (breakpoint_hold(m->breakpoints, "source-after-begin", domain_uuid(d),
                            (BreakpointResume) outgoing_connect, o))
                return 0;
        r = m->peer_ops->connect(m->peer_ctx, o->destination, on_connected, o, error);
        if (r < 0) {
                outgoing_record_failure(o, *error, SEEN_ON_SOURCE, "connecting to the destination");
                job_end(o->job, JOB_PHASE_FAILED, o->failure);
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
        if (job->phase != JOB_PHASE_PERFORM || !o->perform_started) {
                /* Not streaming yet (or its tunnels are still opening):
                 * remember it; Perform asks as soon as it can. */
                o->postcopy_requested = true;
                return 0;
        }
        if (breakpoint_hold(o->manager->breakpoints, "source-before-postcopy-switch", domain_uuid(o->domain),
                            (BreakpointResume) outgoing_switch_postcopy, o))
                return 0;
        return outgoing_send_postcopy(o, error);
}

int migration_cancel(Job *job, GError **error) {
        Outgoing *o = job->migration;

        if (job->kind != JOB_MIGRATION_OUT || !o)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "job %" G_GUINT64_FORMAT " cannot be cancelled here: cancel a migration on its "
                                    "source host",
                                    job->id);
        /* Once the switch to post-copy was asked for, a cancel races it:
         * QEMU may be in post-copy already, where cancelling would lose
         * the guest. The abort is then a pause, as in post-copy. */
        if (job->phase == JOB_PHASE_POSTCOPY || (job->phase == JOB_PHASE_PERFORM && o->postcopy_sent)) {
                /* Cancelling is impossible: the guest already runs on the
                 * destination with part of its memory. Pausing is what can be
                 * done, and resumed later with postcopy-resume. */
                if (!o->domain->backend->migrate_pause)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "job %" G_GUINT64_FORMAT " is in post-copy and cannot be cancelled",
                                            job->id);
                if (o->destination_runs)
                        return outgoing_pause_postcopy_now(o, error);
                /* Not yet: the destination may still be loading the guest's
                 * device state, and QEMU there quits if the stream breaks
                 * then. Remembered: paused once Finish says it runs. */
                log_info("job %" G_GUINT64_FORMAT
                         ": AbortJob while switching to post-copy: it is paused as soon "
                         "as the destination runs the guest",
                         job->id);
                o->abort_requested = true;
                return 0;
        }
        if (job->phase != JOB_PHASE_PERFORM)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "job %" G_GUINT64_FORMAT " is in phase %s; only a migration that is copying "
                                    "(phase perform) can be cancelled",
                                    job->id, job_phase_to_string(job->phase));
        if ((o->stream_ended && !o->failure) || (o->performed_deferred && o->performed_r >= 0))
                /* Still phase perform, but the copy is complete: what is
                 * left is telling the destination to run it. */
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "job %" G_GUINT64_FORMAT
                                    " has copied the guest already: too late to cancel, "
                                    "it is about to run on %s",
                                    job->id, outgoing_destination_name(o));
        o->cancelled = true;
        if (!o->perform_started)
                return 0; /* its tunnels are still opening: it stops once they are */
        return o->domain->backend->migrate_cancel(o->domain->backend_data, error);
}

bool migration_cancel_before_stream(Job *job) {
        Outgoing *o = job->migration;

        /* Prepare still under way: its answer sees that we are stopping. */
        if (job->kind != JOB_MIGRATION_OUT || !o || !o->reported_start || o->perform_started ||
            job->phase != JOB_PHASE_PREPARE)
                return false;
        log_info("job %" G_GUINT64_FORMAT ": vmigrated is stopping: the stream will not start", job->id);
        o->cancelled = true;
        return true;
}

void migration_abandon_postcopy(Job *job) {
        Outgoing *o = job->migration;
        g_autofree char *host = manager_get_hostname();
        g_autofree char *why = g_strdup_printf(
                "postcopy phase, on %s (%s): vmigrated stopped during post-copy: the post-copy goes "
                "on without this job (nothing was stopped); the next vmigrated on %s takes it up, and "
                "the domain's State tells how it ends",
                host, "source", host);

        g_assert(job->kind == JOB_MIGRATION_OUT && o);
        log_info("job %" G_GUINT64_FORMAT ": %s", job->id, why);
        job_end(job, JOB_PHASE_FAILED, why);
        /* A Migrate with wait=true gets its answer now; the rest of o stays
         * until the backend is done with it or the daemon exits. */
        if (o->ended) {
                g_autoptr(GError) error = g_error_new_literal(VM_ERROR, VM_ERROR_POSTCOPY_FAILED, why);
                MigrationEnded ended = o->ended;
                o->ended = NULL;
                ended(job, error, o->userdata);
        }
}

bool migration_abandon_finish(Job *job) {
        Outgoing *o = job->kind == JOB_MIGRATION_OUT ? job->migration : NULL;

        if (!o || !o->arrival)
                return false;
        g_clear_pointer(&o->arrival, arrival_query_cancel);
        outgoing_leave_unconfirmed(o, "vmigrated stopped before it could ask; the next vmigrated asks");
        return true;
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
        int r;

        if (!o)
                return -ESRCH;
        ops = o->domain->backend;
        if (!ops->migrate_set_max_bandwidth)
                return vm_error_set(error, VM_ERROR_NO_JOB, "the '%s' backend cannot change the bandwidth of a "
                                    "running migration", ops->name);
        r = ops->migrate_set_max_bandwidth(o->domain->backend_data, bytes_per_second, postcopy, error);
        if (r < 0 || postcopy)
                return r;
        /* The caller's cap bounds its share from now on. */
        o->caller_bandwidth = bytes_per_second;
        if (o->sharing) {
                o->share = 0;
                migration_share_link(o->manager);
        }
        return 0;
}
