/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tls-creds.h"

/* Bigger is not a certificate or key anyone means to use. */
#define TLS_FILE_MAX_BYTES (256 * 1024)

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit, NULL)

void tls_creds_free(TlsCreds *c) {
        if (!c)
                return;
        g_free(c->dir);
        g_ptr_array_unref(c->problems);
        g_free(c->ca_fingerprint);
        g_free(c->ca_dn);
        g_free(c->server_dn);
        g_free(c->client_dn);
        g_strfreev(c->server_names);
        g_free(c);
}

static void problem(TlsCreds *c, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void problem(TlsCreds *c, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        g_ptr_array_add(c->problems, g_strdup_vprintf(format, ap));
        va_end(ap);
}

/* The file's contents (ret_datum points into them), or NULL with a
 * problem recorded. */
static char *read_file(TlsCreds *c, const char *name, gnutls_datum_t *ret_datum) {
        g_autofree char *path = g_build_filename(c->dir, name, NULL);
        g_autoptr(GError) error = NULL;
        char *data = NULL;
        gsize len = 0;

        if (!g_file_get_contents(path, &data, &len, &error)) {
                if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        problem(c, "%s is missing; create it (see the README's \"TLS\" section) or point "
                                   "[TLS] Directory= (vmigrated --tls-dir) at a directory that has it",
                                path);
                else
                        problem(c, "%s cannot be read: %s", path, error->message);
                return NULL;
        }
        if (len > TLS_FILE_MAX_BYTES) {
                problem(c, "%s is %zu bytes, not a PEM certificate or key", path, (size_t) len);
                g_free(data);
                return NULL;
        }
        *ret_datum = (gnutls_datum_t){ .data = (unsigned char *) data, .size = len };
        return data;
}

static gnutls_x509_crt_t load_cert(TlsCreds *c, const char *name) {
        g_auto(gnutls_x509_crt_t) crt = NULL;
        gnutls_datum_t datum;
        g_autofree char *data = read_file(c, name, &datum);
        int r;

        if (!data)
                return NULL;
        r = gnutls_x509_crt_init(&crt);
        if (r >= 0)
                r = gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_PEM);
        if (r < 0) {
                problem(c, "%s/%s is not a PEM certificate: %s", c->dir, name, gnutls_strerror(r));
                return NULL;
        }
        return g_steal_pointer(&crt);
}

static gnutls_x509_privkey_t load_key(TlsCreds *c, const char *name) {
        g_auto(gnutls_x509_privkey_t) key = NULL;
        gnutls_datum_t datum;
        g_autofree char *data = read_file(c, name, &datum);
        int r;

        if (!data)
                return NULL;
        r = gnutls_x509_privkey_init(&key);
        if (r >= 0)
                r = gnutls_x509_privkey_import2(key, &datum, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN);
        explicit_bzero(data, datum.size);
        if (r < 0) {
                problem(c, "%s/%s is not an unencrypted PEM private key: %s", c->dir, name, gnutls_strerror(r));
                return NULL;
        }
        return g_steal_pointer(&key);
}

/* The distinguished name as GnuTLS prints it, which is what QEMU's
 * tls-authz compares with. */
static char *cert_dn(gnutls_x509_crt_t crt) {
        char buf[TLS_DN_MAX];
        size_t size = sizeof(buf);

        if (gnutls_x509_crt_get_dn(crt, buf, &size) < 0)
                return NULL;
        return g_strndup(buf, size);
}

static char *format_time(int64_t t) {
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
        return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M UTC") : g_strdup("?");
}

/* What QEMU's tls-creds-x509 refuses when it loads the files: a CA that
 * may not sign certificates, a host certificate whose key usage or key
 * purpose does not allow its side of the TLS handshake. */
