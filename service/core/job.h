/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "migration-stats.h"

typedef struct Domain Domain;
typedef struct Manager Manager;

typedef enum JobKind {
        JOB_MIGRATION_OUT,
        JOB_MIGRATION_IN,
        _JOB_KIND_MAX,
} JobKind;

typedef enum JobPhase {
        JOB_PHASE_BEGIN,
        JOB_PHASE_PREPARE,
        JOB_PHASE_PERFORM,
        JOB_PHASE_POSTCOPY,
        JOB_PHASE_FINISH,
        JOB_PHASE_CONFIRM,
        JOB_PHASE_COMPLETED,
        JOB_PHASE_FAILED,
        JOB_PHASE_CANCELLED,
        _JOB_PHASE_MAX,
} JobPhase;

/* What protects the guest's memory on its way (Job.Encryption). */
typedef enum JobEncryption {
        JOB_ENCRYPTION_NONE,
        JOB_ENCRYPTION_TLS,
        JOB_ENCRYPTION_TUNNEL,
        _JOB_ENCRYPTION_MAX,
} JobEncryption;

/* Which properties changed, for PropertiesChanged. */
typedef enum JobChange {
        JOB_CHANGE_PHASE = 1 << 0,
        JOB_CHANGE_STATS = 1 << 1, /* Progress, Data*, Iteration, DirtyRate, ElapsedMs, ExpectedDowntimeMs */
        JOB_CHANGE_ERROR = 1 << 2,
        JOB_CHANGE_CONVERGENCE = 1 << 3, /* NotConverging (and its signal) */
        JOB_CHANGE_WARNINGS = 1 << 4,
        JOB_CHANGE_ENCRYPTION = 1 << 5,
        JOB_CHANGE_POLICY = 1 << 6, /* Policy, PolicyStep, PolicyAction (and PolicyStepTaken) */
} JobChange;

/* What a sample of a job's history marks (GetJobStats "history"). */
typedef enum JobEvent {
        JOB_EVENT_PASS,       /* a memory pass began: what it has to send */
        JOB_EVENT_POLICY,     /* the convergence policy took a step */
        JOB_EVENT_POSTCOPY,   /* the guest switched to the destination, post-copy */
        JOB_EVENT_SWITCHOVER, /* pre-copy is done: the guest was paused downtime-ms up to here */
        JOB_EVENT_END,        /* the job ended (detail: completed, failed or cancelled) */
        _JOB_EVENT_MAX,
} JobEvent;

/* One sample of a migration leaving this host, with the figures of the
 * moment it was taken. */
typedef struct JobSample {
        uint64_t t_ms; /* since the job started */
        JobEvent event;
        uint64_t pass;
        uint64_t data_processed, data_remaining, dirty_rate, bandwidth, expected_downtime_ms;
        char *detail; /* never NULL */
        char *reason; /* policy steps: why; else NULL */
} JobSample;

/* Bounds the history of a job that runs for days: once full, every other
 * pass sample in the middle goes, and from then on every other pass is
 * sampled (the first and the newest pass stay, and so do the policy
 * steps, the switch and the end), so the whole run keeps its shape at an
 * even, coarser grain. */
#define JOB_HISTORY_MAX 1000

