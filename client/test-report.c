/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmigratectl report without a bus: the SVG writer (escaping, numbers) and
 * the picture drawn from GetJobStats-like statistics, read back with
 * libxml2 as any SVG reader would. */
#include <errno.h>
#include <locale.h>
#include <math.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "ctl-report.h"
#include "svg.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

static char *escaped(const char *text) {
        GString *out = g_string_new(NULL);
        svg_append_escaped(out, text);
        return g_string_free(out, false);
}

static char *number(double v) {
        GString *out = g_string_new(NULL);
        svg_append_number(out, v);
        return g_string_free(out, false);
}

static void test_escape(void) {
        g_autofree char *a = escaped("<b>Tom & 'Jerry' \"x\"</b>");
        g_autofree char *b = escaped("tab\tnew\nline\x01\x1f\x7f end");
        g_autofree char *c = escaped("caf\xc3\xa9 \xff!");
        g_autofree char *d = escaped(NULL);

        g_assert_cmpstr(a, ==, "&lt;b&gt;Tom &amp; &apos;Jerry&apos; &quot;x&quot;&lt;/b&gt;");
        /* XML 1.0 allows no control character, not even as a reference. */
        g_assert_cmpstr(b, ==, "tab new line    end");
        /* UTF-8 kept, invalid bytes replaced. */
        g_assert_cmpstr(c, ==, "caf\xc3\xa9 \xef\xbf\xbd!");
        g_assert_cmpstr(d, ==, "");
}

/* A dot whatever the locale, at most two decimals, no "-0". */
static void test_numbers(void) {
        static const struct {
                double v;
                const char *text;
        } cases[] = {
                { 0, "0" },      { 12, "12" },       { 12.5, "12.5" },   { 0.126, "0.13" },
                { -0.001, "0" }, { -3.25, "-3.25" }, { 1e6, "1000000" }, { NAN, "0" },
        };
        /* A locale with a decimal comma, where there is one. */
        const char *old = setlocale(LC_NUMERIC, NULL);
        g_autofree char *saved = g_strdup(old);
        bool comma = setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8");

        if (!comma)
                g_test_message("no locale with a decimal comma here: checked in C only");
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *t = number(cases[i].v);
                g_assert_cmpstr(t, ==, cases[i].text);
        }
        setlocale(LC_NUMERIC, saved);
}

/* ---- the picture ---- */

typedef struct TestSample {
        guint64 t_ms;
        const char *event, *detail;
        guint64 pass, remaining_mib, dirty_mib, link_mib;
} TestSample;

static GVariant *stats_new(const char *kind, const char *phase, const char *error, guint64 downtime_ms,
                           const TestSample *samples, size_t n) {
        GVariantBuilder b, h;

        g_variant_builder_init(&h, G_VARIANT_TYPE("aa{sv}"));
        for (size_t i = 0; i < n; i++) {
                const TestSample *s = &samples[i];
                g_variant_builder_open(&h, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&h, "{sv}", "t-ms", g_variant_new_uint64(s->t_ms));
                g_variant_builder_add(&h, "{sv}", "event", g_variant_new_string(s->event));
                g_variant_builder_add(&h, "{sv}", "detail",
                                      g_variant_new_string(s->detail ? s->detail : ""));
                g_variant_builder_add(&h, "{sv}", "pass", g_variant_new_uint64(s->pass));
                g_variant_builder_add(&h, "{sv}", "data-remaining",
                                      g_variant_new_uint64(s->remaining_mib << 20));
                g_variant_builder_add(&h, "{sv}", "data-processed", g_variant_new_uint64(0));
                g_variant_builder_add(&h, "{sv}", "dirty-rate", g_variant_new_uint64(s->dirty_mib << 20));
                g_variant_builder_add(&h, "{sv}", "bandwidth", g_variant_new_uint64(s->link_mib << 20));
                g_variant_builder_add(&h, "{sv}", "expected-downtime-ms", g_variant_new_uint64(30));
                g_variant_builder_close(&h);
        }
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(kind));
        g_variant_builder_add(&b, "{sv}", "phase", g_variant_new_string(phase));
        g_variant_builder_add(&b, "{sv}", "peer", g_variant_new_string("ssh://root@hv2.example.org"));
        g_variant_builder_add(&b, "{sv}", "elapsed-ms", g_variant_new_uint64(n ? samples[n - 1].t_ms : 0));
        g_variant_builder_add(&b, "{sv}", "downtime-ms", g_variant_new_uint64(downtime_ms));
        g_variant_builder_add(&b, "{sv}", "data-processed", g_variant_new_uint64(UINT64_C(1536) << 20));
        g_variant_builder_add(&b, "{sv}", "policy", g_variant_new_string("default"));
        if (error)
                g_variant_builder_add(&b, "{sv}", "error", g_variant_new_string(error));
        g_variant_builder_add(&b, "{sv}", "history", g_variant_builder_end(&h));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static const TestSample precopy[] = {
        { 100, "pass", NULL, 1, 1024, 0, 0 },
        { 4000, "pass", NULL, 2, 600, 150, 110 },
        { 5200, "pass", NULL, 3, 420, 160, 112 },
        { 5300, "policy", "step 1: downtime 600 ms", 3, 410, 160, 112 },
        { 6400, "pass", NULL, 4, 250, 100, 115 },
        { 7000, "pass", NULL, 5, 60, 80, 115 },
        { 7400, "switchover", NULL, 5, 0, 80, 115 },
        { 7600, "end", "completed", 5, 0, 80, 115 },
};

