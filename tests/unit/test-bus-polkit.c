/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-polkit.c against a scripted polkit. The two ends of a socketpair are
 * two sd-bus connections on one sd-event loop: "service" exports a method
 * whose handler asks bus_verify_polkit_async_full() as vmigrated's
 * handlers do; "peer" calls that method (with a unique-name sender, as a
 * bus would set it) and plays org.freedesktop.PolicyKit1.Authority,
 * recording each CheckAuthorization and answering it as the test scripts:
 * at once, or later (held), so that the test can change what the handler
 * will see while polkit "thinks".
 *
 * Everyone here is the same uid, so the handler asks with
 * POLKIT_ALWAYS_QUERY (otherwise the caller would be allowed as one of us).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-polkit.h"
#include "bus-util.h"

#define TEST_PATH "/org/vmigrate/Test"
#define TEST_INTERFACE "org.vmigrate.Test"
#define TEST_ACTION "org.vmigrate.migrate1.manage-domains"
#define TEST_SENDER ":1.42"
#define PK_PATH "/org/freedesktop/PolicyKit1/Authority"
#define PK_INTERFACE "org.freedesktop.PolicyKit1.Authority"

/* A domain redefined under another name keeps its UUID (and object path). */
static const char *const alpha_details[] = {
        "domain", "alpha", "uuid", "11111111-2222-4333-8444-555555555555", "operation", "Start", NULL
};
static const char *const beta_details[] = {
        "domain", "beta", "uuid", "11111111-2222-4333-8444-555555555555", "operation", "Start", NULL
};

typedef enum Answer {
        ANSWER_YES,
        ANSWER_NO,
        ANSWER_CHALLENGE,
        ANSWER_ERROR, /* polkit fails the call */
        ANSWER_HOLD,  /* no answer until answer_held() */
} Answer;

/* One CheckAuthorization as polkit received it. */
typedef struct Check {
        char *subject_kind;
        char *subject_name;
        char *action;
        char **details; /* key, value, ... in the order received */
        uint32_t flags;
        char *cancellation_id;
} Check;

static void check_free(gpointer p) {
        Check *c = p;
        g_free(c->subject_kind);
        g_free(c->subject_name);
        g_free(c->action);
        g_strfreev(c->details);
        g_free(c->cancellation_id);
        g_free(c);
}

typedef struct Fixture {
        sd_event *event;
        sd_bus *service;
        sd_bus *peer;
        PolkitRegistry *registry;

        /* What the handler asks about (the test may change it meanwhile). */
        char *action;
        char **details;
        bool change_details_each_run; /* "run" = the handler's run count */

        unsigned n_runs;
        unsigned n_granted;

        GArray *script;    /* Answer, consumed from the front */
        GPtrArray *checks; /* Check* */
        sd_bus_message *held;

        /* The caller's result */
        bool replied;
        char *reply;
        char *error_name;
        char *error_message;
} Fixture;

static void set_details(Fixture *f, const char *const *details) {
        g_strfreev(f->details);
        f->details = g_strdupv((char **) details);
}

