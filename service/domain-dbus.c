/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "bus-errors.h"
#include "bus-util.h"
#include "domain-dbus.h"
#include "errors.h"
#include "bus-gvariant.h"
#include "log.h"
#include "migration.h"

/* ShutdownWithTimeout accepts up to an hour: longer is a hang, not a shutdown. */
#define DOMAIN_SHUTDOWN_TIMEOUT_MAX_MS (3600 * 1000ULL)

static int domain_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                              sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autofree char *uuid = NULL;
        Domain *d;
        int r;

        r = sd_bus_path_decode(path, BUS_DOMAIN_PREFIX, &uuid);
        if (r <= 0)
                return 0;
        d = g_hash_table_lookup(daemon->manager->domains, uuid);
        if (!d)
                return 0;
        *found = d;
        return 1;
}

static int domain_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                  sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(GPtrArray) domains = manager_list_domains(daemon->manager);
        char **list = g_new0(char *, domains->len + 1);

        /* sd-bus frees the list with free(); glib's allocator is malloc. */
        for (unsigned i = 0; i < domains->len; i++)
                list[i] = domain_dbus_path(domains->pdata[i]);
        *nodes = list;
        return 1;
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        const char *value;

        if (g_str_equal(property, "Name"))
                value = domain_name(d);
        else if (g_str_equal(property, "UUID"))
                value = domain_uuid(d);
        else if (g_str_equal(property, "Backend"))
                value = d->backend->name;
        else if (g_str_equal(property, "State"))
                value = domain_state_to_string(d->state);
        else
                value = d->state_reason ? d->state_reason : "unknown"; /* StateReason */
        return sd_bus_message_append(reply, "s", value);
}

static int property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        bool persistent = g_str_equal(property, "Persistent");

        return sd_bus_message_append(reply, "b", persistent ? domain_is_persistent(d) : domain_is_active(d));
}

static int property_get_memory(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return sd_bus_message_append(reply, "t", (uint64_t) d->def->memory_bytes);
}

static int property_get_vcpus(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) d->def->vcpus);
}

static int verify_manage(sd_bus_message *m, Domain *d, sd_bus_error *error) {
        return daemon_verify_domain_action(daemon_of(d), m, POLKIT_ACTION_MANAGE_DOMAINS, domain_name(d),
                                           domain_uuid(d), error);
}

static void operation_done(Domain *d, int r, const GError *error, void *userdata) {
        deferred_reply_finish(userdata, d, r, error, false);
}

typedef int (*DomainOperation)(Domain *d, DomainOpDone done, void *userdata, GError **error);

/* The operations that reply when done: authorize (1, or 0 when polkit
 * will call again, or < 0), then *ret_reply counts the call until then. */
static int operation_begin(sd_bus_message *m, Domain *d, DeferredReply **ret_reply, sd_bus_error *error) {
        int r = verify_manage(m, d, error);

        if (r > 0)
                *ret_reply = deferred_reply_new(daemon_of(d), m);
        return r;
}

/* What the handler returns once the core took (r >= 0) or refused the operation. */
static int operation_started(DeferredReply *reply, int r, const GError *gerror, sd_bus_error *error) {
        if (r < 0) {
                deferred_reply_free(reply);
                return bus_set_gerror(error, gerror);
        }
        return 1;
}

/* Start, Suspend, Resume, Destroy: authorize, run, reply when done. */
static int run_operation(sd_bus_message *m, Domain *d, DomainOperation op, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        DeferredReply *reply = NULL;
        int r;

        r = operation_begin(m, d, &reply, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit will call us again */
        r = op(d, operation_done, reply, &gerror);
        return operation_started(reply, r, gerror, error);
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_operation(m, userdata, domain_start, error);
}

static int method_destroy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_operation(m, userdata, domain_destroy, error);
}

static int method_suspend(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_operation(m, userdata, domain_suspend, error);
}

static int method_resume(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_operation(m, userdata, domain_resume, error);
}

