"""evaluator_node: scores segmentation results against replayed ground truth.

Wiring only; matching and scoring are picosam2_ros.evaluation (``EvaluationSession``),
the same code ``picosam2-evaluate`` runs offline, so both give identical per-instance
IoUs.

Topics (relative to the node, remappable):
  in   ground_truth   picosam2_ros/Segmentation: ground-truth masks over their bbox,
                      prompts inside (a COCO-derived bag's /ground_truth)
  in   segmentation   picosam2_ros/Segmentation: the results to score
                      (both reliable, TRANSIENT_LOCAL by default: ``input_durability``)
  in   image          sensor_msgs/Image, only with write_overlays (best effort): the
                      frames of the best/worst overlay grid
  in   /dataset/info  std_msgs/String JSON (categories, frames); received from a
                      TRANSIENT_LOCAL (latched, also when it was published before this
                      node started) or a volatile publisher
  out  /diagnostics   diagnostic_msgs/DiagnosticArray: frames and instances evaluated,
                      running mIoU, missing / unmatched counts
Service: ~/write_report (std_srvs/Trigger): write the report now.

``mode`` says what ``segmentation`` carries. "prompted" (default): results of the
bag's prompts, scored per instance (below) into report.json. "everything": prompt-free
segment-everything results (segmenter_node's ``everything`` topic, remapped onto
``segmentation``), scored class-agnostically per frame against all of the frame's
ground truth (recall at IoU 0.5 and 0.75, AR@100, false masks per image, by size:
picosam2_ros.evaluation.everything_session, the code ``picosam2-evaluate --everything``
runs) into everything.json; no overlays.

Matching (prompted): by (header stamp, object id). Results for stamps without ground truth wait
for it; the report counts those that never get one ("results for unseen stamps"),
ground-truth objects without a result ("missing") and result objects without ground
truth ("unmatched").

The report (report.json + PNG plots in ``report_dir``) is written when
``expected_frames`` frames are evaluated (0: the frame count of /dataset/info when it
arrived), after ``idle_timeout_s`` without new data, on ~/write_report, and on
shutdown. With ``exit_when_done`` the node exits (status 0) after the first two.

Latency: receipt times of different topics are not comparable across processes, so
the report gives the segmenter's own ``inference_ms`` statistics and, separately, the
wall-clock gap between a ground-truth frame and its result as received here
("pipeline_evaluator_clock": it includes transport and queueing).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.task import Future
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from picosam2_ros.bags.reader import BagError, stamp_ns
from picosam2_ros.evaluation.everything_session import EverythingSession
from picosam2_ros.evaluation.masks import MaskFormatError
from picosam2_ros.evaluation.protocol import CropProtocol
from picosam2_ros.evaluation.session import EvaluationSession
from picosam2_ros.io.image import ImageError, image_to_array
from picosam2_ros.msg import Segmentation
from picosam2_ros.nodes.params import DIAGNOSTICS_PERIOD, ParamSpec, declare_all
from picosam2_ros.nodes.startup import spin_until_shutdown

INFO_TOPIC = "/dataset/info"
#: Frames kept while waiting for their result (overlay grid only).
MAX_KEPT_IMAGES = 32
#: Values of the ``mode`` parameter.
MODES = ("prompted", "everything")

PARAMS = (
    ParamSpec(
        "mode",
        "prompted",
        "what `segmentation` carries: prompted = results of the bag's prompts, scored per "
        "instance into report.json; everything = prompt-free segment-everything results "
        "(segmenter_node's `everything` topic), scored class-agnostically into "
        "everything.json (recall at IoU 0.5/0.75, AR@100, false masks per image)",
        choices=MODES,
        read_only=True,
    ),
    ParamSpec(
        "report_dir",
        "evaluation_report",
        "folder for report.json and the PNG plots, or everything.json (created; files are "
        "replaced)",
    ),
    ParamSpec(
        "expected_frames",
        0,
        "write the report and finish once this many frames are evaluated; 0 = unknown: "
        "the frame count of /dataset/info when it arrives, else idle_timeout_s decides",
        int_range=(0, 1_000_000_000),
    ),
    ParamSpec(
        "idle_timeout_s",
        10.0,
        "once data has arrived: write the report and finish after this many seconds "
        "without new ground truth or results (0 = never)",
        float_range=(0.0, 86400.0),
    ),
    ParamSpec(
        "write_overlays",
        True,
        "subscribe to `image` and draw the best/worst overlay grid (overlays.png)",
        read_only=True,
    ),
    ParamSpec(
        "overlay_count",
        8,
        "best and worst instances in the overlay grid",
        int_range=(1, 64),
        read_only=True,
    ),
    ParamSpec(
        "exit_when_done",
        True,
        "exit once the report is written for expected_frames or the idle timeout "
        "(false: keep evaluating and write again when new data has gone idle)",
        read_only=True,
    ),
    ParamSpec(
        "crop_side_px",
        96,
        "paper-protocol crop side around a point prompt (the segmenter's crop_side_px; "
        "96 = the PicoSAM2 paper)",
        int_range=(8, 8192),
        read_only=True,
    ),
    ParamSpec(
        "box_margin",
        1.1,
        "paper-protocol crop of a box prompt: box_margin x the box's longer side (the "
        "segmenter's box_margin)",
        float_range=(1.0, 4.0),
        read_only=True,
    ),
    ParamSpec(
        "qos_depth",
        200,
        "queue depth of the ground_truth and segmentation subscriptions (reliable)",
        int_range=(1, 100000),
        read_only=True,
    ),
    ParamSpec(
        "input_durability",
        "transient_local",
        "durability of the ground_truth and segmentation subscriptions: transient_local "
        "also gets what the publishers sent before this node matched them (replay_node "
        "and segmenter_node offer it); volatile for publishers that offer only volatile "
        "(ros2 bag play of a bag recorded volatile), which a transient_local "
        "subscription cannot match",
        choices=("transient_local", "volatile"),
        read_only=True,
    ),
    DIAGNOSTICS_PERIOD,
)


def _to_rgb(msg: Image) -> np.ndarray:
    """A copy of an image message as (H, W, 3) RGB."""
    pixels = image_to_array(msg)
    encoding = str(msg.encoding)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if encoding.startswith("bgr"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


class EvaluatorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("evaluator", **kwargs)
        self._p = declare_all(self, PARAMS)
        self.add_post_set_parameters_callback(self._on_params_set)
        self.everything = self._p["mode"] == "everything"
        overlays = self._p["write_overlays"] and not self.everything
        self.session: EvaluationSession | EverythingSession = (
            EverythingSession()
            if self.everything
            else EvaluationSession(
                CropProtocol(self._p["crop_side_px"], self._p["box_margin"]),
                overlay_count=self._p["overlay_count"] if overlays else 0,
            )
        )
        #: Set when the report was written for expected_frames or the idle timeout.
        self.done: Future = Future()
        self.report_path: Path | None = None
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._info_frames = 0
        self._data_version = 0
        self._written_version = -1
        self._finished_version = -1
        self._expected_reached = False
        self._bad = {
            "bad_ground_truth": 0,
            "bad_results": 0,
            "bad_images": 0,
            "bad_info": 0,
            "incompatible_publishers": 0,
        }
        self._warned: set[str] = set()
        self._last_problem = ""

        depth = self._p["qos_depth"]
        durable = self._p["input_durability"] == "transient_local"
        data_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if durable else DurabilityPolicy.VOLATILE,
        )
        for topic, callback in (
            ("ground_truth", self._on_ground_truth),
            ("segmentation", self._on_result),
        ):
            self.create_subscription(
                Segmentation,
                topic,
                callback,
                data_qos,
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=lambda event, topic=topic: self._on_incompatible(topic, event)
                ),
            )
        if overlays:
            self.create_subscription(Image, "image", self._on_image, qos_profile_sensor_data)
        # /dataset/info: a latched (TRANSIENT_LOCAL) subscription gets the message even
        # when it went out before this node started; the volatile one matches publishers
        # that are not latched (such a publisher is incompatible with the latched
        # subscription: that is expected, so the warning is silenced).
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _event: None)
        self.create_subscription(String, INFO_TOPIC, self._on_info, latched, event_callbacks=quiet)
        volatile = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        self.create_subscription(String, INFO_TOPIC, self._on_info, volatile)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(Trigger, "~/write_report", self._on_write_report)
        self.create_timer(self._p["diagnostics_period"], self._publish_diagnostics)
        self.create_timer(0.2, self._check_done)
        self.get_logger().info(
            f"evaluating '{self.resolve_topic_name('segmentation')}' against "
            f"'{self.resolve_topic_name('ground_truth')}'"
            + (" class-agnostically (segment everything)" if self.everything else "")
            + f"; report to {self.report_dir}"
        )

    # ----------------------------------------------------------------- parameters
    def _on_params_set(self, params: list[Any]) -> None:
        for param in params:
            self._p[param.name] = param.value

    @property
    def report_dir(self) -> Path:
        return Path(str(self._p["report_dir"])).expanduser()

    @property
    def expected_frames(self) -> int:
        """``expected_frames``, else the frame count of /dataset/info (0: unknown)."""
        return int(self._p["expected_frames"]) or self._info_frames

    # ------------------------------------------------------------------- inputs
    def _problem(self, counter: str, text: str) -> None:
        self._bad[counter] += 1
        self._last_problem = text
        key = f"{counter}:{text[:60]}"
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text + " (further occurrences counted in /diagnostics)")

    def _on_incompatible(self, topic: str, event: Any) -> None:
        self._problem(
            "incompatible_publishers",
            f"a publisher on '{self.resolve_topic_name(topic)}' offers a QoS this node "
            f"cannot match (policy {event.last_policy_kind}); with input_durability "
            f"'{self._p['input_durability']}' a volatile publisher is not received: set "
            "input_durability:=volatile for it",
        )

    def _on_ground_truth(self, msg: Segmentation) -> None:
        try:
            self.session.add_ground_truth_msg(msg, time.monotonic())
        except (MaskFormatError, BagError, ValueError) as err:
            self._problem("bad_ground_truth", f"ground truth rejected: {err}")
            return
        self._data_version += 1

    def _on_result(self, msg: Segmentation) -> None:
        image = self._images.pop(stamp_ns(msg.header), None)
        try:
            self.session.add_result_msg(msg, time.monotonic(), image)
        except (MaskFormatError, BagError, ValueError) as err:
            self._problem("bad_results", f"result rejected: {err}")
            return
        self._data_version += 1

    def _on_image(self, msg: Image) -> None:
        try:
            rgb = _to_rgb(msg)
        except ImageError as err:
            self._problem("bad_images", f"image ignored: {err}")
            return
        self._images[stamp_ns(msg.header)] = rgb
        while len(self._images) > MAX_KEPT_IMAGES:
            self._images.popitem(last=False)

    def _on_info(self, msg: String) -> None:
        try:
            info = self.session.set_dataset_info_json(str(msg.data))
        except BagError as err:
            self._problem("bad_info", f"{INFO_TOPIC} ignored: {err}")
            return
        frames = len(info.image_ids)
        if frames != self._info_frames:
            self._info_frames = frames
            self.get_logger().info(
                f"{INFO_TOPIC}: {frames} frames, {len(info.objects)} instances, "
                f"{len(info.categories)} categories"
            )

    # ------------------------------------------------------------------- report
    def write_report(self, final: bool = True) -> Path:
        """Write report.json and the plots (or everything.json) now; returns the report's
        path."""
        source = {
            "tool": "evaluator_node",
            "mode": self._p["mode"],
            "node": self.get_fully_qualified_name(),
            "ground_truth_topic": self.resolve_topic_name("ground_truth"),
            "segmentation_topic": self.resolve_topic_name("segmentation"),
            "expected_frames": self.expected_frames,
            "rejected_messages": dict(self._bad),
        }
        report, files = self.session.write(self.report_dir, source=source, final=final)
        self._written_version = self._data_version
        self.report_path = files[0]
        self.get_logger().info(
            f"report written: {', '.join(str(f) for f in files)}\n"
            + self.session.format_report(report)
        )
        return files[0]

    def _warn_one_sided(self) -> None:
        """Name the usual cause when one input stream stayed empty: its publisher and
        this node never matched (discovery), which no count can show by itself."""
        counts = self.session.evaluator.counts()
        streams = {
            "ground_truth": counts["ground_truth_frames"],
            "segmentation": counts["result_frames"],
        }
        empty = [topic for topic, frames in streams.items() if frames == 0]
        if len(empty) == 1:
            other = "segmentation" if empty[0] == "ground_truth" else "ground_truth"
            self.get_logger().warning(
                f"received {streams[other]} frame(s) on '{self.resolve_topic_name(other)}' "
                f"but nothing on '{self.resolve_topic_name(empty[0])}': its publisher never "
                "reached this node (is it running, on this ROS_DOMAIN_ID, with the same "
                "FASTRTPS_DEFAULT_PROFILES_FILE?)"
            )

    def _finish(self, why: str) -> None:
        self.get_logger().info(f"finishing: {why}")
        self._warn_one_sided()
        self._finished_version = self._data_version
        try:
            self.write_report(final=True)
        except OSError as err:
            self.get_logger().error(f"cannot write the report to {self.report_dir}: {err}")
        if self._p["exit_when_done"] and not self.done.done():
            self.done.set_result(why)

    def _check_done(self) -> None:
        if self.done.done():
            return
        expected = self.expected_frames
        evaluated = self.session.evaluator.frames_evaluated
        if expected and evaluated >= expected and not self._expected_reached:
            self._expected_reached = True
            self._finish(f"all {expected} expected frames evaluated")
            return
        if self._finished_version == self._data_version:
            return  # nothing new since the last report
        idle = float(self._p["idle_timeout_s"])
        last = self.session.last_data_s
        if idle > 0.0 and last is not None and time.monotonic() - last >= idle:
            self._finish(f"no new data for {idle:.1f} s ({evaluated} frames evaluated)")

    def destroy_node(self) -> None:
        self.finish_on_shutdown()
        super().destroy_node()

    def finish_on_shutdown(self) -> None:
        """Write the report when something changed since the last one."""
        if self._data_version != self._written_version and self._data_version > 0:
            try:
                self.write_report(final=True)
            except OSError as err:
                self.get_logger().error(f"cannot write the report to {self.report_dir}: {err}")

    def _on_write_report(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        try:
            path = self.write_report(final=False)
        except OSError as err:
            resp.success = False
            resp.message = f"cannot write the report to {self.report_dir}: {err}"
            return resp
        resp.success = True
        resp.message = f"{path}: {self.session.headline()}"
        return resp

    # -------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        counts = self.session.evaluator.counts()
        trouble = sum(counts[k] for k in self.session.TROUBLE_COUNTS) + sum(self._bad.values())
        level = DiagnosticStatus.WARN if trouble else DiagnosticStatus.OK
        message = f"evaluated: {self.session.headline()}"
        if self._last_problem:
            message += f"; last problem: {self._last_problem}"
        values = {
            "frames_evaluated": str(counts["frames_evaluated"]),
            "expected_frames": str(self.expected_frames),
            "instances_evaluated": str(counts["instances_evaluated"]),
            **self.session.running_figures(),
            **{k: str(v) for k, v in counts.items()},
            **{k: str(v) for k, v in self._bad.items()},
            "report": str(self.report_path or ""),
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: evaluation",
            message=message,
            hardware_id="evaluator",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)


def main(args: list[str] | None = None) -> None:
    spin_until_shutdown(
        EvaluatorNode,
        "evaluator_node",
        args,
        finished=lambda node: bool(node._p["exit_when_done"]) and node.done.done(),
    )


if __name__ == "__main__":
    main()
