"""The commands in instructions/*.md and README.md work, so that the documents cannot rot.

Every ```bash block is either executed (it needs no Docker) or syntax-checked (it needs Docker,
installs software, or is marked to skip). The conventions, and the markers a document uses to
steer this test, are described in instructions/README.md ("These documents are tested").

Executed blocks run in a throw-away copy of the working tree with its own git history, its own
data folder (CD4ML_DATA_DIR) and the embedded MLflow store (MLFLOW_TRACKING_URI unset); the real
checkout is never touched. Its params.toml is the one the workshop hands out (tests/params.toml),
whatever the exercises have made of the checkout's. Exercises 1 to 6 (CHAIN: 3b, house prices, between 3 and
4) run in order in one copy, one block after another,
carrying the shell's exported variables and working directory from block to block, as a reader
following along would. The copy's `.venv` is a light virtual environment that sees the packages
of the one running this test, so nothing is downloaded.

    .venv/bin/python -m pytest tests/docs                 # the checks and the runs
    .venv/bin/python -m tests.docs.test_doc_commands      # list every block and its fate
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import HANDED_OUT_PARAMS

ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = ROOT / "instructions"
CHAIN = ("1-setup.md", "2-jenkins.md", "3-machine-learning.md", "3b-house-prices.md", "4-continuous-delivery.md",
         "5-undo-changes.md", "6-monitoring.md")
STANDALONE = ("instructions/FAQ.md", "instructions/README.md", "README.md")

BLOCK_TIMEOUT = 300        # seconds for one executed block (the slowest, a full `ci`, takes ~40 s)
SERVER_TIMEOUT = 120       # seconds for a background server to answer (`quickstart` trains first)
STABLE_SECONDS = 1.5       # ... and to keep answering so, whichever of its workers takes the request
COMMAND_FENCES = ("bash",)
FORBIDDEN_FENCES = ("sh", "shell", "console", "zsh", "shell-session")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<lang>[\w+-]*)\s*$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")
LOCAL_URL = re.compile(r"\b(?:localhost|127\.0\.0\.1):(?P<port>\d+)")
URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1):(?P<port>\d+)")
FOUR_DECIMALS = re.compile(r"(?<![\d.])\d+\.\d{4}(?![\d])")

DOCKER = re.compile(r"(?:^|[\s;&|(])(?:sudo\s+)?docker(?:\s|$)")
INSTALLS = re.compile(
    r"\bpip3?\s+install\b|-m\s+pip\s+install\b|\bapt(?:-get)?\s+(?:install|update)\b"
    r"|\bbrew\s+install\b|\bmake\s+(?:run|test|install|install-dev)\b"
)
LONG_RUNNING = re.compile(
    r"run_python_script\.py\s+(?:\S+\s+)*?serve\b|run_python_script\.py\s+(?:\S+\s+)*?quickstart\b(?!.*--no-serve)"
    r"|\bmlflow\s+(?:ui|server)\b|\bmake\s+run\b|\btail\s+-f\b|\bgunicorn\b|\bjupyter\s+lab\b"
)


# --- reading the documents -------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    doc: str                 # path relative to the repo root
    line: int                # line of the opening fence, 1-based
    lang: str
    text: str
    markers: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def marker(self, name: str) -> str | None:
        """The rest of the marker `name ...`, or None."""
        for body in self.markers:
            head, _, rest = body.partition(" ")
            if head == name:
                return rest.strip()
        return None


@dataclass(frozen=True)
class Doc:
    path: str
    blocks: tuple[Block, ...]
    prose: str               # everything outside fenced blocks, HTML comments removed
    stray: tuple[str, ...] = ()  # markers followed by prose instead of a block


def read_doc(path: str) -> Doc:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    blocks, prose, pending, stray = [], [], [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            pending.append(marker.group("body"))
        elif fence:
            indent, ticks = len(fence.group("indent")), fence.group("ticks")
            body, j = [], i + 1
            while j < len(lines) and not re.match(rf"^[ \t]*{ticks}`*\s*$", lines[j]):
                body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j].lstrip())
                j += 1
            blocks.append(Block(path, i + 1, fence.group("lang").lower(), "\n".join(body) + "\n", tuple(pending)))
            pending = []
            i = j
        elif line.strip():
            stray += [f"{path}:{i + 1}: the marker {body!r} is not right before a block" for body in pending]
            pending = []
            prose.append(line)
        i += 1
    text = re.sub(r"<!--.*?-->", "", "\n".join(prose), flags=re.S)
    return Doc(path, tuple(blocks), text, tuple(stray))


def doc_paths() -> list[str]:
    found = sorted(p.relative_to(ROOT).as_posix() for p in INSTRUCTIONS.glob("*.md"))
    return found + ["README.md"]


def instruction_docs() -> list[Doc]:
    return [read_doc(p) for p in doc_paths() if p.startswith("instructions/")]


# --- what happens to each block ----------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    mode: str    # run, background: executed; docker, install, skip: syntax-checked; text: not a command
    reason: str

    @property
    def executed(self) -> bool:
        return self.mode in ("run", "background")


def compose_file() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_ports() -> dict[int, str]:
    """Host port -> the service that publishes it."""
    ports = {}
    for name, service in compose_file()["services"].items():
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            if len(parts) >= 2:
                ports[int(parts[-2])] = name
    return ports


def commands_of(text: str) -> list[str]:
    """The block's logical command lines: continuations joined, comments and heredoc bodies out."""
    lines, out, heredoc, current = text.splitlines(), [], None, ""
    for line in lines:
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if current:
            line = current + " " + line.strip()
            current = ""
        if line.rstrip().endswith("\\"):
            current = line.rstrip()[:-1]
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = HEREDOC.search(stripped)
        if match:
            heredoc = match.group("word")
        out.append(stripped)
    return out


