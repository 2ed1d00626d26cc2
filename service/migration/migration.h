/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <glib.h>

#include "destination.h"
#include "dry-run.h"
#include "manager.h"
#include "peer.h"
#include "recover.h"
#include "request.h"
#include "source.h"

/*
 * Live migration, after libvirt's protocol v3, peer to peer: the source
 * daemon drives all five phases and the client only talks to the source.
 *
 *   source                               destination (Incoming.*)
 *   Begin    check domain + options,
 *            build the cookie
 *            ── connect ─────────────────▶ (same host? refused)
 *            ── Prepare(cookie) ─────────▶ check, start the guest waiting
 *                                          for the stream ◀── data URI
 *   (Migrate replies with the job here: the rest runs in the background)
 *   Perform  stream memory to the data URI
 *            ── Finish(success) ─────────▶ run the guest (or discard it)
 *   Confirm  stop the source guest (or run it again)
 *
 * Invariant: after a failure in any phase the guest runs on exactly one
 * host (the source), and the destination keeps nothing.
 *
 * Who does what (the files of service/migration/):
 *   request.c      Migrate's and DryRun's arguments, parsed once
 *   source.c       Begin, Perform, Confirm and the convergence policy;
 *                  it calls the destination's Prepare and Finish
 *   destination.c  Incoming.Prepare/CheckPrepare/Finish/Pause
 *   dry-run.c      DryRun: Begin's and Prepare's checks, nothing started
 *   cookie.c       what crosses between the hosts
 *   preflight.c    the checks both use (findings.c, host-facts.c), plus
 *                  the backend's own (its migrate_check op)
 */

/* vmigrated is stopping: cancel pre-copy migrations leaving (the guest
 * stays on this host), discard the ones arriving, refuse new ones. */
void migration_shutdown(Manager *m);
bool migration_any_running(Manager *m);
