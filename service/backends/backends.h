/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "backend.h"

/* The backends built into vmigrated, in the order GetBackends lists them.
 * The daemon hands them to manager_new(); the core never names one. */
extern const BackendOps backend_test_ops;
extern const BackendOps backend_qemu_ops;

extern const BackendOps *const builtin_backends[];
extern const size_t n_builtin_backends;
