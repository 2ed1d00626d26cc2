/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: formatting values for humans and for --json.
 */

#include "ctl.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

char *ctl_format_bytes(uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        size_t u = 0;
        uint64_t unit = 1;

        while (u + 1 < G_N_ELEMENTS(units) && bytes / unit >= 1024) {
                unit *= 1024;
                u++;
        }
        if (bytes % unit == 0)
                return g_strdup_printf("%" G_GUINT64_FORMAT " %s", bytes / unit, units[u]);
        return g_strdup_printf("%.1f %s", (double) bytes / (double) unit, units[u]);
}

/*
 * A dash goes before an upper-case letter that follows a lower-case letter
 * or digit, so acronyms stay whole: "HostUUID" -> "host-uuid",
 * "VCPUs" -> "vcpus", "ExpectedDowntimeMs" -> "expected-downtime-ms".
 */
char *ctl_property_to_key(const char *property) {
        GString *s = g_string_new(NULL);

        for (const char *p = property; *p; p++) {
                if (p != property && g_ascii_isupper(*p) &&
                    (g_ascii_islower(p[-1]) || g_ascii_isdigit(p[-1])))
                        g_string_append_c(s, '-');
                g_string_append_c(s, g_ascii_tolower(*p));
        }
        return g_string_free(s, FALSE);
}

char *ctl_format_value(GVariant *value) {
        g_autoptr(GVariant) inner = NULL;

        if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARIANT)) {
                inner = g_variant_get_variant(value);
                value = inner;
        }

        if (g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN))
                return g_strdup(g_variant_get_boolean(value) ? "yes" : "no");
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_SIGNATURE))
                return g_strdup(g_variant_get_string(value, NULL));
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH_ARRAY)) {
                g_autofree const char **strv = g_variant_get_strv(value, NULL);
                if (!strv[0])
                        return g_strdup("(none)");
                return g_strjoinv(", ", (char **) strv);
        }
        /* Numbers without GVariant's type annotations ("uint64 5"). */
        return g_variant_print(value, FALSE);
}

void ctl_print_json(JsonNode *node) {
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autofree char *data = NULL;

        json_generator_set_pretty(generator, TRUE);
        json_generator_set_indent(generator, 2);
        json_generator_set_root(generator, node);
        data = json_generator_to_data(generator, NULL);
        fputs(data, stdout);
        fputc('\n', stdout);
}

JsonNode *ctl_properties_to_json(GVariant *properties) {
        g_autoptr(JsonBuilder) builder = json_builder_new();
        GVariantIter iter;
        const char *name;
        GVariant *value;

        json_builder_begin_object(builder);
        g_variant_iter_init(&iter, properties);
        while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
                g_autofree char *key = ctl_property_to_key(name);

                json_builder_set_member_name(builder, key);
                json_builder_add_value(builder, json_gvariant_serialize(value));
                g_variant_unref(value);
        }
        json_builder_end_object(builder);
        return json_builder_get_root(builder);
}

/* ---- migration ---- */

char *ctl_format_rate(uint64_t bytes_per_second) {
        g_autofree char *bytes = ctl_format_bytes(bytes_per_second);
        return g_strconcat(bytes, "/s", NULL);
}

char *ctl_format_duration_ms(uint64_t ms) {
        if (ms < 1000)
                return g_strdup_printf("%" G_GUINT64_FORMAT " ms", ms);
        if (ms < 60 * 1000)
                return g_strdup_printf("%.1f s", (double) ms / 1000.0);
        if (ms < 3600 * 1000)
                return g_strdup_printf("%" G_GUINT64_FORMAT "m%02" G_GUINT64_FORMAT "s", ms / 60000,
                                       ms / 1000 % 60);
        return g_strdup_printf("%" G_GUINT64_FORMAT "h%02" G_GUINT64_FORMAT "m", ms / 3600000,
                               ms / 60000 % 60);
}

