/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmigrate test guest: a freestanding multiboot kernel that fills a memory
 * area with self-describing pages, rewrites a working set at a set rate and
 * checks on request that every page holds exactly what it last wrote there.
 * A migration that loses, tears or serves a stale copy of a page is caught by
 * "verify". Protocol and layout: README.md next to this file.
 *
 * 32-bit protected mode, no paging (nested KVM on the test machines resets a
 * guest that enables it), one CPU, no libc.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_VERSION 2

#define PAGE_SIZE 4096u
#define PAGE_WORDS (PAGE_SIZE / 4u)
#define COUNTER_NONE 0u                 /* never a valid page counter */
/* The version of a block in a prepared base image (vmtest.disk_base): a
 * counter the writer does not reach (one write per block per ms would
 * take 49 days). */
#define COUNTER_BASE 0xFFFFFFFFu
#define INFLIGHT_NONE 0xFFFFFFFFu

#define COM1 0x3F8
#define COM2 0x2F8                      /* the pulse's own port: COM1 carries commands */
#define PULSE_MS_MAX 1000u
#define PIT_HZ_INPUT 1193182u
#define RATE_MAX 1000000u               /* pages/s; far above what TCG reaches */
#define WRITE_BATCH 16u                 /* pages between two serial polls */
/* vmtest.compressible: the body repeats every this many words (32 bytes). */
#define PATTERN_WORDS 8u

#define DISKS_MAX 4u                    /* PIIX IDE: two channels, master and slave */
#define BLOCK_SIZE 4096u                /* unit of disk writing and checking */
#define BLOCK_WORDS (BLOCK_SIZE / 4u)
#define BLOCK_SECTORS (BLOCK_SIZE / 512u)
#define DISK_RATE_MAX 100000u           /* blocks/s; far above what PIO reaches */
#define DISK_BATCH 2u                   /* blocks between two serial polls */
#define ATA_TIMEOUT_MS 5000u            /* per BSY/DRQ wait */

#define barrier() __asm__ volatile("" ::: "memory")

/* ---- symbols from boot.S and the linker script ---- */

extern char _end[];
extern const uint32_t exception_stubs[32];
void isr_timer(void);
void isr_serial(void);
void isr_ignore(void);
void idle_wait(void);

void guest_main(uint32_t magic, uint32_t mbi_addr);
void timer_irq(void);
void serial_irq(void);
void exception_panic(uint32_t vector, const uint32_t *frame) __attribute__((noreturn));

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *s, int c, size_t n);
void *memcpy(void *restrict d, const void *restrict s, size_t n);

void *memset(void *s, int c, size_t n) {
        unsigned char *p = s;
        while (n--)
                *p++ = (unsigned char) c;
        return s;
}

void *memcpy(void *restrict d, const void *restrict s, size_t n) {
        unsigned char *dp = d;
        const unsigned char *sp = s;
        while (n--)
                *dp++ = *sp++;
        return d;
}

/* ---- port I/O ---- */

static inline void outb(uint16_t port, uint8_t v) {
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
        uint8_t v;
        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
        return v;
}

static inline void insw(uint16_t port, void *buf, uint32_t words) {
        __asm__ volatile("rep insw" : "+D"(buf), "+c"(words) : "d"(port) : "memory");
}

static inline void outsw(uint16_t port, const void *buf, uint32_t words) {
        __asm__ volatile("rep outsw" : "+S"(buf), "+c"(words) : "d"(port) : "memory");
}

/* ---- state ---- */

/* Kept in named globals so that a host-side checker reading guest RAM (a
 * paused VM, a dump) can find them through the addresses in the banner. */
static uint32_t *counters;              /* expected counter of each area page */
static uint32_t area_start;             /* physical address of page 0 */
static uint32_t area_pages;
static uint32_t ws_pages;               /* the writer rewrites pages [0, ws_pages) */
static uint32_t ws_stride;              /* coprime with ws_pages: a full cycle */
static uint32_t ws_pos;
static uint32_t rate;                   /* pages per second, 0 = idle */
static uint32_t hb_ms = 1000;           /* heartbeat period, 0 = none */
static uint32_t pulse_ms;               /* pulse period on COM2, 0 = none */
static uint32_t written;                /* pages written by the writer (not the fill) */
/* vmtest.compressible: page bodies repeat a short pattern (page_body_word()). */
static bool compressible;
/* Page being rewritten right now, or INFLIGHT_NONE: while it is set that
 * page may legitimately be half old and half new in a snapshot of RAM taken
 * with the vCPU stopped. verify never runs while it is set. */
static volatile uint32_t inflight = INFLIGHT_NONE;

/* Disks: ATA disks found at boot, in probe order (ide0-master, ide0-slave,
 * ide1-master, ide1-slave). Each disk's counters live in guest RAM, so they
 * migrate with it and say what every block of the destination's disk must
 * hold. */
struct disk {
        uint16_t base;                  /* command block registers */
        uint16_t ctrl;                  /* device control / alternate status */
        uint8_t slave;
        const char *name;
        uint32_t sectors;               /* LBA28 capacity from IDENTIFY */
        uint32_t blocks;                /* blocks written and verified: [0, blocks) */
        uint32_t ws_blocks;             /* the writer rewrites blocks [0, ws_blocks) */
        uint32_t ws_stride;
        uint32_t ws_pos;
        uint32_t *counters;             /* expected counter of each block, 0 = never written */
        bool read_multiple;             /* multiple mode is 8 sectors: reads use READ MULTIPLE */
        bool failed;                    /* an I/O error: the writer leaves it alone */
};

static struct disk disks[DISKS_MAX];
static uint32_t disk_count;
static uint32_t *disk_counters;         /* every disk's counters, one disk after another */
static uint32_t disk_rate;              /* blocks per second over all disks, 0 = idle */
static uint32_t disk_base_mask;         /* bit d: disk d's unwritten blocks hold the base pattern */
static uint32_t disk_written;           /* blocks written by the disk writer */
static uint32_t disk_errors;
static uint32_t disk_next;              /* the disk the writer visits next */
/* block_id() of the block whose write is under way, or INFLIGHT_NONE; see
 * disk_block_write() for what a checker of a stopped guest may accept. */
static volatile uint32_t disk_inflight = INFLIGHT_NONE;
static uint32_t disk_last = INFLIGHT_NONE;      /* block_id() of the last block written */
static uint32_t disk_buf[BLOCK_WORDS];

static uint64_t tsc_boot;
static uint32_t tsc_per_ms;             /* calibrated against the PIT at boot */

/* ---- formatting and serial output ---- */

static size_t fmt_u32(char *buf, uint32_t v, unsigned base, unsigned width, char pad) {
        char tmp[12];
        size_t n = 0, len = 0;

        do {
                unsigned d = v % base;
                tmp[n++] = (char) (d < 10 ? '0' + d : 'a' + d - 10);
                v /= base;
        } while (v);
        while (n < width && n < sizeof(tmp))
                tmp[n++] = pad;
        while (n)
                buf[len++] = tmp[--n];
        return len;
}

/* printf subset: %s %c %u %x with an optional 0 flag and width. */
static size_t vformat(char *buf, size_t size, const char *f, va_list ap) {
        size_t len = 0;

        for (; *f && len + 12 < size; f++) {
                char pad = ' ';
                unsigned width = 0;

                if (*f != '%') {
                        buf[len++] = *f;
                        continue;
                }
                f++;
                if (*f == '0') {
                        pad = '0';
                        f++;
                }
                while (*f >= '0' && *f <= '9')
                        width = width * 10 + (unsigned) (*f++ - '0');
                switch (*f) {
                case 's': {
                        const char *s = va_arg(ap, const char *);
                        while (*s && len + 12 < size)
                                buf[len++] = *s++;
                        break;
                }
                case 'c':
                        buf[len++] = (char) va_arg(ap, int);
                        break;
                case 'u':
                        len += fmt_u32(buf + len, va_arg(ap, uint32_t), 10, width, pad);
                        break;
                case 'x':
                        len += fmt_u32(buf + len, va_arg(ap, uint32_t), 16, width, pad);
                        break;
                case '\0':
                        f--;
                        break;
                default:
                        buf[len++] = *f;
                        break;
                }
        }
        buf[len] = '\0';
        return len;
}

