/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "tunnel-relay.h"

/* Bytes asked of one splice(2) or read(2). A migration stream is GBs: the
 * fewer calls the better, and the kernel moves less if less is there. */
#define RELAY_CHUNK (1024 * 1024)
/* Pipe size asked for (the default 64 KiB takes 16 times more calls). An
 * unprivileged process may be refused beyond /proc/sys/fs/pipe-max-size:
 * the default size then still works. */
#define RELAY_PIPE_SIZE (1024 * 1024)
#define RELAY_COPY_BUFFER (256 * 1024)
/* Transfers one direction makes before the other gets its turn. */
#define RELAY_BURST 16

typedef enum PumpMode {
        PUMP_SPLICE,      /* one end is a pipe: splice(2) from src straight to dst */
        PUMP_SPLICE_PIPE, /* neither is: splice(2) src → a pipe of our own → dst */
        PUMP_COPY,        /* an end splice(2) does not take: read(2)/write(2) through a buffer */
} PumpMode;

/* One direction of the relay: bytes from src_fd to dst_fd. */
typedef struct Pump {
        const char *src_name;
        const char *dst_name;
        int src_fd;
        int dst_fd;
        bool owns_dst;     /* dst_fd is closed with the pump */
        bool close_at_end; /* ... and at src's EOF already */
        bool src_is_pipe;
        bool dst_is_socket;
        PumpMode mode;
        int pipe_fds[2]; /* PUMP_SPLICE_PIPE */
        guint8 *buffer;  /* PUMP_COPY: pending bytes from buffer_start */
        size_t buffer_start;
        size_t pending; /* read from src, not yet written to dst */
        bool started;   /* bytes have moved: too late to change mode */
        bool src_eof;
        bool full;     /* PUMP_SPLICE_PIPE: our pipe takes no more for now */
        bool wait_src; /* src had nothing: wait for POLLIN */
        bool wait_dst; /* dst took nothing: wait for POLLOUT */
        bool done;
} Pump;

static void pump_clear(Pump *p) {
        if (p->pipe_fds[0] >= 0)
                (void) close(p->pipe_fds[0]);
        if (p->pipe_fds[1] >= 0)
                (void) close(p->pipe_fds[1]);
        g_free(p->buffer);
        if (p->owns_dst && p->dst_fd >= 0)
                (void) close(p->dst_fd);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Pump, pump_clear)

static int relay_fail(int r, const char *what, const char *name, GError **error) {
        g_set_error(error, VM_ERROR, VM_ERROR_FAILED, "%s %s: %s", what, name, g_strerror(-r));
        return r;
}

static int fd_set_nonblocking(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0)
                return -errno;
        if ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

/* S_IFIFO, S_IFSOCK...: what can be done with fd, splice(2) or shutdown(2). */
static int fd_get_type(int fd, mode_t *ret_type) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        *ret_type = st.st_mode & S_IFMT;
        return 0;
}

/* 1 if fd has bytes to read now, 0 if not (or at EOF), < 0 if it cannot say. */
static int fd_has_input(int fd) {
        int n;

        if (ioctl(fd, FIONREAD, &n) < 0)
                return -errno;
        return n > 0;
}

/* splice(2) takes pipes and sockets at both ends and needs one end to be a
 * pipe; an EAGAIN from it means "src has nothing" or "dst (or our pipe)
 * takes nothing", told apart by asking src for its byte count. An fd that
 * cannot say, or is of another type (a terminal, a file), is copied. */
static PumpMode pump_choose_mode(int src_fd, mode_t src_type, mode_t dst_type) {
        bool src_splices = src_type == S_IFIFO || src_type == S_IFSOCK;
        bool dst_splices = dst_type == S_IFIFO || dst_type == S_IFSOCK;

        if (!src_splices || !dst_splices || fd_has_input(src_fd) < 0)
                return PUMP_COPY;
        if (src_type == S_IFIFO || dst_type == S_IFIFO)
                return PUMP_SPLICE;
        return PUMP_SPLICE_PIPE;
}

