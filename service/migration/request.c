/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migrate's and DryRun's arguments, parsed once (request.h). */
#include "request.h"

MigrationRequest *migration_request_parse(const char *uri, GVariant *options) {
        MigrationRequest *req = g_new0(MigrationRequest, 1);

        req->uri = g_strdup(uri);
        (void) migrate_options_parse(options, &req->options, &req->options_error);
        (void) destination_parse(uri, &req->destination, &req->destination_error);
        return req;
}

void migration_request_free(MigrationRequest *req) {
        if (!req)
                return;
        g_free(req->uri);
        destination_free(req->destination);
        g_clear_error(&req->destination_error);
        migrate_options_free(req->options);
        g_clear_error(&req->options_error);
        g_free(req);
}

const GError *migration_request_error(const MigrationRequest *req) {
        return req->options_error ? req->options_error : req->destination_error;
}

const char *migration_request_destination(const MigrationRequest *req) {
        return req->destination ? req->destination->canonical : req->uri;
}
