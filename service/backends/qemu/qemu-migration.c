/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Live migration for the qemu backend: QEMU to QEMU over TCP.
 *
 * Destination (Prepare): QEMU starts with -incoming defer; we set the same
 * capabilities and parameters as the source (multifd and its compression
 * must match), then migrate-incoming on a port from the data port range,
 * and report where to send. Finish waits for QEMU to report the stream
 * completed, then "cont" (unless paused was asked), or kills it.
 * Source (Perform): capabilities and parameters, always with max-bandwidth
 * set explicitly (QEMU's own default caps the stream at 128 MiB/s), then
 * "migrate"; MIGRATION events say how it ends and query-migrate, polled,
 * feeds the job. Confirm quits the source QEMU, or runs the guest again.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "qemu-backend.h"
#include "qemu-features.h"
#include "qemu-firmware.h"
#include "qemu-storage.h"
#include "qemu-tls.h"
#include "net.h"
#include "manager.h"
#include "uri.h"

#define MIGRATION_PORT_MIN 49152
#define MIGRATION_PORT_MAX 49215
#define MIGRATION_POLL_USEC (100 * 1000)
#define MIGRATION_COMMAND_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
#define MIGRATION_FINISH_WAIT_USEC (60 * G_USEC_PER_SEC)
/* "Not limited": QEMU has no such value, so a rate no link reaches. */
#define MIGRATION_UNLIMITED_BANDWIDTH (1ULL << 40)
#define MIGRATION_DEFAULT_DOWNTIME_MS 300
/* QEMU's downtime-limit bounds its own estimate of the pause: the last
 * RAM at the measured bandwidth. The guest's pause is longer by what that
 * leaves out (stopping the vCPUs, the device state, starting on the
 * destination): ~30 ms more for the TCG test guest here, a few ms for an
 * idle KVM one (README, "Downtime as the guest sees it"). max-downtime is
 * the pause the guest may see, so QEMU is asked for this much less. */
#define MIGRATION_DOWNTIME_MARGIN_MS 50

/* QEMU's CPU throttle (auto-converge) lets the vCPUs run a 10 ms slice,
 * then sleeps them p/(1 − p) slices: at 99% almost a second in which the
 * guest does nothing, which its peers see as a pause like the
 * switch-over's, and which the switch-over's own pause adds to when the
 * vCPUs were asleep as it began. */
#define QEMU_THROTTLE_SLICE_MS 10

static uint64_t qemu_throttle_stall_ms(unsigned percent) {
        percent = MIN(percent, 99u);
        return (uint64_t) percent * QEMU_THROTTLE_SLICE_MS / (100 - percent);
}

/* The hardest throttle whose sleeps stay within half the pause the guest
 * may see: the other half is the switch-over's. */
static unsigned qemu_throttle_cap(uint64_t max_downtime_ms) {
        uint64_t half = max_downtime_ms / 2;
        uint64_t p = half * 100 / (half + QEMU_THROTTLE_SLICE_MS);

        return (unsigned) CLAMP(p, 1, 99);
}

/* max-downtime as the guest sees it -> QEMU's downtime-limit, with the
 * throttle's sleep (percent, 0 = none) taken off too. */
static uint64_t qemu_downtime_limit(uint64_t max_downtime_ms, unsigned throttle) {
        uint64_t ms = max_downtime_ms ? max_downtime_ms : MIGRATION_DEFAULT_DOWNTIME_MS;
        uint64_t margin = MIN((uint64_t) MIGRATION_DOWNTIME_MARGIN_MS, ms / 2);
        uint64_t limit = ms - margin;
        uint64_t stall = throttle ? qemu_throttle_stall_ms(throttle) : 0;

        return limit > stall ? limit - stall : 1;
}
/* No byte across for this long: the network (or the destination) is gone,
 * though the control connection may still be up. TCP alone would take its
 * retransmission timeout, a quarter of an hour. */
#define MIGRATION_STALL_USEC (20 * G_USEC_PER_SEC)

struct QemuMigration {
        QemuDomain *qd;
        bool outgoing;
        MigrateOptions *options;      /* a copy: the caller's goes away */
        QemuFeatures features;        /* as the destination decided (qemu-features.h) */
        struct rlimit memlock_before; /* source, zero-copy-send: QEMU's limit, given back at the end */
        bool memlock_raised;

        /* source */
        MigrateProgressFn progress;
        void *progress_userdata;
        sd_event_source *poll;
        MigrationStats stats;
        bool ran_before;
        bool stream_done; /* completed, failed, cancelled, or switched to post-copy: reported */
        bool confirm_success;
        uint64_t max_downtime; /* the pause the guest may see, ms (0: the default) */
        unsigned throttle;     /* percent the policy set, capped; 0: none yet */
        bool postcopy_requested; /* StartPostCopy asked; sent as soon as QEMU takes it */
        bool postcopy_sent;
        bool postcopy_active;
        bool stream_completed; /* QEMU said completed (post-copy: the last page is there) */
        bool stream_broken;    /* post-copy paused or failed */
        bool confirm_waiting;  /* Confirm(success) waits for the post-copy stream */
        uint64_t last_processed;     /* bytes across at the last poll that saw progress */
        uint64_t last_progress_usec; /* when that was */
        bool stall_handled;
        bool stall_waited; /* a post-copy stalled before the destination ran the guest: said so */
        /* Source, post-copy: the destination said it runs the guest
         * (migrate_destination_runs), or this is a resume (it ran before). */
        bool destination_runs;
        bool resuming; /* postcopy-resume: the same migration, its stream again */
        /* option 'copy-storage' (qemu-storage.c), either side */
        QemuStorage *storage;
        /* option 'tls': the QEMU objects the migration uses, which the
         * disk copy's NBD uses too */
        char *tls_creds;
        char *tls_authz;    /* destination */
        char *tls_hostname; /* source */
        GVariant *destination_reply; /* source: the destination's Prepare reply (its displays) */
        bool mirroring;        /* source: the disks are copied, the memory waits */
        bool storage_done;     /* source: the mirrors ended with the memory */

        /* destination */
        MigratePrepareDone prepare_done;
        void *prepare_userdata;
        DomainDef *launch_def; /* copy-storage: QEMU starts once the images exist */
        MigrationTls launch_tls; /* ... with these (strings owned), when .dir is set */
        char *data_uri;
        char *listen_host;
        uint16_t port;
        bool port_claimed; /* m->port is in the backend's claimed_ports */
        bool incoming_listening;
        bool incoming_completed;
        /* Post-copy: QEMU takes 'cont' while it still loads the device
         * state (it starts the guest once that is in); the guest runs only
         * at its RESUME event. Until then a broken stream makes it quit,
         * so Finish is answered (and the source may pause) only then. */
        bool incoming_cont_answered;
        bool incoming_resumed;
        bool incoming_reported; /* running/postcopy said, Finish answered */
        /* The stream switched to post-copy (MIGRATION postcopy-active
         * here): the source stopped its guest for good. */
        bool incoming_postcopy_seen;
        char *incoming_failure;
        bool discard;
        sd_event_source *finish_wait;
        /* Source: SPICE clients were told where the guest goes
         * (client_migrate_info); Confirm lets them get there first. */
        bool spice_relocated;
        sd_event_source *spice_wait;
        uint64_t spice_wait_since;
        /* A UEFI guest's NVRAM, staged from the source's (qemu-firmware.h) */
        QemuNvramStage *nvram;
};

static const MigrateOptionSupport qemu_option_support[] = {
        { .key = "live", .supported = true, .default_value = "true" },
        { .key = "offline", .supported = true },
        { .key = "paused", .supported = true },
        { .key = "persist", .supported = true },
        { .key = "undefine-source", .supported = true },
        { .key = "postcopy", .supported = true, .default_value = "false" },
        { .key = "postcopy-resume", .supported = true },
        { .key = "auto-converge", .supported = true, .default_value = "false" },
        { .key = "compression", .supported = true, .default_value = "'none'" },
        { .key = "parallel-connections", .supported = true },
        { .key = "tunnelled", .supported = true, .default_value = "false" },
        { .key = "tls", .supported = true },
        /* These five are supported where this QEMU has the feature
         * (qemu-features.c says why each default is what it is). None has
         * a default value: one would travel to the destination as given,
         * and a destination whose QEMU lacks the feature refuses it. */
        { .key = "postcopy-preempt", .supported = true },
        { .key = "zero-page-detection", .supported = true },
        { .key = "zero-copy-send", .supported = true },
        { .key = "switchover-ack", .supported = true },
        { .key = "switchover-bandwidth", .supported = true },
        { .key = "copy-storage", .supported = true, .default_value = "'none'" },
        { .key = "reuse-images", .supported = true },
        { .key = "bandwidth", .supported = true },
        { .key = "postcopy-bandwidth", .supported = true },
        { .key = "max-downtime", .supported = true, .default_value = "300" },
        { .key = "destination-name", .supported = true },
        { .key = "destination-xml", .supported = true },
        { .key = "data-uri", .supported = true },
        { .key = "listen-address", .supported = true },
        { .key = "abort-on-error", .supported = true },
        { .key = "unsafe", .supported = true },
        { .key = "timeout", .supported = true },
        { .key = "timeout-action", .supported = true, .default_value = "'abort'" },
        { .key = "wait", .supported = true },
};

void qemu_migrate_options_clear(QemuBackend *b) {
        for (size_t i = 0; b->option_support && i < b->n_option_support; i++)
                g_free((char *) b->option_support[i].why_not);
        g_clear_pointer(&b->option_support, g_free);
        b->n_option_support = 0;
}

const MigrateOptionSupport *qemu_migrate_options(void *backend_data, size_t *ret_n) {
        QemuBackend *b = backend_data;

        if (!b) {
                *ret_n = G_N_ELEMENTS(qemu_option_support);
                return qemu_option_support;
        }
        if (!b->option_support) {
                /* Only the feature entries get why_not strings of their own. */
                b->option_support = g_memdup2(qemu_option_support, sizeof(qemu_option_support));
                b->n_option_support = G_N_ELEMENTS(qemu_option_support);
                for (size_t i = 0; i < b->n_option_support; i++)
                        b->option_support[i].why_not = g_strdup(b->option_support[i].why_not);
                qemu_features_option_support(b->caps, b->option_support, b->n_option_support);
        }
        *ret_n = b->n_option_support;
        return b->option_support;
}

static QemuMigration *migration_new(QemuDomain *qd, bool outgoing, const MigrateOptions *options) {
        QemuMigration *m = g_new0(QemuMigration, 1);

        m->qd = qd;
        m->outgoing = outgoing;
        m->options = migrate_options_copy(options);
        m->max_downtime = options->max_downtime;
        qd->migration = m;
        return m;
}

static void memlock_restore(QemuMigration *m);
static void incoming_release_port(QemuMigration *m);
static void incoming_keep(QemuMigration *m);

bool qemu_migration_detach(QemuDomain *qd) {
        QemuMigration *m = qd->migration;
        g_autofree char *role = NULL;
        bool kept = false;

        /* An arrival whose source was told it may switch to post-copy
         * stays (arrival_kept), with what was made for it, unless it was
         * being discarded. */
        if (m && !m->outgoing && !m->discard &&
            g_file_get_contents(qd->paths->postcopy, &role, NULL, NULL) && g_str_equal(role, "coming")) {
                incoming_keep(m);
                kept = true;
        }
        qemu_migration_free(qd);
        return kept;
}

void qemu_migration_free(QemuDomain *qd) {
        QemuMigration *m = g_steal_pointer(&qd->migration);

        if (!m)
                return;
        incoming_release_port(m);
        memlock_restore(m);
        sd_event_source_disable_unref(m->poll);
        sd_event_source_disable_unref(m->finish_wait);
        sd_event_source_disable_unref(m->spice_wait);
        if (!m->outgoing && m->options->tunnelled) {
                (void) unlink(qd->paths->stream_socket);
                (void) unlink(qd->paths->nbd_socket);
        }
        qemu_storage_free(m->storage); /* deletes images it made, unless kept */
        qemu_nvram_stage_free(m->nvram); /* puts the destination's own copy back, unless kept */
        domain_def_free(m->launch_def);
        g_free((char *) m->launch_tls.dir);
        g_free((char *) m->launch_tls.peer_dn);
        g_free(m->tls_creds);
        g_free(m->tls_authz);
        g_free(m->tls_hostname);
        migrate_options_free(m->options);
        g_free(m->data_uri);
        g_free(m->listen_host);
        g_free(m->incoming_failure);
        if (m->destination_reply)
                g_variant_unref(m->destination_reply);
        g_free(m);
}

/* ---- QMP helpers ---- */

static JsonObject *capabilities_args(const QemuMigration *m) {
        const MigrateOptions *o = m->options;
        const QemuCaps *qemu = m->qd->backend->caps;
        JsonObject *args = json_object_new();
        JsonArray *caps = json_array_new();
        const struct {
                const char *name;
                bool on;
                bool if_known; /* sent only to a QEMU that has it (qemu-features.h) */
        } list[] = {
                { "events", true, false },
                { "auto-converge", o->auto_converge, false },
                { "multifd", o->parallel_connections > 0, false },
                { "xbzrle", o->compression == MIGRATE_COMPRESSION_XBZRLE, false },
                { "postcopy-ram", o->postcopy, false },
                /* QEMU keeps capabilities for its lifetime: each one it
                 * has is set, off too, or a guest would leave with what
                 * it arrived with. */
                { "postcopy-preempt", m->features.postcopy_preempt, true },
                { "return-path", m->features.switchover_ack, true },
                { "switchover-ack", m->features.switchover_ack, true },
                { "zero-copy-send", m->outgoing && m->features.zero_copy_send, true },
                /* The destination measures how long the vCPUs wait for
                 * pages in post-copy (query-migrate, once completed). */
                { "postcopy-blocktime", !m->outgoing && o->postcopy, true },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(list); i++) {
                if (list[i].if_known && !qemu_caps_has_migration_capability(qemu, list[i].name))
                        continue;
                JsonObject *c = json_object_new();
                json_object_set_string_member(c, "capability", list[i].name);
                json_object_set_boolean_member(c, "state", list[i].on);
                json_array_add_object_element(caps, c);
        }
        json_object_set_array_member(args, "capabilities", caps);
        return args;
}

static JsonObject *parameters_args(const QemuMigration *m, bool source) {
        static const char *const zero_page[] = { "none", "legacy", "multifd" };
        const MigrateOptions *o = m->options;
        const QemuCaps *qemu = m->qd->backend->caps;
        JsonObject *args = json_object_new();

        /* QEMU keeps parameters for its lifetime: a guest that arrived with
         * TLS would leave again with the server credentials of its
         * arrival. Empty means no TLS; qemu_tls_setup() fills them in. */
        json_object_set_string_member(args, "tls-creds", "");
        json_object_set_string_member(args, source ? "tls-hostname" : "tls-authz", "");

        if (o->parallel_connections > 0) {
                json_object_set_int_member(args, "multifd-channels", o->parallel_connections);
                json_object_set_string_member(args, "multifd-compression",
                                              o->compression == MIGRATE_COMPRESSION_ZSTD   ? "zstd"
                                              : o->compression == MIGRATE_COMPRESSION_ZLIB ? "zlib"
                                                                                           : "none");
        }
        if (source) {
                json_object_set_int_member(args, "max-bandwidth",
                                           o->bandwidth ? (gint64) o->bandwidth : (gint64) MIGRATION_UNLIMITED_BANDWIDTH);
                json_object_set_int_member(args, "downtime-limit", (gint64) qemu_downtime_limit(o->max_downtime, 0));
                if (o->postcopy_bandwidth)
                        json_object_set_int_member(args, "max-postcopy-bandwidth", (gint64) o->postcopy_bandwidth);
                /* The sender finds the zero pages; the destination said
                 * what it can read (qemu-features.c). */
                if (m->features.set_zero_page_detection)
                        json_object_set_string_member(args, "zero-page-detection",
                                                      zero_page[m->features.zero_page_detection]);
                /* 0, QEMU's default, resets what an earlier migration set. */
                if (qemu_caps_has_migration_parameter(qemu, "avail-switchover-bandwidth"))
                        json_object_set_int_member(
                                args, "avail-switchover-bandwidth",
                                (gint64) MIN(m->features.switchover_bandwidth, (uint64_t) G_MAXINT64));
        }
        return args;
}

static uint64_t json_uint(JsonObject *o, const char *name) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
                return 0;
        gint64 v = json_node_get_int(n);
        return v > 0 ? (uint64_t) v : 0;
}

