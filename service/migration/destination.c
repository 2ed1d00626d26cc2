/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The destination side of a migration (destination.h): Incoming.Prepare
 * (and CheckPrepare for a dry run), Finish and Pause, called by the
 * source's vmigrated. One Incoming per arriving domain, keyed on its UUID;
 * if the source's connection goes away, what it left half done is
 * discarded, except a guest in post-copy, which already runs here.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cookie.h"
#include "destination.h"
#include "errors.h"
#include "hooks.h"
#include "host-features.h"
#include "log.h"
#include "manager.h"
#include "net.h"
#include "preflight.h"
#include "test-breakpoints.h"

/* The tunnel token's entropy. */
#define TUNNEL_TOKEN_BYTES 16

typedef struct TunnelEnd {
        char *name; /* "stream", or the backend's name for it */
        char *path; /* the unix socket it connects to */
        char token[TUNNEL_TOKEN_BYTES * 2 + 1]; /* hex; empty once used */
} TunnelEnd;

static void tunnel_end_free(TunnelEnd *t) {
        g_free(t->name);
        g_free(t->path);
        g_free(t);
}

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
        /* The source was told it may switch to post-copy (Arrival): the
         * switch may be on its way, and after it the guest can run only
         * here. A stop of this daemon leaves such an arrival to the next
         * one, as a SIGKILL would (backend.h, migrate_postcopy_coming). */
        bool switch_told;
        /* Host-side features (hooks, bridges): set up before the backend's
         * Prepare, undone when the guest does not stay. */
        Features *features;
        GVariant *backend_cookie; /* for the backend's Prepare, after the hooks */
        char *tls_peer_dn;        /* option 'tls': the source's client certificate DN */
        /* Option 'tunnelled': where the backend listens (this host only),
         * each with the secret that lets one OpenTunnel connect to it:
         * the stream first, then what the backend names besides (a disk
         * copy's NBD connections). */
        GPtrArray *tunnels; /* TunnelEnd* */
        GVariant *prepare_reply; /* Prepare's answer, while held before it goes (test builds) */
        struct FinishCall *finish_call; /* Finish under way: the backend holds it */
        /* The source went away while Prepare was under way: why; the
         * guest is discarded once Prepare has answered (to nobody). */
        char *vanished;

        IncomingDone done;
        void *userdata;
} Incoming;

typedef struct FinishCall FinishCall;
static void finish_call_free(FinishCall *call);

static void incoming_free(Incoming *in) {
        if (!in)
                return;
        breakpoint_forget(in->manager->breakpoints, in);
        /* Only when the daemon exits: a post-copy arriving here goes on
         * without us, and the backend forgets the call. */
        if (in->finish_call)
                finish_call_free(in->finish_call);
        if (in->prepare_reply)
                g_variant_unref(in->prepare_reply);
        if (in->job)
                in->job->migration = NULL;
        job_unref(in->job);
        domain_unref(in->domain);
        features_free(in->features);
        if (in->backend_cookie)
                g_variant_unref(in->backend_cookie);
        migrate_options_free(in->options);
        g_free(in->tls_peer_dn);
        if (in->tunnels)
                g_ptr_array_unref(in->tunnels);
        g_free(in->caller);
        g_free(in->vanished);
        g_free(in);
}

/* uuid → Incoming, owned; made when the first migration arrives. The
 * manager frees it (and with it what is left) without knowing its type. */
static GHashTable *incoming_table(Manager *m) {
        if (!m->incoming)
                m->incoming = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) incoming_free);
        return m->incoming;
}

/* The arriving domain's Job, tied to in (in->options set). */
static void incoming_start_job(Incoming *in, const char *source_name) {
        in->job = job_ref(job_new(in->manager, JOB_MIGRATION_IN, in->domain, source_name));
        job_set_encryption(in->job, job_encryption_for(in->options->tls, in->options->tunnelled));
        in->job->migration = in;
}

/* What the backend's Prepare needs for option 'tls' (NULL: none). */
static const MigrationTls *incoming_tls(Incoming *in, MigrationTls *buf) {
        if (!in->options->tls)
                return NULL;
        *buf = (MigrationTls){ .dir = in->manager->tls_dir, .peer_dn = in->tls_peer_dn };
        return buf;
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
                .networks_dir = m->networks_dir,
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
        /* What protects the stream, which 'tls' left out may have chosen. */
        g_variant_dict_insert(&dict, "tls", "b", in->options->tls);
        g_variant_dict_insert_value(&dict, "warnings",
                                    g_variant_new_strv((const char *const *) in->job->warnings->pdata,
                                                       in->job->warnings->len));
        return g_variant_dict_end(&dict);
}

/* Option 'tunnelled': one more place the source may be connected to,
 * with a fresh token. */
