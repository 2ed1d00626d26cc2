/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Named points where a test build stops a migration until the test lets
 * it go (tests/hosts/test-breakpoints.sh, the fault tests). Compiled in
 * only with meson's test_hooks (on for debug and debugoptimized builds,
 * off for plain and release ones, which is what the Debian package
 * builds): otherwise every call below is an inline no-op and the daemon
 * has no trace of the mechanism, not even its environment variable's name.
 *
 * With it, VMIGRATE_TEST_BREAKPOINTS_DIR=DIR in vmigrated's environment:
 *   - a test arms point P by creating DIR/P.arm (one stop: the daemon
 *     removes it when it stops there);
 *   - on reaching an armed P, the daemon writes DIR/P.reached (the domain's
 *     UUID) and stops driving that migration: the state machine simply
 *     does not take its next step (the event loop runs on; nothing
 *     blocks or sleeps);
 *   - the test creates DIR/P.release; the daemon, watching DIR with
 *     inotify, removes P.reached and P.release and takes the step.
 * The points are listed in breakpoint_names (test-breakpoints.c) and in
 * the README ("Testing: stopping a migration at a named point").
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct Breakpoints Breakpoints;

/* What to call on release: the step that was held back. */
typedef void (*BreakpointResume)(void *userdata);

#if VMIGRATE_TEST_HOOKS

/* From the environment; NULL (no points) when the variable is unset. */
Breakpoints *breakpoints_new_from_env(sd_event *event);
/* dir: where the files are (for the unit test). */
int breakpoints_new(sd_event *event, const char *dir, Breakpoints **ret);
void breakpoints_free(Breakpoints *bp);

/* At point (one of breakpoint_names) with userdata, the migration's own
 * object: true when the point is armed and the caller must return now;
 * resume(userdata) then comes on release, and calls back into the same
 * code, which passes the point this time (false). Also true when
 * userdata is already held there (a second way into the same step). */
bool breakpoint_hold(Breakpoints *bp, const char *point, const char *uuid, BreakpointResume resume,
                     void *userdata);
/* Whether userdata is held at some point: its other events wait. */
bool breakpoint_holding(Breakpoints *bp, const void *userdata);
/* userdata is going away: never resume it. */
void breakpoint_forget(Breakpoints *bp, const void *userdata);
/* Whether name is a known point. */
bool breakpoint_name_valid(const char *name);

#else

static inline Breakpoints *breakpoints_new_from_env(sd_event *event) {
        return NULL;
}
static inline void breakpoints_free(Breakpoints *bp) {
}
static inline bool breakpoint_hold(Breakpoints *bp, const char *point, const char *uuid,
                                   BreakpointResume resume, void *userdata) {
        return false;
}
static inline bool breakpoint_holding(Breakpoints *bp, const void *userdata) {
        return false;
}
static inline void breakpoint_forget(Breakpoints *bp, const void *userdata) {
}

#endif
