/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The qemu backend's insides, shared by qemu-backend.c (lifecycle) and
 * qemu-migration.c. Nothing outside backends/qemu/ includes this. */

#include <stdbool.h>

#include "backend.h"
#include "domain.h"
#include "qemu-caps.h"
#include "qemu-command.h"
#include "qemu-process.h"
#include "qmp.h"

#define QEMU_START_TIMEOUT_USEC (60 * G_USEC_PER_SEC)
#define QEMU_COMMAND_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
#define QEMU_TERMINATE_GRACE_USEC (5 * G_USEC_PER_SEC)
#define QEMU_LOG_TAIL_LINES 5
/* Our own lines in QEMU's log start with this; the rest is QEMU's. */
#define QEMU_LOG_HEADER "## vmigrated "

typedef struct QemuBackend {
        sd_event *event;
        char *qemu_dir; /* <runtime_dir>/qemu */
        char *cache_path;
        char *nvram_dir; /* <state_dir>/qemu/nvram: UEFI guests' NVRAM files (qemu-firmware.h) */
        char *swtpm_dir; /* <state_dir>/qemu/swtpm: a directory per domain with a TPM (qemu-backend.h) */
        QemuCaps *caps;
        /* The Migrate options this QEMU takes (qemu_migrate_options), made
         * from caps: rebuilt when caps change. */
        MigrateOptionSupport *option_support;
        size_t n_option_support;
        /* uuid → why: guests whose QEMU died while vmigrated was away,
         * reported as crashed when their domain object appears. */
        GHashTable *stale;
        /* Data ports chosen for incoming streams whose migrate-incoming
         * has not answered yet (qemu-migration.c). */
        GHashTable *claimed_ports;
} QemuBackend;

typedef enum QemuOp {
        QEMU_OP_NONE,
        QEMU_OP_START,
        QEMU_OP_SHUTDOWN,
        QEMU_OP_DESTROY,
        QEMU_OP_SUSPEND,
        QEMU_OP_RESUME,
        QEMU_OP_MIGRATE_PREPARE, /* destination: QEMU starting with -incoming */
        QEMU_OP_MIGRATE_PERFORM, /* source: streaming */
        QEMU_OP_MIGRATE_FINISH,  /* destination: waiting for the end, then cont (or kill) */
        QEMU_OP_MIGRATE_CONFIRM, /* source: quit (or cont) */
} QemuOp;

typedef struct QemuMigration QemuMigration;

typedef struct QemuDirtyRate QemuDirtyRate;

typedef struct QemuDomain {
        QemuBackend *backend;
        Domain *domain; /* borrowed: the domain owns us */
        QemuPaths *paths;
        QemuProcess *process;
        Qmp *qmp;

        QemuOp op;
        BackendDone done;
        void *userdata;
        /* A shutdown overtaken by destroy completes when QEMU is gone. */
        BackendDone overtaken_done;
        void *overtaken_userdata;

        sd_event_source *shutdown_timer;
        bool guest_shut_down; /* QEMU reported a shutdown the guest asked for */
        bool terminating;     /* we sent SIGTERM */
        /* An arrival found after a restart, its source told it may switch
         * to post-copy, the way its stream went not known yet (StateReason
         * postcopy-coming); coming_completed: QEMU said its stream
         * completed (which does not say whether it switched). */
        bool postcopy_coming;
        bool coming_completed;
        bool discarding; /* terminated as an arrival its source kept */

        QemuMigration *migration; /* qemu-migration.c's state, or NULL */
        QemuDirtyRate *dirty_rate; /* a measurement in progress (qemu-dirty-rate.c), or NULL */
        /* Migration Finish on the destination: the stream's end, reported
         * after done, or later (ended_later) when in post-copy. */
        BackendDone ended;
        void *ended_userdata;
        bool ended_later;
        /* The last incoming post-copy's QEMU postcopy-blocktime, kept past
         * the migration's state for migrate_incoming_stats. */
        bool incoming_has_blocktime;
        uint64_t incoming_blocktime_ms;

        /* netdev ids ("net1") of interfaces started unconnected (their
         * bridge missing on a migration's destination, not required): their
         * link is set down once the guest runs, since the incoming state
         * would bring it up again. */
        GPtrArray *links_down;

        /* displays (qemu-displays.c) */
        GArray *display_ports;  /* uint16_t: the display ports held for this QEMU */
        GVariant *display_vnc;  /* (ssa{sv}) as QEMU last reported it, or NULL */
        GVariant *display_spice;
        /* emulated TPM (qemu-tpm.c) */
        QemuProcess *swtpm;    /* the guest's swtpm, or NULL */
        char *tpm_created_dir; /* an incoming guest's state directory made for it: removed if it
                                * does not stay */
} QemuDomain;

/* The definition QEMU runs, with its UEFI firmware chosen (qemu-firmware.h)
 * for a firmware='efi' domain: def itself when there is nothing to choose,
 * else *ret_copy, which the caller frees. */
