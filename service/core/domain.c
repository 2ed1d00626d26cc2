/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "domain.h"
#include "errors.h"
#include "log.h"
#include "manager.h"

static const char *const domain_state_table[_DOMAIN_STATE_MAX] = {
        [DOMAIN_STATE_SHUTOFF] = "shutoff",
        [DOMAIN_STATE_RUNNING] = "running",
        [DOMAIN_STATE_PAUSED] = "paused",
        [DOMAIN_STATE_SHUTDOWN] = "shutdown",
        [DOMAIN_STATE_CRASHED] = "crashed",
};

const char *domain_state_to_string(DomainState state) {
        if ((unsigned) state >= _DOMAIN_STATE_MAX)
                return NULL;
        return domain_state_table[state];
}

static const char *const domain_op_table[_DOMAIN_OP_MAX] = {
        [DOMAIN_OP_NONE] = "none",
        [DOMAIN_OP_START] = "start",
        [DOMAIN_OP_SHUTDOWN] = "shutdown",
        [DOMAIN_OP_DESTROY] = "destroy",
        [DOMAIN_OP_SUSPEND] = "suspend",
        [DOMAIN_OP_RESUME] = "resume",
};

const char *domain_op_to_string(DomainOp op) {
        if ((unsigned) op >= _DOMAIN_OP_MAX)
                return NULL;
        return domain_op_table[op];
}

Domain *domain_ref(Domain *d) {
        if (d)
                d->n_ref++;
        return d;
}

Domain *domain_unref(Domain *d) {
        if (!d)
                return NULL;
        g_assert(d->n_ref > 0);
        if (--d->n_ref > 0)
                return NULL;

        g_assert(!d->manager);
        if (d->backend && d->backend_data)
                d->backend->domain_detach(d->backend_data);
        domain_def_free(d->def);
        domain_def_free(d->persistent_def);
        g_free(d->state_reason);
        if (d->last_job_stats)
                g_variant_unref(d->last_job_stats);
        if (d->displays)
                g_variant_unref(d->displays);
        g_free(d);
        return NULL;
}

const char *domain_name(const Domain *d) {
        return d->def->name;
}

const char *domain_uuid(const Domain *d) {
        return d->uuid;
}

char *domain_get_xml(const Domain *d, bool secure) {
        return secure ? domain_def_format(d->def) : domain_def_format_public(d->def);
}

/* One operation at a time, except that destroy may interrupt a shutdown
 * that hangs: that is what destroy is for. */
static int domain_check_idle(Domain *d, DomainOp op, GError **error) {
        if (d->pending_op == DOMAIN_OP_NONE)
                return 0;
        if (op == DOMAIN_OP_DESTROY && d->pending_op == DOMAIN_OP_SHUTDOWN)
                return 0;
        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                            "domain '%s' is busy: '%s' is in progress; wait for it to finish%s",
                            domain_name(d), domain_op_to_string(d->pending_op),
                            d->pending_op == DOMAIN_OP_SHUTDOWN ? " or use Destroy" : "");
}

static int domain_check_state(Domain *d, DomainOp op, GError **error) {
        const char *state = domain_state_to_string(d->state);
        const char *name = domain_name(d);

        switch (op) {
        case DOMAIN_OP_START:
                if (domain_is_active(d))
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "domain '%s' is already %s", name, state);
                return 0;
        case DOMAIN_OP_SHUTDOWN:
                if (d->state == DOMAIN_STATE_SHUTDOWN)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "domain '%s' is already shutting down; use Destroy to stop it now",
                                            name);
                G_GNUC_FALLTHROUGH;
        case DOMAIN_OP_DESTROY:
                if (!domain_is_active(d))
                        return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' is not running (%s)",
                                            name, state);
                return 0;
        case DOMAIN_OP_SUSPEND:
                if (d->state == DOMAIN_STATE_PAUSED)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' is already paused",
                                            name);
                if (d->state != DOMAIN_STATE_RUNNING)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "domain '%s' is %s; only a running domain can be suspended", name,
                                            state);
                return 0;
        case DOMAIN_OP_RESUME:
                if (d->state == DOMAIN_STATE_RUNNING)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' is already running",
                                            name);
                if (d->state != DOMAIN_STATE_PAUSED)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "domain '%s' is %s; only a paused domain can be resumed", name,
                                            state);
                return 0;
        default:
                g_assert_not_reached();
        }
}

typedef struct DomainOpCall {
        Domain *domain; /* reference */
        DomainOp op;
        DomainOpDone done;
        void *userdata;
} DomainOpCall;

