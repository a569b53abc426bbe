"""fluentd/fluent.conf through a small parser of fluentd's v1 syntax, and fluentd/Dockerfile."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.stack.files import FLUENT_TAG, read
from tests.stack.pins import gem_pins


@dataclass
class Directive:
    """<name arg> ... </name>: parameters in order of appearance, and nested directives."""

    name: str
    arg: str = ""
    params: dict[str, str] = field(default_factory=dict)
    children: list["Directive"] = field(default_factory=list)

    def all(self, name: str) -> list["Directive"]:
        return [child for child in self.children if child.name == name]

    def one(self, name: str) -> "Directive":
        (found,) = self.all(name)
        return found


class ConfigError(ValueError):
    pass


def strip_comment(line: str) -> str:
    """Drop a # comment, except inside "..." or '...' (e.g. "#{ENV['X']}")."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote and line[i - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:i]
    return line


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_fluent_conf(text: str) -> Directive:
    """Parse fluentd v1 configuration: directives, `key value` parameters, # comments."""
    root = Directive("ROOT")
    stack = [root]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith("</"):
            name = re.fullmatch(r"</\s*([\w.@-]+)\s*>", line)
            if not name or len(stack) == 1 or stack[-1].name != name.group(1):
                raise ConfigError(f"line {number}: unexpected {line!r}")
            stack.pop()
        elif line.startswith("<"):
            opening = re.fullmatch(r"<\s*([\w.@-]+)(?:\s+([^>]*?))?\s*>", line)
            if not opening:
                raise ConfigError(f"line {number}: bad directive {line!r}")
            directive = Directive(opening.group(1), opening.group(2) or "")
            stack[-1].children.append(directive)
            stack.append(directive)
        else:
            key, _, value = line.partition(" ")
            if not re.fullmatch(r"@?[\w]+", key):
                raise ConfigError(f"line {number}: bad parameter {line!r}")
            if key in stack[-1].params:
                raise ConfigError(f"line {number}: {key} given twice in <{stack[-1].name}>")
            stack[-1].params[key] = unquote(value.strip())
    if len(stack) != 1:
        raise ConfigError(f"<{stack[-1].name}> is not closed")
    return root


def tag_regex(pattern: str) -> str:
    """fluentd's <match> pattern as a regex: * one tag part, ** zero or more parts, {a,b} either."""
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith(".**", i):
            regex, i = regex + r"(?:\.[^.]+)*", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + r"(?:[^.]+(?:\.[^.]+)*)?", i + 2
        elif pattern[i] == "*":
            regex, i = regex + r"[^.]+", i + 1
        elif pattern[i] == "{":
            end = pattern.index("}", i)
            regex += "(?:" + "|".join(tag_regex(p) for p in pattern[i + 1:end].split(",")) + ")"
            i = end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return regex


def tag_matches(pattern: str, tag: str) -> bool:
    """Whether <match pattern> takes events with this tag (space-separated patterns: any)."""
    return any(re.fullmatch(tag_regex(p), tag) for p in pattern.split())


@pytest.fixture(scope="module")
def conf() -> Directive:
    return parse_fluent_conf(read("fluentd/fluent.conf"))


@pytest.fixture(scope="module")
def elasticsearch_store(conf) -> Directive:
    (match,) = [m for m in conf.all("match") if tag_matches(m.arg, FLUENT_TAG)]
    (store,) = [s for s in match.all("store") if s.params.get("@type") == "elasticsearch"]
    return store


# --- the parser and the tag matcher can fail -----------------------------------------------------

def test_parser_reads_nested_directives_parameters_and_keeps_hashes_in_quotes():
    tree = parse_fluent_conf('''
        # comment
        <match a.**>
          @type copy   # trailing comment
          <store>
            password "#{ENV['X']}"
          </store>
        </match>''')
    (match,) = tree.all("match")
    assert (match.arg, match.params) == ("a.**", {"@type": "copy"})
    assert match.one("store").params == {"password": "#{ENV['X']}"}


@pytest.mark.parametrize("broken, message", [
    ("<match a>\n@type stdout\n", "not closed"),
    ("<match a>\n</store>\n", "unexpected"),
    ("</match>\n", "unexpected"),
    ("<source>\nport 1\nport 2\n</source>\n", "given twice"),
])
def test_parser_rejects_broken_configuration(broken, message):
    with pytest.raises(ConfigError, match=message):
        parse_fluent_conf(broken)


@pytest.mark.parametrize("pattern, tag, expected", [
    ("model.**", "model.prediction", True),
    ("model.**", "model", True),
    ("model.*", "model.prediction", True),
    ("model.*", "model.prediction.v2", False),
    ("model.**", "modelx.prediction", False),
    ("other.**", "model.prediction", False),
    ("{model,app}.**", "model.prediction", True),
])
def test_tag_matching_follows_fluentd(pattern, tag, expected):
    assert tag_matches(pattern, tag) is expected


# --- fluent.conf --------------------------------------------------------------------------------

