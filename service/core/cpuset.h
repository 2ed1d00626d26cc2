/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Host CPU sets as libvirt writes them (<vcpu cpuset='0-3,^2,8'>) and as
 * the kernel lists them (/sys/devices/system/cpu/online: "0-3,8"): ranges
 * and single CPUs separated by commas, '^' taking one out again. CPUs
 * 0 to CPUSET_MAX - 1.
 */
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#define CPUSET_MAX 1024

typedef struct CpuSet {
        uint64_t bits[CPUSET_MAX / 64];
} CpuSet;

/* 0, or VM_ERROR_INVALID_XML naming what is wrong (what: "<vcpu cpuset>").
 * An empty result is refused. */
int cpuset_parse(const char *text, const char *what, CpuSet *ret, GError **error);
bool cpuset_has(const CpuSet *set, unsigned cpu);
unsigned cpuset_count(const CpuSet *set);
/* Canonical: ascending ranges, "0-2,5". */
char *cpuset_format(const CpuSet *set);
/* The CPUs of want that have is missing; empty when none. */
void cpuset_missing(const CpuSet *want, const CpuSet *have, CpuSet *ret);
