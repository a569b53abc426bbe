"""`run_python_script.py stack-check`, against what runs here and stand-ins for what cannot.

REAL here: the `mlflow server` (tests/conftest.py) and the model server (`serve`, gunicorn), with
a model trained, gated and deployed by the CLI, sending its events with fluent-logger over TCP.
STAND-INS (tests/stand_ins.py, each keeping the real server's rules stack-check relies on):
Jenkins, Elasticsearch, Kibana and fluentd, which need a Docker engine or a JVM.
"""

from __future__ import annotations

import pytest

from cd4ml.stack_check import FLUENTD_OUTPUT, KIBANA_OBJECTS
from tests.conftest import free_port
from tests.real_stack import Server, cli_env, cli_here, deliver
from tests.stack.files import load_json, read
from tests.stand_ins import ES9, Elasticsearch, Fluentd, basic_auth, jenkins, kibana

ES_AUTH = ("elastic", "es-password")
SUCCESS = {"number": 7, "result": "SUCCESS", "building": False}


def nowhere() -> str:
    """A URL where nothing listens: a free port on localhost."""
    return f"http://127.0.0.1:{free_port()}"


def stack_env(base: dict[str, str], **urls: str) -> dict[str, str]:
    """The environment of a stack-check run: every URL nowhere unless given, the stand-ins'
    passwords; an upper-case keyword is a variable of its own."""
    env = {**base, "JENKINS_ADMIN_USER": "admin", "CD4ML_STACK_JENKINS_PASSWORD": "jenkins-password",
           "ELASTIC_PASSWORD": ES_AUTH[1], "CD4ML_STACK_EVENT_SECONDS": "20", "CD4ML_STACK_BUFFER_SECONDS": "1",
           "CD4ML_STACK_TIMEOUT_SECONDS": "3"}
    for name in ("mlflow", "jenkins", "model", "elasticsearch", "kibana", "fluentd"):
        env[f"CD4ML_STACK_{name.upper()}_URL"] = urls.get(name) or nowhere()
    env.update({key: value for key, value in urls.items() if key.isupper()})
    return env


def lines(result) -> dict[str, str]:
    """stack-check's output: part name -> its line."""
    found = {}
    for line in result.stdout.splitlines():
        status, name = line[:4].strip(), line[6:19].strip()
        found[name] = line
        assert status in {"ok", "FAIL"}, line
    return found


@pytest.fixture(scope="module")
def elasticsearch():
    with Elasticsearch(*ES_AUTH) as es:
        yield es


@pytest.fixture(scope="module")
def fluentd(elasticsearch):
    with Fluentd(elasticsearch.url, ES_AUTH) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def model_server(mlflow_server, tiny_data, tmp_path_factory, fluentd):
    """The real model server, serving a model the CLI delivered, its events to the fluentd stand-in."""
    folder = tmp_path_factory.mktemp("stack-check")
    env = {**cli_env(folder, mlflow_server), "FLUENTD_HOST": "127.0.0.1", "FLUENTD_PORT": str(fluentd.port)}
    deliver(env, tiny_data)
    server = Server(env, folder / "serve.log")
    try:
        server.wait_ready()
        yield server, env
    finally:
        server.stop()


def test_every_part_ok_exits_0_with_one_line_each(model_server, mlflow_server, elasticsearch, fluentd):
    server, env = model_server
    with jenkins({"cd4ml": SUCCESS}) as ci, kibana(set(KIBANA_OBJECTS)) as kb:
        result = cli_here(stack_env(env, mlflow=mlflow_server, jenkins=ci.url, model=server.url,
                                    elasticsearch=elasticsearch.url, kibana=kb.url, fluentd=fluentd.monitor_url),
                          "stack-check")
    found = lines(result)
    assert list(found) == ["mlflow", "jenkins", "model server", "events", "kibana", "fluentd"], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(line.startswith("ok") for line in found.values()), result.stdout
    assert "last build #7 SUCCESS" in found["jenkins"]
    assert "serving model version 1" in found["model server"]
    assert "searchable in model-*" in found["events"] and "not growing" in found["fluentd"]
    searches = [r for r in elasticsearch.server.requests if r["path"].endswith("/_search")]
    assert searches and all(r["headers"]["Accept"] == ES9 == r["headers"]["Content-Type"] for r in searches)
    assert all(r["headers"]["Authorization"] == basic_auth(*ES_AUTH) for r in elasticsearch.server.requests)


