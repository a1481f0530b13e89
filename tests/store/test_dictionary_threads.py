"""A store's zstd dictionaries asked for from several threads while others are being loaded (a clone or
`restore --remote` of JPEG-only files decodes from four threads, each loading the dictionary it meets first)."""

from __future__ import annotations

import os
import sys
import threading
import time

from backends import store_dir

from pvc.store.local.packs import DICT_REF
from pvc.store.local.packstore import PackStore


def test_a_dictionary_is_found_by_its_reference_while_other_threads_load_dictionaries(tmp_path):
    store = PackStore(store_dir(tmp_path / "store"))
    wanted = bytes(32)
    store._zdicts[wanted] = "the dictionary"  # (loaded: what `dictionary` keeps, by id)
    for _ in range(200):
        store._zdicts[os.urandom(32)] = "another"
    stop = threading.Event()

    def load_more():  # what other threads' `dictionary` calls do to the same map
        while not stop.is_set():
            store._zdicts[os.urandom(32)] = "another"
            if len(store._zdicts) > 5000:
                for did in list(store._zdicts)[1:4000]:
                    del store._zdicts[did]

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: the loop below meets the map mid-change
    loader = threading.Thread(target=load_more)
    loader.start()
    failures = []
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                assert store.dictionary_by_ref(wanted[:DICT_REF]) == "the dictionary"
            except RuntimeError as exc:  # "dictionary changed size during iteration" before the fix
                failures.append(str(exc))
    finally:
        stop.set()
        loader.join()
        sys.setswitchinterval(switch)
    store.close()
    assert failures == []
