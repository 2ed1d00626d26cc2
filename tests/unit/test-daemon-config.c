/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmigrated's configuration files (daemon-config.h): values, lines,
 * errors, the order of the files, the command line on top, and
 * --show-config's text read back. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "config.h"
#include "daemon-config.h"
#include "display-ports.h"
#include "errors.h"
#include "hooks.h"
#include "log.h"
#include "manager.h"
#include "tls-creds.h"

static const DaemonConfigOrigin command_line = { DAEMON_CONFIG_ORIGIN_COMMAND_LINE };

static int parse(DaemonConfig *c, const char *text, GError **error) {
        return daemon_config_parse(c, "test.conf", text, strlen(text), error);
}

/* Parses text into a fresh configuration; expects success. */
static DaemonConfig *parse_ok(const char *text) {
        g_autoptr(GError) error = NULL;
        DaemonConfig *c = daemon_config_new();

        g_assert_cmpint(parse(c, text, &error), ==, 0);
        g_assert_no_error(error);
        return c;
}

/* Expects text to be refused with exactly message. */
static void parse_refused(const char *text, const char *message) {
        g_autoptr(DaemonConfig) c = daemon_config_new();
        g_autoptr(GError) error = NULL;

        g_test_message("refused? %s", text);
        g_assert_cmpint(parse(c, text, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(error->message, ==, message);
}

static char *text_of(const DaemonConfig *c, DaemonConfigKey k) {
        return daemon_config_get_text(c, k);
}

#define assert_text(c, k, expected)                                                                         \
        do {                                                                                                \
                g_autofree char *_t = text_of((c), (k));                                                    \
                g_assert_cmpstr(_t, ==, (expected));                                                        \
        } while (0)

static void test_defaults(void) {
        g_autoptr(DaemonConfig) c = daemon_config_new();

        g_assert_cmpuint(c->idle_timeout_usec, ==, DAEMON_CONFIG_DEFAULT_IDLE_TIMEOUT_SEC * G_USEC_PER_SEC);
        g_assert_cmpint(c->log_level, ==, LOG_INFO);
        g_assert_cmpuint(c->shutdown_timeout_usec, ==,
                         DAEMON_CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_SEC * G_USEC_PER_SEC);
        g_assert_cmpstr(c->networks_dir, ==, VMIGRATE_NETWORKS_DIR);
        g_assert_cmpuint(c->display_ports.min, ==, DISPLAY_PORT_MIN);
        g_assert_cmpuint(c->display_ports.max, ==, DISPLAY_PORT_MAX);
        g_assert_cmpuint(c->max_outgoing, ==, MANAGER_DEFAULT_MAX_MIGRATIONS);
        g_assert_cmpuint(c->max_incoming, ==, MANAGER_DEFAULT_MAX_MIGRATIONS);
        g_assert_cmpstr(c->policies_dir, ==, VMIGRATE_POLICIES_DIR);
        g_assert_cmpstr(c->hooks_dir, ==, VMIGRATE_HOOKS_DIR);
        /* The table's "30" is the hooks module's default. */
        g_assert_cmpuint(c->hook_timeout_usec, ==, HOOK_DEFAULT_TIMEOUT_USEC);
        g_assert_cmpstr(c->tunnel_command, ==, VMIGRATE_LIBEXECDIR "/vmigrate-tunnel");
        g_assert_false(c->require_encryption);
        g_assert_cmpstr(c->tls_dir, ==, TLS_CREDS_DEFAULT_DIR);
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                g_assert_cmpint(c->origin[k].kind, ==, DAEMON_CONFIG_ORIGIN_DEFAULT);
        g_assert_cmpuint(c->files->len, ==, 0);
}

static void test_keys_table(void) {
        /* Every key has a group, a name and an option of its own, found
         * back by the option. */
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                const DaemonConfigKeyInfo *info = daemon_config_key_info(k);
                g_assert_nonnull(info->group);
                g_assert_nonnull(info->name);
                g_assert_cmpint(daemon_config_key_from_option(info->option), ==, k);
                for (int j = 0; j < k; j++) {
                        g_assert_cmpstr(daemon_config_key_info(j)->option, !=, info->option);
                        g_assert_false(g_str_equal(daemon_config_key_info(j)->name, info->name) &&
                                       g_str_equal(daemon_config_key_info(j)->group, info->group));
                }
        }
        g_assert_cmpint(daemon_config_key_from_option("state-dir"), ==, -1);
        g_assert_cmpint(daemon_config_key_from_option(NULL), ==, -1);
        /* What a migration in flight reads twice cannot change under it. */
        g_assert_false(daemon_config_key_info(DAEMON_CONFIG_TLS_DIR)->reloadable);
        g_assert_true(daemon_config_key_info(DAEMON_CONFIG_MAX_OUTGOING)->reloadable);
        g_assert_true(daemon_config_key_info(DAEMON_CONFIG_LOG_LEVEL)->reloadable);
        g_assert_true(daemon_config_key_info(DAEMON_CONFIG_REQUIRE_ENCRYPTION)->boolean);
        g_assert_false(daemon_config_key_info(DAEMON_CONFIG_HOOK_TIMEOUT)->boolean);
}

static void test_parse_values(void) {
        g_autoptr(DaemonConfig) c = parse_ok("# a comment\n"
                                             "\n"
                                             "[Daemon]\n"
                                             "IdleTimeoutSec=0\n"
                                             "LogLevel=debug\n"
                                             "[Domains]\n"
                                             "  ShutdownTimeoutSec = 30  \n"
                                             "NetworksDirectory=/srv/net\n"
                                             "DisplayPorts=5910-5919\n"
                                             "[Migration]\n"
                                             "MaxOutgoingMigrations=4\n"
                                             "MaxIncomingMigrations=0\n"
                                             "PoliciesDirectory=/srv/policies\n"
                                             "HooksDirectory=/srv/hooks\n"
                                             "HookTimeoutSec=3600\n"
                                             "TunnelCommand=/opt/vmigrate/tunnel\n"
                                             "RequireEncryption=yes\n"
                                             "[TLS]\r\n"
                                             "Directory=/etc/pki/qemu\r\n");

        g_assert_cmpuint(c->idle_timeout_usec, ==, 0);
        g_assert_cmpint(c->log_level, ==, LOG_DEBUG);
        g_assert_cmpuint(c->shutdown_timeout_usec, ==, 30 * G_USEC_PER_SEC);
        g_assert_cmpstr(c->networks_dir, ==, "/srv/net");
        g_assert_cmpuint(c->display_ports.min, ==, 5910);
        g_assert_cmpuint(c->display_ports.max, ==, 5919);
        g_assert_cmpuint(c->max_outgoing, ==, 4);
        g_assert_cmpuint(c->max_incoming, ==, 0);
        g_assert_cmpstr(c->policies_dir, ==, "/srv/policies");
        g_assert_cmpstr(c->hooks_dir, ==, "/srv/hooks");
        g_assert_cmpuint(c->hook_timeout_usec, ==, 3600ULL * G_USEC_PER_SEC);
        g_assert_cmpstr(c->tunnel_command, ==, "/opt/vmigrate/tunnel");
        g_assert_true(c->require_encryption);
        g_assert_cmpstr(c->tls_dir, ==, "/etc/pki/qemu");

        /* Each value knows its line. */
        g_assert_cmpint(c->origin[DAEMON_CONFIG_IDLE_TIMEOUT].kind, ==, DAEMON_CONFIG_ORIGIN_FILE);
        g_assert_cmpstr(c->origin[DAEMON_CONFIG_IDLE_TIMEOUT].file, ==, "test.conf");
        g_assert_cmpuint(c->origin[DAEMON_CONFIG_IDLE_TIMEOUT].line, ==, 4);
        g_assert_cmpuint(c->origin[DAEMON_CONFIG_SHUTDOWN_TIMEOUT].line, ==, 7);
        g_assert_cmpuint(c->origin[DAEMON_CONFIG_TLS_DIR].line, ==, 19);
        g_autofree char *where = daemon_config_origin_describe(&c->origin[DAEMON_CONFIG_TLS_DIR]);
        g_assert_cmpstr(where, ==, "test.conf:19");
}

static void test_booleans_and_levels(void) {
        static const struct {
                const char *text;
                bool value;
        } booleans[] = {
                { "yes", true }, { "YES", true },    { "true", true }, { "on", true }, { "1", true },
                { "no", false }, { "False", false }, { "off", false }, { "0", false },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(booleans); i++) {
                g_autofree char *text =
                        g_strdup_printf("[Migration]\nRequireEncryption=%s\n", booleans[i].text);
                g_autoptr(DaemonConfig) c = parse_ok(text);
                g_assert_cmpint(c->require_encryption, ==, booleans[i].value);
                assert_text(c, DAEMON_CONFIG_REQUIRE_ENCRYPTION, booleans[i].value ? "yes" : "no");
        }
        /* The log levels are log.c's: names, "error", digits. */
        g_autoptr(DaemonConfig) a = parse_ok("[Daemon]\nLogLevel=error\n");
        g_assert_cmpint(a->log_level, ==, LOG_ERR);
        assert_text(a, DAEMON_CONFIG_LOG_LEVEL, "err");
        g_autoptr(DaemonConfig) b = parse_ok("[Daemon]\nLogLevel=5\n");
        assert_text(b, DAEMON_CONFIG_LOG_LEVEL, "notice");
}

static void test_refused(void) {
        parse_refused("[Migration]\nMaxOutgoingMigrations=abc\n",
                      "test.conf:2: [Migration] MaxOutgoingMigrations=abc: not a number from 0 to 1000 (0: "
                      "no limit)");
        parse_refused(
                "[Migration]\nMaxIncomingMigrations=1001\n",
                "test.conf:2: [Migration] MaxIncomingMigrations=1001: not a number from 0 to 1000 (0: no "
                "limit)");
        parse_refused(
                "[Migration]\nHookTimeoutSec=0\n",
                "test.conf:2: [Migration] HookTimeoutSec=0: not a whole number of seconds from 1 to 3600");
        parse_refused(
                "[Domains]\nShutdownTimeoutSec=0\n",
                "test.conf:2: [Domains] ShutdownTimeoutSec=0: not a whole number of seconds (1 or more)");
        parse_refused("[Daemon]\nIdleTimeoutSec=-1\n",
                      "test.conf:2: [Daemon] IdleTimeoutSec=-1: not a whole number of seconds (0 or more)");
        parse_refused(
                "[Daemon]\nIdleTimeoutSec=2min\n",
                "test.conf:2: [Daemon] IdleTimeoutSec=2min: not a whole number of seconds (0 or more)");
        parse_refused(
                "[Daemon]\nLogLevel=loud\n",
                "test.conf:2: [Daemon] LogLevel=loud: not a log level (emerg, alert, crit, err, warning, "
                "notice, info or debug)");
        parse_refused(
                "[Domains]\nDisplayPorts=6000-5999\n",
                "test.conf:2: [Domains] DisplayPorts=6000-5999: not MIN-MAX with 1 <= MIN <= MAX <= 65535 "
                "(e.g. 5900-5999)");
        parse_refused("[Domains]\nNetworksDirectory=networks.d\n",
                      "test.conf:2: [Domains] NetworksDirectory=networks.d: not an absolute path (in UTF-8, "
                      "without "
                      "control characters)");
        parse_refused("[Migration]\nTunnelCommand=/usr/bin/vmigrate-tunnel;reboot\n",
                      "test.conf:2: [Migration] TunnelCommand=/usr/bin/vmigrate-tunnel;reboot: not an "
                      "absolute path "
                      "without spaces or shell characters");
        parse_refused("[Migration]\nTunnelCommand=/a\\sb\n",
                      "test.conf:2: [Migration] TunnelCommand=/a\\sb: not an absolute path without spaces "
                      "or shell "
                      "characters");
        parse_refused(
                "[Migration]\nRequireEncryption=maybe\n",
                "test.conf:2: [Migration] RequireEncryption=maybe: not a boolean (yes, no, true, false, on, "
                "off, 1 or 0)");
        parse_refused(
                "[TLS]\nDirectory=/etc/pki/\\x\n",
                "test.conf:2: [TLS] Directory=/etc/pki/\\x: a '\\' that is none of the escapes \\s, \\n, "
                "\\t, \\r and \\\\");
}

static void test_refused_structure(void) {
        parse_refused("[Daemon]\n\n[Deamon]\nLogLevel=debug\n",
                      "test.conf:3: unknown group [Deamon] (there are [Daemon], [Domains], [Migration] and "
                      "[TLS])");
        parse_refused(
                "[Daemon]\nLogLevels=debug\n",
                "test.conf:2: [Daemon] LogLevels=debug: unknown key (those of [Daemon]: IdleTimeoutSec, "
                "LogLevel)");
        parse_refused(
                "[Daemon]\nHooksDirectory=/srv/hooks\n",
                "test.conf:2: [Daemon] HooksDirectory=/srv/hooks: unknown key in [Daemon]; HooksDirectory "
                "belongs in [Migration]");
        /* A translation is no way around the check. */
        parse_refused(
                "[Daemon]\nLogLevel[de]=debug\n",
                "test.conf:2: [Daemon] LogLevel[de]=debug: unknown key (those of [Daemon]: IdleTimeoutSec, "
                "LogLevel)");
        parse_refused("LogLevel=debug\n[Daemon]\n",
                      "test.conf:1: 'LogLevel=debug' comes before any [Group] line");
        parse_refused("[Daemon]\nLogLevel debug\n",
                      "test.conf:2: 'LogLevel debug' is not a [Group] line, a Key=value line, a # comment "
                      "or blank");
        parse_refused("[Daemon] # the daemon\n",
                      "test.conf:1: '[Daemon] # the daemon' is not a [Group] line, a Key=value line, a # "
                      "comment or "
                      "blank");
        parse_refused("[Daemon\n",
                      "test.conf:1: '[Daemon' is not a [Group] line, a Key=value line, a # comment or "
                      "blank");
        parse_refused("[Daemon]\n=debug\n",
                      "test.conf:2: '=debug' is not a [Group] line, a Key=value line, a # comment or blank");

        /* NUL bytes and invalid UTF-8: named, and the message stays UTF-8. */
        g_autoptr(DaemonConfig) c = daemon_config_new();
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(daemon_config_parse(c, "test.conf", "[Daemon]\n\0", 10, &error), <, 0);
        g_assert_cmpstr(error->message, ==, "test.conf: contains a NUL byte: not a text file");
        g_clear_error(&error);
        g_assert_cmpint(parse(c, "[Domains]\nNetworksDirectory=/srv/\xff\n", &error), <, 0);
        g_assert_cmpstr(error->message, ==,
                        "test.conf:2: [Domains] NetworksDirectory=/srv/\xef\xbf\xbd: not valid UTF-8");
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
        g_clear_error(&error);
        g_assert_cmpint(parse(c, "[Dae\x01mon]\n", &error), <, 0);
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
        g_assert_null(strchr(error->message, '\x01'));
}

static void test_later_wins(void) {
        /* In one file: the last assignment, every one checked. */
        g_autoptr(DaemonConfig) c =
                parse_ok("[Migration]\nMaxOutgoingMigrations=3\n[Daemon]\nLogLevel=debug\n"
                         "[Migration]\nMaxOutgoingMigrations=5\n");
        g_assert_cmpuint(c->max_outgoing, ==, 5);
        g_assert_cmpuint(c->origin[DAEMON_CONFIG_MAX_OUTGOING].line, ==, 6);
        parse_refused(
                "[Migration]\nMaxOutgoingMigrations=lots\nMaxOutgoingMigrations=5\n",
                "test.conf:2: [Migration] MaxOutgoingMigrations=lots: not a number from 0 to 1000 (0: no "
                "limit)");

        /* An empty assignment puts the default back (systemd's way). */
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(parse(c, "[Migration]\nMaxOutgoingMigrations=\n", &error), ==, 0);
        g_assert_cmpuint(c->max_outgoing, ==, MANAGER_DEFAULT_MAX_MIGRATIONS);
        g_assert_cmpint(c->origin[DAEMON_CONFIG_MAX_OUTGOING].kind, ==, DAEMON_CONFIG_ORIGIN_FILE);
        g_assert_cmpuint(c->log_level, ==, LOG_DEBUG); /* untouched */
}

static void test_escapes(void) {
        /* GKeyFile's escapes, blanks at the end of a line dropped. */
        g_autoptr(DaemonConfig) c = parse_ok("[Migration]\nHooksDirectory=/srv/a\\\\b\\s\n"
                                             "PoliciesDirectory=/srv/with space   \t\n");
        g_assert_cmpstr(c->hooks_dir, ==, "/srv/a\\b ");
        g_assert_cmpstr(c->policies_dir, ==, "/srv/with space");
}

/* The command line and the file go through the same rule: the same value
 * is refused with the same words in both places. */
static void test_command_line_same_rules(void) {
        static const char *const cases[][2] = {
                { "max-outgoing-migrations", "x" },
                { "hook-timeout", "4000" },
                { "idle-timeout", "" },
                { "display-ports", "1" },
                { "tls-dir", "rel" },
                { "tunnel-command", "/a|b" },
                { "log-level", "chatty" },
                { "require-encryption", "perhaps" },
                { "shutdown-timeout", "0" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                int k = daemon_config_key_from_option(cases[i][0]);
                const DaemonConfigKeyInfo *info = daemon_config_key_info(k);
                g_autoptr(DaemonConfig) cmdline = daemon_config_new();
                g_autoptr(DaemonConfig) file = daemon_config_new();
                g_autoptr(GError) cmd_error = NULL, file_error = NULL;
                g_autofree char *text =
                        g_strdup_printf("[%s]\n%s=%s\n", info->group, info->name, cases[i][1]);
                g_autofree char *prefix =
                        g_strdup_printf("test.conf:2: [%s] %s=%s: ", info->group, info->name, cases[i][1]);

                g_assert_cmpint(k, >=, 0);
                g_assert_cmpint(daemon_config_set(cmdline, k, cases[i][1], &command_line, &cmd_error), <, 0);
                if (!*cases[i][1])
                        continue; /* "Key=" in a file is the default */
                g_assert_cmpint(parse(file, text, &file_error), <, 0);
                g_assert_true(g_str_has_prefix(file_error->message, prefix));
                g_assert_cmpstr(file_error->message + strlen(prefix), ==, cmd_error->message);
        }
}

static void test_override(void) {
        g_autoptr(DaemonConfig) cmdline = daemon_config_new();
        g_autoptr(DaemonConfig) c = parse_ok("[Daemon]\nIdleTimeoutSec=600\nLogLevel=debug\n");

        g_assert_cmpint(daemon_config_set(cmdline, DAEMON_CONFIG_IDLE_TIMEOUT, "0", &command_line, NULL), ==,
                        0);
        g_assert_cmpint(daemon_config_set(cmdline, DAEMON_CONFIG_HOOKS_DIR, "/srv/h", &command_line, NULL),
                        ==, 0);
        daemon_config_override(c, cmdline);
        g_assert_cmpuint(c->idle_timeout_usec, ==, 0);
        g_assert_cmpint(c->origin[DAEMON_CONFIG_IDLE_TIMEOUT].kind, ==, DAEMON_CONFIG_ORIGIN_COMMAND_LINE);
        g_assert_cmpint(c->overridden[DAEMON_CONFIG_IDLE_TIMEOUT].kind, ==, DAEMON_CONFIG_ORIGIN_FILE);
        g_assert_cmpuint(c->overridden[DAEMON_CONFIG_IDLE_TIMEOUT].line, ==, 2);
        g_assert_cmpstr(c->hooks_dir, ==, "/srv/h");
        g_assert_cmpint(c->overridden[DAEMON_CONFIG_HOOKS_DIR].kind, ==, DAEMON_CONFIG_ORIGIN_DEFAULT);
        /* What the command line does not name stays the file's. */
        g_assert_cmpint(c->log_level, ==, LOG_DEBUG);
        g_assert_cmpint(c->origin[DAEMON_CONFIG_LOG_LEVEL].kind, ==, DAEMON_CONFIG_ORIGIN_FILE);

        g_autofree char *text = daemon_config_format(c);
        g_assert_nonnull(strstr(text, "\n# command line (overrides test.conf:2)\nIdleTimeoutSec=0\n"));
        g_assert_nonnull(strstr(text, "\n# command line\nHooksDirectory=/srv/h\n"));
        g_assert_nonnull(strstr(text, "\n# test.conf:3\nLogLevel=debug\n"));
}

/* --show-config's text is a configuration file that means the same. */
static void test_format_round_trip(void) {
        g_autoptr(DaemonConfig) c = parse_ok("[Migration]\nHooksDirectory=/srv/odd\\\\path  \\s\n"
                                             "RequireEncryption=on\n[Daemon]\nLogLevel=7\n");
        g_autofree char *text = daemon_config_format(c);
        g_autoptr(DaemonConfig) back = daemon_config_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GKeyFile) kf = g_key_file_new();

        g_test_message("%s", text);
        g_assert_cmpint(daemon_config_parse(back, "shown.conf", text, strlen(text), &error), ==, 0);
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                g_assert_true(daemon_config_key_equal(c, back, k));
                /* Every key is written, so every origin is the file's. */
                g_assert_cmpint(back->origin[k].kind, ==, DAEMON_CONFIG_ORIGIN_FILE);
        }
        g_assert_cmpstr(back->hooks_dir, ==, "/srv/odd\\path   ");
        /* GKeyFile reads it as a whole too, every key in its group. */
        g_assert_true(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, NULL));
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                const DaemonConfigKeyInfo *info = daemon_config_key_info(k);
                g_assert_true(g_key_file_has_key(kf, info->group, info->name, NULL));
        }
        g_assert_nonnull(strstr(text, "# Files read: none.\n"));
}

