/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/* What one QEMU binary can do, probed over QMP from "-machine none". */
typedef struct QemuCaps {
        char *binary;
        /* Identity of the binary the probe ran: a change means probe again. */
        uint64_t binary_size;
        int64_t binary_mtime_usec;
        uint64_t binary_inode;

        unsigned major, minor, micro;
        char *package;
        GStrv machines;               /* names and aliases */
        GStrv machine_aliases;        /* "alias=versioned-name", e.g. "pc=pc-i440fx-10.0" */
        char *default_machine;
        GStrv migration_capabilities; /* from query-migrate-capabilities */
        GStrv migration_parameters;   /* the members of query-migrate-parameters' reply */
        GStrv cpu_models;             /* from query-cpu-definitions (TCG) */
} QemuCaps;

typedef struct QemuDefect {
        const char *id;
        const char *description;
} QemuDefect;

void qemu_caps_free(QemuCaps *caps);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuCaps, qemu_caps_free)

/* Runs binary once with "-machine none" and asks it over QMP. Blocks for
 * the duration (a private event loop, 20 s at most): it runs at daemon
 * start-up when there is no usable cache, never while serving calls. */
int qemu_caps_probe(const char *binary, QemuCaps **ret, GError **error);

/* The cache file is used only while the binary is the same file it was. */
int qemu_caps_load_cache(const char *cache_path, const char *binary, QemuCaps **ret);
int qemu_caps_save_cache(const QemuCaps *caps, const char *cache_path, GError **error);
bool qemu_caps_binary_changed(const QemuCaps *caps);

bool qemu_caps_has_machine(const QemuCaps *caps, const char *machine);
/* The versioned machine an alias ("pc", or NULL for QEMU's default) stands
 * for with this QEMU; other names as given. */
const char *qemu_caps_resolve_machine(const QemuCaps *caps, const char *machine);
bool qemu_caps_has_migration_capability(const QemuCaps *caps, const char *name);
bool qemu_caps_has_migration_parameter(const QemuCaps *caps, const char *name);
bool qemu_caps_version_at_least(const QemuCaps *caps, unsigned major, unsigned minor);

/* Known defects of this version that matter to vmigrate, NULL-terminated
 * (static storage). */
const QemuDefect *const *qemu_caps_defects(const QemuCaps *caps);
bool qemu_caps_has_defect(const QemuCaps *caps, const char *id);

/* <qemu>…</qemu> for the host capabilities XML. */
void qemu_caps_append_xml(const QemuCaps *caps, bool kvm, GString *xml);
