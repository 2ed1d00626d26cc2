/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "uri.h"

typedef struct Accepted {
        const char *uri;
        DestinationKind kind;
        const char *user, *host, *path;
        uint16_t port;
        const char *canonical;
        const char *sd_bus; /* host for sd_bus_open_system_remote, or the address for unix */
} Accepted;

static const Accepted accepted[] = {
        { "ssh://host", DESTINATION_SSH, NULL, "host", NULL, 0, "ssh://host", "host" },
        { "ssh://host/", DESTINATION_SSH, NULL, "host", NULL, 0, "ssh://host", "host" },
        { "ssh://admin@host.example.com:2222", DESTINATION_SSH, "admin", "host.example.com", NULL, 2222,
          "ssh://admin@host.example.com:2222", "admin@host.example.com:2222" },
        { "SSH://Root@Host-1.Example.COM", DESTINATION_SSH, "Root", "host-1.example.com", NULL, 0,
          "ssh://Root@host-1.example.com", "Root@host-1.example.com" },
        { "ssh://192.168.1.10:22", DESTINATION_SSH, NULL, "192.168.1.10", NULL, 22, "ssh://192.168.1.10:22",
          "192.168.1.10:22" },
        { "ssh://[FE80::0:1]", DESTINATION_SSH, NULL, "fe80::1", NULL, 0, "ssh://[fe80::1]", "[fe80::1]" },
        { "ssh://u@[2001:db8::2]:65535", DESTINATION_SSH, "u", "2001:db8::2", NULL, 65535,
          "ssh://u@[2001:db8::2]:65535", "u@[2001:db8::2]:65535" },
        { "ssh://my_alias", DESTINATION_SSH, NULL, "my_alias", NULL, 0, "ssh://my_alias", "my_alias" },
        { "ssh://a.b-c.d_e@h", DESTINATION_SSH, "a.b-c.d_e", "h", NULL, 0, "ssh://a.b-c.d_e@h",
          "a.b-c.d_e@h" },
        /* Bare: ssh as root. */
        { "host", DESTINATION_SSH, "root", "host", NULL, 0, "ssh://root@host", "root@host" },
        { "backup@host:2200", DESTINATION_SSH, "backup", "host", NULL, 2200, "ssh://backup@host:2200",
          "backup@host:2200" },
        { "[::1]:22", DESTINATION_SSH, "root", "::1", NULL, 22, "ssh://root@[::1]:22", "root@[::1]:22" },
        { "ssh:2222", DESTINATION_SSH, "root", "ssh", NULL, 2222, "ssh://root@ssh:2222", "root@ssh:2222" },
        { "unix:///run/dbus/system_bus_socket", DESTINATION_UNIX, NULL, NULL, "/run/dbus/system_bus_socket",
          0, "unix:///run/dbus/system_bus_socket", "unix:path=/run/dbus/system_bus_socket" },
        { "UNIX:///tmp/a,b=c;d", DESTINATION_UNIX, NULL, NULL, "/tmp/a,b=c;d", 0, "unix:///tmp/a,b=c;d",
          "unix:path=/tmp/a%2cb%3dc%3bd" },
};

static void test_accepted(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(accepted); i++) {
                const Accepted *a = &accepted[i];
                g_autoptr(Destination) d = NULL, again = NULL;
                g_autoptr(GError) error = NULL;
                g_autofree char *sd_bus = NULL;

                g_test_message("%s", a->uri);
                g_assert_cmpint(destination_parse(a->uri, &d, &error), ==, 0);
                g_assert_no_error(error);
                if (!d)
                        continue;
                g_assert_cmpint(d->kind, ==, a->kind);
                g_assert_cmpstr(d->user, ==, a->user);
                g_assert_cmpstr(d->host, ==, a->host);
                g_assert_cmpstr(d->path, ==, a->path);
                g_assert_cmpuint(d->port, ==, a->port);
                g_assert_cmpstr(d->canonical, ==, a->canonical);
                sd_bus = d->kind == DESTINATION_SSH ? destination_to_sd_bus_host(d)
                                                    : destination_to_sd_bus_address(d);
                g_assert_cmpstr(sd_bus, ==, a->sd_bus);
                g_assert_null(d->kind == DESTINATION_SSH ? destination_to_sd_bus_address(d)
                                                         : destination_to_sd_bus_host(d));

                /* The canonical form is a fixed point. */
                g_assert_cmpint(destination_parse(d->canonical, &again, NULL), ==, 0);
                if (again)
                        g_assert_cmpstr(again->canonical, ==, d->canonical);
        }
}

/* The tunnel's ssh command line: options before "--", the host alone
 * after it, then the remote command; nothing for unix destinations. */