static size_t format(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static size_t format(char *buf, size_t size, const char *f, ...) {
        va_list ap;
        size_t len;

        va_start(ap, f);
        len = vformat(buf, size, f, ap);
        va_end(ap);
        return len;
}

static void serial_init(void) {
        outb(COM1 + 1, 0x00);           /* no interrupts while configuring */
        outb(COM1 + 3, 0x80);           /* DLAB */
        outb(COM1 + 0, 0x01);           /* divisor 1: 115200 baud */
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x03);           /* 8N1 */
        outb(COM1 + 2, 0xC7);           /* FIFO on, cleared, 14-byte trigger */
        outb(COM1 + 4, 0x0B);           /* DTR, RTS, OUT2 (routes the IRQ) */
        outb(COM1 + 1, 0x01);           /* interrupt on received data */
}

static void serial_putc(char c) {
        /* Bounded: if nobody drains the chardev, drop output rather than
         * stall the writer forever. */
        for (uint32_t spins = 0; !(inb(COM1 + 5) & 0x20); spins++)
                if (spins > 200000)
                        return;
        outb(COM1, (uint8_t) c);
}

/* COM2 is there when its scratch register keeps what is written to it (an
 * absent port reads 0xFF). Output only, no interrupts. */
static bool com2_init(void) {
        outb(COM2 + 7, 0x5A);
        if (inb(COM2 + 7) != 0x5A)
                return false;
        outb(COM2 + 7, 0xA5);
        if (inb(COM2 + 7) != 0xA5)
                return false;
        outb(COM2 + 1, 0x00);
        outb(COM2 + 3, 0x80);
        outb(COM2 + 0, 0x01);
        outb(COM2 + 1, 0x00);
        outb(COM2 + 3, 0x03);
        outb(COM2 + 2, 0xC7);
        outb(COM2 + 4, 0x03);           /* DTR, RTS; no OUT2: no IRQ */
        return true;
}

static void com2_puts(const char *s) {
        for (; *s; s++) {
                /* Bounded like serial_putc(): nobody listening must not stall the guest. */
                for (uint32_t spins = 0; !(inb(COM2 + 5) & 0x20); spins++)
                        if (spins > 200000)
                                return;
                outb(COM2, (uint8_t) *s);
        }
}

/* VGA text memory (80x25 cells of character + attribute): the banner on
 * row 0 and the heartbeat on row 1, so that a screendump shows the guest's
 * console and can be compared across a migration (tests/hosts/
 * test-displays.sh). Without a VGA device the writes go nowhere. */
#define VGA_TEXT ((volatile uint16_t *) 0xB8000)
#define VGA_COLS 80
#define VGA_ROWS 25

static void vga_line(unsigned row, const char *text) {
        for (unsigned col = 0; col < VGA_COLS; col++) {
                char c = *text ? *text++ : ' ';
                VGA_TEXT[row * VGA_COLS + col] = (uint16_t) (0x0700 | (uint8_t) c); /* grey on black */
        }
}

static void say(const char *f, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *f, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, f);
        vformat(buf, sizeof(buf), f, ap);
        va_end(ap);
        for (const char *p = buf; *p; p++)
                serial_putc(*p);
        serial_putc('\n');
}

/* ---- interrupts and the clock ---- */

struct idt_gate {
        uint16_t offset_lo;
        uint16_t selector;
        uint8_t zero;
        uint8_t type;
        uint16_t offset_hi;
} __attribute__((packed));

static struct idt_gate idt[256];

static void idt_set(unsigned vector, void (*handler)(void)) {
        uint32_t a = (uint32_t) (uintptr_t) handler;

        idt[vector] = (struct idt_gate) {
                .offset_lo = (uint16_t) a,
                .selector = 0x08,
                .type = 0x8E,           /* present, ring 0, 32-bit interrupt gate */
                .offset_hi = (uint16_t) (a >> 16),
        };
}

static void idt_init(void) {
        struct {
                uint16_t limit;
                uint32_t base;
        } __attribute__((packed)) desc = { sizeof(idt) - 1, (uint32_t) (uintptr_t) idt };

        for (unsigned v = 0; v < 256; v++)
                idt_set(v, isr_ignore);
        for (unsigned v = 0; v < 32; v++)
                idt_set(v, (void (*)(void)) (uintptr_t) exception_stubs[v]);
        idt_set(0x20, isr_timer);
        idt_set(0x24, isr_serial);
        __asm__ volatile("lidt %0" : : "m"(desc));
}

static void pic_init(void) {
        /* Remap the 8259s to vectors 0x20-0x2F, away from CPU exceptions. */
        outb(0x20, 0x11);
        outb(0xA0, 0x11);
        outb(0x21, 0x20);
        outb(0xA1, 0x28);
        outb(0x21, 0x04);
        outb(0xA1, 0x02);
        outb(0x21, 0x01);
        outb(0xA1, 0x01);
        outb(0x21, (uint8_t) ~((1u << 0) | (1u << 4)));    /* PIT and COM1 only */
        outb(0xA1, 0xFF);
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
        __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

/* SeaBIOS routes the 8259 through the local APIC (LINT0 = ExtINT), qboot
 * does not: with the APIC enabled and LINT0 masked, as after reset, KVM
 * never delivers a PIC interrupt and the guest sleeps forever. Do it here. */
static void lapic_route_pic(void) {
        volatile uint32_t *lapic = (volatile uint32_t *) (uintptr_t) 0xFEE00000u;
        uint32_t a, b, c, d;

        cpuid(1, &a, &b, &c, &d);
        if (!(d & (1u << 9)))
                return;                 /* no local APIC: the PIC drives INTR */
        lapic[0xF0 / 4] = 0x1FFu;       /* software-enable, spurious vector 0xFF */
        lapic[0x350 / 4] = 0x700u;      /* LINT0: ExtINT, unmasked */
        lapic[0x360 / 4] = 0x400u;      /* LINT1: NMI */
}

static inline uint64_t rdtsc(void) {
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t) hi << 32) | lo;
}