static xmlDoc *parse(const char *svg) {
        xmlDoc *doc = xmlReadMemory(svg, (int) strlen(svg), "report.svg", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR);
        g_assert_nonnull(doc);
        return doc;
}

/* The nodes an XPath (prefix s: for SVG) finds. */
static xmlXPathObject *find(xmlDoc *doc, const char *xpath) {
        g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
        xmlXPathObject *o;

        xmlXPathRegisterNs(ctx, BAD_CAST "s", BAD_CAST "http://www.w3.org/2000/svg");
        o = xmlXPathEvalExpression(BAD_CAST xpath, ctx);
        g_assert_nonnull(o);
        return o;
}

static int count(xmlDoc *doc, const char *xpath) {
        g_autoptr(xmlXPathObject) o = find(doc, xpath);
        return o->nodesetval ? o->nodesetval->nodeNr : 0;
}

/* The text of every node the XPath finds, joined by "|". */
static char *texts(xmlDoc *doc, const char *xpath) {
        g_autoptr(xmlXPathObject) o = find(doc, xpath);
        GString *out = g_string_new(NULL);

        for (int i = 0; o->nodesetval && i < o->nodesetval->nodeNr; i++) {
                xmlChar *t = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
                g_string_append_printf(out, "%s%s", i ? "|" : "", (const char *) t);
                xmlFree(t);
        }
        return g_string_free(out, false);
}

static double attr_number(xmlNode *node, const char *name) {
        xmlChar *v = xmlGetProp(node, BAD_CAST name);
        double d;

        g_assert_nonnull(v);
        d = g_ascii_strtod((const char *) v, NULL);
        xmlFree(v);
        return d;
}

/* What a reader needs without a legend: two value axes titled in the
 * colours of their curves, a time axis, a numbered marker per pass, the
 * policy step, the switch-over with its downtime, the title. */
