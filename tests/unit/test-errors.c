/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "errors.h"

static void test_names_complete(void) {
        for (int code = 0; code < _VM_ERROR_MAX; code++) {
                const char *name = vm_error_dbus_name(code);
                g_assert_nonnull(name);
                g_assert_true(g_str_has_prefix(name, "org.vmigrate.Migrate1.Error."));
                g_assert_cmpint(vm_error_errno(code), >, 0);
                for (int other = 0; other < code; other++)
                        g_assert_cmpstr(vm_error_dbus_name(other), !=, name);
        }
        g_assert_null(vm_error_dbus_name(_VM_ERROR_MAX));
        g_assert_cmpstr(vm_error_dbus_name(VM_ERROR_NO_SUCH_DOMAIN), ==, "org.vmigrate.Migrate1.Error.NoSuchDomain");
        g_assert_cmpstr(vm_error_short_name(VM_ERROR_POSTCOPY_NOT_ENABLED), ==, "PostCopyNotEnabled");
}

static void test_set(void) {
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(vm_error_set(&error, VM_ERROR_NO_SUCH_DOMAIN, "no '%s'", "x"), ==, -ENOENT);
        g_assert_error(error, VM_ERROR, VM_ERROR_NO_SUCH_DOMAIN);
        g_assert_cmpstr(error->message, ==, "no 'x'");
        g_assert_cmpint(vm_error_set(NULL, VM_ERROR_INVALID_STATE, "ignored"), ==, -EBUSY);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/errors/names-complete", test_names_complete);
        g_test_add_func("/errors/set", test_set);
        return g_test_run();
}
