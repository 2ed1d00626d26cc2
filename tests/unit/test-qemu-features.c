/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QEMU's newer migration features (qemu-features.h): which QEMU has what,
 * the option table GetBackends shows, what the destination decides from
 * both QEMUs and the options, the reply the source reads back, and the
 * probe cache keeping the parameters. No QEMU runs: QemuCaps are made by
 * hand. */
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "qemu-features.h"

static const char *const caps_10[] = { "events",      "multifd",        "postcopy-ram",   "postcopy-preempt",
                                       "return-path", "switchover-ack", "zero-copy-send", NULL };
static const char *const params_10[] = { "max-bandwidth", "zero-page-detection",
                                         "avail-switchover-bandwidth", NULL };
/* A QEMU 7.2: none of them but zero-copy-send. */
static const char *const caps_7[] = { "events",      "multifd",        "postcopy-ram",
                                      "return-path", "zero-copy-send", NULL };
static const char *const params_7[] = { "max-bandwidth", NULL };

static QemuCaps *caps_new(unsigned major, unsigned minor, const char *const *caps,
                          const char *const *params) {
        QemuCaps *c = g_new0(QemuCaps, 1);

        c->binary = g_strdup("/usr/bin/qemu-system-x86_64");
        c->major = major;
        c->minor = minor;
        c->migration_capabilities = g_strdupv((char **) caps);
        c->migration_parameters = g_strdupv((char **) params);
        return c;
}

static MigrateOptions *options(const char *text) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) v =
                g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL, NULL, &error);
        MigrateOptions *o = NULL;

        g_assert_no_error(error);
        g_assert_cmpint(migrate_options_parse(v, &o, &error), ==, 0);
        g_assert_no_error(error);
        return o;
}

/* The source's Begin cookie for a QEMU with these caps. */
static GVariant *cookie_of(const QemuCaps *source) {
        g_auto(GVariantDict) d = G_VARIANT_DICT_INIT(NULL);

        g_variant_dict_insert(&d, "hostname", "s", "host-a");
        if (source)
                qemu_features_add_to_cookie(source, &d);
        return g_variant_ref_sink(g_variant_dict_end(&d));
}

static void test_has(void) {
        g_autoptr(QemuCaps) q10 = caps_new(10, 0, caps_10, params_10);
        g_autoptr(QemuCaps) q7 = caps_new(7, 2, caps_7, params_7);

        for (QemuFeatureId id = 0; id < _QEMU_FEATURE_MAX; id++)
                g_assert_true(qemu_caps_has_feature(q10, id));
        g_assert_false(qemu_caps_has_feature(q7, QEMU_FEATURE_POSTCOPY_PREEMPT));
        g_assert_false(qemu_caps_has_feature(q7, QEMU_FEATURE_ZERO_PAGE_DETECTION));
        g_assert_false(qemu_caps_has_feature(q7, QEMU_FEATURE_SWITCHOVER_ACK));
        g_assert_false(qemu_caps_has_feature(q7, QEMU_FEATURE_SWITCHOVER_BANDWIDTH));
        g_assert_true(qemu_caps_has_feature(q7, QEMU_FEATURE_ZERO_COPY_SEND));
        /* A parameter is not a capability of the same name. */
        g_assert_false(qemu_caps_has_migration_capability(q10, "zero-page-detection"));
        g_assert_cmpstr(qemu_feature_info(QEMU_FEATURE_SWITCHOVER_BANDWIDTH)->qemu_name, ==,
                        "avail-switchover-bandwidth");
}

static MigrateOptionSupport *support_for(const QemuCaps *caps, size_t *ret_n) {
        static const char *const keys[] = { "postcopy",       "postcopy-preempt", "zero-page-detection",
                                            "zero-copy-send", "switchover-ack",   "switchover-bandwidth" };
        MigrateOptionSupport *s = g_new0(MigrateOptionSupport, G_N_ELEMENTS(keys));

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
                s[i] = (MigrateOptionSupport){ .key = keys[i], .supported = true };
        qemu_features_option_support(caps, s, G_N_ELEMENTS(keys));
        *ret_n = G_N_ELEMENTS(keys);
        return s;
}

static void support_free(MigrateOptionSupport *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                g_free((char *) s[i].why_not);
        g_free(s);
}

