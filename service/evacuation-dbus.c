/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Manager.Evacuate and the Evacuation objects (evacuation-dbus.h) over the
 * core's evacuation.c. An object stays on the bus EVACUATION_LINGER_USEC
 * after its end, so that a script that was not listening can still read
 * the results.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-gvariant.h"
#include "bus-util.h"
#include "errors.h"
#include "evacuation-dbus.h"
#include "evacuation.h"
#include "log.h"

#define EVACUATION_LINGER_USEC (3600 * (uint64_t) G_USEC_PER_SEC)

typedef struct EvacuationObject {
        Daemon *daemon;
        Evacuation *evacuation; /* reference */
        char *path;
        sd_event_source *linger;
} EvacuationObject;

static void evacuation_object_free(gpointer p) {
        EvacuationObject *o = p;

        sd_event_source_disable_unref(o->linger);
        if (o->evacuation) {
                /* Its callbacks must not reach a freed object. */
                o->evacuation->observer = NULL;
                evacuation_unref(o->evacuation);
        }
        g_free(o->path);
        g_free(o);
}

GHashTable *evacuation_table_new(void) {
        return g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, evacuation_object_free);
}

static char *evacuation_dbus_path(uint64_t id) {
        return g_strdup_printf(BUS_EVACUATION_PREFIX "/%" PRIu64, id);
}

static void evacuation_release(gpointer p) {
        evacuation_unref(p);
}

void evacuation_dbus_shutdown(Daemon *daemon) {
        g_autoptr(GPtrArray) running = g_ptr_array_new_with_free_func(evacuation_release);
        GHashTableIter iter;
        gpointer value;

        if (!daemon->evacuations)
                return;
        g_hash_table_iter_init(&iter, daemon->evacuations);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (!((EvacuationObject *) value)->evacuation->finished)
                        g_ptr_array_add(running, evacuation_ref(((EvacuationObject *) value)->evacuation));
        for (unsigned i = 0; i < running->len; i++) {
                g_autoptr(GError) error = NULL;
                log_info("evacuation %" G_GUINT64_FORMAT ": cancelling: vmigrated is stopping",
                         ((Evacuation *) running->pdata[i])->id);
                (void) evacuation_cancel(running->pdata[i], &error);
        }
}

/* ---- objects ---- */

static int evacuation_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                                  void **found, sd_bus_error *error) {
        Daemon *daemon = userdata;
        EvacuationObject *o;
        uint64_t id;

        if (!daemon_path_id(path, BUS_EVACUATION_PREFIX, &id))
                return 0;
        o = g_hash_table_lookup(daemon->evacuations, &id);
        if (!o)
                return 0;
        *found = o->evacuation;
        return 1;
}

static int evacuation_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                      sd_bus_error *error) {
        Daemon *daemon = userdata;
        GHashTableIter iter;
        gpointer value;
        char **list = g_new0(char *, g_hash_table_size(daemon->evacuations) + 1);
        size_t n = 0;

        g_hash_table_iter_init(&iter, daemon->evacuations);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                list[n++] = g_strdup(((EvacuationObject *) value)->path);
        *nodes = list;
        return 1;
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", evacuation_state(userdata));
}

static int property_get_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        EvacuationCounts c;

        evacuation_counts(userdata, &c);
        return sd_bus_message_append(reply, "u",
                                     g_str_equal(property, "Total")  ? c.total
                                     : g_str_equal(property, "Done") ? c.done
                                     : g_str_equal(property, "Failed") ? c.failed
                                                                       : c.remaining);
}

static int property_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "d", evacuation_progress(userdata));
}

static int property_get_destinations(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Evacuation *ev = userdata;
        return sd_bus_message_append_strv(reply, ev->destinations);
}

