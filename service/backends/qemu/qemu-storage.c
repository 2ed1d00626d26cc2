/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Option 'copy-storage' for the qemu backend: see qemu-storage.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "child.h"
#include "disk-image.h"
#include "errors.h"
#include "log.h"
#include "qemu-backend.h"
#include "qemu-storage.h"
#include "text.h"

/* Our block jobs and NBD client nodes: the prefix, then a tag per
 * migration and the disk's target dev. */
#define MIRROR_JOB_PREFIX "vmigrate-mirror-"
#define NBD_NODE_PREFIX "vmigrate-nbd-"

/* What is kept of qemu-img's messages. */
#define QEMU_IMG_OUTPUT_MAX 4096
/* Mirrors that do not end after their cancel within this long are stuck. */
#define STORAGE_COMPLETE_TIMEOUT_USEC (60 * G_USEC_PER_SEC)

typedef struct StorageDisk {
        char *dev;
        char *format; /* "raw" or "qcow2" */
        char *path;   /* destination: the image */
        uint64_t size;
        char *backing;        /* destination, 'incremental': the new image's backing file */
        char *backing_format; /* its format */
        bool reused;     /* destination: option 'reuse-images' found it there */
        bool created;    /* destination: this migration made the file */
        char *job;       /* source: the mirror's job id, unique per migration */
        char *nbd;       /* source: its NBD client's node name */
        bool ready;      /* source: the mirror is in sync */
        bool job_ended;  /* source: its job is gone */
        uint64_t len, offset;
        int tunnel_fd;   /* source, 'tunnelled': our duplicate of its NBD connection, or -1 */
} StorageDisk;

struct QemuStorage {
        sd_event *event;
        GPtrArray *disks; /* StorageDisk* */

        /* destination */
        uint16_t port;
        bool kept;
        unsigned next_create;
        ChildWatch *child;
        int output_fd;
        GString *output;
        BackendDone create_done;
        void *create_userdata;
        sd_event_source *defer;
        GError *create_error;

        /* source */
        bool incremental; /* mirror only the top image */
        char *nbd_host;
        uint16_t nbd_port;
        BackendDone complete_done;
        void *complete_userdata;
        sd_event_source *complete_timer;
};

static StorageDisk *storage_disk_new(void) {
        StorageDisk *d = g_new0(StorageDisk, 1);

        d->tunnel_fd = -1;
        return d;
}

static void storage_disk_free(gpointer p) {
        StorageDisk *d = p;
        g_free(d->dev);
        g_free(d->format);
        g_free(d->path);
        g_free(d->backing);
        g_free(d->backing_format);
        g_free(d->job);
        g_free(d->nbd);
        if (d->tunnel_fd >= 0)
                close(d->tunnel_fd);
        g_free(d);
}

static QemuStorage *storage_new(sd_event *event) {
        QemuStorage *s = g_new0(QemuStorage, 1);

        s->event = event ? sd_event_ref(event) : NULL;
        s->disks = g_ptr_array_new_with_free_func(storage_disk_free);
        s->output_fd = -1;
        s->output = g_string_new(NULL);
        return s;
}

QemuStorage *qemu_storage_free(QemuStorage *s) {
        if (!s)
                return NULL;
        child_watch_free(s->child);
        for (unsigned i = 0; i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                if (d->created && !s->kept) {
                        if (unlink(d->path) < 0 && errno != ENOENT)
                                log_warning("cannot delete %s, created for a migration that failed: %s", d->path,
                                            g_strerror(errno));
                        else
                                log_info("deleted %s: created for a migration that did not complete", d->path);
                }
        }
        if (s->output_fd >= 0)
                close(s->output_fd);
        sd_event_source_disable_unref(s->defer);
        sd_event_source_disable_unref(s->complete_timer);
        g_clear_error(&s->create_error);
        g_string_free(s->output, true);
        g_ptr_array_unref(s->disks);
        g_free(s->nbd_host);
        sd_event_unref(s->event);
        g_free(s);
        return NULL;
}

