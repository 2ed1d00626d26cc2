/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "domain-xml.h"
#include "errors.h"

#define MINIMAL                                                                                             \
        "<domain type=\"test\">\n"                                                                          \
        "  <name>demo</name>\n"                                                                             \
        "  <memory unit=\"MiB\">512</memory>\n"                                                             \
        "  <vcpu>2</vcpu>\n"                                                                                \
        "</domain>\n"

/* Wraps body lines in a test domain that is otherwise valid. */
#define DOMAIN(body) "<domain type='test'><name>d</name><memory unit='MiB'>64</memory>" body "</domain>"
#define DEVICES(body) DOMAIN("<devices>" body "</devices>")

static DomainDef *parse_ok(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;
        int r;

        r = domain_def_parse(xml, strlen(xml), &def, &error);
        g_assert_no_error(error);
        g_assert_cmpint(r, ==, 0);
        g_assert_nonnull(def);
        return def;
}

/* Parses, expects a refusal whose message contains `expect`, and checks the
 * out-parameter was left alone. */
static void assert_refused_len(const char *xml, size_t len, const char *expect) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = (DomainDef *)0x1;
        int r;

        r = domain_def_parse(xml, len, &def, &error);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_XML);
        g_assert_true(def == (DomainDef *)0x1);
        if (error)
                g_test_message("refused: %s", error->message);
        if (error && !strstr(error->message, expect))
                g_test_message("message '%s' does not contain '%s'", error->message, expect);
        g_assert_nonnull(error ? strstr(error->message, expect) : NULL);
}

static void assert_refused(const char *xml, const char *expect) {
        assert_refused_len(xml, strlen(xml), expect);
}

static void assert_round_trip(const DomainDef *def) {
        g_autoptr(DomainDef) again = NULL;
        g_autofree char *xml = domain_def_format(def);

        again = parse_ok(xml);
        g_assert_true(domain_def_equal(def, again));
        if (again && !domain_def_equal(def, again))
                g_test_message("round trip changed the definition:\n%s", xml);
}

static void test_minimal(void) {
        g_autoptr(DomainDef) def = parse_ok(MINIMAL);
        char canonical[37];

        g_assert_cmpstr(def->type, ==, "test");
        g_assert_cmpstr(def->name, ==, "demo");
        g_assert_cmpuint(def->memory_bytes, ==, 512ULL * 1024 * 1024);
        g_assert_cmpuint(def->vcpus, ==, 2);
        g_assert_cmpstr(def->os_type, ==, "hvm");
        g_assert_null(def->cpu_mode);
        g_assert_cmpuint(def->disks->len, ==, 0);
        g_assert_cmpuint(def->interfaces->len, ==, 0);
        g_assert_cmpuint(def->serials->len, ==, 0);
        /* A UUID was generated, canonical lower-case. */
        g_assert_true(domain_uuid_parse(def->uuid, canonical));
        g_assert_cmpstr(canonical, ==, def->uuid);
        assert_round_trip(def);
}

static void test_type_left_to_backends(void) {
        /* Whether a type runs here is the manager's call (UnsupportedBackend
         * names the backends); the parser keeps it as written. */
        g_autoptr(DomainDef) def =
                parse_ok("<domain type='xen'><name>d</name><memory unit='MiB'>64</memory></domain>");

        g_assert_cmpstr(def->type, ==, "xen");
        assert_round_trip(def);
}

static void test_generated_uuids_differ(void) {
        g_autoptr(DomainDef) a = parse_ok(MINIMAL);
        g_autoptr(DomainDef) b = parse_ok(MINIMAL);

        g_assert_cmpstr(a->uuid, !=, b->uuid);
        g_assert_false(domain_def_equal(a, b));
}

static const char full_xml[] =
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<!-- a comment before the root is fine -->\n"
        "<domain type='kvm'>\n"
        "  <name>full &amp; &lt;tricky&gt; \"näme\" 'x'</name>\n"
        "  <uuid>0123456789ABCDEF0123456789abcdef</uuid>\n"
        "  <title>A title with &lt;markup&gt;</title>\n"
        "  <description><![CDATA[multi\nline ]]]]><![CDATA[> & <stuff>]]></description>\n"
        "  <memory unit='b'>1048577000</memory>\n"
        "  <currentMemory unit='KB'>1048577</currentMemory>\n"
        "  <vcpu placement='static' current='4'>4</vcpu>\n"
        "  <os>\n"
        "    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
        "    <loader type='rom'>/usr/share/qemu/qboot.rom</loader>\n"
        "    <kernel>/var/lib/vmigrate/guest.elf</kernel>\n"
        "    <initrd>/var/lib/vmigrate/initrd.img</initrd>\n"
        "    <cmdline>console=ttyS0 dirty-rate=100 quote=\"x\" amp=&amp;</cmdline>\n"
        "  </os>\n"
        "  <cpu mode='custom'>\n"
        "    <model>qemu64</model>\n"
        "    <feature policy='require' name='sse4.2'/>\n"
        "    <feature name='x2apic'/>\n"
        "  </cpu>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>preserve</on_crash>\n"
        "  <devices>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='qcow2' cache='writeback'/>\n"
        "      <source file='/images/a &amp; b.qcow2'/>\n"
        "      <target dev='vda' bus='virtio'/>\n"
        "      <shareable/>\n"
        "    </disk>\n"
        "    <disk type='block' device='disk'>\n"
        "      <driver name='qemu' type='raw' cache='none'/>\n"
        "      <source dev='/dev/vg0/vm1-data'/>\n"
        "      <target dev='vdb' bus='virtio'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <source file='/images/install.iso'/>\n"
        "      <target dev='hdc'/>\n"
        "      <readonly/>\n"
        "    </disk>\n"
        "    <disk type='file'>\n"
        "      <source file='/images/data.raw'/>\n"
        "      <target dev='sdaa'/>\n"
        "    </disk>\n"
        "    <interface type='bridge'>\n"
        "      <source bridge='br0'/>\n"
        "      <mac address='52:54:00:AA:BB:CC'/>\n"
        "      <model type='e1000'/>\n"
        "    </interface>\n"
        "    <interface type='network'><source network='default'/></interface>\n"
        "    <interface type='user'/>\n"
        "    <serial type='file'><source path='/var/log/guest.log'/><target port='2'/></serial>\n"
        "    <serial type='pty'/>\n"
        "    <serial type='null'/>\n"
        "  </devices>\n"
        "</domain>\n";