static void test_ssh_argv(void) {
        static const struct {
                const char *uri;
                const char *argv;
        } cases[] = {
                { "ssh://host", "ssh -xT -o BatchMode=yes -o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com -- host cmd a" },
                { "admin@h.example.com:2222", "ssh -xT -o BatchMode=yes -o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com -p 2222 -l admin -- h.example.com cmd a" },
                { "ssh://u@[2001:db8::2]:22", "ssh -xT -o BatchMode=yes -o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com -p 22 -l u -- 2001:db8::2 cmd a" },
        };
        const char *const remote[] = { "cmd", "a", NULL };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Destination) d = NULL;
                g_assert_cmpint(destination_parse(cases[i].uri, &d, NULL), ==, 0);
                g_auto(GStrv) argv = destination_ssh_argv(d, SSH_SHARE_NONE, NULL, remote);
                g_autofree char *joined = g_strjoinv(" ", argv);
                g_assert_cmpstr(joined, ==, cases[i].argv);
        }
        g_autoptr(Destination) u = NULL;
        g_assert_cmpint(destination_parse("unix:///run/x", &u, NULL), ==, 0);
        g_assert_null(destination_ssh_argv(u, SSH_SHARE_NONE, NULL, remote));

        /* Sharing: the master's socket, and the one that joins it. */
        g_autoptr(Destination) h = NULL;
        g_assert_cmpint(destination_parse("ssh://host", &h, NULL), ==, 0);
        g_auto(GStrv) master = destination_ssh_argv(h, SSH_SHARE_MASTER, "/run/v/ssh/1", remote);
        g_autofree char *m = g_strjoinv(" ", master);
        g_assert_nonnull(strstr(m, " -o ControlMaster=yes -o ControlPersist=no -S /run/v/ssh/1 -- host cmd a"));
        g_auto(GStrv) join = destination_ssh_argv(h, SSH_SHARE_JOIN, "/run/v/ssh/1", remote);
        g_autofree char *j = g_strjoinv(" ", join);
        g_assert_nonnull(strstr(j, " -o ControlMaster=no -o ControlPersist=no -S /run/v/ssh/1 -- host cmd a"));
}

typedef struct Refused {
        const char *uri;
        const char *part; /* a substring the message must contain */
} Refused;

static const Refused refused[] = {
        { "", "empty" },
        { "http://host", "unknown scheme 'http'" },
        { "qemu+ssh://host/system", "unknown scheme 'qemu+ssh'" },
        { "ssh://", "host is empty" },
        { "ssh://user@", "host is empty" },
        { "ssh://@host", "user name before '@' is empty" },
        { "ssh://a@b@host", "more than one '@'" },
        { "ssh://user:secret@host", "passwords are not accepted" },
        { "ssh://-oProxyCommand=sh@host", "user name '-oProxyCommand=sh' starts with '-'" },
        { "ssh://-oProxyCommand=sh", "host '-oProxyCommand=sh' starts with '-'" },
        { "-oProxyCommand=x", "starts with '-'" },
        { "ssh://us$er@host", "user name 'us$er' contains '$'" },
        { "ssh://host:0", "port 0 is out of range" },
        { "ssh://host:65536", "port 65536 is out of range" },
        { "ssh://host:99999999999999999999", "out of range" },
        { "ssh://host:", "port after ':' is empty" },
        { "ssh://host:ab", "port 'ab' is not a number" },
        { "ssh://host:-1", "port '-1' is not a number" },
        { "ssh://host:+22", "port '+22' is not a number" },
        { "ssh://host/system", "no path ('/system')" },
        { "ssh://host//", "no path" },
        { "ssh://host?x=1", "query" },
        { "ssh://host#frag", "fragment" },
        { "ssh://ho st", "space at position 9" },
        { "ssh://host\t", "space" },
        { "ssh://host\n", "control character at position 11" },
        { "ssh://hóst", "non-ASCII" },
        { "ssh://fe80::1", "IPv6 addresses must be written in brackets" },
        { "ssh://[fe80::1", "'[' without ']'" },
        { "ssh://[fe80::1]x", "unexpected 'x' after ']'" },
        { "ssh://[nothex]", "'[nothex]' is not an IPv6 address" },
        { "ssh://[fe80::1%25eth0]", "zone identifiers" },
        { "ssh://ho[st", "'[' and ']' may only enclose" },
        { "ssh://1.2.3", "'1.2.3' is not an IPv4 address" },
        { "ssh://1.2.3.256", "'1.2.3.256' is not an IPv4 address" },
        { "ssh://host..example", "empty label" },
        { "ssh://host.", "empty label" },
        { "ssh://.host", "empty label" },
        { "ssh://ho%73t", "contains '%'" },
        { "ssh://ho!st", "contains '!'" },
        { "ssh://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
          "label longer than 63" },
        { "unix://", "socket path is missing" },
        { "unix://localhost/run/x", "unix URIs take no host ('localhost')" },
        { "unix://run/x", "take no host ('run')" },
        { "unix:/run/x", "unix:///absolute/path" },
        { "unix:run", "unix:///absolute/path" },
        { "ssh:host", "ssh://[user@]host[:port]" },
        { "unix:///run/my%20socket", "literally" },
        { "unix:///run/my socket", "space" },
        { "unix:///run/x?y", "query" },
        { "unix:///run/dir/", "ends in '/'" },
        { "unix:///", "is '/'" },
        { "host/path", "no path" },
        { "1http://x", "no path" },
};

