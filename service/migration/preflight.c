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
 *     "host-b: 1.2 GiB of memory available, the domain needs 2.0 GiB + 64.0 MiB overhead; …"
 * resources.vcpus             dst  warn   vCPUs <= online host CPUs
 *     "host-b: the domain has 8 vCPUs but this host has 4 CPUs: they will share them and run slower"
 * cpu.model                   dst  error  a custom CPU model is one this QEMU knows
 *     "host-b: QEMU 7.2.0 here has no CPU model 'Sapphire-Rapids'; upgrade QEMU here, or …"
 * cpu.features                dst  error  (kvm) features the <cpu> requires, and for host-passthrough,
 *                                         host-model and maximum all the source host's CPU flags, are here
 *     "host-b: this host's CPU lacks avx512f, sha_ni, which the guest may use (<cpu
 *      mode='host-passthrough'> on host-a); migrate to a host with the same CPU, or …"
 * machine.type                dst  error  the machine type is in this QEMU; /dev/kvm for type 'kvm'
 *     "host-b: QEMU 7.2.0 here has no machine type 'pc-q35-10.0' (the source's QEMU is probably newer); …"
 *                             dst  warn   the machine type is an unversioned alias ('pc', 'q35', none)
 *     "host-b: the domain's machine type 'pc' is an alias each QEMU resolves to its own newest version …"
 * qemu.postcopy               both error  post-copy: QEMU's postcopy-ram; destination: userfaultfd usable
 *     "host-b: post-copy needs userfaultfd, which QEMU cannot use here: …"
 * qemu.multifd                both error  parallel-connections: QEMU's multifd
 *     "host-b: option 'parallel-connections' needs QEMU's multifd, which QEMU 2.12.0 here lacks; …"
 * qemu.compression            both error  zstd/zlib: multifd compression (QEMU >= 5.0); xbzrle: xbzrle
 *     "host-b: compression 'zstd' needs multifd compression (QEMU 5.0 or newer), which QEMU 4.2.0 here …"
 * qemu.auto-converge          both error  auto-converge: QEMU's auto-converge
 *     "host-a: option 'auto-converge' needs QEMU's auto-converge, which QEMU … here lacks; …"
 * qemu.defect                 both error  known defects of this host's QEMU for the options: TCG pre-copy
 *                                         before 9.0 loses writes (a warning with option 'unsafe')
 *     "host-b: QEMU 7.2.0 here loses guest writes when a TCG guest migrates with pre-copy (fixed in
 *      QEMU 9.0): install QEMU 9.0 or newer here, or …"
 *                             both info   harmless ones (multifd statistics before 8.0)
 *     "host-a: QEMU 7.2.0 here reports total-time and mbps as 0 under multifd; …"
 * storage.disk                dst  error  disks that stay put exist, are usable and have the size the
 *                                         source reported (virtual size, by target dev); copied disks have
 *                                         their directory and are not smaller than the source's
 *     "host-b: disk /srv/vmigrate/images/vm1.qcow2 (vda) is missing (host-a has it, 2.0 GiB); put it on
 *      shared storage or use copy-storage"
 * storage.space               dst  error  copy-storage: free space on each file system >= the disks copied
 *     "host-b: 1.0 GiB free in /srv/images, copying 2 disks there needs 20.0 GiB; …"
 * boot.kernel                 dst  error  <kernel> exists, is a regular file, readable
 *     "host-b: kernel /srv/boot/vmlinuz is missing; copy it to the same path here, or …"
 * boot.initrd                 dst  error  <initrd> likewise
 * boot.firmware               dst  error  <loader> likewise
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
 *                                         at once: nothing stays bound)
 *     "host-b: no free port in 49152-49215 on 0.0.0.0 for the migration stream: …"
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
#include <unistd.h>

#include "backend.h"
#include "domain.h"
#include "hooks.h"
#include "manager.h"
#include "preflight.h"
#include "qemu-caps.h"
#include "uri.h"

/* ---- findings ---- */

struct Findings {
        char *host;
        GPtrArray *items; /* Finding* */
        /* Over FINDINGS_MAX: counted, with the worst severity among them. */
        size_t n_dropped;
        size_t n_dropped_errors;
        FindingSeverity dropped_max;
};

static const char *const severity_words[] = {
        [FINDING_INFO] = "info",
        [FINDING_WARNING] = "warning",
        [FINDING_ERROR] = "error",
};

const char *finding_severity_to_string(FindingSeverity s) {
        return s <= FINDING_ERROR ? severity_words[s] : NULL;
}

int finding_severity_from_string(const char *s) {
        for (size_t i = 0; i < G_N_ELEMENTS(severity_words); i++)
                if (g_strcmp0(s, severity_words[i]) == 0)
                        return (int) i;
        return -1;
}

static bool finding_id_is_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > FINDING_ID_MAX)
                return false;
        for (const char *p = id; *p; p++)
                if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '.' && *p != '-')
                        return false;
        return true;
}

static VmError code_for_id(const char *id) {
        if (g_str_has_prefix(id, "limits."))
                return VM_ERROR_LIMIT_REACHED;
        if (g_str_equal(id, "domain.state"))
                return VM_ERROR_INVALID_STATE;
        if (g_str_has_prefix(id, "domain."))
                return VM_ERROR_DOMAIN_EXISTS;
        if (g_str_equal(id, "host.same"))
                return VM_ERROR_INVALID_DESTINATION;
        if (g_str_equal(id, "destination.reachable"))
                return VM_ERROR_DESTINATION_UNREACHABLE;
        if (g_str_equal(id, "options.valid"))
                return VM_ERROR_INVALID_OPTION;
        if (g_str_equal(id, "backend.available"))
                return VM_ERROR_UNSUPPORTED_BACKEND;
        return VM_ERROR_INCOMPATIBLE;
}

static void finding_free(Finding *f) {
        g_free(f->id);
        g_free(f->message);
        g_free(f);
}

Findings *findings_new(const char *host) {
        Findings *f = g_new0(Findings, 1);

        f->host = g_strdup(host && *host ? host : "localhost");
        f->items = g_ptr_array_new_with_free_func((GDestroyNotify) finding_free);
        return f;
}

void findings_free(Findings *f) {
        if (!f)
                return;
        g_ptr_array_unref(f->items);
        g_free(f->host);
        g_free(f);
}

