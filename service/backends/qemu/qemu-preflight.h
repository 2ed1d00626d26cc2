/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "preflight.h"
#include "qemu-caps.h"

/* The qemu backend's migrate_check, for a given QEMU (caps): everything of
 * preflight.h that applies on ctx->side, plus accelerator, machine type,
 * CPU, the QEMU migration features the options need, and known defects of
 * this QEMU. */
void qemu_preflight(const QemuCaps *caps, const PreflightContext *ctx, Findings *out);
