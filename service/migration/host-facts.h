/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "disk-image.h"
#include "domain-xml.h"
#include "errors.h"
#include "tls-creds.h"

/* ---- host facts ---- */

#define PREFLIGHT_PORT_MIN 49152
#define PREFLIGHT_PORT_MAX 49215

/* What the checks know about this host. host_facts_read() fills it from
 * /proc, /sys and the kernel; tests fill it by hand. */
typedef struct HostFacts {
        uint64_t mem_total;          /* bytes, MemTotal */
        uint64_t mem_available;      /* bytes, MemAvailable */
        /* The memory of the guests still arriving here: their QEMUs fill it
         * as the pages come, so MemAvailable does not show it yet. Counted
         * whole (conservative: the pages already in are counted twice). */
        uint64_t mem_arriving;
        unsigned n_arriving;
        unsigned cpus;               /* online */
        char *cpus_online;           /* /sys/devices/system/cpu/online ("0-3"); NULL: unknown */
        GStrv cpu_flags;             /* /proc/cpuinfo "flags" of the first CPU; NULL = unknown */
        bool kvm;                    /* /dev/kvm can be opened */
        bool userfaultfd;            /* a QEMU started by us can use userfaultfd (post-copy) */
        char *userfaultfd_why;       /* !userfaultfd: why not, one sentence */
        char *sys_class_net;         /* "/sys/class/net": bridges are <dir>/<name>/bridge */
        char *networks_dir;          /* the admin's network table (networks.h); NULL: none */
        uint16_t port_min, port_max; /* the data port range */
        uint16_t display_port_min, display_port_max; /* the display port range (display-ports.h) */
        char *own_address;           /* the host name's address in /etc/hosts when it is one of ours
                                        (where a migration stream is awaited); NULL: none */
} HostFacts;

/* Never fails for a missing file: what cannot be read stays 0/NULL and
 * the checks that need it say they could not check. */
int host_facts_read(HostFacts *ret);
void host_facts_clear(HostFacts *facts);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HostFacts, host_facts_clear)

/* ---- what the source tells the destination ---- */

/* copy-storage: what the source's image of one disk is, for the
 * destination's space and backing file checks. */
typedef struct SourceDiskImage {
        uint64_t allocation;       /* the image's own allocation */
        uint64_t chain_allocation; /* with its backing files' */
        char *backing;             /* the backing file's absolute path on the source; NULL: none */
        char *backing_format;      /* "raw" or "qcow2" */
        uint64_t backing_size;     /* its virtual size */
} SourceDiskImage;

/* From the source's Prepare cookie: "hostname" s, "disk-sizes" a{st}
 * (target dev → virtual size in bytes), "disk-images" a{s(ttsst)}
 * (target dev → SourceDiskImage; "" for no backing), "cpu-flags" as. */
typedef struct SourceFacts {
        char *hostname;
        GHashTable *disk_sizes;  /* target dev → guint64* bytes; NULL: the source did not say */
        GHashTable *disk_images; /* target dev → SourceDiskImage*; NULL: the source did not say */
        GStrv cpu_flags;        /* the source host's CPU flags; NULL: not said */
        char *tls_ca;           /* option 'tls': SHA-256 of the source's CA certificate, hex */
        char *tls_client_dn;    /* option 'tls': the DN of the source's client certificate */
} SourceFacts;

#define SOURCE_FACTS_MAX_DISKS 256
#define SOURCE_FACTS_MAX_CPU_FLAGS 1024

/* The source's host name for messages: "the source" when it did not say. */
const char *source_facts_name(const SourceFacts *source);

/* Source side: adds "disk-sizes" and "disk-images" (measured from
 * source_def, the domain's definition on the source, keyed on target dev
 * so that destination-xml may move paths), "cpu-flags" (facts) and, with tls (option 'tls'; NULL
 * otherwise), "tls-ca" and "tls-client-dn" to the Prepare cookie. */
void source_facts_add_to_cookie(const DomainDef *source_def, const HostFacts *facts, const TlsCreds *tls,
                                GVariantDict *cookie);
/* Destination side: reads and validates them (absent members are fine:
 * an older source; wrong types, too many entries or bad names are
 * refused with VM_ERROR_INCOMPATIBLE). */
int source_facts_from_cookie(GVariant *cookie, SourceFacts **ret, GError **error);
void source_facts_free(SourceFacts *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SourceFacts, source_facts_free)

