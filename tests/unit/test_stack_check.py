"""stack-check's verdicts that need no server: fluentd's buffer, the line format, the settings."""

from __future__ import annotations

import pytest

from cd4ml.config import load_stack_settings
from cd4ml.errors import ConfigError
from cd4ml.stack_check import Part, check_fluentd


def agent(queued: int = 0, chunks: int = 0, retries: int = 0) -> dict:
    return {"plugin_id": "model_events_to_elasticsearch", "buffer_total_queued_size": queued,
            "buffer_queue_length": chunks, "retry_count": retries}


@pytest.mark.parametrize("before,after,ok", [
    (agent(), agent(), True),
    (agent(900, 1), agent(0, 0), True),  # flushed meanwhile
    (agent(0, 0, 3), agent(0, 0, 3), True),  # old retries, none new
    (agent(0, 0, 3), agent(0, 0, 4), False),  # a new retry: Elasticsearch refused or was away
    (agent(100, 1), agent(400, 2), False),  # more waiting than before
    (agent(100, 0), agent(400, 0), True),  # staged, not queued: the next flush takes it
])
def test_fluentd_is_ok_while_its_buffer_does_not_grow(before, after, ok):
    assert check_fluentd(before, after).ok is ok


def test_fluentd_reports_what_went_wrong_when_it_could_not_look():
    part = check_fluentd("no answer from fluentd's monitor agent", agent())
    assert not part.ok and part.detail == "no answer from fluentd's monitor agent"


def test_a_part_is_one_line_with_its_status_and_name():
    assert Part("kibana", True, "fine").line() == "ok    kibana        fine"
    assert Part("model server", False, "not ready").line() == "FAIL  model server  not ready"


def test_stack_settings_take_the_environment_then_the_stack_files(tmp_path):
    (tmp_path / "jenkins").mkdir()
    (tmp_path / "jenkins" / "jenkins-admin-password.txt").write_text("from-file\n")
    (tmp_path / ".env").write_text("# comment\nELASTIC_PASSWORD=from-dotenv\nJENKINS_ADMIN_USER='boss'\n")
    s = load_stack_settings({"CD4ML_STACK_KIBANA_URL": "http://kibana:5601/"}, root=tmp_path)
    assert (s.jenkins_user, s.jenkins_password, s.elastic_password) == ("boss", "from-file", "from-dotenv")
    assert s.kibana_url == "http://kibana:5601" and s.mlflow_url == "http://127.0.0.1:12000"
    s = load_stack_settings({"ELASTIC_PASSWORD": "env", "CD4ML_STACK_JENKINS_PASSWORD": "env-j"}, root=tmp_path)
    assert (s.jenkins_password, s.elastic_password) == ("env-j", "env")
    assert "from-file" not in repr(s) and "env-j" not in repr(s)


@pytest.mark.parametrize("name,value,message", [
    ("CD4ML_STACK_MODEL_URL", "localhost:11000", "CD4ML_STACK_MODEL_URL must start with http://"),
    ("CD4ML_STACK_EVENT_SECONDS", "a minute", "CD4ML_STACK_EVENT_SECONDS must be a number of seconds"),
    ("CD4ML_STACK_TIMEOUT_SECONDS", "0", "CD4ML_STACK_TIMEOUT_SECONDS must be a number >= 0.1"),
])
def test_bad_stack_settings_name_the_variable(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_stack_settings({name: value}, root=tmp_path)
