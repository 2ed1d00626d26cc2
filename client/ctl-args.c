/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: what the command line says, read without a bus. The grammar
 * of --host is vmigrated's destination URI grammar (uri.h), so that a URI
 * means the same to vmigratectl --host as to Domain.Migrate.
 */

#include "ctl.h"

#include <errno.h>
#include <string.h>

void ctl_host_clear(CtlHost *host) {
        g_clear_pointer(&host->destination, destination_free);
        host->kind = CTL_HOST_LOCAL;
}

int ctl_host_parse(const char *uri, CtlHost *ret_host, char **ret_error) {
        g_autoptr(Destination) d = NULL;
        g_autoptr(GError) error = NULL;

        g_assert(uri && ret_host && ret_error);

        if (destination_parse(uri, &d, &error) < 0) {
                *ret_error = g_strdup(error->message);
                return -EINVAL;
        }
        *ret_host = (CtlHost){ .kind = CTL_HOST_DESTINATION, .destination = g_steal_pointer(&d) };
        return 0;
}

Destination *ctl_host_login(const CtlHost *host) {
        const Destination *given = host->destination;
        g_autofree char *as_root = NULL;
        Destination *d = NULL;
        int r;

        if (host->kind == CTL_HOST_LOCAL)
                return NULL;
        if (given->kind == DESTINATION_SSH && !given->user)
                as_root = g_strconcat("ssh://root@", given->canonical + strlen("ssh://"), NULL);
        r = destination_parse(as_root ?: given->canonical, &d, NULL);
        g_assert(r >= 0); /* a canonical URI, with or without a user name added */
        return d;
}

char *ctl_host_describe(const CtlHost *host) {
        g_autoptr(Destination) login = ctl_host_login(host);

        if (!login) {
                const char *addr = g_getenv("DBUS_SYSTEM_BUS_ADDRESS");
                if (addr && *addr)
                        return g_strdup_printf("the system bus (%s)", addr);
                return g_strdup("the system bus");
        }
        if (login->kind == DESTINATION_UNIX)
                return g_strdup_printf("the bus at %s", login->canonical);
        g_autofree char *remote = destination_to_sd_bus_host(login);
        return g_strdup_printf("the system bus of %s (over ssh)", remote);
}

/* ---- numbers and rates ---- */

int ctl_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *ret) {
        guint64 v;

        if (!text || !g_ascii_isdigit(text[0]))
                return -EINVAL;
        if (strspn(text, "0123456789") != strlen(text))
                return -EINVAL;
        if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &v, NULL))
                return -ERANGE;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int ctl_parse_rate(const char *text, uint64_t *ret_bytes_per_second) {
        static const struct {
                const char *suffix;
                uint64_t multiplier;
                bool bits;
        } units[] = {
                { "", 1, false },
                { "B", 1, false },
                { "K", UINT64_C(1) << 10, false },
                { "k", UINT64_C(1) << 10, false },
                { "KiB", UINT64_C(1) << 10, false },
                { "M", UINT64_C(1) << 20, false },
                { "MiB", UINT64_C(1) << 20, false },
                { "G", UINT64_C(1) << 30, false },
                { "GiB", UINT64_C(1) << 30, false },
                { "T", UINT64_C(1) << 40, false },
                { "TiB", UINT64_C(1) << 40, false },
                { "kB", UINT64_C(1000), false },
                { "KB", UINT64_C(1000), false },
                { "MB", UINT64_C(1000000), false },
                { "GB", UINT64_C(1000000000), false },
                { "TB", UINT64_C(1000000000000), false },
                { "bit", 1, true },
                { "kbit", UINT64_C(1000), true },
                { "Kbit", UINT64_C(1000), true },
                { "Mbit", UINT64_C(1000000), true },
                { "Gbit", UINT64_C(1000000000), true },
                { "Tbit", UINT64_C(1000000000000), true },
        };
        g_autofree char *unit = NULL;
        size_t int_len, frac_len = 0;
        const char *p = text, *frac = NULL;
        uint64_t whole = 0, frac_value = 0, frac_scale = 1, value;
        size_t len;

        if (!text)
                return -EINVAL;
        /* strtod would take blanks, signs, hex, "inf" and locales: parse by hand. */
        int_len = strspn(p, "0123456789");
        p += int_len;
        if (*p == '.') {
                frac = p + 1;
                frac_len = strspn(frac, "0123456789");
                p = frac + frac_len;
                if (frac_len == 0 || frac_len > 9)
                        return -EINVAL;
        }
        if (int_len == 0 && frac_len == 0)
                return -EINVAL;
        if (int_len > 20)
                return -ERANGE;
        for (size_t i = 0; i < int_len; i++) {
                unsigned digit = (unsigned) (text[i] - '0');
                if (whole > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                whole = whole * 10 + digit;
        }
        for (size_t i = 0; i < frac_len; i++) {
                frac_value = frac_value * 10 + (uint64_t) (frac[i] - '0');
                frac_scale *= 10;
        }

        len = strlen(p);
        if (len >= 2 && strcmp(p + len - 2, "/s") == 0)
                len -= 2;
        unit = g_strndup(p, len);
        for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
                uint64_t m = units[i].multiplier;

                if (!g_str_equal(unit, units[i].suffix))
                        continue;
                if (whole > UINT64_MAX / m)
                        return -ERANGE;
                value = whole * m;
                {
                        /* frac_value < frac_scale <= 10^9 and m <= 10^12: exact in 128 bits. */
                        unsigned __int128 extra = (unsigned __int128) frac_value * m / frac_scale;
                        if ((unsigned __int128) value + extra > UINT64_MAX)
                                return -ERANGE;
                        value += (uint64_t) extra;
                }
                if (units[i].bits)
                        value /= 8;
                if (value == 0)
                        return -ERANGE;
                *ret_bytes_per_second = value;
                return 0;
        }
        return -EINVAL;
}

