/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QMP client against a scripted peer: the test holds the other end of a
 * socketpair and plays QEMU, running the client's sd-event loop while it
 * waits. The last case talks to a real qemu-system-x86_64 when there is one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "qmp.h"

#define GREETING                                                                                            \
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": "     \
        "\"Debian 1:10.0.2\"}, \"capabilities\": [\"oob\"]}}\r\n"
/* A QEMU that cannot run commands out of band (a monitor on a chardev
 * without its own thread). */
#define GREETING_NO_OOB                                                                                     \
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": "     \
        "\"\"}, \"capabilities\": []}}\r\n"

typedef struct Fixture Fixture;

/* An fd the fake QEMU received, with the byte of the stream it came with. */
typedef struct PeerFd {
        size_t offset;
        int fd;
} PeerFd;

typedef struct Reply {
        Fixture *f;
        const char *label;
        int calls;
        char *result; /* the "return" member as JSON text */
        char *error_class;
        char *message; /* error->message */
        bool error_is_backend_failed;
        bool free_qmp;     /* qmp_free() from inside the callback */
        bool execute_more; /* queue "follow-up" from inside the callback */
} Reply;

struct Fixture {
        sd_event *event;
        Qmp *qmp;
        int peer;      /* the fake QEMU's end */
        int client_fd; /* the client's end, owned by qmp; only for FIONREAD */
        GString *from_client;
        size_t from_client_erased; /* stream offset of from_client's first byte */
        GArray *peer_fds;          /* PeerFd: received, not yet claimed by a line */
        GString *log; /* "reply:<label> event:<name> ready closed " in order */
        int ready, closed;
        char *closed_message;
        char *last_event_data;
        uint64_t last_event_timestamp;
        bool free_on_event, free_on_ready, free_on_closed;
        bool in_api_call; /* set around qmp_close(): no callback may run then */
        bool reentrant_callback;
        Reply follow_up;
};

static char *node_to_string(JsonNode *node) {
        g_autoptr(JsonGenerator) generator = json_generator_new();

        json_generator_set_root(generator, node);
        return json_generator_to_data(generator, NULL);
}

static void on_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                     void *userdata) {
        Reply *r = userdata;
        Fixture *f = r->f;

        if (f->in_api_call)
                f->reentrant_callback = true;
        r->calls++;
        g_string_append_printf(f->log, "reply:%s ", r->label);
        g_clear_pointer(&r->result, g_free);
        g_clear_pointer(&r->error_class, g_free);
        g_clear_pointer(&r->message, g_free);
        /* Exactly one of result and error. */
        g_assert_true((result == NULL) != (error == NULL));
        if (result)
                r->result = node_to_string(result);
        if (error) {
                r->message = g_strdup(error->message);
                r->error_is_backend_failed = g_error_matches(error, VM_ERROR, VM_ERROR_BACKEND_FAILED);
        }
        r->error_class = g_strdup(error_class);
        if (r->execute_more) {
                f->follow_up.f = f;
                f->follow_up.label = "follow-up";
                g_assert_cmpint(qmp_execute(qmp, "follow-up", NULL, 0, on_reply, &f->follow_up, NULL), ==,
                                0);
        }
        if (r->free_qmp)
                f->qmp = qmp_free(qmp);
}

static void on_event(Qmp *qmp, const char *event, JsonObject *data, uint64_t timestamp_usec,
                     void *userdata) {
        Fixture *f = userdata;

        if (f->in_api_call)
                f->reentrant_callback = true;
        g_string_append_printf(f->log, "event:%s ", event);
        g_clear_pointer(&f->last_event_data, g_free);
        if (data) {
                g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), data);
                f->last_event_data = node_to_string(node);
        }
        f->last_event_timestamp = timestamp_usec;
        if (f->free_on_event)
                f->qmp = qmp_free(qmp);
}

static void on_state(Qmp *qmp, QmpState state, const GError *error, void *userdata) {
        Fixture *f = userdata;

        if (f->in_api_call)
                f->reentrant_callback = true;
        if (state == QMP_READY) {
                g_assert_null(error);
                f->ready++;
                g_string_append(f->log, "ready ");
                if (f->free_on_ready)
                        f->qmp = qmp_free(qmp);
        } else {
                g_assert_cmpint(state, ==, QMP_CLOSED);
                g_assert_nonnull(error);
                f->closed++;
                g_string_append(f->log, "closed ");
                g_free(f->closed_message);
                f->closed_message = g_strdup(error ? error->message : NULL);
                if (f->free_on_closed)
                        f->qmp = qmp_free(qmp);
        }
}

/* Without a connection. */
static Fixture *fixture_alloc(void) {
        Fixture *f = g_new0(Fixture, 1);

        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        f->peer = -1;
        f->client_fd = -1;
        f->from_client = g_string_new(NULL);
        f->peer_fds = g_array_new(FALSE, FALSE, sizeof(PeerFd));
        f->log = g_string_new(NULL);
        return f;
}

static Fixture *fixture_new(void) {
        Fixture *f = fixture_alloc();
        g_autoptr(GError) error = NULL;
        int pair[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
        f->peer = pair[0];
        f->client_fd = pair[1];
        g_assert_cmpint(fcntl(f->peer, F_SETFL, O_NONBLOCK), ==, 0);
        g_assert_cmpint(qmp_new(f->event, on_event, on_state, f, &f->qmp), ==, 0);
        g_assert_cmpint(qmp_attach_fd(f->qmp, pair[1], &error), ==, 0);
        g_assert_no_error(error);
        return f;
}

static void fixture_free(Fixture *f) {
        qmp_free(f->qmp);
        if (f->peer >= 0)
                close(f->peer);
        sd_event_unref(f->event);
        g_string_free(f->from_client, TRUE);
        /* Every fd the client sent came with a command that claimed it. */
        g_assert_cmpuint(f->peer_fds->len, ==, 0);
        for (guint i = 0; i < f->peer_fds->len; i++)
                close(g_array_index(f->peer_fds, PeerFd, i).fd);
        g_array_unref(f->peer_fds);
        g_string_free(f->log, TRUE);
        g_free(f->closed_message);
        g_free(f->last_event_data);
        g_free(f->follow_up.result);
        g_free(f->follow_up.error_class);
        g_free(f->follow_up.message);
        g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fixture, fixture_free)

static void reply_clear(Reply *r) {
        g_clear_pointer(&r->result, g_free);
        g_clear_pointer(&r->error_class, g_free);
        g_clear_pointer(&r->message, g_free);
}

/* Polls a condition with a deadline, running the loop meanwhile. */
#define RUN_UNTIL(f, condition)                                                                             \
        ({                                                                                                  \
                int64_t _deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;                           \
                bool _ok;                                                                                   \
                while (!(_ok = (condition)) && g_get_monotonic_time() < _deadline)                          \
                        (void) sd_event_run((f)->event, 10 * 1000);                                         \
                _ok;                                                                                        \
        })

/* A few iterations: what the client does without new input. */
static void run_idle(Fixture *f) {
        for (int i = 0; i < 5; i++)
                (void) sd_event_run(f->event, 1000);
}

/* Writes everything (running the loop while the socket is full); false
 * once the client has closed. MSG_NOSIGNAL: our own write must not kill the
 * test when the client closes first. */
static bool peer_send_len(Fixture *f, const char *text, size_t length) {
        for (size_t done = 0; done < length;) {
                ssize_t n = send(f->peer, text + done, length - done, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EAGAIN) {
                                (void) sd_event_run(f->event, 10 * 1000);
                                continue;
                        }
                        return false;
                }
                done += n;
        }
        run_idle(f);
        return true;
}

static bool peer_send(Fixture *f, const char *text) {
        return peer_send_len(f, text, strlen(text));
}

/* One byte per read on the client side. */
static void peer_send_bytewise(Fixture *f, const char *text) {
        for (const char *p = text; *p; p++) {
                int pending = 1;

                g_assert_cmpint(send(f->peer, p, 1, MSG_NOSIGNAL), ==, 1);
                for (int i = 0; i < 100 && pending > 0 && qmp_get_state(f->qmp) != QMP_CLOSED; i++) {
                        (void) sd_event_run(f->event, 1000);
                        if (ioctl(f->client_fd, FIONREAD, &pending) < 0)
                                break;
                }
        }
}

/* One byte per recvmsg(): the kernel hands over fds with the first byte of
 * the sendmsg() that carried them, so each fd is tied to the exact byte it
 * was sent with. */
static bool peer_has_line(Fixture *f) {
        for (;;) {
                union {
                        struct cmsghdr header;
                        uint8_t buffer[CMSG_SPACE(4 * sizeof(int))];
                } control;
                char byte;
                struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
                struct msghdr message = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buffer,
                        .msg_controllen = sizeof(control.buffer),
                };
                ssize_t n = recvmsg(f->peer, &message, MSG_CMSG_CLOEXEC);

                if (n <= 0)
                        break;
                g_assert_false(message.msg_flags & MSG_CTRUNC);
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
                        g_assert_cmpint(c->cmsg_level, ==, SOL_SOCKET);
                        g_assert_cmpint(c->cmsg_type, ==, SCM_RIGHTS);
                        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                                PeerFd received = { .offset = f->from_client_erased + f->from_client->len };

                                memcpy(&received.fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                g_array_append_val(f->peer_fds, received);
                        }
                }
                g_string_append_len(f->from_client, &byte, 1);
        }
        return strchr(f->from_client->str, '\n') != NULL;
}

/* Reads the next command the client sent; asserts its name and returns its
 * id (the caller frees). arguments_json (if non-NULL) gets "arguments" as
 * JSON text, or NULL. ret_fd (if non-NULL) gets the one fd that came with
 * the command's first byte; without it, no fd may have come with it. */
