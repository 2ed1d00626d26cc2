/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Settling, after a restart, the migrations that were copied but not
 * confirmed (recover.h).
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cookie.h"
#include "domain.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "recover.h"
#include "uri.h"

/* How often, and how long, the destination is asked before the guest is
 * left to the admin: long enough for a destination still finishing (its
 * Finish takes seconds) or restarting. */
#define RECOVER_RETRY_USEC (2 * G_USEC_PER_SEC)
#define RECOVER_ATTEMPTS 30
#define RECOVER_CALL_TIMEOUT_USEC (10 * G_USEC_PER_SEC)
#define RECORD_MAX_BYTES 4096

#define UNCONFIRMED_REASON "migration-unconfirmed"

static char *record_path(Manager *m, const char *uuid) {
        return g_build_filename(m->runtime_dir, "unconfirmed", uuid, NULL);
}

int unconfirmed_record_save(Manager *m, const char *uuid, const char *destination, GError **error) {
        g_autofree char *dir = NULL, *path = NULL, *text = NULL;

        if (!m->runtime_dir)
                return 0;
        dir = g_build_filename(m->runtime_dir, "unconfirmed", NULL);
        if (g_mkdir_with_parents(dir, 0700) < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror(errno));
        path = record_path(m, uuid);
        text = g_strdup_printf("%s\n", destination);
        if (!g_file_set_contents(path, text, -1, error))
                return -EIO;
        return 0;
}

void unconfirmed_record_remove(Manager *m, const char *uuid) {
        g_autofree char *path = NULL, *dir = NULL;

        if (!m->runtime_dir)
                return;
        path = record_path(m, uuid);
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning("cannot remove %s: %s", path, g_strerror(errno));
        /* The last record gone, nothing of it is left (fails while other
         * migrations have theirs). */
        dir = g_build_filename(m->runtime_dir, "unconfirmed", NULL);
        (void) rmdir(dir);
}

/* The destination a record names: NULL (and *error) when there is no
 * record, or when it is damaged (then it names nothing to trust). */
static Destination *record_load(Manager *m, const char *uuid, GError **error) {
        g_autofree char *path = record_path(m, uuid);
        g_autofree char *text = NULL;
        Destination *destination = NULL;
        size_t len;

        if (!g_file_get_contents(path, &text, &len, error))
                return NULL;
        if (len > RECORD_MAX_BYTES || strlen(text) != len) {
                vm_error_set(error, VM_ERROR_FAILED, "%s is damaged", path);
                return NULL;
        }
        if (destination_parse(g_strstrip(text), &destination, error) < 0) {
                g_prefix_error(error, "%s: ", path);
                return NULL;
        }
        return destination;
}

/* ---- asking the destination ---- */

struct ArrivalQuery {
        Manager *manager;
        Destination *destination;
        char *uuid;
        bool switched;
        ArrivalDone done; /* NULL once cancelled */
        void *userdata;
        Peer *peer;
        sd_event_source *retry;
        unsigned attempts;
        /* A connect or a call is under way: its callback comes, and frees
         * what was cancelled meanwhile (or the exit does). */
        bool busy;
};

static void arrival_query_free(ArrivalQuery *q) {
        if (q->manager->arrival_queries)
                g_ptr_array_remove(q->manager->arrival_queries, q);
        if (q->peer)
                q->manager->peer_ops->close(q->peer);
        sd_event_source_disable_unref(q->retry);
        destination_free(q->destination);
        g_free(q->uuid);
        g_free(q);
}

void arrival_query_cancel(ArrivalQuery *q) {
        if (!q)
                return;
        q->done = NULL;
        if (!q->busy)
                arrival_query_free(q);
}

static void arrival_query_answer(ArrivalQuery *q, ArrivalAnswer answer, const char *why) {
        ArrivalDone done = q->done;
        void *userdata = q->userdata;

        arrival_query_free(q);
        done(answer, why, userdata);
}

/* A callback came: false when nobody waits for it any more. */
static bool arrival_query_back(ArrivalQuery *q) {
        q->busy = false;
        if (q->done)
                return true;
        arrival_query_free(q);
        return false;
}

static void arrival_query_ask(ArrivalQuery *q);

