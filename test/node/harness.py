"""A real rclpy graph for node tests: the node under test plus a separate client node,
spun by one executor in a background thread, in the process's own ROS domain."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped
from picosam2_ros.msg import Prompt, Segmentation
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_system_default
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from picosam2_ros.nodes.segmenter_node import SegmenterNode
from picosam2_ros.nodes.startup import make_executor


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, period: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise TimeoutError(f"condition not met within {timeout} s")


def image_msg(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = "cam") -> Image:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    height, width = array.shape[:2]
    step = array.strides[0] if array.ndim > 1 else 0
    return Image(
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        step=step,
        data=np.ascontiguousarray(array).tobytes(),
    )


class SegmenterGraph:
    """segmenter_node (image QoS reliable) + a client node that publishes and records."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        overrides = [Parameter(k, value=v) for k, v in {"image_qos": "reliable", **params}.items()]
        self.node = SegmenterNode(context=self.context, parameter_overrides=overrides)
        self.client: Node = rclpy.create_node("test_client", context=self.context)
        qos = qos_profile_system_default
        self.image_pub = self.client.create_publisher(Image, "image", qos)
        self.prompt_pub = self.client.create_publisher(Prompt, "prompts", 10)
        self.click_pub = self.client.create_publisher(Point, "click", 10)
        self.point_pub = self.client.create_publisher(PointStamped, "prompt_point", 10)
        self.masks: list[Image] = []
        self.results: list[Segmentation] = []
        self.overlays: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.mask_sub = self.client.create_subscription(Image, "mask", self.masks.append, 50)
        self.client.create_subscription(Segmentation, "segmentation", self.results.append, 50)
        self.client.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, 50
        )
        self.executor = make_executor(self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        wait_until(lambda: self.image_pub.get_subscription_count() > 0)
        wait_until(lambda: self.prompt_pub.get_subscription_count() > 0)

    def subscribe_overlay(self) -> None:
        self.client.create_subscription(Image, "overlay", self.overlays.append, 10)
        wait_until(lambda: self.node._overlay_pub.get_subscription_count() > 0)

    def send_prompt(self, prompt: Prompt) -> None:
        self.prompt_pub.publish(prompt)

    def standing(self) -> int:
        with self.node._lock:
            return len(self.node._book)

    def segment(self, array: np.ndarray, encoding: str, stamp_ns: int) -> Segmentation:
        """Publish one image and wait for the result carrying its stamp."""
        msg = image_msg(array, encoding, stamp_ns)
        self.image_pub.publish(msg)
        return wait_until(lambda: self.result_for(msg.header.stamp))

    def result_for(self, stamp: Any) -> Segmentation | None:
        for res in list(self.results):
            if res.header.stamp == stamp:
                return res
        return None

    def mask_for(self, stamp: Any) -> Image | None:
        for m in list(self.masks):
            if m.header.stamp == stamp:
                return m
        return None

    def diagnostic_values(self) -> dict[str, str]:
        """Key/values of the newest diagnostics status from the node."""
        arr = wait_until(lambda: self.diagnostics[-1] if self.diagnostics else None)
        return {kv.key: kv.value for kv in arr.status[0].values}

    def latest_status(self) -> Any:
        return wait_until(lambda: self.diagnostics[-1] if self.diagnostics else None).status[0]

    def fresh_diagnostics(self, timeout: float = 5.0) -> Any:
        """Wait for a diagnostics message published after now."""
        seen = len(self.diagnostics)
        wait_until(lambda: len(self.diagnostics) > seen, timeout)
        return self.diagnostics[-1].status[0]

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5)
        self.node.destroy_node()
        self.client.destroy_node()
        rclpy.shutdown(context=self.context)


@contextlib.contextmanager
def spinning(context: Context, *nodes: Node) -> Iterator[None]:
    """Spin ``nodes`` in a background thread; afterwards destroy them (last first) and shut
    the context down, whatever the test body raised."""
    executor = make_executor(context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        executor.shutdown()
        thread.join(timeout=5)
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.shutdown(context=context)
