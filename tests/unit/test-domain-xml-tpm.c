/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The domain XML's emulated TPM (domain-xml-tpm.c): what libvirt and
 * virt-install write for swtpm is accepted and given back; what would
 * leave the TPM behind or needs what vmigrate does not have is refused
 * with a reason and a fix. */
#include <string.h>

#include "domain-xml.h"
#include "errors.h"

#define DOMAIN(body)                                                                                        \
        "<domain type='kvm'><name>d</name><uuid>0b5c6a3e-7d1f-4e2a-9c8b-1a2b3c4d5e6f</uuid>"                \
        "<memory unit='MiB'>64</memory>" body "</domain>"
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
        g_autoptr(DomainDef) back = NULL, copy = NULL;

        if (!def)
                return NULL;
        out = domain_def_format(def);
        g_test_message("%s", out);
        back = parse_ok(out);
        g_assert_true(back && domain_def_equal(def, back));
        again = back ? domain_def_format(back) : NULL;
        g_assert_cmpstr(out, ==, again);
        copy = domain_def_copy(def);
        g_assert_true(domain_def_equal(def, copy));
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

static void test_virt_install(void) {
        /* What virt-install writes for UEFI Fedora and Windows 11. */
        g_autoptr(DomainDef) def =
                round_trip(DEVICES("<tpm model='tpm-crb'><backend type='emulator'/></tpm>"));
        g_autofree char *out = domain_def_format(def);

        g_assert_cmpstr(def->tpm_model, ==, "tpm-crb");
        g_assert_cmpstr(def->tpm_version, ==, "2.0");
        g_assert_true(domain_def_has_tpm(def));
        /* Given back with the version filled in, as libvirt does. */
        g_assert_nonnull(strstr(out, "<tpm model=\"tpm-crb\">"));
        g_assert_nonnull(strstr(out, "<backend type=\"emulator\" version=\"2.0\"/>"));
}

static void test_defaults(void) {
        /* No model: libvirt's x86 default. */
        g_autoptr(DomainDef) def =
                round_trip(DEVICES("<tpm><backend type='emulator' version='2.0'/></tpm>"));
        g_autoptr(DomainDef) tis = NULL, live = NULL, none = NULL;

        g_assert_cmpstr(def->tpm_model, ==, "tpm-tis");
        tis = round_trip(
                DEVICES("<tpm model='tpm-tis'><backend type='emulator' persistent_state='no'/></tpm>"));
        g_assert_cmpstr(tis->tpm_model, ==, "tpm-tis");
        /* libvirt's live XML has an alias: its bookkeeping, dropped. */
        live = round_trip(DEVICES("<tpm model='tpm-crb'><backend type='emulator' version='2.0'/>"
                                  "<alias name='tpm0'/></tpm>"));
        g_assert_cmpstr(live->tpm_model, ==, "tpm-crb");
        none = round_trip(DEVICES(""));
        g_assert_null(none->tpm_model);
        g_assert_false(domain_def_has_tpm(none));
        g_assert_false(domain_def_equal(def, none));
        g_assert_false(domain_def_equal(def, live));
}

static void test_refused(void) {
        assert_refused(DEVICES("<tpm model='tpm-tis'><backend type='passthrough'>"
                               "<device path='/dev/tpm0'/></backend></tpm>"),
                       "<tpm><backend type='passthrough'>: a host TPM passed through stays on its host");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend type='external'>"
                               "<source type='unix' mode='connect' path='/tmp/s'/></backend></tpm>"),
                       "<tpm><backend type='external'>: a swtpm started by someone else stays on its host");
        assert_refused(
                DEVICES("<tpm model='tpm-crb'><backend type='emulator' version='2.0'>"
                        "<encryption secret='6dd3e4a5-1d76-44ce-961f-f119f5aad935'/></backend></tpm>"),
                "<tpm><backend><encryption>: vmigrate has no secret store");
        assert_refused(
                DEVICES("<tpm model='tpm-crb'><backend type='emulator' persistent_state='yes'/></tpm>"),
                "<tpm><backend persistent_state='yes'>");
        assert_refused(
                DEVICES("<tpm model='tpm-crb'><backend type='emulator'>"
                        "<active_pcr_banks><sha256/></active_pcr_banks></backend></tpm>"),
                "<tpm><backend><active_pcr_banks> is not supported by vmigrate: it needs swtpm_setup");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend type='emulator' version='1.2'/></tpm>"),
                       "vmigrate emulates TPM 2.0 only");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend type='emulator' version='3.0'/></tpm>"),
                       "<backend version='3.0'>: unknown TPM version");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend type='emulator' debug='5'/></tpm>"),
                       "<tpm><backend debug='5'>");
        assert_refused(DEVICES("<tpm model='spapr'><backend type='emulator'/></tpm>"),
                       "<tpm model='spapr'>: a POWER (pSeries) TPM");
        assert_refused(DEVICES("<tpm model='spapr-tpm-proxy'><backend type='passthrough'/></tpm>"),
                       "<tpm model='spapr-tpm-proxy'>");
        assert_refused(DEVICES("<tpm model='tpm-foo'><backend type='emulator'/></tpm>"),
                       "<tpm model='tpm-foo'>: unknown TPM model");
        assert_refused(DEVICES("<tpm model='tpm-crb'/>"), "<tpm>: <backend type='emulator'/> is required");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend/></tpm>"),
                       "<backend>: attribute 'type' is required");
        assert_refused(
                DEVICES("<tpm model='tpm-crb'><backend type='emulator'/><backend type='emulator'/></tpm>"),
                "<backend> given twice in <tpm>");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend type='emulator'/></tpm>"
                               "<tpm model='tpm-tis'><backend type='emulator'/></tpm>"),
                       "<tpm> given twice in <devices>");
        assert_refused(DEVICES("<tpm model='tpm-crb' foo='1'><backend type='emulator'/></tpm>"), "foo");
        assert_refused(DEVICES("<tpm model='tpm-crb'><backend type='emulator'><x/></backend></tpm>"),
                       "unknown element <x> in <backend>");
}

static void test_abi(void) {
        g_autoptr(DomainDef) crb =
                parse_ok(DEVICES("<tpm model='tpm-crb'><backend type='emulator'/></tpm>"));
        g_autoptr(DomainDef) tis =
                parse_ok(DEVICES("<tpm model='tpm-tis'><backend type='emulator'/></tpm>"));
        g_autoptr(DomainDef) none = parse_ok(DEVICES(""));
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_def_check_abi_stable(crb, crb, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(domain_def_check_abi_stable(crb, tis, &error), <, 0);
        g_assert_true(error && strstr(error->message, "<devices><tpm> differs"));
        g_clear_error(&error);
        g_assert_cmpint(domain_def_check_abi_stable(crb, none, &error), <, 0);
        g_assert_true(error && strstr(error->message, "a TPM on one side only"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-xml-tpm/virt-install", test_virt_install);
        g_test_add_func("/domain-xml-tpm/defaults", test_defaults);
        g_test_add_func("/domain-xml-tpm/refused", test_refused);
        g_test_add_func("/domain-xml-tpm/abi", test_abi);
        return g_test_run();
}
