/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "domain-xml.h"
#include "errors.h"
#include "options.h"

/*
 * Pre-flight checks of a migration: what Domain.DryRun reports and what
 * the real Begin (source) and Prepare (destination) refuse on. One code
 * path: the dry run and the migration call the same functions, the dry
 * run only stops before anything is started or reserved.
 *
 * Every check has a stable id (the table at the top of preflight.c) and
 * says, in a message that starts with the host's name, which thing is
 * wrong and what to do. A dry run is best-effort: resources can change
 * between the check and the migration.
 */

typedef struct Manager Manager;
typedef struct Domain Domain;
typedef struct QemuCaps QemuCaps;

/* ---- findings ---- */

typedef enum FindingSeverity {
        FINDING_INFO,
        FINDING_WARNING,
        FINDING_ERROR,
} FindingSeverity;

typedef struct Finding {
        FindingSeverity severity;
        char *id;      /* "storage.disk" */
        char *message; /* "host-b: disk /srv/… is missing …" */
        VmError code;  /* what findings_to_error() reports for an error */
} Finding;

/* More are counted, not kept (see findings_to_variant). */
#define FINDINGS_MAX 256
#define FINDING_MESSAGE_MAX 1024
#define FINDING_ID_MAX 64

typedef struct Findings Findings;

/* host prefixes every message added here ("host-b: …"). */
Findings *findings_new(const char *host);
void findings_free(Findings *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Findings, findings_free)

/* The message gets "<host>: " in front, and is cut at FINDING_MESSAGE_MAX
 * bytes (on a character boundary). id must be one of the table's. */
void findings_add(Findings *f, FindingSeverity severity, const char *id, const char *format, ...)
        G_GNUC_PRINTF(4, 5);
/* As findings_add, with the error code findings_to_error() reports (the
 * default comes from the id: limits.* → LimitReached, domain.* →
 * DomainExists, host.same → InvalidDestination, else Incompatible). */
void findings_add_code(Findings *f, FindingSeverity severity, VmError code, const char *id,
                       const char *format, ...) G_GNUC_PRINTF(5, 6);

const char *findings_host(const Findings *f);
size_t findings_count(const Findings *f);
const Finding *findings_get(const Findings *f, size_t i);
/* The first finding with this id, or NULL. */
const Finding *findings_find(const Findings *f, const char *id);
bool findings_has_errors(const Findings *f);
const Finding *findings_first_error(const Findings *f);

/* For the real Begin/Prepare: 0 when there is no error, else sets *error
 * to the first error (its code and message, plus "(and N more problems;
 * Domain.DryRun lists them)") and returns its negative errno. */
int findings_to_error(const Findings *f, GError **error);

/* a(sss), floating: severity word ("error", "warning", "info"), id,
 * message, in the order added. If findings were dropped over
 * FINDINGS_MAX, a last "findings.truncated" entry says how many, with the
 * highest severity among them. */
GVariant *findings_to_variant(const Findings *f);

/* Appends the other host's findings (a(sss), as findings_to_variant made
 * them). Hostile input: refused whole (VM_ERROR_INCOMPATIBLE, nothing
 * appended) unless it is a(sss), has at most FINDINGS_MAX entries, each
 * with a known severity word, an id of 1..FINDING_ID_MAX bytes of
 * [a-z0-9.-], and a message of at most FINDING_MESSAGE_MAX bytes without
 * control characters. Messages are kept as they are: the other host has
 * already named itself. */
int findings_append_variant(Findings *f, GVariant *v, GError **error);

const char *finding_severity_to_string(FindingSeverity s);
/* -1 for an unknown word. */
int finding_severity_from_string(const char *s);

/* ---- host facts ---- */

#define PREFLIGHT_PORT_MIN 49152
#define PREFLIGHT_PORT_MAX 49215

/* What the checks know about this host. host_facts_read() fills it from
 * /proc, /sys and the kernel; tests fill it by hand. */
typedef struct HostFacts {
        uint64_t mem_total;          /* bytes, MemTotal */
        uint64_t mem_available;      /* bytes, MemAvailable */
        unsigned cpus;               /* online */
        GStrv cpu_flags;             /* /proc/cpuinfo "flags" of the first CPU; NULL = unknown */
        bool kvm;                    /* /dev/kvm can be opened */
        bool userfaultfd;            /* a QEMU started by us can use userfaultfd (post-copy) */
        char *userfaultfd_why;       /* !userfaultfd: why not, one sentence */
        char *sys_class_net;         /* "/sys/class/net": bridges are <dir>/<name>/bridge */
        uint16_t port_min, port_max; /* the data port range */
} HostFacts;