static char *peer_expect_as(Fixture *f, const char *how, const char *command, char **arguments_json,
                            int *ret_fd) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *line = NULL;
        JsonObject *object;
        char *newline;
        size_t start, end;
        int fd = -1;

        if (ret_fd)
                *ret_fd = -1;
        if (!RUN_UNTIL(f, peer_has_line(f))) {
                g_test_message("no command arrived, expected '%s'", command);
                g_test_fail();
                return g_strdup("none");
        }
        newline = strchr(f->from_client->str, '\n');
        line = g_strndup(f->from_client->str, newline - f->from_client->str);
        g_string_erase(f->from_client, 0, newline - f->from_client->str + 1);
        start = f->from_client_erased;
        end = start + strlen(line) + 1;
        f->from_client_erased = end;

        while (f->peer_fds->len > 0 && g_array_index(f->peer_fds, PeerFd, 0).offset < end) {
                PeerFd received = g_array_index(f->peer_fds, PeerFd, 0);

                g_array_remove_index(f->peer_fds, 0);
                if (received.offset != start || !ret_fd || fd >= 0) {
                        g_test_message("an fd came with byte %zu of '%s' (expected: %s)",
                                       received.offset - start, line,
                                       ret_fd && fd < 0 ? "one with byte 0" : "none");
                        g_test_fail();
                        close(received.fd);
                        continue;
                }
                fd = received.fd;
        }
        if (ret_fd && fd < 0) {
                g_test_message("no fd came with '%s'", line);
                g_test_fail();
        }

        g_assert_true(json_parser_load_from_data(parser, line, -1, &error));
        g_assert_no_error(error);
        object = json_node_get_object(json_parser_get_root(parser));
        /* "execute" or "exec-oob", never both; always with a string id. */
        g_assert_cmpstr(json_object_get_string_member_with_default(object, how, NULL), ==, command);
        g_assert_false(json_object_has_member(object, strcmp(how, "execute") == 0 ? "exec-oob" : "execute"));
        g_assert_nonnull(json_object_get_string_member_with_default(object, "id", NULL));
        if (arguments_json) {
                JsonNode *arguments = json_object_get_member(object, "arguments");
                *arguments_json = arguments ? node_to_string(arguments) : NULL;
        }
        if (ret_fd)
                *ret_fd = fd;
        return g_strdup(json_object_get_string_member(object, "id"));
}

static char *peer_expect_fd(Fixture *f, const char *command, char **arguments_json, int *ret_fd) {
        return peer_expect_as(f, "execute", command, arguments_json, ret_fd);
}

static char *peer_expect(Fixture *f, const char *command, char **arguments_json) {
        return peer_expect_fd(f, command, arguments_json, NULL);
}

static char *peer_expect_oob(Fixture *f, const char *command, char **arguments_json) {
        return peer_expect_as(f, "exec-oob", command, arguments_json, NULL);
}

static bool peer_has_nothing(Fixture *f) {
        run_idle(f);
        return !peer_has_line(f) && f->from_client->len == 0;
}

static void greet_with(Fixture *f, const char *greeting) {
        g_autofree char *id = NULL;
        g_autofree char *reply = NULL;

        g_assert_true(peer_send(f, greeting));
        id = peer_expect(f, "qmp_capabilities", NULL);
        reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n", id);
        g_assert_true(peer_send(f, reply));
        g_assert_true(RUN_UNTIL(f, f->ready == 1));
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
}

/* As QEMU 10 greets on a unix socket: "oob" offered, and so enabled. */
static void greet(Fixture *f) {
        greet_with(f, GREETING);
        g_assert_true(qmp_oob_enabled(f->qmp));
}

static void reply_with(Fixture *f, const char *id, const char *return_json) {
        g_autofree char *text = g_strdup_printf("{\"return\": %s, \"id\": \"%s\"}\r\n", return_json, id);
        g_assert_true(peer_send(f, text));
}

static void test_negotiation(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply status = { .f = f, .label = "status" };
        g_autofree char *caps_id = NULL, *caps_args = NULL, *id = NULL;
        unsigned major, minor, micro;
        const char *package;
        const char *const *capabilities;

        g_assert_cmpint(qmp_get_version(f->qmp, &major, NULL, NULL, NULL), ==, -ENODATA);
        g_assert_null(qmp_get_capabilities(f->qmp));
        /* Queued before the greeting: nothing goes out until negotiated. */
        g_assert_cmpint(qmp_execute(f->qmp, "query-status", NULL, 0, on_reply, &status, NULL), ==, 0);
        g_assert_true(peer_has_nothing(f));
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_NEGOTIATING);

        g_assert_true(peer_send(f, GREETING));
        caps_id = peer_expect(f, "qmp_capabilities", &caps_args);
        g_assert_cmpstr(caps_id, ==, "vm-1");
        g_assert_cmpstr(caps_args, ==, "{\"enable\":[\"oob\"]}"); /* offered, so asked for */
        g_assert_true(peer_has_nothing(f));
        g_assert_cmpint(f->ready, ==, 0);
        g_assert_false(qmp_oob_enabled(f->qmp)); /* not before QEMU agreed */

        g_assert_cmpint(qmp_get_version(f->qmp, &major, &minor, &micro, &package), ==, 0);
        g_assert_cmpuint(major, ==, 10);
        g_assert_cmpuint(minor, ==, 0);
        g_assert_cmpuint(micro, ==, 2);
        g_assert_cmpstr(package, ==, "Debian 1:10.0.2");
        capabilities = qmp_get_capabilities(f->qmp);
        g_assert_nonnull(capabilities);
        g_assert_cmpstr(capabilities[0], ==, "oob");
        g_assert_null(capabilities[1]);

        reply_with(f, caps_id, "{}");
        g_assert_true(RUN_UNTIL(f, f->ready == 1));
        g_assert_true(qmp_oob_enabled(f->qmp));
        id = peer_expect(f, "query-status", NULL);
        g_assert_cmpstr(id, ==, "vm-2");
        reply_with(f, id, "{\"status\": \"running\", \"running\": true}");
        g_assert_true(RUN_UNTIL(f, status.calls == 1));
        g_assert_cmpstr(status.result, ==, "{\"status\":\"running\",\"running\":true}");
        g_assert_null(status.message);
        g_assert_cmpstr(f->log->str, ==, "ready reply:status ");
        reply_clear(&status);
}

static void test_ordering(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" }, c = { .f = f, .label = "c" };
        g_autofree char *id_a = NULL, *id_b = NULL, *id_c = NULL, *args = NULL;
        JsonObject *arguments = json_object_new();

        greet(f);
        json_object_set_string_member(arguments, "uri", "tcp:10.0.0.2:49152\n\"quoted\"");
        json_object_set_int_member(arguments, "bandwidth", 1234567890123);
        g_assert_cmpint(qmp_execute(f->qmp, "migrate", arguments, 0, on_reply, &a, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "query-migrate", NULL, 0, on_reply, &b, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "query-status", NULL, 0, on_reply, &c, NULL), ==, 0);

        id_a = peer_expect(f, "migrate", &args);
        g_assert_cmpstr(args, ==,
                        "{\"uri\":\"tcp:10.0.0.2:49152\\n\\\"quoted\\\"\",\"bandwidth\":1234567890123}");
        id_b = peer_expect(f, "query-migrate", NULL);
        id_c = peer_expect(f, "query-status", NULL);
        g_assert_cmpstr(id_a, !=, id_b);
        g_assert_cmpstr(id_b, !=, id_c);

        /* Out of order: each reply still reaches its own caller. */
        /* Escapes, a surrogate pair and brackets in a string are fine. */
        reply_with(f, id_c, "\"C\\ud83d\\ude00\\\"[{\\\\\"");
        reply_with(f, id_a, "\"A\"");
        reply_with(f, id_b, "[1, 2]");
        g_assert_true(RUN_UNTIL(f, a.calls + b.calls + c.calls == 3));
        g_assert_cmpstr(a.result, ==, "\"A\"");
        g_assert_cmpstr(b.result, ==, "[1,2]");
        g_assert_cmpstr(c.result, ==, "\"C\xf0\x9f\x98\x80\\\"[{\\\\\"");
        g_assert_cmpstr(f->log->str, ==, "ready reply:c reply:a reply:b ");
        g_assert_cmpint(a.calls, ==, 1);
        reply_clear(&a), reply_clear(&b), reply_clear(&c);
}

/* No "oob" in the greeting: none asked for, and qmp_execute_oob() falls
 * back to "execute", in order with the rest. */
static void test_negotiation_without_oob(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply status = { .f = f, .label = "status" }, pause = { .f = f, .label = "pause" };
        g_autofree char *caps_id = NULL, *caps_args = NULL, *id_status = NULL, *id_pause = NULL;

        g_assert_cmpint(qmp_execute(f->qmp, "query-status", NULL, 0, on_reply, &status, NULL), ==, 0);
        g_assert_cmpint(qmp_execute_oob(f->qmp, "migrate-pause", NULL, 0, on_reply, &pause, NULL), ==, 0);
        g_assert_true(peer_send(f, GREETING_NO_OOB));
        caps_id = peer_expect(f, "qmp_capabilities", &caps_args);
        g_assert_null(caps_args);
        reply_with(f, caps_id, "{}");
        g_assert_true(RUN_UNTIL(f, f->ready == 1));
        g_assert_false(qmp_oob_enabled(f->qmp));
        g_assert_null(qmp_get_capabilities(f->qmp)[0]);

        id_status = peer_expect(f, "query-status", NULL);
        id_pause = peer_expect(f, "migrate-pause", NULL); /* "execute", not "exec-oob" */
        g_assert_cmpstr(id_pause, ==, "vm-3");
        /* In band, an id-less error is the oldest command's. */
        g_assert_true(peer_send(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"parse\"}}\r\n"));
        g_assert_true(RUN_UNTIL(f, status.calls == 1));
        g_assert_cmpstr(status.error_class, ==, "GenericError");
        reply_with(f, id_pause, "{}");
        g_assert_true(RUN_UNTIL(f, pause.calls == 1));
        g_assert_cmpstr(pause.result, ==, "{}");
        g_assert_cmpstr(f->log->str, ==, "ready reply:status reply:pause ");
        reply_clear(&status), reply_clear(&pause);
}

/* With "oob": exec-oob with an id, sent past queued in-band commands, and
 * its reply overtaking theirs reaches its own caller; an id-less error
 * (which QEMU queues in band) is the oldest in-band command's, never an
 * out-of-band one's. */
