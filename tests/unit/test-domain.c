/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A domain (domain.h) as a client of its bus object sees it: which
 * operation each state allows and what a refusal says, what the observer
 * hears (State, StateReason, Persistent, Lifecycle) and in which order,
 * Undefine, what the backend reports on its own, settling, warnings, the
 * XML and the migration options. Domains run on the simulated backend on
 * a real sd-event loop; a second backend, "plain", is the simulated
 * lifecycle without migration, whose Start can be made to fail. */
#include <string.h>

#include <glib/gstdio.h>

#include "backends.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "unit-util.h"

typedef struct Fixture {
        TestHost host;   /* its manager has the "test" and "plain" backends and our observer */
        GPtrArray *log;  /* what the observer and the completions heard, one line each, in order */
        unsigned n_done; /* completions since the last wait_done() */
        int last_r;      /* of the last completion */
        VmError last_code;
} Fixture;

/* ---- the "plain" backend ---- */

static struct {
        sd_event *event;
        enum {
                PLAIN_START_RUNS,
                PLAIN_START_REFUSED, /* at once: the call fails */
                PLAIN_START_FAILS,   /* later: the completion fails, the guest never ran */
        } start;
} plain;

static BackendOps plain_ops; /* filled in by main() from the simulated backend's */

static int plain_init(const BackendContext *ctx, void **ret_backend_data, GError **error) {
        plain.event = ctx->event;
        return backend_test_ops.init(ctx, ret_backend_data, error);
}

typedef struct PlainFailure {
        sd_event_source *source;
        BackendDone done;
        void *userdata;
} PlainFailure;

static int on_plain_failure(sd_event_source *s, void *userdata) {
        g_autofree PlainFailure *failure = userdata;
        g_autoptr(GError) error =
                g_error_new_literal(VM_ERROR, VM_ERROR_BACKEND_FAILED, "the guest did not boot");

        sd_event_source_disable_unref(failure->source);
        failure->done(-vm_error_errno(VM_ERROR_BACKEND_FAILED), error, failure->userdata);
        return 0;
}

static int plain_start(void *domain_data, const DomainDef *def, BackendDone done, void *userdata,
                       GError **error) {
        PlainFailure *failure;

        switch (plain.start) {
        case PLAIN_START_RUNS:
                return backend_test_ops.start(domain_data, def, done, userdata, error);
        case PLAIN_START_REFUSED:
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "no room for the guest");
        case PLAIN_START_FAILS:
                failure = g_new0(PlainFailure, 1);
                failure->done = done;
                failure->userdata = userdata;
                g_assert_cmpint(sd_event_add_defer(plain.event, &failure->source, on_plain_failure, failure),
                                >=, 0);
                return 0;
        }
        g_assert_not_reached();
}

static const char *const plain_types[] = { "plain", NULL };

static void plain_ops_init(void) {
        plain_ops = (BackendOps){
                .name = "plain",
                .description = "The simulated lifecycle, without migration",
                .domain_types = plain_types,
                .init = plain_init,
                .fini = backend_test_ops.fini,
                .validate = backend_test_ops.validate,
                .domain_attach = backend_test_ops.domain_attach,
                .domain_detach = backend_test_ops.domain_detach,
                .domain_forget = backend_test_ops.domain_forget,
                .start = plain_start,
                .shutdown = backend_test_ops.shutdown,
                .destroy = backend_test_ops.destroy,
                .suspend = backend_test_ops.suspend,
                .resume = backend_test_ops.resume,
        };
}

static const BackendOps *const backends[] = { &backend_test_ops, &plain_ops };

/* ---- the observer and the log ---- */

