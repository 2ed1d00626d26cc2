/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu backend's UEFI firmware (qemu-firmware.c): choosing from
 * firmware descriptors, the flash and network disks on the command line,
 * and the NVRAM file staged by an incoming migration. */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "domain-xml.h"
#include "errors.h"
#include "qemu-command.h"
#include "qemu-firmware.h"

#define UUID "6b0d4f7a-3c2e-4d5b-9e8f-0a1b2c3d4e5f"
#define DOMAIN(os, devices)                                                                                 \
        "<domain type='kvm'><name>demo</name><uuid>" UUID "</uuid><memory unit='MiB'>256</memory>" os       \
        "<devices>" devices "</devices></domain>"

typedef struct {
        char *dir;    /* a temporary tree: descriptors, firmware files */
        char *fwdir;  /* <dir>/share (lower precedence) */
        char *etcdir; /* <dir>/etc (higher) */
} Fixture;

static void rm_rf(const char *path) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(path, name, NULL);
                if (g_file_test(p, G_FILE_TEST_IS_DIR))
                        rm_rf(p);
                else
                        g_unlink(p);
        }
        g_rmdir(path);
}

static void put(const char *path, const char *contents) {
        g_assert_true(g_file_set_contents(path, contents, -1, NULL));
}

static char *descriptor(const char *code, const char *vars, const char *machines, const char *features) {
        return g_strdup_printf("{ \"interface-types\": [\"uefi\"], \"mapping\": { \"device\": \"flash\","
                               " \"executable\": { \"filename\": \"%s\", \"format\": \"raw\" },"
                               " \"nvram-template\": { \"filename\": \"%s\", \"format\": \"raw\" } },"
                               " \"targets\": [ { \"architecture\": \"x86_64\", \"machines\": [%s] } ],"
                               " \"features\": [%s] }",
                               code, vars, machines, features);
}

static void setup(Fixture *f, gconstpointer data) {
        f->dir = g_dir_make_tmp("vmigrate-fw-XXXXXX", NULL);
        f->fwdir = g_build_filename(f->dir, "share", NULL);
        f->etcdir = g_build_filename(f->dir, "etc", NULL);
        g_mkdir(f->fwdir, 0755);
        g_mkdir(f->etcdir, 0755);
        const char *files[] = { "CODE.fd", "CODE.secboot.fd", "VARS.fd", "VARS.ms.fd" };
        for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
                g_autofree char *p = g_build_filename(f->dir, files[i], NULL);
                put(p, files[i]); /* contents: its own name */
        }
        g_autofree char *code = g_build_filename(f->dir, "CODE.fd", NULL);
        g_autofree char *sb = g_build_filename(f->dir, "CODE.secboot.fd", NULL);
        g_autofree char *vars = g_build_filename(f->dir, "VARS.fd", NULL);
        g_autofree char *ms = g_build_filename(f->dir, "VARS.ms.fd", NULL);
        g_autofree char *d40 =
                descriptor(sb, ms, "\"pc-q35-*\"", "\"enrolled-keys\", \"requires-smm\", \"secure-boot\"");
        g_autofree char *d50 = descriptor(sb, vars, "\"pc-q35-*\"", "\"requires-smm\", \"secure-boot\"");
        g_autofree char *d60 = descriptor(code, vars, "\"pc-i440fx-*\", \"pc-q35-*\"", "\"acpi-s3\"");
        g_autofree char *p40 = g_build_filename(f->fwdir, "40-secure-enrolled.json", NULL);
        g_autofree char *p50 = g_build_filename(f->fwdir, "50-secure.json", NULL);
        g_autofree char *p60 = g_build_filename(f->fwdir, "60-plain.json", NULL);
        g_autofree char *bios = g_build_filename(f->fwdir, "10-bios.json", NULL);
        put(p40, d40);
        put(p50, d50);
        put(p60, d60);
        put(bios, "{ \"interface-types\": [\"bios\"], \"mapping\": { \"device\": \"memory\" } }");
        g_autofree char *dirs = g_strdup_printf("%s:%s", f->etcdir, f->fwdir);
        g_setenv("VMIGRATE_FIRMWARE_DIRS", dirs, true);
}

