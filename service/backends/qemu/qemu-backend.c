/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "qemu" backend: one qemu-system-x86_64 per running domain, driven over
 * QMP. Domain type "kvm" runs under KVM, "qemu" under TCG.
 *
 * Every QEMU starts paused (-S) with a monitor socket the daemon bound before
 * exec, so there is no window in which QEMU runs unwatched or the daemon
 * polls for a socket to appear. The process is watched through a pidfd;
 * QEMU runs in its own session so that it outlives a daemon restart, and
 * its runtime directory records what a restarted daemon needs to find it
 * again (pid + start time, the running definition, the state reason).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "host-features.h"
#include "manager.h"
#include "networks.h"
#include "qemu-backend.h"
#include "qemu-firmware.h"

bool kvm_usable(void) {
        return access("/dev/kvm", R_OK | W_OK) == 0;
}

static const char *qemu_binary_path(void) {
        const char *env = getenv("VMIGRATE_QEMU");
        return env && *env ? env : "qemu-system-x86_64";
}

/* ---- backend ---- */

static int qemu_load_caps(QemuBackend *b, GError **error) {
        g_autofree char *binary = g_find_program_in_path(qemu_binary_path());
        g_autoptr(QemuCaps) caps = NULL;
        int r;

        if (!binary)
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                    "%s not found; install QEMU (package qemu-system-x86) or set VMIGRATE_QEMU",
                                    qemu_binary_path());
        if (qemu_caps_load_cache(b->cache_path, binary, &caps) >= 0) {
                log_debug("QEMU capabilities of %s from %s", binary, b->cache_path);
        } else {
                g_autoptr(GError) first = NULL;
                /* Once more on failure: a loaded machine can make a probe
                 * stumble (seen once in the test suite, not understood yet);
                 * a binary that is really broken fails twice the same way. */
                r = qemu_caps_probe(binary, &caps, &first);
                if (r < 0) {
                        log_warning("probing %s failed (%s): trying once more", binary, first->message);
                        r = qemu_caps_probe(binary, &caps, error);
                }
                if (r < 0)
                        return r;
                g_autoptr(GError) local = NULL;
                if (qemu_caps_save_cache(caps, b->cache_path, &local) < 0)
                        log_warning("%s", local->message);
        }
        qemu_migrate_options_clear(b);
        qemu_caps_free(b->caps);
        b->caps = g_steal_pointer(&caps);
        return 0;
}

static int qemu_init(const BackendContext *ctx, void **ret_backend_data, GError **error) {
        g_autofree QemuBackend *b = g_new0(QemuBackend, 1);
        g_autofree char *state = g_build_filename(ctx->state_dir, "qemu", NULL);
        g_autofree char *log_dir = NULL;
        int r;

        b->qemu_dir = g_build_filename(ctx->runtime_dir, "qemu", NULL);
        b->cache_path = g_build_filename(state, "capabilities.json", NULL);
        b->nvram_dir = g_build_filename(state, "nvram", NULL);
        b->swtpm_dir = g_build_filename(state, "swtpm", NULL);
        log_dir = g_build_filename(b->qemu_dir, "log", NULL);
        if (g_mkdir_with_parents(state, 0755) < 0 || g_mkdir_with_parents(log_dir, 0700) < 0) {
                r = -errno;
                g_free(b->qemu_dir);
                g_free(b->cache_path);
                g_free(b->nvram_dir);
                g_free(b->swtpm_dir);
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot create %s or %s: %s", state,
                                    log_dir, g_strerror(-r));
        }
        r = qemu_load_caps(b, error);
        if (r < 0) {
                g_free(b->qemu_dir);
                g_free(b->cache_path);
                g_free(b->nvram_dir);
                g_free(b->swtpm_dir);
                return r;
        }
        b->event = sd_event_ref(ctx->event);
        b->stale = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        b->claimed_ports = g_hash_table_new(g_direct_hash, g_direct_equal);
        *ret_backend_data = g_steal_pointer(&b);
        return 0;
}

static void qemu_fini(void *backend_data) {
        QemuBackend *b = backend_data;

        sd_event_unref(b->event);
        g_hash_table_unref(b->stale);
        g_hash_table_unref(b->claimed_ports);
        qemu_migrate_options_clear(b);
        qemu_caps_free(b->caps);
        g_free(b->qemu_dir);
        g_free(b->cache_path);
        g_free(b->nvram_dir);
        g_free(b->swtpm_dir);
        g_free(b);
}

int qemu_domain_firmware_def(QemuBackend *b, const DomainDef *def, const DomainDef **ret_def, DomainDef **ret_copy,
                             GError **error) {
        g_autoptr(DomainDef) copy = NULL;
        int r;

        *ret_copy = NULL;
        *ret_def = def;
        if (!qemu_firmware_needs_resolving(def) && !(def->os_loader_pflash && !def->os_nvram_template))
                return 0;
        copy = domain_def_copy(def);
        r = qemu_firmware_resolve(copy, qemu_caps_resolve_machine(b->caps, def->os_machine), error);
        if (r < 0 && def->os_loader) {
                /* A named loader whose template no descriptor knows: needed
                 * only to make a missing NVRAM (qemu_nvram_ensure says so
                 * then); an existing or arriving one does without. */
                g_clear_error(error);
                return 0;
        }
        if (r < 0)
                return r;
        *ret_def = copy;
        *ret_copy = g_steal_pointer(&copy);
        return 0;
}

/* Checks that need no files: the definition fits this backend and QEMU. */
int qemu_validate(void *backend_data, const DomainDef *def, GError **error) {
        QemuBackend *b = backend_data;
        g_autoptr(QemuPaths) paths = qemu_paths_new(b->qemu_dir, def->uuid);
        QemuCommandOptions options = { .binary = b->caps->binary, .kvm = true, .qmp_fd = 3 };
        g_auto(GStrv) argv = NULL;
        g_autoptr(DomainDef) resolved = NULL;
        int r;

        if (def->os_machine && !qemu_caps_has_machine(b->caps, def->os_machine))
                return vm_error_set(error, VM_ERROR_UNSUPPORTED_BACKEND,
                                    "<os><type machine='%s'>: QEMU %u.%u.%u (%s) has no such machine type; "
                                    "GetCapabilities lists the ones it has",
                                    def->os_machine, b->caps->major, b->caps->minor, b->caps->micro,
                                    b->caps->binary);
        r = qemu_domain_firmware_def(b, def, &def, &resolved, error);
        if (r < 0)
                return r;
        return qemu_build_argv(def, paths, &options, &argv, error);
}

/* Kernels and firmware must be regular files; disks may also be block
 * devices. Anything else (a FIFO, say) would hang QEMU at start. */
static int check_file(const char *what, const char *path, int mode, bool block_ok, GError **error) {
        struct stat st;

        if (stat(path, &st) < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "%s %s is not %s: %s", what, path,
                                    mode & W_OK ? "readable and writable" : "readable", g_strerror(errno));
        if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode)))
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "%s %s is not a regular file%s", what, path,
                                    block_ok ? " or block device" : "");
        if (access(path, mode) < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "%s %s is not %s: %s", what, path,
                                    mode & W_OK ? "readable and writable" : "readable", g_strerror(errno));
        return 0;
}

static uint64_t host_memory_bytes(void) {
        g_autofree char *meminfo = NULL;
        const char *p;

        if (!g_file_get_contents("/proc/meminfo", &meminfo, NULL, NULL))
                return 0;
        p = strstr(meminfo, "MemTotal:");
        return p ? g_ascii_strtoull(p + strlen("MemTotal:"), NULL, 10) * 1024 : 0;
}

