/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigrated's configuration files (daemon-config.h). Each key has one
 * row in the table below: its group, name, command-line option, type,
 * bounds and default; daemon_config_set() is the only place a value is
 * checked, whether it comes from a file or from the command line.
 *
 * GKeyFile does not say on which line it found what, and it keeps only
 * the last of a key given twice in one file; but every assignment must be
 * checked and named by its line. So each line goes through GKeyFile on
 * its own (a group line alone, an assignment under a made-up group),
 * which gives GKeyFile's reading of it (its whitespace, escapes and
 * UTF-8 rules) with its line number; the whole file goes through
 * GKeyFile first all the same, so that what GKeyFile refuses is refused.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "daemon-config.h"
#include "display-ports.h"
#include "errors.h"
#include "hooks.h"
#include "job-archive.h"
#include "log.h"
#include "manager.h"
#include "tls-creds.h"

typedef enum ValueType {
        VALUE_SECONDS,    /* uint64_t µs, written as whole seconds */
        VALUE_UNSIGNED,   /* unsigned */
        VALUE_PATH,       /* char *, absolute */
        VALUE_COMMAND,    /* char *, absolute, nothing a shell would read */
        VALUE_BOOLEAN,    /* bool */
        VALUE_LOG_LEVEL,  /* int, syslog's */
        VALUE_PORT_RANGE, /* DaemonConfigPortRange */
} ValueType;

typedef struct KeyDef {
        DaemonConfigKeyInfo info;
        ValueType type;
        size_t offset;
        uint64_t min, max; /* VALUE_SECONDS, VALUE_UNSIGNED */
        const char *default_value;
} KeyDef;

#define FIELD(f) offsetof(DaemonConfig, f)

