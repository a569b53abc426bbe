"""Prediction events from Elasticsearch: the indices fluentd writes (model-*), behind events_source's interface."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

from cd4ml.monitoring.elasticsearch_client import call
from cd4ml.monitoring.events_source import DEFAULT_SCHEMA, Columns, EventCheck, EventSchema
from cd4ml.monitoring.window import Window


class ElasticsearchEvents:
    """Events from Elasticsearch (the indices fluentd writes, model-*), all of them in the window.

    Pages through every matching document with a point in time and search_after, sorted on
    @timestamp and _shard_doc (the documented way to read more than 10,000 hits), then closes the
    point in time. `client` is an elasticsearch.Elasticsearch; connection errors become
    ServiceUnreachable (exit 3).
    """

    def __init__(self, client: Any, index: str, page_size: int = 5000, keep_alive: str = "2m", url: str = "",
                 problem: str | None = None, schema: EventSchema = DEFAULT_SCHEMA) -> None:
        self.client = client
        self.problem = problem  # keep only this problem's events
        self.schema = schema  # the problem's event fields (events_source.schema_of)
        self.index = index
        self.page_size = page_size
        self.keep_alive = keep_alive
        self.url = url
        self.description = f"elasticsearch {url} {index}".replace("  ", " ")
        self.skipped: Counter = Counter()
        self.requests = 0

    def batches(self, window: Window) -> Iterator[Columns]:
        check = EventCheck(window, self.problem, self.schema)
        pit = self._call(self.client.open_point_in_time, index=self.index, keep_alive=self.keep_alive)["id"]
        try:
            after = None
            while True:
                page = self._call(
                    self.client.search,
                    pit={"id": pit, "keep_alive": self.keep_alive},
                    size=self.page_size,
                    query={"range": {"@timestamp": {
                        "gte": window.since_text, "lt": window.until_text, "format": "strict_date_optional_time",
                    }}},
                    sort=[{"@timestamp": {"order": "asc"}}, {"_shard_doc": {"order": "asc"}}],
                    search_after=after,
                    source=list(self.schema.source_fields),
                    track_total_hits=False,
                )
                pit = page.get("pit_id") or pit  # always use the latest id
                hits = page["hits"]["hits"]
                if not hits:
                    return
                yield check.keep((hit.get("_source") for hit in hits), self.skipped)
                after = hits[-1]["sort"]
        finally:
            try:
                self.client.close_point_in_time(id=pit)
            except Exception:  # it expires after keep_alive anyway
                pass

    def _call(self, method: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return call(method, self.url, f"read {self.index}", **kwargs)
