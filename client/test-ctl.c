/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of vmigratectl's bus-free helpers. */

#include "ctl.h"

#include <errno.h>
#include <string.h>

/* expected: what is connected to, as sd-bus takes it ("root@hv2", "unix:path=/run/x"). */
static void assert_host_ok(const char *uri, const char *expected) {
        g_auto(CtlHost) host = { 0 };
        g_autofree char *error = NULL;
        g_autoptr(Destination) login = NULL;
        g_autofree char *sd_bus = NULL;

        g_assert_cmpint(ctl_host_parse(uri, &host, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpint(host.kind, ==, CTL_HOST_DESTINATION);
        login = ctl_host_login(&host);
        g_assert_nonnull(login);
        sd_bus = login->kind == DESTINATION_SSH ? destination_to_sd_bus_host(login)
                                                : destination_to_sd_bus_address(login);
        g_assert_cmpstr(sd_bus, ==, expected);
}

static void assert_host_bad(const char *uri, const char *message_part) {
        g_auto(CtlHost) host = { 0 };
        g_autofree char *error = NULL;

        g_assert_cmpint(ctl_host_parse(uri, &host, &error), ==, -EINVAL);
        g_assert_nonnull(error);
        if (!strstr(error, message_part))
                g_test_message("error for '%s' was: %s", uri, error);
        g_assert_nonnull(strstr(error, message_part));
        g_assert_cmpint(host.kind, ==, CTL_HOST_LOCAL);
        g_assert_null(host.destination);
}

static void test_host_valid(void) {
        g_auto(CtlHost) local = { 0 };
        g_autofree char *where = NULL;

        assert_host_ok("unix:///run/dbus/system_bus_socket", "unix:path=/run/dbus/system_bus_socket");
        /* No user in the URI: root, as vmigratectl has always logged in. */
        assert_host_ok("ssh://hv2", "root@hv2");
        assert_host_ok("ssh://admin@hv2.example.org", "admin@hv2.example.org");
        assert_host_ok("ssh://admin@hv2:2222", "admin@hv2:2222");
        assert_host_ok("ssh://[fe80::1]:22", "root@[fe80::1]:22");
        assert_host_ok("hv2", "root@hv2");
        assert_host_ok("bob@hv2:22", "bob@hv2:22");
        assert_host_ok("10.0.0.2", "root@10.0.0.2");
        /* The scheme is case-insensitive, as for Domain.Migrate. */
        assert_host_ok("UNIX:///x", "unix:path=/x");

        g_assert_null(ctl_host_login(&local));
        where = ctl_host_describe(&local);
        g_assert_true(g_str_has_prefix(where, "the system bus"));
}

static void test_host_describe(void) {
        static const char *const cases[][2] = {
                { "unix:///run/test-bus/socket", "the bus at unix:///run/test-bus/socket" },
                { "ssh://hv2:2222", "the system bus of root@hv2:2222 (over ssh)" },
                { "admin@hv2", "the system bus of admin@hv2 (over ssh)" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_auto(CtlHost) host = { 0 };
                g_autofree char *error = NULL;
                g_autofree char *where = NULL;

                g_assert_cmpint(ctl_host_parse(cases[i][0], &host, &error), ==, 0);
                where = ctl_host_describe(&host);
                g_assert_cmpstr(where, ==, cases[i][1]);
        }
}

/* The messages are destination_parse()'s: each names the part that is wrong. */
static void test_host_invalid(void) {
        assert_host_bad("", "the destination is empty");
        assert_host_bad("tcp://hv2:55556", "unknown scheme 'tcp'");
        assert_host_bad("unix://", "the unix socket path is missing");
        assert_host_bad("unix://run/bus", "unix URIs take no host ('run')");
        assert_host_bad("ssh://", "the host is empty");
        assert_host_bad("ssh://hv2:0", "port 0 is out of range (1..65535)");
        assert_host_bad("ssh://hv2:65536", "port 65536 is out of range");
        assert_host_bad("ssh://hv2:", "the port after ':' is empty");
        assert_host_bad("ssh://hv2:22x", "port '22x' is not a number");
        assert_host_bad("ssh://hv2/path", "ssh destinations take no path ('/path')");
        assert_host_bad("ssh://-oProxyCommand=x", "host '-oProxyCommand=x' starts with '-'");
        assert_host_bad("ssh://@hv2", "the user name before '@' is empty");
        assert_host_bad("ssh://a b@hv2", "contains a space");
        assert_host_bad("ssh://[zz::1]", "'[zz::1]' is not an IPv6 address");
        assert_host_bad("ssh://user@:22", "the host is empty");
        assert_host_bad("./socket", "no scheme");
        assert_host_bad("hv2:port", "port 'port' is not a number");

        g_autofree char *long_name = g_strnfill(200, 'a');
        g_autofree char *long_uri = g_strconcat("unix:///", long_name, NULL);
        assert_host_bad(long_uri, "a unix socket path holds at most 107");
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

static void test_parse_rate(void) {
        static const struct {
                const char *text;
                guint64 bytes;
        } good[] = {
                { "1", 1 },
                { "100", 100 },
                { "100B", 100 },
                { "100B/s", 100 },
                { "1K", 1024 },
                { "1k", 1024 },
                { "1KiB", 1024 },
                { "100M", 100ULL << 20 },
                { "100MiB/s", 100ULL << 20 },
                { "512MiB/s", 512ULL << 20 },
                { "1G", 1ULL << 30 },
                { "1.5G", 3ULL << 29 },
                { "0.5K", 512 },
                { ".5K", 512 },
                { "2T", 2ULL << 40 },
                { "1kB", 1000 },
                { "1KB", 1000 },
                { "100MB", 100000000 },
                { "1GB/s", 1000000000 },
                { "1.25GB", 1250000000 },
                { "800Mbit", 100000000 },
                { "800Mbit/s", 100000000 },
                { "1Gbit", 125000000 },
                { "8bit", 1 },
                { "1.000000001G", (1ULL << 30) + 1 },
                { "18446744073709551615", G_MAXUINT64 },
                { "16383.5T", 18013848753668096ULL },
                { "16777215T", 16777215ULL << 40 },
                { "16777215.999999999T", 18446744073709550516ULL }, /* just below 2^64 */
        };
        static const struct {
                const char *text;
                int error;
        } bad[] = {
                { "", -EINVAL },
                { "M", -EINVAL },
                { ".", -EINVAL },
                { "1.", -EINVAL },
                { "-1M", -EINVAL },
                { "+1M", -EINVAL },
                { " 1M", -EINVAL },
                { "1M ", -EINVAL },
                { "1 M", -EINVAL },
                { "0x10", -EINVAL },
                { "inf", -EINVAL },
                { "1e6", -EINVAL },
                { "12Q", -EINVAL },
                { "1mib", -EINVAL },
                { "1m", -EINVAL },
                { "1MiBps", -EINVAL },
                { "1M/", -EINVAL },
                { "1/s/s", -EINVAL },
                { "1,5G", -EINVAL },
                { "1.0000000001G", -EINVAL }, /* more than 9 decimals */
                { "0", -ERANGE },
                { "0M", -ERANGE },
                { "0.0001K", -ERANGE },
                { "4bit", -ERANGE }, /* half a byte */
                { "18446744073709551616", -ERANGE },
                { "16777216T", -ERANGE },
                { "16777215.9999999999T", -EINVAL },
                { "99999999999999999999999", -ERANGE },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                guint64 v = 0;
                int r = ctl_parse_rate(good[i].text, &v);
                if (r != 0 || v != good[i].bytes)
                        g_test_message("'%s': r=%d v=%" G_GUINT64_FORMAT, good[i].text, r, v);
                g_assert_cmpint(r, ==, 0);
                g_assert_cmpuint(v, ==, good[i].bytes);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                guint64 v = 4242;
                int r = ctl_parse_rate(bad[i].text, &v);
                if (r != bad[i].error)
                        g_test_message("'%s': r=%d", bad[i].text, r);
                g_assert_cmpint(r, ==, bad[i].error);
                g_assert_cmpuint(v, ==, 4242); /* untouched on failure */
        }
        g_assert_cmpint(ctl_parse_rate(NULL, &(uint64_t){ 0 }), ==, -EINVAL);
}

static void test_parse_uint(void) {
        uint64_t v = 7;

        g_assert_cmpint(ctl_parse_uint("300", 1, 2000000, &v), ==, 0);
        g_assert_cmpuint(v, ==, 300);
        g_assert_cmpint(ctl_parse_uint("2000000", 1, 2000000, &v), ==, 0);
        g_assert_cmpuint(v, ==, 2000000);
        v = 7;
        g_assert_cmpint(ctl_parse_uint("0", 1, 10, &v), ==, -ERANGE);
        g_assert_cmpint(ctl_parse_uint("2000001", 1, 2000000, &v), ==, -ERANGE);
        g_assert_cmpint(ctl_parse_uint("18446744073709551616", 0, G_MAXUINT64, &v), ==, -ERANGE);
        g_assert_cmpint(ctl_parse_uint("", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(ctl_parse_uint("-1", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(ctl_parse_uint("+1", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(ctl_parse_uint("1.5", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(ctl_parse_uint("5ms", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(ctl_parse_uint(" 5", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpuint(v, ==, 7);
}

static void test_format_rate_duration(void) {
        static const struct {
                guint64 ms;
                const char *text;
        } durations[] = {
                { 0, "0 ms" },       { 999, "999 ms" },  { 1000, "1.0 s" },     { 2113, "2.1 s" },
                { 59999, "60.0 s" }, { 65000, "1m05s" }, { 3599999, "59m59s" }, { 7380000, "2h03m" },
        };
        g_autofree char *rate = ctl_format_rate(1ULL << 30);
        g_autofree char *rate2 = ctl_format_rate(100);

        g_assert_cmpstr(rate, ==, "1 GiB/s");
        g_assert_cmpstr(rate2, ==, "100 B/s");
        for (size_t i = 0; i < G_N_ELEMENTS(durations); i++) {
                g_autofree char *text = ctl_format_duration_ms(durations[i].ms);
                g_assert_cmpstr(text, ==, durations[i].text);
        }
}

static GVariant *job_properties(const char *phase, double progress, guint64 processed, guint64 elapsed) {
        g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);

        if (phase)
                g_variant_builder_add(b, "{sv}", "Phase", g_variant_new_string(phase));
        g_variant_builder_add(b, "{sv}", "Progress", g_variant_new_double(progress));
        g_variant_builder_add(b, "{sv}", "DataProcessed", g_variant_new_uint64(processed));
        g_variant_builder_add(b, "{sv}", "ElapsedMs", g_variant_new_uint64(elapsed));
        return g_variant_ref_sink(g_variant_builder_end(b));
}

static void test_job_state(void) {
        g_auto(CtlJobState) s = { 0 };
        g_autoptr(GVariant) p1 = job_properties("perform", 0.25, 512ULL << 20, 500);
        g_autoptr(GVariant) p2 = job_properties(NULL, 0.5, 1536ULL << 20, 1500);
        g_autoptr(GVariant) p3 =
                job_properties(NULL, 0.4, 1536ULL << 20, 1600); /* progress must not go back */
        g_autoptr(GVariant) wrong = g_variant_ref_sink(
                g_variant_new_parsed("{'Phase': <uint32 3>, 'DataTotal': <'many'>, 'Unknown': <1>}"));
        g_autofree char *text = NULL;
        g_autofree char *bar = NULL;
        g_autofree char *narrow = NULL;

        ctl_job_state_update(&s, p1);
        g_assert_cmpstr(s.phase, ==, "perform");
        g_assert_cmpuint(s.rate, ==, 0); /* one sample: no rate yet */
        ctl_job_state_update(&s, p2);
        g_assert_cmpuint(s.rate, ==, 1ULL << 30); /* 1 GiB in one second */
        g_assert_cmpstr(s.phase, ==, "perform");
        ctl_job_state_update(&s, p3);
        g_assert_cmpfloat(s.progress, ==, 0.5);
        g_assert_cmpuint(s.elapsed_ms, ==, 1600);
        /* Mistyped values are ignored, not misread. */
        ctl_job_state_update(&s, wrong);
        g_assert_cmpstr(s.phase, ==, "perform");
        g_assert_cmpuint(s.data_total, ==, 0);

        s.data_total = 2ULL << 30;
        s.iteration = 2;
        s.expected_downtime_ms = 120;
        text = ctl_job_progress_text(&s);
        g_assert_cmpstr(text, ==, "perform    50%  1.5 GiB/2 GiB  1 GiB/s  pass 2  downtime ~120 ms  1.6 s");
        bar = ctl_job_progress_bar(&s, 94); /* 71 columns of text leave 20 for the bar */
        g_assert_true(g_str_has_prefix(bar, "[##########..........] perform"));
        g_assert_cmpuint(strlen(bar), ==, strlen(text) + 23);
        g_assert_cmpuint(strlen(bar), ==, 94);
        narrow = ctl_job_progress_bar(&s, 30); /* no room for a bar: the text, cut */
        g_assert_cmpstr(narrow, ==, "perform    50%  1.5 GiB/2 GiB ");
}

static void test_format_job_stats(void) {
        g_autoptr(GVariant) stats = g_variant_ref_sink(g_variant_new_parsed(
                "{'kind': <'migration-out'>, 'phase': <'failed'>, 'progress': <0.5>, "
                "'elapsed-ms': <uint64 2000>, 'data-total': <uint64 2147483648>, "
                "'data-processed': <uint64 1073741824>, 'data-remaining': <uint64 1073741824>, "
                "'iteration': <uint64 3>, 'downtime-ms': <uint64 0>, 'expected-downtime-ms': <uint64 40>, "
                "'peer': <'ssh://root@hv2'>, 'error': <'connection lost'>, 'future-key': <true>}"));
        g_autofree char *text = ctl_format_job_stats(stats);

        g_assert_nonnull(strstr(text, "Phase:               failed\n"));
        g_assert_nonnull(strstr(text, "Total time:          2.0 s\n"));
        g_assert_nonnull(strstr(text, "Expected downtime:   40 ms\n"));
        g_assert_null(strstr(text, "Downtime:"));
        g_assert_nonnull(strstr(text, "Data sent:           1 GiB of 2 GiB\n"));
        g_assert_nonnull(strstr(text, "Memory passes:       3\n"));
        g_assert_nonnull(strstr(text, "Average rate:        512 MiB/s\n"));
        g_assert_nonnull(strstr(text, "Error:               connection lost\n"));
        g_assert_null(strstr(text, "future"));
}

/* An a{sv} of Domain.GetJobStats during a copy-storage migration's disk stage:
 * the memory all still to send, the disks on their way. */
static GVariant *disk_stats(guint64 disk_total, guint64 disk_processed, guint64 elapsed) {
        return g_variant_ref_sink(g_variant_new_parsed(
                "{'kind': <'migration-out'>, 'phase': <'completed'>, 'progress': <1.0>, "
                "'elapsed-ms': <%t>, 'data-total': <uint64 536870912>, 'data-processed': <uint64 0>, "
                "'data-remaining': <uint64 536870912>, 'iteration': <uint64 0>, "
                "'disk-total': <%t>, 'disk-processed': <%t>, 'disk-remaining': <%t>}",
                (guint64) elapsed, (guint64) disk_total, (guint64) disk_processed,
                (guint64) (disk_total - MIN(disk_processed, disk_total))));
}

/* copy-storage: the disks first, with their own figures, then the memory as always. */
static void test_job_disks(void) {
        g_auto(CtlJobState) s = { 0 };
        /* 512 MiB of memory, 256 MiB of disks: the daemon's Progress counts both. */
        g_autoptr(GVariant) perform = g_variant_ref_sink(g_variant_new_parsed(
                "{'Phase': <'perform'>, 'Progress': <0.0>, 'DataTotal': <uint64 536870912>, "
                "'DataProcessed': <uint64 0>, 'DataRemaining': <uint64 536870912>, "
                "'Iteration': <uint64 0>, 'ElapsedMs': <uint64 8600>}"));
        g_autoptr(GVariant) first = disk_stats(256ULL << 20, 100ULL << 20, 8600);
        g_autoptr(GVariant) moved = g_variant_ref_sink(
                g_variant_new_parsed("{'Progress': <0.150390625>, 'ElapsedMs': <uint64 9600>}"));
        /* 115.5 MiB: 15.5 MiB more in one second. */
        g_autoptr(GVariant) second = disk_stats(256ULL << 20, 121110528, 9600);
        /* The guest wrote: the mirrors grew faster than they copied. */
        g_autoptr(GVariant) dip = disk_stats(300ULL << 20, 122ULL << 20, 9700);
        /* A reply older than what was applied. */
        g_autoptr(GVariant) stale = disk_stats(256ULL << 20, 10ULL << 20, 9000);
        /* Every disk in sync (300 MiB by now), the memory about to go. */
        g_autoptr(GVariant) synced = g_variant_ref_sink(
                g_variant_new_parsed("{'Progress': <0.369230769>, 'ElapsedMs': <uint64 20000>}"));
        g_autoptr(GVariant) synced_stats = disk_stats(300ULL << 20, 300ULL << 20, 20000);
        g_autoptr(GVariant) memory = g_variant_ref_sink(
                g_variant_new_parsed("{'Progress': <0.5>, 'DataProcessed': <uint64 134217728>, "
                                     "'DataRemaining': <uint64 402653184>, 'Iteration': <uint64 1>, "
                                     "'ElapsedMs': <uint64 21000>}"));
        g_autofree char *in_sync = NULL;
        g_autofree char *before = NULL;
        g_autofree char *text = NULL;
        g_autofree char *bar = NULL;
        g_autofree char *narrow = NULL;
        g_autofree char *after = NULL;
        g_autofree char *bar_after = NULL;

        ctl_job_state_update(&s, perform);
        /* Nothing from GetJobStats yet: the line of any migration. */
        g_assert_false(ctl_job_copying_disks(&s));
        before = ctl_job_progress_text(&s);
        g_assert_cmpstr(before, ==, "perform     0%  0 B/512 MiB  8.6 s");

        ctl_job_state_update_stats(&s, first);
        g_assert_true(ctl_job_copying_disks(&s));
        g_assert_cmpstr(ctl_job_stage_label(&s), ==, "disks");
        g_assert_cmpuint(s.disk_rate, ==, 0); /* one sample: no rate yet */
        /* Only the disk figures are taken: phase and progress stay the Job's. */
        g_assert_cmpstr(s.phase, ==, "perform");
        g_assert_cmpfloat(s.progress, ==, 0.0);

        ctl_job_state_update(&s, moved);
        ctl_job_state_update_stats(&s, second);
        g_assert_cmpuint(s.disk_rate, ==, 16252928);
        text = ctl_job_progress_text(&s);
        g_assert_cmpstr(text, ==, "disks      45%  115.5 MiB/256 MiB  15.5 MiB/s  9.6 s");
        /* The bar is the whole job (15%), the text the disks (45%). */
        bar = ctl_job_progress_bar(&s, (unsigned) strlen(text) + 23);
        g_assert_cmpstr(bar, ==,
                        "[###.................] disks      45%  115.5 MiB/256 MiB  15.5 MiB/s  9.6 s");
        narrow = ctl_job_progress_bar(&s, 20);
        g_assert_cmpstr(narrow, ==, "disks      45%  115.");

        ctl_job_state_update_stats(&s, dip);
        g_assert_cmpfloat_with_epsilon(s.disk_progress, 121110528.0 / (256 << 20), 1e-9);
        g_assert_cmpuint(s.disk_total, ==, 300ULL << 20);
        ctl_job_state_update_stats(&s, stale);
        g_assert_cmpuint(s.disk_processed, ==, 122ULL << 20);
        g_assert_cmpuint(s.disk_total, ==, 300ULL << 20);

        ctl_job_state_update(&s, synced);
        ctl_job_state_update_stats(&s, synced_stats);
        g_assert_true(ctl_job_copying_disks(&s));
        in_sync = ctl_job_progress_text(&s);
        g_assert_true(g_str_has_prefix(in_sync, "disks     100%  300 MiB/300 MiB  "));

        /* The memory goes: the line is the memory's again, as without disks. */
        ctl_job_state_update(&s, memory);
        g_assert_false(ctl_job_copying_disks(&s));
        g_assert_cmpstr(ctl_job_stage_label(&s), ==, "perform");
        after = ctl_job_progress_text(&s);
        g_assert_cmpstr(after, ==, "perform    50%  128 MiB/512 MiB  128 MiB/s  pass 1  21.0 s");
        bar_after = ctl_job_progress_bar(&s, (unsigned) strlen(after) + 23);
        g_assert_cmpstr(bar_after, ==,
                        "[##########..........] perform    50%  128 MiB/512 MiB  128 MiB/s  pass 1  21.0 s");

        /* Either sign of the memory ends the disk stage: a byte sent, or a pass begun. */
        {
                g_auto(CtlJobState) t = { 0 };
                g_autoptr(GVariant) sent = g_variant_ref_sink(
                        g_variant_new_parsed("{'Phase': <'perform'>, 'DataProcessed': <uint64 4096>}"));
                g_autoptr(GVariant) pass = g_variant_ref_sink(
                        g_variant_new_parsed("{'DataProcessed': <uint64 0>, 'Iteration': <uint64 1>}"));

                ctl_job_state_update_stats(&t, first);
                ctl_job_state_update(&t, sent);
                g_assert_false(ctl_job_copying_disks(&t));
                ctl_job_state_update(&t, pass);
                g_assert_false(ctl_job_copying_disks(&t));
        }

        /* Later phases are never the disks', whatever the figures. */
        {
                g_auto(CtlJobState) t = { 0 };
                g_autoptr(GVariant) finish =
                        g_variant_ref_sink(g_variant_new_parsed("{'Phase': <'finish'>}"));

                ctl_job_state_update(&t, finish);
                ctl_job_state_update_stats(&t, first);
                g_assert_true(t.disks_seen);
                g_assert_false(ctl_job_copying_disks(&t));
                g_assert_cmpstr(ctl_job_stage_label(&t), ==, "finish");
        }
}

/* Without copy-storage the statistics have no disk keys, and nothing changes. */
static void test_job_no_disks(void) {
        g_autoptr(GVariant) perform = g_variant_ref_sink(g_variant_new_parsed(
                "{'Phase': <'perform'>, 'Progress': <0.25>, 'DataTotal': <uint64 2147483648>, "
                "'DataProcessed': <uint64 0>, 'Iteration': <uint64 0>, 'ElapsedMs': <uint64 500>}"));
        g_autoptr(GVariant) plain = g_variant_ref_sink(g_variant_new_parsed(
                "{'phase': <'perform'>, 'elapsed-ms': <uint64 600>, 'data-processed': <uint64 0>}"));
        g_autoptr(GVariant) zero = g_variant_ref_sink(
                g_variant_new_parsed("{'disk-total': <uint64 0>, 'disk-processed': <uint64 0>, "
                                     "'elapsed-ms': <uint64 700>}"));
        g_autoptr(GVariant) mistyped = g_variant_ref_sink(
                g_variant_new_parsed("{'disk-total': <'much'>, 'disk-processed': <uint32 5>}"));
        g_auto(CtlJobState) s = { 0 };
        g_auto(CtlJobState) t = { 0 };
        g_autofree char *expected = NULL;
        g_autofree char *text = NULL;
        g_autofree char *bar_expected = NULL;
        g_autofree char *bar = NULL;

        ctl_job_state_update(&s, perform);
        ctl_job_state_update(&t, perform);
        expected = ctl_job_progress_text(&s);
        bar_expected = ctl_job_progress_bar(&s, 80);
        g_assert_cmpstr(expected, ==, "perform    25%  0 B/2 GiB  500 ms");

        ctl_job_state_update_stats(&t, plain);
        ctl_job_state_update_stats(&t, zero);
        ctl_job_state_update_stats(&t, mistyped);
        g_assert_false(t.disks_seen);
        g_assert_false(ctl_job_copying_disks(&t));
        g_assert_cmpstr(ctl_job_stage_label(&t), ==, "perform");
        text = ctl_job_progress_text(&t);
        bar = ctl_job_progress_bar(&t, 80);
        g_assert_cmpstr(text, ==, expected);
        g_assert_cmpstr(bar, ==, bar_expected);
}

static void test_format_job_stats_disks(void) {
        /* 256 MiB of disks and 512 MiB of memory in 12 s: 64 MiB/s over both. */
        g_autoptr(GVariant) done = g_variant_ref_sink(g_variant_new_parsed(
                "{'kind': <'migration-out'>, 'phase': <'completed'>, 'progress': <1.0>, "
                "'elapsed-ms': <uint64 12000>, 'data-total': <uint64 536870912>, "
                "'data-processed': <uint64 536870912>, 'data-remaining': <uint64 0>, "
                "'iteration': <uint64 2>, 'downtime-ms': <uint64 35>, "
                "'disk-total': <uint64 268435456>, 'disk-processed': <uint64 268435456>, "
                "'disk-remaining': <uint64 0>}"));
        /* Cancelled while the disks copied: the memory never went. */
        g_autoptr(GVariant) cancelled = disk_stats(256ULL << 20, 121110528, 9600);
        /* A zero disk-total is no disk copy: the summary of any migration. */
        g_autoptr(GVariant) none = g_variant_ref_sink(
                g_variant_new_parsed("{'elapsed-ms': <uint64 2000>, 'data-total': <uint64 2147483648>, "
                                     "'data-processed': <uint64 1073741824>, 'disk-total': <uint64 0>}"));
        g_autofree char *text = ctl_format_job_stats(done);
        g_autofree char *text_cancelled = ctl_format_job_stats(cancelled);
        g_autofree char *text_none = ctl_format_job_stats(none);
        const char *disks, *memory;

        disks = strstr(text, "Disks copied:        256 MiB of 256 MiB\n");
        memory = strstr(text, "Memory sent:         512 MiB of 512 MiB\n");
        g_assert_nonnull(disks);
        g_assert_nonnull(memory);
        g_assert_true(disks < memory); /* in the order they went */
        g_assert_null(strstr(text, "Data sent"));
        g_assert_null(strstr(text, "remaining"));
        g_assert_nonnull(strstr(text, "Average rate:        64 MiB/s\n"));

        g_assert_nonnull(strstr(text_cancelled, "Disks copied:        115.5 MiB of 256 MiB\n"));
        g_assert_nonnull(strstr(text_cancelled, "Disks remaining:     140.5 MiB\n"));
        g_assert_nonnull(strstr(text_cancelled, "Memory sent:         0 B of 512 MiB\n"));
        g_assert_nonnull(strstr(text_cancelled, "Memory remaining:    512 MiB\n"));
        g_assert_nonnull(strstr(text_cancelled, "Average rate:        12.0 MiB/s\n"));

        g_assert_null(strstr(text_none, "Disk"));
        g_assert_null(strstr(text_none, "Memory sent"));
        g_assert_nonnull(strstr(text_none, "Data sent:           1 GiB of 2 GiB\n"));
        g_assert_nonnull(strstr(text_none, "Average rate:        512 MiB/s\n"));
}

/* Runs the switches through ctl_migrate_switches_apply() and returns the options, or NULL and the error. */
static GVariant *apply_switches(const CtlMigrateSwitches *sw, char **ret_error) {
        g_autoptr(GVariantDict) dict = g_variant_dict_new(NULL);
        g_autofree char *error = NULL;
        int r = ctl_migrate_switches_apply(sw, dict, &error);

        if (r < 0) {
                g_assert_cmpint(r, ==, -EINVAL);
                g_assert_nonnull(error);
                *ret_error = g_steal_pointer(&error);
                return NULL;
        }
        g_assert_null(error);
        return g_variant_ref_sink(g_variant_dict_end(dict));
}

static void assert_switches(const CtlMigrateSwitches *sw, const char *expected) {
        g_autofree char *error = NULL;
        g_autoptr(GVariant) options = apply_switches(sw, &error);
        g_autoptr(GVariant) want = g_variant_ref_sink(g_variant_new_parsed(expected));

        if (!options)
                g_test_message("unexpected error: %s", error);
        g_assert_nonnull(options);
        if (options && !g_variant_equal(options, want)) {
                g_autofree char *got = g_variant_print(options, TRUE);
                g_test_message("expected %s, got %s", expected, got);
                g_test_fail();
        }
}

static void assert_switches_bad(const CtlMigrateSwitches *sw, const char *message_part) {
        g_autofree char *error = NULL;
        g_autoptr(GVariant) options = apply_switches(sw, &error);

        g_assert_null(options);
        if (error && !strstr(error, message_part))
                g_test_message("error was: %s", error);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error, message_part));
}

static void test_migrate_switches(void) {
        /* Nothing given: nothing added, so the backend's defaults apply. */
        assert_switches(&(CtlMigrateSwitches){ 0 }, "@a{sv} {}");
        assert_switches(&(CtlMigrateSwitches){ .postcopy = true }, "{'postcopy': <true>}");
        /* Each of these needs post-copy allowed from the start, so it implies it. */
        assert_switches(&(CtlMigrateSwitches){ .postcopy_after_precopy = true }, "{'postcopy': <true>}");
        assert_switches(&(CtlMigrateSwitches){ .postcopy_resume = true },
                        "{'postcopy': <true>, 'postcopy-resume': <true>}");
        assert_switches(&(CtlMigrateSwitches){ .timeout = "60", .timeout_postcopy = true },
                        "{'postcopy': <true>, 'timeout': <uint64 60>, 'timeout-action': <'postcopy'>}");
        assert_switches(&(CtlMigrateSwitches){ .timeout = "60", .timeout_action = "postcopy" },
                        "{'postcopy': <true>, 'timeout': <uint64 60>, 'timeout-action': <'postcopy'>}");
        /* Suspend and abort do not need post-copy. */
        assert_switches(&(CtlMigrateSwitches){ .timeout = "604800", .timeout_suspend = true },
                        "{'timeout': <uint64 604800>, 'timeout-action': <'suspend'>}");
        assert_switches(&(CtlMigrateSwitches){ .timeout = "1", .timeout_action = "abort" },
                        "{'timeout': <uint64 1>, 'timeout-action': <'abort'>}");
        assert_switches(&(CtlMigrateSwitches){ .timeout = "300" }, "{'timeout': <uint64 300>}");
        /* The same action named twice is no conflict. */
        assert_switches(&(CtlMigrateSwitches){ .timeout = "5",
                                               .timeout_action = "suspend",
                                               .timeout_suspend = true },
                        "{'timeout': <uint64 5>, 'timeout-action': <'suspend'>}");
        assert_switches(&(CtlMigrateSwitches){ .postcopy = true,
                                               .postcopy_after_precopy = true,
                                               .timeout = "9",
                                               .timeout_postcopy = true },
                        "{'postcopy': <true>, 'timeout': <uint64 9>, 'timeout-action': <'postcopy'>}");

        assert_switches_bad(&(CtlMigrateSwitches){ .timeout_postcopy = true },
                            "--timeout-postcopy says what to do when the timeout expires, so it needs "
                            "--timeout=SECONDS");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout_suspend = true }, "--timeout-suspend");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout_action = "abort" },
                            "--timeout-action=abort says what to do");
        assert_switches_bad(
                &(CtlMigrateSwitches){ .timeout = "60", .timeout_postcopy = true, .timeout_suspend = true },
                "--timeout-postcopy and --timeout-suspend ask for different actions");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "60",
                                                   .timeout_action = "abort",
                                                   .timeout_postcopy = true },
                            "--timeout-action=abort and --timeout-postcopy ask for different actions");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "60", .timeout_action = "pause" },
                            "invalid --timeout-action: option 'timeout-action'='pause' is not allowed: give "
                            "'abort', 'postcopy' or 'suspend'");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "60", .timeout_action = "" },
                            "invalid --timeout-action: option 'timeout-action'='' is not allowed");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "0" },
                            "invalid --timeout: option 'timeout'=0 is out of range: give 1..604800 s");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "604801" },
                            "invalid --timeout: option 'timeout'=604801 is out of range");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "1.5" }, "whole seconds");
        assert_switches_bad(&(CtlMigrateSwitches){ .timeout = "-1", .timeout_suspend = true },
                            "invalid --timeout");
        assert_switches_bad(&(CtlMigrateSwitches){ .postcopy_resume = true, .postcopy_after_precopy = true },
                            "--postcopy-resume continues a post-copy that has already begun");
}

