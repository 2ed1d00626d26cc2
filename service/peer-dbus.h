/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "peer.h"

/* The core's way to reach other hosts' vmigrated: over D-Bus. */
extern const PeerOps peer_dbus_ops;
