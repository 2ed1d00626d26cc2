/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <glib.h>

#include "uri.h"

/*
 * The other host's vmigrated, as the migration core sees it: a connection
 * on which it calls the org.vmigrate.Migrate1.Incoming methods. The bus
 * layer implements it (peer-dbus.c) so that the core never touches sd-bus;
 * tests can put an in-process peer behind it.
 *
 * Every Incoming method takes one a{sv} cookie and answers one: versioned,
 * size-capped and validated on both sides (migration.c).
 */
typedef struct Peer Peer;

/* How long the other host may take to answer Prepare (it starts the
 * guest) and Finish (it waits for the end of the stream). */
#define PEER_PREPARE_TIMEOUT_USEC (120 * G_USEC_PER_SEC)
#define PEER_FINISH_TIMEOUT_USEC (120 * G_USEC_PER_SEC)

/* On success peer is set, remote_host_uuid is the destination's HostUUID
 * and remote_hostname its Hostname (NULL when it gave none; unchecked). */
typedef void (*PeerConnectDone)(Peer *peer, const char *remote_host_uuid, const char *remote_hostname,
                                const GError *error, void *userdata);
/* reply: a{sv} (borrowed) or NULL with error set (VM_ERROR domain: the
 * remote's org.vmigrate.Migrate1.Error.* mapped back; transport failures
 * as VM_ERROR_DESTINATION_UNREACHABLE). */
typedef void (*PeerReplyDone)(GVariant *reply, const GError *error, void *userdata);

/* Option 'tunnelled': fd is a socket whose other end reaches the stream
 * socket of the arriving guest (it is the callee's; -1 on failure). */
typedef void (*PeerTunnelOpened)(int fd, const GError *error, void *userdata);
/* The process carrying a tunnel (ssh) ended: error says how, or NULL when
 * it ended cleanly. Never called after close. */
typedef void (*PeerTunnelEnded)(const GError *error, void *userdata);

typedef struct PeerOps {
        /* Completion always from the event loop. */
        int (*connect)(void *ctx, const Destination *destination, PeerConnectDone done, void *userdata,
                       GError **error);
        /* method: an org.vmigrate.Migrate1.Incoming method; args: a{sv}
         * (a floating reference is taken over; a caller holding a full
         * reference keeps it). */
        int (*call)(Peer *peer, const char *method, GVariant *args, uint64_t timeout_usec, PeerReplyDone done,
                    void *userdata, GError **error);
        /* The stream's own channel to the other host, for the migration of
         * domain uuid that Prepare's "tunnel-token" names: over unix:// the
         * other daemon hands a connected socket over (Incoming.OpenTunnel);
         * over ssh:// it is our end of an ssh session running
         * vmigrate-tunnel there, which does the same on its side. No port
         * is opened on either host. opened comes from the event loop;
         * ended only for a carrier process. */
        int (*open_tunnel)(Peer *peer, const char *uuid, const char *token, PeerTunnelOpened opened,
                           PeerTunnelEnded ended, void *userdata, GError **error);
        /* Drops the connection and kills a tunnel's carrier; calls in
         * flight are dropped without their callbacks (their owner is the
         * one closing). */
        void (*close)(Peer *peer);
} PeerOps;