/* migrate-set-parameters for this migration, after the TLS objects the
 * parameters name (tls NULL: none). done gets every reply. */
static int send_parameters(QemuMigration *m, bool source, const MigrationTls *tls, const char *host, QmpReplyFn done,
                           GError **error) {
        JsonObject *parameters = parameters_args(m, source);
        int r = tls ? qemu_tls_setup(m->qd->qmp, tls, source, host, parameters, done, m, error) : 0;

        if (r < 0) {
                json_object_unref(parameters);
                return r;
        }
        if (tls) {
                g_free(m->tls_creds);
                g_free(m->tls_authz);
                g_free(m->tls_hostname);
                m->tls_creds = g_strdup(json_str(parameters, "tls-creds"));
                m->tls_authz = g_strdup(json_str(parameters, "tls-authz"));
                m->tls_hostname = g_strdup(json_str(parameters, "tls-hostname"));
        }
        return qmp_execute(m->qd->qmp, "migrate-set-parameters", parameters, MIGRATION_COMMAND_TIMEOUT_USEC, done, m,
                           error);
}

static JsonObject *json_obj(JsonObject *o, const char *name) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;
        return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* ---- source ---- */

/* zero-copy-send: the kernel pins each page in flight until the receiver
 * has it, counted against RLIMIT_MEMLOCK unless QEMU has CAP_IPC_LOCK (as
 * a QEMU run as root has), and QEMU fails the migration when the limit is
 * reached.
 * How many pages are in flight at once is unknown, so, as libvirt does,
 * QEMU may lock as much as the guest has for the migration's duration;
 * nothing is locked by this itself. */
static bool has_ipc_lock(pid_t pid) {
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int) pid);
        g_autofree char *status = NULL;
        const char *cap;

        if (!g_file_get_contents(path, &status, NULL, NULL) || !(cap = strstr(status, "\nCapEff:")))
                return false;
        return (g_ascii_strtoull(cap + strlen("\nCapEff:"), NULL, 16) >> 14) & 1; /* CAP_IPC_LOCK */
}

static int memlock_raise(QemuMigration *m, GError **error) {
        pid_t pid = m->qd->process ? qemu_process_pid(m->qd->process) : 0;
        uint64_t need = m->qd->domain->def->memory_bytes;
        struct rlimit before, after;

        /* The kernel does not count what a process with CAP_IPC_LOCK pins. */
        if (pid > 0 && has_ipc_lock(pid))
                return 0;
        if (pid <= 0 || prlimit(pid, RLIMIT_MEMLOCK, NULL, &before) < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "option 'zero-copy-send': cannot read QEMU's RLIMIT_MEMLOCK: %s",
                                    g_strerror(pid <= 0 ? ESRCH : errno));
        after = before;
        if (after.rlim_cur != RLIM_INFINITY && after.rlim_cur < need)
                after.rlim_cur = need;
        if (after.rlim_max != RLIM_INFINITY && after.rlim_max < after.rlim_cur)
                after.rlim_max = after.rlim_cur;
        if (after.rlim_cur == before.rlim_cur && after.rlim_max == before.rlim_max)
                return 0;
        if (prlimit(pid, RLIMIT_MEMLOCK, &after, NULL) < 0)
                return vm_error_set(
                        error, VM_ERROR_UNSUPPORTED_OPTION,
                        "option 'zero-copy-send' needs QEMU to lock up to the guest's memory "
                        "(%" G_GUINT64_FORMAT " MiB) while it sends, and raising its RLIMIT_MEMLOCK "
                        "failed (%s): give vmigrated CAP_SYS_RESOURCE, or QEMU CAP_IPC_LOCK, or leave "
                        "the option out",
                        need >> 20, g_strerror(errno));
        m->memlock_before = before;
        m->memlock_raised = true;
        return 0;
}

static void memlock_restore(QemuMigration *m) {
        if (!m->memlock_raised)
                return;
        m->memlock_raised = false;
        if (m->qd->process &&
            prlimit(qemu_process_pid(m->qd->process), RLIMIT_MEMLOCK, &m->memlock_before, NULL) < 0 &&
            errno != ESRCH)
                log_warning("domain '%s': cannot give QEMU its RLIMIT_MEMLOCK back: %s",
                            domain_name(m->qd->domain), g_strerror(errno));
}

int qemu_migrate_begin(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                       GVariantDict *cookie, GError **error) {
        QemuDomain *qd = domain_data;
        QemuCaps *caps = qd->backend->caps;
        bool tcg = g_str_equal(def->type, "qemu");

        if (!qd->process || !qd->qmp)
                return vm_error_set(error, VM_ERROR_INVALID_STATE, "domain '%s' has no running QEMU", def->name);
        if (options->postcopy_resume) {
                if (!qd->migration || !qd->migration->outgoing || !qd->migration->stream_broken)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "domain '%s' has no broken post-copy stream to resume", def->name);
        } else if (qd->migration)
                return vm_error_set(error, VM_ERROR_JOB_ACTIVE, "domain '%s' is already migrating", def->name);
        if (tcg && !options->postcopy && !options->unsafe && qemu_caps_has_defect(caps, "tcg-precopy-loses-writes"))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "QEMU %u.%u.%u on this host loses guest writes when it live-migrates a TCG "
                                    "guest with pre-copy (fixed in QEMU 9.0): install QEMU 9.0 or newer, or use "
                                    "post-copy or offline migration; option 'unsafe' goes ahead anyway",
                                    caps->major, caps->minor, caps->micro);
        if ((options->parallel_connections > 0 || options->compression == MIGRATE_COMPRESSION_ZSTD ||
             options->compression == MIGRATE_COMPRESSION_ZLIB) &&
            !qemu_caps_has_migration_capability(caps, "multifd"))
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                    "option 'parallel-connections' needs QEMU's multifd, which %s lacks",
                                    caps->binary);
        if (options->postcopy && !qemu_caps_has_migration_capability(caps, "postcopy-ram"))
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION, "option 'postcopy' needs QEMU's postcopy-ram, "
                                    "which %s lacks", caps->binary);
        if (options->auto_converge && !qemu_caps_has_migration_capability(caps, "auto-converge"))
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                    "option 'auto-converge' is not supported by %s", caps->binary);

        if (options->copy_storage != MIGRATE_COPY_STORAGE_NONE && options->postcopy)
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                    "option 'copy-storage' with 'postcopy' is not implemented yet");
        int r = qemu_storage_begin(qd->domain->def, def, options, cookie, error);
        if (r < 0)
                return r;

        if (!options->postcopy_resume && qd->domain->def->os_loader_pflash) {
                /* The destination's QEMU needs a flash of this size to
                 * receive the guest (see qemu-firmware.c). */
                g_autofree char *path = qemu_nvram_path(qd->backend->nvram_dir, qd->domain->def);
                g_autoptr(GBytes) nvram = NULL;
                r = qemu_nvram_read(path, &nvram, error);
                if (r < 0)
                        return r;
                g_variant_dict_insert_value(cookie, "nvram",
                                            g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, nvram, true));
        }

        g_autofree char *version = g_strdup_printf("%u.%u.%u", caps->major, caps->minor, caps->micro);
        g_variant_dict_insert(cookie, "qemu-version", "s", version);
        g_variant_dict_insert(cookie, "accel", "s", tcg ? "tcg" : "kvm");
        qemu_features_add_to_cookie(caps, cookie);
        return 0;
}

