/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * service/tunnel-relay.c over real pipes and sockets. The relay runs in a
 * thread; other threads play ssh (writing standard input, reading standard
 * output) and QEMU (the migration socket's peer), each writing or checking
 * a stream whose every byte depends on its position, so that a lost,
 * repeated or reordered piece shows. Every wait has a deadline: a relay
 * that hangs fails the test instead of stalling it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>

#include "errors.h"
#include "tunnel-relay.h"

#define BIG_STREAM (64u * 1024 * 1024)
#define SMALL_STREAM (1024u * 1024)
#define IO_CHUNK (256 * 1024)
/* Long enough for 64 MiB each way under ASan, and under valgrind (whose
 * wrapper sets VMIGRATE_VALGRIND) ten times that. */
#define DEADLINE_USEC (20 * G_USEC_PER_SEC * slowness())
/* How soon an end or a failure must have crossed the relay. */
#define QUICK_USEC (5 * G_USEC_PER_SEC * slowness())

static gint64 slowness(void) {
        return g_getenv("VMIGRATE_VALGRIND") ? 10 : 1;
}

/* ---- streams ---- */

/* The bytes at offset.. of stream seed. */
static void pattern_fill(guint32 seed, guint64 offset, guint8 *buf, size_t len) {
        for (size_t i = 0; i < len; i++) {
                guint64 pos = offset + i;
                guint64 v = ((pos >> 3) + 1) * 0x9e3779b97f4a7c15ull ^ (seed * 0xbf58476d1ce4e5b9ull);
                v ^= v >> 31;
                buf[i] = (guint8) (v >> ((pos & 7) * 8));
        }
}

/* A thread that finishes once, and a deadline-bound wait for it. */
typedef struct Task {
        GThread *thread;
        GMutex lock;
        GCond cond;
        bool finished;
} Task;

static void task_start(Task *t, const char *name, GThreadFunc func, gpointer data) {
        g_mutex_init(&t->lock);
        g_cond_init(&t->cond);
        t->finished = false;
        t->thread = g_thread_new(name, func, data);
}

static void task_finish(Task *t) {
        g_mutex_lock(&t->lock);
        t->finished = true;
        g_cond_broadcast(&t->cond);
        g_mutex_unlock(&t->lock);
}

static bool task_is_finished(Task *t) {
        g_mutex_lock(&t->lock);
        bool finished = t->finished;
        g_mutex_unlock(&t->lock);
        return finished;
}

/* Waits until the task has finished or timeout_usec has passed; joins and
 * clears it if it finished. */
static bool task_wait(Task *t, gint64 timeout_usec) {
        gint64 deadline = g_get_monotonic_time() + timeout_usec;
        bool finished;

        g_mutex_lock(&t->lock);
        while (!t->finished && g_cond_wait_until(&t->cond, &t->lock, deadline))
                ;
        finished = t->finished;
        g_mutex_unlock(&t->lock);
        if (finished) {
                g_thread_join(g_steal_pointer(&t->thread));
                g_cond_clear(&t->cond);
                g_mutex_clear(&t->lock);
        }
        return finished;
}

typedef enum StreamEnd {
        STREAM_END_CLOSE,    /* close(fd) after the last byte */
        STREAM_END_SHUTDOWN, /* shutdown(fd, SHUT_WR): fd's other direction lives on */
} StreamEnd;

/* One side of a stream: a writer of `bytes` bytes, or a reader until EOF. */
typedef struct Stream {
        Task task;
        int fd;
        guint32 seed;
        guint64 bytes;   /* to write; for a reader, how many came */
        StreamEnd end;   /* writer */
        int error;       /* errno of a failed read or write, 0 if none */
        gint64 mismatch; /* reader: offset of the first wrong byte, -1 if none */
        gint64 eof_at;   /* reader: monotonic time of EOF */
} Stream;

static gpointer stream_write_thread(gpointer data) {
        Stream *s = data;
        g_autofree guint8 *buf = g_malloc(IO_CHUNK);
        guint64 offset = 0;

        while (offset < s->bytes && s->error == 0) {
                size_t len = MIN(IO_CHUNK, s->bytes - offset), done = 0;

                pattern_fill(s->seed, offset, buf, len);
                while (done < len) {
                        ssize_t n = write(s->fd, buf + done, len - done);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                s->error = errno;
                                break;
                        }
                        done += n;
                }
                offset += done;
        }
        if (s->end == STREAM_END_SHUTDOWN)
                (void) shutdown(s->fd, SHUT_WR);
        else
                (void) close(s->fd);
        task_finish(&s->task);
        return NULL;
}

