/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "qmp.h"

/* One read() asks for this much; one dispatch reads at most READ_BUDGET so a
 * peer that floods us cannot starve the rest of the loop. */
#define QMP_READ_CHUNK (64u * 1024u)
#define QMP_READ_BUDGET (1024u * 1024u)

typedef struct QmpCommand {
        Qmp *qmp;
        char *name;
        char *id;              /* assigned when serialized: ids follow sending order */
        JsonObject *arguments; /* until serialized */
        QmpReplyFn done;
        void *userdata;
        sd_event_source *timer;
        uint64_t timeout_usec;
        bool internal;   /* our qmp_capabilities: never reported to anyone */
        bool oob;        /* asked for out-of-band; once sent: went as "exec-oob" */
        bool passes_fd;  /* was queued with an fd (kept after the fd moved on) */
        bool sent;       /* on ->in_flight rather than ->queued */
        bool timed_out;  /* its caller was told; a late reply is dropped */
        GError *failure; /* on ->failing: what to tell its caller */
        int fd;          /* to send with it, or -1; moves to ->out_fds when serialized */
} QmpCommand;

/* A file descriptor that goes out as SCM_RIGHTS with the byte of ->out at
 * offset, the first byte of its command. */
typedef struct QmpOutFd {
        size_t offset;
        int fd;
} QmpOutFd;

struct Qmp {
        /* Held by the owner (dropped by qmp_free()) and by every dispatch
         * that calls out, so a callback may free the Qmp under our feet and
         * we only notice ->freed afterwards. */
        unsigned n_ref;
        bool freed;

        sd_event *event;
        QmpEventFn on_event;
        QmpStateFn on_state;
        void *userdata;

        QmpState state;
        int fd;
        sd_event_source *io;
        sd_event_source *negotiation_timer;
        uint64_t negotiation_timeout_usec;
        /* Created with the Qmp (so arming it cannot fail): runs the
         * callbacks of ->failing and the QMP_CLOSED report. */
        sd_event_source *deferred;

        GByteArray *in;
        size_t in_scanned; /* bytes of ->in known to hold no newline */
        GByteArray *out;
        size_t out_sent;
        GArray *out_fds; /* QmpOutFd, by offset, all at or past ->out_sent */

        GQueue queued;    /* QmpCommand: not serialized yet (negotiation, or an fd held back) */
        GQueue in_flight; /* QmpCommand: serialized, in sending order */
        GQueue failing;   /* QmpCommand: connection closed, callback not yet run */
        GError *close_error;
        bool report_closed;

        uint64_t next_id;
        bool have_greeting;
        bool oob_requested; /* qmp_capabilities asked for "oob" */
        bool oob_enabled;   /* ... and QEMU agreed */
        unsigned version[3];
        char *package;
        char **capabilities;
};

static Qmp *qmp_ref(Qmp *qmp) {
        qmp->n_ref++;
        return qmp;
}

static void qmp_unref(Qmp *qmp) {
        assert(qmp->n_ref > 0);
        if (--qmp->n_ref > 0)
                return;
        /* Only qmp_free() drops the owner's reference, and it tore down
         * every source and command already. */
        assert(qmp->freed);
        g_byte_array_unref(qmp->in);
        g_byte_array_unref(qmp->out);
        g_array_unref(qmp->out_fds);
        g_clear_error(&qmp->close_error);
        g_free(qmp->package);
        g_strfreev(qmp->capabilities);
        sd_event_unref(qmp->event);
        g_free(qmp);
}

static QmpCommand *qmp_command_new(Qmp *qmp, const char *name) {
        QmpCommand *cmd = g_new0(QmpCommand, 1);

        cmd->qmp = qmp;
        cmd->name = g_strdup(name);
        cmd->fd = -1;
        return cmd;
}

static void qmp_command_close_fd(QmpCommand *cmd) {
        if (cmd->fd >= 0)
                (void) close(cmd->fd);
        cmd->fd = -1;
}

static void qmp_command_free(QmpCommand *cmd) {
        if (!cmd)
                return;
        qmp_command_close_fd(cmd);
        sd_event_source_disable_unref(cmd->timer);
        if (cmd->arguments)
                json_object_unref(cmd->arguments);
        g_clear_error(&cmd->failure);
        g_free(cmd->name);
        g_free(cmd->id);
        g_free(cmd);
}

/* Peer strings go into our logs: keep them short and on one line. */
static char *escape_for_log(const char *s) {
        g_autofree char *cut = g_utf8_substring(s, 0, MIN(g_utf8_strlen(s, 200), 80));
        return g_strescape(cut, NULL);
}

static void qmp_update_events(Qmp *qmp) {
        uint32_t events;

        if (!qmp->io)
                return;
        if (qmp->state == QMP_CONNECTING)
                events = EPOLLOUT;
        else if (qmp->out_sent < qmp->out->len)
                events = EPOLLIN | EPOLLOUT;
        else
                events = EPOLLIN;
        (void) sd_event_source_set_io_events(qmp->io, events);
}

/* Closes the socket and stops every source tied to it; the file
 * descriptors still waiting in ->out can never go out now. */
static void qmp_disconnect(Qmp *qmp) {
        qmp->io = sd_event_source_disable_unref(qmp->io);
        qmp->negotiation_timer = sd_event_source_disable_unref(qmp->negotiation_timer);
        if (qmp->fd >= 0)
                (void) close(qmp->fd);
        qmp->fd = -1;
        for (guint i = 0; i < qmp->out_fds->len; i++)
                (void) close(g_array_index(qmp->out_fds, QmpOutFd, i).fd);
        g_array_set_size(qmp->out_fds, 0);
        qmp->state = QMP_CLOSED;
}

