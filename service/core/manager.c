/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "tls-creds.h"

static int mkdir_p(const char *path, int mode, GError **error) {
        if (g_mkdir_with_parents(path, mode) < 0) {
                int r = -errno;
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot create directory %s: %s", path,
                                    g_strerror(-r));
        }
        return 0;
}

/* The host UUID identifies this host to its peers (a migration to the same
 * host is refused by it), so it is made once and then kept. A damaged file
 * is an error for the admin to look at, never silently replaced. */
static int manager_load_host_uuid(Manager *m, GError **error) {
        g_autofree char *path = g_build_filename(m->state_dir, "host-uuid", NULL);
        g_autofree char *contents = NULL;
        g_autoptr(GError) local = NULL;
        char uuid[37];

        if (g_file_get_contents(path, &contents, NULL, &local)) {
                g_strstrip(contents);
                if (!domain_uuid_parse(contents, uuid))
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "%s does not hold a UUID; fix or remove it (a new host UUID is "
                                            "then generated)",
                                            path);
                memcpy(m->host_uuid, uuid, sizeof(uuid));
                return 0;
        }
        if (!g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot read %s: %s", path, local->message);

        domain_uuid_generate(uuid);
        g_autofree char *line = g_strconcat(uuid, "\n", NULL);
        g_clear_error(&local);
        if (!g_file_set_contents_full(path, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot write %s: %s", path, local->message);
        memcpy(m->host_uuid, uuid, sizeof(uuid));
        log_info("generated host UUID %s", uuid);
        return 0;
}

static void manager_init_backends(Manager *m, const BackendOps *const *backends, size_t n_backends) {
        BackendContext ctx = {
                .event = m->event,
                .state_dir = m->state_dir,
                .runtime_dir = m->runtime_dir,
        };

        m->n_backends = n_backends;
        m->backends = g_new0(ManagerBackend, m->n_backends);
        for (size_t i = 0; i < m->n_backends; i++) {
                g_autoptr(GError) error = NULL;
                ManagerBackend *b = &m->backends[i];

                b->ops = backends[i];
                if (b->ops->init(&ctx, &b->data, &error) < 0) {
                        b->data = NULL;
                        b->unavailable = g_strdup(error ? error->message : "initialisation failed");
                        log_warning("backend '%s' unavailable: %s", b->ops->name, b->unavailable);
                }
        }
}

static char *manager_maintenance_path(Manager *m) {
        return g_build_filename(m->state_dir, "maintenance", NULL);
}

/* Maintenance is on while <state_dir>/maintenance exists: it holds who
 * set it and when, for the admin who finds it there. */
static bool manager_load_maintenance(Manager *m) {
        g_autofree char *path = manager_maintenance_path(m);

        if (!g_file_test(path, G_FILE_TEST_EXISTS))
                return false;
        log_notice("this host is in maintenance (%s exists): incoming migrations and starts are refused until "
                   "SetMaintenance(false) or 'vmigratectl maintenance off'",
                   path);
        return true;
}

int manager_set_maintenance(Manager *m, bool on, const char *who, GError **error) {
        g_autofree char *path = manager_maintenance_path(m);
        g_autoptr(GError) local = NULL;

        if (on == m->maintenance)
                return 0;
        if (on) {
                g_autoptr(GDateTime) now = g_date_time_new_now_utc();
                g_autofree char *when = g_date_time_format_iso8601(now);
                g_autofree char *text = g_strdup_printf("set by %s at %s\n", who ? who : "?", when);
                if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local))
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "cannot record maintenance mode (nothing changed): %s", local->message);
        } else if (unlink(path) < 0 && errno != ENOENT)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                    "cannot remove %s (maintenance stays on): %s", path, g_strerror(errno));
        m->maintenance = on;
        log_notice("maintenance mode %s by %s", on ? "on" : "off", who ? who : "?");
        if (m->observer && m->observer->host_changed)
                m->observer->host_changed(m, MANAGER_CHANGE_MAINTENANCE, m->observer_data);
        return 0;
}

int manager_check_not_in_maintenance(Manager *m, const char *what, GError **error) {
        g_autofree char *hostname = NULL;

        if (!m->maintenance)
                return 0;
        hostname = manager_get_hostname();
        return vm_error_set(error, VM_ERROR_IN_MAINTENANCE,
                            "%s is in maintenance: %s is refused until an admin ends it (SetMaintenance(false), "
                            "'vmigratectl maintenance off')",
                            hostname, what);
}

