/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host CPU sets: see cpuset.h. */
#include <string.h>

#include "cpuset.h"
#include "errors.h"
#include "text.h"

static void set_bit(CpuSet *s, unsigned cpu, bool on) {
        if (on)
                s->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
        else
                s->bits[cpu / 64] &= ~(UINT64_C(1) << (cpu % 64));
}

bool cpuset_has(const CpuSet *set, unsigned cpu) {
        return cpu < CPUSET_MAX && (set->bits[cpu / 64] >> (cpu % 64)) & 1;
}

unsigned cpuset_count(const CpuSet *set) {
        unsigned n = 0;

        for (unsigned i = 0; i < G_N_ELEMENTS(set->bits); i++)
                n += (unsigned) __builtin_popcountll(set->bits[i]);
        return n;
}

/* A CPU number: digits only, below CPUSET_MAX. */
static bool parse_cpu(const char **p, unsigned *ret) {
        unsigned v = 0;
        const char *s = *p;

        if (!g_ascii_isdigit(*s))
                return false;
        while (g_ascii_isdigit(*s)) {
                v = v * 10 + (unsigned) (*s - '0');
                if (v >= CPUSET_MAX)
                        return false;
                s++;
        }
        *p = s;
        *ret = v;
        return true;
}

int cpuset_parse(const char *text, const char *what, CpuSet *ret, GError **error) {
        g_autofree char *q = text_quote(text, -1);
        CpuSet set = {};
        const char *p = text;

        while (*p) {
                bool exclude = *p == '^';
                unsigned first, last;

                if (exclude)
                        p++;
                if (!parse_cpu(&p, &first))
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "%s '%s': not a list of host CPUs (0 to %d) like '0-3,^2,8'", what, q,
                                            CPUSET_MAX - 1);
                last = first;
                if (*p == '-' && !exclude) {
                        p++;
                        if (!parse_cpu(&p, &last) || last < first)
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "%s '%s': a range must go up, like '0-3'", what, q);
                }
                for (unsigned c = first; c <= last; c++)
                        set_bit(&set, c, !exclude);
                if (*p == ',')
                        p++;
                else if (*p)
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "%s '%s': not a list of host CPUs (0 to %d) like '0-3,^2,8'", what, q,
                                            CPUSET_MAX - 1);
        }
        if (cpuset_count(&set) == 0)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "%s '%s': names no CPU", what, q);
        *ret = set;
        return 0;
}

char *cpuset_format(const CpuSet *set) {
        GString *out = g_string_new(NULL);

        for (unsigned c = 0; c < CPUSET_MAX; c++) {
                unsigned end = c;

                if (!cpuset_has(set, c))
                        continue;
                while (end + 1 < CPUSET_MAX && cpuset_has(set, end + 1))
                        end++;
                if (out->len)
                        g_string_append_c(out, ',');
                if (end > c)
                        g_string_append_printf(out, "%u-%u", c, end);
                else
                        g_string_append_printf(out, "%u", c);
                c = end;
        }
        return g_string_free(out, false);
}

void cpuset_missing(const CpuSet *want, const CpuSet *have, CpuSet *ret) {
        for (unsigned i = 0; i < G_N_ELEMENTS(want->bits); i++)
                ret->bits[i] = want->bits[i] & ~have->bits[i];
}