typedef struct Job {
        unsigned n_ref;
        Manager *manager; /* NULL once removed */
        uint64_t id;
        JobKind kind;
        Domain *domain;   /* reference */
        char *peer;       /* the other host: destination URI (out) or source host name (in) */

        JobPhase phase;
        double progress;  /* 0..1, never goes down */
        MigrationStats stats;
        uint64_t started_usec;  /* CLOCK_MONOTONIC */
        uint64_t ended_usec;    /* 0 while running */
        char *error;            /* why it failed or was cancelled */
        /* Pre-copy is not converging and the policy could do nothing about
         * it: say so (a property and a signal) instead of going on silently. */
        bool not_converging;
        char *not_converging_detail;
        /* What went wrong without failing the job (a feature on the
         * destination that is not required), one sentence each, in order. */
        GPtrArray *warnings; /* char* */
        JobEncryption encryption;
        /* The convergence policy (policy.h) of a migration leaving this
         * host, and the last step it took: 1-based, 0 = its final action
         * or none yet (policy_action says which: "" when none). */
        char *policy;
        unsigned policy_step;
        char *policy_action;
        char *policy_reason;

        /* Pass by pass, for a picture of the migration afterwards:
         * migration-out jobs only (an incoming job sees no passes). */
        GArray *history;         /* JobSample */
        uint64_t history_pass;   /* the last pass seen */
        uint64_t history_stride; /* passes per sample: doubles each time the history is full */

        sd_event_source *linger; /* removes the ended job after a while */
        void *migration;         /* migration.c's state while the job runs */
} Job;

/* How long an ended job stays on the bus so late readers see the result. */
#define JOB_LINGER_USEC (60 * G_USEC_PER_SEC)

const char *job_kind_to_string(JobKind kind);
const char *job_phase_to_string(JobPhase phase);
static inline bool job_phase_is_final(JobPhase phase) {
        return phase >= JOB_PHASE_COMPLETED;
}

/* Creates a job for d, registered with the manager (observers hear of it). */
Job *job_new(Manager *m, JobKind kind, Domain *d, const char *peer);
Job *job_ref(Job *j);
Job *job_unref(Job *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Job, job_unref)

void job_set_phase(Job *j, JobPhase phase);
/* Progress follows processed / (processed + remaining) but never goes down. */
void job_update_stats(Job *j, const MigrationStats *stats);
uint64_t job_elapsed_ms(const Job *j);

/* Ends the job (COMPLETED, FAILED or CANCELLED): emits Finished and the
 * domain's JobCompleted through the observer, detaches it from the domain,
 * and removes it from the bus after JOB_LINGER_USEC. */
void job_end(Job *j, JobPhase final, const char *error);

/* Sets or clears NotConverging, with a sentence saying why and what to do. */
void job_set_not_converging(Job *j, bool not_converging, const char *detail);

/* Adds a warning (ignored when the job has it already): on the bus as
 * Warnings, and under "warnings" in the statistics. */
#define JOB_WARNINGS_MAX 64
void job_add_warning(Job *j, const char *warning);
/* The policy, once known; then each step it takes (PolicyStepTaken). */
void job_set_policy(Job *j, const char *policy);
void job_policy_step(Job *j, unsigned step, const char *action, const char *reason);
/* Set once the migration's options are known (PropertiesChanged). */
void job_set_encryption(Job *j, JobEncryption encryption);
const char *job_encryption_to_string(JobEncryption e);
/* What protects the stream of a migration with options 'tls' and 'tunnelled'. */
static inline JobEncryption job_encryption_for(bool tls, bool tunnelled) {
        return tunnelled ? JOB_ENCRYPTION_TUNNEL : tls ? JOB_ENCRYPTION_TLS : JOB_ENCRYPTION_NONE;
}

/* Adds a sample of the current figures to the history of a migration
 * leaving this host (a no-op for others). job_update_stats() adds the
 * passes and the switch to post-copy, job_policy_step() the steps and
 * job_end() the end by themselves; the caller adds the switch-over. */
void job_history_add(Job *j, JobEvent event, const char *detail, const char *reason);
const char *job_event_to_string(JobEvent event);

/* a{sv} of the statistics, for Finished, JobCompleted and the Finish cookie. */
GVariant *job_stats_to_variant(const Job *j);
/* At start, once the history is open: the jobs a vmigrated killed or
 * crashed left running are recorded in it as failed. */
void job_journal_recover(Manager *m);
/* The history as aa{sv}, oldest first. */
GVariant *job_history_to_variant(const Job *j);
/* The statistics with "history" added, for GetJobStats (the signals stay
 * small: a history can hold a thousand samples). */
GVariant *job_stats_with_history_to_variant(const Job *j);
