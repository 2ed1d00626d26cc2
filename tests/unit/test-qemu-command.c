/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU command line built from a domain definition. Every argv is
 * checked for shape (each element is an option we know or its value), and
 * option lists are split the way QEMU splits them, so that a string from
 * the XML that smuggled in an option of its own would show up as one. */
#include <errno.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "domain-xml.h"
#include "errors.h"
#include "qemu-command.h"

#define QEMU_BINARY "/usr/bin/qemu-system-x86_64"
#define QEMU_DIR "/run/vmigrate/qemu"
#define UUID "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f"

#define DOMAIN(body)                                                                                        \
        "<domain type='kvm'><name>demo</name><uuid>" UUID "</uuid><memory unit='MiB'>256</memory>"          \
        "<vcpu>2</vcpu>" body "</domain>"
#define DEVICES(body) DOMAIN("<devices>" body "</devices>")

static DomainDef *parse(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(def);
        return def;
}

static QemuCommandOptions default_options(void) {
        return (QemuCommandOptions){ .binary = QEMU_BINARY, .kvm = true, .qmp_fd = 3 };
}

/* QEMU's options, and whether each takes a value (the next element). */
static int option_takes_value(const char *arg) {
        static const char *const with_value[] = { "-name",    "-uuid",   "-display",  "-machine",  "-accel",
                                                  "-m",       "-smp",    "-cpu",      "-bios",     "-kernel",
                                                  "-initrd",  "-append", "-blockdev", "-device",   "-netdev",
                                                  "-chardev", "-mon",    "-sandbox",  "-incoming", "-rtc" };
        static const char *const flags[] = { "-nodefaults", "-no-user-config", "-S" };

        for (size_t i = 0; i < G_N_ELEMENTS(with_value); i++)
                if (g_str_equal(arg, with_value[i]))
                        return 1;
        for (size_t i = 0; i < G_N_ELEMENTS(flags); i++)
                if (g_str_equal(arg, flags[i]))
                        return 0;
        return -1;
}

static void assert_well_formed(GStrv argv) {
        guint n = g_strv_length(argv);

        g_assert_cmpuint(n, >, 0);
        g_assert_cmpstr(argv[0], ==, QEMU_BINARY);
        for (guint i = 1; i < n; i++) {
                int v = option_takes_value(argv[i]);

                if (v < 0)
                        g_test_message("argv[%u] '%s' is not an option we know", i, argv[i]);
                g_assert_cmpint(v, >=, 0);
                if (v > 0) {
                        g_assert_cmpuint(i + 1, <, n);
                        i++;
                }
        }
}

static int build(const DomainDef *def, const QemuCommandOptions *options, GStrv *ret, GError **error) {
        g_autoptr(QemuPaths) paths = qemu_paths_new(QEMU_DIR, def->uuid);
        return qemu_build_argv(def, paths, options, ret, error);
}

static GStrv build_ok(const DomainDef *def, const QemuCommandOptions *options) {
        g_autoptr(GError) error = NULL;
        GStrv argv = NULL;

        g_assert_cmpint(build(def, options, &argv, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(argv);
        if (!argv)
                return g_new0(char *, 1);
        for (char **a = argv; *a; a++)
                g_test_message("argv: %s", *a);
        assert_well_formed(argv);
        return argv;
}

static GStrv build_xml(const char *xml, const QemuCommandOptions *options) {
        g_autoptr(DomainDef) def = parse(xml);
        return build_ok(def, options);
}

/* Expects a refusal naming `expect`, with *ret left alone. */
static void assert_refused(const char *xml, const char *expect) {
        g_autoptr(DomainDef) def = parse(xml);
        g_autoptr(GError) error = NULL;
        QemuCommandOptions options = default_options();
        GStrv argv = (GStrv) 0x1;

        g_assert_cmpint(build(def, &options, &argv, &error), ==, -EOPNOTSUPP);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_BACKEND);
        g_assert_true(argv == (GStrv) 0x1);
        if (error)
                g_test_message("refused: %s", error->message);
        g_assert_nonnull(error ? strstr(error->message, expect) : NULL);
}

/* The values of every occurrence of option, in order (borrowed). */
static GPtrArray *values_of(GStrv argv, const char *option) {
        GPtrArray *values = g_ptr_array_new();

        for (char **a = argv; *a; a++)
                if (g_str_equal(*a, option) && a[1]) {
                        g_ptr_array_add(values, a[1]);
                        a++;
                } else if (option_takes_value(*a) > 0 && a[1])
                        a++; /* a value that happens to look like option is not one */
        return values;
}

static guint count_of(GStrv argv, const char *option) {
        g_autoptr(GPtrArray) values = values_of(argv, option);
        guint n = 0;

        if (option_takes_value(option) > 0)
                return values->len;
        for (char **a = argv + 1; *a; a++) {
                if (g_str_equal(*a, option))
                        n++;
                else if (option_takes_value(*a) > 0 && a[1])
                        a++;
        }
        return n;
}

/* The value of an option given exactly once, or NULL. */
static const char *value_of(GStrv argv, const char *option) {
        g_autoptr(GPtrArray) values = values_of(argv, option);

        if (values->len != 1)
                g_test_message("%s given %u times", option, values->len);
        g_assert_cmpuint(values->len, ==, 1);
        return values->len == 1 ? values->pdata[0] : NULL;
}

/* Splits an option list as QEMU's QemuOpts and keyval parsers do: ','
 * separates, ',,' is a literal comma, a first item without '=' is the
 * implied key's value and a later one is a flag ("key=on"). */
static GStrv split_opts(const char *s, const char *implied_key) {
        g_autoptr(GStrvBuilder) items = g_strv_builder_new();
        g_autoptr(GString) item = g_string_new(NULL);
        bool first = true;

        for (const char *p = s;; p++) {
                if (*p == ',' && p[1] == ',') {
                        g_string_append_c(item, ',');
                        p++;
                        continue;
                }
                if (*p && *p != ',') {
                        g_string_append_c(item, *p);
                        continue;
                }
                if (!strchr(item->str, '=')) {
                        if (first && implied_key)
                                g_string_prepend(g_string_prepend_c(item, '='), implied_key);
                        else
                                g_string_append(item, "=on");
                }
                g_strv_builder_add(items, item->str);
                g_string_truncate(item, 0);
                first = false;
                if (!*p)
                        break;
        }
        return g_strv_builder_end(items);
}

static void assert_opts(const char *value, const char *implied_key, const char *const *expected) {
        g_auto(GStrv) items = NULL;

        g_assert_nonnull(value);
        if (!value)
                return;
        items = split_opts(value, implied_key);
        for (char **i = items; *i; i++)
                g_test_message("'%s' → %s", value, *i);
        g_assert_cmpstrv(items, expected);
}
#define ASSERT_OPTS(value, implied_key, ...)                                                                \
        assert_opts(value, implied_key, (const char *const[]){ __VA_ARGS__, NULL })

/* -blockdev and -device in JSON: compared as JSON, member order aside. */
static void assert_json(const char *value, const char *expected) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) got = NULL, want = json_from_string(expected, &error);

        g_assert_no_error(error);
        g_assert_nonnull(value);
        if (!value)
                return;
        got = json_from_string(value, &error);
        g_assert_no_error(error);
        if (!got || !want || !json_node_equal(got, want))
                g_test_message("got  %s\nwant %s", value, expected);
        g_assert_true(got && want && json_node_equal(got, want));
}

