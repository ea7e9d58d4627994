"""The evaluation state machine shared by ``evaluator_node`` and ``picosam2-evaluate``.

Feed it ground-truth frames and result frames in any order; it matches them by
(stamp_ns, object_id) and scores every matched instance with ``protocol.instance_ious``:

    ev = Evaluator()
    ev.add_ground_truth(stamp_ns, width, height, [GroundTruthInstance(...), ...])
    ev.add_result(stamp_ns, width, height, [Prediction(...), ...], inference_ms=...)
    ev.records          # one InstanceRecord per evaluated instance
    ev.counts()         # missing, unmatched, duplicates, results for unseen stamps

Accounting (nothing is dropped silently):
- a result frame whose stamp has no ground truth (yet) waits in ``pending`` (at most
  ``max_pending_frames``); when ground truth for it never comes, its frames and
  instances count as ``results_for_unseen_stamps``;
- a result object without a ground-truth object of that id in that frame is
  ``unmatched``; a ground-truth object without a result object is ``missing`` (frames
  without any result count all their objects as missing);
- a second result (or ground truth) for an already seen stamp is counted as a
  duplicate and ignored.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from picosam2_ros.bags.layout import PromptSpec
from picosam2_ros.bags.reader import DatasetInfo
from picosam2_ros.evaluation.masks import CroppedMask
from picosam2_ros.evaluation.overlays import OverlayCollector
from picosam2_ros.evaluation.protocol import (
    CropProtocol,
    evaluation_crop,
    instance_ious,
    resampled_crop_iou,
    size_class,
)
from picosam2_ros.evaluation.records import InstanceRecord

#: Status numbers of msg/ObjectMask.msg (STATUS_*), for the report.
STATUS_NAMES = {0: "ok", 1: "empty", 2: "lost", 3: "skipped"}
#: At most this many (stamp, object id) pairs are listed per kind in the report.
MAX_LISTED = 200


@dataclass
class GroundTruthInstance:
    """One ground-truth object: its mask, its prompt and (when known) its category."""

    object_id: int
    mask: CroppedMask
    prompt: PromptSpec | None
    category_id: int | None = None
    area: int = -1

    def __post_init__(self) -> None:
        if self.area < 0:
            self.area = self.mask.area


@dataclass
class Prediction:
    """One result object: its mask (over the crop the model looked at), status, score."""

    object_id: int
    mask: CroppedMask
    status: int = 0
    score: float = 0.0
    #: The mask at the resolution it was predicted at, over the whole of ``mask.roi``
    #: (a result file's 96x96 crop mask); when ``mask.roi`` is the evaluation crop, the
    #: paper-crop IoU is measured at this resolution, as the paper measures it.
    crop_mask: np.ndarray | None = None


@dataclass
class _GtFrame:
    width: int
    height: int
    objects: dict[int, GroundTruthInstance]
    received_s: float | None
    evaluated: bool = False


@dataclass
class _ResultFrame:
    width: int
    height: int
    predictions: list[Prediction]
    inference_ms: float | None
    received_s: float | None
    image: np.ndarray | None


@dataclass
class Counts:
    ground_truth_frames: int = 0
    ground_truth_instances: int = 0
    result_frames: int = 0
    result_instances: int = 0
    frames_evaluated: int = 0
    instances_evaluated: int = 0
    #: Ground-truth objects without a result object (in evaluated frames).
    missing_in_evaluated_frames: int = 0
    #: Result objects whose id is not in their frame's ground truth.
    unmatched_instances: int = 0
    duplicate_results: int = 0
    duplicate_ground_truth: int = 0
    #: Result frames whose stamp was evicted from ``pending`` before ground truth came.
    evicted_result_frames: int = 0
    evicted_result_instances: int = 0
    #: Result frames whose image size differs from the ground truth's.
    size_mismatches: int = 0


@dataclass
class Evaluator:
    """Matches results to ground truth by (stamp, object id) and scores them."""

    protocol: CropProtocol = field(default_factory=CropProtocol)
    overlays: OverlayCollector | None = None
    max_pending_frames: int = 1000
    records: list[InstanceRecord] = field(default_factory=list)
    #: Latency samples in ms by name (e.g. "inference", "pipeline_evaluator_clock").
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    info: DatasetInfo | None = None
    _gt: dict[int, _GtFrame] = field(default_factory=dict)
    _pending: OrderedDict[int, _ResultFrame] = field(default_factory=OrderedDict)
    _result_stamps: set[int] = field(default_factory=set)
    _counts: Counts = field(default_factory=Counts)
    _unmatched: list[tuple[int, int]] = field(default_factory=list)
    _missing: list[tuple[int, int]] = field(default_factory=list)

    # ------------------------------------------------------------------ input
    def set_dataset_info(self, info: DatasetInfo) -> None:
        """Categories (and image ids) of the objects, from ``/dataset/info``; may come
        at any time, it is applied when the report is made."""
        self.info = info

    def add_latency(self, name: str, ms: float) -> None:
        if np.isfinite(ms):
            self.latency_ms.setdefault(name, []).append(float(ms))

    def add_ground_truth(
        self,
        stamp_ns: int,
        width: int,
        height: int,
        instances: Iterable[GroundTruthInstance],
        received_s: float | None = None,
    ) -> list[InstanceRecord]:
        """A ground-truth frame. Returns the records of a waiting result it completes."""
        if stamp_ns in self._gt:
            self._counts.duplicate_ground_truth += 1
            return []
        objects = {inst.object_id: inst for inst in instances}
        self._gt[stamp_ns] = _GtFrame(width, height, objects, received_s)
        self._counts.ground_truth_frames += 1
        self._counts.ground_truth_instances += len(objects)
        waiting = self._pending.pop(stamp_ns, None)
        if waiting is None:
            return []
        return self._evaluate(stamp_ns, waiting)

    def add_result(
        self,
        stamp_ns: int,
        width: int,
        height: int,
        predictions: Sequence[Prediction],
        inference_ms: float | None = None,
        received_s: float | None = None,
        image: np.ndarray | None = None,
    ) -> list[InstanceRecord]:
        """A result frame (``image``: its RGB frame, only for the overlay grid).
        Returns the records it produced (none while its ground truth is unknown)."""
        if stamp_ns in self._result_stamps:
            self._counts.duplicate_results += 1
            return []
        self._result_stamps.add(stamp_ns)
        self._counts.result_frames += 1
        self._counts.result_instances += len(predictions)
        if inference_ms is not None:
            self.add_latency("inference", inference_ms)
        frame = _ResultFrame(width, height, list(predictions), inference_ms, received_s, image)
        if stamp_ns not in self._gt:
            self._pending[stamp_ns] = frame
            while len(self._pending) > self.max_pending_frames:
                _, old = self._pending.popitem(last=False)
                self._counts.evicted_result_frames += 1
                self._counts.evicted_result_instances += len(old.predictions)
            return []
        return self._evaluate(stamp_ns, frame)

    # ------------------------------------------------------------- scoring
    def _evaluate(self, stamp_ns: int, result: _ResultFrame) -> list[InstanceRecord]:
        gt = self._gt[stamp_ns]
        gt.evaluated = True
        self._counts.frames_evaluated += 1
        if (result.width, result.height) != (gt.width, gt.height):
            self._counts.size_mismatches += 1
        if result.received_s is not None and gt.received_s is not None:
            gap = (result.received_s - gt.received_s) * 1000.0
            if gap >= 0.0:
                self.add_latency("pipeline_evaluator_clock", gap)
        out: list[InstanceRecord] = []
        seen: set[int] = set()
        for pred in result.predictions:
            truth = gt.objects.get(pred.object_id)
            if truth is None or pred.object_id in seen:
                self._counts.unmatched_instances += 1
                if len(self._unmatched) < MAX_LISTED:
                    self._unmatched.append((stamp_ns, pred.object_id))
                continue
            seen.add(pred.object_id)
            record = self.score(stamp_ns, gt.width, gt.height, truth, pred)
            out.append(record)
            if self.overlays is not None:
                self.overlays.offer(record, result.image, pred.mask, truth.mask, truth.prompt)
        for oid in sorted(set(gt.objects) - seen):
            self._counts.missing_in_evaluated_frames += 1
            if len(self._missing) < MAX_LISTED:
                self._missing.append((stamp_ns, oid))
        self.records.extend(out)
        self._counts.instances_evaluated += len(out)
        return out

    def score(
        self,
        stamp_ns: int,
        width: int,
        height: int,
        truth: GroundTruthInstance,
        pred: Prediction,
    ) -> InstanceRecord:
        """Score one matched instance (both IoUs, size class, crop)."""
        crop = evaluation_crop(truth.prompt, width, height, self.protocol, truth.mask)
        iou_full, iou_crop = instance_ious(pred.mask, truth.mask, crop, width, height)
        if pred.crop_mask is not None and pred.mask.roi == crop:
            iou_crop = resampled_crop_iou(pred.crop_mask, truth.mask, crop)
        return InstanceRecord(
            stamp_ns=stamp_ns,
            object_id=pred.object_id,
            category_id=truth.category_id,
            area=truth.area,
            size=size_class(truth.area),
            prompt_kind=truth.prompt.kind if truth.prompt is not None else "none",
            crop=crop,
            iou_crop=iou_crop,
            iou_full=iou_full,
            status=int(pred.status),
            score=float(pred.score),
            predicted_area=pred.mask.area,
        )

    # ------------------------------------------------------------- queries
    @property
    def frames_evaluated(self) -> int:
        return self._counts.frames_evaluated

    @property
    def pending_stamps(self) -> list[int]:
        """Stamps of result frames still waiting for their ground truth."""
        return list(self._pending)

    def category_of(self, record: InstanceRecord) -> int | None:
        if record.category_id is not None:
            return record.category_id
        if self.info is not None and record.object_id in self.info.objects:
            return self.info.objects[record.object_id].category_id
        return None

    def category_names(self) -> dict[int, str]:
        if self.info is None:
            return {}
        return {cid: cat.name for cid, cat in self.info.categories.items()}

    def counts(self) -> dict[str, int]:
        """Every count of the report; ground truth still waiting for a result counts as
        missing (``frames_without_result``)."""
        c = self._counts
        waiting = [f for f in self._gt.values() if not f.evaluated]
        unseen_frames = len(self._pending) + c.evicted_result_frames
        unseen_instances = (
            sum(len(f.predictions) for f in self._pending.values()) + c.evicted_result_instances
        )
        missing_unanswered = sum(len(f.objects) for f in waiting)
        return {
            "ground_truth_frames": c.ground_truth_frames,
            "ground_truth_instances": c.ground_truth_instances,
            "result_frames": c.result_frames,
            "result_instances": c.result_instances,
            "frames_evaluated": c.frames_evaluated,
            "instances_evaluated": c.instances_evaluated,
            "frames_without_result": len(waiting),
            "instances_missing": c.missing_in_evaluated_frames + missing_unanswered,
            "instances_missing_in_evaluated_frames": c.missing_in_evaluated_frames,
            "instances_missing_in_frames_without_result": missing_unanswered,
            "instances_unmatched": c.unmatched_instances,
            "results_for_unseen_stamps_frames": unseen_frames,
            "results_for_unseen_stamps_instances": unseen_instances,
            "duplicate_result_frames": c.duplicate_results,
            "duplicate_ground_truth_frames": c.duplicate_ground_truth,
            "image_size_mismatches": c.size_mismatches,
        }

    def listed(self) -> dict[str, list[dict[str, int]]]:
        """(stamp, object id) of missing and unmatched instances and of result frames
        for unseen stamps (at most ``MAX_LISTED`` each)."""
        missing = list(self._missing)
        for stamp, frame in self._gt.items():
            if not frame.evaluated:
                missing.extend((stamp, oid) for oid in sorted(frame.objects))
        return {
            "missing": [{"stamp_ns": s, "object_id": o} for s, o in missing[:MAX_LISTED]],
            "unmatched": [{"stamp_ns": s, "object_id": o} for s, o in self._unmatched],
            "unseen_stamps": [{"stamp_ns": s} for s in list(self._pending)[:MAX_LISTED]],
        }
