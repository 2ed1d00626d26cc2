/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration cookies: the a{sv} each Incoming call and its reply carry
 * between the two hosts (cookie.h). What comes from the other host is
 * hostile input: versioned, size-capped, each member checked.
 */
#include <string.h>
#include <time.h>

#include "cookie.h"
#include "errors.h"
#include "host-facts.h"
#include "manager.h"
#include "preflight.h"

int cookie_check_size(GVariant *cookie, const char *what, GError **error) {
        if (!g_variant_is_of_type(cookie, G_VARIANT_TYPE_VARDICT))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie is not an a{sv} dictionary", what);
        if (g_variant_get_size(cookie) > MIGRATION_COOKIE_MAX_BYTES)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie is %zu bytes, more than the %d allowed",
                                    what, g_variant_get_size(cookie), MIGRATION_COOKIE_MAX_BYTES);
        uint32_t version = 0;
        if (!g_variant_lookup(cookie, "version", "u", &version) || version != MIGRATION_COOKIE_VERSION)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "%s: cookie version %u, this vmigrate speaks version %d; upgrade the older host",
                                    what, version, MIGRATION_COOKIE_VERSION);
        return 0;
}

/* A string member that must be there, of bounded length, valid UTF-8
 * (GVariant guarantees that). Control characters are the caller's
 * business: the domain XML has newlines; what ends up in a message or a
 * finding is sanitized there. */
const char *cookie_string(GVariant *cookie, const char *key, size_t max, const char *what, GError **error) {
        const char *value = NULL;

        if (!g_variant_lookup(cookie, key, "&s", &value)) {
                vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: the cookie lacks '%s' (or it is not a string)",
                             what, key);
                return NULL;
        }
        if (strlen(value) > max) {
                vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: cookie member '%s' is longer than %zu bytes", what,
                             key, max);
                return NULL;
        }
        return value;
}

/* The other host's warnings ("warnings" as in a reply): shown on our job
 * too. Hostile input: bounded, and anything with control characters is
 * dropped. */
void cookie_add_warnings_to_job(Job *j, GVariant *reply) {
        g_autofree const char **warnings = NULL;

        if (!reply || !g_variant_lookup(reply, "warnings", "^a&s", &warnings))
                return;
        for (size_t i = 0; warnings[i] && i < JOB_WARNINGS_MAX; i++) {
                bool clean = strlen(warnings[i]) <= FINDING_MESSAGE_MAX;
                for (const char *p = warnings[i]; clean && *p; p++)
                        clean = (unsigned char) *p >= 0x20 && *p != 0x7f;
                if (clean)
                        job_add_warning(j, warnings[i]);
        }
}

void cookie_add_host(GVariantDict *dict, Manager *m) {
        g_autofree char *hostname = manager_get_hostname();

        g_variant_dict_insert(dict, "version", "u", (uint32_t) MIGRATION_COOKIE_VERSION);
        g_variant_dict_insert(dict, "host-uuid", "s", m->host_uuid);
        g_variant_dict_insert(dict, "hostname", "s", hostname);
}

/* The Prepare cookie for migrating d with options (checked, defaulted). */
int cookie_build_prepare(Manager *m, Domain *d, const MigrateOptions *options, GVariant **ret, GError **error) {
        g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
        g_auto(GVariantDict) backend = G_VARIANT_DICT_INIT(NULL);
        g_autoptr(DomainDef) def = domain_def_copy(d->def);
        g_autoptr(GVariant) cookie = NULL;
        g_autofree char *xml = NULL;
        int r;

        if (migrate_options_has(options, MIGRATE_OPTION_DESTINATION_XML)) {
                g_autoptr(DomainDef) dest = NULL;
                r = domain_def_parse(options->destination_xml, strlen(options->destination_xml), &dest, error);
                if (r < 0) {
                        g_prefix_error(error, "option 'destination-xml': ");
                        return r;
                }
                r = domain_def_check_abi_stable(def, dest, error);
                if (r < 0)
                        return r;
                domain_def_free(def);
                def = g_steal_pointer(&dest);
        }
        if (migrate_options_has(options, MIGRATE_OPTION_DESTINATION_NAME)) {
                g_free(def->name);
                def->name = g_strdup(options->destination_name);
        }

        if (!options->offline) {
                r = d->backend->migrate_begin(d->backend_data, def, options, &backend, error);
                if (r < 0)
                        return r;
        }

        xml = domain_def_format(def);
        cookie_add_host(&dict, m);
        {
                g_auto(HostFacts) facts = { 0 };
                /* With 'tls', or when TLS may be the default: the
                 * destination decides whether the pair can. */
                bool tls_wanted = options->tls || preflight_tls_by_default(m, d->def, options, NULL, NULL);
                g_autoptr(TlsCreds) tls = tls_wanted ? tls_creds_load(m->tls_dir, time(NULL)) : NULL;
                (void) host_facts_read(&facts);
                /* Measured from the domain as it runs here, keyed on target
                 * devices, so that destination-xml may move the files. */
                source_facts_add_to_cookie(d->def, &facts, tls, &dict);
        }
        g_variant_dict_insert(&dict, "domain-xml", "s", xml);
        g_variant_dict_insert(&dict, "persistent", "b", domain_is_persistent(d));
        g_variant_dict_insert_value(&dict, "options", migrate_options_to_variant(options));
        g_variant_dict_insert_value(&dict, "backend", g_variant_dict_end(&backend));
        cookie = g_variant_ref_sink(g_variant_dict_end(&dict));
        r = cookie_check_size(cookie, "the migration cookie", error);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&cookie);
        return 0;
}
