/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of vmigratectl history and evacuate without a bus: evacuate's
 * options, the evacuation's state and lines from canned Evacuation and Job
 * properties, the history table and JSON from a canned ListJobHistory
 * reply; and, through the program ($VMIGRATECTL), that the new options are
 * refused where they do not apply and accepted where they do (usage errors
 * come before any connection; an accepted command line then fails to
 * connect to a bus that is not there, with status 3).
 */

#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static void assert_contains(const char *text, const char *part) {
        if (!text || !strstr(text, part))
                g_test_message("expected '%s' in:\n%s", part, text ? text : "(null)");
        g_assert_nonnull(text);
        g_assert_nonnull(strstr(text, part));
}

/* ---- evacuate's options ---- */

static GVariant *options_of(const CtlEvacuateArgs *e, int *ret, char **ret_error) {
        g_autoptr(GVariantDict) dict = g_variant_dict_new(NULL);

        *ret = ctl_evacuate_options_add(e, dict, ret_error);
        return g_variant_ref_sink(g_variant_dict_end(dict));
}

static void test_options_valid(void) {
        g_autofree char *error = NULL;
        g_autoptr(GVariant) all = NULL, none = NULL;
        const char *order;
        guint32 parallel;
        gboolean b;
        int r;

        all = options_of(
                &(CtlEvacuateArgs){
                        .order = "priority", .parallel = "4", .inactive = true, .maintenance = true },
                &r, &error);
        g_assert_cmpint(r, ==, 0);
        g_assert_null(error);
        g_assert_true(g_variant_lookup(all, "order", "&s", &order));
        g_assert_cmpstr(order, ==, "priority");
        /* parallel is a u on the bus: a t would be refused by vmigrated. */
        g_assert_true(g_variant_lookup(all, "parallel", "u", &parallel));
        g_assert_cmpuint(parallel, ==, 4);
        g_assert_true(g_variant_lookup(all, "inactive", "b", &b) && b);
        g_assert_true(g_variant_lookup(all, "maintenance", "b", &b) && b);

        /* Nothing given: nothing sent, the daemon's defaults apply. */
        none = options_of(&(CtlEvacuateArgs){ 0 }, &r, &error);
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpuint(g_variant_n_children(none), ==, 0);

        for (const char *const *o =
                     (const char *const[]){ "smallest-first", "largest-first", "priority", NULL };
             *o; o++) {
                g_autoptr(GVariant) v = options_of(&(CtlEvacuateArgs){ .order = *o }, &r, &error);
                g_assert_cmpint(r, ==, 0);
        }
        for (const char *const *p = (const char *const[]){ "1", "64", NULL }; *p; p++) {
                g_autoptr(GVariant) v = options_of(&(CtlEvacuateArgs){ .parallel = *p }, &r, &error);
                g_assert_cmpint(r, ==, 0);
        }
}

