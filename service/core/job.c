/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <unistd.h>

#include "domain.h"
#include "job.h"
#include "log.h"
#include "manager.h"

static const char *const job_kind_table[_JOB_KIND_MAX] = {
        [JOB_MIGRATION_OUT] = "migration-out",
        [JOB_MIGRATION_IN] = "migration-in",
};

static const char *const job_encryption_table[_JOB_ENCRYPTION_MAX] = {
        [JOB_ENCRYPTION_NONE] = "none",
        [JOB_ENCRYPTION_TLS] = "tls",
        [JOB_ENCRYPTION_TUNNEL] = "tunnel",
};

const char *job_encryption_to_string(JobEncryption e) {
        return (unsigned) e < _JOB_ENCRYPTION_MAX ? job_encryption_table[e] : NULL;
}

static const char *const job_phase_table[_JOB_PHASE_MAX] = {
        [JOB_PHASE_BEGIN] = "begin",         [JOB_PHASE_PREPARE] = "prepare",
        [JOB_PHASE_PERFORM] = "perform",     [JOB_PHASE_POSTCOPY] = "postcopy",
        [JOB_PHASE_FINISH] = "finish",       [JOB_PHASE_CONFIRM] = "confirm",
        [JOB_PHASE_COMPLETED] = "completed", [JOB_PHASE_FAILED] = "failed",
        [JOB_PHASE_CANCELLED] = "cancelled",
};

static const char *const job_event_table[_JOB_EVENT_MAX] = {
        [JOB_EVENT_PASS] = "pass",         [JOB_EVENT_POLICY] = "policy",
        [JOB_EVENT_POSTCOPY] = "postcopy", [JOB_EVENT_SWITCHOVER] = "switchover",
        [JOB_EVENT_END] = "end",
};

const char *job_event_to_string(JobEvent event) {
        return (unsigned) event < _JOB_EVENT_MAX ? job_event_table[event] : NULL;
}

static void job_sample_clear(gpointer p) {
        JobSample *s = p;

        g_free(s->detail);
        g_free(s->reason);
}

const char *job_kind_to_string(JobKind kind) {
        return (unsigned) kind < _JOB_KIND_MAX ? job_kind_table[kind] : NULL;
}

const char *job_phase_to_string(JobPhase phase) {
        return (unsigned) phase < _JOB_PHASE_MAX ? job_phase_table[phase] : NULL;
}

static uint64_t now_usec(Manager *m) {
        uint64_t now = 0;

        if (!m || sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                now = g_get_monotonic_time();
        return now;
}

/* ---- the journal of running jobs ----
 *
 * A job is recorded in the history when it ends; a vmigrated that is
 * killed or crashes never gets there. So each running job also has a file
 * <state>/running-jobs/<id>, rewritten at each phase and removed when the
 * job ends: the next start records what is left as failed, naming the
 * phase the job was in (job_journal_recover). */

#define JOURNAL_MAX_BYTES (64 * 1024)

static char *journal_path(Manager *m, uint64_t id) {
        g_autofree char *name = g_strdup_printf("%" G_GUINT64_FORMAT, id);
        return g_build_filename(m->state_dir, "running-jobs", name, NULL);
}

static void job_journal_write(Job *j) {
        Manager *m = j->manager;
        g_autofree char *dir = NULL, *path = NULL, *text = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

        if (!m || !m->state_dir)
                return;
        dir = g_build_filename(m->state_dir, "running-jobs", NULL);
        if (g_mkdir_with_parents(dir, 0700) < 0) {
                log_warning("job %" G_GUINT64_FORMAT ": cannot create %s: %s", j->id, dir,
                            g_strerror(errno));
                return;
        }
        g_variant_dict_insert(&dict, "id", "t", j->id);
        g_variant_dict_insert(&dict, "domain", "s", domain_name(j->domain));
        g_variant_dict_insert(&dict, "uuid", "s", domain_uuid(j->domain));
        g_variant_dict_insert(&dict, "elapsed-ms", "t", job_elapsed_ms(j));
        g_variant_dict_insert_value(&dict, "stats", job_stats_to_variant(j));
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_dict_end(&dict));
        text = g_variant_print(v, true);
        path = journal_path(m, j->id);
        if (!g_file_set_contents(path, text, -1, &error))
                log_warning("job %" G_GUINT64_FORMAT ": not journalled: %s", j->id, error->message);
}

static void job_journal_remove(Job *j) {
        g_autofree char *path = NULL;

        if (!j->manager || !j->manager->state_dir)
                return;
        path = journal_path(j->manager, j->id);
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning("cannot remove %s: %s", path, g_strerror(errno));
}

