/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "domain-xml.h"
#include "errors.h"
#include "hooks.h"
#include "host-features.h"

typedef struct Fixture {
        sd_event *event;
        char *dir;
} Fixture;

static void fixture_set_up(Fixture *fx, gconstpointer data) {
        g_assert_cmpint(sd_event_new(&fx->event), >=, 0);
        fx->dir = g_dir_make_tmp("vmigrate-hooks-XXXXXX", NULL);
        g_assert_nonnull(fx->dir);
        g_assert_cmpint(chmod(fx->dir, 0755), ==, 0);
}

static void rm_tree(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(dir, name, NULL);
                if (g_file_test(p, G_FILE_TEST_IS_DIR))
                        rm_tree(p);
                else
                        (void) unlink(p);
        }
        (void) rmdir(dir);
}

static void fixture_tear_down(Fixture *fx, gconstpointer data) {
        rm_tree(fx->dir);
        g_free(fx->dir);
        sd_event_unref(fx->event);
}

static void write_hook(Fixture *fx, const char *name, mode_t mode, const char *body) {
        g_autofree char *path = g_build_filename(fx->dir, name, NULL);
        g_autofree char *script = g_strdup_printf("#!/bin/sh\n%s\n", body);

        g_assert_true(g_file_set_contents(path, script, -1, NULL));
        g_assert_cmpint(chmod(path, mode), ==, 0);
}

/* Runs the loop until *flag, failing after a deadline (never a fixed sleep). */
static void run_until(Fixture *fx, bool *flag, int64_t max_usec) {
        int64_t deadline = g_get_monotonic_time() + max_usec;

        while (!*flag && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(fx->event, 100 * 1000), >=, 0);
        g_assert_true(*flag);
}

typedef struct Outcome {
        bool done;
        bool ok;
        int status;
        bool timed_out;
        char *output;
        char *message;
} Outcome;

static void outcome_clear(Outcome *o) {
        g_free(o->output);
        g_free(o->message);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Outcome, outcome_clear)

static void on_done(const HookResult *result, void *userdata) {
        Outcome *o = userdata;

        o->done = true;
        o->ok = result->ok;
        o->status = result->status;
        o->timed_out = result->timed_out;
        o->output = g_strdup(result->output);
        o->message = g_strdup(result->message);
}

static const HookRequest request = {
        .domain_name = "vm1",
        .domain_uuid = "11111111-2222-3333-4444-555555555555",
        .phase = "migrate",
        .sub_phase = "prepare",
        .xml = "<domain type='kvm'><name>vm1</name></domain>",
};

static void run_hook(Fixture *fx, const char *name, uint64_t timeout_usec, Outcome *o) {
        g_assert_cmpint(hook_run(fx->event, fx->dir, name, &request, timeout_usec, on_done, o, NULL), ==, 0);
        g_assert_false(o->done); /* never from within hook_run */
        run_until(fx, &o->done, 20 * G_USEC_PER_SEC);
}

static void test_success(Fixture *fx, gconstpointer data) {
        g_auto(Outcome) o = { 0 };

        /* argv like libvirt's qemu hook, the XML on stdin, the environment. */
        write_hook(fx, "10-ok", 0755,
                   "echo \"args=$1 $2 $3\"; echo \"uuid=$VMIGRATE_DOMAIN_UUID phase=$VMIGRATE_PHASE\"; "
                   "echo \"stdin=$(cat)\"; echo \"cwd=$(pwd)\"");
        run_hook(fx, "10-ok", 10 * G_USEC_PER_SEC, &o);
        g_assert_true(o.ok);
        g_assert_cmpint(o.status, ==, 0);
        g_assert_null(o.message);
        g_assert_nonnull(strstr(o.output, "args=vm1 migrate prepare\n"));
        g_assert_nonnull(strstr(o.output, "uuid=11111111-2222-3333-4444-555555555555 phase=prepare\n"));
        g_assert_nonnull(strstr(o.output, "stdin=<domain type='kvm'><name>vm1</name></domain>\n"));
        g_assert_nonnull(strstr(o.output, "cwd=/\n"));
}

