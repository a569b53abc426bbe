"""The imports of cd4ml/serving/ form no circle: the blueprints read the shared services from
serving/services.py, not from the app that registers them, and create_app imports them at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import cd4ml.serving

PACKAGE = Path(cd4ml.serving.__file__).parent


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The cd4ml.serving modules a file imports (inside functions too, unless top_level_only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n.removeprefix("cd4ml.serving.") for n in names
                  if n.startswith("cd4ml.serving.") and (PACKAGE / f"{n.removeprefix('cd4ml.serving.')}.py").exists()}
    return found


def graph() -> dict[str, set[str]]:
    return {p.stem: imports(p) for p in PACKAGE.glob("*.py")}


def circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a list of modules, first repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_circle_finder_finds_a_circle():
    assert circle({"app": {"api"}, "api": {"services", "app"}, "services": set()}) == ["api", "app", "api"]
    assert circle({"app": {"api"}, "api": {"services"}, "services": set()}) is None


def test_no_import_circle_in_serving():
    assert circle(graph()) is None


def test_no_blueprint_imports_the_app():
    edges = graph()
    assert {name for name in ("api", "web", "monitoring", "forecast", "services") if "app" in edges[name]} == set()


def test_create_app_imports_its_blueprints_at_the_top():
    assert {"api", "web", "monitoring"} <= imports(PACKAGE / "app.py", top_level_only=True)
