/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "bus-errors.h"
#include "bus-util.h"
#include "config.h"
#include "daemon-config.h"
#include "daemon.h"
#include "display-ports.h"
#include "domain-dbus.h"
#include "evacuation-dbus.h"
#include "incoming-dbus.h"
#include "job-dbus.h"
#include "manager-dbus.h"
#include "peer-dbus.h"
#include "errors.h"
#include "log.h"
#include "hooks.h"
#include "tls-creds.h"
#include "backends.h"
#include "migration.h"

typedef struct Arguments {
        char *state_dir;
        char *runtime_dir;
        char *config_root;   /* NULL: "/" */
        bool show_config;
        DaemonConfig *cmdline; /* the keys given as options (origin "command line") */
} Arguments;

static void arguments_clear(Arguments *args) {
        g_free(args->state_dir);
        g_free(args->runtime_dir);
        g_free(args->config_root);
        daemon_config_free(args->cmdline);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Arguments, arguments_clear)

/* The bus layer hears the core through this and turns it into signals. */
static const ManagerObserver daemon_manager_observer = {
        .domain_added = domain_observe_added,
        .domain_removed = domain_observe_removed,
        .domain_changed = domain_observe_changed,
        .domain_lifecycle = domain_observe_lifecycle,
        .job_added = job_observe_added,
        .job_changed = job_observe_changed,
        .job_ended = job_observe_ended,
        .job_removed = job_observe_removed,
        .host_changed = manager_observe_host_changed,
};

