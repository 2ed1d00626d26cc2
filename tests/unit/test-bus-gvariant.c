/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-gvariant.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)

/* Messages need a bus that is past "unset"; one end of a socketpair that
 * nobody answers is enough, nothing is ever sent. */
static sd_bus *bus;
static int peer_fd = -1;

static void bus_setup(void) {
        int fds[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
        g_assert_cmpint(sd_bus_new(&bus), ==, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, fds[0], fds[0]), ==, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        peer_fd = fds[1];
}

static void bus_teardown(void) {
        sd_bus_close_unref(bus);
        close(peer_fd);
}

static sd_bus_message *new_message(void) {
        sd_bus_message *m = NULL;

        g_assert_cmpint(
                sd_bus_message_new_signal(bus, &m, "/org/vmigrate/Test", "org.vmigrate.Test", "Test"), ==,
                0);
        g_assert_nonnull(m);
        return m;
}

static void seal(sd_bus_message *m) {
        g_assert_cmpint(sd_bus_message_seal(m, 1, 0), >=, 0);
        g_assert_cmpint(sd_bus_message_rewind(m, true), >=, 0);
}

static GVariant *parse(const char *type, const char *text) {
        g_autoptr(GError) error = NULL;
        GVariant *v = g_variant_parse(type ? G_VARIANT_TYPE(type) : NULL, text, NULL, NULL, &error);

        g_assert_no_error(error);
        return v; /* not floating */
}

static void assert_read(sd_bus_message *m, const char *type, const char *expected_text) {
        g_autoptr(GVariant) expected = parse(type, expected_text);
        g_autoptr(GVariant) got = NULL;

        g_assert_cmpint(bus_message_read_gvariant(m, type, &got), ==, 0);
        g_assert_nonnull(got);
        if (!got)
                return;
        g_assert_false(g_variant_is_floating(got));
        g_assert_cmpstr(g_variant_get_type_string(got), ==, type);
        if (!g_variant_equal(got, expected)) {
                g_autofree char *a = g_variant_print(got, true), *b = g_variant_print(expected, true);
                g_test_message("got %s, expected %s", a, b);
                g_test_fail();
        }
}

static void test_basic(void) {
        g_autoptr(sd_bus_message) m = new_message();

        g_assert_cmpint(sd_bus_message_append(m, "bbynqiuxtdsog", 1, 0, (uint8_t) 200, (int16_t) -3,
                                              (uint16_t) 65535, (int32_t) INT32_MIN, (uint32_t) UINT32_MAX,
                                              (int64_t) INT64_MIN, (uint64_t) UINT64_MAX, 2.5, "häh", "/a/b",
                                              "a{sv}"),
                        >=, 0);
        seal(m);
        assert_read(m, "b", "true");
        assert_read(m, "b", "false");
        assert_read(m, "y", "byte 200");
        assert_read(m, "n", "int16 -3");
        assert_read(m, "q", "uint16 65535");
        assert_read(m, "i", "int32 -2147483648");
        assert_read(m, "u", "uint32 4294967295");
        assert_read(m, "x", "int64 -9223372036854775808");
        assert_read(m, "t", "uint64 18446744073709551615");
        assert_read(m, "d", "2.5");
        assert_read(m, "s", "'häh'");
        assert_read(m, "o", "objectpath '/a/b'");
        assert_read(m, "g", "signature 'a{sv}'");
        g_assert_cmpint(sd_bus_message_at_end(m, true), >, 0);
}

/* Built with sd-bus alone, so the reader is not only checked against our writer. */
static void test_dict_every_basic_type(void) {
        g_autoptr(sd_bus_message) m = new_message();

        g_assert_cmpint(sd_bus_message_append(m, "a{sv}", 13, "b", "b", 1, "y", "y", (uint8_t) 7, "n", "n",
                                              (int16_t) -7, "q", "q", (uint16_t) 7, "i", "i",
                                              (int32_t) -70000, "u", "u", (uint32_t) 70000, "x", "x",
                                              (int64_t) -5000000000, "t", "t", (uint64_t) 5000000000, "d",
                                              "d", -0.25, "s", "s", "", "o", "o", "/", "g", "g", "", "v",
                                              "v", "as", 2, "x", "y"),
                        >=, 0);
        seal(m);
        assert_read(m, "a{sv}",
                    "{'b': <true>, 'y': <byte 7>, 'n': <int16 -7>, 'q': <uint16 7>, 'i': <-70000>,"
                    " 'u': <uint32 70000>, 'x': <int64 -5000000000>, 't': <uint64 5000000000>, 'd': <-0.25>,"
                    " 's': <''>, 'o': <objectpath '/'>, 'g': <signature ''>, 'v': <<['x', 'y']>>}");
}

static void test_containers(void) {
        g_autoptr(sd_bus_message) m = new_message();

        g_assert_cmpint(sd_bus_message_append(m, "asa{sv}aavv(s(iu)as)a{ia{ss}}", 0, 0, 1, 0, "v", "v", "i",
                                              42, "x", 1, 2, 1, "a", 2, 2, 1, "k", "v", 3, 0),
                        >=, 0);
        seal(m);
        assert_read(m, "as", "@as []");
        assert_read(m, "a{sv}", "@a{sv} {}");
        assert_read(m, "aav", "[@av []]");
        assert_read(m, "v", "<<<42>>>");
        assert_read(m, "(s(iu)as)", "('x', (1, uint32 2), ['a'])");
        assert_read(m, "a{ia{ss}}", "{2: {'k': 'v'}, 3: {}}");
        g_assert_cmpint(sd_bus_message_at_end(m, true), >, 0);
}

static void test_mismatch(void) {
        g_autoptr(sd_bus_message) m = new_message();
        GVariant *untouched = (GVariant *) 0x1;

        g_assert_cmpint(sd_bus_message_append(m, "s", "x"), >=, 0);
        seal(m);
        /* Types sd-bus refuses to read as what the message holds. */
        g_assert_cmpint(bus_message_read_gvariant(m, "u", &untouched), <, 0);
        g_assert_cmpint(bus_message_read_gvariant(m, "a{sv}", &untouched), <, 0);
        g_assert_cmpint(bus_message_read_gvariant(m, "v", &untouched), <, 0);
        g_assert_cmpint(bus_message_read_gvariant(m, "(s)", &untouched), <, 0);
        /* Not single complete D-Bus types. */
        g_assert_cmpint(bus_message_read_gvariant(m, "", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, "ss", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, "ms", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, "h", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, "a", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, "a{vs}", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, "()", &untouched), ==, -EINVAL);
        g_assert_cmpint(bus_message_read_gvariant(m, NULL, &untouched), ==, -EINVAL);
        g_assert_true(untouched == (GVariant *) 0x1);
        /* The value is still there to be read right. */
        assert_read(m, "s", "'x'");
        /* Nothing left: an error, not an empty value. */
        g_assert_cmpint(bus_message_read_gvariant(m, "s", &untouched), ==, -ENXIO);
        g_assert_cmpint(bus_message_read_gvariant(m, "as", &untouched), ==, -ENXIO);
        g_assert_cmpint(bus_message_read_gvariant(m, "v", &untouched), ==, -ENXIO);
        g_assert_true(untouched == (GVariant *) 0x1);
}

static void test_mismatch_inside(void) {
        g_autoptr(sd_bus_message) m = new_message();
        GVariant *untouched = (GVariant *) 0x1;

        g_assert_cmpint(sd_bus_message_append(m, "a{sv}", 2, "a", "s", "x", "b", "u", 5), >=, 0);
        seal(m);
        /* Element type differs from the one asked for. */
        g_assert_cmpint(bus_message_read_gvariant(m, "a{su}", &untouched), <, 0);
        g_assert_true(untouched == (GVariant *) 0x1);
}

static void test_round_trip_writer(void) {
        static const struct {
                const char *type, *text;
        } values[] = {
                { "a{sv}", "{'live': <true>, 'bandwidth': <uint64 1000>, 'compression': <'zstd'>}" },
                { "a{sv}", "@a{sv} {}" },
                { "v", "<<<@a{sv} {'n': <<int16 -1>>}>>>" },
                { "a(sss)", "[('warning', 'cpu', 'model differs'), ('error', 'disk', '')]" },
                { "a{sa{sv}}",
                  "{'qemu': {'available': <true>, 'domain-types': <['kvm', 'qemu']>}, 'test': {}}" },
                { "(bynqiuxtdsog)",
                  "(false, byte 0, int16 0, uint16 0, 0, uint32 0, int64 0, uint64 0, 0.0, '',"
                  " objectpath '/', signature '')" },
                { "aay", "[[byte 1, 2, 3], @ay []]" },
                { "a{oa{sa{sv}}}", "{objectpath '/x': {'org.x': {'P': <uint32 1>}}}" },
                { "av", "[<1>, <'s'>, <[<2>]>, <(1, 'x')>]" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
                g_autoptr(sd_bus_message) m = new_message();
                g_autoptr(GVariant) v = parse(values[i].type, values[i].text);

                g_test_message("%s", values[i].text);
                g_assert_cmpint(bus_message_append_gvariant(m, v), >=, 0);
                /* Two in a row: the reader stops exactly at the end of one value. */
                g_assert_cmpint(bus_message_append_gvariant(m, v), >=, 0);
                seal(m);
                assert_read(m, values[i].type, values[i].text);
                assert_read(m, values[i].type, values[i].text);
                g_assert_cmpint(sd_bus_message_at_end(m, true), >, 0);
        }
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        bus_setup();
        g_test_add_func("/bus-gvariant/read/basic", test_basic);
        g_test_add_func("/bus-gvariant/read/dict-every-basic-type", test_dict_every_basic_type);
        g_test_add_func("/bus-gvariant/read/containers", test_containers);
        g_test_add_func("/bus-gvariant/read/mismatch", test_mismatch);
        g_test_add_func("/bus-gvariant/read/mismatch-inside", test_mismatch_inside);
        g_test_add_func("/bus-gvariant/round-trip-writer", test_round_trip_writer);
        r = g_test_run();
        bus_teardown();
        return r;
}
