"""Settings and paths: the only reader of environment variables and of the params file.

Precedence, merged once at the CLI entry and then frozen:
    defaults in code < params.toml < CD4ML_<SECTION>_<KEY> environment variables < CLI flags
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from cd4ml.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = ROOT / "params.toml"
# The params file of each built-in problem, relative to ROOT: `serve` serves every one whose
# registered model has a production version. A test's problem gives its own (register_problem).
PROBLEM_PARAMS = {"favorita": "params.toml", "houses": "params-houses.toml"}
EXTRA_PROBLEMS_VARIABLE = "CD4ML_EXTRA_PROBLEMS"


def problem_tracking(params_file: Path) -> tuple[str, str, str]:
    """(problem, experiment, registered model) as a problem's params file says them, over the
    defaults: no CD4ML_* variable applies, they belong to the params the command was given."""
    merged = copy.deepcopy(DEFAULTS)
    _deep_merge(merged, _parse_params(_read_params(params_file), params_file))
    tracking = merged["tracking"]
    return (_string(merged["problem"], f"{params_file.name} problem"),
            _string(tracking["experiment"], f"{params_file.name} [tracking] experiment"),
            _string(tracking["registered_model"], f"{params_file.name} [tracking] registered_model"))


def extra_problem_modules(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The modules CD4ML_EXTRA_PROBLEMS names (comma-separated): each registers a problem when imported,
    in every process that reads it (the CLI, gunicorn's workers)."""
    text = (os.environ if environ is None else environ).get(EXTRA_PROBLEMS_VARIABLE, "")
    return tuple(name.strip() for name in text.split(",") if name.strip())
BRANCH_VARIABLES = ("CD4ML_BRANCH", "BRANCH_NAME", "GIT_BRANCH")  # ours; Jenkins multibranch's; Jenkins git plugin's

DEFAULTS: dict[str, Any] = {
    "problem": "favorita",
    "seed": 42,
    "data": {
        "source": "workshop/store47-2016.csv",
        "items": [99197, 105574, 1963838],  # the workshop's Milk, Cheese and Soap
        "stores": "all",
        "max_bad_rows": 0,
    },
    "split": {"by": "date", "validation_days": 57, "validation_fraction": 0.2},
    "features": {"set": "default"},
    "model": {"name": "gradient_boosting"},
    "acceptance": {"metric": "r2", "min_gain": 0.01, "min": 0.25, "max": 1.0, "tolerance": 0.02},
    "tracking": {"experiment": "sales-forecast", "registered_model": "sales-forecast"},
    "serving": {"host": "127.0.0.1", "port": 5005, "poll_seconds": 10.0, "workers": 2},
    "monitoring": {
        "window_days": 7,
        "min_events": 100,
        "psi_warn": 0.1,
        "psi_alert": 0.25,
        "top_items": 20,
        "max_latency_p99_ms": 250.0,
        "accuracy_tolerance": 0.1,
        "index": "model-*",
        "experiment": "sales-forecast-monitoring",
        "report_index": "cd4ml-monitoring",
        "report_refresh_seconds": 60.0,
    },
    "scale": {
        "mode": "auto",
        "auto_above_mb": 512,
        "strategy": "sample",
        "sample_rows": 2_000_000,
        "partition_mb": 16,
        "threads": 0,
        "max_rows": 0,
        "dask_scheduler": "",
    },
}

# --- each problem's own defaults (issue 15): what differs from DEFAULTS above ------------------
# A problem's [data] table replaces DEFAULTS' (its keys are the only ones it takes); its other
# tables are merged over DEFAULTS'. A params file's `problem = "..."` (or CD4ML_PROBLEM) picks one.
PROBLEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "favorita": {"data": DEFAULTS["data"]},
    "houses": {
        "data": {"source": "houses/sales.csv", "max_bad_rows": 0},
        "split": {"by": "date", "validation_days": 90},
        "model": {  # prices are in dollars and multiplicative: deeper trees, a larger lasso alpha
            "name": "gradient_boosting",
            "gradient_boosting": {"loss": "poisson", "max_iter": 100, "learning_rate": 0.1, "max_depth": 4,
                                  "early_stopping": False},
            "random_forest": {"n_estimators": 20, "min_samples_leaf": 10, "max_features": 0.3},
            "lasso": {"alpha": 100.0},
        },
        "acceptance": {"metric": "r2", "min_gain": 0.2, "min": 0.5, "max": 1.0, "tolerance": 0.02},
        "tracking": {"experiment": "house-prices", "registered_model": "house-prices"},
        "monitoring": {"experiment": "house-prices-monitoring"},
    },
}
PROBLEM_METRICS = {"favorita": ("r2", "nwrmsle", "mae"), "houses": ("r2", "rmse", "mae", "mape")}
SCALE_PROBLEMS = ("favorita",)  # the problems that can take the scale path (docs/scale.md)
SPLITS = ("date", "hash")


