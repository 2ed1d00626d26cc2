/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The displays of a running QEMU: their ports, their passwords, where a
 * client finds them (Domain.Displays), and how SPICE clients follow a
 * migration.
 *
 * Ports come from the host's display range (display-ports.h) right before
 * QEMU starts and go back whenever it is gone: qemu_domain_release() runs
 * on every path that ends a QEMU (exit, failed start, failed Prepare,
 * discarded incoming guest), so no failure path keeps one.
 *
 * Passwords go to QEMU over QMP (set_password) before the guest runs:
 * never on its command line (visible in /proc to every local user) and
 * never in a log.
 *
 * Where a display listens is asked of QEMU (query-vnc, query-spice), not
 * assumed from the definition. Its URI names the listen address, or this
 * host's name when it listens on every address: what a client elsewhere
 * can open.
 *
 * Migration, as libvirt's qemuMigrationSrcGraphicsRelocate: the
 * destination's Prepare reply carries its displays; before the stream
 * starts the source tells its SPICE server where the destination's is
 * (client_migrate_info), so that connected SPICE clients connect there in
 * the background and switch over with the guest (seamless-migration=on).
 * A wildcard listen address stands for the destination's host name, a
 * display without a port (socket, none) cannot be relocated. VNC has no
 * such thing: VNC clients see Displays change (on the source, to the
 * destination's, with "migrated-to") and reconnect.
 */
#include <errno.h>
#include <string.h>

#include "display-ports.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "qemu-backend.h"

/* The data ports of qemu-migration.c, which the display range may overlap. */
#define DATA_PORT_MIN 49152
#define DATA_PORT_MAX 49215

int qemu_displays_reserve(QemuDomain *qd, DomainDef *def, GError **error) {
        if (!qd->display_ports)
                qd->display_ports = g_array_new(false, false, sizeof(uint16_t));
        for (guint i = 0; i < def->graphics->len; i++) {
                DomainGraphicsDef *g = def->graphics->pdata[i];
                uint16_t port;
                int r;

                if (!g_str_equal(g->listen_type, "address"))
                        continue;
                r = display_port_acquire(g->listen_address, g->autoport ? 0 : (uint16_t) g->port,
                                         g_str_equal(g->type, "vnc"), DATA_PORT_MIN, DATA_PORT_MAX, &port,
                                         error);
                if (r < 0) {
                        g_prefix_error(error, "<graphics type='%s'>: ", g->type);
                        qemu_displays_release(qd);
                        return r;
                }
                g_array_append_val(qd->display_ports, port);
                g->port = port;
        }
        return 0;
}

void qemu_displays_hold(QemuDomain *qd, const DomainDef *def) {
        if (!qd->display_ports)
                qd->display_ports = g_array_new(false, false, sizeof(uint16_t));
        for (guint i = 0; i < def->graphics->len; i++) {
                const DomainGraphicsDef *g = def->graphics->pdata[i];
                uint16_t port = (uint16_t) g->port;

                if (!g_str_equal(g->listen_type, "address") || g->port <= 0)
                        continue;
                display_port_hold(port);
                g_array_append_val(qd->display_ports, port);
        }
}

static void publish(QemuDomain *qd) {
        domain_backend_displays(qd->domain, qemu_displays_current(qd));
}

void qemu_displays_release(QemuDomain *qd) {
        for (guint i = 0; qd->display_ports && i < qd->display_ports->len; i++)
                display_port_release(g_array_index(qd->display_ports, uint16_t, i));
        if (qd->display_ports)
                g_array_set_size(qd->display_ports, 0);
        g_clear_pointer(&qd->display_vnc, g_variant_unref);
        g_clear_pointer(&qd->display_spice, g_variant_unref);
        publish(qd);
}

GVariant *qemu_displays_current(QemuDomain *qd) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ssa{sv})"));
        if (qd->display_vnc)
                g_variant_builder_add_value(&b, qd->display_vnc);
        if (qd->display_spice)
                g_variant_builder_add_value(&b, qd->display_spice);
        return g_variant_builder_end(&b);
}

static const DomainGraphicsDef *graphics_of(const Domain *d, const char *type) {
        for (guint i = 0; d->def->graphics && i < d->def->graphics->len; i++) {
                const DomainGraphicsDef *g = d->def->graphics->pdata[i];
                if (g_str_equal(g->type, type))
                        return g;
        }
        return NULL;
}

