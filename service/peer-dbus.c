/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration core's view of another host (peer.h), over D-Bus: a
 * connection to the destination's system bus, directly for unix:// (a bus
 * socket on this machine) or through ssh and systemd-stdio-bridge for
 * ssh:// (what busctl --host does), on which we call the destination
 * vmigrated's org.vmigrate.Migrate1.Incoming methods.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-gvariant.h"
#include "bus-remote.h"
#include "bus-util.h"
#include "child.h"
#include "cookie.h"
#include "daemon.h"
#include "peer-dbus.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "protocol.h"
#include "text.h"

#define PEER_CONNECT_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
/* OpenTunnel answers at once (a local connect): a slow answer is a dead link. */
#define PEER_TUNNEL_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
/* What is kept of a tunnel's ssh messages. */
#define TUNNEL_STDERR_MAX 4096

struct Peer {
        Daemon *daemon;
        sd_bus *bus;
        Destination *destination;
        char *ssh_control_path; /* ssh: where tunnels join the bus's ssh connection */
        char *name; /* the destination as the user gave it, canonical */
        GPtrArray *tunnels; /* PeerTunnel*, open or opening */
        sd_bus_slot *hello;
        char *remote_host_uuid; /* HostUUID's answer, while Hostname is asked */
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

/* One tunnel: the OpenTunnel call in flight (unix://), or the ssh process
 * that carries it (ssh://). */
typedef struct PeerTunnel {
        Peer *peer;
        PeerTunnelOpened opened;
        PeerTunnelEnded ended;
        void *userdata;
        sd_bus_slot *slot;          /* unix: OpenTunnel in flight */
        int fd;                     /* ssh: our end, until opened takes it */
        sd_event_source *ready;     /* ssh: waits for vmigrate-tunnel's ready byte */
        sd_event_source *ready_timer;
        ChildWatch *child;          /* ssh */
        int stderr_fd;
        sd_event_source *stderr_source;
        GString *stderr_text;
} PeerTunnel;

static void peer_tunnel_free(gpointer p) {
        PeerTunnel *t = p;

        sd_bus_slot_unref(t->slot);
        sd_event_source_disable_unref(t->ready);
        sd_event_source_disable_unref(t->ready_timer);
        sd_event_source_disable_unref(t->stderr_source);
        child_watch_free(t->child); /* kills an ssh still running */
        if (t->fd >= 0)
                close(t->fd);
        if (t->stderr_fd >= 0)
                close(t->stderr_fd);
        g_string_free(t->stderr_text, true);
        g_free(t);
}

static void peer_free(Peer *peer) {
        if (!peer)
                return;
        if (peer->daemon->connecting_peers)
                g_ptr_array_remove(peer->daemon->connecting_peers, peer);
        g_ptr_array_unref(peer->tunnels);
        g_hash_table_unref(peer->calls);
        sd_bus_slot_unref(peer->hello);
        sd_event_source_disable_unref(peer->connect_failure);
        sd_bus_flush_close_unref(peer->bus);
        g_clear_error(&peer->failure);
        destination_free(peer->destination);
        if (peer->ssh_control_path)
                (void) unlink(peer->ssh_control_path); /* no new joins; a running master goes on */
        g_free(peer->ssh_control_path);
        g_free(peer->remote_host_uuid);
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
        done(NULL, NULL, NULL, error, done_userdata);
        return 0;
}

/* Reports a failure from the event loop, never from inside connect(). */
static void peer_fail_later(Peer *peer, GError *error) {
        peer->hello = sd_bus_slot_unref(peer->hello);
        peer->failure = error;
        if (sd_event_add_defer(peer->daemon->event, &peer->connect_failure, on_connect_failure, peer) < 0)
                g_error("out of memory scheduling a failure report");
}

/* Properties.Get of the other daemon's Manager, answered to handler. */
static int peer_ask_property(Peer *peer, const char *property, sd_bus_message_handler_t handler) {
        g_autoptr(sd_bus_message) request = NULL;
        int r;

        r = sd_bus_message_new_method_call(peer->bus, &request, BUS_NAME, BUS_MANAGER_PATH,
                                           "org.freedesktop.DBus.Properties", "Get");
        if (r >= 0)
                r = sd_bus_message_append(request, "ss", BUS_MANAGER_INTERFACE, property);
        if (r >= 0)
                r = sd_bus_call_async(peer->bus, &peer->hello, request, handler, peer,
                                      PEER_CONNECT_TIMEOUT_USEC);
        return r;
}

/* The host name is only for messages: a daemon that does not give one
 * is still a peer (its errors then name it by its address). */
static int on_hostname(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *peer = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *hostname = NULL;

        peer->hello = sd_bus_slot_unref(peer->hello);
        if (e && !sd_bus_error_has_names(e, SD_BUS_ERROR_UNKNOWN_PROPERTY, SD_BUS_ERROR_ACCESS_DENIED)) {
                peer_fail_later(peer, peer_error(peer, e, "asking for its host name"));
                return 0;
        }
        if (!e && sd_bus_message_read(reply, "v", "s", &hostname) < 0)
                hostname = NULL;
        log_info("connected to %s (host %s, %s)", peer->name, peer->remote_host_uuid,
                 hostname ? hostname : "no host name given");
        g_ptr_array_remove(peer->daemon->connecting_peers, peer); /* the caller's now */
        peer->connect_done(peer, peer->remote_host_uuid, hostname, NULL, peer->connect_userdata);
        return 0;
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
        peer->remote_host_uuid = g_strdup(uuid);
        r = peer_ask_property(peer, "Hostname", on_hostname);
        if (r < 0)
                peer_fail_later(peer,
                                g_error_new(VM_ERROR, VM_ERROR_FAILED, "cannot ask %s for its host name: %s",
                                            peer->name, g_strerror(-r)));
        return 0;
}

/* ssh: the bus's ssh connection is shared with the tunnels to the same
 * host, so that a tunnel costs a channel, not a second login (a third of
 * a second here). One socket per peer connection, in a directory of
 * ours. */
static char *peer_ssh_control_path(Peer *peer) {
        static unsigned counter;
        g_autofree char *dir = g_build_filename(peer->daemon->manager->runtime_dir, "ssh", NULL);
        char *path;

        if (g_mkdir_with_parents(dir, 0700) < 0) {
                log_warning("cannot create %s (%s): tunnels to %s log in again", dir, g_strerror(errno),
                            peer->name);
                return NULL;
        }
        path = g_strdup_printf("%s/%u", dir, ++counter);
        /* ssh binds "<path>.<16 random characters>" first, then renames. */
        if (strlen(path) + 17 >= UNIX_SOCKET_PATH_MAX) {
                g_free(path);
                return NULL;
        }
        (void) unlink(path); /* of an earlier run of this daemon */
        return path;
}

static int peer_open_bus(Peer *peer, const Destination *destination, GError **error) {
        int r;

        if (destination->kind == DESTINATION_SSH)
                peer->ssh_control_path = peer_ssh_control_path(peer);
        r = bus_open_destination(destination, peer->ssh_control_path, &peer->bus);
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
        Peer *peer = g_new0(Peer, 1);
        int r;

        peer->daemon = ctx;
        peer->name = g_strdup(destination->canonical);
        peer->tunnels = g_ptr_array_new_with_free_func(peer_tunnel_free);
        peer->connect_done = done;
        peer->connect_userdata = userdata;
        peer->calls = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, peer_call_free);
        if (!peer->daemon->connecting_peers)
                peer->daemon->connecting_peers = g_ptr_array_new();
        g_ptr_array_add(peer->daemon->connecting_peers, peer);

