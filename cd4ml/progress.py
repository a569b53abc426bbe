"""Progress: a bar for long passes on a terminal, plain lines in CI, and a line per stage."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Reporter:
    """Reports stages (rows in, rows out, time, rows per second) and the progress of long passes."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.quiet = quiet
        self._last = 0.0
        self._shown = False

    def say(self, text: str) -> None:
        """One plain line."""
        if not self.quiet:
            self._end_bar()
            print(text, file=self.stream, flush=True)

    def stage(self, name: str, seconds: float, rows_in: int | None = None, rows_out: int | None = None) -> None:
        """One line for a finished stage."""
        parts = [f"{name:<10}", f"{seconds:7.2f} s"]
        if rows_in is not None:
            parts.append(f"{rows_in:>12,} rows in")
            if seconds > 0:
                parts.append(f"{rows_in / seconds:>12,.0f} rows/s")
        if rows_out is not None:
            parts.append(f"{rows_out:>10,} kept")
        self.say("  ".join(parts))

    def progress(self, label: str):
        """A callback (done, total) that draws a bar on a terminal or prints every ~10 s in CI."""

        def update(done: int, total: int) -> None:
            if self.quiet or total <= 0:
                return
            now = time.monotonic()
            if self.interactive:
                if now - self._last < 0.1 and done < total:
                    return
                filled = int(30 * done / total)
                bar = "#" * filled + "-" * (30 - filled)
                print(f"\r{label} [{bar}] {100 * done / total:5.1f}%", end="", file=self.stream, flush=True)
                self._shown = True
            elif now - self._last >= 10 and done < total:
                print(f"{label}: {100 * done / total:.0f}%", file=self.stream, flush=True)
            self._last = now

        self._last = time.monotonic()
        return update

    def _end_bar(self) -> None:
        if self._shown:
            print("\r" + " " * 60 + "\r", end="", file=self.stream, flush=True)
            self._shown = False