static void test_full(void) {
        g_autoptr(DomainDef) def = parse_ok(full_xml);
        DomainDiskDef *disk;
        DomainInterfaceDef *nic;
        DomainSerialDef *serial;
        DomainCpuFeatureDef *feature;

        g_assert_cmpstr(def->type, ==, "kvm");
        g_assert_cmpstr(def->name, ==, "full & <tricky> \"näme\" 'x'");
        g_assert_cmpstr(def->uuid, ==, "01234567-89ab-cdef-0123-456789abcdef");
        g_assert_cmpstr(def->title, ==, "A title with <markup>");
        g_assert_cmpstr(def->description, ==, "multi\nline ]]> & <stuff>");
        /* 1048577000 bytes and 1048577 KB, both rounded up to whole MiB. */
        g_assert_cmpuint(def->memory_bytes, ==, 1001ULL << 20);
        g_assert_cmpuint(def->vcpus, ==, 4);
        g_assert_cmpstr(def->os_arch, ==, "x86_64");
        g_assert_cmpstr(def->os_machine, ==, "pc-q35-7.2");
        g_assert_cmpstr(def->os_loader, ==, "/usr/share/qemu/qboot.rom");
        g_assert_cmpstr(def->os_kernel, ==, "/var/lib/vmigrate/guest.elf");
        g_assert_cmpstr(def->os_initrd, ==, "/var/lib/vmigrate/initrd.img");
        g_assert_cmpstr(def->os_cmdline, ==, "console=ttyS0 dirty-rate=100 quote=\"x\" amp=&");
        g_assert_cmpstr(def->cpu_mode, ==, "custom");
        g_assert_cmpstr(def->cpu_model, ==, "qemu64");
        g_assert_cmpuint(def->cpu_features->len, ==, 2);
        feature = g_ptr_array_index(def->cpu_features, 1);
        g_assert_cmpstr(feature->name, ==, "x2apic");
        g_assert_cmpstr(feature->policy, ==, "require");
        g_assert_cmpstr(def->on_crash, ==, "preserve");

        g_assert_cmpuint(def->disks->len, ==, 4);
        disk = g_ptr_array_index(def->disks, 0);
        g_assert_cmpstr(disk->device, ==, "disk");
        g_assert_cmpstr(disk->driver_type, ==, "qcow2");
        g_assert_cmpstr(disk->cache, ==, "writeback");
        g_assert_cmpstr(disk->source_file, ==, "/images/a & b.qcow2");
        g_assert_cmpstr(disk->target_bus, ==, "virtio");
        g_assert_true(disk->shareable);
        g_assert_false(disk->readonly);
        g_assert_false(disk->block);
        disk = g_ptr_array_index(def->disks, 1);
        g_assert_true(disk->block);
        g_assert_cmpstr(disk->source_file, ==, "/dev/vg0/vm1-data");
        g_assert_cmpstr(disk->cache, ==, "none");
        disk = g_ptr_array_index(def->disks, 2);
        g_assert_cmpstr(disk->device, ==, "cdrom");
        g_assert_cmpstr(disk->target_bus, ==, "ide"); /* derived from hdc */
        g_assert_true(disk->readonly);
        disk = g_ptr_array_index(def->disks, 3);
        g_assert_cmpstr(disk->target_bus, ==, "scsi"); /* derived from sdaa */
        g_assert_null(disk->driver_type);

        g_assert_cmpuint(def->interfaces->len, ==, 3);
        nic = g_ptr_array_index(def->interfaces, 0);
        g_assert_cmpstr(nic->type, ==, "bridge");
        g_assert_cmpstr(nic->source, ==, "br0");
        g_assert_cmpstr(nic->mac, ==, "52:54:00:aa:bb:cc");
        g_assert_cmpstr(nic->model, ==, "e1000");
        nic = g_ptr_array_index(def->interfaces, 1);
        g_assert_cmpstr(nic->source, ==, "default");
        g_assert_true(g_str_has_prefix(nic->mac, "52:54:00:")); /* generated, stable from now on */
        nic = g_ptr_array_index(def->interfaces, 2);
        g_assert_null(nic->source);

        g_assert_cmpuint(def->serials->len, ==, 3);
        serial = g_ptr_array_index(def->serials, 0);
        g_assert_cmpstr(serial->type, ==, "file");
        g_assert_cmpuint(serial->port, ==, 2);
        g_assert_cmpstr(serial->source_path, ==, "/var/log/guest.log");
        /* Ports not given take the lowest free ones. */
        g_assert_cmpuint(((DomainSerialDef *)g_ptr_array_index(def->serials, 1))->port, ==, 0);
        g_assert_cmpuint(((DomainSerialDef *)g_ptr_array_index(def->serials, 2))->port, ==, 1);

        assert_round_trip(def);
}

static void test_format_shape(void) {
        g_autoptr(DomainDef) def = parse_ok(full_xml);
        g_autofree char *xml = domain_def_format(def);
        g_autofree char *again = NULL;
        g_autoptr(DomainDef) reparsed = NULL;

        /* libvirt's shape: 2-space indentation, memory in KiB. */
        g_assert_true(g_str_has_prefix(xml, "<domain type=\"kvm\">\n  <name>"));
        g_assert_nonnull(strstr(xml, "\n  <memory unit=\"KiB\">1025024</memory>\n"));
        g_assert_nonnull(strstr(xml, "\n    <type arch=\"x86_64\" machine=\"pc-q35-7.2\">hvm</type>\n"));
        g_assert_nonnull(strstr(xml, "\n      <source file=\"/images/a &amp; b.qcow2\"/>\n"));
        /* Escaped, not raw. */
        g_assert_nonnull(strstr(xml, "<name>full &amp; &lt;tricky&gt;"));
        g_assert_null(strstr(xml, "<stuff>"));

        /* Formatting is a fixed point. */
        reparsed = parse_ok(xml);
        again = domain_def_format(reparsed);
        g_assert_cmpstr(xml, ==, again);

        {
                g_autoptr(DomainDef) small = parse_ok(MINIMAL);
                g_autofree char *s = domain_def_format(small);
                g_assert_nonnull(strstr(s, "\n  <memory unit=\"KiB\">524288</memory>\n"));
        }
}

static void test_virsh_dumpxml(void) {
        g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "virsh-dumpxml.xml", NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(DomainDef) def = NULL;
        gsize len;

        g_assert_true(g_file_get_contents(path, &xml, &len, &error));
        g_assert_no_error(error);
        if (!xml)
                return;
        def = parse_ok(xml);
        g_assert_cmpstr(def->type, ==, "kvm");
        g_assert_cmpstr(def->name, ==, "web-01");
        g_assert_cmpstr(def->uuid, ==, "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f");
        g_assert_cmpuint(def->memory_bytes, ==, 2ULL * 1024 * 1024 * 1024);
        g_assert_cmpstr(def->cpu_model, ==, "Skylake-Client-IBRS");
        g_assert_cmpuint(def->disks->len, ==, 2);
        g_assert_null(((DomainDiskDef *)g_ptr_array_index(def->disks, 1))->source_file);
        g_assert_cmpuint(def->interfaces->len, ==, 1);
        g_assert_cmpstr(((DomainInterfaceDef *)g_ptr_array_index(def->interfaces, 0))->mac, ==,
                        "52:54:00:6b:2a:10");
        g_assert_cmpuint(def->serials->len, ==, 1);
        g_assert_cmpstr(((DomainSerialDef *)g_ptr_array_index(def->serials, 0))->type, ==, "pty");
        /* The runtime /dev/pts path of a pty is dropped. */
        g_assert_null(((DomainSerialDef *)g_ptr_array_index(def->serials, 0))->source_path);
        assert_round_trip(def);

        {
                /* What is dropped is not written back. */
                g_autofree char *out = domain_def_format(def);
                g_assert_null(strstr(out, "seclabel"));
                g_assert_null(strstr(out, "type=\"pci\""));
                g_assert_null(strstr(out, " id="));
        }
}

