/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What vmigrate needs to know of a disk image without QEMU: its virtual
 * size, the space it takes, and (qcow2) the backing file it names. Read
 * from the file itself, synchronously and cheaply (one header, one stat),
 * so that DryRun, Begin and Prepare can ask on the event loop. Image files
 * are input like any other: the header parser refuses what it does not
 * understand, and is fuzzed (tests/fuzz/fuzz-disk-image.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* How much of a qcow2 file's start is read: the header, its extensions
 * and the backing file name are in the first cluster, which is at least
 * 512 bytes; QEMU writes them all within the first 4 KiB. */
#define DISK_IMAGE_HEADER_MAX 65536
/* QEMU's own limit for a backing file name (block/qcow2.c). */
#define DISK_IMAGE_BACKING_NAME_MAX 1023
/* A backing chain longer than this is refused (QEMU allows about 1000;
 * a real chain is a handful). */
#define DISK_IMAGE_CHAIN_MAX 16

typedef struct DiskImageInfo {
        uint64_t virtual_size;  /* what the guest sees */
        uint64_t allocation;    /* bytes the file takes on its file system (st_blocks) */
        char *backing_file;     /* qcow2: as written in the header; NULL: none */
        char *backing_format;   /* qcow2: the header's backing format extension; NULL: not said */
        bool external_data;     /* qcow2: its data is in another file (unsupported for copying) */
} DiskImageInfo;

void disk_image_info_clear(DiskImageInfo *info);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DiskImageInfo, disk_image_info_clear)

/* Parses the first len bytes of a qcow2 file (versions 2 and 3): virtual
 * size, backing file name and format, external data file. -EBADMSG for
 * anything malformed (bad magic, version, offsets outside buf, a backing
 * name that is empty, too long or holds a NUL). ret->allocation is left 0. */
int disk_image_parse_qcow2(const uint8_t *buf, size_t len, DiskImageInfo *ret);

/* Reads path as format ("raw", "qcow2"; NULL = raw). Raw files and block
 * devices: their size; qcow2: its header. < 0 (negative errno) if the
 * file cannot be read, -EBADFD if it is neither a regular file nor a
 * block device, -EBADMSG if a qcow2 header is not one. */
int disk_image_read(const char *path, const char *format, DiskImageInfo *ret);

/* The size a guest sees (disk_image_read's virtual_size). */
int disk_virtual_size(const char *path, const char *format, uint64_t *ret_size);

/* The backing file's path as QEMU opens it: an absolute name as is, a
 * relative one from the image's directory. */
char *disk_image_backing_path(const char *image_path, const char *backing_file);

/* "raw" or "qcow2", from the file's first bytes (the qcow2 magic); what a
 * backing file without a format extension is taken for. NULL: unreadable. */
const char *disk_image_probe_format(const char *path);

/* What the image and all its backing files take on their file systems:
 * what copying the whole chain into one image may need at most. -ELOOP
 * for a chain longer than DISK_IMAGE_CHAIN_MAX, or the first error. */
int disk_image_chain_allocation(const char *path, const char *format, uint64_t *ret);
