/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <glib.h>

#include "domain-xml.h"

/* Where a display listening on a unix socket with no path of its own
 * listens: <dir>/vnc.sock or <dir>/spice.sock, dir being the domain's
 * runtime directory (QemuPaths.dir). */
char *qemu_display_socket_path(const char *dir, const char *type);

/*
 * -vnc, -spice, -k and the video device for def. A display with autoport
 * gets the port the definition carries (the backend resolved it before
 * start), or for validation only the first VNC port. Passwords never go
 * on the command line: the display starts locked (VNC password=on, SPICE
 * ticketing on) and the backend sets the password over QMP
 * (qemu_displays_password_commands) before the guest runs.
 * Refuses SPICE and qxl with a message naming the package when this
 * QEMU lacks its SPICE module.
 */
int qemu_command_add_displays(GPtrArray *argv, const DomainDef *def, const char *dir, GError **error);

/* Whether QEMU has SPICE: its module when QEMU is modular (Debian's
 * qemu-system-modules-spice); a QEMU without a module directory is taken
 * at its word when it starts. module_dir NULL: the system's. */
bool qemu_spice_available(const char *module_dir);
