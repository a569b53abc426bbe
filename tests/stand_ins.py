"""STAND-INS for the servers that cannot run here (no Docker engine, no JVM services): Jenkins,
Elasticsearch, Kibana and fluentd. Each is a small HTTP or TCP server on 127.0.0.1 that keeps
the real server's rules our code depends on, cited from upstream source, and nothing else:

- Elasticsearch 9 (elastic/elasticsearch, server/src/main/java/org/elasticsearch/rest/
  RestCompatibleVersionHelper.java): a request with a body must carry a compatible-with version
  on both Accept and Content-Type, or on neither, and the versions must match; otherwise 400
  media_type_header_exception. Security on: no or wrong basic auth is 401 security_exception.
  Answers carry `X-Elastic-Product: Elasticsearch`, which the official clients insist on.
- Kibana (elastic/kibana, src/core/server/http/integration_tests/lifecycle_handlers.test.ts): a
  request other than GET/HEAD without `kbn-xsrf` is 400 "Request must contain a kbn-xsrf header.";
  no or wrong basic auth is 401; a saved object that does not exist is 404.
- Jenkins (jenkins core): anonymous read is off (casc.yaml), so an anonymous API call is 403 and a
  wrong password 401; a POST needs the crumb of GET /crumbIssuer/api/json (field Jenkins-Crumb),
  else 403; GET /job/<name>/api/json is the job with `lastBuild` {number, result, building} or null.
- fluentd: in_forward takes msgpack [tag, time, record] messages (as test_events_fluent reads
  them); the Elasticsearch output posts them to /_bulk with fluent-plugin-elasticsearch 6.0.0's
  ES 9 headers; in_monitor_agent (fluentd v1.19.3 lib/fluent/plugin/in_monitor_agent.rb) answers
  GET /api/plugins.json?@id=ID with {"plugins": [{"plugin_id", "buffer_queue_length",
  "buffer_total_queued_size", "retry_count", ...}]}.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

Route = Callable[[str, str, bytes], tuple]  # (status, JSON value or text[, extra headers])
Rule = Callable[[str, str, dict[str, str], bytes], "tuple[int, Any] | None"]
ES9 = "application/vnd.elasticsearch+json; compatible-with=9"
ES9_NDJSON = "application/vnd.elasticsearch+x-ndjson; compatible-with=9"


class FakeServer:
    """An HTTP server on 127.0.0.1 that records every request, applies `rules` (the first that
    answers wins), then answers from `route`."""

    def __init__(self, route: Route, rules: tuple[Rule, ...] = (), headers: dict[str, str] | None = None):
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = dict(self.headers)
                server.requests.append({"method": self.command, "path": self.path, "headers": seen, "body": body})
                extra: list = []
                for rule in rules:
                    refused = rule(self.command, self.path, {k.lower(): v for k, v in seen.items()}, body)
                    if refused:
                        status, answer = refused
                        break
                else:
                    status, answer, *extra = route(self.command, self.path, body)
                payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
                for name, value in {**(headers or {}), **(extra[0] if extra else {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def find(self, method: str, path_start: str) -> dict[str, Any]:
        (found,) = [r for r in self.requests if r["method"] == method and r["path"].startswith(path_start)]
        return found


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def needs_basic_auth(user: str, password: str, missing: int = 401, wrong: int = 401,
                     body: Callable[[int], Any] = lambda status: {"status": status}) -> Rule:
    def rule(method, path, headers, raw):
        given = headers.get("authorization")
        if given is None:
            return missing, body(missing)
        if given != basic_auth(user, password):
            return wrong, body(wrong)
        return None
    return rule


# --- Elasticsearch -------------------------------------------------------------------------------

def _compatible_with(value: str | None) -> str | None:
    found = re.search(r"compatible-with=(\d+)", value or "")
    return found.group(1) if found else None


def es_media_type_rule(method, path, headers, body) -> tuple[int, Any] | None:
    """RestCompatibleVersionHelper: with a body, both headers versioned (and equal) or neither."""
    if not body:
        return None
    accept, content = _compatible_with(headers.get("accept")), _compatible_with(headers.get("content-type"))
    if accept == content:
        return None
    reason = (f"A compatible version is required on both Content-Type and Accept headers if either one has "
              f"requested a compatible version. Accept={headers.get('accept')}, Content-Type={headers.get('content-type')}")
    error = {"type": "media_type_header_exception", "reason": "Invalid media-type value on headers [Accept, Content-Type]",
             "caused_by": {"type": "status_exception", "reason": reason}}
    return 400, {"error": {"root_cause": [error], **error}, "status": 400}


def es_security_body(status: int) -> Any:
    reason = "missing authentication credentials for REST request" if status == 401 else "forbidden"
    error = {"type": "security_exception", "reason": reason}
    return {"error": {"root_cause": [error], **error}, "status": status}


class Elasticsearch:
    """Bulk in, search out, for the prediction events: a list of documents, term and range filters."""

    def __init__(self, user: str = "elastic", password: str = "es-password") -> None:
        self.docs: list[dict[str, Any]] = []
        self.refused = 0  # requests answered with a 4xx
        self.server = FakeServer(self.route, (needs_basic_auth(user, password, body=es_security_body), es_media_type_rule),
                                 headers={"X-Elastic-Product": "Elasticsearch"})
        self.url = self.server.url

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)

    def route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        route = urlsplit(path).path
        if method in ("POST", "PUT") and route == "/_bulk":
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            items = []
            for action, document in zip(lines[::2], lines[1::2]):
                self.docs.append({"_index": action["index"]["_index"], **document})
                items.append({"index": {"_index": action["index"]["_index"], "status": 201, "result": "created"}})
            return 200, {"took": 1, "errors": False, "items": items}
        if method == "POST" and route.endswith("/_search"):
            hits = [d for d in self.docs if _matches(d, json.loads(body)["query"])]
            return 200, {"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits), "relation": "eq"},
                                                                 "hits": [{"_source": d} for d in hits[:1]]}}
        return 404, {"error": {"type": "not_found", "reason": f"no route {method} {path}"}, "status": 404}


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for clause in query["bool"]["filter"]:
        if "term" in clause:
            ((field, value),) = clause["term"].items()
            if doc.get(field) != value:
                return False
        else:
            ((field, limits),) = clause["range"].items()
            if not doc.get(field, "") >= limits["gte"]:
                return False
    return True


# --- fluentd ---------------------------------------------------------------------------------------

class Listener:
    """A TCP server on a free localhost port; `read` decides whether it ever reads what it gets
    (msgpack forward messages, kept in `messages`)."""

    def __init__(self, read: bool, port: int = 0) -> None:
        self.read = read
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.server.bind(("127.0.0.1", port))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.messages: list[list] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            if self.read:
                threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        import msgpack

        unpacker = msgpack.Unpacker()
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            unpacker.feed(chunk)
            self.messages.extend(unpacker)

    def close(self) -> None:
        self._closed = True
        for conn in [self.server, *self.connections]:
            try:
                conn.close()
            except OSError:
                pass


class Fluentd:
    """in_forward on a free port, a file-buffer-like queue flushed to Elasticsearch's /_bulk every
    `flush_seconds` with the plugin's headers (`accept` None: the plain Accept that
    suppress_type_name leaves), and the monitor agent's /api/plugins.json."""

    def __init__(self, es_url: str, auth: tuple[str, str], accept: str | None = ES9_NDJSON,
                 plugin_id: str = "model_events_to_elasticsearch", flush_seconds: float = 0.2) -> None:
        import requests

        self.listener = Listener(read=True)
        self.port = self.listener.port
        self.es_url, self.auth, self.accept, self.plugin_id = es_url, auth, accept, plugin_id
        self.queue: list[dict[str, Any]] = []
        self.retry_count = 0
        self._session = requests.Session()
        self._stop = threading.Event()
        self._flush_seconds = flush_seconds
        self.agent = FakeServer(self.monitor_agent)

    def __enter__(self):
        self.agent.__enter__()
        threading.Thread(target=self._flush_loop, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.agent.__exit__(*exc)
        self.listener.close()

    @property
    def monitor_url(self) -> str:
        return self.agent.url

    def monitor_agent(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(path)
        if parts.path != "/api/plugins.json":
            return 404, {"message": "Not found"}
        wanted = parse_qs(parts.query).get("@id", [None])[0]
        if wanted not in (None, self.plugin_id):
            return 200, {"plugins": []}
        queued = sum(len(json.dumps(r)) for r in self.queue)
        return 200, {"plugins": [{"plugin_id": self.plugin_id, "plugin_category": "output", "type": "elasticsearch",
                                  "output_plugin": True, "buffer_queue_length": 1 if self.queue else 0,
                                  "buffer_timekeys": [], "buffer_total_queued_size": queued,
                                  "retry_count": self.retry_count, "emit_records": len(self.listener.messages)}]}

    def _flush_loop(self) -> None:
        taken = 0
        while not self._stop.wait(self._flush_seconds):
            messages = self.listener.messages
            self.queue.extend(m[2] for m in messages[taken:] if isinstance(m, list) and len(m) == 3)
            taken = len(messages)
            if self.queue:
                self._flush()

    def _flush(self) -> None:
        lines = []
        for record in self.queue:
            index = "model-" + record.get("@timestamp", "1970-01-01")[:10].replace("-", ".")
            lines += [json.dumps({"index": {"_index": index}}), json.dumps(record)]
        headers = {"Content-Type": ES9_NDJSON, "Accept": self.accept or "*/*"}
        try:
            answer = self._session.post(f"{self.es_url}/_bulk", data="\n".join(lines) + "\n", headers=headers,
                                        auth=self.auth, timeout=5)
        except Exception:
            self.retry_count += 1
            return
        if answer.status_code == 200 and not answer.json().get("errors"):
            self.queue.clear()
        else:
            self.retry_count += 1


# --- Kibana and Jenkins ----------------------------------------------------------------------------

def kibana_xsrf_rule(method, path, headers, body) -> tuple[int, Any] | None:
    if method not in ("GET", "HEAD") and "kbn-xsrf" not in headers:
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."}
    return None


def kibana(objects: set[tuple[str, str]], user: str = "elastic", password: str = "es-password") -> FakeServer:
    """Kibana with these saved objects (type, id)."""
    def route(method, path, body):
        found = re.fullmatch(r"/api/saved_objects/([\w-]+)/([\w-]+)", urlsplit(path).path)
        if method == "GET" and found:
            kind, object_id = found.groups()
            if (kind, object_id) in objects:
                return 200, {"id": object_id, "type": kind, "attributes": {}, "references": []}
            return 404, {"statusCode": 404, "error": "Not Found", "message": f"Saved object [{kind}/{object_id}] not found"}
        return 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
    unauthorized = lambda status: {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}  # noqa: E731
    return FakeServer(route, (needs_basic_auth(user, password, body=unauthorized), kibana_xsrf_rule))


def jenkins(jobs: dict[str, dict[str, Any] | None], user: str = "admin", password: str = "jenkins-password",
            next_result: str = "SUCCESS") -> FakeServer:
    """Jenkins with these jobs: name -> lastBuild ({number, result, building}) or None. POST
    /job/<name>/build queues a build (201, Location: the queue item), which has started by the
    first look at its queue item, and ends with `next_result` by the first look at the run."""
    crumb = "crumb-0123"
    queued: dict[int, tuple[str, int]] = {}  # queue item -> (job, build number)
    looked: set[int] = set()

    def crumb_rule(method, path, headers, body):
        if method == "POST" and headers.get("jenkins-crumb") != crumb:
            return 403, {"message": "No valid crumb was included in the request"}
        return None

    def route(method, path, body):
        route_ = urlsplit(path).path
        if method == "GET" and route_ == "/crumbIssuer/api/json":
            return 200, {"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": crumb, "crumbRequestField": "Jenkins-Crumb"}
        found = re.fullmatch(r"/job/([\w.-]+)/(api/json|build|(\d+)/api/json|(\d+)/consoleText)", route_)
        if not found or found.group(1) not in jobs:
            return 404, {"message": "Not Found"}
        name, what = found.group(1), found.group(2)
        last = jobs[name]
        if method == "GET" and what == "api/json":
            return 200, {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": name,
                         "lastBuild": None if last is None else {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", **last}}
        if method == "POST" and what == "build":
            item = 100 + len(queued)
            queued[item] = (name, (last or {}).get("number", 0) + 1)
            return 201, "", {"Location": f"{server.url}/queue/item/{item}/"}
        number = int(found.group(3) or found.group(4))
        if what.endswith("consoleText"):
            return 200, f"Started by user admin\n[Pipeline] {{ (Test)\nFinished: {next_result}\n"
        done = number in looked
        looked.add(number)
        jobs[name] = {"number": number, "result": next_result if done else None, "building": not done}
        return 200, {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", **jobs[name]}

    def queue_route(method, path, body):
        found = re.fullmatch(r"/queue/item/(\d+)/api/json", urlsplit(path).path)
        if method == "GET" and found and int(found.group(1)) in queued:
            name, number = queued[int(found.group(1))]
            return 200, {"_class": "hudson.model.Queue$LeftItem", "executable": {"number": number,
                                                                                "url": f"{server.url}/job/{name}/{number}/"}}
        return route(method, path, body)

    server = FakeServer(queue_route, (needs_basic_auth(user, password, missing=403), crumb_rule))
    return server


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
