"""Shared fixtures: real ONNX models written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.testing.models import build_colour_match_model, build_fixed_batch_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def colour_model_path(model_dir: Path) -> Path:
    return build_colour_match_model(model_dir / "colour_match.onnx")


@pytest.fixture(scope="session")
def colour_backend(colour_model_path: Path) -> OnnxBackend:
    return OnnxBackend(colour_model_path)


@pytest.fixture(scope="session")
def fixed_batch_backend(model_dir: Path) -> OnnxBackend:
    return OnnxBackend(build_fixed_batch_model(model_dir / "fixed_batch.onnx"))
