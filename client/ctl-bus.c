/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: connecting, the polkit agent, and turning errors into
 * messages and exit codes.
 */

#include "bus-remote.h"
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int ctl_connect(const CtlHost *host, bool allow_interactive, sd_bus **ret_bus) {
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(Destination) login = ctl_host_login(host);
        g_autofree char *where = ctl_host_describe(host);
        int r;

        if (login)
                r = bus_open_destination(login, NULL, &bus);
        else
                r = sd_bus_open_system(&bus);
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
