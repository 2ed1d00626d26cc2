/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A client of vmigrated that nobody on the project wrote by hand: it uses
 * only what gdbus-codegen generates from the interfaces/ XML files, and GIO. It
 * defines a domain, starts it, migrates it, follows the job through the
 * generated proxy's property notifications (which GDBusProxy derives from
 * the job's PropertiesChanged) until the job ends, then prints the domain's
 * GetJobStats. The generated proxies carry the interfaces' introspection
 * data, so GDBusProxy also checks every reply and property it receives
 * against the XML: run with G_DEBUG=fatal-warnings to make a mismatch fatal.
 *
 * Usage: vmigrate-codegen-client [--address=ADDRESS] [--timeout=SECONDS] DOMAIN.xml DESTINATION
 * (the system bus by default, which DBUS_SYSTEM_BUS_ADDRESS may name).
 *
 * One line per step on standard output, for tests/hosts/test-clients.sh:
 *   domain PATH                 DefineXML's reply
 *   started                     Start replied
 *   job PATH                    Migrate's reply
 *   phase PHASE                 the job's Phase when the proxy was made, then each change
 *   progress P processed=B remaining=B   each PropertiesChanged that carried Progress
 *   end PHASE properties-changed=N progress-changes=M
 *   stats KEY VALUE             GetJobStats, one key a line, sorted
 * Exit status 0 only when the job completed and the statistics say so.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <gio/gio.h>

#include "vmigrate-generated.h"

#define VM_BUS_NAME "org.vmigrate.Migrate1"
#define VM_MANAGER_PATH "/org/vmigrate/Migrate1"
/* Start replies once the guest runs and Migrate once the destination is
 * prepared: both can take longer than GDBus's 25 s default on a busy host. */
#define CALL_TIMEOUT_MS (120 * 1000)

typedef struct Follow {
        GMainLoop *loop;
        unsigned n_properties_changed;
        unsigned n_progress;
        bool timed_out;
} Follow;

static bool phase_is_final(const char *phase) {
        return phase &&
                (g_str_equal(phase, "completed") || g_str_equal(phase, "failed") ||
                 g_str_equal(phase, "cancelled"));
}

static void on_properties_changed(GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                                  gpointer userdata) {
        Follow *f = userdata;

        f->n_properties_changed++;
}

static void on_notify_progress(GObject *object, GParamSpec *pspec, gpointer userdata) {
        VmMigrate1Job *job = VM_MIGRATE1_JOB(object);
        Follow *f = userdata;

        f->n_progress++;
        g_print("progress %.3f processed=%" G_GUINT64_FORMAT " remaining=%" G_GUINT64_FORMAT "\n",
                vm_migrate1_job_get_progress(job), vm_migrate1_job_get_data_processed(job),
                vm_migrate1_job_get_data_remaining(job));
}

static void on_notify_phase(GObject *object, GParamSpec *pspec, gpointer userdata) {
        const char *phase = vm_migrate1_job_get_phase(VM_MIGRATE1_JOB(object));
        Follow *f = userdata;

        g_print("phase %s\n", phase);
        if (phase_is_final(phase))
                g_main_loop_quit(f->loop);
}

static gboolean on_timeout(gpointer userdata) {
        Follow *f = userdata;

        f->timed_out = true;
        g_main_loop_quit(f->loop);
        return G_SOURCE_REMOVE;
}

/* Runs the main loop until the job's Phase is final. The proxy subscribed
 * to PropertiesChanged before it read the properties, so no change between
 * Migrate's reply and now is lost: it is either in the cache or to come. */
static int follow_job(VmMigrate1Job *job, unsigned timeout_s) {
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        Follow f = { .loop = loop };
        const char *phase = vm_migrate1_job_get_phase(job);
        guint timer;

        if (!phase) {
                g_printerr("error: the job has no Phase property\n");
                return -EBADMSG;
        }
        g_print("phase %s\n", phase);

        g_signal_connect(job, "g-properties-changed", G_CALLBACK(on_properties_changed), &f);
        g_signal_connect(job, "notify::progress", G_CALLBACK(on_notify_progress), &f);
        g_signal_connect(job, "notify::phase", G_CALLBACK(on_notify_phase), &f);
        timer = g_timeout_add_seconds(timeout_s, on_timeout, &f);
        if (!phase_is_final(phase))
                g_main_loop_run(loop);
        g_signal_handlers_disconnect_by_data(job, &f);
        if (f.timed_out) {
                g_printerr("error: the job did not end within %u s (phase %s)\n", timeout_s,
                           vm_migrate1_job_get_phase(job));
                return -ETIMEDOUT;
        }
        g_source_remove(timer);

        g_print("end %s properties-changed=%u progress-changes=%u\n", vm_migrate1_job_get_phase(job),
                f.n_properties_changed, f.n_progress);
        if (!g_str_equal(vm_migrate1_job_get_phase(job), "completed")) {
                g_printerr("error: the job ended %s: %s\n", vm_migrate1_job_get_phase(job),
                           vm_migrate1_job_get_error(job) ?: "(no Error)");
                return -EIO;
        }
        return 0;
}

static int compare_strings(gconstpointer a, gconstpointer b) {
        return g_strcmp0(*(const char *const *) a, *(const char *const *) b);
}

static void print_stats(GVariant *stats) {
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&iter, stats);
        while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
                g_autofree char *text = g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)
                        ? g_variant_dup_string(value, NULL)
                        : g_variant_print(value, FALSE);

                g_ptr_array_add(lines, g_strdup_printf("stats %s %s", key, text));
        }
        g_ptr_array_sort(lines, compare_strings);
        for (guint i = 0; i < lines->len; i++)
                g_print("%s\n", (const char *) lines->pdata[i]);
}

