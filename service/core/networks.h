/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The admin's table of networks: what <interface type='network'><source
 * network='NAME'/> attaches to on this host. vmigrate has no network
 * daemon of its own (libvirt's virtnetworkd creates bridges, DHCP and
 * NAT); it attaches guests to bridges that exist, and this table names
 * them, one file per network:
 *
 *   <networks_dir>/NAME     (default /etc/vmigrate/networks.d/NAME)
 *
 * whose first line that is not empty or a '#' comment is the bridge's
 * name ("echo br-lan > /etc/vmigrate/networks.d/lan"). Without a file,
 * "default" is "virbr0", the bridge of libvirt's default network, so a
 * host that runs libvirt's network needs no table at all. The files are
 * read at each use: a change applies to the next start or migration.
 */
#include <glib.h>

#include "domain-xml.h"

#define NETWORKS_DEFAULT_NAME "default"
#define NETWORKS_DEFAULT_BRIDGE "virbr0"
#define NETWORKS_FILE_MAX 4096

/* The bridge of network name here. networks_dir NULL: no table (only the
 * built-in default). Returns 0 and the bridge, or a negative errno and
 * *ret_problem, one phrase naming the file and what is wrong ("network
 * 'lan' is not defined here (no /etc/vmigrate/networks.d/lan)"). */
int network_lookup_bridge(const char *networks_dir, const char *name, char **ret_bridge, char **ret_problem);

/* The bridge an <interface> attaches to here: <source bridge> for type
 * 'bridge', the table's for type 'network'. Returns 1 and the bridge, 0
 * for a type without one ('user'), or a negative errno and *ret_problem. */
int interface_lookup_bridge(const char *networks_dir, const DomainInterfaceDef *iface, char **ret_bridge,
                            char **ret_problem);