/* clang-format off */
static const KeyDef keys[_DAEMON_CONFIG_KEY_MAX] = {
        [DAEMON_CONFIG_IDLE_TIMEOUT] = { { "Daemon", "IdleTimeoutSec", "idle-timeout", true },
                                         VALUE_SECONDS, FIELD(idle_timeout_usec), 0, UINT32_MAX,
                                         G_STRINGIFY(DAEMON_CONFIG_DEFAULT_IDLE_TIMEOUT_SEC) },
        [DAEMON_CONFIG_LOG_LEVEL] = { { "Daemon", "LogLevel", "log-level", true },
                                      VALUE_LOG_LEVEL, FIELD(log_level), 0, 0, "info" },
        [DAEMON_CONFIG_SHUTDOWN_TIMEOUT] = { { "Domains", "ShutdownTimeoutSec", "shutdown-timeout", true },
                                             VALUE_SECONDS, FIELD(shutdown_timeout_usec), 1, UINT32_MAX,
                                             G_STRINGIFY(DAEMON_CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_SEC) },
        [DAEMON_CONFIG_NETWORKS_DIR] = { { "Domains", "NetworksDirectory", "networks-dir", true },
                                         VALUE_PATH, FIELD(networks_dir), 0, 0, VMIGRATE_NETWORKS_DIR },
        [DAEMON_CONFIG_DISPLAY_PORTS] = { { "Domains", "DisplayPorts", "display-ports", true },
                                          VALUE_PORT_RANGE, FIELD(display_ports), 0, 0,
                                          G_STRINGIFY(DISPLAY_PORT_MIN) "-" G_STRINGIFY(DISPLAY_PORT_MAX) },
        [DAEMON_CONFIG_MAX_OUTGOING] = { { "Migration", "MaxOutgoingMigrations", "max-outgoing-migrations", true },
                                         VALUE_UNSIGNED, FIELD(max_outgoing), 0, 1000,
                                         G_STRINGIFY(MANAGER_DEFAULT_MAX_MIGRATIONS) },
        [DAEMON_CONFIG_MAX_INCOMING] = { { "Migration", "MaxIncomingMigrations", "max-incoming-migrations", true },
                                         VALUE_UNSIGNED, FIELD(max_incoming), 0, 1000,
                                         G_STRINGIFY(MANAGER_DEFAULT_MAX_MIGRATIONS) },
        [DAEMON_CONFIG_POLICIES_DIR] = { { "Migration", "PoliciesDirectory", "policies-dir", true },
                                         VALUE_PATH, FIELD(policies_dir), 0, 0, VMIGRATE_POLICIES_DIR },
        [DAEMON_CONFIG_HOOKS_DIR] = { { "Migration", "HooksDirectory", "hooks-dir", true },
                                      VALUE_PATH, FIELD(hooks_dir), 0, 0, VMIGRATE_HOOKS_DIR },
        /* HOOK_DEFAULT_TIMEOUT_USEC's; test-daemon-config checks they agree. */
        [DAEMON_CONFIG_HOOK_TIMEOUT] = { { "Migration", "HookTimeoutSec", "hook-timeout", true },
                                         VALUE_SECONDS, FIELD(hook_timeout_usec), 1, 3600, "30" },
        [DAEMON_CONFIG_TUNNEL_COMMAND] = { { "Migration", "TunnelCommand", "tunnel-command", true },
                                           VALUE_COMMAND, FIELD(tunnel_command), 0, 0,
                                           VMIGRATE_LIBEXECDIR "/vmigrate-tunnel" },
        [DAEMON_CONFIG_REQUIRE_ENCRYPTION] = { { "Migration", "RequireEncryption", "require-encryption", true,
                                                 true },
                                               VALUE_BOOLEAN, FIELD(require_encryption), 0, 0, "no" },
        [DAEMON_CONFIG_OUTGOING_BANDWIDTH] = { { "Migration", "OutgoingBandwidthMbps", "outgoing-bandwidth", true },
                                               VALUE_UNSIGNED, FIELD(outgoing_bandwidth_mbps), 0, 10000000, "0" },
        [DAEMON_CONFIG_JOB_HISTORY_SIZE] = { { "Migration", "JobHistorySize", "job-history-size", true },
                                             VALUE_UNSIGNED, FIELD(job_history_size), 0, JOB_ARCHIVE_MAX_MAX,
                                             G_STRINGIFY(JOB_ARCHIVE_DEFAULT_MAX) },
        /* Not at run time: a migration reads its credentials more than
         * once (the cookie's CA fingerprint at Prepare, QEMU's objects at
         * Perform), and one in flight must not see two directories. */
        [DAEMON_CONFIG_TLS_DIR] = { { "TLS", "Directory", "tls-dir", false },
                                    VALUE_PATH, FIELD(tls_dir), 0, 0, TLS_CREDS_DEFAULT_DIR },
};
/* clang-format on */

static const char *const groups[] = { "Daemon", "Domains", "Migration", "TLS" };

const DaemonConfigKeyInfo *daemon_config_key_info(DaemonConfigKey key) {
        g_return_val_if_fail(key >= 0 && key < _DAEMON_CONFIG_KEY_MAX, NULL);
        return &keys[key].info;
}

int daemon_config_key_from_option(const char *option) {
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                if (option && g_str_equal(option, keys[k].info.option))
                        return k;
        return -1;
}

static int key_lookup(const char *group, const char *name) {
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                if (g_str_equal(group, keys[k].info.group) && g_str_equal(name, keys[k].info.name))
                        return k;
        return -1;
}

static bool group_is_known(const char *group) {
        for (size_t i = 0; i < G_N_ELEMENTS(groups); i++)
                if (g_str_equal(group, groups[i]))
                        return true;
        return false;
}

/* ---- origins ---- */

static void origin_clear(DaemonConfigOrigin *o) {
        g_clear_pointer(&o->file, g_free);
        *o = (DaemonConfigOrigin){ 0 };
}

static void origin_copy(DaemonConfigOrigin *dst, const DaemonConfigOrigin *src) {
        DaemonConfigOrigin copy = { 0 };

        if (src) {
                copy = *src;
                copy.file = g_strdup(src->file);
        }
        origin_clear(dst);
        *dst = copy;
}

char *daemon_config_origin_describe(const DaemonConfigOrigin *o) {
        switch (o->kind) {
        case DAEMON_CONFIG_ORIGIN_FILE:
                return g_strdup_printf("%s:%u", o->file, o->line);
        case DAEMON_CONFIG_ORIGIN_COMMAND_LINE:
                return g_strdup("command line");
        default:
                return g_strdup("default");
        }
}

