/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The devices and settings of a desktop guest in the domain XML (what
 * virt-manager and virt-install write beyond disks, interfaces and serial
 * ports): USB controller and input devices, sound and audio backends,
 * virtio channels, USB redirection, RNG, watchdog, balloon, boot order and
 * menu, CPU topology, <features>, <clock>, <pm>, disk <driver> tuning and
 * other applications' <metadata>. For domain-xml.c only: each function
 * parses one element into the definition, or writes, copies or compares
 * what it parsed. Errors are VM_ERROR_INVALID_XML naming the element.
 */
#include <stdbool.h>

#include <glib.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "domain-xml.h"

/* libvirt's directory of generated channel sockets: a path there in
 * virsh dumpxml is libvirt's bookkeeping, not the user's choice. */
#define DOMAIN_LIBVIRT_CHANNEL_DIR "/var/lib/libvirt/qemu/channel/"

/* lifetime */
void devices_def_init(DomainDef *def);
void devices_def_clear(DomainDef *def);
void devices_def_copy(DomainDef *dst, const DomainDef *src);
bool devices_def_equal(const DomainDef *a, const DomainDef *b);
int devices_check_abi_stable(const DomainDef *src, const DomainDef *dst, GError **error);
void devices_disk_clear(DomainDiskDef *d);
void devices_disk_copy(DomainDiskDef *dst, const DomainDiskDef *src);
bool devices_disk_equal(const DomainDiskDef *a, const DomainDiskDef *b);
bool devices_disk_abi_equal(const DomainDiskDef *a, const DomainDiskDef *b);

/* parsing: top level */
int devices_parse_metadata_other(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_os_boot(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_bootmenu(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_vcpu_cpuset(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_topology(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_features(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_clock(xmlNode *node, DomainDef *def, GError **error);
int devices_parse_pm(xmlNode *node, DomainDef *def, GError **error);
/* parsing: inside devices */
int devices_parse_disk_driver(xmlNode *node, DomainDiskDef *d, GError **error);
int devices_parse_boot_order(xmlNode *node, unsigned *ret_order, GError **error);
/* Returns 1 when node is one of the elements of this file (and parsed it,
 * or failed with *error set), 0 when it is not. */
int devices_parse_device(xmlNode *node, xmlNode *devices, DomainDef *def, GError **error);
/* After all of <devices>: defaults (USB controller, audio backend), the
 * console that stands for a serial port, and references between devices. */
int devices_finish(xmlNode *devices, DomainDef *def, GError **error);
/* After the whole domain: what spans sections (topology and <vcpu>, boot
 * order of <os> and of devices). */
int devices_check_domain(DomainDef *def, GError **error);

/* writing */
void devices_format_metadata(xmlTextWriter *w, const DomainDef *def);
void devices_format_os(xmlTextWriter *w, const DomainDef *def);
void devices_format_cpu_topology(xmlTextWriter *w, const DomainDef *def);
void devices_format_settings(xmlTextWriter *w, const DomainDef *def); /* <features>, <clock>, <pm> */
bool devices_disk_has_driver_attrs(const DomainDiskDef *d);
void devices_format_disk_driver_attrs(xmlTextWriter *w, const DomainDiskDef *d);
void devices_format_boot_order(xmlTextWriter *w, unsigned order);
void devices_format_devices(xmlTextWriter *w, const DomainDef *def);
