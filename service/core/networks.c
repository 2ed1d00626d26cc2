/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The admin's table of networks: see networks.h. */
#include <errno.h>
#include <string.h>

#include "networks.h"
#include "text.h"

/* As the kernel takes it: 1..15 bytes, no '/', ':' or white space. */
static bool bridge_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 15 || g_str_equal(s, ".") || g_str_equal(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || g_ascii_isspace(*p) || (unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

int network_lookup_bridge(const char *networks_dir, const char *name, char **ret_bridge,
                          char **ret_problem) {
        g_autofree char *path = NULL, *contents = NULL;
        g_autoptr(GError) error = NULL;
        gsize len = 0;

        /* The parser lets only such names through; the file name must not
         * walk out of the directory whoever calls. */
        if (!name || !*name || name[0] == '.' || strchr(name, '/')) {
                *ret_problem = g_strdup("not a network name");
                return -EINVAL;
        }
        if (networks_dir)
                path = g_build_filename(networks_dir, name, NULL);
        if (!path || !g_file_test(path, G_FILE_TEST_EXISTS)) {
                if (g_str_equal(name, NETWORKS_DEFAULT_NAME)) {
                        *ret_bridge = g_strdup(NETWORKS_DEFAULT_BRIDGE);
                        return 0;
                }
                *ret_problem = path
                        ? g_strdup_printf("network '%s' is not defined here (no %s)", name, path)
                        : g_strdup_printf("network '%s' is not defined here (no networks directory)", name);
                return -ENOENT;
        }
        if (!g_file_get_contents(path, &contents, &len, &error)) {
                *ret_problem =
                        g_strdup_printf("network '%s': cannot read %s: %s", name, path, error->message);
                return -EIO;
        }
        if (len > NETWORKS_FILE_MAX || memchr(contents, '\0', len)) {
                *ret_problem = g_strdup_printf("network '%s': %s is not a bridge name (%s)", name, path,
                                               len > NETWORKS_FILE_MAX ? "too long" : "binary");
                return -EINVAL;
        }
        g_auto(GStrv) lines = g_strsplit(contents, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_strstrip(*l);
                if (!**l || **l == '#')
                        continue;
                if (!bridge_is_valid(*l)) {
                        g_autofree char *q = text_quote(*l, -1);
                        *ret_problem = g_strdup_printf("network '%s': '%s' in %s is not a bridge name (1-15 "
                                                       "bytes, no '/', ':' or white space)",
                                                       name, q, path);
                        return -EINVAL;
                }
                *ret_bridge = g_strdup(*l);
                return 0;
        }
        *ret_problem = g_strdup_printf("network '%s': %s names no bridge; write the bridge's name in it",
                                       name, path);
        return -EINVAL;
}

int interface_lookup_bridge(const char *networks_dir, const DomainInterfaceDef *iface, char **ret_bridge,
                            char **ret_problem) {
        int r;

        if (g_strcmp0(iface->type, "bridge") == 0 && iface->source) {
                *ret_bridge = g_strdup(iface->source);
                return 1;
        }
        if (g_strcmp0(iface->type, "network") != 0)
                return 0;
        r = network_lookup_bridge(networks_dir, iface->source, ret_bridge, ret_problem);
        return r < 0 ? r : 1;
}
