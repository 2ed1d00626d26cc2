/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hyper-V enlightenments in the domain XML (domain-xml-hyperv.c): each of
 * libvirt's kept and written back as given, what needs what refused with
 * the missing one named, passthrough and reenlightenment refused with
 * their reasons, and a change of any of them seen by the ABI check. */
#include <string.h>

#include "domain-xml.h"
#include "errors.h"

#define DOMAIN(body)                                                                                        \
        "<domain type='kvm'><name>d</name><uuid>0f2b2c1e-6a1c-4e0e-9b1e-2c3d4e5f6a7b</uuid>"                \
        "<memory unit='MiB'>64</memory>" body "</domain>"
#define HYPERV(body) HYPERV_CLOCK(body, "")
#define HYPERV_CLOCK(body, clock) DOMAIN("<features><hyperv>" body "</hyperv></features>" clock)
#define HYPERVCLOCK "<clock offset='localtime'><timer name='hypervclock' present='yes'/></clock>"

/* Every enlightenment vmigrate takes, dependencies met. */
#define ALL                                                                                                 \
        "<features><acpi/><apic/><hyperv mode='custom'><relaxed state='on'/><vapic state='on'/>"            \
        "<spinlocks state='on' retries='8191'/><vpindex state='on'/><runtime state='on'/>"                  \
        "<synic state='on'/><stimer state='on'><direct state='on'/></stimer><reset state='off'/>"           \
        "<vendor_id state='on' value='KVM Hv'/><frequencies state='on'/>"                                   \
        "<reenlightenment state='off'/><tlbflush state='on'><direct state='on'/>"                           \
        "<extended state='on'/></tlbflush><ipi state='on'/><evmcs state='on'/><avic state='on'/>"           \
        "<emsr_bitmap state='on'/><xmm_input state='on'/></hyperv></features>" HYPERVCLOCK

static DomainDef *parse_ok(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_nonnull(def);
        return def;
}

/* The writer's output without its indentation. */
static char *format_compact(const DomainDef *def) {
        g_autofree char *xml = domain_def_format(def);
        g_autoptr(GRegex) blanks = g_regex_new(">\\s+<", 0, 0, NULL);

        return g_regex_replace_literal(blanks, xml, -1, 0, "><", 0, NULL);
}

static void assert_round_trip(const DomainDef *def) {
        g_autofree char *xml = domain_def_format(def);
        g_autoptr(DomainDef) again = parse_ok(xml);
        g_autofree char *xml2 = domain_def_format(again);
        g_autoptr(DomainDef) copy = domain_def_copy(def);

        g_assert_true(domain_def_equal(def, again));
        g_assert_cmpstr(xml, ==, xml2);
        g_assert_true(domain_def_equal(def, copy));
}

static void test_all(void) {
        g_autoptr(DomainDef) def = parse_ok(DOMAIN(ALL));
        g_autofree char *xml = NULL;

        if (!def)
                return;
        g_assert_true(def->hyperv);
        g_assert_cmpstr(def->hyperv_mode, ==, "custom");
        for (unsigned i = 0; i < DOMAIN_HYPERV_N; i++) {
                bool off = i == DOMAIN_HYPERV_RESET || i == DOMAIN_HYPERV_REENLIGHTENMENT;
                g_assert_cmpint(def->hyperv_state[i], ==,
                                off ? DOMAIN_FW_FEATURE_OFF : DOMAIN_FW_FEATURE_ON);
        }
        g_assert_cmpuint(def->hyperv_spinlocks_retries, ==, 8191);
        g_assert_cmpstr(def->hyperv_vendor_id, ==, "KVM Hv");
        g_assert_cmpstr(def->timer_hypervclock_present, ==, "yes");
        assert_round_trip(def);

        /* Written back as given: nested ones inside their parents, off
         * ones as off, the timer in <clock>. */
        xml = format_compact(def);
        g_test_message("%s", xml);
        g_assert_nonnull(strstr(xml, "<hyperv mode=\"custom\">"));
        g_assert_nonnull(strstr(xml, "<spinlocks state=\"on\" retries=\"8191\"/>"));
        g_assert_nonnull(strstr(xml, "<stimer state=\"on\"><direct state=\"on\"/></stimer>"));
        g_assert_nonnull(strstr(
                xml, "<tlbflush state=\"on\"><direct state=\"on\"/><extended state=\"on\"/></tlbflush>"));
        g_assert_nonnull(strstr(xml, "<reset state=\"off\"/>"));
        g_assert_nonnull(strstr(xml, "<vendor_id state=\"on\" value=\"KVM Hv\"/>"));
        g_assert_nonnull(strstr(xml, "<timer name=\"hypervclock\" present=\"yes\"/>"));
}

