/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Manager.Evacuate (evacuation.h): a queue of the host's domains, a few
 * placed and migrating at once. Placement is a chain of asynchronous dry
 * runs over the destinations; each child is migration_start() as Migrate
 * calls it. The evacuation holds a reference for every callback still to
 * come, so that it outlives its children whatever the bus layer does.
 */
#include <errno.h>

#include "dry-run.h"
#include "errors.h"
#include "evacuation.h"
#include "log.h"
#include "migration.h"
#include "source.h"

/* A destination busy with other arrivals: look again after this long
 * when no child of ours is running (one ending looks again at once). */
#define EVACUATION_RETRY_USEC (2 * (uint64_t) G_USEC_PER_SEC)
/* A domain that found every destination busy for this long is reported
 * as not placed rather than waited for without end. */
#define EVACUATION_DEFER_MAX_USEC (600 * (uint64_t) G_USEC_PER_SEC)

static const char *const order_table[_EVACUATION_ORDER_MAX] = {
        [EVACUATION_ORDER_SMALLEST_FIRST] = "smallest-first",
        [EVACUATION_ORDER_LARGEST_FIRST] = "largest-first",
        [EVACUATION_ORDER_PRIORITY] = "priority",
};

static const char *const item_state_table[_EVACUATION_ITEM_STATE_MAX] = {
        [EVACUATION_ITEM_PENDING] = "pending",       [EVACUATION_ITEM_PLACING] = "placing",
        [EVACUATION_ITEM_MIGRATING] = "migrating",   [EVACUATION_ITEM_COMPLETED] = "completed",
        [EVACUATION_ITEM_FAILED] = "failed",         [EVACUATION_ITEM_NOT_PLACED] = "not-placed",
        [EVACUATION_ITEM_CANCELLED] = "cancelled",
};

const char *evacuation_order_to_string(EvacuationOrder o) {
        return (unsigned) o < _EVACUATION_ORDER_MAX ? order_table[o] : NULL;
}

const char *evacuation_item_state_to_string(EvacuationItemState s) {
        return (unsigned) s < _EVACUATION_ITEM_STATE_MAX ? item_state_table[s] : NULL;
}

static bool item_is_final(const EvacuationItem *item) {
        return item->state >= EVACUATION_ITEM_COMPLETED;
}

/* ---- options ---- */

void evacuation_options_clear(EvacuationOptions *o) {
        g_clear_pointer(&o->migrate_options, g_variant_unref);
        *o = (EvacuationOptions) {};
}

static int parse_own_option(const char *key, GVariant *value, EvacuationOptions *o, GError **error) {
        const char *type = g_variant_get_type_string(value);

        if (g_str_equal(key, "order")) {
                if (!g_str_equal(type, "s"))
                        return vm_error_set(error, VM_ERROR_INVALID_OPTION, "option 'order' must be a string (s)");
                for (int i = 0; i < _EVACUATION_ORDER_MAX; i++)
                        if (g_str_equal(g_variant_get_string(value, NULL), order_table[i])) {
                                o->order = i;
                                return 0;
                        }
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "option 'order' must be 'smallest-first', 'largest-first' or 'priority'");
        }
        if (g_str_equal(key, "parallel")) {
                if (!g_str_equal(type, "u"))
                        return vm_error_set(error, VM_ERROR_INVALID_OPTION, "option 'parallel' must be a uint32 (u)");
                o->parallel = g_variant_get_uint32(value);
                if (o->parallel < 1 || o->parallel > EVACUATION_PARALLEL_MAX)
                        return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                            "option 'parallel' must be 1 to %d (migrations at once)",
                                            EVACUATION_PARALLEL_MAX);
                return 0;
        }
        if (!g_str_equal(type, "b"))
                return vm_error_set(error, VM_ERROR_INVALID_OPTION, "option '%s' must be a boolean (b)", key);
        if (g_str_equal(key, "inactive"))
                o->inactive = g_variant_get_boolean(value);
        else
                o->maintenance = g_variant_get_boolean(value);
        return 0;
}