static void assert_jsons(GPtrArray *values, const char *const *expected) {
        guint n = g_strv_length((char **) expected);

        g_assert_cmpuint(values->len, ==, n);
        for (guint i = 0; i < MIN(n, values->len); i++)
                assert_json(values->pdata[i], expected[i]);
}
#define ASSERT_JSONS(values, ...) assert_jsons(values, (const char *const[]){ __VA_ARGS__, NULL })

/* ---- the fixed part ---- */

static void test_minimal(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(DOMAIN(""), &options);

        ASSERT_OPTS(value_of(argv, "-name"), "guest", "guest=demo", "debug-threads=on");
        g_assert_cmpstr(value_of(argv, "-uuid"), ==, UUID);
        g_assert_cmpuint(count_of(argv, "-nodefaults"), ==, 1);
        g_assert_cmpuint(count_of(argv, "-no-user-config"), ==, 1);
        g_assert_cmpstr(value_of(argv, "-display"), ==, "none");
        g_assert_cmpstr(value_of(argv, "-machine"), ==, "pc");
        g_assert_cmpstr(value_of(argv, "-m"), ==, "256M");
        g_assert_cmpstr(value_of(argv, "-smp"), ==, "2");
        /* The backend sends "cont" once it has configured the guest. */
        g_assert_cmpuint(count_of(argv, "-S"), ==, 1);
        /* QEMU needs no new processes or privileges once started. */
        ASSERT_OPTS(value_of(argv, "-sandbox"), "enable", "enable=on", "obsolete=deny",
                    "elevateprivileges=deny", "spawn=deny", "resourcecontrol=deny");
        /* Nothing the definition did not ask for. */
        for (const char *const *o = (const char *const[]){ "-cpu", "-bios", "-kernel", "-initrd", "-append",
                                                           "-blockdev", "-netdev", "-incoming", NULL };
             *o; o++) {
                g_test_message("%s", *o);
                g_assert_cmpuint(count_of(argv, *o), ==, 0);
        }
}

static void test_accel(void) {
        g_autoptr(DomainDef) def = parse(DOMAIN(""));
        QemuCommandOptions options = default_options();
        g_auto(GStrv) kvm = NULL, tcg = NULL;

        kvm = build_ok(def, &options);
        g_assert_cmpstr(value_of(kvm, "-accel"), ==, "kvm");
        options.kvm = false;
        tcg = build_ok(def, &options);
        g_assert_cmpstr(value_of(tcg, "-accel"), ==, "tcg");
}

static void test_memory(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) gib = NULL, kib = NULL, odd = NULL;

        gib = build_xml("<domain type='kvm'><name>d</name><memory unit='GiB'>3</memory></domain>", &options);
        g_assert_cmpstr(value_of(gib, "-m"), ==, "3072M");
        kib = build_xml("<domain type='kvm'><name>d</name><memory>2097152</memory></domain>", &options);
        g_assert_cmpstr(value_of(kib, "-m"), ==, "2048M");
        /* The parser rounds up to whole MiB as libvirt does (QEMU itself
         * would take 8 KiB steps): 1.5 MiB is 2 MiB on every host. */
        odd = build_xml("<domain type='kvm'><name>d</name><memory unit='KiB'>1536</memory></domain>", &options);
        g_assert_cmpstr(value_of(odd, "-m"), ==, "2M");
}

