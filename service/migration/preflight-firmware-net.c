/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-flight checks of UEFI firmware and network disks on a migration's
 * destination (preflight-firmware-net.h).
 *
 * Network disks are checked by connecting to their servers: a dry run
 * says "the NBD server is unreachable from host-b" before a migration
 * starts a guest there that cannot read its disk. The connects are
 * non-blocking and run together under one deadline (2 s), so that a
 * filtered address costs the event loop at most that once; names are
 * resolved with the system resolver (usually /etc/hosts or a local cache
 * for storage servers). A connect proves the server listens, not that it
 * serves this export or lets this host in: the start of QEMU on the
 * destination says the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "domain-xml-netdisk.h"
#include "net.h"
#include "preflight-firmware-net.h"

#define CEPH_CONF "/etc/ceph/ceph.conf"

void preflight_check_nvram(Findings *out, FindingSeverity severity, const DomainDef *def) {
        if (def->os_nvram) {
                g_autofree char *dir = g_path_get_dirname(def->os_nvram);
                struct stat st;
                if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                        findings_add(
                                out, severity, "boot.nvram",
                                "directory %s for the NVRAM %s is missing here (the file comes with the "
                                "guest, its directory must exist); create it, or remove the path from "
                                "<nvram> to let vmigrate keep the file in its state directory",
                                dir, def->os_nvram);
                else if (access(dir, W_OK) < 0)
                        findings_add(out, severity, "boot.nvram",
                                     "directory %s for the NVRAM %s is not writable "
                                     "here: %s",
                                     dir, def->os_nvram, g_strerror(errno));
        }
        if (def->os_nvram_template && access(def->os_nvram_template, R_OK) < 0)
                findings_add(
                        out, FINDING_WARNING, "boot.nvram",
                        "NVRAM template %s is not readable here (%s): the guest's NVRAM comes with it, but "
                        "a fresh one (a new domain from this definition) could not be made; install it "
                        "(package ovmf)",
                        def->os_nvram_template, g_strerror(errno));
}

/* Offline migration moves a definition and nothing of the backend's: the
 * NVRAM would stay here and the guest boot there with a fresh one (its
 * boot entries and secure boot keys gone), which is dropping what the user
 * has without saying so. */
void preflight_check_offline_nvram(Findings *out, const DomainDef *def) {
        if (!domain_def_has_nvram(def))
                return;
        findings_add_code(
                out, FINDING_ERROR, VM_ERROR_UNSUPPORTED_OPTION, "boot.nvram",
                "option 'offline' is not supported for UEFI domain '%s': only its definition would move, "
                "and its NVRAM (boot entries, secure boot keys) would stay here; start it and migrate it "
                "live, or copy the NVRAM file yourself and define the domain there",
                def->name);
}

/* The same for a TPM: its state (swtpm's directory) would stay here and
 * the guest would find a blank TPM there (its sealed keys, e.g. a disk
 * encryption key bound to PCRs, gone). */
void preflight_check_offline_tpm(Findings *out, const DomainDef *def) {
        if (!domain_def_has_tpm(def))
                return;
        findings_add_code(
                out, FINDING_ERROR, VM_ERROR_UNSUPPORTED_OPTION, "tpm.state",
                "option 'offline' is not supported for domain '%s' with a TPM: only its definition would "
                "move, "
                "and its TPM state (keys sealed by the guest) would stay here; start it and migrate it live",
                def->name);
}

typedef struct Probe {
        const DomainDiskDef *disk;
        char *what; /* "disk vdb (nbd://…)" */
        int fd;
        int error;     /* 0: connected (or pending while fd >= 0) */
        int gai_error; /* the name did not resolve (getaddrinfo's code) */
} Probe;

static void probe_clear(Probe *p) {
        if (p->fd >= 0)
                close(p->fd);
        g_free(p->what);
}

