/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "backends.h"

const BackendOps *const builtin_backends[] = {
        &backend_test_ops,
        &backend_qemu_ops,
};

const size_t n_builtin_backends = G_N_ELEMENTS(builtin_backends);
