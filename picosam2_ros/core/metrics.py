"""Segmentation metrics as the PicoSAM2 paper reports them.

- IoU per instance at the model's threshold; an empty union (nothing predicted and
  nothing in the ground truth) counts as 1.0.
- mIoU: the mean of the per-instance IoUs.
- The paper's "mAP@[.5:.95]": the fraction of instances whose IoU reaches t, averaged
  over t = 0.50, 0.55, ..., 0.95. It is NOT COCO AP (no ranking, no scores); this code
  calls it ``paper_map`` so nobody mistakes it for that.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: IoU thresholds of the paper's "mAP@[.5:.95]".
PAPER_MAP_THRESHOLDS = np.round(np.arange(0.50, 0.951, 0.05), 2)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks of the same shape; 1.0 when both are empty."""
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    p = pred.astype(bool, copy=False)
    t = truth.astype(bool, copy=False)
    union = int(np.count_nonzero(p | t))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & t)) / union


def mean_iou(ious: Sequence[float] | np.ndarray) -> float:
    """Mean of per-instance IoUs; NaN for no instances."""
    arr = np.asarray(ious, dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def paper_map(ious: Sequence[float] | np.ndarray) -> float:
    """The paper's "mAP@[.5:.95]": mean over t in 0.50:0.05:0.95 of the share of IoU >= t."""
    arr = np.asarray(ious, dtype=np.float64)
    if arr.size == 0:
        return float("nan")
    return float(np.mean([(arr >= t).mean() for t in PAPER_MAP_THRESHOLDS]))