static void log_line(Fixture *f, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void log_line(Fixture *f, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        g_ptr_array_add(f->log, g_strdup_vprintf(format, ap));
        va_end(ap);
}

/* The log holds exactly these lines (NULL-terminated), in order; then it
 * is emptied. */
static void assert_log(Fixture *f, ...) G_GNUC_NULL_TERMINATED;
static void assert_log(Fixture *f, ...) {
        g_autoptr(GPtrArray) expected = g_ptr_array_new();
        bool same;
        va_list ap;

        va_start(ap, f);
        for (const char *line = va_arg(ap, const char *); line; line = va_arg(ap, const char *))
                g_ptr_array_add(expected, (gpointer) line);
        va_end(ap);

        same = expected->len == f->log->len;
        for (unsigned i = 0; same && i < expected->len; i++)
                same = g_str_equal(expected->pdata[i], f->log->pdata[i]);
        if (!same) {
                for (unsigned i = 0; i < expected->len; i++)
                        g_test_message("expected: %s", (const char *) expected->pdata[i]);
                for (unsigned i = 0; i < f->log->len; i++)
                        g_test_message("heard:    %s", (const char *) f->log->pdata[i]);
                g_test_fail();
        }
        g_ptr_array_set_size(f->log, 0);
}

static void on_added(Manager *m, Domain *d, void *userdata) {
        log_line(userdata, "%s: added", domain_name(d));
}

static void on_removed(Manager *m, Domain *d, void *userdata) {
        log_line(userdata, "%s: removed", domain_name(d));
}

/* "vm1: changed state,reason: running (booted)": which properties, and
 * what State and StateReason read when the observer hears it. */
static void on_changed(Manager *m, Domain *d, DomainChange what, void *userdata) {
        static const struct {
                DomainChange flag;
                const char *name;
        } names[] = {
                { DOMAIN_CHANGE_STATE, "state" },
                { DOMAIN_CHANGE_STATE_REASON, "reason" },
                { DOMAIN_CHANGE_PERSISTENT, "persistent" },
                { DOMAIN_CHANGE_CONFIG, "config" },
                { DOMAIN_CHANGE_JOB, "job" },
        };
        g_autoptr(GString) which = g_string_new(NULL);

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                if (what & names[i].flag)
                        g_string_append_printf(which, "%s%s", which->len ? "," : "", names[i].name);
        log_line(userdata, "%s: changed %s: %s (%s)", domain_name(d), which->str,
                 domain_state_to_string(d->state), d->state_reason ? d->state_reason : "NULL");
}

static void on_lifecycle(Manager *m, Domain *d, const char *event, const char *detail, void *userdata) {
        log_line(userdata, "%s: lifecycle %s/%s", domain_name(d), event, detail ? detail : "NULL");
}

static void on_job_changed(Manager *m, Job *j, JobChange what, void *userdata) {
        if (what & JOB_CHANGE_WARNINGS)
                log_line(userdata, "%s: job warning: %s", domain_name(j->domain),
                         (const char *) j->warnings->pdata[j->warnings->len - 1]);
}

static const ManagerObserver observer = {
        .domain_added = on_added,
        .domain_removed = on_removed,
        .domain_changed = on_changed,
        .domain_lifecycle = on_lifecycle,
        .job_changed = on_job_changed,
};

static void on_settled(Manager *m, void *userdata) {
        log_line(userdata, "settled");
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        test_host_setup(&f->host, data);
        /* The same host, its manager made again with the plain backend. */
        g_autofree char *state = path_in(&f->host, "state"), *run = path_in(&f->host, "run");
        manager_free(f->host.manager);
        f->host.manager = NULL;
        g_assert_cmpint(manager_new(f->host.event, state, run, backends, G_N_ELEMENTS(backends),
                                    &f->host.manager, &error),
                        ==, 0);
        g_assert_no_error(error);
        f->log = g_ptr_array_new_with_free_func(g_free);
        manager_set_observer(f->host.manager, &observer, f);
        plain.start = PLAIN_START_RUNS;
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        test_host_teardown(&f->host, data);
        g_ptr_array_unref(f->log);
}

/* ---- operations as a client asks for them ---- */

typedef struct Call {
        Fixture *f;
        DomainOp op;
} Call;

/* "vm1: start ok" or "vm1: start failed: <message>" */
static void on_done(Domain *d, int r, const GError *error, void *userdata) {
        g_autofree Call *call = userdata;
        Fixture *f = call->f;

        f->n_done++;
        f->last_r = r;
        f->last_code = error ? (VmError) error->code : 0;
        if (r >= 0)
                log_line(f, "%s: %s ok", domain_name(d), domain_op_to_string(call->op));
        else
                log_line(f, "%s: %s failed: %s", domain_name(d), domain_op_to_string(call->op),
                         error ? error->message : "NULL");
}

/* What the method call returns at once; the completion goes to the log. */
static int request(Fixture *f, Domain *d, DomainOp op, GError **error) {
        Call *call = g_new0(Call, 1);
        int r;

        *call = (Call){ .f = f, .op = op };
        switch (op) {
        case DOMAIN_OP_START:
                r = domain_start(d, on_done, call, error);
                break;
        case DOMAIN_OP_SHUTDOWN:
                r = domain_shutdown(d, G_USEC_PER_SEC, on_done, call, error);
                break;
        case DOMAIN_OP_DESTROY:
                r = domain_destroy(d, on_done, call, error);
                break;
        case DOMAIN_OP_SUSPEND:
                r = domain_suspend(d, on_done, call, error);
                break;
        case DOMAIN_OP_RESUME:
                r = domain_resume(d, on_done, call, error);
                break;
        default:
                g_assert_not_reached();
        }
        if (r < 0)
                g_free(call);
        return r;
}

/* Runs the loop until n completions came, with a deadline. */
static void wait_done(Fixture *f, unsigned n) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (f->n_done < n && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(f->host.event, 100 * 1000), >=, 0);
        g_assert_cmpuint(f->n_done, ==, n);
        f->n_done = 0;
}

/* Asks for op, which must be accepted and succeed. */
static void run_op(Fixture *f, Domain *d, DomainOp op) {
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(request(f, d, op, &error), ==, 0);
        g_assert_no_error(error);
        wait_done(f, 1);
        g_assert_cmpint(f->last_r, >=, 0);
}

/* op is refused at once with InvalidState and exactly this message, and
 * nothing happens. */
static void assert_refused(Fixture *f, Domain *d, DomainOp op, const char *message) {
        g_autoptr(GError) error = NULL;
        DomainState state = d->state;
        int r = request(f, d, op, &error);

        g_assert_cmpint(r, ==, -vm_error_errno(VM_ERROR_INVALID_STATE));
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE);
        if (error && !g_str_equal(error->message, message)) {
                g_test_message("%s: expected \"%s\", got \"%s\"", domain_op_to_string(op), message,
                               error->message);
                g_test_fail();
        }
        if (r >= 0) /* accepted after all: let it end before the next step */
                wait_done(f, 1);
        g_assert_cmpint(d->state, ==, state);
        assert_log(f, NULL);
}

static char *domain_xml(const char *type, const char *name, const char *memory_mib, unsigned vcpus) {
        return g_strdup_printf("<domain type='%s'><name>%s</name><uuid>" UUID_A "</uuid>"
                               "<memory unit='MiB'>%s</memory><vcpu>%u</vcpu></domain>",
                               type, name, memory_mib, vcpus);
}

