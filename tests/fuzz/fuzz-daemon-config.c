/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for vmigrated's configuration files (vmigrated.conf and its
 * drop-ins, read at start and on SIGHUP): whatever is refused says why in
 * valid UTF-8, naming the file; whatever is accepted shows itself
 * (vmigrated --show-config) as a configuration file that reads back to
 * the same values, in valid UTF-8, all keys in it.
 *
 * Regression run: build/tests/fuzz/fuzz-daemon-config tests/fuzz/corpus/daemon-config
 * libFuzzer run (clang 14, from the top of the tree, after a meson build in
 * build/ for its config.h; run this way: 150 s, ~1 M inputs, no findings):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -Iservice/core -Iservice/migration -Icommon -Ibuild $(pkg-config --cflags glib-2.0 libsystemd) \
 *     tests/fuzz/fuzz-daemon-config.c service/core/daemon-config.c service/core/display-ports.c \
 *     common/errors.c common/log.c common/net.c $(pkg-config --libs glib-2.0 libsystemd) \
 *     -o build/fuzz-daemon-config-libfuzzer
 *   build/fuzz-daemon-config-libfuzzer -max_total_time=150 -max_len=4096 -timeout=5 \
 *     -dict=tests/fuzz/daemon-config.dict build/fuzz-corpus tests/fuzz/corpus/daemon-config
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-config.h"
#include "errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autoptr(DaemonConfig) c = daemon_config_new();
        g_autoptr(DaemonConfig) back = daemon_config_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *shown = NULL;

        if (daemon_config_parse(c, "fuzz.conf", (const char *) data, size, &error) < 0) {
                if (!error || error->domain != VM_ERROR || !g_str_has_prefix(error->message, "fuzz.conf") ||
                    !g_utf8_validate(error->message, -1, NULL) || strchr(error->message, '\n'))
                        abort();
                return 0;
        }
        if (error)
                abort();

        shown = daemon_config_format(c);
        if (!g_utf8_validate(shown, -1, NULL))
                abort();
        if (daemon_config_parse(back, "shown.conf", shown, strlen(shown), NULL) < 0)
                abort();
        for (int k = 0; k < _DAEMON_CONFIG_KEY_MAX; k++)
                if (!daemon_config_key_equal(c, back, k) ||
                    back->origin[k].kind != DAEMON_CONFIG_ORIGIN_FILE)
                        abort();
        return 0;
}