static int property_get_jobs(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Evacuation *ev = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "o");
        for (unsigned i = 0; r >= 0 && i < ev->items->len; i++) {
                const EvacuationItem *item = ev->items->pdata[i];
                if (!item->job)
                        continue;
                g_autofree char *job_path = job_dbus_path(item->job);
                r = sd_bus_message_append(reply, "o", job_path);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int property_get_results(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        g_autoptr(GVariant) results = g_variant_ref_sink(evacuation_results(userdata));
        return bus_message_append_gvariant(reply, results);
}

static int property_get_options(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Evacuation *ev = userdata;
        GVariantDict dict;

        g_variant_dict_init(&dict, ev->options.migrate_options);
        g_variant_dict_insert(&dict, "order", "s", evacuation_order_to_string(ev->options.order));
        g_variant_dict_insert(&dict, "parallel", "u", ev->parallel);
        g_variant_dict_insert(&dict, "inactive", "b", ev->options.inactive);
        g_variant_dict_insert(&dict, "maintenance", "b", ev->options.maintenance);
        g_autoptr(GVariant) all = g_variant_ref_sink(g_variant_dict_end(&dict));
        return bus_message_append_gvariant(reply, all);
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Evacuation *ev = userdata;
        Daemon *daemon = ev->observer_data;
        g_autoptr(GError) gerror = NULL;
        const char *details[] = { "operation", "Cancel", NULL };
        int r;

        r = bus_verify_polkit_async(m, POLKIT_ACTION_EVACUATE, details, daemon->polkit, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = evacuation_cancel(ev, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable evacuation_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Destinations", "as", property_get_destinations, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Options", "a{sv}", property_get_options, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Total", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Done", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Failed", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Remaining", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "d", property_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Jobs", "ao", property_get_jobs, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Results", "aa{sv}", property_get_results, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Finished", SD_BUS_ARGS("s", result, "aa{sv}", results), 0),
        SD_BUS_VTABLE_END,
};

int evacuation_dbus_register(Daemon *daemon) {
        return daemon_add_objects(daemon, BUS_EVACUATION_PREFIX, BUS_EVACUATION_INTERFACE, evacuation_vtable,
                                  evacuation_object_find, evacuation_node_enumerator);
}

/* ---- what the core says ---- */

static EvacuationObject *evacuation_object(Daemon *daemon, Evacuation *ev) {
        return daemon->evacuations ? g_hash_table_lookup(daemon->evacuations, &ev->id) : NULL;
}

static void on_evacuation_changed(Evacuation *ev, void *userdata) {
        Daemon *daemon = userdata;
        EvacuationObject *o = evacuation_object(daemon, ev);
        int r;

        if (!o)
                return; /* changes before the object is on the bus: it is read whole then */
        r = sd_bus_emit_properties_changed(daemon->bus, o->path, BUS_EVACUATION_INTERFACE, "State", "Done",
                                           "Failed", "Remaining", "Progress", "Jobs", "Results", NULL);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged for %s: %s", o->path, g_strerror(-r));
}

static int on_linger_end(sd_event_source *s, uint64_t usec, void *userdata) {
        EvacuationObject *o = userdata;
        Daemon *daemon = o->daemon;
        g_autofree char *path = g_strdup(o->path);
        uint64_t id = o->evacuation->id;

        g_hash_table_remove(daemon->evacuations, &id);
        daemon_emit_object(daemon, path, false);
        return 0;
}

static void evacuation_object_emit_finished(EvacuationObject *o) {
        Daemon *daemon = o->daemon;
        g_autoptr(GVariant) results = g_variant_ref_sink(evacuation_results(o->evacuation));
        g_autoptr(sd_bus_message) signal = NULL;
        int r;

        r = sd_bus_message_new_signal(daemon->bus, &signal, o->path, BUS_EVACUATION_INTERFACE, "Finished");
        if (r >= 0)
                r = sd_bus_message_append(signal, "s", evacuation_state(o->evacuation));
        if (r >= 0)
                r = bus_message_append_gvariant(signal, results);
        if (r >= 0)
                r = sd_bus_send(daemon->bus, signal, NULL);
        if (r < 0)
                log_warning("cannot emit Finished for %s: %s", o->path, g_strerror(-r));
        r = sd_event_add_time_relative(daemon->event, &o->linger, CLOCK_MONOTONIC, EVACUATION_LINGER_USEC, 0,
                                       on_linger_end, o);
        if (r < 0)
                log_warning("%s stays on the bus: %s", o->path, g_strerror(-r));
}

static void on_evacuation_finished(Evacuation *ev, void *userdata) {
        Daemon *daemon = userdata;
        EvacuationObject *o = evacuation_object(daemon, ev);

        if (o)
                evacuation_object_emit_finished(o);
        g_assert(daemon->n_running_evacuations > 0);
        daemon->n_running_evacuations--;
        /* A daemon that is stopping waits for its evacuations to end. */
        daemon_check_exit(daemon);
}

static const EvacuationObserver evacuation_observer = {
        .changed = on_evacuation_changed,
        .finished = on_evacuation_finished,
};

/* ---- Manager.Evacuate ---- */

int method_evacuate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_auto(GStrv) destinations = NULL, canonical = NULL;
        g_autoptr(GVariant) options = NULL;
        g_auto(EvacuationOptions) parsed = {};
        g_autoptr(GError) gerror = NULL;
        Evacuation *ev = NULL;
        int r;

        r = sd_bus_message_read_strv(m, &destinations);
        if (r < 0)
                return r;
        r = bus_message_read_gvariant(m, "a{sv}", &options);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "options must be an a{sv}: %s",
                                         g_strerror(-r));
        r = evacuation_options_parse((const char *const *) destinations, options, &parsed, &canonical, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);

        /* Rules see every destination, space-separated, canonical. */
        g_autofree char *joined = g_strjoinv(" ", canonical);
        const char *details[] = { "operation", "Evacuate", "destinations", joined, NULL };
        r = bus_verify_polkit_async(m, POLKIT_ACTION_EVACUATE, details, daemon->polkit, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autofree char *who = daemon_caller_description(m);
        uint64_t id = daemon->last_evacuation_id + 1;
        EvacuationObject *o = g_new0(EvacuationObject, 1);
        o->daemon = daemon;
        o->path = evacuation_dbus_path(id);
        /* Counted before it starts: with nothing to move, evacuation_start()
         * finishes it at once, and on_evacuation_finished() counts it down. */
        daemon->n_running_evacuations++;
        r = evacuation_start(daemon->manager, id, g_steal_pointer(&canonical), &parsed, who, &evacuation_observer,
                             daemon, &ev, &gerror);
        if (r < 0) {
                daemon->n_running_evacuations--;
                evacuation_object_free(o);
                return bus_set_gerror(error, gerror);
        }
        daemon->last_evacuation_id = id;
        o->evacuation = ev;
        g_hash_table_insert(daemon->evacuations, &ev->id, o);
        daemon_emit_object(daemon, o->path, true);
        if (ev->finished)
                evacuation_object_emit_finished(o); /* nothing to move */
        return sd_bus_reply_method_return(m, "o", o->path);
}
