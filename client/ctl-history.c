/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl history: the ended jobs of Manager.ListJobHistory for humans
 * and for --json. No bus here.
 */

#include "ctl.h"

#include <string.h>

/* The ERROR column is never cut to less than this: below it, the line overflows instead. */
#define HISTORY_MIN_ERROR_WIDTH 12

char *ctl_format_local_time_usec(uint64_t usec) {
        g_autoptr(GDateTime) t = NULL;

        if (usec == 0 || usec > (uint64_t) G_MAXINT64)
                return g_strdup("-");
        t = g_date_time_new_from_unix_local((gint64) (usec / G_USEC_PER_SEC));
        if (!t)
                return g_strdup("-");
        return g_date_time_format(t, "%Y-%m-%d %H:%M:%S");
}

static char *lookup_text(GVariant *job, const char *key) {
        const char *s;

        if (g_variant_lookup(job, key, "&s", &s) && *s)
                return ctl_sanitize_cell(s);
        return g_strdup("-");
}

/* The cell of a t-typed key, through format; "-" when absent. */
static char *lookup_number(GVariant *job, const char *key, char *(*format)(uint64_t)) {
        guint64 v;

        if (g_variant_lookup(job, key, "t", &v))
                return format(v);
        return g_strdup("-");
}

static char *format_id(uint64_t id) {
        return g_strdup_printf("%" G_GUINT64_FORMAT, id);
}

static char *history_kind(GVariant *job) {
        const char *kind;

        if (!g_variant_lookup(job, "kind", "&s", &kind) || !*kind)
                return g_strdup("-");
        if (g_str_equal(kind, "migration-out"))
                return g_strdup("out");
        if (g_str_equal(kind, "migration-in"))
                return g_strdup("in");
        return ctl_sanitize_cell(kind);
}

/* The first width columns of text (characters, not bytes), "..." at the end when cut. */
static char *cut_to(const char *text, size_t width) {
        glong len = g_utf8_strlen(text, -1);
        g_autofree char *head = NULL;

        if ((size_t) len <= width)
                return g_strdup(text);
        if (width <= 3)
                return g_utf8_substring(text, 0, (glong) width);
        head = g_utf8_substring(text, 0, (glong) width - 3);
        return g_strconcat(head, "...", NULL);
}

enum {
        COL_ENDED,
        COL_JOB,
        COL_DOMAIN,
        COL_KIND,
        COL_PEER,
        COL_RESULT,
        COL_TIME,
        COL_DOWNTIME,
        COL_DATA,
        COL_ERROR,
        _COL_MAX
};

char *ctl_format_history(GVariant *jobs, unsigned width) {
        static const char *const titles[_COL_MAX] = { "ENDED",  "JOB",  "DOMAIN",   "KIND", "PEER",
                                                      "RESULT", "TIME", "DOWNTIME", "DATA", "ERROR" };
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
        size_t widths[_COL_MAX];
        size_t n_rows = 0, before_error = 0;
        GString *out = g_string_new(NULL);
        GVariantIter iter;
        GVariant *job;

        for (size_t j = 0; j < _COL_MAX; j++)
                widths[j] = strlen(titles[j]);

        g_variant_iter_init(&iter, jobs);
        while ((job = g_variant_iter_next_value(&iter))) {
                char *row[_COL_MAX];
                guint64 ended = 0;

                (void) g_variant_lookup(job, "ended-at", "t", &ended);
                row[COL_ENDED] = ctl_format_local_time_usec(ended);
                row[COL_JOB] = lookup_number(job, "id", format_id);
                row[COL_DOMAIN] = lookup_text(job, "domain");
                row[COL_KIND] = history_kind(job);
                row[COL_PEER] = lookup_text(job, "peer");
                /* The final phase is the result: completed, failed or cancelled. */
                row[COL_RESULT] = lookup_text(job, "phase");
                row[COL_TIME] = lookup_number(job, "elapsed-ms", ctl_format_duration_ms);
                row[COL_DOWNTIME] = lookup_number(job, "downtime-ms", ctl_format_duration_ms);
                row[COL_DATA] = lookup_number(job, "data-processed", ctl_format_bytes);
                row[COL_ERROR] = lookup_text(job, "error");
                for (size_t j = 0; j < _COL_MAX; j++) {
                        widths[j] = MAX(widths[j], (size_t) g_utf8_strlen(row[j], -1));
                        g_ptr_array_add(cells, row[j]);
                }
                n_rows++;
                g_variant_unref(job);
        }

        for (size_t j = 0; j < COL_ERROR; j++)
                before_error += widths[j] + 2;

        for (size_t i = 0; i <= n_rows; i++) {
                for (size_t j = 0; j < _COL_MAX; j++) {
                        const char *cell = i == 0 ? titles[j] : cells->pdata[(i - 1) * _COL_MAX + j];

                        if (j == COL_ERROR) {
                                size_t avail = width > before_error + HISTORY_MIN_ERROR_WIDTH
                                        ? width - before_error
                                        : HISTORY_MIN_ERROR_WIDTH;
                                g_autofree char *shown = width > 0 ? cut_to(cell, avail) : g_strdup(cell);
                                g_string_append(out, shown);
                        } else
                                /* Pad by characters, not bytes: names may be UTF-8. */
                                g_string_append_printf(out, "%s%*s  ", cell,
                                                       (int) (widths[j] - (size_t) g_utf8_strlen(cell, -1)),
                                                       "");
                }
                g_string_append_c(out, '\n');
        }
        return g_string_free(out, FALSE);
}

JsonNode *ctl_history_to_json(GVariant *jobs) {
        /* The keys are the daemon's, lower-case-dash already. */
        return json_gvariant_serialize(jobs);
}
