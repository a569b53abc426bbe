"""The local pipeline runner: it reads its stages from the Jenkinsfile itself."""

from __future__ import annotations

import pytest

from cd4ml.ci import Stage, parse_stages, run_stages
from cd4ml.errors import ConfigError
from tests.conftest import ROOT

JENKINSFILE = """
pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'echo "building, with quotes"'
            }
        }
        stage("Check") { steps { sh "exit 4" } }
        stage('Ship') {
            steps {
                sh 'echo shipped'
            }
        }
    }
}
"""


def test_parse_stages_reads_names_and_commands_in_order():
    assert parse_stages(JENKINSFILE) == [
        Stage("Build", 'echo "building, with quotes"'), Stage("Check", "exit 4"), Stage("Ship", "echo shipped"),
    ]


def test_the_projects_jenkinsfile_has_the_delivery_stages_in_order():
    names = [s.name for s in parse_stages((ROOT / "Jenkinsfile").read_text())]
    assert names == ["Install", "Test", "Pipeline", "Acceptance", "Deploy"]


def test_a_stage_with_two_sh_steps_is_refused():
    with pytest.raises(ConfigError, match="stage 'Twice'.*one `sh` step"):
        parse_stages("stages { stage('Twice') { steps { sh 'a'\n sh 'b' } } }")


def test_run_stops_at_the_first_failure_like_jenkins(tmp_path):
    lines = []
    outcome = run_stages(parse_stages(JENKINSFILE), cwd=tmp_path, say=lines.append)
    assert [(r.stage, r.status) for r in outcome.results] == [
        ("Build", "SUCCESS"), ("Check", "FAILURE"), ("Ship", "NOT_BUILT"),
    ]
    assert outcome.exit_code == 4 and outcome.status == "FAILURE"
    assert any("Finished: FAILURE" in line for line in lines)


def test_run_from_a_later_stage_skips_the_earlier_ones(tmp_path):
    outcome = run_stages(parse_stages(JENKINSFILE), cwd=tmp_path, say=lambda _: None, start="Ship")
    assert [(r.stage, r.status) for r in outcome.results] == [
        ("Build", "SKIPPED"), ("Check", "SKIPPED"), ("Ship", "SUCCESS"),
    ]
    assert outcome.exit_code == 0


def test_an_unknown_start_stage_names_the_stages():
    with pytest.raises(ConfigError, match="no stage 'Nope'.*Build, Check, Ship"):
        run_stages(parse_stages(JENKINSFILE), cwd=ROOT, say=lambda _: None, start="Nope")
