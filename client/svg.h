/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A small writer of self-contained SVG documents into a GString: shapes
 * with a class (the document's own <style> says how each class looks), and
 * text escaped for XML. No external fonts, images or scripts: what it
 * writes renders the same anywhere. Numbers are written in the C locale
 * with at most two decimals, whatever the user's locale.
 */

#include <stddef.h>

#include <glib.h>

/* Appends text escaped for XML content and attribute values: & < > " ' as
 * entities, control characters (not allowed in XML 1.0, even escaped) and
 * invalid UTF-8 as spaces / U+FFFD. */
void svg_append_escaped(GString *out, const char *text);

/* Appends a number: "12", "12.5", "-0.25". */
void svg_append_number(GString *out, double value);

/* <?xml?>, <svg> of width x height user units (pixels), its <title> and a
 * <style> element holding css (trusted: the caller's constant). */
void svg_begin(GString *out, unsigned width, unsigned height, const char *title, const char *css);
void svg_end(GString *out);

/* <g id=ID class=CLS>; either may be NULL. */
void svg_group_begin(GString *out, const char *id, const char *cls);
void svg_group_end(GString *out);

void svg_line(GString *out, double x1, double y1, double x2, double y2, const char *cls);
void svg_rect(GString *out, double x, double y, double width, double height, const char *cls);
/* n points, xy holding x0 y0 x1 y1 ...; nothing for n < 2. */
void svg_polyline(GString *out, const double *xy, size_t n, const char *cls);
/* With tooltip: a <title> child, which viewers show on hovering. */
void svg_circle(GString *out, double cx, double cy, double r, const char *cls, const char *tooltip);
/* anchor: "start", "middle" or "end"; rotate: degrees about (x, y), 0: none. */
void svg_text(GString *out, double x, double y, double rotate, const char *anchor, const char *cls,
              const char *text);
