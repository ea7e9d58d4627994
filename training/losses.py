"""Losses as in the PicoSAM2 paper: BCE + Dice against the ground truth, MSE + Dice
against a teacher's logits, mixed per sample by the teacher's confidence.

A teacher is anything implementing ``Teacher``: for instance SAM 2 prompted with the
crop's centre point (or the box) on the same 96x96 crops, returning its mask logits.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from picosam2_ros.core.box_prior import OUTSIDE_BOX_LOGIT, ellipse_distance, inside_box


@runtime_checkable
class Teacher(Protocol):
    """Maps a batch of (N, 96, 96, 3) uint8 RGB crops (the object at the centre, or
    framed by the crop for the box protocol) to (N, 1, 96, 96) float32 mask logits."""

    def __call__(self, crops: np.ndarray, protocol: str) -> np.ndarray: ...


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice per sample, averaged; ``target`` may be soft (probabilities)."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    return (1 - (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


def dice_loss_per_sample(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0):
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    return 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


def supervised_loss(
    logits: torch.Tensor, target: torch.Tensor, hard_weight: float = 0.0
) -> torch.Tensor:
    """BCE + Dice against a binary ground-truth mask (same shape as ``logits``).

    ``hard_weight`` > 0 weights each pixel's BCE by 1 + hard_weight x |p - target|, p the
    prediction's own probability (not differentiated), normalised so the weights average
    1: the easy pixels that dominate a mask (deep background, the object's core) count
    less than its wrong ones, in the spirit of TinySAM's hard mask weighting."""
    logits = logits.float()
    if hard_weight <= 0.0:
        return F.binary_cross_entropy_with_logits(logits, target) + dice_loss(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    w = 1.0 + hard_weight * (torch.sigmoid(logits.detach()) - target).abs()
    return (bce * w).sum() / w.sum() + dice_loss(logits, target)


def teacher_confidence(teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample confidence in [0, 1]: mean |2 sigmoid(logit) - 1| over the pixels."""
    return (2 * torch.sigmoid(teacher_logits.float()) - 1).abs().flatten(1).mean(1)


def distillation_loss(
    logits: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor, weight: float = 0.5
) -> torch.Tensor:
    """Per sample: (1 - w) (BCE + Dice vs ground truth) + w (MSE + Dice vs teacher),
    w = ``weight`` x the teacher's confidence on that sample."""
    logits = logits.float()
    teacher_logits = teacher_logits.float()
    gt = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)
    gt = gt + dice_loss_per_sample(logits, target)
    mse = F.mse_loss(logits, teacher_logits, reduction="none").flatten(1).mean(1)
    soft = dice_loss_per_sample(logits, torch.sigmoid(teacher_logits))
    w = weight * teacher_confidence(teacher_logits)
    return ((1 - w) * gt + w * (mse + soft)).mean()


def decode_with_box_prior(logits: torch.Tensor, boxes: np.ndarray, weight: float) -> torch.Tensor:
    """``picosam2_ros.core.box_prior.apply_box_prior`` in torch, differentiable: training
    a box model through the decoding the package applies teaches the network the
    residual to the box's ellipse, and nothing outside the box (which decodes to
    background whatever the network says)."""
    if weight <= 0.0:
        return logits
    size = logits.shape[-1]
    shift = np.stack([weight * (1.0 - ellipse_distance(b, size)) for b in boxes])
    inside = np.stack([inside_box(b, size) for b in boxes])
    shift_t = torch.from_numpy(shift.astype(np.float32))[:, None].to(logits.device)
    inside_t = torch.from_numpy(inside)[:, None].to(logits.device)
    return torch.where(inside_t, logits + shift_t, torch.full_like(logits, OUTSIDE_BOX_LOGIT))