static void test_failure_output(Fixture *fx, gconstpointer data) {
        g_auto(Outcome) o = { 0 };

        write_hook(fx, "fail", 0755,
                   "for i in 1 2 3 4 5 6 7; do echo line$i; done; echo 'bridge br9 is down' >&2; exit 3");
        run_hook(fx, "fail", 10 * G_USEC_PER_SEC, &o);
        g_assert_false(o.ok);
        g_assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 3);
        g_test_message("%s", o.message);
        g_assert_nonnull(strstr(o.message, "hook 'fail' (migrate prepare) exited with status 3: "));
        /* the last lines, stderr included, not the first ones */
        g_assert_nonnull(strstr(o.message, "line4; line5; line6; line7; bridge br9 is down"));
        g_assert_null(strstr(o.message, "line3"));
}

static void test_no_stdin_reader(Fixture *fx, gconstpointer data) {
        g_auto(Outcome) o = { 0 };
        g_autofree char *big = g_strnfill(1024 * 1024, 'x');
        HookRequest req = request;

        /* A hook that never reads a large stdin must neither block nor
         * kill us with SIGPIPE. */
        req.xml = big;
        write_hook(fx, "deaf", 0755, "exec 0<&-; echo done");
        g_assert_cmpint(hook_run(fx->event, fx->dir, "deaf", &req, 10 * G_USEC_PER_SEC, on_done, &o, NULL), ==, 0);
        run_until(fx, &o.done, 20 * G_USEC_PER_SEC);
        g_assert_true(o.ok);
}

static void test_output_capped(Fixture *fx, gconstpointer data) {
        g_auto(Outcome) o = { 0 };

        write_hook(fx, "chatty", 0755, "head -c 300000 /dev/zero | tr '\\0' 'a'; echo; echo the-end");
        run_hook(fx, "chatty", 10 * G_USEC_PER_SEC, &o);
        g_assert_true(o.ok);
        g_assert_cmpuint(strlen(o.output), ==, HOOK_OUTPUT_MAX);
}

static void test_timeout(Fixture *fx, gconstpointer data) {
        g_auto(Outcome) o = { 0 };
        uint64_t start = g_get_monotonic_time();
        g_autofree char *pidfile = g_build_filename(fx->dir, "child.pid", NULL);
        g_autofree char *body = g_strdup_printf("sleep 100 & echo $! > %s; echo waiting; wait", pidfile);
        g_autofree char *pid = NULL;

        write_hook(fx, "hang", 0755, body);
        run_hook(fx, "hang", 1 * G_USEC_PER_SEC, &o);
        g_assert_false(o.ok);
        g_assert_true(o.timed_out);
        g_assert_cmpuint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
        g_assert_nonnull(strstr(o.message, "did not finish within 1 s and was killed: waiting"));
        /* Its child went with it: the whole process group is killed. */
        g_assert_true(g_file_get_contents(pidfile, &pid, NULL, NULL));
        int64_t deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (kill(atoi(pid), 0) == 0 && g_get_monotonic_time() < deadline)
                g_usleep(10 * 1000);
        g_assert_cmpint(kill(atoi(pid), 0), <, 0);
}

static void test_list_refuses_unsafe(Fixture *fx, gconstpointer data) {
        g_auto(GStrv) hooks = NULL;
        g_autofree char *subdir = g_build_filename(fx->dir, "20-dir", NULL);
        g_autofree char *joined = NULL;

        write_hook(fx, "30-ok", 0755, "exit 0");
        write_hook(fx, "10-ok", 0700, "exit 0");
        write_hook(fx, "20-not-executable", 0644, "exit 0");
        write_hook(fx, "25-world-writable", 0757, "exit 0");
        write_hook(fx, "26-group-writable", 0775, "exit 0");
        write_hook(fx, ".hidden", 0755, "exit 0");
        write_hook(fx, "40-backup~", 0755, "exit 0");
        write_hook(fx, "bad name", 0755, "exit 0");
        g_assert_cmpint(mkdir(subdir, 0755), ==, 0);

        hooks = hooks_list(fx->dir);
        joined = g_strjoinv(",", hooks);
        g_assert_cmpstr(joined, ==, "10-ok,30-ok"); /* in name order */

        /* Refused at run time too (changed after listing). */
        g_auto(Outcome) o = { 0 };
        run_hook(fx, "25-world-writable", 10 * G_USEC_PER_SEC, &o);
        g_assert_false(o.ok);
        g_assert_nonnull(strstr(o.message, "could not be started: writable by group or others"));
}

