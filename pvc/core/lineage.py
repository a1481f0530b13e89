"""Lineage: a project restored from another one remembers where it came from and shares its objects.

`restore` makes the new project's `.pvc/` (same settings as the source, so the same files give the same
manifest; `alternates` naming the source's packs, and its alternates'; `origin` saying where from) and registers
it in the source's `.pvc/linked/` — and in every store the source itself reads from — before it writes a file.
A registration is one new file written atomically, so restore stays a reader: it takes no lock (but once, to give
a store made before stores had ids its id). From then on:

- the restored project's commits store only what its sources lack (found through the alternates), and its first
  version carries `origin`. Its commits and discards hold its sources' locks too (`lock_with_sources`);
- gc in a source holds its own lock, so no commit of a linked project runs meanwhile, and walks every registered
  project that still exists: what their versions and saved states reach is kept. A restore that registers during
  that gc has no version yet, and needs nothing until its first commit, which waits for the gc to end. A
  registration is live while the restore's staging folder exists or the project folder holds the very store that
  registered (same store id); otherwise the project is gone: gc drops the registration and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pvc.core.reach import Walker, extra_roots, version_roots
from pvc.core.selection import Selection
from pvc.errors import CorruptObject, NotAProject, ObjectMissing, UsageError
from pvc.record import record
from pvc.store.links import LinkedProjects, Registration
from pvc.store.location import STORE_DIR
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["LinkedState", "link_new_project", "unlink_new_project", "registration_state", "walk_linked", "source_of"]


@record(frozen=True)
class LinkedState:
    """A registered project as gc or graph finds it: `linked` (its folder holds its store), `restoring` (the
    restore is still writing it, or was killed), `gone` (dropped by gc without --dry-run)."""

    registration: Registration
    state: str
    path: str | None  # where its store is now (the project, or the staging folder); None when gone
    reason: str = ""

    def to_json(self) -> dict:
        return {"project": self.registration.project, "store": self.registration.store, "state": self.state,
                "reason": self.reason}


def link_new_project(source: Repository, record: VersionRecord, staging: Path, dest: Path, selection: Selection,
                     *, lock_timeout: float = 60.0) -> Repository:
    """Create the restored project's store in `staging` (to become `dest`) and register it with every store it
    will read from."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    alternates = [source.dir / "packs", *source.alternates.read()]
    try:
        if source.store_id is None:
            with source.lock(lock_timeout):
                source.ensure_store_id()
        origin = {"project": str(source.project_root), "store": source.store_id, "version": record.number,
                  "version_id": record.id, "manifest": record.manifest, "title": record.title, "restored_at": now}
        if not selection.whole:
            origin["selection"] = selection.to_json()
        linked = Repository.init(staging, settings=source.settings(), alternates=alternates, origin=origin)
        registration = Registration(linked.store_id, str(dest), str(staging), record.number, now)
        for packs in alternates:
            if packs.is_dir():  # a source's own source that is gone took its objects with it
                LinkedProjects(packs.parent).add(registration)
    except OSError as exc:
        raise UsageError(f"cannot link the restored project to {source.project_root} ({exc.strerror or exc}); "
                         "restore with --no-link for a copy with no store") from None
    return linked


def unlink_new_project(source: Repository, linked: Repository) -> None:
    """Take back the registrations of a restore that failed (its staging folder is gone, so gc would drop them
    anyway: this only spares the message)."""
    store = linked.store_id
    for store_dir in (source.dir, *(packs.parent for packs in source.alternates.read())):
        try:
            LinkedProjects(store_dir).drop(store)
        except OSError:
            continue


def registration_state(registration: Registration) -> LinkedState:
    """Where a registered project is, if anywhere. The staging folder is looked at first: a restore renames it
    to the project folder, so one of the two holds the store at every instant."""
    for path, state in ((registration.staging, "restoring"), (registration.project, "linked")):
        if not (Path(path) / STORE_DIR / "config").is_file():
            continue
        try:
            found = _store_id(Path(path))
        except NotAProject:  # renamed away since the look (a restore finishing): the next place holds it
            continue
        if found == registration.store:
            return LinkedState(registration, state, path)
        if state == "linked":
            return LinkedState(registration, "gone", None, f"{path} now holds another store")
    return LinkedState(registration, "gone", None, f"{registration.project} has no pvc store any more")


def _store_id(project: Path) -> str | None:
    repo = Repository(project)
    try:
        return repo.store_id
    finally:
        repo.close()


def walk_linked(repo: Repository, *, drop: bool) -> tuple[set[bytes], list[LinkedState]]:
    """What every live project registered in `repo` reaches (through its own store, which reads `repo`'s packs);
    registrations of gone projects are dropped when `drop`. Call with `repo`'s lock held."""
    reached: set[bytes] = set()
    states = []
    for registration in repo.linked.list():
        for attempt in range(_LOOKS):
            state = registration_state(registration)
            if state.path is None:
                break
            try:
                reached |= _reach_at(Path(state.path))
                break
            except (NotAProject, ObjectMissing):
                # a project still restoring was renamed into place while it was read, or a project was deleted
                # while it was read: look again, where it is now (gone: it needs nothing any more)
                if attempt == _LOOKS - 1:
                    raise
        states.append(state)
        if state.path is None and drop:
            repo.linked.drop(registration.store)
    return reached, states


_LOOKS = 3  # a restoring project moves once (staging folder -> its place); a third look is for a slow reader


def _reach_at(path: Path) -> set[bytes]:
    linked = Repository(path)
    try:
        return _reach(linked)
    finally:
        linked.close()


def _reach(linked: Repository) -> set[bytes]:
    walker = Walker(linked.reopen_store(), check_blobs=False)
    for root in version_roots(linked) + extra_roots(linked):
        damage = walker.walk(root)
        if damage:
            d = damage[0]
            raise CorruptObject(f"gc refuses to run: {d.root} of the linked project {linked.project_root} cannot be "
                                f"walked ({d.kind} {d.oid.hex()}: {d.what}); nothing was deleted (run `pvc verify` there)")
    return walker.reached


def source_of(repo: Repository) -> Repository | None:
    """The project `repo` was restored from, if its folder still holds that store; None otherwise."""
    origin = repo.origin.read()
    if not origin or not isinstance(origin.get("project"), str):
        return None
    path = Path(origin["project"])
    if not (path / STORE_DIR / "config").is_file():
        return None
    source = Repository(path)
    if source.store_id != origin.get("store"):
        source.close()
        return None
    return source
