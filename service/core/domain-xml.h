/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "names.h"

/*
 * The domain definition: a strict subset of libvirt's domain XML.
 *
 *   <domain type="test|kvm|qemu">
 *     <name/> <uuid/> <title/>? <description/>?
 *     <memory unit="KiB|MiB|GiB|b|bytes|k|M|G|...">N</memory>
 *     <currentMemory unit=...>N</currentMemory>?   (must equal memory)
 *     <vcpu>N</vcpu>
 *     <os firmware="efi|bios"?> <type arch="x86_64" machine="pc-q35-7.2">hvm</type>
 *          <firmware> <feature enabled="yes|no" name="secure-boot|enrolled-keys"/>* </firmware>?
 *          <loader readonly="yes"? type="rom|pflash"? secure="yes|no"? format="raw"?>/path</loader>?
 *          <nvram template="/path"? format="raw"? templateFormat="raw"?>/path?</nvram>?
 *          <kernel>/path</kernel>? <initrd>/path</initrd>? <cmdline>..</cmdline>?
 *     </os>?   (firmware, loader and nvram: domain-xml-firmware.c)
 *     <cpu mode="custom|host-model|host-passthrough|maximum"> <model>name</model>?
 *          <feature policy="require|disable|optional|force|forbid" name="x"/>* </cpu>?
 *     <on_poweroff/on_reboot/on_crash>destroy|restart|preserve</...>?
 *     <metadata>
 *       <vmigrate:migration xmlns:vmigrate="https://vmigrate.org/xmlns/migration/1">
 *         <vmigrate:require interface="52:54:00:…"/>*   (a MAC of one of the <interface>s)
 *         <vmigrate:require hook="NAME"/>*             (an admin hook's file name)
 *         <vmigrate:priority>0-1000</vmigrate:priority>? (evacuation order, higher first)
 *       </vmigrate:migration>
 *       <app:x xmlns:app="...">…</app:x>*            (other applications': kept verbatim)
 *     </metadata>?
 *     <devices>
 *       <disk type="file|block|network" device="disk|cdrom"> <driver name="qemu" type="raw|qcow2" cache="..."/>?
 *             <source file="/path"/> (type file) or <source dev="/dev/..."/> (type block)
 *             or <source protocol="nbd|iscsi|rbd" name=".."> <host name=".." port=".."/>* </source>
 *             (type network: domain-xml-netdisk.c)
 *             <target dev="vda" bus="virtio|sata|ide|scsi"/> <readonly/>? <shareable/>?
 *       </disk>*
 *       <interface type="bridge|network|user"> <source bridge=".."/ network=".."/>? <mac address=".."/>?
 *             <model type="virtio|e1000|..."/>? </interface>*
 *       <serial type="pty|file|null|stdio"> <source path="/path"/>? (file only) <target port="0"/>? </serial>*
 *       <console .../>* (mirrors serial port 0; becomes it when there is no <serial>)
 *       <graphics type="vnc|spice" port="N|-1" autoport="yes|no" listen="addr" passwd=".." keymap=".."
 *             (vnc)> <listen type="address|none|socket" address=".." socket="/path"/>?
 *             <image compression=".."/>? (spice) </graphics>*  (one of each type)
 *       <video> <model type="vga|virtio|qxl|bochs|ramfb|none" vram ram vgamem heads primary="yes"/>
 *       </video>?  (see domain-xml-graphics.c)
 *       <controller>, <input>, <sound>, <audio>, <channel>, <redirdev>, <rng>, <watchdog>,
 *       <memballoon>: see domain-xml-devices.h
 *       <tpm model="tpm-crb|tpm-tis"> <backend type="emulator" version="2.0"/> </tpm>?
 *             (an swtpm per guest: domain-xml-tpm.c)
 *     </devices>?
 *     <features>, <clock>, <pm>, <os><boot>/<bootmenu>, <cpu><topology>: ditto
 *   </domain>
 *
 * Anything else is refused element by element with VM_ERROR_INVALID_XML
 * and a message that names the element or attribute and says why.
 */

#define DOMAIN_MEMORY_MIN_BYTES (1024ULL * 1024)            /* 1 MiB */
#define DOMAIN_MEMORY_MAX_BYTES (16ULL * 1024 * 1024 * 1024 * 1024) /* 16 TiB */
#define DOMAIN_VCPUS_MAX 1024
#define DOMAIN_PRIORITY_MAX 1000

