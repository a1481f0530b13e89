"""Results: machine facts, the raw JSON, and the Markdown tables (pvc against each baseline, with ratios)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.bench import REPO_ROOT, Bench
from bench.proc import Measurement

__all__ = ["machine_facts", "to_json", "to_markdown"]

# (scenario, pvc op, label, [(baseline scenario, op, tool, label)])
_IMAGE_ROWS = [
    ("cli", "start", "CLI start (`pvc --help`)", [
        ("cli", "start", "python", "`python -c pass`"),
        ("cli", "start", "python+typer+rich", "`python -c 'import typer, rich.table'`")]),
    ("images", "first_commit", "first commit", [
        ("images", "first_commit", "git", "git add -A + commit"),
        ("images", "first_commit", "restic", "restic backup"),
        ("images", "first_commit", "dvc", "dvc add"),
        ("images", "hash", "read+blake3", "read + blake3 of every file (floor)")]),
    ("images", "nochange_commit", "no-change commit", [
        ("images", "status_clean", "git", "git status"),
        ("images", "nochange_commit", "git", "git add -A + commit (nothing to commit)"),
        ("images", "nochange_commit", "restic", "restic backup (no change)"),
        ("images", "status_clean", "dvc", "dvc status"),
        ("images", "nochange_commit", "dvc", "dvc add (no change)")]),
    ("images", "status_clean", "status, clean", [
        ("images", "status_clean", "git", "git status"), ("images", "status_clean", "dvc", "dvc status")]),
    ("images", "status_dirty", "status, dirty", [
        ("images", "status_dirty", "git", "git status"), ("images", "status_dirty", "dvc", "dvc status")]),
    ("images", "change_commit", "1% change commit", [
        ("images", "change_commit", "git", "git add -A + commit"),
        ("images", "change_commit", "restic", "restic backup"),
        ("images", "change_commit", "dvc", "dvc add")]),
    ("images", "log", "log (2 versions)", [("images", "log", "git", "git log")]),
    ("images", "show", "show", [("images", "show", "git", "git show --stat")]),
    ("images", "ls", "ls --json (every item of v2)", [("images", "ls", "git", "git ls-tree -r -l")]),
    ("images", "diff", "diff v1 v2", [("images", "diff", "git", "git diff --stat")]),
    ("images", "restore", "restore v1 to a new dir", [
        ("images", "restore", "cp -a", "cp -a (floor)"),
        ("images", "restore", "cp -a + sync", "cp -a + sync (durable floor; pvc syncs too)"),
        ("images", "restore", "git", "git worktree add"),
        ("images", "restore", "restic", "restic restore"),
        ("images", "restore", "dvc", "dvc checkout (empty workspace)")]),
    ("images", "restore_skip_missing", "restore v1 --skip-missing, 5% media lost", [
        ("images", "restore", "pvc", "pvc restore v1 (nothing lost)")]),
]

_LARGE_ROWS = [
    ("bigfile", "first_commit", "commit one {bigfile_mb} MiB file", [
        ("bigfile", "first_commit", "restic", "restic backup"),
        ("bigfile", "hash", "read+blake3", "read + blake3 (floor)")]),
    ("bigfile", "nochange_commit", "commit, file unchanged", [
        ("bigfile", "nochange_commit", "restic", "restic backup (no change)")]),
    ("bigfile", "edit_commit", "commit after a 1 MiB in-place edit", [
        ("bigfile", "edit_commit", "restic", "restic backup")]),
    ("bigfile", "restore", "restore the file", [("bigfile", "restore", "cp -a", "cp -a (floor)"),
                                                ("bigfile", "restore", "cp -a + sync", "cp -a + sync")]),
    ("video", "first_commit", "video project: first commit", [
        ("video", "first_commit", "restic", "restic backup"), ("video", "hash", "read+blake3", "read + blake3 (floor)")]),
    ("video", "nochange_commit", "video project: no-change commit", [
        ("video", "nochange_commit", "restic", "restic backup (no change)")]),
    ("video", "restore", "video project: restore", [
        ("video", "restore", "cp -a", "cp -a (floor)"), ("video", "restore", "cp -a + sync", "cp -a + sync"),
        ("video", "restore", "restic", "restic restore")]),
    ("volume", "first_commit", "volume project: first commit", [
        ("volume", "first_commit", "restic", "restic backup"), ("volume", "hash", "read+blake3", "read + blake3 (floor)")]),
    ("volume", "nochange_commit", "volume project: no-change commit", [
        ("volume", "nochange_commit", "restic", "restic backup (no change)")]),
    ("volume", "restore", "volume project: restore", [
        ("volume", "restore", "cp -a", "cp -a (floor)"), ("volume", "restore", "cp -a + sync", "cp -a + sync"),
        ("volume", "restore", "restic", "restic restore")]),
    ("log", "log", "`pvc log`, {log_versions} versions", [("log", "log", "git", "git log, same number of commits")]),
    ("log", "log_json", "`pvc log --json`, {log_versions} versions", [("log", "log", "git", "git log, same number of commits")]),
    ("log", "log_n20", "`pvc log -n 20`, {log_versions} versions", [("log", "log", "git", "git log, same number of commits")]),
]


_HISTORY_ROWS = [("history", op, label, [("history", op, "git", glabel)]) for op, label, glabel in (
    ("log", "`pvc log`", "git log"),
    ("log_json", "`pvc log --json`", "git log"),
    ("log_n20", "`pvc log -n 20`", "git log -n 20"),
    ("show", "`pvc show` (the latest version)", "git show --stat HEAD"),
    ("show_mid_json", "`pvc show N/2 --json`", "git show --stat HEAD~N/2"),
    ("tags", "`pvc tag --list`", "git tag --list"),
    ("diff_last", "`pvc diff N-1 N --stat`", "git diff --stat HEAD~1 HEAD"),
    ("diff_first_last", "`pvc diff 1 N --stat` (the N-1 edits between)", "git diff --stat (first, last)"),
)]
_HISTORY_TARGETS = ("log", "show", "tags", "diff_last")  # item 8 names log, show, the tag listing, diff --stat of two


def _remote_rows(s: str) -> list:
    """The remote rows of scenario `s` (remote: the pvc.sample profile; remote_jpeg: the JPEG-only one)."""
    return [
        (s, "push_v1", "push v1 to an empty remote", [
            (s, "push_v1", "upload floor", "PUT of v1's packs as they are (floor: the server's time)"),
            (s, "push_v1", "restic", "restic backup to s3:"), (s, "push_v1", "dvc", "dvc push")]),
        (s, "push_nothing", "push again (nothing new)", []),
        (s, "push_change", "push after the 1% change", [
            (s, "push_change", "restic", "restic backup after the change (parent snapshot)")]),
        (s, "clone_restore", "clone + check out v1 into an empty dir", [
            (s, "clone_restore", "restic", "restic restore from s3:"),
            (s, "clone_restore", "restic + sync", "restic restore from s3: + sync (its files on disk; pvc's clone syncs its store, not its checkout)"),
            (s, "clone_restore", "dvc", "dvc pull (empty workspace and cache)")]),
        (s, "restore_remote", "restore v1 --remote URL (no project)", [
            (s, "clone_restore", "restic", "restic restore from s3:")]),
        (s, "clone_one_dataset", "clone one dataset of the version", [
            (s, "clone_restore", "pvc", "pvc clone of the whole version")]),
    ]


def _remote_facts(b: Bench, s: str) -> list[str]:
    f = b.facts.get(s, {})
    if not f:
        return []
    mb = lambda v: f"{v / 1e6:.1f} MB" if isinstance(v, (int, float)) else "-"
    lines = [f"Remote: moto's S3 server on {f.get('endpoint')} (in the harness process), {f.get('items')} items, "
             f"{f.get('files_v1')} files, {mb(f.get('bytes_v1'))}.", "",
             "| what | bytes | requests |", "|---|---|---|",
             f"| pvc push v1: sent | {mb(f.get('push_v1_bytes_sent'))} | {f.get('push_v1_requests', '-')} |",
             f"| pvc push again: sent | {f.get('second_push_bytes_sent', '-')} B | {f.get('second_push_requests', '-')} |",
             f"| the 1% change: bytes of the changed and added files | {mb(f.get('changed_bytes'))} | |",
             f"| pvc push after the change: sent | {mb(f.get('push_change_bytes_sent'))} | {f.get('push_change_requests', '-')} |",
             f"| pvc clone + check out v1: received | {mb(f.get('clone_bytes_received'))} | {f.get('clone_requests', '-')} |",
             f"| pvc clone of dataset {f.get('dataset_cloned')!r} only: received | {mb(f.get('clone_dataset_bytes_received'))} | "
             f"{f.get('clone_dataset_requests', '-')} |"]
    for key, what in (("restic_v1_data_added", "restic backup v1: data added"),
                      ("restic_v2_data_added", "restic backup after the change: data added")):
        if key in f:
            lines.append(f"| {what} | {mb(f[key])} | |")
    return lines


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "-"


def _mount_of(path: Path) -> tuple[str, str]:
    best = ("?", "?", "")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if str(path).startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best[2]):
                best = (dev, fstype, mnt)
    return best[0], best[1]


def machine_facts(b: Bench) -> dict[str, Any]:
    mem = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            mem[key] = int(value.split()[0]) * 1024
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    b.cfg.work.mkdir(parents=True, exist_ok=True)
    dev, fstype = _mount_of(b.cfg.work)
    disk = shutil.disk_usage(b.cfg.work)
    rotational = "?"
    flag = Path(f"/sys/block/{Path(dev).name.rstrip('0123456789')}/queue/rotational")
    if flag.exists():
        rotational = f"rotational={flag.read_text().strip()}"
    pvc_rev = _version(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem.get("MemTotal", 0) / 2**30, 1),
        "disk": f"{dev} ({fstype}, {rotational}), {disk.total / 2**30:.0f} GiB, {disk.free / 2**30:.0f} GiB free",
        "python": platform.python_version(), "kernel": platform.release(),
        "pvc": f"{pvc_rev} (plus uncommitted changes, if any)",
        "git": _version(["git", "--version"]),
        "restic": _version([b.restic, "version"]) if b.restic else "not installed",
        "dvc": _version([b.dvc, "--version"]) if b.dvc else "not installed",
        "cache": "warm page cache (no cache drop without root care); every tool reads data it or cp just wrote",
        "targets": ("restore and clone targets of pvc, git, restic and cp: a new ext4 file system (loop device over a "
                    "sparse image, journal on) made before each run; DVC's checkout and pull write its workspace in the "
                    "work dir, whose previous tree is deleted before each run" if b.fresh is not None else
                    "restore and clone targets: the previous run's tree deleted before each run, in the work dir"),
    }


def to_json(b: Bench, machine: dict[str, Any], runtime_s: float) -> dict[str, Any]:
    cfg = b.cfg
    return {
        "date": _date(), "runtime_s": round(runtime_s, 1), "machine": machine,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()},
        "pvc_commands": sorted(b.pvc_commands), "skipped": b.skipped, "facts": b.facts, "sizes": b.sizes,
        "measurements": [m.to_json() for m in b.runner.measurements],
    }


def _date() -> str:
    import time
    return time.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- Markdown


def _t(m: Measurement) -> str:
    if m.median < 0.1:
        return f"{m.median * 1000:.0f} ms ({m.low * 1000:.0f}–{m.high * 1000:.0f})"
    return f"{m.median:.2f} s ({m.low:.2f}–{m.high:.2f})"


def _ratio(a: float, c: float) -> str:
    if c <= 0:
        return "-"
    r = a / c
    return f"**{r:.2f}×**" if r > 1 else f"{r:.2f}×"


def _rows(b: Bench, spec: list, fmt: dict[str, Any]) -> list[str]:
    lines = ["| operation | pvc median (min–max) | pvc CPU | pvc peak RSS | baseline | baseline median (min–max) | pvc / baseline |",
             "|---|---|---|---|---|---|---|"]
    for scenario, op, label, baselines in spec:
        m = b.find(scenario, op, "pvc")
        if m is None:
            continue
        first = True
        found = [(b.find(bs, bop, tool), blabel) for bs, bop, tool, blabel in baselines]
        found = [(bm, bl) for bm, bl in found if bm is not None] or [(None, "")]
        for bm, blabel in found:
            head = (f"| {label.format(**fmt)} | {_t(m)} | {m.cpu:.2f} s | {m.rss_mb:.0f} MiB" if first else "| | | |")
            if bm is None:
                lines.append(f"{head} | – | – | – |")
            else:
                lines.append(f"{head} | {blabel} | {_t(bm)} | {_ratio(m.median, bm.median)} |")
            first = False
    return lines


def _profile_rows(scenario: str) -> list:
    """The image-project rows for another profile's scenario (the CLI start row stays with the first)."""
    return [(scenario if s == "images" else s, op, label, [(scenario if bs == "images" else bs, bop, tool, bl)
                                                          for bs, bop, tool, bl in baselines])
            for s, op, label, baselines in _IMAGE_ROWS if s == "images"]