static void migration_stats_from(QemuMigration *m, JsonObject *o) {
        JsonObject *ram = json_obj(o, "ram");
        uint64_t page_size = json_uint(ram, "page-size");

        /* After a cancel QEMU reports no "ram": keep what we last saw. */
        if (!ram)
                return;

        m->stats.data_total = json_uint(ram, "total");
        m->stats.data_processed = json_uint(ram, "transferred");
        m->stats.data_remaining = json_uint(ram, "remaining");
        m->stats.iteration = json_uint(ram, "dirty-sync-count");
        m->stats.dirty_rate = json_uint(ram, "dirty-pages-rate") * (page_size ? page_size : 4096);
        /* mbps is a JSON double: megabits per second. */
        JsonNode *mbps = ram ? json_object_get_member(ram, "mbps") : NULL;
        if (mbps && JSON_NODE_HOLDS_VALUE(mbps) &&
            (json_node_get_value_type(mbps) == G_TYPE_DOUBLE || json_node_get_value_type(mbps) == G_TYPE_INT64))
                m->stats.bandwidth = (uint64_t) (json_node_get_double(mbps) * 1e6 / 8);
        m->stats.expected_downtime_ms = json_uint(o, "expected-downtime");
        m->stats.setup_ms = json_uint(o, "setup-time");
        if (json_object_has_member(o, "downtime"))
                m->stats.downtime_ms = json_uint(o, "downtime");
        m->stats.postcopy_requests = json_uint(ram, "postcopy-requests");
}

static void migration_stream_end(QemuMigration *m, int r, const char *failure);

static void on_storage_completed(int r, const GError *error, void *userdata) {
        QemuMigration *m = userdata;

        m->storage_done = true;
        if (r < 0) {
                log_error("domain '%s': %s", domain_name(m->qd->domain), error->message);
                migration_stream_end(m, r, error->message);
                return;
        }
        log_info("domain '%s': the disk copies completed with the memory", domain_name(m->qd->domain));
        migration_stream_end(m, 0, NULL);
}

static void migration_stream_end(QemuMigration *m, int r, const char *failure) {
        QemuDomain *qd = m->qd;
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) storage_error = NULL;

        if (m->stream_done)
                return;
        if (m->storage && m->outgoing && !m->storage_done && qd->qmp) {
                /* The disks end with the memory: the last writes must be on
                 * the destination before it runs the guest. */
                if (r >= 0 && !m->mirroring &&
                    qemu_storage_complete(m->storage, qd->qmp, on_storage_completed, m, &storage_error) >= 0)
                        return;
                m->storage_done = true;
                m->mirroring = false;
                qemu_storage_abort(m->storage, qd->qmp);
                if (r >= 0) {
                        r = -EIO;
                        failure = storage_error ? storage_error->message : "the disk mirrors could not be completed";
                }
        }
        m->stream_done = true;
        /* In post-copy the pages keep coming: keep the job's figures moving. */
        if (!(r >= 0 && m->postcopy_active))
                m->poll = sd_event_source_disable_unref(m->poll);
        if (m->progress)
                m->progress(&m->stats, m->progress_userdata);
        if (r < 0)
                error = g_error_new(VM_ERROR, r == -ECANCELED ? VM_ERROR_MIGRATION_FAILED : VM_ERROR_MIGRATION_FAILED,
                                    "%s", failure);
        qemu_domain_complete(qd, r, error);
}

static void on_final_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                            void *userdata) {
        QemuMigration *m = userdata;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        const char *status = json_str(o, "status");

        if (o)
                migration_stats_from(m, o);
        if (g_strcmp0(status, "completed") == 0)
                migration_stream_end(m, 0, NULL);
        else if (g_strcmp0(status, "cancelled") == 0 && m->stall_handled)
                migration_stream_end(m, -ETIMEDOUT,
                                     "no data got across for 20 s: the network to the destination seems down");
        else if (g_strcmp0(status, "cancelled") == 0)
                migration_stream_end(m, -ECANCELED, "the migration was cancelled");
        else {
                g_autofree char *why = g_strdup_printf("QEMU reports the migration %s: %s", status ? status : "ended",
                                                       json_str(o, "error-desc") ?: (error ? error->message : "no reason given"));
                migration_stream_end(m, -EIO, why);
        }
}

static void migration_check_stall(QemuMigration *m, const char *status) {
        QemuDomain *qd = m->qd;
        uint64_t now = 0;

        (void) sd_event_now(qd->backend->event, CLOCK_MONOTONIC, &now);
        bool postcopy = g_strcmp0(status, "postcopy-active") == 0;

        if (m->last_progress_usec == 0 || m->stats.data_processed != m->last_processed ||
            (g_strcmp0(status, "active") != 0 && !postcopy)) {
                m->last_processed = m->stats.data_processed;
                m->last_progress_usec = now;
                return;
        }
        if (m->stall_handled || now - m->last_progress_usec < MIGRATION_STALL_USEC)
                return;
        if (postcopy && !m->destination_runs && !m->options->postcopy_resume) {
                /* The destination may still be loading the device state
                 * over a slow link: a pause now makes its QEMU quit (before
                 * QEMU 10.2 this source can then neither cancel nor run
                 * the guest again), and the guest is lost. Wait for the
                 * stream, or for Finish to say it runs there. */
                if (!m->stall_waited)
                        log_warning("domain '%s': no migration data got across for %d s in the switch to "
                                    "post-copy: waiting, since the destination may still be loading the "
                                    "guest's device state, and a pause would lose the guest",
                                    domain_name(qd->domain), (int) (MIGRATION_STALL_USEC / G_USEC_PER_SEC));
                m->stall_waited = true;
                return;
        }
        m->stall_handled = true;
        log_error("domain '%s': no migration data got across for %d s: the link to the destination is down? %s",
                  domain_name(qd->domain), (int) (MIGRATION_STALL_USEC / G_USEC_PER_SEC),
                  postcopy ? "pausing the post-copy" : "cancelling");
        /* A post-copy cannot be cancelled (the guest runs over there), only
         * paused, to be resumed once the link is back. */
        if (postcopy)
                (void) qmp_execute_oob(qd->qmp, "migrate-pause", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL,
                                       NULL, NULL);
        else
                (void) qmp_execute(qd->qmp, "migrate_cancel", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL,
                                   NULL, NULL);
}

static void on_poll_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                          void *userdata) {
        QemuMigration *m = userdata;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        const char *status = json_str(o, "status");

        if (!o)
                return;
        if (m->stream_done) {
                /* Post-copy: the pages the destination still pulls. */
                if (m->postcopy_active && !m->stream_completed && !m->stream_broken) {
                        migration_stats_from(m, o);
                        migration_check_stall(m, status);
                        m->stats.postcopy_active = true;
                        if (m->progress)
                                m->progress(&m->stats, m->progress_userdata);
                }
                return;
        }
        migration_stats_from(m, o);
        migration_check_stall(m, status);
        /* The MIGRATION event normally says it first; the poll is the
         * safety net. */
        if (g_strcmp0(status, "completed") == 0 || g_strcmp0(status, "failed") == 0 ||
            g_strcmp0(status, "cancelled") == 0) {
                on_final_status(qmp, result, error_class, error, m);
                return;
        }
        if (m->progress)
                m->progress(&m->stats, m->progress_userdata);
}

/* copy-storage, while the memory goes: the mirrors keep copying what the
 * guest writes, and the disk figures say so. */
static void on_disk_stats_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                void *userdata) {
        QemuMigration *m = userdata;
        uint64_t total = 0, done = 0;

        if (error || !m->storage || m->storage_done || m->stream_done)
                return;
        (void) qemu_storage_update(m->storage, result, &total, &done);
        m->stats.disk_total = total;
        m->stats.disk_processed = done;
        m->stats.disk_remaining = total - done;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMigration *m = userdata;

        if (m->qd->qmp && m->storage && m->outgoing && !m->storage_done && !m->stream_done)
                (void) qmp_execute(m->qd->qmp, "query-block-jobs", NULL, MIGRATION_COMMAND_TIMEOUT_USEC,
                                   on_disk_stats_reply, m, NULL);
        if (m->qd->qmp)
                (void) qmp_execute(m->qd->qmp, "query-migrate", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, on_poll_reply, m,
                                   NULL);
        if (sd_event_source_set_time_relative(s, MIGRATION_POLL_USEC) >= 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void on_migrate_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                             void *userdata) {
        QemuMigration *m = userdata;
        int r;

        if (error) {
                migration_stream_end(m, -EIO, error->message);
                return;
        }
        r = sd_event_add_time_relative(m->qd->backend->event, &m->poll, CLOCK_MONOTONIC, MIGRATION_POLL_USEC, 1000,
                                       on_poll, m);
        if (r < 0)
                log_warning("domain '%s': cannot poll migration progress: %s", domain_name(m->qd->domain),
                            g_strerror(-r));
}

static void on_source_setup_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                  void *userdata) {
        QemuMigration *m = userdata;

        /* Capabilities and parameters went first, in order; a refusal of any
         * of them ends it before a byte is sent. */
        if (error)
                migration_stream_end(m, -EIO, error->message);
}

static char *qemu_uri_from_data_uri(const char *data_uri, GError **error) {
        g_autofree char *host = NULL;
        uint16_t port;

        if (data_uri_parse(data_uri, &host, &port, error) < 0)
                return NULL;
        return strchr(host, ':') ? g_strdup_printf("tcp:[%s]:%u", host, port) : g_strdup_printf("tcp:%s:%u", host, port);
}

/* Option 'tunnelled': the stream's socket goes to QEMU under this name. */
#define STREAM_FD_NAME "vmigrate-stream"

/* Hands QEMU the tunnel's socket (getfd), before the "migrate" that names it. */
static int send_stream_fd(QemuMigration *m, int data_fd, GError **error) {
        JsonObject *args = json_object_new();

        json_object_set_string_member(args, "fdname", STREAM_FD_NAME);
        return qmp_execute_with_fd(m->qd->qmp, "getfd", args, data_fd, MIGRATION_COMMAND_TIMEOUT_USEC,
                                   on_source_setup_reply, m, error);
}

/* getfd for a tunnel, then "migrate": the memory goes. */
static int send_migrate(QemuMigration *m, const char *uri, int data_fd, GError **error) {
        JsonObject *migrate = json_object_new();
        int r = 0;

        json_object_set_string_member(migrate, "uri", uri);
        if (data_fd >= 0)
                r = send_stream_fd(m, data_fd, error);
        if (r >= 0)
                return qmp_execute(m->qd->qmp, "migrate", migrate, MIGRATION_COMMAND_TIMEOUT_USEC, on_migrate_reply, m,
                                   error);
        json_object_unref(migrate);
        return r;
}

/* The mirrors not yet in sync and not one byte further for as long as
 * the memory stream may stall: the link or the destination is gone (an
 * NBD client waits for TCP to give up, which takes many minutes). The
 * migration fails, which cancels the mirrors. */
static bool mirror_stalled(QemuMigration *m, uint64_t done) {
        uint64_t now = 0;
        g_autofree char *why = NULL;

        (void) sd_event_now(m->qd->backend->event, CLOCK_MONOTONIC, &now);
        if (m->last_progress_usec == 0 || done != m->last_processed) {
                m->last_processed = done;
                m->last_progress_usec = now;
                return false;
        }
        if (now - m->last_progress_usec < MIGRATION_STALL_USEC)
                return false;
        why = g_strdup_printf("copy-storage: no disk data got across for %d s: the link to the destination is "
                              "down?",
                              (int) (MIGRATION_STALL_USEC / G_USEC_PER_SEC));
        log_error("domain '%s': %s; cancelling", domain_name(m->qd->domain), why);
        migration_stream_end(m, -EIO, why);
        return true;
}

