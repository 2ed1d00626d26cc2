/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Convergence policies (policy.h). A policy is a small key file:
 *
 *   [Policy]
 *   Description=…
 *   InitialDowntime=100                   ms, optional
 *   Steps=downtime 150;downtime 300;throttle 40;postcopy
 *   CompletionTimeoutPerGiB=150           s, 0 = none
 *   ProgressTimeout=150                   s, 0 = none
 *   FinalAction=abort|postcopy|suspend
 *
 * The built-in ones are written in the same format and go through the
 * same parser as the admin's files. Their numbers start from oVirt's
 * migration policies (downtime 100 ms, raised to 150, 200, 300, 400,
 * 500 ms as pre-copy stalls) and from the completion and progress
 * timeouts of KubeVirt (150 s per GiB, 150 s without progress).
 */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "names.h"
#include "policy.h"

static const char *const action_names[_POLICY_ACTION_MAX] = {
        [POLICY_ACTION_DOWNTIME] = "downtime", [POLICY_ACTION_THROTTLE] = "throttle",
        [POLICY_ACTION_POSTCOPY] = "postcopy", [POLICY_ACTION_SUSPEND] = "suspend",
        [POLICY_ACTION_ABORT] = "abort",
};

static const struct {
        const char *name;
        const char *text;
} builtin_policies[] = {
        { "default",
          "[Policy]\n"
          "Description=Completes without post-copy: allows the switch-over pause to grow to 500 ms, then "
          "slows the guest's CPUs down step by step; aborts only when out of time\n"
          "InitialDowntime=300\n"
          "Steps=downtime 400;downtime 500;throttle 20;throttle 40;throttle 60;throttle 80;throttle 99\n"
          "CompletionTimeoutPerGiB=150\n"
          "ProgressTimeout=150\n"
          "FinalAction=abort\n" },
        { "minimal-downtime",
          "[Policy]\n"
          "Description=The guest should not notice: pauses of at most 500 ms and a light throttle; aborts "
          "rather than slowing the guest more\n"
          "InitialDowntime=100\n"
          "Steps=downtime 150;downtime 200;downtime 300;downtime 400;downtime 500;throttle 20;throttle 40\n"
          "CompletionTimeoutPerGiB=150\n"
          "ProgressTimeout=150\n"
          "FinalAction=abort\n" },
        { "suspend-workload-if-needed",
          "[Policy]\n"
          "Description=Moves even a guest under heavy load: throttles it up to 99%, then allows a 5 s "
          "pause, and at last pauses it until the copy ends\n"
          "InitialDowntime=100\n"
          "Steps=downtime 150;downtime 200;downtime 300;downtime 400;downtime 500;throttle 20;throttle "
          "40;throttle 60;throttle 80;throttle 99;downtime 5000\n"
          "CompletionTimeoutPerGiB=150\n"
          "ProgressTimeout=150\n"
          "FinalAction=suspend\n" },
        { "postcopy",
          "[Policy]\n"
          "Description=Switches to post-copy as soon as pre-copy cannot converge within 200 ms pauses "
          "(turns post-copy on; a failure in post-copy can lose the guest)\n"
          "InitialDowntime=100\n"
          "Steps=downtime 150;downtime 200;postcopy\n"
          "CompletionTimeoutPerGiB=150\n"
          "ProgressTimeout=150\n"
          "FinalAction=postcopy\n" },
};

void policy_free(Policy *p) {
        if (!p)
                return;
        g_free(p->name);
        g_free(p->description);
        g_free(p->origin);
        g_free(p->steps);
        g_free(p);
}

Policy *policy_copy(const Policy *p) {
        Policy *c = g_new0(Policy, 1);

        *c = *p;
        c->name = g_strdup(p->name);
        c->description = g_strdup(p->description);
        c->origin = g_strdup(p->origin);
        c->steps = g_memdup2(p->steps, p->n_steps * sizeof(PolicyStep));
        return c;
}

const char *policy_action_to_string(PolicyActionType a) {
        return a >= 0 && a < _POLICY_ACTION_MAX ? action_names[a] : "?";
}

bool policy_has_action(const Policy *p, PolicyActionType a) {
        for (size_t i = 0; i < p->n_steps; i++)
                if (p->steps[i].action == a)
                        return true;
        return p->final_action == a;
}

