"""The tracking module's own pieces (the run itself is tested end to end in tests/integration)."""

from __future__ import annotations

import logging
from importlib.metadata import version

from cd4ml import tracking


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