static void test_copy(void) {
        g_autoptr(DomainDef) def = parse_ok(full_xml);
        g_autoptr(DomainDef) copy = domain_def_copy(def);

        g_assert_true(domain_def_equal(def, copy));
        g_assert_true(copy->name != def->name);
        g_assert_true(copy->disks != def->disks);
        g_assert_true(g_ptr_array_index(copy->disks, 0) != g_ptr_array_index(def->disks, 0));

        /* Each field takes part in equality. */
        ((DomainDiskDef *)g_ptr_array_index(copy->disks, 0))->readonly = true;
        g_assert_false(domain_def_equal(def, copy));
        ((DomainDiskDef *)g_ptr_array_index(copy->disks, 0))->readonly = false;
        g_assert_true(domain_def_equal(def, copy));
        ((DomainSerialDef *)g_ptr_array_index(copy->serials, 2))->port = 3;
        g_assert_false(domain_def_equal(def, copy));
        ((DomainSerialDef *)g_ptr_array_index(copy->serials, 2))->port = 1;
        copy->memory_bytes++;
        g_assert_false(domain_def_equal(def, copy));
        copy->memory_bytes--;
        g_free(copy->os_cmdline);
        copy->os_cmdline = NULL;
        g_assert_false(domain_def_equal(def, copy));
}

static void test_built_in_code(void) {
        g_autoptr(DomainDef) def = domain_def_new();

        def->type = g_strdup("test");
        def->name = g_strdup("built");
        domain_uuid_generate(def->uuid);
        def->memory_bytes = 3 * 1024 * 1024; /* what the parser gives: whole MiB */
        def->vcpus = 3;
        assert_round_trip(def);
}