/* ---- values: the one rule of each key ---- */

typedef union Value {
        uint64_t u64;
        unsigned u;
        char *str;
        bool b;
        int level;
        DaemonConfigPortRange range;
} Value;

static int parse_boolean(const char *s, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" },
                                 *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
                if (g_ascii_strcasecmp(s, yes[i]) == 0)
                        return *ret = true, 0;
                if (g_ascii_strcasecmp(s, no[i]) == 0)
                        return *ret = false, 0;
        }
        return -EINVAL;
}

static bool has_control_characters(const char *s) {
        for (; *s; s++)
                if (g_ascii_iscntrl(*s))
                        return true;
        return false;
}

static int parse_value(const KeyDef *k, const char *s, Value *ret, GError **error) {
        g_autoptr(GError) range_error = NULL;
        guint64 n;

        switch (k->type) {
        case VALUE_SECONDS:
                if (!g_ascii_string_to_unsigned(s, 10, k->min, k->max, &n, NULL)) {
                        if (k->max == UINT32_MAX)
                                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                                    "not a whole number of seconds (%" G_GUINT64_FORMAT
                                                    " or more)",
                                                    k->min);
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "not a whole number of seconds from %" G_GUINT64_FORMAT
                                            " to %" G_GUINT64_FORMAT,
                                            k->min, k->max);
                }
                ret->u64 = n * G_USEC_PER_SEC;
                return 0;
        case VALUE_UNSIGNED:
                if (!g_ascii_string_to_unsigned(s, 10, k->min, k->max, &n, NULL))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "not a number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                                            "%s",
                                            k->min, k->max, k->min == 0 ? " (0: no limit)" : "");
                ret->u = (unsigned) n;
                return 0;
        case VALUE_PATH:
                /* Also what a configuration file can hold. */
                if (!g_path_is_absolute(s) || !g_utf8_validate(s, -1, NULL) || has_control_characters(s))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "not an absolute path (in UTF-8, without control characters)");
                ret->str = g_strdup(s);
                return 0;
        case VALUE_COMMAND:
                /* It ends up on a remote shell's command line. */
                if (!g_path_is_absolute(s) || !g_utf8_validate(s, -1, NULL) || has_control_characters(s) ||
                    strpbrk(s, " '\"\\$`;&|<>*?()[]{}~#"))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "not an absolute path without spaces or shell characters");
                ret->str = g_strdup(s);
                return 0;
        case VALUE_BOOLEAN:
                if (parse_boolean(s, &ret->b) < 0)
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "not a boolean (yes, no, true, false, on, off, 1 or 0)");
                return 0;
        case VALUE_LOG_LEVEL:
                ret->level = log_level_from_string(s);
                if (ret->level < 0)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_ARGUMENT,
                                "not a log level (emerg, alert, crit, err, warning, notice, info or "
                                "debug)");
                return 0;
        case VALUE_PORT_RANGE:
                if (display_ports_parse_range(s, &ret->range.min, &ret->range.max, &range_error) < 0)
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "%s", range_error->message);
                return 0;
        }
        g_assert_not_reached();
}

static void *field(const DaemonConfig *c, DaemonConfigKey key) {
        return (char *) c + keys[key].offset;
}

/* Stores v (taking its string) into key's field. */
static void store_value(DaemonConfig *c, DaemonConfigKey key, Value *v) {
        void *p = field(c, key);

        switch (keys[key].type) {
        case VALUE_SECONDS:
                *(uint64_t *) p = v->u64;
                break;
        case VALUE_UNSIGNED:
                *(unsigned *) p = v->u;
                break;
        case VALUE_PATH:
        case VALUE_COMMAND:
                g_free(*(char **) p);
                *(char **) p = g_steal_pointer(&v->str);
                break;
        case VALUE_BOOLEAN:
                *(bool *) p = v->b;
                break;
        case VALUE_LOG_LEVEL:
                *(int *) p = v->level;
                break;
        case VALUE_PORT_RANGE:
                *(DaemonConfigPortRange *) p = v->range;
                break;
        }
}