def needs_docker(text: str, docker_ports: set[int]) -> bool:
    code = "\n".join(commands_of(text))
    if DOCKER.search(code):
        return True
    return any(int(m.group("port")) in docker_ports for m in LOCAL_URL.finditer(code))


def plan(block: Block, docker_ports: set[int]) -> Plan:
    if block.lang not in COMMAND_FENCES:
        return Plan("text", "")
    skip = block.marker("skip")
    if skip is not None:
        return Plan("skip", skip.strip("()") or "marked skip")
    if needs_docker(block.text, docker_ports):
        return Plan("docker", "needs Docker")
    if INSTALLS.search("\n".join(commands_of(block.text))):
        return Plan("install", "installs software")
    if block.marker("background") is not None:
        return Plan("background", "server, probed then stopped")
    return Plan("run", "")


def count_commands(text: str) -> int:
    keywords = {"do", "done", "then", "fi", "else", "esac", "}", "EOF"}
    return sum(1 for c in commands_of(text) if c not in keywords)


# --- static checks of commands -----------------------------------------------------------------

def shell_segments(command: str) -> list[list[str]]:
    """Simple commands of one line: split on | ; && || ( ), redirections and their targets dropped."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments, current, skip_next = [], [], False
    try:
        tokens = list(lexer)
    except ValueError:
        return []
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token in ("|", "||", "&&", ";", "&", "(", ")", ";;"):
            segments.append(current)
            current = []
        elif token in (">", ">>", "<", ">&", "<&", "&>", "2>", ">|"):
            skip_next = True
        elif token in ("do", "then", "else") and not current:
            continue
        else:
            current.append(token)
    segments.append(current)
    return [s for s in segments if s]


def cli_arguments(commands: list[str]) -> list[list[str]]:
    """The arguments after `run_python_script.py` in each simple command."""
    found = []
    for command in commands:
        for segment in shell_segments(command):
            for i, token in enumerate(segment):
                if token.endswith("run_python_script.py"):
                    found.append(segment[i + 1:])
                    break
    return found


def cli_error(argv: list[str]) -> str | None:
    """None when the real command line accepts argv, else argparse's message."""
    from cd4ml.cli import _parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exit_.code}"
    return None


COMPOSE_GLOBAL_VALUES = {"-f", "--file", "-p", "--project-name", "--env-file", "--profile",
                         "--project-directory", "--ansi", "--progress", "--parallel"}
