/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef enum DomainState {
        DOMAIN_STATE_SHUTOFF,
        DOMAIN_STATE_RUNNING,
        DOMAIN_STATE_PAUSED,
        DOMAIN_STATE_SHUTDOWN, /* shutting down */
        DOMAIN_STATE_CRASHED,
        _DOMAIN_STATE_MAX,
} DomainState;

const char *domain_state_to_string(DomainState state);

static inline int domain_state_is_active(DomainState state) {
        return state == DOMAIN_STATE_RUNNING || state == DOMAIN_STATE_PAUSED || state == DOMAIN_STATE_SHUTDOWN;
}
