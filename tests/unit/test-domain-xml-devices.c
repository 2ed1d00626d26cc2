/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The devices and settings of a desktop guest in the domain XML
 * (domain-xml-devices.c): what virt-install writes, each element kept or
 * refused with its reason, GetXML giving back what was kept, and one
 * answer for all the problems of a document. */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cpuset.h"
#include "domain-xml.h"
#include "errors.h"

#define DOMAIN(body) "<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory>" body "</domain>"
#define DEVICES(body) DOMAIN("<devices>" body "</devices>")
#define Q35(body) DOMAIN("<os><type machine='q35'>hvm</type></os>" body)

static DomainDef *parse_ok(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(def);
        return def;
}

static char *refusal_of(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;
        int r = domain_def_parse(xml, strlen(xml), &def, &error);

        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(def);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_XML);
        return error ? g_strdup(error->message) : g_strdup("");
}

static void assert_refused(const char *xml, const char *expect) {
        g_autofree char *message = refusal_of(xml);

        if (!strstr(message, expect))
                g_test_message("message '%s' does not contain '%s'", message, expect);
        g_assert_nonnull(strstr(message, expect));
}

static void assert_round_trip(const DomainDef *def) {
        g_autofree char *xml = domain_def_format(def);
        g_autoptr(DomainDef) again = parse_ok(xml);
        g_autofree char *xml2 = domain_def_format(again);

        if (!domain_def_equal(def, again))
                g_test_message("round trip changed the definition:\n%s", xml);
        g_assert_true(domain_def_equal(def, again));
        g_assert_cmpstr(xml, ==, xml2);
        {
                g_autoptr(DomainDef) copy = domain_def_copy(def);
                g_assert_true(domain_def_equal(def, copy));
        }
}

/* ---- what virt-install writes ---- */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

static char *read_data(const char *name) {
        g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "virt-install", name, NULL);
        g_autoptr(GError) error = NULL;
        char *xml = NULL;

        g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
        g_assert_no_error(error);
        return xml;
}

/* Takes out what other parts of issue 12 bring (displays) and
 * makes the domain type one vmigrate runs. */
