/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <glib.h>

#include "domain.h"
#include "request.h"

/* Domain.DryRun: Begin's checks here, CheckPrepare's on the destination;
 * nothing is started, bound, created or reserved on either host. findings
 * is a floating a(sss). Takes req; its parse errors become findings. */
typedef void (*DryRunDone)(bool ok, GVariant *findings, void *userdata);
int migration_dry_run(Manager *m, Domain *d, MigrationRequest *req, DryRunDone done, void *userdata,
                      GError **error);
