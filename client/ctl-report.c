/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The picture of a migration (vmigratectl report), drawn by hand from
 * Domain.GetJobStats: no bus here, so the unit test draws it too.
 *
 * What a reader must get without a legend: each curve is labelled where it
 * runs and drawn in the colour of its axis title; each marker of a pass
 * carries its number; each vertical line says what happened there.
 */
#include "ctl-report.h"
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MIB 1048576.0
#define PLOT_LEFT 90.0
#define PLOT_RIGHT 860.0
#define PLOT_TOP 86.0
#define PLOT_BOTTOM 470.0
/* Approximate advance of a character of 12px sans-serif, for placing
 * labels; of 11px (vertical labels); of the 17px bold title, how many fit. */
#define LABEL_CHAR_WIDTH 6.8
#define EVENT_CHAR_WIDTH 6.4
#define LABEL_HEIGHT 14.0
#define TITLE_CHARS 84

static const char report_css[] =
        "text { font-family: sans-serif; font-size: 12px; fill: #333; }\n"
        ".background { fill: #fff; }\n"
        ".title { font-size: 17px; font-weight: bold; fill: #111; }\n"
        ".subtitle { font-size: 13px; fill: #444; }\n"
        ".error-text { font-size: 13px; fill: #b00; }\n"
        ".axis, .tick { stroke: #444; stroke-width: 1; }\n"
        ".grid { stroke: #e6e6e6; stroke-width: 1; }\n"
        ".axis-title { font-size: 13px; font-weight: bold; }\n"
        ".remaining { fill: none; stroke: #1f5fa8; stroke-width: 2.5; stroke-linejoin: round; }\n"
        ".dirty-rate { fill: none; stroke: #c8431b; stroke-width: 2; stroke-linejoin: round; }\n"
        ".link { fill: none; stroke: #4f7a12; stroke-width: 1.5; stroke-dasharray: 6 4; }\n"
        ".remaining-text { fill: #1f5fa8; }\n"
        ".dirty-rate-text { fill: #c8431b; }\n"
        ".link-text { fill: #4f7a12; }\n"
        ".pass-marker { fill: #fff; stroke: #1f5fa8; stroke-width: 2; }\n"
        ".pass-label { font-size: 10px; fill: #1f5fa8; }\n"
        ".policy { stroke: #7b4a91; stroke-width: 1.2; stroke-dasharray: 3 3; }\n"
        ".policy-text { font-size: 11px; fill: #7b4a91; }\n"
        ".postcopy { stroke: #b07800; stroke-width: 2; }\n"
        ".postcopy-text { fill: #8a5e00; font-weight: bold; }\n"
        ".switchover { stroke: #111; stroke-width: 1.5; }\n"
        ".downtime { fill: #111; fill-opacity: 0.25; }\n"
        ".switchover-text { fill: #111; font-weight: bold; }\n"
        ".end { stroke: #777; stroke-width: 1; stroke-dasharray: 1 3; }\n"
        ".end-text { font-size: 11px; fill: #666; }\n";

typedef struct Sample {
        double t; /* seconds */
        const char *event, *detail;
        uint64_t pass;
        double remaining, dirty_rate, link; /* MiB, MiB/s */
        uint64_t expected_downtime_ms;
} Sample;

typedef struct Box {
        double x0, y0, x1, y1;
} Box;

typedef struct Report {
        GString *out;
        GArray *samples; /* Sample, borrowing strings from the history */
        double t_top, remaining_top, rate_top;
        GArray *boxes; /* Box: the labels placed so far */
} Report;

/* An axis from 0 to a round number at or above max, in the finest steps of
 * 1, 2 or 5 times a power of ten that make at most ten of them. */
static void nice_axis(double max, double *ret_step, double *ret_top) {
        static const double factors[] = { 1, 2, 5, 10, 20, 50 };
        double mag, step = 1;

        if (!(max > 0))
                max = 1;
        mag = pow(10, floor(log10(max / 10)));
        for (size_t f = 0; f < G_N_ELEMENTS(factors); f++) {
                step = factors[f] * mag;
                if (max / step <= 10 + 1e-9)
                        break;
        }
        *ret_step = step;
        *ret_top = MAX(ceil(max / step - 1e-9) * step, step);
}