def test_nothing_running_fails_every_part_with_its_fix_and_exits_3(tmp_path):
    result = cli_here(stack_env(cli_env(tmp_path, "http://unused")), "stack-check")
    found = lines(result)
    assert result.returncode == 3, result.stdout + result.stderr
    assert all(line.startswith("FAIL") for line in found.values()), result.stdout
    for name, service in (("mlflow", "mlflow"), ("jenkins", "jenkins"), ("model server", "model"),
                          ("kibana", "kibana"), ("fluentd", "fluentd")):
        assert "connection refused" in found[name] and f"docker compose up -d {service}" in found[name], found[name]
    assert "not checked: the model server cannot forecast yet" in found["events"]
    assert result.stderr == ""  # no traceback


def test_events_elasticsearch_refuses_fail_the_events_and_fluentd_lines(model_server, elasticsearch, tmp_path):
    """fluentd with suppress_type_name sends a plain Accept beside a versioned Content-Type:
    Elasticsearch 9 answers 400 media_type_header_exception, and fluentd retries forever."""
    server, env = model_server
    with Elasticsearch(*ES_AUTH) as es, Fluentd(es.url, ES_AUTH, accept=None) as broken:
        other = {**cli_env(tmp_path, env["MLFLOW_TRACKING_URI"]), "FLUENTD_HOST": "127.0.0.1",
                 "FLUENTD_PORT": str(broken.port),
                 "CD4ML_TRACKING_REGISTERED_MODEL": env["CD4ML_TRACKING_REGISTERED_MODEL"]}
        second = Server(other, tmp_path / "serve.log")
        try:
            second.wait_ready()
            result = cli_here(stack_env(other, model=second.url, elasticsearch=es.url, fluentd=broken.monitor_url,
                                        CD4ML_STACK_EVENT_SECONDS="3"), "stack-check")
        finally:
            second.stop()
        bulks = [r for r in es.server.requests if r["path"] == "/_bulk"]
    found = lines(result)
    assert result.returncode == 3
    assert found["model server"].startswith("ok")
    assert found["events"].startswith("FAIL") and "is not in Elasticsearch after" in found["events"], found["events"]
    assert found["fluentd"].startswith("FAIL") and "growing" in found["fluentd"], found["fluentd"]
    assert bulks and es.docs == []  # fluentd tried, Elasticsearch refused every bulk request


def test_a_failed_last_build_or_a_missing_job_fails_the_jenkins_line(tmp_path):
    env = cli_env(tmp_path, "http://unused")
    failed = {"number": 3, "result": "FAILURE", "building": False}
    with jenkins({"cd4ml": failed}) as ci:
        result = cli_here(stack_env(env, jenkins=ci.url), "stack-check")
    assert f"last build #3 FAILURE; read why at {ci.url}/job/cd4ml/3/console" in lines(result)["jenkins"]
    with jenkins({"other": SUCCESS}) as ci:
        result = cli_here(stack_env(env, jenkins=ci.url), "stack-check")
    assert "Jenkins has no job 'cd4ml'" in lines(result)["jenkins"]
    with jenkins({"cd4ml": None}) as ci:
        result = cli_here(stack_env(env, jenkins=ci.url), "stack-check")
    assert "has no build yet" in lines(result)["jenkins"]
    with jenkins({"cd4ml": {"number": 4, "result": None, "building": True}}) as ci:
        result = cli_here(stack_env(env, jenkins=ci.url), "stack-check")
    assert lines(result)["jenkins"].startswith("ok") and "build #4 is running" in lines(result)["jenkins"]


def test_a_wrong_password_names_the_file_to_fix(tmp_path):
    env = cli_env(tmp_path, "http://unused")
    with jenkins({"cd4ml": SUCCESS}, password="another") as ci, kibana(set(KIBANA_OBJECTS), password="other") as kb:
        result = cli_here(stack_env(env, jenkins=ci.url, kibana=kb.url), "stack-check")
    found = lines(result)
    assert "Jenkins refused the login (HTTP 401)" in found["jenkins"] and "jenkins-admin-password.txt" in found["jenkins"]
    assert "Kibana refused user elastic: set ELASTIC_PASSWORD" in found["kibana"]