/* What is the client's own: flags given twice, virsh's names, switches kept for later. */
static void test_migrate_args(void) {
        static const struct {
                const char *flag, *arg;
        } given[] = {
                { "live", NULL },
                { "no-live", NULL },
                { "parallel-connections", "4" },
                { "parallel", NULL },
                { "compressed", NULL },
                { "compression", "zstd" },
                { "xml", "dom.xml" },
                { "postcopy-resume", NULL },
                { "timeout-action", "suspend" },
                { "downtime", "300" },
                { "zerocopy", NULL },
                { "no-postcopy-preempt", NULL },
                { "zero-page-detection", "multifd" },
                { "switchover-bandwidth", "1G" },
        };
        g_auto(CtlMigrateArgs) a = { 0 };
        g_autoptr(GVariant) options = NULL;
        g_autoptr(GVariant) want = g_variant_ref_sink(g_variant_new_parsed(
                "{'live': <false>, 'parallel-connections': <uint32 2>, 'compression': <'zstd'>, "
                "'max-downtime': <uint64 300>, 'zero-copy-send': <true>, 'postcopy-preempt': <false>, "
                "'zero-page-detection': <'multifd'>, 'switchover-bandwidth': <uint64 1073741824>}"));

        for (size_t i = 0; i < G_N_ELEMENTS(given); i++) {
                g_autofree char *error = NULL;

                g_assert_cmpint(ctl_migrate_arg(&a, given[i].flag, given[i].arg, &error), ==, 0);
                g_assert_null(error);
        }
        options = g_variant_ref_sink(g_variant_dict_end(a.options));
        /* A GVariantDict ends in hash order: compare key by key. */
        g_assert_cmpuint(g_variant_n_children(options), ==, g_variant_n_children(want));
        for (size_t i = 0; i < g_variant_n_children(want); i++) {
                const char *key;
                g_autoptr(GVariant) value = NULL;
                g_autoptr(GVariant) got = NULL;

                g_variant_get_child(want, i, "{&sv}", &key, &value);
                got = g_variant_lookup_value(options, key, NULL);
                g_assert_nonnull(got);
                g_assert_true(g_variant_equal(got, value));
        }
        g_assert_cmpstr(a.first_flag, ==, "live");
        g_assert_cmpstr(a.destination_xml, ==, "dom.xml");
        g_assert_true(a.switches.postcopy_resume);
        g_assert_cmpstr(a.switches.timeout_action, ==, "suspend");
        g_assert_false(a.switches.timeout_postcopy);

        for (size_t i = 0; i < ctl_migrate_flags_count(); i++) {
                struct option o = ctl_migrate_flag_getopt(i, 7);
                bool value = g_str_equal(o.name, "bandwidth") || g_str_equal(o.name, "xml") ||
                        g_str_equal(o.name, "timeout-action") || g_str_equal(o.name, "dname");
                bool none = g_str_equal(o.name, "live") || g_str_equal(o.name, "compressed") ||
                        g_str_equal(o.name, "timeout-suspend");

                g_assert_cmpint(o.val, ==, 7);
                if (value)
                        g_assert_cmpint(o.has_arg, ==, required_argument);
                if (none)
                        g_assert_cmpint(o.has_arg, ==, no_argument);
        }
}