/* virt-install's: no mode (none written back), three enlightenments. */
static void test_virt_install_set(void) {
        g_autoptr(DomainDef) def = parse_ok(HYPERV("<relaxed state='on'/><vapic state='on'/>"
                                                   "<spinlocks state='on' retries='8191'/>"));
        g_autofree char *xml = NULL;

        if (!def)
                return;
        g_assert_null(def->hyperv_mode);
        g_assert_true(domain_hyperv_on(def, DOMAIN_HYPERV_RELAXED));
        g_assert_false(domain_hyperv_on(def, DOMAIN_HYPERV_VPINDEX));
        g_assert_cmpint(def->hyperv_state[DOMAIN_HYPERV_VPINDEX], ==, DOMAIN_FW_FEATURE_UNSET);
        xml = format_compact(def);
        g_assert_nonnull(strstr(xml, "<hyperv><relaxed state=\"on\"/>"));
        assert_round_trip(def);
}

/* An empty <hyperv> is kept too (the guest sees no enlightenment). */
static void test_empty(void) {
        g_autoptr(DomainDef) def = parse_ok(DOMAIN("<features><hyperv/></features>"));
        g_autofree char *xml = format_compact(def);

        g_assert_true(def->hyperv);
        g_assert_nonnull(strstr(xml, "<hyperv/>"));
        assert_round_trip(def);
}

/* The ABI check: the guest sees each of them. */
static void test_abi(void) {
        g_autoptr(DomainDef) a = parse_ok(DOMAIN(ALL));
        static const char *const changes[][2] = {
                { "<ipi state='on'/>", "<ipi state='off'/>" },   { "retries='8191'", "retries='4096'" },
                { "value='KVM Hv'", "value='Other'" },           { "<extended state='on'/>", "" },
                { "<avic state='on'/>", "<avic state='off'/>" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(changes); i++) {
                g_auto(GStrv) parts = g_strsplit(DOMAIN(ALL), changes[i][0], 2);
                g_autofree char *xml = g_strjoinv(changes[i][1], parts);
                g_autoptr(DomainDef) b = NULL;
                g_autoptr(GError) error = NULL;

                g_assert_cmpuint(g_strv_length(parts), ==, 2);
                b = parse_ok(xml);
                g_assert_cmpint(domain_def_check_abi_stable(a, b, &error), <, 0);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_OPTION);
                if (error)
                        g_test_message("%s: %s", changes[i][0], error->message);
                g_assert_nonnull(error ? strstr(error->message, "<hyperv>") : NULL);
        }
}

typedef struct Refusal {
        const char *path;
        const char *xml;
        const char *expect;
} Refusal;

