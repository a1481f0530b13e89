"""A store that reads other stores' packs (alternates), and the files that link a restored project to its source."""

from __future__ import annotations

import json
import shutil

import pytest

from backends import store_dir

from pvc.errors import CorruptObject, ObjectMissing
from pvc.store.links import Alternates, LinkedProjects, OriginFile, Registration, is_store_id
from pvc.store.local.packstore import PackStore
from pvc.store.repository import Repository



def test_a_store_reads_its_alternates_and_writes_only_its_own_packs(tmp_path):
    a, b = store_dir(tmp_path / "a"), store_dir(tmp_path / "b")
    source = PackStore(a)
    there = source.put(b"in the source" * 10)
    source.flush()
    store = PackStore(b, alternates=(a / "packs",))
    assert store.has(there) and store.get(there) == b"in the source" * 10
    assert store.put(b"in the source" * 10) == there and store.staged == 0  # found: not stored again
    mine = store.put(b"only here")
    store.flush()
    assert list(store.iter_ids()) == [mine] and len(store.indexes) == 1  # its own, for verify and gc
    assert not source.has(mine) and len(list((a / "packs").glob("*.pack"))) == 1
    store.close()
    source.close()
    shutil.rmtree(a)
    orphaned = PackStore(b, alternates=(a / "packs",))
    with pytest.raises(ObjectMissing, match="store it shares objects with is gone"):
        orphaned.get(there)
    assert orphaned.get(mine) == b"only here"
    orphaned.close()


def test_link_files_round_trip_and_refuse_what_they_cannot_trust(tmp_path):
    store = store_dir(tmp_path / "s")
    Alternates(store).write([tmp_path / "x" / "packs"])
    assert Alternates(store).read() == [tmp_path / "x" / "packs"]
    (store / "alternates").write_text("relative/packs\n")
    with pytest.raises(CorruptObject, match="absolute path"):
        Alternates(store).read()
    OriginFile(store).write({"project": "/p", "version": 3})
    assert OriginFile(store).read() == {"project": "/p", "version": 3}
    linked = LinkedProjects(store)
    reg = Registration("0123456789abcdef0123456789abcdef", "/p2", "/.p2.tmp", 3, "2026-11-23T00:00:00+00:00")
    linked.add(reg)
    assert linked.list() == [reg]
    with pytest.raises(CorruptObject):
        linked.add(Registration("../../etc", "/p", "/s", 1, ""))  # a store id becomes a file name
    (store / "linked" / "junk.json").write_text("{")
    with pytest.raises(CorruptObject, match="damaged registration"):
        linked.list()
    assert is_store_id("0123456789abcdef0123456789abcdef") and not is_store_id("0123")


def test_init_copies_settings_and_an_old_store_gets_an_id_once(tmp_path):
    repo = Repository.init(tmp_path, settings={"chunk_threshold": 1 << 20, "dicom_tags": ["Modality"]},
                           alternates=[tmp_path / "src" / "packs"], origin={"version": 1})
    assert is_store_id(repo.store_id) and repo.settings()["chunk_threshold"] == 1 << 20
    assert repo.alternates.read() == [tmp_path / "src" / "packs"] and repo.origin.read() == {"version": 1}
    config = tmp_path / ".pvc" / "config"
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "id"}))
    old = Repository(tmp_path)
    assert old.store_id is None
    with old.lock(5):
        given = old.ensure_store_id()
    assert Repository(tmp_path).store_id == given == old.ensure_store_id()