/*
 * The one way a connection ends. error (taken) is why, or NULL for
 * qmp_close(). Callbacks run later from ->deferred: this is called from
 * inside qmp_close() and from the middle of parsing, where calling out
 * would be re-entrant.
 */
static void qmp_shutdown(Qmp *qmp, GError *error) {
        g_autoptr(GError) owned = error;
        GQueue *queues[] = { &qmp->queued, &qmp->in_flight };
        const char *why = error ? error->message : "closed by vmigrated";

        if (qmp->state == QMP_CLOSED)
                return;

        if (error)
                log_debug("QMP connection closed: %s", error->message);
        qmp_disconnect(qmp);

        for (size_t i = 0; i < G_N_ELEMENTS(queues); i++) {
                QmpCommand *cmd;

                while ((cmd = g_queue_pop_head(queues[i]))) {
                        /* It can never be sent now: not kept open until
                         * the callback runs. */
                        qmp_command_close_fd(cmd);
                        if (cmd->internal || cmd->timed_out || !cmd->done) {
                                qmp_command_free(cmd);
                                continue;
                        }
                        cmd->timer = sd_event_source_disable_unref(cmd->timer);
                        cmd->failure = g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                                   "QMP command '%s' failed, connection closed: %s",
                                                   cmd->name, why);
                        g_queue_push_tail(&qmp->failing, cmd);
                }
        }

        qmp->close_error = g_steal_pointer(&owned);
        qmp->report_closed = qmp->close_error != NULL;
        if (qmp->report_closed || !g_queue_is_empty(&qmp->failing))
                (void) sd_event_source_set_enabled(qmp->deferred, SD_EVENT_ONESHOT);
}

/* Closes the connection; returns -EPROTO for the handler to pass on. */
static int qmp_protocol_error(Qmp *qmp, const char *format, ...) G_GNUC_PRINTF(2, 3);
static int qmp_protocol_error(Qmp *qmp, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        g_autofree char *message = g_strdup_vprintf(format, ap);
        va_end(ap);

        log_warning("QMP protocol error, closing the connection: %s", message);
        qmp_shutdown(qmp, g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED, "QMP protocol error: %s", message));
        return -EPROTO;
}

/* Runs cmd's callback and frees cmd, which must be on no queue any more.
 * The caller holds a reference on qmp: the callback may free it. */
static void qmp_complete(Qmp *qmp, QmpCommand *cmd, JsonNode *result, const char *error_class,
                         const GError *error) {
        cmd->timer = sd_event_source_disable_unref(cmd->timer);
        if (cmd->done)
                cmd->done(qmp, result, error_class, error, cmd->userdata);
        else if (error)
                log_warning("QMP command '%s' (no one waiting) failed: %s", cmd->name, error->message);
        qmp_command_free(cmd);
}

static int qmp_on_deferred(sd_event_source *s, void *userdata) {
        Qmp *qmp = qmp_ref(userdata);
        QmpCommand *cmd;

        while (!qmp->freed && (cmd = g_queue_pop_head(&qmp->failing)))
                qmp_complete(qmp, cmd, NULL, NULL, cmd->failure);

        if (!qmp->freed && qmp->report_closed) {
                qmp->report_closed = false;
                if (qmp->on_state)
                        qmp->on_state(qmp, QMP_CLOSED, qmp->close_error, qmp->userdata);
        }
        qmp_unref(qmp);
        return 0;
}

static int qmp_on_negotiation_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Qmp *qmp = userdata;

        qmp->negotiation_timer = sd_event_source_disable_unref(qmp->negotiation_timer);
        qmp_shutdown(
                qmp,
                g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED, "QEMU %s within %" PRIu64 " ms",
                            qmp->have_greeting ? "did not answer qmp_capabilities" : "sent no QMP greeting",
                            qmp->negotiation_timeout_usec / 1000));
        return 0;
}

static int qmp_on_command_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        QmpCommand *cmd = userdata;
        Qmp *qmp = qmp_ref(cmd->qmp);
        g_autoptr(GError) error = g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                              "QEMU did not answer QMP command '%s' within %" PRIu64 " ms",
                                              cmd->name, cmd->timeout_usec / 1000);

        cmd->timer = sd_event_source_disable_unref(cmd->timer);
        if (!cmd->sent) {
                g_queue_remove(&qmp->queued, cmd);
                qmp_complete(qmp, cmd, NULL, NULL, error);
        } else {
                /* Stays on ->in_flight: its reply (or, in band, an id-less
                 * error) is still to come and must be recognised as its
                 * own, not matched to another command. */
                QmpReplyFn done = cmd->done;

                cmd->timed_out = true;
                if (done)
                        done(qmp, NULL, NULL, error, cmd->userdata);
                /* cmd may be gone now (the callback may have freed qmp). */
        }
        qmp_unref(qmp);
        return 0;
}