static int method_act(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Fixture *f = userdata;
        int r;

        f->n_runs++;
        if (f->change_details_each_run) {
                g_autofree char *run = g_strdup_printf("%u", f->n_runs);
                const char *details[] = { "domain", "alpha", "run", run, NULL };
                set_details(f, details);
        }
        r = bus_verify_polkit_async_full(m, f->action, (const char *const *) f->details, POLKIT_ALWAYS_QUERY,
                                         f->registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit will call us again */
        f->n_granted++;
        return sd_bus_reply_method_return(m, "s", "done");
}

static const sd_bus_vtable test_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Act", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", result), method_act,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int reply_answer(sd_bus_message *call, Answer answer) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        if (answer == ANSWER_ERROR)
                return sd_bus_reply_method_errorf(call, "org.freedesktop.PolicyKit1.Error.Failed",
                                                  "scripted failure");
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "(bba{ss})", answer == ANSWER_YES,
                                          answer == ANSWER_CHALLENGE, 0);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int read_check(sd_bus_message *m, Check **ret) {
        g_autoptr(GPtrArray) details = g_ptr_array_new_with_free_func(g_free);
        Check *c = g_new0(Check, 1);
        const char *kind, *key, *action, *k, *v, *cancel;
        int r;

        /* (sa{sv})sa{ss}us */
        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &kind);
        if (r >= 0) {
                c->subject_kind = g_strdup(kind);
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        }
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && g_str_equal(key, "name")) {
                        const char *name;
                        r = sd_bus_message_read(m, "v", "s", &name);
                        if (r >= 0)
                                c->subject_name = g_strdup(name);
                } else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &action);
        if (r >= 0) {
                c->action = g_strdup(action);
                r = sd_bus_message_enter_container(m, 'a', "{ss}");
        }
        while (r >= 0 && (r = sd_bus_message_read(m, "{ss}", &k, &v)) > 0) {
                g_ptr_array_add(details, g_strdup(k));
                g_ptr_array_add(details, g_strdup(v));
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "us", &c->flags, &cancel);
        if (r < 0) {
                check_free(c);
                return r;
        }
        c->cancellation_id = g_strdup(cancel);
        g_ptr_array_add(details, NULL);
        c->details = (char **) g_ptr_array_free(g_steal_pointer(&details), false);
        *ret = c;
        return 0;
}

static int method_check_authorization(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Fixture *f = userdata;
        Answer answer = ANSWER_NO;
        Check *c;
        int r;

        r = read_check(m, &c);
        if (r < 0)
                return r;
        g_ptr_array_add(f->checks, c);
        if (f->script->len > 0) {
                answer = g_array_index(f->script, Answer, 0);
                g_array_remove_index(f->script, 0);
        } else
                g_test_message("CheckAuthorization #%u was not scripted: answering no", f->checks->len);
        if (answer == ANSWER_HOLD) {
                g_assert_null(f->held);
                f->held = sd_bus_message_ref(m);
                return 1;
        }
        return reply_answer(m, answer);
}

static const sd_bus_vtable polkit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CheckAuthorization",
                                SD_BUS_ARGS("(sa{sv})", subject, "s", action_id, "a{ss}", details, "u",
                                            flags, "s", cancellation_id),
                                SD_BUS_RESULT("(bba{ss})", result), method_check_authorization,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static void fixture_setup(Fixture *f, gconstpointer data) {
        sd_id128_t id;
        int fds[2];

        memset(f, 0, sizeof(*f));
        f->registry = polkit_registry_new();
        f->action = g_strdup(TEST_ACTION);
        set_details(f, alpha_details);
        f->script = g_array_new(false, false, sizeof(Answer));
        f->checks = g_ptr_array_new_with_free_func(check_free);

        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), ==, 0);

        g_assert_cmpint(sd_bus_new(&f->peer), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->peer, fds[1], fds[1]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(f->peer, true, id), >=, 0);
        /* What a bus would write into every message from this connection. */
        g_assert_cmpint(sd_bus_set_sender(f->peer, TEST_SENDER), >=, 0);
        g_assert_cmpint(sd_bus_add_object_vtable(f->peer, NULL, PK_PATH, PK_INTERFACE, polkit_vtable, f), >=,
                        0);
        g_assert_cmpint(sd_bus_attach_event(f->peer, f->event, 0), >=, 0);
        g_assert_cmpint(sd_bus_start(f->peer), >=, 0);

        g_assert_cmpint(sd_bus_new(&f->service), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->service, fds[0], fds[0]), >=, 0);
        g_assert_cmpint(
                sd_bus_add_object_vtable(f->service, NULL, TEST_PATH, TEST_INTERFACE, test_vtable, f), >=,
                0);
        g_assert_cmpint(sd_bus_attach_event(f->service, f->event, 0), >=, 0);
        g_assert_cmpint(sd_bus_start(f->service), >=, 0);

        /* Authentication first: sd-bus may not look at a message that came
         * in the same read as the end of the handshake until more data
         * arrives, so the first call would wait. */
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while ((sd_bus_is_ready(f->service) <= 0 || sd_bus_is_ready(f->peer) <= 0) &&
               g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_cmpint(sd_bus_is_ready(f->service), >, 0);
        g_assert_cmpint(sd_bus_is_ready(f->peer), >, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        /* Every verdict was consumed: nothing may stay behind. */
        g_assert_cmpuint(polkit_registry_size(f->registry), ==, 0);
        polkit_registry_free(f->registry);
        sd_bus_message_unref(f->held);
        sd_bus_flush_close_unref(f->service);
        sd_bus_flush_close_unref(f->peer);
        sd_event_unref(f->event);
        g_free(f->action);
        g_strfreev(f->details);
        g_array_unref(f->script);
        g_ptr_array_unref(f->checks);
        g_free(f->reply);
        g_free(f->error_name);
        g_free(f->error_message);
}

static void script(Fixture *f, Answer answer) {
        g_array_append_val(f->script, answer);
}

/* Runs the loop until *flag is set, for at most 5 s. */
static bool run_until(Fixture *f, const bool *flag) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (!*flag && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        return *flag;
}

static int on_act_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Fixture *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *s;

        if (e) {
                f->error_name = g_strdup(e->name);
                f->error_message = g_strdup(e->message);
        } else if (sd_bus_message_read(reply, "s", &s) >= 0)
                f->reply = g_strdup(s);
        f->replied = true;
        return 0;
}