static void check_usage(TlsCreds *c, const char *name, gnutls_x509_crt_t crt, const char *purpose) {
        unsigned usage = 0, critical = 0;
        int r = gnutls_x509_crt_get_key_usage(crt, &usage, &critical);

        if (r >= 0 && !purpose && !(usage & GNUTLS_KEY_KEY_CERT_SIGN))
                problem(c, "%s/%s may not sign certificates (no keyCertSign key usage); make it a CA certificate",
                        c->dir, name);
        if (r >= 0 && purpose && (!(usage & GNUTLS_KEY_DIGITAL_SIGNATURE) || !(usage & GNUTLS_KEY_KEY_ENCIPHERMENT)))
                problem(c, "%s/%s lacks the digitalSignature and keyEncipherment key usages QEMU requires; issue "
                           "it with both (certtool: signing_key and encryption_key, with an RSA key)",
                        c->dir, name);
        if (!purpose)
                return;
        bool any = false, found = false;
        for (unsigned i = 0;; i++) {
                char oid[128];
                size_t size = sizeof(oid);
                if (gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &size, NULL) < 0)
                        break;
                any = true;
                if (g_str_equal(oid, purpose))
                        found = true;
        }
        if (any && !found)
                problem(c, "%s/%s is not issued for TLS %s authentication (extended key usage); issue it with "
                           "that purpose (certtool: %s)",
                        c->dir, name, g_str_equal(purpose, GNUTLS_KP_TLS_WWW_SERVER) ? "server" : "client",
                        g_str_equal(purpose, GNUTLS_KP_TLS_WWW_SERVER) ? "tls_www_server" : "tls_www_client");
}

/* Valid now, and signed by the CA (when it could be read). */
static void check_cert(TlsCreds *c, const char *name, gnutls_x509_crt_t crt, gnutls_x509_crt_t ca, int64_t now,
                       int64_t *ret_not_after) {
        int64_t not_before = gnutls_x509_crt_get_activation_time(crt);
        int64_t not_after = gnutls_x509_crt_get_expiration_time(crt);

        *ret_not_after = not_after > 0 ? not_after : 0;
        if (not_before > 0 && now < not_before) {
                g_autofree char *when = format_time(not_before);
                problem(c, "%s/%s is not valid before %s; check this host's clock, or issue it again", c->dir,
                        name, when);
        }
        if (not_after > 0 && now > not_after) {
                g_autofree char *when = format_time(not_after);
                problem(c, "%s/%s expired on %s; issue a new one from the CA", c->dir, name, when);
        }
        if (ca) {
                unsigned status = 0;
                if (gnutls_x509_crt_verify(crt, &ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &status) < 0 ||
                    status != 0)
                        problem(c, "%s/%s is not signed by the CA in %s/ca-cert.pem; issue it from that CA", c->dir,
                                name, c->dir);
        }
}

static void check_key_matches(TlsCreds *c, const char *cert_name, gnutls_x509_crt_t crt, const char *key_name,
                              gnutls_x509_privkey_t key) {
        unsigned char a[64], b[64];
        size_t na = sizeof(a), nb = sizeof(b);

        if (gnutls_x509_crt_get_key_id(crt, 0, a, &na) < 0 || gnutls_x509_privkey_get_key_id(key, 0, b, &nb) < 0 ||
            na != nb || memcmp(a, b, na) != 0)
                problem(c, "%s/%s is not the key of %s/%s; put the key that goes with the certificate there",
                        c->dir, key_name, c->dir, cert_name);
}

static GStrv cert_names(gnutls_x509_crt_t crt) {
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

        for (unsigned i = 0;; i++) {
                char buf[256];
                size_t size = sizeof(buf);
                unsigned critical;
                int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, &critical);

                if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (type == GNUTLS_SAN_DNSNAME)
                        g_ptr_array_add(names, g_strndup(buf, size));
                else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
                        char text[INET6_ADDRSTRLEN];
                        if (inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof(text)))
                                g_ptr_array_add(names, g_strdup(text));
                }
        }
        {
                char buf[256];
                size_t size = sizeof(buf);
                if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) >= 0)
                        g_ptr_array_add(names, g_strndup(buf, size));
        }
        g_ptr_array_add(names, NULL);
        return (GStrv) g_ptr_array_steal(names, NULL);
}