int evacuation_options_parse(const char *const *destinations, GVariant *options, EvacuationOptions *ret,
                             GStrv *ret_canonical, GError **error) {
        static const char *const own[] = { "order", "parallel", "inactive", "maintenance", NULL };
        g_auto(EvacuationOptions) o = {};
        g_autoptr(GStrvBuilder) canonical = g_strv_builder_new();
        g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
        GVariantBuilder rest;
        GVariantIter iter;
        const char *key;
        GVariant *value;
        int r;

        g_variant_builder_init(&rest, G_VARIANT_TYPE("a{sv}"));
        g_variant_iter_init(&iter, options);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) v = value;
                if (!g_strv_contains(own, key)) {
                        g_variant_builder_add(&rest, "{sv}", key, v);
                        continue;
                }
                r = parse_own_option(key, v, &o, error);
                if (r < 0) {
                        g_variant_builder_clear(&rest);
                        return r;
                }
        }
        o.migrate_options = g_variant_ref_sink(g_variant_builder_end(&rest));

        if (!destinations || !destinations[0])
                return vm_error_set(error, VM_ERROR_INVALID_DESTINATION,
                                    "no destination: give one or more hosts to move the domains to");
        for (size_t i = 0; destinations[i]; i++) {
                if (i >= EVACUATION_DESTINATIONS_MAX)
                        return vm_error_set(error, VM_ERROR_INVALID_DESTINATION, "more than %d destinations",
                                            EVACUATION_DESTINATIONS_MAX);
                g_autoptr(MigrationRequest) req = migration_request_parse(destinations[i], o.migrate_options);
                const GError *bad = migration_request_error(req);
                if (bad) {
                        g_set_error_literal(error, bad->domain, bad->code, bad->message);
                        return -EINVAL;
                }
                const char *c = req->destination->canonical;
                for (unsigned k = 0; k < seen->len; k++)
                        if (g_str_equal(seen->pdata[k], c))
                                return vm_error_set(error, VM_ERROR_INVALID_DESTINATION,
                                                    "destination '%s' is given twice (as %s)", destinations[i], c);
                g_ptr_array_add(seen, g_strdup(c));
                g_strv_builder_add(canonical, c);
        }
        *ret = o;
        o = (EvacuationOptions) {};
        *ret_canonical = g_strv_builder_end(canonical);
        return 0;
}

/* ---- the items ---- */

static void evacuation_item_free(EvacuationItem *item) {
        domain_unref(item->domain);
        job_unref(item->job);
        g_free(item->name);
        g_free(item->uuid);
        g_free(item->destination);
        g_free(item->message);
        if (item->candidates)
                g_ptr_array_unref(item->candidates);
        if (item->refusals)
                g_string_free(item->refusals, true);
        g_free(item);
}

static int compare_items(gconstpointer pa, gconstpointer pb, gpointer userdata) {
        const EvacuationItem *a = *(EvacuationItem *const *) pa, *b = *(EvacuationItem *const *) pb;
        EvacuationOrder order = GPOINTER_TO_INT(userdata);

        if (order == EVACUATION_ORDER_PRIORITY) {
                unsigned pa_ = a->domain->def->priority, pb_ = b->domain->def->priority;
                if (pa_ != pb_)
                        return pa_ > pb_ ? -1 : 1;
        }
        if (a->memory_bytes != b->memory_bytes) {
                bool smaller = a->memory_bytes < b->memory_bytes;
                return (order == EVACUATION_ORDER_LARGEST_FIRST) == smaller ? 1 : -1;
        }
        return g_strcmp0(a->name, b->name);
}

static void evacuation_collect(Evacuation *ev) {
        g_autoptr(GPtrArray) domains = manager_list_domains(ev->manager);

        for (unsigned i = 0; i < domains->len; i++) {
                Domain *d = domains->pdata[i];
                bool live = d->state == DOMAIN_STATE_RUNNING || d->state == DOMAIN_STATE_PAUSED;
                bool offline = !live && ev->options.inactive && domain_is_persistent(d) &&
                               (d->state == DOMAIN_STATE_SHUTOFF || d->state == DOMAIN_STATE_CRASHED);

                if (!live && !offline)
                        continue;
                EvacuationItem *item = g_new0(EvacuationItem, 1);
                item->domain = domain_ref(d);
                item->name = g_strdup(domain_name(d));
                item->uuid = g_strdup(domain_uuid(d));
                item->memory_bytes = d->def->memory_bytes;
                item->offline = offline;
                item->evacuation = ev;
                g_ptr_array_add(ev->items, item);
        }
        g_ptr_array_sort_with_data(ev->items, compare_items, GINT_TO_POINTER(ev->options.order));
}

