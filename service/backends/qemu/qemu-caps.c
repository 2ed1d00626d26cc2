/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "errors.h"
#include "log.h"
#include "qemu-caps.h"
#include "qemu-process.h"
#include "qmp.h"

#define PROBE_TIMEOUT_USEC (20 * G_USEC_PER_SEC)

/* The defects vmigrate knows of, with the versions they affect. */
static const QemuDefect defect_tcg_precopy = {
        .id = "tcg-precopy-loses-writes",
        .description = "QEMU before 9.0 loses guest writes during pre-copy migration of TCG guests (the dirty "
                       "bitmap sync does not reset the TCG TLB; fixed by 'physmem: Fix migration dirty bitmap "
                       "coherency with TCG memory access'): use post-copy, offline migration or QEMU 9.0 or "
                       "newer",
};
static const QemuDefect defect_multifd_stats = {
        .id = "multifd-stats-zero",
        .description = "QEMU before 8.0 reports total-time and mbps as 0 under multifd; vmigrate measures "
                       "time itself",
};

void qemu_caps_free(QemuCaps *caps) {
        if (!caps)
                return;
        g_free(caps->binary);
        g_free(caps->package);
        g_strfreev(caps->machines);
        g_strfreev(caps->machine_aliases);
        g_free(caps->default_machine);
        g_strfreev(caps->migration_capabilities);
        g_strfreev(caps->migration_parameters);
        g_strfreev(caps->cpu_models);
        g_free(caps);
}

static int stat_binary(QemuCaps *caps) {
        struct stat st;

        if (stat(caps->binary, &st) < 0)
                return -errno;
        caps->binary_size = st.st_size;
        caps->binary_mtime_usec = (int64_t) st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
        caps->binary_inode = st.st_ino;
        return 0;
}

bool qemu_caps_binary_changed(const QemuCaps *caps) {
        QemuCaps now = { .binary = caps->binary };

        if (stat_binary(&now) < 0)
                return true;
        return now.binary_size != caps->binary_size || now.binary_mtime_usec != caps->binary_mtime_usec ||
               now.binary_inode != caps->binary_inode;
}

bool qemu_caps_version_at_least(const QemuCaps *caps, unsigned major, unsigned minor) {
        return caps->major > major || (caps->major == major && caps->minor >= minor);
}

bool qemu_caps_has_machine(const QemuCaps *caps, const char *machine) {
        return caps->machines && g_strv_contains((const char *const *) caps->machines, machine);
}

const char *qemu_caps_resolve_machine(const QemuCaps *caps, const char *machine) {
        if (!machine)
                return caps->default_machine;
        for (char **a = caps->machine_aliases; a && *a; a++) {
                size_t n = strcspn(*a, "=");
                if (strlen(machine) == n && strncmp(*a, machine, n) == 0)
                        return *a + n + 1;
        }
        return machine;
}

bool qemu_caps_has_migration_capability(const QemuCaps *caps, const char *name) {
        return caps->migration_capabilities &&
               g_strv_contains((const char *const *) caps->migration_capabilities, name);
}

bool qemu_caps_has_migration_parameter(const QemuCaps *caps, const char *name) {
        return caps->migration_parameters &&
                g_strv_contains((const char *const *) caps->migration_parameters, name);
}

const QemuDefect *const *qemu_caps_defects(const QemuCaps *caps) {
        static const QemuDefect *none[] = { NULL };
        static const QemuDefect *before_8[] = { &defect_tcg_precopy, &defect_multifd_stats, NULL };
        static const QemuDefect *before_9[] = { &defect_tcg_precopy, NULL };

        if (!qemu_caps_version_at_least(caps, 8, 0))
                return before_8;
        if (!qemu_caps_version_at_least(caps, 9, 0))
                return before_9;
        return none;
}

bool qemu_caps_has_defect(const QemuCaps *caps, const char *id) {
        for (const QemuDefect *const *d = qemu_caps_defects(caps); *d; d++)
                if (g_str_equal((*d)->id, id))
                        return true;
        return false;
}

/* ---- probing ---- */

typedef struct Probe {
        sd_event *event;
        QemuCaps *caps;
        unsigned pending;
        bool exited;
        GError *error;
} Probe;