static void test_memory_units(void) {
        static const struct {
                const char *unit;
                const char *value;
                uint64_t bytes;
        } cases[] = {
                { NULL, "1024", 1024ULL * 1024 }, /* default KiB */
                { "KiB", "2048", 2048ULL * 1024 }, { "k", "2048", 2048ULL * 1024 },
                { "KB", "2000", 2ULL << 20 },      { "b", "1048576", 1048576 },
                { "bytes", "1048576", 1048576 },   { "M", "3", 3ULL << 20 },
                { "MiB", "3", 3ULL << 20 },        { "MB", "3", 3ULL << 20 },
                { "mib", "3", 3ULL << 20 },        { "G", "2", 2ULL << 30 },
                { "GiB", "2", 2ULL << 30 },        { "GB", "2", 1908ULL << 20 },
                { "T", "16", 16ULL << 40 },        { "TiB", "1", 1ULL << 40 },
                { "TB", "1", 953675ULL << 20 },    { "MiB", " 7\n", 7ULL << 20 },
                /* Rounded up to whole MiB, as libvirt does for QEMU. */
                { "b", "1", 1ULL << 20 },          { "KiB", "1025", 2ULL << 20 },
                { "b", "1048577000", 1001ULL << 20 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *unit =
                        cases[i].unit ? g_strdup_printf(" unit='%s'", cases[i].unit) : g_strdup("");
                g_autofree char *xml =
                        g_strdup_printf("<domain type='test'><name>m</name><memory%s>%s</memory></domain>",
                                        unit, cases[i].value);
                g_autoptr(DomainDef) def = parse_ok(xml);

                g_assert_cmpuint(def->memory_bytes, ==, cases[i].bytes);
                assert_round_trip(def);
        }
}

typedef struct Refusal {
        const char *path;
        const char *xml;
        const char *expect;
} Refusal;

static const Refusal refusals[] = {
        /* document level */
        { "empty", "", "empty" },
        { "not-xml", "hello", "not well-formed XML: line 1" },
        { "root", "<vm type='test'/>", "the root element is <vm>; expected <domain>" },
        { "root-namespaced", "<x:domain xmlns:x='urn:x' type='test'/>", "the root element is <x:domain>" },
        { "root-default-ns", "<domain xmlns='urn:x' type='test'/>",
          "expected <domain> without a namespace" },
        { "pi", "<?php evil() ?>" DOMAIN(""), "processing instruction <?php?>" },
        { "xml-1.1", "<?xml version='1.1'?>" DOMAIN(""), "XML version '1.1' is not supported" },
        { "external-entity",
          "<?xml version='1.0'?>\n<!DOCTYPE domain SYSTEM 'file:///etc/passwd'>\n" DOMAIN(""),
          "<!DOCTYPE>" },
        { "undeclared-entity", DOMAIN("<title>&xxe;</title>"), "not well-formed XML: line 1" },
        { "text-in-domain", DOMAIN("stray text"), "unexpected text 'stray text' in <domain>" },
        /* domain */
        { "type-missing", "<domain><name>d</name><memory>1024</memory></domain>",
          "attribute 'type' is required" },
        { "type-junk", "<domain type='X en'><name>d</name></domain>",
          "<domain type='X en'>: not a domain type (lower-case letters and digits)" },
        { "type-empty", "<domain type=''><name>d</name></domain>", "<domain type=''>: not a domain type" },
        { "domain-attr", "<domain type='test' foo='1'/>", "unknown attribute 'foo' on <domain>" },
        { "domain-ns-attr", "<domain type='test' xmlns:a='urn:a' a:b='1'/>",
          "unknown attribute 'a:b' on <domain>" },
        { "unknown-element", DOMAIN("<foo/>"), "unknown element <foo> in <domain>" },
        { "namespaced-element", DOMAIN("<q:commandline xmlns:q='urn:q'/>"),
          "unknown element <q:commandline>" },
        { "metadata-no-ns", DOMAIN("<metadata><migration/></metadata>"),
          "<migration> in <metadata> has no namespace: as in libvirt, each application's metadata needs one" },
        { "metadata-same-ns", DOMAIN("<metadata><a:x xmlns:a='urn:app'/><b:y xmlns:b='urn:app'/></metadata>"),
          "<metadata>: two elements in namespace 'urn:app'" },
        { "metadata-ours-unknown",
          DOMAIN("<metadata><v:other xmlns:v='https://vmigrate.org/xmlns/migration/1'/></metadata>"),
          "<v:other> in <metadata> is not supported by vmigrate" },
        { "metadata-twice", DOMAIN("<metadata/><metadata/>"), "<metadata> given twice in <domain>" },
        { "metadata-attr", DOMAIN("<metadata foo='1'/>"), "unknown attribute 'foo' on <metadata>" },
        { "metadata-text", DOMAIN("<metadata>hi</metadata>"), "unexpected text 'hi' in <metadata>" },
        { "metadata-unknown-child",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:want hook='a'/></v:migration></metadata>"),
          "unknown element <v:want> in <vmigrate:migration>" },
        { "metadata-foreign-child",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1' xmlns:o='urn:o'><o:require hook='a'/></v:migration></metadata>"),
          "unknown element <o:require> in <vmigrate:migration>" },
        { "require-both",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require hook='a' interface='52:54:00:00:00:01'/></v:migration></metadata>"),
          "give exactly one of 'interface'" },
        { "require-neither",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require/></v:migration></metadata>"),
          "give exactly one of 'interface'" },
        { "require-bad-hook",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require hook='../x'/></v:migration></metadata>"),
          "<vmigrate:require hook='../x'>: not a hook name" },
        { "require-bad-mac",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require interface='nope'/></v:migration></metadata>"),
          "<vmigrate:require interface>: <mac address='nope'>: not a MAC address" },
        { "require-unknown-mac",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require interface='52:54:00:00:00:09'/></v:migration></metadata>"),
          "<vmigrate:require interface='52:54:00:00:00:09'>: no <interface> has this MAC address" },
        { "require-twice",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require hook='a'/><v:require hook='a'/></v:migration></metadata>"),
          "<vmigrate:require hook='a'> given twice" },
        { "priority-too-high",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:priority>1001</v:priority></v:migration></metadata>"),
          "<vmigrate:priority>: 1001 is above the maximum of 1000" },
        { "priority-not-a-number",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:priority>high</v:priority></v:migration></metadata>"),
          "<vmigrate:priority>" },
        { "priority-twice",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:priority>1</v:priority><v:priority>2</v:priority></v:migration></metadata>"),
          "priority" },
        { "priority-attribute",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:priority level='1'>1</v:priority></v:migration></metadata>"),
          "priority" },
        { "require-ns-attr",
          DOMAIN("<metadata><v:migration xmlns:v='https://vmigrate.org/xmlns/migration/1'><v:require v:hook='a'/></v:migration></metadata>"),
          "namespaced attributes are not supported" },
        { "name-missing", "<domain type='test'><memory>1024</memory></domain>", "<name> is required" },
        { "name-twice", DOMAIN("<name>e</name>"), "<name> given twice in <domain>" },
        { "name-slash", "<domain type='test'><name>a/b</name><memory>1024</memory></domain>",
          "<name>: contains '/'" },
        { "name-control", "<domain type='test'><name>a&#9;b</name><memory>1024</memory></domain>",
          "<name>: contains a control character" },
        { "name-newline", "<domain type='test'><name>\n  d\n</name><memory>1024</memory></domain>",
          "<name>: contains a control character" },
        { "name-empty", "<domain type='test'><name></name><memory>1024</memory></domain>",
          "<name>: is empty" },
        { "name-dot", "<domain type='test'><name>.hidden</name><memory>1024</memory></domain>",
          "<name>: starts with '.'" },
        { "name-long",
          "<domain type='test'><name>"
          "01234567890123456789012345678901234567890123456789012345678901234"
          "</name><memory>1024</memory></domain>",
          "<name>: is longer than 64 bytes" },
        { "name-child", "<domain type='test'><name>a<b/></name></domain>",
          "unexpected element <b> inside it" },
        { "name-attr", "<domain type='test'><name x='1'>a</name></domain>",
          "unknown attribute 'x' on <name>" },
        { "uuid-bad", DOMAIN("<uuid>xyz</uuid>"),
          "<uuid>: 'xyz' is not a UUID (32 hex digits, optionally dashed)" },
        { "uuid-misdashed", DOMAIN("<uuid>0123456-78-9abc-def0-123456789abcdef</uuid>"), "is not a UUID" },
        { "uuid-nil", DOMAIN("<uuid>00000000-0000-0000-0000-000000000000</uuid>"), "nil UUID" },
        { "uuid-twice",
          DOMAIN("<uuid>0123456789abcdef0123456789abcdef</uuid><uuid>0123456789abcdef0123456789abcdef</"
                 "uuid>"),
          "<uuid> given twice" },
        { "title-newline", DOMAIN("<title>a\nb</title>"), "<title>: must be a single line" },
        /* memory */
        { "memory-missing", "<domain type='test'><name>d</name></domain>", "<memory> is required" },
        { "memory-twice", DOMAIN("<memory>2048</memory>"), "<memory> given twice in <domain>" },
        { "memory-unit", "<domain type='test'><name>d</name><memory unit='parsecs'>1</memory></domain>",
          "<memory unit='parsecs'>: unknown unit; use KiB, MiB, GiB, TiB or bytes" },
        { "memory-zero", "<domain type='test'><name>d</name><memory>0</memory></domain>",
          "<memory>: a guest needs memory; the smallest valid value is 1 MiB" },
        { "memory-negative", "<domain type='test'><name>d</name><memory>-1</memory></domain>",
          "<memory>: '-1' is negative" },
        { "memory-plus", "<domain type='test'><name>d</name><memory>+1024</memory></domain>",
          "<memory>: '+1024' is not a decimal number" },
        { "memory-junk", "<domain type='test'><name>d</name><memory>1024k</memory></domain>",
          "<memory>: '1024k' is not a decimal number" },
        { "memory-float", "<domain type='test'><name>d</name><memory>1.5</memory></domain>",
          "is not a decimal number" },
        { "memory-empty", "<domain type='test'><name>d</name><memory unit='MiB'> </memory></domain>",
          "<memory>: a number is required" },
        { "memory-huge", "<domain type='test'><name>d</name><memory unit='TiB'>17</memory></domain>",
          "<memory>: 17 TiB is above the maximum; the nearest valid value is 16 TiB" },
        { "memory-huge-rounded",
          "<domain type='test'><name>d</name><memory unit='b'>17592186044417</memory></domain>",
          "the nearest valid value is 16 TiB" },
        { "memory-overflow-mult",
          "<domain type='test'><name>d</name><memory unit='EiB'>18446744073709551615</memory></domain>",
          "above the maximum" },
        { "memory-overflow-digits",
          "<domain type='test'><name>d</name><memory>184467440737095516160</memory></domain>",
          "'184467440737095516160' is too large" },
        { "memory-attr", "<domain type='test'><name>d</name><memory dumpCore='on'>1024</memory></domain>",
          "unknown attribute 'dumpCore' on <memory>" },
        { "current-differs", DOMAIN("<currentMemory unit='MiB'>32</currentMemory>"),
          "<currentMemory> (33554432 bytes) differs from <memory> (67108864 bytes)" },
        /* vcpu */
        { "vcpu-zero", DOMAIN("<vcpu>0</vcpu>"), "<vcpu>: 0 is below the minimum of 1" },
        { "vcpu-huge", DOMAIN("<vcpu>1025</vcpu>"), "<vcpu>: 1025 is above the maximum of 1024" },
        { "vcpu-overflow", DOMAIN("<vcpu>99999999999999999999</vcpu>"), "is too large" },
        { "vcpu-negative", DOMAIN("<vcpu>-2</vcpu>"), "<vcpu>: '-2' is negative" },
        { "vcpu-hex", DOMAIN("<vcpu>0x2</vcpu>"), "<vcpu>: '0x2' is not a decimal number" },
        { "vcpu-placement", DOMAIN("<vcpu placement='auto'>2</vcpu>"),
          "<vcpu placement='auto'>: unknown placement" },
        { "vcpu-current", DOMAIN("<vcpu current='1'>2</vcpu>"), "vmigrate does not hot-plug vCPUs" },
        { "vcpu-cpuset-down", DOMAIN("<vcpu cpuset='3-1'>2</vcpu>"),
          "<vcpu cpuset> '3-1': a range must go up, like '0-3'" },
        { "vcpu-cpuset-junk", DOMAIN("<vcpu cpuset='0,a'>2</vcpu>"),
          "<vcpu cpuset> '0,a': not a list of host CPUs (0 to 1023) like '0-3,^2,8'" },
        { "vcpu-cpuset-huge", DOMAIN("<vcpu cpuset='1024'>2</vcpu>"), "not a list of host CPUs (0 to 1023)" },
        { "vcpu-cpuset-empty", DOMAIN("<vcpu cpuset='1,^1'>2</vcpu>"), "<vcpu cpuset> '1,^1': names no CPU" },
        /* os */
        { "os-type", DOMAIN("<os><type>exe</type></os>"), "<os><type>: unknown OS type 'exe'" },
        { "os-type-missing", DOMAIN("<os><kernel>/k</kernel></os>"), "<os>: <type>hvm</type> is required" },
        { "os-arch", DOMAIN("<os><type arch='mips'>hvm</type></os>"),
          "<type arch='mips'>: unknown architecture" },
        { "os-machine", DOMAIN("<os><type machine='pc q35'>hvm</type></os>"),
          "<type machine='pc q35'>: not a machine type name" },
        { "kernel-relative", DOMAIN("<os><type>hvm</type><kernel>guest.elf</kernel></os>"),
          "<os><kernel>: 'guest.elf' is not an absolute path" },
        { "kernel-newline", DOMAIN("<os><type>hvm</type><kernel>/a\n/b</kernel></os>"),
          "<os><kernel>: the path '/a?/b' contains a control character" },
        { "kernel-empty", DOMAIN("<os><type>hvm</type><kernel></kernel></os>"),
          "<os><kernel>: the path is empty" },
        { "initrd-relative", DOMAIN("<os><type>hvm</type><kernel>/k</kernel><initrd>../i</initrd></os>"),
          "<os><initrd>: '../i' is not an absolute path" },
        { "loader-relative", DOMAIN("<os><type>hvm</type><loader>bios.bin</loader></os>"),
          "<os><loader>: 'bios.bin' is not an absolute path" },
        { "loader-pflash", DOMAIN("<os><type>hvm</type><loader type='pflash'>/ovmf</loader></os>"),
          "<loader type='pflash' readonly=''>: a writable flash loader keeps the UEFI variables inside the code "
          "image" },
        { "initrd-without-kernel", DOMAIN("<os><type>hvm</type><initrd>/i</initrd></os>"),
          "<initrd> needs a <kernel>" },
        { "kernel-twice", DOMAIN("<os><type>hvm</type><kernel>/k</kernel><kernel>/k</kernel></os>"),
          "<kernel> given twice in <os>" },
        { "boot-fd", DOMAIN("<os><type>hvm</type><boot dev='fd'/></os>"),
          "<boot dev='fd'> in <os>: vmigrate guests have no floppy drive" },
        { "nvram", DOMAIN("<os><type>hvm</type><nvram>/x</nvram></os>"),
          "<os><nvram>: only UEFI guests have an NVRAM; add <os firmware='efi'>" },
        { "os-unknown", DOMAIN("<os><type>hvm</type><bogus/></os>"), "unknown element <bogus> in <os>" },
        /* cpu */
        { "cpu-mode", DOMAIN("<cpu mode='hybrid'/>"), "<cpu mode='hybrid'>: unknown mode" },
        { "cpu-custom-no-model", DOMAIN("<cpu mode='custom'/>"), "<cpu mode='custom'> needs a <model>" },
        { "cpu-model-passthrough", DOMAIN("<cpu mode='host-passthrough'><model>qemu64</model></cpu>"),
          "<model> only applies to mode='custom'" },
        { "cpu-match", DOMAIN("<cpu match='minimum'><model>qemu64</model></cpu>"), "<cpu match='minimum'>" },
        { "cpu-not-migratable", DOMAIN("<cpu mode='host-passthrough' migratable='off'/>"),
          "a vmigrate guest must stay migratable" },
        { "cpu-fallback", DOMAIN("<cpu><model fallback='allow'>qemu64</model></cpu>"),
          "vmigrate never substitutes a CPU model" },
        { "cpu-topology", DOMAIN("<cpu mode='host-model'><topology sockets='1'/></cpu>"),
          "<cpu><topology>: attribute 'cores' is required" },
        { "cpu-feature-policy", DOMAIN("<cpu mode='host-model'><feature policy='maybe' name='x'/></cpu>"),
          "<feature policy='maybe'>: unknown policy" },
        { "cpu-feature-name", DOMAIN("<cpu mode='host-model'><feature name='a b'/></cpu>"),
          "<feature name='a b'> in <cpu>: not a CPU feature name" },
        { "cpu-feature-twice", DOMAIN("<cpu mode='host-model'><feature name='x'/><feature name='x'/></cpu>"),
          "<feature name='x'> given twice in <cpu>" },
        { "cpu-feature-nameless", DOMAIN("<cpu mode='host-model'><feature/></cpu>"),
          "<feature>: attribute 'name' is required" },
        /* lifecycle */
        { "on-crash", DOMAIN("<on_crash>coredump-destroy</on_crash>"),
          "<on_crash>: unknown action 'coredump-destroy'" },
        /* virsh dumpxml extras that are refused */
        { "features-hyperv-passthrough", DOMAIN("<features><acpi/><hyperv mode='passthrough'/></features>"),
          "<hyperv mode='passthrough'> is not supported by vmigrate" },
        { "clock-variable", DOMAIN("<clock offset='variable' adjustment='3600' basis='utc'/>"),
          "<clock offset='variable'> is not supported by vmigrate" },
        { "pm-enabled", DOMAIN("<pm><suspend-to-mem enabled='yes'/></pm>"),
          "guest suspend is not supported by vmigrate (a suspended guest cannot be woken or migrated); use "
          "enabled='no' or remove it" },
        { "graphics-sdl", DEVICES("<graphics type='sdl'/>"), "<graphics type='sdl'> is not supported" },
        { "video-cirrus", DEVICES("<video><model type='cirrus'/></video>"), "use type 'vga'" },
        { "input-tablet-ps2", DEVICES("<input type='tablet' bus='ps2'/>"),
          "<input type='tablet' bus='ps2'>: there is no PS/2 tablet" },
        { "memballoon-xen", DEVICES("<memballoon model='xen'/>"), "<memballoon model='xen'>" },
        { "devices-unknown", DEVICES("<foo/>"), "unknown element <foo> in <devices>" },
        { "devices-twice", DOMAIN("<devices/><devices/>"), "<devices> given twice" },
        { "devices-text", DEVICES("junk"), "unexpected text 'junk' in <devices>" },
        /* disks */
        { "disk-type", DEVICES("<disk type='volume'><source pool='p' volume='v'/><target dev='vda'/></disk>"),
          "<disk type='volume'>: unknown disk type; use 'file', 'block' or 'network'" },
        { "disk-network-no-protocol",
          DEVICES("<disk type='network'><source name='pool/vm1'/><target dev='vda'/></disk>"),
          "<source>: attribute 'protocol' is required (nbd, iscsi or rbd)" },
        { "disk-block-file", DEVICES("<disk type='block'><source file='/dev/sda'/><target dev='vda'/></disk>"),
          "unknown attribute 'file' on <source>" },
        { "disk-file-dev", DEVICES("<disk type='file'><source dev='/dev/sda'/><target dev='vda'/></disk>"),
          "unknown attribute 'dev' on <source>" },
        { "disk-block-relative", DEVICES("<disk type='block'><source dev='sda'/><target dev='vda'/></disk>"),
          "<disk><source dev>: 'sda' is not an absolute path" },
        { "disk-device", DEVICES("<disk type='file' device='floppy'/>"),
          "<disk device='floppy'>: unknown device" },
        { "disk-attr", DEVICES("<disk type='file' snapshot='no'/>"),
          "unknown attribute 'snapshot' on <disk>" },
        { "disk-source-relative",
          DEVICES("<disk type='file'><source file='a.img'/><target dev='vda'/></disk>"),
          "<disk><source file>: 'a.img' is not an absolute path" },
        { "disk-source-newline",
          DEVICES("<disk type='file'><source file='/a&#10;b'/><target dev='vda'/></disk>"),
          "contains a control character" },
        { "disk-source-missing", DEVICES("<disk type='file'><target dev='vda'/></disk>"),
          "<source file='...'/> is required" },
        { "disk-target-missing", DEVICES("<disk type='file'><source file='/a'/></disk>"),
          "<disk>: <target dev='...'/> is required" },
        { "disk-target-bad", DEVICES("<disk type='file'><source file='/a'/><target dev='disk0'/></disk>"),
          "<disk><target dev='disk0'>: not a disk name" },
        { "disk-target-digit", DEVICES("<disk type='file'><source file='/a'/><target dev='vd1'/></disk>"),
          "not a disk name" },
        { "disk-target-dup",
          DEVICES("<disk type='file'><source file='/a'/><target dev='vda'/></disk>"
                  "<disk type='file'><source file='/b'/><target dev='vda' bus='virtio'/></disk>"),
          "<disk><target dev='vda'>: two disks have the same target device" },
        { "disk-bus", DEVICES("<disk type='file'><source file='/a'/><target dev='vda' bus='usb'/></disk>"),
          "<target bus='usb'>: unknown bus" },
        { "disk-format",
          DEVICES("<disk type='file'><driver type='vmdk'/><source file='/a'/><target dev='vda'/></disk>"),
          "<driver type='vmdk'>: unknown image format" },
        { "disk-driver-attr",
          DEVICES("<disk type='file'><driver iothread='1'/><source file='/a'/><target dev='vda'/></disk>"),
          "unknown attribute 'iothread' on <driver>: vmigrate does not support it; remove it" },
        { "disk-readonly-twice",
          DEVICES("<disk type='file'><source file='/a'/><target dev='vda'/><readonly/><readonly/></disk>"),
          "<readonly> given twice in <disk>" },
        { "disk-readonly-content",
          DEVICES("<disk type='file'><source file='/a'/><target dev='vda'/><readonly>yes</readonly></disk>"),
          "<readonly> must be empty" },
        { "disk-boot-zero",
          DEVICES("<disk type='file'><source file='/a'/><target dev='vda'/><boot order='0'/></disk>"),
          "<boot order>: 0 is out of range; use 1 to 1000" },
        /* interfaces */
        { "nic-type", DEVICES("<interface type='direct'/>"),
          "<interface type='direct'>: unknown interface type" },
        { "nic-bridge-missing", DEVICES("<interface type='bridge'/>"),
          "<source bridge='...'/> is required" },
        { "nic-bridge-long",
          DEVICES("<interface type='bridge'><source bridge='abcdefghijklmnop'/></interface>"),
          "<source bridge='abcdefghijklmnop'>: not a bridge name" },
        { "nic-bridge-slash", DEVICES("<interface type='bridge'><source bridge='a/b'/></interface>"),
          "not a bridge name" },
        { "nic-network-bad", DEVICES("<interface type='network'><source network='a b'/></interface>"),
          "<source network='a b'>: not a network name" },
        { "nic-user-source", DEVICES("<interface type='user'><source bridge='br0'/></interface>"),
          "<interface type='user'> takes no <source>" },
        { "mac-bad", DEVICES("<interface type='user'><mac address='52:54:00:12:34'/></interface>"),
          "<mac address='52:54:00:12:34'>: not a MAC address" },
        { "mac-junk", DEVICES("<interface type='user'><mac address='52:54:00:12:34:zz'/></interface>"),
          "not a MAC address" },
        { "mac-multicast", DEVICES("<interface type='user'><mac address='01:00:5e:00:00:01'/></interface>"),
          "<mac address='01:00:5e:00:00:01'>: a multicast address" },
        { "mac-zero", DEVICES("<interface type='user'><mac address='00:00:00:00:00:00'/></interface>"),
          "the all-zero address" },
        { "mac-dup",
          DEVICES("<interface type='user'><mac address='52:54:00:00:00:01'/></interface>"
                  "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>"),
          "two interfaces have the same MAC address" },
        { "nic-model", DEVICES("<interface type='user'><model type='ne2k_isa'/></interface>"),
          "<model type='ne2k_isa'>: unknown NIC model" },
        { "nic-bandwidth", DEVICES("<interface type='user'><bandwidth/></interface>"),
          "<bandwidth> in <interface> is not supported by vmigrate; remove it" },
        /* serials */
        { "serial-type", DEVICES("<serial type='tcp'/>"), "<serial type='tcp'>: unknown serial type" },
        { "serial-file-nosource", DEVICES("<serial type='file'/>"),
          "<serial type='file'>: <source path='...'/> is required" },
        { "serial-file-relative", DEVICES("<serial type='file'><source path='log'/></serial>"),
          "<serial><source path>: 'log' is not an absolute path" },
        { "serial-port", DEVICES("<serial type='pty'><target port='4'/></serial>"),
          "the port must be 0 to 3" },
        { "serial-port-dup",
          DEVICES("<serial type='pty'><target port='1'/></serial><serial type='null'><target "
                  "port='1'/></serial>"),
          "two serial ports use port 1" },
        { "serial-too-many",
          DEVICES("<serial type='null'/><serial type='null'/><serial type='null'/><serial type='null'/>"
                  "<serial type='null'/>"),
          "more than 4 <serial> elements" },
        { "serial-log", DEVICES("<serial type='pty'><log file='/x'/></serial>"),
          "<log> in <serial> is not supported by vmigrate; remove it" },
};

static void test_refusal(gconstpointer data) {
        const Refusal *refusal = data;

        assert_refused(refusal->xml, refusal->expect);
}

static void test_billion_laughs(void) {
        static const char xml[] =
                "<?xml version=\"1.0\"?>\n"
                "<!DOCTYPE lolz [\n"
                " <!ENTITY lol \"lol\">\n"
                " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
                " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
                " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
                " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
                " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
                " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
                " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
                "]>\n"
                "<domain type=\"test\"><name>&lol9;</name><memory>1024</memory></domain>\n";

        assert_refused(xml, "the document has a <!DOCTYPE>");
        assert_refused(xml, "remove it");
}

static void test_oversize(void) {
        g_autoptr(GString) xml = g_string_new("<domain type='test'><name>d</name><memory>1024</memory><!--");

        while (xml->len <= DOMAIN_XML_MAX_BYTES)
                g_string_append(xml, "padding padding padding padding ");
        g_string_append(xml, "--></domain>");
        assert_refused_len(xml->str, xml->len, "the limit is 1048576 bytes");

        /* Just under the limit is parsed (and fine). */
        g_string_truncate(xml, 0);
        g_string_append(xml, "<domain type='test'><name>d</name><memory>1024</memory><!--");
        while (xml->len < DOMAIN_XML_MAX_BYTES - 64)
                g_string_append_c(xml, 'x');
        g_string_append(xml, "--></domain>");
        g_assert_cmpuint(xml->len, <=, DOMAIN_XML_MAX_BYTES);
        {
                g_autoptr(DomainDef) def = parse_ok(xml->str);
                g_assert_cmpstr(def->name, ==, "d");
        }
}

static void test_nul_byte(void) {
        static const char xml[] = "<domain type='test'><name>d\0evil</name><memory>1024</memory></domain>";

        assert_refused_len(xml, sizeof(xml) - 1, "NUL byte at offset 27");
}

static void test_not_well_formed_line(void) {
        static const char xml[] = "<domain type='test'>\n"
                                  "  <name>d</name>\n"
                                  "  <memory>1024</memory>\n"
                                  "  <vcpu>2</vcpus>\n"
                                  "</domain>\n";

        assert_refused(xml, "not well-formed XML: line 4");
        assert_refused(xml, "vcpu");
}

static void test_invalid_utf8(void) {
        static const char xml[] = "<domain type='test'><name>d\xff\xfe</name><memory>1024</memory></domain>";

        assert_refused(xml, "not well-formed XML: line 1");
}

static void test_declared_encoding_ignored(void) {
        /* D-Bus strings are UTF-8; a declaration claiming otherwise must not
         * make libxml2 reinterpret the bytes. */
        g_autoptr(DomainDef) def =
                parse_ok("<?xml version='1.0' encoding='ISO-8859-1'?>"
                         "<domain type='test'><name>caf\xc3\xa9</name><memory>1024</memory>"
                         "</domain>");
        g_assert_cmpstr(def->name, ==, "caf\xc3\xa9");
}

static void test_silent(void) {
        /* libxml2 must print nothing: catch fd 2 (and 1) in a file while
         * parsing hostile documents, then look at it. */
        const char *bad[] = {
                "<domain type='test'>\n<name>x</nam>\n</domain>",
                "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM 'http://example.com/x'>]><d>&e;</d>",
                "<domain type='test'><name>\xc3\x28</name></domain>",
                "<domain xmlns:a='not a uri' type='test'/>",
                "<domain type='test'>&bogus;</domain>",
                "<?xml version='1.0' encoding='EBCDIC-nonsense'?><domain/>",
        };
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL, *captured = NULL;
        int fd, saved_out, saved_err;

        fd = g_file_open_tmp("test-domain-xml-XXXXXX", &path, &error);
        g_assert_no_error(error);
        if (fd < 0)
                return;
        fflush(stdout);
        fflush(stderr);
        saved_out = dup(STDOUT_FILENO);
        saved_err = dup(STDERR_FILENO);
        g_assert_cmpint(dup2(fd, STDOUT_FILENO), ==, STDOUT_FILENO);
        g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) e = NULL;
                DomainDef *def = NULL;

                if (domain_def_parse(bad[i], strlen(bad[i]), &def, &e) >= 0)
                        domain_def_free(def);
        }

        fflush(stdout);
        fflush(stderr);
        dup2(saved_out, STDOUT_FILENO);
        dup2(saved_err, STDERR_FILENO);
        close(saved_out);
        close(saved_err);
        close(fd);

        g_assert_true(g_file_get_contents(path, &captured, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpstr(captured, ==, "");
        unlink(path);
}

static int handler_calls;

static void count_errors(void *userdata, xmlErrorPtr err) {
        handler_calls++;
}

static void test_error_handler_restored(void) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;
        static const char bad[] = "<domain>";

        xmlSetStructuredErrorFunc(&handler_calls, count_errors);
        handler_calls = 0;
        g_assert_cmpint(domain_def_parse(bad, strlen(bad), &def, &error), <, 0);
        g_assert_cmpint(handler_calls, ==, 0);             /* ours was replaced during the parse ... */
        g_assert_true(xmlStructuredError == count_errors); /* ... and put back afterwards */
        g_assert_true(xmlStructuredErrorContext == &handler_calls);
        xmlSetStructuredErrorFunc(NULL, NULL);
}

