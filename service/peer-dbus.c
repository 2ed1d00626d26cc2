/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration core's view of another host (peer.h), over D-Bus: a
 * connection to the destination's system bus, directly for unix:// (a bus
 * socket on this machine) or through ssh and systemd-stdio-bridge for
 * ssh:// (what busctl --host does), on which we call the destination
 * vmigrated's org.vmigrate.Migrate1.Incoming methods.
 */
#include <errno.h>

#include "bus-gvariant.h"
#include "bus-remote.h"
#include "bus-util.h"
#include "cookie.h"
#include "daemon.h"
#include "peer-dbus.h"
#include "errors.h"
#include "log.h"

#define PEER_CONNECT_TIMEOUT_USEC (30 * G_USEC_PER_SEC)

struct Peer {
        Daemon *daemon;
        sd_bus *bus;
        char *name; /* the destination as the user gave it, canonical */
        sd_bus_slot *hello;
        PeerConnectDone connect_done;
        void *connect_userdata;
        sd_event_source *connect_failure; /* reports a failed connect from the loop */
        GError *failure;
        GHashTable *calls; /* PeerCall* in flight */
};

typedef struct PeerCall {
        Peer *peer;
        sd_bus_slot *slot;
        PeerReplyDone done;
        void *userdata;
        char *method;
} PeerCall;

static void peer_call_free(gpointer p) {
        PeerCall *call = p;
        sd_bus_slot_unref(call->slot);
        g_free(call->method);
        g_free(call);
}

static void peer_free(Peer *peer) {
        if (!peer)
                return;
        g_hash_table_unref(peer->calls);
        sd_bus_slot_unref(peer->hello);
        sd_event_source_disable_unref(peer->connect_failure);
        sd_bus_flush_close_unref(peer->bus);
        g_clear_error(&peer->failure);
        g_free(peer->name);
        g_free(peer);
}

/* Errors from the other daemon keep their meaning (a NoSuchDomain there is
 * one here); failures to talk to it become DestinationUnreachable. */
static GError *peer_error(Peer *peer, const sd_bus_error *e, const char *what) {
        VmError code = vm_error_from_dbus_name(e->name);

        if (code == _VM_ERROR_MAX) {
                bool transport = sd_bus_error_has_names(e, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED,
                                                        SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                                        SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_NO_SERVER,
                                                        SD_BUS_ERROR_IO_ERROR, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                                        SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_ACCESS_DENIED);
                code = transport ? VM_ERROR_DESTINATION_UNREACHABLE : VM_ERROR_FAILED;
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return g_error_new(VM_ERROR, code,
                                           "no vmigrated answers on %s (%s); is vmigrate installed there?",
                                           peer->name, e->message ? e->message : e->name);
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_IO_ERROR))
                        return g_error_new(VM_ERROR, code,
                                           "%s: the connection to %s broke (%s)%s", what, peer->name,
                                           e->message ? e->message : e->name,
                                           g_str_has_prefix(peer->name, "ssh://")
                                                   ? "; check that ssh to it works without a password and that "
                                                     "it has systemd-stdio-bridge"
                                                   : "");
        }
        return g_error_new(VM_ERROR, code, "%s on %s: %s", what, peer->name, e->message ? e->message : e->name);
}

static int on_connect_failure(sd_event_source *s, void *userdata) {
        Peer *peer = userdata;
        PeerConnectDone done = peer->connect_done;
        void *done_userdata = peer->connect_userdata;
        g_autoptr(GError) error = g_steal_pointer(&peer->failure);

        peer_free(peer);
        done(NULL, NULL, error, done_userdata);
        return 0;
}

/* Reports a failure from the event loop, never from inside connect(). */
static void peer_fail_later(Peer *peer, GError *error) {
        peer->hello = sd_bus_slot_unref(peer->hello);
        peer->failure = error;
        if (sd_event_add_defer(peer->daemon->event, &peer->connect_failure, on_connect_failure, peer) < 0)
                g_error("out of memory scheduling a failure report");
}

static int on_host_uuid(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *peer = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *uuid = NULL;
        int r;

        peer->hello = sd_bus_slot_unref(peer->hello);
        if (e) {
                peer_fail_later(peer, peer_error(peer, e, "asking for its host UUID"));
                return 0;
        }
        r = sd_bus_message_read(reply, "v", "s", &uuid);
        if (r < 0 || !uuid) {
                peer_fail_later(peer, g_error_new(VM_ERROR, VM_ERROR_INCOMPATIBLE,
                                                  "%s answered HostUUID with something that is not a string",
                                                  peer->name));
                return 0;
        }
        log_info("connected to %s (host %s)", peer->name, uuid);
        peer->connect_done(peer, uuid, NULL, peer->connect_userdata);
        return 0;
}

