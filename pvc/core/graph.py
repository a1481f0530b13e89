"""graph: the lineage of a project as nodes and edges — its versions, and those of every project linked to it.

Linked means restored from it (its `.pvc/linked/` registrations) or the project it was restored from (its
`.pvc/origin`), followed both ways until no new project turns up, so a chain source -> restored -> restored again
is one picture. Edges: `parent` inside a project (to the nearest version that is not deleted), `origin` from a
version to the first version of the project restored from it. Everything comes from the refs files (the stats
recorded with each version): no object is read. `graphview.py` draws it as Mermaid, DOT or an HTML page.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from pvc.core.lineage import registration_state, source_of
from pvc.core.tag import tags_by_version
from pvc.errors import PvcError
from pvc.record import field, record
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["GraphProject", "GraphNode", "GraphEdge", "Lineage", "lineage"]


@record(frozen=True)
class GraphProject:
    key: str  # the store id (the project path for a store older than store ids)
    name: str  # a short label: the folder name, made unique
    path: str
    current: bool  # the project the graph was asked of

    def to_json(self) -> dict:
        return {"key": self.key, "name": self.name, "path": self.path, "current": self.current}


@record(frozen=True)
class GraphNode:
    id: str  # "<project key>:<version number>", or "<project key>:restored" for a project with no version yet
    project: str  # the project's key
    kind: str  # "version"; "missing" (an origin whose project or version is gone); "pending" (not committed yet)
    number: int | None = None
    tags: list[str] = field(default_factory=list)
    title: str = ""
    created_at: str = ""
    items: int | None = None
    classes: dict[str, int] = field(default_factory=dict)  # objects per class
    app: Any = None  # the description's workflow fields, when it is a JSON object
    params: Any = None

    def to_json(self) -> dict:
        return {"id": self.id, "project": self.project, "kind": self.kind, "number": self.number, "tags": self.tags,
                "title": self.title, "created_at": self.created_at, "items": self.items, "classes": self.classes,
                "app": self.app, "params": self.params}


@record(frozen=True)
class GraphEdge:
    source: str
    target: str
    kind: str  # "parent" or "origin"

    def to_json(self) -> dict:
        return {"from": self.source, "to": self.target, "kind": self.kind}


@record(frozen=True)
class Lineage:
    projects: list[GraphProject]
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    def to_json(self) -> dict:
        return {"projects": [p.to_json() for p in self.projects], "nodes": [n.to_json() for n in self.nodes],
                "edges": [e.to_json() for e in self.edges]}


def lineage(repo: Repository) -> Lineage:
    """The versions of `repo` and of every project linked to it, directly or not."""
    projects: list[GraphProject] = []
    nodes: dict[str, GraphNode] = {}
    edges: list[GraphEdge] = []
    origins: dict[str, dict] = {}  # source node id -> the origin record naming it
    queue, seen = deque([(repo, True)]), set()
    while queue:
        current, is_start = queue.popleft()
        key = current.store_id or str(current.project_root)
        if key in seen:
            continue
        seen.add(key)
        projects.append(GraphProject(key, _unique_name(current.project_root.name, projects), str(current.project_root),
                                     is_start))
        _add_project(current, key, nodes, edges, origins)
        queue.extend((neighbour, False) for neighbour in _neighbours(current))
    _add_missing_origins(nodes, origins, projects)
    ordered = _in_order(nodes, edges, projects)
    first = {}
    for i, node in enumerate(ordered):
        first.setdefault(node.project, i)
    projects.sort(key=lambda p: first.get(p.key, len(ordered)))  # sources before the projects restored from them
    return Lineage(projects, ordered, edges)


def _in_order(nodes: dict[str, GraphNode], edges: list[GraphEdge], projects: list[GraphProject]) -> list[GraphNode]:
    """Every node after the nodes it comes from (parent, origin), else by time: dates have one-second steps,
    and a restore and its first commit often share one with their source."""
    lane = {p.key: i for i, p in enumerate(projects)}
    incoming = {n: 0 for n in nodes}
    after: dict[str, list[str]] = {}
    for e in edges:
        if e.source in nodes and e.target in nodes:
            incoming[e.target] += 1
            after.setdefault(e.source, []).append(e.target)

    def rank(node_id: str) -> tuple:
        n = nodes[node_id]
        return n.created_at, lane.get(n.project, len(lane)), n.number or 0

    ready = sorted((n for n, k in incoming.items() if k == 0), key=rank)
    ordered = []
    while ready:
        current = ready.pop(0)
        ordered.append(nodes[current])
        for target in after.get(current, []):
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
        ready.sort(key=rank)
    return ordered + sorted((nodes[n] for n, k in incoming.items() if k > 0), key=lambda n: rank(n.id))


def _add_project(repo: Repository, key: str, nodes: dict[str, GraphNode], edges: list[GraphEdge],
                 origins: dict[str, dict]) -> None:
    refs = repo.refs.read()
    tags = tags_by_version(refs)
    live = [v for v in refs.versions if not v.deleted]
    for v in live:
        nodes[f"{key}:{v.number}"] = _node(key, v, tags.get(v.number, []))
        parent = _live_ancestor(refs.versions, v.parent)
        if parent is not None:
            edges.append(GraphEdge(f"{key}:{parent}", f"{key}:{v.number}", "parent"))
        _add_origin(v.origin, f"{key}:{v.number}", edges, origins)
    origin = repo.origin.read()
    if not live and origin:  # restored, nothing committed yet
        node = GraphNode(f"{key}:restored", key, "pending", title="restored, not committed yet",
                         created_at=str(origin.get("restored_at", "")))
        nodes[node.id] = node
        _add_origin(origin, node.id, edges, origins)


def _add_origin(origin: Any, target: str, edges: list[GraphEdge], origins: dict[str, dict]) -> None:
    if isinstance(origin, dict) and isinstance(origin.get("store"), str):
        source = f"{origin['store']}:{origin.get('version')}"
        edges.append(GraphEdge(source, target, "origin"))
        origins.setdefault(source, origin)


def _node(key: str, v: VersionRecord, tags: list[str]) -> GraphNode:
    desc = v.description if isinstance(v.description, dict) else {}
    return GraphNode(f"{key}:{v.number}", key, "version", v.number, tags, v.title, v.created_at,
                     v.stats.get("items"), dict(v.stats.get("classes") or {}), desc.get("app"), desc.get("params"))


def _live_ancestor(versions: tuple[VersionRecord, ...], number: int | None) -> int | None:
    """`number`, or if it was deleted its nearest ancestor that was not."""
    while number is not None and 1 <= number <= len(versions):
        record = versions[number - 1]
        if not record.deleted:
            return number
        number = record.parent if record.parent is None or record.parent < number else None
    return None


def _neighbours(repo: Repository) -> list[Repository]:
    """The projects restored from `repo` that exist, and the one it was restored from."""
    found = []
    try:
        source = source_of(repo)
        if source is not None:
            found.append(source)
        for registration in repo.linked.list():
            state = registration_state(registration)
            if state.state == "linked":
                found.append(Repository(Path(state.path)))
    except PvcError:  # a damaged registration or a project that cannot be opened: drawn without it
        pass
    return found


def _add_missing_origins(nodes: dict[str, GraphNode], origins: dict[str, dict], projects: list[GraphProject]) -> None:
    """An origin whose version or project is gone still gets a node (and its project a lane), so the edge says
    where it came from."""
    known = {p.key for p in projects}
    for source, origin in origins.items():
        if source in nodes:
            continue
        key = str(origin["store"])
        if key not in known:
            path = str(origin.get("project", ""))
            projects.append(GraphProject(key, _unique_name(f"{Path(path).name or key[:8]} (not found)", projects),
                                         path, False))
            known.add(key)
        number = origin.get("version")
        nodes[source] = GraphNode(source, key, "missing", number if isinstance(number, int) else None,
                                  title=f"{origin.get('title') or ''} (gone: deleted or moved)".strip(),
                                  created_at=str(origin.get("restored_at", "")))


def _unique_name(name: str, projects: list[GraphProject]) -> str:
    taken = {p.name for p in projects}
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate
