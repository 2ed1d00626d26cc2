/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-flight checks of a migration, shared by Domain.DryRun and the real
 * Begin/Prepare (one code path). Each finding has a stable id; clients and
 * admins' scripts may match on it. Messages start with the host's name,
 * name the thing, and say what to do.
 *
 * Check ids (side: src = source, Begin; dst = destination, Prepare), severity, what, example:
 *
 * destination.reachable       src  error  the destination answers, authenticates and authorizes us
 *     (filled in by migration.c) "host-a: cannot reach ssh://root@host-b: Connection refused"
 * options.valid               both error  options supported by this host's backend, no conflicts,
 *                                         destination-xml parses and is ABI-stable (the options' own codes)
 *     "host-b: option 'postcopy' is not supported by the 'qemu' backend: …"
 *                             src  warn   allowed but probably unintended (migrate_options_warnings)
 *     "host-a: 'live'=false: the guest is paused for the whole migration"
 * host.same                   dst  error  source and destination are different hosts (host UUID)
 * host.maintenance            dst  error  the destination is not in maintenance mode (HostInMaintenance)
 *     "host-b: this host is in maintenance and takes no incoming migration until an admin ends it …"
 *     "host-b: the source is this very host (host UUID …); migrate to another host"
 * domain.state                src  error  no job, no operation in progress; running or paused (live), or
 *                                         persistent and shut off (offline)
 *     "host-a: domain 'vm1' is shutoff: only a running or paused domain can be migrated live; …"
 * domain.name-conflict        dst  error  no other domain (another UUID) has the name here
 *     "host-b: a different domain named 'vm1' (UUID …) is defined here; migrate with option
 *      'destination-name', or undefine it here"
 * domain.running              dst  error  the UUID is not running, busy or already arriving here
 *     "host-b: domain 'vm1' is already running here; it must not run on two hosts"
 * domain.defined-differently  dst  error  the UUID is not defined here under another name or backend
 *     "host-b: UUID … is domain 'old' here, not 'vm1'; …"
 *                             dst  warn   the definition stored here differs from the incoming one
 *     "host-b: domain 'vm1' is defined here with a different definition; the guest runs with the
 *      source's, and the one here is kept for its next boot (option 'persist' replaces it)"
 * backend.available           both error  a backend here runs the domain type, is available, can migrate
 *     "host-b: the 'qemu' backend is unavailable here: qemu-system-x86_64 not found; …"
 * backend.definition          dst  error  the backend's validate() accepts the definition; reported only
 *                                         when the backend's specific checks found no error
 *     "host-b: <interface type='network'>: the qemu backend supports types 'bridge' and 'user'; …"
 * limits.incoming             dst  error  fewer incoming migrations than --max-incoming-migrations, and
 *                                         vmigrated is not stopping
 *     "host-b: 2 migrations are already arriving, the most allowed here (…); try again when one has ended"
 * limits.outgoing             src  error  fewer outgoing migrations than --max-outgoing-migrations
 *     "host-a: 2 migrations are already leaving this host, the most allowed (…); wait for one to end"
 * resources.memory            dst  error  MemAvailable >= memory + overhead (max(64 MiB, memory / 64))
 *                                         + the memory of the other guests still arriving
 *     "host-b: 1.2 GiB of memory available, the domain needs 2.0 GiB + 64.0 MiB overhead; …"
 * resources.vcpus             dst  warn   vCPUs <= online host CPUs
 * resources.cpuset            dst  error  the host CPUs of <vcpu cpuset> are online here
 *     "host-b: <vcpu cpuset='4-7'> names host CPUs 4-7, which are not online here (CPUs 0-3 are); …"
 *     "host-b: the domain has 8 vCPUs but this host has 4 CPUs: they will share them and run slower"
 * (the qemu backend adds cpu.*, machine.type and qemu.*: see
 *  backends/qemu/qemu-preflight.c)
 * storage.disk                dst  error  disks that stay put exist, are usable and have the size the
 *                                         source reported (virtual size, by target dev); copied disks have
 *                                         their directory, writable, and no file at their path; with option
 *                                         'reuse-images', the file there has the source's format and size;
 *                                         a block device must exist
 *                                         and needs 'reuse-images'
 *     "host-b: disk /srv/vmigrate/images/vm1.qcow2 (vda) is missing (host-a has it, 2.0 GiB); put it on
 *      shared storage or use copy-storage"
 * storage.backing             dst  error  copy-storage=incremental: each copied disk's backing file is here
 *                                         at the source's path, readable, of the same format and size
 *     "host-b: backing file /srv/base/deb12.qcow2 of disk /srv/images/vm1.qcow2 (vda) is missing here: …"
 * storage.space               dst  error  copy-storage: free space on each file system >= what the disks
 *                                         copied there may take (raw: virtual size; qcow2: the source's
 *                                         allocation, with its backing files' for 'all', at most the virtual
 *                                         size), plus a margin of 2% (at least 64 MiB) per file system
 *     "host-b: 1.0 GiB free in /srv/images; copying 2 disks there needs 20.0 GiB plus a margin of 409.6 MiB; …"
 * boot.kernel                 dst  error  <kernel> exists, is a regular file, readable
 *     "host-b: kernel /srv/boot/vmlinuz is missing; copy it to the same path here, or …"
 * boot.initrd                 dst  error  <initrd> likewise
 * boot.firmware               dst  error  <loader> likewise
 * boot.nvram, storage.network (UEFI NVRAM, network disks): see preflight-firmware-net.h
 * network.bridge              dst  error  each <source bridge=…> of an interface the domain requires
 *                                         (<vmigrate:require interface=…/>) is a bridge
 *                                         (/sys/class/net/<br>/bridge)
 *     "host-b: bridge br0 is missing, and interface 52:54:00:… requires it (…); create it (ip link add
 *      br0 type bridge) or pick another with …"
 *                             dst  warn   the same for an interface not required: it would run unconnected
 * hooks.present               dst  info   the admin hooks (--hooks-dir) a migration here would run, and
 *                                         which the domain requires; a required one that is missing is an
 *                                         error. Dry runs never run them.
 *     "host-b: hooks in /etc/vmigrate/hooks.d run at prepare and finish: 10-net (required), 20-log"
 * network.port                dst  error  a data port is free on the listen address (bind-tested and closed
 *                                         at once: nothing stays bound); with copy-storage, one more for the
 *                                         disk copy (NBD)
 *     "host-b: no free port in 49152-49215 on 0.0.0.0 for the migration stream: …"
 * network.display-port        dst  error  each <graphics> listening on an address can listen here: a fixed
 *                                         port is free (neither bound nor held by another guest), with
 *                                         autoport a port of the display range (vmigrated --display-ports,
 *                                         default 5900-65535) is; the listen address is this host's
 *                                         (bind-tested and closed at once, as network.port)
 *     "host-b: display port 5901 on 0.0.0.0 (<graphics type='vnc'>) is in use here; use autoport='yes' …"
 * dry-run.best-effort         src  info   always, in a dry run's reply
 *     "host-a: a dry run is best-effort: memory, disks, ports and other migrations can change …"
 * findings.truncated          any  worst  more than FINDINGS_MAX findings: how many were left out
 *     "host-b: 12 more findings not shown (3 of them errors)"
 *
 * Offline migration starts nothing: memory, port and QEMU feature checks
 * are skipped and file checks (disks, boot files, bridges, CPU, machine)
 * are warnings, since they matter only at the next boot there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cpuset.h"
