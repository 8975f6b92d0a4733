#!/usr/bin/env python3
"""Extract the uncompressed vmlinux ELF from a bzImage (like the kernel's
scripts/extract-vmlinux): find each compression magic, decompress from
there with the matching tool, keep the first result that is an ELF file.

usage: extract-vmlinux.py BZIMAGE OUT
"""
import subprocess
import sys

MAGICS = [  # (magic, command) -- the tools read the stream from stdin
    (b"\xfd7zXZ\x00", ["xz", "-dc"]),
    (b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]),
    (b"\x1f\x8b\x08", ["gzip", "-dc"]),
    (b"\x02\x21\x4c\x18", ["lz4", "-dcq"]),
]


def main():
    src, out = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    for magic, cmd in MAGICS:
        pos = data.find(magic)
        while pos >= 0:
            try:
                # trailing bytes after the stream make the tools complain: the output is still whole
                r = subprocess.run(cmd, input=data[pos:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            except FileNotFoundError:
                break
            if r.stdout[:4] == b"\x7fELF":
                open(out, "wb").write(r.stdout)
                return 0
            pos = data.find(magic, pos + 1)
    print("extract-vmlinux: no compressed ELF kernel found in %s" % src, file=sys.stderr)
    return 1


sys.exit(main())