static void test_name_rules(void) {
        const char *why = NULL;

        g_assert_true(domain_name_is_valid("demo", NULL));
        g_assert_true(domain_name_is_valid("a b", NULL));
        g_assert_true(domain_name_is_valid("Grüße-über_😀", NULL));
        g_assert_true(domain_name_is_valid("x-", NULL));
        g_assert_false(domain_name_is_valid(NULL, &why));
        g_assert_cmpstr(why, ==, "is empty");
        g_assert_false(domain_name_is_valid("", &why));
        g_assert_cmpstr(why, ==, "is empty");
        g_assert_false(domain_name_is_valid("a/b", &why));
        g_assert_cmpstr(why, ==, "contains '/'");
        g_assert_false(domain_name_is_valid("-a", &why));
        g_assert_cmpstr(why, ==, "starts with '-'");
        g_assert_false(domain_name_is_valid(".a", &why));
        g_assert_cmpstr(why, ==, "starts with '.'");
        g_assert_false(domain_name_is_valid("   ", &why));
        g_assert_cmpstr(why, ==, "is all whitespace");
        g_assert_false(domain_name_is_valid("a\x7f", &why));
        g_assert_cmpstr(why, ==, "contains a control character");
        g_assert_false(domain_name_is_valid("a\xc2\x85", &why)); /* U+0085, a C1 control */
        g_assert_cmpstr(why, ==, "contains a control character");
        g_assert_false(domain_name_is_valid("a\xff", &why));
        g_assert_cmpstr(why, ==, "is not valid UTF-8");
        g_assert_true(domain_name_is_valid(
                "0123456789012345678901234567890123456789012345678901234567890123", NULL));
        g_assert_false(domain_name_is_valid(
                "01234567890123456789012345678901234567890123456789012345678901234", &why));
        g_assert_cmpstr(why, ==, "is longer than 64 bytes");
}