#include "display-ports.h"
#include "domain.h"
#include "hooks.h"
#include "host-features.h"
#include "manager.h"
#include "net.h"
#include "networks.h"
#include "preflight.h"
#include "preflight-firmware-net.h"
#include "tls-creds.h"
#include "uri.h"

/* ---- helpers ---- */

/* "2.0 GiB", with a plain space: GLib puts a no-break space there, which
 * scripts matching on messages would not expect. */
static char *format_size(uint64_t bytes) {
        g_autofree char *s = g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
        GString *out = g_string_new(s);

        g_string_replace(out, "\xc2\xa0", " ", 0);
        return g_string_free(out, false);
}

static uint64_t memory_overhead(uint64_t memory) {
        /* QEMU itself, device state, page tables: a fixed floor, then
         * growing with the guest. */
        return MAX((uint64_t) 64 << 20, memory / 64);
}


/* ---- destination: host resources ---- */

/* <vcpu cpuset>: the host CPUs QEMU is to run on must be online here. */
static void check_cpuset(Findings *out, FindingSeverity severity, const DomainDef *def, const HostFacts *facts) {
        CpuSet want, have, missing;
        g_autofree char *lacking = NULL;

        if (!def->vcpu_cpuset || cpuset_parse(def->vcpu_cpuset, "<vcpu cpuset>", &want, NULL) < 0)
                return;
        if (!facts->cpus_online || cpuset_parse(facts->cpus_online, "online CPUs", &have, NULL) < 0) {
                findings_add(out, FINDING_INFO, "resources.cpuset",
                             "the online CPUs are unknown here, so <vcpu cpuset='%s'> was not checked",
                             def->vcpu_cpuset);
                return;
        }
        cpuset_missing(&want, &have, &missing);
        if (cpuset_count(&missing) == 0)
                return;
        lacking = cpuset_format(&missing);
        findings_add(out, severity, "resources.cpuset",
                     "<vcpu cpuset='%s'> names host CPUs %s, which are not online here (CPUs %s are); give "
                     "the guest this host's CPUs with option 'destination-xml'",
                     def->vcpu_cpuset, lacking, facts->cpus_online);
}

static void check_boot_file(Findings *out, FindingSeverity severity, const char *id, const char *what,
                            const char *path) {
        struct stat st;

        if (!path)
                return;
        if (stat(path, &st) < 0) {
                if (errno == ENOENT)
                        findings_add(out, severity, id,
                                     "%s %s is missing; copy it to the same path here, or name "
                                     "another with option 'destination-xml'",
                                     what, path);
                else
                        findings_add(out, severity, id, "%s %s cannot be examined: %s", what, path,
                                     g_strerror(errno));
                return;
        }
        if (!S_ISREG(st.st_mode))
                findings_add(out, severity, id, "%s %s is not a regular file", what, path);
        else if (access(path, R_OK) < 0)
                findings_add(out, severity, id, "%s %s is not readable: %s", what, path, g_strerror(errno));
}

typedef struct SpaceNeed {
        dev_t dev;
        char *dir;
        uint64_t bytes;
        unsigned n_disks;
} SpaceNeed;

/* The margin of storage.space: this share of what is copied, at least the minimum. */
#define STORAGE_SPACE_MARGIN_PERCENT 2
#define STORAGE_SPACE_MARGIN_MIN ((uint64_t) 64 << 20)

static void space_need_clear(SpaceNeed *n) {
        g_free(n->dir);
}

static bool disk_is_copied(const DomainDiskDef *disk, const MigrateOptions *options) {
        return options->copy_storage != MIGRATE_COPY_STORAGE_NONE && domain_disk_is_copyable(disk);
}

static void check_shared_disk(Findings *out, FindingSeverity severity, const DomainDiskDef *disk,
                              const SourceFacts *source, const uint64_t *source_size) {
        const char *path = disk->source_file;
        g_autofree char *source_size_str = source_size ? format_size(*source_size) : NULL;
        struct stat st;
        uint64_t size;
        int r;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT)
                        findings_add(
                                out, severity, "storage.disk",
                                "disk %s (%s) is missing (%s has it%s%s); put it on shared storage or use "
                                "copy-storage",
                                path, disk->target_dev, source_facts_name(source), source_size_str ? ", " : "",
                                source_size_str ? source_size_str : "");
                else
                        findings_add(out, severity, "storage.disk", "disk %s (%s) cannot be examined: %s",
                                     path, disk->target_dev, g_strerror(errno));
                return;
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
                findings_add(out, severity, "storage.disk",
                             "disk %s (%s) is not a regular file or block device", path, disk->target_dev);
                return;
        }
        if (access(path, disk->readonly ? R_OK : R_OK | W_OK) < 0) {
                findings_add(out, severity, "storage.disk", "disk %s (%s) is not %s here: %s", path,
                             disk->target_dev, disk->readonly ? "readable" : "readable and writable",
                             g_strerror(errno));
                return;
        }
        if (!source_size)
                return;
        r = disk_virtual_size(path, disk->driver_type, &size);
        if (r < 0) {
                findings_add(
                        out, FINDING_WARNING, "storage.disk",
                        "the size of disk %s (%s) cannot be read here (%s), so it was not compared with "
                        "%s's",
                        path, disk->target_dev, g_strerror(-r), source_facts_name(source));
                return;
        }
        if (size != *source_size) {
                g_autofree char *here = format_size(size);
                findings_add(
                        out, severity, "storage.disk",
                        "disk %s (%s) is %s here but %s on %s: it is not the same image; check that the "
                        "shared storage is mounted at the same path, or use copy-storage",
                        path, disk->target_dev, here, source_size_str, source_facts_name(source));
        }
}

static const SourceDiskImage *source_disk_image(const SourceFacts *source, const char *dev) {
        return source && source->disk_images ? g_hash_table_lookup(source->disk_images, dev) : NULL;
}

/* The space a copied disk may take here: a raw image its virtual size
 * (written in full, zeroes included, at worst); a qcow2 what the source's
 * image takes, with its backing files for 'all' (they are copied into
 * it), never more than the virtual size. */
static uint64_t copy_need(const DomainDiskDef *disk, const MigrateOptions *options, const SourceFacts *source,
                          uint64_t source_size) {
        const SourceDiskImage *image = source_disk_image(source, disk->target_dev);

        if (!image || g_strcmp0(disk->driver_type, "qcow2") != 0)
                return source_size;
        if (options->copy_storage == MIGRATE_COPY_STORAGE_INCREMENTAL)
                return MIN(image->allocation, source_size);
        return MIN(image->chain_allocation, source_size);
}

