/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

/* The core speaks GVariant for structured data (it never sees sd-bus);
 * this appends one to a message, any type D-Bus can carry except fds. */
int bus_message_append_gvariant(sd_bus_message *m, GVariant *v);
