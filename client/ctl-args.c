/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: what the command line says, read without a bus. The grammar
 * of --host is vmigrated's destination URI grammar (uri.h), so that a URI
 * means the same to vmigratectl --host as to Domain.Migrate.
 */

#include "ctl.h"

#include <errno.h>
#include <string.h>

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