static gpointer stream_read_thread(gpointer data) {
        Stream *s = data;
        g_autofree guint8 *buf = g_malloc(IO_CHUNK);
        g_autofree guint8 *expected = g_malloc(IO_CHUNK);

        for (;;) {
                ssize_t n = read(s->fd, buf, IO_CHUNK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        s->error = errno;
                        break;
                }
                if (n == 0) {
                        s->eof_at = g_get_monotonic_time();
                        break;
                }
                pattern_fill(s->seed, s->bytes, expected, n);
                if (s->mismatch < 0 && memcmp(buf, expected, n) != 0)
                        for (ssize_t i = 0; i < n && s->mismatch < 0; i++)
                                if (buf[i] != expected[i])
                                        s->mismatch = (gint64) (s->bytes + i);
                s->bytes += n;
        }
        task_finish(&s->task);
        return NULL;
}

static void stream_start_writer(Stream *s, int fd, guint32 seed, guint64 bytes, StreamEnd end) {
        *s = (Stream){ .fd = fd, .seed = seed, .bytes = bytes, .end = end, .mismatch = -1 };
        task_start(&s->task, "writer", stream_write_thread, s);
}

static void stream_start_reader(Stream *s, int fd, guint32 seed) {
        *s = (Stream){ .fd = fd, .seed = seed, .mismatch = -1 };
        task_start(&s->task, "reader", stream_read_thread, s);
}

/* Waits for a reader's EOF; then it must have had all `bytes`, intact. */
static void assert_stream_received(Stream *reader, guint64 bytes) {
        g_assert_true(task_wait(&reader->task, DEADLINE_USEC));
        g_assert_cmpint(reader->error, ==, 0);
        g_assert_cmpint(reader->mismatch, ==, -1);
        g_assert_cmpuint(reader->bytes, ==, bytes);
}

static void assert_stream_sent(Stream *writer) {
        g_assert_true(task_wait(&writer->task, DEADLINE_USEC));
        g_assert_cmpint(writer->error, ==, 0);
}

/* ---- the relay in a thread ---- */

typedef struct RelayRun {
        Task task;
        int in_fd, out_fd, sock_fd;
        int cpu; /* >= 0: run there, only when the test's thread waits */
        int tid; /* the relay thread's, once it runs */
        int r;
        GError *error;
        gint64 ended_at;
} RelayRun;

/* Makes the calling thread run on cpu alone, at SCHED_IDLE if idle: a
 * thread that wakes there then does not preempt one of normal priority. */
static void pin_to_cpu(int cpu, bool idle) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        g_assert_cmpint(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), ==, 0);
        if (idle) {
                struct sched_param param = { 0 };
                g_assert_cmpint(pthread_setschedparam(pthread_self(), SCHED_IDLE, &param), ==, 0);
        }
}

static gpointer relay_thread(gpointer data) {
        RelayRun *run = data;

        if (run->cpu >= 0)
                pin_to_cpu(run->cpu, true);
        g_atomic_int_set(&run->tid, (int) gettid());
        run->r = tunnel_relay(run->in_fd, run->out_fd, run->sock_fd, &run->error);
        run->ended_at = g_get_monotonic_time();
        task_finish(&run->task);
        return NULL;
}

static void relay_start_on_cpu(RelayRun *run, int in_fd, int out_fd, int sock_fd, int cpu) {
        *run = (RelayRun){ .in_fd = in_fd, .out_fd = out_fd, .sock_fd = sock_fd, .cpu = cpu };
        task_start(&run->task, "relay", relay_thread, run);
}

static void relay_start(RelayRun *run, int in_fd, int out_fd, int sock_fd) {
        relay_start_on_cpu(run, in_fd, out_fd, sock_fd, -1);
}

/* The system call a thread of ours sleeps in, from /proc; -1 if running
 * or unknown. */
static long thread_syscall(int tid) {
        g_autofree char *path = g_strdup_printf("/proc/self/task/%d/syscall", tid);
        g_autofree char *text = NULL;
        char *end;
        long nr;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        nr = strtol(text, &end, 10);
        return end == text ? -1 : nr;
}

