/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "display-ports.h"
#include "errors.h"
#include "net.h"

/* One daemon, one host: the range and what its guests hold are the
 * process's. Only the event loop's thread touches them. */
static uint16_t range_min = DISPLAY_PORT_MIN, range_max = DISPLAY_PORT_MAX;
static GHashTable *held; /* GUINT_TO_POINTER(port) */

int display_ports_parse_range(const char *s, uint16_t *ret_min, uint16_t *ret_max, GError **error) {
        g_auto(GStrv) parts = s ? g_strsplit(s, "-", 2) : NULL;
        guint64 min, max;

        if (!parts || g_strv_length(parts) != 2 ||
            !g_ascii_string_to_unsigned(parts[0], 10, 1, 65535, &min, NULL) ||
            !g_ascii_string_to_unsigned(parts[1], 10, 1, 65535, &max, NULL) || min > max)
                /* Says what is wrong, not with what: the caller names the
                 * value and where it was given (option or file line). */
                return vm_error_set(error, VM_ERROR_INVALID_ARGUMENT,
                                    "not MIN-MAX with 1 <= MIN <= MAX <= 65535 (e.g. 5900-5999)");
        *ret_min = (uint16_t) min;
        *ret_max = (uint16_t) max;
        return 0;
}

void display_ports_set_range(uint16_t min, uint16_t max) {
        g_return_if_fail(min > 0 && min <= max);
        range_min = min;
        range_max = max;
}

void display_ports_get_range(uint16_t *ret_min, uint16_t *ret_max) {
        *ret_min = range_min;
        *ret_max = range_max;
}

bool display_port_is_held(uint16_t port) {
        return held && g_hash_table_contains(held, GUINT_TO_POINTER(port));
}

void display_port_hold(uint16_t port) {
        if (!held)
                held = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_add(held, GUINT_TO_POINTER(port));
}

void display_port_release(uint16_t port) {
        if (held)
                g_hash_table_remove(held, GUINT_TO_POINTER(port));
}

int display_port_check(const char *address, uint16_t port) {
        int r;

        if (port == 0 || display_port_is_held(port))
                return 0;
        r = net_try_bind(address ? address : "127.0.0.1", port);
        if (r == 0 || r == -EINVAL) /* a host name: QEMU resolves it, QEMU decides */
                return 1;
        if (r == -EADDRINUSE)
                return 0;
        return r;
}

int display_port_acquire(const char *address, uint16_t want, bool vnc, uint16_t skip_min, uint16_t skip_max,
                         uint16_t *ret_port, GError **error) {
        const char *where = address ? address : "127.0.0.1";
        unsigned first = range_min;
        int r;

        if (want) {
                r = display_port_check(address, want);
                if (r < 0)
                        return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                            "cannot listen on %s port %u for the display: %s%s", where, want,
                                            g_strerror(-r),
                                            r == -EADDRNOTAVAIL
                                                    ? " (not an address of this host; change the "
                                                      "<graphics> listen address)"
                                                    : "");
                if (r == 0)
                        return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                            "display port %u on %s is in use; pick another port or use "
                                            "autoport='yes'",
                                            want, where);
                display_port_hold(want);
                *ret_port = want;
                return 0;
        }
        if (vnc && first < DISPLAY_PORT_MIN)
                first = DISPLAY_PORT_MIN; /* QEMU's VNC displays start at 5900 */
        for (unsigned p = first; p <= range_max; p++) {
                if (p >= skip_min && p <= skip_max)
                        continue;
                r = display_port_check(address, (uint16_t) p);
                if (r < 0)
                        return vm_error_set(
                                error, VM_ERROR_BACKEND_FAILED, "cannot listen on %s for the display: %s%s",
                                where, g_strerror(-r),
                                r == -EADDRNOTAVAIL ? " (not an address of this host; change the "
                                                      "<graphics> listen address)"
                                                    : "");
                if (r == 1) {
                        display_port_hold((uint16_t) p);
                        *ret_port = (uint16_t) p;
                        return 0;
                }
        }
        return vm_error_set(
                error, VM_ERROR_BACKEND_FAILED,
                "no free display port in %u-%u on %s: other guests or programs hold them all; stop "
                "one, or widen the range (DisplayPorts=, vmigrated --display-ports)",
                first, range_max, where);
}