static void test_oob_out_of_order(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" }, c = { .f = f, .label = "c" },
              d = { .f = f, .label = "d" }, e = { .f = f, .label = "e" };
        g_autofree char *id_a = NULL, *id_b = NULL, *id_c = NULL, *id_d = NULL, *id_e = NULL, *args = NULL;
        JsonObject *recover = json_object_new();

        /* Asked for before negotiation: it waits like the rest. */
        g_assert_cmpint(qmp_execute(f->qmp, "query-migrate", NULL, 0, on_reply, &a, NULL), ==, 0);
        g_assert_cmpint(qmp_execute_oob(f->qmp, "migrate-pause", NULL, 0, on_reply, &e, NULL), ==, 0);
        greet(f);
        id_a = peer_expect(f, "query-migrate", NULL);
        id_e = peer_expect_oob(f, "migrate-pause", NULL);
        g_assert_cmpstr(id_e, ==, "vm-3");

        g_assert_cmpint(qmp_execute(f->qmp, "query-status", NULL, 0, on_reply, &b, NULL), ==, 0);
        json_object_set_string_member(recover, "uri", "tcp:[::]:49152");
        g_assert_cmpint(qmp_execute_oob(f->qmp, "migrate-recover", recover, 0, on_reply, &c, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "cont", NULL, 0, on_reply, &d, NULL), ==, 0);
        id_b = peer_expect(f, "query-status", NULL);
        id_c = peer_expect_oob(f, "migrate-recover", &args);
        g_assert_cmpstr(args, ==, "{\"uri\":\"tcp:[::]:49152\"}");
        id_d = peer_expect(f, "cont", NULL);
        g_assert_cmpstr(id_c, ==, "vm-5");

        /* QEMU's main loop is stuck in "query-migrate": the out-of-band
         * replies come first, the newest first. */
        reply_with(f, id_c, "{}");
        g_assert_true(RUN_UNTIL(f, c.calls == 1));
        g_assert_cmpstr(c.result, ==, "{}");
        g_assert_true(peer_send(f,
                                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"not now\"}, \"id\": "
                                "\"vm-3\"}\r\n"));
        g_assert_true(RUN_UNTIL(f, e.calls == 1));
        g_assert_cmpstr(e.error_class, ==, "GenericError");
        g_assert_cmpint(a.calls + b.calls + d.calls, ==, 0);

        /* Then the main loop runs again: in order. */
        g_assert_true(peer_send(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"parse\"}}\r\n"));
        g_assert_true(RUN_UNTIL(f, a.calls == 1));
        g_assert_cmpstr(a.error_class, ==, "GenericError");
        reply_with(f, id_b, "\"B\"");
        reply_with(f, id_d, "\"D\"");
        g_assert_true(RUN_UNTIL(f, d.calls == 1));
        g_assert_cmpstr(b.result, ==, "\"B\"");
        g_assert_cmpstr(d.result, ==, "\"D\"");
        g_assert_cmpstr(f->log->str, ==, "ready reply:c reply:e reply:a reply:b reply:d ");

        /* Only an out-of-band command pending: an id-less error is no one's. */
        reply_clear(&c);
        g_assert_cmpint(qmp_execute_oob(f->qmp, "migrate-pause", NULL, 0, on_reply, &c, NULL), ==, 0);
        g_free(id_c);
        id_c = peer_expect_oob(f, "migrate-pause", NULL);
        g_assert_true(peer_send(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"parse\"}}\r\n"));
        g_assert_cmpint(c.calls, ==, 1);
        reply_with(f, id_c, "{}");
        g_assert_true(RUN_UNTIL(f, c.calls == 2));
        g_assert_cmpstr(c.result, ==, "{}");
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
        reply_clear(&a), reply_clear(&b), reply_clear(&c), reply_clear(&d), reply_clear(&e);
}

static void test_events(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
        g_autofree char *id_a = NULL, *id_b = NULL, *text = NULL;

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "stop", NULL, 0, on_reply, &a, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "cont", NULL, 0, on_reply, &b, NULL), ==, 0);
        id_a = peer_expect(f, "stop", NULL);
        id_b = peer_expect(f, "cont", NULL);
        text = g_strdup_printf(
                "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, \"event\": "
                "\"STOP\"}\r\n"
                "{\"return\": {}, \"id\": \"%s\"}\r\n"
                "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"active\"}, "
                "\"timestamp\": {\"seconds\": 1, \"microseconds\": 5}}\r\n"
                "{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": -1, \"microseconds\": -1}}\r\n"
                "{\"return\": {}, \"id\": \"%s\"}\r\n"
                "{\"event\": \"NO_TIMESTAMP\"}\r\n",
                id_a, id_b);
        g_assert_true(peer_send(f, text));
        g_assert_true(RUN_UNTIL(f, strstr(f->log->str, "NO_TIMESTAMP") != NULL));
        g_assert_cmpstr(f->log->str, ==,
                        "ready event:STOP reply:a event:MIGRATION event:RESUME reply:b event:NO_TIMESTAMP ");
        g_assert_null(f->last_event_data);
        g_assert_cmpuint(f->last_event_timestamp, ==, 0);
        reply_clear(&a), reply_clear(&b);

        /* The data and timestamp of one event, checked alone. */
        g_assert_true(peer_send(f,
                                "{\"event\": \"MIGRATION_PASS\", \"data\": {\"pass\": 3}, "
                                "\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}}\n"));
        g_assert_true(RUN_UNTIL(f, g_str_has_suffix(f->log->str, "event:MIGRATION_PASS ")));
        g_assert_cmpstr(f->last_event_data, ==, "{\"pass\":3}");
        g_assert_cmpuint(f->last_event_timestamp, ==, UINT64_C(1700000000123456));
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
}

static void test_split_and_merged(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
        g_autofree char *caps = NULL, *id_a = NULL, *id_b = NULL, *text = NULL;

        g_assert_cmpint(qmp_execute(f->qmp, "query-a", NULL, 0, on_reply, &a, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "query-b", NULL, 0, on_reply, &b, NULL), ==, 0);
        /* A greeting one byte per read, then a reply split mid-token. */
        peer_send_bytewise(f, GREETING);
        caps = peer_expect(f, "qmp_capabilities", NULL);
        text = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n", caps);
        peer_send_bytewise(f, text);
        g_assert_true(RUN_UNTIL(f, f->ready == 1));
        id_a = peer_expect(f, "query-a", NULL);
        id_b = peer_expect(f, "query-b", NULL);

        g_free(text);
        /* Both replies and an event in one write, with "\n" and "\r\n" ends
         * and a blank line; then a reply split across two writes. */
        text = g_strdup_printf("{\"return\": 1, \"id\": \"%s\"}\n\r\n{\"event\": \"E1\"}\r\n"
                               "{\"return\": 2, \"id\": \"%s\"}\r\n{\"event\": \"E2\"}\r\n",
                               id_a, id_b);
        g_assert_true(peer_send(f, text));
        g_assert_true(RUN_UNTIL(f, b.calls == 1 && strstr(f->log->str, "E2")));
        g_assert_cmpstr(a.result, ==, "1");
        g_assert_cmpstr(b.result, ==, "2");
        g_assert_cmpstr(f->log->str, ==, "ready reply:a event:E1 reply:b event:E2 ");

        g_assert_true(peer_send(f, "{\"event\": \"SPL"));
        g_assert_true(g_str_has_suffix(f->log->str, "E2 "));
        g_assert_true(peer_send(f, "IT\"}\r"));
        g_assert_true(g_str_has_suffix(f->log->str, "E2 "));
        g_assert_true(peer_send(f, "\n"));
        g_assert_true(RUN_UNTIL(f, g_str_has_suffix(f->log->str, "event:SPLIT ")));
        reply_clear(&a), reply_clear(&b);
}

static void test_error_reply(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" };
        g_autofree char *id = NULL, *text = NULL;

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "no-such-command", NULL, 0, on_reply, &a, NULL), ==, 0);
        id = peer_expect(f, "no-such-command", NULL);
        text = g_strdup_printf("{\"id\": \"%s\", \"error\": {\"class\": \"CommandNotFound\", "
                               "\"desc\": \"The command no-such-command has not been found\"}}\r\n",
                               id);
        g_assert_true(peer_send(f, text));
        g_assert_true(RUN_UNTIL(f, a.calls == 1));
        g_assert_null(a.result);
        g_assert_cmpstr(a.error_class, ==, "CommandNotFound");
        g_assert_true(a.error_is_backend_failed);
        g_assert_nonnull(strstr(a.message, "no-such-command"));
        g_assert_nonnull(strstr(a.message, "The command no-such-command has not been found"));
        g_assert_nonnull(strstr(a.message, "CommandNotFound"));
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
        reply_clear(&a);
}

