"""Benchmarks live outside the product: cd4ml/ imports them only lazily (the benchmark command), the
model-server image leaves them out, and their process helpers stand on their own (tests share them)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_benchmark_module_is_left_in_the_product_package():
    assert [p.relative_to(ROOT) for p in (ROOT / "cd4ml").rglob("*benchmark*")] == []


def test_the_product_imports_benchmarks_only_inside_the_benchmark_command():
    for path in (ROOT / "cd4ml").rglob("*.py"):
        at_import = {m for m in imported_modules(path, top_level_only=True) if m.split(".")[0] == "benchmarks"}
        assert at_import == set(), f"{path.relative_to(ROOT)} imports {at_import} when it is imported"
        if path.name != "cli.py":
            anywhere = {m for m in imported_modules(path, top_level_only=False) if m.split(".")[0] == "benchmarks"}
            assert anywhere == set(), f"{path.relative_to(ROOT)} imports {anywhere}"


def test_the_process_helpers_need_nothing_of_ours():
    imported = imported_modules(ROOT / "benchmarks" / "processes.py", top_level_only=False)
    assert {m for m in imported if m.split(".")[0] in ("cd4ml", "tests")} == set()


def test_the_model_server_image_copies_the_product_not_the_benchmarks():
    copies = [line.split()[1:-1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    assert copies and not any("benchmarks" in source for sources in copies for source in sources)
    assert "benchmarks" in (ROOT / ".dockerignore").read_text().split()


def test_the_wrk_scripts_are_lua_files_the_benchmarks_fill_in():
    from benchmarks.workshop import LUA

    assert {p.name for p in LUA.glob("*.lua")} >= {"random.lua", "load.lua", "fault_done.lua"}
    for path in LUA.glob("*.lua"):
        assert '"""' not in path.read_text(), path
