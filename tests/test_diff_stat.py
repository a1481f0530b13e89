"""`pvc diff A B --stat` (and `--json`) answered by the entry point (pvc/entry.py) prints what the CLI prints.

On a real project with edits, additions and deletions in several datasets, a new and a removed dataset, a
changed meta.json and a project-level file; for the forms it leaves to the CLI; for damaged, missing and
crafted objects (the CLI's one-line error and exit code, through the fallback); and for the class table, which
the CLI draws with rich: plain where rich's is plain, rich's own where it would style or wrap it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvc import cli as full_cli
from pvc import entry, render
from pvc.sample import make_image_project, mutate_image_project
from pvc.core.snapshot import Snapshot
from pvc.store.repository import Repository

from test_fuzz_commands import EXAMPLES, _graph, _install, _mutated


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> Path:
    """v1; v2 after a labelling session across datasets, a dataset added and one removed, meta.json and a
    project file changed; v3 = v2 plus a file, tagged `release`; v4 deleted."""
    project = make_image_project(tmp_path_factory.mktemp("stat") / "proj", items=30, datasets=3, seed=5)
    with contextlib.redirect_stdout(io.StringIO()):
        assert full_cli.main(["init", str(project)]) == 0
        assert full_cli.main(["commit", "-m", "one", "-C", str(project)]) == 0
        mutate_image_project(project, seed=7, edit=0.2, add=0.15, delete=0.1)
        datasets = sorted(p for p in project.iterdir() if (p / "ann").is_dir())
        shutil.copytree(datasets[0], project / "added-ds")
        shutil.rmtree(datasets[-1])
        meta = json.loads((project / "meta.json").read_text())
        meta["classes"].append({"title": "bus", "shape": "rectangle", "color": "#123456"})
        (project / "meta.json").write_text(json.dumps(meta))
        (project / "NOTES.txt").write_text("v2\n")
        assert full_cli.main(["commit", "-m", "two", "-C", str(project)]) == 0
        (project / "NOTES.txt").write_text("v3\n")
        assert full_cli.main(["commit", "-m", "three", "-C", str(project)]) == 0
        assert full_cli.main(["tag", "release", "3", "-C", str(project)]) == 0
        (project / "NOTES.txt").write_text("v4\n")
        assert full_cli.main(["commit", "-m", "four", "-C", str(project)]) == 0
        assert full_cli.main(["delete", "4", "--yes", "-C", str(project)]) == 0
    return project


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = full_cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


STAT_ARGS = [["diff", "1", "2", "--stat"], ["diff", "1", "2", "--stat", "--json"], ["diff", "--stat", "2", "1"],
             ["diff", "v1", "latest", "--stat", "--json"], ["diff", "release", "1", "--stat"], ["diff", "2", "3", "--stat"],
             ["diff", "1", "1", "--stat"], ["diff", "2", "--stat", "1", "--json"], ["diff", "1", "2", "--json"],
             ["diff", "3", "2", "--json"]]


@pytest.mark.parametrize("args", STAT_ARGS)
def test_answered_diff_stat_prints_what_the_cli_prints(versions, capsys, monkeypatch, args):
    monkeypatch.chdir(versions)
    monkeypatch.setattr(full_cli, "main", lambda argv: pytest.fail("the full command line ran"))
    assert entry.main(args) == 0
    fast = capsys.readouterr()
    monkeypatch.undo()
    monkeypatch.chdir(versions)
    assert _cli(args, capsys) == (0, fast.out, fast.err)
    assert fast.out.strip()


def test_the_report_has_everything_and_the_table_is_drawn_plain(versions, capsys, monkeypatch):
    """The answers above are the interesting ones: items added, removed and modified in several datasets, a
    dataset added and one removed, other files, meta.json and a class table, drawn without rich."""
    monkeypatch.chdir(versions)
    assert full_cli.main(["diff", "1", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    items = report["items"]
    assert all(items[k] for k in ("added", "removed", "modified"))
    assert len({i["dataset"] for i in items["added"] + items["removed"] + items["modified"]}) >= 2
    assert report["datasets"]["added"] and report["datasets"]["removed"] and report["files"]["added"]
    assert report["meta"]["classes_added"] == ["bus"]
    assert any(i.get("objects") for i in items["modified"])
    assert render.changed_classes(report) and render.changes_text(report, stat=True) is not None


def test_stat_json_is_the_whole_report_as_today(versions, capsys, monkeypatch):
    monkeypatch.chdir(versions)
    assert entry._answer_untouched(["diff", "1", "2", "--stat", "--json"]) == 0
    fast = capsys.readouterr().out
    assert _cli(["diff", "1", "2", "--json"], capsys) == (0, fast, "")


def test_project_option_and_other_directories(versions, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(versions)
    expected = _cli(["diff", "1", "2", "--stat"], capsys)[1]
    monkeypatch.chdir(tmp_path)
    for args in (["-C", str(versions), "diff", "1", "2", "--stat"], ["diff", "1", "2", "--stat", "-C", str(versions)],
                 ["diff", f"--project={versions}", "1", "2", "--stat"]):
        assert entry._answer_untouched(args) == 0
        assert capsys.readouterr().out == expected
    monkeypatch.chdir(versions / "added-ds")  # inside the project, as with git
    assert entry._answer_untouched(["diff", "1", "2", "--stat"]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("args", [["diff", "1", "2"], ["diff", "1", "--stat"], ["diff", "--stat"],
                                  ["diff", "1", "2", "3", "--stat"], ["diff", "1", "2", "--stat", "--dataset", "x"],
                                  ["diff", "1", "2", "--stat", "--item", "x"], ["diff", "1", "2", "--stat", "--stat"],
                                  ["diff", "1", "2", "--no-stat"], ["diff", "1", "2", "--stat", "--help"],
                                  ["diff", "1", "-2", "--stat"], ["diff", "1", "9", "--stat"], ["diff", "1", "4", "--stat"],
                                  ["diff", "1", "nosuchtag", "--stat", "--json"], ["--json", "diff", "1", "2", "--stat"]])
def test_forms_the_entry_point_leaves_to_the_cli(versions, capsys, monkeypatch, args):
    monkeypatch.chdir(versions)
    assert entry._answer_untouched(args) is None
    assert capsys.readouterr().out == ""


def _read_by_the_diff(project: Path, what: str) -> tuple[Path, int]:
    """The pack and offset of an object of version 2 that `diff 1 2` reads: an items page only v2 has, or the
    new annotation of a modified item."""
    repo = Repository(project)
    try:
        a, b = (Snapshot(repo.store, bytes.fromhex(v.manifest)) for v in repo.versions()[:2])
        if what == "page":
            old = {ref.oid for ds in a.datasets() for ref in ds.tree.items}
            oid = next(ref.oid for ds in b.datasets() for ref in ds.tree.items if ref.oid not in old)
        else:
            before = {f.path: f.oid for f in a.files()}
            oid = next(f.oid for f in b.files() if f.path.endswith(".json") and "/ann/" in f.path
                       and before.get(f.path, f.oid) != f.oid)
        loc = repo.store.locate(oid)
        return repo.store.pack_path(loc.pack), loc.offset
    finally:
        repo.close()


def _damage(project: Path, what: str) -> None:
    path, offset = _read_by_the_diff(project, what)
    data = bytearray(path.read_bytes())
    data[offset + 3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("what, args", [("page", ["diff", "1", "2", "--stat"]),
                                        ("page", ["diff", "1", "2", "--stat", "--json"]),
                                        ("annotation", ["diff", "1", "2", "--stat", "--json"]),
                                        ("annotation", ["diff", "1", "2"])])
def test_damaged_objects_give_the_clis_error(versions, tmp_path, capsys, monkeypatch, what, args):
    project = tmp_path / "copy"
    shutil.copytree(versions, project)
    _damage(project, what)
    monkeypatch.chdir(project)
    assert entry._answer_untouched(args) is None
    assert capsys.readouterr().out == ""
    code, out, err = _cli(args, capsys)
    assert code == 2 and err.startswith("pvc: error: object ") and err.count("\n") == 1
    assert entry.main(args) == code
    assert capsys.readouterr() == (out, err)


def test_stat_text_does_not_read_the_annotations(versions, tmp_path, capsys, monkeypatch):
    """What `--stat` prints needs no annotation's content: a damaged one (for `pvc verify` to find) changes
    nothing in it, from the entry point or the CLI, while the full diff, which parses it, refuses it."""
    monkeypatch.chdir(versions)
    expected = _cli(["diff", "1", "2", "--stat"], capsys)
    assert expected[0] == 0 and "modified" in expected[1]
    project = tmp_path / "copy"
    shutil.copytree(versions, project)
    _damage(project, "annotation")
    monkeypatch.chdir(project)
    assert entry._answer_untouched(["diff", "1", "2", "--stat"]) == 0
    assert capsys.readouterr().out == expected[1]
    assert _cli(["diff", "1", "2", "--stat"], capsys) == expected
    assert _cli(["diff", "1", "2"], capsys)[0] == 2


def test_a_missing_pack_gives_the_clis_error(versions, tmp_path, capsys, monkeypatch):
    project = tmp_path / "copy"
    shutil.copytree(versions, project)
    _read_by_the_diff(project, "page")[0].unlink()
    monkeypatch.chdir(project)
    args = ["diff", "1", "2", "--stat"]
    assert entry._answer_untouched(args) is None
    code, out, err = _cli(args, capsys)
    assert code == 2 and "missing" in err
    assert entry.main(args) == code and capsys.readouterr() == (out, err)


@pytest.fixture(scope="module")
def crafted_base(tmp_path_factory) -> tuple[Path, list]:
    project = make_image_project(tmp_path_factory.mktemp("crafted") / "proj", items=8, datasets=2, seed=4)
    with contextlib.redirect_stdout(io.StringIO()):
        assert full_cli.main(["init", str(project)]) == 0
        assert full_cli.main(["commit", "-m", "one", "-C", str(project)]) == 0
    repo = Repository(project)
    nodes = _graph(repo, bytes.fromhex(repo.versions()[-1].manifest))
    repo.close()
    return project, nodes


def _run(main, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
@given(data=st.data())
def test_crafted_objects_give_what_the_cli_gives(crafted_base, data):
    """A version whose manifest, trees or pages pass their checksum but are structurally wrong (as in
    tests/test_fuzz_commands.py): the entry point's answer, or its fallback, is the CLI's, byte for byte."""
    project, nodes = crafted_base
    target = data.draw(st.integers(0, len(nodes) - 1), label="object")
    _install(project, nodes, target, _mutated(data, nodes[target].doc))
    for args in (["diff", "1", "2", "--stat", "-C", str(project)], ["diff", "2", "1", "--stat", "--json", "-C", str(project)]):
        assert _run(entry.main, args) == _run(full_cli.main, args), args


HEAVY = ("typer", "rich", "click", "pvc.cli", "pvc.api", "pvc.output", "PIL", "numpy", "av", "pydicom", "nibabel",
         "concurrent.futures", "pyfastcdc", "pvc.core.capture", "pvc.store.local.check", "pvc.store.local.repack")


def test_the_answer_loads_nothing_heavy(versions):
    code = ("import sys; from pvc import entry; code = entry._answer_untouched(['diff', '1', '2', '--stat']); "
            "print(code, file=sys.stderr); print('\\n'.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=versions, capture_output=True, text=True, timeout=120)
    first, *modules = done.stderr.splitlines()
    assert first == "0" and "items added" in done.stdout
    assert not set(HEAVY) & set(modules), set(HEAVY) & set(modules)


def _pvc(args: list[str], cwd: Path, env: dict, *, full: bool) -> subprocess.CompletedProcess:
    """`pvc ARGS` in a process of its own: the console script's code (entry.run), or the full CLI alone."""
    code = "import sys; from pvc.cli import main; sys.exit(main(sys.argv[1:]))" if full else \
        "import sys; from pvc.entry import run; run()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("env", [{}, {"COLUMNS": "200"}, {"COLUMNS": "18"}, {"COLUMNS": "0"}, {"FORCE_COLOR": "1"},
                                 {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}])