static char *without_other_parts(const char *xml) {
        static const char *const removed[] = { "graphics", "video", NULL };
        g_autoptr(xmlDoc) doc = xmlReadMemory(xml, (int) strlen(xml), NULL, "UTF-8", XML_PARSE_NONET);
        xmlNode *root;
        xmlChar *out = NULL;
        int len = 0;
        char *result;

        g_assert_nonnull(doc);
        root = xmlDocGetRootElement(doc);
        xmlSetProp(root, (const xmlChar *) "type", (const xmlChar *) "kvm");
        for (xmlNode *section = root->children; section; section = section->next) {
                xmlNode *next;

                if (section->type != XML_ELEMENT_NODE)
                        continue;
                if (xmlStrEqual(section->name, (const xmlChar *) "os"))
                        xmlUnsetProp(section, (const xmlChar *) "firmware");
                for (xmlNode *c = section->children; c; c = next) {
                        next = c->next;
                        if (c->type != XML_ELEMENT_NODE)
                                continue;
                        if (g_strv_contains(removed, (const char *) c->name)) {
                                xmlUnlinkNode(c);
                                xmlFreeNode(c);
                        }
                }
        }
        xmlDocDumpMemory(doc, &out, &len);
        result = g_strndup((const char *) out, (gsize) len);
        xmlFree(out);
        return result;
}
static void test_virt_install(gconstpointer data) {
        const char *name = data;
        g_autofree char *original = read_data(name);
        g_autofree char *xml = without_other_parts(original);
        g_autoptr(DomainDef) def = parse_ok(xml);
        g_autofree char *out = NULL;

        if (!def)
                return;
        out = domain_def_format(def);
        /* libosinfo's metadata comes back as it was written. */
        g_assert_nonnull(strstr(
                out,
                "<libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo.org/xmlns/libvirt/domain/1.0\">"));
        g_assert_nonnull(strstr(out, "<libosinfo:os id=\"http://"));
        g_assert_cmpuint(def->memory_bytes, ==, 2ULL << 30);
        g_assert_cmpstr(def->usb_model, ==, "qemu-xhci");
        g_assert_cmpuint(def->usb_ports, ==, 15);
        g_assert_cmpuint(def->disks->len, ==, 2);
        g_assert_cmpstr(((DomainDiskDef *) def->disks->pdata[0])->discard, ==, "unmap");
        g_assert_cmpstr(((DomainDiskDef *) def->disks->pdata[1])->device, ==, "cdrom");
        g_assert_cmpstr(def->timer_hpet_present, ==, "no");
        g_assert_cmpstr(def->timer_rtc_tickpolicy, ==, "catchup");
        g_assert_cmpstr(def->pm_suspend_to_mem, ==, "no");
        g_assert_cmpstr(def->pm_suspend_to_disk, ==, "no");
        g_assert_true(
                g_strv_equal((const char *const *) def->os_boot_devs, (const char *const[]){ "hd", NULL }));
        /* <console type='pty'> with no <serial>: a serial port, as libvirt. */
        g_assert_cmpuint(def->serials->len, ==, 1);
        g_assert_cmpstr(((DomainSerialDef *) def->serials->pdata[0])->type, ==, "pty");
        /* virt-install gives sound and USB redirection to SPICE guests
         * only, and a tablet to guests with any display. */
        g_assert_cmpuint(def->inputs->len, ==, strstr(name, "headless") ? 0 : 1);
        if (strstr(name, "spice")) {
                g_assert_cmpuint(def->sounds->len, ==, 1);
                /* Without the <graphics type='spice'> (displays are another
                 * part's), the implicit audio is libvirt's 'none'. */
                g_assert_cmpuint(def->audios->len, ==, 1);
                if (def->audios->len == 1)
                        g_assert_cmpstr(((DomainAudioDef *) def->audios->pdata[0])->type, ==, "none");
        } else
                g_assert_cmpuint(def->sounds->len + def->audios->len + def->redirdevs, ==, 0);
        if (strstr(name, "spice"))
                g_assert_cmpuint(def->redirdevs, ==, 2);
        /* virt-install gives UEFI guests a TPM 2.0 (domain-xml-tpm.c). */
        g_assert_cmpstr(def->tpm_model, ==, strstr(name, "uefi") ? "tpm-crb" : NULL);
        g_assert_cmpstr(def->tpm_version, ==, strstr(name, "uefi") ? "2.0" : NULL);
        if (strstr(name, "win11")) {
                g_assert_cmpstr(def->clock_offset, ==, "localtime");
                /* virt-install's Hyper-V set for Windows */
                g_assert_true(def->hyperv);
                g_assert_cmpint(def->hyperv_state[DOMAIN_HYPERV_RELAXED], ==, DOMAIN_FW_FEATURE_ON);
                g_assert_cmpint(def->hyperv_state[DOMAIN_HYPERV_VAPIC], ==, DOMAIN_FW_FEATURE_ON);
                g_assert_cmpint(def->hyperv_state[DOMAIN_HYPERV_SPINLOCKS], ==, DOMAIN_FW_FEATURE_ON);
                g_assert_cmpuint(def->hyperv_spinlocks_retries, ==, 8191);
                g_assert_cmpstr(def->timer_hypervclock_present, ==, "yes");
                g_assert_null(def->memballoon);
                g_assert_null(def->rng_backend);
        } else {
                g_assert_cmpstr(def->memballoon, ==, "virtio");
                g_assert_cmpstr(def->rng_device, ==, "/dev/urandom");
                g_assert_cmpuint(def->channels->len, ==, strstr(name, "spice") ? 2 : 1);
                if (def->channels->len > 0) {
                        g_assert_cmpstr(((DomainChannelDef *) def->channels->pdata[0])->name, ==,
                                        "org.qemu.guest_agent.0");
                        g_assert_null(((DomainChannelDef *) def->channels->pdata[0])->source_path);
                }
        }
        assert_round_trip(def);
}

/* As written, Windows 11's sample defines: its TPM, its Hyper-V set, its
 * UEFI firmware and everything else. */
static void test_virt_install_unchanged(void) {
        g_autofree char *original = read_data("win11-spice-uefi.xml");
        g_auto(GStrv) parts = g_strsplit(original, "<domain type=\"qemu\">", 2);
        g_autofree char *xml = g_strjoinv("<domain type=\"kvm\">", parts);
        g_autoptr(DomainDef) def = parse_ok(xml);

        g_assert_cmpstr(def->tpm_model, ==, "tpm-crb");
        g_assert_true(def->hyperv);
        assert_round_trip(def);
}

/* ---- each element ---- */

