/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vmigrate-tunnel program ($VMIGRATE_TUNNEL), run as ssh would run it:
 * its arguments, its messages and exit codes, and a whole tunnel. The
 * "system bus" it finds through DBUS_SYSTEM_BUS_ADDRESS is the test itself,
 * speaking D-Bus peer to peer as a fake vmigrated: it answers Hello as a
 * bus would, and OpenTunnel with one end of a socketpair (playing the
 * destination QEMU at the other end) or with an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "bus-gvariant.h"
#include "bus-util.h"
#include "protocol.h"

#define UUID "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f"
#define TOKEN "0123456789abcdef0123456789abcdef"
#define DEADLINE_USEC (30 * G_USEC_PER_SEC)
#define STREAM_BYTES (4 * 1024 * 1024)

/* ---- the program ---- */

typedef struct Tunnel {
        GPid pid;
        int stdin_fd;
        int stdout_fd;
        int stderr_fd;
} Tunnel;

static const char *tunnel_path(void) {
        return g_getenv("VMIGRATE_TUNNEL");
}

/* Starts vmigrate-tunnel with args, finding its bus at bus_address (NULL: nowhere). */
static void tunnel_spawn(const char *bus_address, const char *const *args, Tunnel *ret) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_auto(GStrv) envp = g_get_environ();
        g_autoptr(GError) error = NULL;

        g_ptr_array_add(argv, (char *) tunnel_path());
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (char *) *a);
        g_ptr_array_add(argv, NULL);
        envp = g_environ_setenv(g_steal_pointer(&envp), "DBUS_SYSTEM_BUS_ADDRESS",
                                bus_address ?: "unix:path=/nonexistent/vmigrate-test-bus", true);

        g_assert_true(g_spawn_async_with_pipes(NULL, (char **) argv->pdata, envp, G_SPAWN_DO_NOT_REAP_CHILD,
                                               NULL, NULL, &ret->pid, &ret->stdin_fd, &ret->stdout_fd,
                                               &ret->stderr_fd, &error));
        g_assert_no_error(error);
}

/* Everything fd has until EOF. */
static char *read_all(int fd) {
        g_autoptr(GString) text = g_string_new(NULL);
        char buf[4096];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >, 0);
                g_string_append_len(text, buf, n);
        }
        return g_string_free(g_steal_pointer(&text), false);
}

/* Waits (with a deadline) for the program to exit; returns its exit code. */
static int tunnel_wait(Tunnel *t) {
        gint64 deadline = g_get_monotonic_time() + DEADLINE_USEC;
        int status;
        pid_t pid;

        while ((pid = waitpid(t->pid, &status, WNOHANG)) == 0 && g_get_monotonic_time() < deadline)
                g_usleep(10 * 1000);
        if (pid == 0) {
                (void) kill(t->pid, SIGKILL);
                (void) waitpid(t->pid, &status, 0);
                g_assert_not_reached();
        }
        g_assert_cmpint(pid, ==, t->pid);
        g_spawn_close_pid(t->pid);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void tunnel_close(Tunnel *t) {
        if (t->stdin_fd >= 0)
                g_assert_cmpint(close(t->stdin_fd), ==, 0);
        g_assert_cmpint(close(t->stdout_fd), ==, 0);
        g_assert_cmpint(close(t->stderr_fd), ==, 0);
}

/* Runs the program to its end with no bus to find; returns its exit code
 * and what it wrote. */
static int tunnel_run(const char *const *args, char **ret_stdout, char **ret_stderr) {
        Tunnel t;
        int code;

        tunnel_spawn(NULL, args, &t);
        g_assert_cmpint(close(t.stdin_fd), ==, 0);
        t.stdin_fd = -1;
        *ret_stdout = read_all(t.stdout_fd);
        *ret_stderr = read_all(t.stderr_fd);
        code = tunnel_wait(&t);
        tunnel_close(&t);
        return code;
}

/* ---- a fake vmigrated ---- */

typedef struct FakeService {
        char *dir;
        char *socket_path;
        char *address;
        int listen_fd;
        sd_bus *bus;
        const char *error_name; /* OpenTunnel's answer: an error, or (NULL) a socket */
        bool called;
        bool interactive;
        char *uuid;
        char *token;
        uint32_t version;
        char *signature;
        int qemu_fd; /* our end of the socket handed over */
} FakeService;

static int method_hello(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, "s", ":1.7");
}