static void on_mirror_poll_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                 void *userdata) {
        QemuMigration *m = userdata;
        g_autoptr(GError) local = NULL;
        uint64_t total = 0, done = 0;

        if (!m->mirroring || m->stream_done)
                return;
        if (error) {
                migration_stream_end(m, -EIO, error->message);
                return;
        }
        bool ready = qemu_storage_update(m->storage, result, &total, &done);
        if (!ready && mirror_stalled(m, done))
                return;
        m->stats.disk_total = total;
        m->stats.disk_processed = done;
        m->stats.disk_remaining = total - done;
        /* The memory has not started: all of it is still to send, which
         * keeps the job's progress from reaching its end with the disks. */
        m->stats.data_total = m->qd->domain->def->memory_bytes;
        m->stats.data_remaining = m->stats.data_total;
        if (m->progress)
                m->progress(&m->stats, m->progress_userdata);
        if (!ready)
                return;
        m->mirroring = false;
        m->poll = sd_event_source_disable_unref(m->poll);
        /* The memory stream's own stall check starts afresh. */
        m->last_progress_usec = 0;
        m->last_processed = 0;
        log_info("domain '%s': every disk is in sync on the destination: the memory goes now",
                 domain_name(m->qd->domain));
        if (send_migrate(m, m->data_uri, -1, &local) < 0)
                migration_stream_end(m, -EIO, local->message);
}

static int on_mirror_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMigration *m = userdata;

        if (m->qd->qmp)
                (void) qmp_execute(m->qd->qmp, "query-block-jobs", NULL, MIGRATION_COMMAND_TIMEOUT_USEC,
                                   on_mirror_poll_reply, m, NULL);
        if (sd_event_source_set_time_relative(s, MIGRATION_POLL_USEC) >= 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* copy-storage: the disks first; the memory once every mirror is ready
 * (on_mirror_poll_reply). The URI waits until then (and a tunnel's
 * socket, which QEMU has under its name already). */
static int storage_mirror_start(QemuMigration *m, const char *uri, GError **error) {
        int r;

        r = qemu_storage_mirror(m->storage, m->qd->qmp, m->tls_creds, m->tls_hostname, on_source_setup_reply, m,
                                error);
        if (r < 0)
                return r;
        g_free(m->data_uri);
        m->data_uri = g_strdup(uri);
        m->mirroring = true;
        r = sd_event_add_time_relative(m->qd->backend->event, &m->poll, CLOCK_MONOTONIC, MIGRATION_POLL_USEC, 1000,
                                       on_mirror_poll, m);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "cannot poll the disk mirrors: %s", g_strerror(-r));
        log_info("domain '%s': copying its disks first", domain_name(m->qd->domain));
        return 0;
}

int qemu_migrate_perform(void *domain_data, const MigrationTarget *target, const MigrateOptions *options,
                         const MigrationTls *tls,
                         MigrateProgressFn progress, BackendDone done, void *userdata, GError **error) {
        QemuDomain *qd = domain_data;
        const char *data_uri = target->data_uri;
        int data_fd = target->data_fd;
        g_autofree char *uri = NULL;
        g_autofree char *host = NULL;
        uint16_t port;
        QemuMigration *m;
        int r;

        if (data_fd >= 0)
                uri = g_strdup("fd:" STREAM_FD_NAME);
        else {
                uri = qemu_uri_from_data_uri(data_uri, error);
                if (!uri)
                        return -EINVAL;
                /* The name the destination's certificate must have. */
                (void) data_uri_parse(data_uri, &host, &port, NULL);
        }
        if (!qd->qmp)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "no monitor connection to QEMU");

        if (options->postcopy_resume && qd->migration && qd->migration->stream_broken) {
                /* The same migration, its stream again: QEMU kept its state. */
                m = qd->migration;
                m->progress = progress;
                m->progress_userdata = userdata;
                m->stream_done = false;
                m->stream_broken = false;
                m->stream_completed = false;
                m->confirm_waiting = false;
                m->stall_handled = false;
                m->last_progress_usec = 0;
                m->postcopy_active = false;
                m->postcopy_requested = true;
                JsonObject *resume = json_object_new();
                json_object_set_string_member(resume, "uri", uri);
                json_object_set_boolean_member(resume, "resume", true);
                /* The resume may bring new rates (a link that came back slower). */
                migrate_options_free(m->options);
                m->options = migrate_options_copy(options);
                r = send_parameters(m, true, tls, host, on_source_setup_reply, error);
                if (r >= 0 && data_fd >= 0)
                        r = send_stream_fd(m, data_fd, error);
                if (r >= 0)
                        r = qmp_execute(qd->qmp, "migrate", resume, MIGRATION_COMMAND_TIMEOUT_USEC, on_migrate_reply, m,
                                        error);
                else
                        json_object_unref(resume);
                if (r < 0)
                        return r;
                log_info("domain '%s': resuming the post-copy to %s", domain_name(qd->domain), uri);
                qemu_domain_begin(qd, QEMU_OP_MIGRATE_PERFORM, done, userdata);
                return 0;
        }
        m = migration_new(qd, true, options);
        m->progress = progress;
        m->progress_userdata = userdata;
        m->ran_before = qd->domain->state == DOMAIN_STATE_RUNNING;
        m->stats.iteration = 0;

        r = qemu_features_from_reply(target->backend_reply, qd->backend->caps, options, &m->features, error);
        if (r >= 0 && m->features.zero_copy_send)
                r = memlock_raise(m, error);
        if (r < 0) {
                qemu_migration_free(qd);
                return r;
        }
        {
                g_autofree char *features_line = qemu_features_describe(&m->features);
                log_info("domain '%s': %s", domain_name(qd->domain), features_line);
        }

        if (options->copy_storage != MIGRATE_COPY_STORAGE_NONE) {
                r = qemu_storage_new_outgoing(qd->backend->event, qd->domain->def, options, target->backend_reply,
                                              target->tunnel_fds, &m->storage, error);
                if (r < 0) {
                        qemu_migration_free(qd);
                        return r;
                }
        }
        r = qmp_execute(qd->qmp, "migrate-set-capabilities", capabilities_args(m),
                        MIGRATION_COMMAND_TIMEOUT_USEC, on_source_setup_reply, m, error);
        if (r >= 0)
                r = send_parameters(m, true, tls, host, on_source_setup_reply, error);
        if (r >= 0 && m->storage && data_fd >= 0)
                r = send_stream_fd(m, data_fd, error);
        if (r >= 0) {
                /* Before the stream, as libvirt: the clients connect to the
                 * destination in the background and switch with the guest. */
                m->spice_relocated = qemu_displays_relocate(qd, target->backend_reply);
                if (target->backend_reply)
                        m->destination_reply = g_variant_ref(target->backend_reply);
        }
        if (r >= 0 && m->storage)
                r = storage_mirror_start(m, uri, error);
        else if (r >= 0)
                r = send_migrate(m, uri, data_fd, error);
        if (r < 0) {
                qemu_migration_free(qd);
                return r;
        }
        log_info("domain '%s': migrating to %s", domain_name(qd->domain), uri);
        qemu_domain_begin(qd, QEMU_OP_MIGRATE_PERFORM, done, userdata);
        return 0;
}

static void send_start_postcopy(QemuMigration *m);

static void on_start_postcopy_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                    void *userdata) {
        QemuMigration *m = userdata;

        if (!error) {
                log_info("domain '%s': switching to post-copy", domain_name(m->qd->domain));
                return;
        }
        /* Older QEMUs refuse before the first pass has started: ask again
         * at the next MIGRATION_PASS, instead of making the caller retry. */
        m->postcopy_sent = false;
        log_debug("domain '%s': post-copy not possible yet (%s): asking again at the next pass",
                  domain_name(m->qd->domain), error->message);
}

static void send_start_postcopy(QemuMigration *m) {
        if (m->postcopy_sent || !m->qd->qmp)
                return;
        m->postcopy_sent = true;
        (void) qmp_execute(m->qd->qmp, "migrate-start-postcopy", NULL, MIGRATION_COMMAND_TIMEOUT_USEC,
                           on_start_postcopy_reply, m, NULL);
}

int qemu_migrate_start_postcopy(void *domain_data, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;

        if (!m || !m->outgoing || m->stream_done)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration is streaming from this host");
        if (!m->options->postcopy)
                return vm_error_set(error, VM_ERROR_POSTCOPY_NOT_ENABLED, "the migration was started without post-copy");
        m->postcopy_requested = true;
        send_start_postcopy(m);
        return 0;
}

/* auto-converge throttles the vCPUs by itself once a pass dirties more
 * than half of what it sent, twice: starting at cpu-throttle-initial, then
 * cpu-throttle-increment more at each such pass, up to max-cpu-throttle.
 * All three are read at each step, so setting them to the same value
 * makes that value the throttle from QEMU's next step on; 1 (the least
 * QEMU takes) holds it back until the policy asks for more. */
int qemu_migrate_set_throttle(void *domain_data, unsigned percent, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;
        uint64_t allowed;
        unsigned cap;
        gint64 p;

        if (!m || !m->outgoing || m->stream_done || !qd->qmp)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration is streaming from this host");
        allowed = m->max_downtime ? m->max_downtime : MIGRATION_DEFAULT_DOWNTIME_MS;
        cap = qemu_throttle_cap(allowed);
        if (percent > cap)
                log_info("domain '%s': throttling by %u%%, not %u%%: QEMU would stop the guest for %" G_GUINT64_FORMAT
                         " ms at a time, more than half of the %" G_GUINT64_FORMAT " ms pause it may see",
                         domain_name(qd->domain), cap, percent, qemu_throttle_stall_ms(percent), allowed);
        m->throttle = percent ? MIN(percent, cap) : 0;
        p = m->throttle ? m->throttle : 1;
        JsonObject *args = json_object_new();
        json_object_set_int_member(args, "cpu-throttle-initial", p);
        json_object_set_int_member(args, "cpu-throttle-increment", p);
        json_object_set_int_member(args, "max-cpu-throttle", p);
        /* The switch-over's pause plus a throttle sleep it may follow. */
        json_object_set_int_member(args, "downtime-limit", (gint64) qemu_downtime_limit(allowed, m->throttle));
        return qmp_execute(qd->qmp, "migrate-set-parameters", args, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, error);
}

void qemu_migrate_destination_runs(void *domain_data) {
        QemuDomain *qd = domain_data;

        if (qd->migration && qd->migration->outgoing)
                qd->migration->destination_runs = true;
}

int qemu_migrate_pause(void *domain_data, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;

        if (!m || !m->postcopy_active || !qd->qmp)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no post-copy in progress here");
        /* Out of band: the destination's main loop may be stuck waiting for
         * a page that the broken link no longer brings. */
        return qmp_execute_oob(qd->qmp, "migrate-pause", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL,
                               error);
}

int qemu_migrate_cancel(void *domain_data, GError **error) {
        QemuDomain *qd = domain_data;

        if (!qd->migration || !qd->migration->outgoing || qd->migration->stream_done || !qd->qmp)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration is streaming from this host");
        if (qd->migration->mirroring) {
                /* Only the disks are being copied: stop them, the memory never goes. */
                migration_stream_end(qd->migration, -ECANCELED, "the migration was cancelled");
                return 0;
        }
        return qmp_execute(qd->qmp, "migrate_cancel", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, error);
}

