/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the QMP client: the input is what "QEMU" writes on the
 * socket. Invariants checked (abort() on violation): every command's
 * callback runs exactly once unless the Qmp was freed first, with exactly
 * one of result and error; the connection ends CLOSED once the peer's EOF
 * is read; nothing runs after qmp_free(). Leaks and memory errors are for
 * ASan/valgrind.
 *
 * The first byte selects the scenario (bits):
 *   1  the harness sends a valid greeting and answers qmp_capabilities
 *      ("vm-1") itself; the input follows (so "vm-2".."vm-4" are the three
 *      queued commands); otherwise the input must start with the greeting
 *   2  the first command's callback frees the Qmp
 *   4  an event named "FREE" frees the Qmp from the event callback
 *   8  the second command has a 1 µs timeout (its late reply is dropped)
 *  16  every reply callback queues a follow-up command (up to 8)
 *  32  the third command is qmp_execute_oob() ("exec-oob" if the greeting
 *      offered "oob", as the harness's does; in band otherwise)
 *
 * Regression run (built by meson, replays the seed corpus):
 *   build/tests/fuzz/fuzz-qmp tests/fuzz/corpus/qmp
 *
 * libFuzzer run (clang 14 on Debian 12, from the top of the tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
 *     -Iservice $(pkg-config --cflags glib-2.0 json-glib-1.0 libsystemd) \
 *     tests/fuzz/fuzz-qmp.c service/backends/qemu/qmp.c service/errors.c service/log.c \
 *     $(pkg-config --libs glib-2.0 json-glib-1.0 libsystemd) -o build/fuzz-qmp-libfuzzer
 *   mkdir -p build/fuzz-corpus-qmp
 *   build/fuzz-qmp-libfuzzer -max_total_time=180 -max_len=4096 -timeout=5 \
 *     -dict=tests/fuzz/qmp.dict build/fuzz-corpus-qmp tests/fuzz/corpus/qmp
 * New crashes (crash-*) go into tests/fuzz/corpus/qmp/ once fixed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HARNESS_PREFIX                                                                                      \
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": "     \
        "\"\"}, \"capabilities\": [\"oob\"]}}\r\n{\"return\": {}, \"id\": \"vm-1\"}\r\n"

typedef struct State {
        Qmp *qmp;
        unsigned mode;
        int calls[3];
        int follow_ups_queued, follow_ups_done;
        bool closed;
} State;

typedef struct Slot {
        State *state;
        int index; /* -1: a follow-up */
} Slot;

static Slot slots[3];
static Slot follow_up_slot;

static void on_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                     void *userdata) {
        Slot *slot = userdata;
        State *s = slot->state;

        if (!s->qmp || qmp != s->qmp)
                abort(); /* called after qmp_free(), or with another Qmp */
        if ((result == NULL) == (error == NULL))
                abort();
        if (error && (!error->message || !g_utf8_validate(error->message, -1, NULL)))
                abort();
        if (error_class && !error)
                abort();
        if (slot->index >= 0) {
                if (++s->calls[slot->index] != 1)
                        abort();
        } else
                s->follow_ups_done++;

        if ((s->mode & 16) && s->follow_ups_queued < 8 &&
            qmp_execute(qmp, "follow-up", NULL, 0, on_reply, &follow_up_slot, NULL) >= 0)
                s->follow_ups_queued++;
        if ((s->mode & 2) && slot->index == 0)
                s->qmp = qmp_free(qmp);
}

static void on_event(Qmp *qmp, const char *event, JsonObject *data, uint64_t timestamp_usec,
                     void *userdata) {
        State *s = userdata;

        if (!s->qmp || qmp != s->qmp || !event || !g_utf8_validate(event, -1, NULL))
                abort();
        if ((s->mode & 4) && strcmp(event, "FREE") == 0)
                s->qmp = qmp_free(qmp);
}

static void on_state(Qmp *qmp, QmpState state, const GError *error, void *userdata) {
        State *s = userdata;

        if (!s->qmp || qmp != s->qmp || s->closed)
                abort();
        if (state == QMP_CLOSED) {
                if (!error)
                        abort();
                s->closed = true;
        } else if (state != QMP_READY || error)
                abort();
}

static bool finished(State *s) {
        return !s->qmp || s->closed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sd_event *event = NULL;
        State s = {};
        int pair[2];

        log_set_max_level(LOG_CRIT);
        if (size > 0) {
                s.mode = data[0];
                data++, size--;
        }
        if (sd_event_new(&event) < 0)
                abort();
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                abort();
        if (fcntl(pair[0], F_SETFL, O_NONBLOCK) < 0)
                abort();
        if (qmp_new(event, on_event, on_state, &s, &s.qmp) < 0)
                abort();
        qmp_set_negotiation_timeout(s.qmp, 0); /* the stream decides, not the clock */
        if (qmp_attach_fd(s.qmp, pair[1], NULL) < 0)
                abort();

        for (int i = 0; i < 3; i++) {
                JsonObject *arguments = json_object_new();

                slots[i] = (Slot){ .state = &s, .index = i };
                json_object_set_int_member(arguments, "n", i);
                if (i == 2 && (s.mode & 32)) {
                        if (qmp_execute_oob(s.qmp, "migrate-recover", arguments, 0, on_reply, &slots[i],
                                            NULL) < 0)
                                abort();
                        continue;
                }
                if (qmp_execute(s.qmp,
                                i == 0           ? "migrate"
                                        : i == 1 ? "query-migrate"
                                                 : "cont",
                                arguments, i == 1 && (s.mode & 8) ? 1 : 0, on_reply, &slots[i], NULL) < 0)
                        abort();
        }
        follow_up_slot = (Slot){ .state = &s, .index = -1 };

        /* The peer writes everything (the loop drains the socket whenever
         * it is full), then EOF. The client's commands are never read. */
        {
                g_autoptr(GByteArray) stream = g_byte_array_new();
                size_t done = 0;

                if (s.mode & 1)
                        g_byte_array_append(stream, (const guint8 *) HARNESS_PREFIX, strlen(HARNESS_PREFIX));
                g_byte_array_append(stream, data, size);
                while (done < stream->len && !finished(&s)) {
                        ssize_t n = send(pair[0], stream->data + done, stream->len - done, MSG_NOSIGNAL);
                        if (n < 0 && errno != EAGAIN)
                                break; /* the client closed its end */
                        if (n > 0)
                                done += n;
                        (void) sd_event_run(event, 0);
                }
                (void) shutdown(pair[0], SHUT_WR);
        }

        /* After EOF the client must end up CLOSED, without help. */
        for (int i = 0; i < 10000 && !finished(&s); i++)
                (void) sd_event_run(event, 100 * 1000);
        if (!finished(&s))
                abort();
        /* Let the failures of pending commands run (they come from the loop,
         * before the CLOSED report, so they have run already if closed). */
        for (int i = 0; i < 3; i++)
                if (s.qmp && s.calls[i] != 1)
                        abort();
        if (s.qmp && s.follow_ups_done != s.follow_ups_queued)
                abort();

        qmp_free(s.qmp);
        close(pair[0]);
        sd_event_unref(event);
        return 0;
}