/* Checks that need the host as it is now: run right before starting. */
static int qemu_check_startable(QemuBackend *b, const DomainDef *def, GError **error) {
        uint64_t host_memory = host_memory_bytes();
        int r;

        if (g_str_equal(def->type, "kvm") && !kvm_usable())
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "domain type 'kvm' needs /dev/kvm, which is missing or not accessible "
                                    "here; use <domain type='qemu'> to run it under TCG");
        if (host_memory > 0 && def->memory_bytes > host_memory)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "<memory>: %" G_GUINT64_FORMAT " MiB is more than this host's %" G_GUINT64_FORMAT
                                    " MiB of RAM",
                                    def->memory_bytes >> 20, host_memory >> 20);

        const struct {
                const char *what, *path;
        } files[] = {
                { "kernel", def->os_kernel },
                { "initrd", def->os_initrd },
                { "firmware", def->os_loader },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(files); i++)
                if (files[i].path) {
                        r = check_file(files[i].what, files[i].path, R_OK, false, error);
                        if (r < 0)
                                return r;
                }
        for (unsigned i = 0; i < def->disks->len; i++) {
                const DomainDiskDef *disk = def->disks->pdata[i];
                if (!disk->source_file)
                        continue; /* a CD-ROM drive with no medium: nothing to open */
                g_autofree char *what = g_strdup_printf("disk %s:", disk->target_dev);
                r = check_file(what, disk->source_file, disk->readonly ? R_OK : R_OK | W_OK, true, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- bridge interfaces ---- */

/* The tap of interface i: "vm" + the first 8 hex digits of the UUID + "-i",
 * within IFNAMSIZ, stable so that an admin can tell whose it is. */
static char *tap_name(const char *uuid, unsigned i) {
        return g_strdup_printf("vm%.8s-%u", uuid, i);
}

/* A tap for QEMU (IFF_VNET_HDR: QEMU probes it and offloads through it),
 * up, and attached to bridge unless bridge is NULL. Not persistent: it
 * goes away with the last fd, i.e. when QEMU exits. */
static int tap_open(const char *name, const char *bridge, int *ret_fd, GError **error) {
        struct ifreq ifr = { 0 };
        int fd, sock, r = 0;

        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot open /dev/net/tun: %s",
                                    g_strerror(errno));
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        g_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                r = -errno;
                close(fd);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot create tap device %s: %s", name,
                                    g_strerror(-r));
        }
        sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0) {
                r = -errno;
                close(fd);
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "socket: %s", g_strerror(-r));
        }
        if (bridge) {
                struct ifreq br = { 0 }, tap = { 0 };
                g_strlcpy(tap.ifr_name, name, IFNAMSIZ);
                g_strlcpy(br.ifr_name, bridge, IFNAMSIZ);
                if (ioctl(sock, SIOCGIFINDEX, &tap) >= 0)
                        br.ifr_ifindex = tap.ifr_ifindex;
                if (br.ifr_ifindex == 0 || ioctl(sock, SIOCBRADDIF, &br) < 0) {
                        r = -errno;
                        vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot attach tap %s to bridge %s: %s", name,
                                     bridge, g_strerror(-r));
                }
        }
        if (r >= 0 && (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0 ||
                       (ifr.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &ifr) < 0))) {
                r = -errno;
                vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot bring tap %s up: %s", name, g_strerror(-r));
        }
        close(sock);
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

static void close_fds(GArray *fds) {
        for (guint i = 0; i < fds->len; i++)
                if (g_array_index(fds, int, i) >= 0)
                        close(g_array_index(fds, int, i));
        g_array_set_size(fds, 0);
}

/* One tap per <interface type='bridge'> or 'network' (the bridge the host's
 * network table names, networks.h), in order (-1 for other types).
 * A bridge that is missing or refuses the tap is an error, except for an
 * interface the domain does not require arriving by migration: it runs
 * unconnected, link down, and the core reports that as a warning. */
static int open_taps(QemuDomain *qd, const DomainDef *def, bool incoming, GArray *ret_fds, GError **error) {
        for (guint i = 0; i < def->interfaces->len; i++) {
                const DomainInterfaceDef *iface = def->interfaces->pdata[i];
                g_autofree char *name = NULL, *problem = NULL, *bridge = NULL;
                g_autoptr(GError) local = NULL;
                bool may_fail = incoming && !domain_def_requires_interface(def, iface);
                const char *networks_dir = qd->domain->manager ? qd->domain->manager->networks_dir : NULL;
                int fd = -1, r;

                r = interface_lookup_bridge(networks_dir, iface, &bridge, &problem);
                if (r == 0) {
                        g_array_append_val(ret_fds, fd);
                        continue;
                }
                name = tap_name(def->uuid, i);
                if (r > 0)
                        problem = host_bridge_problem(NULL, bridge);
                if (problem && !may_fail) {
                        close_fds(ret_fds);
                        if (!bridge)
                                return vm_error_set(error,
                                                    incoming ? VM_ERROR_INCOMPATIBLE : VM_ERROR_BACKEND_FAILED,
                                                    "interface %s: %s; write the bridge's name in %s/%s, or "
                                                    "change the interface's <source network=…>",
                                                    iface->mac, problem, networks_dir ? networks_dir : "",
                                                    iface->source);
                        return vm_error_set(error, incoming ? VM_ERROR_INCOMPATIBLE : VM_ERROR_BACKEND_FAILED,
                                            "interface %s: %s; create it (ip link add %s type bridge) or change "
                                            "the interface's <source %s=…>",
                                            iface->mac, problem, bridge, iface->type);
                }
                r = tap_open(name, problem ? NULL : bridge, &fd, &local);
                if (r < 0 && may_fail && !problem) {
                        g_autofree char *warning = g_strdup_printf(
                                "interface %s: %s; not required, so it runs unconnected (link down)", iface->mac,
                                local->message);
                        domain_backend_warning(qd->domain, warning);
                        g_clear_error(&local);
                        problem = g_strdup("attach failed");
                        r = tap_open(name, NULL, &fd, &local);
                }
                if (r < 0) {
                        close_fds(ret_fds);
                        g_propagate_prefixed_error(error, g_steal_pointer(&local), "interface %s: ", iface->mac);
                        return r;
                }
                if (problem) {
                        log_warning("domain '%s': interface %s runs unconnected (link down): %s", def->name,
                                    iface->mac, problem);
                        g_ptr_array_add(qd->links_down, g_strdup_printf("net%u", i));
                }
                g_array_append_val(ret_fds, fd);
        }
        return 0;
}

static void set_links_down(QemuDomain *qd) {
        for (guint i = 0; qd->qmp && i < qd->links_down->len; i++) {
                JsonObject *args = json_object_new();
                json_object_set_string_member(args, "name", qd->links_down->pdata[i]);
                json_object_set_boolean_member(args, "up", false);
                log_info("domain '%s': setting the link of %s down: it is not connected here",
                         domain_name(qd->domain), (const char *) qd->links_down->pdata[i]);
                (void) qmp_execute(qd->qmp, "set_link", args, QEMU_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
        }
        g_ptr_array_set_size(qd->links_down, 0);
}

/* ---- per-domain state ---- */

void qemu_domain_report(QemuDomain *qd, DomainState state, const char *reason, const char *event,
                               const char *detail) {
        /* Remembered for a daemon restart: the process tells us running or
         * paused, but not why. */
        if (qd->process && reason)
                (void) g_file_set_contents(qd->paths->reason, reason, -1, NULL);
        domain_backend_event(qd->domain, state, reason, event, detail);
}

void qemu_domain_complete(QemuDomain *qd, int r, const GError *error) {
        BackendDone done = qd->done, overtaken = qd->overtaken_done;
        void *userdata = qd->userdata, *overtaken_userdata = qd->overtaken_userdata;
        BackendDone ended = qd->ended_later && r >= 0 ? NULL : qd->ended;
        void *ended_userdata = qd->ended_userdata;

        qd->op = QEMU_OP_NONE;
        qd->done = NULL;
        qd->userdata = NULL;
        qd->overtaken_done = NULL;
        qd->overtaken_userdata = NULL;
        if (ended) {
                qd->ended = NULL;
                qd->ended_later = false;
        }
        if (overtaken)
                overtaken(r, error, overtaken_userdata);
        if (done)
                done(r, error, userdata);
        if (ended)
                ended(r, error, ended_userdata);
}

void qemu_domain_stream_ended(QemuDomain *qd, int r, const GError *error) {
        BackendDone ended = g_steal_pointer(&qd->ended);

        qd->ended_later = false;
        if (ended)
                ended(r, error, qd->ended_userdata);
}

void qemu_domain_complete_error(QemuDomain *qd, VmError code, const char *format, ...) {
        g_autoptr(GError) error = NULL;
        va_list ap;

        va_start(ap, format);
        g_autofree char *message = g_strdup_vprintf(format, ap);
        va_end(ap);
        error = g_error_new_literal(VM_ERROR, code, message);
        qemu_domain_complete(qd, -vm_error_errno(code), error);
}

static void rm_rf(const char *path) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (dir)
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *child = g_build_filename(path, name, NULL);
                        if (unlink(child) < 0 && errno == EISDIR)
                                rm_rf(child);
                }
        (void) rmdir(path);
}

