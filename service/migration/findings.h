/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "errors.h"

/*
 * What the pre-flight checks of a migration found (preflight.h): each
 * finding has a severity, a stable id that clients and admins' scripts
 * may match on (the table at the top of preflight.c and of each backend's
 * own checks), and a message that starts with the host's name.
 */

typedef enum FindingSeverity {
        FINDING_INFO,
        FINDING_WARNING,
        FINDING_ERROR,
} FindingSeverity;

typedef struct Finding {
        FindingSeverity severity;
        char *id;      /* "storage.disk" */
        char *message; /* "host-b: disk /srv/… is missing …" */
        VmError code;  /* what findings_to_error() reports for an error */
} Finding;

/* More are counted, not kept (see findings_to_variant). */
#define FINDINGS_MAX 256
#define FINDING_MESSAGE_MAX 1024
#define FINDING_ID_MAX 64

typedef struct Findings Findings;

/* host prefixes every message added here ("host-b: …"). */
Findings *findings_new(const char *host);
void findings_free(Findings *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Findings, findings_free)

/* The message gets "<host>: " in front, and is cut at FINDING_MESSAGE_MAX
 * bytes (on a character boundary). id must be one of the table's. */
void findings_add(Findings *f, FindingSeverity severity, const char *id, const char *format, ...)
        G_GNUC_PRINTF(4, 5);
/* As findings_add, with the error code findings_to_error() reports (the
 * default comes from the id: limits.* → LimitReached, domain.* →
 * DomainExists, host.same → InvalidDestination, else Incompatible). */
void findings_add_code(Findings *f, FindingSeverity severity, VmError code, const char *id,
                       const char *format, ...) G_GNUC_PRINTF(5, 6);

/* Text from elsewhere made fit for a finding: valid UTF-8, control
 * characters as '?', cut at FINDING_MESSAGE_MAX bytes. Takes message. */
char *findings_sanitize_message(char *message);

const char *findings_host(const Findings *f);
size_t findings_count(const Findings *f);
const Finding *findings_get(const Findings *f, size_t i);
/* The first finding with this id, or NULL. */
const Finding *findings_find(const Findings *f, const char *id);
bool findings_has_errors(const Findings *f);
/* Errors, those dropped over FINDINGS_MAX included. */
size_t findings_count_errors(const Findings *f);
const Finding *findings_first_error(const Findings *f);

/* For the real Begin/Prepare: 0 when there is no error, else sets *error
 * to the first error (its code and message, plus "(and N more problems;
 * Domain.DryRun lists them)") and returns its negative errno. */
int findings_to_error(const Findings *f, GError **error);

/* a(sss), floating: severity word ("error", "warning", "info"), id,
 * message, in the order added. If findings were dropped over
 * FINDINGS_MAX, a last "findings.truncated" entry says how many, with the
 * highest severity among them. */
GVariant *findings_to_variant(const Findings *f);

/* Appends the other host's findings (a(sss), as findings_to_variant made
 * them). Hostile input: refused whole (VM_ERROR_INCOMPATIBLE, nothing
 * appended) unless it is a(sss), has at most FINDINGS_MAX entries, each
 * with a known severity word, an id of 1..FINDING_ID_MAX bytes of
 * [a-z0-9.-], and a message of at most FINDING_MESSAGE_MAX bytes without
 * control characters. Messages are kept as they are: the other host has
 * already named itself. */
int findings_append_variant(Findings *f, GVariant *v, GError **error);

const char *finding_severity_to_string(FindingSeverity s);
/* -1 for an unknown word. */
int finding_severity_from_string(const char *s);
