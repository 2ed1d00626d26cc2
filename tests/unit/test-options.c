/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "names.h"
#include "errors.h"
#include "options.h"

/* Roughly what the qemu backend will declare. */
static const MigrateOptionSupport qemu_like[] = {
        { "live", true, NULL, "true" },
        { "offline", true, NULL, NULL },
        { "paused", true, NULL, "false" },
        { "persist", true, NULL, "false" },
        { "undefine-source", true, NULL, NULL },
        { "postcopy", true, NULL, "false" },
        { "postcopy-resume", true, NULL, NULL },
        { "auto-converge", true, NULL, NULL },
        { "compression", true, NULL, "'none'" },
        { "parallel-connections", true, NULL, NULL },
        { "tunnelled", false, "QEMU streams over its own TCP connection", NULL },
        { "tls", false, "no TLS certificates are configured", NULL },
        { "copy-storage", true, NULL, NULL },
        { "reuse-images", true, NULL, NULL },
        { "bandwidth", true, NULL, NULL },
        { "postcopy-bandwidth", true, NULL, NULL },
        { "max-downtime", true, NULL, "300" },
        { "destination-name", true, NULL, NULL },
        { "destination-xml", true, NULL, NULL },
        { "data-uri", true, NULL, NULL },
        { "listen-address", true, NULL, NULL },
        { "abort-on-error", true, NULL, NULL },
        { "unsafe", true, NULL, NULL },
        { "timeout", true, NULL, NULL },
        { "timeout-action", true, NULL, NULL },
};

/* Every option supported, no defaults: rules see exactly what is given. */
static MigrateOptionSupport all_supported[_MIGRATE_OPTION_MAX];

static void init_all_supported(void) {
        size_t n;
        const MigrateOptionInfo *table = migrate_option_info_table(&n);

        for (size_t i = 0; i < n; i++)
                all_supported[i] = (MigrateOptionSupport){ .key = table[i].key, .supported = true };
}