static void print_help(void) {
        const char *const *dirs = daemon_config_search_dirs();
        g_autoptr(DaemonConfig) defaults = daemon_config_new();
        g_autofree char *tunnel = daemon_config_get_text(defaults, DAEMON_CONFIG_TUNNEL_COMMAND);

        printf("Usage: vmigrated [OPTIONS]\n"
               "\n"
               "The vmigrate daemon: publishes the virtual machines (domains) of this host on the\n"
               "system bus as org.vmigrate.Migrate1, runs them through a backend, and asks polkit\n"
               "before any change. It is normally started by D-Bus activation or by systemd\n"
               "(vmigrated.service), not by hand.\n"
               "\n"
               "Each option from --idle-timeout to --tls-dir has a key in vmigrated.conf (shown in\n"
               "brackets; see vmigrated.conf(5)); an option given here overrides the files.\n"
               "\n"
               "Options:\n"
               "  --state-dir=DIR      Persistent state: domain definitions (DIR/domains/<uuid>.xml)\n"
               "                       and the host UUID (DIR/host-uuid).\n"
               "                       Default: $STATE_DIRECTORY, else %s\n"
               "  --runtime-dir=DIR    Runtime state of running domains.\n"
               "                       Default: $RUNTIME_DIRECTORY, else %s\n"
               "  --config-root=DIR    Read the configuration files below DIR instead of /: the main\n"
               "                       file is then DIR%s/vmigrated.conf, and so on.\n"
               "  --show-config        Print the configuration as a configuration file, each value's\n"
               "                       origin in a comment, and exit (0; 1 if a file is wrong).\n"
               "  --idle-timeout=SECS  [Daemon] IdleTimeoutSec. Exit after SECS seconds with no\n"
               "                       domain running and no call in progress; the next call activates\n"
               "                       the daemon again. 0 never exits on idle. Default %d.\n"
               "  --log-level=LEVEL    [Daemon] LogLevel. emerg, alert, crit, err, warning, notice,\n"
               "                       info (default) or debug. Logs go to stderr (the journal under\n"
               "                       systemd).\n"
               "  --shutdown-timeout=SECS\n"
               "                       [Domains] ShutdownTimeoutSec. How long Domain.Shutdown() waits\n"
               "                       for the guest to power off before destroying it (default %d;\n"
               "                       ShutdownWithTimeout lets a caller choose per call).\n"
               "  --networks-dir=DIR   [Domains] NetworksDirectory. The bridge each <interface\n"
               "                       type='network'> attaches to: the file DIR/<network> names it\n"
               "                       (echo br0 > DIR/lan). Without a file, network 'default' is\n"
               "                       virbr0 (libvirt's). Read at each start and migration.\n"
               "                       Default: %s\n"
               "  --display-ports=MIN-MAX\n"
               "                       [Domains] DisplayPorts. The ports guests' VNC and SPICE displays\n"
               "                       with autoport take (as libvirt's remote_display_port_min/max);\n"
               "                       the migration data ports are skipped. Default: %d-%d\n"
               "  --max-outgoing-migrations=N\n"
               "  --max-incoming-migrations=N\n"
               "                       [Migration] MaxOutgoingMigrations, MaxIncomingMigrations. How\n"
               "                       many migrations may leave (arrive at) this host at once; one\n"
               "                       more is refused with LimitReached. Default %d; 0 means no limit.\n"
               "  --policies-dir=DIR   [Migration] PoliciesDirectory. Convergence policies an admin\n"
               "                       adds or overrides, one DIR/NAME.policy each (option 'policy';\n"
               "                       GetPolicies lists them). Read at each migration. Default: %s\n"
               "  --hooks-dir=DIR      [Migration] HooksDirectory. Admin hooks run on a migration's\n"
               "                       destination (like libvirt's qemu hook): DIR/<name> <domain>\n"
               "                       migrate prepare|finish|abort, the domain XML on stdin. Only\n"
               "                       root-owned executables not writable by group or others are\n"
               "                       run. Default: %s\n"
               "  --hook-timeout=SECS  [Migration] HookTimeoutSec. A hook still running after SECS\n"
               "                       seconds is killed and has failed (default %d, at most 3600).\n"
               "  --tunnel-command=PATH\n"
               "                       [Migration] TunnelCommand. What a tunnelled migration to an\n"
               "                       ssh:// destination runs there, through ssh, to reach that\n"
               "                       host's vmigrated: the path of vmigrate-tunnel on the\n"
               "                       destination hosts. Default: %s\n"
               "  --require-encryption[=BOOL]\n"
               "                       [Migration] RequireEncryption. Refuse to send or receive guest\n"
               "                       memory in clear text: a live migration that is neither 'tls'\n"
               "                       nor 'tunnelled' is refused with UnsupportedOption on either\n"
               "                       host. =no turns off what a file turned on.\n"
               "  --outgoing-bandwidth=MBPS\n"
               "                       [Migration] OutgoingBandwidthMbps. What this host's link\n"
               "                       carries, in Mbit/s: migrations leaving at once share it fairly\n"
               "                       (each capped at its share, re-balanced as they start and end).\n"
               "                       0 (default): the fastest link the last migrations measured, if\n"
               "                       any; else no sharing is imposed.\n"
               "  --job-history-size=N [Migration] JobHistorySize. How many ended jobs this host\n"
               "                       keeps, across restarts, for ListJobHistory and 'vmigratectl\n"
               "                       history' (default %d, at most %d; 0 keeps none).\n"
               "  --tls-dir=DIR        [TLS] Directory. TLS credentials for migrations with option\n"
               "                       'tls', with libvirt's file names: ca-cert.pem,\n"
               "                       server-cert.pem, server-key.pem, client-cert.pem,\n"
               "                       client-key.pem (an admin who set up libvirt's /etc/pki/qemu\n"
               "                       may point here). Read at each migration. Default: %s\n"
               "  -h, --help           Show this help and exit.\n"
               "  --version            Show the version and exit.\n"
               "\n"
               "Configuration files (vmigrated.conf(5)): the first of %s/vmigrated.conf,\n"
               "%s/vmigrated.conf or %s/vmigrated.conf, then every NAME.conf of the\n"
               "vmigrated.conf.d/ directories of those three (a NAME in the first masks the others')\n"
               "in the order of their names; a later assignment wins, the options above win over all.\n"
               "\n"
               "Environment:\n"
               "  DBUS_SYSTEM_BUS_ADDRESS  The bus to serve (default: the system bus).\n"
               "\n"
               "Signals: SIGTERM and SIGINT make the daemon release its bus name and exit.\n"
               "SIGHUP reads the configuration files again and applies what can change while\n"
               "running; the log says what needs a restart, or why a file was refused (then\n"
               "nothing changes).\n"
               "\n"
               "Exit status: 0 on a clean exit, 1 on a start-up failure (the reason is logged;\n"
               "a configuration file that is wrong is one), 2 on a usage error.\n",
               VMIGRATE_STATE_DIR, VMIGRATE_RUNTIME_DIR, dirs[0], DAEMON_CONFIG_DEFAULT_IDLE_TIMEOUT_SEC,
               DAEMON_CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_SEC, defaults->networks_dir, defaults->display_ports.min,
               defaults->display_ports.max, MANAGER_DEFAULT_MAX_MIGRATIONS, defaults->policies_dir,
               defaults->hooks_dir, (int) (defaults->hook_timeout_usec / G_USEC_PER_SEC), tunnel,
               JOB_ARCHIVE_DEFAULT_MAX, JOB_ARCHIVE_MAX_MAX, defaults->tls_dir, dirs[0], dirs[1], dirs[2]);
}

