/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "policy.h"

static void assert_refused(const char *text, const char *words) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Policy) p = NULL;

        g_assert_cmpint(policy_parse("mine", text, "test", &p, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_ARGUMENT);
        if (!strstr(error->message, words))
                g_error("'%s' not in: %s", words, error->message);
        g_assert_null(p);
}

static void test_builtin(void) {
        g_autoptr(GPtrArray) all = policy_load_all(NULL);
        const char *names[] = { "default", "minimal-downtime", "postcopy", "suspend-workload-if-needed" };

        g_assert_cmpuint(all->len, ==, G_N_ELEMENTS(names));
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                const Policy *p = g_ptr_array_index(all, i);
                g_assert_cmpstr(p->name, ==, names[i]); /* sorted */
                g_assert_cmpstr(p->origin, ==, "built-in");
                g_assert_nonnull(p->description);
                g_assert_cmpuint(p->n_steps, >, 0);
                g_assert_cmpuint(p->completion_timeout_per_gib, ==, 150);
                g_assert_cmpuint(p->progress_timeout, ==, 150);
        }
        const Policy *d = policy_lookup(all, "default");
        /* It never uses post-copy: that stays opt-in. */
        g_assert_false(policy_has_action(d, POLICY_ACTION_POSTCOPY));
        g_assert_true(policy_has_action(d, POLICY_ACTION_THROTTLE));
        g_assert_cmpint(d->final_action, ==, POLICY_ACTION_ABORT);
        g_assert_cmpuint(d->initial_downtime, ==, 300);
        const Policy *m = policy_lookup(all, "minimal-downtime");
        g_assert_cmpuint(m->initial_downtime, ==, 100);
        g_assert_cmpint(m->steps[0].action, ==, POLICY_ACTION_DOWNTIME);
        g_assert_cmpuint(m->steps[0].value, ==, 150);
        g_assert_cmpint(policy_lookup(all, "postcopy")->final_action, ==, POLICY_ACTION_POSTCOPY);
        g_assert_cmpint(policy_lookup(all, "suspend-workload-if-needed")->final_action, ==, POLICY_ACTION_SUSPEND);
        g_assert_null(policy_lookup(all, "nope"));
}

static void test_parse(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Policy) p = NULL;

        g_assert_cmpint(policy_parse("mine",
                                     "# an admin's\n[Policy]\nDescription=Mine\nInitialDowntime=50\n"
                                     "Steps=downtime  80; throttle 30 ;postcopy;\nCompletionTimeoutPerGiB=0\n"
                                     "FinalAction=suspend\n",
                                     "/etc/x/mine.policy", &p, &error),
                        ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(p->description, ==, "Mine");
        g_assert_cmpuint(p->initial_downtime, ==, 50);
        g_assert_cmpuint(p->n_steps, ==, 3);
        g_assert_cmpint(p->steps[0].action, ==, POLICY_ACTION_DOWNTIME);
        g_assert_cmpuint(p->steps[0].value, ==, 80);
        g_assert_cmpint(p->steps[1].action, ==, POLICY_ACTION_THROTTLE);
        g_assert_cmpuint(p->steps[1].value, ==, 30);
        g_assert_cmpint(p->steps[2].action, ==, POLICY_ACTION_POSTCOPY);
        g_assert_cmpuint(p->completion_timeout_per_gib, ==, 0);
        g_assert_cmpuint(p->progress_timeout, ==, 0);
        g_assert_cmpint(p->final_action, ==, POLICY_ACTION_SUSPEND);

        g_autofree char *d = policy_step_describe(&p->steps[0]);
        g_autofree char *t = policy_step_describe(&p->steps[1]);
        g_autofree char *c = policy_step_describe(&p->steps[2]);
        g_assert_cmpstr(d, ==, "downtime 80 ms");
        g_assert_cmpstr(t, ==, "throttle 30%");
        g_assert_cmpstr(c, ==, "postcopy");

        g_autoptr(Policy) copy = policy_copy(p);
        g_assert_cmpuint(copy->n_steps, ==, 3);
        g_assert_cmpuint(copy->steps[1].value, ==, 30);
        g_assert_true(copy->steps != p->steps);
}