static Domain *define_xml(Fixture *f, const char *xml) {
        g_autoptr(GError) error = NULL;
        Domain *d = NULL;

        g_assert_cmpint(manager_define_xml(f->host.manager, xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        return d;
}

/* vm1, shut off, and the log emptied. */
static Domain *define_vm1(Fixture *f) {
        Domain *d = define_domain(&f->host, "vm1", UUID_A, "256");

        assert_log(f, "vm1: added", "vm1: lifecycle defined/added", NULL);
        return d;
}

/* vm1, running, and the log emptied. */
static Domain *running_vm1(Fixture *f) {
        Domain *d = define_vm1(f);

        start_domain(&f->host, d);
        g_ptr_array_set_size(f->log, 0);
        return d;
}

/* A transient vm1 (CreateXML), running, and the log emptied. */
static Domain *create_vm1(Fixture *f) {
        g_autofree char *xml = domain_xml("test", "vm1", "256", 2);
        g_autoptr(GError) error = NULL;
        Call *call = g_new0(Call, 1);
        Domain *d = NULL;

        *call = (Call){ .f = f, .op = DOMAIN_OP_START };
        g_assert_cmpint(manager_create_xml(f->host.manager, xml, strlen(xml), on_done, call, &d, &error), ==,
                        0);
        g_assert_no_error(error);
        wait_done(f, 1);
        g_assert_false(domain_is_persistent(d));
        assert_log(f, "vm1: added", "vm1: changed state,reason: running (booted)",
                   "vm1: lifecycle started/booted", "vm1: start ok", NULL);
        return d;
}

static char *domain_file(Fixture *f) {
        return g_build_filename(f->host.top, "state", "domains", UUID_A ".xml", NULL);
}

/* ---- name, UUID, XML ---- */

static void test_name_and_uuid(Fixture *f, gconstpointer data) {
        const char *no_uuid = "<domain type='test'><name>vm2</name><memory unit='MiB'>64</memory>"
                              "<vcpu>1</vcpu></domain>";
        char canonical[37];
        Domain *d;

        /* Any spelling of the UUID; the domain says it the canonical way. */
        d = define_domain(&f->host, "vm1", "8F8A3C5E2F444B4E9F516D2B0C9B1A10", "256");
        g_assert_cmpstr(domain_name(d), ==, "vm1");
        g_assert_cmpstr(domain_uuid(d), ==, UUID_A);

        /* None given: the one generated is the domain's for good. */
        d = define_xml(f, no_uuid);
        g_assert_cmpstr(domain_name(d), ==, "vm2");
        g_assert_true(domain_uuid_parse(domain_uuid(d), canonical));
        g_assert_cmpstr(domain_uuid(d), ==, canonical);
        g_assert_cmpstr(domain_uuid(d), ==, d->def->uuid);
        g_assert_true(manager_lookup(f->host.manager, domain_uuid(d)) == d);
}

static void test_xml_round_trip(Fixture *f, gconstpointer data) {
        const char *xml =
                "<domain type='test'><name>vm1</name><uuid>" UUID_A "</uuid><title>Web front</title>"
                "<description>test-dirty-rate=1048576</description>"
                "<memory unit='MiB'>256</memory><vcpu>2</vcpu>"
                "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><kernel>/boot/vmlinuz</kernel>"
                "<cmdline>console=ttyS0</cmdline></os>"
                "<cpu mode='host-model'><feature policy='disable' name='avx2'/></cpu>"
                "<on_crash>preserve</on_crash>"
                "<metadata><vmigrate:migration xmlns:vmigrate='" DOMAIN_XMLNS_MIGRATION "'>"
                "<vmigrate:require interface='52:54:00:AA:00:01'/></vmigrate:migration></metadata>"
                "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>"
                "<source file='/var/lib/vm1.qcow2'/><target dev='vda' bus='virtio'/></disk>"
                "<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:AA:00:01'/>"
                "<model type='virtio'/></interface><serial type='pty'/></devices></domain>";
        g_autoptr(DomainDef) given = parse_def(xml);
        Domain *d = define_xml(f, xml);
        g_autofree char *out = domain_get_xml(d, true);
        g_autoptr(DomainDef) back = parse_def(out);

        g_assert_true(domain_def_equal(back, given));
        g_assert_nonnull(strstr(out, "<title>Web front</title>"));
        g_assert_nonnull(strstr(out, "52:54:00:aa:00:01"));
}

/* While the domain runs, its XML is the definition it runs with; what
 * DefineXML changed shows once it stopped. */
static void test_xml_live_while_active(Fixture *f, gconstpointer data) {
        g_autofree char *bigger = domain_xml("test", "vm1", "512", 4);
        Domain *d = running_vm1(f);

        g_assert_true(define_xml(f, bigger) == d);
        g_autofree char *live = domain_get_xml(d, true);
        g_autoptr(DomainDef) running = parse_def(live);
        g_assert_cmpuint(running->memory_bytes, ==, 256ULL << 20);
        g_assert_cmpuint(running->vcpus, ==, 2);

        run_op(f, d, DOMAIN_OP_DESTROY);
        g_autofree char *next = domain_get_xml(d, true);
        g_autoptr(DomainDef) persistent = parse_def(next);
        g_assert_cmpuint(persistent->memory_bytes, ==, 512ULL << 20);
        g_assert_cmpuint(persistent->vcpus, ==, 4);
}

/* ---- which state allows which operation ---- */

typedef struct StateCase {
        DomainOp op;
        /* The refusal in each state, after "domain 'NAME' "; NULL: done. */
        const char *refusal[_DOMAIN_STATE_MAX];
        DomainState after; /* where the operation leads */
} StateCase;

static const StateCase state_cases[] = {
        {
                .op = DOMAIN_OP_START,
                .refusal = {
                        [DOMAIN_STATE_RUNNING] = "is already running",
                        [DOMAIN_STATE_PAUSED] = "is already paused",
                        [DOMAIN_STATE_SHUTDOWN] = "is already shutdown",
                },
                .after = DOMAIN_STATE_RUNNING,
        },
        {
                .op = DOMAIN_OP_SHUTDOWN,
                .refusal = {
                        [DOMAIN_STATE_SHUTOFF] = "is not running (shutoff)",
                        [DOMAIN_STATE_SHUTDOWN] = "is already shutting down; use Destroy to stop it now",
                        [DOMAIN_STATE_CRASHED] = "is not running (crashed)",
                },
                .after = DOMAIN_STATE_SHUTOFF,
        },
        {
                .op = DOMAIN_OP_DESTROY,
                .refusal = {
                        [DOMAIN_STATE_SHUTOFF] = "is not running (shutoff)",
                        [DOMAIN_STATE_CRASHED] = "is not running (crashed)",
                },
                .after = DOMAIN_STATE_SHUTOFF,
        },
        {
                .op = DOMAIN_OP_SUSPEND,
                .refusal = {
                        [DOMAIN_STATE_SHUTOFF] = "is shutoff; only a running domain can be suspended",
                        [DOMAIN_STATE_PAUSED] = "is already paused",
                        [DOMAIN_STATE_SHUTDOWN] = "is shutdown; only a running domain can be suspended",
                        [DOMAIN_STATE_CRASHED] = "is crashed; only a running domain can be suspended",
                },
                .after = DOMAIN_STATE_PAUSED,
        },
        {
                .op = DOMAIN_OP_RESUME,
                .refusal = {
                        [DOMAIN_STATE_SHUTOFF] = "is shutoff; only a paused domain can be resumed",
                        [DOMAIN_STATE_RUNNING] = "is already running",
                        [DOMAIN_STATE_SHUTDOWN] = "is shutdown; only a paused domain can be resumed",
                        [DOMAIN_STATE_CRASHED] = "is crashed; only a paused domain can be resumed",
                },
                .after = DOMAIN_STATE_RUNNING,
        },
};

/* "vm-<state>", in that state with no operation in flight, and the log
 * emptied. Shutting down and crashed are what the guest did on its own. */
static Domain *domain_in(Fixture *f, DomainState state) {
        g_autofree char *name = g_strconcat("vm-", domain_state_to_string(state), NULL);
        g_autofree char *uuid = g_strdup_printf("00000000-0000-4000-8000-%012u", (unsigned) state + 1);
        Domain *d = define_domain(&f->host, name, uuid, "64");

        if (state != DOMAIN_STATE_SHUTOFF)
                start_domain(&f->host, d);
        if (state == DOMAIN_STATE_PAUSED)
                run_op(f, d, DOMAIN_OP_SUSPEND);
        else if (state == DOMAIN_STATE_SHUTDOWN)
                domain_backend_event(d, DOMAIN_STATE_SHUTDOWN, "user", NULL, NULL);
        else if (state == DOMAIN_STATE_CRASHED)
                domain_backend_event(d, DOMAIN_STATE_CRASHED, "panicked", "crashed", "panicked");
        g_assert_cmpint(d->state, ==, state);
        g_assert_cmpint(d->pending_op, ==, DOMAIN_OP_NONE);
        g_ptr_array_set_size(f->log, 0);
        return d;
}

/* One domain in each state; the operation is refused at once where the
 * table says, and elsewhere done, leading to the same state. */
static void test_states(Fixture *f, gconstpointer data) {
        const StateCase *c = data;

        for (DomainState s = 0; s < _DOMAIN_STATE_MAX; s++) {
                g_autoptr(GError) error = NULL;
                Domain *d = domain_in(f, s);

                if (c->refusal[s]) {
                        g_autofree char *message =
                                g_strdup_printf("domain '%s' %s", domain_name(d), c->refusal[s]);
                        assert_refused(f, d, c->op, message);
                        continue;
                }
                g_assert_cmpint(request(f, d, c->op, &error), ==, 0);
                g_assert_no_error(error);
                wait_done(f, 1);
                g_assert_cmpint(f->last_r, >=, 0);
                g_assert_cmpstr(domain_state_to_string(d->state), ==, domain_state_to_string(c->after));
                g_ptr_array_set_size(f->log, 0);
        }
}

/* ---- one operation at a time ---- */

static void assert_all_refused(Fixture *f, Domain *d, const char *message) {
        for (DomainOp op = DOMAIN_OP_START; op < _DOMAIN_OP_MAX; op++)
                assert_refused(f, d, op, message);
}

/* While Start, Suspend, Resume or Destroy is in flight every operation is
 * refused, naming the one in flight, before any check of the state. */
static void test_busy(Fixture *f, gconstpointer data) {
        static const DomainOp ops[] = { DOMAIN_OP_START, DOMAIN_OP_SUSPEND, DOMAIN_OP_RESUME,
                                        DOMAIN_OP_DESTROY };
        Domain *d = define_vm1(f);

        for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *message =
                        g_strdup_printf("domain 'vm1' is busy: '%s' is in progress; wait for it to finish",
                                        domain_op_to_string(ops[i]));

                g_assert_cmpint(request(f, d, ops[i], &error), ==, 0);
                g_assert_no_error(error);
                assert_all_refused(f, d, message);
                wait_done(f, 1);
                g_ptr_array_set_size(f->log, 0);
        }
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTOFF);
}