/* ---- files on disk ---- */

typedef struct {
        char *root;
} Tree;

static void tree_setup(Tree *t, gconstpointer data) {
        t->root = g_dir_make_tmp("vmigrate-config-XXXXXX", NULL);
        g_assert_nonnull(t->root);
}

static void remove_tree(const char *path) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(path, name, NULL);
                if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(p);
                else
                        g_unlink(p);
        }
        g_rmdir(path);
}

static void tree_teardown(Tree *t, gconstpointer data) {
        remove_tree(t->root);
        g_free(t->root);
}

/* dir: 0 the admin's (<sysconfdir>/vmigrate), 1 /run's, 2 the vendor's. */
static char *tree_path(Tree *t, int dir, const char *name) {
        return g_build_filename(t->root, daemon_config_search_dirs()[dir], name, NULL);
}

static void tree_put(Tree *t, int dir, const char *name, const char *text) {
        g_autofree char *path = tree_path(t, dir, name);
        g_autofree char *parent = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void test_search_dirs(void) {
        const char *const *dirs = daemon_config_search_dirs();

        g_assert_cmpstr(dirs[0], ==, VMIGRATE_CONF_DIR);
        g_assert_cmpstr(dirs[1], ==, "/run/vmigrate");
        g_assert_cmpstr(dirs[2], ==, VMIGRATE_VENDOR_CONF_DIR);
        g_assert_null(dirs[3]);
}

static void test_no_files(Tree *t, gconstpointer data) {
        g_autoptr(DaemonConfig) c = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, &error), ==, 0);
        g_assert_cmpuint(c->files->len, ==, 0);
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                g_assert_cmpint(c->origin[k].kind, ==, DAEMON_CONFIG_ORIGIN_DEFAULT);
}

