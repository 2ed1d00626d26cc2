/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "domain.h"
#include "job.h"
#include "request.h"

/* The Migrate call's answer: job set once Prepare succeeded, or error. */
typedef void (*MigrationStarted)(Job *job, const GError *error, void *userdata);
/* The job has ended (for callers that wait for the end): error NULL when
 * it completed, else what to answer (MigrationFailed, or PostCopyFailed
 * when the guest is stuck in a broken post-copy: to be resumed, not retried). */
typedef void (*MigrationEnded)(Job *job, const GError *error, void *userdata);

/* Source side. Takes req, whose parts must have parsed. */
int migration_start(Manager *m, Domain *d, MigrationRequest *req, MigrationStarted started, MigrationEnded ended,
                    void *userdata, GError **error);
int migration_cancel(Job *job, GError **error);
/* vmigrated is stopping and job is in post-copy, which nothing may stop:
 * the job ends now (failed, saying so, with its signals while the daemon
 * still has its name); QEMU carries on, and the next vmigrated takes it up. */
void migration_abandon_postcopy(Job *job);
/* vmigrated is stopping while job asks its destination whether it runs
 * the guest (Finish got no answer): the job ends, the guest stays paused
 * (migration-unconfirmed) for the next vmigrated to settle. False when job
 * is not asking. */
bool migration_abandon_finish(Job *job);
/* vmigrated is stopping between Prepare's answer and the start of job's
 * stream: it never starts (the job ends cancelled, the destination
 * discards its guest). False in any other phase. */
bool migration_cancel_before_stream(Job *job);

/* SetMaxDowntime / SetMaxBandwidth on a migration leaving this host
 * (VM_ERROR_NO_JOB for any other job, or a backend that cannot). */
int migration_set_max_downtime(Job *job, uint64_t milliseconds, GError **error);
int migration_set_max_bandwidth(Job *job, uint64_t bytes_per_second, bool postcopy, GError **error);

/* StartPostCopy: switch the job's pre-copy to post-copy (now, or as soon
 * as the stream has started). */
int migration_start_postcopy(Job *job, GError **error);