/* A Shutdown in flight refuses all but Destroy, and says so. */
static void test_busy_shutdown(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = running_vm1(f);
        const char *message =
                "domain 'vm1' is busy: 'shutdown' is in progress; wait for it to finish or use Destroy";

        g_assert_cmpint(request(f, d, DOMAIN_OP_SHUTDOWN, &error), ==, 0);
        g_ptr_array_set_size(f->log, 0);
        for (DomainOp op = DOMAIN_OP_START; op < _DOMAIN_OP_MAX; op++)
                if (op != DOMAIN_OP_DESTROY)
                        assert_refused(f, d, op, message);
        wait_done(f, 1);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTOFF);
}

/* Destroy interrupts a Shutdown that hangs: both callers get their answer
 * once the domain is off, and the domain takes the next operation. */
static void test_destroy_overtakes_shutdown(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = running_vm1(f);

        g_assert_cmpint(request(f, d, DOMAIN_OP_SHUTDOWN, &error), ==, 0);
        assert_log(f, "vm1: changed state,reason: shutdown (user)", NULL);
        g_assert_cmpint(request(f, d, DOMAIN_OP_DESTROY, &error), ==, 0);
        g_assert_no_error(error);
        assert_all_refused(f, d, "domain 'vm1' is busy: 'destroy' is in progress; wait for it to finish");

        wait_done(f, 2);
        assert_log(f, "vm1: changed state,reason: shutoff (destroyed)", "vm1: lifecycle stopped/destroyed",
                   "vm1: shutdown ok", "vm1: destroy ok", NULL);
        g_assert_cmpint(d->pending_op, ==, DOMAIN_OP_NONE);
        run_op(f, d, DOMAIN_OP_START);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

/* ---- what the observer hears, in order, before the caller's answer ---- */

static void test_start_notifies(Fixture *f, gconstpointer data) {
        Domain *d = define_vm1(f);

        g_assert_false(domain_is_active(d));
        run_op(f, d, DOMAIN_OP_START);
        assert_log(f, "vm1: changed state,reason: running (booted)", "vm1: lifecycle started/booted",
                   "vm1: start ok", NULL);
        g_assert_true(domain_is_active(d));
}

static void test_suspend_notifies(Fixture *f, gconstpointer data) {
        Domain *d = running_vm1(f);

        run_op(f, d, DOMAIN_OP_SUSPEND);
        assert_log(f, "vm1: changed state,reason: paused (user)", "vm1: lifecycle suspended/paused",
                   "vm1: suspend ok", NULL);
        g_assert_true(domain_is_active(d));
}

static void test_resume_notifies(Fixture *f, gconstpointer data) {
        Domain *d = running_vm1(f);

        run_op(f, d, DOMAIN_OP_SUSPEND);
        g_ptr_array_set_size(f->log, 0);
        run_op(f, d, DOMAIN_OP_RESUME);
        assert_log(f, "vm1: changed state,reason: running (unpaused)", "vm1: lifecycle resumed/unpaused",
                   "vm1: resume ok", NULL);
}

/* Shutting down at once, off when the guest has finished. */
static void test_shutdown_notifies(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = running_vm1(f);

        g_assert_cmpint(request(f, d, DOMAIN_OP_SHUTDOWN, &error), ==, 0);
        assert_log(f, "vm1: changed state,reason: shutdown (user)", NULL);
        g_assert_true(domain_is_active(d));
        wait_done(f, 1);
        assert_log(f, "vm1: lifecycle shutdown/finished", "vm1: changed state,reason: shutoff (shutdown)",
                   "vm1: lifecycle stopped/shutdown", "vm1: shutdown ok", NULL);
        g_assert_false(domain_is_active(d));
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d); /* persistent: stays */
}

