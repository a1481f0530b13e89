"""Remotes end to end, on a folder and on a real S3-protocol server on loopback (moto): push, pull, clone, restore
from a remote, only-what-is-missing transfers, concurrent pushers, renumbering, and lost remote objects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import tree_bytes

import pvc
from pvc.sample import make_image_project, mutate_image_project


@dataclass
class Remote:
    kind: str
    url: str
    options: list[str] = field(default_factory=list)  # --endpoint for S3
    root: Path | None = None  # the folder of a folder remote

    @property
    def normal(self) -> str:
        """The URL as pvc records it."""
        return f"file://{self.root}" if self.kind == "folder" else self.url

    def add(self, cli, project: Path, name: str = "origin"):
        return cli("remote", "add", name, self.url, *self.options, "-C", project)


@pytest.fixture(params=["folder", "s3"])
def remote(request, tmp_path) -> Remote:
    if request.param == "folder":
        return Remote("folder", str(tmp_path / "remote"), root=tmp_path / "remote")
    endpoint = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return Remote("s3", f"s3://{bucket}/teams/vision", ["--endpoint", endpoint])


def _push_with_config(cli, remote: Remote, project: Path, **config) -> None:
    """`pvc init` in `project`, `config` written into its store's config, then v1 committed and pushed to `remote`."""
    assert cli("init", project).code == 0
    path = project / ".pvc" / "config"
    path.write_text(json.dumps(json.loads(path.read_text()) | config))
    assert cli("commit", "-m", "v1", "-C", project).code == 0
    assert remote.add(cli, project).code == 0
    assert cli("push", "-C", project).code == 0


@pytest.fixture
def pushed(tmp_path, cli, remote) -> tuple[Path, Remote]:
    """A committed image project (4 datasets, nested ones among them) pushed to `remote`."""
    project = make_image_project(tmp_path / "proj", items=40, datasets=4, seed=21, noise=True)
    assert cli("init", project).code == 0
    assert cli("commit", "-m", "v1", "-C", project).code == 0
    assert remote.add(cli, project).code == 0
    result = cli("push", "--json", "-C", project)
    assert result.code == 0, result.err
    assert result.json()["pushed"] == [1]
    return project, remote


def test_push_then_clone_is_byte_identical_and_origin_is_set(pushed, cli, tmp_path):
    project, remote = pushed
    result = cli("clone", remote.url, tmp_path / "copy", *remote.options, "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["version"] == 1 and doc["remote"]["name"] == "origin" and doc["remote"]["url"] == remote.normal
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)
    log = cli("log", "--json", "-C", tmp_path / "copy").json()
    assert [(v["number"], v["id"], v["manifest"]) for v in log] == [
        (v["number"], v["id"], v["manifest"]) for v in cli("log", "--json", "-C", project).json()]
    assert cli("status", "--json", "-C", tmp_path / "copy").json()["clean"]
    assert [r["name"] for r in cli("remote", "list", "--json", "-C", tmp_path / "copy").json()] == ["origin"]
    assert cli("verify", "-C", tmp_path / "copy").code == 0


def test_a_clone_leaves_the_stat_cache_a_commit_would(pushed, cli, tmp_path):
    """The first status or commit of a clone reads none of the files it wrote (as after a commit), the clone of one
    dataset's included; a file changed after the clone is read again."""
    project, remote = pushed
    for name, options in (("whole", []), ("one", ["--dataset", "val"])):
        copy = tmp_path / name
        assert cli("clone", remote.url, copy, *remote.options, *options).code == 0
        assert (copy / ".pvc" / "index").is_file()
        done = cli("commit", "-m", "again", "--json", "-C", copy)
        assert done.code == 0, done.err
        doc = done.json()
        assert doc["files_hashed"] == 0, doc
        assert doc["created"] == (name == "one")  # one dataset of v1 is another version
    annotation = next((tmp_path / "whole").glob("*/ann/*.json"))
    doc = json.loads(annotation.read_text())
    doc["description"] = "edited after the clone"
    annotation.write_text(json.dumps(doc))
    done = cli("commit", "-m", "edit", "--json", "-C", tmp_path / "whole").json()
    assert done["created"] and done["files_hashed"] == 1, done


