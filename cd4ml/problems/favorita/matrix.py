"""The data sets the default model must beat the naive baseline on (docs/data.md, "The model matrix").

Data unlike our defaults: a calendar year whose validation days hold the Christmas ramp, windows
that start mid-year (training under a year), all items, both file layouts, two seeds, two full
years, and another generating process (a stronger yearly wave, a trend, overdispersed sales).
tests/model asserts on every set; `benchmark --matrix` writes the score table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cd4ml.problems.favorita import schema
from cd4ml.problems.favorita.generate import DEFAULT_PROCESS, Process, SizeSpec, generate

OTHER_PROCESS = Process(season_amplitude=0.3, trend=0.15, dispersion=0.5)
CALENDAR_2016 = (date(2016, 1, 1), date(2016, 12, 31))
MID_YEAR = (date(2016, 8, 16), date(2017, 8, 15))  # the window of the workshop's real file
TWO_YEARS = (date(2015, 1, 1), date(2016, 12, 31))
ITEMS = 20  # items in each generated catalogue; 60 for the all-items sets


@dataclass(frozen=True)
class MatrixSet:
    """One data set: what to generate, which layout to read and which items to keep."""

    window: tuple[date, date]
    seed: int
    layout: str = "kaggle"  # or "workshop" (store47-2016.csv: no promotions, 2016 only)
    all_items: bool = False  # all items, or the three workshop products
    process: Process = DEFAULT_PROCESS
    stores: tuple[int, ...] = (47,)

    @property
    def name(self) -> str:
        start, end = self.window
        parts = [f"{start}..{end}", f"seed {self.seed}", self.layout, "all items" if self.all_items else "3 products"]
        if len(self.stores) > 1:
            parts.append(f"stores {','.join(map(str, self.stores))}")
        if self.process != DEFAULT_PROCESS:
            parts.append("other process")
        return ", ".join(parts)

    @property
    def full_training_year(self) -> bool:
        """Whether the training days (all but the last 57) hold a whole year."""
        start, end = self.window
        return (end - start).days + 1 - 57 >= 365

    def spec(self) -> SizeSpec:
        return SizeSpec("matrix", self.stores, 60 if self.all_items else ITEMS, *self.window)

    def source(self, root: Path) -> Path:
        """The set's data (generated into a folder under root the first time), as a data source."""
        start, end = self.window
        process = "" if self.process == DEFAULT_PROCESS else "-other"
        folder = root / f"{start}-{end}-{'-'.join(map(str, self.stores))}-{self.spec().n_items}-{self.seed}{process}"
        if not (folder / schema.TRAIN_FILE).exists():
            generate(self.spec(), folder, seed=self.seed, process=self.process)
        return folder / schema.WORKSHOP_FILE if self.layout == "workshop" else folder


MATRIX: tuple[MatrixSet, ...] = (
    *(MatrixSet(CALENDAR_2016, seed, layout) for seed in (42, 7) for layout in ("kaggle", "workshop")),
    *(MatrixSet(MID_YEAR, seed) for seed in (42, 7)),
    *(MatrixSet(CALENDAR_2016, seed, layout, all_items=True) for seed in (42, 7) for layout in ("kaggle", "workshop")),
    *(MatrixSet(TWO_YEARS, seed, stores=(44, 47)) for seed in (42, 7)),
    *(MatrixSet(window, seed, process=OTHER_PROCESS) for window in (CALENDAR_2016, MID_YEAR) for seed in (42, 7)),
    MatrixSet(TWO_YEARS, 42, process=OTHER_PROCESS, stores=(44, 47)),
)