def test_the_class_table_is_the_one_rich_draws(versions, env):
    """Narrow consoles (rich wraps the table), forced colours (rich styles its header): drawn by rich, as the
    CLI draws it; otherwise plain, and the same."""
    args = ["diff", "1", "2", "--stat"]
    fast, full = _pvc(args, versions, env, full=False), _pvc(args, versions, env, full=True)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
    assert fast.returncode == 0 and ("items added" in fast.stdout or env.get("COLUMNS") == "0")  # rich: no room


CLASS_NAMES = ["car", "Car 2", "a  b", " lead", "trail ", ":smile:", "[bold]x[/bold]", "naïve", "汉字", "x\ty", "",
               "n" * 60, "dash-ed_under.score", "semi;colon", "100%", "{brace}"]


@pytest.mark.parametrize("width", [200, 80, 40, 25, 12])
def test_stat_text_is_rich_s_table_or_none(width, monkeypatch):
    """render.changes_text(stat=True) against rich itself (a console like pvc.output.out, not a terminal, `width` wide)."""
    from rich.console import Console
    from rich.table import Table

    monkeypatch.setenv("COLUMNS", str(width))
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(variable, raising=False)
    for name in CLASS_NAMES:
        report = {"from": 1, "to": 2, "clean": False, "problems": [], "datasets": {"added": [], "removed": []},
                  "items": {"added": [{}], "removed": [], "modified": []}, "files": {"added": [], "removed": [], "modified": ["x"]},
                  "classes": {name: {"before": 3, "after": 12345}, "zz": {"before": 1, "after": 1}}}
        buf = io.StringIO()
        console = Console(file=buf, soft_wrap=True, highlight=False, markup=False)
        console.print(render.changes_headline(report))
        table = Table(*render.CLASS_HEADER, box=None)
        for row in render.changed_classes(report):
            table.add_row(*row)
        console.print(table)
        text = render.changes_text(report, stat=True, stream=io.StringIO())
        assert text is None or text + "\n" == buf.getvalue(), (name, width)
        if name in ("car", "Car 2", "dash-ed_under.score") and width >= 40:
            assert text is not None, name