const char *findings_host(const Findings *f) {
        return f->host;
}

size_t findings_count(const Findings *f) {
        return f->items->len;
}

const Finding *findings_get(const Findings *f, size_t i) {
        return i < f->items->len ? f->items->pdata[i] : NULL;
}

const Finding *findings_find(const Findings *f, const char *id) {
        for (unsigned i = 0; i < f->items->len; i++) {
                const Finding *x = f->items->pdata[i];
                if (g_str_equal(x->id, id))
                        return x;
        }
        return NULL;
}

/* Takes message. Keeps FINDINGS_MAX - 1 so that the summary of what was
 * dropped still fits in FINDINGS_MAX entries on the wire. */
static void findings_push(Findings *f, FindingSeverity severity, VmError code, const char *id,
                          char *message) {
        if (f->items->len >= FINDINGS_MAX - 1) {
                f->n_dropped++;
                if (severity == FINDING_ERROR)
                        f->n_dropped_errors++;
                f->dropped_max = MAX(f->dropped_max, severity);
                g_free(message);
                return;
        }
        Finding *x = g_new0(Finding, 1);
        x->severity = severity;
        x->id = g_strdup(id);
        x->message = message;
        x->code = code;
        g_ptr_array_add(f->items, x);
}

/* Our own messages quote paths and names from a peer's XML: keep them
 * printable and bounded, so that the other host accepts them. */
static char *message_sanitize(char *message) {
        g_autofree char *raw = message;
        char *valid = g_utf8_make_valid(raw, -1);
        size_t n;

        for (char *p = valid; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        n = strlen(valid);
        if (n > FINDING_MESSAGE_MAX) {
                n = FINDING_MESSAGE_MAX;
                while (n > 0 && ((unsigned char) valid[n] & 0xc0) == 0x80)
                        n--;
                valid[n] = '\0';
        }
        return valid;
}

static void findings_addv(Findings *f, FindingSeverity severity, VmError code, const char *id,
                          const char *format, va_list ap) {
        g_autofree char *body = NULL;

        g_assert(finding_id_is_valid(id));
        g_assert(severity <= FINDING_ERROR);
        body = g_strdup_vprintf(format, ap);
        findings_push(f, severity, code, id, message_sanitize(g_strdup_printf("%s: %s", f->host, body)));
}

void findings_add(Findings *f, FindingSeverity severity, const char *id, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        findings_addv(f, severity, code_for_id(id), id, format, ap);
        va_end(ap);
}

void findings_add_code(Findings *f, FindingSeverity severity, VmError code, const char *id,
                       const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        findings_addv(f, severity, code, id, format, ap);
        va_end(ap);
}

const Finding *findings_first_error(const Findings *f) {
        for (unsigned i = 0; i < f->items->len; i++) {
                const Finding *x = f->items->pdata[i];
                if (x->severity == FINDING_ERROR)
                        return x;
        }
        return NULL;
}

bool findings_has_errors(const Findings *f) {
        return findings_first_error(f) || f->n_dropped_errors > 0;
}

int findings_to_error(const Findings *f, GError **error) {
        const Finding *first = findings_first_error(f);
        size_t n_errors = f->n_dropped_errors;

        if (!first && n_errors == 0)
                return 0;
        for (unsigned i = 0; i < f->items->len; i++)
                if (((const Finding *) f->items->pdata[i])->severity == FINDING_ERROR)
                        n_errors++;
        if (!first)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "%s: %zu problems; Domain.DryRun lists them", f->host, n_errors);
        if (n_errors > 1)
                return vm_error_set(error, first->code,
                                    "%s (and %zu more problem%s; Domain.DryRun lists them)", first->message,
                                    n_errors - 1, n_errors - 1 == 1 ? "" : "s");
        return vm_error_set(error, first->code, "%s", first->message);
}

GVariant *findings_to_variant(const Findings *f) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
        for (unsigned i = 0; i < f->items->len; i++) {
                const Finding *x = f->items->pdata[i];
                g_variant_builder_add(&b, "(sss)", finding_severity_to_string(x->severity), x->id,
                                      x->message);
        }
        if (f->n_dropped > 0) {
                g_autofree char *message =
                        g_strdup_printf("%s: %zu more finding%s not shown (%zu of them errors)", f->host,
                                        f->n_dropped, f->n_dropped == 1 ? "" : "s", f->n_dropped_errors);
                g_variant_builder_add(&b, "(sss)", finding_severity_to_string(f->dropped_max),
                                      "findings.truncated", message);
        }
        return g_variant_builder_end(&b);
}

static bool message_is_acceptable(const char *m) {
        if (strlen(m) > FINDING_MESSAGE_MAX || !g_utf8_validate(m, -1, NULL))
                return false;
        for (const unsigned char *p = (const unsigned char *) m; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

int findings_append_variant(Findings *f, GVariant *v, GError **error) {
        GVariantIter iter;
        const char *severity, *id, *message;
        size_t n, i = 0;

        if (!v || !g_variant_is_of_type(v, G_VARIANT_TYPE("a(sss)")))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "the findings are %s, not a(sss)",
                                    v ? g_variant_get_type_string(v) : "missing");
        n = g_variant_n_children(v);
        if (n > FINDINGS_MAX)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%zu findings, more than the %d allowed",
                                    n, FINDINGS_MAX);

        /* All or nothing: a bad entry refuses the list. */
        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &id, &message)) {
                if (finding_severity_from_string(severity) < 0)
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "finding %zu: unknown severity (not error, warning or info)", i);
                if (!finding_id_is_valid(id))
                        return vm_error_set(
                                error, VM_ERROR_INCOMPATIBLE,
                                "finding %zu: the id is not 1-%d characters of a-z, 0-9, '.' and '-'", i,
                                FINDING_ID_MAX);
                if (!message_is_acceptable(message))
                        return vm_error_set(
                                error, VM_ERROR_INCOMPATIBLE,
                                "finding %zu (%s): the message is longer than %d bytes or has control "
                                "characters",
                                i, id, FINDING_MESSAGE_MAX);
                i++;
        }
        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &id, &message))
                findings_push(f, finding_severity_from_string(severity), code_for_id(id), id,
                              g_strdup(message));
        return 0;
}

