/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The domain XML's UEFI firmware, network disks and network interfaces
 * (domain-xml-firmware.c, domain-xml-netdisk.c): what libvirt and
 * virt-manager write is accepted and given back, what vmigrate cannot
 * honour is refused with a reason and a fix. */
#include <string.h>

#include "domain-xml.h"
#include "errors.h"

#define DOMAIN(body)                                                                                        \
        "<domain type='kvm'><name>d</name><uuid>0b5c6a3e-7d1f-4e2a-9c8b-1a2b3c4d5e6f</uuid>"                \
        "<memory unit='MiB'>64</memory>" body "</domain>"
#define OS(attrs, body) DOMAIN("<os" attrs "><type arch='x86_64' machine='q35'>hvm</type>" body "</os>")
#define DEVICES(body) DOMAIN("<devices>" body "</devices>")

static DomainDef *parse_ok(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

/* format(parse(xml)) parses back to an equal definition, and that format is stable. */
static DomainDef *round_trip(const char *xml) {
        g_autoptr(DomainDef) def = parse_ok(xml);
        g_autofree char *out = NULL, *again = NULL;
        g_autoptr(DomainDef) back = NULL;

        if (!def)
                return NULL;
        out = domain_def_format(def);
        g_test_message("%s", out);
        back = parse_ok(out);
        g_assert_true(back && domain_def_equal(def, back));
        again = back ? domain_def_format(back) : NULL;
        g_assert_cmpstr(out, ==, again);
        return g_steal_pointer(&def);
}

static void assert_refused(const char *xml, const char *expect) {
        g_autoptr(GError) error = NULL;
        g_autoptr(DomainDef) def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), <, 0);
        g_assert_null(def);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_XML);
        if (error && !strstr(error->message, expect))
                g_test_message("message: %s\nexpected: %s", error->message, expect);
        g_assert_true(error && strstr(error->message, expect));
}

/* ---- firmware ---- */

static void test_efi_auto(void) {
        g_autoptr(DomainDef) def = round_trip(OS(" firmware='efi'", ""));

        g_assert_cmpstr(def->os_firmware, ==, "efi");
        g_assert_null(def->os_loader);
        g_assert_false(def->os_loader_pflash);
        g_assert_true(domain_def_has_nvram(def));
}

static void test_efi_features(void) {
        g_autoptr(DomainDef) def = round_trip(OS(" firmware='efi'",
                                                 "<firmware><feature enabled='yes' name='secure-boot'/>"
                                                 "<feature enabled='no' name='enrolled-keys'/></firmware>"));
        g_autofree char *xml = domain_def_format(def);

        g_assert_cmpint(def->os_fw_secure_boot, ==, DOMAIN_FW_FEATURE_ON);
        g_assert_cmpint(def->os_fw_enrolled_keys, ==, DOMAIN_FW_FEATURE_OFF);
        g_assert_nonnull(strstr(xml, "<feature enabled=\"yes\" name=\"secure-boot\"/>"));
}

/* What virsh dumpxml writes for a running UEFI guest. */
static void test_dumpxml_pflash(void) {
        g_autoptr(DomainDef) def = round_trip(
                OS(" firmware='efi'",
                   "<loader readonly='yes' secure='yes' "
                   "type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>"
                   "<nvram "
                   "template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/d_VARS.fd</nvram>"
                   "<boot dev='hd'/>"));

        g_assert_cmpstr(def->os_loader, ==, "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd");
        g_assert_true(def->os_loader_pflash);
        g_assert_true(def->os_loader_secure);
        g_assert_cmpstr(def->os_nvram, ==, "/var/lib/libvirt/qemu/nvram/d_VARS.fd");
        g_assert_cmpstr(def->os_nvram_template, ==, "/usr/share/OVMF/OVMF_VARS_4M.fd");
}

/* libvirt 9's format='raw' attributes, and <nvram/> with a template only
 * (the path is then vmigrate's own). */
