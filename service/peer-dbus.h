/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "daemon.h"
#include "peer.h"

/* The core's way to reach other hosts' vmigrated: over D-Bus. */
extern const PeerOps peer_dbus_ops;
/* At exit: the connections still being set up, whose callers will never
 * hear back, are dropped without their callbacks. */
void peer_dbus_drop_connecting(Daemon *daemon);