@dataclass(frozen=True)
class Paths:
    """Every place on disk the project reads or writes by default."""

    root: Path  # the repository: code, Jenkinsfile, run_python_script.py
    data_dir: Path  # generated data, the embedded MLflow store, logs: data/ or $CD4ML_DATA_DIR

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow_dir / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def prediction_log(self) -> Path:
        return self.data_dir / "predictions.jsonl"

    @property
    def last_run_file(self) -> Path:
        return self.data_dir / "last_run.json"

    @property
    def profiles_dir(self) -> Path:
        return self.data_dir / "profiles"

    @property
    def monitoring_dir(self) -> Path:
        return self.data_dir / "monitoring"

    @property
    def monitoring_report(self) -> Path:
        """The last report `monitor` wrote; the model server's /monitoring page shows it."""
        return self.monitoring_dir / "latest.json"

    @property
    def quickstart_dir(self) -> Path:
        """quickstart's own data folder (MLflow store, last run, events): the exercises' registry stays empty."""
        return self.data_dir / "quickstart"

    def worker_counts(self, port: int) -> Path:
        """Where the workers of the server on this port share their event counts (serving.worker_counts)."""
        return self.data_dir / f"workers-{port}"

    def generated(self, size: str) -> Path:
        """Where generate-data writes a data set of this size by default."""
        return self.data_dir / size


@dataclass(frozen=True)
class DataSettings:
    source: Path
    items: frozenset[int] | None  # None: all items (and for problems without items)
    stores: frozenset[int] | None  # None: all stores (and for problems without stores)
    max_bad_rows: int


@dataclass(frozen=True)
class ModelSettings:
    name: str
    params: Mapping[str, Any]  # the hyperparameters of the chosen model, as written
    name_from: str = "[model] name"  # where the name came from, for errors: "--model", "params.toml line 19: ..."
    params_from: Mapping[str, str] = field(default_factory=dict)  # hyperparameter -> where it came from; "": the table


@dataclass(frozen=True)
class AcceptanceSettings:
    metric: str
    min_gain: float  # beat the naive baseline on the same validation rows by this much
    min: float
    max: float
    tolerance: float


@dataclass(frozen=True)
class TrackingSettings:
    uri: str
    experiment: str
    registered_model: str
    artifact_location: str | None  # set for the embedded store, None for a remote server
    build_number: str | None
    remote: bool


@dataclass(frozen=True)
class ServingSettings:
    host: str
    port: int
    poll_seconds: float
    workers: int
    admin_token: str | None
    fluentd_host: str | None
    fluentd_port: int


@dataclass(frozen=True)
class MonitoringSettings:
    window_days: float  # `monitor` without --since looks this many days back
    min_events: int  # fewer events (or forecasts with actuals) than this: reported, not judged
    psi_warn: float  # population stability index: a warning from here
    psi_alert: float  # and an alert (exit 5) from here
    top_items: int  # product drift compares the training's top items, the rest as "other"
    max_latency_p99_ms: float  # an alert when the 99th percentile latency is above this
    accuracy_tolerance: float  # an alert when live accuracy is worse than validation by more
    index: str  # Elasticsearch indices of prediction events
    experiment: str  # the MLflow experiment of monitoring runs
    report_index: str  # Elasticsearch index of the reports' summary figures (when events come from there)
    report_refresh_seconds: float  # a server without a local log reads the latest report from MLflow this often
    elasticsearch_url: str | None  # CD4ML_ELASTICSEARCH_URL; None: events come from the JSONL log
    elasticsearch_user: str | None  # CD4ML_ELASTICSEARCH_USER
    elasticsearch_password: str | None = field(default=None, repr=False)  # CD4ML_ELASTICSEARCH_PASSWORD

    @property
    def default_source(self) -> str:
        """Where `monitor` reads events by default: Elasticsearch when a URL is configured."""
        return "elasticsearch" if self.elasticsearch_url else "jsonl"


