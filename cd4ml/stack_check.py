"""stack-check: does the workshop stack `docker compose up -d --build` started do its job?

One line per part, `ok` or what is wrong and how to fix it: MLflow, Jenkins (the job and its
last build), the model server (ready, which version), a forecast's event searchable in
Elasticsearch, the Kibana data views and dashboard, fluentd's buffer. Every request has a
timeout, so a part that does not answer costs seconds, never a hang.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from cd4ml.config import StackSettings

# What kibana/setup.sh creates (kibana/data-view*.json, kibana/dashboard.ndjson), as saved objects.
KIBANA_OBJECTS = (("index-pattern", "cd4ml-model-events"), ("index-pattern", "cd4ml-monitoring-reports"),
                  ("dashboard", "cd4ml-predictions"))
FLUENTD_OUTPUT = "model_events_to_elasticsearch"  # the @id of the Elasticsearch output in fluent.conf
EVENT_INDEX = "model-*"
# Elasticsearch 9 wants both headers versioned, or neither (RestCompatibleVersionHelper).
ES_JSON = "application/vnd.elasticsearch+json; compatible-with=9"
PROBE_DATE = "2016-08-16"  # the forecast stack-check asks for, for the first product the model knows


@dataclass(frozen=True)
class Part:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<13} {self.detail}"


class Unreachable(Exception):
    """No HTTP answer at all: refused, timed out, or not HTTP."""


class Http:
    """requests with this check's timeout on every call; no answer raises Unreachable."""

    def __init__(self, timeout: float) -> None:
        import requests

        self.session = requests.Session()
        self.timeout = timeout
        self.failure = requests.RequestException

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """The requests.Response."""
        try:
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except self.failure as err:
            raise Unreachable(_reason(err)) from None


def _reason(err: Exception) -> str:
    text = str(err)
    for short in ("Connection refused", "timed out", "Name or service not known", "Temporary failure in name resolution"):
        if short in text:
            return short.lower()
    return type(err).__name__


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _es_error(answer: Any) -> str:
    """Elasticsearch's error as `type: reason` (the deepest cause), or the start of the body."""
    error = (_json(answer) or {}).get("error")
    if not isinstance(error, dict):
        return str(error or answer.text[:200])
    cause = error.get("caused_by") or error
    return f"{error.get('type')}: {cause.get('reason')}"


def _down(what: str, url: str, why: str, service: str) -> str:
    return f"no answer from {what} at {url} ({why}): start it with `docker compose up -d {service}`; " \
           f"see `docker compose logs {service}`"


def check_mlflow(http: Http, s: StackSettings) -> Part:
    try:
        answer = http.call("GET", f"{s.mlflow_url}/health")
    except Unreachable as err:
        return Part("mlflow", False, _down("MLflow", s.mlflow_url, str(err), "mlflow"))
    if answer.status_code != 200:
        return Part("mlflow", False, f"{s.mlflow_url}/health answered HTTP {answer.status_code}: see `docker compose logs mlflow`")
    return Part("mlflow", True, f"answers at {s.mlflow_url}")


def check_jenkins(http: Http, s: StackSettings) -> Part:
    job_url = f"{s.jenkins_url}/job/{s.jenkins_job}"
    auth = (s.jenkins_user, s.jenkins_password) if s.jenkins_password else None
    try:
        answer = http.call("GET", f"{job_url}/api/json", auth=auth,
                           params={"tree": "name,lastBuild[number,result,building]"})
    except Unreachable as err:
        return Part("jenkins", False, _down("Jenkins", s.jenkins_url, str(err), "jenkins"))
    if answer.status_code in (401, 403):
        fix = ("the password in jenkins/jenkins-admin-password.txt (or CD4ML_STACK_JENKINS_PASSWORD) is not "
               f"{s.jenkins_user}'s: Jenkins took the one the file had at its first start") if auth else \
              "no password: write it to jenkins/jenkins-admin-password.txt or set CD4ML_STACK_JENKINS_PASSWORD"
        return Part("jenkins", False, f"Jenkins refused the login (HTTP {answer.status_code}): {fix}")
    if answer.status_code == 404:
        return Part("jenkins", False, f"Jenkins has no job {s.jenkins_job!r}: jenkins/casc.yaml creates it at start; "
                                      "see `docker compose logs jenkins` (Job DSL)")
    job = _json(answer)
    if answer.status_code != 200 or not isinstance(job, dict):
        return Part("jenkins", False, f"{job_url}/api/json answered HTTP {answer.status_code}: see `docker compose logs jenkins`")
    build = job.get("lastBuild")
    if not build:
        return Part("jenkins", False, f"job {s.jenkins_job} has no build yet: commit a change, or Build Now at {job_url}")
    number = build.get("number")
    if build.get("building"):
        return Part("jenkins", True, f"job {s.jenkins_job}: build #{number} is running")
    if build.get("result") != "SUCCESS":
        return Part("jenkins", False, f"job {s.jenkins_job}: last build #{number} {build.get('result')}; "
                                      f"read why at {job_url}/{number}/console")
    return Part("jenkins", True, f"job {s.jenkins_job}: last build #{number} SUCCESS")


