/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl: command-line client of vmigrated (org.vmigrate.Migrate1).
 *
 * Every command is one or a few D-Bus calls; nothing here knows more about
 * domains than the bus contract says. Exit codes are listed in ctl.h and in
 * --help.
 */

#include "bus-gvariant.h"
#include "config.h"
#include "ctl-report.h"
#include "ctl.h"
#include "names.h"
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The messages and --help say "1 MiB". */
G_STATIC_ASSERT(DOMAIN_XML_MAX_BYTES == 1024 * 1024);
/* Lifecycle calls reply only when the operation has completed (a guest shutdown can take a while). */
#define LIFECYCLE_TIMEOUT_USEC (120 * G_USEC_PER_SEC)
/* The daemon waits for the guest (by default 2 minutes, vmigrated --shutdown-timeout), then destroys
 * it: a shutdown may take that long plus the destroy, and must not be given up on before. */
#define SHUTDOWN_EXTRA_USEC (60 * G_USEC_PER_SEC)
#define SHUTDOWN_TIMEOUT_USEC (LIFECYCLE_TIMEOUT_USEC + SHUTDOWN_EXTRA_USEC)
/* Domain.ShutdownWithTimeout accepts 1 ms to one hour. */
#define SHUTDOWN_TIMEOUT_MAX_MS UINT64_C(3600000)
/* DryRun reaches the destination (maybe over ssh, maybe asking its polkit), as Migrate's Prepare does. */
#define DRY_RUN_TIMEOUT_USEC (5 * 60 * G_USEC_PER_SEC)

typedef struct Context {
        CtlHost host;
        bool json;
        bool quiet;
        bool all;
        bool names; /* list, policies: the names alone, one per line */
        bool allow_interactive;
        uint64_t shutdown_timeout_ms; /* --timeout; 0: not given, the daemon's default */
        const char *timeout_arg;      /* --timeout as given: its meaning depends on the command */
        bool postcopy;                /* --postcopy: migrate's option, migrate-setspeed's switch */
        CtlMigrateArgs migrate;       /* migrate's own options */
        bool detach;
        bool dry_run;               /* migrate --dry-run: Domain.DryRun instead of Migrate */
        const char *output;         /* report --output=FILE */
        CtlEvacuateArgs evacuate;   /* evacuate's own options */
        bool parallel_bare;         /* --parallel without a value: virsh's migrate switch */
        const char *history_domain; /* history --domain=DOMAIN */
        const char *limit_arg;      /* history --limit=N as given */
        uint32_t limit;
        sd_bus *bus;
        pid_t agent_pid;
} Context;

static void context_clear(Context *c) {
        ctl_polkit_agent_close(c->agent_pid);
        c->agent_pid = 0;
        ctl_host_clear(&c->host);
        ctl_migrate_args_clear(&c->migrate);
        g_clear_pointer(&c->bus, sd_bus_flush_close_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Context, context_clear)

typedef struct Command Command;

/* Command handlers return a CTL_EXIT_* code. */
typedef int (*CommandFunc)(Context *c, const Command *cmd, char **args);

struct Command {
        const char *name;
        const char *args; /* synopsis of the arguments */
        unsigned min_args, max_args;
        CommandFunc run;
        const char *method;    /* Domain method for simple actions */
        const char *done;      /* "started", for "Domain 'x' started." */
        const char *verb;      /* "start", for "cannot start domain 'x'" */
        uint64_t timeout_usec; /* 0: sd-bus default (25 s) */
        const char *summary;
        const char *help; /* more for COMMAND --help, or NULL */
};

/* Returns a CTL_EXIT_* code; on success *ret_reply holds the reply. */
static int call_method(Context *c, const char *path, const char *interface, const char *method,
                       uint64_t timeout_usec, const char *what, sd_bus_message **ret_reply,
                       const char *types, ...) {
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, interface, method);
        if (r >= 0 && types) {
                va_list ap;
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: cannot build the D-Bus call: %s\n", what, g_strerror(-r));
                return CTL_EXIT_FAILED;
        }

        r = sd_bus_call(c->bus, m, timeout_usec, &error, &reply);
        if (r < 0)
                return ctl_report_error(&c->host, &error, r, what);

        if (ret_reply)
                *ret_reply = g_steal_pointer(&reply);
        return CTL_EXIT_OK;
}

/* Reads the remaining single value of a reply; a malformed reply is a failure of the service. */
static int read_reply_value(sd_bus_message *reply, const char *type, const char *what,
                            GVariant **ret_value) {
        g_autoptr(GVariant) value = NULL;
        int r;

        r = bus_message_read_gvariant(reply, type, &value);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated (expected '%s')\n", what,
                        type);
                return CTL_EXIT_FAILED;
        }
        *ret_value = g_steal_pointer(&value);
        return CTL_EXIT_OK;
}

static int resolve_domain(Context *c, const char *domain, char **ret_path) {
        g_autoptr(sd_bus_message) reply = NULL;
        g_autofree char *what = g_strdup_printf("cannot find domain '%s'", domain);
        const char *path;
        int r;

        r = call_method(c, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "GetDomain", 0, what, &reply, "s",
                        domain);
        if (r != CTL_EXIT_OK)
                return r;
        if (sd_bus_message_read(reply, "o", &path) <= 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                return CTL_EXIT_FAILED;
        }
        *ret_path = g_strdup(path);
        return CTL_EXIT_OK;
}

static int get_domain_properties(Context *c, const char *path, const char *what, GVariant **ret_properties) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = call_method(c, path, "org.freedesktop.DBus.Properties", "GetAll", 0, what, &reply, "s",
                        BUS_DOMAIN_INTERFACE);
        if (r != CTL_EXIT_OK)
                return r;
        return read_reply_value(reply, "a{sv}", what, ret_properties);
}

static char *lookup_string(GVariant *properties, const char *name) {
        const char *s;

        if (properties && g_variant_lookup(properties, name, "&s", &s))
                return g_strdup(s);
        return NULL;
}

static void print_action_result(Context *c, const char *name, const char *uuid, const char *done) {
        if (c->json) {
                g_autoptr(JsonBuilder) builder = json_builder_new();
                g_autoptr(JsonNode) root = NULL;

                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "domain");
                json_builder_add_string_value(builder, name);
                if (uuid) {
                        json_builder_set_member_name(builder, "uuid");
                        json_builder_add_string_value(builder, uuid);
                }
                json_builder_set_member_name(builder, "result");
                json_builder_add_string_value(builder, "ok");
                json_builder_end_object(builder);
                root = json_builder_get_root(builder);
                ctl_print_json(root);
        } else if (!c->quiet)
                printf("Domain '%s' %s.\n", name, done);
}

/* For g_ptr_array_sort(), which passes pointers to the elements. */
static int compare_strings(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* ---- list ---- */

/* Elements are (o a{sv}): object path and properties. */
static int compare_by_name(gconstpointer a, gconstpointer b) {
        g_autoptr(GVariant) pa = g_variant_get_child_value(*(GVariant *const *) a, 1);
        g_autoptr(GVariant) pb = g_variant_get_child_value(*(GVariant *const *) b, 1);
        const char *na = "", *nb = "";

        g_variant_lookup(pa, "Name", "&s", &na);
        g_variant_lookup(pb, "Name", "&s", &nb);
        return strcmp(na, nb);
}

static bool domain_is_active(GVariant *properties) {
        const char *state;
        gboolean active;

        if (g_variant_lookup(properties, "Active", "b", &active))
                return active;
        return g_variant_lookup(properties, "State", "&s", &state) && !g_str_equal(state, "shutoff");
}

static char *list_cell(GVariant *properties, const char *column) {
        if (g_str_equal(column, "MemoryBytes")) {
                guint64 bytes;
                if (g_variant_lookup(properties, "MemoryBytes", "t", &bytes))
                        return ctl_format_bytes(bytes);
        } else {
                g_autoptr(GVariant) value = g_variant_lookup_value(properties, column, NULL);
                if (value)
                        return ctl_format_value(value);
        }
        return g_strdup("-");
}

static int cmd_list(Context *c, const Command *cmd, char **args) {
        static const struct {
                const char *title, *property;
        } columns[] = {
                { "NAME", "Name" },
                { "UUID", "UUID" },
                { "STATE", "State" },
                { "BACKEND", "Backend" },
                { "MEMORY", "MemoryBytes" },
                { "VCPUS", "VCPUs" },
                { "PERSISTENT", "Persistent" },
        };
        const char *what = "cannot list domains";
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) objects = NULL;
        g_autoptr(GPtrArray) domains = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref);
        GVariantIter iter;
        const char *path;
        GVariant *interfaces;
        int r;

        /* One round-trip for all properties of all domains. */
        r = call_method(c, BUS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", 0,
                        what, &reply, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_reply_value(reply, "a{oa{sa{sv}}}", what, &objects);
        if (r != CTL_EXIT_OK)
                return r;

        g_variant_iter_init(&iter, objects);
        while (g_variant_iter_next(&iter, "{&o@a{sa{sv}}}", &path, &interfaces)) {
                GVariant *properties =
                        g_variant_lookup_value(interfaces, BUS_DOMAIN_INTERFACE, G_VARIANT_TYPE("a{sv}"));

                g_variant_unref(interfaces);
                if (!properties)
                        continue; /* the manager itself, or future job objects */
                if (c->all || domain_is_active(properties))
                        g_ptr_array_add(domains,
                                        g_variant_ref_sink(g_variant_new("(o@a{sv})", path, properties)));
                g_variant_unref(properties);
        }
        g_ptr_array_sort(domains, compare_by_name);

        /* For scripts and shell completion: a name has no newline (nor any
         * control character), so one per line is unambiguous, spaces and all. */
        if (c->names) {
                for (guint i = 0; i < domains->len; i++) {
                        g_autoptr(GVariant) properties = g_variant_get_child_value(domains->pdata[i], 1);
                        const char *name;

                        if (g_variant_lookup(properties, "Name", "&s", &name))
                                printf("%s\n", name);
                }
                return CTL_EXIT_OK;
        }

        if (c->json) {
                g_autoptr(JsonNode) root = json_node_new(JSON_NODE_ARRAY);
                JsonArray *array = json_array_new();

                for (guint i = 0; i < domains->len; i++) {
                        g_autoptr(GVariant) properties = g_variant_get_child_value(domains->pdata[i], 1);
                        g_autoptr(GVariant) object_path = g_variant_get_child_value(domains->pdata[i], 0);
                        JsonNode *node = ctl_properties_to_json(properties);

                        json_object_set_string_member(json_node_get_object(node), "object-path",
                                                      g_variant_get_string(object_path, NULL));
                        json_array_add_element(array, node);
                }

                json_node_take_array(root, array);
                ctl_print_json(root);
                return CTL_EXIT_OK;
        }

        if (domains->len == 0) {
                /* a note for humans, on stderr so that scripts reading stdout see nothing */
                if (!c->quiet)
                        fprintf(stderr,
                                c->all ? "No domains defined.\n"
                                       : "No active domains ('list --all' also shows inactive ones).\n");
                return CTL_EXIT_OK;
        }

        {
                size_t widths[G_N_ELEMENTS(columns)];
                g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);

                for (size_t j = 0; j < G_N_ELEMENTS(columns); j++)
                        widths[j] = strlen(columns[j].title);
                for (guint i = 0; i < domains->len; i++)
                        for (size_t j = 0; j < G_N_ELEMENTS(columns); j++) {
                                g_autoptr(GVariant) properties =
                                        g_variant_get_child_value(domains->pdata[i], 1);
                                char *cell = list_cell(properties, columns[j].property);
                                widths[j] = MAX(widths[j], (size_t) g_utf8_strlen(cell, -1));
                                g_ptr_array_add(cells, cell);
                        }

                if (!c->quiet) {
                        for (size_t j = 0; j < G_N_ELEMENTS(columns); j++)
                                if (j + 1 < G_N_ELEMENTS(columns))
                                        printf("%-*s  ", (int) widths[j], columns[j].title);
                                else
                                        printf("%s\n", columns[j].title);
                }
                for (guint i = 0; i < domains->len; i++)
                        for (size_t j = 0; j < G_N_ELEMENTS(columns); j++) {
                                const char *cell = cells->pdata[i * G_N_ELEMENTS(columns) + j];
                                /* pad by characters, not bytes: names may be UTF-8 */
                                int pad = (int) (widths[j] - g_utf8_strlen(cell, -1));
                                if (j + 1 < G_N_ELEMENTS(columns))
                                        printf("%s%*s  ", cell, pad, "");
                                else
                                        printf("%s\n", cell);
                        }
        }
        return CTL_EXIT_OK;
}

/* ---- status ---- */

static int cmd_status(Context *c, const Command *cmd, char **args) {
        static const struct {
                const char *property, *label;
        } known[] = {
                { "Name", "Name" },
                { "UUID", "UUID" },
                { "State", "State" },
                { "StateReason", "State reason" },
                { "Backend", "Backend" },
                { "Active", "Active" },
                { "Persistent", "Persistent" },
                { "MemoryBytes", "Memory" },
                { "VCPUs", "VCPUs" },
        };
        g_autofree char *what = g_strdup_printf("cannot get the status of domain '%s'", args[0]);
        g_autofree char *path = NULL;
        g_autoptr(GVariant) properties = NULL;
        g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *name;
        int r;

        r = resolve_domain(c, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = get_domain_properties(c, path, what, &properties);
        if (r != CTL_EXIT_OK)
                return r;

        if (c->json) {
                g_autoptr(JsonNode) root = ctl_properties_to_json(properties);
                json_object_set_string_member(json_node_get_object(root), "object-path", path);
                ctl_print_json(root);
                return CTL_EXIT_OK;
        }

        for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
                g_autoptr(GVariant) value = g_variant_lookup_value(properties, known[i].property, NULL);
                g_autofree char *text = NULL;

                if (!value)
                        continue;
                if (g_str_equal(known[i].property, "MemoryBytes") &&
                    g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64)) {
                        g_autofree char *human = ctl_format_bytes(g_variant_get_uint64(value));
                        text = g_strdup_printf("%s (%" G_GUINT64_FORMAT " bytes)", human,
                                               g_variant_get_uint64(value));
                } else
                        text = ctl_format_value(value);
                printf("%s: %s\n", known[i].label, text);
        }

        /* Properties added to the interface later are shown too, under their D-Bus name. */
        g_variant_iter_init(&iter, properties);
        while (g_variant_iter_next(&iter, "{&sv}", &name, NULL)) {
                bool is_known = false;
                for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
                        is_known = is_known || g_str_equal(name, known[i].property);
                if (!is_known)
                        g_ptr_array_add(others, g_strdup(name));
        }
        g_ptr_array_sort(others, compare_strings);
        for (guint i = 0; i < others->len; i++) {
                g_autoptr(GVariant) value = g_variant_lookup_value(properties, others->pdata[i], NULL);
                g_autofree char *text = ctl_format_value(value);
                printf("%s: %s\n", (const char *) others->pdata[i], text);
        }
        printf("Object path: %s\n", path);
        return CTL_EXIT_OK;
}

