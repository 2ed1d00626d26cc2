/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for Migrate options: the input is a serialized GVariant a{sv}
 * (untrusted, as GVariant treats data off the wire). Whatever parses must
 * survive check, apply_defaults and describe, and to_variant → parse must
 * give back equal options, with to_variant a fixed point.
 *
 * Regression run (built by meson, runs the seed corpus):
 *   build/tests/fuzz/fuzz-options tests/fuzz/corpus/options
 *
 * libFuzzer run (clang 14 on Debian 12, from the top of the tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -Iservice $(pkg-config --cflags glib-2.0 libxml-2.0) \
 *     tests/fuzz/fuzz-options.c service/options.c service/uri.c service/domain-xml.c \
 *     service/errors.c service/log.c \
 *     $(pkg-config --libs glib-2.0 libxml-2.0) -o build/fuzz-options-libfuzzer
 *   mkdir -p build/fuzz-corpus-options
 *   build/fuzz-options-libfuzzer -max_total_time=180 -max_len=4096 -timeout=5 \
 *     build/fuzz-corpus-options tests/fuzz/corpus/options
 * New crashes (crash-*) go into tests/fuzz/corpus/options/ once fixed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A qemu-like table with defaults that can conflict (they must yield). */
static const MigrateOptionSupport with_defaults[] = {
        { "live", true, NULL, "true" },
        { "offline", true, NULL, NULL },
        { "paused", true, NULL, "false" },
        { "persist", true, NULL, "false" },
        { "postcopy", true, NULL, "true" },
        { "postcopy-resume", true, NULL, NULL },
        { "compression", true, NULL, "'none'" },
        { "parallel-connections", true, NULL, "2" },
        { "tunnelled", false, "not here", NULL },
        { "copy-storage", true, NULL, NULL },
        { "reuse-images", true, NULL, NULL },
        { "max-downtime", true, NULL, "300" },
        { "timeout", true, NULL, NULL },
        { "timeout-action", true, NULL, "'abort'" },
        { "data-uri", true, NULL, NULL },
        { "listen-address", true, NULL, "'0.0.0.0'" },
        { "destination-name", true, NULL, NULL },
};

static void check_refusal(const GError *error) {
        if (!error || error->domain != VM_ERROR || !error->message[0] ||
            !g_utf8_validate(error->message, -1, NULL))
                abort();
}

static void round_trip(const MigrateOptions *o) {
        g_autoptr(GVariant) v = g_variant_ref_sink(migrate_options_to_variant(o));
        g_autoptr(GVariant) v2 = NULL;
        g_autoptr(MigrateOptions) back = NULL;
        g_autoptr(GError) error = NULL;

        if (migrate_options_parse(v, &back, &error) < 0 || !migrate_options_equal(o, back))
                abort();
        v2 = g_variant_ref_sink(migrate_options_to_variant(back));
        if (!g_variant_equal(v, v2))
                abort();
}

static void against(const MigrateOptions *parsed, const MigrateOptionSupport *support, size_t n) {
        g_autoptr(MigrateOptions) o = NULL;
        g_autoptr(GVariant) v = g_variant_ref_sink(migrate_options_to_variant(parsed));
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) warnings = NULL;

        if (migrate_options_parse(v, &o, NULL) < 0)
                abort();
        if (migrate_options_check(o, "fuzz", support, n, &error) < 0) {
                check_refusal(error);
                if (error->code != VM_ERROR_UNSUPPORTED_OPTION &&
                    error->code != VM_ERROR_CONFLICTING_OPTIONS)
                        abort();
                return;
        }
        migrate_options_apply_defaults(o, support, n);
        /* Given options are kept as given. */
        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++)
                if (migrate_options_has(parsed, i) && !migrate_options_has(o, i))
                        abort();
        /* What the defaults made is consistent: it passes check again. */
        if (migrate_options_check(o, "fuzz", support, n, NULL) < 0)
                abort();
        round_trip(o);
        warnings = migrate_options_warnings(o);
        if (!warnings)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autoptr(GVariant) dict = NULL;
        g_autoptr(MigrateOptions) o = NULL;
        g_autoptr(GError) error = NULL;
        MigrateOptionSupport all[_MIGRATE_OPTION_MAX];
        void *copy;
        size_t n;
        const MigrateOptionInfo *table = migrate_option_info_table(&n);

        /* GVariant reads serialized data in place: give it its own aligned
         * copy, freed with the variant. */
        copy = g_memdup2(data, size);
        dict = g_variant_ref_sink(
                g_variant_new_from_data(G_VARIANT_TYPE("a{sv}"), copy, size, FALSE, g_free, copy));

        if (migrate_options_parse(dict, &o, &error) < 0) {
                check_refusal(error);
                if (error->code != VM_ERROR_INVALID_OPTION || o)
                        abort();
                return 0;
        }
        round_trip(o);

        for (size_t i = 0; i < n; i++)
                all[i] = (MigrateOptionSupport){ .key = table[i].key, .supported = true };
        against(o, all, n);
        against(o, with_defaults, G_N_ELEMENTS(with_defaults));
        against(o, NULL, 0);
        return 0;
}
