"""The Elasticsearch event source, with the real `elasticsearch` client, against a STAND-IN server.

Elasticsearch itself cannot run here. The stand-in below is a small HTTP server on 127.0.0.1
that answers the three documented calls the source makes, with the documented request and
response shapes (Elasticsearch reference, "Paginate search results" and the point-in-time API):

    POST /<index>/_pit?keep_alive=2m       -> {"id": ..., "_shards": {...}}
    POST /_search  {"pit": {"id", "keep_alive"}, "size", "query", "sort", "search_after", "_source"}
                                           -> {"pit_id": <a new id>, "took", "timed_out", "_shards",
                                               "hits": {"max_score": null, "hits": [{"_index", "_id",
                                               "_score": null, "_source", "sort": [...]}]}}
    DELETE /_pit   {"id": ...}             -> {"succeeded": true, "num_freed": 1}

and, for the summary of a monitoring report (the bulk API, "Bulk index or delete documents"):

    PUT /_bulk?refresh=wait_for    NDJSON: {"index": {"_index", "_id"}}\n{document}\n...  (or POST)
                                           -> {"took", "errors": false, "items": [{"index": {"_index",
                                               "_id", "_version", "result": "created", "_shards",
                                               "_seq_no", "_primary_term", "status": 201}}]}

It checks what the 9.x client sends (Accept: application/vnd.elasticsearch+json; compatible-with=9)
and answers with the X-Elastic-Product: Elasticsearch header the client insists on. It keeps no
more logic than sorting, the time range and search_after need: it is not Elasticsearch.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cd4ml.cli import main
from cd4ml.errors import ConfigError, ServiceUnreachable
from cd4ml.events import prediction_event
from cd4ml.monitoring.elasticsearch_client import elasticsearch_client
from cd4ml.monitoring.elasticsearch_events import ElasticsearchEvents
from cd4ml.monitoring.events_source import rows
from cd4ml.monitoring.window import Window
from cd4ml.monitoring.report import summary_documents
from tests.conftest import ROOT, free_port

COMPATIBLE = "application/vnd.elasticsearch+json; compatible-with=9"
START = datetime(2026, 11, 16, tzinfo=timezone.utc)
WINDOW = Window(START, START + timedelta(days=7))


def documents(n: int) -> list[dict[str, Any]]:
    """n prediction events, one every 30 s from START - 1 day (so some lie before the window)."""
    first = (START - timedelta(days=1)).timestamp()
    return [prediction_event(date="2026-11-30", item_nbr=100 + i % 7, item_name=f"Item {100 + i % 7}", store_nbr=47,
                             onpromotion=False, prediction=1.0 + i % 13, model_version=str(1 + i % 2),
                             run_id=f"run-{1 + i % 2}", latency_ms=0.2 + (i % 5) / 10, at=first + 30 * i)
            for i in range(n)]


class StandIn:
    """The stand-in Elasticsearch: documents in one index, the calls above, a log of requests."""

    def __init__(self, docs: list[dict[str, Any]], refuse: int | None = None) -> None:
        self.docs = [{"_index": "model-" + d.get("@timestamp", "x")[:10].replace("-", "."), "_id": f"doc-{i}",
                      "shard_doc": i, "source": d} for i, d in enumerate(docs)]
        self.refuse = refuse  # answer every request with this HTTP error status
        self.refuse_documents = False  # answer _bulk with a mapping error for every document
        self.indexed: dict[tuple[str, str], dict[str, Any]] = {}  # (index, id) -> document
        self.requests: list[dict[str, Any]] = []
        self.pits: list[str] = []
        self.closed: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = self.headers.get("Content-Type", "")
                if "x-ndjson" in kind:  # the bulk API: one JSON value a line, the last line ends too
                    assert raw.endswith(b"\n")
                    body = [json.loads(line) for line in raw.splitlines()]
                else:
                    body = json.loads(raw) if raw else None
                stand_in.requests.append({"method": self.command, "path": self.path, "body": body,
                                          "accept": self.headers.get("Accept", ""), "content_type": kind})
                status, answer = stand_in.answer(self.command, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=9")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.refuse:
            return self.refuse, {"error": {"root_cause": [{"type": "security_exception", "reason": "unable to authenticate"}],
                                           "type": "security_exception", "reason": "unable to authenticate"},
                                 "status": self.refuse}
        route, _, query = path.partition("?")
        if method == "POST" and route.endswith("/_pit"):
            assert route == "/model-*/_pit" and "keep_alive=" in query
            self.pits.append(f"pit-{len(self.pits)}")
            return 200, {"id": self.pits[-1], "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}
        if method == "POST" and route == "/_search":
            return 200, self.search(body)
        if method in ("POST", "PUT") and route == "/_bulk":  # the reference documents both; the client sends PUT
            return 200, self.bulk(body)
        if method == "DELETE" and route == "/_pit":
            self.closed.append(body["id"])
            return 200, {"succeeded": True, "num_freed": 1}
        return 404, {"error": {"type": "not_found", "reason": f"no route {method} {path}"}, "status": 404}

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        assert body["pit"]["id"] == self.pits[-1], "always use the latest point-in-time id"
        assert body["sort"] == [{"@timestamp": {"order": "asc"}}, {"_shard_doc": {"order": "asc"}}]
        limits = body["query"]["range"]["@timestamp"]
        after = tuple(body.get("search_after") or (-1, -1))
        matching = sorted(
            ((_millis(d["source"]), d["shard_doc"], d) for d in self.docs
             if limits["gte"] <= d["source"].get("@timestamp", "") < limits["lt"]),
            key=lambda found: found[:2],
        )
        page = [found for found in matching if found[:2] > after][:body["size"]]
        self.pits.append(f"pit-{len(self.pits)}")  # ids may change on every page
        return {
            "pit_id": self.pits[-1], "took": 3, "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"max_score": None, "hits": [
                {"_index": d["_index"], "_id": d["_id"], "_score": None,
                 "_source": {k: v for k, v in d["source"].items() if k in body["_source"]}, "sort": [millis, shard_doc]}
                for millis, shard_doc, d in page
            ]},
        }


    def bulk(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        items = []
        for action, document in zip(lines[::2], lines[1::2]):
            target = action["index"]
            if self.refuse_documents:
                items.append({"index": {"_index": target["_index"], "_id": target["_id"], "status": 400, "error": {
                    "type": "document_parsing_exception", "reason": "[1:2] failed to parse field [events]"}}})
                continue
            key = (target["_index"], target["_id"])
            result = "updated" if key in self.indexed else "created"
            self.indexed[key] = document
            items.append({"index": {"_index": target["_index"], "_id": target["_id"], "_version": 1, "result": result,
                                    "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": len(self.indexed),
                                    "_primary_term": 1, "status": 201 if result == "created" else 200}})
        return {"took": 2, "errors": self.refuse_documents, "items": items}


def _millis(source: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(source["@timestamp"]).timestamp() * 1000)


@pytest.fixture
def stand_in():
    servers: list[StandIn] = []

    def start(docs, refuse=None) -> StandIn:
        servers.append(StandIn(docs, refuse))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def source_for(server: StandIn, page_size: int = 5000) -> ElasticsearchEvents:
    return ElasticsearchEvents(elasticsearch_client(server.url, "elastic", "secret"), "model-*", page_size=page_size,
                               url=server.url)


def test_every_event_in_the_window_is_read_page_by_page_and_the_pit_is_closed(stand_in):
    docs = documents(12_345 + 2880)  # one day before the window, then 12,345 inside
    server = stand_in(docs)
    source = source_for(server, page_size=5000)
    found = [row for batch in source.batches(WINDOW) for row in rows(batch)]
    inside = [d for d in docs if WINDOW.since_text <= d["@timestamp"] < WINDOW.until_text]
    assert len(found) == len(inside) == 12_345
    assert found == [{k: d[k] for k in found[0]} for d in inside]  # all, in time order, none twice
    searches = [r for r in server.requests if r["path"].startswith("/_search")]
    assert len(searches) == 4  # 5,000 + 5,000 + 2,345, then an empty page
    assert searches[0]["body"].get("search_after") is None and searches[1]["body"]["search_after"]
    assert all(r["accept"] == COMPATIBLE for r in server.requests)
    assert server.closed == [server.pits[-1]]
    assert not source.skipped


def test_malformed_documents_are_skipped_and_counted(stand_in):
    docs = documents(3000)[2880:]  # 120 inside the window
    docs[0] = {**docs[0], "schema_version": 2}
    docs[1] = {k: v for k, v in docs[1].items() if k != "prediction"}
    docs[2] = {**docs[2], "item_nbr": "101"}
    source = source_for(stand_in(docs), page_size=50)
    found = [row for batch in source.batches(WINDOW) for row in rows(batch)]
    assert len(found) == 117
    assert dict(source.skipped) == {"unknown schema_version 2": 1, "missing or bad prediction": 1,
                                    "missing or bad item_nbr": 1}


def test_an_unreachable_elasticsearch_is_service_unreachable(stand_in):
    source = ElasticsearchEvents(elasticsearch_client(f"http://127.0.0.1:{free_port()}", None, None, timeout=2),
                                 "model-*", url="http://127.0.0.1:1")
    with pytest.raises(ServiceUnreachable, match=r"Elasticsearch at http://127.0.0.1:1 did not answer \(ConnectionError\)"):
        list(source.batches(WINDOW))


def test_refused_credentials_say_which_variables_to_set(stand_in):
    server = stand_in(documents(10), refuse=401)
    with pytest.raises(ConfigError, match="refused the credentials .HTTP 401.*CD4ML_ELASTICSEARCH_USER"):
        list(source_for(server).batches(WINDOW))


# --- the command, end to end ------------------------------------------------------------------------

def test_monitor_reads_elasticsearch_when_its_url_is_configured(stand_in, embedded, monkeypatch, capsys):
    server = stand_in(documents(3000))
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_URL", server.url)
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_USER", "elastic")
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_PASSWORD", "secret")
    code = main(["monitor", "--since", "2026-11-16", "--until", "2026-11-22"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"from elasticsearch {server.url} model-*" in out and "events: 120; none skipped" in out
    assert "no production model" in out and "status: ok" in out
    report = json.loads((embedded / "monitoring/latest.json").read_text())
    assert report["events"]["events"] == 120 and report["source"].startswith("elasticsearch")


def test_monitor_with_elasticsearch_down_is_one_line_and_exit_3(embedded, monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_URL", url)
    code = main(["monitor"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"error: Elasticsearch at {url} did not answer (ConnectionError). Start it (docker compose up -d "
        "elasticsearch), check CD4ML_ELASTICSEARCH_URL, or read the local log with --source jsonl.")


# --- the report's summary, indexed for Kibana ---------------------------------------------------------

def monitoring_mappings() -> dict[str, Any]:
    return json.loads((ROOT / "elasticsearch" / "monitoring-template.json").read_text())["template"]["mappings"]


def test_monitor_indexes_its_summary_figures_for_kibana(stand_in, embedded, monkeypatch, capsys):
    server = stand_in(documents(3000))
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_URL", server.url)
    code = main(["monitor", "--since", "2026-11-16", "--until", "2026-11-22", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    run_id = report["mlflow_run_id"]
    (bulk,) = [r for r in server.requests if r["path"].startswith("/_bulk")]
    assert bulk["path"] == "/_bulk?refresh=wait_for" and bulk["method"] in ("POST", "PUT")
    assert bulk["content_type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
    assert report["summary_index"] == "cd4ml-monitoring"
    assert set(server.indexed) == {("cd4ml-monitoring", f"{run_id}-summary"), ("cd4ml-monitoring", f"{run_id}-v1"),
                                   ("cd4ml-monitoring", f"{run_id}-v2")}
    summary = server.indexed[("cd4ml-monitoring", f"{run_id}-summary")]
    assert summary["@timestamp"] == report["created"] and summary["kind"] == "summary"
    assert summary["window_since"] == "2026-11-16T00:00:00.000Z" and summary["window_until"] == "2026-11-23T00:00:00.000Z"
    assert summary["events"] == 120 and summary["events_skipped"] == 0 and summary["status"] == "ok"
    assert summary["latency_p99_ms"] == report["events"]["latency"]["p99_ms"]
    assert "model_version" not in summary  # nothing deployed in this test
    shares = {d["served_version"]: d["served_share"] for key, d in server.indexed.items() if d["kind"] == "version"}
    assert shares == {"1": 0.5, "2": 0.5}
    mapped = monitoring_mappings()["properties"]
    for document in server.indexed.values():
        assert set(document) <= set(mapped), set(document) - set(mapped)


def test_the_summary_carries_drift_live_accuracy_and_the_deployed_version():
    report = {"report_version": 1, "created": "2026-11-23T06:00:00.000Z", "mlflow_run_id": "r1",
              "window": {"since": "2026-11-16T00:00:00.000Z", "until": "2026-11-23T00:00:00.000Z"},
              "source": "elasticsearch http://es:9200 model-*", "status": "alert", "alerts": ["a"], "warnings": [],
              "model": {"name": "sales-forecast", "version": "3", "run_id": "m3",
                        "validation": {"r2": 0.8, "nwrmsle": 0.5, "mae": 3.0}},
              "events": {"events": 400, "latency": {"p50_ms": 0.3, "p99_ms": 1.9},
                         "versions": [{"version": "3", "events": 300}, {"version": "2", "events": 100}]},
              "skipped": {"unknown schema_version 2": 4},
              "drift": {"items": {"psi": 0.02}, "weekdays": {"psi": 0.3}, "forecast": {"psi": 0.12}},
              "accuracy": {"rows": 250, "metrics": {"r2": 0.6, "nwrmsle": 0.7, "mae": 4.5}}}
    (summary_id, summary), *versions = summary_documents(report)
    assert summary_id == "r1-summary"
    assert summary == {
        "@timestamp": "2026-11-23T06:00:00.000Z", "report_version": 1, "mlflow_run_id": "r1",
        "window_since": "2026-11-16T00:00:00.000Z", "window_until": "2026-11-23T00:00:00.000Z",
        "model_version": "3", "model_run_id": "m3", "kind": "summary", "status": "alert",
        "source": "elasticsearch http://es:9200 model-*", "warnings": 0, "alerts": 1,
        "events": 400, "events_skipped": 4, "latency_p50_ms": 0.3, "latency_p99_ms": 1.9,
        "psi_items": 0.02, "psi_weekdays": 0.3, "psi_forecast": 0.12,
        "live_rows": 250, "live_r2": 0.6, "live_nwrmsle": 0.7, "live_mae": 4.5,
        "validation_r2": 0.8, "validation_nwrmsle": 0.5, "validation_mae": 3.0,
    }
    assert [(i, d["served_version"], d["served_events"], d["served_share"]) for i, d in versions] == [
        ("r1-v3", "3", 300, 0.75), ("r1-v2", "2", 100, 0.25)]
    assert all(d["model_version"] == "3" and d["kind"] == "version" for _, d in versions)
    mapped = monitoring_mappings()["properties"]
    for _, document in [(summary_id, summary), *versions]:
        assert set(document) <= set(mapped), set(document) - set(mapped)


def test_a_refused_summary_fails_the_monitor_with_the_reason(stand_in, embedded, monkeypatch, capsys):
    server = stand_in(documents(3000))
    server.refuse_documents = True
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_URL", server.url)
    code = main(["monitor", "--since", "2026-11-16", "--until", "2026-11-22"])
    err = capsys.readouterr().err
    assert code == 3
    assert "refused 3 of 3 monitoring documents for cd4ml-monitoring: document_parsing_exception" in err
    assert "monitoring-template.json" in err
    assert not (embedded / "monitoring" / "latest.json").exists()  # a failed monitor leaves no report


def test_monitor_over_the_local_log_indexes_nothing(stand_in, embedded, monkeypatch, capsys):
    server = stand_in([])
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_URL", server.url)
    events = embedded.parent / "events.jsonl"
    events.write_text("".join(json.dumps(d) + "\n" for d in documents(3000)))
    code = main(["monitor", "--events", str(events), "--since", "2026-11-16", "--until", "2026-11-22"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert server.requests == [] and "summary in Elasticsearch" not in out


def test_an_alert_exits_5_and_is_in_the_summary_kibana_shows(stand_in, embedded, monkeypatch, capsys):
    server = stand_in(documents(3000))  # 120 events in the window, latencies 0.2 to 0.6 ms
    monkeypatch.setenv("CD4ML_ELASTICSEARCH_URL", server.url)
    monkeypatch.setenv("CD4ML_MONITORING_MIN_EVENTS", "10")
    monkeypatch.setenv("CD4ML_MONITORING_MAX_LATENCY_P99_MS", "0.5")
    code = main(["monitor", "--since", "2026-11-16", "--until", "2026-11-22"])
    out = capsys.readouterr().out
    assert code == 5, out
    assert "ALERT: latency p99 0.6 ms is above max_latency_p99_ms 0.5 ms" in out and "status: ALERT" in out
    (summary,) = [d for d in server.indexed.values() if d["kind"] == "summary"]
    assert summary["status"] == "alert" and summary["alerts"] == 1
    assert json.loads((embedded / "monitoring" / "latest.json").read_text())["status"] == "alert"