static int on_arrival_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        ArrivalQuery *q = userdata;

        q->retry = sd_event_source_disable_unref(q->retry);
        arrival_query_ask(q);
        return 0;
}

/* The destination could not say (unreachable, or the guest still
 * arriving there): again in a moment, or give up. */
static void arrival_query_retry(ArrivalQuery *q, const char *why) {
        if (q->peer) {
                q->manager->peer_ops->close(q->peer);
                q->peer = NULL;
        }
        if (++q->attempts < RECOVER_ATTEMPTS &&
            sd_event_add_time_relative(q->manager->event, &q->retry, CLOCK_MONOTONIC, RECOVER_RETRY_USEC, 0,
                                       on_arrival_retry, q) >= 0)
                return;
        g_autofree char *last = g_strdup(why);
        arrival_query_answer(q, ARRIVAL_UNKNOWN, last);
}

const char *arrival_reply_value(GVariant *reply, GError **error) {
        if (cookie_check_size(reply, "Arrival reply", error) < 0)
                return NULL;
        return cookie_string(reply, "arrival", 32, "Arrival reply", error);
}

static void on_arrival(GVariant *reply, const GError *error, void *userdata) {
        ArrivalQuery *q = userdata;
        g_autoptr(GError) bad = NULL;
        const char *arrival = NULL;

        if (!arrival_query_back(q))
                return;
        if (!error && !(arrival = arrival_reply_value(reply, &bad)))
                error = bad;
        if (error) {
                arrival_query_retry(q, error->message);
                return;
        }
        if (g_str_equal(arrival, "runs"))
                arrival_query_answer(q, ARRIVAL_RUNS, NULL);
        else if (g_str_equal(arrival, "absent"))
                arrival_query_answer(q, ARRIVAL_ABSENT, NULL);
        else {
                g_autofree char *why = g_strdup_printf(
                        "%s says the guest is %s", q->destination->canonical,
                        g_str_equal(arrival, "arriving") ? "still arriving" : "in no known state");
                arrival_query_retry(q, why);
        }
}

static void on_arrival_connected(Peer *peer, const char *remote_host_uuid, const char *remote_hostname,
                                 const GError *error, void *userdata) {
        ArrivalQuery *q = userdata;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        g_autoptr(GError) local = NULL;

        q->peer = peer;
        if (!arrival_query_back(q))
                return;
        if (error) {
                arrival_query_retry(q, error->message);
                return;
        }
        cookie_add_host(&dict, q->manager);
        g_variant_dict_insert(&dict, "uuid", "s", q->uuid);
        g_variant_dict_insert(&dict, "switched", "b", q->switched);
        q->busy = true;
        if (q->manager->peer_ops->call(peer, "Arrival", g_variant_dict_end(&dict), RECOVER_CALL_TIMEOUT_USEC,
                                       on_arrival, q, &local) < 0) {
                q->busy = false;
                arrival_query_retry(q, local->message);
        }
}

static void arrival_query_ask(ArrivalQuery *q) {
        g_autoptr(GError) error = NULL;

        q->busy = true;
        if (q->manager->peer_ops->connect(q->manager->peer_ctx, q->destination, on_arrival_connected, q,
                                          &error) < 0) {
                q->busy = false;
                arrival_query_retry(q, error->message);
        }
}

int arrival_query_start(Manager *m, const Destination *destination, const char *uuid, bool switched,
                        ArrivalDone done, void *userdata, ArrivalQuery **ret, GError **error) {
        g_autoptr(Destination) copy = NULL;
        ArrivalQuery *q;

        assert(m->peer_ops && done);
        if (destination_parse(destination->canonical, &copy, error) < 0)
                return -EINVAL;
        q = g_new0(ArrivalQuery, 1);
        q->manager = m;
        q->destination = g_steal_pointer(&copy);
        q->uuid = g_strdup(uuid);
        q->switched = switched;
        q->done = done;
        q->userdata = userdata;
        if (!m->arrival_queries)
                m->arrival_queries = g_ptr_array_new();
        g_ptr_array_add(m->arrival_queries, q);
        arrival_query_ask(q);
        *ret = q;
        return 0;
}

/* ---- settling after a restart ---- */

