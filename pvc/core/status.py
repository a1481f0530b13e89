"""status: the working project compared with the latest version, through the same diff as two versions."""

from __future__ import annotations

from pvc.core.capture import Capture, capture
from pvc.core.diff import diff_snapshots, empty_manifest
from pvc.core.snapshot import Snapshot
from pvc.core.fastpath import PriorWalk, capture_settings
from pvc.errors import Locked
from pvc.store.overlay import OverlayStore
from pvc.store.repository import Repository
from pvc.store.statusrecord import read_report, record_key, write_report

__all__ = ["status", "working_snapshot", "version_snapshot"]


def working_snapshot(repo: Repository, expect: str | None = None, *, from_change: bool = False,
                     walk: PriorWalk | None = None, remember: bool = True) -> tuple[Snapshot, Capture]:
    """The working tree as a snapshot whose new objects live in memory; the store is not written.
    `expect`: the manifest of the version it is compared with; a tree nobody touched since is known to be
    that manifest without reading a file. A file a commit would refuse does not stop it: it is captured as
    `--allow-invalid` would store it and listed in `Capture.invalid`, to be reported with the rest. `from_change`
    (status, diff, the preview of discard): built from the paths changed since the version, where it is the stat
    cache's base and the change alone can tell the manifest (capture/delta.py). `walk`: a walk of the project already
    taken (pvc/core/fastpath.py), used instead of walking again. `remember`: save the stat cache now (else the
    caller does, `_remember`)."""
    overlay = OverlayStore(repo.store)
    cap = capture(repo, overlay, report_invalid=True, expect=bytes.fromhex(expect) if expect else None,
                  from_change=from_change, walk=walk)
    if remember:
        _remember(repo, cap)
    return Snapshot(overlay, cap.manifest_id), cap


def version_snapshot(repo: Repository, manifest: str | None, overlay_for_empty: Snapshot) -> Snapshot:
    """A version's snapshot, or the empty project when there is no version yet."""
    if manifest is None:
        return Snapshot(overlay_for_empty.store, empty_manifest(overlay_for_empty.store))
    return Snapshot(repo.store, bytes.fromhex(manifest))


def _remember(repo: Repository, cap: Capture, report: tuple[bytes, dict] | None = None) -> None:
    """Save the stat cache, and `report` (its key and itself) as the status record, if no writer holds the lock, so
    the next status is stat-only (as git does); a store that cannot be written (read-only, full disk) is simply not
    told."""
    try:
        with repo.lock(timeout=0):
            cap.save_cache()
            if report is not None:
                write_report(repo.dir / "status", *report)
    except (Locked, OSError):
        pass


def status(repo: Repository, *, walk: PriorWalk | None = None) -> dict:
    """What `pvc commit` would record now, relative to the latest version (`walk`: as `working_snapshot` takes it).
    A walk of the project already taken whose stat records are those of the last status's settled walk, with the
    same latest version and settings, is answered with that status's report (pvc/store/statusrecord.py)."""
    latest = repo.latest()
    asked = None  # the record's key for `walk`, looked up before the capture
    if latest is not None and walk is not None and walk.digest is not None and walk.root == str(repo.project_root):
        asked = _key(repo, walk.digest, latest)
        report = read_report(repo.dir / "status", asked) if asked is not None else None
        if report is not None:
            return report
    working, cap = working_snapshot(repo, latest.manifest if latest else None, from_change=True, walk=walk,
                                    remember=False)
    try:
        base = version_snapshot(repo, latest.manifest if latest else None, working)
        known = cap.changes if latest and cap.partial and cap.expect == bytes.fromhex(latest.manifest) else None
        report = diff_snapshots(base, working, source=latest.number if latest else None, target="working",
                                invalid=cap.invalid, known=known)
    except BaseException:
        _remember(repo, cap)  # what was hashed is kept, whatever stopped the comparison
        raise
    walked = cap.walked
    settled = latest is not None and walked is not None and walked.settled and not cap.unchanged
    key = None
    if settled:  # (the capture took `walk` over: its key is the one asked for, made once)
        key = asked if asked is not None and cap.scan_digest() == walk.digest else _key(repo, cap.scan_digest(), latest)
    _remember(repo, cap, (key, report) if key is not None else None)
    return report


def _key(repo: Repository, tree: bytes, latest) -> bytes | None:
    """The status record's key for a walk with stat records' digest `tree` against the version `latest`."""
    return record_key(tree, latest.number, latest.manifest, capture_settings(repo, False))