void ctl_job_state_clear(CtlJobState *s) {
        g_clear_pointer(&s->phase, g_free);
        g_clear_pointer(&s->error, g_free);
        *s = (CtlJobState){ 0 };
}

void ctl_job_state_update(CtlJobState *s, GVariant *properties) {
        static const struct {
                const char *name;
                size_t offset;
        } numbers[] = {
                { "DataTotal", offsetof(CtlJobState, data_total) },
                { "DataProcessed", offsetof(CtlJobState, data_processed) },
                { "DataRemaining", offsetof(CtlJobState, data_remaining) },
                { "Iteration", offsetof(CtlJobState, iteration) },
                { "DirtyRate", offsetof(CtlJobState, dirty_rate) },
                { "ElapsedMs", offsetof(CtlJobState, elapsed_ms) },
                { "ExpectedDowntimeMs", offsetof(CtlJobState, expected_downtime_ms) },
        };
        uint64_t old_elapsed = s->elapsed_ms, old_processed = s->data_processed;
        const char *text;
        double progress;

        if (g_variant_lookup(properties, "Phase", "&s", &text)) {
                g_free(s->phase);
                s->phase = g_strdup(text);
        }
        if (g_variant_lookup(properties, "Error", "&s", &text)) {
                g_free(s->error);
                s->error = g_strdup(text);
        }
        /* The daemon never lowers it; a display must not either, whatever arrives. */
        if (g_variant_lookup(properties, "Progress", "d", &progress) && progress > s->progress &&
            progress <= 1.0)
                s->progress = progress;
        for (size_t i = 0; i < G_N_ELEMENTS(numbers); i++) {
                guint64 v;
                if (g_variant_lookup(properties, numbers[i].name, "t", &v))
                        *(uint64_t *) ((char *) s + numbers[i].offset) = v;
        }

        {
                gboolean b;
                if (g_variant_lookup(properties, "NotConverging", "b", &b))
                        s->not_converging = b;
        }

        /* The Job has no rate property: measure it, smoothed, from successive samples. */
        if (s->elapsed_ms > old_elapsed && s->data_processed > old_processed && old_elapsed > 0) {
                uint64_t rate = (s->data_processed - old_processed) * 1000 / (s->elapsed_ms - old_elapsed);
                s->rate = s->rate ? (s->rate + rate) / 2 : rate;
        }

        if (g_strcmp0(s->phase, "postcopy") == 0) {
                if (!s->postcopy_seen) {
                        s->postcopy_seen = true;
                        s->postcopy_from = s->progress;
                        s->postcopy_remaining_at = s->data_remaining;
                        /* Pre-copy's worry is over once the guest runs on the destination. */
                        s->not_converging = false;
                }
                /* The first post-copy sample may still count pages that were in flight. */
                if (s->data_remaining > s->postcopy_remaining_at)
                        s->postcopy_remaining_at = s->data_remaining;
                /* What the destination has fetched of what was left at the switch moves
                 * the bar, whatever the daemon makes of Progress meanwhile. */
                if (s->postcopy_remaining_at > 0) {
                        double fetched =
                                1.0 - (double) s->data_remaining / (double) s->postcopy_remaining_at;
                        double p = s->postcopy_from + (1.0 - s->postcopy_from) * fetched;
                        if (p > s->progress && p <= 1.0)
                                s->progress = p;
                }
        }
}