/* QEMU is gone: drop everything that pointed at it. */
static void qemu_domain_release(QemuDomain *qd) {
        /* Its re-attach queries, if any, will not answer. */
        domain_backend_settling(qd->domain, false);
        qd->shutdown_timer = sd_event_source_disable_unref(qd->shutdown_timer);
        qd->qmp = qmp_free(qd->qmp);
        qd->process = qemu_process_free(qd->process);
        qemu_tpm_stop(qd);
        g_ptr_array_set_size(qd->links_down, 0);
        qemu_displays_release(qd);
        rm_rf(qd->paths->dir);
        qd->guest_shut_down = false;
        qd->terminating = false;
}

static char *describe_exit(int status) {
        if (status < 0)
                return g_strdup("exited (status unknown: it was started before vmigrated last restarted)");
        if (WIFEXITED(status))
                return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
        if (WIFSIGNALED(status))
                return g_strdup_printf("was killed by signal %d (%s)", WTERMSIG(status),
                                       strsignal(WTERMSIG(status)));
        return g_strdup("exited");
}

/* QEMU's last words since it was last started, without our header lines. */
static char *qemu_log_tail(const char *path) {
        g_autofree char *tail = file_tail(path, 4 * QEMU_LOG_TAIL_LINES);
        g_auto(GStrv) lines = NULL;
        g_autoptr(GPtrArray) kept = g_ptr_array_new();

        if (!tail)
                return NULL;
        lines = g_strsplit(tail, "\n", -1);
        for (char **l = lines; *l; l++) {
                if (g_str_has_prefix(*l, QEMU_LOG_HEADER)) {
                        g_ptr_array_set_size(kept, 0); /* an earlier run's output */
                        continue;
                }
                if (**l)
                        g_ptr_array_add(kept, *l);
        }
        while (kept->len > QEMU_LOG_TAIL_LINES)
                g_ptr_array_remove_index(kept, 0);
        if (kept->len == 0)
                return NULL;
        g_ptr_array_add(kept, NULL);
        return g_strjoinv("; ", (char **) kept->pdata);
}

static void on_process_exit(QemuProcess *p, int status, void *userdata) {
        QemuDomain *qd = userdata;
        g_autofree char *tail = qemu_log_tail(qd->paths->log);
        g_autofree char *how = describe_exit(status);
        QemuOp op = qd->op;
        bool terminating = qd->terminating, guest_shut_down = qd->guest_shut_down,
             discarding = qd->discarding;

        qemu_domain_release(qd);
        qd->postcopy_coming = qd->discarding = false;
        if (qd->migration) {
                /* Migration decides what this exit means (migrated away,
                 * discarded, or died mid-stream). */
                qemu_migration_process_exited(qd, how, tail);
                return;
        }

        if (op == QEMU_OP_START) {
                /* Never ran: the state stays shut off, the caller hears why. */
                log_error("domain '%s': QEMU %s while starting: %s", domain_name(qd->domain), how,
                          tail ? tail : "(no output)");
                qemu_domain_complete_error(qd, VM_ERROR_BACKEND_FAILED, "QEMU %s while starting the guest: %s",
                                           how, tail ? tail : "(no output)");
                return;
        }

        if (terminating && discarding)
                qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "failed", "stopped", "failed");
        else if (terminating)
                qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "destroyed", "stopped", "destroyed");
        else if (guest_shut_down)
                qemu_domain_report(qd, DOMAIN_STATE_SHUTOFF, "shutdown", "stopped", "shutdown");
        else {
                g_autofree char *reason = g_strdup_printf("crashed: QEMU %s%s%s", how,
                                                          tail ? "; its last output: " : "", tail ? tail : "");
                log_error("domain '%s': %s", domain_name(qd->domain), reason);
                qemu_domain_report(qd, DOMAIN_STATE_CRASHED, reason, "stopped", "crashed");
        }

        if (op == QEMU_OP_SHUTDOWN || op == QEMU_OP_DESTROY)
                qemu_domain_complete(qd, 0, NULL);
        else if (op != QEMU_OP_NONE)
                qemu_domain_complete_error(qd, VM_ERROR_BACKEND_FAILED, "QEMU %s before the operation completed",
                                           how);
}

bool json_get_bool_member(JsonObject *o, const char *name, bool fallback) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
                return fallback;
        return json_node_get_boolean(n);
}

const char *json_str(JsonObject *o, const char *name) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

static void coming_event(QemuDomain *qd, const char *status);

static void on_qmp_event(Qmp *qmp, const char *event, JsonObject *data, uint64_t timestamp_usec, void *userdata) {
        QemuDomain *qd = userdata;
        DomainState state = qd->domain->state;

        log_debug("domain '%s': QMP event %s", domain_name(qd->domain), event);
        /* The guest runs with the state it brought: now its unconnected
         * interfaces can say so. */
        if (g_str_equal(event, "RESUME") && qd->links_down->len > 0)
                set_links_down(qd);
        qemu_migration_block_job_event(qd, event, data);
        if (qd->migration && qemu_migration_event(qd, event, data))
                return;
        if (qd->postcopy_coming && g_str_equal(event, "MIGRATION")) {
                coming_event(qd, json_str(data, "status"));
                return;
        }
        if (g_str_equal(event, "STOP")) {
                if (state == DOMAIN_STATE_RUNNING)
                        qemu_domain_report(qd, DOMAIN_STATE_PAUSED, qd->op == QEMU_OP_SUSPEND ? "user" : "unknown",
                                           "suspended", "paused");
        } else if (g_str_equal(event, "RESUME")) {
                if (qd->op == QEMU_OP_START)
                        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "booted", "started", "booted");
                else if (state == DOMAIN_STATE_PAUSED)
                        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "unpaused", "resumed", "unpaused");
        } else if (g_str_equal(event, "SHUTDOWN")) {
                /* QEMU exits next (no -no-shutdown); the exit settles the state. */
                if (json_get_bool_member(data, "guest", false)) {
                        qd->guest_shut_down = true;
                        domain_backend_event(qd->domain, state, qd->domain->state_reason, "shutdown", "finished");
                }
        } else if (g_str_equal(event, "RESET")) {
                log_info("domain '%s': the guest was reset", domain_name(qd->domain));
        }
}

static void on_qmp_state(Qmp *qmp, QmpState state, const GError *error, void *userdata) {
        QemuDomain *qd = userdata;

        /* QEMU closing the monitor means it is exiting; the pidfd tells us
         * when it has, and that settles the state. */
        if (state == QMP_CLOSED && error)
                log_debug("domain '%s': monitor closed: %s", domain_name(qd->domain), error->message);
}

static int qemu_domain_connect(QemuDomain *qd, GError **error) {
        int r;

        r = qmp_new(qd->backend->event, on_qmp_event, on_qmp_state, qd, &qd->qmp);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot create a QMP client: %s",
                                    g_strerror(-r));
        r = qmp_connect_path(qd->qmp, qd->paths->qmp_socket, error);
        if (r < 0)
                qd->qmp = qmp_free(qd->qmp);
        return r;
}

/* ---- re-attach ---- */