typedef struct Recovery {
        Manager *manager;
        Domain *domain; /* reference */
        Job *job;       /* reference */
        Destination *destination;
        ArrivalQuery *query;
        bool guest_left; /* what was decided: it runs on the destination */
        /* The backend is settling the guest: its callback comes, and
         * frees what vmigrated stopping abandoned (or the exit does). */
        bool busy;
        bool abandoned; /* its job ended; still in manager->recoveries */
} Recovery;

static void recovery_free(Recovery *r) {
        if (r->manager->recoveries)
                g_ptr_array_remove(r->manager->recoveries, r);
        arrival_query_cancel(r->query);
        job_unref(r->job);
        domain_unref(r->domain);
        destination_free(r->destination);
        g_free(r);
}

static const char *recovery_destination_name(const Recovery *r) {
        return r->destination ? r->destination->canonical : "the destination";
}

static void recovery_end(Recovery *r, JobPhase final, const char *why) {
        g_autofree char *host = manager_get_hostname();
        g_autofree char *error =
                why ? g_strdup_printf("confirm phase, on %s (source): %s", host, why) : NULL;

        job_end(r->job, final, error);
        if (r->busy) {
                /* Freed when the callback comes, or at exit. */
                r->abandoned = true;
                return;
        }
        recovery_free(r);
}

static void on_settled(int ret, const GError *error, void *userdata) {
        Recovery *r = userdata;
        g_autofree char *why = NULL;

        r->busy = false;
        if (r->abandoned) {
                recovery_free(r);
                return;
        }
        if (ret < 0) {
                /* The record stays: the next start tries again. */
                why = g_strdup_printf(
                        "vmigrated restarted before Confirm and could not %s the guest here: %s",
                        r->guest_left ? "stop" : "run", error ? error->message : "failed");
                recovery_end(r, JOB_PHASE_FAILED, why);
                return;
        }
        unconfirmed_record_remove(r->manager, domain_uuid(r->domain));
        if (r->guest_left) {
                log_info("domain '%s': %s runs it: its copy here is stopped", domain_name(r->domain),
                         recovery_destination_name(r));
                recovery_end(r, JOB_PHASE_COMPLETED, NULL);
                return;
        }
        why = r->destination
                ? g_strdup_printf("vmigrated restarted before Confirm; %s does not run the guest: it runs "
                                  "here again",
                                  r->destination->canonical)
                : g_strdup("vmigrated restarted before the destination was told to run the guest: it "
                           "runs here again");
        recovery_end(r, JOB_PHASE_FAILED, why);
}

static void recovery_settle(Recovery *r, bool guest_left) {
        const BackendOps *ops = r->domain->backend;
        g_autoptr(GError) error = NULL;

        r->guest_left = guest_left;
        log_info("domain '%s': its migration was copied but never confirmed: %s", domain_name(r->domain),
                 guest_left ? "the destination runs it, stopping it here" : "running it here again");
        if (!ops->migrate_settle_unconfirmed) {
                vm_error_set(&error, VM_ERROR_UNSUPPORTED_BACKEND, "backend '%s' cannot settle it",
                             ops->name);
                on_settled(-EOPNOTSUPP, error, r);
                return;
        }
        r->busy = true;
        if (ops->migrate_settle_unconfirmed(r->domain->backend_data, guest_left, on_settled, r, &error) < 0)
                on_settled(-EIO, error, r);
}

static void on_recovery_answer(ArrivalAnswer answer, const char *why, void *userdata) {
        Recovery *r = userdata;

        r->query = NULL;
        if (answer != ARRIVAL_UNKNOWN) {
                recovery_settle(r, answer == ARRIVAL_RUNS);
                return;
        }
        g_autofree char *text = g_strdup_printf("vmigrated restarted before Confirm and cannot learn "
                                                "whether %s runs the guest (%s): the guest "
                                                "stays paused here (StateReason " UNCONFIRMED_REASON
                                                "). If %s does not run it, Resume it here; "
                                                "if it does, Destroy it here",
                                                r->destination->canonical, why, r->destination->canonical);
        log_error("domain '%s': %s", domain_name(r->domain), text);
        recovery_end(r, JOB_PHASE_FAILED, text);
}