def _sizes(b: Bench) -> list[str]:
    lines = ["| project | tool | store after v1 | / project bytes v1 | store after v2 | / project bytes v2 |",
             "|---|---|---|---|---|---|"]
    for scenario in ("images", "jpeg", "bigfile", "video", "volume"):
        facts = b.facts.get(scenario, {})
        v1 = facts.get("bytes_v1") or (facts.get("file_mb", 0) << 20)
        v2 = facts.get("bytes_v2") or v1
        for tool in ("pvc", "git", "restic", "dvc"):
            s1 = b.find_size(scenario, "store_v1", tool)
            if s1 is None:
                continue
            s2 = b.find_size(scenario, "store_v2", tool)
            lines.append(f"| {scenario} ({v1 / 1e6:.1f} MB) | {tool} | {s1 / 1e6:.1f} MB | {s1 / v1:.3f} | "
                         + (f"{s2 / 1e6:.1f} MB | {s2 / v2:.3f} |" if s2 else "– | – |"))
    return lines


def _targets(b: Bench, profile: str = "images") -> list[str]:
    """The issue's targets (stated for 20k items), checked against this run."""
    rows: list[tuple[str, str, float | None, float | None]] = []  # (a target None: shown, not a goal)

    def ratio(op: str, tool: str, bop: str, target: float, what: str, scenario: str = profile) -> None:
        m, bm = b.find(scenario, op, "pvc"), b.find(scenario, bop, tool)
        rows.append((what, f"≤ {target}×", m.median / bm.median if m and bm else None, target))

    def absolute(value: float | None, target: float, what: str, unit: str) -> None:
        rows.append((what, f"≤ {target} {unit}", value, target))

    ratio("first_commit", "restic", "first_commit", 1.0, "first commit / restic backup")
    ratio("first_commit", "git", "first_commit", 0.4, "first commit / git add+commit")
    ratio("nochange_commit", "git", "status_clean", 2.0, "no-change commit / git status")
    if b.has("status"):
        ratio("status_clean", "git", "status_clean", 2.0, "clean status / git status")
    ratio("change_commit", "git", "change_commit", 1.0, "1% change commit / git add+commit")
    ratio("restore", "restic", "restore", 1.0, "restore v1 / restic restore")
    ratio("restore", "git", "restore", 0.7, "restore v1 / git worktree add")
    s1, v1 = b.find_size(profile, "store_v1", "pvc"), b.facts.get(profile, {}).get("bytes_v1")
    rows.append(("store after v1 / project bytes", "≤ 0.96×", s1 / v1 if s1 and v1 else None, 0.96))
    smallest = min((x for x in (b.find_size(profile, "store_v1", "git"), b.find_size(profile, "store_v1", "restic")) if x),
                   default=None)
    rows.append(("store after v1 / the smaller of .git and the restic repo", "≤ 0.99×",
                 s1 / smallest if s1 and smallest else None, 0.99))
    if b.find(profile, "status_dirty", "pvc") and b.find(profile, "status_dirty", "git"):
        ratio("status_dirty", "git", "status_dirty", 3.0, "status after the 1% change / git status")
        m, bm = b.find(profile, "status_dirty", "pvc"), b.find(profile, "status_dirty", "git")
        rows.append(("the first of those statuses (the one that hashes the change) / git's first", "(shown)",
                     m.runs[0].wall / bm.runs[0].wall if m.runs and bm.runs else None, None))
    m = b.find(profile, "first_commit", "pvc")
    absolute(m.rss_mb * 2**20 / 1e6 if m else None, 150, "peak RSS, first commit", "MB")
    added = b.facts.get("bigfile", {}).get("pvc_new_store_bytes")
    absolute(added / 2**20 if added is not None else None, 3, f"new store data after 1 MiB edit in {b.cfg.bigfile_mb} MiB", "MiB")
    m = b.find("bigfile", "nochange_commit", "pvc")
    absolute(m.median if m else None, 0.1, f"unchanged {b.cfg.bigfile_mb} MiB file commit", "s")
    m = b.find("cli", "start", "pvc")
    absolute(m.median if m else None, 0.25, "`pvc --help`", "s")
    m = b.find("log", "log", "pvc")
    absolute(m.median if m else None, 0.3, f"`pvc log`, {b.cfg.log_versions} versions", "s")
    lines = ["| target | bound | measured | met |", "|---|---|---|---|"]
    for what, bound, value, target in rows:
        if value is None:
            lines.append(f"| {what} | {bound} | not measured | – |")
        else:
            met = "–" if target is None else "yes" if value <= target else "**no**"
            lines.append(f"| {what} | {bound} | {value:.3g} | {met} |")
    return lines


