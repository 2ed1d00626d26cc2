/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "manager.h"

/*
 * A migration whose source vmigrated died after the stream was copied but
 * before Confirm. The guest then sits paused here (QEMU's postmigrate) while
 * the destination may already run it: running it here again would make two
 * of it. So the source keeps a record, written before it sends
 * Finish(success) and removed when the migration ends, of where it sent
 * the guest: <runtime>/unconfirmed/<uuid>, the destination's URI.
 *
 * After a restart the backend finds such a guest and reports it paused with
 * StateReason migration-unconfirmed. migration_recover_unconfirmed() then
 * settles each in a job of its own (phase confirm): without a record Finish
 * was never sent, so the destination discards its half and the guest runs
 * here again; with one, the destination is asked (Incoming.Arrival) and
 * the guest stops here if it runs there, runs here again if it does not.
 * A destination that cannot say leaves the guest paused for the admin, the
 * record kept for the next start (as libvirt leaves a migration whose
 * Finish it cannot know the result of).
 */

/* What a destination did with a guest it was sent (Incoming.Arrival). */
typedef enum ArrivalAnswer {
        ARRIVAL_RUNS,    /* it runs there: stop the copy here */
        ARRIVAL_ABSENT,  /* it never ran there: run the copy here again */
        ARRIVAL_UNKNOWN, /* no answer, or still arriving, for a minute */
} ArrivalAnswer;

/* why: for ARRIVAL_UNKNOWN, the last reason the destination could not say. */
typedef void (*ArrivalDone)(ArrivalAnswer answer, const char *why, void *userdata);
typedef struct ArrivalQuery ArrivalQuery;

/* Asks destination (again every 2 s, for a minute, while it cannot say)
 * whether it runs guest uuid. switched: whether the stream here switched
 * to post-copy (a destination restarted since, which holds the guest
 * undecided, runs it or discards it by that). done comes once, from the
 * loop, unless the query is cancelled first. */
int arrival_query_start(Manager *m, const Destination *destination, const char *uuid, bool switched,
                        ArrivalDone done, void *userdata, ArrivalQuery **ret, GError **error);
/* No callback after this. NULL is allowed. */
void arrival_query_cancel(ArrivalQuery *q);
/* The "arrival" of an Incoming.Arrival reply (borrowed from reply), or
 * NULL with error set when the reply is malformed. */
const char *arrival_reply_value(GVariant *reply, GError **error);

/* Before Finish(success): where the guest is sent. */
int unconfirmed_record_save(Manager *m, const char *uuid, const char *destination, GError **error);
/* The migration ended, whichever way: nothing left to settle. */
void unconfirmed_record_remove(Manager *m, const char *uuid);
/* Once the domains found at start have settled. */
void migration_recover_unconfirmed(Manager *m);
/* vmigrated stops: the jobs end (the records stay for the next start). */
void migration_recover_shutdown(Manager *m);
/* At exit, once the loop has stopped: frees what still waited for a
 * callback. */
void migration_recover_free(Manager *m);