static void test_reply_without_id(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
        g_autofree char *id_a = NULL, *id_b = NULL;

        greet(f);
        /* Nothing pending: ignored, the connection stays. */
        g_assert_true(peer_send(
                f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n"));
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);

        g_assert_cmpint(qmp_execute(f->qmp, "first", NULL, 0, on_reply, &a, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "second", NULL, 0, on_reply, &b, NULL), ==, 0);
        id_a = peer_expect(f, "first", NULL);
        id_b = peer_expect(f, "second", NULL);
        /* An id-less error goes to the oldest command in flight. */
        g_assert_true(peer_send(
                f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n"));
        g_assert_true(RUN_UNTIL(f, a.calls == 1));
        g_assert_cmpint(b.calls, ==, 0);
        g_assert_cmpstr(a.error_class, ==, "GenericError");
        g_assert_nonnull(strstr(a.message, "JSON parse error"));

        /* A reply whose id matches nothing is ignored; b still gets its own. */
        g_assert_true(peer_send(f, "{\"return\": \"stray\", \"id\": \"vm-999\"}\r\n"));
        g_assert_true(peer_send(f, "{\"return\": \"stray\", \"id\": \"\\u001b[2J\\nforged log line\"}\r\n"));
        g_assert_cmpint(b.calls, ==, 0);
        reply_with(f, id_a, "\"again\""); /* a is answered already */
        g_assert_cmpint(a.calls, ==, 1);
        reply_with(f, id_b, "\"B\"");
        g_assert_true(RUN_UNTIL(f, b.calls == 1));
        g_assert_cmpstr(b.result, ==, "\"B\"");
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
        reply_clear(&a), reply_clear(&b);
}

/* A reply that names its command but is malformed fails that command only. */
static void test_malformed_reply_fails_command(void) {
        static const struct {
                const char *body;
                const char *expect;
        } cases[] = {
                { "\"return\": {}, \"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}", "both" },
                { "\"error\": \"boom\"", "lacks string" },
                { "\"error\": {\"class\": 1, \"desc\": \"x\"}", "lacks string" },
                { "\"error\": {\"class\": \"GenericError\"}", "lacks string" },
                { "\"error\": {\"class\": \"GenericError\", \"desc\": null}", "lacks string" },
                { "\"error\": []", "lacks string" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Fixture) f = fixture_new();
                Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
                g_autofree char *id = NULL, *text = NULL;

                g_test_message("case %zu: %s", i, cases[i].body);
                greet(f);
                g_assert_cmpint(qmp_execute(f->qmp, "cmd", NULL, 0, on_reply, &a, NULL), ==, 0);
                id = peer_expect(f, "cmd", NULL);
                text = g_strdup_printf("{%s, \"id\": \"%s\"}\r\n", cases[i].body, id);
                g_assert_true(peer_send(f, text));
                g_assert_true(RUN_UNTIL(f, a.calls == 1));
                g_assert_null(a.result);
                g_assert_null(a.error_class);
                g_assert_nonnull(a.message);
                g_assert_nonnull(strstr(a.message, cases[i].expect));
                g_assert_nonnull(strstr(a.message, "'cmd'"));
                /* Still usable. */
                g_free(id);
                g_assert_cmpint(qmp_execute(f->qmp, "next", NULL, 0, on_reply, &b, NULL), ==, 0);
                id = peer_expect(f, "next", NULL);
                reply_with(f, id, "true");
                g_assert_true(RUN_UNTIL(f, b.calls == 1));
                g_assert_cmpstr(b.result, ==, "true");
                reply_clear(&a), reply_clear(&b);
        }
}

/* A message that cannot be attributed closes the connection; every pending
 * command fails and the state callback tells why. */
static void test_hostile_closes(void) {
        g_autofree char *deep = NULL, *deep_string = NULL;
        static const struct {
                const char *line;
                const char *expect;
                bool before_greeting;
        } cases[] = {
                { "{\"return\": {}, \"id\": 2}\r\n", "not a string" },
                { "{\"return\": {}, \"id\": {\"x\": 1}}\r\n", "not a string" },
                { "[1, 2]\r\n", "not a JSON object" },
                { "\"vm-2\"\r\n", "not a JSON object" },
                { "null\r\n", "not a JSON object" },
                { "42\r\n", "not a JSON object" },
                { "{\"return\": \r\n", "not valid JSON" },
                { "{\"return\": {}} trailing\r\n", "not JSON" },
                { "{'return': {}}\r\n", "not JSON" },
                { "{/* c */ \"return\": {}}\r\n", "not JSON" },
                { "{\"return\": \"\xff\xfe\"}\r\n", "not valid UTF-8" },
                { "{\"return\": \"\\udfff x\"}\r\n", "lone low surrogate" },
                { "{\"return\": \"\\ud800\"}\r\n", "lone high surrogate" },
                { "{\"return\": \"\\uD800\\u0041\"}\r\n", "lone high surrogate" },
                { "{\"return\": \"\\\\\\\"a\\u0000b\", \"id\": \"vm-2\"}\r\n", "escaped NUL" },
                { "{\"event\": \"\\ud8u0041\"}\r\n", "invalid escape" },
                { "{\"event\": \"\\x41\"}\r\n", "invalid escape" },
                /* json-glib's own error message cuts the decoded U+E85D in two */
                { "{\"r5e80dx00805dx0u805e05due805dxe8x00\\ue85d\"\r\n", "not valid JSON" },
                { "{\"event\": 5}\r\n", "\"event\" is not a string" },
                { "{\"event\": \"X\", \"data\": [1]}\r\n", "\"data\" is not an object" },
                { "{\"event\": \"X\", \"timestamp\": {\"seconds\": \"1\", \"microseconds\": 0}}\r\n",
                  "timestamp" },
                { "{\"event\": \"X\", \"timestamp\": 7}\r\n", "timestamp" },
                { "{\"foo\": 1}\r\n", "neither a reply nor an event" },
                { GREETING, "second greeting" },
                { "{\"return\": {}}\r\n", "not the QMP greeting", true },
                { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"10\", \"minor\": 0, \"micro\": 2}, "
                  "\"package\": \"\"}, \"capabilities\": []}}\r\n",
                  "\"major\" is not an integer", true },
                { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 10, \"minor\": 0, \"micro\": -2}, "
                  "\"package\": \"\"}, \"capabilities\": []}}\r\n",
                  "out of range", true },
                { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 10, \"minor\": 0, \"micro\": 2}, "
                  "\"package\": 7}, \"capabilities\": []}}\r\n",
                  "package", true },
                { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 10, \"minor\": 0, \"micro\": 2}}, "
                  "\"capabilities\": {}}}\r\n",
                  "capabilities", true },
                { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 10, \"minor\": 0, \"micro\": 2}}, "
                  "\"capabilities\": [1]}}\r\n",
                  "capability 0", true },
                { "{\"QMP\": {\"version\": 10, \"capabilities\": []}}\r\n", "\"version\" is not", true },
                { "{\"QMP\": []}\r\n", "\"QMP\" is not an object", true },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases) + 3; i++) {
                g_autoptr(Fixture) f = fixture_new();
                Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
                g_autofree char *id = NULL;
                const char *line, *expect;
                size_t length;
                bool before_greeting = false;

                if (i < G_N_ELEMENTS(cases)) {
                        line = cases[i].line;
                        length = strlen(line);
                        expect = cases[i].expect;
                        before_greeting = cases[i].before_greeting;
                } else if (i == G_N_ELEMENTS(cases)) {
                        /* json-glib recurses per level: bounded before it sees it. */
                        deep = g_strnfill(100000, '[');
                        line = deep;
                        length = strlen(line);
                        expect = "nested too deeply";
                } else if (i == G_N_ELEMENTS(cases) + 1) {
                        line = "{\"return\": \"a\0b\"}\r\n";
                        length = 19;
                        expect = "not valid UTF-8"; /* NUL */
                } else {
                        /* Brackets inside a string do not count as nesting, but
                         * the (bogus) member name still gets the line refused. */
                        deep_string = g_strdup_printf("{\"return\": \"%s\", \"id\": 7}\r\n", deep);
                        line = deep_string;
                        length = strlen(line);
                        expect = "not a string";
                }
                g_autofree char *shown = g_strndup(line, MIN(length, 60));
                g_autofree char *escaped = g_strescape(shown, NULL);
                g_test_message("case %zu: %s", i, escaped);

                if (!before_greeting)
                        greet(f);
                g_assert_cmpint(qmp_execute(f->qmp, "cmd-a", NULL, 0, on_reply, &a, NULL), ==, 0);
                if (!before_greeting)
                        id = peer_expect(f, "cmd-a", NULL);
                g_assert_cmpint(qmp_execute(f->qmp, "cmd-b", NULL, 0, on_reply, &b, NULL), ==, 0);
                (void) peer_send_len(f, line, length);
                if (line == deep)
                        (void) peer_send(f, "\r\n");
                g_assert_true(RUN_UNTIL(f, f->closed == 1));
                g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_CLOSED);
                g_assert_nonnull(f->closed_message);
                if (f->closed_message) {
                        g_assert_nonnull(strstr(f->closed_message, "QMP protocol error"));
                        g_assert_nonnull(strstr(f->closed_message, expect));
                        g_assert_true(g_utf8_validate(f->closed_message, -1, NULL));
                }
                g_assert_cmpint(a.calls, ==, 1);
                g_assert_cmpint(b.calls, ==, 1);
                g_assert_nonnull(a.message);
                if (a.message) {
                        g_assert_nonnull(strstr(a.message, "connection closed"));
                        g_assert_nonnull(strstr(a.message, expect));
                }
                /* Commands fail first, then the state report. */
                g_assert_true(g_str_has_suffix(f->log->str, "reply:a reply:b closed "));
                reply_clear(&a), reply_clear(&b);
        }
}

static void test_nesting_within_limit(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" };
        g_autofree char *id = NULL, *open = g_strnfill(1000, '['), *close_ = g_strnfill(1000, ']');
        g_autofree char *value = g_strconcat(open, close_, NULL);

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "deep", NULL, 0, on_reply, &a, NULL), ==, 0);
        id = peer_expect(f, "deep", NULL);
        reply_with(f, id, value);
        g_assert_true(RUN_UNTIL(f, a.calls == 1));
        g_assert_cmpstr(a.result, ==, value);
        reply_clear(&a);
}

static void test_long_lines(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
        g_autofree char *id = NULL, *big = NULL, *text = NULL, *junk = NULL;

        greet(f);
        /* 4 MiB: large but legitimate. */
        g_assert_cmpint(qmp_execute(f->qmp, "query-big", NULL, 0, on_reply, &a, NULL), ==, 0);
        id = peer_expect(f, "query-big", NULL);
        big = g_strnfill(4 * 1024 * 1024, 'x');
        text = g_strdup_printf("{\"return\": \"%s\", \"id\": \"%s\"}\r\n", big, id);
        g_assert_true(peer_send(f, text));
        g_assert_true(RUN_UNTIL(f, a.calls == 1));
        g_assert_nonnull(a.result);
        g_assert_cmpuint(a.result ? strlen(a.result) : 0, ==, 4 * 1024 * 1024 + 2);

        /* Past the cap without a newline: closed, pending command failed. */
        g_assert_cmpint(qmp_execute(f->qmp, "query-bigger", NULL, 0, on_reply, &b, NULL), ==, 0);
        g_free(id);
        id = peer_expect(f, "query-bigger", NULL);
        junk = g_strnfill(QMP_MAX_LINE + 4096, ' ');
        (void) peer_send_len(f, junk, QMP_MAX_LINE + 4096);
        g_assert_true(RUN_UNTIL(f, f->closed == 1));
        g_assert_nonnull(strstr(f->closed_message, "longer than 16 MiB"));
        g_assert_cmpint(b.calls, ==, 1);
        g_assert_nonnull(strstr(b.message, "longer than 16 MiB"));
        reply_clear(&a), reply_clear(&b);
}

