/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: where to connect (--host), connecting, turning replies into
 * GVariants, and turning errors into messages and exit codes.
 */

#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

void ctl_host_clear(CtlHost *host) {
        g_clear_pointer(&host->path, g_free);
        g_clear_pointer(&host->remote, g_free);
        host->kind = CTL_HOST_LOCAL;
}

/* Host names are passed to ssh: refuse anything that could be read as an option or a second argument. */
static bool hostname_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isalnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
                        return false;
        return true;
}

static bool ipv6_literal_is_valid(const char *s, size_t n) {
        /* s includes the brackets */
        if (n < 4 || s[0] != '[' || s[n - 1] != ']')
                return false;
        for (size_t i = 1; i < n - 1; i++)
                if (!g_ascii_isxdigit(s[i]) && s[i] != ':' && s[i] != '.')
                        return false;
        return true;
}

static bool username_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 64 || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isalnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
                        return false;
        return true;
}

/* Parses "[user@]host[:port]"; default_user is used when no user is given. */
static int parse_ssh_authority(const char *uri, const char *authority, const char *default_user,
                               char **ret_remote, char **ret_error) {
        g_autofree char *user = NULL;
        const char *at, *hostpart, *port = NULL;
        size_t hostlen;

        if (*authority == '\0') {
                *ret_error = g_strdup_printf(
                        "'%s': host name is missing (expected ssh://[user@]host[:port])", uri);
                return -EINVAL;
        }
        if (strpbrk(authority, "/?#")) {
                *ret_error = g_strdup_printf("'%s': a path, query or fragment is not allowed after the host "
                                             "(expected ssh://[user@]host[:port])",
                                             uri);
                return -EINVAL;
        }

        at = strrchr(authority, '@');
        if (at) {
                if (!username_is_valid(authority, at - authority)) {
                        *ret_error = g_strdup_printf("'%s': invalid user name '%.*s'", uri,
                                                     (int)(at - authority), authority);
                        return -EINVAL;
                }
                user = g_strndup(authority, at - authority);
                hostpart = at + 1;
        } else {
                user = g_strdup(default_user);
                hostpart = authority;
        }

        if (hostpart[0] == '[') {
                const char *rb = strchr(hostpart, ']');
                if (!rb || !ipv6_literal_is_valid(hostpart, rb - hostpart + 1)) {
                        *ret_error =
                                g_strdup_printf("'%s': invalid IPv6 address literal '%s'", uri, hostpart);
                        return -EINVAL;
                }
                hostlen = rb - hostpart + 1;
                if (rb[1] == ':')
                        port = rb + 2;
                else if (rb[1] != '\0') {
                        *ret_error =
                                g_strdup_printf("'%s': unexpected '%s' after the IPv6 address", uri, rb + 1);
                        return -EINVAL;
                }
        } else {
                const char *colon = strchr(hostpart, ':');
                hostlen = colon ? (size_t)(colon - hostpart) : strlen(hostpart);
                if (colon)
                        port = colon + 1;
                if (!hostname_is_valid(hostpart, hostlen)) {
                        if (hostlen == 0)
                                *ret_error = g_strdup_printf("'%s': host name is missing", uri);
                        else
                                *ret_error =
                                        g_strdup_printf("'%s': invalid host name '%.*s' (letters, digits, "
                                                        "'-', '.', '_'; not starting with '-')",
                                                        uri, (int)hostlen, hostpart);
                        return -EINVAL;
                }
        }

        if (port) {
                guint64 v = 0;
                if (*port == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
                    (v = g_ascii_strtoull(port, NULL, 10)) < 1 || v > 65535) {
                        *ret_error = g_strdup_printf("'%s': invalid port '%s' (expected a number 1-65535)",
                                                     uri, port);
                        return -EINVAL;
                }
                *ret_remote = g_strdup_printf("%s@%.*s:%" G_GUINT64_FORMAT, user, (int)hostlen, hostpart, v);
        } else
                *ret_remote = g_strdup_printf("%s@%.*s", user, (int)hostlen, hostpart);
        return 0;
}

