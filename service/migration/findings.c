/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Findings: what a pre-flight check found (findings.h). Both hosts make
 * them; the destination's cross the bus to the source, so what is read
 * back is validated like any input from the network.
 */
#include <stdarg.h>
#include <string.h>

#include "findings.h"

struct Findings {
        char *host;
        GPtrArray *items; /* Finding* */
        /* Over FINDINGS_MAX: counted, with the worst severity among them. */
        size_t n_dropped;
        size_t n_dropped_errors;
        FindingSeverity dropped_max;
};

static const char *const severity_words[] = {
        [FINDING_INFO] = "info",
        [FINDING_WARNING] = "warning",
        [FINDING_ERROR] = "error",
};

const char *finding_severity_to_string(FindingSeverity s) {
        return s <= FINDING_ERROR ? severity_words[s] : NULL;
}

int finding_severity_from_string(const char *s) {
        for (size_t i = 0; i < G_N_ELEMENTS(severity_words); i++)
                if (g_strcmp0(s, severity_words[i]) == 0)
                        return (int) i;
        return -1;
}

static bool finding_id_is_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > FINDING_ID_MAX)
                return false;
        for (const char *p = id; *p; p++)
                if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '.' && *p != '-')
                        return false;
        return true;
}

static VmError code_for_id(const char *id) {
        if (g_str_has_prefix(id, "limits."))
                return VM_ERROR_LIMIT_REACHED;
        if (g_str_equal(id, "domain.state"))
                return VM_ERROR_INVALID_STATE;
        if (g_str_has_prefix(id, "domain."))
                return VM_ERROR_DOMAIN_EXISTS;
        if (g_str_equal(id, "host.same"))
                return VM_ERROR_INVALID_DESTINATION;
        if (g_str_equal(id, "destination.reachable"))
                return VM_ERROR_DESTINATION_UNREACHABLE;
        if (g_str_equal(id, "options.valid"))
                return VM_ERROR_INVALID_OPTION;
        if (g_str_equal(id, "backend.available"))
                return VM_ERROR_UNSUPPORTED_BACKEND;
        return VM_ERROR_INCOMPATIBLE;
}

static void finding_free(Finding *f) {
        g_free(f->id);
        g_free(f->message);
        g_free(f);
}

Findings *findings_new(const char *host) {
        Findings *f = g_new0(Findings, 1);

        f->host = g_strdup(host && *host ? host : "localhost");
        f->items = g_ptr_array_new_with_free_func((GDestroyNotify) finding_free);
        return f;
}

void findings_free(Findings *f) {
        if (!f)
                return;
        g_ptr_array_unref(f->items);
        g_free(f->host);
        g_free(f);
}

const char *findings_host(const Findings *f) {
        return f->host;
}

size_t findings_count(const Findings *f) {
        return f->items->len;
}

const Finding *findings_get(const Findings *f, size_t i) {
        return i < f->items->len ? f->items->pdata[i] : NULL;
}

const Finding *findings_find(const Findings *f, const char *id) {
        for (unsigned i = 0; i < f->items->len; i++) {
                const Finding *x = f->items->pdata[i];
                if (g_str_equal(x->id, id))
                        return x;
        }
        return NULL;
}

/* Takes message. Keeps FINDINGS_MAX - 1 so that the summary of what was
 * dropped still fits in FINDINGS_MAX entries on the wire. */
static void findings_push(Findings *f, FindingSeverity severity, VmError code, const char *id,
                          char *message) {
        if (f->items->len >= FINDINGS_MAX - 1) {
                f->n_dropped++;
                if (severity == FINDING_ERROR)
                        f->n_dropped_errors++;
                f->dropped_max = MAX(f->dropped_max, severity);
                g_free(message);
                return;
        }
        Finding *x = g_new0(Finding, 1);
        x->severity = severity;
        x->id = g_strdup(id);
        x->message = message;
        x->code = code;
        g_ptr_array_add(f->items, x);
}

/* Our own messages quote paths and names from a peer's XML: keep them
 * printable and bounded, so that the other host accepts them. */