static void qmp_send_command(Qmp *qmp, QmpCommand *cmd) {
        g_autoptr(JsonObject) message = json_object_new();
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autofree char *text = NULL;
        gsize length = 0;

        cmd->id = g_strdup_printf("vm-%" PRIu64, ++qmp->next_id);
        if (cmd->oob && !qmp->oob_enabled) {
                log_debug("QMP: QEMU has no out-of-band execution, '%s' goes in band", cmd->name);
                cmd->oob = false;
        }
        /* Every command carries an id, as QEMU demands once "oob" is on. */
        json_object_set_string_member(message, cmd->oob ? "exec-oob" : "execute", cmd->name);
        if (cmd->arguments)
                json_object_set_object_member(message, "arguments", g_steal_pointer(&cmd->arguments));
        json_object_set_string_member(message, "id", cmd->id);
        root = json_node_init_object(json_node_alloc(), message);
        json_generator_set_root(generator, root);
        /* json-glib escapes control characters in strings, so the text is
         * one line whatever the arguments hold. */
        text = json_generator_to_data(generator, &length);

        if (cmd->fd >= 0) {
                QmpOutFd out_fd = { .offset = qmp->out->len, .fd = cmd->fd };

                g_array_append_val(qmp->out_fds, out_fd);
                cmd->fd = -1;
        }
        g_byte_array_append(qmp->out, (const guint8 *) text, length);
        g_byte_array_append(qmp->out, (const guint8 *) "\n", 1);
        cmd->sent = true;
        g_queue_push_tail(&qmp->in_flight, cmd);
        qmp_update_events(qmp);
}

static bool qmp_fd_in_flight(Qmp *qmp) {
        for (GList *l = qmp->in_flight.head; l; l = l->next)
                if (((QmpCommand *) l->data)->passes_fd)
                        return true;
        return false;
}

/*
 * Serializes what ->queued holds and may go now, in order. Once "oob" is
 * on, QEMU's monitor thread reads ahead of the main loop that runs in-band
 * commands, and its socket chardev keeps only the fds of the last read that
 * carried any, closing those before: a second fd sent before "getfd" took
 * the first would close the first. So with "oob" an fd waits until no
 * command that passed one is unanswered, and the in-band commands behind it
 * wait too (in-band order is kept); out-of-band ones carry no fd and go.
 * Only for QMP_READY.
 */
static void qmp_send_queued(Qmp *qmp) {
        bool held = false;
        GList *next;

        for (GList *l = qmp->queued.head; l; l = next) {
                QmpCommand *cmd = l->data;
                bool oob = cmd->oob && qmp->oob_enabled;

                next = l->next;
                if (!oob && (held || (cmd->fd >= 0 && qmp->oob_enabled && qmp_fd_in_flight(qmp)))) {
                        held = true;
                        continue;
                }
                g_queue_delete_link(&qmp->queued, l);
                qmp_send_command(qmp, cmd);
        }
}

/*
 * One send() or sendmsg() from ->out_sent on; returns the bytes sent or
 * -errno. QEMU keeps the last fd that arrived on the socket for the next
 * "getfd", so an fd must arrive with its own command: it goes with that
 * command's first byte, and no call sends past the offset of the next fd.
 * Each sendmsg() is a message of its own on a unix stream socket and a
 * recvmsg() that receives fds ends with the bytes they came with, so QEMU
 * never gets the next command's fd before this command's bytes.
 */
static ssize_t qmp_send_some(Qmp *qmp) {
        QmpOutFd *first = qmp->out_fds->len > 0 ? &g_array_index(qmp->out_fds, QmpOutFd, 0) : NULL;
        const uint8_t *data = qmp->out->data + qmp->out_sent;
        size_t length = qmp->out->len - qmp->out_sent;
        union {
                struct cmsghdr header;
                uint8_t buffer[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) data };
        struct msghdr message = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buffer,
                .msg_controllen = sizeof(control.buffer),
        };
        struct cmsghdr *cmsg;
        ssize_t n;

        if (!first || first->offset > qmp->out_sent) {
                if (first)
                        length = first->offset - qmp->out_sent;
                n = send(qmp->fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
                return n < 0 ? -errno : n;
        }

        assert(first->offset == qmp->out_sent);
        if (qmp->out_fds->len > 1)
                length = g_array_index(qmp->out_fds, QmpOutFd, 1).offset - qmp->out_sent;
        iov.iov_len = length;
        cmsg = CMSG_FIRSTHDR(&message);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &first->fd, sizeof(int));
        n = sendmsg(qmp->fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
                return -errno; /* not sent: kept for the next try, or closed with the connection */
        /* n ≥ 1: the fd went with the first byte and the socket holds its
         * own reference now. */
        (void) close(first->fd);
        g_array_remove_index(qmp->out_fds, 0);
        return n;
}

static void qmp_flush(Qmp *qmp) {
        while (qmp->out_sent < qmp->out->len) {
                ssize_t n = qmp_send_some(qmp);

                if (n == -EINTR)
                        continue;
                if (n == -EAGAIN)
                        break;
                if (n < 0) {
                        qmp_shutdown(qmp,
                                     g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                                 "writing to the QMP socket failed (QEMU gone?): %s",
                                                 g_strerror((int) -n)));
                        return;
                }
                qmp->out_sent += n;
        }
        if (qmp->out_sent == qmp->out->len) {
                /* Every fd sits before the end of ->out, so all went out
                 * and no offset needs moving. */
                assert(qmp->out_fds->len == 0);
                g_byte_array_set_size(qmp->out, 0);
                qmp->out_sent = 0;
        }
        qmp_update_events(qmp);
}

static JsonNode *member(JsonObject *object, const char *name) {
        return object ? json_object_get_member(object, name) : NULL;
}

static bool node_is_string(JsonNode *node) {
        return node && JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
}

static bool node_is_int(JsonNode *node) {
        return node && JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_INT64;
}

static bool node_is_object(JsonNode *node) {
        return node && JSON_NODE_HOLDS_OBJECT(node);
}

