/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: following a migration job from the Migrate call to its end,
 * with a progress display fed by the job's PropertiesChanged signals.
 *
 * The job's path is only known from Migrate's reply, but the job publishes
 * its first phases before that reply. So the matches go in first, on the
 * whole /org/vmigrate/Migrate1/job namespace; signals that arrive before
 * the reply are kept and replayed once the path is known, and those of
 * other jobs (someone else's migrations) are dropped.
 *
 * Post-copy changes what the end means: once the guest runs on the
 * destination, a failure leaves it paused on both hosts, and the user
 * must be told that plainly and how to resume, not just "failed".
 *
 * copy-storage mirrors the disks before the memory goes, and the Job has
 * no properties for that: only Domain.GetJobStats has the disk figures. So
 * while the job is in perform and no memory has gone yet, the domain's
 * statistics are asked for too, one call at a time. Without copy-storage
 * the memory starts at once, and that is a call or two at most; whether
 * the job copies disks is the daemon's to say (a backend's default may),
 * not guessed from our command line.
 */

#include "bus-gvariant.h"
#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <systemd/sd-event.h>

/* Prepare may involve an ssh connection and an interactive polkit prompt. */
#define MIGRATE_CALL_TIMEOUT_USEC (5 * 60 * G_USEC_PER_SEC)
/* Terminal redraws at most 10 times per second; plain lines once per second. */
#define REDRAW_USEC (100 * 1000)
#define PLAIN_LINE_USEC (1000 * 1000)
/* Domain.GetJobStats during the disk stage, 4 times a second: enough for the line's
 * figures, while the bar moves with Progress, which counts the disks too. */
#define DISK_STATS_USEC (250 * 1000)

typedef struct Follow {
        const CtlFollow *settings;
        sd_bus *bus;
        sd_event *event;

        char *job_path;          /* NULL until Migrate answered */
        GPtrArray *early;        /* signals (sd_bus_message) received before that */
        char *domain_path;       /* the Migrate call's object, for GetJobStats */
        sd_bus_slot *stats_call; /* a GetJobStats on its way */
        uint64_t stats_asked_usec;

        CtlJobState state;
        char *shown_phase; /* stage (ctl_job_stage_label) a plain line was last printed for */
        GVariant *final_stats;
        char *result; /* completed, failed, cancelled */
        char *final_error;

        FILE *out; /* where progress goes */
        bool tty;
        bool show_progress;
        bool dirty;
        bool line_open; /* a progress line is on the terminal without a newline */
        uint64_t last_plain_usec;
        /* When ElapsedMs last changed: statistics may pause (post-copy on some
         * backends), the clock on the line should not. */
        uint64_t elapsed_seen_ms, elapsed_seen_usec;
        char *last_line; /* terminal: the line last drawn */

        unsigned interrupts;
        bool cancel_pending;      /* Ctrl-C before the job was known */
        bool told_not_converging; /* the current spell of NotConverging was explained */
        guint warnings_shown;     /* the job's Warnings printed so far (the daemon only appends) */
        int exit_code;
} Follow;

static void message_unref(gpointer m) {
        sd_bus_message_unref(m);
}

static uint64_t now_usec(void) {
        return (uint64_t) g_get_monotonic_time();
}

static void follow_exit(Follow *f, int code) {
        f->exit_code = code;
        (void) sd_event_exit(f->event, code);
}

static unsigned terminal_width(FILE *out) {
        struct winsize ws;

        if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 80;
}

/* Ends the progress line so that a message can follow on a line of its own. */
static void close_line(Follow *f) {
        if (f->line_open) {
                fputc('\n', f->out);
                fflush(f->out);
                f->line_open = false;
        }
}

static bool phase_is_final(const char *phase) {
        return g_strcmp0(phase, "completed") == 0 || g_strcmp0(phase, "failed") == 0 ||
                g_strcmp0(phase, "cancelled") == 0;
}

