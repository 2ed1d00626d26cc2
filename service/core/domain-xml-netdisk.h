/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <disk type='network'> in the domain XML: nbd, iscsi and rbd sources
 * (domain-xml.c's parse_disk and writer call these). Each parser returns
 * 0 or a negative errno with *error set (VM_ERROR_INVALID_XML).
 */
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "domain-xml.h"

#define DOMAIN_DISK_HOSTS_MAX 16

/* <source protocol=… name=…> <host …/>* </source> of a type='network' disk. */
int parse_disk_network_source(xmlNode *node, DomainDiskDef *disk, GError **error);
/* <auth> (in <disk> or its <source>): credentials need a secret store. */
int refuse_disk_auth(xmlNode *node, GError **error);
/* After the whole <disk>: a network disk has its <source>. */
int check_disk_network(const DomainDiskDef *disk, GError **error);

void format_disk_network_source(xmlTextWriter *w, const DomainDiskDef *disk);

/* The default port of the protocol's server (0: none, e.g. rbd's ceph.conf). */
unsigned disk_network_default_port(const char *protocol);
/* "nbd://host:10809/export", "iscsi://host:3260/iqn…/1", "rbd:pool/image",
 * "nbd+unix:///export?socket=/path": for messages and findings. */
char *disk_network_describe(const DomainDiskDef *disk);

void disk_host_free(DomainDiskHost *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainDiskHost, disk_host_free)
void netdisk_def_clear(DomainDiskDef *disk);
void netdisk_def_copy(DomainDiskDef *dst, const DomainDiskDef *src);
bool netdisk_def_equal(const DomainDiskDef *a, const DomainDiskDef *b);
