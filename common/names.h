/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#define DOMAIN_NAME_MAX 64
/* A domain XML document: the parser and the option destination-xml. */
#define DOMAIN_XML_MAX_BYTES (1024 * 1024)

/* Name rules shared by the domain XML parser, the Migrate option
 * 'destination-name' and vmigratectl: 1..64 bytes of UTF-8, no '/', no
 * control characters, no leading '.' or '-', not all-whitespace. */
bool domain_name_is_valid(const char *name, const char **ret_why);

/* A convergence policy's name (option 'policy', NAME.policy files):
 * 1..64 of letters, digits, '-', '_' and '.', not starting with '-' or '.'. */
#define POLICY_NAME_MAX 64
bool policy_name_is_valid(const char *name);