static int incoming_add_tunnel(Incoming *in, const char *name, const char *path, TunnelEnd **ret,
                               GError **error) {
        uint8_t bytes[TUNNEL_TOKEN_BYTES];
        TunnelEnd *t;

        if (!g_path_is_absolute(path))
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "the backend gave no local socket for tunnel '%s' (%s)", name, path);
        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes))
                return vm_error_set(error, VM_ERROR_FAILED, "cannot make a tunnel token: %s", g_strerror(errno));
        t = g_new0(TunnelEnd, 1);
        t->name = g_strdup(name);
        t->path = g_strdup(path);
        for (size_t i = 0; i < sizeof(bytes); i++)
                g_snprintf(t->token + 2 * i, 3, "%02x", bytes[i]);
        g_ptr_array_add(in->tunnels, t);
        *ret = t;
        return 0;
}

/* Option 'tunnelled': remember where the backend listens (the stream, and
 * the sockets its reply names in "tunnel-sockets" a{ss}, which stay here)
 * and put the tokens the source must show in the reply: "tunnel-token"
 * for the stream, "tunnel-tokens" a{ss} for the others. */
static int incoming_arm_tunnels(Incoming *in, const char *data_uri, GVariant **backend_reply, GVariantDict *reply,
                                GError **error) {
        g_autoptr(GVariant) sockets = NULL;
        g_auto(GVariantBuilder) tokens = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{ss}"));
        TunnelEnd *t;

        if (!data_uri || !g_str_has_prefix(data_uri, "unix:/"))
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "the backend gave no local socket for a tunnelled stream (%s)",
                                    data_uri ? data_uri : "nothing");
        if (in->tunnels)
                g_ptr_array_unref(in->tunnels);
        in->tunnels = g_ptr_array_new_with_free_func((GDestroyNotify) tunnel_end_free);
        if (incoming_add_tunnel(in, "stream", data_uri + strlen("unix:"), &t, error) < 0)
                return -EIO;
        g_variant_dict_insert(reply, "tunnel-token", "s", t->token);
        if (*backend_reply)
                sockets = g_variant_lookup_value(*backend_reply, "tunnel-sockets", G_VARIANT_TYPE("a{ss}"));
        if (sockets) {
                GVariantIter iter;
                const char *name, *path;
                g_auto(GVariantDict) rest = G_VARIANT_DICT_INIT(*backend_reply);

                g_variant_iter_init(&iter, sockets);
                while (g_variant_iter_next(&iter, "{&s&s}", &name, &path)) {
                        if (incoming_add_tunnel(in, name, path, &t, error) < 0)
                                return -EIO;
                        g_variant_builder_add(&tokens, "{ss}", name, t->token);
                }
                g_variant_dict_insert_value(reply, "tunnel-tokens", g_variant_builder_end(&tokens));
                /* The paths are this host's business. */
                g_variant_dict_remove(&rest, "tunnel-sockets");
                *backend_reply = g_variant_ref_sink(g_variant_dict_end(&rest));
                return 1;
        }
        return 0;
}

static void incoming_abandon_one(Incoming *in, const char *why);

/* QEMU listens: Prepare's answer goes to the source. */
static void incoming_answer_prepare(Incoming *in) {
        if (breakpoint_hold(in->manager->breakpoints, "destination-after-prepare", domain_uuid(in->domain),
                            (BreakpointResume) incoming_answer_prepare, in))
                return;
        IncomingDone done = in->done;
        g_autoptr(GVariant) reply = g_steal_pointer(&in->prepare_reply);
        in->done = NULL;
        done(reply, NULL, in->userdata);
        if (in->vanished) {
                g_autofree char *why = g_steal_pointer(&in->vanished);
                incoming_abandon_one(in, why);
        }
}

static void on_incoming_prepared(int r, const GError *error, const char *data_uri, GVariant *backend_reply,
                                 void *userdata) {
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
        g_autoptr(GVariant) owned_reply = NULL;
        if (in->options->tunnelled) {
                /* The addresses stay here: the source gets connections
                 * through OpenTunnel, for the tokens. */
                g_autoptr(GError) local = NULL;
                GVariant *rewritten = backend_reply;
                r = incoming_arm_tunnels(in, data_uri, &rewritten, &dict, &local);
                if (r < 0) {
                        in->done = done;
                        in->userdata = done_userdata;
                        on_incoming_prepared(-EIO, local, NULL, NULL, in);
                        return;
                }
                if (r > 0)
                        backend_reply = owned_reply = rewritten;
        } else
                g_variant_dict_insert(&dict, "data-uri", "s", data_uri);
        if (backend_reply)
                g_variant_dict_insert_value(&dict, "backend", backend_reply);
        in->prepare_reply = g_variant_ref_sink(g_variant_dict_end(&dict));
        in->done = done;
        in->userdata = done_userdata;
        incoming_answer_prepare(in);
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
        incoming_start_job(in, source_name);
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
        bool tls_by_default; /* option 'tls' left out, and both hosts can: set */
        char *tls_why_not;   /* option 'tls' left out, and the pair cannot: why */
} IncomingRequest;