static void test_uuid(void) {
        char u[37], v[37];

        g_assert_true(domain_uuid_parse("6B0D4F7A-3C2E-4D5B-9E8F-0A1B2C3D4E5F", u));
        g_assert_cmpstr(u, ==, "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f");
        g_assert_true(domain_uuid_parse("6b0d4f7a3c2e4d5b9e8f0a1b2c3d4e5f", u));
        g_assert_cmpstr(u, ==, "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f");
        g_assert_false(domain_uuid_parse("6b0d4f7a3c2e4d5b9e8f0a1b2c3d4e5", u));
        g_assert_false(domain_uuid_parse("6b0d4f7a-3c2e-4d5b-9e8f0a1b2c3d4e5f0", u));
        g_assert_false(domain_uuid_parse("6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5g", u));
        g_assert_false(domain_uuid_parse(" 6b0d4f7a3c2e4d5b9e8f0a1b2c3d4e5f", u));
        g_assert_false(domain_uuid_parse("", u));
        g_assert_false(domain_uuid_parse(NULL, u));

        domain_uuid_generate(u);
        domain_uuid_generate(v);
        g_assert_cmpuint(strlen(u), ==, 36);
        g_assert_cmpstr(u, !=, v);
        {
                char again[37];
                g_assert_true(domain_uuid_parse(u, again));
                g_assert_cmpstr(again, ==, u);
        }
}

