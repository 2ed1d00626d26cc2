/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <glib.h>
#include <systemd/sd-bus.h>

/* Pending and answered polkit queries, keyed by the call they authorize. */
typedef struct PolkitRegistry PolkitRegistry;

PolkitRegistry *polkit_registry_new(void);
void polkit_registry_free(PolkitRegistry *registry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolkitRegistry, polkit_registry_free)
unsigned polkit_registry_size(PolkitRegistry *registry);

typedef enum PolkitFlags {
        /* Ask polkit even when the caller's euid is 0 (or ours): for tests,
         * whose caller is always privileged, as systemd's flag of the same
         * name. */
        POLKIT_ALWAYS_QUERY = 1 << 0,
} PolkitFlags;

/* How often one call may ask again because what it acts on changed while
 * polkit was answering (see bus_verify_polkit_async()). */
#define POLKIT_QUERIES_PER_CALL_MAX 3

/*
 * Asks whether the sender of `call` may perform `action` on what `details`
 * describe.
 *
 * Returns 1 if authorized; 0 if the question went to polkit (the handler
 * must then return 1 without replying: when polkit answers, the call is
 * put back in the bus's read queue and the handler runs again from the top,
 * this time getting the answer); < 0 with ret_error set when denied:
 * org.freedesktop.DBus.Error.AccessDenied, or InteractiveAuthorizationRequired
 * when the caller allowed interaction but nobody could authenticate.
 *
 * An answer counts only for the exact question polkit was asked: the same
 * action and the same details, in the same order. When the handler runs
 * again with other details (the domain was redefined while polkit
 * thought), the answer is dropped, whatever it was, and polkit is asked
 * about the new details; after POLKIT_QUERIES_PER_CALL_MAX questions the
 * call is denied.
 *
 * Callers whose effective uid is 0 are allowed without asking. Any other
 * caller is asked about over D-Bus (subject "system-bus-name"); when polkit
 * is not on the bus, the answer is no.
 *
 * details: NULL or a NULL-terminated key, value, key, value, ... list,
 * handed to polkit so that rules can match on them. The list ends at the
 * first NULL key or value.
 */
int bus_verify_polkit_async_full(sd_bus_message *call, const char *action, const char *const *details,
                                 PolkitFlags flags, PolkitRegistry *registry, sd_bus_error *ret_error);

static inline int bus_verify_polkit_async(sd_bus_message *call, const char *action,
                                          const char *const *details, PolkitRegistry *registry,
                                          sd_bus_error *ret_error) {
        return bus_verify_polkit_async_full(call, action, details, 0, registry, ret_error);
}

/* ---- the pure parts, for tests ---- */

/* Whether two detail lists ask the same question: the same key/value pairs
 * in the same order (NULL equals the empty list). */
bool polkit_details_equal(const char *const *a, const char *const *b);

/* The CheckAuthorization call for sender (a unique bus name): subject
 * system-bus-name, the details as given, AllowUserInteraction when
 * interactive, no cancellation id. */
int polkit_new_check_authorization(sd_bus *bus, const char *sender, const char *action,
                                   const char *const *details, bool interactive, sd_bus_message **ret);