/* Returns 1 to run, 0 to exit successfully (--help), < 0 on usage errors. */
static int parse_arguments(int argc, char *argv[], Arguments *args) {
        enum {
                ARG_STATE_DIR = 0x100,
                ARG_RUNTIME_DIR,
                ARG_CONFIG_ROOT,
                ARG_SHOW_CONFIG,
                ARG_VERSION,
                /* + the key: one option per key of the configuration */
                ARG_KEY = 0x200,
        };
        static const struct option fixed[] = {
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "config-root", required_argument, NULL, ARG_CONFIG_ROOT },
                { "show-config", no_argument, NULL, ARG_SHOW_CONFIG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
        };
        struct option options[G_N_ELEMENTS(fixed) + _DAEMON_CONFIG_KEY_MAX + 1] = {};
        const DaemonConfigOrigin command_line = { DAEMON_CONFIG_ORIGIN_COMMAND_LINE };
        size_t n = 0;
        int c;

        for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
                options[n++] = fixed[i];
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                const DaemonConfigKeyInfo *info = daemon_config_key_info(k);
                options[n++] = (struct option){ info->option, info->boolean ? optional_argument : required_argument,
                                                NULL, ARG_KEY + k };
        }
        args->cmdline = daemon_config_new();

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c >= ARG_KEY && c < ARG_KEY + _DAEMON_CONFIG_KEY_MAX) {
                        const DaemonConfigKeyInfo *info = daemon_config_key_info(c - ARG_KEY);
                        g_autoptr(GError) error = NULL;
                        const char *value = optarg ? optarg : "yes"; /* a boolean's "--option" */

                        /* The same rule as the key's in a file. */
                        if (daemon_config_set(args->cmdline, c - ARG_KEY, value, &command_line, &error) < 0) {
                                fprintf(stderr, "vmigrated: --%s=%s: %s\n", info->option, value, error->message);
                                return -EINVAL;
                        }
                        continue;
                }
                switch (c) {
                case ARG_STATE_DIR:
                case ARG_RUNTIME_DIR:
                        if (!g_path_is_absolute(optarg)) {
                                fprintf(stderr, "vmigrated: --%s needs an absolute path, not '%s'\n",
                                        c == ARG_STATE_DIR ? "state-dir" : "runtime-dir", optarg);
                                return -EINVAL;
                        }
                        g_free(c == ARG_STATE_DIR ? args->state_dir : args->runtime_dir);
                        *(c == ARG_STATE_DIR ? &args->state_dir : &args->runtime_dir) = g_strdup(optarg);
                        break;
                case ARG_CONFIG_ROOT:
                        g_free(args->config_root);
                        args->config_root = g_strdup(optarg);
                        break;
                case ARG_SHOW_CONFIG:
                        args->show_config = true;
                        break;
                case 'h':
                        print_help();
                        return 0;
                case ARG_VERSION:
                        printf("vmigrated %s\n", PACKAGE_VERSION);
                        return 0;
                case '?':
                        fprintf(stderr, "Try 'vmigrated --help'.\n");
                        return -EINVAL;
                default:
                        g_assert_not_reached();
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vmigrated: unexpected argument '%s'; it takes options only\n", argv[optind]);
                return -EINVAL;
        }

        /* systemd's StateDirectory=/RuntimeDirectory= set these. */
        if (!args->state_dir)
                args->state_dir = g_strdup(getenv("STATE_DIRECTORY") ?: VMIGRATE_STATE_DIR);
        if (!args->runtime_dir)
                args->runtime_dir = g_strdup(getenv("RUNTIME_DIRECTORY") ?: VMIGRATE_RUNTIME_DIR);
        return 1;
}