int ctl_host_parse(const char *uri, CtlHost *ret_host, char **ret_error) {
        g_autofree char *error = NULL;
        const char *sep;

        g_assert(uri && ret_host && ret_error);

        if (*uri == '\0') {
                *ret_error =
                        g_strdup("empty host (expected unix:///path/to/socket, ssh://[user@]host[:port] "
                                 "or a host name)");
                return -EINVAL;
        }

        sep = strstr(uri, "://");
        if (!sep) {
                g_autofree char *remote = NULL;

                /* A bare "[user@]host[:port]" means ssh as root, like systemctl -H. */
                if (strchr(uri, '/')) {
                        *ret_error = g_strdup_printf("'%s': not a host name and no scheme; expected "
                                                     "unix:///path/to/socket or ssh://[user@]host[:port]",
                                                     uri);
                        return -EINVAL;
                }
                if (parse_ssh_authority(uri, uri, "root", &remote, &error) < 0) {
                        *ret_error = g_steal_pointer(&error);
                        return -EINVAL;
                }
                *ret_host = (CtlHost){ .kind = CTL_HOST_SSH, .remote = g_steal_pointer(&remote) };
                return 0;
        }

        if (sep - uri == 4 && strncmp(uri, "unix", 4) == 0) {
                const char *path = sep + 3;

                if (*path == '\0') {
                        *ret_error = g_strdup_printf(
                                "'%s': socket path is empty (expected unix:///path/to/socket)", uri);
                        return -EINVAL;
                }
                if (path[0] != '/') {
                        *ret_error =
                                g_strdup_printf("'%s': socket path '%s' is relative; it must be absolute "
                                                "(note the three slashes: unix:///path/to/socket)",
                                                uri, path);
                        return -EINVAL;
                }
                if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
                        *ret_error =
                                g_strdup_printf("'%s': socket path is too long (at most %zu bytes)", uri,
                                                sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
                        return -EINVAL;
                }
                if (!g_utf8_validate(path, -1, NULL) || strpbrk(path, "\n\r\t")) {
                        *ret_error = g_strdup_printf("'%s': socket path contains invalid characters", uri);
                        return -EINVAL;
                }
                *ret_host = (CtlHost){ .kind = CTL_HOST_UNIX, .path = g_strdup(path) };
                return 0;
        }

        if (sep - uri == 3 && strncmp(uri, "ssh", 3) == 0) {
                g_autofree char *remote = NULL;

                if (parse_ssh_authority(uri, sep + 3, "root", &remote, &error) < 0) {
                        *ret_error = g_steal_pointer(&error);
                        return -EINVAL;
                }
                *ret_host = (CtlHost){ .kind = CTL_HOST_SSH, .remote = g_steal_pointer(&remote) };
                return 0;
        }

        *ret_error = g_strdup_printf("'%s': unknown scheme '%.*s' (supported: unix://, ssh://)", uri,
                                     (int)(sep - uri), uri);
        return -EINVAL;
}

char *ctl_host_describe(const CtlHost *host) {
        switch (host->kind) {
        case CTL_HOST_UNIX:
                return g_strdup_printf("the bus at unix://%s", host->path);
        case CTL_HOST_SSH:
                return g_strdup_printf("the system bus of %s (over ssh)", host->remote);
        case CTL_HOST_LOCAL:
        default: {
                const char *addr = g_getenv("DBUS_SYSTEM_BUS_ADDRESS");
                if (addr && *addr)
                        return g_strdup_printf("the system bus (%s)", addr);
                return g_strdup("the system bus");
        }
        }
}

/* D-Bus address values escape everything outside a small set as %XX. */
static char *bus_address_escape(const char *v) {
        GString *s = g_string_new(NULL);
        for (const char *p = v; *p; p++) {
                if (g_ascii_isalnum(*p) || strchr("-_/\\.*", *p))
                        g_string_append_c(s, *p);
                else
                        g_string_append_printf(s, "%%%02x", (unsigned char)*p);
        }
        return g_string_free(s, FALSE);
}

int ctl_connect(const CtlHost *host, bool allow_interactive, sd_bus **ret_bus) {
        g_autoptr(sd_bus) bus = NULL;
        g_autofree char *where = ctl_host_describe(host);
        int r;

        switch (host->kind) {
        case CTL_HOST_UNIX: {
                g_autofree char *escaped = bus_address_escape(host->path);
                g_autofree char *address = g_strconcat("unix:path=", escaped, NULL);

                r = sd_bus_new(&bus);
                if (r < 0)
                        break;
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        break;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        break;
                r = sd_bus_start(bus);
                break;
        }
        case CTL_HOST_SSH:
                r = sd_bus_open_system_remote(&bus, host->remote);
                break;
        case CTL_HOST_LOCAL:
        default:
                r = sd_bus_open_system(&bus);
                break;
        }
        if (r < 0) {
                fprintf(stderr, "vmigratectl: cannot connect to %s: %s\n", where, g_strerror(-r));
                if (host->kind == CTL_HOST_LOCAL && (r == -ENOENT || r == -ECONNREFUSED))
                        fprintf(stderr, "hint: is dbus-daemon running? Use --host to reach another bus.\n");
                return r;
        }

        /* Must be set before any message is created: each call inherits it. */
        r = sd_bus_set_allow_interactive_authorization(bus, allow_interactive);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: cannot configure the bus connection: %s\n", g_strerror(-r));
                return r;
        }

        *ret_bus = g_steal_pointer(&bus);
        return 0;
}

