/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "domain.h"
#include "job.h"
#include "options.h"
#include "protocol.h"

/*
 * The a{sv} cookies that Incoming.* calls and their replies carry: each has
 * "version" u, "host-uuid" s and "hostname" s of the host that made it;
 * Prepare's also the domain XML, the options, the backend's part and the
 * source's facts (host-facts.h).
 */


/* A cookie from the other host: an a{sv} of at most
 * MIGRATION_COOKIE_MAX_BYTES, of our version; VM_ERROR_INCOMPATIBLE
 * naming `what` otherwise. */
int cookie_check_size(GVariant *cookie, const char *what, GError **error);
/* A string member that must be there, of at most max bytes (borrowed),
 * or NULL with VM_ERROR_INCOMPATIBLE. */
const char *cookie_string(GVariant *cookie, const char *key, size_t max, const char *what, GError **error);
/* version, host-uuid and hostname of this host. */
void cookie_add_host(GVariantDict *dict, Manager *m);
/* The other host's "warnings" (as), shown on our job too; bounded, and
 * any with control characters dropped. */
void cookie_add_warnings_to_job(Job *j, GVariant *reply);
/* The Prepare cookie for migrating d with options (checked, defaulted):
 * destination-xml and destination-name applied, the backend's Begin. */
int cookie_build_prepare(Manager *m, Domain *d, const MigrateOptions *options, GVariant **ret, GError **error);