static bool daemon_is_idle(Daemon *daemon) {
        return daemon_is_quiet(daemon) && manager_is_idle(daemon->manager);
}

static int on_name_released(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Daemon *daemon = userdata;

        /* Calls sent before the release were dispatched ahead of this reply;
         * new ones go to the next activated instance. */
        daemon->name_released = true;
        daemon_check_exit(daemon);
        return 0;
}

static int on_exit_deadline(sd_event_source *s, uint64_t now, void *userdata) {
        Daemon *daemon = userdata;

        log_warning("exiting with %u call(s) still unanswered", daemon->n_deferred_replies);
        return sd_event_exit(daemon->event, 0);
}

/* Stops taking calls, lets the ones in flight finish (a Start in progress
 * gets its reply), then leaves the loop. */
static void daemon_request_exit(Daemon *daemon) {
        int r;

        if (daemon->exiting)
                return;
        daemon->exiting = true;
        (void) sd_notify(false, "STOPPING=1");
        evacuation_dbus_shutdown(daemon);
        migration_shutdown(daemon->manager);

        r = sd_event_add_time_relative(daemon->event, &daemon->exit_deadline, CLOCK_MONOTONIC,
                                       DAEMON_EXIT_DEADLINE_USEC, 0, on_exit_deadline, daemon);
        if (r < 0) {
                (void) sd_event_exit(daemon->event, 0);
                return;
        }
        r = sd_bus_release_name_async(daemon->bus, NULL, BUS_NAME, on_name_released, daemon);
        if (r < 0) {
                log_error("cannot release bus name: %s", g_strerror(-r));
                daemon->name_released = true;
        }
        daemon_check_exit(daemon);
}

static int on_idle_timer(sd_event_source *s, uint64_t now, void *userdata) {
        Daemon *daemon = userdata;
        uint64_t due = daemon->last_activity_usec + daemon->idle_timeout_usec;
        int r;

        if (daemon->exiting)
                return 0;
        if (now < due || !daemon_is_idle(daemon)) {
                if (now >= due)
                        due = now + daemon->idle_timeout_usec;
                r = sd_event_source_set_time(s, due);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return r;
        }

        log_info("idle for %" PRIu64 " s: exiting", daemon->idle_timeout_usec / G_USEC_PER_SEC);
        daemon_request_exit(daemon);
        return 0;
}

static int on_bus_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Daemon *daemon = userdata;

        /* Any traffic counts as activity for the idle timer. */
        (void) sd_event_now(daemon->event, CLOCK_MONOTONIC, &daemon->last_activity_usec);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *daemon = userdata;

        log_info("received %s: exiting", strsignal(si->ssi_signo));
        daemon_request_exit(daemon);
        return 0;
}

static int daemon_setup_bus(Daemon *daemon) {
        int r;

        r = sd_bus_open_system(&daemon->bus);
        if (r < 0)
                return log_error("cannot connect to the system bus: %s", g_strerror(-r)), r;
        (void) sd_bus_set_description(daemon->bus, "vmigrated");
        r = sd_bus_attach_event(daemon->bus, daemon->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_add_filter(daemon->bus, NULL, on_bus_message, daemon);
        if (r < 0)
                return r;
        r = manager_dbus_register(daemon);
        if (r < 0)
                return log_error("cannot register the manager object: %s", g_strerror(-r)), r;
        r = domain_dbus_register(daemon);
        if (r < 0)
                return log_error("cannot register the domain objects: %s", g_strerror(-r)), r;
        r = job_dbus_register(daemon);
        if (r < 0)
                return log_error("cannot register the job objects: %s", g_strerror(-r)), r;
        r = evacuation_dbus_register(daemon);
        if (r < 0)
                return log_error("cannot register the evacuation objects: %s", g_strerror(-r)), r;
        r = incoming_dbus_register(daemon);
        if (r < 0)
                return log_error("cannot register the Incoming interface: %s", g_strerror(-r)), r;

        return 0;
}

/* The name is the promise that calls will be answered: taken only once
 * everything is in place and every domain found at start has settled (a
 * post-copy resume sent as the activating call must find its post-copy). */
static void daemon_take_name(Daemon *daemon) {
        int r;

        daemon->settle_timer = sd_event_source_disable_unref(daemon->settle_timer);
        if (daemon->exiting)
                return;
        r = sd_bus_request_name(daemon->bus, BUS_NAME, 0);
        if (r < 0) {
                log_error("cannot own %s: %s (is another vmigrated running, or does the bus policy not allow "
                          "this user to own it?)",
                          BUS_NAME, g_strerror(-r));
                (void) sd_event_exit(daemon->event, r);
                return;
        }
        log_info("vmigrated %s ready on the bus as %s (host %s)", PACKAGE_VERSION, BUS_NAME,
                 daemon->manager->host_uuid);
        (void) sd_notify(false, "READY=1\nSTATUS=Serving org.vmigrate.Migrate1");
        /* With the domains settled and the bus ours: migrations copied but
         * never confirmed before a restart ask their destination. */
        migration_recover_unconfirmed(daemon->manager);
}

static void on_settled(Manager *m, void *userdata) {
        daemon_take_name(userdata);
}

static int on_settle_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *daemon = userdata;

        log_warning("some domains found at start have not settled after %llu s: answering calls anyway",
                    (unsigned long long) (DAEMON_SETTLE_TIMEOUT_USEC / G_USEC_PER_SEC));
        manager_when_settled(daemon->manager, NULL, NULL);
        daemon_take_name(daemon);
        return 0;
}