char *policy_step_describe(const PolicyStep *s) {
        switch (s->action) {
        case POLICY_ACTION_DOWNTIME:
                return g_strdup_printf("downtime %" G_GUINT64_FORMAT " ms", s->value);
        case POLICY_ACTION_THROTTLE:
                return g_strdup_printf("throttle %" G_GUINT64_FORMAT "%%", s->value);
        default:
                return g_strdup(policy_action_to_string(s->action));
        }
}

static int action_from_string(const char *s, PolicyActionType *ret) {
        for (int a = 0; a < _POLICY_ACTION_MAX; a++)
                if (g_str_equal(s, action_names[a])) {
                        *ret = a;
                        return 0;
                }
        return -EINVAL;
}

static int parse_step(const char *policy, const char *text, PolicyStep *ret, GError **error) {
        g_auto(GStrv) words = g_strsplit_set(g_strstrip((char *) text), " \t", -1);
        PolicyStep s = { 0 };
        guint64 v = 0;
        size_t n = 0;

        /* Collapse repeated blanks: "downtime  150" is fine. */
        for (size_t i = 0; words[i]; i++) {
                if (*words[i])
                        words[n++] = words[i];
                else
                        g_free(words[i]);
        }
        words[n] = NULL;
        if (n == 0 || action_from_string(words[0], &s.action) < 0)
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                    "policy '%s': step '%s' is not one of 'downtime MS', 'throttle PERCENT', "
                                    "'postcopy', 'suspend', 'abort'",
                                    policy, text);
        bool wants_value = s.action == POLICY_ACTION_DOWNTIME || s.action == POLICY_ACTION_THROTTLE;
        if (wants_value != (n == 2) || n > 2)
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "policy '%s': step '%s' %s", policy, text,
                                    wants_value ? "needs one number" : "takes no value");
        if (wants_value) {
                uint64_t max = s.action == POLICY_ACTION_DOWNTIME ? 60000 : 99;
                if (!g_ascii_string_to_unsigned(words[1], 10, 1, max, &v, NULL))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "policy '%s': step '%s': the %s must be a whole number from 1 to "
                                            "%" G_GUINT64_FORMAT "%s",
                                            policy, text,
                                            s.action == POLICY_ACTION_DOWNTIME ? "downtime" : "throttle", max,
                                            s.action == POLICY_ACTION_DOWNTIME ? " (ms)" : " (percent)");
                s.value = v;
        }
        *ret = s;
        return 0;
}

static int key_uint(GKeyFile *kf, const char *policy, const char *key, uint64_t max, uint64_t *ret,
                    GError **error) {
        g_autofree char *text = g_key_file_get_value(kf, "Policy", key, NULL);
        guint64 v;

        if (!text)
                return 0; /* keeps the default */
        if (!g_ascii_string_to_unsigned(g_strstrip(text), 10, 0, max, &v, NULL))
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                    "policy '%s': %s=%s is not a whole number from 0 to %" G_GUINT64_FORMAT, policy,
                                    key, text, max);
        *ret = v;
        return 0;
}

static int check_keys(GKeyFile *kf, const char *policy, GError **error) {
        static const char *const known[] = { "Description", "InitialDowntime",     "Steps",
                                             "CompletionTimeoutPerGiB", "ProgressTimeout", "FinalAction",
                                             NULL };
        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
        g_auto(GStrv) keys = NULL;

        for (size_t i = 0; groups[i]; i++)
                if (!g_str_equal(groups[i], "Policy"))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "policy '%s': unknown section [%s] (only [Policy])", policy, groups[i]);
        keys = g_key_file_get_keys(kf, "Policy", NULL, NULL);
        if (!keys)
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "policy '%s': no [Policy] section", policy);
        for (size_t i = 0; keys[i]; i++)
                if (!g_strv_contains(known, keys[i]))
                        return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                            "policy '%s': unknown key '%s' (known: Description, InitialDowntime, "
                                            "Steps, CompletionTimeoutPerGiB, ProgressTimeout, FinalAction)",
                                            policy, keys[i]);
        return 0;
}

