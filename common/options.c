/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "names.h"
#include "errors.h"
#include "text.h"
#include "log.h"
#include "options.h"
#include "uri.h"

#define BIT(id) (UINT64_C(1) << (id))

static const char *const compression_values[] = { "none", "zstd", "zlib", "xbzrle", NULL };
static const char *const copy_storage_values[] = { "none", "all", "incremental", NULL };
static const char *const zero_page_detection_values[] = { "none", "legacy", "multifd", NULL };
static const char *const timeout_action_values[] = { "abort", "postcopy", "suspend", NULL };

#define BOOL_OPTION(k, i, d) [i] = { .key = k, .id = i, .type = "b", .doc = d }

static const MigrateOptionInfo option_table[_MIGRATE_OPTION_MAX] = {
        BOOL_OPTION("live", MIGRATE_OPTION_LIVE, "Keep the guest running while its memory is copied"),
        BOOL_OPTION("offline", MIGRATE_OPTION_OFFLINE,
                    "Move only the definition of a domain that is not running (needs persist)"),
        BOOL_OPTION("paused", MIGRATE_OPTION_PAUSED, "Leave the domain paused on the destination"),
        BOOL_OPTION("persist", MIGRATE_OPTION_PERSIST, "Define the domain persistently on the destination"),
        BOOL_OPTION("undefine-source", MIGRATE_OPTION_UNDEFINE_SOURCE,
                    "Undefine the domain on the source after a successful migration"),
        BOOL_OPTION("postcopy", MIGRATE_OPTION_POSTCOPY,
                    "Allow switching to post-copy (StartPostCopy or timeout-action=postcopy)"),
        BOOL_OPTION("postcopy-resume", MIGRATE_OPTION_POSTCOPY_RESUME,
                    "Recover a post-copy migration that failed (domain paused with postcopy-failed)"),
        BOOL_OPTION("auto-converge", MIGRATE_OPTION_AUTO_CONVERGE,
                    "Throttle the guest's CPUs when memory does not converge"),
        [MIGRATE_OPTION_COMPRESSION] = { .key = "compression",
                                         .id = MIGRATE_OPTION_COMPRESSION,
                                         .type = "s",
                                         .doc = "Compress the memory stream (zstd and zlib need "
                                                "parallel-connections; xbzrle excludes it)",
                                         .values = compression_values },
        [MIGRATE_OPTION_PARALLEL_CONNECTIONS] = { .key = "parallel-connections",
                                                  .id = MIGRATE_OPTION_PARALLEL_CONNECTIONS,
                                                  .type = "u",
                                                  .doc = "Copy memory over this many parallel connections",
                                                  .min = 1,
                                                  .max = MIGRATE_PARALLEL_CONNECTIONS_MAX },
        BOOL_OPTION("tunnelled", MIGRATE_OPTION_TUNNELLED,
                    "Carry the migration data through the control connection instead of a direct TCP one"),
        BOOL_OPTION("tls", MIGRATE_OPTION_TLS, "Encrypt the migration data with TLS"),
        BOOL_OPTION("postcopy-preempt", MIGRATE_OPTION_POSTCOPY_PREEMPT,
                    "Post-copy: send the pages the guest waits for on a channel of their own"),
        [MIGRATE_OPTION_ZERO_PAGE_DETECTION] = { .key = "zero-page-detection",
                                                 .id = MIGRATE_OPTION_ZERO_PAGE_DETECTION,
                                                 .type = "s",
                                                 .doc = "Where zero pages are found: in the parallel "
                                                        "connections' threads (multifd), the main "
                                                        "migration thread (legacy), or not at all (none)",
                                                 .values = zero_page_detection_values },
        BOOL_OPTION("zero-copy-send", MIGRATE_OPTION_ZERO_COPY_SEND,
                    "Send memory on the parallel connections without copying it (the pages in flight "
                    "are locked)"),
        BOOL_OPTION("switchover-ack", MIGRATE_OPTION_SWITCHOVER_ACK,
                    "Switch over only once the destination's devices say they are ready (needs a "
                    "return path)"),
        [MIGRATE_OPTION_SWITCHOVER_BANDWIDTH] = { .key = "switchover-bandwidth",
                                                  .id = MIGRATE_OPTION_SWITCHOVER_BANDWIDTH,
                                                  .type = "t",
                                                  .doc = "The link's bandwidth for the switch-over, for "
                                                         "estimating the downtime instead of measuring "
                                                         "the stream",
                                                  .min = 1,
                                                  .max = UINT64_MAX,
                                                  .unit = "bytes/s" },
        [MIGRATE_OPTION_COPY_STORAGE] = { .key = "copy-storage",
                                          .id = MIGRATE_OPTION_COPY_STORAGE,
                                          .type = "s",
                                          .doc = "Copy disks too: all of them, or only what is not in a "
                                                 "shared backing image",
                                          .values = copy_storage_values },
        BOOL_OPTION("reuse-images", MIGRATE_OPTION_REUSE_IMAGES,
                    "copy-storage: copy into images already on the destination (same format and size) "
                    "instead of refusing them; they are overwritten and never deleted"),
        [MIGRATE_OPTION_BANDWIDTH] = { .key = "bandwidth",
                                       .id = MIGRATE_OPTION_BANDWIDTH,
                                       .type = "t",
                                       .doc = "Maximum bandwidth of the migration",
                                       .min = 1,
                                       .max = UINT64_MAX,
                                       .unit = "bytes/s" },
        [MIGRATE_OPTION_POSTCOPY_BANDWIDTH] = { .key = "postcopy-bandwidth",
                                                .id = MIGRATE_OPTION_POSTCOPY_BANDWIDTH,
                                                .type = "t",
                                                .doc = "Maximum bandwidth once in post-copy",
                                                .min = 1,
                                                .max = UINT64_MAX,
                                                .unit = "bytes/s" },
        [MIGRATE_OPTION_MAX_DOWNTIME] = { .key = "max-downtime",
                                          .id = MIGRATE_OPTION_MAX_DOWNTIME,
                                          .type = "t",
                                          .doc = "Longest pause of the guest allowed at the switch-over",
                                          .min = 1,
                                          .max = MIGRATE_MAX_DOWNTIME_MAX_MS,
                                          .unit = "ms" },
        [MIGRATE_OPTION_DESTINATION_NAME] = { .key = "destination-name",
                                              .id = MIGRATE_OPTION_DESTINATION_NAME,
                                              .type = "s",
                                              .doc = "Name of the domain on the destination" },
        [MIGRATE_OPTION_DESTINATION_XML] = { .key = "destination-xml",
                                             .id = MIGRATE_OPTION_DESTINATION_XML,
                                             .type = "s",
                                             .doc = "Domain XML to use on the destination (same UUID, "
                                                    "host-specific paths changed)" },
        [MIGRATE_OPTION_DATA_URI] = { .key = "data-uri",
                                      .id = MIGRATE_OPTION_DATA_URI,
                                      .type = "s",
                                      .doc = "Where the destination receives the data: tcp://host:port" },
        [MIGRATE_OPTION_LISTEN_ADDRESS] = { .key = "listen-address",
                                            .id = MIGRATE_OPTION_LISTEN_ADDRESS,
                                            .type = "s",
                                            .doc = "IP address the destination listens on for the data" },
        BOOL_OPTION("abort-on-error", MIGRATE_OPTION_ABORT_ON_ERROR,
                    "Abort the migration when a disk I/O error occurs during it"),
        BOOL_OPTION("unsafe", MIGRATE_OPTION_UNSAFE, "Migrate even where safety checks advise against it"),
        [MIGRATE_OPTION_TIMEOUT] = { .key = "timeout",
                                     .id = MIGRATE_OPTION_TIMEOUT,
                                     .type = "t",
                                     .doc = "After this long, take timeout-action (default: abort)",
                                     .min = 1,
                                     .max = MIGRATE_TIMEOUT_MAX_S,
                                     .unit = "s" },
        [MIGRATE_OPTION_TIMEOUT_ACTION] = { .key = "timeout-action",
                                            .id = MIGRATE_OPTION_TIMEOUT_ACTION,
                                            .type = "s",
                                            .doc = "What to do when timeout expires",
                                            .values = timeout_action_values },
        [MIGRATE_OPTION_POLICY] = { .key = "policy",
                                    .id = MIGRATE_OPTION_POLICY,
                                    .type = "s",
                                    .doc = "Convergence policy: what to do, step by step, when pre-copy cannot "
                                           "catch up with the guest (GetPolicies lists them)",
                                    .every_backend = true },
        [MIGRATE_OPTION_WAIT] = { .key = "wait",
                                  .id = MIGRATE_OPTION_WAIT,
                                  .type = "b",
                                  .doc = "Reply to Migrate only when the job has ended",
                                  .every_backend = true },
};

