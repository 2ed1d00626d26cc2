/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The qemu backend's pre-flight checks (its migrate_check op): on the
 * destination the generic host checks (preflight_host_resources, the data
 * port) plus what depends on the QEMU here, on both sides the QEMU
 * migration features the options need and the known defects of this QEMU.
 * Ids, as in the table at the top of migration/preflight.c:
 *
 * cpu.model                   dst  error  a custom CPU model is one this QEMU knows
 *     "host-b: QEMU 7.2.0 here has no CPU model 'Sapphire-Rapids'; upgrade QEMU here, or …"
 * cpu.features                dst  error  (kvm) features the <cpu> requires, and for host-passthrough,
 *                                         host-model and maximum all the source host's CPU flags, are here
 *     "host-b: this host's CPU lacks avx512f, sha_ni, which the guest may use (<cpu
 *      mode='host-passthrough'> on host-a); migrate to a host with the same CPU, or …"
 * machine.type                dst  error  the machine type is in this QEMU; /dev/kvm for type 'kvm'
 *     "host-b: QEMU 7.2.0 here has no machine type 'pc-q35-10.0' (the source's QEMU is probably newer); …"
 *                             dst  warn   the machine type is an unversioned alias ('pc', 'q35', none)
 *     "host-b: the domain's machine type 'pc' is an alias each QEMU resolves to its own newest version …"
 * qemu.postcopy               both error  post-copy: QEMU's postcopy-ram; destination: userfaultfd usable
 *     "host-b: post-copy needs userfaultfd, which QEMU cannot use here: …"
 * qemu.multifd                both error  parallel-connections: QEMU's multifd
 *     "host-b: option 'parallel-connections' needs QEMU's multifd, which QEMU 2.12.0 here lacks; …"
 * qemu.compression            both error  zstd/zlib: multifd compression (QEMU >= 5.0); xbzrle: xbzrle
 *     "host-b: compression 'zstd' needs multifd compression (QEMU 5.0 or newer), which QEMU 4.2.0 here …"
 * qemu.auto-converge          both error  auto-converge: QEMU's auto-converge
 *     "host-a: option 'auto-converge' needs QEMU's auto-converge, which QEMU … here lacks; …"
 * qemu.defect                 both error  known defects of this host's QEMU for the options: TCG pre-copy
 *                                         before 9.0 loses writes (a warning with option 'unsafe')
 *     "host-b: QEMU 7.2.0 here loses guest writes when a TCG guest migrates with pre-copy (fixed in
 *      QEMU 9.0): install QEMU 9.0 or newer here, or …"
 *                             both info   harmless ones (multifd statistics before 8.0)
 *     "host-a: QEMU 7.2.0 here reports total-time and mbps as 0 under multifd; …"
 *
 * Offline migration starts no QEMU stream: the feature and defect checks
 * are skipped, and the CPU and machine checks are warnings (they matter
 * only at the next boot there).
 */
#include <string.h>

#include "manager.h"
#include "qemu-backend.h"
#include "qemu-preflight.h"
#include "uri.h"

static void qemu_version_string(const QemuCaps *caps, char buf[static 32]) {
        g_snprintf(buf, 32, "QEMU %u.%u.%u", caps->major, caps->minor, caps->micro);
}

/* libvirt's feature names and Linux's /proc/cpuinfo names differ in
 * punctuation and in a few words. */
static char *cpu_flag_normalize(const char *name) {
        static const struct {
                const char *from, *to;
        } aliases[] = {
                { "tsc_deadline", "tsc_deadline_timer" },
                { "pclmuldq", "pclmulqdq" },
                { "sse3", "pni" },
                { "i64", "lm" },
                { "xd", "nx" },
                { "invtsc", "constant_tsc" },
        };
        char *n = g_ascii_strdown(name, -1);

        g_strdelimit(n, ".-", '_');
        for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++)
                if (g_str_equal(n, aliases[i].from)) {
                        g_free(n);
                        return g_strdup(aliases[i].to);
                }
        return n;
}

/* Linux's own flags (synthetic, or about the host's virtualization or
 * power management): no guest sees them, so a difference does not matter. */