static void test_vcpus(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) one = NULL, many = NULL;

        one = build_xml("<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory></domain>",
                        &options);
        g_assert_cmpstr(value_of(one, "-smp"), ==, "1");
        many = build_xml(
                "<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><vcpu>48</vcpu></domain>",
                &options);
        g_assert_cmpstr(value_of(many, "-smp"), ==, "48");
}

static void test_machine_and_arch(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv =
                build_xml(DOMAIN("<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"), &options);

        g_assert_cmpstr(value_of(argv, "-machine"), ==, "pc-q35-7.2");
        assert_refused(DOMAIN("<os><type arch='aarch64'>hvm</type></os>"),
                       "<os><type arch='aarch64'>: the qemu backend runs x86_64 guests only");
}

/* -kernel, -initrd, -append and -bios take their argument whole: no
 * option list, so a comma stays a comma (doubling it would change the
 * file, or the kernel's console=ttyS0,115200). */
static void test_direct_kernel(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(
                DOMAIN("<os><type>hvm</type><loader type='rom'>/usr/share/qemu/bios,v2.bin</loader>"
                       "<kernel>/boot/vmlinuz-6.1,test</kernel><initrd>/boot/initrd img</initrd>"
                       "<cmdline>console=ttyS0,115200n8 root=/dev/vda1 ro quiet a=\"b c\"</cmdline></os>"),
                &options);

        g_assert_cmpstr(value_of(argv, "-bios"), ==, "/usr/share/qemu/bios,v2.bin");
        g_assert_cmpstr(value_of(argv, "-kernel"), ==, "/boot/vmlinuz-6.1,test");
        g_assert_cmpstr(value_of(argv, "-initrd"), ==, "/boot/initrd img");
        g_assert_cmpstr(value_of(argv, "-append"), ==,
                        "console=ttyS0,115200n8 root=/dev/vda1 ro quiet a=\"b c\"");
}

static void test_cpu(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) passthrough = NULL, maximum = NULL, custom = NULL;

        passthrough = build_xml(DOMAIN("<cpu mode='host-passthrough'/>"), &options);
        g_assert_cmpstr(value_of(passthrough, "-cpu"), ==, "host");
        maximum = build_xml(DOMAIN("<cpu mode='maximum'/>"), &options);
        g_assert_cmpstr(value_of(maximum, "-cpu"), ==, "max");
        custom = build_xml(
                DOMAIN("<cpu mode='custom'><model>Skylake-Client-IBRS</model>"
                       "<feature policy='require' name='ss'/><feature policy='force' name='vmx'/>"
                       "<feature policy='optional' name='pcid'/><feature policy='disable' name='hle'/>"
                       "<feature policy='forbid' name='rtm'/></cpu>"),
                &options);
        ASSERT_OPTS(value_of(custom, "-cpu"), "model", "model=Skylake-Client-IBRS", "ss=on", "vmx=on",
                    "pcid=on", "hle=off", "rtm=off");
        assert_refused(DOMAIN("<cpu mode='host-model'/>"), "<cpu mode='host-model'>");
}

/* Hyper-V enlightenments: libvirt's flags, in its order, hv-time from the
 * hypervclock timer, nothing for state='off'; on QEMU's default model
 * (named) when there is no <cpu> model, after the <cpu> features when
 * there is one; under TCG too (QEMU takes them there and gives the guest
 * no Hyper-V interface: it builds those CPUID leaves under KVM only). */
static void test_cpu_hyperv(void) {
        QemuCommandOptions options = default_options();
        QemuCommandOptions tcg = default_options();
        g_auto(GStrv) win11 = NULL, win11_tcg = NULL, all = NULL, custom = NULL, off = NULL, none = NULL;
        static const char *const win11_xml =
                DOMAIN("<features><acpi/><apic/><hyperv><relaxed state='on'/><vapic state='on'/>"
                       "<spinlocks state='on' retries='8191'/></hyperv></features>"
                       "<clock offset='localtime'><timer name='hypervclock' present='yes'/></clock>");

        tcg.kvm = false;
        win11 = build_xml(win11_xml, &options);
        ASSERT_OPTS(value_of(win11, "-cpu"), "model", "model=qemu64", "hv-relaxed=on", "hv-vapic=on",
                    "hv-spinlocks=0x1fff", "hv-time=on");
        g_assert_cmpstr(value_of(win11, "-rtc"), ==, "base=localtime");
        win11_tcg = build_xml(win11_xml, &tcg);
        g_assert_cmpstr(value_of(win11_tcg, "-cpu"), ==, value_of(win11, "-cpu"));
        g_assert_cmpstr(value_of(win11_tcg, "-accel"), ==, "tcg");

        all = build_xml(
                DOMAIN("<cpu mode='host-passthrough'/><features><hyperv mode='custom'>"
                       "<relaxed state='on'/><vapic state='on'/><spinlocks state='on' retries='4294967295'/>"
                       "<vpindex state='on'/><runtime state='on'/><synic state='on'/>"
                       "<stimer state='on'><direct state='on'/></stimer><reset state='on'/>"
                       "<vendor_id state='on' value='KVM Hv'/><frequencies state='on'/>"
                       "<tlbflush state='on'><direct state='on'/><extended state='on'/></tlbflush>"
                       "<ipi state='on'/><evmcs state='on'/><avic state='on'/><emsr_bitmap state='on'/>"
                       "<xmm_input state='on'/></hyperv></features>"
                       "<clock><timer name='hypervclock' present='yes'/></clock>"),
                &options);
        ASSERT_OPTS(value_of(all, "-cpu"), "model", "model=host", "hv-relaxed=on", "hv-vapic=on",
                    "hv-spinlocks=0xffffffff", "hv-vpindex=on", "hv-runtime=on", "hv-synic=on",
                    "hv-stimer=on", "hv-reset=on", "hv-vendor-id=KVM Hv", "hv-frequencies=on",
                    "hv-tlbflush=on", "hv-ipi=on", "hv-evmcs=on", "hv-avic=on", "hv-emsr-bitmap=on",
                    "hv-xmm-input=on", "hv-stimer-direct=on", "hv-tlbflush-direct=on", "hv-tlbflush-ext=on",
                    "hv-time=on");

        custom = build_xml(DOMAIN("<cpu mode='custom'><model>Skylake-Client</model>"
                                  "<feature policy='disable' name='hle'/></cpu>"
                                  "<features><hyperv><relaxed state='on'/></hyperv></features>"),
                           &options);
        ASSERT_OPTS(value_of(custom, "-cpu"), "model", "model=Skylake-Client", "hle=off", "hv-relaxed=on");

        /* off is QEMU's default: written as nothing, as libvirt does */
        off = build_xml(DOMAIN("<features><hyperv><relaxed state='off'/></hyperv></features>"
                               "<clock><timer name='hypervclock' present='no'/></clock>"),
                        &options);
        g_assert_cmpuint(count_of(off, "-cpu"), ==, 0);
        none = build_xml(DOMAIN("<features><acpi/></features>"), &options);
        g_assert_cmpuint(count_of(none, "-cpu"), ==, 0);
}