/* Where each option lives in MigrateOptions. */
static const size_t field_offset[_MIGRATE_OPTION_MAX] = {
        [MIGRATE_OPTION_LIVE] = offsetof(MigrateOptions, live),
        [MIGRATE_OPTION_OFFLINE] = offsetof(MigrateOptions, offline),
        [MIGRATE_OPTION_PAUSED] = offsetof(MigrateOptions, paused),
        [MIGRATE_OPTION_PERSIST] = offsetof(MigrateOptions, persist),
        [MIGRATE_OPTION_UNDEFINE_SOURCE] = offsetof(MigrateOptions, undefine_source),
        [MIGRATE_OPTION_POSTCOPY] = offsetof(MigrateOptions, postcopy),
        [MIGRATE_OPTION_POSTCOPY_RESUME] = offsetof(MigrateOptions, postcopy_resume),
        [MIGRATE_OPTION_AUTO_CONVERGE] = offsetof(MigrateOptions, auto_converge),
        [MIGRATE_OPTION_COMPRESSION] = offsetof(MigrateOptions, compression),
        [MIGRATE_OPTION_PARALLEL_CONNECTIONS] = offsetof(MigrateOptions, parallel_connections),
        [MIGRATE_OPTION_TUNNELLED] = offsetof(MigrateOptions, tunnelled),
        [MIGRATE_OPTION_TLS] = offsetof(MigrateOptions, tls),
        [MIGRATE_OPTION_POSTCOPY_PREEMPT] = offsetof(MigrateOptions, postcopy_preempt),
        [MIGRATE_OPTION_ZERO_PAGE_DETECTION] = offsetof(MigrateOptions, zero_page_detection),
        [MIGRATE_OPTION_ZERO_COPY_SEND] = offsetof(MigrateOptions, zero_copy_send),
        [MIGRATE_OPTION_SWITCHOVER_ACK] = offsetof(MigrateOptions, switchover_ack),
        [MIGRATE_OPTION_SWITCHOVER_BANDWIDTH] = offsetof(MigrateOptions, switchover_bandwidth),
        [MIGRATE_OPTION_COPY_STORAGE] = offsetof(MigrateOptions, copy_storage),
        [MIGRATE_OPTION_REUSE_IMAGES] = offsetof(MigrateOptions, reuse_images),
        [MIGRATE_OPTION_BANDWIDTH] = offsetof(MigrateOptions, bandwidth),
        [MIGRATE_OPTION_POSTCOPY_BANDWIDTH] = offsetof(MigrateOptions, postcopy_bandwidth),
        [MIGRATE_OPTION_MAX_DOWNTIME] = offsetof(MigrateOptions, max_downtime),
        [MIGRATE_OPTION_DESTINATION_NAME] = offsetof(MigrateOptions, destination_name),
        [MIGRATE_OPTION_DESTINATION_XML] = offsetof(MigrateOptions, destination_xml),
        [MIGRATE_OPTION_DATA_URI] = offsetof(MigrateOptions, data_uri),
        [MIGRATE_OPTION_LISTEN_ADDRESS] = offsetof(MigrateOptions, listen_address),
        [MIGRATE_OPTION_ABORT_ON_ERROR] = offsetof(MigrateOptions, abort_on_error),
        [MIGRATE_OPTION_UNSAFE] = offsetof(MigrateOptions, unsafe),
        [MIGRATE_OPTION_TIMEOUT] = offsetof(MigrateOptions, timeout),
        [MIGRATE_OPTION_TIMEOUT_ACTION] = offsetof(MigrateOptions, timeout_action),
        [MIGRATE_OPTION_POLICY] = offsetof(MigrateOptions, policy),
        [MIGRATE_OPTION_WAIT] = offsetof(MigrateOptions, wait),
};