static void call_act(Fixture *f, bool interactive) {
        g_autoptr(sd_bus_message) m = NULL;

        g_assert_cmpint(sd_bus_message_new_method_call(f->peer, &m, NULL, TEST_PATH, TEST_INTERFACE, "Act"),
                        >=, 0);
        g_assert_cmpint(sd_bus_message_set_allow_interactive_authorization(m, interactive), >=, 0);
        g_assert_cmpint(sd_bus_call_async(f->peer, NULL, m, on_act_reply, f, 10 * G_USEC_PER_SEC), >=, 0);
}

/* Runs until polkit holds a question back, for at most 5 s. */
static void run_until_held(Fixture *f) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (!f->held && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_nonnull(f->held);
}

static void answer_held(Fixture *f, Answer answer) {
        g_autoptr(sd_bus_message) held = g_steal_pointer(&f->held);

        g_assert_nonnull(held);
        g_assert_cmpint(reply_answer(held, answer), >=, 0);
}

/* The i-th CheckAuthorization, or (test failed) an empty one, so that one
 * missing question does not crash the rest of the test. */
static Check *check_nth(Fixture *f, unsigned i) {
        static char *no_details[] = { NULL };
        static Check none = { .details = no_details };

        g_assert_cmpuint(f->checks->len, >, i);
        return i < f->checks->len ? f->checks->pdata[i] : &none;
}

static void assert_contains(const char *haystack, const char *needle) {
        if (!haystack || !strstr(haystack, needle)) {
                g_test_message("'%s' does not contain '%s'", haystack ?: "(null)", needle);
                g_test_fail();
        }
}

static void assert_details(char **got, const char *const *expected) {
        g_autofree char *a = g_strjoinv(",", got);
        g_autofree char *b = g_strjoinv(",", (char **) expected);
        g_assert_cmpstr(a, ==, b);
}

static void assert_granted(Fixture *f) {
        g_assert_true(f->replied);
        g_assert_cmpstr(f->error_name, ==, NULL);
        g_assert_cmpstr(f->reply, ==, "done");
        g_assert_cmpuint(f->n_granted, ==, 1);
}

static void assert_refused(Fixture *f, const char *error_name) {
        g_assert_true(f->replied);
        g_assert_cmpstr(f->error_name, ==, error_name);
        g_assert_cmpstr(f->reply, ==, NULL);
        g_assert_cmpuint(f->n_granted, ==, 0);
}

