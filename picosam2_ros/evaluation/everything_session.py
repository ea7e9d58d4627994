"""Segment-everything results scored frame by frame, from ROS messages or offline.

``evaluator_node`` (parameter ``mode: everything``) and ``picosam2-evaluate
--everything`` both go through ``EverythingEvaluator``, so a stream of prompt-free
results (segmenter_node's ``everything`` topic) and the offline tool give the same
figures on the same frames: ``evaluation.everything.evaluate_image`` per frame, then
``summarise`` over the frames in stamp order.

Matching is by header stamp only: a result's masks carry no object ids that mean
anything to the ground truth (they are 1..N in decreasing score), so every mask of a
frame is compared with every ground-truth instance of that frame. Ground truth is taken
in ascending object id, whatever order the message lists it in.

Accounting, as ``evaluation.evaluator.Evaluator`` does it for prompted results: a result
whose stamp has no ground truth (yet) waits (at most ``max_pending_frames``), and counts
as a result for an unseen stamp when none comes; a second result or ground truth for a
stamp is a duplicate and ignored; ground truth without a result counts as a frame
without result (its instances are not in the figures). A result of another image size
than its ground truth is counted and not scored (its masks would be compared on the
wrong frame).

Messages are duck-typed (rclpy or rosbags objects); nothing here imports rclpy.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picosam2_ros.bags.reader import DatasetInfo, stamp_ns
from picosam2_ros.evaluation.everything import (
    ImageRecall,
    evaluate_image,
    format_everything_summary,
    summarise,
)
from picosam2_ros.evaluation.masks import CroppedMask
from picosam2_ros.evaluation.session import InputClock, ground_truth_from_msg, predictions_from_msg

#: File name of the report in the report folder.
REPORT_NAME = "everything.json"


@dataclass
class _TruthFrame:
    width: int
    height: int
    truths: list[CroppedMask]  # ascending object id
    image_id: int | None
    evaluated: bool = False


@dataclass
class _MaskFrame:
    width: int
    height: int
    masks: list[CroppedMask]
    scores: list[float]


@dataclass
class EverythingEvaluator:
    """Matches prompt-free results to ground-truth frames by stamp and scores each frame
    with ``evaluate_image`` (see the module docstring)."""

    max_pending_frames: int = 1000
    info: DatasetInfo | None = None
    _gt: dict[int, _TruthFrame] = field(default_factory=dict)
    _pending: OrderedDict[int, _MaskFrame] = field(default_factory=OrderedDict)
    _result_stamps: set[int] = field(default_factory=set)
    _scored: dict[int, ImageRecall] = field(default_factory=dict)
    _counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "ground_truth_frames",
                "ground_truth_instances",
                "result_frames",
                "result_masks",
                "duplicate_result_frames",
                "duplicate_ground_truth_frames",
                "evicted_result_frames",
                "image_size_mismatches",
            ),
            0,
        )
    )

    def add_ground_truth(
        self,
        stamp: int,
        width: int,
        height: int,
        truths: Mapping[int, CroppedMask],
        image_id: int | None = None,
    ) -> list[ImageRecall]:
        """A ground-truth frame (object id -> mask). Returns the frame's recall when its
        result was already waiting."""
        if stamp in self._gt:
            self._counts["duplicate_ground_truth_frames"] += 1
            return []
        ordered = [truths[oid] for oid in sorted(truths)]
        self._gt[stamp] = _TruthFrame(width, height, ordered, image_id)
        self._counts["ground_truth_frames"] += 1
        self._counts["ground_truth_instances"] += len(ordered)
        waiting = self._pending.pop(stamp, None)
        return [] if waiting is None else self._evaluate(stamp, waiting)

    def add_result(
        self,
        stamp: int,
        width: int,
        height: int,
        masks: Sequence[CroppedMask],
        scores: Sequence[float],
    ) -> list[ImageRecall]:
        """A frame's masks and their scores (any order). Returns the frame's recall, or
        nothing while its ground truth is unknown."""
        if len(masks) != len(scores):
            raise ValueError(f"{len(masks)} masks but {len(scores)} scores")
        if stamp in self._result_stamps:
            self._counts["duplicate_result_frames"] += 1
            return []
        self._result_stamps.add(stamp)
        self._counts["result_frames"] += 1
        self._counts["result_masks"] += len(masks)
        frame = _MaskFrame(width, height, list(masks), [float(s) for s in scores])
        if stamp not in self._gt:
            self._pending[stamp] = frame
            while len(self._pending) > self.max_pending_frames:
                self._pending.popitem(last=False)
                self._counts["evicted_result_frames"] += 1
            return []
        return self._evaluate(stamp, frame)

    def _evaluate(self, stamp: int, result: _MaskFrame) -> list[ImageRecall]:
        gt = self._gt[stamp]
        if (result.width, result.height) != (gt.width, gt.height):
            self._counts["image_size_mismatches"] += 1
            return []
        gt.evaluated = True
        image_id = gt.image_id
        if image_id is None and self.info is not None:
            image_id = self.info.image_ids.get(stamp)
        recall = evaluate_image(
            result.masks, result.scores, gt.truths, gt.width, gt.height, image_id
        )
        self._scored[stamp] = recall
        return [recall]

    @property
    def frames_evaluated(self) -> int:
        return len(self._scored)

    def recalls(self) -> list[ImageRecall]:
        """Every scored frame, in stamp order (the order the figures are taken in)."""
        return [self._scored[s] for s in sorted(self._scored)]

    def counts(self) -> dict[str, int]:
        """Every count of the report."""
        waiting = [f for f in self._gt.values() if not f.evaluated]
        return {
            **self._counts,
            "frames_evaluated": self.frames_evaluated,
            "instances_evaluated": sum(len(r.sizes) for r in self._scored.values()),
            "frames_without_result": len(waiting),
            "instances_in_frames_without_result": sum(len(f.truths) for f in waiting),
            "results_for_unseen_stamps_frames": len(self._pending)
            + self._counts["evicted_result_frames"],
        }

    def report(self, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``fields`` (what produced the results), the counts, the figures over all frames
        (``summary``) and each frame's own (``images``)."""
        recalls = self.recalls()
        return {
            **(fields or {}),
            "counts": self.counts(),
            "summary": summarise(recalls),
            "images": [
                {
                    "image_id": r.image_id,
                    "masks": r.masks,
                    "false_masks": r.false_masks,
                    "best_iou": [round(float(v), 4) for v in r.best_iou],
                }
                for r in recalls
            ],
        }