def _history_targets(b: Bench) -> list[str]:
    lines = ["| target | bound | measured | met |", "|---|---|---|---|"]
    labels = {op: label for _, op, label, _ in _HISTORY_ROWS}
    for op in _HISTORY_TARGETS:
        m = b.find("history", op, "pvc")
        if m is None:
            lines.append(f"| {labels[op]} | ≤ 0.1 s | not measured | – |")
        else:
            lines.append(f"| {labels[op]} | ≤ 0.1 s | {m.median:.3f} s | {'yes' if m.median <= 0.1 else '**no**'} |")
    return lines


def _remote_targets(b: Bench, s: str) -> list[str]:
    f = b.facts.get(s, {})
    rows = []

    def ratio(op: str, tool: str, bop: str, bound: float, what: str) -> None:
        m, bm = b.find(s, op, "pvc"), b.find(s, bop, tool)
        rows.append((what, bound, m.median / bm.median if m and bm else None))

    ratio("push_v1", "restic", "push_v1", 0.5, "push v1 / restic backup")
    ratio("push_v1", "dvc", "push_v1", 0.1, "push v1 / dvc push")
    ratio("push_change", "restic", "push_change", 1.0, "push after the 1% change / restic backup")
    ratio("clone_restore", "restic", "clone_restore", 1.0, "clone + restore v1 / restic restore")
    sent, changed = f.get("push_change_bytes_sent"), f.get("changed_bytes")
    rows.append(("bytes sent by the change push / changed bytes", 1.5, sent / changed if sent and changed else None))
    part, whole = f.get("clone_dataset_bytes_received"), f.get("clone_bytes_received")
    rows.append(("bytes of a one-dataset clone / whole clone", 0.3, part / whole if part and whole else None))
    m = b.find(s, "push_v1", "pvc")
    rows.append(("peak RSS of push v1, MB", 150, m.rss_mb * 2**20 / 1e6 if m else None))
    lines = ["| target | bound | measured | met |", "|---|---|---|---|"]
    for what, bound, value in rows:
        lines.append(f"| {what} | ≤ {bound} | not measured | – |" if value is None else
                     f"| {what} | ≤ {bound} | {value:.3g} | {'yes' if value <= bound else '**no**'} |")
    floor, push, restic = (b.find(s, "push_v1", tool) for tool in ("upload floor", "pvc", "restic"))
    if floor and floor.median and push:
        lines += ["", f"The server's floor for push v1 (v1's packs PUT as they are, as many at once as a push): "
                      f"{floor.median:.2f} s; pvc's push v1 is {push.median / floor.median:.2f}× the floor"
                      + (f", and the floor alone is {floor.median / restic.median:.2f}× restic's backup."
                         if restic and restic.median else ".")]
    return lines


