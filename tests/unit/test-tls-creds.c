/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TLS credentials: made at test time by tools/make-tls-certs.sh (certtool),
 * then broken one way at a time; each problem names the file and the fix. */
#include <string.h>
#include <time.h>

#include <glib/gstdio.h>

#include "tls-creds.h"

typedef struct Fixture {
        char *top;
        char *host_a; /* <top>/pki/host-a: a good set */
} Fixture;

static void run_script(const char *const *args) {
        g_autofree char *script = g_test_build_filename(G_TEST_DIST, "..", "..", "tools", "make-tls-certs.sh", NULL);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        int status = 0;

        g_ptr_array_add(argv, script);
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (char *) *a);
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, NULL, 0, NULL, NULL, NULL, &err, &status, &error));
        g_assert_no_error(error);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("make-tls-certs.sh failed (is gnutls-bin installed?): %s", err);
}

static void copy_file(const char *from, const char *to) {
        g_autofree char *data = NULL;
        gsize len;

        g_assert_true(g_file_get_contents(from, &data, &len, NULL));
        g_assert_true(g_file_set_contents(to, data, len, NULL));
}

static char *in(const char *dir, const char *name) {
        return g_build_filename(dir, name, NULL);
}

/* Keys take a while to make: one set per run, copied for each test. */
static char *made_once;

static void fixture_setup(Fixture *f, gconstpointer data) {
        f->top = g_dir_make_tmp("vmigrate-tls-XXXXXX", NULL);
        g_autofree char *pki = in(f->top, "pki");
        g_assert_nonnull(f->top);
        if (!made_once) {
                made_once = g_dir_make_tmp("vmigrate-tls-made-XXXXXX", NULL);
                g_autofree char *made = in(made_once, "pki");
                const char *args[] = { made, "host-a=10.0.0.1,fd00::1", "host-b=10.0.0.2", NULL };
                run_script(args);
        }
        g_autofree char *cmd = g_strdup_printf("cp -a '%s/pki' '%s'", made_once, f->top);
        g_assert_cmpint(system(cmd), ==, 0);
        f->host_a = in(pki, "host-a");
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->top);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->top);
        g_free(f->host_a);
}

/* Exactly one problem, containing each of the fragments. */
static void assert_one_problem(const TlsCreds *c, const char *a, const char *b) {
        g_autofree char *why = tls_creds_why_not(c);

        g_test_message("problems: %s", why ? why : "(none)");
        g_assert_false(tls_creds_usable(c));
        g_assert_cmpuint(c->problems->len, ==, 1);
        g_assert_nonnull(strstr(why, a));
        if (b)
                g_assert_nonnull(strstr(why, b));
}

static void test_good(Fixture *f, gconstpointer data) {
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL));

        g_assert_true(tls_creds_usable(c));
        g_assert_null(tls_creds_why_not(c));
        g_assert_cmpstr(c->client_dn, ==, "CN=host-a");
        g_assert_cmpstr(c->server_dn, ==, "CN=host-a");
        g_assert_cmpstr(c->ca_dn, ==, "CN=vmigrate test CA");
        g_assert_nonnull(c->ca_fingerprint);
        g_assert_cmpuint(strlen(c->ca_fingerprint), ==, 64);
        g_assert_true(g_strv_contains((const char *const *) c->server_names, "host-a"));
        g_assert_true(g_strv_contains((const char *const *) c->server_names, "10.0.0.1"));
        g_assert_true(g_strv_contains((const char *const *) c->server_names, "fd00::1"));
        g_assert_cmpint(c->server_not_after, >, time(NULL));
        g_assert_cmpint(c->client_not_after, >, time(NULL));
}

static void test_same_ca(Fixture *f, gconstpointer data) {
        g_autofree char *host_b = g_build_filename(f->top, "pki", "host-b", NULL);
        g_autoptr(TlsCreds) a = tls_creds_load(f->host_a, time(NULL));
        g_autoptr(TlsCreds) b = tls_creds_load(host_b, time(NULL));

        g_assert_true(tls_creds_usable(a) && tls_creds_usable(b));
        g_assert_cmpstr(a->ca_fingerprint, ==, b->ca_fingerprint);
}

static void test_server_names(Fixture *f, gconstpointer data) {
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL));

        g_assert_true(tls_creds_server_names(c, "host-a"));
        g_assert_true(tls_creds_server_names(c, "10.0.0.1"));
        g_assert_true(tls_creds_server_names(c, "fd00::1"));
        g_assert_false(tls_creds_server_names(c, "host-b"));
        g_assert_false(tls_creds_server_names(c, "10.0.0.2"));
        g_assert_false(tls_creds_server_names(c, "host-a.example"));
}