def write_everything_report(report: Mapping[str, Any], out_dir: Path | str) -> Path:
    """``report`` as ``everything.json`` in ``out_dir`` (created); raises OSError."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_NAME
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


class EverythingSession(InputClock):
    """An ``EverythingEvaluator`` fed from ROS messages, with the input clock and the
    interface ``evaluator_node`` drives (the same as ``EvaluationSession``'s)."""

    #: Counts that mean something went wrong (diagnostics turn WARN).
    TROUBLE_COUNTS = ("results_for_unseen_stamps_frames", "image_size_mismatches")

    def __init__(self, max_pending_frames: int = 1000) -> None:
        super().__init__()
        self.evaluator = EverythingEvaluator(max_pending_frames=max_pending_frames)

    def set_dataset_info_json(self, text: str) -> DatasetInfo:
        """``/dataset/info``: image ids for the report (raises ``DatasetLayoutError``)."""
        info = DatasetInfo.from_json(text)
        self.evaluator.info = info
        return info

    def add_ground_truth_msg(self, msg: Any, received_s: float | None = None) -> int:
        """A ground-truth ``Segmentation``; returns the instances it got scored."""
        self._touch(received_s)
        truths = {inst.object_id: inst.mask for inst in ground_truth_from_msg(msg)}
        done = self.evaluator.add_ground_truth(
            stamp_ns(msg.header), int(msg.image_width), int(msg.image_height), truths
        )
        return sum(len(r.sizes) for r in done)

    def add_result_msg(self, msg: Any, received_s: float | None = None, image: Any = None) -> int:
        """A prompt-free result ``Segmentation`` (``image`` is not used: no overlays);
        returns the instances it got scored."""
        self._touch(received_s)
        predictions = predictions_from_msg(msg)
        done = self.evaluator.add_result(
            stamp_ns(msg.header),
            int(msg.image_width),
            int(msg.image_height),
            [p.mask for p in predictions],
            [p.score for p in predictions],
        )
        return sum(len(r.sizes) for r in done)

    def running_figures(self) -> dict[str, str]:
        """The figures so far, for diagnostics."""
        summary = summarise(self.evaluator.recalls())

        def text(key: str) -> str:
            value = summary[key]
            return "nan" if value is None else f"{value:.4f}"

        return {key: text(key) for key in ("recall_50", "recall_75", "ar_100")}

    def headline(self) -> str:
        figures = self.running_figures()
        counts = self.evaluator.counts()
        return (
            f"{counts['instances_evaluated']} instances in {counts['frames_evaluated']} frames, "
            f"recall@0.5 {figures['recall_50']}, AR@100 {figures['ar_100']}"
        )

    def write(
        self, out_dir: Path | str, source: Mapping[str, Any] | None = None, final: bool = True
    ) -> tuple[dict[str, Any], list[Path]]:
        """Write ``everything.json``; returns the report and ``[its path]``."""
        report = self.evaluator.report(
            {**(source or {}), "final": final, "data_wall_s": self.data_wall_s}
        )
        return report, [write_everything_report(report, out_dir)]

    @staticmethod
    def format_report(report: Mapping[str, Any]) -> str:
        return format_everything_summary(dict(report["summary"]))