# subcommand -> (options that take a value, what the positional arguments are)
COMPOSE_SUBCOMMANDS = {
    "up": ({"--scale", "-t", "--timeout", "--wait-timeout", "--exit-code-from", "--attach", "--no-attach", "--pull"}, "services"),
    "down": ({"--rmi", "-t", "--timeout"}, "none"),
    "ps": ({"--format", "--filter", "--status"}, "services"),
    "logs": ({"--tail", "-n", "--since", "--until", "--index"}, "services"),
    "stop": ({"-t", "--timeout"}, "services"),
    "start": (set(), "services"),
    "restart": ({"-t", "--timeout"}, "services"),
    "build": ({"--build-arg", "--ssh", "-m", "--memory"}, "services"),
    "pull": (set(), "services"),
    "create": ({"--scale", "--pull"}, "services"),
    "rm": (set(), "services"),
    "kill": ({"-s", "--signal"}, "services"),
    "pause": (set(), "services"),
    "unpause": (set(), "services"),
    "top": (set(), "services"),
    "images": ({"--format"}, "services"),
    "events": (set(), "services"),
    "stats": ({"--format"}, "services"),
    "wait": (set(), "services"),
    "config": ({"--format", "-o", "--output", "--hash"}, "services"),
    "exec": ({"-e", "--env", "-u", "--user", "-w", "--workdir", "--index"}, "service+command"),
    "run": ({"-e", "--env", "-u", "--user", "-w", "--workdir", "--name", "--entrypoint", "-p", "--publish",
             "-v", "--volume", "-l", "--label", "--pull"}, "service+command"),
    "port": ({"--index", "--protocol"}, "service+command"),
    "cp": (set(), "paths"),
    "version": ({"-f", "--format"}, "none"),
    "ls": ({"--format", "--filter"}, "none"),
}


def compose_errors(commands: list[str], services: set[str]) -> list[str]:
    """What is wrong with each `docker compose ...` command: unknown subcommand or service."""
    errors = []
    for command in commands:
        for segment in shell_segments(command):
            if segment[:1] == ["sudo"]:
                segment = segment[1:]
            if segment[:2] != ["docker", "compose"]:
                continue
            args, i = segment[2:], 0
            while i < len(args) and args[i].startswith("-"):
                i += 1 if "=" in args[i] or args[i] not in COMPOSE_GLOBAL_VALUES else 2
            if i >= len(args):
                errors.append(f"`{command}`: no subcommand")
                continue
            sub, rest = args[i], args[i + 1:]
            if sub not in COMPOSE_SUBCOMMANDS:
                errors.append(f"`{command}`: unknown subcommand {sub!r}")
                continue
            takes_value, kind = COMPOSE_SUBCOMMANDS[sub]
            positionals, j = [], 0
            while j < len(rest):
                arg = rest[j]
                if arg.startswith("-") and not positionals:
                    name, _, value = arg.partition("=")
                    if name in takes_value and not value:
                        value = rest[j + 1] if j + 1 < len(rest) else ""
                        j += 1
                    if name == "--scale" and value.split("=")[0] not in services:
                        errors.append(f"`{command}`: --scale names no service of docker-compose.yml: {value!r}")
                    j += 1
                    continue
                positionals.append(arg)
                if kind == "service+command":
                    break
                j += 1
            if kind == "none" and positionals:
                errors.append(f"`{command}`: {sub} takes no service names")
            elif kind in ("services", "service+command"):
                errors += [f"`{command}`: no service {name!r} in docker-compose.yml"
                           for name in positionals if name not in services]
                if kind == "service+command" and not positionals:
                    errors.append(f"`{command}`: {sub} needs a service name")
    return errors


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)}


def make_errors(commands: list[str]) -> list[str]:
    targets, errors = make_targets(), []
    for command in commands:
        for segment in shell_segments(command):
            if segment[0] == "make":
                errors += [f"`{command}`: the Makefile has no target {t!r}"
                           for t in segment[1:] if not t.startswith("-") and "=" not in t and t not in targets]
    return errors


def bash_syntax_error(text: str) -> str | None:
    result = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    return result.stderr.strip() or f"bash -n exited with {result.returncode}"


# --- the checks ---------------------------------------------------------------------------------

DOCS = doc_paths()


def test_every_instruction_document_is_run():
    documents = {p.name for p in INSTRUCTIONS.glob("*.md")}
    run = set(CHAIN) | {Path(p).name for p in STANDALONE if p.startswith("instructions/")}
    assert documents == run, "add the new document to CHAIN (an exercise) or STANDALONE"


