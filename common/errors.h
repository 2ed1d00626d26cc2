/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

/*
 * Errors a client can act on. The core reports them as GError in
 * VM_ERROR; the bus layer maps each code 1:1 onto the D-Bus name
 * "org.vmigrate.Migrate1.Error.<Name>" (see errors.c for the table).
 * Keep the enum and the table in the same order.
 */
typedef enum VmError {
        VM_ERROR_FAILED,                  /* Failed: nothing more specific applies */
        VM_ERROR_NO_SUCH_DOMAIN,          /* NoSuchDomain */
        VM_ERROR_INVALID_XML,             /* InvalidXML */
        VM_ERROR_DOMAIN_EXISTS,           /* DomainExists */
        VM_ERROR_INVALID_STATE,           /* InvalidState: operation not valid in this state */
        VM_ERROR_UNSUPPORTED_BACKEND,     /* UnsupportedBackend */
        VM_ERROR_BACKEND_FAILED,          /* BackendFailed */
        VM_ERROR_INVALID_ARGUMENT,        /* InvalidArgument */
        VM_ERROR_INVALID_OPTION,          /* InvalidOption */
        VM_ERROR_UNSUPPORTED_OPTION,      /* UnsupportedOption */
        VM_ERROR_CONFLICTING_OPTIONS,     /* ConflictingOptions */
        VM_ERROR_INVALID_DESTINATION,     /* InvalidDestination */
        VM_ERROR_DESTINATION_UNREACHABLE, /* DestinationUnreachable */
        VM_ERROR_INCOMPATIBLE,            /* Incompatible */
        VM_ERROR_JOB_ACTIVE,              /* JobActive */
        VM_ERROR_NO_JOB,                  /* NoJob */
        VM_ERROR_POSTCOPY_NOT_ENABLED,    /* PostCopyNotEnabled */
        VM_ERROR_MIGRATION_FAILED,        /* MigrationFailed */
        VM_ERROR_POSTCOPY_FAILED,         /* PostCopyFailed */
        VM_ERROR_STORAGE_FAILED,          /* StorageFailed: state directory could not be written */
        VM_ERROR_LIMIT_REACHED,           /* LimitReached: too many migrations at once */
        VM_ERROR_IN_MAINTENANCE,          /* HostInMaintenance: the host refuses arrivals and starts */
        _VM_ERROR_MAX,
} VmError;

#define VM_ERROR vm_error_quark()
GQuark vm_error_quark(void);

/* "NoSuchDomain" for VM_ERROR_NO_SUCH_DOMAIN; NULL for codes out of range. */
const char *vm_error_short_name(VmError code);

/* "org.vmigrate.Migrate1.Error.NoSuchDomain"; NULL for codes out of range. */
const char *vm_error_dbus_name(VmError code);

/* The code for "org.vmigrate.Migrate1.Error.<Name>", or _VM_ERROR_MAX. */
VmError vm_error_from_dbus_name(const char *name);

/* The errno a code is reported as where an int return carries it. */
int vm_error_errno(VmError code);

/* Sets *error (if error is non-NULL) and returns -vm_error_errno(code). */
int vm_error_set(GError **error, VmError code, const char *format, ...) G_GNUC_PRINTF(3, 4);
