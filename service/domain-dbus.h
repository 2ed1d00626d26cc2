/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "daemon.h"

/* Domain objects: the fallback vtable, object finder and enumerator. */
int domain_dbus_register(Daemon *daemon);

/* What the core tells the bus layer about domains (main.c assembles the observer). */
void domain_observe_added(Manager *m, Domain *d, void *userdata);
void domain_observe_removed(Manager *m, Domain *d, void *userdata);
void domain_observe_changed(Manager *m, Domain *d, DomainChange what, void *userdata);
void domain_observe_lifecycle(Manager *m, Domain *d, const char *event, const char *detail, void *userdata);
