"""The upload floor: PUT every pack of a pvc store to an S3-protocol server, create-only, a few at once.

Run as its own process (`python bench/uploadfloor.py PACKS_DIR ENDPOINT BUCKET PREFIX [WORKERS]`), so it is timed like
the tools it bounds: a push of v1 to an empty remote sends these bytes (and an index file per pack, and a version
record), so it cannot be faster than the server takes them in. Each run writes under PREFIX/<time in ns>/, a prefix no
run used before. The credentials come from the environment, as pvc's do; the same client (obstore) and the same
number of uploads in flight as `pvc push` (pvc/store/remote/store.py: _UPLOADS).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(argv: list[str]) -> int:
    import obstore
    from obstore.store import S3Store

    packs_dir, endpoint, bucket, prefix = argv[:4]
    workers = int(argv[4]) if len(argv) > 4 else 4
    store = S3Store(bucket, prefix=f"{prefix}/{time.time_ns()}", endpoint=endpoint,
                    client_options={"allow_http": endpoint.startswith("http://")})
    packs = sorted(Path(packs_dir).glob("*.pack"))
    if not packs:
        print(f"no packs in {packs_dir}", file=sys.stderr)
        return 1

    def put(path: Path) -> int:
        data = path.read_bytes()
        obstore.put(store, f"packs/{path.name}", data, mode="create", use_multipart=False)
        return len(data)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        sent = sum(pool.map(put, packs))
    print(f"{len(packs)} packs, {sent} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