def test_a_missing_dashboard_says_to_run_kibana_setup(tmp_path):
    without = set(KIBANA_OBJECTS) - {("dashboard", "cd4ml-predictions")}
    with kibana(without) as kb:
        result = cli_here(stack_env(cli_env(tmp_path, "http://unused"), kibana=kb.url), "stack-check")
    line = lines(result)["kibana"]
    assert line.startswith("FAIL") and "missing dashboard cd4ml-predictions" in line
    assert "docker compose up kibana-setup" in line


def test_a_server_without_a_model_fails_the_model_line_and_skips_the_event(mlflow_server, tmp_path):
    env = cli_env(tmp_path, mlflow_server)  # a registered model of its own, never deployed
    server = Server(env, tmp_path / "serve.log")
    try:
        server.wait_listening()
        result = cli_here(stack_env(env, mlflow=mlflow_server, model=server.url), "stack-check")
    finally:
        server.stop()
    found = lines(result)
    assert found["mlflow"].startswith("ok")
    assert found["model server"].startswith("FAIL  model server  not ready:") and "Deploy stage" in found["model server"]
    assert found["events"].startswith("FAIL") and "not checked" in found["events"]


def test_bad_settings_exit_2_with_the_variable_to_fix(tmp_path):
    env = {**stack_env(cli_env(tmp_path, "http://unused")), "CD4ML_STACK_KIBANA_URL": "localhost:5601"}
    result = cli_here(env, "stack-check")
    assert result.returncode == 2
    assert "CD4ML_STACK_KIBANA_URL must start with http:// or https://" in result.stderr


# --- what stack-check looks for is what the stack's files create -----------------------------------

def test_the_objects_and_the_output_it_looks_for_are_the_ones_the_stack_creates():
    views = {("index-pattern", load_json(f"kibana/{name}")["data_view"]["id"])
             for name in ("data-view.json", "data-view-monitoring.json")}
    dashboards = {("dashboard", line.split('"id":"', 1)[1].split('"', 1)[0])
                  for line in read("kibana/dashboard.ndjson").splitlines() if '"type":"dashboard"' in line}
    assert set(KIBANA_OBJECTS) == views | dashboards
    assert f"@id {FLUENTD_OUTPUT}" in read("fluentd/fluent.conf")


# --- the stand-ins keep the rules stack-check relies on ------------------------------------------------

def test_the_elasticsearch_stand_in_refuses_one_sided_compatible_headers():
    import requests

    with Elasticsearch(*ES_AUTH) as es:
        plain = requests.post(f"{es.url}/model-*/_search", json={"query": {"bool": {"filter": []}}},
                              headers={"Accept": "*/*", "Content-Type": ES9}, auth=ES_AUTH, timeout=5)
        anonymous = requests.post(f"{es.url}/model-*/_search", json={}, headers={"Accept": ES9, "Content-Type": ES9},
                                  timeout=5)
        both = requests.post(f"{es.url}/model-*/_search", json={"query": {"bool": {"filter": []}}},
                             headers={"Accept": ES9, "Content-Type": ES9}, auth=ES_AUTH, timeout=5)
    assert plain.status_code == 400 and plain.json()["error"]["type"] == "media_type_header_exception"
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "security_exception"
    assert both.status_code == 200 and both.headers["X-Elastic-Product"] == "Elasticsearch"


def test_the_kibana_and_jenkins_stand_ins_keep_xsrf_auth_and_crumbs():
    import requests

    with kibana(set(KIBANA_OBJECTS)) as kb, jenkins({"cd4ml": SUCCESS}) as ci:
        no_xsrf = requests.post(f"{kb.url}/api/saved_objects/_bulk_get", json=[], auth=ES_AUTH, timeout=5)
        anonymous = requests.get(f"{ci.url}/job/cd4ml/api/json", timeout=5)
        no_crumb = requests.post(f"{ci.url}/job/cd4ml/build", auth=("admin", "jenkins-password"), timeout=5)
    assert no_xsrf.status_code == 400 and no_xsrf.json()["message"] == "Request must contain a kbn-xsrf header."
    assert anonymous.status_code == 403 and no_crumb.status_code == 403


def test_the_docs_and_make_offer_the_command():
    assert "stack-check:" in read("Makefile") and "run_python_script.py stack-check" in read("Makefile")
    assert "`stack-check`" in read("README.md")
    assert "stack-check" in read("docs/stack.md")
