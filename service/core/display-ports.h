/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The host's display ports (VNC, SPICE), as libvirt's
 * remote_display_port_min/max: a range per host (vmigrated
 * --display-ports=MIN-MAX, default 5900-65535, never the migration data
 * ports), and the ports this daemon's guests hold. A port is handed out
 * when it is neither held here nor bound by anyone (bind-tested and closed
 * at once: QEMU binds it right after); it is held until released, which
 * the backend does whenever its QEMU is gone, on every path.
 */
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#define DISPLAY_PORT_MIN 5900
#define DISPLAY_PORT_MAX 65535

/* "MIN-MAX" with 1 <= MIN <= MAX <= 65535. */
int display_ports_parse_range(const char *s, uint16_t *ret_min, uint16_t *ret_max, GError **error);
void display_ports_set_range(uint16_t min, uint16_t max);
void display_ports_get_range(uint16_t *ret_min, uint16_t *ret_max);

/* Whether port may serve a display on address (an IP literal; NULL or a
 * name: only what this daemon holds is known): 1 free, 0 held or bound,
 * negative errno when it cannot be bound at all (-EADDRNOTAVAIL: the
 * address is not this host's). */
int display_port_check(const char *address, uint16_t port);
/* Holds port (given, or with want 0 the lowest free one of the range that
 * QEMU can take for a VNC display when vnc, outside skip_min-skip_max:
 * the migration stream's ports, which the range may overlap) for a
 * display on address.
 * The error (VM_ERROR_BACKEND_FAILED) says which port or range and what
 * to do. */
int display_port_acquire(const char *address, uint16_t want, bool vnc, uint16_t skip_min, uint16_t skip_max,
                         uint16_t *ret_port, GError **error);
/* Holds a port a running guest already has (found again after a daemon
 * restart). */
void display_port_hold(uint16_t port);
void display_port_release(uint16_t port);
bool display_port_is_held(uint16_t port);
