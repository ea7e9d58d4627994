"""Segment everything: every object in a frame, without prompts.

PicoSAM2 segments the object at the centre of its crop, so "everything" is a grid of
point crops over the frame (the nodes' point crop: ``crop_side_px`` square around each
grid point, translated to stay inside the frame), run through the backend in batches.
Each crop's mask is a candidate; a candidate is dropped when

- its stability score (``postprocess.stability_score``) is below ``min_score``,
- it does not cover its crop's centre (the model was asked about the centre pixel, so a
  mask beside it answers another question); of a mask that does, only the 8-connected
  part holding the centre is kept,
- it fills its crop: it touches all four sides of the crop, or its centre part covers
  more than ``max_crop_fill`` of it (the surface around the point, or an object larger
  than the crop, not an object the crop can hold), or
- its centre part has fewer than ``min_area_px`` pixels.

The survivors are deduplicated by greedy mask NMS (highest score first, a mask whose IoU
with a kept one reaches ``nms_iou`` is dropped) and the best ``max_masks`` are returned,
numbered 1, 2, ... in decreasing score.

The hierarchical strategy (TinySAM, Shu et al. 2023) spends the dense grid only where it
is needed: a first pass runs a sparse subset of the dense grid (every
``sparse_stride``-th point along each axis); the masks of that pass scoring at least
``confident_score`` mark their pixels as done, and the second pass runs only the dense
points that no such mask covers. Both passes' candidates go through the same NMS, so a
hierarchical result is a dense result with the points inside confident masks skipped.

Everything here is deterministic for a given frame, backend and settings: points are
visited in raster order and ties in score are broken by that order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, Roi
from picosam2_ros.core.pipeline import (
    CropSettings,
    FrameResult,
    ObjectResult,
    ObjectStatus,
    segment_frame,
)
from picosam2_ros.core.preprocess import check_image
from picosam2_ros.core.prompts import ObjectPrompt

if TYPE_CHECKING:
    from picosam2_ros.backends.base import InferenceBackend

#: The largest frame segment-everything accepts, in pixels (8192 x 8192): its full-frame
#: coverage map and any full-frame mask of the result scale with the frame.
MAX_FRAME_PIXELS = 8192 * 8192


class EverythingError(ValueError):
    """A frame or settings segment-everything cannot work with; the message says why."""


@dataclass(frozen=True)
class EverythingSettings:
    """How a frame is covered with point prompts and which masks are kept.

    points_per_side: dense grid points along the frame's longer side; the shorter side
    gets as many as keep the cells square. sparse_stride: the hierarchical first pass
    takes every n-th dense point along each axis (3 = a ninth of the points).
    The defaults were chosen on coco-val2017-sample with the shipped point model
    (README, "Segment everything"): its stability scores are low for real objects, so
    ``min_score`` only drops the blurriest masks, and ``confident_score`` 0.45 is what
    lets the hierarchical pass skip enough of the dense grid (chosen on the same images the
    README reports; there is no separate split).
    """

    points_per_side: int = 24
    hierarchical: bool = True
    sparse_stride: int = 3
    min_score: float = 0.3
    confident_score: float = 0.45
    nms_iou: float = 0.7
    max_masks: int = 100
    min_area_px: int = 16
    max_crop_fill: float = 0.8
    crop_side_px: int = MODEL_INPUT_SIZE
    threshold: float = 0.0
    batch_size: int = 16

    def check(self) -> None:
        """Raise EverythingError naming the first setting out of its range."""
        problems = [
            (
                self.points_per_side >= 1,
                f"points_per_side must be >= 1, got {self.points_per_side}",
            ),
            (self.sparse_stride >= 1, f"sparse_stride must be >= 1, got {self.sparse_stride}"),
            (0.0 <= self.min_score <= 1.0, f"min_score must be in [0, 1], got {self.min_score}"),
            (
                0.0 <= self.confident_score <= 1.0,
                f"confident_score must be in [0, 1], got {self.confident_score}",
            ),
            (0.0 < self.nms_iou <= 1.0, f"nms_iou must be in (0, 1], got {self.nms_iou}"),
            (self.max_masks >= 1, f"max_masks must be >= 1, got {self.max_masks}"),
            (self.min_area_px >= 0, f"min_area_px must be >= 0, got {self.min_area_px}"),
            (
                0.0 < self.max_crop_fill <= 1.0,
                f"max_crop_fill must be in (0, 1], got {self.max_crop_fill}",
            ),
            (self.crop_side_px >= 8, f"crop_side_px must be >= 8, got {self.crop_side_px}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
        ]
        for ok, problem in problems:
            if not ok:
                raise EverythingError(problem)


@dataclass(frozen=True)
class Candidate:
    """One grid point's mask: ``mask`` is bool over ``bbox`` (the mask's tight box in
    frame pixels), ``crop`` where the model looked, ``order`` the point's raster index
    in the dense grid (the tie-break)."""

    point: tuple[float, float]
    crop: Roi
    bbox: Roi
    mask: np.ndarray
    score: float
    order: int

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))


@dataclass
class EverythingResult:
    """The kept masks as a ``FrameResult`` (object ids 1..N in decreasing score, each
    prompt the grid point that found it) and what it took to get them."""

    frame: FrameResult
    #: Crops run in the first pass (all of the dense grid when not hierarchical) and in
    #: the hierarchical second pass.
    first_pass_crops: int
    second_pass_crops: int
    #: Dense grid points skipped because a confident first-pass mask covered them.
    skipped_points: int
    #: Masks that passed the filters, before NMS and the max_masks cut.
    candidates: int
    grid_shape: tuple[int, int] = field(default=(0, 0))

    @property
    def crops_run(self) -> int:
        return self.first_pass_crops + self.second_pass_crops


def grid_shape(width: int, height: int, points_per_side: int) -> tuple[int, int]:
    """(columns, rows) of the dense grid: ``points_per_side`` along the longer side and
    square cells. Raises EverythingError when the grid is denser than the frame."""
    if width <= 0 or height <= 0:
        raise EverythingError(f"image has zero size: {width}x{height}")
    longer, shorter = max(width, height), min(width, height)
    if points_per_side > longer:
        raise EverythingError(
            f"a grid of {points_per_side} points per side is denser than the {width}x{height} "
            f"image (at most {longer} points along its longer side)"
        )
    across = max(1, min(shorter, round(shorter * points_per_side / longer)))
    return (points_per_side, across) if width >= height else (across, points_per_side)


def grid_points(width: int, height: int, points_per_side: int) -> np.ndarray:
    """The dense grid, (rows * columns, 2) float64 (x, y) in raster order: the centres of
    square-ish cells tiling the frame."""
    columns, rows = grid_shape(width, height, points_per_side)
    xs = (np.arange(columns) + 0.5) * (width / columns)
    ys = (np.arange(rows) + 0.5) * (height / rows)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def sparse_indices(columns: int, rows: int, stride: int) -> np.ndarray:
    """Raster indices of the hierarchical first pass: every ``stride``-th column and row
    of the dense grid, starting so the unused margin is split between both ends."""
    cols = np.arange((columns - 1) % stride // 2, columns, stride)
    rws = np.arange((rows - 1) % stride // 2, rows, stride)
    return (rws[:, None] * columns + cols[None, :]).ravel()


def first_pass_indices(columns: int, rows: int, settings: EverythingSettings) -> np.ndarray:
    """Raster indices of the first pass: the sparse subset when hierarchical, else the
    whole dense grid."""
    if settings.hierarchical and settings.sparse_stride > 1:
        return sparse_indices(columns, rows, settings.sparse_stride)
    return np.arange(columns * rows)


def _covers_centre(obj: ObjectResult) -> bool:
    """The mask holds the centre of its crop, the pixel the model was asked about."""
    return obj.status == ObjectStatus.OK and bool(
        obj.mask[obj.crop.height // 2, obj.crop.width // 2]
    )


def _centre_component(obj: ObjectResult, settings: EverythingSettings) -> np.ndarray | None:
    """The 8-connected part of the mask that holds its crop's centre, over the crop, or
    None when the mask fails a filter of the module docstring."""
    if not _covers_centre(obj) or obj.bbox is None or obj.score < settings.min_score:
        return None
    if obj.bbox == obj.crop:
        return None
    _, labels = cv2.connectedComponents(obj.mask.view(np.uint8), connectivity=8)
    part: np.ndarray = labels == labels[obj.crop.height // 2, obj.crop.width // 2]
    area = int(np.count_nonzero(part))
    if area < settings.min_area_px or area > settings.max_crop_fill * part.size:
        return None
    return part


def candidate_from_result(
    obj: ObjectResult,
    point: tuple[float, float],
    order: int,
    settings: EverythingSettings,
    covered: np.ndarray | None = None,
) -> Candidate | None:
    """The candidate one grid point's mask gives (``obj``: the point crop's result, its
    mask over its crop), or None when the mask fails a filter of the module docstring.

    ``covered``, a full-frame bool map, receives every mask that holds its crop's centre
    and scores at least ``confident_score``, also those the filters then drop: a crop
    filled by one confident surface says that surface needs no denser prompts either.
    """
    if covered is not None and obj.score >= settings.confident_score and _covers_centre(obj):
        covered[obj.crop.slices] |= obj.mask
    part = _centre_component(obj, settings)
    if part is None:
        return None
    x, y, w, h = cv2.boundingRect(part.view(np.uint8))
    bbox = Roi(obj.crop.x + x, obj.crop.y + y, w, h)
    tight = np.ascontiguousarray(part[y : y + h, x : x + w])
    return Candidate((float(point[0]), float(point[1])), obj.crop, bbox, tight, obj.score, order)


def uncovered_points(points: np.ndarray, indices: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The ``indices`` (into ``points``) whose pixel ``covered`` does not mark: the
    hierarchical second pass."""
    height, width = covered.shape
    cols = np.minimum(points[indices, 0].astype(np.int64), width - 1)
    rws = np.minimum(points[indices, 1].astype(np.int64), height - 1)
    result: np.ndarray = indices[~covered[rws, cols]]
    return result


