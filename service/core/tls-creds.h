/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/*
 * This host's TLS credentials for the migration stream: a directory with
 * libvirt's file names (as /etc/pki/qemu), which QEMU's tls-creds-x509
 * object reads itself:
 *
 *   ca-cert.pem       the CA both hosts trust
 *   server-cert.pem   this host as a destination (names the host the
 *   server-key.pem    source connects to, in subjectAltName or CN)
 *   client-cert.pem   this host as a source (its distinguished name is
 *   client-key.pem    what the destination's tls-authz lets in)
 *
 * tls_creds_load() reads and checks them with GnuTLS, the library QEMU
 * uses, so that what it accepts is what QEMU will accept: every file there
 * and readable, every certificate and key parses, each key belongs to its
 * certificate, both certificates are signed by the CA, and each is valid
 * now. What is wrong is kept as sentences naming the file and the fix;
 * the credentials are usable only when there is none.
 */

#define TLS_CREDS_DEFAULT_DIR "/etc/pki/vmigrate"
/* The longest distinguished name we print or accept from a peer. */
#define TLS_DN_MAX 1024

typedef struct TlsCreds {
        char *dir;
        GPtrArray *problems; /* char*: "<dir>/server-cert.pem expired on …; renew it" */

        char *ca_fingerprint;  /* SHA-256 of the CA certificate, hex; NULL if unreadable */
        char *ca_dn;
        char *server_dn;
        char *client_dn;       /* as GnuTLS (and so QEMU's tls-authz) prints it */
        GStrv server_names;    /* subjectAltName DNS and IP entries, then the CN */
        int64_t server_not_after, client_not_after; /* seconds since the epoch; 0 unknown */
} TlsCreds;

/* Never fails: what cannot be read is a problem. now: seconds since the
 * epoch (tests pass their own clock). */
TlsCreds *tls_creds_load(const char *dir, int64_t now);
void tls_creds_free(TlsCreds *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TlsCreds, tls_creds_free)

static inline bool tls_creds_usable(const TlsCreds *c) {
        return c && c->problems->len == 0;
}

/* The problems in one sentence ("a; b; c"), or NULL when usable. */
char *tls_creds_why_not(const TlsCreds *c);

/* Does the server certificate name host (a DNS name, or an IPv4/IPv6
 * literal without brackets), as the source's QEMU will check it? */
bool tls_creds_server_names(const TlsCreds *c, const char *host);