/* ---- disks ---- */

static void test_disk_virtio(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(DEVICES("<disk type='file' device='disk'>"
                                               "<driver name='qemu' type='qcow2'/>"
                                               "<source file='/var/lib/images/demo.qcow2'/>"
                                               "<target dev='vda' bus='virtio'/></disk>"
                                               "<disk type='file'><source file='/var/lib/images/data.img'/>"
                                               "<target dev='vdb'/><readonly/></disk>"
                                               "<disk type='block'><source dev='/dev/vg0/vm1'/>"
                                               "<target dev='vdc'/></disk>"),
                                       &options);
        g_autoptr(GPtrArray) blockdevs = values_of(argv, "-blockdev");
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");

        ASSERT_JSONS(
                blockdevs,
                "{\"driver\":\"file\",\"node-name\":\"file-vda\",\"filename\":\"/var/lib/images/"
                "demo.qcow2\","
                "\"cache\":{\"direct\":false,\"no-flush\":false},\"read-only\":false,\"auto-read-only\":"
                "false}",
                "{\"driver\":\"qcow2\",\"node-name\":\"disk-vda\",\"file\":\"file-vda\",\"read-only\":"
                "false}",
                /* No <driver type>: raw. <readonly/> on both nodes. */
                "{\"driver\":\"file\",\"node-name\":\"file-vdb\",\"filename\":\"/var/lib/images/data.img\","
                "\"cache\":{\"direct\":false,\"no-flush\":false},\"read-only\":true,\"auto-read-only\":"
                "false}",
                "{\"driver\":\"raw\",\"node-name\":\"disk-vdb\",\"file\":\"file-vdb\",\"read-only\":true}",
                /* type='block': QEMU's host_device, which reads the size of the device. */
                "{\"driver\":\"host_device\",\"node-name\":\"file-vdc\",\"filename\":\"/dev/vg0/vm1\","
                "\"cache\":{\"direct\":false,\"no-flush\":false},\"read-only\":false,\"auto-read-only\":"
                "false}",
                "{\"driver\":\"raw\",\"node-name\":\"disk-vdc\",\"file\":\"file-vdc\",\"read-only\":false}");
        ASSERT_JSONS(devices, "{\"driver\":\"virtio-blk-pci\",\"id\":\"vda\",\"drive\":\"disk-vda\"}",
                     "{\"driver\":\"virtio-blk-pci\",\"id\":\"vdb\",\"drive\":\"disk-vdb\"}",
                     "{\"driver\":\"virtio-blk-pci\",\"id\":\"vdc\",\"drive\":\"disk-vdc\"}");
}

/* libvirt's mapping of <driver cache> onto QEMU's two switches. */
static void test_disk_cache_modes(void) {
        static const struct {
                const char *cache;
                bool direct, no_flush;
        } modes[] = {
                { NULL, false, false },  { "writeback", false, false }, { "writethrough", false, false },
                { "none", true, false }, { "directsync", true, false }, { "unsafe", false, true },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
                g_autofree char *driver = modes[i].cache
                        ? g_strdup_printf("<driver name='qemu' cache='%s'/>", modes[i].cache)
                        : g_strdup("");
                g_autofree char *xml = g_strdup_printf(
                        DEVICES("<disk type='file'>%s<source file='/i/d.img'/><target dev='vda'/></disk>"),
                        driver);
                g_autofree char *expected = g_strdup_printf(
                        "{\"driver\":\"file\",\"node-name\":\"file-vda\",\"filename\":\"/i/d.img\","
                        "\"cache\":{\"direct\":%s,\"no-flush\":%s},\"read-only\":false,\"auto-read-only\":"
                        "false}",
                        modes[i].direct ? "true" : "false", modes[i].no_flush ? "true" : "false");
                QemuCommandOptions options = default_options();
                g_auto(GStrv) argv = NULL;
                g_autoptr(GPtrArray) blockdevs = NULL;

                g_test_message("cache %s", modes[i].cache ? modes[i].cache : "(default)");
                argv = build_xml(xml, &options);
                blockdevs = values_of(argv, "-blockdev");
                g_assert_cmpuint(blockdevs->len, ==, 2);
                if (blockdevs->len > 0)
                        assert_json(blockdevs->pdata[0], expected);
        }
}