static char *tick_label(double value, double step) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];

        g_ascii_formatd(buf, sizeof(buf), step >= 1 ? "%.0f" : step >= 0.1 ? "%.1f" : "%.2f", value);
        return g_strdup(buf);
}

static double x_of(const Report *r, double t) {
        return PLOT_LEFT + t / r->t_top * (PLOT_RIGHT - PLOT_LEFT);
}

static double y_of(double value, double top) {
        return PLOT_BOTTOM - value / top * (PLOT_BOTTOM - PLOT_TOP);
}

/* "unix:///run/…/system_bus_socket": the start and the end of a long text. */
static char *ellipsize(const char *text, glong max_chars) {
        glong n = g_utf8_strlen(text, -1);
        const char *head_end, *tail;

        if (n <= max_chars)
                return g_strdup(text);
        head_end = g_utf8_offset_to_pointer(text, (max_chars - 1) / 2);
        tail = g_utf8_offset_to_pointer(text, n - (max_chars - 1 - (max_chars - 1) / 2));
        return g_strdup_printf("%.*s…%s", (int) (head_end - text), text, tail);
}

static bool box_overlaps(const Report *r, const Box *b) {
        for (guint i = 0; i < r->boxes->len; i++) {
                const Box *o = &g_array_index(r->boxes, Box, i);
                if (b->x0 < o->x1 && o->x0 < b->x1 && b->y0 < o->y1 && o->y0 < b->y1)
                        return true;
        }
        return false;
}

static Box text_box(double x, double y, const char *anchor, const char *text) {
        double w = LABEL_CHAR_WIDTH * (double) g_utf8_strlen(text, -1);
        double x0 = g_str_equal(anchor, "end") ? x - w : g_str_equal(anchor, "middle") ? x - w / 2 : x;
        return (Box){ x0, y - LABEL_HEIGHT + 3, x0 + w, y + 3 };
}

static void add_box(Report *r, double x0, double y0, double x1, double y1) {
        Box b = { MIN(x0, x1), MIN(y0, y1), MAX(x0, x1), MAX(y0, y1) };
        g_array_append_val(r->boxes, b);
}

/* Whether a label's box is clear of everything drawn so far (labels,
 * lines, markers) and inside the plot. */
static bool box_is_free(const Report *r, const Box *b) {
        return b->x0 >= PLOT_LEFT + 2 && b->x1 <= PLOT_RIGHT - 2 && b->y0 >= PLOT_TOP &&
                b->y1 <= PLOT_BOTTOM && !box_overlaps(r, b);
}

static int read_samples(Report *r, GVariant *history, char **ret_error) {
        GVariantIter iter;
        GVariant *s;

        g_variant_iter_init(&iter, history);
        while ((s = g_variant_iter_next_value(&iter))) {
                g_autoptr(GVariant) sample = s;
                Sample x = { .event = "", .detail = "" };
                guint64 t_ms = 0, remaining = 0, dirty = 0, link = 0;

                if (!g_variant_lookup(sample, "t-ms", "t", &t_ms) ||
                    !g_variant_lookup(sample, "event", "&s", &x.event)) {
                        *ret_error = g_strdup("vmigrated sent a history sample without 't-ms' or 'event'");
                        return -EPROTO;
                }
                (void) g_variant_lookup(sample, "detail", "&s", &x.detail);
                (void) g_variant_lookup(sample, "pass", "t", &x.pass);
                (void) g_variant_lookup(sample, "data-remaining", "t", &remaining);
                (void) g_variant_lookup(sample, "dirty-rate", "t", &dirty);
                (void) g_variant_lookup(sample, "bandwidth", "t", &link);
                (void) g_variant_lookup(sample, "expected-downtime-ms", "t", &x.expected_downtime_ms);
                x.t = (double) t_ms / 1000.0;
                x.remaining = (double) remaining / MIB;
                x.dirty_rate = (double) dirty / MIB;
                x.link = (double) link / MIB;
                g_array_append_val(r->samples, x);
        }
        return 0;
}

static size_t count_event(const Report *r, const char *event) {
        size_t n = 0;
        for (guint i = 0; i < r->samples->len; i++)
                n += g_str_equal(g_array_index(r->samples, Sample, i).event, event);
        return n;
}

static double sample_remaining(const Sample *s) {
        return s->remaining;
}

static double sample_dirty_rate(const Sample *s) {
        return s->dirty_rate;
}

static double sample_link(const Sample *s) {
        return s->link;
}

