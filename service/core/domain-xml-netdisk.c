/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network disks, as libvirt writes them:
 *
 *   <disk type='network' device='disk'>
 *     <driver name='qemu' type='raw'/>
 *     <source protocol='nbd' name='export'> <host name='nbd.lan' port='10809'/> </source>
 *     <source protocol='nbd'> <host transport='unix' socket='/run/nbd.sock'/> </source>
 *     <source protocol='iscsi' name='iqn.2013-07.com.example:store/1'> <host name='san' port='3260'/>
 * </source> <source protocol='rbd' name='pool/image'> <host name='mon1' port='6789'/>* </source> <target
 * dev='vdb' bus='virtio'/>
 *   </disk>
 *
 * A network disk is shared by nature: both hosts of a migration reach the
 * same server, so copy-storage never copies it, and a dry run checks
 * that the destination can reach the server.
 *
 * Refused, with the reason: credentials (<auth>: they live in libvirt's
 * secret store, which vmigrate does not have; rbd reads its keyring from
 * /etc/ceph, an iSCSI target can allow the initiator without CHAP), TLS to
 * the server, other protocols, and the protocol-specific extras
 * (<snapshot>, <config>, <initiator>, <reconnect>, …).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "domain-xml-netdisk.h"
#include "domain-xml-util.h"
#include "errors.h"
#include "text.h"

#define NBD_EXPORT_MAX 255

void disk_host_free(DomainDiskHost *h) {
        if (!h)
                return;
        g_free(h->name);
        g_free(h->socket);
        g_free(h);
}

unsigned disk_network_default_port(const char *protocol) {
        if (g_strcmp0(protocol, "nbd") == 0)
                return 10809;
        if (g_strcmp0(protocol, "iscsi") == 0)
                return 3260;
        return 0;
}

/* Host names, IPv4 and IPv6 addresses (libvirt writes those bare: '::1'). */
static bool host_name_is_valid(const char *s) {
        return is_token(s, 253, ".-_:") && s[0] != '-' && s[0] != '.';
}

/* A pool or image name of ceph: no '/', '@' (snapshot) or ':' (options). */
static bool rbd_part_is_valid(const char *s) {
        return is_token(s, 128, "._-");
}

static int parse_host(xmlNode *node, const char *protocol, DomainDiskDef *disk, GError **error) {
        g_autoptr(DomainDiskHost) h = g_new0(DomainDiskHost, 1);
        g_autofree char *transport = NULL, *port = NULL;
        int r;

        if ((r = check_empty(node, STRV("name", "port", "transport", "socket"), error)) < 0)
                return r;
        transport = get_attr(node, "transport");
        if (transport &&
            (r = check_attr_choice(node, "transport", transport,
                                   g_str_equal(protocol, "nbd") ? "transport; nbd runs over 'tcp' or 'unix'"
                                                                : "transport; use 'tcp'",
                                   g_str_equal(protocol, "nbd") ? STRV("tcp", "unix") : STRV("tcp"),
                                   error)) < 0)
                return r;

        if (g_strcmp0(transport, "unix") == 0) {
                g_autofree char *name = get_attr(node, "name");
                port = get_attr(node, "port");
                if (name || port)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<host transport='unix'>: a unix socket has no 'name' or 'port'; "
                                "give only socket='/path'");
                if ((r = require_attr(node, "socket", "(the server's unix socket, an absolute path)",
                                      &h->socket, error)) < 0 ||
                    (r = check_path("<host socket>", h->socket, error)) < 0)
                        return r;
        } else {
                g_autofree char *socket = get_attr(node, "socket");
                if (socket)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<host socket=…> needs transport='unix'; add it, or give name and "
                                "port for TCP");
                if ((r = require_attr(node, "name", "(the server's host name or address)", &h->name,
                                      error)) < 0)
                        return r;
                if (!host_name_is_valid(h->name)) {
                        g_autofree char *q = text_quote(h->name, -1);
                        return vm_error_set(error, VM_ERROR_INVALID_XML,
                                            "<host name='%s'>: not a host name or address", q);
                }
                port = get_attr(node, "port");
                if (port) {
                        uint64_t v;
                        if ((r = parse_u64("<host port>", port, &v, error)) < 0)
                                return r;
                        if (v < 1 || v > 65535)
                                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                                    "<host port='%" PRIu64 "'>: a port is 1 to 65535", v);
                        h->port = (unsigned) v;
                }
        }
        if (!disk->source_hosts)
                disk->source_hosts = g_ptr_array_new_with_free_func((GDestroyNotify) disk_host_free);
        if (disk->source_hosts->len >= DOMAIN_DISK_HOSTS_MAX)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<disk><source>: more than %d <host> elements", DOMAIN_DISK_HOSTS_MAX);
        g_ptr_array_add(disk->source_hosts, g_steal_pointer(&h));
        return 0;
}