static void test_list_unsafe_dir(Fixture *fx, gconstpointer data) {
        g_auto(GStrv) hooks = NULL;
        g_auto(GStrv) none = NULL;

        write_hook(fx, "10-ok", 0755, "exit 0");
        g_assert_cmpint(chmod(fx->dir, 0777), ==, 0);
        hooks = hooks_list(fx->dir);
        g_assert_cmpuint(g_strv_length(hooks), ==, 0);
        none = hooks_list("/nonexistent/vmigrate-hooks");
        g_assert_cmpuint(g_strv_length(none), ==, 0);
}

/* ---- host features: hooks and bridges in order, required or not ---- */

static DomainDef *features_def(const char *requires, const char *devices) {
        g_autofree char *xml = g_strdup_printf(
                "<domain type='kvm'><name>vm1</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
                "<memory unit='MiB'>64</memory><metadata><v:migration "
                "xmlns:v='https://vmigrate.org/xmlns/migration/1'>%s</v:migration></metadata><devices>%s</devices>"
                "</domain>",
                requires, devices);
        DomainDef *def = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

typedef struct FeaturesOutcome {
        bool done;
        GError *error;
} FeaturesOutcome;

static void on_features(const GError *error, void *userdata) {
        FeaturesOutcome *o = userdata;
        o->done = true;
        o->error = error ? g_error_copy(error) : NULL;
}

static Features *features_for(Fixture *fx, const DomainDef *def, const char *sys_class_net) {
        FeaturesConfig config = {
                .event = fx->event,
                .host = "host-b",
                .hooks_dir = fx->dir,
                .hook_timeout_usec = 5 * G_USEC_PER_SEC,
                .sys_class_net = sys_class_net,
        };
        return features_new(&config, def);
}

static char *read_log(Fixture *fx) {
        g_autofree char *path = g_build_filename(fx->dir, "log", NULL);
        char *log = NULL;
        if (!g_file_get_contents(path, &log, NULL, NULL))
                log = g_strdup("");
        return log;
}

static void write_logging_hook(Fixture *fx, const char *name, int status) {
        g_autofree char *log = g_build_filename(fx->dir, "log", NULL);
        g_autofree char *body = g_strdup_printf("echo \"%s $3\" >> %s; echo '%s says no' >&2; exit %d", name, log,
                                                name, status);
        write_hook(fx, name, 0755, body);
}

static void test_features_required_hook_fails(Fixture *fx, gconstpointer data) {
        g_autoptr(DomainDef) def = features_def("<v:require hook='20-b'/>", "");
        Features *f = features_for(fx, def, NULL);
        FeaturesOutcome o = { 0 };
        g_autofree char *log = NULL;
        bool aborted = false;

        write_logging_hook(fx, "10-a", 1); /* not required: a warning */
        write_logging_hook(fx, "20-b", 2); /* required: fails the phase */
        write_logging_hook(fx, "30-c", 0); /* never runs */
        g_assert_cmpint(features_prepare(f, on_features, &o), >=, 0);
        run_until(fx, &o.done, 20 * G_USEC_PER_SEC);
        g_assert_error(o.error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_test_message("%s", o.error->message);
        g_assert_nonnull(strstr(o.error->message,
                                "host-b: required hook '20-b' (migrate prepare) exited with status 2: 20-b says no"));
        g_assert_cmpuint(features_warnings(f)->len, ==, 1);
        g_assert_nonnull(strstr(features_warnings(f)->pdata[0], "host-b: hook '10-a' (migrate prepare) exited with "
                                                                 "status 1: 10-a says no"));
        /* Undone in reverse order; the abort outlives f's owner. */
        features_abort(f);
        int64_t deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
        while (!aborted && g_get_monotonic_time() < deadline) {
                g_assert_cmpint(sd_event_run(fx->event, 100 * 1000), >=, 0);
                g_free(log);
                log = read_log(fx);
                aborted = strstr(log, "10-a abort") != NULL;
        }
        g_assert_cmpstr(log, ==, "10-a prepare\n20-b prepare\n20-b abort\n10-a abort\n");
        /* The line is written before the hook exits: f goes once its exit
         * is seen. Run until the loop has been idle for 2 s. */
        while (sd_event_run(fx->event, 2 * G_USEC_PER_SEC) > 0)
                ;
        g_clear_error(&o.error);
}

static void test_features_bridges(Fixture *fx, gconstpointer data) {
        g_autofree char *net = g_build_filename(fx->dir, "net", NULL);
        g_autofree char *br0 = g_build_filename(net, "br0", "bridge", NULL);
        static const char devices[] =
                "<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:00:00:01'/></interface>"
                "<interface type='bridge'><source bridge='br1'/><mac address='52:54:00:00:00:02'/></interface>";
        FeaturesOutcome o = { 0 };

        g_assert_cmpint(g_mkdir_with_parents(br0, 0755), ==, 0);

        /* br1 missing, not required: a warning; the interface runs unconnected. */
        {
                g_autoptr(DomainDef) def = features_def("<v:require interface='52:54:00:00:00:01'/>", devices);
                g_autoptr(Features) f = features_for(fx, def, net);
                g_assert_cmpint(features_prepare(f, on_features, &o), >=, 0);
                run_until(fx, &o.done, 10 * G_USEC_PER_SEC);
                g_assert_no_error(o.error);
                g_assert_cmpuint(features_warnings(f)->len, ==, 1);
                g_assert_cmpstr(features_warnings(f)->pdata[0], ==,
                                "host-b: bridge br1 is missing: interface 52:54:00:00:00:02 runs unconnected (link "
                                "down)");
        }
        /* br1 missing and required: the phase fails, naming host and bridge. */
        {
                g_autoptr(DomainDef) def = features_def("<v:require interface='52:54:00:00:00:02'/>", devices);
                g_autoptr(Features) f = features_for(fx, def, net);
                o = (FeaturesOutcome){ 0 };
                g_assert_cmpint(features_prepare(f, on_features, &o), >=, 0);
                run_until(fx, &o.done, 10 * G_USEC_PER_SEC);
                g_assert_error(o.error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
                g_assert_nonnull(strstr(o.error->message, "host-b: bridge br1 is missing, and the domain requires "
                                                          "interface 52:54:00:00:00:02"));
                g_clear_error(&o.error);
        }
}

static void test_features_required_hook_missing(Fixture *fx, gconstpointer data) {
        g_autoptr(DomainDef) def = features_def("<v:require hook='net'/>", "");
        g_autoptr(Features) f = features_for(fx, def, NULL);
        FeaturesOutcome o = { 0 };

        write_hook(fx, "net", 0777, "exit 0"); /* there, but refused as unsafe */
        g_assert_cmpint(features_prepare(f, on_features, &o), >=, 0);
        g_assert_false(o.done);
        run_until(fx, &o.done, 10 * G_USEC_PER_SEC);
        g_assert_error(o.error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_assert_nonnull(strstr(o.error->message, "required hook 'net' (migrate prepare) is not a runnable hook"));
        g_clear_error(&o.error);
}

static void test_features_finish_postcopy(Fixture *fx, gconstpointer data) {
        g_autoptr(DomainDef) def = features_def("<v:require hook='x'/>", "");
        g_autoptr(Features) f = features_for(fx, def, NULL);
        FeaturesOutcome o = { 0 };

        /* In post-copy the guest cannot go back: required or not, a warning. */
        write_hook(fx, "x", 0755, "[ \"$3\" = finish ] && exit 1; exit 0");
        g_assert_cmpint(features_finish(f, false, on_features, &o), >=, 0);
        run_until(fx, &o.done, 10 * G_USEC_PER_SEC);
        g_assert_no_error(o.error);
        g_assert_cmpuint(features_warnings(f)->len, ==, 1);
        o = (FeaturesOutcome){ 0 };
        g_assert_cmpint(features_finish(f, true, on_features, &o), >=, 0);
        run_until(fx, &o.done, 10 * G_USEC_PER_SEC);
        g_assert_error(o.error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_clear_error(&o.error);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        if (geteuid() != 0) {
                /* Hooks must be owned by root or by us: files we create are ours. */
                g_test_message("not root: hooks owned by uid %u are trusted", (unsigned) geteuid());
        }
        ADD("/hooks/run/success", test_success);
        ADD("/hooks/run/failure-output", test_failure_output);
        ADD("/hooks/run/no-stdin-reader", test_no_stdin_reader);
        ADD("/hooks/run/output-capped", test_output_capped);
        ADD("/hooks/run/timeout", test_timeout);
        ADD("/hooks/list/refuses-unsafe", test_list_refuses_unsafe);
        ADD("/hooks/list/unsafe-dir", test_list_unsafe_dir);
        ADD("/features/hooks/required-fails", test_features_required_hook_fails);
        ADD("/features/hooks/required-missing", test_features_required_hook_missing);
        ADD("/features/hooks/finish-postcopy", test_features_finish_postcopy);
        ADD("/features/bridges", test_features_bridges);
        return g_test_run();
}