LINE_NAMES = ["img_001.jpg", "a:b.jpg", "a: b: c.png", ":smile:.jpg", "x:y:z.jpg", "tab\there.jpg", "bell\x07.jpg",
              "esc\x1b[31m.jpg", "cr\rx.jpg", "[bold]x[/bold].jpg", "naïve 汉字.jpg", "  spaced  .jpg", "100%.jpg",
              "zero\u200bwidth.jpg", "nbsp\u00a0.jpg", "line\u2028sep.jpg"]


@pytest.mark.parametrize("name", LINE_NAMES)
def test_changes_text_is_what_rich_prints_or_none(name, monkeypatch):
    """render.changes_text (what `pvc status` and `pvc diff` print, lines and table) against rich itself, line by
    line as pvc.output.render_changes prints them, for names rich would leave alone and names it would change."""
    from rich.console import Console
    from rich.table import Table

    monkeypatch.setenv("COLUMNS", "80")
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(variable, raising=False)
    item = {"dataset": "ds0", "item": name}
    report = {"from": 1, "to": "working", "clean": False, "problems": [],
              "datasets": {"added": [f"new {name}"], "removed": []},
              "items": {"added": [item], "removed": [item],
                        "modified": [item | {"changed": ["annotation"], "objects": {"added": 1, "removed": 0, "changed": 2}}]},
              "files": {"added": [f"docs/{name}"], "removed": [], "modified": []},
              "meta": {"classes_added": [name], "tags_added": []},
              "classes": {"car": {"before": 3, "after": 4}}}
    buf = io.StringIO()
    console = Console(file=buf, soft_wrap=True, highlight=False, markup=False)
    console.print(render.changes_headline(report))
    for line in render.change_lines(report):
        console.print(line)
    table = Table(*render.CLASS_HEADER, box=None)
    for row in render.changed_classes(report):
        table.add_row(*row)
    console.print(table)
    text = render.changes_text(report, stream=io.StringIO())
    assert text is None or text + "\n" == buf.getvalue(), name
    if name in ("img_001.jpg", "a:b.jpg", "naïve 汉字.jpg", "[bold]x[/bold].jpg", "  spaced  .jpg", "100%.jpg"):
        assert text is not None, name  # plain: the entry point prints it without rich