char *findings_sanitize_message(char *message) {
        g_autofree char *raw = message;
        char *valid = g_utf8_make_valid(raw, -1);
        size_t n;

        for (char *p = valid; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        n = strlen(valid);
        if (n > FINDING_MESSAGE_MAX) {
                n = FINDING_MESSAGE_MAX;
                while (n > 0 && ((unsigned char) valid[n] & 0xc0) == 0x80)
                        n--;
                valid[n] = '\0';
        }
        return valid;
}

static void findings_addv(Findings *f, FindingSeverity severity, VmError code, const char *id,
                          const char *format, va_list ap) {
        g_autofree char *body = NULL;

        g_assert(finding_id_is_valid(id));
        g_assert(severity <= FINDING_ERROR);
        body = g_strdup_vprintf(format, ap);
        findings_push(f, severity, code, id, findings_sanitize_message(g_strdup_printf("%s: %s", f->host, body)));
}

void findings_add(Findings *f, FindingSeverity severity, const char *id, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        findings_addv(f, severity, code_for_id(id), id, format, ap);
        va_end(ap);
}

void findings_add_code(Findings *f, FindingSeverity severity, VmError code, const char *id,
                       const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        findings_addv(f, severity, code, id, format, ap);
        va_end(ap);
}

const Finding *findings_first_error(const Findings *f) {
        for (unsigned i = 0; i < f->items->len; i++) {
                const Finding *x = f->items->pdata[i];
                if (x->severity == FINDING_ERROR)
                        return x;
        }
        return NULL;
}

size_t findings_count_errors(const Findings *f) {
        size_t n = f->n_dropped_errors;

        for (unsigned i = 0; i < f->items->len; i++)
                if (((const Finding *) f->items->pdata[i])->severity == FINDING_ERROR)
                        n++;
        return n;
}

bool findings_has_errors(const Findings *f) {
        return findings_first_error(f) || f->n_dropped_errors > 0;
}

int findings_to_error(const Findings *f, GError **error) {
        const Finding *first = findings_first_error(f);
        size_t n_errors = f->n_dropped_errors;

        if (!first && n_errors == 0)
                return 0;
        for (unsigned i = 0; i < f->items->len; i++)
                if (((const Finding *) f->items->pdata[i])->severity == FINDING_ERROR)
                        n_errors++;
        if (!first)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                    "%s: %zu problems; Domain.DryRun lists them", f->host, n_errors);
        if (n_errors > 1)
                return vm_error_set(error, first->code,
                                    "%s (and %zu more problem%s; Domain.DryRun lists them)", first->message,
                                    n_errors - 1, n_errors - 1 == 1 ? "" : "s");
        return vm_error_set(error, first->code, "%s", first->message);
}

GVariant *findings_to_variant(const Findings *f) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
        for (unsigned i = 0; i < f->items->len; i++) {
                const Finding *x = f->items->pdata[i];
                g_variant_builder_add(&b, "(sss)", finding_severity_to_string(x->severity), x->id,
                                      x->message);
        }
        if (f->n_dropped > 0) {
                g_autofree char *message =
                        g_strdup_printf("%s: %zu more finding%s not shown (%zu of them errors)", f->host,
                                        f->n_dropped, f->n_dropped == 1 ? "" : "s", f->n_dropped_errors);
                g_variant_builder_add(&b, "(sss)", finding_severity_to_string(f->dropped_max),
                                      "findings.truncated", message);
        }
        return g_variant_builder_end(&b);
}

static bool message_is_acceptable(const char *m) {
        if (strlen(m) > FINDING_MESSAGE_MAX || !g_utf8_validate(m, -1, NULL))
                return false;
        for (const unsigned char *p = (const unsigned char *) m; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

int findings_append_variant(Findings *f, GVariant *v, GError **error) {
        GVariantIter iter;
        const char *severity, *id, *message;
        size_t n, i = 0;

        if (!v || !g_variant_is_of_type(v, G_VARIANT_TYPE("a(sss)")))
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "the findings are %s, not a(sss)",
                                    v ? g_variant_get_type_string(v) : "missing");
        n = g_variant_n_children(v);
        if (n > FINDINGS_MAX)
                return vm_error_set(error, VM_ERROR_INCOMPATIBLE, "%zu findings, more than the %d allowed",
                                    n, FINDINGS_MAX);

        /* All or nothing: a bad entry refuses the list. */
        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &id, &message)) {
                if (finding_severity_from_string(severity) < 0)
                        return vm_error_set(error, VM_ERROR_INCOMPATIBLE,
                                            "finding %zu: unknown severity (not error, warning or info)", i);
                if (!finding_id_is_valid(id))
                        return vm_error_set(
                                error, VM_ERROR_INCOMPATIBLE,
                                "finding %zu: the id is not 1-%d characters of a-z, 0-9, '.' and '-'", i,
                                FINDING_ID_MAX);
                if (!message_is_acceptable(message))
                        return vm_error_set(
                                error, VM_ERROR_INCOMPATIBLE,
                                "finding %zu (%s): the message is longer than %d bytes or has control "
                                "characters",
                                i, id, FINDING_MESSAGE_MAX);
                i++;
        }
        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(&s&s&s)", &severity, &id, &message))
                findings_push(f, finding_severity_from_string(severity), code_for_id(id), id,
                              g_strdup(message));
        return 0;
}
