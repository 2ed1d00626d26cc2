/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Asynchronous polkit checks without blocking the event loop.
 *
 * A handler that needs authorization calls bus_verify_polkit_async(). The
 * first time, we send CheckAuthorization and remember the call in the
 * registry. When polkit replies we store the verdict and hand the original
 * call back to sd-bus with sd_bus_enqueue_for_read(): it is dispatched
 * again, the handler re-reads and re-validates its arguments (nothing has
 * changed yet, because nothing changes before authorization), and this
 * time bus_verify_polkit_async() finds the verdict and consumes it.
 *
 * The verdict is an answer to one question: this action, these details.
 * Between the first run of the handler and the second, other calls ran:
 * the domain may have been undefined and another one defined under the
 * same UUID (so the same object path) with another name. The second run
 * builds its details from what is there now; if they are not the ones
 * polkit answered for, the verdict is about something else and is thrown
 * away, and polkit is asked about what is there now (systemd's
 * bus-polkit.c does the same). A grant is thus only ever used for the
 * details it was given for; a denial of other details is not reused
 * either, since polkit may well allow the new ones.
 *
 * Keying on the message pointer is safe: the registry holds a reference to
 * the message until the verdict is consumed, so the pointer cannot be
 * reused by another call meanwhile.
 */
#include <errno.h>
#include <stdbool.h>

#include "bus-polkit.h"
#include "bus-util.h"
#include "log.h"

/* CheckAuthorization flag: the caller is prepared to wait for an agent. */
#define POLKIT_ALLOW_USER_INTERACTION 1u

typedef struct PolkitQuery {
        PolkitRegistry *registry;
        sd_bus_message *call; /* reference */
        char *action;
        char **details;    /* the key/value pairs polkit was asked about */
        unsigned n_asked;  /* questions asked for this call, this one included */
        sd_bus_slot *slot; /* pending CheckAuthorization */
        bool answered;
        bool authorized;
        bool challenge;
        char *failure; /* polkit could not be asked: why */
} PolkitQuery;

struct PolkitRegistry {
        GHashTable *queries; /* sd_bus_message* → PolkitQuery* (owned) */
};

static void polkit_query_free(PolkitQuery *q) {
        if (!q)
                return;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->call);
        g_free(q->action);
        g_strfreev(q->details);
        g_free(q->failure);
        g_free(q);
}

PolkitRegistry *polkit_registry_new(void) {
        PolkitRegistry *registry = g_new0(PolkitRegistry, 1);

        registry->queries = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                                  (GDestroyNotify) polkit_query_free);
        return registry;
}

void polkit_registry_free(PolkitRegistry *registry) {
        if (!registry)
                return;
        g_hash_table_unref(registry->queries);
        g_free(registry);
}

unsigned polkit_registry_size(PolkitRegistry *registry) {
        return g_hash_table_size(registry->queries);
}

/* ---- details ---- */

static size_t details_n_pairs(const char *const *details) {
        size_t n = 0;

        while (details && details[2 * n] && details[2 * n + 1])
                n++;
        return n;
}

bool polkit_details_equal(const char *const *a, const char *const *b) {
        size_t n = details_n_pairs(a);

        if (details_n_pairs(b) != n)
                return false;
        for (size_t i = 0; i < 2 * n; i++)
                if (!g_str_equal(a[i], b[i]))
                        return false;
        return true;
}

/* Exactly the pairs that are sent (see details_n_pairs), owned. */
static char **details_copy(const char *const *details) {
        size_t n = details_n_pairs(details);
        char **copy = g_new0(char *, 2 * n + 1);

        for (size_t i = 0; i < 2 * n; i++)
                copy[i] = g_strdup(details[i]);
        return copy;
}

int polkit_new_check_authorization(sd_bus *bus, const char *sender, const char *action,
                                   const char *const *details, bool interactive, sd_bus_message **ret) {
        g_autoptr(sd_bus_message) request = NULL;
        size_t n = details_n_pairs(details);
        int r;

        if (!sender)
                return -EBADMSG;
        r = sd_bus_message_new_method_call(bus, &request, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(request, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(request, 'a', "{ss}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(request, "{ss}", details[2 * i], details[2 * i + 1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(request);
        if (r < 0)
                return r;
        r = sd_bus_message_append(request, "us", interactive ? POLKIT_ALLOW_USER_INTERACTION : 0u, "");
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&request);
        return 0;
}

/* ---- queries ---- */

static int polkit_on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0;
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        q->answered = true;

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* Not running, not activatable, or it failed: deny, and say
                 * why in the log and in the error. */
                q->failure = g_strdup_printf("polkit could not be asked (%s: %s)", e->name,
                                             e->message ? e->message : "no message");
                log_warning("authorization of %s for %s: %s", q->action,
                            sd_bus_message_get_sender(q->call) ?: "?", q->failure);
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0) {
                        q->failure = g_strdup_printf("polkit sent a malformed reply: %s", g_strerror(-r));
                        log_warning("authorization of %s: %s", q->action, q->failure);
                } else {
                        q->authorized = authorized;
                        q->challenge = challenge;
                }
        }

        /* Dispatch the original call again; its handler now finds the answer. */
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(q->call), q->call);
        if (r < 0) {
                log_error("cannot re-dispatch call after polkit reply: %s", g_strerror(-r));
                g_hash_table_remove(q->registry->queries, q->call);
        }
        return 1;
}