int manager_new(sd_event *event, const char *state_dir, const char *runtime_dir, const BackendOps *const *backends,
                size_t n_backends, Manager **ret, GError **error) {
        g_autoptr(Manager) m = g_new0(Manager, 1);
        int r;

        m->event = sd_event_ref(event);
        m->state_dir = g_strdup(state_dir);
        m->runtime_dir = g_strdup(runtime_dir);
        m->domains_dir = g_build_filename(state_dir, "domains", NULL);
        m->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, NULL);
        m->jobs = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, NULL);
        m->max_outgoing = MANAGER_DEFAULT_MAX_MIGRATIONS;
        m->max_incoming = MANAGER_DEFAULT_MAX_MIGRATIONS;
        m->tls_dir = g_strdup(TLS_CREDS_DEFAULT_DIR);

        r = mkdir_p(m->state_dir, 0755, error);
        if (r < 0)
                return r;
        r = mkdir_p(m->domains_dir, 0700, error);
        if (r < 0)
                return r;
        r = mkdir_p(m->runtime_dir, 0755, error);
        if (r < 0)
                return r;
        r = manager_load_host_uuid(m, error);
        if (r < 0)
                return r;
        m->archive = job_archive_open(m->state_dir, JOB_ARCHIVE_DEFAULT_MAX);
        m->last_job_id = job_archive_max_id(m->archive);
        job_journal_recover(m);
        m->maintenance = manager_load_maintenance(m);

        manager_init_backends(m, backends, n_backends);
        *ret = g_steal_pointer(&m);
        return 0;
}

static void manager_forget_domain(Manager *m, Domain *d) {
        g_hash_table_remove(m->domains, domain_uuid(d));
        d->manager = NULL;
        domain_unref(d);
}

/* Objects may outlive the manager (a reference held elsewhere): they are
 * told it is gone before their reference is dropped. */
static void release_job(gpointer p) {
        Job *j = p;
        j->manager = NULL;
        job_unref(j);
}

static void release_domain(gpointer p) {
        Domain *d = p;
        d->manager = NULL;
        domain_unref(d);
}

static void release_all(GHashTable *table, GDestroyNotify release) {
        GHashTableIter iter;
        gpointer value;

        if (!table)
                return;
        g_hash_table_iter_init(&iter, table);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                g_hash_table_iter_steal(&iter);
                release(value);
        }
        g_hash_table_unref(table);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        g_clear_pointer(&m->incoming, g_hash_table_unref);
        /* Emptied by migration_recover_free(). */
        g_clear_pointer(&m->recoveries, g_ptr_array_unref);
        g_clear_pointer(&m->arrival_queries, g_ptr_array_unref);
        /* Jobs first: they hold references to their domains. */
        release_all(g_steal_pointer(&m->jobs), release_job);
        release_all(g_steal_pointer(&m->domains), release_domain);
        for (size_t i = 0; i < m->n_backends; i++) {
                if (m->backends[i].data)
                        m->backends[i].ops->fini(m->backends[i].data);
                g_free(m->backends[i].unavailable);
        }
        g_free(m->backends);
        g_free(m->state_dir);
        g_free(m->runtime_dir);
        g_free(m->domains_dir);
        g_free(m->tls_dir);
        job_archive_free(m->archive);
        sd_event_unref(m->event);
        g_free(m);
        return NULL;
}

void manager_set_observer(Manager *m, const ManagerObserver *observer, void *userdata) {
        m->observer = observer;
        m->observer_data = userdata;
}

static bool manager_is_settled(Manager *m) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->domains);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (((Domain *) value)->settling)
                        return false;
        return true;
}

void manager_check_settled(Manager *m) {
        ManagerSettled settled = m->settled;

        if (!settled || !manager_is_settled(m))
                return;
        m->settled = NULL;
        settled(m, m->settled_data);
}

void manager_when_settled(Manager *m, ManagerSettled settled, void *userdata) {
        assert(!m->settled || !settled);
        m->settled = settled;
        m->settled_data = userdata;
        manager_check_settled(m);
}

void manager_notify_changed(Manager *m, Domain *d, DomainChange what) {
        if (m->observer && m->observer->domain_changed)
                m->observer->domain_changed(m, d, what, m->observer_data);
}

