/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The emulated TPM of a guest (<tpm><backend type='emulator'/>): one swtpm
 * per running QEMU, on the domain's state directory
 * <state_dir>/qemu/swtpm/<uuid>/ (0700, vmigrate's own, like libvirt's).
 *
 * swtpm is started before QEMU on a control socket the daemon bound (as
 * QEMU's monitor: no window in which QEMU could connect to nothing), in a
 * session of its own so that it outlives a daemon restart with its QEMU,
 * and recorded (pid + start time) in QEMU's runtime directory so that a
 * restarted daemon finds it again. It never outlives its QEMU: it runs
 * with --terminate (it ends when QEMU's connection does), and the backend
 * kills it whenever QEMU is gone (exit, Destroy, a failed start or
 * incoming migration).
 *
 * The TPM's state (permanent and volatile) travels in QEMU's migration
 * stream (the tpm-emulator device carries swtpm's state blobs): a
 * destination only starts a fresh swtpm on its own directory, whose
 * contents the incoming state replaces.
 */
#include "qemu-backend.h"

/* The domain's TPM state directory. */
char *qemu_tpm_state_dir(const QemuBackend *b, const char *uuid);

/* swtpm's path (VMIGRATE_SWTPM, else "swtpm" in PATH), or NULL with *error
 * saying what to install. */
char *qemu_tpm_find_swtpm(GError **error);

/* Before QEMU starts: makes the state directory when it is missing (for
 * an incoming guest, remembered as this migration's, removed when the
 * guest does not stay: qemu_tpm_incoming_keep), and starts swtpm on
 * qd->paths->swtpm_socket. No-op for a domain without a TPM. */
int qemu_tpm_start(QemuDomain *qd, const DomainDef *def, bool incoming, GError **error);

/* QEMU is gone (or never started): swtpm goes too, and a state directory
 * made for an incoming guest that did not stay is removed. */
void qemu_tpm_stop(QemuDomain *qd);

/* The incoming guest stays here: its state directory is its own now. */
void qemu_tpm_incoming_keep(QemuDomain *qd);

/* The daemon goes away: stop watching swtpm (it keeps running with QEMU). */
void qemu_tpm_detach(QemuDomain *qd);

/* After a daemon restart, QEMU found again: its swtpm too. */
void qemu_tpm_reattach(QemuDomain *qd);

/* After a daemon restart, QEMU gone or discarded: its swtpm, if it is
 * still there, is killed. */
void qemu_tpm_kill_recorded(QemuBackend *b, const QemuPaths *paths, const char *uuid);

/* DryRun and Prepare on the destination: a guest with a TPM needs swtpm
 * there ("host.swtpm"). */
void qemu_tpm_preflight(const PreflightContext *ctx, Findings *out);

/* The domain is gone from this host (undefined, or a transient one that
 * stopped): its TPM state goes too. */
void qemu_tpm_remove_state(QemuBackend *b, const char *uuid);
