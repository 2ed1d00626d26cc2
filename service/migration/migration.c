/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration facade (migration.h): what the rest of the daemon calls.
 * The work is in request.c (the arguments), source.c, dry-run.c and
 * destination.c (the two sides), cookie.c (what crosses between them),
 * preflight.c, findings.c and host-facts.c (the checks).
 */
#include "log.h"
#include "manager.h"
#include "migration.h"

void migration_shutdown(Manager *m) {
        g_autoptr(GPtrArray) jobs = g_ptr_array_new();
        GHashTableIter iter;
        gpointer value;

        m->shutting_down = true;
        /* Guests keep running where they are: a pre-copy migration leaving
         * is cancelled (the source still has the whole guest), one arriving
         * is discarded; a post-copy goes on without its job, which ends now
         * so that clients see its end while this daemon still has its name.
         * (Collected first: ending a job may change the table.) */
        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (((Job *) value)->kind == JOB_MIGRATION_OUT)
                        g_ptr_array_add(jobs, job_ref(value));
        for (unsigned i = 0; i < jobs->len; i++) {
                g_autoptr(Job) j = jobs->pdata[i];
                g_autoptr(GError) error = NULL;

                if (j->phase == JOB_PHASE_POSTCOPY && j->migration) {
                        migration_abandon_postcopy(j);
                        continue;
                }
                if (migration_abandon_finish(j) || migration_cancel_before_stream(j))
                        continue;
                if (j->phase != JOB_PHASE_PERFORM)
                        continue;
                log_info("job %" G_GUINT64_FORMAT ": cancelling: vmigrated is stopping", j->id);
                if (migration_cancel(j, &error) < 0)
                        log_warning("job %" G_GUINT64_FORMAT ": %s", j->id, error->message);
        }
        migration_incoming_shutdown(m);
        migration_recover_shutdown(m);
}

bool migration_any_running(Manager *m) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (!job_phase_is_final(((Job *) value)->phase))
                        return true;
        return false;
}
