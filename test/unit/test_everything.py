"""segment_everything through onnxruntime with the colour-match model.

The colour-match model segments the region whose colour matches its crop's centre, so on
a generated scene of flat, separated objects the right answer is known: each object once,
with its exact mask, and nothing on the empty background.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.everything import (
    MAX_FRAME_PIXELS,
    Candidate,
    EverythingError,
    EverythingResult,
    EverythingSettings,
    grid_points,
    grid_shape,
    mask_nms,
    segment_everything,
    sparse_indices,
)
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import ObjectResult, ObjectStatus, union_mask
from picosam2_ros.core.preprocess import EncodingError
from picosam2_ros.testing.scenes import PALETTE, SceneObject, render_scene

W, H = 400, 300

# Separated objects no larger than half a crop (so a crop centred on any of their pixels
# holds all of them), at least 50 px from the frame's edges (so a crop translated at the
# border has its centre on the background, never on part of an object).
OBJECTS = [
    SceneObject("rect", PALETTE[0], 60, 60, 40, 24),
    SceneObject("ellipse", PALETTE[1], 150, 55, 30, 42),
    SceneObject("rect", PALETTE[2], 260, 70, 26, 40),
    SceneObject("ellipse", PALETTE[3], 70, 180, 44, 30),
    SceneObject("L", PALETTE[4], 180, 170, 45, 45),
    SceneObject("rect", PALETTE[5], 290, 190, 34, 44),
]


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, list[np.ndarray]]:
    return render_scene(W, H, OBJECTS)


def _everything(
    image: np.ndarray, backend: OnnxBackend, encoding: str = "rgb8", **overrides: Any
) -> EverythingResult:
    settings = EverythingSettings(**{"points_per_side": 20, **overrides})
    return segment_everything(image, encoding, {"point": backend}, settings)


def _full(obj: ObjectResult, width: int = W, height: int = H) -> np.ndarray:
    out = np.zeros((height, width), dtype=bool)
    out[obj.crop.slices] = obj.mask
    return out


@pytest.mark.parametrize("hierarchical", [False, True])
def test_each_separated_object_is_found_once_and_nothing_else(
    scene: tuple[np.ndarray, list[np.ndarray]], colour_backend: OnnxBackend, hierarchical: bool
) -> None:
    image, truths = scene
    result = _everything(image, colour_backend, hierarchical=hierarchical)
    masks = [_full(obj) for obj in result.frame.objects]
    assert len(masks) == len(truths)
    for truth in truths:
        ious = [mask_iou(mask, truth) for mask in masks]
        assert max(ious) == pytest.approx(1.0)
        assert sorted(ious)[-2] == 0.0  # no second mask on the same object
    # Nothing outside the objects: the empty background yields no mask.
    background = ~np.logical_or.reduce(truths)
    assert not np.any(np.logical_or.reduce(masks) & background)


def test_empty_background_yields_no_mask(colour_backend: OnnxBackend) -> None:
    image, _ = render_scene(W, H, [])
    result = _everything(image, colour_backend)
    assert result.frame.objects == []
    assert result.candidates == 0


def test_hierarchical_skips_dense_points_inside_confident_masks(
    scene: tuple[np.ndarray, list[np.ndarray]], colour_backend: OnnxBackend
) -> None:
    image, _ = scene
    dense = _everything(image, colour_backend, hierarchical=False)
    tiered = _everything(image, colour_backend, hierarchical=True, sparse_stride=2)
    columns, rows = grid_shape(W, H, 20)
    assert dense.crops_run == columns * rows
    assert tiered.first_pass_crops == len(sparse_indices(columns, rows, 2))
    assert tiered.skipped_points > 0
    assert tiered.crops_run + tiered.skipped_points == columns * rows
    assert tiered.crops_run < dense.crops_run / 2
    assert np.array_equal(union_mask(tiered.frame), union_mask(dense.frame))


def test_ids_follow_decreasing_score_and_results_are_deterministic(
    colour_backend: OnnxBackend,
) -> None:
    image, _ = render_scene(W, H, OBJECTS, noise=12.0, seed=5)
    image = np.ascontiguousarray(image[:, :, ::-1])  # bgr8 this time
    first = _everything(image, colour_backend, "bgr8", min_score=0.0)
    second = _everything(image, colour_backend, "bgr8", min_score=0.0)
    objs = first.frame.objects
    assert [o.object_id for o in objs] == list(range(1, len(objs) + 1))
    scores = [o.score for o in objs]
    assert scores == sorted(scores, reverse=True)
    assert all(o.status == ObjectStatus.OK for o in objs)
    assert len(objs) >= len(OBJECTS)
    again = second.frame.objects
    assert [(o.score, o.crop, o.bbox) for o in objs] == [(o.score, o.crop, o.bbox) for o in again]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(objs, again, strict=True))


def test_max_masks_keeps_the_best(
    scene: tuple[np.ndarray, list[np.ndarray]], colour_backend: OnnxBackend
) -> None:
    image, _ = scene
    result = _everything(image, colour_backend, max_masks=2)
    assert [o.object_id for o in result.frame.objects] == [1, 2]


def test_grid_is_square_celled_and_inside_the_frame() -> None:
    assert grid_shape(640, 480, 16) == (16, 12)
    assert grid_shape(480, 640, 16) == (12, 16)
    points = grid_points(640, 480, 16)
    assert points.shape == (192, 2)
    assert points[:, 0].min() == 20.0 and points[:, 0].max() == 620.0
    assert points[:, 1].min() == 20.0 and points[:, 1].max() == 460.0
    sparse = sparse_indices(16, 12, 2)
    assert len(sparse) == 8 * 6 and len(set(sparse.tolist())) == 48
    assert len(sparse_indices(24, 18, 3)) == 8 * 6
    assert len(sparse_indices(5, 5, 1)) == 25


def _cand(x: int, y: int, w: int, h: int, score: float, order: int) -> Candidate:
    return Candidate((x, y), Roi(x, y, w, h), Roi(x, y, w, h), np.ones((h, w), bool), score, order)


def test_mask_nms_drops_overlapping_masks_keeps_separate_ones() -> None:
    a = _cand(0, 0, 10, 10, 0.9, 0)
    b = _cand(1, 0, 10, 10, 0.8, 1)  # IoU 90/110 = 0.82 with a
    c = _cand(5, 0, 10, 10, 0.95, 2)  # IoU 50/150 with a, 60/140 with b
    d = _cand(40, 40, 5, 5, 0.5, 3)
    kept = mask_nms([a, b, c, d], 0.7, 10)
    assert [k.order for k in kept] == [2, 0, 3]
    assert [k.order for k in mask_nms([a, b, c, d], 0.3, 10)] == [2, 3]
    assert [k.order for k in mask_nms([a, b, c, d], 0.7, 2)] == [2, 0]
    # Equal scores: the earlier grid point wins, whatever the input order.
    e = _cand(1, 0, 10, 10, 0.9, 4)
    assert [k.order for k in mask_nms([e, a], 0.7, 10)] == [0]


def test_bad_frames_and_settings_raise_clear_errors(colour_backend: OnnxBackend) -> None:
    backends = {"point": colour_backend}
    with pytest.raises(EverythingError, match="zero size"):
        segment_everything(np.zeros((0, 10, 3), np.uint8), "rgb8", backends, EverythingSettings())
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (9000, 9000, 3))
    assert MAX_FRAME_PIXELS < 9000 * 9000
    with pytest.raises(EverythingError, match="larger than"):
        segment_everything(huge, "rgb8", backends, EverythingSettings())
    small = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(EverythingError, match="denser than the 20x10 image"):
        segment_everything(small, "rgb8", backends, EverythingSettings(points_per_side=21))
    with pytest.raises(EverythingError, match="nms_iou"):
        segment_everything(small, "rgb8", backends, EverythingSettings(nms_iou=0.0))
    with pytest.raises(EncodingError, match="unsupported encoding"):
        segment_everything(small, "yuv422", backends, EverythingSettings())


def test_frame_smaller_than_a_crop_is_segmented(colour_backend: OnnxBackend) -> None:
    image, truths = render_scene(64, 48, [SceneObject("rect", PALETTE[0], 20, 14, 20, 16)])
    result = segment_everything(
        image, "rgb8", {"point": colour_backend}, EverythingSettings(points_per_side=8)
    )
    masks = [_full(o, 64, 48) for o in result.frame.objects]
    assert len(masks) == 1 and mask_iou(masks[0], truths[0]) == pytest.approx(1.0)
