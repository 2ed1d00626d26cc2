/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "domain.h"
#include "job.h"
#include "job-archive.h"
#include "peer.h"
#include "test-breakpoints.h"

/* Two at once each way: enough to drain a host, few enough that each
 * still gets a useful share of the link. */
#define MANAGER_DEFAULT_MAX_MIGRATIONS 2

/* What changed on the host itself, for PropertiesChanged. */
typedef enum ManagerChange {
        MANAGER_CHANGE_MAINTENANCE = 1 << 0,
} ManagerChange;

/* How the bus layer (or a test) hears about what happens in the core. */
typedef struct ManagerObserver {
        void (*domain_added)(Manager *m, Domain *d, void *userdata);
        void (*domain_removed)(Manager *m, Domain *d, void *userdata);
        void (*domain_changed)(Manager *m, Domain *d, DomainChange what, void *userdata);
        void (*domain_lifecycle)(Manager *m, Domain *d, const char *event, const char *detail, void *userdata);
        void (*job_added)(Manager *m, Job *j, void *userdata);
        void (*job_changed)(Manager *m, Job *j, JobChange what, void *userdata);
        void (*job_ended)(Manager *m, Job *j, void *userdata);
        void (*job_removed)(Manager *m, Job *j, void *userdata);
        void (*host_changed)(Manager *m, ManagerChange what, void *userdata);
} ManagerObserver;

typedef void (*ManagerSettled)(Manager *m, void *userdata);

typedef struct ManagerBackend {
        const BackendOps *ops;
        void *data;          /* NULL when unavailable */
        char *unavailable;   /* why init failed, or NULL */
} ManagerBackend;

struct Manager {
        sd_event *event;
        char *state_dir;
        char *runtime_dir;
        char *domains_dir; /* <state_dir>/domains: <uuid>.xml per persistent domain */
        char host_uuid[37];

        GHashTable *domains; /* canonical uuid string → Domain* (owns a reference) */
        GHashTable *jobs;    /* &job->id → Job* (owns a reference) */
        uint64_t last_job_id;
        JobArchive *archive; /* the jobs that ended, across restarts */
        /* Maintenance mode: arrivals and starts refused; kept across
         * restarts in <state_dir>/maintenance. */
        bool maintenance;
        GHashTable *incoming; /* uuid → incoming migration: migration.c's, NULL until one arrives */
        GPtrArray *recoveries; /* migrations settled after a restart: recover.c's, NULL until one starts */
        GPtrArray *arrival_queries; /* recover.c's ArrivalQuery*, NULL until one starts */

        bool shutting_down;
        unsigned max_outgoing; /* migrations at once; 0 = no limit */
        unsigned max_incoming;
        /* Admin hooks (hooks.h): the directory, borrowed from the daemon's
         * arguments (NULL = none), and how long one may run. */
        const char *hooks_dir;
        uint64_t hook_timeout_usec;
        /* The admin's network table (networks.h), borrowed like hooks_dir;
         * NULL = none (only "default" → virbr0). */
        const char *networks_dir;
        /* The admin's convergence policies (policy.h), borrowed likewise;
         * NULL = the built-in ones only. */
        const char *policies_dir;
        /* TLS credentials of the migration stream (tls-creds.h), read at
         * each migration; and whether memory may cross in clear text. */
        char *tls_dir;
        bool require_encryption;
        /* What the link of this host carries (bytes/s; OutgoingBandwidthMbps=),
         * shared by the migrations leaving it; 0: not given. */
        uint64_t outgoing_bandwidth;

        const PeerOps *peer_ops; /* how to reach other hosts (the bus layer's) */
        void *peer_ctx;

        ManagerBackend *backends;
        size_t n_backends;

        const ManagerObserver *observer;
        void *observer_data;

        ManagerSettled settled; /* waiting for every domain to settle */
        void *settled_data;

        Breakpoints *breakpoints; /* test builds' stopping points (test-breakpoints.h); owned by main.c */
};

