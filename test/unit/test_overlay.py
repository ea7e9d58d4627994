"""The overlay tints exactly the mask, in BGR, and leaves the rest of the image alone."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.overlay import MASK_ALPHA, object_colour, render_overlay
from picosam2_ros.core.pipeline import FrameResult, ObjectResult, ObjectStatus
from picosam2_ros.core.prompts import ObjectPrompt


def _frame() -> tuple[np.ndarray, FrameResult]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    crop = Roi(50, 20, 96, 96)
    mask = np.zeros((96, 96), dtype=bool)
    mask[30:70, 10:40] = True
    prompt = ObjectPrompt(3, np.array([[75.0, 70.0], [120.0, 90.0]]), np.array([1, 0]))
    obj = ObjectResult(3, ObjectStatus.OK, 0.8, crop, mask, Roi(60, 50, 30, 40), prompt)
    skipped = ObjectResult(
        9,
        ObjectStatus.SKIPPED,
        0.0,
        Roi(0, 0, 0, 0),
        np.zeros((0, 0), bool),
        None,
        ObjectPrompt.from_point(9, 500.0, 5.0),
        "outside",
    )
    return rgb, FrameResult(200, 120, [obj, skipped], 1.0)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "mono8"])
def test_overlay_tints_mask_only(encoding: str) -> None:
    rgb, frame = _frame()
    if encoding == "rgb8":
        image, bgr = rgb, rgb[:, :, ::-1]
    elif encoding == "bgr8":
        image = np.ascontiguousarray(rgb[:, :, ::-1])
        bgr = image
    elif encoding == "rgba8":
        image = np.concatenate([rgb, np.full((120, 200, 1), 7, np.uint8)], axis=2)
        bgr = rgb[:, :, ::-1]
    else:
        image = rgb[:, :, 0].copy()
        bgr = np.repeat(image[:, :, None], 3, axis=2)
    out = render_overlay(image, encoding, frame)
    assert out.shape == (120, 200, 3) and out.dtype == np.uint8
    colour = np.array(object_colour(3), dtype=np.float64)
    # Inside the mask, away from the prompt marks: an alpha blend with the object colour.
    y, x = 20 + 35, 50 + 15
    expected = bgr[y, x] * (1 - MASK_ALPHA) + colour * MASK_ALPHA
    np.testing.assert_allclose(out[y, x], expected, atol=1.0)
    # Inside the crop but outside the mask: untouched.
    np.testing.assert_array_equal(out[20 + 80, 50 + 80], bgr[100, 130])
    # Outside every crop, away from labels: untouched.
    np.testing.assert_array_equal(out[110, 180], bgr[110, 180])
    # Crop outline drawn in the object's colour.
    np.testing.assert_array_equal(out[60, 145], colour.astype(np.uint8))
    assert not np.shares_memory(out, image)


def test_object_colours_are_stable_and_distinct() -> None:
    assert object_colour(1) == object_colour(1)
    colours = {object_colour(i) for i in range(1, 9)}
    assert len(colours) == 8


def test_labels_replace_the_id_and_score_text_only() -> None:
    rgb, frame = _frame()
    default = render_overlay(rgb, "rgb8", frame)
    labelled = render_overlay(rgb, "rgb8", frame, {3: "person"})
    changed = np.argwhere((default != labelled).any(axis=2))
    assert changed.size  # the text differs ...
    # ... and only in the label strip just above object 3's crop (top at row 20).
    assert changed[:, 0].max() < 20 and changed[:, 1].min() >= 50
    # An object without an entry keeps its own label.
    assert np.array_equal(render_overlay(rgb, "rgb8", frame, {4: "x"}), default)
