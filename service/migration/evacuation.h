/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "domain.h"
#include "job.h"
#include "manager.h"

/*
 * Manager.Evacuate: every running domain of this host (and, with option
 * 'inactive', every persistent shut-off one, offline) leaves for one of
 * the given destinations, a few at a time, each as a normal migration
 * with the caller's options.
 *
 * Placement: for each domain in turn, the destinations are tried in the
 * order of how few of this evacuation's domains each has taken so far
 * (then the caller's order), with the same checks as Domain.DryRun (no
 * dirty-rate measurement): the first that passes gets it. A destination
 * that refuses only because of its incoming limit (or this host's
 * outgoing limit) is busy, not unfit: the domain waits for a migration to
 * end and is placed again. A domain no destination can take is reported
 * with every destination's reasons and the others go on. Each
 * destination's Prepare checks again (memory included, counting the
 * guests still arriving there), so a check that passed a moment ago
 * cannot overfill a host; a migration refused that way (it ended before
 * any memory went) is tried on the next destination.
 *
 * Cancel stops placing, cancels the children still copying (their guests
 * stay here) and lets the ones already in post-copy finish (cancelling
 * one would pause its guest on both hosts).
 */

typedef enum EvacuationOrder {
        EVACUATION_ORDER_SMALLEST_FIRST, /* by memory, then name */
        EVACUATION_ORDER_LARGEST_FIRST,
        EVACUATION_ORDER_PRIORITY, /* <vmigrate:priority>, higher first, then smallest */
        _EVACUATION_ORDER_MAX,
} EvacuationOrder;

typedef enum EvacuationItemState {
        EVACUATION_ITEM_PENDING,
        EVACUATION_ITEM_PLACING,   /* checking destinations */
        EVACUATION_ITEM_MIGRATING, /* its job runs */
        EVACUATION_ITEM_COMPLETED,
        EVACUATION_ITEM_FAILED,     /* the migration failed */
        EVACUATION_ITEM_NOT_PLACED, /* no destination could take it */
        EVACUATION_ITEM_CANCELLED,  /* stayed here: the evacuation was cancelled */
        _EVACUATION_ITEM_STATE_MAX,
} EvacuationItemState;

typedef struct EvacuationOptions {
        EvacuationOrder order;
        unsigned parallel; /* 0: the host's MaxOutgoingMigrations */
        bool inactive;
        bool maintenance;
        GVariant *migrate_options; /* a{sv}: the rest, for each child's Migrate */
} EvacuationOptions;

void evacuation_options_clear(EvacuationOptions *o);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EvacuationOptions, evacuation_options_clear)

/* Splits Evacuate's a{sv}: order (s), parallel (u), inactive (b) and
 * maintenance (b) are the evacuation's, the rest are Migrate options,
 * checked here against every destination URI (the errors of Migrate:
 * InvalidOption, InvalidDestination, ...). At least one destination, at
 * most EVACUATION_DESTINATIONS_MAX, no duplicates. */
#define EVACUATION_DESTINATIONS_MAX 64
#define EVACUATION_PARALLEL_MAX 64
int evacuation_options_parse(const char *const *destinations, GVariant *options, EvacuationOptions *ret,
                             GStrv *ret_canonical, GError **error);

typedef struct EvacuationItem {
        Domain *domain; /* reference */
        char *name, *uuid;
        uint64_t memory_bytes;
        bool offline;
        EvacuationItemState state;
        char *destination; /* where it went (or is going), canonical; NULL before */
        char *message;     /* why it failed or was not placed; NULL otherwise */
        Job *job;          /* reference, once started */
        /* Placement in progress: the destinations in the order tried, the
         * next one, and what each said. */
        GPtrArray *candidates; /* char*, borrowed from the evacuation */
        unsigned next_candidate;
        GString *refusals;
        bool busy_somewhere; /* a destination was only at its limit */
        bool deferred;       /* waits for a migration to end */
        uint64_t deferred_since_usec;
        struct Evacuation *evacuation; /* borrowed */
} EvacuationItem;

typedef struct Evacuation Evacuation;

/* How the bus layer hears of it: changed for the counts, the jobs and the
 * results; finished once, when every item is final. */
typedef struct EvacuationObserver {
        void (*changed)(Evacuation *ev, void *userdata);
        void (*finished)(Evacuation *ev, void *userdata);
} EvacuationObserver;

struct Evacuation {
        unsigned n_ref;
        Manager *manager;
        uint64_t id;
        GStrv destinations; /* canonical */
        EvacuationOptions options;
        unsigned parallel; /* in effect */
        GPtrArray *items;  /* EvacuationItem*, in the order they leave */
        unsigned active;   /* placing or migrating */
        bool cancelled;
        bool finished;
        uint64_t started_usec, ended_usec; /* CLOCK_MONOTONIC */
        sd_event_source *retry;
        const EvacuationObserver *observer;
        void *observer_data;
};

/* Starts an evacuation of m's domains (destinations and options taken,
 * also on failure): maintenance first
 * when asked (its error fails the call, nothing started), then the first
 * children. With nothing to move it is finished at once. who is logged. */
int evacuation_start(Manager *m, uint64_t id, GStrv destinations, EvacuationOptions *options, const char *who,
                     const EvacuationObserver *observer, void *userdata, Evacuation **ret, GError **error);
Evacuation *evacuation_ref(Evacuation *ev);
Evacuation *evacuation_unref(Evacuation *ev);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Evacuation, evacuation_unref)

/* Cancel(): VM_ERROR_INVALID_STATE once finished. */
int evacuation_cancel(Evacuation *ev, GError **error);

const char *evacuation_item_state_to_string(EvacuationItemState s);
const char *evacuation_order_to_string(EvacuationOrder o);
/* "running", then "completed" (every domain moved), "failed" (some did
 * not) or "cancelled". */
const char *evacuation_state(const Evacuation *ev);

typedef struct EvacuationCounts {
        unsigned total, done, failed, remaining;
} EvacuationCounts;
void evacuation_counts(const Evacuation *ev, EvacuationCounts *ret);
/* (done + failed + the running children's progress) / total; 1 when empty. */
double evacuation_progress(const Evacuation *ev);
/* aa{sv}, floating: per domain name, uuid, state, destination, message,
 * job-id (t, 0 = none), offline (b). */
GVariant *evacuation_results(const Evacuation *ev);
