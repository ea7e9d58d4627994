"""An emulated Raspberry Pi AI Camera (Sony IMX500) behind picamera2's own API.

For running and testing the camera node without the camera. It mirrors picamera2 0.3.x
(raspberrypi/picamera2, main branch 2025-2026) in names, arguments and return
conventions, for everything the camera node uses:

- ``IMX500(network_file, camera_id='', tensor_injection=False)``
  (picamera2.devices.IMX500; injection itself is not emulated): raises RuntimeError
  when no IMX500 is found or the network file does not exist; properties
  ``camera_num``, ``config``, ``network_intrinsics``; ``get_fw_upload_progress(stage_req)
  -> (current, total)``; ``show_network_fw_progress_bar()``; ``set_inference_roi_abs((x,
  y, w, h))`` in full-sensor pixels, bounded to the sensor; ``get_roi_scaled(request,
  stream='main') -> (x, y, w, h)`` (from the LAST ROI set); ``get_input_size() -> (w,
  h)``; ``get_outputs(metadata, add_batch=False)`` (flat float32 data reshaped with the
  CnnOutputTensorInfo dimensions and ``order='F'``, None without output);
  ``get_output_shapes(metadata)``; static ``get_kpi_info(metadata) -> (dnn_ms, dsp_ms)``.
- ``NetworkIntrinsics`` (``task``, ``inference_rate``, ``update_with_defaults()``).
- ``Picamera2(camera_num=0, verbose_console=None, tuning=None, allocator=None)``: raises
  RuntimeError when the camera is held by another Picamera2; ``global_camera_info()``;
  ``create_preview_configuration(...)`` / ``create_video_configuration(...)`` with
  picamera2's keyword arguments and defaults; ``configure``; ``start(config=None,
  show_preview=False)``; ``stop``; ``close``; ``camera_configuration()``;
  ``capture_request(wait=None, signal_function=None, flush=None)``;
  ``capture_metadata()``; ``pre_callback``.
- ``CompletedRequest(request, picam2)`` (``request``: the frame's libcamera Request,
  emulated by ``Request``): ``make_array(name)`` (copies; "RGB888" is B, G, R in
  memory), ``make_buffer(name)``, ``get_metadata()``, ``acquire()``, ``release()``,
  ``request``, ``picam2``.
- Metadata keys: ``SensorTimestamp`` (ns, CLOCK_MONOTONIC), ``ScalerCrop``,
  ``FrameDuration``, ``ExposureTime``, ``CnnOutputTensor`` (a list of floats),
  ``CnnOutputTensorInfo`` (the 708-byte CnnOutputTensorInfoExported struct: network name
  char[64], uint32 count, 16 x {uint32 data count, uint32 dimension count, uint16[16]
  sizes, innermost first}), ``CnnKpiInfo`` ((dnn, dsp) runtime in microseconds).

What the emulated sensor does per frame: take the next frame of the source (it covers
the full 4056x3040 sensor field of view), scale it to the main stream, and, unless the
frame is one of the configured share without output, run the ONNX model (onnxruntime
through the package's backend) on the crop of the inference ROI in force for that
frame, resized to the model input, as the sensor does. An ROI set with
``set_inference_roi_abs`` comes into force ``roi_lag_frames`` frames after the next
one. Frames are paced at the configured rate (the slower of the emulator's rate and the
configured FrameRate control).

Sources: a folder of images (sorted by name, looped), a rosbag2 (its first image
topic, looped), ``scene[:SEED[:N]]`` (one generated still scene of N flat objects) or
``moving[:SEED]`` (generated objects moving across the frame); in-process,
``EmulatedCamera.show(still_source(image))`` puts one photograph in front of an attached
camera (not a picamera2 call: the emulator's own bench/test hook).

Not emulated: libcamera itself, other picamera2 methods, the input tensor
(``CnnInputTensor``), tensor injection, display previews, encoders.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.camera.output import logits_to_tensor_data
from picosam2_ros.camera.sensor import FULL_SENSOR, SENSOR_HEIGHT, SENSOR_WIDTH, StreamGeometry
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.preprocess import crop_to_model_input, normalise
from picosam2_ros.resources import resolve_model_paths

FW_LOADER_STAGE = 0
FW_MAIN_STAGE = 1
FW_NETWORK_STAGE = 2
NETWORK_NAME_LEN = 64
MAX_NUM_TENSORS = 16
MAX_NUM_DIMENSIONS = 16
_TENSOR_INFO = struct.Struct(f"<II{MAX_NUM_DIMENSIONS}H")
_TENSOR_INFO_HEADER = struct.Struct(f"<{NETWORK_NAME_LEN}sI")
TENSOR_INFO_SIZE = _TENSOR_INFO_HEADER.size + MAX_NUM_TENSORS * _TENSOR_INFO.size
#: The binned sensor mode a 30 fps stream uses.
RAW_SIZE = (SENSOR_WIDTH // 2, SENSOR_HEIGHT // 2)
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
_BYTES_PER_PIXEL = {"RGB888": 3, "BGR888": 3, "XBGR8888": 4, "XRGB8888": 4}


class SourceError(ValueError):
    """An emulator frame source that cannot be read; the message says why."""


# ------------------------------------------------------------------------ sources
class FrameSource:
    """Frames covering the full sensor field of view, (H, W, 3) uint8 RGB, by index."""

    def __init__(self, frames: Callable[[int], np.ndarray], count: int, description: str):
        if count < 1:
            raise SourceError(f"{description}: no frames")
        self._frames = frames
        self.count = count
        self.description = description

    def frame(self, index: int) -> np.ndarray:
        return self._frames(index % self.count)


def still_source(image: np.ndarray, description: str = "a still image") -> FrameSource:
    """One (H, W, 3) uint8 RGB image as every frame: a still scene (a photograph)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise SourceError(f"{description}: expected (H, W, 3) uint8 RGB, got {image.shape}")
    return FrameSource(lambda _i: image, 1, description)