        r = destination_parse(destination->canonical, &peer->destination, error);
        if (r < 0) {
                peer_free(peer);
                return r;
        }
        r = peer_open_bus(peer, destination, error);
        if (r < 0) {
                /* Refused at once (no socket, say): answer from the loop like
                 * any other failure, so the job records it. */
                peer_fail_later(peer, g_error_copy(*error));
                g_clear_error(error);
                return 0;
        }
        r = peer_ask_property(peer, "HostUUID", on_host_uuid);
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

/* ---- tunnels (option 'tunnelled') ---- */

static void peer_tunnel_remove(PeerTunnel *t) {
        g_ptr_array_remove(t->peer->tunnels, t);
}

static GVariant *tunnel_cookie(const char *uuid, const char *token) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        /* What vmigrate-tunnel sends too: it knows nothing of this host. */
        g_variant_dict_insert(&dict, "version", "u", (uint32_t) MIGRATION_COOKIE_VERSION);
        g_variant_dict_insert(&dict, "uuid", "s", uuid);
        g_variant_dict_insert(&dict, "tunnel-token", "s", token);
        return g_variant_dict_end(&dict);
}

static int on_open_tunnel_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PeerTunnel *t = userdata;
        Peer *peer = t->peer;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        PeerTunnelOpened opened = t->opened;
        void *opened_userdata = t->userdata;
        g_autoptr(GError) error = NULL;
        int fd = -1, received;

        if (e)
                error = peer_error(peer, e, "OpenTunnel");
        else if (sd_bus_message_read(reply, "h", &received) < 0 ||
                 (fd = fcntl(received, F_DUPFD_CLOEXEC, 3)) < 0)
                error = g_error_new(VM_ERROR, VM_ERROR_INCOMPATIBLE,
                                    "OpenTunnel on %s: the answer holds no usable file descriptor", peer->name);
        /* Over unix:// nothing carries the stream but the kernel: no end to report. */
        peer_tunnel_remove(t);
        opened(fd, error, opened_userdata);
        return 0;
}

