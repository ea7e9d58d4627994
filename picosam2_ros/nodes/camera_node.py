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
  out  /diagnostics  diagnostic_msgs/DiagnosticArray
Services: clear_prompts (std_srvs/Trigger), remove_object (picosam2_ros/RemoveObject).
The prompt topics and services are picosam2_ros.nodes.prompt_inputs.PromptedNode.

One ROI per frame. The sensor runs the network on one region per frame, so standing
prompts take turns (``turn_frames`` attributed frames each, ascending object id). A
frame's output is attributed to a prompt only when that prompt's ROI was in force for
it: after an ROI change the next ``settle_frames`` frames belong to nobody (the settle
rule, see picosam2_ros.camera.scheduler). mask, segmentation and overlay are published
for frames that carry a fresh result, stamped with that frame's header; each object in
segmentation is its LATEST result, and its ``source_stamp`` is the stamp of the frame it
was computed on (header.stamp - source_stamp = its age; zero = no result yet, reported
SKIPPED). Tracked prompts are re-centred on each new mask; an object whose mask stays
empty (or below ``min_score``) for ``lost_after`` of its frames is reported LOST and
keeps its turn at its last position.

Stamps: picamera2's "SensorTimestamp" is nanoseconds of CLOCK_MONOTONIC at the start of
readout; the stamp is ROS now - (monotonic now - SensorTimestamp)
(picosam2_ros.camera.sensor.sensor_timestamp_to_ros_ns).

Camera: picamera2 when importable. ``emulator_source`` selects the emulator
(picosam2_ros.camera.emulator) instead; never silently. Start-up problems (no network
file, picamera2 missing, camera absent or busy) print one error line and exit with
code 2. A camera error mid-stream sets diagnostics to ERROR; the node closes the camera
and reopens it with back-off (0.5 s doubling to ``reconnect_max_s``) and keeps serving.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from picosam2_ros.backends.base import ModelLoadError
from picosam2_ros.camera.calibration import (
    Calibration,
    CalibrationError,
    calibration_from_dict,
    uncalibrated,
)
from picosam2_ros.camera.output import OutputError, mask_result, tensor_to_logits
from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.camera.sensor import StreamGeometry, prompt_to_roi, sensor_timestamp_to_ros_ns
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.overlay import render_overlay
from picosam2_ros.core.pipeline import (
    EMPTY_ROI,
    FrameResult,
    ObjectResult,
    ObjectStatus,
    union_mask,
)
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt, PromptError
from picosam2_ros.core.stats import LatencyWindow, RateMeter
from picosam2_ros.io.messages import object_to_msg
from picosam2_ros.msg import Segmentation
from picosam2_ros.nodes.params import (
    DIAGNOSTICS_PERIOD,
    IMAGE_QOS,
    ParamSpec,
    declare_all,
    image_qos_profile,
)
from picosam2_ros.nodes.prompt_inputs import PromptedNode
from picosam2_ros.nodes.qos import RESULTS_QOS
from picosam2_ros.nodes.startup import STARTUP_ERRORS, spin_until_shutdown

#: picamera2's firmware upload stage of the network (FW_NETWORK_STAGE).
FW_NETWORK_STAGE = 2
#: Seconds a camera error keeps diagnostics at ERROR after the camera recovered.
ERROR_HOLD_S = 3.0