/* Low 32 bits of n / d without libgcc: two divl steps. */
static uint32_t div64_32(uint64_t n, uint32_t d) {
        uint32_t hi = (uint32_t) (n >> 32), lo = (uint32_t) n, q, r;

        __asm__("divl %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi % d), "rm"(d));
        return q;
}

/* Milliseconds since boot. The TSC follows host time under KVM and TCG
 * alike; PIT interrupts only wake the guest up. */
static uint32_t uptime_ms(void) {
        return div64_32(rdtsc() - tsc_boot, tsc_per_ms);
}

/* Microseconds since boot, modulo 2^32 (it wraps after 71 minutes). */
static uint32_t uptime_us(void) {
        return div64_32((rdtsc() - tsc_boot) * 1000u, tsc_per_ms);
}

/* Count TSC cycles over 50 ms of PIT channel 2 (one-shot, polled through
 * port 0x61: no interrupt needed). */
static void tsc_calibrate(void) {
        const uint32_t count = PIT_HZ_INPUT / 20;
        uint64_t t0, t1;

        outb(0x61, (uint8_t) ((inb(0x61) & ~0x02u) | 0x01u));  /* gate on, speaker off */
        outb(0x43, 0xB0);               /* channel 2, lo/hi byte, mode 0 */
        outb(0x42, (uint8_t) count);
        outb(0x42, (uint8_t) (count >> 8));
        t0 = rdtsc();
        while (!(inb(0x61) & 0x20))
                ;
        t1 = rdtsc();
        tsc_per_ms = div64_32(t1 - t0, 50);
        if (tsc_per_ms == 0)
                tsc_per_ms = 1;
        tsc_boot = t1;
}

/* The periodic tick only wakes the main loop: 1 kHz while writing for a
 * smooth rate, 100 Hz when idle so that an idle guest costs the host little. */
static void pit_set_hz(uint32_t hz) {
        uint32_t divisor = PIT_HZ_INPUT / hz;

        outb(0x43, 0x34);               /* channel 0, lo/hi byte, rate generator */
        outb(0x40, (uint8_t) divisor);
        outb(0x40, (uint8_t) (divisor >> 8));
}

void timer_irq(void) {
        outb(0x20, 0x20);
}

void serial_irq(void) {
        /* Only a wake-up: the main loop drains the UART. */
        outb(0x20, 0x20);
}

void exception_panic(uint32_t vector, const uint32_t *frame) {
        __asm__ volatile("cli");
        say("PANIC exception vector=%u frame=%08x %08x %08x", vector, frame[0], frame[1], frame[2]);
        for (;;)
                __asm__ volatile("hlt");
}

/* ---- page contents ---- */

static uint32_t mix32(uint32_t x) {
        x ^= x >> 16;
        x *= 0x7FEB352Du;
        x ^= x >> 15;
        x *= 0x846CA68Bu;
        x ^= x >> 16;
        return x;
}

static uint32_t page_seed(uint32_t addr, uint32_t counter) {
        return mix32(addr ^ mix32(counter * 0x9E3779B1u + 0x632BE5ABu));
}

/*
 * Page layout: word 0 = counter, word 1 = physical address, word k >= 2 =
 * seed(addr, counter) ^ (k * golden). Two versions of one page differ in
 * every body word (their seeds differ and the xor term is shared), so a mix
 * of two versions (torn), an old version (stale: header and body agree with
 * an old counter), another page's contents (word 1) and zeros (counter 0 is
 * never used) are all caught.
 */
static inline uint32_t page_word(uint32_t seed, uint32_t k) {
        return seed ^ (k * 0x9E3779B9u);
}

/* Word k >= 2 of a page body. With vmtest.compressible the xor term only
 * cycles through PATTERN_WORDS values, so a body is one 32-byte pattern
 * repeated (a compressor squeezes it ~50x) while two versions of a page
 * still differ in every body word: verify catches the same faults. */
static inline uint32_t page_body_word(uint32_t seed, uint32_t k) {
        return page_word(seed, compressible ? k % PATTERN_WORDS : k);
}

static uint32_t page_addr(uint32_t index) {
        return area_start + index * PAGE_SIZE;
}

/* Body first, then the header counter, then the expected counter: with the
 * vCPU stopped at any instruction boundary only the page named by
 * `inflight` can disagree with counters[]. */
static void page_write(uint32_t index, uint32_t counter) {
        uint32_t addr = page_addr(index);
        uint32_t *p = (uint32_t *) (uintptr_t) addr;
        uint32_t seed = page_seed(addr, counter);
        uint32_t kg = 2u * 0x9E3779B9u;        /* page_word(), incrementally */

        inflight = index;
        barrier();
        if (compressible) {
                uint32_t pattern[PATTERN_WORDS];

                for (uint32_t j = 0; j < PATTERN_WORDS; j++)
                        pattern[j] = page_word(seed, j);
                for (uint32_t k = 2; k < PAGE_WORDS; k++)
                        p[k] = pattern[k % PATTERN_WORDS];
        } else {
                for (uint32_t k = 2; k < PAGE_WORDS; k++) {
                        p[k] = seed ^ kg;
                        kg += 0x9E3779B9u;
                }
        }
        p[1] = addr;
        barrier();
        p[0] = counter;
        barrier();
        counters[index] = counter;
        barrier();
        inflight = INFLIGHT_NONE;
}

struct verify_result {
        uint32_t bad_pages;
        uint32_t first_index;
        uint32_t expected;
        uint32_t found;                 /* counter in the page header */
        uint32_t word;                  /* first wrong word */
        uint32_t value;                 /* its contents */
};

static void verify_all(struct verify_result *r) {
        *r = (struct verify_result) {};

        for (uint32_t i = 0; i < area_pages; i++) {
                uint32_t addr = page_addr(i);
                const volatile uint32_t *p = (const volatile uint32_t *) (uintptr_t) addr;
                uint32_t expected = counters[i];
                uint32_t seed = page_seed(addr, expected);
                uint32_t bad_word = PAGE_WORDS;

                if (expected == COUNTER_NONE || p[0] != expected)
                        bad_word = 0;
                else if (p[1] != addr)
                        bad_word = 1;
                else
                        for (uint32_t k = 2; k < PAGE_WORDS; k++)
                                if (p[k] != page_body_word(seed, k)) {
                                        bad_word = k;
                                        break;
                                }
                if (bad_word == PAGE_WORDS)
                        continue;
                if (r->bad_pages++ == 0) {
                        r->first_index = i;
                        r->expected = expected;
                        r->found = p[0];
                        r->word = bad_word;
                        r->value = p[bad_word];
                }
        }
}

/* ---- the writer ---- */

static uint32_t gcd(uint32_t a, uint32_t b) {
        while (b) {
                uint32_t t = a % b;
                a = b;
                b = t;
        }
        return a;
}

/* A stride near 5/8 of a working set of n pages or blocks visits each of
 * them once per cycle and spreads consecutive writes across the set. */
static uint32_t ws_stride_for(uint32_t n) {
        uint32_t stride = n > 2 ? (n * 5u / 8u) | 1u : 1u;

        while (stride > 1 && gcd(stride, n) != 1)
                stride += 2;
        if (stride >= n)
                stride = 1;
        return stride;
}

static void ws_set(uint32_t pages) {
        ws_pages = pages;
        ws_pos = 0;
        ws_stride = ws_stride_for(pages);
}

static void write_next(void) {
        uint32_t i = ws_pos;
        uint32_t c = counters[i] + 1;

        if (c == COUNTER_NONE)
                c = 1;
        page_write(i, c);
        written++;
        ws_pos += ws_stride;
        if (ws_pos >= ws_pages)
                ws_pos -= ws_pages;
}

/* ---- ATA disks: PIO, polled ---- */

#define ATA_SR_ERR 0x01
#define ATA_SR_DRQ 0x08
#define ATA_SR_DF 0x20
#define ATA_SR_BSY 0x80
#define ATA_CMD_READ_SECTORS 0x20
#define ATA_CMD_WRITE_SECTORS 0x30
#define ATA_CMD_READ_MULTIPLE 0xC4
#define ATA_CMD_SET_MULTIPLE_MODE 0xC6
#define ATA_CMD_IDENTIFY 0xEC

static const struct ata_position {
        uint16_t base, ctrl;
        uint8_t slave;
        const char *name;
} ata_positions[DISKS_MAX] = {
        { 0x1F0, 0x3F6, 0, "ide0-master" },
        { 0x1F0, 0x3F6, 1, "ide0-slave" },
        { 0x170, 0x376, 0, "ide1-master" },
        { 0x170, 0x376, 1, "ide1-slave" },
};

/* Why a command failed, for the error line. */
struct ata_failure {
        const char *what;
        uint8_t status;
        uint8_t error;
};

/* The 400 ns a drive may take to present a valid status after a select or
 * a command: four reads of the alternate status register. */
static void ata_delay(uint16_t ctrl) {
        for (int i = 0; i < 4; i++)
                (void) inb(ctrl);
}

/*
 * Polls the status until BSY is clear and, with want_drq, DRQ, ERR or DF is
 * set. Gives up after ATA_TIMEOUT_MS of waiting. Only time the guest spends
 * polling counts, in steps of at most 10 ms: a guest stopped for a migration
 * (or a clock that jumps at its switch-over) is not a drive that hangs.
 */
static bool ata_wait(uint16_t base, bool want_drq, uint8_t *ret_status) {
        uint32_t last = uptime_ms(), waited = 0;

        for (;;) {
                uint8_t s = inb(base + 7);
                uint32_t now, step;

                if (!(s & ATA_SR_BSY) && (!want_drq || (s & (ATA_SR_DRQ | ATA_SR_ERR | ATA_SR_DF)))) {
                        *ret_status = s;
                        return true;
                }
                now = uptime_ms();
                step = now - last;
                last = now;
                waited += step > 10 ? 10 : step;
                if (waited >= ATA_TIMEOUT_MS) {
                        *ret_status = s;
                        return false;
                }
        }
}

static bool ata_fail(uint16_t base, const char *what, uint8_t status, struct ata_failure *ret) {
        *ret = (struct ata_failure) {
                .what = what,
                .status = status,
                .error = (status & (ATA_SR_ERR | ATA_SR_DF)) ? inb(base + 1) : 0,
        };
        return false;
}

/* IDENTIFY DEVICE at one position: the LBA28 sector count of an ATA disk
 * there, or 0 when there is none (nothing attached, ATAPI, not usable). */
static uint32_t ata_identify(const struct ata_position *pos, uint16_t id[static 256]) {
        uint8_t s, mid, high;
        uint32_t sectors;

        outb(pos->ctrl, 0x02);          /* nIEN: we poll, IRQ 14/15 stay quiet */
        outb(pos->base + 6, (uint8_t) (0xA0 | (pos->slave << 4)));
        ata_delay(pos->ctrl);
        s = inb(pos->base + 7);
        /* 0xFF: floating bus, no controller or no drive on the channel;
         * 0: QEMU's answer for a missing drive. */
        if (s == 0xFF || s == 0)
                return 0;
        outb(pos->base + 2, 0);
        outb(pos->base + 3, 0);
        outb(pos->base + 4, 0);
        outb(pos->base + 5, 0);
        outb(pos->base + 7, ATA_CMD_IDENTIFY);
        ata_delay(pos->ctrl);
        s = inb(pos->base + 7);
        if (s == 0)
                return 0;
        if (!ata_wait(pos->base, false, &s)) {
                say("WARN %s: IDENTIFY timed out (status 0x%02x): skipped", pos->name, s);
                return 0;
        }
        /* A packet device aborts IDENTIFY DEVICE and shows its signature. */
        mid = inb(pos->base + 4);
        high = inb(pos->base + 5);
        if ((mid == 0x14 && high == 0xEB) || (mid == 0x69 && high == 0x96)) {
                say("NOTE %s is an ATAPI device (a CD-ROM?): skipped", pos->name);
                return 0;
        }
        if (s & (ATA_SR_ERR | ATA_SR_DF))
                return 0;               /* e.g. an empty master next to a slave */
        if (mid != 0 || high != 0) {
                say("WARN %s: signature 0x%02x%02x is not an ATA disk: skipped", pos->name, high, mid);
                return 0;
        }
        if (!ata_wait(pos->base, true, &s) || (s & (ATA_SR_ERR | ATA_SR_DF)) || !(s & ATA_SR_DRQ)) {
                say("WARN %s: IDENTIFY failed (status 0x%02x): skipped", pos->name, s);
                return 0;
        }
        insw(pos->base, id, 256);
        if (!(id[49] & (1u << 9))) {
                say("WARN %s: no LBA addressing: skipped", pos->name);
                return 0;
        }
        sectors = (uint32_t) id[60] | (uint32_t) id[61] << 16;
        return sectors > 0x0FFFFFFFu ? 0x0FFFFFFFu : sectors;
}

/*
 * One block per DRQ for reads. READ SECTORS costs one block-layer request
 * per sector in QEMU, READ MULTIPLE with 8-sector multiple mode one per
 * block: verify runs ~4x faster under TCG. QEMU migrates the multiple mode
 * (ide_drive's mult_sectors) with the device. Writes keep WRITE SECTORS on
 * purpose: a request per sector lets a switch-over land inside a block.
 */
static bool ata_set_multiple(const struct ata_position *pos, const uint16_t id[static 256]) {
        uint8_t s;

        if ((id[47] & 0xFF) < BLOCK_SECTORS)
                return false;
        outb(pos->base + 6, (uint8_t) (0xA0 | (pos->slave << 4)));
        ata_delay(pos->ctrl);
        outb(pos->base + 2, BLOCK_SECTORS);
        outb(pos->base + 7, ATA_CMD_SET_MULTIPLE_MODE);
        ata_delay(pos->ctrl);
        return ata_wait(pos->base, false, &s) && !(s & (ATA_SR_ERR | ATA_SR_DF));
}

/* WRITE SECTORS, or READ MULTIPLE / READ SECTORS, of one block (8 sectors,
 * LBA28). Returns once the drive has taken the last sector (write) or given
 * it (read) and cleared BSY; a failure fills *ret_failure. */
static bool ata_transfer_block(const struct disk *dk, uint32_t block, bool write, uint32_t *buf,
                               struct ata_failure *ret_failure) {
        uint32_t lba = block * BLOCK_SECTORS;
        uint32_t per_drq = !write && dk->read_multiple ? BLOCK_SECTORS : 1;
        uint8_t cmd = write ? ATA_CMD_WRITE_SECTORS
                            : dk->read_multiple ? ATA_CMD_READ_MULTIPLE : ATA_CMD_READ_SECTORS;
        uint8_t s;

        if (!ata_wait(dk->base, false, &s))
                return ata_fail(dk->base, "busy before the command", s, ret_failure);
        outb(dk->base + 6, (uint8_t) (0xE0 | (dk->slave << 4) | ((lba >> 24) & 0x0F)));
        ata_delay(dk->ctrl);
        if (!ata_wait(dk->base, false, &s))
                return ata_fail(dk->base, "busy after select", s, ret_failure);
        outb(dk->base + 2, BLOCK_SECTORS);
        outb(dk->base + 3, (uint8_t) lba);
        outb(dk->base + 4, (uint8_t) (lba >> 8));
        outb(dk->base + 5, (uint8_t) (lba >> 16));
        outb(dk->base + 7, cmd);
        for (uint32_t sector = 0; sector < BLOCK_SECTORS; sector += per_drq) {
                ata_delay(dk->ctrl);
                if (!ata_wait(dk->base, true, &s))
                        return ata_fail(dk->base, "timeout waiting for DRQ", s, ret_failure);
                if ((s & (ATA_SR_ERR | ATA_SR_DF)) || !(s & ATA_SR_DRQ))
                        return ata_fail(dk->base, "error", s, ret_failure);
                if (write)
                        outsw(dk->base, buf + sector * 128u, 256 * per_drq);
                else
                        insw(dk->base, buf + sector * 128u, 256 * per_drq);
        }
        ata_delay(dk->ctrl);
        if (!ata_wait(dk->base, false, &s))
                return ata_fail(dk->base, "timeout waiting for completion", s, ret_failure);
        if (s & (ATA_SR_ERR | ATA_SR_DF | ATA_SR_DRQ))
                return ata_fail(dk->base, "error at completion", s, ret_failure);
        return true;
}

/* ---- disk blocks ---- */

/* Unique per block: blocks < 2^25 (LBA28 / 8), disks < 4. */
static uint32_t block_id(uint32_t disk, uint32_t block) {
        return disk << 28 | block;
}

/*
 * Block layout, like a page: word 0 = counter, word 1 = disk index, word 2 =
 * block number, word k >= 3 = seed(disk, block, counter) ^ (k * golden).
 * Two versions differ in every body word. Counter 0 = never written: the
 * block must read as zeros, as a fresh raw or qcow2 image does; or, for a
 * disk named in vmtest.disk_base, as version COUNTER_BASE, which the host
 * wrote into a base image (guestctl.py make-base): a copy that loses the
 * backing file under a copied top image shows.
 */
static void block_fill(uint32_t *p, uint32_t disk, uint32_t block, uint32_t counter) {
        uint32_t seed = page_seed(block_id(disk, block), counter);

        p[0] = counter;
        p[1] = disk;
        p[2] = block;
        for (uint32_t k = 3; k < BLOCK_WORDS; k++)
                p[k] = page_word(seed, k);
}

static void disk_failed(uint32_t d, uint32_t block, const char *op, const struct ata_failure *f) {
        disks[d].failed = true;
        disk_errors++;
        say("DISK-ERROR disk=%u name=%s block=%u op=%s what='%s' status=0x%02x error=0x%02x", d,
            disks[d].name, block, op, f->what, f->status, f->error);
}

/*
 * Writes counter C into block b: counters[b] = C first, then the 8-sector
 * WRITE SECTORS command, waited for until the drive has taken the last
 * sector and cleared BSY.
 *
 * Why this order is safe across a migration. QEMU stops the guest between
 * two instructions (a `rep outsw` between two words) and, before the
 * switch-over, drains the block requests in flight; the half-transferred
 * PIO command (its buffer, position, remaining sectors) is device state and
 * migrates with RAM. So at any stop:
 *  - no write under way (disk_inflight == INFLIGHT_NONE): every block holds
 *    exactly its counter, by induction over completed writes;
 *  - a write of block b under way (disk_inflight names it): counters[b] = C
 *    and the block holds its previous version P (C-1; zeros when C is 1),
 *    or its first sectors C and the rest P (QEMU carries out WRITE SECTORS
 *    one sector, one block-layer request, at a time). Every other block
 *    holds its counter.
 * On the destination the guest resumes inside the same command and pushes
 * the remaining words, so the block holds C by the time the command ends.
 * disk-verify runs in the main loop, between two block writes (one CPU, no
 * interrupt does disk I/O), so it never meets a write under way and accepts
 * exactly counters[b], never P: a block that holds P, or a mix, after a
 * migration is a write the migration lost. Only a checker that reads the
 * image of a stopped guest must allow the one block named by disk_inflight
 * to hold P or P/C. Counter first also means a write that fails leaves a
 * block that verify reports, rather than a counter that hides the failure.
 */
static bool disk_block_write(uint32_t d, uint32_t block, uint32_t counter) {
        struct disk *dk = &disks[d];
        struct ata_failure f;
        bool ok;

        block_fill(disk_buf, d, block, counter);
        disk_inflight = block_id(d, block);
        barrier();
        dk->counters[block] = counter;
        barrier();
        ok = ata_transfer_block(dk, block, true, disk_buf, &f);
        barrier();
        disk_inflight = INFLIGHT_NONE;
        if (!ok)
                disk_failed(d, block, "write", &f);
        return ok;
}

/* One block of the next disk's working set: disks take turns. */
static void disk_write_next(void) {
        for (uint32_t tries = 0; tries < disk_count; tries++) {
                uint32_t d = disk_next;
                struct disk *dk = &disks[d];
                uint32_t b, c;

                disk_next = disk_next + 1 < disk_count ? disk_next + 1 : 0;
                if (dk->failed || dk->ws_blocks == 0)
                        continue;
                b = dk->ws_pos;
                c = dk->counters[b] + 1;
                if (c == COUNTER_NONE)
                        c = 1;
                dk->ws_pos += dk->ws_stride;
                if (dk->ws_pos >= dk->ws_blocks)
                        dk->ws_pos -= dk->ws_blocks;
                if (disk_block_write(d, b, c)) {
                        disk_written++;
                        disk_last = block_id(d, b);
                }
                return;
        }
}

struct disk_verify_result {
        uint32_t blocks;                /* blocks read */
        uint32_t bad_blocks;
        uint32_t disk;                  /* the first bad block: */
        uint32_t block;
        uint32_t expected;
        uint32_t found;                 /* word 0 of the block */
        uint32_t word;                  /* first wrong word */
        uint32_t value;                 /* its contents */
        bool io_error;                  /* reading disk/block failed: the check stopped there */
        struct ata_failure failure;
};

static void disk_verify_all(struct disk_verify_result *r) {
        *r = (struct disk_verify_result) {};

        for (uint32_t d = 0; d < disk_count; d++) {
                struct disk *dk = &disks[d];

                for (uint32_t b = 0; b < dk->blocks; b++) {
                        uint32_t expected = dk->counters[b], seed, bad_word = BLOCK_WORDS;
                        const uint32_t *p = disk_buf;

                        if (!ata_transfer_block(dk, b, false, disk_buf, &r->failure)) {
                                r->io_error = true;
                                r->disk = d;
                                r->block = b;
                                disk_failed(d, b, "read", &r->failure);
                                return;
                        }
                        r->blocks++;
                        if (expected == COUNTER_NONE && (disk_base_mask >> d & 1u))
                                expected = COUNTER_BASE;
                        if (expected == COUNTER_NONE) {
                                for (uint32_t k = 0; k < BLOCK_WORDS; k++)
                                        if (p[k] != 0) {
                                                bad_word = k;
                                                break;
                                        }
                        } else if (p[0] != expected) {
                                bad_word = 0;
                        } else if (p[1] != d) {
                                bad_word = 1;
                        } else if (p[2] != b) {
                                bad_word = 2;
                        } else {
                                seed = page_seed(block_id(d, b), expected);
                                for (uint32_t k = 3; k < BLOCK_WORDS; k++)
                                        if (p[k] != page_word(seed, k)) {
                                                bad_word = k;
                                                break;
                                        }
                        }
                        if (bad_word == BLOCK_WORDS)
                                continue;
                        if (r->bad_blocks++ == 0) {
                                r->disk = d;
                                r->block = b;
                                r->expected = expected;
                                r->found = p[0];
                                r->word = bad_word;
                                r->value = p[bad_word];
                        }
                }
        }
}

/* ---- command line ---- */

static char cmdline[1024];

static bool str_eq(const char *a, const char *b) {
        while (*a && *a == *b)
                a++, b++;
        return *a == *b;
}

static bool str_prefix(const char *s, const char *prefix) {
        while (*prefix)
                if (*s++ != *prefix++)
                        return false;
        return true;
}

/* Decimal number with an optional K/M/G suffix (bytes), in pages. */
static bool parse_size_pages(const char *s, uint32_t *ret_pages) {
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return false;
        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > (1ull << 40))
                        return false;
        }
        switch (*p) {
        case 'k': case 'K': v <<= 10; p++; break;
        case 'm': case 'M': v <<= 20; p++; break;
        case 'g': case 'G': v <<= 30; p++; break;
        default: break;
        }
        if (*p != '\0' || (v >> 12) > 0xFFFFFFFFull)
                return false;
        *ret_pages = (uint32_t) (v >> 12);
        return true;
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *ret) {
        uint32_t v = 0;

        if (*s == '\0')
                return false;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return false;
                if (v > (max - (uint32_t) (*s - '0')) / 10)
                        return false;
                v = v * 10 + (uint32_t) (*s - '0');
        }
        *ret = v;
        return true;
}

