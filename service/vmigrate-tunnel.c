/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigrate-tunnel: the destination's end of a tunnelled migration. The
 * source's vmigrated runs it here through ssh; it asks this host's
 * vmigrated for a connection to the incoming QEMU and relays the stream
 * between that and ssh. All it prints goes to standard error, which ssh
 * carries back to the source and the source shows to the user: each
 * message says that this host's side failed, and why.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bus-util.h"
#include "config.h"
#include "protocol.h"
#include "tunnel-relay.h"

#define EXIT_USAGE 2
#define TUNNEL_TOKEN_MAX 64

static void print_help(void) {
        printf("Usage: vmigrate-tunnel UUID TOKEN\n"
               "\n"
               "The destination's end of a tunnelled migration (option 'tunnelled' to an ssh://\n"
               "destination). vmigrated on the source host runs it on this host through ssh,\n"
               "\n"
               "    ssh -xT HOST -- %s/vmigrate-tunnel UUID TOKEN\n"
               "\n"
               "and writes the migration stream into ssh. vmigrate-tunnel asks this host's\n"
               "vmigrated (org.vmigrate.Migrate1 on the system bus) for a connection to the\n"
               "incoming migration of domain UUID, then relays the stream both ways between\n"
               "its standard input and output and that connection until the stream ends.\n"
               "Administrators do not run it by hand: without a migration waiting for it, it\n"
               "has nothing to do.\n"
               "\n"
               "Arguments:\n"
               "  UUID     The domain's UUID: 36 characters, 8-4-4-4-12 hexadecimal digits.\n"
               "  TOKEN    The secret that shows the tunnel belongs to that migration (this\n"
               "           host's vmigrated checks it): 1 to 64 characters 0-9 a-f.\n"
               "\n"
               "Options:\n"
               "  -h, --help     Show this help and exit.\n"
               "  --version      Show the version and exit.\n"
               "\n"
               "Environment:\n"
               "  DBUS_SYSTEM_BUS_ADDRESS  The bus to find vmigrated on (default: the system bus).\n"
               "\n"
               "Exit status: 0 when the stream ended cleanly both ways; 1 when the tunnel could\n"
               "not be opened or the stream broke (the reason is on standard error, which ssh\n"
               "carries back to the source); 2 on a usage error.\n",
               VMIGRATE_LIBEXECDIR);
}

static bool tunnel_token_is_valid(const char *token) {
        size_t len = strlen(token);

        return len >= 1 && len <= TUNNEL_TOKEN_MAX && strspn(token, "0123456789abcdef") == len;
}

/* Returns 1 to run, 0 to exit successfully (--help, --version), < 0 on
 * usage errors (already reported). */
static int parse_arguments(int argc, char *argv[], const char **ret_uuid, const char **ret_token) {
        enum {
                ARG_VERSION = 0x100,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        print_help();
                        return 0;
                case ARG_VERSION:
                        printf("vmigrate-tunnel %s\n", PACKAGE_VERSION);
                        return 0;
                case '?':
                        fprintf(stderr, "Try 'vmigrate-tunnel --help'.\n");
                        return -EINVAL;
                default:
                        g_assert_not_reached();
                }
        }
        if (argc - optind != 2) {
                fprintf(stderr,
                        "vmigrate-tunnel: expects two arguments, UUID and TOKEN, not %d\n"
                        "Try 'vmigrate-tunnel --help'.\n",
                        argc - optind);
                return -EINVAL;
        }
        if (!g_uuid_string_is_valid(argv[optind])) {
                fprintf(stderr,
                        "vmigrate-tunnel: '%s' is not a UUID (36 characters, 8-4-4-4-12 hexadecimal "
                        "digits)\n",
                        argv[optind]);
                return -EINVAL;
        }
        /* Said without echoing it: it is a secret, however malformed. */
        if (!tunnel_token_is_valid(argv[optind + 1])) {
                fprintf(stderr, "vmigrate-tunnel: the token is not 1 to 64 characters 0-9 a-f\n");
                return -EINVAL;
        }
        *ret_uuid = argv[optind];
        *ret_token = argv[optind + 1];
        return 1;
}

/* Asks vmigrated for a socket connected to domain uuid's incoming
 * migration. On failure *ret_error says why, in words for the user. */
