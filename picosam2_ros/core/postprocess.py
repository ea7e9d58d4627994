"""Model output -> mask in frame pixels, and what tracking needs from a mask.

PicoSAM2 outputs 96x96 logits for the crop it was given; the mask is logit > 0. The
functions here threshold, score, resize back to the crop's size in the frame, remove
components the user marked as background, and pick where to re-centre a tracked prompt.
"""

from __future__ import annotations

import cv2
import numpy as np


def logits_to_mask(logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Boolean mask of logit > threshold (threshold 0 = sigmoid > 0.5)."""
    return np.asarray(logits > threshold)


def stability_score(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> float:
    """Area where logit > threshold + offset over area where logit > threshold - offset.

    PicoSAM2 has no IoU head; like SAM's stability score this measures how little the
    mask changes when the threshold moves: 1.0 for a crisp mask, towards 0 for a blurry
    one, and 0.0 when nothing exceeds threshold - offset.
    """
    loose = int(np.count_nonzero(logits > threshold - offset))
    if loose == 0:
        return 0.0
    return int(np.count_nonzero(logits > threshold + offset)) / loose


def stability_scores(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> np.ndarray:
    """``stability_score`` of each (S, S) map in an (N, S, S) batch."""
    # Per map with a whole-array count_nonzero: numpy's count along an axis goes through
    # a generic sum and is several times slower for 96x96 maps.
    return np.array(
        [stability_score(one, threshold, offset) for one in logits], dtype=np.float64
    ).reshape(logits.shape[0])


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask to (height, width).

    Uses cv2.INTER_NEAREST_EXACT (pixel-centre aligned, like the bilinear resize that
    made the crop) rather than INTER_NEAREST, which samples at floor(x * scale) and so
    shifts the pasted mask by up to half a model pixel towards the top-left.
    """
    if mask.shape == (height, width):
        return mask.astype(bool, copy=True)
    small = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST_EXACT).view(bool)


def erase_components_at(mask: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Copy of ``mask`` without the 8-connected components that contain any of the
    (x, y) points (mask coordinates; points outside the mask are ignored)."""
    filled = _fill_components_at(mask, points_xy)
    if filled is None:
        return np.array(mask, dtype=bool)
    return np.asarray(filled == 1)


def keep_components_at(mask: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Copy of ``mask`` with only the 8-connected components that contain any of the
    (x, y) points (mask coordinates); the mask unchanged when no point is on it (the
    network's answer is kept rather than emptied)."""
    filled = _fill_components_at(mask, points_xy)
    if filled is None:
        return np.array(mask, dtype=bool)
    return np.asarray(filled == 2)


def _fill_components_at(mask: np.ndarray, points_xy: np.ndarray) -> np.ndarray | None:
    """``mask`` as uint8, 1 on the mask and 2 on the 8-connected components under the
    (x, y) points; None when no point lies on the mask."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    h, w = mask.shape
    cols = np.floor(pts[:, 0]).astype(np.int64)
    rows = np.floor(pts[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    cols, rows = cols[inside], rows[inside]
    if cols.size == 0 or not mask[rows, cols].any():
        return None
    filled = np.array(mask, dtype=bool, order="C").view(np.uint8)
    # Flood fills from the points touch only their components; labelling every
    # component of a frame-sized mask costs several times more.
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        if filled[row, col] == 1:
            cv2.floodFill(filled, None, (col, row), 2, 0, 0, 8)
    return filled


def recentre_point(mask: np.ndarray) -> tuple[float, float] | None:
    """The mask pixel farthest from the mask's outline (distance-transform maximum), as
    (x, y) in mask coordinates; None for an empty mask.

    Unlike the centroid or the bbox centre it always lies on the object, also for rings
    and L shapes, so a tracked prompt keeps pointing at the object. The mask's own edge
    counts as outline (OpenCV would treat outside as object), so an object cut by the
    crop border is re-centred inside its visible part instead of on the border.
    """
    m = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    if not m.any():
        return None
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # Elongated shapes have a ridge of equal maxima; take the ridge pixel nearest to the
    # ridge's centroid, not the first in raster order (which drifts to the top-left).
    rows, cols = np.nonzero(dist >= dist.max())
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return float(cols[k] - 1), float(rows[k] - 1)
