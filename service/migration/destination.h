/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "manager.h"

/* Destination side: Incoming.Prepare and Incoming.Finish. caller identifies
 * the source connection (so that its disappearance can abort the incoming
 * migration). done's reply is a floating a{sv}. */
typedef void (*IncomingDone)(GVariant *reply, const GError *error, void *userdata);
int migration_incoming_prepare(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                               GError **error);
/* Incoming.CheckPrepare: the checks Prepare runs, nothing started or
 * reserved; the reply has "findings" a(sss). */
int migration_incoming_check(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error);
/* Incoming.Pause: the source saw the post-copy stream break (or paused it
 * with AbortJob): pause it here too, so both hosts say so. */
int migration_incoming_pause(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                             GError **error);
/* Incoming.Arrival: a source whose vmigrated restarted between Finish and
 * Confirm asks what became of the guest here (recover.h). */
int migration_incoming_arrival(Manager *m, GVariant *cookie, const char *caller, IncomingDone done,
                               void *userdata, GError **error);
int migration_incoming_finish(Manager *m, GVariant *cookie, const char *caller, IncomingDone done, void *userdata,
                              GError **error);
/* Incoming.OpenTunnel (option 'tunnelled'): cookie {"uuid", "tunnel-token"}
 * as Prepare's reply gave the token; returns a socket connected to the
 * arriving guest's stream (the caller owns it). Each token opens one
 * connection. Not tied to the caller: over ssh, vmigrate-tunnel calls it
 * on a connection of its own. */
int migration_incoming_open_tunnel(Manager *m, GVariant *cookie, int *ret_fd, GError **error);

/* The source connection went away: abandon what it left half done. */
void migration_incoming_caller_vanished(Manager *m, const char *caller);

/* vmigrated is stopping: discard what is arriving (not a guest already
 * running here in post-copy). */
void migration_incoming_shutdown(Manager *m);
