"""segmenter_node: PicoSAM2 through onnxruntime on any image topic.

Wiring only; the segmentation itself is picosam2_ros.core.pipeline.segment_frame.

Topics (relative to the node, remappable):
  in   image         sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8)
  in   prompts       picosam2_ros/Prompt (standing, by object_id)
  in   prompt_point  geometry_msgs/PointStamped (pixels; adds an object)
  in   click         geometry_msgs/Point (rqt_image_view `<image>_mouse_left`; adds an object)
  out  mask          sensor_msgs/Image mono8, full frame, 0/255 union of all objects,
                     built only while subscribed (segmentation carries every mask)
  out  segmentation  picosam2_ros/Segmentation, one mask per object (reliable,
                     TRANSIENT_LOCAL depth 10: see picosam2_ros.nodes.qos)
  out  overlay       sensor_msgs/Image bgr8, computed only while subscribed
  out  /diagnostics  diagnostic_msgs/DiagnosticArray
  out  everything    picosam2_ros/Segmentation, every object without prompts, while
                     everything_rate_hz > 0
Services: clear_prompts (std_srvs/Trigger), remove_object (picosam2_ros/RemoveObject),
segment_everything (picosam2_ros/SegmentEverything).
The prompt topics and services are picosam2_ros.nodes.prompt_inputs.PromptedNode;
segment everything is picosam2_ros.nodes.everything.EverythingServer.

Threading: the image callback only parks the newest frame in a one-slot mailbox; a
worker thread segments it. A frame that arrives while the previous one is still
waiting replaces it and is counted as dropped, so the node never builds a backlog. A
frame is segmented with the prompts that stood when it arrived.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from picosam2_ros.backends.base import InferenceBackend, ModelLoadError
from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.overlay import render_overlay
from picosam2_ros.core.pipeline import CropSettings, ObjectStatus, segment_frame, union_mask
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.core.stats import LatencyWindow, LatestFrameSlot, RateMeter
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.io.image import ImageError, array_to_image, image_to_array
from picosam2_ros.io.messages import frame_to_msg
from picosam2_ros.msg import Segmentation
from picosam2_ros.nodes.everything import EverythingServer
from picosam2_ros.nodes.params import (
    DIAGNOSTICS_PERIOD,
    IMAGE_QOS,
    ParamSpec,
    declare_all,
    image_qos_profile,
)
from picosam2_ros.nodes.prompt_inputs import PromptedNode
from picosam2_ros.nodes.qos import RESULTS_QOS
from picosam2_ros.nodes.startup import spin_until_shutdown
from picosam2_ros.resources import resolve_model_paths

PARAMS = (
    ParamSpec(
        "point_model",
        "",
        "ONNX model for point prompts and clicks (PicoSAM2 contract: [N,3,96,96] in, "
        "[N,1,96,96] logits out); empty = the shipped default",
    ),
    ParamSpec(
        "box_model",
        "",
        "ONNX model for box prompts; empty = the shipped box model, or the point model "
        "when none ships",
    ),
    ParamSpec("threads", 1, "onnxruntime intra-op threads", int_range=(1, 64)),
    ParamSpec(
        "crop_side_px",
        96,
        "side of a point prompt's square crop in image pixels (96 = the PicoSAM2 paper)",
        int_range=(8, 8192),
    ),
    ParamSpec(
        "crop_side_fraction",
        0.0,
        "if > 0, a point crop's side is this fraction of the image's shorter side "
        "(overrides crop_side_px)",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "whole_object",
        False,
        "point prompts and clicks return the whole object: point-model windows of growing "
        "size find it, the last one's mask is the answer (up to 3 network runs per point; "
        "core.whole_object); with point_model empty the shipped zoom model "
        "(picosam2_point_zoom.onnx) runs the windows; false = the native crop around the "
        "point (the paper's)",
    ),
    ParamSpec(
        "box_margin",
        1.1,
        "a box prompt's crop side = box_margin x the box's longer side",
        float_range=(1.0, 4.0),
    ),
    ParamSpec(
        "mask_threshold",
        0.0,
        "logit threshold for the mask (0.0 = sigmoid 0.5)",
        float_range=(-20.0, 20.0),
    ),
    ParamSpec("max_objects", 8, "most standing prompts at once", int_range=(1, 255)),
    ParamSpec(
        "lost_after",
        15,
        "frames with an empty mask before a tracked object is reported lost",
        int_range=(1, 100000),
    ),
    ParamSpec(
        "track_clicks",
        False,
        "prompts made by prompt_point and click follow their object from frame to frame",
    ),
    ParamSpec(
        "image_qos",
        "sensor_data",
        "QoS of the image subscription: sensor_data (best effort) or reliable",
        choices=tuple(IMAGE_QOS),
        read_only=True,
    ),
    DIAGNOSTICS_PERIOD,
)

# whole_object picks the default point model (resources.resolve_model_paths).
_MODEL_PARAMS = ("point_model", "box_model", "threads", "whole_object")


class SegmenterNode(PromptedNode, EverythingServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("segmenter", **kwargs)
        self._p = declare_all(self, PARAMS, self._check_param)
        self.add_post_set_parameters_callback(self._on_params_set)

        self._lock = threading.Lock()
        self._book = PromptBook(self._p["max_objects"], self._p["lost_after"])
        self._backends: dict[str, InferenceBackend] | None = None
        self._backend_name = ""
        self._model_info: dict[str, str] = {}
        self._model_error = ""

        #: The newest frame with the prompts that stood when it arrived.
        self._slot: LatestFrameSlot[tuple[Image, list[ObjectPrompt]]] = LatestFrameSlot()
        self._rate_in = RateMeter()
        self._rate_out = RateMeter()
        self._inference_ms = LatencyWindow()
        self._processing_ms = LatencyWindow()
        self._counts = dict.fromkeys(
            (
                "frames_in",
                "frames_out",
                "bad_images",
                "objects_skipped",
                "frames_without_model",
            ),
            0,
        )
        self._init_prompt_inputs()
        self._load_models()

        self._mask_pub = self.create_publisher(Image, "mask", 10)
        self._seg_pub = self.create_publisher(Segmentation, "segmentation", RESULTS_QOS)
        self._overlay_pub = self.create_publisher(Image, "overlay", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(
            Image, "image", self._on_image, image_qos_profile(self._p["image_qos"])
        )
        self.create_timer(self._p["diagnostics_period"], self._publish_diagnostics)

        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="segmenter-worker", daemon=True)
        self._worker.start()
        self._init_everything()
        self.get_logger().info(
            f"segmenting '{self.resolve_topic_name('image')}' "
            f"(QoS {self._p['image_qos']}); models: {self._backend_name or 'none loaded'}"
        )

    # ----------------------------------------------------------------- parameters
    def _check_param(self, param: Parameter) -> str | None:
        if param.name in ("point_model", "box_model") and param.value:
            path = Path(str(param.value)).expanduser()
            if not path.is_file():
                return f"{param.name}: no such model file: {path}"
        return None

    def _on_params_set(self, params: list[Parameter]) -> None:
        for param in params:
            self._p[param.name] = param.value
        names = {p.name for p in params}
        with self._lock:
            if "max_objects" in names or "lost_after" in names:
                self._book.resize(self._p["max_objects"], self._p["lost_after"])
        if names & set(_MODEL_PARAMS):
            self._load_models()

    def _settings(self) -> CropSettings:
        return CropSettings(
            point_side_px=self._p["crop_side_px"],
            point_side_fraction=self._p["crop_side_fraction"],
            box_margin=self._p["box_margin"],
            threshold=self._p["mask_threshold"],
            whole_object=WholeObjectSettings() if self._p["whole_object"] else None,
        )

    def _load_models(self) -> None:
        """(Re)load the point and box models; on failure the node keeps serving without
        a model and reports ERROR in diagnostics until a working path is set."""
        paths = resolve_model_paths(
            self._p["point_model"], self._p["box_model"], self._p["whole_object"]
        )
        try:
            point = OnnxBackend(paths["point"], threads=self._p["threads"])
            box = (
                point
                if paths["box"] == paths["point"]
                else OnnxBackend(paths["box"], threads=self._p["threads"])
            )
        except ModelLoadError as err:
            with self._lock:
                self._backends = None
                self._model_error = str(err)
                self._backend_name = ""
            self.get_logger().error(f"no model loaded: {err}")
            return
        with self._lock:
            self._backends = {"point": point, "box": box}
            self._model_error = ""
            self._backend_name = point.name if box is point else f"{point.name} + {box.name}"
            self._model_info = {f"point_{k}": v for k, v in point.info.items()}
            self._model_info.update({f"box_{k}": v for k, v in box.info.items()})
        self.get_logger().info(f"loaded {self._backend_name}")

    # ------------------------------------------------------------------- images
    def _on_image(self, msg: Image) -> None:
        self._counts["frames_in"] += 1
        self._rate_in.tick()
        self._note_image(msg)
        # The prompts are taken now, not when the worker gets to the frame: prompts that
        # arrive meanwhile belong to later frames (a replay sends each frame's own).
        with self._lock:
            prompts = self._book.snapshot()
        self._slot.put((msg, prompts))

    def _work(self) -> None:
        while not self._stopping.is_set():
            taken = self._slot.take(timeout=0.2)
            if taken is None:
                continue
            try:
                self._segment(*taken)
            except Exception as err:  # the worker must outlive any single frame
                self._problem(f"crash:{type(err).__name__}", f"frame failed: {err!r}")

    def _segment(self, msg: Image, prompts: list[ObjectPrompt]) -> None:
        started = time.perf_counter()
        try:
            image = image_to_array(msg)
        except ImageError as err:
            self._problem(f"image:{err}", f"image rejected: {err}", "bad_images")
            return
        with self._lock:
            backends = self._backends
        if backends is None:
            self._problem(
                "no-model", f"frame not segmented: {self._model_error}", "frames_without_model"
            )
            return
        frame = segment_frame(image, msg.encoding, prompts, backends, self._settings())
        for obj in frame.objects:
            if obj.status == ObjectStatus.SKIPPED:
                self._problem(
                    f"skip:{obj.object_id}:{obj.reason}",
                    f"object {obj.object_id} skipped: {obj.reason}",
                    "objects_skipped",
                )
        with self._lock:
            self._book.update_tracking(frame.objects)
            lost = {obj.object_id for obj in frame.objects if self._book.is_lost(obj.object_id)}
        # The plain mask first: it is the smaller message most consumers wait for. A full
        # frame costs a copy, serialisation and transport per frame, so only for a reader.
        if self._mask_pub.get_subscription_count() > 0:
            self._mask_pub.publish(array_to_image(union_mask(frame), "mono8", msg.header))
        self._seg_pub.publish(frame_to_msg(frame, msg.header, self._backend_name, lost))
        if self._overlay_pub.get_subscription_count() > 0:
            overlay = render_overlay(image, msg.encoding, frame)
            self._overlay_pub.publish(array_to_image(overlay, "bgr8", msg.header))
        self._counts["frames_out"] += 1
        self._rate_out.tick()
        self._inference_ms.add(frame.inference_ms)
        self._processing_ms.add((time.perf_counter() - started) * 1000.0)

    # -------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        with self._lock:
            model_error = self._model_error
            standing = len(self._book)
            info = dict(self._model_info)
        recent_problem = self._recent_problem()
        if model_error:
            level, message = DiagnosticStatus.ERROR, f"no model: {model_error}"
        elif recent_problem:
            level, message = DiagnosticStatus.WARN, self._last_problem
        else:
            level, message = DiagnosticStatus.OK, "segmenting"
        values = {
            "input_rate_hz": f"{self._rate_in.rate():.2f}",
            "output_rate_hz": f"{self._rate_out.rate():.2f}",
            **{k: str(v) for k, v in self._counts.items()},
            "frames_dropped": str(self._slot.dropped),
            "standing_prompts": str(standing),
            "inference_p50_ms": f"{self._inference_ms.percentile(50):.2f}",
            "inference_p99_ms": f"{self._inference_ms.percentile(99):.2f}",
            "processing_p50_ms": f"{self._processing_ms.percentile(50):.2f}",
            "processing_p99_ms": f"{self._processing_ms.percentile(99):.2f}",
            "backend": self._backend_name or "none",
            "last_problem": self._last_problem,
            **self.everything_diagnostics(),
            **info,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: segmentation",
            message=message,
            hardware_id="onnxruntime",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def destroy_node(self) -> None:
        self._stopping.set()
        self._slot.close()
        self._worker.join(timeout=5.0)
        self._everything_thread.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_until_shutdown(SegmenterNode, "segmenter_node", args)


if __name__ == "__main__":
    main()