struct options {
        uint32_t mem_pages;             /* UINT32_MAX: all free memory */
        uint32_t ws_pages;              /* UINT32_MAX: the whole area */
        uint32_t rate;
        uint32_t hb_ms;
        uint32_t pulse_ms;
        uint32_t disk_rate;
        uint32_t disk_ws_blocks;        /* UINT32_MAX: each whole disk */
        uint32_t disk_base_mask;
        uint32_t compressible;
};

static void parse_cmdline(char *s, struct options *o) {
        while (*s) {
                char *tok, *val = NULL;

                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                tok = s;
                while (*s && *s != ' ')
                        s++;
                if (*s)
                        *s++ = '\0';
                if (!str_prefix(tok, "vmtest."))
                        continue;       /* the kernel path, other people's options */
                for (char *p = tok; *p; p++)
                        if (*p == '=') {
                                *p = '\0';
                                val = p + 1;
                                break;
                        }
                if (!val) {
                        say("WARN option '%s' needs a value (%s=VALUE); ignored", tok, tok);
                } else if (str_eq(tok, "vmtest.mem")) {
                        /* A failed parse may have stored 0: put the default
                         * back, as the warning says. */
                        if (!parse_size_pages(val, &o->mem_pages) || o->mem_pages == 0) {
                                o->mem_pages = UINT32_MAX;
                                say("WARN vmtest.mem='%s' is not a size of at least 4K like 48M; using all free memory", val);
                        }
                } else if (str_eq(tok, "vmtest.ws")) {
                        if (!parse_size_pages(val, &o->ws_pages) || o->ws_pages == 0) {
                                o->ws_pages = UINT32_MAX;
                                say("WARN vmtest.ws='%s' is not a size of at least 4K like 16M; using the whole area", val);
                        }
                } else if (str_eq(tok, "vmtest.rate")) {
                        if (!parse_u32(val, RATE_MAX, &o->rate)) {
                                o->rate = 0;
                                say("WARN vmtest.rate='%s' is not a number of pages/s in 0..%u; using 0", val, RATE_MAX);
                        }
                } else if (str_eq(tok, "vmtest.hb")) {
                        if (!parse_u32(val, 3600000, &o->hb_ms)) {
                                o->hb_ms = 1000;
                                say("WARN vmtest.hb='%s' is not a period in ms in 0..3600000; using 1000", val);
                        }
                } else if (str_eq(tok, "vmtest.pulse")) {
                        if (!parse_u32(val, PULSE_MS_MAX, &o->pulse_ms)) {
                                o->pulse_ms = 0;
                                say("WARN vmtest.pulse='%s' is not a period in ms in 0..%u; no pulse", val,
                                    PULSE_MS_MAX);
                        }
                } else if (str_eq(tok, "vmtest.disk_rate")) {
                        if (!parse_u32(val, DISK_RATE_MAX, &o->disk_rate)) {
                                o->disk_rate = 0;
                                say("WARN vmtest.disk_rate='%s' is not a number of blocks/s in 0..%u; "
                                    "using 0",
                                    val, DISK_RATE_MAX);
                        }
                } else if (str_eq(tok, "vmtest.disk_ws")) {
                        /* Blocks are pages in size: the same parser. */
                        if (!parse_size_pages(val, &o->disk_ws_blocks) || o->disk_ws_blocks == 0) {
                                o->disk_ws_blocks = UINT32_MAX;
                                say("WARN vmtest.disk_ws='%s' is not a size of at least 4K like 8M; "
                                    "using whole disks",
                                    val);
                        }
                } else if (str_eq(tok, "vmtest.disk_base")) {
                        if (!parse_u32(val, 15, &o->disk_base_mask)) {
                                o->disk_base_mask = 0;
                                say("WARN vmtest.disk_base='%s' is not a mask of disks in 0..15; using 0",
                                    val);
                        }
                } else if (str_eq(tok, "vmtest.compressible")) {
                        if (!parse_u32(val, 1, &o->compressible)) {
                                o->compressible = 0;
                                say("WARN vmtest.compressible='%s' is not 0 or 1; using 0", val);
                        }
                } else {
                        say("WARN unknown option '%s' (known: vmtest.mem, vmtest.ws, vmtest.rate, "
                            "vmtest.hb, vmtest.pulse, vmtest.disk_rate, vmtest.disk_ws, vmtest.disk_base, "
                            "vmtest.compressible); ignored",
                            tok);
                }
        }
}

