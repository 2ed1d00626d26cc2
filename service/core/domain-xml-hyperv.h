/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Hyper-V enlightenments in the domain XML: <features><hyperv> and
 * <clock><timer name='hypervclock'>, as libvirt writes them for Windows
 * guests. Each parser returns 0 or a negative errno with *error set
 * (VM_ERROR_INVALID_XML). What each becomes on QEMU's -cpu is the
 * backend's (qemu-command.c).
 */
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "domain-xml.h"

/* The element's name in <hyperv> (or in its <stimer>/<tlbflush>). */
const char *hyperv_feature_name(DomainHyperv f);

int parse_features_hyperv(xmlNode *node, DomainDef *def, GError **error);
int parse_timer_hypervclock(xmlNode *node, DomainDef *def, GError **error);
/* After the whole domain: what needs what (QEMU's own dependencies). */
int check_hyperv(const DomainDef *def, GError **error);

/* <hyperv> inside <features>, and the timer inside <clock>. */
void format_features_hyperv(xmlTextWriter *w, const DomainDef *def);
void format_timer_hypervclock(xmlTextWriter *w, const DomainDef *def);

void hyperv_def_clear(DomainDef *def);
void hyperv_def_copy(DomainDef *dst, const DomainDef *src);
bool hyperv_def_equal(const DomainDef *a, const DomainDef *b);