static GVariant *dict(const char *text) {
        g_autoptr(GError) error = NULL;
        GVariant *v = g_variant_parse(G_VARIANT_TYPE("a{sv}"), text, NULL, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(v);
        return v; /* not floating */
}

/* Parses text, expects a refusal with code, and a message containing each
 * of the NULL-terminated substrings. */
static void assert_parse_refused(const char *text, VmError code, ...) {
        g_autoptr(GVariant) v = dict(text);
        g_autoptr(MigrateOptions) o = NULL;
        g_autoptr(GError) error = NULL;
        va_list ap;

        g_test_message("parse %s", text);
        g_assert_cmpint(migrate_options_parse(v, &o, &error), <, 0);
        g_assert_null(o);
        g_assert_error(error, VM_ERROR, (int) code);
        if (!error)
                return;
        g_test_message("  -> %s", error->message);
        va_start(ap, code);
        for (const char *part; (part = va_arg(ap, const char *));)
                if (!strstr(error->message, part)) {
                        g_test_message("    missing: %s", part);
                        g_test_fail();
                }
        va_end(ap);
}

static MigrateOptions *parse_ok(const char *text) {
        g_autoptr(GVariant) v = dict(text);
        g_autoptr(GError) error = NULL;
        MigrateOptions *o = NULL;

        g_assert_cmpint(migrate_options_parse(v, &o, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(o);
        return o;
}

static void test_info_table(void) {
        size_t n;
        const MigrateOptionInfo *table = migrate_option_info_table(&n);

        g_assert_cmpuint(n, ==, _MIGRATE_OPTION_MAX);
        for (size_t i = 0; i < n; i++) {
                g_assert_cmpint(table[i].id, ==, i);
                g_assert_true(migrate_option_info(table[i].key) == &table[i]);
                g_assert_nonnull(table[i].doc);
                g_assert_true(strlen(table[i].type) == 1 && strchr("bsut", table[i].type[0]));
                if (table[i].type[0] == 'u' || table[i].type[0] == 't')
                        g_assert_cmpuint(table[i].min, <=, table[i].max);
                /* lower-case-dash keys */
                for (const char *p = table[i].key; *p; p++)
                        g_assert_true(g_ascii_islower(*p) || *p == '-');
        }
        g_assert_null(migrate_option_info("Live"));
        g_assert_null(migrate_option_info(NULL));
        g_assert_cmpstr(migrate_option_info("postcopy-resume")->type, ==, "b");
        g_assert_true(migrate_option_info("wait")->every_backend);
}

static void test_parse_empty(void) {
        g_autoptr(MigrateOptions) o = parse_ok("@a{sv} {}");

        g_assert_cmpuint(o->set, ==, 0);
        g_assert_false(migrate_options_has(o, MIGRATE_OPTION_LIVE));
}

static const char *const full_text =
        "{'live': <true>, 'offline': <false>, 'paused': <true>, 'persist': <true>, 'undefine-source': "
        "<true>,"
        " 'postcopy': <true>, 'postcopy-resume': <false>, 'auto-converge': <true>, 'compression': <'zstd'>,"
        " 'parallel-connections': <uint32 4>, 'tunnelled': <false>, 'tls': <true>, 'copy-storage': "
        "<'incremental'>, 'reuse-images': <true>,"
        " 'bandwidth': <uint64 1000000000>, 'postcopy-bandwidth': <uint64 2000000000>, 'max-downtime': "
        "<uint64 250>,"
        " 'destination-name': <'web-1'>, 'destination-xml': <'<domain/>'>, 'data-uri': "
        "<'TCP://[FD00::2]:49152'>,"
        " 'listen-address': <'fd00:0::2'>, 'abort-on-error': <true>, 'unsafe': <false>, 'timeout': <uint64 "
        "600>,"
        " 'timeout-action': <'postcopy'>, 'policy': <'minimal-downtime'>, 'wait': <true>, 'postcopy-preempt': <true>,"
        " 'zero-page-detection': <'multifd'>, 'zero-copy-send': <false>, 'switchover-ack': <true>,"
        " 'switchover-bandwidth': <uint64 125000000>}";

static void test_parse_all(void) {
        g_autoptr(MigrateOptions) o = parse_ok(full_text);

        g_assert_cmpuint(o->set, ==, (UINT64_C(1) << _MIGRATE_OPTION_MAX) - 1);
        g_assert_true(o->live);
        g_assert_false(o->offline);
        g_assert_true(migrate_options_has(o, MIGRATE_OPTION_OFFLINE)); /* false, but given */
        g_assert_true(o->paused && o->persist && o->undefine_source && o->postcopy && o->auto_converge);
        g_assert_false(o->postcopy_resume || o->tunnelled || o->unsafe);
        g_assert_cmpint(o->compression, ==, MIGRATE_COMPRESSION_ZSTD);
        g_assert_cmpuint(o->parallel_connections, ==, 4);
        g_assert_true(o->tls);
        g_assert_cmpint(o->copy_storage, ==, MIGRATE_COPY_STORAGE_INCREMENTAL);
        g_assert_cmpuint(o->bandwidth, ==, 1000000000);
        g_assert_cmpuint(o->postcopy_bandwidth, ==, 2000000000);
        g_assert_cmpuint(o->max_downtime, ==, 250);
        g_assert_cmpstr(o->destination_name, ==, "web-1");
        g_assert_cmpstr(o->destination_xml, ==, "<domain/>");
        g_assert_cmpstr(o->data_uri, ==, "tcp://[fd00::2]:49152"); /* canonical */
        g_assert_cmpstr(o->listen_address, ==, "fd00::2");
        g_assert_true(o->abort_on_error);
        g_assert_cmpuint(o->timeout, ==, 600);
        g_assert_cmpint(o->timeout_action, ==, MIGRATE_TIMEOUT_ACTION_POSTCOPY);
        g_assert_cmpstr(o->policy, ==, "minimal-downtime");
        g_assert_true(o->wait);
        g_assert_true(o->postcopy_preempt && o->switchover_ack);
        g_assert_false(o->zero_copy_send);
        g_assert_true(migrate_options_has(o, MIGRATE_OPTION_ZERO_COPY_SEND)); /* false, but given */
        g_assert_cmpint(o->zero_page_detection, ==, MIGRATE_ZERO_PAGE_DETECTION_MULTIFD);
        g_assert_cmpuint(o->switchover_bandwidth, ==, 125000000);
}

static void test_parse_unknown(void) {
        assert_parse_refused("{'speed': <uint64 1>}", VM_ERROR_INVALID_OPTION, "unknown option 'speed'",
                             "known options: live, offline", "wait", NULL);
        assert_parse_refused("{'undefine_source': <true>}", VM_ERROR_INVALID_OPTION,
                             "unknown option 'undefine_source'", "did you mean 'undefine-source'?", NULL);
        assert_parse_refused("{'Live': <true>}", VM_ERROR_INVALID_OPTION, "did you mean 'live'?", NULL);
        assert_parse_refused("{'': <true>}", VM_ERROR_INVALID_OPTION, "unknown option ''", NULL);
        /* Control characters are not echoed back raw. */
        assert_parse_refused("{'a\\nb': <true>}", VM_ERROR_INVALID_OPTION, "unknown option 'a?b'", NULL);
}

static void test_parse_policy(void) {
        g_autoptr(MigrateOptions) o = parse_ok("{'policy': <'site_2.fast-lane'>}");

        g_assert_cmpstr(o->policy, ==, "site_2.fast-lane");
        /* Only the name's form here; whether the host has it, Begin says. */
        assert_parse_refused("{'policy': <'../../etc/passwd'>}", VM_ERROR_INVALID_OPTION,
                             "option 'policy'='../../etc/passwd' is not a policy name", NULL);
        assert_parse_refused("{'policy': <''>}", VM_ERROR_INVALID_OPTION, "is not a policy name", NULL);
        assert_parse_refused("{'policy': <uint64 1>}", VM_ERROR_INVALID_OPTION, "policy", NULL);
}

static void test_parse_duplicate(void) {
        assert_parse_refused("[{'live', <true>}, {'live', <false>}]", VM_ERROR_INVALID_OPTION,
                             "option 'live' is given twice", NULL);
}

static void test_parse_wrong_type(void) {
        size_t n;
        const MigrateOptionInfo *table = migrate_option_info_table(&n);

        for (size_t i = 0; i < n; i++) {
                const char *wrong = table[i].type[0] == 'b' ? "'yes'" : "true";
                const char *given = table[i].type[0] == 'b' ? "not 's' (string)" : "not 'b' (boolean)";
                g_autofree char *text = g_strdup_printf("{'%s': <%s>}", table[i].key, wrong);
                g_autofree char *key = g_strdup_printf("option '%s'", table[i].key);
                g_autofree char *expected = g_strdup_printf("must be of type '%s'", table[i].type);

                assert_parse_refused(text, VM_ERROR_INVALID_OPTION, key, expected, given, NULL);
        }
        /* Integer widths are not interchangeable: busctl users name the type. */
        assert_parse_refused("{'bandwidth': <uint32 5>}", VM_ERROR_INVALID_OPTION,
                             "option 'bandwidth' must be of type 't' (uint64), not 'u' (uint32)", NULL);
        assert_parse_refused("{'parallel-connections': <4>}", VM_ERROR_INVALID_OPTION,
                             "option 'parallel-connections' must be of type 'u' (uint32), not 'i' (int32)",
                             NULL);
        assert_parse_refused("{'live': <<true>>}", VM_ERROR_INVALID_OPTION, "not 'v' (variant)", NULL);
        assert_parse_refused("{'live': <[true]>}", VM_ERROR_INVALID_OPTION, "not 'ab' (array)", NULL);
}

static void test_parse_not_dict(void) {
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new("a{ss}", NULL));
        g_autoptr(MigrateOptions) o = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(migrate_options_parse(v, &o, &error), ==, -EINVAL);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_OPTION);
        g_assert_null(o);
        if (error)
                g_assert_true(strstr(error->message, "a{sv}") && strstr(error->message, "'a{ss}'"));
}

static void test_parse_enum(void) {
        assert_parse_refused(
                "{'compression': <'lz4'>}", VM_ERROR_INVALID_OPTION,
                "option 'compression'='lz4' is not allowed: give 'none', 'zstd', 'zlib' or 'xbzrle'", NULL);
        assert_parse_refused("{'compression': <'ZSTD'>}", VM_ERROR_INVALID_OPTION, "'ZSTD' is not allowed",
                             NULL);
        assert_parse_refused("{'copy-storage': <''>}", VM_ERROR_INVALID_OPTION,
                             "option 'copy-storage'='' is not allowed: give 'none', 'all' or 'incremental'",
                             NULL);
        assert_parse_refused("{'timeout-action': <'pause'>}", VM_ERROR_INVALID_OPTION,
                             "option 'timeout-action'='pause' is not allowed: give 'abort', 'postcopy' or "
                             "'suspend'",
                             NULL);
}

static void test_parse_ranges(void) {
        g_autoptr(MigrateOptions) lo = NULL, hi = NULL;

        assert_parse_refused("{'bandwidth': <uint64 0>}", VM_ERROR_INVALID_OPTION,
                             "option 'bandwidth'=0 is out of range: it must be at least 1 bytes/s", NULL);
        assert_parse_refused("{'postcopy-bandwidth': <uint64 0>}", VM_ERROR_INVALID_OPTION,
                             "option 'postcopy-bandwidth'=0", NULL);
        assert_parse_refused("{'parallel-connections': <uint32 0>}", VM_ERROR_INVALID_OPTION,
                             "option 'parallel-connections'=0 is out of range: give 1..255", NULL);
        assert_parse_refused("{'parallel-connections': <uint32 256>}", VM_ERROR_INVALID_OPTION,
                             "option 'parallel-connections'=256 is out of range: give 1..255", NULL);
        assert_parse_refused("{'max-downtime': <uint64 0>}", VM_ERROR_INVALID_OPTION,
                             "option 'max-downtime'=0 is out of range: give 1..2000000 ms", NULL);
        assert_parse_refused("{'max-downtime': <uint64 2000001>}", VM_ERROR_INVALID_OPTION,
                             "option 'max-downtime'=2000001 is out of range: give 1..2000000 ms", NULL);
        assert_parse_refused("{'timeout': <uint64 0>}", VM_ERROR_INVALID_OPTION,
                             "option 'timeout'=0 is out of range: give 1..604800 s", NULL);
        assert_parse_refused("{'timeout': <uint64 18446744073709551615>}", VM_ERROR_INVALID_OPTION,
                             "option 'timeout'=18446744073709551615", NULL);

        lo = parse_ok(
                "{'bandwidth': <uint64 1>, 'parallel-connections': <uint32 1>, 'max-downtime': <uint64 1>,"
                " 'timeout': <uint64 1>}");
        hi = parse_ok("{'bandwidth': <uint64 18446744073709551615>, 'parallel-connections': <uint32 255>,"
                      " 'max-downtime': <uint64 2000000>, 'timeout': <uint64 604800>}");
        g_assert_cmpuint(lo->parallel_connections, ==, 1);
        g_assert_cmpuint(hi->bandwidth, ==, UINT64_MAX);
        g_assert_cmpuint(hi->max_downtime, ==, 2000000);
        g_assert_cmpuint(hi->timeout, ==, 604800);
}

static void test_parse_strings(void) {
        g_autofree char *long_name = g_strnfill(DOMAIN_NAME_MAX + 1, 'a');
        g_autofree char *long_name_text = g_strdup_printf("{'destination-name': <'%s'>}", long_name);
        g_autofree char *huge = g_strnfill(DOMAIN_XML_MAX_BYTES + 1, 'x');
        g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_autoptr(GVariant) huge_dict = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(MigrateOptions) o = NULL, v4 = NULL, any6 = NULL;

        assert_parse_refused("{'destination-name': <''>}", VM_ERROR_INVALID_OPTION,
                             "option 'destination-name'='' is not a valid domain name: it is empty", NULL);
        assert_parse_refused("{'destination-name': <'a/b'>}", VM_ERROR_INVALID_OPTION, "contains '/'", NULL);
        assert_parse_refused("{'destination-name': <'-x'>}", VM_ERROR_INVALID_OPTION, "starts with '-'",
                             NULL);
        assert_parse_refused(long_name_text, VM_ERROR_INVALID_OPTION, "longer than 64 bytes", NULL);

        assert_parse_refused("{'data-uri': <'ssh://h:1'>}", VM_ERROR_INVALID_OPTION,
                             "option 'data-uri'='ssh://h:1'", "tcp://host:port", NULL);
        assert_parse_refused("{'data-uri': <'tcp://h'>}", VM_ERROR_INVALID_OPTION, "port is missing", NULL);
        assert_parse_refused("{'data-uri': <'tcp://h:65536'>}", VM_ERROR_INVALID_OPTION, "out of range",
                             NULL);

        assert_parse_refused("{'listen-address': <'host.example'>}", VM_ERROR_INVALID_OPTION,
                             "option 'listen-address'='host.example' is not an IPv4 or IPv6 address", NULL);
        assert_parse_refused("{'listen-address': <'[::1]'>}", VM_ERROR_INVALID_OPTION, "no brackets", NULL);
        assert_parse_refused("{'listen-address': <'10.0.0.1:5'>}", VM_ERROR_INVALID_OPTION, "no port", NULL);
        assert_parse_refused("{'listen-address': <''>}", VM_ERROR_INVALID_OPTION, "'listen-address'=''",
                             NULL);
        v4 = parse_ok("{'listen-address': <'0.0.0.0'>}");
        g_assert_cmpstr(v4->listen_address, ==, "0.0.0.0");
        any6 = parse_ok("{'listen-address': <'::'>}");
        g_assert_cmpstr(any6->listen_address, ==, "::");

        assert_parse_refused("{'destination-xml': <''>}", VM_ERROR_INVALID_OPTION,
                             "'destination-xml' is empty", NULL);
        g_variant_builder_add(b, "{sv}", "destination-xml", g_variant_new_string(huge));
        huge_dict = g_variant_ref_sink(g_variant_builder_end(b));
        g_assert_cmpint(migrate_options_parse(huge_dict, &o, &error), ==, -EINVAL);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_OPTION);
        if (error)
                g_assert_true(strstr(error->message, "'destination-xml' is 1048577 bytes"));
}