def _run_points(
    image: np.ndarray,
    encoding: str,
    points: np.ndarray,
    orders: np.ndarray,
    backends: Mapping[str, InferenceBackend],
    settings: EverythingSettings,
    covered: np.ndarray | None = None,
) -> tuple[list[Candidate], float]:
    """Candidates of the given grid points (batches of ``batch_size`` crops through
    ``core.pipeline.segment_frame``) and the backend time in ms; ``covered`` as in
    ``candidate_from_result``."""
    crop_settings = CropSettings(point_side_px=settings.crop_side_px, threshold=settings.threshold)
    candidates: list[Candidate] = []
    inference_ms = 0.0
    for start in range(0, len(points), settings.batch_size):
        chunk = range(start, min(start + settings.batch_size, len(points)))
        prompts = [
            ObjectPrompt.from_point(i + 1, float(points[i, 0]), float(points[i, 1])) for i in chunk
        ]
        frame = segment_frame(image, encoding, prompts, backends, crop_settings)
        inference_ms += frame.inference_ms
        for obj in frame.objects:
            i = obj.object_id - 1
            point = (float(points[i, 0]), float(points[i, 1]))
            cand = candidate_from_result(obj, point, int(orders[i]), settings, covered)
            if cand is not None:
                candidates.append(cand)
    return candidates, inference_ms