/* ---- host facts ---- */

static uint64_t meminfo_value(const char *meminfo, const char *key) {
        const char *p = meminfo ? strstr(meminfo, key) : NULL;

        return p ? g_ascii_strtoull(p + strlen(key), NULL, 10) * 1024 : 0;
}

static GStrv read_cpu_flags(void) {
        g_autofree char *cpuinfo = NULL;
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL))
                return NULL;
        lines = g_strsplit(cpuinfo, "\n", -1);
        for (char **l = lines; *l; l++) {
                /* "flags" on x86; the first CPU speaks for all (they are
                 * the same on the machines QEMU migrates between). */
                if (!g_str_has_prefix(*l, "flags"))
                        continue;
                const char *colon = strchr(*l, ':');
                if (!colon)
                        continue;
                g_autoptr(GStrvBuilder) b = g_strv_builder_new();
                g_auto(GStrv) words = g_strsplit_set(colon + 1, " \t", -1);
                for (char **w = words; *w; w++)
                        if (**w)
                                g_strv_builder_add(b, *w);
                return g_strv_builder_end(b);
        }
        return NULL;
}

/* QEMU runs with our credentials, so what we may do it may: try the
 * syscall (kernel faults, as post-copy needs), then /dev/userfaultfd
 * (which QEMU 8.1 and later use when the syscall is refused). */
static bool userfaultfd_usable(char **ret_why) {
        int err = ENOSYS;

#ifdef SYS_userfaultfd
        int fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
                close(fd);
                return true;
        }
        err = errno;
#endif
        if (access("/dev/userfaultfd", R_OK | W_OK) == 0)
                return true;
        if (err == ENOSYS)
                *ret_why = g_strdup("the kernel has no userfaultfd (CONFIG_USERFAULTFD)");
        else if (err == EPERM)
                *ret_why =
                        g_strdup("vm.unprivileged_userfaultfd is 0, /dev/userfaultfd is not accessible and "
                                 "vmigrated lacks CAP_SYS_PTRACE: run it as root, set the sysctl "
                                 "vm.unprivileged_userfaultfd=1, or give it access to /dev/userfaultfd");
        else
                *ret_why = g_strdup_printf("userfaultfd() fails: %s", g_strerror(err));
        return false;
}

int host_facts_read(HostFacts *ret) {
        g_autofree char *meminfo = NULL;
        long cpus;

        *ret = (HostFacts){ 0 };
        (void) g_file_get_contents("/proc/meminfo", &meminfo, NULL, NULL);
        ret->mem_total = meminfo_value(meminfo, "MemTotal:");
        ret->mem_available = meminfo_value(meminfo, "MemAvailable:");
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        ret->cpus = cpus > 0 ? (unsigned) cpus : 0;
        ret->cpu_flags = read_cpu_flags();
        ret->kvm = access("/dev/kvm", R_OK | W_OK) == 0;
        ret->userfaultfd = userfaultfd_usable(&ret->userfaultfd_why);
        ret->sys_class_net = g_strdup("/sys/class/net");
        ret->port_min = PREFLIGHT_PORT_MIN;
        ret->port_max = PREFLIGHT_PORT_MAX;
        return 0;
}

void host_facts_clear(HostFacts *facts) {
        g_clear_pointer(&facts->cpu_flags, g_strfreev);
        g_clear_pointer(&facts->userfaultfd_why, g_free);
        g_clear_pointer(&facts->sys_class_net, g_free);
}

/* ---- source facts ---- */

int disk_virtual_size(const char *path, const char *format, uint64_t *ret_size) {
        struct stat st;
        uint64_t size;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (S_ISBLK(st.st_mode)) {
                if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
        } else if (!S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADFD;
        } else if (g_strcmp0(format, "qcow2") == 0) {
                /* Header: magic "QFI\xfb", version, backing file offset and
                 * size, cluster bits, then the virtual size at 24, all
                 * big-endian. The file's own size grows as the guest writes. */
                unsigned char header[32];
                if (pread(fd, header, sizeof(header), 0) != (ssize_t) sizeof(header) ||
                    memcmp(header, "QFI\xfb", 4) != 0) {
                        close(fd);
                        return -EBADMSG;
                }
                size = 0;
                for (int i = 24; i < 32; i++)
                        size = (size << 8) | header[i];
        } else
                size = (uint64_t) st.st_size;
        close(fd);
        *ret_size = size;
        return 0;
}

void source_facts_add_to_cookie(const DomainDef *source_def, const HostFacts *facts, GVariantDict *cookie) {
        GVariantBuilder sizes;

        g_variant_builder_init(&sizes, G_VARIANT_TYPE("a{st}"));
        for (unsigned i = 0; i < source_def->disks->len && i < SOURCE_FACTS_MAX_DISKS; i++) {
                const DomainDiskDef *disk = source_def->disks->pdata[i];
                uint64_t size;

                if (disk->source_file && disk->target_dev &&
                    disk_virtual_size(disk->source_file, disk->driver_type, &size) >= 0)
                        g_variant_builder_add(&sizes, "{st}", disk->target_dev, (guint64) size);
        }
        g_variant_dict_insert_value(cookie, "disk-sizes", g_variant_builder_end(&sizes));
        if (facts && facts->cpu_flags) {
                guint n = MIN(g_strv_length(facts->cpu_flags), SOURCE_FACTS_MAX_CPU_FLAGS);
                g_variant_dict_insert_value(cookie, "cpu-flags",
                                            g_variant_new_strv((const char *const *) facts->cpu_flags, n));
        }
}

void source_facts_free(SourceFacts *s) {
        if (!s)
                return;
        g_free(s->hostname);
        if (s->disk_sizes)
                g_hash_table_unref(s->disk_sizes);
        g_strfreev(s->cpu_flags);
        g_free(s);
}

static bool name_is_simple(const char *s, size_t max, const char *extra) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && !strchr(extra, *p))
                        return false;
        return true;
}

