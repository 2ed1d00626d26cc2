/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigratectl and vmigrated read the same things: destination URIs
 * (vmigratectl --host; Domain.Migrate's destination) and Migrate options
 * (vmigratectl migrate's flags; Migrate's a{sv}). Each case below goes
 * through both readers, which must agree: the same canonical URI or the
 * same a{sv}; or both refuse, naming the same part or option.
 */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "ctl.h"
#include "errors.h"
#include "options.h"
#include "uri.h"

/* ---- destination URIs: destination_parse() and ctl_host_parse() ---- */

typedef struct UriCase {
        const char *uri;
        const char *canonical; /* accepted: its canonical form; NULL: refused */
        const char *part;      /* refused: what the message must name */
} UriCase;

/* The rules of uri.h's comment, in its order. */
static const UriCase uri_cases[] = {
        /* ssh://[user@]host[:port][/] */
        { "ssh://hv2", "ssh://hv2" },
        { "ssh://hv2/", "ssh://hv2" },
        { "ssh://admin@hv2.example.org:2222", "ssh://admin@hv2.example.org:2222" },
        { "ssh://a.b-c_d@h", "ssh://a.b-c_d@h" },
        { "ssh://hv2:1", "ssh://hv2:1" },
        { "ssh://hv2:65535", "ssh://hv2:65535" },
        /* unix:///absolute/path */
        { "unix:///run/dbus/system_bus_socket", "unix:///run/dbus/system_bus_socket" },
        { "unix:///tmp/a,b=c;d", "unix:///tmp/a,b=c;d" },
        /* [user@]host[:port]: ssh, user root */
        { "hv2", "ssh://root@hv2" },
        { "backup@hv2:2200", "ssh://backup@hv2:2200" },
        { "[::1]:22", "ssh://root@[::1]:22" },
        { "ssh:2222", "ssh://root@ssh:2222" },
        /* DNS names, IPv4 and bracketed IPv6 literals */
        { "ssh://my_alias", "ssh://my_alias" },
        { "ssh://192.168.1.10:22", "ssh://192.168.1.10:22" },
        { "10.0.0.2", "ssh://root@10.0.0.2" },
        { "ssh://[FE80::0:1]", "ssh://[fe80::1]" },
        { "ssh://u@[2001:db8::2]:65535", "ssh://u@[2001:db8::2]:65535" },
        /* scheme case-insensitive, host names lower-cased (users are not) */
        { "SSH://Root@Host-1.Example.COM", "ssh://Root@host-1.example.com" },
        { "UNIX:///x", "unix:///x" },
        /* refused: other schemes */
        { "tcp://hv2:55556", NULL, "unknown scheme 'tcp'" },
        { "ftp://hv2", NULL, "unknown scheme 'ftp'" },
        { "unix:/run/x", NULL, "with '//' after 'unix:'" },
        { "ssh:hv2", NULL, "with '//' after 'ssh:'" },
        /* passwords */
        { "ssh://user:pw@hv2", NULL, "passwords are not accepted" },
        /* user or host starting with '-' */
        { "ssh://-oProxyCommand=x@hv2", NULL, "user name '-oProxyCommand=x' starts with '-'" },
        { "ssh://-oProxyCommand=x", NULL, "host '-oProxyCommand=x' starts with '-'" },
        { "-oProxyCommand=x", NULL, "host '-oProxyCommand=x' starts with '-'" },
        /* empty parts */
        { "", NULL, "the destination is empty" },
        { "ssh://", NULL, "the host is empty" },
        { "ssh://user@:22", NULL, "the host is empty" },
        { "ssh://@hv2", NULL, "the user name before '@' is empty" },
        { "ssh://hv2:", NULL, "the port after ':' is empty" },
        { "unix://", NULL, "the unix socket path is missing" },
        /* ports outside 1..65535 */
        { "ssh://hv2:0", NULL, "port 0 is out of range (1..65535)" },
        { "ssh://hv2:65536", NULL, "port 65536 is out of range" },
        { "ssh://hv2:99999999999999999999", NULL, "is out of range" },
        { "ssh://hv2:22x", NULL, "port '22x' is not a number" },
        { "hv2:port", NULL, "port 'port' is not a number" },
        /* queries and fragments */
        { "ssh://hv2?x=1", NULL, "a query ('?…') is not allowed" },
        { "ssh://hv2#frag", NULL, "a fragment ('#…') is not allowed" },
        { "unix:///run/x?y", NULL, "a query" },
        /* whitespace and control characters (and non-ASCII) */
        { "ssh://a b@hv2", NULL, "contains a space at position 8" },
        { "ssh://hv2\t", NULL, "contains a space at position 10" },
        { "ssh://hv2\n", NULL, "contains a control character at position 10" },
        { "unix:///run/x\x7f", NULL, "control character" },
        { "ssh://hóst", NULL, "non-ASCII" },
        /* unix paths: relative, '%', not naming a socket (too long: below) */
        { "unix://run/bus", NULL, "unix URIs take no host ('run')" },
        { "unix://localhost/run/x", NULL, "unix URIs take no host ('localhost')" },
        { "unix:///run/my%20socket", NULL, "taken literally" },
        { "unix:///run/dir/", NULL, "ends in '/'" },
        { "unix:///", NULL, "the socket path is '/'" },
        /* host names and literals */
        { "ssh://hv2/path", NULL, "ssh destinations take no path ('/path')" },
        { "./socket", NULL, "a socket on this machine is unix:///absolute/path" },
        { "/run/bus", NULL, "no scheme, so a host name, which takes no path" },
        { "ssh://fe80::1", NULL, "IPv6 addresses must be written in brackets" },
        { "ssh://[fe80::1", NULL, "'[' without ']'" },
        { "ssh://[fe80::1]x", NULL, "unexpected 'x' after ']'" },
        { "ssh://[zz::1]", NULL, "'[zz::1]' is not an IPv6 address" },
        { "ssh://[fe80::1%25eth0]", NULL, "zone identifiers" },
        { "ssh://ho[st", NULL, "'[' and ']' may only enclose an IPv6 address" },
        { "ssh://1.2.3.256", NULL, "'1.2.3.256' is not an IPv4 address" },
        { "ssh://hv2..example", NULL, "empty label" },
        { "ssh://ho!st", NULL, "host 'ho!st' contains '!'" },
        { "ssh://us$er@hv2", NULL, "user name 'us$er' contains '$'" },
        { "ssh://a@b@hv2", NULL, "more than one '@'" },
};

static void uri_case_free(gpointer p) {
        UriCase *c = p;
        g_free((char *) c->uri);
        g_free((char *) c->canonical);
        g_free(c);
}

/* Cases too long to write out: at and over each length limit. */
static GPtrArray *uri_long_cases(void) {
        GPtrArray *cases = g_ptr_array_new_with_free_func(uri_case_free);
        g_autofree char *path_max = g_strnfill(UNIX_SOCKET_PATH_MAX - 1, 'p');
        g_autofree char *path_over = g_strnfill(UNIX_SOCKET_PATH_MAX, 'p');
        g_autofree char *label_max = g_strnfill(63, 'l');
        g_autofree char *user_max = g_strnfill(64, 'u');
        g_autofree char *uri_over = g_strnfill(DESTINATION_URI_MAX - strlen("ssh://") + 1, 'h');
        UriCase *c;

#define ADD(u, canon, p)                                                                                    \
        c = g_new0(UriCase, 1);                                                                             \
        *c = (UriCase){ u, canon, p };                                                                      \
        g_ptr_array_add(cases, c)
        ADD(g_strconcat("unix:///", path_max, NULL), g_strconcat("unix:///", path_max, NULL), NULL);
        ADD(g_strconcat("unix:///", path_over, NULL), NULL, "a unix socket path holds at most 107");
        ADD(g_strconcat("ssh://", label_max, ".example", NULL),
            g_strconcat("ssh://", label_max, ".example", NULL), NULL);
        ADD(g_strconcat("ssh://", label_max, "l.example", NULL), NULL, "a label longer than 63 characters");
        ADD(g_strconcat("ssh://", user_max, "@hv2", NULL), g_strconcat("ssh://", user_max, "@hv2", NULL),
            NULL);
        ADD(g_strconcat("ssh://", user_max, "u@hv2", NULL), NULL, "is longer than 64 characters");
        ADD(g_strconcat("ssh://", uri_over, NULL), NULL, "is longer than 1024 bytes");
#undef ADD
        return cases;
}

static unsigned n_uri_cases;

static void check_uri_case(const UriCase *c) {
        g_autoptr(Destination) daemon = NULL;
        g_autoptr(GError) daemon_error = NULL;
        g_auto(CtlHost) client = { 0 };
        g_autofree char *client_error = NULL;
        int rd, rc;

        g_test_message("URI '%s'", c->uri);
        n_uri_cases++;
        rd = destination_parse(c->uri, &daemon, &daemon_error);
        rc = ctl_host_parse(c->uri, &client, &client_error);

        if (c->canonical) {
                g_assert_no_error(daemon_error);
                g_assert_null(client_error);
                g_assert_cmpint(rd, ==, 0);
                g_assert_cmpint(rc, ==, 0);
                g_assert_cmpstr(daemon->canonical, ==, c->canonical);
                g_assert_cmpint(client.kind, ==, CTL_HOST_DESTINATION);
                g_assert_cmpstr(client.destination->canonical, ==, c->canonical);
                return;
        }
        g_assert_cmpint(rd, <, 0);
        g_assert_error(daemon_error, VM_ERROR, VM_ERROR_INVALID_DESTINATION);
        g_assert_cmpint(rc, ==, -EINVAL);
        g_assert_nonnull(client_error);
        /* The same parser: the same words, naming the same part. */
        g_assert_cmpstr(client_error, ==, daemon_error->message);
        if (!strstr(daemon_error->message, c->part))
                g_test_message("  '%s' does not name '%s'", daemon_error->message, c->part);
        g_assert_nonnull(strstr(daemon_error->message, c->part));
        g_assert_cmpint(client.kind, ==, CTL_HOST_LOCAL);
}

static void test_uri(void) {
        g_autoptr(GPtrArray) long_cases = uri_long_cases();

        for (size_t i = 0; i < G_N_ELEMENTS(uri_cases); i++)
                check_uri_case(&uri_cases[i]);
        for (size_t i = 0; i < long_cases->len; i++)
                check_uri_case(long_cases->pdata[i]);
        g_test_message("%u URI cases", n_uri_cases);
}

/* ---- migrate's options: ctl_migrate_arg() and migrate_options_parse() ---- */

typedef struct OptionCase {
        const char *argv[4]; /* vmigratectl migrate's options, "--flag[=value]" */
        const char *dict;    /* the a{sv} a Migrate call would carry to mean the same */
        const char *flag;    /* refused: the flag vmigratectl names; NULL: accepted */
        const char *key;     /* refused: the option vmigrated names */
} OptionCase;

#define OK(d, ...)                                                                                          \
        { { __VA_ARGS__ }, d, NULL, NULL }
#define BAD(f, k, d, ...)                                                                                   \
        { { __VA_ARGS__ }, d, f, k }

/*
 * Each flag of vmigratectl migrate that carries a Migrate option, with good
 * and bad values. A bad value's a{sv} is what reaches vmigrated when the
 * same thing is written on the bus: the number out of range, or, where the
 * command line's text is no number at all, the text itself (a wrong type).
 */
static const OptionCase option_cases[] = {
        /* booleans: the flag is the value */
        OK("{'live': <true>}", "--live"),
        OK("{'live': <false>}", "--no-live"),
        OK("{'live': <false>}", "--live", "--no-live"),
        OK("{'offline': <true>}", "--offline"),
        OK("{'paused': <true>}", "--paused"),
        OK("{'paused': <true>}", "--suspend"),
        OK("{'persist': <true>}", "--persist"),
        OK("{'persist': <true>}", "--persistent"),
        OK("{'persist': <false>}", "--no-persist"),
        OK("{'undefine-source': <true>}", "--undefine-source"),
        OK("{'undefine-source': <true>}", "--undefinesource"),
        OK("{'auto-converge': <true>}", "--auto-converge"),
        OK("{'auto-converge': <false>}", "--no-auto-converge"),
        OK("{'policy': <'minimal-downtime'>}", "--policy=minimal-downtime"),
        BAD("policy", "policy", "{'policy': <'../x'>}", "--policy=../x"),
        BAD("policy", "policy", "{'policy': <''>}", "--policy="),
        OK("{'tunnelled': <true>}", "--tunnelled"),
        OK("{'tls': <true>}", "--tls"),
        OK("{'tls': <false>}", "--no-tls"),
        OK("{'abort-on-error': <true>}", "--abort-on-error"),
        OK("{'unsafe': <true>}", "--unsafe"),
        /* compression s: none zstd zlib xbzrle */
        OK("{'compression': <'none'>}", "--compression=none"),
        OK("{'compression': <'zstd'>}", "--compression=zstd"),
        OK("{'compression': <'zlib'>}", "--compression=zlib"),
        OK("{'compression': <'xbzrle'>}", "--compression=xbzrle"),
        OK("{'compression': <'xbzrle'>}", "--compressed"),
        BAD("compression", "compression", "{'compression': <'lz4'>}", "--compression=lz4"),
        BAD("compression", "compression", "{'compression': <'ZSTD'>}", "--compression=ZSTD"),
        BAD("compression", "compression", "{'compression': <''>}", "--compression="),
        /* parallel-connections u: 1..255 */
        OK("{'parallel-connections': <uint32 1>}", "--parallel-connections=1"),
        OK("{'parallel-connections': <uint32 255>}", "--parallel-connections=255"),
        OK("{'parallel-connections': <uint32 2>}", "--parallel"),
        OK("{'parallel-connections': <uint32 8>}", "--parallel", "--parallel-connections=8"),
        BAD("parallel-connections", "parallel-connections", "{'parallel-connections': <uint32 0>}",
            "--parallel-connections=0"),
        BAD("parallel-connections", "parallel-connections", "{'parallel-connections': <uint32 256>}",
            "--parallel-connections=256"),
        BAD("parallel-connections", "parallel-connections", "{'parallel-connections': <'four'>}",
            "--parallel-connections=four"),
        BAD("parallel-connections", "parallel-connections", "{'parallel-connections': <uint64 4294967296>}",
            "--parallel-connections=4294967296"),
        /* copy-storage s: none all incremental */
        OK("{'copy-storage': <'none'>}", "--copy-storage=none"),
        OK("{'copy-storage': <'all'>}", "--copy-storage=all"),
        OK("{'copy-storage': <'incremental'>}", "--copy-storage=incremental"),
        BAD("copy-storage", "copy-storage", "{'copy-storage': <'some'>}", "--copy-storage=some"),
        /* reuse-images b: needs copy-storage 'all' */
        OK("{'copy-storage': <'all'>, 'reuse-images': <true>}", "--copy-storage=all", "--reuse-images"),
        OK("{'copy-storage': <'incremental'>, 'reuse-images': <true>}", "--copy-storage=incremental",
           "--reuse-images"),
        /* bandwidth, postcopy-bandwidth t: bytes/s, at least 1 */
        OK("{'bandwidth': <uint64 104857600>}", "--bandwidth=100M"),
        OK("{'bandwidth': <uint64 1000000000>}", "--bandwidth=1GB"),
        OK("{'bandwidth': <uint64 100000000>}", "--bandwidth=800Mbit/s"),
        OK("{'bandwidth': <uint64 1>}", "--bandwidth=1"),
        BAD("bandwidth", "bandwidth", "{'bandwidth': <uint64 0>}", "--bandwidth=0"),
        BAD("bandwidth", "bandwidth", "{'bandwidth': <'12Q'>}", "--bandwidth=12Q"),
        BAD("bandwidth", "bandwidth", "{'bandwidth': <int64 -5>}", "--bandwidth=-5"),
        OK("{'postcopy-bandwidth': <uint64 536870912>}", "--postcopy-bandwidth=512MiB/s"),
        BAD("postcopy-bandwidth", "postcopy-bandwidth", "{'postcopy-bandwidth': <uint64 0>}",
            "--postcopy-bandwidth=0"),
        /* QEMU's newer features: postcopy-preempt b, zero-page-detection s (none legacy
         * multifd), zero-copy-send b (virsh's --zerocopy), switchover-ack b,
         * switchover-bandwidth t (bytes/s, at least 1) */
        OK("{'postcopy-preempt': <true>}", "--postcopy-preempt"),
        OK("{'postcopy-preempt': <false>}", "--no-postcopy-preempt"),
        OK("{'zero-page-detection': <'multifd'>}", "--zero-page-detection=multifd"),
        OK("{'zero-page-detection': <'none'>}", "--zero-page-detection=none"),
        BAD("zero-page-detection", "zero-page-detection", "{'zero-page-detection': <'smart'>}",
            "--zero-page-detection=smart"),
        OK("{'zero-copy-send': <true>}", "--zero-copy-send"),
        OK("{'zero-copy-send': <true>}", "--zerocopy"),
        OK("{'switchover-ack': <true>}", "--switchover-ack"),
        OK("{'switchover-bandwidth': <uint64 1073741824>}", "--switchover-bandwidth=1GiB/s"),
        BAD("switchover-bandwidth", "switchover-bandwidth", "{'switchover-bandwidth': <uint64 0>}",
            "--switchover-bandwidth=0"),
        /* max-downtime t: 1..2000000 ms */
        OK("{'max-downtime': <uint64 1>}", "--max-downtime=1"),
        OK("{'max-downtime': <uint64 2000000>}", "--max-downtime=2000000"),
        OK("{'max-downtime': <uint64 300>}", "--downtime=300"),
        BAD("max-downtime", "max-downtime", "{'max-downtime': <uint64 2000001>}", "--max-downtime=2000001"),
        BAD("max-downtime", "max-downtime", "{'max-downtime': <uint64 0>}", "--max-downtime=0"),
        BAD("max-downtime", "max-downtime", "{'max-downtime': <1.5>}", "--max-downtime=1.5"),
        BAD("downtime", "max-downtime", "{'max-downtime': <uint64 5000000>}", "--downtime=5000000"),
        /* destination-name s: a domain name */
        OK("{'destination-name': <'vm2'>}", "--destination-name=vm2"),
        OK("{'destination-name': <'vm3'>}", "--dname=vm3"),
        BAD("destination-name", "destination-name", "{'destination-name': <''>}", "--destination-name="),
        BAD("destination-name", "destination-name", "{'destination-name': <'.x'>}", "--destination-name=.x"),
        BAD("destination-name", "destination-name", "{'destination-name': <'a/b'>}",
            "--destination-name=a/b"),
        BAD("dname", "destination-name", "{'destination-name': <'-x'>}", "--dname=-x"),
        /* data-uri s: tcp://host:port */
        OK("{'data-uri': <'tcp://10.0.0.2:49152'>}", "--data-uri=tcp://10.0.0.2:49152"),
        OK("{'data-uri': <'tcp://[FE80::1]:5000'>}", "--data-uri=tcp://[FE80::1]:5000"),
        OK("{'data-uri': <'tcp://host-b:49152'>}", "--migrateuri=tcp://host-b:49152"),
        BAD("data-uri", "data-uri", "{'data-uri': <'ssh://h:1'>}", "--data-uri=ssh://h:1"),
        BAD("data-uri", "data-uri", "{'data-uri': <'tcp://h'>}", "--data-uri=tcp://h"),
        BAD("data-uri", "data-uri", "{'data-uri': <'tcp://h:0'>}", "--data-uri=tcp://h:0"),
        BAD("migrateuri", "data-uri", "{'data-uri': <'tcp://h:99999'>}", "--migrateuri=tcp://h:99999"),
        /* listen-address s: an IP address */
        OK("{'listen-address': <'10.0.0.2'>}", "--listen-address=10.0.0.2"),
        OK("{'listen-address': <'::1'>}", "--listen-address=::1"),
        BAD("listen-address", "listen-address", "{'listen-address': <'host-b'>}", "--listen-address=host-b"),
        BAD("listen-address", "listen-address", "{'listen-address': <'[::1]'>}", "--listen-address=[::1]"),
        /* post-copy switches */
        OK("{'postcopy': <true>}", "--postcopy"),
        OK("{'postcopy': <true>}", "--postcopy-after-precopy"),
        OK("{'postcopy': <true>, 'postcopy-resume': <true>}", "--postcopy-resume"),
        /* timeout t: 1..604800 s; timeout-action s: abort postcopy suspend */
        OK("{'timeout': <uint64 60>}", "--timeout=60"),
        OK("{'timeout': <uint64 604800>}", "--timeout=604800"),
        BAD("timeout", "timeout", "{'timeout': <uint64 0>}", "--timeout=0"),
        BAD("timeout", "timeout", "{'timeout': <uint64 604801>}", "--timeout=604801"),
        BAD("timeout", "timeout", "{'timeout': <1.5>}", "--timeout=1.5"),
        OK("{'timeout': <uint64 60>, 'timeout-action': <'abort'>}", "--timeout=60",
           "--timeout-action=abort"),
        OK("{'timeout': <uint64 60>, 'timeout-action': <'suspend'>}", "--timeout=60",
           "--timeout-action=suspend"),
        OK("{'timeout': <uint64 60>, 'timeout-action': <'postcopy'>, 'postcopy': <true>}", "--timeout=60",
           "--timeout-action=postcopy"),
        OK("{'timeout': <uint64 60>, 'timeout-action': <'postcopy'>, 'postcopy': <true>}", "--timeout=60",
           "--timeout-postcopy"),
        OK("{'timeout': <uint64 5>, 'timeout-action': <'suspend'>}", "--timeout=5", "--timeout-suspend"),
        BAD("timeout-action", "timeout-action", "{'timeout': <uint64 60>, 'timeout-action': <'pause'>}",
            "--timeout=60", "--timeout-action=pause"),
        BAD("timeout-action", "timeout-action", "{'timeout': <uint64 60>, 'timeout-action': <''>}",
            "--timeout=60", "--timeout-action="),
};

/*
 * Flags whose value this table cannot hold: --destination-xml=FILE (and
 * virsh's --xml) carry a file, which vmigratectl reads when it migrates,
 * with the reader 'define' uses, and sends as is; that reader refuses what
 * the option refuses (empty, over 1 MiB) before vmigrated could.
 */
static const char *const flags_not_in_table[] = { "destination-xml", "xml" };

/* What vmigratectl does with migrate's options (run() in vmigratectl.c):
 * --postcopy and --timeout are options of other commands too, copied into
 * the switches once the command is migrate. */
static GVariant *client_options(const char *const *argv, char **ret_error) {
        g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func(g_free);
        g_auto(CtlMigrateArgs) a = { 0 };

        for (size_t i = 0; argv[i]; i++) {
                char *flag = g_strdup(argv[i] + 2), *eq = strchr(flag, '=');
                const char *value = NULL;

                g_assert_true(g_str_has_prefix(argv[i], "--"));
                g_ptr_array_add(kept, flag); /* the switches point into it */
                if (eq) {
                        *eq = '\0';
                        value = eq + 1;
                }
                if (g_str_equal(flag, "postcopy"))
                        a.switches.postcopy = true;
                else if (g_str_equal(flag, "timeout"))
                        a.switches.timeout = value;
                else if (ctl_migrate_arg(&a, flag, value, ret_error) < 0)
                        return NULL;
        }
        if (!a.options)
                a.options = g_variant_dict_new(NULL);
        if (ctl_migrate_switches_apply(&a.switches, a.options, ret_error) < 0)
                return NULL;
        return g_variant_ref_sink(g_variant_dict_end(a.options));
}

/* a{sv} equality whatever the order of the keys (a GVariantDict ends in hash order). */
static bool vardict_equal(GVariant *a, GVariant *b) {
        GVariantIter iter;
        const char *key;
        GVariant *value;

        if (g_variant_n_children(a) != g_variant_n_children(b))
                return false;
        g_variant_iter_init(&iter, a);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) mine = value;
                g_autoptr(GVariant) theirs = g_variant_lookup_value(b, key, NULL);

                if (!theirs || !g_variant_equal(mine, theirs))
                        return false;
        }
        return true;
}