void manager_notify_lifecycle(Manager *m, Domain *d, const char *event, const char *detail) {
        if (m->observer && m->observer->domain_lifecycle)
                m->observer->domain_lifecycle(m, d, event, detail, m->observer_data);
}

void manager_notify_job_added(Manager *m, Job *j) {
        if (m->observer && m->observer->job_added)
                m->observer->job_added(m, j, m->observer_data);
}

void manager_notify_job_changed(Manager *m, Job *j, JobChange what) {
        if (m->observer && m->observer->job_changed)
                m->observer->job_changed(m, j, what, m->observer_data);
}

void manager_notify_job_ended(Manager *m, Job *j) {
        if (m->observer && m->observer->job_ended)
                m->observer->job_ended(m, j, m->observer_data);
}

void manager_remove_job(Manager *m, Job *j) {
        if (m->observer && m->observer->job_removed)
                m->observer->job_removed(m, j, m->observer_data);
        g_hash_table_remove(m->jobs, &j->id);
        j->manager = NULL;
        job_unref(j);
}

unsigned manager_count_running_jobs(Manager *m, JobKind kind) {
        GHashTableIter iter;
        gpointer value;
        unsigned n = 0;

        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Job *j = value;
                if (j->kind == kind && !job_phase_is_final(j->phase))
                        n++;
        }
        return n;
}

Job *manager_lookup_job(Manager *m, uint64_t id) {
        return g_hash_table_lookup(m->jobs, &id);
}

static void manager_notify_added(Manager *m, Domain *d) {
        if (m->observer && m->observer->domain_added)
                m->observer->domain_added(m, d, m->observer_data);
}

static void manager_notify_removed(Manager *m, Domain *d) {
        if (m->observer && m->observer->domain_removed)
                m->observer->domain_removed(m, d, m->observer_data);
}

void manager_set_peer_ops(Manager *m, const PeerOps *ops, void *ctx) {
        m->peer_ops = ops;
        m->peer_ctx = ctx;
}

Domain *manager_lookup(Manager *m, const char *name_or_uuid) {
        GHashTableIter iter;
        gpointer value;
        char uuid[37];

        if (!name_or_uuid)
                return NULL;
        if (domain_uuid_parse(name_or_uuid, uuid)) {
                Domain *d = g_hash_table_lookup(m->domains, uuid);
                if (d)
                        return d;
        }
        g_hash_table_iter_init(&iter, m->domains);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (g_str_equal(domain_name(value), name_or_uuid))
                        return value;
        return NULL;
}

static int compare_domain_names(gconstpointer a, gconstpointer b) {
        const Domain *const *x = a, *const *y = b;
        return g_strcmp0(domain_name(*x), domain_name(*y));
}

GPtrArray *manager_list_domains(Manager *m) {
        GPtrArray *list = g_ptr_array_new();
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->domains);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_ptr_array_add(list, value);
        g_ptr_array_sort(list, compare_domain_names);
        return list;
}

static ManagerBackend *manager_backend_for_type(Manager *m, const char *type, GError **error) {
        for (size_t i = 0; i < m->n_backends; i++) {
                ManagerBackend *b = &m->backends[i];
                if (!g_strv_contains((const char *const *) b->ops->domain_types, type))
                        continue;
                if (!b->data) {
                        vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                     "domain type '%s' needs the '%s' backend, which is unavailable on this "
                                     "host: %s",
                                     type, b->ops->name, b->unavailable);
                        return NULL;
                }
                return b;
        }
        g_autoptr(GString) known = g_string_new(NULL);
        for (size_t i = 0; i < m->n_backends; i++)
                for (const char *const *t = m->backends[i].ops->domain_types; *t; t++)
                        g_string_append_printf(known, "%s'%s'", known->len ? ", " : "", *t);
        vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND, "no backend runs domain type '%s'; vmigrate runs %s",
                     type, known->str);
        return NULL;
}

static char *manager_domain_path(Manager *m, const char *uuid) {
        g_autofree char *file = g_strconcat(uuid, ".xml", NULL);
        return g_build_filename(m->domains_dir, file, NULL);
}

