"""The event modules of cd4ml/monitoring/ point one way: window <- events_source <- the readers and
the writer; none imports the `monitor` wiring (run.py), the server or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cd4ml.monitoring

PACKAGE = Path(cd4ml.monitoring.__file__).parent

# module -> the cd4ml modules it may import
ALLOWED = {
    "window": {"cd4ml.errors"},
    "events_source": {"cd4ml.events", "cd4ml.monitoring.window"},
    "jsonl_events": {"cd4ml.errors", "cd4ml.monitoring.events_source", "cd4ml.monitoring.window"},
    "elasticsearch_client": {"cd4ml.errors"},
    "elasticsearch_events": {"cd4ml.monitoring.elasticsearch_client", "cd4ml.monitoring.events_source",
                             "cd4ml.monitoring.window"},
    "elasticsearch_index": {"cd4ml.errors", "cd4ml.monitoring.elasticsearch_client"},
}


def cd4ml_imports(path: Path) -> set[str]:
    """The cd4ml modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "cd4ml":  # from cd4ml import registry
            names = [f"cd4ml.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] == "cd4ml"}
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_an_event_module_imports_only_what_lies_below_it(module):
    assert cd4ml_imports(PACKAGE / f"{module}.py") <= ALLOWED[module]


def test_no_monitoring_module_imports_the_server_or_the_cli():
    found = {path.stem: sorted(name for name in cd4ml_imports(path) if name.startswith(("cd4ml.serving", "cd4ml.cli")))
             for path in PACKAGE.glob("*.py")}
    assert {name: bad for name, bad in found.items() if bad} == {}
