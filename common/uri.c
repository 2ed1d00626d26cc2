/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "errors.h"
#include "text.h"
#include "uri.h"

#define HOST_NAME_MAX_LEN 253
#define HOST_LABEL_MAX_LEN 63
#define USER_NAME_MAX_LEN 64

/* What is being parsed, for messages: "destination 'x'" or "option 'data-uri'='x'". */
typedef struct Ctx {
        const char *what;
        VmError code;
} Ctx;

static int fail(const Ctx *ctx, GError **error, const char *format, ...) G_GNUC_PRINTF(3, 4);
static int fail(const Ctx *ctx, GError **error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        g_autofree char *detail = g_strdup_vprintf(format, ap);
        va_end(ap);
        return vm_error_set(error, ctx->code, "%s: %s", ctx->what, detail);
}

/* Whitespace, controls and non-ASCII are refused everywhere: none is valid
 * in a host name, user name or port, and in a socket path they would only
 * hide what is really connected to. */
static int check_characters(const Ctx *ctx, const char *s, GError **error) {
        for (size_t i = 0; s[i]; i++) {
                unsigned char c = s[i];

                if (c == ' ' || c == '\t')
                        return fail(ctx, error, "contains a space at position %zu", i + 1);
                if (c < 0x20 || c == 0x7f)
                        return fail(ctx, error, "contains a control character at position %zu", i + 1);
                if (c >= 0x80)
                        return fail(ctx, error,
                                    "contains a non-ASCII character at position %zu (write international "
                                    "host names in their 'xn--' form)",
                                    i + 1);
        }
        return 0;
}

static int check_no_query_fragment(const Ctx *ctx, const char *s, GError **error) {
        const char *q = strchr(s, '?'), *f = strchr(s, '#');

        if (q && (!f || q < f))
                return fail(ctx, error, "a query ('?…') is not allowed");
        if (f)
                return fail(ctx, error, "a fragment ('#…') is not allowed");
        return 0;
}

static int parse_port(const Ctx *ctx, const char *s, size_t len, uint16_t *ret, GError **error) {
        g_autofree char *q = text_quote(s, len);
        unsigned long v = 0;

        if (len == 0)
                return fail(ctx, error, "the port after ':' is empty");
        for (size_t i = 0; i < len; i++) {
                if (!g_ascii_isdigit(s[i]))
                        return fail(ctx, error, "port '%s' is not a number", q);
                if (v <= 65535)
                        v = v * 10 + (unsigned long) (s[i] - '0');
        }
        if (v < 1 || v > 65535)
                return fail(ctx, error, "port %s is out of range (1..65535)", q);
        *ret = (uint16_t) v;
        return 0;
}

static bool is_ipv4_like(const char *s) {
        return s[0] && strspn(s, "0123456789.") == strlen(s);
}

/* host is a copy we may modify; on success *ret is its canonical form. */
static int parse_host(const Ctx *ctx, const char *host, bool bracketed, char **ret, GError **error) {
        g_autofree char *q = text_quote(host, strlen(host));
        char buf[INET6_ADDRSTRLEN];

        if (bracketed) {
                struct in6_addr a6;

                if (strchr(host, '%'))
                        return fail(ctx, error, "IPv6 zone identifiers ('%%…' in '[%s]') are not supported",
                                    q);
                if (inet_pton(AF_INET6, host, &a6) != 1)
                        return fail(ctx, error, "'[%s]' is not an IPv6 address", q);
                *ret = g_strdup(inet_ntop(AF_INET6, &a6, buf, sizeof(buf)));
                return 0;
        }
        if (host[0] == '\0')
                return fail(ctx, error, "the host is empty");
        if (host[0] == '-')
                return fail(ctx, error, "host '%s' starts with '-'", q);
        if (is_ipv4_like(host)) {
                struct in_addr a4;

                if (inet_pton(AF_INET, host, &a4) != 1)
                        return fail(ctx, error, "'%s' is not an IPv4 address", q);
                *ret = g_strdup(inet_ntop(AF_INET, &a4, buf, sizeof(buf)));
                return 0;
        }
        if (strlen(host) > HOST_NAME_MAX_LEN)
                return fail(ctx, error, "host '%s' is longer than %d characters", q, HOST_NAME_MAX_LEN);
        for (const char *label = host;;) {
                size_t n = strcspn(label, ".");

                if (n == 0)
                        return fail(ctx, error,
                                    "host '%s' has an empty label (leading, trailing or double '.')", q);
                if (n > HOST_LABEL_MAX_LEN)
                        return fail(ctx, error, "host '%s' has a label longer than %d characters", q,
                                    HOST_LABEL_MAX_LEN);
                for (size_t i = 0; i < n; i++)
                        if (!g_ascii_isalnum(label[i]) && label[i] != '-' && label[i] != '_')
                                return fail(
                                        ctx, error,
                                        "host '%s' contains '%c' (allowed: letters, digits, '-', '_', '.'; "
                                        "IPv6 addresses go in brackets)",
                                        q, label[i]);
                if (label[n] == '\0')
                        break;
                label += n + 1;
        }
        *ret = g_ascii_strdown(host, -1);
        return 0;
}