/* ---- start, shutdown, destroy, suspend, resume, undefine ---- */

static int cmd_action(Context *c, const Command *cmd, char **args) {
        g_autofree char *what = g_strdup_printf("cannot %s domain '%s'", cmd->verb, args[0]);
        g_autofree char *path = NULL;
        g_autofree char *name = NULL;
        g_autofree char *uuid = NULL;
        g_autoptr(GVariant) properties = NULL;
        int r;

        r = resolve_domain(c, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        /* The canonical name for the message (the argument may be a UUID); the object may be gone
         * afterwards. */
        r = get_domain_properties(c, path, what, &properties);
        if (r != CTL_EXIT_OK)
                return r;
        name = lookup_string(properties, "Name");
        uuid = lookup_string(properties, "UUID");

        if (c->shutdown_timeout_ms > 0)
                /* The guest gets that long, then the daemon destroys it and replies. */
                r = call_method(c, path, BUS_DOMAIN_INTERFACE, "ShutdownWithTimeout",
                                c->shutdown_timeout_ms * 1000 + SHUTDOWN_EXTRA_USEC, what, NULL, "t",
                                c->shutdown_timeout_ms);
        else
                r = call_method(c, path, BUS_DOMAIN_INTERFACE, cmd->method, cmd->timeout_usec, what, NULL,
                                NULL);
        if (r != CTL_EXIT_OK)
                return r;

        print_action_result(c, name ? name : args[0], uuid, cmd->done);
        return CTL_EXIT_OK;
}

/* ---- define, create ---- */

/* Reads domain XML from a file or stdin ("-"); returns a CTL_EXIT_* code. */
static int read_xml_file(const char *filename, char **ret_xml) {
        g_autoptr(GByteArray) data = g_byte_array_new();
        const char *shown = g_str_equal(filename, "-") ? "standard input" : filename;
        const char *end;
        int fd;

        if (g_str_equal(filename, "-"))
                fd = STDIN_FILENO;
        else {
                struct stat st;

                fd = open(filename, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        fprintf(stderr, "vmigratectl: cannot open '%s': %s\n", filename, g_strerror(errno));
                        return CTL_EXIT_FAILED;
                }
                if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
                        fprintf(stderr, "vmigratectl: '%s' is a directory, not a domain XML file\n",
                                filename);
                        close(fd);
                        return CTL_EXIT_FAILED;
                }
        }

        /* Read one byte past the limit, so "exactly 1 MiB" and "more" can be told apart. */
        for (;;) {
                guint8 buf[16384];
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        fprintf(stderr, "vmigratectl: cannot read %s: %s\n", shown, g_strerror(e));
                        if (fd != STDIN_FILENO)
                                close(fd);
                        return CTL_EXIT_FAILED;
                }
                if (n == 0)
                        break;
                g_byte_array_append(data, buf, (guint) n);
                if (data->len > DOMAIN_XML_MAX_BYTES) {
                        fprintf(stderr,
                                "vmigratectl: %s is larger than 1 MiB; that is not a domain XML "
                                "vmigrated accepts\n",
                                shown);
                        if (fd != STDIN_FILENO)
                                close(fd);
                        return CTL_EXIT_FAILED;
                }
        }
        if (fd != STDIN_FILENO)
                close(fd);

        if (data->len == 0) {
                fprintf(stderr, "vmigratectl: %s is empty; expected a <domain> XML document\n", shown);
                return CTL_EXIT_FAILED;
        }
        if (memchr(data->data, '\0', data->len)) {
                fprintf(stderr,
                        "vmigratectl: %s contains a NUL byte at offset %td; expected a text XML document\n",
                        shown, (const guint8 *) memchr(data->data, '\0', data->len) - data->data);
                return CTL_EXIT_FAILED;
        }
        if (!g_utf8_validate((const char *) data->data, data->len, &end)) {
                fprintf(stderr, "vmigratectl: %s is not valid UTF-8 (first bad byte at offset %td)\n", shown,
                        end - (const char *) data->data);
                return CTL_EXIT_FAILED;
        }

        g_byte_array_append(data, (const guint8 *) "", 1);
        *ret_xml = (char *) g_byte_array_free(g_steal_pointer(&data), FALSE);
        return CTL_EXIT_OK;
}

static int cmd_define(Context *c, const Command *cmd, char **args) {
        g_autofree char *what = g_strdup_printf("cannot %s a domain from %s", cmd->verb,
                                                g_str_equal(args[0], "-") ? "standard input" : args[0]);
        g_autofree char *xml = NULL;
        g_autofree char *name = NULL;
        g_autofree char *uuid = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) properties = NULL;
        const char *path;
        int r;

        r = read_xml_file(args[0], &xml);
        if (r != CTL_EXIT_OK)
                return r;

        r = call_method(c, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, cmd->method, cmd->timeout_usec, what,
                        &reply, "s", xml);
        if (r != CTL_EXIT_OK)
                return r;
        if (sd_bus_message_read(reply, "o", &path) <= 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                return CTL_EXIT_FAILED;
        }

        /*
         * The operation succeeded; the name is only for the message. A
         * transient domain may already be gone again, so a failure here is
         * not an error.
         */
        {
                g_autoptr(sd_bus_message) m = NULL;
                g_autoptr(sd_bus_message) props_reply = NULL;
                g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;

                if (sd_bus_call_method(c->bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                                       &error, &props_reply, "s", BUS_DOMAIN_INTERFACE) >= 0 &&
                    bus_message_read_gvariant(props_reply, "a{sv}", &properties) >= 0) {
                        name = lookup_string(properties, "Name");
                        uuid = lookup_string(properties, "UUID");
                }
        }

        print_action_result(c, name ? name : path, uuid, cmd->done);
        return CTL_EXIT_OK;
}

/* ---- dumpxml, capabilities ---- */

static void print_document(Context *c, const char *text) {
        if (c->json) {
                g_autoptr(JsonNode) node = json_node_new(JSON_NODE_VALUE);
                json_node_set_string(node, text);
                ctl_print_json(node);
        } else {
                fputs(text, stdout);
                if (*text && !g_str_has_suffix(text, "\n"))
                        fputc('\n', stdout);
        }
}

static int cmd_dumpxml(Context *c, const Command *cmd, char **args) {
        g_autofree char *what = g_strdup_printf("cannot get the XML of domain '%s'", args[0]);
        g_autofree char *path = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        const char *xml;
        int r;

        r = resolve_domain(c, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = call_method(c, path, BUS_DOMAIN_INTERFACE, "GetXML", 0, what, &reply, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        if (sd_bus_message_read(reply, "s", &xml) <= 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                return CTL_EXIT_FAILED;
        }
        print_document(c, xml);
        return CTL_EXIT_OK;
}

static int cmd_capabilities(Context *c, const Command *cmd, char **args) {
        const char *what = "cannot get the host capabilities";
        g_autoptr(sd_bus_message) reply = NULL;
        const char *xml;
        int r;

        r = call_method(c, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "GetCapabilities", 0, what, &reply,
                        NULL);
        if (r != CTL_EXIT_OK)
                return r;
        if (sd_bus_message_read(reply, "s", &xml) <= 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                return CTL_EXIT_FAILED;
        }
        print_document(c, xml);
        return CTL_EXIT_OK;
}

/* ---- backends ---- */

static void print_dict(GVariant *dict, int indent) {
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *key;

        g_variant_iter_init(&iter, dict);
        while (g_variant_iter_next(&iter, "{&sv}", &key, NULL))
                g_ptr_array_add(keys, g_strdup(key));
        /* Sorted, for a stable output. */
        g_ptr_array_sort(keys, compare_strings);

        for (guint i = 0; i < keys->len; i++) {
                g_autoptr(GVariant) value = g_variant_lookup_value(dict, keys->pdata[i], NULL);

                /* "description" heads the entry; the options get a table of their own. */
                if (g_str_equal(keys->pdata[i], "description") ||
                    g_str_equal(keys->pdata[i], "migration-options"))
                        continue;
                if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARDICT)) {
                        printf("%*s%s:\n", indent, "", (const char *) keys->pdata[i]);
                        print_dict(value, indent + 2);
                } else {
                        g_autofree char *text = ctl_format_value(value);
                        printf("%*s%s: %s\n", indent, "", (const char *) keys->pdata[i], text);
                }
        }
}

/* A backend's "migration-options" (a{sa{sv}}) as a table: what a user needs before choosing flags. */
static void print_migration_options(GVariant *options) {
        static const char *const titles[] = { "OPTION", "SUPPORTED", "DEFAULT", "NOTES" };
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
        size_t widths[G_N_ELEMENTS(titles)];
        GVariantIter iter;
        const char *key;

        g_variant_iter_init(&iter, options);
        while (g_variant_iter_next(&iter, "{&s@a{sv}}", &key, NULL))
                g_ptr_array_add(keys, g_strdup(key));
        /* The daemon's order is the documented one (live, offline, ...); keep it. */

        for (size_t j = 0; j < G_N_ELEMENTS(titles); j++)
                widths[j] = strlen(titles[j]);
        for (guint i = 0; i < keys->len; i++) {
                g_autoptr(GVariant) info =
                        g_variant_lookup_value(options, keys->pdata[i], G_VARIANT_TYPE_VARDICT);
                g_autoptr(GVariant) def = info ? g_variant_lookup_value(info, "default", NULL) : NULL;
                g_autoptr(GVariant) values =
                        info ? g_variant_lookup_value(info, "values", G_VARIANT_TYPE_STRING_ARRAY) : NULL;
                gboolean supported = FALSE;
                const char *why = NULL, *unit = NULL;
                char *row[G_N_ELEMENTS(titles)];

                if (info) {
                        (void) g_variant_lookup(info, "supported", "b", &supported);
                        (void) g_variant_lookup(info, "why-not", "&s", &why);
                        (void) g_variant_lookup(info, "unit", "&s", &unit);
                }
                row[0] = g_strdup(keys->pdata[i]);
                row[1] = g_strdup(supported ? "yes" : "no");
                if (def && unit && g_str_equal(unit, "bytes/s") &&
                    g_variant_is_of_type(def, G_VARIANT_TYPE_UINT64))
                        row[2] = ctl_format_rate(g_variant_get_uint64(def));
                else if (def) {
                        g_autofree char *text = ctl_format_value(def);
                        row[2] = unit ? g_strdup_printf("%s %s", text, unit) : g_steal_pointer(&text);
                } else
                        row[2] = g_strdup("-");
                if (!supported)
                        row[3] = g_strdup(why ? why : "not supported");
                else {
                        const char *doc = "";
                        if (info)
                                (void) g_variant_lookup(info, "doc", "&s", &doc);
                        if (values) {
                                g_autofree char *list = ctl_format_value(values);
                                row[3] = g_strdup_printf("%s (%s)", doc, list);
                        } else if (unit)
                                row[3] = g_strdup_printf("%s (%s)", doc, unit);
                        else
                                row[3] = g_strdup(doc);
                }
                for (size_t j = 0; j < G_N_ELEMENTS(titles); j++) {
                        widths[j] = MAX(widths[j], (size_t) g_utf8_strlen(row[j], -1));
                        g_ptr_array_add(cells, row[j]);
                }
        }

        printf("  migration options:\n");
        printf("    %-*s  %-*s  %-*s  %s\n", (int) widths[0], titles[0], (int) widths[1], titles[1],
               (int) widths[2], titles[2], titles[3]);
        for (guint i = 0; i < keys->len; i++) {
                char **row = (char **) &cells->pdata[i * G_N_ELEMENTS(titles)];
                printf("    %-*s  %-*s  %-*s  %s\n", (int) widths[0], row[0], (int) widths[1], row[1],
                       (int) widths[2], row[2], row[3]);
        }
}

static int cmd_policies(Context *c, const Command *cmd, char **args) {
        const char *what = "cannot list the convergence policies";
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) policies = NULL;
        GVariantIter iter;
        const char *name, *description;
        GVariant *dict;
        int r;

        r = call_method(c, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "GetPolicies", 0, what, &reply, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_reply_value(reply, "a(ssa{sv})", what, &policies);
        if (r != CTL_EXIT_OK)
                return r;
        if (c->names) {
                g_variant_iter_init(&iter, policies);
                while (g_variant_iter_next(&iter, "(&s&s@a{sv})", &name, NULL, NULL))
                        printf("%s\n", name);
                return CTL_EXIT_OK;
        }
        if (c->json) {
                g_autoptr(JsonNode) root = json_gvariant_serialize(policies);
                ctl_print_json(root);
                return CTL_EXIT_OK;
        }
        g_variant_iter_init(&iter, policies);
        for (bool first = true; g_variant_iter_next(&iter, "(&s&s@a{sv})", &name, &description, &dict);
             first = false) {
                g_autoptr(GVariant) d = dict;
                g_autofree const char **steps = NULL;
                g_autofree char *origin = lookup_string(d, "origin");
                g_autofree char *final = lookup_string(d, "final-action");
                guint64 initial = 0, per_gib = 0, progress = 0;

                g_variant_lookup(d, "steps", "^a&s", &steps);
                g_variant_lookup(d, "initial-downtime-ms", "t", &initial);
                g_variant_lookup(d, "completion-timeout-per-gib", "t", &per_gib);
                g_variant_lookup(d, "progress-timeout", "t", &progress);
                printf("%s%s (%s)\n  %s\n", first ? "" : "\n", name, origin ? origin : "?", description);
                if (initial)
                        printf("  start: downtime %" G_GUINT64_FORMAT " ms\n", initial);
                for (size_t i = 0; steps && steps[i]; i++)
                        printf("  step %zu: %s\n", i + 1, steps[i]);
                printf("  then: %s", final ? final : "?");
                if (per_gib)
                        printf(", at %" G_GUINT64_FORMAT " s per GiB of memory", per_gib);
                if (progress)
                        printf(", or after %" G_GUINT64_FORMAT " s without progress", progress);
                printf("\n");
        }
        return CTL_EXIT_OK;
}