/* A curve over the samples [from, to), but the policy's: those are taken
 * in the middle of a pass, and the policy has lines of its own. */
typedef struct Curve {
        const char *id, *cls, *label_cls, *label;
        double (*value)(const Sample *);
        bool right_axis;
        /* A rate the backend measures: 0 before its first measure means
         * "not known yet", not "none". */
        bool measured;
        /* The events after which it means nothing any more, and whether
         * it already means nothing at their moment. */
        const char *const *ends_at;
        bool ends_before;
        guint from, to;
} Curve;

static bool curve_has(const Curve *c, const Sample *s) {
        return !g_str_equal(s->event, "policy");
}

static void curve_range(const Report *r, Curve *c) {
        c->from = 0;
        c->to = r->samples->len;
        for (guint i = 0; c->ends_at && i < r->samples->len; i++) {
                const Sample *s = &g_array_index(r->samples, Sample, i);
                if (!g_strv_contains(c->ends_at, s->event))
                        continue;
                c->to = i + 1;
                /* And the reports of that same moment (QEMU's last one
                 * says 0 for the dirty rate). */
                while (c->ends_before && c->to > 0 && g_array_index(r->samples, Sample, c->to - 1).t >= s->t)
                        c->to--;
                break;
        }
        if (!c->measured)
                return;
        for (guint i = c->from; i < c->to; i++)
                if (c->value(&g_array_index(r->samples, Sample, i)) > 0) {
                        c->from = i;
                        break;
                }
}

static double curve_y(const Report *r, const Curve *c, const Sample *s) {
        return y_of(c->value(s), c->right_axis ? r->rate_top : r->remaining_top);
}

static void draw_title(Report *r, GVariant *stats, const char *domain) {
        const char *peer = "?", *phase = "?", *policy = NULL, *error = NULL;
        guint64 elapsed = 0, downtime = 0, processed = 0, last_pass = 0;
        g_autofree char *name = ellipsize(domain, 32), *peer_short = NULL, *total = NULL, *sent = NULL,
                        *head = NULL, *title = NULL;
        g_autoptr(GString) sub = g_string_new(NULL);
        size_t drawn = count_event(r, "pass");
        glong room;
        bool running;

        (void) g_variant_lookup(stats, "peer", "&s", &peer);
        (void) g_variant_lookup(stats, "phase", "&s", &phase);
        (void) g_variant_lookup(stats, "policy", "&s", &policy);
        (void) g_variant_lookup(stats, "error", "&s", &error);
        (void) g_variant_lookup(stats, "elapsed-ms", "t", &elapsed);
        (void) g_variant_lookup(stats, "downtime-ms", "t", &downtime);
        (void) g_variant_lookup(stats, "data-processed", "t", &processed);
        for (guint i = 0; i < r->samples->len; i++)
                last_pass = MAX(last_pass, g_array_index(r->samples, Sample, i).pass);
        running = !g_str_equal(phase, "completed") && !g_str_equal(phase, "failed") &&
                !g_str_equal(phase, "cancelled");

        total = ctl_format_duration_ms(elapsed);
        head = running ? g_strdup_printf(": running (%s), %s so far", phase, total)
                       : g_strdup_printf(": %s in %s", phase, total);
        /* The destination gets what is left of one line of the heading. */
        room = TITLE_CHARS - g_utf8_strlen(name, -1) - g_utf8_strlen(head, -1) -
                (glong) strlen("Migration of '' to ");
        peer_short = ellipsize(peer, MAX(room, 16));
        title = g_strdup_printf("Migration of '%s' to %s%s", name, peer_short, head);
        svg_text(r->out, PLOT_LEFT, 30, 0, "start", "title", title);

        sent = ctl_format_bytes(processed);
        if (drawn == last_pass)
                g_string_append_printf(sub, "%zu pass%s", drawn, drawn == 1 ? "" : "es");
        else /* passes shorter than a report, or a long run thinned out */
                g_string_append_printf(sub, "%" G_GUINT64_FORMAT " passes, %zu sampled", last_pass, drawn);
        g_string_append_printf(sub, ", %s sent", sent);
        if (downtime > 0)
                g_string_append_printf(sub, ", downtime %" G_GUINT64_FORMAT " ms", downtime);
        if (policy)
                g_string_append_printf(sub, ", policy '%s'", policy);
        svg_text(r->out, PLOT_LEFT, 52, 0, "start", "subtitle", sub->str);
        if (error && *error) {
                g_autofree char *e = ellipsize(error, 120);
                g_autofree char *line = g_strdup_printf("error: %s", e);
                svg_text(r->out, PLOT_LEFT, 72, 0, "start", "error-text", line);
        }
}

