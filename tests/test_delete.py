"""Deleting versions: they leave the history (numbers stay taken), their tags go, gc gives their bytes back;
prune's keep rules; and deletion plus gc racing a committer in another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tree_bytes
from storekit import sha_tree

import pvc
from pvc.sample import make_image_project


def _packs_bytes(project: Path) -> int:
    return sum(p.stat().st_size for p in (project / ".pvc" / "packs").glob("*.pack"))


@pytest.fixture
def proj(tmp_path, cli):
    proj = make_image_project(tmp_path / "proj", items=6, datasets=1, seed=3)
    assert cli("init", proj).code == 0
    return proj


def test_a_deleted_version_leaves_the_log_and_gc_frees_its_bytes(proj, cli, tmp_path):
    big = os.urandom(3 << 20)  # 3 MB that only version 2 holds
    assert cli("commit", "-m", "one", cwd=proj).code == 0
    (proj / "big.bin").write_bytes(big)
    assert cli("commit", "-m", "two").code == 0
    (proj / "big.bin").unlink()
    assert cli("commit", "-m", "three").code == 0
    assert cli("tag", "heavy", "2").code == 0
    with_big = _packs_bytes(proj)

    preview = cli("delete", "heavy", "--json").json()
    assert preview == {"applied": False, "versions": [2], "tags_removed": ["heavy"]}
    assert cli("show", "2", "--json").code == 0  # nothing changed yet
    done = cli("delete", "heavy", "--yes", "--json").json()
    assert done == {"applied": True, "versions": [2], "tags_removed": ["heavy"]}

    assert [v["number"] for v in cli("log", "--json").json()] == [3, 1]
    every = cli("log", "--all", "--json").json()
    assert [(v["number"], v["deleted_at"] is not None) for v in every] == [(3, False), (2, True), (1, False)]
    assert "v2 (deleted)" in cli("log", "--all").out
    for args in (["show", "2"], ["restore", "2", "--to", tmp_path / "x"], ["cat", "2", "meta.json"],
                 ["diff", "1", "2"], ["ls", "v2"], ["tag", "again", "2"], ["edit", "2", "-m", "x"], ["delete", "2"]):
        result = cli(*args)
        assert result.code == 1 and "version 2 was deleted" in result.err and result.err.count("\n") == 1, args
    assert cli("tag", "--json").json() == [] and not (tmp_path / "x").exists()
    assert [v.number for v in pvc.Project(proj).version.get_list()] == [1, 3]
    assert [v.number for v in pvc.Project(proj).version.get_list(include_deleted=True)] == [1, 2, 3]

    gc = cli("gc", "--grace", "0", "--json").json()
    assert gc["versions"] == 2 and gc["bytes_freed"] >= len(big)
    assert with_big - _packs_bytes(proj) >= len(big)
    assert cli("verify").code == 0
    (proj / "NOTES.txt").write_text("four\n")
    four = cli("commit", "-m", "four", "--json").json()
    assert four["version"] == 4  # the number of a deleted version is never reused
    assert cli("show", "4", "--json").json()["parent"] == 3
    assert cli("restore", "1", "--to", tmp_path / "one").code == 0


def test_deleting_the_latest_makes_the_one_before_it_latest(proj, cli):
    assert cli("commit", "-m", "one", cwd=proj).code == 0
    (proj / "NOTES.txt").write_text("x\n")
    assert cli("commit", "-m", "two").code == 0
    assert cli("delete", "latest", "--yes").code == 0
    assert cli("show", "latest", "--json").json()["number"] == 1
    status = cli("status", "--json").json()  # compared with v1 now: NOTES.txt is new again
    assert status["from"] == 1 and status["files"]["added"] == ["NOTES.txt"]
    again = cli("commit", "-m", "two again", "--json").json()
    assert again["created"] and again["version"] == 3 and cli("show", "3", "--json").json()["parent"] == 1
    assert cli("delete", "1", "3", "--yes").code == 0
    assert cli("log").out.strip() == "No versions yet (run `pvc commit`)."
    assert "every version was deleted" in cli("show").err
    assert cli("commit", "-m", "fresh", "--json").json()["version"] == 4


def test_prune_keeps_what_a_rule_keeps(proj, cli):
    for n in range(1, 6):
        (proj / "NOTES.txt").write_text(f"{n}\n")
        assert cli("commit", "-m", f"c{n}", cwd=proj).code == 0
    assert cli("tag", "first", "1").code == 0
    assert cli("prune").code == 1  # no rule: refused, nothing deleted
    dry = cli("prune", "--keep-last", "2", "--keep-tagged", "--dry-run", "--json").json()
    assert dry == {"dry_run": True, "deleted": [2, 3], "kept": [1, 4, 5], "tags_removed": []}
    assert len(cli("log", "--json").json()) == 5
    assert cli("prune", "--keep-within", "30d", "--json").json()["deleted"] == []
    done = cli("prune", "--keep-last", "2", "--json").json()
    assert done["deleted"] == [1, 2, 3] and done["tags_removed"] == ["first"]
    assert [v["number"] for v in cli("log", "--json").json()] == [5, 4]
    assert cli("prune", "--keep-within", "nonsense").code == 1
    assert pvc.Project(proj).prune(keep_last=1).deleted == [4]


# A committer and a deleter in two processes, each through the CLI: every commit adds a file; the deleter deletes
# the oldest remaining version but the newest and collects garbage, again and again.
COMMITTER = """
import sys, time
from pathlib import Path
from pvc.cli import main
proj, rounds, ready, deleted = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
while not ready.exists():  # start once the deleter runs, so the two really overlap
    time.sleep(0.01)