static void check_ok(const char *text, const MigrateOptionSupport *support, size_t n) {
        g_autoptr(MigrateOptions) o = parse_ok(text);
        g_autoptr(GError) error = NULL;

        g_test_message("check %s", text);
        g_assert_cmpint(migrate_options_check(o, "qemu", support, n, &error), ==, 0);
        g_assert_no_error(error);
}

/* Returns the message (owned by the caller) for more assertions. */
static char *check_refused(const char *text, const MigrateOptionSupport *support, size_t n, VmError code,
                           const char *a, const char *b) {
        g_autoptr(MigrateOptions) o = parse_ok(text);
        g_autoptr(GError) error = NULL;
        g_autofree char *qa = g_strdup_printf("'%s'", a), *qb = b ? g_strdup_printf("'%s'", b) : NULL;

        g_test_message("check %s", text);
        g_assert_cmpint(migrate_options_check(o, "qemu", support, n, &error), <, 0);
        g_assert_error(error, VM_ERROR, (int) code);
        if (!error)
                return g_strdup("");
        g_test_message("  -> %s", error->message);
        g_assert_true(strstr(error->message, qa));
        if (qb)
                g_assert_true(strstr(error->message, qb));
        return g_strdup(error->message);
}

static void test_check_unsupported(void) {
        g_autofree char *m1 = NULL, *m2 = NULL;

        m1 = check_refused("{'tunnelled': <false>}", qemu_like, G_N_ELEMENTS(qemu_like),
                           VM_ERROR_UNSUPPORTED_OPTION, "tunnelled", NULL);
        g_assert_cmpstr(
                m1, ==,
                "option 'tunnelled' is not supported by the 'qemu' backend: QEMU streams over its own TCP "
                "connection");
        /* Missing from the table: unsupported, never silently ignored. */
        m2 = check_refused("{'tls': <true>}", qemu_like, 3, VM_ERROR_UNSUPPORTED_OPTION, "tls", NULL);
        g_assert_true(strstr(m2, "does not implement it"));
        /* 'wait' belongs to the bus layer: every backend has it. */
        check_ok("{'wait': <true>}", qemu_like, 0);
        check_ok("@a{sv} {}", NULL, 0);
}

