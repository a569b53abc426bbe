"""Every version the repo pins, read from the files that pin it: base and service images, gems,
Jenkins plugins, GitHub actions and Python wheels. docs/stack.md must say where each was seen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import yaml

from tests.stack.files import ROOT, read

DOCKERFILES = ("Dockerfile", "jenkins/Dockerfile", "fluentd/Dockerfile")
REQUIREMENTS = ("requirements.txt", "requirements-ci.txt", "requirements-dev.txt")


class Pin(NamedTuple):
    kind: str  # image, gem, Jenkins plugin, action, wheel
    name: str
    version: str
    where: str  # the file that pins it

    @property
    def component(self) -> str:
        return f"{self.kind} {self.name}"


def base_images(dockerfile: str) -> list[str]:
    """The images a Dockerfile builds FROM, with ARG defaults filled in and stage names left out."""
    text = read(dockerfile)
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, flags=re.MULTILINE))
    images, stages = [], set()
    for image, stage in re.findall(r"^FROM (?:--platform=\S+ )?(\S+)(?: AS (\S+))?", text,
                                   flags=re.MULTILINE | re.IGNORECASE):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image not in stages:
            images.append(image)
        if stage:
            stages.add(stage)
    return images


def gem_pins(dockerfile_text: str) -> dict[str, str]:
    """Every gem a Dockerfile installs, by name: `gem install NAME:VERSION` or `NAME -v VERSION`."""
    pins = {}
    for command in re.findall(r"gem install ([^&\n]+)", dockerfile_text.replace("\\\n", " ")):
        words = [w for w in command.split() if not w.startswith("--")]
        i = 0
        while i < len(words):
            name, _, version = words[i].partition(":")
            if i + 2 < len(words) and words[i + 1] == "-v":
                version, i = words[i + 2], i + 2
            pins[name] = version
            i += 1
    return pins


def _image(reference: str, where: str) -> Pin:
    name, _, tag = reference.rpartition(":")
    return Pin("image", name, tag, where)


def _wheel(line: str, where: str) -> Pin | None:
    found = re.match(r"\s*([A-Za-z0-9][\w.-]*)(?:\[[^\]]*\])?==([^\s#;]+)", line)
    return Pin("wheel", found.group(1).lower().replace("_", "-"), found.group(2), where) if found else None


def image_pins() -> list[Pin]:
    pins = [_image(image, dockerfile) for dockerfile in DOCKERFILES for image in base_images(dockerfile)]
    services = yaml.safe_load(read("docker-compose.yml"))["services"]
    pins += [_image(s["image"], "docker-compose.yml") for s in services.values() if "build" not in s]
    return pins


def gem_pin_list() -> list[Pin]:
    return [Pin("gem", name, version, "fluentd/Dockerfile") for name, version in gem_pins(read("fluentd/Dockerfile")).items()]


def plugin_pins() -> list[Pin]:
    pins = []
    for line in read("jenkins/plugins.txt").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition(":")
            pins.append(Pin("Jenkins plugin", name, version, "jenkins/plugins.txt"))
    return pins


def action_pins() -> list[Pin]:
    pins = []
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        where = str(workflow.relative_to(ROOT))
        for name, version in re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@(\S+)", workflow.read_text(encoding="utf-8")):
            pins.append(Pin("action", name, version, where))
    return pins


def wheel_pins() -> list[Pin]:
    pins = [pin for name in REQUIREMENTS for line in read(name).splitlines() if (pin := _wheel(line, name))]
    tools = re.search(r"^TOOLS=\((.*?)^\)", read(".ci/static-checks"), re.MULTILINE | re.DOTALL).group(1)
    pins += [pin for line in tools.splitlines() if (pin := _wheel(line, ".ci/static-checks"))]
    for arg, version in re.findall(r"^ARG (\w+)_VERSION=(\S+)", read("Dockerfile"), re.MULTILINE):
        pins.append(Pin("wheel", arg.lower(), version, "Dockerfile"))
    return pins


def repo_pins() -> list[Pin]:
    """Every pin in the repo, in the order of the files above."""
    return image_pins() + gem_pin_list() + plugin_pins() + action_pins() + wheel_pins()


def evidence_rows(markdown: str, heading: str = "## Pins and where they were seen") -> dict[str, tuple[str, str]]:
    """The table under `heading` in a Markdown file: component -> (version, evidence), backticks dropped."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in {"component", ""} and not set(cells[0]) <= {"-", " "}:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def docs_path() -> Path:
    return ROOT / "docs" / "stack.md"
