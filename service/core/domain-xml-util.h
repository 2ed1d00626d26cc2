/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Helpers of the domain XML parser and writer (domain-xml*.c only): the
 * tree, attributes, values and the messages of refusals, so that each
 * group of elements can have a file of its own. Every error is
 * VM_ERROR_INVALID_XML with a message naming the element.
 */
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#define STRV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Loops over the element children of parent. Stray text or other nodes make
 * the *calling function* return the error: every caller is a parser that
 * would do exactly that, and the loop bodies stay readable. */
#define for_each_child_element(child, parent, r, error)                                                     \
        for (xmlNode *child = (parent)->children; child; child = child->next)                               \
                if (((r) = classify_child(child, (parent), (error))) < 0)                                   \
                        return (r);                                                                         \
                else if ((r) == 0)                                                                          \
                        continue;                                                                           \
                else

/* messages */
bool strv_contains(const char *const *strv, const char *s);
bool has_control_chars(const char *s);
/* the tree: each returns 0 or a negative errno with *error set */
const char *node_name(const xmlNode *node);
bool node_is(const xmlNode *node, const char *name);
char *get_attr(xmlNode *node, const char *name);
int check_attributes(xmlNode *node, const char *const *allowed, GError **error);
int no_attributes(xmlNode *node, GError **error);
int classify_child(xmlNode *child, const xmlNode *parent, GError **error);
int get_text(xmlNode *node, bool strip, char **ret, GError **error);
int check_empty(xmlNode *node, const char *const *allowed, GError **error);
int check_once(bool *seen, const xmlNode *node, const xmlNode *parent, GError **error);
int unknown_element(const xmlNode *node, const xmlNode *parent, GError **error);
int unsupported_element(const xmlNode *node, const xmlNode *parent, const char *why, GError **error);
int check_attr_choice(const xmlNode *node, const char *attr, const char *value, const char *what,
                      const char *const *choices, GError **error);
int require_attr(xmlNode *node, const char *attr, const char *hint, char **ret, GError **error);
/* Problems of one document: the first error, and how many more were found
 * after it, so that a user fixing a document hears of all of them at once. */
typedef struct Problems {
        GError *first;
        unsigned more;
} Problems;
/* Takes *error (and clears it). */
void problems_add(Problems *p, GError **error);
/* Returns 0 when there were none, else -EINVAL with *error set to the first
 * problem's, followed by "(and N more problems)". Frees what it kept. */
int problems_finish(Problems *p, GError **error);
void problems_clear(Problems *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Problems, problems_clear)
/* values */
int parse_u64(const char *what, const char *s, uint64_t *ret, GError **error);
int check_path(const char *what, const char *path, GError **error);
bool is_token(const char *s, size_t max, const char *extra);
bool bridge_name_is_valid(const char *s);
bool mac_has_shape(const char *s);
int parse_mac(const char *s, char **ret, GError **error);
/* the writer */
void write_element(xmlTextWriter *w, const char *name, const char *text);
void write_attribute(xmlTextWriter *w, const char *name, const char *value);
void start_element(xmlTextWriter *w, const char *name);
void end_element(xmlTextWriter *w);
void write_memory(xmlTextWriter *w, const char *name, uint64_t bytes);
