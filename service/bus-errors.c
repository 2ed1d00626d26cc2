/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>

#include "bus-errors.h"
#include "bus-util.h"
#include "errors.h"

int bus_errors_register(void) {
        static sd_bus_error_map map[_VM_ERROR_MAX + 1];
        static bool registered;

        if (registered)
                return 0;
        for (int code = 0; code < _VM_ERROR_MAX; code++)
                map[code] = (sd_bus_error_map) SD_BUS_ERROR_MAP(vm_error_dbus_name(code), vm_error_errno(code));
        map[_VM_ERROR_MAX] = (sd_bus_error_map) SD_BUS_ERROR_MAP_END;
        registered = true;
        return sd_bus_error_add_map(map);
}

int bus_set_gerror(sd_bus_error *ret, const GError *error) {
        if (!error)
                return sd_bus_error_set(ret, vm_error_dbus_name(VM_ERROR_FAILED), "operation failed");
        if (error->domain == VM_ERROR && vm_error_dbus_name(error->code))
                return sd_bus_error_set(ret, vm_error_dbus_name(error->code), error->message);
        return sd_bus_error_set(ret, vm_error_dbus_name(VM_ERROR_FAILED), error->message);
}

int bus_reply_gerror(sd_bus_message *call, const GError *error) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;

        bus_set_gerror(&e, error);
        return sd_bus_reply_method_error(call, &e);
}