static bool cpu_flag_is_host_only(const char *flag) {
        static const char *const host_only[] = {
                "constant_tsc",
                "nonstop_tsc",
                "nonstop_tsc_s3",
                "tsc_reliable",
                "tsc_known_freq",
                "up",
                "art",
                "arch_perfmon",
                "pebs",
                "bts",
                "rep_good",
                "acc_power",
                "nopl",
                "xtopology",
                "cpuid",
                "extd_apicid",
                "amd_dcm",
                "aperfmperf",
                "ring3mwait",
                "cpuid_fault",
                "cpb",
                "epb",
                "cat_l3",
                "cat_l2",
                "cdp_l3",
                "cdp_l2",
                "invpcid_single",
                "hw_pstate",
                "proc_feedback",
                "pti",
                "ssbd",
                "mba",
                "ibrs",
                "ibpb",
                "stibp",
                "ibrs_enhanced",
                "intel_ppin",
                "sme",
                "sev",
                "sev_es",
                "sev_snp",
                "tpr_shadow",
                "vnmi",
                "flexpriority",
                "ept",
                "vpid",
                "ept_ad",
                "vmmcall",
                "xenpv",
                "flush_l1d",
                "arch_capabilities",
                "user_shstk",
                "tsc_adjust",
                "hypervisor",
                "dtherm",
                "ida",
                "arat",
                "pln",
                "pts",
                "hwp",
                "hwp_notify",
                "hwp_act_window",
                "hwp_epp",
                "hwp_pkg_req",
                "vmx",
                "svm",
                "npt",
                "lbrv",
                "svm_lock",
                "nrip_save",
                "tsc_scale",
                "vmcb_clean",
                "flushbyasid",
                "decodeassists",
                "pausefilter",
                "pfthreshold",
                "avic",
                "v_vmsave_vmload",
                "vgif",
                "v_spec_ctrl",
                "tsc_deadline_timer",
                "x2apic",
                "pdcm",
                "monitor",
                "ds_cpl",
                "est",
                "tm",
                "tm2",
                "xtpr",
                "dca",
                NULL,
        };
        return g_strv_contains(host_only, flag);
}

static bool flags_contain(const GStrv flags, const char *normalized) {
        for (char **f = flags; f && *f; f++) {
                g_autofree char *n = cpu_flag_normalize(*f);
                if (g_str_equal(n, normalized))
                        return true;
        }
        return false;
}

static void check_cpu(const QemuCaps *caps, const PreflightContext *ctx, FindingSeverity severity,
                      Findings *out) {
        const DomainDef *def = ctx->def;
        const HostFacts *facts = ctx->facts;
        bool tcg = g_str_equal(def->type, "qemu");
        g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func(g_free);
        const char *because = NULL;
        char version[32];

        qemu_version_string(caps, version);
        if (!def->cpu_mode)
                return; /* QEMU's default model: every QEMU has it */
        if (g_str_equal(def->cpu_mode, "custom") && def->cpu_model) {
                if (!caps->cpu_models)
                        findings_add(out, FINDING_INFO, "cpu.model",
                                     "%s here did not list its CPU models, so '%s' was not checked", version,
                                     def->cpu_model);
                else if (!g_strv_contains((const char *const *) caps->cpu_models, def->cpu_model))
                        findings_add(out, severity, "cpu.model",
                                     "%s here has no CPU model '%s'; upgrade QEMU here, or give the domain "
                                     "a model "
                                     "both hosts have",
                                     version, def->cpu_model);
        }
        if (tcg)
                return; /* TCG emulates the features: the host's CPU does not matter */
        if (!facts->cpu_flags) {
                findings_add(out, FINDING_INFO, "cpu.features",
                             "this host's CPU flags are unknown (/proc/cpuinfo), so the guest's CPU was not "
                             "checked");
                return;
        }

        for (unsigned i = 0; i < def->cpu_features->len; i++) {
                const DomainCpuFeatureDef *f = def->cpu_features->pdata[i];
                if (!g_str_equal(f->policy, "require") && !g_str_equal(f->policy, "force"))
                        continue;
                g_autofree char *n = cpu_flag_normalize(f->name);
                if (g_str_has_prefix(n, "kvm"))
                        continue; /* paravirtual: KVM provides them */
                if (!flags_contain(facts->cpu_flags, n))
                        g_ptr_array_add(missing, g_strdup(f->name));
        }
        if (missing->len > 0)
                because = "required by the domain's <cpu>";

        if (!g_str_equal(def->cpu_mode, "custom") && ctx->source && ctx->source->cpu_flags) {
                /* The guest saw the source's CPU: it may use any of its
                 * features, so all must be here. */
                for (char **f = ctx->source->cpu_flags; *f; f++) {
                        g_autofree char *n = cpu_flag_normalize(*f);
                        if (!cpu_flag_is_host_only(n) && !flags_contain(facts->cpu_flags, n) &&
                            !g_ptr_array_find_with_equal_func(missing, *f, g_str_equal, NULL))
                                g_ptr_array_add(missing, g_strdup(*f));
                }
                if (missing->len > 0)
                        because = NULL;
        }
        if (missing->len == 0)
                return;

        const char *them = missing->len == 1 ? "it" : "them";
        g_ptr_array_add(missing, NULL);
        g_autofree char *list = g_strjoinv(", ", (char **) missing->pdata);
        if (because)
                findings_add(out, severity, "cpu.features",
                             "this host's CPU lacks %s, %s; migrate to a host whose CPU has %s", list, because,
                             them);
        else
                findings_add(
                        out, severity, "cpu.features",
                        "this host's CPU lacks %s, which the guest may use (<cpu mode='%s'> on %s); migrate "
                        "to a host with the same CPU, or give the domain a custom CPU model both hosts have",
                        list, def->cpu_mode, source_facts_name(ctx->source));
}

