/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "backend.h"
#include "domain-state.h"
#include "domain-xml.h"

typedef struct Manager Manager;

/* Which properties changed, for PropertiesChanged. */
typedef enum DomainChange {
        DOMAIN_CHANGE_STATE = 1 << 0,        /* State, Active */
        DOMAIN_CHANGE_STATE_REASON = 1 << 1, /* StateReason */
        DOMAIN_CHANGE_PERSISTENT = 1 << 2,   /* Persistent */
        DOMAIN_CHANGE_CONFIG = 1 << 3,       /* Name cannot change; MemoryBytes, VCPUs */
        DOMAIN_CHANGE_JOB = 1 << 4,          /* Job */
        DOMAIN_CHANGE_DISPLAYS = 1 << 5,     /* Displays */
} DomainChange;

typedef enum DomainOp {
        DOMAIN_OP_NONE,
        DOMAIN_OP_START,
        DOMAIN_OP_SHUTDOWN,
        DOMAIN_OP_DESTROY,
        DOMAIN_OP_SUSPEND,
        DOMAIN_OP_RESUME,
        _DOMAIN_OP_MAX,
} DomainOp;

const char *domain_op_to_string(DomainOp op);

typedef struct Domain {
        unsigned n_ref;
        Manager *manager; /* NULL once removed from the manager */
        /* The key in the manager's table: never changes, unlike def, which
         * DefineXML and stopping replace. */
        char uuid[37];

        /* The running definition while active, else the persistent one. */
        DomainDef *def;
        /* The persistent definition; NULL for a transient domain. While the
         * domain is active it may differ from def (DefineXML on a running
         * domain changes the next boot only). */
        DomainDef *persistent_def;

        const BackendOps *backend;
        void *backend_data;

        DomainState state;
        uint64_t state_since_usec; /* monotonic: when it entered state (0: not since this daemon started) */
        char *state_reason;

        DomainOp pending_op;
        /* The backend is still finding out what its domain is doing after
         * a restart of vmigrated: the daemon answers nobody until every
         * domain has settled (a resume must find its post-copy). */
        bool settling;
        struct Job *job; /* the migration in progress, or NULL (borrowed: the manager owns jobs) */
        GVariant *last_job_stats; /* a{sv} of the last job that ended, for GetJobStats */
        /* Where a client reaches the guest's displays, a(ssa{sv}) (type, URI,
         * details) as the backend found them; NULL: none. After the guest
         * left by migration, the destination's (details "migrated-to"). */
        GVariant *displays;
} Domain;

/* Completion of a domain operation: r >= 0, or negative errno with error set. */
typedef void (*DomainOpDone)(Domain *d, int r, const GError *error, void *userdata);

Domain *domain_ref(Domain *d);
Domain *domain_unref(Domain *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Domain, domain_unref)

const char *domain_name(const Domain *d);
const char *domain_uuid(const Domain *d);
static inline bool domain_is_persistent(const Domain *d) {
        return d->persistent_def != NULL;
}
static inline bool domain_is_active(const Domain *d) {
        return domain_state_is_active(d->state);
}

/* Each checks the state synchronously (VM_ERROR_INVALID_STATE naming the
 * state and what to do), then hands over to the backend; done is called
 * once, from the event loop, unless the function returned < 0. */
int domain_start(Domain *d, DomainOpDone done, void *userdata, GError **error);
int domain_shutdown(Domain *d, uint64_t timeout_usec, DomainOpDone done, void *userdata, GError **error);
int domain_destroy(Domain *d, DomainOpDone done, void *userdata, GError **error);
int domain_suspend(Domain *d, DomainOpDone done, void *userdata, GError **error);
int domain_resume(Domain *d, DomainOpDone done, void *userdata, GError **error);

/* Removes the persistent definition. An active domain carries on as a
 * transient one and disappears when it stops. */
int domain_undefine(Domain *d, GError **error);

/* XML of def (live while active); secure: with passwords (see
 * domain_def_format_public). */
char *domain_get_xml(const Domain *d, bool secure);

/*
 * For backends: the domain entered `state` with `reason` (libvirt-style
 * reason words, e.g. "booted", "user", "shutdown", "destroyed", "crashed").
 * event/detail, when event is non-NULL, is emitted as the Lifecycle signal
 * (e.g. "started"/"booted").
 */
void domain_backend_event(Domain *d, DomainState state, const char *reason, const char *event, const char *detail);
/* The backend found where the guest's displays listen: displays is
 * a(ssa{sv}) (taken if floating), NULL for none. PropertiesChanged when it
 * differs from what was there. */
void domain_backend_displays(Domain *d, GVariant *displays);
/* The backend starts or stops finding out what its domain is doing. */
void domain_backend_settling(Domain *d, bool settling);
/* Something the backend could not do but the domain runs without (an
 * interface left unconnected): a warning on the domain's job, prefixed
 * with this host's name, or in the log when there is no job. */
void domain_backend_warning(Domain *d, const char *message);

/* The Migrate options the domain's backend honours and their defaults
 * (NULL with *ret_n 0 for a backend that cannot migrate). */
const MigrateOptionSupport *domain_migrate_option_support(const Domain *d, size_t *ret_n);