SCALE_MODES = ("auto", "on", "off")
SCALE_STRATEGIES = ("sample", "all")


@dataclass(frozen=True)
class ScaleSettings:
    """The scale path (docs/scale.md): Arrow batches, exact totals, a model trained on a sample."""

    mode: str  # "auto": the scale path when train.csv is larger than auto_above_mb; "on"; "off"
    auto_above_mb: float
    strategy: str  # "sample": train on sample_rows training rows drawn uniformly; "all": on every one
    sample_rows: int
    partition_mb: float  # bytes of train.csv per batch, and per Dask task
    threads: int  # batches read at once in this process; 0: one per core
    max_rows: int | None  # only the first max_rows data lines of train.csv (None: all)
    dask_scheduler: str | None  # "local" (a LocalCluster here) or a scheduler address; None: no Dask


@dataclass(frozen=True)
class Commands:
    """How the hints we print name our programs, so that they work as typed in the user's shell."""

    python: str = "python3"
    mlflow: str = "mlflow"

    @property
    def script(self) -> str:
        return f"{self.python} run_python_script.py"


def shell_commands(environ: Mapping[str, str], executable: str = sys.executable) -> Commands:
    """`python3` and `mlflow` when the shell's PATH finds this interpreter's folder first (the venv
    is active), else their paths in that folder (`.venv/bin/python`), relative to here when inside."""
    folder = Path(executable).parent
    found = shutil.which("python3", path=environ.get("PATH", os.defpath))
    if found and Path(found).parent.resolve() == folder.resolve():
        return Commands()
    try:
        shown = folder.absolute().relative_to(Path.cwd())
    except ValueError:
        shown = folder.absolute()
    return Commands(python=str(shown / "python"), mlflow=str(shown / "mlflow"))


@dataclass(frozen=True)
class Provenance:
    """What a run is built from besides its params file, for the experiment rule (cd4ml/run_kind.py)."""

    changed: Mapping[str, str] = field(default_factory=dict)  # dotted key -> the CD4ML_* variable or CLI flag that set it
    flags: tuple[str, ...] = ()  # the CLI flags given that change what is built: "--set model.name=lasso", "--model lasso"
    branch: str | None = None  # the branch the environment names (BRANCH_VARIABLES); None: ask git
    defaults_file: Path | None = None  # the file of the defaults: --problem's, else CD4ML_PARAMS; None: PROBLEM_PARAMS


@dataclass(frozen=True)
class Settings:
    problem: str
    seed: int
    data: DataSettings
    validation_days: int
    model: ModelSettings
    acceptance: AcceptanceSettings
    tracking: TrackingSettings
    serving: ServingSettings
    monitoring: MonitoringSettings
    scale: ScaleSettings
    paths: Paths
    params_file: Path
    raw: Mapping[str, Any] = field(repr=False)  # the merged params, for logging to MLflow
    commands: Commands = Commands()  # how hints name python and mlflow in the user's shell
    split_by: str = "date"  # [split] by: "date" (the last validation_days) or "hash" (of the row ids)
    validation_fraction: float = 0.2  # [split] validation_fraction of the rows, for by = "hash"
    feature_set: str = "default"  # [features] set: one of the problem's named feature sets
    provenance: Provenance = Provenance()  # what the experiment rule needs besides raw (cd4ml/run_kind.py)


