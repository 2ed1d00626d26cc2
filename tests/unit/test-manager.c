/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The core on its own: manager and domains driven through the simulated
 * backend on a real sd-event loop, with no bus involved. */
#include <errno.h>
#include <glib/gstdio.h>

#include "backends.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "unit-util.h"

#define DEMO_XML                                                                                               \
        "<domain type='test'><name>demo</name><uuid>8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10</uuid>"               \
        "<memory unit='MiB'>256</memory><vcpu>2</vcpu></domain>"

typedef struct Fixture {
        sd_event *event;
        char *state_dir;
        char *runtime_dir;
        Manager *manager;
        GPtrArray *events;   /* "event/detail" strings, in order */
        unsigned n_added, n_removed;
        /* Completion of the last operation. */
        bool done;
        int result;
        char *error_message;
} Fixture;

static void on_added(Manager *m, Domain *d, void *userdata) {
        ((Fixture *) userdata)->n_added++;
}

static void on_removed(Manager *m, Domain *d, void *userdata) {
        ((Fixture *) userdata)->n_removed++;
}

static void on_lifecycle(Manager *m, Domain *d, const char *event, const char *detail, void *userdata) {
        Fixture *f = userdata;
        g_ptr_array_add(f->events, g_strdup_printf("%s/%s", event, detail));
}

static const ManagerObserver observer = {
        .domain_added = on_added,
        .domain_removed = on_removed,
        .domain_lifecycle = on_lifecycle,
};

static void fixture_open_manager(Fixture *f) {
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(manager_new(f->event, f->state_dir, f->runtime_dir, builtin_backends, n_builtin_backends,
                                    &f->manager, &error), ==, 0);
        g_assert_no_error(error);
        manager_set_observer(f->manager, &observer, f);
        g_assert_cmpint(manager_load_domains(f->manager), ==, 0);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autofree char *tmp = g_dir_make_tmp("test-manager-XXXXXX", NULL);

        g_assert_nonnull(tmp);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        f->state_dir = g_build_filename(tmp, "state", NULL);
        f->runtime_dir = g_build_filename(tmp, "run", NULL);
        f->events = g_ptr_array_new_with_free_func(g_free);
        fixture_open_manager(f);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        g_autofree char *top = g_path_get_dirname(f->state_dir);

        manager_free(f->manager);
        sd_event_unref(f->event);
        rm_rf(top);
        g_free(f->state_dir);
        g_free(f->runtime_dir);
        g_free(f->error_message);
        g_ptr_array_unref(f->events);
}

static void op_done(Domain *d, int r, const GError *error, void *userdata) {
        Fixture *f = userdata;

        f->done = true;
        f->result = r;
        g_free(f->error_message);
        f->error_message = error ? g_strdup(error->message) : NULL;
}

/* Runs the loop until the operation completes, with a deadline. */
static void wait_done(Fixture *f) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (!f->done && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_true(f->done);
        f->done = false;
}

