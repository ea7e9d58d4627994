"""Logits -> mask, stability score, resize, background erasing, re-centring."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.postprocess import (
    erase_components_at,
    logits_to_mask,
    recentre_point,
    resize_mask,
    stability_score,
    stability_scores,
)


def test_logits_to_mask_threshold() -> None:
    logits = np.array([[-1.0, 0.0, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(logits_to_mask(logits), [[False, False, True]])
    np.testing.assert_array_equal(logits_to_mask(logits, -1.5), [[True, True, True]])


def test_stability_score_hand_computed() -> None:
    logits = np.array([3.0, 1.5, 0.5, -0.5, -2.0], dtype=np.float32)
    # > +1: 2 values; > -1: 4 values.
    assert stability_score(logits) == pytest.approx(0.5)
    assert stability_score(np.full(5, -3.0)) == 0.0
    batch = np.stack([logits.reshape(1, 5), np.full((1, 5), -3.0), np.full((1, 5), 5.0)])
    np.testing.assert_allclose(stability_scores(batch), [0.5, 0.0, 1.0])


def test_resize_mask_shape_and_content() -> None:
    mask = np.zeros((96, 96), dtype=bool)
    mask[10:30, 40:90] = True  # 50 wide, 20 high
    big = resize_mask(mask, 192, 144)
    assert big.shape == (144, 192) and big.dtype == bool
    ys, xs = np.nonzero(big)
    assert (xs.min(), xs.max() + 1) == (80, 180)
    assert (ys.min(), ys.max() + 1) == (15, 45)


def test_resize_mask_round_trip_is_unbiased() -> None:
    # Centre-aligned nearest sampling keeps a mask's centroid in place through 96 -> N.
    mask = np.zeros((96, 96), dtype=bool)
    mask[30:61, 20:51] = True
    for side in (50, 77, 131, 200):
        up = resize_mask(mask, side, side)
        ys, xs = np.nonzero(up)
        scale = side / 96
        assert xs.mean() + 0.5 == pytest.approx((20 + 51) / 2 * scale, abs=0.35)
        assert ys.mean() + 0.5 == pytest.approx((30 + 61) / 2 * scale, abs=0.35)


def test_erase_components_removes_only_touched_components() -> None:
    mask = np.zeros((40, 60), dtype=bool)
    mask[5:15, 5:15] = True  # component A
    mask[20:30, 30:50] = True  # component B
    mask[15, 15] = True  # diagonal neighbour of A: 8-connected to it
    out = erase_components_at(mask, np.array([[6.0, 6.0]]))
    assert not out[5:16, 5:16].any()
    assert out[20:30, 30:50].all()
    # A point on background or outside the mask erases nothing.
    assert np.array_equal(erase_components_at(mask, np.array([[58.0, 2.0], [100.0, 5.0]])), mask)
    assert not np.shares_memory(out, mask)


def test_recentre_point_on_ring_and_empty() -> None:
    assert recentre_point(np.zeros((10, 10), bool)) is None
    mask = np.zeros((50, 50), dtype=bool)
    mask[10:41, 10:41] = True
    mask[20:31, 20:31] = False  # a square ring: centroid not on the mask
    x, y = recentre_point(mask)  # type: ignore[misc]
    assert mask[int(y), int(x)]


def test_recentre_point_elongated_object_middle_and_crop_edge() -> None:
    mask = np.zeros((96, 96), dtype=bool)
    mask[40:51, 10:71] = True  # 61 x 11 bar: centre (40, 45)
    assert recentre_point(mask) == (40.0, 45.0)
    full = np.ones((20, 30), dtype=bool)  # the crop edge counts as outline
    assert recentre_point(full) == pytest.approx((14.5, 9.5), abs=0.6)