static void test_controllers(void) {
        g_autoptr(DomainDef) def =
                parse_ok(DEVICES("<controller type='usb' index='0' model='nec-xhci' ports='4'>"
                                 "<alias name='usb'/><address type='pci'/></controller>"
                                 "<controller type='scsi' model='lsilogic'/>"
                                 "<controller type='pci' index='1' model='pcie-root-port'>"
                                 "<model name='pcie-root-port'/><target chassis='1' port='0x10'/>"
                                 "</controller>"
                                 "<controller type='virtio-serial' index='0'/>"
                                 "<controller type='sata' index='0'/>"));

        {
                /* libvirt's EHCI with UHCI companions, written back whole. */
                g_autoptr(DomainDef) d = parse_ok(DEVICES(
                        "<controller type='usb' index='0' model='ich9-ehci1'/>"
                        "<controller type='usb' index='0' model='ich9-uhci1'><master startport='0'/></controller>"
                        "<controller type='usb' index='0' model='ich9-uhci3'><master startport='4'/></controller>"));
                g_assert_cmpstr(d->usb_model, ==, "ich9-ehci1");
                g_assert_cmpuint(d->usb_companions, ==, (1u << 1) | (1u << 3));
                assert_round_trip(d);
        }
        g_assert_cmpstr(def->usb_model, ==, "nec-xhci");
        g_assert_cmpuint(def->usb_ports, ==, 4);
        g_assert_cmpstr(def->scsi_model, ==, "lsilogic");
        assert_round_trip(def);
        {
                /* Defaults are written back, so both hosts use the same. */
                g_autoptr(DomainDef) d =
                        parse_ok(DEVICES("<controller type='usb'/><controller type='scsi'/>"));
                g_autofree char *out = domain_def_format(d);
                g_assert_nonnull(strstr(out, "<controller type=\"usb\" index=\"0\" model=\"qemu-xhci\"/>"));
                g_assert_nonnull(
                        strstr(out, "<controller type=\"scsi\" index=\"0\" model=\"virtio-scsi\"/>"));
        }
}

static void test_inputs(void) {
        g_autoptr(DomainDef) def =
                parse_ok(DEVICES("<input type='tablet' bus='usb'/><input type='mouse' bus='ps2'/>"
                                 "<input type='keyboard' bus='ps2'/>"
                                 "<input type='keyboard' bus='virtio'/><input type='mouse' bus='usb'/>"));

        /* The PS/2 pair every PC has is not kept. */
        g_assert_cmpuint(def->inputs->len, ==, 3);
        /* A USB device brings the controller libvirt would add. */
        g_assert_cmpstr(def->usb_model, ==, "qemu-xhci");
        assert_round_trip(def);
}

static void test_sound_audio(void) {
        g_autoptr(DomainDef) def =
                parse_ok(DEVICES("<sound model='ich9'><codec type='micro'/><audio id='2'/></sound>"
                                 "<sound model='ac97'/><audio id='2' type='none'/>"
                                 "<audio id='3' type='none'/>"));
        DomainSoundDef *s0 = def->sounds->pdata[0], *s1 = def->sounds->pdata[1];

        g_assert_cmpstr(s0->codec, ==, "micro");
        g_assert_cmpuint(s0->audio, ==, 2);
        g_assert_null(s1->codec);
        g_assert_cmpuint(s1->audio, ==, 2); /* the first <audio> */
        assert_round_trip(def);
        {
                /* libvirt's implicit backend with a SPICE display is SPICE's;
                 * with none it is 'none' (a <graphics> is another part's). */
                g_autoptr(DomainDef) d = parse_ok(DEVICES("<sound model='ich6'/>"));
                g_assert_cmpuint(d->audios->len, ==, 1);
                g_assert_cmpstr(((DomainAudioDef *) d->audios->pdata[0])->type, ==, "none");
                g_assert_cmpstr(((DomainSoundDef *) d->sounds->pdata[0])->codec, ==, "duplex");
                assert_round_trip(d);
        }
        /* <audio type='none'> alone is what virsh dumpxml writes. */
        {
                g_autoptr(DomainDef) d = parse_ok(DEVICES("<audio id='1' type='none'/>"));
                assert_round_trip(d);
        }
}