typedef struct RuleCase {
        const char *path;
        const char *refused; /* NULL: nothing to refuse (allowed-only rule) */
        const char *a, *b;   /* both must be named */
        const char *allowed;
        const char *message; /* optional exact substring */
} RuleCase;

static const RuleCase rule_cases[] = {
        { "/options/rules/postcopy/needs-live", "{'postcopy': <true>, 'live': <false>}", "postcopy", "live",
          "{'postcopy': <true>, 'live': <true>}",
          "option 'postcopy'=true needs 'live'=true, but 'live'=false" },
        { "/options/rules/postcopy/needs-live-unset", "{'postcopy': <true>}", "postcopy", "live",
          "{'postcopy': <true>, 'live': <true>}", "but 'live' is not set" },
        { "/options/rules/postcopy/excludes-paused",
          "{'postcopy': <true>, 'live': <true>, 'paused': <true>}", "postcopy", "paused",
          "{'postcopy': <true>, 'live': <true>, 'paused': <false>}",
          "option 'postcopy'=true excludes 'paused'=true" },
        { "/options/rules/offline/excludes-live", "{'offline': <true>, 'live': <true>, 'persist': <true>}",
          "offline", "live", "{'offline': <true>, 'live': <false>, 'persist': <true>}", NULL },
        { "/options/rules/offline/excludes-postcopy", "{'offline': <true>, 'postcopy': <true>}", "offline",
          "postcopy", "{'offline': <true>, 'postcopy': <false>}", NULL },
        { "/options/rules/offline/excludes-paused", "{'offline': <true>, 'paused': <true>}", "offline",
          "paused", "{'offline': <true>, 'paused': <false>}", NULL },
        { "/options/rules/offline/excludes-compression",
          "{'offline': <true>, 'compression': <'zstd'>, 'parallel-connections': <uint32 2>}", "offline",
          "compression", "{'offline': <true>, 'compression': <'none'>}", NULL },
        { "/options/rules/offline/excludes-tunnelled", "{'offline': <true>, 'tunnelled': <true>}", "offline",
          "tunnelled", "{'offline': <true>, 'tunnelled': <false>}", NULL },
        { "/options/rules/offline/excludes-copy-storage", "{'offline': <true>, 'copy-storage': <'all'>}",
          "offline", "copy-storage", "{'offline': <true>, 'copy-storage': <'none'>}", NULL },
        { "/options/rules/offline/needs-persist", "{'offline': <true>, 'persist': <false>}", "offline",
          "persist", "{'offline': <true>, 'persist': <true>}",
          "option 'offline'=true needs 'persist'=true" },
        { "/options/rules/tunnelled/excludes-data-uri", "{'tunnelled': <true>, 'data-uri': <'tcp://h:1'>}",
          "tunnelled", "data-uri", "{'tunnelled': <true>}", "'data-uri'='tcp://h:1'" },
        { "/options/rules/reuse-images/needs-copy-storage",
          "{'reuse-images': <true>, 'copy-storage': <'none'>}", "reuse-images", "copy-storage",
          "{'reuse-images': <true>, 'copy-storage': <'all'>}", "only copied disks have images to reuse" },
        { "/options/rules/tunnelled/excludes-parallel-connections",
          "{'tunnelled': <true>, 'parallel-connections': <uint32 2>}", "tunnelled", "parallel-connections",
          "{'tunnelled': <false>, 'parallel-connections': <uint32 2>}", NULL },
        { "/options/rules/tunnelled/excludes-tls", "{'tunnelled': <true>, 'tls': <true>}", "tunnelled",
          "tls", "{'tunnelled': <true>, 'tls': <false>}", "(ssh encrypts it)" },
        { "/options/rules/tunnelled/excludes-listen-address",
          "{'tunnelled': <true>, 'listen-address': <'10.0.0.1'>}", "tunnelled", "listen-address",
          "{'tunnelled': <true>}", "no data port" },
        { "/options/rules/compression/zstd-needs-parallel-connections", "{'compression': <'zstd'>}",
          "compression", "parallel-connections",
          "{'compression': <'zstd'>, 'parallel-connections': <uint32 1>}",
          "option 'compression'='zstd' needs 'parallel-connections' ≥ 1" },
        { "/options/rules/compression/zlib-needs-parallel-connections", "{'compression': <'zlib'>}",
          "compression", "parallel-connections",
          "{'compression': <'zlib'>, 'parallel-connections': <uint32 8>}",
          "option 'compression'='zlib' needs 'parallel-connections' ≥ 1" },
        { "/options/rules/compression/xbzrle-excludes-parallel-connections",
          "{'compression': <'xbzrle'>, 'parallel-connections': <uint32 2>}", "compression",
          "parallel-connections", "{'compression': <'xbzrle'>}", NULL },
        { "/options/rules/postcopy-bandwidth/needs-postcopy", "{'postcopy-bandwidth': <uint64 1000>}",
          "postcopy-bandwidth", "postcopy",
          "{'postcopy-bandwidth': <uint64 1000>, 'postcopy': <true>, 'live': <true>}", NULL },
        { "/options/rules/timeout-action/needs-timeout", "{'timeout-action': <'abort'>}", "timeout-action",
          "timeout", "{'timeout-action': <'abort'>, 'timeout': <uint64 60>}",
          "needs 'timeout' ≥ 1, but 'timeout' is not set" },
        { "/options/rules/timeout-action/postcopy-needs-postcopy",
          "{'timeout': <uint64 60>, 'timeout-action': <'postcopy'>}", "timeout-action", "postcopy",
          "{'timeout': <uint64 60>, 'timeout-action': <'postcopy'>, 'postcopy': <true>, 'live': <true>}",
          "option 'timeout-action'='postcopy' needs 'postcopy'=true" },
        { "/options/rules/postcopy-resume/needs-postcopy", "{'postcopy-resume': <true>}", "postcopy-resume",
          "postcopy", "{'postcopy-resume': <true>, 'postcopy': <true>, 'live': <true>}", NULL },
        { "/options/rules/postcopy-preempt/needs-postcopy", "{'postcopy-preempt': <true>}",
          "postcopy-preempt", "postcopy", "{'postcopy-preempt': <true>, 'postcopy': <true>, 'live': <true>}",
          "the preempt channel carries post-copy's page requests" },
        { "/options/rules/tunnelled/excludes-postcopy-preempt",
          "{'tunnelled': <true>, 'postcopy-preempt': <true>, 'postcopy': <true>, 'live': <true>}",
          "tunnelled", "postcopy-preempt",
          "{'tunnelled': <true>, 'postcopy-preempt': <false>, 'postcopy': <true>, 'live': <true>}",
          "the preempt channel is a second one" },
        { "/options/rules/zero-page-detection/multifd-needs-parallel-connections",
          "{'zero-page-detection': <'multifd'>}", "zero-page-detection", "parallel-connections",
          "{'zero-page-detection': <'multifd'>, 'parallel-connections': <uint32 2>}", NULL },
        { "/options/rules/zero-copy-send/needs-parallel-connections", "{'zero-copy-send': <true>}",
          "zero-copy-send", "parallel-connections",
          "{'zero-copy-send': <true>, 'parallel-connections': <uint32 2>}", NULL },
        { "/options/rules/zero-copy-send/excludes-compression",
          "{'zero-copy-send': <true>, 'parallel-connections': <uint32 2>, 'compression': <'zstd'>}",
          "zero-copy-send", "compression",
          "{'zero-copy-send': <true>, 'parallel-connections': <uint32 2>, 'compression': <'none'>}", NULL },
        { "/options/rules/zero-copy-send/excludes-tls",
          "{'zero-copy-send': <true>, 'parallel-connections': <uint32 2>, 'tls': <true>}", "zero-copy-send",
          "tls", "{'zero-copy-send': <true>, 'parallel-connections': <uint32 2>, 'tls': <false>}", NULL },
        /* 'legacy' and 'none' work on a single connection too. */
        { "/options/rules/zero-page-detection/legacy-alone", NULL, NULL, NULL,
          "{'zero-page-detection': <'legacy'>}", NULL },
        /* libvirt allows it; it is a warning (see /options/warnings). */
        { "/options/rules/undefine-source/without-persist", NULL, NULL, NULL,
          "{'undefine-source': <true>, 'persist': <false>}", NULL },
};