static void incoming_request_clear(IncomingRequest *req) {
        domain_def_free(req->def);
        migrate_options_free(req->options);
        if (req->backend_cookie)
                g_variant_unref(req->backend_cookie);
        source_facts_free(req->source);
        g_free(req->tls_why_not);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(IncomingRequest, incoming_request_clear)

/* Option 'tls' left out: TLS when both hosts can (the source sent its CA
 * and name only if it can). The options then say 'tls', as if asked. */
static void incoming_choose_tls(Manager *m, IncomingRequest *req) {
        if (!preflight_tls_by_default(m, req->def, req->options, req->source, &req->tls_why_not))
                return;
        req->options->tls = true;
        migrate_options_mark(req->options, MIGRATE_OPTION_TLS);
        req->tls_by_default = true;
}

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

static void on_incoming_prepared(int r, const GError *error, const char *data_uri, GVariant *backend_reply,
                                 void *userdata);

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
        incoming_start_job(in, req->source_name);
        g_hash_table_insert(incoming_table(m), (gpointer) domain_uuid(d), in);

        in->tls_peer_dn = g_strdup(req->source ? req->source->tls_client_dn : NULL);
        job_set_phase(in->job, JOB_PHASE_PREPARE);
        MigrationTls tls;
        r = d->backend->migrate_prepare(d->backend_data, d->def, in->options, incoming_tls(in, &tls),
                                        req->backend_cookie, on_incoming_prepared, in, error);
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
        MigrationTls tls;
        if (!error && d->backend->migrate_prepare(d->backend_data, d->def, in->options, incoming_tls(in, &tls),
                                                  in->backend_cookie, on_incoming_prepared, in, &local) >= 0)
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
        if (req->tls_by_default)
                findings_add(findings, FINDING_INFO, "tls.default",
                             "the stream will be encrypted with TLS: both hosts have usable credentials from "
                             "the same CA (option 'tls'=false sends it in clear text)");
        else if (req->tls_why_not && req->source && req->source->tls_ca)
                findings_add(findings, FINDING_INFO, "tls.default",
                             "the stream will not be encrypted by default although %s has TLS credentials: %s",
                             source_facts_name(req->source), req->tls_why_not);
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
        incoming_choose_tls(m, &req);
        findings = incoming_preflight(m, &req);
        cookie_add_host(&dict, m);
        g_variant_dict_insert_value(&dict, "findings", findings_to_variant(findings));
        done(g_variant_dict_end(&dict), NULL, userdata);
        return 0;
}

static void incoming_prepare_features(Incoming *in);