@pytest.mark.parametrize("path", DOCS)
def test_command_blocks_use_the_bash_fence(path):
    doc = read_doc(path)
    wrong = [f"{b.where}: ```{b.lang}" for b in doc.blocks if b.lang in FORBIDDEN_FENCES]
    assert not wrong, "use ```bash for commands and ```text for output: " + ", ".join(wrong)


@pytest.mark.parametrize("path", DOCS)
def test_markers_are_known_and_on_the_right_blocks(path):
    doc = read_doc(path)
    problems, docker_ports, previous = list(doc.stray), set(compose_ports()), None
    for block in doc.blocks:
        for body in block.markers:
            name = body.split(" ", 1)[0]
            if name not in ("skip", "background", "exit", "output", "excerpt"):
                problems.append(f"{block.where}: unknown marker {body!r}")
        kind = plan(block, docker_ports)
        if block.lang in COMMAND_FENCES:
            if block.marker("output") is not None or block.marker("excerpt") is not None:
                problems.append(f"{block.where}: output/excerpt markers belong on ```text blocks")
            if kind.mode == "run" and LONG_RUNNING.search("\n".join(commands_of(block.text))):
                problems.append(f"{block.where}: runs until Ctrl-C; mark it `docs-test: background URL` or `skip (...)`")
            background = block.marker("background")
            if background is not None:
                url = (background.split() or [""])[0]
                port = LOCAL_URL.search(url)
                if not port or not re.search(rf"--port[ =]{port.group('port')}\b", block.text):
                    problems.append(f"{block.where}: a background block must pass --port with the port of its URL ({url!r})")
            exit_code = block.marker("exit")
            if exit_code is not None and not exit_code.isdigit():
                problems.append(f"{block.where}: `exit N` needs a number; got {exit_code!r}")
        else:
            if block.marker("output") is not None and not (previous and plan(previous, docker_ports).executed):
                problems.append(f"{block.where}: an output block must follow an executed ```bash block")
            excerpt = block.marker("excerpt")
            if excerpt is not None and not (ROOT / excerpt).is_file():
                problems.append(f"{block.where}: excerpt of a file that does not exist: {excerpt!r}")
            if any(block.marker(m) is not None for m in ("skip", "background", "exit")):
                problems.append(f"{block.where}: skip/background/exit markers belong on ```bash blocks")
        previous = block
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCS)
def test_every_command_block_is_valid_bash(path):
    problems = [f"{b.where}: {err}" for b in read_doc(path).blocks
                if b.lang in COMMAND_FENCES and (err := bash_syntax_error(b.text))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCS)
def test_run_python_script_commands_parse(path):
    doc, problems = read_doc(path), []
    for block in doc.blocks:
        if block.lang in COMMAND_FENCES:
            for argv in cli_arguments(commands_of(block.text)):
                if (err := cli_error(argv)) is not None:
                    problems.append(f"{block.where}: run_python_script.py {' '.join(argv)}: {err}")
    for span in re.findall(r"`(python3 run_python_script\.py[^`]*)`", doc.prose):
        for argv in cli_arguments([span]):
            if (err := cli_error(argv)) is not None:
                problems.append(f"{path} (prose): `{span}`: {err}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCS)
def test_docker_compose_and_make_commands_name_real_services_and_targets(path):
    services = set(compose_file()["services"])
    problems = []
    for block in read_doc(path).blocks:
        if block.lang in COMMAND_FENCES:
            commands = commands_of(block.text)
            problems += [f"{block.where}: {e}" for e in compose_errors(commands, services) + make_errors(commands)]
    assert not problems, "\n".join(problems)


def test_compose_checker_can_fail():
    services = {"jenkins", "dev"}
    assert compose_errors(["docker compose up -d --build", "docker compose exec dev python3 x.py",
                           "docker compose up -d --scale dev=0", "docker compose logs --tail 3 jenkins"], services) == []
    assert len(compose_errors(["docker compose exec devbox ls", "docker compose upp -d",
                               "docker compose up -d --scale notebook=0", "docker compose stop jenkins kibana"], services)) == 4


def test_ports_in_instructions_are_published_or_started_by_a_command():
    published = set(compose_ports())
    served = {int(p) for doc in instruction_docs() for b in doc.blocks
              for p in re.findall(r"--port[ =](\d+)", b.text)}
    served.add(tomllib.loads(HANDED_OUT_PARAMS.read_text())["serving"]["port"])
    problems = []
    for doc in instruction_docs():
        text = doc.prose + "\n".join(b.text for b in doc.blocks)
        for m in URL.finditer(text):
            if int(m.group("port")) not in published | served:
                problems.append(f"{doc.path}: {m.group(0)} is neither published by docker-compose.yml nor served by a command")
    assert not problems, "\n".join(problems)


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.strip().startswith("|")]


