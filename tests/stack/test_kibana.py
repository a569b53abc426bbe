"""The Elastic side: the index templates (prediction events, monitoring summaries), the Kibana data
views and dashboard, and the two one-shot setup scripts, run against a fake Elasticsearch/Kibana
on 127.0.0.1."""

from __future__ import annotations

import fnmatch
import json
import subprocess
from typing import Any

import pytest

from tests.stack.files import EVENT_SCHEMA, NUMBER_TYPES, ROOT, load_json, read
from tests.stand_ins import FakeServer, Route, basic_auth

PASSWORD = 'pa"ss\\word'  # a quote and a backslash: the scripts must escape them in JSON


@pytest.fixture(scope="module")
def data_view() -> dict[str, Any]:
    return load_json("kibana/data-view.json")["data_view"]


@pytest.fixture(scope="module")
def monitoring_view() -> dict[str, Any]:
    return load_json("kibana/data-view-monitoring.json")["data_view"]


@pytest.fixture(scope="module")
def monitoring_template() -> dict[str, Any]:
    return load_json("elasticsearch/monitoring-template.json")


@pytest.fixture(scope="module")
def templates_by_view(data_view, monitoring_view, index_template, monitoring_template) -> dict[str, dict[str, Any]]:
    """The index template behind each data view, by the data view's id."""
    return {data_view["id"]: index_template, monitoring_view["id"]: monitoring_template}


@pytest.fixture(scope="module")
def saved_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in read("kibana/dashboard.ndjson").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def dashboard(saved_objects) -> dict[str, Any]:
    (found,) = [o for o in saved_objects if o["type"] == "dashboard"]
    return found


@pytest.fixture(scope="module")
def panels(dashboard) -> list[dict[str, Any]]:
    return json.loads(dashboard["attributes"]["panelsJSON"])


def panel_view(panel: dict[str, Any]) -> str:
    """The id of the one data view a panel reads."""
    (found,) = {ref["id"] for ref in panel["embeddableConfig"]["attributes"]["references"]}
    return found


