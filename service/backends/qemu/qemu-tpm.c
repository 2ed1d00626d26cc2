/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest's swtpm (qemu-backend.h, "qemu-tpm.c"). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "qemu-backend.h"

char *qemu_tpm_state_dir(const QemuBackend *b, const char *uuid) {
        return g_build_filename(b->swtpm_dir, uuid, NULL);
}

char *qemu_tpm_find_swtpm(GError **error) {
        const char *env = getenv("VMIGRATE_SWTPM");
        const char *name = env && *env ? env : "swtpm";
        char *path = g_find_program_in_path(name);

        if (!path)
                vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                             "%s not found: a <tpm> with <backend type='emulator'> needs swtpm; install it "
                             "(package swtpm) or set VMIGRATE_SWTPM",
                             name);
        return path;
}

void qemu_tpm_preflight(const PreflightContext *ctx, Findings *out) {
        g_autoptr(GError) error = NULL;
        g_autofree char *swtpm = NULL;

        if (ctx->side != PREFLIGHT_DESTINATION || !domain_def_has_tpm(ctx->def) || ctx->options->offline)
                return;
        swtpm = qemu_tpm_find_swtpm(&error);
        if (!swtpm)
                findings_add(
                        out, FINDING_ERROR, "host.swtpm",
                        "domain '%s' has a TPM (<tpm model='%s'>), and its emulator is missing here: %s",
                        ctx->def->name, ctx->def->tpm_model, error->message);
}

static void on_swtpm_exit(QemuProcess *p, int status, void *userdata) {
        QemuDomain *qd = userdata;
        g_autofree char *how = status < 0 ? g_strdup("exited") : NULL;

        if (!how && WIFEXITED(status))
                how = g_strdup_printf("exited with status %d", WEXITSTATUS(status));
        else if (!how)
                how = g_strdup_printf("was killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        if (qd->process)
                log_error("domain '%s': its swtpm (pid %d) %s while QEMU runs: the guest's TPM does not "
                          "answer "
                          "any more (swtpm's log: %s)",
                          domain_name(qd->domain), (int) qemu_process_pid(p), how, qd->paths->swtpm_log);
        qd->swtpm = qemu_process_free(qd->swtpm);
}

static int make_state_dir(const char *dir, bool *ret_created, GError **error) {
        struct stat st;

        if (lstat(dir, &st) == 0) {
                if (!S_ISDIR(st.st_mode))
                        return vm_error_set(
                                error, VM_ERROR_STORAGE_FAILED,
                                "the TPM state directory %s is not a directory; remove it (vmigrate "
                                "makes a fresh one)",
                                dir);
                *ret_created = false;
                return 0;
        }
        if (errno != ENOENT)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                    "cannot look at the TPM state directory %s: %s", dir, g_strerror(errno));
        g_autofree char *parent = g_path_get_dirname(dir);
        if (g_mkdir_with_parents(parent, 0700) < 0 || mkdir(dir, 0700) < 0)
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                    "cannot create the TPM state directory %s: %s", dir, g_strerror(errno));
        *ret_created = true;
        return 0;
}

static void rm_dir(const char *path) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                (void) unlink(child);
        }
        if (rmdir(path) < 0 && errno != ENOENT)
                log_warning("cannot remove the TPM state directory %s: %s", path, g_strerror(errno));
}

int qemu_tpm_start(QemuDomain *qd, const DomainDef *def, bool incoming, GError **error) {
        g_autofree char *swtpm = NULL, *dir = NULL, *tpmstate = NULL, *log = NULL, *pid = NULL;
        bool created = false;
        int fd, r;

        if (!domain_def_has_tpm(def))
                return 0;
        qemu_tpm_stop(qd); /* an earlier run's, if it lingers */
        swtpm = qemu_tpm_find_swtpm(error);
        if (!swtpm)
                return -ENOENT;
        dir = qemu_tpm_state_dir(qd->backend, def->uuid);
        if (strchr(dir, ','))
                return vm_error_set(
                        error, VM_ERROR_STORAGE_FAILED,
                        "the TPM state directory %s has a ',' which swtpm's options cannot carry; "
                        "use a state directory without one",
                        dir);
        r = make_state_dir(dir, &created, error);
        if (r < 0)
                return r;
        r = unix_listen(qd->paths->swtpm_socket, &fd, error);
        if (r < 0) {
                if (created)
                        rm_dir(dir);
                return r;
        }
        tpmstate = g_strdup_printf("dir=%s,mode=0600", dir);
        log = g_strdup_printf("file=%s", qd->paths->swtpm_log);
        char *argv[] = { swtpm,
                         (char *) "socket",
                         (char *) "--tpm2",
                         (char *) "--tpmstate",
                         tpmstate,
                         (char *) "--ctrl",
                         (char *) "type=unixio,fd=3",
                         (char *) "--terminate",
                         (char *) "--log",
                         log,
                         NULL };
        r = qemu_process_spawn(qd->backend->event, argv, qd->paths->swtpm_log, fd, on_swtpm_exit, qd,
                               &qd->swtpm, error);
        close(fd);
        if (r < 0) {
                if (created)
                        rm_dir(dir);
                return r;
        }
        pid = g_strdup_printf("%d %" G_GUINT64_FORMAT "\n", (int) qemu_process_pid(qd->swtpm),
                              qemu_process_starttime(qd->swtpm));
        g_autoptr(GError) local = NULL;
        if (!g_file_set_contents_full(qd->paths->swtpm_pid, pid, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                      &local)) {
                qemu_tpm_stop(qd);
                if (created)
                        rm_dir(dir);
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot record swtpm: %s",
                                    local->message);
        }
        g_free(qd->tpm_created_dir);
        qd->tpm_created_dir = incoming && created ? g_steal_pointer(&dir) : NULL;
        log_info("domain '%s': swtpm pid %d on %s%s", def->name, (int) qemu_process_pid(qd->swtpm),
                 qd->tpm_created_dir ? qd->tpm_created_dir : dir, created ? " (new)" : "");
        return 0;
}