int qemu_domain_firmware_def(QemuBackend *b, const DomainDef *def, const DomainDef **ret_def, DomainDef **ret_copy,
                             GError **error);

bool kvm_usable(void);
/* "<pid> <starttime>" as the runtime records have it. */
int qemu_read_pid_file(const char *path, pid_t *ret_pid, uint64_t *ret_starttime);
int qemu_validate(void *backend_data, const DomainDef *def, GError **error);
bool json_get_bool_member(JsonObject *o, const char *name, bool fallback);
/* o's string member name (borrowed), or NULL; o may be NULL. */
const char *json_str(JsonObject *o, const char *name);

void qemu_domain_report(QemuDomain *qd, DomainState state, const char *reason, const char *event,
                        const char *detail);
void qemu_domain_begin(QemuDomain *qd, QemuOp op, BackendDone done, void *userdata);
void qemu_domain_complete(QemuDomain *qd, int r, const GError *error);
/* The incoming stream ended after a post-copy Finish. */
void qemu_domain_stream_ended(QemuDomain *qd, int r, const GError *error);
void qemu_domain_complete_error(QemuDomain *qd, VmError code, const char *format, ...) G_GNUC_PRINTF(3, 4);
void qemu_domain_terminate(QemuDomain *qd);

/* Starts QEMU for def, paused, and connects its monitor; incoming adds
 * -incoming defer. The caller queues its QMP commands and sets the op. */
int qemu_domain_launch(QemuDomain *qd, const DomainDef *def, bool incoming, GError **error);

/* qemu-displays.c */
/* Before launch: gives each <graphics> of def (the copy QEMU runs) its port,
 * held until qemu_displays_release (display-ports.h). */
int qemu_displays_reserve(QemuDomain *qd, DomainDef *def, GError **error);
/* After a daemon restart: holds the ports the running definition names. */
void qemu_displays_hold(QemuDomain *qd, const DomainDef *def);
/* QEMU is gone (or never started): its ports go back, Displays empties. */
void qemu_displays_release(QemuDomain *qd);
/* The monitor is up: the passwords (QMP set_password, before the guest
 * runs), then where the displays listen (query-vnc, query-spice). */
void qemu_displays_connected(QemuDomain *qd, const DomainDef *def);
/* a(ssa{sv}) of this QEMU's displays as last reported (floating). */
GVariant *qemu_displays_current(QemuDomain *qd);
/* Source of a migration: the destination's displays from its Prepare
 * reply ("displays" a(ssa{sv}), may be absent); sends client_migrate_info
 * for SPICE so that connected clients follow. Returns whether it did. */
bool qemu_displays_relocate(QemuDomain *qd, GVariant *backend_reply);
/* Source, after the guest left: Displays names the destination's. */
void qemu_displays_moved(QemuDomain *qd, GVariant *backend_reply);

/* qemu-tpm.c */
/*
 * The emulated TPM of a guest (<tpm><backend type='emulator'/>): one swtpm
 * per running QEMU, on the domain's state directory
 * <state_dir>/qemu/swtpm/<uuid>/ (0700, vmigrate's own, like libvirt's).
 *
 * swtpm is started before QEMU on a control socket the daemon bound (as
 * QEMU's monitor: no window in which QEMU could connect to nothing), in a
 * session of its own so that it outlives a daemon restart with its QEMU,
 * and recorded (pid + start time) in QEMU's runtime directory so that a
 * restarted daemon finds it again. It never outlives its QEMU: it runs
 * with --terminate (it ends when QEMU's connection does), and the backend
 * kills it whenever QEMU is gone (exit, Destroy, a failed start or
 * incoming migration).
 *
 * The TPM's state (permanent and volatile) travels in QEMU's migration
 * stream (the tpm-emulator device carries swtpm's state blobs): a
 * destination only starts a fresh swtpm on its own directory, whose
 * contents the incoming state replaces.
 */
/* The domain's TPM state directory. */
char *qemu_tpm_state_dir(const QemuBackend *b, const char *uuid);

/* swtpm's path (VMIGRATE_SWTPM, else "swtpm" in PATH), or NULL with *error
 * saying what to install. */
char *qemu_tpm_find_swtpm(GError **error);

/* Before QEMU starts: makes the state directory when it is missing (for
 * an incoming guest, remembered as this migration's, removed when the
 * guest does not stay: qemu_tpm_incoming_keep), and starts swtpm on
 * qd->paths->swtpm_socket. No-op for a domain without a TPM. */
int qemu_tpm_start(QemuDomain *qd, const DomainDef *def, bool incoming, GError **error);

/* QEMU is gone (or never started): swtpm goes too, and a state directory
 * made for an incoming guest that did not stay is removed. */
void qemu_tpm_stop(QemuDomain *qd);

/* The incoming guest stays here: its state directory is its own now. */
void qemu_tpm_incoming_keep(QemuDomain *qd);