def lens_columns(panel: dict[str, Any]) -> list[dict[str, Any]]:
    layers = panel["embeddableConfig"]["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    return [column for layer in layers.values() for column in layer["columns"].values()]


# --- index template --------------------------------------------------------------------------

def test_index_template_covers_the_daily_model_indices(index_template):
    assert index_template["index_patterns"] == ["model-*"]
    assert index_template["priority"] > 0


def test_index_template_maps_exactly_the_event_schema(index_template):
    properties = index_template["template"]["mappings"]["properties"]
    assert set(properties) == set(EVENT_SCHEMA)
    for name, family in EVENT_SCHEMA.items():
        kind = properties[name]["type"]
        if family == "number":
            assert kind in NUMBER_TYPES, name
        else:
            assert kind == family, name
    assert properties["date"]["format"] == "yyyy-MM-dd"
    assert index_template["template"]["mappings"]["dynamic"] is False


# --- data view and dashboard ---------------------------------------------------------------------

def test_data_view_is_model_star_on_timestamp_with_a_fixed_id(data_view):
    assert data_view["title"] == "model-*"
    assert data_view["timeFieldName"] == "@timestamp"
    assert data_view["id"] and " " not in data_view["id"]


def test_dashboard_ndjson_holds_the_predictions_dashboard(saved_objects, dashboard):
    assert all(isinstance(o, dict) and o.get("id") and o.get("type") for o in saved_objects)
    assert dashboard["attributes"]["title"] == "Predictions"
    json.loads(dashboard["attributes"]["optionsJSON"])
    json.loads(dashboard["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def test_the_dashboard_shows_favoritas_events_only_when_a_server_serves_several_problems(dashboard):
    query = json.loads(dashboard["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]
    assert query == {"query": 'not problem:* or problem:"favorita"', "language": "kuery"}


def test_monitoring_data_view_is_the_report_index_on_timestamp(monitoring_view, monitoring_template, data_view):
    from cd4ml.config import DEFAULTS

    assert monitoring_view["title"] == "cd4ml-monitoring*" and monitoring_view["timeFieldName"] == "@timestamp"
    assert monitoring_view["id"] and " " not in monitoring_view["id"] and monitoring_view["id"] != data_view["id"]
    assert monitoring_template["index_patterns"] == [monitoring_view["title"]]
    assert fnmatch.fnmatch(DEFAULTS["monitoring"]["report_index"], monitoring_template["index_patterns"][0])
    assert not fnmatch.fnmatch(DEFAULTS["monitoring"]["report_index"], "model-*")  # not mistaken for events


def test_monitoring_template_maps_every_figure_of_a_report(monitoring_template):
    from cd4ml.monitoring.report import summary_documents

    report = {"report_version": 1, "created": "2026-11-23T06:00:00.000Z", "mlflow_run_id": "r",
              "window": {"since": "2026-11-16T00:00:00.000Z", "until": "2026-11-23T00:00:00.000Z"},
              "source": "s", "status": "ok", "alerts": [], "warnings": [],
              "model": {"version": "3", "run_id": "m", "validation": {"r2": 0.8, "nwrmsle": 0.5, "mae": 3.0}},
              "events": {"events": 4, "latency": {"p50_ms": 0.3, "p99_ms": 1.9}, "versions": [{"version": "3", "events": 4}]},
              "skipped": {}, "drift": {"items": {"psi": 0.1}, "weekdays": {"psi": 0.1}, "forecast": {"psi": 0.1}},
              "accuracy": {"rows": 4, "metrics": {"r2": 0.6, "nwrmsle": 0.7, "mae": 4.5}}}
    properties = monitoring_template["template"]["mappings"]["properties"]
    used = {field for _, document in summary_documents(report) for field in document}
    assert used == set(properties)  # every figure mapped, nothing mapped that is never sent
    for _, document in summary_documents(report):
        for field, value in document.items():
            kind = properties[field]["type"]
            if kind in NUMBER_TYPES:
                assert isinstance(value, (int, float)) and not isinstance(value, bool), field
                if kind in {"integer", "long"}:
                    assert isinstance(value, int), field
            else:
                assert isinstance(value, str) and kind in {"keyword", "date"}, field


def test_every_panel_references_a_data_view_by_its_id(dashboard, panels, templates_by_view):
    assert panels
    references = {ref["name"]: ref for ref in dashboard["references"]}
    for panel in panels:
        attributes = panel["embeddableConfig"]["attributes"]
        own = attributes["references"]
        assert own and all(ref["type"] == "index-pattern" and ref["id"] in templates_by_view for ref in own)
        for ref in own:
            outer = references[f"{panel['panelIndex']}:{ref['name']}"]
            assert outer["id"] == ref["id"] and outer["type"] == "index-pattern"
        layers = attributes["state"]["datasourceStates"]["formBased"]["layers"]
        assert {f"indexpattern-datasource-layer-{layer}" for layer in layers} == {ref["name"] for ref in own}


def test_every_field_a_panel_uses_is_in_the_index_template_of_its_data_view(panels, templates_by_view):
    for panel in panels:
        properties = templates_by_view[panel_view(panel)]["template"]["mappings"]["properties"]
        for column in lens_columns(panel):
            field = column.get("sourceField")
            if field and field != "___records___":
                assert field in properties, f"{panel['title']}: {field}"
                if column["dataType"] == "number" and not column["isBucketed"]:
                    assert properties[field]["type"] in NUMBER_TYPES, f"{panel['title']}: {field}"


def test_dashboard_shows_the_monitor_figures_of_the_monitoring_page(panels, monitoring_view):
    """Drift per dimension, live accuracy beside validation, volume, latency and version shares."""
    monitoring = [p for p in panels if panel_view(p) == monitoring_view["id"]]
    fields = {(c["operationType"], c.get("sourceField")) for p in monitoring for c in lens_columns(p)}
    metrics = {field for _, field in fields}
    assert {"psi_items", "psi_weekdays", "psi_forecast"} <= metrics
    assert {f"{kind}_{name}" for kind in ("live", "validation") for name in ("r2", "nwrmsle", "mae")} <= metrics
    assert {"events", "latency_p50_ms", "latency_p99_ms", "served_share"} <= metrics
    assert ("terms", "served_version") in fields and ("terms", "model_version") in fields
    for panel in monitoring:  # monitor runs are rare: a longer time range than the events' 24 hours
        assert panel["embeddableConfig"]["timeRange"] == {"from": "now-30d", "to": "now"}, panel["title"]


def test_dashboard_shows_volume_products_latency_percentiles_and_model_versions(panels):
    operations = {
        (column["operationType"], column.get("sourceField"), column.get("params", {}).get("percentile"))
        for panel in panels
        for column in lens_columns(panel)
    }
    assert ("date_histogram", "@timestamp", None) in operations
    assert ("count", "___records___", None) in operations
    assert ("terms", "item_name", None) in operations
    assert ("terms", "model_version", None) in operations
    assert {("percentile", "latency_ms", 50), ("percentile", "latency_ms", 99)} <= operations


def test_lens_panels_are_consistent(panels):
    """Each layer's columnOrder lists its columns, and the chart only uses columns that exist."""
    for panel in panels:
        attributes = panel["embeddableConfig"]["attributes"]
        layers = attributes["state"]["datasourceStates"]["formBased"]["layers"]
        for layer_id, layer in layers.items():
            assert set(layer["columnOrder"]) == set(layer["columns"]), panel["title"]
            for column in layer["columns"].values():
                order_by = column.get("params", {}).get("orderBy", {})
                if order_by.get("type") == "column":
                    assert order_by["columnId"] in layer["columns"], panel["title"]
        for chart_layer in attributes["state"]["visualization"]["layers"]:
            columns = layers[chart_layer["layerId"]]["columns"]
            used = [chart_layer["xAccessor"], *chart_layer["accessors"], chart_layer.get("splitAccessor")]
            assert all(c in columns for c in used if c), panel["title"]


def test_panels_do_not_overlap(panels):
    cells = set()
    for panel in panels:
        grid = panel["gridData"]
        assert grid["x"] + grid["w"] <= 48
        here = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & here, panel["title"]
        cells |= here


# --- the one-shot setup scripts against a fake server ------------------------------------------

def run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / script)], env=env, capture_output=True, text=True, timeout=60)


def elasticsearch_route(fail_template: bool = False) -> Route:
    def route(method, path, body):
        if method == "PUT" and path == "/_index_template/model-events" and fail_template:
            return 400, {"error": "bad template"}
        known = {
            ("GET", "/_cluster/health"), ("POST", "/_security/user/kibana_system/_password"),
            ("PUT", "/_security/role/cd4ml_event_writer"), ("PUT", "/_security/user/cd4ml_fluentd"),
            ("PUT", "/_index_template/model-events"), ("PUT", "/_index_template/monitoring-reports"),
        }
        return (200, {"acknowledged": True}) if (method, path.split("?")[0]) in known else (404, {})
    return route


def es_env(clean_env, url):
    return {**clean_env, "ES_URL": url, "ELASTIC_PASSWORD": PASSWORD, "KIBANA_SYSTEM_PASSWORD": "kibana-" + PASSWORD,
            "FLUENTD_ES_PASSWORD": "fluentd-" + PASSWORD, "TIMEOUT_SECONDS": "5"}


def test_es_setup_sets_passwords_creates_the_writer_and_puts_the_templates(clean_env, index_template,
                                                                          monitoring_template):
    with FakeServer(elasticsearch_route()) as es:
        result = run_script("elasticsearch/setup.sh", es_env(clean_env, es.url))
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(r["headers"]["Authorization"] == basic_auth("elastic", PASSWORD) for r in es.requests)
    assert json.loads(es.find("POST", "/_security/user/kibana_system/_password")["body"]) == {
        "password": "kibana-" + PASSWORD}
    role = json.loads(es.find("PUT", "/_security/role/cd4ml_event_writer")["body"])
    assert role["indices"] == [{"names": ["model-*"], "privileges": ["create_index", "write", "view_index_metadata"]}]
    user = json.loads(es.find("PUT", "/_security/user/cd4ml_fluentd")["body"])
    assert user["password"] == "fluentd-" + PASSWORD and user["roles"] == ["cd4ml_event_writer"]
    assert json.loads(es.find("PUT", "/_index_template/model-events")["body"]) == index_template
    assert json.loads(es.find("PUT", "/_index_template/monitoring-reports")["body"]) == monitoring_template


def test_es_setup_fails_when_elasticsearch_refuses_the_template(clean_env):
    with FakeServer(elasticsearch_route(fail_template=True)) as es:
        result = run_script("elasticsearch/setup.sh", es_env(clean_env, es.url))
    assert result.returncode != 0
    assert "/_index_template/model-events answered HTTP 400" in result.stdout


def test_es_setup_gives_up_when_elasticsearch_never_answers(clean_env):
    with FakeServer(lambda method, path, body: (503, {})) as es:
        result = run_script("elasticsearch/setup.sh", {**es_env(clean_env, es.url), "TIMEOUT_SECONDS": "1"})
    assert result.returncode == 1
    assert "did not answer" in result.stdout


def kibana_route(data_view_exists: bool = False, import_succeeds: bool = True, overall: str = "available") -> Route:
    def route(method, path, body):
        if path == "/api/status":  # the shape of Kibana's GET /api/status: overall, core, plugins
            return 200, {"name": "kibana", "version": {"number": "9.5.2"},
                         "status": {"overall": {"level": overall, "summary": f"Kibana is {overall}"},
                                    "core": {"elasticsearch": {"level": "available", "summary": "ok"},
                                             "savedObjects": {"level": "available", "summary": "ok"}},
                                    "plugins": {"dataViews": {"level": "available", "summary": "ok"}}}}
        if method == "GET" and path.startswith("/api/data_views/data_view/"):
            return (200, {}) if data_view_exists else (404, {})
        if method == "POST" and path == "/api/data_views/data_view":
            return 200, {"data_view": {}}
        if method == "POST" and path == "/api/saved_objects/_import?overwrite=true":
            return 200, {"success": import_succeeds, "successCount": 1 if import_succeeds else 0}
        return 404, {}
    return route


def kibana_env(clean_env, url):
    return {**clean_env, "KIBANA_URL": url, "ELASTIC_PASSWORD": PASSWORD, "TIMEOUT_SECONDS": "5"}


def test_kibana_setup_creates_the_data_views_then_imports_the_dashboard(clean_env, data_view, monitoring_view):
    with FakeServer(kibana_route()) as kibana:
        result = run_script("kibana/setup.sh", kibana_env(clean_env, kibana.url))
    assert result.returncode == 0, result.stdout + result.stderr
    for request in kibana.requests:
        assert request["headers"]["Authorization"] == basic_auth("elastic", PASSWORD)
        assert request["headers"]["kbn-xsrf"] == "true"
    kibana.find("GET", f"/api/data_views/data_view/{data_view['id']}")
    kibana.find("GET", f"/api/data_views/data_view/{monitoring_view['id']}")
    created = [json.loads(r["body"]) for r in kibana.requests if r["path"] == "/api/data_views/data_view"]
    assert sorted(created, key=str) == sorted([load_json("kibana/data-view.json"),
                                               load_json("kibana/data-view-monitoring.json")], key=str)
    imported = kibana.find("POST", "/api/saved_objects/_import")
    assert imported["headers"]["Content-Type"].startswith("multipart/form-data")
    assert b'name="file"; filename="dashboard.ndjson"' in imported["body"]
    assert read("kibana/dashboard.ndjson").encode() in imported["body"]
    paths = [r["path"] for r in kibana.requests]  # the dashboard's references exist before it is imported
    last_view = max(i for i, path in enumerate(paths) if path == "/api/data_views/data_view")
    assert last_view < paths.index("/api/saved_objects/_import?overwrite=true")


def test_kibana_setup_keeps_an_existing_data_view(clean_env):
    with FakeServer(kibana_route(data_view_exists=True)) as kibana:
        result = run_script("kibana/setup.sh", kibana_env(clean_env, kibana.url))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [r for r in kibana.requests if r["path"] == "/api/data_views/data_view"]


def test_kibana_setup_fails_when_the_import_does_not_succeed(clean_env):
    with FakeServer(kibana_route(import_succeeds=False)) as kibana:
        result = run_script("kibana/setup.sh", kibana_env(clean_env, kibana.url))
    assert result.returncode == 1
    assert "the import answered HTTP 200" in result.stdout


def test_kibana_setup_waits_for_the_overall_status_not_a_nested_one(clean_env):
    """Core services and plugins can be available while Kibana as a whole is not."""
    with FakeServer(kibana_route(overall="degraded")) as kibana:
        result = run_script("kibana/setup.sh", {**kibana_env(clean_env, kibana.url), "TIMEOUT_SECONDS": "2"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "was not available within 2s" in result.stdout
    assert not [r for r in kibana.requests if r["path"] != "/api/status"]