def load_settings(
    params_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    problem: str | None = None,
    sets: tuple[str, ...] | list[str] = (),
) -> Settings:
    """Merge defaults, the params file, CD4ML_* variables and CLI overrides; validate; freeze.

    `overrides` uses dotted keys, e.g. {"data.source": "x.csv", "model.name": "ridge"}; `flags` names the
    CLI flag of each ({"model.name": "--model"}), for errors. `sets` are --set KEY=VALUE texts (values in
    TOML syntax), applied last. `problem` (--problem) picks that problem's file of PROBLEM_PARAMS unless
    `params_file` (--params) is given. `data_dir` replaces data/ or $CD4ML_DATA_DIR (quickstart keeps its
    own store there).
    """
    environ = os.environ if environ is None else environ
    params_file = Path(params_file or problem_params(problem) or environ.get("CD4ML_PARAMS") or PARAMS_FILE)  # --params beats both
    text = _read_params(params_file)
    from_file = _parse_params(text, params_file)
    from_env, env_names = _env_overrides(environ)
    given = {dotted: value for dotted, value in (overrides or {}).items() if value is not None}
    flag_names = {dotted: (flags or {}).get(dotted, f"the override {dotted}") for dotted in given}
    origins = Origins(params_file.name, key_lines(text), env_names, flag_names)
    merged = problem_defaults(given.get("problem", from_env.get("problem", from_file.get("problem", DEFAULTS["problem"]))),
                              origins)
    _deep_merge(merged, from_file)
    _deep_merge(merged, from_env)
    for dotted, value in given.items():
        _set_dotted(merged, dotted, value)
    set_values = parse_sets(sets, merged, params_file.name)
    for dotted, value in set_values.items():
        _set_dotted(merged, dotted, value)
        flag_names[dotted] = f"--set {dotted}"  # origins holds this dict: errors name the --set
    shown = [f"{flag_names[d]} {given[d]}" for d in given if flag_names[d] in MODEL_FLAGS] + [f"--set {s.strip()}" for s in sets]
    if data_dir is not None:
        environ = {**environ, "CD4ML_DATA_DIR": str(data_dir)}
    settings = _validate(merged, params_file, environ, origins)
    defaults_file = problem_params(problem) or _environment_defaults(environ, settings.problem)
    provenance = Provenance(changed={**env_names, **flag_names}, flags=tuple(shown), branch=_branch(environ),
                            defaults_file=defaults_file)
    return replace(settings, provenance=provenance)


def _environment_defaults(environ: Mapping[str, str], problem: str) -> Path | None:
    """The defaults' file CD4ML_PARAMS names, when it is this problem's (a Favorita file says
    nothing of a houses run's defaults); None: PROBLEM_PARAMS decides."""
    named = environ.get("CD4ML_PARAMS")
    if not named:
        return None
    try:
        return Path(named) if problem_tracking(Path(named))[0] == problem else None
    except ConfigError:
        return Path(named)  # an unreadable file: the rule says why it is no candidate


MODEL_FLAGS = ("--model", "--items", "--stores")  # the CLI flags that change what is built (and --set)


def problem_params(problem: str | None) -> Path | None:
    """The default params file of a problem named by --problem (None: no --problem)."""
    if problem is None or not str(problem).strip():
        return None
    if problem not in PROBLEM_PARAMS:
        raise ConfigError(f"--problem must be one of {', '.join(PROBLEM_PARAMS)}; got {problem!r}.",
                          "Name a problem of cd4ml/config.py PROBLEM_PARAMS, or pass --params FILE.")
    return ROOT / PROBLEM_PARAMS[problem]


def parse_sets(sets: tuple[str, ...] | list[str], known: Mapping[str, Any], file_name: str) -> dict[str, Any]:
    """--set KEY=VALUE texts as {dotted key: value}: VALUE in TOML syntax (a bare word is a string).
    KEY must be a key of the defaults or the params file, or a hyperparameter model.<name>.<key>
    (cd4ml/pipeline/models.py checks those)."""
    found: dict[str, Any] = {}
    for text in sets:
        dotted, sep, value = str(text).partition("=")
        dotted = dotted.strip()
        if not sep or not dotted:
            raise ConfigError(f"--set takes KEY=VALUE; got {text!r}.", "E.g. --set model.name=lasso --set model.lasso.alpha=0.5.")
        parts = dotted.split(".")
        node: Any = known
        for depth, key in enumerate(parts):
            hyperparameter = parts[0] == "model" and depth >= 1 and len(parts) == 3
            if not hyperparameter and not (isinstance(node, Mapping) and key in node):
                where = ".".join(parts[:depth]) or "the top level"
                keys = ", ".join(sorted(node)) if isinstance(node, Mapping) else "none (it is a value)"
                raise ConfigError(f"--set {dotted}: {file_name} and the defaults have no key {key!r} in {where}; "
                                  f"its keys: {keys}.", "Name one of them.")
            node = node.get(key) if isinstance(node, Mapping) else None
        found[dotted] = _parse_env_value(value.strip())
    return found


def _branch(environ: Mapping[str, str]) -> str | None:
    """The branch the environment names: CD4ML_BRANCH, Jenkins' BRANCH_NAME, or its git plugin's GIT_BRANCH
    (origin/main), without the remote."""
    for name in BRANCH_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value.removeprefix("refs/heads/").removeprefix("origin/")
    return None