static void test_precedence(Tree *t, gconstpointer data) {
        g_autoptr(DaemonConfig) c = NULL;
        g_autoptr(GError) error = NULL;

        /* The vendor's main file is read only when the admin has none. */
        tree_put(t, 2, "vmigrated.conf", "[Daemon]\nLogLevel=debug\nIdleTimeoutSec=5\n");
        tree_put(t, 0, "vmigrated.conf",
                 "[Daemon]\nIdleTimeoutSec=7\n[Migration]\nMaxOutgoingMigrations=3\n");
        /* Drop-ins win over the main file, in the order of their names
         * whatever their directory; /etc's masks the same name elsewhere. */
        tree_put(t, 2, "vmigrated.conf.d/50-vendor.conf", "[Migration]\nMaxOutgoingMigrations=4\n");
        tree_put(t, 1, "vmigrated.conf.d/60-runtime.conf", "[Migration]\nMaxOutgoingMigrations=6\n");
        tree_put(t, 2, "vmigrated.conf.d/70-masked.conf", "[Migration]\nMaxIncomingMigrations=9\n");
        tree_put(t, 0, "vmigrated.conf.d/70-masked.conf", "");
        tree_put(t, 1, "vmigrated.conf.d/80-masked.conf", "[Daemon]\nLogLevel=banana\n");
        tree_put(t, 0, "vmigrated.conf.d/80-masked.conf", "[Daemon]\nLogLevel=notice\n");
        tree_put(t, 0, "vmigrated.conf.d/10-early.conf", "[Migration]\nMaxIncomingMigrations=1\n");
        /* Not drop-ins: other suffixes, hidden files. */
        tree_put(t, 0, "vmigrated.conf.d/90-x.conf.dpkg-old", "[Nonsense]\n");
        tree_put(t, 0, "vmigrated.conf.d/.90-x.conf", "[Nonsense]\n");

        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpuint(c->files->len, ==, 6);
        g_autofree char *main_file = tree_path(t, 0, "vmigrated.conf");
        g_autofree char *early = tree_path(t, 0, "vmigrated.conf.d/10-early.conf");
        g_autofree char *vendor = tree_path(t, 2, "vmigrated.conf.d/50-vendor.conf");
        g_autofree char *runtime = tree_path(t, 1, "vmigrated.conf.d/60-runtime.conf");
        g_autofree char *masked70 = tree_path(t, 0, "vmigrated.conf.d/70-masked.conf");
        g_autofree char *masked80 = tree_path(t, 0, "vmigrated.conf.d/80-masked.conf");
        const char *expected[] = { main_file, early, vendor, runtime, masked70, masked80 };
        for (guint i = 0; i < c->files->len; i++)
                g_assert_cmpstr(c->files->pdata[i], ==, expected[i]);

        g_assert_cmpuint(c->idle_timeout_usec, ==, 7 * G_USEC_PER_SEC);
        g_assert_cmpint(c->log_level, ==, LOG_NOTICE); /* not the vendor main file's debug */
        g_assert_cmpuint(c->max_outgoing, ==, 6);
        g_assert_cmpstr(c->origin[DAEMON_CONFIG_MAX_OUTGOING].file, ==, runtime);
        g_assert_cmpuint(c->max_incoming, ==, 1);

        g_autofree char *text = daemon_config_format(c);
        g_autofree char *listed = g_strdup_printf("#   %s\n#   %s\n", main_file, early);
        g_assert_nonnull(strstr(text, listed));
}

