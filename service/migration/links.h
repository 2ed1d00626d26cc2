/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <glib.h>

/* The link to another host as the last migration there measured it, kept
 * in <state_dir>/links/<host-uuid>: DryRun predicts with it when the
 * caller gives no 'bandwidth', and starts nothing on the destination to
 * learn it. */
typedef struct LinkRecord {
        uint64_t bandwidth;     /* bytes per second: the migration's average pre-copy throughput */
        int64_t measured_unix;  /* when (seconds since the epoch) */
        char *destination;      /* the URI the migration went to, for the message */
} LinkRecord;

void link_record_clear(LinkRecord *r);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LinkRecord, link_record_clear)

/* A record older than this says little about the link today. */
#define LINK_RECORD_MAX_AGE_SECONDS (7 * 24 * 3600)

int link_record_save(const char *state_dir, const char *host_uuid, const char *destination, uint64_t bandwidth,
                     int64_t now_unix, GError **error);
/* -ENOENT when there is none, or none younger than LINK_RECORD_MAX_AGE_SECONDS. */
int link_record_load(const char *state_dir, const char *host_uuid, int64_t now_unix, LinkRecord *ret,
                     GError **error);
