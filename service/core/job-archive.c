/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * job-archive.h. The file is one GVariant of type (uaa{sv}), little-endian:
 * a format version, then the entries oldest first. It is read as
 * untrusted data: GVariant answers a damaged serialisation with empty
 * values rather than reading out of bounds, and every entry is checked for
 * the keys all entries have before it is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "job-archive.h"
#include "log.h"

#define JOB_ARCHIVE_FILE "job-history"
#define JOB_ARCHIVE_VERSION 1
#define JOB_ARCHIVE_TYPE "(uaa{sv})"
/* 10000 entries of about 1 KiB, with room to spare; larger is not ours. */
#define JOB_ARCHIVE_FILE_MAX (64u << 20)

struct JobArchive {
        char *path; /* NULL: kept in memory only (no state directory) */
        unsigned max;
        GPtrArray *entries; /* GVariant* a{sv}, oldest first */
};

static bool lookup_string(GVariant *entry, const char *key, const char **ret) {
        return g_variant_lookup(entry, key, "&s", ret);
}

/* What every entry has: the ones written by any version of this file. */
static bool entry_is_valid(GVariant *entry) {
        const char *s;
        uint64_t t;

        return g_variant_lookup(entry, "id", "t", &t) && t > 0 && g_variant_lookup(entry, "ended-at", "t", &t) &&
               lookup_string(entry, "uuid", &s) && g_uuid_string_is_valid(s) && lookup_string(entry, "domain", &s) &&
               lookup_string(entry, "kind", &s) && lookup_string(entry, "phase", &s);
}

static void job_archive_trim(JobArchive *a) {
        if (a->entries->len > a->max)
                g_ptr_array_remove_range(a->entries, 0, a->entries->len - a->max);
}

static void set_aside(const char *path, const char *why) {
        g_autofree char *damaged = g_strconcat(path, ".damaged", NULL);

        if (rename(path, damaged) < 0)
                log_warning("%s: %s; cannot move it to %s: %s; starting an empty job history", path, why, damaged,
                            g_strerror(errno));
        else
                log_warning("%s: %s; moved it to %s, starting an empty job history", path, why, damaged);
}

static void job_archive_load(JobArchive *a) {
        g_autofree char *data = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) file = NULL, entries = NULL;
        unsigned version = 0;
        size_t len = 0;
        GVariantIter iter;
        GVariant *entry;

        if (!g_file_get_contents(a->path, &data, &len, &error)) {
                if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        log_warning("cannot read the job history: %s", error->message);
                return;
        }
        if (len > JOB_ARCHIVE_FILE_MAX) {
                set_aside(a->path, "larger than a job history can be");
                return;
        }
        /* The entries kept refer to the file's bytes: they go with them. */
        g_autoptr(GBytes) bytes = g_bytes_new_take(g_steal_pointer(&data), len);
        file = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(JOB_ARCHIVE_TYPE), bytes, false));
        if (G_BYTE_ORDER == G_BIG_ENDIAN) {
                GVariant *swapped = g_variant_byteswap(file);
                g_variant_unref(file);
                file = swapped;
        }
        g_variant_get(file, "(u@aa{sv})", &version, &entries);
        if (version != JOB_ARCHIVE_VERSION) {
                set_aside(a->path, "not a job history this version of vmigrated writes");
                return;
        }
        g_variant_iter_init(&iter, entries);
        while ((entry = g_variant_iter_next_value(&iter))) {
                if (entry_is_valid(entry))
                        g_ptr_array_add(a->entries, entry);
                else
                        g_variant_unref(entry);
        }
        job_archive_trim(a);
}

JobArchive *job_archive_open(const char *state_dir, unsigned max) {
        JobArchive *a = g_new0(JobArchive, 1);

        a->max = MIN(max, (unsigned) JOB_ARCHIVE_MAX_MAX);
        a->entries = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref);
        if (state_dir) {
                a->path = g_build_filename(state_dir, JOB_ARCHIVE_FILE, NULL);
                job_archive_load(a);
        }
        return a;
}