def candidate_iou(a: Candidate, b: Candidate) -> float:
    """IoU of two candidates' masks in frame pixels."""
    common = a.bbox.intersection(b.bbox)
    if common.is_empty:
        return 0.0
    wa = a.mask[common.y - a.bbox.y : common.y - a.bbox.y + common.height,
                common.x - a.bbox.x : common.x - a.bbox.x + common.width]  # fmt: skip
    wb = b.mask[common.y - b.bbox.y : common.y - b.bbox.y + common.height,
                common.x - b.bbox.x : common.x - b.bbox.x + common.width]  # fmt: skip
    inter = int(np.count_nonzero(wa & wb))
    if inter == 0:
        return 0.0
    return inter / (a.area + b.area - inter)


def mask_nms(candidates: Sequence[Candidate], iou_threshold: float, limit: int) -> list[Candidate]:
    """Greedy NMS: candidates by decreasing score (ties: grid order); one is kept unless
    its IoU with an already kept mask reaches ``iou_threshold``; at most ``limit``."""
    ranked = sorted(candidates, key=lambda c: (-c.score, c.order))
    kept: list[Candidate] = []
    for cand in ranked:
        if len(kept) >= limit:
            break
        if all(candidate_iou(cand, other) < iou_threshold for other in kept):
            kept.append(cand)
    return kept


