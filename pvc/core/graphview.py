"""The lineage graph (pvc/core/graph.py) as text: Mermaid, Graphviz DOT, or one self-contained HTML page.

The HTML page fetches nothing: the graph is a JSON document inside it, and its own script draws it as inline SVG
(a column per project, versions top to bottom in time order, parent edges solid, origin edges dashed) with the
details of a version shown when it is clicked.
"""

from __future__ import annotations

import html
import json

from pvc.core.graph import GraphNode, Lineage

__all__ = ["FORMATS", "render", "node_lines"]

FORMATS = ("mermaid", "dot", "html")
_MAX_TEXT = 60
_MAX_CLASSES = 4


def render(graph: Lineage, fmt: str, *, title: str = "pvc lineage") -> str:
    """The graph in `fmt` (one of FORMATS)."""
    if fmt == "mermaid":
        return mermaid(graph)
    if fmt == "dot":
        return dot(graph)
    return page(graph, title)


def node_lines(node: GraphNode) -> list[str]:
    """What a node says, one short line each: number and tags, title, date and items, classes, workflow."""
    head = f"v{node.number}" if node.number is not None else "(no version)"
    lines = [head + (f" [{', '.join(node.tags)}]" if node.tags else "")]
    if node.title:
        lines.append(_short(node.title))
    when = node.created_at.replace("T", " ")[:16]
    lines.append(" · ".join(p for p in (when, f"{node.items} items" if node.items is not None else "") if p))
    if node.classes:
        top = sorted(node.classes.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{name} {n}" for name, n in top[:_MAX_CLASSES])
        lines.append(shown + (f", +{len(top) - _MAX_CLASSES} more" if len(top) > _MAX_CLASSES else ""))
    if node.app is not None:
        lines.append(_short(f"app: {_compact(node.app)}"))
    if node.params is not None:
        lines.append(_short(f"params: {_compact(node.params)}"))
    return [line for line in lines if line]


def _compact(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _ids(graph: Lineage) -> dict[str, str]:
    return {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}


# -- Mermaid ---------------------------------------------------------------------------------------------

def _mermaid_text(text: str) -> str:
    return (text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
            .replace("[", "#91;").replace("]", "#93;"))


def mermaid(graph: Lineage) -> str:
    ids = _ids(graph)
    out = ["flowchart TB"]
    for i, project in enumerate(graph.projects):
        out.append(f'  subgraph p{i}["{_mermaid_text(project.name)}"]')
        for node in (n for n in graph.nodes if n.project == project.key):
            label = "<br/>".join(_mermaid_text(line) for line in node_lines(node))
            out.append(f'    {ids[node.id]}["{label}"]')
        out.append("  end")
    for edge in graph.edges:
        if edge.source in ids and edge.target in ids:
            arrow = " -.->|restored| " if edge.kind == "origin" else " --> "
            out.append(f"  {ids[edge.source]}{arrow}{ids[edge.target]}")
    for node in graph.nodes:
        if node.kind != "version":
            out.append(f"  style {ids[node.id]} stroke-dasharray: 4 4")
    return "\n".join(out) + "\n"


# -- DOT -------------------------------------------------------------------------------------------------

def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(graph: Lineage) -> str:
    ids = _ids(graph)
    out = ["digraph lineage {", "  rankdir=TB;", '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];']
    for i, project in enumerate(graph.projects):
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f'    label="{_dot_text(project.name)}";')
        for node in (n for n in graph.nodes if n.project == project.key):
            label = "\\n".join(_dot_text(line) for line in node_lines(node))
            style = ", style=\"rounded,dashed\"" if node.kind != "version" else ""
            out.append(f'    {ids[node.id]} [label="{label}"{style}];')
        out.append("  }")
    for edge in graph.edges:
        if edge.source in ids and edge.target in ids:
            attrs = ' [style=dashed, label="restored"]' if edge.kind == "origin" else ""
            out.append(f"  {ids[edge.source]} -> {ids[edge.target]}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"


# -- HTML ------------------------------------------------------------------------------------------------

def page(graph: Lineage, title: str) -> str:
    """A standalone page: the graph as JSON and the script that draws it; nothing is fetched."""
    doc = graph.to_json()
    for node, entry in zip(graph.nodes, doc["nodes"]):
        entry["lines"] = node_lines(node)
    data = json.dumps(doc, ensure_ascii=False).replace("</", "<\\/")
    return _PAGE.replace("{{title}}", html.escape(title)).replace("{{data}}", data)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>{{title}}</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #1d2330; background: #fafbfc; }
  h1 { font-size: 16px; margin: 0 0 4px; }
  #legend { color: #5b6475; margin-bottom: 12px; }
  #graph { display: flex; gap: 16px; align-items: flex-start; }
  svg text { font: 11px system-ui, sans-serif; fill: #1d2330; }
  svg .lane-title { font-weight: 600; font-size: 12px; }
  svg .node rect { fill: #fff; stroke: #4a6fa5; stroke-width: 1.2; rx: 6; }
  svg .node.current rect { stroke: #1f7a4d; }
  svg .node.missing rect, svg .node.pending rect { stroke-dasharray: 4 3; fill: #f3f4f6; }
  svg .node.selected rect { stroke-width: 2.5; }
  svg .node { cursor: pointer; }
  svg .edge { fill: none; stroke: #7a869a; stroke-width: 1.3; }
  svg .edge.origin { stroke: #c2410c; stroke-dasharray: 6 4; }
  #details { min-width: 260px; max-width: 420px; background: #fff; border: 1px solid #d6dbe3; border-radius: 6px;
             padding: 10px; white-space: pre-wrap; font: 12px ui-monospace, monospace; }
</style>
</head>
<body>
<h1>{{title}}</h1>
<div id="legend">solid arrow: next version (parent) &middot; dashed arrow: restored as a new project (origin)
&middot; click a version for its details</div>
<div id="graph"><div id="canvas"></div><div id="details">click a version</div></div>
<script type="application/json" id="pvc-graph">{{data}}</script>
<script>
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var graph = JSON.parse(document.getElementById("pvc-graph").textContent);
  var LINE = 14, PAD = 8, TOP = 34, VGAP = 26, GAP = 40, CHAR = 6.4;
  var longest = 20;
  graph.nodes.forEach(function (n) { n.lines.forEach(function (l) { longest = Math.max(longest, l.length); }); });
  var W = Math.round(longest * CHAR + 2 * PAD);  // boxes as wide as the longest line (lines are kept short)
  var lane = {}, heights = {}, pos = {};
  graph.projects.forEach(function (p, i) { lane[p.key] = i; });
  graph.nodes.forEach(function (n) {
    if (!(n.project in lane)) { lane[n.project] = Object.keys(lane).length; }
    heights[n.id] = n.lines.length * LINE + 2 * PAD;
  });
  var y = TOP;
  graph.nodes.forEach(function (n) {  // time order, top to bottom; each project a column
    pos[n.id] = {x: 10 + lane[n.project] * (W + GAP), y: y, h: heights[n.id]};
    y += heights[n.id] + VGAP;
  });
  var lanes = Object.keys(lane).length;
  var svg = el("svg", {width: 20 + lanes * (W + GAP), height: y + 10, role: "img", id: "lineage"});
  var defs = el("defs", {});
  ["parent", "origin"].forEach(function (kind) {
    var m = el("marker", {id: "arrow-" + kind, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                          markerHeight: 7, orient: "auto-start-reverse"});
    m.appendChild(el("path", {d: "M0,0 L10,5 L0,10 z", fill: kind === "origin" ? "#c2410c" : "#7a869a"}));
    defs.appendChild(m);
  });
  svg.appendChild(defs);
  graph.projects.forEach(function (p) {
    var t = el("text", {x: 10 + lane[p.key] * (W + GAP), y: 18, "class": "lane-title"});
    t.textContent = p.name + (p.current ? "  (this project)" : "");
    svg.appendChild(t);
  });
  graph.edges.forEach(function (e) {
    var a = pos[e.from], b = pos[e.to];
    if (!a || !b) { return; }
    var x1 = a.x + W / 2, y1 = a.y + a.h, x2 = b.x + W / 2, y2 = b.y, mid = (y1 + y2) / 2;
    svg.appendChild(el("path", {"class": "edge " + e.kind, "data-kind": e.kind,
      d: "M" + x1 + "," + y1 + " C" + x1 + "," + mid + " " + x2 + "," + mid + " " + x2 + "," + (y2 - 2),
      "marker-end": "url(#arrow-" + e.kind + ")"}));
  });
  var current = {};
  graph.projects.forEach(function (p) { if (p.current) { current[p.key] = true; } });
  graph.nodes.forEach(function (n) {
    var p = pos[n.id];
    var g = el("g", {"class": "node " + n.kind + (current[n.project] ? " current" : ""), "data-id": n.id,
                     "data-version": n.number === null ? "" : n.number, transform: "translate(" + p.x + "," + p.y + ")"});
    var tip = el("title", {});
    tip.textContent = n.lines.join("\\n");
    g.appendChild(tip);
    g.appendChild(el("rect", {width: W, height: p.h}));
    n.lines.forEach(function (line, i) {
      var t = el("text", {x: PAD, y: PAD + 11 + i * LINE, "font-weight": i === 0 ? "600" : "400"});
      t.textContent = line;
      g.appendChild(t);
    });
    g.addEventListener("click", function () { show(n, g); });
    svg.appendChild(g);
  });
  document.getElementById("canvas").appendChild(svg);

  function show(n, g) {
    Array.prototype.forEach.call(document.querySelectorAll(".node.selected"), function (s) {
      s.classList.remove("selected");
    });
    g.classList.add("selected");
    var shown = {project: projectName(n.project), version: n.number, tags: n.tags, title: n.title,
                 created_at: n.created_at, items: n.items, classes: n.classes, app: n.app, params: n.params};
    document.getElementById("details").textContent = JSON.stringify(shown, null, 2);
  }
  function projectName(key) {
    var p = graph.projects.filter(function (q) { return q.key === key; })[0];
    return p ? p.name + " (" + p.path + ")" : key;
  }
  function el(name, attrs) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
})();
</script>
</body>
</html>
"""
