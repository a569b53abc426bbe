"""The local pipeline runner: the Jenkinsfile's stages, run in order on this machine.

The stage commands are read from the Jenkinsfile itself, so the two cannot drift apart. Like
Jenkins, the run stops at the first failing stage; later stages are NOT_BUILT.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cd4ml.errors import ConfigError

_STAGE = re.compile(r"""stage\s*\(\s*(['"])(?P<name>.+?)\1\s*\)\s*\{""")
_SH = re.compile(r"""\bsh\s+(?P<q>'''|'|")(?P<command>.*?)(?P=q)""", re.S)


@dataclass(frozen=True)
class Stage:
    name: str
    command: str


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str  # SUCCESS, FAILURE, NOT_BUILT (after a failure) or SKIPPED (before --from)
    exit_code: int = 0
    seconds: float = 0.0


@dataclass
class Outcome:
    results: list[StageResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "FAILURE" if any(r.status == "FAILURE" for r in self.results) else "SUCCESS"

    @property
    def exit_code(self) -> int:
        return next((r.exit_code for r in self.results if r.status == "FAILURE"), 0)


def parse_stages(jenkinsfile: str) -> list[Stage]:
    """Each stage's name and its single `sh` command, in order."""
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
        stages.append(Stage(name, commands[0]))
    if not stages:
        raise ConfigError("the Jenkinsfile has no stages with an sh step.", "Check its `stages { ... }` block.")
    return stages


def run_stages(
    stages: list[Stage], cwd: Path, say: Callable[[str], None], start: str | None = None
) -> Outcome:
    """Run the stages from `start` (default: the first) until one fails."""
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
        say(f"+ {stage.command}")
        clock = time.perf_counter()
        code = subprocess.run(["bash", "-c", stage.command], cwd=cwd).returncode
        seconds = time.perf_counter() - clock
        failed = code != 0
        outcome.results.append(StageResult(stage.name, "FAILURE" if failed else "SUCCESS", code, seconds))
        say(f"[Pipeline] }} ({stage.name}: {'FAILURE, exit code ' + str(code) if failed else 'SUCCESS'}, {seconds:.1f} s)")
    for result in outcome.results:
        say(f"  {result.stage:<12} {result.status}")
    say(f"Finished: {outcome.status}")
    return outcome
