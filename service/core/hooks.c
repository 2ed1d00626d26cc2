/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "domain-xml.h"
#include "hooks.h"
#include "log.h"
#include "text.h"

/* ---- which files are hooks ---- */

static bool owner_is_trusted(const struct stat *st) {
        return st->st_uid == 0 || st->st_uid == geteuid();
}

static int hook_check(const char *dir, const char *name, GError **why) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        struct stat st;

        if (stat(path, &st) < 0)
                return g_set_error(why, G_FILE_ERROR, g_file_error_from_errno(errno), "%s", g_strerror(errno)),
                       -errno;
        if (!S_ISREG(st.st_mode))
                return g_set_error_literal(why, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a regular file"), -EINVAL;
        if (!owner_is_trusted(&st))
                return g_set_error(why, G_FILE_ERROR, G_FILE_ERROR_PERM, "owned by uid %u, not root",
                                   (unsigned) st.st_uid),
                       -EPERM;
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return g_set_error(why, G_FILE_ERROR, G_FILE_ERROR_PERM,
                                   "writable by group or others (mode %04o); chmod go-w it", st.st_mode & 07777),
                       -EPERM;
        if (access(path, X_OK) < 0)
                return g_set_error_literal(why, G_FILE_ERROR, G_FILE_ERROR_PERM, "not executable; chmod +x it"),
                       -EPERM;
        return 0;
}

static int compare_names(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

GStrv hooks_list(const char *dir) {
        g_autoptr(GStrvBuilder) hooks = g_strv_builder_new();
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) d = NULL;
        struct stat st;
        const char *name;

        if (!dir)
                return g_strv_builder_end(hooks);
        /* st is only read after a stat that succeeded, and errno only
         * after one that failed (valgrind saw both go wrong). */
        if (stat(dir, &st) < 0) {
                if (errno != ENOENT)
                        log_warning("hooks: cannot stat %s: %s: no hooks are run", dir, g_strerror(errno));
                return g_strv_builder_end(hooks);
        }
        if (!S_ISDIR(st.st_mode)) {
                log_warning("hooks: %s is not a directory: no hooks are run", dir);
                return g_strv_builder_end(hooks);
        }
        /* Whoever may write the directory may swap the hooks. */
        if (!owner_is_trusted(&st) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                log_warning("hooks: %s (owner uid %u, mode %04o) must be owned by root and not writable by group or others: no hooks "
                            "are run from it",
                            dir, (unsigned) st.st_uid, st.st_mode & 07777);
                return g_strv_builder_end(hooks);
        }
        d = g_dir_open(dir, 0, &error);
        if (!d) {
                log_warning("hooks: cannot read %s: %s", dir, error->message);
                return g_strv_builder_end(hooks);
        }
        while ((name = g_dir_read_name(d))) {
                g_autoptr(GError) why = NULL;

                if (name[0] == '.' || g_str_has_suffix(name, "~"))
                        continue;
                if (!domain_hook_name_is_valid(name)) {
                        g_autofree char *q = g_strescape(name, NULL);
                        log_warning("hooks: skipping %s/%s: not a hook name (letters, digits, '.', '_', '-')", dir, q);
                        continue;
                }
                if (hook_check(dir, name, &why) < 0) {
                        log_warning("hooks: skipping %s/%s: %s", dir, name, why->message);
                        continue;
                }
                g_ptr_array_add(names, g_strdup(name));
        }
        g_ptr_array_sort(names, compare_names);
        for (guint i = 0; i < names->len; i++)
                g_strv_builder_add(hooks, names->pdata[i]);
        return g_strv_builder_end(hooks);
}

/* ---- running one ---- */

struct HookRun {
        sd_event *event;
        char *name;
        char *what; /* "migrate prepare" */
        HookDone done;
        void *userdata;

        ChildWatch *child; /* NULL once reaped or when it never started */
        bool reaped;
        int status;
        bool timed_out;
        bool failed_to_start;
        char *start_error;
        uint64_t timeout_usec;

        int stdin_fd; /* our end of a socketpair: send() with MSG_NOSIGNAL, so no SIGPIPE */
        GBytes *input;
        size_t input_offset;
        int output_fd;
        GString *output;
        bool output_cut;