static void test_formats_and_empty_nvram(void) {
        g_autoptr(DomainDef) def = round_trip(OS(
                "",
                "<loader readonly='yes' type='pflash' format='raw'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
                "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd' templateFormat='raw' format='raw'/>"));

        g_assert_true(def->os_loader_pflash);
        g_assert_false(def->os_loader_secure);
        g_assert_null(def->os_nvram);
        g_assert_cmpstr(def->os_nvram_template, ==, "/usr/share/OVMF/OVMF_VARS_4M.fd");
}

/* A readonly loader without a type is flash (libvirt's rule); a plain
 * loader stays a ROM given to -bios. */
/* A running guest's definition: the features and the loader they chose. */
static void test_features_and_loader(void) {
        g_autoptr(DomainDef) def =
                round_trip(OS(" firmware='efi'",
                              "<firmware><feature enabled='yes' name='secure-boot'/></firmware>"
                              "<loader readonly='yes' secure='yes' type='pflash'>/c.fd</loader>"));

        g_assert_cmpint(def->os_fw_secure_boot, ==, DOMAIN_FW_FEATURE_ON);
        g_assert_true(def->os_loader_secure);
}

static void test_loader_types(void) {
        g_autoptr(DomainDef) flash = parse_ok(OS("", "<loader readonly='yes'>/ovmf/CODE.fd</loader>"));
        g_autoptr(DomainDef) rom = round_trip(OS("", "<loader>/usr/share/qemu/qboot.rom</loader>"));
        g_autoptr(DomainDef) rom2 =
                parse_ok(OS(" firmware='bios'", "<loader type='rom'>/bios.bin</loader>"));

        g_assert_true(flash->os_loader_pflash);
        g_assert_false(rom->os_loader_pflash);
        g_assert_false(rom2->os_loader_pflash);
}

static void test_smm(void) {
        g_autoptr(DomainDef) def = parse_ok(DOMAIN("<features><acpi/><apic/><smm state='on'/></features>"));
        g_assert_nonnull(def);
        assert_refused(
                DOMAIN("<features><smm state='off'/></features>"),
                "<smm state='off'> in <features> is not supported by vmigrate: it leaves SMM as QEMU's "
                "machine has it");
        assert_refused(DOMAIN("<features><smm state='on'><tseg unit='MiB'>48</tseg></smm></features>"),
                       "<tseg> in <smm> (SMRAM size) is not supported");
}

