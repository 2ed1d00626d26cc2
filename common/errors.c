/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "errors.h"

G_DEFINE_QUARK(vmigrate-error-quark, vm_error)

static const struct {
        const char *name;
        int errno_value;
} error_table[_VM_ERROR_MAX] = {
        [VM_ERROR_FAILED] = { "Failed", EIO },
        [VM_ERROR_NO_SUCH_DOMAIN] = { "NoSuchDomain", ENOENT },
        [VM_ERROR_INVALID_XML] = { "InvalidXML", EINVAL },
        [VM_ERROR_DOMAIN_EXISTS] = { "DomainExists", EEXIST },
        [VM_ERROR_INVALID_STATE] = { "InvalidState", EBUSY },
        [VM_ERROR_UNSUPPORTED_BACKEND] = { "UnsupportedBackend", EOPNOTSUPP },
        [VM_ERROR_BACKEND_FAILED] = { "BackendFailed", EIO },
        [VM_ERROR_INVALID_ARGUMENT] = { "InvalidArgument", EINVAL },
        [VM_ERROR_INVALID_OPTION] = { "InvalidOption", EINVAL },
        [VM_ERROR_UNSUPPORTED_OPTION] = { "UnsupportedOption", EOPNOTSUPP },
        [VM_ERROR_CONFLICTING_OPTIONS] = { "ConflictingOptions", EINVAL },
        [VM_ERROR_INVALID_DESTINATION] = { "InvalidDestination", EINVAL },
        [VM_ERROR_DESTINATION_UNREACHABLE] = { "DestinationUnreachable", EHOSTUNREACH },
        [VM_ERROR_INCOMPATIBLE] = { "Incompatible", EPROTO },
        [VM_ERROR_JOB_ACTIVE] = { "JobActive", EBUSY },
        [VM_ERROR_NO_JOB] = { "NoJob", ESRCH },
        [VM_ERROR_POSTCOPY_NOT_ENABLED] = { "PostCopyNotEnabled", ENOTSUP },
        [VM_ERROR_MIGRATION_FAILED] = { "MigrationFailed", EIO },
        [VM_ERROR_POSTCOPY_FAILED] = { "PostCopyFailed", EIO },
        [VM_ERROR_STORAGE_FAILED] = { "StorageFailed", EIO },
        [VM_ERROR_LIMIT_REACHED] = { "LimitReached", EAGAIN },
        [VM_ERROR_IN_MAINTENANCE] = { "HostInMaintenance", EBUSY },
};

const char *vm_error_short_name(VmError code) {
        if ((unsigned) code >= _VM_ERROR_MAX)
                return NULL;
        return error_table[code].name;
}

const char *vm_error_dbus_name(VmError code) {
        static const char *names[_VM_ERROR_MAX];

        if ((unsigned) code >= _VM_ERROR_MAX)
                return NULL;
        /* Interned once; the daemon is single-threaded. */
        if (!names[code]) {
                g_autofree char *name = g_strconcat("org.vmigrate.Migrate1.Error.", error_table[code].name, NULL);
                names[code] = g_intern_string(name);
        }
        return names[code];
}

VmError vm_error_from_dbus_name(const char *name) {
        const char *prefix = "org.vmigrate.Migrate1.Error.";

        if (!name || !g_str_has_prefix(name, prefix))
                return _VM_ERROR_MAX;
        for (int code = 0; code < _VM_ERROR_MAX; code++)
                if (g_str_equal(name + strlen(prefix), error_table[code].name))
                        return code;
        return _VM_ERROR_MAX;
}

int vm_error_errno(VmError code) {
        if ((unsigned) code >= _VM_ERROR_MAX)
                return EIO;
        return error_table[code].errno_value;
}

int vm_error_set(GError **error, VmError code, const char *format, ...) {
        va_list ap;

        if (error) {
                va_start(ap, format);
                g_autofree char *message = g_strdup_vprintf(format, ap);
                va_end(ap);
                g_set_error_literal(error, VM_ERROR, code, message);
        }
        return -vm_error_errno(code);
}
