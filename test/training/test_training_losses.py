"""Losses: BCE + Dice vs ground truth; MSE + Dice vs a teacher, weighted by confidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_fixtures import disk_teacher, make_coco_folder

from picosam2_ros.core.box_prior import apply_box_prior, inside_box
from training import train as train_mod
from training.losses import (
    Teacher,
    decode_with_box_prior,
    distillation_loss,
    supervised_loss,
    teacher_confidence,
)


def _target() -> torch.Tensor:
    t = torch.zeros(2, 1, 96, 96)
    t[:, :, 30:70, 20:60] = 1
    return t


def test_supervised_loss_prefers_the_truth() -> None:
    t = _target()
    good, bad = (t * 2 - 1) * 6, -(t * 2 - 1) * 6
    assert supervised_loss(good, t) < 0.05 < 1.5 < supervised_loss(bad, t)


def test_teacher_confidence() -> None:
    assert teacher_confidence(torch.zeros(1, 1, 96, 96)).item() == pytest.approx(0.0)
    assert teacher_confidence(torch.full((1, 1, 96, 96), 20.0)).item() == pytest.approx(1.0)


def test_distillation_weighting() -> None:
    t = _target()
    student = torch.randn(2, 1, 96, 96)
    unsure = torch.zeros(2, 1, 96, 96)  # confidence 0: ground truth only
    assert distillation_loss(student, t, unsure) == pytest.approx(supervised_loss(student, t))
    teacher = (t * 2 - 1) * 50  # fully confident teacher that agrees with the truth
    loss_w0 = distillation_loss(teacher, t, teacher, weight=0.0)
    loss_w1 = distillation_loss(teacher, t, teacher, weight=1.0)
    assert loss_w1 < 1e-3 and loss_w0 < 1e-3


def test_teacher_protocol_and_training_with_a_teacher(tmp_path) -> None:
    assert isinstance(disk_teacher, Teacher)
    data = make_coco_folder(tmp_path / "d", n_images=2)
    args = ["--data", str(data), "--protocol", "box", "--out", str(tmp_path / "r"),
            "--minutes", "1", "--batch", "4", "--max-steps", "2", "--dev-fraction", "0",
            "--teacher", "training_fixtures:disk_teacher"]  # fmt: skip
    assert train_mod.main(args) == 0
    with pytest.raises(SystemExit, match="cannot load teacher"):
        train_mod.main([*args[:-1], "training_fixtures:nothing"])


def test_box_prior_decoding_in_torch_matches_the_package_and_trains_only_inside_the_box() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (3, 1, 96, 96)).astype(np.float32)
    boxes = np.array([[10.0, 20.0, 80.0, 70.0], [0.0, 0.0, 96.0, 96.0], [40.5, 5.0, 55.2, 90.0]])
    expected = apply_box_prior(logits[:, 0], boxes, 6.0)
    t = torch.from_numpy(logits).requires_grad_(True)
    decoded = decode_with_box_prior(t, boxes, 6.0)
    np.testing.assert_allclose(decoded.detach().numpy()[:, 0], expected, rtol=1e-6, atol=1e-5)
    decoded.sum().backward()
    inside = np.stack([inside_box(b, 96) for b in boxes])
    grad = t.grad.numpy()[:, 0]
    assert np.all(grad[inside] == 1.0) and np.all(grad[~inside] == 0.0)
    # Weight 0 is the plain network.
    assert decode_with_box_prior(t, boxes, 0.0) is t


def test_hard_weighting_dwells_on_the_wrong_pixels() -> None:
    t = _target()
    # Right everywhere but one wrong band: the weighted BCE grows, a uniform error
    # everywhere keeps the plain loss (every pixel equally hard).
    logits = (t * 2 - 1) * 4
    logits[:, :, 30:34, 20:60] = -4.0
    plain, hard = supervised_loss(logits, t), supervised_loss(logits, t, hard_weight=2.0)
    assert hard > plain + 0.02
    uniform = torch.zeros(2, 1, 96, 96)
    assert supervised_loss(uniform, t, 2.0) == pytest.approx(supervised_loss(uniform, t))
    assert supervised_loss(logits, t, 0.0) == pytest.approx(plain)