def candidate_to_object(object_id: int, cand: Candidate) -> ObjectResult:
    """A kept candidate as a result object, its mask over its crop like a prompted one."""
    mask = np.zeros((cand.crop.height, cand.crop.width), dtype=bool)
    dy, dx = cand.bbox.y - cand.crop.y, cand.bbox.x - cand.crop.x
    mask[dy : dy + cand.bbox.height, dx : dx + cand.bbox.width] = cand.mask
    prompt = ObjectPrompt.from_point(object_id, cand.point[0], cand.point[1])
    return ObjectResult(object_id, ObjectStatus.OK, cand.score, cand.crop, mask, cand.bbox, prompt)


def check_frame(image: np.ndarray, encoding: str) -> None:
    """Raise EverythingError for a frame segment-everything cannot work on (EncodingError,
    also a ValueError, for an array that does not match its encoding)."""
    height, width = image.shape[:2] if image.ndim >= 2 else (0, 0)
    if width <= 0 or height <= 0:
        raise EverythingError(f"image has zero size: {width}x{height}")
    if width * height > MAX_FRAME_PIXELS:
        raise EverythingError(
            f"image of {width}x{height} pixels is larger than segment-everything takes "
            f"({MAX_FRAME_PIXELS} pixels); scale it down first"
        )
    check_image(image, encoding)


def segment_everything(
    image: np.ndarray,
    encoding: str,
    backends: Mapping[str, InferenceBackend],
    settings: EverythingSettings,
) -> EverythingResult:
    """Every object in ``image`` (an (H, W, C) or (H, W) uint8 array in ``encoding``)
    found by the point grid of ``settings`` through ``backends["point"]``.

    Raises EverythingError for a zero-size or oversized frame, a grid denser than the
    frame or settings out of range; EncodingError for an unsupported encoding.
    """
    settings.check()
    check_frame(image, encoding)
    height, width = image.shape[:2]
    columns, rows = grid_shape(width, height, settings.points_per_side)
    points = grid_points(width, height, settings.points_per_side)
    orders = np.arange(len(points))

    first = first_pass_indices(columns, rows, settings)
    hierarchical = len(first) < len(points)
    covered = np.zeros((height, width), dtype=bool) if hierarchical else None
    candidates, inference_ms = _run_points(
        image, encoding, points[first], orders[first], backends, settings, covered
    )
    second_count = skipped = 0
    if covered is not None:
        rest = np.setdiff1d(orders, first)
        todo = uncovered_points(points, rest, covered)
        skipped = len(rest) - len(todo)
        second_count = len(todo)
        more, more_ms = _run_points(image, encoding, points[todo], orders[todo], backends, settings)
        candidates += more
        inference_ms += more_ms

    kept = mask_nms(candidates, settings.nms_iou, settings.max_masks)
    objects = [candidate_to_object(k + 1, cand) for k, cand in enumerate(kept)]
    return EverythingResult(
        FrameResult(width, height, objects, inference_ms),
        first_pass_crops=len(first),
        second_pass_crops=second_count,
        skipped_points=skipped,
        candidates=len(candidates),
        grid_shape=(columns, rows),
    )
