/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What every org.vmigrate.Migrate1.Incoming cookie must be, for every
 * program that speaks it: vmigrated on both hosts, and vmigrate-tunnel.
 * Each cookie carries "version" u = MIGRATION_COOKIE_VERSION.
 */
#define MIGRATION_COOKIE_VERSION 1
#define MIGRATION_COOKIE_MAX_BYTES (1024 * 1024)
/* Option 'tunnelled': at most this many connections besides the stream's
 * (Prepare's "tunnel-tokens": one per disk a copy-storage mirrors). */
#define MIGRATION_TUNNELS_MAX 64
