/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "domain-xml.h"
#include "errors.h"
#include "findings.h"
#include "policy.h"
#include "host-facts.h"
#include "backend.h"
#include "options.h"

/*
 * Pre-flight checks of a migration: what Domain.DryRun reports and what
 * the real Begin (source) and Prepare (destination) refuse on. One code
 * path: the dry run and the migration call the same functions, the dry
 * run only stops before anything is started or reserved.
 *
 * Every check has a stable id (the table at the top of preflight.c) and
 * says, in a message that starts with the host's name, which thing is
 * wrong and what to do. A dry run is best-effort: resources can change
 * between the check and the migration.
 */

typedef struct Manager Manager;
typedef struct Domain Domain;

/* ---- checks ---- */

/*
 * Destination: can this host receive def with options? Run by
 * Incoming.Prepare (refusing on any error) and by the dry run's
 * Incoming.CheckPrepare. Touches nothing: no file created, no port kept
 * bound, no process started, nothing reserved. options as the source sent
 * them (checked against this host's backend here: options.valid).
 */
void preflight_destination(Manager *m, const DomainDef *def, const MigrateOptions *options,
                           const char *source_host_uuid, const SourceFacts *source, Findings *out);
void preflight_destination_with_facts(Manager *m, const HostFacts *facts, const DomainDef *def,
                                      const MigrateOptions *options, const char *source_host_uuid,
                                      const SourceFacts *source, Findings *out);

/*
 * Source: may d leave with options (parsed, not yet checked)? Domain
 * state, options against the backend (options.valid, with the errors'
 * own codes), destination-xml, the outgoing limit, then the backend's own
 * checks on the defaulted options (for qemu: this QEMU's defects and
 * features). Run by Migrate's Begin and by DryRun.
 */
/* The convergence policy a live migration of d with options o runs
 * (policy.h: policy_apply, with the policies of the manager's
 * --policies-dir read now), the options adjusted to it; NULL for an
 * offline migration or a post-copy recovery, which have none. */
int preflight_policy(Domain *d, MigrateOptions *o, Policy **ret, GError **error);

void preflight_source(Domain *d, const MigrateOptions *options, Findings *out);

/*
 * Option 'tls' left out: the stream is encrypted with TLS when both hosts
 * can (README "TLS"), unless it is tunnelled or offline. On the source
 * (source NULL): its backend for def supports 'tls' and this host's
 * credentials are usable, so the Prepare cookie carries its CA and name.
 * On the destination: likewise here, the source sent its CA and name, the
 * CAs are the same, and this host's certificate names the host the source
 * will connect to. *ret_why (may be NULL) says why not.
 */
bool preflight_tls_by_default(Manager *m, const DomainDef *def, const MigrateOptions *o, const SourceFacts *source,
                              char **ret_why);
void preflight_source_with_facts(Domain *d, const HostFacts *facts, const MigrateOptions *options,
                                 Findings *out);

/* DryRun adds this info finding (dry-run.best-effort) to its reply. */
void preflight_dry_run_note(Findings *f);

/* Checks of this host's resources that any backend running real guests
 * wants on the destination: memory, vCPUs, disks and storage space, boot
 * files, bridges. Offline migration turns the file checks into warnings
 * (nothing runs yet) and skips memory. */
void preflight_host_resources(const PreflightContext *ctx, Findings *out);

/* A free port for the data stream, and with disk_copy one more for the
 * disk copy (NBD): bind-tested and closed at once. listen_address NULL =
 * any; port 0 = any in the facts' range (else that port, from option
 * 'data-uri'; the disk copy's is still one of the range). */
/* Destination: each <graphics> listening on an address can have its port
 * (fixed, or one of the display range) here (network.display-port). */
void preflight_display_ports(const HostFacts *facts, const DomainDef *def, Findings *out);
void preflight_data_port(const HostFacts *facts, const char *listen_address, uint16_t port, bool disk_copy,
                         Findings *out);