/* vmigrate's own namespace in <metadata> (libvirt's place for application data). */
#define DOMAIN_XMLNS_MIGRATION "https://vmigrate.org/xmlns/migration/1"
#define DOMAIN_HOOK_NAME_MAX 64

/* desktop devices (domain-xml-devices.c) */
typedef struct DomainInputDef {
        char *type; /* "tablet", "mouse" or "keyboard" */
        char *bus;  /* "usb" or "virtio" (PS/2 ones are every PC's and not kept) */
} DomainInputDef;

typedef struct DomainSoundDef {
        char *model;   /* "ich6", "ich9" or "ac97" */
        char *codec;   /* HDA codec: "duplex", "micro" or "output"; NULL for ac97 */
        unsigned audio; /* the id of the <audio> it plays through */
} DomainSoundDef;

typedef struct DomainAudioDef {
        unsigned id;   /* 1.. */
        char *type;    /* "none" or "spice" */
} DomainAudioDef;

typedef struct DomainChannelDef {
        char *type;        /* "unix" or "spicevmc" */
        char *name;        /* virtio port name: "org.qemu.guest_agent.0", "com.redhat.spice.0" */
        char *source_path; /* type unix: the socket the user chose; NULL = the backend's own */
} DomainChannelDef;

/* <features> that every vmigrate PC guest has: kept to be written back. */
#define DOMAIN_FEATURE_ACPI (1u << 0)
#define DOMAIN_FEATURE_APIC (1u << 1)
#define DOMAIN_FEATURE_PAE (1u << 2)

typedef struct DomainDiskDef {
        char *device;      /* "disk" or "cdrom" */
        char *driver_type; /* "raw" or "qcow2"; NULL = raw */
        char *cache;       /* "none", "writeback", "writethrough", "directsync", "unsafe", or NULL */
        char *source_file; /* absolute path: <source file> or, for type='block', <source dev> */
        char *target_dev;  /* "vda" */
        char *target_bus;  /* "virtio", "sata", "ide", "scsi"; NULL = virtio */
        bool readonly;
        bool shareable;
        bool block; /* type='block': source_file is a block device */
        /* desktop devices (domain-xml-devices.c): <driver> tuning and <boot order> */
        char *discard;       /* "unmap" or "ignore"; NULL = QEMU's default (ignore) */
        char *io;            /* "threads", "native" or "io_uring"; NULL = threads */
        char *detect_zeroes; /* "off", "on" or "unmap"; NULL = off */
        unsigned boot_order; /* 0 = none */

        /* ---- network disks (domain-xml-netdisk.c) ---- */
        char *protocol; /* type='network': "nbd", "iscsi" or "rbd"; NULL for other types */
        char *source_name; /* nbd: export (NULL: the default one); iscsi: "iqn…/LUN"; rbd: "pool/image" */
        GPtrArray *source_hosts; /* DomainDiskHost*, in order; NULL or empty: rbd takes ceph.conf's monitors */
} DomainDiskDef;

/* One <host> of a network disk's <source>. */
typedef struct DomainDiskHost {
        char *name;   /* host name or address; NULL for a unix socket */
        unsigned port; /* 0: the protocol's default (nbd 10809, iscsi 3260, rbd: ceph's) */
        char *socket; /* nbd over a unix socket (transport='unix'): absolute path; NULL otherwise */
} DomainDiskHost;

/* The disk is on the network: shared by nature, never copied, nothing to
 * stat on the host. */
static inline bool domain_disk_is_network(const DomainDiskDef *disk) {
        return disk->protocol != NULL;
}

typedef struct DomainInterfaceDef {
        char *type;   /* "bridge", "network" or "user" */
        char *source; /* bridge or network name; NULL for user */
        char *mac;    /* "52:54:00:xx:xx:xx" normalised to lower case, or NULL */
        char *model;  /* "virtio", "e1000", ...; NULL = backend default */
        unsigned boot_order; /* <boot order='N'/> (domain-xml-devices.c); 0 = none */
} DomainInterfaceDef;

typedef struct DomainSerialDef {
        char *type; /* "pty", "file", "null" or "stdio" */
        unsigned port; /* 0..3 (isa-serial); assigned in order when the XML gives none */
        char *source_path; /* absolute path for type "file"; NULL otherwise */
} DomainSerialDef;