static void probe_fail(Probe *probe, const char *what, const GError *error) {
        if (!probe->error)
                probe->error = g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED, "probing QEMU: %s: %s", what,
                                           error ? error->message : "failed");
}

/* Collects the string member `key` of each object in a reply array. */
static GStrv strings_from_array(JsonNode *result, const char *key, const char *flag_key, char **ret_flagged,
                                GStrvBuilder *aliases) {
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
        JsonArray *array;

        if (!result || !JSON_NODE_HOLDS_ARRAY(result))
                return NULL;
        array = json_node_get_array(result);
        for (unsigned i = 0; i < json_array_get_length(array); i++) {
                JsonNode *node = json_array_get_element(array, i);
                JsonObject *o;
                JsonNode *v;

                if (!JSON_NODE_HOLDS_OBJECT(node))
                        continue;
                o = json_node_get_object(node);
                v = json_object_get_member(o, key);
                if (!v || !JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING)
                        continue;
                g_strv_builder_add(builder, json_node_get_string(v));
                if (flag_key && ret_flagged && !*ret_flagged) {
                        JsonNode *flag = json_object_get_member(o, flag_key);
                        if (flag && JSON_NODE_HOLDS_VALUE(flag) && json_node_get_value_type(flag) == G_TYPE_BOOLEAN &&
                            json_node_get_boolean(flag))
                                *ret_flagged = g_strdup(json_node_get_string(v));
                }
                /* Machine aliases ("pc" for "pc-i440fx-10.0") are names too. */
                if (g_str_equal(key, "name")) {
                        JsonNode *alias = json_object_get_member(o, "alias");
                        if (alias && JSON_NODE_HOLDS_VALUE(alias) &&
                            json_node_get_value_type(alias) == G_TYPE_STRING) {
                                g_strv_builder_add(builder, json_node_get_string(alias));
                                if (aliases) {
                                        g_autofree char *pair = g_strconcat(json_node_get_string(alias), "=",
                                                                            json_node_get_string(v), NULL);
                                        g_strv_builder_add(aliases, pair);
                                }
                        }
                }
        }
        return g_strv_builder_end(builder);
}

static void probe_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error, void *userdata,
                        const char *command) {
        Probe *probe = userdata;
        QemuCaps *caps = probe->caps;

        probe->pending--;
        if (error) {
                probe_fail(probe, command, error);
                return;
        }
        if (g_str_equal(command, "query-machines")) {
                g_autoptr(GStrvBuilder) aliases = g_strv_builder_new();
                caps->machines = strings_from_array(result, "name", "is-default", &caps->default_machine, aliases);
                caps->machine_aliases = g_strv_builder_end(aliases);
                if (!caps->machines)
                        probe_fail(probe, command, NULL);
        } else if (g_str_equal(command, "query-migrate-capabilities")) {
                caps->migration_capabilities = strings_from_array(result, "capability", NULL, NULL, NULL);
                if (!caps->migration_capabilities)
                        probe_fail(probe, command, NULL);
        } else if (g_str_equal(command, "query-migrate-parameters")) {
                /* A parameter QEMU has is a member of the reply (QEMU
                 * reports every one it knows, set or not). */
                g_autoptr(GStrvBuilder) names = g_strv_builder_new();
                if (!result || !JSON_NODE_HOLDS_OBJECT(result)) {
                        probe_fail(probe, command, NULL);
                        return;
                }
                g_autoptr(GList) members = json_object_get_members(json_node_get_object(result));
                for (GList *l = members; l; l = l->next)
                        g_strv_builder_add(names, l->data);
                caps->migration_parameters = g_strv_builder_end(names);
        } else if (g_str_equal(command, "query-cpu-definitions")) {
                caps->cpu_models = strings_from_array(result, "name", NULL, NULL, NULL);
        }
}

static void on_machines(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error, void *userdata) {
        probe_reply(qmp, result, error_class, error, userdata, "query-machines");
}

static void on_migrate_caps(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                            void *userdata) {
        probe_reply(qmp, result, error_class, error, userdata, "query-migrate-capabilities");
}

static void on_migrate_parameters(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                  void *userdata) {
        probe_reply(qmp, result, error_class, error, userdata, "query-migrate-parameters");
}

