/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "link-share.h"

#define MB 1000000ULL

static uint64_t sum(const uint64_t *v, size_t n) {
        uint64_t s = 0;
        for (size_t i = 0; i < n; i++)
                s += v[i];
        return s;
}

static void test_equal(void) {
        uint64_t caps[8] = { 0 }, shares[8];

        link_share_compute(125 * MB, caps, 8, shares);
        for (size_t i = 0; i < 8; i++)
                g_assert_cmpuint(shares[i], ==, 125 * MB / 8);
        g_assert_cmpuint(sum(shares, 8), ==, 125 * MB);
}

static void test_remainder_is_handed_out(void) {
        uint64_t caps[3] = { 0 }, shares[3];

        link_share_compute(100, caps, 3, shares);
        g_assert_cmpuint(sum(shares, 3), ==, 100);
        for (size_t i = 0; i < 3; i++)
                g_assert_cmpuint(shares[i], >=, 33);
}

/* A migration capped below its share keeps its cap; the others share
 * what it leaves. */
static void test_capped_one_leaves_the_rest(void) {
        uint64_t caps[3] = { 10 * MB, 0, 0 }, shares[3];

        link_share_compute(100 * MB, caps, 3, shares);
        g_assert_cmpuint(shares[0], ==, 10 * MB);
        g_assert_cmpuint(shares[1], ==, 45 * MB);
        g_assert_cmpuint(shares[2], ==, 45 * MB);
}

/* Settling one cap can bring another below the new share. */
static void test_cascade(void) {
        uint64_t caps[4] = { 40 * MB, 10 * MB, 0, 35 * MB }, shares[4];

        link_share_compute(120 * MB, caps, 4, shares);
        g_assert_cmpuint(shares[1], ==, 10 * MB);
        /* 110 left for 3: 36.6 each, so 35 settles; 75 left for 2: 37.5 → 40 is not below. */
        g_assert_cmpuint(shares[3], ==, 35 * MB);
        g_assert_cmpuint(shares[0], ==, 37500000);
        g_assert_cmpuint(shares[2], ==, 37500000);
        g_assert_cmpuint(sum(shares, 4), ==, 120 * MB);
}

static void test_all_capped_below(void) {
        uint64_t caps[2] = { 5 * MB, 7 * MB }, shares[2];

        link_share_compute(100 * MB, caps, 2, shares);
        g_assert_cmpuint(shares[0], ==, 5 * MB);
        g_assert_cmpuint(shares[1], ==, 7 * MB);
}

static void test_no_budget(void) {
        uint64_t caps[3] = { 5 * MB, 0, 9 }, shares[3];

        link_share_compute(0, caps, 3, shares);
        g_assert_cmpuint(shares[0], ==, 5 * MB);
        g_assert_cmpuint(shares[1], ==, 0);
        g_assert_cmpuint(shares[2], ==, 9);
}

/* Never 0 (which would mean unlimited), even with more migrations than
 * bytes. */
static void test_tiny_budget(void) {
        uint64_t caps[4] = { 0 }, shares[4];

        link_share_compute(2, caps, 4, shares);
        for (size_t i = 0; i < 4; i++)
                g_assert_cmpuint(shares[i], >=, 1);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/link-share/equal", test_equal);
        g_test_add_func("/link-share/remainder", test_remainder_is_handed_out);
        g_test_add_func("/link-share/capped-one", test_capped_one_leaves_the_rest);
        g_test_add_func("/link-share/cascade", test_cascade);
        g_test_add_func("/link-share/all-capped", test_all_capped_below);
        g_test_add_func("/link-share/no-budget", test_no_budget);
        g_test_add_func("/link-share/tiny-budget", test_tiny_budget);
        return g_test_run();
}