/* Enum fields are stored through an int: all three enums are int-sized. */
G_STATIC_ASSERT(sizeof(MigrateCompression) == sizeof(int));
G_STATIC_ASSERT(sizeof(MigrateCopyStorage) == sizeof(int));
G_STATIC_ASSERT(sizeof(MigrateTimeoutAction) == sizeof(int));
G_STATIC_ASSERT(sizeof(MigrateZeroPageDetection) == sizeof(int));
G_STATIC_ASSERT(_MIGRATE_OPTION_MAX <= 64);

#define FIELD(o, id, type) ((type *) ((char *) (o) + field_offset[id]))
#define CFIELD(o, id, type) ((const type *) ((const char *) (o) + field_offset[id]))

const MigrateOptionInfo *migrate_option_info_table(size_t *ret_n) {
        if (ret_n)
                *ret_n = _MIGRATE_OPTION_MAX;
        return option_table;
}

const MigrateOptionInfo *migrate_option_info(const char *key) {
        if (!key)
                return NULL;
        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++)
                if (g_str_equal(option_table[i].key, key))
                        return &option_table[i];
        return NULL;
}

static const char *type_name(const char *type) {
        static const struct {
                const char *type, *name;
        } names[] = {
                { "b", "boolean" },     { "y", "byte" },
                { "n", "int16" },       { "q", "uint16" },
                { "i", "int32" },       { "u", "uint32" },
                { "x", "int64" },       { "t", "uint64" },
                { "d", "double" },      { "s", "string" },
                { "o", "object path" }, { "g", "signature" },
                { "v", "variant" },     { "h", "file descriptor" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                if (g_str_equal(names[i].type, type))
                        return names[i].name;
        if (type[0] == 'a')
                return "array";
        if (type[0] == '(')
                return "struct";
        return "value";
}

/* Checks one value (already of the option's type) and stores it in o. */
static int store_value(MigrateOptions *o, const MigrateOptionInfo *info, GVariant *value, GError **error) {
        MigrateOptionId id = info->id;

        switch (info->type[0]) {
        case 'b':
                *FIELD(o, id, bool) = g_variant_get_boolean(value);
                break;
        case 'u':
        case 't': {
                uint64_t v =
                        info->type[0] == 'u' ? g_variant_get_uint32(value) : g_variant_get_uint64(value);

                if (v < info->min || v > info->max) {
                        if (info->max == UINT64_MAX)
                                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                                    "option '%s'=%" PRIu64 " is out of range: it must be at "
                                                    "least %" PRIu64 "%s%s (leave it out for the default)",
                                                    info->key, v, info->min, info->unit ? " " : "",
                                                    info->unit ?: "");
                        return vm_error_set(
                                error, VM_ERROR_INVALID_OPTION,
                                "option '%s'=%" PRIu64 " is out of range: give %" PRIu64 "..%" PRIu64 "%s%s",
                                info->key, v, info->min, info->max, info->unit ? " " : "", info->unit ?: "");
                }
                if (info->type[0] == 'u')
                        *FIELD(o, id, uint32_t) = (uint32_t) v;
                else
                        *FIELD(o, id, uint64_t) = v;
                break;
        }
        case 's': {
                const char *s = g_variant_get_string(value, NULL);
                g_autofree char *q = text_quote(s, -1);
                char *stored = NULL;

                if (info->values) {
                        int index = -1;

                        for (int i = 0; info->values[i]; i++)
                                if (g_str_equal(info->values[i], s))
                                        index = i;
                        if (index < 0) {
                                g_autofree char *allowed = text_join_choices(info->values);
                                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                                    "option '%s'='%s' is not allowed: give %s", info->key, q,
                                                    allowed);
                        }
                        *FIELD(o, id, int) = index;
                        break;
                }

                switch (id) {
                case MIGRATE_OPTION_DESTINATION_NAME: {
                        const char *why = NULL;

                        if (!domain_name_is_valid(s, &why))
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_OPTION,
                                        "option 'destination-name'='%s' is not a valid domain name: "
                                        "it %s",
                                        q, why);
                        stored = g_strdup(s);
                        break;
                }
                case MIGRATE_OPTION_POLICY:
                        if (!policy_name_is_valid(s))
                                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                                    "option 'policy'='%s' is not a policy name: 1 to %d letters, "
                                                    "digits, '-', '_' or '.', not starting with '-' or '.'",
                                                    q, POLICY_NAME_MAX);
                        stored = g_strdup(s);
                        break;
                case MIGRATE_OPTION_DESTINATION_XML:
                        if (s[0] == '\0')
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_OPTION,
                                        "option 'destination-xml' is empty: give a domain XML or "
                                        "leave the option out");
                        if (strlen(s) > DOMAIN_XML_MAX_BYTES)
                                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                                    "option 'destination-xml' is %zu bytes; at most %d are "
                                                    "accepted",
                                                    strlen(s), DOMAIN_XML_MAX_BYTES);
                        stored = g_strdup(s);
                        break;
                case MIGRATE_OPTION_DATA_URI: {
                        g_autofree char *host = NULL;
                        uint16_t port;
                        int r;

                        r = data_uri_parse(s, &host, &port, error);
                        if (r < 0)
                                return r;
                        /* Canonical, so the cookie and the log show what is used. */
                        stored = g_strdup_printf(strchr(host, ':') ? "tcp://[%s]:%u" : "tcp://%s:%u", host,
                                                 port);
                        break;
                }
                case MIGRATE_OPTION_LISTEN_ADDRESS: {
                        unsigned char addr[sizeof(struct in6_addr)];
                        char buf[INET6_ADDRSTRLEN];
                        int family = strchr(s, ':') ? AF_INET6 : AF_INET;

                        if (inet_pton(family, s, addr) != 1)
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_OPTION,
                                        "option 'listen-address'='%s' is not an IPv4 or IPv6 address "
                                        "(host names are not accepted; no brackets, no port)",
                                        q);
                        stored = g_strdup(inet_ntop(family, addr, buf, sizeof(buf)));
                        break;
                }
                default:
                        g_assert_not_reached();
                }
                g_free(*FIELD(o, id, char *));
                *FIELD(o, id, char *) = stored;
                break;
        }
        default:
                g_assert_not_reached();
        }
        o->set |= BIT(id);
        return 0;
}

