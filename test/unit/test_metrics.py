"""The paper's metrics, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from picosam2_ros.core.metrics import mask_iou, mean_iou, paper_map


def test_iou_empty_union_is_one() -> None:
    empty = np.zeros((4, 4), dtype=bool)
    assert mask_iou(empty, empty) == 1.0


def test_iou_hand_computed() -> None:
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    a[0, 0:3] = True  # 3 pixels
    b[0, 1:4] = True  # 3 pixels, 2 shared, union 4
    assert mask_iou(a, b) == pytest.approx(0.5)
    assert mask_iou(a, np.zeros_like(a)) == 0.0


def test_iou_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(np.zeros((2, 3), bool), np.zeros((3, 2), bool))


def test_paper_map_hand_computed() -> None:
    # Thresholds 0.50, 0.55, ..., 0.95 (10 of them).
    # IoU 0.72 reaches 0.50..0.70 -> 5/10; IoU 0.95 reaches all 10; IoU 0.3 none.
    # Per threshold share: t<=0.70: 2/3 (5 thresholds); 0.75..0.95: 1/3 (5 thresholds).
    expected = (5 * (2 / 3) + 5 * (1 / 3)) / 10
    assert paper_map([0.72, 0.95, 0.3]) == pytest.approx(expected)
    assert paper_map([1.0]) == 1.0
    assert paper_map([0.49]) == 0.0


def test_empty_lists_are_nan() -> None:
    assert math.isnan(mean_iou([]))
    assert math.isnan(paper_map([]))
    assert mean_iou([0.5, 1.0]) == pytest.approx(0.75)
