"""Code tests of the package's layering: pure modules point inward, one owner per concern.

They read the source (ast), so they fail when an import or a literal crosses a boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cd4ml"


def imports(module: str) -> set[str]:
    """Every module `module` (a path under cd4ml/) imports, at the top or inside functions."""
    tree = ast.parse((PACKAGE / module).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_metrics_is_a_leaf_module():
    assert {name for name in imports("metrics.py") if name.startswith("cd4ml")} == set()


@pytest.mark.parametrize("module", ["pipeline/run.py", "pipeline/scale.py", "acceptance.py", "monitoring/accuracy.py"])
def test_metrics_are_imported_from_the_leaf_module(module):
    assert "cd4ml.metrics" in imports(module)


def test_process_does_not_import_the_readers():
    """Bad lines come as typed values (a DataError in the row's place), not as in-band dict keys."""
    assert "cd4ml.problems.favorita.readers" not in imports("problems/favorita/process.py")


@pytest.mark.parametrize("name", ["acceptance.verdict", "acceptance.message", "validation/rows.parquet",
                                  "profile/training.json", "monitoring/report.json", "data.sha256",
                                  "validation.first_date", "plots/predicted_vs_actual.png"])
def test_mlflow_names_are_spelled_only_in_tracking(name):
    spelled = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
               if f'"{name}"' in path.read_text() and path.name != "tracking.py"]
    assert spelled == [], f"{name!r} is spelled outside cd4ml/tracking.py: use its constant"


def test_mlflows_global_tracking_uri_is_set_only_by_the_tracking_process_or_for_a_block():
    setting = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                     if "set_tracking_uri(" in path.read_text() or "_use_tracking_uri(" in path.read_text())
    assert setting == ["tracking.py", "tracking_process.py"]  # tracking.global_uri_for restores it


@pytest.mark.parametrize("module", ["problems/fields.py", "problems/houses/process.py", "problems/houses/features.py",
                                    "problems/houses/means.py", "problems/houses/baseline.py", "pipeline/split.py"])
def test_the_stages_of_a_problem_are_pure(module):
    """No tracking, web, events or environment in the stages; the houses process reads no files."""
    outside = {name.split(".")[0] for name in imports(module)} & {"mlflow", "flask", "fluent", "requests", "os", "pathlib"}
    assert outside == set()
    assert not any(name.endswith(".readers") for name in imports(module))