static void test_job_postcopy(void) {
        g_auto(CtlJobState) s = { 0 };
        g_autoptr(GVariant) perform = g_variant_ref_sink(g_variant_new_parsed(
                "{'Phase': <'perform'>, 'Progress': <0.4>, 'DataTotal': <uint64 2147483648>, "
                "'DataProcessed': <uint64 1073741824>, 'DataRemaining': <uint64 1610612736>, "
                "'Iteration': <uint64 3>, 'DirtyRate': <uint64 419430400>, 'ElapsedMs': <uint64 1000>, "
                "'ExpectedDowntimeMs': <uint64 900>}"));
        g_autoptr(GVariant) stuck = g_variant_ref_sink(g_variant_new_parsed("{'NotConverging': <true>}"));
        /* The switch: DataRemaining is what the destination has to fetch. */
        g_autoptr(GVariant) switched =
                g_variant_ref_sink(g_variant_new_parsed("{'Phase': <'postcopy'>, 'DataRemaining': <uint64 "
                                                        "1073741824>, 'ElapsedMs': <uint64 2000>}"));
        /* Half of it fetched, while the daemon's Progress stays put. */
        g_autoptr(GVariant) fetching = g_variant_ref_sink(
                g_variant_new_parsed("{'Progress': <0.4>, 'DataProcessed': <uint64 1610612736>, "
                                     "'DataRemaining': <uint64 536870912>, 'ElapsedMs': <uint64 3000>}"));
        g_autofree char *text_stuck = NULL;
        g_autofree char *text_post = NULL;
        g_autofree char *bar_post = NULL;
        g_autofree char *narrow = NULL;

        ctl_job_state_update(&s, perform);
        g_assert_false(s.not_converging);
        ctl_job_state_update(&s, stuck);
        g_assert_true(s.not_converging);
        text_stuck = ctl_job_progress_text(&s);
        g_assert_cmpstr(
                text_stuck, ==,
                "perform    40%  not converging  1 GiB/2 GiB  pass 3  dirty 400 MiB/s  downtime ~900 ms  "
                "1.0 s");
        /* Early in the line, so that it survives a narrow terminal. */
        narrow = ctl_job_progress_bar(&s, 30);
        g_assert_cmpstr(narrow, ==, "perform    40%  not converging");

        ctl_job_state_update(&s, switched);
        g_assert_true(s.postcopy_seen);
        g_assert_false(s.not_converging);
        g_assert_cmpfloat(s.postcopy_from, ==, 0.4);
        g_assert_cmpuint(s.postcopy_remaining_at, ==, 1ULL << 30);
        g_assert_cmpstr(ctl_job_phase_label(s.phase), ==, "post-copy");
        ctl_job_state_update(&s, fetching);
        /* 0.4 + 0.6 * half fetched */
        g_assert_cmpfloat_with_epsilon(s.progress, 0.7, 1e-9);
        text_post = ctl_job_progress_text(&s);
        g_assert_cmpstr(text_post, ==, "post-copy  70%  1.5 GiB/2 GiB  512 MiB/s  512 MiB to fetch  3.0 s");
        /* 20 columns of bar: 8 pre-copy, 6 post-copy, 6 to go. */
        bar_post = ctl_job_progress_bar(&s, (unsigned) strlen(text_post) + 23);
        g_assert_true(g_str_has_prefix(bar_post, "[########======......] post-copy  70%"));

        /* A late sample with more remaining must not move the bar back. */
        {
                g_autoptr(GVariant) late =
                        g_variant_ref_sink(g_variant_new_parsed("{'DataRemaining': <uint64 2147483648>}"));
                ctl_job_state_update(&s, late);
                g_assert_cmpfloat_with_epsilon(s.progress, 0.7, 1e-9);
        }

        g_assert_cmpstr(ctl_job_phase_label(NULL), ==, "...");
        g_assert_cmpstr(ctl_job_phase_label("perform"), ==, "perform");
}