static void test_disk_buses(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(
                DEVICES("<disk type='file'><source file='/i/a'/><target dev='sda' bus='sata'/></disk>"
                        "<disk type='file'><source file='/i/b'/><target dev='hda' bus='ide'/></disk>"
                        "<disk type='file'><source file='/i/c'/><target dev='sdb' bus='scsi'/></disk>"
                        "<disk type='file'><source file='/i/d'/><target dev='sdc'/></disk>"),
                &options);
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");
        guint controller = 0, first_disk = 0;

        ASSERT_JSONS(devices, "{\"driver\":\"virtio-scsi-pci\",\"id\":\"scsi0\"}",
                     /* hda where libvirt puts it; sda on the next free position. */
                     "{\"driver\":\"ide-hd\",\"id\":\"sda\",\"drive\":\"disk-sda\",\"bus\":\"ide.0\",\"unit\":1}",
                     "{\"driver\":\"ide-hd\",\"id\":\"hda\",\"drive\":\"disk-hda\",\"bus\":\"ide.0\",\"unit\":0}",
                     "{\"driver\":\"scsi-hd\",\"id\":\"sdb\",\"drive\":\"disk-sdb\",\"bus\":\"scsi0.0\"}",
                     /* sd* without a bus is SCSI, as in libvirt. */
                     "{\"driver\":\"scsi-hd\",\"id\":\"sdc\",\"drive\":\"disk-sdc\",\"bus\":\"scsi0.0\"}");
        /* The controller must exist when the SCSI disks are realized. */
        for (guint i = 0; argv[i]; i++) {
                if (!controller && g_str_has_prefix(argv[i], "{\"driver\":\"virtio-scsi-pci\""))
                        controller = i;
                if (!first_disk && g_str_equal(argv[i], "-blockdev"))
                        first_disk = i;
        }
        g_assert_cmpuint(controller, >, 0);
        g_assert_cmpuint(controller, <, first_disk);
}

/* The PC machine has four IDE positions: hdX names theirs, others fill in;
 * a fifth device is refused by name. On q35 (AHCI) QEMU places them. */
static void test_disk_ide_positions(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(
                DEVICES("<disk type='file'><source file='/i/a'/><target dev='hdd' bus='ide'/></disk>"
                        "<disk type='file'><source file='/i/b'/><target dev='sda' bus='sata'/></disk>"
                        "<disk type='file'><source file='/i/c'/><target dev='sdb' bus='sata'/></disk>"),
                &options);
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");

        ASSERT_JSONS(devices,
                     "{\"driver\":\"ide-hd\",\"id\":\"hdd\",\"drive\":\"disk-hdd\",\"bus\":\"ide.1\",\"unit\":1}",
                     "{\"driver\":\"ide-hd\",\"id\":\"sda\",\"drive\":\"disk-sda\",\"bus\":\"ide.0\",\"unit\":0}",
                     "{\"driver\":\"ide-hd\",\"id\":\"sdb\",\"drive\":\"disk-sdb\",\"bus\":\"ide.0\",\"unit\":1}");
        assert_refused(DEVICES("<disk type='file'><source file='/i/a'/><target dev='hdd' bus='ide'/></disk>"
                               "<disk type='file'><source file='/i/b'/><target dev='sda' bus='sata'/></disk>"
                               "<disk type='file'><source file='/i/c'/><target dev='sdb' bus='sata'/></disk>"
                               "<disk type='file'><source file='/i/d'/><target dev='sdc' bus='sata'/></disk>"
                               "<disk type='file'><source file='/i/e'/><target dev='sde' bus='sata'/></disk>"),
                       "'sde'>: the pc machine has 4 IDE positions");
}

static void test_disk_no_scsi_controller(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(
                DEVICES("<disk type='file'><source file='/i/a'/><target dev='vda'/></disk>"), &options);

        for (char **a = argv; *a; a++)
                g_assert_null(strstr(*a, "virtio-scsi-pci"));
}

static void test_disk_cdrom(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(DEVICES("<disk type='file' device='cdrom'><source file='/iso/a.iso'/>"
                                               "<target dev='hdc'/><readonly/></disk>"
                                               "<disk type='file' device='cdrom'><source file='/iso/b.iso'/>"
                                               "<target dev='sdb' bus='scsi'/><readonly/></disk>"),
                                       &options);
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");

        ASSERT_JSONS(devices, "{\"driver\":\"virtio-scsi-pci\",\"id\":\"scsi0\"}",
                     "{\"driver\":\"ide-cd\",\"id\":\"hdc\",\"drive\":\"disk-hdc\",\"bus\":\"ide.1\",\"unit\":0}",
                     "{\"driver\":\"scsi-cd\",\"id\":\"sdb\",\"drive\":\"disk-sdb\",\"bus\":\"scsi0.0\"}");
}