int migration_incoming_prepare(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                               GError **error) {
        g_auto(IncomingRequest) req = { 0 };
        g_autoptr(Findings) findings = NULL;
        g_autoptr(MigrateOptions) options = NULL;
        g_autoptr(DomainDef) def = NULL;
        g_autoptr(GVariant) backend_cookie = NULL;
        const char *source_name, *tls_peer_dn;
        Domain *d;
        bool created = false;
        gboolean persist;
        int r;

        r = incoming_request_parse(cookie, "Prepare", &req, error);
        if (r < 0)
                return r;
        incoming_choose_tls(m, &req);
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
        tls_peer_dn = req.source ? req.source->tls_client_dn : NULL;
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
        incoming_start_job(in, source_name);
        g_hash_table_insert(incoming_table(m), (gpointer) domain_uuid(d), in);

        in->backend_cookie = g_steal_pointer(&backend_cookie);
        in->tls_peer_dn = g_strdup(tls_peer_dn);
        in->features = incoming_features_new(m, d->def);

        job_set_phase(in->job, JOB_PHASE_PREPARE);
        if (breakpoint_hold(m->breakpoints, "destination-before-prepare", domain_uuid(d),
                            (BreakpointResume) incoming_prepare_features, in))
                return 0;
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

/* Released at destination-before-prepare: the hooks, then QEMU. */
static void incoming_prepare_features(Incoming *in) {
        int r = features_prepare(in->features, on_incoming_features_prepared, in);

        if (r < 0) {
                g_autoptr(GError) error = NULL;
                vm_error_set(&error, VM_ERROR_FAILED, "cannot set up the domain's host-side features: %s",
                             g_strerror(-r));
                on_incoming_features_prepared(error, in);
        }
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

struct FinishCall {
        Incoming *in;
        Manager *manager; /* in may go first */
        bool success;
        bool postcopy;
        bool answered; /* done came: Finish was answered */
        GError *feature_error; /* a required feature failed at finish: the guest is discarded */
        char *source_error;
        GVariant *source_stats;
        GVariant *source_backend; /* the source backend's migrate_finish_cookie, or NULL */
        /* Post-copy: how long the guest had been paused on the source when
         * it sent Finish, and when Finish arrived here (monotonic). */
        uint64_t source_paused_ms;
        uint64_t arrived_usec;
        /* The backend's answers, kept while held at destination-after-finish
         * (test builds): Finish, and the stream's end if it came meanwhile. */
        int finished_r;
        GError *finished_error;
        bool ended_deferred;
        int ended_r;
        GError *ended_error;
};

static void finish_call_free(FinishCall *call) {
        if (call->in && call->in->finish_call == call)
                call->in->finish_call = NULL;
        breakpoint_forget(call->manager->breakpoints, call);
        g_clear_error(&call->finished_error);
        g_clear_error(&call->ended_error);
        if (call->source_stats)
                g_variant_unref(call->source_stats);
        if (call->source_backend)
                g_variant_unref(call->source_backend);
        g_clear_error(&call->feature_error);
        g_free(call->source_error);
        g_free(call);
}

static void on_incoming_ended(int r, const GError *error, void *userdata);

/* Post-copy: the guest ran here from now on. Its pause is the source's
 * part up to Finish plus ours since; only Finish's trip is not counted. */
static void incoming_note_postcopy_downtime(FinishCall *call) {
        MigrationStats stats = call->in->job->stats;

        stats.downtime_ms =
                call->source_paused_ms + ((uint64_t) g_get_monotonic_time() - call->arrived_usec) / 1000;
        job_update_stats(call->in->job, &stats);
}

static void incoming_finished(FinishCall *call);
static void incoming_deliver_ended(FinishCall *call);

static void on_incoming_finished(int r, const GError *error, void *userdata) {
        FinishCall *call = userdata;

        call->finished_r = r;
        call->finished_error = error ? g_error_copy(error) : NULL;
        incoming_finished(call);
}

/* The backend ran the guest (or discarded it): answer Finish. */
static void incoming_finished(FinishCall *call) {
        if (breakpoint_hold(call->in->manager->breakpoints, "destination-after-finish",
                            domain_uuid(call->in->domain), (BreakpointResume) incoming_finished, call))
                return;
        Incoming *in = call->in;
        int r = call->finished_r;
        g_autoptr(GError) owned_error = g_steal_pointer(&call->finished_error);
        const GError *error = owned_error;
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
                if (!in->options->postcopy_resume)
                        incoming_note_postcopy_downtime(call);
                job_set_phase(in->job, JOB_PHASE_POSTCOPY);
                in->postcopy = true;
                reply = g_variant_ref_sink(incoming_reply(in));
                if (done)
                        done(reply, NULL, done_userdata);
                incoming_deliver_ended(call);
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
        /* ended follows for this call (or came while held); it frees it. */
        incoming_deliver_ended(call);
}

static void on_incoming_ended(int r, const GError *error, void *userdata) {
        FinishCall *call = userdata;
        Incoming *in = call->in;

        if (breakpoint_holding(in->manager->breakpoints, call)) {
                /* Held before answering Finish: after it. */
                call->ended_deferred = true;
                call->ended_r = r;
                call->ended_error = error ? g_error_copy(error) : NULL;
                return;
        }

        if (call->postcopy && call->success && call->answered) {
                if (r >= 0) {
                        const BackendOps *ops = in->domain->backend;
                        if (ops->migrate_incoming_stats) {
                                MigrationStats stats = in->job->stats;
                                ops->migrate_incoming_stats(in->domain->backend_data, &stats);
                                job_update_stats(in->job, &stats);
                        }
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
        finish_call_free(call);
        incoming_forget(in);
}

static void incoming_deliver_ended(FinishCall *call) {
        if (!call->ended_deferred)
                return;
        g_autoptr(GError) error = g_steal_pointer(&call->ended_error);
        call->ended_deferred = false;
        on_incoming_ended(call->ended_r, error, call);
}

static int incoming_finish_backend(FinishCall *call, GError **error) {
        Incoming *in = call->in;
        const BackendOps *ops = in->domain->backend;

        if (call->success && call->source_backend && ops->migrate_finish_accept) {
                g_autoptr(GError) local = NULL;
                if (ops->migrate_finish_accept(in->domain->backend_data, call->source_backend, &local) < 0) {
                        g_autofree char *host = manager_get_hostname();
                        g_prefix_error(&local, "%s: ", host);
                        if (call->postcopy) {
                                /* The guest can go back nowhere: it runs here anyway. */
                                log_warning("domain '%s': %s", in->domain->def->name, local->message);
                                job_add_warning(in->job, local->message);
                        } else {
                                /* Discarded here; the source runs it on. */
                                call->success = false;
                                if (!call->feature_error)
                                        call->feature_error = g_steal_pointer(&local);
                        }
                }
        }
        return ops->migrate_finish(in->domain->backend_data, call->success, call->postcopy,
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

static int incoming_finish_run(FinishCall *call, GError **error);

/* Released at destination-before-finish: a failure now answers Finish. */
static void incoming_finish_resume(FinishCall *call) {
        Incoming *in = call->in;
        IncomingDone done = in->done;
        void *done_userdata = in->userdata;
        g_autoptr(GError) error = NULL;

        if (incoming_finish_run(call, &error) < 0 && done)
                done(NULL, error, done_userdata);
}

static int incoming_finish(Incoming *in, bool success, bool postcopy, const char *source_error,
                           uint64_t source_paused_ms, GVariant *source_stats, GVariant *source_backend,
                           IncomingDone done, void *userdata, GError **error) {
        FinishCall *call = g_new0(FinishCall, 1);

        call->in = in;
        in->finish_call = call;
        call->manager = in->manager;
        call->success = success;
        call->postcopy = postcopy;
        call->source_error = g_strdup(source_error);
        call->source_stats = source_stats ? g_variant_ref(source_stats) : NULL;
        call->source_backend = source_backend ? g_variant_ref(source_backend) : NULL;
        call->source_paused_ms = source_paused_ms;
        call->arrived_usec = (uint64_t) g_get_monotonic_time();
        in->done = done;
        in->userdata = userdata;
        job_set_phase(in->job, JOB_PHASE_FINISH);
        if (breakpoint_hold(in->manager->breakpoints, "destination-before-finish", domain_uuid(in->domain),
                            (BreakpointResume) incoming_finish_resume, call))
                return 0;
        return incoming_finish_run(call, error);
}

/* Runs the guest here or discards it, as the source says. */
static int incoming_finish_run(FinishCall *call, GError **error) {
        Incoming *in = call->in;
        bool success = call->success, postcopy = call->postcopy;
        int r;

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

/* A guest a restart found arriving after its source was told it may
 * switch to post-copy, which the restart could not tell it did (paused,
 * StateReason postcopy-coming), settled by what its source says: switched,
 * it runs here ("runs", or "arriving" until QEMU has the switch); not
 * switched, the source runs its own copy and this one goes ("absent"). */
static const char *incoming_settle_coming(Domain *d, bool switched) {
        g_autoptr(GError) error = NULL;
        int r;

        if (!d->backend->migrate_settle_coming)
                return "unknown";
        r = d->backend->migrate_settle_coming(d->backend_data, switched, &error);
        if (r < 0) {
                log_error("domain '%s': %s", domain_name(d), error->message);
                return "unknown";
        }
        if (!switched)
                return "absent";
        return r > 0 ? "runs" : "arriving";
}

static bool domain_postcopy_coming(const Domain *d) {
        return d && d->state == DOMAIN_STATE_PAUSED && g_strcmp0(d->state_reason, "postcopy-coming") == 0;
}

int migration_incoming_finish(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                              GError **error) {
        g_autoptr(GVariant) stats = NULL, backend = NULL;
        const char *uuid, *source_error = NULL;
        gboolean success = false, postcopy = false;
        uint64_t paused_ms = 0; /* an older source does not say */
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
        (void) g_variant_lookup(cookie, "paused-ms", "t", &paused_ms);
        stats = g_variant_lookup_value(cookie, "stats", G_VARIANT_TYPE_VARDICT);
        backend = g_variant_lookup_value(cookie, "backend", G_VARIANT_TYPE_VARDICT);

        in = g_hash_table_lookup(incoming_table(m), uuid);
        if (!in) {
                /* A guest a restart kept undecided: the source's word
                 * settles it. Either way the source hears this host does
                 * not know the migration (it asks Arrival in post-copy,
                 * and runs its own copy after a pre-copy). */
                Domain *d = g_hash_table_lookup(m->domains, uuid);
                if (domain_postcopy_coming(d))
                        (void) incoming_settle_coming(d, postcopy);
                return vm_error_set(error, VM_ERROR_NO_JOB, "no incoming migration of domain %s here", uuid);
        }
        if (g_strcmp0(in->caller, caller) != 0)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "the incoming migration of domain %s belongs to another connection", uuid);
        if (in->done)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "the incoming migration of %s is busy", uuid);
        /* From another host: no more than a day is believed. */
        return incoming_finish(in, success, postcopy, source_error, MIN(paused_ms, (uint64_t) 86400000),
                               stats, backend, done, userdata, error);
}

typedef struct LostHalf {
        Manager *manager;
        Domain *domain;
        IncomingDone done;
        void *userdata;
} LostHalf;

/* Pause answers once the part is gone, so that the source's job ends
 * with nothing left running here. */
static void on_lost_half_stopped(int r, const GError *error, void *userdata) {
        LostHalf *lh = userdata;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        if (r < 0)
                log_error("domain '%s': cannot stop its part of a lost post-copy: %s",
                          domain_name(lh->domain), error ? error->message : "?");
        cookie_add_host(&dict, lh->manager);
        lh->done(g_variant_dict_end(&dict), NULL, lh->userdata);
        domain_unref(lh->domain);
        g_free(lh);
}

/* The source's QEMU died in the middle of a post-copy: the pages it still
 * held are gone, so the part here can never run. It goes now rather than
 * wait for pages for good. */
static int incoming_stop_lost_half(Manager *m, Domain *d, IncomingDone done, void *userdata,
                                   GError **error) {
        LostHalf *lh;
        int r;

        if (!d->backend->migrate_incoming_postcopy ||
            !d->backend->migrate_incoming_postcopy(d->backend_data))
                return vm_error_set(error, VM_ERROR_NO_JOB, "no post-copy of domain '%s' arrives here",
                                    domain_name(d));
        log_error("domain '%s': the source's QEMU is gone in the middle of the post-copy: the guest's pages "
                  "it "
                  "held are lost, and the part here can never run: stopping it",
                  domain_name(d));
        lh = g_new0(LostHalf, 1);
        *lh = (LostHalf){ .manager = m, .domain = domain_ref(d), .done = done, .userdata = userdata };
        r = d->backend->destroy(d->backend_data, on_lost_half_stopped, lh, error);
        if (r < 0) {
                domain_unref(lh->domain);
                g_free(lh);
        }
        return r;
}

int migration_incoming_pause(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        gboolean source_lost = false;
        const char *uuid;
        Domain *d;
        int r;

        r = cookie_check_size(cookie, "Pause", error);
        if (r < 0)
                return r;
        if (!(uuid = cookie_string(cookie, "uuid", 36, "Pause", error)))
                return -EPROTO;
        /* Optional, and of its type or ignored (a newer source's word). */
        (void) g_variant_lookup(cookie, "source-lost", "b", &source_lost);
        d = g_hash_table_lookup(m->domains, uuid);
        if (!d || !d->backend->migrate_pause)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no post-copy of domain %s here", uuid);
        if (source_lost)
                return incoming_stop_lost_half(m, d, done, userdata, error);
        r = d->backend->migrate_pause(d->backend_data, error);
        if (r < 0)
                return r;
        cookie_add_host(&dict, m);
        done(g_variant_dict_end(&dict), NULL, userdata);
        return 0;
}

/* What this host did with a guest the source sent: it runs here (the
 * source stops its copy), it is absent (the source runs its copy again),
 * or it is still arriving (ask again). switched: what the source says of
 * its stream (-1: nothing). */
static const char *incoming_arrival(Manager *m, const char *uuid, int switched) {
        Domain *d = g_hash_table_lookup(m->domains, uuid);

        if (g_hash_table_lookup(incoming_table(m), uuid))
                return "arriving";
        if (!d || !domain_state_is_active(d->state))
                return "absent";
        if (d->job && !job_phase_is_final(d->job->phase))
                return "arriving";
        if (domain_postcopy_coming(d))
                return switched < 0 ? "unknown" : incoming_settle_coming(d, switched);
        /* Paused for an arrival nobody drives any more: not decided. */
        if (d->state == DOMAIN_STATE_PAUSED && g_strcmp0(d->state_reason, "migration") == 0)
                return "unknown";
        return "runs";
}

/* The source asks before it switches to post-copy, on the connection
 * that made the migration: from the answer on, a restart here must keep
 * the arriving guest (backend.h). */
static int incoming_postcopy_coming(Manager *m, const char *uuid, const char *caller, GError **error) {
        Incoming *in = g_hash_table_lookup(incoming_table(m), uuid);
        const BackendOps *ops = in ? in->domain->backend : NULL;

        if (in && g_strcmp0(in->caller, caller) != 0)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "the incoming migration of domain %s belongs to another connection",
                                    uuid);
        if (!in || in->offline || !in->domain->backend_data || !ops->migrate_postcopy_coming)
                return 0;
        /* A source asks only once Prepare has answered. */
        if (in->done)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "the incoming migration of domain %s is still being prepared", uuid);
        int r = ops->migrate_postcopy_coming(in->domain->backend_data, error);
        if (r < 0)
                return r;
        in->switch_told = true;
        return 0;
}

int migration_incoming_arrival(Manager *m, GVariant *cookie, const char *caller, IncomingDone done,
                               void *userdata, GError **error) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        gboolean postcopy_switch = false, switched = false;
        const char *uuid, *arrival;
        int r;

        r = cookie_check_size(cookie, "Arrival", error);
        if (r < 0)
                return r;
        if (!(uuid = cookie_string(cookie, "uuid", 36, "Arrival", error)))
                return -EPROTO;
        (void) g_variant_lookup(cookie, "postcopy-switch", "b", &postcopy_switch);
        if (postcopy_switch) {
                r = incoming_postcopy_coming(m, uuid, caller, error);
                if (r < 0)
                        return r;
        }
        arrival = incoming_arrival(
                m, uuid, g_variant_lookup(cookie, "switched", "b", &switched) ? (int) !!switched : -1);
        log_info("the source of domain %s asks %s: %s", uuid,
                 postcopy_switch ? "whether it may switch to post-copy" : "how its arrival ended", arrival);
        cookie_add_host(&dict, m);
        g_variant_dict_insert(&dict, "arrival", "s", arrival);
        done(g_variant_dict_end(&dict), NULL, userdata);
        return 0;
}

/* Compares all of both (what is compared must not leak through timing). */
static bool token_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned char diff = la != lb;

        for (size_t i = 0; i < MIN(la, lb); i++)
                diff |= (unsigned char) (a[i] ^ b[i]);
        return diff == 0;
}

int migration_incoming_open_tunnel(Manager *m, GVariant *cookie, int *ret_fd, GError **error) {
        const char *uuid, *token;
        Incoming *in;
        int fd, r;

        r = cookie_check_size(cookie, "OpenTunnel", error);
        if (r < 0)
                return r;
        if (!(uuid = cookie_string(cookie, "uuid", 36, "OpenTunnel", error)) ||
            !(token = cookie_string(cookie, "tunnel-token", 64, "OpenTunnel", error)))
                return -EPROTO;
        in = g_hash_table_lookup(incoming_table(m), uuid);
        if (!in || !in->options->tunnelled || !in->tunnels)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no tunnelled migration of domain %s waits here", uuid);
        /* Every token is compared, so that the time taken says nothing
         * of which one came close. */
        TunnelEnd *t = NULL;
        for (unsigned i = 0; i < in->tunnels->len; i++) {
                TunnelEnd *c = in->tunnels->pdata[i];
                if (token_equal(c->token, token) && c->token[0] && !t)
                        t = c;
        }
        if (!t)
                return vm_error_set(error, VM_ERROR_NO_JOB,
                                    "the tunnel token for domain %s is not this attempt's, or was used already",
                                    uuid);
        fd = net_connect_unix(t->path);
        if (fd < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "cannot connect to the arriving guest's socket %s (tunnel '%s'): %s", t->path,
                                    t->name, g_strerror(-fd));
        /* One connection per token: a second one would be a stranger's. */
        memset(t->token, 0, sizeof(t->token));
        log_info("domain '%s': the source's tunnel '%s' is connected", domain_name(in->domain), t->name);
        *ret_fd = fd;
        return 0;
}

static void on_abandoned(GVariant *reply, const GError *error, void *userdata) {
        /* Nobody is waiting for this answer: the source is gone. */
}

static void incoming_abandon_one(Incoming *in, const char *why) {
        g_autoptr(GError) error = NULL;

        log_warning("domain '%s': %s; discarding its incoming migration", domain_name(in->domain), why);
        if (incoming_finish(in, false, false, why, 0, NULL, NULL, on_abandoned, NULL, &error) < 0) {
                log_error("domain '%s': cannot discard the incoming guest: %s", domain_name(in->domain),
                          error->message);
                job_end(in->job, JOB_PHASE_FAILED, why);
                incoming_forget(in);
        }
}

/* The stream switched to post-copy before Finish came: the source's guest
 * stopped for good, its QEMU still serves the pages. Nobody drives this
 * migration any more, and the guest can run only here: run it. */
static void incoming_run_orphan(Incoming *in, const char *why) {
        g_autoptr(GError) error = NULL;
        g_autofree char *note = g_strdup_printf(
                "%s after the stream switched to post-copy: the guest can run only here, so it runs "
                "without the source's Finish",
                why);

        log_warning("domain '%s': %s", domain_name(in->domain), note);
        job_add_warning(in->job, note);
        if (incoming_finish(in, true, true, NULL, 0, NULL, NULL, on_abandoned, NULL, &error) < 0) {
                log_error("domain '%s': cannot run the incoming guest: %s", domain_name(in->domain),
                          error->message);
                job_end(in->job, JOB_PHASE_FAILED, error->message);
                incoming_forget(in);
        }
}

/* The source's connection went after it was told it may switch to
 * post-copy: the switch may be on its way, and after it the guest can run
 * only here. The backend holds the arrival as a restart would, until the
 * stream or the source says which way it went; the job ends now. */
static void incoming_hold_coming(Incoming *in, const char *why) {
        const BackendOps *ops = in->domain->backend;
        g_autofree char *host = manager_get_hostname();
        g_autofree char *error = g_strdup_printf(
                "perform phase, on %s (destination): %s after the source was told it may switch to "
                "post-copy: the arriving guest is held (paused, postcopy-coming) until the stream or the "
                "source says whether it switched, and the domain's State tells how it ends",
                host, why);

        log_warning("domain '%s': %s after its source was told it may switch to post-copy: holding the "
                    "arrival",
                    domain_name(in->domain), why);
        if (in->job)
                job_end(in->job, JOB_PHASE_FAILED, error);
        ops->migrate_hold_coming(in->domain->backend_data);
        incoming_forget(in);
}

static bool incoming_in_postcopy(Incoming *in) {
        const BackendOps *ops = in->domain->backend;

        return !in->offline && in->domain->backend_data && ops->migrate_incoming_postcopy &&
                ops->migrate_incoming_postcopy(in->domain->backend_data);
}

static void incoming_abandon(Manager *m, const char *caller, const char *why) {
        g_autoptr(GPtrArray) orphans = g_ptr_array_new();
        g_autoptr(GPtrArray) held = g_ptr_array_new();
        g_autoptr(GPtrArray) gone = g_ptr_array_new();
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, incoming_table(m));
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Incoming *in = value;
                /* A guest in post-copy runs here and is only partly here:
                 * never discard it; its stream goes on without us. */
                if ((caller && g_strcmp0(in->caller, caller) != 0) || in->postcopy)
                        continue;
                /* Stopping after the source was told it may switch: the
                 * next vmigrated keeps the arrival until the stream or the
                 * source says whether it switched. */
                if (!caller && in->switch_told && !in->finish_call)
                        continue;
                if (!in->finish_call && incoming_in_postcopy(in)) {
                        /* Stopping: QEMU carries on, as after Finish. */
                        if (caller)
                                g_ptr_array_add(orphans, in);
                        continue;
                }
                if (caller && in->switch_told && !in->finish_call &&
                    in->domain->backend->migrate_hold_coming) {
                        g_ptr_array_add(held, in);
                        continue;
                }
                if (in->done) {
                        /* Prepare is under way: discarded once it answers. */
                        if (!in->vanished)
                                in->vanished = g_strdup(why);
                        continue;
                }
                g_ptr_array_add(gone, in);
        }
        for (unsigned i = 0; i < gone->len; i++)
                incoming_abandon_one(gone->pdata[i], why);
        for (unsigned i = 0; i < orphans->len; i++)
                incoming_run_orphan(orphans->pdata[i], why);
        for (unsigned i = 0; i < held->len; i++)
                incoming_hold_coming(held->pdata[i], why);
}