def test_forward_input_listens_on_24224_for_the_model_server(conf):
    (source,) = [s for s in conf.all("source") if s.params["@type"] == "forward"]
    assert source.params == {"@type": "forward", "port": "24224", "bind": "0.0.0.0"}


def test_monitor_agent_shows_the_buffer_to_stack_check_without_the_config(conf, elasticsearch_store, services):
    """in_monitor_agent (fluentd v1.19.3 lib/fluent/plugin/in_monitor_agent.rb): GET /api/plugins.json?@id=...
    gives buffer_queue_length, buffer_total_queued_size and retry_count; include_config would show
    the Elasticsearch password, so it stays off."""
    from cd4ml.stack_check import FLUENTD_OUTPUT

    (agent,) = [s for s in conf.all("source") if s.params["@type"] == "monitor_agent"]
    assert agent.params["port"] == "24220" and agent.params["include_config"] == "false"
    assert elasticsearch_store.params["@id"] == FLUENTD_OUTPUT
    assert "127.0.0.1:24220:24220" in services["fluentd"]["ports"]


def test_prediction_events_are_routed_by_model_glob_and_copied(conf):
    matches = [m for m in conf.all("match") if tag_matches(m.arg, FLUENT_TAG)]
    assert [m.arg for m in matches] == ["model.**"]
    assert matches[0].params["@type"] == "copy"
    assert sorted(s.params["@type"] for s in matches[0].all("store")) == ["elasticsearch", "stdout"]


def test_elasticsearch_store_writes_daily_model_indices(elasticsearch_store):
    params = elasticsearch_store.params
    assert params["logstash_format"] == "true"
    assert params["logstash_prefix"] == "model"
    assert params["logstash_dateformat"] == "%Y.%m.%d"
    assert params.get("logstash_prefix_separator", "-") == "-"


def test_elasticsearch_store_reads_credentials_from_the_environment(elasticsearch_store, services):
    params = elasticsearch_store.params
    variables = set()
    for key in ("host", "port", "user", "password"):
        found = re.findall(r"#\{ENV\['(\w+)'\]", params[key])
        assert found, f"{key} must come from the environment, got {params[key]!r}"
        variables.update(found)
    assert variables <= set(services["fluentd"]["environment"])
    assert services["fluentd"]["environment"]["ELASTICSEARCH_HOST"] == "elasticsearch"


def test_elasticsearch_store_starts_and_keeps_events_while_elasticsearch_is_down(elasticsearch_store, services):
    params = elasticsearch_store.params
    assert params["verify_es_version_at_startup"] == "false"
    buffer = elasticsearch_store.one("buffer")
    assert buffer.params["@type"] == "file"
    path = buffer.params["path"]
    mounts = [volume.split(":")[1] for volume in services["fluentd"]["volumes"]]
    assert any(path.startswith(mount.rstrip("/") + "/") for mount in mounts), "the buffer must be on a volume"
    retry_forever = buffer.params.get("retry_forever") == "true"
    assert retry_forever or int(buffer.params.get("retry_max_times", 0)) >= 1000
    assert re.fullmatch(r"\d+s", buffer.params["retry_max_interval"])
    assert re.fullmatch(r"\d+s", buffer.params["flush_interval"])


def test_elasticsearch_store_has_no_unknown_top_level_typos(elasticsearch_store):
    allowed = {"@type", "@id", "host", "port", "scheme", "user", "password", "logstash_format",
               "logstash_prefix", "logstash_dateformat", "utc_index",
               "verify_es_version_at_startup", "default_elasticsearch_version", "reconnect_on_error",
               "reload_on_failure", "reload_connections", "request_timeout", "log_es_400_reason",
               "include_timestamp", "time_key", "logstash_prefix_separator"}
    assert set(elasticsearch_store.params) <= allowed


# --- fluentd/Dockerfile -----------------------------------------------------------------------

def test_fluentd_image_pins_plugin_and_client_to_the_elasticsearch_major(services):
    text = read("fluentd/Dockerfile")
    assert re.search(r"^FROM fluent/fluentd:v1\.\d+\.\d+-debian-\d+\.\d+$", text, re.MULTILINE)
    gems = gem_pins(text)
    assert int(gems["fluent-plugin-elasticsearch"].split(".")[0]) >= 6, "fluent-plugin-elasticsearch 6.x or later"
    server_major = services["elasticsearch"]["image"].rsplit(":", 1)[1].split(".")[0]
    assert gems["elasticsearch"].split(".")[0] == server_major, "the elasticsearch gem must match the server's major"
    assert "--conservative" in text  # a later gem in the list does not upgrade an earlier pin


def test_fluentd_image_installs_as_root_then_drops_back_to_fluent():
    users = re.findall(r"^USER (\S+)", read("fluentd/Dockerfile"), re.MULTILINE)
    assert users[0] in {"0", "root"} and users[-1] == "fluent"
    assert "COPY fluent.conf /fluentd/etc/fluent.conf" in read("fluentd/Dockerfile")