bool qemu_disk_is_copied(const DomainDiskDef *disk, const MigrateOptions *options) {
        return options->copy_storage != MIGRATE_COPY_STORAGE_NONE && domain_disk_is_copyable(disk);
}

static const char *disk_format(const DomainDiskDef *disk) {
        return disk->driver_type ? disk->driver_type : "raw";
}

static const DomainDiskDef *disk_of_target(const DomainDef *def, const char *dev) {
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                if (g_str_equal(disk->target_dev, dev))
                        return disk;
        }
        return NULL;
}

int qemu_storage_begin(const DomainDef *source_def, const DomainDef *def, const MigrateOptions *options,
                       GVariantDict *cookie, GError **error) {
        g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(sst)"));
        g_auto(GVariantBuilder) backing = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{s(ss)}"));

        if (options->copy_storage == MIGRATE_COPY_STORAGE_NONE)
                return 0;
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                g_auto(DiskImageInfo) info = {};
                int r;

                if (!qemu_disk_is_copied(disk, options))
                        continue;
                /* The ABI check keeps target devs and formats; the paths
                 * are the source's own. */
                disk = disk_of_target(source_def, disk->target_dev);
                if (!disk || !qemu_disk_is_copied(disk, options))
                        return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                            "copy-storage: disk %s is not a disk the domain copies here",
                                            ((const DomainDiskDef *) def->disks->pdata[i])->target_dev);
                r = disk_image_read(disk->source_file, disk_format(disk), &info);
                if (r < 0)
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "copy-storage: cannot read disk %s (%s): %s", disk->source_file,
                                            disk->target_dev, g_strerror(-r));
                if (info.external_data)
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                            "copy-storage: disk %s (%s) keeps its data in an external file, "
                                            "which cannot be copied",
                                            disk->source_file, disk->target_dev);
                g_variant_builder_add(&b, "(sst)", disk->target_dev, disk_format(disk), info.virtual_size);
                if (options->copy_storage == MIGRATE_COPY_STORAGE_INCREMENTAL && info.backing_file) {
                        g_autofree char *path = disk_image_backing_path(disk->source_file, info.backing_file);
                        const char *format = info.backing_format ? info.backing_format
                                                                 : disk_image_probe_format(path);
                        if (!format || (!g_str_equal(format, "raw") && !g_str_equal(format, "qcow2")))
                                return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                                    "copy-storage: the backing file %s of disk %s (%s) is "
                                                    "unreadable or neither raw nor qcow2",
                                                    path, disk->source_file, disk->target_dev);
                        g_variant_builder_add(&backing, "{s(ss)}", disk->target_dev, path, format);
                }
        }
        g_variant_dict_insert_value(cookie, "copy-disks", g_variant_builder_end(&b));
        g_variant_dict_insert_value(cookie, "copy-backing", g_variant_builder_end(&backing));
        return 0;
}

/* ---- destination ---- */

static bool copy_disk_described(GVariant *source_cookie, const char *dev, char **ret_format, uint64_t *ret_size) {
        g_autoptr(GVariant) disks = g_variant_lookup_value(source_cookie, "copy-disks", G_VARIANT_TYPE("a(sst)"));
        GVariantIter iter;
        const char *d, *format;
        guint64 size;

        if (!disks)
                return false;
        g_variant_iter_init(&iter, disks);
        while (g_variant_iter_next(&iter, "(&s&st)", &d, &format, &size))
                if (g_str_equal(d, dev)) {
                        *ret_format = g_strdup(format);
                        *ret_size = size;
                        return true;
                }
        return false;
}

/* What Prepare's checks (storage.* in preflight.c) found already is
 * checked again here, as the images are made: the files may have changed
 * in between, and nothing but O_EXCL decides what is ours to delete. */
/* 'incremental': the backing file of the source's image of disk dev
 * (absolute, as the source resolved it) and its format. */