static bool machine_is_alias(const char *machine) {
        /* Unversioned names each QEMU maps to its own newest version. */
        return !machine || g_str_equal(machine, "pc") || g_str_equal(machine, "q35");
}

static void check_machine(const QemuCaps *caps, const PreflightContext *ctx, FindingSeverity severity,
                          Findings *out) {
        const DomainDef *def = ctx->def;
        char version[32];

        qemu_version_string(caps, version);
        if (g_str_equal(def->type, "kvm") && !ctx->facts->kvm)
                findings_add(
                        out, severity, "machine.type",
                        "domain type 'kvm' needs /dev/kvm, which is missing or not accessible here; enable "
                        "KVM here, or migrate to a host that has it");
        if (def->os_machine && !qemu_caps_has_machine(caps, def->os_machine))
                findings_add(out, severity, "machine.type",
                             "%s here has no machine type '%s' (the source's QEMU is probably newer); "
                             "upgrade QEMU "
                             "here",
                             version, def->os_machine);
        else if (!ctx->options->offline && machine_is_alias(def->os_machine))
                findings_add(
                        out, FINDING_WARNING, "machine.type",
                        "the domain's machine type %s%s%s is an alias each QEMU resolves to its own newest "
                        "version (%s here): if %s runs another QEMU version the guest may fail to arrive; "
                        "name a versioned machine type%s%s%s",
                        def->os_machine ? "'" : "", def->os_machine ? def->os_machine : "(none given: 'pc')",
                        def->os_machine ? "'" : "", version, source_facts_name(ctx->source),
                        caps->default_machine ? " such as '" : "",
                        caps->default_machine ? caps->default_machine : "",
                        caps->default_machine ? "'" : "");
}

static bool wants_postcopy(const MigrateOptions *o) {
        return o->postcopy || (o->timeout > 0 && o->timeout_action == MIGRATE_TIMEOUT_ACTION_POSTCOPY);
}

static void check_qemu_features(const QemuCaps *caps, const PreflightContext *ctx, Findings *out) {
        const MigrateOptions *o = ctx->options;
        char version[32];

        qemu_version_string(caps, version);
        if (wants_postcopy(o)) {
                if (!qemu_caps_has_migration_capability(caps, "postcopy-ram"))
                        findings_add(out, FINDING_ERROR, "qemu.postcopy",
                                     "post-copy needs QEMU's postcopy-ram, which %s here lacks; upgrade "
                                     "QEMU here "
                                     "or migrate without 'postcopy'",
                                     version);
                if (ctx->side == PREFLIGHT_DESTINATION && !ctx->facts->userfaultfd)
                        findings_add(out, FINDING_ERROR, "qemu.postcopy",
                                     "post-copy needs userfaultfd, which QEMU cannot use here: %s",
                                     ctx->facts->userfaultfd_why ? ctx->facts->userfaultfd_why
                                                                 : "unknown reason");
        }
        if (o->parallel_connections > 0 && !qemu_caps_has_migration_capability(caps, "multifd"))
                findings_add(
                        out, FINDING_ERROR, "qemu.multifd",
                        "option 'parallel-connections' needs QEMU's multifd, which %s here lacks; upgrade "
                        "QEMU here or leave the option out",
                        version);
        if (o->compression == MIGRATE_COMPRESSION_ZSTD || o->compression == MIGRATE_COMPRESSION_ZLIB) {
                const char *method = o->compression == MIGRATE_COMPRESSION_ZSTD ? "zstd" : "zlib";
                if (!qemu_caps_has_migration_capability(caps, "multifd") ||
                    !qemu_caps_version_at_least(caps, 5, 0))
                        findings_add(
                                out, FINDING_ERROR, "qemu.compression",
                                "compression '%s' needs multifd compression (QEMU 5.0 or newer), which %s "
                                "here lacks; upgrade QEMU here or use another compression",
                                method, version);
        } else if (o->compression == MIGRATE_COMPRESSION_XBZRLE &&
                   !qemu_caps_has_migration_capability(caps, "xbzrle"))
                findings_add(out, FINDING_ERROR, "qemu.compression",
                             "compression 'xbzrle' needs QEMU's xbzrle, which %s here lacks; use another "
                             "compression",
                             version);
        if (o->auto_converge && !qemu_caps_has_migration_capability(caps, "auto-converge"))
                findings_add(
                        out, FINDING_ERROR, "qemu.auto-converge",
                        "option 'auto-converge' needs QEMU's auto-converge, which %s here lacks; leave the "
                        "option out",
                        version);
}

