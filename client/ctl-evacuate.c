/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl evacuate without a bus: its options, and the evacuation's
 * state (Evacuation properties, the children's Job properties) for humans
 * and for --json. ctl-evacuate-run.c follows the evacuation.
 */

#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ---- options ---- */

int ctl_evacuate_options_add(const CtlEvacuateArgs *e, GVariantDict *options, char **ret_error) {
        static const char *const orders[] = { "smallest-first", "largest-first", "priority", NULL };
        uint64_t parallel = 0;

        if (e->order && !g_strv_contains(orders, e->order)) {
                *ret_error = g_strdup_printf("invalid --order '%s': give 'smallest-first' (the default, by "
                                             "memory), 'largest-first' or 'priority'",
                                             e->order);
                return -EINVAL;
        }
        if (e->parallel && ctl_parse_uint(e->parallel, 1, CTL_EVACUATE_PARALLEL_MAX, &parallel) < 0) {
                *ret_error = g_strdup_printf("invalid --parallel '%s': expected migrations at once, a whole "
                                             "number from 1 to %d",
                                             e->parallel, CTL_EVACUATE_PARALLEL_MAX);
                return -EINVAL;
        }

        /* Absent ones are the daemon's to default (parallel: its MaxOutgoingMigrations). */
        if (e->order)
                g_variant_dict_insert(options, "order", "s", e->order);
        if (e->parallel)
                g_variant_dict_insert(options, "parallel", "u", (guint32) parallel);
        if (e->inactive)
                g_variant_dict_insert(options, "inactive", "b", TRUE);
        if (e->maintenance)
                g_variant_dict_insert(options, "maintenance", "b", TRUE);
        return 0;
}

bool ctl_evacuate_takes_migrate_flag(const char *flag) {
        static const char *const per_domain[] = {
                "destination-name", "dname",           "destination-xml",        "xml",
                "offline",          "postcopy-resume", "postcopy-after-precopy", NULL
        };
        return !g_strv_contains(per_domain, flag);
}

int ctl_evacuate_check_migrate_args(const CtlMigrateArgs *m, char **ret_error) {
        static const struct {
                const char *key, *flag, *why;
        } per_domain[] = {
                { "destination-name", "destination-name", "it names one domain" },
                { "offline", "offline", "--inactive moves the shut-off domains, offline" },
        };
        const char *flag = NULL, *why = NULL;

        if (m->destination_xml) {
                flag = "destination-xml";
                why = "it describes one domain";
        } else if (m->switches.postcopy_resume) {
                flag = "postcopy-resume";
                why = "it continues one failed migration";
        } else if (m->switches.postcopy_after_precopy) {
                flag = "postcopy-after-precopy";
                why = "give --postcopy with a --policy that switches, or --timeout-postcopy";
        }
        for (size_t i = 0; !flag && m->options && i < G_N_ELEMENTS(per_domain); i++)
                if (g_variant_dict_contains(m->options, per_domain[i].key)) {
                        flag = per_domain[i].flag;
                        why = per_domain[i].why;
                }
        if (!flag)
                return 0;
        *ret_error = g_strdup_printf("--%s only applies to 'migrate', not to 'evacuate' (%s)", flag, why);
        return -EINVAL;
}

int ctl_evacuate_check_destinations(char *const *destinations, size_t n, char **ret_error) {
        g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);

        if (n == 0) {
                *ret_error = g_strdup(
                        "'evacuate' needs one DESTINATION or more (the hosts the domains may go to)");
                return -EINVAL;
        }
        if (n > CTL_EVACUATE_DESTINATIONS_MAX) {
                *ret_error = g_strdup_printf("'evacuate' takes at most %d destinations, not %zu",
                                             CTL_EVACUATE_DESTINATIONS_MAX, n);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                g_autoptr(Destination) d = NULL;
                g_autoptr(GError) error = NULL;

                if (destination_parse(destinations[i], &d, &error) < 0) {
                        *ret_error = g_strdup_printf("invalid DESTINATION '%s': %s", destinations[i],
                                                     error->message);
                        return -EINVAL;
                }
                for (guint k = 0; k < seen->len; k++)
                        if (g_str_equal(seen->pdata[k], d->canonical)) {
                                *ret_error = g_strdup_printf("DESTINATION '%s' is given twice (as %s)",
                                                             destinations[i], d->canonical);
                                return -EINVAL;
                        }
                g_ptr_array_add(seen, g_strdup(d->canonical));
        }
        return 0;
}