static int set_parameter(QemuDomain *qd, const char *name, uint64_t value, GError **error) {
        JsonObject *args;

        if (!qd->migration || !qd->migration->outgoing || qd->migration->stream_done || !qd->qmp)
                return vm_error_set(error, VM_ERROR_NO_JOB, "no migration is streaming from this host");
        args = json_object_new();
        json_object_set_int_member(args, name, (gint64) value);
        return qmp_execute(qd->qmp, "migrate-set-parameters", args, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, error);
}

int qemu_migrate_set_max_downtime(void *domain_data, uint64_t milliseconds, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;
        int r;

        r = set_parameter(qd, "downtime-limit", qemu_downtime_limit(milliseconds, m ? m->throttle : 0), error);
        if (r >= 0)
                m->max_downtime = milliseconds;
        return r;
}

int qemu_migrate_set_max_bandwidth(void *domain_data, uint64_t bytes_per_second, bool postcopy, GError **error) {
        /* 0 is QEMU's own "no limit" for max-postcopy-bandwidth only. */
        if (!postcopy && bytes_per_second == 0)
                bytes_per_second = MIGRATION_UNLIMITED_BANDWIDTH;
        return set_parameter(domain_data, postcopy ? "max-postcopy-bandwidth" : "max-bandwidth", bytes_per_second,
                             error);
}

/* The guest runs on the destination: this QEMU must go. The exit
 * completes the operation (process_exited). */
static void source_quit(QemuMigration *m) {
        m->spice_wait = sd_event_source_disable_unref(m->spice_wait);
        (void) qmp_execute(m->qd->qmp, "quit", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
}

static void spice_wait_query(QemuMigration *m);

static int on_spice_wait_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        spice_wait_query(userdata);
        return 0;
}

/* As libvirt: the source's SPICE server hands its clients over to the
 * destination's after the switch-over (seamless migration); quitting
 * before it says it is done (query-spice 'migrated', also true when no
 * client is connected) makes them reconnect from scratch. Never longer
 * than SPICE_WAIT_USEC: the guest already runs there. */
#define SPICE_WAIT_USEC (10 * G_USEC_PER_SEC)
#define SPICE_WAIT_POLL_USEC (100 * 1000)

static void on_spice_wait_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                void *userdata) {
        QemuMigration *m = userdata;
        QemuDomain *qd = m->qd;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        uint64_t waited = (uint64_t) g_get_monotonic_time() - m->spice_wait_since;

        if (error || !o) {
                log_warning("domain '%s': cannot ask QEMU whether its SPICE clients moved (%s): quitting",
                            domain_name(qd->domain), error ? error->message : "no answer");
                source_quit(m);
                return;
        }
        if (json_get_bool_member(o, "migrated", false)) {
                log_info("domain '%s': SPICE clients handed over to the destination (%" G_GUINT64_FORMAT " ms)",
                         domain_name(qd->domain), waited / 1000);
                source_quit(m);
                return;
        }
        if (waited >= SPICE_WAIT_USEC) {
                log_warning("domain '%s': SPICE clients not handed over after %d s: quitting; they reconnect",
                            domain_name(qd->domain), (int) (SPICE_WAIT_USEC / G_USEC_PER_SEC));
                source_quit(m);
                return;
        }
        if (sd_event_add_time_relative(qd->backend->event, &m->spice_wait, CLOCK_MONOTONIC, SPICE_WAIT_POLL_USEC,
                                       10 * 1000, on_spice_wait_timer, m) < 0)
                source_quit(m);
}

static void spice_wait_query(QemuMigration *m) {
        m->spice_wait = sd_event_source_disable_unref(m->spice_wait);
        if (qmp_execute(m->qd->qmp, "query-spice", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, on_spice_wait_reply, m,
                        NULL) < 0)
                source_quit(m);
}

static void on_confirm_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                              void *userdata) {
        QemuMigration *m = userdata;
        QemuDomain *qd = m->qd;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;

        if (m->confirm_success) {
                if (m->spice_relocated) {
                        m->spice_wait_since = (uint64_t) g_get_monotonic_time();
                        spice_wait_query(m);
                        return;
                }
                source_quit(m);
                return;
        }
        if (o && !json_get_bool_member(o, "running", true) && m->ran_before) {
                (void) qmp_execute(qd->qmp, "cont", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
                qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "migration-failed", "resumed", "migrated");
        } else if (qd->domain->state == DOMAIN_STATE_PAUSED && m->ran_before) {
                qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "migration-failed", "resumed", "migrated");
        }
        qemu_migration_free(qd);
        qemu_domain_complete(qd, 0, NULL);
}

/* Source, post-copy: act on how the stream ended, once Confirm waits. */
static void postcopy_confirm_check(QemuMigration *m) {
        QemuDomain *qd = m->qd;

        if (!m->confirm_waiting)
                return;
        if (m->stream_completed) {
                m->confirm_waiting = false;
                m->confirm_success = true;
                (void) qmp_execute(qd->qmp, "quit", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
                return; /* the exit completes Confirm */
        }
        if (m->stream_broken) {
                m->confirm_waiting = false;
                /* Its job ends now; a resume brings new callbacks. */
                m->poll = sd_event_source_disable_unref(m->poll);
                m->progress = NULL;
                qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "postcopy-failed", "suspended", "postcopy-failed");
                qemu_domain_complete_error(qd, VM_ERROR_POSTCOPY_FAILED,
                                           "the post-copy stream broke: the guest is paused on both hosts and "
                                           "neither has all of its memory; nothing was stopped");
        }
}

int qemu_migrate_confirm(void *domain_data, bool success, BackendDone done, void *userdata, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;
        int r;

        if (!m || !qd->qmp) {
                /* QEMU is gone (it died while streaming): nothing to undo. */
                if (success)
                        return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "the source QEMU is gone");
                qemu_migration_free(qd);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "the source QEMU is gone: the guest runs nowhere; start it again");
        }
        m->confirm_success = success;
        if (m->postcopy_active) {
                /* Neither host has the whole guest until the last page is
                 * across: wait for that, whatever the caller says. */
                qemu_domain_begin(qd, QEMU_OP_MIGRATE_CONFIRM, done, userdata);
                m->confirm_waiting = true;
                postcopy_confirm_check(m);
                return 0;
        }
        r = qmp_execute(qd->qmp, "query-status", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, on_confirm_status, m, error);
        if (r < 0)
                return r;
        qemu_domain_begin(qd, QEMU_OP_MIGRATE_CONFIRM, done, userdata);
        return 0;
}

/* Found paused after its stream was copied, its Confirm never given (the
 * source's vmigrated restarted): Confirm it now that the core knows how
 * Finish went. Whether the guest ran before its migration is not known
 * any more: it did, as guests that migrate mostly do. */
int qemu_migrate_settle_unconfirmed(void *domain_data, bool guest_left, BackendDone done, void *userdata,
                                    GError **error) {
        QemuDomain *qd = domain_data;
        g_autoptr(GVariant) none = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
        g_autoptr(MigrateOptions) options = NULL;
        QemuMigration *m;

        if (qd->migration || !qd->qmp || !qd->process)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' has no copied migration to settle",
                                    domain_name(qd->domain));
        if (migrate_options_parse(none, &options, error) < 0)
                return -EINVAL;
        m = migration_new(qd, true, options);
        m->ran_before = true;
        m->stream_done = true;
        return qemu_migrate_confirm(domain_data, guest_left, done, userdata, error);
}

void qemu_migrate_leave_unconfirmed(void *domain_data) {
        QemuDomain *qd = domain_data;

        if (!qd->migration)
                return;
        qemu_migration_free(qd);
        qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "migration-unconfirmed", NULL, NULL);
}

/* ---- destination ---- */

/* QEMU as root (as vmigrated runs it) may always use userfaultfd; others
 * need /dev/userfaultfd or the sysctl. */
static bool userfaultfd_usable(void) {
        g_autofree char *sysctl = NULL;

        if (geteuid() == 0 || access("/dev/userfaultfd", R_OK | W_OK) == 0)
                return true;
        return g_file_get_contents("/proc/sys/vm/unprivileged_userfaultfd", &sysctl, NULL, NULL) &&
               g_str_has_prefix(sysctl, "1");
}

/* Whether we can bind host:port ourselves, right before QEMU does (we
 * share its network namespace). Racy, hence the retry on QEMU's refusal. */
/* Where to listen when option listen-address is not given. The data URI
 * names this host by its host name, so the source connects to what that
 * name resolves to: listen on that address alone, when it is one of this
 * host's own and not loopback, rather than on every address (a port on
 * every interface is a door on every network). The name is looked up in
 * /etc/hosts only, where a host's own name normally is: a DNS query would
 * block the event loop. Otherwise every address, and the log says so. */
static char *default_listen_address(void) {
        g_autofree char *hostname = manager_get_hostname();
        char *address = net_own_address("/etc/hosts", hostname);

        if (address)
                return address;
        log_warning("this host's name '%s' is not in /etc/hosts with one of its own non-loopback addresses: "
                    "incoming migrations listen on every address (give option listen-address)",
                    hostname);
        return g_strdup("0.0.0.0");
}

/* A port another incoming stream of this daemon was given, whose QEMU
 * has not bound it yet, looks free to bind(): skip it too, or two
 * Prepares at once (an evacuation) pick the same port and the second
 * QEMU's migrate-incoming fails (QEMU cannot be asked again). */
static bool port_is_free(QemuBackend *b, const char *host, uint16_t port) {
        if (g_hash_table_contains(b->claimed_ports, GUINT_TO_POINTER(port)))
                return false;
        int r = net_try_bind(host, port);
        /* A name (-EINVAL): let QEMU decide. */
        return r >= 0 || r == -EINVAL;
}

/* Until QEMU answers migrate-incoming: then it has bound the port (and
 * bind() sees it) or failed. */
static void incoming_claim_port(QemuMigration *m) {
        incoming_release_port(m);
        g_hash_table_add(m->qd->backend->claimed_ports, GUINT_TO_POINTER(m->port));
        m->port_claimed = true;
}

static void incoming_release_port(QemuMigration *m) {
        if (!m->port_claimed)
                return;
        g_hash_table_remove(m->qd->backend->claimed_ports, GUINT_TO_POINTER(m->port));
        m->port_claimed = false;
}

static void prepare_complete(QemuMigration *m, int r, const GError *error) {
        QemuDomain *qd = m->qd;
        MigratePrepareDone done = m->prepare_done;
        void *userdata = m->prepare_userdata;

        m->prepare_done = NULL;
        qd->op = QEMU_OP_NONE;
        if (r < 0 && !m->resuming) {
                m->discard = true;
                qemu_domain_terminate(qd);
        }
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) displays = g_variant_ref_sink(qemu_displays_current(qd));
        if (r >= 0) {
                g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
                /* What the source's QEMU must set up as this one did. */
                qemu_features_add_to_reply(&m->features, &dict);
                if (m->storage) {
                        /* The disks are copied to the host the stream goes
                         * to, or through the tunnel as it is. */
                        g_autofree char *host = NULL;
                        uint16_t port;
                        if (m->options->tunnelled)
                                qemu_storage_add_tunnel_reply(m->storage, m->qd->paths->nbd_socket, &dict);
                        else if (data_uri_parse(m->data_uri, &host, &port, NULL) >= 0)
                                qemu_storage_add_reply(m->storage, host, &dict);
                }
                /* Where the guest's displays will be: SPICE clients are sent
                 * there, and the source's Displays names them afterwards. */
                if (g_variant_n_children(displays) > 0)
                        g_variant_dict_insert_value(&dict, "displays", displays);
                reply = g_variant_ref_sink(g_variant_dict_end(&dict));
        }
        done(r, error, r < 0 ? NULL : m->data_uri, reply, userdata);
}

static int incoming_listen(QemuMigration *m, GError **error);