PARAMS = (
    ParamSpec(
        "network",
        "",
        "IMX500 network package (.rpk) holding PicoSAM2 (imx500-package output); required",
        read_only=True,
    ),
    ParamSpec(
        "camera_id",
        "",
        "picamera2 IMX500 camera_id when several AI Cameras are connected; empty = the first",
        read_only=True,
    ),
    ParamSpec(
        "emulator_source",
        "",
        "run the picamera2 emulator instead of the camera on: an image folder, a rosbag2, "
        "scene[:SEED[:N]] or moving[:SEED]; empty = the real camera through picamera2",
        read_only=True,
    ),
    ParamSpec(
        "emulator_model",
        "",
        "ONNX model the emulator runs in place of the network; empty = the shipped point model",
        read_only=True,
    ),
    ParamSpec(
        "emulator_rate",
        30.0,
        "emulator frames per second",
        float_range=(0.1, 2000.0),
        read_only=True,
    ),
    ParamSpec(
        "emulator_no_output_share",
        0.0,
        "emulator: share of frames without a network output",
        float_range=(0.0, 0.95),
        read_only=True,
    ),
    ParamSpec(
        "emulator_roi_lag_frames",
        2,
        "emulator: frames after the next one that still use the previous ROI",
        int_range=(0, 30),
        read_only=True,
    ),
    ParamSpec(
        "emulator_fail_at_frame",
        0,
        "emulator: raise a camera error once at this frame (fault drill); 0 = never",
        int_range=(0, 1_000_000_000),
        read_only=True,
    ),
    ParamSpec(
        "emulator_upload_s",
        0.5,
        "emulator: seconds the network firmware upload takes",
        float_range=(0.0, 600.0),
        read_only=True,
    ),
    ParamSpec("width", 640, "main stream width, pixels", int_range=(64, 4056), read_only=True),
    ParamSpec("height", 480, "main stream height, pixels", int_range=(48, 3040), read_only=True),
    ParamSpec(
        "frame_rate",
        0.0,
        "camera frame rate; 0 = the network's inference rate (30 by default)",
        float_range=(0.0, 120.0),
        read_only=True,
    ),
    ParamSpec("buffer_count", 4, "picamera2 buffers", int_range=(2, 16), read_only=True),
    ParamSpec("frame_id", "camera_optical_frame", "frame_id of every header", read_only=True),
    ParamSpec(
        "calibration_file",
        "",
        "camera calibration YAML (camera_calibration format); empty = uncalibrated camera_info",
        read_only=True,
    ),
    ParamSpec(
        "roi_side_px",
        96,
        "side of a point prompt's square ROI in main-stream pixels",
        int_range=(8, 4056),
    ),
    ParamSpec(
        "box_margin",
        1.1,
        "a box prompt's ROI side = box_margin x the box's longer side",
        float_range=(1.0, 4.0),
    ),
    ParamSpec(
        "mask_threshold", 0.0, "logit threshold (0.0 = sigmoid 0.5)", float_range=(-20.0, 20.0)
    ),
    ParamSpec(
        "box_prior_weight",
        8.0,
        "box prompts: decode the network's logits with the box (core.box_prior: nothing "
        "outside it, its inscribed ellipse favoured by this weight); 8 is calibrated for the "
        "shipped point network on held-out training box crops; 0 = plain logits",
        float_range=(0.0, 50.0),
    ),
    ParamSpec(
        "min_score",
        0.0,
        "masks with a lower stability score count as empty (towards losing a tracked object)",
        float_range=(0.0, 1.0),
    ),
    ParamSpec("max_objects", 8, "most standing prompts at once", int_range=(1, 255)),
    ParamSpec(
        "lost_after",
        15,
        "empty masks in a row (of the object's own frames) before it is reported lost",
        int_range=(1, 100000),
    ),
    ParamSpec("track_clicks", False, "prompts made by prompt_point and click track their object"),
    ParamSpec(
        "turn_frames",
        2,
        "attributed frames each prompt keeps the sensor ROI before the next prompt's turn",
        int_range=(1, 10000),
    ),
    ParamSpec(
        "settle_frames",
        2,
        "frames after an ROI change that are attributed to nobody (>= the camera's ROI lag)",
        int_range=(0, 30),
    ),
    ParamSpec(
        "publish_qos",
        "reliable",
        "QoS of image_raw, camera_info, mask and overlay: reliable (system default) or "
        "sensor_data (best effort); segmentation always uses the results QoS",
        choices=tuple(IMAGE_QOS),
        read_only=True,
    ),
    ParamSpec(
        "reconnect_max_s",
        5.0,
        "longest wait between attempts to reopen a failed camera, seconds",
        float_range=(0.1, 300.0),
        read_only=True,
    ),
    DIAGNOSTICS_PERIOD,
)