static int connect_nonblocking(const struct sockaddr *sa, socklen_t len, int *ret_fd) {
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* Starts a connect to the disk's (first) server; p->error says why not. */
static void probe_start(Probe *p, const DomainDiskHost *h, const char *protocol) {
        p->fd = -1;
        if (h->socket) {
                struct sockaddr_un sun = { .sun_family = AF_UNIX };
                if (strlen(h->socket) >= sizeof(sun.sun_path)) {
                        p->error = ENAMETOOLONG;
                        return;
                }
                strcpy(sun.sun_path, h->socket);
                p->error = -connect_nonblocking((struct sockaddr *) &sun, sizeof(sun), &p->fd);
                return;
        }
        g_autofree char *port =
                g_strdup_printf("%u", h->port ? h->port : disk_network_default_port(protocol));
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
        int r = getaddrinfo(h->name, port, &hints, &ai);
        if (r != 0) {
                if (r == EAI_SYSTEM)
                        p->error = errno;
                else
                        p->gai_error = r;
                return;
        }
        p->error = -connect_nonblocking(ai->ai_addr, ai->ai_addrlen, &p->fd);
        freeaddrinfo(ai);
}

void preflight_check_network_disks(Findings *out, FindingSeverity severity, const DomainDef *def,
                                   int timeout_ms) {
        g_autoptr(GArray) probes = g_array_new(false, true, sizeof(Probe));
        int64_t deadline;

        g_array_set_clear_func(probes, (GDestroyNotify) probe_clear);
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                g_autofree char *uri = NULL;

                if (!domain_disk_is_network(disk))
                        continue;
                uri = disk_network_describe(disk);
                if (!disk->source_hosts || disk->source_hosts->len == 0) {
                        /* rbd: the monitors come from ceph's configuration. */
                        if (access(CEPH_CONF, R_OK) < 0)
                                findings_add(out, severity, "storage.network",
                                             "disk %s (%s) names no monitor and %s is missing here; install "
                                             "ceph's configuration and keyring, or give <host> elements",
                                             disk->target_dev, uri, CEPH_CONF);
                        continue;
                }
                Probe p = { .disk = disk, .fd = -1 };
                p.what = g_strdup_printf("disk %s (%s)", disk->target_dev, uri);
                /* rbd: any one monitor will do; the first is tried. */
                probe_start(&p, disk->source_hosts->pdata[0], disk->protocol);
                if (p.gai_error) {
                        const DomainDiskHost *h = disk->source_hosts->pdata[0];
                        findings_add(out, severity, "storage.network",
                                     "%s cannot be reached from here: host name '%s' does not resolve (%s); "
                                     "the destination must reach the disk's server",
                                     p.what, h->name, gai_strerror(p.gai_error));
                        probe_clear(&p);
                        continue;
                }
                g_array_append_val(probes, p);
        }

        deadline = g_get_monotonic_time() +
                (timeout_ms > 0 ? timeout_ms : PREFLIGHT_NETDISK_TIMEOUT_MS) * 1000LL;
        for (;;) {
                g_autofree struct pollfd *fds = g_new0(struct pollfd, probes->len + 1);
                g_autofree guint *index = g_new0(guint, probes->len + 1);
                nfds_t n = 0;

                for (guint i = 0; i < probes->len; i++) {
                        Probe *p = &g_array_index(probes, Probe, i);
                        if (p->fd < 0 || p->error)
                                continue;
                        fds[n].fd = p->fd;
                        fds[n].events = POLLOUT;
                        index[n++] = i;
                }
                int64_t left = (deadline - g_get_monotonic_time()) / 1000;
                if (n == 0 || left <= 0)
                        break;
                int r = poll(fds, n, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                for (nfds_t k = 0; k < n; k++) {
                        Probe *p = &g_array_index(probes, Probe, index[k]);
                        int err = 0;
                        socklen_t len = sizeof(err);
                        if (!fds[k].revents)
                                continue;
                        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                                err = errno;
                        close(p->fd);
                        p->fd = -1;
                        p->error = err;
                }
        }
        for (guint i = 0; i < probes->len; i++) {
                Probe *p = &g_array_index(probes, Probe, i);
                if (p->fd >= 0)
                        findings_add(
                                out, severity, "storage.network",
                                "%s cannot be reached from here: no answer within %d ms; the destination "
                                "must reach the disk's server (routes, firewall)",
                                p->what, timeout_ms > 0 ? timeout_ms : PREFLIGHT_NETDISK_TIMEOUT_MS);
                else if (p->error)
                        findings_add(out, severity, "storage.network",
                                     "%s cannot be reached from here: %s; the destination must reach the "
                                     "disk's server (is it running, and open to this host?)",
                                     p->what, g_strerror(p->error));
        }
}