/* ---- state ---- */

static void evacuation_notify(Evacuation *ev) {
        if (ev->observer && ev->observer->changed)
                ev->observer->changed(ev, ev->observer_data);
}

static void evacuation_pump(Evacuation *ev);

static void item_set_final(EvacuationItem *item, EvacuationItemState state, const char *message) {
        Evacuation *ev = item->evacuation;

        g_assert(!item_is_final(item));
        if (item->state == EVACUATION_ITEM_PLACING || item->state == EVACUATION_ITEM_MIGRATING) {
                g_assert(ev->active > 0);
                ev->active--;
        }
        item->state = state;
        g_free(item->message);
        item->message = g_strdup(message);
        g_clear_pointer(&item->candidates, g_ptr_array_unref);
        if (message)
                log_info("evacuation %" G_GUINT64_FORMAT ": domain '%s' %s: %s", ev->id, item->name,
                         evacuation_item_state_to_string(state), message);
        else
                log_info("evacuation %" G_GUINT64_FORMAT ": domain '%s' %s (to %s)", ev->id, item->name,
                         evacuation_item_state_to_string(state), item->destination ? item->destination : "?");
}

/* Back in the queue: every destination was only busy. */
static void item_defer(EvacuationItem *item) {
        Evacuation *ev = item->evacuation;
        uint64_t now = (uint64_t) g_get_monotonic_time();

        if (!item->deferred_since_usec)
                item->deferred_since_usec = now;
        if (now - item->deferred_since_usec > EVACUATION_DEFER_MAX_USEC) {
                g_autofree char *why = g_strdup_printf("every destination stayed at its limit of migrations for "
                                                       "%d s: %s",
                                                       (int) (EVACUATION_DEFER_MAX_USEC / G_USEC_PER_SEC),
                                                       item->refusals->str);
                item_set_final(item, EVACUATION_ITEM_NOT_PLACED, why);
                return;
        }
        g_assert(ev->active > 0);
        ev->active--;
        item->state = EVACUATION_ITEM_PENDING;
        item->deferred = true;
        g_clear_pointer(&item->candidates, g_ptr_array_unref);
        log_debug("evacuation %" G_GUINT64_FORMAT ": domain '%s' waits: %s", ev->id, item->name,
                  item->refusals->str);
}

const char *evacuation_state(const Evacuation *ev) {
        if (!ev->finished)
                return "running";
        if (ev->cancelled)
                return "cancelled";
        for (unsigned i = 0; i < ev->items->len; i++)
                if (((EvacuationItem *) ev->items->pdata[i])->state != EVACUATION_ITEM_COMPLETED)
                        return "failed";
        return "completed";
}

void evacuation_counts(const Evacuation *ev, EvacuationCounts *ret) {
        EvacuationCounts c = { .total = ev->items->len };

        for (unsigned i = 0; i < ev->items->len; i++) {
                const EvacuationItem *item = ev->items->pdata[i];
                if (item->state == EVACUATION_ITEM_COMPLETED)
                        c.done++;
                else if (item->state == EVACUATION_ITEM_FAILED || item->state == EVACUATION_ITEM_NOT_PLACED)
                        c.failed++;
        }
        c.remaining = c.total - c.done - c.failed;
        *ret = c;
}

double evacuation_progress(const Evacuation *ev) {
        double sum = 0;

        if (ev->items->len == 0)
                return 1.0;
        for (unsigned i = 0; i < ev->items->len; i++) {
                const EvacuationItem *item = ev->items->pdata[i];
                if (item->state == EVACUATION_ITEM_MIGRATING && item->job)
                        sum += item->job->progress;
                else if (item->state != EVACUATION_ITEM_CANCELLED && item_is_final(item))
                        sum += 1.0;
        }
        return sum / ev->items->len;
}