/* Option 'reuse-images': the image here is written over, so it must be
 * the same kind of disk as the source's. */
static void check_reused_image(Findings *out, FindingSeverity severity, const DomainDiskDef *disk,
                               const MigrateOptions *options, const SourceFacts *source,
                               const uint64_t *source_size, const SourceDiskImage *image) {
        const char *path = disk->source_file, *want = disk->driver_type ? disk->driver_type : "raw";
        const char *format = disk_image_probe_format(path);
        g_auto(DiskImageInfo) info = {};
        int r;

        if (options->copy_storage == MIGRATE_COPY_STORAGE_INCREMENTAL && image && image->backing) {
                /* A top-only mirror writes what the source's top image
                 * holds: the rest of an old image would show through. */
                findings_add(out, severity, "storage.disk",
                             "disk %s (%s) already exists here, and 'incremental' copies only the top image of "
                             "a disk with a backing file, so what this one holds elsewhere would show through: "
                             "remove it (the copy makes a new one), or copy with 'all'",
                             path, disk->target_dev);
                return;
        }
        if (access(path, R_OK | W_OK) < 0) {
                findings_add(out, severity, "storage.disk", "disk %s (%s) is not readable and writable here: %s",
                             path, disk->target_dev, g_strerror(errno));
                return;
        }
        if (!format || !g_str_equal(format, want)) {
                findings_add(out, severity, "storage.disk",
                             "disk %s (%s) is %s here, but the disk is %s; option 'reuse-images' copies into an "
                             "image of the same format only",
                             path, disk->target_dev, format ? format : "unreadable", want);
                return;
        }
        r = disk_image_read(path, want, &info);
        if (r < 0) {
                findings_add(out, severity, "storage.disk", "disk %s (%s) cannot be read here: %s", path,
                             disk->target_dev, g_strerror(-r));
                return;
        }
        if (source_size && info.virtual_size != *source_size) {
                g_autofree char *here = format_size(info.virtual_size), *there = format_size(*source_size);
                findings_add(out, severity, "storage.disk",
                             "disk %s (%s) is %s here but %s on %s; option 'reuse-images' copies into an "
                             "image of the same size only (qemu-img resize, or remove it)",
                             path, disk->target_dev, here, there, source_facts_name(source));
        }
}

/* copy-storage=incremental: the backing file the copied top image sits on
 * must be here already; same content is the admin's promise, format and
 * size are checked. */
static void check_backing(Findings *out, FindingSeverity severity, const DomainDiskDef *disk,
                          const SourceFacts *source, const SourceDiskImage *image) {
        const char *format;
        uint64_t size;
        int r;

        if (access(image->backing, R_OK) < 0) {
                findings_add(out, severity, "storage.backing",
                             "backing file %s of disk %s (%s) is %s here: %s; 'incremental' copies only the top "
                             "image, so the backing files must be here first (or use copy-storage 'all')",
                             image->backing, disk->source_file, disk->target_dev,
                             errno == ENOENT ? "missing" : "not readable", g_strerror(errno));
                return;
        }
        format = disk_image_probe_format(image->backing);
        if (!format || !g_str_equal(format, image->backing_format)) {
                findings_add(out, severity, "storage.backing",
                             "backing file %s of disk %s (%s) is %s here but %s on %s: not the same image",
                             image->backing, disk->source_file, disk->target_dev, format ? format : "unreadable",
                             image->backing_format, source_facts_name(source));
                return;
        }
        r = disk_virtual_size(image->backing, format, &size);
        if (r < 0)
                findings_add(out, severity, "storage.backing", "backing file %s of disk %s (%s) cannot be read: %s",
                             image->backing, disk->source_file, disk->target_dev, g_strerror(-r));
        else if (size != image->backing_size) {
                g_autofree char *here = format_size(size), *there = format_size(image->backing_size);
                findings_add(out, severity, "storage.backing",
                             "backing file %s of disk %s (%s) is %s here but %s on %s: not the same image",
                             image->backing, disk->source_file, disk->target_dev, here, there,
                             source_facts_name(source));
        }
}

/* A copied disk needs its directory, writable, and, summed per file
 * system, space; or, with 'reuse-images', an image like the source's. */
static void check_copied_disk(Findings *out, FindingSeverity severity, const DomainDiskDef *disk,
                              const MigrateOptions *options, const SourceFacts *source, const uint64_t *source_size,
                              GArray *needs) {
        g_autofree char *dir = g_path_get_dirname(disk->source_file);
        const SourceDiskImage *image = source_disk_image(source, disk->target_dev);
        struct stat st;
        uint64_t need;

        if (options->copy_storage == MIGRATE_COPY_STORAGE_INCREMENTAL && image && image->backing)
                check_backing(out, severity, disk, source, image);
        if (stat(disk->source_file, &st) == 0) {
                if (options->reuse_images)
                        check_reused_image(out, severity, disk, options, source, source_size, image);
                else
                        /* The copy makes a new image: a file it did not make is
                         * never overwritten (nor deleted when the migration fails). */
                        findings_add(out, severity, "storage.disk",
                                     "disk %s (%s) already exists here; copy-storage never overwrites a file it "
                                     "did not make: remove it, put the disk elsewhere with option "
                                     "'destination-xml', or copy into it with option 'reuse-images'",
                                     disk->source_file, disk->target_dev);
                return;
        }
        if (disk->block) {
                findings_add(out, severity, "storage.disk",
                             "block device %s for disk %s is missing; copy-storage makes image files only: "
                             "create the device (the size of the source's) and use option 'reuse-images', or "
                             "put the disk in a file with option 'destination-xml'",
                             disk->source_file, disk->target_dev);
                return;
        }
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                findings_add(out, severity, "storage.disk",
                             "directory %s for disk %s (%s) is missing; create it, or put the disk "
                             "elsewhere with option 'destination-xml'",
                             dir, disk->source_file, disk->target_dev);
                return;
        }
        if (access(dir, W_OK) < 0) {
                findings_add(out, severity, "storage.disk",
                             "directory %s for disk %s (%s) is not writable here: %s", dir, disk->source_file,
                             disk->target_dev, g_strerror(errno));
                return;
        }
        if (!source_size) {
                findings_add(out, FINDING_INFO, "storage.space",
                             "free space for disk %s (%s) was not checked: %s did not report its size",
                             disk->source_file, disk->target_dev, source_facts_name(source));
                return;
        }
        need = copy_need(disk, options, source, *source_size);
        for (unsigned i = 0; i < needs->len; i++) {
                SpaceNeed *n = &g_array_index(needs, SpaceNeed, i);
                if (n->dev == st.st_dev) {
                        n->bytes += need;
                        n->n_disks++;
                        return;
                }
        }
        SpaceNeed n = { .dev = st.st_dev, .dir = g_steal_pointer(&dir), .bytes = need, .n_disks = 1 };
        g_array_append_val(needs, n);
}

