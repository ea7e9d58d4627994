"""One evaluation run, fed from ROS messages or from the offline pipeline.

``evaluator_node`` and ``picosam2-evaluate`` both go through this class, so a result
is scored the same way whichever path produced it:

- ground truth: ``add_ground_truth_msg`` (a ``picosam2_ros/Segmentation`` from the
  bag's ``/ground_truth``) or ``add_dataset_frame`` (the same message read back by
  ``bags.reader.DatasetBag``); each object's mask over its bbox and its prompt;
- results: ``add_result_msg`` (the segmenter's ``Segmentation``: each ``ObjectMask``
  mask over its ``crop``, read by ``masks.cropped_mask_from_msg``) or
  ``add_frame_result`` (``core.pipeline.FrameResult``: each ``ObjectResult`` mask over
  its ``crop``, exactly what the segmenter node would have put into the message);
- ``write``: the JSON report and the plots.

Messages are duck-typed (rclpy or rosbags objects); nothing here imports rclpy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from picosam2_ros.bags.reader import DatasetFrame, DatasetInfo, prompt_spec_from_msg, stamp_ns
from picosam2_ros.core.pipeline import FrameResult
from picosam2_ros.evaluation.evaluator import Evaluator, GroundTruthInstance, Prediction
from picosam2_ros.evaluation.masks import CroppedMask, cropped_mask_from_msg
from picosam2_ros.evaluation.overlays import OverlayCollector
from picosam2_ros.evaluation.plots import write_plots
from picosam2_ros.evaluation.protocol import CropProtocol
from picosam2_ros.evaluation.records import InstanceRecord
from picosam2_ros.evaluation.report import build_report, format_summary, write_report


def ground_truth_from_msg(msg: Any) -> list[GroundTruthInstance]:
    """The objects of a ground-truth ``Segmentation``: mask over ``bbox`` (= ``crop``),
    prompt from ``ObjectMask.prompt``; categories come from ``/dataset/info``."""
    return [
        GroundTruthInstance(
            object_id=int(obj.object_id),
            mask=cropped_mask_from_msg(obj, "crop"),
            prompt=prompt_spec_from_msg(obj.prompt),
        )
        for obj in msg.objects
    ]


def predictions_from_msg(msg: Any) -> list[Prediction]:
    """The objects of a result ``Segmentation``: mask over ``crop``, status, score."""
    return [
        Prediction(
            object_id=int(obj.object_id),
            mask=cropped_mask_from_msg(obj, "crop"),
            status=int(obj.status),
            score=float(obj.score),
        )
        for obj in msg.objects
    ]


def predictions_from_frame_result(result: FrameResult) -> list[Prediction]:
    """The objects of a ``FrameResult`` as the segmenter node would publish them (the
    score goes through float32 like ``ObjectMask.score``)."""
    return [
        Prediction(
            object_id=int(obj.object_id),
            mask=CroppedMask(obj.crop, obj.mask),
            status=int(obj.status),
            score=float(np.float32(obj.score)),
        )
        for obj in result.objects
    ]


def ground_truth_from_frame(frame: DatasetFrame) -> list[GroundTruthInstance]:
    """The ground-truth objects of a ``DatasetFrame`` (``DatasetBag``)."""
    return [
        GroundTruthInstance(
            object_id=oid,
            mask=CroppedMask.from_frame(gt.mask),
            prompt=gt.prompt,
            category_id=gt.category_id,
        )
        for oid, gt in sorted(frame.ground_truth.items())
    ]


class InputClock:
    """When the first and the latest input arrived (monotonic seconds)."""

    def __init__(self) -> None:
        self.first_data_s: float | None = None
        self.last_data_s: float | None = None

    def _touch(self, now: float | None) -> float:
        t = time.monotonic() if now is None else now
        if self.first_data_s is None:
            self.first_data_s = t
        self.last_data_s = t
        return t

    @property
    def data_wall_s(self) -> float | None:
        """Seconds from the first to the last input."""
        if self.first_data_s is None or self.last_data_s is None:
            return None
        return self.last_data_s - self.first_data_s


class EvaluationSession(InputClock):
    """An ``Evaluator`` plus its overlay collector, clock and output.

    ``overlay_count``: best and worst tiles kept for the overlay grid (0 = none).
    """

    #: Counts that mean something went wrong (diagnostics turn WARN).
    TROUBLE_COUNTS = (
        "instances_unmatched",
        "results_for_unseen_stamps_frames",
        "instances_missing_in_evaluated_frames",
    )

    def __init__(
        self,
        protocol: CropProtocol | None = None,
        overlay_count: int = 8,
        max_pending_frames: int = 1000,
    ) -> None:
        super().__init__()
        self.overlays = OverlayCollector(overlay_count) if overlay_count > 0 else None
        self.evaluator = Evaluator(
            protocol=protocol or CropProtocol(),
            overlays=self.overlays,
            max_pending_frames=max_pending_frames,
        )

    # ----------------------------------------------------------------- ROS path
    def set_dataset_info_json(self, text: str) -> DatasetInfo:
        """``/dataset/info`` (raises ``DatasetLayoutError`` when it is not one)."""
        info = DatasetInfo.from_json(text)
        self.evaluator.set_dataset_info(info)
        return info

    def add_ground_truth_msg(
        self, msg: Any, received_s: float | None = None
    ) -> list[InstanceRecord]:
        t = self._touch(received_s)
        return self.evaluator.add_ground_truth(
            stamp_ns(msg.header),
            int(msg.image_width),
            int(msg.image_height),
            ground_truth_from_msg(msg),
            t,
        )

    def add_result_msg(
        self, msg: Any, received_s: float | None = None, image: np.ndarray | None = None
    ) -> list[InstanceRecord]:
        t = self._touch(received_s)
        return self.evaluator.add_result(
            stamp_ns(msg.header),
            int(msg.image_width),
            int(msg.image_height),
            predictions_from_msg(msg),
            inference_ms=float(msg.inference_ms),
            received_s=t,
            image=image,
        )

    # ------------------------------------------------------------- offline path
    def add_dataset_frame(self, frame: DatasetFrame) -> list[InstanceRecord]:
        self._touch(None)
        return self.evaluator.add_ground_truth(
            frame.stamp_ns, frame.width, frame.height, ground_truth_from_frame(frame)
        )

    def add_frame_result(
        self,
        stamp: int,
        result: FrameResult,
        image: np.ndarray | None = None,
        processing_ms: float | None = None,
    ) -> list[InstanceRecord]:
        self._touch(None)
        if processing_ms is not None:
            self.evaluator.add_latency("processing", processing_ms)
        return self.evaluator.add_result(
            stamp,
            result.width,
            result.height,
            predictions_from_frame_result(result),
            inference_ms=float(np.float32(result.inference_ms)),
            image=image,
        )

    # ------------------------------------------------------------------- output
    def running_figures(self) -> dict[str, str]:
        """mIoU so far on the paper crop and on full frames, for diagnostics."""
        records = self.evaluator.records
        if not records:
            return {"miou_paper_crop": "nan", "miou_full_frame": "nan"}
        crop = sum(r.iou_crop for r in records) / len(records)
        full = sum(r.iou_full for r in records) / len(records)
        return {"miou_paper_crop": f"{crop:.4f}", "miou_full_frame": f"{full:.4f}"}

    def headline(self) -> str:
        counts = self.evaluator.counts()
        return (
            f"{counts['instances_evaluated']} instances in {counts['frames_evaluated']} frames, "
            f"mIoU paper crop {self.running_figures()['miou_paper_crop']}"
        )

    @staticmethod
    def format_report(report: Mapping[str, Any]) -> str:
        return format_summary(report)

    def report(
        self,
        source: Mapping[str, Any] | None = None,
        wall_s: float | None = None,
        final: bool = True,
    ) -> dict[str, Any]:
        return build_report(
            self.evaluator,
            source=source,
            wall_s=wall_s if wall_s is not None else self.data_wall_s,
            final=final,
        )

    def write(
        self,
        out_dir: Path | str,
        source: Mapping[str, Any] | None = None,
        wall_s: float | None = None,
        final: bool = True,
        plots: bool = True,
    ) -> tuple[dict[str, Any], list[Path]]:
        """Write ``report.json`` and (``plots``) the PNG plots into ``out_dir``; returns
        the report and the files written (the report first)."""
        report = self.report(source, wall_s, final)
        files: list[Path] = []
        if plots:
            files = write_plots(report, out_dir, self.overlays, self.evaluator.category_names())
            report["plots"] = [p.name for p in files]
        return report, [write_report(report, out_dir), *files]
