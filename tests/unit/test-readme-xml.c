/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The README's tables of supported domain XML, tested against the parser.
 *
 * Every row of a table under "## Supported domain XML" whose header starts
 * with "element" has examples in data/readme-xml-examples.txt, under the
 * row's first cell as written in the README (with `\|` read as `|`). What
 * an example must do comes from the README, not from the examples file:
 *
 *   xml <body>           the row's status cell says what happens: it starts
 *                        with "supported" or "accepted" (the parser takes
 *                        it), "kept" (it takes it and GetXML gives the
 *                        row's element back), or "refused" (the parser
 *                        refuses it with a message naming the element).
 *   refused WORD <body>  the row's status says "refused" and the row names
 *                        WORD (the refusals of a row that names several,
 *                        or one inside a supported row: "`fd` refused");
 *                        the parser refuses it with a message naming WORD.
 *
 * The row's element is the last tag of the first code span of its first
 * cell: `<features><vmport state>` names <vmport>. A <body> that does not
 * start with <domain goes into a small domain of its own; indented lines
 * continue the example above them (after a space).
 *
 * A row without examples, examples without a row, a status the test cannot
 * read, or a row with more or fewer cells than its header (an unescaped `|`
 * inside a code span, which also breaks GitHub's rendering) fail the test,
 * so the README and the parser cannot drift apart silently.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "domain-xml.h"
#include "errors.h"

#define DOMAIN_START "<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory>"
#define DOMAIN_END "</domain>"

typedef enum ExampleKind {
        EXAMPLE_XML,
        EXAMPLE_REFUSED,
} ExampleKind;

typedef struct Example {
        ExampleKind kind;
        char *word; /* EXAMPLE_REFUSED: what the row and the message name */
        GString *body;
        unsigned line; /* in the examples file */
} Example;

typedef struct ExampleSet {
        char *row; /* the first cell it belongs to */
        GPtrArray *examples;
        bool used; /* a README row has it */
} ExampleSet;

typedef struct Row {
        char *section; /* the ### heading above the table */
        char *element_cell;
        char *status_cell;
        unsigned line; /* in README.md */
        unsigned cells, header_cells;
        ExampleSet *set; /* NULL: no examples */
} Row;

static void example_free(Example *e) {
        g_free(e->word);
        g_string_free(e->body, TRUE);
        g_free(e);
}

static void example_set_free(ExampleSet *s) {
        g_free(s->row);
        g_ptr_array_unref(s->examples);
        g_free(s);
}

static void row_free(Row *r) {
        g_free(r->section);
        g_free(r->element_cell);
        g_free(r->status_cell);
        g_free(r);
}

static GPtrArray *rows;          /* Row */
static GPtrArray *example_sets;  /* ExampleSet, in file order */
static GHashTable *sets_by_row;  /* first cell → ExampleSet, borrowed */
static GPtrArray *file_problems; /* what is wrong in the examples file itself */

static char *read_source_file(const char *first, ...) G_GNUC_NULL_TERMINATED;

static char *read_source_file(const char *first, ...) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) parts = g_ptr_array_new();
        va_list ap;
        char *text = NULL;

        g_ptr_array_add(parts, (char *) g_test_get_dir(G_TEST_DIST));
        va_start(ap, first);
        for (const char *p = first; p; p = va_arg(ap, const char *))
                g_ptr_array_add(parts, (char *) p);
        va_end(ap);
        g_ptr_array_add(parts, NULL);

        g_autofree char *path = g_build_filenamev((char **) parts->pdata);
        if (!g_file_get_contents(path, &text, NULL, &error))
                g_error("%s: %s", path, error->message);
        return text;
}

/* ---- the examples file ---- */

