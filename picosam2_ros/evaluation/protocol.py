"""Per-instance scoring: IoU on the full frame and on the PicoSAM2 paper's crop.

The paper evaluates each instance inside the 96-pixel crop it takes around the prompt
(``core.geometry.paper_point_crop``: clipped, not translated, at the right and bottom
borders). For box prompts the crop is the box crop the segmenter uses
(``core.geometry.box_to_roi``: the box's longer side x margin, square, inside the
frame). Prediction and ground truth are both restricted to that crop; an empty union
scores 1.0 (as in the paper and ``core.metrics.mask_iou``). The full-frame IoU compares
the whole masks.

Both IoUs are computed on the smallest window that holds every set pixel (the union of
the two masks' rectangles, or the crop), which gives exactly the full-frame numbers
without allocating frames per instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from picosam2_ros.bags.layout import PromptSpec
from picosam2_ros.core.geometry import (
    DEFAULT_BOX_MARGIN,
    MODEL_INPUT_SIZE,
    Roi,
    box_to_roi,
    paper_point_crop,
    paper_prompt_point,
)
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.evaluation.masks import EMPTY_ROI, CroppedMask, intersect

#: COCO's object size classes, by ground-truth area in pixels.
SMALL_MAX_AREA = 32 * 32
MEDIUM_MAX_AREA = 96 * 96
SIZE_CLASSES = ("small", "medium", "large")


def size_class(area: int) -> str:
    """``small`` (< 32^2 px), ``medium`` (< 96^2 px) or ``large``, by ground-truth area."""
    if area < SMALL_MAX_AREA:
        return "small"
    if area < MEDIUM_MAX_AREA:
        return "medium"
    return "large"


@dataclass(frozen=True)
class CropProtocol:
    """Where the paper-protocol IoU is measured: ``point_side`` px around a point
    prompt (96 = the paper), ``box_margin`` x a box prompt's longer side (as the
    segmenter's ``box_margin``)."""

    point_side: int = MODEL_INPUT_SIZE
    box_margin: float = DEFAULT_BOX_MARGIN

    def __post_init__(self) -> None:
        if self.point_side < 1:
            raise ValueError(f"point_side must be >= 1, got {self.point_side}")
        if self.box_margin < 1.0:
            raise ValueError(f"box_margin must be >= 1.0, got {self.box_margin}")


def evaluation_crop(
    prompt: PromptSpec | None,
    width: int,
    height: int,
    protocol: CropProtocol = CropProtocol(),
    ground_truth: CroppedMask | None = None,
) -> Roi:
    """The paper-protocol crop of an instance in a width x height frame.

    Point prompt: ``paper_point_crop`` around it. Box prompt: ``box_to_roi``. Without a
    prompt, the paper's own prompt rule on the ground truth (``paper_prompt_point``);
    an empty rectangle when that is empty too.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if prompt is not None and prompt.point is not None:
        x, y = prompt.point
        return paper_point_crop(x, y, width, height, protocol.point_side)
    if prompt is not None and prompt.box is not None:
        return box_to_roi(prompt.box, width, height, protocol.box_margin)
    if ground_truth is None or ground_truth.roi.is_empty:
        return EMPTY_ROI
    point = paper_prompt_point(ground_truth.mask)
    if point is None:
        return EMPTY_ROI
    return paper_point_crop(
        ground_truth.roi.x + point[0],
        ground_truth.roi.y + point[1],
        width,
        height,
        protocol.point_side,
    )


def window_iou(pred: CroppedMask, truth: CroppedMask, window: Roi) -> float:
    """IoU of the two masks restricted to ``window``; 1.0 for an empty union."""
    if window.is_empty:
        return 1.0
    return mask_iou(pred.to_window(window), truth.to_window(window))


def instance_ious(
    pred: CroppedMask, truth: CroppedMask, crop: Roi, width: int, height: int
) -> tuple[float, float]:
    """(full-frame IoU, paper-crop IoU) of one instance in a width x height frame."""
    a, b = pred.clipped_roi(width, height), truth.clipped_roi(width, height)
    if a.is_empty and b.is_empty:
        full = 1.0
    else:
        window = b if a.is_empty else a if b.is_empty else a.union(b)
        full = window_iou(pred, truth, window)
    return full, window_iou(pred, truth, intersect(crop, Roi(0, 0, width, height)))


def resampled_crop_iou(pred: np.ndarray, truth: CroppedMask, crop: Roi) -> float:
    """Paper-crop IoU of a mask predicted on ``crop`` resized to ``pred.shape`` (the
    paper's 96x96), at that resolution: the ground truth is cut to ``crop`` and resized
    to it nearest-neighbour (cv2.INTER_NEAREST), as the paper's evaluation and
    ``training/evaluate.py`` do. Differs from ``instance_ious`` only where the crop is
    clipped at the frame's right or bottom border (its native size then is not 96x96)."""
    if crop.is_empty:
        return 1.0
    height, width = pred.shape
    cut = truth.to_window(crop).view(np.uint8)
    resized = cv2.resize(cut, (width, height), interpolation=cv2.INTER_NEAREST).view(bool)
    return mask_iou(np.asarray(pred, dtype=bool), resized)


def frame_ious(pred: np.ndarray, truth: np.ndarray, crop: Roi) -> tuple[float, float]:
    """The same two IoUs from full-frame boolean masks (the reference definition):
    ``mask_iou`` of the frames, and of the frames cut to ``crop``."""
    full = mask_iou(pred, truth)
    rows, cols = crop.slices
    if crop.is_empty:
        return full, 1.0
    return full, mask_iou(pred[rows, cols], truth[rows, cols])