/* ---- commands on COM1 ---- */

static char line[128];
static uint32_t line_len;
static bool line_overflow;

/* 1 kHz ticks while either writer runs, for a smooth rate, and while
 * pulsing, so that a pulse leaves at most 1 ms late. */
static void pit_update(void) {
        pit_set_hz(rate || (disk_rate && disk_count) || pulse_ms ? 1000 : 100);
}

static void rate_set(uint32_t r) {
        rate = r;
        pit_update();
}

static void disk_rate_set(uint32_t r) {
        disk_rate = r;
        pit_update();
}

#define COMMANDS "status, verify, rate N, disk-status, disk-verify, disk-rate N"

static void disk_status(const char *sep, const char *tag) {
        char list[DISKS_MAX * 40] = "", last[32] = "-";
        size_t len = 0;

        for (uint32_t d = 0; d < disk_count; d++)
                len += format(list + len, sizeof(list) - len, " d%u=%u:%s", d, disks[d].blocks,
                              disks[d].name);
        if (disk_last != INFLIGHT_NONE)
                format(last, sizeof(last), "%u:%u", disk_last >> 28, disk_last & 0x0FFFFFFFu);
        say("DISK-STATUS disks=%u written=%u rate=%u errors=%u last=%s uptime_ms=%u%s%s%s", disk_count,
            disk_written, disk_rate, disk_errors, last, uptime_ms(), list, sep, tag);
}