static bool is_wildcard(const char *host) {
        return !host || !*host || g_str_equal(host, "0.0.0.0") || g_str_equal(host, "::") ||
                g_str_equal(host, "*") || g_str_equal(host, "[::]");
}

/* One Displays entry from what QEMU says: host (an address, "*", or a
 * socket path for family unix), port (0: none). */
static GVariant *display_entry(const char *type, const DomainGraphicsDef *g, const char *host,
                               bool unix_socket, unsigned port) {
        g_autofree char *hostname = manager_get_hostname();
        g_autofree char *uri = NULL;
        GVariantBuilder details;

        g_variant_builder_init(&details, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&details, "{sv}", "host", g_variant_new_string(hostname));
        if (unix_socket) {
                uri = g_strdup_printf("%s+unix://%s", type, host);
                g_variant_builder_add(&details, "{sv}", "listen", g_variant_new_string(host));
        } else if (port > 0) {
                const char *where = is_wildcard(host) ? hostname : host;
                uri = strchr(where, ':') ? g_strdup_printf("%s://[%s]:%u", type, where, port)
                                         : g_strdup_printf("%s://%s:%u", type, where, port);
                g_variant_builder_add(&details, "{sv}", "listen", g_variant_new_string(host ? host : ""));
                g_variant_builder_add(&details, "{sv}", "port", g_variant_new_uint32(port));
        } else
                g_variant_builder_add(&details, "{sv}", "listen", g_variant_new_string("none"));
        g_variant_builder_add(&details, "{sv}", "autoport", g_variant_new_boolean(g && g->autoport));
        g_variant_builder_add(&details, "{sv}", "password", g_variant_new_boolean(g && g->passwd));
        return g_variant_ref_sink(g_variant_new("(ssa{sv})", type, uri ? uri : "", &details));
}

static const char *json_member_string(JsonObject *o, const char *name) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

static void on_query_vnc(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                         void *userdata) {
        QemuDomain *qd = userdata;
        JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        const char *family = json_member_string(o, "family"), *service = json_member_string(o, "service");
        guint64 port = 0;

        if (!o) {
                log_warning("domain '%s': query-vnc failed: %s", domain_name(qd->domain),
                            error ? error->message : "malformed reply");
                return;
        }
        g_clear_pointer(&qd->display_vnc, g_variant_unref);
        if (!json_get_bool_member(o, "enabled", false))
                qd->display_vnc = display_entry("vnc", graphics_of(qd->domain, "vnc"), NULL, false, 0);
        else if (g_strcmp0(family, "unix") == 0)
                qd->display_vnc = display_entry("vnc", graphics_of(qd->domain, "vnc"), service, true, 0);
        else {
                if (service)
                        (void) g_ascii_string_to_unsigned(service, 10, 1, 65535, &port, NULL);
                qd->display_vnc = display_entry("vnc", graphics_of(qd->domain, "vnc"),
                                                json_member_string(o, "host"), false, (unsigned) port);
        }
        publish(qd);
}

static void on_query_spice(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                           void *userdata) {
        QemuDomain *qd = userdata;
        JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        const DomainGraphicsDef *g = graphics_of(qd->domain, "spice");
        JsonNode *port = o ? json_object_get_member(o, "port") : NULL;

        if (!o) {
                log_warning("domain '%s': query-spice failed: %s", domain_name(qd->domain),
                            error ? error->message : "malformed reply");
                return;
        }
        g_clear_pointer(&qd->display_spice, g_variant_unref);
        if (g && g_str_equal(g->listen_type, "socket"))
                qd->display_spice = display_entry("spice", g, json_member_string(o, "host"), true, 0);
        else
                qd->display_spice = display_entry(
                        "spice", g, json_member_string(o, "host"), false,
                        port && JSON_NODE_HOLDS_VALUE(port) ? (unsigned) json_node_get_int(port) : 0);
        publish(qd);
}

static void on_set_password(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                            void *userdata) {
        QemuDomain *qd = userdata;

        /* A display left without its password must not run open: stop. */
        if (error) {
                log_error("domain '%s': cannot set the display password (%s): stopping QEMU rather than "
                          "leaving the display open",
                          domain_name(qd->domain), error->message);
                qemu_domain_terminate(qd);
        }
}

