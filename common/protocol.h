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

/* Option 'tunnelled' over ssh: vmigrate-tunnel writes this one byte to its
 * standard output once this host's vmigrated has connected it to the
 * arriving QEMU, before any byte of the stream. The source hands the
 * tunnel to its QEMU only then: bytes written into ssh earlier would sit
 * in ssh's buffers while the source's QEMU counted them as sent (and could
 * even switch to post-copy with nothing arrived). */
#define TUNNEL_READY_BYTE 0x06