/* What a completed migration's statistics must say, whatever the backend. */
static int check_stats(GVariantDict *dict) {
        const char *phase = NULL;
        guint64 elapsed_ms = 0, data_total = 0, data_processed = 0;
        double progress = 0;

        if (!g_variant_dict_lookup(dict, "phase", "&s", &phase) || !g_str_equal(phase, "completed")) {
                g_printerr("error: stats: phase is %s, not completed\n", phase ?: "missing");
                return -EBADMSG;
        }
        if (!g_variant_dict_lookup(dict, "elapsed-ms", "t", &elapsed_ms) || elapsed_ms == 0) {
                g_printerr("error: stats: elapsed-ms missing or 0\n");
                return -EBADMSG;
        }
        if (!g_variant_dict_lookup(dict, "data-total", "t", &data_total) || data_total == 0) {
                g_printerr("error: stats: data-total missing or 0\n");
                return -EBADMSG;
        }
        if (!g_variant_dict_lookup(dict, "data-processed", "t", &data_processed) || data_processed == 0) {
                g_printerr("error: stats: data-processed missing or 0\n");
                return -EBADMSG;
        }
        if (!g_variant_dict_lookup(dict, "progress", "d", &progress) || progress != 1.0) {
                g_printerr("error: stats: progress is %g, not 1\n", progress);
                return -EBADMSG;
        }
        return 0;
}

static int open_bus(const char *address, GDBusConnection **ret_bus) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) bus = NULL;

        if (address)
                bus = g_dbus_connection_new_for_address_sync(
                        address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
        else
                bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        if (!bus) {
                g_printerr("error: cannot connect to the bus: %s\n", error->message);
                return -ECONNREFUSED;
        }
        *ret_bus = g_steal_pointer(&bus);
        return 0;
}

static int migrate_domain(GDBusConnection *bus, const char *xml, const char *destination,
                          unsigned timeout_s) {
        g_autoptr(GError) error = NULL;
        g_autoptr(VmMigrate1Manager) manager = NULL;
        g_autoptr(VmMigrate1Domain) domain = NULL;
        g_autoptr(VmMigrate1Job) job = NULL;
        g_autofree char *domain_path = NULL;
        g_autofree char *job_path = NULL;
        g_autoptr(GVariant) stats = NULL;
        g_autoptr(GVariantDict) dict = NULL;
        int r;

        manager = vm_migrate1_manager_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE, VM_BUS_NAME,
                                                     VM_MANAGER_PATH, NULL, &error);
        if (!manager) {
                g_printerr("error: Manager: %s\n", error->message);
                return -EIO;
        }
        if (!vm_migrate1_manager_call_define_xml_sync(manager, xml, G_DBUS_CALL_FLAGS_NONE, -1, &domain_path,
                                                      NULL, &error)) {
                g_printerr("error: DefineXML: %s\n", error->message);
                return -EIO;
        }
        g_print("domain %s\n", domain_path);

        domain = vm_migrate1_domain_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE, VM_BUS_NAME, domain_path,
                                                   NULL, &error);
        if (!domain) {
                g_printerr("error: Domain %s: %s\n", domain_path, error->message);
                return -EIO;
        }
        if (!vm_migrate1_domain_call_start_sync(domain, G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL,
                                                &error)) {
                g_printerr("error: Start: %s\n", error->message);
                return -EIO;
        }
        g_print("started\n");

        if (!vm_migrate1_domain_call_migrate_sync(domain, destination, g_variant_new("a{sv}", NULL),
                                                  G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, &job_path, NULL,
                                                  &error)) {
                g_printerr("error: Migrate: %s\n", error->message);
                return -EIO;
        }
        g_print("job %s\n", job_path);

        job = vm_migrate1_job_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE, VM_BUS_NAME, job_path, NULL,
                                             &error);
        if (!job) {
                g_printerr("error: Job %s: %s\n", job_path, error->message);
                return -EIO;
        }
        r = follow_job(job, timeout_s);
        if (r < 0)
                return r;

        if (!vm_migrate1_domain_call_get_job_stats_sync(domain, G_DBUS_CALL_FLAGS_NONE, -1, &stats, NULL,
                                                        &error)) {
                g_printerr("error: GetJobStats: %s\n", error->message);
                return -EIO;
        }
        print_stats(stats);
        dict = g_variant_dict_new(stats);
        return check_stats(dict);
}

int main(int argc, char *argv[]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) context = NULL;
        g_autoptr(GDBusConnection) bus = NULL;
        g_autofree char *address = NULL;
        g_autofree char *xml = NULL;
        int timeout_s = 300;
        const GOptionEntry entries[] = {
                { "address", 0, 0, G_OPTION_ARG_STRING, &address, "D-Bus address of the source host's bus",
                  "ADDRESS" },
                { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s, "Give up on the job after SECONDS (300)",
                  "SECONDS" },
                { NULL },
        };

        context = g_option_context_new("DOMAIN.xml DESTINATION");
        g_option_context_set_summary(context,
                                     "Define DOMAIN.xml, start it and migrate it to DESTINATION "
                                     "through proxies generated by gdbus-codegen.");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                g_printerr("error: %s\n", error->message);
                return EXIT_FAILURE;
        }
        if (argc != 3 || timeout_s <= 0) {
                g_printerr("usage: %s [--address=ADDRESS] [--timeout=SECONDS] DOMAIN.xml DESTINATION\n",
                           g_get_prgname());
                return EXIT_FAILURE;
        }
        if (!g_file_get_contents(argv[1], &xml, NULL, &error)) {
                g_printerr("error: %s\n", error->message);
                return EXIT_FAILURE;
        }
        if (open_bus(address, &bus) < 0)
                return EXIT_FAILURE;
        return migrate_domain(bus, xml, argv[2], (unsigned) timeout_s) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