def to_markdown(b: Bench, machine: dict[str, Any], runtime_s: float) -> str:
    cfg, img = b.cfg, b.facts.get("images", {})
    fmt = {"bigfile_mb": cfg.bigfile_mb, "log_versions": cfg.log_versions}
    out = [f"# pvc benchmark, {_date()}, {cfg.items} items", ""]
    out += [f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['ram_gib']} GiB RAM, disk {machine['disk']}; "
            f"Python {machine['python']}, Linux {machine['kernel']}",
            f"- tools: pvc {machine['pvc']}; {machine['git']}; restic: {machine['restic']}; DVC: {machine['dvc']}",
            f"- {machine['targets']}",
            f"- {machine['cache']}; times are wall-clock seconds of whole processes, median of {cfg.reps} runs "
            "(min–max); CPU = median user+system seconds; peak RSS of the measured process (`/usr/bin/time -f %M`; an upper bound if absent); harness runtime "
            f"{runtime_s / 60:.1f} min"]
    if img:
        out.append(f"- image project: {img.get('items')} items in {cfg.datasets} datasets + 1 nested, "
                   f"{img.get('files_v1')} files, {img.get('bytes_v1', 0) / 1e6:.1f} MB (noise JPEG/PNG 16–64 KB + "
                   f"annotation JSON); change: {img.get('edited')} annotations edited, {img.get('added_files')} files "
                   f"added, {img.get('deleted_files')} deleted; {img.get('items_lost')} items lost their media "
                   "for the --skip-missing restore")
    loads = sorted(r.load for m in b.runner.measurements for r in m.runs)
    if loads:
        out.append(f"- 1-minute load average before each run: median {loads[len(loads) // 2]:.1f}, max {loads[-1]:.1f} "
                   f"on {machine['nproc']} CPUs (anything above ~1 means other work shared the machine)")
    if b.skipped:
        out.append(f"- not measured: {'; '.join(b.skipped)}")
    out += ["", "## Image project (pvc.sample profile)", "", *_rows(b, _IMAGE_ROWS, fmt)]
    jpeg = b.facts.get("jpeg")
    if jpeg:
        out += ["", f"## Image project (JPEG-only profile: {jpeg.get('items')} items, {jpeg.get('files_v1')} files, "
                f"{jpeg.get('bytes_v1', 0) / 1e6:.1f} MB; change: {jpeg.get('edited')} annotations rewritten, "
                f"{jpeg.get('added_files')} files added, {jpeg.get('deleted_files')} deleted)", "",
                *_rows(b, _profile_rows("jpeg"), fmt)]
    out += ["", "## Store size", "", *_sizes(b)]
    large = _rows(b, _LARGE_ROWS, fmt)
    if len(large) > 2:
        big = b.facts.get("bigfile", {})
        out += ["", "## Large files, video and volume projects, long history", "", *large]
        if "pvc_new_store_bytes" in big:
            restic = big.get("restic_data_added")
            out += ["", f"New store data after a 1 MiB in-place edit of the {cfg.bigfile_mb} MiB file: "
                    f"pvc {big['pvc_new_store_bytes'] / 2**20:.2f} MiB (packs {big['pvc_new_pack_bytes'] / 2**20:.2f} MiB)"
                    + (f", restic {restic / 2**20:.2f} MiB (data added)." if restic is not None else ".")]
        for s in ("video", "volume"):
            f = b.facts.get(s)
            if f:
                out.append(f"{s.capitalize()} project: {f['files']} files, {f['bytes_v1'] / 1e6:.1f} MB.")
    history = b.facts.get("history")
    if history:
        out += ["", f"## Small commands over a long history (JPEG-only profile, {history.get('items')} items, "
                f"N = {history.get('versions')} versions, one annotation edited a version; made in-process in "
                f"{history.get('create_in_process_s')} s, untimed; each pvc command alternated with git's)", "",
                *_rows(b, _HISTORY_ROWS, fmt)]
    for s, profile in (("remote", "pvc.sample profile"), ("remote_jpeg", "JPEG-only profile")):
        remote = _rows(b, _remote_rows(s), fmt)
        if len(remote) > 2:
            out += ["", f"## Remote (S3 protocol, loopback), {profile}", "", *remote, "", *_remote_facts(b, s)]
    out += ["", "## Targets (issues 5 and 13; stated for 20k items), pvc.sample profile", "", *_targets(b), ""]
    if jpeg:
        out += ["## Targets, JPEG-only profile", "", *_targets(b, "jpeg"), ""]
    if history:
        out += [f"## Targets, small commands at {history.get('versions')} versions (issue 13, item 8)", "",
                *_history_targets(b), ""]
    for s, profile in (("remote", "pvc.sample profile"), ("remote_jpeg", "JPEG-only profile")):
        if b.facts.get(s):
            out += [f"## Remote targets (issue 10; stated for 20k items), {profile}", "", *_remote_targets(b, s), ""]
    return "\n".join(out)
