/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the qcow2 header parser (service/core/disk-image.c): an
 * image file is input like any other. Whatever parses names a backing file
 * that is non-empty UTF-8 without NUL and of at most the QEMU limit, and a
 * backing format only with a backing file; whatever is refused is
 * -EBADMSG and leaves nothing allocated (ASan).
 *
 * Regression run (built by meson, runs the seed corpus):
 *   build/tests/fuzz/fuzz-disk-image tests/fuzz/corpus/disk-image
 *
 * libFuzzer run (clang 14 on Debian 12, from the top of the tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -Iservice/core $(pkg-config --cflags glib-2.0) \
 *     tests/fuzz/fuzz-disk-image.c service/core/disk-image.c \
 *     $(pkg-config --libs glib-2.0) -o build/fuzz-disk-image-libfuzzer
 *   build/fuzz-disk-image-libfuzzer -max_total_time=180 -max_len=4096 \
 *     build/fuzz-corpus-disk-image tests/fuzz/corpus/disk-image
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disk-image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DiskImageInfo info = { .allocation = 1 };
        int r = disk_image_parse_qcow2(data, size, &info);

        if (r < 0) {
                if (r != -EBADMSG || info.backing_file || info.backing_format || info.allocation != 1)
                        abort();
                return 0;
        }
        if (r != 0 || info.allocation != 0)
                abort();
        if (info.backing_file &&
            (!info.backing_file[0] || strlen(info.backing_file) > DISK_IMAGE_BACKING_NAME_MAX ||
             !g_utf8_validate(info.backing_file, -1, NULL)))
                abort();
        if (info.backing_format && (!info.backing_file || !info.backing_format[0]))
                abort();
        disk_image_info_clear(&info);
        return 0;
}