static int tunnel_open_unix(PeerTunnel *t, const char *uuid, const char *token, GError **error) {
        Peer *peer = t->peer;
        g_autoptr(sd_bus_message) request = NULL;
        g_autoptr(GVariant) cookie = g_variant_ref_sink(tunnel_cookie(uuid, token));
        int r;

        if (!sd_bus_can_send(peer->bus, SD_BUS_TYPE_UNIX_FD))
                return vm_error_set(error, VM_ERROR_DESTINATION_UNREACHABLE,
                                    "the connection to %s cannot pass file descriptors, which a tunnelled "
                                    "migration over unix:// needs",
                                    peer->name);
        r = sd_bus_message_new_method_call(peer->bus, &request, BUS_NAME, BUS_MANAGER_PATH, BUS_INCOMING_INTERFACE,
                                           "OpenTunnel");
        if (r >= 0)
                r = bus_message_append_gvariant(request, cookie);
        if (r >= 0)
                r = sd_bus_call_async(peer->bus, &t->slot, request, on_open_tunnel_reply, t,
                                      PEER_TUNNEL_TIMEOUT_USEC);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_DESTINATION_UNREACHABLE, "cannot call OpenTunnel on %s: %s",
                                    peer->name, g_strerror(-r));
        return 0;
}

/* The last words say why: keep the end. */
static bool tunnel_read_stderr(PeerTunnel *t) {
        return child_read_output(t->stderr_fd, t->stderr_text, TUNNEL_STDERR_MAX, CHILD_OUTPUT_TAIL, NULL);
}

static int on_tunnel_stderr(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PeerTunnel *t = userdata;

        if (!tunnel_read_stderr(t))
                t->stderr_source = sd_event_source_disable_unref(t->stderr_source);
        return 0;
}

static void on_tunnel_exit(ChildWatch *w, int status, void *userdata) {
        PeerTunnel *t = userdata;
        Peer *peer = t->peer;
        PeerTunnelOpened opened = t->opened;
        PeerTunnelEnded ended = t->ended;
        void *cb_userdata = t->userdata;
        bool was_open = t->fd < 0;
        g_autoptr(GError) error = NULL;

        if (t->stderr_fd >= 0)
                (void) tunnel_read_stderr(t);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !was_open) {
                g_autofree char *how = child_describe_status(status);
                g_autofree char *tail = text_last_lines(t->stderr_text->str, 3);
                /* ssh itself failing (255) is the link or the login; the
                 * program's own failures are the other host's words. */
                error = g_error_new(VM_ERROR,
                                    WIFEXITED(status) && WEXITSTATUS(status) == 255
                                            ? VM_ERROR_DESTINATION_UNREACHABLE
                                            : VM_ERROR_MIGRATION_FAILED,
                                    "ssh to %s %s%s%s%s", peer->name, how,
                                    was_open ? "" : " before the tunnel was open", *tail ? ": " : "", tail);
                log_warning("tunnel to %s: %s", peer->name, error->message);
        } else
                log_debug("tunnel to %s: ssh ended", peer->name);
        peer_tunnel_remove(t);
        if (was_open)
                ended(error, cb_userdata);
        else
                opened(-1, error, cb_userdata);
}

/* vmigrate-tunnel's first byte: connected on the other host (protocol.h). */
static int on_tunnel_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PeerTunnel *t = userdata;
        unsigned char byte = 0;
        ssize_t n = read(t->fd, &byte, 1);

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        t->ready = sd_event_source_disable_unref(t->ready);
        t->ready_timer = sd_event_source_disable_unref(t->ready_timer);
        if (n != 1 || byte != TUNNEL_READY_BYTE) {
                /* Its exit (ssh's) says why; stop it in case it lingers. */
                log_warning("tunnel to %s: %s instead of the ready byte", t->peer->name,
                            n == 0 ? "end of stream" : n < 0 ? g_strerror(errno) : "another byte");
                child_watch_kill(t->child);
                return 0;
        }
        fd = t->fd;
        t->fd = -1;
        log_debug("tunnel to %s: open on the other host", t->peer->name);
        t->opened(fd, NULL, t->userdata);
        return 0;
}

