#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Read or write a running QEMU guest's RAM from the host, as root.

    guest-mem.py PID MEMORY_BYTES find
    guest-mem.py PID MEMORY_BYTES read  GUEST_PHYS_ADDR LENGTH
    guest-mem.py PID MEMORY_BYTES write GUEST_PHYS_ADDR HEXBYTES

QEMU allocates guest RAM as one anonymous private mapping of exactly the
guest's memory size; with -machine pc and RAM below 3 GiB, a guest physical
address is the offset into that mapping. The mapping is found in
/proc/PID/maps (exactly one rw-p anonymous mapping of that size, else the
helper refuses: guessing would corrupt QEMU instead of the guest) and
accessed through /proc/PID/mem, which root may read and write. Stop the
guest's vCPUs first (Suspend) so the write does not race the guest.

`find` prints the mapping's start address; `read` prints hex bytes.
Exit status 0 on success, 1 on any error (with a message on stderr).
"""

import sys


def ram_mapping(pid, size):
    found = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            anonymous = len(fields) < 6 or fields[5] == ""
            if end - start == size and fields[1] == "rw-p" and fields[4] == "0" and anonymous:
                found.append(start)
    if len(found) != 1:
        raise RuntimeError(f"expected one anonymous rw-p mapping of {size} bytes in /proc/{pid}/maps, "
                           f"found {len(found)}")
    return found[0]


def main(argv):
    if len(argv) < 4 or argv[3] not in ("find", "read", "write"):
        print("usage:\n" + "\n".join(__doc__.strip().splitlines()[2:5]), file=sys.stderr)
        return 1
    pid, size, op = int(argv[1]), int(argv[2]), argv[3]
    base = ram_mapping(pid, size)
    if op == "find":
        print(hex(base))
        return 0
    addr = int(argv[4], 0)
    if op == "read":
        length = int(argv[5], 0)
        if addr < 0 or length <= 0 or addr + length > size:
            raise RuntimeError(f"0x{addr:x}+{length} is outside the guest's {size} bytes")
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(base + addr)
            print(mem.read(length).hex())
        return 0
    data = bytes.fromhex(argv[5])
    if addr < 0 or not data or addr + len(data) > size:
        raise RuntimeError(f"0x{addr:x}+{len(data)} is outside the guest's {size} bytes")
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        mem.seek(base + addr)
        if mem.write(data) != len(data):
            raise RuntimeError("short write")
        mem.seek(base + addr)
        if mem.read(len(data)) != data:
            raise RuntimeError("the bytes read back differ from those written")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError, RuntimeError) as e:
        print(f"guest-mem.py: {e}", file=sys.stderr)
        sys.exit(1)
