/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared declarations of vmigratectl: exit codes, the command-line parsers
 * (ctl-args.c), the bus helpers (ctl-bus.c) and the output helpers
 * (ctl-output.c).
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>

/* Bus names, paths and interfaces, and the sd-bus cleanup functions, are
 * vmigrated's own (common/): one definition for both ends of the bus. */
#include "bus-util.h"
#include "errors.h"
#include "uri.h"

/*
 * Exit codes. Scripts rely on them, so they are part of the interface and
 * listed in --help: keep the two in sync.
 *   0  success
 *   1  the operation failed (the service returned an error, or FILE could
 *      not be read or written; migrate --dry-run: the check found errors)
 *   2  usage error (unknown command or option, missing or extra argument,
 *      malformed --host URI)
 *   3  cannot connect to the bus, vmigrated is not running or not
 *      activatable there, or the connection broke / timed out
 *   4  no such domain
 *   5  permission denied (polkit said no, or interactive authentication is
 *      needed but not allowed)
 */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,
        CTL_EXIT_USAGE = 2,
        CTL_EXIT_BUS = 3,
        CTL_EXIT_NO_DOMAIN = 4,
        CTL_EXIT_DENIED = 5,
};

/* ---- ctl-args.c: the command line, no bus ---- */

/*
 * Where to connect. --host takes the destination URIs of Domain.Migrate
 * (uri.h: ssh://[user@]host[:port], unix:///path, or a bare host name),
 * parsed by the same code as in vmigrated.
 */
typedef enum CtlHostKind {
        CTL_HOST_LOCAL,       /* no --host: the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured) */
        CTL_HOST_DESTINATION, /* --host: the bus its URI names */
} CtlHostKind;

typedef struct CtlHost {
        CtlHostKind kind;
        Destination *destination; /* CTL_HOST_DESTINATION */
} CtlHost;

void ctl_host_clear(CtlHost *host);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CtlHost, ctl_host_clear)

/*
 * Parses a --host argument. On failure returns -EINVAL and sets
 * *ret_error to destination_parse()'s message, which names the part that
 * is wrong.
 */
int ctl_host_parse(const char *uri, CtlHost *ret_host, char **ret_error);

/*
 * What to connect to: the destination --host names, except that an ssh URI
 * without a user means root, as vmigratectl has always read it (and as a
 * bare HOST means anyway); the URI grammar leaves that user to ssh. A new
 * Destination; NULL for CTL_HOST_LOCAL.
 */
Destination *ctl_host_login(const CtlHost *host);

/* Human-readable description of where we connect, for error messages. */
char *ctl_host_describe(const CtlHost *host);

/*
 * A transfer rate in bytes per second: a number (decimals allowed, "1.5G")
 * with an optional unit and an optional "/s":
 *   B                    bytes
 *   K M G T, KiB MiB GiB TiB   powers of 1024 (as virsh and QEMU count)
 *   kB KB MB GB TB       powers of 1000
 *   kbit Mbit Gbit Tbit  bits, powers of 1000 (divided by 8)
 * Units are case-sensitive except the first letter of K/k. Zero, negative,
 * empty, overflowing or unknown units are refused (-EINVAL / -ERANGE).
 */
int ctl_parse_rate(const char *text, uint64_t *ret_bytes_per_second);

/* A decimal unsigned integer in [min, max]; no sign, blanks or suffix. */
int ctl_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *ret);

/*
 * migrate's post-copy and timeout switches as given on the command line,
 * before they become Migrate options.
 */
typedef struct CtlMigrateSwitches {
        bool postcopy;               /* --postcopy */
        bool postcopy_after_precopy; /* --postcopy-after-precopy */
        bool postcopy_resume;        /* --postcopy-resume */
        bool timeout_postcopy;       /* --timeout-postcopy */
        bool timeout_suspend;        /* --timeout-suspend */
        const char *timeout;         /* --timeout=SECONDS as given; NULL: absent */
        const char *timeout_action;  /* --timeout-action=ACTION as given; NULL: absent */
} CtlMigrateSwitches;