static int cmd_backends(Context *c, const Command *cmd, char **args) {
        const char *what = "cannot list the backends";
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) backends = NULL;
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *name;
        int r;

        r = call_method(c, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "GetBackends", 0, what, &reply, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_reply_value(reply, "a{sa{sv}}", what, &backends);
        if (r != CTL_EXIT_OK)
                return r;

        if (c->json) {
                g_autoptr(JsonNode) root = json_gvariant_serialize(backends);
                ctl_print_json(root);
                return CTL_EXIT_OK;
        }

        g_variant_iter_init(&iter, backends);
        while (g_variant_iter_next(&iter, "{&s@a{sv}}", &name, NULL))
                g_ptr_array_add(names, g_strdup(name));
        g_ptr_array_sort(names, compare_strings);

        for (guint i = 0; i < names->len; i++) {
                g_autoptr(GVariant) dict =
                        g_variant_lookup_value(backends, names->pdata[i], G_VARIANT_TYPE_VARDICT);
                g_autofree char *description = lookup_string(dict, "description");

                if (i > 0)
                        fputc('\n', stdout);
                if (description)
                        printf("%s: %s\n", (const char *) names->pdata[i], description);
                else
                        printf("%s\n", (const char *) names->pdata[i]);
                print_dict(dict, 2);
                {
                        g_autoptr(GVariant) options = g_variant_lookup_value(dict, "migration-options",
                                                                             G_VARIANT_TYPE("a{sa{sv}}"));
                        if (options)
                                print_migration_options(options);
                }
        }
        return CTL_EXIT_OK;
}

/* ---- migrate, job-status, job-abort, migrate-setmaxdowntime, migrate-setspeed ---- */

/* Resolves DOMAIN and reads its canonical name (the argument may be a UUID). */
static int resolve_domain_name(Context *c, const char *domain, const char *what, char **ret_path,
                               char **ret_name) {
        g_autofree char *path = NULL;
        g_autoptr(GVariant) properties = NULL;
        char *name;
        int r;

        r = resolve_domain(c, domain, &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = get_domain_properties(c, path, what, &properties);
        if (r != CTL_EXIT_OK)
                return r;
        name = lookup_string(properties, "Name");
        *ret_name = name ? name : g_strdup(domain);
        *ret_path = g_steal_pointer(&path);
        return CTL_EXIT_OK;
}

/* Columns to wrap the findings' messages at: the terminal's (or $COLUMNS, as
 * systemd's tools honour it), 0 when stdout is not a terminal, so that
 * scripts and logs get one finding per line. */
static unsigned findings_width(void) {
        const char *columns = getenv("COLUMNS");
        struct winsize ws;
        uint64_t v;

        if (!isatty(STDOUT_FILENO))
                return 0;
        if (columns && ctl_parse_uint(columns, 1, 10000, &v) >= 0)
                return (unsigned) v;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 80;
}

/*
 * migrate --dry-run: the same destination and a{sv} as the real Migrate,
 * sent to Domain.DryRun. Bad options and an unreachable destination come
 * back as findings, not as errors, so the reply is read whatever it says.
 * Returns OK when the daemon says the migration would succeed, FAILED when
 * not: a check that found errors has failed.
 */
static int migrate_dry_run(Context *c, const char *path, const char *name, const char *destination,
                           GVariant *options) {
        g_autofree char *what =
                g_strdup_printf("cannot check the migration of domain '%s' to %s", name, destination);
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GVariant) findings = NULL;
        int ok, r;

        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, BUS_DOMAIN_INTERFACE, "DryRun");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", destination);
        if (r >= 0)
                r = bus_message_append_gvariant(m, options);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: cannot build the D-Bus call: %s\n", what, g_strerror(-r));
                return CTL_EXIT_FAILED;
        }
        /* As long as reaching the destination takes: ssh, and its polkit. */
        r = sd_bus_call(c->bus, m, DRY_RUN_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return ctl_report_error(&c->host, &error, r, what);
        if (sd_bus_message_read(reply, "b", &ok) <= 0 ||
            bus_message_read_gvariant(reply, "a(sss)", &findings) < 0) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated (expected 'ba(sss)')\n",
                        what);
                return CTL_EXIT_FAILED;
        }

        if (c->json) {
                g_autoptr(JsonNode) root = ctl_dry_run_to_json(ok, findings);
                ctl_print_json(root);
        } else {
                /* --quiet: what stands in the way, nothing else. */
                g_autofree char *table = ctl_format_findings(findings, findings_width(), c->quiet);
                g_autofree char *verdict = ctl_dry_run_verdict(ok, findings);

                if (!c->quiet || !ok)
                        fputs(table, stdout);
                if (!c->quiet)
                        printf("Migrating domain '%s' to %s %s.\n", name, destination, verdict);
        }
        return ok ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

static int cmd_migrate(Context *c, const Command *cmd, char **args) {
        g_autofree char *what = g_strdup_printf("cannot migrate domain '%s' to %s", args[0], args[1]);
        g_autofree char *path = NULL;
        g_autofree char *name = NULL;
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(GVariant) options = NULL;
        gboolean postcopy;
        int r;

        if (c->migrate.destination_xml) {
                g_autofree char *xml = NULL;

                /* read_xml_file() refuses what the option refuses (empty, over 1 MiB) and more. */
                r = read_xml_file(c->migrate.destination_xml, &xml);
                if (r != CTL_EXIT_OK)
                        return r;
                g_variant_dict_insert(c->migrate.options, "destination-xml", "s", xml);
        }
        options = g_variant_ref_sink(g_variant_dict_end(c->migrate.options));
        if (!g_variant_lookup(options, "postcopy", "b", &postcopy))
                postcopy = FALSE;

        r = resolve_domain_name(c, args[0], what, &path, &name);
        if (r != CTL_EXIT_OK)
                return r;

        if (c->dry_run)
                return migrate_dry_run(c, path, name, args[1], options);

        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, BUS_DOMAIN_INTERFACE, "Migrate");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", args[1]);
        if (r >= 0)
                r = bus_message_append_gvariant(m, options);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: cannot build the D-Bus call: %s\n", what, g_strerror(-r));
                return CTL_EXIT_FAILED;
        }

        if (c->detach) {
                g_autoptr(sd_bus_message) reply = NULL;
                g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
                const char *job;
                int pc = CTL_EXIT_OK;

                r = sd_bus_call(c->bus, m, 5 * 60 * G_USEC_PER_SEC, &error, &reply);
                if (r < 0)
                        return ctl_report_error(&c->host, &error, r, what);
                if (sd_bus_message_read(reply, "o", &job) <= 0 ||
                    !g_str_has_prefix(job, BUS_JOB_PREFIX "/")) {
                        fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                        return CTL_EXIT_FAILED;
                }
                /* The daemon keeps the request until the first pass has begun: one call is enough. */
                if (c->migrate.switches.postcopy_after_precopy) {
                        g_autofree char *pc_what = g_strdup_printf("the migration of domain '%s' started "
                                                                   "(job %s), but cannot ask for post-copy",
                                                                   name, job);
                        pc = call_method(c, job, BUS_JOB_INTERFACE, "StartPostCopy", 0, pc_what, NULL, NULL);
                        if (pc != CTL_EXIT_OK)
                                fprintf(stderr,
                                        "hint: it goes on in pre-copy; 'vmigratectl migrate-postcopy %s' "
                                        "asks again.\n",
                                        name);
                }
                /* The job exists either way: print it, so that a script can follow it. */
                if (c->json) {
                        g_autoptr(JsonBuilder) builder = json_builder_new();
                        g_autoptr(JsonNode) root = NULL;

                        json_builder_begin_object(builder);
                        json_builder_set_member_name(builder, "domain");
                        json_builder_add_string_value(builder, name);
                        json_builder_set_member_name(builder, "destination");
                        json_builder_add_string_value(builder, args[1]);
                        json_builder_set_member_name(builder, "job");
                        json_builder_add_string_value(builder, job);
                        json_builder_end_object(builder);
                        root = json_builder_get_root(builder);
                        ctl_print_json(root);
                } else
                        printf("%s\n", job);
                return pc;
        }

        return ctl_migrate_follow(c->bus, m,
                                  &(CtlFollow){ .host = &c->host,
                                                .domain = name,
                                                .destination = args[1],
                                                .json = c->json,
                                                .quiet = c->quiet,
                                                .postcopy = postcopy,
                                                .start_postcopy = c->migrate.switches.postcopy_after_precopy,
                                                .postcopy_resume = c->migrate.switches.postcopy_resume });
}

static int cmd_job_status(Context *c, const Command *cmd, char **args) {
        g_autofree char *what = g_strdup_printf("cannot get the job statistics of domain '%s'", args[0]);
        g_autofree char *path = NULL;
        g_autofree char *name = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) stats = NULL;
        g_autofree char *job = NULL;
        int r;

        r = resolve_domain(c, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        {
                g_autoptr(GVariant) properties = NULL;

                r = get_domain_properties(c, path, what, &properties);
                if (r != CTL_EXIT_OK)
                        return r;
                name = lookup_string(properties, "Name");
                if (!g_variant_lookup(properties, "Job", "o", &job))
                        job = NULL;
        }
        r = call_method(c, path, BUS_DOMAIN_INTERFACE, "GetJobStats", 0, what, &reply, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_reply_value(reply, "a{sv}", what, &stats);
        if (r != CTL_EXIT_OK)
                return r;

        if (c->json) {
                g_autoptr(JsonNode) root = json_gvariant_serialize(stats);

                json_object_set_string_member(json_node_get_object(root), "domain", name ? name : args[0]);
                if (job && !g_str_equal(job, "/"))
                        json_object_set_string_member(json_node_get_object(root), "job", job);
                ctl_print_json(root);
        } else {
                g_autofree char *text = ctl_format_job_stats(stats);
                const char *phase = NULL;
                bool running = job && !g_str_equal(job, "/");

                (void) g_variant_lookup(stats, "phase", "&s", &phase);
                printf("%s job of domain '%s'%s%s%s:\n", running ? "Current" : "Last", name ? name : args[0],
                       running ? " (" : "", running ? job : "", running ? ")" : "");
                fputs(text, stdout);
        }
        return CTL_EXIT_OK;
}

/* After a refused job-control call: what to do instead, where the error alone does not say. */
static void print_job_control_hint(Context *c, const Command *cmd, const sd_bus_error *error,
                                   const char *name) {
        g_autofree char *word = ctl_shell_word(name);

        if (sd_bus_error_has_name(error, vm_error_dbus_name(VM_ERROR_NO_JOB)))
                fprintf(stderr,
                        "hint: domain '%s' has no migration leaving %s. Job control works on the source "
                        "host (--host=URI); 'vmigratectl job-status %s' shows the last job.\n",
                        name, c->host.kind == CTL_HOST_LOCAL ? "this host" : "that host", word);
        else if (sd_bus_error_has_name(error, vm_error_dbus_name(VM_ERROR_POSTCOPY_NOT_ENABLED)))
                fprintf(stderr,
                        "hint: post-copy must be allowed when the migration starts. Cancel it "
                        "('vmigratectl job-abort %s') and start it again with --postcopy, or help "
                        "pre-copy along with 'vmigratectl migrate-setspeed' or "
                        "'vmigratectl migrate-setmaxdowntime'.\n",
                        word);
        else if (g_str_equal(cmd->method, "StartPostCopy") &&
                 sd_bus_error_has_name(error, vm_error_dbus_name(VM_ERROR_INVALID_STATE)))
                fprintf(stderr,
                        "hint: the migration is already in post-copy or finishing; 'vmigratectl job-status "
                        "%s' shows its phase.\n",
                        word);
}

static int cmd_job_control(Context *c, const Command *cmd, char **args) {
        g_autofree char *what = g_str_equal(cmd->method, "StartPostCopy")
                ? g_strdup_printf("cannot switch the migration of domain '%s' to post-copy", args[0])
                : g_strdup_printf("cannot %s of domain '%s'", cmd->verb, args[0]);
        g_autofree char *path = NULL;
        g_autofree char *name = NULL;
        g_autofree char *done = NULL;
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        uint64_t value = 0;
        int r;

        /* Arguments first: a usage error needs no bus round-trip. */
        if (g_str_equal(cmd->method, "SetMaxDowntime")) {
                /* Domain.SetMaxDowntime takes what the option max-downtime takes. */
                if (ctl_parse_uint(args[1], 1, MIGRATE_MAX_DOWNTIME_MAX_MS, &value) < 0) {
                        fprintf(stderr,
                                "vmigratectl: invalid maximum downtime '%s': expected milliseconds from 1 "
                                "to %" PRIu64 ", e.g. 500\n",
                                args[1], MIGRATE_MAX_DOWNTIME_MAX_MS);
                        return CTL_EXIT_USAGE;
                }
        } else if (g_str_equal(cmd->method, "SetMaxBandwidth")) {
                if (ctl_parse_rate(args[1], &value) < 0) {
                        fprintf(stderr,
                                "vmigratectl: invalid rate '%s': expected bytes per second with an optional "
                                "unit, e.g. 100M, 1G, 512MiB/s, 800Mbit/s\n",
                                args[1]);
                        return CTL_EXIT_USAGE;
                }
        }

        r = resolve_domain_name(c, args[0], what, &path, &name);
        if (r != CTL_EXIT_OK)
                return r;

        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, BUS_DOMAIN_INTERFACE, cmd->method);
        if (r >= 0 && g_str_equal(cmd->method, "SetMaxDowntime")) {
                r = sd_bus_message_append(m, "t", value);
                done = g_strdup_printf("may now pause for up to %" G_GUINT64_FORMAT " ms", value);
        } else if (r >= 0 && g_str_equal(cmd->method, "SetMaxBandwidth")) {
                g_autofree char *rate = ctl_format_rate(value);
                r = sd_bus_message_append(m, "tb", value, (int) c->postcopy);
                done = g_strdup_printf("is limited to %s (%" G_GUINT64_FORMAT " bytes/s)%s", rate, value,
                                       c->postcopy ? " in post-copy" : "");
        } else if (g_str_equal(cmd->method, "StartPostCopy"))
                done = g_strdup("switches to post-copy as soon as it can (the guest then runs on the "
                                "destination)");
        else
                done = g_strdup("is being cancelled");
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: cannot build the D-Bus call: %s\n", what, g_strerror(-r));
                return CTL_EXIT_FAILED;
        }
        r = sd_bus_call(c->bus, m, cmd->timeout_usec, &error, &reply);
        if (r < 0) {
                int code = ctl_report_error(&c->host, &error, r, what);
                print_job_control_hint(c, cmd, &error, name);
                return code;
        }
        if (c->json)
                print_action_result(c, name, NULL, done);
        else if (!c->quiet)
                printf("The migration of domain '%s' %s.\n", name, done);
        return CTL_EXIT_OK;
}