static void test_destroy_notifies(Fixture *f, gconstpointer data) {
        Domain *d = running_vm1(f);

        run_op(f, d, DOMAIN_OP_SUSPEND);
        g_ptr_array_set_size(f->log, 0);
        run_op(f, d, DOMAIN_OP_DESTROY);
        assert_log(f, "vm1: changed state,reason: shutoff (destroyed)", "vm1: lifecycle stopped/destroyed",
                   "vm1: destroy ok", NULL);
        g_assert_false(domain_is_active(d));
}

/* ---- the backend fails ---- */

static Domain *define_plain(Fixture *f) {
        g_autofree char *xml = domain_xml("plain", "vp", "64", 1);
        Domain *d = define_xml(f, xml);

        g_ptr_array_set_size(f->log, 0);
        return d;
}

/* The backend's refusal is the caller's answer; the domain stays idle. */
static void test_backend_refuses(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_plain(f);

        plain.start = PLAIN_START_REFUSED;
        g_assert_cmpint(request(f, d, DOMAIN_OP_START, &error), ==,
                        -vm_error_errno(VM_ERROR_BACKEND_FAILED));
        g_assert_error(error, VM_ERROR, VM_ERROR_BACKEND_FAILED);
        g_assert_cmpstr(error ? error->message : NULL, ==, "no room for the guest");
        g_assert_cmpint(d->pending_op, ==, DOMAIN_OP_NONE);
        assert_log(f, NULL);

        plain.start = PLAIN_START_RUNS;
        run_op(f, d, DOMAIN_OP_START);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

/* A failure that comes later is the caller's answer, with the backend's
 * error; the domain stays as it was and takes the next operation. */
static void test_backend_fails_later(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        Domain *d = define_plain(f);

        plain.start = PLAIN_START_FAILS;
        g_assert_cmpint(request(f, d, DOMAIN_OP_START, &error), ==, 0);
        wait_done(f, 1);
        g_assert_cmpint(f->last_r, ==, -vm_error_errno(VM_ERROR_BACKEND_FAILED));
        g_assert_cmpint(f->last_code, ==, VM_ERROR_BACKEND_FAILED);
        assert_log(f, "vp: start failed: the guest did not boot", NULL);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_SHUTOFF);

        plain.start = PLAIN_START_RUNS;
        run_op(f, d, DOMAIN_OP_START);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

/* CreateXML whose start fails: the transient domain goes, once, before
 * the caller hears why. */
static void test_backend_create_fails(Fixture *f, gconstpointer data) {
        g_autofree char *xml = domain_xml("plain", "vp", "64", 1);
        g_autoptr(GError) error = NULL;
        Call *call = g_new0(Call, 1);
        Domain *d = NULL;

        plain.start = PLAIN_START_FAILS;
        *call = (Call){ .f = f, .op = DOMAIN_OP_START };
        g_assert_cmpint(manager_create_xml(f->host.manager, xml, strlen(xml), on_done, call, &d, &error), ==,
                        0);
        g_assert_no_error(error);
        wait_done(f, 1);
        assert_log(f, "vp: added", "vp: removed", "vp: start failed: the guest did not boot", NULL);
        g_assert_null(manager_lookup(f->host.manager, "vp"));
}

/* ---- Undefine ---- */

/* Shut off: the definition and the object go. */
static void test_undefine_shut_off(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *file = domain_file(f);
        g_autoptr(Domain) d = domain_ref(define_vm1(f));

        g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
        g_assert_cmpint(domain_undefine(d, &error), ==, 0);
        g_assert_no_error(error);
        assert_log(f, "vm1: lifecycle undefined/removed", "vm1: removed", NULL);
        g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
        g_assert_null(manager_lookup(f->host.manager, "vm1"));
        g_assert_null(d->manager);
}

/* Running: the definition goes, the domain runs on as a transient one and
 * goes when it stops. */
static void test_undefine_running(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *file = domain_file(f);
        g_autoptr(Domain) d = domain_ref(running_vm1(f));

        g_assert_cmpint(domain_undefine(d, &error), ==, 0);
        g_assert_no_error(error);
        assert_log(f, "vm1: lifecycle undefined/removed", "vm1: changed persistent: running (booted)", NULL);
        g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
        g_assert_false(domain_is_persistent(d));
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);

        run_op(f, d, DOMAIN_OP_DESTROY);
        assert_log(f, "vm1: changed state,reason: shutoff (destroyed)", "vm1: lifecycle stopped/destroyed",
                   "vm1: removed", "vm1: destroy ok", NULL);
        g_assert_null(manager_lookup(f->host.manager, "vm1"));
}