/* The state to show: as last published, with the elapsed time running on while the job does. */
static CtlJobState shown_state(Follow *f, uint64_t now) {
        CtlJobState view = f->state; /* shallow: only read while f->state lives */

        if (f->state.elapsed_ms != f->elapsed_seen_ms) {
                f->elapsed_seen_ms = f->state.elapsed_ms;
                f->elapsed_seen_usec = now;
        } else if (!f->result && f->elapsed_seen_ms > 0 && !phase_is_final(f->state.phase))
                view.elapsed_ms += (now - f->elapsed_seen_usec) / 1000;
        return view;
}

/* The first word of the line, or NULL before the phase is known. */
static char *stage_of(const CtlJobState *s) {
        return s->phase ? g_strdup(ctl_job_stage_label(s)) : NULL;
}

static void draw(Follow *f, bool force) {
        uint64_t now = now_usec();

        if (!f->show_progress || !f->job_path)
                return;
        CtlJobState view = shown_state(f, now);
        if (f->tty) {
                /* One column less than the width: writing the last column wraps on some terminals. */
                g_autofree char *line = ctl_job_progress_bar(&view, terminal_width(f->out) - 1);

                /* Nothing new from the job, and the clock has not moved the text either. */
                if (!f->dirty && !force && f->line_open && g_strcmp0(line, f->last_line) == 0)
                        return;
                fprintf(f->out, "\r%s\033[K", line);
                fflush(f->out);
                f->line_open = true;
                g_free(f->last_line);
                f->last_line = g_steal_pointer(&line);
        } else {
                /* From the disks to the memory is a change of stage like a phase's. */
                g_autofree char *stage = stage_of(&f->state);
                bool phase_changed = g_strcmp0(f->shown_phase, stage) != 0;

                if (!force && !phase_changed && now - f->last_plain_usec < PLAIN_LINE_USEC)
                        return;
                g_autofree char *line = ctl_job_progress_text(&view);
                fprintf(f->out, "%s\n", line);
                fflush(f->out);
                g_free(f->shown_phase);
                f->shown_phase = g_steal_pointer(&stage);
                f->last_plain_usec = now;
        }
        f->dirty = false;
}

/* Text from the bus for a terminal: control characters become spaces. */
static char *terminal_text(const char *text) {
        char *out = g_strdup(text);

        for (char *p = out; *p; p++)
                if (g_ascii_iscntrl(*p))
                        *p = ' ';
        return out;
}

/* Prints the warnings of KEY (the Job's Warnings, or "warnings" in the
 * final statistics) that were not printed yet, on stderr: what went wrong
 * without failing the migration, or why it waits. */
static void show_warnings(Follow *f, GVariant *properties, const char *key) {
        g_autofree const char **warnings = NULL;
        guint n;

        if (f->settings->quiet || !g_variant_lookup(properties, key, "^a&s", &warnings))
                return;
        n = g_strv_length((char **) warnings);
        if (n <= f->warnings_shown)
                return;
        close_line(f);
        fflush(f->out);
        for (guint i = f->warnings_shown; i < n; i++) {
                g_autofree char *text = terminal_text(warnings[i]);
                fprintf(stderr, "vmigratectl: warning: %s\n", text);
        }
        fflush(stderr);
        f->warnings_shown = n;
        f->dirty = true;
}

static void apply_properties_changed(Follow *f, sd_bus_message *m) {
        g_autoptr(GVariant) changed = NULL;
        const char *interface;

        if (sd_bus_message_read(m, "s", &interface) <= 0 || !g_str_equal(interface, BUS_JOB_INTERFACE))
                return;
        if (bus_message_read_gvariant(m, "a{sv}", &changed) < 0)
                return;
        g_autofree char *old_stage = stage_of(&f->state);
        bool was_postcopy = f->state.postcopy_seen;
        ctl_job_state_update(&f->state, changed);
        f->dirty = true;
        show_warnings(f, changed, "Warnings");
        if (!f->state.not_converging)
                f->told_not_converging = false;
        /* Phase changes (and the memory following the disks) show at once;
         * statistics wait for the next tick. */
        g_autofree char *new_stage = stage_of(&f->state);
        if (g_strcmp0(old_stage, new_stage) != 0)
                draw(f, false);
        if (!was_postcopy && f->state.postcopy_seen && f->show_progress) {
                g_autofree char *when = ctl_format_duration_ms(f->state.elapsed_ms);
                close_line(f);
                if (f->settings->postcopy_resume)
                        fprintf(f->out,
                                "Post-copy resumed: domain '%s' runs on the destination again, which "
                                "fetches the memory it still lacks.\n",
                                f->settings->domain);
                else
                        fprintf(f->out,
                                "Switched to post-copy after %s: domain '%s' now runs on the destination, "
                                "which fetches the memory it still lacks.\n",
                                when, f->settings->domain);
                fflush(f->out);
        }
}