typedef struct DomainCpuFeatureDef {
        char *name;
        char *policy; /* "require", "disable", "optional", "force", "forbid" */
} DomainCpuFeatureDef;

/* displays (domain-xml-graphics.c) */
#define DOMAIN_GRAPHICS_PORT_AUTO (-1)
typedef struct DomainGraphicsDef {
        char *type;           /* "vnc" or "spice" */
        char *listen_type;    /* "address", "none" or "socket" */
        char *listen_address; /* type address: an IP address or host name; NULL = 127.0.0.1 (libvirt's) */
        char *socket;         /* type socket: absolute path; NULL = one in the domain's runtime directory */
        int port;             /* type address: TCP port, or DOMAIN_GRAPHICS_PORT_AUTO (allocated at start) */
        bool autoport;        /* the port comes from the host's display range; a running domain's
                               * definition carries the port it got */
        char *passwd;         /* as libvirt writes it; written back only by domain_def_format() */
        char *keymap;         /* vnc: QEMU keymap ("en-us"), or NULL */
        char *image_compression; /* spice <image compression=…/>, or NULL */
} DomainGraphicsDef;

typedef struct DomainVideoDef {
        char *model;  /* "vga", "virtio", "qxl", "bochs", "ramfb" or "none" */
        unsigned vram;   /* KiB; 0 = QEMU's default */
        unsigned ram;    /* qxl, KiB; 0 = default */
        unsigned vgamem; /* qxl, KiB; 0 = default */
        unsigned heads;  /* 0 = default (1) */
} DomainVideoDef;
/* A feature asked for (<os><firmware><feature>, a <hyperv> enlightenment):
 * not said, on or off. */
typedef enum DomainFwFeature {
        DOMAIN_FW_FEATURE_UNSET,
        DOMAIN_FW_FEATURE_ON,
        DOMAIN_FW_FEATURE_OFF,
} DomainFwFeature;

/* Hyper-V enlightenments, <features><hyperv> (domain-xml-hyperv.c), in
 * libvirt's order; the last three are children of <stimer> and <tlbflush>. */
typedef enum DomainHyperv {
        DOMAIN_HYPERV_RELAXED,
        DOMAIN_HYPERV_VAPIC,
        DOMAIN_HYPERV_SPINLOCKS,
        DOMAIN_HYPERV_VPINDEX,
        DOMAIN_HYPERV_RUNTIME,
        DOMAIN_HYPERV_SYNIC,
        DOMAIN_HYPERV_STIMER,
        DOMAIN_HYPERV_RESET,
        DOMAIN_HYPERV_VENDOR_ID,
        DOMAIN_HYPERV_FREQUENCIES,
        DOMAIN_HYPERV_REENLIGHTENMENT,
        DOMAIN_HYPERV_TLBFLUSH,
        DOMAIN_HYPERV_IPI,
        DOMAIN_HYPERV_EVMCS,
        DOMAIN_HYPERV_AVIC,
        DOMAIN_HYPERV_EMSR_BITMAP,
        DOMAIN_HYPERV_XMM_INPUT,
        DOMAIN_HYPERV_STIMER_DIRECT,     /* <stimer><direct> */
        DOMAIN_HYPERV_TLBFLUSH_DIRECT,   /* <tlbflush><direct> */
        DOMAIN_HYPERV_TLBFLUSH_EXTENDED, /* <tlbflush><extended> */
        DOMAIN_HYPERV_N,
} DomainHyperv;