static void test_precopy(void) {
        g_autoptr(GVariant) stats =
                stats_new("migration-out", "completed", NULL, 45, precopy, G_N_ELEMENTS(precopy));
        g_autofree char *svg = NULL, *why = NULL;
        g_autofree char *title = NULL, *axes = NULL, *passes = NULL, *events = NULL, *labels = NULL;
        g_autoptr(xmlDoc) doc = NULL;
        g_autoptr(xmlXPathObject) markers = NULL;
        double last_x = 0;

        g_assert_cmpint(ctl_report_svg(stats, "web-1", &svg, &why), ==, 0);
        g_assert_null(why);
        doc = parse(svg);

        g_assert_cmpint(count(doc, "/s:svg[@width='960' and @height='540']"), ==, 1);
        title = texts(doc, "/s:svg/s:text[@class='title']");
        g_assert_cmpstr(title, ==, "Migration of 'web-1' to ssh://root@hv2.example.org: completed in 7.6 s");
        axes = texts(doc, "//s:g[starts-with(@id, 'axis-')]/s:text[contains(@class, 'axis-title')]");
        g_assert_cmpstr(
                axes, ==,
                "time since the migration started (s)|remaining to send (MiB)|dirty rate and link (MiB/s)");
        /* Ticks: 0 to a round number above the largest value. */
        g_assert_cmpint(count(doc, "//s:g[@id='axis-remaining']/s:text[.='1200']"), ==, 1);
        g_assert_cmpint(count(doc, "//s:g[@id='axis-rate']/s:text[.='160']"), ==, 1);
        g_assert_cmpint(count(doc, "//s:g[@id='axis-time']/s:text[.='8']"), ==, 1);

        /* One marker per pass, left to right, numbered. */
        g_assert_cmpint(count(doc, "//s:circle[@class='pass-marker']"), ==, 5);
        markers = find(doc, "//s:circle[@class='pass-marker']");
        for (int i = 0; markers->nodesetval && i < markers->nodesetval->nodeNr; i++) {
                double x = attr_number(markers->nodesetval->nodeTab[i], "cx");
                g_assert_cmpfloat(x, >, last_x);
                last_x = x;
        }
        passes = texts(doc, "//s:g[@id='passes']/s:text[@class='pass-label']");
        g_assert_cmpstr(passes, ==, "1|2|3|4|5");
        g_assert_cmpint(count(doc,
                              "//s:circle[@class='pass-marker']/s:title[starts-with(., 'pass 2 at 4.0 s: "
                              "600.0 MiB to send')]"),
                        ==, 1);

        events = texts(doc, "//s:g[@id='events']/s:text");
        g_assert_cmpstr(events, ==, "step 1: downtime 600 ms|switch-over, downtime 45 ms|end: completed");
        g_assert_cmpint(count(doc, "//s:g[@id='events']/s:rect[@class='downtime']"), ==, 1);
        g_assert_cmpint(count(doc, "//s:polyline[@class='remaining']"), ==, 1);
        g_assert_cmpint(count(doc, "//s:polyline[@class='dirty-rate']"), ==, 1);
        labels = texts(doc, "//s:g[@id='curve-labels']/s:text");
        g_assert_cmpstr(labels, ==, "remaining to send|dirty rate of the guest|link throughput");

        /* Self-contained: nothing fetched from elsewhere. */
        g_assert_null(strstr(svg, "href"));
        g_assert_null(strstr(svg, "<script"));
        g_assert_null(strstr(svg, "@import"));
}

/* Post-copy: its own line with the downtime; a failure's error in the
 * title area; a domain name that is not XML-safe. */
static void test_postcopy_failed(void) {
        static const TestSample samples[] = {
                { 200, "pass", NULL, 1, 512, 300, 100 },
                { 5300, "pass", NULL, 2, 500, 310, 100 },
                { 5400, "postcopy", NULL, 2, 480, 310, 100 },
                { 9000, "end", "failed", 2, 100, 0, 100 },
        };
        g_autoptr(GVariant) stats =
                stats_new("migration-out", "failed", "post-copy: the link <broke> & died", 12, samples,
                          G_N_ELEMENTS(samples));
        g_autofree char *svg = NULL, *why = NULL, *title = NULL, *events = NULL, *error = NULL;
        g_autoptr(xmlDoc) doc = NULL;

        g_assert_cmpint(ctl_report_svg(stats, "<a&b>", &svg, &why), ==, 0);
        doc = parse(svg);
        title = texts(doc, "/s:svg/s:title");
        g_assert_cmpstr(title, ==, "Migration of '<a&b>' to ssh://root@hv2.example.org");
        error = texts(doc, "/s:svg/s:text[@class='error-text']");
        g_assert_cmpstr(error, ==, "error: post-copy: the link <broke> & died");
        events = texts(doc, "//s:g[@id='events']/s:text");
        g_assert_cmpstr(events, ==, "switch to post-copy, downtime 12 ms|end: failed");
        g_assert_cmpint(count(doc, "//s:line[@class='postcopy']"), ==, 1);
        g_assert_cmpint(count(doc, "//s:line[@class='switchover']"), ==, 0);
        g_assert_cmpint(count(doc, "//s:circle[@class='pass-marker']"), ==, 2);
}

/* A job still running: drawn as far as it got, and said so. */
static void test_running(void) {
        g_autoptr(GVariant) stats = stats_new("migration-out", "perform", NULL, 0, precopy, 3);
        g_autofree char *svg = NULL, *why = NULL, *title = NULL, *events = NULL;
        g_autoptr(xmlDoc) doc = NULL;

        g_assert_cmpint(ctl_report_svg(stats, "web-1", &svg, &why), ==, 0);
        doc = parse(svg);
        title = texts(doc, "/s:svg/s:text[@class='title']");
        g_assert_cmpstr(
                title, ==,
                "Migration of 'web-1' to ssh://root@hv2.example.org: running (perform), 5.2 s so far");
        g_assert_cmpint(count(doc, "//s:circle[@class='pass-marker']"), ==, 3);
        events = texts(doc, "//s:g[@id='events']/s:text");
        g_assert_cmpstr(events, ==, "");
}