int qemu_read_pid_file(const char *path, pid_t *ret_pid, uint64_t *ret_starttime) {
        g_autofree char *contents = NULL;
        g_auto(GStrv) fields = NULL;
        guint64 pid, starttime;

        if (!g_file_get_contents(path, &contents, NULL, NULL))
                return -ENOENT;
        fields = g_strsplit(g_strstrip(contents), " ", -1);
        if (g_strv_length(fields) != 2 || !g_ascii_string_to_unsigned(fields[0], 10, 2, INT32_MAX, &pid, NULL) ||
            !g_ascii_string_to_unsigned(fields[1], 10, 0, G_MAXUINT64, &starttime, NULL))
                return -EINVAL;
        *ret_pid = (pid_t) pid;
        *ret_starttime = starttime;
        return 0;
}

static bool cmdline_has_uuid(pid_t pid, const char *uuid) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int) pid);
        g_autofree char *cmdline = NULL;
        size_t len;

        if (!g_file_get_contents(path, &cmdline, &len, NULL))
                return false;
        for (size_t i = 0; i + 1 < len; i += strlen(cmdline + i) + 1)
                if (g_str_equal(cmdline + i, "-uuid") && i + 6 < len && g_str_equal(cmdline + i + 6, uuid))
                        return true;
        return false;
}

/* The QEMU recorded in paths, if it still runs and is the one we started. */
static int adopt_recorded(QemuBackend *b, const QemuPaths *paths, const char *uuid, QemuProcessExitFn on_exit,
                          void *userdata, QemuProcess **ret) {
        uint64_t starttime;
        pid_t pid;
        int r;

        r = qemu_read_pid_file(paths->pid, &pid, &starttime);
        if (r < 0)
                return r;
        r = qemu_process_adopt(b->event, pid, starttime, on_exit, userdata, ret);
        if (r < 0)
                return r;
        if (!cmdline_has_uuid(pid, uuid)) {
                *ret = qemu_process_free(*ret);
                return -ESRCH;
        }
        return 0;
}

/* ---- an arrival whose source was told it may switch to post-copy ----
 *
 * Before it switches, the source asks this host (Incoming.Arrival), and
 * the answer is recorded here first: paths->postcopy says "coming". A
 * restart of vmigrated must not discard such an arrival as it discards
 * any other half-arrived guest (qemu_recover): the switch may be on its
 * way, and after it the guest can run only here. Which way the stream
 * went then comes from QEMU (a post-copy status: it switched; failed or
 * cancelled: the source stopped it, and runs its copy) or, when QEMU
 * says "completed" (a pre-copy that completed before the switch, or a
 * post-copy done while nobody watched: QEMU does not say which), from the
 * source's next word (migrate_settle_coming). Until then it is paused,
 * StateReason postcopy-coming. */

static void reattach_settle_migration(QemuDomain *qd, const char *status);

/* An incoming stream's status once it ended without a switch. */
static bool status_ended_unswitched(const char *status) {
        return g_str_equal(status, "failed") || g_str_equal(status, "cancelled") ||
                g_str_equal(status, "cancelling") || g_str_equal(status, "none");
}

int qemu_migrate_postcopy_coming(void *domain_data, GError **error) {
        QemuDomain *qd = domain_data;
        g_autoptr(GError) local = NULL;
        g_autofree char *role = NULL;

        if (g_file_get_contents(qd->paths->postcopy, &role, NULL, NULL) && g_str_equal(role, "in"))
                return 0; /* switched already (a second StartPostCopy) */
        if (!g_file_set_contents_full(qd->paths->postcopy, "coming", -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                      0600, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED,
                                    "cannot record that the source switches to post-copy: %s",
                                    local->message);
        return 0;
}

/* The source kept the guest: the copy here goes (its exit reports the
 * domain shut off, reason failed). */
static void coming_discard(QemuDomain *qd, const char *why) {
        log_warning("domain '%s': %s: discarding the copy that arrived here", domain_name(qd->domain), why);
        qd->postcopy_coming = false;
        qd->discarding = true;
        qemu_domain_terminate(qd);
}

/* QEMU's migration status of a held arrival (at the re-attach, then its
 * events). */
static void coming_event(QemuDomain *qd, const char *status) {
        if (!status)
                return;
        if (g_str_has_prefix(status, "postcopy")) {
                log_info("domain '%s': its stream switched to post-copy (%s): the guest can run only here",
                         domain_name(qd->domain), status);
                qd->postcopy_coming = false;
                (void) g_file_set_contents(qd->paths->postcopy, "in", -1, NULL);
                reattach_settle_migration(qd, status);
                return;
        }
        if (status_ended_unswitched(status)) {
                coming_discard(qd, "its stream ended without a switch to post-copy");
                return;
        }
        qd->coming_completed = g_str_equal(status, "completed");
        if (qd->postcopy_coming) {
                if (g_str_equal(status, "completed"))
                        log_info("domain '%s': its stream completed, which does not say whether it "
                                 "switched to post-copy: held until its source says",
                                 domain_name(qd->domain));
                return;
        }
        qd->postcopy_coming = true;
        log_warning("domain '%s': found arriving (%s) after its source was told it may switch to post-copy: "
                    "held paused until the stream or the source says whether it switched",
                    domain_name(qd->domain), status);
        qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "postcopy-coming", NULL, NULL);
}

int qemu_migrate_settle_coming(void *domain_data, bool switched, GError **error) {
        QemuDomain *qd = domain_data;

        if (!qd->postcopy_coming || !qd->process)
                return vm_error_set(error, VM_ERROR_INVALID_STATE,
                                    "domain '%s' holds no arrival waiting for its source's word",
                                    domain_name(qd->domain));
        if (!switched) {
                coming_discard(qd, "its source says the stream never switched to post-copy");
                return 0;
        }
        if (!qd->coming_completed)
                return 0; /* the switch is on its way: QEMU's event runs it */
        /* A post-copy completed while nobody watched. */
        qd->postcopy_coming = false;
        (void) g_file_set_contents(qd->paths->postcopy, "in", -1, NULL);
        reattach_settle_migration(qd, "completed");
        return 1;
}

static void on_hold_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                           void *userdata) {
        QemuDomain *qd = userdata;
        JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        const char *status = json_str(o, "status");

        /* What the stream did before its events came here. */
        if (status && qd->postcopy_coming)
                reattach_settle_migration(qd, status);
}

void qemu_migrate_hold_coming(void *domain_data) {
        QemuDomain *qd = domain_data;

        /* As a restart would find it (arrival_kept): held until the
         * stream's next event or the source's word, the stream's status
         * asked once now. */
        if (!qemu_migration_detach(qd) || !qd->process)
                return; /* being discarded, or gone: its exit says so */
        coming_event(qd, "active");
        if (qd->qmp)
                (void) qmp_execute(qd->qmp, "query-migrate", NULL, QEMU_COMMAND_TIMEOUT_USEC, on_hold_status,
                                   qd, NULL);
}

/* A migration this QEMU was in when vmigrated stopped has nobody driving
 * it any more: settle it so that the guest runs on one host. Pre-copy still
 * streaming: cancel (the destination's vmigrated discards its half); an
 * arrival whose source was told it may switch waits (coming_event). Copied
 * but not confirmed (postmigrate): the destination may or may not have got
 * Finish and run it, so it stays paused (migration-unconfirmed) until the
 * core has asked (recover.h). Post-copy: keep it as it is, paused, the
 * guest being split between the hosts. */
/* An arrival switched to post-copy before Finish could run it here: the
 * source's QEMU will never run the guest again, so it runs here. */
static void reattach_run_arrived(QemuDomain *qd, const char *reason) {
        log_warning("domain '%s': arrived in post-copy but never ran: running it", domain_name(qd->domain));
        (void) unlink(qd->paths->incoming);
        (void) qmp_execute(qd->qmp, "cont", NULL, QEMU_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, reason, "resumed", reason);
}