def test_service_tables_give_each_service_its_published_port():
    ports, services, problems = compose_ports(), set(compose_file()["services"]), []
    for doc in instruction_docs():
        for row in table_rows(doc.prose):
            name = row[0].strip("`")
            if row[0].startswith("`") and name in services:
                for m in URL.finditer(" ".join(row)):
                    if ports.get(int(m.group("port"))) != name:
                        problems.append(f"{doc.path}: {name} is not published on {m.group(0)}")
    assert not problems, "\n".join(problems)


def jenkins_stages() -> list[tuple[str, str]]:
    text = (ROOT / "Jenkinsfile").read_text()
    names = list(re.finditer(r"stage\s*\(\s*'([^']+)'\s*\)", text))
    stages = []
    for i, m in enumerate(names):
        end = names[i + 1].start() if i + 1 < len(names) else len(text)
        stages.append((m.group(1), re.search(r"\bsh\s+'([^']*)'", text[m.end():end]).group(1)))
    return stages


def test_the_stage_table_is_the_jenkinsfile():
    rows = [r for r in table_rows(read_doc("instructions/2-jenkins.md").prose)
            if len(r) > 1 and r[1].startswith("`")]
    assert [(r[0], r[1].strip("`")) for r in rows] == jenkins_stages()


def test_the_event_table_is_the_event_schema():
    from cd4ml.events import prediction_event

    rows = table_rows(read_doc("instructions/6-monitoring.md").prose)
    documented = [r[0].strip("`") for r in rows if r[0].startswith("`")]
    event = prediction_event(date="2016-12-24", item_nbr=1, item_name="x", store_nbr=47, onpromotion=False,
                             prediction=1.0, model_version="1", run_id="r", latency_ms=1.0)
    assert documented == list(event)


@pytest.mark.parametrize("path", DOCS)
def test_excerpts_match_their_files(path):
    problems = [f"{b.where}: not an excerpt of {b.marker('excerpt')}: {mismatch}" for b in read_doc(path).blocks
                if b.marker("excerpt") and (mismatch := excerpt_mismatch(b.text, ROOT / b.marker("excerpt")))]
    assert not problems, "\n".join(problems)


def test_figures_in_the_prose_come_from_checked_output():
    docs = instruction_docs()
    checked = "\n".join(b.text for d in docs for b in d.blocks if b.marker("output") is not None)
    problems = [f"{d.path}: {n} appears in no checked output block"
                for d in docs for n in sorted(set(FOUR_DECIMALS.findall(d.prose))) if n not in checked]
    assert not problems, "\n".join(problems)