static void test_shell_word(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "demo", "demo" },
                { "unix:///tmp/b/bus.sock", "unix:///tmp/b/bus.sock" },
                { "ssh://root@hv2:22", "ssh://root@hv2:22" },
                { "my vm", "'my vm'" },
                { "it's", "'it'\\''s'" },
                { "$(reboot)", "'$(reboot)'" },
                { "-odd", "'-odd'" },
                { "", "''" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *w = ctl_shell_word(cases[i].in);
                g_assert_cmpstr(w, ==, cases[i].out);
        }
}

static GVariant *findings_variant(const char *const (*rows)[3], size_t n) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
        for (size_t i = 0; i < n; i++)
                g_variant_builder_add(&b, "(sss)", rows[i][0], rows[i][1], rows[i][2]);
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static void test_dry_run_table(void) {
        static const char *const rows[][3] = {
                { "warning", "machine.type", "host-b: the machine type 'pc' is an alias" },
                { "error", "resources.memory",
                  "host-b: 1.2 GiB of memory available, the domain needs 2.0 GiB + 64.0 MiB overhead" },
                { "info", "dry-run.best-effort", "host-a: a dry run is best-effort" },
        };
        g_autoptr(GVariant) findings = findings_variant(rows, G_N_ELEMENTS(rows));
        g_autofree char *plain = ctl_format_findings(findings, 0, false);
        g_autofree char *wrapped = ctl_format_findings(findings, 60, false);
        g_autofree char *errors = ctl_format_findings(findings, 0, true);
        g_autofree char *narrow = ctl_format_findings(findings, 10, false);

        /* Not a terminal: one finding per line, whatever its length. */
        g_assert_cmpstr(plain, ==,
                        "SEVERITY  CHECK                MESSAGE\n"
                        "warning   machine.type         host-b: the machine type 'pc' is an alias\n"
                        "error     resources.memory     host-b: 1.2 GiB of memory available, the domain "
                        "needs 2.0 GiB + 64.0 MiB overhead\n"
                        "info      dry-run.best-effort  host-a: a dry run is best-effort\n");
        /* 60 columns: the message column is 60 - 31 = 29 wide; continuation lines line up under it. */
        g_assert_cmpstr(wrapped, ==,
                        "SEVERITY  CHECK                MESSAGE\n"
                        "warning   machine.type         host-b: the machine type 'pc'\n"
                        "                               is an alias\n"
                        "error     resources.memory     host-b: 1.2 GiB of memory\n"
                        "                               available, the domain needs\n"
                        "                               2.0 GiB + 64.0 MiB overhead\n"
                        "info      dry-run.best-effort  host-a: a dry run is\n"
                        "                               best-effort\n");
        {
                g_auto(GStrv) lines = g_strsplit(wrapped, "\n", -1);
                for (char **l = lines; *l; l++)
                        g_assert_cmpuint(strlen(*l), <=, 60);
        }
        g_assert_cmpstr(errors, ==,
                        "SEVERITY  CHECK             MESSAGE\n"
                        "error     resources.memory  host-b: 1.2 GiB of memory available, the domain needs "
                        "2.0 GiB + 64.0 MiB overhead\n");
        /* Narrower than the columns: the messages still get 20 columns rather than none. */
        g_assert_nonnull(strstr(narrow,
                                "info      dry-run.best-effort  host-a: a dry run is\n"
                                "                               best-effort\n"));
}