static void reattach_settle_migration(QemuDomain *qd, const char *status) {
        g_autofree char *role = NULL;

        if (g_file_get_contents(qd->paths->postcopy, &role, NULL, NULL) && g_str_equal(role, "coming")) {
                if (!g_str_has_prefix(status, "postcopy")) {
                        coming_event(qd, status);
                        return;
                }
                /* It switched after the start looked (qemu_recover). */
                (void) g_file_set_contents(qd->paths->postcopy, "in", -1, NULL);
        }
        g_clear_pointer(&role, g_free);
        if (g_str_equal(status, "completed") &&
            g_file_get_contents(qd->paths->postcopy, &role, NULL, NULL)) {
                if (g_str_equal(role, "out")) {
                        /* Its post-copy ended while nobody watched: the guest
                         * runs on the destination, whole. Never run this
                         * copy again. */
                        log_info("domain '%s': its post-copy completed while vmigrated was not running: the "
                                 "guest runs on the destination; stopping it here",
                                 domain_name(qd->domain));
                        qemu_migration_reattach_postcopy_completed(qd);
                        return;
                }
                /* Arrived whole while nobody watched: it is an ordinary
                 * guest of this host now. */
                log_info("domain '%s': its post-copy arrival completed while vmigrated was not running",
                         domain_name(qd->domain));
                (void) unlink(qd->paths->postcopy);
                if (qd->domain->state == DOMAIN_STATE_PAUSED)
                        reattach_run_arrived(qd, "migrated");
                else
                        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "migrated", NULL, NULL);
                return;
        }
        if (g_str_equal(status, "active") || g_str_equal(status, "setup") || g_str_equal(status, "device")) {
                log_warning("domain '%s': found an outgoing pre-copy nobody drives since vmigrated restarted: "
                            "cancelling it; the guest stays here",
                            domain_name(qd->domain));
                (void) qmp_execute(qd->qmp, "migrate_cancel", NULL, QEMU_COMMAND_TIMEOUT_USEC, NULL, NULL, NULL);
        } else if (g_str_equal(status, "completed") && qd->domain->state == DOMAIN_STATE_PAUSED &&
                   (g_strcmp0(qd->domain->state_reason, "migration") == 0 ||
                    g_strcmp0(qd->domain->state_reason, "migration-unconfirmed") == 0)) {
                /* The destination may run it already: the core asks it
                 * (recover.h), then settles it here. */
                log_warning("domain '%s': its migration was copied but never confirmed before vmigrated "
                            "restarted: paused until the destination says whether it runs it",
                            domain_name(qd->domain));
                qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "migration-unconfirmed", NULL, NULL);
        } else if (g_str_has_prefix(status, "postcopy")) {
                bool broken = !g_str_equal(status, "postcopy-active");

                /* Never killed: neither host has the whole guest. */
                if (g_file_get_contents(qd->paths->postcopy, &role, NULL, NULL)) {
                        qemu_migration_reattach_postcopy(qd, g_str_equal(role, "out"), broken);
                        if (g_str_equal(role, "in") && !broken && qd->domain->state == DOMAIN_STATE_PAUSED)
                                reattach_run_arrived(qd, "postcopy");
                } else {
                        log_warning("domain '%s': found in post-copy (%s) with no record of its side: keeping it",
                                    domain_name(qd->domain), status);
                        qemu_domain_report(qd, qd->domain->state, "postcopy-failed", NULL, NULL);
                }
        }
}

static void on_reattach_migration(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                                  void *userdata) {
        QemuDomain *qd = userdata;
        JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
        const char *status = json_str(o, "status");

        if (status)
                reattach_settle_migration(qd, status);
        domain_backend_settling(qd->domain, false);
}

static void on_reattach_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                               void *userdata) {
        QemuDomain *qd = userdata;
        JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;

        if (!o)
                log_warning("domain '%s': query-status after re-attach failed: %s", domain_name(qd->domain),
                            error ? error->message : "malformed reply");
        else if (json_get_bool_member(o, "running", true)) {
                if (qd->domain->state != DOMAIN_STATE_RUNNING)
                        qemu_domain_report(qd, DOMAIN_STATE_RUNNING, qd->domain->state_reason, NULL, NULL);
        } else if (qd->domain->state != DOMAIN_STATE_PAUSED)
                qemu_domain_report(qd, DOMAIN_STATE_PAUSED, qd->domain->state_reason, NULL, NULL);

        /* Then which migration it is in, if any: settled once that answers. */
        if (error || !qd->qmp ||
            qmp_execute(qd->qmp, "query-migrate", NULL, QEMU_COMMAND_TIMEOUT_USEC, on_reattach_migration, qd, NULL) < 0)
                domain_backend_settling(qd->domain, false);
}

static void qemu_domain_reattach(QemuDomain *qd) {
        g_autoptr(GError) error = NULL;
        g_autofree char *reason = NULL;

        if (adopt_recorded(qd->backend, qd->paths, domain_uuid(qd->domain), on_process_exit, qd, &qd->process) < 0)
                return;
        qemu_tpm_reattach(qd);
        if (!g_file_get_contents(qd->paths->reason, &reason, NULL, NULL))
                reason = g_strdup("unknown");
        /* Running until QEMU says otherwise: the process is there. */
        domain_backend_event(qd->domain, DOMAIN_STATE_RUNNING, reason, NULL, NULL);
        log_info("domain '%s': re-attached to QEMU pid %d", domain_name(qd->domain),
                 (int) qemu_process_pid(qd->process));
        if (qemu_domain_connect(qd, &error) < 0) {
                log_error("domain '%s': cannot reconnect to QEMU's monitor: %s", domain_name(qd->domain),
                          error->message);
                return;
        }
        qemu_displays_hold(qd, qd->domain->def);
        qemu_displays_connected(qd, qd->domain->def);
        /* Until QEMU says what it is doing (a post-copy?), nobody is
         * answered. */
        if (qmp_execute(qd->qmp, "query-status", NULL, QEMU_COMMAND_TIMEOUT_USEC, on_reattach_status, qd, NULL) >= 0)
                domain_backend_settling(qd->domain, true);
}

/* ---- startup: what a half-arrived guest's QEMU is doing ---- */

#define ARRIVAL_QUERY_TIMEOUT_USEC (2 * G_USEC_PER_SEC)

typedef struct ArrivalStatus {
        bool done;
        char *status; /* query-migrate's "status", or NULL */
} ArrivalStatus;

static void on_arrival_status(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                              void *userdata) {
        ArrivalStatus *a = userdata;
        JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;

        a->done = true;
        a->status = g_strdup(json_str(o, "status"));
}

static void on_arrival_state(Qmp *qmp, QmpState state, const GError *error, void *userdata) {
        ArrivalStatus *a = userdata;

        if (state == QMP_CLOSED)
                a->done = true;
}

/* The migration status of the QEMU behind socket_path, asked before the
 * daemon's loop runs (on a loop of its own, as the capability probe
 * does); NULL when it does not answer in time. */
static char *arrival_query_status(const char *socket_path) {
        ArrivalStatus a = { 0 };
        g_autoptr(Qmp) qmp = NULL;
        sd_event *event = NULL;
        int r;

        r = sd_event_new(&event);
        if (r < 0)
                return NULL;
        r = qmp_new(event, NULL, on_arrival_state, &a, &qmp);
        if (r >= 0) {
                qmp_set_negotiation_timeout(qmp, ARRIVAL_QUERY_TIMEOUT_USEC);
                r = qmp_connect_path(qmp, socket_path, NULL);
        }
        if (r >= 0)
                r = qmp_execute(qmp, "query-migrate", NULL, ARRIVAL_QUERY_TIMEOUT_USEC, on_arrival_status,
                                &a, NULL);
        gint64 deadline = g_get_monotonic_time() + ARRIVAL_QUERY_TIMEOUT_USEC;
        while (r >= 0 && !a.done && g_get_monotonic_time() < deadline)
                if (sd_event_run(event, 100 * 1000) < 0)
                        break;
        g_clear_pointer(&qmp, qmp_free);
        sd_event_unref(event);
        return a.status;
}

/* A QEMU holding an arriving guest when vmigrated stopped: whether it
 * stays. Before the switch to post-copy its source has the whole guest
 * and runs it again (its Finish found nobody): this copy goes. After the
 * switch, which this daemon may not have lived to see, only this QEMU can
 * run the guest: it stays, marked as the post-copy's arriving side. One
 * whose source was told it may switch stays too, unless its stream ended
 * without the switch: the re-attach decides (coming_event). */
