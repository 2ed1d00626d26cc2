/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/*
 * The record of finished jobs that outlives them and the daemon
 * (Manager.ListJobHistory, `vmigratectl history`, and GetJobStats of a
 * domain whose last job ended before vmigrated last started): the newest
 * `max` jobs of this host, each an a{sv} of the job's final statistics
 * (job_stats_to_variant, without the pass-by-pass samples) plus id,
 * domain, uuid, started-at and ended-at (microseconds since the epoch),
 * kept in <state_dir>/job-history and rewritten atomically as each job
 * ends.
 */

typedef struct JobArchive JobArchive;

#define JOB_ARCHIVE_DEFAULT_MAX 100
/* Each end rewrites the whole file (about 1 KiB a job). */
#define JOB_ARCHIVE_MAX_MAX 10000

/* Reads <state_dir>/job-history if there is one. A file that cannot be
 * read or is damaged is logged and set aside as job-history.damaged (the
 * admin's to look at), never fatal; entries that lack what every entry
 * has are dropped. */
JobArchive *job_archive_open(const char *state_dir, unsigned max);
JobArchive *job_archive_free(JobArchive *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(JobArchive, job_archive_free)

/* Keeps at most max (0: none, and the file is removed); writes the file
 * when that dropped entries. */
void job_archive_set_max(JobArchive *a, unsigned max);
unsigned job_archive_size(const JobArchive *a);

/* Adds a job that has ended, its final statistics (a{sv}, as
 * job_stats_to_variant) with the keys every entry has, and writes the
 * file. The entry stays in memory when the write fails (the error says
 * why). */
int job_archive_record(JobArchive *a, uint64_t id, const char *domain, const char *uuid, uint64_t elapsed_ms,
                       GVariant *stats, GError **error);

/* The highest job id on record (0 if none): new jobs count on from it, so
 * that an id names one job across restarts. */
uint64_t job_archive_max_id(const JobArchive *a);

typedef struct JobArchiveFilter {
        char *domain; /* a name or UUID, or NULL */
        char *kind;   /* "migration-out", "migration-in", or NULL */
        char *result; /* "completed", "failed", "cancelled", or NULL */
        uint64_t since; /* ended at or after, microseconds since the epoch; 0: any */
        uint32_t limit; /* the newest N; 0: all */
} JobArchiveFilter;

void job_archive_filter_clear(JobArchiveFilter *f);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(JobArchiveFilter, job_archive_filter_clear)

/* Reads an a{sv} filter as ListJobHistory takes it: an unknown key, a
 * value of the wrong type or out of range is VM_ERROR_INVALID_ARGUMENT
 * naming it. */
int job_archive_filter_parse(GVariant *filter, JobArchiveFilter *ret, GError **error);

/* aa{sv}, oldest first, floating. */
GVariant *job_archive_list(const JobArchive *a, const JobArchiveFilter *filter);
/* The newest entry of the domain with that UUID (a new reference), or NULL. */
GVariant *job_archive_last_for(const JobArchive *a, const char *uuid);
