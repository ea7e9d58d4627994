"""Which model file each prompt kind gets, and where config files are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from picosam2_ros import resources
from picosam2_ros.resources import config_file, resolve_model_paths


def test_configured_paths_win_and_box_prompts_fall_back_to_the_point_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resources, "MODELS_DIR", tmp_path)
    paths = resolve_model_paths("/models/p.onnx", "")
    assert paths == {"point": Path("/models/p.onnx"), "box": Path("/models/p.onnx")}
    assert resolve_model_paths("/a.onnx", "/b.onnx")["box"] == Path("/b.onnx")
    # Nothing configured: the shipped point model; the shipped box model once it exists.
    assert resolve_model_paths("", "")["point"] == tmp_path / "picosam2_point.onnx"
    assert resolve_model_paths("", "")["box"] == tmp_path / "picosam2_point.onnx"
    (tmp_path / "picosam2_box.onnx").write_bytes(b"x")
    assert resolve_model_paths("", "")["box"] == tmp_path / "picosam2_box.onnx"


def test_whole_object_points_get_the_zoom_model_once_it_is_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resources, "MODELS_DIR", tmp_path)
    point = tmp_path / "picosam2_point.onnx"
    assert resolve_model_paths("", "", whole_object=True)["point"] == point
    (tmp_path / "picosam2_point_zoom.onnx").write_bytes(b"x")
    assert resolve_model_paths("", "", whole_object=True)["point"] == point.with_name(
        "picosam2_point_zoom.onnx"
    )
    assert resolve_model_paths("", "")["point"] == point  # the paper's crop keeps its model
    assert resolve_model_paths("/p.onnx", "", whole_object=True)["point"] == Path("/p.onnx")


def test_config_file_finds_the_shipped_profile() -> None:
    path = config_file("fastdds_shm.xml")
    assert path.is_file() and "<segment_size>10485760</segment_size>" in path.read_text()