/* Many passes: a marker each, but not a number each where they crowd. */
static void test_many_passes(void) {
        g_autofree TestSample *samples = g_new0(TestSample, 301);
        g_autoptr(GVariant) stats = NULL;
        g_autofree char *svg = NULL, *why = NULL;
        g_autoptr(xmlDoc) doc = NULL;
        int labels;

        for (guint i = 0; i < 300; i++)
                samples[i] = (TestSample){ 100 + i * 100, "pass", NULL, i + 1, 300 - i, 100, 90 };
        samples[300] = (TestSample){ 30100, "end", "cancelled", 300, 1, 100, 90 };
        stats = stats_new("migration-out", "cancelled", "cancelled by the user", 0, samples, 301);
        g_assert_cmpint(ctl_report_svg(stats, "busy", &svg, &why), ==, 0);
        doc = parse(svg);
        g_assert_cmpint(count(doc, "//s:circle[@class='pass-marker']"), ==, 300);
        labels = count(doc, "//s:text[@class='pass-label']");
        g_assert_cmpint(labels, <, 100);
        g_assert_cmpint(labels, >, 10);
        /* The last pass is always numbered. */
        g_assert_cmpint(count(doc, "//s:text[@class='pass-label' and .='300']"), ==, 1);
}

/* Nothing to draw: said in a sentence, nothing written. */
static void test_nothing_to_draw(void) {
        static const TestSample end_only[] = { { 50, "end", "failed", 0, 0, 0, 0 } };
        g_autoptr(GVariant) incoming = stats_new("migration-in", "completed", NULL, 0, NULL, 0);
        g_autoptr(GVariant) early =
                stats_new("migration-out", "failed", "Prepare: no space", 0, end_only, 1);
        g_autoptr(GVariant) old = NULL;
        GVariantDict d;

        {
                g_autofree char *svg = NULL, *why = NULL;
                g_assert_cmpint(ctl_report_svg(incoming, "web-1", &svg, &why), ==, -ENODATA);
                g_assert_null(svg);
                g_assert_cmpstr(why, ==,
                                "the last job of domain 'web-1' here was its arrival from "
                                "ssh://root@hv2.example.org: the passes are the source's, draw them there");
        }
        {
                g_autofree char *svg = NULL, *why = NULL;
                g_assert_cmpint(ctl_report_svg(early, "web-1", &svg, &why), ==, -ENODATA);
                g_assert_null(svg);
                g_assert_cmpstr(why, ==,
                                "the last migration of domain 'web-1' ended before it sent any memory: "
                                "Prepare: no space: there is nothing to draw");
        }
        g_variant_dict_init(&d, early);
        g_variant_dict_remove(&d, "history");
        old = g_variant_ref_sink(g_variant_dict_end(&d));
        {
                g_autofree char *svg = NULL, *why = NULL;
                g_assert_cmpint(ctl_report_svg(old, "web-1", &svg, &why), ==, -EPROTO);
                g_assert_null(svg);
                g_assert_nonnull(strstr(why, "keeps no history"));
        }
        /* A record of the job history, after a restart: said so. */
        g_variant_dict_init(&d, old);
        g_variant_dict_insert(&d, "ended-at", "t", (guint64) 1796300000000000);
        g_autoptr(GVariant) archived = g_variant_ref_sink(g_variant_dict_end(&d));
        {
                g_autofree char *svg = NULL, *why = NULL;
                g_assert_cmpint(ctl_report_svg(archived, "web-1", &svg, &why), ==, -ENODATA);
                g_assert_null(svg);
                g_assert_nonnull(strstr(why, "ended before vmigrated last started"));
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/report/svg/escape", test_escape);
        g_test_add_func("/report/svg/numbers-any-locale", test_numbers);
        g_test_add_func("/report/picture/precopy", test_precopy);
        g_test_add_func("/report/picture/postcopy-failed", test_postcopy_failed);
        g_test_add_func("/report/picture/running", test_running);
        g_test_add_func("/report/picture/many-passes", test_many_passes);
        g_test_add_func("/report/picture/nothing-to-draw", test_nothing_to_draw);
        return g_test_run();
}