static int parse_user(const Ctx *ctx, const char *user, size_t len, char **ret, GError **error) {
        g_autofree char *q = text_quote(user, len);

        if (len == 0)
                return fail(ctx, error, "the user name before '@' is empty");
        if (memchr(user, ':', len))
                return fail(ctx, error, "passwords are not accepted in the user part; use ssh keys");
        if (user[0] == '-')
                return fail(ctx, error, "user name '%s' starts with '-'", q);
        if (len > USER_NAME_MAX_LEN)
                return fail(ctx, error, "user name '%s' is longer than %d characters", q, USER_NAME_MAX_LEN);
        for (size_t i = 0; i < len; i++)
                if (!g_ascii_isalnum(user[i]) && !strchr("._-", user[i]))
                        return fail(ctx, error,
                                    "user name '%s' contains '%c' (allowed: letters, digits, '.', '_', '-')",
                                    q, user[i]);
        *ret = g_strndup(user, len);
        return 0;
}

typedef struct Authority {
        char *user, *host;
        bool ipv6;
        uint16_t port;
} Authority;

static void authority_clear(Authority *a) {
        g_clear_pointer(&a->user, g_free);
        g_clear_pointer(&a->host, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Authority, authority_clear)

/* "[user@]host[:port]": s has no query, fragment or path left. */
static int parse_authority(const Ctx *ctx, const char *s, bool allow_user, bool need_port, Authority *ret,
                           GError **error) {
        g_auto(Authority) a = { 0 };
        const char *at = strchr(s, '@'), *hostport = s, *port = NULL;
        g_autofree char *host = NULL;
        int r;

        if (at) {
                if (strchr(at + 1, '@'))
                        return fail(ctx, error, "more than one '@'");
                if (!allow_user)
                        return fail(ctx, error, "a user name ('…@') is not allowed here");
                r = parse_user(ctx, s, at - s, &a.user, error);
                if (r < 0)
                        return r;
                hostport = at + 1;
        }

        if (hostport[0] == '[') {
                const char *close = strchr(hostport, ']');

                if (!close)
                        return fail(ctx, error, "'[' without ']' around the IPv6 address");
                host = g_strndup(hostport + 1, close - hostport - 1);
                if (close[1] == ':')
                        port = close + 2;
                else if (close[1] != '\0') {
                        g_autofree char *q = text_quote(close + 1, strlen(close + 1));
                        return fail(ctx, error, "unexpected '%s' after ']' (expected ':port' or nothing)",
                                    q);
                }
                a.ipv6 = true;
        } else {
                const char *colon = strchr(hostport, ':');

                if (colon && strchr(colon + 1, ':'))
                        return fail(ctx, error,
                                    "IPv6 addresses must be written in brackets, e.g. '[fe80::1]'");
                if (strchr(hostport, '[') || strchr(hostport, ']'))
                        return fail(ctx, error, "'[' and ']' may only enclose an IPv6 address");
                host = colon ? g_strndup(hostport, colon - hostport) : g_strdup(hostport);
                if (colon)
                        port = colon + 1;
        }

        r = parse_host(ctx, host, a.ipv6, &a.host, error);
        if (r < 0)
                return r;
        if (port) {
                r = parse_port(ctx, port, strlen(port), &a.port, error);
                if (r < 0)
                        return r;
        } else if (need_port)
                return fail(ctx, error, "the port is missing (write host:port)");

        *ret = a;
        a = (Authority){ 0 };
        return 0;
}

static int parse_unix(const Ctx *ctx, const char *rest, Destination *d, GError **error) {
        size_t len = strlen(rest);

        if (len == 0)
                return fail(ctx, error, "the unix socket path is missing (write unix:///absolute/path)");
        if (rest[0] != '/') {
                g_autofree char *q = text_quote(rest, strcspn(rest, "/"));
                return fail(ctx, error, "unix URIs take no host ('%s'): write unix:///absolute/path", q);
        }
        if (strchr(rest, '%'))
                return fail(ctx, error,
                            "'%%' in the socket path: paths are taken literally, not percent-decoded");
        if (len > UNIX_SOCKET_PATH_MAX)
                return fail(ctx, error,
                            "the socket path is %zu bytes long; a unix socket path holds at most %d", len,
                            UNIX_SOCKET_PATH_MAX);
        if (len > 1 && rest[len - 1] == '/')
                return fail(ctx, error, "the socket path ends in '/': name the socket, not its directory");
        if (len == 1)
                return fail(ctx, error, "the socket path is '/': name the socket");
        d->kind = DESTINATION_UNIX;
        d->path = g_strdup(rest);
        d->canonical = g_strconcat("unix://", rest, NULL);
        return 0;
}

static int parse_ssh(const Ctx *ctx, const char *rest, const char *default_user, bool allow_slash,
                     Destination *d, GError **error) {
        g_auto(Authority) a = { 0 };
        g_autofree char *authority = NULL;
        const char *slash = strchr(rest, '/');
        GString *canonical;
        int r;

        if (slash) {
                g_autofree char *q = text_quote(slash, strlen(slash));

                /* Without a scheme it was meant as a host name, or as a socket path
                 * ("./bus", "/run/bus"): say what each is written as. */
                if (!allow_slash)
                        return fail(ctx, error,
                                    "no scheme, so a host name, which takes no path ('%s'); a socket on "
                                    "this machine is unix:///absolute/path",
                                    q);
                if (slash[1] != '\0')
                        return fail(ctx, error, "ssh destinations take no path ('%s')", q);
                authority = g_strndup(rest, slash - rest);
        } else
                authority = g_strdup(rest);

        r = parse_authority(ctx, authority, true, false, &a, error);
        if (r < 0)
                return r;

        d->kind = DESTINATION_SSH;
        d->user = a.user ? g_steal_pointer(&a.user) : g_strdup(default_user);
        d->host = g_steal_pointer(&a.host);
        d->port = a.port;

        canonical = g_string_new("ssh://");
        if (d->user)
                g_string_append_printf(canonical, "%s@", d->user);
        g_string_append_printf(canonical, a.ipv6 ? "[%s]" : "%s", d->host);
        if (d->port)
                g_string_append_printf(canonical, ":%u", d->port);
        d->canonical = g_string_free(canonical, false);
        return 0;
}

static bool is_scheme(const char *s, size_t len) {
        if (len == 0 || !g_ascii_isalpha(s[0]))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!g_ascii_isalnum(s[i]) && !strchr("+-.", s[i]))
                        return false;
        return true;
}