static int unknown_option(const char *key, GError **error) {
        g_autofree char *q = text_quote(key, -1);
        g_autofree char *normalized = g_ascii_strdown(key, -1);
        GString *known = g_string_new(NULL);
        const MigrateOptionInfo *guess;

        g_strdelimit(normalized, "_ ", '-');
        guess = migrate_option_info(normalized);
        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++)
                g_string_append_printf(known, "%s%s", i ? ", " : "", option_table[i].key);
        g_autofree char *list = g_string_free(known, false);
        if (guess)
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "unknown option '%s': did you mean '%s'?", q, guess->key);
        return vm_error_set(error, VM_ERROR_INVALID_OPTION, "unknown option '%s'; known options: %s", q,
                            list);
}

MigrateOptions *migrate_options_new(void) {
        return g_new0(MigrateOptions, 1);
}

void migrate_options_free(MigrateOptions *o) {
        if (!o)
                return;
        g_free(o->destination_name);
        g_free(o->destination_xml);
        g_free(o->data_uri);
        g_free(o->listen_address);
        g_free(o->policy);
        g_free(o);
}

int migrate_options_parse(GVariant *dict, MigrateOptions **ret, GError **error) {
        g_autoptr(MigrateOptions) o = migrate_options_new();
        size_t n;
        int r;

        if (!dict || !g_variant_is_of_type(dict, G_VARIANT_TYPE("a{sv}")))
                return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                    "options must be a dictionary a{sv}, not '%s'",
                                    dict ? g_variant_get_type_string(dict) : "nothing");

        n = g_variant_n_children(dict);
        for (size_t i = 0; i < n; i++) {
                g_autoptr(GVariant) entry = g_variant_get_child_value(dict, i);
                g_autoptr(GVariant) boxed = g_variant_get_child_value(entry, 1);
                g_autoptr(GVariant) value = g_variant_get_variant(boxed);
                const char *key = NULL;
                const MigrateOptionInfo *info;

                g_variant_get_child(entry, 0, "&s", &key);
                info = migrate_option_info(key);
                if (!info)
                        return unknown_option(key, error);
                /* D-Bus dictionaries are arrays: nothing stops a key coming twice. */
                if (migrate_options_has(o, info->id))
                        return vm_error_set(error, VM_ERROR_INVALID_OPTION, "option '%s' is given twice",
                                            info->key);
                if (!g_variant_is_of_type(value, G_VARIANT_TYPE(info->type))) {
                        const char *given = g_variant_get_type_string(value);
                        g_autofree char *q = text_quote(given, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_OPTION,
                                            "option '%s' must be of type '%s' (%s), not '%s' (%s)",
                                            info->key, info->type, type_name(info->type), q,
                                            type_name(given));
                }
                r = store_value(o, info, value, error);
                if (r < 0)
                        return r;
        }

        *ret = g_steal_pointer(&o);
        return 0;
}

static const MigrateOptionSupport *find_support(const MigrateOptionSupport *support, size_t n,
                                                const char *key) {
        for (size_t i = 0; i < n; i++)
                if (support[i].key && g_str_equal(support[i].key, key))
                        return &support[i];
        return NULL;
}

/* Parses a backend's default into o. Returns < 0 for a broken table entry. */
static int store_default(MigrateOptions *o, const MigrateOptionInfo *info, const char *text,
                         GError **error) {
        g_autoptr(GError) parse_error = NULL;
        g_autoptr(GVariant) value = NULL;
        int r;

        value = g_variant_parse(G_VARIANT_TYPE(info->type), text, NULL, NULL, &parse_error);
        if (!value)
                return vm_error_set(error, VM_ERROR_FAILED,
                                    "default of option '%s' ('%s') is not a '%s': %s", info->key, text,
                                    info->type, parse_error->message);
        r = store_value(o, info, value, &parse_error);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_FAILED, "default of option '%s' is invalid: %s",
                                    info->key, parse_error->message);
        return 0;
}

