/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UEFI firmware for the qemu backend (qemu-firmware.h).
 *
 * Choosing. <os firmware='efi'> leaves the choice to the host, as libvirt
 * does: QEMU's firmware descriptors (the ovmf package installs three:
 * secure boot with Microsoft's keys enrolled, secure boot with an empty
 * store, and plain) are read in their order and the first that fits is
 * taken. The choice is written into the running definition, so a
 * migration's destination runs the same code file (or DryRun says it is
 * missing there) instead of choosing again.
 *
 * The NVRAM. One file per domain: <os><nvram>'s path, or the backend's
 * <state_dir>/qemu/nvram/<uuid>_VARS.fd, copied from the template when it
 * does not exist (the first start). QEMU reads it into the flash at start
 * and writes each change the guest makes straight through to the file.
 *
 * Migration. QEMU itself carries the flash's content in the stream and
 * writes it back over the destination's file when the guest first runs
 * there (pflash's post-load handler) — which is all libvirt relies on.
 * vmigrate adds two copies of the file through the cookies, both small
 * (at most 768 KiB): at Prepare, so that the destination's QEMU opens a
 * flash of the source's size whatever template that host has (a size
 * mismatch fails the stream), and at Finish, the bytes as they were when
 * the guest stopped on the source, written before the guest resumes, so
 * that the file is right also when the guest is left paused there or
 * never runs there. A copy already on the destination (the domain ran
 * there before) is stale by definition: it is moved aside while the
 * migration runs, deleted when the guest stays, and put back when it
 * fails, so a failed migration leaves the destination as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "errors.h"
#include "log.h"
#include "qemu-firmware.h"

/* ---- choosing a firmware ---- */

typedef struct Descriptor {
        char *path;
        char *code;
        char *vars;
        bool secure_boot, enrolled_keys, requires_smm;
} Descriptor;

static void descriptor_free(Descriptor *d) {
        if (!d)
                return;
        g_free(d->path);
        g_free(d->code);
        g_free(d->vars);
        g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Descriptor, descriptor_free)

static bool array_has_string(JsonObject *o, const char *member, const char *value) {
        JsonNode *n = json_object_get_member(o, member);
        JsonArray *a = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;

        for (guint i = 0; a && i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING &&
                    g_strcmp0(json_node_get_string(e), value) == 0)
                        return true;
        }
        return false;
}

static JsonObject *object_member(JsonObject *o, const char *member) {
        JsonNode *n = o ? json_object_get_member(o, member) : NULL;
        return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static const char *string_member(JsonObject *o, const char *member) {
        JsonNode *n = o ? json_object_get_member(o, member) : NULL;
        return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                ? json_node_get_string(n)
                : NULL;
}

/* A raw file of the mapping ("executable", "nvram-template"), or NULL. */
static const char *raw_file(JsonObject *mapping, const char *member) {
        JsonObject *f = object_member(mapping, member);
        const char *format = string_member(f, "format"), *name = string_member(f, "filename");

        if (!name || !g_path_is_absolute(name) || (format && !g_str_equal(format, "raw")))
                return NULL;
        return name;
}

static bool targets_machine(JsonObject *o, const char *machine) {
        JsonNode *n = json_object_get_member(o, "targets");
        JsonArray *a = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;

        for (guint i = 0; a && i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *t = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                JsonNode *m = t ? json_object_get_member(t, "machines") : NULL;
                JsonArray *machines = m && JSON_NODE_HOLDS_ARRAY(m) ? json_node_get_array(m) : NULL;

                if (g_strcmp0(string_member(t, "architecture"), "x86_64") != 0)
                        continue;
                for (guint j = 0; machines && j < json_array_get_length(machines); j++) {
                        JsonNode *p = json_array_get_element(machines, j);
                        if (JSON_NODE_HOLDS_VALUE(p) && json_node_get_value_type(p) == G_TYPE_STRING &&
                            g_pattern_match_simple(json_node_get_string(p), machine))
                                return true;
                }
        }
        return false;
}

/* A UEFI flash descriptor with split code and variables in raw files, or
 * NULL (another kind, or not readable: skipped, logged at debug level). */
static Descriptor *descriptor_load(const char *path, const char *machine) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(Descriptor) d = g_new0(Descriptor, 1);
        g_autofree char *contents = NULL;
        g_autoptr(GError) error = NULL;
        JsonObject *root, *mapping;
        const char *mode;
        gsize len = 0;

        if (!g_file_get_contents(path, &contents, &len, &error) || len > QEMU_FIRMWARE_DESCRIPTOR_MAX ||
            !json_parser_load_from_data(parser, contents, (gssize) len, &error) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
                log_debug("firmware descriptor %s skipped: %s", path,
                          error ? error->message : "not an object");
                return NULL;
        }
        root = json_node_get_object(json_parser_get_root(parser));
        mapping = object_member(root, "mapping");
        mode = string_member(mapping, "mode");
        if (!array_has_string(root, "interface-types", "uefi") ||
            g_strcmp0(string_member(mapping, "device"), "flash") != 0 ||
            (mode && !g_str_equal(mode, "split")) || !machine || !targets_machine(root, machine))
                return NULL;
        d->code = g_strdup(raw_file(mapping, "executable"));
        d->vars = g_strdup(raw_file(mapping, "nvram-template"));
        if (!d->code || !d->vars)
                return NULL;
        d->path = g_strdup(path);
        d->secure_boot = array_has_string(root, "features", "secure-boot");
        d->enrolled_keys = array_has_string(root, "features", "enrolled-keys");
        d->requires_smm = array_has_string(root, "features", "requires-smm");
        return g_steal_pointer(&d);
}

