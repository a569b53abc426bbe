"""One root error for everything a user can fix; each carries a hint and a CLI exit code.

Exit codes (documented in the README):
    0  ok
    1  unexpected internal error (a bug: please report it)
    2  bad input, data or configuration
    3  a service (MLflow, Elasticsearch, the model server) could not be reached
    4  the model was rejected by the acceptance gate
    5  a monitoring alert threshold was crossed
    6  deploy refused an experiment: only a run built from the defaults on main is deployed
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_REJECTED = 4
EXIT_ALERT = 5
EXIT_EXPERIMENT = 6


class Cd4mlError(Exception):
    """An error the user can act on: what failed, and how to fix it."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(Cd4mlError):
    """The params file, an environment variable or a CLI flag has a bad value."""

    exit_code = EXIT_BAD_INPUT


class DataError(Cd4mlError):
    """A data file is missing, has missing columns, or holds a value that cannot be parsed."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.path = path
        self.line = line
        self.column = column
        self.value = value

    def at(self, path: str | None = None, line: int | None = None) -> "DataError":
        """The same error, located in a file and line."""
        return type(self)(
            self.message,
            self.hint,
            path=path if path is not None else self.path,
            line=line if line is not None else self.line,
            column=self.column,
            value=self.value,
        )

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}"
            if self.line is not None:
                where += f" line {self.line}"
            where += ": "
        detail = self.message
        if self.column is not None:
            detail += f" (column {self.column!r}"
            if self.value is not None:
                detail += f", value {self.value!r}"
            detail += ")"
        return f"{where}{detail}. {self.hint}".strip()


class ServiceUnreachable(Cd4mlError):
    """MLflow, Elasticsearch or another service did not answer."""

    exit_code = EXIT_UNREACHABLE


class ModelRejected(Cd4mlError):
    """The acceptance gate rejected the model."""

    exit_code = EXIT_REJECTED


class ExperimentRefused(Cd4mlError):
    """deploy was asked for an experiment (cd4ml/run_kind.py): it never reaches production."""

    exit_code = EXIT_EXPERIMENT


class MissingPackage(Cd4mlError):
    """A package of requirements.txt is missing: this is not the project's Python environment."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, err: ModuleNotFoundError, executable: str) -> None:
        super().__init__(
            f"the Python module {(err.name or str(err))!r} is not installed for {executable}.",
            "Activate the project's environment (source .venv/bin/activate), or create it with `make install`.",
        )
