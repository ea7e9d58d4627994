"""training.scale_probe: the needed side, the ridge fit, the feature model on the shipped
zoom model, and the probe end to end on a small COCO folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import make_coco_folder

from picosam2_ros.resources import MODELS_DIR
from training.scale_probe import FeatureModel, fit_ridge, main
from training.whole_object_search import needed_side


def test_needed_side_covers_extent_and_reach() -> None:
    # A 60 x 30 mask at (100, 100), clicked at its centre: the extent rules (60 / 0.6).
    assert needed_side((130.0, 115.0), (100, 100, 60, 30), (640, 480), 0.6) == pytest.approx(100)
    # Clicked near its left end: the reach to the right end (59.5 px) rules, x 2 x 1.2.
    assert needed_side((100.0, 115.0), (100, 100, 60, 30), (640, 480), 0.6) == pytest.approx(
        2 * 59.5 * 1.2
    )
    # Never under 48 px, never over 1.5x the frame's longer side.
    assert needed_side((101.0, 101.0), (100, 100, 4, 4), (640, 480), 0.6) == 48.0
    assert needed_side((320.0, 240.0), (0, 0, 640, 480), (640, 480), 0.1) == 960.0


def test_ridge_recovers_a_linear_target_and_never_fits_worse_than_a_constant() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)) * [1, 10, 0.1, 3, 1]
    y = x @ np.array([0.5, -0.02, 3.0, 0.1, 0.0]) + 2.0
    predict = fit_ridge(x, y, strength=1e-6)
    np.testing.assert_allclose(predict(x), y, atol=1e-6)
    noisy = y + rng.normal(0, 5, y.shape)
    for strength in (1.0, 1e3, 1e9):
        residual = noisy - fit_ridge(x, noisy, strength)(x)
        assert residual.std() <= noisy.std() + 1e-12


def test_feature_model_exposes_the_inner_tensors() -> None:
    model = FeatureModel(MODELS_DIR / "picosam2_point_zoom.onnx")
    crops = np.random.default_rng(1).integers(0, 255, (3, 96, 96, 3), dtype=np.uint8)
    crops[0, 30:66, 30:66] = (230, 30, 30)
    feats = model.features(crops, 0.0)
    # 320 bottleneck channels (mean, max), 40 head-input channels (over the component,
    # over the window), 7 mask statistics.
    assert feats.shape == (3, 2 * 320 + 2 * 40 + 7)
    assert np.isfinite(feats).all()
    assert not np.allclose(feats[0], feats[1])


def test_probe_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_coco_folder(tmp_path / "coco", n_images=12)
    args = ["--data", str(folder), "--held-out", "0.5", "--clicks", "2", "--true-noise", "0"]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    assert len(lines) == 1
    (result,) = lines
    assert result["windows"]["train"] > 0 and result["windows"]["held_out"] > 0
    err = result["log_error_sd"]
    assert err["train_fit"] <= err["train_constant"]
    # Zero noise on the true side is the true side.
    assert (
        result["second_window_true_side_noise_0_then_box"]
        == result["second_window_true_side_then_box"]
    )
    for key in ("second_window_predicted_side_then_box", "search_defaults"):
        for kind in ("center", "random"):
            assert 0.0 <= result[key][kind]["miou"] <= 1.0


def test_probe_refuses_a_split_without_both_sides(tmp_path: Path) -> None:
    folder = make_coco_folder(tmp_path / "coco", n_images=4)
    with pytest.raises(SystemExit) as err:
        main(["--data", str(folder), "--held-out", "0"])
    assert err.value.code == 2