static void draw_axes(Report *r, const Curve *curves, size_t n_curves) {
        double t_step, rem_step, rate_step, t_max = 0, rem_max = 0, rate_max = 0;

        for (guint i = 0; i < r->samples->len; i++)
                t_max = MAX(t_max, g_array_index(r->samples, Sample, i).t);
        for (size_t c = 0; c < n_curves; c++)
                for (guint i = curves[c].from; i < curves[c].to; i++) {
                        double v = curves[c].value(&g_array_index(r->samples, Sample, i));
                        /* (a policy sample's figures are those of the report before) */
                        if (curves[c].right_axis)
                                rate_max = MAX(rate_max, v);
                        else
                                rem_max = MAX(rem_max, v);
                }
        nice_axis(t_max, &t_step, &r->t_top);
        nice_axis(rem_max, &rem_step, &r->remaining_top);
        nice_axis(rate_max, &rate_step, &r->rate_top);

        svg_rect(r->out, 0, 0, CTL_REPORT_WIDTH, CTL_REPORT_HEIGHT, "background");

        svg_group_begin(r->out, "axis-time", "axis-group");
        for (double v = 0; v <= r->t_top + t_step / 2; v += t_step) {
                g_autofree char *label = tick_label(v, t_step);
                double x = x_of(r, v);
                svg_line(r->out, x, PLOT_BOTTOM, x, PLOT_BOTTOM + 5, "tick");
                svg_text(r->out, x, PLOT_BOTTOM + 19, 0, "middle", "tick-label", label);
        }
        svg_line(r->out, PLOT_LEFT, PLOT_BOTTOM, PLOT_RIGHT, PLOT_BOTTOM, "axis");
        svg_text(r->out, (PLOT_LEFT + PLOT_RIGHT) / 2, PLOT_BOTTOM + 42, 0, "middle", "axis-title",
                 "time since the migration started (s)");
        svg_group_end(r->out);

        svg_group_begin(r->out, "axis-remaining", "axis-group");
        for (double v = 0; v <= r->remaining_top + rem_step / 2; v += rem_step) {
                g_autofree char *label = tick_label(v, rem_step);
                double y = y_of(v, r->remaining_top);
                if (v > 0)
                        svg_line(r->out, PLOT_LEFT, y, PLOT_RIGHT, y, "grid");
                svg_line(r->out, PLOT_LEFT - 5, y, PLOT_LEFT, y, "tick");
                svg_text(r->out, PLOT_LEFT - 8, y + 4, 0, "end", "tick-label remaining-text", label);
        }
        svg_line(r->out, PLOT_LEFT, PLOT_TOP, PLOT_LEFT, PLOT_BOTTOM, "axis");
        svg_text(r->out, 30, (PLOT_TOP + PLOT_BOTTOM) / 2, -90, "middle", "axis-title remaining-text",
                 "remaining to send (MiB)");
        svg_group_end(r->out);

        svg_group_begin(r->out, "axis-rate", "axis-group");
        for (double v = 0; v <= r->rate_top + rate_step / 2; v += rate_step) {
                g_autofree char *label = tick_label(v, rate_step);
                double y = y_of(v, r->rate_top);
                svg_line(r->out, PLOT_RIGHT, y, PLOT_RIGHT + 5, y, "tick");
                svg_text(r->out, PLOT_RIGHT + 8, y + 4, 0, "start", "tick-label dirty-rate-text", label);
        }
        svg_line(r->out, PLOT_RIGHT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM, "axis");
        svg_text(r->out, CTL_REPORT_WIDTH - 30, (PLOT_TOP + PLOT_BOTTOM) / 2, 90, "middle",
                 "axis-title dirty-rate-text", "dirty rate and link (MiB/s)");
        svg_group_end(r->out);
}

/* Vertical label positions already used: at the top or the bottom of the plot. */
typedef struct EventLabels {
        double top_x, bottom_x;
} EventLabels;

/* A vertical line at t with its label written along it, at the top of the
 * plot, or at the bottom when another label is too close at the top. */