int policy_parse(const char *name, const char *text, const char *origin, Policy **ret, GError **error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) kf_error = NULL;
        g_autoptr(Policy) p = NULL;
        g_autofree char *final = NULL;
        g_auto(GStrv) steps = NULL;
        gsize n_steps = 0;
        int r;

        if (!policy_name_is_valid(name))
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                    "'%s' is not a policy name (1-%d letters, digits, '-', '_', '.')", name,
                                    POLICY_NAME_MAX);
        if (!g_key_file_load_from_data(kf, text, strlen(text), G_KEY_FILE_NONE, &kf_error))
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "policy '%s': %s", name, kf_error->message);
        r = check_keys(kf, name, error);
        if (r < 0)
                return r;

        p = g_new0(Policy, 1);
        p->name = g_strdup(name);
        p->origin = g_strdup(origin);
        p->description = g_key_file_get_string(kf, "Policy", "Description", NULL);
        p->final_action = POLICY_ACTION_ABORT;
        if ((r = key_uint(kf, name, "InitialDowntime", 60000, &p->initial_downtime, error)) < 0 ||
            (r = key_uint(kf, name, "CompletionTimeoutPerGiB", 24 * 3600, &p->completion_timeout_per_gib, error)) <
                    0 ||
            (r = key_uint(kf, name, "ProgressTimeout", 24 * 3600, &p->progress_timeout, error)) < 0)
                return r;

        steps = g_key_file_get_string_list(kf, "Policy", "Steps", &n_steps, NULL);
        if (n_steps > POLICY_STEPS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "policy '%s': %zu steps, at most %d", name,
                                    (size_t) n_steps, POLICY_STEPS_MAX);
        p->steps = g_new0(PolicyStep, MAX(n_steps, 1));
        for (gsize i = 0; i < n_steps; i++) {
                if (!*g_strstrip(steps[i]) && i == n_steps - 1)
                        break; /* a trailing ';' */
                r = parse_step(name, steps[i], &p->steps[p->n_steps], error);
                if (r < 0)
                        return r;
                p->n_steps++;
        }

        final = g_key_file_get_string(kf, "Policy", "FinalAction", NULL);
        if (final && (action_from_string(g_strstrip(final), &p->final_action) < 0 ||
                      p->final_action == POLICY_ACTION_DOWNTIME || p->final_action == POLICY_ACTION_THROTTLE))
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                    "policy '%s': FinalAction=%s is not one of abort, postcopy, suspend", name, final);
        *ret = g_steal_pointer(&p);
        return 0;
}

static gint compare_by_name(gconstpointer a, gconstpointer b) {
        const Policy *pa = *(const Policy *const *) a, *pb = *(const Policy *const *) b;
        return strcmp(pa->name, pb->name);
}

static void add_or_replace(GPtrArray *all, Policy *p) {
        for (guint i = 0; i < all->len; i++) {
                Policy *old = g_ptr_array_index(all, i);
                if (g_str_equal(old->name, p->name)) {
                        policy_free(old);
                        all->pdata[i] = p;
                        return;
                }
        }
        g_ptr_array_add(all, p);
}

static void load_dir(GPtrArray *all, const char *dir) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) d = g_dir_open(dir, 0, &error);
        const char *entry;

        if (!d) {
                if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        log_warning("policies: cannot read %s: %s", dir, error->message);
                return;
        }
        while ((entry = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(dir, entry, NULL);
                g_autofree char *name = NULL, *text = NULL;
                g_autoptr(GError) e = NULL;
                Policy *p = NULL;
                gsize len;

                if (!g_str_has_suffix(entry, ".policy") || entry[0] == '.')
                        continue;
                name = g_strndup(entry, strlen(entry) - strlen(".policy"));
                if (!g_file_get_contents(path, &text, &len, &e) || len > 64 * 1024 || strlen(text) != len) {
                        log_warning("policies: %s skipped: %s", path,
                                    e ? e->message : "over 64 KiB or not text");
                        continue;
                }
                if (policy_parse(name, text, path, &p, &e) < 0) {
                        log_warning("policies: %s skipped: %s", path, e->message);
                        continue;
                }
                add_or_replace(all, p);
        }
}

GPtrArray *policy_load_all(const char *dir) {
        GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify) policy_free);

        for (size_t i = 0; i < G_N_ELEMENTS(builtin_policies); i++) {
                g_autoptr(GError) error = NULL;
                Policy *p = NULL;
                int r = policy_parse(builtin_policies[i].name, builtin_policies[i].text, "built-in", &p, &error);
                g_assert(r >= 0); /* ours: the unit test parses each */
                g_ptr_array_add(all, p);
        }
        if (dir)
                load_dir(all, dir);
        g_ptr_array_sort(all, compare_by_name);
        return all;
}