int daemon_config_set(DaemonConfig *c, DaemonConfigKey key, const char *value,
                      const DaemonConfigOrigin *origin, GError **error) {
        Value v = { 0 };
        int r;

        g_return_val_if_fail(key >= 0 && key < _DAEMON_CONFIG_KEY_MAX, -EINVAL);
        r = parse_value(&keys[key], value ? value : "", &v, error);
        if (r < 0)
                return r;
        store_value(c, key, &v);
        origin_copy(&c->origin[key], origin);
        return 0;
}

/* For values that passed the rule before (defaults, another
 * configuration's): failing is a bug. */
static void set_known_good(DaemonConfig *c, DaemonConfigKey key, const char *value,
                           const DaemonConfigOrigin *origin) {
        g_autoptr(GError) error = NULL;

        if (daemon_config_set(c, key, value, origin, &error) < 0)
                g_error("[%s] %s=%s does not pass its own rule: %s", keys[key].info.group,
                        keys[key].info.name, value, error->message);
}

char *daemon_config_get_text(const DaemonConfig *c, DaemonConfigKey key) {
        const void *p = field(c, key);

        switch (keys[key].type) {
        case VALUE_SECONDS:
                return g_strdup_printf("%" G_GUINT64_FORMAT, *(const uint64_t *) p / G_USEC_PER_SEC);
        case VALUE_UNSIGNED:
                return g_strdup_printf("%u", *(const unsigned *) p);
        case VALUE_PATH:
        case VALUE_COMMAND:
                return g_strdup(*(char *const *) p);
        case VALUE_BOOLEAN:
                return g_strdup(*(const bool *) p ? "yes" : "no");
        case VALUE_LOG_LEVEL:
                return g_strdup(log_level_to_string(*(const int *) p));
        case VALUE_PORT_RANGE: {
                const DaemonConfigPortRange *range = p;
                return g_strdup_printf("%u-%u", range->min, range->max);
        }
        }
        g_assert_not_reached();
}

bool daemon_config_key_equal(const DaemonConfig *a, const DaemonConfig *b, DaemonConfigKey key) {
        g_autofree char *x = daemon_config_get_text(a, key);
        g_autofree char *y = daemon_config_get_text(b, key);

        return g_strcmp0(x, y) == 0;
}

void daemon_config_copy_key(DaemonConfig *dst, const DaemonConfig *src, DaemonConfigKey key) {
        g_autofree char *text = daemon_config_get_text(src, key);

        set_known_good(dst, key, text, &src->origin[key]);
        origin_copy(&dst->overridden[key], &src->overridden[key]);
}

/* ---- the whole ---- */

DaemonConfig *daemon_config_new(void) {
        DaemonConfig *c = g_new0(DaemonConfig, 1);

        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                set_known_good(c, k, keys[k].default_value, NULL);
        c->files = g_ptr_array_new_with_free_func(g_free);
        return c;
}

void daemon_config_free(DaemonConfig *c) {
        if (!c)
                return;
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                if (keys[k].type == VALUE_PATH || keys[k].type == VALUE_COMMAND)
                        g_free(*(char **) field(c, k));
                origin_clear(&c->origin[k]);
                origin_clear(&c->overridden[k]);
        }
        g_clear_pointer(&c->files, g_ptr_array_unref);
        g_free(c);
}

void daemon_config_override(DaemonConfig *c, const DaemonConfig *cmdline) {
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                if (cmdline->origin[k].kind != DAEMON_CONFIG_ORIGIN_COMMAND_LINE)
                        continue;
                if (c->origin[k].kind == DAEMON_CONFIG_ORIGIN_FILE)
                        origin_copy(&c->overridden[k], &c->origin[k]);
                g_autofree char *text = daemon_config_get_text(cmdline, k);
                set_known_good(c, k, text, &cmdline->origin[k]);
        }
}

/* ---- files ---- */

/* File text in a message or a comment: valid UTF-8, on one line, and
 * not a screenful. */
static char *quote(const char *s) {
        g_autofree char *valid = g_utf8_make_valid(s, -1);

        for (char *p = valid; *p; p++)
                if (g_ascii_iscntrl(*p))
                        *p = '?';

        if (g_utf8_strlen(valid, -1) <= 200)
                return g_steal_pointer(&valid);
        g_autofree char *head = g_utf8_substring(valid, 0, 200);
        return g_strconcat(head, "…", NULL);
}

