/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>

#include "bus-errors.h"
#include "bus-gvariant.h"
#include "bus-util.h"
#include "job-dbus.h"
#include "errors.h"
#include "log.h"
#include "migration.h"

/* PropertiesChanged for statistics at most this often (phase changes and
 * the end are sent at once). */
#define JOB_STATS_INTERVAL_USEC (100 * 1000)

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        Daemon *daemon = userdata;
        uint64_t id;
        Job *j;

        if (!daemon_path_id(path, BUS_JOB_PREFIX, &id))
                return 0;
        j = manager_lookup_job(daemon->manager, id);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Daemon *daemon = userdata;
        GHashTableIter iter;
        gpointer value;
        char **list = g_new0(char *, g_hash_table_size(daemon->manager->jobs) + 1);
        size_t n = 0;

        g_hash_table_iter_init(&iter, daemon->manager->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                list[n++] = job_dbus_path(value);
        *nodes = list;
        return 1;
}

static int property_get_domain(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        g_autofree char *domain_path = domain_dbus_path(j->domain);
        return sd_bus_message_append(reply, "o", domain_path);
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        const char *value = "";

        if (g_str_equal(property, "Kind"))
                value = job_kind_to_string(j->kind);
        else if (g_str_equal(property, "Phase"))
                value = job_phase_to_string(j->phase);
        else if (g_str_equal(property, "Destination"))
                value = j->peer ? j->peer : "";
        else if (g_str_equal(property, "Error"))
                value = j->error ? j->error : "";
        else if (g_str_equal(property, "Encryption"))
                value = job_encryption_to_string(j->encryption);
        else if (g_str_equal(property, "Policy"))
                value = j->policy ? j->policy : "";
        else if (g_str_equal(property, "PolicyAction"))
                value = j->policy_action ? j->policy_action : "";
        return sd_bus_message_append(reply, "s", value);
}

static int property_get_not_converging(sd_bus *bus, const char *path, const char *interface,
                                       const char *property, sd_bus_message *reply, void *userdata,
                                       sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "b", j->not_converging);
}

static int property_get_warnings(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        for (guint i = 0; r >= 0 && i < j->warnings->len; i++)
                r = sd_bus_message_append(reply, "s", j->warnings->pdata[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int property_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "d", j->progress);
}

static int property_get_stat(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        uint64_t value = 0;

        if (g_str_equal(property, "DataTotal"))
                value = j->stats.data_total;
        else if (g_str_equal(property, "DataProcessed"))
                value = j->stats.data_processed;
        else if (g_str_equal(property, "DataRemaining"))
                value = j->stats.data_remaining;
        else if (g_str_equal(property, "Iteration"))
                value = j->stats.iteration;
        else if (g_str_equal(property, "DirtyRate"))
                value = j->stats.dirty_rate;
        else if (g_str_equal(property, "ElapsedMs"))
                value = job_elapsed_ms(j);
        else if (g_str_equal(property, "ExpectedDowntimeMs"))
                value = j->stats.expected_downtime_ms;
        return sd_bus_message_append(reply, "t", value);
}

static int property_get_policy_step(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "u", j->policy_step);
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return daemon_run_job_control(m, userdata, migration_cancel, error);
}

static int method_start_postcopy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return daemon_run_job_control(m, userdata, migration_start_postcopy, error);
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Domain", "o", property_get_domain, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Destination", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Phase", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "d", property_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DataTotal", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DataProcessed", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DataRemaining", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Iteration", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DirtyRate", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ElapsedMs", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ExpectedDowntimeMs", "t", property_get_stat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NotConverging", "b", property_get_not_converging, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Warnings", "as", property_get_warnings, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Encryption", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Policy", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PolicyStep", "u", property_get_policy_step, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PolicyAction", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartPostCopy", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_start_postcopy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Finished", SD_BUS_ARGS("s", result, "s", error, "a{sv}", stats), 0),
        SD_BUS_SIGNAL_WITH_ARGS("NotConverging", SD_BUS_ARGS("s", detail), 0),
        SD_BUS_SIGNAL_WITH_ARGS("PolicyStepTaken", SD_BUS_ARGS("u", step, "s", action, "s", reason), 0),
        SD_BUS_VTABLE_END,
};

int job_dbus_register(Daemon *daemon) {
        return daemon_add_objects(daemon, BUS_JOB_PREFIX, BUS_JOB_INTERFACE, job_vtable, job_object_find,
                                  job_node_enumerator);
}

/* ---- signals ---- */

static void emit_job_properties(Daemon *daemon, Job *j, JobChange what) {
        g_autofree char *path = job_dbus_path(j);
        const char *names[24];
        size_t n = 0;
        int r;

        if (what & JOB_CHANGE_PHASE)
                names[n++] = "Phase";
        if (what & JOB_CHANGE_STATS) {
                static const char *const stats[] = { "Progress",  "DataTotal", "DataProcessed",
                                                     "DataRemaining", "Iteration", "DirtyRate",
                                                     "ElapsedMs", "ExpectedDowntimeMs" };
                for (size_t i = 0; i < G_N_ELEMENTS(stats); i++)
                        names[n++] = stats[i];
        }
        if (what & JOB_CHANGE_ERROR)
                names[n++] = "Error";
        if (what & JOB_CHANGE_CONVERGENCE)
                names[n++] = "NotConverging";
        if (what & JOB_CHANGE_WARNINGS)
                names[n++] = "Warnings";
        if (what & JOB_CHANGE_ENCRYPTION)
                names[n++] = "Encryption";
        if (what & JOB_CHANGE_POLICY) {
                names[n++] = "Policy";
                names[n++] = "PolicyStep";
                names[n++] = "PolicyAction";
        }
        names[n] = NULL;
        if (n == 0)
                return;
        r = sd_bus_emit_properties_changed_strv(daemon->bus, path, BUS_JOB_INTERFACE, (char **) names);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged for %s: %s", path, g_strerror(-r));
}