/*
 * Checks the switches against each other and adds what they mean to
 * options: postcopy (implied by --postcopy-after-precopy, --postcopy-resume,
 * --timeout-postcopy and --timeout-action=postcopy), postcopy-resume,
 * timeout (t) and timeout-action (s). On a usage error returns -EINVAL and
 * sets *ret_error to a message naming the switches; options is then
 * unchanged.
 */
int ctl_migrate_switches_apply(const CtlMigrateSwitches *sw, GVariantDict *options, char **ret_error);

/*
 * migrate's own options as the command line gives them. --postcopy and
 * --timeout are not among them: they mean something to other commands too,
 * so the caller copies them into switches once the command is migrate.
 */
typedef struct CtlMigrateArgs {
        GVariantDict *options;       /* Migrate options given as such; NULL: none yet */
        CtlMigrateSwitches switches; /* for ctl_migrate_switches_apply() */
        const char *destination_xml; /* --destination-xml=FILE, for the caller to read */
        const char *first_flag;      /* the first of these options given, for usage errors */
} CtlMigrateArgs;

void ctl_migrate_args_clear(CtlMigrateArgs *a);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CtlMigrateArgs, ctl_migrate_args_clear)

/* How many of migrate's own options there are, and the i-th as a getopt_long() entry with val. */
size_t ctl_migrate_flags_count(void);
struct option ctl_migrate_flag_getopt(size_t i, int val);

/*
 * --flag[=arg], one of migrate's own options (flag without the dashes).
 * Those that are Migrate options go into a->options, the last one given
 * winning, with the option's type, allowed values and range from vmigrated's
 * option table (options.h) and its value checked by vmigrated's own parser;
 * the rest are kept in a for later. On a usage error returns -EINVAL and
 * sets *ret_error to a message naming the flag as written.
 */
int ctl_migrate_arg(CtlMigrateArgs *a, const char *flag, const char *arg, char **ret_error);

/* ---- ctl-bus.c ---- */

/* Connects; on failure prints the error and returns -errno. */
int ctl_connect(const CtlHost *host, bool allow_interactive, sd_bus **ret_bus);

/* Starts pkttyagent for this process's authentication on its terminal. */
int ctl_polkit_agent_open(pid_t *ret_pid);
/* Stops it again; pid <= 0 is a no-op. */
void ctl_polkit_agent_close(pid_t pid);

/*
 * Maps a failed call onto an exit code, and prints
 * "vmigratectl: <what>: <message>" plus a hint where one helps.
 */
int ctl_report_error(const CtlHost *host, const sd_bus_error *error, int r, const char *what);

/* ---- ctl-output.c ---- */

/* "512 MiB", "1.5 GiB", "100 B". */
char *ctl_format_bytes(uint64_t bytes);

/* D-Bus property name to JSON key: "StateReason" -> "state-reason", "VCPUs" -> "vcpus". */
char *ctl_property_to_key(const char *property);

/* A value for humans: booleans as yes/no, string arrays comma separated, else g_variant_print. */
char *ctl_format_value(GVariant *value);

/* Prints a JSON node to stdout, pretty-printed, with a trailing newline. */
void ctl_print_json(JsonNode *node);

/* JSON object from a{sv} properties, with keys converted by ctl_property_to_key(). */
JsonNode *ctl_properties_to_json(GVariant *properties);

/* ---- migration: formatting (ctl-output.c, no bus) ---- */

/* "1.0 GiB/s" */
char *ctl_format_rate(uint64_t bytes_per_second);

/* "850 ms", "2.1 s", "1m05s", "2h03m" */
char *ctl_format_duration_ms(uint64_t ms);

/* What the progress display knows about a job (Job properties). */
typedef struct CtlJobState {
        char *phase;
        double progress;
        uint64_t data_total, data_processed, data_remaining;
        uint64_t iteration;
        uint64_t dirty_rate;
        uint64_t elapsed_ms;
        uint64_t expected_downtime_ms;
        uint64_t rate; /* measured by the client from DataProcessed over ElapsedMs; 0: unknown */
        char *error;
        bool not_converging; /* NotConverging: pre-copy does not converge and the daemon cannot act */
        /* Post-copy: set when Phase first became postcopy. The bar then
         * follows DataRemaining from what was left at the switch, since
         * that is what the destination still has to fetch. */
        bool postcopy_seen;
        double postcopy_from;           /* Progress at the switch */
        uint64_t postcopy_remaining_at; /* DataRemaining at the switch */
        /* copy-storage: the disks are mirrored before the memory goes. The
         * Job has no properties for them: they come from Domain.GetJobStats
         * (ctl_job_state_update_stats), and only when the job copies disks. */
        bool disks_seen; /* a disk-total > 0 arrived */
        uint64_t disk_total, disk_processed;
        double disk_progress;     /* 0-1, never goes down (a mirror's length grows with new writes) */
        uint64_t disk_rate;       /* measured from disk-processed over elapsed-ms; 0: unknown */
        uint64_t disk_elapsed_ms; /* elapsed-ms of the statistics disk_rate was last measured on */
} CtlJobState;