static int method_open_tunnel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        FakeService *f = userdata;
        g_autoptr(GVariant) options = NULL;
        int pair[2], r;

        f->called = true;
        f->interactive = sd_bus_message_get_allow_interactive_authorization(m);
        f->signature = g_strdup(sd_bus_message_get_signature(m, true));
        r = bus_message_read_gvariant(m, "a{sv}", &options);
        if (r < 0)
                return r;
        (void) g_variant_lookup(options, "version", "u", &f->version);
        (void) g_variant_lookup(options, "uuid", "s", &f->uuid);
        (void) g_variant_lookup(options, "tunnel-token", "s", &f->token);

        if (f->error_name)
                return sd_bus_reply_method_errorf(
                        m, f->error_name, "no migration of %s waits for a tunnel here", f->uuid ?: "?");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        f->qemu_fd = pair[0];
        r = sd_bus_reply_method_return(m, "h", pair[1]);
        (void) close(pair[1]); /* the reply had its own copy */
        return r;
}

static const sd_bus_vtable dbus_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Hello", "", "s", method_hello, 0),
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable incoming_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("OpenTunnel", "a{sv}", "h", method_open_tunnel, 0),
        SD_BUS_VTABLE_END,
};

static void fake_service_start(FakeService *f, const char *error_name) {
        struct sockaddr_un address = { .sun_family = AF_UNIX };

        *f = (FakeService){ .listen_fd = -1, .qemu_fd = -1, .error_name = error_name };
        f->dir = g_dir_make_tmp("vmigrate-tunnel-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        f->socket_path = g_build_filename(f->dir, "bus", NULL);
        f->address = g_strdup_printf("unix:path=%s", f->socket_path);
        g_assert_cmpuint(strlen(f->socket_path), <, sizeof(address.sun_path));
        strcpy(address.sun_path, f->socket_path);

        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(f->listen_fd, >=, 0);
        g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *) &address, sizeof(address)), ==, 0);
        g_assert_cmpint(listen(f->listen_fd, 1), ==, 0);
}

/* Takes the program's connection and serves it until OpenTunnel has been
 * answered. */
static void fake_service_serve(FakeService *f) {
        gint64 deadline = g_get_monotonic_time() + DEADLINE_USEC;
        struct pollfd pfd = { .fd = f->listen_fd, .events = POLLIN };
        sd_id128_t id;
        int fd;

        g_assert_cmpint(poll(&pfd, 1, DEADLINE_USEC / 1000), ==, 1);
        fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);

        g_assert_cmpint(sd_id128_randomize(&id), ==, 0);
        g_assert_cmpint(sd_bus_new(&f->bus), ==, 0);
        g_assert_cmpint(sd_bus_set_fd(f->bus, fd, fd), ==, 0);
        g_assert_cmpint(sd_bus_set_server(f->bus, true, id), ==, 0);
        g_assert_cmpint(sd_bus_negotiate_fds(f->bus, true), ==, 0);
        g_assert_cmpint(sd_bus_add_object_vtable(f->bus, NULL, "/org/freedesktop/DBus",
                                                 "org.freedesktop.DBus", dbus_vtable, f),
                        ==, 0);
        g_assert_cmpint(sd_bus_add_object_vtable(f->bus, NULL, BUS_MANAGER_PATH, BUS_INCOMING_INTERFACE,
                                                 incoming_vtable, f),
                        ==, 0);
        g_assert_cmpint(sd_bus_start(f->bus), ==, 0);

        while (!f->called && g_get_monotonic_time() < deadline) {
                int r = sd_bus_process(f->bus, NULL);
                g_assert_cmpint(r, >=, 0);
                if (r == 0)
                        g_assert_cmpint(sd_bus_wait(f->bus, 100 * 1000), >=, 0);
        }
        g_assert_true(f->called);
        /* The reply is queued; make sure it left before the test goes on. */
        g_assert_cmpint(sd_bus_flush(f->bus), >=, 0);
}