GVariant *evacuation_results(const Evacuation *ev) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
        for (unsigned i = 0; i < ev->items->len; i++) {
                const EvacuationItem *item = ev->items->pdata[i];
                g_variant_builder_open(&b, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&b, "{sv}", "domain", g_variant_new_string(item->name));
                g_variant_builder_add(&b, "{sv}", "uuid", g_variant_new_string(item->uuid));
                g_variant_builder_add(&b, "{sv}", "state",
                                      g_variant_new_string(evacuation_item_state_to_string(item->state)));
                g_variant_builder_add(&b, "{sv}", "destination",
                                      g_variant_new_string(item->destination ? item->destination : ""));
                g_variant_builder_add(&b, "{sv}", "message", g_variant_new_string(item->message ? item->message : ""));
                g_variant_builder_add(&b, "{sv}", "job-id", g_variant_new_uint64(item->job ? item->job->id : 0));
                g_variant_builder_add(&b, "{sv}", "offline", g_variant_new_boolean(item->offline));
                g_variant_builder_add(&b, "{sv}", "memory-bytes", g_variant_new_uint64(item->memory_bytes));
                g_variant_builder_close(&b);
        }
        return g_variant_builder_end(&b);
}

/* ---- placement and children ---- */

static GVariant *item_migrate_options(const EvacuationItem *item) {
        GVariantDict dict;

        g_variant_dict_init(&dict, item->evacuation->options.migrate_options);
        if (item->offline)
                g_variant_dict_insert(&dict, "offline", "b", true);
        return g_variant_ref_sink(g_variant_dict_end(&dict));
}

/* Destinations with fewer of our domains first, then the caller's order:
 * guests spread over the hosts instead of filling the first. */
static unsigned placed_on(const Evacuation *ev, const char *destination) {
        unsigned n = 0;

        for (unsigned i = 0; i < ev->items->len; i++) {
                const EvacuationItem *item = ev->items->pdata[i];
                if ((item->state == EVACUATION_ITEM_MIGRATING || item->state == EVACUATION_ITEM_COMPLETED) &&
                    g_strcmp0(item->destination, destination) == 0)
                        n++;
        }
        return n;
}

static GPtrArray *placement_order(const Evacuation *ev) {
        GPtrArray *order = g_ptr_array_new();
        size_t n = g_strv_length(ev->destinations);
        g_autofree unsigned *load = g_new0(unsigned, n);

        for (size_t i = 0; i < n; i++)
                load[i] = placed_on(ev, ev->destinations[i]);
        /* n is small (at most EVACUATION_DESTINATIONS_MAX): a stable
         * selection by load keeps the caller's order among equals. */
        for (unsigned want = 0; order->len < n; want++)
                for (size_t i = 0; i < n; i++)
                        if (load[i] == want)
                                g_ptr_array_add(order, ev->destinations[i]);
        return order;
}

static void item_add_refusal(EvacuationItem *item, const char *destination, const char *why) {
        if (item->refusals->len)
                g_string_append(item->refusals, "; ");
        g_string_append_printf(item->refusals, "%s: %s", destination, why);
}

static void item_place_next(EvacuationItem *item);

static void on_child_started(Job *job, const GError *error, void *userdata) {
        EvacuationItem *item = userdata;

        if (job && !item->job) {
                item->job = job_ref(job);
                evacuation_notify(item->evacuation);
        }
}

/* The job sent nothing: it ended before Perform's first byte. */
static bool nothing_left(const Job *job) {
        return job->stats.data_processed == 0 && job->stats.iteration == 0 && !job->stats.postcopy_active;
}