static void test_options_invalid(void) {
        static const struct {
                CtlEvacuateArgs args;
                const char *message;
        } cases[] = {
                { { .order = "random" }, "invalid --order 'random': give 'smallest-first'" },
                { { .order = "" }, "invalid --order ''" },
                { { .order = "Priority" }, "'largest-first' or 'priority'" },
                { { .parallel = "0" },
                  "invalid --parallel '0': expected migrations at once, a whole number from 1 "
                  "to 64" },
                { { .parallel = "65" }, "invalid --parallel '65'" },
                { { .parallel = "-1" }, "invalid --parallel '-1'" },
                { { .parallel = "4x" }, "invalid --parallel '4x'" },
                { { .parallel = "" }, "invalid --parallel ''" },
                { { .parallel = "99999999999999999999999" }, "invalid --parallel" },
                /* A bad one among good ones: nothing is added. */
                { { .order = "priority", .parallel = "100", .inactive = true }, "from 1 to 64" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *error = NULL;
                g_autoptr(GVariant) v = NULL;
                int r;

                v = options_of(&cases[i].args, &r, &error);
                g_assert_cmpint(r, ==, -EINVAL);
                assert_contains(error, cases[i].message);
                g_assert_cmpuint(g_variant_n_children(v), ==, 0);
        }
}

static void test_migrate_args(void) {
        static const struct {
                const char *flag, *arg, *message; /* message NULL: fine for evacuate */
        } cases[] = {
                { "bandwidth", "1G", NULL },
                { "tls", NULL, NULL },
                { "policy", "postcopy", NULL },
                { "parallel", NULL, NULL },
                { "persist", NULL, NULL },
                { "destination-name", "x",
                  "--destination-name only applies to 'migrate', not to 'evacuate'" },
                { "dname", "x", "--destination-name only applies to 'migrate'" },
                { "destination-xml", "d.xml", "--destination-xml only applies to 'migrate'" },
                { "xml", "d.xml", "--destination-xml only applies to 'migrate'" },
                { "offline", NULL, "--offline only applies to 'migrate', not to 'evacuate' (--inactive" },
                { "postcopy-resume", NULL, "--postcopy-resume only applies to 'migrate'" },
                { "postcopy-after-precopy", NULL, "--postcopy-after-precopy only applies to 'migrate'" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_auto(CtlMigrateArgs) a = { 0 };
                g_autofree char *error = NULL;
                int r;

                g_assert_cmpint(ctl_migrate_arg(&a, cases[i].flag, cases[i].arg, &error), ==, 0);
                r = ctl_evacuate_check_migrate_args(&a, &error);
                if (cases[i].message) {
                        g_assert_cmpint(r, ==, -EINVAL);
                        assert_contains(error, cases[i].message);
                        g_assert_false(ctl_evacuate_takes_migrate_flag(cases[i].flag));
                } else {
                        g_assert_cmpint(r, ==, 0);
                        g_assert_null(error);
                        g_assert_true(ctl_evacuate_takes_migrate_flag(cases[i].flag));
                }
        }
}

static void test_destinations(void) {
        char *good[] = { "hv2", "ssh://admin@hv3:2222", "unix:///run/hv4/bus", NULL };
        /* A bare host logs in as root, as ssh://root@ does. */
        char *twice[] = { "hv2", "ssh://root@hv2", NULL };
        char *bad[] = { "hv2", "ftp://hv3", NULL };
        g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *error = NULL;

        g_assert_cmpint(ctl_evacuate_check_destinations(good, 3, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpint(ctl_evacuate_check_destinations(good, 0, &error), ==, -EINVAL);
        assert_contains(error, "needs one DESTINATION or more");
        g_clear_pointer(&error, g_free);
        g_assert_cmpint(ctl_evacuate_check_destinations(twice, 2, &error), ==, -EINVAL);
        assert_contains(error, "DESTINATION 'ssh://root@hv2' is given twice (as ssh://root@hv2)");
        g_clear_pointer(&error, g_free);
        g_assert_cmpint(ctl_evacuate_check_destinations(bad, 2, &error), ==, -EINVAL);
        assert_contains(error, "invalid DESTINATION 'ftp://hv3'");
        g_clear_pointer(&error, g_free);

        for (int i = 0; i < CTL_EVACUATE_DESTINATIONS_MAX + 1; i++)
                g_ptr_array_add(many, g_strdup_printf("hv%d", i));
        g_assert_cmpint(ctl_evacuate_check_destinations((char **) many->pdata, CTL_EVACUATE_DESTINATIONS_MAX,
                                                        &error),
                        ==, 0);
        g_assert_cmpint(ctl_evacuate_check_destinations((char **) many->pdata, many->len, &error), ==,
                        -EINVAL);
        assert_contains(error, "at most 64 destinations, not 65");
}

/* ---- the evacuation's state ---- */

/* A GetAll of an evacuation in the middle of its work. */
static GVariant *running_properties(void) {
        return g_variant_ref_sink(g_variant_new_parsed(
                "{'State': <'running'>, 'Total': <uint32 5>, 'Done': <uint32 1>, 'Failed': <uint32 1>,"
                " 'Remaining': <uint32 3>, 'Progress': <0.5>, 'Destinations': <['ssh://hv2', 'ssh://hv3']>,"
                " 'Jobs': <[objectpath '/org/vmigrate/Migrate1/job/7', '/org/vmigrate/Migrate1/job/9']>,"
                " 'Results': <[{'domain': <'small'>, 'uuid': <'u1'>, 'state': <'completed'>,"
                "               'destination': <'ssh://hv2'>, 'message': <''>, 'job-id': <uint64 7>,"
                "               'offline': <false>, 'memory-bytes': <uint64 536870912>},"
                "              {'domain': <'web'>, 'uuid': <'u2'>, 'state': <'migrating'>,"
                "               'destination': <'ssh://hv3'>, 'message': <''>, 'job-id': <uint64 9>,"
                "               'offline': <false>, 'memory-bytes': <uint64 1073741824>},"
                "              {'domain': <'huge'>, 'uuid': <'u3'>, 'state': <'not-placed'>,"
                "               'destination': <''>, 'message': <'ssh://hv2: not enough memory; ssh://hv3: "
                "not enough memory'>,"
                "               'job-id': <uint64 0>, 'offline': <false>, 'memory-bytes': <uint64 "
                "68719476736>},"
                "              {'domain': <'db'>, 'uuid': <'u4'>, 'state': <'placing'>, 'destination': <''>,"
                "               'message': <''>, 'job-id': <uint64 0>, 'offline': <false>,"
                "               'memory-bytes': <uint64 2147483648>},"
                "              {'domain': <'old'>, 'uuid': <'u5'>, 'state': <'pending'>, 'destination': "
                "<''>,"
                "               'message': <''>, 'job-id': <uint64 0>, 'offline': <true>,"
                "               'memory-bytes': <uint64 4294967296>}]>}"));
}

static void test_state_update(void) {
        g_auto(CtlEvacuation) ev;
        g_autoptr(GVariant) props = running_properties();
        g_autoptr(GVariant) job = g_variant_ref_sink(g_variant_new_parsed(
                "{'Phase': <'perform'>, 'Progress': <0.45>, 'ElapsedMs': <uint64 3000>}"));
        g_autoptr(GVariant) back = g_variant_ref_sink(g_variant_new_parsed("{'Progress': <0.2>}"));
        g_autoptr(GVariant) later = g_variant_ref_sink(g_variant_new_parsed(
                "{'State': <'failed'>, 'Done': <uint32 3>, 'Failed': <uint32 2>, 'Remaining': <uint32 0>,"
                " 'Progress': <1.0>,"
                " 'Results': <[{'domain': <'web'>, 'uuid': <'u2'>, 'state': <'completed'>,"
                "               'destination': <'ssh://hv3'>, 'job-id': <uint64 9>}]>}"));
        const CtlEvacuationItem *web;
        g_autofree char *counts = NULL;

        ctl_evacuation_init(&ev);
        g_assert_false(ctl_evacuation_ended(&ev));
        ctl_evacuation_update(&ev, props);
        g_assert_cmpstr(ev.state, ==, "running");
        g_assert_false(ctl_evacuation_ended(&ev));
        g_assert_cmpuint(ev.total, ==, 5);
        g_assert_cmpuint(ev.items->len, ==, 5);
        counts = ctl_evacuation_counts_text(&ev);
        g_assert_cmpstr(counts, ==, "1/5 moved, 1 failed, 3 remaining (50%)");

        web = ev.items->pdata[1];
        g_assert_cmpstr(web->domain, ==, "web");
        g_assert_cmpuint(web->job_id, ==, 9);
        g_assert_null(web->phase);
        ctl_evacuation_update_job(&ev, 9, job);
        g_assert_cmpstr(web->phase, ==, "perform");
        g_assert_cmpfloat_with_epsilon(web->progress, 0.45, 1e-9);
        /* What is shown never goes back; a job of no item changes nothing. */
        ctl_evacuation_update_job(&ev, 9, back);
        g_assert_cmpfloat_with_epsilon(web->progress, 0.45, 1e-9);
        ctl_evacuation_update_job(&ev, 12345, job);
        ctl_evacuation_update_job(&ev, 0, job);

        /* Results replace the items; what the job said stays with its item. */
        ctl_evacuation_update(&ev, later);
        g_assert_true(ctl_evacuation_ended(&ev));
        g_assert_cmpuint(ev.items->len, ==, 1);
        web = ev.items->pdata[0];
        g_assert_cmpstr(web->state, ==, "completed");
        g_assert_cmpstr(web->phase, ==, "perform");
        g_assert_true(web->elapsed_known);
        g_assert_cmpuint(web->elapsed_ms, ==, 3000);
        /* Total is const on the bus: not in later's properties, it stays. */
        g_assert_cmpuint(ev.total, ==, 5);
}

static void test_state_hostile(void) {
        g_auto(CtlEvacuation) ev;
        /* Wrong types and missing keys: ignored, never a crash. */
        g_autoptr(GVariant) props = g_variant_ref_sink(g_variant_new_parsed(
                "{'State': <uint32 3>, 'Total': <'five'>, 'Progress': <7.5>,"
                " 'Results': <[{'domain': <uint32 1>, 'state': <'migrating'>, 'job-id': <'x'>},"
                "              {'domain': <'evil\\u001b[2J\\nname'>}]>}"));
        g_autofree char *block = NULL;
        g_autofree char *table = NULL;
        g_auto(GStrv) lines = NULL;

        ctl_evacuation_init(&ev);
        ctl_evacuation_update(&ev, props);
        g_assert_null(ev.state);
        g_assert_cmpuint(ev.total, ==, 0);
        g_assert_cmpfloat(ev.progress, ==, 0.0);
        g_assert_cmpuint(ev.items->len, ==, 2);
        block = ctl_format_evacuation_progress(&ev, 80, 0);
        table = ctl_format_evacuation_results(&ev, 80);
        /* No escape character, and one line per domain (plus the header). */
        g_assert_null(strchr(block, '\033'));
        g_assert_null(strchr(table, '\033'));
        lines = g_strsplit(block, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        assert_contains(block, "evil [2J name");
}

static void test_item_status(void) {
        static const struct {
                CtlEvacuationItem item;
                const char *status;
        } cases[] = {
                { { .state = "pending" }, "waiting" },
                { { .state = "placing" }, "placing" },
                { { .state = "migrating" }, "migrating" },
                { { .state = "migrating", .offline = true }, "migrating (offline)" },
                { { .state = "migrating", .phase = "perform", .progress = 0.456 }, "perform 45%" },
                { { .state = "migrating", .phase = "postcopy", .progress = 0.8 }, "post-copy 80%" },
                { { .state = "completed" }, "completed" },
                { { .state = "failed", .message = "the link broke" }, "failed: the link broke" },
                { { .state = "failed", .message = "" }, "failed" },
                { { .state = "not-placed", .message = "ssh://hv2: full" }, "not placed: ssh://hv2: full" },
                { { .state = "cancelled" }, "cancelled (stays here)" },
                { { .state = "exploded" }, "exploded" },
                { { 0 }, "?" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *status = ctl_evacuation_item_status(&cases[i].item);
                g_assert_cmpstr(status, ==, cases[i].status);
        }
}

static void test_progress_block(void) {
        g_auto(CtlEvacuation) ev;
        g_autoptr(GVariant) props = running_properties();
        g_autoptr(GVariant) job = g_variant_ref_sink(g_variant_new_parsed(
                "{'Phase': <'perform'>, 'Progress': <0.45>, 'ElapsedMs': <uint64 3000>}"));
        g_autofree char *all = NULL, *narrow = NULL, *short_ = NULL;
        g_auto(GStrv) lines = NULL;

        ctl_evacuation_init(&ev);
        ctl_evacuation_update(&ev, props);
        ctl_evacuation_update_job(&ev, 9, job);

        /* No limit: every domain in the daemon's order, aligned columns. */
        all = ctl_format_evacuation_progress(&ev, 0, 0);
        g_assert_cmpstr(
                all, ==,
                "  small  ssh://hv2  completed\n"
                "  web    ssh://hv3  perform 45%\n"
                "  huge   -          not placed: ssh://hv2: not enough memory; ssh://hv3: not enough "
                "memory\n"
                "  db     -          placing\n"
                "  old    -          waiting\n");

        /* Each line cut to the width. */
        narrow = ctl_format_evacuation_progress(&ev, 40, 0);
        lines = g_strsplit(narrow, "\n", -1);
        for (char **l = lines; *l; l++)
                g_assert_cmpuint(g_utf8_strlen(*l, -1), <=, 40);
        g_clear_pointer(&lines, g_strfreev);

        /* A short terminal: the moving ones first, and how many are left out. */
        short_ = ctl_format_evacuation_progress(&ev, 0, 3);
        g_assert_cmpstr(short_, ==,
                        "  web    ssh://hv3  perform 45%\n"
                        "  db     -          placing\n"
                        "  ... and 3 more\n");
}

static void test_results_table(void) {
        g_auto(CtlEvacuation) ev;
        g_autoptr(GVariant) props = running_properties();
        g_autoptr(GVariant) history = g_variant_ref_sink(g_variant_new_parsed(
                "[{'id': <uint64 7>, 'elapsed-ms': <uint64 2500>}, {'id': <uint64 9>, 'elapsed-ms': <uint64 "
                "65000>},"
                " {'id': <uint64 100>, 'elapsed-ms': <uint64 1>}, {'elapsed-ms': <uint64 5>}]"));
        g_autofree char *table = NULL, *wrapped = NULL;
        g_autoptr(JsonNode) json = NULL;
        g_autofree char *json_text = NULL;

        ctl_evacuation_init(&ev);
        ctl_evacuation_update(&ev, props);
        ctl_evacuation_update_history(&ev, history);

        table = ctl_format_evacuation_results(&ev, 0);
        g_assert_cmpstr(
                table, ==,
                "DOMAIN  DESTINATION  RESULT      TIME   MESSAGE\n"
                "small   ssh://hv2    completed   2.5 s\n"
                "web     ssh://hv3    migrating   1m05s\n"
                "huge    -            not-placed  -      ssh://hv2: not enough memory; ssh://hv3: not "
                "enough memory\n"
                "db      -            placing     -\n"
                "old     -            pending     -\n");

        /* Long messages wrap under MESSAGE. */
        wrapped = ctl_format_evacuation_results(&ev, 70);
        assert_contains(wrapped,
                        "huge    -            not-placed  -      ssh://hv2: not enough memory;\n"
                        "                                        ssh://hv3: not enough memory\n");

        json = ctl_evacuation_to_json(&ev, "/org/vmigrate/Migrate1/evacuation/3");
        {
                g_autoptr(JsonGenerator) gen = json_generator_new();
                json_generator_set_root(gen, json);
                json_text = json_generator_to_data(gen, NULL);
        }
        assert_contains(json_text, "\"evacuation\":\"/org/vmigrate/Migrate1/evacuation/3\"");
        assert_contains(json_text, "\"result\":\"running\"");
        assert_contains(json_text, "\"total\":5");
        assert_contains(json_text,
                        "{\"domain\":\"small\",\"uuid\":\"u1\",\"state\":\"completed\",\"destination\":"
                        "\"ssh://hv2\",\"message\":\"\",\"job-id\":7,\"offline\":false,"
                        "\"memory-bytes\":536870912,\"elapsed-ms\":2500}");
        /* Without a time, no elapsed-ms key at all. */
        assert_contains(json_text, "\"job-id\":0,\"offline\":true,\"memory-bytes\":4294967296}");
}

/* ---- history ---- */

static GVariant *history_jobs(void) {
        /* 2026-12-03 22:10:25 UTC = 1796335825 s */
        return g_variant_ref_sink(g_variant_new_parsed(
                "[{'id': <uint64 41>, 'domain': <'demo'>, 'uuid': <'u1'>, 'kind': <'migration-out'>,"
                "  'phase': <'completed'>, 'peer': <'ssh://hv2'>, 'elapsed-ms': <uint64 4200>,"
                "  'downtime-ms': <uint64 35>, 'data-processed': <uint64 1073741824>, 'error': <''>,"
                "  'started-at': <uint64 1796335820800000>, 'ended-at': <uint64 1796335825000000>},"
                " {'id': <uint64 42>, 'domain': <'web'>, 'uuid': <'u2'>, 'kind': <'migration-in'>,"
                "  'phase': <'failed'>, 'peer': <'hv1.example.org'>, 'elapsed-ms': <uint64 65000>,"
                "  'data-processed': <uint64 0>,"
                "  'error': <'the source closed the connection during the migration: broken pipe'>,"
                "  'ended-at': <uint64 1796335890000000>}]"));
}

static void test_history_table(void) {
        g_autoptr(GVariant) jobs = history_jobs();
        g_autoptr(GVariant) empty = g_variant_ref_sink(g_variant_new_parsed("@aa{sv} []"));
        g_autofree char *full = ctl_format_history(jobs, 0);
        g_autofree char *cut = ctl_format_history(jobs, 120);
        g_autofree char *tiny = ctl_format_history(jobs, 20);
        g_autofree char *header = ctl_format_history(empty, 80);
        g_auto(GStrv) lines = NULL;

        g_assert_cmpstr(
                full, ==,
                "ENDED                JOB  DOMAIN  KIND  PEER             RESULT     TIME   DOWNTIME  "
                "DATA   ERROR\n"
                "2026-12-03 22:10:25  41   demo    out   ssh://hv2        completed  4.2 s  35 ms     "
                "1 GiB  -\n"
                "2026-12-03 22:11:30  42   web     in    hv1.example.org  failed     1m05s  -         "
                "0 B    the source closed the connection during the migration: broken pipe\n");
        /* The error is cut to the width, and says so. */
        lines = g_strsplit(cut, "\n", -1);
        g_assert_cmpuint(g_utf8_strlen(lines[2], -1), ==, 120);
        g_assert_true(g_str_has_suffix(lines[2], "the source closed the con..."));
        g_clear_pointer(&lines, g_strfreev);
        /* Too narrow: the other columns stay whole, the error keeps a few characters. */
        lines = g_strsplit(tiny, "\n", -1);
        g_assert_true(g_str_has_suffix(lines[2], "  the sourc..."));
        g_assert_cmpstr(header, ==, "ENDED  JOB  DOMAIN  KIND  PEER  RESULT  TIME  DOWNTIME  DATA  ERROR\n");
}

static void test_history_hostile(void) {
        g_autoptr(GVariant) jobs = g_variant_ref_sink(g_variant_new_parsed(
                "[{'id': <'not a number'>, 'domain': <'a\\tb\\u001b]0;pwned\\u0007'>, 'kind': <'teleport'>,"
                "  'ended-at': <uint64 0>, 'error': <'line1\\nline2'>}, @a{sv} {}]"));
        g_autofree char *table = ctl_format_history(jobs, 0);
        g_auto(GStrv) lines = g_strsplit(table, "\n", -1);

        g_assert_null(strchr(table, '\033'));
        g_assert_null(strchr(table, '\a'));
        g_assert_null(strchr(table, '\t'));
        /* header, two rows, and the empty string after the last newline */
        g_assert_cmpuint(g_strv_length(lines), ==, 4);
        assert_contains(lines[1], "-      -    a b ]0;pwned   teleport");
        assert_contains(lines[1], "line1 line2");
        g_assert_true(g_str_has_prefix(lines[2], "-      -    -              -  "));
}

static void test_history_json(void) {
        g_autoptr(GVariant) jobs = history_jobs();
        g_autoptr(JsonNode) node = ctl_history_to_json(jobs);
        JsonArray *array;
        JsonObject *first;

        g_assert_true(JSON_NODE_HOLDS_ARRAY(node));
        array = json_node_get_array(node);
        g_assert_cmpuint(json_array_get_length(array), ==, 2);
        first = json_array_get_object_element(array, 0);
        g_assert_cmpint(json_object_get_int_member(first, "id"), ==, 41);
        g_assert_cmpint(json_object_get_int_member(first, "elapsed-ms"), ==, 4200);
        g_assert_cmpstr(json_object_get_string_member(first, "kind"), ==, "migration-out");
        g_assert_cmpint(json_object_get_int_member(first, "ended-at"), ==, 1796335825000000);
        /* The error in full, not cut. */
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(array, 1), "error"), ==,
                        "the source closed the connection during the migration: broken pipe");
}

static void test_local_time(void) {
        g_autofree char *t = ctl_format_local_time_usec(UINT64_C(1796335825123456));
        g_autofree char *none = ctl_format_local_time_usec(0);
        g_autofree char *huge = ctl_format_local_time_usec(UINT64_MAX);

        g_assert_cmpstr(t, ==, "2026-12-03 22:10:25");
        g_assert_cmpstr(none, ==, "-");
        g_assert_cmpstr(huge, ==, "-");
}

/* ---- the command line, through the program ---- */

/* Runs vmigratectl with a bus that is not there; its status and stderr. */
static int run_ctl(const char *const *args, char **ret_stderr) {
        const char *program = g_getenv("VMIGRATECTL");
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        int status = 0;

        g_assert_nonnull(program);
        g_ptr_array_add(argv, (char *) program);
        g_ptr_array_add(argv, (char *) "--no-ask-password");
        g_ptr_array_add(argv, (char *) "--host=unix:///nonexistent/vmigrate-test-evacuate/bus");
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (char *) *a);
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                   ret_stderr, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_cli(void) {
        static const struct {
                const char *args[10];
                int status;
                const char *message; /* on stderr */
        } cases[] = {
                /* the new options, misplaced */
                { { "history", "--order=priority" },
                  2,
                  "--order only applies to 'evacuate', not to 'history'" },
                { { "list", "--inactive" }, 2, "--inactive only applies to 'evacuate', not to 'list'" },
                { { "maintenance", "--maintenance" }, 2, "--maintenance only applies to 'evacuate'" },
                { { "list", "--parallel=4" }, 2, "--parallel=N only applies to 'evacuate', not to 'list'" },
                { { "migrate", "d", "hv2", "--parallel=4" },
                  2,
                  "(migrate's --parallel takes no value: give "
                  "--parallel-connections=N)" },
                { { "status", "d", "--domain=x" },
                  2,
                  "--domain only applies to 'history', not to 'status'" },
                { { "evacuate", "hv2", "--limit=3" },
                  2,
                  "--limit only applies to 'history', not to 'evacuate'" },
                { { "list", "--bandwidth=1G" },
                  2,
                  "--bandwidth only applies to 'migrate' and 'evacuate', not to "
                  "'list'" },
                { { "list", "--postcopy-resume" },
                  2,
                  "--postcopy-resume only applies to 'migrate', not to 'list'" },
                { { "history", "--detach" }, 2, "--detach only applies to 'migrate' and 'evacuate'" },
                { { "history", "--timeout=3" },
                  2,
                  "--timeout only applies to 'shutdown', 'migrate' and 'evacuate'" },
                { { "maintenance", "--postcopy" },
                  2,
                  "--postcopy only applies to 'migrate', 'evacuate' and" },
                /* migrate's options that concern one domain, on evacuate */
                { { "evacuate", "hv2", "--destination-name=x" },
                  2,
                  "--destination-name only applies to 'migrate', "
                  "not to 'evacuate'" },
                { { "evacuate", "hv2", "--xml=/dev/null" },
                  2,
                  "--destination-xml only applies to 'migrate'" },
                { { "evacuate", "hv2", "--offline" },
                  2,
                  "--offline only applies to 'migrate', not to 'evacuate'" },
                { { "evacuate", "hv2", "--postcopy-resume" },
                  2,
                  "--postcopy-resume only applies to 'migrate'" },
                { { "evacuate", "hv2", "--dry-run" },
                  2,
                  "--dry-run only applies to 'migrate', not to 'evacuate'" },
                /* bad values */
                { { "evacuate", "hv2", "--order=random" }, 2, "invalid --order 'random'" },
                { { "evacuate", "hv2", "--parallel=0" }, 2, "invalid --parallel '0'" },
                { { "evacuate", "hv2", "--parallel=65" }, 2, "from 1 to 64" },
                { { "evacuate", "hv2", "--parallel" },
                  2,
                  "evacuate's --parallel needs a value, --parallel=N" },
                { { "evacuate", "hv2", "--bandwidth=fast" }, 2, "invalid --bandwidth 'fast'" },
                { { "evacuate", "hv2", "--compression=zstd", "--timeout-action=nap" }, 2, "timeout-action" },
                { { "evacuate" }, 2, "'evacuate' needs DESTINATION..." },
                { { "evacuate", "hv2", "root@hv2" }, 2, "DESTINATION 'root@hv2' is given twice" },
                { { "evacuate", "ftp://hv2" }, 2, "invalid DESTINATION 'ftp://hv2'" },
                { { "history", "--limit=0" }, 2, "invalid --limit '0'" },
                { { "history", "--limit=4294967296" }, 2, "invalid --limit" },
                { { "history", "extra" }, 2, "too many arguments for 'history'" },
                { { "maintenance", "maybe" }, 2, "'maintenance' takes 'on', 'off' or nothing" },
                { { "maintenance", "on", "off" }, 2, "too many arguments for 'maintenance'" },
                /* accepted: then the missing bus (status 3) */
                { { "evacuate", "hv2", "hv3", "--order=priority", "--parallel=64", "--inactive",
                    "--maintenance" },
                  3,
                  "cannot connect" },
                { { "evacuate", "hv2", "--bandwidth=1G", "--tls", "--postcopy", "--timeout=30", "--parallel",
                    "--parallel=2" },
                  2,
                  "needs a value" },
                { { "evacuate", "hv2", "--bandwidth=1G", "--tls", "--postcopy", "--timeout=30",
                    "--timeout-postcopy", "--detach" },
                  3,
                  "cannot connect" },
                { { "history", "--domain=demo", "--limit=3", "--json" }, 3, "cannot connect" },
                { { "history" }, 3, "cannot connect" },
                { { "maintenance" }, 3, "cannot connect" },
                { { "maintenance", "off" }, 3, "cannot connect" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *err = NULL;
                g_autofree char *joined = g_strjoinv(" ", (char **) cases[i].args);
                int status = run_ctl(cases[i].args, &err);

                g_test_message("vmigratectl %s: %d: %s", joined, status, err);
                g_assert_cmpint(status, ==, cases[i].status);
                assert_contains(err, cases[i].message);
        }
}

static void test_help(void) {
        static const char *const commands[] = { "history", "maintenance", "evacuate" };
        g_autofree char *main_help = NULL;
        int status;

        {
                const char *argv[] = { g_getenv("VMIGRATECTL"), "--help", NULL };
                g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                           &main_help, NULL, &status, NULL));
                g_assert_cmpint(status, ==, 0);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
                const char *argv[] = { g_getenv("VMIGRATECTL"), commands[i], "--help", NULL };
                g_autofree char *help = NULL;
                g_autofree char *listed = g_strdup_printf("\n  %s ", commands[i]);

                assert_contains(main_help, listed);
                g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &help,
                                           NULL, &status, NULL));
                g_assert_cmpint(status, ==, 0);
                assert_contains(help, "Examples:");
                assert_contains(help, "busctl call");
        }
        assert_contains(main_help, "org.vmigrate.migrate1.evacuate");
        assert_contains(main_help, "org.vmigrate.migrate1.manage-host");
}

int main(int argc, char *argv[]) {
        /* The history's local times, in a zone known here. */
        setenv("TZ", "UTC", 1);
        tzset();
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/evacuate/options/valid", test_options_valid);
        g_test_add_func("/evacuate/options/invalid", test_options_invalid);
        g_test_add_func("/evacuate/options/migrate-args", test_migrate_args);
        g_test_add_func("/evacuate/destinations", test_destinations);
        g_test_add_func("/evacuate/state/update", test_state_update);
        g_test_add_func("/evacuate/state/hostile", test_state_hostile);
        g_test_add_func("/evacuate/format/item-status", test_item_status);
        g_test_add_func("/evacuate/format/progress", test_progress_block);
        g_test_add_func("/evacuate/format/results", test_results_table);
        g_test_add_func("/history/format/table", test_history_table);
        g_test_add_func("/history/format/hostile", test_history_hostile);
        g_test_add_func("/history/format/json", test_history_json);
        g_test_add_func("/history/format/local-time", test_local_time);
        g_test_add_func("/ctl/cli/new-options", test_cli);
        g_test_add_func("/ctl/cli/help", test_help);
        return g_test_run();
}