/* ---- the evacuation's state ---- */

static void item_free(gpointer p) {
        CtlEvacuationItem *item = p;

        g_free(item->domain);
        g_free(item->uuid);
        g_free(item->state);
        g_free(item->destination);
        g_free(item->message);
        g_free(item->phase);
        g_free(item);
}

void ctl_evacuation_init(CtlEvacuation *ev) {
        *ev = (CtlEvacuation){ .items = g_ptr_array_new_with_free_func(item_free) };
}

void ctl_evacuation_clear(CtlEvacuation *ev) {
        g_clear_pointer(&ev->state, g_free);
        g_clear_pointer(&ev->items, g_ptr_array_unref);
        *ev = (CtlEvacuation){ 0 };
}

static CtlEvacuationItem *find_item_by_job(const CtlEvacuation *ev, uint64_t job_id) {
        if (job_id == 0)
                return NULL;
        for (guint i = 0; i < ev->items->len; i++) {
                CtlEvacuationItem *item = ev->items->pdata[i];
                if (item->job_id == job_id)
                        return item;
        }
        return NULL;
}

static char *dup_string(GVariant *dict, const char *key) {
        const char *s;

        if (g_variant_lookup(dict, key, "&s", &s))
                return g_strdup(s);
        return NULL;
}

static CtlEvacuationItem *item_from_result(GVariant *result) {
        CtlEvacuationItem *item = g_new0(CtlEvacuationItem, 1);
        gboolean offline = FALSE;

        item->domain = dup_string(result, "domain");
        item->uuid = dup_string(result, "uuid");
        item->state = dup_string(result, "state");
        item->destination = dup_string(result, "destination");
        item->message = dup_string(result, "message");
        (void) g_variant_lookup(result, "job-id", "t", &item->job_id);
        (void) g_variant_lookup(result, "memory-bytes", "t", &item->memory_bytes);
        (void) g_variant_lookup(result, "offline", "b", &offline);
        item->offline = offline;
        return item;
}

static void update_results(CtlEvacuation *ev, GVariant *results) {
        GPtrArray *items = g_ptr_array_new_with_free_func(item_free);
        GVariantIter iter;
        GVariant *result;

        g_variant_iter_init(&iter, results);
        while ((result = g_variant_iter_next_value(&iter))) {
                CtlEvacuationItem *item = item_from_result(result);
                const CtlEvacuationItem *old = find_item_by_job(ev, item->job_id);

                /* What the job said stays with the item: Results do not carry it. */
                if (old) {
                        item->phase = g_strdup(old->phase);
                        item->progress = old->progress;
                        item->elapsed_ms = old->elapsed_ms;
                        item->elapsed_known = old->elapsed_known;
                }
                g_ptr_array_add(items, item);
                g_variant_unref(result);
        }
        g_ptr_array_unref(ev->items);
        ev->items = items;
}

void ctl_evacuation_update(CtlEvacuation *ev, GVariant *properties) {
        g_autoptr(GVariant) results = NULL;
        const char *state;
        double progress;

        if (g_variant_lookup(properties, "State", "&s", &state)) {
                g_free(ev->state);
                ev->state = g_strdup(state);
        }
        (void) g_variant_lookup(properties, "Total", "u", &ev->total);
        (void) g_variant_lookup(properties, "Done", "u", &ev->done);
        (void) g_variant_lookup(properties, "Failed", "u", &ev->failed);
        (void) g_variant_lookup(properties, "Remaining", "u", &ev->remaining);
        if (g_variant_lookup(properties, "Progress", "d", &progress) && progress >= 0.0 && progress <= 1.0)
                ev->progress = progress;
        results = g_variant_lookup_value(properties, "Results", G_VARIANT_TYPE("aa{sv}"));
        if (results)
                update_results(ev, results);
}

