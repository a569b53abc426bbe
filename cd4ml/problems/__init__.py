"""The seam between the machinery (pipeline, tracking, serving) and a forecasting problem.

A problem knows its data (readers), its rows (process, filter), its features and its naive
baseline; for the server and monitoring, its Serving (request, form, events, join key; see the
"serving and monitoring" block below); for generate-data and a first run, its synthetic data (the
"data generation" block). The machinery knows none of that: it asks the problem
through this interface, so a second problem (the workshop's Zillow house prices:
cd4ml/problems/houses) is a new package here, one line in known_problems() and its defaults in
cd4ml/config.py (PROBLEM_DEFAULTS, PROBLEM_PARAMS), with no change to the pipeline, tracking or
serving code; a problem outside the package registers itself (register_problem).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np

from cd4ml.config import DataSettings
from cd4ml.errors import ConfigError, DataError


@dataclass
class Table:
    """The rows a run trains and validates on, materialised once as columns."""

    inputs: Any  # the model's input rows (a pandas DataFrame)
    target: np.ndarray  # what to forecast
    dates: np.ndarray  # the date of each row, for the split
    weights: np.ndarray  # metric weights (e.g. NWRMSLE's perishable weight flags)
    ids: np.ndarray  # row ids in the source, or -1


class Source(Protocol):
    stats: Any  # ReadStats: lines, parsed, bytes, seconds, sha256
    path: Any  # the file whose line numbers rows carry


class Problem(Protocol):
    name: str
    request_columns: tuple[str, ...]  # what one forecast request holds (the model's input)
    trusted_types: tuple[str, ...]  # the problem's own types in a fitted model (for skops)

    def open(self, data: DataSettings, progress: Callable[[int, int], None] | None) -> Source:
        """The data source named in the settings, not yet read."""

    def rows(self, source: Source, data: DataSettings, on_bad: Callable[[DataError], None]) -> Iterator[dict]:
        """Read, process and filter: one pass of clean rows."""

    def collect(self, rows: Iterator[dict]) -> Table:
        """Materialise the rows into a Table."""

    def features(self, table: Table, source: Source, feature_set: str = "default") -> Any:
        """The sklearn transformer from model inputs to feature dicts (the Pipeline's first step),
        of one of the problem's feature_sets."""

    def levels(self) -> Any:
        """The Pipeline step after features that puts the baseline's forecast first in each row
        (as `level`, learned from the training rows), or None."""

    def baseline(self) -> Any:
        """A naive estimator (fit/predict) that every model must beat."""

    def expected(self, source: Source, ids: np.ndarray) -> np.ndarray | None:
        """Noise-free expected targets for these rows, when the data set knows them."""

    # --- pipeline-side members (issue 15a): metrics and feature sets are the problem's ----------
    # ([split] by and its settings are chosen in the params; cd4ml/pipeline/split.py splits.)
    metric_names: tuple[str, ...]  # what evaluate() returns, in the order the CLI prints them
    feature_sets: tuple[str, ...]  # the names [features] set may take

    def evaluate(self, actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        """The problem's metrics of a forecast (cd4ml/metrics.py); the gate's metric is one of them."""
    # --- end of the pipeline-side members ------------------------------------------------------


class ScaleData(Protocol):
    """A problem's data on the scale path (cd4ml/pipeline/scale.py, docs/scale.md): partitions of
    compact columns (day, cell, target, promo, id), read by the scan (len, read, batch,
    tail_batch, columns; picklable for Dask), and what the path asks of those rows."""

    def features(self, scanned: Any) -> Any:
        """The model's fitted features step (with encode_frame) from the pass's totals."""

    def weights(self, frame: dict) -> np.ndarray:
        """The metric weights of rows in compact columns."""

    def requests(self, frame: dict) -> Any:
        """Rows in compact columns as the model's input rows (a DataFrame)."""

    def request_table(self, frame: dict) -> Any:
        """The same as an Arrow table, for millions of rows."""

    def expected(self, ids: np.ndarray) -> np.ndarray | None:
        """The problem's expected() in bounded memory."""

    def drift_keys(self, frame: dict) -> np.ndarray:
        """The problem's drift_key of rows in compact columns, for the training profile."""


class ScaleProblem(Problem, Protocol):
    """A problem that can also take the scale path: one method more."""

    def partitions(self, source: Source, data: DataSettings, part_bytes: int, max_rows: int | None = None) -> ScaleData:
        """The data in partitions, and what the scale path asks of its rows."""


# --- serving and monitoring (issue 15b): what the server, the events and monitoring ask a problem ---
#
# A problem's `serving` attribute is a Serving: the request it answers (fields, checks), the form
# and OpenAPI document it shows, the event fields it records and the key live accuracy joins on.
# `drift_key` names the column of Table.inputs whose shares monitoring's drift compares.

class Serving(Protocol):
    problem: str  # the problem's name, in every prediction event and in its URLs (/<problem>/...)
    title: str  # what the index page calls it
    fields: tuple[str, ...]  # the query parameters of one forecast request
    event_fields: tuple[str, ...]  # the problem's fields in a prediction event (schema in cd4ml/events.py)
    event_types: dict[str, str]  # each event field's Elasticsearch family: keyword, number, boolean, date
    join_key: tuple[str, ...]  # the event fields live accuracy joins actual outcomes on
    drift_label: str | None  # the event field that names a drift key's value on the report (None: the value)
    requested_date: str | None  # the event field of the date a forecast is for (its weekdays drift; None: none)
    form_template: str  # the form page's template (cd4ml/serving/templates/; form.html shows form_fields)
    heading: str  # the form page's heading
    example: str  # a query string that works against the workshop data, for messages

    def facts(self, model: Any, catalogue: Any) -> Any:
        """What the problem derives once from a loaded model (the form's choices, a forecast cache)."""

    def parse(self, args: Any, loaded: Any, strict: bool) -> Any:
        """The checked request; raises cd4ml.request_fields.BadInput naming the field."""

    def answer(self, loaded: Any, request: Any) -> dict[str, Any]:
        """The forecast: {"prediction": ..., and the request's fields}, for the API and the event."""

    def asked(self, args: Any) -> bool:
        """Whether the page's query asks for a forecast (else the page shows the empty form)."""

    def form_values(self, args: Any, loaded: Any) -> dict[str, Any]:
        """What the form template shows: {"values": the user's, else the defaults, ...}; form.html
        also takes "form_fields": [{name, label, kind, choices, min, max, step}]."""

    def shown(self, prediction: float) -> str:
        """A forecast as the page shows it ("12.5 units", "$412,000")."""

    def openapi(self) -> str:
        """The OpenAPI 3 document (JSON text) of this problem's API."""

    def actual(self, row: Any) -> tuple[tuple, float, bool]:
        """A processed data row as live accuracy joins it: (its join_key values, target, weight flag)."""


class ServedProblem(Problem, Protocol):
    """A problem the server answers and monitoring watches: two attributes more (see above)."""

    serving: Serving
    drift_key: str  # the column of Table.inputs (integer categories) whose shares drift compares

    def add_actuals(self, actuals: Path, target: Path) -> Any:
        """`feedback`: append a drop of arrived actual outcomes to the training data; what was added."""


# --- data generation (issue 15): what generate-data, a first run and the benchmarks ask a problem ---
#
# A problem with a synthetic generator is a GeneratedProblem; it knows where its data goes and which
# file its default params read, so the CLI generates that data on a first run. A problem without one
# (the seam test's toy) leaves these out: generate-data says so in one line (generator()).

class GeneratedProblem(Problem, Protocol):
    """A problem whose data generate-data writes: four members more."""

    default_file: str  # the file in data_folder("workshop") that the problem's default params read

    def data_folder(self, kind: str) -> str:
        """The folder under the data folder generate-data writes into by default: kind is a size
        (tiny, workshop, full) or "actuals"."""

    def generate(self, size: str, out: Path, seed: int) -> dict:
        """Write the data set of a size into out, deterministic for the seed; a summary with "rows",
        "seconds" and "message" (the line generate-data prints)."""

    def generate_actuals(self, events: Path, out: Path, size: str, seed: int) -> dict:
        """The actual outcomes of what a JSONL event log forecast, from the generator's process and
        seed, as a data source in out (for monitor --actuals and feedback): "rows" and "message"."""


def generator(problem: Problem) -> GeneratedProblem:
    """The problem, when it generates its data; else a ConfigError naming it."""
    if not callable(getattr(problem, "generate", None)):
        raise ConfigError(f"the {problem.name} problem has no data generator: generate-data cannot write its data.",
                          "Write its data yourself and point [data] source (or --data) at it.")
    return problem  # type: ignore[return-value]


_REGISTERED: dict[str, Callable[[], Problem]] = {}
_REGISTERED_PARAMS: dict[str, Path] = {}


def register_problem(name: str, factory: Callable[[], Problem], params: Path | None = None,
                     defaults: Mapping[str, Any] | None = None, metrics: tuple[str, ...] = ("r2",)) -> None:
    """Make get_problem(name) build factory(): for problems outside this package (e.g. a test's).
    A module named in CD4ML_EXTRA_PROBLEMS calls this when imported, in every process.
    params: the problem's params file, for `serve` to find its registered model; defaults: its
    defaults over config.DEFAULTS (at least its [data] table), metrics: what its evaluate() returns
    (config checks [acceptance] metric and the [data] keys against them)."""
    from cd4ml import config

    _REGISTERED[name] = factory
    if params is not None:
        _REGISTERED_PARAMS[name] = Path(params)
    config.PROBLEM_DEFAULTS[name] = dict(defaults or {"data": {"source": "", "max_bad_rows": 0}})
    config.PROBLEM_METRICS[name] = tuple(metrics)


def problem_params() -> dict[str, Path]:
    """The params file of each known problem (config.PROBLEM_PARAMS, then the registered ones)."""
    from cd4ml.config import PROBLEM_PARAMS, ROOT

    known = known_problems()
    found = {name: ROOT / path for name, path in PROBLEM_PARAMS.items() if name in known}
    return {**found, **_REGISTERED_PARAMS}


def known_problems() -> dict[str, Callable[[], Problem]]:
    """Every problem get_problem can build: the built-in ones, then the registered ones."""
    import importlib

    from cd4ml.config import extra_problem_modules
    from cd4ml.problems.favorita.problem import FavoritaProblem
    from cd4ml.problems.houses.problem import HousesProblem

    for module in extra_problem_modules():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"CD4ML_EXTRA_PROBLEMS names the module {module!r}, which cannot be imported: {err}",
                              "Give importable module names, comma-separated, or unset CD4ML_EXTRA_PROBLEMS.") from None
    return {"favorita": FavoritaProblem, "houses": HousesProblem, **_REGISTERED}


def get_problem(name: str) -> Problem:
    """The problem called `name` in params.toml."""
    problems = known_problems()
    if name not in problems:
        raise ConfigError(f"params.toml problem must be one of {', '.join(problems)}; got {name!r}.")
    return problems[name]()
