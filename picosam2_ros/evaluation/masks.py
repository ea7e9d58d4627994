"""Masks as the evaluator keeps them: a boolean array over a rectangle of the frame.

Results (``ObjectMask.mask`` over ``crop``) and ground truth (``ObjectMask.mask`` over
``bbox``) both arrive as a small mask plus where it sits in the frame. ``CroppedMask``
keeps them that way, so a frame's masks cost what their rectangles cost, and pastes
them into any window of the frame on demand: the full frame (``to_frame``) or just the
pixels an IoU needs (``to_window``). Pixels outside the frame are dropped, exactly as
``picosam2_ros.bags.reader.object_mask_to_frame`` does.

``cropped_mask_from_msg`` reads an ``ObjectMask`` (rclpy or rosbags message, duck-typed:
no ROS import here) into a ``CroppedMask``; the evaluator node and the offline tool both
go through ``CroppedMask`` and ``paste``, so they reconstruct masks identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from picosam2_ros.core.geometry import Roi, mask_bbox

EMPTY_ROI = Roi(0, 0, 0, 0)


class MaskFormatError(ValueError):
    """A mask that does not fit its rectangle or is not a mono8 image; says why."""


def intersect(a: Roi, b: Roi) -> Roi:
    """The overlap of two rectangles (width/height 0 when they do not overlap)."""
    return a.intersection(b)


@dataclass(frozen=True)
class CroppedMask:
    """``mask[v, u]`` is frame pixel ``(roi.x + u, roi.y + v)``; bool, shape
    ``(roi.height, roi.width)``. An empty rectangle holds nothing."""

    roi: Roi
    mask: np.ndarray

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask)
        if self.roi.is_empty:
            mask = np.zeros((0, 0), dtype=bool)
        elif mask.shape != (self.roi.height, self.roi.width):
            raise MaskFormatError(
                f"mask of shape {mask.shape} does not fit its rectangle "
                f"{self.roi.height}x{self.roi.width} (rows x columns)"
            )
        object.__setattr__(self, "mask", mask.astype(bool, copy=False))

    @classmethod
    def empty(cls) -> CroppedMask:
        return cls(EMPTY_ROI, np.zeros((0, 0), dtype=bool))

    @classmethod
    def from_frame(cls, frame: np.ndarray) -> CroppedMask:
        """The tight rectangle of a full-frame mask (empty when nothing is set)."""
        full = np.asarray(frame).astype(bool, copy=False)
        if full.ndim != 2:
            raise MaskFormatError(f"a frame mask is 2-D, got shape {full.shape}")
        box = mask_bbox(full)
        if box is None:
            return cls.empty()
        return cls(box, full[box.slices].copy())

    @property
    def area(self) -> int:
        """Set pixels (also those outside any frame it is later pasted into)."""
        return int(np.count_nonzero(self.mask))

    def to_window(self, window: Roi) -> np.ndarray:
        """The mask pasted into a zero ``(window.height, window.width)`` array."""
        out = np.zeros((max(0, window.height), max(0, window.width)), dtype=bool)
        if self.roi.is_empty or window.is_empty:
            return out
        common = intersect(self.roi, window)
        if common.is_empty:
            return out
        sy, sx = common.y - self.roi.y, common.x - self.roi.x
        dy, dx = common.y - window.y, common.x - window.x
        out[dy : dy + common.height, dx : dx + common.width] = self.mask[
            sy : sy + common.height, sx : sx + common.width
        ]
        return out

    def to_frame(self, width: int, height: int) -> np.ndarray:
        """The full-frame (height, width) bool mask; pixels outside the frame dropped."""
        return self.to_window(Roi(0, 0, width, height))

    def clipped_roi(self, width: int, height: int) -> Roi:
        """The rectangle clipped to the frame."""
        return intersect(self.roi, Roi(0, 0, width, height))


def paste(mask: np.ndarray, roi: Roi, width: int, height: int) -> np.ndarray:
    """A mask over ``roi`` as a full (height, width) bool frame (ObjectMask -> frame)."""
    return CroppedMask(roi, mask).to_frame(width, height)


def _roi_from_msg(msg: Any) -> Roi:
    return Roi(int(msg.x_offset), int(msg.y_offset), int(msg.width), int(msg.height))


def mono8_to_bool(image: Any) -> np.ndarray:
    """A mono8 (or 8UC1) ``sensor_msgs/Image`` as a (height, width) bool array (> 0)."""
    height, width, step = int(image.height), int(image.width), int(image.step)
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=bool)
    encoding = str(image.encoding)
    if encoding not in ("mono8", "8UC1"):
        raise MaskFormatError(f"mask encoding must be mono8, got {encoding!r}")
    try:
        data = np.frombuffer(image.data, dtype=np.uint8)
    except (TypeError, ValueError):
        data = np.asarray(image.data, dtype=np.uint8).reshape(-1)
    if step < width or data.size < step * height:
        raise MaskFormatError(
            f"mask data too short: {data.size} bytes for {height} rows of step {step}"
        )
    return data[: step * height].reshape(height, step)[:, :width] > 0


def cropped_mask_from_msg(obj: Any, rect: str = "crop") -> CroppedMask:
    """An ``ObjectMask``'s ``mask`` over its ``crop`` (results; for ground truth the
    crop equals the bbox). An empty crop or a zero-width mask is an empty mask."""
    roi = _roi_from_msg(getattr(obj, rect))
    if roi.is_empty or int(obj.mask.width) == 0:
        return CroppedMask.empty()
    pixels = mono8_to_bool(obj.mask)
    if pixels.shape != (roi.height, roi.width):
        raise MaskFormatError(
            f"object {int(obj.object_id)}: mask {pixels.shape[0]}x{pixels.shape[1]} does not "
            f"match its {rect} {roi.height}x{roi.width}"
        )
    return CroppedMask(roi, pixels)
