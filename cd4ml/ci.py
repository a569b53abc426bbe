"""The local pipeline runner: the Jenkinsfile's stages, run in order on this machine.

The stage commands are read from the Jenkinsfile itself, so the two cannot drift apart. Like
Jenkins, the run stops at the first failing stage; later stages are NOT_BUILT. It understands the
two things the Jenkinsfile uses to tell the Production path from the Experiment path:
  when { environment name: 'X', value: 'Y' }, and allOf / anyOf / not around them, evaluated on the
      build parameters (an unset parameter matches value '', as in pipeline-model-definition's
      EnvironmentConditional.environmentMatches); a stage whose condition is false is SKIPPED;
  catchError(buildResult: 'SUCCESS', stageResult: 'UNSTABLE') { sh '...' }: a failing command marks the
      stage with stageResult and the build goes on with buildResult.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from cd4ml.errors import ConfigError

_STAGE = re.compile(r"""stage\s*\(\s*(['"])(?P<name>.+?)\1\s*\)\s*\{""")
_SH = re.compile(r"""\bsh\s+(?P<q>'''|'|")(?P<command>.*?)(?P=q)""", re.S)


_WHEN = re.compile(r"\bwhen\s*\{")
_CATCH = re.compile(r"""\bcatchError\s*\((?P<args>[^)]*)\)""")
_ENVIRONMENT = re.compile(r"""environment\s+name\s*:\s*(['"])(?P<name>.*?)\1\s*,\s*value\s*:\s*(['"])(?P<value>.*?)\3""")
_ARG = re.compile(r"""(\w+)\s*:\s*(['"])(.*?)\2""")


@dataclass(frozen=True)
class Stage:
    name: str
    command: str
    when: Any = None  # None: always; else ("environment", name, value) | ("allOf"|"anyOf", [..]) | ("not", c)
    catch: tuple[str, str] | None = None  # catchError's (buildResult, stageResult)

    def runs(self, params: Mapping[str, str]) -> bool:
        return self.when is None or _holds(self.when, params)


def _holds(condition: Any, params: Mapping[str, str]) -> bool:
    kind = condition[0]
    if kind == "environment":
        return (params.get(condition[1]) or "") == condition[2]
    if kind == "not":
        return not _holds(condition[1], params)
    results = [_holds(child, params) for child in condition[1]]
    return all(results) if kind == "allOf" else any(results)


def parse_condition(text: str, stage: str) -> Any:
    """A `when` block's body as a condition tree; ConfigError for a condition the runner cannot evaluate."""
    conditions = []
    i = 0
    while i < len(text):
        rest = text[i:]
        if not rest.strip():
            break
        if rest[0] in " \t\n;":
            i += 1
            continue
        if env := _ENVIRONMENT.match(rest):
            conditions.append(("environment", env.group("name"), env.group("value")))
            i += env.end()
            continue
        word = re.match(r"(allOf|anyOf|not)\s*\{", rest)
        if not word:
            raise ConfigError(f"Jenkinsfile stage {stage!r}: the local runner cannot evaluate `when {{ {rest.strip()[:40]}`.",
                              "Use environment name: ..., value: ... inside allOf / anyOf / not.")
        start = i + word.end() - 1
        end = _closing(text, start)
        children = parse_condition(text[start + 1:end], stage)
        children = children[1] if children[0] == "allOf" and word[1] != "not" else [children]
        conditions.append(("not", children[0]) if word[1] == "not" else (word[1], children))
        i = end + 1
    if not conditions:
        raise ConfigError(f"Jenkinsfile stage {stage!r} has an empty `when` block.")
    return conditions[0] if len(conditions) == 1 else ("allOf", conditions)


def _closing(text: str, start: int) -> int:
    """The index of the brace closing the one at text[start] (the runner's Jenkinsfiles hold no braces in strings
    inside `when`)."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ConfigError("the Jenkinsfile has an unbalanced `{`.", "Check its braces.")


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str  # SUCCESS, FAILURE, UNSTABLE (caught), NOT_BUILT (after a failure), SKIPPED (before --from; when)
    exit_code: int = 0
    seconds: float = 0.0
    caught: bool = False  # failed inside catchError(buildResult: 'SUCCESS'): the build goes on, and succeeds


@dataclass
class Outcome:
    results: list[StageResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "FAILURE" if any(r.status == "FAILURE" and not r.caught for r in self.results) else "SUCCESS"

    @property
    def exit_code(self) -> int:
        return next((r.exit_code for r in self.results if r.status == "FAILURE" and not r.caught), 0)


def parse_stages(jenkinsfile: str) -> list[Stage]:
    """Each stage's name, its single `sh` command, its `when` condition and catchError, in order."""
    starts = list(_STAGE.finditer(jenkinsfile))
    stages = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(jenkinsfile)
        commands = [m.group("command").strip() for m in _SH.finditer(jenkinsfile, match.end(), end)]
        name = match.group("name")
        if len(commands) != 1:
            raise ConfigError(
                f"Jenkinsfile stage {name!r} has {len(commands)} sh steps; the local runner needs one `sh` step per stage.",
                "Keep each stage one shell command.",
            )
        body = jenkinsfile[match.end():end]
        when = None
        if found := _WHEN.search(body):
            when = parse_condition(body[found.end():_closing(body, found.end() - 1)], name)
        catch = None
        if caught := _CATCH.search(body):
            args = {key: value for key, _, value in _ARG.findall(caught.group("args"))}
            catch = (args.get("buildResult", "FAILURE"), args.get("stageResult", "FAILURE"))
            if catch[0] != "SUCCESS":
                raise ConfigError(f"Jenkinsfile stage {name!r}: the local runner understands catchError(buildResult: "
                                  f"'SUCCESS', stageResult: ...) only; got buildResult {catch[0]!r}.",
                                  "A failure that should fail the build needs no catchError.")
        stages.append(Stage(name, commands[0], when, catch))
    if not stages:
        raise ConfigError("the Jenkinsfile has no stages with an sh step.", "Check its `stages { ... }` block.")
    return stages


def run_stages(
    stages: list[Stage], cwd: Path, say: Callable[[str], None], start: str | None = None,
    params: Mapping[str, str] | None = None,
) -> Outcome:
    """Run the stages from `start` (default: the first) until one fails; `params` are the build
    parameters, in the commands' environment and the `when` conditions' (as Jenkins exposes them)."""
    params = dict(params or {})
    names = [s.name for s in stages]
    if start is not None and start not in names:
        raise ConfigError(f"the Jenkinsfile has no stage {start!r}; its stages: {', '.join(names)}.")
    outcome = Outcome()
    started, failed = start is None, False
    for stage in stages:
        started = started or stage.name == start
        if not started or failed:
            outcome.results.append(StageResult(stage.name, "NOT_BUILT" if failed else "SKIPPED"))
            continue
        say(f"[Pipeline] {{ ({stage.name})")
        if not stage.runs(params):
            say(f'Stage "{stage.name}" skipped due to when conditional')  # Jenkins' words
            outcome.results.append(StageResult(stage.name, "SKIPPED"))
            continue
        say(f"+ {stage.command}")
        clock = time.perf_counter()
        code = subprocess.run(["bash", "-c", stage.command], cwd=cwd, env={**os.environ, **params}).returncode
        seconds = time.perf_counter() - clock
        caught = code != 0 and stage.catch is not None
        status = "SUCCESS" if code == 0 else stage.catch[1] if caught else "FAILURE"
        failed = code != 0 and not caught
        outcome.results.append(StageResult(stage.name, status, code, seconds, caught))
        shown = status if code == 0 else f"{status}, exit code {code}" + (", caught: the build goes on" if caught else "")
        say(f"[Pipeline] }} ({stage.name}: {shown}, {seconds:.1f} s)")
    for result in outcome.results:
        say(f"  {result.stage:<24} {result.status}")
    say(f"Finished: {outcome.status}")
    return outcome