/* An optional last token "@TAG" is echoed at the end of the answer, so that
 * a host can tell its answer from one meant for an earlier client. */
static void command(char *s) {
        char *tok[4];
        uint32_t n = 0;
        const char *tag = "", *sep = "";
        bool too_many = false;

        while (*s) {
                while (*s == ' ' || *s == '\t')
                        *s++ = '\0';
                if (!*s)
                        break;
                /* Past the last slot keep overwriting it: the tag is last. */
                if (n == sizeof(tok) / sizeof(tok[0])) {
                        too_many = true;
                        n--;
                }
                tok[n++] = s;
                while (*s && *s != ' ' && *s != '\t')
                        s++;
        }
        if (n > 0 && tok[n - 1][0] == '@') {
                tag = tok[--n];
                sep = " ";
        }
        if (n == 0)
                return;                 /* empty line */
        if (too_many) {
                say("ERR too many words (commands: " COMMANDS ")%s%s", sep, tag);
                return;
        }

        if (str_eq(tok[0], "status") && n == 1) {
                say("STATUS pages=%u ws_pages=%u rate=%u written=%u uptime_ms=%u area=0x%08x-0x%08x counters=0x%08x%s%s",
                    area_pages, ws_pages, rate, written, uptime_ms(), area_start,
                    area_start + area_pages * PAGE_SIZE, (uint32_t) (uintptr_t) counters, sep, tag);
        } else if (str_eq(tok[0], "verify") && n == 1) {
                struct verify_result r;
                uint32_t t0 = uptime_ms();

                /* Single CPU: the writer does not run until this returns. */
                verify_all(&r);
                if (r.bad_pages == 0)
                        say("VERIFY OK pages=%u ms=%u%s%s", area_pages, uptime_ms() - t0, sep, tag);
                else
                        say("VERIFY BAD page=0x%08x index=%u expected=%u found=%u word=%u value=0x%08x bad_pages=%u pages=%u ms=%u%s%s",
                            page_addr(r.first_index), r.first_index, r.expected, r.found, r.word,
                            r.value, r.bad_pages, area_pages, uptime_ms() - t0, sep, tag);
        } else if (str_eq(tok[0], "rate") && n <= 2) {
                uint32_t r;

                if (n < 2 || !parse_u32(tok[1], RATE_MAX, &r)) {
                        say("ERR rate needs a number of pages/s in 0..%u, got '%s'%s%s", RATE_MAX,
                            n < 2 ? "" : tok[1], sep, tag);
                        return;
                }
                rate_set(r);
                say("RATE %u%s%s", r, sep, tag);
        } else if (str_eq(tok[0], "disk-status") && n == 1) {
                disk_status(sep, tag);
        } else if (str_eq(tok[0], "disk-verify") && n == 1) {
                struct disk_verify_result r;
                uint32_t t0 = uptime_ms();

                disk_verify_all(&r);
                if (r.io_error)
                        say("DISK-VERIFY ERROR disk=%u block=%u op=read what='%s' status=0x%02x "
                            "error=0x%02x bad_blocks=%u blocks=%u ms=%u%s%s",
                            r.disk, r.block, r.failure.what, r.failure.status, r.failure.error, r.bad_blocks,
                            r.blocks, uptime_ms() - t0, sep, tag);
                else if (r.bad_blocks == 0)
                        say("DISK-VERIFY OK disks=%u blocks=%u ms=%u%s%s", disk_count, r.blocks,
                            uptime_ms() - t0, sep, tag);
                else
                        say("DISK-VERIFY BAD disk=%u block=%u expected=%u found=%u word=%u value=0x%08x "
                            "bad_blocks=%u blocks=%u ms=%u%s%s",
                            r.disk, r.block, r.expected, r.found, r.word, r.value, r.bad_blocks, r.blocks,
                            uptime_ms() - t0, sep, tag);
        } else if (str_eq(tok[0], "disk-rate") && n <= 2) {
                uint32_t r;

                if (n < 2 || !parse_u32(tok[1], DISK_RATE_MAX, &r)) {
                        say("ERR disk-rate needs a number of blocks/s in 0..%u, got '%s'%s%s", DISK_RATE_MAX,
                            n < 2 ? "" : tok[1], sep, tag);
                        return;
                }
                disk_rate_set(r);
                say("DISK-RATE %u%s%s", r, sep, tag);
        } else {
                say("ERR unknown command '%s' (known: " COMMANDS ")%s%s", tok[0], sep, tag);
        }
}

