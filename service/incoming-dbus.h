/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "daemon.h"

/* org.vmigrate.Migrate1.Incoming on the manager object: the peer-facing side. */
int incoming_dbus_register(Daemon *daemon);
/* Daemon.incoming_tracks: unique name → its sd_bus_track. */
GHashTable *incoming_track_table_new(void);