static void test_vendor_main_file(Tree *t, gconstpointer data) {
        g_autoptr(DaemonConfig) c = NULL;

        tree_put(t, 2, "vmigrated.conf", "[Daemon]\nLogLevel=debug\n");
        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, NULL), ==, 0);
        g_assert_cmpint(c->log_level, ==, LOG_DEBUG);
        g_clear_pointer(&c, daemon_config_free);
        /* /run's comes before it. */
        tree_put(t, 1, "vmigrated.conf", "[Daemon]\nLogLevel=warning\n");
        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, NULL), ==, 0);
        g_assert_cmpint(c->log_level, ==, LOG_WARNING);
}

static void test_masked_by_dev_null(Tree *t, gconstpointer data) {
        g_autoptr(DaemonConfig) c = NULL;
        g_autofree char *link = tree_path(t, 0, "vmigrated.conf.d/50-x.conf");

        tree_put(t, 2, "vmigrated.conf.d/50-x.conf", "[Daemon]\nLogLevel=debug\n");
        tree_put(t, 0, "vmigrated.conf.d/10-y.conf", "");
        g_assert_cmpint(symlink("/dev/null", link), ==, 0);
        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, NULL), ==, 0);
        g_assert_cmpint(c->log_level, ==, LOG_INFO);
}

