"""Lose objects from a copy of a pvc store, to time `restore --skip-missing`.

Objects are "lost" the way tests/test_restore.py does it: their entries are dropped from the pack
indexes, so the store no longer finds them while the packs stay as they are. Run only on a copy.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pvc.store.local.packindex import PackIndex, write_index

__all__ = ["drop_media_objects"]


def drop_media_objects(project: Path, ls_json: bytes, fraction: float, seed: int) -> int:
    """Drop the media blobs of `fraction` of the items listed by `pvc ls --json`; return how many items lose theirs."""
    blobs = sorted({item["blob"] for item in json.loads(ls_json) if item.get("blob")})
    victims = set(random.Random(seed).sample(blobs, max(1, round(fraction * len(blobs)))))
    lost = {bytes.fromhex(b) for b in victims}
    packs = project / ".pvc" / "packs"
    entries = []
    for path in sorted(packs.glob("*.idx")):
        idx = PackIndex(path)
        entries += [(o, loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for o, loc in idx if o not in lost]
        idx.close()
        path.unlink()
    write_index(packs, entries)
    return sum(1 for item in json.loads(ls_json) if item.get("blob") in victims)
