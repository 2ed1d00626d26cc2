/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "cpuset.h"
/*
 * One QEMU process, started by us or found again after a daemon restart.
 * It is watched through a pidfd, which works for both: for our own child
 * the exit is reaped (no zombie), for an adopted one init reaps it and we
 * only learn that it ended.
 */
typedef struct QemuProcess QemuProcess;

/* status: the wait status for our own child, or -1 when it was adopted and
 * the exit status is unknown. */
typedef void (*QemuProcessExitFn)(QemuProcess *p, int status, void *userdata);

/*
 * Starts argv[0] in its own session (a signal to the daemon's process
 * group must not reach guests), stdin from /dev/null, stdout and stderr
 * appended to log_path, and pass_fd as file descriptor 3. Closes nothing
 * of the caller's; the child gets no other fd.
 */
int qemu_process_spawn(sd_event *event, char *const *argv, const char *log_path, int pass_fd,
                       QemuProcessExitFn on_exit, void *userdata, QemuProcess **ret, GError **error);

/* The same, passing pass_fds[i] as file descriptor 3 + i, and with
 * affinity (NULL: any CPU) the host CPUs it and all its threads run on (a
 * CPU it cannot have makes it exit 126 before exec, saying so in the log). */
#define QEMU_PROCESS_MAX_FDS 64
int qemu_process_spawn_fds(sd_event *event, char *const *argv, const char *log_path, const int *pass_fds,
                           size_t n_pass_fds, const CpuSet *affinity, QemuProcessExitFn on_exit, void *userdata,
                           QemuProcess **ret, GError **error);

/* Finds a process recorded as (pid, starttime) again. Returns -ESRCH when
 * it is gone or the pid now belongs to another process. */
int qemu_process_adopt(sd_event *event, pid_t pid, uint64_t starttime, QemuProcessExitFn on_exit, void *userdata,
                       QemuProcess **ret);

pid_t qemu_process_pid(const QemuProcess *p);
uint64_t qemu_process_starttime(const QemuProcess *p);
bool qemu_process_is_child(const QemuProcess *p);

/* SIGTERM now; SIGKILL if it is still there after grace_usec. */
int qemu_process_terminate(QemuProcess *p, uint64_t grace_usec);

/* SIGKILL now (through the pidfd where there is one). */
int qemu_process_kill(QemuProcess *p);

/* Stops watching (the process keeps running). */
QemuProcess *qemu_process_free(QemuProcess *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuProcess, qemu_process_free)

/* Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
int proc_get_starttime(pid_t pid, uint64_t *ret);

/* The last n_lines of a text file (at most 64 KiB read), or NULL. */
char *file_tail(const char *path, unsigned n_lines);

/* A listening unix socket at path (replacing a stale one), close-on-exec. */
int unix_listen(const char *path, int *ret_fd, GError **error);
