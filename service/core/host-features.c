/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "host-features.h"
#include "hooks.h"
#include "log.h"
#include "networks.h"

static bool bridge_name_is_safe(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= 16 || g_str_equal(s, ".") || g_str_equal(s, ".."))
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p == '/' || *p <= 0x20 || *p == 0x7f)
                        return false;
        return true;
}

char *host_bridge_problem(const char *sys_class_net, const char *bridge) {
        const char *root = sys_class_net ? sys_class_net : "/sys/class/net";

        if (!bridge_name_is_safe(bridge))
                return g_strdup_printf("'%s' is not a bridge name", bridge);
        g_autofree char *dev = g_build_filename(root, bridge, NULL);
        g_autofree char *dir = g_build_filename(dev, "bridge", NULL);
        if (g_file_test(dir, G_FILE_TEST_IS_DIR))
                return NULL;
        if (g_file_test(dev, G_FILE_TEST_EXISTS))
                return g_strdup_printf("network device %s exists but is not a bridge", bridge);
        return g_strdup_printf("bridge %s is missing", bridge);
}


struct Features {
        sd_event *event;
        char *host;
        char *hooks_dir;
        uint64_t hook_timeout_usec;
        char *sys_class_net;
        char *networks_dir;
        DomainDef *def;
        char *xml;

        GPtrArray *warnings; /* char* */
        GPtrArray *ran;      /* hook names that ran (any result), in order, each once */

        /* The hooks of the phase in progress. */
        const char *sub_phase;
        GStrv queue;
        size_t next;
        bool may_fail;
        HookRun *running;
        GError *pending_error; /* failed before any hook ran */
        sd_event_source *start;
        FeaturesDone done;
        void *userdata;
        bool aborting; /* features_abort owns it: free when the queue is done */
};

Features *features_new(const FeaturesConfig *config, const DomainDef *def) {
        Features *f = g_new0(Features, 1);

        f->event = sd_event_ref(config->event);
        f->host = g_strdup(config->host);
        f->hooks_dir = g_strdup(config->hooks_dir);
        f->hook_timeout_usec = config->hook_timeout_usec;
        f->sys_class_net = g_strdup(config->sys_class_net);
        f->networks_dir = g_strdup(config->networks_dir);
        f->def = domain_def_copy(def);
        f->xml = domain_def_format(def);
        f->warnings = g_ptr_array_new_with_free_func(g_free);
        f->ran = g_ptr_array_new_with_free_func(g_free);
        return f;
}

void features_free(Features *f) {
        if (!f)
                return;
        hook_run_cancel(f->running);
        sd_event_source_disable_unref(f->start);
        g_clear_error(&f->pending_error);
        sd_event_unref(f->event);
        g_free(f->host);
        g_free(f->hooks_dir);
        g_free(f->sys_class_net);
        g_free(f->networks_dir);
        domain_def_free(f->def);
        g_free(f->xml);
        g_ptr_array_unref(f->warnings);
        g_ptr_array_unref(f->ran);
        g_strfreev(f->queue);
        g_free(f);
}

const GPtrArray *features_warnings(const Features *f) {
        return f->warnings;
}

static void add_warning(Features *f, const char *message) {
        g_autofree char *w = g_strdup_printf("%s: %s", f->host, message);
        log_warning("domain '%s': %s", f->def->name, w);
        g_ptr_array_add(f->warnings, g_steal_pointer(&w));
}

static void remember_ran(Features *f, const char *name) {
        for (guint i = 0; i < f->ran->len; i++)
                if (g_str_equal(f->ran->pdata[i], name))
                        return;
        g_ptr_array_add(f->ran, g_strdup(name));
}

/* The bridges: a hook may have created one, so they come after the hooks. */
static int check_interfaces(Features *f, GError **error) {
        for (guint i = 0; i < f->def->interfaces->len; i++) {
                const DomainInterfaceDef *iface = f->def->interfaces->pdata[i];
                g_autofree char *problem = NULL, *bridge = NULL;
                int r;

                r = interface_lookup_bridge(f->networks_dir, iface, &bridge, &problem);
                if (r == 0)
                        continue;
                if (r > 0)
                        problem = host_bridge_problem(f->sys_class_net, bridge);
                if (!problem)
                        continue;
                if (domain_def_requires_interface(f->def, iface))
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "%s: %s, and the domain requires interface %s on it "
                                            "(<vmigrate:require interface='%s'/>); create the bridge there or "
                                            "migrate elsewhere",
                                            f->host, problem, iface->mac, iface->mac);
                g_autofree char *w = g_strdup_printf("%s: interface %s runs unconnected (link down)", problem,
                                                     iface->mac);
                add_warning(f, w);
        }
        return 0;
}

static void phase_done(Features *f, const GError *error) {
        FeaturesDone done = f->done;

        f->done = NULL;
        g_clear_pointer(&f->queue, g_strfreev);
        if (f->aborting) {
                features_free(f);
                return;
        }
        if (!error && g_str_equal(f->sub_phase, "prepare")) {
                g_autoptr(GError) local = NULL;
                if (check_interfaces(f, &local) < 0) {
                        done(local, f->userdata);
                        return;
                }
        }
        done(error, f->userdata);
}

