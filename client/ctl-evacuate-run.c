/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl evacuate: following an evacuation (Manager.Evacuate) to its
 * end.
 *
 * It polls, twice a second, the Evacuation's properties and the Job of
 * each child that migrates, rather than following signals: an evacuation
 * of many domains changes often, a poll sees a consistent picture, and
 * one that ended before we looked (nothing to move: Finished comes before
 * Evacuate's reply) is seen the same way. The children's Job objects go
 * 60 s after they end, so what is shown at the end comes from the
 * evacuation's Results and the host's job history, never from the Jobs.
 */

#include "bus-gvariant.h"
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#define POLL_USEC (500 * 1000)

typedef struct Follow {
        const CtlEvacuateFollow *settings;
        sd_bus *bus;
        sd_event *event;
        const char *path;
        CtlEvacuation ev;
        FILE *out; /* progress: stdout, or stderr with --json */
        bool tty, show_progress;
        unsigned drawn_lines;   /* on a terminal: lines of the block to redraw */
        GHashTable *last_shown; /* no terminal: item -> what was last printed of it */
        bool header_shown;
        unsigned interrupts;
        bool ended;
        int exit_code;
} Follow;

static void follow_exit(Follow *f, int code) {
        f->exit_code = code;
        (void) sd_event_exit(f->event, 0);
}

/* Removes the block drawn on the terminal, so that a message goes where it was. */
static void clear_block(Follow *f) {
        if (!f->tty || f->drawn_lines == 0)
                return;
        fprintf(f->out, "\033[%uA\r\033[J", f->drawn_lines);
        fflush(f->out);
        f->drawn_lines = 0;
}

static void terminal_size(FILE *out, unsigned *ret_columns, unsigned *ret_rows) {
        struct winsize ws;

        *ret_columns = 80;
        *ret_rows = 24;
        if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
                *ret_columns = ws.ws_col;
                *ret_rows = ws.ws_row;
        }
}

static void draw_terminal(Follow *f) {
        g_autofree char *counts = ctl_evacuation_counts_text(&f->ev);
        g_autofree char *block = NULL;
        unsigned columns, rows, lines = 1;

        terminal_size(f->out, &columns, &rows);
        /* The counts line, the domains, and a spare line for the cursor. */
        block = ctl_format_evacuation_progress(&f->ev, columns - 1, rows > 3 ? rows - 2 : 1);
        for (const char *p = block; *p; p++)
                lines += *p == '\n';
        clear_block(f);
        fprintf(f->out, "%.*s\n%s", (int) MIN(strlen(counts), (size_t) columns - 1), counts, block);
        fflush(f->out);
        f->drawn_lines = lines;
}

static char *item_key(const CtlEvacuationItem *item, guint index) {
        return g_strdup_printf("%s#%u", item->uuid ? item->uuid : "", index);
}

/* Without a terminal: a line per domain each time its state or phase changes. */
static void draw_plain(Follow *f) {
        for (guint i = 0; i < f->ev.items->len; i++) {
                const CtlEvacuationItem *item = f->ev.items->pdata[i];
                g_autofree char *key = item_key(item, i);
                g_autofree char *what = g_strdup_printf("%s/%s/%s", item->state ? item->state : "",
                                                        item->phase ? item->phase : "",
                                                        item->destination ? item->destination : "");
                const char *last = g_hash_table_lookup(f->last_shown, key);

                if (g_strcmp0(last, what) == 0)
                        continue;
                /* "waiting" for everyone at the start says nothing. */
                if (!last && g_strcmp0(item->state, "pending") == 0) {
                        g_hash_table_insert(f->last_shown, g_steal_pointer(&key), g_steal_pointer(&what));
                        continue;
                }
                {
                        g_autofree char *name = ctl_sanitize_cell(item->domain ? item->domain : "?");
                        g_autofree char *dest = ctl_sanitize_cell(
                                item->destination && *item->destination ? item->destination : "-");
                        g_autofree char *status = ctl_evacuation_item_status(item);
                        fprintf(f->out, "%s  %s  %s\n", name, dest, status);
                }
                g_hash_table_insert(f->last_shown, g_steal_pointer(&key), g_steal_pointer(&what));
        }
        fflush(f->out);
}