void ctl_job_state_update_stats(CtlJobState *s, GVariant *stats) {
        guint64 total, processed = 0, elapsed = 0;

        if (!g_variant_lookup(stats, "disk-total", "t", &total) || total == 0)
                return;
        (void) g_variant_lookup(stats, "disk-processed", "t", &processed);
        (void) g_variant_lookup(stats, "elapsed-ms", "t", &elapsed);
        /* Statistics older than the last ones applied say nothing new. */
        if (elapsed < s->disk_elapsed_ms)
                return;

        /* Like the memory's rate: smoothed over successive samples, none from the first. */
        if (s->disks_seen && s->disk_elapsed_ms > 0 && elapsed > s->disk_elapsed_ms &&
            processed > s->disk_processed) {
                uint64_t rate = (processed - s->disk_processed) * 1000 / (elapsed - s->disk_elapsed_ms);
                s->disk_rate = s->disk_rate ? (s->disk_rate + rate) / 2 : rate;
        }
        s->disks_seen = true;
        s->disk_total = total;
        s->disk_processed = processed;
        s->disk_elapsed_ms = elapsed;
        {
                /* The guest's writes lengthen the mirrors: the fraction may dip, what is shown must not. */
                double p = processed >= total ? 1.0 : (double) processed / (double) total;
                if (p > s->disk_progress)
                        s->disk_progress = p;
        }
}

bool ctl_job_copying_disks(const CtlJobState *s) {
        /* The daemon counts all of the memory as remaining while the disks
         * copy; a pass begun or a byte of memory sent ends the disk stage. */
        return s->disks_seen && !s->postcopy_seen && g_strcmp0(s->phase, "perform") == 0 &&
                s->iteration == 0 && s->data_processed == 0;
}

const char *ctl_job_phase_label(const char *phase) {
        if (!phase)
                return "...";
        /* The one phase whose bus name reads badly; it also stands out in the line. */
        if (g_str_equal(phase, "postcopy"))
                return "post-copy";
        return phase;
}

const char *ctl_job_stage_label(const CtlJobState *s) {
        return ctl_job_copying_disks(s) ? "disks" : ctl_job_phase_label(s->phase);
}

/* The disk stage: the disks' own percent, bytes and rate; the memory's figures
 * would say 0 of all of it, and passes, dirty rate and downtime are not yet. */
static char *disk_progress_text(const CtlJobState *s) {
        g_autofree char *elapsed = ctl_format_duration_ms(s->elapsed_ms);
        g_autofree char *done = ctl_format_bytes(s->disk_processed);
        g_autofree char *total = ctl_format_bytes(s->disk_total);
        GString *out = g_string_new(NULL);

        g_string_append_printf(out, "%-9s %3d%%  %s/%s", ctl_job_stage_label(s),
                               (int) (s->disk_progress * 100.0), done, total);
        if (s->disk_rate > 0) {
                g_autofree char *rate = ctl_format_rate(s->disk_rate);
                g_string_append_printf(out, "  %s", rate);
        }
        g_string_append_printf(out, "  %s", elapsed);
        return g_string_free(out, FALSE);
}

char *ctl_job_progress_text(const CtlJobState *s) {
        if (ctl_job_copying_disks(s))
                return disk_progress_text(s);

        GString *out = g_string_new(NULL);
        g_autofree char *elapsed = ctl_format_duration_ms(s->elapsed_ms);

        bool postcopy = g_strcmp0(s->phase, "postcopy") == 0;

        g_string_append_printf(out, "%-9s %3d%%", ctl_job_phase_label(s->phase),
                               (int) (s->progress * 100.0));
        /* Early in the line, so that a narrow terminal still shows it. */
        if (s->not_converging && g_strcmp0(s->phase, "perform") == 0)
                g_string_append(out, "  not converging");
        if (s->data_total > 0) {
                g_autofree char *done = ctl_format_bytes(s->data_processed);
                g_autofree char *total = ctl_format_bytes(s->data_total);
                g_string_append_printf(out, "  %s/%s", done, total);
        }
        if (s->rate > 0) {
                g_autofree char *rate = ctl_format_rate(s->rate);
                g_string_append_printf(out, "  %s", rate);
        }
        if (postcopy) {
                /* Passes, dirty rate and downtime belong to pre-copy: the guest
                 * already runs on the destination and only what it lacks is left. */
                g_autofree char *left = ctl_format_bytes(s->data_remaining);
                g_string_append_printf(out, "  %s to fetch  %s", left, elapsed);
                return g_string_free(out, FALSE);
        }
        if (s->iteration > 0)
                g_string_append_printf(out, "  pass %" G_GUINT64_FORMAT, s->iteration);
        if (s->dirty_rate > 0) {
                g_autofree char *dirty = ctl_format_rate(s->dirty_rate);
                g_string_append_printf(out, "  dirty %s", dirty);
        }
        if (s->expected_downtime_ms > 0)
                g_string_append_printf(out, "  downtime ~%" G_GUINT64_FORMAT " ms", s->expected_downtime_ms);
        g_string_append_printf(out, "  %s", elapsed);
        return g_string_free(out, FALSE);
}

