/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test builds' stopping points (service/core/test-breakpoints.c): armed by
 * a file, held until the release file, resumed once, through a real
 * sd-event loop and inotify. */
#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "test-breakpoints.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_event, sd_event_unref)

typedef struct Fixture {
        sd_event *event;
        Breakpoints *bp;
        char *dir;
        unsigned resumed;
        unsigned passed; /* resumed and went past the point */
        const char *point;
} Fixture;

static char *path(Fixture *f, const char *suffix) {
        return g_strdup_printf("%s/%s.%s", f->dir, f->point, suffix);
}

static void touch(Fixture *f, const char *suffix) {
        g_autofree char *p = path(f, suffix);
        g_assert_true(g_file_set_contents(p, "", 0, NULL));
}

static bool exists(Fixture *f, const char *suffix) {
        g_autofree char *p = path(f, suffix);
        return access(p, F_OK) == 0;
}

/* The step a migration would take: held at f->point, else it goes on. */
static void step(void *userdata) {
        Fixture *f = userdata;

        if (breakpoint_hold(f->bp, f->point, "0f0e0d0c-0b0a-0908-0706-050403020100", step, f))
                return;
        f->passed++;
}

static void resumed_step(void *userdata) {
        Fixture *f = userdata;
        f->resumed++;
        step(f);
}

/* Runs the loop until cond or 5 s: the release comes by inotify. */
static bool run_until(Fixture *f, unsigned *counter, unsigned want) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (*counter < want && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        return *counter >= want;
}

static void run_for(Fixture *f, unsigned ms) {
        gint64 end = g_get_monotonic_time() + ms * 1000;

        while (g_get_monotonic_time() < end)
                g_assert_cmpint(sd_event_run(f->event, 20 * 1000), >=, 0);
}

/* A step with two points one after the other (as Confirm has). */
static void two_step(void *userdata) {
        Fixture *f = userdata;

        if (breakpoint_hold(f->bp, "source-after-finish", NULL, two_step, f) ||
            breakpoint_hold(f->bp, "source-before-confirm", NULL, two_step, f))
                return;
        f->passed++;
}

static void fixture_set_up(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        f->dir = g_dir_make_tmp("vmigrate-bp-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(breakpoints_new(f->event, f->dir, &f->bp), ==, 0);
        f->point = "source-before-finish";
}

static void fixture_tear_down(Fixture *f, gconstpointer data) {
        g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
        const char *name;

        breakpoints_free(f->bp);
        sd_event_unref(f->event);
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(f->dir, name, NULL);
                g_unlink(p);
        }
        g_rmdir(f->dir);
        g_free(f->dir);
}

static void test_unarmed(Fixture *f, gconstpointer data) {
        step(f);
        g_assert_cmpuint(f->passed, ==, 1);
        g_assert_false(exists(f, "reached"));
        g_assert_false(breakpoint_holding(f->bp, f));
        /* Another point's arm file does not stop this one. */
        f->point = "source-after-finish";
        touch(f, "arm");
        f->point = "source-before-finish";
        step(f);
        g_assert_cmpuint(f->passed, ==, 2);
}

static void test_hold_release(Fixture *f, gconstpointer data) {
        g_autofree char *reached = path(f, "reached");
        g_autofree char *text = NULL;

        touch(f, "arm");
        g_assert_true(breakpoint_hold(f->bp, f->point, "x", resumed_step, f));
        /* That call took the arm: held now, for f. */
        g_assert_true(breakpoint_holding(f->bp, f));
        g_assert_false(exists(f, "arm"));
        g_assert_true(g_file_get_contents(reached, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, "x\n");
        /* Another way into the same step while held: held too. */
        step(f);
        g_assert_cmpuint(f->passed, ==, 0);
        /* Nothing happens without the release, however long the loop runs. */
        run_for(f, 300);
        g_assert_cmpuint(f->resumed, ==, 0);
        g_assert_true(breakpoint_holding(f->bp, f));

        touch(f, "release");
        g_assert_true(run_until(f, &f->passed, 1));
        g_assert_cmpuint(f->resumed, ==, 1);
        g_assert_false(exists(f, "reached"));
        g_assert_false(exists(f, "release"));
        g_assert_false(breakpoint_holding(f->bp, f));
        /* One stop per arm: the next time it passes. */
        step(f);
        g_assert_cmpuint(f->passed, ==, 2);
        g_assert_cmpuint(f->resumed, ==, 1);
}

static void test_release_first(Fixture *f, gconstpointer data) {
        /* The release is there before the stop: no inotify event will come. */
        touch(f, "arm");
        touch(f, "release");
        g_assert_true(breakpoint_hold(f->bp, f->point, NULL, resumed_step, f));
        g_assert_true(run_until(f, &f->passed, 1));
        g_assert_cmpuint(f->resumed, ==, 1);
}

static void test_two_points(Fixture *f, gconstpointer data) {
        f->point = "source-after-finish";
        touch(f, "arm");
        f->point = "source-before-confirm";
        touch(f, "arm");
        two_step(f);
        g_assert_cmpuint(f->passed, ==, 0);
        f->point = "source-after-finish";
        g_assert_true(exists(f, "reached"));
        touch(f, "release");
        /* Released, it passes the first and stops at the second. */
        f->point = "source-before-confirm";
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!exists(f, "reached") && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_true(exists(f, "reached"));
        g_assert_cmpuint(f->passed, ==, 0);
        g_assert_true(breakpoint_holding(f->bp, f));
        touch(f, "release");
        g_assert_true(run_until(f, &f->passed, 1));
        g_assert_false(breakpoint_holding(f->bp, f));
        /* Neither is armed any more. */
        two_step(f);
        g_assert_cmpuint(f->passed, ==, 2);
}

static void test_forget(Fixture *f, gconstpointer data) {
        touch(f, "arm");
        g_assert_true(breakpoint_hold(f->bp, f->point, NULL, resumed_step, f));
        breakpoint_forget(f->bp, f);
        g_assert_false(breakpoint_holding(f->bp, f));
        touch(f, "release");
        run_for(f, 300);
        g_assert_cmpuint(f->resumed, ==, 0);
}

static void test_names(void) {
        g_assert_true(breakpoint_name_valid("source-after-begin"));
        g_assert_true(breakpoint_name_valid("destination-after-finish"));
        g_assert_false(breakpoint_name_valid("source-after-lunch"));
        g_assert_false(breakpoint_name_valid(""));
}

static void test_no_dir(void) {
        g_autoptr(sd_event) event = NULL;

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_unsetenv("VMIGRATE_TEST_BREAKPOINTS_DIR");
        g_assert_null(breakpoints_new_from_env(event));
        /* Without the object every point passes. */
        g_assert_false(breakpoint_hold(NULL, "source-after-begin", NULL, step, NULL));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
        ADD("/breakpoints/unarmed-passes", test_unarmed);
        ADD("/breakpoints/hold-until-release", test_hold_release);
        ADD("/breakpoints/release-before-reach", test_release_first);
        ADD("/breakpoints/two-points-one-step", test_two_points);
        ADD("/breakpoints/forget", test_forget);
        g_test_add_func("/breakpoints/names", test_names);
        g_test_add_func("/breakpoints/no-dir", test_no_dir);
        return g_test_run();
}
