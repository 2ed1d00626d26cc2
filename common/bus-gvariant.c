/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
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

static GVariant *read_value(sd_bus_message *m, const char *type, int *ret_r);

/* A basic value; 0 from sd-bus means "nothing left here", which for a
 * value that must be there is a mismatch. */
static GVariant *read_basic(sd_bus_message *m, char type, int *ret_r) {
        union {
                int b;
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
                const char *s;
        } v;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r <= 0) {
                *ret_r = r < 0 ? r : -ENXIO;
                return NULL;
        }
        /* sd-bus validates these too; the GVariant constructors would only
         * complain on stderr and return NULL, so refuse them here by name. */
        if ((type == 's' && !g_utf8_validate(v.s, -1, NULL)) ||
            (type == 'o' && !g_variant_is_object_path(v.s)) ||
            (type == 'g' && !g_variant_is_signature(v.s))) {
                *ret_r = -EBADMSG;
                return NULL;
        }
        switch (type) {
        case 'b':
                return g_variant_new_boolean(v.b);
        case 'y':
                return g_variant_new_byte(v.y);
        case 'n':
                return g_variant_new_int16(v.n);
        case 'q':
                return g_variant_new_uint16(v.q);
        case 'i':
                return g_variant_new_int32(v.i);
        case 'u':
                return g_variant_new_uint32(v.u);
        case 'x':
                return g_variant_new_int64(v.x);
        case 't':
                return g_variant_new_uint64(v.t);
        case 'd':
                return g_variant_new_double(v.d);
        case 's':
                return g_variant_new_string(v.s);
        case 'o':
                return g_variant_new_object_path(v.s);
        case 'g':
                return g_variant_new_signature(v.s);
        default:
                *ret_r = -EINVAL;
                return NULL;
        }
}

static int enter(sd_bus_message *m, char kind, const char *contents) {
        int r = sd_bus_message_enter_container(m, kind, contents);
        return r == 0 ? -ENXIO : r;
}

/* Reads the members of a struct or dict entry: the complete types in
 * "contents", one after another, then leaves the container. */
static GVariant *read_members(sd_bus_message *m, const char *contents, bool dict_entry, int *ret_r) {
        g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref);
        int r;

        for (const char *p = contents; *p;) {
                const char *end = NULL;
                g_autofree char *member = NULL;
                GVariant *child;

                if (!g_variant_type_string_scan(p, NULL, &end)) {
                        *ret_r = -EINVAL;
                        return NULL;
                }
                member = g_strndup(p, end - p);
                child = read_value(m, member, ret_r);
                if (!child)
                        return NULL;
                g_ptr_array_add(children, g_variant_ref_sink(child));
                p = end;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                *ret_r = r;
                return NULL;
        }
        if (dict_entry) {
                if (children->len != 2) {
                        *ret_r = -EINVAL;
                        return NULL;
                }
                return g_variant_new_dict_entry(children->pdata[0], children->pdata[1]);
        }
        if (children->len == 0) {
                /* D-Bus has no empty struct. */
                *ret_r = -EINVAL;
                return NULL;
        }
        return g_variant_new_tuple((GVariant *const *) children->pdata, children->len);
}

static GVariant *read_value(sd_bus_message *m, const char *type, int *ret_r) {
        int r;

        switch (type[0]) {
        case 'v': {
                const char *contents = NULL;
                char peeked;
                GVariant *inner;

                r = sd_bus_message_peek_type(m, &peeked, &contents);
                if (r <= 0 || peeked != 'v') {
                        *ret_r = r < 0 ? r : -ENXIO;
                        return NULL;
                }
                r = enter(m, 'v', contents);
                if (r < 0) {
                        *ret_r = r;
                        return NULL;
                }
                inner = read_value(m, contents, ret_r);
                if (!inner)
                        return NULL;
                r = sd_bus_message_exit_container(m);
                if (r < 0) {
                        g_variant_unref(inner); /* drops the floating reference */
                        *ret_r = r;
                        return NULL;
                }
                return g_variant_new_variant(inner);
        }
        case 'a': {
                GVariantBuilder builder;

                r = enter(m, 'a', type + 1);
                if (r < 0) {
                        *ret_r = r;
                        return NULL;
                }
                g_variant_builder_init(&builder, G_VARIANT_TYPE(type));
                for (;;) {
                        GVariant *element;

                        r = sd_bus_message_at_end(m, false);
                        if (r < 0) {
                                g_variant_builder_clear(&builder);
                                *ret_r = r;
                                return NULL;
                        }
                        if (r > 0)
                                break;
                        element = read_value(m, type + 1, ret_r);
                        if (!element) {
                                g_variant_builder_clear(&builder);
                                return NULL;
                        }
                        g_variant_builder_add_value(&builder, element);
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0) {
                        g_variant_builder_clear(&builder);
                        *ret_r = r;
                        return NULL;
                }
                return g_variant_builder_end(&builder);
        }
        case '(':
        case '{': {
                /* Contents: the type string without its enclosing brackets. */
                g_autofree char *contents = g_strndup(type + 1, strlen(type) - 2);

                r = enter(m, type[0] == '{' ? 'e' : 'r', contents);
                if (r < 0) {
                        *ret_r = r;
                        return NULL;
                }
                return read_members(m, contents, type[0] == '{', ret_r);
        }
        default:
                if (type[1] != '\0' || !strchr("bynqiuxtdsog", type[0])) {
                        *ret_r = -EINVAL;
                        return NULL;
                }
                return read_basic(m, type[0], ret_r);
        }
}

int bus_message_read_gvariant(sd_bus_message *m, const char *type, GVariant **ret) {
        GVariant *v;
        int r = -EINVAL;

        /* Only what D-Bus can carry: GVariant's maybe types, indefinite
         * types ("*", "r", "?") and the unit "()" are valid GVariant type
         * strings but not D-Bus signatures; fds are not supported. */
        if (!type || !g_variant_type_string_is_valid(type) || strpbrk(type, "m*?rh") || strstr(type, "()"))
                return -EINVAL;

        v = read_value(m, type, &r);
        if (!v)
                return r;
        *ret = g_variant_ref_sink(v);
        return 0;
}
