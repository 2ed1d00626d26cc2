/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu backend's pre-flight checks (qemu-preflight.h) for a given QEMU:
 * machine type, CPU, the migration features the options need, known
 * defects. No QEMU runs: each test hands the checks a QemuCaps made by
 * hand, with host facts filled in by hand too. */
#include <string.h>

#include "log.h"
#include "qemu-preflight.h"
#include "unit-util.h"

static QemuCaps *caps_new(unsigned major, unsigned minor, const char *const *migration_caps) {
        const char *machines[] = { "pc-i440fx-7.2", "pc", "pc-q35-7.2", "q35", NULL };
        const char *models[] = { "qemu64", "Skylake-Client", NULL };
        QemuCaps *caps = g_new0(QemuCaps, 1);

        caps->binary = g_strdup("/usr/bin/qemu-system-x86_64");
        caps->major = major;
        caps->minor = minor;
        caps->machines = g_strdupv((char **) machines);
        caps->default_machine = g_strdup("pc-i440fx-7.2");
        caps->migration_capabilities = g_strdupv((char **) migration_caps);
        caps->cpu_models = g_strdupv((char **) models);
        return caps;
}

static const char *const all_caps[] = {
        "events", "multifd", "xbzrle", "auto-converge", "postcopy-ram", NULL
};

static void check_qemu(TestHost *f, const QemuCaps *caps, PreflightSide side, const char *xml,
                       const MigrateOptions *o) {
        g_autoptr(DomainDef) def = parse_def(xml);
        PreflightContext ctx = preflight_context(f, side, def, o);

        f->facts.port_min = 1;
        f->facts.port_max = 65535;
        qemu_preflight(caps, &ctx, f->out);
}

static void renew(TestHost *f) {
        findings_free(f->out);
        f->out = findings_new("host-b");
}

static void test_qemu_quiet(TestHost *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(10, 0, all_caps);
        g_autofree char *xml = qemu_xml(NULL, NULL);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) fancy =
                parse_options("{'postcopy': <true>, 'live': <true>, 'auto-converge': <true>, "
                              "'parallel-connections': <uint32 4>, 'compression': <'zstd'>}");

        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, o);
        assert_quiet(f->out);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, fancy);
        assert_quiet(f->out);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, fancy);
        assert_quiet(f->out);

        /* The source does not check this host's files or memory. */
        f->facts.mem_available = 1;
        g_autofree char *kernel = qemu_xml("<kernel>/nonexistent/vmlinuz</kernel>", NULL);
        check_qemu(f, caps, PREFLIGHT_SOURCE, kernel, o);
        assert_quiet(f->out);
}

static void test_qemu_machine(TestHost *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(7, 2, all_caps);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autofree char *newer = g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                                 "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os>"
                                                 "<type arch='x86_64' machine='pc-q35-10.0'>hvm</type></os>"
                                                 "</domain>");
        g_autofree char *alias = g_strdup_printf("<domain type='kvm'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                                 "<memory unit='MiB'>256</memory><vcpu>1</vcpu></domain>");

        check_qemu(f, caps, PREFLIGHT_DESTINATION, newer, o);
        assert_finding(f->out, "machine.type", FINDING_ERROR,
                       "QEMU 7.2.0 here has no machine type 'pc-q35-10.0'", NULL);
        renew(f);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, alias, o);
        assert_finding(f->out, "machine.type", FINDING_WARNING, "alias", "host-a", "'pc-i440fx-7.2'", NULL);
        g_assert_false(findings_has_errors(f->out));

        renew(f);
        f->facts.kvm = false;
        g_autofree char *xml = qemu_xml(NULL, NULL);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, o);
        assert_finding(f->out, "machine.type", FINDING_ERROR, "domain type 'kvm' needs /dev/kvm", NULL);
}

