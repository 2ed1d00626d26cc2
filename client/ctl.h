/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared declarations of vmigratectl: exit codes, the --host parser, the
 * bus helpers (ctl-bus.c) and the output helpers (ctl-output.c).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sd_bus_error, sd_bus_error_free)

/*
 * Exit codes. Scripts rely on them, so they are part of the interface and
 * listed in --help: keep the two in sync.
 *   0  success
 *   1  the operation failed (the service returned an error, or FILE could
 *      not be read or written)
 *   2  usage error (unknown command or option, missing or extra argument,
 *      malformed --host URI)
 *   3  cannot connect to the bus, vmigrated is not running or not
 *      activatable there, or the connection broke / timed out
 *   4  no such domain
 *   5  permission denied (polkit said no, or interactive authentication is
 *      needed but not allowed)
 */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,
        CTL_EXIT_USAGE = 2,
        CTL_EXIT_BUS = 3,
        CTL_EXIT_NO_DOMAIN = 4,
        CTL_EXIT_DENIED = 5,
};

#define CTL_BUS_NAME "org.vmigrate.Migrate1"
#define CTL_MANAGER_PATH "/org/vmigrate/Migrate1"
#define CTL_MANAGER_IFACE "org.vmigrate.Migrate1.Manager"
#define CTL_DOMAIN_IFACE "org.vmigrate.Migrate1.Domain"
#define CTL_ERROR_PREFIX "org.vmigrate.Migrate1.Error."

typedef enum CtlHostKind {
        CTL_HOST_LOCAL, /* no --host: the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured) */
        CTL_HOST_UNIX,  /* unix:///path/to/socket */
        CTL_HOST_SSH,   /* ssh://[user@]host[:port] or a bare host name */
} CtlHostKind;

typedef struct CtlHost {
        CtlHostKind kind;
        char *path;   /* CTL_HOST_UNIX: absolute socket path */
        char *remote; /* CTL_HOST_SSH: "user@host[:port]" for sd_bus_open_system_remote() */
} CtlHost;

void ctl_host_clear(CtlHost *host);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CtlHost, ctl_host_clear)

/*
 * Parses a --host argument. On failure returns -EINVAL and sets
 * *ret_error to a message naming the part that is wrong.
 */
int ctl_host_parse(const char *uri, CtlHost *ret_host, char **ret_error);

/* Human-readable description of where we connect, for error messages. */
char *ctl_host_describe(const CtlHost *host);

/* Connects; on failure prints the error and returns -errno. */
int ctl_connect(const CtlHost *host, bool allow_interactive, sd_bus **ret_bus);

/* Starts pkttyagent for this process's authentication on its terminal. */
int ctl_polkit_agent_open(pid_t *ret_pid);
/* Stops it again; pid <= 0 is a no-op. */
void ctl_polkit_agent_close(pid_t pid);

/*
 * Maps a failed call onto an exit code, and prints
 * "vmigratectl: <what>: <message>" plus a hint where one helps.
 */
int ctl_report_error(const CtlHost *host, const sd_bus_error *error, int r, const char *what);

/*
 * Reads the next complete value of any type from a message and converts it
 * to a GVariant (floating references are sunk: *ret_value is owned).
 */
int ctl_message_read_gvariant(sd_bus_message *m, GVariant **ret_value);

/* ---- ctl-output.c ---- */

/* "512 MiB", "1.5 GiB", "100 B". */
char *ctl_format_bytes(uint64_t bytes);

/* D-Bus property name to JSON key: "StateReason" -> "state-reason", "VCPUs" -> "vcpus". */
char *ctl_property_to_key(const char *property);

/* A value for humans: booleans as yes/no, string arrays comma separated, else g_variant_print. */
char *ctl_format_value(GVariant *value);

/* Prints a JSON node to stdout, pretty-printed, with a trailing newline. */
void ctl_print_json(JsonNode *node);

/* JSON object from a{sv} properties, with keys converted by ctl_property_to_key(). */
JsonNode *ctl_properties_to_json(GVariant *properties);