static void test_dry_run_table_hostile(void) {
        static const char *const rows[][3] = {
                { "error", "storage.disk",
                  "host-b: disk "
                  "/srv/vmigrate/images/a-very-long-image-name-that-is-longer-than-the-column.raw "
                  "(vda) is missing" },
                { "error", "x\033[2J", "line\none\ttab\r" },
                { "wärning", "ünï", "ä b" },
        };
        g_autoptr(GVariant) findings = findings_variant(rows, G_N_ELEMENTS(rows));
        g_autofree char *wrapped = ctl_format_findings(findings, 60, false);
        g_autoptr(GVariant) empty = findings_variant(NULL, 0);
        g_autofree char *none = ctl_format_findings(empty, 80, false);

        /* A path is never broken, even when it overflows. */
        g_assert_nonnull(strstr(wrapped,
                                "\n                        "
                                "/srv/vmigrate/images/a-very-long-image-name-that-is-longer-than-the-"
                                "column.raw\n"));
        /* No escape sequence or newline from the bus reaches the terminal. */
        g_assert_null(strchr(wrapped, '\033'));
        g_assert_null(strchr(wrapped, '\t'));
        g_assert_null(strchr(wrapped, '\r'));
        g_assert_nonnull(strstr(wrapped, "error     x [2J         line one tab\n"));
        /* Padding counts characters, not bytes. */
        g_assert_nonnull(strstr(wrapped,
                                "wärning   ünï"
                                "           ä b\n"));
        g_assert_cmpstr(none, ==, "SEVERITY  CHECK  MESSAGE\n");
}