/* Creates the state and runtime directories if needed, loads or creates
 * the host UUID, and initialises every backend of the table (borrowed: it
 * must outlive the manager; an unavailable backend is recorded, not
 * fatal). */
int manager_new(sd_event *event, const char *state_dir, const char *runtime_dir, const BackendOps *const *backends,
                size_t n_backends, Manager **ret, GError **error);
Manager *manager_free(Manager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)

void manager_set_observer(Manager *m, const ManagerObserver *observer, void *userdata);
/* How migrations reach other hosts (the bus layer's peer-dbus.c, or a
 * test's in-process peer). */
void manager_set_peer_ops(Manager *m, const PeerOps *ops, void *ctx);

/* Calls settled once no domain is settling any more (at once if none
 * is): the backends know what every domain found after a restart is doing.
 * One waiter at a time; settled NULL stops waiting. */
void manager_when_settled(Manager *m, ManagerSettled settled, void *userdata);
/* A domain has settled (called by the domain itself). */
void manager_check_settled(Manager *m);

/* Loads every <state_dir>/domains/<uuid>.xml. A file that does not parse is logged
 * and skipped (and left in place for the admin), never fatal. */
int manager_load_domains(Manager *m);

Domain *manager_lookup(Manager *m, const char *name_or_uuid);
/* Domains sorted by name; the array holds borrowed pointers. */
GPtrArray *manager_list_domains(Manager *m);

int manager_define_xml(Manager *m, const char *xml, size_t len, Domain **ret, GError **error);
/* Defines a transient domain and starts it; done is called when started. */
int manager_create_xml(Manager *m, const char *xml, size_t len, DomainOpDone done, void *userdata, Domain **ret,
                       GError **error);

char *manager_get_hostname(void);
char *manager_capabilities_xml(Manager *m);
/* a{sa{sv}}: backend name → description. */
GVariant *manager_describe_backends(Manager *m);

/* Maintenance mode (Manager.SetMaintenance): recorded in the state
 * directory first (VM_ERROR_STORAGE_FAILED when that fails: nothing
 * changed), then observers hear of it. who is logged. */
int manager_set_maintenance(Manager *m, bool on, const char *who, GError **error);
/* VM_ERROR_IN_MAINTENANCE naming what (e.g. "starting domain 'vm1'")
 * when the host is in maintenance. */
int manager_check_not_in_maintenance(Manager *m, const char *what, GError **error);

/* Nothing running and nothing in flight: safe to exit on idle. */
bool manager_is_idle(Manager *m);

/* Notifications: what domains and jobs tell the observer through the manager. */
void manager_notify_changed(Manager *m, Domain *d, DomainChange what);
void manager_notify_lifecycle(Manager *m, Domain *d, const char *event, const char *detail);
void manager_domain_stopped(Manager *m, Domain *d);
void manager_notify_job_added(Manager *m, Job *j);
void manager_notify_job_changed(Manager *m, Job *j, JobChange what);
void manager_notify_job_ended(Manager *m, Job *j);
/* Forgets an ended job (observers hear job_removed first). */
void manager_remove_job(Manager *m, Job *j);
Job *manager_lookup_job(Manager *m, uint64_t id);
/* Jobs of that kind not yet ended. */
unsigned manager_count_running_jobs(Manager *m, JobKind kind);

/* Backends and domain objects, for code that makes or moves domains (migration). */
const BackendOps *manager_backend_ops_for_type(Manager *m, const char *type);
void *manager_backend_data(Manager *m, const BackendOps *ops);
/* A transient domain object for def (taken in all cases), shut off. */
int manager_add_transient(Manager *m, DomainDef *def, Domain **ret, GError **error);
/* Writes <domains_dir>/<uuid>.xml atomically from d->persistent_def. */
int manager_save_domain(Manager *m, Domain *d, GError **error);
int manager_remove_domain_file(Manager *m, Domain *d, GError **error);
/* Removes the file (if persistent) and the object. */
int manager_remove_domain(Manager *m, Domain *d, GError **error);