static int compare_names(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The descriptors' paths in precedence order (see QEMU_FIRMWARE_DIRS). */
static GPtrArray *descriptor_paths(void) {
        const char *env = getenv("VMIGRATE_FIRMWARE_DIRS");
        g_auto(GStrv) dirs = g_strsplit(env && *env ? env : QEMU_FIRMWARE_DIRS, ":", -1);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);

        for (char **dir = dirs; *dir; dir++) {
                g_autoptr(GDir) d = **dir ? g_dir_open(*dir, 0, NULL) : NULL;
                const char *name;

                while (d && (name = g_dir_read_name(d)))
                        if (g_str_has_suffix(name, ".json") && !g_hash_table_contains(seen, name))
                                g_hash_table_insert(seen, g_strdup(name),
                                                    g_build_filename(*dir, name, NULL));
        }
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, seen);
        while (g_hash_table_iter_next(&it, &key, NULL))
                g_ptr_array_add(names, key);
        g_ptr_array_sort(names, compare_names);
        for (guint i = 0; i < names->len; i++)
                g_ptr_array_add(paths, g_strdup(g_hash_table_lookup(seen, names->pdata[i])));
        return paths;
}

static bool feature_fits(DomainFwFeature want, bool has) {
        return want == DOMAIN_FW_FEATURE_UNSET || (want == DOMAIN_FW_FEATURE_ON) == has;
}

