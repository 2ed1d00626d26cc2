/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration protocol between two managers in one process: the test
 * backend on both sides, and a peer that hands the source's Incoming calls
 * straight to the other manager (from the event loop, as the bus would).
 * Checks the phases, the outcome on both hosts, and the rollback.
 */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "backends.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "migration.h"
#include "unit-util.h"

#define DEST_URI "unix:///run/test-dest/system_bus_socket"

#define DOMAIN_XML(name, memory_mib, extra)                                                                    \
        "<domain type='test'><name>" name "</name><memory unit='MiB'>" memory_mib "</memory><vcpu>1</vcpu>"     \
        extra "</domain>"

typedef struct Host {
        char *dir;
        Manager *manager;
        GPtrArray *events; /* "name event/detail" */
} Host;

typedef struct Fixture {
        sd_event *event;
        Host src, dst;
        bool started_called, ended_called;
        Job *started_job;
        char *started_error;
        GError *ended_error; /* what a waiting Migrate call would be answered */
        bool op_done;
        /* Incoming.Arrival answers this instead of asking the destination
         * (a destination whose vmigrated restarted says "absent"). */
        const char *arrival_answer;
        unsigned arrival_calls;
        unsigned arrival_switch_calls; /* of them, asking before a switch */
} Fixture;

static Fixture *current;

/* ---- the in-process peer ---- */

struct Peer {
        Manager *remote;
};

typedef struct Deferred {
        sd_event_source *source;
        void (*run)(struct Deferred *d);
        Peer *peer;
        PeerConnectDone connect_done;
        PeerReplyDone reply_done;
        void *userdata;
        char *method;
        GVariant *args;
        GVariant *reply;
        GError *error;
} Deferred;

static void deferred_free(Deferred *d) {
        sd_event_source_disable_unref(d->source);
        g_free(d->method);
        if (d->args)
                g_variant_unref(d->args);
        if (d->reply)
                g_variant_unref(d->reply);
        g_clear_error(&d->error);
        g_free(d);
}

static int on_deferred(sd_event_source *s, void *userdata) {
        Deferred *d = userdata;
        d->run(d);
        deferred_free(d);
        return 0;
}

static void defer(Deferred *d) {
        g_assert_cmpint(sd_event_add_defer(current->event, &d->source, on_deferred, d), >=, 0);
}

static void run_connect(Deferred *d) {
        if (!d->peer) {
                g_autoptr(GError) error = g_error_new(VM_ERROR, VM_ERROR_DESTINATION_UNREACHABLE, "no such bus");
                d->connect_done(NULL, NULL, NULL, error, d->userdata);
                return;
        }
        d->connect_done(d->peer, d->peer->remote->host_uuid, NULL, NULL, d->userdata);
}

static int peer_connect(void *ctx, const Destination *destination, PeerConnectDone done, void *userdata,
                        GError **error) {
        Deferred *d = g_new0(Deferred, 1);

        d->run = run_connect;
        d->connect_done = done;
        d->userdata = userdata;
        if (g_str_equal(destination->canonical, DEST_URI)) {
                d->peer = g_new0(Peer, 1);
                d->peer->remote = current->dst.manager;
        } else if (g_str_equal(destination->canonical, "unix:///run/test-src/system_bus_socket")) {
                d->peer = g_new0(Peer, 1);
                d->peer->remote = current->src.manager;
        }
        defer(d);
        return 0;
}

static void on_remote_done(GVariant *reply, const GError *error, void *userdata) {
        Deferred *d = g_new0(Deferred, 1);
        Deferred *call = userdata;

        /* Hop through the loop again, as a bus reply would. */
        d->run = call->run;
        d->reply_done = call->reply_done;
        d->userdata = call->userdata;
        d->reply = reply ? g_variant_ref_sink(reply) : NULL;
        d->error = error ? g_error_copy(error) : NULL;
        defer(d);
        g_free(call);
}

static void run_reply(Deferred *d) {
        d->reply_done(d->reply, d->error, d->userdata);
}