typedef struct JobEmitState {
        Daemon *daemon;
        uint64_t id;
        JobChange pending;
        sd_event_source *timer;
} JobEmitState;

static void job_emit_state_free(gpointer p) {
        JobEmitState *s = p;
        sd_event_source_disable_unref(s->timer);
        g_free(s);
}

static int on_job_emit_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        JobEmitState *s = userdata;
        Job *j = manager_lookup_job(s->daemon->manager, s->id);
        JobChange what = s->pending;

        s->pending = 0;
        if (j)
                emit_job_properties(s->daemon, j, what);
        return 0;
}

static JobEmitState *job_emit_state(Daemon *daemon, Job *j) {
        JobEmitState *s = g_hash_table_lookup(daemon->job_emit, &j->id);

        if (!s) {
                s = g_new0(JobEmitState, 1);
                s->daemon = daemon;
                s->id = j->id;
                g_hash_table_insert(daemon->job_emit, &s->id, s);
        }
        return s;
}

void job_observe_added(Manager *m, Job *j, void *userdata) {
        g_autofree char *path = job_dbus_path(j);
        daemon_emit_object(userdata, path, true);
}

void job_observe_changed(Manager *m, Job *j, JobChange what, void *userdata) {
        Daemon *daemon = userdata;
        JobEmitState *s = job_emit_state(daemon, j);
        int r;

        /* Statistics arrive as fast as the backend learns them: coalesce
         * them to ~10 Hz. Anything else goes out now, with whatever
         * statistics were waiting, so that clients never see them lag a
         * phase change. */
        s->pending |= what;
        if ((what & JOB_CHANGE_CONVERGENCE) && j->not_converging) {
                g_autofree char *path = job_dbus_path(j);
                r = sd_bus_emit_signal(daemon->bus, path, BUS_JOB_INTERFACE, "NotConverging", "s",
                                       j->not_converging_detail ? j->not_converging_detail : "");
                if (r < 0)
                        log_warning("cannot emit NotConverging for %s: %s", path, g_strerror(-r));
        }
        if ((what & JOB_CHANGE_POLICY) && j->policy_action) {
                g_autofree char *path = job_dbus_path(j);
                r = sd_bus_emit_signal(daemon->bus, path, BUS_JOB_INTERFACE, "PolicyStepTaken", "uss", j->policy_step,
                                       j->policy_action, j->policy_reason ? j->policy_reason : "");
                if (r < 0)
                        log_warning("cannot emit PolicyStepTaken for %s: %s", path, g_strerror(-r));
        }
        if (what & ~JOB_CHANGE_STATS) {
                JobChange all = s->pending;
                s->pending = 0;
                emit_job_properties(daemon, j, all);
                return;
        }
        if (s->timer && sd_event_source_get_enabled(s->timer, NULL) > 0)
                return;
        if (!s->timer)
                r = sd_event_add_time_relative(daemon->event, &s->timer, CLOCK_MONOTONIC, JOB_STATS_INTERVAL_USEC, 1000,
                                               on_job_emit_timer, s);
        else {
                r = sd_event_source_set_time_relative(s->timer, JOB_STATS_INTERVAL_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                s->pending = 0;
                emit_job_properties(daemon, j, what);
        }
}

void job_observe_ended(Manager *m, Job *j, void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = job_dbus_path(j);
        g_autofree char *domain_path = domain_dbus_path(j->domain);
        g_autoptr(GVariant) stats = g_variant_ref_sink(job_stats_to_variant(j));
        g_autoptr(sd_bus_message) signal = NULL;
        const char *result = j->phase == JOB_PHASE_COMPLETED ? "completed"
                             : j->phase == JOB_PHASE_CANCELLED ? "cancelled"
                                                                : "failed";
        int r;

        r = sd_bus_message_new_signal(daemon->bus, &signal, path, BUS_JOB_INTERFACE, "Finished");
        if (r >= 0)
                r = sd_bus_message_append(signal, "ss", result, j->error ? j->error : "");
        if (r >= 0)
                r = bus_message_append_gvariant(signal, stats);
        if (r >= 0)
                r = sd_bus_send(daemon->bus, signal, NULL);
        if (r < 0)
                log_warning("cannot emit Finished for %s: %s", path, g_strerror(-r));

        /* A daemon that is stopping waits for its jobs to end. */
        daemon_check_exit(daemon);

        /* The domain may have gone (a transient guest that left). */
        if (!j->domain->manager)
                return;
        signal = sd_bus_message_unref(signal);
        r = sd_bus_message_new_signal(daemon->bus, &signal, domain_path, BUS_DOMAIN_INTERFACE, "JobCompleted");
        if (r >= 0)
                r = bus_message_append_gvariant(signal, stats);
        if (r >= 0)
                r = sd_bus_send(daemon->bus, signal, NULL);
        if (r < 0)
                log_warning("cannot emit JobCompleted for %s: %s", domain_path, g_strerror(-r));
}

void job_observe_removed(Manager *m, Job *j, void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = job_dbus_path(j);

        g_hash_table_remove(daemon->job_emit, &j->id);
        daemon_emit_object(daemon, path, false);
}

GHashTable *job_emit_table_new(void) {
        return g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, job_emit_state_free);
}