static int run_shutdown(sd_bus_message *m, Domain *d, uint64_t timeout_usec, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        DeferredReply *reply = NULL;
        int r;

        r = operation_begin(m, d, &reply, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = domain_shutdown(d, timeout_usec, operation_done, reply, &gerror);
        return operation_started(reply, r, gerror, error);
}

static int method_shutdown(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return run_shutdown(m, d, daemon_of(d)->shutdown_timeout_usec, error);
}

static int method_shutdown_with_timeout(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        uint64_t timeout_ms;
        int r;

        r = sd_bus_message_read(m, "t", &timeout_ms);
        if (r < 0)
                return r;
        if (timeout_ms == 0 || timeout_ms > DOMAIN_SHUTDOWN_TIMEOUT_MAX_MS)
                return sd_bus_error_setf(error, vm_error_dbus_name(VM_ERROR_INVALID_ARGUMENT),
                                         "timeout %" PRIu64 " ms is out of range: give 1 to %llu ms (use "
                                         "Destroy to stop the domain at once)",
                                         timeout_ms, DOMAIN_SHUTDOWN_TIMEOUT_MAX_MS);
        return run_shutdown(m, userdata, timeout_ms * 1000, error);
}

static int method_undefine(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        Domain *d = userdata;
        int r;

        r = verify_manage(m, d, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        r = domain_undefine(d, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get_job(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        g_autofree char *job_path = d->job ? job_dbus_path(d->job) : g_strdup("/");
        return sd_bus_message_append(reply, "o", job_path);
}

/* A Migrate call: answered when Prepare succeeded (or, with option
 * "wait", when the job ended). */
typedef struct MigrateCall {
        DeferredReply *reply; /* NULL once answered */
        bool wait;
} MigrateCall;

static void migrate_call_answer(MigrateCall *call, Job *job, const GError *error) {
        DeferredReply *reply = g_steal_pointer(&call->reply);

        if (!reply)
                return;
        if (error) {
                deferred_reply_finish(reply, NULL, -EIO, error, false);
                return;
        }
        g_autofree char *path = job_dbus_path(job);
        int r = sd_bus_reply_method_return(reply->call, "o", path);
        if (r < 0)
                log_debug("cannot answer Migrate: %s", g_strerror(-r));
        deferred_reply_free(reply);
}

static void on_migration_started(Job *job, const GError *error, void *userdata) {
        MigrateCall *call = userdata;

        if (error || !call->wait)
                migrate_call_answer(call, job, error);
}

static void on_migration_ended(Job *job, const GError *error, void *userdata) {
        g_autofree MigrateCall *call = userdata;

        migrate_call_answer(call, job, error);
}

/* The (s destination, a{sv} options) arguments of Migrate and DryRun,
 * parsed once into what the core takes. */
static int read_migration_request(sd_bus_message *m, MigrationRequest **ret, sd_bus_error *error) {
        g_autoptr(GVariant) options = NULL;
        const char *uri;
        int r;

        r = sd_bus_message_read(m, "s", &uri);
        if (r < 0)
                return r;
        r = bus_message_read_gvariant(m, "a{sv}", &options);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "options must be an a{sv}: %s",
                                         g_strerror(-r));
        *ret = migration_request_parse(uri, options);
        return 0;
}

static int method_migrate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autoptr(MigrationRequest) req = NULL;
        g_autoptr(GError) gerror = NULL;
        Domain *d = userdata;
        Daemon *daemon = daemon_of(d);
        bool wait;
        int r;

        r = read_migration_request(m, &req, error);
        if (r < 0)
                return r;
        /* Cheap checks first: a bad option or URI needs no authorization to
         * be told about. */
        if (migration_request_error(req))
                return bus_set_gerror(error, migration_request_error(req));

        r = daemon_verify_migration_action(daemon, m, POLKIT_ACTION_MIGRATE, domain_name(d), domain_uuid(d),
                                           migration_request_destination(req), error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        wait = req->options->wait;
        MigrateCall *call = g_new0(MigrateCall, 1);
        call->wait = wait;
        call->reply = deferred_reply_new(daemon, m);
        r = migration_start(daemon->manager, d, g_steal_pointer(&req), on_migration_started, on_migration_ended,
                            call, &gerror);
        if (r < 0) {
                deferred_reply_free(call->reply);
                g_free(call);
                return bus_set_gerror(error, gerror);
        }
        return 1;
}

static void on_dry_run_done(bool ok, GVariant *findings, void *userdata) {
        DeferredReply *reply = userdata;
        g_autoptr(GVariant) owned = g_variant_ref_sink(findings);
        g_autoptr(sd_bus_message) message = NULL;
        int r;

        r = sd_bus_message_new_method_return(reply->call, &message);
        if (r >= 0)
                r = sd_bus_message_append(message, "b", ok);
        if (r >= 0)
                r = bus_message_append_gvariant(message, owned);
        if (r >= 0)
                r = sd_bus_send(NULL, message, NULL);
        if (r < 0)
                log_debug("cannot answer DryRun: %s", g_strerror(-r));
        deferred_reply_free(reply);
}

static int method_dry_run(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autoptr(MigrationRequest) req = NULL;
        g_autoptr(GError) gerror = NULL;
        Domain *d = userdata;
        Daemon *daemon = daemon_of(d);
        int r;

        r = read_migration_request(m, &req, error);
        if (r < 0)
                return r;
        r = daemon_verify_migration_action(daemon, m, POLKIT_ACTION_DRY_RUN, domain_name(d), domain_uuid(d),
                                           migration_request_destination(req), error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        /* Bad options or URIs are findings here, not errors: the answer
         * lists everything wrong at once. */
        DeferredReply *reply = deferred_reply_new(daemon, m);
        r = migration_dry_run(daemon->manager, d, g_steal_pointer(&req), on_dry_run_done, reply, &gerror);
        if (r < 0) {
                deferred_reply_free(reply);
                return bus_set_gerror(error, gerror);
        }
        return 1;
}

static int require_job(Domain *d, sd_bus_error *error) {
        if (!d->job)
                return sd_bus_error_setf(error, vm_error_dbus_name(VM_ERROR_NO_JOB),
                                         "domain '%s' has no job in progress", domain_name(d));
        return 0;
}

static int method_abort_job(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        int r = require_job(d, error);
        return r < 0 ? r : daemon_run_job_control(m, d->job, migration_cancel, error);
}

static int method_start_postcopy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        int r = require_job(d, error);
        return r < 0 ? r : daemon_run_job_control(m, d->job, migration_start_postcopy, error);
}

static int method_get_job_stats(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) stats = NULL;
        Domain *d = userdata;
        int r;

        if (d->job)
                stats = g_variant_ref_sink(job_stats_with_history_to_variant(d->job));
        else if (d->last_job_stats)
                stats = g_variant_ref(d->last_job_stats);
        else if (!(stats = job_archive_last_for(daemon_of(d)->manager->archive, domain_uuid(d))))
                /* The job history: a job that ended before vmigrated last started. */
                return sd_bus_error_setf(error, vm_error_dbus_name(VM_ERROR_NO_JOB),
                                         "domain '%s' has no job on record (none in the job history either)",
                                         domain_name(d));
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = bus_message_append_gvariant(reply, stats);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_set_max_downtime(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        Domain *d = userdata;
        uint64_t ms;
        int r;

        r = sd_bus_message_read(m, "t", &ms);
        if (r < 0)
                return r;
        if (ms == 0 || ms > MIGRATE_MAX_DOWNTIME_MAX_MS)
                return sd_bus_error_setf(error, vm_error_dbus_name(VM_ERROR_INVALID_ARGUMENT),
                                         "max downtime %" PRIu64 " ms is out of range: give 1 to %" PRIu64 " ms", ms,
                                         MIGRATE_MAX_DOWNTIME_MAX_MS);
        r = require_job(d, error);
        if (r < 0)
                return r;
        r = daemon_verify_job_action(daemon_of(d), m, d->job, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = migration_set_max_downtime(d->job, ms, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_set_max_bandwidth(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        Domain *d = userdata;
        uint64_t bandwidth;
        int postcopy, r;

        r = sd_bus_message_read(m, "tb", &bandwidth, &postcopy);
        if (r < 0)
                return r;
        if (bandwidth == 0)
                return sd_bus_error_setf(error, vm_error_dbus_name(VM_ERROR_INVALID_ARGUMENT),
                                         "bandwidth must be at least 1 byte per second");
        r = require_job(d, error);
        if (r < 0)
                return r;
        r = daemon_verify_job_action(daemon_of(d), m, d->job, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = migration_set_max_bandwidth(d->job, bandwidth, postcopy, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get_displays(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;

        if (!d->displays)
                return sd_bus_message_append(reply, "a(ssa{sv})", 0);
        return bus_message_append_gvariant(reply, d->displays);
}

/* Passwords (<graphics passwd>) only for root, as libvirt gives them only
 * with VIR_DOMAIN_XML_SECURE on a privileged connection: GetXML is open to
 * everyone the bus policy lets in. */
static int method_get_xml(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        /* As bus-polkit.c: an effective uid of 0 the bus vouches for. */
        g_autofree char *xml = domain_get_xml(userdata, sd_bus_query_sender_privilege(m, -1) > 0);
        return sd_bus_reply_method_return(m, "s", xml);
}

static const sd_bus_vtable domain_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UUID", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Backend", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StateReason", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Active", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryBytes", "t", property_get_memory, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("VCPUs", "u", property_get_vcpus, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Job", "o", property_get_job, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Displays", "a(ssa{sv})", property_get_displays, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Start", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_start,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Shutdown", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_shutdown,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ShutdownWithTimeout", SD_BUS_ARGS("t", timeout_ms), SD_BUS_NO_RESULT,
                                method_shutdown_with_timeout, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Destroy", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_destroy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Suspend", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_suspend,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resume", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_resume,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Undefine", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_undefine,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetXML", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", xml), method_get_xml,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Migrate", SD_BUS_ARGS("s", destination, "a{sv}", options), SD_BUS_RESULT("o", job),
                                method_migrate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DryRun", SD_BUS_ARGS("s", destination, "a{sv}", options),
                                SD_BUS_RESULT("b", ok, "a(sss)", findings), method_dry_run,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AbortJob", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_abort_job,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartPostCopy", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_start_postcopy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetJobStats", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", stats), method_get_job_stats,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetMaxDowntime", SD_BUS_ARGS("t", milliseconds), SD_BUS_NO_RESULT,
                                method_set_max_downtime, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetMaxBandwidth", SD_BUS_ARGS("t", bytes_per_second, "b", postcopy),
                                SD_BUS_NO_RESULT, method_set_max_bandwidth, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Lifecycle", SD_BUS_ARGS("s", event, "s", detail), 0),
        SD_BUS_SIGNAL_WITH_ARGS("JobCompleted", SD_BUS_ARGS("a{sv}", stats), 0),
        SD_BUS_VTABLE_END,
};

int domain_dbus_register(Daemon *daemon) {
        return daemon_add_objects(daemon, BUS_DOMAIN_PREFIX, BUS_DOMAIN_INTERFACE, domain_vtable, domain_object_find,
                                  domain_node_enumerator);
}

/* The observer: core events become signals. Failures to emit are logged,
 * never fatal: a lost signal must not take the daemon down. */

void domain_observe_added(Manager *m, Domain *d, void *userdata) {
        g_autofree char *path = domain_dbus_path(d);
        daemon_emit_object(userdata, path, true);
}

void domain_observe_removed(Manager *m, Domain *d, void *userdata) {
        g_autofree char *path = domain_dbus_path(d);
        daemon_emit_object(userdata, path, false);
}

void domain_observe_changed(Manager *m, Domain *d, DomainChange what, void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = domain_dbus_path(d);
        const char *names[9];
        size_t n = 0;
        int r;

        if (what & DOMAIN_CHANGE_STATE) {
                names[n++] = "State";
                names[n++] = "Active";
        }
        if (what & DOMAIN_CHANGE_STATE_REASON)
                names[n++] = "StateReason";
        if (what & DOMAIN_CHANGE_PERSISTENT)
                names[n++] = "Persistent";
        if (what & DOMAIN_CHANGE_CONFIG) {
                names[n++] = "MemoryBytes";
                names[n++] = "VCPUs";
        }
        if (what & DOMAIN_CHANGE_JOB)
                names[n++] = "Job";
        if (what & DOMAIN_CHANGE_DISPLAYS)
                names[n++] = "Displays";
        names[n] = NULL;
        if (n == 0)
                return;

        r = sd_bus_emit_properties_changed_strv(daemon->bus, path, BUS_DOMAIN_INTERFACE, (char **) names);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged for %s: %s", path, g_strerror(-r));
}

void domain_observe_lifecycle(Manager *m, Domain *d, const char *event, const char *detail,
                                     void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = domain_dbus_path(d);
        int r;

        r = sd_bus_emit_signal(daemon->bus, path, BUS_DOMAIN_INTERFACE, "Lifecycle", "ss", event,
                               detail ? detail : "");
        if (r < 0)
                log_warning("cannot emit Lifecycle for %s: %s", path, g_strerror(-r));
}