void qemu_tpm_stop(QemuDomain *qd) {
        if (qd->swtpm) {
                pid_t pid = qemu_process_pid(qd->swtpm);
                /* With QEMU gone, --terminate has usually ended it already;
                 * its state is on disk (swtpm writes it as the TPM changes
                 * it), so a kill loses nothing. Our child is reaped here,
                 * at once, so that no zombie is left; an adopted one is
                 * init's. */
                if (qemu_process_is_child(qd->swtpm)) {
                        if (waitpid(pid, NULL, WNOHANG) == 0) {
                                (void) kill(pid, SIGKILL);
                                (void) waitpid(pid, NULL, 0);
                        }
                } else
                        (void) qemu_process_kill(qd->swtpm);
                qd->swtpm = qemu_process_free(qd->swtpm);
        }
        (void) unlink(qd->paths->swtpm_pid);
        if (qd->tpm_created_dir) {
                log_info("domain '%s': removing the TPM state directory %s made for a guest that did not "
                         "arrive",
                         domain_name(qd->domain), qd->tpm_created_dir);
                rm_dir(qd->tpm_created_dir);
                g_clear_pointer(&qd->tpm_created_dir, g_free);
        }
}

void qemu_tpm_incoming_keep(QemuDomain *qd) {
        g_clear_pointer(&qd->tpm_created_dir, g_free);
}

void qemu_tpm_detach(QemuDomain *qd) {
        qd->swtpm = qemu_process_free(qd->swtpm);
        g_clear_pointer(&qd->tpm_created_dir, g_free);
}

/* The swtpm recorded in paths, if it still runs and is this domain's. */
static int adopt_recorded(QemuBackend *b, const QemuPaths *paths, const char *uuid,
                          QemuProcessExitFn on_exit, void *userdata, QemuProcess **ret) {
        g_autofree char *dir = qemu_tpm_state_dir(b, uuid), *cmdline_path = NULL, *cmdline = NULL;
        uint64_t starttime;
        size_t len;
        pid_t pid;
        int r;

        r = qemu_read_pid_file(paths->swtpm_pid, &pid, &starttime);
        if (r < 0)
                return r;
        r = qemu_process_adopt(b->event, pid, starttime, on_exit, userdata, ret);
        if (r < 0)
                return r;
        cmdline_path = g_strdup_printf("/proc/%d/cmdline", (int) pid);
        if (!g_file_get_contents(cmdline_path, &cmdline, &len, NULL) ||
            !memmem(cmdline, len, dir, strlen(dir))) {
                *ret = qemu_process_free(*ret);
                return -ESRCH;
        }
        return 0;
}

void qemu_tpm_reattach(QemuDomain *qd) {
        const char *uuid = domain_uuid(qd->domain);

        if (!g_file_test(qd->paths->swtpm_pid, G_FILE_TEST_EXISTS))
                return;
        if (adopt_recorded(qd->backend, qd->paths, uuid, on_swtpm_exit, qd, &qd->swtpm) < 0) {
                log_error(
                        "domain '%s': its swtpm is gone since vmigrated last ran: the guest's TPM does not "
                        "answer (swtpm's log: %s)",
                        domain_name(qd->domain), qd->paths->swtpm_log);
                return;
        }
        log_info("domain '%s': re-attached to swtpm pid %d", domain_name(qd->domain),
                 (int) qemu_process_pid(qd->swtpm));
}

void qemu_tpm_kill_recorded(QemuBackend *b, const QemuPaths *paths, const char *uuid) {
        g_autoptr(QemuProcess) p = NULL;

        if (adopt_recorded(b, paths, uuid, NULL, NULL, &p) < 0)
                return;
        log_info("domain %s: killing swtpm pid %d, whose QEMU is gone", uuid, (int) qemu_process_pid(p));
        (void) qemu_process_kill(p);
}

void qemu_tpm_remove_state(QemuBackend *b, const char *uuid) {
        g_autofree char *dir = qemu_tpm_state_dir(b, uuid);

        if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
                return;
        log_info("domain %s: removing its TPM state %s", uuid, dir);
        rm_dir(dir);
}