/* ---- report ---- */

static int cmd_report(Context *c, const Command *cmd, char **args) {
        return ctl_report_run(c->bus, &c->host, args[0], c->output, c->quiet);
}

/* ---- history ---- */

static int cmd_history(Context *c, const Command *cmd, char **args) {
        const char *what = "cannot list the job history";
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GVariant) jobs = NULL;
        GVariantBuilder filter;
        int r;

        g_variant_builder_init(&filter, G_VARIANT_TYPE_VARDICT);
        /* Name or UUID as given: the daemon matches the name a job ended with, so a domain that
         * has left this host is still found. */
        if (c->history_domain)
                g_variant_builder_add(&filter, "{sv}", "domain", g_variant_new_string(c->history_domain));
        if (c->limit_arg)
                g_variant_builder_add(&filter, "{sv}", "limit", g_variant_new_uint32(c->limit));
        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                           "ListJobHistory");
        /* The builder's result is floating: held here, so that it is freed. */
        g_autoptr(GVariant) filter_value = g_variant_ref_sink(g_variant_builder_end(&filter));
        if (r >= 0)
                r = bus_message_append_gvariant(m, filter_value);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: cannot build the D-Bus call: %s\n", what, g_strerror(-r));
                return CTL_EXIT_FAILED;
        }
        r = sd_bus_call(c->bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_report_error(&c->host, &error, r, what);
        r = read_reply_value(reply, "aa{sv}", what, &jobs);
        if (r != CTL_EXIT_OK)
                return r;

        if (c->json) {
                g_autoptr(JsonNode) root = ctl_history_to_json(jobs);
                ctl_print_json(root);
                return CTL_EXIT_OK;
        }
        if (g_variant_n_children(jobs) == 0) {
                /* a note for humans, on stderr so that scripts reading stdout see nothing */
                if (!c->quiet) {
                        if (c->history_domain)
                                fprintf(stderr, "No job of domain '%s' in this host's history.\n",
                                        c->history_domain);
                        else
                                fprintf(stderr, "No job has ended on this host yet.\n");
                }
                return CTL_EXIT_OK;
        }
        {
                g_autofree char *table = ctl_format_history(jobs, findings_width());
                /* --quiet: the rows alone, as list prints them. */
                const char *rows = c->quiet ? strchr(table, '\n') + 1 : table;
                fputs(rows, stdout);
        }
        return CTL_EXIT_OK;
}

/* ---- maintenance ---- */

static int cmd_maintenance(Context *c, const Command *cmd, char **args) {
        const char *what =
                args[0] ? "cannot change the maintenance mode" : "cannot read the maintenance mode";
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(GVariant) properties = NULL;
        const char *hostname = "this host";
        gboolean maintenance;
        int r;

        if (args[0]) {
                maintenance = g_str_equal(args[0], "on");
                r = call_method(c, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "SetMaintenance", 0, what, NULL,
                                "b", (int) maintenance);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        /* Read back, also after a change: what the host says is what counts. */
        r = call_method(c, BUS_MANAGER_PATH, "org.freedesktop.DBus.Properties", "GetAll", 0, what, &reply,
                        "s", BUS_MANAGER_INTERFACE);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_reply_value(reply, "a{sv}", what, &properties);
        if (r != CTL_EXIT_OK)
                return r;
        if (!g_variant_lookup(properties, "Maintenance", "b", &maintenance)) {
                fprintf(stderr,
                        "vmigratectl: %s: this vmigrated has no Maintenance property; is it an older "
                        "version?\n",
                        what);
                return CTL_EXIT_FAILED;
        }
        (void) g_variant_lookup(properties, "Hostname", "&s", &hostname);

        if (c->json) {
                g_autoptr(JsonBuilder) builder = json_builder_new();
                g_autoptr(JsonNode) root = NULL;

                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "hostname");
                json_builder_add_string_value(builder, hostname);
                json_builder_set_member_name(builder, "maintenance");
                json_builder_add_boolean_value(builder, maintenance);
                json_builder_end_object(builder);
                root = json_builder_get_root(builder);
                ctl_print_json(root);
        } else if (!c->quiet || !args[0]) {
                g_autofree char *name = ctl_sanitize_cell(hostname);

                if (maintenance)
                        printf("%s is in maintenance: it refuses incoming migrations and starting domains; "
                               "what runs keeps running.\n",
                               name);
                else
                        printf("%s is not in maintenance.\n", name);
        }
        return CTL_EXIT_OK;
}

/* ---- evacuate ---- */

static int cmd_evacuate(Context *c, const Command *cmd, char **args) {
        const char *what = "cannot evacuate this host";
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GVariant) options = NULL;
        int64_t started;
        const char *path;
        int r;

        options = g_variant_ref_sink(g_variant_dict_end(c->migrate.options));
        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                           "Evacuate");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, args);
        if (r >= 0)
                r = bus_message_append_gvariant(m, options);
        if (r < 0) {
                fprintf(stderr, "vmigratectl: %s: cannot build the D-Bus call: %s\n", what, g_strerror(-r));
                return CTL_EXIT_FAILED;
        }
        /* The history's clock, with a second to spare for the daemon's rounding. */
        started = g_get_real_time() - G_USEC_PER_SEC;
        /* Replies at once, but polkit may ask for a password first. */
        r = sd_bus_call(c->bus, m, DRY_RUN_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return ctl_report_error(&c->host, &error, r, what);
        if (sd_bus_message_read(reply, "o", &path) <= 0 ||
            !g_str_has_prefix(path, BUS_EVACUATION_PREFIX "/")) {
                fprintf(stderr, "vmigratectl: %s: unexpected reply from vmigrated\n", what);
                return CTL_EXIT_FAILED;
        }

        if (c->detach) {
                if (c->json) {
                        g_autoptr(JsonBuilder) builder = json_builder_new();
                        g_autoptr(JsonNode) root = NULL;

                        json_builder_begin_object(builder);
                        json_builder_set_member_name(builder, "evacuation");
                        json_builder_add_string_value(builder, path);
                        json_builder_end_object(builder);
                        root = json_builder_get_root(builder);
                        ctl_print_json(root);
                } else
                        printf("%s\n", path);
                return CTL_EXIT_OK;
        }
        return ctl_evacuate_follow(c->bus, path,
                                   &(CtlEvacuateFollow){ .host = &c->host,
                                                         .json = c->json,
                                                         .quiet = c->quiet,
                                                         .maintenance = c->evacuate.maintenance,
                                                         .started_usec = started });
}

/* ---- table, help, main ---- */

