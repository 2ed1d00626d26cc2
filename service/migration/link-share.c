/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>

#include <glib.h>

#include "link-share.h"

void link_share_compute(uint64_t budget, const uint64_t *caps, size_t n, uint64_t *ret_shares) {
        g_autofree bool *settled = g_new0(bool, n);
        uint64_t left = budget;
        size_t open = n;

        if (budget == 0) {
                for (size_t i = 0; i < n; i++)
                        ret_shares[i] = caps[i];
                return;
        }
        /* Each round settles the migrations capped below the equal share
         * of what is left; when none is, the rest split it evenly. */
        while (open > 0) {
                uint64_t fair = left / open;
                bool settled_one = false;

                for (size_t i = 0; i < n; i++)
                        if (!settled[i] && caps[i] && caps[i] <= fair) {
                                ret_shares[i] = caps[i];
                                settled[i] = true;
                                left -= caps[i];
                                open--;
                                settled_one = true;
                        }
                if (settled_one)
                        continue;
                for (size_t i = 0; i < n; i++)
                        if (!settled[i]) {
                                /* The remainder of the division goes to the first ones. */
                                ret_shares[i] = MAX(fair + (left % open ? 1 : 0), 1);
                                left -= MIN(left, ret_shares[i]);
                                settled[i] = true;
                                open--;
                        }
        }
}