int refuse_disk_auth(xmlNode *node, GError **error) {
        return vm_error_set(
                error, VM_ERROR_INVALID_XML,
                "<auth> in <%s> is not supported by vmigrate: the secret it names lives in libvirt's "
                "secret store, which vmigrate does not have; remove it (rbd reads its key from "
                "/etc/ceph's keyring on each host; let the iSCSI target accept the hosts' initiator "
                "names without CHAP)",
                node->parent ? node_name(node->parent) : "disk");
}

static int check_name(const char *protocol, const char *name, GError **error) {
        g_autofree char *q = text_quote(name ? name : "", -1);

        if (g_str_equal(protocol, "nbd")) {
                if (name && (strlen(name) > NBD_EXPORT_MAX || has_control_chars(name) || !*name))
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<source protocol='nbd' name='%s'>: an export name is 1-%d bytes "
                                "without control characters",
                                q, NBD_EXPORT_MAX);
                return 0;
        }
        if (!name)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<source protocol='%s'>: attribute 'name' is required (%s)", protocol,
                                    g_str_equal(protocol, "iscsi") ? "the target's IQN and LUN: 'iqn…/1'"
                                                                   : "'pool/image'");
        if (g_str_equal(protocol, "iscsi")) {
                const char *slash = strrchr(name, '/');
                g_autofree char *iqn = slash ? g_strndup(name, slash - name) : g_strdup(name);
                bool ok = is_token(iqn, 223, ".:-_") &&
                        (!slash ||
                         (slash[1] && strspn(slash + 1, "0123456789") == strlen(slash + 1) &&
                          strlen(slash + 1) <= 5));
                if (!ok)
                        return vm_error_set(
                                error, VM_ERROR_INVALID_XML,
                                "<source protocol='iscsi' name='%s'>: not a target and LUN; write "
                                "'iqn.2013-07.com.example:target/1' (LUN 0 when there is no '/N')",
                                q);
                return 0;
        }
        /* rbd */
        g_auto(GStrv) parts = g_strsplit(name, "/", -1);
        if (g_strv_length(parts) != 2 || !rbd_part_is_valid(parts[0]) || !rbd_part_is_valid(parts[1]))
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<source protocol='rbd' name='%s'>: not 'pool/image' (letters, digits, '.', "
                        "'_', '-'; snapshots and namespaces are not supported)",
                        q);
        return 0;
}

int parse_disk_network_source(xmlNode *node, DomainDiskDef *disk, GError **error) {
        g_autofree char *protocol = NULL, *name = NULL, *tls = NULL;
        int r;

        /* index is libvirt's runtime numbering of the backing chain. */
        if ((r = check_attributes(node, STRV("protocol", "name", "tls", "index"), error)) < 0 ||
            (r = require_attr(node, "protocol", "(nbd, iscsi or rbd)", &protocol, error)) < 0)
                return r;
        if (!strv_contains(STRV("nbd", "iscsi", "rbd"), protocol)) {
                g_autofree char *q = text_quote(protocol, -1);
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<source protocol='%s'>: vmigrate supports network disks over 'nbd', 'iscsi' "
                        "and 'rbd'; put the image on one of them or on storage both hosts mount "
                        "(type='file')",
                        q);
        }
        tls = get_attr(node, "tls");
        if (tls &&
            (r = check_attr_choice(node, "tls", tls,
                                   "value; TLS to the disk's server is not supported by vmigrate, so only "
                                   "tls='no' is",
                                   STRV("no"), error)) < 0)
                return r;
        name = get_attr(node, "name");
        if ((r = check_name(protocol, name, error)) < 0)
                return r;

        for_each_child_element(c, node, r, error) {
                if (node_is(c, "host")) {
                        if ((r = parse_host(c, protocol, disk, error)) < 0)
                                return r;
                } else if (node_is(c, "auth"))
                        return refuse_disk_auth(c, error);
                else if (strv_contains(STRV("snapshot", "config", "initiator", "reconnect", "slices", "ssl",
                                            "cookies", "readahead", "timeout", "encryption", "reservations",
                                            "address", "privateData", "dataStore"),
                                       node_name(c)))
                        return unsupported_element(c, node, NULL, error);
                else
                        return unknown_element(c, node, error);
        }

        guint n_hosts = disk->source_hosts ? disk->source_hosts->len : 0;
        if (!g_str_equal(protocol, "rbd") && n_hosts != 1)
                return vm_error_set(error, VM_ERROR_INVALID_XML,
                                    "<source protocol='%s'>: give exactly one <host> (%u given), e.g. <host "
                                    "name='server' port='%u'/>",
                                    protocol, n_hosts, disk_network_default_port(protocol));
        disk->protocol = g_steal_pointer(&protocol);
        disk->source_name = g_steal_pointer(&name);
        return 0;
}

