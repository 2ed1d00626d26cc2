/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "net.h"

int net_try_bind(const char *address, uint16_t port) {
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(port) };
        bool v6 = strchr(address, ':') != NULL;
        int fd, one = 1, r = 0;

        if (v6 ? inet_pton(AF_INET6, address, &sa6.sin6_addr) != 1 : inet_pton(AF_INET, address, &sa4.sin_addr) != 1)
                return -EINVAL;
        fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, v6 ? (struct sockaddr *) &sa6 : (struct sockaddr *) &sa4, v6 ? sizeof(sa6) : sizeof(sa4)) < 0)
                r = -errno;
        close(fd);
        return r;
}

char *net_own_address(const char *hosts_file, const char *hostname) {
        g_autofree char *contents = NULL;
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents(hosts_file, &contents, NULL, NULL))
                return NULL;
        lines = g_strsplit(contents, "\n", -1);
        for (char **line = lines; *line; line++) {
                char *hash = strchr(*line, '#');
                if (hash)
                        *hash = '\0';
                g_auto(GStrv) words = g_strsplit_set(g_strstrip(*line), " \t", -1);
                const char *address = words[0];
                bool named = false;

                for (char **w = words + (address ? 1 : 0); address && *w; w++)
                        named = named || g_ascii_strcasecmp(*w, hostname) == 0;
                if (!named || g_str_has_prefix(address, "127.") || g_str_equal(address, "::1") ||
                    net_try_bind(address, 0) < 0)
                        continue;
                return g_strdup(address);
        }
        return NULL;
}

int net_connect_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (!path || strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}
