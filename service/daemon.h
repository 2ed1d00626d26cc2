/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-polkit.h"
#include "daemon-config.h"
#include "manager.h"

/* The bus side of the daemon: one per process. */
typedef struct Daemon {
        sd_event *event;
        sd_bus *bus;
        Manager *manager;
        PolkitRegistry *polkit;

        uint64_t idle_timeout_usec; /* 0: never exit on idle */
        uint64_t shutdown_timeout_usec; /* how long Shutdown() waits before destroying */
        uint64_t last_activity_usec;
        sd_event_source *idle_timer;

        /* The name is taken once every domain found at start has settled,
         * or after DAEMON_SETTLE_TIMEOUT_USEC at the latest. */
        sd_event_source *settle_timer;

        /* Exit: name released, calls in flight allowed to finish. */
        bool exiting;
        bool name_released;
        sd_event_source *exit_deadline;

        /* Method calls whose reply waits for the core (e.g. Start). */
        unsigned n_deferred_replies;

        GHashTable *job_emit; /* job id → coalescing state for PropertiesChanged */
        GHashTable *evacuations; /* id → EvacuationObject (evacuation-dbus.c) */
        unsigned n_running_evacuations;
        uint64_t last_evacuation_id;
        GHashTable *incoming_tracks; /* unique name → its sd_bus_track: sources migrating here */
        GPtrArray *connecting_peers; /* Peer* not yet handed to their caller (peer-dbus.c) */
        const char *tunnel_command; /* run over ssh on destinations for option 'tunnelled' (config's) */

        /* The configuration in effect (vmigrated.conf(5)), replaced by a
         * SIGHUP; the manager borrows its strings. The options given on
         * the command line (they win on every reload) and where the files
         * are read from. */
        DaemonConfig *config;
        const DaemonConfig *cmdline;
        const char *config_root;
} Daemon;

#define DAEMON_EXIT_DEADLINE_USEC (10 * 1000 * 1000ULL)
/* How long a starting vmigrated waits for one still stopping: its exit
 * deadline, and time to tear down. */
#define INSTANCE_LOCK_WAIT_USEC (DAEMON_EXIT_DEADLINE_USEC + 5 * 1000 * 1000ULL)
/* Below dbus-daemon's activation timeout (25 s). */
#define DAEMON_SETTLE_TIMEOUT_USEC (15 * 1000 * 1000ULL)

/* ---- daemon.c: the hub of the bus layer ---- */

/* The daemon a domain's or job's object belongs to. */
Daemon *daemon_of(Domain *d);
Daemon *daemon_of_job(Job *j);

/* Object paths (sd_bus_path_encode of the domain's UUID; the job's id). */
char *domain_dbus_path(const Domain *d);
char *job_dbus_path(const Job *j);

/* The N of an object path PREFIX/N (N a decimal number from 1), for the
 * object finders of jobs and evacuations. */
bool daemon_path_id(const char *path, const char *prefix, uint64_t *ret_id);

/* Objects below prefix with interface: a fallback vtable, found by find
 * and listed by enumerator, all given the daemon as userdata. */
int daemon_add_objects(Daemon *daemon, const char *prefix, const char *interface, const sd_bus_vtable *vtable,
                       sd_bus_object_find_t find, sd_bus_node_enumerator_t enumerator);

/* ObjectManager's InterfacesAdded/Removed for path, failures logged. */
void daemon_emit_object(Daemon *daemon, const char *path, bool added);

/* For handlers that reply later: counts the call so that idle exit waits. */
typedef struct DeferredReply {
        Daemon *daemon;
        sd_bus_message *call;
} DeferredReply;

DeferredReply *deferred_reply_new(Daemon *daemon, sd_bus_message *call);
void deferred_reply_free(DeferredReply *reply);
/* Replies with an error (error != NULL) or with the object path of d (as_path) or nothing. */
void deferred_reply_finish(DeferredReply *reply, Domain *d, int r, const GError *error, bool with_path);

/*
 * Polkit details, for admins' rules (README.md, "Who may do what"). Every
 * check about a domain carries
 *   domain       its name
 *   uuid         its UUID
 *   operation    the D-Bus method's name
 * and every check about a migration (migrate, dry-run, control-job,
 * migrate-incoming) also
 *   destination  the canonical URI of where the domain goes
 */
int daemon_verify_domain_action(Daemon *daemon, sd_bus_message *call, const char *action, const char *domain_name,
                                const char *uuid, sd_bus_error *ret_error);
int daemon_verify_migration_action(Daemon *daemon, sd_bus_message *call, const char *action,
                                   const char *domain_name, const char *uuid, const char *destination,
                                   sd_bus_error *ret_error);
/* The "uuid" detail of a domain document: its <uuid>, or "" when it has
 * none (the UUID is made up later, so nothing can name it yet). */
const char *daemon_domain_xml_uuid_detail(const char *xml, const DomainDef *def);
/* control-job on j's domain, with j's destination. */
int daemon_verify_job_action(Daemon *daemon, sd_bus_message *call, Job *j, sd_bus_error *ret_error);
/* AbortJob, StartPostCopy, Cancel: authorize (control-job), act, reply. */
int daemon_run_job_control(sd_bus_message *m, Job *j, int (*control)(Job *j, GError **error), sd_bus_error *error);

/* Who sent m, for the log: ":1.42 (UID 1000)". */
char *daemon_caller_description(sd_bus_message *m);

/* Nothing in flight: no deferred reply, no polkit check, no migration, no evacuation. */
bool daemon_is_quiet(Daemon *daemon);
/* Leaves the loop once exit was requested and nothing is in flight. */
void daemon_check_exit(Daemon *daemon);

#define POLKIT_ACTION_MANAGE_DOMAINS "org.vmigrate.migrate1.manage-domains"
#define POLKIT_ACTION_MIGRATE "org.vmigrate.migrate1.migrate"
#define POLKIT_ACTION_MIGRATE_INCOMING "org.vmigrate.migrate1.migrate-incoming"
#define POLKIT_ACTION_DRY_RUN "org.vmigrate.migrate1.dry-run"
#define POLKIT_ACTION_CONTROL_JOB "org.vmigrate.migrate1.control-job"
#define POLKIT_ACTION_EVACUATE "org.vmigrate.migrate1.evacuate"
#define POLKIT_ACTION_MANAGE_HOST "org.vmigrate.migrate1.manage-host"
