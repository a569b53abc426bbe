"""The tracking module's own pieces (the run itself is tested end to end in tests/integration)."""

from __future__ import annotations

import logging
from importlib.metadata import version

import pytest

from cd4ml import tracking_process as tracking


def test_model_requirements_pin_the_installed_versions():
    assert tracking.model_requirements() == [f"{name}=={version(name)}" for name in tracking.REQUIREMENT_MODULES]


def test_mlflow_still_checks_requirements_once_we_give_it_the_module_map(caplog):
    tracking.map_requirement_modules()
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    mlflow_logger = logging.getLogger("mlflow")  # MLflow's logger does not propagate once configured
    mlflow_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="mlflow"):
            warn_dependency_requirement_mismatches(tracking.model_requirements())
            assert "mismatch" not in caplog.text.lower()
            warn_dependency_requirement_mismatches(["numpy==0.0.1"])
    finally:
        mlflow_logger.removeHandler(caplog.handler)
    assert "numpy (current: " in caplog.text


def refuse(message: str):
    """Runs in the tracking process (RunProcess.call): raises an error with exit code 4."""
    from cd4ml.errors import ModelRejected

    raise ModelRejected(message, "the hint")


def test_an_error_in_the_tracking_process_keeps_its_class_and_exit_code(tmp_path):
    from cd4ml.config import TrackingSettings
    from cd4ml.errors import EXIT_REJECTED, ModelRejected

    settings = TrackingSettings(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="e", registered_model="m",
                                artifact_location=str(tmp_path / "artifacts"), build_number=None, remote=False)
    process = tracking.RunProcess(settings, models=False)
    try:
        process.call(refuse, "not this one")
        with pytest.raises(ModelRejected, match="not this one") as raised:
            process.result()
    finally:
        process.cancel()
    assert raised.value.exit_code == EXIT_REJECTED and raised.value.hint == "the hint"