def test_a_clones_first_commit_reads_dicom_series_with_its_own_setting(tmp_path, cli):
    """A DICOM series' metadata holds the tags `dicom_tags` named at the commit; a clone takes no settings, so its
    stat cache holds no series metadata, and its first commit gives what a commit without any cache gives."""
    from pydicom.uid import generate_uid
    from test_volume_meta import write_dicom

    root = tmp_path / "proj"
    (root / "ds" / "ann").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"classes": [], "tags": [], "projectType": "volumes"}))
    (root / "key_id_map.json").write_text(json.dumps({"tags": {}, "objects": {}, "figures": {}, "videos": {}}))
    series = root / "ds" / "volume" / "series_a"
    series.mkdir(parents=True)
    uid = generate_uid()
    for k in range(3):
        write_dicom(series / f"s{k}.dcm", uid, [1, 0, 0, 0, 1, 0], [0, 0, 3.0 * k])
    assert cli("init", root).code == 0
    assert cli("config", "dicom_tags", "PatientID,Modality", "-C", root).code == 0
    assert cli("commit", "-m", "v1", "-C", root).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", root).code == 0
    assert cli("push", "-C", root).code == 0
    found = []
    for name in ("seeded", "uncached"):
        assert cli("clone", tmp_path / "remote", tmp_path / name).code == 0, name
        if name == "uncached":
            (tmp_path / name / ".pvc" / "index").unlink()
        done = cli("commit", "-m", "again", "--json", "-C", tmp_path / name)
        assert done.code == 0, done.err
        listed = cli("ls", "latest", "--json", "-C", tmp_path / name).json()
        found.append((done.json()["created"], [item["meta"].get("dicom") for item in listed]))
    assert found[0] == found[1]
    assert found[0][0] and "PatientID" not in found[0][1][0]  # read again with the clone's own (default) tags


def test_a_second_push_sends_nothing_but_a_listing(pushed, cli):
    project, _ = pushed
    again = cli("push", "--json", "-C", project).json()
    assert again["pushed"] == [] and again["bytes_sent"] == 0 and again["packs_sent"] == 0
    assert again["requests"] <= 3  # the listings of packs/ and versions/


def test_a_small_change_sends_about_the_changed_bytes(pushed, cli):
    project, _ = pushed
    changed = mutate_image_project(project, seed=5)
    assert cli("commit", "-m", "v2", "-C", project).code == 0
    new_bytes = sum((project / p).stat().st_size for p in changed["edited"] + changed["added"])
    doc = cli("push", "--json", "-C", project).json()
    assert doc["pushed"] == [2]
    assert doc["bytes_sent"] <= 1.5 * new_bytes + 40_000, doc  # the changed files, their pages, trees, manifest, index