static void test_messages_sanitised(void) {
        /* User text quoted in an error is cut short and loses control characters. */
        g_autoptr(GError) error = NULL;
        g_autoptr(GString) xml = g_string_new("<domain type='");
        DomainDef *def = NULL;

        for (int i = 0; i < 200; i++)
                g_string_append(xml, "x&#10;");
        g_string_append(xml, "'/>");
        g_assert_cmpint(domain_def_parse(xml->str, xml->len, &def, &error), <, 0);
        g_assert_nonnull(error);
        if (!error)
                return;
        g_assert_null(strchr(error->message, '\n'));
        g_assert_cmpuint(strlen(error->message), <, 200);
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
}

/* <vmigrate:priority>: kept, compared, written back; alone it still
 * makes the <vmigrate:migration> element. */
static void test_metadata_priority(void) {
        g_autoptr(DomainDef) def = parse_ok(
                DOMAIN("<metadata><vm:migration xmlns:vm='https://vmigrate.org/xmlns/migration/1'>"
                       "<vm:priority> 700 </vm:priority></vm:migration></metadata>"));
        g_autoptr(DomainDef) copy = NULL;
        g_autoptr(DomainDef) none = parse_ok(DOMAIN(""));
        g_autofree char *out = NULL;

        g_assert_true(def->has_priority);
        g_assert_cmpuint(def->priority, ==, 700);
        out = domain_def_format(def);
        g_assert_nonnull(strstr(out, "<vmigrate:priority>700</vmigrate:priority>"));
        assert_round_trip(def);
        copy = domain_def_copy(def);
        g_assert_true(domain_def_equal(def, copy));
        copy->priority = 699;
        g_assert_false(domain_def_equal(def, copy));
        g_assert_false(none->has_priority);
        g_assert_false(domain_def_equal(def, none));
}

