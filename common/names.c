/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <glib.h>

#include "names.h"

bool domain_name_is_valid(const char *name, const char **ret_why) {
        const char *why = NULL;

        if (!name || name[0] == '\0')
                why = "is empty";
        else if (strlen(name) > DOMAIN_NAME_MAX)
                why = "is longer than 64 bytes";
        else if (!g_utf8_validate(name, -1, NULL))
                why = "is not valid UTF-8";
        else if (strchr(name, '/'))
                why = "contains '/'";
        else if (name[0] == '.')
                why = "starts with '.'";
        else if (name[0] == '-')
                why = "starts with '-'";
        else {
                bool all_space = true;

                for (const char *p = name; *p; p = g_utf8_next_char(p)) {
                        gunichar c = g_utf8_get_char(p);

                        if (g_unichar_iscntrl(c)) {
                                why = "contains a control character";
                                break;
                        }
                        if (!g_unichar_isspace(c))
                                all_space = false;
                }
                if (!why && all_space)
                        why = "is all whitespace";
        }

        if (why) {
                if (ret_why)
                        *ret_why = why;
                return false;
        }
        return true;
}

bool policy_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > POLICY_NAME_MAX || name[0] == '-' || name[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isalnum(name[i]) && !strchr("-_.", name[i]))
                        return false;
        return true;
}