/* Waits until the relay sleeps in poll(2): it has done all it could and
 * waits for what the test does next. False if /proc cannot tell. */
static bool relay_wait_sleeping(RelayRun *run) {
        gint64 deadline = g_get_monotonic_time() + QUICK_USEC;

        while (g_get_monotonic_time() < deadline) {
                int tid = g_atomic_int_get(&run->tid);
                long nr = tid > 0 ? thread_syscall(tid) : -1;
                if (nr == SYS_poll || nr == SYS_ppoll)
                        return true;
                g_usleep(1000);
        }
        return false;
}

static void relay_clear(RelayRun *run) {
        g_clear_error(&run->error);
}

static void assert_relay_succeeds(RelayRun *run) {
        g_assert_true(task_wait(&run->task, DEADLINE_USEC));
        g_assert_no_error(run->error);
        g_assert_cmpint(run->r, ==, 0);
}

/* ---- sockets ---- */

typedef enum SocketKind {
        SOCKET_UNIX,
        SOCKET_TCP, /* over loopback, as a destination QEMU may listen */
} SocketKind;

static void socket_pair(SocketKind kind, int ret[2]) {
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t length = sizeof(address);
        int listener;

        if (kind == SOCKET_UNIX) {
                g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ret), ==, 0);
                return;
        }
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(listener, >=, 0);
        g_assert_cmpint(bind(listener, (struct sockaddr *) &address, sizeof(address)), ==, 0);
        g_assert_cmpint(listen(listener, 1), ==, 0);
        g_assert_cmpint(getsockname(listener, (struct sockaddr *) &address, &length), ==, 0);
        ret[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(ret[0], >=, 0);
        g_assert_cmpint(connect(ret[0], (struct sockaddr *) &address, sizeof(address)), ==, 0);
        ret[1] = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(ret[1], >=, 0);
        g_assert_cmpint(close(listener), ==, 0);
}

static void make_pipe(int ret[2]) {
        g_assert_cmpint(pipe2(ret, O_CLOEXEC), ==, 0);
}

/* Waits until fd has something to read. */
static bool wait_readable(int fd, gint64 timeout_usec) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        return poll(&pfd, 1, (int) (timeout_usec / 1000)) == 1;
}

/* ---- the cases ---- */

/* (a) ssh's pipes on one side, a socket on the other, 64 MiB each way at
 * once, then both ends: pipe→socket and socket→pipe, spliced directly. */
static void test_both_ways_pipes(gconstpointer data) {
        SocketKind kind = GPOINTER_TO_INT(data);
        int in[2], out[2], sock[2];
        Stream ssh_writes, ssh_reads, qemu_writes, qemu_reads;
        RelayRun run;

        make_pipe(in);
        make_pipe(out);
        socket_pair(kind, sock);
        relay_start(&run, in[0], out[1], sock[0]);

        stream_start_writer(&ssh_writes, in[1], 1, BIG_STREAM, STREAM_END_CLOSE);
        stream_start_reader(&qemu_reads, sock[1], 1);
        stream_start_writer(&qemu_writes, sock[1], 2, BIG_STREAM, STREAM_END_SHUTDOWN);
        stream_start_reader(&ssh_reads, out[0], 2);

        assert_stream_sent(&ssh_writes);
        assert_stream_sent(&qemu_writes);
        assert_stream_received(&qemu_reads, BIG_STREAM);
        assert_stream_received(&ssh_reads, BIG_STREAM);
        assert_relay_succeeds(&run);

        relay_clear(&run);
        g_assert_cmpint(close(in[0]), ==, 0);
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
        g_assert_cmpint(close(sock[1]), ==, 0);
}

/* (b) ssh's standard input and output one socket: socket→socket both
 * ways, through the relay's own pipes. The same fd, or two (as sshd
 * without pipes gives them): either way the socket's end is passed on by
 * shutdown(2), as closing one of two fds would not. */