void ctl_job_state_clear(CtlJobState *s);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CtlJobState, ctl_job_state_clear)
/* Applies an a{sv} of Job properties (GetAll or PropertiesChanged); unknown ones are ignored. */
void ctl_job_state_update(CtlJobState *s, GVariant *properties);

/*
 * Applies the disk figures of an a{sv} of Domain.GetJobStats (disk-total and
 * disk-processed, with elapsed-ms for the rate); the other
 * keys are left to the Job's properties, which are newer. Without
 * disk-total, or with it 0, nothing changes: the job copies no disks.
 */
void ctl_job_state_update_stats(CtlJobState *s, GVariant *stats);

/*
 * Whether the job is in its disk stage: it copies disks (disks_seen), it
 * is in perform, and the memory has not started (no pass, nothing sent).
 * Once the memory goes, the disks are in sync and only keep up with writes.
 */
bool ctl_job_copying_disks(const CtlJobState *s);

/* The phase for humans: "post-copy" for postcopy, else as on the bus, "..." when unknown. */
const char *ctl_job_phase_label(const char *phase);

/* The first word of the progress line: "disks" during the disk stage, else ctl_job_phase_label(). */
const char *ctl_job_stage_label(const CtlJobState *s);

/* One line without a bar: "perform 52% 1.1 GiB/2.0 GiB 1.0 GiB/s pass 1 ...";
 * in post-copy "post-copy 80% ... 512 MiB to fetch ..."; while disks are
 * copied "disks 45% 115.2 MiB/256 MiB 12 MiB/s 9.6 s" (the percent and
 * bytes of the disks alone). */
char *ctl_job_progress_text(const CtlJobState *s);
/* The terminal line: bar plus text, fitting in width columns. The bar fills
 * with '#' for pre-copy and '=' for what followed in post-copy; it always
 * shows the job's Progress, disks and memory together, so it never goes
 * back when the memory follows the disks. */
char *ctl_job_progress_bar(const CtlJobState *s, unsigned width);

/* The final statistics (a{sv} of GetJobStats/Finished) for humans, several
 * lines; with copy-storage the disks copied, and the memory as such. */
char *ctl_format_job_stats(GVariant *stats);

/* Text from the bus for a terminal: valid UTF-8, control characters as spaces. */
char *ctl_sanitize_cell(const char *text);

/* Appends text word by word to out, starting a new line indented by indent
 * columns whenever the next word would go past avail columns. */
void ctl_append_wrapped(GString *out, const char *text, size_t indent, size_t avail);

/* A word to paste into a shell: as is when harmless, else single-quoted. */
char *ctl_shell_word(const char *word);

/* ---- ctl-migrate.c: following a migration job ---- */

typedef struct CtlFollow {
        const CtlHost *host;
        const char *domain;      /* the domain's name, for messages */
        const char *destination; /* for messages */
        bool json;               /* final statistics as JSON on stdout; progress on stderr */
        bool quiet;              /* no progress, no summary: only errors */
        bool postcopy;           /* post-copy was enabled: it is what to suggest when stuck */
        bool start_postcopy;     /* --postcopy-after-precopy: Job.StartPostCopy once the job exists */
        bool postcopy_resume;    /* --postcopy-resume: the job continues a failed post-copy */
} CtlFollow;

/*
 * Subscribes to the job signals, sends call (a Domain.Migrate call, built
 * but not sent), shows progress until the job ends, prints the final
 * statistics. Ctrl-C once cancels the job, twice stops following.
 * Returns a CTL_EXIT_* code: OK only when the job completed.
 */