static void domain_op_complete(int r, const GError *error, void *userdata) {
        DomainOpCall *call = userdata;
        g_autoptr(Domain) d = call->domain;

        /* A destroy that overtook a shutdown settles both: the shutdown's
         * completion then finds pending_op already cleared. */
        if (d->pending_op == call->op || call->op == DOMAIN_OP_DESTROY)
                d->pending_op = DOMAIN_OP_NONE;
        if (r < 0)
                log_warning("domain '%s': %s failed: %s", domain_name(d), domain_op_to_string(call->op),
                            error ? error->message : g_strerror(-r));
        /* Undefined while starting, a domain that did not start has
         * nothing left to keep it: it goes as if it had stopped. */
        if (r < 0 && d->manager && !domain_is_active(d) && d->pending_op == DOMAIN_OP_NONE)
                manager_domain_stopped(d->manager, d);
        if (call->done)
                call->done(d, r, error, call->userdata);
        g_free(call);
}

/* A migration drives the domain's hypervisor process while it runs: a
 * lifecycle call in the middle would pull the guest from under it. Only
 * the destination of a post-copy, where the guest already runs, may
 * Destroy it (the post-copy then fails on both hosts). */
static int domain_check_job(Domain *d, DomainOp op, GError **error) {
        const Job *j = d->job;
        const char *name = domain_name(d);

        if (!j || job_phase_is_final(j->phase))
                return 0;
        if (j->kind == JOB_MIGRATION_IN && j->phase == JOB_PHASE_POSTCOPY) {
                if (op == DOMAIN_OP_DESTROY)
                        return 0;
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' runs here in post-copy (job %" G_GUINT64_FORMAT
                                    ") while its last pages arrive from %s: wait for the job to end; only "
                                    "Destroy is possible now",
                                    name, j->id, j->peer);
        }
        if (j->kind == JOB_MIGRATION_IN)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' is arriving from %s (job %" G_GUINT64_FORMAT
                                    ", phase %s): cancel the migration on the source host",
                                    name, j->peer, j->id, job_phase_to_string(j->phase));
        if (j->phase == JOB_PHASE_POSTCOPY)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' runs on %s in post-copy (job %" G_GUINT64_FORMAT
                                    ") and fetches its missing memory from here: %s",
                                    name, j->peer, j->id,
                                    op == DOMAIN_OP_DESTROY || op == DOMAIN_OP_SHUTDOWN
                                            ? "stopping it here would lose the guest; stop it on the destination host"
                                            : "it is controlled on the destination host now");
        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                            "domain '%s' is migrating to %s (job %" G_GUINT64_FORMAT
                            ", phase %s): call AbortJob first, or wait for the job to end",
                            name, j->peer, j->id, job_phase_to_string(j->phase));
}

static int domain_run_op(Domain *d, DomainOp op, uint64_t timeout_usec, DomainOpDone done, void *userdata,
                         GError **error) {
        int r;

        r = domain_check_idle(d, op, error);
        if (r < 0)
                return r;
        r = domain_check_job(d, op, error);
        if (r < 0)
                return r;
        r = domain_check_state(d, op, error);
        if (r < 0)
                return r;

        DomainOpCall *call = g_new0(DomainOpCall, 1);
        *call = (DomainOpCall) {
                .domain = domain_ref(d),
                .op = op,
                .done = done,
                .userdata = userdata,
        };

        switch (op) {
        case DOMAIN_OP_START:
                r = d->backend->start(d->backend_data, d->def, domain_op_complete, call, error);
                break;
        case DOMAIN_OP_SHUTDOWN:
                r = d->backend->shutdown(d->backend_data, timeout_usec, domain_op_complete, call, error);
                break;
        case DOMAIN_OP_DESTROY:
                r = d->backend->destroy(d->backend_data, domain_op_complete, call, error);
                break;
        case DOMAIN_OP_SUSPEND:
                r = d->backend->suspend(d->backend_data, domain_op_complete, call, error);
                break;
        case DOMAIN_OP_RESUME:
                r = d->backend->resume(d->backend_data, domain_op_complete, call, error);
                break;
        default:
                g_assert_not_reached();
        }
        if (r < 0) {
                domain_unref(call->domain);
                g_free(call);
                return r;
        }

        d->pending_op = op;
        return 0;
}

int domain_start(Domain *d, DomainOpDone done, void *userdata, GError **error) {
        g_autofree char *what = g_strdup_printf("starting domain '%s'", domain_name(d));
        int r;

        if (d->manager) {
                r = manager_check_not_in_maintenance(d->manager, what, error);
                if (r < 0)
                        return r;
        }
        /* A crashed domain is started from its persistent definition, like a
         * shut-off one; a transient one never stays around to be restarted. */
        return domain_run_op(d, DOMAIN_OP_START, 0, done, userdata, error);
}

