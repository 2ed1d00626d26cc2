/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* What a backend reports about a migration in progress. Bytes, bytes per
 * second and milliseconds. */
typedef struct MigrationStats {
        uint64_t data_total;
        uint64_t data_processed;
        uint64_t data_remaining;
        uint64_t iteration;      /* memory passes started */
        uint64_t dirty_rate;     /* bytes/s the guest dirties */
        uint64_t bandwidth;      /* bytes/s measured on the stream */
        uint64_t expected_downtime_ms;
        uint64_t downtime_ms;    /* known at the end */
        uint64_t setup_ms;
        uint64_t postcopy_requests;
        bool postcopy_active; /* switched to post-copy */
        /* Destination, after a post-copy: how long the guest's vCPUs waited
         * in all for pages still on the source (overlapping waits counted
         * once), when the hypervisor measured it. */
        bool has_postcopy_blocktime;
        uint64_t postcopy_blocktime_ms;
        /* option 'copy-storage': the disks, copied before the memory */
        uint64_t disk_total;
        uint64_t disk_processed;
        uint64_t disk_remaining;
} MigrationStats;
