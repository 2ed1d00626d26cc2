/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

/* Hostile text as it may appear in an error message: valid UTF-8, control
 * characters replaced by '?', at most 64 characters (then "…"). At most
 * len bytes are read (-1: up to the NUL). Never NULL. */
char *text_quote(const char *s, gssize len);

/* "'a', 'b' or 'c'" */
char *text_join_choices(const char *const *choices);

/* The last n non-empty lines of a program's output, each stripped, control
 * characters replaced by spaces, joined with "; " (for an error message).
 * Never NULL; "" when there is nothing. */
char *text_last_lines(const char *text, unsigned n);

/* Whether s holds a control character (< 0x20 or DEL). */
bool text_has_control(const char *s);
