/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test builds' named stopping points of a migration (test-breakpoints.h).
 * A stop is a record; the step it holds back is a callback. Nothing waits:
 * the migration's state machine has simply not taken its next step until
 * the release file shows up (inotify on the directory, through sd-event).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <glib.h>

#include "log.h"
#include "test-breakpoints.h"

/* Every point, in the order a migration reaches them. */
static const char *const breakpoint_names[] = {
        "source-after-begin",            /* the job exists; the destination not yet contacted */
        "source-before-prepare",         /* connected; Prepare not yet asked */
        "source-after-prepare",          /* Prepare answered (so is Migrate); no stream yet */
        "source-perform-first-pass",     /* the stream's first progress report */
        "source-perform-mid-stream",     /* half the guest's memory sent */
        "source-before-postcopy-switch", /* StartPostCopy (or the policy) about to switch */
        "source-after-postcopy-check",   /* the destination said it holds the guest; not yet switched */
        "source-after-postcopy-switch",  /* the hypervisor switched; the destination not yet told */
        "source-before-finish",          /* the stream is over (or post-copy); Finish not yet sent */
        "source-after-finish",           /* Finish answered */
        "source-before-confirm",         /* Confirm about to start */
        "source-before-end",             /* Confirm done (or a failure): the job about to end */
        "destination-before-prepare",    /* the incoming job exists; hooks and QEMU not started */
        "destination-after-prepare",     /* QEMU listens; Prepare not yet answered */
        "destination-before-finish",     /* Finish arrived; nothing run or discarded yet */
        "destination-after-finish", /* the guest runs here (or was discarded); Finish not yet answered */
};

typedef enum {
        BREAKPOINT_HELD,
        BREAKPOINT_PASSING, /* released: the next hold of the same point and userdata passes */
} BreakpointState;

typedef struct Held {
        const char *point; /* static */
        BreakpointResume resume;
        void *userdata;
        BreakpointState state;
} Held;

struct Breakpoints {
        char *dir;
        sd_event_source *watch;
        sd_event_source *scan; /* a release that was there before the stop */
        GPtrArray *held;       /* Held* */
};

bool breakpoint_name_valid(const char *name) {
        for (size_t i = 0; i < G_N_ELEMENTS(breakpoint_names); i++)
                if (g_str_equal(name, breakpoint_names[i]))
                        return true;
        return false;
}

static char *breakpoint_path(Breakpoints *bp, const char *point, const char *suffix) {
        return g_strdup_printf("%s/%s.%s", bp->dir, point, suffix);
}

static Held *held_find(Breakpoints *bp, const char *point, const void *userdata) {
        for (guint i = 0; i < bp->held->len; i++) {
                Held *h = bp->held->pdata[i];
                if (h->userdata == userdata && (!point || g_str_equal(h->point, point)))
                        return h;
        }
        return NULL;
}

/* Releases one held point whose release file is there; true if it did
 * (the callback may have changed the list: the caller starts over). */
static bool breakpoints_release_one(Breakpoints *bp) {
        for (guint i = 0; i < bp->held->len; i++) {
                Held *h = bp->held->pdata[i];
                g_autofree char *release = breakpoint_path(bp, h->point, "release");
                g_autofree char *reached = breakpoint_path(bp, h->point, "reached");

                if (h->state != BREAKPOINT_HELD || access(release, F_OK) < 0)
                        continue;
                (void) unlink(release);
                (void) unlink(reached);
                log_info("test breakpoint %s: released", h->point);
                h->state = BREAKPOINT_PASSING;
                h->resume(h->userdata);
                /* Not taken again on the way (the step went elsewhere): done. */
                if (g_ptr_array_find(bp->held, h, NULL) && h->state == BREAKPOINT_PASSING)
                        g_ptr_array_remove(bp->held, h);
                return true;
        }
        return false;
}

static void breakpoints_scan(Breakpoints *bp) {
        while (breakpoints_release_one(bp))
                ;
}