static void load_examples(void) {
        g_autofree char *text = read_source_file("data", "readme-xml-examples.txt", NULL);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        ExampleSet *set = NULL;
        Example *last = NULL;

        example_sets = g_ptr_array_new_with_free_func((GDestroyNotify) example_set_free);
        sets_by_row = g_hash_table_new(g_str_hash, g_str_equal);
        file_problems = g_ptr_array_new_with_free_func(g_free);

        for (unsigned n = 0; lines[n]; n++) {
                const char *line = lines[n];
                g_autofree char *stripped = g_strstrip(g_strdup(line));

                if (stripped[0] == '\0' || stripped[0] == '#')
                        continue;
                if (line[0] == ' ' || line[0] == '\t') {
                        if (!last)
                                g_ptr_array_add(file_problems,
                                                g_strdup_printf("line %u continues no example", n + 1));
                        else
                                g_string_append_printf(last->body, " %s", stripped);
                        continue;
                }
                last = NULL;
                if (line[0] == '[') {
                        const char *end = strrchr(line, ']');

                        if (!end || end == line + 1) {
                                g_ptr_array_add(
                                        file_problems,
                                        g_strdup_printf("line %u: want [first cell of a row]", n + 1));
                                set = NULL;
                                continue;
                        }
                        set = g_new0(ExampleSet, 1);
                        set->row = g_strndup(line + 1, end - line - 1);
                        set->examples = g_ptr_array_new_with_free_func((GDestroyNotify) example_free);
                        g_ptr_array_add(example_sets, set);
                        if (!g_hash_table_insert(sets_by_row, set->row, set))
                                g_ptr_array_add(
                                        file_problems,
                                        g_strdup_printf("line %u: [%s] given twice", n + 1, set->row));
                        continue;
                }

                g_autoptr(GString) body = NULL;
                g_autofree char *word = NULL;
                ExampleKind kind;
                if (g_str_has_prefix(line, "xml ")) {
                        kind = EXAMPLE_XML;
                        body = g_string_new(line + strlen("xml "));
                } else if (g_str_has_prefix(line, "refused ")) {
                        const char *w = line + strlen("refused ");
                        const char *space = strchr(w, ' ');

                        if (!space) {
                                g_ptr_array_add(
                                        file_problems,
                                        g_strdup_printf("line %u: want 'refused WORD <xml>'", n + 1));
                                continue;
                        }
                        kind = EXAMPLE_REFUSED;
                        word = g_strndup(w, space - w);
                        body = g_string_new(space + 1);
                } else {
                        g_ptr_array_add(file_problems,
                                        g_strdup_printf("line %u: want '[row]', 'xml <xml>' or "
                                                        "'refused WORD <xml>'",
                                                        n + 1));
                        continue;
                }
                if (!set) {
                        g_ptr_array_add(file_problems,
                                        g_strdup_printf("line %u: example before any [row]", n + 1));
                        continue;
                }
                last = g_new0(Example, 1);
                last->kind = kind;
                last->word = g_steal_pointer(&word);
                last->body = g_steal_pointer(&body);
                last->line = n + 1;
                g_ptr_array_add(set->examples, last);
        }
}

/* ---- the README's tables ---- */

/* Cells as GitHub splits them: on every `|` that is not escaped, code
 * spans included. */
static GPtrArray *split_cells(const char *line) {
        GPtrArray *cells = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) cell = g_string_new(NULL);
        const char *p = line;

        if (*p == '|')
                p++;
        for (; *p; p++) {
                if (p[0] == '\\' && p[1] == '|') {
                        g_string_append_c(cell, '|');
                        p++;
                } else if (*p == '|') {
                        g_ptr_array_add(cells, g_strstrip(g_strdup(cell->str)));
                        g_string_truncate(cell, 0);
                } else
                        g_string_append_c(cell, *p);
        }
        g_autofree char *rest = g_strstrip(g_strdup(cell->str));
        if (rest[0] != '\0')
                g_ptr_array_add(cells, g_steal_pointer(&rest));
        return cells;
}

static void load_readme(void) {
        g_autofree char *text = read_source_file("..", "..", "README.md", NULL);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        g_autofree char *section = NULL;
        bool in_part = false;
        unsigned header_cells = 0; /* 0: not in an element table */

        rows = g_ptr_array_new_with_free_func((GDestroyNotify) row_free);
        for (unsigned n = 0; lines[n]; n++) {
                const char *line = lines[n];

                if (g_str_has_prefix(line, "## ")) {
                        in_part = g_str_equal(line, "## Supported domain XML");
                        continue;
                }
                if (!in_part)
                        continue;
                if (g_str_has_prefix(line, "### ")) {
                        g_free(section);
                        section = g_strdup(line + strlen("### "));
                        continue;
                }
                if (line[0] != '|') {
                        header_cells = 0;
                        continue;
                }

                g_autoptr(GPtrArray) cells = split_cells(line);
                if (header_cells == 0) {
                        if (cells->len >= 2 && g_str_equal(cells->pdata[0], "element"))
                                header_cells = cells->len;
                        /* Skip the separator line below the header. */
                        if (lines[n + 1] && g_str_has_prefix(lines[n + 1], "|-"))
                                n++;
                        continue;
                }
                Row *r = g_new0(Row, 1);
                r->section = g_strdup(section ? section : "top");
                r->element_cell = g_strdup(cells->len > 0 ? (char *) cells->pdata[0] : "");
                r->status_cell = g_strdup(cells->len > 1 ? (char *) cells->pdata[1] : "");
                r->line = n + 1;
                r->cells = cells->len;
                r->header_cells = header_cells;
                r->set = g_hash_table_lookup(sets_by_row, r->element_cell);
                if (r->set)
                        r->set->used = true;
                g_ptr_array_add(rows, r);
        }
}