static void test_rule(const void *data) {
        const RuleCase *c = data;

        if (c->refused) {
                g_autofree char *message =
                        check_refused(c->refused, all_supported, G_N_ELEMENTS(all_supported),
                                      VM_ERROR_CONFLICTING_OPTIONS, c->a, c->b);
                if (c->message && !strstr(message, c->message)) {
                        g_test_message("expected: %s", c->message);
                        g_test_fail();
                }
        }
        check_ok(c->allowed, all_supported, G_N_ELEMENTS(all_supported));
}

static void test_defaults_in_rules(void) {
        static const MigrateOptionSupport live_off[] = {
                { "live", true, NULL, "false" },
                { "postcopy", true, NULL, NULL },
        };
        static const MigrateOptionSupport yielding[] = {
                { "compression", true, NULL, "'none'" }, { "parallel-connections", true, NULL, "2" },
                { "timeout", true, NULL, NULL },         { "timeout-action", true, NULL, "'abort'" },
                { "postcopy", true, NULL, "true" },      { "live", true, NULL, "true" },
                { "paused", true, NULL, NULL },
        };
        g_autofree char *m = NULL;

        /* qemu: live defaults to true, so postcopy alone just works. */
        check_ok("{'postcopy': <true>}", qemu_like, G_N_ELEMENTS(qemu_like));
        check_ok("@a{sv} {}", qemu_like, G_N_ELEMENTS(qemu_like));
        /* offline implies live=false and persist=true over the defaults. */
        check_ok("{'offline': <true>}", qemu_like, G_N_ELEMENTS(qemu_like));

        /* A default that does not meet a need is named as the default. */
        m = check_refused("{'postcopy': <true>}", live_off, G_N_ELEMENTS(live_off),
                          VM_ERROR_CONFLICTING_OPTIONS, "postcopy", "live");
        g_assert_true(strstr(m, "'live'=false (the 'qemu' backend's default)"));

        /* Defaults yield instead of conflicting. */
        check_ok("{'compression': <'xbzrle'>}", yielding, G_N_ELEMENTS(yielding));
        check_ok("{'paused': <true>}", yielding, G_N_ELEMENTS(yielding));
        check_ok("@a{sv} {}", yielding, G_N_ELEMENTS(yielding));
        {
                g_autoptr(MigrateOptions) o = parse_ok("{'compression': <'xbzrle'>, 'paused': <true>}");

                migrate_options_apply_defaults(o, yielding, G_N_ELEMENTS(yielding));
                g_assert_false(migrate_options_has(o, MIGRATE_OPTION_PARALLEL_CONNECTIONS));
                g_assert_cmpuint(o->parallel_connections, ==, 0);
                g_assert_false(migrate_options_has(o, MIGRATE_OPTION_TIMEOUT_ACTION));
                g_assert_false(migrate_options_has(o, MIGRATE_OPTION_POSTCOPY));
                g_assert_true(migrate_options_has(o, MIGRATE_OPTION_LIVE) && o->live);
        }
        {
                g_autoptr(MigrateOptions) o = parse_ok("{'timeout': <uint64 5>}");

                migrate_options_apply_defaults(o, yielding, G_N_ELEMENTS(yielding));
                g_assert_true(migrate_options_has(o, MIGRATE_OPTION_TIMEOUT_ACTION));
                g_assert_cmpint(o->timeout_action, ==, MIGRATE_TIMEOUT_ACTION_ABORT);
                g_assert_true(migrate_options_has(o, MIGRATE_OPTION_PARALLEL_CONNECTIONS));
                g_assert_cmpuint(o->parallel_connections, ==, 2);
        }
}