static int peer_call(Peer *peer, const char *method, GVariant *args, uint64_t timeout_usec, PeerReplyDone done,
                     void *userdata, GError **error) {
        g_autoptr(GVariant) owned = g_variant_ref_sink(args);
        g_autoptr(GError) local = NULL;
        Deferred *call = g_new0(Deferred, 1);
        int r;

        call->run = run_reply;
        call->reply_done = done;
        call->userdata = userdata;
        gboolean postcopy_switch = false;
        if (g_str_equal(method, "Arrival") &&
            g_variant_lookup(owned, "postcopy-switch", "b", &postcopy_switch) && postcopy_switch)
                current->arrival_switch_calls++;
        if (g_str_equal(method, "Prepare"))
                r = migration_incoming_prepare(peer->remote, owned, ":1.42", on_remote_done, call, &local);
        else if (g_str_equal(method, "Finish"))
                r = migration_incoming_finish(peer->remote, owned, ":1.42", on_remote_done, call, &local);
        else if (g_str_equal(method, "Arrival") && current->arrival_answer) {
                g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
                current->arrival_calls++;
                g_variant_dict_insert(&dict, "version", "u", 1);
                g_variant_dict_insert(&dict, "arrival", "s", current->arrival_answer);
                on_remote_done(g_variant_dict_end(&dict), NULL, call);
                return 0;
        } else if (g_str_equal(method, "Arrival")) {
                current->arrival_calls++;
                r = migration_incoming_arrival(peer->remote, owned, ":1.42", on_remote_done, call, &local);
        } else
                g_assert_not_reached();
        if (r < 0) {
                /* The remote refused at once: that is its error reply. */
                on_remote_done(NULL, local, call);
        }
        return 0;
}

static void peer_close(Peer *peer) {
        g_free(peer);
}

static const PeerOps test_peer_ops = {
        .connect = peer_connect,
        .call = peer_call,
        .close = peer_close,
};

/* ---- fixture ---- */

static void on_lifecycle(Manager *m, Domain *d, const char *event, const char *detail, void *userdata) {
        Host *h = userdata;
        g_ptr_array_add(h->events, g_strdup_printf("%s %s/%s", domain_name(d), event, detail));
}

static const ManagerObserver observer = {
        .domain_lifecycle = on_lifecycle,
};

static void host_open(Fixture *f, Host *h, const char *name) {
        g_autofree char *state = NULL, *run = NULL;
        g_autoptr(GError) error = NULL;

        h->dir = g_dir_make_tmp("test-migration-XXXXXX", NULL);
        state = g_build_filename(h->dir, "state", NULL);
        run = g_build_filename(h->dir, "run", NULL);
        g_assert_cmpint(manager_new(f->event, state, run, builtin_backends, n_builtin_backends, &h->manager, &error), ==, 0);
        g_assert_no_error(error);
        h->events = g_ptr_array_new_with_free_func(g_free);
        manager_set_observer(h->manager, &observer, h);
        manager_set_peer_ops(h->manager, &test_peer_ops, NULL);
}

static void host_close(Host *h) {
        manager_free(h->manager);
        rm_rf(h->dir);
        g_free(h->dir);
        g_ptr_array_unref(h->events);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        current = f;
        host_open(f, &f->src, "src");
        host_open(f, &f->dst, "dst");
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        host_close(&f->src);
        host_close(&f->dst);
        sd_event_unref(f->event);
        g_free(f->started_error);
        g_clear_error(&f->ended_error);
        current = NULL;
}