int check_disk_network(const DomainDiskDef *disk, GError **error) {
        if (!disk->protocol)
                return vm_error_set(
                        error, VM_ERROR_INVALID_XML,
                        "<disk type='network'> (target %s): <source protocol='nbd|iscsi|rbd' …> with "
                        "its <host> is required",
                        disk->target_dev);
        return 0;
}

void format_disk_network_source(xmlTextWriter *w, const DomainDiskDef *disk) {
        start_element(w, "source");
        write_attribute(w, "protocol", disk->protocol);
        write_attribute(w, "name", disk->source_name);
        for (guint i = 0; disk->source_hosts && i < disk->source_hosts->len; i++) {
                const DomainDiskHost *h = disk->source_hosts->pdata[i];

                start_element(w, "host");
                if (h->socket) {
                        write_attribute(w, "transport", "unix");
                        write_attribute(w, "socket", h->socket);
                } else {
                        g_autofree char *port = h->port ? g_strdup_printf("%u", h->port) : NULL;
                        write_attribute(w, "name", h->name);
                        write_attribute(w, "port", port);
                }
                end_element(w);
        }
        end_element(w);
}

char *disk_network_describe(const DomainDiskDef *disk) {
        const DomainDiskHost *h =
                disk->source_hosts && disk->source_hosts->len ? disk->source_hosts->pdata[0] : NULL;

        if (g_str_equal(disk->protocol, "rbd"))
                return g_strdup_printf("rbd:%s", disk->source_name);
        if (h && h->socket)
                return g_strdup_printf("nbd+unix:///%s?socket=%s",
                                       disk->source_name ? disk->source_name : "", h->socket);
        if (!h)
                return g_strdup_printf("%s://?/%s", disk->protocol,
                                       disk->source_name ? disk->source_name : "");
        bool v6 = strchr(h->name, ':') != NULL;
        return g_strdup_printf("%s://%s%s%s:%u/%s", disk->protocol, v6 ? "[" : "", h->name, v6 ? "]" : "",
                               h->port ? h->port : disk_network_default_port(disk->protocol),
                               disk->source_name ? disk->source_name : "");
}

void netdisk_def_clear(DomainDiskDef *disk) {
        g_clear_pointer(&disk->protocol, g_free);
        g_clear_pointer(&disk->source_name, g_free);
        g_clear_pointer(&disk->source_hosts, g_ptr_array_unref);
}

void netdisk_def_copy(DomainDiskDef *dst, const DomainDiskDef *src) {
        dst->protocol = g_strdup(src->protocol);
        dst->source_name = g_strdup(src->source_name);
        if (!src->source_hosts)
                return;
        dst->source_hosts = g_ptr_array_new_with_free_func((GDestroyNotify) disk_host_free);
        for (guint i = 0; i < src->source_hosts->len; i++) {
                const DomainDiskHost *h = src->source_hosts->pdata[i];
                DomainDiskHost *n = g_new0(DomainDiskHost, 1);
                n->name = g_strdup(h->name);
                n->port = h->port;
                n->socket = g_strdup(h->socket);
                g_ptr_array_add(dst->source_hosts, n);
        }
}

bool netdisk_def_equal(const DomainDiskDef *a, const DomainDiskDef *b) {
        guint na = a->source_hosts ? a->source_hosts->len : 0,
              nb = b->source_hosts ? b->source_hosts->len : 0;

        if (g_strcmp0(a->protocol, b->protocol) != 0 || g_strcmp0(a->source_name, b->source_name) != 0 ||
            na != nb)
                return false;
        for (guint i = 0; i < na; i++) {
                const DomainDiskHost *x = a->source_hosts->pdata[i], *y = b->source_hosts->pdata[i];
                if (g_strcmp0(x->name, y->name) != 0 || x->port != y->port ||
                    g_strcmp0(x->socket, y->socket) != 0)
                        return false;
        }
        return true;
}
