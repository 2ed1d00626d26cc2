/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "qemu-process.h"

struct QemuProcess {
        sd_event *event;
        pid_t pid;
        uint64_t starttime;
        bool child;
        int pidfd;
        sd_event_source *watch;
        sd_event_source *kill_timer;
        QemuProcessExitFn on_exit;
        void *userdata;
};

static int pidfd_open_compat(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

int proc_get_starttime(pid_t pid, uint64_t *ret) {
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int) pid);
        g_autofree char *stat = NULL;
        const char *p;
        guint64 value;

        if (!g_file_get_contents(path, &stat, NULL, NULL))
                return -ESRCH;
        /* The command name (field 2) may hold spaces and ')': skip past the
         * last ')'. Then field 3 is the state; starttime is field 22. */
        p = strrchr(stat, ')');
        if (!p)
                return -EIO;
        p++;
        for (int field = 3; field <= 22; field++) {
                while (*p == ' ')
                        p++;
                if (field == 22)
                        break;
                p = strchr(p, ' ');
                if (!p)
                        return -EIO;
        }
        g_autofree char *field = g_strndup(p, strcspn(p, " "));
        if (!g_ascii_string_to_unsigned(field, 10, 0, G_MAXUINT64, &value, NULL))
                return -EIO;
        *ret = value;
        return 0;
}

char *file_tail(const char *path, unsigned n_lines) {
        g_autofree char *buf = NULL;
        int fd;
        off_t size, start;
        ssize_t n;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size = lseek(fd, 0, SEEK_END);
        start = size > 65536 ? size - 65536 : 0;
        buf = g_malloc(size - start + 1);
        n = pread(fd, buf, size - start, start);
        close(fd);
        if (n <= 0)
                return NULL;
        buf[n] = 0;

        /* Walk back over n_lines line ends, ignoring a trailing one. */
        char *end = buf + n;
        while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
                *--end = 0;
        char *p = end;
        for (unsigned lines = 0; p > buf; p--)
                if (p[-1] == '\n' && ++lines == n_lines)
                        break;
        return g_strdup(p);
}