static void on_incoming_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                              void *userdata) {
        QemuMigration *m = userdata;
        g_autoptr(GError) local = NULL;

        incoming_release_port(m);
        if (!m->prepare_done)
                return;
        if (!error) {
                m->incoming_listening = true;
                if (m->options->tunnelled)
                        log_info("domain '%s': waiting for the tunnelled stream on %s", domain_name(m->qd->domain),
                                 m->data_uri);
                else
                        log_info("domain '%s': waiting for the stream on %s:%u", domain_name(m->qd->domain),
                                 m->listen_host, m->port);
                prepare_complete(m, 0, NULL);
                return;
        }
        /* Someone took the port between our check and QEMU's bind: next. */
        if (!m->options->tunnelled && strstr(error->message, "in use") &&
            !migrate_options_has(m->options, MIGRATE_OPTION_DATA_URI) &&
            m->port < MIGRATION_PORT_MAX) {
                m->port++;
                if (incoming_listen(m, &local) >= 0)
                        return;
                error = local;
        }
        prepare_complete(m, -EIO, error);
}

/* Starts listening for the stream: migrate-incoming, or for a broken
 * post-copy migrate-recover, out of band, since the guest runs here and
 * QEMU's main loop may be blocked in a fault on a page still on the
 * source, which only the recovered stream can bring (an in-band
 * migrate-recover would wait for it for ever). */
static int incoming_execute(QemuMigration *m, JsonObject *args, GError **error) {
        Qmp *qmp = m->qd->qmp;

        if (m->resuming)
                return qmp_execute_oob(qmp, "migrate-recover", args, MIGRATION_COMMAND_TIMEOUT_USEC,
                                       on_incoming_reply, m, error);
        return qmp_execute(qmp, "migrate-incoming", args, MIGRATION_COMMAND_TIMEOUT_USEC, on_incoming_reply,
                           m, error);
}

/* Option 'tunnelled': a socket in the guest's own directory (0700, the
 * daemon's), which the daemon connects to for the source. */
static int incoming_listen_tunnel(QemuMigration *m, GError **error) {
        QemuDomain *qd = m->qd;
        JsonObject *args = json_object_new();
        g_autofree char *uri = g_strconcat("unix:", qd->paths->stream_socket, NULL);

        (void) unlink(qd->paths->stream_socket); /* of an earlier attempt */
        g_free(m->data_uri);
        m->data_uri = g_strdup(uri);
        json_object_set_string_member(args, "uri", uri);
        return incoming_execute(m, args, error);
}

static int incoming_listen(QemuMigration *m, GError **error) {
        QemuDomain *qd = m->qd;
        g_autofree char *hostname = NULL;
        bool any;

        if (m->options->tunnelled)
                return incoming_listen_tunnel(m, error);
        hostname = manager_get_hostname();
        any = g_str_equal(m->listen_host, "0.0.0.0") || g_str_equal(m->listen_host, "::");
        if (!migrate_options_has(m->options, MIGRATE_OPTION_DATA_URI)) {
                while (m->port <= MIGRATION_PORT_MAX && !port_is_free(qd->backend, m->listen_host, m->port))
                        m->port++;
                if (m->port > MIGRATION_PORT_MAX)
                        return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                            "no free port in the migration range %d-%d on %s",
                                            MIGRATION_PORT_MIN, MIGRATION_PORT_MAX, m->listen_host);
                g_free(m->data_uri);
                /* By name unless listen-address named an address: the
                 * default address is what the name resolves to, and the
                 * name is what a TLS certificate is issued for. */
                const char *reported = any || !migrate_options_has(m->options, MIGRATE_OPTION_LISTEN_ADDRESS)
                                               ? hostname
                                               : m->listen_host;
                m->data_uri = strchr(reported, ':') ? g_strdup_printf("tcp://[%s]:%u", reported, m->port)
                                                    : g_strdup_printf("tcp://%s:%u", reported, m->port);
        }

        JsonObject *args = json_object_new();
        g_autofree char *uri = strchr(m->listen_host, ':') ? g_strdup_printf("tcp:[%s]:%u", m->listen_host, m->port)
                                                           : g_strdup_printf("tcp:%s:%u", m->listen_host, m->port);
        json_object_set_string_member(args, "uri", uri);
        int r = incoming_execute(m, args, error);
        if (r >= 0 && !migrate_options_has(m->options, MIGRATE_OPTION_DATA_URI))
                incoming_claim_port(m);
        return r;
}

static void on_incoming_setup_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                    void *userdata) {
        QemuMigration *m = userdata;

        /* QEMU gone: its exit reports why, in its own words. */
        if (error && !error_class)
                return;
        if (error && m->prepare_done)
                prepare_complete(m, -EIO, error);
}

/* copy-storage: an NBD server on the data address, on the first free port
 * of the range (the stream takes one after it), exporting the new images;
 * with 'tunnelled' on a socket in the guest's own directory, which only the
 * daemon connects to (Incoming.OpenTunnel), as for the stream. */
static int incoming_export_disks(QemuMigration *m, GError **error) {
        uint16_t port = MIGRATION_PORT_MIN;

        if (m->options->tunnelled) {
                (void) unlink(m->qd->paths->nbd_socket); /* of an earlier attempt */
                return qemu_storage_export_unix(m->storage, m->qd->qmp, m->qd->paths->nbd_socket,
                                                on_incoming_setup_reply, m, error);
        }

        while (port <= MIGRATION_PORT_MAX && !port_is_free(m->qd->backend, m->listen_host, port))
                port++;
        if (port > MIGRATION_PORT_MAX)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "no free port in the migration range %d-%d on %s for the disk copy",
                                    MIGRATION_PORT_MIN, MIGRATION_PORT_MAX, m->listen_host);
        if (!migrate_options_has(m->options, MIGRATE_OPTION_DATA_URI) && m->port <= port)
                m->port = port + 1;
        return qemu_storage_export(m->storage, m->qd->qmp, m->listen_host, port, m->tls_creds, m->tls_authz,
                                   on_incoming_setup_reply, m, error);
}

static void on_incoming_ready(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                              void *userdata) {
        QemuMigration *m = userdata;
        g_autoptr(GError) local = NULL;

        if (!m->prepare_done)
                return; /* an earlier step failed */
        if (error && !error_class)
                return; /* QEMU gone: its exit reports why */
        if (error) {
                prepare_complete(m, -EIO, error);
                return;
        }
        qemu_domain_report(m->qd, DOMAIN_STATE_PAUSED, "migration", "started", "migrated");
        /* Until Finish settles it, a restarted daemon must know this QEMU
         * holds a half-arrived guest (and discard it). */
        (void) g_file_set_contents(m->qd->paths->incoming, "", 0, NULL);
        if ((m->storage && incoming_export_disks(m, &local) < 0) || incoming_listen(m, &local) < 0)
                prepare_complete(m, -EIO, local);
}

/* QEMU started waiting for the stream, its capabilities and parameters
 * set; on_incoming_ready goes on. On failure QEMU is not running or is
 * being stopped (its exit frees m); without a QEMU, m is the caller's to
 * free. */
static int prepare_launch(QemuMigration *m, const DomainDef *def, const MigrationTls *tls, GError **error) {
        QemuDomain *qd = m->qd;
        int r;

        qd->incoming_has_blocktime = false;
        qd->incoming_blocktime_ms = 0;
        r = qemu_domain_launch(qd, def, true, error);
        if (r < 0)
                return r;
        r = qmp_execute(qd->qmp, "migrate-set-capabilities", capabilities_args(m),
                        MIGRATION_COMMAND_TIMEOUT_USEC, on_incoming_setup_reply, m, error);
        if (r >= 0)
                r = send_parameters(m, false, tls, NULL, on_incoming_setup_reply, error);
        if (r >= 0)
                r = qmp_execute(qd->qmp, "query-status", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, on_incoming_ready, m,
                                error);
        if (r < 0) {
                m->discard = true;
                qemu_domain_terminate(qd);
                return r;
        }
        qd->op = QEMU_OP_MIGRATE_PREPARE;
        return 0;
}

/* copy-storage: the images exist (or could not be made). */
static void on_images_created(int r, const GError *error, void *userdata) {
        QemuMigration *m = userdata;
        QemuDomain *qd = m->qd;
        g_autoptr(GError) local = NULL;
        g_autoptr(DomainDef) def = g_steal_pointer(&m->launch_def);
        MigratePrepareDone done = m->prepare_done;
        void *done_userdata = m->prepare_userdata;

        if (r >= 0 && prepare_launch(m, def, m->launch_tls.dir ? &m->launch_tls : NULL, &local) >= 0)
                return;
        if (!error)
                error = local;
        m->prepare_done = NULL;
        qd->op = QEMU_OP_NONE;
        g_autoptr(GError) copy = g_error_copy(error); /* error may be m's */
        if (!qd->process)
                qemu_migration_free(qd); /* and the images made for it */
        done(-EIO, copy, NULL, NULL, done_userdata);
}

int qemu_migrate_prepare(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                         const MigrationTls *tls,
                         GVariant *source_cookie, MigratePrepareDone done, void *userdata, GError **error) {
        QemuDomain *qd = domain_data;
        QemuCaps *caps = qd->backend->caps;
        const char *version = NULL, *accel = NULL;
        QemuMigration *m;
        int r;

        if (!g_variant_lookup(source_cookie, "qemu-version", "&s", &version) ||
            !g_variant_lookup(source_cookie, "accel", "&s", &accel))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source did not say which QEMU it runs; is it the qemu backend?");
        if (g_str_equal(def->type, "qemu") && !options->postcopy && !options->unsafe &&
            qemu_caps_has_defect(caps, "tcg-precopy-loses-writes"))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the destination's QEMU %u.%u.%u loses guest writes when a TCG guest arrives "
                                    "by pre-copy (fixed in QEMU 9.0): install QEMU 9.0 or newer there, or use "
                                    "post-copy; option 'unsafe' goes ahead anyway",
                                    caps->major, caps->minor, caps->micro);
        if (options->parallel_connections > 0 && !qemu_caps_has_migration_capability(caps, "multifd"))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "the destination's QEMU has no multifd");
        if (options->postcopy && !userfaultfd_usable())
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "post-copy needs userfaultfd on the destination, which QEMU cannot use here "
                                    "(no /dev/userfaultfd access, vm.unprivileged_userfaultfd=0, not root)");

        if (options->postcopy_resume) {
                m = qd->migration;
                if (!m || m->outgoing || !qd->qmp || !m->postcopy_active)
                        return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                            "domain '%s' has no broken incoming post-copy here", def->name);
                m->resuming = true;
                m->prepare_done = done;
                m->prepare_userdata = userdata;
                m->stream_broken = false;
                g_clear_pointer(&m->incoming_failure, g_free);
                /* Where to listen now, which may differ from the first time
                 * (and is unknown after a restart of this daemon). */
                migrate_options_free(m->options);
                m->options = migrate_options_copy(options);
                g_free(m->listen_host);
                m->listen_host = options->tunnelled ? NULL
                                 : migrate_options_has(options, MIGRATE_OPTION_LISTEN_ADDRESS)
                                         ? g_strdup(options->listen_address)
                                         : default_listen_address();
                m->port = MIGRATION_PORT_MIN;
                if (migrate_options_has(options, MIGRATE_OPTION_DATA_URI)) {
                        g_autofree char *host = NULL;
                        (void) data_uri_parse(options->data_uri, &host, &m->port, NULL);
                        g_free(m->data_uri);
                        m->data_uri = g_strdup(options->data_uri);
                }
                qd->op = QEMU_OP_MIGRATE_PREPARE;
                r = incoming_listen(m, error);
                if (r < 0) {
                        m->prepare_done = NULL;
                        qd->op = QEMU_OP_NONE;
                }
                return r;
        }
        QemuFeatures features;
        {
                const char *source_host = NULL;
                g_autofree char *own_host = manager_get_hostname();
                (void) g_variant_lookup(source_cookie, "hostname", "&s", &source_host);
                r = qemu_features_negotiate(caps, source_cookie, options, own_host, source_host, &features,
                                            error);
                if (r < 0)
                        return r;
        }
        m = migration_new(qd, false, options);
        m->features = features;
        m->prepare_done = done;
        m->prepare_userdata = userdata;
        if (migrate_options_has(options, MIGRATE_OPTION_DATA_URI)) {
                g_autofree char *host = NULL;
                (void) data_uri_parse(options->data_uri, &host, &m->port, NULL);
                m->data_uri = g_strdup(options->data_uri);
        } else
                m->port = MIGRATION_PORT_MIN;
        m->listen_host = options->tunnelled ? NULL
                         : migrate_options_has(options, MIGRATE_OPTION_LISTEN_ADDRESS)
                                 ? g_strdup(options->listen_address)
                                 : default_listen_address();
        {
                g_autofree char *features_line = qemu_features_describe(&m->features);
                log_info("domain '%s': incoming from a QEMU %s (%s) source; %s", def->name, version, accel,
                         features_line);
        }

        g_autoptr(GVariant) nvram = g_variant_lookup_value(source_cookie, "nvram", G_VARIANT_TYPE_BYTESTRING);
        if (nvram && def->os_loader_pflash) {
                g_autofree char *path = qemu_nvram_path(qd->backend->nvram_dir, def);
                g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(nvram);
                r = qemu_nvram_stage(path, bytes, &m->nvram, error);
                if (r < 0) {
                        m->prepare_done = NULL;
                        qemu_migration_free(qd);
                        return r;
                }
        }

        if (options->copy_storage != MIGRATE_COPY_STORAGE_NONE) {
                /* QEMU opens the disks when it starts: they must exist first. */
                if (tls) {
                        m->launch_tls.dir = g_strdup(tls->dir);
                        m->launch_tls.peer_dn = g_strdup(tls->peer_dn);
                }
                r = qemu_storage_new_incoming(qd->backend->event, def, options, source_cookie, &m->storage, error);
                if (r >= 0)
                        r = qemu_storage_create(m->storage, on_images_created, m, error);
                if (r < 0) {
                        m->prepare_done = NULL;
                        qemu_migration_free(qd);
                        return r;
                }
                m->launch_def = domain_def_copy(def);
                qd->op = QEMU_OP_MIGRATE_PREPARE;
                return 0;
        }
        r = prepare_launch(m, def, tls, error);
        if (r < 0) {
                m->prepare_done = NULL;
                if (!qd->process)
                        qemu_migration_free(qd);
                return r;
        }
        return 0;
}