static void qmp_on_capabilities(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                void *userdata) {
        if (error) {
                qmp_shutdown(qmp,
                             g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                         "QMP capabilities negotiation failed: %s", error->message));
                return;
        }
        qmp->negotiation_timer = sd_event_source_disable_unref(qmp->negotiation_timer);
        qmp->state = QMP_READY;
        qmp->oob_enabled = qmp->oob_requested;
        if (qmp->oob_enabled)
                log_debug("QMP: out-of-band execution enabled");
        /* Before telling anyone: commands queued earlier go first. */
        qmp_send_queued(qmp);
        if (qmp->on_state)
                qmp->on_state(qmp, QMP_READY, NULL, qmp->userdata);
}

static int qmp_handle_greeting(Qmp *qmp, JsonObject *message) {
        JsonNode *qmp_node = member(message, "QMP");
        JsonObject *qmp_object = node_is_object(qmp_node) ? json_node_get_object(qmp_node) : NULL;
        JsonNode *version = member(qmp_object, "version");
        JsonObject *version_object = node_is_object(version) ? json_node_get_object(version) : NULL;
        JsonNode *qemu = member(version_object, "qemu");
        JsonObject *qemu_object = node_is_object(qemu) ? json_node_get_object(qemu) : NULL;
        JsonNode *package = member(version_object, "package");
        JsonNode *capabilities = member(qmp_object, "capabilities");
        static const char *const parts[] = { "major", "minor", "micro" };
        unsigned numbers[3];
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        QmpCommand *cmd;

        if (qmp->have_greeting)
                return qmp_protocol_error(qmp, "a second greeting arrived");
        if (!qmp_object)
                return qmp_protocol_error(qmp, "greeting: \"QMP\" is not an object");
        if (!version_object)
                return qmp_protocol_error(qmp, "greeting: \"QMP\".\"version\" is not an object");
        if (!qemu_object)
                return qmp_protocol_error(qmp, "greeting: \"version\".\"qemu\" is not an object");
        for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
                JsonNode *n = member(qemu_object, parts[i]);
                int64_t v;

                if (!node_is_int(n))
                        return qmp_protocol_error(qmp, "greeting: QEMU version \"%s\" is not an integer",
                                                  parts[i]);
                v = json_node_get_int(n);
                if (v < 0 || v > 65535)
                        return qmp_protocol_error(
                                qmp, "greeting: QEMU version \"%s\" is %" PRId64 ", out of range", parts[i],
                                v);
                numbers[i] = (unsigned) v;
        }
        if (package && !node_is_string(package))
                return qmp_protocol_error(qmp, "greeting: \"version\".\"package\" is not a string");
        if (!capabilities || !JSON_NODE_HOLDS_ARRAY(capabilities))
                return qmp_protocol_error(qmp, "greeting: \"QMP\".\"capabilities\" is not an array");
        for (guint i = 0; i < json_array_get_length(json_node_get_array(capabilities)); i++) {
                JsonNode *n = json_array_get_element(json_node_get_array(capabilities), i);

                if (!node_is_string(n))
                        return qmp_protocol_error(qmp, "greeting: capability %u is not a string", i);
                g_ptr_array_add(names, g_strdup(json_node_get_string(n)));
        }
        g_ptr_array_add(names, NULL);

        qmp->have_greeting = true;
        memcpy(qmp->version, numbers, sizeof(numbers));
        qmp->package = g_strdup(package ? json_node_get_string(package) : "");
        qmp->capabilities = (char **) g_ptr_array_free(g_steal_pointer(&names), FALSE);
        log_debug("QMP greeting: QEMU %u.%u.%u", numbers[0], numbers[1], numbers[2]);

        /* "oob" where offered: migrate-recover and migrate-pause must get
         * through while QEMU's main loop waits for a page that is still on
         * the source. Replies may overtake each other then; they are
         * matched by id. */
        cmd = qmp_command_new(qmp, "qmp_capabilities");
        cmd->internal = true;
        cmd->done = qmp_on_capabilities;
        if (g_strv_contains((const char *const *) qmp->capabilities, "oob")) {
                JsonArray *enable = json_array_new();

                json_array_add_string_element(enable, "oob");
                cmd->arguments = json_object_new();
                json_object_set_array_member(cmd->arguments, "enable", enable);
                qmp->oob_requested = true;
        }
        qmp_send_command(qmp, cmd);
        return 0;
}

static int qmp_handle_event(Qmp *qmp, JsonObject *message) {
        JsonNode *event = member(message, "event");
        JsonNode *data = member(message, "data");
        JsonNode *timestamp = member(message, "timestamp");
        uint64_t usec = 0;

        if (!node_is_string(event))
                return qmp_protocol_error(qmp, "event: \"event\" is not a string");
        if (data && !node_is_object(data))
                return qmp_protocol_error(qmp, "event: \"data\" is not an object");
        if (timestamp) {
                JsonObject *t = node_is_object(timestamp) ? json_node_get_object(timestamp) : NULL;
                JsonNode *seconds = member(t, "seconds");
                JsonNode *microseconds = member(t, "microseconds");
                int64_t s, us;

                if (!node_is_int(seconds) || !node_is_int(microseconds))
                        return qmp_protocol_error(qmp,
                                                  "event: \"timestamp\" is not {seconds, microseconds}");
                s = json_node_get_int(seconds);
                us = json_node_get_int(microseconds);
                /* QEMU sends -1/-1 when it could not read the clock. */
                if (s >= 0 && us >= 0 && us < G_USEC_PER_SEC &&
                    (uint64_t) s <= UINT64_MAX / G_USEC_PER_SEC - 1)
                        usec = (uint64_t) s * G_USEC_PER_SEC + (uint64_t) us;
        }

        if (qmp->on_event)
                qmp->on_event(qmp, json_node_get_string(event), data ? json_node_get_object(data) : NULL,
                              usec, qmp->userdata);
        return 0;
}

