/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "domain-xml.h"
#include "options.h"
#include "qmp.h"

/*
 * Option 'copy-storage' (libvirt's NBD storage migration, done with
 * -blockdev node names):
 *
 *   source Begin    "copy-disks" in the cookie: each copied disk's target
 *                   dev, format and virtual size; for 'incremental',
 *                   "copy-backing": each one's backing file (absolute path
 *                   as the source resolves it) and its format
 *   dest Prepare    qemu-img creates each image (never over an existing
 *                   file; 'incremental': a qcow2 on the backing file that
 *                   must be here already), or, with option 'reuse-images',
 *                   takes the file or block device there as it is; QEMU
 *                   starts on them, nbd-server-start on the data address
 *                   and block-export-add (writable) per disk; the reply
 *                   says where ("nbd-host", "nbd-port")
 *   source Perform  blockdev-add of an NBD client per disk, blockdev-mirror
 *                   onto it (sync full; 'incremental': top, the backing
 *                   files are there); once every mirror is ready the
 *                   memory goes; when it has, block-job-cancel on the ready
 *                   mirrors completes them (the last writes copied, no
 *                   pivot) and the NBD clients go
 *   dest Finish     nbd-server-stop, then the guest runs on its own images
 *
 * Option 'reuse-images' is safe because a full mirror writes every block
 * of the target, zeroes included, so nothing of what the reused image
 * held shows through; a top-only mirror ('incremental' of a disk with a
 * backing file) would leave it, and is refused onto an existing image.
 * A failure before the switch-over cancels the mirrors (the source's disks
 * are untouched) and deletes exactly the images this migration created.
 */
typedef struct QemuStorage QemuStorage;

/* The disks that move with copy-storage (as libvirt: not read-only media,
 * not disks shared on purpose). */
bool qemu_disk_is_copied(const DomainDiskDef *disk, const MigrateOptions *options);

/* Source, Begin: adds "copy-disks" a(sst) (target dev, format, bytes) and
 * "copy-backing" for the disks def (the definition the destination gets:
 * destination-xml may have moved the files) copies, measured from the
 * images source_def (the domain as it runs here) has for them. */
int qemu_storage_begin(const DomainDef *source_def, const DomainDef *def, const MigrateOptions *options,
                       GVariantDict *cookie, GError **error);

/* ---- destination ---- */

/* What Prepare will create: the copied disks of def (the destination's
 * definition: its paths), sized as the source said. Refuses a target that
 * exists, a format it cannot create, a disk the source did not describe. */
int qemu_storage_new_incoming(sd_event *event, const DomainDef *def, const MigrateOptions *options,
                              GVariant *source_cookie, QemuStorage **ret, GError **error);
/* Creates the images, one qemu-img at a time; done from the event loop. */
int qemu_storage_create(QemuStorage *s, BackendDone done, void *userdata, GError **error);
/* nbd-server-start on host:port and one writable export per disk; every
 * reply goes to done (QMP order: the first error is the one). With TLS
 * (tls_creds not NULL) the server takes only clients tls_authz lets in. */
int qemu_storage_export(QemuStorage *s, Qmp *qmp, const char *host, uint16_t port, const char *tls_creds,
                        const char *tls_authz, QmpReplyFn done, void *userdata, GError **error);
/* For Prepare's reply: "nbd-host" s (host: the name the source connects
 * to, the data URI's, which a TLS certificate names), "nbd-port" q. */
void qemu_storage_add_reply(QemuStorage *s, const char *host, GVariantDict *reply);

/* Option 'tunnelled': the NBD server on unix socket path instead; the
 * reply asks the core for one tunnel per disk to it ("tunnel-sockets",
 * "nbd-<dev>" -> path; the path stays on this host) and says so
 * ("nbd-tunnelled" b). */
int qemu_storage_export_unix(QemuStorage *s, Qmp *qmp, const char *path, QmpReplyFn done, void *userdata,
                             GError **error);
void qemu_storage_add_tunnel_reply(QemuStorage *s, const char *path, GVariantDict *reply);
/* Finish: the exports go (before the guest runs). */
int qemu_storage_unexport(QemuStorage *s, Qmp *qmp, QmpReplyFn done, void *userdata, GError **error);
/* The guest stays here: its images are kept. */
void qemu_storage_keep(QemuStorage *s);

/* ---- source ---- */

/* The mirrors to start, from def and the destination's reply; with
 * 'tunnelled', tunnel_fds has a connection to the NBD server per disk
 * ("nbd-<dev>"), duplicated here until the mirrors take them. */
int qemu_storage_new_outgoing(sd_event *event, const DomainDef *def, const MigrateOptions *options,
                              GVariant *backend_reply, GHashTable *tunnel_fds, QemuStorage **ret, GError **error);
/* blockdev-add + blockdev-mirror per disk; with TLS (tls_creds not NULL)
 * the server's certificate must name tls_hostname. */
int qemu_storage_mirror(QemuStorage *s, Qmp *qmp, const char *tls_creds, const char *tls_hostname, QmpReplyFn done,
                        void *userdata, GError **error);
/* A query-block-jobs answer: the mirrors' progress. Returns true once
 * every mirror is ready (source and target in sync, writes mirrored). */
bool qemu_storage_update(QemuStorage *s, JsonNode *jobs, uint64_t *ret_total, uint64_t *ret_done);
/* After the memory: block-job-cancel of the ready mirrors (which completes
 * them without a pivot), then blockdev-del of the NBD clients. done once
 * every job has ended (BLOCK_JOB_COMPLETED, qemu_storage_job_event). A
 * call while one is under way changes nothing: the first one's done comes. */
int qemu_storage_complete(QemuStorage *s, Qmp *qmp, BackendDone done, void *userdata, GError **error);
/* Any BLOCK_JOB_* event of the domain, with or without a migration: when
 * one of our mirrors has ended, however, its NBD client goes. A mirror
 * holds it until then, and its end may come after the migration is over. */
void qemu_storage_job_ended(Qmp *qmp, const char *event, JsonObject *data);
/* A failure: the mirrors are cancelled at once (force), the clients go. */
void qemu_storage_abort(QemuStorage *s, Qmp *qmp);
/* A BLOCK_JOB_COMPLETED or BLOCK_JOB_CANCELLED event; true if it was ours. */
bool qemu_storage_job_event(QemuStorage *s, const char *event, JsonObject *data);

/* Deletes the images created here unless kept; cancels a qemu-img. */
QemuStorage *qemu_storage_free(QemuStorage *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuStorage, qemu_storage_free)
