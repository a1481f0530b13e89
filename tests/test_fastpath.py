"""The stat-only path: the C walk (pvc/_walk.c) against the Python scan, and `status`/`commit` answered from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pvc.core.capture.walk as capture_walk
from pvc import cli as full_cli
from pvc import entry
from pvc.core import fastpath
from pvc.errors import BadInput
from pvc.project import walk as walk_module
from pvc.project.scan import files_from_walk, scan
from pvc.project.walk import Ignore, native_stat_records, stat_records
from pvc.sample import make_image_project
from pvc.store.objects import hash_bytes
from pvc.store.statcache import StatCache


def _python_records(root: Path, patterns: list[str] = ()) -> bytes:
    return stat_records(scan(root, Ignore(list(patterns))))


def _native(root: Path, patterns: list[str] = ()) -> bytes | None:
    return native_stat_records(root, Ignore(list(patterns)))


def _paths(records: bytes) -> list[str]:
    """The paths in a records blob (each `path NUL` then 32 bytes)."""
    paths, i = [], 0
    while i < len(records):
        end = records.index(b"\0", i)
        paths.append(records[i:end].decode())
        i = end + 1 + 32
    return paths


@pytest.fixture
def committed(initialised, cli):
    assert cli("commit", "-m", "v1", cwd=initialised).code == 0
    return initialised


def test_the_c_walk_is_built():
    """`make` builds pvc/_walk.c (gcc and the Python headers are on every machine pvc is set up on): without
    it pvc is correct but `status` loses its speed, so a failed build must show up here."""
    assert walk_module.NATIVE_WALK


def test_c_walk_gives_the_python_scans_bytes(project):
    (project / "train" / "img" / "ünïcode name ☃.png").write_bytes(b"x" * 10)
    (project / "deep" / "er" / "still").mkdir(parents=True)
    (project / "deep" / "er" / "still" / "file.txt").write_text("deep")
    (project / "deep" / ".git").mkdir()  # only the root's .git is skipped
    (project / "deep" / ".git" / "HEAD").write_text("ref")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref")
    (project / "link.txt").symlink_to(project / "README.md")  # followed, as the Python scan does
    (project / "empty-folder").mkdir()
    records = _native(project)
    assert records is not None and records == _python_records(project)
    paths = _paths(records)
    assert "deep/.git/HEAD" in paths and ".git/HEAD" not in paths and "link.txt" in paths
    assert "train/img/ünïcode name ☃.png" in paths and paths == sorted(paths)


def test_c_walk_applies_pvcignore_like_the_python_scan(project):
    (project / "cache").mkdir()
    (project / "cache" / "x.bin").write_bytes(b"1")
    (project / "train" / "cache").write_text("a file, not the folder pattern")
    (project / "notes.tmp").write_text("t")
    (project / "train" / "scratch.tmp").write_text("t")
    (project / "train" / "img" / "é1.log").write_text("t")
    for patterns in (["cache/"], ["*.tmp"], ["/train/*.tmp"], ["train/img/?1.log"], ["train"], ["*"], ["# c", ""]):
        records = _native(project, patterns)
        assert records == _python_records(project, patterns), patterns
    assert "train/cache" in _paths(_native(project, ["cache/"]))
    assert "cache/x.bin" not in _paths(_native(project, ["cache/"]))


NAMES = ["a", "b", "é", "ab", "a.b", "é.a", "ba.é"]


@pytest.fixture(scope="module")
def glob_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("glob")
    for folder in ("", "b.a/", "éé/", "b.a/ab./"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in NAMES:
            (root / folder / name).write_text(name)
    return root


@settings(max_examples=150, deadline=None)
@given(pattern=st.text(alphabet="abé*?./", min_size=1, max_size=6), folders_only=st.booleans())
def test_c_glob_matches_fnmatch(glob_root, pattern, folders_only):
    """`*` and `?` mean what fnmatch.fnmatchcase says, on names and on paths, with non-ASCII names."""
    lines = [pattern + ("/" if folders_only else "")]
    assert _native(glob_root, lines) == _python_records(glob_root, lines), lines


@pytest.mark.parametrize("make", [
    lambda p: (p / "folder-link").symlink_to(p / "train", target_is_directory=True),
    lambda p: (p / "broken").symlink_to(p / "nowhere"),
    lambda p: os.mkfifo(p / "pipe"),
    lambda p: (p / "back\\slash.txt").write_text("x"),
    lambda p: (p / "new\nline.txt").write_text("x"),
], ids=["symlinked-folder", "broken-link", "fifo", "backslash", "newline"])
def test_c_walk_leaves_what_scan_refuses_to_scan(project, make):
    """For these the Python scan runs and gives its one-line error: the C walk never vouches for them."""
    make(project)
    assert _native(project) is None


def test_bracket_patterns_are_left_to_the_python_scan(project):
    assert _native(project, ["[ab]*.tmp"]) is None
    assert _native(project, ["*.tmp"]) is not None


def test_commit_records_the_tree_and_status_is_answered_without_the_cli(committed, cli, monkeypatch, capsys):
    cache = StatCache(committed / ".pvc" / "index")
    assert cache.tree is not None and cache.classes
    monkeypatch.setattr(full_cli, "main", lambda argv: pytest.fail("the full command line ran"))
    monkeypatch.chdir(committed)
    assert entry.main(["status"]) == 0
    assert capsys.readouterr().out == "nothing to commit: working tree matches v1\n"


@pytest.mark.parametrize("args", [["status"], ["status", "--json"]])
def test_answered_status_prints_what_the_full_status_prints(committed, capsys, monkeypatch, args):
    monkeypatch.chdir(committed)
    assert entry._answer_untouched(args) == 0
    fast = capsys.readouterr().out
    monkeypatch.setattr(fastpath, "untouched", lambda *a: False)  # the full path, the Python scan
    assert full_cli.main(args) == 0
    full = capsys.readouterr().out
    assert fast == full
    if "--json" in args:
        assert json.loads(fast)["classes"]  # the objects-per-class table is there, not empty


def stat_only(folder: Path) -> bool:
    """Whether `pvc status` of `folder` is answered from the stat cache's tree record and the walk alone."""
    return fastpath.clean_status(str(folder)) is not None