/* The answer to the question q asked, which is the one being asked now. */
static int polkit_verdict(PolkitQuery *q, sd_bus_error *ret_error) {
        int interactive = sd_bus_message_get_allow_interactive_authorization(q->call);
        const char *action = q->action;

        if (q->failure)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "not authorized for %s: %s; only root is allowed without polkit",
                                         action, q->failure);
        if (q->authorized)
                return 1;
        if (q->challenge && interactive > 0)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "%s needs administrator authentication, and no polkit agent "
                                         "could ask for it; run a polkit agent (e.g. pkttyagent) or ask an "
                                         "administrator for a rule",
                                         action);
        if (q->challenge)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "not authorized for %s: administrator authentication is needed; "
                                         "allow interactive authorization (busctl "
                                         "--allow-interactive-authorization=yes) or ask an administrator "
                                         "for a rule",
                                         action);
        return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED, "not authorized for %s", action);
}

static int polkit_check_root(sd_bus_message *call) {
        /* sd_bus_query_sender_privilege() with capability -1 tests for an
         * effective uid of 0, from credentials the bus vouches for (not
         * augmented ones read from /proc, which a caller could race). */
        return sd_bus_query_sender_privilege(call, -1);
}

static int polkit_send_query(sd_bus_message *call, const char *action, const char *const *details,
                             unsigned n_asked, PolkitRegistry *registry) {
        g_autoptr(sd_bus_message) request = NULL;
        sd_bus *bus = sd_bus_message_get_bus(call);
        int r;

        r = polkit_new_check_authorization(bus, sd_bus_message_get_sender(call), action, details,
                                           sd_bus_message_get_allow_interactive_authorization(call) > 0,
                                           &request);
        if (r < 0)
                return r;

        PolkitQuery *q = g_new0(PolkitQuery, 1);
        q->registry = registry;
        q->call = sd_bus_message_ref(call);
        q->action = g_strdup(action);
        q->details = details_copy(details);
        q->n_asked = n_asked;

        /* No timeout of our own: with interaction allowed, polkit waits for
         * the user; sd-bus's default method timeout (25 s) would cut that
         * short, so use a generous one. */
        r = sd_bus_call_async(bus, &q->slot, request, polkit_on_reply, q, 5 * 60 * G_USEC_PER_SEC);
        if (r < 0) {
                polkit_query_free(q);
                return r;
        }
        g_hash_table_insert(registry->queries, call, q);
        return 0;
}

int bus_verify_polkit_async_full(sd_bus_message *call, const char *action, const char *const *details,
                                 PolkitFlags flags, PolkitRegistry *registry, sd_bus_error *ret_error) {
        unsigned n_asked = 0;
        PolkitQuery *q;
        int r;

        q = g_hash_table_lookup(registry->queries, call);
        if (q) {
                if (!q->answered)
                        return 0; /* still waiting; should not be dispatched before the answer */
                if (g_str_equal(q->action, action) &&
                    polkit_details_equal((const char *const *) q->details, details)) {
                        r = polkit_verdict(q, ret_error);
                        g_hash_table_remove(registry->queries, call);
                        return r;
                }
                /* What the call acts on changed while polkit answered: the
                 * answer is about something else. Ask again, but not
                 * forever (an object that changes at each dispatch). */
                n_asked = q->n_asked;
                log_debug("authorization of %s for %s: the call's details changed while polkit answered; "
                          "asking again",
                          action, sd_bus_message_get_sender(call) ?: "?");
                g_hash_table_remove(registry->queries, call);
                if (n_asked >= POLKIT_QUERIES_PER_CALL_MAX)
                        return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "not authorized for %s: what the call acts on changed %u "
                                                 "times while polkit was being asked; try again",
                                                 action, n_asked);
        }

        if (!(flags & POLKIT_ALWAYS_QUERY)) {
                r = polkit_check_root(call);
                if (r < 0)
                        return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "cannot establish the caller's identity for %s: %s", action,
                                                 g_strerror(-r));
                if (r > 0)
                        return 1;
        }

        r = polkit_send_query(call, action, details, n_asked + 1, registry);
        if (r < 0)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "cannot ask polkit about %s: %s", action, g_strerror(-r));
        return 0;
}