/* Beyond the images' own size: qcow2 tables, the file system's own
 * blocks, and not running a file system full. */
static uint64_t space_margin(uint64_t bytes) {
        return MAX(STORAGE_SPACE_MARGIN_MIN, bytes / 100 * STORAGE_SPACE_MARGIN_PERCENT);
}

static void check_space(Findings *out, FindingSeverity severity, GArray *needs) {
        for (unsigned i = 0; i < needs->len; i++) {
                const SpaceNeed *n = &g_array_index(needs, SpaceNeed, i);
                uint64_t margin = space_margin(n->bytes);
                struct statvfs sv;

                if (statvfs(n->dir, &sv) < 0) {
                        findings_add(out, FINDING_WARNING, "storage.space",
                                     "free space in %s cannot be read (%s), so it was not checked", n->dir,
                                     g_strerror(errno));
                        continue;
                }
                uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
                if (avail < n->bytes + margin) {
                        g_autofree char *a = format_size(avail), *need = format_size(n->bytes),
                                        *m = format_size(margin);
                        findings_add(out, severity, "storage.space",
                                     "%s free in %s; copying %u disk%s there needs %s plus a margin of %s; free "
                                     "space, or put the disks elsewhere with option 'destination-xml'",
                                     a, n->dir, n->n_disks, n->n_disks == 1 ? "" : "s", need, m);
                }
        }
}

/* A bridge the domain requires (<vmigrate:require interface=…/>) must be
 * there; any other may be missing: its interface then runs unconnected,
 * which the migration reports as a warning. An <interface type='network'>
 * needs its network in this host's table (networks.h) and that bridge. */
static void check_bridges(Findings *out, FindingSeverity severity, const DomainDef *def,
                          const HostFacts *facts) {
        for (unsigned i = 0; i < def->interfaces->len; i++) {
                const DomainInterfaceDef *iface = def->interfaces->pdata[i];
                g_autofree char *problem = NULL, *bridge = NULL, *fix = NULL;
                bool network = g_strcmp0(iface->type, "network") == 0;
                int r;

                r = interface_lookup_bridge(facts->networks_dir, iface, &bridge, &problem);
                if (r == 0)
                        continue;
                if (r > 0)
                        problem = host_bridge_problem(facts->sys_class_net, bridge);
                if (!problem)
                        continue;
                if (network && r < 0)
                        fix = g_strdup_printf("name its bridge in %s/%s (echo BRIDGE > …)",
                                              facts->networks_dir ? facts->networks_dir : "the networks directory",
                                              iface->source);
                else if (network)
                        fix = g_strdup_printf("create it (ip link add %s type bridge), or map network '%s' to "
                                              "another bridge",
                                              bridge, iface->source);
                else
                        fix = g_strdup_printf("create it (ip link add %s type bridge)", bridge);
                if (domain_def_requires_interface(def, iface))
                        findings_add(out, severity, "network.bridge",
                                     "%s, and interface %s requires it (<vmigrate:require interface>); %s or "
                                     "pick another with option 'destination-xml'",
                                     problem, iface->mac, fix);
                else
                        findings_add(out, FINDING_WARNING, "network.bridge",
                                     "%s: interface %s would run unconnected (link down); %s, pick another "
                                     "with option 'destination-xml', or require it to refuse the migration "
                                     "instead",
                                     problem, iface->mac, fix);
        }
}

void preflight_host_resources(const PreflightContext *ctx, Findings *out) {
        const DomainDef *def = ctx->def;
        const MigrateOptions *options = ctx->options;
        const HostFacts *facts = ctx->facts;
        const SourceFacts *source = ctx->source;
        bool offline = options->offline;
        FindingSeverity severity = offline ? FINDING_WARNING : FINDING_ERROR;
        g_autoptr(GArray) needs = g_array_new(false, false, sizeof(SpaceNeed));

        g_array_set_clear_func(needs, (GDestroyNotify) space_need_clear);

        if (!offline) {
                uint64_t overhead = memory_overhead(def->memory_bytes);
                g_autofree char *mem = format_size(def->memory_bytes), *over = format_size(overhead);
                if (facts->mem_available == 0)
                        findings_add(out, FINDING_INFO, "resources.memory",
                                     "available memory is unknown (no MemAvailable in /proc/meminfo); not "
                                     "checked");
                else if (facts->mem_available < facts->mem_arriving + def->memory_bytes + overhead) {
                        g_autofree char *avail = format_size(facts->mem_available);
                        g_autofree char *arriving = format_size(facts->mem_arriving);
                        g_autofree char *promised = facts->n_arriving
                                                            ? g_strdup_printf(" (%s of it promised to %u guest%s "
                                                                              "still arriving)",
                                                                              arriving, facts->n_arriving,
                                                                              facts->n_arriving == 1 ? "" : "s")
                                                            : g_strdup("");
                        findings_add(out, FINDING_ERROR, "resources.memory",
                                     "%s of memory available%s, the domain needs %s + %s overhead; free "
                                     "memory here or "
                                     "migrate to another host",
                                     avail, promised, mem, over);
                }
        }
        if (facts->cpus > 0 && def->vcpus > facts->cpus)
                findings_add(
                        out, FINDING_WARNING, "resources.vcpus",
                        "the domain has %u vCPUs but this host has %u CPUs: they will share them and run "
                        "slower",
                        def->vcpus, facts->cpus);

        check_cpuset(out, severity, def, facts);

        check_boot_file(out, severity, "boot.kernel", "kernel", def->os_kernel);
        check_boot_file(out, severity, "boot.initrd", "initrd", def->os_initrd);
        check_boot_file(out, severity, "boot.firmware", "firmware", def->os_loader);
        preflight_check_nvram(out, severity, def);

        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                const uint64_t *size = NULL;

                if (!disk->source_file)
                        continue; /* an empty CD-ROM drive */
                if (source && source->disk_sizes && disk->target_dev)
                        size = g_hash_table_lookup(source->disk_sizes, disk->target_dev);
                if (disk_is_copied(disk, options))
                        check_copied_disk(out, severity, disk, options, source, size, needs);
                else
                        check_shared_disk(out, severity, disk, source, size);
        }
        check_space(out, severity, needs);
        check_bridges(out, severity, def, facts);
        preflight_check_network_disks(out, severity, def, 0);
}

/* ---- destination: the data port ---- */

/* Ports are bind-tested (SO_REUSEADDR as QEMU sets it, so that a port
 * only in TIME_WAIT counts as free, as it is for QEMU) and closed at once.
 * 1: free, 0: in use, -1: a finding says why no port can be checked. */