static void test_channels(void) {
        g_autoptr(DomainDef) def = parse_ok(DEVICES(
                "<channel type='unix'><source mode='bind' "
                "path='/var/lib/libvirt/qemu/channel/target/domain-1-d/org.qemu.guest_agent.0'/>"
                "<target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>"
                "<alias name='channel0'/><address type='virtio-serial' controller='0' bus='0' port='1'/>"
                "</channel>"
                "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>"
                "<channel type='unix'><source mode='bind' path='/run/app/x.sock'/>"
                "<target type='virtio' name='org.example.x'/></channel>"));
        DomainChannelDef *ga = def->channels->pdata[0], *app = def->channels->pdata[2];

        /* libvirt's own socket path is its bookkeeping; a user's is kept. */
        g_assert_null(ga->source_path);
        g_assert_cmpstr(app->source_path, ==, "/run/app/x.sock");
        assert_round_trip(def);
}

static void test_misc_devices(void) {
        g_autoptr(DomainDef) def = parse_ok(Q35(
                "<devices><redirdev bus='usb' type='spicevmc'/><redirdev type='spicevmc'/>"
                "<rng model='virtio'><rate bytes='1024' period='2000'/><backend "
                "model='random'>/dev/random</backend>"
                "</rng><watchdog model='itco' action='poweroff'/>"
                "<memballoon model='virtio' autodeflate='on' freePageReporting='on'><alias name='balloon0'/>"
                "</memballoon></devices>"));

        g_assert_cmpuint(def->redirdevs, ==, 2);
        g_assert_cmpstr(def->usb_model, ==, "qemu-xhci");
        g_assert_cmpstr(def->rng_device, ==, "/dev/random");
        g_assert_cmpuint(def->rng_rate_bytes, ==, 1024);
        g_assert_cmpstr(def->watchdog_action, ==, "poweroff");
        g_assert_cmpstr(def->memballoon_free_page_reporting, ==, "on");
        assert_round_trip(def);
        {
                g_autoptr(DomainDef) d =
                        parse_ok(DEVICES("<rng model='virtio'><backend model='builtin'/></rng>"
                                         "<watchdog model='i6300esb'/><memballoon model='none'/>"));
                g_assert_cmpstr(d->watchdog_action, ==, "reset");
                assert_round_trip(d);
        }
}

static void test_settings(void) {
        g_autoptr(DomainDef) def = parse_ok(
                DOMAIN("<vcpu>8</vcpu><os><type machine='q35'>hvm</type><boot dev='cdrom'/><boot dev='hd'/>"
                       "<bootmenu enable='yes' timeout='3000'/></os>"
                       "<cpu><topology sockets='2' dies='1' cores='2' threads='2'/></cpu>"
                       "<features><acpi/><apic/><vmport state='off'/></features>"
                       "<clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/>"
                       "<timer name='pit' tickpolicy='delay'/><timer name='hpet' present='no'/></clock>"
                       "<pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>"));

        g_assert_cmpuint(def->cpu_sockets * def->cpu_cores * def->cpu_threads, ==, 8);
        g_assert_null(def->cpu_mode); /* a topology alone keeps the default CPU */
        g_assert_cmpstr(def->os_boot_devs[0], ==, "cdrom");
        g_assert_cmpuint(def->os_bootmenu_timeout, ==, 3000);
        g_assert_cmpstr(def->vmport, ==, "off");
        g_assert_cmpstr(def->clock_offset, ==, "localtime");
        assert_round_trip(def);
}

static void test_disks(void) {
        g_autoptr(DomainDef) def = parse_ok(DEVICES(
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' io='native' "
                "discard='unmap' detect_zeroes='unmap'/><source file='/i/a.qcow2'/><target dev='vda' "
                "bus='virtio'/><boot order='2'/></disk>"
                "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' "
                "bus='sata'/><readonly/><boot order='1'/></disk>"
                "<interface type='user'><boot order='3'/></interface>"));
        DomainDiskDef *d = def->disks->pdata[0];

        g_assert_cmpstr(d->io, ==, "native");
        g_assert_cmpstr(d->detect_zeroes, ==, "unmap");
        g_assert_cmpuint(d->boot_order, ==, 2);
        g_assert_cmpuint(((DomainInterfaceDef *) def->interfaces->pdata[0])->boot_order, ==, 3);
        assert_round_trip(def);
}

static void test_memory_rounding(void) {
        g_autoptr(DomainDef) def =
                parse_ok("<domain type='kvm'><name>d</name><memory unit='KB'>1000000</memory>"
                         "<currentMemory unit='KiB'>976563</currentMemory></domain>");

        /* 1,000,000,000 bytes is 953.67 MiB: the guest gets 954 MiB, and
         * <currentMemory> is compared after the same rounding. */
        g_assert_cmpuint(def->memory_bytes, ==, 954ULL << 20);
        assert_round_trip(def);
}

