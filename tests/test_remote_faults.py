"""Remotes under faults: bad URLs, a missing bucket, wrong credentials, an endpoint that is down, 5xx answers and
timeouts (retried, then reported), corrupt remote objects (refused), a push killed or cut mid-transfer and a server
restarted mid-push (the remote stays as readable as before; the next push sends only what is missing)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from helpers import S3_CREDENTIALS, store_state, tree_bytes
from faultproxy import FaultProxy

from pvc.sample import make_image_project, mutate_image_project


def _project(tmp_path: Path, cli, *, items: int = 40, pack_size: int | None = None) -> Path:
    project = make_image_project(tmp_path / "proj", items=items, datasets=3, seed=7, noise=True)
    assert cli("init", project).code == 0
    if pack_size is not None:
        config = project / ".pvc" / "config"
        config.write_text(json.dumps(json.loads(config.read_text()) | {"pack_size": pack_size}))
    assert cli("commit", "-m", "v1", "-C", project).code == 0
    return project


def _one_line_error(result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.err)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in result.err, result.err


def _remote_versions(s3_server: str, bucket: str, prefix: str) -> list[str]:
    found = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").list_objects_v2(
        Bucket=bucket, Prefix=f"{prefix}/versions/")
    return sorted(o["Key"].rsplit("/", 1)[-1] for o in found.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, needle", [("ftp://host/x", "unsupported remote URL scheme 'ftp'"),
                                         ("s3:///no-bucket", "s3://bucket/prefix"),
                                         ("s3://b/a/../c", "'..'"),
                                         ("file://otherhost/x", "a folder on this machine")])
def test_bad_remote_urls_are_refused(tmp_path, cli, url, needle):
    project = _project(tmp_path, cli, items=6)
    _one_line_error(cli("remote", "add", "origin", url, "-C", project), 1, needle)
    assert cli("remote", "list", "--json", "-C", project).json() == []


def test_names_and_duplicates(tmp_path, cli):
    project = _project(tmp_path, cli, items=6)
    _one_line_error(cli("remote", "add", "-bad", str(tmp_path / "r"), "-C", project), 1)
    _one_line_error(cli("remote", "add", "a/b", str(tmp_path / "r"), "-C", project), 1, "not a remote name")
    assert cli("remote", "add", "origin", str(tmp_path / "r"), "-C", project).code == 0
    _one_line_error(cli("remote", "add", "origin", str(tmp_path / "s"), "-C", project), 1, "exists already")
    _one_line_error(cli("push", "nope", "-C", project), 1, "no remote named 'nope'")
    assert cli("remote", "remove", "origin", "-C", project).code == 0
    _one_line_error(cli("push", "-C", project), 1, "no remote configured")


def test_pull_and_clone_of_something_that_is_not_a_remote(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    _one_line_error(cli("clone", str(tmp_path / "empty"), tmp_path / "c"), 5, "not a pvc remote")
    assert not (tmp_path / "c").exists() and [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_missing_bucket(tmp_path, cli, s3_server):
    project = _project(tmp_path, cli, items=6)
    assert cli("remote", "add", "origin", "s3://no-such-bucket/x", "--endpoint", s3_server, "-C", project).code == 0
    _one_line_error(cli("push", "-C", project), 5, "bucket 'no-such-bucket' does not exist")
    _one_line_error(cli("clone", "s3://no-such-bucket/x", tmp_path / "c", "--endpoint", s3_server), 5, "does not exist")


def test_endpoint_down(tmp_path, cli):
    project = _project(tmp_path, cli, items=6)
    port = _free_port()
    assert cli("remote", "add", "origin", "s3://b/p", "--endpoint", f"http://127.0.0.1:{port}", "--retries", "2",
               "--timeout", "5", "-C", project).code == 0
    before = store_state(project)
    start = time.monotonic()
    _one_line_error(cli("push", "--json", "-C", project), 5, "no answer after 2 retries")
    assert time.monotonic() - start < 15 and store_state(project) == before


# -- credentials ------------------------------------------------------------------------------------------------


@pytest.fixture
def iam_enforced(s3_server, s3_bucket):
    """moto checking signatures against IAM: a user with a real key pair allowed everything; others refused."""
    from moto.core.authorization import enable_iam_authentication

    iam = boto3.client("iam", endpoint_url=s3_server, region_name="us-east-1")
    user = f"pvc-{os.urandom(3).hex()}"
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    with enable_iam_authentication():
        yield key["AccessKeyId"], key["SecretAccessKey"]


def test_wrong_or_missing_credentials_are_one_line_and_never_printed(tmp_path, cli, s3_server, s3_bucket, iam_enforced,
                                                                     monkeypatch):
    key_id, secret = iam_enforced
    project = _project(tmp_path, cli, items=6)
    assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", s3_server, "--retries", "1",
               "-C", project).code == 0
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + secret)
    wrong = cli("push", "--json", "-C", project)
    _one_line_error(wrong, 5, "access denied", "AWS_ACCESS_KEY_ID")
    assert secret not in wrong.err + wrong.out and key_id not in wrong.err + wrong.out
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws either
    _one_line_error(cli("push", "-C", project), 5, "no AWS credentials")
    config = (project / ".pvc" / "config").read_text()
    assert secret not in config and key_id not in config and set(json.loads(config)["remotes"]["origin"]) == {
        "url", "endpoint", "region", "timeout", "retries"}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert cli("push", "-C", project).code == 0


def test_credentials_from_a_profile_of_the_shared_files(tmp_path, cli, s3_server, s3_bucket, iam_enforced, monkeypatch):
    key_id, secret = iam_enforced
    aws = tmp_path / "home" / ".aws"
    aws.mkdir(parents=True)
    (aws / "credentials").write_text(f"[team]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    (aws / "config").write_text("[profile team]\nregion = us-east-1\n")
    for name in S3_CREDENTIALS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_PROFILE", "team")
    project = _project(tmp_path, cli, items=6)
    assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", s3_server, "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    _one_line_error(cli("push", "-C", project), 5, "no AWS credentials")


# -- retried faults -------------------------------------------------------------------------------------------


def test_5xx_answers_are_retried_then_reported(tmp_path, cli, s3_server, s3_bucket):
    project = _project(tmp_path, cli, items=10)
    with FaultProxy(s3_server) as proxy:
        assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", proxy.url, "--retries", "3",
                   "--timeout", "10", "-C", project).code == 0
        proxy.fail = 2  # two 503s: the retries get through
        assert cli("push", "-C", project).code == 0
        assert sum(1 for *_, status in proxy.requests if status == 503) == 2
        mutate_image_project(project, seed=3)
        assert cli("commit", "-m", "v2", "-C", project).code == 0
        proxy.fail_all = True
        _one_line_error(cli("push", "-C", project), 5, "no answer after 3 retries")
    assert _remote_versions(s3_server, s3_bucket, "p") == ["0000000001.json"]


def test_a_hanging_server_times_out(tmp_path, cli, s3_server, s3_bucket):
    project = _project(tmp_path, cli, items=6)
    with FaultProxy(s3_server) as proxy:
        assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", proxy.url, "--retries", "1",
                   "--timeout", "2", "-C", project).code == 0
        proxy.hang = 5
        start = time.monotonic()
        _one_line_error(cli("push", "-C", project), 5)
        assert time.monotonic() - start < 12


def test_corrupt_remote_objects_are_refused_and_never_stored(tmp_path, cli):
    project = _project(tmp_path, cli, items=10)
    remote = tmp_path / "remote"
    assert cli("remote", "add", "origin", str(remote), "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    pack = max((remote / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x55
    pack.write_bytes(bytes(data))
    _one_line_error(cli("clone", str(remote), tmp_path / "c"), 2, "does not")
    assert not (tmp_path / "c").exists()
    other = tmp_path / "other"
    other.mkdir()
    assert cli("init", other).code == 0 and cli("remote", "add", "origin", str(remote), "-C", other).code == 0
    before = store_state(other)
    _one_line_error(cli("pull", "-C", other), 2)
    assert store_state(other) == before and cli("log", "--json", "-C", other).json() == []
    r = cli("restore", "1", "--to", tmp_path / "r", "--remote", "origin", "-C", project)
    assert r.code == 2 and not (tmp_path / "r").exists()


def _forge_a_blob(remote: Path) -> bytes:
    """Change one byte of the largest record of the largest pack of the folder remote `remote`, then give the pack the
    name its new bytes hash to and write the index files again to name it: the remote is consistent by every name,
    and that record's content no longer hashes to its id. Returns that id."""
    import blake3

    from pvc.store.local.packindex import PackIndex, write_index

    pack = max((remote / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    old = bytes.fromhex(pack.stem)
    found = []
    for path in (remote / "packs").glob("*.idx"):
        index = PackIndex(path)
        found += [(path, oid, loc) for oid, loc in index if loc.pack == old]
        index.close()
    _, oid, loc = max(found, key=lambda f: f[2].stored_len)
    data = bytearray(pack.read_bytes())
    data[loc.offset + loc.stored_len // 2] ^= 0x55
    new = blake3.blake3(bytes(data)).digest()
    (remote / "packs" / f"{new.hex()}.pack").write_bytes(bytes(data))
    pack.unlink()
    for path in {f[0] for f in found}:
        index = PackIndex(path)
        rows = [(o, new if l.pack == old else l.pack, l.offset, l.stored_len, l.raw_len, l.codec) for o, l in index]
        index.close()
        path.unlink()
        write_index(remote / "packs", rows)
    return oid


def test_a_pack_renamed_to_the_hash_of_forged_records_is_refused_and_nothing_is_stored(tmp_path, cli):
    """A pack is checked against its name, and each record taken from it against its id: a pack downloaded whole
    (its bytes nearly all wanted) is refused too when its name was made to match forged content."""
    project = _project(tmp_path, cli, items=40, pack_size=64 << 10)  # small packs: each holds a few images
    remote = tmp_path / "remote"
    assert cli("remote", "add", "origin", remote, "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    forged = _forge_a_blob(remote)
    other = tmp_path / "other"
    other.mkdir()
    assert cli("init", other).code == 0 and cli("remote", "add", "origin", remote, "-C", other).code == 0
    before = store_state(other)
    _one_line_error(cli("pull", "-C", other), 2, forged.hex(), "does not match its id")
    assert store_state(other) == before
    _one_line_error(cli("clone", remote, tmp_path / "c"), 2, forged.hex(), "does not match its id")
    assert not (tmp_path / "c").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".c.")] == []


# -- interrupted pushes ---------------------------------------------------------------------------------------


def _push_process(project: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ) | (env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "pvc", "push", "--json", "-C", str(project)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_packs(count_packs, at_least: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while count_packs() < at_least:
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "the push did not get going"
        time.sleep(0.05)


def test_push_killed_mid_transfer_leaves_the_remote_readable_and_resumes(tmp_path, cli, s3_server, s3_bucket):
    project = _project(tmp_path, cli, items=40, pack_size=64 << 10)
    assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", s3_server, "-C", project).code == 0
    assert cli("push", "-C", project).code == 0  # v1 is there
    mutate_image_project(project, seed=4, edit=0.5, add=1.0)
    assert cli("commit", "-m", "v2", "-C", project).code == 0
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    count = lambda: sum(1 for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="p/packs/").get("Contents", [])
                        if o["Key"].endswith(".pack"))
    first = count()
    with FaultProxy(s3_server) as proxy:
        cli("remote", "remove", "origin", "-C", project)
        cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", proxy.url, "-C", project)
        proxy.delay = 0.15  # slow uploads, so that the kill lands mid-transfer
        proc = _push_process(project)
        _wait_for_packs(count, first + 2, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert _remote_versions(s3_server, s3_bucket, "p") == ["0000000001.json"]  # as readable as before: v1, whole
    assert cli("clone", f"s3://{s3_bucket}/p", tmp_path / "v1", "--endpoint", s3_server).code == 0
    sent_before = count() - first
    cli("remote", "remove", "origin", "-C", project)
    cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", s3_server, "-C", project)
    resumed = cli("push", "--json", "-C", project)
    assert resumed.code == 0, resumed.err
    doc = resumed.json()
    assert doc["pushed"] == [2] and sent_before >= 2
    total = count() - first
    assert doc["packs_sent"] <= total - sent_before + 4  # only what was missing (up to the packs in flight)
    assert cli("clone", f"s3://{s3_bucket}/p", tmp_path / "v2", "--endpoint", s3_server).code == 0
    assert tree_bytes(tmp_path / "v2") == tree_bytes(project)


def test_network_cut_and_server_restart_mid_push(tmp_path, cli, s3_server, s3_bucket):
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    project = _project(tmp_path, cli, items=40, pack_size=64 << 10)
    with FaultProxy(endpoint) as proxy:
        assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", proxy.url, "--retries", "2",
                   "--timeout", "5", "-C", project).code == 0
        proxy.delay = 0.1
        proc = _push_process(project)
        s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
        count = lambda: sum(1 for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="p/packs/").get("Contents", [])
                            if o["Key"].endswith(".pack"))
        _wait_for_packs(count, 2, proc)
        proxy.cut = True  # the network goes: connections close without an answer
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 5 and err.decode().count("\n") == 1, err.decode()
        assert _remote_versions(s3_server, s3_bucket, "p") == []  # no version names missing objects
        proxy.cut = False
        server.stop()  # and the server restarts meanwhile (moto keeps its data in this process)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        proxy.delay = 0
        resumed = cli("push", "--json", "-C", project)
        assert resumed.code == 0, resumed.err
        assert resumed.json()["pushed"] == [1] and resumed.json()["packs_sent"] < count()
    server.stop()
    assert cli("clone", f"s3://{s3_bucket}/p", tmp_path / "c", "--endpoint", s3_server).code == 0
    assert tree_bytes(tmp_path / "c") == tree_bytes(project)


def test_two_machines_pushing_at_once_each_number_is_taken_once(tmp_path, cli, s3_server, s3_bucket):
    """Pushes that race for the same version number: one wins, the other is told to pull, rounds after rounds."""
    url = f"s3://{s3_bucket}/race"
    a = _project(tmp_path, cli, items=12)
    assert cli("remote", "add", "origin", url, "--endpoint", s3_server, "-C", a).code == 0
    assert cli("push", "-C", a).code == 0
    b = tmp_path / "b"
    assert cli("clone", url, b, "--endpoint", s3_server).code == 0
    for round_ in range(3):
        for project, seed in ((a, 100 + round_), (b, 200 + round_)):
            mutate_image_project(project, seed=seed)
            assert cli("commit", "-m", f"{project.name} {round_}", "-C", project).code == 0
        procs = [_push_process(p) for p in (a, b)]
        codes = sorted(p.wait() for p in procs)
        for p in procs:
            p.communicate()
        assert codes == [0, 4], codes
        for project in (a, b):  # the loser pulls (renumbered after the winner) and pushes; the winner is in sync
            assert cli("pull", "-C", project).code == 0
            assert cli("push", "-C", project).code == 0
    assert cli("pull", "-C", a).code == 0
    names = _remote_versions(s3_server, s3_bucket, "race")
    assert names == [f"{n:010d}.json" for n in range(1, 8)]
    logs = [[(v["number"], v["id"]) for v in cli("log", "--json", "-C", p).json()] for p in (a, b)]
    assert logs[0] == logs[1] and len(logs[0]) == 7


def test_a_server_without_conditional_writes_is_refused(tmp_path, cli, s3_server, s3_bucket):
    project = _project(tmp_path, cli, items=6)
    with FaultProxy(s3_server) as proxy:
        proxy.strip = {"if-none-match"}  # the server never sees the condition: it overwrites
        assert cli("remote", "add", "origin", f"s3://{s3_bucket}/p", "--endpoint", proxy.url, "-C", project).code == 0
        _one_line_error(cli("push", "-C", project), 5, "does not support conditional writes")
    assert _remote_versions(s3_server, s3_bucket, "p") == []


def test_a_record_whose_dictionary_the_remote_lacks_is_checked_with_the_local_copy_or_refused():
    """A ZSTD_DICT record of a whole pack is decoded with the remote's dictionary, else with the local store's; with
    neither it is refused in one line naming the object and the remote."""
    from types import SimpleNamespace

    from pvc.core.transfer import _checked
    from pvc.errors import CorruptObject, ObjectMissing
    from pvc.store.backend import ObjectInfo
    from pvc.store.objects import hash_bytes

    content = b"an annotation, as the dictionary decodes it"
    oid = hash_bytes(content)
    loc = SimpleNamespace(raw_len=len(content), stored_len=9, offset=0, codec=3)

    def lacking(*_):
        raise ObjectMissing(f"object {oid.hex()}: its zstd dictionary 0a0b0c0d… is missing from the store")

    src = SimpleNamespace(url="s3://b/p", info_at=lambda loc: ObjectInfo(loc.raw_len, False, loc.stored_len),
                          decoded=lacking)
    assert _checked(src, SimpleNamespace(decoded=lambda *_: content), oid, loc, b"stored") == content
    with pytest.raises(CorruptObject) as caught:
        _checked(src, SimpleNamespace(decoded=lacking), oid, loc, b"stored")
    text = str(caught.value)
    assert text.count(oid.hex()) == 1 and "s3://b/p" in text and "dictionary" in text and "\n" not in text
    with pytest.raises(CorruptObject, match="does not match its id"):
        _checked(src, SimpleNamespace(decoded=lambda *_: content + b"!"), oid, loc, b"stored")


def test_a_chunk_lists_or_ranged_records_dictionary_comes_from_the_local_store_when_the_remote_lacks_it():
    from types import SimpleNamespace

    from pvc.core.transfer import _dictionaries
    from pvc.errors import ObjectMissing

    def lacking(ref):
        raise ObjectMissing(f"no zstd dictionary {ref.hex()}")

    mine = object()
    find = _dictionaries(SimpleNamespace(dictionary_by_ref=lacking), SimpleNamespace(dictionary_by_ref=lambda ref: mine))
    assert find(b"\x01\x02\x03\x04") is mine
    theirs = object()
    find = _dictionaries(SimpleNamespace(dictionary_by_ref=lambda ref: theirs), SimpleNamespace(dictionary_by_ref=lacking))
    assert find(b"\x01\x02\x03\x04") is theirs
    with pytest.raises(ObjectMissing):
        _dictionaries(SimpleNamespace(dictionary_by_ref=lacking), SimpleNamespace(dictionary_by_ref=lacking))(b"\x01")