static void test_timeout(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply queued = { .f = f, .label = "queued" }, slow = { .f = f, .label = "slow" },
              next = { .f = f, .label = "next" };
        g_autofree char *id_slow = NULL, *id_next = NULL;
        int64_t start;

        /* Times out while still queued (no greeting yet): never sent. */
        g_assert_cmpint(qmp_execute(f->qmp, "queued", NULL, 20 * 1000, on_reply, &queued, NULL), ==, 0);
        g_assert_true(RUN_UNTIL(f, queued.calls == 1));
        g_assert_nonnull(strstr(queued.message, "did not answer QMP command 'queued' within 20 ms"));
        greet(f);

        start = g_get_monotonic_time();
        g_assert_cmpint(qmp_execute(f->qmp, "slow", NULL, 50 * 1000, on_reply, &slow, NULL), ==, 0);
        id_slow = peer_expect(f, "slow", NULL);
        g_assert_cmpstr(id_slow, ==, "vm-2");
        g_assert_true(RUN_UNTIL(f, slow.calls == 1));
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 50 * 1000);
        g_assert_nonnull(strstr(slow.message, "within 50 ms"));
        g_assert_null(slow.error_class);

        g_assert_cmpint(qmp_execute(f->qmp, "next", NULL, 10 * G_USEC_PER_SEC, on_reply, &next, NULL), ==,
                        0);
        id_next = peer_expect(f, "next", NULL);
        /* The late reply (even an id-less one, as QEMU answers in order) is
         * the slow command's, and dropped; the next reply is next's. */
        g_assert_true(peer_send(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"late\"}}\r\n"));
        g_assert_cmpint(slow.calls, ==, 1);
        g_assert_cmpint(next.calls, ==, 0);
        reply_with(f, id_next, "\"N\"");
        g_assert_true(RUN_UNTIL(f, next.calls == 1));
        g_assert_cmpstr(next.result, ==, "\"N\"");
        g_assert_cmpint(slow.calls, ==, 1);
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
        reply_clear(&queued), reply_clear(&slow), reply_clear(&next);
}

static void test_negotiation_failures(void) {
        {
                g_autoptr(Fixture) f = fixture_new();
                Reply a = { .f = f, .label = "a" };
                g_autofree char *id = NULL, *text = NULL;

                g_assert_cmpint(qmp_execute(f->qmp, "cmd", NULL, 0, on_reply, &a, NULL), ==, 0);
                g_assert_true(peer_send(f, GREETING));
                id = peer_expect(f, "qmp_capabilities", NULL);
                text = g_strdup_printf("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, "
                                       "\"id\": \"%s\"}\r\n",
                                       id);
                g_assert_true(peer_send(f, text));
                g_assert_true(RUN_UNTIL(f, f->closed == 1));
                g_assert_nonnull(strstr(f->closed_message, "negotiation failed"));
                g_assert_cmpint(a.calls, ==, 1);
                g_assert_cmpint(f->ready, ==, 0);
                reply_clear(&a);
        }
        {
                g_autoptr(Fixture) f = fixture_alloc();
                int pair[2];

                g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
                f->peer = pair[0];
                g_assert_cmpint(qmp_new(f->event, on_event, on_state, f, &f->qmp), ==, 0);
                qmp_set_negotiation_timeout(f->qmp, 30 * 1000);
                g_assert_cmpint(qmp_attach_fd(f->qmp, pair[1], NULL), ==, 0);
                g_assert_true(RUN_UNTIL(f, f->closed == 1));
                g_assert_nonnull(strstr(f->closed_message, "sent no QMP greeting within 30 ms"));
        }
}

static void test_eof_pending(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
        g_autoptr(GError) error = NULL;
        g_autofree char *id = NULL;

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "migrate", NULL, 0, on_reply, &a, NULL), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "query-migrate", NULL, 0, on_reply, &b, NULL), ==, 0);
        id = peer_expect(f, "migrate", NULL);
        /* QEMU dies: an event made it out, the replies did not. */
        g_assert_true(peer_send(f, "{\"event\": \"STOP\"}\r\n"));
        close(f->peer);
        f->peer = -1;
        g_assert_true(RUN_UNTIL(f, f->closed == 1));
        g_assert_cmpstr(f->log->str, ==, "ready event:STOP reply:a reply:b closed ");
        g_assert_nonnull(strstr(a.message, "'migrate' failed, connection closed"));
        g_assert_nonnull(strstr(b.message, "connection closed"));
        g_assert_nonnull(strstr(f->closed_message, "QEMU closed the QMP connection"));
        g_assert_cmpint(qmp_execute(f->qmp, "cont", NULL, 0, on_reply, &a, &error), ==, -ENOTCONN);
        g_assert_error(error, VM_ERROR, VM_ERROR_BACKEND_FAILED);
        run_idle(f);
        g_assert_cmpint(a.calls, ==, 1);
        reply_clear(&a), reply_clear(&b);
}

/* The peer stops reading: our write fails with EPIPE, which must neither
 * raise SIGPIPE (this test keeps its default action: it would die) nor lose
 * the pending commands. */
static void test_write_epipe(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" };

        greet(f);
        g_assert_cmpint(shutdown(f->peer, SHUT_RD), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "quit", NULL, 0, on_reply, &a, NULL), ==, 0);
        g_assert_true(RUN_UNTIL(f, f->closed == 1));
        g_assert_cmpint(a.calls, ==, 1);
        g_assert_nonnull(strstr(a.message, "connection closed"));
        g_assert_nonnull(strstr(f->closed_message, "writing to the QMP socket failed"));
        reply_clear(&a);
}

static void test_close_not_reentrant(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };

        g_assert_cmpint(qmp_execute(f->qmp, "queued", NULL, 0, on_reply, &b, NULL), ==, 0);
        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "sent", NULL, 0, on_reply, &a, NULL), ==, 0);
        f->in_api_call = true;
        qmp_close(f->qmp);
        qmp_close(f->qmp); /* idempotent */
        f->in_api_call = false;
        g_assert_cmpint(a.calls, ==, 0);
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_CLOSED);
        g_assert_true(RUN_UNTIL(f, a.calls == 1));
        g_assert_false(f->reentrant_callback);
        g_assert_nonnull(strstr(a.message, "closed by vmigrated"));
        run_idle(f);
        g_assert_cmpint(f->closed, ==, 0); /* the owner closed it: no report */
        reply_clear(&a), reply_clear(&b);
}

static void test_execute_from_callback(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a", .execute_more = true };
        g_autofree char *id = NULL, *id2 = NULL;

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "first", NULL, 0, on_reply, &a, NULL), ==, 0);
        id = peer_expect(f, "first", NULL);
        reply_with(f, id, "{}");
        id2 = peer_expect(f, "follow-up", NULL);
        reply_with(f, id2, "\"F\"");
        g_assert_true(RUN_UNTIL(f, f->follow_up.calls == 1));
        g_assert_cmpstr(f->follow_up.result, ==, "\"F\"");
        reply_clear(&a);
}

/* qmp_free() from inside each kind of callback while more input is
 * buffered or more callbacks are due: nothing further may be called and
 * nothing may be touched (valgrind/ASan check the latter). */
static void test_free_in_callback(void) {
        for (int variant = 0; variant < 6; variant++) {
                g_autoptr(Fixture) f = fixture_new();
                Reply a = { .f = f, .label = "a" }, b = { .f = f, .label = "b" };
                g_autofree char *id_a = NULL, *id_b = NULL, *text = NULL;

                g_test_message("variant %d", variant);
                if (variant == 0) {
                        /* In the READY report, with queued commands just sent. */
                        f->free_on_ready = true;
                        g_assert_cmpint(qmp_execute(f->qmp, "x", NULL, 0, on_reply, &a, NULL), ==, 0);
                        g_assert_true(peer_send(f, GREETING));
                        g_free(id_a);
                        id_a = peer_expect(f, "qmp_capabilities", NULL);
                        text = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n{\"event\": \"E\"}\r\n",
                                               id_a);
                        g_assert_true(peer_send(f, text));
                        g_assert_true(RUN_UNTIL(f, f->qmp == NULL));
                        run_idle(f);
                        g_assert_cmpstr(f->log->str, ==, "ready ");
                        g_assert_cmpint(a.calls, ==, 0);
                        continue;
                }

                greet(f);
                g_assert_cmpint(
                        qmp_execute(f->qmp, "a", NULL, variant == 4 ? 20 * 1000 : 0, on_reply, &a, NULL), ==,
                        0);
                g_assert_cmpint(qmp_execute(f->qmp, "b", NULL, 0, on_reply, &b, NULL), ==, 0);
                id_a = peer_expect(f, "a", NULL);
                id_b = peer_expect(f, "b", NULL);
                switch (variant) {
                case 1: /* in a reply callback, the next reply in the same read */
                        a.free_qmp = true;
                        text = g_strdup_printf(
                                "{\"return\": 1, \"id\": \"%s\"}\r\n{\"return\": 2, \"id\": \"%s\"}\r\n"
                                "{\"event\": \"E\"}\r\n",
                                id_a, id_b);
                        g_assert_true(peer_send(f, text));
                        g_assert_cmpstr(f->log->str, ==, "ready reply:a ");
                        break;
                case 2: /* in an event callback */
                        f->free_on_event = true;
                        text = g_strdup_printf("{\"event\": \"E\"}\r\n{\"return\": 1, \"id\": \"%s\"}\r\n",
                                               id_a);
                        g_assert_true(peer_send(f, text));
                        g_assert_cmpstr(f->log->str, ==, "ready event:E ");
                        break;
                case 3: /* in a "connection closed" failure, more failures due */
                        a.free_qmp = true;
                        close(f->peer);
                        f->peer = -1;
                        g_assert_true(RUN_UNTIL(f, f->qmp == NULL));
                        run_idle(f);
                        g_assert_cmpstr(f->log->str, ==, "ready reply:a ");
                        break;
                case 4: /* in a timeout callback; the late reply never arrives anywhere */
                        a.free_qmp = true;
                        g_assert_true(RUN_UNTIL(f, f->qmp == NULL));
                        g_assert_cmpstr(f->log->str, ==, "ready reply:a ");
                        break;
                case 5: /* in the CLOSED report */
                        f->free_on_closed = true;
                        g_assert_true(peer_send(f, "garbage\r\n"));
                        g_assert_true(RUN_UNTIL(f, f->qmp == NULL));
                        g_assert_cmpstr(f->log->str, ==, "ready reply:a reply:b closed ");
                        break;
                }
                g_assert_null(f->qmp);
                run_idle(f);
                g_assert_cmpint(b.calls, ==, variant == 5 ? 1 : 0);
                reply_clear(&a), reply_clear(&b);
        }
}