char *ctl_job_progress_bar(const CtlJobState *s, unsigned width) {
        g_autofree char *text = ctl_job_progress_text(s);
        size_t text_len = strlen(text); /* ASCII only */
        unsigned bar, filled, precopy;
        GString *out;

        /* "[" bar "] " text: the bar takes what is left, 10 to 40 columns, or disappears. */
        if (width < text_len + 14) {
                if (width > 0 && text_len > width)
                        text[width] = '\0';
                return g_steal_pointer(&text);
        }
        bar = MIN(40u, width - (unsigned) text_len - 3);
        filled = (unsigned) (s->progress * bar + 0.5);
        filled = MIN(filled, bar);
        /* Up to the switch '#', then '=': the post-copy part shows as such. */
        precopy = s->postcopy_seen ? MIN((unsigned) (s->postcopy_from * bar + 0.5), filled) : filled;
        out = g_string_new("[");
        for (unsigned i = 0; i < bar; i++)
                g_string_append_c(out, i < precopy ? '#' : i < filled ? '=' : '.');
        g_string_append(out, "] ");
        g_string_append(out, text);
        return g_string_free(out, FALSE);
}

char *ctl_format_job_stats(GVariant *stats) {
        GString *out = g_string_new(NULL);
        const char *text;
        guint64 elapsed = 0, processed = 0, total = 0, disk_total = 0, disk_processed = 0, v;
        double progress;
        /* With copy-storage the data-* keys count the memory alone. */
        bool disks = g_variant_lookup(stats, "disk-total", "t", &disk_total) && disk_total > 0;

#define LINE(label, fmt, ...) g_string_append_printf(out, "%-20s " fmt "\n", label ":", __VA_ARGS__)
        if (g_variant_lookup(stats, "kind", "&s", &text))
                LINE("Kind", "%s", text);
        if (g_variant_lookup(stats, "phase", "&s", &text))
                LINE("Phase", "%s", text);
        if (g_variant_lookup(stats, "peer", "&s", &text))
                LINE("Peer", "%s", text);
        if (g_variant_lookup(stats, "progress", "d", &progress))
                LINE("Progress", "%.1f%%", progress * 100.0);
        if (g_variant_lookup(stats, "elapsed-ms", "t", &elapsed)) {
                g_autofree char *d = ctl_format_duration_ms(elapsed);
                LINE("Total time", "%s", d);
        }
        if (g_variant_lookup(stats, "downtime-ms", "t", &v) && v > 0)
                LINE("Downtime", "%" G_GUINT64_FORMAT " ms", v);
        else if (g_variant_lookup(stats, "expected-downtime-ms", "t", &v) && v > 0)
                LINE("Expected downtime", "%" G_GUINT64_FORMAT " ms", v);
        if (g_variant_lookup(stats, "setup-ms", "t", &v) && v > 0)
                LINE("Setup time", "%" G_GUINT64_FORMAT " ms", v);
        /* The disks went first. */
        if (disks) {
                g_autofree char *t = ctl_format_bytes(disk_total);
                g_autofree char *p = NULL;

                (void) g_variant_lookup(stats, "disk-processed", "t", &disk_processed);
                p = ctl_format_bytes(disk_processed);
                LINE("Disks copied", "%s of %s", p, t);
                if (g_variant_lookup(stats, "disk-remaining", "t", &v) && v > 0) {
                        g_autofree char *r = ctl_format_bytes(v);
                        LINE("Disks remaining", "%s", r);
                }
        }
        (void) g_variant_lookup(stats, "data-total", "t", &total);
        if (g_variant_lookup(stats, "data-processed", "t", &processed)) {
                g_autofree char *p = ctl_format_bytes(processed);
                g_autofree char *t = ctl_format_bytes(total);
                if (disks)
                        LINE("Memory sent", "%s of %s", p, t);
                else
                        LINE("Data sent", "%s of %s", p, t);
        }
        if (g_variant_lookup(stats, "data-remaining", "t", &v) && v > 0) {
                g_autofree char *r = ctl_format_bytes(v);
                if (disks)
                        LINE("Memory remaining", "%s", r);
                else
                        LINE("Data remaining", "%s", r);
        }
        if (g_variant_lookup(stats, "iteration", "t", &v))
                LINE("Memory passes", "%" G_GUINT64_FORMAT, v);
        /* Over the whole job, disks and memory: both took their time in it. */
        if (elapsed > 0 && processed + disk_processed > 0) {
                g_autofree char *r = ctl_format_rate((processed + disk_processed) * 1000 / elapsed);
                LINE("Average rate", "%s", r);
        }
        if (g_variant_lookup(stats, "bandwidth", "t", &v) && v > 0) {
                g_autofree char *r = ctl_format_rate(v);
                LINE("Stream bandwidth", "%s", r);
        }
        if (g_variant_lookup(stats, "dirty-rate", "t", &v) && v > 0) {
                g_autofree char *r = ctl_format_rate(v);
                LINE("Dirty rate", "%s", r);
        }
        {
                gboolean b;
                if (g_variant_lookup(stats, "not-converging", "b", &b) && b)
                        LINE("Not converging", "%s", "yes (pre-copy could not keep up with the guest)");
        }
        if (g_variant_lookup(stats, "postcopy-requests", "t", &v) && v > 0)
                LINE("Post-copy requests", "%" G_GUINT64_FORMAT, v);
        if (g_variant_lookup(stats, "error", "&s", &text) && *text)
                LINE("Error", "%s", text);
#undef LINE
        return g_string_free(out, FALSE);
}

