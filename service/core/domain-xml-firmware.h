/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * UEFI firmware in the domain XML (domain-xml.c's parse_os and writer
 * call these): <os firmware='efi'>, <os><firmware><feature/>, <loader>
 * and <nvram>, and <features><smm>. Each parser returns 0 or a negative
 * errno with *error set (VM_ERROR_INVALID_XML).
 */
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "domain-xml.h"

/* <os firmware=…>: the only attribute of <os>. */
int parse_os_attributes(xmlNode *os, DomainDef *def, GError **error);
int parse_os_loader(xmlNode *node, DomainDef *def, GError **error);
int parse_os_nvram(xmlNode *node, DomainDef *def, GError **error);
/* <os><firmware>: the features asked of an automatically chosen firmware. */
int parse_os_firmware(xmlNode *node, DomainDef *def, GError **error);
/* After the whole <os>: what only makes sense together. */
int check_os_firmware(const DomainDef *def, GError **error);
/* <features><smm state=…/>: on is accepted (and dropped: vmigrate turns
 * SMM on itself where the firmware needs it, and QEMU's q35 has it on
 * anyway); off is refused, since it would take SMM from a guest that
 * may use it. */
int check_feature_smm(xmlNode *node, GError **error);

/* The writer: the attribute of <os> (call right after starting it), and
 * its children <firmware>, <loader>, <nvram> (in libvirt's order, after
 * <type>). */
void format_os_attributes(xmlTextWriter *w, const DomainDef *def);
void format_os_firmware(xmlTextWriter *w, const DomainDef *def);

void firmware_def_clear(DomainDef *def);
void firmware_def_copy(DomainDef *dst, const DomainDef *src);
bool firmware_def_equal(const DomainDef *a, const DomainDef *b);
