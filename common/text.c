/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>

#include "text.h"

char *text_quote(const char *s, gssize len) {
        g_autofree char *valid = g_utf8_make_valid(s ? s : "", s ? len : -1);
        GString *out = g_string_new(NULL);
        glong n = 0;

        for (const char *p = valid; *p; p = g_utf8_next_char(p), n++) {
                gunichar c = g_utf8_get_char(p);

                if (n >= 64) {
                        g_string_append(out, "…");
                        break;
                }
                if (g_unichar_iscntrl(c))
                        g_string_append_c(out, '?');
                else
                        g_string_append_unichar(out, c);
        }
        return g_string_free(out, false);
}

char *text_join_choices(const char *const *choices) {
        GString *out = g_string_new(NULL);
        size_t n = g_strv_length((char **) choices);

        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        g_string_append(out, i + 1 == n ? " or " : ", ");
                g_string_append_printf(out, "'%s'", choices[i]);
        }
        return g_string_free(out, false);
}

char *text_last_lines(const char *text, unsigned n) {
        g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
        g_autoptr(GPtrArray) kept = g_ptr_array_new();
        GString *out;

        for (char **l = lines; *l; l++) {
                for (char *p = *l; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = ' ';
                g_strstrip(*l);
                if (**l)
                        g_ptr_array_add(kept, *l);
        }
        out = g_string_new(NULL);
        for (guint i = kept->len > n ? kept->len - n : 0; i < kept->len; i++)
                g_string_append_printf(out, "%s%s", out->len ? "; " : "", (const char *) kept->pdata[i]);
        return g_string_free(out, false);
}

bool text_has_control(const char *s) {
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}