static void teardown(Fixture *f, gconstpointer data) {
        rm_rf(f->dir);
        g_free(f->dir);
        g_free(f->fwdir);
        g_free(f->etcdir);
        g_unsetenv("VMIGRATE_FIRMWARE_DIRS");
}

static DomainDef *parse(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainDef *def = NULL;

        g_assert_cmpint(domain_def_parse(xml, strlen(xml), &def, &error), ==, 0);
        g_assert_no_error(error);
        return def;
}

static void resolve_ok(Fixture *f, const char *os, const char *machine, const char *code, const char *vars,
                       bool secure) {
        g_autoptr(DomainDef) def = parse(DOMAIN("", ""));
        g_autoptr(GError) error = NULL;
        g_autofree char *xml = g_strdup_printf(DOMAIN("%s", ""), os);
        g_autofree char *want_code = g_build_filename(f->dir, code, NULL);
        g_autofree char *want_vars = g_build_filename(f->dir, vars, NULL);

        domain_def_free(g_steal_pointer(&def));
        def = parse(xml);
        g_assert_cmpint(qemu_firmware_resolve(def, machine, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(def->os_loader, ==, want_code);
        g_assert_cmpstr(def->os_nvram_template, ==, want_vars);
        g_assert_true(def->os_loader_pflash);
        g_assert_cmpint(def->os_loader_secure, ==, secure);
}

#define EFI "<os firmware='efi'><type>hvm</type>"

/* As libvirt: the first descriptor that fits, in file-name order. */
static void test_choose(Fixture *f, gconstpointer data) {
        resolve_ok(f, EFI "</os>", "pc-q35-10.0", "CODE.secboot.fd", "VARS.ms.fd", true);
        resolve_ok(f, EFI "</os>", "pc-i440fx-10.0", "CODE.fd", "VARS.fd", false);
        resolve_ok(f, EFI "<firmware><feature enabled='no' name='secure-boot'/></firmware></os>",
                   "pc-q35-10.0", "CODE.fd", "VARS.fd", false);
        resolve_ok(f, EFI "<firmware><feature enabled='no' name='enrolled-keys'/></firmware></os>",
                   "pc-q35-10.0", "CODE.secboot.fd", "VARS.fd", true);
}

static void test_choose_refused(Fixture *f, gconstpointer data) {
        g_autoptr(DomainDef) def = parse(DOMAIN(EFI "<firmware><feature enabled='yes' name='secure-boot'/>"
                                                    "</firmware></os>",
                                                ""));
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(qemu_firmware_resolve(def, "pc-i440fx-10.0", &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_BACKEND);
        g_assert_true(error &&
                      strstr(error->message,
                             "no UEFI firmware here fits machine 'pc-i440fx-10.0' with "
                             "secure boot"));
}

/* A descriptor in an earlier directory hides one of the same name. */
static void test_precedence(Fixture *f, gconstpointer data) {
        g_autofree char *code = g_build_filename(f->dir, "CODE.fd", NULL);
        g_autofree char *vars = g_build_filename(f->dir, "VARS.fd", NULL);
        g_autofree char *plain = descriptor(code, vars, "\"pc-q35-*\"", "");
        g_autofree char *hide = g_build_filename(f->etcdir, "40-secure-enrolled.json", NULL);

        put(hide, plain);
        resolve_ok(f, EFI "</os>", "pc-q35-10.0", "CODE.fd", "VARS.fd", false);
}

/* A named loader: its template comes from the descriptor naming it. */
static void test_template_of_loader(Fixture *f, gconstpointer data) {
        g_autofree char *code = g_build_filename(f->dir, "CODE.fd", NULL);
        g_autofree char *xml = g_strdup_printf(DOMAIN("<os><type>hvm</type><loader readonly='yes' "
                                                      "type='pflash'>%s</loader></os>",
                                                      ""),
                                               code);
        g_autoptr(DomainDef) def = parse(xml);
        g_autoptr(DomainDef) other = parse(DOMAIN("<os><type>hvm</type><loader readonly='yes' "
                                                  "type='pflash'>/elsewhere/CODE.fd</loader></os>",
                                                  ""));
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(qemu_firmware_resolve(def, "pc-q35-10.0", &error), ==, 0);
        g_assert_true(g_str_has_suffix(def->os_nvram_template, "/VARS.fd"));
        g_assert_cmpint(qemu_firmware_resolve(other, "pc-q35-10.0", &error), <, 0);
        g_assert_true(error && strstr(error->message, "give it as <nvram template='…'>"));
}

/* ---- the command line ---- */

static char *build(const char *xml, const char *nvram, GError **error) {
        g_autoptr(DomainDef) def = parse(xml);
        g_autoptr(QemuPaths) paths = qemu_paths_new("/run/vmigrate/qemu", UUID);
        QemuCommandOptions options = { .binary = "/usr/bin/qemu-system-x86_64",
                                       .qmp_fd = 3,
                                       .nvram = nvram };
        g_auto(GStrv) argv = NULL;

        if (qemu_build_argv(def, paths, &options, &argv, error) < 0)
                return NULL;
        return g_strjoinv(" ", argv);
}

static void test_argv_pflash(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd =
                build(DOMAIN("<os><type machine='pc-q35-10.0'>hvm</type><loader readonly='yes' "
                             "type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader></os>",
                             ""),
                      "/var/lib/vmigrate/qemu/nvram/" UUID "_VARS.fd", &error);

        g_assert_no_error(error);
        g_test_message("%s", cmd);
        g_assert_nonnull(
                strstr(cmd,
                       "-blockdev {\"driver\":\"file\",\"filename\":\"/usr/share/OVMF/OVMF_CODE_4M.fd\","
                       "\"node-name\":\"pflash0-storage\",\"read-only\":true"));
        g_assert_nonnull(strstr(cmd,
                                "\"filename\":\"/var/lib/vmigrate/qemu/nvram/" UUID "_VARS.fd\","
                                "\"node-name\":\"pflash1-storage\",\"read-only\":false"));
        g_assert_nonnull(strstr(cmd, "-machine pc-q35-10.0,pflash0=pflash0-format,pflash1=pflash1-format "));
        g_assert_null(strstr(cmd, "-bios"));
        g_assert_null(strstr(cmd, "smm=on"));
}

static void test_argv_secure(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd =
                build(DOMAIN("<os><type machine='q35'>hvm</type><loader readonly='yes' secure='yes' "
                             "type='pflash'>/c.fd</loader></os>",
                             ""),
                      "/n.fd", &error);
        g_autofree char *pc = NULL;

        g_assert_no_error(error);
        g_assert_nonnull(strstr(cmd, "-machine q35,pflash0=pflash0-format,pflash1=pflash1-format,smm=on "));
        g_assert_nonnull(strstr(cmd, "-global driver=cfi.pflash01,property=secure,value=on"));
        pc = build(DOMAIN("<os><type machine='pc'>hvm</type><loader readonly='yes' secure='yes' "
                          "type='pflash'>/c.fd</loader></os>",
                          ""),
                   "/n.fd", &error);
        g_assert_null(pc);
        g_assert_true(error &&
                      strstr(error->message,
                             "secure boot needs SMM, which the qemu backend gives the q35 "
                             "machine only"));
}

/* A ROM loader is still -bios; efi without a chosen loader is refused. */
static void test_argv_rom_and_unresolved(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *rom =
                build(DOMAIN("<os><type>hvm</type><loader>/usr/share/qemu/qboot.rom</loader></os>", ""),
                      NULL, &error);
        g_autofree char *efi = NULL;

        g_assert_nonnull(strstr(rom, "-bios /usr/share/qemu/qboot.rom"));
        g_assert_null(strstr(rom, "pflash"));
        efi = build(DOMAIN("<os firmware='efi'><type>hvm</type></os>", ""), NULL, &error);
        g_assert_null(efi);
        g_assert_error(error, VM_ERROR, VM_ERROR_UNSUPPORTED_BACKEND);
}

static void test_argv_netdisks(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = build(
                DOMAIN("",
                       "<disk type='network'><source protocol='nbd' name='vm1'><host name='nas' "
                       "port='10810'/></source>"
                       "<target dev='vda'/></disk>"
                       "<disk type='network'><source protocol='nbd'><host transport='unix' "
                       "socket='/run/n.sock'/>"
                       "</source><target dev='vdb'/></disk>"
                       "<disk type='network'><source protocol='iscsi' name='iqn.2013-07.com.example:s/2'>"
                       "<host name='fd00::7'/></source><target dev='vdc'/></disk>"
                       "<disk type='network'><driver name='qemu' type='raw' cache='none'/><source "
                       "protocol='rbd' "
                       "name='vms/root'><host name='mon1'/><host name='mon2' port='3300'/></source>"
                       "<target dev='vdd'/><readonly/></disk>"),
                NULL, &error);

        g_assert_no_error(error);
        g_test_message("%s", cmd);
        g_assert_nonnull(
                strstr(cmd,
                       "{\"driver\":\"nbd\",\"server\":{\"type\":\"inet\",\"host\":\"nas\",\"port\":"
                       "\"10810\"},\"export\":\"vm1\",\"node-name\":\"file-vda\""));
        g_assert_nonnull(
                strstr(cmd,
                       "{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\"/run/n.sock\"},"
                       "\"node-name\":\"file-vdb\""));
        g_assert_nonnull(
                strstr(cmd,
                       "{\"driver\":\"iscsi\",\"transport\":\"tcp\",\"portal\":\"[fd00::7]:3260\","
                       "\"target\":\"iqn.2013-07.com.example:s\",\"lun\":2,\"node-name\":\"file-vdc\""));
        g_assert_nonnull(
                strstr(cmd,
                       "{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"root\",\"server\":[{\"host\":"
                       "\"mon1\",\"port\":\"6789\"},{\"host\":\"mon2\",\"port\":\"3300\"}],"
                       "\"node-name\":\"file-vdd\",\"cache\":{\"direct\":true"));
        g_assert_nonnull(strstr(cmd, "\"driver\":\"virtio-blk-pci\",\"id\":\"vdd\",\"drive\":\"disk-vdd\""));
}

/* ---- the NVRAM file ---- */

static char *contents(const char *path) {
        char *c = NULL;
        if (!g_file_get_contents(path, &c, NULL, NULL))
                return g_strdup("(missing)");
        return c;
}

static void test_nvram_ensure(Fixture *f, gconstpointer data) {
        g_autofree char *nvram_dir = g_build_filename(f->dir, "state", "nvram", NULL);
        g_autofree char *vars = g_build_filename(f->dir, "VARS.fd", NULL);
        g_autofree char *xml =
                g_strdup_printf(DOMAIN("<os><type>hvm</type><loader readonly='yes' type='pflash'>"
                                       "/c.fd</loader><nvram template='%s'/></os>",
                                       ""),
                                vars);
        g_autoptr(DomainDef) def = parse(xml);
        g_autoptr(GError) error = NULL;
        g_autofree char *path = qemu_nvram_path(nvram_dir, def), *first = NULL, *kept = NULL;

        g_assert_true(g_str_has_suffix(path, "/state/nvram/" UUID "_VARS.fd"));
        g_assert_cmpint(qemu_nvram_ensure(nvram_dir, def, &error), ==, 0);
        g_assert_no_error(error);
        first = contents(path);
        g_assert_cmpstr(first, ==, "VARS.fd");
        /* Made once: what the guest wrote stays. */
        put(path, "written by the guest");
        g_assert_cmpint(qemu_nvram_ensure(nvram_dir, def, &error), ==, 0);
        kept = contents(path);
        g_assert_cmpstr(kept, ==, "written by the guest");
}

static void test_nvram_stage(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->dir, "nv", "d_VARS.fd", NULL);
        g_autofree char *previous = g_strconcat(path, QEMU_NVRAM_PREVIOUS_SUFFIX, NULL);
        g_autoptr(GBytes) prepare = g_bytes_new_static("AAAAAAAA", 8);
        g_autoptr(GBytes) finish = g_bytes_new_static("BBBBBBBB", 8);
        g_autoptr(GBytes) shorter = g_bytes_new_static("CCCC", 4);
        g_autoptr(GError) error = NULL;
        QemuNvramStage *s = NULL;
        g_autofree char *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL, *c5 = NULL;

        /* No copy here before: a failed migration leaves none. */
        g_assert_cmpint(qemu_nvram_stage(path, prepare, &s, &error), ==, 0);
        g_assert_no_error(error);
        c1 = contents(path);
        g_assert_cmpstr(c1, ==, "AAAAAAAA");
        qemu_nvram_stage_free(s);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

        /* A stale copy: moved aside, put back on failure. */
        put(path, "stale");
        g_assert_cmpint(qemu_nvram_stage(path, prepare, &s, &error), ==, 0);
        c2 = contents(previous);
        g_assert_cmpstr(c2, ==, "stale");
        g_assert_cmpint(qemu_nvram_stage_update(s, shorter, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        g_clear_error(&error);
        qemu_nvram_stage_free(s);
        c3 = contents(path);
        g_assert_cmpstr(c3, ==, "stale");
        g_assert_false(g_file_test(previous, G_FILE_TEST_EXISTS));

        /* Success: Finish's bytes in place, the stale copy deleted. */
        g_assert_cmpint(qemu_nvram_stage(path, prepare, &s, &error), ==, 0);
        g_assert_cmpint(qemu_nvram_stage_update(s, finish, &error), ==, 0);
        g_assert_no_error(error);
        qemu_nvram_stage_keep(s);
        qemu_nvram_stage_free(s);
        c4 = contents(path);
        g_assert_cmpstr(c4, ==, "BBBBBBBB");
        g_assert_false(g_file_test(previous, G_FILE_TEST_EXISTS));

        /* Sizes out of range are the source's error. */
        g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
        g_assert_cmpint(qemu_nvram_stage(path, empty, &s, &error), <, 0);
        g_assert_error(error, VM_ERROR, VM_ERROR_INCOMPATIBLE);
        c5 = contents(path);
        g_assert_cmpstr(c5, ==, "BBBBBBBB");
}

static void test_nvram_read_limits(Fixture *f, gconstpointer data) {
        g_autofree char *big = g_build_filename(f->dir, "big.fd", NULL);
        g_autofree char *zeros = g_malloc0(QEMU_NVRAM_MAX_BYTES + 1);
        g_autoptr(GBytes) bytes = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(big, zeros, QEMU_NVRAM_MAX_BYTES + 1, NULL));
        g_assert_cmpint(qemu_nvram_read(big, &bytes, &error), <, 0);
        g_assert_true(error && strstr(error->message, "of an unsupported size"));
        g_clear_error(&error);
        g_assert_cmpint(qemu_nvram_read(f->dir, &bytes, &error), <, 0);
        g_assert_true(error && strstr(error->message, "not a regular file"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add("/qemu-firmware/choose/first-that-fits", Fixture, NULL, setup, test_choose, teardown);
        g_test_add("/qemu-firmware/choose/refused", Fixture, NULL, setup, test_choose_refused, teardown);
        g_test_add("/qemu-firmware/choose/precedence", Fixture, NULL, setup, test_precedence, teardown);
        g_test_add("/qemu-firmware/choose/template-of-loader", Fixture, NULL, setup, test_template_of_loader,
                   teardown);
        g_test_add_func("/qemu-firmware/argv/pflash", test_argv_pflash);
        g_test_add_func("/qemu-firmware/argv/secure-boot", test_argv_secure);
        g_test_add_func("/qemu-firmware/argv/rom-and-unresolved", test_argv_rom_and_unresolved);
        g_test_add_func("/qemu-firmware/argv/network-disks", test_argv_netdisks);
        g_test_add("/qemu-firmware/nvram/made-once-from-template", Fixture, NULL, setup, test_nvram_ensure,
                   teardown);
        g_test_add("/qemu-firmware/nvram/staged-by-migration", Fixture, NULL, setup, test_nvram_stage,
                   teardown);
        g_test_add("/qemu-firmware/nvram/read-limits", Fixture, NULL, setup, test_nvram_read_limits,
                   teardown);
        return g_test_run();
}