static void test_both_ways_same_socket(gconstpointer data) {
        bool two_fds = GPOINTER_TO_INT(data);
        int io[2], sock[2], out_fd;
        Stream ssh_writes, ssh_reads, qemu_writes, qemu_reads;
        RelayRun run;

        socket_pair(SOCKET_UNIX, io);
        socket_pair(SOCKET_UNIX, sock);
        out_fd = two_fds ? fcntl(io[0], F_DUPFD_CLOEXEC, 3) : io[0];
        g_assert_cmpint(out_fd, >=, 0);
        relay_start(&run, io[0], out_fd, sock[0]);

        stream_start_writer(&ssh_writes, io[1], 1, BIG_STREAM, STREAM_END_SHUTDOWN);
        stream_start_reader(&ssh_reads, io[1], 2);
        stream_start_writer(&qemu_writes, sock[1], 2, BIG_STREAM, STREAM_END_SHUTDOWN);
        stream_start_reader(&qemu_reads, sock[1], 1);

        assert_stream_sent(&ssh_writes);
        assert_stream_sent(&qemu_writes);
        assert_stream_received(&qemu_reads, BIG_STREAM);
        assert_stream_received(&ssh_reads, BIG_STREAM);
        assert_relay_succeeds(&run);

        /* The relay closed out_fd. */
        relay_clear(&run);
        if (two_fds)
                g_assert_cmpint(close(io[0]), ==, 0);
        g_assert_cmpint(close(io[1]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
        g_assert_cmpint(close(sock[1]), ==, 0);
}

/* Standard input a file (memfd): splice(2) does not go file→socket here,
 * the relay reads and writes. */
static void test_both_ways_file_input(void) {
        g_autofree guint8 *buf = g_malloc(SMALL_STREAM);
        int in, out[2], sock[2];
        Stream ssh_reads, qemu_writes, qemu_reads;
        RelayRun run;

        in = memfd_create("stdin", MFD_CLOEXEC);
        g_assert_cmpint(in, >=, 0);
        for (guint64 offset = 0; offset < 8 * SMALL_STREAM; offset += SMALL_STREAM) {
                pattern_fill(1, offset, buf, SMALL_STREAM);
                g_assert_cmpint(write(in, buf, SMALL_STREAM), ==, SMALL_STREAM);
        }
        g_assert_cmpint(lseek(in, 0, SEEK_SET), ==, 0);
        make_pipe(out);
        socket_pair(SOCKET_UNIX, sock);
        relay_start(&run, in, out[1], sock[0]);

        stream_start_reader(&qemu_reads, sock[1], 1);
        stream_start_writer(&qemu_writes, sock[1], 2, 8 * SMALL_STREAM, STREAM_END_SHUTDOWN);
        stream_start_reader(&ssh_reads, out[0], 2);

        assert_stream_sent(&qemu_writes);
        assert_stream_received(&qemu_reads, 8 * SMALL_STREAM);
        assert_stream_received(&ssh_reads, 8 * SMALL_STREAM);
        assert_relay_succeeds(&run);

        relay_clear(&run);
        g_assert_cmpint(close(in), ==, 0);
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
        g_assert_cmpint(close(sock[1]), ==, 0);
}

/* (c) QEMU goes away with bytes unread (a reset) while ssh keeps sending:
 * the relay fails at once, saying it was the migration socket, and closes
 * standard output so that the source hears of it. */
static void test_socket_reset(gconstpointer data) {
        SocketKind kind = GPOINTER_TO_INT(data);
        int in[2], out[2], sock[2];
        Stream ssh_writes, ssh_reads;
        RelayRun run;
        gint64 reset_at;

        make_pipe(in);
        make_pipe(out);
        socket_pair(kind, sock);
        relay_start(&run, in[0], out[1], sock[0]);
        stream_start_writer(&ssh_writes, in[1], 1, BIG_STREAM, STREAM_END_CLOSE);
        stream_start_reader(&ssh_reads, out[0], 2);

        g_assert_true(wait_readable(sock[1], DEADLINE_USEC));
        if (kind == SOCKET_TCP) {
                /* Unread bytes make close(2) reset too; SO_LINGER 0 says so. */
                struct linger linger = { .l_onoff = 1, .l_linger = 0 };
                g_assert_cmpint(setsockopt(sock[1], SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), ==, 0);
        }
        reset_at = g_get_monotonic_time();
        g_assert_cmpint(close(sock[1]), ==, 0);

        g_assert_true(task_wait(&run.task, QUICK_USEC));
        g_assert_cmpint(run.r, <, 0);
        g_assert_true(run.r == -EPIPE || run.r == -ECONNRESET);
        g_assert_error(run.error, VM_ERROR, VM_ERROR_FAILED);
        g_test_message("relay: %s", run.error->message);
        g_assert_true(g_str_has_prefix(run.error->message, "writing to the migration socket: ") ||
                      g_str_has_prefix(run.error->message, "reading the migration socket: "));
        g_assert_cmpint(run.ended_at - reset_at, <, QUICK_USEC);

        /* Standard output closed: the source sees the end at once. */
        g_assert_true(task_wait(&ssh_reads.task, QUICK_USEC));
        g_assert_cmpint(ssh_reads.error, ==, 0);
        g_assert_cmpuint(ssh_reads.bytes, ==, 0);

        /* The caller closes standard input, which stops ssh's writes. */
        g_assert_cmpint(close(in[0]), ==, 0);
        g_assert_true(task_wait(&ssh_writes.task, DEADLINE_USEC));
        g_assert_cmpint(ssh_writes.error, ==, EPIPE);

        relay_clear(&run);
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
}

/* (d) Standard input ends: QEMU sees EOF at once, and the return path
 * still flows afterwards. */
static void test_input_eof(void) {
        int in[2], out[2], sock[2];
        Stream ssh_writes, ssh_reads, qemu_writes, qemu_reads;
        RelayRun run;

        make_pipe(in);
        make_pipe(out);
        socket_pair(SOCKET_UNIX, sock);
        relay_start(&run, in[0], out[1], sock[0]);
        stream_start_reader(&ssh_reads, out[0], 2);

        stream_start_writer(&ssh_writes, in[1], 1, SMALL_STREAM, STREAM_END_CLOSE);
        stream_start_reader(&qemu_reads, sock[1], 1);
        assert_stream_sent(&ssh_writes);
        g_assert_true(task_wait(&qemu_reads.task, QUICK_USEC));
        g_assert_cmpint(qemu_reads.error, ==, 0);
        g_assert_cmpint(qemu_reads.mismatch, ==, -1);
        g_assert_cmpuint(qemu_reads.bytes, ==, SMALL_STREAM);

        /* Nothing has come back yet: the relay must still be there for it. */
        g_assert_false(task_is_finished(&run.task));
        g_assert_false(task_is_finished(&ssh_reads.task));
        stream_start_writer(&qemu_writes, sock[1], 2, 4 * SMALL_STREAM, STREAM_END_SHUTDOWN);
        assert_stream_sent(&qemu_writes);
        assert_stream_received(&ssh_reads, 4 * SMALL_STREAM);
        assert_relay_succeeds(&run);

        relay_clear(&run);
        g_assert_cmpint(close(in[0]), ==, 0);
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
        g_assert_cmpint(close(sock[1]), ==, 0);
}

/* (e) QEMU sends its last bytes and closes its socket: standard output's
 * reader sees all of them, then EOF, while standard input is still open;
 * its end then ends the relay cleanly. */
static void test_socket_eof(void) {
        int in[2], out[2], sock[2];
        Stream ssh_reads, qemu_writes;
        RelayRun run;

        make_pipe(in);
        make_pipe(out);
        socket_pair(SOCKET_UNIX, sock);
        relay_start(&run, in[0], out[1], sock[0]);
        stream_start_reader(&ssh_reads, out[0], 2);

        stream_start_writer(&qemu_writes, sock[1], 2, SMALL_STREAM, STREAM_END_CLOSE);
        assert_stream_sent(&qemu_writes);
        g_assert_true(task_wait(&ssh_reads.task, QUICK_USEC));
        g_assert_cmpint(ssh_reads.error, ==, 0);
        g_assert_cmpint(ssh_reads.mismatch, ==, -1);
        g_assert_cmpuint(ssh_reads.bytes, ==, SMALL_STREAM);

        g_assert_false(task_is_finished(&run.task));
        g_assert_cmpint(close(in[1]), ==, 0);
        assert_relay_succeeds(&run);

        relay_clear(&run);
        g_assert_cmpint(close(in[0]), ==, 0);
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
}

/* ssh writes its last bytes and closes standard input while the relay
 * sleeps: the relay wakes to POLLIN and POLLHUP at once, and must still
 * pass on the bytes before the end. The relay's thread runs idle on the
 * test's CPU, so that it wakes only once both have happened. */
static void test_input_hangup_with_data(void) {
        g_autofree guint8 *buf = g_malloc(32 * 1024);
        cpu_set_t saved;
        int in[2], out[2], sock[2];
        Stream ssh_reads, qemu_reads;
        RelayRun run;
        int cpu = sched_getcpu();

        g_assert_cmpint(cpu, >=, 0);
        g_assert_cmpint(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved), ==, 0);
        pin_to_cpu(cpu, false);
        make_pipe(in);
        make_pipe(out);
        socket_pair(SOCKET_UNIX, sock);
        relay_start_on_cpu(&run, in[0], out[1], sock[0], cpu);
        if (!relay_wait_sleeping(&run)) {
                g_test_skip("/proc does not show where the relay sleeps");
                g_assert_cmpint(close(in[1]), ==, 0);
                g_assert_cmpint(close(sock[1]), ==, 0);
                g_assert_true(task_wait(&run.task, QUICK_USEC));
        } else {
                pattern_fill(1, 0, buf, 32 * 1024);
                g_assert_cmpint(write(in[1], buf, 32 * 1024), ==, 32 * 1024);
                g_assert_cmpint(close(in[1]), ==, 0);

                stream_start_reader(&qemu_reads, sock[1], 1);
                stream_start_reader(&ssh_reads, out[0], 2);
                assert_stream_received(&qemu_reads, 32 * 1024);
                g_assert_cmpint(shutdown(sock[1], SHUT_WR), ==, 0);
                assert_stream_received(&ssh_reads, 0);
                assert_relay_succeeds(&run);
                g_assert_cmpint(close(sock[1]), ==, 0);
        }

        g_assert_cmpint(pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved), ==, 0);
        relay_clear(&run);
        g_assert_cmpint(close(in[0]), ==, 0);
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
}

