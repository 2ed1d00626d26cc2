/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "bus-errors.h"
#include "bus-util.h"
#include "config.h"
#include "daemon.h"
#include "display-ports.h"
#include "domain-dbus.h"
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

/* vmigrate-tunnel, where the package installs it on every host. */
#define DEFAULT_TUNNEL_COMMAND VMIGRATE_LIBEXECDIR "/vmigrate-tunnel"

typedef struct Arguments {
        char *state_dir;
        char *runtime_dir;
        uint64_t idle_timeout_usec;
        uint64_t shutdown_timeout_usec;
        unsigned max_outgoing;
        unsigned max_incoming;
        char *hooks_dir;
        char *networks_dir;
        char *policies_dir;
        uint64_t hook_timeout_usec;
        char *tls_dir;
        bool require_encryption;
        char *tunnel_command;
} Arguments;

static void arguments_clear(Arguments *args) {
        g_free(args->state_dir);
        g_free(args->runtime_dir);
        g_free(args->hooks_dir);
        g_free(args->networks_dir);
        g_free(args->policies_dir);
        g_free(args->tls_dir);
        g_free(args->tunnel_command);
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
};

static void print_help(void) {
        printf("Usage: vmigrated [OPTIONS]\n"
               "\n"
               "The vmigrate daemon: publishes the virtual machines (domains) of this host on the\n"
               "system bus as org.vmigrate.Migrate1, runs them through a backend, and asks polkit\n"
               "before any change. It is normally started by D-Bus activation or by systemd\n"
               "(vmigrated.service), not by hand.\n"
               "\n"
               "Options:\n"
               "  --state-dir=DIR      Persistent state: domain definitions (DIR/domains/<uuid>.xml)\n"
               "                       and the host UUID (DIR/host-uuid).\n"
               "                       Default: $STATE_DIRECTORY, else %s\n"
               "  --runtime-dir=DIR    Runtime state of running domains.\n"
               "                       Default: $RUNTIME_DIRECTORY, else %s\n"
               "  --idle-timeout=SECS  Exit after SECS seconds with no domain running and no call\n"
               "                       in progress; the next call activates the daemon again.\n"
               "                       0 (the default) never exits on idle.\n"
               "  --shutdown-timeout=SECS\n"
               "                       How long Domain.Shutdown() waits for the guest to power\n"
               "                       off before destroying it (default 120; ShutdownWithTimeout\n"
               "                       lets a caller choose per call).\n"
               "  --max-outgoing-migrations=N\n"
               "  --max-incoming-migrations=N\n"
               "                       How many migrations may leave (arrive at) this host at once;\n"
               "                       one more is refused with LimitReached. Default 2; 0 means\n"
               "                       no limit.\n"
               "  --hooks-dir=DIR      Admin hooks run on a migration's destination (like libvirt's\n"
               "                       qemu hook): DIR/<name> <domain> migrate prepare|finish|abort,\n"
               "                       the domain XML on stdin. Only root-owned executables not\n"
               "                       writable by group or others are run. Default: %s\n"
               "  --networks-dir=DIR   The bridge each <interface type='network'> attaches to: the\n"
               "                       file DIR/<network> names it (echo br0 > DIR/lan). Without a\n"
               "                       file, network 'default' is virbr0 (libvirt's). Read at each\n"
               "                       start and migration. Default: %s\n"
               "  --policies-dir=DIR   Convergence policies an admin adds or overrides, one\n"
               "                       DIR/NAME.policy each (option 'policy'; GetPolicies lists\n"
               "                       them). Read at each migration. Default: %s\n"
               "  --hook-timeout=SECS  A hook still running after SECS seconds is killed and has\n"
               "                       failed (default 30).\n"
               "  --tls-dir=DIR        TLS credentials for migrations with option 'tls', with\n"
               "                       libvirt's file names: ca-cert.pem, server-cert.pem,\n"
               "                       server-key.pem, client-cert.pem, client-key.pem (an admin\n"
               "                       who set up libvirt's /etc/pki/qemu may point here). Read at\n"
               "                       each migration. Default: %s\n"
               "  --require-encryption Refuse to send or receive guest memory in clear text: a\n"
               "                       live migration that is neither 'tls' nor 'tunnelled' is\n"
               "                       refused with UnsupportedOption on either host.\n"
               "  --tunnel-command=PATH\n"
               "                       What a tunnelled migration to an ssh:// destination runs\n"
               "                       there, through ssh, to reach that host's vmigrated: the\n"
               "                       path of vmigrate-tunnel on the destination hosts.\n"
               "                       Default: %s\n"
               "  --display-ports=MIN-MAX\n"
               "                       The ports guests' VNC and SPICE displays with autoport\n"
               "                       take (as libvirt's remote_display_port_min/max); the\n"
               "                       migration data ports are skipped. Default: 5900-65535\n"
               "  --log-level=LEVEL    emerg, alert, crit, err, warning, notice, info (default) or\n"
               "                       debug. Logs go to stderr (the journal under systemd).\n"
               "  -h, --help           Show this help and exit.\n"
               "  --version            Show the version and exit.\n"
               "\n"
               "Environment:\n"
               "  DBUS_SYSTEM_BUS_ADDRESS  The bus to serve (default: the system bus).\n"
               "\n"
               "Signals: SIGTERM and SIGINT make the daemon release its bus name and exit.\n"
               "\n"
               "Exit status: 0 on a clean exit, 1 on a start-up failure (the reason is logged),\n"
               "2 on a usage error.\n",
               VMIGRATE_STATE_DIR, VMIGRATE_RUNTIME_DIR, VMIGRATE_HOOKS_DIR, VMIGRATE_NETWORKS_DIR,
               VMIGRATE_POLICIES_DIR, TLS_CREDS_DEFAULT_DIR,
               DEFAULT_TUNNEL_COMMAND);
}