def check_model(http: Http, s: StackSettings) -> tuple[Part, dict[str, Any] | None]:
    """The part, and the /version of a ready server (None when it cannot forecast)."""
    try:
        health = http.call("GET", f"{s.model_url}/health")
        version = _json(http.call("GET", f"{s.model_url}/version")) if health.status_code == 200 else None
    except Unreachable as err:
        return Part("model server", False, _down("the model server", s.model_url, str(err), "model")), None
    if health.status_code == 503:
        reason = (_json(health) or {}).get("reason", "no model")
        return Part("model server", False, f"not ready: {reason} Run the Jenkins job (its Deploy stage) to give "
                                           "`production` a model."), None
    if health.status_code != 200 or not isinstance(version, dict):
        return Part("model server", False, f"{s.model_url}/health answered HTTP {health.status_code}: "
                                           "see `docker compose logs model`"), None
    return Part("model server", True, f"ready, serving model version {version.get('model_version')} "
                                      f"(run {version.get('run_id')})"), version


def check_events(http: Http, s: StackSettings, served: dict[str, Any] | None,
                 now: Callable[[], datetime], sleep: Callable[[float], None]) -> Part:
    """Ask the model server for one forecast, then search Elasticsearch for its event."""
    if served is None:
        return Part("events", False, "not checked: the model server cannot forecast yet (see its line)")
    started = now() - timedelta(seconds=2)  # the containers' clocks are the host's
    try:
        items = _json(http.call("GET", f"{s.model_url}/items")) or [{}]
        item = items[0].get("item_nbr")
        forecast = http.call("GET", f"{s.model_url}/prediction", params={"date": PROBE_DATE, "item_nbr": item})
    except Unreachable as err:
        return Part("events", False, _down("the model server", s.model_url, str(err), "model"))
    if forecast.status_code != 200:
        return Part("events", False, f"the forecast for item {item} answered HTTP {forecast.status_code}: "
                                     f"{(_json(forecast) or {}).get('error', forecast.text[:200])}")
    query = {"size": 1, "query": {"bool": {"filter": [
        {"term": {"item_nbr": item}}, {"term": {"date": PROBE_DATE}},
        {"range": {"@timestamp": {"gte": started.strftime("%Y-%m-%dT%H:%M:%S.000Z")}}}]}}}
    auth = (s.elastic_user, s.elastic_password) if s.elastic_password else None
    deadline = time.monotonic() + s.event_seconds
    while True:
        try:
            answer = http.call("POST", f"{s.elasticsearch_url}/{EVENT_INDEX}/_search", json=query, auth=auth,
                               headers={"Accept": ES_JSON, "Content-Type": ES_JSON})
        except Unreachable as err:
            return Part("events", False, _down("Elasticsearch", s.elasticsearch_url, str(err), "elasticsearch"))
        if answer.status_code == 401:
            return Part("events", False, "Elasticsearch refused user elastic: set ELASTIC_PASSWORD (in .env, as at "
                                         "the first start of Elasticsearch)")
        if answer.status_code != 200:
            return Part("events", False, f"Elasticsearch answered the search with HTTP {answer.status_code}: "
                                         f"{_es_error(answer)}")
        if ((_json(answer) or {}).get("hits", {}).get("total", {}).get("value") or 0) >= 1:
            waited = (now() - started).total_seconds() - 2
            return Part("events", True, f"a forecast's event was searchable in {EVENT_INDEX} after {max(waited, 0):.0f} s")
        if time.monotonic() >= deadline:
            return Part("events", False, f"a forecast made at {started:%H:%M:%S} UTC is not in Elasticsearch after "
                                         f"{s.event_seconds:.0f} s: see `docker compose logs fluentd` (retries, HTTP 400s)")
        sleep(min(2.0, max(deadline - time.monotonic(), 0.05)))