int qemu_firmware_resolve(DomainDef *def, const char *machine, GError **error) {
        g_autoptr(GPtrArray) paths = NULL;

        if (!qemu_firmware_needs_resolving(def) && !(def->os_loader_pflash && !def->os_nvram_template))
                return 0;
        paths = descriptor_paths();
        for (guint i = 0; i < paths->len; i++) {
                g_autoptr(Descriptor) d = descriptor_load(paths->pdata[i], machine);

                if (!d)
                        continue;
                if (def->os_loader) {
                        /* A named loader: only its template is wanted. */
                        if (!g_str_equal(d->code, def->os_loader))
                                continue;
                        def->os_nvram_template = g_strdup(d->vars);
                        return 0;
                }
                if (!feature_fits(def->os_fw_secure_boot, d->secure_boot) ||
                    !feature_fits(def->os_fw_enrolled_keys, d->enrolled_keys))
                        continue;
                if (access(d->code, R_OK) < 0 || access(d->vars, R_OK) < 0) {
                        log_debug("firmware descriptor %s skipped: %s or %s is not readable", d->path,
                                  d->code, d->vars);
                        continue;
                }
                log_debug("domain '%s': firmware from %s: %s", def->name, d->path, d->code);
                def->os_loader = g_steal_pointer(&d->code);
                def->os_loader_pflash = true;
                def->os_loader_secure = d->requires_smm;
                if (!def->os_nvram_template)
                        def->os_nvram_template = g_steal_pointer(&d->vars);
                return 0;
        }

        const char *env = getenv("VMIGRATE_FIRMWARE_DIRS");
        if (def->os_loader)
                return vm_error_set(
                        error, VM_ERROR_UNSUPPORTED_BACKEND,
                        "<os><loader>%s</loader>: no firmware descriptor in %s names this code file, "
                        "so its NVRAM template is unknown; give it as <nvram template='…'>",
                        def->os_loader, env && *env ? env : QEMU_FIRMWARE_DIRS);
        return vm_error_set(
                error, VM_ERROR_UNSUPPORTED_BACKEND,
                "<os firmware='efi'>: no UEFI firmware here fits machine '%s'%s%s (descriptors in %s); "
                "install OVMF (package ovmf), use a q35 machine for secure boot, or name the "
                "firmware with <loader readonly='yes' type='pflash'>",
                machine ? machine : "?",
                def->os_fw_secure_boot == DOMAIN_FW_FEATURE_ON            ? " with secure boot"
                        : def->os_fw_secure_boot == DOMAIN_FW_FEATURE_OFF ? " without secure boot"
                                                                          : "",
                def->os_fw_enrolled_keys == DOMAIN_FW_FEATURE_ON            ? " and enrolled keys"
                        : def->os_fw_enrolled_keys == DOMAIN_FW_FEATURE_OFF ? " and no enrolled keys"
                                                                            : "",
                env && *env ? env : QEMU_FIRMWARE_DIRS);
}

/* ---- the NVRAM file ---- */

char *qemu_nvram_own_path(const char *nvram_dir, const char *uuid) {
        g_autofree char *name = g_strdup_printf("%s_VARS.fd", uuid);
        return g_build_filename(nvram_dir, name, NULL);
}

char *qemu_nvram_path(const char *nvram_dir, const DomainDef *def) {
        if (def->os_nvram)
                return g_strdup(def->os_nvram);
        return qemu_nvram_own_path(nvram_dir, def->uuid);
}

/* Writes bytes to path atomically (a temporary file renamed over it). */
static int write_file_atomic(const char *path, const void *data, size_t len, GError **error) {
        g_autoptr(GError) local = NULL;

        if (!g_file_set_contents_full(path, data, (gssize) len,
                                      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_ONLY_EXISTING,
                                      0600, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot write the NVRAM %s: %s", path,
                                    local->message);
        return 0;
}

int qemu_nvram_read(const char *path, GBytes **ret, GError **error) {
        g_autofree char *contents = NULL;
        g_autoptr(GError) local = NULL;
        struct stat st;
        gsize len = 0;

        if (stat(path, &st) < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot read the NVRAM %s: %s", path,
                                    g_strerror(errno));
        if (!S_ISREG(st.st_mode) || st.st_size > QEMU_NVRAM_MAX_BYTES || st.st_size == 0)
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                    "the NVRAM %s is %s; vmigrate carries regular files of 1 byte to %d KiB",
                                    path,
                                    !S_ISREG(st.st_mode) ? "not a regular file" : "of an unsupported size",
                                    QEMU_NVRAM_MAX_BYTES / 1024);
        if (!g_file_get_contents(path, &contents, &len, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot read the NVRAM %s: %s", path,
                                    local->message);
        if (len == 0 || len > QEMU_NVRAM_MAX_BYTES)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "the NVRAM %s changed size while read",
                                    path);
        *ret = g_bytes_new_take(g_steal_pointer(&contents), len);
        return 0;
}

int qemu_nvram_ensure(const char *nvram_dir, const DomainDef *def, GError **error) {
        g_autofree char *path = qemu_nvram_path(nvram_dir, def);
        g_autoptr(GBytes) template = NULL;
        int r;

        if (!def->os_loader_pflash || g_file_test(path, G_FILE_TEST_EXISTS))
                return 0;
        if (!def->os_nvram_template)
                return vm_error_set(
                        error, VM_ERROR_BACKEND_FAILED,
                        "the NVRAM %s does not exist and the domain names no template to make it from; "
                        "give <nvram template='…'>",
                        path);
        r = qemu_nvram_read(def->os_nvram_template, &template, error);
        if (r < 0) {
                g_prefix_error(error, "NVRAM template: ");
                return r;
        }
        if (!def->os_nvram && g_mkdir_with_parents(nvram_dir, 0700) < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot create %s: %s", nvram_dir,
                                    g_strerror(errno));
        r = write_file_atomic(path, g_bytes_get_data(template, NULL), g_bytes_get_size(template), error);
        if (r < 0)
                return r;
        log_info("domain '%s': NVRAM %s made from %s", def->name, path, def->os_nvram_template);
        return 0;
}