static Domain *define_demo(Fixture *f) {
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        g_assert_cmpint(manager_define_xml(f->manager, DEMO_XML, strlen(DEMO_XML), &d, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(d);
        return d;
}

static bool has_event(Fixture *f, const char *what) {
        for (unsigned i = 0; i < f->events->len; i++)
                if (g_str_equal(f->events->pdata[i], what))
                        return true;
        return false;
}

static void test_lifecycle(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_demo(f);

        g_assert_cmpstr(domain_state_to_string(d->state), ==, "shutoff");
        g_assert_true(has_event(f, "defined/added"));

        g_assert_cmpint(domain_start(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(f->result, ==, 0);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        g_assert_cmpstr(d->state_reason, ==, "booted");
        g_assert_true(has_event(f, "started/booted"));

        g_assert_cmpint(domain_suspend(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_PAUSED);
        g_assert_true(has_event(f, "suspended/paused"));

        g_assert_cmpint(domain_resume(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        g_assert_true(has_event(f, "resumed/unpaused"));

        g_assert_cmpint(domain_shutdown(d, G_USEC_PER_SEC, op_done, f, &error), ==, 0);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTDOWN); /* at once, while the guest reacts */
        wait_done(f);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTOFF);
        g_assert_cmpstr(d->state_reason, ==, "shutdown");
        g_assert_true(has_event(f, "stopped/shutdown"));
        g_assert_true(manager_is_idle(f->manager));
}

static void test_wrong_state(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_demo(f);

        g_assert_cmpint(domain_resume(d, op_done, f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE);
        g_assert_nonnull(strstr(error->message, "shutoff"));
        g_clear_error(&error);

        g_assert_cmpint(domain_start(d, op_done, f, &error), ==, 0);
        /* A second operation while the first is in flight is refused. */
        g_assert_cmpint(domain_suspend(d, op_done, f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE);
        g_assert_nonnull(strstr(error->message, "busy"));
        g_clear_error(&error);
        wait_done(f);

        g_assert_cmpint(domain_start(d, op_done, f, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE);
        g_assert_nonnull(strstr(error->message, "already running"));
        g_clear_error(&error);
        g_assert_false(manager_is_idle(f->manager));
}

static void test_destroy_overtakes_shutdown(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_demo(f);
        Fixture shutdown_result = { 0 };

        g_assert_cmpint(domain_start(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(domain_shutdown(d, G_USEC_PER_SEC, op_done, &shutdown_result, &error), ==, 0);
        g_assert_cmpint(domain_destroy(d, op_done, f, &error), ==, 0);
        g_assert_no_error(error);
        wait_done(f);
        g_assert_cmpint(f->result, ==, 0);
        g_assert_true(shutdown_result.done); /* the shutdown caller got its answer too */
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTOFF);
        g_assert_cmpstr(d->state_reason, ==, "destroyed");
        g_assert_true(manager_is_idle(f->manager));
        g_free(shutdown_result.error_message);
}

static void test_persistence(Fixture *f, gconstpointer data) {
        define_demo(f);
        manager_free(f->manager);
        f->manager = NULL;

        fixture_open_manager(f);
        Domain *d = manager_lookup(f->manager, "demo");
        g_assert_nonnull(d);
        g_assert_true(domain_is_persistent(d));
        g_assert_cmpuint(d->def->memory_bytes, ==, 256u * 1024 * 1024);
        g_assert_true(manager_lookup(f->manager, "8F8A3C5E2F444B4E9F516D2B0C9B1A10") == d);
}

static void test_host_uuid_kept(Fixture *f, gconstpointer data) {
        char first[37];

        memcpy(first, f->manager->host_uuid, sizeof(first));
        manager_free(f->manager);
        f->manager = NULL;
        fixture_open_manager(f);
        g_assert_cmpstr(f->manager->host_uuid, ==, first);
}

static void test_broken_file_skipped(Fixture *f, gconstpointer data) {
        g_autofree char *bad = g_build_filename(f->state_dir, "domains",
                                                "11111111-2222-3333-4444-555555555555.xml", NULL);

        define_demo(f);
        g_assert_true(g_file_set_contents(bad, "<domain", -1, NULL));
        manager_free(f->manager);
        f->manager = NULL;
        fixture_open_manager(f);
        g_assert_nonnull(manager_lookup(f->manager, "demo"));
        g_assert_true(g_file_test(bad, G_FILE_TEST_EXISTS)); /* left for the admin */
}

static void test_duplicates(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        const char *same_name = "<domain type='test'><name>demo</name><memory>1024</memory><vcpu>1</vcpu></domain>";
        const char *same_uuid = "<domain type='test'><name>other</name><uuid>8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10"
                                "</uuid><memory>1024</memory><vcpu>1</vcpu></domain>";
        Domain *d;

        define_demo(f);
        g_assert_cmpint(manager_define_xml(f->manager, same_name, strlen(same_name), &d, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_DOMAIN_EXISTS);
        g_assert_nonnull(strstr(error->message, "demo"));
        g_clear_error(&error);
        g_assert_cmpint(manager_define_xml(f->manager, same_uuid, strlen(same_uuid), &d, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_DOMAIN_EXISTS);
        g_assert_nonnull(strstr(error->message, "8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10"));
}

static void test_update_while_running(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        const char *bigger = "<domain type='test'><name>demo</name><uuid>8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10"
                             "</uuid><memory unit='MiB'>512</memory><vcpu>4</vcpu></domain>";
        Domain *d = define_demo(f), *same = NULL;

        g_assert_cmpint(domain_start(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(manager_define_xml(f->manager, bigger, strlen(bigger), &same, &error), ==, 0);
        g_assert_true(same == d);
        g_assert_true(has_event(f, "defined/updated"));
        g_assert_cmpuint(d->def->vcpus, ==, 2); /* running: next boot only */
        g_assert_cmpint(domain_destroy(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpuint(d->def->vcpus, ==, 4);
        g_assert_cmpuint(d->def->memory_bytes, ==, 512u * 1024 * 1024);
}

static void test_transient(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *file = g_build_filename(f->state_dir, "domains",
                                                 "8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10.xml", NULL);
        Domain *d = NULL;

        g_assert_cmpint(manager_create_xml(f->manager, DEMO_XML, strlen(DEMO_XML), op_done, f, &d, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(f->result, ==, 0);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
        g_assert_false(domain_is_persistent(d));
        g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));

        g_assert_cmpint(domain_destroy(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_null(manager_lookup(f->manager, "demo"));
        g_assert_cmpuint(f->n_removed, ==, 1);
}

static void test_undefine_running(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *file = g_build_filename(f->state_dir, "domains",
                                                 "8f8a3c5e-2f44-4b4e-9f51-6d2b0c9b1a10.xml", NULL);
        Domain *d = define_demo(f);

        g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
        g_assert_cmpint(domain_start(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_cmpint(domain_undefine(d, &error), ==, 0);
        g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
        g_assert_false(domain_is_persistent(d));
        g_assert_nonnull(manager_lookup(f->manager, "demo")); /* still running, now transient */

        g_assert_cmpint(domain_undefine(d, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE);
        g_clear_error(&error);

        g_assert_cmpint(domain_destroy(d, op_done, f, &error), ==, 0);
        wait_done(f);
        g_assert_null(manager_lookup(f->manager, "demo"));
}

static void test_unknown_type(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        const char *xml = "<domain type='xen'><name>x</name><memory>1024</memory><vcpu>1</vcpu></domain>";
        Domain *d;

        g_assert_cmpint(manager_define_xml(f->manager, xml, strlen(xml), &d, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_BACKEND);
        if (error) {
                g_assert_nonnull(strstr(error->message, "'xen'"));
                g_assert_nonnull(strstr(error->message, "'test'")); /* says what does run */
        }
}

static void test_describe_backends(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) v = g_variant_ref_sink(manager_describe_backends(f->manager));
        g_autoptr(GVariant) test = g_variant_lookup_value(v, "test", G_VARIANT_TYPE("a{sv}"));
        gboolean available = false;

        g_assert_nonnull(test);
        g_assert_true(g_variant_lookup(test, "available", "b", &available));
        g_assert_true(available);
}

static void test_capabilities(Fixture *f, gconstpointer data) {
        g_autofree char *xml = manager_capabilities_xml(f->manager);

        g_assert_nonnull(strstr(xml, f->manager->host_uuid));
        g_assert_nonnull(strstr(xml, "<backend name='test' available='yes'>"));
}

static void on_settled(Manager *m, void *userdata) {
        (*(unsigned *) userdata)++;
}

/* The daemon takes its bus name when no domain is settling any more. */
static void test_settled(Fixture *f, gconstpointer data) {
        Domain *d = define_demo(f);
        unsigned calls = 0;

        manager_when_settled(f->manager, on_settled, &calls);
        g_assert_cmpuint(calls, ==, 1); /* nothing settling: at once */

        domain_backend_settling(d, true);
        manager_when_settled(f->manager, on_settled, &calls);
        g_assert_cmpuint(calls, ==, 1);
        domain_backend_settling(d, true);
        g_assert_cmpuint(calls, ==, 1);
        domain_backend_settling(d, false);
        g_assert_cmpuint(calls, ==, 2);
        domain_backend_settling(d, true);
        domain_backend_settling(d, false);
        g_assert_cmpuint(calls, ==, 2); /* one call per wait */

        domain_backend_settling(d, true);
        manager_when_settled(f->manager, on_settled, &calls);
        manager_when_settled(f->manager, NULL, NULL); /* stops waiting */
        domain_backend_settling(d, false);
        g_assert_cmpuint(calls, ==, 2);
}

/* A backend's warning lands on the domain's job, with this host's name. */
static void test_backend_warning(Fixture *f, gconstpointer data) {
        Domain *d = define_demo(f);
        g_autofree char *host = manager_get_hostname();
        g_autofree char *expected = g_strdup_printf("%s: interface 52:54:00:00:00:01: attach failed", host);
        Job *job;

        domain_backend_warning(d, "no job: only logged");
        job = job_new(f->manager, JOB_MIGRATION_IN, d, "host-a");
        domain_backend_warning(d, "interface 52:54:00:00:00:01: attach failed");
        g_assert_cmpuint(job->warnings->len, ==, 1);
        g_assert_cmpstr(job->warnings->pdata[0], ==, expected);
        job_end(job, JOB_PHASE_FAILED, "test over");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);

#define ADD(path, fn) g_test_add("/manager/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("lifecycle", test_lifecycle);
        ADD("wrong-state", test_wrong_state);
        ADD("destroy-overtakes-shutdown", test_destroy_overtakes_shutdown);
        ADD("persistence", test_persistence);
        ADD("host-uuid-kept", test_host_uuid_kept);
        ADD("broken-file-skipped", test_broken_file_skipped);
        ADD("duplicates", test_duplicates);
        ADD("update-while-running", test_update_while_running);
        ADD("transient", test_transient);
        ADD("undefine-running", test_undefine_running);
        ADD("unknown-type", test_unknown_type);
        ADD("describe-backends", test_describe_backends);
        ADD("capabilities", test_capabilities);
        ADD("settled", test_settled);
        ADD("backend-warning", test_backend_warning);
        return g_test_run();
}