static int port_free(const char *host, uint16_t p, Findings *out) {
        int r = -net_try_bind(host, p);

        if (r == 0)
                return 1;
        if (r == EADDRINUSE)
                return 0;
        if (r == EADDRNOTAVAIL)
                findings_add(out, FINDING_ERROR, "network.port",
                             "listen address %s is not an address of this host; fix option "
                             "'listen-address' or 'data-uri'",
                             host);
        else
                findings_add(out, FINDING_ERROR, "network.port", "cannot bind port %u on %s: %s", p, host,
                             g_strerror(r));
        return -1;
}

void preflight_data_port(const HostFacts *facts, const char *listen_address, uint16_t port, bool disk_copy,
                         Findings *out) {
        const char *host = listen_address ? listen_address : "0.0.0.0";
        unsigned first = facts->port_min, last = facts->port_max;
        unsigned wanted = (port ? 0 : 1) + (disk_copy ? 1 : 0), found = 0;
        int r;

        if (net_try_bind(host, 0) == -EINVAL) {
                findings_add(out, FINDING_INFO, "network.port",
                             "listen address '%s' is not an IP address, so the data port was not checked",
                             host);
                return;
        }
        if (port) {
                r = port_free(host, port, out);
                if (r < 0)
                        return;
                if (r == 0) {
                        findings_add(out, FINDING_ERROR, "network.port",
                                     "port %u on %s, from option 'data-uri', is in use; pick another port or "
                                     "leave 'data-uri' out",
                                     port, host);
                        return;
                }
        }
        if (wanted == 0)
                return;
        if (first == 0 || first > last) {
                findings_add(out, FINDING_ERROR, "network.port", "the data port range %u-%u is empty", first,
                             last);
                return;
        }
        for (unsigned p = first; p <= last && found < wanted; p++) {
                if (p == port)
                        continue;
                r = port_free(host, (uint16_t) p, out);
                if (r < 0)
                        return;
                found += (unsigned) r;
        }
        if (found == wanted)
                return;
        if (disk_copy && wanted == 2)
                findings_add(out, FINDING_ERROR, "network.port",
                             "%s free port%s in %u-%u on %s, and the migration stream and the disk copy (NBD) "
                             "need one each: other migrations or programs hold them; wait for one to end",
                             found ? "only one" : "no", found ? "" : "s", first, last, host);
        else if (disk_copy)
                findings_add(out, FINDING_ERROR, "network.port",
                             "no free port in %u-%u on %s for the disk copy (NBD): other migrations or programs "
                             "hold them all; wait for one to end",
                             first, last, host);
        else
                findings_add(
                        out, FINDING_ERROR, "network.port",
                        "no free port in %u-%u on %s for the migration stream: other migrations or programs "
                        "hold them all; wait for one to end, or name a port with option 'data-uri'",
                        first, last, host);
}

/* ---- destination: the display ports ---- */

void preflight_display_ports(const HostFacts *facts, const DomainDef *def, Findings *out) {
        g_autoptr(GHashTable) taken = g_hash_table_new(g_direct_hash, g_direct_equal);

        for (guint i = 0; def->graphics && i < def->graphics->len; i++) {
                const DomainGraphicsDef *g = def->graphics->pdata[i];
                const char *host = g->listen_address ? g->listen_address : "127.0.0.1";
                unsigned first = facts->display_port_min, last = facts->display_port_max, p;
                int r = 0;

                if (!g_str_equal(g->listen_type, "address"))
                        continue; /* a socket or nothing: no port */
                if (!g->autoport) {
                        r = display_port_check(host, (uint16_t) g->port);
                        if (r == 0)
                                findings_add(out, FINDING_ERROR, "network.display-port",
                                             "display port %d on %s (<graphics type='%s'>) is in use here; use "
                                             "autoport='yes', or another port with option 'destination-xml'",
                                             g->port, host, g->type);
                        else if (r > 0)
                                g_hash_table_add(taken, GINT_TO_POINTER(g->port));
                } else {
                        if (g_str_equal(g->type, "vnc") && first < DISPLAY_PORT_MIN)
                                first = DISPLAY_PORT_MIN;
                        for (p = first; p <= last && first > 0; p++) {
                                if ((p >= facts->port_min && p <= facts->port_max) ||
                                    g_hash_table_contains(taken, GUINT_TO_POINTER(p)))
                                        continue;
                                r = display_port_check(host, (uint16_t) p);
                                if (r != 0)
                                        break;
                        }
                        if (r > 0)
                                g_hash_table_add(taken, GUINT_TO_POINTER(p));
                        else if (r == 0)
                                findings_add(out, FINDING_ERROR, "network.display-port",
                                             "no free display port in %u-%u on %s for <graphics type='%s'>: "
                                             "other guests or programs hold them all; stop one, or widen the "
                                             "range there (DisplayPorts=, vmigrated --display-ports)",
                                             first, last, host, g->type);
                }
                if (r == -EADDRNOTAVAIL)
                        findings_add(out, FINDING_ERROR, "network.display-port",
                                     "<graphics type='%s'> listens on %s, which is not an address of this host; "
                                     "change it with option 'destination-xml' (0.0.0.0 listens on every address)",
                                     g->type, host);
                else if (r < 0)
                        findings_add(out, FINDING_ERROR, "network.display-port",
                                     "cannot listen on %s for <graphics type='%s'>: %s", host, g->type,
                                     g_strerror(-r));
        }
}

/* ---- encryption ---- */

/* Whether the backend streams guest memory over the network at all (then
 * it can encrypt it: it supports option 'tls'). A simulated one sends
 * nothing, so it has nothing to protect. */
static bool backend_streams(const MigrateOptionSupport *support, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (g_str_equal(support[i].key, "tls"))
                        return support[i].supported;
        return false;
}

static bool host_is_loopback(const char *host) {
        return g_str_equal(host, "localhost") || g_str_has_prefix(host, "127.") || g_str_equal(host, "::1");
}

/* The host the source will connect to for the data stream, as the qemu
 * backend reports it in its data URI: the data-uri's host, else the listen
 * address unless it is "any", else this host's name. */
static char *data_host(const MigrateOptions *o) {
        g_autofree char *host = NULL;
        uint16_t port;

        if (o->data_uri && data_uri_parse(o->data_uri, &host, &port, NULL) >= 0)
                return g_steal_pointer(&host);
        if (o->listen_address && !g_str_equal(o->listen_address, "0.0.0.0") && !g_str_equal(o->listen_address, "::"))
                return g_strdup(o->listen_address);
        return manager_get_hostname();
}

static bool backend_streams_for(Manager *m, const DomainDef *def) {
        const BackendOps *ops = manager_backend_ops_for_type(m, def->type);
        void *data = ops ? manager_backend_data(m, ops) : NULL;
        const MigrateOptionSupport *support;
        size_t n = 0;

        if (!data || !ops->migrate_options)
                return false;
        support = ops->migrate_options(data, &n);
        return backend_streams(support, n);
}

