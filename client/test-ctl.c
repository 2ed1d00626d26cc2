/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of vmigratectl's bus-free helpers. */

#include "ctl.h"

#include <errno.h>
#include <string.h>

static void assert_host_ok(const char *uri, CtlHostKind kind, const char *expected) {
        g_auto(CtlHost) host = { 0 };
        g_autofree char *error = NULL;

        g_assert_cmpint(ctl_host_parse(uri, &host, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpint(host.kind, ==, kind);
        g_assert_cmpstr(kind == CTL_HOST_UNIX ? host.path : host.remote, ==, expected);
}

static void assert_host_bad(const char *uri, const char *message_part) {
        g_auto(CtlHost) host = { 0 };
        g_autofree char *error = NULL;

        g_assert_cmpint(ctl_host_parse(uri, &host, &error), ==, -EINVAL);
        g_assert_nonnull(error);
        if (!strstr(error, message_part))
                g_test_message("error for '%s' was: %s", uri, error);
        g_assert_nonnull(strstr(error, message_part));
        g_assert_null(host.path);
        g_assert_null(host.remote);
}

static void test_host_valid(void) {
        assert_host_ok("unix:///run/dbus/system_bus_socket", CTL_HOST_UNIX, "/run/dbus/system_bus_socket");
        assert_host_ok("ssh://hv2", CTL_HOST_SSH, "root@hv2");
        assert_host_ok("ssh://admin@hv2.example.org", CTL_HOST_SSH, "admin@hv2.example.org");
        assert_host_ok("ssh://admin@hv2:2222", CTL_HOST_SSH, "admin@hv2:2222");
        assert_host_ok("ssh://[fe80::1]:22", CTL_HOST_SSH, "root@[fe80::1]:22");
        assert_host_ok("hv2", CTL_HOST_SSH, "root@hv2");
        assert_host_ok("bob@hv2:22", CTL_HOST_SSH, "bob@hv2:22");
        assert_host_ok("10.0.0.2", CTL_HOST_SSH, "root@10.0.0.2");
}

static void test_host_invalid(void) {
        assert_host_bad("", "empty host");
        assert_host_bad("tcp://hv2:55556", "unknown scheme 'tcp'");
        assert_host_bad("UNIX:///x", "unknown scheme 'UNIX'");
        assert_host_bad("unix://", "socket path is empty");
        assert_host_bad("unix://run/bus", "relative");
        assert_host_bad("ssh://", "host name is missing");
        assert_host_bad("ssh://hv2:0", "invalid port '0'");
        assert_host_bad("ssh://hv2:65536", "invalid port '65536'");
        assert_host_bad("ssh://hv2:", "invalid port ''");
        assert_host_bad("ssh://hv2:22x", "invalid port '22x'");
        assert_host_bad("ssh://hv2/path", "path, query or fragment");
        assert_host_bad("ssh://-oProxyCommand=x", "invalid host name");
        assert_host_bad("ssh://@hv2", "invalid user name");
        assert_host_bad("ssh://a b@hv2", "invalid user name");
        assert_host_bad("ssh://[zz::1]", "IPv6");
        assert_host_bad("ssh://user@:22", "host name is missing");
        assert_host_bad("./socket", "no scheme");
        assert_host_bad("hv2:port", "invalid port 'port'");

        g_autofree char *long_name = g_strnfill(200, 'a');
        g_autofree char *long_uri = g_strconcat("unix:///", long_name, NULL);
        assert_host_bad(long_uri, "too long");
}

static void test_format_bytes(void) {
        static const struct {
                guint64 bytes;
                const char *text;
        } cases[] = {
                { 0, "0 B" },
                { 1023, "1023 B" },
                { 1024, "1 KiB" },
                { 1536, "1.5 KiB" },
                { 512ULL << 20, "512 MiB" },
                { 1ULL << 30, "1 GiB" },
                { 3ULL << 29, "1.5 GiB" },
                { G_MAXUINT64, "16.0 EiB" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *text = ctl_format_bytes(cases[i].bytes);
                g_assert_cmpstr(text, ==, cases[i].text);
        }
}

static void test_property_to_key(void) {
        static const char *const cases[][2] = {
                { "Name", "name" },
                { "UUID", "uuid" },
                { "StateReason", "state-reason" },
                { "MemoryBytes", "memory-bytes" },
                { "VCPUs", "vcpus" },
                { "HostUUID", "host-uuid" },
                { "ExpectedDowntimeMs", "expected-downtime-ms" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *key = ctl_property_to_key(cases[i][0]);
                g_assert_cmpstr(key, ==, cases[i][1]);
        }
}

static void test_format_value(void) {
        static const char *const strv[] = { "kvm", "qemu", NULL };
        static const char *const empty[] = { NULL };
        g_autoptr(GVariant) b = g_variant_ref_sink(g_variant_new_variant(g_variant_new_boolean(TRUE)));
        g_autoptr(GVariant) as = g_variant_ref_sink(g_variant_new_strv(strv, -1));
        g_autoptr(GVariant) none = g_variant_ref_sink(g_variant_new_strv(empty, -1));
        g_autoptr(GVariant) u = g_variant_ref_sink(g_variant_new_uint32(4));
        g_autoptr(GVariant) t = g_variant_ref_sink(g_variant_new_uint64(G_MAXUINT64));
        g_autofree char *tb = ctl_format_value(b);
        g_autofree char *tas = ctl_format_value(as);
        g_autofree char *tnone = ctl_format_value(none);
        g_autofree char *tu = ctl_format_value(u);
        g_autofree char *tt = ctl_format_value(t);

        g_assert_cmpstr(tb, ==, "yes");
        g_assert_cmpstr(tas, ==, "kvm, qemu");
        g_assert_cmpstr(tnone, ==, "(none)");
        g_assert_cmpstr(tu, ==, "4");
        g_assert_cmpstr(tt, ==, "18446744073709551615");
}

static void test_properties_to_json(void) {
        g_autoptr(GVariantBuilder) builder = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
        g_autoptr(GVariant) props = NULL;
        g_autoptr(JsonNode) node = NULL;
        JsonObject *object;

        g_variant_builder_add(builder, "{sv}", "Name", g_variant_new_string("demo"));
        g_variant_builder_add(builder, "{sv}", "MemoryBytes", g_variant_new_uint64(512ULL << 20));
        g_variant_builder_add(builder, "{sv}", "Persistent", g_variant_new_boolean(FALSE));
        props = g_variant_ref_sink(g_variant_builder_end(builder));
        node = ctl_properties_to_json(props);
        object = json_node_get_object(node);
        g_assert_cmpstr(json_object_get_string_member(object, "name"), ==, "demo");
        g_assert_cmpint(json_object_get_int_member(object, "memory-bytes"), ==, 512 << 20);
        g_assert_false(json_object_get_boolean_member(object, "persistent"));
        g_assert_cmpuint(json_object_get_size(object), ==, 3);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/ctl/host/valid", test_host_valid);
        g_test_add_func("/ctl/host/invalid", test_host_invalid);
        g_test_add_func("/ctl/format/bytes", test_format_bytes);
        g_test_add_func("/ctl/format/property-key", test_property_to_key);
        g_test_add_func("/ctl/format/value", test_format_value);
        g_test_add_func("/ctl/format/properties-json", test_properties_to_json);
        return g_test_run();
}