#define MIGRATE_HELP                                                                                        \
        "Moves DOMAIN to the vmigrated at DESTINATION, live by default, and follows\n"                      \
        "the job to its end. The source vmigrated drives the whole migration; this\n"                       \
        "command only talks to it. DESTINATION names the destination's bus:\n"                              \
        "  ssh://[user@]host[:port]   its system bus over ssh (systemd-stdio-bridge)\n"                     \
        "  unix:///path/to/socket     a bus socket on this machine\n"                                       \
        "  HOST                       same as ssh://root@HOST\n"                                            \
        "\n"                                                                                                \
        "Progress: on a terminal, a bar redrawn up to 10 times a second (phase,\n"                          \
        "percent, data sent/total, rate, memory pass, dirty rate, expected downtime,\n"                     \
        "elapsed time); otherwise one plain line per second and per phase change.\n"                        \
        "With --copy-storage the disks are copied first: until the memory starts,\n"                        \
        "the line begins with 'disks' instead of the phase, and its percent, bytes\n"                       \
        "and rate are the disks', in plain lines too:\n"                                                    \
        "  disks      45%  115.5 MiB/256 MiB  15.5 MiB/s  9.6 s\n"                                          \
        "The bar shows the whole migration, disks and memory together.\n"                                   \
        "In post-copy the phase reads 'post-copy', the line shows what the\n"                               \
        "destination still has to fetch, and the bar goes on with '=' after the\n"                          \
        "'#' of pre-copy. When vmigrated finds that pre-copy does not converge (the\n"                      \
        "guest dirties memory faster than it is sent) and has nothing to do about\n"                        \
        "it, the line says 'not converging' and a message says why and what helps.\n"                       \
        "The job's warnings (what went wrong without failing it, such as a hook\n"                          \
        "that failed on the destination, or why it waits) go to standard error as\n"                        \
        "they come: 'vmigratectl: warning: ...' (not with --quiet).\n"                                      \
        "At the end: total time, downtime, data sent, passes, average rate; with\n"                         \
        "--copy-storage also the disks copied, and data sent is the memory's.\n"                            \
        "Ctrl-C once cancels the migration (possible while it copies: phase\n"                              \
        "perform, not in post-copy) and keeps following until it has ended;\n"                              \
        "Ctrl-C again stops following, leaving the job to run on (exit status 1).\n"                        \
        "\n"                                                                                                \
        "Options (absent: the backend's default, see 'vmigratectl backends'):\n"                            \
        "  --live, --no-live      Keep the guest running while memory is copied\n"                          \
        "  --offline              Move only the definition of a shut-off domain\n"                          \
        "                         (needs --persist)\n"                                                      \
        "  --paused               Leave the domain paused on the destination\n"                             \
        "  --persist, --no-persist\n"                                                                       \
        "                         Define the domain persistently on the destination\n"                      \
        "  --undefine-source      Undefine it on this host after success\n"                                 \
        "  --postcopy             Allow switching to post-copy (needs live): by\n"                          \
        "                         'vmigratectl migrate-postcopy DOMAIN', by\n"                              \
        "                         --timeout-postcopy, or by vmigrated itself when\n"                        \
        "                         pre-copy stops converging\n"                                              \
        "  --postcopy-after-precopy\n"                                                                      \
        "                         Switch to post-copy as soon as the first pass of\n"                       \
        "                         pre-copy has begun (implies --postcopy)\n"                                \
        "  --postcopy-resume      Resume a post-copy migration that failed, once\n"                         \
        "                         the link is back (implies --postcopy): same\n"                            \
        "                         DOMAIN and DESTINATION as the failed one\n"                               \
        "  --policy=NAME          What to do, step by step, when pre-copy cannot\n"                         \
        "                         catch up with the guest: longer pauses, then a\n"                         \
        "                         throttle, post-copy or a pause of the guest\n"                            \
        "                         ('vmigratectl policies' lists the host's; default:\n"                     \
        "                         'default', which never uses post-copy)\n"                                 \
        "  --auto-converge        Let the policy throttle the guest's CPUs (on by\n"                        \
        "                         default when the policy has throttle steps)\n"                            \
        "  --no-auto-converge     Never throttle: the policy skips those steps\n"                           \
        "  --compression=METHOD   none, zstd, zlib (both need\n"                                            \
        "                         --parallel-connections) or xbzrle\n"                                      \
        "  --parallel-connections=N\n"                                                                      \
        "                         Copy memory over N connections (1-255)\n"                                 \
        "  --tunnelled            Carry the data inside the control connection (ssh,\n"                     \
        "                         or a local socket): no data port is opened\n"                             \
        "  --tls                  Encrypt the migration data with TLS (the default\n"                       \
        "                         when both hosts have credentials from one CA)\n"                          \
        "  --no-tls               Send the data in clear text even then\n"                                  \
        "  --copy-storage=MODE    Copy disk images too, before the memory, for disks\n"                     \
        "                         not on storage both hosts share:\n"                                       \
        "                         all: each disk that is not read-only, a CD-ROM\n"                         \
        "                         or shareable, in full (backing files' data\n"                             \
        "                         included), into a new image at the same path on\n"                        \
        "                         the destination (or the --destination-xml one;\n"                         \
        "                         a file already there is refused);\n"                                      \
        "                         incremental: only the top image of a qcow2 disk\n"                        \
        "                         with a backing file, into a new qcow2 on the\n"                           \
        "                         same backing file, which must already be on the\n"                        \
        "                         destination at the same path (same format and\n"                          \
        "                         size; same content is yours to ensure); a disk\n"                         \
        "                         without one is copied whole;\n"                                           \
        "                         none: no disk is copied.\n"                                               \
        "                         With --tunnelled the disks go through the tunnel\n"                       \
        "                         too. Not with --offline (nor, in the qemu\n"                              \
        "                         backend for now, with --postcopy)\n"                                      \
        "  --reuse-images         With --copy-storage: copy into the images or block\n"                     \
        "                         devices already at the destination's paths (same\n"                       \
        "                         format and size) instead of refusing them; they\n"                        \
        "                         are overwritten, and never deleted. Needed for a\n"                       \
        "                         disk of type 'block'. Not for a disk with a\n"                            \
        "                         backing file under --copy-storage=incremental\n"                          \
        "  --bandwidth=RATE       Limit the copy to RATE\n"                                                 \
        "  --postcopy-bandwidth=RATE\n"                                                                     \
        "                         Limit the post-copy phase to RATE\n"                                      \
        "  --max-downtime=MS      Longest pause of the guest at the switch-over,\n"                         \
        "                         in milliseconds (1-2000000)\n"                                            \
        "  --postcopy-preempt     Post-copy: pages the guest waits for on a channel\n"                      \
        "                         of their own (the default where both hosts'\n"                            \
        "                         QEMU have it); --no-postcopy-preempt: never\n"                            \
        "  --zero-page-detection=multifd|legacy|none\n"                                                     \
        "                         Where zero pages are found (both hosts' QEMU 9.0)\n"                      \
        "  --zero-copy-send, --zerocopy\n"                                                                  \
        "                         Send on the parallel connections without copying\n"                       \
        "  --switchover-ack       Switch over once the destination's devices agree\n"                       \
        "  --switchover-bandwidth=RATE\n"                                                                   \
        "                         The link's rate for the switch-over estimate\n"                           \
        "  --destination-name=NAME\n"                                                                       \
        "                         Name of the domain on the destination\n"                                  \
        "  --destination-xml=FILE Domain XML to use there (same UUID; '-': stdin)\n"                        \
        "  --data-uri=URI         Where the destination receives the data,\n"                               \
        "                         tcp://host:port\n"                                                        \
        "  --listen-address=ADDR  IP address the destination listens on\n"                                  \
        "  --abort-on-error       Abort on a disk I/O error during the migration\n"                         \
        "  --unsafe               Migrate even where safety checks advise against it\n"                     \
        "  --timeout=SECONDS      When still copying after that long (1-604800):\n"                         \
        "                         cancel the migration (the default),\n"                                    \
        "  --timeout-postcopy     or switch to post-copy (implies --postcopy),\n"                           \
        "  --timeout-suspend      or pause the guest so that the copy finishes\n"                           \
        "  --timeout-action=ACTION\n"                                                                       \
        "                         The same by name: abort, postcopy or suspend\n"                           \
        "  --detach               Return once the job exists, printing its object\n"                        \
        "                         path (with --json: {domain, destination, job})\n"                         \
        "  --dry-run              Only check whether the migration would succeed\n"                         \
        "                         (Domain.DryRun, see below); migrates nothing\n"                           \
        "  --json                 Final statistics as one JSON object on stdout\n"                          \
        "                         (the keys of GetJobStats, plus domain, destination,\n"                    \
        "                         job, result); progress then goes to stderr if it\n"                       \
        "                         is a terminal\n"                                                          \
        "  -q, --quiet            No progress and no summary; errors only\n"                                \
        "\n"                                                                                                \
        "RATE is bytes per second: a number (decimals allowed) with an optional\n"                          \
        "unit and an optional '/s': K M G T or KiB MiB GiB TiB (powers of 1024, as\n"                       \
        "virsh and QEMU count), kB MB GB TB (powers of 1000), kbit Mbit Gbit Tbit\n"                        \
        "(bits, powers of 1000). 100M = 100MiB/s = 104857600; 1GB = 10^9;\n"                                \
        "800Mbit/s = 10^8. A bare number is bytes per second, where virsh's\n"                              \
        "--bandwidth means MiB/s: write --bandwidth=100M for virsh's 100.\n"                                \
        "\n"                                                                                                \
        "virsh migrate's names work too: --persistent, --undefinesource, --suspend\n"                       \
        "(= --paused), --downtime=MS, --dname=NAME, --migrateuri=URI, --xml=FILE,\n"                        \
        "--compressed (= --compression=xbzrle), --parallel (2 connections unless\n"                         \
        "--parallel-connections follows).\n"                                                                \
        "\n"                                                                                                \
        "Post-copy: once switched, the guest runs on the destination and fetches\n"                         \
        "the memory it still lacks from this host; post-copy always finishes as\n"                          \
        "long as the link holds, and 'job-abort' can no longer cancel it. If the\n"                         \
        "link breaks meanwhile, neither host has the whole guest: it is paused on\n"                        \
        "both (state reason postcopy-failed) and must not be destroyed on either;\n"                        \
        "vmigratectl says so (with --json: \"postcopy-failed\": true). Once the link\n"                     \
        "is back:\n"                                                                                        \
        "  vmigratectl migrate DOMAIN DESTINATION --postcopy-resume\n"                                      \
        "\n"                                                                                                \
        "Dry run: --dry-run sends the same destination and options to\n"                                    \
        "Domain.DryRun, which runs the checks of the real migration on this host\n"                         \
        "and on the destination (Incoming.CheckPrepare) and starts, binds, creates\n"                       \
        "and reserves nothing on either. It prints one row per finding: SEVERITY\n"                         \
        "(error, warning, info), CHECK (a stable id such as resources.memory,\n"                            \
        "storage.disk, cpu.features, destination.reachable, host.same) and MESSAGE\n"                       \
        "(starting with the host it concerns; wrapped to the terminal's width, not\n"                       \
        "wrapped when stdout is not a terminal), then a verdict: 'would succeed\n"                          \
        "(best-effort: ...)' or 'would fail: N errors'. A dry run is best-effort:\n"                        \
        "things can change before the real migration, which checks again. With\n"                           \
        "--json: {\"ok\": BOOL, \"findings\": [{\"severity\", \"check\", \"message\"}]};\n"                 \
        "with --quiet only the errors. Polkit action org.vmigrate.migrate1.dry-run.\n"                      \
        "Exit status of a dry run: 0 when the migration would succeed; 1 when it\n"                         \
        "would fail (the check found errors) or vmigrated refused the call; 2, 3,\n"                        \
        "4, 5 as below.\n"                                                                                  \
        "\n"                                                                                                \
        "Exit status: 0 when the migration completed; 1 when it failed (also in\n"                          \
        "post-copy: PostCopyFailed) or was cancelled (the error is printed), when\n"                        \
        "vmigrated refused it (InvalidOption, UnsupportedOption,\n"                                         \
        "ConflictingOptions, InvalidDestination, DestinationUnreachable,\n"                                 \
        "Incompatible, JobActive, ...), or when following was interrupted by a\n"                           \
        "second Ctrl-C; 2 usage error; 3 this host's vmigrated is unreachable or\n"                         \
        "left during the migration; 4 no such domain; 5 permission denied (polkit\n"                        \
        "action org.vmigrate.migrate1.migrate).\n"                                                          \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl migrate demo hv2.example.org\n"                                                      \
        "  vmigratectl migrate demo hv2 --dry-run --postcopy\n"                                             \
        "  vmigratectl --json migrate demo hv2 --dry-run | jq -r '.findings[].check'\n"                     \
        "  vmigratectl migrate demo ssh://admin@hv2:2222 --bandwidth=200M \\\n"                             \
        "          --max-downtime=300 --persist --undefine-source\n"                                        \
        "  vmigratectl migrate demo hv2 --postcopy-after-precopy --bandwidth=200M\n"                        \
        "  vmigratectl migrate demo hv2 --timeout=60 --timeout-postcopy\n"                                  \
        "  vmigratectl migrate demo hv2 --timeout=600 --timeout-suspend\n"                                  \
        "  vmigratectl migrate demo hv2 --postcopy\n"                                                       \
        "      and when it drags on, from another terminal:\n"                                              \
        "  vmigratectl migrate-postcopy demo\n"                                                             \
        "  vmigratectl migrate demo hv2 --postcopy-resume\n"                                                \
        "      after a post-copy failure, once the link is back\n"                                          \
        "  vmigratectl --json migrate demo hv2 | jq '.\"downtime-ms\"'\n"                                   \
        "  job=$(vmigratectl migrate --detach demo hv2); vmigratectl job-status demo\n"                     \
        "The same with busctl alone, waiting for the end (option wait):\n"                                  \
        "  dom=$(busctl call org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \\\n"                             \
        "        org.vmigrate.Migrate1.Manager GetDomain s demo | cut -d'\"' -f2)\n"                        \
        "  busctl --timeout=1h call org.vmigrate.Migrate1 \"$dom\" \\\n"                                    \
        "        org.vmigrate.Migrate1.Domain Migrate 'sa{sv}' ssh://root@hv2 \\\n"                         \
        "        2 bandwidth t 209715200 wait b true\n"

#define JOB_STATUS_HELP                                                                                     \
        "Shows the statistics of DOMAIN's current job, or of its last one since\n"                          \
        "vmigrated started (Domain.GetJobStats): kind, phase, peer, progress, total\n"                      \
        "time, downtime, disks copied and remaining (copy-storage only; data sent\n"                        \
        "is then the memory's), data sent, passes, average and stream rate, dirty\n"                        \
        "rate, and the error of a failed job. --json prints the a{sv} as a JSON\n"                          \
        "object (keys as on the bus, e.g. \"elapsed-ms\" or \"disk-processed\", plus\n"                     \
        "\"domain\" and, while one runs, \"job\").\n"                                                       \
        "Needs no authorization. Exit status 1 when the domain has had no job.\n"                           \
        "\n"                                                                                                \
        "Example:\n"                                                                                        \
        "  vmigratectl job-status demo\n"                                                                   \
        "  vmigratectl --json job-status demo | jq .phase\n"

#define JOB_ABORT_HELP                                                                                      \
        "Cancels DOMAIN's migration (Domain.AbortJob): possible while it copies\n"                          \
        "(phase perform), on the source host; the domain keeps running there.\n"                            \
        "Returns once the cancellation was requested; 'vmigratectl job-status\n"                            \
        "DOMAIN' then shows phase cancelled. Polkit action\n"                                               \
        "org.vmigrate.migrate1.control-job. Exit status 1 when there is no job or\n"                        \
        "it is past copying.\n"                                                                             \
        "\n"                                                                                                \
        "Example:\n"                                                                                        \
        "  vmigratectl job-abort demo\n"

#define SETMAXDOWNTIME_HELP                                                                                 \
        "Changes how long DOMAIN may be paused at the switch-over of its running\n"                         \
        "outgoing migration (Domain.SetMaxDowntime), MS milliseconds, 1-2000000.\n"                         \
        "A larger value lets a busy guest converge sooner. Polkit action\n"                                 \
        "org.vmigrate.migrate1.control-job. Exit status 1 when DOMAIN is not\n"                             \
        "migrating out of this host.\n"                                                                     \
        "\n"                                                                                                \
        "Example:\n"                                                                                        \
        "  vmigratectl migrate-setmaxdowntime demo 500\n"

#define MIGRATE_POSTCOPY_HELP                                                                               \
        "Switches DOMAIN's outgoing migration from pre-copy to post-copy\n"                                 \
        "(Domain.StartPostCopy): the guest stops on this host and runs on the\n"                            \
        "destination at once, which fetches the memory it still lacks from here.\n"                         \
        "Post-copy always finishes, however fast the guest dirties memory, but\n"                           \
        "until it has, neither host has the whole guest: if the link breaks, the\n"                         \
        "guest is paused on both hosts until 'vmigratectl migrate DOMAIN\n"                                 \
        "DESTINATION --postcopy-resume' resumes the copy.\n"                                                \
        "\n"                                                                                                \
        "The migration must have been started with --postcopy (or an option that\n"                         \
        "implies it). Asked for before the first pass of pre-copy has begun, the\n"                         \
        "switch happens as soon as it can; 'migrate --postcopy-after-precopy' does\n"                       \
        "that by itself. Run it on the source host; 'vmigratectl migrate' shows the\n"                      \
        "phase change ('post-copy'). Polkit action org.vmigrate.migrate1.control-job.\n"                    \
        "\n"                                                                                                \
        "Exit status 1 when DOMAIN is not migrating out of this host (NoJob), when\n"                       \
        "its migration was started without --postcopy (PostCopyNotEnabled), or is\n"                        \
        "already in post-copy or finishing (InvalidState); a hint says what to do.\n"                       \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl migrate demo hv2 --postcopy &\n"                                                     \
        "  vmigratectl migrate-postcopy demo\n"                                                             \
        "  vmigratectl --host ssh://root@hv1 migrate-postcopy demo\n"

#define SETSPEED_HELP                                                                                       \
        "Changes the bandwidth limit of DOMAIN's running outgoing migration\n"                              \
        "(Domain.SetMaxBandwidth); with --postcopy, the limit of its post-copy\n"                           \
        "phase. RATE is bytes per second with an optional unit: K M G T or\n"                               \
        "KiB MiB GiB TiB (powers of 1024), kB MB GB TB (powers of 1000), kbit Mbit\n"                       \
        "Gbit Tbit (bits), and an optional '/s'; e.g. 100M, 1.5G, 512MiB/s,\n"                              \
        "800Mbit/s. Polkit action org.vmigrate.migrate1.control-job. Exit status 1\n"                       \
        "when DOMAIN is not migrating out of this host.\n"                                                  \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl migrate-setspeed demo 2G\n"                                                          \
        "  vmigratectl migrate-setspeed demo 500M --postcopy\n"

#define REPORT_HELP                                                                                         \
        "Draws DOMAIN's last migration from this host (or the one running) as an\n"                         \
        "SVG picture in FILE (--output, -o; '-': standard output), from\n"                                  \
        "Domain.GetJobStats and its pass-by-pass history: the data still to send\n"                         \
        "(left axis, MiB) and the guest's dirty rate and the link's throughput\n"                           \
        "(right axis, MiB/s) against time, a numbered marker per memory pass, a\n"                          \
        "line per step of the convergence policy, the switch to post-copy, the\n"                           \
        "switch-over with the guest's downtime, and the end; the title says the\n"                          \
        "destination, the result and the total time. The file stands alone (no\n"                           \
        "fonts or scripts from elsewhere): open it in a browser, where each\n"                              \
        "pass's marker tells its figures on hovering, or convert it with\n"                                 \
        "rsvg-convert. Needs no authorization.\n"                                                           \
        "\n"                                                                                                \
        "Run it on the host the domain left: the destination's job has no passes.\n"                        \
        "A transient domain that left is gone from there, and its history with\n"                           \
        "it. vmigrated keeps a job's passes until it exits; after a restart only\n"                         \
        "the final statistics remain (vmigratectl history).\n"                                              \
        "\n"                                                                                                \
        "Exit status 1 when the domain has no job on record, when its last job\n"                           \
        "ended before vmigrated last started, was an incoming migration or sent\n"                          \
        "no memory, or when\n"                                                                              \
        "FILE cannot be written; 4 when there is no such domain.\n"                                         \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl migrate demo hv2 && vmigratectl report demo -o demo.svg\n"                           \
        "  vmigratectl report demo --output=- | rsvg-convert -o demo.png\n"

