/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <glib.h>

/*
 * Destination URIs (DESIGN.md "Destination URIs"): where the remote
 * vmigrated's bus is.
 *
 *   ssh://[user@]host[:port][/]   D-Bus over ssh + systemd-stdio-bridge
 *   unix:///absolute/path         a bus socket on this machine
 *   [user@]host[:port]            bare form: ssh, user defaults to root
 *
 * host is a DNS name (letters, digits, '-', '_', '.'), an IPv4 literal or a
 * bracketed IPv6 literal. The scheme is case-insensitive; host names are
 * lower-cased. Refused, each with a message naming the part: other schemes,
 * passwords in the user part, user or host starting with '-' (they end up
 * on ssh's command line), empty parts, ports outside 1..65535, queries and
 * fragments, any whitespace or control character, and in unix paths
 * relative paths, paths longer than a socket address holds (107 bytes) and
 * '%': paths are taken literally, never percent-decoded, so what is
 * checked is exactly what is connected to.
 */

#define DESTINATION_URI_MAX 1024
#define UNIX_SOCKET_PATH_MAX 107 /* sizeof(sockaddr_un.sun_path) - 1 */

typedef enum DestinationKind {
        DESTINATION_UNIX,
        DESTINATION_SSH,
} DestinationKind;

typedef struct Destination {
        DestinationKind kind;
        char *path;      /* unix */
        char *user;      /* ssh; NULL = ssh's default */
        char *host;      /* ssh; IPv6 without brackets */
        uint16_t port;   /* ssh; 0 = ssh's default */
        char *canonical; /* "ssh://root@host:2222", "unix:///run/x" */
} Destination;

/* VM_ERROR_INVALID_DESTINATION on refusal. */
int destination_parse(const char *uri, Destination **ret, GError **error);
void destination_free(Destination *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Destination, destination_free)

/* ssh: "[user@]host[:port]" as sd_bus_open_system_remote() takes it
 * (IPv6 bracketed). NULL for unix destinations. */
char *destination_to_sd_bus_host(const Destination *d);

/* How an ssh command line shares one ssh connection (OpenSSH's
 * ControlMaster): none, the connection that others join, or one that
 * joins it (or connects on its own when the first is gone). */
typedef enum SshShare {
        SSH_SHARE_NONE,
        SSH_SHARE_MASTER,
        SSH_SHARE_JOIN,
} SshShare;

/* ssh: the command line that runs remote_argv on the destination host:
 * ssh -xT -o BatchMode=yes -o Ciphers=^aes128-gcm… [sharing] [-p port]
 * [-l user] -- host remote_argv... (no terminal, no forwarding, never a
 * password prompt: a daemon has no one to ask; AES-GCM preferred for bulk
 * data). control_path names the shared connection's socket (NULL with
 * SSH_SHARE_NONE). NULL for unix destinations. */
char **destination_ssh_argv(const Destination *d, SshShare share, const char *control_path,
                            const char *const *remote_argv);

/* unix: "unix:path=<escaped path>" for sd_bus_set_address(). NULL for ssh. */
char *destination_to_sd_bus_address(const Destination *d);

/*
 * Migration data URI "tcp://host:port" (host as above, IPv6 bracketed,
 * port required). Returns the host without brackets (lower-cased) and port.
 * VM_ERROR_INVALID_OPTION naming 'data-uri' on refusal.
 */
int data_uri_parse(const char *uri, char **ret_host, uint16_t *ret_port, GError **error);