char *ctl_shell_word(const char *word) {
        /* Plain words stay readable; anything else is quoted for a POSIX shell. */
        if (*word &&
            strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:@%+=,-") ==
                    strlen(word) &&
            word[0] != '-')
                return g_strdup(word);
        return g_shell_quote(word);
}

/* ---- migrate --dry-run ---- */

/* Narrowest message column wrapping goes down to: below that, lines overflow instead. */
#define FINDINGS_MIN_MESSAGE_WIDTH 20

char *ctl_sanitize_cell(const char *text) {
        char *s = g_utf8_make_valid(text, -1);

        for (char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return s;
}

size_t ctl_findings_count(GVariant *findings, const char *severity) {
        GVariantIter iter;
        const char *s;
        size_t n = 0;

        g_variant_iter_init(&iter, findings);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &s, NULL, NULL))
                if (g_str_equal(s, severity))
                        n++;
        return n;
}

void ctl_append_wrapped(GString *out, const char *text, size_t indent, size_t avail) {
        g_auto(GStrv) words = g_strsplit(text, " ", -1);
        size_t line = 0;

        for (char **w = words; *w; w++) {
                size_t len = (size_t) g_utf8_strlen(*w, -1);

                if (len == 0)
                        continue; /* runs of blanks: one space is enough when wrapping */
                if (line > 0 && line + 1 + len > avail) {
                        g_string_append_c(out, '\n');
                        g_string_append_printf(out, "%*s", (int) indent, "");
                        line = 0;
                }
                if (line > 0) {
                        g_string_append_c(out, ' ');
                        line++;
                }
                g_string_append(out, *w);
                line += len;
        }
}

