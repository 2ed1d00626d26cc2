/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "svg.h"

#include <math.h>
#include <string.h>

void svg_append_escaped(GString *out, const char *text) {
        g_autofree char *valid = g_utf8_make_valid(text ? text : "", -1);

        for (const char *p = valid; *p; p++)
                switch (*p) {
                case '&':
                        g_string_append(out, "&amp;");
                        break;
                case '<':
                        g_string_append(out, "&lt;");
                        break;
                case '>':
                        g_string_append(out, "&gt;");
                        break;
                case '"':
                        g_string_append(out, "&quot;");
                        break;
                case '\'':
                        g_string_append(out, "&apos;");
                        break;
                default:
                        /* XML 1.0 has no place for them, not even as &#1;. */
                        g_string_append_c(out, (unsigned char) *p < 0x20 || *p == 0x7f ? ' ' : *p);
                }
}

void svg_append_number(GString *out, double value) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        size_t len;

        if (!isfinite(value))
                value = 0;
        /* g_ascii_formatd: a dot whatever LC_NUMERIC says. */
        g_ascii_formatd(buf, sizeof(buf), "%.2f", value);
        len = strlen(buf);
        while (len > 0 && buf[len - 1] == '0')
                buf[--len] = '\0';
        if (len > 0 && buf[len - 1] == '.')
                buf[--len] = '\0';
        g_string_append(out, g_str_equal(buf, "-0") ? "0" : buf);
}

static void attr(GString *out, const char *name, const char *value) {
        if (!value)
                return;
        g_string_append_printf(out, " %s=\"", name);
        svg_append_escaped(out, value);
        g_string_append_c(out, '"');
}

static void attr_number(GString *out, const char *name, double value) {
        g_string_append_printf(out, " %s=\"", name);
        svg_append_number(out, value);
        g_string_append_c(out, '"');
}

void svg_begin(GString *out, unsigned width, unsigned height, const char *title, const char *css) {
        g_string_append(out,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"");
        g_string_append_printf(out, " width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\">\n", width, height,
                               width, height);
        g_string_append(out, "<title>");
        svg_append_escaped(out, title);
        g_string_append(out, "</title>\n");
        if (css)
                g_string_append_printf(out, "<style>\n%s</style>\n", css);
}

void svg_end(GString *out) {
        g_string_append(out, "</svg>\n");
}

void svg_group_begin(GString *out, const char *id, const char *cls) {
        g_string_append(out, "<g");
        attr(out, "id", id);
        attr(out, "class", cls);
        g_string_append(out, ">\n");
}

void svg_group_end(GString *out) {
        g_string_append(out, "</g>\n");
}

void svg_line(GString *out, double x1, double y1, double x2, double y2, const char *cls) {
        g_string_append(out, "<line");
        attr_number(out, "x1", x1);
        attr_number(out, "y1", y1);
        attr_number(out, "x2", x2);
        attr_number(out, "y2", y2);
        attr(out, "class", cls);
        g_string_append(out, "/>\n");
}

void svg_rect(GString *out, double x, double y, double width, double height, const char *cls) {
        g_string_append(out, "<rect");
        attr_number(out, "x", x);
        attr_number(out, "y", y);
        attr_number(out, "width", MAX(width, 0));
        attr_number(out, "height", MAX(height, 0));
        attr(out, "class", cls);
        g_string_append(out, "/>\n");
}

void svg_polyline(GString *out, const double *xy, size_t n, const char *cls) {
        if (n < 2)
                return;
        g_string_append(out, "<polyline points=\"");
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        g_string_append_c(out, ' ');
                svg_append_number(out, xy[2 * i]);
                g_string_append_c(out, ',');
                svg_append_number(out, xy[2 * i + 1]);
        }
        g_string_append_c(out, '"');
        attr(out, "class", cls);
        g_string_append(out, "/>\n");
}

void svg_circle(GString *out, double cx, double cy, double r, const char *cls, const char *tooltip) {
        g_string_append(out, "<circle");
        attr_number(out, "cx", cx);
        attr_number(out, "cy", cy);
        attr_number(out, "r", r);
        attr(out, "class", cls);
        if (!tooltip) {
                g_string_append(out, "/>\n");
                return;
        }
        g_string_append(out, "><title>");
        svg_append_escaped(out, tooltip);
        g_string_append(out, "</title></circle>\n");
}

void svg_text(GString *out, double x, double y, double rotate, const char *anchor, const char *cls,
              const char *text) {
        g_string_append(out, "<text");
        attr_number(out, "x", x);
        attr_number(out, "y", y);
        if (rotate != 0) {
                g_string_append(out, " transform=\"rotate(");
                svg_append_number(out, rotate);
                g_string_append_c(out, ' ');
                svg_append_number(out, x);
                g_string_append_c(out, ' ');
                svg_append_number(out, y);
                g_string_append(out, ")\"");
        }
        attr(out, "text-anchor", anchor);
        attr(out, "class", cls);
        g_string_append_c(out, '>');
        svg_append_escaped(out, text);
        g_string_append(out, "</text>\n");
}
