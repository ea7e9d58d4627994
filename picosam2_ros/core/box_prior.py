"""Box-conditioned decoding: what a box prompt says about the mask beyond the crop.

A box model sees only its square crop, so it cannot tell where the box's shorter side
ends; the prompt can. Its logits are decoded with the box: every pixel outside the box
is background, and inside it the logits are shifted by ``weight x (1 - e)``, where ``e``
is the squared normalised distance from the box centre (``e = 1`` on the ellipse
inscribed in the box). ``weight = 0`` leaves the logits unchanged. The weight is
calibrated per model on held-out training images and travels in the model file
(ONNX metadata ``BOX_PRIOR_WEIGHT_KEY``), so every consumer decodes the same way.
"""

from __future__ import annotations

import numpy as np

from picosam2_ros.core.geometry import Roi

#: ONNX metadata key holding a box model's calibrated prior weight.
BOX_PRIOR_WEIGHT_KEY = "picosam2.box_prior_weight"
#: Logit given to pixels outside the box: certainly background, also for the score.
OUTSIDE_BOX_LOGIT = -20.0


def box_in_crop(box: tuple[float, float, float, float], roi: Roi, size: int) -> np.ndarray:
    """The box ``(x_min, y_min, x_max, y_max)`` in frame pixels, in the pixels of the
    ``size`` x ``size`` model input cut from ``roi``, clipped to that input."""
    sx, sy = size / roi.width, size / roi.height
    x0, y0, x1, y1 = box
    mapped = np.array(
        [(x0 - roi.x) * sx, (y0 - roi.y) * sy, (x1 - roi.x) * sx, (y1 - roi.y) * sy],
        dtype=np.float64,
    )
    return np.clip(mapped, 0.0, float(size))


def ellipse_distance(box: np.ndarray, size: int) -> np.ndarray:
    """(size, size) squared normalised distance from the box centre, at pixel centres:
    < 1 inside the ellipse inscribed in ``box`` (x_min, y_min, x_max, y_max)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    rx, ry = max((x1 - x0) / 2.0, 0.5), max((y1 - y0) / 2.0, 0.5)
    centres = np.arange(size, dtype=np.float64) + 0.5
    dx = ((centres - (x0 + x1) / 2.0) / rx) ** 2
    dy = ((centres - (y0 + y1) / 2.0) / ry) ** 2
    return dy[:, None] + dx[None, :]


def inside_box(box: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: pixel centres inside ``box``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    centres = np.arange(size, dtype=np.float64) + 0.5
    cols = (centres >= x0) & (centres <= x1)
    rows = (centres >= y0) & (centres <= y1)
    return rows[:, None] & cols[None, :]


def apply_box_prior(logits: np.ndarray, boxes: np.ndarray, weight: float) -> np.ndarray:
    """Decode (N, S, S) logits of box crops with their (N, 4) boxes in crop pixels;
    returns new float32 logits. ``weight <= 0`` returns the logits unchanged."""
    if weight <= 0.0:
        return logits
    n, size = logits.shape[0], logits.shape[-1]
    if boxes.shape != (n, 4):
        raise ValueError(f"expected ({n}, 4) boxes for {n} crops, got {boxes.shape}")
    out = np.full(logits.shape, OUTSIDE_BOX_LOGIT, dtype=np.float32)
    centres = np.arange(size, dtype=np.float64) + 0.5
    for i in range(n):
        # Only the pixels inside the box (a rectangle of pixel centres) are shifted; the
        # arithmetic per pixel is that of ``ellipse_distance`` and ``inside_box``.
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        cols = np.flatnonzero((centres >= x0) & (centres <= x1))
        rows = np.flatnonzero((centres >= y0) & (centres <= y1))
        if cols.size == 0 or rows.size == 0:
            continue
        c0, c1, r0, r1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
        rx, ry = max((x1 - x0) / 2.0, 0.5), max((y1 - y0) / 2.0, 0.5)
        dx = ((centres[c0:c1] - (x0 + x1) / 2.0) / rx) ** 2
        dy = ((centres[r0:r1] - (y0 + y1) / 2.0) / ry) ** 2
        # logits + weight * (1 - distance), in place in one float64 buffer.
        shift = dy[:, None] + dx[None, :]
        np.subtract(1.0, shift, out=shift)
        shift *= weight
        shift += logits[i, r0:r1, c0:c1]
        out[i, r0:r1, c0:c1] = shift
    return out
