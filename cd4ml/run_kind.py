"""The experiment rule: a run is a production candidate only when it is built from the defaults on main.

A run is a **candidate** when all of these hold, and an **experiment** otherwise (docs/experiments.md):
  1. no CLI flag changed what is built: no --set, --model, --items or --stores;
  2. its parameters equal those of the defaults' file as committed at git HEAD (of the repository
     that holds it): its problem's file of config.PROBLEM_PARAMS, or the one --problem picks, or the
     one CD4ML_PARAMS names (the environment's choice), except the keys that say where things are
     rather than what is built (OPERATIONAL): so no uncommitted edit, no other params file with
     other values, no CD4ML_* variable that changes a value;
  3. the branch is main: CD4ML_BRANCH, Jenkins' BRANCH_NAME or GIT_BRANCH when set, else git's current
     branch; a detached HEAD (CI checks out a commit) is main's when a main ref (refs/heads/main or a
     remote's, origin/main) contains it, and an experiment otherwise, as is a folder outside git.
`decide` is the pure rule; `classify` reads git for it. tracking.py names the tags that record it; the registry refuses to
deploy experiments.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from cd4ml.config import PROBLEM_PARAMS, Settings, committed_defaults
from cd4ml.tracking import CANDIDATE, EXPERIMENT

MAIN = "main"
OPERATIONAL = ("data.source", "scale", "serving", "monitoring", "tracking")  # where data is, how it is computed,
# served, watched and recorded: the run's data.sha256 and scale tags record those; they do not change the recipe


@dataclass(frozen=True)
class RunKind:
    kind: str  # CANDIDATE or EXPERIMENT
    reason: str  # one line: why

    @property
    def experiment(self) -> bool:
        return self.kind == EXPERIMENT

    def __str__(self) -> str:
        return f"run kind: {self.kind} ({self.reason})"


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"name": "x"}} -> {"model.name": "x"}."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def recipe(params: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened params that say what is built: all but the OPERATIONAL keys."""
    return {k: v for k, v in flatten(params).items()
            if not any(k == op or k.startswith(f"{op}.") for op in OPERATIONAL)}


def decide(params: Mapping[str, Any], defaults: Mapping[str, Any] | None, default_file: str, flags: Sequence[str],
           branch: str | None, changed: Mapping[str, str], how: str = "") -> RunKind:
    """The rule, on facts: the run's merged params; the default file's merged params at HEAD (None: not
    readable there); the model-changing CLI flags given; the branch (None: a detached HEAD not known to be
    main's); what set each key; how git placed a detached HEAD, when it is one."""
    if flags:
        return RunKind(EXPERIMENT, f"{' '.join(flags)}")
    if defaults is None:
        return RunKind(EXPERIMENT, f"{default_file} is not committed at git HEAD")
    mine, theirs = recipe(params), recipe(defaults)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            source = changed.get(key, "the params file")
            return RunKind(EXPERIMENT, f"{key} = {mine.get(key)!r} from {source}; "
                                       f"{default_file} at git HEAD says {theirs.get(key)!r}")
    if branch is None:
        return RunKind(EXPERIMENT, f"{how or 'a detached HEAD'}; set CD4ML_BRANCH={MAIN} if this build is of {MAIN}")
    if branch != MAIN:
        return RunKind(EXPERIMENT, f"branch {branch}, not {MAIN}")
    return RunKind(CANDIDATE, f"the defaults of {default_file} on {MAIN}" + (f": {how}" if how else ""))


def classify(settings: Settings) -> RunKind:
    """The kind of the run these settings build, in this checkout."""
    provenance = settings.provenance
    root = settings.paths.root
    path = provenance.defaults_file
    if path is None:
        if settings.problem not in PROBLEM_PARAMS:
            return RunKind(EXPERIMENT, f"problem {settings.problem!r} has no default params file in PROBLEM_PARAMS")
        path = root / PROBLEM_PARAMS[settings.problem]
    path = path.resolve()
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if _git(path.parent, "rev-parse", "--git-dir") is None:
        return RunKind(EXPERIMENT, f"{name} is not in a git repository, so no commit of main built it; "
                                   "clone the repository to build production candidates")
    committed = _git(path.parent, "show", f"HEAD:./{path.name}")  # as committed in the repository that holds it
    defaults = committed_defaults(committed, path) if committed is not None else None
    branch, how = (provenance.branch, "") if provenance.branch else _current_branch(path.parent)
    return decide(settings.raw, defaults, name, provenance.flags, branch, provenance.changed, how)


def _current_branch(root: Path) -> tuple[str | None, str]:
    """git's branch, and for a detached HEAD how it stands to main: (MAIN, how) when a main ref (local or
    a remote's) contains it, (None, how) when none does."""
    name = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    if name:
        return name.strip(), ""
    refs = (_git(root, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{MAIN}",
                 f"refs/remotes/*/{MAIN}") or "").split()
    for ref in refs:
        if _git(root, "merge-base", "--is-ancestor", "HEAD", ref) is not None:
            return MAIN, f"a detached HEAD that {ref} contains"
    return None, "a detached HEAD that no main ref contains" if refs else "a detached HEAD and no main ref"


def _git(root: Path, *args: str) -> str | None:
    """git's output, or None when git fails (no checkout, no such file at HEAD, a detached HEAD)."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