static bool tls_by_default_why_not(Manager *m, const DomainDef *def, const MigrateOptions *o,
                                   const SourceFacts *source, char **ret_why) {
        g_autoptr(TlsCreds) tls = NULL;
        g_autofree char *host = NULL;

        if (migrate_options_has(o, MIGRATE_OPTION_TLS) || o->tunnelled || o->offline)
                return false; /* the caller's choice, or nothing to encrypt this way */
        if (!backend_streams_for(m, def)) {
                *ret_why = g_strdup("this host's backend does not stream with TLS");
                return false;
        }
        tls = tls_creds_load(m->tls_dir, time(NULL));
        *ret_why = tls_creds_why_not(tls);
        if (*ret_why)
                return false;
        if (!source)
                return true;
        if (!source->tls_ca || !source->tls_client_dn) {
                *ret_why = g_strdup_printf("%s has no usable TLS credentials", source_facts_name(source));
                return false;
        }
        if (!g_str_equal(source->tls_ca, tls->ca_fingerprint)) {
                *ret_why = g_strdup_printf("%s's CA is not this host's", source_facts_name(source));
                return false;
        }
        host = data_host(o);
        if (!tls_creds_server_names(tls, host)) {
                *ret_why = g_strdup_printf("%s/server-cert.pem does not name '%s'", m->tls_dir, host);
                return false;
        }
        return true;
}

bool preflight_tls_by_default(Manager *m, const DomainDef *def, const MigrateOptions *o, const SourceFacts *source,
                              char **ret_why) {
        g_autofree char *why = NULL;
        bool yes = tls_by_default_why_not(m, def, o, source, &why);

        if (ret_why)
                *ret_why = g_steal_pointer(&why);
        return yes;
}

/* This host's credentials, when option 'tls' needs them: NULL (with an
 * error finding) when they are not usable. On the source that means this
 * host cannot do TLS at all (GetBackends says 'tls' is unsupported here,
 * and why); on the destination, that the pair cannot. */
static TlsCreds *usable_tls_creds(Manager *m, VmError code, Findings *out) {
        g_autoptr(TlsCreds) tls = tls_creds_load(m->tls_dir, time(NULL));
        g_autofree char *why = tls_creds_why_not(tls);

        if (why) {
                findings_add_code(out, FINDING_ERROR, code, "tls.credentials",
                                  "option 'tls': this host's credentials are not usable: %s", why);
                return NULL;
        }
        return g_steal_pointer(&tls);
}

static void check_plaintext(Manager *m, Findings *out) {
        if (m->require_encryption)
                findings_add_code(out, FINDING_ERROR, VM_ERROR_UNSUPPORTED_OPTION, "security.plaintext",
                                  "this host does not let guest memory cross the network unencrypted "
                                  "(RequireEncryption=, vmigrated --require-encryption): migrate with option "
                                  "'tls' or 'tunnelled'");
}

/* Source: option 'tls' needs our client credentials; without it, a host
 * that requires encryption refuses, unless TLS may still be chosen by
 * default (then the destination's answer decides, source.c). */
static void check_encryption_source(Manager *m, const DomainDef *def, const MigrateOptions *o, Findings *out) {
        if (o->offline || o->tunnelled)
                return; /* no memory crosses, or inside the control transport (ssh, or a local socket) */
        if (o->tls)
                tls_creds_free(usable_tls_creds(m, VM_ERROR_UNSUPPORTED_OPTION, out));
        else if (!preflight_tls_by_default(m, def, o, NULL, NULL))
                check_plaintext(m, out);
}

/* Destination: with 'tls', our server credentials, the same CA as the
 * source's, a certificate that names the host the source will connect
 * to, and the source's client name for tls-authz; without it, a warning
 * (or a refusal) when memory would cross a real link in clear text. */
static void check_encryption_destination(Manager *m, const MigrateOptions *o, const SourceFacts *source,
                                         Findings *out) {
        g_autofree char *host = NULL;
        g_autoptr(TlsCreds) tls = NULL;

        if (o->offline || o->tunnelled)
                return;
        host = data_host(o);
        if (!o->tls) {
                check_plaintext(m, out);
                if (!m->require_encryption && !host_is_loopback(host))
                        findings_add(out, FINDING_WARNING, "security.plaintext",
                                     "the guest's memory will cross the network to %s unencrypted: whoever can "
                                     "see the link can read it, and whoever reaches the data port first can "
                                     "send this host a guest of their own; migrate with option 'tls' (see the "
                                     "README's \"TLS\" section) or 'tunnelled'",
                                     host);
                return;
        }
        tls = usable_tls_creds(m, VM_ERROR_INCOMPATIBLE, out);
        if (!tls)
                return;
        if (!source || !source->tls_ca || !source->tls_client_dn) {
                findings_add(out, FINDING_ERROR, "tls.credentials",
                             "option 'tls': %s sent no TLS credentials (is its vmigrate older?)",
                             source_facts_name(source));
                return;
        }
        if (!g_str_equal(source->tls_ca, tls->ca_fingerprint))
                findings_add(out, FINDING_ERROR, "tls.ca",
                             "option 'tls': %s's CA (SHA-256 %.16s…) is not this host's (%s/ca-cert.pem, SHA-256 "
                             "%.16s…): give both hosts certificates from the same CA",
                             source_facts_name(source), source->tls_ca, m->tls_dir, tls->ca_fingerprint);
        if (!tls_creds_server_names(tls, host))
                findings_add(out, FINDING_ERROR, "tls.hostname",
                             "option 'tls': %s/server-cert.pem is not valid for '%s', the name %s will connect "
                             "to; issue it with '%s' in its subjectAltName, or give option 'data-uri' with a "
                             "name it has",
                             m->tls_dir, host, source_facts_name(source), host);
}

/* ---- destination ---- */

