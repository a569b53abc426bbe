"""The monitoring summary into Elasticsearch, for Kibana to show beside the events."""

from __future__ import annotations

from typing import Any

from cd4ml.errors import ServiceUnreachable
from cd4ml.monitoring.elasticsearch_client import call


def index_documents(client: Any, index: str, documents: list[tuple[str, dict[str, Any]]], url: str = "") -> None:
    """Index (id, document) pairs into `index` with one bulk request, refreshed before it returns
    (Kibana sees them at once); the same id again replaces its document. A document Elasticsearch
    refuses (e.g. a field of the wrong type for the index template) is ServiceUnreachable."""
    operations: list[dict[str, Any]] = []
    for doc_id, document in documents:
        operations += [{"index": {"_index": index, "_id": doc_id}}, document]
    answer = call(client.bulk, url, f"write {index}", operations=operations, refresh="wait_for")
    if answer.get("errors"):
        refused = [item["index"] for item in answer["items"] if item.get("index", {}).get("error")]
        error = refused[0]["error"] if refused else {}
        raise ServiceUnreachable(
            f"Elasticsearch at {url} refused {len(refused)} of {len(documents)} monitoring documents for {index}: "
            f"{error.get('type', 'error')}: {error.get('reason', '')}.",
            "Check that es-setup has put the index template monitoring-reports (elasticsearch/monitoring-template.json).",
        )
