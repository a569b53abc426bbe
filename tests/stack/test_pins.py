"""Every version the repo pins has a row in docs/stack.md saying where upstream it was seen."""

from __future__ import annotations

import pytest

from tests.stack.pins import Pin, docs_path, evidence_rows, repo_pins


@pytest.fixture(scope="module")
def pins() -> list[Pin]:
    return repo_pins()


@pytest.fixture(scope="module")
def rows() -> dict[str, tuple[str, str]]:
    return evidence_rows(docs_path().read_text(encoding="utf-8"))


def test_the_pin_reader_finds_every_kind_of_pin(pins):
    kinds = {pin.kind for pin in pins}
    assert kinds == {"image", "gem", "Jenkins plugin", "action", "wheel"}
    components = {pin.component for pin in pins}
    assert {"image python", "image fluent/fluentd", "gem elasticsearch", "Jenkins plugin configuration-as-code",
            "action actions/checkout", "wheel mlflow", "wheel jupyterlab"} <= components


def test_evidence_rows_reads_a_markdown_table():
    text = "# x\n## Pins and where they were seen\n\n| component | version | evidence |\n| --- | --- | --- |\n" \
           "| gem `a` | `1.2.3` | a/b@v1.2.3:a.gemspec |\n\n## Next\n| gem b | 1 | c |\n"
    assert evidence_rows(text) == {"gem a": ("1.2.3", "a/b@v1.2.3:a.gemspec")}


def test_every_pin_in_the_repo_has_an_evidence_row(pins, rows):
    for pin in pins:
        assert pin.component in rows, f"{pin.where}: {pin.component} {pin.version} has no row in docs/stack.md"
        version, evidence = rows[pin.component]
        assert version == pin.version, f"{pin.where} pins {pin.component} {pin.version}; docs/stack.md says {version}"
        assert "@" in evidence or "pypi.org" in evidence, f"{pin.component}: no upstream evidence: {evidence!r}"


def test_a_component_is_pinned_to_one_version_everywhere(pins):
    versions: dict[str, set[str]] = {}
    for pin in pins:
        versions.setdefault(pin.component, set()).add(pin.version)
    assert {c: v for c, v in versions.items() if len(v) > 1} == {}


def test_the_evidence_table_has_no_row_for_a_pin_that_is_gone(pins, rows):
    assert set(rows) - {pin.component for pin in pins} == set()
