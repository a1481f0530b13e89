"""Imports flow one way: cli -> api -> core -> project / store; the library neither prints nor reads os.environ."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pvc"
# what each layer may import from pvc (besides itself, pvc.errors and pvc.record)
ALLOWED = {
    "store": set(),
    "project": set(),
    "core": {"store", "project"},
    "api": {"core", "store"},
    "sample": set(),
    "render": set(),  # plain-text renderings the CLI and the launcher share
    "output": {"render"},
    "cli": {"api", "output", "commands", "render"},
    "commands": {"api", "output", "render"},  # families of commands pvc/cli.py adds to its app
    # the launcher answers `status` on an untouched project and `log` from core.fastpath before loading the CLI;
    # `diff --stat` on a terminal it prints with the CLI's own rich renderer (output), still without the CLI
    "entry": {"core", "cli", "render", "output"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _pvc_imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pvc."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pvc.")}
    return found


MODULES = [p for p in sorted(PKG.rglob("*.py")) if p.name not in ("__init__.py", "__main__.py") or p.parent != PKG]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_flow_down(path):
    layer = _layer(path)
    if layer in ("errors", "record", "__init__"):
        return
    imported = _pvc_imports(ast.parse(path.read_text())) - {layer, "errors", "record"}
    assert imported <= ALLOWED[layer], f"{path.name} ({layer}) imports {imported - ALLOWED[layer]}"


# credentials come from the environment and the standard AWS files, and only this module reads them
READS_CREDENTIALS = PKG / "store" / "remote" / "credentials.py"


@pytest.mark.parametrize("path", [p for p in MODULES if _layer(p) not in ("cli", "commands", "entry", "output", "render", "sample")],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_library_does_not_print_or_read_the_environment(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{path.name}:{node.lineno} prints"
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and path != READS_CREDENTIALS:
            assert not (isinstance(node.value, ast.Name) and node.value.id == "os"), f"{path.name}:{node.lineno} reads os.{node.attr}"