typedef struct DomainDef {
        char *type; /* "test", "kvm" or "qemu": selects the backend */
        char *name;
        char uuid[37]; /* canonical lower-case 8-4-4-4-12 */
        char *title;
        char *description;
        uint64_t memory_bytes;
        unsigned vcpus;
        char *vcpu_cpuset; /* <vcpu cpuset>, canonical ("0-3,8"): host CPUs QEMU runs on; NULL: any */

        char *os_type; /* "hvm" */
        char *os_arch; /* NULL = host arch */
        char *os_machine;
        char *os_loader;
        char *os_kernel;
        char *os_initrd;
        char *os_cmdline;

        char *cpu_mode;  /* NULL when there is no <cpu> */
        char *cpu_model; /* NULL = backend default */
        GPtrArray *cpu_features; /* DomainCpuFeatureDef* */

        char *on_poweroff;
        char *on_reboot;
        char *on_crash;

        GPtrArray *disks;      /* DomainDiskDef* */
        GPtrArray *interfaces; /* DomainInterfaceDef* */
        GPtrArray *serials;    /* DomainSerialDef* */

        /* displays (domain-xml-graphics.c) */
        GPtrArray *graphics; /* DomainGraphicsDef*: at most one vnc and one spice */
        GPtrArray *videos;   /* DomainVideoDef*: at most one */

        /* <metadata><vmigrate:migration>: host-side features that must not
         * fail on a migration's destination. NULL when none. */
        GStrv require_interfaces; /* MACs (lower case) of <interface>s */
        GStrv require_hooks;      /* admin hook file names */
        /* <vmigrate:priority>: an evacuation with order=priority moves
         * higher ones first (0 when not given). */
        unsigned priority;
        bool has_priority;

        /* desktop devices (domain-xml-devices.c) */
        GPtrArray *metadata_other; /* char*: other applications' <metadata> elements, verbatim */
        GStrv os_boot_devs;        /* <os><boot dev>: "hd", "cdrom", "network", in order; NULL = none */
        char *os_bootmenu;         /* "yes", "no" or NULL */
        unsigned os_bootmenu_timeout; /* ms; 0 = none given */
        unsigned cpu_sockets, cpu_dies, cpu_clusters, cpu_cores, cpu_threads; /* 0 = no <topology> */
        char *vmport;              /* <features><vmport state>: "on", "off" or NULL */
        unsigned pc_features;      /* DOMAIN_FEATURE_* given in <features> (QEMU gives them anyway) */
        char *clock_offset;        /* "utc" or "localtime"; NULL = utc */
        char *timer_rtc_tickpolicy; /* "catchup", "delay" or NULL */
        char *timer_pit_tickpolicy; /* "delay" or NULL */
        char *timer_hpet_present;  /* "yes", "no" or NULL */
        char *pm_suspend_to_mem;   /* "no" or NULL (suspend is refused) */
        char *pm_suspend_to_disk;  /* "no" or NULL */
        char *usb_model;           /* <controller type='usb'>: "qemu-xhci", ..., "none"; NULL = none given */
        unsigned usb_ports;        /* ports='N' of an xHCI controller; 0 = QEMU's default */
        unsigned usb_companions;   /* with ich9-ehci1: bit N for ich9-uhciN (N = 1..3), libvirt's
                                    * companion set (USB 1 ports 2N-2, 2N-1 of the EHCI) */
        char *scsi_model;          /* <controller type='scsi'>: "virtio-scsi", "lsilogic"; NULL = virtio-scsi */
        GPtrArray *inputs;         /* DomainInputDef* */
        GPtrArray *sounds;         /* DomainSoundDef* */
        GPtrArray *audios;         /* DomainAudioDef* */
        GPtrArray *channels;       /* DomainChannelDef* */
        unsigned redirdevs;        /* <redirdev bus='usb' type='spicevmc'/> */
        char *rng_backend;         /* "random" or "builtin"; NULL = no <rng> */
        char *rng_device;          /* random: "/dev/urandom", "/dev/random" or "/dev/hwrng" */
        uint64_t rng_rate_bytes, rng_rate_period; /* <rate>; 0 = none */
        char *watchdog_model;      /* "i6300esb", "ib700", "itco"; NULL = none */
        char *watchdog_action;     /* "reset", "shutdown", "poweroff", "pause", "none", "inject-nmi" */
        char *memballoon;          /* "virtio", "none" or NULL (none) */
        char *memballoon_autodeflate;      /* "on", "off" or NULL */
        char *memballoon_free_page_reporting; /* "on", "off" or NULL */
        /* ---- UEFI firmware (domain-xml-firmware.c) ---- */
        char *os_firmware;       /* <os firmware='efi|bios'>; NULL: not said */
        bool os_loader_pflash;   /* <loader type='pflash' readonly='yes'>: os_loader is read-only flash
                                  * code and the variables live in the NVRAM file */
        bool os_loader_secure;   /* <loader secure='yes'>: SMM guards the variable store */
        DomainFwFeature os_fw_secure_boot;   /* <firmware><feature name='secure-boot'> */
        DomainFwFeature os_fw_enrolled_keys; /* <firmware><feature name='enrolled-keys'> */
        char *os_nvram;          /* <nvram>PATH</nvram>; NULL: the backend's own per-domain file */
        char *os_nvram_template; /* <nvram template=…>; NULL: the firmware's (its descriptor's) */
        /* ---- emulated TPM (domain-xml-tpm.c) ---- */
        char *tpm_model;   /* "tpm-crb" or "tpm-tis"; NULL: no <tpm> */
        char *tpm_version; /* "2.0" */
        /* ---- Hyper-V enlightenments (domain-xml-hyperv.c) ---- */
        bool hyperv;       /* <features><hyperv> given */
        char *hyperv_mode; /* "custom" when written; NULL: not written (custom) */
        DomainFwFeature hyperv_state[DOMAIN_HYPERV_N]; /* each enlightenment's state='…' */
        unsigned hyperv_spinlocks_retries;             /* <spinlocks retries>; 0: none given */
        char *hyperv_vendor_id;                        /* <vendor_id value>; NULL: none given */
        char *timer_hypervclock_present; /* <timer name='hypervclock' present>: "yes", "no" or NULL */
} DomainDef;