JobArchive *job_archive_free(JobArchive *a) {
        if (!a)
                return NULL;
        g_ptr_array_unref(a->entries);
        g_free(a->path);
        g_free(a);
        return NULL;
}

unsigned job_archive_size(const JobArchive *a) {
        return a->entries->len;
}

static int job_archive_save(JobArchive *a, GError **error) {
        g_autoptr(GVariant) file = NULL;
        g_autoptr(GError) local = NULL;

        if (!a->path)
                return 0;
        if (a->entries->len == 0) {
                if (unlink(a->path) < 0 && errno != ENOENT)
                        return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot remove %s: %s", a->path,
                                            g_strerror(errno));
                return 0;
        }
        file = g_variant_ref_sink(g_variant_new("(u@aa{sv})", JOB_ARCHIVE_VERSION,
                                                g_variant_new_array(G_VARIANT_TYPE("a{sv}"),
                                                                    (GVariant **) a->entries->pdata,
                                                                    a->entries->len)));
        if (G_BYTE_ORDER == G_BIG_ENDIAN) {
                GVariant *swapped = g_variant_byteswap(file);
                g_variant_unref(file);
                file = swapped;
        }
        if (!g_file_set_contents_full(a->path, g_variant_get_data(file), (gssize) g_variant_get_size(file),
                                      G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot write the job history: %s",
                                    local->message);
        return 0;
}

void job_archive_set_max(JobArchive *a, unsigned max) {
        g_autoptr(GError) error = NULL;
        unsigned before = a->entries->len;

        a->max = MIN(max, (unsigned) JOB_ARCHIVE_MAX_MAX);
        job_archive_trim(a);
        if (a->entries->len != before && job_archive_save(a, &error) < 0)
                log_warning("%s", error->message);
}

static GVariant *job_archive_entry(uint64_t id, const char *domain, const char *uuid, uint64_t elapsed_ms,
                                   GVariant *stats) {
        uint64_t ended = (uint64_t) g_get_real_time();
        uint64_t elapsed = elapsed_ms * 1000;
        GVariantBuilder b;
        GVariantIter iter;
        GVariant *item;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "id", g_variant_new_uint64(id));
        g_variant_builder_add(&b, "{sv}", "domain", g_variant_new_string(domain));
        g_variant_builder_add(&b, "{sv}", "uuid", g_variant_new_string(uuid));
        g_variant_builder_add(&b, "{sv}", "started-at", g_variant_new_uint64(ended > elapsed ? ended - elapsed : 0));
        g_variant_builder_add(&b, "{sv}", "ended-at", g_variant_new_uint64(ended));
        g_variant_iter_init(&iter, stats);
        while ((item = g_variant_iter_next_value(&iter))) {
                g_variant_builder_add_value(&b, item);
                g_variant_unref(item);
        }
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

int job_archive_record(JobArchive *a, uint64_t id, const char *domain, const char *uuid, uint64_t elapsed_ms,
                       GVariant *stats, GError **error) {
        if (a->max == 0)
                return 0;
        g_ptr_array_add(a->entries, job_archive_entry(id, domain, uuid, elapsed_ms, stats));
        job_archive_trim(a);
        return job_archive_save(a, error);
}

uint64_t job_archive_max_id(const JobArchive *a) {
        uint64_t max = 0, id;

        for (unsigned i = 0; i < a->entries->len; i++)
                if (g_variant_lookup(a->entries->pdata[i], "id", "t", &id))
                        max = MAX(max, id);
        return max;
}

void job_archive_filter_clear(JobArchiveFilter *f) {
        g_clear_pointer(&f->domain, g_free);
        g_clear_pointer(&f->kind, g_free);
        g_clear_pointer(&f->result, g_free);
        *f = (JobArchiveFilter) {};
}

static void replace_string(char **s, GVariant *value) {
        g_free(*s);
        *s = g_variant_dup_string(value, NULL);
}

