"""The hash floor: read every file under a path and blake3 it, as fast as Python can on this machine.

Run as its own process (`python bench/hashfloor.py PATH`), so it is timed like the tools it bounds:
a commit cannot be faster than reading and hashing the bytes once. Small files are hashed in a thread
pool (blake3 releases the GIL); large ones with blake3's own multithreading over a memory map.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import blake3

LARGE = 8 << 20


def files_under(root: str) -> list[str]:
    if os.path.isfile(root):
        return [root]
    found, stack = [], [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(entry.path)
    return found


def digest(path: str) -> tuple[int, bytes]:
    size = os.path.getsize(path)
    if size >= LARGE:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return size, hasher.digest()
    with open(path, "rb") as f:
        return size, blake3.blake3(f.read()).digest()


def main(argv: list[str]) -> None:
    files = files_under(argv[0])
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        sizes = [size for size, _ in pool.map(digest, files, chunksize=64)]
    print(f"{len(files)} files, {sum(sizes)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