/* Says once per spell why the copy is stuck and what the user can do about it. */
static void apply_not_converging(Follow *f, sd_bus_message *m) {
        const char *text;
        g_autofree char *detail = NULL;
        g_autofree char *domain = ctl_shell_word(f->settings->domain);

        if (sd_bus_message_read(m, "s", &text) <= 0)
                return;
        /* Goes to a terminal: no control characters from the bus. */
        detail = terminal_text(text);
        /* The signal may overtake the property: the line must say it either way. */
        f->state.not_converging = true;
        f->dirty = true;
        if (f->told_not_converging || !f->show_progress)
                return;
        f->told_not_converging = true;
        close_line(f);
        if (strstr(detail, "not converging"))
                fprintf(f->out, "%c%s\n", g_ascii_toupper(detail[0]), detail + 1);
        else
                fprintf(f->out, "Pre-copy is not converging: %s\n",
                        *detail ? detail : "no progress in the last passes");
        if (f->settings->postcopy)
                fprintf(f->out, "hint: 'vmigratectl migrate-postcopy %s' switches to post-copy now.\n",
                        domain);
        else
                fprintf(f->out,
                        "hint: 'vmigratectl migrate-setspeed %s RATE' raises the bandwidth, "
                        "'vmigratectl migrate-setmaxdowntime %s MS' allows a longer pause; or cancel "
                        "(Ctrl-C) and retry with --policy=postcopy or --policy=suspend-workload-if-needed.\n",
                        domain, domain);
        fflush(f->out);
        draw(f, true);
}

static void apply_finished(Follow *f, sd_bus_message *m) {
        g_autoptr(GVariant) stats = NULL;
        const char *result, *error;

        if (sd_bus_message_read(m, "ss", &result, &error) <= 0 ||
            bus_message_read_gvariant(m, "a{sv}", &stats) < 0) {
                close_line(f);
                fprintf(stderr, "vmigratectl: the job %s sent a malformed Finished signal\n", f->job_path);
                follow_exit(f, CTL_EXIT_FAILED);
                return;
        }
        f->result = g_strdup(result);
        f->final_error = g_strdup(error);
        f->final_stats = g_steal_pointer(&stats);
        f->stats_call = sd_bus_slot_unref(f->stats_call);
        show_warnings(f, f->final_stats, "warnings");
        /* Show the end state (100% or where it stopped) before the summary. */
        {
                g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
                g_autoptr(GVariant) props = NULL;
                double progress;
                guint64 v;

                g_variant_builder_add(b, "{sv}", "Phase", g_variant_new_string(result));
                if (g_variant_lookup(f->final_stats, "progress", "d", &progress))
                        g_variant_builder_add(b, "{sv}", "Progress", g_variant_new_double(progress));
                if (g_variant_lookup(f->final_stats, "data-processed", "t", &v))
                        g_variant_builder_add(b, "{sv}", "DataProcessed", g_variant_new_uint64(v));
                if (g_variant_lookup(f->final_stats, "elapsed-ms", "t", &v))
                        g_variant_builder_add(b, "{sv}", "ElapsedMs", g_variant_new_uint64(v));
                props = g_variant_ref_sink(g_variant_builder_end(b));
                ctl_job_state_update(&f->state, props);
                ctl_job_state_update_stats(&f->state, f->final_stats);
                /* The last samples around the switch-over say little: show the average,
                 * over the disks too when they were copied (as the summary's). */
                if (f->state.elapsed_ms > 0)
                        f->state.rate = (f->state.data_processed + f->state.disk_processed) * 1000 /
                                f->state.elapsed_ms;
        }
        /* A terminal shows the final figures; plain output only needs the final phase once. */
        draw(f, f->tty);
        close_line(f);
        follow_exit(f, g_str_equal(result, "completed") ? CTL_EXIT_OK : CTL_EXIT_FAILED);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;

        if (!f->job_path)
                g_ptr_array_add(f->early, sd_bus_message_ref(m));
        else if (g_str_equal(sd_bus_message_get_path(m), f->job_path))
                apply_properties_changed(f, m);
        return 0;
}