        sd_event_source *stdin_source;
        sd_event_source *output_source;
        sd_event_source *timer;
        sd_event_source *defer;
};

static void hook_run_free(HookRun *run) {
        if (!run)
                return;
        sd_event_source_disable_unref(run->stdin_source);
        sd_event_source_disable_unref(run->output_source);
        child_watch_free(run->child);
        sd_event_source_disable_unref(run->timer);
        sd_event_source_disable_unref(run->defer);
        if (run->stdin_fd >= 0)
                close(run->stdin_fd);
        if (run->output_fd >= 0)
                close(run->output_fd);
        if (run->input)
                g_bytes_unref(run->input);
        if (run->output)
                g_string_free(run->output, true);
        sd_event_unref(run->event);
        g_free(run->name);
        g_free(run->what);
        g_free(run->start_error);
        g_free(run);
}

static void close_stdin(HookRun *run) {
        run->stdin_source = sd_event_source_disable_unref(run->stdin_source);
        if (run->stdin_fd >= 0) {
                close(run->stdin_fd);
                run->stdin_fd = -1;
        }
}

static void close_output(HookRun *run) {
        run->output_source = sd_event_source_disable_unref(run->output_source);
        if (run->output_fd >= 0) {
                close(run->output_fd);
                run->output_fd = -1;
        }
}

/* Past HOOK_OUTPUT_MAX the rest is read and dropped. */
static bool read_output(HookRun *run) {
        return child_read_output(run->output_fd, run->output, HOOK_OUTPUT_MAX, CHILD_OUTPUT_HEAD, &run->output_cut);
}

static void hook_run_complete(HookRun *run) {
        g_autofree char *tail = NULL, *how = NULL, *message = NULL;
        HookResult result = {
                .name = run->name,
                .status = run->reaped && !run->timed_out ? run->status : -1,
                .timed_out = run->timed_out,
        };

        /* What the hook wrote before it exited is in the pipe; what a child
         * it left behind writes later is not waited for. */
        if (run->output_fd >= 0)
                (void) read_output(run);
        close_output(run);
        close_stdin(run);
        run->timer = sd_event_source_disable_unref(run->timer);

        result.ok = !run->failed_to_start && !run->timed_out && WIFEXITED(run->status) &&
                    WEXITSTATUS(run->status) == 0;
        result.output = run->output->str;
        if (!result.ok) {
                tail = text_last_lines(run->output->str, HOOK_TAIL_LINES);
                if (run->failed_to_start)
                        how = g_strdup_printf("could not be started: %s", run->start_error);
                else if (run->timed_out)
                        how = g_strdup_printf("did not finish within %" G_GUINT64_FORMAT " s and was killed",
                                              run->timeout_usec / G_USEC_PER_SEC);
                else
                        how = child_describe_status(run->status);
                message = g_strdup_printf("hook '%s' (%s) %s%s%s", run->name, run->what, how,
                                          *tail ? ": " : " (no output)", tail);
                result.message = message;
        }
        run->done(&result, run->userdata);
        hook_run_free(run);
}

static int on_stdin_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HookRun *run = userdata;
        size_t size;
        const char *data = g_bytes_get_data(run->input, &size);

        while (run->input_offset < size) {
                ssize_t n = send(fd, data + run->input_offset, size - run->input_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0) {
                        /* The hook does not read its stdin: its business. */
                        break;
                }
                run->input_offset += n;
        }
        close_stdin(run);
        return 0;
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HookRun *run = userdata;

        if (!read_output(run))
                close_output(run);
        return 0;
}

static void on_hook_exit(ChildWatch *w, int status, void *userdata) {
        HookRun *run = userdata;

        run->reaped = true;
        run->status = status;
        hook_run_complete(run);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        HookRun *run = userdata;

        log_warning("hook '%s' (%s): still running after %" G_GUINT64_FORMAT " s: killing it", run->name, run->what,
                    run->timeout_usec / G_USEC_PER_SEC);
        run->timed_out = true;
        /* The whole session: a hook's children must not outlive its timeout. */
        child_watch_kill(run->child);
        return 0;
}

