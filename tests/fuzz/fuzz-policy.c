/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for convergence policy files (an admin's NAME.policy, read
 * by vmigrated at each migration): whatever parses is a policy the engine
 * can run (steps in range, a final action that ends it) and describes
 * itself in valid UTF-8; whatever is refused says why in valid UTF-8.
 * The engine then runs the parsed policy over a few made-up passes.
 *
 * Regression run: build/tests/fuzz/fuzz-policy tests/fuzz/corpus/policy
 * libFuzzer run: as in fuzz-domain-xml.c, with service/migration/policy.c,
 * service/migration/convergence.c and common/ sources, -lm.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convergence.h"
#include "errors.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree char *text = g_strndup((const char *) data, size);
        g_autoptr(GError) error = NULL;
        g_autoptr(Policy) p = NULL;

        if (policy_parse("fuzz", text, "fuzz", &p, &error) < 0) {
                if (!error || error->domain != VM_ERROR || !error->message[0] ||
                    !g_utf8_validate(error->message, -1, NULL))
                        abort();
                return 0;
        }
        if (!p || p->n_steps > POLICY_STEPS_MAX || p->final_action == POLICY_ACTION_DOWNTIME ||
            p->final_action == POLICY_ACTION_THROTTLE)
                abort();
        for (size_t i = 0; i < p->n_steps; i++) {
                g_autofree char *s = policy_step_describe(&p->steps[i]);
                if ((p->steps[i].action == POLICY_ACTION_THROTTLE && (p->steps[i].value < 1 || p->steps[i].value > 99)) ||
                    !g_utf8_validate(s, -1, NULL))
                        abort();
        }
        if (p->description && !g_utf8_validate(p->description, -1, NULL))
                abort();

        Convergence *c = convergence_new(p, 1ULL << 30, 0, true, true, 0);
        MigrationStats st = { .data_remaining = 1ULL << 30, .iteration = 1 };
        for (unsigned pass = 1; pass < 40; pass++) {
                ConvergenceAction a = { 0 };
                bool nc;
                st.iteration = pass;
                st.dirty_rate = 200000000;
                st.bandwidth = pass > 1 ? 100000000 : 0;
                if (convergence_update(c, &st, pass * 5 * G_USEC_PER_SEC, &a, &nc) > 0 &&
                    (!a.reason || !g_utf8_validate(a.reason, -1, NULL)))
                        abort();
                convergence_action_clear(&a);
        }
        convergence_free(c);
        return 0;
}