static char *known_keys_of(const char *group) {
        g_autoptr(GString) s = g_string_new(NULL);

        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                if (g_str_equal(keys[k].info.group, group))
                        g_string_append_printf(s, "%s%s", s->len ? ", " : "", keys[k].info.name);
        return g_string_free(g_steal_pointer(&s), false);
}

static int unknown_key(const char *path, unsigned line, const char *group, const char *key, const char *raw,
                       GError **error) {
        g_autofree char *qkey = quote(key), *qraw = quote(raw), *known = known_keys_of(group);

        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                if (g_str_equal(keys[k].info.name, key))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "%s:%u: [%s] %s=%s: unknown key in [%s]; %s belongs in [%s]",
                                            path, line, group, qkey, qraw, group, qkey, keys[k].info.group);
        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                            "%s:%u: [%s] %s=%s: unknown key (those of [%s]: %s)", path, line, group, qkey,
                            qraw, group, known);
}

/* One line through GKeyFile: a group line alone, an assignment under a
 * made-up group. Exactly one of *ret_group or *ret_key is set. */
static bool parse_line(const char *line, char **ret_group, char **ret_key, char **ret_raw, char **ret_value,
                       GError **ret_value_error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autofree char *data = NULL;
        g_auto(GStrv) names = NULL;

        if (line[0] == '[') {
                data = g_strconcat(line, "\n", NULL);
                if (!g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_KEEP_TRANSLATIONS, NULL))
                        return false;
                *ret_group = g_key_file_get_start_group(kf);
                return *ret_group != NULL;
        }
        data = g_strconcat("[-]\n", line, "\n", NULL);
        if (!g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_KEEP_TRANSLATIONS, NULL))
                return false;
        names = g_key_file_get_keys(kf, "-", NULL, NULL);
        if (!names || g_strv_length(names) != 1)
                return false;
        *ret_key = g_strdup(names[0]);
        *ret_raw = g_key_file_get_value(kf, "-", names[0], NULL);
        *ret_value = g_key_file_get_string(kf, "-", names[0], ret_value_error);
        return true;
}

int daemon_config_parse(DaemonConfig *c, const char *path, const char *text, size_t length, GError **error) {
        g_autoptr(GKeyFile) whole = g_key_file_new();
        g_autoptr(GError) kf_error = NULL;
        g_auto(GStrv) lines = NULL;
        g_autofree char *group = NULL;
        bool whole_ok;

        if (memchr(text, '\0', length))
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                    "%s: contains a NUL byte: not a text file", path);
        whole_ok = g_key_file_load_from_data(whole, text, length, G_KEY_FILE_KEEP_TRANSLATIONS, &kf_error);

        g_autofree char *copy = g_strndup(text, length);
        lines = g_strsplit(copy, "\n", -1);
        for (size_t i = 0; lines[i]; i++) {
                unsigned n = (unsigned) i + 1;
                g_autofree char *line_group = NULL, *key = NULL, *raw = NULL, *value = NULL;
                g_autoptr(GError) value_error = NULL; /* GKeyFile's: only whether */
                /* GKeyFile keeps the blanks after a value; a file's reader
                 * does not see them (a '\s' keeps a space that matters). */
                char *line = g_strstrip(lines[i]);

                if (!*line || *line == '#')
                        continue;
                if (!parse_line(line, &line_group, &key, &raw, &value, &value_error)) {
                        g_autofree char *q = quote(line);
                        return vm_error_set(
                                error, VM_ERROR_INVALID_ARGUMENT,
                                "%s:%u: '%s' is not a [Group] line, a Key=value line, a # comment or "
                                "blank",
                                path, n, q);
                }
                if (line_group) {
                        if (!group_is_known(line_group)) {
                                g_autofree char *q = quote(line_group);
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_ARGUMENT,
                                        "%s:%u: unknown group [%s] (there are [Daemon], [Domains], "
                                        "[Migration] and [TLS])",
                                        path, n, q);
                        }
                        g_free(group);
                        group = g_steal_pointer(&line_group);
                        continue;
                }
                if (!group) {
                        g_autofree char *q = quote(line);
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "%s:%u: '%s' comes before any [Group] line", path, n, q);
                }

                int k = key_lookup(group, key);
                if (k < 0)
                        return unknown_key(path, n, group, key, raw, error);
                /* GKeyFile returns what it made of a bad escape, and an error. */
                if (value_error || !value) {
                        /* GKeyFile's own words name our made-up group. */
                        g_autofree char *q = quote(raw);
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "%s:%u: [%s] %s=%s: %s", path,
                                            n, group, key, q,
                                            !g_utf8_validate(raw, -1, NULL)
                                                    ? "not valid UTF-8"
                                                    : "a '\\' that is none of the escapes \\s, \\n, \\t, "
                                                      "\\r and \\\\");
                }

                g_autoptr(GError) set_error = NULL;
                DaemonConfigOrigin origin = { DAEMON_CONFIG_ORIGIN_FILE, (char *) path, n };
                /* "Key=" puts the key back to its default, as in systemd. */
                if (daemon_config_set(c, k, *value ? value : keys[k].default_value, &origin, &set_error) <
                    0) {
                        g_autofree char *q = quote(raw);
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "%s:%u: [%s] %s=%s: %s", path,
                                            n, group, key, q, set_error->message);
                }
        }
        /* Line by line we found nothing wrong: GKeyFile must agree. */
        if (!whole_ok) {
                g_autofree char *q = quote(kf_error->message);
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "%s: %s", path, q);
        }
        return 0;
}