static void run_until(Fixture *f, bool *flag) {
        gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

        while (!*flag && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_true(*flag);
        *flag = false;
}

static void on_op_done(Domain *d, int r, const GError *error, void *userdata) {
        Fixture *f = userdata;
        g_assert_cmpint(r, ==, 0);
        f->op_done = true;
}

static Domain *define_running(Fixture *f, Host *h, const char *xml) {
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        g_assert_cmpint(manager_define_xml(h->manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(domain_start(d, on_op_done, f, &error), ==, 0);
        run_until(f, &f->op_done);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        return d;
}

static void on_started(Job *job, const GError *error, void *userdata) {
        Fixture *f = userdata;
        f->started_job = job;
        g_free(f->started_error);
        f->started_error = error ? g_strdup(error->message) : NULL;
        f->started_called = true;
}

static void on_ended(Job *job, const GError *error, void *userdata) {
        Fixture *f = userdata;
        f->ended_called = true;
        g_clear_error(&f->ended_error);
        f->ended_error = error ? g_error_copy(error) : NULL;
}

/* A Migrate call's (destination, options) as the bus layer parses them. */
static MigrationRequest *request(const char *uri, const char *options) {
        /* g_variant_parse returns a full, non-floating reference. */
        g_autoptr(GVariant) v = g_variant_parse(G_VARIANT_TYPE_VARDICT, options, NULL, NULL, NULL);

        g_assert_nonnull(v);
        return migration_request_parse(uri, v);
}

static bool has_event(Host *h, const char *what) {
        for (unsigned i = 0; i < h->events->len; i++)
                if (g_str_equal(h->events->pdata[i], what))
                        return true;
        return false;
}

/* Migrates d and runs until the job ended; returns the final phase. */
static JobPhase migrate(Fixture *f, Domain *d, const char *options) {
        g_autoptr(GError) error = NULL;
        JobPhase phase;

        g_assert_cmpint(migration_start(f->src.manager, d, request(DEST_URI, options), on_started, on_ended, f,
                                        &error),
                        ==, 0);
        g_assert_no_error(error);
        run_until(f, &f->ended_called);
        g_assert_nonnull(d->last_job_stats);
        const char *p = NULL;
        g_assert_true(g_variant_lookup(d->last_job_stats, "phase", "&s", &p));
        phase = g_str_equal(p, "completed") ? JOB_PHASE_COMPLETED
                : g_str_equal(p, "cancelled") ? JOB_PHASE_CANCELLED
                                               : JOB_PHASE_FAILED;
        return phase;
}

static void test_success(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "256", ""));
        Domain *there;

        g_assert_cmpint(migrate(f, d, "{}"), ==, JOB_PHASE_COMPLETED);
        g_assert_true(f->started_called);
        g_assert_no_error(f->ended_error);
        g_assert_null(f->started_error);

        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTOFF);
        g_assert_cmpstr(d->state_reason, ==, "migrated");
        g_assert_true(domain_is_persistent(d)); /* no undefine-source */
        g_assert_true(has_event(&f->src, "vm1 suspended/migrated"));
        g_assert_true(has_event(&f->src, "vm1 stopped/migrated"));

        there = manager_lookup(f->dst.manager, "vm1");
        g_assert_nonnull(there);
        g_assert_cmpint(there->state, ==, DOMAIN_STATE_RUNNING);
        g_assert_cmpstr(there->state_reason, ==, "migrated");
        g_assert_true(domain_is_persistent(there)); /* follows the source */
        g_assert_true(has_event(&f->dst, "vm1 started/migrated"));
        g_assert_true(has_event(&f->dst, "vm1 resumed/migrated"));
        g_assert_nonnull(there->last_job_stats); /* the destination's job mirrors it */
}

static void test_undefine_source_and_rename(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "128", ""));

        g_assert_cmpint(migrate(f, d, "{'undefine-source': <true>, 'destination-name': <'vm1-moved'>, "
                                      "'persist': <false>}"),
                        ==, JOB_PHASE_COMPLETED);
        g_assert_null(manager_lookup(f->src.manager, "vm1"));
        Domain *there = manager_lookup(f->dst.manager, "vm1-moved");
        g_assert_nonnull(there);
        g_assert_false(domain_is_persistent(there));
}

static void test_paused(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "128", ""));

        g_assert_cmpint(migrate(f, d, "{'paused': <true>}"), ==, JOB_PHASE_COMPLETED);
        g_assert_cmpint(manager_lookup(f->dst.manager, "vm1")->state, ==, DOMAIN_STATE_PAUSED);
}

static void test_destination_refuses(Fixture *f, gconstpointer data) {
        /* Another domain named vm1 on the destination: Prepare refuses. */
        const char *other = DOMAIN_XML("vm1", "64", "");
        g_autoptr(GError) error = NULL;
        Domain *clash;
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "128", ""));

        g_assert_cmpint(manager_define_xml(f->dst.manager, other, strlen(other), &clash, &error), ==, 0);
        g_assert_cmpint(migrate(f, d, "{}"), ==, JOB_PHASE_FAILED);
        g_assert_nonnull(f->started_error);
        g_assert_nonnull(strstr(f->started_error, "named 'vm1'"));
        g_assert_nonnull(strstr(f->started_error, "destination-name"));
        /* One host runs it: the source, untouched. */
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        g_assert_cmpint(clash->state, ==, DOMAIN_STATE_SHUTOFF);
        g_assert_cmpuint(clash->def->memory_bytes, ==, 64u << 20);
}