static bool arrival_kept(const QemuPaths *paths, const char *uuid) {
        g_autofree char *status = NULL, *role = NULL;

        if (g_file_get_contents(paths->postcopy, &role, NULL, NULL) && !g_str_equal(role, "coming"))
                return true; /* "in": it switched while this daemon watched */
        status = arrival_query_status(paths->qmp_socket);
        if (status && g_str_has_prefix(status, "postcopy")) {
                log_warning(
                        "domain %s: its arrival switched to post-copy (%s) while vmigrated was not running: "
                        "keeping it, as the only copy of the guest that can run",
                        uuid, status);
                (void) g_file_set_contents(paths->postcopy, "in", -1, NULL);
                return true;
        }
        return role && !(status && status_ended_unswitched(status));
}

static GPtrArray *qemu_recover(void *backend_data) {
        QemuBackend *b = backend_data;
        GPtrArray *live = g_ptr_array_new_with_free_func((GDestroyNotify) domain_def_free);
        g_autoptr(GDir) dir = g_dir_open(b->qemu_dir, 0, NULL);
        const char *name;
        char uuid[37];

        while (dir && (name = g_dir_read_name(dir))) {
                g_autoptr(QemuPaths) paths = NULL;
                g_autoptr(QemuProcess) process = NULL;
                g_autoptr(DomainDef) def = NULL;
                g_autoptr(GError) error = NULL;
                g_autofree char *xml = NULL;
                size_t len;

                if (!domain_uuid_parse(name, uuid) || !g_str_equal(uuid, name))
                        continue;
                paths = qemu_paths_new(b->qemu_dir, uuid);
                if (adopt_recorded(b, paths, uuid, NULL, NULL, &process) < 0) {
                        log_warning("domain %s: its QEMU is gone since vmigrated last ran; removing the stale "
                                    "record %s (QEMU's log stays in %s)",
                                    uuid, paths->dir, paths->log);
                        qemu_tpm_kill_recorded(b, paths, uuid);
                        rm_rf(paths->dir);
                        g_hash_table_insert(b->stale, g_strdup(uuid),
                                            g_strdup_printf("crashed: QEMU exited while vmigrated was not running "
                                                            "(its log: %s)",
                                                            paths->log));
                        continue;
                }
                if (g_file_test(paths->incoming, G_FILE_TEST_EXISTS) && !arrival_kept(paths, uuid)) {
                        /* A guest that was arriving when vmigrated stopped: its
                         * source has resumed it (its Finish found nobody), so
                         * this copy is settled by discarding it. */
                        log_warning("domain %s: QEMU pid %d holds a half-arrived incoming migration: discarding "
                                    "it",
                                    uuid, (int) qemu_process_pid(process));
                        (void) qemu_process_kill(process);
                        qemu_tpm_kill_recorded(b, paths, uuid);
                        rm_rf(paths->dir);
                        continue;
                }
                if (!g_file_get_contents(paths->live_xml, &xml, &len, &error) ||
                    domain_def_parse(xml, len, &def, &error) < 0) {
                        log_error("domain %s: QEMU pid %d runs, but its definition %s is unusable (%s); leaving "
                                  "it alone",
                                  uuid, (int) qemu_process_pid(process), paths->live_xml, error->message);
                        continue;
                }
                g_ptr_array_add(live, g_steal_pointer(&def));
        }
        return live;
}

static int qemu_domain_attach(void *backend_data, Domain *domain, void **ret_domain_data, GError **error) {
        QemuBackend *b = backend_data;
        QemuDomain *qd = g_new0(QemuDomain, 1);

        qd->backend = b;
        qd->domain = domain;
        qd->paths = qemu_paths_new(b->qemu_dir, domain_uuid(domain));
        qd->links_down = g_ptr_array_new_with_free_func(g_free);
        if (g_file_test(qd->paths->pid, G_FILE_TEST_EXISTS))
                qemu_domain_reattach(qd);
        else if (g_hash_table_contains(b->stale, domain_uuid(domain))) {
                /* We cannot tell how it ended: crashed is the honest word. */
                domain_backend_event(domain, DOMAIN_STATE_CRASHED, g_hash_table_lookup(b->stale, domain_uuid(domain)),
                                     NULL, NULL);
                g_hash_table_remove(b->stale, domain_uuid(domain));
        }
        *ret_domain_data = qd;
        return 0;
}

/* The NVRAM vmigrate made in its own directory is this domain's alone;
 * one at a path the definition names is the user's (it may be on storage
 * that a migration's destination now uses) and stays. Its TPM state is
 * vmigrate's, as libvirt's is libvirt's: it goes with the definition.
 * Never while a QEMU uses them. */
static int qemu_domain_forget(void *domain_data, GError **error) {
        QemuDomain *qd = domain_data;
        g_autofree char *path = qemu_nvram_own_path(qd->backend->nvram_dir, domain_uuid(qd->domain));

        if (qd->process)
                return 0;
        qemu_tpm_remove_state(qd->backend, domain_uuid(qd->domain));
        if (unlink(path) < 0 && errno != ENOENT) {
                int r = -errno;
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot remove the NVRAM %s: %s", path,
                                    g_strerror(-r));
        }
        return 0;
}

static void qemu_domain_detach(void *domain_data) {
        QemuDomain *qd = domain_data;

        /* The daemon is going away, or the domain object is: QEMU (if any)
         * keeps running and a restarted daemon finds it again. That
         * includes a post-copy arriving here, whose end nobody here
         * waits for any more (its job ended when the daemon began to
         * stop): the next daemon sees it through. */
        g_assert(!qd->done && !qd->overtaken_done);
        qd->ended = NULL;
        qd->domain->settling = false;
        qemu_dirty_rate_cancel(qd);
        if (qemu_migration_detach(qd))
                log_info("domain '%s': leaving its arrival, and what was made for it, to the next vmigrated",
                         domain_name(qd->domain));
        qd->shutdown_timer = sd_event_source_disable_unref(qd->shutdown_timer);
        qmp_free(qd->qmp);
        qemu_process_free(qd->process);
        qemu_tpm_detach(qd);
        qemu_paths_free(qd->paths);
        g_ptr_array_unref(qd->links_down);
        if (qd->display_ports)
                g_array_unref(qd->display_ports);
        g_clear_pointer(&qd->display_vnc, g_variant_unref);
        g_clear_pointer(&qd->display_spice, g_variant_unref);
        g_free(qd);
}

/* ---- operations ---- */

void qemu_domain_begin(QemuDomain *qd, QemuOp op, BackendDone done, void *userdata) {
        qd->op = op;
        qd->done = done;
        qd->userdata = userdata;
}

static void on_cont_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                          void *userdata) {
        QemuDomain *qd = userdata;

        if (error) {
                /* QEMU is there but would not run the guest: stop it; the
                 * exit completes the operation with QEMU's words. */
                log_error("domain '%s': %s", domain_name(qd->domain), error->message);
                qemu_domain_terminate(qd);
                return;
        }
        if (qd->domain->state != DOMAIN_STATE_RUNNING)
                qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "booted", "started", "booted");
        qemu_domain_complete(qd, 0, NULL);
}

