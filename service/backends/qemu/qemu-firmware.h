/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * UEFI guests in the qemu backend: choosing OVMF from QEMU's firmware
 * descriptors, the per-domain NVRAM file, its journey with a migration
 * (qemu-firmware.c), and the command line (qemu-command-firmware.c).
 */
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "domain-xml.h"

/* Where QEMU's firmware descriptors are (docs/interop/firmware.json), in
 * order of precedence: a file in an earlier directory hides one of the
 * same name in a later one; the survivors are taken in file-name order.
 * VMIGRATE_FIRMWARE_DIRS (':'-separated) replaces the list (tests). */
#define QEMU_FIRMWARE_DIRS "/etc/qemu/firmware:/usr/share/qemu/firmware"
#define QEMU_FIRMWARE_DESCRIPTOR_MAX (64 * 1024)

/* The NVRAM's bytes travel in the migration cookies (at most 1 MiB each):
 * OVMF's largest variable store is 528 KiB (the 4M build). */
#define QEMU_NVRAM_MAX_BYTES (768 * 1024)
/* Next to the NVRAM while an incoming migration has replaced it: the
 * destination's own earlier copy, put back if the migration fails. */
#define QEMU_NVRAM_PREVIOUS_SUFFIX ".vmigrate-previous"

/* A firmware='efi' definition whose loader the backend still has to pick. */
static inline bool qemu_firmware_needs_resolving(const DomainDef *def) {
        return g_strcmp0(def->os_firmware, "efi") == 0 && !def->os_loader;
}

/*
 * Fills in def's loader (read-only flash), secure flag and NVRAM template
 * from the first descriptor that fits: UEFI, flash, split code/variables
 * in raw files that exist, x86_64 and the machine (resolved name, e.g.
 * pc-q35-10.0), and the <os><firmware> features asked. For an explicit
 * pflash loader with no template, the template of the descriptor whose
 * code it is. Error: VM_ERROR_UNSUPPORTED_BACKEND naming what was
 * looked for and where.
 */
int qemu_firmware_resolve(DomainDef *def, const char *machine, GError **error);

/* The NVRAM file: <os><nvram> or <nvram_dir>/<uuid>_VARS.fd. */
char *qemu_nvram_path(const char *nvram_dir, const DomainDef *def);
/* <nvram_dir>/<uuid>_VARS.fd: the one vmigrate makes and owns. */
char *qemu_nvram_own_path(const char *nvram_dir, const char *uuid);

/* Before a start: the NVRAM exists, else it is made from the template
 * (the first start of the domain). */
int qemu_nvram_ensure(const char *nvram_dir, const DomainDef *def, GError **error);

/* Its content, for a migration cookie (at most QEMU_NVRAM_MAX_BYTES). */
int qemu_nvram_read(const char *path, GBytes **ret, GError **error);

/*
 * The destination's NVRAM while a migration arrives. Prepare stages the
 * source's bytes at the path (the destination's own copy, if any, is
 * moved aside), so that QEMU opens a flash of the source's size; Finish
 * writes the bytes as they were when the guest stopped on the source, in
 * place (QEMU has the file open). keep() when the guest stays here; free()
 * without keep puts the earlier copy back (or removes the file).
 */
typedef struct QemuNvramStage QemuNvramStage;
int qemu_nvram_stage(const char *path, GBytes *bytes, QemuNvramStage **ret, GError **error);
int qemu_nvram_stage_update(QemuNvramStage *s, GBytes *bytes, GError **error);
void qemu_nvram_stage_keep(QemuNvramStage *s);
void qemu_nvram_stage_free(QemuNvramStage *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuNvramStage, qemu_nvram_stage_free)

/* ---- the command line (qemu-command-firmware.c) ---- */

/* -blockdev for the code (read-only) and the NVRAM (nvram: its path), and
 * with secure boot the flash's secure property; appends to machine what
 * -machine needs (",pflash0=…,pflash1=…,smm=on"). Nothing for a guest
 * without a pflash loader. machine: the resolved machine name. */
int qemu_command_add_firmware(GPtrArray *argv, const DomainDef *def, const char *machine, const char *nvram,
                              GString *machine_props, GError **error);
/* The "file" node of a network disk, as -blockdev JSON members: adds
 * driver, server/portal/…, to builder (an open object). */
void qemu_command_netdisk_members(JsonBuilder *builder, const DomainDiskDef *disk);
