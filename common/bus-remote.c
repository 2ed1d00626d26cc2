/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdbool.h>

#include "bus-remote.h"
#include "bus-util.h"

/* What sd_bus_open_system_remote() runs, as the master of a shared
 * connection. */
static int bus_open_ssh_master(const Destination *d, const char *control_path, sd_bus **ret) {
        const char *const remote[] = { "systemd-stdio-bridge", NULL };
        g_auto(GStrv) argv = destination_ssh_argv(d, SSH_SHARE_MASTER, control_path, remote);
        g_autoptr(sd_bus) bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_exec(bus, argv[0], argv);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&bus);
        return 0;
}

int bus_open_destination(const Destination *d, const char *ssh_control_path, sd_bus **ret) {
        g_autoptr(sd_bus) bus = NULL;
        int r;

        assert(d && ret);

        if (d->kind == DESTINATION_SSH && ssh_control_path)
                return bus_open_ssh_master(d, ssh_control_path, ret);
        if (d->kind == DESTINATION_SSH) {
                g_autofree char *host = destination_to_sd_bus_host(d);

                r = sd_bus_open_system_remote(&bus, host);
                if (r < 0)
                        return r;
        } else {
                g_autofree char *address = destination_to_sd_bus_address(d);

                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
                if (r < 0)
                        return r;
        }
        *ret = g_steal_pointer(&bus);
        return 0;
}