int ctl_migrate_follow(sd_bus *bus, sd_bus_message *call, const CtlFollow *settings);

/* ---- migrate --dry-run: Domain.DryRun's findings (ctl-output.c, no bus) ---- */

/* How many findings of a(sss) have this severity ("error", "warning", "info"). */
size_t ctl_findings_count(GVariant *findings, const char *severity);

/*
 * The findings as a table, SEVERITY, CHECK, MESSAGE, in the daemon's order
 * (the source's checks, then the destination's), one row per finding, with a
 * trailing newline. width > 0: messages are wrapped at spaces to fit in width
 * columns, continuation lines indented under MESSAGE (a word longer than the
 * column, a path say, is kept whole rather than broken); width 0: never
 * wrapped. errors_only: only the rows of severity error. Control characters
 * from the bus are shown as spaces. An empty a(sss) gives the header only.
 */
char *ctl_format_findings(GVariant *findings, unsigned width, bool errors_only);

/* The last line for humans, without newline: "would succeed (best-effort: ...)",
 * "would succeed with 2 warnings (best-effort: ...)" or "would fail: 3 errors". */
char *ctl_dry_run_verdict(bool ok, GVariant *findings);

/* {"ok": b, "findings": [{"severity", "check", "message"}, ...]} */
JsonNode *ctl_dry_run_to_json(bool ok, GVariant *findings);

/* ---- history: Manager.ListJobHistory (ctl-history.c, no bus) ---- */

/* "2026-12-03 22:10:25" in local time, from microseconds since the epoch; "-" for 0. */
char *ctl_format_local_time_usec(uint64_t usec);

/*
 * The ended jobs (aa{sv} of ListJobHistory, oldest first) as a table,
 * ENDED, JOB, DOMAIN, KIND (out/in), PEER, RESULT, TIME, DOWNTIME, DATA,
 * ERROR, one row per job in the daemon's order, with a trailing newline.
 * width > 0: the ERROR column is cut to what is left of width columns
 * (ending in "..."); width 0: never cut. A key missing shows as "-";
 * control characters from the bus as spaces. An empty list gives the
 * header only.
 */
char *ctl_format_history(GVariant *jobs, unsigned width);

/* The list as a JSON array of objects, keys as on the bus (lower-case-dash). */
JsonNode *ctl_history_to_json(GVariant *jobs);

/* ---- evacuate: Manager.Evacuate (ctl-evacuate.c, no bus) ---- */

/* The evacuation's own options as the command line gives them. */
typedef struct CtlEvacuateArgs {
        const char *order;      /* --order=ORDER as given; NULL: the daemon's default */
        const char *parallel;   /* --parallel=N as given; NULL: absent */
        bool inactive;          /* --inactive */
        bool maintenance;       /* --maintenance */
        const char *first_flag; /* the first of these given, for "only applies to" */
} CtlEvacuateArgs;

#define CTL_EVACUATE_PARALLEL_MAX 64
#define CTL_EVACUATE_DESTINATIONS_MAX 64

/*
 * Checks the evacuation's options and adds them to options as Evacuate
 * takes them: order (s: smallest-first, largest-first or priority),
 * parallel (u, 1 to 64), inactive (b), maintenance (b); those not given
 * are left to the daemon. On a usage error returns -EINVAL and sets
 * *ret_error to a message naming the option; options is then unchanged.
 */
int ctl_evacuate_options_add(const CtlEvacuateArgs *e, GVariantDict *options, char **ret_error);

/*
 * Whether migrate's options given (before ctl_migrate_switches_apply())
 * make sense for every domain of an evacuation: those that name one
 * domain's destination (--destination-name, --destination-xml), that
 * continue one failed migration (--postcopy-resume) or that are the
 * evacuation's to decide (--offline: --inactive moves shut-off domains)
 * do not, nor --postcopy-after-precopy (a call per child the daemon does
 * not make). -EINVAL with a message that says "only applies to 'migrate'"
 * for those.
 */
int ctl_evacuate_check_migrate_args(const CtlMigrateArgs *m, char **ret_error);

/* Whether migrate's --flag (without dashes, as given) applies to evacuate too. */
bool ctl_evacuate_takes_migrate_flag(const char *flag);