int manager_save_domain(Manager *m, Domain *d, GError **error) {
        g_autofree char *path = manager_domain_path(m, domain_uuid(d));
        g_autofree char *xml = NULL;
        g_autoptr(GError) local = NULL;

        g_assert(d->persistent_def);
        xml = domain_def_format(d->persistent_def);
        if (!g_file_set_contents_full(path, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot save domain '%s' to %s: %s",
                                    domain_name(d), path, local->message);
        return 0;
}

int manager_remove_domain_file(Manager *m, Domain *d, GError **error) {
        g_autofree char *path = manager_domain_path(m, domain_uuid(d));

        if (unlink(path) < 0 && errno != ENOENT) {
                int r = -errno;
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot remove %s: %s", path,
                                    g_strerror(-r));
        }
        return 0;
}

int manager_remove_domain(Manager *m, Domain *d, GError **error) {
        g_autoptr(GError) local = NULL;
        int r;

        if (domain_is_persistent(d)) {
                r = manager_remove_domain_file(m, d, error);
                if (r < 0)
                        return r;
                manager_notify_lifecycle(m, d, "undefined", "removed");
        }
        /* Nothing will run it again: the backend's per-domain state goes with it. */
        if (d->backend && d->backend_data && d->backend->domain_forget && !domain_is_active(d) &&
            d->backend->domain_forget(d->backend_data, &local) < 0)
                log_warning("domain '%s' removed, but not all of its state: %s", domain_name(d),
                            local->message);
        manager_notify_removed(m, d);
        manager_forget_domain(m, d);
        return 0;
}

void manager_domain_stopped(Manager *m, Domain *d) {
        g_autoptr(GError) error = NULL;

        if (domain_is_persistent(d))
                return;
        log_info("transient domain '%s' stopped: removing it", domain_name(d));
        (void) manager_remove_domain(m, d, &error);
}

/* Makes a domain object and attaches the backend. def (taken) is the
 * definition it runs with; persistent_def (taken, may be NULL for a
 * transient domain) the one it is defined with. */
static int manager_add_domain(Manager *m, ManagerBackend *b, DomainDef *def, DomainDef *persistent_def,
                              Domain **ret, GError **error) {
        g_autoptr(Domain) d = g_new0(Domain, 1);
        int r;

        d->n_ref = 1;
        d->backend = b->ops;
        d->state = DOMAIN_STATE_SHUTOFF;
        d->state_reason = g_strdup("unknown");
        d->def = def;
        d->persistent_def = persistent_def;
        memcpy(d->uuid, def->uuid, sizeof(d->uuid));

        r = b->ops->domain_attach(b->data, d, &d->backend_data, error);
        if (r < 0) {
                d->backend = NULL;
                return r;
        }

        d->manager = m;
        g_hash_table_insert(m->domains, (gpointer) domain_uuid(d), d);
        *ret = g_steal_pointer(&d);
        manager_notify_added(m, *ret);
        return 0;
}

const BackendOps *manager_backend_ops_for_type(Manager *m, const char *type) {
        for (size_t i = 0; i < m->n_backends; i++)
                if (g_strv_contains((const char *const *) m->backends[i].ops->domain_types, type))
                        return m->backends[i].ops;
        return NULL;
}

void *manager_backend_data(Manager *m, const BackendOps *ops) {
        for (size_t i = 0; i < m->n_backends; i++)
                if (m->backends[i].ops == ops)
                        return m->backends[i].data;
        return NULL;
}

int manager_add_transient(Manager *m, DomainDef *def, Domain **ret, GError **error) {
        g_autoptr(DomainDef) owned = def;
        ManagerBackend *b = manager_backend_for_type(m, def->type, error);

        if (!b)
                return -EOPNOTSUPP;
        return manager_add_domain(m, b, g_steal_pointer(&owned), NULL, ret, error);
}

static int manager_check_unique(Manager *m, const DomainDef *def, Domain **ret_same, GError **error) {
        Domain *by_uuid = g_hash_table_lookup(m->domains, def->uuid);
        Domain *by_name = manager_lookup(m, def->name);

        if (by_name && by_name != by_uuid)
                return vm_error_set(error, VM_ERROR_DOMAIN_EXISTS,
                                    "a domain named '%s' already exists with UUID %s; choose another name "
                                    "or use that UUID to update it",
                                    def->name, domain_uuid(by_name));
        if (by_uuid && !g_str_equal(domain_name(by_uuid), def->name))
                return vm_error_set(error, VM_ERROR_DOMAIN_EXISTS,
                                    "UUID %s already belongs to domain '%s'; a domain cannot be renamed "
                                    "by redefining it",
                                    def->uuid, domain_name(by_uuid));
        *ret_same = by_uuid;
        return 0;
}