static void on_child_ended(Job *job, const GError *error, void *userdata) {
        EvacuationItem *item = userdata;
        g_autoptr(Evacuation) ev = item->evacuation; /* the child's reference */

        if (!item->job)
                item->job = job_ref(job);
        if (job->phase == JOB_PHASE_FAILED && !ev->cancelled && nothing_left(job) && item->candidates &&
            item->next_candidate < item->candidates->len) {
                /* Refused before any memory went (a destination's Prepare
                 * that found less room than its check a moment ago): the
                 * guest is untouched here, the next destination may take it. */
                item_add_refusal(item, item->destination, job->error ? job->error : "the migration failed");
                log_info("evacuation %" G_GUINT64_FORMAT ": domain '%s': %s refused it (%s); trying the next "
                         "destination",
                         ev->id, item->name, item->destination, job->error ? job->error : "failed");
                g_clear_pointer(&item->job, job_unref);
                g_clear_pointer(&item->destination, g_free);
                item->state = EVACUATION_ITEM_PLACING;
                item_place_next(item);
                evacuation_pump(ev);
                return;
        }
        if (job->phase == JOB_PHASE_COMPLETED)
                item_set_final(item, EVACUATION_ITEM_COMPLETED, NULL);
        else if (job->phase == JOB_PHASE_CANCELLED && ev->cancelled)
                item_set_final(item, EVACUATION_ITEM_CANCELLED, job->error ? job->error : "cancelled");
        else
                item_set_final(item, EVACUATION_ITEM_FAILED,
                               error ? error->message : job->error ? job->error : "the migration failed");
        /* Someone's slot is free: those waiting for one look again. */
        for (unsigned i = 0; i < ev->items->len; i++)
                ((EvacuationItem *) ev->items->pdata[i])->deferred = false;
        evacuation_pump(ev);
}

static void item_start_child(EvacuationItem *item, const char *destination) {
        Evacuation *ev = item->evacuation;
        g_autoptr(GVariant) options = item_migrate_options(item);
        g_autoptr(GError) error = NULL;
        MigrationRequest *req = migration_request_parse(destination, options);
        int r;

        if (migration_request_error(req)) {
                item_add_refusal(item, destination, migration_request_error(req)->message);
                migration_request_free(req);
                item_place_next(item);
                return;
        }
        g_free(item->destination);
        item->destination = g_strdup(destination);
        item->state = EVACUATION_ITEM_MIGRATING;
        evacuation_ref(ev); /* until on_child_ended */
        r = migration_start(ev->manager, item->domain, req, on_child_started, on_child_ended, item, &error);
        if (r < 0) {
                evacuation_unref(ev);
                item->state = EVACUATION_ITEM_PLACING;
                g_clear_pointer(&item->destination, g_free);
                if (g_error_matches(error, VM_ERROR, VM_ERROR_LIMIT_REACHED))
                        item->busy_somewhere = true;
                item_add_refusal(item, destination, error->message);
                item_place_next(item);
                return;
        }
        /* The job exists from here on (Begin is done): Cancel can reach
         * it before Prepare answers. */
        if (!item->job && item->domain->job && item->domain->job->kind == JOB_MIGRATION_OUT)
                item->job = job_ref(item->domain->job);
        log_info("evacuation %" G_GUINT64_FORMAT ": domain '%s' leaves for %s", ev->id, item->name, destination);
        evacuation_notify(ev);
}

/* The ids of findings that say "not now" rather than "not here". */
static bool finding_is_busy(const char *id) {
        return g_str_equal(id, "limits.incoming") || g_str_equal(id, "limits.outgoing");
}

static void on_placement_checked(bool ok, GVariant *findings, void *userdata) {
        EvacuationItem *item = userdata;
        g_autoptr(Evacuation) ev = item->evacuation; /* the dry run's reference */
        g_autoptr(GVariant) owned = g_variant_ref_sink(findings);
        const char *destination = item->candidates->pdata[item->next_candidate - 1];
        g_autoptr(GString) why = g_string_new(NULL);
        bool only_busy = true;
        const char *severity, *id, *message;
        GVariantIter iter;

        if (ev->cancelled) {
                item_set_final(item, EVACUATION_ITEM_CANCELLED, "the evacuation was cancelled");
                evacuation_pump(ev);
                return;
        }
        if (ok) {
                item_start_child(item, destination);
                evacuation_pump(ev);
                return;
        }
        g_variant_iter_init(&iter, owned);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &id, &message)) {
                if (!g_str_equal(severity, "error"))
                        continue;
                if (!finding_is_busy(id))
                        only_busy = false;
                if (why->len)
                        g_string_append(why, "; ");
                g_string_append(why, message);
        }
        if (only_busy)
                item->busy_somewhere = true;
        item_add_refusal(item, destination, why->len ? why->str : "refused");
        item_place_next(item);
        evacuation_pump(ev);
}