static void test_bad_file_refuses_all(Tree *t, gconstpointer data) {
        g_autoptr(DaemonConfig) c = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *bad = tree_path(t, 0, "vmigrated.conf.d/20-bad.conf");
        g_autofree char *expected =
                g_strdup_printf("%s:3: [Migration] MaxOutgoingMigrations=abc: not a number from "
                                "0 to 1000 (0: no limit)",
                                bad);

        tree_put(t, 0, "vmigrated.conf", "[Migration]\nMaxOutgoingMigrations=3\n");
        tree_put(t, 0, "vmigrated.conf.d/20-bad.conf", "[Migration]\n# oops\nMaxOutgoingMigrations=abc\n");
        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, &error), <, 0);
        g_assert_null(c);
        g_assert_cmpstr(error->message, ==, expected);
}

static void test_unreadable(Tree *t, gconstpointer data) {
        g_autoptr(DaemonConfig) c = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = tree_path(t, 0, "vmigrated.conf.d/50-dir.conf");

        /* A directory where a drop-in should be cannot be read: refused. */
        g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
        g_assert_cmpint(daemon_config_load_effective(t->root, NULL, &c, &error), <, 0);
        g_assert_nonnull(strstr(error->message, "50-dir.conf"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/daemon-config/defaults", test_defaults);
        g_test_add_func("/daemon-config/keys-table", test_keys_table);
        g_test_add_func("/daemon-config/parse-values", test_parse_values);
        g_test_add_func("/daemon-config/booleans-and-levels", test_booleans_and_levels);
        g_test_add_func("/daemon-config/refused", test_refused);
        g_test_add_func("/daemon-config/refused-structure", test_refused_structure);
        g_test_add_func("/daemon-config/later-wins", test_later_wins);
        g_test_add_func("/daemon-config/escapes", test_escapes);
        g_test_add_func("/daemon-config/command-line-same-rules", test_command_line_same_rules);
        g_test_add_func("/daemon-config/override", test_override);
        g_test_add_func("/daemon-config/format-round-trip", test_format_round_trip);
        g_test_add_func("/daemon-config/search-dirs", test_search_dirs);
        g_test_add("/daemon-config/no-files", Tree, NULL, tree_setup, test_no_files, tree_teardown);
        g_test_add("/daemon-config/precedence", Tree, NULL, tree_setup, test_precedence, tree_teardown);
        g_test_add("/daemon-config/vendor-main-file", Tree, NULL, tree_setup, test_vendor_main_file,
                   tree_teardown);
        g_test_add("/daemon-config/masked-by-dev-null", Tree, NULL, tree_setup, test_masked_by_dev_null,
                   tree_teardown);
        g_test_add("/daemon-config/bad-file-refuses-all", Tree, NULL, tree_setup, test_bad_file_refuses_all,
                   tree_teardown);
        g_test_add("/daemon-config/unreadable", Tree, NULL, tree_setup, test_unreadable, tree_teardown);
        return g_test_run();
}