def test_project_option_and_other_directories(committed, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert entry._answer_untouched(["status", "-C", str(committed)]) == 0
    assert entry._answer_untouched(["status", f"--project={committed}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["clean"] is True
    monkeypatch.chdir(committed / "train")  # a folder inside the project, as with git
    assert entry._answer_untouched(["status"]) == 0
    assert entry._answer_untouched(["status", "--help"]) is None
    assert entry._answer_untouched(["status", "--verbose"]) is None
    monkeypatch.chdir(tmp_path)
    assert entry._answer_untouched(["status"]) is None  # not a project: the full path says so


@pytest.mark.parametrize("change", ["touch", "edit", "add", "remove", "config"])
def test_any_change_leaves_the_stat_only_answer(committed, cli, change, monkeypatch, capsys):
    ann = sorted(committed.glob("train/ann/*.json"))[0]
    if change == "touch":
        os.utime(ann, ns=(1, 1))
    elif change == "edit":
        ann.write_text(ann.read_text().replace("{", "{ ", 1))
    elif change == "add":
        (committed / "train" / "new.txt").write_text("new")
    elif change == "remove":
        ann.unlink()
    else:
        config = committed / ".pvc" / "config"
        config.write_text(json.dumps({**json.loads(config.read_text()), "chunk_threshold": 1 << 20}))
    monkeypatch.chdir(committed)
    assert not stat_only(committed)
    clean = cli("status", "--json").json()["clean"]
    assert clean is (change in ("touch", "config"))  # mtime alone, or a setting: content is the same
    capsys.readouterr()
    assert entry._answer_untouched(["status"]) == 0  # the text too, from the report the CLI makes
    fast = capsys.readouterr().out
    assert full_cli.main(["status"]) == 0
    assert capsys.readouterr().out == fast and fast.startswith("nothing to commit" if clean else "v1 -> working tree")


def test_ignored_files_do_not_leave_the_stat_only_path(initialised, cli, monkeypatch):
    (initialised / ".pvcignore").write_text("scratch/\n*.log\n")
    (initialised / "scratch").mkdir()
    cli("commit", cwd=initialised)
    (initialised / "scratch" / "run.txt").write_text("ignored")
    (initialised / "train" / "debug.log").write_text("ignored")
    monkeypatch.chdir(initialised)
    assert entry._answer_untouched(["status"]) == 0


def test_racy_scan_records_no_tree(initialised, cli, monkeypatch):
    """A file written in the tick the scan began could change again unseen: no tree record then."""
    readme = initialised / "README.md"
    readme.write_bytes(b"a" * 100)
    mtime = readme.stat().st_mtime_ns
    monkeypatch.setattr(capture_walk, "fs_clock", lambda _dir: mtime)
    cli("commit", cwd=initialised)
    monkeypatch.undo()
    assert StatCache(initialised / ".pvc" / "index").tree is None
    monkeypatch.chdir(initialised)
    assert not stat_only(initialised)
    assert cli("status").code == 0  # re-hashes README, then records the tree
    assert StatCache(initialised / ".pvc" / "index").tree is not None
    assert stat_only(initialised)


def test_without_the_c_walk_everything_still_works(committed, cli, monkeypatch):
    monkeypatch.setattr(walk_module, "_walk", None)
    assert native_stat_records(committed, Ignore([])) is None
    assert cli("status", "--json", cwd=committed).json()["clean"] is True
    assert cli("commit", "--json").json()["created"] is False
    (committed / "README.md").write_text("changed")
    assert cli("status", "--json").json()["files"]["modified"] == ["README.md"]


def test_lost_index_rewrites_the_tree_record(committed, cli, monkeypatch):
    """A cache from an older pvc (or a deleted one) is rebuilt, tree record included, by the next status."""
    (committed / ".pvc" / "index").unlink()
    monkeypatch.chdir(committed)
    assert not stat_only(committed)
    assert cli("status").code == 0
    assert stat_only(committed)


def test_damaged_tree_record_is_ignored(committed, cli, monkeypatch):
    index = committed / ".pvc" / "index"
    data = bytearray(index.read_bytes())
    data[5:25] = b"\xff" * 20  # inside the head
    index.write_bytes(bytes(data))
    monkeypatch.chdir(committed)
    assert not stat_only(committed)
    assert cli("status", "--json").json()["clean"] is True


def test_untouched_commit_reads_nothing(committed, cli, monkeypatch):
    monkeypatch.setattr(capture_walk, "scan", lambda *a: pytest.fail("the Python scan ran"))
    doc = cli("commit", "--json", cwd=committed).json()
    assert doc["created"] is False and doc["files_hashed"] == 0


def test_sample_project_of_many_files(tmp_path):
    root = make_image_project(tmp_path / "many", items=300, datasets=3, seed=2)
    assert _native(root) == _python_records(root)


def _run_pvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pvc", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_console_entry_point_exit_codes(committed):
    """`python -m pvc` runs what the `pvc` script runs (pvc.entry.run): answered here or by the CLI."""
    done = _run_pvc(["status", "--json"], committed)
    assert done.returncode == 0 and json.loads(done.stdout)["clean"] is True and done.stderr == ""
    (committed / "README.md").write_text("changed")
    done = _run_pvc(["status", "--json"], committed)
    assert done.returncode == 0 and json.loads(done.stdout)["files"]["modified"] == ["README.md"]
    done = _run_pvc(["no-such-command"], committed)
    assert done.returncode == 1 and "no-such-command" in done.stderr


HEAVY = ("typer", "rich", "click", "pvc.cli", "pvc.api", "pvc.store.local.packstore", "pvc.store.local.packs", "zstandard", "PIL",
         "numpy", "av", "pydicom", "nibabel")


@pytest.mark.parametrize("command, says", [("status", "nothing to commit"), ("commit", "Nothing changed")])
def test_untouched_answers_load_nothing_heavy(committed, command, says):
    """The point of answering in pvc.entry: none of the CLI, the object store or the media readers is imported."""
    code = (f"import sys; from pvc import entry; code = entry._answer_untouched(['{command}']); "
            "print(code, file=sys.stderr); print('\\n'.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=committed, capture_output=True, text=True, timeout=120)
    first, *modules = done.stderr.splitlines()
    assert first == "0" and done.stdout.startswith(says)
    assert not set(HEAVY) & set(modules), set(HEAVY) & set(modules)


@pytest.mark.parametrize("args", [["commit"], ["commit", "--json"], ["commit", "-m", "again", "--json"],
                                  ["commit", "--message=again", "--author", "me", "--lock-timeout", "5"]])
def test_answered_commit_prints_what_the_full_commit_prints(committed, capsys, monkeypatch, args):
    monkeypatch.chdir(committed)
    before = (committed / ".pvc" / "versions").read_bytes()
    assert entry._answer_untouched(args) == 0
    fast = capsys.readouterr().out
    monkeypatch.setattr(fastpath, "untouched", lambda *a: False)  # the full path, under the lock
    assert full_cli.main(args) == 0
    assert capsys.readouterr().out == fast
    assert (committed / ".pvc" / "versions").read_bytes() == before
    if "--json" in args:
        assert json.loads(fast) == {"version": 1, "created": False, "manifest": json.loads(fast)["manifest"],
                                    "files_hashed": 0, "bytes_hashed": 0, "warnings": [], "followed_symlinks": 0}


@pytest.mark.parametrize("args", [["commit", "--description-json", "d.json"], ["commit", "--allow-invalid"],
                                  ["commit", "-m"], ["commit", "-m", "--json"], ["commit", "-m=x"],
                                  ["commit", "--lock-timeout", "soon"], ["commit", "-m", "a", "-m", "b"],
                                  ["commit", "--help"]])
def test_commit_options_the_entry_point_leaves_to_the_cli(committed, monkeypatch, args):
    monkeypatch.chdir(committed)
    assert entry._answer_untouched(args) is None


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}])
def test_a_changed_project_s_commit_prints_what_the_full_commit_prints(committed, tmp_path, monkeypatch, env):
    """Committed by the entry point (from its check's walk, under its lock) or by the full CLI, two copies of one
    changed project say the same, plain or (FORCE_COLOR: rich would style) through rich."""
    copies = []
    for side in ("fast", "full"):
        copy = tmp_path / side
        shutil.copytree(committed, copy, symlinks=True)
        (copy / "README.md").write_text("changed")
        (copy / "train" / "ann" / "extra.txt").write_text("a note")
        copies.append(copy)
    args = ["commit", "-m", "two"]
    fast = _pvc(args, copies[0], env, full=False)
    full = _pvc(args, copies[1], env, full=True)
    assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout)
    assert fast.returncode == 0 and fast.stdout.startswith("Created version 2 (")
    if env:  # where the CLI draws its progress bar (its rate and times differ run to run), the entry point does
        assert "commit: hashing" in fast.stderr and "commit: hashing" in full.stderr
    else:
        assert fast.stderr == full.stderr == ""


