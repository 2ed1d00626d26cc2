/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for destination and data URIs: whatever parses has a
 * canonical form that parses to itself and converts for sd-bus; whatever is
 * refused says why in valid UTF-8.
 *
 * Regression run (built by meson, runs the seed corpus):
 *   build/tests/fuzz/fuzz-uri tests/fuzz/corpus/uri
 *
 * libFuzzer run (clang 14 on Debian 12, from the top of the tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -Iservice $(pkg-config --cflags glib-2.0) \
 *     tests/fuzz/fuzz-uri.c service/uri.c service/errors.c \
 *     $(pkg-config --libs glib-2.0) -o build/fuzz-uri-libfuzzer
 *   mkdir -p build/fuzz-corpus-uri
 *   build/fuzz-uri-libfuzzer -max_total_time=180 -max_len=2048 -timeout=5 \
 *     build/fuzz-corpus-uri tests/fuzz/corpus/uri
 * New crashes (crash-*) go into tests/fuzz/corpus/uri/ once fixed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(const GError *error, VmError code) {
        if (!error || error->domain != VM_ERROR || error->code != (int) code || !error->message[0] ||
            !g_utf8_validate(error->message, -1, NULL))
                abort();
}

static void check_destination(const char *s) {
        g_autoptr(Destination) d = NULL, again = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *host = NULL, *address = NULL;

        if (destination_parse(s, &d, &error) < 0) {
                check_refusal(error, VM_ERROR_INVALID_DESTINATION);
                if (d)
                        abort();
                return;
        }
        if (!d || error || !d->canonical)
                abort();
        host = destination_to_sd_bus_host(d);
        address = destination_to_sd_bus_address(d);
        switch (d->kind) {
        case DESTINATION_SSH:
                if (!host || address || !d->host || d->path || host[0] == '-' || strpbrk(host, " \t\n/?#"))
                        abort();
                break;
        case DESTINATION_UNIX:
                if (host || !address || !d->path || d->path[0] != '/' ||
                    strlen(d->path) > UNIX_SOCKET_PATH_MAX)
                        abort();
                break;
        default:
                abort();
        }
        if (destination_parse(d->canonical, &again, NULL) < 0 ||
            !g_str_equal(again->canonical, d->canonical) || again->kind != d->kind ||
            again->port != d->port || g_strcmp0(again->host, d->host) != 0 ||
            g_strcmp0(again->user, d->user) != 0 || g_strcmp0(again->path, d->path) != 0)
                abort();
}

static void check_data_uri(const char *s) {
        g_autoptr(GError) error = NULL;
        g_autofree char *host = NULL, *host2 = NULL, *rebuilt = NULL;
        uint16_t port = 0, port2 = 0;

        if (data_uri_parse(s, &host, &port, &error) < 0) {
                check_refusal(error, VM_ERROR_INVALID_OPTION);
                if (host)
                        abort();
                return;
        }
        if (!host || port == 0)
                abort();
        rebuilt = g_strdup_printf(strchr(host, ':') ? "tcp://[%s]:%u" : "tcp://%s:%u", host, port);
        if (data_uri_parse(rebuilt, &host2, &port2, NULL) < 0 || !g_str_equal(host, host2) || port != port2)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree char *s = g_strndup((const char *) data, size);

        check_destination(s);
        check_data_uri(s);
        return 0;
}