static void on_cancel_tick(Fixture *f, Domain *d) {
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        /* Wait until it copies, then cancel. */
        while ((!d->job || d->job->phase != JOB_PHASE_PERFORM) && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_nonnull(d->job);
        g_assert_cmpint(migration_cancel(d->job, &error), ==, 0);
        g_assert_no_error(error);
}

static void test_cancel(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        /* 4 GiB at 100 MB/s: 40 s if nobody cancels it. */
        Domain *d = define_running(f, &f->src, DOMAIN_XML("big", "4096", ""));

        g_assert_cmpint(migration_start(f->src.manager, d, request(DEST_URI, "{'bandwidth': <uint64 100000000>}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        on_cancel_tick(f, d);
        run_until(f, &f->ended_called);
        const char *phase = NULL;
        g_assert_true(g_variant_lookup(d->last_job_stats, "phase", "&s", &phase));
        g_assert_cmpstr(phase, ==, "cancelled");
        /* The core decides what a waiting caller is told: pre-copy → MigrationFailed. */
        g_assert_error(f->ended_error, VM_ERROR, VM_ERROR_MIGRATION_FAILED);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        /* The destination kept nothing. */
        g_assert_null(manager_lookup(f->dst.manager, "big"));
        g_assert_true(has_event(&f->dst, "big stopped/failed"));
}

static void test_never_converges(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        /* Dirtying faster than the link: pre-copy cannot finish; progress
         * must still never go down. */
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "128", "<description>test-dirty-rate=300000000</description>"));
        double last = 0;
        gint64 until;

        g_assert_cmpint(migration_start(f->src.manager, d, request(DEST_URI, "{'bandwidth': <uint64 200000000>}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < until) {
                g_assert_cmpint(sd_event_run(f->event, 50 * 1000), >=, 0);
                if (d->job) {
                        g_assert_cmpfloat(d->job->progress, >=, last);
                        last = d->job->progress;
                }
        }
        g_assert_nonnull(d->job);
        g_assert_cmpuint(d->job->stats.iteration, >, 1);
        g_assert_cmpint(migration_cancel(d->job, &error), ==, 0);
        run_until(f, &f->ended_called);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

static void test_auto_converge(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("warm", "256", "<description>test-dirty-rate=300000000</description>"));

        g_assert_cmpint(migrate(f, d, "{'bandwidth': <uint64 200000000>, 'auto-converge': <true>}"), ==,
                        JOB_PHASE_COMPLETED);
        g_assert_nonnull(manager_lookup(f->dst.manager, "warm"));
}

static void test_refusals(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "128", ""));

        {
                g_autoptr(MigrationRequest) bad = request("ftp://x", "{'tunnelled': <1>}");
                /* Both parts are parsed; the options' error is the one reported. */
                g_assert_error(bad->destination_error, VM_ERROR, VM_ERROR_INVALID_DESTINATION);
                g_assert_error(bad->options_error, VM_ERROR, VM_ERROR_INVALID_OPTION);
                g_assert_true(migration_request_error(bad) == bad->options_error);
                g_assert_cmpstr(migration_request_destination(bad), ==, "ftp://x");
        }
        {
                g_autoptr(MigrationRequest) good = request("SSH://Root@Host-B:22/", "{}");
                g_assert_null(migration_request_error(good));
                g_assert_cmpstr(migration_request_destination(good), ==, "ssh://Root@host-b:22");
        }
        g_assert_cmpint(migration_start(f->src.manager, d, request(DEST_URI, "{'tunnelled': <true>}"), on_started,
                                        on_ended, f, &error),
                        <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_OPTION);
        g_clear_error(&error);
        g_assert_cmpint(migration_start(f->src.manager, d, request(DEST_URI, "{'offline': <true>}"), on_started,
                                        on_ended, f, &error),
                        <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE); /* running: offline moves shut-off ones */
        g_clear_error(&error);
        g_assert_null(d->job);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

static void test_unreachable(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "128", ""));

        g_assert_cmpint(migration_start(f->src.manager, d, request("unix:///run/nowhere", "{}"), on_started,
                                        on_ended, f, &error),
                        ==, 0);
        run_until(f, &f->ended_called);
        g_assert_nonnull(f->started_error);
        g_assert_nonnull(strstr(f->started_error, "no such bus"));
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

static void test_same_host(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "128", ""));

        g_assert_cmpint(migration_start(f->src.manager, d, request("unix:///run/test-src/system_bus_socket", "{}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        run_until(f, &f->ended_called);
        g_assert_nonnull(f->started_error);
        g_assert_nonnull(strstr(f->started_error, "is this host"));
}

static void test_offline(Fixture *f, gconstpointer data) {
        const char *xml = DOMAIN_XML("cold", "128", "");
        g_autoptr(GError) error = NULL;
        Domain *d;

        g_assert_cmpint(manager_define_xml(f->src.manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_cmpint(migrate(f, d, "{'offline': <true>, 'undefine-source': <true>}"), ==, JOB_PHASE_COMPLETED);
        g_assert_null(manager_lookup(f->src.manager, "cold"));
        Domain *there = manager_lookup(f->dst.manager, "cold");
        g_assert_nonnull(there);
        g_assert_true(domain_is_persistent(there));
        g_assert_cmpint(there->state, ==, DOMAIN_STATE_SHUTOFF);
}

static void test_limit(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *a = define_running(f, &f->src, DOMAIN_XML("a", "2048", ""));
        Domain *b = define_running(f, &f->src, DOMAIN_XML("b", "2048", ""));

        f->src.manager->max_outgoing = 1;
        g_assert_cmpint(migration_start(f->src.manager, a, request(DEST_URI, "{'bandwidth': <uint64 100000000>}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        g_assert_cmpint(migration_start(f->src.manager, b, request(DEST_URI, "{}"), on_started, on_ended, f,
                                        &error),
                        <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_LIMIT_REACHED);
        on_cancel_tick(f, a);
        run_until(f, &f->ended_called);
}

static void test_postcopy(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        /* Never converges by pre-copy: only post-copy finishes it. */
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "512", "<description>test-dirty-rate=400000000</description>"));

        g_assert_cmpint(migration_start(f->src.manager, d,
                                        request(DEST_URI, "{'postcopy': <true>, 'bandwidth': <uint64 200000000>}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        /* Asked at once, before the stream even started: remembered. */
        g_assert_nonnull(d->job);
        g_assert_cmpint(migration_start_postcopy(d->job, &error), ==, 0);
        g_assert_no_error(error);
        run_until(f, &f->ended_called);

        const char *phase = NULL;
        g_assert_true(g_variant_lookup(d->last_job_stats, "phase", "&s", &phase));
        g_assert_cmpstr(phase, ==, "completed");
        g_assert_true(has_event(&f->src, "hot suspended/postcopy"));
        g_assert_true(has_event(&f->src, "hot stopped/migrated"));
        g_assert_true(has_event(&f->dst, "hot resumed/postcopy"));
        Domain *there = manager_lookup(f->dst.manager, "hot");
        g_assert_nonnull(there);
        /* The destination's job ends with the stream, after Finish. */
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!has_event(&f->dst, "hot resumed/migrated") && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 50 * 1000), >=, 0);
        g_assert_true(has_event(&f->dst, "hot resumed/migrated"));
        g_assert_cmpstr(there->state_reason, ==, "migrated");
        g_assert_nonnull(there->last_job_stats);
        g_assert_true(g_variant_lookup(there->last_job_stats, "phase", "&s", &phase));
        g_assert_cmpstr(phase, ==, "completed");
        /* What only the destination measured: the simulated guest never waits. */
        guint64 blocktime = G_MAXUINT64;
        g_assert_true(g_variant_lookup(there->last_job_stats, "postcopy-blocktime-ms", "t", &blocktime));
        g_assert_cmpuint(blocktime, ==, 0);
        g_assert_false(g_variant_lookup(d->last_job_stats, "postcopy-blocktime-ms", "t", NULL));
        /* The switch came after the destination said it holds the guest
         * (and would keep it through a restart). */
        g_assert_cmpuint(f->arrival_calls, ==, 1);
        g_assert_cmpuint(f->arrival_switch_calls, ==, 1);
}

/* A destination whose vmigrated restarted since Prepare no longer holds
 * the half that arrived: the source does not switch, the pre-copy stops,
 * and the guest stays here, running. */
static void test_postcopy_destination_forgot(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_running(
                f, &f->src,
                DOMAIN_XML("hot", "512", "<description>test-dirty-rate=400000000</description>"));
        const char *phase = NULL, *message = NULL;

        f->arrival_answer = "absent";
        g_assert_cmpint(
                migration_start(f->src.manager, d,
                                request(DEST_URI, "{'postcopy': <true>, 'bandwidth': <uint64 200000000>}"),
                                on_started, on_ended, f, &error),
                ==, 0);
        g_assert_cmpint(migration_start_postcopy(d->job, &error), ==, 0);
        run_until(f, &f->ended_called);

        g_assert_cmpuint(f->arrival_calls, ==, 1);
        g_assert_true(g_variant_lookup(d->last_job_stats, "phase", "&s", &phase));
        g_assert_cmpstr(phase, ==, "failed");
        g_assert_true(g_variant_lookup(d->last_job_stats, "error", "&s", &message));
        g_assert_nonnull(strstr(message,
                                "before the switch to post-copy: its vmigrated no longer holds the arriving "
                                "guest (Arrival: absent"));
        g_assert_false(has_event(&f->src, "hot suspended/postcopy"));
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        g_assert_false(has_event(&f->dst, "hot resumed/postcopy"));
}

static void test_policy_reports_not_converging(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        /* 64 MiB dirtied faster than 100 MB/s carry it: passes of ~0.7 s;
         * without auto-converge the default policy can only lengthen the
         * pause, which is not enough: NotConverging, and it goes on until
         * the policy's budget (60 s). */
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "64", "<description>test-dirty-rate=300000000</description>"));
        gint64 deadline;

        g_assert_cmpint(migration_start(f->src.manager, d,
                                        request(DEST_URI, "{'bandwidth': <uint64 100000000>, 'auto-converge': <false>}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while ((!d->job || !d->job->not_converging) && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 50 * 1000), >=, 0);
        g_assert_nonnull(d->job);
        g_assert_true(d->job->not_converging);
        g_assert_nonnull(strstr(d->job->not_converging_detail, "not converging"));
        g_assert_cmpint(d->job->phase, ==, JOB_PHASE_PERFORM); /* it does not give up on its own */
        on_cancel_tick(f, d);
        run_until(f, &f->ended_called);
}

static void test_policy_switches_to_postcopy(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "64", "<description>test-dirty-rate=300000000</description>"));

        /* Nobody calls StartPostCopy: the policy does, once pre-copy stalls. */
        g_assert_cmpint(migrate(f, d, "{'postcopy': <true>, 'bandwidth': <uint64 100000000>}"), ==, JOB_PHASE_COMPLETED);
        g_assert_true(has_event(&f->src, "hot suspended/postcopy"));
}

static void test_policy_default_completes(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "64", "<description>test-dirty-rate=300000000</description>"));
        const char *policy = NULL, *action = NULL;
        guint32 step = 0;
        gboolean postcopy = TRUE;

        /* No options: the default policy throttles the guest until the copy
         * ends; no post-copy. */
        g_assert_cmpint(migrate(f, d, "{'bandwidth': <uint64 100000000>}"), ==, JOB_PHASE_COMPLETED);
        g_assert_true(g_variant_lookup(d->last_job_stats, "policy", "&s", &policy));
        g_assert_cmpstr(policy, ==, "default");
        g_assert_true(g_variant_lookup(d->last_job_stats, "policy-step", "u", &step));
        g_assert_cmpuint(step, >=, 3); /* past its two pauses: a throttle */
        g_assert_true(g_variant_lookup(d->last_job_stats, "policy-action", "&s", &action));
        g_assert_true(g_str_has_prefix(action, "throttle "));
        g_assert_true(g_variant_lookup(d->last_job_stats, "postcopy", "b", &postcopy));
        g_assert_false(postcopy);
        g_assert_false(has_event(&f->src, "hot suspended/postcopy"));
        g_assert_nonnull(manager_lookup(f->dst.manager, "hot"));
}

static void test_policy_named(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "64", "<description>test-dirty-rate=300000000</description>"));
        const char *action = NULL;

        /* 'postcopy' turns post-copy on and switches at once. */
        g_assert_cmpint(migrate(f, d, "{'bandwidth': <uint64 100000000>, 'policy': <'postcopy'>}"), ==,
                        JOB_PHASE_COMPLETED);
        g_assert_true(has_event(&f->src, "hot suspended/postcopy"));
        g_assert_true(g_variant_lookup(d->last_job_stats, "policy-action", "&s", &action));
        g_assert_cmpstr(action, ==, "postcopy");

        Domain *e = define_running(f, &f->src, DOMAIN_XML("other", "64", ""));
        g_assert_cmpint(migration_start(f->src.manager, e, request(DEST_URI, "{'policy': <'fastest'>}"), on_started,
                                        on_ended, f, &error),
                        <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_OPTION);
        g_assert_nonnull(strstr(error->message, "option 'policy'='fastest': no such policy on this host (it has "
                                                "default, minimal-downtime, postcopy, suspend-workload-if-needed"));
        g_clear_error(&error);
        g_assert_cmpint(migration_start(f->src.manager, e,
                                        request(DEST_URI, "{'policy': <'postcopy'>, 'postcopy': <false>}"),
                                        on_started, on_ended, f, &error),
                        <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_CONFLICTING_OPTIONS);
        g_clear_error(&error);
        g_assert_cmpint(migration_start(f->src.manager, e,
                                        request(DEST_URI, "{'policy': <'default'>, 'offline': <true>}"),
                                        on_started, on_ended, f, &error),
                        <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_CONFLICTING_OPTIONS);
        g_assert_null(e->job);
}