def committed_defaults(text: str, path: Path) -> dict[str, Any]:
    """The merged params a params file's text gives with nothing overriding it (for cd4ml/run_kind.py)."""
    from_file = _parse_params(text, path)
    merged = problem_defaults(from_file.get("problem", DEFAULTS["problem"]))
    _deep_merge(merged, from_file)
    return merged


def problem_defaults(problem: Any, where: "Origins | None" = None) -> dict[str, Any]:
    """DEFAULTS with the problem's own over them (PROBLEM_DEFAULTS): its [data] table replaces DEFAULTS'.
    A problem outside cd4ml/problems is known once the module CD4ML_EXTRA_PROBLEMS names registers it."""
    if isinstance(problem, str) and problem not in PROBLEM_DEFAULTS and extra_problem_modules():
        from cd4ml.problems import known_problems  # deferred: cd4ml.problems imports this module

        known_problems()  # imports the extra modules, whose register_problem calls add their defaults
    if not isinstance(problem, str) or problem not in PROBLEM_DEFAULTS:
        name = where("problem") if where else "problem"
        raise ConfigError(f"{name} must be one of {', '.join(PROBLEM_DEFAULTS)}; got {problem!r}.")
    merged = copy.deepcopy(DEFAULTS)
    own = copy.deepcopy(PROBLEM_DEFAULTS[problem])
    merged["data"] = own.pop("data")
    _deep_merge(merged, own)
    return merged


@dataclass(frozen=True)
class Origins:
    """Where each value came from, for errors: a CLI flag, an environment variable, or a line of the params file."""

    file: str
    lines: Mapping[str, int]  # dotted key -> line in the params file
    env: Mapping[str, str]  # dotted key -> the CD4ML_* variable that set it
    flags: Mapping[str, str]  # dotted key -> the CLI flag that set it

    def __call__(self, dotted: str) -> str:
        section, _, key = dotted.rpartition(".")
        name = f"[{section}] {key}" if section else key
        if dotted in self.flags:
            return self.flags[dotted]
        if dotted in self.env:
            return self.env[dotted]
        if dotted in self.lines:
            return f"{self.file} line {self.lines[dotted]}: {name}"
        if f"[{dotted}]" in self.lines:  # a table: [model.ridge]
            return f"{self.file} line {self.lines[f'[{dotted}]']}: [{dotted}]"
        return f"{name} (a default in cd4ml/config.py)" if section or key in DEFAULTS else name