int source_facts_from_cookie(GVariant *cookie, SourceFacts **ret, GError **error) {
        g_autoptr(SourceFacts) s = g_new0(SourceFacts, 1);
        g_autoptr(GVariant) sizes = NULL, flags = NULL, hostname = NULL;

        if (!g_variant_is_of_type(cookie, G_VARIANT_TYPE_VARDICT))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source's cookie is not an a{sv} dictionary");

        hostname = g_variant_lookup_value(cookie, "hostname", NULL);
        if (hostname) {
                if (!g_variant_is_of_type(hostname, G_VARIANT_TYPE_STRING) ||
                    g_variant_get_size(hostname) > 256)
                        return vm_error_set(
                                error, VM_ERROR_INCOMPATIBLE,
                                "the source's cookie member 'hostname' is not a string of at most 255 "
                                "bytes");
                s->hostname = message_sanitize(g_variant_dup_string(hostname, NULL));
        }

        sizes = g_variant_lookup_value(cookie, "disk-sizes", NULL);
        if (sizes) {
                GVariantIter iter;
                const char *dev;
                guint64 size;

                if (!g_variant_is_of_type(sizes, G_VARIANT_TYPE("a{st}")))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source's cookie member 'disk-sizes' is %s, not a{st}",
                                            g_variant_get_type_string(sizes));
                if (g_variant_n_children(sizes) > SOURCE_FACTS_MAX_DISKS)
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source reports %zu disk sizes, more than the %d allowed",
                                            g_variant_n_children(sizes), SOURCE_FACTS_MAX_DISKS);
                s->disk_sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                g_variant_iter_init(&iter, sizes);
                while (g_variant_iter_next(&iter, "{&st}", &dev, &size)) {
                        if (!name_is_simple(dev, 32, ""))
                                return vm_error_set(
                                        error, VM_ERROR_INCOMPATIBLE,
                                        "the source reports the size of a disk whose target is not "
                                        "1-32 characters of a-z and 0-9");
                        if (g_hash_table_contains(s->disk_sizes, dev))
                                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                                    "the source reports the size of disk %s twice", dev);
                        g_hash_table_insert(s->disk_sizes, g_strdup(dev), g_memdup2(&size, sizeof(size)));
                }
        }

        flags = g_variant_lookup_value(cookie, "cpu-flags", NULL);
        if (flags) {
                g_autoptr(GStrvBuilder) b = g_strv_builder_new();
                GVariantIter iter;
                const char *flag;

                if (!g_variant_is_of_type(flags, G_VARIANT_TYPE_STRING_ARRAY))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source's cookie member 'cpu-flags' is %s, not as",
                                            g_variant_get_type_string(flags));
                if (g_variant_n_children(flags) > SOURCE_FACTS_MAX_CPU_FLAGS)
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source reports %zu CPU flags, more than the %d allowed",
                                            g_variant_n_children(flags), SOURCE_FACTS_MAX_CPU_FLAGS);
                g_variant_iter_init(&iter, flags);
                while (g_variant_iter_next(&iter, "&s", &flag)) {
                        if (!name_is_simple(flag, 64, "_.-"))
                                return vm_error_set(
                                        error, VM_ERROR_INCOMPATIBLE,
                                        "the source reports a CPU flag that is not 1-64 characters of "
                                        "a-z, 0-9, '_', '.' and '-'");
                        g_strv_builder_add(b, flag);
                }
                s->cpu_flags = g_strv_builder_end(b);
        }

        *ret = g_steal_pointer(&s);
        return 0;
}

/* ---- helpers ---- */

/* "2.0 GiB", with a plain space: GLib puts a no-break space there, which
 * scripts matching on messages would not expect. */
static char *format_size(uint64_t bytes) {
        g_autofree char *s = g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
        GString *out = g_string_new(s);

        g_string_replace(out, "\xc2\xa0", " ", 0);
        return g_string_free(out, false);
}

static const char *source_name(const SourceFacts *source) {
        return source && source->hostname ? source->hostname : "the source";
}

static uint64_t memory_overhead(uint64_t memory) {
        /* QEMU itself, device state, page tables: a fixed floor, then
         * growing with the guest. */
        return MAX((uint64_t) 64 << 20, memory / 64);
}

static void qemu_version_string(const QemuCaps *caps, char buf[static 32]) {
        g_snprintf(buf, 32, "QEMU %u.%u.%u", caps->major, caps->minor, caps->micro);
}

/* ---- destination: host resources ---- */

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

static void space_need_clear(SpaceNeed *n) {
        g_free(n->dir);
}

static bool disk_is_copied(const DomainDiskDef *disk, const MigrateOptions *options) {
        /* As libvirt: read-only media and disks shared on purpose stay
         * where they are. */
        return options->copy_storage != MIGRATE_COPY_STORAGE_NONE && !disk->readonly && !disk->shareable &&
                g_strcmp0(disk->device, "cdrom") != 0;
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
                                path, disk->target_dev, source_name(source), source_size_str ? ", " : "",
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
                        path, disk->target_dev, g_strerror(-r), source_name(source));
                return;
        }
        if (size != *source_size) {
                g_autofree char *here = format_size(size);
                findings_add(
                        out, severity, "storage.disk",
                        "disk %s (%s) is %s here but %s on %s: it is not the same image; check that the "
                        "shared storage is mounted at the same path, or use copy-storage",
                        path, disk->target_dev, here, source_size_str, source_name(source));
        }
}

/* A copied disk needs its directory and, summed per file system, space. */
static void check_copied_disk(Findings *out, FindingSeverity severity, const DomainDiskDef *disk,
                              const SourceFacts *source, const uint64_t *source_size, GArray *needs) {
        g_autofree char *dir = g_path_get_dirname(disk->source_file);
        struct stat st;
        uint64_t size;

        if (stat(disk->source_file, &st) == 0 && source_size &&
            disk_virtual_size(disk->source_file, disk->driver_type, &size) >= 0 && size < *source_size) {
                g_autofree char *here = format_size(size), *there = format_size(*source_size);
                findings_add(
                        out, severity, "storage.disk",
                        "disk %s (%s) exists here with %s, smaller than the %s to be copied from %s; remove "
                        "or grow it",
                        disk->source_file, disk->target_dev, here, there, source_name(source));
                return;
        }
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                findings_add(out, severity, "storage.disk",
                             "directory %s for disk %s (%s) is missing; create it, or put the disk "
                             "elsewhere with "
                             "option 'destination-xml'",
                             dir, disk->source_file, disk->target_dev);
                return;
        }
        if (!source_size) {
                findings_add(out, FINDING_INFO, "storage.space",
                             "free space for disk %s (%s) was not checked: %s did not report its size",
                             disk->source_file, disk->target_dev, source_name(source));
                return;
        }
        for (unsigned i = 0; i < needs->len; i++) {
                SpaceNeed *n = &g_array_index(needs, SpaceNeed, i);
                if (n->dev == st.st_dev) {
                        n->bytes += *source_size;
                        n->n_disks++;
                        return;
                }
        }
        SpaceNeed n = {
                .dev = st.st_dev, .dir = g_steal_pointer(&dir), .bytes = *source_size, .n_disks = 1
        };
        g_array_append_val(needs, n);
}