static void qemu_process_unwatch(QemuProcess *p) {
        p->watch = sd_event_source_disable_unref(p->watch);
        p->kill_timer = sd_event_source_disable_unref(p->kill_timer);
        if (p->pidfd >= 0) {
                close(p->pidfd);
                p->pidfd = -1;
        }
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QemuProcess *p = userdata;
        int status = -1;

        if (p->child) {
                siginfo_t si = { 0 };
                if (waitid(P_PIDFD, p->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
                        return 0; /* spurious; wait for the real exit */
                status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : si.si_status;
        }
        qemu_process_unwatch(p);
        /* The callback may free p. */
        p->on_exit(p, status, p->userdata);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        QemuProcess *p = userdata;
        int status = si->si_code == CLD_EXITED ? W_EXITCODE(si->si_status, 0) : si->si_status;

        qemu_process_unwatch(p);
        p->on_exit(p, status, p->userdata);
        return 0;
}

static int on_adopted_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuProcess *p = userdata;
        uint64_t starttime;

        if (proc_get_starttime(p->pid, &starttime) >= 0 && starttime == p->starttime) {
                if (sd_event_source_set_time_relative(s, G_USEC_PER_SEC) >= 0)
                        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        qemu_process_unwatch(p);
        p->on_exit(p, -1, p->userdata);
        return 0;
}

/* Without pidfds (kernels before 5.3, or valgrind, which does not know the
 * call): SIGCHLD for our own children, and for adopted processes a check
 * of /proc once a second (pid and start time, so never a recycled pid). */
static int qemu_process_watch_fallback(QemuProcess *p) {
        int r;

        if (p->child)
                r = sd_event_add_child(p->event, &p->watch, p->pid, WEXITED, on_child, p);
        else
                r = sd_event_add_time_relative(p->event, &p->watch, CLOCK_MONOTONIC, G_USEC_PER_SEC, 0,
                                               on_adopted_poll, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->watch, "qemu-exit");
        return 0;
}

static int qemu_process_watch(QemuProcess *p) {
        int r;

        p->pidfd = pidfd_open_compat(p->pid);
        if (p->pidfd < 0 && errno == ENOSYS)
                return qemu_process_watch_fallback(p);
        if (p->pidfd < 0)
                return -errno;
        r = sd_event_add_io(p->event, &p->watch, p->pidfd, EPOLLIN, on_pidfd, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->watch, "qemu-pidfd");
        return 0;
}

/* In the child between fork and exec: async-signal-safe calls only. */
static _Noreturn void child_exec(char *const *argv, int devnull, int log_fd, const int *pass_fds, size_t n_pass_fds,
                                 const cpu_set_t *cpus) {
        int moved[QEMU_PROCESS_MAX_FDS];
        int floor = 3 + (int) n_pass_fds;
        sigset_t none;

        (void) setsid();
        /* <vcpu cpuset>: inherited by every thread QEMU makes. */
        if (cpus && sched_setaffinity(0, sizeof(*cpus), cpus) < 0) {
                static const char msg[] = "vmigrated: cannot run QEMU on the host CPUs of <vcpu cpuset>\n";
                (void) !write(log_fd, msg, sizeof(msg) - 1);
                _exit(126);
        }
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        /* An fd we hand over may sit where another one goes; move them all
         * above the range first. */
        for (size_t i = 0; i < n_pass_fds; i++) {
                moved[i] = fcntl(pass_fds[i], F_DUPFD, floor);
                if (moved[i] < 0)
                        _exit(127);
        }
        if (devnull < floor)
                devnull = fcntl(devnull, F_DUPFD, floor);
        if (log_fd < floor)
                log_fd = fcntl(log_fd, F_DUPFD, floor);
        if (devnull < 0 || log_fd < 0)
                _exit(127);
        if (dup2(devnull, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                _exit(127);
        for (size_t i = 0; i < n_pass_fds; i++)
                if (dup2(moved[i], 3 + (int) i) < 0)
                        _exit(127);
        (void) syscall(SYS_close_range, floor, ~0U, 0);
        execv(argv[0], argv);
        _exit(127);
}

int qemu_process_spawn(sd_event *event, char *const *argv, const char *log_path, int pass_fd,
                       QemuProcessExitFn on_exit, void *userdata, QemuProcess **ret, GError **error) {
        return qemu_process_spawn_fds(event, argv, log_path, &pass_fd, pass_fd >= 0 ? 1 : 0, NULL, on_exit, userdata,
                                      ret, error);
}

static QemuProcess *process_new(sd_event *event, pid_t pid, QemuProcessExitFn on_exit, void *userdata) {
        QemuProcess *p = g_new0(QemuProcess, 1);

        p->event = sd_event_ref(event);
        p->pid = pid;
        p->pidfd = -1;
        p->on_exit = on_exit;
        p->userdata = userdata;
        return p;
}

int qemu_process_spawn_fds(sd_event *event, char *const *argv, const char *log_path, const int *pass_fds,
                           size_t n_pass_fds, const CpuSet *affinity, QemuProcessExitFn on_exit, void *userdata,
                           QemuProcess **ret, GError **error) {
        g_autoptr(QemuProcess) p = NULL;
        cpu_set_t cpus;
        int devnull, log_fd, r;
        pid_t pid;

        /* Made here: the child may only make async-signal-safe calls. */
        CPU_ZERO(&cpus);
        for (unsigned c = 0; affinity && c < CPUSET_MAX && c < CPU_SETSIZE; c++)
                if (cpuset_has(affinity, c))
                        CPU_SET(c, &cpus);

        if (n_pass_fds > QEMU_PROCESS_MAX_FDS)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot pass %zu file descriptors to QEMU",
                                    n_pass_fds);
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot open /dev/null: %s", g_strerror(errno));
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
                r = -errno;
                close(devnull);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot open %s: %s", log_path,
                                    g_strerror(-r));
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(devnull);
                close(log_fd);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot fork: %s", g_strerror(-r));
        }
        if (pid == 0)
                child_exec(argv, devnull, log_fd, pass_fds, n_pass_fds, affinity ? &cpus : NULL);
        close(devnull);
        close(log_fd);

        p = process_new(event, pid, on_exit, userdata);
        p->child = true;
        (void) proc_get_starttime(pid, &p->starttime);

        r = qemu_process_watch(p);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot watch QEMU process %d: %s",
                                    (int) pid, g_strerror(-r));
        }
        log_debug("started %s as pid %d", argv[0], (int) pid);
        *ret = g_steal_pointer(&p);
        return 0;
}

