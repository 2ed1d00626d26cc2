/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers of the domain XML parser and writer: see domain-xml-util.h. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "domain-xml-util.h"
#include "errors.h"
#include "text.h"

/* ---- helpers for messages ---- */

bool strv_contains(const char *const *strv, const char *s) {
        return s && g_strv_contains(strv, s);
}

bool has_control_chars(const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

/* ---- helpers for the tree ---- */

const char *node_name(const xmlNode *node) {
        return (const char *)node->name;
}

bool node_is(const xmlNode *node, const char *name) {
        return g_str_equal(node_name(node), name);
}

/* Returns a copy of an attribute without namespace, or NULL. */
char *get_attr(xmlNode *node, const char *name) {
        xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
        char *copy;

        if (!v)
                return NULL;
        copy = g_strdup((const char *)v);
        xmlFree(v);
        return copy;
}

int check_attributes(xmlNode *node, const char *const *allowed, GError **error) {
        for (xmlAttr *a = node->properties; a; a = a->next) {
                g_autofree char *n = text_quote((const char *)a->name, -1);

                if (a->ns)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "unknown attribute '%s:%s' on <%s>: namespaced attributes are not "
                                "supported; remove it",
                                a->ns->prefix ? (const char *)a->ns->prefix : "", n, node_name(node));
                if (!allowed || !g_strv_contains(allowed, (const char *)a->name)) {
                        g_autofree char *known = allowed ? text_join_choices(allowed) : NULL;
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "unknown attribute '%s' on <%s>: vmigrate does not support it; "
                                            "remove it (<%s> takes %s)",
                                            n, node_name(node), node_name(node), known ? known : "none");
                }
        }
        return 0;
}

int no_attributes(xmlNode *node, GError **error) {
        return check_attributes(node, NULL, error);
}

/* Decides what to do with one child of a container element: returns 1 for an
 * element to look at, 0 for something to skip (whitespace, comments), or a
 * negative errno for text or other nodes that have no business there. */
int classify_child(xmlNode *child, const xmlNode *parent, GError **error) {
        switch (child->type) {
        case XML_ELEMENT_NODE:
                if (child->ns) {
                        g_autofree char *n = text_quote(node_name(child), -1);
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "unknown element <%s%s%s> in <%s>: namespaced (application-specific) "
                                "elements are not supported; remove it",
                                child->ns->prefix ? (const char *)child->ns->prefix : "",
                                child->ns->prefix ? ":" : "", n, node_name(parent));
                }
                return 1;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
                if (xmlIsBlankNode(child))
                        return 0;
                {
                        g_autofree char *t = text_quote((const char *)child->content, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML, "unexpected text '%s' in <%s>",
                                            g_strstrip(t), node_name(parent));
                }
        case XML_COMMENT_NODE:
                return 0;
        case XML_PI_NODE: {
                g_autofree char *n = text_quote(node_name(child), -1);
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "processing instruction <?%s?> in <%s> is not allowed; remove it", n,
                                    node_name(parent));
        }
        default:
                return vm_error_set(error, VM_ERROR_INVALID_XML, "unexpected XML node (type %d) in <%s>",
                                    (int)child->type, node_name(parent));
        }
}


/* The text of an element that may hold only text (and comments). Refuses
 * control characters other than tab and newline. */
int get_text(xmlNode *node, bool strip, char **ret, GError **error) {
        GString *text = g_string_new(NULL);

        for (xmlNode *c = node->children; c; c = c->next) {
                if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
                        g_string_append(text, (const char *)c->content);
                else if (c->type == XML_COMMENT_NODE)
                        continue;
                else {
                        g_string_free(text, true);
                        if (c->type == XML_ELEMENT_NODE) {
                                g_autofree char *n = text_quote(node_name(c), -1);
                                return vm_error_set(
                                        error, VM_ERROR_INVALID_XML,
                                        "<%s> holds text only; unexpected element <%s> inside it",
                                        node_name(node), n);
                        }
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<%s> holds text only; unexpected XML node inside it",
                                            node_name(node));
                }
        }

        for (const char *p = text->str; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f) {
                        g_string_free(text, true);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<%s>: contains a control character", node_name(node));
                }

        if (strip)
                g_strstrip(text->str);
        *ret = g_strdup(text->str);
        g_string_free(text, true);
        return 0;
}

