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

/* a{sv} of the statistics, for Finished, JobCompleted and GetJobStats. */
GVariant *job_stats_to_variant(const Job *j);
