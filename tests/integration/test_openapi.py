"""The API description (cd4ml/problems/favorita/openapi.json, the default problem's) agrees with the Flask routes, and schemathesis
fuzzes every operation in it against the real server: `serve` under gunicorn, following a model
deployed through a real `mlflow server` by the CLI.

Across all operations the fuzz sends at least MIN_REQUESTS generated requests (valid ones and ones
that break the description: wrong types, missing or extra parameters, odd headers), and requires:
no 5xx; every status, content type and JSON body as described; every 4xx of the JSON API has a
JSON body {"error": ..., "field": ...}; the form page's 4xx is the form again with the error shown;
POST /reload lets no generated credential in.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from cd4ml.events import JsonlSink
from cd4ml.serving.api import openapi_document
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from tests.real_stack import ADMIN_TOKEN, Server, cli_env, deliver
from tests.serving_helpers import serving_settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in requirements-dev.txt")

MIN_REQUESTS = 1000
# Examples per operation and generation mode; operations without parameters run out of new ones early.
MAX_EXAMPLES = 220
HTML_PAGES = {"/", "/monitoring", "/favicon.ico"}  # the redirect of /favicon.ico has a short HTML body


def spec() -> dict:
    return json.loads(openapi_document())


def test_the_description_and_the_flask_routes_agree(tmp_path):
    app = create_app(serving_settings(), ModelStore(lambda current: None, poll_seconds=0),
                     JsonlSink(tmp_path / "events.jsonl"))
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, operations in spec()["paths"].items() for method in operations}
    assert routes == described, f"only in Flask: {routes - described}; only in openapi.json: {described - routes}"


def test_every_operation_documents_its_errors_as_json_or_html():
    for path, operations in spec()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                kinds = set(response.get("content", {}))
                expected = {"text/html"} if path in HTML_PAGES else {"application/json"}
                if path in HTML_PAGES and status == "400":  # the form with its error, or a request too large to read
                    expected = {"text/html", "application/json"}
                assert kinds == expected, (path, method, status, kinds)


@pytest.fixture(scope="module")
def served(mlflow_server, tiny_data, tmp_path_factory):
    """The real server, with a model the CLI trained, gated and deployed through MLflow."""
    folder = tmp_path_factory.mktemp("fuzz")
    env = cli_env(folder, mlflow_server)
    deliver(env, tiny_data)
    server = Server(env, folder / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_the_server_serves_its_description(served):
    response = requests.get(f"{served.url}/openapi.json", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json() == spec()
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_fuzzing_every_operation_finds_no_5xx_and_only_described_json_errors(served):
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        ignored_auth,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    session = requests.Session()
    tally: Counter = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the description's own path; test_the_server_serves_its_description has it.
    assert {op.path for op in operations} == set(spec()["paths"]) - {"/openapi.json"}

    for operation in operations:
        described = spec()["paths"][operation.path][operation.method]
        modes = [schemathesis.GenerationMode.POSITIVE]
        if described.get("parameters") or described.get("security"):  # something to break
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:
            extra = [negative_data_rejection] if mode is schemathesis.GenerationMode.NEGATIVE else []
            if operation.path == "/reload":
                extra.append(ignored_auth)

            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call(base_url=served.url, session=session, timeout=10)
                tally[(operation.method.upper(), operation.path, response.status_code)] += 1
                case.validate_response(response, checks=checks + extra)
                assert_error_body(operation.path, response)
                if operation.path == "/reload":  # no generated Authorization header is the token
                    assert response.status_code in (401, 413), response.text

            fuzz()

    total = sum(tally.values())
    report = "\n".join(f"  {method:4} {path:13} {status}  {count:5}" for (method, path, status), count in sorted(tally.items()))
    print(f"\nschemathesis sent {total:,} requests to the real server:\n{report}")
    assert total >= MIN_REQUESTS, report
    assert not [key for key in tally if key[2] >= 500], report
    assert tally[("GET", "/prediction", 200)] and tally[("GET", "/prediction", 400)], "the fuzz must reach both answers"


def assert_error_body(path: str, response) -> None:
    """A 4xx of the API is JSON naming what is wrong; the page's is the form with its error shown."""
    if not 400 <= response.status_code < 500:
        return
    content_type = response.headers.get("content-type", [""])[0]  # schemathesis: lower-case names, lists
    if path in HTML_PAGES and response.status_code == 400 and content_type.startswith("text/html"):
        assert 'role="alert"' in response.text and "hidden" not in response.text.split('role="alert"', 1)[1][:20]
        return
    assert content_type == "application/json", response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"] and "field" in body, body
    assert "Traceback" not in response.text


def test_reload_with_the_real_token_asks_the_real_registry(served):
    response = requests.post(f"{served.url}/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "1" and response.json()["last_error"] is None


@pytest.mark.parametrize("token", ["", "None", "null", "change-me", "admin", "token", "Bearer", ADMIN_TOKEN[:-1],
                                   ADMIN_TOKEN + "x", ADMIN_TOKEN.upper()])
def test_no_default_or_near_miss_token_reloads(served, token):
    response = requests.post(f"{served.url}/reload", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401 and response.json()["field"] == "Authorization"


def test_the_server_never_loads_a_model_named_in_a_request(served):
    """Nothing a client sends picks the model: every answer comes from the production alias."""
    for attempt in ({"model_uri": "file:///tmp/evil.pkl"}, {"version": "7"}, {"model": "runs:/x/model"}):
        response = requests.post(f"{served.url}/reload", params=attempt, data=attempt,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        assert response.status_code == 200 and response.json()["version"] == "1"
        assert requests.get(f"{served.url}/prediction", params=attempt, timeout=5).status_code == 400


@pytest.mark.parametrize("raw, status", [
    (b"GET /prediction?date=" + b"9" * 6000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # request line over the limit
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),  # a space in a header name
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
])
def test_requests_gunicorn_refuses_itself_get_json_errors_too(served, raw, status):
    import socket

    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"\r\nContent-Type: application/json\r\n" in head
    error = json.loads(body)
    assert set(error) == {"error", "field"} and "request" in error["error"], error