static void check_qemu_defects(const QemuCaps *caps, const PreflightContext *ctx, Findings *out) {
        const MigrateOptions *o = ctx->options;
        bool tcg = g_str_equal(ctx->def->type, "qemu");
        char version[32];

        qemu_version_string(caps, version);
        for (const QemuDefect *const *d = qemu_caps_defects(caps); *d; d++) {
                if (g_str_equal((*d)->id, "tcg-precopy-loses-writes")) {
                        if (!tcg || wants_postcopy(o))
                                continue;
                        if (o->unsafe)
                                findings_add(
                                        out, FINDING_WARNING, "qemu.defect",
                                        "%s here loses guest writes when a TCG guest migrates with pre-copy "
                                        "(fixed in QEMU 9.0); going ahead because of option 'unsafe': the "
                                        "guest's memory may arrive corrupted",
                                        version);
                        else
                                findings_add(
                                        out, FINDING_ERROR, "qemu.defect",
                                        "%s here loses guest writes when a TCG guest migrates with pre-copy "
                                        "(fixed in QEMU 9.0): install QEMU 9.0 or newer here, or use "
                                        "post-copy or offline migration; option 'unsafe' goes ahead anyway",
                                        version);
                } else if (g_str_equal((*d)->id, "multifd-stats-zero")) {
                        if (o->parallel_connections > 0)
                                findings_add(
                                        out, FINDING_INFO, "qemu.defect",
                                        "%s here reports total-time and mbps as 0 under multifd; vmigrate "
                                        "measures the time itself",
                                        version);
                } else
                        findings_add(out, FINDING_INFO, "qemu.defect", "%s here: %s", version,
                                     (*d)->description);
        }
}

void qemu_preflight(const QemuCaps *caps, const PreflightContext *ctx, Findings *out) {
        const MigrateOptions *o = ctx->options;
        FindingSeverity severity = o->offline ? FINDING_WARNING : FINDING_ERROR;

        if (ctx->side == PREFLIGHT_DESTINATION) {
                check_machine(caps, ctx, severity, out);
                check_cpu(caps, ctx, severity, out);
                preflight_host_resources(ctx, out);
                if (!o->offline) {
                        g_autofree char *host = NULL;
                        uint16_t port = 0;
                        if (o->data_uri)
                                (void) data_uri_parse(o->data_uri, &host, &port, NULL);
                        preflight_data_port(ctx->facts, o->listen_address, port,
                                            o->copy_storage != MIGRATE_COPY_STORAGE_NONE && !o->tunnelled, out);
                        preflight_display_ports(ctx->facts, ctx->def, out);
                        if (!o->listen_address && !ctx->facts->own_address) {
                                g_autofree char *hostname = manager_get_hostname();
                                findings_add(out, FINDING_WARNING, "network.listen",
                                             "this host's name '%s' is not in /etc/hosts with one of its own "
                                             "addresses, so the migration stream would be awaited on every "
                                             "address; add it there, or give option 'listen-address'",
                                             hostname);
                        }
                }
        }
        if (o->offline)
                return; /* no stream: nothing of QEMU's migration is used */
        check_qemu_features(caps, ctx, out);
        check_qemu_defects(caps, ctx, out);
}

void qemu_migrate_check(void *backend_data, const PreflightContext *ctx, Findings *out) {
        QemuBackend *b = backend_data;

        qemu_preflight(b->caps, ctx, out);
        qemu_tpm_preflight(ctx, out);
}