static int peer_open_bus(Peer *peer, const Destination *destination, GError **error) {
        int r;

        r = bus_open_destination(destination, &peer->bus);
        if (r < 0) {
                if (destination->kind == DESTINATION_SSH)
                        return vm_error_set(error, VM_ERROR_DESTINATION_UNREACHABLE,
                                            "cannot start ssh to %s: %s", destination->canonical,
                                            g_strerror(-r));
                return vm_error_set(error, VM_ERROR_DESTINATION_UNREACHABLE,
                                    "cannot connect to %s: %s (is a system bus with vmigrated there?)",
                                    destination->canonical, g_strerror(-r));
        }
        (void) sd_bus_set_description(peer->bus, "migration-peer");
        r = sd_bus_attach_event(peer->bus, peer->daemon->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot attach the connection: %s", g_strerror(-r));
        return 0;
}

static int peer_connect(void *ctx, const Destination *destination, PeerConnectDone done, void *userdata,
                        GError **error) {
        g_autoptr(sd_bus_message) request = NULL;
        Peer *peer = g_new0(Peer, 1);
        int r;

        peer->daemon = ctx;
        peer->name = g_strdup(destination->canonical);
        peer->connect_done = done;
        peer->connect_userdata = userdata;
        peer->calls = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, peer_call_free);

        r = peer_open_bus(peer, destination, error);
        if (r < 0) {
                /* Refused at once (no socket, say): answer from the loop like
                 * any other failure, so the job records it. */
                peer_fail_later(peer, g_error_copy(*error));
                g_clear_error(error);
                return 0;
        }
        r = sd_bus_message_new_method_call(peer->bus, &request, BUS_NAME, BUS_MANAGER_PATH,
                                           "org.freedesktop.DBus.Properties", "Get");
        if (r >= 0)
                r = sd_bus_message_append(request, "ss", BUS_MANAGER_INTERFACE, "HostUUID");
        if (r >= 0)
                r = sd_bus_call_async(peer->bus, &peer->hello, request, on_host_uuid, peer, PEER_CONNECT_TIMEOUT_USEC);
        if (r < 0) {
                peer_free(peer);
                return vm_error_set(error, VM_ERROR_FAILED, "cannot ask %s for its host UUID: %s",
                                    destination->canonical, g_strerror(-r));
        }
        return 0;
}

static int on_call_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PeerCall *call = userdata;
        Peer *peer = call->peer;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        g_autoptr(GVariant) cookie = NULL;
        g_autoptr(GError) error = NULL;
        PeerReplyDone done = call->done;
        void *done_userdata = call->userdata;
        g_autofree char *what = g_strdup_printf("%s", call->method);
        int r;

        g_hash_table_remove(peer->calls, call);
        if (e)
                error = peer_error(peer, e, what);
        else {
                r = bus_message_read_gvariant(reply, "a{sv}", &cookie);
                if (r < 0)
                        error = g_error_new(VM_ERROR, VM_ERROR_INCOMPATIBLE,
                                            "%s on %s: the answer is not an a{sv} cookie", what, peer->name);
        }
        done(cookie, error, done_userdata);
        return 0;
}

/*
 * Every Incoming cookie says where the source connected: "destination" =
 * the canonical URI, the detail its own migrate (or dry-run) check had,
 * so that the destination's migrate-incoming check can have it too
 * (incoming-dbus.c). Added here, where the connection is known, so that
 * Finish and Pause carry it as well as Prepare; the cores on both sides
 * do not read it. A cookie that the key would push over the size limit
 * goes as it is: the destination then has "" (which no rule names), not
 * a refused cookie.
 */
static GVariant *cookie_add_destination(Peer *peer, GVariant *cookie) {
        if (!g_variant_is_of_type(cookie, G_VARIANT_TYPE_VARDICT))
                return g_variant_ref(cookie);

        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(cookie);
        g_variant_dict_insert(&dict, "destination", "s", peer->name);
        g_autoptr(GVariant) stamped = g_variant_ref_sink(g_variant_dict_end(&dict));
        if (g_variant_get_size(stamped) > MIGRATION_COOKIE_MAX_BYTES)
                return g_variant_ref(cookie);
        return g_steal_pointer(&stamped);
}

static int peer_call(Peer *peer, const char *method, GVariant *args, uint64_t timeout_usec, PeerReplyDone done,
                     void *userdata, GError **error) {
        g_autoptr(GVariant) given = g_variant_ref_sink(args);
        g_autoptr(GVariant) owned = cookie_add_destination(peer, given);
        g_autoptr(sd_bus_message) request = NULL;
        PeerCall *call;
        int r;

        r = sd_bus_message_new_method_call(peer->bus, &request, BUS_NAME, BUS_MANAGER_PATH, BUS_INCOMING_INTERFACE,
                                           method);
        if (r >= 0)
                r = bus_message_append_gvariant(request, owned);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot build the %s call: %s", method, g_strerror(-r));

        call = g_new0(PeerCall, 1);
        call->peer = peer;
        call->done = done;
        call->userdata = userdata;
        call->method = g_strdup(method);
        r = sd_bus_call_async(peer->bus, &call->slot, request, on_call_reply, call, timeout_usec);
        if (r < 0) {
                peer_call_free(call);
                return vm_error_set(error, VM_ERROR_DESTINATION_UNREACHABLE, "cannot call %s on %s: %s", method,
                                    peer->name, g_strerror(-r));
        }
        g_hash_table_add(peer->calls, call);
        return 0;
}

static void peer_close(Peer *peer) {
        peer_free(peer);
}

const PeerOps peer_dbus_ops = {
        .connect = peer_connect,
        .call = peer_call,
        .close = peer_close,
};
