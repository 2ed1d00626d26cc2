/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <devices><tpm> in the domain XML (domain-xml.c's parse_devices and
 * writer call these): an emulated TPM 2.0 (swtpm), as libvirt writes it.
 * The parser returns 0 or a negative errno with *error set
 * (VM_ERROR_INVALID_XML).
 */
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "domain-xml.h"

int tpm_parse(xmlNode *node, DomainDef *def, GError **error);
/* Written after the <input>s, where libvirt puts it. */
void tpm_format(xmlTextWriter *w, const DomainDef *def);

void tpm_def_clear(DomainDef *def);
void tpm_def_copy(DomainDef *dst, const DomainDef *src);
bool tpm_def_equal(const DomainDef *a, const DomainDef *b);
/* The guest sees the model and the version: NULL when equal, else what differs. */
const char *tpm_abi_difference(const DomainDef *src, const DomainDef *dst);