static bool copy_disk_backing(GVariant *source_cookie, const char *dev, char **ret_path, char **ret_format) {
        g_autoptr(GVariant) backing = g_variant_lookup_value(source_cookie, "copy-backing", G_VARIANT_TYPE("a{s(ss)}"));
        const char *path, *format;

        if (!backing || !g_variant_lookup(backing, dev, "(&s&s)", &path, &format))
                return false;
        if (!g_path_is_absolute(path) || strlen(path) > PATH_MAX || text_has_control(path) ||
            (!g_str_equal(format, "raw") && !g_str_equal(format, "qcow2")))
                return false;
        *ret_path = g_strdup(path);
        *ret_format = g_strdup(format);
        return true;
}

int qemu_storage_new_incoming(sd_event *event, const DomainDef *def, const MigrateOptions *options,
                              GVariant *source_cookie, QemuStorage **ret, GError **error) {
        g_autoptr(QemuStorage) s = storage_new(event);

        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                g_autofree char *source_format = NULL;
                struct stat st;
                uint64_t size;

                if (!qemu_disk_is_copied(disk, options))
                        continue;
                if (!copy_disk_described(source_cookie, disk->target_dev, &source_format, &size))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "copy-storage: the source did not describe disk %s", disk->target_dev);
                if (!g_str_equal(disk_format(disk), "raw") && !g_str_equal(disk_format(disk), "qcow2"))
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                            "copy-storage: disk %s (%s) is '%s'; raw and qcow2 images can be "
                                            "created",
                                            disk->source_file, disk->target_dev, disk_format(disk));
                bool exists = stat(disk->source_file, &st) == 0;
                if (exists && !options->reuse_images)
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "copy-storage: %s (disk %s) already exists here; it is never "
                                            "overwritten: remove it, put the disk elsewhere with option "
                                            "'destination-xml', or copy into it with option 'reuse-images'",
                                            disk->source_file, disk->target_dev);
                if (!exists && disk->block)
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "copy-storage: block device %s (disk %s) is missing here; create "
                                            "it and use option 'reuse-images'",
                                            disk->source_file, disk->target_dev);
                StorageDisk *d = storage_disk_new();
                d->dev = g_strdup(disk->target_dev);
                d->format = g_strdup(disk_format(disk));
                d->path = g_strdup(disk->source_file);
                d->size = size;
                d->reused = exists;
                g_ptr_array_add(s->disks, d);
                if (options->copy_storage != MIGRATE_COPY_STORAGE_INCREMENTAL ||
                    !copy_disk_backing(source_cookie, d->dev, &d->backing, &d->backing_format))
                        continue;
                if (exists)
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "copy-storage: %s (disk %s) already exists here, and 'incremental' "
                                            "copies only the top image of a disk with a backing file: remove "
                                            "it, or copy with 'all'",
                                            d->path, d->dev);
                if (!g_str_equal(d->format, "qcow2"))
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                            "copy-storage 'incremental': disk %s has a backing file on the "
                                            "source, so it must be a qcow2 image here too, not %s",
                                            d->dev, d->format);
        }
        *ret = g_steal_pointer(&s);
        return 0;
}

static void create_next(QemuStorage *s);

static int on_create_finished(sd_event_source *source, void *userdata) {
        QemuStorage *s = userdata;
        BackendDone done = s->create_done;
        g_autoptr(GError) error = g_steal_pointer(&s->create_error);

        s->defer = sd_event_source_disable_unref(s->defer);
        s->create_done = NULL;
        done(error ? -EIO : 0, error, s->create_userdata);
        return 0;
}

static void create_finish(QemuStorage *s, GError *error) {
        s->create_error = error;
        if (sd_event_add_defer(s->event, &s->defer, on_create_finished, s) < 0)
                g_error("out of memory scheduling a completion");
}

