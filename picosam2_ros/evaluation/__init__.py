"""Evaluation of segmentation results against ground truth, as the PicoSAM2 paper
measures it and on full frames. Pure numpy + matplotlib; nothing here imports rclpy.

- ``masks``: ``CroppedMask`` (a mask over a rectangle of the frame) and the one mask
  reconstruction (``ObjectMask`` mask over its crop -> frame) both paths use;
- ``protocol``: the paper-protocol crop and the per-instance IoUs (paper crop, full
  frame), object size classes;
- ``records``: ``InstanceRecord``, one evaluated instance;
- ``evaluator``: ``Evaluator``, matching results to ground truth by (stamp, object id)
  and accounting for everything missing, unmatched or duplicated;
- ``overlays``: tiles of the best and worst instances;
- ``report``: aggregates (mIoU, ``paper_map`` - the paper's "mAP", NOT COCO AP - per
  category, per size, latency), the JSON report and a text summary;
- ``plots``: the PNG plots;
- ``session``: one evaluation run (evaluator + overlays + writing it all out), shared
  by ``evaluator_node`` and ``picosam2-evaluate``;
- ``everything``: class-agnostic recall of segment-everything masks (recall at IoU 0.5
  and 0.75, AR@100, false masks per image);
- ``everything_session``: segment-everything results matched to ground truth by stamp
  and scored per frame, shared by ``evaluator_node`` (``mode: everything``) and
  ``picosam2-evaluate --everything``.
"""

from picosam2_ros.evaluation.evaluator import Evaluator, GroundTruthInstance, Prediction
from picosam2_ros.evaluation.masks import CroppedMask, cropped_mask_from_msg, paste
from picosam2_ros.evaluation.overlays import OverlayCollector
from picosam2_ros.evaluation.protocol import (
    CropProtocol,
    evaluation_crop,
    frame_ious,
    instance_ious,
    size_class,
)
from picosam2_ros.evaluation.records import InstanceRecord
from picosam2_ros.evaluation.report import build_report, format_summary, write_report
from picosam2_ros.evaluation.session import EvaluationSession

__all__ = [
    "CropProtocol",
    "CroppedMask",
    "EvaluationSession",
    "Evaluator",
    "GroundTruthInstance",
    "InstanceRecord",
    "OverlayCollector",
    "Prediction",
    "build_report",
    "cropped_mask_from_msg",
    "evaluation_crop",
    "format_summary",
    "frame_ious",
    "instance_ious",
    "paste",
    "size_class",
    "write_report",
]