/* ssh goes away (its end of standard output closed) while nothing is to be
 * written there: the relay fails at once all the same, so that the
 * destination's QEMU hears of it. */
static void test_output_reader_gone(void) {
        int in[2], out[2], sock[2];
        RelayRun run;
        gint64 gone_at;

        make_pipe(in);
        make_pipe(out);
        socket_pair(SOCKET_UNIX, sock);
        relay_start(&run, in[0], out[1], sock[0]);
        /* Not before: a relay that has not started yet finds the broken
         * pipe by writing, not by waiting. */
        g_assert_true(relay_wait_sleeping(&run));

        gone_at = g_get_monotonic_time();
        g_assert_cmpint(close(out[0]), ==, 0);
        g_assert_true(task_wait(&run.task, QUICK_USEC));
        g_assert_cmpint(run.r, ==, -EPIPE);
        g_assert_error(run.error, VM_ERROR, VM_ERROR_FAILED);
        g_assert_cmpstr(run.error->message, ==, "writing to standard output: Broken pipe");
        g_assert_cmpint(run.ended_at - gone_at, <, QUICK_USEC);

        relay_clear(&run);
        g_assert_cmpint(close(in[0]), ==, 0);
        g_assert_cmpint(close(in[1]), ==, 0);
        g_assert_cmpint(close(sock[0]), ==, 0);
        g_assert_cmpint(close(sock[1]), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        /* As vmigrate-tunnel does: writes to a reader gone fail with EPIPE. */
        signal(SIGPIPE, SIG_IGN);

        g_test_add_data_func("/tunnel-relay/both-ways/pipes-unix", GINT_TO_POINTER(SOCKET_UNIX),
                             test_both_ways_pipes);
        g_test_add_data_func("/tunnel-relay/both-ways/pipes-tcp", GINT_TO_POINTER(SOCKET_TCP),
                             test_both_ways_pipes);
        g_test_add_data_func("/tunnel-relay/both-ways/same-socket/one-fd", GINT_TO_POINTER(false),
                             test_both_ways_same_socket);
        g_test_add_data_func("/tunnel-relay/both-ways/same-socket/two-fds", GINT_TO_POINTER(true),
                             test_both_ways_same_socket);
        g_test_add_func("/tunnel-relay/both-ways/file-input", test_both_ways_file_input);
        g_test_add_data_func("/tunnel-relay/reset/unix", GINT_TO_POINTER(SOCKET_UNIX), test_socket_reset);
        g_test_add_data_func("/tunnel-relay/reset/tcp", GINT_TO_POINTER(SOCKET_TCP), test_socket_reset);
        g_test_add_func("/tunnel-relay/input-eof", test_input_eof);
        g_test_add_func("/tunnel-relay/input-hangup-with-data", test_input_hangup_with_data);
        g_test_add_func("/tunnel-relay/socket-eof", test_socket_eof);
        g_test_add_func("/tunnel-relay/output-reader-gone", test_output_reader_gone);
        return g_test_run();
}
