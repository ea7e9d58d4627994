"""The best and worst instances, kept as small tiles for the report's overlay grid.

Keeping every frame until the end would cost gigabytes on COCO val2017, so
``OverlayCollector.offer`` cuts a tile (the instance's paper-protocol crop, at most
``max_side`` pixels a side) only when the instance enters the current ``count`` best or
worst by paper-crop IoU, and forgets tiles pushed out. Ties are broken by (stamp,
object id), so the grid does not depend on the order results arrive in.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from picosam2_ros.bags.layout import PromptSpec
from picosam2_ros.core.geometry import Roi
from picosam2_ros.evaluation.masks import CroppedMask, intersect
from picosam2_ros.evaluation.records import InstanceRecord

#: Colours of the rendered tiles (RGB).
PREDICTION_RGB = np.array([230, 40, 40], dtype=np.float32)
TRUTH_RGB = np.array([40, 230, 60], dtype=np.uint8)
#: Background of a tile whose frame was not available.
NO_IMAGE_GREY = 96


@dataclass(frozen=True)
class Tile:
    """One instance's crop: the image (RGB, or grey without one), the prediction and
    the ground truth over it, and the prompt point in tile pixels (if any)."""

    stamp_ns: int
    object_id: int
    iou_crop: float
    iou_full: float
    category_id: int | None
    image: np.ndarray
    prediction: np.ndarray
    truth: np.ndarray
    has_image: bool
    point: tuple[float, float] | None

    def render(self) -> np.ndarray:
        """(H, W, 3) uint8: prediction tinted red, ground-truth outline green."""
        out = self.image.astype(np.float32)
        out[self.prediction] = 0.5 * out[self.prediction] + 0.5 * PREDICTION_RGB
        rendered = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        rendered[outline(self.truth)] = TRUTH_RGB
        return rendered


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (or on the array border)."""
    if mask.size == 0:
        return mask.copy()
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    result: np.ndarray = mask & ~inner
    return result


def _key(record: InstanceRecord, best: bool) -> tuple[float, int, int]:
    iou = -record.iou_crop if best else record.iou_crop
    return (iou, record.stamp_ns, record.object_id)


class OverlayCollector:
    """Keeps tiles of the ``count`` best and ``count`` worst instances."""

    def __init__(self, count: int = 8, max_side: int = 160) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.count = count
        self.max_side = max(8, max_side)
        self._best: list[tuple[tuple[float, int, int], Tile | None]] = []
        self._worst: list[tuple[tuple[float, int, int], Tile | None]] = []

    def _enters(
        self, entries: list[tuple[tuple[float, int, int], Tile | None]], key: tuple[float, int, int]
    ) -> bool:
        return self.count > 0 and (len(entries) < self.count or key < entries[-1][0])

    def offer(
        self,
        record: InstanceRecord,
        image: np.ndarray | None,
        prediction: CroppedMask,
        truth: CroppedMask,
        prompt: PromptSpec | None = None,
    ) -> None:
        """Consider one scored instance; ``image`` is its full RGB frame or None."""
        tile: Tile | None = None
        for entries, best in ((self._best, True), (self._worst, False)):
            key = _key(record, best)
            if not self._enters(entries, key):
                continue
            if tile is None:
                tile = self._tile(record, image, prediction, truth, prompt)
            bisect.insort(entries, (key, tile), key=lambda e: e[0])
            del entries[self.count :]

    def _tile(
        self,
        record: InstanceRecord,
        image: np.ndarray | None,
        prediction: CroppedMask,
        truth: CroppedMask,
        prompt: PromptSpec | None,
    ) -> Tile | None:
        roi = record.crop
        if image is not None:
            roi = intersect(roi, Roi(0, 0, image.shape[1], image.shape[0]))
        if roi.is_empty:
            return None
        step = max(1, -(-max(roi.width, roi.height) // self.max_side))
        if image is not None and image.ndim == 3 and image.shape[2] >= 3:
            patch = np.ascontiguousarray(image[roi.slices][::step, ::step, :3])
            has_image = True
        else:
            patch = np.full((roi.height, roi.width, 3), NO_IMAGE_GREY, np.uint8)[::step, ::step]
            has_image = False
        point = None
        if prompt is not None and prompt.point is not None:
            point = ((prompt.point[0] - roi.x) / step, (prompt.point[1] - roi.y) / step)
        return Tile(
            stamp_ns=record.stamp_ns,
            object_id=record.object_id,
            iou_crop=record.iou_crop,
            iou_full=record.iou_full,
            category_id=record.category_id,
            image=patch,
            prediction=prediction.to_window(roi)[::step, ::step],
            truth=truth.to_window(roi)[::step, ::step],
            has_image=has_image,
            point=point,
        )

    @property
    def best(self) -> list[Tile]:
        """Best first."""
        return [t for _, t in self._best if t is not None]

    @property
    def worst(self) -> list[Tile]:
        """Worst first."""
        return [t for _, t in self._worst if t is not None]
