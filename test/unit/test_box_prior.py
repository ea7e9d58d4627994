"""Box-conditioned decoding of box-model logits, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.box_prior import (
    OUTSIDE_BOX_LOGIT,
    apply_box_prior,
    box_in_crop,
    ellipse_distance,
    inside_box,
)
from picosam2_ros.core.geometry import Roi


def test_box_in_crop_scales_and_clips() -> None:
    # A 192-px crop at (100, 50) shrinks by 2 into the 96-px input.
    got = box_in_crop((120.0, 40.0, 300.0, 150.0), Roi(100, 50, 192, 192), 96)
    np.testing.assert_allclose(got, [10.0, 0.0, 96.0, 50.0])


def test_ellipse_distance_is_one_on_the_inscribed_ellipse() -> None:
    e = ellipse_distance(np.array([0.0, 0.0, 8.0, 4.0]), 8)
    assert e[1, 3] == pytest.approx((0.5 / 4) ** 2 + (0.5 / 2) ** 2)  # pixel centre (3.5, 1.5)
    assert e[:4, :8].min() == pytest.approx(e[1:3, 3:5].min())
    assert (e[4:, :] > 1).all()  # below the box: outside the ellipse


def test_inside_box_uses_pixel_centres() -> None:
    inside = inside_box(np.array([1.0, 2.0, 3.0, 3.0]), 4)
    expected = np.zeros((4, 4), dtype=bool)
    expected[2, 1:3] = True
    np.testing.assert_array_equal(inside, expected)


def test_prior_cuts_outside_the_box_and_favours_its_centre() -> None:
    logits = np.zeros((2, 8, 8), dtype=np.float32)
    boxes = np.array([[0.0, 0.0, 8.0, 4.0], [2.0, 2.0, 6.0, 6.0]])
    out = apply_box_prior(logits, boxes, weight=2.0)
    assert out.dtype == np.float32
    assert (out[0, 4:] == OUTSIDE_BOX_LOGIT).all()
    assert out[0, 1, 3] == pytest.approx(2.0 * (1 - ((0.5 / 4) ** 2 + (0.5 / 2) ** 2)))
    assert out[1, 3, 3] > 0 > out[1, 2, 2]  # centre in, box corner outside the ellipse
    assert (out[1][~inside_box(boxes[1], 8)] == OUTSIDE_BOX_LOGIT).all()


def test_zero_weight_and_bad_shapes() -> None:
    logits = np.ones((1, 8, 8), dtype=np.float32)
    assert apply_box_prior(logits, np.zeros((1, 4)), 0.0) is logits
    with pytest.raises(ValueError, match=r"expected \(1, 4\) boxes"):
        apply_box_prior(logits, np.zeros((2, 4)), 1.0)