int qemu_process_adopt(sd_event *event, pid_t pid, uint64_t starttime, QemuProcessExitFn on_exit, void *userdata,
                       QemuProcess **ret) {
        g_autoptr(QemuProcess) p = NULL;
        uint64_t now_starttime;
        int r;

        if (pid <= 1)
                return -EINVAL;
        p = process_new(event, pid, on_exit, userdata);
        p->starttime = starttime;

        /* Open the pidfd first, then check the start time: the pidfd pins
         * the process we checked, so the pid cannot be recycled between. */
        r = qemu_process_watch(p);
        if (r < 0)
                return -ESRCH;
        r = proc_get_starttime(pid, &now_starttime);
        if (r < 0 || now_starttime != starttime)
                return -ESRCH;
        *ret = g_steal_pointer(&p);
        return 0;
}

pid_t qemu_process_pid(const QemuProcess *p) {
        return p->pid;
}

uint64_t qemu_process_starttime(const QemuProcess *p) {
        return p->starttime;
}

bool qemu_process_is_child(const QemuProcess *p) {
        return p->child;
}

/* Through the pidfd: never a recycled pid. Without one, only while we
 * still watch it: a child of ours stays a zombie (its pid reserved) until
 * we reap it, and an adopted one was checked by start time a moment ago. */
static int qemu_process_signal(QemuProcess *p, int sig) {
        if (p->pidfd >= 0)
                return syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
        if (!p->watch)
                return -ESRCH; /* already gone */
        return kill(p->pid, sig) < 0 ? -errno : 0;
}

int qemu_process_kill(QemuProcess *p) {
        return qemu_process_signal(p, SIGKILL);
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuProcess *p = userdata;

        log_warning("QEMU pid %d did not exit after SIGTERM: sending SIGKILL", (int) p->pid);
        (void) qemu_process_signal(p, SIGKILL);
        return 0;
}

int qemu_process_terminate(QemuProcess *p, uint64_t grace_usec) {
        int r;

        r = qemu_process_signal(p, SIGTERM);
        if (r < 0)
                return r;
        if (p->kill_timer)
                return 0;
        r = sd_event_add_time_relative(p->event, &p->kill_timer, CLOCK_MONOTONIC, grace_usec, 0, on_kill_timer, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->kill_timer, "qemu-kill");
        return 0;
}

QemuProcess *qemu_process_free(QemuProcess *p) {
        if (!p)
                return NULL;
        qemu_process_unwatch(p);
        sd_event_unref(p->event);
        g_free(p);
        return NULL;
}

int unix_listen(const char *path, int *ret_fd, GError **error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "socket path %s is longer than a unix socket allows (%zu bytes); use a "
                                    "shorter runtime directory",
                                    path, sizeof(sa.sun_path) - 1);
        strcpy(sa.sun_path, path);
        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "socket: %s", g_strerror(errno));
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
                int r = -errno;
                close(fd);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot listen on %s: %s", path,
                                    g_strerror(-r));
        }
        *ret_fd = fd;
        return 0;
}