struct QemuNvramStage {
        char *path;
        char *previous; /* the destination's earlier copy, moved aside; NULL: there was none */
        size_t size;
        bool kept;
};

int qemu_nvram_stage(const char *path, GBytes *bytes, QemuNvramStage **ret, GError **error) {
        g_autoptr(QemuNvramStage) s = g_new0(QemuNvramStage, 1);
        g_autofree char *dir = g_path_get_dirname(path);
        size_t len = g_bytes_get_size(bytes);
        int r;

        s->kept = true; /* nothing to undo until something was done */
        if (len == 0 || len > QEMU_NVRAM_MAX_BYTES)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source sent an NVRAM of %zu bytes (1 to %d)", len,
                                    QEMU_NVRAM_MAX_BYTES);
        if (g_mkdir_with_parents(dir, 0700) < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot create %s for the NVRAM: %s",
                                    dir, g_strerror(errno));
        s->path = g_strdup(path);
        s->size = len;
        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
                s->previous = g_strconcat(path, QEMU_NVRAM_PREVIOUS_SUFFIX, NULL);
                if (rename(path, s->previous) < 0) {
                        r = -errno;
                        g_clear_pointer(&s->previous, g_free);
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                            "cannot move the NVRAM %s aside: %s", path, g_strerror(-r));
                }
                log_info("NVRAM %s: a copy from an earlier stay is moved aside while the guest arrives",
                         path);
        }
        s->kept = false;
        r = write_file_atomic(path, g_bytes_get_data(bytes, NULL), len, error);
        if (r < 0)
                return r; /* s's free puts the earlier copy back */
        *ret = g_steal_pointer(&s);
        return 0;
}

int qemu_nvram_stage_update(QemuNvramStage *s, GBytes *bytes, GError **error) {
        size_t len = g_bytes_get_size(bytes);
        const uint8_t *data = g_bytes_get_data(bytes, NULL);
        int fd;

        /* In place: QEMU has the file open, and a renamed-over file would
         * leave it writing the guest's next changes to a deleted inode. */
        if (len != s->size)
                return vm_error_set(
                        error, VM_ERROR_INCOMPATIBLE,
                        "the source's NVRAM is %zu bytes at the end, %zu at Prepare: the flash cannot "
                        "change size",
                        len, s->size);
        fd = open(s->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot open the NVRAM %s: %s", s->path,
                                    g_strerror(errno));
        for (size_t done = 0; done < len;) {
                ssize_t n = pwrite(fd, data + done, len - done, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? errno : EIO;
                        close(fd);
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot write the NVRAM %s: %s",
                                            s->path, g_strerror(e));
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0) {
                int e = errno;
                close(fd);
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot write the NVRAM %s: %s", s->path,
                                    g_strerror(e));
        }
        close(fd);
        return 0;
}

void qemu_nvram_stage_keep(QemuNvramStage *s) {
        if (!s || s->kept)
                return;
        s->kept = true;
        if (s->previous && unlink(s->previous) < 0 && errno != ENOENT)
                log_warning("cannot remove the stale NVRAM %s: %s", s->previous, g_strerror(errno));
}

void qemu_nvram_stage_free(QemuNvramStage *s) {
        if (!s)
                return;
        if (!s->kept) {
                /* The guest did not stay: the destination as it was. */
                if (s->previous) {
                        if (rename(s->previous, s->path) < 0)
                                log_warning("cannot put the NVRAM %s back from %s: %s", s->path, s->previous,
                                            g_strerror(errno));
                } else if (unlink(s->path) < 0 && errno != ENOENT)
                        log_warning("cannot remove the NVRAM %s: %s", s->path, g_strerror(errno));
        }
        g_free(s->path);
        g_free(s->previous);
        g_free(s);
}