static void run_next(Features *f);

static void on_hook_done(const HookResult *result, void *userdata) {
        Features *f = userdata;
        bool required = domain_def_requires_hook(f->def, result->name);

        f->running = NULL;
        if (f->aborting) {
                if (!result->ok)
                        log_warning("domain '%s': %s", f->def->name, result->message);
                run_next(f);
                return;
        }
        if (!result->ok && required && f->may_fail) {
                g_autoptr(GError) error = NULL;
                vm_error_set(&error, VM_ERROR_INCOMPATIBLE, "%s: required %s", f->host, result->message);
                phase_done(f, error);
                return;
        }
        if (!result->ok)
                add_warning(f, result->message);
        run_next(f);
}

static void run_next(Features *f) {
        if (f->pending_error) {
                g_autoptr(GError) error = g_steal_pointer(&f->pending_error);
                phase_done(f, error);
                return;
        }
        while (f->queue && f->queue[f->next]) {
                const char *name = f->queue[f->next++];
                HookRequest req = {
                        .domain_name = f->def->name,
                        .domain_uuid = f->def->uuid,
                        .phase = "migrate",
                        .sub_phase = f->sub_phase,
                        .xml = f->xml,
                };

                if (!f->aborting)
                        remember_ran(f, name);
                if (hook_run(f->event, f->hooks_dir, name, &req, f->hook_timeout_usec, on_hook_done, f,
                             &f->running) >= 0)
                        return;
                /* Out of resources to even watch it: say so, as its failure. */
                f->running = NULL;
                g_autofree char *message = g_strdup_printf("hook '%s' (migrate %s) could not be run", name,
                                                           f->sub_phase);
                if (f->aborting)
                        log_warning("domain '%s': %s", f->def->name, message);
                else if (domain_def_requires_hook(f->def, name) && f->may_fail) {
                        g_autoptr(GError) error = NULL;
                        vm_error_set(&error, VM_ERROR_INCOMPATIBLE, "%s: required %s", f->host, message);
                        phase_done(f, error);
                        return;
                } else
                        add_warning(f, message);
        }
        phase_done(f, NULL);
}

static int on_start(sd_event_source *s, void *userdata) {
        Features *f = userdata;

        f->start = sd_event_source_disable_unref(f->start);
        run_next(f);
        return 0;
}

/* Runs the queue from the loop, so that done never comes from within the
 * call that started the phase. */
static int start_phase(Features *f, const char *sub_phase, GStrv queue, bool may_fail, FeaturesDone done,
                       void *userdata) {
        int r;

        g_assert(!f->done && !f->running);
        g_strfreev(f->queue);
        f->queue = queue;
        f->next = 0;
        f->sub_phase = sub_phase;
        f->may_fail = may_fail;
        f->done = done;
        f->userdata = userdata;
        r = sd_event_add_defer(f->event, &f->start, on_start, f);
        if (r < 0) {
                f->done = NULL;
                g_clear_pointer(&f->queue, g_strfreev);
        }
        return r;
}

/* The hooks to run now; a required one that is not there fails here. */
static int phase_hooks(Features *f, const char *sub_phase, bool may_fail, GStrv *ret, GError **error) {
        g_auto(GStrv) hooks = hooks_list(f->hooks_dir);

        for (char **req = f->def->require_hooks; req && *req; req++) {
                if (g_strv_contains((const char *const *) hooks, *req))
                        continue;
                g_autofree char *message = g_strdup_printf(
                        "hook '%s' (migrate %s) is not a runnable hook in %s (missing, or refused as unsafe: see "
                        "vmigrated's log)",
                        *req, sub_phase, f->hooks_dir ? f->hooks_dir : "(no hooks directory)");
                if (may_fail)
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%s: required %s", f->host, message);
                add_warning(f, message);
        }
        *ret = g_steal_pointer(&hooks);
        return 0;
}

/* A missing required hook fails the phase before any hook runs, through
 * done like any other failure, so that the caller has one path. */
static int phase_start(Features *f, const char *sub_phase, bool may_fail, FeaturesDone done, void *userdata) {
        GStrv hooks = NULL;

        g_clear_error(&f->pending_error);
        if (phase_hooks(f, sub_phase, may_fail, &hooks, &f->pending_error) < 0)
                hooks = NULL;
        return start_phase(f, sub_phase, hooks, may_fail, done, userdata);
}

int features_prepare(Features *f, FeaturesDone done, void *userdata) {
        return phase_start(f, "prepare", true, done, userdata);
}

int features_finish(Features *f, bool may_fail, FeaturesDone done, void *userdata) {
        return phase_start(f, "finish", may_fail, done, userdata);
}

void features_abort(Features *f) {
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();

        if (!f)
                return;
        hook_run_cancel(g_steal_pointer(&f->running));
        f->done = NULL;
        f->start = sd_event_source_disable_unref(f->start);
        g_clear_error(&f->pending_error);
        for (guint i = f->ran->len; i > 0; i--)
                g_strv_builder_add(b, f->ran->pdata[i - 1]);
        f->aborting = true;
        if (f->ran->len == 0 || start_phase(f, "abort", g_strv_builder_end(b), false, NULL, NULL) < 0)
                features_free(f);
}