# --- what fluentd really sends to Elasticsearch 9 ------------------------------------------------
# fluent-plugin-elasticsearch 6.0.0, lib/fluent/plugin/out_elasticsearch.rb (configure): the ES 9
# Content-Type and Accept (PR #1064) are set in the `else` branch of
# `if @suppress_type_name && @last_seen_major_version >= 7`, so suppress_type_name skips them; the
# bulk request then carries an unversioned Accept beside the client's versioned one and
# Elasticsearch answers 400 media_type_header_exception. For ES >= 8 the plugin leaves `_type`
# out anyway (`meta["_type"] = target_type unless @last_seen_major_version >= 8`).

# The elasticsearch gem's releases that fix `update_ndjson_headers!` (elastic/elasticsearch-ruby
# CHANGELOG.md, PR #2974: NoMethodError when Content-Type lacks compatible-with), by minor.
FIXED_ELASTICSEARCH_GEM = {(9, 2): 3, (9, 3): 4, (9, 4): 3}
FIRST_FIXED_MINOR = (9, 5)


def elasticsearch_gem_problem(version: str) -> str | None:
    """Why this elasticsearch gem breaks bulk requests to Elasticsearch 9, or None."""
    major, minor, patch = (int(part) for part in version.split(".")[:3])
    if major != 9:
        return f"the elasticsearch gem {version} is not 9.x, the server's major"
    if (major, minor) >= FIRST_FIXED_MINOR:
        return None
    fixed = FIXED_ELASTICSEARCH_GEM.get((major, minor))
    if fixed is None or patch < fixed:
        return f"the elasticsearch gem {version} has elastic/elasticsearch-ruby#2973; use 9.2.3, 9.3.4, 9.4.3 or 9.5.0+"
    return None


def suppress_type_name_problem(store_params: dict[str, str], plugin: str, server_major: int) -> str | None:
    """Why suppress_type_name breaks this plugin against this server, or None."""
    if store_params.get("suppress_type_name") == "true" and plugin.startswith("6.") and server_major >= 9:
        return "suppress_type_name true skips plugin 6.x's ES 9 headers: remove it (ES >= 8 has no _type)"
    return None


@pytest.mark.parametrize("version,broken", [
    ("9.2.0", True), ("9.2.2", True), ("9.2.3", False), ("9.3.3", True), ("9.3.4", False),
    ("9.4.2", True), ("9.4.3", False), ("9.5.0", False), ("9.1.7", True), ("8.19.0", True),
])
def test_elasticsearch_gem_check_knows_the_fixed_releases(version, broken):
    assert (elasticsearch_gem_problem(version) is not None) is broken


def test_suppress_type_name_check_refuses_it_with_plugin_6_against_es_9():
    assert suppress_type_name_problem({"suppress_type_name": "true"}, "6.0.0", 9)
    assert suppress_type_name_problem({"suppress_type_name": "true"}, "5.4.4", 9) is None
    assert suppress_type_name_problem({"suppress_type_name": "true"}, "6.0.0", 8) is None
    assert suppress_type_name_problem({}, "6.0.0", 9) is None


def test_gem_pins_reads_both_spellings():
    text = "RUN gem install --no-document a:1.2.3 b:4.5.6 \\\n    && gem install --no-document c -v 7.8.9 \\\n"
    assert gem_pins(text) == {"a": "1.2.3", "b": "4.5.6", "c": "7.8.9"}


@pytest.fixture(scope="module")
def fluentd_gems() -> dict[str, str]:
    return gem_pins(read("fluentd/Dockerfile"))


def test_fluentd_does_not_suppress_type_name_with_plugin_6_against_es_9(elasticsearch_store, fluentd_gems, services):
    server_major = int(services["elasticsearch"]["image"].rsplit(":", 1)[1].split(".")[0])
    problem = suppress_type_name_problem(elasticsearch_store.params, fluentd_gems["fluent-plugin-elasticsearch"],
                                         server_major)
    assert problem is None, problem
    assert elasticsearch_store.params["default_elasticsearch_version"] == str(server_major)


def test_fluentd_elasticsearch_gem_is_a_fixed_release(fluentd_gems):
    problem = elasticsearch_gem_problem(fluentd_gems["elasticsearch"])
    assert problem is None, problem


def test_fluentd_pins_the_client_its_transport_and_http_gems(fluentd_gems):
    for name in ("fluent-plugin-elasticsearch", "elasticsearch", "elasticsearch-api", "elastic-transport",
                 "faraday", "faraday-excon", "faraday-net_http", "excon"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", fluentd_gems.get(name, "")), f"gem {name} is not pinned"
    assert fluentd_gems["elasticsearch-api"] == fluentd_gems["elasticsearch"]  # the client pins its api exactly


def test_fluentd_image_removes_the_gem_cache_where_rubygems_keeps_it():
    text = read("fluentd/Dockerfile")
    assert "/usr/lib/ruby/gems" not in text
    assert "Gem.dir" in text and "/cache/*.gem" in text
