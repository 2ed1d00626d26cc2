/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include <glib.h>
#include <systemd/sd-event.h>

/*
 * Child processes of the daemon: started clean (own session, default
 * signal handling, nothing inherited but the three standard descriptors)
 * and watched from the event loop, through a pidfd where the kernel has
 * them, else SIGCHLD (which the daemon blocks for sd-event).
 */

/* Starts path (looked up in PATH when it has no '/') with argv, envp (NULL:
 * this process's environment), and in_fd, out_fd, err_fd as its standard
 * input, output and error (the same descriptor may be given twice). The
 * caller keeps its descriptors. */
int child_spawn(const char *path, char *const *argv, char *const *envp, int in_fd, int out_fd, int err_fd,
                pid_t *ret_pid);

typedef struct ChildWatch ChildWatch;

/* status: a wait status (WIFEXITED() and friends apply). */
typedef void (*ChildExitFn)(ChildWatch *w, int status, void *userdata);

/* Watches our child pid until it exits, then reaps it and calls on_exit
 * once. */
int child_watch_new(sd_event *event, pid_t pid, ChildExitFn on_exit, void *userdata, ChildWatch **ret);
pid_t child_watch_pid(const ChildWatch *w);
/* SIGKILL to the child's session (it is a session leader), unless reaped. */
void child_watch_kill(ChildWatch *w);
/* Stops watching. A child not yet reaped is killed and reaped first: no
 * process outlives its watch, and no zombie is left. */
ChildWatch *child_watch_free(ChildWatch *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ChildWatch, child_watch_free)

/* "exited with status 2", "was killed by signal 9 (Killed)". */
char *child_describe_status(int status);
