"""camera_node: PicoSAM2 on the Raspberry Pi AI Camera (Sony IMX500), through picamera2.

The network runs ON THE SENSOR: the node opens the camera itself (only the process that
owns the camera receives the network's output), moves the sensor's inference ROI to the
prompts, and turns the output tensor into masks. Wiring only; the thinking is in
picosam2_ros.camera (sensor, scheduler, output) and picosam2_ros.core.

Topics (relative to the node, remappable):
  out  image_raw     sensor_msgs/Image bgr8 (picamera2's "RGB888" main stream is B, G, R),
                     converted and published only while subscribed
  out  camera_info   sensor_msgs/CameraInfo (calibration_file, or uncalibrated zeros)
  in   prompts       picosam2_ros/Prompt (standing, by object_id)
  in   prompt_point  geometry_msgs/PointStamped (pixels; adds an object)
  in   click         geometry_msgs/Point (rqt_image_view `<image>_mouse_left`; adds an object)
  out  mask          sensor_msgs/Image mono8, full frame, 0/255 union of every object's latest mask,
                     built and published only while subscribed (segmentation has the masks)
  out  segmentation  picosam2_ros/Segmentation: every standing object's latest result
                     (reliable, transient local: the package's results QoS)
  out  overlay       sensor_msgs/Image bgr8, computed only while subscribed
  out  everything    picosam2_ros/Segmentation: each completed sweep (picosam2_ros.camera.sweep)
  out  /diagnostics  diagnostic_msgs/DiagnosticArray
Services: clear_prompts (std_srvs/Trigger), remove_object (picosam2_ros/RemoveObject).
The prompt topics and services are picosam2_ros.nodes.prompt_inputs.PromptedNode.

One ROI per frame: prompts take turns on the sensor's inference ROI, a frame's output
belongs to the prompt whose ROI was certainly in force (the settle rule), and each object
in segmentation is its LATEST result with ``source_stamp`` the stamp of the frame it was
computed on (zero = no result yet, SKIPPED); tracked objects follow their masks and are
reported LOST after ``lost_after`` empty ones (picosam2_ros.camera.machine). mask,
segmentation and overlay go out for frames that carry a fresh result.

Stamps: ROS now - (monotonic now - picamera2's "SensorTimestamp", the start of readout
in CLOCK_MONOTONIC ns) (picosam2_ros.camera.sensor.sensor_timestamp_to_ros_ns).

Camera: picamera2 when importable. ``emulator_source`` selects the emulator
(picosam2_ros.camera.emulator) instead; never silently. Start-up problems (no network
file, picamera2 missing, camera absent or busy) print one error line and exit with
code 2. A camera error mid-stream sets diagnostics to ERROR; the node closes the camera
and reopens it with back-off (0.5 s doubling to ``reconnect_max_s``) and keeps serving.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from picosam2_ros.camera.api import (
    FW_NETWORK_STAGE,
    CameraStartError,
    attach_emulator,
    check_network,
    detach_emulator,
    load_camera_api,
    open_camera,
    start_upload_log,
)
from picosam2_ros.camera.calibration import UNCALIBRATED_WARNING, calibration_or_uncalibrated
from picosam2_ros.camera.machine import CameraStateMachine, DecodeSettings
from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.core.overlay import render_overlay
from picosam2_ros.core.pipeline import union_mask
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.stats import Laps, LatencyWindow, RateMeter
from picosam2_ros.io.messages import ImageSlot, camera_info_msg, frame_to_msg, stamp_from_ns
from picosam2_ros.msg import Segmentation
from picosam2_ros.nodes.camera_everything import SweepOutput
from picosam2_ros.nodes.camera_params import PARAMS
from picosam2_ros.nodes.params import declare_all, image_qos_profile
from picosam2_ros.nodes.prompt_inputs import PromptedNode
from picosam2_ros.nodes.qos import RESULTS_QOS
from picosam2_ros.nodes.startup import STARTUP_ERRORS, spin_until_shutdown

#: Seconds a camera error keeps diagnostics at ERROR after the camera recovered.
ERROR_HOLD_S = 3.0

#: Host-side stages of one frame, in order (timed per frame; bench/bench_camera.py).
STAGES = ("capture", "decode", "paste", "convert", "publish", "overlay")


class CameraNode(PromptedNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("camera", **kwargs)
        self._p = declare_all(self, PARAMS)
        self.add_post_set_parameters_callback(self._on_params_set)
        self._width, self._height = self._p["width"], self._p["height"]
        self._network = check_network(self._p["network"])
        self._calibration, calibrated = calibration_or_uncalibrated(
            self._p["calibration_file"], self._width, self._height
        )
        if not calibrated:
            self.get_logger().warning(UNCALIBRATED_WARNING)

        self._machine = CameraStateMachine(
            (self._width, self._height),
            PromptBook(self._p["max_objects"], self._p["lost_after"]),
            RoiScheduler(self._p["turn_frames"], self._p["settle_frames"]),
            DecodeSettings.from_params(self._p),
            ros_now_ns=lambda: self.get_clock().now().nanoseconds,
            report=self._problem,
        )
        # The prompt inputs (PromptedNode) change the machine's book under its lock.
        self._lock, self._book = self._machine.lock, self._machine.book
        #: Recent attributions (frame number, object id, sensor ROI), for inspection.
        self.attributions = self._machine.attributions
        self._union: np.ndarray | None = None
        self._stopping = threading.Event()

        self._rate_frames = RateMeter()
        self._rate_results = RateMeter()
        self._rate_switches = RateMeter()
        self._dnn_ms = LatencyWindow()
        self._dsp_ms = LatencyWindow()
        self._stage_ms = {name: LatencyWindow() for name in (*STAGES, "total", "total_cpu")}
        # The machine's frame counters, then the camera's own (diagnostics order).
        self._counts = self._machine.counts
        self._counts.update(camera_errors=0, reconnects=0)
        self._init_prompt_inputs()
        self._sweep = SweepOutput(self, self._machine, self._problem)
        self._sweep.configure(self._p)
        self._camera_error = ""
        self._camera_error_time = -1e9
        self._firmware = "not loaded"

        self._emulated_camera: Any = None
        self._api = self._load_api()
        self._imx500: Any = None
        self._picam2: Any = None
        try:
            self._open_camera()
        except CameraStartError:
            self._detach_emulator()
            raise

        qos = image_qos_profile(self._p["publish_qos"])
        self._image_pub = self.create_publisher(Image, "image_raw", qos)
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self._mask_pub = self.create_publisher(Image, "mask", qos)
        # The package's results QoS (reliable, transient local), as the segmenter's, so
        # the same consumers (the evaluator, late joiners) match both.
        self._seg_pub = self.create_publisher(Segmentation, "segmentation", RESULTS_QOS)
        self._overlay_pub = self.create_publisher(Image, "overlay", qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._image_slot, self._mask_slot, self._overlay_slot = (ImageSlot() for _ in range(3))
        self.create_timer(self._p["diagnostics_period"], self._publish_diagnostics)

        self._worker = threading.Thread(target=self._capture_loop, name="camera", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{self._api.name}: {self._width}x{self._height}, network {self._network}"
            + (f", frames from {self._p['emulator_source']}" if self._emulated_camera else "")
        )

    # ------------------------------------------------------------------ start-up
    def _load_api(self) -> SimpleNamespace:
        source = self._p["emulator_source"]
        api = load_camera_api(emulated=bool(source))
        if source:
            self._emulated_camera = attach_emulator(self._p)
            self.get_logger().warning(
                "EMULATED IMX500 (no camera): frames from "
                + self._emulated_camera.source.description
            )
        return api

    def _detach_emulator(self) -> None:
        if self._emulated_camera is not None:
            detach_emulator(self._emulated_camera)

    def _open_camera(self) -> None:
        camera_id = self._p["camera_id"]
        if self._emulated_camera is not None and not camera_id:
            camera_id = self._emulated_camera.camera_id

        def uploading(imx500: Any) -> None:
            self._firmware = "uploading"
            still = lambda: self._firmware == "uploading" and not self._stopping.is_set()  # noqa: E731
            start_upload_log(imx500, still, self.get_logger().info)

        imx500, picam2, raw_size = open_camera(
            self._api, self._network, camera_id, (self._width, self._height),
            self._p["frame_rate"], self._p["buffer_count"], uploading,
        )  # fmt: skip
        self._machine.camera_opened(imx500, raw_size)
        with self._lock:
            self._imx500, self._picam2 = imx500, picam2

    def _close_camera(self) -> None:
        with self._lock:
            picam2, self._picam2, self._imx500 = self._picam2, None, None
        if picam2 is not None:
            for step in (picam2.stop, picam2.close):
                try:
                    step()
                except Exception as exc:  # already broken; closing is best effort
                    self.get_logger().debug(f"while closing the camera: {exc!r}")

    # ---------------------------------------------------------------- parameters
    def _on_params_set(self, params: list[Parameter]) -> None:
        for param in params:
            self._p[param.name] = param.value
        names = {p.name for p in params}
        self._machine.settings = DecodeSettings.from_params(self._p)
        with self._lock:
            if names & {"max_objects", "lost_after"}:
                self._book.resize(self._p["max_objects"], self._p["lost_after"])
            if names & {"turn_frames", "settle_frames"}:
                self._machine.scheduler.configure(self._p["turn_frames"], self._p["settle_frames"])
        if SweepOutput.affected(names):
            self._sweep.configure(self._p)

    # ------------------------------------------------------------------- prompts
    def _prompt_frame_size(self) -> tuple[int, int]:
        return self._width, self._height

    def _prompt_changed(self, object_id: int) -> None:
        self._machine.prompt_changed(object_id)

    # -------------------------------------------------------------------- frames
    def _capture_loop(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            picam2 = self._picam2
            if picam2 is None:
                try:
                    self._open_camera()
                except CameraStartError as exc:
                    self._set_camera_error(f"reopening the camera failed: {exc}")
                    self._stopping.wait(backoff)
                    backoff = min(2 * backoff, self._p["reconnect_max_s"])
                    continue
                self._counts["reconnects"] += 1
                self.get_logger().info("camera reopened")
                continue
            try:
                request = picam2.capture_request()
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self._set_camera_error(f"camera error: {exc!r}")
                self._close_camera()
                self._stopping.wait(backoff)
                backoff = min(2 * backoff, self._p["reconnect_max_s"])
                continue
            backoff = 0.5
            try:
                self.handle_request(request)
            except Exception as exc:  # the camera loop must outlive any single frame
                self._problem(f"crash:{type(exc).__name__}", f"frame failed: {exc!r}")
            finally:
                request.release()

    def _set_camera_error(self, text: str) -> None:
        self._counts["camera_errors"] += 1
        self._camera_error = text
        self._camera_error_time = time.monotonic()
        self.get_logger().error(text)

    def handle_request(self, request: Any) -> None:
        """Everything the host does for one captured frame (timed per stage)."""
        laps = Laps()
        # Heavy outputs are built only for someone: copying the main stream out of the
        # request (3.7 MB at 1280x960) and publishing it costs more than everything else
        # the node does per frame, and a robot that consumes `segmentation` needs neither.
        want_image = self._image_pub.get_subscription_count() > 0
        want_overlay = self._overlay_pub.get_subscription_count() > 0
        want_mask = self._mask_pub.get_subscription_count() > 0
        image = request.make_array("main") if want_image or want_overlay else None
        metadata = request.get_metadata()
        laps.lap("capture")
        if self._firmware != "loaded":
            self._firmware = "loaded"
            self.get_logger().info("network firmware loaded; streaming")
        self._rate_frames.tick()
        frame = self._machine.read(metadata)
        header = Header(frame_id=self._p["frame_id"], stamp=stamp_from_ns(frame.stamp_ns))
        kpi = frame.kpi
        if kpi is not None:
            self._dnn_ms.add(kpi[0])
            self._dsp_ms.add(kpi[1])
        laps.lap("decode")

        outcome = self._machine.step(frame)
        if outcome.next_roi is not None:
            self._rate_switches.tick()
        fresh, result, lost = outcome.fresh, outcome.result, outcome.lost
        union = None
        if fresh and want_mask:
            union = self._union = union_mask(result, self._union)
        laps.lap("paste")

        image_msg = (
            self._image_slot.fill(image, "bgr8", header)
            if want_image and image is not None
            else None
        )
        info_msg = camera_info_msg(self._calibration, header)
        mask_msg = self._mask_slot.fill(union, "mono8", header) if union is not None else None
        seg_msg = None
        if fresh:
            stamps = [stamp_from_ns(o.stamp_ns) for o in outcome.objects]
            seg_msg = frame_to_msg(result, header, self._backend_name(), lost, stamps)
        laps.lap("convert")

        if image_msg is not None:
            self._image_pub.publish(image_msg)
        self._info_pub.publish(info_msg)
        if mask_msg is not None:
            self._mask_pub.publish(mask_msg)
        if seg_msg is not None:
            self._seg_pub.publish(seg_msg)
            self._rate_results.tick()
        self._sweep.publish(outcome.everything, header, self._backend_name())
        laps.lap("publish")

        if fresh and want_overlay and image is not None:
            overlay = render_overlay(image, "bgr8", result)
            self._overlay_pub.publish(self._overlay_slot.fill(overlay, "bgr8", header))
        laps.lap("overlay")
        for name, ms in laps.items():
            self._stage_ms[name].add(ms)
        self._stage_ms["total"].add(laps.total_ms)
        self._stage_ms["total_cpu"].add(laps.total_cpu_ms)

    def _backend_name(self) -> str:
        if self._emulated_camera is not None:
            return f"{self._api.name}:{self._emulated_camera.backend.path.name}"
        return f"{self._api.name}:{self._network.name}"

    # --------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        with self._lock:
            standing = len(self._book)
            streaming = self._picam2 is not None
            switches = self._machine.scheduler.switches
        now = time.monotonic()
        if not streaming or now - self._camera_error_time < ERROR_HOLD_S:
            level, message = DiagnosticStatus.ERROR, self._camera_error or "camera not open"
        elif self._recent_problem():
            level, message = DiagnosticStatus.WARN, self._last_problem
        else:
            level, message = DiagnosticStatus.OK, "streaming"
        firmware = self._firmware
        if firmware == "uploading" and self._imx500 is not None:
            current, total = self._imx500.get_fw_upload_progress(FW_NETWORK_STAGE)
            firmware = f"uploading {100 * current // max(total, 1)}%"
        values = {
            "camera": "streaming" if streaming else "reconnecting",
            "firmware": firmware,
            "frame_rate_hz": f"{self._rate_frames.rate():.2f}",
            "result_rate_hz": f"{self._rate_results.rate():.2f}",
            "roi_switches_per_s": f"{self._rate_switches.rate():.2f}",
            "roi_switches": str(switches),
            "prompt_rate_hz": f"{self._rate_prompts.rate():.2f}",
            **{k: str(v) for k, v in self._counts.items()},
            "standing_prompts": str(standing),
            "dnn_runtime_p50_ms": f"{self._dnn_ms.percentile(50):.2f}",
            "dsp_runtime_p50_ms": f"{self._dsp_ms.percentile(50):.2f}",
            "host_p50_ms": f"{self._stage_ms['total'].percentile(50):.2f}",
            "backend": self._backend_name(),
            "last_problem": self._last_problem,
            "last_camera_error": self._camera_error,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: imx500",
            message=message,
            hardware_id=self._api.name,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def stage_timings(self) -> dict[str, LatencyWindow]:
        """Per-stage host time of the recent frames, milliseconds (for benchmarks)."""
        return self._stage_ms

    def destroy_node(self) -> None:
        self._stopping.set()
        self._worker.join(timeout=5.0)
        self._close_camera()
        self._detach_emulator()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_until_shutdown(CameraNode, "camera_node", args, (*STARTUP_ERRORS, CameraStartError))


if __name__ == "__main__":
    main()