static void test_metadata_requirements(void) {
        static const char xml[] =
                "<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory>"
                "<metadata><vm:migration xmlns:vm='https://vmigrate.org/xmlns/migration/1'>"
                "<!-- a comment is fine --><vm:require interface='52:54:00:AA:00:01'/>"
                "<vm:require hook='net-setup'/><vm:require hook='10_storage'/></vm:migration></metadata>"
                "<devices><interface type='bridge'><source bridge='br0'/><mac address='52:54:00:aa:00:01'/>"
                "</interface><interface type='bridge'><source bridge='br1'/><mac address='52:54:00:aa:00:02'/>"
                "</interface></devices></domain>";
        g_autoptr(DomainDef) def = parse_ok(xml);
        g_autoptr(DomainDef) copy = NULL;
        g_autoptr(DomainDef) plain = NULL;
        g_autofree char *out = NULL;

        g_assert_nonnull(def->require_interfaces);
        g_assert_cmpuint(g_strv_length(def->require_interfaces), ==, 1);
        g_assert_cmpstr(def->require_interfaces[0], ==, "52:54:00:aa:00:01");
        g_assert_cmpuint(g_strv_length(def->require_hooks), ==, 2);
        g_assert_cmpstr(def->require_hooks[0], ==, "net-setup");
        g_assert_cmpstr(def->require_hooks[1], ==, "10_storage");
        g_assert_true(domain_def_requires_interface(def, def->interfaces->pdata[0]));
        g_assert_false(domain_def_requires_interface(def, def->interfaces->pdata[1]));
        g_assert_true(domain_def_requires_hook(def, "net-setup"));
        g_assert_false(domain_def_requires_hook(def, "net"));

        out = domain_def_format(def);
        g_assert_nonnull(strstr(out, "<vmigrate:migration xmlns:vmigrate=\"https://vmigrate.org/xmlns/migration/1\">"));
        g_assert_nonnull(strstr(out, "<vmigrate:require interface=\"52:54:00:aa:00:01\"/>"));
        assert_round_trip(def);

        copy = domain_def_copy(def);
        g_assert_true(domain_def_equal(def, copy));
        g_clear_pointer(&copy->require_hooks[1], g_free);
        g_assert_false(domain_def_equal(def, copy));

        /* No requirement, no <metadata> written; an empty one is accepted. */
        plain = parse_ok(DOMAIN("<metadata/>"));
        g_assert_null(plain->require_interfaces);
        g_assert_null(plain->require_hooks);
        g_clear_pointer(&out, g_free);
        out = domain_def_format(plain);
        g_assert_null(strstr(out, "metadata"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/domain-xml/minimal", test_minimal);
        g_test_add_func("/domain-xml/uuid/generated-differ", test_generated_uuids_differ);
        g_test_add_func("/domain-xml/type/left-to-backends", test_type_left_to_backends);
        g_test_add_func("/domain-xml/full", test_full);
        g_test_add_func("/domain-xml/format/shape", test_format_shape);
        g_test_add_func("/domain-xml/virsh-dumpxml", test_virsh_dumpxml);
        g_test_add_func("/domain-xml/copy", test_copy);
        g_test_add_func("/domain-xml/format/built-in-code", test_built_in_code);
        g_test_add_func("/domain-xml/memory/units", test_memory_units);
        for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
                g_autofree char *path = g_strdup_printf("/domain-xml/refuse/%s", refusals[i].path);
                g_test_add_data_func(path, &refusals[i], test_refusal);
        }
        g_test_add_func("/domain-xml/hostile/billion-laughs", test_billion_laughs);
        g_test_add_func("/domain-xml/hostile/oversize", test_oversize);
        g_test_add_func("/domain-xml/hostile/nul-byte", test_nul_byte);
        g_test_add_func("/domain-xml/hostile/invalid-utf8", test_invalid_utf8);
        g_test_add_func("/domain-xml/hostile/declared-encoding-ignored", test_declared_encoding_ignored);
        g_test_add_func("/domain-xml/hostile/messages-sanitised", test_messages_sanitised);
        g_test_add_func("/domain-xml/not-well-formed/line-number", test_not_well_formed_line);
        g_test_add_func("/domain-xml/libxml2/silent", test_silent);
        g_test_add_func("/domain-xml/libxml2/error-handler-restored", test_error_handler_restored);
        g_test_add_func("/domain-xml/name-rules", test_name_rules);
        g_test_add_func("/domain-xml/uuid/parse", test_uuid);
        g_test_add_func("/domain-xml/metadata/requirements", test_metadata_requirements);
        g_test_add_func("/domain-xml/metadata/priority", test_metadata_priority);

        return g_test_run();
}
