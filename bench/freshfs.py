"""Restores and clones timed on a fresh ext4 file system each time, tools alternated.

Why: the harness deletes one repetition's tree before the next one writes its own, and ext4's inode allocator
skips inodes deleted in the last 60 s (300 s while their table block is dirty; `recently_deleted` in
fs/ext4/ialloc.c), so after tens of thousands of deletes each new file costs a search. perf on a 20k clone right
after such deletes: `recently_deleted` 8.8% of the samples, `find_get_block_common` 10.2%, `find_inode_bit` 2.7%.
Which tool pays how much depends on when it runs after the deletes, so restore ratios from the harness can say
more about the deletes than about the tools (docs/performance.md).

Here each command writes into a new file system (a loop device over a new image file: nothing was ever deleted
on it), and the commands alternate. Needs root (mkfs, mount). The harness uses `FreshFs` the same way for the
targets of its restores and clones (bench/bench.py, BENCH_FRESHFS). Usage:

    python bench/freshfs.py REPS 'NAME:COMMAND' ...     # COMMAND writes into {out}

e.g. python bench/freshfs.py 5 'pvc:pvc -C proj restore 1 --to {out}' 'restic:restic -r repo restore latest --target {out}'
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

IMAGE = os.environ.get("FRESHFS_IMAGE", "/tmp/pvc-bench-fresh.img")
MOUNT = os.environ.get("FRESHFS_MOUNT", "/mnt/pvc-bench-fresh")
SIZE = os.environ.get("FRESHFS_SIZE", "6G")


class FreshFs:
    """A new ext4 file system (default options: a journal, as most disks have) over a sparse image file, mounted at
    `mount` again by every `make()`: whatever was written there before is gone with the old file system."""

    def __init__(self, image: str | os.PathLike, mount: str | os.PathLike, size: str = SIZE) -> None:
        self.image, self.mount, self.size = str(image), str(mount), size

    @staticmethod
    def possible() -> str | None:
        """None when this process can make and mount file systems; else why not."""
        if os.geteuid() != 0:
            return "not root (mkfs and mount need it)"
        missing = [tool for tool in ("mkfs.ext4", "mount", "umount", "truncate") if shutil.which(tool) is None]
        return f"{', '.join(missing)} not found" if missing else None

    def make(self) -> None:
        self.close()
        os.makedirs(self.mount, exist_ok=True)
        subprocess.run(["truncate", "-s", self.size, self.image], check=True)
        # inode tables and journal zeroed now, not by the kernel's ext4lazyinit thread in the timed run's first
        # seconds: with it, writing 830 MB into the page cache of a new file system took 1.5-2.1 s instead of 0.25 s
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", self.image],
                       check=True)
        subprocess.run(["mount", "-o", "loop", self.image, self.mount], check=True)
        subprocess.run(["sync"], check=True)

    def close(self) -> None:
        """Unmount and delete the image (the mount point stays, empty). A busy file system is detached lazily
        (`umount -l`): it goes when its last user does, and nothing deletes through it meanwhile."""
        if os.path.ismount(self.mount):
            if subprocess.run(["umount", self.mount], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", self.mount], check=True)
        if os.path.exists(self.image):
            os.unlink(self.image)


def fresh() -> None:
    FreshFs(IMAGE, MOUNT).make()


def main(argv: list[str]) -> int:
    reps, tools = int(argv[0]), [arg.split(":", 1) for arg in argv[1:]]
    times: dict[str, list[float]] = {name: [] for name, _ in tools}
    try:
        for rep in range(reps):
            for name, command in (tools if rep % 2 == 0 else tools[::-1]):
                fresh()
                out = f"{MOUNT}/out"
                start = time.perf_counter()
                done = subprocess.run(command.format(out=out), shell=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
                elapsed = time.perf_counter() - start
                if done.returncode != 0:
                    print(f"{name} failed: {done.stderr.decode(errors='replace')[-500:]}", file=sys.stderr)
                    return 1
                files = sum(len(names) for _, _, names in os.walk(out))
                times[name].append(elapsed)
                print(f"rep {rep} {name}: {elapsed:.2f} s, {files} files", flush=True)
    finally:
        FreshFs(IMAGE, MOUNT).close()
    for name, ts in times.items():
        print(f"{name}: median {statistics.median(ts):.2f} s (min {min(ts):.2f}, max {max(ts):.2f}) over {len(ts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