static void test_dry_run_verdict(void) {
        static const char *const clean[][3] = {
                { "info", "dry-run.best-effort", "host-a: best-effort" },
        };
        static const char *const warned[][3] = {
                { "warning", "machine.type", "host-b: alias" },
                { "info", "dry-run.best-effort", "host-a: best-effort" },
        };
        static const char *const failed[][3] = {
                { "error", "storage.disk", "host-b: missing" },
                { "warning", "machine.type", "host-b: alias" },
                { "error", "cpu.features", "host-b: lacks amx-tile" },
        };
        g_autoptr(GVariant) f1 = findings_variant(clean, G_N_ELEMENTS(clean));
        g_autoptr(GVariant) f2 = findings_variant(warned, G_N_ELEMENTS(warned));
        g_autoptr(GVariant) f3 = findings_variant(failed, G_N_ELEMENTS(failed));
        g_autofree char *v1 = ctl_dry_run_verdict(true, f1);
        g_autofree char *v2 = ctl_dry_run_verdict(true, f2);
        g_autofree char *v3 = ctl_dry_run_verdict(false, f3);
        g_autofree char *v4 = ctl_dry_run_verdict(false, f1);
        g_autofree char *v5 = NULL;

        g_assert_true(g_str_has_prefix(v1, "would succeed (best-effort: "));
        g_assert_true(g_str_has_prefix(v2, "would succeed with 1 warning (best-effort: "));
        g_assert_cmpstr(v3, ==, "would fail: 2 errors");
        g_assert_cmpstr(v4, ==, "would fail (the daemon gave no error finding)");
        g_assert_cmpuint(ctl_findings_count(f3, "error"), ==, 2);
        g_assert_cmpuint(ctl_findings_count(f3, "warning"), ==, 1);
        g_assert_cmpuint(ctl_findings_count(f3, "info"), ==, 0);
        {
                static const char *const one[][3] = { { "error", "host.same", "host-a: same" } };
                g_autoptr(GVariant) f = findings_variant(one, 1);
                v5 = ctl_dry_run_verdict(false, f);
                g_assert_cmpstr(v5, ==, "would fail: 1 error");
        }
}