static int manager_parse_and_check(Manager *m, const char *xml, size_t len, DomainDef **ret_def,
                                   ManagerBackend **ret_backend, Domain **ret_same, GError **error) {
        g_autoptr(DomainDef) def = NULL;
        ManagerBackend *b;
        int r;

        r = domain_def_parse(xml, len, &def, error);
        if (r < 0)
                return r;
        b = manager_backend_for_type(m, def->type, error);
        if (!b)
                return -EOPNOTSUPP;
        if (b->ops->validate) {
                r = b->ops->validate(b->data, def, error);
                if (r < 0)
                        return r;
        }
        r = manager_check_unique(m, def, ret_same, error);
        if (r < 0)
                return r;

        *ret_def = g_steal_pointer(&def);
        *ret_backend = b;
        return 0;
}

static int manager_update_definition(Manager *m, Domain *d, ManagerBackend *b, DomainDef *new_def,
                                     GError **error) {
        g_autoptr(DomainDef) def = new_def;
        DomainChange what = DOMAIN_CHANGE_PERSISTENT;
        bool was_persistent = domain_is_persistent(d);
        int r;

        if (d->backend != b->ops)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<domain type='%s'>: domain '%s' runs on the '%s' backend; undefine it "
                                    "first to change its type",
                                    def->type, domain_name(d), d->backend->name);

        DomainDef *old = g_steal_pointer(&d->persistent_def);
        d->persistent_def = g_steal_pointer(&def);
        r = manager_save_domain(m, d, error);
        if (r < 0) {
                domain_def_free(d->persistent_def);
                d->persistent_def = old;
                return r;
        }
        domain_def_free(old);

        /* A running domain keeps its running definition until it stops. */
        if (!domain_is_active(d) && d->pending_op == DOMAIN_OP_NONE) {
                domain_def_free(d->def);
                d->def = domain_def_copy(d->persistent_def);
                what |= DOMAIN_CHANGE_CONFIG;
        }
        log_info("domain '%s' (%s) %s", domain_name(d), domain_uuid(d), was_persistent ? "updated" : "defined");
        manager_notify_lifecycle(m, d, "defined", was_persistent ? "updated" : "added");
        manager_notify_changed(m, d, what);
        return 0;
}

int manager_define_xml(Manager *m, const char *xml, size_t len, Domain **ret, GError **error) {
        g_autoptr(DomainDef) def = NULL;
        ManagerBackend *b;
        Domain *same = NULL, *d;
        int r;

        r = manager_parse_and_check(m, xml, len, &def, &b, &same, error);
        if (r < 0)
                return r;

        if (same) {
                r = manager_update_definition(m, same, b, g_steal_pointer(&def), error);
                if (r < 0)
                        return r;
                *ret = same;
                return 0;
        }

        DomainDef *persistent = domain_def_copy(def);
        r = manager_add_domain(m, b, g_steal_pointer(&def), persistent, &d, error);
        if (r < 0)
                return r;
        r = manager_save_domain(m, d, error);
        if (r < 0) {
                g_autoptr(GError) ignored = NULL;
                g_clear_pointer(&d->persistent_def, domain_def_free);
                (void) manager_remove_domain(m, d, &ignored);
                return r;
        }
        log_info("domain '%s' (%s) defined", domain_name(d), domain_uuid(d));
        manager_notify_lifecycle(m, d, "defined", "added");
        *ret = d;
        return 0;
}

typedef struct CreateCall {
        DomainOpDone done;
        void *userdata;
} CreateCall;

static void manager_create_started(Domain *d, int r, const GError *error, void *userdata) {
        g_autofree CreateCall *call = userdata;

        /* A transient domain that failed to start has nothing to keep it. */
        if (r < 0 && d->manager && !domain_is_active(d)) {
                g_autoptr(GError) ignored = NULL;
                (void) manager_remove_domain(d->manager, d, &ignored);
        }
        if (call->done)
                call->done(d, r, error, call->userdata);
}