static void test_defaults_applied(void) {
        g_autoptr(MigrateOptions) o = parse_ok("{'max-downtime': <uint64 50>}");
        g_autoptr(MigrateOptions) off = parse_ok("{'offline': <true>}");
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(migrate_options_check(o, "qemu", qemu_like, G_N_ELEMENTS(qemu_like), &error), ==, 0);
        migrate_options_apply_defaults(o, qemu_like, G_N_ELEMENTS(qemu_like));
        g_assert_true(migrate_options_has(o, MIGRATE_OPTION_LIVE) && o->live);
        g_assert_true(migrate_options_has(o, MIGRATE_OPTION_PAUSED) && !o->paused);
        g_assert_true(migrate_options_has(o, MIGRATE_OPTION_COMPRESSION));
        g_assert_cmpint(o->compression, ==, MIGRATE_COMPRESSION_NONE);
        g_assert_cmpuint(o->max_downtime, ==, 50); /* given wins over the default 300 */
        g_assert_false(migrate_options_has(o, MIGRATE_OPTION_TUNNELLED));
        g_assert_false(migrate_options_has(o, MIGRATE_OPTION_BANDWIDTH));
        g_assert_false(migrate_options_has(o, MIGRATE_OPTION_WAIT));

        migrate_options_apply_defaults(off, qemu_like, G_N_ELEMENTS(qemu_like));
        g_assert_true(migrate_options_has(off, MIGRATE_OPTION_LIVE) && !off->live);
        g_assert_true(migrate_options_has(off, MIGRATE_OPTION_PERSIST) && off->persist);
        g_assert_cmpuint(off->max_downtime, ==, 300);
}

