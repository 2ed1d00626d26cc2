/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * vmigrated's configuration (vmigrated.conf(5)): key files read with
 * GKeyFile, in systemd's order (systemd.conf(5), "CONFIGURATION
 * DIRECTORIES AND PRECEDENCE"):
 *
 *   the main file: the first of
 *       <sysconfdir>/vmigrate/vmigrated.conf
 *       /run/vmigrate/vmigrated.conf
 *       <prefix>/lib/vmigrate/vmigrated.conf
 *   then drop-ins: every NAME.conf of
 *       <prefix>/lib/vmigrate/vmigrated.conf.d/
 *       /run/vmigrate/vmigrated.conf.d/
 *       <sysconfdir>/vmigrate/vmigrated.conf.d/
 *     one file per NAME (/etc's masks /run's, which masks /usr/lib's),
 *     read in the order of their names, whatever their directory.
 *
 * A later assignment wins; an empty one ("Key=") puts the key back to its
 * default. Every key has a command-line option of vmigrated, and a value
 * means the same in both places: both go through daemon_config_set(),
 * which holds the one rule of each key. An unknown group or key, a line
 * GKeyFile refuses, or a bad value refuses the whole configuration, with
 * the file, the line and the key named.
 *
 * No sd-bus here; the daemon applies the values (main.c).
 */
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

typedef enum DaemonConfigKey {
        /* [Daemon] */
        DAEMON_CONFIG_IDLE_TIMEOUT,
        DAEMON_CONFIG_LOG_LEVEL,
        /* [Domains] */
        DAEMON_CONFIG_SHUTDOWN_TIMEOUT,
        DAEMON_CONFIG_NETWORKS_DIR,
        DAEMON_CONFIG_DISPLAY_PORTS,
        /* [Migration] */
        DAEMON_CONFIG_MAX_OUTGOING,
        DAEMON_CONFIG_MAX_INCOMING,
        DAEMON_CONFIG_POLICIES_DIR,
        DAEMON_CONFIG_HOOKS_DIR,
        DAEMON_CONFIG_HOOK_TIMEOUT,
        DAEMON_CONFIG_TUNNEL_COMMAND,
        DAEMON_CONFIG_REQUIRE_ENCRYPTION,
        DAEMON_CONFIG_OUTGOING_BANDWIDTH,
        DAEMON_CONFIG_JOB_HISTORY_SIZE,
        /* [TLS] */
        DAEMON_CONFIG_TLS_DIR,
        _DAEMON_CONFIG_KEY_MAX,
} DaemonConfigKey;

/* Without --idle-timeout or IdleTimeoutSec=: the service's own 120 s (it
 * used to pass --idle-timeout=120 in its unit and activation file). */
#define DAEMON_CONFIG_DEFAULT_IDLE_TIMEOUT_SEC 120
#define DAEMON_CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_SEC 120

typedef struct DaemonConfigKeyInfo {
        const char *group;  /* "Daemon" */
        const char *name;   /* "IdleTimeoutSec" */
        const char *option; /* vmigrated's long option, without "--": "idle-timeout" */
        bool reloadable;    /* SIGHUP applies a new value (else: at the next start) */
        bool boolean;       /* "--option" alone means yes */
} DaemonConfigKeyInfo;

const DaemonConfigKeyInfo *daemon_config_key_info(DaemonConfigKey key);
/* The key of a long option ("idle-timeout"), or -1. */
int daemon_config_key_from_option(const char *option);

typedef enum DaemonConfigOriginKind {
        DAEMON_CONFIG_ORIGIN_DEFAULT,
        DAEMON_CONFIG_ORIGIN_FILE,
        DAEMON_CONFIG_ORIGIN_COMMAND_LINE,
} DaemonConfigOriginKind;

typedef struct DaemonConfigOrigin {
        DaemonConfigOriginKind kind;
        char *file; /* ORIGIN_FILE: the path as read */
        unsigned line;
} DaemonConfigOrigin;

/* "default", "command line" or "FILE:LINE". */
char *daemon_config_origin_describe(const DaemonConfigOrigin *origin);

typedef struct DaemonConfigPortRange {
        uint16_t min, max;
} DaemonConfigPortRange;

typedef struct DaemonConfig {
        uint64_t idle_timeout_usec; /* 0: never exit on idle */
        int log_level;              /* syslog's */
        uint64_t shutdown_timeout_usec;
        char *networks_dir;
        DaemonConfigPortRange display_ports;
        unsigned max_outgoing; /* 0: no limit */
        unsigned max_incoming;
        char *policies_dir;
        char *hooks_dir;
        uint64_t hook_timeout_usec;
        char *tunnel_command;
        bool require_encryption;
        unsigned outgoing_bandwidth_mbps; /* the link's, for sharing it; 0: not given */
        unsigned job_history_size;
        char *tls_dir;

        DaemonConfigOrigin origin[_DAEMON_CONFIG_KEY_MAX];
        /* Where a file set a key that the command line then overrode
         * (kind DEFAULT: no file did). */
        DaemonConfigOrigin overridden[_DAEMON_CONFIG_KEY_MAX];
        /* The files read, lowest precedence first. */
        GPtrArray *files;
} DaemonConfig;

/* Every key at its default. */
DaemonConfig *daemon_config_new(void);
void daemon_config_free(DaemonConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DaemonConfig, daemon_config_free)

/* Sets key from value as written after "--option=" or "Key=" (no
 * unescaping here), origin NULL meaning the default. The error
 * (VM_ERROR_INVALID_ARGUMENT) says what the value is not, e.g. "not a
 * number from 0 to 1000", without naming the value or where it was given;
 * the caller does. */
int daemon_config_set(DaemonConfig *c, DaemonConfigKey key, const char *value,
                      const DaemonConfigOrigin *origin, GError **error);
/* key's value as it would be written after "Key=" (unescaped). */
char *daemon_config_get_text(const DaemonConfig *c, DaemonConfigKey key);
bool daemon_config_key_equal(const DaemonConfig *a, const DaemonConfig *b, DaemonConfigKey key);
/* key's value and origin from src. */
void daemon_config_copy_key(DaemonConfig *dst, const DaemonConfig *src, DaemonConfigKey key);

/* Applies the assignments of one file's text (length bytes), path naming
 * it in origins and errors: "PATH:LINE: [Group] Key=value: what is wrong"
 * (or "PATH:LINE: ..." about the line, or "PATH: ..."). c is changed up
 * to the error; callers throw it away then. */
int daemon_config_parse(DaemonConfig *c, const char *path, const char *text, size_t length, GError **error);

/* The directories searched, highest precedence first, as compiled in:
 * <sysconfdir>/vmigrate, /run/vmigrate, <prefix>/lib/vmigrate. */
const char *const *daemon_config_search_dirs(void);
/* The files to read under root (NULL: "/"), lowest precedence first.
 * Missing files and directories are no error; unreadable ones are. */
int daemon_config_list_files(const char *root, GPtrArray **ret, GError **error);
/* Reads and applies every file of daemon_config_list_files(root) to c,
 * recording them in c->files. */
int daemon_config_load(DaemonConfig *c, const char *root, GError **error);
/* The keys cmdline got from the command line override c's (recording in
 * c->overridden which file the command line overrides). */
void daemon_config_override(DaemonConfig *c, const DaemonConfig *cmdline);
/* The defaults, then the files under root, then cmdline's options (NULL:
 * none): the configuration the daemon runs with. */
int daemon_config_load_effective(const char *root, const DaemonConfig *cmdline, DaemonConfig **ret,
                                 GError **error);

/* c as a configuration file (vmigrated --show-config): every group and
 * key, each preceded by a comment saying where its value comes from. */
char *daemon_config_format(const DaemonConfig *c);