static void draw_event_line(Report *r, EventLabels *used, double t, const char *line_cls,
                            const char *text_cls, const char *text) {
        double x = x_of(r, t), len;
        g_autofree char *label = ellipsize(text, 52);

        len = EVENT_CHAR_WIDTH * (double) g_utf8_strlen(label, -1);
        svg_line(r->out, x, PLOT_TOP, x, PLOT_BOTTOM, line_cls);
        add_box(r, x - 1, PLOT_TOP, x + 1, PLOT_BOTTOM);
        /* Rotated a quarter turn back, the glyphs stand left of their baseline. */
        if (x - used->top_x >= 15) {
                svg_text(r->out, x + 13, PLOT_TOP + 4, -90, "end", text_cls, label);
                add_box(r, x + 2, PLOT_TOP, x + 14, PLOT_TOP + 4 + len);
                used->top_x = x;
        } else if (x - used->bottom_x >= 15) {
                svg_text(r->out, x + 13, PLOT_BOTTOM - 4, -90, "start", text_cls, label);
                add_box(r, x + 2, PLOT_BOTTOM - 4 - len, x + 14, PLOT_BOTTOM);
                used->bottom_x = x;
        } else {
                svg_text(r->out, x + 27, PLOT_TOP + 4, -90, "end", text_cls, label);
                add_box(r, x + 16, PLOT_TOP, x + 28, PLOT_TOP + 4 + len);
                used->top_x = x + 14;
        }
}

static void draw_events(Report *r, GVariant *stats) {
        EventLabels used = { -1000, -1000 };
        guint64 downtime = 0;

        (void) g_variant_lookup(stats, "downtime-ms", "t", &downtime);
        svg_group_begin(r->out, "events", NULL);
        for (guint i = 0; i < r->samples->len; i++) {
                const Sample *s = &g_array_index(r->samples, Sample, i);
                g_autofree char *text = NULL;

                if (g_str_equal(s->event, "policy")) {
                        /* "step 2: downtime 600 ms", or the policy's final action alone. */
                        text = g_str_has_prefix(s->detail, "step ")
                                ? g_strdup(s->detail)
                                : g_strdup_printf("policy: %s", s->detail);
                        draw_event_line(r, &used, s->t, "policy", "policy-text", text);
                } else if (g_str_equal(s->event, "postcopy")) {
                        /* From here the guest runs on the destination. */
                        text = downtime > 0
                                ? g_strdup_printf("switch to post-copy, downtime %" G_GUINT64_FORMAT " ms",
                                                  downtime)
                                : g_strdup("switch to post-copy");
                        draw_event_line(r, &used, s->t, "postcopy", "postcopy-text", text);
                } else if (g_str_equal(s->event, "switchover")) {
                        /* The guest was paused for the downtime up to here. */
                        double x = x_of(r, s->t), x0 = x_of(r, MAX(s->t - (double) downtime / 1000.0, 0));
                        double w = MAX(x - x0, 3);
                        svg_rect(r->out, x - w, PLOT_TOP, w, PLOT_BOTTOM - PLOT_TOP, "downtime");
                        add_box(r, x - w, PLOT_TOP, x, PLOT_BOTTOM);
                        text = g_strdup_printf("switch-over, downtime %" G_GUINT64_FORMAT " ms", downtime);
                        draw_event_line(r, &used, s->t, "switchover", "switchover-text", text);
                } else if (g_str_equal(s->event, "end")) {
                        text = g_strdup_printf("end: %s", s->detail);
                        draw_event_line(r, &used, s->t, "end", "end-text", text);
                }
        }
        svg_group_end(r->out);
}

static void draw_curve(Report *r, const Curve *c) {
        g_autofree double *xy = g_new(double, 2 * (size_t) MAX(r->samples->len, 1));
        guint n = 0;

        for (guint i = c->from; i < c->to; i++) {
                const Sample *s = &g_array_index(r->samples, Sample, i);
                if (!curve_has(c, s))
                        continue;
                xy[2 * n] = x_of(r, s->t);
                xy[2 * n + 1] = curve_y(r, c, s);
                n++;
        }
        svg_group_begin(r->out, c->id, NULL);
        svg_polyline(r->out, xy, n, c->cls);
        svg_group_end(r->out);
        /* Labels keep off it: a dot every few pixels along it. */
        for (guint i = 0; i + 1 < n; i++) {
                double dx = xy[2 * i + 2] - xy[2 * i], dy = xy[2 * i + 3] - xy[2 * i + 1];
                unsigned steps = (unsigned) (sqrt(dx * dx + dy * dy) / 4) + 1;
                for (unsigned k = 0; k <= steps; k++) {
                        double x = xy[2 * i] + dx * k / steps, y = xy[2 * i + 1] + dy * k / steps;
                        add_box(r, x - 2, y - 2, x + 2, y + 2);
                }
        }
}