typedef enum Condition {
        COND_TRUE,     /* a boolean, set and true */
        COND_PRESENT,  /* set at all */
        COND_IS,       /* an enum, set and equal to value */
        COND_NOT_NONE, /* an enum, set and not its first value ("none") */
} Condition;

typedef struct Rule {
        MigrateOptionId a;
        Condition cond_a;
        int value_a;
        bool excludes; /* else: a needs b */
        MigrateOptionId b;
        Condition cond_b;
        int value_b;
        const char *why;
} Rule;

/* DESIGN.md "Migrate options", after libvirt's qemuMigrationSrcBeginPhase. */
static const Rule rules[] = {
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, true, MIGRATE_OPTION_LIVE, COND_TRUE, 0,
          "an offline migration moves only the definition of a domain that is not running" },
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, true, MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0,
          "an offline migration copies no memory" },
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, true, MIGRATE_OPTION_PAUSED, COND_TRUE, 0,
          "an offline migration starts nothing on the destination" },
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, true, MIGRATE_OPTION_COMPRESSION, COND_NOT_NONE, 0,
          "an offline migration copies no memory" },
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, true, MIGRATE_OPTION_TUNNELLED, COND_TRUE, 0,
          "an offline migration has no data stream to tunnel" },
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, true, MIGRATE_OPTION_COPY_STORAGE, COND_NOT_NONE, 0,
          "an offline migration cannot copy disks" },
        { MIGRATE_OPTION_OFFLINE, COND_TRUE, 0, false, MIGRATE_OPTION_PERSIST, COND_TRUE, 0,
          "an offline migration moves only the definition, which must be kept on the destination" },
        { MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0, false, MIGRATE_OPTION_LIVE, COND_TRUE, 0,
          "post-copy runs the guest on the destination while its memory is still being copied" },
        { MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0, true, MIGRATE_OPTION_PAUSED, COND_TRUE, 0,
          "post-copy needs the guest running on the destination to fetch its memory" },
        { MIGRATE_OPTION_TUNNELLED, COND_TRUE, 0, true, MIGRATE_OPTION_DATA_URI, COND_PRESENT, 0,
          "tunnelled data goes through the control connection, not to a data URI" },
        { MIGRATE_OPTION_REUSE_IMAGES, COND_TRUE, 0, false, MIGRATE_OPTION_COPY_STORAGE, COND_NOT_NONE, 0,
          "only copied disks have images to reuse" },
        { MIGRATE_OPTION_TUNNELLED, COND_TRUE, 0, true, MIGRATE_OPTION_PARALLEL_CONNECTIONS, COND_PRESENT, 0,
          "the tunnel is a single connection" },
        { MIGRATE_OPTION_TUNNELLED, COND_TRUE, 0, true, MIGRATE_OPTION_TLS, COND_TRUE, 0,
          "the tunnel is the control connection's own channel (ssh encrypts it): choose one" },
        { MIGRATE_OPTION_TUNNELLED, COND_TRUE, 0, true, MIGRATE_OPTION_LISTEN_ADDRESS, COND_PRESENT, 0,
          "a tunnelled stream has no data port to listen on" },
        { MIGRATE_OPTION_COMPRESSION, COND_IS, MIGRATE_COMPRESSION_ZSTD, false,
          MIGRATE_OPTION_PARALLEL_CONNECTIONS, COND_PRESENT, 0,
          "zstd compression runs on the parallel connections" },
        { MIGRATE_OPTION_COMPRESSION, COND_IS, MIGRATE_COMPRESSION_ZLIB, false,
          MIGRATE_OPTION_PARALLEL_CONNECTIONS, COND_PRESENT, 0,
          "zlib compression runs on the parallel connections" },
        { MIGRATE_OPTION_COMPRESSION, COND_IS, MIGRATE_COMPRESSION_XBZRLE, true,
          MIGRATE_OPTION_PARALLEL_CONNECTIONS, COND_PRESENT, 0, "xbzrle works on a single connection only" },
        { MIGRATE_OPTION_POSTCOPY_BANDWIDTH, COND_PRESENT, 0, false, MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0,
          "it limits only the post-copy phase" },
        { MIGRATE_OPTION_TIMEOUT_ACTION, COND_PRESENT, 0, false, MIGRATE_OPTION_TIMEOUT, COND_PRESENT, 0,
          "it says what to do when the timeout expires" },
        { MIGRATE_OPTION_TIMEOUT_ACTION, COND_IS, MIGRATE_TIMEOUT_ACTION_POSTCOPY, false,
          MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0, "switching to post-copy must be allowed from the start" },
        { MIGRATE_OPTION_POSTCOPY_RESUME, COND_TRUE, 0, false, MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0,
          "only a post-copy migration can be resumed" },
        { MIGRATE_OPTION_POSTCOPY_PREEMPT, COND_TRUE, 0, false, MIGRATE_OPTION_POSTCOPY, COND_TRUE, 0,
          "the preempt channel carries post-copy's page requests" },
        { MIGRATE_OPTION_TUNNELLED, COND_TRUE, 0, true, MIGRATE_OPTION_POSTCOPY_PREEMPT, COND_TRUE, 0,
          "the tunnel is a single connection, and the preempt channel is a second one" },
        { MIGRATE_OPTION_ZERO_PAGE_DETECTION, COND_IS, MIGRATE_ZERO_PAGE_DETECTION_MULTIFD, false,
          MIGRATE_OPTION_PARALLEL_CONNECTIONS, COND_PRESENT, 0,
          "without them QEMU finds zero pages in its main thread, as with 'legacy'" },
        { MIGRATE_OPTION_ZERO_COPY_SEND, COND_TRUE, 0, false, MIGRATE_OPTION_PARALLEL_CONNECTIONS,
          COND_PRESENT, 0, "QEMU sends without copying only on the parallel connections" },
        { MIGRATE_OPTION_ZERO_COPY_SEND, COND_TRUE, 0, true, MIGRATE_OPTION_COMPRESSION, COND_NOT_NONE, 0,
          "compressed pages are copied into a buffer anyway" },
        { MIGRATE_OPTION_ZERO_COPY_SEND, COND_TRUE, 0, true, MIGRATE_OPTION_TLS, COND_TRUE, 0,
          "TLS encrypts the pages into a buffer anyway" },
};