/* virsh dumpxml writes a CD-ROM drive with no medium for most guests
 * (the parser accepts it): the drive exists, with nothing in it. A
 * "filename": null makes QEMU refuse to start ("Invalid parameter type
 * for 'filename', expected: string"). */
static void test_disk_cdrom_empty(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv =
                build_xml(DEVICES("<disk type='file' device='disk'><source file='/i/a'/>"
                                  "<target dev='vda'/></disk>"
                                  "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                                  "<target dev='sda' bus='sata'/><readonly/></disk>"),
                          &options);
        g_autoptr(GPtrArray) blockdevs = values_of(argv, "-blockdev");
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");

        for (guint i = 0; i < blockdevs->len; i++)
                g_assert_null(strstr(blockdevs->pdata[i], "null"));
        g_assert_cmpuint(blockdevs->len, ==, 2); /* vda's only */
        ASSERT_JSONS(devices, "{\"driver\":\"virtio-blk-pci\",\"id\":\"vda\",\"drive\":\"disk-vda\"}",
                     "{\"driver\":\"ide-cd\",\"id\":\"sda\",\"bus\":\"ide.0\",\"unit\":0}");
}

/* JSON needs no escaping of our own: a comma stays one character, and
 * quotes or backslashes cannot end the string early. */
static void test_disk_hostile_path(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv =
                build_xml(DEVICES("<disk type='file'><source file='/i/a,driver=raw,,\"x\":\\\"},{&quot;y'/>"
                                  "<target dev='vda'/></disk>"),
                          &options);
        g_autoptr(GPtrArray) blockdevs = values_of(argv, "-blockdev");
        g_autoptr(JsonNode) node = NULL;
        JsonObject *o;

        g_assert_cmpuint(blockdevs->len, ==, 2);
        if (blockdevs->len < 1)
                return;
        node = json_from_string(blockdevs->pdata[0], NULL);
        g_assert_nonnull(node);
        o = node ? json_node_get_object(node) : NULL;
        g_assert_nonnull(o);
        if (!o)
                return;
        g_assert_cmpstr(json_object_get_string_member(o, "filename"), ==,
                        "/i/a,driver=raw,,\"x\":\\\"},{\"y");
        g_assert_cmpstr(json_object_get_string_member(o, "driver"), ==, "file");
        g_assert_cmpuint(json_object_get_size(o), ==, 6);
}

/* ---- network ---- */

static void test_interfaces(void) {
        static const int taps[] = { 7, -1, 9 };
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = NULL;
        g_autoptr(GPtrArray) netdevs = NULL, devices = NULL;

        options.tap_fds = taps;
        argv = build_xml(DEVICES("<interface type='bridge'><source bridge='br0'/>"
                                 "<mac address='52:54:00:AA:BB:01'/></interface>"
                                 "<interface type='user'><mac address='52:54:00:aa:bb:02'/>"
                                 "<model type='e1000'/></interface>"
                                 "<interface type='bridge'><source bridge='br1'/>"
                                 "<mac address='52:54:00:aa:bb:03'/><model type='rtl8139'/></interface>"),
                         &options);
        netdevs = values_of(argv, "-netdev");
        devices = values_of(argv, "-device");
        g_assert_cmpuint(netdevs->len, ==, 3);
        g_assert_cmpuint(devices->len, ==, 3);
        if (netdevs->len < 3 || devices->len < 3)
                return;
        /* The daemon opened the taps; QEMU gets them by number. */
        ASSERT_OPTS(netdevs->pdata[0], "type", "type=tap", "id=net0", "fd=7");
        ASSERT_OPTS(netdevs->pdata[1], "type", "type=user", "id=net1");
        ASSERT_OPTS(netdevs->pdata[2], "type", "type=tap", "id=net2", "fd=9");
        ASSERT_OPTS(devices->pdata[0], "driver", "driver=virtio-net-pci", "netdev=net0",
                    "mac=52:54:00:aa:bb:01");
        ASSERT_OPTS(devices->pdata[1], "driver", "driver=e1000", "netdev=net1", "mac=52:54:00:aa:bb:02");
        ASSERT_OPTS(devices->pdata[2], "driver", "driver=rtl8139", "netdev=net2", "mac=52:54:00:aa:bb:03");
}

/* Validation builds the command with no taps open yet. */
static void test_interfaces_without_fds(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(DEVICES("<interface type='user'/><interface type='bridge'>"
                                               "<source bridge='br0'/></interface>"),
                                       &options);
        g_autoptr(GPtrArray) netdevs = values_of(argv, "-netdev");
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");
        g_auto(GStrv) items = NULL;

        g_assert_cmpuint(netdevs->len, ==, 2);
        if (netdevs->len == 2) {
                ASSERT_OPTS(netdevs->pdata[0], "type", "type=user", "id=net0");
                ASSERT_OPTS(netdevs->pdata[1], "type", "type=tap", "id=net1", "fd=101");
        }
        /* The parser gave each interface a MAC; the device carries it. */
        g_assert_cmpuint(devices->len, ==, 2);
        if (devices->len == 2) {
                items = split_opts(devices->pdata[1], "driver");
                g_assert_cmpuint(g_strv_length(items), ==, 3);
                g_assert_cmpstr(items[0], ==, "driver=virtio-net-pci");
                g_assert_cmpstr(items[1], ==, "netdev=net1");
                g_assert_true(g_str_has_prefix(items[2], "mac=52:54:00:"));
        }
}

static void test_interface_network_tap(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(DEVICES("<interface type='network'><source network='default'/></interface>"),
                                       &options);
        g_autofree char *cmd = g_strjoinv(" ", argv);

        g_assert_nonnull(strstr(cmd, "-netdev tap,id=net0,fd="));
}

/* ---- serial ports and the monitor ---- */

static void test_serials(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml(DEVICES("<serial type='pty'/>"
                                               "<serial type='file'><source path='/var/log/demo.log'/>"
                                               "<target port='2'/></serial>"),
                                       &options);
        g_autoptr(GPtrArray) chardevs = values_of(argv, "-chardev");
        g_autoptr(GPtrArray) devices = values_of(argv, "-device");

        /* The two ports, then the monitor. */
        g_assert_cmpuint(chardevs->len, ==, 3);
        g_assert_cmpuint(devices->len, ==, 2);
        if (chardevs->len < 3 || devices->len < 2)
                return;
        ASSERT_OPTS(chardevs->pdata[0], "backend", "backend=socket", "id=serial0",
                    "path=" QEMU_DIR "/" UUID "/serial0.sock", "server=on", "wait=off",
                    "logfile=" QEMU_DIR "/log/" UUID "-serial0.log", "logappend=on");
        ASSERT_OPTS(chardevs->pdata[1], "backend", "backend=socket", "id=serial2",
                    "path=" QEMU_DIR "/" UUID "/serial2.sock", "server=on", "wait=off",
                    "logfile=/var/log/demo.log", "logappend=on");
        ASSERT_OPTS(devices->pdata[0], "driver", "driver=isa-serial", "chardev=serial0", "index=0");
        ASSERT_OPTS(devices->pdata[1], "driver", "driver=isa-serial", "chardev=serial2", "index=2");
}

/* Paths go into -chardev's option list: every comma must be doubled, or
 * the rest of the path becomes options of the admin's (or guest owner's)
 * choosing. */
static void test_serial_hostile_paths(void) {
        g_autoptr(DomainDef) def = parse(DEVICES(
                "<serial type='file'><source path='/var/log/a,server=off,path=/etc/shadow,x'/></serial>"));
        g_autoptr(QemuPaths) paths = qemu_paths_new("/run/a,wait=on,b/qemu", def->uuid);
        g_autoptr(GError) error = NULL;
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = NULL;
        g_autoptr(GPtrArray) chardevs = NULL;

        g_assert_cmpint(qemu_build_argv(def, paths, &options, &argv, &error), ==, 0);
        g_assert_no_error(error);
        if (!argv)
                return;
        assert_well_formed(argv);
        chardevs = values_of(argv, "-chardev");
        g_assert_cmpuint(chardevs->len, ==, 2);
        if (chardevs->len < 1)
                return;
        ASSERT_OPTS(chardevs->pdata[0], "backend", "backend=socket", "id=serial0",
                    "path=/run/a,wait=on,b/qemu/" UUID "/serial0.sock", "server=on", "wait=off",
                    "logfile=/var/log/a,server=off,path=/etc/shadow,x", "logappend=on");
}

static void test_name_hostile(void) {
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = build_xml("<domain type='kvm'><name>a,debug-threads=off,,process=x,</name>"
                                       "<memory unit='MiB'>64</memory></domain>",
                                       &options);

        ASSERT_OPTS(value_of(argv, "-name"), "guest", "guest=a,debug-threads=off,,process=x,",
                    "debug-threads=on");
}

/* Newlines never reach the builder from XML; and in argv, unlike a shell
 * line, they would not start a new option anyway. */
static void test_newlines(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(DomainDef) def = NULL;
        g_autoptr(DomainDef) refused = NULL;
        QemuCommandOptions options = default_options();
        g_auto(GStrv) plain = NULL, argv = NULL;
        static const char *const hostile[] = {
                DOMAIN("<os><type>hvm</type><kernel>/boot/k&#10;-incoming</kernel></os>"),
                DOMAIN("<os><type>hvm</type><cmdline>quiet&#10;-S</cmdline></os>"),
                DEVICES("<disk type='file'><source file='/i/a&#10;-device'/><target dev='vda'/></disk>"),
                DEVICES("<serial type='file'><source path='/l/a&#10;,server=off'/></serial>"),
        };

        for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
                g_test_message("%s", hostile[i]);
                g_assert_cmpint(domain_def_parse(hostile[i], strlen(hostile[i]), &refused, &error), <, 0);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_XML);
                g_clear_error(&error);
        }

        def = parse(DOMAIN("<os><type>hvm</type><kernel>/boot/k</kernel><cmdline>quiet</cmdline></os>"));
        plain = build_ok(def, &options);
        g_free(def->os_cmdline);
        def->os_cmdline = g_strdup("quiet\n-incoming tcp:0:4444\n");
        g_free(def->os_kernel);
        def->os_kernel = g_strdup("/boot/k\n-S");
        argv = build_ok(def, &options);
        g_assert_cmpuint(g_strv_length(argv), ==, g_strv_length(plain));
        g_assert_cmpuint(count_of(argv, "-incoming"), ==, 0);
        g_assert_cmpstr(value_of(argv, "-append"), ==, "quiet\n-incoming tcp:0:4444\n");
        g_assert_cmpstr(value_of(argv, "-kernel"), ==, "/boot/k\n-S");
}