/* While Start is in flight the domain counts as running: it stays, and
 * is transient once it runs. */
static void test_undefine_starting(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Domain) d = domain_ref(define_vm1(f));

        g_assert_cmpint(request(f, d, DOMAIN_OP_START, &error), ==, 0);
        g_assert_cmpint(domain_undefine(d, &error), ==, 0);
        g_assert_no_error(error);
        assert_log(f, "vm1: lifecycle undefined/removed", "vm1: changed persistent: shutoff (unknown)",
                   NULL);
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d);

        wait_done(f, 1);
        assert_log(f, "vm1: changed state,reason: running (booted)", "vm1: lifecycle started/booted",
                   "vm1: start ok", NULL);
        g_assert_false(domain_is_persistent(d));
        run_op(f, d, DOMAIN_OP_DESTROY);
        g_assert_null(manager_lookup(f->host.manager, "vm1"));
}

/* Undefined while starting, a domain that then fails to start never ran
 * and has no definition: nothing keeps it, it goes like one that stopped
 * (else it would stay shut off for good, and Undefine refuses it as
 * transient). */
static void test_undefine_starting_fails(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Domain) d = domain_ref(define_plain(f));

        plain.start = PLAIN_START_FAILS;
        g_assert_cmpint(request(f, d, DOMAIN_OP_START, &error), ==, 0);
        g_assert_cmpint(domain_undefine(d, &error), ==, 0);
        g_assert_no_error(error);
        assert_log(f, "vp: lifecycle undefined/removed", "vp: changed persistent: shutoff (unknown)", NULL);

        wait_done(f, 1);
        assert_log(f, "vp: removed", "vp: start failed: the guest did not boot", NULL);
        g_assert_null(manager_lookup(f->host.manager, "vp"));
        g_assert_null(d->manager);
}

/* A transient domain has nothing to undefine: refused, it says why. */
static void test_undefine_transient(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Domain) d = domain_ref(create_vm1(f));

        g_assert_cmpint(domain_undefine(d, &error), ==, -vm_error_errno(VM_ERROR_INVALID_STATE));
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_STATE);
        g_assert_cmpstr(
                error ? error->message : NULL, ==,
                "domain 'vm1' is transient: it has no definition to remove; it disappears when it stops");
        assert_log(f, NULL);
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d);

        run_op(f, d, DOMAIN_OP_DESTROY);
        g_assert_null(manager_lookup(f->host.manager, "vm1"));
}

/* The file cannot go (a directory took its place): refused, the domain
 * stays defined, shut off or running. */
static void test_undefine_file_stays(Fixture *f, gconstpointer data) {
        g_autofree char *file = domain_file(f);
        g_autofree char *inside = g_build_filename(file, "keep", NULL);
        Domain *d = define_vm1(f);

        g_assert_cmpint(g_remove(file), ==, 0);
        g_assert_cmpint(g_mkdir(file, 0700), ==, 0);
        g_assert_true(g_file_set_contents(inside, "", 0, NULL));

        for (int running = 0; running < 2; running++) {
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(domain_undefine(d, &error), ==, -vm_error_errno(VM_ERROR_STORAGE_FAILED));
                assert_vm_error(error, VM_ERROR_STORAGE_FAILED, file);
                assert_log(f, NULL);
                g_assert_true(domain_is_persistent(d));
                g_assert_true(manager_lookup(f->host.manager, "vm1") == d);
                if (!running) {
                        start_domain(&f->host, d);
                        g_ptr_array_set_size(f->log, 0);
                }
        }
}