static int write_runtime_record(QemuDomain *qd, const DomainDef *def, GError **error) {
        g_autofree char *pid = g_strdup_printf("%d %" G_GUINT64_FORMAT "\n", (int) qemu_process_pid(qd->process),
                                               qemu_process_starttime(qd->process));
        g_autofree char *xml = domain_def_format(def);
        g_autoptr(GError) local = NULL;

        if (!g_file_set_contents_full(qd->paths->live_xml, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local) ||
            !g_file_set_contents_full(qd->paths->pid, pid, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot record the running domain: %s",
                                    local->message);
        return 0;
}

static void log_command_line(const char *log_path, char *const *argv) {
        g_autofree char *quoted = NULL;
        g_autoptr(GString) line = g_string_new(NULL);
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        g_autofree char *stamp = g_date_time_format(now, "%F %T");
        int fd;

        for (char *const *a = argv; *a; a++) {
                g_autofree char *q = g_shell_quote(*a);
                g_string_append_printf(line, "%s%s", a == argv ? "" : " ", q);
        }
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        quoted = g_strdup_printf(QEMU_LOG_HEADER "%s: starting %s\n", stamp, line->str);
        (void) !write(fd, quoted, strlen(quoted));
        close(fd);
}

void qemu_domain_terminate(QemuDomain *qd) {
        if (!qd->process)
                return;
        qd->terminating = true;
        (void) qemu_process_terminate(qd->process, QEMU_TERMINATE_GRACE_USEC);
}

/* The running definition gets the ports its displays got (libvirt's live
 * XML has them too), so that GetXML and a restarted daemon see them. */
static void record_display_ports(DomainDef *live, const DomainDef *run) {
        if (!live || live == run || live->graphics->len != run->graphics->len)
                return;
        for (guint i = 0; i < run->graphics->len; i++)
                ((DomainGraphicsDef *) live->graphics->pdata[i])->port =
                        ((const DomainGraphicsDef *) run->graphics->pdata[i])->port;
}

int qemu_domain_launch(QemuDomain *qd, const DomainDef *wanted, bool incoming, GError **error) {
        QemuBackend *b = qd->backend;
        g_autoptr(DomainDef) run = NULL;
        const DomainDef *def = wanted;
        g_auto(GStrv) argv = NULL;
        int fd, r;

        g_assert(!qd->process);
        if (qemu_caps_binary_changed(b->caps)) {
                log_info("%s changed since it was probed: probing again", b->caps->binary);
                r = qemu_load_caps(b, error);
                if (r < 0)
                        return r;
        }
        /* The firmware a firmware='efi' domain gets is chosen once and
         * written into the running definition (as the machine is): a
         * migration's destination then runs the same. */
        g_autoptr(DomainDef) resolved = NULL;
        r = qemu_domain_firmware_def(b, def, &def, &resolved, error);
        if (r < 0)
                return r;
        if (resolved && qd->domain->def && g_str_equal(qd->domain->def->uuid, def->uuid) &&
            qemu_firmware_needs_resolving(qd->domain->def)) {
                DomainDef *live = qd->domain->def;
                live->os_loader = g_strdup(resolved->os_loader);
                live->os_loader_pflash = resolved->os_loader_pflash;
                live->os_loader_secure = resolved->os_loader_secure;
                if (!live->os_nvram_template)
                        live->os_nvram_template = g_strdup(resolved->os_nvram_template);
        }
        r = qemu_validate(b, def, error);
        if (r < 0)
                return r;
        r = qemu_check_startable(b, def, error);
        if (r < 0)
                return r;
        /* The first start of a UEFI guest makes its NVRAM from the template;
         * an arriving guest's came with Prepare (qemu-migration.c). */
        g_autofree char *nvram = def->os_loader_pflash ? qemu_nvram_path(b->nvram_dir, def) : NULL;
        if (nvram && !incoming) {
                r = qemu_nvram_ensure(b->nvram_dir, def, error);
                if (r < 0)
                        return r;
        }
        if (nvram && incoming && !g_file_test(nvram, G_FILE_TEST_EXISTS))
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED,
                                    "the NVRAM %s of the arriving guest is missing (the source sent none)", nvram);

        /* QEMU runs a copy whose displays have their ports. */
        run = domain_def_copy(wanted);
        def = run;
        r = qemu_displays_reserve(qd, run, error);
        if (r < 0)
                return r;

        rm_rf(qd->paths->dir);
        if (g_mkdir_with_parents(qd->paths->dir, 0700) < 0) {
                qemu_displays_release(qd);
                return vm_error_set(error, VM_ERROR_STORAGE_FAILED, "cannot create %s: %s", qd->paths->dir,
                                    g_strerror(errno));
        }

        /* The TPM's swtpm first: QEMU connects to it as it starts. */
        r = qemu_tpm_start(qd, def, incoming, error);
        if (r < 0) {
                qemu_displays_release(qd);
                rm_rf(qd->paths->dir);
                return r;
        }

        /* fd 3 is the monitor, the taps follow: 4, 5, … as the child sees them. */
        g_autoptr(GArray) taps = g_array_new(false, false, sizeof(int));
        g_autoptr(GArray) pass = g_array_new(false, false, sizeof(int));
        g_autoptr(GArray) child_taps = g_array_new(false, false, sizeof(int));
        g_ptr_array_set_size(qd->links_down, 0);
        r = open_taps(qd, def, incoming, taps, error);
        if (r < 0) {
                qemu_tpm_stop(qd);
                qemu_displays_release(qd);
                rm_rf(qd->paths->dir);
                return r;
        }
        for (guint i = 0; i < taps->len; i++) {
                int tap = g_array_index(taps, int, i), child = tap >= 0 ? 4 + (int) pass->len : -1;
                g_array_append_val(child_taps, child);
                if (tap >= 0)
                        g_array_append_val(pass, tap);
        }
        QemuCommandOptions options = {
                .binary = b->caps->binary,
                .kvm = g_str_equal(def->type, "kvm"),
                .incoming = incoming,
                .qmp_fd = 3,
                .tap_fds = (const int *) child_taps->data,
                .nvram = nvram,
        };
        r = qemu_build_argv(def, qd->paths, &options, &argv, error);
        if (r >= 0)
                r = unix_listen(qd->paths->qmp_socket, &fd, error);
        if (r < 0) {
                close_fds(taps);
                qemu_tpm_stop(qd);
                qemu_displays_release(qd);
                rm_rf(qd->paths->dir);
                return r;
        }
        g_array_prepend_val(pass, fd);

        log_command_line(qd->paths->log, argv);
        CpuSet affinity;
        bool pinned = def->vcpu_cpuset && cpuset_parse(def->vcpu_cpuset, "<vcpu cpuset>", &affinity, NULL) >= 0;
        r = qemu_process_spawn_fds(b->event, argv, qd->paths->log, (const int *) pass->data, pass->len,
                                   pinned ? &affinity : NULL,
                                   on_process_exit, qd, &qd->process, error);
        /* QEMU holds the taps now; they die with it. */
        close_fds(taps);
        if (r >= 0)
                r = write_runtime_record(qd, def, error);
        /* The listening socket stays ours too until we are connected: a
         * QEMU that exits at once (a bad option) then leaves a connection
         * that ends, and its exit says why, rather than a refused one. */
        if (r >= 0)
                r = qemu_domain_connect(qd, error);
        close(fd);
        if (r < 0) {
                if (qd->process) {
                        /* Started but unusable: it must not run unwatched. */
                        (void) kill(qemu_process_pid(qd->process), SIGKILL);
                        (void) waitpid(qemu_process_pid(qd->process), NULL, 0);
                }
                qemu_domain_release(qd);
                return r;
        }
        record_display_ports(qd->domain->def, run);
        qemu_displays_connected(qd, run);
        log_info("domain '%s': QEMU pid %d %s under %s", def->name, (int) qemu_process_pid(qd->process),
                 incoming ? "waiting for an incoming migration" : "starting", options.kvm ? "KVM" : "TCG");
        return 0;
}

static int qemu_start(void *domain_data, const DomainDef *def, BackendDone done, void *userdata, GError **error) {
        QemuDomain *qd = domain_data;
        const char *machine = qemu_caps_resolve_machine(qd->backend->caps, def->os_machine);
        int r;

        /* The running definition names the versioned machine this QEMU
         * gives it ("pc" is whatever is newest): a destination with another
         * QEMU then builds the same machine, or refuses. */
        if (machine && g_strcmp0(machine, def->os_machine) != 0 && qd->domain->def == def) {
                g_free(qd->domain->def->os_machine);
                qd->domain->def->os_machine = g_strdup(machine);
        }

        r = qemu_domain_launch(qd, def, false, error);
        if (r < 0)
                return r;
        r = qmp_execute(qd->qmp, "cont", NULL, QEMU_START_TIMEOUT_USEC, on_cont_reply, qd, error);
        if (r < 0) {
                (void) kill(qemu_process_pid(qd->process), SIGKILL);
                (void) waitpid(qemu_process_pid(qd->process), NULL, 0);
                qemu_domain_release(qd);
                return r;
        }
        qemu_domain_begin(qd, QEMU_OP_START, done, userdata);
        return 0;
}