/* One leftover journal entry (hostile input: a damaged file is dropped). */
static void job_journal_recover_one(Manager *m, const char *path, const char *host) {
        g_autofree char *text = NULL, *error_text = NULL;
        g_autoptr(GVariant) v = NULL, stats = NULL;
        g_autoptr(GError) error = NULL;
        const char *domain, *uuid, *phase = "begin", *kind = "";
        uint64_t id, elapsed_ms = 0;
        size_t len;

        if (!g_file_get_contents(path, &text, &len, &error) || len > JOURNAL_MAX_BYTES ||
            strlen(text) != len ||
            !(v = g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL, NULL, &error)) ||
            !g_variant_lookup(v, "id", "t", &id) || !g_variant_lookup(v, "domain", "&s", &domain) ||
            !g_variant_lookup(v, "uuid", "&s", &uuid) ||
            !(stats = g_variant_lookup_value(v, "stats", G_VARIANT_TYPE_VARDICT))) {
                log_warning("dropping %s: %s", path, error ? error->message : "damaged");
                return;
        }
        (void) g_variant_lookup(v, "elapsed-ms", "t", &elapsed_ms);
        (void) g_variant_lookup(stats, "phase", "&s", &phase);
        (void) g_variant_lookup(stats, "kind", "&s", &kind);
        error_text =
                g_strdup_printf("%s phase, on %s (%s): vmigrated stopped without ending this job "
                                "(killed or crashed); the domain's State tells where the guest is",
                                phase, host, g_str_equal(kind, "migration-in") ? "destination" : "source");
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(stats);
        g_variant_dict_insert(&dict, "phase", "s", "failed");
        g_variant_dict_insert(&dict, "error", "s", error_text);
        g_autoptr(GVariant) final_stats = g_variant_ref_sink(g_variant_dict_end(&dict));
        log_warning("job %" G_GUINT64_FORMAT " of domain '%s': %s", id, domain, error_text);
        if (m->archive &&
            job_archive_record(m->archive, id, domain, uuid, elapsed_ms, final_stats, &error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": not kept in the job history: %s", id,
                            error->message);
        if (id > m->last_job_id)
                m->last_job_id = id;
}

void job_journal_recover(Manager *m) {
        g_autofree char *dir_path = NULL;
        g_autofree char *host = NULL;
        g_autoptr(GDir) dir = NULL;
        const char *name;

        if (!m->state_dir)
                return;
        dir_path = g_build_filename(m->state_dir, "running-jobs", NULL);
        dir = g_dir_open(dir_path, 0, NULL);
        if (!dir)
                return;
        host = manager_get_hostname();
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *path = g_build_filename(dir_path, name, NULL);
                job_journal_recover_one(m, path, host);
                (void) unlink(path);
        }
}

Job *job_new(Manager *m, JobKind kind, Domain *d, const char *peer) {
        Job *j = g_new0(Job, 1);

        j->n_ref = 1; /* the manager's */
        j->manager = m;
        j->id = ++m->last_job_id;
        j->kind = kind;
        j->domain = domain_ref(d);
        j->peer = g_strdup(peer);
        j->phase = JOB_PHASE_BEGIN;
        j->started_usec = now_usec(m);
        j->warnings = g_ptr_array_new_with_free_func(g_free);
        j->history = g_array_new(false, false, sizeof(JobSample));
        j->history_stride = 1;
        g_array_set_clear_func(j->history, job_sample_clear);

        g_hash_table_insert(m->jobs, &j->id, j);
        d->job = j;
        job_journal_write(j);
        manager_notify_job_added(m, j);
        manager_notify_changed(m, d, DOMAIN_CHANGE_JOB);
        log_info("job %" G_GUINT64_FORMAT ": %s of domain '%s' %s %s", j->id, job_kind_to_string(kind),
                 domain_name(d), kind == JOB_MIGRATION_OUT ? "to" : "from", peer ? peer : "?");
        return j;
}

Job *job_ref(Job *j) {
        if (j)
                j->n_ref++;
        return j;
}

Job *job_unref(Job *j) {
        if (!j)
                return NULL;
        g_assert(j->n_ref > 0);
        if (--j->n_ref > 0)
                return NULL;
        g_assert(!j->manager);
        sd_event_source_disable_unref(j->linger);
        domain_unref(j->domain);
        g_free(j->peer);
        g_free(j->error);
        g_free(j->not_converging_detail);
        g_ptr_array_unref(j->warnings);
        g_array_unref(j->history);
        g_free(j->policy);
        g_free(j->policy_action);
        g_free(j->policy_reason);
        g_free(j);
        return NULL;
}