/* ---- what the backend reports on its own ---- */

/* The guest powered off: the observer hears it; a persistent domain stays
 * and can be started again. */
static void test_guest_stops(Fixture *f, gconstpointer data) {
        Domain *d = running_vm1(f);

        domain_backend_event(d, DOMAIN_STATE_SHUTOFF, "shutdown", "stopped", "shutdown");
        assert_log(f, "vm1: changed state,reason: shutoff (shutdown)", "vm1: lifecycle stopped/shutdown",
                   NULL);
        g_assert_false(domain_is_active(d));
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d);
        run_op(f, d, DOMAIN_OP_START);
        g_assert_cmpint(d->state, ==, DOMAIN_STATE_RUNNING);
}

/* The guest crashed: not active, started again with Start. */
static void test_guest_crashes(Fixture *f, gconstpointer data) {
        Domain *d = running_vm1(f);

        domain_backend_event(d, DOMAIN_STATE_CRASHED, "panicked", "crashed", "panicked");
        assert_log(f, "vm1: changed state,reason: crashed (panicked)", "vm1: lifecycle crashed/panicked",
                   NULL);
        g_assert_false(domain_is_active(d));
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d);
        run_op(f, d, DOMAIN_OP_START);
        assert_log(f, "vm1: changed state,reason: running (booted)", "vm1: lifecycle started/booted",
                   "vm1: start ok", NULL);
}

/* Only what changed is announced; an event is passed on by itself. */
static void test_guest_only_changes(Fixture *f, gconstpointer data) {
        Domain *d = running_vm1(f);

        domain_backend_event(d, DOMAIN_STATE_RUNNING, "booted", NULL, NULL);
        assert_log(f, NULL);
        domain_backend_event(d, DOMAIN_STATE_RUNNING, "booted", "shutdown", "finished");
        assert_log(f, "vm1: lifecycle shutdown/finished", NULL);
        domain_backend_event(d, DOMAIN_STATE_RUNNING, "wakeup", NULL, NULL);
        assert_log(f, "vm1: changed reason: running (wakeup)", NULL);
        domain_backend_event(d, DOMAIN_STATE_PAUSED, "wakeup", NULL, NULL);
        assert_log(f, "vm1: changed state: paused (wakeup)", NULL);
        domain_backend_event(d, DOMAIN_STATE_PAUSED, "ioerror", "suspended", "ioerror");
        assert_log(f, "vm1: changed reason: paused (ioerror)", "vm1: lifecycle suspended/ioerror", NULL);
}

/* A definition changed while running takes effect when the domain stops,
 * not when it pauses. */
static void test_guest_stop_applies_definition(Fixture *f, gconstpointer data) {
        g_autofree char *bigger = domain_xml("test", "vm1", "512", 4);
        Domain *d = running_vm1(f);

        define_xml(f, bigger);
        assert_log(f, "vm1: lifecycle defined/updated", "vm1: changed persistent: running (booted)", NULL);
        domain_backend_event(d, DOMAIN_STATE_PAUSED, "ioerror", "suspended", "ioerror");
        assert_log(f, "vm1: changed state,reason: paused (ioerror)", "vm1: lifecycle suspended/ioerror",
                   NULL);
        g_assert_cmpuint(d->def->vcpus, ==, 2);

        domain_backend_event(d, DOMAIN_STATE_SHUTOFF, "shutdown", "stopped", "shutdown");
        assert_log(f, "vm1: changed state,reason,config: shutoff (shutdown)",
                   "vm1: lifecycle stopped/shutdown", NULL);
        g_assert_cmpuint(d->def->vcpus, ==, 4);
        g_assert_cmpuint(d->def->memory_bytes, ==, 512ULL << 20);
}

/* A transient domain that stopped is gone, after its last events. */
static void test_guest_transient_stops(Fixture *f, gconstpointer data) {
        g_autoptr(Domain) d = domain_ref(create_vm1(f));

        domain_backend_event(d, DOMAIN_STATE_PAUSED, "ioerror", "suspended", "ioerror");
        g_assert_true(manager_lookup(f->host.manager, "vm1") == d);
        g_ptr_array_set_size(f->log, 0);
        domain_backend_event(d, DOMAIN_STATE_SHUTOFF, "shutdown", "stopped", "shutdown");
        assert_log(f, "vm1: changed state,reason: shutoff (shutdown)", "vm1: lifecycle stopped/shutdown",
                   "vm1: removed", NULL);
        g_assert_null(manager_lookup(f->host.manager, "vm1"));
        g_assert_null(d->manager);
}

/* ---- warnings ---- */

/* On the domain's job, with this host's name. */
static void test_warning_on_job(Fixture *f, gconstpointer data) {
        g_autofree char *host = manager_get_hostname();
        g_autofree char *expected =
                g_strdup_printf("%s: interface 52:54:00:00:00:01 left unconnected", host);
        g_autofree char *line = g_strdup_printf("vm1: job warning: %s", expected);
        Domain *d = define_vm1(f);
        Job *job = job_new(f->host.manager, JOB_MIGRATION_IN, d, "host-a");

        assert_log(f, "vm1: changed job: shutoff (unknown)", NULL);
        domain_backend_warning(d, "interface 52:54:00:00:00:01 left unconnected");
        assert_log(f, line, NULL);
        g_assert_cmpuint(job->warnings->len, ==, 1);
        g_assert_cmpstr(job->warnings->pdata[0], ==, expected);
        job_end(job, JOB_PHASE_FAILED, "test over");
}

