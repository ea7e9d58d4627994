"""The two crop protocols, as thin wrappers around ``picosam2_ros.core.geometry`` (the
exact crops the nodes take), plus crop extraction and input normalisation.

- ``point`` (PicoSAM2 paper): prompt = centre of the mask's bounding box, or the mask
  pixel nearest to it when the centre is off the mask; a 96-native-pixel crop clipped at
  the right/bottom borders (``paper_point_crop``), resized to 96x96.
- ``box`` (PicoSAM3): side = 1.1 x the box's longer side, at least 8 px and at most the
  frame's shorter side, centred on the box and translated inside the frame
  (``box_to_roi``), resized to 96x96.

Images are resized bilinearly (cv2.INTER_LINEAR, as the nodes do), masks nearest.
"""

from __future__ import annotations

import cv2
import numpy as np

from picosam2_ros.core.geometry import (
    MODEL_INPUT_SIZE,
    Roi,
    box_to_roi,
    paper_point_crop,
    paper_prompt_point,
)

PROTOCOLS = ("point", "box")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise SystemExit(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    return protocol


def point_roi(point: tuple[float, float], width: int, height: int, side: int = 96) -> Roi:
    """Paper crop around a prompt point (x, y)."""
    return paper_point_crop(point[0], point[1], width, height, side=side)


def box_roi(box: tuple[float, float, float, float], width: int, height: int) -> Roi:
    """Box-protocol crop for ``(x_min, y_min, x_max, y_max)``."""
    return box_to_roi(box, width, height)


def protocol_roi(
    protocol: str,
    mask: np.ndarray,
    box: tuple[float, float, float, float] | None = None,
) -> Roi | None:
    """The evaluation crop of an instance (full-frame boolean ``mask``) under
    ``protocol``; None for an empty mask. ``box`` defaults to the mask's bounding box."""
    check_protocol(protocol)
    h, w = mask.shape
    if protocol == "point":
        p = paper_prompt_point(mask)
        return None if p is None else point_roi(p, w, h)
    if box is None:
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            return None
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return box_roi(box, w, h)


def resize(crop: np.ndarray, size: int = MODEL_INPUT_SIZE, *, nearest: bool = False):
    """``crop`` resized to size x size (bilinear, or nearest for masks); bool stays bool."""
    if crop.shape[0] == size and crop.shape[1] == size:
        return crop
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if crop.dtype == bool:
        return cv2.resize(crop.astype(np.uint8), (size, size), interpolation=interp) > 0
    return cv2.resize(crop, (size, size), interpolation=interp)


def cut(image: np.ndarray, roi: Roi, size: int = MODEL_INPUT_SIZE, *, nearest: bool = False):
    """``roi`` of ``image`` resized to size x size (bilinear, or nearest for masks)."""
    if roi.is_empty:
        raise ValueError(f"empty crop {roi}")
    return resize(image[roi.slices], size, nearest=nearest)


def normalise(crops: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) or (H, W, 3) uint8 RGB -> (N, 3, H, W) float32 ImageNet-normalised."""
    arr = np.asarray(crops)
    if arr.ndim == 3:
        arr = arr[None]
    x = (arr.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
