"""Every read command against versions whose objects pass their checksum but are structurally wrong.

A real version is committed; each example takes one of its structured objects (the manifest, a tree, a page),
changes one place in it (a value replaced by junk, a key or element dropped, junk added), stores it under its
own id and rebuilds its parents up to a new manifest, named by version 2. Then show, ls, cat, diff, status,
restore, verify and gc run on it as a user would run them: never a traceback or an internal error; a failure
is exit 2 with one line naming the object (verify: its report, exit 2).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvc.cli import main
from pvc.sample import make_image_project
from pvc.store.objects import hash_bytes
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

EXAMPLES = 600 if os.environ.get("PVC_SOAK") == "1" else 30
_leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True)
         | st.sampled_from(["..", "/etc", "a\x00b", "", ".", ".pvc/x", "img/a.png"]) | st.text(max_size=6)
         | st.binary(max_size=6) | st.binary(min_size=32, max_size=32))
junk = st.recursive(_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=8)
READS = [["show", "2"], ["show", "2", "--json"], ["ls", "2"], ["ls", "2", "--json"], ["cat", "2", "meta.json"],
         ["cat", "2", "meta.json", "--json"], ["log"],
         ["diff", "1", "2"], ["diff", "2", "--json"], ["status"], ["verify"], ["gc", "--dry-run"], ["gc"]]
NAMES_AN_OBJECT = re.compile(r"\b(manifest|tree|page|object|pack) [0-9a-f]{12,64}|[0-9a-f]{64}")


@dataclass
class Node:
    oid: bytes
    doc: dict
    parent: int | None  # index of the node that references this one


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> tuple[Path, list[Node]]:
    project = make_image_project(tmp_path_factory.mktemp("fuzz") / "proj", items=6, datasets=2, seed=3)
    assert main(["init", str(project)]) == 0
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["commit", "-m", "one", "-C", str(project)]) == 0
    repo = Repository(project)
    nodes = _graph(repo, bytes.fromhex(repo.versions()[-1].manifest))
    repo.close()
    return project, nodes


def _graph(repo: Repository, manifest: bytes) -> list[Node]:
    """Every structured object of a version with the one that references it, manifest first."""
    nodes, todo = [], [(manifest, None)]
    while todo:
        oid, parent = todo.pop()
        doc = msgpack.unpackb(repo.store.get(oid), raw=False)
        nodes.append(Node(oid, doc, parent))
        here = len(nodes) - 1
        if doc["type"] == "manifest":
            todo.append((doc["root"], here))
        elif doc["type"] == "tree":
            todo += [(ref[1], here) for ref in doc["files"] + doc["items"]] + [(c[2], here) for c in doc["children"]]
    return nodes


def _mutated(data, value):
    """`value` with one place changed: walk down at random, then replace, drop or add."""
    if isinstance(value, (dict, list)) and value and data.draw(st.booleans(), label="deeper"):
        keys = sorted(value) if isinstance(value, dict) else list(range(len(value)))
        key = data.draw(st.sampled_from(keys), label="into")
        copy = dict(value) if isinstance(value, dict) else list(value)
        copy[key] = _mutated(data, value[key])
        return copy
    how = data.draw(st.sampled_from(["replace", "drop", "add"] if isinstance(value, (dict, list)) and value else ["replace"]))
    if how == "replace":
        return data.draw(junk, label="junk")
    copy = dict(value) if isinstance(value, dict) else list(value)
    if how == "drop":
        del copy[data.draw(st.sampled_from(sorted(copy) if isinstance(copy, dict) else list(range(len(copy)))))]
    elif isinstance(copy, dict):
        copy[data.draw(st.text(max_size=6), label="key")] = data.draw(junk, label="junk")
    else:
        copy.append(data.draw(junk, label="junk"))
    return copy


def _swap_id(value, old: bytes, new: bytes):
    if value == old:
        return new
    if isinstance(value, dict):
        return {k: _swap_id(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap_id(v, old, new) for v in value]
    return value


def _install(project: Path, nodes: list[Node], target: int, doc) -> bytes:
    """Store `doc` in place of node `target` and new parents up to a new manifest; name it version 2."""
    repo = Repository(project)
    try:
        with repo.lock():
            store = repo.reopen_store()
            old, new = nodes[target].oid, store.put(msgpack.packb(doc, use_bin_type=True), compress=False)
            parent = nodes[target].parent
            while parent is not None:
                old, new = nodes[parent].oid, store.put(
                    msgpack.packb(_swap_id(nodes[parent].doc, old, new), use_bin_type=True), compress=False)
                parent = nodes[parent].parent
            store.flush()
            v1 = repo.versions()[0]
            repo.write_versions([v1, VersionRecord(2, new.hex(), "crafted", None, v1.created_at, "fuzz", 1)])
    finally:
        repo.close()
    return new


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
        out.flush()
    return code, out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
@given(data=st.data())
def test_read_commands_on_crafted_objects_fail_cleanly(committed, tmp_path, data):
    project, nodes = committed
    target = data.draw(st.integers(0, len(nodes) - 1), label="object")
    manifest = _install(project, nodes, target, _mutated(data, nodes[target].doc))
    restore_to = tmp_path / f"out-{manifest.hex()[:12]}"
    for args in [*READS, ["restore", "2", "--to", str(restore_to)]]:
        code, out, err = _run([*args, "-C", str(project)])
        assert "Traceback" not in err and "internal error" not in err, (args, err)
        assert code in (0, 2) or (code == 1 and args[0] == "cat" and "no such file" in err), (args, code, err)
        if code == 2 and args[0] != "verify":
            assert err.startswith("pvc: error: ") and err.count("\n") == 1, (args, err)
            assert NAMES_AN_OBJECT.search(err), (args, err)
        if code == 2 and args[0] == "verify":
            assert "problem(s) found" in out, (args, out)
    shutil.rmtree(restore_to, ignore_errors=True)
    assert hash_bytes(b"") and not any(p.name.startswith(".out-") for p in tmp_path.iterdir())


@pytest.mark.parametrize("change, says", [
    ({"stats": {"bytes": [1], "classes": {}}}, "malformed stats (bytes)"),  # `show` once fed it to float(): internal error
    ({"stats": {"classes": {"car": "many"}}}, "malformed stats (classes)"),
    ({"stats": {"items": -1}}, "malformed stats (items)"),
    ({"problems": [{"dataset": "ds", "item": 5, "problem": "x"}]}, "malformed problems"),
    ({"warnings": ["ok", 3]}, "malformed warnings"),
    ({"project_type": ["images"]}, "malformed project type"),
])
def test_a_manifest_with_malformed_values_is_corrupt_where_it_is_read(committed, change, says):
    project, nodes = committed
    manifest = _install(project, nodes, 0, nodes[0].doc | change)
    for args in (["show", "2"], ["ls", "2"], ["restore", "2", "--to", str(project.parent / "never")]):
        code, _, err = _run([*args, "-C", str(project)])
        assert code == 2 and says in err and f"manifest {manifest.hex()}" in err, (args, err)
    assert not (project.parent / "never").exists()


def test_a_manifest_of_an_unknown_project_type_restores(committed, tmp_path):
    """Found by the crafted-objects test: a project type no capture gives reached the layout's table of media
    folders while the restored project's stat cache was seeded (KeyError). The files are restored; the cache,
    only an optimisation, is not seeded."""
    project, nodes = committed
    _install(project, nodes, 0, nodes[0].doc | {"project_type": ".."})
    dest = tmp_path / "out"
    code, _, err = _run(["restore", "2", "--to", str(dest), "-C", str(project)])
    assert code == 0 and "error" not in err, err
    assert (dest / "meta.json").read_bytes() == (project / "meta.json").read_bytes()