static void on_powerdown_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                               void *userdata) {
        QemuDomain *qd = userdata;

        if (error && qd->op == QEMU_OP_SHUTDOWN) {
                qd->shutdown_timer = sd_event_source_disable_unref(qd->shutdown_timer);
                qemu_domain_complete(qd, -EIO, error);
        }
}

static int on_shutdown_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuDomain *qd = userdata;

        log_warning("domain '%s': the guest did not shut down in time: destroying it", domain_name(qd->domain));
        qd->shutdown_timer = sd_event_source_disable_unref(qd->shutdown_timer);
        qd->terminating = true;
        if (qd->process)
                (void) qemu_process_terminate(qd->process, QEMU_TERMINATE_GRACE_USEC);
        return 0;
}

static int qemu_shutdown(void *domain_data, uint64_t timeout_usec, BackendDone done, void *userdata,
                         GError **error) {
        QemuDomain *qd = domain_data;
        int r;

        if (!qd->qmp)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "no monitor connection to QEMU");
        r = sd_event_add_time_relative(qd->backend->event, &qd->shutdown_timer, CLOCK_MONOTONIC, timeout_usec, 1000,
                                       on_shutdown_timeout, qd);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot arm the shutdown timer: %s",
                                    g_strerror(-r));
        r = qmp_execute(qd->qmp, "system_powerdown", NULL, QEMU_COMMAND_TIMEOUT_USEC, on_powerdown_reply, qd,
                        error);
        if (r < 0) {
                qd->shutdown_timer = sd_event_source_disable_unref(qd->shutdown_timer);
                return r;
        }
        qemu_domain_begin(qd, QEMU_OP_SHUTDOWN, done, userdata);
        qemu_domain_report(qd, DOMAIN_STATE_SHUTDOWN, "user", NULL, NULL);
        return 0;
}

static int qemu_destroy(void *domain_data, BackendDone done, void *userdata, GError **error) {
        QemuDomain *qd = domain_data;
        int r;

        if (!qd->process)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "no QEMU process to destroy");
        r = qemu_process_terminate(qd->process, QEMU_TERMINATE_GRACE_USEC);
        if (r < 0)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "cannot signal QEMU: %s", g_strerror(-r));
        qd->terminating = true;
        qd->shutdown_timer = sd_event_source_disable_unref(qd->shutdown_timer);
        if (qd->op == QEMU_OP_SHUTDOWN) {
                qd->overtaken_done = qd->done;
                qd->overtaken_userdata = qd->userdata;
        }
        qemu_domain_begin(qd, QEMU_OP_DESTROY, done, userdata);
        return 0;
}

static void on_stop_cont_reply(Qmp *qmp, JsonNode *result, const char *error_class, const GError *error,
                               void *userdata) {
        QemuDomain *qd = userdata;

        if (error) {
                qemu_domain_complete(qd, -EIO, error);
                return;
        }
        /* The STOP/RESUME event normally came first; if not, report here. */
        if (qd->op == QEMU_OP_SUSPEND && qd->domain->state == DOMAIN_STATE_RUNNING)
                qemu_domain_report(qd, DOMAIN_STATE_PAUSED, "user", "suspended", "paused");
        else if (qd->op == QEMU_OP_RESUME && qd->domain->state == DOMAIN_STATE_PAUSED)
                qemu_domain_report(qd, DOMAIN_STATE_RUNNING, "unpaused", "resumed", "unpaused");
        qemu_domain_complete(qd, 0, NULL);
}

static int qemu_stop_or_cont(QemuDomain *qd, QemuOp op, const char *command, BackendDone done, void *userdata,
                             GError **error) {
        int r;

        if (!qd->qmp)
                return vm_error_set(error, VM_ERROR_BACKEND_FAILED, "no monitor connection to QEMU");
        r = qmp_execute(qd->qmp, command, NULL, QEMU_COMMAND_TIMEOUT_USEC, on_stop_cont_reply, qd, error);
        if (r < 0)
                return r;
        qemu_domain_begin(qd, op, done, userdata);
        return 0;
}

static int qemu_suspend(void *domain_data, BackendDone done, void *userdata, GError **error) {
        return qemu_stop_or_cont(domain_data, QEMU_OP_SUSPEND, "stop", done, userdata, error);
}

static int qemu_resume(void *domain_data, BackendDone done, void *userdata, GError **error) {
        return qemu_stop_or_cont(domain_data, QEMU_OP_RESUME, "cont", done, userdata, error);
}

/* ---- description ---- */

static void qemu_append_capabilities(void *backend_data, GString *xml) {
        QemuBackend *b = backend_data;
        qemu_caps_append_xml(b->caps, kvm_usable(), xml);
}

static GVariant *qemu_describe(void *backend_data) {
        QemuBackend *b = backend_data;
        g_autoptr(GStrvBuilder) defects = g_strv_builder_new();
        g_auto(GStrv) list = NULL;
        GVariantBuilder v;

        for (const QemuDefect *const *d = qemu_caps_defects(b->caps); *d; d++)
                g_strv_builder_add(defects, (*d)->id);
        list = g_strv_builder_end(defects);

        g_variant_builder_init(&v, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&v, "{sv}", "binary", g_variant_new_string(b->caps->binary));
        g_variant_builder_add(&v, "{sv}", "version",
                              g_variant_new_take_string(g_strdup_printf("%u.%u.%u", b->caps->major, b->caps->minor,
                                                                        b->caps->micro)));
        g_variant_builder_add(&v, "{sv}", "kvm", g_variant_new_boolean(kvm_usable()));
        g_variant_builder_add(&v, "{sv}", "known-defects", g_variant_new_strv((const char *const *) list, -1));
        return g_variant_builder_end(&v);
}

static const char *const qemu_domain_types[] = { "kvm", "qemu", NULL };

const BackendOps backend_qemu_ops = {
        .name = "qemu",
        .description = "QEMU/KVM virtual machines driven over QMP",
        .domain_types = qemu_domain_types,
        .init = qemu_init,
        .fini = qemu_fini,
        .validate = qemu_validate,
        .recover = qemu_recover,
        .domain_attach = qemu_domain_attach,
        .domain_detach = qemu_domain_detach,
        .domain_forget = qemu_domain_forget,
        .start = qemu_start,
        .shutdown = qemu_shutdown,
        .destroy = qemu_destroy,
        .suspend = qemu_suspend,
        .resume = qemu_resume,
        .migrate_options = qemu_migrate_options,
        .migrate_check = qemu_migrate_check,
        .migrate_begin = qemu_migrate_begin,
        .migrate_prepare = qemu_migrate_prepare,
        .migrate_perform = qemu_migrate_perform,
        .migrate_finish = qemu_migrate_finish,
        .migrate_incoming_stats = qemu_migrate_incoming_stats,
        .migrate_incoming_postcopy = qemu_migrate_incoming_postcopy,
        .migrate_postcopy_coming = qemu_migrate_postcopy_coming,
        .migrate_hold_coming = qemu_migrate_hold_coming,
        .migrate_settle_coming = qemu_migrate_settle_coming,
        .migrate_confirm = qemu_migrate_confirm,
        .migrate_settle_unconfirmed = qemu_migrate_settle_unconfirmed,
        .migrate_leave_unconfirmed = qemu_migrate_leave_unconfirmed,
        .migrate_finish_cookie = qemu_migrate_finish_cookie,
        .migrate_finish_accept = qemu_migrate_finish_accept,
        .migrate_start_postcopy = qemu_migrate_start_postcopy,
        .migrate_set_throttle = qemu_migrate_set_throttle,
        .measure_dirty_rate = qemu_measure_dirty_rate,
        .migrate_pause = qemu_migrate_pause,
        .migrate_destination_runs = qemu_migrate_destination_runs,
        .migrate_cancel = qemu_migrate_cancel,
        .migrate_set_max_downtime = qemu_migrate_set_max_downtime,
        .migrate_set_max_bandwidth = qemu_migrate_set_max_bandwidth,
        .append_capabilities = qemu_append_capabilities,
        .describe = qemu_describe,
};
