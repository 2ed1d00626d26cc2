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

#define GUEST_VERSION 1

#define PAGE_SIZE 4096u
#define PAGE_WORDS (PAGE_SIZE / 4u)
#define COUNTER_NONE 0u                 /* never a valid page counter */
#define INFLIGHT_NONE 0xFFFFFFFFu

#define COM1 0x3F8
#define PIT_HZ_INPUT 1193182u
#define RATE_MAX 1000000u               /* pages/s; far above what TCG reaches */
#define WRITE_BATCH 16u                 /* pages between two serial polls */

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
static uint32_t written;                /* pages written by the writer (not the fill) */
/* Page being rewritten right now, or INFLIGHT_NONE: while it is set that
 * page may legitimately be half old and half new in a snapshot of RAM taken
 * with the vCPU stopped. verify never runs while it is set. */
static volatile uint32_t inflight = INFLIGHT_NONE;

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

static void say(const char *f, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *f, ...) {
        char buf[320];
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
        for (uint32_t k = 2; k < PAGE_WORDS; k++) {
                p[k] = seed ^ kg;
                kg += 0x9E3779B9u;
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
                                if (p[k] != page_word(seed, k)) {
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

static void ws_set(uint32_t pages) {
        ws_pages = pages;
        ws_pos = 0;
        /* A stride near 5/8 of the set visits every page once per cycle and
         * spreads consecutive writes across it. */
        ws_stride = pages > 2 ? (pages * 5u / 8u) | 1u : 1u;
        while (ws_stride > 1 && gcd(ws_stride, pages) != 1)
                ws_stride += 2;
        if (ws_stride >= pages)
                ws_stride = 1;
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
                } else {
                        say("WARN unknown option '%s' (known: vmtest.mem, vmtest.ws, vmtest.rate, vmtest.hb); ignored", tok);
                }
        }
}

/* ---- commands on COM1 ---- */

static char line[128];
static uint32_t line_len;
static bool line_overflow;

static void rate_set(uint32_t r) {
        rate = r;
        pit_set_hz(r ? 1000 : 100);
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
                say("ERR too many words (commands: status, verify, rate N)%s%s", sep, tag);
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
        } else {
                say("ERR unknown command '%s' (known: status, verify, rate N)%s%s", tok[0], sep, tag);
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

/* ---- main ---- */

struct multiboot_info {
        uint32_t flags;
        uint32_t mem_lower;
        uint32_t mem_upper;
        uint32_t boot_device;
        uint32_t cmdline;
};

static uint32_t align_up(uint32_t v, uint32_t a) {
        return (v + a - 1) & ~(a - 1);
}

void guest_main(uint32_t magic, uint32_t mbi_addr) {
        const struct multiboot_info *mbi = (const struct multiboot_info *) (uintptr_t) mbi_addr;
        struct options opt = { .mem_pages = UINT32_MAX, .ws_pages = UINT32_MAX, .hb_ms = 1000 };
        uint32_t mem_upper_kib, mem_top, kernel_end, max_pages, want;

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

        mem_top = mem_upper_kib >= (0xFFF00000u >> 10) ? 0xFFF00000u
                                                       : 0x100000u + mem_upper_kib * 1024u;
        mem_top &= ~(PAGE_SIZE - 1);
        kernel_end = align_up((uint32_t) (uintptr_t) _end, PAGE_SIZE);
        if (mem_top < kernel_end + 2 * PAGE_SIZE) {
                say("PANIC only %u KiB above 1 MiB: no room for a test area", mem_upper_kib);
                return;
        }
        max_pages = (mem_top - kernel_end) / PAGE_SIZE;
        want = opt.mem_pages < max_pages ? opt.mem_pages : max_pages;
        counters = (uint32_t *) (uintptr_t) kernel_end;
        area_start = align_up(kernel_end + want * 4u, PAGE_SIZE);
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

        say("VMTEST BOOT version=%u mem_upper_kib=%u area=0x%08x-0x%08x pages=%u ws_pages=%u rate=%u hb_ms=%u counters=0x%08x inflight=0x%08x",
            GUEST_VERSION, mem_upper_kib, area_start, area_start + area_pages * PAGE_SIZE, area_pages,
            ws_pages, opt.rate, hb_ms, (uint32_t) (uintptr_t) counters, (uint32_t) (uintptr_t) &inflight);

        rate_set(opt.rate);             /* starts the PIT */

        uint32_t t0 = uptime_ms();
        for (uint32_t i = 0; i < area_pages; i++)
                page_write(i, 1);
        say("VMTEST READY fill_ms=%u", uptime_ms() - t0);

        uint32_t last_ms = uptime_ms(), credit = 0;
        uint32_t hb_seq = 0, hb_last_ms = last_ms, hb_last_written = 0;

        for (;;) {
                uint32_t now, delta, burst = 0;

                serial_poll();

                now = uptime_ms();
                /* Never trust the clock to be monotonic across a migration. */
                if ((int32_t) (now - hb_last_ms) < 0)
                        hb_last_ms = now;
                if ((int32_t) (now - last_ms) < 0)
                        last_ms = now;
                if (hb_ms && now - hb_last_ms >= hb_ms) {
                        uint32_t elapsed = now - hb_last_ms;
                        uint32_t wps = div64_32((uint64_t) (written - hb_last_written) * 1000u, elapsed);
                        say("HB seq=%u uptime_ms=%u written=%u rate=%u wps=%u ws_pages=%u pages=%u",
                            ++hb_seq, now, written, rate, wps, ws_pages, area_pages);
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
                if (burst)
                        continue;
                /* Nothing to do before the next tick or input byte. */
                idle_wait();
        }
}