static int qmp_handle_reply(Qmp *qmp, JsonObject *message) {
        JsonNode *id = member(message, "id");
        JsonNode *result = member(message, "return");
        JsonNode *error = member(message, "error");
        g_autoptr(GError) failure = NULL;
        const char *error_class = NULL;
        QmpCommand *cmd = NULL;

        if (id) {
                if (!node_is_string(id))
                        return qmp_protocol_error(qmp, "a reply carries an \"id\" that is not a string");
                for (GList *l = qmp->in_flight.head; l; l = l->next) {
                        /* In band QEMU answers in order: nearly always the
                         * head. An out-of-band reply may overtake. */
                        QmpCommand *c = l->data;

                        if (strcmp(c->id, json_node_get_string(id)) == 0) {
                                cmd = c;
                                g_queue_delete_link(&qmp->in_flight, l);
                                break;
                        }
                }
                if (!cmd) {
                        g_autofree char *e = escape_for_log(json_node_get_string(id));
                        log_warning("ignoring a QMP reply with unknown id \"%s\"", e);
                        return 0;
                }
        } else {
                /* QEMU answers a command it could not parse with an error
                 * without id, queued in band (it cannot tell exec-oob from
                 * garbage); ours parse, but take it for the oldest in-band
                 * command. */
                for (GList *l = qmp->in_flight.head; l; l = l->next)
                        if (!((QmpCommand *) l->data)->oob) {
                                cmd = l->data;
                                g_queue_delete_link(&qmp->in_flight, l);
                                break;
                        }
                if (!cmd) {
                        log_warning("ignoring a QMP reply without id: no in-band command is pending");
                        return 0;
                }
        }
        /* The fd it passed was taken (or refused): the next may go. */
        if (cmd->passes_fd && qmp->state == QMP_READY)
                qmp_send_queued(qmp);

        if (cmd->timed_out) {
                log_debug("dropping the late reply to QMP command '%s' %s", cmd->name, cmd->id);
                qmp_command_free(cmd);
                return 0;
        }

        if (result && error)
                failure = g_error_new(
                        VM_ERROR, VM_ERROR_BACKEND_FAILED,
                        "QMP protocol error: the reply to '%s' has both \"return\" and \"error\"",
                        cmd->name);
        else if (error) {
                JsonObject *e = node_is_object(error) ? json_node_get_object(error) : NULL;
                JsonNode *klass = member(e, "class");
                JsonNode *desc = member(e, "desc");

                if (!node_is_string(klass) || !node_is_string(desc))
                        failure = g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                              "QMP protocol error: the error reply to '%s' lacks string "
                                              "\"class\" and \"desc\"",
                                              cmd->name);
                else {
                        error_class = json_node_get_string(klass);
                        failure =
                                g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED, "QEMU refused '%s': %s (%s)",
                                            cmd->name, json_node_get_string(desc), error_class);
                }
        }

        qmp_complete(qmp, cmd, failure ? NULL : result, error_class, failure);
        return 0;
}

/* Outside strings only these bytes may occur in JSON as QEMU writes it.
 * Refusing anything else ("'", "/", "#") keeps json-glib, which accepts
 * single-quoted strings and comments, from seeing structure where
 * json_prescan() saw a string, or the other way round. */
static bool json_structural_byte(char c) {
        return strchr(" \t\r\n{}[]:,-+.0123456789eEtrufalsn", c) != NULL;
}

/* The value of the four hex digits at text[i], or -1. */
static int hex4(const char *text, size_t length, size_t i) {
        int v = 0;

        if (i + 4 > length)
                return -1;
        for (size_t k = i; k < i + 4; k++) {
                int d = g_ascii_xdigit_value(text[k]);
                if (d < 0)
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

/*
 * What json-glib gets wrong on hostile input, checked before it sees it:
 * its parser recurses once per nesting level without a limit (a line of
 * "[[[[..." overflows the stack); it turns an escaped lone surrogate
 * ("\udfff") into invalid UTF-8 in the string it returns; and "\u0000"
 * silently truncates a string. QEMU's JSON writer produces none of these.
 */
static bool json_prescan(const char *text, size_t length, const char **ret_why) {
        unsigned depth = 0;
        bool in_string = false;

        for (size_t i = 0; i < length; i++) {
                char c = text[i];

                if (in_string) {
                        int v, low;

                        if (c == '"')
                                in_string = false;
                        if (c != '\\')
                                continue;
                        if (i + 1 < length && text[i + 1] != '\0' && strchr("\"\\/bfnrt", text[i + 1])) {
                                i++;
                                continue;
                        }
                        v = i + 1 < length && text[i + 1] == 'u' ? hex4(text, length, i + 2) : -1;
                        if (v < 0) {
                                /* json-glib turns some of these into invalid UTF-8 */
                                *ret_why = "not JSON (an invalid escape in a string)";
                                return false;
                        }
                        if (v == 0) {
                                *ret_why = "not acceptable (an escaped NUL in a string)";
                                return false;
                        }
                        if (v >= 0xDC00 && v <= 0xDFFF) {
                                *ret_why = "not valid UTF-16 (a lone low surrogate escape)";
                                return false;
                        }
                        if (v >= 0xD800 && v <= 0xDBFF) {
                                low = i + 7 < length && text[i + 6] == '\\' && text[i + 7] == 'u'
                                        ? hex4(text, length, i + 8)
                                        : -1;
                                if (low < 0xDC00 || low > 0xDFFF) {
                                        *ret_why = "not valid UTF-16 (a lone high surrogate escape)";
                                        return false;
                                }
                                i += 6;
                        }
                        i += 5;
                        continue;
                }
                if (c == '"')
                        in_string = true;
                else if (c == '{' || c == '[') {
                        if (++depth > QMP_MAX_NESTING) {
                                *ret_why = "nested too deeply";
                                return false;
                        }
                } else if (c == '}' || c == ']') {
                        if (depth > 0)
                                depth--;
                } else if (!json_structural_byte(c)) {
                        *ret_why = "not JSON (stray character outside a string)";
                        return false;
                }
        }
        return true;
}

/* Belt and braces after json_prescan(): whatever json-glib hands out must
 * be valid UTF-8, since strings from QEMU end up in D-Bus messages. The
 * recursion is bounded by QMP_MAX_NESTING. */
static bool json_strings_valid(JsonNode *node) {
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_OBJECT: {
                JsonObjectIter iter;
                const char *name;
                JsonNode *child;

                json_object_iter_init(&iter, json_node_get_object(node));
                while (json_object_iter_next(&iter, &name, &child))
                        if (!g_utf8_validate(name, -1, NULL) || !json_strings_valid(child))
                                return false;
                return true;
        }
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(node);

                for (guint i = 0; i < json_array_get_length(array); i++)
                        if (!json_strings_valid(json_array_get_element(array, i)))
                                return false;
                return true;
        }
        case JSON_NODE_VALUE:
                return json_node_get_value_type(node) != G_TYPE_STRING ||
                        g_utf8_validate(json_node_get_string(node), -1, NULL);
        case JSON_NODE_NULL:
        default:
                return true;
        }
}

