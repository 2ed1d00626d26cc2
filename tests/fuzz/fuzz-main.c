/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A plain main() for fuzz targets built without libFuzzer: feeds every file
 * named on the command line, and every file in every directory named there,
 * to LLVMFuzzerTestOneInput(), one TAP test per input. A failing input
 * aborts the process, so the test fails with the input's name just printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gint compare_paths(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int collect(const char *path, GPtrArray *files) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) dir = NULL;
        g_autoptr(GPtrArray) names = NULL;
        const char *name;

        if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
                g_ptr_array_add(files, g_strdup(path));
                return 0;
        }
        dir = g_dir_open(path, 0, &error);
        if (!dir) {
                fprintf(stderr, "%s\n", error->message);
                return -1;
        }
        names = g_ptr_array_new_with_free_func(g_free);
        while ((name = g_dir_read_name(dir)))
                g_ptr_array_add(names, g_build_filename(path, name, NULL));
        /* Stable order, so a TAP number always means the same input. */
        g_ptr_array_sort(names, compare_paths);
        for (guint i = 0; i < names->len; i++)
                if (g_file_test(names->pdata[i], G_FILE_TEST_IS_REGULAR))
                        g_ptr_array_add(files, g_strdup(names->pdata[i]));
        return 0;
}

int main(int argc, char **argv) {
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        int failed = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++)
                if (collect(argv[i], files) < 0)
                        return 1;
        if (files->len == 0) {
                printf("1..0 # SKIP no inputs\n");
                return 0;
        }

        printf("1..%u\n", files->len);
        for (guint i = 0; i < files->len; i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *data = NULL;
                gsize size;

                if (!g_file_get_contents(files->pdata[i], &data, &size, &error)) {
                        printf("not ok %u %s # %s\n", i + 1, (char *)files->pdata[i], error->message);
                        failed++;
                        continue;
                }
                printf("# %s\n", (char *)files->pdata[i]);
                fflush(stdout);
                LLVMFuzzerTestOneInput((const uint8_t *)data, size);
                printf("ok %u %s\n", i + 1, (char *)files->pdata[i]);
        }
        return failed ? 1 : 0;
}