def test_a_plain_answer_only_when_rich_would_print_plain_text():
    report = {"from": 1, "to": 2, "clean": True, "problems": [], "classes": {}}
    assert render.changes_text(report, stat=True, environ={}, stream=io.StringIO()) == "no differences between v1 and v2"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert render.changes_text(report, stat=True, environ={}, stream=Terminal()) is None
    assert render.changes_text(report, stat=True, environ={"FORCE_COLOR": "1"}, stream=io.StringIO()) is None
    assert render.changes_text(report, stat=True, environ={"TTY_COMPATIBLE": "0"}, stream=Terminal()) is not None
    assert render.changes_text(report | {"problems": [{"path": "x", "problem": "y"}]}, stat=True, environ={},
                               stream=io.StringIO()) is None


def test_without_details_the_report_is_the_same_but_for_the_annotation_diffs(versions):
    from pvc.core.diff import diff_snapshots

    repo = Repository(versions)
    try:
        a, b = (Snapshot(repo.store, bytes.fromhex(v.manifest)) for v in repo.versions()[:2])
        full = diff_snapshots(a, b, source=1, target=2)
        bare = diff_snapshots(a, b, source=1, target=2, details=False)
    finally:
        repo.close()
    assert any("annotation" in i for i in full["items"]["modified"])
    for i in full["items"]["modified"]:
        i.pop("objects", None)
        i.pop("annotation", None)
    assert bare == full