static int daemon_setup_name(Daemon *daemon) {
        int r;

        r = sd_event_add_time_relative(daemon->event, &daemon->settle_timer, CLOCK_MONOTONIC,
                                       DAEMON_SETTLE_TIMEOUT_USEC, 0, on_settle_timeout, daemon);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(daemon->settle_timer, "settle-timer");
        manager_when_settled(daemon->manager, on_settled, daemon);
        return 0;
}

static int daemon_setup_idle(Daemon *daemon) {
        int r;

        if (daemon->idle_timeout_usec == 0)
                return 0;
        r = sd_event_now(daemon->event, CLOCK_MONOTONIC, &daemon->last_activity_usec);
        if (r < 0)
                return r;
        r = sd_event_add_time(daemon->event, &daemon->idle_timer, CLOCK_MONOTONIC,
                              daemon->last_activity_usec + daemon->idle_timeout_usec, 0, on_idle_timer, daemon);
        if (r < 0)
                return r;
        return sd_event_source_set_description(daemon->idle_timer, "idle-timer");
}

/* The idle timer for a new timeout: gone with 0, made with the first
 * one (counting from now), moved otherwise. */
static int daemon_set_idle_timeout(Daemon *daemon, uint64_t usec) {
        int r;

        daemon->idle_timeout_usec = usec;
        if (usec == 0) {
                daemon->idle_timer = sd_event_source_disable_unref(daemon->idle_timer);
                return 0;
        }
        if (!daemon->idle_timer)
                return daemon_setup_idle(daemon);
        r = sd_event_source_set_time(daemon->idle_timer, daemon->last_activity_usec + usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(daemon->idle_timer, SD_EVENT_ONESHOT);
        return r;
}

/* Gives the manager and the daemon the values of daemon->config (the
 * strings are borrowed from it: nothing keeps them past a call, so a
 * reload may free the old configuration once this has run). */
static void daemon_apply_config(Daemon *daemon) {
        const DaemonConfig *c = daemon->config;
        Manager *m = daemon->manager;

        log_set_max_level(c->log_level);
        display_ports_set_range(c->display_ports.min, c->display_ports.max);
        daemon->shutdown_timeout_usec = c->shutdown_timeout_usec;
        daemon->tunnel_command = c->tunnel_command;
        m->max_outgoing = c->max_outgoing;
        m->max_incoming = c->max_incoming;
        m->hooks_dir = c->hooks_dir;
        m->hook_timeout_usec = c->hook_timeout_usec;
        m->networks_dir = c->networks_dir;
        m->policies_dir = c->policies_dir;
        m->require_encryption = c->require_encryption;
        m->outgoing_bandwidth = (uint64_t) c->outgoing_bandwidth_mbps * 1000 * 1000 / 8;
        job_archive_set_max(m->archive, c->job_history_size);
        /* [TLS] Directory is the manager's own copy, set once at start. */
}

/* Which file value the command line overrides, said once per start or
 * reload so that an admin editing the file learns why nothing changes. */
static void log_overridden(const DaemonConfig *c) {
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                const DaemonConfigKeyInfo *info = daemon_config_key_info(k);
                if (c->overridden[k].kind == DAEMON_CONFIG_ORIGIN_DEFAULT)
                        continue;
                g_autofree char *where = daemon_config_origin_describe(&c->overridden[k]);
                log_notice("%s: [%s] %s is overridden by --%s on vmigrated's command line", where, info->group,
                           info->name, info->option);
        }
}

