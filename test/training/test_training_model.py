"""PicoSAM2 network: size, shape, checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.model import ARCHITECTURE, PicoSAM2, count_macs, count_parameters, load_weights


def test_parameter_count_matches_the_paper() -> None:
    n = count_parameters(PicoSAM2())
    assert 1_260_000 <= n <= 1_300_000, n


def test_macs_close_to_published() -> None:
    macs = count_macs(PicoSAM2())
    assert 300e6 < macs < 345e6, macs


def test_output_shape_and_batch() -> None:
    model = PicoSAM2().eval()
    with torch.no_grad():
        out = model(torch.zeros(3, 3, 96, 96))
    assert out.shape == (3, 1, 96, 96)
    assert out.dtype == torch.float32


def test_load_weights_roundtrip(tmp_path) -> None:
    model = PicoSAM2()
    path = tmp_path / "ok.pt"
    torch.save({"architecture": ARCHITECTURE, "model": model.state_dict()}, path)
    loaded = load_weights(path)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x))


def test_checkpoint_from_another_architecture_is_refused(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"architecture": "resnet18", "model": {}}, path)
    with pytest.raises(SystemExit, match="architecture 'resnet18'"):
        load_weights(path)


def test_checkpoint_with_other_layout_is_refused(tmp_path) -> None:
    path = tmp_path / "layout.pt"
    state = {"architecture": ARCHITECTURE, "model": {"conv.weight": torch.zeros(1)}}
    torch.save(state, path)
    with pytest.raises(SystemExit, match="does not match the PicoSAM2 layout"):
        load_weights(path)


def test_missing_and_corrupt_checkpoints(tmp_path) -> None:
    with pytest.raises(SystemExit, match="checkpoint not found"):
        load_weights(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="cannot read checkpoint"):
        load_weights(bad)
    plain = tmp_path / "plain.pt"
    torch.save([1, 2, 3], plain)
    with pytest.raises(SystemExit, match="not a PicoSAM2 training checkpoint"):
        load_weights(plain)


def test_weights_from_an_onnx_export_compute_the_same_function(tmp_path) -> None:
    """An fp32 export folds every batch norm; reading it back gives the same network,
    and with a calibration batch also in training mode on that batch."""
    import onnxruntime as ort

    from training.export import export_onnx
    from training.model import weights_from_onnx

    torch.manual_seed(0)
    model = PicoSAM2()
    model.train()
    with torch.no_grad():  # running statistics away from the defaults, as after training
        for _ in range(3):
            model(torch.randn(8, 3, 96, 96) * 2 + 0.5)
    model.eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    x = torch.randn(4, 3, 96, 96)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    plain = weights_from_onnx(path)
    calibrated = weights_from_onnx(path, calibration=x)
    with torch.no_grad():
        np.testing.assert_allclose(plain(x).numpy(), expected, atol=1e-4)
        np.testing.assert_allclose(calibrated(x).numpy(), expected, atol=1e-4)
        calibrated.train()
        np.testing.assert_allclose(calibrated(x).numpy(), expected, atol=1e-3)
        assert not np.allclose(model.train()(x).numpy(), expected, atol=1e-3)


def test_weights_from_onnx_refuses_other_files(tmp_path) -> None:
    from picosam2_ros.testing.models import build_colour_match_model
    from training.model import weights_from_onnx

    with pytest.raises(SystemExit, match="folded convolutions"):
        weights_from_onnx(build_colour_match_model(tmp_path / "colour.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(SystemExit, match="cannot read"):
        weights_from_onnx(tmp_path / "junk.onnx")
