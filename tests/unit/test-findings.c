/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Findings (findings.h): what one host's checks found, as the other host
 * receives it. Messages are prefixed with the host and sanitized, and what
 * comes from the other host is refused whole when any of it is wrong. */
#include <string.h>

#include "errors.h"
#include "findings.h"

static void test_findings_variant(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autoptr(GVariant) v = NULL;
        const char *severity, *id, *message;

        g_assert_false(findings_has_errors(f));
        g_assert_null(findings_first_error(f));
        findings_add(f, FINDING_INFO, "resources.vcpus", "one %d", 1);
        findings_add(f, FINDING_ERROR, "storage.disk", "disk %s is missing", "/x");
        findings_add(f, FINDING_WARNING, "machine.type", "alias");
        g_assert_true(findings_has_errors(f));
        g_assert_cmpstr(findings_first_error(f)->id, ==, "storage.disk");

        v = g_variant_ref_sink(findings_to_variant(f));
        g_assert_cmpstr(g_variant_get_type_string(v), ==, "a(sss)");
        g_assert_cmpuint(g_variant_n_children(v), ==, 3);
        g_variant_get_child(v, 0, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "info");
        g_assert_cmpstr(id, ==, "resources.vcpus");
        g_assert_cmpstr(message, ==, "host-b: one 1");
        g_variant_get_child(v, 1, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "error");
        g_assert_cmpstr(message, ==, "host-b: disk /x is missing");
        g_variant_get_child(v, 2, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "warning");

        /* What one host sends, the other takes. */
        g_autoptr(Findings) g = findings_new("host-a");
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(findings_append_variant(g, v, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpuint(findings_count(g), ==, 3);
        g_assert_cmpstr(findings_get(g, 1)->message, ==, "host-b: disk /x is missing");
        g_assert_true(findings_has_errors(g));
}

static void test_findings_sanitized(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autofree char *long_text = g_strnfill(3000, 'x');

        findings_add(f, FINDING_ERROR, "storage.disk", "disk /a\nb\x01 is missing");
        findings_add(f, FINDING_INFO, "storage.disk", "%s", long_text);
        g_assert_cmpstr(findings_get(f, 0)->message, ==, "host-b: disk /a?b? is missing");
        g_assert_cmpuint(strlen(findings_get(f, 1)->message), ==, FINDING_MESSAGE_MAX);

        /* Our own output is always acceptable to the other side. */
        g_autoptr(GVariant) v = g_variant_ref_sink(findings_to_variant(f));
        g_autoptr(Findings) g = findings_new("host-a");
        g_assert_cmpint(findings_append_variant(g, v, NULL), ==, 0);
}

static void refuse(const char *text, const char *why) {
        g_autoptr(Findings) f = findings_new("host-a");
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(text));
        g_autoptr(GError) error = NULL;

        findings_add(f, FINDING_INFO, "resources.vcpus", "mine");
        g_assert_cmpint(findings_append_variant(f, v, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        if (error && !strstr(error->message, why)) {
                g_test_message("'%s' not in: %s", why, error->message);
                g_test_fail();
        }
        /* All or nothing. */
        g_assert_cmpuint(findings_count(f), ==, 1);
}

static void test_findings_hostile(void) {
        refuse("[('error', 'storage.disk')]", "not a(sss)");
        refuse("@as ['x']", "not a(sss)");
        refuse("[('info', 'a.b', 'ok'), ('fatal', 'storage.disk', 'm')]", "unknown severity");
        refuse("[('ERROR', 'storage.disk', 'm')]", "unknown severity");
        refuse("[('error', 'Storage.disk', 'm')]", "id");
        refuse("[('error', 'storage disk', 'm')]", "id");
        refuse("[('error', '', 'm')]", "id");
        refuse("[('error', 'storage/../disk', 'm')]", "id");
        refuse("[('error', 'storage.disk', 'line\\nbreak')]", "control characters");
        refuse("[('error', 'storage.disk', 'esc\\u001b[31m')]", "control characters");

        g_autofree char *long_id = g_strnfill(FINDING_ID_MAX + 1, 'a');
        g_autofree char *t1 = g_strdup_printf("[('error', '%s', 'm')]", long_id);
        refuse(t1, "id");
        g_autofree char *long_msg = g_strnfill(FINDING_MESSAGE_MAX + 1, 'm');
        g_autofree char *t2 = g_strdup_printf("[('error', 'storage.disk', '%s')]", long_msg);
        refuse(t2, "longer than");

        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
        for (int i = 0; i < FINDINGS_MAX + 1; i++)
                g_variant_builder_add(&b, "(sss)", "info", "resources.vcpus", "m");
        g_autoptr(GVariant) many = g_variant_ref_sink(g_variant_builder_end(&b));
        g_autoptr(Findings) f = findings_new("host-a");
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(findings_append_variant(f, many, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_assert_cmpuint(findings_count(f), ==, 0);
        g_assert_cmpint(findings_append_variant(f, NULL, NULL), <, 0);

        /* The limits themselves are fine. */
        g_autofree char *max_msg = g_strnfill(FINDING_MESSAGE_MAX, 'm');
        g_autofree char *t3 = g_strdup_printf("[('warning', '%s', '%s')]", long_id + 1, max_msg);
        g_autoptr(GVariant) ok = g_variant_ref_sink(g_variant_new_parsed(t3));
        g_assert_cmpint(findings_append_variant(f, ok, NULL), ==, 0);
        g_assert_cmpuint(findings_count(f), ==, 1);
        g_assert_cmpint(findings_get(f, 0)->severity, ==, FINDING_WARNING);
}

static void test_findings_truncated(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autoptr(GVariant) v = NULL;
        const char *severity, *id, *message;

        for (int i = 0; i < 300; i++)
                findings_add(f, i < 290 ? FINDING_INFO : FINDING_ERROR, "storage.disk", "disk %d", i);
        g_assert_cmpuint(findings_count(f), ==, FINDINGS_MAX - 1);
        /* The errors were dropped, but still count. */
        g_assert_null(findings_first_error(f));
        g_assert_true(findings_has_errors(f));
        v = g_variant_ref_sink(findings_to_variant(f));
        g_assert_cmpuint(g_variant_n_children(v), ==, FINDINGS_MAX);
        g_variant_get_child(v, FINDINGS_MAX - 1, "(&s&s&s)", &severity, &id, &message);
        g_assert_cmpstr(severity, ==, "error");
        g_assert_cmpstr(id, ==, "findings.truncated");
        g_assert_cmpstr(message, ==, "host-b: 45 more findings not shown (10 of them errors)");

        g_autoptr(GError) error = NULL;
        g_assert_cmpint(findings_to_error(f, &error), <, 0);
        g_assert_nonnull(error);

        g_autoptr(Findings) g = findings_new("host-a");
        g_assert_cmpint(findings_append_variant(g, v, NULL), ==, 0);
        g_assert_true(findings_has_errors(g));
}

static void test_findings_to_error(void) {
        g_autoptr(Findings) f = findings_new("host-b");
        g_autoptr(GError) error = NULL;

        findings_add(f, FINDING_WARNING, "machine.type", "alias");
        g_assert_cmpint(findings_to_error(f, &error), ==, 0);
        g_assert_no_error(error);

        findings_add(f, FINDING_ERROR, "limits.incoming", "too many");
        g_assert_cmpint(findings_to_error(f, &error), ==, -vm_error_errno(VM_ERROR_LIMIT_REACHED));
        g_assert_error(error, VM_ERROR, VM_ERROR_LIMIT_REACHED);
        g_assert_cmpstr(error->message, ==, "host-b: too many");
        g_clear_error(&error);

        findings_add_code(f, FINDING_ERROR, VM_ERROR_CONFLICTING_OPTIONS, "options.valid", "x");
        findings_add(f, FINDING_ERROR, "storage.disk", "y");
        g_assert_cmpint(findings_to_error(f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_LIMIT_REACHED);
        g_assert_cmpstr(error->message, ==,
                        "host-b: too many (and 2 more problems; Domain.DryRun lists them)");
        g_assert_cmpint(findings_find(f, "options.valid")->code, ==, VM_ERROR_CONFLICTING_OPTIONS);
        g_assert_cmpint(findings_find(f, "storage.disk")->code, ==, VM_ERROR_INCOMPATIBLE);
        g_assert_cmpint(findings_find(f, "limits.incoming")->code, ==, VM_ERROR_LIMIT_REACHED);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/findings/variant", test_findings_variant);
        g_test_add_func("/findings/sanitized", test_findings_sanitized);
        g_test_add_func("/findings/hostile", test_findings_hostile);
        g_test_add_func("/findings/truncated", test_findings_truncated);
        g_test_add_func("/findings/to-error", test_findings_to_error);
        return g_test_run();
}
