/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "daemon.h"

/* Evacuation objects (org.vmigrate.Migrate1.Evacuation under
 * /org/vmigrate/Migrate1/evacuation/N): the fallback vtable, finder and
 * enumerator. */
int evacuation_dbus_register(Daemon *daemon);

/* Manager.Evacuate's handler. */
int method_evacuate(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Daemon.evacuations: id → the object of an evacuation, running or
 * lingering after its end. */
GHashTable *evacuation_table_new(void);
/* vmigrated is stopping: cancel the running ones (post-copy children
 * finish; the others stay here). */
void evacuation_dbus_shutdown(Daemon *daemon);