static void test_qemu_cpu(TestHost *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(10, 0, all_caps);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autofree char *model = qemu_xml(NULL, NULL);
        char *p;

        /* <cpu> goes after <os>: splice it in. */
        p = strstr(model, "<devices>");
        g_autofree char *unknown =
                g_strdup_printf("%.*s<cpu mode='custom'><model>Sapphire-Rapids</model></cpu>%s",
                                (int) (p - model), model, p);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, unknown, o);
        assert_finding(f->out, "cpu.model", FINDING_ERROR,
                       "QEMU 10.0.0 here has no CPU model 'Sapphire-Rapids'", NULL);

        renew(f);
        g_autofree char *required = g_strdup_printf(
                "%.*s<cpu mode='custom'><model>Skylake-Client</model><feature policy='require' "
                "name='avx512f'/>"
                "<feature policy='require' name='sse4.1'/><feature policy='disable' name='sha-ni'/></cpu>%s",
                (int) (p - model), model, p);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, required, o);
        assert_finding(f->out, "cpu.features", FINDING_ERROR, "lacks avx512f, required", NULL);
        /* sse4.1 is sse4_1 in /proc/cpuinfo; a disabled feature is not needed. */
        g_assert_null(strstr(findings_find(f->out, "cpu.features")->message, "sse4"));
        g_assert_null(strstr(findings_find(f->out, "cpu.features")->message, "sha"));
        g_assert_null(findings_find(f->out, "cpu.model"));

        renew(f);
        g_autofree char *passthrough =
                g_strdup_printf("%.*s<cpu mode='host-passthrough'/>%s", (int) (p - model), model, p);
        const char *source_flags[] = { "fpu", "sse4_1", "avx512f", "sha_ni", "nonstop_tsc", "vmx", NULL };
        f->source->cpu_flags = g_strdupv((char **) source_flags);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, passthrough, o);
        assert_finding(f->out, "cpu.features", FINDING_ERROR,
                       "lacks avx512f, sha_ni, which the guest may use", "host-passthrough", "host-a", NULL);

        /* The same CPU: quiet. */
        renew(f);
        g_strfreev(f->source->cpu_flags);
        f->source->cpu_flags = g_strdupv(f->facts.cpu_flags);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, passthrough, o);
        g_assert_null(findings_find(f->out, "cpu.features"));
}

static void test_qemu_features(TestHost *f, gconstpointer data) {
        const char *none[] = { "events", NULL };
        g_autoptr(QemuCaps) caps = caps_new(4, 2, none);
        g_autofree char *xml = qemu_xml(NULL, NULL);
        g_autoptr(MigrateOptions) postcopy = parse_options("{'postcopy': <true>}");
        g_autoptr(MigrateOptions) multifd =
                parse_options("{'parallel-connections': <uint32 2>, 'compression': <'zstd'>}");
        g_autoptr(MigrateOptions) xbzrle = parse_options("{'compression': <'xbzrle'>}");
        g_autoptr(MigrateOptions) converge = parse_options("{'auto-converge': <true>}");

        f->facts.userfaultfd = false;
        f->facts.userfaultfd_why = g_strdup("vm.unprivileged_userfaultfd is 0");
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, postcopy);
        assert_finding(f->out, "qemu.postcopy", FINDING_ERROR, "postcopy-ram", "QEMU 4.2.0 here", NULL);
        g_assert_cmpuint(findings_count(f->out), >=, 2);
        g_assert_nonnull(
                strstr(findings_get(f->out, findings_count(f->out) - 1)->message,
                       "userfaultfd, which QEMU cannot use here: vm.unprivileged_userfaultfd is 0"));

        /* The source needs no userfaultfd. */
        renew(f);
        g_autoptr(QemuCaps) good = caps_new(10, 0, all_caps);
        check_qemu(f, good, PREFLIGHT_SOURCE, xml, postcopy);
        assert_quiet(f->out);

        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, multifd);
        assert_finding(f->out, "qemu.multifd", FINDING_ERROR, "'parallel-connections'",
                       "QEMU 4.2.0 here lacks", NULL);
        assert_finding(f->out, "qemu.compression", FINDING_ERROR, "'zstd'", "QEMU 5.0", NULL);

        renew(f);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, xbzrle);
        assert_finding(f->out, "qemu.compression", FINDING_ERROR, "'xbzrle'", NULL);
        renew(f);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, converge);
        assert_finding(f->out, "qemu.auto-converge", FINDING_ERROR, "'auto-converge'", NULL);
}