static void test_missing_dir(Fixture *f, gconstpointer data) {
        g_autofree char *nowhere = in(f->top, "nowhere");
        g_autoptr(TlsCreds) c = tls_creds_load(nowhere, time(NULL));

        assert_one_problem(c, nowhere, "does not exist");
}

static void test_missing_file(Fixture *f, gconstpointer data) {
        g_autofree char *key = in(f->host_a, "client-key.pem");
        g_assert_cmpint(g_unlink(key), ==, 0);
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL));

        assert_one_problem(c, "client-key.pem is missing", "--tls-dir");
}

static void test_unreadable(Fixture *f, gconstpointer data) {
        g_autofree char *cert = in(f->host_a, "server-cert.pem");
        g_assert_true(g_file_set_contents(cert, "-----BEGIN CERTIFICATE-----\nnonsense\n", -1, NULL));
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL));

        assert_one_problem(c, "server-cert.pem is not a PEM certificate", NULL);
        g_assert_null(c->server_names);
}

static void test_expired(Fixture *f, gconstpointer data) {
        /* The same certificates, seen two years from now. */
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL) + 2 * 365 * 24 * 3600);

        g_assert_false(tls_creds_usable(c));
        g_autofree char *why = tls_creds_why_not(c);
        g_assert_nonnull(strstr(why, "ca-cert.pem expired on"));
        g_assert_nonnull(strstr(why, "server-cert.pem expired on"));
        g_assert_nonnull(strstr(why, "client-cert.pem expired on"));
}

static void test_expired_made(Fixture *f, gconstpointer data) {
        g_autofree char *pki = in(f->top, "old");
        const char *args[] = { "--days", "-3", pki, "host-old", NULL };
        run_script(args);
        g_autofree char *dir = in(pki, "host-old");
        g_autoptr(TlsCreds) c = tls_creds_load(dir, time(NULL));
        g_autofree char *why = tls_creds_why_not(c);

        g_assert_nonnull(why);
        g_assert_nonnull(strstr(why, "client-cert.pem expired on"));
        g_assert_nonnull(strstr(why, "issue a new one"));
}

static void test_not_yet_valid(Fixture *f, gconstpointer data) {
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL) - 2 * 24 * 3600);
        g_autofree char *why = tls_creds_why_not(c);

        g_assert_nonnull(why);
        g_assert_nonnull(strstr(why, "server-cert.pem is not valid before"));
        g_assert_nonnull(strstr(why, "clock"));
}

static void test_wrong_ca(Fixture *f, gconstpointer data) {
        g_autofree char *other = in(f->top, "other");
        const char *args[] = { other, "host-z", NULL };
        run_script(args);
        g_autofree char *their_ca = g_build_filename(other, "host-z", "ca-cert.pem", NULL);
        g_autofree char *our_ca = in(f->host_a, "ca-cert.pem");
        copy_file(their_ca, our_ca);
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL));
        g_autofree char *why = tls_creds_why_not(c);

        g_assert_cmpuint(c->problems->len, ==, 2);
        g_assert_nonnull(strstr(why, "server-cert.pem is not signed by the CA"));
        g_assert_nonnull(strstr(why, "client-cert.pem is not signed by the CA"));
}

static void test_key_mismatch(Fixture *f, gconstpointer data) {
        g_autofree char *client_key = in(f->host_a, "client-key.pem");
        g_autofree char *server_key = in(f->host_a, "server-key.pem");
        copy_file(client_key, server_key);
        g_autoptr(TlsCreds) c = tls_creds_load(f->host_a, time(NULL));

        assert_one_problem(c, "server-key.pem is not the key of", "server-cert.pem");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
#define ADD(path, fn) g_test_add("/tls-creds/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("good", test_good);
        ADD("same-ca", test_same_ca);
        ADD("server-names", test_server_names);
        ADD("missing-dir", test_missing_dir);
        ADD("missing-file", test_missing_file);
        ADD("unreadable", test_unreadable);
        ADD("expired", test_expired);
        ADD("expired-made", test_expired_made);
        ADD("not-yet-valid", test_not_yet_valid);
        ADD("wrong-ca", test_wrong_ca);
        ADD("key-mismatch", test_key_mismatch);
        int r = g_test_run();
        if (made_once) {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", made_once);
                (void) system(cmd);
        }
        return r;
}