static int qmp_handle_line(Qmp *qmp, const char *line, size_t length) {
        g_autoptr(JsonParser) parser = NULL;
        g_autoptr(GError) error = NULL;
        const char *why = NULL;
        JsonNode *root;
        JsonObject *message;

        if (length > 0 && line[length - 1] == '\r')
                length--;
        if (length == 0)
                return 0;

        /* Also refuses NUL bytes, which json-glib would stop at. */
        if (!g_utf8_validate_len(line, length, NULL))
                return qmp_protocol_error(qmp, "a message is not valid UTF-8");
        if (!json_prescan(line, length, &why))
                return qmp_protocol_error(qmp, "a message is %s", why);

        parser = json_parser_new();
        if (!json_parser_load_from_data(parser, line, (gssize) length, &error)) {
                /* json-glib quotes the input, and may cut a character in two. */
                g_autofree char *why_json = g_utf8_make_valid(error->message, -1);
                return qmp_protocol_error(qmp, "a message is not valid JSON: %s", why_json);
        }
        root = json_parser_get_root(parser);
        if (!node_is_object(root))
                return qmp_protocol_error(qmp, "a message is not a JSON object");
        if (!json_strings_valid(root))
                return qmp_protocol_error(qmp, "a message holds a string that is not valid UTF-8");
        message = json_node_get_object(root);

        if (json_object_has_member(message, "QMP"))
                return qmp_handle_greeting(qmp, message);
        if (!qmp->have_greeting)
                return qmp_protocol_error(qmp, "the first message is not the QMP greeting");
        if (json_object_has_member(message, "event"))
                return qmp_handle_event(qmp, message);
        if (json_object_has_member(message, "return") || json_object_has_member(message, "error"))
                return qmp_handle_reply(qmp, message);
        return qmp_protocol_error(qmp, "a message is neither a reply nor an event");
}

/* Handles every complete line in ->in. The caller holds a reference. */
static void qmp_process_input(Qmp *qmp) {
        size_t consumed = 0;

        while (!qmp->freed && qmp->state != QMP_CLOSED) {
                const uint8_t *start = qmp->in->data + consumed;
                const uint8_t *newline =
                        memchr(qmp->in->data + qmp->in_scanned, '\n', qmp->in->len - qmp->in_scanned);
                size_t length;

                if (!newline) {
                        qmp->in_scanned = qmp->in->len;
                        if (qmp->in->len - consumed > QMP_MAX_LINE)
                                qmp_protocol_error(qmp, "a message is longer than %u MiB",
                                                   QMP_MAX_LINE / 1024 / 1024);
                        break;
                }
                length = (size_t) (newline - start);
                consumed += length + 1;
                qmp->in_scanned = consumed;
                if (length > QMP_MAX_LINE + 1) {
                        qmp_protocol_error(qmp, "a message is longer than %u MiB",
                                           QMP_MAX_LINE / 1024 / 1024);
                        break;
                }
                (void) qmp_handle_line(qmp, (const char *) start, length);
        }

        if (consumed > 0) {
                g_byte_array_remove_range(qmp->in, 0, consumed);
                qmp->in_scanned -= MIN(qmp->in_scanned, consumed);
        }
        if (qmp->in->len == 0 && consumed > QMP_READ_BUDGET) {
                /* Do not keep the capacity a huge reply needed. */
                g_byte_array_unref(qmp->in);
                qmp->in = g_byte_array_new();
        }
}

