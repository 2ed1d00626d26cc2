/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "errors.h"
#include "qemu-backend.h"
#include "qemu-tls.h"

static char *new_id(const char *what) {
        return g_strdup_printf("vmigrate-%s-%08" PRIx32 "%08" PRIx32, what, g_random_int(), g_random_int());
}

int qemu_tls_setup(Qmp *qmp, const MigrationTls *tls, bool source, const char *hostname, JsonObject *parameters,
                   QmpReplyFn done, void *userdata, GError **error) {
        g_autofree char *creds_id = new_id("tls");
        JsonObject *creds = json_object_new();
        int r;

        json_object_set_string_member(creds, "qom-type", "tls-creds-x509");
        json_object_set_string_member(creds, "id", creds_id);
        json_object_set_string_member(creds, "dir", tls->dir);
        json_object_set_string_member(creds, "endpoint", source ? "client" : "server");
        /* The server asks for the client's certificate; the client checks
         * the server's against the CA and tls-hostname. */
        json_object_set_boolean_member(creds, "verify-peer", true);
        r = qmp_execute(qmp, "object-add", creds, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
        if (r < 0)
                return r;
        json_object_set_string_member(parameters, "tls-creds", creds_id);

        if (source) {
                json_object_set_string_member(parameters, "tls-hostname", hostname);
                return 0;
        }
        if (!tls->peer_dn)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "option 'tls': the source's client certificate name is unknown");
        g_autofree char *authz_id = new_id("authz");
        JsonObject *authz = json_object_new();
        json_object_set_string_member(authz, "qom-type", "authz-simple");
        json_object_set_string_member(authz, "id", authz_id);
        json_object_set_string_member(authz, "identity", tls->peer_dn);
        r = qmp_execute(qmp, "object-add", authz, QEMU_COMMAND_TIMEOUT_USEC, done, userdata, error);
        if (r < 0)
                return r;
        json_object_set_string_member(parameters, "tls-authz", authz_id);
        return 0;
}