/* ---- migrate's post-copy and timeout switches ---- */

int ctl_migrate_switches_apply(const CtlMigrateSwitches *sw, GVariantDict *options, char **ret_error) {
        static const char *const actions[] = { "abort", "postcopy", "suspend" };
        g_autofree char *action_option =
                sw->timeout_action ? g_strconcat("--timeout-action=", sw->timeout_action, NULL) : NULL;
        const char *action = NULL, *action_flag = NULL;
        uint64_t seconds = 0;
        bool postcopy;
        /* Each way of naming the action, with the switch that named it, for messages. */
        const struct {
                bool given;
                const char *value, *flag;
        } named[] = {
                { sw->timeout_action != NULL, sw->timeout_action, action_option },
                { sw->timeout_postcopy, "postcopy", "--timeout-postcopy" },
                { sw->timeout_suspend, "suspend", "--timeout-suspend" },
        };

        if (sw->timeout_action) {
                bool known = false;
                for (size_t i = 0; i < G_N_ELEMENTS(actions); i++)
                        known = known || g_str_equal(sw->timeout_action, actions[i]);
                if (!known) {
                        *ret_error = g_strdup_printf(
                                "invalid --timeout-action '%s': expected abort, postcopy or suspend",
                                sw->timeout_action);
                        return -EINVAL;
                }
        }
        for (size_t i = 0; i < G_N_ELEMENTS(named); i++) {
                if (!named[i].given)
                        continue;
                if (!action) {
                        action = named[i].value;
                        action_flag = named[i].flag;
                } else if (!g_str_equal(action, named[i].value)) {
                        *ret_error = g_strdup_printf(
                                "%s and %s ask for different actions when the timeout expires; give one",
                                action_flag, named[i].flag);
                        return -EINVAL;
                }
        }

        if (sw->timeout) {
                if (ctl_parse_uint(sw->timeout, 1, 604800, &seconds) < 0) {
                        *ret_error = g_strdup_printf(
                                "invalid --timeout '%s': expected whole seconds from 1 to 604800 (a week), "
                                "e.g. --timeout=300",
                                sw->timeout);
                        return -EINVAL;
                }
        } else if (action) {
                *ret_error = g_strdup_printf(
                        "%s says what to do when the timeout expires, so it needs --timeout=SECONDS, "
                        "e.g. --timeout=300 %s",
                        action_flag, action_flag);
                return -EINVAL;
        }

        if (sw->postcopy_resume && sw->postcopy_after_precopy) {
                *ret_error = g_strdup("--postcopy-resume continues a post-copy that has already begun, so "
                                      "--postcopy-after-precopy has nothing to switch; drop it");
                return -EINVAL;
        }

        /* Switching to post-copy must be allowed when the migration starts. */
        postcopy = sw->postcopy || sw->postcopy_after_precopy || sw->postcopy_resume ||
                g_strcmp0(action, "postcopy") == 0;

        if (postcopy)
                g_variant_dict_insert(options, "postcopy", "b", TRUE);
        if (sw->postcopy_resume)
                g_variant_dict_insert(options, "postcopy-resume", "b", TRUE);
        if (sw->timeout)
                g_variant_dict_insert(options, "timeout", "t", (guint64) seconds);
        if (action)
                g_variant_dict_insert(options, "timeout-action", "s", action);
        return 0;
}