static void qmp_read(Qmp *qmp) {
        for (size_t total = 0; total < QMP_READ_BUDGET;) {
                size_t old = qmp->in->len;
                int saved_errno;
                ssize_t n;

                g_byte_array_set_size(qmp->in, old + QMP_READ_CHUNK);
                n = recv(qmp->fd, qmp->in->data + old, QMP_READ_CHUNK, MSG_DONTWAIT);
                saved_errno = errno;
                g_byte_array_set_size(qmp->in, old + MAX(n, 0));
                if (n < 0) {
                        if (saved_errno == EINTR)
                                continue;
                        if (saved_errno == EAGAIN)
                                return;
                        qmp_shutdown(qmp,
                                     g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                                 "reading from the QMP socket failed (QEMU gone?): %s",
                                                 g_strerror(saved_errno)));
                        return;
                }
                if (n == 0) {
                        /* Whatever ended in a newline was handled already. */
                        if (qmp->in->len > 0)
                                log_debug("QMP: %u bytes without newline before EOF", qmp->in->len);
                        qmp_shutdown(qmp,
                                     g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                                 "QEMU closed the QMP connection"));
                        return;
                }
                total += n;
                qmp_process_input(qmp);
                if (qmp->freed || qmp->state == QMP_CLOSED)
                        return;
        }
}

static void qmp_finish_connect(Qmp *qmp) {
        int error = 0;
        socklen_t length = sizeof(error);

        if (getsockopt(qmp->fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0)
                error = errno;
        if (error != 0) {
                qmp_shutdown(qmp,
                             g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                         "connecting to the QMP socket failed: %s", g_strerror(error)));
                return;
        }
        qmp->state = QMP_NEGOTIATING;
        qmp_update_events(qmp);
}

static int qmp_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Qmp *qmp = qmp_ref(userdata);

        if (qmp->state == QMP_CONNECTING)
                qmp_finish_connect(qmp);
        else {
                /* Reading first: replies and events that arrived before an
                 * EPIPE are still delivered. */
                if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                        qmp_read(qmp);
                if (!qmp->freed && qmp->state != QMP_CLOSED && (revents & EPOLLOUT))
                        qmp_flush(qmp);
        }
        qmp_unref(qmp);
        return 0;
}

int qmp_new(sd_event *event, QmpEventFn on_event, QmpStateFn on_state, void *userdata, Qmp **ret) {
        g_autofree Qmp *qmp = g_new0(Qmp, 1);
        int r;

        assert(event);
        assert(ret);

        r = sd_event_add_defer(event, &qmp->deferred, qmp_on_deferred, qmp);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(qmp->deferred, SD_EVENT_OFF);

        qmp->n_ref = 1;
        qmp->event = sd_event_ref(event);
        qmp->on_event = on_event;
        qmp->on_state = on_state;
        qmp->userdata = userdata;
        qmp->state = QMP_NEW;
        qmp->fd = -1;
        qmp->negotiation_timeout_usec = QMP_DEFAULT_NEGOTIATION_TIMEOUT_USEC;
        qmp->in = g_byte_array_new();
        qmp->out = g_byte_array_new();
        qmp->out_fds = g_array_new(FALSE, FALSE, sizeof(QmpOutFd));
        g_queue_init(&qmp->queued);
        g_queue_init(&qmp->in_flight);
        g_queue_init(&qmp->failing);
        *ret = g_steal_pointer(&qmp);
        return 0;
}

Qmp *qmp_free(Qmp *qmp) {
        if (!qmp)
                return NULL;
        assert(!qmp->freed);

        qmp->freed = true;
        qmp_disconnect(qmp);
        g_queue_clear_full(&qmp->queued, (GDestroyNotify) qmp_command_free);
        g_queue_clear_full(&qmp->in_flight, (GDestroyNotify) qmp_command_free);
        g_queue_clear_full(&qmp->failing, (GDestroyNotify) qmp_command_free);
        qmp->deferred = sd_event_source_disable_unref(qmp->deferred);
        qmp_unref(qmp);
        return NULL;
}

void qmp_set_negotiation_timeout(Qmp *qmp, uint64_t usec) {
        assert(qmp);
        qmp->negotiation_timeout_usec = usec;
}

/* Takes fd. */
static int qmp_start(Qmp *qmp, int fd, bool connecting, GError **error) {
        int r;

        qmp->fd = fd;
        r = sd_event_add_io(qmp->event, &qmp->io, fd, connecting ? EPOLLOUT : EPOLLIN, qmp_on_io, qmp);
        if (r < 0) {
                qmp_disconnect(qmp);
                vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot watch the QMP socket: %s",
                             g_strerror(-r));
                return r;
        }
        if (qmp->negotiation_timeout_usec > 0) {
                r = sd_event_add_time_relative(qmp->event, &qmp->negotiation_timer, CLOCK_MONOTONIC,
                                               qmp->negotiation_timeout_usec, 1000,
                                               qmp_on_negotiation_timeout, qmp);
                if (r < 0) {
                        qmp_disconnect(qmp);
                        vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot arm the QMP timer: %s",
                                     g_strerror(-r));
                        return r;
                }
        }
        qmp->state = connecting ? QMP_CONNECTING : QMP_NEGOTIATING;
        return 0;
}

int qmp_attach_fd(Qmp *qmp, int fd, GError **error) {
        int flags;

        assert(qmp);
        if (fd < 0) {
                vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "invalid QMP file descriptor %d", fd);
                return -EBADF;
        }
        if (qmp->state != QMP_NEW) {
                (void) close(fd);
                vm_error_set(error, VM_ERROR_INVALID_STATE, "the QMP connection was started already");
                return -EBUSY;
        }
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                int r = -errno;

                (void) close(fd);
                vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot make the QMP socket non-blocking: %s",
                             g_strerror(-r));
                return r;
        }
        return qmp_start(qmp, fd, false, error);
}