static void test_qemu_defects(TestHost *f, gconstpointer data) {
        g_autoptr(QemuCaps) old = caps_new(7, 2, all_caps);
        g_autoptr(QemuCaps) fixed = caps_new(9, 0, all_caps);
        g_autofree char *tcg = g_strdup_printf("<domain type='qemu'><name>vm1</name><uuid>" UUID_A "</uuid>"
                                               "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os>"
                                               "<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>"
                                               "</domain>");
        g_autofree char *kvm = qemu_xml(NULL, NULL);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) unsafe = parse_options("{'unsafe': <true>}");
        g_autoptr(MigrateOptions) offline = parse_options("{'offline': <true>}");
        g_autoptr(MigrateOptions) multifd = parse_options("{'parallel-connections': <uint32 2>}");

        check_qemu(f, old, PREFLIGHT_SOURCE, tcg, o);
        assert_finding(f->out, "qemu.defect", FINDING_ERROR, "host-b: QEMU 7.2.0 here loses guest writes",
                       "TCG", "9.0", "'unsafe'", NULL);
        renew(f);
        check_qemu(f, old, PREFLIGHT_DESTINATION, tcg, unsafe);
        assert_finding(f->out, "qemu.defect", FINDING_WARNING, "loses guest writes", "'unsafe'", NULL);
        renew(f);
        check_qemu(f, old, PREFLIGHT_SOURCE, tcg, offline);
        check_qemu(f, old, PREFLIGHT_SOURCE, kvm, o);
        check_qemu(f, fixed, PREFLIGHT_SOURCE, tcg, o);
        assert_quiet(f->out);

        g_autoptr(QemuCaps) older = caps_new(7, 0, all_caps);
        check_qemu(f, older, PREFLIGHT_SOURCE, kvm, multifd);
        assert_finding(f->out, "qemu.defect", FINDING_INFO, "total-time", NULL);
}

/* network.listen: the destination says when it would await the stream on
 * every address, because its name has none of its own in /etc/hosts. */
static void test_qemu_listen(TestHost *f, gconstpointer data) {
        g_autoptr(QemuCaps) caps = caps_new(10, 0, all_caps);
        g_autofree char *xml = qemu_xml(NULL, NULL);
        g_autoptr(MigrateOptions) o = parse_options(NULL);
        g_autoptr(MigrateOptions) listen = parse_options("{'listen-address': <'0.0.0.0'>}");
        g_autoptr(MigrateOptions) offline = parse_options("{'offline': <true>, 'persist': <true>}");

        g_clear_pointer(&f->facts.own_address, g_free);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, o);
        assert_finding(f->out, "network.listen", FINDING_WARNING, "/etc/hosts", "every address", "'listen-address'",
                       NULL);
        renew(f);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, listen);
        g_assert_null(findings_find(f->out, "network.listen")); /* the admin chose */
        renew(f);
        check_qemu(f, caps, PREFLIGHT_DESTINATION, xml, offline);
        g_assert_null(findings_find(f->out, "network.listen")); /* no stream */
        renew(f);
        check_qemu(f, caps, PREFLIGHT_SOURCE, xml, o);
        g_assert_null(findings_find(f->out, "network.listen")); /* the source listens nowhere */
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        log_set_max_level(LOG_WARNING);

#define ADD(path, fn)                                                                                       \
        g_test_add("/qemu-preflight/" path, TestHost, NULL, test_host_setup, fn, test_host_teardown)
        ADD("quiet", test_qemu_quiet);
        ADD("machine", test_qemu_machine);
        ADD("cpu", test_qemu_cpu);
        ADD("features", test_qemu_features);
        ADD("defects", test_qemu_defects);
        ADD("network.listen", test_qemu_listen);
        return g_test_run();
}