/* Never fails for a missing file: what cannot be read stays 0/NULL and
 * the checks that need it say they could not check. */
int host_facts_read(HostFacts *ret);
void host_facts_clear(HostFacts *facts);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HostFacts, host_facts_clear)

/* ---- what the source tells the destination ---- */

/* From the source's Prepare cookie: "hostname" s, "disk-sizes" a{st}
 * (target dev → virtual size in bytes), "cpu-flags" as. */
typedef struct SourceFacts {
        char *hostname;
        GHashTable *disk_sizes; /* target dev → guint64* bytes; NULL: the source did not say */
        GStrv cpu_flags;        /* the source host's CPU flags; NULL: not said */
} SourceFacts;

#define SOURCE_FACTS_MAX_DISKS 256
#define SOURCE_FACTS_MAX_CPU_FLAGS 1024

/* Source side: adds "disk-sizes" (measured from source_def, the domain's
 * definition on the source, keyed on target dev so that destination-xml
 * may move paths) and "cpu-flags" (facts) to the Prepare cookie. */
void source_facts_add_to_cookie(const DomainDef *source_def, const HostFacts *facts, GVariantDict *cookie);
/* Destination side: reads and validates them (absent members are fine:
 * an older source; wrong types, too many entries or bad names are
 * refused with VM_ERROR_INCOMPATIBLE). */
int source_facts_from_cookie(GVariant *cookie, SourceFacts **ret, GError **error);
void source_facts_free(SourceFacts *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SourceFacts, source_facts_free)

/* The size a guest sees: raw files and block devices their size, qcow2
 * the virtual size in its header. < 0 (negative errno) if unreadable. */
int disk_virtual_size(const char *path, const char *format, uint64_t *ret_size);

/* ---- checks ---- */

typedef enum PreflightSide {
        PREFLIGHT_SOURCE,
        PREFLIGHT_DESTINATION,
} PreflightSide;

/* What a backend's migrate_check op is given. */
typedef struct PreflightContext {
        PreflightSide side;
        const DomainDef *def;          /* as it runs (source) / will run (destination) */
        const MigrateOptions *options; /* checked and defaulted */
        const HostFacts *facts;        /* this host's */
        const SourceFacts *source;     /* destination: what the source said (may be NULL); source: NULL */
} PreflightContext;

/*
 * Destination: can this host receive def with options? Run by
 * Incoming.Prepare (refusing on any error) and by the dry run's
 * Incoming.CheckPrepare. Touches nothing: no file created, no port kept
 * bound, no process started, nothing reserved. options as the source sent
 * them (checked against this host's backend here: options.valid).
 */
void preflight_destination(Manager *m, const DomainDef *def, const MigrateOptions *options,
                           const char *source_host_uuid, const SourceFacts *source, Findings *out);
void preflight_destination_with_facts(Manager *m, const HostFacts *facts, const DomainDef *def,
                                      const MigrateOptions *options, const char *source_host_uuid,
                                      const SourceFacts *source, Findings *out);

/*
 * Source: may d leave with options (parsed, not yet checked)? Domain
 * state, options against the backend (options.valid, with the errors'
 * own codes), destination-xml, the outgoing limit, then the backend's own
 * checks on the defaulted options (for qemu: this QEMU's defects and
 * features). Run by Migrate's Begin and by DryRun.
 */
void preflight_source(Domain *d, const MigrateOptions *options, Findings *out);
void preflight_source_with_facts(Domain *d, const HostFacts *facts, const MigrateOptions *options,
                                 Findings *out);

/* DryRun adds this info finding (dry-run.best-effort) to its reply. */
void preflight_dry_run_note(Findings *f);

/* Checks of this host's resources that any backend running real guests
 * wants on the destination: memory, vCPUs, disks and storage space, boot
 * files, bridges. Offline migration turns the file checks into warnings
 * (nothing runs yet) and skips memory. */
void preflight_host_resources(const PreflightContext *ctx, Findings *out);
/* NULL when <sys_class_net>/<bridge> is a bridge (sys_class_net NULL =
 * /sys/class/net), else what is wrong with it, one phrase
 * ("bridge br0 is missing"). */
char *preflight_bridge_problem(const char *sys_class_net, const char *bridge);

/* A free port for the data stream: bind-tested and closed at once.
 * listen_address NULL = any; port 0 = any in the facts' range. */
void preflight_data_port(const HostFacts *facts, const char *listen_address, uint16_t port, Findings *out);

/* The qemu backend's migrate_check: everything above that applies on
 * ctx->side, plus accelerator, machine type, CPU, the QEMU migration
 * features the options need, and known defects of this QEMU. */
void preflight_qemu(const QemuCaps *caps, const PreflightContext *ctx, Findings *out);