void ctl_evacuation_update_job(CtlEvacuation *ev, uint64_t job_id, GVariant *job_properties) {
        CtlEvacuationItem *item = find_item_by_job(ev, job_id);
        const char *phase;
        double progress;
        guint64 elapsed;

        if (!item)
                return;
        if (g_variant_lookup(job_properties, "Phase", "&s", &phase)) {
                g_free(item->phase);
                item->phase = g_strdup(phase);
        }
        /* As for migrate's bar: what is shown never goes back. */
        if (g_variant_lookup(job_properties, "Progress", "d", &progress) && progress > item->progress &&
            progress <= 1.0)
                item->progress = progress;
        if (g_variant_lookup(job_properties, "ElapsedMs", "t", &elapsed)) {
                item->elapsed_ms = elapsed;
                item->elapsed_known = true;
        }
}

void ctl_evacuation_update_history(CtlEvacuation *ev, GVariant *history) {
        GVariantIter iter;
        GVariant *job;

        g_variant_iter_init(&iter, history);
        while ((job = g_variant_iter_next_value(&iter))) {
                guint64 id = 0, elapsed;
                CtlEvacuationItem *item;

                if (g_variant_lookup(job, "id", "t", &id) && (item = find_item_by_job(ev, id)) &&
                    g_variant_lookup(job, "elapsed-ms", "t", &elapsed)) {
                        item->elapsed_ms = elapsed;
                        item->elapsed_known = true;
                }
                g_variant_unref(job);
        }
}

bool ctl_evacuation_ended(const CtlEvacuation *ev) {
        return ev->state && !g_str_equal(ev->state, "running");
}

/* ---- for humans ---- */

char *ctl_evacuation_counts_text(const CtlEvacuation *ev) {
        return g_strdup_printf("%" PRIu32 "/%" PRIu32 " moved, %" PRIu32 " failed, %" PRIu32
                               " remaining (%d%%)",
                               ev->done, ev->total, ev->failed, ev->remaining, (int) (ev->progress * 100.0));
}

static bool item_is_active(const CtlEvacuationItem *item) {
        return g_strcmp0(item->state, "placing") == 0 || g_strcmp0(item->state, "migrating") == 0;
}

static char *with_message(const char *what, const char *message) {
        if (message && *message) {
                g_autofree char *clean = ctl_sanitize_cell(message);
                return g_strdup_printf("%s: %s", what, clean);
        }
        return g_strdup(what);
}

char *ctl_evacuation_item_status(const CtlEvacuationItem *item) {
        const char *state = item->state ? item->state : "";

        if (g_str_equal(state, "pending"))
                return g_strdup("waiting");
        if (g_str_equal(state, "migrating")) {
                /* Before the first poll of its job, or once the job is gone: the state alone. */
                if (!item->phase)
                        return g_strdup(item->offline ? "migrating (offline)" : "migrating");
                return g_strdup_printf("%s %d%%%s", ctl_job_phase_label(item->phase),
                                       (int) (item->progress * 100.0), item->offline ? " (offline)" : "");
        }
        if (g_str_equal(state, "failed"))
                return with_message("failed", item->message);
        if (g_str_equal(state, "not-placed"))
                return with_message("not placed", item->message);
        if (g_str_equal(state, "cancelled"))
                return g_strdup("cancelled (stays here)");
        /* placing, completed, and states a newer vmigrated may add */
        return ctl_sanitize_cell(*state ? state : "?");
}

static char *item_destination(const CtlEvacuationItem *item) {
        return ctl_sanitize_cell(item->destination && *item->destination ? item->destination : "-");
}