static void item_place_next(EvacuationItem *item) {
        Evacuation *ev = item->evacuation;

        while (item->next_candidate < item->candidates->len) {
                const char *destination = item->candidates->pdata[item->next_candidate++];
                g_autoptr(GVariant) options = item_migrate_options(item);
                g_autoptr(GError) error = NULL;
                MigrationRequest *req = migration_request_parse(destination, options);

                req->skip_measurement = true;
                evacuation_ref(ev); /* until on_placement_checked */
                if (migration_dry_run(ev->manager, item->domain, req, on_placement_checked, item, &error) >= 0)
                        return;
                evacuation_unref(ev);
                item_add_refusal(item, destination, error->message);
        }
        if (item->busy_somewhere)
                item_defer(item);
        else
                item_set_final(item, EVACUATION_ITEM_NOT_PLACED, item->refusals->str);
        evacuation_notify(ev);
}

static void item_place(EvacuationItem *item) {
        Evacuation *ev = item->evacuation;

        item->state = EVACUATION_ITEM_PLACING;
        ev->active++;
        if (!item->domain->manager) {
                item_set_final(item, EVACUATION_ITEM_FAILED, "the domain was undefined meanwhile");
                return;
        }
        item->candidates = placement_order(ev);
        item->next_candidate = 0;
        item->busy_somewhere = false;
        if (item->refusals)
                g_string_truncate(item->refusals, 0);
        else
                item->refusals = g_string_new(NULL);
        item_place_next(item);
}

static void evacuation_finish(Evacuation *ev) {
        EvacuationCounts c;

        ev->finished = true;
        ev->ended_usec = (uint64_t) g_get_monotonic_time();
        ev->retry = sd_event_source_disable_unref(ev->retry);
        evacuation_counts(ev, &c);
        log_info("evacuation %" G_GUINT64_FORMAT " %s: %u of %u domains moved, %u failed, %u stayed", ev->id,
                 evacuation_state(ev), c.done, c.total, c.failed, c.remaining);
        evacuation_notify(ev);
        if (ev->observer && ev->observer->finished)
                ev->observer->finished(ev, ev->observer_data);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Evacuation *ev = userdata;

        for (unsigned i = 0; i < ev->items->len; i++)
                ((EvacuationItem *) ev->items->pdata[i])->deferred = false;
        evacuation_pump(ev);
        return 0;
}