static void serial_poll(void) {
        while (inb(COM1 + 5) & 0x01) {
                char c = (char) inb(COM1);

                if (c == '\r' || c == '\n') {
                        if (line_overflow)
                                say("ERR line longer than %u bytes", (uint32_t) sizeof(line) - 1);
                        else {
                                line[line_len] = '\0';
                                command(line);
                        }
                        line_len = 0;
                        line_overflow = false;
                } else if (line_len + 1 < sizeof(line)) {
                        line[line_len++] = c;
                } else {
                        line_overflow = true;
                }
        }
}

/* ---- disks at boot ---- */

static uint32_t align_up(uint32_t v, uint32_t a) {
        return (v + a - 1) & ~(a - 1);
}

static void disk_probe(void) {
        for (uint32_t i = 0; i < DISKS_MAX; i++) {
                const struct ata_position *pos = &ata_positions[i];
                uint16_t id[256];
                uint32_t sectors = ata_identify(pos, id);

                if (sectors == 0)
                        continue;
                if (sectors < BLOCK_SECTORS) {
                        say("WARN %s has %u sectors, less than one 4K block: skipped", pos->name, sectors);
                        continue;
                }
                disks[disk_count++] = (struct disk) {
                        .base = pos->base,
                        .ctrl = pos->ctrl,
                        .slave = pos->slave,
                        .name = pos->name,
                        .sectors = sectors,
                        .blocks = sectors / BLOCK_SECTORS,      /* a partial last block is left alone */
                        .read_multiple = ata_set_multiple(pos, id),
                };
        }
}

/* Gives each disk at most what is left of budget_words counters (a disk
 * too big is tested on its first blocks only) and returns the bytes of all
 * counters, in whole pages. */
static uint32_t disk_counters_size(uint32_t budget_words) {
        uint32_t words = 0;

        for (uint32_t d = 0; d < disk_count; d++) {
                struct disk *dk = &disks[d];

                if (dk->blocks > budget_words - words) {
                        say("WARN disk %u (%s): %u blocks need more counters than half of the free RAM "
                            "holds: only its first %u blocks are written and verified",
                            d, dk->name, dk->blocks, budget_words - words);
                        dk->blocks = budget_words - words;
                }
                words += dk->blocks;
        }
        return align_up(words * 4u, PAGE_SIZE);
}

/* Counters at `base`, all zero: a fresh image reads as zeros everywhere. */
static void disk_place(uint32_t base, uint32_t ws_blocks) {
        disk_counters = (uint32_t *) (uintptr_t) base;
        for (uint32_t d = 0, off = 0; d < disk_count; d++) {
                struct disk *dk = &disks[d];

                dk->counters = disk_counters + off;
                off += dk->blocks;
                for (uint32_t b = 0; b < dk->blocks; b++)
                        dk->counters[b] = COUNTER_NONE;
                if (ws_blocks != UINT32_MAX && ws_blocks > dk->blocks)
                        say("WARN vmtest.disk_ws=%uK is larger than disk %u (%s, %uK): its whole disk is "
                            "rewritten",
                            ws_blocks * 4u, d, dk->name, dk->blocks * 4u);
                dk->ws_blocks = ws_blocks < dk->blocks ? ws_blocks : dk->blocks;
                dk->ws_stride = ws_stride_for(dk->ws_blocks);
        }
}

/* ---- main ---- */

struct multiboot_info {
        uint32_t flags;
        uint32_t mem_lower;
        uint32_t mem_upper;
        uint32_t boot_device;
        uint32_t cmdline;
};

