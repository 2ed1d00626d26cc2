/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "daemon.h"

/* The manager object: its vtable (and the ObjectManager). */
int manager_dbus_register(Daemon *daemon);
/* The core's host_changed: PropertiesChanged for Maintenance. */
void manager_observe_host_changed(Manager *m, ManagerChange what, void *userdata);
