/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
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

/* Which part of a child's output child_read_output() keeps. */
typedef enum ChildOutputKeep {
        CHILD_OUTPUT_HEAD, /* the first bytes (what a hook says first) */
        CHILD_OUTPUT_TAIL, /* the last bytes (an error comes last) */
} ChildOutputKeep;

/* Reads what the child's output pipe (non-blocking) holds into out, which
 * keeps at most max bytes, the first or the last; the rest is read and
 * dropped, so the child never blocks on a full pipe. *ret_cut (may be
 * NULL) is set when something was dropped. Returns false at end of file
 * or on error, true when nothing more is there for now. */
bool child_read_output(int fd, GString *out, size_t max, ChildOutputKeep keep, bool *ret_cut);

/* "exited with status 2", "was killed by signal 9 (Killed)". */
char *child_describe_status(int status);