static void test_round_trip(void) {
        g_autoptr(MigrateOptions) o = parse_ok(full_text);
        g_autoptr(MigrateOptions) small = parse_ok("{'live': <false>}");
        g_autoptr(GVariant) v = g_variant_ref_sink(migrate_options_to_variant(o));
        g_autoptr(MigrateOptions) back = NULL, back2 = NULL;
        g_autoptr(GVariant) v2 = NULL, empty = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpstr(g_variant_get_type_string(v), ==, "a{sv}");
        g_assert_cmpuint(g_variant_n_children(v), ==, _MIGRATE_OPTION_MAX);
        g_assert_cmpint(migrate_options_parse(v, &back, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_true(back && migrate_options_equal(o, back));
        g_assert_false(migrate_options_equal(o, small));

        /* Canonical values come out. */
        {
                const char *s = NULL;
                g_assert_true(g_variant_lookup(v, "data-uri", "&s", &s));
                g_assert_cmpstr(s, ==, "tcp://[fd00::2]:49152");
                g_assert_true(g_variant_lookup(v, "compression", "&s", &s));
                g_assert_cmpstr(s, ==, "zstd");
        }

        /* After defaults too, and the variant is a fixed point. */
        migrate_options_apply_defaults(small, qemu_like, G_N_ELEMENTS(qemu_like));
        v2 = g_variant_ref_sink(migrate_options_to_variant(small));
        g_assert_cmpint(migrate_options_parse(v2, &back2, NULL), ==, 0);
        g_assert_true(back2 && migrate_options_equal(small, back2));
        {
                g_autoptr(GVariant) v3 = g_variant_ref_sink(migrate_options_to_variant(back2));
                g_assert_true(g_variant_equal(v2, v3));
        }
        {
                g_autoptr(MigrateOptions) none = migrate_options_new();
                empty = g_variant_ref_sink(migrate_options_to_variant(none));
                g_assert_cmpuint(g_variant_n_children(empty), ==, 0);
        }
}

static void test_copy(void) {
        g_autoptr(MigrateOptions) o = parse_ok(full_text);
        g_autoptr(MigrateOptions) copy = migrate_options_copy(o);

        g_assert_true(migrate_options_equal(o, copy));
        /* Deep: the strings are the copy's own. */
        g_assert_nonnull(o->destination_xml);
        g_assert_true(copy->destination_xml != o->destination_xml);
        g_assert_true(copy->data_uri != o->data_uri);
        g_free(o->data_uri);
        o->data_uri = g_strdup("tcp://10.0.0.9:1");
        g_assert_cmpstr(copy->data_uri, ==, "tcp://[fd00::2]:49152");
        g_assert_false(migrate_options_equal(o, copy));
}

static void test_equal(void) {
        g_autoptr(MigrateOptions) a = parse_ok("{'destination-name': <'x'>}");
        g_autoptr(MigrateOptions) b = parse_ok("{'destination-name': <'y'>}");
        g_autoptr(MigrateOptions) c = parse_ok("{'destination-name': <'x'>}");
        g_autoptr(MigrateOptions) f = parse_ok("{'live': <false>}");
        g_autoptr(MigrateOptions) none = migrate_options_new();

        g_assert_false(migrate_options_equal(a, b));
        g_assert_true(migrate_options_equal(a, c));
        /* live=false given differs from live absent. */
        g_assert_false(migrate_options_equal(f, none));
}

static void test_describe(void) {
        g_autoptr(GVariant) d =
                g_variant_ref_sink(migrate_options_describe(qemu_like, G_N_ELEMENTS(qemu_like)));
        g_autoptr(GVariant) live = NULL, tunnelled = NULL, compression = NULL, downtime = NULL, wait = NULL;
        g_autoptr(GVariant) def = NULL, values = NULL;
        gboolean supported = FALSE;
        const char *s = NULL;
        guint64 min = 0, max = 0;

        g_assert_cmpstr(g_variant_get_type_string(d), ==, "a{sa{sv}}");
        g_assert_cmpuint(g_variant_n_children(d), ==, _MIGRATE_OPTION_MAX);

        live = g_variant_lookup_value(d, "live", G_VARIANT_TYPE("a{sv}"));
        g_assert_nonnull(live);
        g_assert_true(g_variant_lookup(live, "supported", "b", &supported) && supported);
        g_assert_true(g_variant_lookup(live, "type", "&s", &s));
        g_assert_cmpstr(s, ==, "b");
        g_assert_true(g_variant_lookup(live, "doc", "&s", &s) && s[0]);
        def = g_variant_lookup_value(live, "default", G_VARIANT_TYPE_BOOLEAN);
        g_assert_true(def && g_variant_get_boolean(def));
        g_assert_false(g_variant_lookup(live, "why-not", "&s", &s));

        tunnelled = g_variant_lookup_value(d, "tunnelled", G_VARIANT_TYPE("a{sv}"));
        g_assert_true(g_variant_lookup(tunnelled, "supported", "b", &supported) && !supported);
        g_assert_true(g_variant_lookup(tunnelled, "why-not", "&s", &s));
        g_assert_cmpstr(s, ==, "QEMU streams over its own TCP connection");
        g_assert_null(g_variant_lookup_value(tunnelled, "default", NULL));

        compression = g_variant_lookup_value(d, "compression", G_VARIANT_TYPE("a{sv}"));
        values = g_variant_lookup_value(compression, "values", G_VARIANT_TYPE_STRING_ARRAY);
        g_assert_nonnull(values);
        g_assert_cmpuint(g_variant_n_children(values), ==, 4);
        g_assert_true(g_variant_lookup(compression, "default", "&s", &s));
        g_assert_cmpstr(s, ==, "none");

        downtime = g_variant_lookup_value(d, "max-downtime", G_VARIANT_TYPE("a{sv}"));
        g_assert_true(g_variant_lookup(downtime, "min", "t", &min) &&
                      g_variant_lookup(downtime, "max", "t", &max));
        g_assert_cmpuint(min, ==, 1);
        g_assert_cmpuint(max, ==, 2000000);
        g_assert_true(g_variant_lookup(downtime, "unit", "&s", &s));
        g_assert_cmpstr(s, ==, "ms");
        g_assert_true(g_variant_lookup(downtime, "default", "t", &min));
        g_assert_cmpuint(min, ==, 300);

        /* Bus-layer options are there for every backend, even an empty table. */
        {
                g_autoptr(GVariant) e = g_variant_ref_sink(migrate_options_describe(NULL, 0));
                wait = g_variant_lookup_value(e, "wait", G_VARIANT_TYPE("a{sv}"));
                g_assert_true(g_variant_lookup(wait, "supported", "b", &supported) && supported);
        }
}

static void test_support_validate(void) {
        static const MigrateOptionSupport unknown[] = { { "speed", true, NULL, NULL } };
        static const MigrateOptionSupport twice[] = { { "live", true, NULL, NULL },
                                                      { "live", true, NULL, NULL } };
        static const MigrateOptionSupport bad_type[] = { { "live", true, NULL, "'yes'" } };
        static const MigrateOptionSupport bad_range[] = { { "max-downtime", true, NULL, "0" } };
        static const MigrateOptionSupport bad_enum[] = { { "compression", true, NULL, "'lz4'" } };
        static const MigrateOptionSupport no_why[] = { { "tls", false, NULL, NULL } };
        static const MigrateOptionSupport unsupported_default[] = { { "tls", false, "no", "false" } };
        static const struct {
                const MigrateOptionSupport *table;
                const char *part;
        } bad[] = {
                { unknown, "unknown option 'speed'" },    { twice, "'live' is listed twice" },
                { bad_type, "default of option 'live'" }, { bad_range, "out of range" },
                { bad_enum, "'lz4' is not allowed" },     { no_why, "does not say why" },
                { unsupported_default, "has a default" },
        };

        g_assert_cmpint(migrate_option_support_validate(qemu_like, G_N_ELEMENTS(qemu_like), NULL), ==, 0);
        g_assert_cmpint(migrate_option_support_validate(all_supported, G_N_ELEMENTS(all_supported), NULL),
                        ==, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(
                        migrate_option_support_validate(bad[i].table, bad[i].table == twice ? 2 : 1, &error),
                        <, 0);
                g_assert_nonnull(error);
                if (error) {
                        g_test_message("%s", error->message);
                        g_assert_true(strstr(error->message, bad[i].part));
                }
        }
}

static void test_warnings(void) {
        g_autoptr(MigrateOptions) o = parse_ok("{'undefine-source': <true>, 'persist': <false>}");
        g_autoptr(MigrateOptions) fine = parse_ok("{'undefine-source': <true>, 'persist': <true>}");
        g_auto(GStrv) w = NULL, none = NULL;

        migrate_options_apply_defaults(o, qemu_like, G_N_ELEMENTS(qemu_like));
        w = migrate_options_warnings(o);
        g_assert_cmpuint(g_strv_length(w), ==, 1);
        g_assert_true(strstr(w[0], "'undefine-source'") && strstr(w[0], "'persist'"));
        none = migrate_options_warnings(fine);
        g_assert_cmpuint(g_strv_length(none), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        init_all_supported();

        g_test_add_func("/options/info-table", test_info_table);
        g_test_add_func("/options/parse/empty", test_parse_empty);
        g_test_add_func("/options/parse/all", test_parse_all);
        g_test_add_func("/options/parse/unknown", test_parse_unknown);
        g_test_add_func("/options/parse/policy", test_parse_policy);
        g_test_add_func("/options/parse/duplicate", test_parse_duplicate);
        g_test_add_func("/options/parse/wrong-type", test_parse_wrong_type);
        g_test_add_func("/options/parse/not-a-dict", test_parse_not_dict);
        g_test_add_func("/options/parse/enum", test_parse_enum);
        g_test_add_func("/options/parse/ranges", test_parse_ranges);
        g_test_add_func("/options/parse/strings", test_parse_strings);
        g_test_add_func("/options/check/unsupported", test_check_unsupported);
        for (size_t i = 0; i < G_N_ELEMENTS(rule_cases); i++)
                g_test_add_data_func(rule_cases[i].path, &rule_cases[i], test_rule);
        g_test_add_func("/options/defaults/in-rules", test_defaults_in_rules);
        g_test_add_func("/options/defaults/applied", test_defaults_applied);
        g_test_add_func("/options/round-trip", test_round_trip);
        g_test_add_func("/options/equal", test_equal);
        g_test_add_func("/options/copy", test_copy);
        g_test_add_func("/options/describe", test_describe);
        g_test_add_func("/options/support-validate", test_support_validate);
        g_test_add_func("/options/warnings", test_warnings);
        return g_test_run();
}