static void check_domain_identity(Manager *m, const DomainDef *def, const MigrateOptions *options,
                                  Findings *out) {
        Domain *by_uuid = g_hash_table_lookup(m->domains, def->uuid);
        Domain *by_name = manager_lookup(m, def->name);

        if (by_name && by_name != by_uuid)
                findings_add(out, FINDING_ERROR, "domain.name-conflict",
                             "a different domain named '%s' (UUID %s) is defined here; migrate with option "
                             "'destination-name', or undefine it here",
                             def->name, domain_uuid(by_name));
        if (m->incoming && g_hash_table_contains(m->incoming, def->uuid)) {
                findings_add(out, FINDING_ERROR, "domain.running",
                             "domain '%s' (UUID %s) is already arriving here from another migration",
                             def->name, def->uuid);
                return;
        }
        if (!by_uuid)
                return;
        if (!g_str_equal(domain_name(by_uuid), def->name)) {
                findings_add(
                        out, FINDING_ERROR, "domain.defined-differently",
                        "UUID %s is domain '%s' here, not '%s'; undefine '%s' here, or migrate with option "
                        "'destination-name'='%s'",
                        def->uuid, domain_name(by_uuid), def->name, domain_name(by_uuid),
                        domain_name(by_uuid));
                return;
        }
        if (domain_is_active(by_uuid) || by_uuid->job || by_uuid->pending_op != DOMAIN_OP_NONE) {
                findings_add(out, FINDING_ERROR, "domain.running",
                             "domain '%s' is already %s here%s; it must not run on two hosts", def->name,
                             domain_state_to_string(by_uuid->state),
                             by_uuid->job                                    ? " and has a job"
                                     : by_uuid->pending_op != DOMAIN_OP_NONE ? " and busy"
                                                                             : "");
                return;
        }
        if (by_uuid->backend != manager_backend_ops_for_type(m, def->type)) {
                findings_add_code(
                        out, FINDING_ERROR, VM_ERROR_INCOMPATIBLE, "domain.defined-differently",
                        "domain '%s' is defined here for the '%s' backend, not for domain type '%s'; "
                        "undefine it here first",
                        def->name, by_uuid->backend->name, def->type);
                return;
        }
        const DomainDef *stored = by_uuid->persistent_def ? by_uuid->persistent_def : by_uuid->def;
        if (!domain_def_equal(stored, def)) {
                if (options->offline || options->persist)
                        findings_add(out, FINDING_WARNING, "domain.defined-differently",
                                     "domain '%s' is defined here with a different definition, which the "
                                     "source's "
                                     "replaces",
                                     def->name);
                else
                        findings_add(
                                out, FINDING_WARNING, "domain.defined-differently",
                                "domain '%s' is defined here with a different definition; the guest runs "
                                "with "
                                "the source's, and the one here is kept for its next boot (option 'persist' "
                                "replaces it)",
                                def->name);
        }
}

static const char *backend_unavailable_reason(Manager *m, const BackendOps *ops) {
        for (size_t i = 0; i < m->n_backends; i++)
                if (m->backends[i].ops == ops)
                        return m->backends[i].unavailable;
        return NULL;
}

/* The hooks a migration here would run (never run by a dry run). */
static void check_hooks(const char *hooks_dir, const DomainDef *def, Findings *out) {
        g_auto(GStrv) hooks = hooks_list(hooks_dir);
        g_autoptr(GString) list = g_string_new(NULL);

        for (char **h = hooks; *h; h++)
                g_string_append_printf(list, "%s%s%s", list->len ? ", " : "", *h,
                                       domain_def_requires_hook(def, *h) ? " (required)" : "");
        for (char **req = def->require_hooks; req && *req; req++)
                if (!g_strv_contains((const char *const *) hooks, *req))
                        findings_add(out, FINDING_ERROR, "hooks.present",
                                     "the domain requires hook '%s', which is not a runnable hook in %s (missing, "
                                     "or refused as unsafe: see vmigrated's log); install it there or remove "
                                     "the requirement",
                                     *req, hooks_dir ? hooks_dir : "(no hooks directory)");
        if (hooks[0])
                findings_add(out, FINDING_INFO, "hooks.present", "hooks in %s run at prepare and finish: %s",
                             hooks_dir, list->str);
}

void preflight_destination_with_facts(Manager *m, const HostFacts *facts, const DomainDef *def,
                                      const MigrateOptions *options, const char *source_host_uuid,
                                      const SourceFacts *source, Findings *out) {
        const BackendOps *ops = manager_backend_ops_for_type(m, def->type);
        void *data = ops ? manager_backend_data(m, ops) : NULL;
        g_autoptr(GError) error = NULL;

        if (source_host_uuid && g_str_equal(source_host_uuid, m->host_uuid))
                findings_add(out, FINDING_ERROR, "host.same",
                             "the source is this very host (host UUID %s); migrate to another host",
                             source_host_uuid);
        if (m->maintenance)
                findings_add_code(out, FINDING_ERROR, VM_ERROR_IN_MAINTENANCE, "host.maintenance",
                                  "this host is in maintenance and takes no incoming migration until an admin "
                                  "ends it (SetMaintenance(false), 'vmigratectl maintenance off'); migrate to "
                                  "another host");
        if (m->shutting_down)
                findings_add_code(out, FINDING_ERROR, VM_ERROR_INVALID_STATE, "limits.incoming",
                                  "vmigrated is stopping here; try again when it is back");
        else if (m->max_incoming && manager_count_running_jobs(m, JOB_MIGRATION_IN) >= m->max_incoming)
                findings_add(out, FINDING_ERROR, "limits.incoming",
                             "%u migrations are already arriving, the most allowed here "
                             "(MaxIncomingMigrations=, vmigrated --max-incoming-migrations); try again when "
                             "one has ended",
                             m->max_incoming);
        check_domain_identity(m, def, options, out);

        if (!ops) {
                findings_add(
                        out, FINDING_ERROR, "backend.available",
                        "no backend here runs domains of type '%s'; GetBackends lists the ones there are",
                        def->type);
                return;
        }
        if (!data) {
                const char *why = backend_unavailable_reason(m, ops);
                findings_add(out, FINDING_ERROR, "backend.available",
                             "the '%s' backend is unavailable here%s%s", ops->name, why ? ": " : "",
                             why ? why : "");
                return;
        }
        if (!options->offline && !ops->migrate_prepare) {
                findings_add(out, FINDING_ERROR, "backend.available",
                             "the '%s' backend here cannot receive migrated domains", ops->name);
                return;
        }
        const MigrateOptionSupport *support = NULL;
        size_t n_support = 0;
        if (ops->migrate_options) {
                support = ops->migrate_options(data, &n_support);
                if (migrate_options_check(options, ops->name, support, n_support, &error) < 0) {
                        findings_add_code(out, FINDING_ERROR, error->code, "options.valid", "%s",
                                          error->message);
                        return; /* the checks below assume options this backend takes */
                }
        }

        if (!options->offline)
                check_hooks(m->hooks_dir, def, out);
        if (backend_streams(support, n_support))
                check_encryption_destination(m, options, source, out);

        size_t errors_before = findings_count_errors(out);
        if (ops->migrate_check) {
                PreflightContext ctx = {
                        .side = PREFLIGHT_DESTINATION,
                        .def = def,
                        .options = options,
                        .facts = facts,
                        .source = source,
                };
                ops->migrate_check(data, &ctx, out);
        }
        /* The backend's own validation catches what no specific check
         * names; reported only when those found nothing, so that one
         * problem is not reported twice. */
        g_clear_error(&error);
        if (!options->offline && ops->validate && findings_count_errors(out) == errors_before &&
            ops->validate(data, def, &error) < 0)
                findings_add_code(out, FINDING_ERROR, error->code, "backend.definition", "%s",
                                  error->message);
}

/* Guests arriving here besides def (whose own Prepare may be the one
 * asking again). */
static void count_arriving(Manager *m, const DomainDef *def, HostFacts *facts) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->jobs);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                const Job *j = value;
                if (j->kind != JOB_MIGRATION_IN || job_phase_is_final(j->phase) ||
                    g_str_equal(domain_uuid(j->domain), def->uuid))
                        continue;
                facts->mem_arriving += j->domain->def->memory_bytes;
                facts->n_arriving++;
        }
}