/* ---- the pure parts ---- */

static void test_details_equal(void) {
        const char *a[] = { "domain", "alpha", "uuid", "u1", NULL };
        const char *same[] = { "domain", "alpha", "uuid", "u1", NULL };
        const char *other_value[] = { "domain", "beta", "uuid", "u1", NULL };
        const char *other_key[] = { "domain", "alpha", "UUID", "u1", NULL };
        const char *other_order[] = { "uuid", "u1", "domain", "alpha", NULL };
        const char *fewer[] = { "domain", "alpha", NULL };
        const char *more[] = { "domain", "alpha", "uuid", "u1", "destination", "", NULL };
        /* The list ends at the first NULL value: "uuid" is not sent. */
        const char *cut[] = { "domain", "alpha", "uuid", NULL, "x", "y", NULL };
        const char *empty[] = { NULL };

        g_assert_true(polkit_details_equal(a, same));
        g_assert_true(polkit_details_equal(NULL, NULL));
        g_assert_true(polkit_details_equal(NULL, empty));
        g_assert_true(polkit_details_equal(fewer, cut));
        g_assert_false(polkit_details_equal(a, other_value));
        g_assert_false(polkit_details_equal(a, other_key));
        g_assert_false(polkit_details_equal(a, other_order));
        g_assert_false(polkit_details_equal(a, fewer));
        g_assert_false(polkit_details_equal(a, more));
        g_assert_false(polkit_details_equal(a, NULL));
        g_assert_false(polkit_details_equal(NULL, a));
        /* An empty value is a value, not the end. */
        g_assert_false(polkit_details_equal(more, a));
}

static void test_check_authorization_message(Fixture *f, gconstpointer data) {
        const char *details[] = { "domain", "alpha", "destination", "", "odd", NULL };
        const char *sent[] = { "domain", "alpha", "destination", "", NULL };
        g_autoptr(sd_bus_message) m = NULL;
        Check *c = NULL;

        g_assert_cmpint(polkit_new_check_authorization(f->service, NULL, TEST_ACTION, details, false, &m),
                        ==, -EBADMSG);
        g_assert_null(m);

        g_assert_cmpint(polkit_new_check_authorization(f->service, ":1.7", TEST_ACTION, details, true, &m),
                        ==, 0);
        g_assert_cmpstr(sd_bus_message_get_destination(m), ==, "org.freedesktop.PolicyKit1");
        g_assert_cmpstr(sd_bus_message_get_path(m), ==, PK_PATH);
        g_assert_cmpstr(sd_bus_message_get_interface(m), ==, PK_INTERFACE);
        g_assert_cmpstr(sd_bus_message_get_member(m), ==, "CheckAuthorization");
        g_assert_cmpint(sd_bus_message_seal(m, 1, 0), >=, 0);
        g_assert_cmpint(sd_bus_message_rewind(m, true), >=, 0);
        g_assert_cmpint(read_check(m, &c), ==, 0);
        g_assert_cmpstr(c->subject_kind, ==, "system-bus-name");
        g_assert_cmpstr(c->subject_name, ==, ":1.7");
        g_assert_cmpstr(c->action, ==, TEST_ACTION);
        assert_details(c->details, sent);
        g_assert_cmpuint(c->flags, ==, 1); /* AllowUserInteraction */
        g_assert_cmpstr(c->cancellation_id, ==, "");
        check_free(c);

        m = sd_bus_message_unref(m);
        g_assert_cmpint(polkit_new_check_authorization(f->service, ":1.7", TEST_ACTION, NULL, false, &m), ==,
                        0);
        g_assert_cmpint(sd_bus_message_seal(m, 2, 0), >=, 0);
        g_assert_cmpint(sd_bus_message_rewind(m, true), >=, 0);
        g_assert_cmpint(read_check(m, &c), ==, 0);
        g_assert_cmpstr(c->details[0], ==, NULL);
        g_assert_cmpuint(c->flags, ==, 0);
        check_free(c);
}