int manager_create_xml(Manager *m, const char *xml, size_t len, DomainOpDone done, void *userdata, Domain **ret,
                       GError **error) {
        g_autoptr(DomainDef) def = NULL;
        ManagerBackend *b;
        Domain *same = NULL, *d;
        int r;

        r = manager_parse_and_check(m, xml, len, &def, &b, &same, error);
        if (r < 0)
                return r;
        g_autofree char *what = g_strdup_printf("creating domain '%s'", def->name);
        r = manager_check_not_in_maintenance(m, what, error);
        if (r < 0)
                return r;
        if (same)
                return vm_error_set(error, VM_ERROR_DOMAIN_EXISTS,
                                    "domain '%s' is already defined; start it with Start, or undefine it "
                                    "before creating a transient one",
                                    domain_name(same));

        r = manager_add_domain(m, b, g_steal_pointer(&def), NULL, &d, error);
        if (r < 0)
                return r;

        CreateCall *call = g_new0(CreateCall, 1);
        call->done = done;
        call->userdata = userdata;
        r = domain_start(d, manager_create_started, call, error);
        if (r < 0) {
                g_autoptr(GError) ignored = NULL;
                g_free(call);
                (void) manager_remove_domain(m, d, &ignored);
                return r;
        }
        *ret = d;
        return 0;
}

/* live: uuid → running DomainDef* found by the backends; a match is taken. */
static int manager_load_one(Manager *m, const char *path, const char *file_uuid, GHashTable *live) {
        g_autoptr(GError) error = NULL;
        g_autofree char *xml = NULL;
        g_autoptr(DomainDef) def = NULL;
        ManagerBackend *b;
        Domain *same = NULL, *d;
        size_t len;
        int r;

        if (!g_file_get_contents(path, &xml, &len, &error)) {
                log_error("skipping %s: %s", path, error->message);
                return -EIO;
        }
        r = manager_parse_and_check(m, xml, len, &def, &b, &same, &error);
        if (r < 0) {
                log_error("skipping %s: %s", path, error->message);
                return r;
        }
        if (same) {
                log_error("skipping %s: domain %s is already loaded", path, def->uuid);
                return -EEXIST;
        }
        if (!g_str_equal(def->uuid, file_uuid)) {
                log_error("skipping %s: it holds domain UUID %s; the file name must match", path, def->uuid);
                return -EINVAL;
        }
        DomainDef *running = NULL;
        if (g_hash_table_steal_extended(live, def->uuid, NULL, (gpointer *) &running))
                log_info("domain '%s' is running: keeping its running definition", def->name);
        else
                running = domain_def_copy(def);
        r = manager_add_domain(m, b, running, g_steal_pointer(&def), &d, &error);
        if (r < 0) {
                log_error("skipping %s: %s", path, error->message);
                return r;
        }
        log_debug("loaded domain '%s' from %s", domain_name(d), path);
        return 0;
}

/* Running domains the backends found that have no persistent definition:
 * transient ones, back as they were. */
static void manager_add_transient_survivors(Manager *m, GHashTable *live) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, live);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                g_autoptr(GError) error = NULL;
                DomainDef *def = value;
                ManagerBackend *b;
                Domain *d, *same = NULL;

                g_hash_table_iter_steal(&iter);
                b = manager_backend_for_type(m, def->type, &error);
                if (!b || manager_check_unique(m, def, &same, &error) < 0 || same) {
                        log_error("running domain '%s' (%s) cannot be published: %s", def->name, def->uuid,
                                  error ? error->message : "already known");
                        domain_def_free(def);
                        continue;
                }
                if (manager_add_domain(m, b, def, NULL, &d, &error) < 0) {
                        log_error("running domain '%s' cannot be re-attached: %s", def->name, error->message);
                        continue;
                }
                log_info("re-attached transient domain '%s'", domain_name(d));
        }
}

static GHashTable *manager_recover_running(Manager *m) {
        GHashTable *live = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) domain_def_free);

        for (size_t i = 0; i < m->n_backends; i++) {
                ManagerBackend *b = &m->backends[i];
                g_autoptr(GPtrArray) defs = NULL;

                if (!b->data || !b->ops->recover)
                        continue;
                defs = b->ops->recover(b->data);
                for (unsigned j = 0; defs && j < defs->len; j++) {
                        DomainDef *def = g_steal_pointer(&defs->pdata[j]);
                        if (!g_strv_contains((const char *const *) b->ops->domain_types, def->type) ||
                            g_hash_table_contains(live, def->uuid)) {
                                log_error("ignoring running domain %s: reported twice or by the wrong backend",
                                          def->uuid);
                                domain_def_free(def);
                                continue;
                        }
                        g_hash_table_insert(live, def->uuid, def);
                }
        }
        return live;
}