static void check_space(Findings *out, FindingSeverity severity, GArray *needs) {
        for (unsigned i = 0; i < needs->len; i++) {
                const SpaceNeed *n = &g_array_index(needs, SpaceNeed, i);
                struct statvfs sv;

                if (statvfs(n->dir, &sv) < 0) {
                        findings_add(out, FINDING_WARNING, "storage.space",
                                     "free space in %s cannot be read (%s), so it was not checked", n->dir,
                                     g_strerror(errno));
                        continue;
                }
                uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
                if (avail < n->bytes) {
                        g_autofree char *a = format_size(avail), *need = format_size(n->bytes);
                        findings_add(out, severity, "storage.space",
                                     "%s free in %s, copying %u disk%s there needs %s; free space, or put "
                                     "the disks "
                                     "elsewhere with option 'destination-xml'",
                                     a, n->dir, n->n_disks, n->n_disks == 1 ? "" : "s", need);
                }
        }
}

static bool bridge_name_is_safe(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= 16 || g_str_equal(s, ".") || g_str_equal(s, ".."))
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p == '/' || *p <= 0x20 || *p == 0x7f)
                        return false;
        return true;
}

char *preflight_bridge_problem(const char *sys_class_net, const char *bridge) {
        const char *root = sys_class_net ? sys_class_net : "/sys/class/net";

        if (!bridge_name_is_safe(bridge))
                return g_strdup_printf("'%s' is not a bridge name", bridge);
        g_autofree char *dev = g_build_filename(root, bridge, NULL);
        g_autofree char *dir = g_build_filename(dev, "bridge", NULL);
        if (g_file_test(dir, G_FILE_TEST_IS_DIR))
                return NULL;
        if (g_file_test(dev, G_FILE_TEST_EXISTS))
                return g_strdup_printf("network device %s exists but is not a bridge", bridge);
        return g_strdup_printf("bridge %s is missing", bridge);
}

/* A bridge the domain requires (<vmigrate:require interface=…/>) must be
 * there; any other may be missing: its interface then runs unconnected,
 * which the migration reports as a warning. */
static void check_bridges(Findings *out, FindingSeverity severity, const DomainDef *def,
                          const HostFacts *facts) {
        for (unsigned i = 0; i < def->interfaces->len; i++) {
                const DomainInterfaceDef *iface = def->interfaces->pdata[i];
                g_autofree char *problem = NULL;

                if (g_strcmp0(iface->type, "bridge") != 0 || !iface->source)
                        continue;
                problem = preflight_bridge_problem(facts->sys_class_net, iface->source);
                if (!problem)
                        continue;
                if (domain_def_requires_interface(def, iface))
                        findings_add(out, severity, "network.bridge",
                                     "%s, and interface %s requires it (<vmigrate:require interface>); create "
                                     "it (ip link add %s type bridge) or pick another with option "
                                     "'destination-xml'",
                                     problem, iface->mac, iface->source);
                else
                        findings_add(out, FINDING_WARNING, "network.bridge",
                                     "%s: interface %s would run unconnected (link down); create it (ip link "
                                     "add %s type bridge), pick another with option 'destination-xml', or "
                                     "require it to refuse the migration instead",
                                     problem, iface->mac, iface->source);
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
                else if (facts->mem_available < def->memory_bytes + overhead) {
                        g_autofree char *avail = format_size(facts->mem_available);
                        findings_add(out, FINDING_ERROR, "resources.memory",
                                     "%s of memory available, the domain needs %s + %s overhead; free "
                                     "memory here or "
                                     "migrate to another host",
                                     avail, mem, over);
                }
        }
        if (facts->cpus > 0 && def->vcpus > facts->cpus)
                findings_add(
                        out, FINDING_WARNING, "resources.vcpus",
                        "the domain has %u vCPUs but this host has %u CPUs: they will share them and run "
                        "slower",
                        def->vcpus, facts->cpus);

        check_boot_file(out, severity, "boot.kernel", "kernel", def->os_kernel);
        check_boot_file(out, severity, "boot.initrd", "initrd", def->os_initrd);
        check_boot_file(out, severity, "boot.firmware", "firmware", def->os_loader);

        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                const uint64_t *size = NULL;

                if (!disk->source_file)
                        continue; /* an empty CD-ROM drive */
                if (source && source->disk_sizes && disk->target_dev)
                        size = g_hash_table_lookup(source->disk_sizes, disk->target_dev);
                if (disk_is_copied(disk, options))
                        check_copied_disk(out, severity, disk, source, size, needs);
                else
                        check_shared_disk(out, severity, disk, source, size);
        }
        check_space(out, severity, needs);
        check_bridges(out, severity, def, facts);
}

/* ---- destination: the data port ---- */

/* 0: free; else the bind errno. SO_REUSEADDR as QEMU sets it, so that a
 * port only in TIME_WAIT counts as free, as it is for QEMU. */
static int port_try_bind(int family, const struct sockaddr *sa, socklen_t len) {
        int fd, one = 1, r = 0;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, sa, len) < 0)
                r = errno;
        close(fd);
        return r;
}

