/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = CLAMP(level, LOG_EMERG, LOG_DEBUG);
}

int log_get_max_level(void) {
        return max_level;
}

static const char *const level_names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

const char *log_level_to_string(int level) {
        return level >= 0 && level < (int) G_N_ELEMENTS(level_names) ? level_names[level] : NULL;
}

int log_level_from_string(const char *s) {
        const char *const *names = level_names;

        if (!s)
                return -1;
        for (size_t i = 0; i < G_N_ELEMENTS(level_names); i++)
                if (g_ascii_strcasecmp(s, names[i]) == 0)
                        return (int) i;
        if (g_ascii_strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strlen(s) == 1 && s[0] >= '0' && s[0] <= '7')
                return s[0] - '0';
        return -1;
}

void log_full(int level, const char *format, ...) {
        static int journal = -1;
        va_list ap;

        if (level > max_level)
                return;
        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;

        va_start(ap, format);
        g_autofree char *message = g_strdup_vprintf(format, ap);
        va_end(ap);

        if (journal)
                fprintf(stderr, "<%d>%s\n", level, message);
        else
                fprintf(stderr, "vmigrated: %s\n", message);
}
