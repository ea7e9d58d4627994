"""One frame: standing prompts + image -> one mask per object, in frame pixels.

prompts -> crops (``plan_crops``) -> 96x96 model inputs -> one batched backend call per
backend -> logits (box crops decoded with their box when the model asks for it:
core.box_prior) -> masks resized back to each crop -> per object: union of its crops,
background points erase components -> ``ObjectResult``.

With ``CropSettings.whole_object`` set, each foreground point first goes through
``core.whole_object`` (point-network windows that find the object's extent), and
the box found replaces the point's crop with a box crop for the box model; a search
that ends on a point window (the object still reached the last but one window's edge)
answers with that window's mask; a point where nothing was found keeps its native crop.

Masks are kept inside their crop (``ObjectResult.crop``) rather than as full frames:
that is what ``msg/ObjectMask.msg`` carries, and it keeps per-object cost independent
of the frame size (no full-frame allocation per object).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from picosam2_ros.core.box_prior import apply_box_prior, box_in_crop
from picosam2_ros.core.geometry import Roi, box_to_roi, point_crop_side, point_to_roi
from picosam2_ros.core.postprocess import (
    erase_components_at,
    keep_components_at,
    resize_mask,
    stability_score,
    stability_scores,
)
from picosam2_ros.core.preprocess import check_image, crop_to_model_input, normalise
from picosam2_ros.core.prompts import ObjectPrompt, PromptError, validate_prompt
from picosam2_ros.core.whole_object import (
    BoxRun,
    ClickSearch,
    WholeObjectSettings,
    run_point_stages,
)

if TYPE_CHECKING:  # the core needs only the protocol's shape, not the backends package
    from picosam2_ros.backends.base import InferenceBackend

CropKind = Literal["point", "box"]
EMPTY_ROI = Roi(0, 0, 0, 0)


class ObjectStatus(IntEnum):
    """Per-object outcome; the numbers are those of msg/ObjectMask.msg STATUS_*."""

    OK = 0
    EMPTY = 1
    LOST = 2
    SKIPPED = 3


@dataclass(frozen=True)
class CropSettings:
    """How prompts become crops.

    point_side_px: side of a point crop in frame pixels (96 = native, as in the paper);
    point_side_fraction: if > 0, the side is this fraction of the frame's shorter side
    instead; box_margin: a box crop's side = margin x the box's longer side;
    threshold: logit threshold of the mask (0 = sigmoid 0.5); whole_object: if set, point
    prompts segment the whole object (``core.whole_object``, up to three network runs
    per point) instead of the native crop around the point.
    """

    point_side_px: int = 96
    point_side_fraction: float = 0.0
    box_margin: float = 1.1
    threshold: float = 0.0
    whole_object: WholeObjectSettings | None = None


@dataclass(frozen=True)
class CropJob:
    """One model run: which object it serves, which model kind, where in the frame, for
    a box crop the prompt's box in frame pixels (for box-conditioned decoding), and for a
    point crop the point."""

    object_id: int
    kind: CropKind
    roi: Roi
    box: tuple[float, float, float, float] | None = None
    point: tuple[float, float] | None = None


@dataclass
class ObjectResult:
    """One object in one frame.

    ``mask`` is bool (crop.height, crop.width): mask[v, u] is frame pixel
    (crop.x + u, crop.y + v). ``bbox`` is the mask's bounding box in frame pixels, None
    when empty. ``score`` is the highest stability score among the object's crops (how
    crisp its best view is), 0.0 when the final mask is empty. ``reason`` says why an
    object was skipped.
    """

    object_id: int
    status: ObjectStatus
    score: float
    crop: Roi
    mask: np.ndarray
    bbox: Roi | None
    prompt: ObjectPrompt
    reason: str = ""


@dataclass
class FrameResult:
    """All objects of one frame, ascending object_id; inference_ms is backend time only."""

    width: int
    height: int
    objects: list[ObjectResult]
    inference_ms: float


def plan_crops(
    prompts: Sequence[ObjectPrompt], width: int, height: int, settings: CropSettings
) -> tuple[list[CropJob], dict[int, str]]:
    """Crops for every prompt that fits this frame, ascending object_id: one point crop
    per foreground point, one box crop per box. Prompts that do not fit (for example a
    point outside a smaller frame) are returned as {object_id: reason} instead."""
    side = point_crop_side(width, height, settings.point_side_px, settings.point_side_fraction)
    jobs: list[CropJob] = []
    skipped: dict[int, str] = {}
    seen: set[int] = set()
    for prompt in sorted(prompts, key=lambda p: p.object_id):
        oid = prompt.object_id
        if oid in seen:
            raise PromptError(f"object {oid} has two prompts in one frame")
        seen.add(oid)
        try:
            validate_prompt(prompt, width, height)
        except PromptError as exc:
            skipped[oid] = str(exc)
            continue
        for x, y in prompt.foreground.tolist():
            roi = point_to_roi(x, y, side, width, height)
            jobs.append(CropJob(oid, "point", roi, point=(x, y)))
        if prompt.box is not None:
            roi = box_to_roi(prompt.box, width, height, settings.box_margin)
            jobs.append(CropJob(oid, "box", roi, prompt.box))
    return jobs, skipped


def _run_crops(
    image: np.ndarray,
    encoding: str,
    jobs: Sequence[CropJob],
    backends: Mapping[str, InferenceBackend],
    threshold: float,
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Small (S, S) masks and stability scores for every job, and the backend time in ms.

    Jobs are grouped by backend object, so each backend gets exactly one batch per frame
    (one call in total when "point" and "box" share a backend).
    """
    groups: dict[int, tuple[InferenceBackend, list[int]]] = {}
    for i, job in enumerate(jobs):
        try:
            backend = backends[job.kind]
        except KeyError:
            raise KeyError(f"no backend for {job.kind} crops (object {job.object_id})") from None
        groups.setdefault(id(backend), (backend, []))[1].append(i)

    masks: list[np.ndarray] = [np.empty((0, 0), dtype=bool)] * len(jobs)
    scores = np.zeros(len(jobs), dtype=np.float64)
    inference_s = 0.0
    for backend, indices in groups.values():
        size = backend.input_size
        crops = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for k, i in enumerate(indices):
            crop_to_model_input(image, encoding, jobs[i].roi, size, out=crops[k])
        batch = normalise(crops)
        start = time.perf_counter()
        logits = backend.infer(batch)
        inference_s += time.perf_counter() - start
        if logits.shape != (len(indices), size, size):
            raise RuntimeError(
                f"backend {backend.name} returned logits of shape {logits.shape} for a "
                f"batch of {len(indices)}; expected ({len(indices)}, {size}, {size})"
            )
        weight = float(getattr(backend, "box_prior_weight", 0.0))
        if weight > 0.0:
            _decode_boxes(logits, [jobs[i] for i in indices], size, weight)
        small = logits > threshold
        scores[indices] = stability_scores(logits, threshold)
        for k, i in enumerate(indices):
            masks[i] = small[k]
    return masks, scores, inference_s * 1000.0