static char *cert_fingerprint(gnutls_x509_crt_t crt) {
        unsigned char digest[32];
        size_t size = sizeof(digest);
        GString *hex;

        if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, digest, &size) < 0)
                return NULL;
        hex = g_string_new(NULL);
        for (size_t i = 0; i < size; i++)
                g_string_append_printf(hex, "%02x", digest[i]);
        return g_string_free(hex, false);
}

/* One side's certificate and key: loaded, matched, checked. */
static void load_pair(TlsCreds *c, const char *cert_name, const char *key_name, const char *purpose,
                      gnutls_x509_crt_t ca, int64_t now, gnutls_x509_crt_t *ret_crt, int64_t *ret_not_after) {
        g_auto(gnutls_x509_crt_t) crt = load_cert(c, cert_name);
        g_auto(gnutls_x509_privkey_t) key = load_key(c, key_name);

        if (!crt)
                return;
        check_cert(c, cert_name, crt, ca, now, ret_not_after);
        check_usage(c, cert_name, crt, purpose);
        if (key)
                check_key_matches(c, cert_name, crt, key_name, key);
        *ret_crt = g_steal_pointer(&crt);
}

TlsCreds *tls_creds_load(const char *dir, int64_t now) {
        g_autoptr(TlsCreds) c = g_new0(TlsCreds, 1);
        g_auto(gnutls_x509_crt_t) ca = NULL, server = NULL, client = NULL;

        c->dir = g_strdup(dir);
        c->problems = g_ptr_array_new_with_free_func(g_free);
        if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
                problem(c, "the TLS directory %s does not exist; create it with the CA's certificate and this "
                           "host's (see the README's \"TLS\" section), or point [TLS] Directory= (vmigrated --tls-dir) "
                           "elsewhere",
                        dir);
                return g_steal_pointer(&c);
        }

        ca = load_cert(c, "ca-cert.pem");
        if (ca) {
                int64_t ca_not_after;
                c->ca_fingerprint = cert_fingerprint(ca);
                c->ca_dn = cert_dn(ca);
                check_cert(c, "ca-cert.pem", ca, NULL, now, &ca_not_after);
                check_usage(c, "ca-cert.pem", ca, NULL);
        }
        load_pair(c, "server-cert.pem", "server-key.pem", GNUTLS_KP_TLS_WWW_SERVER, ca, now, &server,
                  &c->server_not_after);
        load_pair(c, "client-cert.pem", "client-key.pem", GNUTLS_KP_TLS_WWW_CLIENT, ca, now, &client,
                  &c->client_not_after);
        if (server) {
                c->server_dn = cert_dn(server);
                c->server_names = cert_names(server);
                if (!c->server_names[0])
                        problem(c, "%s/server-cert.pem names no host (no subjectAltName, no CN); issue it for "
                                   "this host's name and addresses",
                                dir);
        }
        if (client)
                c->client_dn = cert_dn(client);
        return g_steal_pointer(&c);
}

char *tls_creds_why_not(const TlsCreds *c) {
        GString *s;

        if (tls_creds_usable(c))
                return NULL;
        s = g_string_new(NULL);
        for (unsigned i = 0; i < c->problems->len; i++)
                g_string_append_printf(s, "%s%s", i ? "; " : "", (const char *) c->problems->pdata[i]);
        return g_string_free(s, false);
}

bool tls_creds_server_names(const TlsCreds *c, const char *host) {
        g_autofree char *path = g_build_filename(c->dir, "server-cert.pem", NULL);
        g_auto(gnutls_x509_crt_t) crt = NULL;
        g_autofree char *data = NULL;
        gnutls_datum_t datum;
        gsize len = 0;

        /* Asked of the certificate itself, by the function QEMU's TLS
         * session uses, so that wildcards and IP entries count the same. */
        if (!g_file_get_contents(path, &data, &len, NULL) || len > TLS_FILE_MAX_BYTES)
                return false;
        datum = (gnutls_datum_t){ .data = (unsigned char *) data, .size = len };
        if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_PEM) < 0)
                return false;
        return gnutls_x509_crt_check_hostname(crt, host) != 0;
}