def check_kibana(http: Http, s: StackSettings) -> Part:
    auth = (s.elastic_user, s.elastic_password) if s.elastic_password else None
    missing = []
    for kind, object_id in KIBANA_OBJECTS:
        try:
            answer = http.call("GET", f"{s.kibana_url}/api/saved_objects/{kind}/{object_id}", auth=auth,
                               headers={"kbn-xsrf": "true"})
        except Unreachable as err:
            return Part("kibana", False, _down("Kibana", s.kibana_url, str(err), "kibana"))
        if answer.status_code == 401:
            return Part("kibana", False, "Kibana refused user elastic: set ELASTIC_PASSWORD (in .env)")
        if answer.status_code == 404:
            missing.append(f"{kind} {object_id}")
        elif answer.status_code != 200:
            return Part("kibana", False, f"Kibana answered HTTP {answer.status_code} for {kind} {object_id}: "
                                         "see `docker compose logs kibana`")
    if missing:
        return Part("kibana", False, f"missing {', '.join(missing)}: run `docker compose up kibana-setup`")
    return Part("kibana", True, "data views model-* and cd4ml-monitoring*, dashboard Predictions")


def fluentd_buffer(http: Http, s: StackSettings) -> dict[str, Any] | str:
    """The Elasticsearch output's monitor-agent figures, or what went wrong."""
    try:
        answer = http.call("GET", f"{s.fluentd_url}/api/plugins.json", params={"@id": FLUENTD_OUTPUT})
    except Unreachable as err:
        return _down("fluentd's monitor agent", s.fluentd_url, str(err), "fluentd")
    plugins = (_json(answer) or {}).get("plugins") if answer.status_code == 200 else None
    if not plugins:
        return f"fluentd has no output {FLUENTD_OUTPUT!r} (HTTP {answer.status_code}): check fluentd/fluent.conf"
    return plugins[0]


def check_fluentd(before: dict[str, Any] | str, after: dict[str, Any] | str) -> Part:
    """Not growing: no new retries, and no more waiting in the buffer than before."""
    for sample in (before, after):
        if isinstance(sample, str):
            return Part("fluentd", False, sample)
    retries = (after.get("retry_count") or 0) - (before.get("retry_count") or 0)
    queued, was = after.get("buffer_total_queued_size") or 0, before.get("buffer_total_queued_size") or 0
    figures = f"buffer {queued} bytes in {after.get('buffer_queue_length', 0)} chunks, {after.get('retry_count', 0)} retries"
    if retries > 0 or (queued > was and after.get("buffer_queue_length", 0) > 0):
        return Part("fluentd", False, f"{figures}, growing ({retries} new retries): Elasticsearch is refusing events; "
                                      "see `docker compose logs fluentd`")
    return Part("fluentd", True, f"{figures}, not growing")


def run_checks(s: StackSettings, http: Http | None = None, now: Callable[[], datetime] | None = None,
               sleep: Callable[[float], None] = time.sleep) -> list[Part]:
    """Every part, in the order a prediction travels; fluentd is looked at before and after."""
    http = http or Http(s.timeout_seconds)
    now = now or (lambda: datetime.now(timezone.utc))
    started = time.monotonic()
    before = fluentd_buffer(http, s)
    parts = [check_mlflow(http, s), check_jenkins(http, s)]
    model, served = check_model(http, s)
    parts += [model, check_events(http, s, served, now, sleep), check_kibana(http, s)]
    if not isinstance(before, str):
        sleep(max(s.buffer_seconds - (time.monotonic() - started), 0))
    return parts + [check_fluentd(before, fluentd_buffer(http, s) if not isinstance(before, str) else before)]