static void draw(Follow *f) {
        if (!f->show_progress)
                return;
        if (!f->header_shown) {
                clear_block(f);
                if (f->ev.total == 0)
                        fprintf(f->out, "Nothing to move off this host (%s).\n", f->path);
                else
                        fprintf(f->out, "Evacuating %" PRIu32 " domain%s (%s).\n", f->ev.total,
                                f->ev.total == 1 ? "" : "s", f->path);
                f->header_shown = true;
        }
        if (f->tty)
                draw_terminal(f);
        else
                draw_plain(f);
}

/* GetAll of interface at path into *ret; the sd-bus error is the caller's to read. */
static int get_all(Follow *f, const char *path, const char *interface, sd_bus_error *error, GVariant **ret) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = sd_bus_call_method(f->bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", error,
                               &reply, "s", interface);
        if (r < 0)
                return r;
        r = bus_message_read_gvariant(reply, "a{sv}", ret);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "unexpected reply from vmigrated"),
                       r;
        return 0;
}

/* The children that migrate: their Job's phase and progress. A job already
 * gone (it ended) or not readable only misses its figures. */
static void poll_jobs(Follow *f) {
        for (guint i = 0; i < f->ev.items->len; i++) {
                const CtlEvacuationItem *item = f->ev.items->pdata[i];
                g_autofree char *job_path = NULL;
                g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
                g_autoptr(GVariant) props = NULL;

                if (item->job_id == 0 || g_strcmp0(item->state, "migrating") != 0)
                        continue;
                job_path = g_strdup_printf(BUS_JOB_PREFIX "/%" G_GUINT64_FORMAT, item->job_id);
                if (get_all(f, job_path, BUS_JOB_INTERFACE, &error, &props) >= 0)
                        ctl_evacuation_update_job(&f->ev, item->job_id, props);
        }
}

/* The elapsed times for the summary, from the host's job history: the Jobs may be gone. */
static void read_history(Follow *f) {
        g_autoptr(sd_bus_message) m = NULL, reply = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GVariant) history = NULL;
        GVariantBuilder filter;
        int r;

        g_variant_builder_init(&filter, G_VARIANT_TYPE_VARDICT);
        if (f->settings->started_usec > 0)
                g_variant_builder_add(&filter, "{sv}", "since",
                                      g_variant_new_uint64((guint64) f->settings->started_usec));
        r = sd_bus_message_new_method_call(f->bus, &m, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                           "ListJobHistory");
        /* The builder's result is floating: held here, so that it is freed. */
        g_autoptr(GVariant) filter_value = g_variant_ref_sink(g_variant_builder_end(&filter));
        if (r >= 0)
                r = bus_message_append_gvariant(m, filter_value);
        if (r >= 0)
                r = sd_bus_call(f->bus, m, 0, &error, &reply);
        /* Without it the summary lacks the times, nothing else. */
        if (r >= 0 && bus_message_read_gvariant(reply, "aa{sv}", &history) >= 0)
                ctl_evacuation_update_history(&f->ev, history);
}

static void poll_once(Follow *f) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GVariant) props = NULL;
        int r;

        r = get_all(f, f->path, BUS_EVACUATION_INTERFACE, &error, &props);
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("cannot follow evacuation %s", f->path);

                clear_block(f);
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                        /* vmigrated restarted: an evacuation does not outlive it. */
                        fprintf(stderr,
                                "vmigratectl: %s: it is gone (did vmigrated restart?). 'vmigratectl "
                                "history' "
                                "shows the migrations that ended.\n",
                                what);
                        follow_exit(f, CTL_EXIT_FAILED);
                } else
                        follow_exit(f, ctl_report_error(f->settings->host, &error, r, what));
                return;
        }
        ctl_evacuation_update(&f->ev, props);
        if (ctl_evacuation_ended(&f->ev)) {
                read_history(f);
                f->ended = true;
                /* A log keeps the last changes; a terminal gets the summary instead of the block. */
                if (f->tty)
                        clear_block(f);
                else
                        draw(f);
                follow_exit(f, g_str_equal(f->ev.state, "completed") ? CTL_EXIT_OK : CTL_EXIT_FAILED);
                return;
        }
        poll_jobs(f);
        draw(f);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Follow *f = userdata;

        poll_once(f);
        (void) sd_event_source_set_time(s, usec + POLL_USEC);
        return 0;
}