static void test_free_with_pending(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply a = { .f = f, .label = "a" };

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "a", NULL, 10 * 1000, on_reply, &a, NULL), ==, 0);
        f->qmp = qmp_free(f->qmp);
        run_idle(f);
        usleep(20 * 1000);
        run_idle(f);
        g_assert_cmpint(a.calls, ==, 0); /* dropped, not called; its timer gone */
}

static void test_invalid_arguments(void) {
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(Qmp) other = NULL;
        g_autofree char *long_path = g_strnfill(200, 'p');

        g_assert_cmpint(qmp_execute(f->qmp, "bad name", NULL, 0, NULL, NULL, &error), ==, -EINVAL);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        g_assert_cmpint(qmp_execute(f->qmp, "", json_object_new(), 0, NULL, NULL, &error), ==, -EINVAL);
        g_clear_error(&error);
        g_assert_cmpint(qmp_execute(f->qmp, "x\"}", NULL, 0, NULL, NULL, &error), ==, -EINVAL);
        g_clear_error(&error);
        g_assert_cmpint(qmp_attach_fd(f->qmp, dup(f->peer), &error), ==, -EBUSY);
        g_clear_error(&error);
        g_assert_true(peer_has_nothing(f));

        g_assert_cmpint(qmp_new(f->event, NULL, NULL, NULL, &other), ==, 0);
        g_assert_cmpint(qmp_connect_path(other, "/nonexistent/qmp.sock", &error), ==, -ENOENT);
        g_assert_error(error, VM_ERROR, VM_ERROR_BACKEND_FAILED);
        g_assert_nonnull(strstr(error->message, "/nonexistent/qmp.sock"));
        g_clear_error(&error);
        g_assert_cmpint(qmp_connect_path(other, long_path, &error), ==, -ENAMETOOLONG);
        g_clear_error(&error);
        g_assert_cmpint(qmp_get_state(other), ==, QMP_NEW);
}

/* qmp_connect_path() against a listening socket we accept on. */
static void test_connect_path(void) {
        g_autoptr(Fixture) f = fixture_alloc();
        g_autofree char *dir = g_dir_make_tmp("test-qmp-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        int listener;

        listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_strlcpy(address.sun_path, path, sizeof(address.sun_path));
        g_assert_cmpint(bind(listener, (struct sockaddr *) &address, sizeof(address)), ==, 0);
        g_assert_cmpint(listen(listener, 1), ==, 0);

        g_assert_cmpint(qmp_new(f->event, on_event, on_state, f, &f->qmp), ==, 0);
        g_assert_cmpint(qmp_connect_path(f->qmp, path, NULL), ==, 0);
        f->peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        g_assert_cmpint(f->peer, >=, 0);
        greet(f);
        close(listener);
        unlink(path);
        rmdir(dir);
}

/* ---- file descriptors ---- */

static unsigned count_open_fds(void) {
        g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
        unsigned n = 0;

        g_assert_nonnull(dir);
        while (dir && g_dir_read_name(dir))
                n++;
        return n;
}

/* received (the write end of a pipe, as the fake QEMU got it) and pipe_read
 * are the same pipe. Closes received. */
static void assert_same_pipe(int received, int pipe_read, const char *label) {
        char buffer[64] = {};

        g_assert_cmpint(received, >=, 0);
        if (received < 0)
                return;
        g_assert_cmpint(write(received, label, strlen(label)), ==, (ssize_t) strlen(label));
        g_assert_cmpint(read(pipe_read, buffer, sizeof(buffer) - 1), ==, (ssize_t) strlen(label));
        g_assert_cmpstr(buffer, ==, label);
        close(received);
}

static JsonObject *fdname(const char *name) {
        JsonObject *arguments = json_object_new();

        json_object_set_string_member(arguments, "fdname", name);
        return arguments;
}

static void test_fd_getfd(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply getfd = { .f = f, .label = "getfd" };
        g_autofree char *id = NULL, *args = NULL;
        g_autoptr(GError) error = NULL;
        int pipe_fds[2], received = -1;
        unsigned before;

        greet(f);
        g_assert_cmpint(pipe2(pipe_fds, O_CLOEXEC), ==, 0);
        before = count_open_fds();
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("migration"), pipe_fds[1], 0, on_reply,
                                            &getfd, &error),
                        ==, 0);
        g_assert_no_error(error);
        /* Borrowed: ours may go at once, the Qmp holds its own. */
        close(pipe_fds[1]);
        g_assert_cmpuint(count_open_fds(), ==, before);

        id = peer_expect_fd(f, "getfd", &args, &received);
        g_assert_cmpstr(id, ==, "vm-2");
        g_assert_cmpstr(args, ==, "{\"fdname\":\"migration\"}");
        assert_same_pipe(received, pipe_fds[0], "through getfd");
        /* Sent: the duplicate is closed. */
        g_assert_cmpuint(count_open_fds(), ==, before - 1);

        reply_with(f, id, "{}");
        g_assert_true(RUN_UNTIL(f, getfd.calls == 1));
        g_assert_cmpstr(getfd.result, ==, "{}");
        close(pipe_fds[0]);
        reply_clear(&getfd);
}

static void test_fd_queued_before_negotiation(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply plain = { .f = f, .label = "plain" }, getfd = { .f = f, .label = "getfd" };
        g_autofree char *id_plain = NULL, *id = NULL, *args = NULL;
        int pipe_fds[2], received = -1;

        g_assert_cmpint(pipe2(pipe_fds, O_CLOEXEC), ==, 0);
        g_assert_cmpint(qmp_execute(f->qmp, "query-status", NULL, 0, on_reply, &plain, NULL), ==, 0);
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("early"), pipe_fds[1], 0, on_reply,
                                            &getfd, NULL),
                        ==, 0);
        close(pipe_fds[1]);
        g_assert_true(peer_has_nothing(f));

        greet(f); /* qmp_capabilities came without an fd */
        id_plain = peer_expect(f, "query-status", NULL);
        id = peer_expect_fd(f, "getfd", &args, &received);
        g_assert_cmpstr(args, ==, "{\"fdname\":\"early\"}");
        assert_same_pipe(received, pipe_fds[0], "queued early");
        reply_with(f, id_plain, "{}");
        reply_with(f, id, "{}");
        g_assert_true(RUN_UNTIL(f, getfd.calls == 1));
        g_assert_cmpstr(getfd.result, ==, "{}");
        close(pipe_fds[0]);
        reply_clear(&plain), reply_clear(&getfd);
}

/* Without "oob" everything is in the out buffer at once, so one send could
 * carry several commands: each fd must still come with the first byte of
 * its own. */
static void test_fd_back_to_back(void) {
        g_autoptr(Fixture) f = fixture_new();
        const char *names[] = { "first", "second" };
        int pipes[2][2], received[2] = { -1, -1 };
        g_autofree char *id_before = NULL, *id_after = NULL;

        greet_with(f, GREETING_NO_OOB);
        g_assert_cmpint(qmp_execute(f->qmp, "before", NULL, 0, NULL, NULL, NULL), ==, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_assert_cmpint(pipe2(pipes[i], O_CLOEXEC), ==, 0);
                g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname(names[i]), pipes[i][1], 0, NULL,
                                                    NULL, NULL),
                                ==, 0);
                close(pipes[i][1]);
        }
        g_assert_cmpint(qmp_execute(f->qmp, "after", NULL, 0, NULL, NULL, NULL), ==, 0);

        id_before = peer_expect(f, "before", NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *id = NULL, *args = NULL, *expected = NULL;

                id = peer_expect_fd(f, "getfd", &args, &received[i]);
                expected = g_strdup_printf("{\"fdname\":\"%s\"}", names[i]);
                g_assert_cmpstr(args, ==, expected);
                assert_same_pipe(received[i], pipes[i][0], names[i]);
                close(pipes[i][0]);
        }
        id_after = peer_expect(f, "after", NULL);
}

/* With "oob" QEMU reads ahead and would close the first fd on receiving the
 * second before its getfd ran: the second fd, and the in-band commands
 * behind it, wait for the first getfd's answer; out-of-band ones do not. */
static void test_fd_held_with_oob(void) {
        g_autoptr(Fixture) f = fixture_new();
        Reply first = { .f = f, .label = "first" }, second = { .f = f, .label = "second" },
              pause = { .f = f, .label = "pause" };
        int pipes[2][2], received[2] = { -1, -1 };
        g_autofree char *id_before = NULL, *id_first = NULL, *id_second = NULL, *id_pause = NULL,
                        *id_after = NULL, *args = NULL;

        greet(f);
        g_assert_cmpint(qmp_execute(f->qmp, "before", NULL, 0, NULL, NULL, NULL), ==, 0);
        for (size_t i = 0; i < 2; i++) {
                g_assert_cmpint(pipe2(pipes[i], O_CLOEXEC), ==, 0);
                g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname(i == 0 ? "first" : "second"),
                                                    pipes[i][1], 0, on_reply, i == 0 ? &first : &second,
                                                    NULL),
                                ==, 0);
                close(pipes[i][1]);
        }
        g_assert_cmpint(qmp_execute(f->qmp, "after", NULL, 0, NULL, NULL, NULL), ==, 0);
        g_assert_cmpint(qmp_execute_oob(f->qmp, "migrate-pause", NULL, 0, on_reply, &pause, NULL), ==, 0);

        id_before = peer_expect(f, "before", NULL);
        id_first = peer_expect_fd(f, "getfd", &args, &received[0]);
        g_assert_cmpstr(args, ==, "{\"fdname\":\"first\"}");
        assert_same_pipe(received[0], pipes[0][0], "first");
        id_pause = peer_expect_oob(f, "migrate-pause", NULL);
        g_assert_true(peer_has_nothing(f));

        reply_with(f, id_before, "{}");
        reply_with(f, id_pause, "{}");
        g_assert_true(RUN_UNTIL(f, pause.calls == 1));
        g_assert_true(peer_has_nothing(f)); /* only the getfd's answer counts */

        reply_with(f, id_first, "{}");
        g_assert_true(RUN_UNTIL(f, first.calls == 1));
        g_free(args);
        id_second = peer_expect_fd(f, "getfd", &args, &received[1]);
        g_assert_cmpstr(args, ==, "{\"fdname\":\"second\"}");
        assert_same_pipe(received[1], pipes[1][0], "second");
        id_after = peer_expect(f, "after", NULL);
        g_assert_cmpstr(id_second, ==, "vm-5");
        g_assert_cmpstr(id_after, ==, "vm-6");
        reply_with(f, id_second, "{}");
        g_assert_true(RUN_UNTIL(f, second.calls == 1));
        close(pipes[0][0]);
        close(pipes[1][0]);
        reply_clear(&first), reply_clear(&second), reply_clear(&pause);
}

