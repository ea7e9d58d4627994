"""Square windows of any size around a prompt, which may reach past the frame.

PicoSAM2 segments the object at the centre of its input. A window larger than the
frame allows, or one near a border, is not translated to fit (which would move the
prompt off the centre) but filled outside the frame with the ImageNet mean colour,
which the normalisation maps to zero: the prompt stays exactly at the input's centre
at every scale. One affine warp does the crop, the resize and the fill.

Coordinates: x = column, y = row; pixel (i, j) covers [i, i + 1) x [j, j + 1), so a
prompt on pixel (x, y) is the continuous point (x + 0.5, y + 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, Roi
from picosam2_ros.core.preprocess import IMAGENET_MEAN, check_image, model_input_buffer

#: Fill outside the frame: the ImageNet mean, RGB uint8 (zero after normalisation).
MEAN_RGB = tuple(round(255.0 * m) for m in IMAGENET_MEAN)

# The fill in each encoding's own channel order (mono: the mean's luma).
_FILL = {
    "rgb8": MEAN_RGB,
    "bgr8": MEAN_RGB[::-1],
    "rgba8": (*MEAN_RGB, 255),
    "bgra8": (*MEAN_RGB[::-1], 255),
    "mono8": (round(0.299 * MEAN_RGB[0] + 0.587 * MEAN_RGB[1] + 0.114 * MEAN_RGB[2]),),
}
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
}


@dataclass(frozen=True)
class Window:
    """A square of side ``side`` (continuous frame pixels) centred on (``cx``, ``cy``)."""

    cx: float
    cy: float
    side: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cx) and math.isfinite(self.cy) and math.isfinite(self.side)):
            raise ValueError(f"window must be finite, got {self}")
        if self.side <= 0:
            raise ValueError(f"window side must be positive, got {self.side}")

    @classmethod
    def around_pixel(cls, x: float, y: float, side: float) -> Window:
        """The window centred on pixel (x, y) (its centre, x + 0.5, y + 0.5)."""
        return cls(math.floor(x) + 0.5, math.floor(y) + 0.5, side)

    def to_input(self, size: int = MODEL_INPUT_SIZE) -> np.ndarray:
        """2x3 affine matrix from frame pixel coordinates to ``size`` x ``size`` input
        pixel coordinates (OpenCV's convention: pixel centres at integers)."""
        s = size / self.side
        left, top = self.cx - self.side / 2.0, self.cy - self.side / 2.0
        return np.array(
            [[s, 0.0, s * (0.5 - left) - 0.5], [0.0, s, s * (0.5 - top) - 0.5]], dtype=np.float64
        )

    def in_frame(self, width: int, height: int) -> Roi:
        """The frame pixels the window covers (possibly empty)."""
        x0 = max(0, math.floor(self.cx - self.side / 2.0))
        y0 = max(0, math.floor(self.cy - self.side / 2.0))
        x1 = min(width, math.ceil(self.cx + self.side / 2.0))
        y1 = min(height, math.ceil(self.cy + self.side / 2.0))
        return Roi(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def window_to_model_input(
    image: np.ndarray,
    encoding: str,
    window: Window,
    size: int = MODEL_INPUT_SIZE,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``window`` of ``image`` as a (size, size, 3) uint8 RGB crop (bilinear), the part
    outside the frame filled with the ImageNet mean. ``out`` as in
    ``preprocess.crop_to_model_input``."""
    check_image(image, encoding)
    out = model_input_buffer(out, size)
    src = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    warped = cv2.warpAffine(
        src,
        window.to_input(size),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_FILL[encoding],
    )
    code = _TO_RGB[encoding]
    if code is None:
        out[...] = warped
    else:
        cv2.cvtColor(warped, code, dst=out)
    return out


def window_mask(
    mask: np.ndarray, window: Window, size: int = MODEL_INPUT_SIZE, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """A boolean mask (frame pixels; ``offset`` = (x, y) of its first pixel in the frame)
    resampled into the window's ``size`` x ``size`` grid: nothing outside the frame."""
    m = window.to_input(size).copy()
    m[:, 2] += m[:, :2] @ np.asarray(offset, dtype=np.float64)
    warped = cv2.warpAffine(
        mask.astype(np.float32),
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return np.asarray(warped > 0.5)


def logits_to_frame(
    logits: np.ndarray, window: Window, width: int, height: int
) -> tuple[Roi, np.ndarray]:
    """Map a (S, S) logit map of ``window`` back onto the frame: the window's part inside
    the frame and the logits resampled (bilinear) over it, float32 (h, w)."""
    size = logits.shape[-1]
    roi = window.in_frame(width, height)
    if roi.is_empty:
        return roi, np.zeros((0, 0), dtype=np.float32)
    m = window.to_input(size).copy()
    m[:, 2] += m[:, :2] @ np.array([roi.x, roi.y], dtype=np.float64)
    out = cv2.warpAffine(
        np.ascontiguousarray(logits, dtype=np.float32),
        m,
        (roi.width, roi.height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return roi, out