void qemu_displays_connected(QemuDomain *qd, const DomainDef *def) {
        for (guint i = 0; i < def->graphics->len; i++) {
                const DomainGraphicsDef *g = def->graphics->pdata[i];

                if (g->passwd && !g_str_equal(g->listen_type, "none")) {
                        JsonObject *args = json_object_new();
                        json_object_set_string_member(args, "protocol", g->type);
                        json_object_set_string_member(args, "password", g->passwd);
                        (void) qmp_execute(qd->qmp, "set_password", args, QEMU_COMMAND_TIMEOUT_USEC,
                                           on_set_password, qd, NULL);
                }
                if (g_str_equal(g->type, "vnc"))
                        (void) qmp_execute(qd->qmp, "query-vnc", NULL, QEMU_COMMAND_TIMEOUT_USEC,
                                           on_query_vnc, qd, NULL);
                else
                        (void) qmp_execute(qd->qmp, "query-spice", NULL, QEMU_COMMAND_TIMEOUT_USEC,
                                           on_query_spice, qd, NULL);
        }
}

/* The destination's SPICE display from its Prepare reply: URI host and port. */
static bool remote_spice(GVariant *backend_reply, char **ret_host, unsigned *ret_port) {
        g_autoptr(GVariant) displays = NULL;
        GVariantIter iter;
        const char *type, *uri;
        GVariant *details;

        if (!backend_reply ||
            !(displays = g_variant_lookup_value(backend_reply, "displays", G_VARIANT_TYPE("a(ssa{sv})"))))
                return false;
        g_variant_iter_init(&iter, displays);
        while (g_variant_iter_loop(&iter, "(&s&s@a{sv})", &type, &uri, &details)) {
                g_autoptr(GUri) parsed = NULL;
                guint32 port = 0;

                if (!g_str_equal(type, "spice") || !g_variant_lookup(details, "port", "u", &port) ||
                    port == 0)
                        continue;
                parsed = g_uri_parse(uri, G_URI_FLAGS_NONE, NULL);
                if (!parsed || !g_uri_get_host(parsed))
                        continue;
                *ret_host = g_strdup(g_uri_get_host(parsed));
                *ret_port = port;
                g_variant_unref(details);
                return true;
        }
        return false;
}

static void on_client_migrate_info(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                   void *userdata) {
        QemuDomain *qd = userdata;

        /* As libvirt: clients that cannot follow reconnect by themselves. */
        if (error)
                log_warning("domain '%s': SPICE clients cannot be moved with the guest "
                            "(client_migrate_info: %s); "
                            "they must reconnect",
                            domain_name(qd->domain), error->message);
}

bool qemu_displays_relocate(QemuDomain *qd, GVariant *backend_reply) {
        g_autofree char *host = NULL;
        unsigned port = 0;
        JsonObject *args;

        if (!graphics_of(qd->domain, "spice") || !remote_spice(backend_reply, &host, &port))
                return false;
        args = json_object_new();
        json_object_set_string_member(args, "protocol", "spice");
        json_object_set_string_member(args, "hostname", host);
        json_object_set_int_member(args, "port", port);
        if (qmp_execute(qd->qmp, "client_migrate_info", args, QEMU_COMMAND_TIMEOUT_USEC,
                        on_client_migrate_info, qd, NULL) < 0)
                return false;
        log_info("domain '%s': SPICE clients follow the guest to %s:%u (client_migrate_info)",
                 domain_name(qd->domain), host, port);
        return true;
}

void qemu_displays_moved(QemuDomain *qd, GVariant *backend_reply) {
        g_autoptr(GVariant) displays = backend_reply
                ? g_variant_lookup_value(backend_reply, "displays", G_VARIANT_TYPE("a(ssa{sv})"))
                : NULL;
        GVariantBuilder b;
        GVariantIter iter;
        const char *type, *uri;
        GVariant *details;

        if (!displays)
                return;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ssa{sv})"));
        g_variant_iter_init(&iter, displays);
        while (g_variant_iter_loop(&iter, "(&s&s@a{sv})", &type, &uri, &details)) {
                g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(details);
                const char *host = NULL;

                if (!g_variant_dict_lookup(&dict, "host", "&s", &host))
                        host = "";
                g_variant_dict_insert(&dict, "migrated-to", "s", host);
                g_variant_builder_add(&b, "(ss@a{sv})", type, uri, g_variant_dict_end(&dict));
        }
        domain_backend_displays(qd->domain, g_variant_builder_end(&b));
}
