"""Code tests of the seam: nothing outside cd4ml/problems/ imports a Favorita module, and what the
server and monitoring ask of a problem is all in its Serving (cd4ml.problems)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cd4ml.problems import get_problem
from cd4ml.problems.houses.serving import SERVING as HOUSES

ROOT = Path(__file__).resolve().parents[2]
FAVORITA = "cd4ml.problems.favorita"


def favorita_imports(path: Path) -> list[str]:
    """The Favorita modules a file imports, anywhere in it (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if node.level == 0 else []
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n == FAVORITA or n.startswith(FAVORITA + ".")]
    return sorted(set(found))


def outside_the_problems() -> list[Path]:
    return sorted(p for folder in ("cd4ml", "benchmarks") for p in (ROOT / folder).rglob("*.py")
                  if "problems" not in p.relative_to(ROOT).parts)


def test_the_import_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from cd4ml.problems.favorita import schema\n    import cd4ml.problems.favorita.readers\n")
    assert favorita_imports(module) == [FAVORITA, f"{FAVORITA}.readers", f"{FAVORITA}.schema"]


def test_nothing_outside_the_problems_imports_a_favorita_module():
    found = {str(p.relative_to(ROOT)): favorita_imports(p) for p in outside_the_problems()}
    assert {path: names for path, names in found.items() if names} == {}


@pytest.mark.parametrize("serving", [get_problem("favorita").serving, HOUSES], ids=lambda s: s.problem)
def test_a_problems_serving_names_its_event_fields_with_their_types(serving):
    assert set(serving.event_types) == set(serving.event_fields)
    assert set(serving.event_types.values()) <= {"keyword", "number", "boolean", "date"}
    assert set(serving.join_key) <= set(serving.event_fields)
    assert not {"problem", "prediction", "model_version", "run_id", "latency_ms"} & set(serving.event_fields)