/* ---- verdicts ---- */

static void test_granted(Fixture *f, gconstpointer data) {
        script(f, ANSWER_YES);
        call_act(f, false);
        g_assert_true(run_until(f, &f->replied));
        assert_granted(f);
        g_assert_cmpuint(f->checks->len, ==, 1);
        g_assert_cmpstr(check_nth(f, 0)->subject_kind, ==, "system-bus-name");
        g_assert_cmpstr(check_nth(f, 0)->subject_name, ==, TEST_SENDER);
        g_assert_cmpstr(check_nth(f, 0)->action, ==, TEST_ACTION);
        assert_details(check_nth(f, 0)->details, (const char *const *) f->details);
        g_assert_cmpuint(check_nth(f, 0)->flags, ==, 0);
        /* Once to ask, once with the answer. */
        g_assert_cmpuint(f->n_runs, ==, 2);
}

static void test_granted_after_hold(Fixture *f, gconstpointer data) {
        /* Other calls may run while polkit thinks; nothing changes here. */
        script(f, ANSWER_HOLD);
        call_act(f, false);
        run_until_held(f);
        g_assert_false(f->replied);
        g_assert_cmpuint(polkit_registry_size(f->registry), ==, 1);
        answer_held(f, ANSWER_YES);
        g_assert_true(run_until(f, &f->replied));
        assert_granted(f);
        g_assert_cmpuint(f->checks->len, ==, 1);
}

static void test_denied(Fixture *f, gconstpointer data) {
        script(f, ANSWER_NO);
        call_act(f, true);
        g_assert_true(run_until(f, &f->replied));
        assert_refused(f, SD_BUS_ERROR_ACCESS_DENIED);
        assert_contains(f->error_message, TEST_ACTION);
        g_assert_cmpuint(f->checks->len, ==, 1);
}