static void on_cpu_definitions(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                               void *userdata) {
        probe_reply(qmp, result, error_class, error, userdata, "query-cpu-definitions");
}

static void on_probe_state(Qmp *qmp, QmpState state, const GError *error, void *userdata) {
        Probe *probe = userdata;
        const char *package = NULL;

        if (state == QMP_CLOSED) {
                probe_fail(probe, "monitor connection", error);
                probe->pending = 0;
                return;
        }
        if (state != QMP_READY)
                return;
        if (qmp_get_version(qmp, &probe->caps->major, &probe->caps->minor, &probe->caps->micro, &package) >= 0)
                probe->caps->package = g_strdup(package);
}

static void on_probe_event(Qmp *qmp, const char *event, JsonObject *data, uint64_t timestamp_usec,
                           void *userdata) {
}

static void on_probe_exit(QemuProcess *p, int status, void *userdata) {
        Probe *probe = userdata;

        probe->exited = true;
        if (probe->pending > 0 || probe->error) {
                /* Not a QEMU, or one that refused: say how it ended; its own
                 * words are added from its log. */
                g_autofree char *how = status < 0                ? g_strdup("exited")
                                       : WIFEXITED(status)   ? g_strdup_printf("exited with status %d",
                                                                               WEXITSTATUS(status))
                                       : WIFSIGNALED(status) ? g_strdup_printf("was killed by signal %d",
                                                                               WTERMSIG(status))
                                                             : g_strdup("exited");
                g_clear_error(&probe->error);
                probe->error = g_error_new(VM_ERROR, VM_ERROR_BACKEND_FAILED,
                                           "%s %s before answering on its monitor; is it a QEMU system emulator?",
                                           probe->caps->binary, how);
                probe->pending = 0;
        }
}

int qemu_caps_probe(const char *binary, QemuCaps **ret, GError **error) {
        g_autoptr(QemuCaps) caps = g_new0(QemuCaps, 1);
        g_autofree char *dir = g_dir_make_tmp("vmigrate-probe-XXXXXX", NULL);
        g_autofree char *socket_path = NULL, *log_path = NULL;
        g_autoptr(QemuProcess) process = NULL;
        g_autoptr(Qmp) qmp = NULL;
        sd_event *event = NULL;
        Probe probe = { 0 };
        int fd = -1, r;

        caps->binary = g_strdup(binary);
        r = stat_binary(caps);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "%s: %s", binary, g_strerror(-r));
        if (!dir)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot make a temporary directory");
        socket_path = g_build_filename(dir, "qmp.sock", NULL);
        log_path = g_build_filename(dir, "qemu.log", NULL);

        r = sd_event_new(&event);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "sd_event_new: %s", g_strerror(-r));
        probe.event = event;
        probe.caps = caps;

        r = unix_listen(socket_path, &fd, error);
        if (r >= 0) {
                const char *argv[] = {
                        binary, "-machine", "none", "-nodefaults", "-no-user-config", "-display", "none",
                        "-chardev", "socket,id=monitor,fd=3,server=on,wait=off", "-mon",
                        "chardev=monitor,mode=control", NULL,
                };
                r = qemu_process_spawn(event, (char *const *) argv, log_path, fd, on_probe_exit, &probe,
                                       &process, error);
                close(fd);
        }
        if (r >= 0) {
                r = qmp_new(event, on_probe_event, on_probe_state, &probe, &qmp);
                if (r >= 0)
                        r = qmp_connect_path(qmp, socket_path, error);
        }
        if (r >= 0) {
                probe.pending = 4;
                (void) qmp_execute(qmp, "query-machines", NULL, PROBE_TIMEOUT_USEC, on_machines, &probe, NULL);
                (void) qmp_execute(qmp, "query-migrate-capabilities", NULL, PROBE_TIMEOUT_USEC, on_migrate_caps,
                                   &probe, NULL);
                (void) qmp_execute(qmp, "query-migrate-parameters", NULL, PROBE_TIMEOUT_USEC,
                                   on_migrate_parameters, &probe, NULL);
                (void) qmp_execute(qmp, "query-cpu-definitions", NULL, PROBE_TIMEOUT_USEC, on_cpu_definitions,
                                   &probe, NULL);
                gint64 deadline = g_get_monotonic_time() + PROBE_TIMEOUT_USEC;
                while (probe.pending > 0 && g_get_monotonic_time() < deadline)
                        if (sd_event_run(event, 100 * 1000) < 0)
                                break;
                if (probe.pending > 0)
                        probe_fail(&probe, "no answer in time", NULL);
                /* It failed: give the process a moment to exit, so that the
                 * error can say how it ended rather than "connection reset". */
                deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
                while (probe.error && !probe.exited && g_get_monotonic_time() < deadline)
                        if (sd_event_run(event, 100 * 1000) < 0)
                                break;
        }

        if (process && !probe.exited) {
                /* Nothing to lose in a probe: kill and reap it at once, so
                 * that it never outlives the probe. */
                (void) kill(qemu_process_pid(process), SIGKILL);
                (void) waitpid(qemu_process_pid(process), NULL, 0);
        }
        g_clear_pointer(&qmp, qmp_free);
        g_clear_pointer(&process, qemu_process_free);
        sd_event_unref(event);

        if (r >= 0 && probe.error)
                r = -EIO;
        if (r < 0) {
                g_autofree char *tail = file_tail(log_path, 5);
                if (probe.error) {
                        if (tail && *tail) {
                                g_autofree char *msg = g_strdup_printf("%s; its output: %s", probe.error->message,
                                                                       tail);
                                g_free(probe.error->message);
                                probe.error->message = g_steal_pointer(&msg);
                        }
                        g_propagate_error(error, probe.error);
                }
        }
        (void) unlink(socket_path);
        (void) unlink(log_path);
        (void) rmdir(dir);
        if (r < 0)
                return r;

        log_info("probed %s: QEMU %u.%u.%u, %u machine types, %u migration capabilities, %u migration "
                 "parameters",
                 binary, caps->major, caps->minor, caps->micro, g_strv_length(caps->machines),
                 g_strv_length(caps->migration_capabilities), g_strv_length(caps->migration_parameters));
        *ret = g_steal_pointer(&caps);
        return 0;
}

