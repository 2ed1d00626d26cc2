/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: what the command line says, read without a bus. The grammar
 * of --host is vmigrated's destination URI grammar (uri.h), and migrate's
 * options are typed, bounded and checked by vmigrated's option table and
 * parser (options.h): a value means the same, and is refused for the same
 * reason, on the command line as in a Migrate call.
 */

#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "options.h"

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

/* ---- migrate's options ---- */

/* The one-option a{sv} {key: value} through vmigrated's parser, which knows
 * each option's type, values, range and syntax (names, data-uri, addresses). */
/* value is borrowed. */
static int check_option(const char *flag, const char *key, GVariant *value, char **ret_error) {
        g_autoptr(GVariant) one = NULL;
        g_autoptr(MigrateOptions) parsed = NULL;
        g_autoptr(GError) error = NULL;
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&builder, "{sv}", key, value);
        one = g_variant_ref_sink(g_variant_builder_end(&builder));
        if (migrate_options_parse(one, &parsed, &error) < 0) {
                *ret_error = g_strdup_printf("invalid --%s: %s", flag, error->message);
                return -EINVAL;
        }
        return 0;
}

/* key=value into options, once vmigrated's parser accepts it (value is sunk). */
static int add_option(GVariantDict *options, const char *flag, const char *key, GVariant *value,
                      char **ret_error) {
        g_autoptr(GVariant) owned = g_variant_ref_sink(value);

        if (check_option(flag, key, owned, ret_error) < 0)
                return -EINVAL;
        g_variant_dict_insert_value(options, key, owned);
        return 0;
}

/*
 * How the command line writes each of migrate's own options. What a value
 * may be (type, enum values, range) is the option table's, not this one's.
 */
typedef enum FlagKind {
        FLAG_TRUE,       /* --live: b true */
        FLAG_FALSE,      /* --no-live: b false */
        FLAG_VALUE,      /* --compression=METHOD: the argument, as the option's type */
        FLAG_RATE,       /* --bandwidth=RATE: bytes per second with units (ctl_parse_rate()) */
        FLAG_FIXED,      /* --compressed: a virsh switch standing for --KEY=.fixed */
        FLAG_SWITCH,     /* a bool of CtlMigrateArgs at .field, resolved later */
        FLAG_SWITCH_ARG, /* a string of CtlMigrateArgs at .field, resolved later */
} FlagKind;

typedef struct MigrateFlag {
        const char *flag;
        const char *key; /* the Migrate option; NULL for switches */
        FlagKind kind;
        const char *fixed; /* FLAG_FIXED */
        size_t field;      /* FLAG_SWITCH, FLAG_SWITCH_ARG */
} MigrateFlag;

#define SWITCH(f, kind, member)                                                                             \
        { f, NULL, kind, NULL, offsetof(CtlMigrateArgs, member) }

static const MigrateFlag migrate_flags[] = {
        { "live", "live", FLAG_TRUE },
        { "no-live", "live", FLAG_FALSE },
        { "offline", "offline", FLAG_TRUE },
        { "paused", "paused", FLAG_TRUE },
        { "persist", "persist", FLAG_TRUE },
        { "no-persist", "persist", FLAG_FALSE },
        { "undefine-source", "undefine-source", FLAG_TRUE },
        { "auto-converge", "auto-converge", FLAG_TRUE },
        { "compression", "compression", FLAG_VALUE },
        { "parallel-connections", "parallel-connections", FLAG_VALUE },
        { "tunnelled", "tunnelled", FLAG_TRUE },
        { "tls", "tls", FLAG_TRUE },
        { "no-tls", "tls", FLAG_FALSE },
        { "copy-storage", "copy-storage", FLAG_VALUE },
        { "reuse-images", "reuse-images", FLAG_TRUE },
        { "bandwidth", "bandwidth", FLAG_RATE },
        { "postcopy-bandwidth", "postcopy-bandwidth", FLAG_RATE },
        { "max-downtime", "max-downtime", FLAG_VALUE },
        /* QEMU's newer features (README "QEMU's newer migration features"). */
        { "postcopy-preempt", "postcopy-preempt", FLAG_TRUE },
        { "no-postcopy-preempt", "postcopy-preempt", FLAG_FALSE },
        { "zero-page-detection", "zero-page-detection", FLAG_VALUE },
        { "zero-copy-send", "zero-copy-send", FLAG_TRUE },
        { "switchover-ack", "switchover-ack", FLAG_TRUE },
        { "switchover-bandwidth", "switchover-bandwidth", FLAG_RATE },
        { "destination-name", "destination-name", FLAG_VALUE },
        { "data-uri", "data-uri", FLAG_VALUE },
        { "listen-address", "listen-address", FLAG_VALUE },
        { "abort-on-error", "abort-on-error", FLAG_TRUE },
        { "unsafe", "unsafe", FLAG_TRUE },
        { "policy", "policy", FLAG_VALUE },
        { "no-auto-converge", "auto-converge", FLAG_FALSE },
        /* Post-copy and timeout switches imply or exclude each other: they
         * become options in ctl_migrate_switches_apply(). */
        SWITCH("postcopy-after-precopy", FLAG_SWITCH, switches.postcopy_after_precopy),
        SWITCH("postcopy-resume", FLAG_SWITCH, switches.postcopy_resume),
        SWITCH("timeout-postcopy", FLAG_SWITCH, switches.timeout_postcopy),
        SWITCH("timeout-suspend", FLAG_SWITCH, switches.timeout_suspend),
        SWITCH("timeout-action", FLAG_SWITCH_ARG, switches.timeout_action),
        /* A file, read only once the command is known to be migrate. */
        SWITCH("destination-xml", FLAG_SWITCH_ARG, destination_xml),
        /* virsh migrate's names, so that its users' fingers keep working. */
        SWITCH("xml", FLAG_SWITCH_ARG, destination_xml),
        { "persistent", "persist", FLAG_TRUE },
        { "undefinesource", "undefine-source", FLAG_TRUE },
        { "suspend", "paused", FLAG_TRUE },
        { "downtime", "max-downtime", FLAG_VALUE },
        { "dname", "destination-name", FLAG_VALUE },
        { "migrateuri", "data-uri", FLAG_VALUE },
        /* --parallel-connections given after --parallel wins. */
        { "compressed", "compression", FLAG_FIXED, "xbzrle" },
        { "parallel", "parallel-connections", FLAG_FIXED, "2" },
        { "zerocopy", "zero-copy-send", FLAG_TRUE },
};