static void test_challenge_interactive(Fixture *f, gconstpointer data) {
        script(f, ANSWER_CHALLENGE);
        call_act(f, true);
        g_assert_true(run_until(f, &f->replied));
        assert_refused(f, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
        assert_contains(f->error_message, TEST_ACTION);
        g_assert_cmpuint(check_nth(f, 0)->flags, ==, 1); /* AllowUserInteraction */
}

static void test_challenge_not_interactive(Fixture *f, gconstpointer data) {
        script(f, ANSWER_CHALLENGE);
        call_act(f, false);
        g_assert_true(run_until(f, &f->replied));
        assert_refused(f, SD_BUS_ERROR_ACCESS_DENIED);
        assert_contains(f->error_message, "administrator authentication is needed");
        g_assert_cmpuint(check_nth(f, 0)->flags, ==, 0);
}

static void test_polkit_fails(Fixture *f, gconstpointer data) {
        script(f, ANSWER_ERROR);
        call_act(f, false);
        g_assert_true(run_until(f, &f->replied));
        assert_refused(f, SD_BUS_ERROR_ACCESS_DENIED);
        assert_contains(f->error_message, "polkit could not be asked");
}

/* ---- what the call acts on changes while polkit answers ---- */

/* Calls Act; while polkit holds the question about alpha, the domain is
 * redefined as beta; polkit then answers `held` about alpha and `second`
 * to whatever it is asked next. */
static void run_swapped(Fixture *f, Answer held, Answer second, bool interactive) {
        script(f, ANSWER_HOLD);
        script(f, second);
        call_act(f, interactive);
        run_until_held(f);
        set_details(f, beta_details);
        answer_held(f, held);
        g_assert_true(run_until(f, &f->replied));
        g_assert_cmpuint(f->checks->len, ==, 2);
        assert_details(check_nth(f, 0)->details, alpha_details);
        assert_details(check_nth(f, 1)->details, beta_details);
}

static void test_stale_grant_then_denied(Fixture *f, gconstpointer data) {
        run_swapped(f, ANSWER_YES, ANSWER_NO, false);
        /* The grant for alpha was not used: polkit was asked about beta,
         * by the same caller, and said no. */
        assert_refused(f, SD_BUS_ERROR_ACCESS_DENIED);
        g_assert_cmpstr(check_nth(f, 1)->action, ==, TEST_ACTION);
        g_assert_cmpstr(check_nth(f, 1)->subject_name, ==, TEST_SENDER);
        g_assert_cmpuint(f->n_runs, ==, 3);
}

static void test_stale_grant_then_granted(Fixture *f, gconstpointer data) {
        run_swapped(f, ANSWER_YES, ANSWER_YES, false);
        assert_granted(f);
}

static void test_stale_denial_not_reused(Fixture *f, gconstpointer data) {
        /* A denial is an answer about other details too: ask again. */
        run_swapped(f, ANSWER_NO, ANSWER_YES, false);
        assert_granted(f);
}

static void test_stale_challenge_interactive(Fixture *f, gconstpointer data) {
        run_swapped(f, ANSWER_YES, ANSWER_CHALLENGE, true);
        assert_refused(f, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
        g_assert_cmpuint(check_nth(f, 1)->flags, ==, 1);
}

static void test_stale_action(Fixture *f, gconstpointer data) {
        script(f, ANSWER_HOLD);
        script(f, ANSWER_NO);
        call_act(f, false);
        run_until_held(f);
        g_free(f->action);
        f->action = g_strdup("org.vmigrate.migrate1.migrate");
        answer_held(f, ANSWER_YES);
        g_assert_true(run_until(f, &f->replied));

        assert_refused(f, SD_BUS_ERROR_ACCESS_DENIED);
        g_assert_cmpuint(f->checks->len, ==, 2);
        g_assert_cmpstr(check_nth(f, 0)->action, ==, TEST_ACTION);
        g_assert_cmpstr(check_nth(f, 1)->action, ==, "org.vmigrate.migrate1.migrate");
}

static void test_stale_bounded(Fixture *f, gconstpointer data) {
        /* Something that changes at every dispatch is asked about a few
         * times, then refused: never granted on an answer about another
         * run, never a loop. */
        f->change_details_each_run = true;
        for (unsigned i = 0; i < POLKIT_QUERIES_PER_CALL_MAX + 2; i++)
                script(f, ANSWER_YES);
        call_act(f, false);
        g_assert_true(run_until(f, &f->replied));

        assert_refused(f, SD_BUS_ERROR_ACCESS_DENIED);
        assert_contains(f->error_message, "changed");
        g_assert_cmpuint(f->checks->len, ==, POLKIT_QUERIES_PER_CALL_MAX);
        for (unsigned i = 0; i < f->checks->len; i++) {
                g_autofree char *run = g_strdup_printf("%u", i + 1);
                char **details = check_nth(f, i)->details;
                g_assert_cmpstr(g_strv_length(details) > 3 ? details[3] : NULL, ==, run);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/bus-polkit/details/equal", test_details_equal);
#define ADD(path, fn) g_test_add("/bus-polkit/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("details/check-authorization", test_check_authorization_message);
        ADD("verdict/granted", test_granted);
        ADD("verdict/granted-after-hold", test_granted_after_hold);
        ADD("verdict/denied", test_denied);
        ADD("verdict/challenge-interactive", test_challenge_interactive);
        ADD("verdict/challenge-not-interactive", test_challenge_not_interactive);
        ADD("verdict/polkit-fails", test_polkit_fails);
        ADD("stale/grant-then-denied", test_stale_grant_then_denied);
        ADD("stale/grant-then-granted", test_stale_grant_then_granted);
        ADD("stale/denial-not-reused", test_stale_denial_not_reused);
        ADD("stale/challenge-interactive", test_stale_challenge_interactive);
        ADD("stale/action", test_stale_action);
        ADD("stale/bounded", test_stale_bounded);
#undef ADD
        return g_test_run();
}