/* ---- cache ---- */

static GStrv strv_from_json(JsonObject *o, const char *key) {
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
        JsonNode *node = json_object_get_member(o, key);

        if (!node || !JSON_NODE_HOLDS_ARRAY(node))
                return NULL;
        JsonArray *a = json_node_get_array(node);
        for (unsigned i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
                        return NULL;
                g_strv_builder_add(builder, json_node_get_string(e));
        }
        return g_strv_builder_end(builder);
}

static bool json_get_int(JsonObject *o, const char *key, int64_t *ret) {
        JsonNode *node = json_object_get_member(o, key);

        if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
                return false;
        *ret = json_node_get_int(node);
        return true;
}

static const char *json_get_str(JsonObject *o, const char *key) {
        JsonNode *node = json_object_get_member(o, key);

        if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(node);
}

int qemu_caps_load_cache(const char *cache_path, const char *binary, QemuCaps **ret) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(QemuCaps) caps = g_new0(QemuCaps, 1);
        int64_t size, mtime, inode, major, minor, micro;
        JsonObject *o;

        if (!json_parser_load_from_file(parser, cache_path, NULL))
                return -ENOENT;
        if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
                return -EINVAL;
        o = json_node_get_object(json_parser_get_root(parser));
        if (g_strcmp0(json_get_str(o, "binary"), binary) != 0 || !json_get_int(o, "size", &size) ||
            !json_get_int(o, "mtime-usec", &mtime) || !json_get_int(o, "inode", &inode) ||
            !json_get_int(o, "major", &major) || !json_get_int(o, "minor", &minor) ||
            !json_get_int(o, "micro", &micro))
                return -EINVAL;

        caps->binary = g_strdup(binary);
        caps->binary_size = size;
        caps->binary_mtime_usec = mtime;
        caps->binary_inode = inode;
        caps->major = major;
        caps->minor = minor;
        caps->micro = micro;
        caps->package = g_strdup(json_get_str(o, "package") ?: "");
        caps->default_machine = g_strdup(json_get_str(o, "default-machine"));
        caps->machines = strv_from_json(o, "machines");
        caps->migration_capabilities = strv_from_json(o, "migration-capabilities");
        caps->migration_parameters = strv_from_json(o, "migration-parameters");
        caps->cpu_models = strv_from_json(o, "cpu-models");
        caps->machine_aliases = strv_from_json(o, "machine-aliases");
        /* A cache from before aliases or parameters were kept: probe again. */
        if (!caps->machines || !caps->migration_capabilities || !caps->machine_aliases ||
            !caps->migration_parameters)
                return -EINVAL;
        if (qemu_caps_binary_changed(caps))
                return -ESTALE;
        *ret = g_steal_pointer(&caps);
        return 0;
}

