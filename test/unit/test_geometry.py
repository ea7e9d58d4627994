"""Crop placement: centred away from borders, translated (not clipped) at borders."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.geometry import (
    Roi,
    box_to_roi,
    mask_bbox,
    paper_point_crop,
    paper_prompt_point,
    point_crop_side,
    point_to_roi,
)
from picosam2_ros.testing.scenes import draw_ring

W, H = 640, 480


def test_point_roi_centred_away_from_borders() -> None:
    assert point_to_roi(300.7, 200.2, 96, W, H) == Roi(252, 152, 96, 96)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (0.0, 0.0, Roi(0, 0, 96, 96)),  # top-left corner
        (639.9, 0.0, Roi(544, 0, 96, 96)),  # top-right corner
        (0.0, 479.0, Roi(0, 384, 96, 96)),  # bottom-left corner
        (639.0, 479.9, Roi(544, 384, 96, 96)),  # bottom-right corner
        (10.0, 240.0, Roi(0, 192, 96, 96)),  # left border: translated, not clipped
        (320.0, 470.0, Roi(272, 384, 96, 96)),  # bottom border
    ],
)
def test_point_roi_translated_inside_at_borders_and_corners(
    x: float, y: float, expected: Roi
) -> None:
    roi = point_to_roi(x, y, 96, W, H)
    assert roi == expected
    assert roi.x >= 0 and roi.y >= 0 and roi.x + roi.width <= W and roi.y + roi.height <= H
    # The prompt stays inside its crop.
    assert roi.x <= x < roi.x + roi.width and roi.y <= y < roi.y + roi.height


def test_point_roi_shrinks_to_small_frame() -> None:
    assert point_to_roi(30.0, 20.0, 96, 80, 50) == Roi(5, 0, 50, 50)
    assert point_to_roi(79.0, 49.0, 96, 80, 50) == Roi(30, 0, 50, 50)


def test_point_crop_side_fraction_overrides_pixels() -> None:
    assert point_crop_side(W, H, 96, 0.0) == 96
    assert point_crop_side(W, H, 96, 0.5) == 240


def test_box_roi_square_with_margin_centred() -> None:
    # 100x40 box -> side 1.2 * 100 = 120 around the box centre (250, 220).
    roi = box_to_roi((200.0, 200.0, 300.0, 240.0), W, H, margin=1.2)
    assert roi == Roi(190, 160, 120, 120)


def test_box_roi_translated_at_corner_and_limited_to_frame() -> None:
    assert box_to_roi((600.0, 440.0, 640.0, 480.0), W, H) == Roi(596, 436, 44, 44)
    # Larger than the frame: the side is the frame's shorter side, shifted inside.
    assert box_to_roi((0.0, 0.0, 1000.0, 900.0), W, H) == Roi(160, 0, 480, 480)
    # A tiny box still gets a crop of the minimum side.
    assert box_to_roi((5.0, 5.0, 6.0, 6.0), W, H).width == 8


def test_paper_crop_clipped_not_translated_at_right_and_bottom() -> None:
    assert paper_point_crop(320, 240, W, H) == Roi(272, 192, 96, 96)
    assert paper_point_crop(10, 10, W, H) == Roi(0, 0, 96, 96)
    # Right/bottom: narrower than 96 (then stretched to 96 by the resize).
    assert paper_point_crop(630, 475, W, H) == Roi(582, 427, 58, 53)
    assert point_to_roi(630, 475, 96, W, H) == Roi(544, 384, 96, 96)


def test_paper_prompt_point_is_bbox_centre_when_on_mask() -> None:
    mask = np.zeros((H, W), dtype=bool)
    mask[100:121, 200:261] = True  # 61x21 rectangle
    assert paper_prompt_point(mask) == (230, 110)


def test_paper_prompt_point_on_ring_is_nearest_mask_pixel() -> None:
    ring = draw_ring(W, H, (300, 200), outer=40, inner=25)
    cx, cy = 300, 200
    assert not ring[cy, cx]  # the bbox centre is in the hole
    x, y = paper_prompt_point(ring)  # type: ignore[misc]
    assert ring[y, x]
    # Nearest mask pixel: on the inner edge, about 25-26 px from the centre.
    assert 24.5 <= np.hypot(x - cx, y - cy) <= 26.5
    ys, xs = np.nonzero(ring)
    assert np.hypot(x - cx, y - cy) == pytest.approx(np.hypot(xs - cx, ys - cy).min())


def test_paper_prompt_point_empty_mask() -> None:
    assert paper_prompt_point(np.zeros((10, 10), dtype=bool)) is None


def test_mask_bbox() -> None:
    mask = np.zeros((50, 60), dtype=bool)
    mask[10:15, 20:40] = True
    assert mask_bbox(mask) == Roi(20, 10, 20, 5)
    assert mask_bbox(np.zeros((5, 5), dtype=bool)) is None