static char *item_domain(const CtlEvacuationItem *item) {
        return ctl_sanitize_cell(item->domain && *item->domain ? item->domain : "?");
}

/* The first width characters of line; width 0: all of it. */
static void append_cut(GString *out, const char *line, unsigned width) {
        if (width > 0 && (size_t) g_utf8_strlen(line, -1) > width) {
                g_autofree char *head = g_utf8_substring(line, 0, width);
                g_string_append(out, head);
        } else
                g_string_append(out, line);
        g_string_append_c(out, '\n');
}

char *ctl_format_evacuation_progress(const CtlEvacuation *ev, unsigned width, unsigned max_lines) {
        g_autoptr(GPtrArray) shown = g_ptr_array_new();
        size_t name_width = 0, dest_width = 0;
        GString *out = g_string_new(NULL);
        guint hidden;

        /* The ones moving first, so that a short terminal shows what happens. */
        for (guint i = 0; i < ev->items->len; i++)
                if (item_is_active(ev->items->pdata[i]))
                        g_ptr_array_add(shown, ev->items->pdata[i]);
        for (guint i = 0; i < ev->items->len; i++)
                if (!item_is_active(ev->items->pdata[i]))
                        g_ptr_array_add(shown, ev->items->pdata[i]);
        if (max_lines > 0 && shown->len > max_lines) {
                /* One line goes to saying how many are not shown. */
                g_ptr_array_set_size(shown, max_lines > 1 ? max_lines - 1 : 0);
        } else if (max_lines == 0) {
                /* In the daemon's order: a log reads better so. */
                g_ptr_array_set_size(shown, 0);
                for (guint i = 0; i < ev->items->len; i++)
                        g_ptr_array_add(shown, ev->items->pdata[i]);
        }
        hidden = ev->items->len - shown->len;

        /* Columns from every domain, shown or not: they do not jump as the lines change. */
        for (guint i = 0; i < ev->items->len; i++) {
                g_autofree char *name = item_domain(ev->items->pdata[i]);
                g_autofree char *dest = item_destination(ev->items->pdata[i]);
                name_width = MAX(name_width, (size_t) g_utf8_strlen(name, -1));
                dest_width = MAX(dest_width, (size_t) g_utf8_strlen(dest, -1));
        }
        for (guint i = 0; i < shown->len; i++) {
                g_autofree char *name = item_domain(shown->pdata[i]);
                g_autofree char *dest = item_destination(shown->pdata[i]);
                g_autofree char *status = ctl_evacuation_item_status(shown->pdata[i]);
                g_autofree char *line = g_strdup_printf(
                        "  %s%*s  %s%*s  %s", name, (int) (name_width - (size_t) g_utf8_strlen(name, -1)),
                        "", dest, (int) (dest_width - (size_t) g_utf8_strlen(dest, -1)), "", status);
                append_cut(out, line, width);
        }
        if (hidden > 0) {
                g_autofree char *line = g_strdup_printf("  ... and %u more", hidden);
                append_cut(out, line, width);
        }
        return g_string_free(out, FALSE);
}

/* The RESULT column: the item's state, as the bus says it. */
static char *item_result(const CtlEvacuationItem *item) {
        return ctl_sanitize_cell(item->state && *item->state ? item->state : "?");
}