/* An element that must be empty: no attributes other than allowed, no
 * children other than whitespace and comments. */
int check_empty(xmlNode *node, const char *const *allowed, GError **error) {
        int r = check_attributes(node, allowed, error);
        if (r < 0)
                return r;

        for (xmlNode *c = node->children; c; c = c->next) {
                if (c->type == XML_COMMENT_NODE ||
                    ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && xmlIsBlankNode(c)))
                        continue;
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<%s> must be empty", node_name(node));
        }
        return 0;
}

int check_once(bool *seen, const xmlNode *node, const xmlNode *parent, GError **error) {
        if (*seen)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<%s> given twice in <%s>", node_name(node),
                                    node_name(parent));
        *seen = true;
        return 0;
}

int unknown_element(const xmlNode *node, const xmlNode *parent, GError **error) {
        g_autofree char *n = text_quote(node_name(node), -1);
        return vm_error_set(error, VM_ERROR_INVALID_XML, "unknown element <%s> in <%s>", n,
                            node_name(parent));
}

int unsupported_element(const xmlNode *node, const xmlNode *parent, const char *why, GError **error) {
        return vm_error_set(error, VM_ERROR_INVALID_XML,
                            "<%s> in <%s> is not supported by vmigrate%s%s; remove it", node_name(node),
                            node_name(parent), why ? ": " : "", why ? why : "");
}

/* <elem attr='value'>: unknown <what>; use 'a', 'b' or 'c' */
int check_attr_choice(const xmlNode *node, const char *attr, const char *value, const char *what,
                      const char *const *choices, GError **error) {
        if (strv_contains(choices, value))
                return 0;
        g_autofree char *q = text_quote(value, -1);
        g_autofree char *c = text_join_choices(choices);
        return vm_error_set(error, VM_ERROR_INVALID_XML, "<%s %s='%s'>: unknown %s; use %s", node_name(node),
                            attr, q, what, c);
}

int require_attr(xmlNode *node, const char *attr, const char *hint, char **ret, GError **error) {
        char *v = get_attr(node, attr);
        if (!v)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<%s>: attribute '%s' is required%s%s",
                                    node_name(node), attr, hint ? " " : "", hint ? hint : "");
        *ret = v;
        return 0;
}

/* ---- problems ---- */

void problems_add(Problems *p, GError **error) {
        if (!error || !*error)
                return;
        if (!p->first)
                p->first = g_steal_pointer(error);
        else {
                p->more++;
                g_clear_error(error);
        }
}

void problems_clear(Problems *p) {
        g_clear_error(&p->first);
        p->more = 0;
}

int problems_finish(Problems *p, GError **error) {
        g_autoptr(GError) first = g_steal_pointer(&p->first);
        unsigned more = p->more;

        p->more = 0;
        if (!first)
                return 0;
        if (more == 0) {
                int r = -vm_error_errno((VmError)first->code);
                g_propagate_error(error, g_steal_pointer(&first));
                return r;
        }
        return vm_error_set(error, (VmError)first->code, "%s (and %u more problem%s)", first->message, more,
                            more == 1 ? "" : "s");
}

/* ---- values ---- */