void destination_free(Destination *d) {
        if (!d)
                return;
        g_free(d->path);
        g_free(d->user);
        g_free(d->host);
        g_free(d->canonical);
        g_free(d);
}

int destination_parse(const char *uri, Destination **ret, GError **error) {
        g_autoptr(Destination) d = g_new0(Destination, 1);
        g_autofree char *q = NULL, *what = NULL;
        const char *sep;
        Ctx ctx = { .code = VM_ERROR_INVALID_DESTINATION };
        int r;

        if (!uri || uri[0] == '\0')
                return vm_error_set(
                        error, VM_ERROR_INVALID_DESTINATION,
                        "the destination is empty: give ssh://[user@]host[:port], unix:///path or a "
                        "host name");
        q = text_quote(uri, strlen(uri));
        if (strlen(uri) > DESTINATION_URI_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_DESTINATION,
                                    "destination '%s' is longer than %d bytes", q, DESTINATION_URI_MAX);
        what = g_strdup_printf("destination '%s'", q);
        ctx.what = what;

        r = check_characters(&ctx, uri, error);
        if (r < 0)
                return r;
        r = check_no_query_fragment(&ctx, uri, error);
        if (r < 0)
                return r;

        sep = strstr(uri, "://");
        if (sep && is_scheme(uri, sep - uri)) {
                g_autofree char *scheme = g_ascii_strdown(uri, sep - uri);

                if (g_str_equal(scheme, "unix"))
                        r = parse_unix(&ctx, sep + 3, d, error);
                else if (g_str_equal(scheme, "ssh"))
                        r = parse_ssh(&ctx, sep + 3, NULL, true, d, error);
                else
                        r = fail(
                                &ctx, error,
                                "unknown scheme '%s' (known: ssh://[user@]host[:port], unix:///path; a bare "
                                "host name means ssh://root@host)",
                                scheme);
        } else {
                size_t n = strcspn(uri, ":");

                /* "unix:/run/x" or "ssh:host": a scheme that lost its "//". */
                if (uri[n] == ':' && (g_ascii_strncasecmp(uri, "unix", n) == 0 && n == 4))
                        r = fail(&ctx, error, "write unix:///absolute/path (with '//' after 'unix:')");
                else if (uri[n] == ':' && n == 3 && g_ascii_strncasecmp(uri, "ssh", n) == 0 &&
                         strspn(uri + n + 1, "0123456789") != strlen(uri + n + 1))
                        r = fail(&ctx, error, "write ssh://[user@]host[:port] (with '//' after 'ssh:')");
                else
                        r = parse_ssh(&ctx, uri, "root", false, d, error);
        }
        if (r < 0)
                return r;

        *ret = g_steal_pointer(&d);
        return 0;
}

