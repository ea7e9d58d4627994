"""Segment everything for segmenter_node: every object in the latest image, no prompts.

  srv  segment_everything  picosam2_ros/SegmentEverything: the latest image's objects
  out  everything          picosam2_ros/Segmentation, published every 1/everything_rate_hz
                           seconds on the latest image while everything_rate_hz > 0
                           (reliable, TRANSIENT_LOCAL depth 10, like `segmentation`)

The work is ``picosam2_ros.core.everything.segment_everything`` with the node's point
model; object ids are 1, 2, ... in decreasing score within each result. The continuous
topic runs in its own thread and the service in a callback group of its own (served by
the executor's second thread, ``startup.make_executor``), so prompted segmentation keeps
its pace during either (a call takes as long as the grid does, see the README's
figures). A call or a period without a usable image, model or grid answers with the
reason (service) or logs and counts it (topic); the node keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from picosam2_ros.backends.base import InferenceBackend
from picosam2_ros.core.everything import EverythingError, EverythingSettings, segment_everything
from picosam2_ros.core.preprocess import EncodingError
from picosam2_ros.core.stats import LatencyWindow
from picosam2_ros.io.image import ImageError, image_to_array
from picosam2_ros.io.messages import frame_to_msg
from picosam2_ros.msg import Segmentation
from picosam2_ros.nodes.params import ParamSpec, declare_all
from picosam2_ros.nodes.qos import RESULTS_QOS
from picosam2_ros.srv import SegmentEverything

_DEFAULTS = EverythingSettings()

EVERYTHING_PARAMS = (
    ParamSpec(
        "everything_rate_hz",
        0.0,
        "segment everything in the latest image this often and publish it on `everything` "
        "(0 = only on the segment_everything service)",
        float_range=(0.0, 30.0),
    ),
    ParamSpec(
        "everything_points_per_side",
        _DEFAULTS.points_per_side,
        "segment everything: dense grid points along the image's longer side (square cells)",
        int_range=(1, 1024),
    ),
    ParamSpec(
        "everything_hierarchical",
        _DEFAULTS.hierarchical,
        "segment everything: sparse first pass, dense points only where no confident mask "
        "covers them (TinySAM); false = the whole dense grid",
    ),
    ParamSpec(
        "everything_sparse_stride",
        _DEFAULTS.sparse_stride,
        "segment everything: the first pass takes every n-th dense point along each axis",
        int_range=(1, 16),
    ),
    ParamSpec(
        "everything_confident_score",
        _DEFAULTS.confident_score,
        "segment everything: first-pass masks with at least this stability score mark their "
        "pixels as done",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "everything_min_score",
        _DEFAULTS.min_score,
        "segment everything: masks with a lower stability score are dropped",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "everything_nms_iou",
        _DEFAULTS.nms_iou,
        "segment everything: a mask overlapping a better one with this IoU or more is dropped",
        float_range=(0.01, 1.0),
    ),
    ParamSpec(
        "everything_max_masks",
        _DEFAULTS.max_masks,
        "segment everything: most masks per result (the best by score)",
        int_range=(1, 1000),
    ),
)

#: The parameters of the mask filters and NMS, shared with camera_node's sweep.
FILTER_PARAMS = tuple(
    spec
    for spec in EVERYTHING_PARAMS
    if spec.name not in ("everything_rate_hz", "everything_points_per_side")
)


def everything_settings(params: Mapping[str, Any], **fixed: Any) -> EverythingSettings:
    """EverythingSettings from the ``everything_*`` parameters (``fixed``: other fields)."""
    return EverythingSettings(
        points_per_side=params["everything_points_per_side"],
        hierarchical=params["everything_hierarchical"],
        sparse_stride=params["everything_sparse_stride"],
        confident_score=params["everything_confident_score"],
        min_score=params["everything_min_score"],
        nms_iou=params["everything_nms_iou"],
        max_masks=params["everything_max_masks"],
        **fixed,
    )


#: Counters this mixin keeps in the node's ``_counts``.
EVERYTHING_COUNTERS = ("everything_results", "everything_failures")


class EverythingServer(Node):
    """Base of a node with ``_lock``-guarded ``_backends`` ("point" used here),
    ``_backend_name`` and ``_model_error``, counters in ``_counts`` and a ``_problem``
    reporter (``PromptedNode``), and a ``_stopping`` event; call ``_init_everything``
    once those exist and ``_note_image`` with each incoming image."""

    _lock: threading.Lock
    _backends: dict[str, InferenceBackend] | None
    _backend_name: str
    _model_error: str
    _counts: dict[str, int]
    _stopping: threading.Event

    def _init_everything(self) -> None:
        for name in EVERYTHING_COUNTERS:
            self._counts.setdefault(name, 0)
        self._everything_p: dict[str, Any] = declare_all(self, EVERYTHING_PARAMS)
        self.add_post_set_parameters_callback(self._on_everything_params_set)
        self._latest_image: Image | None = None
        self._everything_ms = LatencyWindow()
        # One segment-everything at a time: the service and the topic share the CPU.
        self._everything_busy = threading.Lock()
        self._everything_pub = self.create_publisher(Segmentation, "everything", RESULTS_QOS)
        self.create_service(
            SegmentEverything,
            "segment_everything",
            self._on_segment_everything,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self._everything_thread = threading.Thread(
            target=self._everything_loop, name="segmenter-everything", daemon=True
        )
        self._everything_thread.start()

    def _on_everything_params_set(self, params: list[Parameter]) -> None:
        for param in params:
            if param.name in self._everything_p:
                self._everything_p[param.name] = param.value

    def _note_image(self, msg: Image) -> None:
        self._latest_image = msg

    def _everything_settings(self) -> EverythingSettings:
        return everything_settings(self._everything_p)

    def everything_diagnostics(self) -> dict[str, str]:
        """Key/values for the node's diagnostics status."""
        return {
            "everything_rate_hz_set": f"{self._everything_p['everything_rate_hz']:.2f}",
            "everything_p50_ms": f"{self._everything_ms.percentile(50):.1f}",
        }

    def _segment_everything(self) -> tuple[Segmentation | None, str]:
        """The latest image's objects as a message, or None and why not."""
        msg = self._latest_image
        if msg is None:
            return None, f"no image received yet on '{self.resolve_topic_name('image')}'"
        with self._lock:
            backends, backend_name, model_error = (
                self._backends,
                self._backend_name,
                self._model_error,
            )
        if backends is None:
            return None, f"no model loaded: {model_error}"
        started = time.perf_counter()
        try:
            image = image_to_array(msg)
            with self._everything_busy:
                result = segment_everything(
                    image, msg.encoding, backends, self._everything_settings()
                )
        except (ImageError, EverythingError, EncodingError) as err:
            return None, f"cannot segment everything in the latest image: {err}"
        self._everything_ms.add((time.perf_counter() - started) * 1000.0)
        frame = result.frame
        return frame_to_msg(frame, msg.header, backend_name), (
            f"{len(frame.objects)} object(s) from {result.crops_run} crops "
            f"({result.first_pass_crops} + {result.second_pass_crops}, "
            f"{result.skipped_points} points skipped)"
        )

    def _count_everything(self, seg: Segmentation | None, why: str) -> None:
        if seg is None:
            self._problem(f"everything:{why}", why, "everything_failures")
        else:
            self._counts["everything_results"] += 1

    def _on_segment_everything(
        self, _req: SegmentEverything.Request, resp: SegmentEverything.Response
    ) -> SegmentEverything.Response:
        try:
            seg, message = self._segment_everything()
        except Exception as err:  # a failed call must not take the node down
            seg, message = None, f"segment everything failed: {err!r}"
        self._count_everything(seg, message)
        resp.success = seg is not None
        resp.message = message
        if seg is not None:
            resp.segmentation = seg
        return resp

    def _everything_loop(self) -> None:
        """Publish on `everything` at everything_rate_hz, each image at most once."""
        last: Image | None = None
        while not self._stopping.is_set():
            rate = float(self._everything_p["everything_rate_hz"])
            if rate <= 0.0:
                self._stopping.wait(0.2)
                continue
            started = time.monotonic()
            if self._latest_image is not None and self._latest_image is not last:
                last = self._latest_image
                try:
                    seg, why = self._segment_everything()
                except Exception as err:  # the loop must outlive any single frame
                    seg, why = None, f"segment everything failed: {err!r}"
                if self._stopping.is_set():
                    break
                self._count_everything(seg, why)
                if seg is not None:
                    self._everything_pub.publish(seg)
            self._stopping.wait(max(0.0, 1.0 / rate - (time.monotonic() - started)))