static void on_qemu_img_exit(ChildWatch *w, int status, void *userdata) {
        QemuStorage *s = userdata;
        StorageDisk *d = s->disks->pdata[s->next_create - 1];

        (void) child_read_output(s->output_fd, s->output, QEMU_IMG_OUTPUT_MAX, CHILD_OUTPUT_TAIL, NULL);
        close(s->output_fd);
        s->output_fd = -1;
        s->child = child_watch_free(s->child);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                g_autofree char *how = child_describe_status(status);
                g_autofree char *tail = text_last_lines(s->output->str, 3);
                create_finish(s, g_error_new(VM_ERROR, VM_ERROR_STORAGE_FAILED,
                                             "copy-storage: qemu-img create of %s %s%s%s", d->path, how,
                                             *tail ? ": " : "", tail));
                return;
        }
        log_info("copy-storage: created %s (%s, %" G_GUINT64_FORMAT " bytes%s%s) for disk %s", d->path, d->format,
                 d->size, d->backing ? ", on " : "", d->backing ? d->backing : "", d->dev);
        create_next(s);
}

/* The file is made here, O_EXCL, before qemu-img fills it: whatever is at
 * the path was not there a moment ago, so it is ours to delete. */
static int create_one(QemuStorage *s, StorageDisk *d, GError **error) {
        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
        char *const *argv;
        int out[2], fd, null_fd, r;
        pid_t pid;

        g_ptr_array_add(args, g_strdup("qemu-img"));
        g_ptr_array_add(args, g_strdup("create"));
        g_ptr_array_add(args, g_strdup("-q"));
        g_ptr_array_add(args, g_strdup("-f"));
        g_ptr_array_add(args, g_strdup(d->format));
        if (g_str_equal(d->format, "qcow2")) {
                g_ptr_array_add(args, g_strdup("-o"));
                g_ptr_array_add(args, g_strdup("preallocation=off"));
        }
        if (d->backing) {
                /* 'incremental': the top image on the backing file that is
                 * here already (storage.backing checked it). */
                g_ptr_array_add(args, g_strdup("-b"));
                g_ptr_array_add(args, g_strdup(d->backing));
                g_ptr_array_add(args, g_strdup("-F"));
                g_ptr_array_add(args, g_strdup(d->backing_format));
        }
        g_ptr_array_add(args, g_strdup(d->path));
        g_ptr_array_add(args, g_strdup_printf("%" G_GUINT64_FORMAT, d->size));
        g_ptr_array_add(args, NULL);
        argv = (char *const *) args->pdata;

        fd = open(d->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "copy-storage: cannot create %s: %s", d->path,
                                    g_strerror(errno));
        close(fd);
        d->created = true;
        if (pipe2(out, O_CLOEXEC) < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "copy-storage: cannot make a pipe: %s",
                                    g_strerror(errno));
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        r = null_fd < 0 ? -errno : child_spawn(argv[0], argv, NULL, null_fd, out[1], out[1], &pid);
        if (null_fd >= 0)
                close(null_fd);
        close(out[1]);
        s->output_fd = out[0];
        g_string_truncate(s->output, 0);
        if (r >= 0) {
                (void) fcntl(s->output_fd, F_SETFL, O_NONBLOCK);
                r = child_watch_new(s->event, pid, on_qemu_img_exit, s, &s->child);
        }
        if (r < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "copy-storage: cannot run qemu-img: %s",
                                    g_strerror(-r));
        return 0;
}

static void create_next(QemuStorage *s) {
        GError *error = NULL;
        StorageDisk *d;

        /* Reused images are written over as they are. */
        while (s->next_create < s->disks->len && ((StorageDisk *) s->disks->pdata[s->next_create])->reused) {
                d = s->disks->pdata[s->next_create++];
                log_info("copy-storage: disk %s is copied into %s, which is here already (option "
                         "'reuse-images')",
                         d->dev, d->path);
        }
        if (s->next_create == s->disks->len) {
                create_finish(s, NULL);
                return;
        }
        if (create_one(s, s->disks->pdata[s->next_create++], &error) < 0)
                create_finish(s, error);
}