static int on_not_converging(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;

        if (!f->job_path)
                g_ptr_array_add(f->early, sd_bus_message_ref(m));
        else if (g_str_equal(sd_bus_message_get_path(m), f->job_path))
                apply_not_converging(f, m);
        return 0;
}

static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;

        if (!f->job_path)
                g_ptr_array_add(f->early, sd_bus_message_ref(m));
        else if (g_str_equal(sd_bus_message_get_path(m), f->job_path))
                apply_finished(f, m);
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) <= 0 ||
            !g_str_equal(name, BUS_NAME) || *new_owner)
                return 0;
        close_line(f);
        fprintf(stderr,
                "vmigratectl: vmigrated left the bus while migrating domain '%s'; the outcome is unknown.\n"
                "hint: when it is back, 'vmigratectl job-status %s' shows the last job.\n",
                f->settings->domain, f->settings->domain);
        follow_exit(f, CTL_EXIT_BUS);
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        g_autofree char *where = ctl_host_describe(f->settings->host);

        close_line(f);
        fprintf(stderr,
                "vmigratectl: lost the connection to %s while migrating domain '%s'; the outcome is "
                "unknown.\n",
                where, f->settings->domain);
        follow_exit(f, CTL_EXIT_BUS);
        return 0;
}

static int on_get_all(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        g_autoptr(GVariant) properties = NULL;

        /* The job may already be gone (it lingers 60 s); Finished tells the rest. */
        if (sd_bus_message_is_method_error(reply, NULL))
                return 0;
        if (bus_message_read_gvariant(reply, "a{sv}", &properties) < 0)
                return 0;
        ctl_job_state_update(&f->state, properties);
        f->dirty = true;
        show_warnings(f, properties, "Warnings");
        draw(f, false);
        return 0;
}

static int on_cancel_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (!e)
                return 0;
        close_line(f);
        fprintf(stderr, "vmigratectl: cannot cancel the migration: %s\n", e->message ? e->message : e->name);
        if (sd_bus_error_has_name(e, vm_error_dbus_name(VM_ERROR_INVALID_STATE)) && f->state.postcopy_seen)
                fprintf(stderr,
                        "hint: in post-copy the guest already runs on the destination, so there is no "
                        "going back; still following it.\n");
        else if (sd_bus_error_has_name(e, vm_error_dbus_name(VM_ERROR_INVALID_STATE)))
                fprintf(stderr,
                        "hint: only a migration that is copying (phase perform) can be cancelled; "
                        "still following it.\n");
        return 0;
}

static void send_cancel(Follow *f) {
        int r = sd_bus_call_method_async(f->bus, NULL, BUS_NAME, f->job_path, BUS_JOB_INTERFACE, "Cancel",
                                         on_cancel_reply, f, NULL);
        if (r < 0) {
                close_line(f);
                fprintf(stderr, "vmigratectl: cannot cancel the migration: %s\n", g_strerror(-r));
        }
}

static int on_start_postcopy_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        g_autofree char *domain = ctl_shell_word(f->settings->domain);

        if (!e)
                return 0;
        /* The migration itself goes on in pre-copy: say so, and keep following it. */
        close_line(f);
        fprintf(stderr, "vmigratectl: cannot switch the migration of domain '%s' to post-copy: %s\n",
                f->settings->domain, e->message ? e->message : e->name);
        if (!sd_bus_error_has_name(e, vm_error_dbus_name(VM_ERROR_INVALID_STATE)) || !f->state.postcopy_seen)
                fprintf(stderr,
                        "hint: it goes on in pre-copy; 'vmigratectl migrate-postcopy %s' asks again.\n",
                        domain);
        return 0;
}