static void test_metadata(void) {
        g_autoptr(DomainDef) def = parse_ok(
                "<domain type='kvm' xmlns:cockpit='https://cockpit-project.org/ns/machines/1'><name>d</name>"
                "<metadata>"
                "<libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>"
                "<libosinfo:os id='http://debian.org/debian/12'/></libosinfo:libosinfo>"
                "<cockpit:machine><cockpit:has-install-phase>false</cockpit:has-install-phase></"
                "cockpit:machine>"
                "<vmigrate:migration xmlns:vmigrate='https://vmigrate.org/xmlns/migration/1'>"
                "<vmigrate:require hook='x'/></vmigrate:migration>"
                "<app xmlns='urn:default-ns' a='&lt;1&gt;'>text &amp; more</app>"
                "</metadata><memory unit='MiB'>64</memory></domain>");
        g_autofree char *out = NULL;

        g_assert_cmpuint(def->metadata_other->len, ==, 3);
        g_assert_nonnull(def->require_hooks);
        out = domain_def_format(def);
        /* A namespace declared further up comes with the element. */
        g_assert_nonnull(
                strstr(out,
                       "<cockpit:machine xmlns:cockpit=\"https://cockpit-project.org/ns/machines/1\">"
                       "<cockpit:has-install-phase>false</cockpit:has-install-phase></cockpit:machine>"));
        g_assert_nonnull(strstr(out, "<app xmlns=\"urn:default-ns\" a=\"&lt;1&gt;\">text &amp; more</app>"));
        assert_round_trip(def);
        {
                /* Metadata is the applications': destination-xml may change it. */
                g_autoptr(DomainDef) other = domain_def_copy(def);
                g_autoptr(GError) error = NULL;
                g_ptr_array_remove_index(other->metadata_other, 0);
                g_assert_false(domain_def_equal(def, other));
                g_assert_cmpint(domain_def_check_abi_stable(def, other, &error), ==, 0);
                g_assert_no_error(error);
        }
}