def test_pull_brings_new_versions_without_touching_the_working_tree(pushed, cli, tmp_path):
    project, remote = pushed
    assert cli("clone", remote.url, tmp_path / "copy", *remote.options).code == 0
    mutate_image_project(project, seed=9)
    assert cli("commit", "-m", "v2", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    before = tree_bytes(tmp_path / "copy")
    result = cli("pull", "--json", "-C", tmp_path / "copy")
    assert result.code == 0, result.err
    assert result.json()["fetched"] == [2] and result.json()["complete"] == [2]
    assert tree_bytes(tmp_path / "copy") == before
    assert cli("restore", "2", "--to", tmp_path / "v2", "-C", tmp_path / "copy").code == 0
    assert tree_bytes(tmp_path / "v2") == tree_bytes(project)
    assert cli("pull", "-C", tmp_path / "copy").out.startswith("Already up to date")


def test_restore_straight_from_the_remote_and_without_a_project(pushed, cli, tmp_path):
    project, remote = pushed
    named = cli("restore", "1", "--to", tmp_path / "named", "--remote", "origin", "-C", project)
    assert named.code == 0, named.err
    assert tree_bytes(tmp_path / "named") == tree_bytes(project)
    bare = cli("restore", "latest", "--to", tmp_path / "bare", "--remote", remote.url, *remote.options, "--json",
               cwd=tmp_path)
    assert bare.code == 0, bare.err
    assert tree_bytes(tmp_path / "bare") == tree_bytes(project)
    api = pvc.restore(remote.url, 1, tmp_path / "api", endpoint=remote.options[1] if remote.options else None)
    assert api.version == 1 and tree_bytes(tmp_path / "api") == tree_bytes(project)


def test_clone_of_one_dataset_fetches_a_fraction_and_is_a_valid_project(pushed, cli, tmp_path):
    project, remote = pushed
    whole = cli("clone", remote.url, tmp_path / "whole", *remote.options, "--json").json()
    one = cli("clone", remote.url, tmp_path / "one", *remote.options, "--dataset", "val", "--json")
    assert one.code == 0, one.err
    part = one.json()
    assert part["datasets"] == ["val"] and part["bytes_received"] <= 0.3 * whole["bytes_received"], (part, whole)
    got = tree_bytes(tmp_path / "one")
    assert got["meta.json"] == tree_bytes(project)["meta.json"]
    assert all(not p.startswith(("train/", "test/", "holdout")) for p in got) and any(p.startswith("val/") for p in got)
    assert {p: b for p, b in tree_bytes(project).items() if p.startswith("val/")} == {
        p: b for p, b in got.items() if p.startswith("val/")}
    # the store knows the objects it lacks are on origin: gc and verify are content, restore says where they are
    assert cli("verify", "-C", tmp_path / "one").code == 0
    assert cli("gc", "--grace", "0", "-C", tmp_path / "one").code == 0
    refused = cli("restore", "1", "--to", tmp_path / "r", "-C", tmp_path / "one")
    assert refused.code == 2 and "--remote origin" in refused.err
    assert cli("restore", "1", "--to", tmp_path / "other", "--dataset", "train", "-C", tmp_path / "one").code == 2
    mine = cli("restore", "1", "--to", tmp_path / "val-only", "--dataset", "val", "--no-link", "-C", tmp_path / "one")
    assert mine.code == 0, mine.err  # what the clone brought restores from the store
    assert tree_bytes(tmp_path / "val-only") == got
    assert cli("pull", "--versions", "1", "-C", tmp_path / "one").code == 0
    assert cli("restore", "1", "--to", tmp_path / "r", "-C", tmp_path / "one").code == 0
    assert tree_bytes(tmp_path / "r") == tree_bytes(project)


@pytest.mark.parametrize("chosen", ["train", "val"])
def test_clone_of_one_dataset_fetches_media_it_shares_with_another(tmp_path, cli, chosen):
    """One image in two datasets is one blob: a clone of either dataset must bring it."""
    project = make_image_project(tmp_path / "proj", items=8, datasets=2, seed=5)
    datasets = sorted(p.name for p in project.iterdir() if (p / "img").is_dir())[:2]
    a, b = project / datasets[0], project / datasets[1]
    for src in sorted((a / "img").iterdir())[:2]:  # the same media and annotation under a new name in b
        (b / "img" / f"copy_{src.name}").write_bytes(src.read_bytes())
        (b / "ann" / f"copy_{src.name}.json").write_bytes((a / "ann" / f"{src.name}.json").read_bytes())
    remote = tmp_path / "remote"
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", remote, "-C", project).code == 0 and cli("push", "-C", project).code == 0
    name = datasets[0] if chosen == "train" else datasets[1]
    result = cli("clone", remote, tmp_path / "one", "--dataset", name, "--json")
    assert result.code == 0, result.err
    got = tree_bytes(tmp_path / "one")
    assert {p: v for p, v in tree_bytes(project).items() if p.startswith(f"{name}/")} == {
        p: v for p, v in got.items() if p.startswith(f"{name}/")}


def test_pull_metadata_only_lists_and_shows_without_the_media(pushed, cli, tmp_path):
    project, remote = pushed
    mutate_image_project(project, seed=2)
    assert cli("commit", "-m", "v2", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    other = tmp_path / "other"
    other.mkdir()
    assert cli("init", other).code == 0
    assert remote.add(cli, other).code == 0
    doc = cli("pull", "--metadata-only", "--json", "-C", other).json()
    assert doc["fetched"] == [1, 2] and doc["partial"] == [1, 2] and doc["complete"] == []
    assert cli("show", "2", "--json", "-C", other).json()["stats"]["items"] > 0
    assert len(cli("ls", "2", "--json", "-C", other).json()) > 0
    assert cli("verify", "-C", other).code == 0 and cli("gc", "--grace", "0", "-C", other).code == 0
    assert cli("pull", "--versions", "2", "--json", "-C", other).json()["complete"] == [2]
    assert cli("restore", "2", "--to", tmp_path / "v2", "-C", other).code == 0
    assert tree_bytes(tmp_path / "v2") == {p: b for p, b in tree_bytes(project).items()}


def test_concurrent_pushers_one_wins_the_other_pulls_renumbers_and_pushes(pushed, cli, tmp_path):
    project, remote = pushed
    assert cli("clone", remote.url, tmp_path / "b", *remote.options).code == 0
    a, b = project, tmp_path / "b"
    mutate_image_project(a, seed=31)
    assert cli("commit", "-m", "from a", "-C", a).code == 0
    mutate_image_project(b, seed=32)
    assert cli("commit", "-m", "from b", "-C", b).code == 0
    manifest_b = cli("log", "--json", "-C", b).json()[0]["manifest"]
    assert cli("push", "-C", a).code == 0
    lost = cli("push", "--json", "-C", b)
    assert lost.code == 4 and "pvc pull" in lost.err and lost.err.count("\n") == 1
    assert json.loads(lost.out)["error"]["exit_code"] == 4
    pulled = cli("pull", "--json", "-C", b).json()
    assert pulled["fetched"] == [2] and pulled["renumbered"] == {"2": 3}
    log = cli("log", "--json", "-C", b).json()
    assert [(v["number"], v["title"]) for v in log] == [(3, "from b"), (2, "from a"), (1, "v1")]
    assert log[0]["manifest"] == manifest_b and log[0]["parent"] == 1  # manifests never change; parent is v1
    assert cli("push", "-C", b).code == 0
    assert cli("pull", "-C", a).code == 0
    assert [(v["number"], v["title"]) for v in cli("log", "--json", "-C", a).json()] == [
        (3, "from b"), (2, "from a"), (1, "v1")]


def test_lost_remote_objects_skip_missing_across_the_wire(pushed, cli, tmp_path, s3_server):
    project, remote = pushed
    victim = next(p for p in sorted(project.rglob("*.jpg")) if "/img/" in p.as_posix())
    assert cli("restore", "1", "--to", tmp_path / "warm", "--remote", "origin", "-C", project).code == 0  # cache filled
    _drop_remote_object(remote, s3_server, victim, tmp_path / "scratch")
    refused = cli("restore", "1", "--to", tmp_path / "out", "--remote", "origin", "-C", project)
    assert refused.code == 2 and "--skip-missing" in refused.err and not (tmp_path / "out").exists()
    done = cli("restore", "1", "--to", tmp_path / "out", "--remote", "origin", "--skip-missing", "--json", "-C", project)
    assert done.code == 0, done.err
    skipped = done.json()["skipped"]
    rel = victim.relative_to(project).as_posix()
    assert skipped == [{"dataset": rel.split("/img/")[0].replace("/datasets/", "/"), "item": victim.name,
                        "reason": f"missing object for {rel}"}]
    got = tree_bytes(tmp_path / "out")
    expected = {p: b for p, b in tree_bytes(project).items() if victim.name not in p}
    assert got == expected


def _drop_remote_object(remote: Remote, endpoint: str, victim: Path, scratch: Path) -> None:
    """Lose one object on the remote as `test_restore._drop_object` loses one locally: no index names it any
    more (each index that did is replaced by one without it)."""
    import blake3

    from pvc.store.local.packindex import PackIndex, write_index

    oid = blake3.blake3(victim.read_bytes()).digest()
    files = _RemoteFiles(remote, endpoint)
    scratch.mkdir()
    for name in [n for n in files.list("packs") if n.endswith(".idx")]:
        (scratch / name).write_bytes(files.get(f"packs/{name}"))
        idx = PackIndex(scratch / name)
        entries = [(o, loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for o, loc in idx]
        idx.close()
        if any(o == oid for o, *_ in entries):
            new = write_index(scratch, [e for e in entries if e[0] != oid])
            files.put(f"packs/{new.name}", new.read_bytes())
            files.delete(f"packs/{name}")


class _RemoteFiles:
    """The remote's files, handled as a damaged bucket or disk would hand them over (around pvc)."""

    def __init__(self, remote: Remote, endpoint: str) -> None:
        self.remote = remote
        if remote.kind == "s3":
            import boto3

            self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            self.bucket, self.prefix = remote.url[len("s3://"):].split("/", 1)

    def list(self, folder: str) -> list[str]:
        if self.remote.kind == "folder":
            return sorted(p.name for p in (self.remote.root / folder).iterdir())
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/{folder}/")
        return sorted(o["Key"].rsplit("/", 1)[-1] for o in found.get("Contents", []))

    def get(self, name: str) -> bytes:
        if self.remote.kind == "folder":
            return (self.remote.root / name).read_bytes()
        return self.s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")["Body"].read()

    def put(self, name: str, data: bytes) -> None:
        if self.remote.kind == "folder":
            (self.remote.root / name).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}", Body=data)

    def delete(self, name: str) -> None:
        if self.remote.kind == "folder":
            (self.remote.root / name).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")


def test_a_version_deleted_and_collected_here_is_pushed_as_its_record_alone(tmp_path, cli):
    """Its number stays taken on the remote too (numbers are gapless there), its objects are not needed, and a
    clone neither lists nor restores it; the tags of the versions that are left go nowhere (they stay local)."""
    project = make_image_project(tmp_path / "proj", items=6, datasets=1, seed=8)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    (project / "big.bin").write_bytes(bytes(range(256)) * 4096)
    assert cli("commit", "-m", "v2 with a big file", "-C", project).code == 0
    (project / "big.bin").unlink()
    assert cli("commit", "-m", "v3", "-C", project).code == 0
    assert cli("tag", "keep", "3", "-C", project).code == 0
    assert cli("delete", "2", "--yes", "-C", project).code == 0 and cli("gc", "--grace", "0", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    pushed = cli("push", "--json", "-C", project)
    assert pushed.code == 0, pushed.err
    assert pushed.json()["pushed"] == [1, 2, 3]
    record = json.loads((tmp_path / "remote" / "versions" / "0000000002.json").read_text())["record"]
    assert record["deleted_at"]
    assert cli("clone", tmp_path / "remote", tmp_path / "copy").code == 0
    assert [v["number"] for v in cli("log", "--json", "-C", tmp_path / "copy").json()] == [3, 1]
    assert cli("tag", "--list", "--json", "-C", tmp_path / "copy").json() == []
    assert cli("restore", "2", "--to", tmp_path / "r2", "--remote", "origin", "-C", tmp_path / "copy").code == 1
    assert cli("restore", "3", "--to", tmp_path / "r3", "--remote", "origin", "-C", tmp_path / "copy").code == 0
    assert tree_bytes(tmp_path / "r3") == tree_bytes(project)


def test_a_first_push_sends_the_local_packs_as_they_are_and_a_clone_keeps_them(tmp_path, cli):
    """No record is re-packed on the way: the remote holds the very pack files the commit wrote, and a clone of
    the whole version stores the packs of media again byte for byte (each checked against its name; the
    manifest, trees and pages it reads first go into a pack of their own)."""
    project = make_image_project(tmp_path / "proj", items=30, datasets=2, seed=4, noise=True)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    local = {p.name: p.read_bytes() for p in (project / ".pvc" / "packs").glob("*.pack")}
    remote = {p.name: p.read_bytes() for p in (tmp_path / "remote" / "packs").glob("*.pack")}
    assert local and remote == local
    assert cli("clone", tmp_path / "remote", tmp_path / "copy").code == 0
    cloned = {p.name: p.read_bytes() for p in (tmp_path / "copy" / ".pvc" / "packs").glob("*.pack")}
    biggest = max(local, key=lambda name: len(local[name]))
    assert cloned[biggest] == local[biggest]
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)
    assert cli("verify", "-C", tmp_path / "copy").code == 0


def test_a_damaged_local_pack_is_not_pushed(tmp_path, cli):
    project = make_image_project(tmp_path / "proj", items=12, datasets=1, seed=4, noise=True)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    pack = max((project / ".pvc" / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    pushed = cli("push", "-C", project)
    assert pushed.code == 2 and "damaged" in pushed.err and "Traceback" not in pushed.err
    assert not list((tmp_path / "remote").glob("versions/*.json"))  # the remote names no version
    assert pack.name not in {p.name for p in (tmp_path / "remote" / "packs").glob("*.pack")}


def test_a_remote_pack_damaged_in_place_is_refused_by_a_clone_and_nothing_is_kept(tmp_path, cli):
    project = make_image_project(tmp_path / "proj", items=12, datasets=1, seed=4, noise=True)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    pack = max((tmp_path / "remote" / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    cloned = cli("clone", tmp_path / "remote", tmp_path / "copy")
    assert cloned.code == 2 and "does not hash to its name" in cloned.err and "Traceback" not in cloned.err
    assert not (tmp_path / "copy").exists()


def test_a_clone_writes_the_files_of_the_packs_it_downloads_while_they_are_in_memory(tmp_path, cli, monkeypatch):
    """Whole packs are written into the working tree as they arrive; only what came otherwise (the files of records
    fetched one by one) is read back from the store after the flush. Both halves together are the version."""
    import pvc.core.clone as clone_module

    project = make_image_project(tmp_path / "proj", items=30, datasets=2, seed=4, noise=True)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    after_flush: list[int] = []
    real = clone_module.materialize

    def spy(store, chosen, folder, **kwargs):
        after_flush.append(len(chosen.files))
        return real(store, chosen, folder, **kwargs)

    monkeypatch.setattr(clone_module, "materialize", spy)
    files = len(tree_bytes(project))
    result = cli("clone", tmp_path / "remote", tmp_path / "copy", "--json")
    assert result.code == 0, result.err
    assert result.json()["files"] == files
    [late] = after_flush
    assert late < files // 2  # the media of the whole packs came early
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)
    assert cli("verify", "-C", tmp_path / "copy").code == 0


def test_whole_packs_come_into_a_buffer_each_thread_reuses_and_are_written_from_read_only_views(tmp_path, cli,
                                                                                                  monkeypatch):
    """A downloading thread reads each whole pack into the same buffer: the contents the files are written from are
    read-only views of it, each its object's bytes when it is written (the next pack overwrites them after)."""
    import threading

    from pvc.core.restore import EarlyFiles
    from pvc.store.objects import hash_bytes

    project = make_image_project(tmp_path / "proj", items=40, datasets=2, seed=4, noise=True)
    assert cli("init", project).code == 0
    assert cli("config", "pack_size", "65536", "-C", project).code == 0  # many packs: each thread reads several
    assert cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    buffers: dict[int, list] = {}  # thread -> the buffer of each of its packs (held: no id is reused)
    real = EarlyFiles.take

    def take(self, store, records):
        views = [content for _, _, content in records if isinstance(content, memoryview)]
        for oid, _, content in records:
            if isinstance(content, memoryview):
                assert content.readonly
                assert hash_bytes(content) == oid
        if views:
            buffers.setdefault(threading.get_ident(), []).append(views[0].obj)
        return real(self, store, records)

    monkeypatch.setattr(EarlyFiles, "take", take)
    assert cli("clone", tmp_path / "remote", tmp_path / "copy").code == 0
    assert any(len(packs) > 1 for packs in buffers.values())
    assert all(all(b is packs[0] for b in packs) for packs in buffers.values())  # one buffer a thread, pack after pack
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)


@pytest.fixture
def pushed_with_pages(tmp_path, cli):
    """A 1,000-item project pushed to a folder remote, with the trees of its version (enough pages that reading
    each with a request of its own shows)."""
    from pvc.core.snapshot import Snapshot

    project = make_image_project(tmp_path / "proj", items=1000, datasets=2, seed=6)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    with pvc.Project(project) as p:
        snap = Snapshot(p._repo.store, bytes.fromhex(p.version.get(1).manifest))
        trees = [snap.root, *(ds.tree for ds in snap.datasets())]
    return project, trees


def test_a_clone_reads_each_trees_files_pages_together_not_one_request_each(pushed_with_pages, tmp_path, cli,
                                                                            monkeypatch):
    from pvc.store.packed import PackedStore
    from pvc.store.remote.store import RemoteStore

    project, trees = pushed_with_pages
    assert sum(len(tree.files) for tree in trees) > 2 * len(trees)
    alone: list[bytes] = []  # objects read from the remote with a request of their own (a prefetched one is not)
    real = PackedStore._read_stored

    def spy(self, oid):
        if isinstance(self, RemoteStore) and oid not in self.dictionary_ids():  # the zstd dictionaries: read whole
            alone.append(oid)
        return real(self, oid)

    monkeypatch.setattr(PackedStore, "_read_stored", spy)
    assert cli("clone", tmp_path / "remote", tmp_path / "copy").code == 0
    assert len(alone) <= 1 + len(trees)  # the manifest and the trees; no page read on its own
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)


def test_a_restore_from_a_remote_reads_a_datasets_pages_together_not_one_request_each(pushed_with_pages, tmp_path,
                                                                                       cli, monkeypatch):
    from pvc.store.packed import PackedStore

    project, trees = pushed_with_pages
    pages = sum(len(tree.files) + len(tree.items) for tree in trees)
    alone: list[bytes] = []
    real = PackedStore._read_stored
    monkeypatch.setattr(PackedStore, "_read_stored", lambda self, oid: alone.append(oid) or real(self, oid))
    result = cli("restore", "1", "--to", tmp_path / "out", "--remote", tmp_path / "remote")
    assert result.code == 0, result.err
    assert pages > 3 * len(trees) and len(alone) < pages // 2  # a few objects read alone, not every page
    assert tree_bytes(tmp_path / "out") == tree_bytes(project)


def test_chunked_files_travel_whole_through_push_clone_pull_and_restore(tmp_path, cli, remote):
    """Files at or above the chunk threshold are stored as chunk lists: a clone (its whole packs and the records
    fetched one by one), a pull and a restore from the remote bring every chunk along, byte for byte."""
    import os

    project = make_image_project(tmp_path / "proj", items=8, datasets=2, seed=5, noise=True)
    dataset = next(p.parent for p in sorted(project.rglob("img")) if p.is_dir())
    (project / "docs" / "weights.bin").write_bytes(os.urandom(6 << 20))  # a project-level file, several chunks
    (dataset / "calibration.bin").write_bytes(os.urandom(5 << 20))  # a dataset's own file
    _push_with_config(cli, remote, project, chunk_threshold=1 << 20)

    cloned = cli("clone", remote.url, tmp_path / "copy", *remote.options, "--json")
    assert cloned.code == 0, cloned.err
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)
    assert cli("verify", "-C", tmp_path / "copy").code == 0
    from pvc.store.repository import Repository

    clone_store = Repository(tmp_path / "copy").store
    assert sum(1 for oid in clone_store.iter_ids() if clone_store.info(oid).chunked) == 2  # the two big files

    (tmp_path / "empty").mkdir()
    assert cli("init", tmp_path / "empty").code == 0
    assert remote.add(cli, tmp_path / "empty").code == 0
    assert cli("pull", "-C", tmp_path / "empty").code == 0
    assert cli("verify", "-C", tmp_path / "empty").code == 0
    assert cli("restore", "1", "--to", tmp_path / "r1", "-C", tmp_path / "empty").code == 0
    assert tree_bytes(tmp_path / "r1") == tree_bytes(project)
    assert cli("restore", "1", "--to", tmp_path / "r2", "--remote", "origin", "-C", tmp_path / "empty").code == 0
    assert tree_bytes(tmp_path / "r2") == tree_bytes(project)


def test_a_push_names_its_packs_in_one_index_file_every_sixteen_packs(tmp_path, cli, remote, s3_server):
    from pvc.store.local.packindex import PackIndex
    from pvc.store.remote.store import _PACKS_PER_INDEX

    project = make_image_project(tmp_path / "proj", items=60, datasets=4, seed=5, noise=True)
    _push_with_config(cli, remote, project, pack_size=64 << 10)
    files, scratch = _RemoteFiles(remote, s3_server), tmp_path / "idx"
    scratch.mkdir()
    names = files.list("packs")
    packs = sorted(bytes.fromhex(n[: -len(".pack")]) for n in names if n.endswith(".pack"))
    indexes = [n for n in names if n.endswith(".idx")]
    named = []
    for name in indexes:
        (scratch / name).write_bytes(files.get(f"packs/{name}"))
        index = PackIndex(scratch / name)
        named += index.packs
        index.close()
    assert len(packs) > _PACKS_PER_INDEX  # more than one group
    assert sorted(named) == packs  # every pack named, by one index only
    assert len(indexes) == -(-len(packs) // _PACKS_PER_INDEX)
    assert cli("clone", remote.url, tmp_path / "c", *remote.options).code == 0
    assert tree_bytes(tmp_path / "c") == tree_bytes(project)