int qemu_storage_create(QemuStorage *s, BackendDone done, void *userdata, GError **error) {
        g_assert(!s->create_done);
        s->create_done = done;
        s->create_userdata = userdata;
        s->next_create = 0;
        create_next(s);
        return 0;
}

static int storage_add_exports(QemuStorage *s, Qmp *qmp, QmpReplyFn done, void *userdata, GError **error);

int qemu_storage_export(QemuStorage *s, Qmp *qmp, const char *host, uint16_t port, const char *tls_creds,
                        const char *tls_authz, QmpReplyFn done, void *userdata, GError **error) {
        g_autofree char *port_str = g_strdup_printf("%u", port);
        JsonObject *args = json_object_new(), *addr = json_object_new(), *data = json_object_new();
        int r;

        s->port = port;
        json_object_set_string_member(data, "host", host);
        json_object_set_string_member(data, "port", port_str);
        json_object_set_string_member(addr, "type", "inet");
        json_object_set_object_member(addr, "data", data);
        json_object_set_object_member(args, "addr", addr);
        if (tls_creds)
                json_object_set_string_member(args, "tls-creds", tls_creds);
        if (tls_creds && tls_authz)
                json_object_set_string_member(args, "tls-authz", tls_authz);
        log_info("copy-storage: exporting %u disk(s) over NBD on %s:%u%s", s->disks->len, host, port,
                 tls_creds ? " (TLS, the source's certificate only)" : " (clear text)");
        r = qmp_execute(qmp, "nbd-server-start", args, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
        return r < 0 ? r : storage_add_exports(s, qmp, done, userdata, error);
}

/* One writable export per disk, named by its target dev. */
static int storage_add_exports(QemuStorage *s, Qmp *qmp, QmpReplyFn done, void *userdata, GError **error) {
        int r = 0;

        for (unsigned i = 0; r >= 0 && i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                g_autofree char *id = g_strdup_printf("vmigrate-export-%s", d->dev);
                g_autofree char *node = g_strdup_printf("disk-%s", d->dev);
                JsonObject *exp = json_object_new();

                json_object_set_string_member(exp, "type", "nbd");
                json_object_set_string_member(exp, "id", id);
                json_object_set_string_member(exp, "node-name", node);
                json_object_set_string_member(exp, "name", d->dev);
                json_object_set_boolean_member(exp, "writable", true);
                r = qmp_execute(qmp, "block-export-add", exp, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
        }
        return r;
}

int qemu_storage_export_unix(QemuStorage *s, Qmp *qmp, const char *path, QmpReplyFn done, void *userdata,
                             GError **error) {
        JsonObject *args = json_object_new(), *addr = json_object_new(), *data = json_object_new();
        int r;

        json_object_set_string_member(data, "path", path);
        json_object_set_string_member(addr, "type", "unix");
        json_object_set_object_member(addr, "data", data);
        json_object_set_object_member(args, "addr", addr);
        log_info("copy-storage: exporting %u disk(s) over NBD on %s, for the tunnel", s->disks->len, path);
        r = qmp_execute(qmp, "nbd-server-start", args, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
        return r < 0 ? r : storage_add_exports(s, qmp, done, userdata, error);
}

void qemu_storage_add_tunnel_reply(QemuStorage *s, const char *path, GVariantDict *reply) {
        g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{ss}"));

        for (unsigned i = 0; i < s->disks->len; i++) {
                g_autofree char *name = g_strdup_printf("nbd-%s", ((StorageDisk *) s->disks->pdata[i])->dev);
                g_variant_builder_add(&b, "{ss}", name, path);
        }
        g_variant_dict_insert_value(reply, "tunnel-sockets", g_variant_builder_end(&b));
        g_variant_dict_insert(reply, "nbd-tunnelled", "b", true);
}

void qemu_storage_add_reply(QemuStorage *s, const char *host, GVariantDict *reply) {
        g_variant_dict_insert(reply, "nbd-host", "s", host);
        g_variant_dict_insert(reply, "nbd-port", "q", s->port);
}

int qemu_storage_unexport(QemuStorage *s, Qmp *qmp, QmpReplyFn done, void *userdata, GError **error) {
        return qmp_execute(qmp, "nbd-server-stop", NULL, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
}

void qemu_storage_keep(QemuStorage *s) {
        s->kept = true;
}

/* ---- source ---- */

int qemu_storage_new_outgoing(sd_event *event, const DomainDef *def, const MigrateOptions *options,
                              GVariant *backend_reply, GHashTable *tunnel_fds, QemuStorage **ret, GError **error) {
        g_autoptr(QemuStorage) s = storage_new(event);
        const char *host = NULL;
        guint16 port = 0;
        gboolean tunnelled = false;

        if (backend_reply)
                (void) g_variant_lookup(backend_reply, "nbd-tunnelled", "b", &tunnelled);
        if (tunnelled != options->tunnelled ||
            (!tunnelled && (!g_variant_lookup(backend_reply, "nbd-host", "&s", &host) ||
                            !g_variant_lookup(backend_reply, "nbd-port", "q", &port) || port == 0 ||
                            strlen(host) > 255 || strpbrk(host, " \t\n/"))))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "copy-storage: the destination did not say where to copy the disks");
        s->nbd_host = g_strdup(host);
        s->nbd_port = port;
        s->incremental = options->copy_storage == MIGRATE_COPY_STORAGE_INCREMENTAL;
        /* A mirror cancelled by an earlier migration may still be ending
         * (its NBD requests waiting on a dead link): its events must not
         * be taken for this one's. Node names have at most 31 bytes. */
        guint32 tag = g_random_int();
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                if (!qemu_disk_is_copied(disk, options))
                        continue;
                StorageDisk *d = storage_disk_new();
                d->dev = g_strdup(disk->target_dev);
                d->format = g_strdup(disk_format(disk));
                d->job = g_strdup_printf(MIRROR_JOB_PREFIX "%08x-%s", tag, d->dev);
                d->nbd = g_strdup_printf(NBD_NODE_PREFIX "%08x-%s", tag, d->dev);
                g_ptr_array_add(s->disks, d);
                if (tunnelled) {
                        g_autofree char *name = g_strdup_printf("nbd-%s", d->dev);
                        gpointer fd;
                        if (!tunnel_fds || !g_hash_table_lookup_extended(tunnel_fds, name, NULL, &fd))
                                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                                    "copy-storage: no tunnel to the destination for disk %s",
                                                    d->dev);
                        d->tunnel_fd = fcntl(GPOINTER_TO_INT(fd), F_DUPFD_CLOEXEC, 3);
                        if (d->tunnel_fd < 0)
                                return vm_error_set(error, VM_ERROR_FAILED, "copy-storage: cannot keep a tunnel: %s",
                                                    g_strerror(errno));
                }
        }
        *ret = g_steal_pointer(&s);
        return 0;
}

int qemu_storage_mirror(QemuStorage *s, Qmp *qmp, const char *tls_creds, const char *tls_hostname, QmpReplyFn done,
                        void *userdata, GError **error) {
        g_autofree char *port = g_strdup_printf("%u", s->nbd_port);
        int r = 0;

        for (unsigned i = 0; r >= 0 && i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                const char *nbd = d->nbd, *job = d->job;
                g_autofree char *node = g_strdup_printf("disk-%s", d->dev);
                JsonObject *add = json_object_new(), *server = json_object_new(), *mirror;

                if (d->tunnel_fd >= 0) {
                        /* The tunnel's connection, under the node's name,
                         * for the client to take (SocketAddress "fd"). */
                        JsonObject *getfd = json_object_new();
                        json_object_set_string_member(getfd, "fdname", nbd);
                        r = qmp_execute_with_fd(qmp, "getfd", getfd, d->tunnel_fd, QEMU_COMMAND_TIMEOUT_USEC, done,
                                                userdata, error);
                        close(d->tunnel_fd);
                        d->tunnel_fd = -1;
                        if (r < 0) {
                                json_object_unref(add);
                                json_object_unref(server);
                                break;
                        }
                        json_object_set_string_member(server, "type", "fd");
                        json_object_set_string_member(server, "str", nbd);
                } else {
                        json_object_set_string_member(server, "type", "inet");
                        json_object_set_string_member(server, "host", s->nbd_host);
                        json_object_set_string_member(server, "port", port);
                }
                json_object_set_string_member(add, "driver", "nbd");
                json_object_set_string_member(add, "node-name", nbd);
                json_object_set_object_member(add, "server", server);
                json_object_set_string_member(add, "export", d->dev);
                if (tls_creds) {
                        json_object_set_string_member(add, "tls-creds", tls_creds);
                        if (tls_hostname)
                                json_object_set_string_member(add, "tls-hostname", tls_hostname);
                }
                r = qmp_execute(qmp, "blockdev-add", add, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
                if (r < 0)
                        break;
                mirror = json_object_new();
                json_object_set_string_member(mirror, "job-id", job);
                json_object_set_string_member(mirror, "device", node);
                json_object_set_string_member(mirror, "target", nbd);
                /* 'incremental': the backing files are on the destination
                 * already, under the image it made (sync=top copies what
                 * the top image holds, and every write from now on). */
                json_object_set_string_member(mirror, "sync", s->incremental ? "top" : "full");
                r = qmp_execute(qmp, "blockdev-mirror", mirror, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
        }
        return r;
}

static StorageDisk *disk_of_job(QemuStorage *s, const char *job) {
        for (unsigned i = 0; job && i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                if (g_strcmp0(d->job, job) == 0)
                        return d;
        }
        return NULL;
}

bool qemu_storage_update(QemuStorage *s, JsonNode *jobs, uint64_t *ret_total, uint64_t *ret_done) {
        JsonArray *a = jobs && JSON_NODE_HOLDS_ARRAY(jobs) ? json_node_get_array(jobs) : NULL;
        uint64_t total = 0, done = 0;
        bool all_ready = true;

        for (guint i = 0; a && i < json_array_get_length(a); i++) {
                JsonNode *n = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
                StorageDisk *d = o ? disk_of_job(s, json_object_get_string_member_with_default(o, "device", NULL))
                                   : NULL;
                if (!d)
                        continue;
                d->len = (uint64_t) json_object_get_int_member_with_default(o, "len", 0);
                d->offset = (uint64_t) json_object_get_int_member_with_default(o, "offset", 0);
                d->ready = json_object_get_boolean_member_with_default(o, "ready", false);
        }
        for (unsigned i = 0; i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                total += d->len;
                done += MIN(d->offset, d->len);
                all_ready &= d->ready;
        }
        *ret_total = total;
        *ret_done = done;
        return all_ready;
}

static void storage_complete_end(QemuStorage *s, int r, GError *error) {
        BackendDone done = s->complete_done;

        s->complete_timer = sd_event_source_disable_unref(s->complete_timer);
        s->complete_done = NULL;
        if (done)
                done(r, error, s->complete_userdata);
        g_clear_error(&error);
}

static int on_complete_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        QemuStorage *s = userdata;

        storage_complete_end(s, -ETIMEDOUT,
                             g_error_new(VM_ERROR, VM_ERROR_MIGRATION_FAILED,
                                         "copy-storage: the disk mirrors did not finish within %d s",
                                         (int) (STORAGE_COMPLETE_TIMEOUT_USEC / G_USEC_PER_SEC)));
        return 0;
}

static void ignore_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                         void *userdata) {
        /* A node already gone, or still held by its job: that job's end
         * deletes it (qemu_storage_job_ended). */
}

static void delete_nbd_client(Qmp *qmp, const char *nbd) {
        JsonObject *args = json_object_new();

        json_object_set_string_member(args, "node-name", nbd);
        (void) qmp_execute(qmp, "blockdev-del", args, QEMU_COMMAND_TIMEOUT_USEC, ignore_reply, NULL, NULL);
}

void qemu_storage_job_ended(Qmp *qmp, const char *event, JsonObject *data) {
        const char *job = data ? json_object_get_string_member_with_default(data, "device", NULL) : NULL;

        if (!g_str_equal(event, "BLOCK_JOB_COMPLETED") && !g_str_equal(event, "BLOCK_JOB_CANCELLED"))
                return;
        g_autofree char *nbd = NULL;

        if (!job || !g_str_has_prefix(job, MIRROR_JOB_PREFIX))
                return;
        nbd = g_strconcat(NBD_NODE_PREFIX, job + strlen(MIRROR_JOB_PREFIX), NULL);
        delete_nbd_client(qmp, nbd);
}

int qemu_storage_complete(QemuStorage *s, Qmp *qmp, BackendDone done, void *userdata, GError **error) {
        int r = 0;

        /* Already under way (the stream's end can be heard twice, from its
         * event and from a poll): its done comes once, for both. A second
         * timer would outlive s. */
        if (s->complete_timer)
                return 0;
        for (unsigned i = 0; i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                if (d->job_ended)
                        return vm_error_set(error, VM_ERROR_MIGRATION_FAILED,
                                            "copy-storage: the mirror of disk %s ended before the memory had "
                                            "gone",
                                            d->dev);
        }
        s->complete_done = done;
        s->complete_userdata = userdata;
        for (unsigned i = 0; r >= 0 && i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                JsonObject *args = json_object_new();

                json_object_set_string_member(args, "device", d->job);
                r = qmp_execute(qmp, "block-job-cancel", args, QEMU_COMMAND_TIMEOUT_USEC, NULL, NULL, error);
        }
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &s->complete_timer, CLOCK_MONOTONIC,
                                               STORAGE_COMPLETE_TIMEOUT_USEC, G_USEC_PER_SEC, on_complete_timeout, s);
        if (r < 0) {
                s->complete_done = NULL;
                return r;
        }
        return 0;
}