static void test_firmware_refused(void) {
        assert_refused(OS(" firmware='uefi'", ""),
                       "<os firmware='uefi'>: unknown firmware; 'efi' boots UEFI");
        assert_refused(
                OS("", "<loader readonly='no' type='pflash'>/c.fd</loader>"),
                "<loader type='pflash' readonly='no'>: a writable flash loader keeps the UEFI variables "
                "inside the code image");
        assert_refused(OS("", "<loader readonly='yes' type='pflash' stateless='yes'>/c.fd</loader>"),
                       "<loader stateless='yes'>: stateless firmware (no NVRAM) is not supported");
        assert_refused(OS("", "<loader readonly='yes' type='pflash' format='qcow2'>/c.fd</loader>"),
                       "unknown flash format; vmigrate supports raw images");
        assert_refused(OS("", "<loader readonly='yes' type='rom'>/bios.bin</loader>"),
                       "<loader readonly='yes'>: 'readonly' applies to type='pflash'");
        assert_refused(OS("", "<loader secure='yes'>/bios.bin</loader>"), "secure boot needs type='pflash'");
        assert_refused(OS(" firmware='bios'", "<loader readonly='yes' type='pflash'>/c.fd</loader>"),
                       "<os firmware='bios'> with <loader type='pflash'>: flash code is UEFI");
        assert_refused(
                OS("", "<firmware><feature enabled='yes' name='secure-boot'/></firmware>"),
                "<os><firmware> asks features of an automatically chosen firmware: add <os firmware='efi'>");
        assert_refused(OS(" firmware='efi'",
                          "<firmware><feature enabled='yes' name='enrolled-keys'/>"
                          "<feature enabled='no' name='secure-boot'/></firmware>"),
                       "'enrolled-keys' needs 'secure-boot'");
        assert_refused(OS(" firmware='efi'",
                          "<firmware><feature enabled='yes' name='secure-boot'/>"
                          "<feature enabled='no' name='secure-boot'/></firmware>"),
                       "feature 'secure-boot' is given twice");
        assert_refused(
                OS(" firmware='efi'", "<firmware><feature enabled='maybe' name='secure-boot'/></firmware>"),
                "<feature enabled='maybe'>: unknown value; use 'yes' or 'no'");
        assert_refused(OS("", "<nvram>/x_VARS.fd</nvram>"),
                       "<os><nvram>: only UEFI guests have an NVRAM; add <os firmware='efi'>");
        assert_refused(
                OS(" firmware='efi'", "<nvram type='network'><source protocol='iscsi'/></nvram>"),
                "<nvram type='network'>: an NVRAM given as a <source> (network or block storage) is not "
                "supported");
        assert_refused(OS(" firmware='efi'", "<nvram>relative.fd</nvram>"), "<os><nvram>");
        assert_refused(OS(" firmware='efi'", "<loader type='rom'>/bios.bin</loader>"),
                       "<os firmware='efi'> with <loader type='rom'>: OVMF runs from flash");
}