static void test_dry_run_json(void) {
        static const char *const rows[][3] = {
                { "error", "destination.reachable", "host-a: cannot reach \"b\"\n" },
        };
        g_autoptr(GVariant) findings = findings_variant(rows, G_N_ELEMENTS(rows));
        g_autoptr(JsonNode) root = ctl_dry_run_to_json(false, findings);
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autofree char *text = NULL;
        JsonObject *o = json_node_get_object(root);
        JsonArray *a = json_object_get_array_member(o, "findings");
        JsonObject *f0 = json_array_get_object_element(a, 0);

        g_assert_false(json_object_get_boolean_member(o, "ok"));
        g_assert_cmpuint(json_array_get_length(a), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(f0, "severity"), ==, "error");
        g_assert_cmpstr(json_object_get_string_member(f0, "check"), ==, "destination.reachable");
        /* JSON keeps the message as sent: the consumer decides how to show it. */
        g_assert_cmpstr(json_object_get_string_member(f0, "message"), ==, "host-a: cannot reach \"b\"\n");
        json_generator_set_root(gen, root);
        text = json_generator_to_data(gen, NULL);
        g_assert_cmpstr(
                text, ==,
                "{\"ok\":false,\"findings\":[{\"severity\":\"error\",\"check\":\"destination.reachable\","
                "\"message\":\"host-a: cannot reach \\\"b\\\"\\n\"}]}");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/ctl/host/valid", test_host_valid);
        g_test_add_func("/ctl/host/invalid", test_host_invalid);
        g_test_add_func("/ctl/host/describe", test_host_describe);
        g_test_add_func("/ctl/format/bytes", test_format_bytes);
        g_test_add_func("/ctl/format/property-key", test_property_to_key);
        g_test_add_func("/ctl/format/value", test_format_value);
        g_test_add_func("/ctl/format/properties-json", test_properties_to_json);
        g_test_add_func("/ctl/parse/rate", test_parse_rate);
        g_test_add_func("/ctl/parse/uint", test_parse_uint);
        g_test_add_func("/ctl/format/rate-duration", test_format_rate_duration);
        g_test_add_func("/ctl/job/state", test_job_state);
        g_test_add_func("/ctl/job/stats", test_format_job_stats);
        g_test_add_func("/ctl/job/postcopy", test_job_postcopy);
        g_test_add_func("/ctl/job/disks", test_job_disks);
        g_test_add_func("/ctl/job/no-disks", test_job_no_disks);
        g_test_add_func("/ctl/job/stats-disks", test_format_job_stats_disks);
        g_test_add_func("/ctl/parse/migrate-switches", test_migrate_switches);
        g_test_add_func("/ctl/parse/migrate-args", test_migrate_args);
        g_test_add_func("/ctl/format/shell-word", test_shell_word);
        g_test_add_func("/ctl/dry-run/table", test_dry_run_table);
        g_test_add_func("/ctl/dry-run/table-hostile", test_dry_run_table_hostile);
        g_test_add_func("/ctl/dry-run/verdict", test_dry_run_verdict);
        g_test_add_func("/ctl/dry-run/json", test_dry_run_json);
        return g_test_run();
}