void guest_main(uint32_t magic, uint32_t mbi_addr) {
        const struct multiboot_info *mbi = (const struct multiboot_info *) (uintptr_t) mbi_addr;
        struct options opt = {
                .mem_pages = UINT32_MAX, .ws_pages = UINT32_MAX, .hb_ms = 1000, .disk_ws_blocks = UINT32_MAX
        };
        uint32_t mem_upper_kib, mem_top, kernel_end, max_pages, want, disk_bytes;

        serial_init();
        if (magic != 0x2BADB002u) {
                say("PANIC not started by a multiboot loader (eax=0x%08x)", magic);
                return;
        }
        if (!(mbi->flags & 1u)) {
                say("PANIC the multiboot loader gave no memory size");
                return;
        }
        /* The loader put the info and the command line just above the
         * kernel, where the counters go: copy what we need first. */
        mem_upper_kib = mbi->mem_upper;
        if (mbi->flags & 4u) {
                const char *src = (const char *) (uintptr_t) mbi->cmdline;
                uint32_t n = 0;
                while (src[n] && n + 1 < sizeof(cmdline)) {
                        cmdline[n] = src[n];
                        n++;
                }
                cmdline[n] = '\0';
        }

        idt_init();
        pic_init();
        lapic_route_pic();
        tsc_calibrate();
        parse_cmdline(cmdline, &opt);
        disk_probe();

        mem_top = mem_upper_kib >= (0xFFF00000u >> 10) ? 0xFFF00000u
                                                       : 0x100000u + mem_upper_kib * 1024u;
        mem_top &= ~(PAGE_SIZE - 1);
        kernel_end = align_up((uint32_t) (uintptr_t) _end, PAGE_SIZE);
        if (mem_top < kernel_end + 2 * PAGE_SIZE) {
                say("PANIC only %u KiB above 1 MiB: no room for a test area", mem_upper_kib);
                return;
        }
        /* kernel, page counters, disk counters, area. The disk counters get
         * at most half of the free RAM (always 0 without disks) and come
         * off the area's share. */
        disk_bytes = disk_counters_size((mem_top - kernel_end - 2 * PAGE_SIZE) / 2u / 4u);
        max_pages = (mem_top - kernel_end - disk_bytes) / PAGE_SIZE;
        want = opt.mem_pages < max_pages ? opt.mem_pages : max_pages;
        counters = (uint32_t *) (uintptr_t) kernel_end;
        disk_place(align_up(kernel_end + want * 4u, PAGE_SIZE), opt.disk_ws_blocks);
        area_start = (uint32_t) (uintptr_t) disk_counters + disk_bytes;
        area_pages = (mem_top - area_start) / PAGE_SIZE;
        if (area_pages > want)
                area_pages = want;
        if (opt.mem_pages != UINT32_MAX && opt.mem_pages > area_pages)
                say("WARN vmtest.mem=%uK does not fit below the top of RAM (0x%08x): clamped to %uK",
                    opt.mem_pages * 4u, mem_top, area_pages * 4u);
        if (opt.ws_pages != UINT32_MAX && opt.ws_pages > area_pages)
                say("WARN vmtest.ws=%uK is larger than the area: clamped to %uK",
                    opt.ws_pages * 4u, area_pages * 4u);
        ws_set(opt.ws_pages < area_pages ? opt.ws_pages : area_pages);
        hb_ms = opt.hb_ms;
        if (opt.pulse_ms && !com2_init()) {
                say("WARN vmtest.pulse=%u needs a second serial port (COM2 at 0x2f8), and there is none: no pulse",
                    opt.pulse_ms);
                opt.pulse_ms = 0;
        }
        pulse_ms = opt.pulse_ms;
        compressible = opt.compressible;

        say("VMTEST BOOT version=%u mem_upper_kib=%u area=0x%08x-0x%08x pages=%u ws_pages=%u rate=%u "
            "hb_ms=%u counters=0x%08x inflight=0x%08x disks=%u disk_rate=%u disk_counters=0x%08x "
            "disk_inflight=0x%08x pulse_ms=%u compressible=%u",
            GUEST_VERSION, mem_upper_kib, area_start, area_start + area_pages * PAGE_SIZE, area_pages,
            ws_pages, opt.rate, hb_ms, (uint32_t) (uintptr_t) counters, (uint32_t) (uintptr_t) &inflight,
            disk_count, opt.disk_rate, (uint32_t) (uintptr_t) disk_counters,
            (uint32_t) (uintptr_t) &disk_inflight, pulse_ms, compressible ? 1u : 0u);
        for (uint32_t d = 0; d < disk_count; d++)
                say("DISK %u %s sectors=%u blocks=%u ws_blocks=%u counters=0x%08x read=%s", d, disks[d].name,
                    disks[d].sectors, disks[d].blocks, disks[d].ws_blocks,
                    (uint32_t) (uintptr_t) disks[d].counters,
                    disks[d].read_multiple ? "multiple" : "single");

        {
                char line[VGA_COLS + 1];

                for (unsigned row = 0; row < VGA_ROWS; row++)
                        vga_line(row, "");
                format(line, sizeof(line), "VMTEST GUEST version=%u pages=%u rate=%u", GUEST_VERSION, area_pages,
                       opt.rate);
                vga_line(0, line);
        }

        disk_rate = opt.disk_rate;
        disk_base_mask = opt.disk_base_mask;
        rate_set(opt.rate);             /* starts the PIT */

        uint32_t t0 = uptime_ms();
        for (uint32_t i = 0; i < area_pages; i++)
                page_write(i, 1);
        say("VMTEST READY fill_ms=%u", uptime_ms() - t0);

        uint32_t last_ms = uptime_ms(), credit = 0, disk_credit = 0;
        uint32_t hb_seq = 0, hb_last_ms = last_ms, hb_last_written = 0;
        uint32_t pulse_seq = 0, pulse_next_us = uptime_us();

        for (;;) {
                uint32_t now, delta, burst = 0, disk_burst = 0;

                serial_poll();

                if (pulse_ms) {
                        uint32_t now_us = uptime_us();

                        /* The pulse: a short line on COM2 every pulse_ms, its
                         * sequence number and the guest's clock, for a host
                         * that times the gaps (tests/hosts/guest-pulse.py).
                         * A late pulse does not cause a burst of catch-up
                         * pulses: seq counts pulses sent, not periods. */
                        if ((int32_t) (now_us - pulse_next_us) >= 0) {
                                char pl[48];

                                format(pl, sizeof(pl), "PULSE seq=%u us=%u\n", ++pulse_seq, now_us);
                                com2_puts(pl);
                                pulse_next_us += pulse_ms * 1000u;
                                if ((int32_t) (now_us - pulse_next_us) >= 0)
                                        pulse_next_us = now_us + pulse_ms * 1000u;
                        }
                }

                now = uptime_ms();
                /* Never trust the clock to be monotonic across a migration. */
                if ((int32_t) (now - hb_last_ms) < 0)
                        hb_last_ms = now;
                if ((int32_t) (now - last_ms) < 0)
                        last_ms = now;
                if (hb_ms && now - hb_last_ms >= hb_ms) {
                        uint32_t elapsed = now - hb_last_ms;
                        uint32_t wps = div64_32((uint64_t) (written - hb_last_written) * 1000u, elapsed);
                        char line[VGA_COLS + 1];

                        say("HB seq=%u uptime_ms=%u written=%u rate=%u wps=%u ws_pages=%u pages=%u",
                            ++hb_seq, now, written, rate, wps, ws_pages, area_pages);
                        format(line, sizeof(line), "HB seq=%u written=%u", hb_seq, written);
                        vga_line(1, line);
                        hb_last_ms = now;
                        hb_last_written = written;
                }

                /* Token bucket in page-milliseconds. Time spent in verify or
                 * while idle does not turn into a burst of writes later. */
                delta = now - last_ms;
                last_ms = now;
                if (rate == 0) {
                        credit = 0;
                } else {
                        uint32_t cap = rate * 20u + WRITE_BATCH * 1000u;
                        credit += rate * (delta > 1000 ? 1000 : delta);
                        if (credit > cap)
                                credit = cap;
                        while (credit >= 1000 && burst < WRITE_BATCH) {
                                write_next();
                                credit -= 1000;
                                burst++;
                        }
                }
                /* The disk writer: its own bucket in block-milliseconds, the
                 * same way. A block takes ~1000 page writes' time under TCG
                 * (PIO): a smaller batch keeps the serial port answering.
                 * Its bucket holds 100 ms, not 20: a block's PIO write and a
                 * serial answer take milliseconds each, and a loaded host
                 * stalls the vCPU for tens more; a 20 ms bucket lost that
                 * credit and wrote 15-20% under the rate (CI, 2 cores). */
                if (disk_rate == 0 || disk_count == 0) {
                        disk_credit = 0;
                } else {
                        uint32_t cap = disk_rate * 100u + DISK_BATCH * 1000u;
                        disk_credit += disk_rate * (delta > 1000 ? 1000 : delta);
                        if (disk_credit > cap)
                                disk_credit = cap;
                        while (disk_credit >= 1000 && disk_burst < DISK_BATCH) {
                                disk_write_next();
                                disk_credit -= 1000;
                                disk_burst++;
                        }
                }
                if (burst || disk_burst)
                        continue;
                /* Nothing to do before the next tick or input byte. */
                idle_wait();
        }
}