static int tunnel_open(const char *uuid, const char *token, int *ret_fd, sd_bus_error *ret_error) {
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        struct stat st;
        int r, fd;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return sd_bus_error_set_errnof(ret_error, r, "cannot connect to the system bus: %s",
                                               g_strerror(-r));

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, BUS_MANAGER_PATH, BUS_INCOMING_INTERFACE,
                                           "OpenTunnel");
        if (r >= 0)
                /* Nobody is there to answer a polkit agent: ssh has no terminal. */
                r = sd_bus_message_set_allow_interactive_authorization(m, false);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 3, "version", "u", (uint32_t) MIGRATION_COOKIE_VERSION, "uuid", "s",
                                          uuid, "tunnel-token", "s", token);
        if (r < 0)
                return sd_bus_error_set_errnof(ret_error, r, "cannot build the OpenTunnel call: %s",
                                               g_strerror(-r));

        r = sd_bus_call(bus, m, 0, ret_error, &reply);
        if (r < 0) {
                if (!sd_bus_error_is_set(ret_error))
                        return sd_bus_error_set_errno(ret_error, r);
                return r;
        }

        if (!sd_bus_message_has_signature(reply, "h"))
                return sd_bus_error_setf(
                        ret_error, SD_BUS_ERROR_INVALID_SIGNATURE,
                        "vmigrated replied to OpenTunnel with '%s', not a file descriptor ('h')",
                        sd_bus_message_get_signature(reply, true));
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return sd_bus_error_set_errnof(
                        ret_error, r, "cannot read vmigrated's reply to OpenTunnel: %s", g_strerror(-r));
        /* Found out now rather than at the end of a stream of GBs, when the
         * relay shuts down its sending side. */
        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return sd_bus_error_setf(
                        ret_error, SD_BUS_ERROR_INCONSISTENT_MESSAGE,
                        "vmigrated replied to OpenTunnel with a file descriptor that is not a socket");

        /* The reply owns fd. At 3 or above: 0, 1 and 2 are ssh's, even if closed. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return sd_bus_error_set_errnof(ret_error, errno, "cannot keep the tunnel's socket: %s",
                                               g_strerror(errno));
        *ret_fd = fd;
        return 0;
}

static int ignore_sigpipe(void) {
        struct sigaction sa = { .sa_handler = SIG_IGN };

        if (sigaction(SIGPIPE, &sa, NULL) < 0)
                return -errno;
        return 0;
}

int main(int argc, char *argv[]) {
        g_auto(sd_bus_error) bus_error = SD_BUS_ERROR_NULL;
        g_autoptr(GError) error = NULL;
        const char *uuid, *token;
        int r, sock_fd = -1;

        r = parse_arguments(argc, argv, &uuid, &token);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        r = tunnel_open(uuid, token, &sock_fd, &bus_error);
        if (r < 0) {
                fprintf(stderr, "vmigrate-tunnel: cannot open the tunnel on this host: %s (%s)\n",
                        bus_error.message ?: g_strerror(-r), bus_error.name ?: "no error name");
                return EXIT_FAILURE;
        }

        /* A write to ssh after it has gone must fail with EPIPE, which the
         * relay reports, not kill us silently. */
        r = ignore_sigpipe();
        if (r < 0) {
                fprintf(stderr, "vmigrate-tunnel: cannot ignore SIGPIPE: %s\n", g_strerror(-r));
                (void) close(sock_fd);
                return EXIT_FAILURE;
        }

        /* Connected: say so before the first byte of the stream (protocol.h). */
        static const unsigned char ready = TUNNEL_READY_BYTE;
        ssize_t n;
        do
                n = write(STDOUT_FILENO, &ready, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
                fprintf(stderr, "vmigrate-tunnel: cannot tell the source the tunnel is open: %s\n",
                        n < 0 ? g_strerror(errno) : "short write");
                (void) close(sock_fd);
                return EXIT_FAILURE;
        }

        r = tunnel_relay(STDIN_FILENO, STDOUT_FILENO, sock_fd, &error);
        (void) close(sock_fd);
        if (r < 0) {
                fprintf(stderr, "vmigrate-tunnel: %s\n", error->message);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
