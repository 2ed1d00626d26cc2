/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

/* Pending and answered polkit queries, keyed by the call they authorize. */
typedef struct PolkitRegistry PolkitRegistry;

PolkitRegistry *polkit_registry_new(void);
void polkit_registry_free(PolkitRegistry *registry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolkitRegistry, polkit_registry_free)
unsigned polkit_registry_size(PolkitRegistry *registry);

/*
 * Asks whether the sender of `call` may perform `action`.
 *
 * Returns 1 if authorized; 0 if the question went to polkit (the handler
 * must then return 1 without replying: when polkit answers, the call is
 * put back in the bus's read queue and the handler runs again from the top,
 * this time getting the answer); < 0 with ret_error set when denied:
 * org.freedesktop.DBus.Error.AccessDenied, or InteractiveAuthorizationRequired
 * when the caller allowed interaction but nobody could authenticate.
 *
 * Callers whose effective uid is 0 are allowed without asking. Any other
 * caller is asked about over D-Bus (subject "system-bus-name"); when polkit
 * is not on the bus, the answer is no.
 *
 * details: NULL or a NULL-terminated key, value, key, value, ... list,
 * handed to polkit so that rules can match on them.
 */
int bus_verify_polkit_async(sd_bus_message *call, const char *action, const char *const *details,
                            PolkitRegistry *registry, sd_bus_error *ret_error);