def _decode_boxes(logits: np.ndarray, jobs: Sequence[CropJob], size: int, weight: float) -> None:
    """Box-conditioned decoding (core.box_prior), in place, of the box crops' logits."""
    boxed = [(k, job.box, job.roi) for k, job in enumerate(jobs) if job.box is not None]
    if boxed:
        rows = [k for k, _, _ in boxed]
        boxes = np.stack([box_in_crop(box, roi, size) for _, box, roi in boxed])
        logits[rows] = apply_box_prior(logits[rows], boxes, weight)


def _object_result(
    prompt: ObjectPrompt,
    rois: Sequence[Roi],
    masks: Sequence[np.ndarray],
    scores: Sequence[float],
) -> ObjectResult:
    """Paste an object's masks (each at its ROI's size) into the union of their ROIs and
    finish it."""
    crop = rois[0]
    for roi in rois[1:]:
        crop = crop.union(roi)
    if len(rois) == 1:
        mask = masks[0]
    else:
        mask = np.zeros((crop.height, crop.width), dtype=bool)
        for r, piece in zip(rois, masks, strict=True):
            dy, dx = r.y - crop.y, r.x - crop.x
            mask[dy : dy + r.height, dx : dx + r.width] |= piece
    background = prompt.background
    if background.shape[0]:
        mask = erase_components_at(mask, background - (crop.x, crop.y))
    # cv2.boundingRect on the mask = geometry.mask_bbox, about 10x faster.
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return ObjectResult(prompt.object_id, ObjectStatus.EMPTY, 0.0, crop, mask, None, prompt)
    bbox = Roi(crop.x + x, crop.y + y, w, h)
    score = float(max(scores))
    return ObjectResult(prompt.object_id, ObjectStatus.OK, score, crop, mask, bbox, prompt)


