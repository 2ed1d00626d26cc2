/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/*
 * Migrate options: the a{sv} of Domain.Migrate/DryRun (DESIGN.md "Migrate
 * options"). Every option is tri-state: absent means "the backend's
 * default", so MigrateOptions records which ones were given.
 *
 * The life of a set of options:
 *   migrate_options_parse()          types, values, ranges; knows no backend
 *   migrate_options_check()          backend support, then conflicts (on the
 *                                    values the backend would really use)
 *   migrate_options_apply_defaults() fills in what was left out
 *   migrate_options_to_variant()     into the migration cookie
 */

typedef enum MigrateOptionId {
        MIGRATE_OPTION_LIVE,
        MIGRATE_OPTION_OFFLINE,
        MIGRATE_OPTION_PAUSED,
        MIGRATE_OPTION_PERSIST,
        MIGRATE_OPTION_UNDEFINE_SOURCE,
        MIGRATE_OPTION_POSTCOPY,
        MIGRATE_OPTION_POSTCOPY_RESUME,
        MIGRATE_OPTION_AUTO_CONVERGE,
        MIGRATE_OPTION_COMPRESSION,
        MIGRATE_OPTION_PARALLEL_CONNECTIONS,
        MIGRATE_OPTION_TUNNELLED,
        MIGRATE_OPTION_TLS,
        MIGRATE_OPTION_POSTCOPY_PREEMPT,
        MIGRATE_OPTION_ZERO_PAGE_DETECTION,
        MIGRATE_OPTION_ZERO_COPY_SEND,
        MIGRATE_OPTION_SWITCHOVER_ACK,
        MIGRATE_OPTION_SWITCHOVER_BANDWIDTH,
        MIGRATE_OPTION_COPY_STORAGE,
        MIGRATE_OPTION_REUSE_IMAGES,
        MIGRATE_OPTION_BANDWIDTH,
        MIGRATE_OPTION_POSTCOPY_BANDWIDTH,
        MIGRATE_OPTION_MAX_DOWNTIME,
        MIGRATE_OPTION_DESTINATION_NAME,
        MIGRATE_OPTION_DESTINATION_XML,
        MIGRATE_OPTION_DATA_URI,
        MIGRATE_OPTION_LISTEN_ADDRESS,
        MIGRATE_OPTION_ABORT_ON_ERROR,
        MIGRATE_OPTION_UNSAFE,
        MIGRATE_OPTION_TIMEOUT,
        MIGRATE_OPTION_TIMEOUT_ACTION,
        MIGRATE_OPTION_POLICY,
        MIGRATE_OPTION_WAIT,
        _MIGRATE_OPTION_MAX,
} MigrateOptionId;

/* Enum-valued options hold the index into their info's values[]. */
typedef enum MigrateCompression {
        MIGRATE_COMPRESSION_NONE,
        MIGRATE_COMPRESSION_ZSTD,
        MIGRATE_COMPRESSION_ZLIB,
        MIGRATE_COMPRESSION_XBZRLE,
} MigrateCompression;

typedef enum MigrateCopyStorage {
        MIGRATE_COPY_STORAGE_NONE,
        MIGRATE_COPY_STORAGE_ALL,
        MIGRATE_COPY_STORAGE_INCREMENTAL,
} MigrateCopyStorage;

typedef enum MigrateZeroPageDetection {
        MIGRATE_ZERO_PAGE_DETECTION_NONE,
        MIGRATE_ZERO_PAGE_DETECTION_LEGACY,
        MIGRATE_ZERO_PAGE_DETECTION_MULTIFD,
} MigrateZeroPageDetection;

typedef enum MigrateTimeoutAction {
        MIGRATE_TIMEOUT_ACTION_ABORT,
        MIGRATE_TIMEOUT_ACTION_POSTCOPY,
        MIGRATE_TIMEOUT_ACTION_SUSPEND,
} MigrateTimeoutAction;

#define MIGRATE_MAX_DOWNTIME_MAX_MS UINT64_C(2000000)
#define MIGRATE_TIMEOUT_MAX_S UINT64_C(604800) /* one week */
#define MIGRATE_PARALLEL_CONNECTIONS_MAX 255

/*
 * A field is meaningful only when its bit is in "set"; an unset field is
 * zero (false, none, NULL). Read with migrate_options_has().
 */
