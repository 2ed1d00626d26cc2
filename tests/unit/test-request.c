/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A migration request (request.h): Migrate's and DryRun's destination URI
 * and options, each parsed on its own so that a DryRun can report both
 * problems at once, and the one error a Migrate refuses with. */
#include "errors.h"
#include "request.h"
#include "unit-util.h"

static GVariant *dict(const char *text) {
        return g_variant_ref_sink(g_variant_new_parsed(text));
}

static void test_parse_good(void) {
        g_autoptr(GVariant) options = dict("{'postcopy': <true>, 'bandwidth': <uint64 1000>}");
        g_autoptr(MigrationRequest) req = migration_request_parse("backup@Host.Example.com:2200", options);

        g_assert_cmpstr(req->uri, ==, "backup@Host.Example.com:2200");
        g_assert_nonnull(req->destination);
        g_assert_no_error(req->destination_error);
        g_assert_cmpint(req->destination->kind, ==, DESTINATION_SSH);
        g_assert_cmpstr(req->destination->host, ==, "host.example.com");
        g_assert_nonnull(req->options);
        g_assert_no_error(req->options_error);
        g_assert_true(migrate_options_has(req->options, MIGRATE_OPTION_POSTCOPY));
        g_assert_true(req->options->postcopy);
        g_assert_cmpuint(req->options->bandwidth, ==, 1000);
        g_assert_false(migrate_options_has(req->options, MIGRATE_OPTION_LIVE));

        g_assert_null(migration_request_error(req));
        /* What polkit rules see: the canonical form, not what was typed. */
        g_assert_cmpstr(migration_request_destination(req), ==, "ssh://backup@host.example.com:2200");
}

static void test_parse_unix(void) {
        g_autoptr(GVariant) options = dict("@a{sv} {}");
        g_autoptr(MigrationRequest) req = migration_request_parse("UNIX:///run/dest/bus", options);

        g_assert_null(migration_request_error(req));
        g_assert_cmpint(req->destination->kind, ==, DESTINATION_UNIX);
        g_assert_cmpstr(migration_request_destination(req), ==, "unix:///run/dest/bus");
        g_assert_cmpuint(req->options->set, ==, 0);
}

/* A bad destination does not stop the options from being parsed. */
static void test_parse_bad_destination(void) {
        g_autoptr(GVariant) options = dict("{'postcopy': <true>}");
        g_autoptr(MigrationRequest) req = migration_request_parse("ftp://host-b", options);

        g_assert_null(req->destination);
        assert_vm_error(req->destination_error, VM_ERROR_INVALID_DESTINATION, "unknown scheme 'ftp'");
        g_assert_nonnull(req->options);
        g_assert_no_error(req->options_error);
        g_assert_true(req->options ? req->options->postcopy : false);

        g_assert_true(migration_request_error(req) == req->destination_error);
        /* Nothing canonical: polkit sees what was asked. */
        g_assert_cmpstr(migration_request_destination(req), ==, "ftp://host-b");
}

/* Bad options do not stop the destination from being parsed. */
static void test_parse_bad_options(void) {
        g_autoptr(GVariant) options = dict("{'postcopy': <'yes'>}");
        g_autoptr(MigrationRequest) req = migration_request_parse("host-b", options);

        g_assert_null(req->options);
        assert_vm_error(req->options_error, VM_ERROR_INVALID_OPTION, "'postcopy'");
        g_assert_nonnull(req->destination);
        g_assert_no_error(req->destination_error);

        g_assert_true(migration_request_error(req) == req->options_error);
        g_assert_cmpstr(migration_request_destination(req), ==, "ssh://root@host-b");
}

/* Both wrong: both errors kept, and Migrate's answer is the options'. */
static void test_parse_both_bad(void) {
        g_autoptr(GVariant) options = dict("{'PostCopy': <true>}");
        g_autoptr(GVariant) not_a_dict = dict("@as ['postcopy']");
        g_autoptr(MigrationRequest) req = migration_request_parse("ssh://-oProxyCommand=x", options);
        g_autoptr(MigrationRequest) empty = migration_request_parse("", not_a_dict);

        g_assert_null(req->destination);
        g_assert_null(req->options);
        assert_vm_error(req->destination_error, VM_ERROR_INVALID_DESTINATION, "'-oProxyCommand=x'");
        assert_vm_error(req->options_error, VM_ERROR_INVALID_OPTION, "did you mean 'postcopy'?");
        g_assert_true(migration_request_error(req) == req->options_error);
        g_assert_cmpstr(migration_request_destination(req), ==, "ssh://-oProxyCommand=x");

        assert_vm_error(empty->destination_error, VM_ERROR_INVALID_DESTINATION, "the destination is empty");
        assert_vm_error(empty->options_error, VM_ERROR_INVALID_OPTION, "not 'as'");
        g_assert_true(migration_request_error(empty) == empty->options_error);
        g_assert_cmpstr(migration_request_destination(empty), ==, "");
}

/* Whatever was parsed and whatever was not, free releases it all (the
 * sanitizers and valgrind say so) and takes NULL. */
static void test_free_partial(void) {
        g_autoptr(GVariant) good = dict("{'persist': <true>}");
        g_autoptr(GVariant) bad = dict("{'persist': <uint32 1>}");
        MigrationRequest *by_hand = g_new0(MigrationRequest, 1);

        migration_request_free(migration_request_parse("host-b", good));
        migration_request_free(migration_request_parse("host-b", bad));
        migration_request_free(migration_request_parse("ftp://host-b", good));
        migration_request_free(migration_request_parse("ftp://host-b", bad));
        migration_request_free(migration_request_parse("ftp://host-b", NULL));
        migration_request_free(NULL);

        /* Cut short before either part. */
        by_hand->uri = g_strdup("host-b");
        g_assert_null(migration_request_error(by_hand));
        g_assert_cmpstr(migration_request_destination(by_hand), ==, "host-b");
        migration_request_free(by_hand);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/request/parse/good", test_parse_good);
        g_test_add_func("/request/parse/unix", test_parse_unix);
        g_test_add_func("/request/parse/bad-destination", test_parse_bad_destination);
        g_test_add_func("/request/parse/bad-options", test_parse_bad_options);
        g_test_add_func("/request/parse/both-bad", test_parse_both_bad);
        g_test_add_func("/request/free/partial", test_free_partial);
        return g_test_run();
}