static void test_option_support(void) {
        g_autoptr(QemuCaps) q10 = caps_new(10, 0, caps_10, params_10);
        g_autoptr(QemuCaps) q7 = caps_new(7, 2, caps_7, params_7);
        size_t n;
        MigrateOptionSupport *s = support_for(q10, &n);
        g_autoptr(GError) error = NULL;

        for (size_t i = 0; i < n; i++) {
                g_assert_true(s[i].supported);
                g_assert_null(s[i].why_not);
        }
        g_assert_cmpint(migrate_option_support_validate(s, n, &error), ==, 0);
        support_free(s, n);

        s = support_for(q7, &n);
        g_assert_true(s[0].supported); /* postcopy: not ours to change */
        g_assert_false(s[1].supported);
        g_test_message("%s", s[1].why_not);
        g_assert_nonnull(strstr(s[1].why_not, "QEMU 7.2.0 (/usr/bin/qemu-system-x86_64)"));
        g_assert_nonnull(
                strstr(s[1].why_not, "has no migration capability 'postcopy-preempt' (QEMU 8.0 or newer"));
        g_assert_false(s[2].supported);
        g_assert_nonnull(strstr(s[2].why_not, "no migration parameter 'zero-page-detection' (QEMU 9.0"));
        g_assert_true(s[3].supported); /* zero-copy-send */
        g_assert_false(s[4].supported);
        g_assert_false(s[5].supported);
        g_assert_nonnull(strstr(s[5].why_not, "parameter 'avail-switchover-bandwidth' (QEMU 8.2"));

        /* What GetBackends and the destination's check then say. */
        g_autoptr(MigrateOptions) o = options("{'postcopy': <true>, 'postcopy-preempt': <true>}");
        g_assert_cmpint(migrate_options_check(o, "qemu", s, n, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_OPTION);
        g_assert_nonnull(strstr(error->message, "option 'postcopy-preempt' is not supported"));
        support_free(s, n);
}

static void negotiate_ok(const QemuCaps *own, const QemuCaps *source, const char *opts, QemuFeatures *ret) {
        g_autoptr(GVariant) cookie = cookie_of(source);
        g_autoptr(MigrateOptions) o = options(opts);
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(qemu_features_negotiate(own, cookie, o, "host-b", "host-a", ret, &error), ==, 0);
        g_assert_no_error(error);
}

static char *negotiate_refused(const QemuCaps *own, const QemuCaps *source, const char *opts) {
        g_autoptr(GVariant) cookie = cookie_of(source);
        g_autoptr(MigrateOptions) o = options(opts);
        g_autoptr(GError) error = NULL;
        QemuFeatures f;

        g_assert_cmpint(qemu_features_negotiate(own, cookie, o, "host-b", "host-a", &f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_OPTION);
        g_test_message("%s -> %s", opts, error->message);
        return g_strdup(error->message);
}

static void test_negotiate_defaults(void) {
        g_autoptr(QemuCaps) q10 = caps_new(10, 0, caps_10, params_10);
        g_autoptr(QemuCaps) q7 = caps_new(7, 2, caps_7, params_7);
        QemuFeatures f;

        /* Both have it: preempt with post-copy, multifd zero pages. */
        negotiate_ok(q10, q10, "{'postcopy': <true>}", &f);
        g_assert_true(f.postcopy_preempt);
        g_assert_false(f.switchover_ack);
        g_assert_true(f.set_zero_page_detection);
        g_assert_cmpint(f.zero_page_detection, ==, MIGRATE_ZERO_PAGE_DETECTION_MULTIFD);
        /* Tunnelled: one file descriptor, no second channel. */
        negotiate_ok(q10, q10, "{'postcopy': <true>, 'tunnelled': <true>}", &f);
        g_assert_false(f.postcopy_preempt);
        /* No post-copy, no preempt; asked off, off. */
        negotiate_ok(q10, q10, "@a{sv} {}", &f);
        g_assert_false(f.postcopy_preempt);
        negotiate_ok(q10, q10, "{'postcopy': <true>, 'postcopy-preempt': <false>}", &f);
        g_assert_false(f.postcopy_preempt);
        /* The destination lacks them: off, and zero pages the old way. */
        negotiate_ok(q7, q10, "{'postcopy': <true>}", &f);
        g_assert_false(f.postcopy_preempt);
        g_assert_true(f.set_zero_page_detection);
        g_assert_cmpint(f.zero_page_detection, ==, MIGRATE_ZERO_PAGE_DETECTION_LEGACY);
        /* The source lacks them (or is older and says nothing): its QEMU
         * is not told about zero pages at all. */
        negotiate_ok(q10, q7, "{'postcopy': <true>}", &f);
        g_assert_false(f.postcopy_preempt || f.set_zero_page_detection);
        negotiate_ok(q10, NULL, "{'postcopy': <true>}", &f);
        g_assert_false(f.postcopy_preempt || f.set_zero_page_detection);
        /* Asked for and both have it. */
        negotiate_ok(q10, q10, "{'switchover-ack': <true>, 'zero-page-detection': <'none'>}", &f);
        g_assert_true(f.switchover_ack);
        g_assert_cmpint(f.zero_page_detection, ==, MIGRATE_ZERO_PAGE_DETECTION_NONE);
}

static void test_negotiate_refused(void) {
        g_autoptr(QemuCaps) q10 = caps_new(10, 0, caps_10, params_10);
        g_autoptr(QemuCaps) q7 = caps_new(7, 2, caps_7, params_7);
        g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;
        QemuFeatures f;

        m1 = negotiate_refused(q7, q10, "{'postcopy': <true>, 'postcopy-preempt': <true>}");
        g_assert_nonnull(
                strstr(m1, "option 'postcopy-preempt' needs both hosts' QEMU to have it, but QEMU 7.2.0"));
        g_assert_nonnull(strstr(m1, "on host-b has no migration capability 'postcopy-preempt' (QEMU 8.0"));
        m2 = negotiate_refused(q7, q10, "{'zero-page-detection': <'legacy'>}");
        g_assert_nonnull(strstr(m2, "host-b has no migration parameter 'zero-page-detection'"));
        m3 = negotiate_refused(q7, q10, "{'switchover-ack': <true>}");
        g_assert_nonnull(strstr(m3, "'switchover-ack'"));
        /* The source's QEMU lacks it: named by the source's host. */
        m4 = negotiate_refused(q10, q7, "{'switchover-ack': <true>}");
        g_assert_nonnull(
                strstr(m4, "the QEMU on host-a has no migration capability 'switchover-ack' (QEMU 8.1"));
        /* The sender's own features are not the destination's business. */
        negotiate_ok(q7, q10, "{'zero-copy-send': <true>, 'parallel-connections': <uint32 2>}", &f);
        negotiate_ok(q7, q10, "{'switchover-bandwidth': <uint64 1000>}", &f);
}

static void test_cookie_hostile(void) {
        g_autoptr(QemuCaps) q10 = caps_new(10, 0, caps_10, params_10);
        g_autoptr(MigrateOptions) o = options("{'postcopy': <true>}");
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) bad =
                g_variant_parse(NULL, "{'qemu-features': <'postcopy-preempt'>}", NULL, NULL, NULL);
        g_autoptr(GVariant) unknown = g_variant_parse(
                NULL, "{'qemu-features': <['postcopy-preempt', 'teleport']>}", NULL, NULL, NULL);
        QemuFeatures f;

        g_assert_cmpint(qemu_features_negotiate(q10, bad, o, "host-b", "host-a", &f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_clear_error(&error);
        /* Names of a newer source that we do not know: ignored. */
        g_assert_cmpint(qemu_features_negotiate(q10, unknown, o, "host-b", "host-a", &f, &error), ==, 0);
        g_assert_true(f.postcopy_preempt);
        g_assert_false(f.set_zero_page_detection);
}

static void test_reply(void) {
        g_autoptr(QemuCaps) q10 = caps_new(10, 0, caps_10, params_10);
        g_autoptr(QemuCaps) q7 = caps_new(7, 2, caps_7, params_7);
        g_autoptr(MigrateOptions) o = options("{'postcopy': <true>, 'switchover-bandwidth': <uint64 "
                                              "125000000>, 'switchover-ack': <true>}");
        g_autoptr(MigrateOptions) plain = options("@a{sv} {}");
        g_autoptr(GError) error = NULL;
        QemuFeatures dest, src;

        negotiate_ok(q10, q10, "{'postcopy': <true>, 'switchover-ack': <true>}", &dest);
        g_auto(GVariantDict) d = G_VARIANT_DICT_INIT(NULL);
        qemu_features_add_to_reply(&dest, &d);
        g_autoptr(GVariant) reply = g_variant_ref_sink(g_variant_dict_end(&d));
        g_assert_cmpint(qemu_features_from_reply(reply, q10, o, &src, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_true(src.postcopy_preempt && src.switchover_ack);
        g_assert_cmpint(src.zero_page_detection, ==, MIGRATE_ZERO_PAGE_DETECTION_MULTIFD);
        g_assert_cmpuint(src.switchover_bandwidth, ==, 125000000);
        g_autofree char *line = qemu_features_describe(&src);
        g_assert_cmpstr(
                line, ==,
                "postcopy-preempt on, switchover-ack on, zero-copy-send off, zero-page-detection multifd, "
                "switchover-bandwidth 125000000 bytes/s");

        /* An older destination says nothing: all off, zero pages the old way. */
        g_assert_cmpint(qemu_features_from_reply(NULL, q10, o, &src, &error), ==, 0);
        g_assert_false(src.postcopy_preempt || src.switchover_ack);
        g_assert_true(src.set_zero_page_detection);
        g_assert_cmpint(src.zero_page_detection, ==, MIGRATE_ZERO_PAGE_DETECTION_LEGACY);
        /* ... and to a QEMU without the parameter, nothing is said. */
        g_assert_cmpint(qemu_features_from_reply(NULL, q7, plain, &src, &error), ==, 0);
        g_assert_false(src.set_zero_page_detection);

        /* A destination that set up what this QEMU lacks, or what the
         * options exclude, is not followed. */
        g_assert_cmpint(qemu_features_from_reply(reply, q7, o, &src, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_clear_error(&error);
        g_assert_cmpint(qemu_features_from_reply(reply, q10, plain, &src, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_clear_error(&error);
        g_autoptr(GVariant) wrong =
                g_variant_parse(NULL, "{'qemu-features': <'on'>}", NULL, NULL, NULL);
        g_assert_cmpint(qemu_features_from_reply(wrong, q10, o, &src, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
}

static void test_cache(void) {
        g_autofree char *dir = g_dir_make_tmp("test-qemu-features-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "caps.json", NULL);
        g_autoptr(QemuCaps) q = caps_new(10, 0, caps_10, params_10);
        g_autoptr(QemuCaps) back = NULL;
        g_autoptr(GError) error = NULL;
        const char *machines[] = { "pc", NULL };
        struct stat st;

        /* The cache is tied to the binary's identity: use a real file. */
        g_assert_cmpint(stat("/bin/sh", &st), ==, 0);
        g_free(q->binary);
        q->binary = g_strdup("/bin/sh");
        q->binary_size = st.st_size;
        q->binary_mtime_usec = (int64_t) st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
        q->binary_inode = st.st_ino;
        q->machines = g_strdupv((char **) machines);
        q->machine_aliases = g_new0(char *, 1);
        g_assert_cmpint(qemu_caps_save_cache(q, path, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(qemu_caps_load_cache(path, "/bin/sh", &back), ==, 0);
        g_assert_true(qemu_caps_has_migration_parameter(back, "zero-page-detection"));
        g_assert_true(qemu_caps_has_feature(back, QEMU_FEATURE_SWITCHOVER_BANDWIDTH));

        /* A cache written before parameters were probed: probe again. */
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_autoptr(GRegex) re = g_regex_new("\"migration-parameters\"\\s*:\\s*\\[[^]]*\\],?", 0, 0, NULL);
        g_autofree char *old = g_regex_replace_literal(re, text, -1, 0, "", 0, NULL);
        g_assert_null(strstr(old, "migration-parameters"));
        g_assert_true(g_file_set_contents(path, old, -1, NULL));
        g_clear_pointer(&back, qemu_caps_free);
        g_assert_cmpint(qemu_caps_load_cache(path, "/bin/sh", &back), ==, -EINVAL);
        (void) unlink(path);
        (void) rmdir(dir);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qemu-features/has", test_has);
        g_test_add_func("/qemu-features/option-support", test_option_support);
        g_test_add_func("/qemu-features/negotiate/defaults", test_negotiate_defaults);
        g_test_add_func("/qemu-features/negotiate/refused", test_negotiate_refused);
        g_test_add_func("/qemu-features/negotiate/hostile-cookie", test_cookie_hostile);
        g_test_add_func("/qemu-features/reply", test_reply);
        g_test_add_func("/qemu-features/cache", test_cache);
        return g_test_run();
}