void qemu_storage_abort(QemuStorage *s, Qmp *qmp) {
        for (unsigned i = 0; i < s->disks->len; i++) {
                StorageDisk *d = s->disks->pdata[i];
                JsonObject *args;

                if (d->job_ended)
                        continue;
                args = json_object_new();
                json_object_set_string_member(args, "device", d->job);
                json_object_set_boolean_member(args, "force", true);
                (void) qmp_execute(qmp, "block-job-cancel", args, QEMU_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
        }
        /* A mirror cancels asynchronously and holds its NBD client until
         * it has ended: that end deletes the client (qemu_storage_job_ended).
         * This one is for a client whose mirror never started. */
        for (unsigned i = 0; i < s->disks->len; i++)
                delete_nbd_client(qmp, ((StorageDisk *) s->disks->pdata[i])->nbd);
}

bool qemu_storage_job_event(QemuStorage *s, const char *event, JsonObject *data) {
        StorageDisk *d = disk_of_job(s, data ? json_object_get_string_member_with_default(data, "device", NULL) : NULL);
        bool all_ended = true;

        if (!d)
                return false;
        d->job_ended = true;
        if (!s->complete_done)
                return true;
        /* A ready mirror cancelled without force completes: its target has
         * every write. Anything else lost some. */
        const char *err = json_object_get_string_member_with_default(data, "error", NULL);
        if (err || g_str_equal(event, "BLOCK_JOB_CANCELLED")) {
                storage_complete_end(s, -EIO,
                                     g_error_new(VM_ERROR, VM_ERROR_MIGRATION_FAILED,
                                                 "copy-storage: the mirror of disk %s did not complete: %s", d->dev,
                                                 err ? err : "cancelled before it was in sync"));
                return true;
        }
        for (unsigned i = 0; i < s->disks->len; i++)
                all_ended &= ((StorageDisk *) s->disks->pdata[i])->job_ended;
        if (all_ended)
                storage_complete_end(s, 0, NULL);
        return true;
}
