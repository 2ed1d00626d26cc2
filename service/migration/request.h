/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "options.h"
#include "uri.h"

/*
 * What Migrate and DryRun were asked: the destination URI and the options
 * a{sv}, parsed once (by the bus layer, before it asks polkit, so that the
 * canonical destination is what rules see) and handed to the core whole.
 * A part that does not parse is NULL, with its error kept: Migrate refuses
 * with it, DryRun reports it as a finding.
 */
typedef struct MigrationRequest {
        char *uri;                 /* as given */
        Destination *destination;  /* NULL: see destination_error */
        GError *destination_error;
        MigrateOptions *options;   /* parsed, not yet checked against a backend; NULL: see options_error */
        GError *options_error;
        /* A dry run for placement (Evacuate): the checks only, no
         * dirty-rate measurement (it pauses nothing, but takes a second). */
        bool skip_measurement;
} MigrationRequest;

MigrationRequest *migration_request_parse(const char *uri, GVariant *options);
void migration_request_free(MigrationRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigrationRequest, migration_request_free)
/* The first error (options, then destination), or NULL. */
const GError *migration_request_error(const MigrationRequest *req);
/* For polkit's "destination": the canonical URI, or the URI as given when
 * it does not parse. */
const char *migration_request_destination(const MigrationRequest *req);