static int on_tunnel_ready_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        PeerTunnel *t = userdata;

        t->ready_timer = sd_event_source_disable_unref(t->ready_timer);
        t->ready = sd_event_source_disable_unref(t->ready);
        log_warning("tunnel to %s: not open on the other host after %d s: stopping its ssh", t->peer->name,
                    (int) (PEER_TUNNEL_TIMEOUT_USEC / G_USEC_PER_SEC));
        g_string_append_printf(t->stderr_text, "\nvmigrate-tunnel did not say it was open within %d s",
                               (int) (PEER_TUNNEL_TIMEOUT_USEC / G_USEC_PER_SEC));
        child_watch_kill(t->child);
        return 0;
}

/* ssh -xT host vmigrate-tunnel UUID TOKEN, with our end of a socketpair as
 * its standard input and output: ssh carries the bytes, not our loop. */
static int tunnel_open_ssh(PeerTunnel *t, const char *uuid, const char *token, GError **error) {
        Peer *peer = t->peer;
        const char *remote[] = { peer->daemon->tunnel_command, uuid, token, NULL };
        g_auto(GStrv) argv = destination_ssh_argv(peer->destination,
                                                  peer->ssh_control_path ? SSH_SHARE_JOIN : SSH_SHARE_NONE,
                                                  peer->ssh_control_path, remote);
        int pair[2] = { -1, -1 }, err[2] = { -1, -1 };
        pid_t pid;
        int r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                r = -errno;
                for (int i = 0; i < 2; i++) {
                        if (pair[i] >= 0)
                                close(pair[i]);
                        if (err[i] >= 0)
                                close(err[i]);
                }
                return vm_error_set(error, VM_ERROR_FAILED, "cannot make the tunnel's socket: %s", g_strerror(-r));
        }
        t->fd = pair[0];
        t->stderr_fd = err[0];
        r = child_spawn(argv[0], argv, NULL, pair[1], pair[1], err[1], &pid);
        close(pair[1]);
        close(err[1]);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_DESTINATION_UNREACHABLE, "cannot start ssh to %s: %s",
                                    peer->name, g_strerror(-r));
        r = child_watch_new(peer->daemon->event, pid, on_tunnel_exit, t, &t->child);
        if (r >= 0) {
                (void) fcntl(t->stderr_fd, F_SETFL, O_NONBLOCK);
                r = sd_event_add_io(peer->daemon->event, &t->stderr_source, t->stderr_fd, EPOLLIN, on_tunnel_stderr,
                                    t);
        }
        /* Opened once vmigrate-tunnel says so, not when ssh starts. */
        if (r >= 0)
                r = sd_event_add_io(peer->daemon->event, &t->ready, t->fd, EPOLLIN, on_tunnel_ready, t);
        if (r >= 0)
                r = sd_event_add_time_relative(peer->daemon->event, &t->ready_timer, CLOCK_MONOTONIC,
                                               PEER_TUNNEL_TIMEOUT_USEC, G_USEC_PER_SEC, on_tunnel_ready_timeout, t);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot watch the tunnel's ssh: %s", g_strerror(-r));
        log_info("tunnel to %s: ssh started as pid %d", peer->name, (int) pid);
        return 0;
}

static int peer_open_tunnel(Peer *peer, const char *uuid, const char *token, PeerTunnelOpened opened,
                            PeerTunnelEnded ended, void *userdata, GError **error) {
        PeerTunnel *t = g_new0(PeerTunnel, 1);
        int r;

        t->peer = peer;
        t->opened = opened;
        t->ended = ended;
        t->userdata = userdata;
        t->fd = -1;
        t->stderr_fd = -1;
        t->stderr_text = g_string_new(NULL);
        g_ptr_array_add(peer->tunnels, t);
        r = peer->destination->kind == DESTINATION_SSH ? tunnel_open_ssh(t, uuid, token, error)
                                                       : tunnel_open_unix(t, uuid, token, error);
        if (r < 0)
                peer_tunnel_remove(t);
        return r;
}

static void peer_close(Peer *peer) {
        peer_free(peer);
}

void peer_dbus_drop_connecting(Daemon *daemon) {
        while (daemon->connecting_peers && daemon->connecting_peers->len > 0)
                peer_free(daemon->connecting_peers->pdata[0]);
        g_clear_pointer(&daemon->connecting_peers, g_ptr_array_unref);
}

const PeerOps peer_dbus_ops = {
        .connect = peer_connect,
        .call = peer_call,
        .open_tunnel = peer_open_tunnel,
        .close = peer_close,
};
