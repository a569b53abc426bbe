"""The tests say what they are: browser tests drive a browser, servers are started through the product's
own entry point (run_python_script.py serve), and no test helper loads pickles the product would refuse."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_browser_tests_use_a_real_browser_not_flasks_test_client():
    for path in (TESTS / "browser").glob("test_*.py"):
        text = path.read_text()
        assert "test_client(" not in text, f"{path.name}: Flask test-client tests belong in tests/unit"
        assert "needs_chromium" in text, path.name


def test_no_second_server_entry_point_serves_the_tests():
    assert not (TESTS / "serving_server.py").exists()
    for path in set(TESTS.rglob("*.py")) - {Path(__file__).resolve()}:
        text = path.read_text()
        assert "gunicorn_app" not in text, f"{path.relative_to(TESTS)} starts gunicorn around the product's back"
        assert "pickle.load" not in text, f"{path.relative_to(TESTS)} loads a pickle"