def test_no_page_is_read_ahead_for_a_stat_cache_without_this_version_as_its_base(committed, capsys, monkeypatch):
    """Without a stat cache whose base is the latest version (here: none at all), the build from the change cannot
    run, and the check reads none of the version's pages during the walk (forced long)."""
    ann = sorted(committed.glob("train/ann/*.json"))[0]
    ann.write_text(ann.read_text().replace("{", "{ ", 1))
    (committed / ".pvc" / "index").unlink()
    monkeypatch.chdir(committed)
    assert full_cli.main(["status", "--json"]) == 0
    expected = capsys.readouterr().out
    (committed / ".pvc" / "index").unlink()  # (the status saved one)
    (committed / ".pvc" / "status").unlink()  # (and its report, which would answer without a capture)
    import pvc.core.capture.delta as delta

    handed, real_delta = [], delta.delta_capture
    monkeypatch.setattr(delta, "delta_capture", lambda *args: (handed.append(args[-2:]), real_delta(*args))[1])
    monkeypatch.setattr(fastpath._Walk, "is_alive", lambda self: True)
    assert entry._answer_untouched(["status", "--json"]) == 0
    assert capsys.readouterr().out == expected
    assert handed == [({}, {})]


def test_a_commit_from_what_its_check_read_while_walking_is_the_full_commit_s(committed, tmp_path, monkeypatch, capsys):
    """The entry point's commit of a changed tree, with its check's stat cache, pages and tables read while the walk
    ran (forced here) and used by the build from the change, records the manifest the full CLI's commit records."""
    ann = sorted(committed.glob("train/ann/*.json"))
    copies = []
    for side in ("fast", "full"):
        copy = tmp_path / side
        shutil.copytree(committed, copy, symlinks=True)
        (copy / "train" / "ann" / ann[0].name).write_text(ann[0].read_text().replace("{", "{ ", 1))
        (copy / "train" / "ann" / ann[-1].name).unlink()
        copies.append(copy)
    for copy in copies:  # a status first: the stat cache then holds the change, as after a user's status
        monkeypatch.chdir(copy)
        assert full_cli.main(["status"]) == 0
    import pvc.core.capture.delta as delta

    handed, real_delta = [], delta.delta_capture
    monkeypatch.setattr(delta, "delta_capture", lambda *args: (handed.append(args[-2:]), real_delta(*args))[1])
    monkeypatch.setattr(fastpath._Walk, "is_alive", lambda self: True)
    monkeypatch.chdir(copies[0])
    assert entry._answer_untouched(["commit", "-m", "two", "--json"]) == 0
    monkeypatch.undo()
    [(pages, tables)] = handed
    assert pages and tables
    monkeypatch.chdir(copies[1])
    assert full_cli.main(["commit", "-m", "two", "--json"]) == 0
    capsys.readouterr()
    from pvc.store.repository import Repository

    latest = []
    for c in copies:
        repo = Repository(c)
        latest.append(repo.refs.read().versions[-1])
        repo.close()
    assert [r.number for r in latest] == [2, 2] and latest[0].manifest == latest[1].manifest


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}, {"COLUMNS": "20"}, {"PYTHONIOENCODING": "ascii"}])
def test_a_changed_project_s_status_prints_what_the_full_status_prints(committed, env):
    """Plain, styled, narrow, and on a stdout that cannot encode a name (rich prints what it can, then the
    error and its hint: the entry point leaves such text to it)."""
    ann = sorted(committed.glob("train/ann/*.json"))[0]
    ann.write_text(ann.read_text().replace("{", "{ ", 1))
    for path in sorted(committed.glob("train/img/*"))[:1]:
        path.unlink()
    (committed / "notes: draft: 1.txt").write_text("a name rich would read as an emoji code")
    (committed / "naïve.txt").write_text("a name ASCII cannot encode")
    fast, full = _pvc(["status"], committed, env, full=False), _pvc(["status"], committed, env, full=True)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
    assert fast.stdout.startswith("v1 -> working tree")
    if "PYTHONIOENCODING" in env:
        assert fast.returncode == 1 and "UnicodeEncodeError" in fast.stderr
    else:
        assert fast.returncode == 0 and "notes: draft: 1.txt" in fast.stdout and "naïve.txt" in fast.stdout


