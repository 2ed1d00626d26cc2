/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: formatting values for humans and for --json.
 */

#include "ctl.h"

#include <stdio.h>
#include <string.h>

char *ctl_format_bytes(uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        size_t u = 0;
        uint64_t unit = 1;

        while (u + 1 < G_N_ELEMENTS(units) && bytes / unit >= 1024) {
                unit *= 1024;
                u++;
        }
        if (bytes % unit == 0)
                return g_strdup_printf("%" G_GUINT64_FORMAT " %s", bytes / unit, units[u]);
        return g_strdup_printf("%.1f %s", (double)bytes / (double)unit, units[u]);
}

/*
 * A dash goes before an upper-case letter that follows a lower-case letter
 * or digit, so acronyms stay whole: "HostUUID" -> "host-uuid",
 * "VCPUs" -> "vcpus", "ExpectedDowntimeMs" -> "expected-downtime-ms".
 */
char *ctl_property_to_key(const char *property) {
        GString *s = g_string_new(NULL);

        for (const char *p = property; *p; p++) {
                if (p != property && g_ascii_isupper(*p) &&
                    (g_ascii_islower(p[-1]) || g_ascii_isdigit(p[-1])))
                        g_string_append_c(s, '-');
                g_string_append_c(s, g_ascii_tolower(*p));
        }
        return g_string_free(s, FALSE);
}

char *ctl_format_value(GVariant *value) {
        g_autoptr(GVariant) inner = NULL;

        if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARIANT)) {
                inner = g_variant_get_variant(value);
                value = inner;
        }

        if (g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN))
                return g_strdup(g_variant_get_boolean(value) ? "yes" : "no");
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_SIGNATURE))
                return g_strdup(g_variant_get_string(value, NULL));
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH_ARRAY)) {
                g_autofree const char **strv = g_variant_get_strv(value, NULL);
                if (!strv[0])
                        return g_strdup("(none)");
                return g_strjoinv(", ", (char **)strv);
        }
        /* Numbers without GVariant's type annotations ("uint64 5"). */
        return g_variant_print(value, FALSE);
}

void ctl_print_json(JsonNode *node) {
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autofree char *data = NULL;

        json_generator_set_pretty(generator, TRUE);
        json_generator_set_indent(generator, 2);
        json_generator_set_root(generator, node);
        data = json_generator_to_data(generator, NULL);
        fputs(data, stdout);
        fputc('\n', stdout);
}

JsonNode *ctl_properties_to_json(GVariant *properties) {
        g_autoptr(JsonBuilder) builder = json_builder_new();
        GVariantIter iter;
        const char *name;
        GVariant *value;

        json_builder_begin_object(builder);
        g_variant_iter_init(&iter, properties);
        while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
                g_autofree char *key = ctl_property_to_key(name);

                json_builder_set_member_name(builder, key);
                json_builder_add_value(builder, json_gvariant_serialize(value));
                g_variant_unref(value);
        }
        json_builder_end_object(builder);
        return json_builder_get_root(builder);
}