uint64_t job_elapsed_ms(const Job *j) {
        uint64_t end = j->ended_usec ? j->ended_usec : now_usec(j->manager);
        return end > j->started_usec ? (end - j->started_usec) / 1000 : 0;
}

void job_set_phase(Job *j, JobPhase phase) {
        if (j->phase == phase || job_phase_is_final(j->phase))
                return;
        log_info("job %" G_GUINT64_FORMAT ": phase %s", j->id, job_phase_to_string(phase));
        j->phase = phase;
        job_journal_write(j);
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_PHASE);
}

/* Passes are kept one per bucket of history_stride passes (the newest of
 * each): all of them at first, every other one more each time the
 * history fills up, so that a long run keeps an even grain throughout. */
static uint64_t history_bucket(const Job *j, uint64_t pass) {
        return pass > 0 ? (pass - 1) / j->history_stride : 0;
}

/* Of the pass samples between the first and the last, keeps the newest of
 * each bucket. */
static void history_thin(Job *j) {
        GArray *h = j->history;
        bool have_newer = false;
        uint64_t newer = 0;

        for (guint i = h->len - 1; i-- > 1;) {
                const JobSample *s = &g_array_index(h, JobSample, i);
                uint64_t bucket = history_bucket(j, s->pass);

                if (s->event != JOB_EVENT_PASS)
                        continue;
                if (have_newer && bucket == newer)
                        g_array_remove_index(h, i);
                else {
                        newer = bucket;
                        have_newer = true;
                }
        }
}

static void history_make_room(Job *j) {
        while (j->history->len >= JOB_HISTORY_MAX) {
                guint before = j->history->len;

                if (j->history_stride <= UINT64_MAX / 2) {
                        j->history_stride *= 2;
                        history_thin(j);
                }
                /* Nothing but events (a policy cannot take that many steps). */
                if (j->history->len == before)
                        g_array_remove_index(j->history, 1);
        }
}

void job_history_add(Job *j, JobEvent event, const char *detail, const char *reason) {
        uint64_t now = j->ended_usec ? j->ended_usec : now_usec(j->manager);
        GArray *h = j->history;
        JobSample sample = {
                .t_ms = now > j->started_usec ? (now - j->started_usec) / 1000 : 0,
                .event = event,
                .pass = j->stats.iteration,
                .data_processed = j->stats.data_processed,
                .data_remaining = j->stats.data_remaining,
                .dirty_rate = j->stats.dirty_rate,
                .bandwidth = j->stats.bandwidth,
                .expected_downtime_ms = j->stats.expected_downtime_ms,
        };

        /* A late report after the end is not part of the run. */
        if (j->kind != JOB_MIGRATION_OUT || (job_phase_is_final(j->phase) && event != JOB_EVENT_END))
                return;
        sample.detail = g_strdup(detail ? detail : "");
        sample.reason = g_strdup(reason);
        if (event == JOB_EVENT_PASS && h->len > 1) {
                JobSample *last = &g_array_index(h, JobSample, h->len - 1);
                if (last->event == JOB_EVENT_PASS &&
                    history_bucket(j, last->pass) == history_bucket(j, sample.pass)) {
                        job_sample_clear(last);
                        *last = sample;
                        return;
                }
        }
        history_make_room(j);
        g_array_append_val(h, sample);
}

void job_update_stats(Job *j, const MigrationStats *stats) {
        /* With copy-storage the disks come first, then the memory: one
         * fraction over both. */
        uint64_t done = stats->data_processed + stats->disk_processed,
                 left = stats->data_remaining + stats->disk_remaining;
        bool switched = stats->postcopy_active && !j->stats.postcopy_active;

        j->stats = *stats;
        /* A pass's first report says what it has to send. */
        if (stats->iteration > j->history_pass) {
                j->history_pass = stats->iteration;
                job_history_add(j, JOB_EVENT_PASS, NULL, NULL);
        }
        if (switched)
                job_history_add(j, JOB_EVENT_POSTCOPY, NULL, NULL);
        if (done + left > 0) {
                double p = (double) done / (double) (done + left);
                /* A new pass adds data to send: the fraction may dip, the
                 * progress users see must not. */
                if (p > j->progress)
                        j->progress = MIN(p, 1.0);
        }
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_STATS);
}