static bool condition_holds(const MigrateOptions *o, MigrateOptionId id, Condition cond, int value) {
        if (!migrate_options_has(o, id))
                return false;
        switch (cond) {
        case COND_TRUE:
                return *CFIELD(o, id, bool);
        case COND_PRESENT:
                return true;
        case COND_IS:
                return *CFIELD(o, id, int) == value;
        case COND_NOT_NONE:
                return *CFIELD(o, id, int) != 0;
        }
        g_assert_not_reached();
}

static bool rule_violated(const Rule *rule, const MigrateOptions *o) {
        return condition_holds(o, rule->a, rule->cond_a, rule->value_a) &&
                condition_holds(o, rule->b, rule->cond_b, rule->value_b) == rule->excludes;
}

static void unset_option(MigrateOptions *o, MigrateOptionId id) {
        const MigrateOptionInfo *info = &option_table[id];

        switch (info->type[0]) {
        case 'b':
                *FIELD(o, id, bool) = false;
                break;
        case 'u':
                *FIELD(o, id, uint32_t) = 0;
                break;
        case 't':
                *FIELD(o, id, uint64_t) = 0;
                break;
        case 's':
                if (info->values)
                        *FIELD(o, id, int) = 0;
                else
                        g_clear_pointer(FIELD(o, id, char *), g_free);
                break;
        default:
                g_assert_not_reached();
        }
        o->set &= ~BIT(id);
}

/* What a migration runs with; each option's origin for messages. */
typedef struct Resolved {
        MigrateOptions *options;
        uint64_t given, implied, defaulted;
        MigrateOptionId implied_by[_MIGRATE_OPTION_MAX];
} Resolved;

static void imply(Resolved *res, MigrateOptionId id, bool value, MigrateOptionId by) {
        if (migrate_options_has(res->options, id))
                return;
        *FIELD(res->options, id, bool) = value;
        res->options->set |= BIT(id);
        res->implied |= BIT(id);
        res->implied_by[id] = by;
}

/*
 * In place: given → what given options imply → backend defaults. A default
 * never causes a conflict: where one would, it yields (is unset), so that
 * e.g. 'compression'='xbzrle' still works on a backend whose default is
 * some 'parallel-connections'. Conflicts left are between what was given
 * (or implied by it), and a default that does not meet what a given option
 * needs.
 */
static void resolve(Resolved *res, const MigrateOptionSupport *support, size_t n_support) {
        MigrateOptions *o = res->options;

        res->given = o->set;
        /* An offline migration moves a definition, so it is not live, and
         * the definition must be kept (libvirt insists on both too). */
        if (migrate_options_has(o, MIGRATE_OPTION_OFFLINE) && o->offline) {
                imply(res, MIGRATE_OPTION_LIVE, false, MIGRATE_OPTION_OFFLINE);
                imply(res, MIGRATE_OPTION_PERSIST, true, MIGRATE_OPTION_OFFLINE);
        }

        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++) {
                const MigrateOptionInfo *info = &option_table[i];
                const MigrateOptionSupport *s;
                g_autoptr(GError) error = NULL;

                if (migrate_options_has(o, info->id))
                        continue;
                s = find_support(support, n_support, info->key);
                if (!s || !s->supported || !s->default_value)
                        continue;
                if (store_default(o, info, s->default_value, &error) < 0) {
                        log_error("backend option table: %s", error->message);
                        continue;
                }
                res->defaulted |= BIT(info->id);
        }

        for (bool changed = true; changed;) {
                changed = false;
                for (size_t i = 0; i < G_N_ELEMENTS(rules); i++) {
                        const Rule *rule = &rules[i];
                        MigrateOptionId yield;

                        if (!rule_violated(rule, o))
                                continue;
                        if (res->defaulted & BIT(rule->a))
                                yield = rule->a;
                        else if (rule->excludes && (res->defaulted & BIT(rule->b)))
                                yield = rule->b;
                        else
                                continue;
                        unset_option(o, yield);
                        res->defaulted &= ~BIT(yield);
                        changed = true;
                }
        }
}

void migrate_options_apply_defaults(MigrateOptions *o, const MigrateOptionSupport *support,
                                    size_t n_support) {
        Resolved res = { .options = o };

        resolve(&res, support, n_support);
}

static void copy_into(MigrateOptions *dst, const MigrateOptions *src) {
        *dst = *src;
        dst->destination_name = g_strdup(src->destination_name);
        dst->destination_xml = g_strdup(src->destination_xml);
        dst->data_uri = g_strdup(src->data_uri);
        dst->listen_address = g_strdup(src->listen_address);
        dst->policy = g_strdup(src->policy);
}

