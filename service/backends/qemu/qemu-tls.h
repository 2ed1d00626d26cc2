/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <json-glib/json-glib.h>

#include "backend.h"
#include "qmp.h"

/*
 * Option 'tls' on QEMU's migration stream: a tls-creds-x509 object reading
 * the credentials directory (endpoint client on the source, server with
 * verify-peer on the destination), on the destination an authz-simple
 * object that lets in only the source's client certificate, and the
 * migrate-set-parameters members naming them (tls-creds, plus tls-hostname
 * on the source or tls-authz on the destination).
 *
 * Queues the object-add commands on qmp (done gets their replies, so a
 * refusal ends the migration like any other set-up command) and adds the
 * members to parameters, which the caller sends next: QMP runs commands in
 * order, so the objects exist by then. Object ids are new each time, so a
 * post-copy resume on the same QEMU adds fresh ones.
 */
int qemu_tls_setup(Qmp *qmp, const MigrationTls *tls, bool source, const char *hostname, JsonObject *parameters,
                   QmpReplyFn done, void *userdata, GError **error);