int manager_load_domains(Manager *m) {
        g_autoptr(GHashTable) live = manager_recover_running(m);
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) dir = g_dir_open(m->domains_dir, 0, &error);
        const char *name;
        unsigned n = 0;

        if (!dir) {
                log_error("cannot read %s: %s", m->domains_dir, error->message);
                return -EIO;
        }
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *path = NULL;
                char uuid[37];

                if (!g_str_has_suffix(name, ".xml"))
                        continue;
                g_autofree char *stem = g_strndup(name, strlen(name) - 4);
                path = g_build_filename(m->domains_dir, name, NULL);
                if (!domain_uuid_parse(stem, uuid) || !g_str_equal(uuid, stem)) {
                        log_warning("skipping %s: not named <uuid>.xml", path);
                        continue;
                }
                if (manager_load_one(m, path, uuid, live) >= 0)
                        n++;
        }
        log_info("loaded %u persistent domain(s) from %s", n, m->domains_dir);
        manager_add_transient_survivors(m, live);
        return 0;
}

char *manager_get_hostname(void) {
        char hostname[HOST_NAME_MAX + 1] = "";

        /* Read each time: the admin may rename the host while we run. */
        if (gethostname(hostname, sizeof(hostname) - 1) < 0)
                return g_strdup("localhost");
        return g_strdup(hostname);
}

bool manager_is_idle(Manager *m) {
        GHashTableIter iter;
        gpointer value;

        /* An ended job lingering for late readers keeps nothing busy; a
         * running one does. */
        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (!job_phase_is_final(((Job *) value)->phase))
                        return false;

        g_hash_table_iter_init(&iter, m->domains);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Domain *d = value;
                if (domain_is_active(d) || d->pending_op != DOMAIN_OP_NONE)
                        return false;
        }
        return true;
}

static void append_cpu_info(GString *xml) {
        g_autofree char *cpuinfo = NULL;
        g_autofree char *vendor = NULL, *model = NULL, *flags = NULL;
        unsigned cores = 0;

        if (g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL)) {
                g_auto(GStrv) lines = g_strsplit(cpuinfo, "\n", -1);
                for (char **l = lines; *l; l++) {
                        char *colon = strchr(*l, ':');
                        if (!colon)
                                continue;
                        g_autofree char *key = g_strstrip(g_strndup(*l, colon - *l));
                        const char *value = colon + 1;
                        if (g_str_equal(key, "processor"))
                                cores++;
                        else if (!vendor && g_str_equal(key, "vendor_id"))
                                vendor = g_strstrip(g_strdup(value));
                        else if (!model && g_str_equal(key, "model name"))
                                model = g_strstrip(g_strdup(value));
                        else if (!flags && g_str_equal(key, "flags"))
                                flags = g_strstrip(g_strdup(value));
                }
        }
        g_autofree char *s = g_markup_printf_escaped("    <cpu>\n"
                                                     "      <arch>%s</arch>\n"
                                                     "      <vendor>%s</vendor>\n"
                                                     "      <model>%s</model>\n"
                                                     "      <cores>%u</cores>\n",
                                                     "x86_64", vendor ? vendor : "unknown",
                                                     model ? model : "unknown", cores);
        g_string_append(xml, s);
        /* The host's CPU flags as the kernel names them: what a guest CPU
         * model may ask for on this host. */
        g_auto(GStrv) names = g_strsplit(flags ? flags : "", " ", -1);
        for (char **f = names; *f; f++) {
                if (!**f)
                        continue;
                g_autofree char *line = g_markup_printf_escaped("      <feature name='%s'/>\n", *f);
                g_string_append(xml, line);
        }
        g_string_append(xml, "    </cpu>\n");
}

static void append_memory_info(GString *xml) {
        g_autofree char *meminfo = NULL;
        unsigned long long total = 0, available = 0;

        if (g_file_get_contents("/proc/meminfo", &meminfo, NULL, NULL)) {
                const char *p = strstr(meminfo, "MemTotal:");
                if (p)
                        total = g_ascii_strtoull(p + strlen("MemTotal:"), NULL, 10);
                p = strstr(meminfo, "MemAvailable:");
                if (p)
                        available = g_ascii_strtoull(p + strlen("MemAvailable:"), NULL, 10);
        }
        g_string_append_printf(xml,
                               "    <memory unit='KiB'>%llu</memory>\n"
                               "    <memory-available unit='KiB'>%llu</memory-available>\n",
                               total, available);
}