int qmp_connect_path(Qmp *qmp, const char *socket_path, GError **error) {
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        int fd;

        assert(qmp);
        assert(socket_path);
        if (qmp->state != QMP_NEW) {
                vm_error_set(error, VM_ERROR_INVALID_STATE, "the QMP connection was started already");
                return -EBUSY;
        }
        if (socket_path[0] == '\0' || strlen(socket_path) >= sizeof(address.sun_path)) {
                vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                             "QMP socket path '%s' is empty or longer than %zu bytes", socket_path,
                             sizeof(address.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        strcpy(address.sun_path, socket_path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                int r = -errno;

                vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot create a socket for QMP: %s",
                             g_strerror(-r));
                return r;
        }
        if (connect(fd, (struct sockaddr *) &address, sizeof(address)) < 0) {
                int r = -errno;

                if (r != -EINPROGRESS) {
                        (void) close(fd);
                        vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot connect to QMP socket %s: %s",
                                     socket_path, g_strerror(-r));
                        return r;
                }
                return qmp_start(qmp, fd, true, error);
        }
        return qmp_start(qmp, fd, false, error);
}

/* QMP command names: "query-status", "x-exit-preconfig", "__com.redhat_x". */
static bool command_name_valid(const char *name) {
        if (!name || name[0] == '\0' || strlen(name) > 128)
                return false;
        for (const char *p = name; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr("-_.", *p))
                        return false;
        return true;
}

/* qmp_execute() with fd (ours, or -1) to send along, out of band if oob
 * (and QEMU agreed); takes arguments and fd in all cases. */
static int qmp_queue_command(Qmp *qmp, const char *command, JsonObject *arguments, int fd, bool oob,
                             uint64_t timeout_usec, QmpReplyFn done, void *userdata, GError **error) {
        g_autoptr(JsonObject) args = arguments;
        QmpCommand *cmd;
        int r;

        assert(qmp);
        assert(!qmp->freed);
        if (!command_name_valid(command)) {
                if (fd >= 0)
                        (void) close(fd);
                vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "invalid QMP command name '%s'",
                             command ?: "(null)");
                return -EINVAL;
        }
        if (qmp->state == QMP_CLOSED) {
                if (fd >= 0)
                        (void) close(fd);
                vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                             "cannot send QMP command '%s': the connection is closed", command);
                return -ENOTCONN;
        }

        cmd = qmp_command_new(qmp, command);
        cmd->fd = fd;
        cmd->passes_fd = fd >= 0;
        cmd->oob = oob;
        cmd->arguments = g_steal_pointer(&args);
        cmd->done = done;
        cmd->userdata = userdata;
        cmd->timeout_usec = timeout_usec;
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(qmp->event, &cmd->timer, CLOCK_MONOTONIC, timeout_usec, 1000,
                                               qmp_on_command_timeout, cmd);
                if (r < 0) {
                        vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                     "cannot arm the timeout of QMP command '%s': %s", command,
                                     g_strerror(-r));
                        qmp_command_free(cmd);
                        return r;
                }
        }

        g_queue_push_tail(&qmp->queued, cmd);
        if (qmp->state == QMP_READY)
                qmp_send_queued(qmp);
        return 0;
}

int qmp_execute(Qmp *qmp, const char *command, JsonObject *arguments, uint64_t timeout_usec, QmpReplyFn done,
                void *userdata, GError **error) {
        return qmp_queue_command(qmp, command, arguments, -1, false, timeout_usec, done, userdata, error);
}

int qmp_execute_oob(Qmp *qmp, const char *command, JsonObject *arguments, uint64_t timeout_usec,
                    QmpReplyFn done, void *userdata, GError **error) {
        return qmp_queue_command(qmp, command, arguments, -1, true, timeout_usec, done, userdata, error);
}

bool qmp_oob_enabled(Qmp *qmp) {
        assert(qmp);
        return qmp->oob_enabled;
}

int qmp_execute_with_fd(Qmp *qmp, const char *command, JsonObject *arguments, int fd, uint64_t timeout_usec,
                        QmpReplyFn done, void *userdata, GError **error) {
        g_autoptr(JsonObject) args = arguments;
        int copy;

        assert(qmp);
        if (fd < 0) {
                vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                             "invalid file descriptor %d for QMP command '%s'", fd, command ?: "(null)");
                return -EBADF;
        }
        /* Our own copy: the caller may close fd as soon as we return, and
         * the command may wait for negotiation or a full socket. At 3 or
         * above, so that it never poses as stdio should that be closed. */
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0) {
                int r = -errno;

                if (r == -EBADF)
                        vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                     "invalid file descriptor %d for QMP command '%s': %s", fd,
                                     command ?: "(null)", g_strerror(-r));
                else
                        vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                     "cannot duplicate file descriptor %d for QMP command '%s': %s", fd,
                                     command ?: "(null)", g_strerror(-r));
                return r;
        }
        return qmp_queue_command(qmp, command, g_steal_pointer(&args), copy, false, timeout_usec, done,
                                 userdata, error);
}

void qmp_close(Qmp *qmp) {
        assert(qmp);
        qmp_shutdown(qmp, NULL);
}

QmpState qmp_get_state(Qmp *qmp) {
        assert(qmp);
        return qmp->state;
}

int qmp_get_version(Qmp *qmp, unsigned *ret_major, unsigned *ret_minor, unsigned *ret_micro,
                    const char **ret_package) {
        assert(qmp);
        if (!qmp->have_greeting)
                return -ENODATA;
        if (ret_major)
                *ret_major = qmp->version[0];
        if (ret_minor)
                *ret_minor = qmp->version[1];
        if (ret_micro)
                *ret_micro = qmp->version[2];
        if (ret_package)
                *ret_package = qmp->package;
        return 0;
}

const char *const *qmp_get_capabilities(Qmp *qmp) {
        assert(qmp);
        return (const char *const *) qmp->capabilities;
}