/* No job: in the log, and nothing else changes. */
static void test_warning_without_job(Fixture *f, gconstpointer data) {
        Domain *d = define_vm1(f);

        if (g_test_subprocess()) {
                domain_backend_warning(d, "interface 52:54:00:00:00:01 left unconnected");
                assert_log(f, NULL);
                g_assert_null(d->job);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("*domain 'vm1': interface 52:54:00:00:00:01 left unconnected*");
}

/* ---- settling after a restart ---- */

/* The daemon answers once every domain has settled: the waiter is told
 * once, when the last one did. */
static void test_settling(Fixture *f, gconstpointer data) {
        Domain *a = define_domain(&f->host, "vm1", UUID_A, "64");
        Domain *b = define_domain(&f->host, "vm2", UUID_B, "64");

        g_ptr_array_set_size(f->log, 0);
        domain_backend_settling(a, true);
        domain_backend_settling(b, true);
        manager_when_settled(f->host.manager, on_settled, f);
        domain_backend_settling(a, false);
        domain_backend_settling(b, true);
        assert_log(f, NULL);
        domain_backend_settling(b, false);
        assert_log(f, "settled", NULL);

        domain_backend_settling(b, true);
        domain_backend_settling(b, false);
        domain_backend_settling(a, false);
        assert_log(f, NULL); /* nobody waits any more */

        /* A domain that says again it settled is not a reason to answer. */
        domain_backend_settling(a, true);
        manager_when_settled(f->host.manager, on_settled, f);
        domain_backend_settling(b, false);
        assert_log(f, NULL);
        domain_backend_settling(a, false);
        assert_log(f, "settled", NULL);
        g_assert_false(a->settling || b->settling);
}

/* ---- migration options ---- */

static const MigrateOptionSupport *find_option(const MigrateOptionSupport *support, size_t n,
                                               const char *key) {
        for (size_t i = 0; i < n; i++)
                if (g_str_equal(support[i].key, key))
                        return &support[i];
        return NULL;
}

/* The test backend's own table. */
static void test_migrate_options(Fixture *f, gconstpointer data) {
        Domain *d = define_vm1(f);
        size_t n = 0, n_backend = 0;
        const MigrateOptionSupport *support = domain_migrate_option_support(d, &n);
        const MigrateOptionSupport *backend = backend_test_ops.migrate_options(
                manager_backend_data(f->host.manager, &backend_test_ops), &n_backend);
        const MigrateOptionSupport *o;

        g_assert_true(support == backend);
        g_assert_cmpuint(n, ==, n_backend);
        o = find_option(support, n, "live");
        g_assert_nonnull(o);
        g_assert_true(o && o->supported);
        g_assert_cmpstr(o ? o->default_value : NULL, ==, "true");
        o = find_option(support, n, "tls");
        g_assert_nonnull(o);
        g_assert_true(o && !o->supported && o->why_not);
}

/* A backend that cannot migrate honours nothing. */
static void test_migrate_options_none(Fixture *f, gconstpointer data) {
        Domain *d = define_plain(f);
        size_t n = 7;

        g_assert_null(domain_migrate_option_support(d, &n));
        g_assert_cmpuint(n, ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);
        plain_ops_init();

#define ADD(path, fn) g_test_add("/domain/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("name-and-uuid", test_name_and_uuid);
        ADD("xml/round-trip", test_xml_round_trip);
        ADD("xml/live-while-active", test_xml_live_while_active);
        for (size_t i = 0; i < G_N_ELEMENTS(state_cases); i++) {
                g_autofree char *path =
                        g_strdup_printf("/domain/%s/states", domain_op_to_string(state_cases[i].op));
                g_test_add(path, Fixture, &state_cases[i], fixture_setup, test_states, fixture_teardown);
        }
        ADD("busy/one-at-a-time", test_busy);
        ADD("busy/shutdown-allows-destroy", test_busy_shutdown);
        ADD("destroy/overtakes-shutdown", test_destroy_overtakes_shutdown);
        ADD("start/notifies", test_start_notifies);
        ADD("suspend/notifies", test_suspend_notifies);
        ADD("resume/notifies", test_resume_notifies);
        ADD("shutdown/notifies", test_shutdown_notifies);
        ADD("destroy/notifies", test_destroy_notifies);
        ADD("backend/refuses", test_backend_refuses);
        ADD("backend/fails-later", test_backend_fails_later);
        ADD("backend/create-fails", test_backend_create_fails);
        ADD("undefine/shut-off", test_undefine_shut_off);
        ADD("undefine/running", test_undefine_running);
        ADD("undefine/starting", test_undefine_starting);
        ADD("undefine/starting-fails", test_undefine_starting_fails);
        ADD("undefine/transient", test_undefine_transient);
        ADD("undefine/file-stays", test_undefine_file_stays);
        ADD("guest/stops", test_guest_stops);
        ADD("guest/crashes", test_guest_crashes);
        ADD("guest/only-changes", test_guest_only_changes);
        ADD("guest/stop-applies-definition", test_guest_stop_applies_definition);
        ADD("guest/transient-stops", test_guest_transient_stops);
        ADD("warning/on-job", test_warning_on_job);
        ADD("warning/without-job", test_warning_without_job);
        ADD("settling", test_settling);
        ADD("migrate-options/test", test_migrate_options);
        ADD("migrate-options/none", test_migrate_options_none);
        return g_test_run();
}