def test_a_reader_that_goes_away_mid_output_ends_the_status_with_exit_1(committed):
    """More text than a pipe holds, and the reader closes after one byte: the write that found the pipe gone
    fails (exit 1, nothing on stderr) as it does for the CLI, not a partial write taken for the whole."""
    folder = committed / "train" / "many"
    folder.mkdir()
    for i in range(2500):
        (folder / f"a-rather-long-file-name-so-that-the-listing-outgrows-a-pipe-{i:05d}.txt").write_text("x")
    for full in (False, True):
        code = "import sys; from pvc.cli import main; sys.exit(main(sys.argv[1:]))" if full else \
            "import sys; from pvc.entry import run; run()"
        with subprocess.Popen([sys.executable, "-c", code, "status"], cwd=committed, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            assert proc.stdout.read(1) == b"v"
            proc.stdout.close()
            err = proc.stderr.read()
            assert (proc.wait(timeout=120), err) == (1, b""), full


def _pvc(args: list[str], cwd: Path, env: dict, *, full: bool) -> subprocess.CompletedProcess:
    """`pvc ARGS` in a process of its own: the console script's code (entry.run), or the full CLI alone."""
    code = "import sys; from pvc.cli import main; sys.exit(main(sys.argv[1:]))" if full else \
        "import sys; from pvc.entry import run; run()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_status_that_learned_nothing_does_not_rewrite_the_cache(committed, cli):
    """Deleting an item adds no content: once the cache says so, a status leaves the 10 MB-at-50k file alone."""
    for path in sorted(committed.glob("train/img/*"))[:1] + sorted(committed.glob("train/ann/*"))[:1]:
        path.unlink()
    index = committed / ".pvc" / "index"
    first = cli("status", "--json", cwd=committed).json()
    written = index.stat().st_mtime_ns, index.stat().st_ino
    again = cli("status", "--json").json()
    assert again == first and not again["clean"]
    assert (index.stat().st_mtime_ns, index.stat().st_ino) == written


def test_closed_stdout_ends_quietly_like_the_cli(committed):
    """`pvc status | head -0`: exit 1 and nothing on stderr, on the entry point's path as on click's."""
    for args in (["status", "--json"], ["status"], ["log", "--json"]):
        with subprocess.Popen([sys.executable, "-m", "pvc", *args], cwd=committed, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            proc.stdout.close()
            err = proc.stderr.read()
            assert (proc.wait(timeout=120), err) == (1, b""), args


def test_interrupt_on_the_entry_points_path(committed, monkeypatch, capsys):
    def interrupted(_start, **_options):
        raise KeyboardInterrupt

    monkeypatch.chdir(committed)
    monkeypatch.setattr(fastpath, "clean_status", interrupted)
    assert entry.main(["status", "--json"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "pvc: error: interrupted\n"
    assert json.loads(captured.out)["error"] == {"type": "Interrupted", "message": "interrupted", "exit_code": 130}


def test_files_from_the_c_walk_are_the_python_scans(project):
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    (project / "link.txt").symlink_to(project / "README.md")
    (project / "train" / "img" / "ünï ☃.png").write_bytes(b"x")
    walked = walk_module.native_walk(project, Ignore([]))
    files = files_from_walk(project, *walked)
    assert files == scan(project, Ignore([]))
    assert [f.relpath for f in files if f.executable] == ["run.sh"]


def test_a_manifest_built_from_the_c_walk_is_the_python_scans(initialised, cli, monkeypatch):
    (initialised / "run.sh").write_text("#!/bin/sh\n")
    (initialised / "run.sh").chmod(0o755)
    first = cli("commit", "--json", cwd=initialised).json()
    (initialised / ".pvc" / "index").unlink()
    monkeypatch.setattr(capture_walk, "native_walk", lambda *a: None)  # the Python scan, all the way
    again = cli("commit", "--json").json()
    assert again["created"] is False and again["manifest"] == first["manifest"] and again["files_hashed"] > 0


NAME_PARTS = st.sampled_from(["a", "b", "é", "☃", " ", ".", "-", "git", "pvc", "x.json", "ann", "img"])


@settings(max_examples=25, deadline=None)
@given(paths=st.lists(st.lists(st.lists(NAME_PARTS, min_size=1, max_size=3).map("".join), min_size=1, max_size=4),
                     min_size=1, max_size=25),
       patterns=st.lists(st.sampled_from(["*.json", "img/", "/a*", "?", "b", "*/é*", ".*", "git/"]), max_size=2))
def test_c_walk_and_python_scan_agree_on_generated_trees(tmp_path_factory, paths, patterns):
    """Random nesting, names (dots, spaces, non-ASCII, `.git`/`.pvc` at any depth) and ignore patterns: the
    C walk gives the Python scan's bytes, or declines where the scan would refuse."""
    root = tmp_path_factory.mktemp("tree")
    for parts in paths:
        parts = [p for p in parts if p not in (".", "..")]
        if not parts:
            continue
        folder = root.joinpath(*parts[:-1])
        if any(p.is_file() for p in [folder, *folder.parents] if p != root and root in p.parents):
            continue  # a file is already where a folder would go
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / parts[-1]
        if not target.exists():
            target.write_text("/".join(parts))
    try:
        expected = _python_records(root, patterns)
    except BadInput:
        expected = None
    assert _native(root, patterns) == expected


def test_commit_on_an_untouched_tree_holds_the_lock_on_every_path(committed, monkeypatch, capsys):
    """One rule, wherever the answer comes from: a commit holds the writers' lock, so with another writer at
    work and --lock-timeout 0 it is Locked (exit 3), never a stale "nothing changed"."""
    import pvc
    from pvc.errors import Locked
    from pvc.store.repository import Repository

    monkeypatch.chdir(committed)
    assert entry._answer_untouched(["commit"]) == 0  # free: the entry point answers
    capsys.readouterr()
    with Repository(committed).lock():
        assert entry._answer_untouched(["commit", "--lock-timeout", "0"]) is None  # held: left to the CLI
        assert entry.main(["commit", "--lock-timeout", "0"]) == 3
        assert full_cli.main(["commit", "--lock-timeout", "0", "--json"]) == 3
        with pytest.raises(Locked):
            pvc.Project(committed).version.create(lock_timeout=0)
        assert entry.main(["status"]) == 0  # status only reads: answered all the same
    assert "locked by" in capsys.readouterr().err
    assert entry.main(["commit", "--lock-timeout", "0"]) == 0


@pytest.fixture
def history(tmp_path, cli) -> Path:
    """Four versions (one deleted, two tagged, one with a JSON description) and a project restored from one."""
    source = make_image_project(tmp_path / "source", items=4, datasets=1, seed=3)
    assert cli("init", source).code == 0
    (tmp_path / "workflow.json").write_text(json.dumps({"app": "augment", "params": {"flip": True}}))
    for i in range(4):
        (source / "NOTES.txt").write_text(f"round {i}\n")
        described = ["--description-json", tmp_path / "workflow.json"] if i == 2 else []
        assert cli("commit", "-m", f"round {i}", "--author", "ann" if i % 2 else "bob", *described,
                   cwd=source).code == 0
    assert cli("tag", "baseline", "1").code == 0 and cli("tag", "release/1", "3").code == 0
    assert cli("delete", "2", "--yes").code == 0
    assert cli("restore", "3", "--to", tmp_path / "restored").code == 0
    assert cli("commit", "-m", "continued", cwd=tmp_path / "restored").code == 0
    return source


LOG_ARGS = [["log"], ["log", "--json"], ["log", "-n", "2"], ["log", "--all"], ["log", "--tag", "--json"],
            ["log", "--author", "ANN"], ["log", "--grep", "round 3"], ["log", "--since", "30d", "--until", "2100-01-01"],
            ["log", "--grep", "nothing like it"], ["log", "--limit=1", "--all", "--json"]]


@pytest.mark.parametrize("args", LOG_ARGS)
def test_answered_log_prints_what_the_full_log_prints(history, capsys, monkeypatch, args):
    for project in (history, history.parent / "restored"):  # with and without an origin column
        monkeypatch.chdir(project)
        assert entry._answer_untouched(args) == 0
        fast = capsys.readouterr().out
        assert full_cli.main(args) == 0
        assert fast == capsys.readouterr().out
        assert fast.strip()


@pytest.mark.parametrize("args", [["log", "-n", "0"], ["log", "--since", "yesterday"], ["log", "--help"],
                                  ["log", "-n"], ["log", "extra"], ["log", "--tag", "--tag"]])
def test_log_the_entry_point_cannot_answer_goes_to_the_cli(history, monkeypatch, args):
    monkeypatch.chdir(history)
    assert entry._answer_untouched(args) is None


def test_log_with_a_broken_config_goes_to_the_cli(history, monkeypatch):
    config = history / ".pvc" / "config"
    config.write_text(config.read_text().replace('"pack_size"', '"pack_sise"'))
    monkeypatch.chdir(history)
    assert entry._answer_untouched(["log"]) is None


SHOW_ARGS = [["show"], ["show", "--json"], ["show", "1"], ["show", "baseline", "--json"], ["show", "v3"],
             ["tag"], ["tag", "--list"], ["tag", "-l", "--json"]]


@pytest.mark.parametrize("args", SHOW_ARGS)
def test_answered_show_and_tags_print_what_the_full_commands_print(history, capsys, monkeypatch, args):
    named = len([a for a in args[1:] if not a.startswith("-")]) > 0
    # the restored project (an origin, no tags, one version) for the forms that name no version
    for project in (history,) if named else (history, history.parent / "restored"):
        monkeypatch.chdir(project)
        assert entry._answer_untouched(args) == 0, args
        fast = capsys.readouterr().out
        assert full_cli.main(args) == 0
        assert fast == capsys.readouterr().out
        assert fast.strip()


@pytest.mark.parametrize("args", [["show", "2"], ["show", "nosuchtag"], ["show", "1", "2"], ["show", "--help"],
                                  ["tag", "baseline", "1"], ["tag", "-d", "baseline"], ["tag", "--list", "x"]])
def test_show_and_tag_forms_the_entry_point_leaves_to_the_cli(history, monkeypatch, args):
    monkeypatch.chdir(history)  # version 2 is deleted: the CLI says so
    assert entry._answer_untouched(args) is None


@pytest.mark.parametrize("change", ["edit", "remove", "bad config"])
def test_status_json_of_a_changed_project_is_answered_as_the_cli_answers_it(committed, capsys, monkeypatch, change):
    """`pvc status --json` with changes: the report of the same status function, printed without the CLI; what
    the CLI must explain (here a malformed `.pvc/config`) goes to the CLI."""
    ann = sorted(committed.glob("train/ann/*.json"))[0]
    if change == "edit":
        ann.write_text(ann.read_text().replace("{", "{ ", 1))
    elif change == "remove":
        ann.unlink()
    else:
        ann.unlink()
        (committed / ".pvc" / "config").write_text("{not json")
    monkeypatch.chdir(committed)
    answered = entry._answer_untouched(["status", "--json"])
    fast = capsys.readouterr().out
    if change == "bad config":
        assert answered is None and fast == ""
        return
    assert answered == 0
    assert full_cli.main(["status", "--json"]) == 0
    assert fast == capsys.readouterr().out
    assert json.loads(fast)["clean"] is False
    assert entry._answer_untouched(["status"]) == 0  # the text form too
    fast = capsys.readouterr().out
    assert full_cli.main(["status"]) == 0
    assert capsys.readouterr().out == fast


@pytest.mark.parametrize("change", ["edit", "remove"])
def test_a_changed_project_s_status_reads_its_stat_cache_once_while_walking(committed, capsys, monkeypatch, change):
    """On a changed tree the clean check reads the stat cache, the latest version's pages and their tables while the
    walk runs (forced here, as if the walk were still going) and hands them to the status's capture with the walk:
    one StatCache is opened, not two, the build from the change gets the pages (each its id's bytes) and tables, and
    the answer is the CLI's."""
    ann = sorted(committed.glob("train/ann/*.json"))[0]
    if change == "edit":
        ann.write_text(ann.read_text().replace("{", "{ ", 1))
    else:
        ann.unlink()
    monkeypatch.chdir(committed)
    assert full_cli.main(["status", "--json"]) == 0  # (saves what it read: the next status has a cache to read ahead)
    expected = capsys.readouterr().out
    (committed / ".pvc" / "status").unlink()  # (its report would answer without a capture)
    from pvc.store.statcache import StatCache

    opened, ahead = [], []
    real_init, real_ahead = StatCache.__init__, StatCache.read_ahead
    monkeypatch.setattr(StatCache, "__init__", lambda self, path: (opened.append(path), real_init(self, path))[1])
    monkeypatch.setattr(StatCache, "read_ahead", lambda self: (ahead.append(self), real_ahead(self))[1])
    monkeypatch.setattr(fastpath._Walk, "is_alive", lambda self: True)
    import pvc.core.capture.delta as delta

    handed, real_delta = [], delta.delta_capture
    monkeypatch.setattr(delta, "delta_capture", lambda *args: (handed.append(args[-2:]), real_delta(*args))[1])
    assert entry._answer_untouched(["status", "--json"]) == 0
    assert capsys.readouterr().out == expected
    assert len(opened) == 1 and len(ahead) == 1 and ahead[0]._columns is not None
    [(pages, tables)] = handed
    assert pages and all(hash_bytes(data) == oid for oid, data in pages.items())
    assert tables and {key[0] for key in tables} <= set(pages)


def test_a_changed_tree_s_modules_are_imported_only_while_the_walk_runs(monkeypatch):
    """fastpath._while_walking imports the answer's modules in the time the clean check waits for the walk; once the
    walk has ended it imports nothing more (an untouched project's answer needs none of them)."""
    class Walk:
        def __init__(self, alive: int) -> None:
            self.alive = alive

        def is_alive(self) -> bool:
            self.alive -= 1
            return self.alive >= 0

    imported = []
    monkeypatch.setattr("builtins.__import__", lambda name, *a, **k: imported.append(name))
    fastpath._while_walking(Walk(0), ("pvc.no_such_module",))
    fastpath._while_walking(Walk(2), ("first", "second", "third"))
    monkeypatch.undo()
    assert imported == ["first", "second"]
    assert fastpath._STATUS_MODULES[-1] == "pvc.core.status" and "pvc.core.commit" in fastpath._COMMIT_MODULES


def test_what_is_imported_before_the_walk_starts_stays_small():
    """The entry point starts the C walk after importing pvc.entry, pvc.core.tuning and pvc.core.fastpath alone: none
    of them may import typing, threading or functools (~3 ms each on the critical path of every status and commit;
    they are imported during the walk instead)."""
    code = ("import sys; before = set(sys.modules); import pvc.entry, pvc.core.tuning, pvc.core.fastpath; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    added = set(done.stdout.split())
    assert done.returncode == 0 and "pvc.core.fastpath" in added
    assert not {"typing", "threading", "functools", "pathlib", "dataclasses"} & added, added