def github_anchor(heading: str) -> str:
    text = re.sub(r"[`*]|<[^>]+>", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_links_between_documents_resolve():
    problems = []
    for path in doc_paths():
        text = (ROOT / path).read_text()
        for target in re.findall(r"\]\((?!https?:|mailto:)([^)\s]+)\)", text):
            file_part, _, anchor = target.partition("#")
            resolved = ((ROOT / path).parent / file_part).resolve() if file_part else ROOT / path
            if not resolved.exists():
                problems.append(f"{path}: link to a missing file: {target}")
            elif anchor and resolved.suffix == ".md":
                anchors = {github_anchor(h) for h in re.findall(r"^#+\s+(.*)$", resolved.read_text(), re.M)}
                if anchor not in anchors:
                    problems.append(f"{path}: no heading for #{anchor} in {file_part or path}")
    assert not problems, "\n".join(problems)


# --- running the documents -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def normalise(line: str) -> str:
    return " ".join(line.split())


def output_mismatch(expected: str, actual: str) -> str | None:
    """None when every line of `expected` appears in `actual`, in order ("..." = any text)."""
    lines = [normalise(x) for x in actual.splitlines()]
    at = 0
    for want in expected.splitlines():
        want = normalise(want)
        if not want or want == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        for k in range(at, len(lines)):
            if pattern.fullmatch(lines[k]):
                at = k + 1
                break
        else:
            return f"expected the line\n    {want}\nafter line {at}"
    return None


def excerpt_mismatch(expected: str, path: Path) -> str | None:
    strip = lambda s: normalise(s.split("#", 1)[0])  # noqa: E731
    return output_mismatch("\n".join(strip(x) for x in expected.splitlines()),
                           "\n".join(strip(x) for x in path.read_text().splitlines()))


def tracked_files(root: Path) -> list[str]:
    """The working tree's files that git does not ignore (new files included)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=root, capture_output=True, check=True).stdout.decode()
        return [f for f in listed.split("\0") if f and (root / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "venv", "data", "__pycache__", ".pytest_cache", "mlruns", "mlartifacts"}
        return [p.relative_to(root).as_posix() for p in root.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(root).parts)
                and p.suffix not in (".db", ".jsonl", ".pyc")]


@dataclass
class Result:
    failures: list[str] = field(default_factory=list)
    executed: int = 0
    checked: int = 0
    seconds: float = 0.0


class Workspace:
    """A throw-away copy of the repository in which documents run like a reader would run them."""

    def __init__(self, folder: Path, activated: bool) -> None:
        self.root = folder / "repo"
        self.state = folder / "state"
        self.state.mkdir(parents=True)
        for name in tracked_files(ROOT):
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, self.root / name)
        shutil.copy2(HANDED_OUT_PARAMS, self.root / "params.toml")  # as handed out, not as the exercises left it
        self._light_venv()
        self.env = self._environment(activated)
        git = subprocess.run("git init -q -b main && git add -A && git commit -q -m 'the workshop as handed out'",
                             shell=True, cwd=self.root, env=self.env, capture_output=True, text=True)
        assert git.returncode == 0, git.stderr
        (self.state / "env").write_text("")
        (self.state / "cwd").write_text(str(self.root))
        self.ports: dict[int, int] = {}
        self.servers: list[tuple[subprocess.Popen, Path]] = []
        self.last_output = ""

    def _light_venv(self) -> None:
        """.venv that sees this interpreter's packages through a .pth file: installs go to the copy,
        never to the real environment, and finding everything already there needs no network."""
        venv = self.root / ".venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next(venv.glob("lib/python3*/site-packages"))
        (site / "_docs_test_packages.pth").write_text(
            f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
        for tool in Path(sys.executable).parent.iterdir():
            target = venv / "bin" / tool.name
            if not (target.exists() or tool.name.startswith(("python", "activate", "Activate", "pip"))):
                target.symlink_to(tool)
        for name in ("pip", "pip3"):
            (venv / "bin" / name).write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
            (venv / "bin" / name).chmod(0o755)

    def _environment(self, activated: bool) -> dict[str, str]:
        real_bin = str(Path(sys.executable).parent)
        drop = ("CD4ML_", "MLFLOW_", "FLUENTD_", "PYTEST_", "PYTHON", "VIRTUAL_ENV", "BUILD_NUMBER", "GIT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        path = [p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p and p != real_bin]
        if activated:
            path.insert(0, str(self.root / ".venv" / "bin"))
            env["VIRTUAL_ENV"] = str(self.root / ".venv")
        env.update({
            "PATH": os.pathsep.join(path),
            "CD4ML_DATA_DIR": str(self.root / "data"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONUNBUFFERED": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "NO_COLOR": "1",
            "GIT_AUTHOR_NAME": "Workshop Reader", "GIT_AUTHOR_EMAIL": "reader@example.com",
            "GIT_COMMITTER_NAME": "Workshop Reader", "GIT_COMMITTER_EMAIL": "reader@example.com",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        })
        return env

    def _moved(self, text: str) -> str:
        for old, new in self.ports.items():
            text = re.sub(rf"(--port[ =]){old}\b", rf"\g<1>{new}", text)
            text = re.sub(rf"\b(localhost|127\.0\.0\.1):{old}\b", rf"\g<1>:{new}", text)
        return text

    def _script(self, text: str, keep_state: bool) -> str:
        state = shlex.quote(str(self.state))
        save = (f"trap 'export -p | grep -Ev \"^declare -x (PWD|OLDPWD|SHLVL|_)=\" > {state}/env.next; "
                f"pwd > {state}/cwd' EXIT\n") if keep_state else ""
        return (f"set -eo pipefail\n. {state}/env\ncd \"$(cat {state}/cwd)\"\n{save}" + self._moved(text))

    def run(self, block: Block) -> str | None:
        """Run one block; None when it ended as expected, else what went wrong."""
        expected = int(block.marker("exit") or 0)
        process = subprocess.Popen(["bash", "-c", self._script(block.text, keep_state=True)], cwd=self.root,
                                   env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   encoding="utf-8", errors="replace", start_new_session=True)
        try:
            self.last_output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the block and anything it started
            self.last_output, _ = process.communicate()
            return f"did not finish within {BLOCK_TIMEOUT} s"
        if (self.state / "env.next").exists():
            (self.state / "env.next").replace(self.state / "env")
        if process.returncode != expected:
            return f"exited with {process.returncode}, expected {expected}"
        return None

    def start(self, block: Block) -> str | None:
        """Start a background block and wait until its URL answers."""
        url, *status = block.marker("background").split()
        wanted = int(status[0]) if status else None
        old = int(LOCAL_URL.search(url).group("port"))
        self.ports.setdefault(old, free_port())
        url = self._moved(url)
        log = self.state / f"server-{len(self.servers)}.log"
        process = subprocess.Popen(["bash", "-c", self._script(block.text, keep_state=False)], cwd=self.root,
                                   env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.servers.append((process, log))
        deadline, good_since = time.monotonic() + SERVER_TIMEOUT, None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.last_output = log.read_text(errors="replace")
                return f"exited with {process.returncode} before {url} answered"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    code = response.status
            except urllib.error.HTTPError as err:
                code = err.code
            except (OSError, urllib.error.URLError):
                code = None
            if code is not None and (code == wanted if wanted else 200 <= code < 300):
                # Every worker of the server must be ready, not just the one that answered first:
                # the answer has to hold for a while, whichever worker takes the request.
                good_since = good_since or time.monotonic()
                if time.monotonic() - good_since >= STABLE_SECONDS:
                    self.last_output = log.read_text(errors="replace")
                    return None
            else:
                good_since = None
            time.sleep(0.1)
        self.last_output = log.read_text(errors="replace")
        return f"{url} did not answer {wanted or '2xx'} within {SERVER_TIMEOUT} s"

    def run_doc(self, doc: Doc) -> Result:
        docker_ports, result, previous_ok = set(compose_ports()), Result(), False
        started = time.monotonic()
        for block in doc.blocks:
            kind = plan(block, docker_ports)
            if kind.mode == "text":
                mismatch = None
                if block.marker("output") is not None and previous_ok:
                    mismatch = output_mismatch(block.text, self.last_output)
                if mismatch:
                    result.failures.append(f"{block.where}: output differs: {mismatch}\n--- output of the block before ---\n"
                                           f"{self.last_output[-4000:]}")
                continue
            if not kind.executed:
                result.checked += 1
                previous_ok = False
                continue
            result.executed += 1
            problem = self.start(block) if kind.mode == "background" else self.run(block)
            previous_ok = problem is None
            if problem:
                result.failures.append(f"{block.where}: {problem}\n--- the block ---\n{block.text}"
                                       f"--- its output (last 4000 characters) ---\n{self.last_output[-4000:]}")
                break
        result.seconds = time.monotonic() - started
        return result

    def close(self) -> None:
        for process, _ in self.servers:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.servers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.servers = []


class Workshop:
    """The exercises of CHAIN, run in order in one workspace; each test asks for the ones it needs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.workspace: Workspace | None = None
        self.results: dict[str, Result] = {}

    def through(self, name: str) -> Result:
        if self.workspace is None:
            self.workspace = Workspace(self.folder, activated=False)
        for step in CHAIN[: CHAIN.index(name) + 1]:
            if step not in self.results:
                failed = [s for s, r in self.results.items() if r.failures]
                if failed:
                    self.results[step] = Result([f"not run: {failed[0]} failed before it"])
                else:
                    self.results[step] = self.workspace.run_doc(read_doc(f"instructions/{step}"))
        return self.results[name]

    def close(self) -> None:
        if self.workspace is not None:
            self.workspace.close()
            if all(not r.failures for r in self.results.values()):
                shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    runner = Workshop(tmp_path_factory.mktemp("docs-workshop"))
    yield runner
    runner.close()


@pytest.mark.parametrize("name", CHAIN)
def test_exercise_runs_as_written(workshop, name):
    result = workshop.through(name)
    assert not result.failures, "\n\n".join(result.failures)


@pytest.mark.parametrize("path", STANDALONE)
def test_document_runs_as_written(tmp_path, path):
    workspace = Workspace(tmp_path, activated=True)
    try:
        result = workspace.run_doc(read_doc(path))
    finally:
        workspace.close()
    assert not result.failures, "\n\n".join(result.failures)


def test_the_runner_carries_state_and_can_fail(tmp_path):
    def block(line, lang, text, *markers):
        return Block("synthetic.md", line, lang, text, markers)

    workspace = Workspace(tmp_path, activated=True)
    outside = shlex.quote(str(ROOT))
    doc = Doc("synthetic.md", (
        block(1, "bash", "export GREETING=hello\nmkdir -p build && cd build\n"),
        block(2, "bash", f'test "$GREETING" = hello && test "$(basename "$PWD")" = build && test "$PWD" != {outside}\n'),
        block(3, "bash", "cd .. && python3 -c 'import cd4ml, sys; sys.exit(0 if cd4ml.__file__.startswith(sys.argv[1]) else 1)' "
                         + shlex.quote(str(workspace.root)) + "\n"),
        block(4, "bash", "exit 4\n", "exit 4"),
        block(5, "bash", "echo 'r2            0.7786'\n"),
        block(6, "text", "r2 0.7855\n", "output"),
        block(7, "bash", "exit 3\n", "exit 4"),
        block(8, "bash", "echo never reached\n"),
    ), "")
    try:
        result = workspace.run_doc(doc)
    finally:
        workspace.close()
    assert [f.split(":", 2)[1] for f in result.failures] == ["6", "7"], result.failures
    assert "exited with 3, expected 4" in result.failures[1]
    assert result.executed == 6  # a wrong output is reported and the run goes on; a failing block ends it


def test_output_check_can_fail():
    output = "r2            0.7786    0.7575    0.9383\nFinished: SUCCESS\n"
    assert output_mismatch("r2 0.7786 ...\nFinished: SUCCESS", output) is None
    assert output_mismatch("r2 0.7855 ...", output) is not None
    assert output_mismatch("Finished: SUCCESS\nr2 ...", output) is not None  # order matters


# --- the list ------------------------------------------------------------------------------------

def main() -> int:
    """Print each command block of each document and what the test does with it."""
    docker_ports = set(compose_ports())
    totals: dict[str, list[int]] = {}
    for path in DOCS:
        doc = read_doc(path)
        print(path)
        for block in doc.blocks:
            kind = plan(block, docker_ports)
            if kind.mode == "text":
                if block.marker("output") is not None or block.marker("excerpt"):
                    print(f"  {block.line:>4}  compared   {'output' if block.marker('output') is not None else 'excerpt'}")
                continue
            n = count_commands(block.text)
            what = "executed" if kind.executed else "checked"
            totals.setdefault(path, [0, 0, 0, 0])
            index = 0 if kind.executed else 2
            totals[path][index] += 1
            totals[path][index + 1] += n
            first = commands_of(block.text)[0] if commands_of(block.text) else ""
            print(f"  {block.line:>4}  {what:<9}  {kind.mode:<10} {n} command(s)  {first[:60]}"
                  + (f"  ({kind.reason})" if kind.reason and not kind.executed else ""))
    print("\nper document: executed blocks/commands, syntax-checked blocks/commands")
    for path, (eb, ec, cb, cc) in totals.items():
        print(f"  {path:<40} {eb:>2}/{ec:<3} {cb:>2}/{cc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