/* SIGHUP: the files again, with the same command line on top. A key that
 * can change at run time changes; one that cannot keeps its value until
 * the next start, and the log says so. A file that is wrong changes
 * nothing at all. */
static void daemon_reload_config(Daemon *daemon) {
        g_autoptr(DaemonConfig) next = NULL;
        g_autoptr(GError) error = NULL;
        unsigned applied = 0, pending = 0;
        uint64_t now = 0;

        if (daemon->exiting) {
                log_info("exiting: not reloading the configuration");
                return;
        }
        (void) sd_event_now(daemon->event, CLOCK_MONOTONIC, &now);
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now);
        if (daemon_config_load_effective(daemon->config_root, daemon->cmdline, &next, &error) < 0) {
                log_error("reloading the configuration: %s; nothing changed, the configuration in effect stays",
                          error->message);
                (void) sd_notify(false, "READY=1");
                return;
        }

        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++) {
                const DaemonConfigKeyInfo *info = daemon_config_key_info(k);
                if (daemon_config_key_equal(daemon->config, next, k))
                        continue;
                g_autofree char *old = daemon_config_get_text(daemon->config, k);
                g_autofree char *new = daemon_config_get_text(next, k);
                g_autofree char *where = daemon_config_origin_describe(&next->origin[k]);
                if (!info->reloadable) {
                        log_warning("configuration: [%s] %s=%s (%s) needs a restart of vmigrated to apply; %s stays "
                                    "in effect until then",
                                    info->group, info->name, new, where, old);
                        daemon_config_copy_key(next, daemon->config, k);
                        pending++;
                        continue;
                }
                log_info("configuration: [%s] %s=%s (%s), was %s", info->group, info->name, new, where, old);
                applied++;
        }

        log_overridden(next);
        DaemonConfig *old = daemon->config;
        daemon->config = g_steal_pointer(&next);
        daemon_apply_config(daemon);
        daemon_config_free(old);
        if (daemon_set_idle_timeout(daemon, daemon->config->idle_timeout_usec) < 0)
                log_warning("cannot set the idle timer to %" PRIu64 " s", daemon->idle_timeout_usec / G_USEC_PER_SEC);
        log_info("reloaded the configuration: %u change(s) applied, %u need(s) a restart", applied, pending);
        (void) sd_notify(false, "READY=1");
}

static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("received %s: reloading the configuration", strsignal(si->ssi_signo));
        daemon_reload_config(userdata);
        return 0;
}

/* One vmigrated per state: a daemon that released its bus name is still
 * finishing its jobs when the bus may already start the next one, which
 * must not touch the guests, jobs and records until the first is gone
 * (under systemd the unit's stop comes first; a bus that activates by
 * itself does not wait). Returns the fd that holds the lock (close-on-exec:
 * QEMU must not inherit it). */
static int instance_lock(const char *runtime_dir) {
        g_autofree char *path = g_build_filename(runtime_dir, "vmigrated.lock", NULL);
        gint64 deadline = g_get_monotonic_time() + INSTANCE_LOCK_WAIT_USEC;
        bool told = false;
        int fd;

        if (g_mkdir_with_parents(runtime_dir, 0755) < 0)
                return -errno;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                if (r != -EWOULDBLOCK || g_get_monotonic_time() >= deadline) {
                        log_error("%s: another vmigrated holds it (%s)", path,
                                  r == -EWOULDBLOCK ? "still running" : g_strerror(-r));
                        close(fd);
                        return r == -EWOULDBLOCK ? -EBUSY : r;
                }
                if (!told)
                        log_info("another vmigrated is still stopping: waiting for it (at most %d s)",
                                 (int) (INSTANCE_LOCK_WAIT_USEC / G_USEC_PER_SEC));
                told = true;
                g_usleep(100 * 1000);
        }
        return fd;
}