const Policy *policy_lookup(GPtrArray *policies, const char *name) {
        for (guint i = 0; policies && i < policies->len; i++) {
                const Policy *p = g_ptr_array_index(policies, i);
                if (g_str_equal(p->name, name))
                        return p;
        }
        return NULL;
}

GVariant *policy_describe_all(GPtrArray *policies) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ssa{sv})"));
        for (guint i = 0; i < policies->len; i++) {
                const Policy *p = g_ptr_array_index(policies, i);
                g_autoptr(GPtrArray) steps = g_ptr_array_new_with_free_func(g_free);
                GVariantBuilder d;

                for (size_t j = 0; j < p->n_steps; j++)
                        g_ptr_array_add(steps, policy_step_describe(&p->steps[j]));
                g_variant_builder_init(&d, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&d, "{sv}", "origin", g_variant_new_string(p->origin ? p->origin : ""));
                g_variant_builder_add(&d, "{sv}", "initial-downtime-ms", g_variant_new_uint64(p->initial_downtime));
                g_variant_builder_add(&d, "{sv}", "steps",
                                      g_variant_new_strv((const char *const *) steps->pdata, steps->len));
                g_variant_builder_add(&d, "{sv}", "completion-timeout-per-gib",
                                      g_variant_new_uint64(p->completion_timeout_per_gib));
                g_variant_builder_add(&d, "{sv}", "progress-timeout", g_variant_new_uint64(p->progress_timeout));
                g_variant_builder_add(&d, "{sv}", "final-action",
                                      g_variant_new_string(policy_action_to_string(p->final_action)));
                g_variant_builder_add(&b, "(ssa{sv})", p->name, p->description ? p->description : "", &d);
        }
        return g_variant_builder_end(&b);
}

static bool backend_supports(const MigrateOptionSupport *support, size_t n_support, const char *key) {
        for (size_t i = 0; i < n_support; i++)
                if (g_str_equal(support[i].key, key))
                        return support[i].supported;
        return false;
}

int policy_apply(GPtrArray *policies, MigrateOptions *o, const MigrateOptionSupport *support, size_t n_support,
                 Policy **ret, GError **error) {
        const char *name = o->policy ? o->policy : POLICY_DEFAULT_NAME;
        const Policy *p = policy_lookup(policies, name);

        if (!p) {
                g_autoptr(GString) known = g_string_new(NULL);
                for (guint i = 0; i < policies->len; i++)
                        g_string_append_printf(known, "%s%s", i ? ", " : "",
                                               ((const Policy *) g_ptr_array_index(policies, i))->name);
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "option 'policy'='%s': no such policy on this host (it has %s; an admin adds "
                                    "NAME.policy files to PoliciesDirectory=, vmigrated --policies-dir)",
                                    name, known->str);
        }
        if (policy_has_action(p, POLICY_ACTION_POSTCOPY)) {
                if (migrate_options_has(o, MIGRATE_OPTION_POSTCOPY) && !o->postcopy)
                        return vm_error_set(error, VM_ERROR_CONFLICTING_OPTIONS,
                                            "policy '%s' switches to post-copy, and 'postcopy' is false: drop "
                                            "the option or choose another policy",
                                            p->name);
                o->postcopy = true;
                migrate_options_mark(o, MIGRATE_OPTION_POSTCOPY);
        }
        if (policy_has_action(p, POLICY_ACTION_THROTTLE) && !migrate_options_has(o, MIGRATE_OPTION_AUTO_CONVERGE) &&
            backend_supports(support, n_support, "auto-converge")) {
                o->auto_converge = true;
                migrate_options_mark(o, MIGRATE_OPTION_AUTO_CONVERGE);
        }
        if (!migrate_options_has(o, MIGRATE_OPTION_MAX_DOWNTIME) && p->initial_downtime &&
            backend_supports(support, n_support, "max-downtime")) {
                o->max_downtime = p->initial_downtime;
                migrate_options_mark(o, MIGRATE_OPTION_MAX_DOWNTIME);
        }
        *ret = policy_copy(p);
        return 0;
}