static bool flag_in_cases(const char *flag) {
        for (size_t i = 0; i < G_N_ELEMENTS(option_cases); i++)
                for (size_t j = 0; option_cases[i].argv[j]; j++) {
                        const char *arg = option_cases[i].argv[j] + 2;
                        size_t n = strcspn(arg, "=");

                        if (strlen(flag) == n && strncmp(arg, flag, n) == 0)
                                return true;
                }
        return false;
}

static void test_options(void) {
        unsigned good = 0, bad = 0;

        for (size_t i = 0; i < G_N_ELEMENTS(option_cases); i++) {
                const OptionCase *c = &option_cases[i];
                g_autofree char *args = g_strjoinv(" ", (char **) c->argv);
                g_autoptr(GVariant) dict = g_variant_ref_sink(g_variant_new_parsed(c->dict));
                g_autoptr(MigrateOptions) daemon = NULL;
                g_autoptr(GError) daemon_error = NULL;
                g_autofree char *client_error = NULL;
                g_autoptr(GVariant) client = NULL;
                int rd;

                g_test_message("%s ~ %s", args, c->dict);
                rd = migrate_options_parse(dict, &daemon, &daemon_error);
                client = client_options(c->argv, &client_error);

                if (!c->flag) {
                        good++;
                        g_assert_no_error(daemon_error);
                        g_assert_cmpint(rd, ==, 0);
                        if (!client)
                                g_test_message("  vmigratectl: %s", client_error);
                        g_assert_nonnull(client);
                        if (!vardict_equal(client, dict)) {
                                g_autofree char *got = g_variant_print(client, true);
                                g_test_message("  vmigratectl sends %s", got);
                                g_test_fail();
                        }
                        continue;
                }

                bad++;
                g_assert_cmpint(rd, <, 0);
                g_assert_error(daemon_error, VM_ERROR, VM_ERROR_INVALID_OPTION);
                g_assert_null(client);
                g_assert_nonnull(client_error);
                g_test_message("  vmigrated: %s", daemon_error->message);
                g_test_message("  vmigratectl: %s", client_error);
                {
                        g_autofree char *key = g_strdup_printf("option '%s'", c->key);
                        g_autofree char *flag = g_strdup_printf("invalid --%s", c->flag);
                        g_autofree char *same =
                                g_strdup_printf("invalid --%s: %s", c->flag, daemon_error->message);
                        g_autofree char *syntax = g_strdup_printf("invalid --%s '", c->flag);

                        g_assert_nonnull(strstr(daemon_error->message, key));
                        /* Refused by vmigrated's parser on the client too: the same
                         * words. Or the text is no value of the option's type at
                         * all, which only the client sees as text. */
                        if (!g_str_equal(client_error, same))
                                g_assert_true(g_str_has_prefix(client_error, syntax));
                        g_assert_true(g_str_has_prefix(client_error, flag));
                }
        }

        /* Each of migrate's flags has its cases; one added later must get some. */
        for (size_t i = 0; i < ctl_migrate_flags_count(); i++) {
                struct option o = ctl_migrate_flag_getopt(i, 0);
                bool exempt = false;

                for (size_t j = 0; j < G_N_ELEMENTS(flags_not_in_table); j++)
                        exempt = exempt || g_str_equal(o.name, flags_not_in_table[j]);
                if (!exempt && !flag_in_cases(o.name)) {
                        g_test_message("--%s has no case", o.name);
                        g_test_fail();
                }
        }
        g_assert_true(flag_in_cases("postcopy") && flag_in_cases("timeout"));
        g_test_message("%u option cases: %u accepted, %u refused", good + bad, good, bad);
}

/* --help states the ranges; they must be the table's. */
static void test_help_ranges(void) {
        static const char *const keys[] = { "parallel-connections", "max-downtime", "timeout" };
        const char *ctl = g_getenv("VMIGRATECTL");
        const char *argv[] = { ctl, "migrate", "--help", NULL };
        g_autofree char *out = NULL;
        g_autoptr(GError) error = NULL;
        int status;

        if (!ctl) {
                g_test_skip("VMIGRATECTL is not set");
                return;
        }
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                                   NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                const MigrateOptionInfo *info = migrate_option_info(keys[i]);
                g_autofree char *range =
                        g_strdup_printf("(%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, info->min, info->max);

                if (!strstr(out, range))
                        g_test_message("'vmigratectl migrate --help' does not say %s) for %s", range,
                                       keys[i]);
                g_assert_nonnull(strstr(out, range));
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/shared-parsing/uri", test_uri);
        g_test_add_func("/shared-parsing/options", test_options);
        g_test_add_func("/shared-parsing/help-ranges", test_help_ranges);
        return g_test_run();
}