def segment_frame(
    image: np.ndarray,
    encoding: str,
    prompts: Sequence[ObjectPrompt],
    backends: Mapping[str, InferenceBackend],
    settings: CropSettings,
) -> FrameResult:
    """Segment every prompted object in ``image`` (an (H, W, C) or (H, W) uint8 array in
    ``encoding``). ``backends`` maps "point" and "box" to the model for each crop kind.

    Raises EncodingError for an unsupported encoding. Objects come back in ascending
    object_id; prompts that do not fit the frame come back SKIPPED with the reason.
    """
    check_image(image, encoding)
    height, width = image.shape[:2]
    jobs, skipped = plan_crops(prompts, width, height, settings)
    pieces: list[tuple[int, Roi, np.ndarray, float]] = []  # object id, roi, mask, score
    search_ms = 0.0
    if settings.whole_object is not None:
        jobs, pieces, search_ms = _whole_object_jobs(image, encoding, jobs, backends, settings)
    masks, scores, inference_ms = _run_crops(image, encoding, jobs, backends, settings.threshold)
    inference_ms += search_ms
    for job, small, score in zip(jobs, masks, scores, strict=True):
        full = resize_mask(small, job.roi.width, job.roi.height)
        pieces.append((job.object_id, job.roi, full, float(score)))

    by_object: dict[int, list[int]] = {}
    for i, piece in enumerate(pieces):
        by_object.setdefault(piece[0], []).append(i)

    objects: list[ObjectResult] = []
    for prompt in sorted(prompts, key=lambda p: p.object_id):
        oid = prompt.object_id
        if oid in skipped:
            empty = np.zeros((0, 0), dtype=bool)
            objects.append(
                ObjectResult(
                    oid, ObjectStatus.SKIPPED, 0.0, EMPTY_ROI, empty, None, prompt, skipped[oid]
                )
            )
            continue
        idx = by_object[oid]
        objects.append(
            _object_result(
                prompt,
                [pieces[i][1] for i in idx],
                [pieces[i][2] for i in idx],
                [pieces[i][3] for i in idx],
            )
        )
    return FrameResult(width, height, objects, inference_ms)


def _whole_object_jobs(
    image: np.ndarray,
    encoding: str,
    jobs: Sequence[CropJob],
    backends: Mapping[str, InferenceBackend],
    settings: CropSettings,
) -> tuple[list[CropJob], list[tuple[int, Roi, np.ndarray, float]], float]:
    """Point jobs through ``core.whole_object``: each becomes a box job for the box model
    on the object's found extent, or (without box refinement) a finished piece from the
    second window; points where nothing was found keep their native crop. Returns the
    jobs left to run, the finished pieces and the point backend's time in ms."""
    assert settings.whole_object is not None
    points = [job for job in jobs if job.kind == "point" and job.point is not None]
    if not points:
        return list(jobs), [], 0.0
    try:
        backend = backends["point"]
    except KeyError:
        raise KeyError("no backend for point crops") from None
    elapsed = 0.0

    def infer(batch: np.ndarray) -> np.ndarray:
        nonlocal elapsed
        start = time.perf_counter()
        out = backend.infer(batch)
        elapsed += time.perf_counter() - start
        return out

    height, width = image.shape[:2]
    searches = [
        ClickSearch(job.point, width, height, settings.whole_object, settings.threshold)
        for job in points
        if job.point is not None
    ]
    run_point_stages(image, encoding, searches, infer, backend.input_size)
    replaced: dict[int, CropJob | None] = {}
    pieces: list[tuple[int, Roi, np.ndarray, float]] = []
    for job, search in zip(points, searches, strict=True):
        run = search.next_run()
        if isinstance(run, BoxRun):
            search.take_box()
            roi = box_to_roi(run.box, width, height, settings.box_margin)
            replaced[id(job)] = CropJob(job.object_id, "box", roi, run.box)
            continue
        outcome = search.outcome()
        if not outcome.found:
            continue
        assert job.point is not None
        roi, logits = outcome.on_frame(width, height)
        click = np.array([job.point]) - (roi.x, roi.y)
        mask = keep_components_at(logits > settings.threshold, click)
        score = stability_score(outcome.logits, settings.threshold)
        pieces.append((job.object_id, roi, mask, score))
        replaced[id(job)] = None
    left: list[CropJob] = []
    for job in jobs:
        new = replaced.get(id(job), job)
        if new is not None:
            left.append(new)
    return left, pieces, elapsed * 1000.0


def union_mask(frame: FrameResult, out: np.ndarray | None = None) -> np.ndarray:
    """All objects' masks in one full-frame uint8 image: 255 = some object, 0 = none.

    ``out``: a uint8 buffer to refill when it has the frame's shape (a camera node
    reuses one between frames instead of allocating 1.2 MB per 1280x960 frame)."""
    if out is None or out.shape != (frame.height, frame.width):
        out = np.zeros((frame.height, frame.width), dtype=np.uint8)
    else:
        out.fill(0)
    for obj in frame.objects:
        if obj.mask.size and not obj.crop.is_empty:
            out[obj.crop.slices][obj.mask] = 255
    return out
