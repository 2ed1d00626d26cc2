/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disk images read without QEMU: see disk-image.h. The qcow2 layout is
 * QEMU's docs/interop/qcow2.txt. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk-image.h"

#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_HEADER_LENGTH_MIN 104
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_DATA_FILE 0x44415441u
/* Incompatible feature bit 2: the data is in an external file. */
#define QCOW2_INCOMPAT_DATA_FILE (UINT64_C(1) << 2)

void disk_image_info_clear(DiskImageInfo *info) {
        g_clear_pointer(&info->backing_file, g_free);
        g_clear_pointer(&info->backing_format, g_free);
}

static uint64_t be(const uint8_t *p, unsigned n) {
        uint64_t v = 0;

        for (unsigned i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return v;
}

/* A name from the image: non-empty, no NUL, valid UTF-8 (it ends up in
 * D-Bus strings and messages). */
static char *image_string(const uint8_t *p, size_t n) {
        if (n == 0 || memchr(p, '\0', n) || !g_utf8_validate((const char *) p, (gssize) n, NULL))
                return NULL;
        return g_strndup((const char *) p, n);
}

static int parse_extensions(const uint8_t *buf, size_t len, size_t offset, DiskImageInfo *ret) {
        while (offset + 8 <= len) {
                uint32_t type = (uint32_t) be(buf + offset, 4);
                uint32_t length = (uint32_t) be(buf + offset + 4, 4);

                offset += 8;
                if (type == QCOW2_EXT_END)
                        return 0;
                if (length > len - offset)
                        return -EBADMSG;
                if (type == QCOW2_EXT_BACKING_FORMAT) {
                        if (ret->backing_format)
                                return -EBADMSG;
                        ret->backing_format = image_string(buf + offset, length);
                        if (!ret->backing_format)
                                return -EBADMSG;
                } else if (type == QCOW2_EXT_DATA_FILE)
                        ret->external_data = true;
                /* Each extension's data is padded to a multiple of 8. */
                offset += ((size_t) length + 7) & ~(size_t) 7;
        }
        /* No end marker within what was read: QEMU always writes one. */
        return -EBADMSG;
}

int disk_image_parse_qcow2(const uint8_t *buf, size_t len, DiskImageInfo *ret) {
        g_auto(DiskImageInfo) info = {};
        uint64_t backing_offset, header_length = QCOW2_V2_HEADER_LENGTH;
        uint32_t version, backing_size;
        int r;

        if (len < QCOW2_V2_HEADER_LENGTH || memcmp(buf, QCOW2_MAGIC, 4) != 0)
                return -EBADMSG;
        version = (uint32_t) be(buf + 4, 4);
        if (version != 2 && version != 3)
                return -EBADMSG;
        backing_offset = be(buf + 8, 8);
        backing_size = (uint32_t) be(buf + 16, 4);
        info.virtual_size = be(buf + 24, 8);
        if (version == 3) {
                if (len < QCOW2_V3_HEADER_LENGTH_MIN)
                        return -EBADMSG;
                header_length = be(buf + 100, 4);
                if (header_length < QCOW2_V3_HEADER_LENGTH_MIN || header_length > len)
                        return -EBADMSG;
                if (be(buf + 72, 8) & QCOW2_INCOMPAT_DATA_FILE)
                        info.external_data = true;
        }
        r = parse_extensions(buf, len, (size_t) header_length, &info);
        if (r < 0)
                return r;
        if (backing_offset != 0) {
                if (backing_size == 0 || backing_size > DISK_IMAGE_BACKING_NAME_MAX || backing_offset > len ||
                    backing_size > len - backing_offset)
                        return -EBADMSG;
                info.backing_file = image_string(buf + backing_offset, backing_size);
                if (!info.backing_file)
                        return -EBADMSG;
        } else if (info.backing_format)
                return -EBADMSG;
        *ret = info;
        info = (DiskImageInfo) {};
        return 0;
}

static int read_fd(int fd, const char *format, DiskImageInfo *info) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISBLK(st.st_mode)) {
                if (ioctl(fd, BLKGETSIZE64, &info->virtual_size) < 0)
                        return -errno;
        } else if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (g_strcmp0(format, "qcow2") == 0) {
                g_autofree uint8_t *buf = g_malloc(DISK_IMAGE_HEADER_MAX);
                ssize_t n = pread(fd, buf, DISK_IMAGE_HEADER_MAX, 0);
                int r;

                if (n < 0)
                        return -errno;
                r = disk_image_parse_qcow2(buf, (size_t) n, info);
                if (r < 0)
                        return r;
        } else if (S_ISREG(st.st_mode))
                info->virtual_size = (uint64_t) st.st_size;
        info->allocation = S_ISBLK(st.st_mode) ? info->virtual_size : (uint64_t) st.st_blocks * 512;
        return 0;
}

int disk_image_read(const char *path, const char *format, DiskImageInfo *ret) {
        g_auto(DiskImageInfo) info = {};
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        r = read_fd(fd, format, &info);
        close(fd);
        if (r < 0)
                return r;
        *ret = info;
        info = (DiskImageInfo) {};
        return 0;
}

int disk_virtual_size(const char *path, const char *format, uint64_t *ret_size) {
        g_auto(DiskImageInfo) info = {};
        int r = disk_image_read(path, format, &info);

        if (r < 0)
                return r;
        *ret_size = info.virtual_size;
        return 0;
}

char *disk_image_backing_path(const char *image_path, const char *backing_file) {
        g_autofree char *dir = NULL;

        if (g_path_is_absolute(backing_file))
                return g_strdup(backing_file);
        dir = g_path_get_dirname(image_path);
        return g_build_filename(dir, backing_file, NULL);
}

const char *disk_image_probe_format(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        uint8_t magic[4];
        ssize_t n;

        if (fd < 0)
                return NULL;
        n = pread(fd, magic, sizeof(magic), 0);
        close(fd);
        if (n < 0)
                return NULL;
        return n == (ssize_t) sizeof(magic) && memcmp(magic, QCOW2_MAGIC, 4) == 0 ? "qcow2" : "raw";
}

int disk_image_chain_allocation(const char *path, const char *format, uint64_t *ret) {
        g_autofree char *current = g_strdup(path);
        g_autofree char *current_format = g_strdup(format);
        uint64_t total = 0;

        for (unsigned depth = 0; depth <= DISK_IMAGE_CHAIN_MAX; depth++) {
                g_auto(DiskImageInfo) info = {};
                int r = disk_image_read(current, current_format, &info);
                char *next;

                if (r < 0)
                        return r;
                total += info.allocation;
                if (!info.backing_file) {
                        *ret = total;
                        return 0;
                }
                next = disk_image_backing_path(current, info.backing_file);
                g_free(current_format);
                /* Unreadable: the next read says why. */
                current_format = g_strdup(info.backing_format ? info.backing_format
                                          : disk_image_probe_format(next) ?: "raw");
                g_free(current);
                current = next;
        }
        return -ELOOP;
}