static void test_timeout_abort(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "64", "<description>test-dirty-rate=300000000</description>"));

        g_assert_cmpint(migrate(f, d, "{'bandwidth': <uint64 100000000>, 'timeout': <uint64 1>}"), ==,
                        JOB_PHASE_CANCELLED);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

static void test_timeout_suspend(Fixture *f, gconstpointer data) {
        Domain *d = define_running(f, &f->src, DOMAIN_XML("hot", "64", "<description>test-dirty-rate=300000000</description>"));

        /* Paused, the guest dirties nothing more: the copy ends. */
        g_assert_cmpint(migrate(f, d, "{'bandwidth': <uint64 100000000>, 'timeout': <uint64 1>, "
                                      "'timeout-action': <'suspend'>}"),
                        ==, JOB_PHASE_COMPLETED);
        g_assert_nonnull(manager_lookup(f->dst.manager, "hot"));
}

static void test_postcopy_not_enabled(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_running(f, &f->src, DOMAIN_XML("vm1", "2048", ""));

        g_assert_cmpint(migration_start(f->src.manager, d, request(DEST_URI, "{'bandwidth': <uint64 100000000>}"),
                                        on_started, on_ended, f, &error),
                        ==, 0);
        g_assert_cmpint(migration_start_postcopy(d->job, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_POSTCOPY_NOT_ENABLED);
        g_clear_error(&error);
        on_cancel_tick(f, d);
        run_until(f, &f->ended_called);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);

#define ADD(path, fn) g_test_add("/migration/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("success", test_success);
        ADD("undefine-source-and-rename", test_undefine_source_and_rename);
        ADD("paused", test_paused);
        ADD("destination-refuses", test_destination_refuses);
        ADD("cancel", test_cancel);
        ADD("never-converges", test_never_converges);
        ADD("auto-converge", test_auto_converge);
        ADD("refusals", test_refusals);
        ADD("unreachable", test_unreachable);
        ADD("same-host", test_same_host);
        ADD("offline", test_offline);
        ADD("limit", test_limit);
        ADD("postcopy", test_postcopy);
        ADD("postcopy-not-enabled", test_postcopy_not_enabled);
        ADD("postcopy-destination-forgot", test_postcopy_destination_forgot);
        ADD("policy/reports-not-converging", test_policy_reports_not_converging);
        ADD("policy/switches-to-postcopy", test_policy_switches_to_postcopy);
        ADD("policy/default-completes", test_policy_default_completes);
        ADD("policy/named", test_policy_named);
        ADD("timeout/abort", test_timeout_abort);
        ADD("timeout/suspend", test_timeout_suspend);
        return g_test_run();
}
