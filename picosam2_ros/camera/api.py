"""picamera2's IMX500 API (``IMX500``, ``NetworkIntrinsics``, ``Picamera2``), from
picamera2 itself or from the emulator, and the error that says the camera cannot be used.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

#: picamera2's firmware upload stage of the network (FW_NETWORK_STAGE).
FW_NETWORK_STAGE = 2


class CameraStartError(RuntimeError):
    """The camera cannot be used at start-up; the message says why and what to do."""


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


def check_network(value: str) -> Path:
    """The readable network package file a ``network`` parameter names; ValueError
    saying what is wrong otherwise."""
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


def open_camera(
    api: SimpleNamespace,
    network: Path,
    camera_id: str,
    size: tuple[int, int],
    frame_rate: float,
    buffer_count: int,
    before_start: Callable[[Any], None],
) -> tuple[Any, Any, tuple[int, int]]:
    """IMX500(network) first (it uploads the network and finds the camera number), then
    Picamera2(imx500.camera_num), as picamera2 requires; started on a ``size`` RGB888
    main stream at ``frame_rate`` (0 = the network's inference rate, 30 by default).
    ``before_start(imx500)`` runs just before the start, which waits for the network
    firmware upload. Returns (imx500, picam2, raw stream size); CameraStartError saying
    what to check otherwise."""
    try:
        imx500 = api.IMX500(str(network), camera_id)
    except Exception as exc:
        raise CameraStartError(
            f"no IMX500 AI Camera ({exc}); check the ribbon cable and that the "
            "imx500 driver is loaded (dtoverlay), or set emulator_source"
        ) from None
    intrinsics = imx500.network_intrinsics or api.NetworkIntrinsics()
    intrinsics.task = "segmentation"
    intrinsics.update_with_defaults()
    rate = frame_rate or float(intrinsics.inference_rate or 30.0)
    try:
        picam2 = api.Picamera2(imx500.camera_num)
    except Exception as exc:
        raise CameraStartError(
            f"camera {imx500.camera_num} cannot be opened (absent, or busy in another "
            f"process): {exc}"
        ) from None
    try:
        config = picam2.create_preview_configuration(
            main={"size": size, "format": "RGB888"},
            controls={"FrameRate": rate},
            buffer_count=buffer_count,
        )
        before_start(imx500)
        picam2.start(config)
        raw_w, raw_h = picam2.camera_configuration()["raw"]["size"]
    except Exception as exc:
        with contextlib.suppress(Exception):  # already failing; report the cause
            picam2.close()
        raise CameraStartError(f"camera cannot be started: {exc}") from None
    return imx500, picam2, (int(raw_w), int(raw_h))


def start_upload_log(
    imx500: Any, uploading: Callable[[], bool], log: Callable[[str], None]
) -> None:
    """Log the network firmware upload at every quarter (it can take minutes the first
    time) while ``uploading()``, from a thread of its own."""

    def watch() -> None:
        logged = -1
        while uploading():
            current, total = imx500.get_fw_upload_progress(FW_NETWORK_STAGE)
            if total:
                percent = int(100 * current / total)
                if percent // 25 > logged:
                    logged = percent // 25
                    log(f"network firmware upload: {percent}% of {total} bytes")
            time.sleep(0.1)

    threading.Thread(target=watch, name="firmware-progress", daemon=True).start()


def attach_emulator(params: Mapping[str, Any]) -> Any:
    """Attach an emulated camera (``emulator.attach_camera``) as the node's ``emulator_*``
    parameters describe it; CameraStartError saying what is wrong otherwise."""
    from picosam2_ros.backends.base import ModelLoadError
    from picosam2_ros.camera import emulator

    settings = emulator.EmulatorSettings(
        source=params["emulator_source"],
        model=params["emulator_model"] or emulator_default_model(params),
        frame_rate=params["emulator_rate"],
        no_output_share=params["emulator_no_output_share"],
        roi_lag_frames=params["emulator_roi_lag_frames"],
        fail_at_frame=params["emulator_fail_at_frame"],
        upload_s=params["emulator_upload_s"],
    )
    try:
        return emulator.attach_camera(settings)
    except (emulator.SourceError, ModelLoadError, ValueError) as exc:
        raise CameraStartError(f"emulator: {exc}") from None


def emulator_default_model(params: Mapping[str, Any]) -> str:
    """The ONNX model the emulator runs when ``emulator_model`` is empty: the shipped
    point model, or under ``whole_object`` the shipped zoom model (trained on the search's
    windows), as the host's whole-object decoding picks (``resources``)."""
    from picosam2_ros.resources import resolve_model_paths

    return str(resolve_model_paths("", "", bool(params.get("whole_object")))["point"])


def detach_emulator(camera: Any) -> None:
    """Detach a camera ``attach_emulator`` attached."""
    from picosam2_ros.camera import emulator

    emulator.detach_camera(camera)