static void send_start_postcopy(Follow *f) {
        /* The daemon keeps the request until QEMU can switch (after the first pass has begun). */
        int r = sd_bus_call_method_async(f->bus, NULL, BUS_NAME, f->job_path, BUS_JOB_INTERFACE,
                                         "StartPostCopy", on_start_postcopy_reply, f, NULL);
        if (r < 0) {
                close_line(f);
                fprintf(stderr, "vmigratectl: cannot ask for post-copy: %s\n", g_strerror(-r));
        }
}

static int on_migrate_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *path;
        int r;

        if (e) {
                g_autofree char *what = g_strdup_printf("cannot migrate domain '%s' to %s",
                                                        f->settings->domain, f->settings->destination);
                close_line(f);
                follow_exit(f, ctl_report_error(f->settings->host, e, -EIO, what));
                return 0;
        }
        if (sd_bus_message_read(reply, "o", &path) <= 0 || !g_str_has_prefix(path, BUS_JOB_PREFIX "/")) {
                fprintf(stderr, "vmigratectl: cannot migrate domain '%s': unexpected reply from vmigrated\n",
                        f->settings->domain);
                follow_exit(f, CTL_EXIT_FAILED);
                return 0;
        }
        f->job_path = g_strdup(path);
        if (f->show_progress) {
                fprintf(f->out, "Migrating domain '%s' to %s (job %s).\n", f->settings->domain,
                        f->settings->destination, path);
                fflush(f->out);
        }

        /* Replay, in order, what this job said before we knew its path. */
        for (guint i = 0; i < f->early->len && f->result == NULL; i++) {
                sd_bus_message *m = f->early->pdata[i];

                if (!g_str_equal(sd_bus_message_get_path(m), path))
                        continue;
                if (sd_bus_message_is_signal(m, BUS_JOB_INTERFACE, "Finished"))
                        apply_finished(f, m);
                else if (sd_bus_message_is_signal(m, BUS_JOB_INTERFACE, "NotConverging"))
                        apply_not_converging(f, m);
                else
                        apply_properties_changed(f, m);
        }
        g_ptr_array_set_size(f->early, 0);
        if (f->result)
                return 0;

        /* The constant and not-yet-changed properties, to complete the picture. */
        r = sd_bus_call_method_async(f->bus, NULL, BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                     "GetAll", on_get_all, f, "s", BUS_JOB_INTERFACE);
        if (r < 0)
                fprintf(stderr, "vmigratectl: cannot read the job's properties: %s\n", g_strerror(-r));
        /* Ctrl-C before the reply wins over the switch: the user wants out. */
        if (f->cancel_pending)
                send_cancel(f);
        else if (f->settings->start_postcopy)
                send_start_postcopy(f);
        return 0;
}

static int on_job_stats(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        g_autoptr(GVariant) stats = NULL;

        f->stats_call = sd_bus_slot_unref(f->stats_call);
        /* NoJob and the like: the properties and Finished tell the rest. */
        if (f->result || sd_bus_message_is_method_error(reply, NULL))
                return 0;
        if (bus_message_read_gvariant(reply, "a{sv}", &stats) < 0)
                return 0;
        g_autofree char *old_stage = stage_of(&f->state);
        ctl_job_state_update_stats(&f->state, stats);
        f->dirty = true;
        /* The disk stage begins: at once, as a phase change. */
        g_autofree char *new_stage = stage_of(&f->state);
        if (g_strcmp0(old_stage, new_stage) != 0)
                draw(f, false);
        return 0;
}

/* While no memory has gone, asks for the domain's statistics, which alone
 * have the disks (see the top of this file). */
static void ask_disk_stats(Follow *f, uint64_t now) {
        const CtlJobState *s = &f->state;

        if (!f->show_progress || !f->job_path || !f->domain_path || f->result || f->stats_call ||
            now - f->stats_asked_usec < DISK_STATS_USEC)
                return;
        if (g_strcmp0(s->phase, "perform") != 0 || s->postcopy_seen || s->iteration > 0 ||
            s->data_processed > 0)
                return;
        f->stats_asked_usec = now;
        /* On failure only the disk figures are missed: the progress goes on without them. */
        (void) sd_bus_call_method_async(f->bus, &f->stats_call, BUS_NAME, f->domain_path,
                                        BUS_DOMAIN_INTERFACE, "GetJobStats", on_job_stats, f, NULL);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Follow *f = userdata;

        ask_disk_stats(f, now_usec());
        draw(f, false);
        (void) sd_event_source_set_time(s, usec + REDRAW_USEC);
        return 0;
}