static bool error_is_connection_problem(const sd_bus_error *error, int r) {
        static const char *const names[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN,
                SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                SD_BUS_ERROR_NO_REPLY,
                SD_BUS_ERROR_TIMEOUT,
                SD_BUS_ERROR_DISCONNECTED,
                SD_BUS_ERROR_NO_SERVER,
                /* activation failures from dbus-daemon (not in sd-bus-protocol.h) */
                "org.freedesktop.DBus.Error.Spawn.Failed",
                "org.freedesktop.DBus.Error.Spawn.ExecFailed",
                "org.freedesktop.DBus.Error.Spawn.ChildExited",
                "org.freedesktop.DBus.Error.Spawn.ChildSignaled",
                "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
        };

        if (!sd_bus_error_is_set(error))
                return true;
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                if (sd_bus_error_has_name(error, names[i]))
                        return true;
        /* sd-bus reports local socket failures as "System.Error.E…" */
        if (g_str_has_prefix(error->name, "System.Error."))
                return true;
        return false;
}

int ctl_report_error(const CtlHost *host, const sd_bus_error *error, int r, const char *what) {
        g_autofree char *where = ctl_host_describe(host);
        const char *message;

        if (sd_bus_error_is_set(error))
                message = error->message ? error->message : error->name;
        else
                message = g_strerror(r < 0 ? -r : EIO);
        fprintf(stderr, "vmigratectl: %s: %s\n", what, message);

        if (sd_bus_error_has_names(error, SD_BUS_ERROR_ACCESS_DENIED, SD_BUS_ERROR_AUTH_FAILED)) {
                fprintf(stderr,
                        "hint: ask an administrator to add you to group 'vmigrate' or run as root.\n");
                return CTL_EXIT_DENIED;
        }
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)) {
                fprintf(stderr,
                        "hint: authentication is required but was not possible here (no terminal, "
                        "--no-ask-password, or no polkit agent); ask an administrator to add you to "
                        "group 'vmigrate' or run as root.\n");
                return CTL_EXIT_DENIED;
        }
        if (sd_bus_error_has_name(error, vm_error_dbus_name(VM_ERROR_NO_SUCH_DOMAIN))) {
                fprintf(stderr, "hint: 'vmigratectl list --all' shows the defined domains.\n");
                return CTL_EXIT_NO_DOMAIN;
        }
        /* A transient domain that stopped between lookup and call vanishes with its object. */
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                fprintf(stderr,
                        "hint: the domain no longer exists; 'vmigratectl list --all' shows the "
                        "defined domains.\n");
                return CTL_EXIT_NO_DOMAIN;
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                fprintf(stderr, "hint: vmigrated is not running on %s and cannot be activated there.\n",
                        where);
                return CTL_EXIT_BUS;
        }
        if (sd_bus_error_is_set(error) &&
            g_str_has_prefix(error->name, "org.freedesktop.DBus.Error.Spawn.")) {
                fprintf(stderr,
                        "hint: vmigrated is not running on %s and activating it failed; see the "
                        "bus's log.\n",
                        where);
                return CTL_EXIT_BUS;
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_TIMEOUT)) {
                fprintf(stderr,
                        "hint: vmigrated on %s did not answer: the call timed out or vmigrated exited "
                        "during it. Check the outcome with 'vmigratectl list --all'.\n",
                        where);
                return CTL_EXIT_BUS;
        }
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_INTERFACE)) {
                fprintf(stderr,
                        "hint: the vmigrated on %s does not implement this; is it an older version?\n",
                        where);
                return CTL_EXIT_FAILED;
        }
        if (error_is_connection_problem(error, r)) {
                fprintf(stderr, "hint: the connection to %s failed.\n", where);
                return CTL_EXIT_BUS;
        }
        return CTL_EXIT_FAILED;
}

/*
 * Like systemctl: without an agent, polkit answers "challenge" at once and
 * the call fails with InteractiveAuthorizationRequired. pkttyagent asks on
 * our terminal; it closes the notify fd once registered, so we wait for
 * that (bounded) before making the call.
 */
int ctl_polkit_agent_open(pid_t *ret_pid) {
        int pipefd[2];
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                int e = errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return -e;
        }
        if (pid == 0) {
                char parent[32];

                g_snprintf(parent, sizeof(parent), "%d", (int)getppid());
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

                /* dup2() clears O_CLOEXEC on fd 3 only */
                if (dup2(pipefd[1], 3) < 0)
                        _exit(127);
                /*
                 * The agent prompts on the controlling terminal; its stderr only
                 * says why it could not register (no polkitd), which our own
                 * error and hint cover.
                 */
                if (devnull >= 0)
                        (void)dup2(devnull, STDERR_FILENO);
                execl("/usr/bin/pkttyagent", "pkttyagent", "--notify-fd", "3", "--fallback", "--process",
                      parent, (char *)NULL);
                _exit(127);
        }

        close(pipefd[1]);
        {
                struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
                /* EOF (agent registered, or it exited) or 10 s, whichever comes first */
                while (poll(&p, 1, 10 * 1000) < 0 && errno == EINTR)
                        ;
        }
        close(pipefd[0]);
        *ret_pid = pid;
        return 0;
}

void ctl_polkit_agent_close(pid_t pid) {
        if (pid <= 0)
                return;
        (void)kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}
