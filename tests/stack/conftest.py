"""Fixtures for the container-stack tests; the files themselves are read by tests/stack/files.py."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.stack.files import load_json, load_yaml, read


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


@pytest.fixture(scope="session")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    """KEY=value lines of .env.example (comments and blank lines skipped)."""
    values = {}
    for line in read(".env.example").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="session")
def index_template() -> dict[str, Any]:
    return load_json("elasticsearch/index-template.json")


@pytest.fixture()
def clean_env(tmp_path) -> dict[str, str]:
    """A minimal environment for subprocesses: no inherited secrets or compose variables."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