static void test_refusals(void) {
        assert_refused("[Policy]\nSteps=faster\n", "step 'faster' is not one of");
        assert_refused("[Policy]\nSteps=throttle\n", "needs one number");
        assert_refused("[Policy]\nSteps=postcopy 3\n", "takes no value");
        assert_refused("[Policy]\nSteps=throttle 100\n", "from 1 to 99 (percent)");
        assert_refused("[Policy]\nSteps=downtime 0\n", "from 1 to 60000 (ms)");
        assert_refused("[Policy]\nSteps=downtime -5\n", "from 1 to 60000");
        assert_refused("[Policy]\nFinalAction=throttle\n", "FinalAction=throttle is not one of abort, postcopy, suspend");
        assert_refused("[Policy]\nProgressTimeout=soon\n", "ProgressTimeout=soon is not a whole number");
        assert_refused("[Policy]\nSpeed=11\n", "unknown key 'Speed'");
        assert_refused("[Policy]\n[Other]\nA=1\n", "unknown section [Other]");
        assert_refused("Steps=abort\n", "mine");
        assert_refused("", "no [Policy] section");

        g_autoptr(GError) error = NULL;
        Policy *p = NULL;
        g_assert_cmpint(policy_parse("../evil", "[Policy]\n", "test", &p, &error), <, 0);
        g_assert_nonnull(strstr(error->message, "not a policy name"));
        g_assert_false(policy_name_is_valid(""));
        g_assert_false(policy_name_is_valid("-x"));
        g_assert_false(policy_name_is_valid("a b"));
        g_assert_true(policy_name_is_valid("site_1.fast-lane"));

        GString *many = g_string_new("[Policy]\nSteps=");
        for (int i = 0; i < POLICY_STEPS_MAX + 1; i++)
                g_string_append_printf(many, "downtime %d;", 100 + i);
        assert_refused(many->str, "steps, at most");
        g_string_free(many, TRUE);
}

static void write_file(const char *dir, const char *name, const char *text) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void test_dir(void) {
        g_autofree char *dir = g_dir_make_tmp("test-policy-XXXXXX", NULL);
        g_autoptr(GPtrArray) all = NULL;

        write_file(dir, "default.policy", "[Policy]\nDescription=Site default\nSteps=downtime 1000\n");
        write_file(dir, "quick.policy", "[Policy]\nSteps=postcopy\nFinalAction=postcopy\n");
        write_file(dir, "broken.policy", "[Policy]\nSteps=warp 9\n");
        write_file(dir, "notes.txt", "not a policy");
        write_file(dir, "bad name!.policy", "[Policy]\n");
        all = policy_load_all(dir);

        /* the four built-ins, one replaced, plus quick; broken ones skipped */
        g_assert_cmpuint(all->len, ==, 5);
        const Policy *d = policy_lookup(all, "default");
        g_assert_cmpstr(d->description, ==, "Site default");
        g_assert_true(g_str_has_suffix(d->origin, "/default.policy"));
        g_assert_cmpuint(d->n_steps, ==, 1);
        g_assert_nonnull(policy_lookup(all, "quick"));
        g_assert_null(policy_lookup(all, "broken"));
        g_assert_null(policy_lookup(all, "notes"));
        g_assert_nonnull(policy_lookup(all, "postcopy"));

        const char *names[] = { "bad name!.policy", "broken.policy", "default.policy", "notes.txt", "quick.policy" };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *path = g_build_filename(dir, names[i], NULL);
                g_unlink(path);
        }
        g_rmdir(dir);

        /* A missing directory is no directory: the built-ins. */
        g_autoptr(GPtrArray) none = policy_load_all("/nonexistent/policies.d");
        g_assert_cmpuint(none->len, ==, 4);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_ERR);
        g_test_add_func("/policy/builtin", test_builtin);
        g_test_add_func("/policy/parse", test_parse);
        g_test_add_func("/policy/refusals", test_refusals);
        g_test_add_func("/policy/dir", test_dir);
        return g_test_run();
}