static const Refusal refusals[] = {
        { "passthrough", DOMAIN("<features><hyperv mode='passthrough'/></features>"),
          "<hyperv mode='passthrough'> is not supported by vmigrate: it gives the guest whatever "
          "enlightenments this host's KVM has" },
        { "mode", DOMAIN("<features><hyperv mode='host'/></features>"),
          "<hyperv mode='host'>: unknown mode" },
        { "twice", DOMAIN("<features><hyperv/><hyperv/></features>"), "<hyperv> given twice in <features>" },
        { "unknown", HYPERV("<crash state='on'/>"), "<crash> in <hyperv> is not a Hyper-V enlightenment" },
        { "feature-twice", HYPERV("<relaxed state='on'/><relaxed state='off'/>"),
          "<relaxed> given twice in <hyperv>" },
        { "state-missing", HYPERV("<relaxed/>"),
          "<relaxed>: attribute 'state' is required ('on' or 'off')" },
        { "state-bad", HYPERV("<relaxed state='yes'/>"), "<relaxed state='yes'>: unknown state" },
        { "attribute", HYPERV("<relaxed state='on' retries='5'/>"), "retries" },
        { "child", HYPERV("<relaxed state='on'><direct state='on'/></relaxed>"), "<relaxed> must be empty" },
        { "stimer-child", HYPERV("<stimer state='on'><extended state='on'/></stimer>"),
          "unknown element <extended> in <stimer>" },
        { "reenlightenment", HYPERV("<reenlightenment state='on'/>"),
          "<reenlightenment state='on'> in <hyperv> is not supported by vmigrate: a guest with it migrates "
          "only to a host of the same TSC frequency" },
        { "spinlocks-retries", HYPERV("<spinlocks state='on'/>"),
          "<spinlocks state='on'>: attribute 'retries' is required" },
        { "spinlocks-low", HYPERV("<spinlocks state='on' retries='100'/>"),
          "<spinlocks retries='100'>: out of range; use 4095 to 4294967295" },
        { "spinlocks-high", HYPERV("<spinlocks state='on' retries='4294967296'/>"),
          "<spinlocks retries='4294967296'>: out of range" },
        { "spinlocks-hex", HYPERV("<spinlocks state='on' retries='0x1fff'/>"), "not a decimal number" },
        { "vendor-missing", HYPERV("<vendor_id state='on'/>"),
          "<vendor_id state='on'>: attribute 'value' is required" },
        { "vendor-long", HYPERV("<vendor_id state='on' value='0123456789abc'/>"),
          "<vendor_id value='0123456789abc'>: use 1 to 12 letters" },
        { "vendor-comma", HYPERV("<vendor_id state='on' value='a,hv-evmcs'/>"),
          "<vendor_id value='a,hv-evmcs'>" },
        /* what needs what */
        { "synic-vpindex", HYPERV("<synic state='on'/>"),
          "<synic state='on'> in <hyperv> needs <vpindex state='on'>" },
        { "stimer-synic", HYPERV_CLOCK("<vpindex state='on'/><stimer state='on'/>", HYPERVCLOCK),
          "<stimer state='on'> in <hyperv> needs <synic state='on'>" },
        { "stimer-time", HYPERV("<vpindex state='on'/><synic state='on'/><stimer state='on'/>"),
          "<stimer state='on'> in <hyperv> needs <clock><timer name='hypervclock' present='yes'>" },
        { "stimer-time-off",
          HYPERV_CLOCK("<vpindex state='on'/><synic state='on'/><stimer state='on'/>",
                       "<clock><timer name='hypervclock' present='no'/></clock>"),
          "needs <clock><timer name='hypervclock' present='yes'>" },
        { "stimer-direct",
          HYPERV_CLOCK("<vpindex state='on'/><synic state='on'/><stimer state='off'><direct "
                       "state='on'/></stimer>",
                       HYPERVCLOCK),
          "<stimer><direct state='on'> in <hyperv> needs <stimer state='on'>" },
        { "tlbflush-vpindex", HYPERV("<tlbflush state='on'/>"),
          "<tlbflush state='on'> in <hyperv> needs <vpindex state='on'>" },
        { "tlbflush-extended",
          HYPERV("<vpindex state='on'/><tlbflush state='off'><extended state='on'/></tlbflush>"),
          "<tlbflush><extended state='on'> in <hyperv> needs <tlbflush state='on'>" },
        { "tlbflush-direct",
          HYPERV("<vpindex state='on'/><tlbflush state='on'><direct state='on'/></tlbflush>"),
          "<tlbflush><direct state='on'> in <hyperv> needs <vapic state='on'>" },
        { "ipi", HYPERV("<vpindex state='off'/><ipi state='on'/>"),
          "<ipi state='on'> in <hyperv> needs <vpindex state='on'>" },
        { "evmcs", HYPERV("<evmcs state='on'/>"),
          "<evmcs state='on'> in <hyperv> needs <vapic state='on'>" },
        /* the timer */
        { "timer-present", DOMAIN("<clock><timer name='hypervclock'/></clock>"),
          "<timer>: attribute 'present' is required ('yes' or 'no')" },
        { "timer-tickpolicy",
          DOMAIN("<clock><timer name='hypervclock' present='yes' tickpolicy='delay'/></clock>"),
          "tickpolicy" },
        { "timer-twice",
          DOMAIN("<clock><timer name='hypervclock' present='yes'/><timer name='hypervclock' "
                 "present='no'/></clock>"),
          "<timer name='hypervclock'> given twice in <clock>" },
};

static void test_refusal(gconstpointer data) {
        const Refusal *t = data;
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(t->xml, strlen(t->xml), &def, &error), ==, -EINVAL);
        g_assert_null(def);
        g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_XML);
        if (error && !strstr(error->message, t->expect))
                g_test_message("message '%s' does not contain '%s'", error->message, t->expect);
        g_assert_nonnull(error ? strstr(error->message, t->expect) : NULL);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();

        g_test_add_func("/domain-xml-hyperv/all-kept", test_all);
        g_test_add_func("/domain-xml-hyperv/virt-install-set", test_virt_install_set);
        g_test_add_func("/domain-xml-hyperv/empty", test_empty);
        g_test_add_func("/domain-xml-hyperv/abi", test_abi);
        for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
                g_autofree char *path = g_strdup_printf("/domain-xml-hyperv/refuse/%s", refusals[i].path);
                g_test_add_data_func(path, &refusals[i], test_refusal);
        }
        return g_test_run();
}