void job_set_not_converging(Job *j, bool not_converging, const char *detail) {
        if (j->not_converging == not_converging && g_strcmp0(detail, j->not_converging_detail) == 0)
                return;
        j->not_converging = not_converging;
        g_free(j->not_converging_detail);
        j->not_converging_detail = g_strdup(detail);
        if (not_converging)
                log_warning("job %" G_GUINT64_FORMAT ": %s", j->id, detail);
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_CONVERGENCE);
}

void job_add_warning(Job *j, const char *warning) {
        for (guint i = 0; i < j->warnings->len; i++)
                if (g_str_equal(j->warnings->pdata[i], warning))
                        return;
        if (j->warnings->len >= JOB_WARNINGS_MAX)
                return;
        log_warning("job %" G_GUINT64_FORMAT ": %s", j->id, warning);
        g_ptr_array_add(j->warnings, g_strdup(warning));
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_WARNINGS);
}

void job_set_policy(Job *j, const char *policy) {
        if (g_strcmp0(j->policy, policy) == 0)
                return;
        g_free(j->policy);
        j->policy = g_strdup(policy);
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_POLICY);
}

void job_policy_step(Job *j, unsigned step, const char *action, const char *reason) {
        j->policy_step = step;
        g_free(j->policy_action);
        j->policy_action = g_strdup(action);
        g_free(j->policy_reason);
        j->policy_reason = g_strdup(reason);
        {
                g_autofree char *detail =
                        step ? g_strdup_printf("step %u: %s", step, action) : g_strdup(action);
                job_history_add(j, JOB_EVENT_POLICY, detail, reason);
        }
        if (step)
                log_info("job %" G_GUINT64_FORMAT ": policy '%s' step %u: %s (%s)", j->id, j->policy ? j->policy : "?",
                         step, action, reason);
        else
                log_info("job %" G_GUINT64_FORMAT ": policy '%s': %s (%s)", j->id, j->policy ? j->policy : "?", action,
                         reason);
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_POLICY);
}

void job_set_encryption(Job *j, JobEncryption encryption) {
        if (j->encryption == encryption)
                return;
        j->encryption = encryption;
        if (j->manager)
                manager_notify_job_changed(j->manager, j, JOB_CHANGE_ENCRYPTION);
}

static int on_linger_end(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Manager *m = j->manager;

        if (m)
                manager_remove_job(m, j);
        return 0;
}

void job_end(Job *j, JobPhase final, const char *error) {
        g_autoptr(Job) ref = job_ref(j);
        Manager *m = j->manager;
        int r;

        g_assert(job_phase_is_final(final));
        if (job_phase_is_final(j->phase))
                return;

        j->ended_usec = now_usec(m);
        if (final == JOB_PHASE_COMPLETED)
                j->progress = 1.0;
        g_free(j->error);
        j->error = g_strdup(error);
        j->phase = final;
        if (error)
                log_warning("job %" G_GUINT64_FORMAT " %s: %s", j->id, job_phase_to_string(final), error);
        else
                log_info("job %" G_GUINT64_FORMAT " %s after %" G_GUINT64_FORMAT " ms", j->id,
                         job_phase_to_string(final), job_elapsed_ms(j));
        job_history_add(j, JOB_EVENT_END, job_phase_to_string(final), NULL);

        if (j->domain->last_job_stats)
                g_variant_unref(j->domain->last_job_stats);
        j->domain->last_job_stats = g_variant_ref_sink(job_stats_with_history_to_variant(j));
        if (j->domain->job == j) {
                j->domain->job = NULL;
                if (m && j->domain->manager)
                        manager_notify_changed(m, j->domain, DOMAIN_CHANGE_JOB);
        }
        if (!m)
                return;
        /* Before the signals: a client that hears Finished finds it in
         * ListJobHistory. */
        g_autoptr(GError) archive_error = NULL;
        g_autoptr(GVariant) final_stats = g_variant_ref_sink(job_stats_to_variant(j));
        if (m->archive && job_archive_record(m->archive, j->id, domain_name(j->domain), domain_uuid(j->domain),
                                             job_elapsed_ms(j), final_stats, &archive_error) < 0)
                log_warning("job %" G_GUINT64_FORMAT ": not kept in the job history: %s", j->id,
                            archive_error->message);
        job_journal_remove(j);
        manager_notify_job_changed(m, j, JOB_CHANGE_PHASE | JOB_CHANGE_STATS | JOB_CHANGE_ERROR);
        manager_notify_job_ended(m, j);

        r = sd_event_add_time_relative(m->event, &j->linger, CLOCK_MONOTONIC, JOB_LINGER_USEC, 0, on_linger_end, j);
        if (r < 0)
                manager_remove_job(m, j);
}

