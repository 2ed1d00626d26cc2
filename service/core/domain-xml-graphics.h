/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <graphics> and <video> of the domain XML (domain-xml-graphics.c): the
 * parser's and writer's part for displays. Only domain-xml.c calls these;
 * everyone else sees DomainGraphicsDef / DomainVideoDef in domain-xml.h.
 */
#include <stdbool.h>

#include <glib.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "domain-xml.h"

void domain_graphics_def_free(DomainGraphicsDef *g);
void domain_video_def_free(DomainVideoDef *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainGraphicsDef, domain_graphics_def_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainVideoDef, domain_video_def_free)

/* One <graphics> or <video> child of <devices>, appended to def. */
int domain_graphics_parse(xmlNode *node, DomainDef *def, GError **error);
int domain_video_parse(xmlNode *node, DomainDef *def, GError **error);
/* After <devices>: the checks across elements, and the default video
 * libvirt adds when there is a display but no <video>. */
int domain_displays_finish(DomainDef *def, GError **error);

/* Inside <devices>. secure: with passwd (see domain_def_format_public). */
void domain_displays_format(xmlTextWriter *w, const DomainDef *def, bool secure);

void domain_displays_copy(const DomainDef *def, DomainDef *c);
bool domain_displays_equal(const DomainDef *a, const DomainDef *b);
/* The guest sees the video devices, not the graphics (host-side: ports,
 * listen addresses, passwords may differ on the destination). Returns the
 * element that differs, NULL when none. */
const char *domain_displays_abi_difference(const DomainDef *src, const DomainDef *dst);