void preflight_data_port(const HostFacts *facts, const char *listen_address, uint16_t port, Findings *out) {
        const char *host = listen_address ? listen_address : "0.0.0.0";
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6 };
        struct sockaddr_in sa4 = { .sin_family = AF_INET };
        bool v6 = strchr(host, ':') != NULL;
        unsigned first = port ? port : facts->port_min, last = port ? port : facts->port_max;

        if (v6 ? inet_pton(AF_INET6, host, &sa6.sin6_addr) != 1
               : inet_pton(AF_INET, host, &sa4.sin_addr) != 1) {
                findings_add(out, FINDING_INFO, "network.port",
                             "listen address '%s' is not an IP address, so the data port was not checked",
                             host);
                return;
        }
        if (first == 0 || first > last) {
                findings_add(out, FINDING_ERROR, "network.port", "the data port range %u-%u is empty", first,
                             last);
                return;
        }
        for (unsigned p = first; p <= last; p++) {
                int r;
                if (v6) {
                        sa6.sin6_port = htons((uint16_t) p);
                        r = port_try_bind(AF_INET6, (struct sockaddr *) &sa6, sizeof(sa6));
                } else {
                        sa4.sin_port = htons((uint16_t) p);
                        r = port_try_bind(AF_INET, (struct sockaddr *) &sa4, sizeof(sa4));
                }
                if (r == 0)
                        return;
                if (r == EADDRNOTAVAIL) {
                        findings_add(out, FINDING_ERROR, "network.port",
                                     "listen address %s is not an address of this host; fix option "
                                     "'listen-address' or 'data-uri'",
                                     host);
                        return;
                }
                if (r != EADDRINUSE) {
                        findings_add(out, FINDING_ERROR, "network.port", "cannot bind port %u on %s: %s", p,
                                     host, g_strerror(r));
                        return;
                }
        }
        if (port)
                findings_add(out, FINDING_ERROR, "network.port",
                             "port %u on %s, from option 'data-uri', is in use; pick another port or leave "
                             "'data-uri' out",
                             port, host);
        else
                findings_add(
                        out, FINDING_ERROR, "network.port",
                        "no free port in %u-%u on %s for the migration stream: other migrations or programs "
                        "hold them all; wait for one to end, or name a port with option 'data-uri'",
                        first, last, host);
}

/* ---- qemu ---- */

/* libvirt's feature names and Linux's /proc/cpuinfo names differ in
 * punctuation and in a few words. */
static char *cpu_flag_normalize(const char *name) {
        static const struct {
                const char *from, *to;
        } aliases[] = {
                { "tsc_deadline", "tsc_deadline_timer" },
                { "pclmuldq", "pclmulqdq" },
                { "sse3", "pni" },
                { "i64", "lm" },
                { "xd", "nx" },
                { "invtsc", "constant_tsc" },
        };
        char *n = g_ascii_strdown(name, -1);

        g_strdelimit(n, ".-", '_');
        for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++)
                if (g_str_equal(n, aliases[i].from)) {
                        g_free(n);
                        return g_strdup(aliases[i].to);
                }
        return n;
}

/* Linux's own flags (synthetic, or about the host's virtualization or
 * power management): no guest sees them, so a difference does not matter. */
static bool cpu_flag_is_host_only(const char *flag) {
        static const char *const host_only[] = {
                "constant_tsc",
                "nonstop_tsc",
                "nonstop_tsc_s3",
                "tsc_reliable",
                "tsc_known_freq",
                "up",
                "art",
                "arch_perfmon",
                "pebs",
                "bts",
                "rep_good",
                "acc_power",
                "nopl",
                "xtopology",
                "cpuid",
                "extd_apicid",
                "amd_dcm",
                "aperfmperf",
                "ring3mwait",
                "cpuid_fault",
                "cpb",
                "epb",
                "cat_l3",
                "cat_l2",
                "cdp_l3",
                "cdp_l2",
                "invpcid_single",
                "hw_pstate",
                "proc_feedback",
                "pti",
                "ssbd",
                "mba",
                "ibrs",
                "ibpb",
                "stibp",
                "ibrs_enhanced",
                "intel_ppin",
                "sme",
                "sev",
                "sev_es",
                "sev_snp",
                "tpr_shadow",
                "vnmi",
                "flexpriority",
                "ept",
                "vpid",
                "ept_ad",
                "vmmcall",
                "xenpv",
                "flush_l1d",
                "arch_capabilities",
                "user_shstk",
                "tsc_adjust",
                "hypervisor",
                "dtherm",
                "ida",
                "arat",
                "pln",
                "pts",
                "hwp",
                "hwp_notify",
                "hwp_act_window",
                "hwp_epp",
                "hwp_pkg_req",
                "vmx",
                "svm",
                "npt",
                "lbrv",
                "svm_lock",
                "nrip_save",
                "tsc_scale",
                "vmcb_clean",
                "flushbyasid",
                "decodeassists",
                "pausefilter",
                "pfthreshold",
                "avic",
                "v_vmsave_vmload",
                "vgif",
                "v_spec_ctrl",
                "tsc_deadline_timer",
                "x2apic",
                "pdcm",
                "monitor",
                "ds_cpl",
                "est",
                "tm",
                "tm2",
                "xtpr",
                "dca",
                NULL,
        };
        return g_strv_contains(host_only, flag);
}

static bool flags_contain(const GStrv flags, const char *normalized) {
        for (char **f = flags; f && *f; f++) {
                g_autofree char *n = cpu_flag_normalize(*f);
                if (g_str_equal(n, normalized))
                        return true;
        }
        return false;
}

