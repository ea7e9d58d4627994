"""A picture of one frame's result for people: masks tinted over the image, crops, prompts.

Only computed while someone watches (the node renders it only when the overlay topic
has subscribers), but kept cheap anyway: one conversion of the frame to BGR, then the
blending touches only each object's crop.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping

import cv2
import numpy as np

from picosam2_ros.core.pipeline import FrameResult, ObjectStatus
from picosam2_ros.core.preprocess import check_image

#: Opacity of the tint over an object's mask.
MASK_ALPHA = 0.5

_TO_BGR: dict[str, int | None] = {
    "bgr8": None,
    "rgb8": cv2.COLOR_RGB2BGR,
    "mono8": cv2.COLOR_GRAY2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
}


def object_colour(object_id: int) -> tuple[int, int, int]:
    """A saturated BGR colour per id; consecutive ids get far-apart hues (golden ratio),
    and the same id always gets the same colour across frames and runs."""
    hue = (object_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return round(b * 255), round(g * 255), round(r * 255)


def _to_bgr(image: np.ndarray, encoding: str) -> np.ndarray:
    check_image(image, encoding)
    src = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    code = _TO_BGR[encoding]
    if code is None:
        return np.array(src, dtype=np.uint8, order="C")
    return cv2.cvtColor(np.ascontiguousarray(src), code)


def render_overlay(
    image: np.ndarray,
    encoding: str,
    frame: FrameResult,
    labels: Mapping[int, str] | None = None,
) -> np.ndarray:
    """A bgr8 (H, W, 3) copy of ``image`` with each object's mask tinted in its colour,
    its crop outlined, foreground points as filled dots, background points as crosses,
    a box prompt's box, and a label: ``labels[object_id]`` when given, else "id score"
    (or the status when not OK)."""
    out = _to_bgr(image, encoding)
    for obj in frame.objects:
        colour = object_colour(obj.object_id)
        if obj.mask.size and not obj.crop.is_empty:
            region = out[obj.crop.slices]
            tint = np.array(colour, dtype=np.float32) * MASK_ALPHA
            pixels = region[obj.mask].astype(np.float32) * (1.0 - MASK_ALPHA) + tint
            region[obj.mask] = pixels.astype(np.uint8)
            c = obj.crop
            cv2.rectangle(out, (c.x, c.y), (c.x + c.width - 1, c.y + c.height - 1), colour, 1)
        prompt = obj.prompt
        if prompt.box is not None and all(np.isfinite(prompt.box)):
            x0, y0, x1, y1 = (round(v) for v in prompt.box)
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1, cv2.LINE_AA)
        for x, y in prompt.foreground.tolist():
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(out, (round(x), round(y)), 4, colour, -1, cv2.LINE_AA)
                cv2.circle(out, (round(x), round(y)), 4, (0, 0, 0), 1, cv2.LINE_AA)
        for x, y in prompt.background.tolist():
            if np.isfinite(x) and np.isfinite(y):
                cv2.drawMarker(out, (round(x), round(y)), colour, cv2.MARKER_TILTED_CROSS, 9, 2)
        if labels is not None and obj.object_id in labels:
            label = labels[obj.object_id]
        elif obj.status == ObjectStatus.OK:
            label = f"{obj.object_id} {obj.score:.2f}"
        else:
            label = f"{obj.object_id} {obj.status.name.lower()}"
        anchor = _label_anchor(obj.crop.x, obj.crop.y, prompt.points, out.shape[0])
        cv2.putText(out, label, anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return out


def _label_anchor(x: int, y: int, points: np.ndarray, height: int) -> tuple[int, int]:
    """Where a label goes: just above the crop, inside the image; at the first prompt
    point when there is no crop (skipped objects)."""
    if x == 0 and y == 0 and points.shape[0] and np.isfinite(points[0]).all():
        x, y = round(points[0, 0]) + 6, round(points[0, 1])
    return max(0, x + 2), min(height - 2, max(12, y - 4))