static bool string_in(const char *s, const char *const *values) {
        return g_strv_contains(values, s);
}

int job_archive_filter_parse(GVariant *filter, JobArchiveFilter *ret, GError **error) {
        static const char *const kinds[] = { "migration-out", "migration-in", NULL };
        static const char *const results[] = { "completed", "failed", "cancelled", NULL };
        g_auto(JobArchiveFilter) f = {};
        GVariantIter iter;
        const char *key;
        GVariant *v;

        g_variant_iter_init(&iter, filter);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &v)) {
                g_autoptr(GVariant) value = v;
                const char *type = g_variant_get_type_string(value);
                if (g_str_equal(key, "domain") && g_str_equal(type, "s"))
                        replace_string(&f.domain, value);
                else if (g_str_equal(key, "kind") && g_str_equal(type, "s")) {
                        if (!string_in(g_variant_get_string(value, NULL), kinds))
                                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                                    "filter 'kind' must be 'migration-out' or 'migration-in'");
                        replace_string(&f.kind, value);
                } else if (g_str_equal(key, "result") && g_str_equal(type, "s")) {
                        if (!string_in(g_variant_get_string(value, NULL), results))
                                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                                    "filter 'result' must be 'completed', 'failed' or "
                                                    "'cancelled'");
                        replace_string(&f.result, value);
                } else if (g_str_equal(key, "since") && g_str_equal(type, "t"))
                        f.since = g_variant_get_uint64(value);
                else if (g_str_equal(key, "limit") && g_str_equal(type, "u"))
                        f.limit = g_variant_get_uint32(value);
                else if (g_strv_contains((const char *const[]) { "domain", "kind", "result", "since", "limit", NULL },
                                         key))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "filter '%s' must be of type %s, not %s", key,
                                            g_str_equal(key, "since") ? "t (microseconds since the epoch)"
                                            : g_str_equal(key, "limit") ? "u"
                                                                        : "s",
                                            type);
                else
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "unknown filter '%s': ListJobHistory takes domain, kind, result, "
                                            "since and limit",
                                            key);
        }
        *ret = f;
        f = (JobArchiveFilter) {};
        return 0;
}

static bool entry_matches(GVariant *entry, const JobArchiveFilter *f) {
        const char *name = "", *uuid = "", *kind = "", *phase = "";
        uint64_t ended = 0;

        (void) lookup_string(entry, "domain", &name);
        (void) lookup_string(entry, "uuid", &uuid);
        (void) lookup_string(entry, "kind", &kind);
        (void) lookup_string(entry, "phase", &phase);
        (void) g_variant_lookup(entry, "ended-at", "t", &ended);
        if (f->domain && !g_str_equal(f->domain, name) && g_ascii_strcasecmp(f->domain, uuid) != 0)
                return false;
        if (f->kind && !g_str_equal(f->kind, kind))
                return false;
        if (f->result && !g_str_equal(f->result, phase))
                return false;
        return ended >= f->since;
}

GVariant *job_archive_list(const JobArchive *a, const JobArchiveFilter *filter) {
        g_autoptr(GPtrArray) matches = g_ptr_array_new();
        GVariantBuilder b;
        unsigned first = 0;

        for (unsigned i = 0; i < a->entries->len; i++)
                if (entry_matches(a->entries->pdata[i], filter))
                        g_ptr_array_add(matches, a->entries->pdata[i]);
        if (filter->limit && matches->len > filter->limit)
                first = matches->len - filter->limit;
        g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
        for (unsigned i = first; i < matches->len; i++)
                g_variant_builder_add_value(&b, matches->pdata[i]);
        return g_variant_builder_end(&b);
}

GVariant *job_archive_last_for(const JobArchive *a, const char *uuid) {
        for (unsigned i = a->entries->len; i-- > 0;) {
                const char *u;
                if (lookup_string(a->entries->pdata[i], "uuid", &u) && g_ascii_strcasecmp(u, uuid) == 0)
                        return g_variant_ref(a->entries->pdata[i]);
        }
        return NULL;
}