static int on_sigint(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Follow *f = userdata;

        f->interrupts++;
        close_line(f);
        if (f->interrupts == 1) {
                fprintf(stderr,
                        "vmigratectl: cancelling the migration; Ctrl-C again stops following it "
                        "(it then continues without us).\n");
                if (f->job_path)
                        send_cancel(f);
                else
                        f->cancel_pending = true;
                return 0;
        }
        if (f->job_path)
                fprintf(stderr,
                        "vmigratectl: no longer following job %s; 'vmigratectl job-status %s' shows how it "
                        "ends.\n",
                        f->job_path, f->settings->domain);
        else
                fprintf(stderr,
                        "vmigratectl: stopped waiting; the migration may still start: 'vmigratectl "
                        "job-status %s' shows it.\n",
                        f->settings->domain);
        follow_exit(f, CTL_EXIT_FAILED);
        return 0;
}

/* " --host=URI" for a command line to paste, or "" for the local bus. */
static char *host_option(const CtlHost *host) {
        if (host->kind == CTL_HOST_LOCAL)
                return g_strdup("");
        g_autofree char *word = ctl_shell_word(host->destination->canonical);
        return g_strconcat(" --host=", word, NULL);
}

/*
 * After the switch the destination runs the guest with part of its memory
 * still here: a broken stream leaves it paused on both hosts, and nothing
 * may be destroyed or resumed by hand. Say that, and the one command that
 * recovers.
 */
static void print_postcopy_failed(Follow *f) {
        const CtlFollow *s = f->settings;
        g_autofree char *host = host_option(s->host);
        g_autofree char *domain = ctl_shell_word(s->domain);
        g_autofree char *destination = ctl_shell_word(s->destination);

        fprintf(stderr,
                "vmigratectl: post-copy failed: domain '%s' is now paused on both hosts (state reason "
                "postcopy-failed). Neither host has all of its memory: do not resume, destroy or start it "
                "on either host.\n"
                "hint: once the link to %s is back, resume the migration with:\n"
                "  vmigratectl%s migrate %s %s --postcopy-resume\n",
                s->domain, s->destination, host, domain, destination);
}

static void print_summary(Follow *f) {
        const CtlFollow *s = f->settings;
        bool postcopy_failed = f->state.postcopy_seen && g_str_equal(f->result, "failed");

        if (s->json) {
                g_autoptr(JsonNode) root = json_gvariant_serialize(f->final_stats);
                JsonObject *o = json_node_get_object(root);

                json_object_set_string_member(o, "domain", s->domain);
                json_object_set_string_member(o, "destination", s->destination);
                json_object_set_string_member(o, "job", f->job_path);
                json_object_set_string_member(o, "result", f->result);
                /* Scripts must be able to tell "runs on the source" from "paused on both hosts". */
                json_object_set_boolean_member(o, "postcopy-failed", postcopy_failed);
                ctl_print_json(root);
        } else if (!s->quiet) {
                g_autofree char *text = ctl_format_job_stats(f->final_stats);

                printf("Migration of domain '%s' to %s %s.\n%s", s->domain, s->destination, f->result, text);
        }
        if (!g_str_equal(f->result, "completed"))
                fprintf(stderr,
                        "vmigratectl: the migration of domain '%s' to %s did not complete (%s): %s\n",
                        s->domain, s->destination, f->result,
                        f->final_error && *f->final_error ? f->final_error : "(no reason given)");
        if (postcopy_failed)
                print_postcopy_failed(f);
}