void migration_incoming_caller_vanished(Manager *m, const char *caller) {
        incoming_abandon(m, caller, "the source host disconnected");
}

void migration_incoming_shutdown(Manager *m) {
        g_autofree char *host = manager_get_hostname();
        g_autofree char *why = g_strdup_printf(
                "postcopy phase, on %s (%s): vmigrated stopped during post-copy: the post-copy goes "
                "on without this job (nothing was stopped); the next vmigrated on %s takes it up, and "
                "the domain's State tells how it ends",
                host, "destination", host);
        g_autofree char *why_told = g_strdup_printf(
                "perform phase, on %s (%s): vmigrated stopped after the source was told it may switch "
                "to post-copy: the arriving guest stays (nothing was stopped); the next vmigrated on %s "
                "keeps it until the stream or the source says whether it switched, and the domain's "
                "State tells how it ends",
                host, "destination", host);
        GHashTableIter iter;
        gpointer value;

        incoming_abandon(m, NULL, "vmigrated is stopping on the destination");
        /* A guest in post-copy stays, and so does one whose switch may be
         * on its way: their jobs end now, while this daemon still has its
         * name, for clients to see the end. */
        g_hash_table_iter_init(&iter, incoming_table(m));
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Incoming *in = value;
                if (!in->job || job_phase_is_final(in->job->phase))
                        continue;
                if (in->postcopy)
                        job_end(in->job, JOB_PHASE_FAILED, why);
                else if (in->switch_told && !in->finish_call) {
                        log_warning("domain '%s': vmigrated is stopping after its source was told it may "
                                    "switch to post-copy: keeping the arrival for the next vmigrated",
                                    domain_name(in->domain));
                        job_end(in->job, JOB_PHASE_FAILED, why_told);
                }
        }
}