static void send_cancel(Follow *f) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(f->bus, BUS_NAME, f->path, BUS_EVACUATION_INTERFACE, "Cancel", &error, NULL,
                               NULL);
        /* Ended meanwhile: the next poll says how. */
        if (r < 0 && !sd_bus_error_has_name(&error, vm_error_dbus_name(VM_ERROR_INVALID_STATE))) {
                g_autofree char *what = g_strdup_printf("cannot cancel evacuation %s", f->path);
                (void) ctl_report_error(f->settings->host, &error, r, what);
        }
}

static int on_sigint(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Follow *f = userdata;

        f->interrupts++;
        clear_block(f);
        if (f->interrupts == 1) {
                fprintf(stderr,
                        "vmigratectl: cancelling the evacuation: migrations still copying are cancelled "
                        "(their "
                        "domains stay here), those in post-copy finish. Ctrl-C again stops following it.\n");
                send_cancel(f);
                return 0;
        }
        fprintf(stderr,
                "vmigratectl: no longer following evacuation %s; it goes on without us:\n"
                "  busctl get-property %s %s %s State\n",
                f->path, BUS_NAME, f->path, BUS_EVACUATION_INTERFACE);
        follow_exit(f, CTL_EXIT_FAILED);
        return 0;
}

static void print_summary(Follow *f) {
        const CtlEvacuateFollow *s = f->settings;
        bool completed = g_strcmp0(f->ev.state, "completed") == 0;
        unsigned columns = 0, rows;

        if (s->json) {
                g_autoptr(JsonNode) root = ctl_evacuation_to_json(&f->ev, f->path);
                ctl_print_json(root);
        } else if (!s->quiet) {
                g_autofree char *counts = ctl_evacuation_counts_text(&f->ev);
                g_autofree char *table = NULL;

                if (isatty(STDOUT_FILENO))
                        terminal_size(stdout, &columns, &rows);
                table = ctl_format_evacuation_results(&f->ev, columns);
                printf("Evacuation %s %s: %s.\n", f->path, f->ev.state, counts);
                if (f->ev.items->len > 0)
                        fputs(table, stdout);
                if (s->maintenance)
                        printf("This host stays in maintenance; 'vmigratectl maintenance off' ends it.\n");
        }
        if (!completed)
                fprintf(stderr,
                        "vmigratectl: the evacuation did not complete (%s): %" PRIu32 " of %" PRIu32
                        " domains did not move\n",
                        f->ev.state, f->ev.total - f->ev.done, f->ev.total);
}

int ctl_evacuate_follow(sd_bus *bus, const char *path, const CtlEvacuateFollow *settings) {
        g_autoptr(sd_event) event = NULL;
        sd_event_source *tick = NULL, *sigint = NULL;
        Follow f = {
                .settings = settings,
                .bus = bus,
                .path = path,
                .last_shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                .exit_code = CTL_EXIT_FAILED,
        };
        sigset_t mask, old_mask;
        int r;

        ctl_evacuation_init(&f.ev);
        f.out = settings->json ? stderr : stdout;
        f.tty = isatty(fileno(f.out));
        /* With --json, stdout is for the result only: progress goes to a terminal on stderr or nowhere. */
        f.show_progress = !settings->quiet && (!settings->json || f.tty);

        r = sd_event_new(&event);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: cannot set up the event loop: %s\n", g_strerror(-r));
                ctl_evacuation_clear(&f.ev);
                g_hash_table_unref(f.last_shown);
                return CTL_EXIT_FAILED;
        }
        f.event = event;

        /* Ctrl-C is an event like the others: the first cancels, the second detaches. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, &old_mask);
        r = sd_event_add_signal(event, &sigint, SIGINT, on_sigint, &f);
        /* The first poll at once: a short evacuation may be over already. */
        if (r >= 0)
                r = sd_event_add_time_relative(event, &tick, CLOCK_MONOTONIC, 0, 10 * 1000, on_tick, &f);
        if (r >= 0)
                r = sd_event_source_set_enabled(tick, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_loop(event);
        if (r < 0) {
                clear_block(&f);
                fprintf(stderr, "vmigratectl: cannot follow evacuation %s: %s\n", path, g_strerror(-r));
                f.exit_code = CTL_EXIT_FAILED;
        }
        /* The last picture stays on the terminal above the summary. */
        if (f.ended)
                print_summary(&f);

        sd_event_source_disable_unref(tick);
        sd_event_source_disable_unref(sigint);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        ctl_evacuation_clear(&f.ev);
        g_hash_table_unref(f.last_shown);
        return f.exit_code;
}