_TABLE = re.compile(r"^\[\s*([\w.\-\s\"']+?)\s*\](?!\])")
_KEY = re.compile(r"^([\w\-]+)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """The line of each key and table of a TOML text, by dotted name: {"model.name": 19, "[model.ridge]": 33}.
    tomllib gives values, not positions; this reads the lines (a key inside a multi-line string may be
    taken for one: it is only ever used to point at a line)."""
    lines: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if (header := _TABLE.match(stripped)) and not stripped.startswith("[["):
            table = re.sub(r"[\s\"']", "", header[1])
            lines.setdefault(f"[{table}]", number)
        elif key := _KEY.match(stripped):
            lines.setdefault(f"{table}.{key[1]}" if table else key[1], number)
    return lines


def _read_params(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"params file {path} not found.", "Create it, or point CD4ML_PARAMS at one."
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read params file {path}: {err.strerror}.", "Point CD4ML_PARAMS or --params at a readable file.") from None


def _parse_params(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"params file {path} is not valid TOML: {err}.", "Fix the syntax.") from None


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """CD4ML_<SECTION>_<KEY>=value for every key of a section in DEFAULTS (values in TOML syntax),
    and the variable that set each dotted key."""
    found: dict[str, Any] = {}
    names_of: dict[str, str] = {}
    for section, keys in DEFAULTS.items():
        if not isinstance(keys, dict):
            names = {f"CD4ML_{section.upper()}": (section,)}
        else:
            names = {f"CD4ML_{section.upper()}_{key.upper()}": (section, key) for key in keys}
        for name, where in names.items():
            if name in environ:
                _set_dotted(found, ".".join(where), _parse_env_value(environ[name]))
                names_of[".".join(where)] = name
    if environ.get("DASK_SCHEDULER_ADDRESS", "").strip():  # Dask's own variable for the scheduler to use
        _set_dotted(found, "scale.dask_scheduler", environ["DASK_SCHEDULER_ADDRESS"].strip())
        names_of["scale.dask_scheduler"] = "DASK_SCHEDULER_ADDRESS"
    return found, names_of


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _set_dotted(into: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = into
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _validate(p: dict[str, Any], params_file: Path, environ: Mapping[str, str], where: "Origins") -> Settings:
    data_dir = Path(environ.get("CD4ML_DATA_DIR", ROOT / "data")).resolve()
    paths = Paths(root=ROOT, data_dir=data_dir)

    problem = _string(p["problem"], f"{where('problem')}")
    data = p["data"]
    allowed = PROBLEM_DEFAULTS[problem]["data"]
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{where(f'data.{key}')} is not a setting of the {problem} problem; "
                              f"its [data] takes {', '.join(allowed)}.", "Leave it out.")
    split = p["split"]
    split_by = _string(split["by"], f"{where('split.by')}")
    if split_by not in SPLITS:
        raise ConfigError(f"{where('split.by')} must be one of {', '.join(SPLITS)}; got {split_by!r}.")
    fraction = _number(split["validation_fraction"], f"{where('split.validation_fraction')}", minimum=0)
    if not 0 < fraction < 1:
        raise ConfigError(f"{where('split.validation_fraction')} must be a number between 0 and 1; got {fraction!r}.")
    model_name = _string(p["model"].get("name"), f"{where('model.name')}")
    model_params = p["model"].get(model_name, {})
    if not isinstance(model_params, Mapping):
        raise ConfigError(f"{where(f'model.{model_name}')} must be a table of hyperparameters.")
    acceptance = p["acceptance"]
    metric = _string(acceptance["metric"], f"{where('acceptance.metric')}")
    metrics = PROBLEM_METRICS[problem]
    if metric not in metrics:
        raise ConfigError(
            f"{where('acceptance.metric')} must be one of {', '.join(metrics)}; got {metric!r} (the {problem} problem's metrics)."
        )
    low = _number(acceptance["min"], f"{where('acceptance.min')}")
    high = _number(acceptance["max"], f"{where('acceptance.max')}")
    if low > high:
        raise ConfigError(f"{where('acceptance.min')} ({low}) must not exceed max ({high}).")
    tracking = p["tracking"]
    serving = p["serving"]
    monitoring = _monitoring(p["monitoring"], where, environ)
    uri = environ.get("MLFLOW_TRACKING_URI", "").strip()
    remote = bool(uri)
    if not remote:
        uri = f"sqlite:///{paths.mlflow_db}"
    return Settings(
        problem=problem,
        seed=_integer(p["seed"], f"{where('seed')}", minimum=0),
        data=DataSettings(
            source=_path(data["source"], data_dir, f"{where('data.source')}"),
            items=_selection(data.get("items", "all"), f"{where('data.items')}"),
            stores=_selection(data.get("stores", "all"), f"{where('data.stores')}"),
            max_bad_rows=_integer(data["max_bad_rows"], f"{where('data.max_bad_rows')}", minimum=0),
        ),
        validation_days=_integer(
            p["split"]["validation_days"], f"{where('split.validation_days')}", minimum=1
        ),
        model=ModelSettings(name=model_name, params=dict(model_params), name_from=where("model.name"),
                            params_from={"": where(f"model.{model_name}"),
                                         **{key: where(f"model.{model_name}.{key}") for key in model_params}}),
        acceptance=AcceptanceSettings(
            metric=metric,
            min=low,
            max=high,
            tolerance=_number(acceptance["tolerance"], f"{where('acceptance.tolerance')}", minimum=0),
            min_gain=_number(acceptance["min_gain"], f"{where('acceptance.min_gain')}", minimum=0),
        ),
        tracking=TrackingSettings(
            uri=uri,
            experiment=_string(tracking["experiment"], f"{where('tracking.experiment')}"),
            registered_model=_string(
                tracking["registered_model"], f"{where('tracking.registered_model')}"
            ),
            artifact_location=None if remote else paths.mlflow_artifacts.as_uri(),
            build_number=environ.get("BUILD_NUMBER") or None,
            remote=remote,
        ),
        serving=ServingSettings(
            host=_string(serving["host"], f"{where('serving.host')}"),
            port=_integer(serving["port"], f"{where('serving.port')}", minimum=1, maximum=65535),
            poll_seconds=_number(serving["poll_seconds"], f"{where('serving.poll_seconds')}", minimum=0),
            workers=_integer(serving["workers"], f"{where('serving.workers')}", minimum=1),
            admin_token=environ.get("CD4ML_ADMIN_TOKEN") or None,
            fluentd_host=environ.get("FLUENTD_HOST") or None,
            fluentd_port=_integer(environ.get("FLUENTD_PORT", 24224), "FLUENTD_PORT", minimum=1),
        ),
        monitoring=monitoring,
        scale=_scale(p["scale"], where, environ),
        paths=paths,
        params_file=params_file,
        raw=p,
        commands=shell_commands(environ),
        split_by=split_by,
        validation_fraction=fraction,
        feature_set=_string(p["features"]["set"], f"{where('features.set')}"),
    )


def _monitoring(m: Mapping[str, Any], where: Origins, environ: Mapping[str, str]) -> MonitoringSettings:
    warn = _number(m["psi_warn"], f"{where('monitoring.psi_warn')}", minimum=0)
    alert = _number(m["psi_alert"], f"{where('monitoring.psi_alert')}", minimum=0)
    if warn > alert:
        raise ConfigError(f"{where('monitoring.psi_warn')} ({warn}) must not exceed psi_alert ({alert}).")
    window = _number(m["window_days"], f"{where('monitoring.window_days')}", minimum=0)
    if window <= 0:
        raise ConfigError(f"{where('monitoring.window_days')} must be a number > 0; got {m['window_days']!r}.")
    url = environ.get("CD4ML_ELASTICSEARCH_URL", "").strip() or None
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"CD4ML_ELASTICSEARCH_URL must start with http:// or https://; got {url!r}.",
            "E.g. CD4ML_ELASTICSEARCH_URL=http://localhost:9200, or unset it to read data/predictions.jsonl.",
        )
    return MonitoringSettings(
        window_days=window,
        min_events=_integer(m["min_events"], f"{where('monitoring.min_events')}", minimum=1),
        psi_warn=warn,
        psi_alert=alert,
        top_items=_integer(m["top_items"], f"{where('monitoring.top_items')}", minimum=1),
        max_latency_p99_ms=_number(m["max_latency_p99_ms"], f"{where('monitoring.max_latency_p99_ms')}", minimum=0),
        accuracy_tolerance=_number(m["accuracy_tolerance"], f"{where('monitoring.accuracy_tolerance')}", minimum=0),
        index=_string(m["index"], f"{where('monitoring.index')}"),
        experiment=_string(m["experiment"], f"{where('monitoring.experiment')}"),
        report_index=_string(m["report_index"], f"{where('monitoring.report_index')}"),
        report_refresh_seconds=_number(m["report_refresh_seconds"], f"{where('monitoring.report_refresh_seconds')}",
                                       minimum=0),
        elasticsearch_url=url,
        elasticsearch_user=environ.get("CD4ML_ELASTICSEARCH_USER") or None,
        elasticsearch_password=environ.get("CD4ML_ELASTICSEARCH_PASSWORD") or None,
    )


def _scale(sc: Mapping[str, Any], where: Origins, environ: Mapping[str, str]) -> ScaleSettings:
    mode = _string(str(sc["mode"]).lower() if isinstance(sc["mode"], bool) else sc["mode"], f"{where('scale.mode')}")
    mode = {"true": "on", "false": "off"}.get(mode, mode)
    if mode not in SCALE_MODES:
        raise ConfigError(f"{where('scale.mode')} must be one of {', '.join(SCALE_MODES)}; got {sc['mode']!r}.")
    strategy = _string(sc["strategy"], f"{where('scale.strategy')}")
    if strategy not in SCALE_STRATEGIES:
        raise ConfigError(
            f"{where('scale.strategy')} must be one of {', '.join(SCALE_STRATEGIES)}; got {strategy!r}."
        )
    partition_mb = _number(sc["partition_mb"], f"{where('scale.partition_mb')}", minimum=0)
    if partition_mb <= 0:
        raise ConfigError(f"{where('scale.partition_mb')} must be a number > 0; got {sc['partition_mb']!r}.")
    scheduler = str(sc["dask_scheduler"] or "").strip()
    threads = _integer(sc["threads"], f"{where('scale.threads')}", minimum=0)
    max_rows = _integer(sc["max_rows"], f"{where('scale.max_rows')}", minimum=0)
    return ScaleSettings(
        mode=mode,
        auto_above_mb=_number(sc["auto_above_mb"], f"{where('scale.auto_above_mb')}", minimum=0),
        strategy=strategy,
        sample_rows=_integer(sc["sample_rows"], f"{where('scale.sample_rows')}", minimum=1),
        partition_mb=partition_mb,
        threads=threads or (os.cpu_count() or 1),
        max_rows=max_rows or None,
        dask_scheduler=scheduler or None,
    )


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string; got {value!r}.")
    return value.strip()


def _integer(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer; got {value!r}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be an integer <= {maximum}; got {value!r}.")
    return value


def _number(value: Any, name: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number; got {value!r}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be a number >= {minimum}; got {value!r}.")
    return float(value)


def _path(value: Any, root: Path, name: str) -> Path:
    path = Path(_string(str(value) if isinstance(value, Path) else value, name)).expanduser()
    return path if path.is_absolute() else (root / path)


def _selection(value: Any, name: str) -> frozenset[int] | None:
    """"all", a list of integers, or a comma-separated string of integers."""
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return None
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f'{name} must be "all" or a list of numbers; got {value!r}.')
    chosen = set()
    for item in value:
        try:
            chosen.add(int(str(item).strip()))
        except ValueError:
            raise ConfigError(
                f'{name} must be "all" or a list of numbers; got {item!r} in {value!r}.'
            ) from None
    return frozenset(chosen)


# --- stack-check: where the workshop stack (docker-compose.yml) answers -------------------------

STACK_DEFAULTS = {  # the ports docker-compose.yml publishes on 127.0.0.1
    "mlflow_url": "http://127.0.0.1:12000",
    "jenkins_url": "http://127.0.0.1:10000",
    "model_url": "http://127.0.0.1:11000",
    "elasticsearch_url": "http://127.0.0.1:9200",
    "kibana_url": "http://127.0.0.1:5601",
    "fluentd_url": "http://127.0.0.1:24220",  # fluentd's monitor agent
}


@dataclass(frozen=True)
class StackSettings:
    """Where stack-check looks (CD4ML_STACK_<NAME>_URL overrides each), and as whom."""

    mlflow_url: str
    jenkins_url: str
    model_url: str
    elasticsearch_url: str
    kibana_url: str
    fluentd_url: str
    jenkins_job: str
    jenkins_user: str
    elastic_user: str
    event_seconds: float  # how long a forecast's event may take to be searchable
    buffer_seconds: float  # at least this long between the two looks at fluentd's buffer
    timeout_seconds: float  # every HTTP request
    jenkins_password: str | None = field(default=None, repr=False)
    elastic_password: str | None = field(default=None, repr=False)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a compose .env file (comments, blank lines and quotes dropped); {} if absent."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            found[key.strip()] = value.strip().strip("'\"")
    return found


def load_stack_settings(environ: Mapping[str, str] | None = None, root: Path = ROOT) -> StackSettings:
    """The environment first, then the stack's own .env and Jenkins password file in `root`."""
    environ = os.environ if environ is None else environ
    dotenv = read_env_file(root / ".env")
    urls = {}
    for name, default in STACK_DEFAULTS.items():
        variable = f"CD4ML_STACK_{name.upper()}"
        url = environ.get(variable, "").strip().rstrip("/") or default
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{variable} must start with http:// or https://; got {url!r}.", f"E.g. {variable}={default}.")
        urls[name] = url
    try:
        jenkins_password = (root / "jenkins" / "jenkins-admin-password.txt").read_text(encoding="utf-8").strip() or None
    except OSError:
        jenkins_password = None
    return StackSettings(
        **urls,
        jenkins_job=environ.get("CD4ML_STACK_JENKINS_JOB", "cd4ml"),
        jenkins_user=environ.get("JENKINS_ADMIN_USER") or dotenv.get("JENKINS_ADMIN_USER") or "admin",
        elastic_user=environ.get("CD4ML_STACK_ELASTIC_USER", "elastic"),
        event_seconds=_env_seconds(environ, "CD4ML_STACK_EVENT_SECONDS", 60, minimum=0),
        buffer_seconds=_env_seconds(environ, "CD4ML_STACK_BUFFER_SECONDS", 5, minimum=0),
        timeout_seconds=_env_seconds(environ, "CD4ML_STACK_TIMEOUT_SECONDS", 5, minimum=0.1),
        jenkins_password=environ.get("CD4ML_STACK_JENKINS_PASSWORD") or jenkins_password,
        elastic_password=environ.get("ELASTIC_PASSWORD") or dotenv.get("ELASTIC_PASSWORD") or None,
    )


def _env_seconds(environ: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds; got {text!r}.", f"E.g. {name}={default}.") from None
    return _number(value, name, minimum=minimum)