static void draw_passes(Report *r) {
        double last_label_x = -1000;
        guint last_pass = 0;

        for (guint i = 0; i < r->samples->len; i++)
                if (g_str_equal(g_array_index(r->samples, Sample, i).event, "pass"))
                        last_pass = i;
        svg_group_begin(r->out, "passes", NULL);
        for (guint i = 0; i < r->samples->len; i++) {
                const Sample *s = &g_array_index(r->samples, Sample, i);
                double x = x_of(r, s->t), y = y_of(s->remaining, r->remaining_top);
                g_autofree char *tooltip = NULL, *number = NULL;
                Box b;

                if (!g_str_equal(s->event, "pass"))
                        continue;
                tooltip = g_strdup_printf(
                        "pass %" G_GUINT64_FORMAT " at %.1f s: %.1f MiB to send, the guest "
                        "dirties %.1f MiB/s, the link carries %.1f MiB/s, expected "
                        "downtime %" G_GUINT64_FORMAT " ms",
                        s->pass, s->t, s->remaining, s->dirty_rate, s->link, s->expected_downtime_ms);
                svg_circle(r->out, x, y, 4, "pass-marker", tooltip);
                add_box(r, x - 5, y - 5, x + 5, y + 5);
                /* Numbers of passes close together would overprint: fewer
                 * of them then, and always the last. */
                if (x - last_label_x < 16 && i != last_pass)
                        continue;
                number = g_strdup_printf("%" G_GUINT64_FORMAT, s->pass);
                svg_text(r->out, x, y - 8, 0, "middle", "pass-label", number);
                b = text_box(x, y - 8, "middle", number);
                g_array_append_val(r->boxes, b);
                last_label_x = x;
        }
        svg_group_end(r->out);
}

/*
 * A curve's name next to it, in its colour, where it is clear of every
 * other line and label: below or above one of its points or the middle of
 * one of its segments (below first: the passes' numbers are above their
 * markers), the highest first. Failing that, where it is highest.
 */
static void draw_curve_label(Report *r, const Curve *c) {
        static const struct {
                double dx, dy;
                const char *anchor;
        } offsets[] = {
                { 12, 20, "start" }, { 12, -8, "start" }, { -12, 20, "end" },
                { -12, -8, "end" },  { 0, 24, "middle" }, { 0, -12, "middle" },
        };
        g_autoptr(GArray) spots = g_array_new(false, false, sizeof(double) * 2);
        double best[2] = { 0, INFINITY };

        const Sample *prev = NULL;

        for (guint i = c->from; i < c->to; i++) {
                const Sample *s = &g_array_index(r->samples, Sample, i);
                double p[2] = { x_of(r, s->t), curve_y(r, c, s) };
                if (!curve_has(c, s))
                        continue;
                if (prev) {
                        double m[2] = { (p[0] + x_of(r, prev->t)) / 2, (p[1] + curve_y(r, c, prev)) / 2 };
                        g_array_append_val(spots, m);
                }
                g_array_append_val(spots, p);
                prev = s;
        }
        if (spots->len == 0)
                return;
        for (guint pass = 0; pass < 2; pass++) {
                /* The highest spot first: where a curve peaks is what one looks at. */
                for (guint k = 0; k < spots->len; k++) {
                        const double *p = &g_array_index(spots, double, 2 * k);
                        if (p[1] < best[1])
                                best[0] = p[0], best[1] = p[1];
                }
                for (guint k = 0; k < spots->len; k++) {
                        const double *p = &g_array_index(spots, double, 2 * k);
                        /* First the spots as high as the highest, then all. */
                        if (pass == 0 && p[1] > best[1] + 1)
                                continue;
                        for (size_t o = 0; o < G_N_ELEMENTS(offsets); o++) {
                                double x = p[0] + offsets[o].dx, y = p[1] + offsets[o].dy;
                                Box b = text_box(x, y, offsets[o].anchor, c->label);
                                if (box_is_free(r, &b)) {
                                        g_array_append_val(r->boxes, b);
                                        svg_text(r->out, x, y, 0, offsets[o].anchor, c->label_cls, c->label);
                                        return;
                                }
                        }
                }
        }
        svg_text(r->out, best[0] + 8, best[1] - 8, 0, "start", c->label_cls, c->label);
}