/* Strict decimal: digits only, no sign, no spaces, no overflow. */
int parse_u64(const char *what, const char *s, uint64_t *ret, GError **error) {
        uint64_t v = 0;
        g_autofree char *q = text_quote(s, -1);

        if (s[0] == '-')
                return vm_error_set(error, VM_ERROR_INVALID_XML, "%s: '%s' is negative", what, q);
        if (s[0] == '\0')
                return vm_error_set(error, VM_ERROR_INVALID_XML, "%s: a number is required", what);
        for (const char *p = s; *p; p++) {
                if (!g_ascii_isdigit(*p))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "%s: '%s' is not a decimal number (digits only, no sign or suffix)", what,
                                q);
                if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        return vm_error_set(error, VM_ERROR_INVALID_XML, "%s: '%s' is too large", what, q);
                v = v * 10 + (uint64_t)(*p - '0');
        }
        *ret = v;
        return 0;
}

int check_path(const char *what, const char *path, GError **error) {
        g_autofree char *q = text_quote(path, -1);

        if (path[0] == '\0')
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "%s: the path is empty; give an absolute path", what);
        if (has_control_chars(path))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "%s: the path '%s' contains a control character (newline, tab, ...)",
                                    what, q);
        if (path[0] != '/')
                return vm_error_set(error, VM_ERROR_INVALID_XML, "%s: '%s' is not an absolute path", what,
                                    q);
        if (strlen(path) >= PATH_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML, "%s: the path is longer than %d bytes",
                                    what, PATH_MAX - 1);
        return 0;
}

bool is_token(const char *s, size_t max, const char *extra) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr(extra, *p))
                        return false;
        return true;
}

/* Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or
 * whitespace. We also refuse control characters. */
bool bridge_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= 16 || g_str_equal(s, ".") || g_str_equal(s, ".."))
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p == '/' || *p == ':' || *p <= 0x20 || *p == 0x7f)
                        return false;
        return true;
}

bool mac_has_shape(const char *s) {
        if (strlen(s) != 17)
                return false;
        for (size_t i = 0; i < 17; i++)
                if (i % 3 == 2 ? s[i] != ':' : !g_ascii_isxdigit(s[i]))
                        return false;
        return true;
}

/* "52:54:00:AB:cd:ef" → "52:54:00:ab:cd:ef"; unicast and not all-zero. */
int parse_mac(const char *s, char **ret, GError **error) {
        g_autofree char *q = text_quote(s, -1);
        g_autofree char *lower = NULL;
        unsigned first;

        if (!mac_has_shape(s))
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<mac address='%s'>: not a MAC address; use the form 52:54:00:xx:xx:xx",
                                    q);
        lower = g_ascii_strdown(s, -1);
        first = (unsigned)(g_ascii_xdigit_value(lower[0]) * 16 + g_ascii_xdigit_value(lower[1]));
        if (first & 1)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<mac address='%s'>: a multicast address; the first octet must be even",
                                    q);
        if (g_str_equal(lower, "00:00:00:00:00:00"))
                return vm_error_set(error, VM_ERROR_INVALID_XML, "<mac address='%s'>: the all-zero address",
                                    q);
        *ret = g_steal_pointer(&lower);
        return 0;
}


/* ---- writing ---- */

void write_element(xmlTextWriter *w, const char *name, const char *text) {
        if (text)
                xmlTextWriterWriteElement(w, (const xmlChar *)name, (const xmlChar *)text);
}

void write_attribute(xmlTextWriter *w, const char *name, const char *value) {
        if (value)
                xmlTextWriterWriteAttribute(w, (const xmlChar *)name, (const xmlChar *)value);
}

void start_element(xmlTextWriter *w, const char *name) {
        xmlTextWriterStartElement(w, (const xmlChar *)name);
}

void end_element(xmlTextWriter *w) {
        xmlTextWriterEndElement(w);
}

void write_memory(xmlTextWriter *w, const char *name, uint64_t bytes) {
        g_autofree char *text = NULL;
        bool kib = bytes % 1024 == 0;

        text = g_strdup_printf("%" PRIu64, kib ? bytes / 1024 : bytes);
        start_element(w, name);
        write_attribute(w, "unit", kib ? "KiB" : "b");
        xmlTextWriterWriteString(w, (const xmlChar *)text);
        end_element(w);
}