static void fake_service_stop(FakeService *f) {
        f->bus = sd_bus_flush_close_unref(f->bus);
        if (f->qemu_fd >= 0)
                g_assert_cmpint(close(f->qemu_fd), ==, 0);
        g_assert_cmpint(close(f->listen_fd), ==, 0);
        g_assert_cmpint(g_unlink(f->socket_path), ==, 0);
        g_assert_cmpint(g_rmdir(f->dir), ==, 0);
        g_free(f->dir);
        g_free(f->socket_path);
        g_free(f->address);
        g_free(f->uuid);
        g_free(f->token);
        g_free(f->signature);
}

/* ---- the cases ---- */

static void test_usage(void) {
        static const struct {
                const char *args[4];
                const char *stderr_has;
        } cases[] = {
                { { NULL }, "expects two arguments, UUID and TOKEN, not 0" },
                { { UUID, NULL }, "expects two arguments" },
                { { UUID, TOKEN, "extra", NULL }, "expects two arguments" },
                { { "6b0d4f7a3c2e4d5b9e8f0a1b2c3d4e5f", TOKEN, NULL }, "is not a UUID" },
                { { "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5g", TOKEN, NULL }, "is not a UUID" },
                { { UUID, "", NULL }, "the token is not 1 to 64 characters 0-9 a-f" },
                { { UUID, "0123456789ABCDEF", NULL }, "the token is not" },
                { { UUID, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", NULL },
                  "the token is not" },
                { { "--no-such-option", UUID, TOKEN, NULL }, "Try 'vmigrate-tunnel --help'." },
        };

        if (!tunnel_path()) {
                g_test_skip("VMIGRATE_TUNNEL is not set");
                return;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *out = NULL, *err = NULL;

                g_assert_cmpint(tunnel_run(cases[i].args, &out, &err), ==, 2);
                g_assert_cmpstr(out, ==, "");
                g_assert_nonnull(strstr(err, cases[i].stderr_has));
        }
}

static void test_help_version(void) {
        static const char *const help[] = { "--help", NULL };
        static const char *const version[] = { "--version", NULL };
        g_autofree char *out = NULL, *err = NULL;
        g_autofree char *vout = NULL, *verr = NULL;

        if (!tunnel_path()) {
                g_test_skip("VMIGRATE_TUNNEL is not set");
                return;
        }
        g_assert_cmpint(tunnel_run(help, &out, &err), ==, 0);
        g_assert_true(g_str_has_prefix(out, "Usage: vmigrate-tunnel UUID TOKEN\n"));
        g_assert_nonnull(strstr(out, "Exit status:"));
        g_assert_cmpstr(err, ==, "");

        g_assert_cmpint(tunnel_run(version, &vout, &verr), ==, 0);
        g_assert_true(g_str_has_prefix(vout, "vmigrate-tunnel "));
        g_assert_cmpstr(verr, ==, "");
}

/* No bus where DBUS_SYSTEM_BUS_ADDRESS says: the source must hear that
 * this host's side failed, and why. */
static void test_no_bus(void) {
        static const char *const args[] = { UUID, TOKEN, NULL };
        g_autofree char *out = NULL, *err = NULL;

        if (!tunnel_path()) {
                g_test_skip("VMIGRATE_TUNNEL is not set");
                return;
        }
        g_assert_cmpint(tunnel_run(args, &out, &err), ==, 1);
        g_assert_cmpstr(out, ==, "");
        g_assert_true(g_str_has_prefix(
                err,
                "vmigrate-tunnel: cannot open the tunnel on this host: cannot connect to the system bus: "));
        g_assert_true(g_str_has_suffix(err, ")\n"));
}

/* vmigrated refuses: its error, name and message, reaches standard error. */
static void test_refused(void) {
        static const char *const args[] = { UUID, TOKEN, NULL };
        g_autofree char *out = NULL, *err = NULL;
        FakeService f;
        Tunnel t;

        if (!tunnel_path()) {
                g_test_skip("VMIGRATE_TUNNEL is not set");
                return;
        }
        fake_service_start(&f, "org.vmigrate.Migrate1.Error.NoSuchDomain");
        tunnel_spawn(f.address, args, &t);
        fake_service_serve(&f);

        out = read_all(t.stdout_fd);
        err = read_all(t.stderr_fd);
        g_assert_cmpint(tunnel_wait(&t), ==, 1);
        g_assert_cmpstr(out, ==, "");
        g_assert_cmpstr(err, ==,
                        "vmigrate-tunnel: cannot open the tunnel on this host: no migration of " UUID
                        " waits for a tunnel here (org.vmigrate.Migrate1.Error.NoSuchDomain)\n");
        tunnel_close(&t);
        fake_service_stop(&f);
}

typedef struct Transfer {
        int fd;
        guint8 seed;
        guint64 bytes;
        bool shutdown; /* writer: shutdown(SHUT_WR) at the end, else close */
        bool intact;
} Transfer;

static gpointer write_thread(gpointer data) {
        Transfer *x = data;
        guint8 buf[65536];

        for (guint64 done = 0; done < x->bytes;) {
                size_t len = MIN(sizeof(buf), x->bytes - done);
                for (size_t i = 0; i < len; i++)
                        buf[i] = (guint8) ((done + i) * 7 + x->seed + ((done + i) >> 16));
                for (size_t w = 0; w < len;) {
                        ssize_t n = write(x->fd, buf + w, len - w);
                        g_assert_cmpint(n, >, 0);
                        w += n;
                }
                done += len;
        }
        if (x->shutdown)
                g_assert_cmpint(shutdown(x->fd, SHUT_WR), ==, 0);
        else
                g_assert_cmpint(close(x->fd), ==, 0);
        return NULL;
}

static gpointer read_thread(gpointer data) {
        Transfer *x = data;
        guint8 buf[65536];
        ssize_t n;

        x->intact = true;
        while ((n = read(x->fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++) {
                        guint64 pos = x->bytes + i;
                        if (buf[i] != (guint8) (pos * 7 + x->seed + (pos >> 16)))
                                x->intact = false;
                }
                x->bytes += n;
        }
        g_assert_cmpint(n, ==, 0);
        return NULL;
}

/* A whole tunnel: the call as vmigrated sees it, the ready byte, then a
 * stream each way through the program, ends passed on, exit 0. */
static void test_tunnel(void) {
        static const char *const args[] = { UUID, TOKEN, NULL };
        g_autofree char *err = NULL;
        FakeService f;
        Tunnel t;

        if (!tunnel_path()) {
                g_test_skip("VMIGRATE_TUNNEL is not set");
                return;
        }
        fake_service_start(&f, NULL);
        tunnel_spawn(f.address, args, &t);
        fake_service_serve(&f);
        g_assert_cmpstr(f.signature, ==, "a{sv}");
        g_assert_cmpuint(f.version, ==, MIGRATION_COOKIE_VERSION);
        g_assert_cmpstr(f.uuid, ==, UUID);
        g_assert_cmpstr(f.token, ==, TOKEN);
        g_assert_false(f.interactive);
        g_assert_cmpint(f.qemu_fd, >=, 0);

        /* Connected: first the ready byte (protocol.h), then the stream. */
        unsigned char ready = 0;
        g_assert_cmpint(read(t.stdout_fd, &ready, 1), ==, 1);
        g_assert_cmpuint(ready, ==, TUNNEL_READY_BYTE);

        Transfer source_sends = { .fd = t.stdin_fd, .seed = 1, .bytes = STREAM_BYTES };
        Transfer qemu_gets = { .fd = f.qemu_fd, .seed = 1 };
        Transfer qemu_sends = { .fd = f.qemu_fd, .seed = 2, .bytes = STREAM_BYTES, .shutdown = true };
        Transfer source_gets = { .fd = t.stdout_fd, .seed = 2 };
        GThread *threads[] = {
                g_thread_new("source-sends", write_thread, &source_sends),
                g_thread_new("qemu-gets", read_thread, &qemu_gets),
                g_thread_new("qemu-sends", write_thread, &qemu_sends),
                g_thread_new("source-gets", read_thread, &source_gets),
        };
        err = read_all(t.stderr_fd);
        for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
                g_thread_join(threads[i]);
        t.stdin_fd = -1; /* closed by source_sends */

        g_assert_cmpint(tunnel_wait(&t), ==, 0);
        g_assert_cmpstr(err, ==, "");
        g_assert_cmpuint(qemu_gets.bytes, ==, STREAM_BYTES);
        g_assert_true(qemu_gets.intact);
        g_assert_cmpuint(source_gets.bytes, ==, STREAM_BYTES);
        g_assert_true(source_gets.intact);
        tunnel_close(&t);
        fake_service_stop(&f);
}

/* The destination QEMU fails mid-stream (a reset): the program says so
 * and exits 1 at once, closing its standard output. */
static void test_tunnel_reset(void) {
        static const char *const args[] = { UUID, TOKEN, NULL };
        g_autofree char *err = NULL;
        g_autofree char *out = NULL;
        guint8 buf[4096] = { 0 };
        FakeService f;
        Tunnel t;

        if (!tunnel_path()) {
                g_test_skip("VMIGRATE_TUNNEL is not set");
                return;
        }
        fake_service_start(&f, NULL);
        tunnel_spawn(f.address, args, &t);
        fake_service_serve(&f);

        /* Bytes left unread in QEMU's socket make its close a reset. */
        g_assert_cmpint(write(t.stdin_fd, buf, sizeof(buf)), ==, sizeof(buf));
        struct pollfd pfd = { .fd = f.qemu_fd, .events = POLLIN };
        g_assert_cmpint(poll(&pfd, 1, DEADLINE_USEC / 1000), ==, 1);
        g_assert_cmpint(close(f.qemu_fd), ==, 0);
        f.qemu_fd = -1;

        out = read_all(t.stdout_fd);
        err = read_all(t.stderr_fd);
        g_assert_cmpint(tunnel_wait(&t), ==, 1);
        g_assert_cmpstr(out, ==, "\x06"); /* the ready byte, nothing of the stream */
        g_test_message("stderr: %s", err);
        g_assert_true(
                g_str_equal(err,
                            "vmigrate-tunnel: reading the migration socket: Connection reset by peer\n") ||
                g_str_equal(err, "vmigrate-tunnel: writing to the migration socket: Broken pipe\n"));
        tunnel_close(&t);
        fake_service_stop(&f);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        /* Writes to a program that has exited must fail, not kill the test. */
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/vmigrate-tunnel/usage", test_usage);
        g_test_add_func("/vmigrate-tunnel/help-version", test_help_version);
        g_test_add_func("/vmigrate-tunnel/no-bus", test_no_bus);
        g_test_add_func("/vmigrate-tunnel/refused", test_refused);
        g_test_add_func("/vmigrate-tunnel/tunnel", test_tunnel);
        g_test_add_func("/vmigrate-tunnel/reset", test_tunnel_reset);
        return g_test_run();
}
