/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-event.h>

/*
 * A QMP client driven by sd-event: one unix-socket connection to one QEMU.
 *
 * Commands may be queued at any time before the connection closes; they are
 * sent in order once the greeting has been validated and qmp_capabilities has
 * succeeded. Each command carries an "id" ("vm-<n>", numbered in sending
 * order, so qmp_capabilities is always "vm-1") and its reply is matched by
 * that id. Every callback is called from the event loop, never from inside a
 * qmp_*() call, and a callback may call anything here, qmp_free() included.
 *
 * When the greeting offers "oob", qmp_capabilities enables it, and
 * qmp_execute_oob() sends "exec-oob": QEMU runs such a command in its
 * monitor thread at once, even while its main loop is blocked, and its
 * reply may overtake those of in-band commands (which still come in order).
 * With "oob" on, a command passing an fd is held back until the previous
 * one that passed an fd has been answered (see qmp_send_queued()).
 *
 * Everything the peer sends is validated. A message that cannot be attributed
 * to one command (not strict JSON, not an object, invalid UTF-8 or an escape
 * that would decode to it, "\u0000", nested deeper than QMP_MAX_NESTING, an
 * "id" that is not a string, a malformed event or greeting, anything before
 * the greeting, a line over QMP_MAX_LINE) closes the connection: past such a
 * message the stream cannot be trusted to pair replies with commands, and a
 * misattributed reply to a migration command is worse than a failed one. A
 * reply that matches a command but is malformed ("return" together with
 * "error", "error" without string "class" and "desc") fails that command only.
 */

typedef struct Qmp Qmp;

typedef enum QmpState {
        QMP_NEW,         /* neither connected nor attached yet */
        QMP_CONNECTING,  /* connect() in progress */
        QMP_NEGOTIATING, /* waiting for the greeting or the answer to qmp_capabilities */
        QMP_READY,       /* commands flow */
        QMP_CLOSED,      /* EOF, I/O or protocol error, or qmp_close(); final */
} QmpState;

/* QEMU replies with query-* results of a few hundred KiB at most
 * (query-qmp-schema is the largest, ~200 KiB in QEMU 10); 16 MiB leaves room
 * for huge block graphs while bounding what a hostile peer makes us buffer. */
#define QMP_MAX_LINE (16u * 1024u * 1024u)
/* The nesting QEMU's own JSON parser accepts; json-glib recurses per level. */
#define QMP_MAX_NESTING 1024u
/* Greeting + qmp_capabilities, counted from connect/attach. */
#define QMP_DEFAULT_NEGOTIATION_TIMEOUT_USEC (30u * G_USEC_PER_SEC)

/*
 * The reply to one command. On success result is the "return" member
 * (borrowed, valid during the call) and error and error_class are NULL.
 * On failure result is NULL and error (VM_ERROR_BACKEND_FAILED) says why:
 * QEMU's answer ("QEMU refused 'cont': <desc> (<class>)"), a timeout,
 * a malformed reply, or the connection closing. error_class is QEMU's error
 * class ("GenericError", "CommandNotFound", "DeviceNotActive", ...) when
 * QEMU answered with an error, NULL for every local failure.
 */
typedef void (*QmpReplyFn)(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                           void *userdata);

/* An event. data is NULL when QEMU sent none; timestamp_usec is QEMU's
 * wall-clock time (0 if it sent none or a negative one). */
typedef void (*QmpEventFn)(Qmp *qmp, const char *event, JsonObject *data, uint64_t timestamp_usec,
                           void *userdata);

/* QMP_READY once negotiation succeeded (error NULL); QMP_CLOSED when the
 * peer closed or an I/O, protocol or negotiation error occurred (error says
 * which), after every pending command was failed. Not called for qmp_close()
 * or qmp_free(). */
typedef void (*QmpStateFn)(Qmp *qmp, QmpState state, const GError *error, void *userdata);

int qmp_new(sd_event *event, QmpEventFn on_event, QmpStateFn on_state, void *userdata, Qmp **ret);

/* Drops pending commands WITHOUT calling their callbacks (their owner is
 * going away; use qmp_close() first and let the loop run to have them
 * failed) and closes the socket. Safe from inside any callback. */
Qmp *qmp_free(Qmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Qmp, qmp_free)

/* Non-blocking connect to QEMU's "-qmp unix:PATH,server=on" socket. The
 * return value is -errno of connect(): -ENOENT (not created yet),
 * -ECONNREFUSED and -EAGAIN are worth retrying, which is the caller's
 * business. Only valid in QMP_NEW. */
int qmp_connect_path(Qmp *qmp, const char *socket_path, GError **error);
/* Takes fd (a connected stream socket; made non-blocking) in all cases. */
int qmp_attach_fd(Qmp *qmp, int fd, GError **error);

/* 0 disables the negotiation deadline. Takes effect at connect/attach. */
void qmp_set_negotiation_timeout(Qmp *qmp, uint64_t usec);

/*
 * Queues command; arguments (an object, or NULL) is taken in all cases.
 * timeout_usec > 0 fails the command that long after this call (time spent
 * queued counts) and a reply arriving later is ignored; 0 waits forever.
 * done may be NULL (fire and forget). Fails (no callback) once closed.
 */
int qmp_execute(Qmp *qmp, const char *command, JsonObject *arguments, uint64_t timeout_usec, QmpReplyFn done,
                void *userdata, GError **error);

/* Like qmp_execute(), as "exec-oob" if QEMU agreed to "oob" (only for the
 * commands its schema marks allow-oob, e.g. migrate-recover, migrate-pause),
 * in band otherwise: the caller does not have to ask which. */
int qmp_execute_oob(Qmp *qmp, const char *command, JsonObject *arguments, uint64_t timeout_usec,
                    QmpReplyFn done, void *userdata, GError **error);

/* Like qmp_execute(), and sends fd (borrowed: the Qmp keeps a duplicate
 * until it is sent, and closes it then or when the command fails or the
 * connection closes) as SCM_RIGHTS with the first byte of the command, as
 * QEMU's "getfd" and "add-fd" expect. */
int qmp_execute_with_fd(Qmp *qmp, const char *command, JsonObject *arguments, int fd, uint64_t timeout_usec,
                        QmpReplyFn done, void *userdata, GError **error);

/* Closes the socket; pending commands fail with "connection closed" from
 * the event loop (their callbacks run later, never inside this call). */
void qmp_close(Qmp *qmp);

QmpState qmp_get_state(Qmp *qmp);

/* From the greeting; -ENODATA before it arrived. ret_package (borrowed) may
 * be "" (Debian's builds put their version there). */
int qmp_get_version(Qmp *qmp, unsigned *ret_major, unsigned *ret_minor, unsigned *ret_micro,
                    const char **ret_package);
/* The capabilities QEMU offered ("oob"), NULL-terminated, borrowed; NULL
 * before the greeting. */
const char *const *qmp_get_capabilities(Qmp *qmp);
/* Whether "oob" was negotiated (false before QMP_READY). */
bool qmp_oob_enabled(Qmp *qmp);