static void check_cpu(const QemuCaps *caps, const PreflightContext *ctx, FindingSeverity severity,
                      Findings *out) {
        const DomainDef *def = ctx->def;
        const HostFacts *facts = ctx->facts;
        bool tcg = g_str_equal(def->type, "qemu");
        g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func(g_free);
        const char *because = NULL;
        char version[32];

        qemu_version_string(caps, version);
        if (!def->cpu_mode)
                return; /* QEMU's default model: every QEMU has it */
        if (g_str_equal(def->cpu_mode, "custom") && def->cpu_model) {
                if (!caps->cpu_models)
                        findings_add(out, FINDING_INFO, "cpu.model",
                                     "%s here did not list its CPU models, so '%s' was not checked", version,
                                     def->cpu_model);
                else if (!g_strv_contains((const char *const *) caps->cpu_models, def->cpu_model))
                        findings_add(out, severity, "cpu.model",
                                     "%s here has no CPU model '%s'; upgrade QEMU here, or give the domain "
                                     "a model "
                                     "both hosts have",
                                     version, def->cpu_model);
        }
        if (tcg)
                return; /* TCG emulates the features: the host's CPU does not matter */
        if (!facts->cpu_flags) {
                findings_add(out, FINDING_INFO, "cpu.features",
                             "this host's CPU flags are unknown (/proc/cpuinfo), so the guest's CPU was not "
                             "checked");
                return;
        }

        for (unsigned i = 0; i < def->cpu_features->len; i++) {
                const DomainCpuFeatureDef *f = def->cpu_features->pdata[i];
                if (!g_str_equal(f->policy, "require") && !g_str_equal(f->policy, "force"))
                        continue;
                g_autofree char *n = cpu_flag_normalize(f->name);
                if (g_str_has_prefix(n, "kvm"))
                        continue; /* paravirtual: KVM provides them */
                if (!flags_contain(facts->cpu_flags, n))
                        g_ptr_array_add(missing, g_strdup(f->name));
        }
        if (missing->len > 0)
                because = "required by the domain's <cpu>";

        if (!g_str_equal(def->cpu_mode, "custom") && ctx->source && ctx->source->cpu_flags) {
                /* The guest saw the source's CPU: it may use any of its
                 * features, so all must be here. */
                for (char **f = ctx->source->cpu_flags; *f; f++) {
                        g_autofree char *n = cpu_flag_normalize(*f);
                        if (!cpu_flag_is_host_only(n) && !flags_contain(facts->cpu_flags, n) &&
                            !g_ptr_array_find_with_equal_func(missing, *f, g_str_equal, NULL))
                                g_ptr_array_add(missing, g_strdup(*f));
                }
                if (missing->len > 0)
                        because = NULL;
        }
        if (missing->len == 0)
                return;

        const char *them = missing->len == 1 ? "it" : "them";
        g_ptr_array_add(missing, NULL);
        g_autofree char *list = g_strjoinv(", ", (char **) missing->pdata);
        if (because)
                findings_add(out, severity, "cpu.features",
                             "this host's CPU lacks %s, %s; migrate to a host whose CPU has %s", list, because,
                             them);
        else
                findings_add(
                        out, severity, "cpu.features",
                        "this host's CPU lacks %s, which the guest may use (<cpu mode='%s'> on %s); migrate "
                        "to a host with the same CPU, or give the domain a custom CPU model both hosts have",
                        list, def->cpu_mode, source_name(ctx->source));
}

static bool machine_is_alias(const char *machine) {
        /* Unversioned names each QEMU maps to its own newest version. */
        return !machine || g_str_equal(machine, "pc") || g_str_equal(machine, "q35");
}

static void check_machine(const QemuCaps *caps, const PreflightContext *ctx, FindingSeverity severity,
                          Findings *out) {
        const DomainDef *def = ctx->def;
        char version[32];

        qemu_version_string(caps, version);
        if (g_str_equal(def->type, "kvm") && !ctx->facts->kvm)
                findings_add(
                        out, severity, "machine.type",
                        "domain type 'kvm' needs /dev/kvm, which is missing or not accessible here; enable "
                        "KVM here, or migrate to a host that has it");
        if (def->os_machine && !qemu_caps_has_machine(caps, def->os_machine))
                findings_add(out, severity, "machine.type",
                             "%s here has no machine type '%s' (the source's QEMU is probably newer); "
                             "upgrade QEMU "
                             "here",
                             version, def->os_machine);
        else if (!ctx->options->offline && machine_is_alias(def->os_machine))
                findings_add(
                        out, FINDING_WARNING, "machine.type",
                        "the domain's machine type %s%s%s is an alias each QEMU resolves to its own newest "
                        "version (%s here): if %s runs another QEMU version the guest may fail to arrive; "
                        "name a versioned machine type%s%s%s",
                        def->os_machine ? "'" : "", def->os_machine ? def->os_machine : "(none given: 'pc')",
                        def->os_machine ? "'" : "", version, source_name(ctx->source),
                        caps->default_machine ? " such as '" : "",
                        caps->default_machine ? caps->default_machine : "",
                        caps->default_machine ? "'" : "");
}

static bool wants_postcopy(const MigrateOptions *o) {
        return o->postcopy || (o->timeout > 0 && o->timeout_action == MIGRATE_TIMEOUT_ACTION_POSTCOPY);
}

static void check_qemu_features(const QemuCaps *caps, const PreflightContext *ctx, Findings *out) {
        const MigrateOptions *o = ctx->options;
        char version[32];

        qemu_version_string(caps, version);
        if (wants_postcopy(o)) {
                if (!qemu_caps_has_migration_capability(caps, "postcopy-ram"))
                        findings_add(out, FINDING_ERROR, "qemu.postcopy",
                                     "post-copy needs QEMU's postcopy-ram, which %s here lacks; upgrade "
                                     "QEMU here "
                                     "or migrate without 'postcopy'",
                                     version);
                if (ctx->side == PREFLIGHT_DESTINATION && !ctx->facts->userfaultfd)
                        findings_add(out, FINDING_ERROR, "qemu.postcopy",
                                     "post-copy needs userfaultfd, which QEMU cannot use here: %s",
                                     ctx->facts->userfaultfd_why ? ctx->facts->userfaultfd_why
                                                                 : "unknown reason");
        }
        if (o->parallel_connections > 0 && !qemu_caps_has_migration_capability(caps, "multifd"))
                findings_add(
                        out, FINDING_ERROR, "qemu.multifd",
                        "option 'parallel-connections' needs QEMU's multifd, which %s here lacks; upgrade "
                        "QEMU here or leave the option out",
                        version);
        if (o->compression == MIGRATE_COMPRESSION_ZSTD || o->compression == MIGRATE_COMPRESSION_ZLIB) {
                const char *method = o->compression == MIGRATE_COMPRESSION_ZSTD ? "zstd" : "zlib";
                if (!qemu_caps_has_migration_capability(caps, "multifd") ||
                    !qemu_caps_version_at_least(caps, 5, 0))
                        findings_add(
                                out, FINDING_ERROR, "qemu.compression",
                                "compression '%s' needs multifd compression (QEMU 5.0 or newer), which %s "
                                "here lacks; upgrade QEMU here or use another compression",
                                method, version);
        } else if (o->compression == MIGRATE_COMPRESSION_XBZRLE &&
                   !qemu_caps_has_migration_capability(caps, "xbzrle"))
                findings_add(out, FINDING_ERROR, "qemu.compression",
                             "compression 'xbzrle' needs QEMU's xbzrle, which %s here lacks; use another "
                             "compression",
                             version);
        if (o->auto_converge && !qemu_caps_has_migration_capability(caps, "auto-converge"))
                findings_add(
                        out, FINDING_ERROR, "qemu.auto-converge",
                        "option 'auto-converge' needs QEMU's auto-converge, which %s here lacks; leave the "
                        "option out",
                        version);
}

