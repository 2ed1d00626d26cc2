/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "bus-gvariant.h"

static int append_basic(sd_bus_message *m, GVariant *v) {
        char type = g_variant_get_type_string(v)[0];

        switch (type) {
        case 'b': {
                int b = g_variant_get_boolean(v);
                return sd_bus_message_append_basic(m, type, &b);
        }
        case 'y': {
                uint8_t x = g_variant_get_byte(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 'n': {
                int16_t x = g_variant_get_int16(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 'q': {
                uint16_t x = g_variant_get_uint16(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 'i': {
                int32_t x = g_variant_get_int32(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 'u': {
                uint32_t x = g_variant_get_uint32(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 'x': {
                int64_t x = g_variant_get_int64(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 't': {
                uint64_t x = g_variant_get_uint64(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 'd': {
                double x = g_variant_get_double(v);
                return sd_bus_message_append_basic(m, type, &x);
        }
        case 's':
        case 'o':
        case 'g':
                return sd_bus_message_append_basic(m, type, g_variant_get_string(v, NULL));
        default:
                return -EINVAL;
        }
}

static int append_children(sd_bus_message *m, GVariant *v) {
        size_t n = g_variant_n_children(v);
        int r;

        for (size_t i = 0; i < n; i++) {
                g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
                r = bus_message_append_gvariant(m, child);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bus_message_append_gvariant(sd_bus_message *m, GVariant *v) {
        const char *type = g_variant_get_type_string(v);
        int r;

        if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
                g_autoptr(GVariant) inner = g_variant_get_variant(v);
                r = sd_bus_message_open_container(m, 'v', g_variant_get_type_string(inner));
                if (r < 0)
                        return r;
                r = bus_message_append_gvariant(m, inner);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        if (type[0] == 'a') {
                r = sd_bus_message_open_container(m, 'a', type + 1);
                if (r < 0)
                        return r;
                r = append_children(m, v);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        if (type[0] == '{' || type[0] == '(') {
                /* Contents: the type string without its enclosing brackets. */
                g_autofree char *contents = g_strndup(type + 1, strlen(type) - 2);
                r = sd_bus_message_open_container(m, type[0] == '{' ? 'e' : 'r', contents);
                if (r < 0)
                        return r;
                r = append_children(m, v);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        return append_basic(m, v);
}