k = 0
while k < rounds or (not deleted.exists() and k < 20 * rounds):  # and go on until the deleter deleted one meanwhile
    (proj / f"c{k}.bin").write_bytes(bytes([k % 256]) * 200_000)
    assert main(["commit", "-m", f"c{k}", "--lock-timeout", "120", "-C", str(proj)]) == 0
    k += 1
print(k, file=sys.stderr)  # the commits made (stdout carries the commits' own output)
"""

DELETER = """
import json, sys, time
from pathlib import Path
from pvc.api import Project
proj, stop, ready, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
deleted = []
ready.touch()
while not stop.exists():
    with Project(proj) as p:
        live = [v.number for v in p.version.get_list()]
        if len(live) > 2:
            p.version.delete(version_num=live[0], lock_timeout=120)
            deleted.append(live[0])
            marker.touch()
        p.gc(grace=0, lock_timeout=120)
    time.sleep(0.01)
print(json.dumps(deleted))
"""


def test_delete_and_gc_race_a_committer_in_another_process(proj, cli, tmp_path):
    assert cli("commit", "-m", "base", cwd=proj).code == 0
    stop, ready, marker = tmp_path / "stop", tmp_path / "ready", tmp_path / "deleted"
    env = {k: v for k, v in os.environ.items() if k != "PVC_DEBUG"}
    deleter = subprocess.Popen([sys.executable, "-c", DELETER, str(proj), str(stop), str(ready), str(marker)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committer = subprocess.run([sys.executable, "-c", COMMITTER, str(proj), "10", str(ready), str(marker)], env=env,
                               capture_output=True, text=True, timeout=300)
    stop.touch()
    out, err = deleter.communicate(timeout=300)
    assert committer.returncode == 0, committer.stderr
    assert deleter.returncode == 0, err
    deleted = json.loads(out)
    assert deleted, "the deleter never ran alongside the committer"
    refs = cli("log", "--all", "--json").json()
    commits = int(committer.stderr.strip().splitlines()[-1])
    assert len(refs) == commits + 1 and {v["number"] for v in refs if v["deleted_at"]} == set(deleted)
    assert cli("gc", "--grace", "0").code == 0 and cli("verify").code == 0
    for v in (r for r in refs if not r["deleted_at"]):  # every version left restores whole
        out_dir = tmp_path / f"v{v['number']}"
        assert cli("restore", str(v["number"]), "--to", out_dir, "--verify").code == 0
        k = int(v["title"][1:]) if v["title"].startswith("c") else -1
        assert sorted(p for p in sha_tree(out_dir) if p.endswith(".bin")) == sorted(f"c{i}.bin" for i in range(k + 1))
    assert tree_bytes(tmp_path / f"v{refs[0]['number']}") == tree_bytes(proj)
