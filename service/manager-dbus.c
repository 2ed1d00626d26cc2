/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>

#include "bus-errors.h"
#include "bus-gvariant.h"
#include "bus-util.h"
#include "config.h"
#include "evacuation-dbus.h"
#include "manager-dbus.h"
#include "domain-xml.h"
#include "errors.h"
#include "log.h"
#include "policy.h"

static int method_list_domains(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GPtrArray) domains = manager_list_domains(daemon->manager);
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < domains->len; i++) {
                g_autofree char *path = domain_dbus_path(domains->pdata[i]);
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_domain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        const char *name;
        Domain *d;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        d = manager_lookup(daemon->manager, name);
        if (!d)
                return sd_bus_error_setf(error, vm_error_dbus_name(VM_ERROR_NO_SUCH_DOMAIN),
                                         "no domain named or with UUID '%s' on this host; ListDomains shows "
                                         "the defined ones",
                                         name);
        g_autofree char *path = domain_dbus_path(d);
        return sd_bus_reply_method_return(m, "o", path);
}

/* Reads the XML argument and checks it before asking polkit, so that the
 * domain's name can be handed to polkit rules. Nothing changes here. */
static int read_and_check_xml(sd_bus_message *m, const char **ret_xml, DomainDef **ret_def, sd_bus_error *error) {
        g_autoptr(GError) gerror = NULL;
        const char *xml;
        int r;

        r = sd_bus_message_read(m, "s", &xml);
        if (r < 0)
                return r;
        r = domain_def_parse(xml, strlen(xml), ret_def, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        *ret_xml = xml;
        return 0;
}

/* DefineXML and CreateXML: the XML read and checked, then polkit asked
 * about the domain it names. As bus_verify_polkit_async(): 1 authorized,
 * 0 asked (return 1 from the handler), < 0 refused. */
static int read_xml_authorized(Daemon *daemon, sd_bus_message *m, const char **ret_xml, sd_bus_error *error) {
        g_autoptr(DomainDef) def = NULL;
        int r;

        r = read_and_check_xml(m, ret_xml, &def, error);
        if (r < 0)
                return r;
        return daemon_verify_domain_action(daemon, m, POLKIT_ACTION_MANAGE_DOMAINS, def->name,
                                           daemon_domain_xml_uuid_detail(*ret_xml, def), error);
}

static int method_define_xml(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(GError) gerror = NULL;
        const char *xml;
        Domain *d;
        int r;

        r = read_xml_authorized(daemon, m, &xml, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit will call us again */

        r = manager_define_xml(daemon->manager, xml, strlen(xml), &d, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        g_autofree char *path = domain_dbus_path(d);
        return sd_bus_reply_method_return(m, "o", path);
}

static void create_done(Domain *d, int r, const GError *error, void *userdata) {
        deferred_reply_finish(userdata, d, r, error, true);
}

static int method_create_xml(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(GError) gerror = NULL;
        const char *xml;
        Domain *d;
        int r;

        r = read_xml_authorized(daemon, m, &xml, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        DeferredReply *reply = deferred_reply_new(daemon, m);
        r = manager_create_xml(daemon->manager, xml, strlen(xml), create_done, reply, &d, &gerror);
        if (r < 0) {
                deferred_reply_free(reply);
                return bus_set_gerror(error, gerror);
        }
        return 1;
}

static int method_get_capabilities(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autofree char *xml = manager_capabilities_xml(daemon->manager);

        return sd_bus_reply_method_return(m, "s", xml);
}

static int method_get_backends(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) backends = g_variant_ref_sink(manager_describe_backends(daemon->manager));
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = bus_message_append_gvariant(reply, backends);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_policies(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GPtrArray) policies = policy_load_all(daemon->manager->policies_dir);
        g_autoptr(GVariant) list = g_variant_ref_sink(policy_describe_all(policies));
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = bus_message_append_gvariant(reply, list);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_job_history(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_auto(JobArchiveFilter) filter = {};
        g_autoptr(GVariant) options = NULL, list = NULL;
        g_autoptr(GError) gerror = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = bus_message_read_gvariant(m, "a{sv}", &options);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "the filter must be an a{sv}: %s",
                                         g_strerror(-r));
        r = job_archive_filter_parse(options, &filter, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        list = g_variant_ref_sink(job_archive_list(daemon->manager->archive, &filter));
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = bus_message_append_gvariant(reply, list);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_set_maintenance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        g_autoptr(GError) gerror = NULL;
        int on, r;

        r = sd_bus_message_read(m, "b", &on);
        if (r < 0)
                return r;
        const char *details[] = { "operation", "SetMaintenance", "maintenance", on ? "true" : "false", NULL };
        r = bus_verify_polkit_async(m, POLKIT_ACTION_MANAGE_HOST, details, daemon->polkit, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autofree char *who = daemon_caller_description(m);
        r = manager_set_maintenance(daemon->manager, on, who, &gerror);
        if (r < 0)
                return bus_set_gerror(error, gerror);
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get_maintenance(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        return sd_bus_message_append(reply, "b", daemon->manager->maintenance);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_hostname(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        g_autofree char *hostname = manager_get_hostname();
        return sd_bus_message_append(reply, "s", hostname);
}

static int property_get_host_uuid(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *daemon = userdata;
        return sd_bus_message_append(reply, "s", daemon->manager->host_uuid);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Hostname", "s", property_get_hostname, 0, 0),
        SD_BUS_PROPERTY("HostUUID", "s", property_get_host_uuid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Maintenance", "b", property_get_maintenance, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("ListDomains", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", domains),
                                method_list_domains, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDomain", SD_BUS_ARGS("s", name_or_uuid), SD_BUS_RESULT("o", domain),
                                method_get_domain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DefineXML", SD_BUS_ARGS("s", xml), SD_BUS_RESULT("o", domain),
                                method_define_xml, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateXML", SD_BUS_ARGS("s", xml), SD_BUS_RESULT("o", domain),
                                method_create_xml, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCapabilities", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", xml),
                                method_get_capabilities, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetBackends", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sa{sv}}", backends),
                                method_get_backends, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPolicies", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssa{sv})", policies),
                                method_get_policies, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListJobHistory", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("aa{sv}", jobs),
                                method_list_job_history, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetMaintenance", SD_BUS_ARGS("b", maintenance), SD_BUS_NO_RESULT,
                                method_set_maintenance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Evacuate", SD_BUS_ARGS("as", destinations, "a{sv}", options),
                                SD_BUS_RESULT("o", evacuation), method_evacuate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int manager_dbus_register(Daemon *daemon) {
        int r;

        r = sd_bus_add_object_vtable(daemon->bus, NULL, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, manager_vtable,
                                     daemon);
        if (r < 0)
                return r;
        return sd_bus_add_object_manager(daemon->bus, NULL, BUS_MANAGER_PATH);
}

void manager_observe_host_changed(Manager *m, ManagerChange what, void *userdata) {
        Daemon *daemon = userdata;
        int r;

        if (!(what & MANAGER_CHANGE_MAINTENANCE))
                return;
        r = sd_bus_emit_properties_changed(daemon->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "Maintenance",
                                           NULL);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged for Maintenance: %s", g_strerror(-r));
}