int ctl_report_svg(GVariant *stats, const char *domain, char **ret_svg, char **ret_error) {
        g_autoptr(GVariant) history = NULL;
        g_autoptr(GArray) samples = g_array_new(false, false, sizeof(Sample));
        g_autoptr(GArray) boxes = g_array_new(false, false, sizeof(Box));
        g_autoptr(GString) out = g_string_new(NULL);
        g_autofree char *doc_title = NULL;
        Report r = { .out = out, .samples = samples, .boxes = boxes };
        /* The guest's dirty rate means nothing once it runs on the
         * destination; the link carries nothing after pre-copy's
         * switch-over, but post-copy's pages still. Drawn in this order:
         * the remaining data on top. */
        static const char *const switch_events[] = { "postcopy", "switchover", NULL };
        static const char *const switchover_event[] = { "switchover", NULL };
        Curve curves[] = {
                { "curve-link", "link", "link-text", "link throughput", sample_link, true, true,
                  switchover_event, false },
                { "curve-dirty-rate", "dirty-rate", "dirty-rate-text", "dirty rate of the guest",
                  sample_dirty_rate, true, true, switch_events, true },
                { "curve-remaining", "remaining", "remaining-text", "remaining to send", sample_remaining,
                  false, false, NULL, false },
        };
        const char *kind = "?", *peer = "?", *error = NULL;
        int ret;

        (void) g_variant_lookup(stats, "kind", "&s", &kind);
        (void) g_variant_lookup(stats, "peer", "&s", &peer);
        (void) g_variant_lookup(stats, "error", "&s", &error);
        if (g_str_equal(kind, "migration-in")) {
                *ret_error = g_strdup_printf("the last job of domain '%s' here was its arrival from %s: the "
                                             "passes are the source's, draw them there",
                                             domain, peer);
                return -ENODATA;
        }
        history = g_variant_lookup_value(stats, "history", G_VARIANT_TYPE("aa{sv}"));
        if (!history && g_variant_lookup(stats, "ended-at", "t", NULL)) {
                /* A record of the job history (Manager.ListJobHistory). */
                *ret_error = g_strdup_printf("the last migration of domain '%s' ended before vmigrated last "
                                             "started: its passes were not kept (the job history keeps the "
                                             "final statistics: vmigratectl history)",
                                             domain);
                return -ENODATA;
        }
        if (!history) {
                *ret_error = g_strdup("this vmigrated keeps no history of a migration's passes (it is older "
                                      "than vmigratectl)");
                return -EPROTO;
        }
        ret = read_samples(&r, history, ret_error);
        if (ret < 0)
                return ret;
        if (count_event(&r, "pass") == 0) {
                *ret_error = g_strdup_printf("the last migration of domain '%s' ended before it sent any "
                                             "memory%s%s: there is nothing to draw",
                                             domain, error ? ": " : "", error ? error : "");
                return -ENODATA;
        }
        for (size_t c = 0; c < G_N_ELEMENTS(curves); c++)
                curve_range(&r, &curves[c]);

        doc_title = g_strdup_printf("Migration of '%s' to %s", domain, peer);
        svg_begin(out, CTL_REPORT_WIDTH, CTL_REPORT_HEIGHT, doc_title, report_css);
        draw_axes(&r, curves, G_N_ELEMENTS(curves));
        draw_title(&r, stats, domain);
        draw_events(&r, stats);
        for (size_t c = 0; c < G_N_ELEMENTS(curves); c++)
                draw_curve(&r, &curves[c]);
        draw_passes(&r);
        /* The remaining data's name first: it is the main curve. */
        svg_group_begin(out, "curve-labels", NULL);
        for (size_t c = G_N_ELEMENTS(curves); c-- > 0;)
                draw_curve_label(&r, &curves[c]);
        svg_group_end(out);
        svg_end(out);
        *ret_svg = g_string_free(g_steal_pointer(&out), false);
        return 0;
}
