/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

/* The core speaks GVariant for structured data (it never sees sd-bus);
 * this appends one to a message, any type D-Bus can carry except fds. */
int bus_message_append_gvariant(sd_bus_message *m, GVariant *v);

/* Reads one complete value of D-Bus type "type" (e.g. "a{sv}") at the read
 * position into a new GVariant (not floating; the caller owns it). Any type
 * D-Bus can carry except fds. Returns a negative errno when the message
 * holds something else or nothing there (-ENXIO), or type is not a single
 * complete type (-EINVAL); the read position is then undefined. */
int bus_message_read_gvariant(sd_bus_message *m, const char *type, GVariant **ret);
