/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "uri.h"

/*
 * Opens a connection, as a bus client, to the bus a destination names:
 * ssh:// through ssh and systemd-stdio-bridge on the other host
 * (sd_bus_open_system_remote(), what busctl --host does), unix:// straight
 * to that socket. The connection is started: for ssh that only means ssh
 * was spawned, so a refused login shows up later, as a disconnect on the
 * first call. Everything else (description, event loop, interactive
 * authorization) is the caller's to set. Returns a negative errno; the
 * message is the caller's, which knows whom it is telling.
 *
 * ssh_control_path (ssh only; may be NULL): the ssh becomes the master of
 * a connection that others can join there (destination_ssh_argv() with
 * SSH_SHARE_JOIN), so that a second session to the same host (a tunnel)
 * costs no second login.
 */
int bus_open_destination(const Destination *d, const char *ssh_control_path, sd_bus **ret);