char *manager_capabilities_xml(Manager *m) {
        GString *xml = g_string_new("<capabilities>\n  <host>\n");
        g_autofree char *hostname = manager_get_hostname();
        g_autofree char *head = g_markup_printf_escaped("    <uuid>%s</uuid>\n    <hostname>%s</hostname>\n",
                                                        m->host_uuid, hostname);
        g_string_append(xml, head);
        append_cpu_info(xml);
        append_memory_info(xml);
        g_string_append(xml, "  </host>\n");

        for (size_t i = 0; i < m->n_backends; i++) {
                ManagerBackend *b = &m->backends[i];
                g_autofree char *open = g_markup_printf_escaped("  <backend name='%s' available='%s'>\n",
                                                                b->ops->name, b->data ? "yes" : "no");
                g_string_append(xml, open);
                for (const char *const *t = b->ops->domain_types; *t; t++) {
                        g_autofree char *type = g_markup_printf_escaped("    <domain-type>%s</domain-type>\n",
                                                                        *t);
                        g_string_append(xml, type);
                }
                if (b->unavailable) {
                        g_autofree char *why = g_markup_printf_escaped("    <unavailable>%s</unavailable>\n",
                                                                       b->unavailable);
                        g_string_append(xml, why);
                }
                if (b->data && b->ops->append_capabilities)
                        b->ops->append_capabilities(b->data, xml);
                g_string_append(xml, "  </backend>\n");
        }
        g_string_append(xml, "</capabilities>\n");
        return g_string_free(xml, false);
}

/* What this host adds to a backend's own support table: option 'tls' needs
 * usable credentials here. Changes support in place; returns the text its
 * why_not points to (the caller frees it after use), or NULL. */
static char *host_limits_option_support(Manager *m, MigrateOptionSupport *support, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (!g_str_equal(support[i].key, "tls") || !support[i].supported)
                        continue;
                g_autoptr(TlsCreds) tls = tls_creds_load(m->tls_dir, time(NULL));
                char *why = tls_creds_why_not(tls);
                if (why) {
                        support[i].supported = false;
                        support[i].why_not = why;
                        support[i].default_value = NULL;
                }
                return why;
        }
        return NULL;
}

GVariant *manager_describe_backends(Manager *m) {
        GVariantBuilder all;

        g_variant_builder_init(&all, G_VARIANT_TYPE("a{sa{sv}}"));
        for (size_t i = 0; i < m->n_backends; i++) {
                ManagerBackend *b = &m->backends[i];
                GVariantBuilder one;

                g_variant_builder_init(&one, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&one, "{sv}", "description", g_variant_new_string(b->ops->description));
                g_variant_builder_add(&one, "{sv}", "domain-types",
                                      g_variant_new_strv((const char *const *) b->ops->domain_types, -1));
                g_variant_builder_add(&one, "{sv}", "available", g_variant_new_boolean(b->data != NULL));
                if (b->unavailable)
                        g_variant_builder_add(&one, "{sv}", "unavailable-reason",
                                              g_variant_new_string(b->unavailable));
                if (b->data && b->ops->migrate_options) {
                        size_t n = 0;
                        const MigrateOptionSupport *support = b->ops->migrate_options(b->data, &n);
                        g_autofree MigrateOptionSupport *here = g_memdup2(support, n * sizeof(*support));
                        g_autofree char *why = host_limits_option_support(m, here, n);
                        g_variant_builder_add(&one, "{sv}", "migration-options", migrate_options_describe(here, n));
                }
                if (b->data && b->ops->describe) {
                        g_autoptr(GVariant) extra = g_variant_ref_sink(b->ops->describe(b->data));
                        GVariantIter iter;
                        const char *key;
                        GVariant *value;

                        g_variant_iter_init(&iter, extra);
                        while (g_variant_iter_loop(&iter, "{&sv}", &key, &value))
                                g_variant_builder_add(&one, "{sv}", key, value);
                }
                g_variant_builder_add(&all, "{sa{sv}}", b->ops->name, &one);
        }
        return g_variant_builder_end(&all);
}
