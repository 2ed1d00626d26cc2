/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the pre-flight checks know about a host (read from /proc, /sys and
 * the kernel), and what the source tells the destination about itself in
 * the Prepare cookie.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "findings.h"
#include "display-ports.h"
#include "host-facts.h"
#include "net.h"
#include "text.h"

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
        if (g_file_get_contents("/sys/devices/system/cpu/online", &ret->cpus_online, NULL, NULL))
                g_strstrip(ret->cpus_online);
        ret->cpu_flags = read_cpu_flags();
        ret->kvm = access("/dev/kvm", R_OK | W_OK) == 0;
        ret->userfaultfd = userfaultfd_usable(&ret->userfaultfd_why);
        ret->sys_class_net = g_strdup("/sys/class/net");
        ret->port_min = PREFLIGHT_PORT_MIN;
        ret->port_max = PREFLIGHT_PORT_MAX;
        display_ports_get_range(&ret->display_port_min, &ret->display_port_max);
        {
                char hostname[HOST_NAME_MAX + 1] = "";
                if (gethostname(hostname, sizeof(hostname) - 1) == 0)
                        ret->own_address = net_own_address("/etc/hosts", hostname);
        }
        return 0;
}

void host_facts_clear(HostFacts *facts) {
        g_clear_pointer(&facts->own_address, g_free);
        g_clear_pointer(&facts->cpus_online, g_free);
        g_clear_pointer(&facts->cpu_flags, g_strfreev);
        g_clear_pointer(&facts->userfaultfd_why, g_free);
        g_clear_pointer(&facts->sys_class_net, g_free);
        g_clear_pointer(&facts->networks_dir, g_free);
}

/* ---- source facts ---- */

/* An image whose chain cannot be read is left out: the destination then
 * says it could not check. */
static void add_disk_image(GVariantBuilder *images, const DomainDiskDef *disk, const DiskImageInfo *info) {
        g_autofree char *backing = NULL;
        g_auto(DiskImageInfo) backing_info = {};
        const char *backing_format = "";
        uint64_t chain;

        if (disk_image_chain_allocation(disk->source_file, disk->driver_type, &chain) < 0)
                return;
        if (info->backing_file) {
                backing = disk_image_backing_path(disk->source_file, info->backing_file);
                backing_format = info->backing_format ? info->backing_format : disk_image_probe_format(backing);
                if (!backing_format || disk_image_read(backing, backing_format, &backing_info) < 0)
                        return;
        }
        g_variant_builder_add(images, "{s(ttsst)}", disk->target_dev, (guint64) info->allocation, (guint64) chain,
                              backing ? backing : "", backing_format, (guint64) backing_info.virtual_size);
}

void source_facts_add_to_cookie(const DomainDef *source_def, const HostFacts *facts, const TlsCreds *tls,
                                GVariantDict *cookie) {
        GVariantBuilder sizes, images;

        g_variant_builder_init(&sizes, G_VARIANT_TYPE("a{st}"));
        g_variant_builder_init(&images, G_VARIANT_TYPE("a{s(ttsst)}"));
        for (unsigned i = 0; i < source_def->disks->len && i < SOURCE_FACTS_MAX_DISKS; i++) {
                const DomainDiskDef *disk = source_def->disks->pdata[i];
                g_auto(DiskImageInfo) info = {};

                if (!disk->source_file || !disk->target_dev ||
                    disk_image_read(disk->source_file, disk->driver_type, &info) < 0)
                        continue;
                g_variant_builder_add(&sizes, "{st}", disk->target_dev, (guint64) info.virtual_size);
                add_disk_image(&images, disk, &info);
        }
        g_variant_dict_insert_value(cookie, "disk-sizes", g_variant_builder_end(&sizes));
        g_variant_dict_insert_value(cookie, "disk-images", g_variant_builder_end(&images));
        if (facts && facts->cpu_flags) {
                guint n = MIN(g_strv_length(facts->cpu_flags), SOURCE_FACTS_MAX_CPU_FLAGS);
                g_variant_dict_insert_value(cookie, "cpu-flags",
                                            g_variant_new_strv((const char *const *) facts->cpu_flags, n));
        }
        if (tls && tls->ca_fingerprint && tls->client_dn) {
                g_variant_dict_insert(cookie, "tls-ca", "s", tls->ca_fingerprint);
                g_variant_dict_insert(cookie, "tls-client-dn", "s", tls->client_dn);
        }
}

