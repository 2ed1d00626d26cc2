/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Entry point, GDT and interrupt stubs of the test guest. The multiboot
 * loader enters here in 32-bit protected mode with paging off, %eax = magic,
 * %ebx = multiboot info. The spec leaves GDTR undefined, so load our own
 * flat GDT before touching a segment register.
 */

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003       /* page-aligned modules, memory info */

        .section .multiboot, "a"
        .balign 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .section .data
        .balign 8
gdt:
        .quad 0                         /* null */
        .quad 0x00CF9A000000FFFF        /* 0x08: code, flat 4 GiB, 32-bit */
        .quad 0x00CF92000000FFFF        /* 0x10: data, flat 4 GiB */
gdt_end:
gdt_desc:
        .word gdt_end - gdt - 1
        .long gdt

        .section .bss
        .balign 16
stack:
        .skip 16384
stack_top:

        .section .text
        .globl _start
_start:
        cli
        movl $stack_top, %esp
        lgdt gdt_desc
        ljmp $0x08, $1f
1:
        movw $0x10, %cx
        movw %cx, %ds
        movw %cx, %es
        movw %cx, %fs
        movw %cx, %gs
        movw %cx, %ss
        movl $stack_top, %esp
        cld
        pushl %ebx                      /* multiboot info */
        pushl %eax                      /* magic */
        call guest_main
2:
        cli
        hlt
        jmp 2b

/*
 * IRQ stubs. Interrupts are enabled only inside idle_wait, around one hlt,
 * so an interrupt always lands on the `cli` after that hlt and the handler
 * need not restore EFLAGS: it returns with `ret $8` (pops EIP, drops CS and
 * EFLAGS) and IF stays clear. This avoids iret, which nested KVM on the
 * test machines sends to its instruction emulator, which fails on a
 * protected-mode iret ("KVM internal error. Suberror: 1").
 */
        .globl idle_wait
idle_wait:
        sti                             /* interrupts wait for the hlt */
        hlt
        cli
        ret

        .globl isr_timer
isr_timer:
        pushal
        cld
        call timer_irq
        popal
        ret $8

        .globl isr_serial
isr_serial:
        pushal
        cld
        call serial_irq
        popal
        ret $8

        .globl isr_ignore
isr_ignore:
        ret $8

/* CPU exceptions never return: exception_panic() reports and halts. It gets
 * the vector and a pointer to the frame the CPU pushed (with or without an
 * error code; it prints both words). */
        .macro EXC n
exc_\n:
        pushl %esp
        pushl $\n
        call exception_panic
        .endm

        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        EXC \n
        .endr

        .section .rodata
        .balign 4
        .globl exception_stubs
exception_stubs:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .long exc_\n
        .endr
