/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <syslog.h>

#include <glib.h>

/* Levels are syslog's. Messages go to stderr; under the journal
 * (JOURNAL_STREAM set) each line carries a "<N>" priority prefix. */
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s); /* "debug", "info", ... or "0".."7"; -1 if unknown */
const char *log_level_to_string(int level); /* "debug" for LOG_DEBUG...; NULL if out of range */

void log_full(int level, const char *format, ...) G_GNUC_PRINTF(2, 3);

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