static void check_qemu_defects(const QemuCaps *caps, const PreflightContext *ctx, Findings *out) {
        const MigrateOptions *o = ctx->options;
        bool tcg = g_str_equal(ctx->def->type, "qemu");
        char version[32];

        qemu_version_string(caps, version);
        for (const QemuDefect *const *d = qemu_caps_defects(caps); *d; d++) {
                if (g_str_equal((*d)->id, "tcg-precopy-loses-writes")) {
                        if (!tcg || wants_postcopy(o))
                                continue;
                        if (o->unsafe)
                                findings_add(
                                        out, FINDING_WARNING, "qemu.defect",
                                        "%s here loses guest writes when a TCG guest migrates with pre-copy "
                                        "(fixed in QEMU 9.0); going ahead because of option 'unsafe': the "
                                        "guest's memory may arrive corrupted",
                                        version);
                        else
                                findings_add(
                                        out, FINDING_ERROR, "qemu.defect",
                                        "%s here loses guest writes when a TCG guest migrates with pre-copy "
                                        "(fixed in QEMU 9.0): install QEMU 9.0 or newer here, or use "
                                        "post-copy or offline migration; option 'unsafe' goes ahead anyway",
                                        version);
                } else if (g_str_equal((*d)->id, "multifd-stats-zero")) {
                        if (o->parallel_connections > 0)
                                findings_add(
                                        out, FINDING_INFO, "qemu.defect",
                                        "%s here reports total-time and mbps as 0 under multifd; vmigrate "
                                        "measures the time itself",
                                        version);
                } else
                        findings_add(out, FINDING_INFO, "qemu.defect", "%s here: %s", version,
                                     (*d)->description);
        }
}

void preflight_qemu(const QemuCaps *caps, const PreflightContext *ctx, Findings *out) {
        const MigrateOptions *o = ctx->options;
        FindingSeverity severity = o->offline ? FINDING_WARNING : FINDING_ERROR;

        if (ctx->side == PREFLIGHT_DESTINATION) {
                check_machine(caps, ctx, severity, out);
                check_cpu(caps, ctx, severity, out);
                preflight_host_resources(ctx, out);
                if (!o->offline) {
                        g_autofree char *host = NULL;
                        uint16_t port = 0;
                        if (o->data_uri)
                                (void) data_uri_parse(o->data_uri, &host, &port, NULL);
                        preflight_data_port(ctx->facts, o->listen_address, port, out);
                }
        }
        if (o->offline)
                return; /* no stream: nothing of QEMU's migration is used */
        check_qemu_features(caps, ctx, out);
        check_qemu_defects(caps, ctx, out);
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
        if (g_hash_table_contains(m->incoming, def->uuid)) {
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

static size_t count_errors(const Findings *f) {
        size_t n = f->n_dropped_errors;

        for (unsigned i = 0; i < f->items->len; i++)
                if (((const Finding *) f->items->pdata[i])->severity == FINDING_ERROR)
                        n++;
        return n;
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
        if (m->shutting_down)
                findings_add_code(out, FINDING_ERROR, VM_ERROR_INVALID_STATE, "limits.incoming",
                                  "vmigrated is stopping here; try again when it is back");
        else if (m->max_incoming && manager_count_running_jobs(m, JOB_MIGRATION_IN) >= m->max_incoming)
                findings_add(out, FINDING_ERROR, "limits.incoming",
                             "%u migrations are already arriving, the most allowed here "
                             "(vmigrated --max-incoming-migrations); try again when one has ended",
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
        if (ops->migrate_options) {
                size_t n = 0;
                const MigrateOptionSupport *support = ops->migrate_options(data, &n);
                if (migrate_options_check(options, ops->name, support, n, &error) < 0) {
                        findings_add_code(out, FINDING_ERROR, error->code, "options.valid", "%s",
                                          error->message);
                        return; /* the checks below assume options this backend takes */
                }
        }

        if (!options->offline)
                check_hooks(m->hooks_dir, def, out);

        size_t errors_before = count_errors(out);
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
        if (!options->offline && ops->validate && count_errors(out) == errors_before &&
            ops->validate(data, def, &error) < 0)
                findings_add_code(out, FINDING_ERROR, error->code, "backend.definition", "%s",
                                  error->message);
}

void preflight_destination(Manager *m, const DomainDef *def, const MigrateOptions *options,
                           const char *source_host_uuid, const SourceFacts *source, Findings *out) {
        g_auto(HostFacts) facts = { 0 };

        (void) host_facts_read(&facts);
        preflight_destination_with_facts(m, &facts, def, options, source_host_uuid, source, out);
}

/* ---- source ---- */

static MigrateOptions *options_copy(const MigrateOptions *o) {
        g_autoptr(GVariant) v = g_variant_ref_sink(migrate_options_to_variant(o));
        MigrateOptions *copy = NULL;

        if (migrate_options_parse(v, &copy, NULL) < 0)
                g_error("migration options do not survive their own round trip");
        return copy;
}

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
        g_autoptr(MigrateOptions) o = options_copy(options);
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
                             "(vmigrated --max-outgoing-migrations); wait for one to end",
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

        if (migrate_options_has(o, MIGRATE_OPTION_DESTINATION_XML)) {
                g_autoptr(DomainDef) dest = NULL;
                g_clear_error(&error);
                if (domain_def_parse(o->destination_xml, strlen(o->destination_xml), &dest, &error) < 0 ||
                    domain_def_check_abi_stable(d->def, dest, &error) < 0)
                        findings_add_code(out, FINDING_ERROR, error->code, "options.valid",
                                          "option 'destination-xml': %s", error->message);
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

void preflight_source(Domain *d, const MigrateOptions *options, Findings *out) {
        g_auto(HostFacts) facts = { 0 };

        (void) host_facts_read(&facts);
        preflight_source_with_facts(d, &facts, options, out);
}