#define HISTORY_HELP                                                                                        \
        "Lists the jobs that have ended on this host, migrations leaving and\n"                             \
        "arriving, oldest first, newest last (Manager.ListJobHistory). vmigrated\n"                         \
        "keeps the last JobHistorySize of them (vmigrated.conf(5), default 100) in\n"                       \
        "its state directory: they outlive the job objects, which go 60 s after\n"                          \
        "their end, and restarts of vmigrated.\n"                                                           \
        "\n"                                                                                                \
        "Columns: ENDED (local time), JOB (the job's number, as in its object\n"                            \
        "path), DOMAIN, KIND (out: the domain left this host; in: it arrived),\n"                           \
        "PEER (the other host), RESULT (completed, failed or cancelled), TIME\n"                            \
        "(elapsed), DOWNTIME, DATA (memory sent) and ERROR, cut to the terminal's\n"                        \
        "width; --json prints every key of each job in full.\n"                                             \
        "\n"                                                                                                \
        "Options:\n"                                                                                        \
        "  --domain=DOMAIN        Only the jobs of DOMAIN: its name when the job\n"                         \
        "                         ended, or its UUID; a domain that has left this\n"                        \
        "                         host is found too\n"                                                      \
        "  --limit=N              Only the newest N of those\n"                                             \
        "  --json                 The jobs as a JSON array of objects, with the keys\n"                     \
        "                         of Domain.GetJobStats (\"elapsed-ms\", \"downtime-ms\",\n"                \
        "                         \"data-processed\", \"peer\", \"error\", ...) plus \"id\",\n"             \
        "                         \"domain\", \"uuid\", \"started-at\" and \"ended-at\"\n"                  \
        "                         (microseconds since the epoch)\n"                                         \
        "  -q, --quiet            No header\n"                                                              \
        "Needs no authorization. An empty history prints nothing on standard\n"                             \
        "output (a note on standard error) and exits 0.\n"                                                  \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl history --limit=10\n"                                                                \
        "  vmigratectl history --domain=demo\n"                                                             \
        "  vmigratectl --json history | jq -r '.[] | select(.phase == \"failed\") | .domain'\n"             \
        "The same with busctl:\n"                                                                           \
        "  busctl call org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \\\n"                                   \
        "        org.vmigrate.Migrate1.Manager ListJobHistory 'a{sv}' 1 limit u 10\n"

#define MAINTENANCE_HELP                                                                                    \
        "Without an argument, says whether this host is in maintenance (Manager\n"                          \
        "property Maintenance). 'on' puts it into maintenance, 'off' takes it out\n"                        \
        "(Manager.SetMaintenance), then says which it is.\n"                                                \
        "\n"                                                                                                \
        "In maintenance the host refuses incoming migrations and starting domains\n"                        \
        "(error HostInMaintenance; a dry run to it reports host.maintenance);\n"                            \
        "what runs keeps running and may leave, by 'vmigratectl migrate' or\n"                              \
        "'vmigratectl evacuate'. The mode is kept in vmigrated's state directory\n"                         \
        "and survives restarts. --json prints {\"hostname\": NAME,\n"                                       \
        "\"maintenance\": BOOL}.\n"                                                                         \
        "\n"                                                                                                \
        "Reading needs no authorization; on and off need polkit action\n"                                   \
        "org.vmigrate.migrate1.manage-host (exit status 5 when refused).\n"                                 \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl maintenance\n"                                                                       \
        "  vmigratectl maintenance on && vmigratectl evacuate hv2 hv3\n"                                    \
        "  vmigratectl --host=hv2 maintenance off\n"                                                        \
        "The same with busctl:\n"                                                                           \
        "  busctl call org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \\\n"                                   \
        "        org.vmigrate.Migrate1.Manager SetMaintenance b true\n"

#define EVACUATE_HELP                                                                                       \
        "Moves every running (and paused) domain off this host to the vmigrated\n"                          \
        "at one of the DESTINATIONs (Manager.Evacuate), each as a migration with\n"                         \
        "the options given, a few at a time, and follows the evacuation to its\n"                           \
        "end. DESTINATION takes the forms of migrate's (ssh://[user@]host[:port],\n"                        \
        "unix:///path, or HOST); 1 to 64 of them, each once.\n"                                             \
        "\n"                                                                                                \
        "vmigrated places each domain in turn: it tries the destinations with the\n"                        \
        "checks of 'migrate --dry-run', those that have taken fewer of this\n"                              \
        "evacuation's domains first, then in the order given; the first that\n"                             \
        "passes gets it. A destination at its limit of incoming migrations makes\n"                         \
        "the domain wait (at most 10 minutes); a domain no destination can take\n"                          \
        "is reported as not-placed, with every destination's reasons, and the\n"                            \
        "others go on.\n"                                                                                   \
        "\n"                                                                                                \
        "Progress: one line per domain, its destination and what it does\n"                                 \
        "(waiting, placing, the migration's phase and percent, completed, failed,\n"                        \
        "not placed, cancelled), under a line of counts; on a terminal the lines\n"                         \
        "are redrawn twice a second, otherwise a line is printed when a domain's\n"                         \
        "state or phase changes. At the end a table: DOMAIN, DESTINATION, RESULT,\n"                        \
        "TIME, MESSAGE. Ctrl-C once cancels the evacuation (migrations still\n"                             \
        "copying are cancelled and their domains stay here; those in post-copy\n"                           \
        "finish) and keeps following it; Ctrl-C again stops following, leaving\n"                           \
        "it to run on (exit status 1).\n"                                                                   \
        "\n"                                                                                                \
        "Options:\n"                                                                                        \
        "  --order=smallest-first|largest-first|priority\n"                                                 \
        "                         Which domains leave first: the smallest by\n"                             \
        "                         memory (the default), the largest, or by the\n"                           \
        "                         <vmigrate:priority> of their domain XML's\n"                              \
        "                         metadata (0-1000, higher first; then smallest)\n"                         \
        "  --parallel=N           Migrations at once, 1-64 (default: vmigrated's\n"                         \
        "                         MaxOutgoingMigrations, or 2 when unlimited)\n"                            \
        "  --inactive             Move the persistent shut-off domains too\n"                               \
        "                         (offline: only their definitions)\n"                                      \
        "  --maintenance          Put this host into maintenance first, so that\n"                          \
        "                         nothing starts or arrives while it empties; it\n"                         \
        "                         stays so ('vmigratectl maintenance off')\n"                               \
        "  --detach               Return at once, printing the evacuation's object\n"                       \
        "                         path (with --json: {\"evacuation\": PATH})\n"                             \
        "  --json                 The result as one JSON object on stdout:\n"                               \
        "                         evacuation, result, total, done, failed,\n"                               \
        "                         remaining, and domains, one object each (domain,\n"                       \
        "                         uuid, state, destination, message, job-id,\n"                             \
        "                         offline, memory-bytes, elapsed-ms); progress on\n"                        \
        "                         stderr when that is a terminal\n"                                         \
        "  -q, --quiet            No progress, no summary: errors only\n"                                   \
        "Every option of 'vmigratectl migrate' (--bandwidth=RATE, --postcopy,\n"                            \
        "--tls, --policy=NAME, --timeout=SECONDS, ...) applies to each migration,\n"                        \
        "checked as for migrate; not those that concern one domain\n"                                       \
        "(--destination-name, --destination-xml, --postcopy-resume), --offline\n"                           \
        "(--inactive does that) or --postcopy-after-precopy.\n"                                             \
        "\n"                                                                                                \
        "Polkit action org.vmigrate.migrate1.evacuate (it covers the migrations,\n"                         \
        "Cancel and --maintenance). Exit status 0 only when every domain moved\n"                           \
        "(result completed); 1 when one failed or could not be placed (failed)\n"                           \
        "or the evacuation was cancelled, or vmigrated refused it; 3 and 5 as\n"                            \
        "for every command.\n"                                                                              \
        "\n"                                                                                                \
        "Examples:\n"                                                                                       \
        "  vmigratectl evacuate hv2 hv3 --maintenance --bandwidth=500M\n"                                   \
        "  vmigratectl evacuate ssh://root@hv2 --order=priority --parallel=4 --inactive\n"                  \
        "  vmigratectl --json evacuate hv2 | jq -r '.domains[] | [.domain, .state] | @tsv'\n"               \
        "  ev=$(vmigratectl evacuate --detach hv2)\n"                                                       \
        "The same with busctl (then poll the evacuation's State and Results):\n"                            \
        "  busctl call org.vmigrate.Migrate1 /org/vmigrate/Migrate1 \\\n"                                   \
        "        org.vmigrate.Migrate1.Manager Evacuate 'asa{sv}' 2 hv2 hv3 \\\n"                           \
        "        2 order s priority maintenance b true\n"

static const Command commands[] = {
        { "list", "[--all] [--names]", 0, 0, cmd_list, NULL, NULL, NULL, 0,
          "List active domains; --all: shut-off ones too" },
        { "status", "DOMAIN", 1, 1, cmd_status, NULL, NULL, NULL, 0, "Show all properties of a domain" },
        { "define", "FILE", 1, 1, cmd_define, "DefineXML", "defined", "define", 0,
          "Define or update a persistent domain (FILE - : stdin)" },
        { "create", "FILE", 1, 1, cmd_define, "CreateXML", "created and started", "create",
          LIFECYCLE_TIMEOUT_USEC, "Create and start a transient domain (gone once off)" },
        { "undefine", "DOMAIN", 1, 1, cmd_action, "Undefine", "undefined", "undefine", 0,
          "Remove a domain's persistent definition" },
        { "start", "DOMAIN", 1, 1, cmd_action, "Start", "started", "start", LIFECYCLE_TIMEOUT_USEC,
          "Start a domain; returns once it runs" },
        { "shutdown", "DOMAIN", 1, 1, cmd_action, "Shutdown", "shut down", "shut down",
          SHUTDOWN_TIMEOUT_USEC, "Shut a domain down gracefully; returns once off" },
        { "destroy", "DOMAIN", 1, 1, cmd_action, "Destroy", "destroyed", "destroy", LIFECYCLE_TIMEOUT_USEC,
          "Stop a domain at once (like pulling the plug)" },
        { "suspend", "DOMAIN", 1, 1, cmd_action, "Suspend", "suspended", "suspend", LIFECYCLE_TIMEOUT_USEC,
          "Pause a running domain" },
        { "resume", "DOMAIN", 1, 1, cmd_action, "Resume", "resumed", "resume", LIFECYCLE_TIMEOUT_USEC,
          "Resume a paused domain" },
        { "dumpxml", "DOMAIN", 1, 1, cmd_dumpxml, NULL, NULL, NULL, 0, "Print a domain's XML" },
        { "capabilities", "", 0, 0, cmd_capabilities, NULL, NULL, NULL, 0,
          "Print the host capabilities XML" },
        { "backends", "", 0, 0, cmd_backends, NULL, NULL, NULL, 0,
          "Show the backends and their migration options" },
        { "policies", "[--names]", 0, 0, cmd_policies, NULL, NULL, NULL, 0,
          "Show the convergence policies a migration may use (--policy)" },
        { "migrate", "DOMAIN DESTINATION", 2, 2, cmd_migrate, "Migrate", NULL, "migrate", 0,
          "Migrate a domain to another host, showing progress", MIGRATE_HELP },
        { "job-status", "DOMAIN", 1, 1, cmd_job_status, NULL, NULL, NULL, 0,
          "Show the current or last job's statistics", JOB_STATUS_HELP },
        { "job", "DOMAIN", 1, 1, cmd_job_status, NULL, NULL, NULL, 0, "Same as job-status",
          JOB_STATUS_HELP },
        { "job-abort", "DOMAIN", 1, 1, cmd_job_control, "AbortJob", NULL, "cancel the migration", 0,
          "Cancel a domain's migration", JOB_ABORT_HELP },
        { "migrate-setmaxdowntime", "DOMAIN MS", 2, 2, cmd_job_control, "SetMaxDowntime", NULL,
          "set the maximum downtime", 0, "Change a running migration's maximum downtime",
          SETMAXDOWNTIME_HELP },
        { "migrate-setspeed", "DOMAIN RATE", 2, 2, cmd_job_control, "SetMaxBandwidth", NULL,
          "set the bandwidth", 0, "Change a running migration's bandwidth limit", SETSPEED_HELP },
        { "migrate-postcopy", "DOMAIN", 1, 1, cmd_job_control, "StartPostCopy", NULL,
          "switch to post-copy the migration", 0, "Switch a running migration to post-copy",
          MIGRATE_POSTCOPY_HELP },
        { "report", "DOMAIN --output=FILE", 1, 1, cmd_report, NULL, NULL, NULL, 0,
          "Draw the last migration as a picture (SVG)", REPORT_HELP },
        { "history", "[--domain=DOMAIN] [--limit=N]", 0, 0, cmd_history, NULL, NULL, NULL, 0,
          "List the jobs that ended on this host", HISTORY_HELP },
        { "maintenance", "[on|off]", 0, 1, cmd_maintenance, "SetMaintenance", NULL, NULL, 0,
          "Show, or turn on or off, this host's maintenance mode", MAINTENANCE_HELP },
        { "evacuate", "DESTINATION...", 1, CTL_EVACUATE_DESTINATIONS_MAX, cmd_evacuate, "Evacuate", NULL,
          NULL, 0, "Move every running domain to other hosts", EVACUATE_HELP },
};