/* A socket buffer far smaller than the commands: sends stop half way
 * (EAGAIN) before, inside and after the fd commands, and each fd still goes
 * exactly once, with its own command. */
static void test_fd_partial_sends(void) {
        g_autoptr(Fixture) f = fixture_new();
        g_autofree char *padding = g_strnfill(64 * 1024, 'p');
        const char *names[] = { "padded", "small" };
        int pipes[2][2], received[2] = { -1, -1 };
        int sndbuf = 4096, pending = 0;
        g_autofree char *id_big = NULL, *id_after = NULL;
        JsonObject *big = json_object_new();
        JsonObject *padded = fdname(names[0]);

        /* Without "oob", so that both fds are in the out buffer at once. */
        greet_with(f, GREETING_NO_OOB);
        g_assert_cmpint(setsockopt(f->client_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), ==, 0);
        json_object_set_string_member(big, "padding", padding);
        json_object_set_string_member(padded, "padding", padding);
        g_assert_cmpint(qmp_execute(f->qmp, "big", big, 0, NULL, NULL, NULL), ==, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_assert_cmpint(pipe2(pipes[i], O_CLOEXEC), ==, 0);
                g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", i == 0 ? padded : fdname(names[i]),
                                                    pipes[i][1], 0, NULL, NULL, NULL),
                                ==, 0);
                close(pipes[i][1]);
        }
        g_assert_cmpint(qmp_execute(f->qmp, "after", NULL, 0, NULL, NULL, NULL), ==, 0);
        /* The premise: the client cannot send it all at once. */
        run_idle(f);
        g_assert_cmpint(ioctl(f->peer, FIONREAD, &pending), ==, 0);
        g_assert_cmpint(pending, <, 64 * 1024);

        id_big = peer_expect(f, "big", NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *id = NULL;

                id = peer_expect_fd(f, "getfd", NULL, &received[i]);
                assert_same_pipe(received[i], pipes[i][0], names[i]);
                close(pipes[i][0]);
        }
        id_after = peer_expect(f, "after", NULL);
        g_assert_cmpint(qmp_get_state(f->qmp), ==, QMP_READY);
}

/* Every way an fd command ends without its fd going out closes the
 * duplicate. The connection's end goes too, except after a timeout. */
static void test_fd_no_leaks(void) {
        enum { CLOSE_QUEUED, FREE_QUEUED, TIMEOUT_QUEUED, CLOSE_UNSENT, SEND_FAILS, N_VARIANTS };

        for (int variant = 0; variant < N_VARIANTS; variant++) {
                g_autoptr(Fixture) f = fixture_new();
                Reply a = { .f = f, .label = "a" };
                int pipe_fds[2];
                unsigned before;

                g_test_message("variant %d", variant);
                if (variant == CLOSE_UNSENT || variant == SEND_FAILS)
                        greet(f);
                if (variant == SEND_FAILS)
                        g_assert_cmpint(shutdown(f->peer, SHUT_RD), ==, 0);
                g_assert_cmpint(pipe2(pipe_fds, O_CLOEXEC), ==, 0);
                before = count_open_fds();
                g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("x"), pipe_fds[1],
                                                    variant == TIMEOUT_QUEUED ? 20 * 1000 : 0, on_reply, &a,
                                                    NULL),
                                ==, 0);
                g_assert_cmpuint(count_open_fds(), ==, before + 1);

                switch (variant) {
                case CLOSE_QUEUED:
                case CLOSE_UNSENT: /* serialized, but the loop never ran to send it */
                        qmp_close(f->qmp);
                        g_assert_cmpuint(count_open_fds(), ==, before - 1);
                        g_assert_true(RUN_UNTIL(f, a.calls == 1));
                        g_assert_nonnull(strstr(a.message, "connection closed"));
                        break;
                case FREE_QUEUED:
                        f->qmp = qmp_free(f->qmp);
                        break;
                case TIMEOUT_QUEUED:
                        g_assert_true(RUN_UNTIL(f, a.calls == 1));
                        g_assert_nonnull(strstr(a.message, "did not answer"));
                        break;
                case SEND_FAILS:
                        g_assert_true(RUN_UNTIL(f, f->closed == 1));
                        g_assert_nonnull(strstr(f->closed_message, "writing to the QMP socket failed"));
                        g_assert_true(RUN_UNTIL(f, a.calls == 1));
                        break;
                }
                g_assert_cmpuint(count_open_fds(), ==, variant == TIMEOUT_QUEUED ? before : before - 1);
                close(pipe_fds[0]);
                close(pipe_fds[1]);
                reply_clear(&a);
        }
}

static void test_fd_invalid(void) {
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(GError) error = NULL;
        int pipe_fds[2], closed_fd;
        unsigned before;

        g_assert_cmpint(pipe2(pipe_fds, O_CLOEXEC), ==, 0);
        closed_fd = dup(pipe_fds[0]);
        close(closed_fd);
        before = count_open_fds();

        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("x"), -1, 0, NULL, NULL, &error), ==,
                        -EBADF);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("x"), closed_fd, 0, NULL, NULL, &error),
                        ==, -EBADF);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        /* A valid fd with a refused command: the duplicate goes at once. */
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "bad name", NULL, pipe_fds[1], 0, NULL, NULL, &error),
                        ==, -EINVAL);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        qmp_close(f->qmp);
        g_assert_cmpint(
                qmp_execute_with_fd(f->qmp, "getfd", fdname("x"), pipe_fds[1], 0, NULL, NULL, &error), ==,
                -ENOTCONN);
        g_assert_error(error, VM_ERROR, VM_ERROR_BACKEND_FAILED);
        g_assert_cmpuint(count_open_fds(), ==, before - 1); /* the connection's end */
        close(pipe_fds[0]);
        close(pipe_fds[1]);
}

/* ---- real QEMU ---- */

typedef struct Qemu {
        GPid pid;
        char *dir;
        char *socket;
} Qemu;

static void qemu_stop(Qemu *q) {
        if (q->pid > 0) {
                kill(q->pid, SIGKILL);
                waitpid(q->pid, NULL, 0);
        }
        if (q->socket)
                unlink(q->socket);
        if (q->dir)
                rmdir(q->dir);
        g_free(q->socket);
        g_free(q->dir);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Qemu, qemu_stop)

/* What QEMU's socket gives before it listens. */
static bool connect_worth_retrying(int r) {
        return r == -ENOENT || r == -ECONNREFUSED || r == -EAGAIN;
}

/* true once qemu exited with status 0, polling with a deadline. */
static bool qemu_wait_exit(Qemu *q) {
        int64_t deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        int status;

        while (g_get_monotonic_time() < deadline) {
                pid_t p = waitpid(q->pid, &status, WNOHANG);
                if (p == q->pid) {
                        q->pid = 0;
                        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
                }
                usleep(10 * 1000);
        }
        return false;
}