def _folder_source(folder: Path) -> FrameSource:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) in {folder}")
    frames: list[np.ndarray] = []
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(f"cannot read image {path}")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return FrameSource(lambda i: frames[i], len(frames), f"{len(frames)} images in {folder}")


def _bag_source(path: Path, max_frames: int = 600) -> FrameSource:
    from picosam2_ros.bags.reader import BagError, BagReader, compressed_to_rgb, image_to_rgb

    frames: list[np.ndarray] = []
    try:
        with BagReader(path) as bag:
            image_topics = [
                t.name
                for t in bag.topics.values()
                if t.msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
            ]
            if not image_topics:
                raise SourceError(f"bag {path} has no sensor_msgs Image topic")
            topic = sorted(image_topics)[0]
            for message, msg in bag.decoded([topic]):
                if message.msgtype.endswith("CompressedImage"):
                    frames.append(compressed_to_rgb(msg))
                else:
                    frames.append(np.ascontiguousarray(image_to_rgb(msg)))
                if len(frames) >= max_frames:
                    break
    except BagError as exc:
        raise SourceError(str(exc)) from exc
    if not frames:
        raise SourceError(f"bag {path}: no images")
    return FrameSource(lambda i: frames[i], len(frames), f"{len(frames)} images of {path}")


def _moving_source(seed: int) -> FrameSource:
    from picosam2_ros.testing.scenes import PALETTE, SceneObject, render_scene

    width, height, period = 640, 480, 120
    rng = np.random.default_rng(seed)
    rows = rng.integers(60, height - 120, size=3)

    def frame(i: int) -> np.ndarray:
        x = 40 + (i * 4) % (width - 160)
        objects = [
            SceneObject("rect", PALETTE[0], int(x), int(rows[0]), 60, 24),
            SceneObject("ellipse", PALETTE[1], int(width - 100 - x // 2), int(rows[1]), 30, 56),
            SceneObject("L", PALETTE[2], int(width // 2 - 20), int(rows[2]), 48, 36),
        ]
        return render_scene(width, height, objects)[0]

    return FrameSource(frame, period, f"generated moving scene (seed {seed})")


def open_source(spec: str) -> FrameSource:
    """A frame source from its text form: an image folder, a rosbag2 (folder with
    metadata.yaml, .mcap or .db3), ``scene[:SEED[:N]]`` or ``moving[:SEED]``."""
    kind, _, rest = spec.partition(":")
    if kind in ("scene", "moving") and not Path(spec).exists():
        parts = [p for p in rest.split(":") if p]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise SourceError(f"{spec!r}: expected {kind}[:SEED[:N]] with integers") from None
        seed = numbers[0] if numbers else 0
        if kind == "moving":
            return _moving_source(seed)
        from picosam2_ros.testing.scenes import random_scene

        n = numbers[1] if len(numbers) > 1 else 4
        image = random_scene(SENSOR_WIDTH // 3, SENSOR_HEIGHT // 3, n, seed)[0]
        return still_source(image, f"generated scene (seed {seed}, {n} objects)")
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"emulator source {spec!r}: no such folder, bag or generator")
    if path.is_file() or (path / "metadata.yaml").is_file():
        return _bag_source(path)
    if any(p.suffix in (".mcap", ".db3") for p in path.iterdir()):
        return _bag_source(path)
    return _folder_source(path)


# ----------------------------------------------------------------- the "hardware"
@dataclass
class EmulatorSettings:
    """What the emulated camera does.

    ``frame_rate``: most frames per second it delivers; ``no_output_share``: fraction of
    frames without a network output (the IMX500 misses up to half); ``roi_lag_frames``:
    frames after the next one that still use the previous ROI after an ROI change;
    ``dnn_runtime_ms`` / ``dsp_runtime_ms``: reported in CnnKpiInfo; ``fail_at_frame``:
    raise once while capturing this frame number (1-based; 0 = never), as a camera
    that times out mid-stream; ``upload_s``: how long the network firmware upload takes;
    ``model``: the ONNX model standing in for the network ("" = the shipped point model).
    """

    source: str
    model: str = ""
    frame_rate: float = 30.0
    no_output_share: float = 0.0
    roi_lag_frames: int = 2
    dnn_runtime_ms: float = 11.8
    dsp_runtime_ms: float = 2.0
    fail_at_frame: int = 0
    upload_s: float = 0.5
    seed: int = 0


@dataclass
class FrameRecord:
    """What the emulated sensor did for one frame (for tests and benchmarks)."""

    sequence: int
    roi: Roi
    has_output: bool
    sensor_timestamp: int


@dataclass
class EmulatedCamera:
    """One emulated AI Camera on the "bus": its settings, source, model and sensor state."""

    settings: EmulatorSettings
    camera_id: str
    source: FrameSource
    backend: OnnxBackend
    num: int = 0
    owner: Picamera2 | None = None
    frames_captured: int = 0
    failed: bool = False
    upload_started: float | None = None
    network_size: int = 0
    #: (first frame number it applies to, ROI), in the order they were set.
    roi_history: list[tuple[int, Roi]] = field(default_factory=lambda: [(1, FULL_SENSOR)])
    records: list[FrameRecord] = field(default_factory=list)
    #: Seconds spent emulating the sensor (source frame, scaling, model, pacing).
    sensor_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.settings.seed)
        self._main_cache: dict[tuple[int, tuple[int, int], str], np.ndarray] = {}

    def show(self, source: FrameSource) -> None:
        """Point the camera at another scene from the next frame on (benchmarks replay
        photographs this way without re-attaching the camera and reloading the model)."""
        with self.lock:
            self.source = source
            self._main_cache.clear()

    # -- sensor state --
    def set_roi(self, roi: Roi) -> None:
        with self.lock:
            first = self.frames_captured + 1 + self.settings.roi_lag_frames
            self.roi_history.append((first, roi))

    def roi_for(self, sequence: int) -> Roi:
        roi = FULL_SENSOR
        for first, r in self.roi_history:
            if first <= sequence:
                roi = r
        return roi

    @property
    def latest_roi(self) -> Roi:
        return self.roi_history[-1][1]

    def upload_progress(self) -> tuple[int, int]:
        if self.upload_started is None or self.network_size == 0:
            return 0, 0
        done = (time.monotonic() - self.upload_started) / max(self.settings.upload_s, 1e-6)
        return min(self.network_size, int(done * self.network_size)), self.network_size

    def wait_for_firmware(self) -> None:
        if self.upload_started is not None:
            left = self.upload_started + self.settings.upload_s - time.monotonic()
            if left > 0:
                time.sleep(left)

    # -- one frame --
    def main_image(self, index: int, size: tuple[int, int], fmt: str) -> np.ndarray:
        key = (index % self.source.count, size, fmt)
        cached = self._main_cache.get(key)
        if cached is not None:
            return cached
        rgb = self.source.frame(index)
        if (rgb.shape[1], rgb.shape[0]) != size:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if fmt == "RGB888":  # picamera2's RGB888 is B, G, R in memory
            image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        elif fmt == "BGR888":
            image = np.ascontiguousarray(rgb)
        elif fmt == "XBGR8888":  # R, G, B, 255
            image = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
        else:  # XRGB8888: B, G, R, 255
            image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
        if len(self._main_cache) > 64:
            self._main_cache.clear()
        self._main_cache[key] = image
        return image

    def run_network(self, index: int, roi: Roi) -> np.ndarray:
        """The model's (S, S) logits for the ROI crop of source frame ``index``."""
        rgb = self.source.frame(index)
        sx, sy = rgb.shape[1] / SENSOR_WIDTH, rgb.shape[0] / SENSOR_HEIGHT
        x0, y0 = round(roi.x * sx), round(roi.y * sy)
        x1 = min(rgb.shape[1], max(x0 + 1, round((roi.x + roi.width) * sx)))
        y1 = min(rgb.shape[0], max(y0 + 1, round((roi.y + roi.height) * sy)))
        crop = Roi(x0, y0, x1 - x0, y1 - y0)
        size = self.backend.input_size
        tensor = crop_to_model_input(rgb, "rgb8", crop, size)
        logits: np.ndarray = self.backend.infer(normalise(tensor[None]))[0]
        return logits


_CAMERAS: list[EmulatedCamera | None] = []
_REGISTRY_LOCK = threading.Lock()


def attach_camera(settings: EmulatorSettings) -> EmulatedCamera:
    """Plug an emulated AI Camera in: it is found by ``IMX500`` (by its camera_id) and
    opened by ``Picamera2(camera_num)``. Raises SourceError for an unusable source and
    ModelLoadError for an unusable model."""
    if not 0.0 <= settings.no_output_share < 1.0:
        raise ValueError(f"no_output_share must be in [0, 1), got {settings.no_output_share}")
    if settings.roi_lag_frames < 0:
        raise ValueError(f"roi_lag_frames must be >= 0, got {settings.roi_lag_frames}")
    source = open_source(settings.source)
    backend = OnnxBackend(resolve_model_paths(settings.model, "")["point"])
    with _REGISTRY_LOCK:
        num = len(_CAMERAS)
        camera = EmulatedCamera(
            settings,
            f"/base/axi/pcie@120000/rp1/i2c@88000/imx500@1a/emulated{num}",
            source,
            backend,
        )
        camera.num = num
        _CAMERAS.append(camera)
    return camera


def detach_camera(camera: EmulatedCamera) -> None:
    """Unplug: later IMX500 / Picamera2 calls no longer find it."""
    with _REGISTRY_LOCK:
        if camera.num < len(_CAMERAS) and _CAMERAS[camera.num] is camera:
            _CAMERAS[camera.num] = None


def _camera(num: int) -> EmulatedCamera | None:
    with _REGISTRY_LOCK:
        return _CAMERAS[num] if 0 <= num < len(_CAMERAS) else None


# ------------------------------------------------------------------- picamera2 API
class NetworkIntrinsics:
    """picamera2.devices.imx500.NetworkIntrinsics, the parts the node uses."""

    def __init__(self, val: Mapping[str, Any] | None = None) -> None:
        self._intrinsics: dict[str, Any] | None = dict(val) if val is not None else None

    @property
    def task(self) -> str | None:
        return (self._intrinsics or {}).get("task")

    @task.setter
    def task(self, val: str) -> None:
        self._intrinsics = {**(self._intrinsics or {}), "task": val}

    @property
    def inference_rate(self) -> float | None:
        return (self._intrinsics or {}).get("inference_rate")

    @inference_rate.setter
    def inference_rate(self, val: float) -> None:
        self._intrinsics = {**(self._intrinsics or {}), "inference_rate": val}

    def update_with_defaults(self) -> None:
        self._intrinsics = {"inference_rate": 30.0, **(self._intrinsics or {})}


class IMX500:
    """picamera2.devices.IMX500 for an emulated camera (see the module docstring)."""

    def __init__(
        self, network_file: str, camera_id: str = "", tensor_injection: bool = False
    ) -> None:
        if tensor_injection:
            raise NotImplementedError("the emulator does not inject input tensors")
        with _REGISTRY_LOCK:
            found = [
                c for c in _CAMERAS if c is not None and (not camera_id or camera_id in c.camera_id)
            ]
        if not found:
            raise RuntimeError("IMX500: Requested camera dev-node not found")
        self._camera = found[0]
        path = Path(network_file).absolute()
        if not path.is_file():
            raise RuntimeError(f"Firmware file {path} does not exist.")
        try:
            size = len(path.read_bytes())
        except OSError as err:
            raise RuntimeError(f"IMX500: Unable to set network firmware {path}: {err}") from err
        self._cfg: dict[str, Any] = {
            "network_file": network_file,
            "input_tensor": {},
            "input_tensor_size": (self._camera.backend.input_size,) * 2,
        }
        cam = self._camera
        with cam.lock:
            cam.network_size = max(size, 1)
            cam.upload_started = time.monotonic()
            # Like the real device: the inference ROI starts as the full sensor.
            cam.roi_history = [(cam.frames_captured + 1, FULL_SENSOR)]

    @property
    def camera_num(self) -> int:
        return self._camera.num

    @property
    def config(self) -> dict[str, Any]:
        return self._cfg

    @property
    def network_intrinsics(self) -> NetworkIntrinsics | None:
        return None  # the emulated network file carries no intrinsics

    def get_fw_upload_progress(self, stage_req: int) -> tuple[int, int]:
        if stage_req != FW_NETWORK_STAGE:
            return 0, 0
        return self._camera.upload_progress()

    def show_network_fw_progress_bar(self) -> None:
        """The real one starts a process drawing a tqdm bar on the terminal; a node logs
        ``get_fw_upload_progress`` instead, so this only prints the start."""
        print("Network Firmware Upload (emulated)", flush=True)

    def set_inference_roi_abs(self, roi: tuple[int, int, int, int]) -> None:
        x, y, w, h = (int(v) for v in roi)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, SENSOR_WIDTH), min(y + h, SENSOR_HEIGHT)
        bounded = Roi(x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))
        self._camera.set_roi(bounded)
        self._cfg["roi"] = bounded

    def get_roi_scaled(self, request: CompletedRequest, stream: str = "main") -> tuple[int, ...]:
        config = request.picam2.camera_configuration()
        crop = Roi(*request.get_metadata()["ScalerCrop"])
        geometry = StreamGeometry(tuple(config[stream]["size"]), tuple(config["raw"]["size"]), crop)
        r = geometry.picamera2_roi_scaled(self._camera.latest_roi)
        return (r.x, r.y, r.width, r.height)

    def get_input_size(self) -> tuple[int, int]:
        size: tuple[int, int] = self._cfg["input_tensor_size"]
        return size

    def get_output_shapes(self, metadata: Mapping[str, Any]) -> list[list[int]]:
        info = metadata.get("CnnOutputTensorInfo")
        if not info:
            return []
        return [t["size"] for t in parse_tensor_info(bytes(info))["info"]]

    def get_outputs(
        self, metadata: Mapping[str, Any], add_batch: bool = False
    ) -> list[np.ndarray] | None:
        output_tensor = metadata.get("CnnOutputTensor")
        if not output_tensor:
            return None
        data = np.fromiter(output_tensor, dtype=np.float32)
        outputs = []
        offset = 0
        for shape in self.get_output_shapes(metadata):
            size = int(np.prod(shape))
            tensor = data[offset : offset + size].reshape(shape, order="F")
            outputs.append(np.expand_dims(tensor, 0) if add_batch else tensor)
            offset += size
        return outputs

    @staticmethod
    def get_kpi_info(metadata: Mapping[str, Any]) -> tuple[float, float] | None:
        kpi = metadata.get("CnnKpiInfo")
        if kpi is None:
            return None
        return kpi[0] / 1000, kpi[1] / 1000


def pack_tensor_info(network_name: str, shapes: list[tuple[int, ...]]) -> bytes:
    """CnnOutputTensorInfo as libcamera exports it (CnnOutputTensorInfoExported)."""
    if len(shapes) > MAX_NUM_TENSORS:
        raise ValueError(f"at most {MAX_NUM_TENSORS} tensors")
    parts = [_TENSOR_INFO_HEADER.pack(network_name.encode()[:NETWORK_NAME_LEN], len(shapes))]
    for i in range(MAX_NUM_TENSORS):
        dims = list(shapes[i]) if i < len(shapes) else []
        count = int(np.prod(dims)) if dims else 0
        padded = dims + [0] * (MAX_NUM_DIMENSIONS - len(dims))
        parts.append(_TENSOR_INFO.pack(count, len(dims), *padded))
    return b"".join(parts)


def parse_tensor_info(info: bytes) -> dict[str, Any]:
    """The inverse of ``pack_tensor_info``; ValueError for a blob of the wrong length."""
    if len(info) != TENSOR_INFO_SIZE:
        raise ValueError(
            f"tensor info length {len(info)} does not match expected size {TENSOR_INFO_SIZE}"
        )
    name, count = _TENSOR_INFO_HEADER.unpack_from(info, 0)
    tensors = []
    for i in range(count):
        fields = _TENSOR_INFO.unpack_from(info, _TENSOR_INFO_HEADER.size + i * _TENSOR_INFO.size)
        ndim = fields[1]
        tensors.append(
            {
                "tensor_data_num": fields[0],
                "num_dimensions": ndim,
                "size": list(fields[2 : 2 + ndim]),
            }
        )
    return {"network_name": name.decode().strip("\x00"), "num_tensors": count, "info": tensors}


@dataclass
class Request:
    """libcamera's Request for one emulated frame, as picamera2 receives it: the frame's
    stream buffers (here the arrays, by stream name) and its metadata."""

    buffers: dict[str, np.ndarray]
    metadata: dict[str, Any]


class CompletedRequest:
    """picamera2.CompletedRequest for one emulated frame: ``CompletedRequest(request,
    picam2)`` with the frame's (emulated libcamera) ``Request``, as picamera2 builds it."""

    def __init__(self, request: Request, picam2: Picamera2):
        self.request: Request | None = request
        self.picam2 = picam2
        self.config = dict(picam2.camera_configuration())
        self.ref_count = 1

    def acquire(self) -> None:
        if self.ref_count == 0:
            raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
        self.ref_count += 1

    def release(self) -> None:
        self.ref_count -= 1
        if self.ref_count < 0:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        if self.ref_count == 0:
            self.request = None  # picamera2 hands the buffers back to libcamera here
            self.picam2._returned()

    def _buffer(self, name: str) -> np.ndarray:
        if self.request is None:
            raise RuntimeError("request was already released")
        if name not in self.request.buffers:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return self.request.buffers[name]

    def make_buffer(self, name: str) -> np.ndarray:
        return self._buffer(name).reshape(-1).copy()

    def make_array(self, name: str) -> np.ndarray:
        return self._buffer(name).copy()

    def get_metadata(self) -> dict[str, Any]:
        if self.request is None:
            raise RuntimeError("request was already released")
        metadata = dict(self.request.metadata)
        tensor = metadata.get("CnnOutputTensor")
        if isinstance(tensor, np.ndarray):
            # libcamera's float span arrives in Python as a list of floats
            metadata["CnnOutputTensor"] = tensor.tolist()
        return metadata


def _stream(spec: Mapping[str, Any] | None, size: tuple[int, int], fmt: str) -> dict[str, Any]:
    out: dict[str, Any] = {"format": fmt, "size": size}
    if spec:
        out.update(spec)
    out["size"] = tuple(int(v) for v in out["size"])
    return out


class Picamera2:
    """picamera2.Picamera2 for an emulated camera (see the module docstring)."""

    def __init__(
        self,
        camera_num: int = 0,
        verbose_console: int | None = None,
        tuning: Any = None,
        allocator: Any = None,
    ) -> None:
        camera = _camera(camera_num)
        if camera is None:
            raise IndexError(f"camera {camera_num} not found (no emulated camera attached)")
        with camera.lock:
            if camera.owner is not None:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            camera.owner = self
        self._camera: EmulatedCamera | None = camera
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.pre_callback: Callable[[CompletedRequest], None] | None = None
        self.post_callback: Callable[[CompletedRequest], None] | None = None
        self._next_frame_time = 0.0
        self._outstanding = 0
        self._broken = ""

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        with _REGISTRY_LOCK:
            cams = [c for c in _CAMERAS if c is not None]
        return [
            {"Model": "imx500", "Location": 2, "Rotation": 0, "Id": c.camera_id, "Num": c.num}
            for c in cams
        ]

    # -- configuration --
    def _configuration(
        self,
        main: Mapping[str, Any] | None,
        lores: Mapping[str, Any] | None,
        raw: Mapping[str, Any] | None,
        transform: Any,
        colour_space: Any,
        buffer_count: int,
        controls: Mapping[str, Any] | None,
        display: str | None,
        encode: str | None,
        queue: bool,
        sensor: Mapping[str, Any] | None,
        use_case: str,
        main_size: tuple[int, int],
    ) -> dict[str, Any]:
        return {
            "use_case": use_case,
            "transform": transform,
            "colour_space": colour_space,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": _stream(main, main_size, "XBGR8888"),
            "lores": dict(lores) if lores is not None else None,
            "raw": _stream(raw, RAW_SIZE, "SRGGB10_CSI2P"),
            "controls": dict(controls or {}),
            "sensor": dict(sensor or {}),
            "display": display,
            "encode": encode,
        }

    def create_preview_configuration(
        self,
        main: Mapping[str, Any] | None = None,
        lores: Mapping[str, Any] | None = None,
        raw: Mapping[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 4,
        controls: Mapping[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: Mapping[str, Any] | None = None,
        use_case: str = "preview",
    ) -> dict[str, Any]:
        controls = {"FrameDurationLimits": (100, 83333), **(controls or {})}
        return self._configuration(
            main, lores, raw, transform, colour_space, buffer_count, controls, display,
            encode, queue, sensor, use_case, (640, 480),
        )  # fmt: skip

    def create_video_configuration(
        self,
        main: Mapping[str, Any] | None = None,
        lores: Mapping[str, Any] | None = None,
        raw: Mapping[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 6,
        controls: Mapping[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: Mapping[str, Any] | None = None,
        use_case: str = "video",
    ) -> dict[str, Any]:
        controls = {"FrameDurationLimits": (33333, 33333), **(controls or {})}
        return self._configuration(
            main, lores, raw, transform, colour_space, buffer_count, controls, display,
            encode, queue, sensor, use_case, (1280, 720),
        )  # fmt: skip

    def configure(self, camera_config: Mapping[str, Any]) -> None:
        if self._camera is None:
            raise RuntimeError("Camera is closed")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        config = dict(camera_config)
        main = dict(config["main"])
        if main["format"] not in _BYTES_PER_PIXEL:
            raise RuntimeError(f"Format {main['format']} not supported by the emulator")
        w, h = main["size"]
        if w <= 0 or h <= 0:
            raise RuntimeError(f"invalid main stream size {w}x{h}")
        main["stride"] = w * _BYTES_PER_PIXEL[main["format"]]
        main["framesize"] = main["stride"] * h
        config["main"] = main
        self.camera_config = config

    def camera_configuration(self) -> dict[str, Any]:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        return self.camera_config

    def start(self, config: Mapping[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True
        self._next_frame_time = time.monotonic()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started = False
        camera = self._camera
        if camera is not None:
            with camera.lock:
                if camera.owner is self:
                    camera.owner = None
        self._camera = None

    def _returned(self) -> None:
        self._outstanding = max(0, self._outstanding - 1)

    def _frame_period(self) -> float:
        camera = self._camera
        assert camera is not None and self.camera_config is not None
        rate = camera.settings.frame_rate
        controls = self.camera_config.get("controls", {})
        if "FrameRate" in controls and float(controls["FrameRate"]) > 0:
            rate = min(rate, float(controls["FrameRate"]))
        return 1.0 / rate if rate > 0 else 0.0

    def capture_request(
        self, wait: Any = None, signal_function: Any = None, flush: Any = None
    ) -> CompletedRequest:
        camera = self._camera
        if camera is None or not self.started or self.camera_config is None:
            raise RuntimeError("Camera is not running")
        if self._broken:
            raise RuntimeError(self._broken)
        camera.wait_for_firmware()
        # Pacing: the next frame is read out one frame period after the previous one.
        now = time.monotonic()
        if self._next_frame_time > now:
            time.sleep(self._next_frame_time - now)
        self._next_frame_time = max(self._next_frame_time, now) + self._frame_period()
        started = time.perf_counter()
        with camera.lock:
            camera.frames_captured += 1
            sequence = camera.frames_captured
            settings = camera.settings
            if settings.fail_at_frame and sequence == settings.fail_at_frame and not camera.failed:
                camera.failed = True
                self._broken = "Camera frontend has timed out! (emulated fault)"
                raise RuntimeError(self._broken)
            roi = camera.roi_for(sequence)
            has_output = bool(camera._rng.random() >= settings.no_output_share)
        main_cfg = self.camera_config["main"]
        index = sequence - 1
        image = camera.main_image(index, tuple(main_cfg["size"]), main_cfg["format"])
        timestamp = time.monotonic_ns()
        period_us = round(self._frame_period() * 1e6)
        metadata: dict[str, Any] = {
            "SensorTimestamp": timestamp,
            "ScalerCrop": (FULL_SENSOR.x, FULL_SENSOR.y, FULL_SENSOR.width, FULL_SENSOR.height),
            "FrameDuration": period_us,
            "ExposureTime": min(period_us, 20000),
        }
        if has_output:
            logits = camera.run_network(index, roi)
            flat, dims = logits_to_tensor_data(logits)
            metadata["CnnOutputTensor"] = flat
            metadata["CnnOutputTensorInfo"] = pack_tensor_info("picosam2_emulated", [dims])
            metadata["CnnKpiInfo"] = (
                round(settings.dnn_runtime_ms * 1000),
                round(settings.dsp_runtime_ms * 1000),
            )
        with camera.lock:
            camera.records.append(FrameRecord(sequence, roi, has_output, timestamp))
            if len(camera.records) > 10000:
                del camera.records[:5000]
            camera.sensor_seconds += time.perf_counter() - started
        self._outstanding += 1
        request = CompletedRequest(Request({"main": image}, metadata), self)
        if self.pre_callback is not None:
            self.pre_callback(request)
        return request

    def capture_metadata(self, wait: Any = None, signal_function: Any = None) -> dict[str, Any]:
        request = self.capture_request()
        try:
            return request.get_metadata()
        finally:
            request.release()
