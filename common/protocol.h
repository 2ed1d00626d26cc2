/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What every org.vmigrate.Migrate1.Incoming cookie must be, for every
 * program that speaks it: vmigrated on both hosts, and vmigrate-tunnel.
 * Each cookie carries "version" u = MIGRATION_COOKIE_VERSION.
 */
#define MIGRATION_COOKIE_VERSION 1
#define MIGRATION_COOKIE_MAX_BYTES (1024 * 1024)
