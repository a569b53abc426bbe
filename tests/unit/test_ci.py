"""The local pipeline runner: it reads its stages from the Jenkinsfile itself."""

from __future__ import annotations

import re

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
    assert names == ["Install", "Test", "Pipeline", "Acceptance", "Acceptance (experiment)", "Deploy"]


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


PATHS = """
pipeline {
    stages {
        stage('Train') { steps { sh 'echo "train $MODEL"' } }
        stage('Gate') {
            when { allOf { environment name: 'MODEL', value: ''; environment name: 'OVERRIDES', value: '' } }
            steps { sh 'exit 4' }
        }
        stage('Gate (experiment)') {
            when { not { allOf { environment name: 'MODEL', value: ''
                                 environment name: 'OVERRIDES', value: '' } } }
            steps { catchError(buildResult: 'SUCCESS', stageResult: 'UNSTABLE') { sh 'exit 4' } }
        }
        stage('Ship') { when { anyOf { environment name: 'MODEL', value: '' } } steps { sh 'echo shipped' } }
    }
}
"""


def test_when_conditions_are_parsed_into_a_tree():
    train, gate, experiment, ship = parse_stages(PATHS)
    assert train.when is None and gate.catch is None
    both = ("allOf", [("environment", "MODEL", ""), ("environment", "OVERRIDES", "")])
    assert gate.when == both and experiment.when == ("not", both) and experiment.catch == ("SUCCESS", "UNSTABLE")
    assert ship.when == ("anyOf", [("environment", "MODEL", "")])


def test_default_parameters_take_the_production_path_where_a_rejection_fails_the_build(tmp_path):
    lines = []
    outcome = run_stages(parse_stages(PATHS), cwd=tmp_path, say=lines.append, params={"MODEL": "", "OVERRIDES": ""})
    assert [(r.stage, r.status) for r in outcome.results] == [
        ("Train", "SUCCESS"), ("Gate", "FAILURE"), ("Gate (experiment)", "NOT_BUILT"), ("Ship", "NOT_BUILT")]
    assert outcome.exit_code == 4 and outcome.status == "FAILURE"


def test_a_parameter_takes_the_experiment_path_where_a_rejection_is_reported_and_nothing_ships(tmp_path):
    lines = []
    outcome = run_stages(parse_stages(PATHS), cwd=tmp_path, say=lines.append, params={"MODEL": "lasso"})
    assert [(r.stage, r.status) for r in outcome.results] == [
        ("Train", "SUCCESS"), ("Gate", "SKIPPED"), ("Gate (experiment)", "UNSTABLE"), ("Ship", "SKIPPED")]
    assert outcome.exit_code == 0 and outcome.status == "SUCCESS"
    assert 'Stage "Ship" skipped due to when conditional' in lines
    assert any(line.startswith("[Pipeline] } (Gate (experiment): UNSTABLE, exit code 4, caught: the build goes on, ")
               for line in lines)


def test_the_parameters_reach_the_commands_environment(tmp_path):
    stages = parse_stages("stages { stage('Echo') { steps { sh 'echo \"[$MODEL]\" > out.txt' } } }")
    run_stages(stages, cwd=tmp_path, say=lambda _: None, params={"MODEL": "lasso"})
    assert (tmp_path / "out.txt").read_text() == "[lasso]\n"


@pytest.mark.parametrize("body, said", [
    ("when { branch 'main' } steps { sh 'x' }", "cannot evaluate `when { branch 'main'"),
    ("steps { catchError(buildResult: 'UNSTABLE') { sh 'x' } }", "got buildResult 'UNSTABLE'"),
])
def test_a_condition_the_runner_cannot_evaluate_is_refused(body, said):
    with pytest.raises(ConfigError, match=re.escape(said)):
        parse_stages(f"stages {{ stage('S') {{ {body} }} }}")
