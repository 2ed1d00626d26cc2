/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "daemon.h"

/* Job objects: the fallback vtable, object finder and enumerator. */
int job_dbus_register(Daemon *daemon);

/* What the core tells the bus layer about jobs (main.c assembles the observer). */
void job_observe_added(Manager *m, Job *j, void *userdata);
void job_observe_changed(Manager *m, Job *j, JobChange what, void *userdata);
void job_observe_ended(Manager *m, Job *j, void *userdata);
void job_observe_removed(Manager *m, Job *j, void *userdata);
/* Daemon.job_emit: job id → coalescing state for PropertiesChanged. */
GHashTable *job_emit_table_new(void);