static void print_help(void) {
        printf("Usage: vmigratectl [OPTIONS] COMMAND [ARGUMENTS]\n"
               "\n"
               "Control virtual machines (domains) managed by vmigrated over D-Bus\n"
               "(bus name %s on the system bus).\n"
               "\n"
               "Commands:\n",
               BUS_NAME);
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
                g_autofree char *synopsis = g_strjoin(" ", commands[i].name, commands[i].args, NULL);
                if (strlen(synopsis) > 20)
                        printf("  %s\n  %-20s %s\n", synopsis, "", commands[i].summary);
                else
                        printf("  %-20s %s\n", synopsis, commands[i].summary);
        }
        printf("  %-20s %s\n", "help", "Show this help");
        printf("\n"
               "DOMAIN is a domain's name or its UUID. A DOMAIN starting with '-' must\n"
               "follow '--' (vmigratectl start -- -odd-name). FILE holds domain XML\n"
               "(at most 1 MiB); '-' reads standard input.\n"
               "\n"
               "Options (before or after the command):\n"
               "  -H, --host=URI       Talk to vmigrated on another bus:\n"
               "                         unix:///path/to/socket   a bus socket on this machine\n"
               "                         ssh://[user@]host[:port] the system bus of a remote\n"
               "                                                  host, via ssh (as root\n"
               "                                                  without user@) and\n"
               "                                                  systemd-stdio-bridge\n"
               "                         HOST                     same as ssh://root@HOST\n"
               "                       Without --host: the local system bus\n"
               "                       ($DBUS_SYSTEM_BUS_ADDRESS if set).\n"
               "      --all            list: include inactive (shut-off) domains\n"
               "      --names          list, policies: print only the names, one per line\n"
               "                       (for scripts and shell completion)\n"
               "      --timeout=SECONDS\n"
               "                       shutdown: give the guest that long (0.001 to 3600,\n"
               "                       e.g. 30 or 1.5) to power off, then destroy it; the\n"
               "                       command still succeeds, the domain being off.\n"
               "                       Default: vmigrated's (--shutdown-timeout, 2 minutes)\n"
               "      --timeout=SECONDS\n"
               "                       migrate: when still copying after that long (whole\n"
               "                       seconds, 1 to 604800), cancel; with --timeout-postcopy\n"
               "                       switch to post-copy, with --timeout-suspend pause the\n"
               "                       guest so that the copy finishes\n"
               "  migrate options (see 'vmigratectl migrate --help' for each):\n"
               "      --live --no-live --offline --paused --persist --no-persist\n"
               "      --undefine-source --postcopy --postcopy-after-precopy\n"
               "      --postcopy-resume --auto-converge --tunnelled --tls --no-tls\n"
               "      --abort-on-error --unsafe --compression=METHOD --reuse-images\n"
               "      --parallel-connections=N --copy-storage=MODE --bandwidth=RATE\n"
               "      --postcopy-bandwidth=RATE --max-downtime=MS --destination-name=NAME\n"
               "      --destination-xml=FILE --data-uri=URI --listen-address=ADDR\n"
               "      --timeout-postcopy --timeout-suspend --timeout-action=ACTION\n"
               "      --detach         migrate: return once the job exists, printing its path;\n"
               "                       evacuate: once the evacuation exists, printing its path\n"
               "      --dry-run        migrate: only check whether the migration would\n"
               "                       succeed, on both hosts (Domain.DryRun); prints the\n"
               "                       findings and a verdict, migrates nothing\n"
               "      --order=smallest-first|largest-first|priority\n"
               "                       evacuate: which domains leave first\n"
               "      --parallel=N     evacuate: migrations at once (1-64); migrate's\n"
               "                       --parallel without a value is virsh's switch\n"
               "      --inactive       evacuate: move persistent shut-off domains too\n"
               "      --maintenance    evacuate: put this host into maintenance first\n"
               "                       (evacuate also takes migrate's options, for each\n"
               "                       migration; see 'vmigratectl evacuate --help')\n"
               "      --domain=DOMAIN  history: only that domain's jobs\n"
               "      --limit=N        history: only the newest N jobs\n"
               "  -o, --output=FILE    report: where to write the picture (SVG; '-':\n"
               "                       standard output)\n"
               "      --postcopy       migrate-setspeed: set the post-copy limit\n"
               "                       RATE is bytes per second: 100M, 1.5G, 512MiB/s\n"
               "                       (powers of 1024), 1GB (10^9), 800Mbit/s (bits)\n"
               "      --json           Print results as JSON (pretty-printed; keys are\n"
               "                       lower-case-dash, e.g. \"state-reason\", \"memory-bytes\").\n"
               "                       Actions print {\"domain\": NAME, \"uuid\": UUID,\n"
               "                       \"result\": \"ok\"}; dumpxml and capabilities print one\n"
               "                       JSON string. Errors still go to stderr as text.\n"
               "  -q, --quiet          No confirmation messages; list prints no header\n"
               "      --no-ask-password\n"
               "                       Do not ask for authentication; by default polkit may\n"
               "                       ask interactively when standard input is a terminal\n"
               "  -h, --help           Show this help (COMMAND --help: that command's usage)\n"
               "      --version        Show the version\n"
               "\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  the operation failed (vmigrated returned an error, or FILE could not\n"
               "     be read, or report's FILE written)\n"
               "  2  usage error: unknown command or option, missing or extra argument,\n"
               "     malformed --host URI\n"
               "  3  cannot connect to the bus, vmigrated is not running or not activatable\n"
               "     there, or the connection broke or timed out\n"
               "  4  no such domain\n"
               "  5  permission denied (polkit action org.vmigrate.migrate1.manage-domains;\n"
               "     migrate: org.vmigrate.migrate1.migrate; job-abort, migrate-set*,\n"
               "     migrate-postcopy: org.vmigrate.migrate1.control-job; evacuate:\n"
               "     org.vmigrate.migrate1.evacuate; maintenance on|off:\n"
               "     org.vmigrate.migrate1.manage-host)\n"
               "evacuate exits 0 only when every domain moved; 1 when one did not, or the\n"
               "evacuation was cancelled.\n"
               "migrate exits 0 only when the migration completed; 1 when it failed, was\n"
               "cancelled, or was refused (the error is printed). migrate --dry-run exits\n"
               "0 when the migration would succeed, 1 when the check found errors (or\n"
               "vmigrated refused it), 3 and 5 as above. When a post-copy\n"
               "migration fails, the guest is paused on both hosts; vmigratectl says so\n"
               "and how to resume it: vmigratectl migrate DOMAIN DEST --postcopy-resume.\n"
               "\n"
               "Lifecycle commands (create, start, destroy, suspend, resume) wait up to\n"
               "2 minutes for the operation to complete; shutdown 3 minutes, or with\n"
               "--timeout that long plus one minute; others 25 seconds.\n"
               "Reading (list, status, dumpxml, capabilities, backends, report, history,\n"
               "maintenance without argument) needs no\n"
               "authorization; changing anything needs root or polkit's consent (e.g.\n"
               "membership of group 'vmigrate' with the example rules installed).\n"
               "\n"
               "Examples:\n"
               "  vmigratectl list --all\n"
               "      busctl call %s %s \\\n"
               "          org.freedesktop.DBus.ObjectManager GetManagedObjects\n"
               "  vmigratectl define demo.xml && vmigratectl start demo\n"
               "      busctl call %s %s \\\n"
               "          %s DefineXML s \"$(cat demo.xml)\"\n"
               "  vmigratectl status demo\n"
               "      busctl introspect %s \\\n"
               "          \"$(busctl call %s %s \\\n"
               "             %s GetDomain s demo | cut -d'\"' -f2)\"\n"
               "  vmigratectl --json list --all | jq -r '.[].name'\n"
               "  vmigratectl --host ssh://admin@hv2.example.org shutdown demo\n"
               "  vmigratectl shutdown --timeout=30 demo\n"
               "      busctl call %s \\\n"
               "          \"$(busctl call %s %s \\\n"
               "             %s GetDomain s demo | cut -d'\"' -f2)\" \\\n"
               "          %s ShutdownWithTimeout t 30000\n"
               "  vmigratectl --host unix:///run/test-bus/system_bus_socket backends\n"
               "  vmigratectl migrate demo ssh://root@hv2.example.org --bandwidth=200M\n"
               "  vmigratectl migrate demo hv2 --dry-run\n"
               "  vmigratectl migrate --detach demo hv2 && vmigratectl job-status demo\n"
               "  vmigratectl migrate demo hv2 --postcopy-after-precopy --bandwidth=200M\n"
               "  vmigratectl migrate demo hv2 --timeout=120 --timeout-postcopy\n"
               "  vmigratectl migrate-postcopy demo\n"
               "  vmigratectl migrate demo hv2 --postcopy-resume\n"
               "  vmigratectl migrate-setspeed demo 1G\n"
               "  vmigratectl migrate-setspeed demo 500M --postcopy\n"
               "  vmigratectl evacuate hv2 hv3 --maintenance --order=priority\n"
               "  vmigratectl history --domain=demo --limit=5\n",
               BUS_NAME, BUS_MANAGER_PATH, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, BUS_NAME,
               BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, BUS_NAME, BUS_NAME, BUS_MANAGER_PATH,
               BUS_MANAGER_INTERFACE, BUS_DOMAIN_INTERFACE);
}

static void print_command_help(const Command *cmd) {
        printf("Usage: vmigratectl [OPTIONS] %s%s%s\n\n%s.\n", cmd->name, *cmd->args ? " " : "", cmd->args,
               cmd->summary);
        if (strstr(cmd->args, "DOMAIN"))
                printf("DOMAIN is the domain's name or UUID.\n");
        if (cmd->run == cmd_define)
                printf("FILE holds the domain XML (at most 1 MiB); '-' reads standard input.\n");
        if (cmd->help)
                printf("\n%s", cmd->help);
        if (g_strcmp0(cmd->method, "Shutdown") == 0)
                printf("\n--timeout=SECONDS gives the guest that long (0.001 to 3600) to power off;\n"
                       "then vmigrated destroys it and the command still succeeds. Without it,\n"
                       "vmigrated's default applies (--shutdown-timeout, 2 minutes).\n");
        printf("\nSee 'vmigratectl --help' for the options, exit status and examples.\n");
}