/* Only before anything has moved: nothing may be left in our pipe. */
static void pump_use_copy(Pump *p) {
        p->mode = PUMP_COPY;
        p->buffer = g_malloc(RELAY_COPY_BUFFER);
        p->buffer_start = 0;
        p->pending = 0;
}

static int pump_init(Pump *p, int src_fd, const char *src_name, int dst_fd, const char *dst_name,
                     GError **error) {
        mode_t src_type, dst_type;
        int r;

        p->src_fd = src_fd;
        p->src_name = src_name;
        p->dst_fd = dst_fd;
        p->dst_name = dst_name;

        r = fd_get_type(src_fd, &src_type);
        if (r < 0)
                return relay_fail(r, "reading", src_name, error);
        r = fd_get_type(dst_fd, &dst_type);
        if (r < 0)
                return relay_fail(r, "writing to", dst_name, error);
        p->src_is_pipe = src_type == S_IFIFO;
        p->dst_is_socket = dst_type == S_IFSOCK;

        r = fd_set_nonblocking(src_fd);
        if (r < 0)
                return relay_fail(r, "reading", src_name, error);
        r = fd_set_nonblocking(dst_fd);
        if (r < 0)
                return relay_fail(r, "writing to", dst_name, error);

        p->mode = pump_choose_mode(src_fd, src_type, dst_type);
        switch (p->mode) {
        case PUMP_SPLICE:
                /* Bigger pipes between ssh and us: fewer, larger splices. */
                if (src_type == S_IFIFO)
                        (void) fcntl(src_fd, F_SETPIPE_SZ, RELAY_PIPE_SIZE);
                if (dst_type == S_IFIFO)
                        (void) fcntl(dst_fd, F_SETPIPE_SZ, RELAY_PIPE_SIZE);
                return 0;
        case PUMP_SPLICE_PIPE:
                if (pipe2(p->pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                        return relay_fail(-errno, "creating a pipe for", src_name, error);
                (void) fcntl(p->pipe_fds[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
                return 0;
        case PUMP_COPY:
                pump_use_copy(p);
                return 0;
        }
        g_assert_not_reached();
}

/* src → our pipe or buffer: bytes moved, 0 at EOF, or a negative errno. */
static ssize_t pump_read(Pump *p) {
        ssize_t n;

        if (p->mode == PUMP_SPLICE_PIPE)
                n = splice(p->src_fd, NULL, p->pipe_fds[1], NULL, RELAY_CHUNK,
                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        else {
                if (p->buffer_start + p->pending == RELAY_COPY_BUFFER) {
                        memmove(p->buffer, p->buffer + p->buffer_start, p->pending);
                        p->buffer_start = 0;
                }
                n = read(p->src_fd, p->buffer + p->buffer_start + p->pending,
                         RELAY_COPY_BUFFER - p->buffer_start - p->pending);
        }
        return n < 0 ? -errno : n;
}

/* Our pipe or buffer → dst: bytes moved or a negative errno. */
static ssize_t pump_write(Pump *p) {
        ssize_t n;

        if (p->mode == PUMP_SPLICE_PIPE)
                n = splice(p->pipe_fds[0], NULL, p->dst_fd, NULL, p->pending,
                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        else
                n = write(p->dst_fd, p->buffer + p->buffer_start, p->pending);
        if (n < 0)
                return -errno;
        /* Neither moves 0 of pending > 0 bytes unless something is badly off. */
        return n > 0 ? n : -EIO;
}

/* Called when src has reached EOF and everything read has been written. */
static int pump_finish(Pump *p, GError **error) {
        /* Unlike close(2), shutdown(2) ends the stream even while another
         * fd refers to the socket (sshd may give one socket as standard
         * input and output), and leaves its other direction alone. */
        if (p->dst_is_socket && shutdown(p->dst_fd, SHUT_WR) < 0)
                return relay_fail(-errno, "ending the stream to", p->dst_name, error);
        if (p->close_at_end) {
                /* An error of close(2) on a pipe or socket loses nothing:
                 * the bytes were handed over already. */
                (void) close(p->dst_fd);
                p->dst_fd = -1;
        }
        p->done = true;
        return 0;
}

/* PUMP_SPLICE: 1 if bytes moved (or the pump changed mode), 0 if it waits
 * for an fd or src is at EOF, or a negative errno with *error set. */
static int pump_step_direct(Pump *p, GError **error) {
        ssize_t n;
        int r;

        if (p->wait_src || p->wait_dst)
                return 0;
        n = splice(p->src_fd, NULL, p->dst_fd, NULL, RELAY_CHUNK, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n > 0) {
                p->started = true;
                return 1;
        }
        if (n == 0) {
                p->src_eof = true;
                return 0;
        }
        r = -errno;
        if (r == -EINTR)
                return 1;
        if (r == -EAGAIN) {
                r = fd_has_input(p->src_fd);
                if (r < 0)
                        return relay_fail(r, "reading", p->src_name, error);
                if (r > 0)
                        p->wait_dst = true;
                else
                        p->wait_src = true;
                return 0;
        }
        /* A kernel or file that refuses splice(2) says so before the first byte. */
        if (r == -EINVAL && !p->started) {
                pump_use_copy(p);
                return 1;
        }
        /* splice(2) does not say which end failed. Reading a pipe fails only
         * with EAGAIN; writing to one fails with EPIPE; anything else is the
         * socket's. */
        if (p->src_is_pipe || r == -EPIPE)
                return relay_fail(r, "writing to", p->dst_name, error);
        return relay_fail(r, "reading", p->src_name, error);
}

/* PUMP_SPLICE_PIPE and PUMP_COPY: as pump_step_direct(). */
static int pump_step_buffered(Pump *p, GError **error) {
        bool progress = false;
        ssize_t n;
        int r;

        if (p->pending > 0 && !p->wait_dst) {
                n = pump_write(p);
                if (n > 0) {
                        p->pending -= n;
                        p->buffer_start = p->pending > 0 ? p->buffer_start + n : 0;
                        p->full = false;
                        progress = true;
                } else if (n == -EAGAIN)
                        p->wait_dst = true;
                else if (n == -EINTR)
                        progress = true; /* try again */
                else
                        return relay_fail(n, "writing to", p->dst_name, error);
        }

        if (p->src_eof || p->wait_src || p->full || p->pending == RELAY_COPY_BUFFER)
                return progress;
        n = pump_read(p);
        if (n > 0) {
                p->pending += n;
                p->started = true;
                return 1;
        }
        if (n == 0) {
                p->src_eof = true;
                return progress;
        }
        if (n == -EINTR)
                return 1;
        if (n == -EINVAL && !p->started && p->mode == PUMP_SPLICE_PIPE) {
                pump_use_copy(p);
                return 1;
        }
        if (n != -EAGAIN)
                return relay_fail(n, "reading", p->src_name, error);

        /* Our pipe can be full with fewer bytes than its size (a socket's
         * bytes come in pieces, each taking a page): only src knows. */
        if (p->mode == PUMP_SPLICE_PIPE && p->pending > 0) {
                r = fd_has_input(p->src_fd);
                if (r < 0)
                        return relay_fail(r, "reading", p->src_name, error);
                if (r > 0) {
                        p->full = true;
                        return progress;
                }
        }
        p->wait_src = true;
        return progress;
}

/* 1 if the pump can go on at once, 0 if it waits for an fd (wait_src or
 * wait_dst set) or is done, or a negative errno with *error set. */
static int pump_run(Pump *p, GError **error) {
        for (unsigned i = 0; i < RELAY_BURST && !p->done; i++) {
                int r = p->mode == PUMP_SPLICE ? pump_step_direct(p, error) : pump_step_buffered(p, error);
                if (r < 0)
                        return r;
                if (p->src_eof && p->pending == 0)
                        return pump_finish(p, error);
                if (r == 0) {
                        g_assert(p->wait_src || p->wait_dst);
                        return 0;
                }
        }
        return !p->done;
}

enum { WAIT_IN, WAIT_SOCK, WAIT_OUT, _WAIT_MAX };

/* Waits for what the pumps wait for (no longer than timeout_msec) and
 * clears their wait flags accordingly. */
static int relay_wait(Pump *up, Pump *down, int timeout_msec, GError **error) {
        struct pollfd pfd[_WAIT_MAX] = {
                [WAIT_IN] = { .fd = up->wait_src ? up->src_fd : -1, .events = POLLIN },
                [WAIT_SOCK] = { .fd = up->dst_fd,
                                .events = (up->wait_dst ? POLLOUT : 0) | (down->wait_src ? POLLIN : 0) },
                /* Polled even with nothing to write: POLLERR/POLLHUP there
                 * means the source has gone, which must end the relay now. */
                [WAIT_OUT] = { .fd = down->done ? -1 : down->dst_fd,
                               .events = down->wait_dst ? POLLOUT : 0 },
        };

        /* Only when waited for: a socket that reached its end keeps
         * reporting POLLHUP, which would wake us in a loop. */
        if (pfd[WAIT_SOCK].events == 0)
                pfd[WAIT_SOCK].fd = -1;

        if (poll(pfd, _WAIT_MAX, timeout_msec) < 0)
                return errno == EINTR ? 0
                                      : relay_fail(-errno, "waiting for", "the tunnel's descriptors", error);

        for (size_t i = 0; i < _WAIT_MAX; i++)
                if (pfd[i].revents & POLLNVAL)
                        return relay_fail(-EBADF, "waiting for", "the tunnel's descriptors", error);

        if (pfd[WAIT_IN].revents != 0)
                up->wait_src = false;
        if (pfd[WAIT_SOCK].revents & (POLLOUT | POLLERR | POLLHUP))
                up->wait_dst = false;
        if (pfd[WAIT_SOCK].revents & (POLLIN | POLLERR | POLLHUP))
                down->wait_src = false;
        if (pfd[WAIT_OUT].revents != 0) {
                if (down->wait_dst)
                        down->wait_dst = false; /* the write says what is wrong, if anything */
                else
                        return relay_fail(-EPIPE, "writing to", down->dst_name, error);
        }
        return 0;
}

int tunnel_relay(int in_fd, int out_fd, int sock_fd, GError **error) {
        /* out_fd is the relay's from here on, closed whatever happens. */
        g_auto(Pump) down = { .src_fd = -1, .dst_fd = -1, .pipe_fds = { -1, -1 } };
        g_auto(Pump) up = { .src_fd = -1, .dst_fd = -1, .pipe_fds = { -1, -1 } };
        int r;

        down.dst_fd = out_fd;
        down.owns_dst = true;
        /* Not when it is in_fd too: standard input may have bytes to come. */
        down.close_at_end = in_fd != out_fd;

        r = pump_init(&up, in_fd, "standard input", sock_fd, "the migration socket", error);
        if (r < 0)
                return r;
        /* Its EOF could not be passed on otherwise. */
        if (!up.dst_is_socket)
                return relay_fail(-ENOTSOCK, "writing to", "the migration socket", error);
        r = pump_init(&down, sock_fd, "the migration socket", out_fd, "standard output", error);
        if (r < 0)
                return r;

        for (;;) {
                int up_more, down_more;

                up_more = pump_run(&up, error);
                if (up_more < 0)
                        return up_more;
                down_more = pump_run(&down, error);
                if (down_more < 0)
                        return down_more;
                if (up.done && down.done)
                        return 0;

                r = relay_wait(&up, &down, up_more || down_more ? 0 : -1, error);
                if (r < 0)
                        return r;
        }
}
