/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Binds a TCP socket to address (an IPv4 or IPv6 literal, without
 * brackets) and port (0: any) and closes it at once: nothing stays bound.
 * 0 if that worked; -EINVAL if address is not a literal; else the bind's
 * negative errno (-EADDRINUSE, -EADDRNOTAVAIL: not this host's, ...). */
int net_try_bind(const char *address, uint16_t port);

/* The address that hostname has in hosts_file (/etc/hosts format), when
 * it is one of this host's own (it can be bound) and not loopback; NULL
 * otherwise. Read from the file alone: no resolver, no blocking. */
char *net_own_address(const char *hosts_file, const char *hostname);

/* A stream socket connected to the unix socket at path (close-on-exec,
 * blocking); a negative errno if it cannot be. */
int net_connect_unix(const char *path);
