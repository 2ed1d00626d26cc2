/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bus layer's hub: what every *-dbus.c needs and none of them owns.
 * Object paths, replies that wait for the core, ObjectManager signals,
 * the polkit details of a domain, job control, and whether the daemon may
 * exit. It calls into the core and sd-bus, never into a *-dbus.c file.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-util.h"
#include "daemon.h"
#include "errors.h"
#include "log.h"
#include "migration.h"

/* ---- objects ---- */

Daemon *daemon_of(Domain *d) {
        /* The bus layer is the manager's observer; its data is the daemon. */
        return d->manager->observer_data;
}

Daemon *daemon_of_job(Job *j) {
        return j->manager->observer_data;
}

char *domain_dbus_path(const Domain *d) {
        char *path = NULL;

        /* Only fails on OOM, which GLib treats as fatal elsewhere too. */
        if (sd_bus_path_encode(BUS_DOMAIN_PREFIX, domain_uuid(d), &path) < 0)
                g_error("out of memory encoding an object path");
        return path;
}

char *job_dbus_path(const Job *j) {
        return g_strdup_printf(BUS_JOB_PREFIX "/%" PRIu64, j->id);
}

void daemon_emit_object(Daemon *daemon, const char *path, bool added) {
        int r = added ? sd_bus_emit_object_added(daemon->bus, path) : sd_bus_emit_object_removed(daemon->bus, path);

        /* A lost signal must not take the daemon down: log it. */
        if (r < 0)
                log_warning("cannot emit %s for %s: %s", added ? "InterfacesAdded" : "InterfacesRemoved", path,
                            g_strerror(-r));
}

bool daemon_path_id(const char *path, const char *prefix, uint64_t *ret_id) {
        size_t n = strlen(prefix);
        guint64 id;

        if (strncmp(path, prefix, n) != 0 || path[n] != '/' ||
            !g_ascii_string_to_unsigned(path + n + 1, 10, 1, G_MAXUINT64, &id, NULL))
                return false;
        *ret_id = id;
        return true;
}

int daemon_add_objects(Daemon *daemon, const char *prefix, const char *interface, const sd_bus_vtable *vtable,
                       sd_bus_object_find_t find, sd_bus_node_enumerator_t enumerator) {
        int r;

        r = sd_bus_add_fallback_vtable(daemon->bus, NULL, prefix, interface, vtable, find, daemon);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(daemon->bus, NULL, prefix, enumerator, daemon);
}

/* ---- replies the core answers later ---- */

DeferredReply *deferred_reply_new(Daemon *daemon, sd_bus_message *call) {
        DeferredReply *reply = g_new0(DeferredReply, 1);

        reply->daemon = daemon;
        reply->call = sd_bus_message_ref(call);
        daemon->n_deferred_replies++;
        return reply;
}

void deferred_reply_free(DeferredReply *reply) {
        Daemon *daemon;

        if (!reply)
                return;
        daemon = reply->daemon;
        g_assert(daemon->n_deferred_replies > 0);
        daemon->n_deferred_replies--;
        sd_bus_message_unref(reply->call);
        g_free(reply);
        daemon_check_exit(daemon);
}

void deferred_reply_finish(DeferredReply *reply, Domain *d, int r, const GError *error, bool with_path) {
        int k;

        if (r < 0)
                k = bus_reply_gerror(reply->call, error);
        else if (with_path) {
                g_autofree char *path = domain_dbus_path(d);
                k = sd_bus_reply_method_return(reply->call, "o", path);
        } else
                k = sd_bus_reply_method_return(reply->call, NULL);
        if (k < 0)
                log_debug("cannot send reply to %s: %s", sd_bus_message_get_sender(reply->call) ?: "?",
                          g_strerror(-k));
        deferred_reply_free(reply);
}

/* ---- polkit ---- */

const char *daemon_domain_xml_uuid_detail(const char *xml, const DomainDef *def) {
        /* domain_def_parse() makes up a UUID for a document without one, a
         * different one at each parse: a detail no rule can name, and one
         * that changes each time the call is dispatched, so that polkit's
         * answer would never be for the question asked (bus-polkit.c).
         * The parser refuses namespaced elements and entity declarations,
         * so a <uuid> element is always there as the literal text "<uuid";
         * a document with that text elsewhere only (a comment) keeps the
         * made-up UUID and cannot be authorized, which is safe. */
        return strstr(xml, "<uuid") ? def->uuid : "";
}

int daemon_verify_domain_action(Daemon *daemon, sd_bus_message *call, const char *action, const char *domain_name,
                                const char *uuid, sd_bus_error *ret_error) {
        const char *details[] = {
                "domain", domain_name, "uuid", uuid, "operation", sd_bus_message_get_member(call), NULL,
        };

        return bus_verify_polkit_async(call, action, details, daemon->polkit, ret_error);
}

int daemon_verify_migration_action(Daemon *daemon, sd_bus_message *call, const char *action,
                                   const char *domain_name, const char *uuid, const char *destination,
                                   sd_bus_error *ret_error) {
        const char *details[] = {
                "domain", domain_name, "uuid", uuid, "operation", sd_bus_message_get_member(call),
                "destination", destination, NULL,
        };

        return bus_verify_polkit_async(call, action, details, daemon->polkit, ret_error);
}

/* Where j takes its domain. On the source, j->peer is the canonical URI
 * Migrate was given, the "destination" its migrate check had. An incoming
 * job's peer is the source's host name (its own word, and not where the
 * domain goes); where it goes is this host, which has no URI of its own
 * here: "". A rule that wants a certain destination thus never lets
 * anyone steer an incoming job. */
static const char *job_destination_detail(const Job *j) {
        return j->kind == JOB_MIGRATION_OUT && j->peer ? j->peer : "";
}

int daemon_verify_job_action(Daemon *daemon, sd_bus_message *call, Job *j, sd_bus_error *error) {
        return daemon_verify_migration_action(daemon, call, POLKIT_ACTION_CONTROL_JOB, domain_name(j->domain),
                                              domain_uuid(j->domain), job_destination_detail(j), error);
}

int daemon_run_job_control(sd_bus_message *m, Job *j, int (*control)(Job *j, GError **error),
                           sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        Daemon *daemon = daemon_of_job(j);
        int r;

        r = daemon_verify_job_action(daemon, m, j, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit will call us again */
        r = control(j, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        return sd_bus_reply_method_return(m, NULL);
}

/* ---- exit ---- */

bool daemon_is_quiet(Daemon *daemon) {
        return daemon->n_deferred_replies == 0 && polkit_registry_size(daemon->polkit) == 0 &&
               !migration_any_running(daemon->manager) && daemon->n_running_evacuations == 0;
}

char *daemon_caller_description(sd_bus_message *m) {
        g_autoptr(sd_bus_creds) creds = NULL;
        const char *sender = sd_bus_message_get_sender(m);
        uid_t uid;

        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds) >= 0 && sd_bus_creds_get_euid(creds, &uid) >= 0)
                return g_strdup_printf("%s (UID %u)", sender ? sender : "?", (unsigned) uid);
        return g_strdup(sender ? sender : "?");
}

void daemon_check_exit(Daemon *daemon) {
        if (daemon->exiting && daemon->name_released && daemon_is_quiet(daemon))
                (void) sd_event_exit(daemon->event, 0);
}