int ctl_migrate_follow(sd_bus *bus, sd_bus_message *call, const CtlFollow *settings) {
        g_autoptr(sd_event) event = NULL;
        g_autoptr(sd_bus_slot) slot_props = NULL, slot_finished = NULL, slot_owner = NULL,
                               slot_disconnected = NULL, slot_not_converging = NULL;
        g_autoptr(sd_bus_slot) slot_call = NULL;
        sd_event_source *tick = NULL, *sigint = NULL;
        Follow f = {
                .settings = settings,
                .bus = bus,
                .early = g_ptr_array_new_with_free_func(message_unref),
                .exit_code = CTL_EXIT_FAILED,
        };
        sigset_t mask, old_mask;
        int r;

        f.out = settings->json ? stderr : stdout;
        f.tty = isatty(fileno(f.out));
        /* With --json, stdout is for the result only: progress goes to a terminal on stderr or nowhere. */
        f.show_progress = !settings->quiet && (!settings->json || f.tty);

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: cannot set up the event loop: %s\n", g_strerror(-r));
                g_ptr_array_unref(f.early);
                return CTL_EXIT_FAILED;
        }
        f.event = event;

        /* Subscriptions first, so that nothing the job says is missed. */
        r = sd_bus_add_match(bus, &slot_props,
                             "type='signal',sender='" BUS_NAME
                             "',interface='org.freedesktop.DBus.Properties',"
                             "member='PropertiesChanged',path_namespace='" BUS_JOB_PREFIX "',"
                             "arg0='" BUS_JOB_INTERFACE "'",
                             on_properties_changed, &f);
        if (r >= 0)
                r = sd_bus_add_match(bus, &slot_finished,
                                     "type='signal',sender='" BUS_NAME "',interface='" BUS_JOB_INTERFACE "',"
                                     "member='Finished',path_namespace='" BUS_JOB_PREFIX "'",
                                     on_finished, &f);
        if (r >= 0)
                r = sd_bus_add_match(bus, &slot_not_converging,
                                     "type='signal',sender='" BUS_NAME "',interface='" BUS_JOB_INTERFACE "',"
                                     "member='NotConverging',path_namespace='" BUS_JOB_PREFIX "'",
                                     on_not_converging, &f);
        if (r >= 0)
                r = sd_bus_add_match(
                        bus, &slot_owner,
                        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                        "member='NameOwnerChanged',arg0='" BUS_NAME "'",
                        on_owner_changed, &f);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &slot_disconnected, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, &f);
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("cannot subscribe to the migration's progress");
                g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
                g_ptr_array_unref(f.early);
                (void) sd_bus_detach_event(bus);
                return ctl_report_error(settings->host, &e, r, what);
        }

        /* A copy: the call's own string moves when the call is sealed. */
        f.domain_path = g_strdup(sd_bus_message_get_path(call));

        /* Ctrl-C is an event like the others: the first cancels, the second detaches. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, &old_mask);
        r = sd_event_add_signal(event, &sigint, SIGINT, on_sigint, &f);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &tick, CLOCK_MONOTONIC, REDRAW_USEC, 10 * 1000,
                                               on_tick, &f);
        if (r >= 0)
                r = sd_event_source_set_enabled(tick, SD_EVENT_ON);
        if (r >= 0)
                r = sd_bus_call_async(bus, &slot_call, call, on_migrate_reply, &f,
                                      MIGRATE_CALL_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_event_loop(event);
        if (r < 0) {
                close_line(&f);
                fprintf(stderr, "vmigratectl: cannot migrate domain '%s': %s\n", settings->domain,
                        g_strerror(-r));
                f.exit_code = CTL_EXIT_FAILED;
        }
        close_line(&f);
        if (f.result)
                print_summary(&f);

        sd_event_source_disable_unref(tick);
        sd_event_source_disable_unref(sigint);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        slot_call = sd_bus_slot_unref(slot_call);
        f.stats_call = sd_bus_slot_unref(f.stats_call);
        (void) sd_bus_detach_event(bus);
        ctl_job_state_clear(&f.state);
        g_free(f.shown_phase);
        g_free(f.last_line);
        g_free(f.job_path);
        g_free(f.domain_path);
        g_free(f.result);
        g_free(f.final_error);
        g_clear_pointer(&f.final_stats, g_variant_unref);
        g_ptr_array_unref(f.early);
        return f.exit_code;
}