MigrateOptions *migrate_options_copy(const MigrateOptions *o) {
        MigrateOptions *copy = g_new0(MigrateOptions, 1);

        copy_into(copy, o);
        return copy;
}

/* "true", "'zstd'", "300" */
static char *format_value(const MigrateOptions *o, MigrateOptionId id) {
        const MigrateOptionInfo *info = &option_table[id];

        switch (info->type[0]) {
        case 'b':
                return g_strdup(*CFIELD(o, id, bool) ? "true" : "false");
        case 'u':
                return g_strdup_printf("%" PRIu32, *CFIELD(o, id, uint32_t));
        case 't':
                return g_strdup_printf("%" PRIu64, *CFIELD(o, id, uint64_t));
        case 's':
                if (info->values)
                        return g_strdup_printf("'%s'", info->values[*CFIELD(o, id, int)]);
                return g_strdup_printf("'%s'", *CFIELD(o, id, char *) ?: "");
        default:
                g_assert_not_reached();
        }
}

/* "'live'=false (implied by 'offline')" */
static char *describe_setting(const Resolved *res, MigrateOptionId id, const char *backend_name) {
        g_autofree char *value = NULL;

        if (!migrate_options_has(res->options, id))
                return g_strdup_printf("'%s' is not set", option_table[id].key);
        value = format_value(res->options, id);
        if (res->implied & BIT(id))
                return g_strdup_printf("'%s'=%s (implied by '%s')", option_table[id].key, value,
                                       option_table[res->implied_by[id]].key);
        if (res->defaulted & BIT(id))
                return g_strdup_printf("'%s'=%s (the '%s' backend's default)", option_table[id].key, value,
                                       backend_name);
        return g_strdup_printf("'%s'=%s", option_table[id].key, value);
}

/* What b must be for a "needs" rule: "'live'=true", "'parallel-connections' ≥ 1" */
static char *describe_need(MigrateOptionId id, Condition cond, int value) {
        const MigrateOptionInfo *info = &option_table[id];

        switch (cond) {
        case COND_TRUE:
                return g_strdup_printf("'%s'=true", info->key);
        case COND_PRESENT:
                if (info->type[0] == 'u' || info->type[0] == 't')
                        return g_strdup_printf("'%s' ≥ %" PRIu64, info->key, info->min);
                return g_strdup_printf("'%s'", info->key);
        case COND_IS:
                return g_strdup_printf("'%s'='%s'", info->key, info->values[value]);
        case COND_NOT_NONE:
                return g_strdup_printf("'%s' other than 'none'", info->key);
        }
        g_assert_not_reached();
}

static int check_rules(const Resolved *res, const char *backend_name, GError **error) {
        for (size_t i = 0; i < G_N_ELEMENTS(rules); i++) {
                const Rule *rule = &rules[i];
                g_autofree char *a = NULL, *b = NULL, *need = NULL;

                if (!rule_violated(rule, res->options))
                        continue;

                a = describe_setting(res, rule->a, backend_name);
                b = describe_setting(res, rule->b, backend_name);
                /* Defaults have yielded (resolve()), so both sides were
                 * given or implied by what was given. */
                if (rule->excludes)
                        return vm_error_set(error, VM_ERROR_CONFLICTING_OPTIONS,
                                            "option %s excludes %s: %s; leave one of them out", a, b,
                                            rule->why);
                need = describe_need(rule->b, rule->cond_b, rule->value_b);
                return vm_error_set(error, VM_ERROR_CONFLICTING_OPTIONS,
                                    "option %s needs %s, but %s: %s; give %s or leave out '%s'", a, need, b,
                                    rule->why, need, option_table[rule->a].key);
        }
        return 0;
}

int migrate_options_check(const MigrateOptions *o, const char *backend_name,
                          const MigrateOptionSupport *support, size_t n_support, GError **error) {
        MigrateOptions effective;
        Resolved res = { .options = &effective };
        int r;

        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++) {
                const MigrateOptionInfo *info = &option_table[i];
                const MigrateOptionSupport *s;

                if (!migrate_options_has(o, info->id) || info->every_backend)
                        continue;
                s = find_support(support, n_support, info->key);
                if (!s || !s->supported)
                        return vm_error_set(error, VM_ERROR_UNSUPPORTED_OPTION,
                                            "option '%s' is not supported by the '%s' backend: %s",
                                            info->key, backend_name,
                                            s && s->why_not ? s->why_not
                                                            : "the backend does not implement it");
        }

        copy_into(&effective, o);
        resolve(&res, support, n_support);
        r = check_rules(&res, backend_name, error);
        g_free(effective.destination_name);
        g_free(effective.destination_xml);
        g_free(effective.data_uri);
        g_free(effective.listen_address);
        g_free(effective.policy);
        return r;
}

char **migrate_options_warnings(const MigrateOptions *o) {
        g_autoptr(GPtrArray) w = g_ptr_array_new_with_free_func(g_free);

        /* libvirt allows this too: the domain is transient on the destination,
         * so nothing keeps its definition once it stops there. */
        if (migrate_options_has(o, MIGRATE_OPTION_UNDEFINE_SOURCE) && o->undefine_source && !o->persist)
                g_ptr_array_add(w,
                                g_strdup("'undefine-source'=true without 'persist'=true: the domain will be "
                                         "transient on the destination and its definition is lost when it "
                                         "stops there"));
        if (migrate_options_has(o, MIGRATE_OPTION_UNSAFE) && o->unsafe)
                g_ptr_array_add(w,
                                g_strdup("'unsafe'=true: safety checks that would refuse this migration are "
                                         "skipped"));
        if (migrate_options_has(o, MIGRATE_OPTION_LIVE) && !o->live && !o->offline)
                g_ptr_array_add(w, g_strdup("'live'=false: the guest is paused for the whole migration"));
        g_ptr_array_add(w, NULL);
        return (char **) g_ptr_array_free(g_steal_pointer(&w), false);
}

