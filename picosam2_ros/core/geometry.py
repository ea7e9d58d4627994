"""Where the model looks: prompt points and boxes -> crop rectangles in full-frame pixels.

PicoSAM2 segments the object at the centre of its 96x96 input ("fixed prompt encoding"),
so placing the crop IS prompting. Two placements exist:

- ``point_to_roi`` / ``box_to_roi``: what the nodes do. A square crop centred on the
  prompt, translated (never clipped) to stay inside the frame, so the crop keeps its
  size and aspect and the object stays as central as the frame allows.
- ``paper_point_crop``: the PicoSAM2 paper's evaluation/training crop, which is clipped
  at the right and bottom borders (the crop can be narrower than 96 pixels there and is
  then stretched to 96x96). Used for reproducing the paper's numbers.

Coordinates: x = column, y = row, pixels; a rectangle covers columns [x, x + width) and
rows [y, y + height).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Side of PicoSAM2's input, pixels.
MODEL_INPUT_SIZE = 96
#: The box protocol enlarges the box's longer side by this factor (PicoSAM3: +10%).
DEFAULT_BOX_MARGIN = 1.1
#: Smallest crop a box prompt may produce, pixels.
MIN_BOX_CROP_SIDE = 8


@dataclass(frozen=True)
class Roi:
    """An axis-aligned rectangle in full-frame pixels (integer, half-open)."""

    x: int
    y: int
    width: int
    height: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices selecting this rectangle from an (H, W, ...) array."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def union(self, other: Roi) -> Roi:
        """Smallest rectangle containing both."""
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1 = max(self.x + self.width, other.x + other.width)
        y1 = max(self.y + self.height, other.y + other.height)
        return Roi(x0, y0, x1 - x0, y1 - y0)

    def intersection(self, other: Roi) -> Roi:
        """The overlap of both (width and height 0 when they do not overlap)."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Roi(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _clamp_start(start: int, side: int, extent: int) -> int:
    """Shift a segment [start, start + side) into [0, extent) without changing its length."""
    return min(max(start, 0), extent - side)


def _clamp_side(side: int, width: int, height: int) -> int:
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    return max(1, min(int(side), width, height))


def point_crop_side(width: int, height: int, side_px: int, side_fraction: float) -> int:
    """Crop side for a point prompt: ``side_fraction`` x the shorter side if it is > 0,
    else ``side_px`` pixels."""
    if side_fraction > 0.0:
        return max(1, round(side_fraction * min(width, height)))
    return side_px


def point_to_roi(x: float, y: float, side: int, width: int, height: int) -> Roi:
    """Crop for a point prompt: a ``side`` x ``side`` square around pixel (x, y),
    translated to lie inside the frame.

    The square starts ``side // 2`` pixels before the point, as in the paper's crop, so
    away from the borders it equals ``paper_point_crop``. The side shrinks to the
    frame's shorter side when the frame is smaller.
    """
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"point must be finite, got ({x}, {y})")
    side = _clamp_side(side, width, height)
    left = _clamp_start(math.floor(x) - side // 2, side, width)
    top = _clamp_start(math.floor(y) - side // 2, side, height)
    return Roi(left, top, side, side)


def box_to_roi(
    box: tuple[float, float, float, float],
    width: int,
    height: int,
    margin: float = DEFAULT_BOX_MARGIN,
    min_side: int = MIN_BOX_CROP_SIDE,
) -> Roi:
    """Crop for a box prompt ``(x_min, y_min, x_max, y_max)`` in continuous pixel
    coordinates: side = margin x the box's longer side, at least ``min_side`` and at
    most the frame's shorter side, centred on the box, translated to stay inside."""
    x0, y0, x1, y1 = box
    if not all(math.isfinite(v) for v in box):
        raise ValueError(f"box must be finite, got {box}")
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box must have x_min <= x_max and y_min <= y_max, got {box}")
    # The epsilon keeps float noise (1.1 * 100 = 110.00000000000001) from adding a pixel.
    side = max(min_side, math.ceil(margin * max(x1 - x0, y1 - y0) - 1e-9))
    side = _clamp_side(side, width, height)
    left = _clamp_start(round((x0 + x1 - side) / 2.0), side, width)
    top = _clamp_start(round((y0 + y1 - side) / 2.0), side, height)
    return Roi(left, top, side, side)


def paper_point_crop(
    cx: float, cy: float, width: int, height: int, side: int = MODEL_INPUT_SIZE
) -> Roi:
    """The PicoSAM2 paper's crop: left = max(0, cx - 48), top = max(0, cy - 48),
    right = min(W, left + 96), bottom = min(H, top + 96) (for side 96).

    Unlike ``point_to_roi`` it is clipped, not translated, at the right and bottom.
    """
    half = side // 2
    left = max(0, int(cx) - half)
    top = max(0, int(cy) - half)
    right = min(width, left + side)
    bottom = min(height, top + side)
    return Roi(left, top, right - left, bottom - top)


def paper_prompt_point(mask: np.ndarray) -> tuple[int, int] | None:
    """The paper's prompt for an instance: the centre of the mask's bounding box, or the
    mask pixel nearest to it when that centre is not on the mask. None for an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    cx = int((int(xs.min()) + int(xs.max())) // 2)
    cy = int((int(ys.min()) + int(ys.max())) // 2)
    if mask[cy, cx]:
        return cx, cy
    nearest = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
    return int(xs[nearest]), int(ys[nearest])


def mask_bbox(mask: np.ndarray) -> Roi | None:
    """Tight bounding rectangle of the non-zero pixels of a 2-D mask; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1])
    x0, x1 = int(cols[0]), int(cols[-1])
    return Roi(x0, y0, x1 - x0 + 1, y1 - y0 + 1)