/* ---- what a row says ---- */

typedef enum Status {
        STATUS_UNKNOWN,
        STATUS_ACCEPTED, /* "supported", "accepted" */
        STATUS_KEPT,
        STATUS_REFUSED,
} Status;

static Status row_status(const Row *r) {
        const char *p = r->status_cell;
        size_t len;

        while (*p == '*' || *p == ' ')
                p++;
        len = strspn(p, "abcdefghijklmnopqrstuvwxyz");
        if (len == strlen("kept") && g_str_has_prefix(p, "kept"))
                return STATUS_KEPT;
        if ((len == strlen("supported") && g_str_has_prefix(p, "supported")) ||
            (len == strlen("accepted") && g_str_has_prefix(p, "accepted")))
                return STATUS_ACCEPTED;
        if (len == strlen("refused") && g_str_has_prefix(p, "refused"))
                return STATUS_REFUSED;
        return STATUS_UNKNOWN;
}

/* The last tag in the first code span of the element cell, NULL if none. */
static char *row_element(const Row *r) {
        const char *start = strchr(r->element_cell, '`');
        const char *end = start ? strchr(start + 1, '`') : NULL;
        const char *tag = NULL;

        if (!end)
                return NULL;
        for (const char *p = start + 1; p < end; p++)
                if (*p == '<' && p[1] != '/')
                        tag = p + 1;
        if (!tag)
                return NULL;
        return g_strndup(tag,
                         strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-"));
}

static char *document_of(const Example *e) {
        if (g_str_has_prefix(e->body->str, "<domain"))
                return g_strdup(e->body->str);
        return g_strconcat(DOMAIN_START, e->body->str, DOMAIN_END, NULL);
}

/* g_test_fail_printf() keeps one message per test: each failure of a row
 * also goes to the log, so a row that is wrong in several ways says all. */
#define row_fail(...)                                                                                       \
        do {                                                                                                \
                g_autofree char *_m = g_strdup_printf(__VA_ARGS__);                                         \
                g_test_message("FAIL: %s", _m);                                                             \
                g_test_fail_printf("%s", _m);                                                               \
        } while (0)

/* ---- the tests ---- */

static void check_example(const Row *r, Status status, const char *element, const Example *e) {
        g_autofree char *xml = document_of(e);
        g_autoptr(GError) error = NULL;
        g_autoptr(DomainDef) def = NULL;
        bool refuse = e->kind == EXAMPLE_REFUSED || status == STATUS_REFUSED;
        const char *named = e->kind == EXAMPLE_REFUSED ? e->word : element;
        int r_parse;

        if (e->kind == EXAMPLE_REFUSED) {
                g_autofree char *status_lower = g_ascii_strdown(r->status_cell, -1);

                if (!strstr(status_lower, "refused") ||
                    (!strstr(r->element_cell, e->word) && !strstr(r->status_cell, e->word))) {
                        row_fail("README.md:%u says nothing refused about '%s', but "
                                 "readme-xml-examples.txt:%u expects it refused",
                                 r->line, e->word, e->line);
                        return;
                }
        } else if (!element) {
                row_fail("README.md:%u: the row names no <element> in a code span; "
                         "readme-xml-examples.txt:%u must say 'refused WORD'",
                         r->line, e->line);
                return;
        }

        r_parse = domain_def_parse(xml, strlen(xml), &def, &error);
        if (refuse) {
                if (r_parse >= 0) {
                        row_fail("README.md:%u says refused, but the parser takes "
                                 "readme-xml-examples.txt:%u: %s",
                                 r->line, e->line, xml);
                        return;
                }
                if (!g_error_matches(error, VM_ERROR, VM_ERROR_INVALID_XML) ||
                    !strstr(error->message, named))
                        row_fail("README.md:%u: the refusal of readme-xml-examples.txt:%u "
                                 "does not name '%s': %s",
                                 r->line, e->line, named, error ? error->message : "");
                else
                        g_test_message("refused as the README says: %s", error->message);
                return;
        }

        if (r_parse < 0) {
                row_fail("README.md:%u says %s, but the parser refuses "
                         "readme-xml-examples.txt:%u: %s",
                         r->line, status == STATUS_KEPT ? "kept" : "supported", e->line,
                         error ? error->message : "");
                return;
        }
        if (status == STATUS_KEPT) {
                g_autofree char *formatted = domain_def_format(def);
                g_autofree char *open_tag = g_strconcat("<", element, NULL);

                if (!strstr(formatted, open_tag))
                        row_fail("README.md:%u says kept, but GetXML of "
                                 "readme-xml-examples.txt:%u has no %s>: %s",
                                 r->line, e->line, open_tag, formatted);
        }
}

static void test_row(gconstpointer data) {
        const Row *r = data;
        Status status = row_status(r);
        g_autofree char *element = row_element(r);

        g_test_message("README.md:%u: %s | %s", r->line, r->element_cell, r->status_cell);
        if (r->cells != r->header_cells) {
                row_fail("README.md:%u has %u cells, its header %u: escape a '|' inside a "
                         "code span as '\\|'",
                         r->line, r->cells, r->header_cells);
                return;
        }
        if (status == STATUS_UNKNOWN) {
                row_fail("README.md:%u: the status should start with supported, accepted, "
                         "kept or refused: '%s'",
                         r->line, r->status_cell);
                return;
        }
        if (!r->set || r->set->examples->len == 0) {
                row_fail("README.md:%u: no example in tests/unit/data/readme-xml-examples.txt "
                         "under [%s]",
                         r->line, r->element_cell);
                return;
        }
        for (unsigned i = 0; i < r->set->examples->len; i++)
                check_example(r, status, element, r->set->examples->pdata[i]);
}

static void test_examples_have_rows(void) {
        for (unsigned i = 0; i < file_problems->len; i++)
                row_fail("readme-xml-examples.txt %s", (char *) file_problems->pdata[i]);
        for (unsigned i = 0; i < example_sets->len; i++) {
                const ExampleSet *s = example_sets->pdata[i];

                if (!s->used)
                        row_fail("readme-xml-examples.txt: [%s] is no row of README.md's "
                                 "tables of supported domain XML",
                                 s->row);
        }
}

static void test_tables_found(void) {
        /* A renamed section or header must not make every check vanish. */
        g_assert_cmpuint(rows->len, >=, 40);
}

static char *slug(const char *text) {
        GString *s = g_string_new(NULL);

        for (const char *p = text; *p; p++) {
                if (g_ascii_isalnum(*p))
                        g_string_append_c(s, g_ascii_tolower(*p));
                else if (s->len > 0 && s->str[s->len - 1] != '-')
                        g_string_append_c(s, '-');
        }
        while (s->len > 0 && s->str[s->len - 1] == '-')
                g_string_truncate(s, s->len - 1);
        return g_string_free(s, FALSE);
}

int main(int argc, char **argv) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        load_examples();
        load_readme();

        g_test_add_func("/readme-xml/tables-found", test_tables_found);
        g_test_add_func("/readme-xml/examples-have-rows", test_examples_have_rows);
        for (unsigned i = 0; i < rows->len; i++) {
                const Row *row = rows->pdata[i];
                g_autofree char *section = slug(row->section);
                g_autofree char *element = slug(row->element_cell);
                g_autofree char *path =
                        g_strdup_printf("/readme-xml/%s/%02u-%.40s", section, i + 1, element);

                g_test_add_data_func(path, row, test_row);
        }

        r = g_test_run();
        g_ptr_array_unref(rows);
        g_hash_table_unref(sets_by_row);
        g_ptr_array_unref(example_sets);
        g_ptr_array_unref(file_problems);
        return r;
}
