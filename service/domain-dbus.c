/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "bus-errors.h"
#include "bus-util.h"
#include "daemon.h"
#include "errors.h"
#include "log.h"

/* ShutdownWithTimeout accepts up to an hour: longer is a hang, not a shutdown. */
#define DOMAIN_SHUTDOWN_TIMEOUT_MAX_MS (3600 * 1000ULL)

char *domain_dbus_path(const Domain *d) {
        char *path = NULL;

        /* Only fails on OOM, which GLib treats as fatal elsewhere too. */
        if (sd_bus_path_encode(BUS_DOMAIN_PREFIX, domain_uuid(d), &path) < 0)
                g_error("out of memory encoding an object path");
        return path;
}

static Daemon *daemon_of(Domain *d) {
        /* The bus layer is the manager's observer; its data is the daemon. */
        return d->manager->observer_data;
}

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

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", domain_name(userdata));
}

static int property_get_uuid(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", domain_uuid(userdata));
}

static int property_get_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return sd_bus_message_append(reply, "s", d->backend->name);
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return sd_bus_message_append(reply, "s", domain_state_to_string(d->state));
}

static int property_get_state_reason(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return sd_bus_message_append(reply, "s", d->state_reason ? d->state_reason : "unknown");
}

static int property_get_persistent(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", domain_is_persistent(userdata));
}

static int property_get_active(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", domain_is_active(userdata));
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

/* Start, Suspend, Resume, Destroy: authorize, run, reply when done. */
static int run_operation(sd_bus_message *m, Domain *d, DomainOperation op, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        int r;

        r = verify_manage(m, d, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit will call us again */

        DeferredReply *reply = deferred_reply_new(daemon_of(d), m);
        r = op(d, operation_done, reply, &gerror);
        if (r < 0) {
                deferred_reply_free(reply);
                return bus_set_gerror(error, gerror);
        }
        return 1;
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
        int r;

        r = verify_manage(m, d, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        DeferredReply *reply = deferred_reply_new(daemon_of(d), m);
        r = domain_shutdown(d, timeout_usec, operation_done, reply, &gerror);
        if (r < 0) {
                deferred_reply_free(reply);
                return bus_set_gerror(error, gerror);
        }
        return 1;
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

static int method_get_xml(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_autofree char *xml = domain_get_xml(userdata);
        return sd_bus_reply_method_return(m, "s", xml);
}

static const sd_bus_vtable domain_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UUID", "s", property_get_uuid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Backend", "s", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StateReason", "s", property_get_state_reason, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", property_get_persistent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Active", "b", property_get_active, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryBytes", "t", property_get_memory, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("VCPUs", "u", property_get_vcpus, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
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
        SD_BUS_SIGNAL_WITH_ARGS("Lifecycle", SD_BUS_ARGS("s", event, "s", detail), 0),
        SD_BUS_VTABLE_END,
};

int domain_dbus_register(Daemon *daemon) {
        int r;

        r = sd_bus_add_fallback_vtable(daemon->bus, NULL, BUS_DOMAIN_PREFIX, BUS_DOMAIN_INTERFACE, domain_vtable,
                                       domain_object_find, daemon);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(daemon->bus, NULL, BUS_DOMAIN_PREFIX, domain_node_enumerator, daemon);
}

/* The observer: core events become signals. Failures to emit are logged,
 * never fatal: a lost signal must not take the daemon down. */

static void observe_domain_added(Manager *m, Domain *d, void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = domain_dbus_path(d);
        int r;

        r = sd_bus_emit_object_added(daemon->bus, path);
        if (r < 0)
                log_warning("cannot emit InterfacesAdded for %s: %s", path, g_strerror(-r));
}

static void observe_domain_removed(Manager *m, Domain *d, void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = domain_dbus_path(d);
        int r;

        r = sd_bus_emit_object_removed(daemon->bus, path);
        if (r < 0)
                log_warning("cannot emit InterfacesRemoved for %s: %s", path, g_strerror(-r));
}

static void observe_domain_changed(Manager *m, Domain *d, DomainChange what, void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = domain_dbus_path(d);
        const char *names[8];
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
        names[n] = NULL;
        if (n == 0)
                return;

        r = sd_bus_emit_properties_changed_strv(daemon->bus, path, BUS_DOMAIN_INTERFACE, (char **) names);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged for %s: %s", path, g_strerror(-r));
}

static void observe_domain_lifecycle(Manager *m, Domain *d, const char *event, const char *detail,
                                     void *userdata) {
        Daemon *daemon = userdata;
        g_autofree char *path = domain_dbus_path(d);
        int r;

        r = sd_bus_emit_signal(daemon->bus, path, BUS_DOMAIN_INTERFACE, "Lifecycle", "ss", event,
                               detail ? detail : "");
        if (r < 0)
                log_warning("cannot emit Lifecycle for %s: %s", path, g_strerror(-r));
}

const ManagerObserver daemon_manager_observer = {
        .domain_added = observe_domain_added,
        .domain_removed = observe_domain_removed,
        .domain_changed = observe_domain_changed,
        .domain_lifecycle = observe_domain_lifecycle,
};