static int on_dir_changed(sd_event_source *s, const struct inotify_event *event, void *userdata) {
        breakpoints_scan(userdata);
        return 0;
}

static int on_scan(sd_event_source *s, void *userdata) {
        breakpoints_scan(userdata);
        return 0;
}

int breakpoints_new(sd_event *event, const char *dir, Breakpoints **ret) {
        Breakpoints *bp = g_new0(Breakpoints, 1);
        int r;

        bp->dir = g_strdup(dir);
        bp->held = g_ptr_array_new_with_free_func(g_free);
        r = sd_event_add_inotify(event, &bp->watch, dir,
                                 IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB, on_dir_changed, bp);
        if (r >= 0)
                r = sd_event_add_defer(event, &bp->scan, on_scan, bp);
        if (r >= 0)
                r = sd_event_source_set_enabled(bp->scan, SD_EVENT_OFF);
        if (r < 0) {
                breakpoints_free(bp);
                return r;
        }
        *ret = bp;
        return 0;
}

Breakpoints *breakpoints_new_from_env(sd_event *event) {
        const char *dir = getenv("VMIGRATE_TEST_BREAKPOINTS_DIR");
        Breakpoints *bp = NULL;
        int r;

        if (!dir || !*dir)
                return NULL;
        if (g_mkdir_with_parents(dir, 0700) < 0)
                log_error("test breakpoints: cannot make %s: %s", dir, g_strerror(errno));
        r = breakpoints_new(event, dir, &bp);
        if (r < 0) {
                log_error("test breakpoints: cannot watch %s: %s", dir, g_strerror(-r));
                return NULL;
        }
        log_warning("test breakpoints armed by files in %s: this is a test build", dir);
        return bp;
}

void breakpoints_free(Breakpoints *bp) {
        if (!bp)
                return;
        sd_event_source_disable_unref(bp->watch);
        sd_event_source_disable_unref(bp->scan);
        g_ptr_array_unref(bp->held);
        g_free(bp->dir);
        g_free(bp);
}

bool breakpoint_hold(Breakpoints *bp, const char *point, const char *uuid, BreakpointResume resume,
                     void *userdata) {
        g_assert(breakpoint_name_valid(point));
        if (!bp)
                return false;

        Held *h = held_find(bp, point, userdata);
        if (h && h->state == BREAKPOINT_PASSING) {
                g_ptr_array_remove(bp->held, h);
                return false;
        }
        if (h)
                return true;

        g_autofree char *arm = breakpoint_path(bp, point, "arm");
        if (unlink(arm) < 0)
                return false; /* not armed (or armed and taken by another migration) */

        g_autofree char *reached = breakpoint_path(bp, point, "reached");
        g_autofree char *tmp = g_strconcat(reached, ".tmp", NULL);
        g_autofree char *text = g_strdup_printf("%s\n", uuid ? uuid : "");
        if (!g_file_set_contents(tmp, text, -1, NULL) || rename(tmp, reached) < 0)
                log_error("test breakpoint %s: cannot write %s", point, reached);

        h = g_new0(Held, 1);
        h->point = point;
        h->resume = resume;
        h->userdata = userdata;
        g_ptr_array_add(bp->held, h);
        log_info("test breakpoint %s: holding domain %s until %s.release", point, uuid ? uuid : "?", point);
        /* A release already there sends no inotify event. */
        (void) sd_event_source_set_enabled(bp->scan, SD_EVENT_ONESHOT);
        return true;
}

bool breakpoint_holding(Breakpoints *bp, const void *userdata) {
        Held *h = bp ? held_find(bp, NULL, userdata) : NULL;
        return h && h->state == BREAKPOINT_HELD;
}

void breakpoint_forget(Breakpoints *bp, const void *userdata) {
        Held *h;

        if (!bp)
                return;
        while ((h = held_find(bp, NULL, userdata)))
                g_ptr_array_remove(bp->held, h);
}