/* An optional string member of at most max bytes without control
 * characters: 0 (and *ret NULL when absent), or VM_ERROR_INCOMPATIBLE. */
static int cookie_optional_string(GVariant *cookie, const char *key, size_t max, char **ret, GError **error) {
        g_autoptr(GVariant) v = g_variant_lookup_value(cookie, key, NULL);
        const char *s;

        *ret = NULL;
        if (!v)
                return 0;
        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) || g_variant_get_size(v) > max + 1)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source's cookie member '%s' is not a string of at most %zu bytes", key, max);
        s = g_variant_get_string(v, NULL);
        if (text_has_control(s))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source's cookie member '%s' has control characters", key);
        *ret = g_strdup(s);
        return 0;
}

const char *source_facts_name(const SourceFacts *source) {
        return source && source->hostname ? source->hostname : "the source";
}

void source_facts_free(SourceFacts *s) {
        if (!s)
                return;
        g_free(s->hostname);
        if (s->disk_sizes)
                g_hash_table_unref(s->disk_sizes);
        if (s->disk_images)
                g_hash_table_unref(s->disk_images);
        g_strfreev(s->cpu_flags);
        g_free(s->tls_ca);
        g_free(s->tls_client_dn);
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

static void source_disk_image_free(gpointer p) {
        SourceDiskImage *d = p;

        g_free(d->backing);
        g_free(d->backing_format);
        g_free(d);
}

static int disk_images_from_cookie(GVariant *cookie, GHashTable **ret, GError **error) {
        g_autoptr(GVariant) images = g_variant_lookup_value(cookie, "disk-images", NULL);
        g_autoptr(GHashTable) table = NULL;
        GVariantIter iter;
        const char *dev, *backing, *format;
        guint64 allocation, chain, backing_size;

        *ret = NULL;
        if (!images)
                return 0;
        if (!g_variant_is_of_type(images, G_VARIANT_TYPE("a{s(ttsst)}")))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source's cookie member 'disk-images' is %s, not a{s(ttsst)}",
                                    g_variant_get_type_string(images));
        if (g_variant_n_children(images) > SOURCE_FACTS_MAX_DISKS)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source reports %zu disk images, more than the %d allowed",
                                    g_variant_n_children(images), SOURCE_FACTS_MAX_DISKS);
        table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, source_disk_image_free);
        g_variant_iter_init(&iter, images);
        while (g_variant_iter_next(&iter, "{&s(tt&s&st)}", &dev, &allocation, &chain, &backing, &format,
                                   &backing_size)) {
                SourceDiskImage *d;

                if (!name_is_simple(dev, 32, ""))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source reports the image of a disk whose target is not "
                                            "1-32 characters of a-z and 0-9");
                if (g_hash_table_contains(table, dev))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source reports the image of disk %s twice", dev);
                if (*backing && (!g_path_is_absolute(backing) || strlen(backing) > PATH_MAX ||
                                 !g_utf8_validate(backing, -1, NULL) || text_has_control(backing) ||
                                 (!g_str_equal(format, "raw") && !g_str_equal(format, "qcow2"))))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "the source reports a backing file for disk %s that is not an "
                                            "absolute path to a raw or qcow2 image",
                                            dev);
                d = g_new0(SourceDiskImage, 1);
                d->allocation = allocation;
                d->chain_allocation = chain;
                d->backing = *backing ? g_strdup(backing) : NULL;
                d->backing_format = *backing ? g_strdup(format) : NULL;
                d->backing_size = backing_size;
                g_hash_table_insert(table, g_strdup(dev), d);
        }
        *ret = g_steal_pointer(&table);
        return 0;
}

int source_facts_from_cookie(GVariant *cookie, SourceFacts **ret, GError **error) {
        g_autoptr(SourceFacts) s = g_new0(SourceFacts, 1);
        int r;
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
                s->hostname = findings_sanitize_message(g_variant_dup_string(hostname, NULL));
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

        r = disk_images_from_cookie(cookie, &s->disk_images, error);
        if (r < 0)
                return r;

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

        r = cookie_optional_string(cookie, "tls-ca", 64, &s->tls_ca, error);
        if (r >= 0)
                r = cookie_optional_string(cookie, "tls-client-dn", TLS_DN_MAX, &s->tls_client_dn, error);
        if (r < 0)
                return r;

        *ret = g_steal_pointer(&s);
        return 0;
}