void ctl_migrate_args_clear(CtlMigrateArgs *a) {
        g_clear_pointer(&a->options, g_variant_dict_unref);
        *a = (CtlMigrateArgs){ 0 };
}

size_t ctl_migrate_flags_count(void) {
        return G_N_ELEMENTS(migrate_flags);
}

struct option ctl_migrate_flag_getopt(size_t i, int val) {
        FlagKind kind;
        bool takes_argument;

        g_assert(i < G_N_ELEMENTS(migrate_flags));
        kind = migrate_flags[i].kind;
        takes_argument = kind == FLAG_VALUE || kind == FLAG_RATE || kind == FLAG_SWITCH_ARG;
        return (struct option){ migrate_flags[i].flag, takes_argument ? required_argument : no_argument,
                                NULL, val };
}

/* The argument of --flag=arg as a value of the option's type, or NULL and a usage error. */
static GVariant *flag_value(const MigrateFlag *f, const MigrateOptionInfo *info, const char *arg,
                            char **ret_error) {
        uint64_t v;

        if (f->kind == FLAG_RATE) {
                g_assert(g_str_equal(info->type, "t"));
                if (ctl_parse_rate(arg, &v) < 0) {
                        *ret_error =
                                g_strdup_printf("invalid --%s '%s': expected a rate in bytes per second, "
                                                "e.g. 100M, 1G, 512MiB/s, 800Mbit/s",
                                                f->flag, arg);
                        return NULL;
                }
                return g_variant_new_uint64(v);
        }
        switch (info->type[0]) {
        case 's':
                /* Command lines are bytes; a D-Bus string is UTF-8. */
                if (!g_utf8_validate(arg, -1, NULL)) {
                        *ret_error = g_strdup_printf("invalid --%s: the value is not valid UTF-8", f->flag);
                        return NULL;
                }
                return g_variant_new_string(arg);
        case 'u':
        case 't':
                /* Syntax here; the option's range is checked with its value (check_option()). */
                if (ctl_parse_uint(arg, 0, info->type[0] == 'u' ? UINT32_MAX : UINT64_MAX, &v) < 0) {
                        *ret_error = g_strdup_printf(
                                "invalid --%s '%s': expected a whole number from %" PRIu64 " to %" PRIu64
                                "%s%s",
                                f->flag, arg, info->min, info->max, info->unit ? " " : "", info->unit ?: "");
                        return NULL;
                }
                return info->type[0] == 'u' ? g_variant_new_uint32((uint32_t) v) : g_variant_new_uint64(v);
        default:
                g_assert_not_reached();
        }
}

int ctl_migrate_arg(CtlMigrateArgs *a, const char *flag, const char *arg, char **ret_error) {
        const MigrateFlag *f = NULL;
        const MigrateOptionInfo *info;
        GVariant *value;

        for (size_t i = 0; i < G_N_ELEMENTS(migrate_flags) && !f; i++)
                if (g_str_equal(migrate_flags[i].flag, flag))
                        f = &migrate_flags[i];
        g_assert(f); /* getopt_long() only gives those it was given */

        if (!a->first_flag)
                a->first_flag = f->flag;
        switch (f->kind) {
        case FLAG_SWITCH:
                *(bool *) ((char *) a + f->field) = true;
                return 0;
        case FLAG_SWITCH_ARG:
                *(const char **) ((char *) a + f->field) = arg;
                return 0;
        case FLAG_TRUE:
        case FLAG_FALSE:
                value = g_variant_new_boolean(f->kind == FLAG_TRUE);
                break;
        default:
                info = migrate_option_info(f->key);
                g_assert(info);
                value = flag_value(f, info, f->kind == FLAG_FIXED ? f->fixed : arg, ret_error);
                if (!value)
                        return -EINVAL;
        }
        if (!a->options)
                a->options = g_variant_dict_new(NULL);
        return add_option(a->options, f->flag, f->key, value, ret_error);
}

/* ---- migrate's post-copy and timeout switches ---- */

int ctl_migrate_switches_apply(const CtlMigrateSwitches *sw, GVariantDict *options, char **ret_error) {
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

        if (sw->timeout_action &&
            check_option("timeout-action", "timeout-action", g_variant_new_string(sw->timeout_action),
                         ret_error) < 0)
                return -EINVAL;
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
                const MigrateOptionInfo *info = migrate_option_info("timeout");

                if (ctl_parse_uint(sw->timeout, 0, UINT64_MAX, &seconds) < 0) {
                        *ret_error = g_strdup_printf("invalid --timeout '%s': expected whole seconds from "
                                                     "%" PRIu64 " to %" PRIu64 ", e.g. --timeout=300",
                                                     sw->timeout, info->min, info->max);
                        return -EINVAL;
                }
                if (check_option("timeout", "timeout", g_variant_new_uint64(seconds), ret_error) < 0)
                        return -EINVAL;
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