typedef struct MigrateOptions {
        uint64_t set; /* 1 << MigrateOptionId for each option present */

        bool live;
        bool offline;
        bool paused;
        bool persist;
        bool undefine_source;
        bool postcopy;
        bool postcopy_resume;
        bool auto_converge;
        MigrateCompression compression;
        uint32_t parallel_connections;
        bool tunnelled;
        bool tls;
        bool postcopy_preempt;
        MigrateZeroPageDetection zero_page_detection;
        bool zero_copy_send;
        bool switchover_ack;
        uint64_t switchover_bandwidth; /* bytes/s */
        MigrateCopyStorage copy_storage;
        bool reuse_images;
        uint64_t bandwidth;          /* bytes/s */
        uint64_t postcopy_bandwidth; /* bytes/s */
        uint64_t max_downtime;       /* ms */
        char *destination_name;
        char *destination_xml;
        char *data_uri;       /* canonical "tcp://host:port" */
        char *listen_address; /* an IPv4 or IPv6 literal, as given */
        bool abort_on_error;
        bool unsafe;
        uint64_t timeout; /* s */
        MigrateTimeoutAction timeout_action;
        char *policy; /* a convergence policy's name */
        bool wait;
} MigrateOptions;

static inline bool migrate_options_has(const MigrateOptions *o, MigrateOptionId id) {
        return o->set & (UINT64_C(1) << id);
}

/* Option id counts as given from now on (its field was just set). */
static inline void migrate_options_mark(MigrateOptions *o, MigrateOptionId id) {
        o->set |= UINT64_C(1) << id;
}

typedef struct MigrateOptionInfo {
        const char *key; /* "parallel-connections" */
        MigrateOptionId id;
        const char *type;          /* GVariant type string: "b", "s", "u", "t" */
        const char *doc;           /* one line, for GetBackends and the docs */
        const char *const *values; /* "s" enums: NULL-terminated allowed values; NULL = free text */
        uint64_t min, max;         /* "u"/"t": inclusive range */
        const char *unit;          /* "u"/"t": "bytes/s", "ms", "s", or NULL */
        bool every_backend;        /* handled above the backends: the bus layer ("wait"), the core ("policy") */
} MigrateOptionInfo;

/* The table, in MigrateOptionId order (table[id].id == id). */
const MigrateOptionInfo *migrate_option_info_table(size_t *ret_n);
/* NULL if no such option. */
const MigrateOptionInfo *migrate_option_info(const char *key);

/*
 * What a backend does with each option; a backend keeps a static array of
 * these. An option missing from the array is unsupported ("not implemented
 * by the backend"), except bus-layer options, which every backend has.
 */
typedef struct MigrateOptionSupport {
        const char *key;
        bool supported;
        const char *why_not;       /* !supported: one line saying why, shown to clients */
        const char *default_value; /* GVariant text of the option's type ("true", "300"),
                                      or NULL: absent stays absent (off) */
} MigrateOptionSupport;

/* For a backend's unit test: every key known and given once, every default
 * parses as its option's type and passes its value checks, every unsupported
 * option says why and has no default. */
int migrate_option_support_validate(const MigrateOptionSupport *support, size_t n, GError **error);

/*
 * dict must be a{sv}. Refuses (VM_ERROR_INVALID_OPTION, naming the option)
 * unknown keys, keys given twice, wrong types, values not allowed for enums,
 * out-of-range numbers, invalid destination-name, data-uri and
 * listen-address. Conflicts between options are check()'s business.
 */
int migrate_options_parse(GVariant *dict, MigrateOptions **ret, GError **error);

/*
 * For the backend "backend_name" with its support table: an option given
 * but unsupported → VM_ERROR_UNSUPPORTED_OPTION; then the conflict rules
 * (DESIGN.md) on the values the migration would run with (given, implied
 * by another given option, or the backend default) →
 * VM_ERROR_CONFLICTING_OPTIONS naming both options and where a value that
 * was not given comes from.
 */
int migrate_options_check(const MigrateOptions *o, const char *backend_name,
                          const MigrateOptionSupport *support, size_t n_support, GError **error);

/*
 * Fills in what was not given: first what a given option implies
 * (offline → live=false, persist=true), then the backend defaults.
 * Call after migrate_options_check() succeeded.
 */
void migrate_options_apply_defaults(MigrateOptions *o, const MigrateOptionSupport *support,
                                    size_t n_support);

/* Allowed but probably not what was meant, one sentence each (for DryRun
 * findings and the log). Call after apply_defaults. Never NULL. */
char **migrate_options_warnings(const MigrateOptions *o);

/* a{sv} of the options that are set, floating; parse(to_variant(o)) equals o. */
GVariant *migrate_options_to_variant(const MigrateOptions *o);

bool migrate_options_equal(const MigrateOptions *a, const MigrateOptions *b);

/*
 * a{sa{sv}} for GetBackends' "migration-options", floating. For each option:
 * "type" s, "doc" s, "supported" b, "why-not" s (unsupported only),
 * "default" v (when the backend has one), "values" as (enums),
 * "min"/"max" t and "unit" s (numbers).
 */
GVariant *migrate_options_describe(const MigrateOptionSupport *support, size_t n_support);

MigrateOptions *migrate_options_new(void);
/* A deep copy: equal to o (migrate_options_equal), sharing nothing. */
MigrateOptions *migrate_options_copy(const MigrateOptions *o);
void migrate_options_free(MigrateOptions *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigrateOptions, migrate_options_free)