int domain_shutdown(Domain *d, uint64_t timeout_usec, DomainOpDone done, void *userdata, GError **error) {
        return domain_run_op(d, DOMAIN_OP_SHUTDOWN, timeout_usec, done, userdata, error);
}

int domain_destroy(Domain *d, DomainOpDone done, void *userdata, GError **error) {
        return domain_run_op(d, DOMAIN_OP_DESTROY, 0, done, userdata, error);
}

int domain_suspend(Domain *d, DomainOpDone done, void *userdata, GError **error) {
        return domain_run_op(d, DOMAIN_OP_SUSPEND, 0, done, userdata, error);
}

int domain_resume(Domain *d, DomainOpDone done, void *userdata, GError **error) {
        return domain_run_op(d, DOMAIN_OP_RESUME, 0, done, userdata, error);
}

int domain_undefine(Domain *d, GError **error) {
        g_autoptr(Domain) ref = domain_ref(d);
        Manager *m = d->manager;
        int r;

        if (!m || !domain_is_persistent(d))
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' is transient: it has no definition to remove; "
                                    "it disappears when it stops",
                                    domain_name(d));

        if (domain_is_active(d) || d->pending_op != DOMAIN_OP_NONE) {
                r = manager_remove_domain_file(m, d, error);
                if (r < 0)
                        return r;
                g_clear_pointer(&d->persistent_def, domain_def_free);
                manager_notify_lifecycle(m, d, "undefined", "removed");
                manager_notify_changed(m, d, DOMAIN_CHANGE_PERSISTENT);
                return 0;
        }

        return manager_remove_domain(m, d, error);
}

void domain_backend_settling(Domain *d, bool settling) {
        if (d->settling == settling)
                return;
        d->settling = settling;
        if (!settling && d->manager)
                manager_check_settled(d->manager);
}

void domain_backend_warning(Domain *d, const char *message) {
        g_autofree char *host = NULL, *text = NULL;

        if (!d->job) {
                log_warning("domain '%s': %s", domain_name(d), message);
                return;
        }
        host = manager_get_hostname();
        text = g_strdup_printf("%s: %s", host, message);
        job_add_warning(d->job, text);
}

void domain_backend_event(Domain *d, DomainState state, const char *reason, const char *event, const char *detail) {
        g_autoptr(Domain) ref = domain_ref(d);
        Manager *m = d->manager;
        DomainChange what = 0;
        DomainState old = d->state;

        if (state != d->state) {
                d->state = state;
                d->state_since_usec = (uint64_t) g_get_monotonic_time();
                what |= DOMAIN_CHANGE_STATE;
        }
        if (g_strcmp0(reason, d->state_reason) != 0) {
                g_free(d->state_reason);
                d->state_reason = g_strdup(reason);
                what |= DOMAIN_CHANGE_STATE_REASON;
        }

        log_info("domain '%s': %s (%s)%s%s%s%s", domain_name(d), domain_state_to_string(state),
                 reason ? reason : "unknown", event ? ", event " : "", event ? event : "", event ? "/" : "",
                 event && detail ? detail : "");

        /* Leaving the active states: the running definition makes way for
         * the persistent one, which DefineXML may have changed meanwhile. */
        if (domain_state_is_active(old) && !domain_state_is_active(state) && d->persistent_def &&
            !domain_def_equal(d->def, d->persistent_def)) {
                domain_def_free(d->def);
                d->def = domain_def_copy(d->persistent_def);
                what |= DOMAIN_CHANGE_CONFIG;
        }

        if (!m)
                return;
        if (what)
                manager_notify_changed(m, d, what);
        if (event)
                manager_notify_lifecycle(m, d, event, detail);
        if (domain_state_is_active(old) && !domain_state_is_active(state))
                manager_domain_stopped(m, d);
}

void domain_backend_displays(Domain *d, GVariant *displays) {
        g_autoptr(GVariant) sunk = displays ? g_variant_ref_sink(displays) : NULL;

        if (sunk && g_variant_n_children(sunk) == 0)
                g_clear_pointer(&sunk, g_variant_unref);
        if ((!sunk && !d->displays) || (sunk && d->displays && g_variant_equal(sunk, d->displays)))
                return;
        if (d->displays)
                g_variant_unref(d->displays);
        d->displays = g_steal_pointer(&sunk);
        if (d->manager)
                manager_notify_changed(d->manager, d, DOMAIN_CHANGE_DISPLAYS);
}

const MigrateOptionSupport *domain_migrate_option_support(const Domain *d, size_t *ret_n) {
        *ret_n = 0;
        if (!d->backend->migrate_options)
                return NULL;
        return d->backend->migrate_options(manager_backend_data(d->manager, d->backend), ret_n);
}
