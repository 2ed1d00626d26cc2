/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <glib.h>

#include "domain-xml.h"

/*
 * Where a running domain keeps its files. <qemu_dir> is <runtime_dir>/qemu.
 * The per-domain directory <qemu_dir>/<uuid>/ exists while QEMU runs and is
 * removed when it stops; the logs in <qemu_dir>/log/ are kept (until the
 * next start of the same domain, or reboot) so that a crash can be read.
 */
typedef struct QemuPaths {
        char *dir;          /* <qemu_dir>/<uuid> */
        char *qmp_socket;   /* the daemon binds it and hands QEMU the listening fd */
        char *pid;          /* "<pid> <starttime>\n" */
        char *live_xml;     /* the running definition */
        char *reason;       /* the last state reason, for re-attach */
        char *incoming;     /* exists while an incoming guest has not been settled by Finish */
        char *stream_socket; /* option 'tunnelled': QEMU listens there for the stream (the daemon connects) */
        char *nbd_socket;    /* option 'tunnelled' with copy-storage: QEMU's NBD server (the daemon connects) */
        char *postcopy;     /* "out" or "in" while in post-copy: a restarted daemon picks it up */
        char *swtpm_socket; /* <tpm>: swtpm's control socket (the daemon binds it, QEMU connects) */
        char *swtpm_pid;    /* <tpm>: "<pid> <starttime>\n" of the guest's swtpm (qemu-backend.h) */
        char *swtpm_log;    /* <tpm>: swtpm's log: <log_dir>/<uuid>-swtpm.log */
        char *log_dir;      /* <qemu_dir>/log */
        char *log;          /* QEMU's stdout/stderr: <log_dir>/<uuid>.log */
} QemuPaths;

QemuPaths *qemu_paths_new(const char *qemu_dir, const char *uuid);
void qemu_paths_free(QemuPaths *paths);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuPaths, qemu_paths_free)

/* Serial port N: a unix socket to talk to it and a log of everything it said. */
char *qemu_paths_serial_socket(const QemuPaths *paths, unsigned port);
char *qemu_paths_serial_log(const QemuPaths *paths, unsigned port);

typedef struct QemuCommandOptions {
        const char *binary;
        bool kvm;        /* -accel kvm, else tcg */
        bool incoming;   /* -incoming defer: the destination of a migration */
        int qmp_fd;      /* listening socket, as the child will see it */
        /* Per <interface>, in order: the tap device's fd as the child will
         * see it for type 'bridge' (-1 for other types). NULL: numbers
         * that only make the command line complete (validation). */
        const int *tap_fds;
        /* A UEFI guest's NVRAM file (qemu-firmware.h); NULL: a placeholder
         * (validation). */
        const char *nvram;
} QemuCommandOptions;

/*
 * The QEMU command line for def. Checks what the XML parser cannot:
 * what this backend supports (interface types, disk buses, memory in whole
 * MiB), and says which element is not supported and what to do.
 * The guest starts paused (-S): the backend configures it over QMP, then
 * sends "cont".
 */
int qemu_build_argv(const DomainDef *def, const QemuPaths *paths, const QemuCommandOptions *options,
                    GStrv *ret_argv, GError **error);
