/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.vmigrate.Migrate1.Incoming: what a source host's vmigrated calls on
 * this one (the destination) during a migration. Every method takes and
 * returns one a{sv} cookie; migration.c validates them.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bus-errors.h"
#include "bus-gvariant.h"
#include "bus-util.h"
#include "cookie.h"
#include "incoming-dbus.h"
#include "errors.h"
#include "log.h"
#include "migration.h"

typedef struct CallerTrack {
        Daemon *daemon;
        char *name;
        sd_bus_track *track;
} CallerTrack;

static void caller_track_free(gpointer p) {
        CallerTrack *t = p;
        sd_bus_track_unref(t->track);
        g_free(t->name);
        g_free(t);
}

static int on_caller_gone(sd_bus_track *track, void *userdata) {
        CallerTrack *t = userdata;
        Daemon *daemon = t->daemon;
        g_autofree char *name = g_strdup(t->name);

        /* The source's connection is gone (crash, network, ssh): what it left
         * half done here would otherwise wait forever. */
        g_hash_table_remove(daemon->incoming_tracks, name);
        migration_incoming_caller_vanished(daemon->manager, name);
        return 0;
}

static int track_caller(Daemon *daemon, sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);
        CallerTrack *t;
        int r;

        if (!sender || g_hash_table_contains(daemon->incoming_tracks, sender))
                return 0;
        t = g_new0(CallerTrack, 1);
        t->daemon = daemon;
        t->name = g_strdup(sender);
        r = sd_bus_track_new(daemon->bus, &t->track, on_caller_gone, t);
        if (r >= 0)
                r = sd_bus_track_add_sender(t->track, m);
        if (r < 0) {
                caller_track_free(t);
                return r;
        }
        g_hash_table_insert(daemon->incoming_tracks, t->name, t);
        return 0;
}

GHashTable *incoming_track_table_new(void) {
        return g_hash_table_new_full(g_str_hash, g_str_equal, NULL, caller_track_free);
}

static int read_cookie(sd_bus_message *m, GVariant **ret, sd_bus_error *error) {
        int r = bus_message_read_gvariant(m, "a{sv}", ret);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "the cookie is not a readable a{sv}: %s",
                                         g_strerror(-r));
        return 0;
}

static void on_incoming_done(GVariant *reply, const GError *error, void *userdata) {
        DeferredReply *deferred = userdata;
        g_autoptr(sd_bus_message) message = NULL;
        int r;

        if (!reply) {
                deferred_reply_finish(deferred, NULL, -EIO, error, false);
                return;
        }
        g_autoptr(GVariant) owned = g_variant_ref_sink(reply);
        r = sd_bus_message_new_method_return(deferred->call, &message);
        if (r >= 0)
                r = bus_message_append_gvariant(message, owned);
        if (r >= 0)
                r = sd_bus_send(NULL, message, NULL);
        if (r < 0)
                log_warning("cannot answer the migration source: %s", g_strerror(-r));
        deferred_reply_free(deferred);
}

/* Where an Incoming cookie names its domain. */
typedef enum IncomingDomainKey {
        INCOMING_DOMAIN_XML,  /* Prepare, CheckPrepare: "domain-xml" */
        INCOMING_DOMAIN_UUID, /* Finish, Pause: "uuid", a domain already here */
} IncomingDomainKey;

/* The polkit details of an Incoming call, read from its cookie. */
typedef struct IncomingDetails {
        char *name;
        char *uuid;
        char *destination;
} IncomingDetails;

