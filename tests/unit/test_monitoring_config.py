"""params.toml [monitoring] and the Elasticsearch variables: defaults, overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from cd4ml.config import ROOT, load_settings
from cd4ml.errors import ConfigError


def params(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "params.toml"
    path.write_text(text)
    return path


def test_the_repo_params_set_the_documented_thresholds():
    found = load_settings(ROOT / "params.toml", environ={}).monitoring
    assert (found.window_days, found.psi_warn, found.psi_alert, found.experiment) == (
        7.0, 0.1, 0.25, "sales-forecast-monitoring")
    assert found.default_source == "jsonl" and found.elasticsearch_url is None


def test_environment_overrides_thresholds_and_configures_elasticsearch(tmp_path):
    env = {"CD4ML_MONITORING_PSI_ALERT": "0.4", "CD4ML_MONITORING_MIN_EVENTS": "10",
           "CD4ML_ELASTICSEARCH_URL": "http://localhost:9200", "CD4ML_ELASTICSEARCH_USER": "elastic",
           "CD4ML_ELASTICSEARCH_PASSWORD": "123"}
    found = load_settings(params(tmp_path), environ=env).monitoring
    assert (found.psi_alert, found.min_events) == (0.4, 10)
    assert found.default_source == "elasticsearch"
    assert (found.elasticsearch_user, found.elasticsearch_password) == ("elastic", "123")  # text, never a number
    assert "123" not in repr(found)


@pytest.mark.parametrize("text, env, message", [
    ("[monitoring]\npsi_warn = 0.3\npsi_alert = 0.2\n", {}, r"psi_warn \(0.3\) must not exceed psi_alert \(0.2\)"),
    ("[monitoring]\nwindow_days = 0\n", {}, r"\[monitoring\] window_days must be a number > 0; got 0"),
    ("[monitoring]\nmin_events = \"many\"\n", {}, r"\[monitoring\] min_events must be an integer; got 'many'"),
    ("", {"CD4ML_ELASTICSEARCH_URL": "localhost:9200"}, r"CD4ML_ELASTICSEARCH_URL must start with http:// or https://"),
])
def test_bad_monitoring_values_are_named(tmp_path, text, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(params(tmp_path, text), environ=env)


def test_the_event_source_follows_the_configuration(tmp_path):
    from cd4ml.monitoring.run import make_source

    plain = load_settings(params(tmp_path), environ={"CD4ML_DATA_DIR": str(tmp_path)})
    assert make_source(plain, None).description == f"jsonl {tmp_path / 'predictions.jsonl'}"
    with pytest.raises(ConfigError, match="--source elasticsearch needs CD4ML_ELASTICSEARCH_URL"):
        make_source(plain, "elasticsearch")
    elastic = load_settings(params(tmp_path), environ={"CD4ML_ELASTICSEARCH_URL": "http://es:9200"})
    assert make_source(elastic, None).description == "elasticsearch http://es:9200 model-*"
    assert make_source(elastic, None, tmp_path / "e.jsonl").description == f"jsonl {tmp_path / 'e.jsonl'}"
    with pytest.raises(ConfigError, match="--events names a JSONL log; it does not go with --source elasticsearch"):
        make_source(elastic, "elasticsearch", tmp_path / "e.jsonl")