static int parse_seconds(const char *s, uint64_t *ret_usec) {
        guint64 seconds;

        if (!g_ascii_string_to_unsigned(s, 10, 0, UINT32_MAX, &seconds, NULL))
                return -EINVAL;
        *ret_usec = seconds * G_USEC_PER_SEC;
        return 0;
}

/* Returns 1 to run, 0 to exit successfully (--help), < 0 on usage errors. */
static int parse_arguments(int argc, char *argv[], Arguments *args) {
        enum {
                ARG_STATE_DIR = 0x100,
                ARG_RUNTIME_DIR,
                ARG_IDLE_TIMEOUT,
                ARG_SHUTDOWN_TIMEOUT,
                ARG_MAX_OUTGOING,
                ARG_MAX_INCOMING,
                ARG_LOG_LEVEL,
                ARG_HOOKS_DIR,
                ARG_NETWORKS_DIR,
                ARG_POLICIES_DIR,
                ARG_HOOK_TIMEOUT,
                ARG_TLS_DIR,
                ARG_REQUIRE_ENCRYPTION,
                ARG_TUNNEL_COMMAND,
                ARG_DISPLAY_PORTS,
                ARG_VERSION,
        };
        static const struct option options[] = {
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                { "shutdown-timeout", required_argument, NULL, ARG_SHUTDOWN_TIMEOUT },
                { "max-outgoing-migrations", required_argument, NULL, ARG_MAX_OUTGOING },
                { "max-incoming-migrations", required_argument, NULL, ARG_MAX_INCOMING },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "hooks-dir", required_argument, NULL, ARG_HOOKS_DIR },
                { "networks-dir", required_argument, NULL, ARG_NETWORKS_DIR },
                { "policies-dir", required_argument, NULL, ARG_POLICIES_DIR },
                { "hook-timeout", required_argument, NULL, ARG_HOOK_TIMEOUT },
                { "tls-dir", required_argument, NULL, ARG_TLS_DIR },
                { "require-encryption", no_argument, NULL, ARG_REQUIRE_ENCRYPTION },
                { "tunnel-command", required_argument, NULL, ARG_TUNNEL_COMMAND },
                { "display-ports", required_argument, NULL, ARG_DISPLAY_PORTS },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
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
                case ARG_IDLE_TIMEOUT:
                        if (parse_seconds(optarg, &args->idle_timeout_usec) < 0) {
                                fprintf(stderr, "vmigrated: --idle-timeout takes whole seconds, not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_SHUTDOWN_TIMEOUT:
                        if (parse_seconds(optarg, &args->shutdown_timeout_usec) < 0 ||
                            args->shutdown_timeout_usec == 0) {
                                fprintf(stderr,
                                        "vmigrated: --shutdown-timeout takes whole seconds (at least 1), not "
                                        "'%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_MAX_OUTGOING:
                case ARG_MAX_INCOMING: {
                        guint64 n;
                        if (!g_ascii_string_to_unsigned(optarg, 10, 0, 1000, &n, NULL)) {
                                fprintf(stderr, "vmigrated: --%s takes a number from 0 to 1000, not '%s'\n",
                                        c == ARG_MAX_OUTGOING ? "max-outgoing-migrations" : "max-incoming-migrations",
                                        optarg);
                                return -EINVAL;
                        }
                        *(c == ARG_MAX_OUTGOING ? &args->max_outgoing : &args->max_incoming) = (unsigned) n;
                        break;
                }
                case ARG_HOOKS_DIR:
                        if (!g_path_is_absolute(optarg)) {
                                fprintf(stderr, "vmigrated: --hooks-dir needs an absolute path, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        g_free(args->hooks_dir);
                        args->hooks_dir = g_strdup(optarg);
                        break;
                case ARG_NETWORKS_DIR:
                        if (!g_path_is_absolute(optarg)) {
                                fprintf(stderr, "vmigrated: --networks-dir needs an absolute path, not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        g_free(args->networks_dir);
                        args->networks_dir = g_strdup(optarg);
                        break;
                case ARG_POLICIES_DIR:
                        if (!g_path_is_absolute(optarg)) {
                                fprintf(stderr, "vmigrated: --policies-dir needs an absolute path, not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        g_free(args->policies_dir);
                        args->policies_dir = g_strdup(optarg);
                        break;
                case ARG_HOOK_TIMEOUT:
                        if (parse_seconds(optarg, &args->hook_timeout_usec) < 0 || args->hook_timeout_usec == 0 ||
                            args->hook_timeout_usec > 3600ULL * G_USEC_PER_SEC) {
                                fprintf(stderr,
                                        "vmigrated: --hook-timeout takes whole seconds from 1 to 3600, not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_TLS_DIR:
                        if (!g_path_is_absolute(optarg)) {
                                fprintf(stderr, "vmigrated: --tls-dir needs an absolute path, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        g_free(args->tls_dir);
                        args->tls_dir = g_strdup(optarg);
                        break;
                case ARG_REQUIRE_ENCRYPTION:
                        args->require_encryption = true;
                        break;
                case ARG_TUNNEL_COMMAND:
                        /* It ends up on a remote shell's command line. */
                        if (!g_path_is_absolute(optarg) || strpbrk(optarg, " \t\n'\"\\$`;&|<>*?()[]{}~#")) {
                                fprintf(stderr,
                                        "vmigrated: --tunnel-command needs an absolute path without spaces or "
                                        "shell characters, not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        g_free(args->tunnel_command);
                        args->tunnel_command = g_strdup(optarg);
                        break;
                case ARG_DISPLAY_PORTS: {
                        g_autoptr(GError) error = NULL;
                        uint16_t min, max;

                        if (display_ports_parse_range(optarg, &min, &max, &error) < 0) {
                                fprintf(stderr, "vmigrated: --display-ports=%s\n", error->message);
                                return -EINVAL;
                        }
                        display_ports_set_range(min, max);
                        break;
                }
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                fprintf(stderr,
                                        "vmigrated: unknown log level '%s'; use emerg, alert, crit, err, "
                                        "warning, notice, info or debug\n",
                                        optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(level);
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
        if (!args->hooks_dir)
                args->hooks_dir = g_strdup(VMIGRATE_HOOKS_DIR);
        if (!args->networks_dir)
                args->networks_dir = g_strdup(VMIGRATE_NETWORKS_DIR);
        if (!args->policies_dir)
                args->policies_dir = g_strdup(VMIGRATE_POLICIES_DIR);
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

static int run(const Arguments *args) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Manager) manager = NULL;
        g_autoptr(PolkitRegistry) polkit = polkit_registry_new();
        g_autoptr(sd_event) event = NULL;
        Daemon daemon = { 0 };
        sigset_t mask;
        int r;

        r = bus_errors_register();
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        /* Child exits are watched through pidfds, or SIGCHLD where there
         * are none: sd-event wants it blocked. */
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;

        r = sd_event_default(&event);
        if (r < 0)
                return r;
        r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, &daemon);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, &daemon);
        if (r < 0)
                return r;

        r = manager_new(event, args->state_dir, args->runtime_dir, builtin_backends, n_builtin_backends, &manager,
                        &error);
        if (r < 0) {
                log_error("%s", error->message);
                return r;
        }
        manager->max_outgoing = args->max_outgoing;
        manager->max_incoming = args->max_incoming;
        manager->hooks_dir = args->hooks_dir;
        manager->networks_dir = args->networks_dir;
        manager->policies_dir = args->policies_dir;
        manager->hook_timeout_usec = args->hook_timeout_usec;
        if (args->tls_dir) {
                g_free(manager->tls_dir);
                manager->tls_dir = g_strdup(args->tls_dir);
        }
        manager->require_encryption = args->require_encryption;
        (void) manager_load_domains(manager);

        daemon.event = event;
        daemon.manager = manager;
        daemon.polkit = polkit;
        daemon.job_emit = job_emit_table_new();
        daemon.incoming_tracks = incoming_track_table_new();
        daemon.tunnel_command = args->tunnel_command ? args->tunnel_command : (char *) DEFAULT_TUNNEL_COMMAND;
        manager_set_peer_ops(manager, &peer_dbus_ops, &daemon);
        daemon.idle_timeout_usec = args->idle_timeout_usec;
        daemon.shutdown_timeout_usec = args->shutdown_timeout_usec;
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
        daemon.bus = sd_bus_flush_close_unref(daemon.bus);
        return r;
}

int main(int argc, char *argv[]) {
        g_auto(Arguments) args = {
                .shutdown_timeout_usec = 120 * G_USEC_PER_SEC,
                .max_outgoing = MANAGER_DEFAULT_MAX_MIGRATIONS,
                .max_incoming = MANAGER_DEFAULT_MAX_MIGRATIONS,
                .hook_timeout_usec = HOOK_DEFAULT_TIMEOUT_USEC,
        };
        int r;

        r = parse_arguments(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = run(&args);
        if (r < 0) {
                log_error("exiting on error: %s", g_strerror(-r));
                return 1;
        }
        return 0;
}