static void incoming_details_clear(IncomingDetails *details) {
        g_free(details->name);
        g_free(details->uuid);
        g_free(details->destination);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(IncomingDetails, incoming_details_clear)

/*
 * The cookie is the caller's word and hostile: each value is checked, and
 * one that is missing or malformed becomes "" (which no rule names) rather
 * than an error here. The core validates the whole cookie after
 * authorization and says exactly what is wrong with it; anything it
 * refuses changes nothing, whatever polkit said.
 *
 * The domain is read with the parser the core then uses, so that polkit
 * is asked about the domain Prepare would create, not about another
 * reading of the same document. "destination" is what the source
 * connected to (peer-dbus.c adds it to every cookie); a source that
 * predates it sends none.
 */
static void incoming_read_details(Daemon *daemon, GVariant *cookie, IncomingDomainKey key,
                                  IncomingDetails *ret) {
        const char *s;

        /* The core refuses larger cookies: no need to parse them. */
        if (g_variant_get_size(cookie) > MIGRATION_COOKIE_MAX_BYTES)
                return;
        if (key == INCOMING_DOMAIN_XML && g_variant_lookup(cookie, "domain-xml", "&s", &s)) {
                g_autoptr(DomainDef) def = NULL;
                g_autoptr(GError) error = NULL;

                if (domain_def_parse(s, strlen(s), &def, &error) >= 0) {
                        ret->name = g_strdup(def->name);
                        ret->uuid = g_strdup(daemon_domain_xml_uuid_detail(s, def));
                }
        } else if (key == INCOMING_DOMAIN_UUID && g_variant_lookup(cookie, "uuid", "&s", &s)) {
                char uuid[37];

                if (domain_uuid_parse(s, uuid)) {
                        Domain *d = g_hash_table_lookup(daemon->manager->domains, uuid);
                        ret->name = g_strdup(d ? domain_name(d) : "");
                        ret->uuid = g_strdup(uuid);
                }
        }
        if (g_variant_lookup(cookie, "destination", "&s", &s)) {
                g_autoptr(Destination) destination = NULL;
                g_autoptr(GError) error = NULL;

                if (destination_parse(s, &destination, &error) >= 0)
                        ret->destination = g_strdup(destination->canonical);
        }
}

typedef int (*IncomingMethod)(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                              GError **error);

/* Reads the cookie and asks polkit about it: 1 and *ret_cookie to go on,
 * 0 while polkit is asked (the call comes back), < 0 refused. */
static int incoming_authorize(sd_bus_message *m, Daemon *daemon, IncomingDomainKey key, GVariant **ret_cookie,
                              sd_bus_error *error) {
        g_auto(IncomingDetails) details = { 0 };
        g_autoptr(GVariant) cookie = NULL;
        int r;

        r = read_cookie(m, &cookie, error);
        if (r < 0)
                return r;
        incoming_read_details(daemon, cookie, key, &details);
        r = daemon_verify_migration_action(daemon, m, POLKIT_ACTION_MIGRATE_INCOMING, details.name ?: "",
                                           details.uuid ?: "", details.destination ?: "", error);
        if (r <= 0)
                return r;
        *ret_cookie = g_steal_pointer(&cookie);
        return 1;
}

static int run_incoming(sd_bus_message *m, Daemon *daemon, IncomingMethod method, IncomingDomainKey key,
                        sd_bus_error *error) {
        g_autoptr(GVariant) cookie = NULL;
        g_autoptr(GError) gerror = NULL;
        int r;

        r = incoming_authorize(m, daemon, key, &cookie, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = track_caller(daemon, m);
        if (r < 0)
                return r;
        DeferredReply *deferred = deferred_reply_new(daemon, m);
        r = method(daemon->manager, cookie, sd_bus_message_get_sender(m), on_incoming_done, deferred, &gerror);
        if (r < 0) {
                deferred_reply_free(deferred);
                return bus_set_gerror(error, gerror);
        }
        return 1;
}

static int method_prepare(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_incoming(m, userdata, migration_incoming_prepare, INCOMING_DOMAIN_XML, error);
}

static int method_finish(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_incoming(m, userdata, migration_incoming_finish, INCOMING_DOMAIN_UUID, error);
}

static int method_pause(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_incoming(m, userdata, migration_incoming_pause, INCOMING_DOMAIN_UUID, error);
}

static int method_arrival(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_incoming(m, userdata, migration_incoming_arrival, INCOMING_DOMAIN_UUID, error);
}

static int method_check_prepare(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_incoming(m, userdata, migration_incoming_check, INCOMING_DOMAIN_XML, error);
}

/* Synchronous (a connect on this host) and not tied to the caller: over
 * ssh, vmigrate-tunnel calls it on a connection of its own; the token and
 * polkit decide. */
static int method_open_tunnel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(GVariant) cookie = NULL;
        g_autoptr(GError) gerror = NULL;
        int fd = -1, r;

        r = incoming_authorize(m, daemon, INCOMING_DOMAIN_UUID, &cookie, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = migration_incoming_open_tunnel(daemon->manager, cookie, &fd, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        r = sd_bus_reply_method_return(m, "h", fd);
        close(fd); /* the message holds its own copy */
        return r;
}

static const sd_bus_vtable incoming_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Prepare", SD_BUS_ARGS("a{sv}", cookie), SD_BUS_RESULT("a{sv}", cookie),
                                method_prepare, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Finish", SD_BUS_ARGS("a{sv}", cookie), SD_BUS_RESULT("a{sv}", cookie),
                                method_finish, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckPrepare", SD_BUS_ARGS("a{sv}", cookie), SD_BUS_RESULT("a{sv}", cookie),
                                method_check_prepare, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Pause", SD_BUS_ARGS("a{sv}", cookie), SD_BUS_RESULT("a{sv}", cookie),
                                method_pause, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Arrival", SD_BUS_ARGS("a{sv}", cookie), SD_BUS_RESULT("a{sv}", cookie),
                                method_arrival, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenTunnel", SD_BUS_ARGS("a{sv}", cookie), SD_BUS_RESULT("h", stream),
                                method_open_tunnel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int incoming_dbus_register(Daemon *daemon) {
        return sd_bus_add_object_vtable(daemon->bus, NULL, BUS_MANAGER_PATH, BUS_INCOMING_INTERFACE, incoming_vtable,
                                        daemon);
}