static void add_strv(JsonBuilder *b, const char *key, GStrv strv) {
        json_builder_set_member_name(b, key);
        json_builder_begin_array(b);
        for (char **s = strv; s && *s; s++)
                json_builder_add_string_value(b, *s);
        json_builder_end_array(b);
}

static void add_string(JsonBuilder *b, const char *name, const char *value) {
        json_builder_set_member_name(b, name);
        json_builder_add_string_value(b, value);
}

static void add_int(JsonBuilder *b, const char *name, int64_t value) {
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, value);
}

int qemu_caps_save_cache(const QemuCaps *caps, const char *cache_path, GError **error) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *data = NULL;
        g_autoptr(GError) local = NULL;

        json_builder_begin_object(b);
        add_string(b, "binary", caps->binary);
        add_int(b, "size", caps->binary_size);
        add_int(b, "mtime-usec", caps->binary_mtime_usec);
        add_int(b, "inode", caps->binary_inode);
        add_int(b, "major", caps->major);
        add_int(b, "minor", caps->minor);
        add_int(b, "micro", caps->micro);
        add_string(b, "package", caps->package ? caps->package : "");
        if (caps->default_machine)
                add_string(b, "default-machine", caps->default_machine);
        add_strv(b, "machines", caps->machines);
        add_strv(b, "migration-capabilities", caps->migration_capabilities);
        add_strv(b, "migration-parameters", caps->migration_parameters);
        add_strv(b, "cpu-models", caps->cpu_models);
        add_strv(b, "machine-aliases", caps->machine_aliases);
        json_builder_end_object(b);

        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        json_generator_set_pretty(gen, true);
        data = json_generator_to_data(gen, NULL);
        if (!g_file_set_contents_full(cache_path, data, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot write %s: %s", cache_path,
                                    local->message);
        return 0;
}

void qemu_caps_append_xml(const QemuCaps *caps, bool kvm, GString *xml) {
        g_autofree char *head = g_markup_printf_escaped(
                "    <qemu binary='%s' version='%u.%u.%u' package='%s'/>\n    <kvm available='%s'/>\n",
                caps->binary, caps->major, caps->minor, caps->micro, caps->package ? caps->package : "",
                kvm ? "yes" : "no");
        g_string_append(xml, head);

        g_string_append(xml, "    <machines>\n");
        for (char **m = caps->machines; m && *m; m++) {
                g_autofree char *line = g_markup_printf_escaped(
                        g_strcmp0(*m, caps->default_machine) == 0 ? "      <machine default='yes'>%s</machine>\n"
                                                                  : "      <machine>%s</machine>\n",
                        *m);
                g_string_append(xml, line);
        }
        g_string_append(xml, "    </machines>\n    <migration-capabilities>\n");
        for (char **c = caps->migration_capabilities; c && *c; c++) {
                g_autofree char *line = g_markup_printf_escaped("      <capability>%s</capability>\n", *c);
                g_string_append(xml, line);
        }
        g_string_append(xml, "    </migration-capabilities>\n    <migration-parameters>\n");
        for (char **c = caps->migration_parameters; c && *c; c++) {
                g_autofree char *line = g_markup_printf_escaped("      <parameter>%s</parameter>\n", *c);
                g_string_append(xml, line);
        }
        g_string_append(xml, "    </migration-parameters>\n    <defects>\n");
        for (const QemuDefect *const *d = qemu_caps_defects(caps); *d; d++) {
                g_autofree char *line = g_markup_printf_escaped("      <defect id='%s'>%s</defect>\n", (*d)->id,
                                                                (*d)->description);
                g_string_append(xml, line);
        }
        g_string_append(xml, "    </defects>\n");
}
