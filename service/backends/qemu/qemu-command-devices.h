/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The QEMU command line of a desktop guest's devices and settings (what
 * domain-xml-devices.c parses), for qemu-command.c. Every device gets a
 * fixed id and is created in the same order from the same definition, so
 * the destination of a migration builds the same machine as the source:
 * QEMU's automatic PCI and USB addresses follow the command line's order.
 */
#include <stdbool.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "domain-xml.h"
#include "qemu-command.h"

/* The socket of <channel type='unix'> number index (in document order)
 * when the XML names none: <dir>/channel<index>.sock. */
char *qemu_paths_channel_socket(const QemuPaths *paths, unsigned index);
/* Where a channel's socket is: the XML's path or the one above. */
char *qemu_channel_socket(const DomainDef *def, const QemuPaths *paths, unsigned index);

/* -machine's value: the type and the settings that are machine properties. */
char *qemu_devices_machine_arg(const DomainDef *def);
/* -smp's value: the vCPUs and their topology. */
char *qemu_devices_smp_arg(const DomainDef *def);
/* The SCSI controller's QEMU device for <controller type='scsi' model>. */
const char *qemu_devices_scsi_controller(const DomainDef *def);

/* Properties of a disk's nodes and device and of an interface's device:
 * discard, AIO, zero detection, boot order (0 = none). */
void qemu_devices_disk_file_props(JsonBuilder *b, const DomainDiskDef *disk);
void qemu_devices_disk_format_props(JsonBuilder *b, const DomainDiskDef *disk);
unsigned qemu_devices_disk_bootindex(const DomainDef *def, unsigned index);
unsigned qemu_devices_interface_bootindex(const DomainDef *def, unsigned index);

/* Everything else: -global, -rtc, -boot, -action, -audiodev, -object,
 * -chardev and -device options. */
int qemu_devices_add(GPtrArray *argv, const DomainDef *def, const QemuPaths *paths, GError **error);