char *ctl_format_findings(GVariant *findings, unsigned width, bool errors_only) {
        static const char *const titles[] = { "SEVERITY", "CHECK", "MESSAGE" };
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
        size_t widths[2] = { strlen(titles[0]), strlen(titles[1]) };
        GString *out = g_string_new(NULL);
        GVariantIter iter;
        const char *severity, *check, *message;

        g_variant_iter_init(&iter, findings);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &check, &message)) {
                char *row[3];

                if (errors_only && !g_str_equal(severity, "error"))
                        continue;
                row[0] = ctl_sanitize_cell(severity);
                row[1] = ctl_sanitize_cell(check);
                row[2] = ctl_sanitize_cell(message);
                for (size_t j = 0; j < 2; j++)
                        widths[j] = MAX(widths[j], (size_t) g_utf8_strlen(row[j], -1));
                for (size_t j = 0; j < 3; j++)
                        g_ptr_array_add(cells, row[j]);
        }

        size_t indent = widths[0] + 2 + widths[1] + 2;
        size_t avail =
                width > indent + FINDINGS_MIN_MESSAGE_WIDTH ? width - indent : FINDINGS_MIN_MESSAGE_WIDTH;

        g_string_append_printf(out, "%-*s  %-*s  %s\n", (int) widths[0], titles[0], (int) widths[1],
                               titles[1], titles[2]);
        for (guint i = 0; i < cells->len; i += 3) {
                const char *const *row = (const char *const *) &cells->pdata[i];

                /* Pad by characters, not bytes. */
                for (size_t j = 0; j < 2; j++)
                        g_string_append_printf(out, "%s%*s  ", row[j],
                                               (int) (widths[j] - (size_t) g_utf8_strlen(row[j], -1)), "");
                if (width > 0)
                        ctl_append_wrapped(out, row[2], indent, avail);
                else
                        g_string_append(out, row[2]);
                g_string_append_c(out, '\n');
        }
        return g_string_free(out, FALSE);
}

char *ctl_dry_run_verdict(bool ok, GVariant *findings) {
        size_t errors = ctl_findings_count(findings, "error");
        size_t warnings = ctl_findings_count(findings, "warning");

        if (!ok) {
                /* ok is the daemon's word; a reply that says "no" without an error finding still fails. */
                if (errors == 0)
                        return g_strdup("would fail (the daemon gave no error finding)");
                return g_strdup_printf("would fail: %zu error%s", errors, errors == 1 ? "" : "s");
        }
        if (warnings > 0)
                return g_strdup_printf(
                        "would succeed with %zu warning%s (best-effort: memory, disks, ports and other "
                        "migrations can change before the real migration, which checks again)",
                        warnings, warnings == 1 ? "" : "s");
        return g_strdup("would succeed (best-effort: memory, disks, ports and other migrations can change "
                        "before the real migration, which checks again)");
}

JsonNode *ctl_dry_run_to_json(bool ok, GVariant *findings) {
        g_autoptr(JsonBuilder) builder = json_builder_new();
        GVariantIter iter;
        const char *severity, *check, *message;

        json_builder_begin_object(builder);
        json_builder_set_member_name(builder, "ok");
        json_builder_add_boolean_value(builder, ok);
        json_builder_set_member_name(builder, "findings");
        json_builder_begin_array(builder);
        g_variant_iter_init(&iter, findings);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &check, &message)) {
                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "severity");
                json_builder_add_string_value(builder, severity);
                json_builder_set_member_name(builder, "check");
                json_builder_add_string_value(builder, check);
                json_builder_set_member_name(builder, "message");
                json_builder_add_string_value(builder, message);
                json_builder_end_object(builder);
        }
        json_builder_end_array(builder);
        json_builder_end_object(builder);
        return json_builder_get_root(builder);
}