const char *const *daemon_config_search_dirs(void) {
        static const char *const dirs[] = { VMIGRATE_CONF_DIR, VMIGRATE_RUNTIME_DIR,
                                            VMIGRATE_VENDOR_CONF_DIR, NULL };
        return dirs;
}

static char *rooted(const char *root, const char *path) {
        return root && *root && !g_str_equal(root, "/") ? g_build_filename(root, path, NULL)
                                                        : g_strdup(path);
}

/* Adds dir's NAME.conf files to by_name (NAME.conf → path) unless a
 * directory of higher precedence had that name already. */
static int collect_dropins(const char *dir, GHashTable *by_name, GError **error) {
        g_autoptr(GError) dir_error = NULL;
        g_autoptr(GDir) d = g_dir_open(dir, 0, &dir_error);
        const char *name;

        if (!d) {
                if (g_error_matches(dir_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
                    g_error_matches(dir_error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
                        return 0;
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "%s: %s", dir, dir_error->message);
        }
        while ((name = g_dir_read_name(d))) {
                /* Hidden files are editors' and package managers'. */
                if (name[0] == '.' || !g_str_has_suffix(name, ".conf") ||
                    g_hash_table_contains(by_name, name))
                        continue;
                g_hash_table_insert(by_name, g_strdup(name), g_build_filename(dir, name, NULL));
        }
        return 0;
}

static gint compare_strings(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int daemon_config_list_files(const char *root, GPtrArray **ret, GError **error) {
        const char *const *dirs = daemon_config_search_dirs();
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GHashTable) by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GPtrArray) names = NULL;
        int r;

        /* The main file: the first there is. */
        for (size_t i = 0; dirs[i]; i++) {
                g_autofree char *path = rooted(root, dirs[i]);
                g_autofree char *main_file = g_build_filename(path, "vmigrated.conf", NULL);
                if (g_file_test(main_file, G_FILE_TEST_EXISTS)) {
                        g_ptr_array_add(files, g_steal_pointer(&main_file));
                        break;
                }
        }
        /* Drop-ins: highest precedence first, so that its names mask. */
        for (size_t i = 0; dirs[i]; i++) {
                g_autofree char *path = rooted(root, dirs[i]);
                g_autofree char *dir = g_build_filename(path, "vmigrated.conf.d", NULL);
                r = collect_dropins(dir, by_name, error);
                if (r < 0)
                        return r;
        }
        names = g_ptr_array_new();
        GHashTableIter iter;
        gpointer name;
        g_hash_table_iter_init(&iter, by_name);
        while (g_hash_table_iter_next(&iter, &name, NULL))
                g_ptr_array_add(names, name);
        g_ptr_array_sort(names, compare_strings);
        for (guint i = 0; i < names->len; i++)
                g_ptr_array_add(files, g_strdup(g_hash_table_lookup(by_name, names->pdata[i])));
        *ret = g_steal_pointer(&files);
        return 0;
}

int daemon_config_load(DaemonConfig *c, const char *root, GError **error) {
        g_autoptr(GPtrArray) files = NULL;
        int r;

        r = daemon_config_list_files(root, &files, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < files->len; i++) {
                const char *path = files->pdata[i];
                g_autoptr(GError) read_error = NULL;
                g_autofree char *text = NULL;
                gsize length;

                /* A drop-in linked to /dev/null reads as empty: masked. */
                if (!g_file_get_contents(path, &text, &length, &read_error))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "%s", read_error->message);
                r = daemon_config_parse(c, path, text, length, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(c->files, g_strdup(path));
        }
        return 0;
}

int daemon_config_load_effective(const char *root, const DaemonConfig *cmdline, DaemonConfig **ret,
                                 GError **error) {
        g_autoptr(DaemonConfig) c = daemon_config_new();
        int r;

        r = daemon_config_load(c, root, error);
        if (r < 0)
                return r;
        if (cmdline)
                daemon_config_override(c, cmdline);
        *ret = g_steal_pointer(&c);
        return 0;
}

/* value as GKeyFile reads it back: its escapes, and '\s' for the blanks
 * at either end (which a line's reader does not see). */
static char *escape_value(const char *value) {
        GString *s = g_string_new(NULL);
        size_t len = strlen(value), end = len;

        while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
                end--;
        for (size_t i = 0; i < len; i++) {
                char ch = value[i];
                bool edge = i >= end || s->len == 0;

                if (ch == '\\')
                        g_string_append(s, "\\\\");
                else if (ch == '\n')
                        g_string_append(s, "\\n");
                else if (ch == '\r')
                        g_string_append(s, "\\r");
                else if (ch == '\t')
                        g_string_append(s, "\\t");
                else if (ch == ' ' && edge)
                        g_string_append(s, "\\s");
                else
                        g_string_append_c(s, ch);
        }
        return g_string_free(s, false);
}

char *daemon_config_format(const DaemonConfig *c) {
        g_autoptr(GString) s = g_string_new(NULL);

        g_string_append(s,
                        "# vmigrated's configuration, as vmigrated would run with it: the comment\n"
                        "# above each key says where its value comes from (default, command line,\n"
                        "# or FILE:LINE). See vmigrated.conf(5).\n"
                        "#\n");
        if (c->files->len == 0)
                g_string_append(s, "# Files read: none.\n");
        else {
                g_string_append(s, "# Files read, in this order (a later one wins):\n");
                for (guint i = 0; i < c->files->len; i++) {
                        g_autofree char *q = quote(c->files->pdata[i]);
                        g_string_append_printf(s, "#   %s\n", q);
                }
        }
        for (size_t g = 0; g < G_N_ELEMENTS(groups); g++) {
                g_string_append_printf(s, "\n[%s]\n", groups[g]);
                for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                        if (!g_str_equal(keys[k].info.group, groups[g]))
                                continue;
                        g_autofree char *origin = daemon_config_origin_describe(&c->origin[k]);
                        g_autofree char *text = daemon_config_get_text(c, k);
                        g_autofree char *escaped = escape_value(text);
                        g_autofree char *qorigin = quote(origin);

                        if (c->overridden[k].kind != DAEMON_CONFIG_ORIGIN_DEFAULT) {
                                g_autofree char *over = daemon_config_origin_describe(&c->overridden[k]);
                                g_autofree char *qover = quote(over);
                                g_string_append_printf(s, "# %s (overrides %s)\n", qorigin, qover);
                        } else
                                g_string_append_printf(s, "# %s\n", qorigin);
                        g_string_append_printf(s, "%s=%s\n", keys[k].info.name, escaped);
                }
        }
        return g_string_free(g_steal_pointer(&s), false);
}