static void test_refused(void) {
        g_autofree char *too_long_path = NULL, *too_long_uri = NULL, *long_user = NULL;
        g_autofree char *ok_path = NULL, *ok_path_uri = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
                g_autoptr(Destination) d = NULL;
                g_autoptr(GError) error = NULL;

                g_test_message("%s", refused[i].uri);
                g_assert_cmpint(destination_parse(refused[i].uri, &d, &error), ==, -EINVAL);
                g_assert_null(d);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_DESTINATION);
                if (error) {
                        g_test_message("  -> %s", error->message);
                        g_assert_true(strstr(error->message, refused[i].part));
                        g_assert_true(g_utf8_validate(error->message, -1, NULL));
                }
        }

        /* 107 bytes is the most a socket address holds. */
        ok_path = g_strnfill(UNIX_SOCKET_PATH_MAX, 'x');
        ok_path[0] = '/';
        ok_path_uri = g_strconcat("unix://", ok_path, NULL);
        too_long_path = g_strconcat("unix://", ok_path, "y", NULL);
        {
                g_autoptr(Destination) d = NULL;
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(destination_parse(ok_path_uri, &d, NULL), ==, 0);
                g_assert_cmpint(destination_parse(too_long_path, NULL, &error), ==, -EINVAL);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_DESTINATION);
                if (error)
                        g_assert_true(strstr(error->message,
                                             "108 bytes long; a unix socket path holds at most 107"));
        }
        too_long_uri = g_strnfill(DESTINATION_URI_MAX + 1, 'a');
        {
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(destination_parse(too_long_uri, NULL, &error), ==, -EINVAL);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_DESTINATION);
                if (error) {
                        g_assert_true(strstr(error->message, "longer than 1024 bytes"));
                        /* The quoted URI is cut short. */
                        g_assert_cmpuint(strlen(error->message), <, 200);
                }
        }
        long_user = g_strdup_printf("ssh://%s@host", too_long_uri + DESTINATION_URI_MAX - 65);
        {
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(destination_parse(long_user, NULL, &error), ==, -EINVAL);
                if (error)
                        g_assert_true(strstr(error->message, "longer than 64"));
        }
        {
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(destination_parse(NULL, NULL, &error), ==, -EINVAL);
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_DESTINATION);
        }
}

static void test_data_uri(void) {
        static const struct {
                const char *uri, *host;
                uint16_t port;
        } ok[] = {
                { "tcp://10.0.0.2:49152", "10.0.0.2", 49152 },
                { "TCP://Dest.Example:1", "dest.example", 1 },
                { "tcp://[fd00::2]:49153", "fd00::2", 49153 },
        };
        static const Refused bad[] = {
                { "", "empty" },
                { "ssh://host:22", "only tcp://host:port" },
                { "rdma://host:1", "only tcp://host:port" },
                { "tcp://host", "port is missing" },
                { "tcp://host:0", "port 0 is out of range" },
                { "tcp://host:70000", "out of range" },
                { "tcp://user@host:1", "user name" },
                { "tcp://host:1/x", "path is not allowed" },
                { "tcp://host:1?x", "query" },
                { "tcp://:1", "host is empty" },
                { "tcp://-host:1", "starts with '-'" },
                { "tcp://fd00::2:1", "brackets" },
                { "tcp://ho st:1", "space" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
                g_autofree char *host = NULL;
                g_autoptr(GError) error = NULL;
                uint16_t port = 0;

                g_assert_cmpint(data_uri_parse(ok[i].uri, &host, &port, &error), ==, 0);
                g_assert_no_error(error);
                g_assert_cmpstr(host, ==, ok[i].host);
                g_assert_cmpuint(port, ==, ok[i].port);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *host = NULL;
                g_autoptr(GError) error = NULL;
                uint16_t port = 7;

                g_test_message("%s", bad[i].uri);
                g_assert_cmpint(data_uri_parse(bad[i].uri, &host, &port, &error), ==, -EINVAL);
                g_assert_null(host);
                g_assert_cmpuint(port, ==, 7); /* untouched on failure */
                g_assert_error(error, VM_ERROR, VM_ERROR_INVALID_OPTION);
                if (error) {
                        g_test_message("  -> %s", error->message);
                        g_assert_true(strstr(error->message, "option 'data-uri'"));
                        g_assert_true(strstr(error->message, bad[i].part));
                }
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_set_nonfatal_assertions();
        g_test_add_func("/uri/destination/accepted", test_accepted);
        g_test_add_func("/uri/destination/refused", test_refused);
        g_test_add_func("/uri/destination/ssh-argv", test_ssh_argv);
        g_test_add_func("/uri/data-uri", test_data_uri);
        return g_test_run();
}