char *ctl_format_evacuation_results(const CtlEvacuation *ev, unsigned width) {
        static const char *const titles[] = { "DOMAIN", "DESTINATION", "RESULT", "TIME", "MESSAGE" };
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
        size_t widths[G_N_ELEMENTS(titles) - 1];
        size_t indent = 0;
        GString *out = g_string_new(NULL);

        for (size_t j = 0; j + 1 < G_N_ELEMENTS(titles); j++)
                widths[j] = strlen(titles[j]);
        for (guint i = 0; i < ev->items->len; i++) {
                const CtlEvacuationItem *item = ev->items->pdata[i];
                char *row[G_N_ELEMENTS(titles)];

                row[0] = item_domain(item);
                row[1] = item_destination(item);
                row[2] = item_result(item);
                row[3] = item->elapsed_known ? ctl_format_duration_ms(item->elapsed_ms) : g_strdup("-");
                row[4] = ctl_sanitize_cell(item->message && *item->message ? item->message : "");
                for (size_t j = 0; j < G_N_ELEMENTS(titles); j++) {
                        if (j + 1 < G_N_ELEMENTS(titles))
                                widths[j] = MAX(widths[j], (size_t) g_utf8_strlen(row[j], -1));
                        g_ptr_array_add(cells, row[j]);
                }
        }
        for (size_t j = 0; j + 1 < G_N_ELEMENTS(titles); j++)
                indent += widths[j] + 2;

        for (guint i = 0; i <= ev->items->len; i++) {
                for (size_t j = 0; j < G_N_ELEMENTS(titles); j++) {
                        const char *cell =
                                i == 0 ? titles[j] : cells->pdata[(i - 1) * G_N_ELEMENTS(titles) + j];

                        if (j + 1 < G_N_ELEMENTS(titles))
                                g_string_append_printf(out, "%s%*s  ", cell,
                                                       (int) (widths[j] - (size_t) g_utf8_strlen(cell, -1)),
                                                       "");
                        else if (width > indent + 20)
                                /* A not-placed message lists every destination's reasons: wrap it. */
                                ctl_append_wrapped(out, cell, indent, width - indent);
                        else
                                g_string_append(out, cell);
                }
                /* No blanks at the end of a row without a message. */
                while (out->len > 0 && out->str[out->len - 1] == ' ')
                        g_string_truncate(out, out->len - 1);
                g_string_append_c(out, '\n');
        }
        return g_string_free(out, FALSE);
}

JsonNode *ctl_evacuation_to_json(const CtlEvacuation *ev, const char *path) {
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "evacuation");
        json_builder_add_string_value(b, path);
        json_builder_set_member_name(b, "result");
        json_builder_add_string_value(b, ev->state ? ev->state : "unknown");
        json_builder_set_member_name(b, "total");
        json_builder_add_int_value(b, ev->total);
        json_builder_set_member_name(b, "done");
        json_builder_add_int_value(b, ev->done);
        json_builder_set_member_name(b, "failed");
        json_builder_add_int_value(b, ev->failed);
        json_builder_set_member_name(b, "remaining");
        json_builder_add_int_value(b, ev->remaining);
        json_builder_set_member_name(b, "domains");
        json_builder_begin_array(b);
        for (guint i = 0; i < ev->items->len; i++) {
                const CtlEvacuationItem *item = ev->items->pdata[i];

                json_builder_begin_object(b);
                json_builder_set_member_name(b, "domain");
                json_builder_add_string_value(b, item->domain ? item->domain : "");
                json_builder_set_member_name(b, "uuid");
                json_builder_add_string_value(b, item->uuid ? item->uuid : "");
                json_builder_set_member_name(b, "state");
                json_builder_add_string_value(b, item->state ? item->state : "");
                json_builder_set_member_name(b, "destination");
                json_builder_add_string_value(b, item->destination ? item->destination : "");
                json_builder_set_member_name(b, "message");
                json_builder_add_string_value(b, item->message ? item->message : "");
                json_builder_set_member_name(b, "job-id");
                json_builder_add_int_value(b, (gint64) item->job_id);
                json_builder_set_member_name(b, "offline");
                json_builder_add_boolean_value(b, item->offline);
                json_builder_set_member_name(b, "memory-bytes");
                json_builder_add_int_value(b, (gint64) item->memory_bytes);
                if (item->elapsed_known) {
                        json_builder_set_member_name(b, "elapsed-ms");
                        json_builder_add_int_value(b, (gint64) item->elapsed_ms);
                }
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        return json_builder_get_root(b);
}
