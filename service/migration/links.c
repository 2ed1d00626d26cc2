/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * links.h: one small key file per destination host,
 *
 *     [Link]
 *     Bandwidth=117728050
 *     Measured=1796300000
 *     Destination=ssh://host-b
 *
 * written atomically at the end of a completed outgoing migration. The
 * host UUID comes from the other host: it names a file only once it is a
 * well-formed UUID.
 */
#include <errno.h>
#include <sys/stat.h>

#include "errors.h"
#include "links.h"

#define LINK_GROUP "Link"

void link_record_clear(LinkRecord *r) {
        g_clear_pointer(&r->destination, g_free);
        *r = (LinkRecord) {};
}

static char *link_record_path(const char *state_dir, const char *host_uuid, GError **error) {
        if (!g_uuid_string_is_valid(host_uuid)) {
                vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "'%s' is not a host UUID", host_uuid);
                return NULL;
        }
        return g_build_filename(state_dir, "links", host_uuid, NULL);
}

int link_record_save(const char *state_dir, const char *host_uuid, const char *destination, uint64_t bandwidth,
                     int64_t now_unix, GError **error) {
        g_autofree char *path = link_record_path(state_dir, host_uuid, error);
        g_autofree char *dir = NULL, *data = NULL;
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;

        if (!path)
                return -EINVAL;
        if (bandwidth == 0)
                return 0; /* nothing measured: keep what an earlier migration saw */
        dir = g_path_get_dirname(path);
        if (g_mkdir_with_parents(dir, 0700) < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror(errno));
        g_key_file_set_uint64(kf, LINK_GROUP, "Bandwidth", bandwidth);
        g_key_file_set_int64(kf, LINK_GROUP, "Measured", now_unix);
        g_key_file_set_string(kf, LINK_GROUP, "Destination", destination);
        data = g_key_file_to_data(kf, NULL, NULL);
        if (!g_file_set_contents_full(path, data, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
                return vm_error_set(error, VM_ERROR_FAILED, "cannot write %s: %s", path, local->message);
        return 0;
}

int link_record_load(const char *state_dir, const char *host_uuid, int64_t now_unix, LinkRecord *ret,
                     GError **error) {
        g_autofree char *path = link_record_path(state_dir, host_uuid, error);
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;
        g_autofree char *destination = NULL;
        guint64 bandwidth;
        gint64 measured = 0;

        if (!path)
                return -EINVAL;
        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
                if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return -ENOENT;
                return vm_error_set(error, VM_ERROR_FAILED, "%s: %s", path, local->message);
        }
        bandwidth = g_key_file_get_uint64(kf, LINK_GROUP, "Bandwidth", &local);
        if (!local)
                measured = g_key_file_get_int64(kf, LINK_GROUP, "Measured", &local);
        if (!local)
                destination = g_key_file_get_string(kf, LINK_GROUP, "Destination", &local);
        if (local)
                return vm_error_set(error, VM_ERROR_FAILED, "%s: %s", path, local->message);
        if (bandwidth == 0 || measured > now_unix || now_unix - measured > LINK_RECORD_MAX_AGE_SECONDS)
                return -ENOENT;
        *ret = (LinkRecord) {
                .bandwidth = bandwidth,
                .measured_unix = measured,
                .destination = g_steal_pointer(&destination),
        };
        return 0;
}
