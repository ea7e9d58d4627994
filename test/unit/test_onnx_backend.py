"""OnnxBackend: contract checks with clear errors, batching, model information."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from picosam2_ros.backends.base import InferenceBackend, ModelLoadError
from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.preprocess import normalise
from picosam2_ros.testing.models import build_colour_match_model, build_wrong_shape_model


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model file not found: .*nope\.onnx"):
        OnnxBackend(tmp_path / "nope.onnx")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelLoadError, match=r"corrupt\.onnx is not a loadable ONNX model"):
        OnnxBackend(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        OnnxBackend(path)


def test_wrong_input_shape(tmp_path: Path) -> None:
    path = build_wrong_shape_model(tmp_path / "in.onnx", "input")
    with pytest.raises(
        ModelLoadError,
        match=r"PicoSAM2 contract: input 'image' must be \[N,3,S,S\], is \[N,1,96,96\]",
    ):
        OnnxBackend(path)


def test_wrong_output_shape(tmp_path: Path) -> None:
    path = build_wrong_shape_model(tmp_path / "out.onnx", "output")
    with pytest.raises(
        ModelLoadError,
        match=r"output 'logits' must be \[N,1,96,96\] or \[N,96,96\], is \[N,1,48,48\]",
    ):
        OnnxBackend(path)


def test_info_and_name(colour_model_path: Path, colour_backend: OnnxBackend) -> None:
    assert isinstance(colour_backend, InferenceBackend)
    assert colour_backend.name == "onnxruntime:colour_match.onnx"
    assert colour_backend.input_size == 96
    info = colour_backend.info
    data = colour_model_path.read_bytes()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()[:12]
    assert info["size_bytes"] == str(len(data))
    assert info["input_shape"] == "[N,3,96,96]"
    assert info["opset"] == "17"
    assert info["execution_provider"] == "CPUExecutionProvider"
    assert info["threads"] == "1"
    assert Path(info["path"]) == colour_model_path.resolve()


def test_infer_shapes_and_colour_match_values(colour_backend: OnnxBackend) -> None:
    crops = np.zeros((3, 96, 96, 3), dtype=np.uint8)
    crops[:, :, :] = (30, 30, 30)
    crops[1, 40:60, 30:70] = (220, 40, 40)  # centre (48, 48) is red in crop 1
    logits = colour_backend.infer(normalise(crops))
    assert logits.shape == (3, 96, 96) and logits.dtype == np.float32
    assert (logits[0] > 0).all()  # uniform crop: everything matches the centre
    np.testing.assert_array_equal(logits[1] > 0, crops[1, :, :, 0] == 220)
    assert colour_backend.infer(np.zeros((0, 3, 96, 96), np.float32)).shape == (0, 96, 96)
    with pytest.raises(ValueError, match=r"\(N, 3, 96, 96\)"):
        colour_backend.infer(np.zeros((1, 96, 96, 3), np.float32))


def test_fixed_batch_backend_handles_any_batch(
    colour_backend: OnnxBackend, fixed_batch_backend: OnnxBackend
) -> None:
    rng = np.random.default_rng(3)
    batch = normalise(rng.integers(0, 256, (5, 96, 96, 3), dtype=np.uint8))
    np.testing.assert_array_equal(fixed_batch_backend.infer(batch), colour_backend.infer(batch))
    assert fixed_batch_backend.info["input_shape"] == "[1,3,96,96]"


def test_heavy_model_has_same_logits(tmp_path: Path, colour_backend: OnnxBackend) -> None:
    heavy = OnnxBackend(build_colour_match_model(tmp_path / "heavy.onnx", extra_conv_macs=1))
    batch = normalise(np.random.default_rng(1).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8))
    np.testing.assert_allclose(heavy.infer(batch), colour_backend.infer(batch), atol=1e-6)