static void test_real_qemu(void) {
        g_autofree char *binary = g_find_program_in_path("qemu-system-x86_64");
        g_autoptr(Fixture) f = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(Qemu) q = {};
        g_autofree char *qmp_arg = NULL;
        Reply version = { .label = "version" }, caps = { .label = "caps" }, bad = { .label = "bad" },
              schema = { .label = "schema" }, quit = { .label = "quit" }, getfd = { .label = "getfd" },
              no_fd = { .label = "no-fd" }, closefd = { .label = "closefd" }, pause = { .label = "pause" },
              not_oob = { .label = "not-oob" }, fd2 = { .label = "fd2" }, closefd2 = { .label = "closefd2" };
        int pipe_fds[2], pipe2_fds[2];
        unsigned major, minor, micro;
        const char *package;
        int64_t deadline;
        int r;

        if (!binary) {
                g_test_skip("qemu-system-x86_64 not installed");
                return;
        }
        f = fixture_alloc();
        version.f = caps.f = bad.f = schema.f = quit.f = getfd.f = no_fd.f = closefd.f = f;
        pause.f = not_oob.f = fd2.f = closefd2.f = f;

        q.dir = g_dir_make_tmp("test-qmp-XXXXXX", &error);
        g_assert_no_error(error);
        q.socket = g_build_filename(q.dir, "qmp.sock", NULL);
        qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", q.socket);
        const char *argv[] = { binary, "-machine", "none",  "-nodefaults", "-display",
                               "none", "-qmp",     qmp_arg, NULL };
        g_assert_true(g_spawn_async(NULL, (char **) argv, NULL,
                                    G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                    &q.pid, &error));
        g_assert_no_error(error);

        /* QEMU creates the socket a little after starting: poll for it. */
        g_assert_cmpint(qmp_new(f->event, on_event, on_state, f, &f->qmp), ==, 0);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        for (;;) {
                g_clear_error(&error);
                r = qmp_connect_path(f->qmp, q.socket, &error);
                if (r >= 0 || !connect_worth_retrying(r) || g_get_monotonic_time() > deadline)
                        break;
                if (waitpid(q.pid, NULL, WNOHANG) == q.pid) {
                        q.pid = 0;
                        break;
                }
                usleep(10 * 1000);
        }
        g_assert_cmpint(r, ==, 0);
        g_assert_no_error(error);
        if (r < 0)
                return;

        g_assert_true(RUN_UNTIL(f, f->ready == 1 || f->closed > 0));
        g_assert_cmpint(qmp_get_version(f->qmp, &major, &minor, &micro, &package), ==, 0);
        g_test_message("QEMU %u.%u.%u (%s)", major, minor, micro, package);
        /* A unix socket monitor has its own thread (QEMU >= 3.0): "oob". */
        g_assert_true(g_strv_contains(qmp_get_capabilities(f->qmp), "oob"));
        g_assert_true(qmp_oob_enabled(f->qmp));

        g_assert_cmpint(
                qmp_execute(f->qmp, "query-version", NULL, 5 * G_USEC_PER_SEC, on_reply, &version, NULL), ==,
                0);
        g_assert_cmpint(qmp_execute(f->qmp, "query-migrate-capabilities", NULL, 5 * G_USEC_PER_SEC, on_reply,
                                    &caps, NULL),
                        ==, 0);
        g_assert_cmpint(
                qmp_execute(f->qmp, "no-such-command", NULL, 5 * G_USEC_PER_SEC, on_reply, &bad, NULL), ==,
                0);
        g_assert_cmpint(
                qmp_execute(f->qmp, "query-qmp-schema", NULL, 5 * G_USEC_PER_SEC, on_reply, &schema, NULL),
                ==, 0);
        g_assert_true(RUN_UNTIL(f, schema.calls == 1));

        {
                g_autoptr(JsonParser) parser = json_parser_new();
                JsonObject *qemu;

                g_assert_nonnull(version.result);
                g_assert_true(json_parser_load_from_data(parser, version.result ?: "null", -1, NULL));
                g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
                qemu = json_object_get_object_member(json_node_get_object(json_parser_get_root(parser)),
                                                     "qemu");
                g_assert_nonnull(qemu);
                g_assert_cmpint(json_object_get_int_member(qemu, "major"), ==, major);
                g_assert_cmpint(json_object_get_int_member(qemu, "minor"), ==, minor);
                g_assert_cmpint(json_object_get_int_member(qemu, "micro"), ==, micro);
                g_assert_cmpstr(json_object_get_string_member(
                                        json_node_get_object(json_parser_get_root(parser)), "package"),
                                ==, package);
        }
        g_assert_nonnull(caps.result);
        g_assert_true(caps.result && caps.result[0] == '[' && strstr(caps.result, "postcopy-ram"));
        g_assert_cmpstr(bad.error_class, ==, "CommandNotFound");
        g_assert_nonnull(bad.message);
        g_test_message("query-qmp-schema: %zu bytes", schema.result ? strlen(schema.result) : 0);
        g_assert_cmpuint(schema.result ? strlen(schema.result) : 0, >, 10000);
        g_assert_cmpuint(schema.result ? strlen(schema.result) : 0, <, QMP_MAX_LINE / 8);

        /* QEMU takes the fd that came with getfd; a getfd without one
         * finds none left, so the first really brought its own. */
        g_assert_cmpint(pipe2(pipe_fds, O_CLOEXEC), ==, 0);
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("test"), pipe_fds[1], 5 * G_USEC_PER_SEC,
                                            on_reply, &getfd, NULL),
                        ==, 0);
        close(pipe_fds[1]);
        g_assert_cmpint(
                qmp_execute(f->qmp, "getfd", fdname("none"), 5 * G_USEC_PER_SEC, on_reply, &no_fd, NULL), ==,
                0);
        g_assert_cmpint(
                qmp_execute(f->qmp, "closefd", fdname("test"), 5 * G_USEC_PER_SEC, on_reply, &closefd, NULL),
                ==, 0);
        g_assert_true(RUN_UNTIL(f, closefd.calls == 1));
        g_assert_cmpstr(getfd.result, ==, "{}");
        g_assert_cmpstr(no_fd.error_class, ==, "GenericError");
        g_test_message("getfd without an fd: %s", no_fd.message);
        g_assert_cmpstr(closefd.result, ==, "{}");
        close(pipe_fds[0]);

        /* exec-oob: QEMU runs migrate-pause (allow-oob) and refuses it
         * without a post-copy; a command without allow-oob is refused as
         * such. Both answers carry the id. */
        g_assert_cmpint(
                qmp_execute_oob(f->qmp, "migrate-pause", NULL, 5 * G_USEC_PER_SEC, on_reply, &pause, NULL),
                ==, 0);
        g_assert_cmpint(
                qmp_execute_oob(f->qmp, "query-status", NULL, 5 * G_USEC_PER_SEC, on_reply, &not_oob, NULL),
                ==, 0);
        g_assert_true(RUN_UNTIL(f, pause.calls == 1 && not_oob.calls == 1));
        g_test_message("exec-oob migrate-pause: %s", pause.message);
        g_test_message("exec-oob query-status: %s", not_oob.message);
        g_assert_cmpstr(pause.error_class, ==, "GenericError");
        g_assert_true(pause.message && strstr(pause.message, "postcopy"));
        g_assert_cmpstr(not_oob.error_class, ==, "GenericError");
        g_assert_true(not_oob.message && strstr(not_oob.message, "OOB"));

        /* With "oob" QEMU reads ahead: two fds back to back would leave
         * the first getfd without its own (the chardev drops an unclaimed
         * fd when the next arrives). Each getfd takes the right one. */
        g_assert_cmpint(pipe2(pipe_fds, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(pipe2_fds, O_CLOEXEC), ==, 0);
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("one"), pipe_fds[1], 5 * G_USEC_PER_SEC,
                                            on_reply, &getfd, NULL),
                        ==, 0);
        g_assert_cmpint(qmp_execute_with_fd(f->qmp, "getfd", fdname("two"), pipe2_fds[1], 5 * G_USEC_PER_SEC,
                                            on_reply, &fd2, NULL),
                        ==, 0);
        close(pipe_fds[1]);
        close(pipe2_fds[1]);
        g_assert_cmpint(
                qmp_execute(f->qmp, "closefd", fdname("one"), 5 * G_USEC_PER_SEC, on_reply, &closefd, NULL),
                ==, 0);
        g_assert_cmpint(
                qmp_execute(f->qmp, "closefd", fdname("two"), 5 * G_USEC_PER_SEC, on_reply, &closefd2, NULL),
                ==, 0);
        g_assert_true(RUN_UNTIL(f, closefd2.calls == 1));
        g_assert_cmpstr(getfd.result, ==, "{}");
        g_assert_cmpstr(fd2.result, ==, "{}");
        g_assert_cmpstr(closefd.result, ==, "{}");
        g_assert_cmpstr(closefd2.result, ==, "{}");
        /* QEMU closed both write ends it held: each pipe reads EOF. */
        g_assert_cmpint(read(pipe_fds[0], &(char){ 0 }, 1), ==, 0);
        g_assert_cmpint(read(pipe2_fds[0], &(char){ 0 }, 1), ==, 0);
        close(pipe_fds[0]);
        close(pipe2_fds[0]);

        g_assert_cmpint(qmp_execute(f->qmp, "quit", NULL, 5 * G_USEC_PER_SEC, on_reply, &quit, NULL), ==, 0);
        g_assert_true(RUN_UNTIL(f, f->closed == 1));
        g_assert_nonnull(strstr(f->log->str, "event:SHUTDOWN"));
        g_assert_cmpint(quit.calls, ==, 1);
        g_test_message("log: %s; quit: %s", f->log->str, quit.result ?: quit.message);
        g_assert_true(qemu_wait_exit(&q));
        reply_clear(&version), reply_clear(&caps), reply_clear(&bad), reply_clear(&schema),
                reply_clear(&quit), reply_clear(&getfd), reply_clear(&no_fd), reply_clear(&closefd);
        reply_clear(&pause), reply_clear(&not_oob), reply_clear(&fd2), reply_clear(&closefd2);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/qmp/negotiation", test_negotiation);
        g_test_add_func("/qmp/negotiation-failures", test_negotiation_failures);
        g_test_add_func("/qmp/negotiation-without-oob", test_negotiation_without_oob);
        g_test_add_func("/qmp/oob-out-of-order", test_oob_out_of_order);
        g_test_add_func("/qmp/ordering", test_ordering);
        g_test_add_func("/qmp/events", test_events);
        g_test_add_func("/qmp/split-and-merged", test_split_and_merged);
        g_test_add_func("/qmp/error-reply", test_error_reply);
        g_test_add_func("/qmp/reply-without-id", test_reply_without_id);
        g_test_add_func("/qmp/malformed-reply-fails-command", test_malformed_reply_fails_command);
        g_test_add_func("/qmp/hostile-closes", test_hostile_closes);
        g_test_add_func("/qmp/nesting-within-limit", test_nesting_within_limit);
        g_test_add_func("/qmp/long-lines", test_long_lines);
        g_test_add_func("/qmp/timeout", test_timeout);
        g_test_add_func("/qmp/eof-pending", test_eof_pending);
        g_test_add_func("/qmp/write-epipe", test_write_epipe);
        g_test_add_func("/qmp/close-not-reentrant", test_close_not_reentrant);
        g_test_add_func("/qmp/execute-from-callback", test_execute_from_callback);
        g_test_add_func("/qmp/free-in-callback", test_free_in_callback);
        g_test_add_func("/qmp/free-with-pending", test_free_with_pending);
        g_test_add_func("/qmp/invalid-arguments", test_invalid_arguments);
        g_test_add_func("/qmp/connect-path", test_connect_path);
        g_test_add_func("/qmp/fd/getfd", test_fd_getfd);
        g_test_add_func("/qmp/fd/queued-before-negotiation", test_fd_queued_before_negotiation);
        g_test_add_func("/qmp/fd/back-to-back", test_fd_back_to_back);
        g_test_add_func("/qmp/fd/held-with-oob", test_fd_held_with_oob);
        g_test_add_func("/qmp/fd/partial-sends", test_fd_partial_sends);
        g_test_add_func("/qmp/fd/no-leaks", test_fd_no_leaks);
        g_test_add_func("/qmp/fd/invalid", test_fd_invalid);
        g_test_add_func("/qmp/real-qemu", test_real_qemu);
        return g_test_run();
}
