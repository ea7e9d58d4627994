"""The record of one evaluated instance: what ``evaluator`` produces and ``overlays``,
``report`` and the evaluator node consume (its own module, so that none of them has to
import another for it)."""

from __future__ import annotations

from dataclasses import dataclass

from picosam2_ros.core.geometry import Roi


@dataclass(frozen=True)
class InstanceRecord:
    """One evaluated instance."""

    stamp_ns: int
    object_id: int
    category_id: int | None
    area: int
    size: str
    prompt_kind: str
    #: The paper-protocol crop (full-frame pixels).
    crop: Roi
    iou_crop: float
    iou_full: float
    status: int
    score: float
    predicted_area: int