char *destination_to_sd_bus_host(const Destination *d) {
        GString *s;

        if (d->kind != DESTINATION_SSH)
                return NULL;
        s = g_string_new(NULL);
        if (d->user)
                g_string_append_printf(s, "%s@", d->user);
        g_string_append_printf(s, strchr(d->host, ':') ? "[%s]" : "%s", d->host);
        if (d->port)
                g_string_append_printf(s, ":%u", d->port);
        return g_string_free(s, false);
}

char *destination_to_sd_bus_address(const Destination *d) {
        GString *s;

        if (d->kind != DESTINATION_UNIX)
                return NULL;
        /* D-Bus address escaping: these bytes may stay, all others are %xx. */
        s = g_string_new("unix:path=");
        for (const char *p = d->path; *p; p++) {
                if (g_ascii_isalnum(*p) || strchr("-_/.\\*", *p))
                        g_string_append_c(s, *p);
                else
                        g_string_append_printf(s, "%%%02x", (unsigned char) *p);
        }
        return g_string_free(s, false);
}

int data_uri_parse(const char *uri, char **ret_host, uint16_t *ret_port, GError **error) {
        g_auto(Authority) a = { 0 };
        g_autofree char *q = NULL, *what = NULL;
        Ctx ctx = { .code = VM_ERROR_INVALID_OPTION };
        int r;

        if (!uri || uri[0] == '\0')
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "option 'data-uri' is empty: give tcp://host:port");
        q = text_quote(uri, strlen(uri));
        if (strlen(uri) > DESTINATION_URI_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "option 'data-uri'='%s' is longer than %d bytes", q,
                                    DESTINATION_URI_MAX);
        what = g_strdup_printf("option 'data-uri'='%s'", q);
        ctx.what = what;

        r = check_characters(&ctx, uri, error);
        if (r < 0)
                return r;
        if (g_ascii_strncasecmp(uri, "tcp://", 6) != 0)
                return fail(&ctx, error, "only tcp://host:port is supported");
        r = check_no_query_fragment(&ctx, uri, error);
        if (r < 0)
                return r;
        if (strchr(uri + 6, '/'))
                return fail(&ctx, error, "a path is not allowed (write tcp://host:port)");
        r = parse_authority(&ctx, uri + 6, false, true, &a, error);
        if (r < 0)
                return r;

        if (ret_host)
                *ret_host = g_steal_pointer(&a.host);
        if (ret_port)
                *ret_port = a.port;
        return 0;
}

char **destination_ssh_argv(const Destination *d, SshShare share, const char *control_path,
                            const char *const *remote_argv) {
        GPtrArray *argv;

        if (d->kind != DESTINATION_SSH)
                return NULL;
        g_assert((share == SSH_SHARE_NONE) == !control_path);
        argv = g_ptr_array_new();
        g_ptr_array_add(argv, g_strdup("ssh"));
        g_ptr_array_add(argv, g_strdup("-xT"));
        g_ptr_array_add(argv, g_strdup("-o"));
        g_ptr_array_add(argv, g_strdup("BatchMode=yes"));
        /* Bulk data: ciphers with hardware support first ('^' puts them
         * ahead of the default list, which stays as the fallback). */
        g_ptr_array_add(argv, g_strdup("-o"));
        g_ptr_array_add(argv, g_strdup("Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"));
        if (share != SSH_SHARE_NONE) {
                /* The master lives as long as its own session (and the
                 * ones that joined it): nothing is left behind. */
                g_ptr_array_add(argv, g_strdup("-o"));
                g_ptr_array_add(argv, g_strdup(share == SSH_SHARE_MASTER ? "ControlMaster=yes" : "ControlMaster=no"));
                g_ptr_array_add(argv, g_strdup("-o"));
                g_ptr_array_add(argv, g_strdup("ControlPersist=no"));
                g_ptr_array_add(argv, g_strdup("-S"));
                g_ptr_array_add(argv, g_strdup(control_path));
        }
        if (d->port) {
                g_ptr_array_add(argv, g_strdup("-p"));
                g_ptr_array_add(argv, g_strdup_printf("%u", d->port));
        }
        if (d->user) {
                g_ptr_array_add(argv, g_strdup("-l"));
                g_ptr_array_add(argv, g_strdup(d->user));
        }
        /* The parser refused hosts and users that start with '-'; "--" is
         * one more guard against options hidden in them. */
        g_ptr_array_add(argv, g_strdup("--"));
        g_ptr_array_add(argv, g_strdup(d->host));
        for (const char *const *a = remote_argv; a && *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);
        return (char **) g_ptr_array_free(argv, false);
}