static GVariant *value_to_variant(const MigrateOptions *o, const MigrateOptionInfo *info) {
        MigrateOptionId id = info->id;

        switch (info->type[0]) {
        case 'b':
                return g_variant_new_boolean(*CFIELD(o, id, bool));
        case 'u':
                return g_variant_new_uint32(*CFIELD(o, id, uint32_t));
        case 't':
                return g_variant_new_uint64(*CFIELD(o, id, uint64_t));
        case 's':
                if (info->values)
                        return g_variant_new_string(info->values[*CFIELD(o, id, int)]);
                return g_variant_new_string(*CFIELD(o, id, char *) ?: "");
        default:
                g_assert_not_reached();
        }
}

GVariant *migrate_options_to_variant(const MigrateOptions *o) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++)
                if (migrate_options_has(o, option_table[i].id))
                        g_variant_builder_add(&b, "{sv}", option_table[i].key,
                                              value_to_variant(o, &option_table[i]));
        return g_variant_builder_end(&b);
}

bool migrate_options_equal(const MigrateOptions *a, const MigrateOptions *b) {
        if (a->set != b->set)
                return false;
        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++) {
                const MigrateOptionInfo *info = &option_table[i];

                if (!migrate_options_has(a, info->id))
                        continue;
                switch (info->type[0]) {
                case 'b':
                        if (*CFIELD(a, info->id, bool) != *CFIELD(b, info->id, bool))
                                return false;
                        break;
                case 'u':
                        if (*CFIELD(a, info->id, uint32_t) != *CFIELD(b, info->id, uint32_t))
                                return false;
                        break;
                case 't':
                        if (*CFIELD(a, info->id, uint64_t) != *CFIELD(b, info->id, uint64_t))
                                return false;
                        break;
                case 's':
                        if (info->values ? *CFIELD(a, info->id, int) != *CFIELD(b, info->id, int)
                                         : g_strcmp0(*CFIELD(a, info->id, char *),
                                                     *CFIELD(b, info->id, char *)) != 0)
                                return false;
                        break;
                default:
                        g_assert_not_reached();
                }
        }
        return true;
}

GVariant *migrate_options_describe(const MigrateOptionSupport *support, size_t n_support) {
        GVariantBuilder all;

        g_variant_builder_init(&all, G_VARIANT_TYPE("a{sa{sv}}"));
        for (size_t i = 0; i < _MIGRATE_OPTION_MAX; i++) {
                const MigrateOptionInfo *info = &option_table[i];
                const MigrateOptionSupport *s = find_support(support, n_support, info->key);
                bool supported = info->every_backend || (s && s->supported);
                GVariantBuilder one;

                g_variant_builder_init(&one, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&one, "{sv}", "type", g_variant_new_string(info->type));
                g_variant_builder_add(&one, "{sv}", "doc", g_variant_new_string(info->doc));
                g_variant_builder_add(&one, "{sv}", "supported", g_variant_new_boolean(supported));
                if (!supported)
                        g_variant_builder_add(&one, "{sv}", "why-not",
                                              g_variant_new_string(s && s->why_not ? s->why_not
                                                                                   : "the backend does not "
                                                                                     "implement it"));
                if (supported && s && s->default_value) {
                        g_autoptr(MigrateOptions) d = migrate_options_new();
                        g_autoptr(GError) error = NULL;

                        if (store_default(d, info, s->default_value, &error) >= 0)
                                g_variant_builder_add(&one, "{sv}", "default", value_to_variant(d, info));
                        else
                                log_error("backend option table: %s", error->message);
                }
                if (info->values)
                        g_variant_builder_add(&one, "{sv}", "values", g_variant_new_strv(info->values, -1));
                if (info->type[0] == 'u' || info->type[0] == 't') {
                        g_variant_builder_add(&one, "{sv}", "min", g_variant_new_uint64(info->min));
                        g_variant_builder_add(&one, "{sv}", "max", g_variant_new_uint64(info->max));
                        if (info->unit)
                                g_variant_builder_add(&one, "{sv}", "unit",
                                                      g_variant_new_string(info->unit));
                }
                g_variant_builder_add(&all, "{s@a{sv}}", info->key, g_variant_builder_end(&one));
        }
        return g_variant_builder_end(&all);
}

int migrate_option_support_validate(const MigrateOptionSupport *support, size_t n, GError **error) {
        uint64_t seen = 0;

        for (size_t i = 0; i < n; i++) {
                const MigrateOptionSupport *s = &support[i];
                const MigrateOptionInfo *info = migrate_option_info(s->key);

                if (!info)
                        return vm_error_set(error, VM_ERROR_FAILED, "entry %zu: unknown option '%s'", i,
                                            s->key ?: "(null)");
                if (seen & BIT(info->id))
                        return vm_error_set(error, VM_ERROR_FAILED, "option '%s' is listed twice", s->key);
                seen |= BIT(info->id);
                if (!s->supported && (!s->why_not || !s->why_not[0]))
                        return vm_error_set(error, VM_ERROR_FAILED,
                                            "unsupported option '%s' does not say why", s->key);
                if (!s->supported && s->default_value)
                        return vm_error_set(error, VM_ERROR_FAILED, "unsupported option '%s' has a default",
                                            s->key);
                if (s->default_value) {
                        g_autoptr(MigrateOptions) d = migrate_options_new();
                        int r = store_default(d, info, s->default_value, error);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}
