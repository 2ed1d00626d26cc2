/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The destination's pre-flight checks of UEFI firmware and network disks
 * (run from preflight_host_resources, ids in preflight.c's table):
 *
 * boot.nvram      dst  error  an <nvram> path's directory exists here and is writable (the NVRAM file
 *                             comes with the guest); the template, if named, is readable
 *                 src  error  option 'offline' with a UEFI guest (UnsupportedOption): only the
 *                             definition would move, the NVRAM would stay behind
 * storage.network dst  error  each network disk's server answers a TCP connect (or its unix socket
 *                             accepts) from here, all at once within a short deadline; an rbd disk
 *                             without <host> needs /etc/ceph/ceph.conf here
 *     "host-b: disk vdb (nbd://nas:10809/vm1) cannot be reached from here: Connection refused; …"
 */
#include "domain-xml.h"
#include "findings.h"

/* How long all connects of one check may take together. */
#define PREFLIGHT_NETDISK_TIMEOUT_MS 2000

void preflight_check_nvram(Findings *out, FindingSeverity severity, const DomainDef *def);
void preflight_check_offline_nvram(Findings *out, const DomainDef *def);
/* Option offline with a <tpm>: refused ("tpm.state"), the state would stay here. */
void preflight_check_offline_tpm(Findings *out, const DomainDef *def);
/* timeout_ms: for the connects together (0: PREFLIGHT_NETDISK_TIMEOUT_MS). */
void preflight_check_network_disks(Findings *out, FindingSeverity severity, const DomainDef *def,
                                   int timeout_ms);