/* DESTINATION...: 1 to 64 URIs that parse as Migrate's destinations, none
 * naming the same place twice. -EINVAL with a message otherwise. */
int ctl_evacuate_check_destinations(char *const *destinations, size_t n, char **ret_error);

/* One domain of an evacuation: a dictionary of Results, and what the
 * client learned from its Job while it ran. */
typedef struct CtlEvacuationItem {
        char *domain, *uuid, *state, *destination, *message;
        uint64_t job_id, memory_bytes;
        bool offline;
        char *phase;         /* the Job's Phase, while it is known */
        double progress;     /* the Job's Progress, 0-1 */
        uint64_t elapsed_ms; /* the Job's ElapsedMs, or the history's elapsed-ms */
        bool elapsed_known;
} CtlEvacuationItem;

typedef struct CtlEvacuation {
        char *state; /* running, completed, failed, cancelled; NULL: not read yet */
        uint32_t total, done, failed, remaining;
        double progress;
        GPtrArray *items; /* CtlEvacuationItem*, in the daemon's order */
} CtlEvacuation;

void ctl_evacuation_init(CtlEvacuation *ev);
void ctl_evacuation_clear(CtlEvacuation *ev);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CtlEvacuation, ctl_evacuation_clear)

/* Applies an a{sv} of Evacuation properties (GetAll); Results replace the
 * items, keeping what each one's Job said (matched by job id). Keys or
 * values of the wrong type are ignored. */
void ctl_evacuation_update(CtlEvacuation *ev, GVariant *properties);
/* Applies an a{sv} of Job properties (Phase, Progress, ElapsedMs) to the item of that job. */
void ctl_evacuation_update_job(CtlEvacuation *ev, uint64_t job_id, GVariant *job_properties);
/* Applies ListJobHistory's aa{sv}: each item's elapsed-ms by its job id. */
void ctl_evacuation_update_history(CtlEvacuation *ev, GVariant *history);
/* Whether State says it has ended. */
bool ctl_evacuation_ended(const CtlEvacuation *ev);

/* "3/10 moved, 1 failed, 6 remaining (42%)" */
char *ctl_evacuation_counts_text(const CtlEvacuation *ev);
/* What an item is doing, for humans: "waiting", "placing", "perform 45%",
 * "post-copy 80%", "completed", "failed: ...", "not placed: ...", "cancelled". */
char *ctl_evacuation_item_status(const CtlEvacuationItem *item);
/*
 * The progress lines: one per domain, DOMAIN, DESTINATION ("-" before
 * placement) and status, each cut to width columns (0: not cut), with a
 * trailing newline. max_lines > 0: at most that many, the domains that
 * are placing or migrating first, then the others in order, and a last
 * line saying how many are not shown.
 */
char *ctl_format_evacuation_progress(const CtlEvacuation *ev, unsigned width, unsigned max_lines);
/*
 * The summary: DOMAIN, DESTINATION, RESULT, TIME, MESSAGE, one row per
 * domain in the daemon's order; width > 0: messages wrapped to fit.
 */
char *ctl_format_evacuation_results(const CtlEvacuation *ev, unsigned width);
/* {"evacuation": path, "result", "total", "done", "failed", "remaining",
 *  "domains": [{"domain", "uuid", "state", "destination", "message",
 *  "job-id", "offline", "memory-bytes", "elapsed-ms" (when known)}]} */
JsonNode *ctl_evacuation_to_json(const CtlEvacuation *ev, const char *path);

/* ---- ctl-evacuate-run.c: following an evacuation ---- */

typedef struct CtlEvacuateFollow {
        const CtlHost *host;
        bool json;            /* the result as JSON on stdout; progress on stderr */
        bool quiet;           /* no progress, no summary: only errors */
        bool maintenance;     /* --maintenance was given: say how to end it */
        int64_t started_usec; /* wall clock before Evacuate, for the history's since */
} CtlEvacuateFollow;

/*
 * Follows the evacuation at path until it ends, polling it and its
 * children's jobs at 2 Hz; Ctrl-C once cancels it (Evacuation.Cancel),
 * twice stops following. Prints the summary. Returns a CTL_EXIT_* code:
 * OK only when the result is completed.
 */
int ctl_evacuate_follow(sd_bus *bus, const char *path, const CtlEvacuateFollow *settings);