static int on_deferred_failure(sd_event_source *s, void *userdata) {
        hook_run_complete(userdata);
        return 0;
}

static int hook_run_fail_later(HookRun *run, const char *why) {
        run->failed_to_start = true;
        run->start_error = g_strdup(why);
        return sd_event_add_defer(run->event, &run->defer, on_deferred_failure, run);
}

int hook_run(sd_event *event, const char *dir, const char *name, const HookRequest *req, uint64_t timeout_usec,
             HookDone done, void *userdata, HookRun **ret) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *env_name = g_strconcat("VMIGRATE_DOMAIN_NAME=", req->domain_name, NULL);
        g_autofree char *env_uuid = g_strconcat("VMIGRATE_DOMAIN_UUID=", req->domain_uuid, NULL);
        g_autofree char *env_phase = g_strconcat("VMIGRATE_PHASE=", req->sub_phase, NULL);
        char *const argv[] = { path, (char *) req->domain_name, (char *) req->phase, (char *) req->sub_phase, NULL };
        char *const envp[] = { (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               (char *) "LC_ALL=C", env_name, env_uuid, env_phase, NULL };
        g_autoptr(GError) why = NULL;
        HookRun *run = g_new0(HookRun, 1);
        pid_t pid = -1;
        int in[2] = { -1, -1 }, out[2] = { -1, -1 };
        int r;

        run->event = sd_event_ref(event);
        run->name = g_strdup(name);
        run->what = g_strdup_printf("%s %s", req->phase, req->sub_phase);
        run->done = done;
        run->userdata = userdata;
        run->stdin_fd = -1;
        run->output_fd = -1;
        run->output = g_string_new(NULL);
        run->timeout_usec = timeout_usec;
        run->input = g_bytes_new(req->xml ? req->xml : "", req->xml ? strlen(req->xml) : 0);

        /* Checked again right before running: the directory may have
         * changed since it was listed. */
        if (hook_check(dir, name, &why) < 0)
                r = hook_run_fail_later(run, why->message);
        else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
                 pipe2(out, O_CLOEXEC) < 0)
                r = hook_run_fail_later(run, g_strerror(errno));
        else {
                r = child_spawn(path, argv, envp, in[1], out[1], out[1], &pid);
                if (r < 0)
                        r = hook_run_fail_later(run, g_strerror(-r));
                else
                        r = child_watch_new(event, pid, on_hook_exit, run, &run->child);
        }
        if (in[1] >= 0)
                close(in[1]);
        if (out[1] >= 0)
                close(out[1]);
        run->stdin_fd = in[0];
        run->output_fd = out[0];
        if (r < 0) {
                hook_run_free(run);
                return r;
        }
        if (!run->child) {
                close_stdin(run);
                close_output(run);
                if (ret)
                        *ret = run;
                return 0;
        }

        log_info("hook '%s' (%s) for domain '%s': started as pid %d", name, run->what, req->domain_name,
                 (int) pid);
        (void) fcntl(run->stdin_fd, F_SETFL, O_NONBLOCK);
        (void) fcntl(run->output_fd, F_SETFL, O_NONBLOCK);
        r = sd_event_add_io(event, &run->output_source, run->output_fd, EPOLLIN, on_output, run);
        if (r >= 0)
                r = sd_event_add_io(event, &run->stdin_source, run->stdin_fd, EPOLLOUT, on_stdin_writable, run);
        if (r >= 0 && timeout_usec > 0)
                r = sd_event_add_time_relative(event, &run->timer, CLOCK_MONOTONIC, timeout_usec, 10 * 1000,
                                               on_timeout, run);
        if (r < 0) {
                hook_run_free(run); /* kills and reaps it: it must not run unwatched */
                return r;
        }
        if (ret)
                *ret = run;
        return 0;
}

void hook_run_cancel(HookRun *run) {
        if (!run)
                return;
        /* Killed and reaped at once: SIGKILL cannot be ignored, and a
         * zombie must not be left for nobody. */
        hook_run_free(run);
}
