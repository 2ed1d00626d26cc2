/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <systemd/sd-event.h>

/*
 * Admin hooks, after libvirt's /etc/libvirt/hooks/qemu: executables in a
 * directory (vmigrated --hooks-dir, default <sysconfdir>/vmigrate/hooks.d)
 * run in name order as
 *
 *     <dir>/<name> <domain name> migrate <sub-phase>
 *
 * (sub-phase "prepare" and "finish" on a migration's destination, "abort"
 * when an incoming migration is undone), with the domain XML on stdin,
 * VMIGRATE_DOMAIN_NAME, VMIGRATE_DOMAIN_UUID and VMIGRATE_PHASE (the
 * sub-phase) in a clean environment, in their own session, cwd "/".
 * Exit status 0 is success; anything else, a signal, or running past the
 * timeout (then the hook's whole process group is killed) is failure.
 * stdout and stderr are kept together, at most HOOK_OUTPUT_MAX bytes.
 *
 * Only regular files that are executable, owned by root (or by the user
 * vmigrated runs as) and not writable by group or others are run, in a
 * directory with the same ownership rules; anything else is logged and
 * skipped. Names starting with '.' and ending with '~' are skipped
 * silently (editor and package manager leftovers), other names that are
 * not hook names (domain_hook_name_is_valid) are logged and skipped.
 *
 * Everything runs from the sd-event loop: nothing here blocks.
 */

#define HOOK_OUTPUT_MAX (64 * 1024)
#define HOOK_DEFAULT_TIMEOUT_USEC (30 * G_USEC_PER_SEC)
#define HOOK_TAIL_LINES 5

/* The runnable hooks in dir, sorted by name (strcmp). A missing directory
 * has none. Never NULL. */
GStrv hooks_list(const char *dir);

typedef struct HookRequest {
        const char *domain_name;
        const char *domain_uuid;
        const char *phase;     /* "migrate" */
        const char *sub_phase; /* "prepare", "finish", "abort" */
        const char *xml;       /* on stdin; NULL = empty */
} HookRequest;

typedef struct HookResult {
        const char *name;
        bool ok;
        int status;     /* wait status; -1 when it never ran or timed out */
        bool timed_out;
        const char *output;  /* what it wrote (stdout and stderr), possibly cut */
        const char *message; /* !ok: "hook 'x' (migrate prepare) exited with status 1: <last lines>" */
} HookResult;

typedef struct HookRun HookRun;
/* Called once, from the event loop, never from within hook_run(). The
 * run is freed right after it returns. */
typedef void (*HookDone)(const HookResult *result, void *userdata);

/* Starts <dir>/<name>. A hook that cannot even be started completes with
 * ok = false (from the loop), like one that failed, so callers have one
 * path. ret may be NULL; the HookRun belongs to the loop until done. */
int hook_run(sd_event *event, const char *dir, const char *name, const HookRequest *req, uint64_t timeout_usec,
             HookDone done, void *userdata, HookRun **ret);
/* Kills the hook's process group and forgets it: done is never called. */
void hook_run_cancel(HookRun *run);