/* destination-xml may move the NVRAM, not change the firmware. */
static void test_abi(void) {
        g_autoptr(DomainDef) src =
                parse_ok(OS(" firmware='efi'", "<loader readonly='yes' type='pflash'>/c.fd</loader>"));
        g_autoptr(DomainDef) moved = parse_ok(OS(" firmware='efi'",
                                                 "<loader readonly='yes' type='pflash'>/c.fd</loader>"
                                                 "<nvram>/srv/nvram/d.fd</nvram>"));
        g_autoptr(DomainDef) secure = parse_ok(OS(" firmware='efi'",
                                                  "<loader readonly='yes' secure='yes' "
                                                  "type='pflash'>/c.fd</loader>"));
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_def_check_abi_stable(src, moved, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(domain_def_check_abi_stable(src, secure, &error), <, 0);
        g_assert_true(error && strstr(error->message, "firmware type, flash or secure boot"));
}

/* ---- network disks ---- */

static void test_netdisk_nbd(void) {
        g_autoptr(DomainDef) def = round_trip(DEVICES(
                "<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
                "<source protocol='nbd' name='vm1' tls='no'><host name='nas.lan' port='10810'/></source>"
                "<target dev='vdb' bus='virtio'/></disk>"
                "<disk type='network' device='disk'><source protocol='nbd'><host transport='unix' "
                "socket='/run/nbd.sock'/></source><target dev='vdc'/></disk>"));
        const DomainDiskDef *d = def->disks->pdata[0], *u = def->disks->pdata[1];
        const DomainDiskHost *h = d->source_hosts->pdata[0], *s = u->source_hosts->pdata[0];

        g_assert_cmpstr(d->protocol, ==, "nbd");
        g_assert_cmpstr(d->source_name, ==, "vm1");
        g_assert_cmpstr(h->name, ==, "nas.lan");
        g_assert_cmpuint(h->port, ==, 10810);
        g_assert_null(d->source_file);
        g_assert_true(domain_disk_is_network(d));
        g_assert_false(domain_disk_is_copyable(d));
        g_assert_cmpstr(s->socket, ==, "/run/nbd.sock");
        g_assert_null(s->name);
        g_assert_null(u->source_name);
}

static void test_netdisk_iscsi_rbd(void) {
        g_autoptr(DomainDef) def = round_trip(DEVICES(
                "<disk type='network' device='disk'><source protocol='iscsi' "
                "name='iqn.2013-07.com.example:store/2'><host name='192.0.2.7' port='3260'/></source>"
                "<target dev='sda' bus='scsi'/></disk>"
                "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>"
                "<source protocol='rbd' name='vms/vm1-root'><host name='mon1' port='6789'/>"
                "<host name='mon2'/></source><target dev='vda'/></disk>"
                "<disk type='network' device='cdrom'><source protocol='rbd' name='isos/debian'/>"
                "<target dev='hdc' bus='ide'/><readonly/></disk>"));
        const DomainDiskDef *rbd = def->disks->pdata[1];

        g_assert_cmpstr(((DomainDiskDef *) def->disks->pdata[0])->source_name, ==,
                        "iqn.2013-07.com.example:store/2");
        g_assert_cmpuint(rbd->source_hosts->len, ==, 2);
        g_assert_cmpuint(((DomainDiskHost *) rbd->source_hosts->pdata[1])->port, ==, 0);
        g_assert_null(((DomainDiskDef *) def->disks->pdata[2])->source_hosts);
}

static void test_netdisk_refused(void) {
        assert_refused(
                DEVICES("<disk type='network'><source protocol='http' name='/x.iso'><host "
                        "name='h'/></source>"
                        "<target dev='vda'/></disk>"),
                "<source protocol='http'>: vmigrate supports network disks over 'nbd', 'iscsi' and 'rbd'");
        assert_refused(
                DEVICES("<disk type='network'><source protocol='rbd' name='p/i'><host name='m'/>"
                        "<auth username='admin'><secret type='ceph' usage='x'/></auth></source>"
                        "<target dev='vda'/></disk>"),
                "<auth> in <source> is not supported by vmigrate: the secret it names lives in libvirt's "
                "secret store");
        assert_refused(
                DEVICES("<disk type='network'><auth username='u'><secret type='iscsi' usage='x'/></auth>"
                        "<source protocol='iscsi' name='iqn.x:y/1'><host name='s'/></source>"
                        "<target dev='vda'/></disk>"),
                "<auth> in <disk> is not supported by vmigrate");
        assert_refused(
                DEVICES("<disk type='network'><source protocol='nbd' tls='yes'><host name='s'/></source>"
                        "<target dev='vda'/></disk>"),
                "TLS to the disk's server is not supported by vmigrate, so only tls='no' is");
        assert_refused(DEVICES("<disk type='network'><source protocol='nbd'><host name='a'/><host name='b'/>"
                               "</source><target dev='vda'/></disk>"),
                       "<source protocol='nbd'>: give exactly one <host> (2 given)");
        assert_refused(DEVICES("<disk type='network'><source protocol='iscsi'><host name='a'/></source>"
                               "<target dev='vda'/></disk>"),
                       "attribute 'name' is required (the target's IQN and LUN");
        assert_refused(
                DEVICES("<disk type='network'><source protocol='iscsi' name='iqn x/1'><host name='a'/>"
                        "</source><target dev='vda'/></disk>"),
                "not a target and LUN");
        assert_refused(DEVICES("<disk type='network'><source protocol='rbd' name='pool/img@snap'/>"
                               "<target dev='vda'/></disk>"),
                       "not 'pool/image'");
        assert_refused(DEVICES("<disk type='network'><source protocol='rbd' name='p/i'><snapshot name='s'/>"
                               "</source><target dev='vda'/></disk>"),
                       "<snapshot> in <source> is not supported by vmigrate");
        assert_refused(DEVICES("<disk type='network'><source protocol='nbd'><host name='a' port='70000'/>"
                               "</source><target dev='vda'/></disk>"),
                       "a port is 1 to 65535");
        assert_refused(DEVICES("<disk type='network'><source protocol='nbd'><host transport='unix' name='a' "
                               "socket='/s'/></source><target dev='vda'/></disk>"),
                       "a unix socket has no 'name' or 'port'");
        assert_refused(DEVICES("<disk type='network'><source protocol='iscsi' name='iqn.x:y'>"
                               "<host transport='unix' socket='/s'/></source><target dev='vda'/></disk>"),
                       "unknown transport; use 'tcp'");
        assert_refused(DEVICES("<disk type='network'><source protocol='nbd'><host name='-oProxyCommand'/>"
                               "</source><target dev='vda'/></disk>"),
                       "not a host name or address");
        assert_refused(
                DEVICES("<disk type='network'><target dev='vda'/></disk>"),
                "<disk type='network'> (target vda): <source protocol='nbd|iscsi|rbd' …> with its <host> "
                "is required");
}

/* ---- interfaces ---- */

static void test_interface_network(void) {
        g_autoptr(DomainDef) def =
                round_trip(DEVICES("<interface type='network'><mac address='52:54:00:aa:bb:cc'/>"
                                   "<source network='default' portid='1b2c' bridge='virbr0'/><model "
                                   "type='virtio'/></interface>"));
        const DomainInterfaceDef *i = def->interfaces->pdata[0];

        g_assert_cmpstr(i->type, ==, "network");
        g_assert_cmpstr(i->source, ==, "default");
}

/* What virt-install 4.1 prints for a UEFI guest on libvirt's default
 * network (--boot loader=…,loader.readonly=yes,loader.type=pflash,
 * nvram.template=…; tests/unit/data/virt-install-uefi.xml). */
static void test_virt_install_uefi(void) {
        g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "virt-install-uefi.xml", NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(DomainDef) def = NULL;
        gsize len = 0;

        g_assert_true(g_file_get_contents(path, &xml, &len, &error));
        g_assert_no_error(error);
        g_assert_cmpint(domain_def_parse(xml, len, &def, &error), ==, 0);
        g_assert_no_error(error);
        if (!def)
                return;
        g_assert_true(def->os_loader_pflash);
        g_assert_cmpstr(def->os_loader, ==, "/usr/share/OVMF/OVMF_CODE_4M.fd");
        g_assert_cmpstr(def->os_nvram_template, ==, "/usr/share/OVMF/OVMF_VARS_4M.fd");
        g_assert_null(def->os_nvram);
        g_assert_cmpstr(((DomainInterfaceDef *) def->interfaces->pdata[0])->type, ==, "network");
        g_assert_cmpstr(((DomainInterfaceDef *) def->interfaces->pdata[0])->source, ==, "default");
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/domain-xml-firmware/efi/auto", test_efi_auto);
        g_test_add_func("/domain-xml-firmware/efi/features", test_efi_features);
        g_test_add_func("/domain-xml-firmware/pflash/dumpxml", test_dumpxml_pflash);
        g_test_add_func("/domain-xml-firmware/pflash/formats-and-empty-nvram", test_formats_and_empty_nvram);
        g_test_add_func("/domain-xml-firmware/loader/types", test_loader_types);
        g_test_add_func("/domain-xml-firmware/efi/features-and-loader", test_features_and_loader);
        g_test_add_func("/domain-xml-firmware/features/smm", test_smm);
        g_test_add_func("/domain-xml-firmware/refused", test_firmware_refused);
        g_test_add_func("/domain-xml-firmware/abi/nvram-moves-firmware-stays", test_abi);
        g_test_add_func("/domain-xml-netdisk/nbd", test_netdisk_nbd);
        g_test_add_func("/domain-xml-netdisk/iscsi-rbd", test_netdisk_iscsi_rbd);
        g_test_add_func("/domain-xml-netdisk/refused", test_netdisk_refused);
        g_test_add_func("/domain-xml-network/interface", test_interface_network);
        g_test_add_func("/domain-xml-firmware/virt-install-uefi", test_virt_install_uefi);
        return g_test_run();
}