#: Host-side stages of one frame, in order (timed per frame; bench/bench_camera.py).
STAGES = ("capture", "decode", "paste", "convert", "publish", "overlay")


class CameraStartError(RuntimeError):
    """The camera cannot be used at start-up; the message says why and what to do."""


@dataclass
class _Latest:
    """An object's newest result and the stamp of the frame it was computed on."""

    result: ObjectResult
    stamp: Time


def load_camera_api(emulated: bool) -> SimpleNamespace:
    """picamera2's IMX500, NetworkIntrinsics and Picamera2, or the emulator's."""
    if emulated:
        from picosam2_ros.camera import emulator

        return SimpleNamespace(
            IMX500=emulator.IMX500,
            NetworkIntrinsics=emulator.NetworkIntrinsics,
            Picamera2=emulator.Picamera2,
            name="imx500-emulator",
        )
    try:
        picamera2 = importlib.import_module("picamera2")
        devices = importlib.import_module("picamera2.devices")
        imx500_module = importlib.import_module("picamera2.devices.imx500")
    except ImportError as exc:
        raise CameraStartError(
            f"picamera2 is not importable ({exc}). On Raspberry Pi OS: sudo apt install "
            "python3-picamera2 imx500-all (and let ROS's Python see the system packages); "
            "to run without the camera set the parameter emulator_source"
        ) from None
    return SimpleNamespace(
        IMX500=devices.IMX500,
        NetworkIntrinsics=imx500_module.NetworkIntrinsics,
        Picamera2=picamera2.Picamera2,
        name="imx500",
    )


class _ImageSlot:
    """One sensor_msgs/Image reused for every publish on one topic.

    rclpy converts and serialises a message inside ``publish()``, so the message is free
    again once publish returns. Refilling its data array in place copies the frame once
    and allocates nothing: a fresh 3.7 MB array per 1280x960 frame would also cost the
    page faults of new memory (io.image's array_to_image copies twice, through bytes).
    """

    def __init__(self) -> None:
        self._msg: Image | None = None

    def fill(self, array: np.ndarray, encoding: str, header: Header) -> Image:
        height, width = array.shape[:2]
        channels = array.shape[2] if array.ndim == 3 else 1
        flat = np.ascontiguousarray(array, dtype=np.uint8).reshape(-1)
        msg = self._msg
        if msg is None or len(msg.data) != flat.size:
            msg = Image()
            msg.data.frombytes(flat)
            self._msg = msg
        else:
            memoryview(msg.data)[:] = flat
        msg.header = header
        msg.height, msg.width, msg.step = height, width, width * channels
        msg.encoding = encoding
        msg.is_bigendian = 0
        return msg