def test_annotations_that_used_to_make_diff_an_internal_error(tmp_path, capsys, monkeypatch):
    """A tag named by a list, `objects` that is a number (committed with --allow-invalid): the CLI answers
    (it used to fail), and the entry point, which does not parse annotations for --stat, says the same."""
    project = make_image_project(tmp_path / "p", items=6, datasets=1, seed=2)
    anns = sorted(project.glob("*/ann/*.json"))
    with contextlib.redirect_stdout(io.StringIO()):
        assert full_cli.main(["init", str(project)]) == 0
        assert full_cli.main(["commit", "-m", "one", "-C", str(project)]) == 0
        doc = json.loads(anns[0].read_text())
        doc["tags"] = [{"name": ["x"]}, {"name": 3}, "a"]
        anns[0].write_text(json.dumps(doc))
        assert full_cli.main(["commit", "-m", "two", "-C", str(project)]) == 0
        anns[1].write_text(json.dumps({"objects": 5, "size": {"width": 1, "height": 1}}))
        assert full_cli.main(["commit", "-m", "three", "--allow-invalid", "-C", str(project)]) == 0
    monkeypatch.chdir(project)
    for args in (["diff", "1", "2", "--stat"], ["diff", "1", "3", "--stat", "--json"], ["diff", "2", "3", "--stat"]):
        fast = _run(entry.main, args)
        assert fast == _run(full_cli.main, args) and fast[0] == 0, (args, fast)
    assert json.loads(_run(full_cli.main, ["diff", "1", "3", "--json"])[1])["items"]["modified"]


def test_without_the_c_module_the_answers_are_the_same(versions, capsys, monkeypatch):
    """pvc/_pages.c is optional: without it every map is compared by pages.py, with the same report."""
    from pvc.store import pagediff

    monkeypatch.chdir(versions)
    args = ["diff", "1", "2", "--stat", "--json"]
    assert entry._answer_untouched(args) == 0
    fast = capsys.readouterr().out
    monkeypatch.setattr(pagediff, "_pages", None)
    assert entry._answer_untouched(args) == 0
    assert capsys.readouterr().out == fast
    assert _cli(args, capsys) == (0, fast, "")