static int run(const Arguments *args, DaemonConfig *config) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Manager) manager = NULL;
        g_autoptr(PolkitRegistry) polkit = polkit_registry_new();
        g_autoptr(sd_event) event = NULL;
        Daemon daemon = { .config = config, .cmdline = args->cmdline, .config_root = args->config_root };
        int lock_fd = -1;
        sigset_t mask;
        int r;

        r = bus_errors_register();
        if (r < 0)
                goto out;
        r = lock_fd = instance_lock(args->runtime_dir);
        if (r < 0)
                goto out;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        /* Child exits are watched through pidfds, or SIGCHLD where there
         * are none: sd-event wants it blocked. */
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                r = -errno;
                goto out;
        }

        r = sd_event_default(&event);
        if (r < 0)
                goto out;
        r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, &daemon);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, &daemon);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGHUP, on_reload_signal, &daemon);
        if (r < 0)
                goto out;

        /* Before the backends find the guests still running. */
        display_ports_set_range(config->display_ports.min, config->display_ports.max);
        r = manager_new(event, args->state_dir, args->runtime_dir, builtin_backends, n_builtin_backends, &manager,
                        &error);
        if (r < 0) {
                log_error("%s", error->message);
                goto out;
        }
        g_free(manager->tls_dir);
        manager->tls_dir = g_strdup(config->tls_dir);
        manager->breakpoints = breakpoints_new_from_env(event);

        daemon.event = event;
        daemon.manager = manager;
        daemon.polkit = polkit;
        daemon.job_emit = job_emit_table_new();
        daemon.evacuations = evacuation_table_new();
        daemon.incoming_tracks = incoming_track_table_new();
        daemon_apply_config(&daemon);
        daemon.idle_timeout_usec = config->idle_timeout_usec;
        (void) manager_load_domains(manager);

        manager_set_peer_ops(manager, &peer_dbus_ops, &daemon);
        manager_set_observer(manager, &daemon_manager_observer, &daemon);

        r = daemon_setup_bus(&daemon);
        if (r >= 0)
                r = daemon_setup_idle(&daemon);
        if (r >= 0)
                r = daemon_setup_name(&daemon);
        if (r >= 0)
                r = sd_event_loop(event);

        (void) sd_notify(false, "STOPPING=1");
        /* Tear down in dependency order: the bus (and its slots that point
         * into the registry and the manager) first. */
        daemon.idle_timer = sd_event_source_disable_unref(daemon.idle_timer);
        daemon.settle_timer = sd_event_source_disable_unref(daemon.settle_timer);
        manager_when_settled(manager, NULL, NULL);
        daemon.exit_deadline = sd_event_source_disable_unref(daemon.exit_deadline);
        manager_set_observer(manager, NULL, NULL);
        g_clear_pointer(&daemon.incoming_tracks, g_hash_table_unref);
        g_clear_pointer(&daemon.job_emit, g_hash_table_unref);
        g_clear_pointer(&daemon.evacuations, g_hash_table_unref);
        migration_recover_free(manager);
        peer_dbus_drop_connecting(&daemon);
        daemon.bus = sd_bus_flush_close_unref(daemon.bus);
        g_clear_pointer(&manager->breakpoints, breakpoints_free);
        /* The manager borrows the configuration's strings: it goes first. */
        g_clear_pointer(&manager, manager_free);
out:
        daemon_config_free(daemon.config);
        if (lock_fd >= 0)
                close(lock_fd); /* the next vmigrated may start now */
        return r;
}

int main(int argc, char *argv[]) {
        g_auto(Arguments) args = { 0 };
        g_autoptr(DaemonConfig) config = NULL;
        g_autoptr(GError) error = NULL;
        int r;

        r = parse_arguments(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        /* Nothing starts half-configured: a file that is wrong stops it. */
        if (daemon_config_load_effective(args.config_root, args.cmdline, &config, &error) < 0) {
                if (args.show_config)
                        fprintf(stderr, "vmigrated: %s\n", error->message);
                else
                        log_error("%s", error->message);
                return 1;
        }
        if (args.show_config) {
                g_autofree char *text = daemon_config_format(config);
                fputs(text, stdout);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        log_set_max_level(config->log_level);
        log_overridden(config);

        r = run(&args, g_steal_pointer(&config));
        if (r < 0) {
                log_error("exiting on error: %s", g_strerror(-r));
                return 1;
        }
        return 0;
}