static void test_abi(void) {
        g_autoptr(DomainDef) a =
                parse_ok(DEVICES("<sound model='ich9'/><channel type='unix'><source path='/a.sock'/>"
                                 "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"));
        g_autoptr(DomainDef) host_side =
                parse_ok(DEVICES("<sound model='ich9'/><channel type='unix'><source "
                                 "path='/b.sock'/><target type='virtio' "
                                 "name='org.qemu.guest_agent.0'/></channel>"));
        g_autoptr(DomainDef) guest_side =
                parse_ok(DEVICES("<sound model='ac97'/><channel type='unix'><source "
                                 "path='/a.sock'/><target type='virtio' "
                                 "name='org.qemu.guest_agent.0'/></channel>"));
        g_autoptr(GError) error = NULL;

        memcpy(host_side->uuid, a->uuid, sizeof(a->uuid));
        memcpy(guest_side->uuid, a->uuid, sizeof(a->uuid));
        g_assert_cmpint(domain_def_check_abi_stable(a, host_side, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(domain_def_check_abi_stable(a, guest_side, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_OPTION);
}

/* ---- one answer for all problems ---- */

static void test_problems_counted(void) {
        /* Three refusals in <devices> and one at the top: the first is
         * named, the others counted. */
        assert_refused(
                DOMAIN("<devices><smartcard mode='host'/><audio id='1' type='pulseaudio'/>"
                       "<hostdev mode='subsystem'/></devices><features><hyperv "
                       "mode='passthrough'/></features>"),
                "<smartcard> in <devices> is not supported by vmigrate; remove it (and 3 more problems)");
        assert_refused(DOMAIN("<devices><smartcard/></devices><bogus/>"), "(and 1 more problem)");
        /* A single problem reads as before. */
        {
                g_autofree char *m = refusal_of(DEVICES("<smartcard/>"));
                g_assert_null(strstr(m, "more problem"));
        }
        /* Missing <name> and <memory> are problems like the others. */
        assert_refused("<domain type='kvm'><devices><smartcard/></devices></domain>",
                       "(and 2 more problems)");
}

typedef struct Refusal {
        const char *path;
        const char *xml;
        const char *expect;
} Refusal;

static const Refusal refusals[] = {
        /* deliverable 5: reasons and fixes, good messages first */
        { "clock/offset-first", DOMAIN("<clock offset='variable' adjustment='10'/>"),
          "<clock offset='variable'> is not supported by vmigrate: it starts the guest's clock at the "
          "host's UTC or "
          "local time" },
        { "clock/timezone", DOMAIN("<clock offset='timezone' timezone='Europe/Paris'/>"),
          "use offset='utc'" },
        { "clock/timer-unknown", DOMAIN("<clock><timer name='kvmclock' present='no'/></clock>"),
          "<timer name='kvmclock'> in <clock> is not supported by vmigrate" },
        { "clock/rtc-absent", DOMAIN("<clock><timer name='rtc' present='no'/></clock>"),
          "a PC always has its RTC" },
        { "clock/pit-catchup", DOMAIN("<clock><timer name='pit' tickpolicy='catchup'/></clock>"),
          "<timer tickpolicy='catchup'>: unknown tick policy; use 'delay'" },
        { "clock/timer-twice",
          DOMAIN("<clock><timer name='hpet' present='no'/><timer name='hpet' present='no'/></clock>"),
          "<timer name='hpet'> given twice" },
        { "attribute/reason", DOMAIN("<vcpu foo='1'>1</vcpu>"),
          "unknown attribute 'foo' on <vcpu>: vmigrate does not support it; remove it (<vcpu> takes "
          "'placement', 'current' or 'cpuset')" },
        { "audio/pulseaudio", DEVICES("<audio id='1' type='pulseaudio'/>"),
          "<audio type='pulseaudio'> is not supported by vmigrate: it would play on this host's sound "
          "system" },
        { "audio/spice-without-spice", DEVICES("<audio id='1' type='spice'/>"),
          "<audio type='spice'> needs a <graphics type='spice'>" },
        { "audio/dangling", DEVICES("<sound model='ich9'><audio id='4'/></sound>"),
          "no <audio id='4'> in <devices>" },
        { "audio/id-twice", DEVICES("<audio id='1' type='none'/><audio id='1' type='none'/>"),
          "<audio id='1'>: two <audio> elements have this id" },
        { "console/virtio", DEVICES("<console type='pty'><target type='virtio' port='0'/></console>"),
          "<console><target type='virtio'> is not supported by vmigrate: its console is the first serial "
          "port" },
        { "console/unix", DEVICES("<console type='unix'/>"), "<console type='unix'>: unknown console type" },
        { "controller/lsilogic-index", DEVICES("<controller type='scsi' index='1' model='lsilogic'/>"),
          "vmigrate gives a guest one SCSI controller, index 0" },
        { "controller/scsi-model", DEVICES("<controller type='scsi' model='buslogic'/>"),
          "<controller model='buslogic'>: unknown SCSI controller model" },
        { "controller/usb-companion-alone",
          DEVICES("<controller type='usb' model='ich9-uhci1'><master startport='0'/>"
                  "</controller>"),
          "<controller type='usb' model='ich9-uhci1'>: a USB companion needs its <controller type='usb' "
          "model='ich9-ehci1'/> before it" },
        { "controller/usb-companion-port",
          DEVICES("<controller type='usb' model='ich9-ehci1'/><controller type='usb' model='ich9-uhci2'>"
                  "<master startport='0'/></controller>"),
          "<master startport='2'/> is required" },
        { "controller/usb-companion-twice",
          DEVICES("<controller type='usb' model='ich9-ehci1'/><controller type='usb' model='ich9-uhci1'>"
                  "<master startport='0'/></controller><controller type='usb' model='ich9-uhci1'>"
                  "<master startport='0'/></controller>"),
          "model='ich9-uhci1'> given twice" },
        { "controller/usb-twice", DEVICES("<controller type='usb'/><controller type='usb' index='0'/>"),
          "given twice" },
        { "controller/usb-ports", DEVICES("<controller type='usb' model='piix3-uhci' ports='2'/>"),
          "only xHCI USB controllers have a number of ports" },
        { "controller/ccid", DEVICES("<controller type='ccid'/>"),
          "<controller type='ccid'> is not supported" },
        { "controller/pci-expander", DEVICES("<controller type='pci' index='1' model='pci-expander-bus'/>"),
          "unknown PCI controller model" },
        { "controller/usb-none", DEVICES("<controller type='usb' model='none'/><input type='tablet'/>"),
          "<input bus='usb'> needs a USB controller" },
        { "input/passthrough", DEVICES("<input type='passthrough' bus='virtio'/>"), "unknown input type" },
        { "sound/model", DEVICES("<sound model='sb16'/>"), "<sound model='sb16'>: unknown sound model" },
        { "sound/ac97-codec", DEVICES("<sound model='ac97'><codec type='duplex'/></sound>"),
          "only HDA (ich6, ich9) sound has codecs" },
        { "channel/pty", DEVICES("<channel type='pty'><target type='virtio' name='x'/></channel>"),
          "<channel type='pty'> is not supported by vmigrate" },
        { "channel/guestfwd",
          DEVICES("<channel type='unix'><target type='guestfwd' address='10.0.2.1' port='1'/>"
                  "</channel>"),
          "<channel><target type='guestfwd'> is not supported by vmigrate; use type='virtio'" },
        { "channel/connect",
          DEVICES("<channel type='unix'><source mode='connect' path='/s'/>"
                  "<target type='virtio' name='x'/></channel>"),
          "a server to connect to would not follow the guest" },
        { "channel/nameless", DEVICES("<channel type='unix'><target type='virtio'/></channel>"),
          "attribute 'name' is required" },
        { "channel/spice-name",
          DEVICES("<channel type='spicevmc'><target type='virtio' name='x'/></channel>"),
          "the SPICE agent's channel is named 'com.redhat.spice.0'" },
        { "channel/name-twice",
          DEVICES("<channel type='unix'><target type='virtio' name='x'/></channel>"
                  "<channel type='unix'><target type='virtio' name='x'/></channel>"),
          "two channels have this name" },
        { "redirdev/tcp", DEVICES("<redirdev bus='usb' type='tcp'/>"), "use type='spicevmc'" },
        { "rng/egd", DEVICES("<rng model='virtio'><backend model='egd' type='udp'/></rng>"),
          "<rng><backend model='egd'> is not supported" },
        { "rng/path", DEVICES("<rng model='virtio'><backend model='random'>/etc/passwd</backend></rng>"),
          "use /dev/urandom, /dev/random or /dev/hwrng" },
        { "rng/backendless", DEVICES("<rng model='virtio'/>"),
          "<backend model='random'>/dev/urandom</backend> is required" },
        { "watchdog/dump", DEVICES("<watchdog model='i6300esb' action='dump'/>"),
          "it has no place to write guest dumps" },
        { "watchdog/model", DEVICES("<watchdog model='diag288'/>"), "unknown watchdog model" },
        { "memballoon/stats", DEVICES("<memballoon model='virtio'><stats period='10'/></memballoon>"),
          "<memballoon><stats> is not supported by vmigrate" },
        { "memballoon/xen", DEVICES("<memballoon model='xen'/>"),
          "<memballoon model='xen'>: unknown balloon model" },
        { "features/hyperv", DOMAIN("<features><hyperv mode='passthrough'/></features>"),
          "<hyperv mode='passthrough'> is not supported by vmigrate" },
        { "features/vmport", DOMAIN("<features><vmport state='maybe'/></features>"),
          "<vmport state='maybe'>" },
        { "features/smm", DOMAIN("<features><smm state='off'/></features>"), "<smm state='off'>" },
        { "topology/product",
          DOMAIN("<vcpu>3</vcpu><cpu><topology sockets='1' cores='2' threads='1'/></cpu>"),
          "is 2 vCPUs, but <vcpu> is 3; make them equal" },
        { "topology/zero", DOMAIN("<cpu><topology sockets='0' cores='1' threads='1'/></cpu>"),
          "<topology sockets>: 0 is out of range" },
        { "boot/mixed",
          DOMAIN("<os><type>hvm</type><boot dev='hd'/></os><devices><disk type='file'>"
                 "<source file='/a'/><target dev='vda'/><boot order='1'/></disk></devices>"),
          "<os><boot dev> and a device's <boot order> cannot be used together" },
        { "boot/order-twice",
          DEVICES("<disk type='file'><source file='/a'/><target dev='vda'/><boot order='1'/></disk>"
                  "<interface type='user'><boot order='1'/></interface>"),
          "<boot order='1'>: two devices have this boot order" },
        { "boot/dev-twice", DOMAIN("<os><type>hvm</type><boot dev='hd'/><boot dev='hd'/></os>"),
          "<boot dev='hd'> given twice" },
        { "bootmenu/timeout-disabled",
          DOMAIN("<os><type>hvm</type><bootmenu enable='no' timeout='5'/></os>"),
          "a timeout needs enable='yes'" },
        { "bootmenu/timeout-big",
          DOMAIN("<os><type>hvm</type><bootmenu enable='yes' timeout='70000'/></os>"),
          "70000 is out of range; use 0 to 65535" },
        { "disk/io-native-cached",
          DEVICES("<disk type='file'><driver io='native'/><source file='/a'/>"
                  "<target dev='vda'/></disk>"),
          "native AIO needs the host's page cache bypassed; add cache='none'" },
        { "disk/detect-zeroes-unmap",
          DEVICES("<disk type='file'><driver detect_zeroes='unmap'/><source file='/a'/>"
                  "<target dev='vda'/></disk>"),
          "unmapping zeroes needs discard='unmap'" },
        { "disk/discard",
          DEVICES("<disk type='file'><driver discard='trim'/><source file='/a'/><target dev='vda'/>"
                  "</disk>"),
          "<driver discard='trim'>: unknown discard mode; use 'unmap' or 'ignore'" },
        { "metadata/limit", DOMAIN("<metadata><x:a xmlns:x='urn:1'/><x:a xmlns:x='urn:1'/></metadata>"),
          "two elements in namespace 'urn:1'" },
        { "pm/twice", DOMAIN("<pm><suspend-to-mem enabled='no'/><suspend-to-mem enabled='no'/></pm>"),
          "<suspend-to-mem> given twice in <pm>" },
};

static void test_refusal(gconstpointer data) {
        const Refusal *refusal = data;
        assert_refused(refusal->xml, refusal->expect);
}

/* <vcpu cpuset>: kept canonical, written back; the CpuSet it names. */
static void test_vcpu_cpuset(void) {
        g_autoptr(DomainDef) def = parse_ok(DOMAIN("<vcpu placement='static' cpuset='4-6,^5,0,1'>2</vcpu>"));
        CpuSet set, have, missing;

        g_assert_cmpstr(def->vcpu_cpuset, ==, "0-1,4,6");
        assert_round_trip(def);
        g_assert_cmpint(cpuset_parse(def->vcpu_cpuset, "x", &set, NULL), ==, 0);
        g_assert_cmpuint(cpuset_count(&set), ==, 4);
        g_assert_true(cpuset_has(&set, 6) && !cpuset_has(&set, 5) && !cpuset_has(&set, 1023));
        g_assert_cmpint(cpuset_parse("0-3", "x", &have, NULL), ==, 0);
        cpuset_missing(&set, &have, &missing);
        g_autofree char *lacking = cpuset_format(&missing);
        g_assert_cmpstr(lacking, ==, "4,6");
        g_assert_cmpint(cpuset_parse("1023", "x", &set, NULL), ==, 0);
        g_assert_true(cpuset_has(&set, 1023));
}

int main(int argc, char **argv) {
        static const char *const virt_install[] = { "debian11-spice.xml",      "debian11-vnc.xml",
                                                    "fedora37-spice-uefi.xml", "ubuntu2204-vnc.xml",
                                                    "ubuntu2204-headless.xml", "win11-spice-uefi.xml" };

        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        for (size_t i = 0; i < G_N_ELEMENTS(virt_install); i++) {
                g_autofree char *path =
                        g_strdup_printf("/domain-xml-devices/virt-install/%s", virt_install[i]);
                g_test_add_data_func(path, virt_install[i], test_virt_install);
        }
        g_test_add_func("/domain-xml-devices/virt-install/unchanged-defines",
                        test_virt_install_unchanged);
        g_test_add_func("/domain-xml-devices/vcpu-cpuset", test_vcpu_cpuset);
        g_test_add_func("/domain-xml-devices/controllers", test_controllers);
        g_test_add_func("/domain-xml-devices/inputs", test_inputs);
        g_test_add_func("/domain-xml-devices/sound-and-audio", test_sound_audio);
        g_test_add_func("/domain-xml-devices/channels", test_channels);
        g_test_add_func("/domain-xml-devices/redirdev-rng-watchdog-balloon", test_misc_devices);
        g_test_add_func("/domain-xml-devices/settings", test_settings);
        g_test_add_func("/domain-xml-devices/disks", test_disks);
        g_test_add_func("/domain-xml-devices/memory-rounding", test_memory_rounding);
        g_test_add_func("/domain-xml-devices/metadata", test_metadata);
        g_test_add_func("/domain-xml-devices/abi", test_abi);
        g_test_add_func("/domain-xml-devices/problems-counted", test_problems_counted);
        for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
                g_autofree char *path = g_strdup_printf("/domain-xml-devices/refuse/%s", refusals[i].path);
                g_test_add_data_func(path, &refusals[i], test_refusal);
        }
        return g_test_run();
}
