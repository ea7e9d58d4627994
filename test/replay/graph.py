"""A real rclpy graph for replay tests: replay_node, optionally the real segmenter_node,
and a recorder node, spun by one executor in a background thread in the process's own
ROS domain; the replay itself runs in the calling thread (``ReplayGraph.play``)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from picosam2_ros.msg import Prompt, Segmentation
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from picosam2_ros.bags.layout import time_ns
from picosam2_ros.nodes.replay_node import ReplayNode, ReplaySummary
from picosam2_ros.nodes.segmenter_node import SegmenterNode

RELIABLE = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)


class Recorder:
    """Everything the test listens to, in arrival order, with a lock."""

    def __init__(self, node: Node, image_topic: str) -> None:
        self.lock = threading.Lock()
        self.images: list[int] = []
        self.prompts: list[tuple[int, int]] = []
        self.results: list[Segmentation] = []
        self.ground_truth: list[int] = []
        self.info: list[str] = []
        self.diagnostics: list[DiagnosticArray] = []
        node.create_subscription(Image, image_topic, self._image, RELIABLE)
        node.create_subscription(Prompt, "/prompts", self._prompt, RELIABLE)
        node.create_subscription(Segmentation, "/segmentation", self._result, RELIABLE)
        node.create_subscription(Segmentation, "/ground_truth", self._gt, RELIABLE)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, RELIABLE)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        node.create_subscription(String, "/dataset/info", self._info, latched)

    def _image(self, msg: Image) -> None:
        with self.lock:
            self.images.append(time_ns(msg.header.stamp))

    def _prompt(self, msg: Prompt) -> None:
        with self.lock:
            self.prompts.append((time_ns(msg.header.stamp), int(msg.object_id)))

    def _result(self, msg: Segmentation) -> None:
        with self.lock:
            self.results.append(msg)

    def _gt(self, msg: Segmentation) -> None:
        with self.lock:
            self.ground_truth.append(time_ns(msg.header.stamp))

    def _diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics.append(msg)

    def _info(self, msg: String) -> None:
        with self.lock:
            self.info.append(str(msg.data))

    def result_pairs(self) -> Counter[tuple[int, int]]:
        """(stamp, object id) -> how many results answered it."""
        with self.lock:
            return Counter(
                (time_ns(r.header.stamp), int(o.object_id)) for r in self.results for o in r.objects
            )

    def replay_diagnostics(self) -> dict[str, str]:
        with self.lock:
            for array in reversed(self.diagnostics):
                for status in array.status:
                    if status.name.endswith(": replay"):
                        return {kv.key: kv.value for kv in status.values}
        return {}


class ReplayGraph:
    """replay_node (+ segmenter_node with ``model``) + a recorder."""

    def __init__(
        self,
        replay_params: dict[str, Any],
        *,
        model: Path | None = None,
        replay_remaps: list[str] = (),  # type: ignore[assignment]
        image_topic: str = "/camera/image_raw",
    ) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.segmenter: SegmenterNode | None = None
        nodes: list[Node] = []
        if model is not None:
            self.segmenter = SegmenterNode(
                context=self.context,
                parameter_overrides=[
                    Parameter("point_model", value=str(model)),
                    Parameter("image_qos", value="reliable"),
                    Parameter("max_objects", value=64),
                ],
                cli_args=["--ros-args", "-r", f"image:={image_topic}"],
            )
            nodes.append(self.segmenter)
        cli: list[str] = []
        for rule in replay_remaps:
            cli += ["-r", rule]
        self.replay = ReplayNode(
            context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in replay_params.items()],
            cli_args=["--ros-args", *cli] if cli else None,
        )
        nodes.append(self.replay)
        self.client = rclpy.create_node("replay_test_recorder", context=self.context)
        nodes.append(self.client)
        self.recorder = Recorder(self.client, image_topic)
        self.executor = SingleThreadedExecutor(context=self.context)
        for node in nodes:
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def play(self) -> ReplaySummary:
        return self.replay.run()

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5)
        self.replay.destroy_node()
        if self.segmenter is not None:
            self.segmenter.destroy_node()
        self.client.destroy_node()
        rclpy.shutdown(context=self.context)
