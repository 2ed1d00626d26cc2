/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Fair shares of one link (max-min fairness, "water filling"): n
 * migrations leave over a link of budget bytes/s; migration i wants at
 * most caps[i] (its own 'bandwidth' or SetMaxBandwidth; 0 = no cap).
 * Each gets budget / n, except that one capped below that gets its cap
 * and what it leaves is shared by the others the same way. The shares
 * sum to the budget unless every migration is capped below it. Without a
 * budget (0) every migration gets its cap (0 = unlimited).
 *
 * Why not leave it to TCP: a migration with 'parallel-connections' N
 * has N streams and would take N shares of the link; and the convergence
 * model of each migration needs the share it can count on, not the
 * whole link (source.c hands it the share).
 */
void link_share_compute(uint64_t budget, const uint64_t *caps, size_t n, uint64_t *ret_shares);
