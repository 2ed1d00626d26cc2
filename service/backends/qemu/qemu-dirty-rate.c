/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How fast a running guest dirties its memory, for DryRun's convergence
 * finding: QEMU's calc-dirty-rate in page-sampling mode (hashes of 512
 * sampled pages per GiB, compared before and after: works under KVM and
 * TCG alike, needs no dirty ring or log, costs the guest nothing), then
 * query-dirty-rate once the measuring time is over.
 */
#include <errno.h>

#include "errors.h"
#include "log.h"
#include "qemu-backend.h"

/* query-dirty-rate may still say "measuring" right at the end. */
#define DIRTY_RATE_POLL_USEC (200 * 1000)
#define DIRTY_RATE_POLLS_MAX 10
#define DIRTY_RATE_COMMAND_TIMEOUT_USEC (5 * G_USEC_PER_SEC)

struct QemuDirtyRate {
        QemuDomain *qd;
        BackendDirtyRateDone done;
        void *userdata;
        sd_event_source *timer;
        unsigned polls;
};

static void dirty_rate_end(QemuDirtyRate *m, int r, uint64_t rate, const GError *error) {
        BackendDirtyRateDone done = m->done;
        void *userdata = m->userdata;

        m->qd->dirty_rate = NULL;
        sd_event_source_disable_unref(m->timer);
        g_free(m);
        done(r, rate, error, userdata);
}

static int arm(QemuDirtyRate *m, uint64_t usec);

static void on_query(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error, void *userdata) {
        QemuDirtyRate *m = userdata;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        g_autoptr(GError) local = NULL;
        const char *status;

        if (error) {
                dirty_rate_end(m, -EIO, 0, error);
                return;
        }
        status = o && json_object_has_member(o, "status") ? json_object_get_string_member(o, "status") : NULL;
        if (g_strcmp0(status, "measured") == 0 && json_object_has_member(o, "dirty-rate")) {
                /* MiB/s, as QEMU's qapi/migration.json says */
                gint64 mib = json_object_get_int_member(o, "dirty-rate");
                dirty_rate_end(m, 0, mib > 0 ? (uint64_t) mib << 20 : 0, NULL);
                return;
        }
        if (g_strcmp0(status, "measuring") == 0 && ++m->polls < DIRTY_RATE_POLLS_MAX && arm(m, DIRTY_RATE_POLL_USEC) >= 0)
                return;
        vm_error_set(&local, VM_ERROR_BACKEND_FAILED, "QEMU's dirty rate measurement ended %s",
                     status ? status : "without a status");
        dirty_rate_end(m, -EIO, 0, local);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuDirtyRate *m = userdata;
        g_autoptr(GError) error = NULL;

        if (!m->qd->qmp || qmp_execute(m->qd->qmp, "query-dirty-rate", NULL, DIRTY_RATE_COMMAND_TIMEOUT_USEC, on_query,
                                       m, &error) < 0) {
                if (!error)
                        vm_error_set(&error, VM_ERROR_BACKEND_FAILED, "QEMU is gone");
                dirty_rate_end(m, -EIO, 0, error);
        }
        return 0;
}

static int arm(QemuDirtyRate *m, uint64_t usec) {
        m->timer = sd_event_source_disable_unref(m->timer);
        return sd_event_add_time_relative(m->qd->backend->event, &m->timer, CLOCK_MONOTONIC, usec, 10 * 1000, on_timer,
                                          m);
}

static void on_started(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error, void *userdata) {
        QemuDirtyRate *m = userdata;
        g_autoptr(GError) local = NULL;

        if (error) {
                dirty_rate_end(m, -EIO, 0, error);
                return;
        }
        /* calc-dirty-rate returns at once; the result is there after calc-time. */
        if (arm(m, (uint64_t) m->polls * G_USEC_PER_SEC + DIRTY_RATE_POLL_USEC) < 0) {
                vm_error_set(&local, VM_ERROR_FAILED, "cannot arm a timer");
                dirty_rate_end(m, -EIO, 0, local);
                return;
        }
        m->polls = 0;
}

int qemu_measure_dirty_rate(void *domain_data, unsigned seconds, BackendDirtyRateDone done, void *userdata,
                            GError **error) {
        QemuDomain *qd = domain_data;
        QemuDirtyRate *m;
        JsonObject *args;

        if (!qd->qmp || qd->domain->state != DOMAIN_STATE_RUNNING)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' is not running",
                                    domain_name(qd->domain));
        if (qd->dirty_rate || qd->migration)
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE,
                                    "domain '%s' is being measured or migrated already", domain_name(qd->domain));
        if (seconds < 1 || seconds > 60)
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT, "a dirty rate is measured over 1-60 s");
        m = g_new0(QemuDirtyRate, 1);
        m->qd = qd;
        m->done = done;
        m->userdata = userdata;
        m->polls = seconds; /* on_started reads it as the measuring time */
        args = json_object_new();
        json_object_set_int_member(args, "calc-time", seconds);
        json_object_set_string_member(args, "mode", "page-sampling");
        if (qmp_execute(qd->qmp, "calc-dirty-rate", args, DIRTY_RATE_COMMAND_TIMEOUT_USEC, on_started, m, error) < 0) {
                g_free(m);
                return -EIO;
        }
        qd->dirty_rate = m;
        return 0;
}

void qemu_dirty_rate_cancel(QemuDomain *qd) {
        g_autoptr(GError) error = NULL;

        if (!qd->dirty_rate)
                return;
        vm_error_set(&error, VM_ERROR_NO_SUCH_DOMAIN, "domain '%s' went away while it was measured",
                     domain_name(qd->domain));
        dirty_rate_end(qd->dirty_rate, -ECANCELED, 0, error);
}