/* Destination, post-copy: the guest runs here now; the pages it lacks
 * come from the source on demand. */
static void incoming_postcopy_running(QemuMigration *m) {
        if (m->incoming_reported)
                return;
        m->incoming_reported = true;
        qemu_domain_report(m->qd, DOMAIN_STATE_RUNNING, "postcopy", "resumed", "postcopy");
        qemu_domain_complete(m->qd, 0, NULL);
}

/* Called back with qd: the migration may be gone by then. */
static void on_incoming_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                               void *userdata) {
        QemuDomain *qd = userdata;
        QemuMigration *m = qd->migration;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;

        if (!m || m->outgoing || qd->op != QEMU_OP_MIGRATE_FINISH)
                return;
        if (error || (o && json_get_bool_member(o, "running", false)))
                incoming_postcopy_running(m); /* else RESUME follows */
}

static void on_incoming_cont(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                             void *userdata) {
        QemuMigration *m = userdata;
        QemuDomain *qd = m->qd;

        if (error) {
                qemu_domain_complete(qd, -EIO, error);
                return;
        }
        (void) unlink(qd->paths->incoming); /* it runs here: no longer half-arrived */
        m->incoming_cont_answered = true;
        if (m->postcopy_active && !m->stream_completed) {
                /* A guest that ran here already (a postcopy-resume, or one
                 * picked up after a restart) sends no RESUME: ask. */
                if (m->incoming_resumed ||
                    qmp_execute(qd->qmp, "query-status", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, on_incoming_status,
                                qd, NULL) < 0)
                        incoming_postcopy_running(m);
                return;
        }
        /* Whole here: no post-copy to pick up after a restart (the
         * source may have been told it could switch). */
        (void) unlink(qd->paths->postcopy);
        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "migrated", "resumed", "migrated");
        qemu_migration_free(qd);
        qd->ended_later = false; /* all there already: the stream has ended too */
        qemu_domain_complete(qd, 0, NULL);
}

/* Destination, post-copy: the stream ended after the guest started here. */
static void incoming_postcopy_end(QemuMigration *m, bool completed) {
        QemuDomain *qd = m->qd;
        g_autoptr(GError) error = NULL;

        if (qd->op == QEMU_OP_MIGRATE_FINISH)
                return; /* cont still on its way; it settles it */
        if (completed) {
                (void) unlink(qd->paths->postcopy);
                qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "migrated", "resumed", "migrated");
                qemu_migration_free(qd);
                qemu_domain_stream_ended(qd, 0, NULL);
                return;
        }
        /* Not killed: neither host has the whole guest. */
        qemu_domain_report(qd, qd->domain->state, "postcopy-failed", "resumed", "postcopy-failed");
        error = g_error_new(VM_ERROR, VM_ERROR_POSTCOPY_FAILED,
                            "the post-copy stream broke; the guest waits here for its missing pages");
        qemu_domain_stream_ended(qd, -EIO, error);
}

/* Destination, post-copy completed: QEMU's postcopy-blocktime (it reports
 * it only now), then the end. Called back with qd: cont's reply, sent
 * before, may have settled the end and freed the migration already. */
static void on_incoming_final_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                     void *userdata) {
        QemuDomain *qd = userdata;
        QemuMigration *m = qd->migration;
        JsonObject *o = result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;

        if (o && json_object_has_member(o, "postcopy-blocktime")) {
                qd->incoming_has_blocktime = true;
                qd->incoming_blocktime_ms = json_uint(o, "postcopy-blocktime");
        }
        if (m && !m->outgoing && m->postcopy_active && m->stream_completed)
                incoming_postcopy_end(m, true);
}

void qemu_migrate_incoming_stats(void *domain_data, MigrationStats *stats) {
        QemuDomain *qd = domain_data;

        stats->has_postcopy_blocktime = qd->incoming_has_blocktime;
        stats->postcopy_blocktime_ms = qd->incoming_blocktime_ms;
}

/* The guest stays here: what was made for its arrival (the copied disks'
 * images, its NVRAM, its TPM state) is its own now. */
static void incoming_keep(QemuMigration *m) {
        if (m->storage)
                qemu_storage_keep(m->storage);
        qemu_nvram_stage_keep(m->nvram);
        qemu_tpm_incoming_keep(m->qd);
}

static void incoming_run(QemuMigration *m) {
        QemuDomain *qd = m->qd;
        g_autoptr(GError) error = NULL;

        m->finish_wait = sd_event_source_disable_unref(m->finish_wait);
        /* The source's mirrors are done: nobody writes through NBD any
         * more, and the images stay with the guest. */
        if (m->storage)
                (void) qemu_storage_unexport(m->storage, qd->qmp, NULL, NULL, NULL);
        incoming_keep(m);
        if (m->options->paused) {
                (void) unlink(qd->paths->incoming);
                (void) unlink(qd->paths->postcopy);
                qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "user", NULL, NULL);
                qemu_migration_free(qd);
                qemu_domain_complete(qd, 0, NULL);
                return;
        }
        if (qmp_execute(qd->qmp, "cont", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, on_incoming_cont, m, &error) < 0)
                qemu_domain_complete(qd, -EIO, error);
}

static int on_finish_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMigration *m = userdata;

        m->finish_wait = sd_event_source_disable_unref(m->finish_wait);
        m->discard = true;
        qemu_domain_terminate(m->qd);
        g_free(m->incoming_failure);
        m->incoming_failure = g_strdup("the stream did not complete on the destination in time");
        return 0;
}

int qemu_migrate_finish(void *domain_data, bool success, bool postcopy, const MigrateOptions *options,
                        BackendDone done, BackendDone ended, void *userdata, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;
        int r;

        qd->ended = ended;
        qd->ended_userdata = userdata;
        qd->ended_later = false;
        if (!m || !qd->process) {
                /* Nothing left to finish either way: the migration goes
                 * too (a later Prepare of this domain starts its own). */
                g_autofree char *why =
                        g_strdup(m && m->incoming_failure ? m->incoming_failure : "it exited");
                qd->ended = NULL;
                qemu_migration_free(qd);
                if (success)
                        return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                            "QEMU on the destination is gone: %s", why);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "nothing to discard: QEMU is gone");
        }
        qemu_domain_begin(qd, QEMU_OP_MIGRATE_FINISH, done, userdata);
        if (!success) {
                m->discard = true;
                qemu_domain_terminate(qd);
                return 0;
        }
        /* Each Finish (a postcopy-resume's too) waits for its own answers. */
        m->incoming_cont_answered = m->incoming_resumed = m->incoming_reported = false;
        if (postcopy && !m->incoming_completed) {
                /* Run it now: that is the point of post-copy. */
                (void) g_file_set_contents(qd->paths->postcopy, "in", -1, NULL);
                m->postcopy_active = true;
                qd->ended_later = true;
                incoming_run(m);
                return 0;
        }
        if (m->incoming_completed) {
                incoming_run(m);
                return 0;
        }
        r = sd_event_add_time_relative(qd->backend->event, &m->finish_wait, CLOCK_MONOTONIC,
                                       MIGRATION_FINISH_WAIT_USEC, 1000, on_finish_wait_timeout, m);
        if (r < 0) {
                qd->op = QEMU_OP_NONE;
                qd->done = NULL;
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot arm a timer: %s", g_strerror(-r));
        }
        return 0;
}

/* Source, after Perform: the NVRAM as the guest left it (it is stopped
 * here, so QEMU writes no more), for the destination's file. */
int qemu_migrate_finish_cookie(void *domain_data, GVariantDict *cookie, GError **error) {
        QemuDomain *qd = domain_data;
        g_autofree char *path = NULL;
        g_autoptr(GBytes) nvram = NULL;
        int r;

        if (!qd->domain->def->os_loader_pflash)
                return 0;
        path = qemu_nvram_path(qd->backend->nvram_dir, qd->domain->def);
        r = qemu_nvram_read(path, &nvram, error);
        if (r < 0)
                return r;
        g_variant_dict_insert_value(cookie, "nvram", g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, nvram, true));
        return 0;
}

/* Destination, Finish: the source's last NVRAM over the one staged at
 * Prepare, before the guest runs here. */
int qemu_migrate_finish_accept(void *domain_data, GVariant *source_cookie, GError **error) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;
        g_autoptr(GVariant) nvram = g_variant_lookup_value(source_cookie, "nvram", G_VARIANT_TYPE_BYTESTRING);
        g_autoptr(GBytes) bytes = NULL;

        if (!nvram)
                return 0;
        if (!m || !m->nvram)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "the source sent an NVRAM at Finish but none at Prepare");
        bytes = g_variant_get_data_as_bytes(nvram);
        return qemu_nvram_stage_update(m->nvram, bytes, error);
}

/* ---- events ---- */

void qemu_migration_block_job_event(QemuDomain *qd, const char *event, JsonObject *data) {
        if (qd->qmp)
                qemu_storage_job_ended(qd->qmp, event, data);
}