void preflight_destination(Manager *m, const DomainDef *def, const MigrateOptions *options,
                           const char *source_host_uuid, const SourceFacts *source, Findings *out) {
        g_auto(HostFacts) facts = { 0 };

        (void) host_facts_read(&facts);
        facts.networks_dir = g_strdup(m->networks_dir);
        count_arriving(m, def, &facts);
        preflight_destination_with_facts(m, &facts, def, options, source_host_uuid, source, out);
}

/* ---- source ---- */

static void check_domain_state(Domain *d, const MigrateOptions *options, Findings *out) {
        if (d->job) {
                findings_add_code(out, FINDING_ERROR, VM_ERROR_JOB_ACTIVE, "domain.state",
                                  "domain '%s' already has a job (%s, phase %s): wait for it or cancel it",
                                  domain_name(d), job_kind_to_string(d->job->kind),
                                  job_phase_to_string(d->job->phase));
                return;
        }
        if (d->pending_op != DOMAIN_OP_NONE) {
                findings_add(out, FINDING_ERROR, "domain.state", "domain '%s' is busy: '%s' is in progress",
                             domain_name(d), domain_op_to_string(d->pending_op));
                return;
        }
        if (options->offline) {
                if (!domain_is_persistent(d))
                        findings_add(
                                out, FINDING_ERROR, "domain.state",
                                "domain '%s' is transient: offline migration moves a definition, and it has "
                                "none; migrate it live",
                                domain_name(d));
                else if (domain_is_active(d))
                        findings_add(
                                out, FINDING_ERROR, "domain.state",
                                "domain '%s' is %s: offline migration moves the definition of a shut-off "
                                "domain; shut it down first, or migrate it live",
                                domain_name(d), domain_state_to_string(d->state));
                else
                {
                        preflight_check_offline_nvram(out, d->def);
                        preflight_check_offline_tpm(out, d->def);
                }
        } else if (d->state != DOMAIN_STATE_RUNNING && d->state != DOMAIN_STATE_PAUSED)
                findings_add(
                        out, FINDING_ERROR, "domain.state",
                        "domain '%s' is %s: only a running or paused domain can be migrated live; start it, "
                        "or use option 'offline'",
                        domain_name(d), domain_state_to_string(d->state));
}

void preflight_source_with_facts(Domain *d, const HostFacts *facts, const MigrateOptions *options,
                                 Findings *out) {
        Manager *m = d->manager;
        g_autoptr(MigrateOptions) o = migrate_options_copy(options);
        g_autoptr(GError) error = NULL;
        const MigrateOptionSupport *support = NULL;
        size_t n_support = 0;
        void *data;

        if (!m) {
                findings_add_code(out, FINDING_ERROR, VM_ERROR_NO_SUCH_DOMAIN, "domain.state",
                                  "domain '%s' no longer exists", domain_name(d));
                return;
        }
        data = manager_backend_data(m, d->backend);
        if (!d->backend->migrate_perform || !data) {
                findings_add(out, FINDING_ERROR, "backend.available",
                             "the '%s' backend cannot migrate domains%s", d->backend->name,
                             data ? "" : " (it is unavailable here)");
                return;
        }
        if (m->max_outgoing && manager_count_running_jobs(m, JOB_MIGRATION_OUT) >= m->max_outgoing)
                findings_add(out, FINDING_ERROR, "limits.outgoing",
                             "%u migrations are already leaving this host, the most allowed "
                             "(MaxOutgoingMigrations=, vmigrated --max-outgoing-migrations); wait for one to "
                             "end",
                             m->max_outgoing);

        if (d->backend->migrate_options)
                support = d->backend->migrate_options(data, &n_support);
        if (migrate_options_check(o, d->backend->name, support, n_support, &error) < 0) {
                findings_add_code(out, FINDING_ERROR, error->code, "options.valid", "%s", error->message);
                check_domain_state(d, o, out);
                return; /* what the options would do is unknown */
        }
        migrate_options_apply_defaults(o, support, n_support);
        g_auto(GStrv) warnings = migrate_options_warnings(o);
        for (char **w = warnings; *w; w++)
                findings_add(out, FINDING_WARNING, "options.valid", "%s", *w);
        check_domain_state(d, o, out);
        if (backend_streams(support, n_support))
                check_encryption_source(m, d->def, o, out);

        if (migrate_options_has(o, MIGRATE_OPTION_DESTINATION_XML)) {
                g_autoptr(DomainDef) dest = NULL;
                g_clear_error(&error);
                if (domain_def_parse(o->destination_xml, strlen(o->destination_xml), &dest, &error) < 0)
                        findings_add_code(out, FINDING_ERROR, error->code, "options.valid",
                                          "option 'destination-xml': %s", error->message);
                else if (domain_def_check_abi_stable(d->def, dest, &error) < 0)
                        /* Its message names the option already. */
                        findings_add_code(out, FINDING_ERROR, error->code, "options.valid", "%s",
                                          error->message);
        }

        if (!o->offline && d->backend->migrate_check) {
                PreflightContext ctx = {
                        .side = PREFLIGHT_SOURCE,
                        .def = d->def,
                        .options = o,
                        .facts = facts,
                };
                d->backend->migrate_check(data, &ctx, out);
        }
}

void preflight_dry_run_note(Findings *f) {
        findings_add(
                f, FINDING_INFO, "dry-run.best-effort",
                "a dry run is best-effort: memory, disks, ports and other migrations can change before the "
                "real migration, which runs the same checks again");
}

int preflight_policy(Domain *d, MigrateOptions *o, Policy **ret, GError **error) {
        g_autoptr(GPtrArray) policies = NULL;
        const MigrateOptionSupport *support;
        size_t n_support;

        if ((migrate_options_has(o, MIGRATE_OPTION_OFFLINE) && o->offline) ||
            (migrate_options_has(o, MIGRATE_OPTION_POSTCOPY_RESUME) && o->postcopy_resume)) {
                if (migrate_options_has(o, MIGRATE_OPTION_POLICY))
                        return vm_error_set(error, VM_ERROR_CONFLICTING_OPTIONS,
                                            "option 'policy' is for a live migration's memory copy; %s has none: "
                                            "drop it",
                                            o->offline ? "an offline migration" : "a post-copy recovery");
                *ret = NULL;
                return 0;
        }
        if (!d->manager)
                return vm_error_set(error, VM_ERROR_NO_SUCH_DOMAIN, "domain '%s' no longer exists", domain_name(d));
        support = domain_migrate_option_support(d, &n_support);
        policies = policy_load_all(d->manager->policies_dir);
        return policy_apply(policies, o, support, n_support, ret, error);
}

void preflight_source(Domain *d, const MigrateOptions *options, Findings *out) {
        g_auto(HostFacts) facts = { 0 };

        (void) host_facts_read(&facts);
        preflight_source_with_facts(d, &facts, options, out);
}