GVariant *job_history_to_variant(const Job *j) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < j->history->len; i++) {
                const JobSample *s = &g_array_index(j->history, JobSample, i);

                g_variant_builder_open(&b, G_VARIANT_TYPE("a{sv}"));
#define ADD_T(key, value) g_variant_builder_add(&b, "{sv}", key, g_variant_new_uint64(value))
                ADD_T("t-ms", s->t_ms);
                g_variant_builder_add(&b, "{sv}", "event",
                                      g_variant_new_string(job_event_to_string(s->event)));
                g_variant_builder_add(&b, "{sv}", "detail", g_variant_new_string(s->detail));
                if (s->reason)
                        g_variant_builder_add(&b, "{sv}", "reason", g_variant_new_string(s->reason));
                ADD_T("pass", s->pass);
                ADD_T("data-processed", s->data_processed);
                ADD_T("data-remaining", s->data_remaining);
                ADD_T("dirty-rate", s->dirty_rate);
                ADD_T("bandwidth", s->bandwidth);
                ADD_T("expected-downtime-ms", s->expected_downtime_ms);
#undef ADD_T
                g_variant_builder_close(&b);
        }
        return g_variant_builder_end(&b);
}

static void job_stats_build(const Job *j, GVariantBuilder *b) {
#define ADD_T(key, value) g_variant_builder_add(b, "{sv}", key, g_variant_new_uint64(value))
        g_variant_builder_add(b, "{sv}", "kind", g_variant_new_string(job_kind_to_string(j->kind)));
        g_variant_builder_add(b, "{sv}", "phase", g_variant_new_string(job_phase_to_string(j->phase)));
        g_variant_builder_add(b, "{sv}", "progress", g_variant_new_double(j->progress));
        ADD_T("elapsed-ms", job_elapsed_ms(j));
        ADD_T("data-total", j->stats.data_total);
        ADD_T("data-processed", j->stats.data_processed);
        ADD_T("data-remaining", j->stats.data_remaining);
        ADD_T("iteration", j->stats.iteration);
        ADD_T("dirty-rate", j->stats.dirty_rate);
        ADD_T("bandwidth", j->stats.bandwidth);
        ADD_T("expected-downtime-ms", j->stats.expected_downtime_ms);
        ADD_T("downtime-ms", j->stats.downtime_ms);
        ADD_T("setup-ms", j->stats.setup_ms);
        ADD_T("postcopy-requests", j->stats.postcopy_requests);
        if (j->stats.has_postcopy_blocktime)
                ADD_T("postcopy-blocktime-ms", j->stats.postcopy_blocktime_ms);
        if (j->stats.disk_total > 0) {
                /* Only with copy-storage: the disks copied before the memory. */
                ADD_T("disk-total", j->stats.disk_total);
                ADD_T("disk-processed", j->stats.disk_processed);
                ADD_T("disk-remaining", j->stats.disk_remaining);
        }
#undef ADD_T
        if (j->peer)
                g_variant_builder_add(b, "{sv}", "peer", g_variant_new_string(j->peer));
        if (j->error)
                g_variant_builder_add(b, "{sv}", "error", g_variant_new_string(j->error));
        g_variant_builder_add(b, "{sv}", "not-converging", g_variant_new_boolean(j->not_converging));
        g_variant_builder_add(b, "{sv}", "encryption", g_variant_new_string(job_encryption_to_string(j->encryption)));
        g_variant_builder_add(b, "{sv}", "postcopy", g_variant_new_boolean(j->stats.postcopy_active));
        if (j->policy) {
                g_variant_builder_add(b, "{sv}", "policy", g_variant_new_string(j->policy));
                g_variant_builder_add(b, "{sv}", "policy-step", g_variant_new_uint32(j->policy_step));
                g_variant_builder_add(b, "{sv}", "policy-action",
                                      g_variant_new_string(j->policy_action ? j->policy_action : ""));
        }
        g_variant_builder_add(b, "{sv}", "warnings",
                              g_variant_new_strv((const char *const *) j->warnings->pdata, j->warnings->len));
}

GVariant *job_stats_to_variant(const Job *j) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        job_stats_build(j, &b);
        return g_variant_builder_end(&b);
}

GVariant *job_stats_with_history_to_variant(const Job *j) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        job_stats_build(j, &b);
        g_variant_builder_add(&b, "{sv}", "history", job_history_to_variant(j));
        return g_variant_builder_end(&b);
}
