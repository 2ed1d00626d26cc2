/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

/* Registers org.vmigrate.Migrate1.Error.* with sd-bus once, so that the
 * negative errno a handler returns and the name on the wire agree. */
int bus_errors_register(void);

/* Turns a core error into a D-Bus error; returns the negative errno that
 * sd-bus handlers return. A NULL error becomes a generic Failed. */
int bus_set_gerror(sd_bus_error *ret, const GError *error);

/* Replies to a call whose answer was deferred. */
int bus_reply_gerror(sd_bus_message *call, const GError *error);
