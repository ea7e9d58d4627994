"""camera_node with the picamera2 emulator on a real rclpy graph (own domain, localhost),
plus a client node that publishes prompts and records what comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point
from picosam2_ros.msg import ObjectMask, Prompt, Segmentation
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from picosam2_ros.io.image import image_to_array
from picosam2_ros.nodes.camera_node import CameraNode

W, H = 640, 480


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, period: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise TimeoutError(f"condition not met within {timeout} s")


def write_frames(folder: Path, frames: Sequence[np.ndarray]) -> Path:
    """RGB frames as numbered PNGs (the emulator's image-folder source)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def point_prompt(object_id: int, x: float, y: float, track: bool = False) -> Prompt:
    msg = Prompt(object_id=object_id, track=track)
    msg.points = [Point(x=float(x), y=float(y))]
    msg.labels = bytes([1])
    return msg


def frame_mask(obj: ObjectMask) -> np.ndarray:
    """An ObjectMask's mask pasted into a full frame (bool)."""
    full = np.zeros((H, W), bool)
    c = obj.crop
    if c.width and obj.mask.width:
        full[c.y_offset : c.y_offset + c.height, c.x_offset : c.x_offset + c.width] = (
            image_to_array(obj.mask) > 0
        )
    return full


def fresh(result: Segmentation) -> list[ObjectMask]:
    """The objects of a result computed on the result's own frame."""
    return [o for o in result.objects if o.source_stamp == result.header.stamp]


class CameraGraph:
    """camera_node (emulated camera) + a client node."""

    def __init__(self, params: dict[str, Any], full_frames: bool = True) -> None:
        """``full_frames=False``: the client subscribes to neither image_raw nor mask, like a
        robot stack that consumes only ``segmentation``."""
        self.context = Context()
        rclpy.init(context=self.context)
        defaults = {"diagnostics_period": 0.2, "emulator_upload_s": 0.05}
        overrides = [Parameter(k, value=v) for k, v in {**defaults, **params}.items()]
        try:
            self.node = CameraNode(context=self.context, parameter_overrides=overrides)
        except BaseException:
            rclpy.shutdown(context=self.context)
            raise
        self.camera = self.node._emulated_camera
        self.client: Node = rclpy.create_node("camera_test_client", context=self.context)
        self.prompt_pub = self.client.create_publisher(Prompt, "prompts", 50)
        self.click_pub = self.client.create_publisher(Point, "click", 10)
        self.results: list[Segmentation] = []
        self.masks: list[Image] = []
        self.image_headers: list[Any] = []
        self.infos: list[CameraInfo] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._lock = threading.Lock()
        self.client.create_subscription(Segmentation, "segmentation", self._keep(self.results), 50)
        if full_frames:
            self.client.create_subscription(Image, "mask", self._keep(self.masks, 30), 50)
            self.client.create_subscription(
                Image, "image_raw", lambda m: self._append(self.image_headers, m.header), 50
            )
        self.client.create_subscription(CameraInfo, "camera_info", self._keep(self.infos), 50)
        self.client.create_subscription(
            DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), 50
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        wait_until(lambda: self.prompt_pub.get_subscription_count() > 0)

    def _spin(self) -> None:
        # spin_once with a stop flag: shutting an executor down under a running spin()
        # makes that spin raise from a destroyed guard condition.
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _append(self, items: list[Any], item: Any, cap: int = 5000) -> None:
        with self._lock:
            items.append(item)
            if len(items) > cap:  # full-frame masks: keep only the recent ones
                items[: len(items) - cap] = [None] * (len(items) - cap)

    def _keep(self, items: list[Any], cap: int = 5000) -> Callable[[Any], None]:
        return lambda msg: self._append(items, msg, cap)

    def snapshot(self, items: list[Any]) -> list[Any]:
        with self._lock:
            return list(items)

    def send(self, prompt: Prompt) -> None:
        self.prompt_pub.publish(prompt)

    def standing(self) -> int:
        with self.node._lock:
            return len(self.node._book)

    def results_after(self, count: int) -> list[Segmentation]:
        return self.snapshot(self.results)[count:]

    def wait_fresh(self, object_id: int, n: int = 1, timeout: float = 20.0) -> list[ObjectMask]:
        """The first ``n`` fresh results for ``object_id`` published from now on."""
        start = len(self.snapshot(self.results))

        def found() -> list[ObjectMask] | None:
            got = [
                o
                for r in self.snapshot(self.results)[start:]
                for o in fresh(r)
                if o.object_id == object_id
            ]
            return got[:n] if len(got) >= n else None

        return wait_until(found, timeout)

    def diagnostic_values(self) -> dict[str, str]:
        arr = wait_until(lambda: self.snapshot(self.diagnostics)[-1:])[0]
        return {kv.key: kv.value for kv in arr.status[0].values}

    def fresh_status(self, timeout: float = 5.0) -> Any:
        seen = len(self.snapshot(self.diagnostics))
        wait_until(lambda: len(self.snapshot(self.diagnostics)) > seen, timeout)
        return self.snapshot(self.diagnostics)[-1].status[0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.client.destroy_node()
        rclpy.shutdown(context=self.context)