DomainDef *domain_def_new(void);
void domain_def_free(DomainDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainDef, domain_def_free)

/*
 * Parses a domain definition. Refuses documents over DOMAIN_XML_MAX_BYTES,
 * not well-formed ones, DTDs/entities, and anything outside the subset.
 * When the document has no <uuid>, one is generated.
 * Returns 0, or a negative errno with *error set (VM_ERROR_INVALID_XML).
 */
int domain_def_parse(const char *xml, size_t len, DomainDef **ret_def, GError **error);

/* Formats the definition back to XML; parse(format(def)) equals def.
 * It has the secrets (<graphics passwd>): for the daemon's own files and
 * for a migration's destination, never for logs or unprivileged callers. */
char *domain_def_format(const DomainDef *def);
/* The same without secrets, as libvirt without VIR_DOMAIN_XML_SECURE:
 * passwd is left out (a DefineXML of it then has no password). */
char *domain_def_format_public(const DomainDef *def);

DomainDef *domain_def_copy(const DomainDef *def);

/*
 * For migration's destination-xml: dst may change only what the host
 * provides (names, title and description, disk source paths and cache
 * modes, interface sources, displays); anything the guest can see (memory, vCPUs,
 * machine, CPU, kernel and command line, the disks' and interfaces'
 * number, targets, buses, formats, models and MACs, serial ports, video) must be
 * equal. The error (VM_ERROR_INVALID_OPTION) names the first element that
 * differs.
 */
int domain_def_check_abi_stable(const DomainDef *src, const DomainDef *dst, GError **error);
bool domain_def_equal(const DomainDef *a, const DomainDef *b);

/* Whether copy-storage (when asked) copies this disk: as libvirt, not
 * read-only media, CD-ROMs, disks shared on purpose, network disks or
 * drives with no image. */
bool domain_disk_is_copyable(const DomainDiskDef *disk);

/* Named in <vmigrate:require interface=…/> / <vmigrate:require hook=…/>. */
bool domain_def_requires_interface(const DomainDef *def, const DomainInterfaceDef *iface);
bool domain_def_requires_hook(const DomainDef *def, const char *hook);
/* A hook name: 1..DOMAIN_HOOK_NAME_MAX of [A-Za-z0-9._-], not starting with '.'. */
bool domain_hook_name_is_valid(const char *name);

/* Accepts 32 hex digits with or without the four dashes, any case.
 * Writes the canonical lower-case dashed form (37 bytes incl. NUL). */
bool domain_uuid_parse(const char *s, char ret_canonical[37]);
void domain_uuid_generate(char ret_canonical[37]);

/* A guest with an emulated TPM: its state (swtpm's) must go with it. */
static inline bool domain_def_has_tpm(const DomainDef *def) {
        return def->tpm_model != NULL;
}

/* Whether the guest gets this Hyper-V enlightenment (state='on'). */
static inline bool domain_hyperv_on(const DomainDef *def, DomainHyperv f) {
        return def->hyperv_state[f] == DOMAIN_FW_FEATURE_ON;
}

/* A UEFI guest: its variables live in an NVRAM file that must go with it. */
static inline bool domain_def_has_nvram(const DomainDef *def) {
        return def->os_loader_pflash || g_strcmp0(def->os_firmware, "efi") == 0;
}