/* The daemon goes away: stop watching swtpm (it keeps running with QEMU). */
void qemu_tpm_detach(QemuDomain *qd);

/* After a daemon restart, QEMU found again: its swtpm too. */
void qemu_tpm_reattach(QemuDomain *qd);

/* After a daemon restart, QEMU gone or discarded: its swtpm, if it is
 * still there, is killed. */
void qemu_tpm_kill_recorded(QemuBackend *b, const QemuPaths *paths, const char *uuid);

/* DryRun and Prepare on the destination: a guest with a TPM needs swtpm
 * there ("host.swtpm"). */
void qemu_tpm_preflight(const PreflightContext *ctx, Findings *out);

/* The domain is gone from this host (undefined, or a transient one that
 * stopped): its TPM state goes too. */
void qemu_tpm_remove_state(QemuBackend *b, const char *uuid);

/* qemu-migration.c */
const MigrateOptionSupport *qemu_migrate_options(void *backend_data, size_t *ret_n);
/* Forgets the table qemu_migrate_options made (caps changed or go). */
void qemu_migrate_options_clear(QemuBackend *b);
void qemu_migrate_check(void *backend_data, const PreflightContext *ctx, Findings *out);
int qemu_migrate_begin(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                       GVariantDict *cookie, GError **error);
int qemu_migrate_prepare(void *domain_data, const DomainDef *def, const MigrateOptions *options,
                         const MigrationTls *tls,
                         GVariant *source_cookie, MigratePrepareDone done, void *userdata, GError **error);
int qemu_migrate_perform(void *domain_data, const MigrationTarget *target, const MigrateOptions *options,
                         const MigrationTls *tls,
                         MigrateProgressFn progress, BackendDone done, void *userdata, GError **error);
int qemu_migrate_finish(void *domain_data, bool success, bool postcopy, const MigrateOptions *options,
                        BackendDone done, BackendDone ended, void *userdata, GError **error);
void qemu_migrate_incoming_stats(void *domain_data, MigrationStats *stats);
bool qemu_migrate_incoming_postcopy(void *domain_data);
int qemu_migrate_start_postcopy(void *domain_data, GError **error);
int qemu_migrate_set_throttle(void *domain_data, unsigned percent, GError **error);
int qemu_migrate_pause(void *domain_data, GError **error);
int qemu_migrate_confirm(void *domain_data, bool success, BackendDone done, void *userdata, GError **error);
int qemu_migrate_settle_unconfirmed(void *domain_data, bool guest_left, BackendDone done, void *userdata,
                                    GError **error);
void qemu_migrate_leave_unconfirmed(void *domain_data);
int qemu_migrate_finish_cookie(void *domain_data, GVariantDict *cookie, GError **error);
int qemu_migrate_finish_accept(void *domain_data, GVariant *source_cookie, GError **error);
int qemu_migrate_cancel(void *domain_data, GError **error);
void qemu_migrate_destination_runs(void *domain_data);
int qemu_migrate_set_max_downtime(void *domain_data, uint64_t milliseconds, GError **error);
int qemu_migrate_set_max_bandwidth(void *domain_data, uint64_t bytes_per_second, bool postcopy, GError **error);
/* QMP events and process exit while a migration is in progress; return
 * true when they handled it. */
/* Every BLOCK_JOB_* event, migration or not: a copy-storage mirror's end
 * may come after its migration is over (qemu-storage.c). */
void qemu_migration_block_job_event(QemuDomain *qd, const char *event, JsonObject *data);
bool qemu_migration_event(QemuDomain *qd, const char *event, JsonObject *data);
int qemu_migrate_postcopy_coming(void *domain_data, GError **error);
int qemu_migrate_settle_coming(void *domain_data, bool switched, GError **error);
void qemu_migrate_hold_coming(void *domain_data);
void qemu_migration_process_exited(QemuDomain *qd, const char *how, const char *tail);
void qemu_migration_free(QemuDomain *qd);
/* The migration goes, but an arrival whose source was told it may switch
 * keeps what was made for it: true then (the next daemon, or
 * qemu_migrate_hold_coming, keeps the arrival). */
bool qemu_migration_detach(QemuDomain *qd);
/* After a daemon restart: a post-copy QEMU was left in (marker in its runtime
 * directory): take it up again, so that it completes or can be resumed. */
void qemu_migration_reattach_postcopy(QemuDomain *qd, bool outgoing, bool broken);
/* Source, after a restart: its post-copy completed meanwhile (the guest
 * runs on the destination): this QEMU goes, as a Confirm would make it. */
void qemu_migration_reattach_postcopy_completed(QemuDomain *qd);

/* qemu-dirty-rate.c */
int qemu_measure_dirty_rate(void *domain_data, unsigned seconds, BackendDirtyRateDone done, void *userdata,
                            GError **error);
/* Ends a measurement in progress with an error (the domain goes away). */
void qemu_dirty_rate_cancel(QemuDomain *qd);
