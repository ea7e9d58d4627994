"""Class-agnostic recall of segment-everything results against ground-truth instances.

Per image, every predicted mask (with its score) is compared with every ground-truth
instance by mask IoU (pycocotools' RLE IoU on full-frame masks). Reported, over all
instances and per object size (small < 32^2, medium < 96^2 px, large, by the instance's
mask area as in the rest of ``picosam2_ros.evaluation``):

- ``recall_50``, ``recall_75``: the share of instances that SOME mask overlaps with
  IoU >= 0.5 / 0.75 (any mask may serve several instances);
- ``ar_100``: COCO-style average recall at 100 masks per image: the best 100 masks by
  score are matched one-to-one to instances the way COCOeval matches detections (in
  decreasing score, each mask takes the still unmatched instance it overlaps most, if
  that IoU reaches t), recall is the matched share, averaged over t = 0.50:0.05:0.95.
  Categories are ignored (COCOeval with ``useCats=0``); per size, the matching is the
  one over all instances and the recall is taken over that size's instances (COCOeval
  re-matches per size range with other sizes ignored, which can differ slightly);
- ``false_masks_per_image``: masks whose best IoU with any instance is below 0.5.

Crowd regions are not in the bags (``picosam2-make-bag`` skips crowd annotations), so a
mask on a crowd counts as false here where COCOeval would ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from picosam2_ros.core.metrics import PAPER_MAP_THRESHOLDS
from picosam2_ros.evaluation.masks import CroppedMask
from picosam2_ros.evaluation.protocol import size_class

#: IoU thresholds of COCO's AR (0.50:0.05:0.95), the same as the paper's "mAP" uses.
AR_THRESHOLDS = PAPER_MAP_THRESHOLDS
#: Masks per image that count for AR (COCO's maxDets).
AR_MAX_MASKS = 100
SIZES = ("small", "medium", "large")


def _rle(mask: CroppedMask, width: int, height: int) -> dict[str, Any]:
    frame = np.asfortranarray(mask.to_frame(width, height).view(np.uint8))
    return dict(mask_utils.encode(frame))


def iou_matrix(
    predictions: Sequence[CroppedMask], truths: Sequence[CroppedMask], width: int, height: int
) -> np.ndarray:
    """(predictions, truths) mask IoUs on the (height, width) frame."""
    if not predictions or not truths:
        return np.zeros((len(predictions), len(truths)), dtype=np.float64)
    dts = [_rle(m, width, height) for m in predictions]
    gts = [_rle(m, width, height) for m in truths]
    return np.asarray(mask_utils.iou(dts, gts, [0] * len(gts)), dtype=np.float64).reshape(
        len(dts), len(gts)
    )


def match_one_to_one(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Which truths (columns) are matched when the predictions (rows, already in
    decreasing score) each take the unmatched truth they overlap most, with IoU at least
    ``threshold`` (COCOeval's rule). Bool per truth."""
    matched = np.zeros(ious.shape[1], dtype=bool)
    for row in ious:
        free = np.where(matched, -1.0, row)
        best = int(np.argmax(free)) if free.size else -1
        if best >= 0 and free[best] >= threshold:
            matched[best] = True
    return matched


@dataclass
class ImageRecall:
    """One image: each truth's size class, best IoU over all masks, and whether the
    one-to-one matching of the best ``AR_MAX_MASKS`` masks reached each AR threshold."""

    image_id: int | None
    sizes: list[str]
    best_iou: np.ndarray
    matched: np.ndarray  # (len(AR_THRESHOLDS), truths) bool
    masks: int
    false_masks: int


def evaluate_image(
    predictions: Sequence[CroppedMask],
    scores: Sequence[float],
    truths: Sequence[CroppedMask],
    width: int,
    height: int,
    image_id: int | None = None,
) -> ImageRecall:
    """Score one image's masks (any order; ranked here by score, ties by position)."""
    if len(predictions) != len(scores):
        raise ValueError(f"{len(predictions)} masks but {len(scores)} scores")
    order = sorted(range(len(predictions)), key=lambda k: (-float(scores[k]), k))
    ranked = [predictions[k] for k in order]
    ious = iou_matrix(ranked, truths, width, height)
    top = ious[:AR_MAX_MASKS]
    matched = np.stack([match_one_to_one(top, float(t)) for t in AR_THRESHOLDS])
    best = top.max(axis=0) if top.shape[0] else np.zeros(len(truths))
    per_mask_best = ious.max(axis=1) if ious.shape[1] else np.zeros(len(ranked))
    return ImageRecall(
        image_id=image_id,
        sizes=[size_class(t.area) for t in truths],
        best_iou=best,
        matched=matched,
        masks=len(ranked),
        false_masks=int(np.count_nonzero(per_mask_best < 0.5)),
    )


def _figures(best: np.ndarray, matched: np.ndarray) -> dict[str, Any]:
    n = int(best.size)
    if n == 0:
        return {"instances": 0, "recall_50": None, "recall_75": None, "ar_100": None}
    return {
        "instances": n,
        "recall_50": float(np.mean(best >= 0.5)),
        "recall_75": float(np.mean(best >= 0.75)),
        "ar_100": float(matched.mean()),
    }


def summarise(images: Sequence[ImageRecall]) -> dict[str, Any]:
    """The figures of the module docstring over all images, and per object size."""
    if images:
        best = np.concatenate([im.best_iou for im in images])
        matched = np.concatenate([im.matched for im in images], axis=1)
        sizes = np.array([s for im in images for s in im.sizes], dtype=object)
    else:
        best = np.zeros(0)
        matched = np.zeros((len(AR_THRESHOLDS), 0), dtype=bool)
        sizes = np.zeros(0, dtype=object)
    out = _figures(best, matched)
    count = len(images)
    out["images"] = count
    out["masks_per_image"] = sum(im.masks for im in images) / count if count else None
    out["false_masks_per_image"] = sum(im.false_masks for im in images) / count if count else None
    out["by_size"] = {
        size: _figures(best[sizes == size], matched[:, sizes == size]) for size in SIZES
    }
    out["recall_by_iou"] = {
        f"{t:.2f}": (float(matched[k].mean()) if best.size else None)
        for k, t in enumerate(AR_THRESHOLDS)
    }
    return out


def format_everything_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"segment everything: {summary['images']} images, {summary['instances']} instances, "
        f"{f(summary['masks_per_image'])} masks per image, "
        f"{f(summary['false_masks_per_image'])} false masks per image",
        f"  all     recall@0.5 {f(summary['recall_50'])}  recall@0.75 "
        f"{f(summary['recall_75'])}  AR@100 {f(summary['ar_100'])}",
    ]
    for size in SIZES:
        s = summary["by_size"][size]
        lines.append(
            f"  {size:<7} recall@0.5 {f(s['recall_50'])}  recall@0.75 {f(s['recall_75'])}  "
            f"AR@100 {f(s['ar_100'])}  ({s['instances']} instances)"
        )
    return "\n".join(lines)