static void evacuation_arm_retry(Evacuation *ev) {
        int r;

        if (!ev->retry)
                r = sd_event_add_time_relative(ev->manager->event, &ev->retry, CLOCK_MONOTONIC, EVACUATION_RETRY_USEC,
                                               0, on_retry, ev);
        else {
                r = sd_event_source_set_time_relative(ev->retry, EVACUATION_RETRY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ev->retry, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning("evacuation %" G_GUINT64_FORMAT ": cannot arm the retry timer: %s", ev->id,
                            g_strerror(-r));
}

/* Starts what the limit allows, finishes when all is final. Re-entrant:
 * a placement that ends at once calls it again. */
static void evacuation_pump(Evacuation *ev) {
        bool waiting = false, pending = false;

        if (ev->finished)
                return;
        for (unsigned i = 0; i < ev->items->len && !ev->cancelled; i++) {
                EvacuationItem *item = ev->items->pdata[i];
                if (item->state != EVACUATION_ITEM_PENDING)
                        continue;
                if (item->deferred || ev->active >= ev->parallel) {
                        waiting = waiting || item->deferred;
                        pending = true;
                        continue;
                }
                item_place(item);
                if (ev->finished)
                        return; /* the call above ended it all */
        }
        if (ev->cancelled)
                for (unsigned i = 0; i < ev->items->len; i++) {
                        EvacuationItem *item = ev->items->pdata[i];
                        if (item->state == EVACUATION_ITEM_PENDING)
                                item_set_final(item, EVACUATION_ITEM_CANCELLED, "the evacuation was cancelled");
                }
        if (ev->active == 0 && !pending && !waiting) {
                for (unsigned i = 0; i < ev->items->len; i++)
                        if (!item_is_final(ev->items->pdata[i]))
                                return; /* a placement still runs */
                evacuation_finish(ev);
                return;
        }
        if (ev->active == 0 && waiting)
                evacuation_arm_retry(ev);
        evacuation_notify(ev);
}

/* ---- the object ---- */

int evacuation_start(Manager *m, uint64_t id, GStrv destinations, EvacuationOptions *options, const char *who,
                     const EvacuationObserver *observer, void *userdata, Evacuation **ret, GError **error) {
        g_auto(GStrv) owned = destinations; /* taken in all cases */
        g_autoptr(Evacuation) ev = NULL;
        int r;

        if (m->shutting_down)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "vmigrated is stopping; try again when it is back");
        if (options->maintenance) {
                r = manager_set_maintenance(m, true, who, error);
                if (r < 0)
                        return r;
        }
        ev = g_new0(Evacuation, 1);
        ev->n_ref = 1;
        ev->manager = m;
        ev->id = id;
        ev->destinations = g_steal_pointer(&owned);
        ev->options = *options;
        *options = (EvacuationOptions) {};
        ev->parallel = ev->options.parallel ? ev->options.parallel
                       : m->max_outgoing   ? m->max_outgoing
                                           : MANAGER_DEFAULT_MAX_MIGRATIONS;
        ev->items = g_ptr_array_new_with_free_func((GDestroyNotify) evacuation_item_free);
        ev->started_usec = (uint64_t) g_get_monotonic_time();
        ev->observer = observer;
        ev->observer_data = userdata;
        evacuation_collect(ev);
        log_info("evacuation %" G_GUINT64_FORMAT " by %s: %u domain%s to %s, %u at once, %s", id, who ? who : "?",
                 ev->items->len, ev->items->len == 1 ? "" : "s", ev->destinations[0], ev->parallel,
                 evacuation_order_to_string(ev->options.order));
        /* The first placements start now; their answers come from the
         * loop, after the caller has put the object on the bus. */
        evacuation_pump(ev);
        *ret = g_steal_pointer(&ev);
        return 0;
}

Evacuation *evacuation_ref(Evacuation *ev) {
        if (ev)
                ev->n_ref++;
        return ev;
}

Evacuation *evacuation_unref(Evacuation *ev) {
        if (!ev)
                return NULL;
        g_assert(ev->n_ref > 0);
        if (--ev->n_ref > 0)
                return NULL;
        sd_event_source_disable_unref(ev->retry);
        g_ptr_array_unref(ev->items);
        g_strfreev(ev->destinations);
        evacuation_options_clear(&ev->options);
        g_free(ev);
        return NULL;
}

int evacuation_cancel(Evacuation *ev, GError **error) {
        g_autoptr(Evacuation) ref = evacuation_ref(ev);

        if (ev->finished)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "evacuation %" G_GUINT64_FORMAT " has ended (%s)",
                                    ev->id, evacuation_state(ev));
        if (ev->cancelled)
                return 0;
        ev->cancelled = true;
        log_info("evacuation %" G_GUINT64_FORMAT ": cancelled", ev->id);
        for (unsigned i = 0; i < ev->items->len; i++) {
                EvacuationItem *item = ev->items->pdata[i];
                g_autoptr(GError) local = NULL;

                if (item->state != EVACUATION_ITEM_MIGRATING || !item->job || job_phase_is_final(item->job->phase))
                        continue;
                /* In post-copy the guest already runs there: cancelling
                 * would pause it on both hosts. It finishes. */
                if (item->job->phase == JOB_PHASE_POSTCOPY || item->job->stats.postcopy_active) {
                        log_info("evacuation %" G_GUINT64_FORMAT ": domain '%s' is in post-copy and finishes",
                                 ev->id, item->name);
                        continue;
                }
                if (migration_cancel(item->job, &local) < 0)
                        log_info("evacuation %" G_GUINT64_FORMAT ": domain '%s' goes on: %s", ev->id, item->name,
                                 local->message);
        }
        evacuation_pump(ev);
        return 0;
}