static void test_monitor(void) {
        g_autoptr(DomainDef) def = parse(DEVICES("<serial type='pty'/>"));
        QemuCommandOptions options = default_options();
        g_auto(GStrv) argv = NULL;
        g_autoptr(GPtrArray) chardevs = NULL;

        options.qmp_fd = 5;
        argv = build_ok(def, &options);
        chardevs = values_of(argv, "-chardev");
        g_assert_cmpuint(chardevs->len, ==, 2);
        if (chardevs->len == 2)
                ASSERT_OPTS(chardevs->pdata[1], "backend", "backend=socket", "id=monitor", "fd=5",
                            "server=on", "wait=off");
        ASSERT_OPTS(value_of(argv, "-mon"), "chardev", "chardev=monitor", "mode=control");
}

/* The destination of a migration waits for migrate-incoming over QMP. */
static void test_incoming(void) {
        g_autoptr(DomainDef) def = parse(DOMAIN(""));
        QemuCommandOptions options = default_options();
        g_auto(GStrv) normal = NULL, incoming = NULL;
        guint n;

        normal = build_ok(def, &options);
        g_assert_cmpuint(count_of(normal, "-incoming"), ==, 0);
        options.incoming = true;
        incoming = build_ok(def, &options);
        g_assert_cmpstr(value_of(incoming, "-incoming"), ==, "defer");
        g_assert_cmpuint(count_of(incoming, "-S"), ==, 1);
        /* The same machine otherwise: the guest's state arrives into it. */
        n = g_strv_length(normal);
        g_assert_cmpuint(g_strv_length(incoming), ==, n + 2);
        for (guint i = 0; i < MIN(n, g_strv_length(incoming)); i++)
                g_assert_cmpstr(incoming[i], ==, normal[i]);
}