bool qemu_migration_event(QemuDomain *qd, const char *event, JsonObject *data) {
        QemuMigration *m = qd->migration;

        if (g_str_equal(event, "MIGRATION")) {
                const char *status = json_str(data, "status");
                log_debug("domain '%s': migration %s", domain_name(qd->domain), status ? status : "?");
                bool broken = g_strcmp0(status, "postcopy-paused") == 0 || g_strcmp0(status, "failed") == 0;
                if (m->outgoing && g_strcmp0(status, "postcopy-active") == 0) {
                        /* The guest's state is on the destination: Perform is
                         * over, the remaining pages follow on demand. */
                        (void) g_file_set_contents(qd->paths->postcopy, "out", -1, NULL);
                        m->postcopy_active = true;
                        m->stats.postcopy_active = true;
                        migration_stream_end(m, 0, NULL);
                } else if (m->outgoing && m->postcopy_active) {
                        m->stream_completed |= g_strcmp0(status, "completed") == 0;
                        m->stream_broken |= broken;
                        if (broken)
                                log_error("domain '%s': the post-copy stream broke (%s)", domain_name(qd->domain),
                                          status);
                        postcopy_confirm_check(m);
                } else if (m->outgoing) {
                        if (g_strcmp0(status, "completed") == 0 || g_strcmp0(status, "failed") == 0 ||
                            g_strcmp0(status, "cancelled") == 0)
                                (void) qmp_execute(qd->qmp, "query-migrate", NULL, MIGRATION_COMMAND_TIMEOUT_USEC,
                                                   on_final_status, m, NULL);
                } else if (g_strcmp0(status, "postcopy-active") == 0) {
                        /* Kept after a restart of vmigrated: the guest can
                         * run only here now (qemu_recover). */
                        (void) g_file_set_contents(qd->paths->postcopy, "in", -1, NULL);
                        m->incoming_postcopy_seen = true;
                } else if (g_strcmp0(status, "completed") == 0) {
                        m->incoming_completed = true;
                        m->stream_completed = true;
                        if (qd->op == QEMU_OP_MIGRATE_FINISH && m->finish_wait)
                                incoming_run(m);
                        else if (m->postcopy_active &&
                                 qmp_execute(qd->qmp, "query-migrate", NULL, MIGRATION_COMMAND_TIMEOUT_USEC,
                                             on_incoming_final_status, qd, NULL) < 0)
                                incoming_postcopy_end(m, true);
                } else if (broken && m->postcopy_active) {
                        incoming_postcopy_end(m, false);
                } else if (g_strcmp0(status, "failed") == 0) {
                        g_free(m->incoming_failure);
                        m->incoming_failure = g_strdup("QEMU on the destination reports the stream failed");
                }
                return true;
        }
        if ((g_str_equal(event, "BLOCK_JOB_COMPLETED") || g_str_equal(event, "BLOCK_JOB_CANCELLED")) && m->storage) {
                bool ours = qemu_storage_job_event(m->storage, event, data);
                if (ours && m->mirroring && !m->stream_done) {
                        g_autofree char *why = g_strdup_printf("the copy of disk job %s stopped: %s",
                                                               json_str(data, "device") ?: "?",
                                                               json_str(data, "error") ?: "cancelled");
                        migration_stream_end(m, -EIO, why);
                }
                return ours;
        }
        if (g_str_equal(event, "BLOCK_JOB_READY") && m->storage && m->mirroring && !m->stream_done) {
                /* A mirror in sync: ask at once whether all are, rather
                 * than at the next poll (the memory starts ~50 ms sooner). */
                if (qd->qmp)
                        (void) qmp_execute(qd->qmp, "query-block-jobs", NULL, MIGRATION_COMMAND_TIMEOUT_USEC,
                                           on_mirror_poll_reply, m, NULL);
                return true;
        }
        if (g_str_equal(event, "BLOCK_JOB_ERROR") && m->storage && m->outgoing && !m->stream_done) {
                log_error("domain '%s': a disk mirror failed: %s", domain_name(qd->domain),
                          json_str(data, "device") ?: "?");
                return true;
        }
        if (g_str_equal(event, "MIGRATION_PASS")) {
                if (m->outgoing)
                        m->stats.iteration = json_uint(data, "pass");
                if (m->outgoing && m->postcopy_requested && !m->postcopy_active)
                        send_start_postcopy(m);
                return true;
        }
        if (g_str_equal(event, "STOP") && m->outgoing) {
                /* Switch-over: the guest stops here; in post-copy it runs on
                 * the destination next, otherwise the last pages go first. */
                if (qd->domain->state == DOMAIN_STATE_RUNNING && m->postcopy_requested)
                        qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "postcopy", "suspended", "postcopy");
                else if (qd->domain->state == DOMAIN_STATE_RUNNING)
                        qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "migration", "suspended", "migrated");
                return true;
        }
        if (g_str_equal(event, "RESUME") && m->outgoing) {
                /* QEMU runs the source guest again when a migration fails
                 * after switch-over. */
                if (qd->domain->state == DOMAIN_STATE_PAUSED)
                        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "migration-failed", "resumed", "migrated");
                return true;
        }
        if (g_str_equal(event, "RESUME") && !m->outgoing) {
                /* on_incoming_cont reports it; in post-copy, whichever of
                 * the two comes last. */
                m->incoming_resumed = true;
                if (m->postcopy_active && !m->stream_completed && m->incoming_cont_answered &&
                    qd->op == QEMU_OP_MIGRATE_FINISH)
                        incoming_postcopy_running(m);
                return true;
        }
        if (g_str_equal(event, "BLOCK_IO_ERROR") && m->outgoing && m->options->abort_on_error && !m->stream_done) {
                log_warning("domain '%s': I/O error during migration: cancelling (abort-on-error)",
                            domain_name(qd->domain));
                (void) qmp_execute(qd->qmp, "migrate_cancel", NULL, MIGRATION_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
                return false;
        }
        return false;
}

/* Destination: the guest ran here in post-copy (or waited here for pages
 * after the stream broke) and its QEMU is gone: destroyed by the caller,
 * or died. Neither host has the guest any more; the post-copy ends with
 * that, and a Destroy that asked for it succeeds. */
static void incoming_postcopy_exited(QemuDomain *qd, QemuOp op, const char *how, const char *tail) {
        bool asked = op == QEMU_OP_DESTROY || op == QEMU_OP_SHUTDOWN;
        g_autoptr(GError) error = NULL;

        if (asked) {
                qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "destroyed", "stopped", "destroyed");
                error = g_error_new(VM_ERROR, VM_ERROR_POSTCOPY_FAILED,
                                    "the guest was destroyed on the destination during post-copy");
        } else {
                g_autofree char *reason = g_strdup_printf("crashed: QEMU %s during post-copy%s%s", how,
                                                          tail ? "; its last output: " : "", tail ? tail : "");
                log_error("domain '%s': %s", domain_name(qd->domain), reason);
                qemu_domain_report(qd, DOMAIN_STATE_CRASHED, reason, "stopped", "crashed");
                error = g_error_new(VM_ERROR, VM_ERROR_POSTCOPY_FAILED, "QEMU on the destination %s during post-copy",
                                    how);
        }
        (void) unlink(qd->paths->postcopy);
        qemu_migration_free(qd);
        qemu_domain_stream_ended(qd, -EIO, error);
        if (asked)
                qemu_domain_complete(qd, 0, NULL);
        else if (op != QEMU_OP_NONE)
                qemu_domain_complete_error(qd, VM_ERROR_BACKEND_FAILED, "QEMU %s before the operation completed",
                                           how);
}

void qemu_migration_process_exited(QemuDomain *qd, const char *how, const char *tail) {
        QemuMigration *m = qd->migration;
        QemuOp op = qd->op;

        if (m->outgoing && op == QEMU_OP_DESTROY) {
                /* A post-copy that failed, kept for postcopy-resume, and
                 * given up: the caller stopped what was left here. */
                qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "destroyed", "stopped", "destroyed");
                qemu_migration_free(qd);
                qemu_domain_complete(qd, 0, NULL);
                return;
        }
        if (m->outgoing && m->confirm_success) {
                qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "migrated", "stopped", "migrated");
                /* A client watching this host learns where the displays went. */
                qemu_displays_moved(qd, m->destination_reply);
                qemu_migration_free(qd);
                qemu_domain_complete(qd, 0, NULL);
                return;
        }
        if (m->outgoing) {
                g_autofree char *reason = g_strdup_printf("crashed: QEMU %s during migration", how);
                log_error("domain '%s': %s", domain_name(qd->domain), reason);
                qemu_domain_report(qd, DOMAIN_STATE_CRASHED, reason, "stopped", "crashed");
                if (op == QEMU_OP_MIGRATE_PERFORM)
                        migration_stream_end(m, -EIO, reason);
                else if (op != QEMU_OP_NONE)
                        qemu_domain_complete_error(qd, VM_ERROR_BACKEND_FAILED, "QEMU %s", how);
                qemu_migration_free(qd);
                return;
        }

        if (m->postcopy_active && op != QEMU_OP_MIGRATE_FINISH) {
                incoming_postcopy_exited(qd, op, how, tail);
                return;
        }
        /* Destination: the incoming guest is gone, asked for or not. */
        qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "failed", "stopped", "failed");
        if (m->prepare_done) {
                g_autoptr(GError) error = g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                                      "QEMU on the destination %s while preparing: %s", how,
                                                      tail ? tail : "(no output)");
                MigratePrepareDone done = m->prepare_done;
                void *userdata = m->prepare_userdata;
                m->prepare_done = NULL;
                qd->op = QEMU_OP_NONE;
                qemu_migration_free(qd);
                done(-EIO, error, NULL, NULL, userdata);
                return;
        }
        if (op == QEMU_OP_MIGRATE_FINISH) {
                bool discard = m->discard && !m->incoming_failure;
                g_autofree char *failure = g_strdup(m->incoming_failure);
                qemu_migration_free(qd);
                if (discard)
                        qemu_domain_complete(qd, 0, NULL);
                else
                        qemu_domain_complete_error(qd, VM_ERROR_BACKEND_FAILED,
                                                   "QEMU on the destination %s: %s%s%s", how,
                                                   failure ? failure : "the stream did not complete",
                                                   tail ? "; it said: " : "", tail ? tail : "");
                return;
        }
        /* Between Prepare and Finish: Finish will hear it is gone. */
        g_free(m->incoming_failure);
        m->incoming_failure = g_strdup_printf("QEMU %s before the source finished", how);
        m->discard = true;
        if (op == QEMU_OP_DESTROY || op == QEMU_OP_SHUTDOWN)
                qemu_domain_complete(qd, 0, NULL);
}

bool qemu_migrate_incoming_postcopy(void *domain_data) {
        QemuDomain *qd = domain_data;
        QemuMigration *m = qd->migration;

        return m && !m->outgoing && m->incoming_postcopy_seen;
}

void qemu_migration_reattach_postcopy_completed(QemuDomain *qd) {
        qemu_migration_reattach_postcopy(qd, true, false);
        if (!qd->migration)
                return;
        qd->migration->stream_completed = true;
        postcopy_confirm_check(qd->migration);
}

void qemu_migration_reattach_postcopy(QemuDomain *qd, bool outgoing, bool broken) {
        g_autoptr(MigrateOptions) options = NULL;
        g_autoptr(GVariant) none = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
        QemuMigration *m;

        if (qd->migration || migrate_options_parse(none, &options, NULL) < 0)
                return;
        options->postcopy = true;
        m = migration_new(qd, outgoing, options);
        m->postcopy_active = true;
        m->stats.postcopy_active = true;
        m->stream_done = true;
        m->stream_broken = broken;
        m->incoming_postcopy_seen = !outgoing;
        if (outgoing && !broken) {
                /* Nobody waits for it any more, but the last page still has
                 * to get across before this QEMU may go: see it through. */
                m->confirm_waiting = true;
                m->confirm_success = true;
        }
        if (broken)
                qemu_domain_report(qd, qd->domain->state, "postcopy-failed", NULL, NULL);
        log_info("domain '%s': picked up its %s post-copy after a restart (%s)", domain_name(qd->domain),
                 outgoing ? "outgoing" : "incoming", broken ? "paused: resume it with postcopy-resume"
                                                            : "still streaming");
}