static void recovery_start(Manager *m, Domain *d) {
        g_autoptr(GError) error = NULL;
        Recovery *r = g_new0(Recovery, 1);

        r->manager = m;
        r->domain = domain_ref(d);
        if (!m->recoveries)
                m->recoveries = g_ptr_array_new();
        g_ptr_array_add(m->recoveries, r);
        r->destination = record_load(m, domain_uuid(d), &error);
        if (!r->destination && !g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                /* A record that cannot be read: Finish may have been sent. */
                log_error("domain '%s': %s: leaving the guest paused (StateReason " UNCONFIRMED_REASON ")",
                          domain_name(d), error->message);
                recovery_free(r);
                return;
        }
        r->job =
                job_ref(job_new(m, JOB_MIGRATION_OUT, d, r->destination ? r->destination->canonical : NULL));
        job_set_phase(r->job, JOB_PHASE_CONFIRM);
        if (!r->destination || !m->peer_ops) {
                /* Finish was never sent: the destination discards its half. */
                recovery_settle(r, false);
                return;
        }
        /* A record is written for a pre-copy only: the stream never
         * switched. */
        if (arrival_query_start(m, r->destination, domain_uuid(d), false, on_recovery_answer, r, &r->query,
                                &error) < 0)
                on_recovery_answer(ARRIVAL_UNKNOWN, error->message, r);
}

/* Records whose guest is not waiting here any more (it ended, or was
 * settled by hand meanwhile) say nothing. */
static void remove_stale_records(Manager *m) {
        g_autofree char *dir_path = NULL;
        g_autoptr(GDir) dir = NULL;
        const char *name;

        if (!m->runtime_dir)
                return;
        dir_path = g_build_filename(m->runtime_dir, "unconfirmed", NULL);
        dir = g_dir_open(dir_path, 0, NULL);
        while (dir && (name = g_dir_read_name(dir))) {
                Domain *d = g_hash_table_lookup(m->domains, name);
                if (!d || d->state != DOMAIN_STATE_PAUSED ||
                    g_strcmp0(d->state_reason, UNCONFIRMED_REASON) != 0) {
                        g_autofree char *path = g_build_filename(dir_path, name, NULL);
                        log_info("removing %s: its domain is not waiting for a Confirm", path);
                        (void) unlink(path);
                }
        }
}

void migration_recover_unconfirmed(Manager *m) {
        g_autoptr(GPtrArray) waiting = g_ptr_array_new();
        GHashTableIter iter;
        gpointer value;

        remove_stale_records(m);
        /* Collected first: a job starting changes the domain table's users. */
        g_hash_table_iter_init(&iter, m->domains);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Domain *d = value;
                if (d->state == DOMAIN_STATE_PAUSED && g_strcmp0(d->state_reason, UNCONFIRMED_REASON) == 0 &&
                    !d->job)
                        g_ptr_array_add(waiting, domain_ref(d));
        }
        for (unsigned i = 0; i < waiting->len; i++) {
                g_autoptr(Domain) d = waiting->pdata[i];
                recovery_start(m, d);
        }
}

void migration_recover_shutdown(Manager *m) {
        g_autoptr(GPtrArray) live = g_ptr_array_new();

        /* Collected first: ending one frees it unless a callback is due. */
        for (unsigned i = 0; m->recoveries && i < m->recoveries->len; i++) {
                Recovery *r = m->recoveries->pdata[i];
                if (!r->abandoned)
                        g_ptr_array_add(live, r);
        }
        for (unsigned i = 0; i < live->len; i++)
                recovery_end(live->pdata[i], JOB_PHASE_FAILED,
                             "vmigrated stopped before it could settle the guest, which stays paused here "
                             "(StateReason " UNCONFIRMED_REASON
                             "): the next vmigrated asks the destination again");
}

void migration_recover_free(Manager *m) {
        migration_recover_shutdown(m);
        /* What is left waits for callbacks that the loop, now stopped,
         * will never run: the backend and the peer layer drop them. */
        while (m->recoveries && m->recoveries->len > 0)
                recovery_free(m->recoveries->pdata[0]);
        g_clear_pointer(&m->recoveries, g_ptr_array_unref);
        while (m->arrival_queries && m->arrival_queries->len > 0)
                arrival_query_free(m->arrival_queries->pdata[0]);
        g_clear_pointer(&m->arrival_queries, g_ptr_array_unref);
}