static const Command *find_command(const char *name) {
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
                if (g_str_equal(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

/* Returns a CTL_EXIT_* code: output that could not be written means the command did not do its job. */
static int finish_output(int ret) {
        if (fflush(stdout) == 0 && !ferror(stdout))
                return ret;
        /* The reader went away (vmigratectl list | head -1): not our failure, nothing to say. */
        if (errno == EPIPE)
                return ret;
        fprintf(stderr, "vmigratectl: cannot write output: %s\n", g_strerror(errno));
        return ret == CTL_EXIT_OK ? CTL_EXIT_FAILED : ret;
}

/* --timeout=SECONDS: decimal seconds with at most three decimals (whole milliseconds), "30" or "1.5".
 * Returns -EINVAL when malformed or out of range. Parsed by hand: strtod takes "inf", hex and blanks. */
static int parse_shutdown_timeout(const char *arg, uint64_t *ret_ms) {
        const char *dot = strchr(arg, '.');
        size_t int_len = dot ? (size_t) (dot - arg) : strlen(arg);
        size_t frac_len = dot ? strlen(dot + 1) : 0;
        uint64_t ms = 0;

        if (int_len == 0 && frac_len == 0)
                return -EINVAL;
        if (int_len > 4 || frac_len > 3 || (dot && frac_len == 0))
                return -EINVAL;
        if (strspn(arg, "0123456789") != int_len || (dot && strspn(dot + 1, "0123456789") != frac_len))
                return -EINVAL;
        for (size_t i = 0; i < int_len; i++)
                ms = ms * 10 + (uint64_t) (arg[i] - '0');
        ms *= 1000;
        for (size_t i = 0, scale = 100; i < frac_len; i++, scale /= 10)
                ms += (uint64_t) (dot[1 + i] - '0') * scale;
        if (ms < 1 || ms > SHUTDOWN_TIMEOUT_MAX_MS)
                return -EINVAL;
        *ret_ms = ms;
        return 0;
}

/* "--json=3": a known option given an argument it does not take. */
static bool long_option_has_argument(const struct option *options, const char *arg) {
        const char *eq = strchr(arg, '=');

        if (!g_str_has_prefix(arg, "--") || !eq)
                return false;
        for (size_t i = 0; options[i].name; i++)
                if (strlen(options[i].name) == (size_t) (eq - arg - 2) &&
                    strncmp(arg + 2, options[i].name, eq - arg - 2) == 0)
                        return true;
        return false;
}

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_NO_ASK_PASSWORD,
        ARG_ALL,
        ARG_NAMES,
        ARG_TIMEOUT,
        ARG_DETACH,
        ARG_POSTCOPY,
        ARG_DRY_RUN,
        ARG_MIGRATE,  /* migrate's own options (ctl-args.c), told apart by name */
        ARG_PARALLEL, /* --parallel[=N]: evacuate's with a value, virsh's migrate switch without */
        ARG_ORDER,
        ARG_INACTIVE,
        ARG_MAINTENANCE,
        ARG_DOMAIN,
        ARG_LIMIT,
};

static int run(int argc, char *argv[]) {
        static const struct option base_options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "host", required_argument, NULL, 'H' },
                { "json", no_argument, NULL, ARG_JSON },
                { "quiet", no_argument, NULL, 'q' },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "all", no_argument, NULL, ARG_ALL },
                { "names", no_argument, NULL, ARG_NAMES },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "detach", no_argument, NULL, ARG_DETACH },
                { "postcopy", no_argument, NULL, ARG_POSTCOPY },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "output", required_argument, NULL, 'o' },
                { "order", required_argument, NULL, ARG_ORDER },
                { "inactive", no_argument, NULL, ARG_INACTIVE },
                { "maintenance", no_argument, NULL, ARG_MAINTENANCE },
                { "domain", required_argument, NULL, ARG_DOMAIN },
                { "limit", required_argument, NULL, ARG_LIMIT },
        };
        size_t n_migrate = ctl_migrate_flags_count();
        g_autofree struct option *options =
                g_new0(struct option, G_N_ELEMENTS(base_options) + n_migrate + 1);
        g_auto(Context) c = { .allow_interactive = true };
        bool help = false, version = false, no_ask_password = false;
        const Command *cmd;
        char **args;
        int nargs, opt, r, longindex = 0;

        memcpy(options, base_options, sizeof(base_options));
        for (size_t i = 0; i < n_migrate; i++) {
                struct option *o = &options[G_N_ELEMENTS(base_options) + i];

                *o = ctl_migrate_flag_getopt(i, ARG_MIGRATE);
                /* evacuate's --parallel=N shares virsh's name: the value tells them apart. */
                if (g_str_equal(o->name, "parallel")) {
                        o->has_arg = optional_argument;
                        o->val = ARG_PARALLEL;
                }
        }

        /* Own messages (":" in front), so they start with "vmigratectl:" rather than argv[0]. */
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":hH:qo:", options, &longindex)) >= 0) {
                switch (opt) {
                case 'h':
                        help = true;
                        break;
                case ARG_VERSION:
                        version = true;
                        break;
                case 'H': {
                        g_autofree char *error = NULL;
                        ctl_host_clear(&c.host);
                        if (ctl_host_parse(optarg, &c.host, &error) < 0) {
                                fprintf(stderr, "vmigratectl: invalid --host: %s\n", error);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                }
                case ARG_JSON:
                        c.json = true;
                        break;
                case 'q':
                        c.quiet = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        no_ask_password = true;
                        break;
                case ARG_ALL:
                        c.all = true;
                        break;
                case ARG_NAMES:
                        c.names = true;
                        break;
                case ARG_TIMEOUT:
                        /* shutdown and migrate read it differently: checked once the command is known. */
                        c.timeout_arg = optarg;
                        break;
                case ARG_DETACH:
                        c.detach = true;
                        break;
                case ARG_DRY_RUN:
                        c.dry_run = true;
                        break;
                case 'o':
                        c.output = optarg;
                        break;
                case ARG_POSTCOPY:
                        c.postcopy = true;
                        break;
                case ARG_MIGRATE: {
                        g_autofree char *error = NULL;

                        if (ctl_migrate_arg(&c.migrate, options[longindex].name, optarg, &error) < 0) {
                                fprintf(stderr, "vmigratectl: %s\n", error);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                }
                case ARG_PARALLEL:
                        if (optarg) {
                                c.evacuate.parallel = optarg;
                                c.evacuate.first_flag = c.evacuate.first_flag ?: "parallel";
                        } else {
                                g_autofree char *error = NULL;

                                c.parallel_bare = true;
                                if (ctl_migrate_arg(&c.migrate, "parallel", NULL, &error) < 0) {
                                        fprintf(stderr, "vmigratectl: %s\n", error);
                                        return CTL_EXIT_USAGE;
                                }
                        }
                        break;
                case ARG_ORDER:
                        c.evacuate.order = optarg;
                        c.evacuate.first_flag = c.evacuate.first_flag ?: "order";
                        break;
                case ARG_INACTIVE:
                        c.evacuate.inactive = true;
                        c.evacuate.first_flag = c.evacuate.first_flag ?: "inactive";
                        break;
                case ARG_MAINTENANCE:
                        c.evacuate.maintenance = true;
                        c.evacuate.first_flag = c.evacuate.first_flag ?: "maintenance";
                        break;
                case ARG_DOMAIN:
                        c.history_domain = optarg;
                        break;
                case ARG_LIMIT:
                        c.limit_arg = optarg;
                        break;
                case ':':
                        fprintf(stderr,
                                "vmigratectl: option '%s' needs an argument. See 'vmigratectl --help'.\n",
                                argv[optind - 1]);
                        return CTL_EXIT_USAGE;
                default: {
                        const char *bad = argv[optind - 1];

                        if (long_option_has_argument(options, bad))
                                fprintf(stderr,
                                        "vmigratectl: option '%.*s' takes no argument. See 'vmigratectl "
                                        "--help'.\n",
                                        (int) (strchr(bad, '=') - bad), bad);
                        else if (optopt > 0 && optopt < 0x80 && g_ascii_isgraph(optopt))
                                fprintf(stderr,
                                        "vmigratectl: unknown option '-%c'. See 'vmigratectl --help'.\n",
                                        optopt);
                        else
                                fprintf(stderr,
                                        "vmigratectl: unknown option '%s'. See 'vmigratectl --help'.\n",
                                        bad);
                        return CTL_EXIT_USAGE;
                }
                }
        }

        args = argv + optind;
        nargs = argc - optind;

        if (version && !help) {
                printf("vmigratectl %s\n", PACKAGE_VERSION);
                return CTL_EXIT_OK;
        }
        if (nargs == 0) {
                if (help) {
                        print_help();
                        return CTL_EXIT_OK;
                }
                fprintf(stderr, "vmigratectl: no command given. See 'vmigratectl --help'.\n");
                return CTL_EXIT_USAGE;
        }
        if (g_str_equal(args[0], "help")) {
                if (nargs == 1) {
                        print_help();
                        return CTL_EXIT_OK;
                }
                cmd = find_command(args[1]);
                if (!cmd || nargs > 2) {
                        fprintf(stderr,
                                "vmigratectl: 'help' takes at most one known COMMAND. See "
                                "'vmigratectl --help'.\n");
                        return CTL_EXIT_USAGE;
                }
                print_command_help(cmd);
                return CTL_EXIT_OK;
        }

        cmd = find_command(args[0]);
        if (!cmd) {
                fprintf(stderr, "vmigratectl: unknown command '%s'. See 'vmigratectl --help'.\n", args[0]);
                return CTL_EXIT_USAGE;
        }
        if (help) {
                print_command_help(cmd);
                return CTL_EXIT_OK;
        }
        args++;
        nargs--;
        if ((unsigned) nargs < cmd->min_args) {
                fprintf(stderr, "vmigratectl: '%s' needs %s%s%s See 'vmigratectl %s --help'.\n", cmd->name,
                        cmd->args, strstr(cmd->args, "DOMAIN") ? " (a domain name or UUID)" : "",
                        g_str_has_suffix(cmd->args, "...") ? "" : ".", cmd->name);
                return CTL_EXIT_USAGE;
        }
        if ((unsigned) nargs > cmd->max_args) {
                fprintf(stderr,
                        "vmigratectl: too many arguments for '%s': unexpected '%s'. Usage: vmigratectl "
                        "%s%s%s\n",
                        cmd->name, args[cmd->max_args], cmd->name, *cmd->args ? " " : "", cmd->args);
                return CTL_EXIT_USAGE;
        }
        for (int i = 0; i < nargs; i++)
                if (args[i][0] == '\0') {
                        fprintf(stderr, "vmigratectl: '%s': empty %s argument\n", cmd->name, cmd->args);
                        return CTL_EXIT_USAGE;
                }
        if (c.all && cmd->run != cmd_list) {
                fprintf(stderr, "vmigratectl: --all only applies to 'list', not to '%s'\n", cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.names && cmd->run != cmd_list && cmd->run != cmd_policies) {
                fprintf(stderr, "vmigratectl: --names only applies to 'list' and 'policies', not to '%s'\n",
                        cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.names && c.json) {
                fprintf(stderr, "vmigratectl: --names and --json ask for two different outputs; give one\n");
                return CTL_EXIT_USAGE;
        }
        if (c.timeout_arg) {
                if (g_strcmp0(cmd->method, "Shutdown") == 0) {
                        if (parse_shutdown_timeout(c.timeout_arg, &c.shutdown_timeout_ms) < 0) {
                                fprintf(stderr,
                                        "vmigratectl: invalid --timeout '%s': expected seconds from 0.001 "
                                        "to "
                                        "3600 (at most 3 decimals), e.g. --timeout=30\n",
                                        c.timeout_arg);
                                return CTL_EXIT_USAGE;
                        }
                } else if (cmd->run == cmd_migrate || cmd->run == cmd_evacuate) {
                        /* Checked with --timeout-postcopy and friends below. */
                        c.migrate.switches.timeout = c.timeout_arg;
                } else {
                        fprintf(stderr,
                                "vmigratectl: --timeout only applies to 'shutdown', 'migrate' and "
                                "'evacuate', "
                                "not to '%s'\n",
                                cmd->name);
                        return CTL_EXIT_USAGE;
                }
        }
        if (c.migrate.first_flag && cmd->run != cmd_migrate && cmd->run != cmd_evacuate) {
                fprintf(stderr, "vmigratectl: --%s only applies to 'migrate'%s, not to '%s'\n",
                        c.migrate.first_flag,
                        ctl_evacuate_takes_migrate_flag(c.migrate.first_flag) ? " and 'evacuate'" : "",
                        cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.evacuate.first_flag && cmd->run != cmd_evacuate) {
                fprintf(stderr, "vmigratectl: --%s%s only applies to 'evacuate', not to '%s'%s\n",
                        c.evacuate.first_flag, g_str_equal(c.evacuate.first_flag, "parallel") ? "=N" : "",
                        cmd->name,
                        g_str_equal(c.evacuate.first_flag, "parallel") && cmd->run == cmd_migrate
                                ? " (migrate's --parallel takes no value: give --parallel-connections=N)"
                                : "");
                return CTL_EXIT_USAGE;
        }
        if (cmd->run == cmd_evacuate && c.parallel_bare) {
                fprintf(stderr,
                        "vmigratectl: evacuate's --parallel needs a value, --parallel=N: migrations at "
                        "once, "
                        "1 to %d (the connections of each: --parallel-connections=N)\n",
                        CTL_EVACUATE_PARALLEL_MAX);
                return CTL_EXIT_USAGE;
        }
        if (c.history_domain && cmd->run != cmd_history) {
                fprintf(stderr, "vmigratectl: --domain only applies to 'history', not to '%s'\n", cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.limit_arg && cmd->run != cmd_history) {
                fprintf(stderr, "vmigratectl: --limit only applies to 'history', not to '%s'\n", cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.detach && cmd->run != cmd_migrate && cmd->run != cmd_evacuate) {
                fprintf(stderr,
                        "vmigratectl: --detach only applies to 'migrate' and 'evacuate', not to '%s'\n",
                        cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.dry_run && cmd->run != cmd_migrate) {
                fprintf(stderr, "vmigratectl: --dry-run only applies to 'migrate', not to '%s'\n",
                        cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.output && cmd->run != cmd_report) {
                fprintf(stderr, "vmigratectl: --output only applies to 'report', not to '%s'\n", cmd->name);
                return CTL_EXIT_USAGE;
        }
        if (c.dry_run && c.detach) {
                fprintf(stderr,
                        "vmigratectl: --dry-run starts no job, so there is nothing to --detach from; drop "
                        "one of them\n");
                return CTL_EXIT_USAGE;
        }
        if (cmd->run == cmd_evacuate) {
                g_autofree char *error = NULL;

                /* What concerns one domain first: the switches then become options. */
                if (ctl_evacuate_check_migrate_args(&c.migrate, &error) < 0 ||
                    ctl_evacuate_check_destinations(args, (size_t) nargs, &error) < 0) {
                        fprintf(stderr, "vmigratectl: %s\n", error);
                        return CTL_EXIT_USAGE;
                }
        }
        if (cmd->run == cmd_history && c.limit_arg) {
                uint64_t v;

                if (ctl_parse_uint(c.limit_arg, 1, UINT32_MAX, &v) < 0) {
                        fprintf(stderr,
                                "vmigratectl: invalid --limit '%s': expected how many jobs, a whole number "
                                "from "
                                "1 to %" PRIu32 "\n",
                                c.limit_arg, UINT32_MAX);
                        return CTL_EXIT_USAGE;
                }
                c.limit = (uint32_t) v;
        }
        if (cmd->run == cmd_history && c.history_domain && !g_utf8_validate(c.history_domain, -1, NULL)) {
                fprintf(stderr, "vmigratectl: invalid --domain: the name is not valid UTF-8\n");
                return CTL_EXIT_USAGE;
        }
        if (cmd->run == cmd_maintenance && nargs == 1 && !g_str_equal(args[0], "on") &&
            !g_str_equal(args[0], "off")) {
                fprintf(stderr,
                        "vmigratectl: 'maintenance' takes 'on', 'off' or nothing (to show the mode), not "
                        "'%s'\n",
                        args[0]);
                return CTL_EXIT_USAGE;
        }
        if (cmd->run == cmd_migrate || cmd->run == cmd_evacuate) {
                g_autofree char *error = NULL;

                c.migrate.switches.postcopy = c.postcopy;
                if (!c.migrate.options)
                        c.migrate.options = g_variant_dict_new(NULL);
                if (ctl_migrate_switches_apply(&c.migrate.switches, c.migrate.options, &error) < 0 ||
                    (cmd->run == cmd_evacuate &&
                     ctl_evacuate_options_add(&c.evacuate, c.migrate.options, &error) < 0)) {
                        fprintf(stderr, "vmigratectl: %s\n", error);
                        return CTL_EXIT_USAGE;
                }
        } else if (c.postcopy) {
                if (g_strcmp0(cmd->method, "SetMaxBandwidth") != 0) {
                        fprintf(stderr,
                                "vmigratectl: --postcopy only applies to 'migrate', 'evacuate' and "
                                "'migrate-setspeed', not to '%s'\n",
                                cmd->name);
                        return CTL_EXIT_USAGE;
                }
        }

        /* Only once every option is known to apply: a misplaced one is
         * the error to report first. */
        if (cmd->run == cmd_report && (!c.output || !*c.output)) {
                fprintf(stderr,
                        "vmigratectl: 'report' needs --output=FILE (the SVG to write; '-': standard output). "
                        "See 'vmigratectl report --help'.\n");
                return CTL_EXIT_USAGE;
        }

        /*
         * Like systemctl: polkit may ask for a password only when someone is
         * there to type it. 'define -' reads the XML from stdin, which is then
         * not a terminal anyway.
         */
        c.allow_interactive = !no_ask_password && isatty(STDIN_FILENO);

        r = ctl_connect(&c.host, c.allow_interactive, &c.bus);
        if (r < 0)
                return CTL_EXIT_BUS;

        /*
         * Only commands that change something need authorization; root is
         * never asked. An agent on this terminal can only answer for this
         * machine's polkit, so not for --host.
         */
        if (c.allow_interactive && cmd->method && !(cmd->run == cmd_maintenance && nargs == 0) &&
            geteuid() != 0 && c.host.kind == CTL_HOST_LOCAL)
                (void) ctl_polkit_agent_open(&c.agent_pid);

        return cmd->run(&c, cmd, args);
}

int main(int argc, char *argv[]) {
        /* Output errors are reported by finish_output(), with EPIPE staying quiet. */
        signal(SIGPIPE, SIG_IGN);
        return finish_output(run(argc, argv));
}
