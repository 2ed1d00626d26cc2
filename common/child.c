/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

struct ChildWatch {
        pid_t pid;
        int pidfd;
        bool reaped;
        sd_event_source *source;
        ChildExitFn on_exit;
        void *userdata;
};

/* In the child between fork and exec: async-signal-safe calls only. */
static _Noreturn void child_exec(const char *path, char *const *argv, char *const *envp, int in_fd, int out_fd,
                                 int err_fd) {
        sigset_t none;

        (void) setsid();
        for (int sig = 1; sig < _NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        /* dup2 onto itself keeps O_CLOEXEC: clear it by hand there. */
        if ((in_fd == 0 ? fcntl(0, F_SETFD, 0) : dup2(in_fd, 0)) < 0 ||
            (out_fd == 1 ? fcntl(1, F_SETFD, 0) : dup2(out_fd, 1)) < 0 ||
            (err_fd == 2 ? fcntl(2, F_SETFD, 0) : dup2(err_fd, 2)) < 0)
                _exit(127);
        (void) syscall(SYS_close_range, 3, ~0U, 0);
        if (chdir("/") < 0)
                _exit(127);
        if (strchr(path, '/'))
                execve(path, argv, envp);
        else
                execvpe(path, argv, envp);
        _exit(127);
}

int child_spawn(const char *path, char *const *argv, char *const *envp, int in_fd, int out_fd, int err_fd,
                pid_t *ret_pid) {
        pid_t pid;

        assert(path && argv && ret_pid);
        assert(in_fd >= 0 && out_fd >= 0 && err_fd >= 0);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(path, argv, envp ? envp : environ, in_fd, out_fd, err_fd);
        *ret_pid = pid;
        return 0;
}

static void child_watch_reaped(ChildWatch *w, int status) {
        w->reaped = true;
        w->source = sd_event_source_disable_unref(w->source);
        if (w->on_exit)
                w->on_exit(w, status, w->userdata);
}

static int status_from_siginfo(const siginfo_t *si) {
        return si->si_code == CLD_EXITED ? W_EXITCODE(si->si_status, 0) : si->si_status;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ChildWatch *w = userdata;
        siginfo_t si = { 0 };

        if (waitid(P_PIDFD, w->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
                return 0;
        child_watch_reaped(w, status_from_siginfo(&si));
        return 0;
}

static int on_sigchld(sd_event_source *s, const siginfo_t *si, void *userdata) {
        child_watch_reaped(userdata, status_from_siginfo(si));
        return 0;
}

int child_watch_new(sd_event *event, pid_t pid, ChildExitFn on_exit, void *userdata, ChildWatch **ret) {
        g_autoptr(ChildWatch) w = g_new0(ChildWatch, 1);
        int r;

        assert(event && pid > 0 && ret);
        w->pid = pid;
        w->on_exit = on_exit;
        w->userdata = userdata;
        w->pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (w->pidfd >= 0)
                r = sd_event_add_io(event, &w->source, w->pidfd, EPOLLIN, on_pidfd, w);
        else
                /* No pidfds (old kernel, valgrind): SIGCHLD. */
                r = sd_event_add_child(event, &w->source, pid, WEXITED, on_sigchld, w);
        if (r < 0)
                return r; /* the cleanup kills and reaps it: nothing runs unwatched */
        *ret = g_steal_pointer(&w);
        return 0;
}

pid_t child_watch_pid(const ChildWatch *w) {
        return w->pid;
}

void child_watch_kill(ChildWatch *w) {
        if (w && !w->reaped)
                (void) kill(-w->pid, SIGKILL);
}

ChildWatch *child_watch_free(ChildWatch *w) {
        if (!w)
                return NULL;
        if (!w->reaped) {
                (void) kill(-w->pid, SIGKILL);
                (void) kill(w->pid, SIGKILL); /* not yet a session leader */
                (void) waitpid(w->pid, NULL, 0);
        }
        sd_event_source_disable_unref(w->source);
        if (w->pidfd >= 0)
                close(w->pidfd);
        g_free(w);
        return NULL;
}

bool child_read_output(int fd, GString *out, size_t max, ChildOutputKeep keep, bool *ret_cut) {
        char buf[4096];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0)
                        return false;
                size_t room = max - MIN(out->len, max);
                if (keep == CHILD_OUTPUT_HEAD)
                        g_string_append_len(out, buf, MIN((size_t) n, room));
                else {
                        g_string_append_len(out, buf, n);
                        if (out->len > max)
                                g_string_erase(out, 0, out->len - max);
                }
                if ((size_t) n > room && ret_cut)
                        *ret_cut = true;
        }
}

char *child_describe_status(int status) {
        if (WIFEXITED(status))
                return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
        if (WIFSIGNALED(status))
                return g_strdup_printf("was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        return g_strdup_printf("ended with wait status %d", status);
}
