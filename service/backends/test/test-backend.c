/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "test" backend: domains simulated in-process, for client developers
 * and fast tests. State transitions are real (they take event-loop time and
 * are reported like a hypervisor would report them); nothing is executed.
 *
 * Simulated timings (CLOCK_MONOTONIC):
 *   start      20 ms   shutoff → running (started/booted)
 *   shutdown   100 ms  running → shutdown at once, then → shutoff (the
 *                      "guest" acknowledges the ACPI request)
 *   destroy, suspend, resume: next event-loop iteration
 */
#include <errno.h>

#include "backend.h"
#include "domain.h"
#include "errors.h"

#define TEST_START_USEC (20 * 1000)
#define TEST_SHUTDOWN_USEC (100 * 1000)

typedef struct TestBackend {
        sd_event *event;
} TestBackend;

typedef struct TestDomain {
        TestBackend *backend;
        Domain *domain; /* borrowed: the domain owns us */

        /* The operation in flight, completed by `timer`. */
        sd_event_source *timer;
        void (*finish)(struct TestDomain *td);
        BackendDone done;
        void *userdata;
        /* A shutdown that a destroy overtook: it completes with the destroy. */
        BackendDone overtaken_done;
        void *overtaken_userdata;
} TestDomain;

static int test_init(const BackendContext *ctx, void **ret_backend_data, GError **error) {
        TestBackend *b = g_new0(TestBackend, 1);

        b->event = sd_event_ref(ctx->event);
        *ret_backend_data = b;
        return 0;
}

static void test_fini(void *backend_data) {
        TestBackend *b = backend_data;

        sd_event_unref(b->event);
        g_free(b);
}

static int test_validate(void *backend_data, const DomainDef *def, GError **error) {
        /* Anything the parser accepted can be simulated; paths are not
         * touched, so they need not exist. */
        return 0;
}

static int test_domain_attach(void *backend_data, Domain *domain, void **ret_domain_data, GError **error) {
        TestDomain *td = g_new0(TestDomain, 1);

        td->backend = backend_data;
        td->domain = domain;
        *ret_domain_data = td;
        return 0;
}

static void test_domain_cancel(TestDomain *td) {
        td->timer = sd_event_source_disable_unref(td->timer);
        td->finish = NULL;
        td->done = NULL;
        td->userdata = NULL;
        td->overtaken_done = NULL;
        td->overtaken_userdata = NULL;
}

static void test_domain_detach(void *domain_data) {
        TestDomain *td = domain_data;

        /* The core holds a reference to the domain while an operation is in
         * flight, so none can be pending here. */
        g_assert(!td->done && !td->overtaken_done);
        test_domain_cancel(td);
        g_free(td);
}

static int test_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        TestDomain *td = userdata;
        BackendDone done = td->done;
        void *done_userdata = td->userdata;
        BackendDone overtaken_done = td->overtaken_done;
        void *overtaken_userdata = td->overtaken_userdata;
        void (*finish)(TestDomain *) = td->finish;

        test_domain_cancel(td);
        finish(td);
        if (overtaken_done)
                overtaken_done(0, NULL, overtaken_userdata);
        done(0, NULL, done_userdata);
        return 0;
}

/* Replaces whatever was in flight (only destroy does that, see below). */
static int test_schedule(TestDomain *td, uint64_t delay_usec, void (*finish)(TestDomain *), BackendDone done,
                         void *userdata, GError **error) {
        sd_event_source *timer = NULL;
        int r;

        r = sd_event_add_time_relative(td->backend->event, &timer, CLOCK_MONOTONIC, delay_usec, 0, test_on_timer,
                                       td);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot schedule simulated operation: %s",
                                    g_strerror(-r));
        (void) sd_event_source_set_description(timer, "test-backend-op");

        test_domain_cancel(td);
        td->timer = timer;
        td->finish = finish;
        td->done = done;
        td->userdata = userdata;
        return 0;
}

static void finish_start(TestDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "booted", "started", "booted");
}

static void finish_shutdown(TestDomain *td) {
        /* As QEMU reports it: the guest finished, then the domain stopped. */
        domain_backend_event(td->domain, td->domain->state, td->domain->state_reason, "shutdown", "finished");
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTOFF, "shutdown", "stopped", "shutdown");
}

static void finish_destroy(TestDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTOFF, "destroyed", "stopped", "destroyed");
}

static void finish_suspend(TestDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_PAUSED, "user", "suspended", "paused");
}

static void finish_resume(TestDomain *td) {
        domain_backend_event(td->domain, DOMAIN_STATE_RUNNING, "unpaused", "resumed", "unpaused");
}

static int test_start(void *domain_data, const DomainDef *def, BackendDone done, void *userdata,
                      GError **error) {
        return test_schedule(domain_data, TEST_START_USEC, finish_start, done, userdata, error);
}

static int test_shutdown(void *domain_data, uint64_t timeout_usec, BackendDone done, void *userdata,
                         GError **error) {
        TestDomain *td = domain_data;
        int r;

        r = test_schedule(td, TEST_SHUTDOWN_USEC, finish_shutdown, done, userdata, error);
        if (r < 0)
                return r;
        domain_backend_event(td->domain, DOMAIN_STATE_SHUTDOWN, "user", NULL, NULL);
        return 0;
}

static int test_destroy(void *domain_data, BackendDone done, void *userdata, GError **error) {
        TestDomain *td = domain_data;
        BackendDone overtaken_done = td->done;
        void *overtaken_userdata = td->userdata;
        int r;

        /* Destroy overrides a shutdown in progress: the shutdown caller hears,
         * when the destroy completes, that the domain is off, which is what
         * it asked for. */
        r = test_schedule(td, 0, finish_destroy, done, userdata, error);
        if (r < 0)
                return r;
        td->overtaken_done = overtaken_done;
        td->overtaken_userdata = overtaken_userdata;
        return 0;
}

static int test_suspend(void *domain_data, BackendDone done, void *userdata, GError **error) {
        return test_schedule(domain_data, 0, finish_suspend, done, userdata, error);
}

static int test_resume(void *domain_data, BackendDone done, void *userdata, GError **error) {
        return test_schedule(domain_data, 0, finish_resume, done, userdata, error);
}

static GVariant *test_describe(void *backend_data) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "simulated", g_variant_new_boolean(true));
        return g_variant_builder_end(&b);
}

static const char *const test_domain_types[] = { "test", NULL };

const BackendOps backend_test_ops = {
        .name = "test",
        .description = "Simulated domains in the daemon itself, for client development and tests",
        .domain_types = test_domain_types,
        .init = test_init,
        .fini = test_fini,
        .validate = test_validate,
        .domain_attach = test_domain_attach,
        .domain_detach = test_domain_detach,
        .start = test_start,
        .shutdown = test_shutdown,
        .destroy = test_destroy,
        .suspend = test_suspend,
        .resume = test_resume,
        .describe = test_describe,
};