def _stamp(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


class CameraNode(PromptedNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("camera", **kwargs)
        self._p = declare_all(self, PARAMS)
        self.add_post_set_parameters_callback(self._on_params_set)
        self._width, self._height = self._p["width"], self._p["height"]
        self._network = self._check_network(self._p["network"])
        self._calibration = self._load_calibration(self._p["calibration_file"])

        self._lock = threading.Lock()
        self._book = PromptBook(self._p["max_objects"], self._p["lost_after"])
        self._scheduler = RoiScheduler(self._p["turn_frames"], self._p["settle_frames"])
        self._revisions: dict[int, int] = {}  # bumped whenever a user replaces a prompt
        self._turn_revision = 0
        self._turns_seen = 0
        self._latest: dict[int, _Latest] = {}
        self._frame = 0
        self._union: np.ndarray | None = None
        self._attributed = False  # whether the frame being handled was attributed
        #: Recent attributions (frame number, object id, sensor ROI), for inspection.
        self.attributions: deque[tuple[int, int, Roi]] = deque(maxlen=2000)
        self._stopping = threading.Event()

        self._rate_frames = RateMeter()
        self._rate_results = RateMeter()
        self._rate_switches = RateMeter()
        self._dnn_ms = LatencyWindow()
        self._dsp_ms = LatencyWindow()
        self._stage_ms = {name: LatencyWindow() for name in (*STAGES, "total", "total_cpu")}
        self._counts = dict.fromkeys(
            (
                "frames",
                "frames_without_output",
                "frames_settling",
                "frames_stale_prompt",
                "results",
                "bad_outputs",
                "camera_errors",
                "reconnects",
            ),
            0,
        )
        self._init_prompt_inputs()
        self._camera_error = ""
        self._camera_error_time = -1e9
        self._firmware = "not loaded"

        self._emulated_camera: Any = None
        self._api = self._load_api()
        self._imx500: Any = None
        self._picam2: Any = None
        self._geometry = StreamGeometry((self._width, self._height))
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
        self._image_slot, self._mask_slot, self._overlay_slot = (_ImageSlot() for _ in range(3))
        self.create_timer(self._p["diagnostics_period"], self._publish_diagnostics)

        self._worker = threading.Thread(target=self._capture_loop, name="camera", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{self._api.name}: {self._width}x{self._height}, network {self._network}"
            + (f", frames from {self._p['emulator_source']}" if self._emulated_camera else "")
        )

    # ------------------------------------------------------------------ start-up
    def _check_network(self, value: str) -> Path:
        if not value:
            raise ValueError("network: set the path of the PicoSAM2 network package (.rpk)")
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"network: no such file: {path}")
        try:
            with path.open("rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise ValueError(f"network: cannot read {path}: {exc.strerror or exc}") from None
        return path

    def _load_calibration(self, value: str) -> Calibration:
        if not value:
            self.get_logger().warning(
                "no calibration_file: camera_info is uncalibrated (K, R, P all zero); "
                "calibrate with camera_calibration and set calibration_file"
            )
            return uncalibrated(self._width, self._height)
        import yaml

        path = Path(value).expanduser()
        try:
            data = yaml.safe_load(path.read_text())
            if not isinstance(data, dict):
                raise CalibrationError("not a YAML mapping")
            return calibration_from_dict(data, self._width, self._height)
        except (OSError, yaml.YAMLError, CalibrationError) as exc:
            raise ValueError(f"calibration_file {path}: {exc}") from None

    def _load_api(self) -> SimpleNamespace:
        source = self._p["emulator_source"]
        api = load_camera_api(emulated=bool(source))
        if not source:
            return api
        from picosam2_ros.camera import emulator

        settings = emulator.EmulatorSettings(
            source=source,
            model=self._p["emulator_model"],
            frame_rate=self._p["emulator_rate"],
            no_output_share=self._p["emulator_no_output_share"],
            roi_lag_frames=self._p["emulator_roi_lag_frames"],
            fail_at_frame=self._p["emulator_fail_at_frame"],
            upload_s=self._p["emulator_upload_s"],
        )
        try:
            self._emulated_camera = emulator.attach_camera(settings)
        except (emulator.SourceError, ModelLoadError, ValueError) as exc:
            raise CameraStartError(f"emulator: {exc}") from None
        self.get_logger().warning(
            f"EMULATED IMX500 (no camera): frames from {self._emulated_camera.source.description}"
        )
        return api

    def _detach_emulator(self) -> None:
        if self._emulated_camera is not None:
            from picosam2_ros.camera import emulator

            emulator.detach_camera(self._emulated_camera)

    def _open_camera(self) -> None:
        """IMX500(network) first (it uploads the network and finds the camera number),
        then Picamera2(imx500.camera_num), as picamera2 requires."""
        camera_id = self._p["camera_id"]
        if self._emulated_camera is not None and not camera_id:
            camera_id = self._emulated_camera.camera_id
        try:
            imx500 = self._api.IMX500(str(self._network), camera_id)
        except Exception as exc:
            raise CameraStartError(
                f"no IMX500 AI Camera ({exc}); check the ribbon cable and that the "
                "imx500 driver is loaded (dtoverlay), or set emulator_source"
            ) from None
        intrinsics = imx500.network_intrinsics or self._api.NetworkIntrinsics()
        intrinsics.task = "segmentation"
        intrinsics.update_with_defaults()
        rate = self._p["frame_rate"] or float(intrinsics.inference_rate or 30.0)
        try:
            picam2 = self._api.Picamera2(imx500.camera_num)
        except Exception as exc:
            raise CameraStartError(
                f"camera {imx500.camera_num} cannot be opened (absent, or busy in another "
                f"process): {exc}"
            ) from None
        try:
            config = picam2.create_preview_configuration(
                main={"size": (self._width, self._height), "format": "RGB888"},
                controls={"FrameRate": rate},
                buffer_count=self._p["buffer_count"],
            )
            self._firmware = "uploading"
            self._watch_firmware(imx500)
            picam2.start(config)
            raw_size = tuple(picam2.camera_configuration()["raw"]["size"])
        except Exception as exc:
            with contextlib.suppress(Exception):  # already failing; report the cause
                picam2.close()
            raise CameraStartError(f"camera cannot be started: {exc}") from None
        with self._lock:
            self._imx500, self._picam2 = imx500, picam2
            self._geometry = StreamGeometry((self._width, self._height), raw_size)
            # A reopened sensor starts from the full-sensor ROI: plan the turns afresh.
            self._scheduler = RoiScheduler(self._p["turn_frames"], self._p["settle_frames"])
            self._turns_seen = 0

    def _watch_firmware(self, imx500: Any) -> None:
        """Log the network firmware upload (it can take minutes the first time) until the
        first frame arrives."""

        def watch() -> None:
            logged = -1
            while self._firmware == "uploading" and not self._stopping.is_set():
                current, total = imx500.get_fw_upload_progress(FW_NETWORK_STAGE)
                if total:
                    percent = int(100 * current / total)
                    if percent // 25 > logged:
                        logged = percent // 25
                        self.get_logger().info(
                            f"network firmware upload: {percent}% of {total} bytes"
                        )
                time.sleep(0.1)

        threading.Thread(target=watch, name="firmware-progress", daemon=True).start()

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
        with self._lock:
            if names & {"max_objects", "lost_after"}:
                self._book.resize(self._p["max_objects"], self._p["lost_after"])
            if names & {"turn_frames", "settle_frames"}:
                self._scheduler.configure(self._p["turn_frames"], self._p["settle_frames"])

    # ------------------------------------------------------------------- prompts
    def _prompt_frame_size(self) -> tuple[int, int]:
        return self._width, self._height

    def _prompt_changed(self, object_id: int) -> None:
        """Outputs already on their way are of the old prompt: bump its revision, drop
        its latest result and end its turn (lock held)."""
        self._revisions[object_id] = self._revisions.get(object_id, 0) + 1
        self._latest.pop(object_id, None)
        self._scheduler.end_turn(object_id)

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
        laps = _Laps()
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
        self._frame += 1
        frame = self._frame
        self._counts["frames"] += 1
        self._rate_frames.tick()
        now_ns = self.get_clock().now().nanoseconds
        stamp_ns = sensor_timestamp_to_ros_ns(
            int(metadata.get("SensorTimestamp", time.monotonic_ns())), now_ns, time.monotonic_ns()
        )
        header = Header(frame_id=self._p["frame_id"], stamp=_stamp(stamp_ns))
        imx500 = self._imx500
        kpi = imx500.get_kpi_info(metadata)
        if kpi is not None:
            self._dnn_ms.add(kpi[0])
            self._dsp_ms.add(kpi[1])
        outputs = imx500.get_outputs(metadata)
        if outputs is None:
            self._counts["frames_without_output"] += 1
        geometry = self._geometry
        if "ScalerCrop" in metadata:
            geometry = StreamGeometry(
                geometry.main_size, geometry.raw_size, Roi(*metadata["ScalerCrop"])
            )
        laps.lap("decode")

        fresh = self._attribute(frame, outputs, geometry, header.stamp)
        new_roi = self._plan_next(frame, geometry)
        if new_roi is not None:
            imx500.set_inference_roi_abs((new_roi.x, new_roi.y, new_roi.width, new_roi.height))
            self._rate_switches.tick()
        with self._lock:
            standing = self._book.snapshot()
            latest = dict(self._latest)
            lost = {p.object_id for p in standing if self._book.is_lost(p.object_id)}
        objects = [self._object_for(p, latest.get(p.object_id)) for p in standing]
        result = FrameResult(self._width, self._height, [o.result for o in objects], 0.0)
        union = self._union_of(result) if fresh and want_mask else None
        laps.lap("paste")

        image_msg = (
            self._image_slot.fill(image, "bgr8", header)
            if want_image and image is not None
            else None
        )
        info_msg = self._camera_info(header)
        mask_msg = self._mask_slot.fill(union, "mono8", header) if union is not None else None
        seg_msg = None
        if fresh:
            seg_msg = Segmentation(
                header=header,
                image_width=self._width,
                image_height=self._height,
                backend=self._backend_name(),
                inference_ms=float(kpi[0]) if kpi else 0.0,
                objects=[
                    object_to_msg(o.result, header, o.stamp, o.result.object_id in lost)
                    for o in objects
                ],
            )
        laps.lap("convert")

        if image_msg is not None:
            self._image_pub.publish(image_msg)
        self._info_pub.publish(info_msg)
        if mask_msg is not None:
            self._mask_pub.publish(mask_msg)
        if seg_msg is not None:
            self._seg_pub.publish(seg_msg)
            self._counts["results"] += 1
            self._rate_results.tick()
        laps.lap("publish")

        if fresh and want_overlay and image is not None:
            overlay = render_overlay(image, "bgr8", result)
            self._overlay_pub.publish(self._overlay_slot.fill(overlay, "bgr8", header))
        laps.lap("overlay")
        for name, ms in laps.items():
            self._stage_ms[name].add(ms)
        self._stage_ms["total"].add(laps.total_ms)
        self._stage_ms["total_cpu"].add(laps.total_cpu_ms)

    def _attribute(
        self, frame: int, outputs: list[np.ndarray] | None, geometry: StreamGeometry, stamp: Time
    ) -> bool:
        """Give this frame's output to the prompt whose ROI was in force (settle rule);
        True when an object got a fresh result."""
        with self._lock:
            who = self._scheduler.attribute(frame)
            self._attributed = who.object_id is not None
            if who.object_id is None:
                if who.reason == "settling":
                    self._counts["frames_settling"] += 1
                return False
            prompt = next((p for p in self._book.snapshot() if p.object_id == who.object_id), None)
            if prompt is None or self._revisions.get(who.object_id, 0) != self._turn_revision:
                # The prompt was replaced after its ROI was planned: this output is of the
                # old place.
                self._counts["frames_stale_prompt"] += 1
                return False
            if who.roi is not None:
                self.attributions.append((frame, who.object_id, who.roi))
        if not outputs or who.roi is None:
            return False
        try:
            logits = tensor_to_logits(outputs[0])
        except OutputError as exc:
            self._problem(f"output:{exc}", f"network output ignored: {exc}", "bad_outputs")
            return False
        roi_main = geometry.sensor_roi_to_main(who.roi)
        result = mask_result(
            prompt,
            logits,
            roi_main,
            self._p["mask_threshold"],
            self._p["min_score"],
            self._p["box_prior_weight"],
        )
        with self._lock:
            if self._revisions.get(who.object_id, 0) != self._turn_revision:
                return False  # replaced while this frame was being decoded
            self._book.update_tracking([result])
            if who.object_id in self._book:
                self._latest[who.object_id] = _Latest(result, stamp)
        return True

    def _plan_next(self, frame: int, geometry: StreamGeometry) -> Roi | None:
        """The next turn's ROI, when the sensor must get a new one."""
        with self._lock:
            rois: dict[int, Roi] = {}
            for prompt in self._book.snapshot():
                try:
                    rois[prompt.object_id] = prompt_to_roi(
                        prompt, geometry, self._p["roi_side_px"], self._p["box_margin"]
                    )
                except (PromptError, ValueError) as exc:
                    self._problem(f"roi:{exc}", f"no ROI for a prompt: {exc}")
            new_roi = self._scheduler.advance(frame, rois, self._attributed)
            self._attributed = False
            if self._scheduler.turns != self._turns_seen:
                # A new turn starts: outputs from now on belong to the prompt as it is now.
                current = self._scheduler.current
                self._turn_revision = self._revisions.get(current, 0) if current else 0
                self._turns_seen = self._scheduler.turns
            return new_roi

    def _union_of(self, result: FrameResult) -> np.ndarray:
        """``union_mask`` into a buffer kept between frames (no 1.2 MB allocation per
        1280x960 frame; the mask message copies it before the next frame)."""
        shape = (result.height, result.width)
        if self._union is None or self._union.shape != shape:
            self._union = union_mask(result)
            return self._union
        self._union.fill(0)
        for obj in result.objects:
            if obj.mask.size and not obj.crop.is_empty:
                self._union[obj.crop.slices][obj.mask] = 255
        return self._union

    def _object_for(self, prompt: ObjectPrompt, latest: _Latest | None) -> _Latest:
        if latest is not None:
            return latest
        empty = np.zeros((0, 0), dtype=bool)
        waiting = ObjectResult(
            prompt.object_id,
            ObjectStatus.SKIPPED,
            0.0,
            EMPTY_ROI,
            empty,
            None,
            prompt,
            "waiting for its first turn on the sensor",
        )
        return _Latest(waiting, Time())

    def _camera_info(self, header: Header) -> CameraInfo:
        cal = self._calibration
        return CameraInfo(
            header=header,
            width=cal.width,
            height=cal.height,
            distortion_model=cal.distortion_model,
            d=cal.d,
            k=cal.k,
            r=cal.r,
            p=cal.p,
        )

    def _backend_name(self) -> str:
        if self._emulated_camera is not None:
            return f"{self._api.name}:{self._emulated_camera.backend.path.name}"
        return f"{self._api.name}:{self._network.name}"

    # --------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        with self._lock:
            standing = len(self._book)
            streaming = self._picam2 is not None
            switches = self._scheduler.switches
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


class _Laps:
    """Milliseconds between successive ``lap`` calls, by name, and the thread's CPU time
    over all of them (wall time alone also counts waiting for a busy CPU)."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._cpu_start = time.thread_time()
        self._laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps[name] = (now - self._last) * 1000.0
        self._last = now

    def items(self) -> list[tuple[str, float]]:
        return list(self._laps.items())

    @property
    def total_ms(self) -> float:
        return (self._last - self._start) * 1000.0

    @property
    def total_cpu_ms(self) -> float:
        return (time.thread_time() - self._cpu_start) * 1000.0


def main(args: list[str] | None = None) -> None:
    spin_until_shutdown(CameraNode, "camera_node", args, (*STARTUP_ERRORS, CameraStartError))


if __name__ == "__main__":
    main()