/* ---- paths ---- */

static void test_paths(void) {
        g_autoptr(QemuPaths) p = qemu_paths_new(QEMU_DIR, UUID);
        g_autofree char *socket = qemu_paths_serial_socket(p, 3);
        g_autofree char *log = qemu_paths_serial_log(p, 3);

        g_assert_cmpstr(p->dir, ==, QEMU_DIR "/" UUID);
        g_assert_cmpstr(p->qmp_socket, ==, QEMU_DIR "/" UUID "/qmp.sock");
        g_assert_cmpstr(p->pid, ==, QEMU_DIR "/" UUID "/pid");
        g_assert_cmpstr(p->live_xml, ==, QEMU_DIR "/" UUID "/domain.xml");
        g_assert_cmpstr(p->reason, ==, QEMU_DIR "/" UUID "/reason");
        g_assert_cmpstr(p->incoming, ==, QEMU_DIR "/" UUID "/incoming");
        g_assert_cmpstr(p->postcopy, ==, QEMU_DIR "/" UUID "/postcopy");
        /* Logs live outside the per-domain directory: they outlive QEMU. */
        g_assert_cmpstr(p->log_dir, ==, QEMU_DIR "/log");
        g_assert_cmpstr(p->log, ==, QEMU_DIR "/log/" UUID ".log");
        g_assert_cmpstr(socket, ==, QEMU_DIR "/" UUID "/serial3.sock");
        g_assert_cmpstr(log, ==, QEMU_DIR "/log/" UUID "-serial3.log");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/qemu-command/minimal/fixed-options", test_minimal);
        g_test_add_func("/qemu-command/accel/kvm-or-tcg", test_accel);
        g_test_add_func("/qemu-command/memory/whole-mib", test_memory);
        g_test_add_func("/qemu-command/vcpus/smp", test_vcpus);
        g_test_add_func("/qemu-command/machine/type-and-arch", test_machine_and_arch);
        g_test_add_func("/qemu-command/os/direct-kernel", test_direct_kernel);
        g_test_add_func("/qemu-command/cpu/modes-and-features", test_cpu);
        g_test_add_func("/qemu-command/cpu/hyperv", test_cpu_hyperv);
        g_test_add_func("/qemu-command/disk/ide-positions", test_disk_ide_positions);
        g_test_add_func("/qemu-command/disk/virtio-and-formats", test_disk_virtio);
        g_test_add_func("/qemu-command/disk/cache-modes", test_disk_cache_modes);
        g_test_add_func("/qemu-command/disk/buses", test_disk_buses);
        g_test_add_func("/qemu-command/disk/no-scsi-controller-unless-needed", test_disk_no_scsi_controller);
        g_test_add_func("/qemu-command/disk/cdrom", test_disk_cdrom);
        g_test_add_func("/qemu-command/disk/cdrom-empty", test_disk_cdrom_empty);
        g_test_add_func("/qemu-command/hostile/disk-path", test_disk_hostile_path);
        g_test_add_func("/qemu-command/hostile/serial-paths", test_serial_hostile_paths);
        g_test_add_func("/qemu-command/hostile/name", test_name_hostile);
        g_test_add_func("/qemu-command/hostile/newlines", test_newlines);
        g_test_add_func("/qemu-command/interface/bridge-and-user", test_interfaces);
        g_test_add_func("/qemu-command/interface/without-fds", test_interfaces_without_fds);
        g_test_add_func("/qemu-command/interface/network-tap", test_interface_network_tap);
        g_test_add_func("/qemu-command/serial/socket-and-log", test_serials);
        g_test_add_func("/qemu-command/monitor/fd", test_monitor);
        g_test_add_func("/qemu-command/incoming/defer", test_incoming);
        g_test_add_func("/qemu-command/paths/layout", test_paths);
        return g_test_run();
}
