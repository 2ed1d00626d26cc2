/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmigratectl report DOMAIN --output FILE.svg: Domain.GetJobStats, drawn. */
#include "bus-gvariant.h"
#include "ctl-report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *data, size_t size) {
        while (size > 0) {
                ssize_t n = write(fd, data, size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                data += n;
                size -= (size_t) n;
        }
        return 0;
}

/* Returns a CTL_EXIT_* code. */
static int write_report(const char *output, const char *svg) {
        int fd, r;

        if (g_str_equal(output, "-")) {
                fputs(svg, stdout);
                return CTL_EXIT_OK;
        }
        fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
                fprintf(stderr, "vmigratectl: cannot write the report to '%s': %s\n", output,
                        g_strerror(errno));
                return CTL_EXIT_FAILED;
        }
        r = write_all(fd, svg, strlen(svg));
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r < 0) {
                fprintf(stderr, "vmigratectl: cannot write the report to '%s': %s\n", output,
                        g_strerror(-r));
                return CTL_EXIT_FAILED;
        }
        return CTL_EXIT_OK;
}

int ctl_report_run(sd_bus *bus, const CtlHost *host, const char *domain, const char *output, bool quiet) {
        g_autofree char *what = g_strdup_printf("cannot get the last migration of domain '%s'", domain);
        g_autofree char *path = NULL, *name = NULL, *svg = NULL, *why = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) stats = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        const char *p, *n;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "GetDomain", &error,
                               &reply, "s", domain);
        if (r < 0)
                return ctl_report_error(host, &error, r, what);
        if (sd_bus_message_read(reply, "o", &p) <= 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                return CTL_EXIT_FAILED;
        }
        path = g_strdup(p);
        reply = sd_bus_message_unref(reply);

        /* The name for the title: DOMAIN may be a UUID. */
        r = sd_bus_get_property_string(bus, BUS_NAME, path, BUS_DOMAIN_INTERFACE, "Name", &error, &name);
        if (r < 0)
                return ctl_report_error(host, &error, r, what);

        r = sd_bus_call_method(bus, BUS_NAME, path, BUS_DOMAIN_INTERFACE, "GetJobStats", &error, &reply,
                               NULL);
        if (r < 0) {
                int code = ctl_report_error(host, &error, r, what);
                if (sd_bus_error_has_name(&error, vm_error_dbus_name(VM_ERROR_NO_JOB)))
                        fprintf(stderr,
                                "hint: the report draws a migration that left %s; run it on the host "
                                "the domain left (--host=URI).\n",
                                host->kind == CTL_HOST_LOCAL ? "this host" : "that host");
                return code;
        }
        if (bus_message_read_gvariant(reply, "a{sv}", &stats) < 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated (expected 'a{sv}')\n",
                        what);
                return CTL_EXIT_FAILED;
        }

        n = name ? name : domain;
        r = ctl_report_svg(stats, n, &svg, &why);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: cannot draw a report of domain '%s': %s\n", n, why);
                return CTL_EXIT_FAILED;
        }
        r = write_report(output, svg);
        if (r == CTL_EXIT_OK && !quiet && !g_str_equal(output, "-"))
                printf("Wrote the picture of the last migration of domain '%s' to %s.\n", n, output);
        return r;
}
