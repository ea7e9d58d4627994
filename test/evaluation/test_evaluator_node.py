"""evaluator_node on a real rclpy graph, fed by the real segmenter_node from a real bag:
its per-instance IoUs equal picosam2-evaluate's on the same bag and model."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from picosam2_ros.msg import Prompt, Segmentation
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_system_default
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from picosam2_ros.bags.layout import TOPIC_GROUND_TRUTH, TOPIC_IMAGE, TOPIC_INFO, TOPIC_PROMPTS
from picosam2_ros.bags.reader import BagReader
from picosam2_ros.nodes.evaluator_node import EvaluatorNode
from picosam2_ros.nodes.qos import RESULTS_QOS
from picosam2_ros.nodes.segmenter_node import SegmenterNode
from picosam2_ros.tools import evaluate

from ..node.harness import wait_until

CLASSES: dict[str, Any] = {
    TOPIC_GROUND_TRUTH: Segmentation,
    TOPIC_PROMPTS: Prompt,
    TOPIC_IMAGE: Image,
    TOPIC_INFO: String,
}


def bag_frames(bag: Path) -> tuple[String, list[dict[str, Any]]]:
    """/dataset/info and, per stamp in bag order, the ground truth, prompts and image as
    rclpy messages (deserialised from the bag's CDR, as a replayer does)."""
    frames: dict[int, dict[str, Any]] = {}
    info = None
    with BagReader(bag) as reader:
        for message in reader.messages(list(CLASSES)):
            msg = deserialize_message(message.data, CLASSES[message.topic])
            if message.topic == TOPIC_INFO:
                info = msg
                continue
            frame = frames.setdefault(message.timestamp, {"prompts": []})
            if message.topic == TOPIC_PROMPTS:
                frame["prompts"].append(msg)
            else:
                frame[message.topic] = msg
    assert info is not None
    return info, [frames[k] for k in sorted(frames)]


class Graph:
    """segmenter_node + evaluator_node + a client publishing the bag's messages."""

    def __init__(self, model: Path, report_dir: Path, info: String) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.client: Node = rclpy.create_node("eval_test_client", context=self.context)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        # Published before the evaluator exists: it must still get it (latched).
        self.info_pub = self.client.create_publisher(String, TOPIC_INFO, latched)
        self.info_pub.publish(info)
        self.segmenter = SegmenterNode(
            context=self.context,
            parameter_overrides=[
                Parameter("point_model", value=str(model)),
                Parameter("box_model", value=str(model)),
                Parameter("image_qos", value="reliable"),
                Parameter("max_objects", value=255),
            ],
        )
        self.evaluator = EvaluatorNode(
            context=self.context,
            parameter_overrides=[
                Parameter("report_dir", value=str(report_dir)),
                Parameter("idle_timeout_s", value=0.0),
                Parameter("diagnostics_period", value=0.2),
            ],
        )
        qos = qos_profile_system_default
        # Transient-local, as replay_node and segmenter_node offer: the evaluator's
        # default input_durability cannot match volatile publishers.
        self.gt_pub = self.client.create_publisher(Segmentation, "ground_truth", RESULTS_QOS)
        self.prompt_pub = self.client.create_publisher(Prompt, "prompts", 50)
        self.image_pub = self.client.create_publisher(Image, "image", qos)
        self.result_pub = self.client.create_publisher(Segmentation, "segmentation", RESULTS_QOS)
        self.write_client = self.client.create_client(Trigger, "/evaluator/write_report")
        self.diagnostics: list[DiagnosticArray] = []
        self.client.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, 50
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        for node in (self.segmenter, self.evaluator, self.client):
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        wait_until(lambda: self.image_pub.get_subscription_count() >= 2)  # segmenter + evaluator
        wait_until(lambda: self.gt_pub.get_subscription_count() > 0)
        wait_until(lambda: self.prompt_pub.get_subscription_count() > 0)

    def play(self, frame: dict[str, Any], done_before: int) -> None:
        """Ground truth, then the frame's prompts (standing prompts cleared), then the
        image; wait until the evaluator has scored the frame."""
        self.gt_pub.publish(frame[TOPIC_GROUND_TRUTH])
        with self.segmenter._lock:
            self.segmenter._book.clear()
        for prompt in frame["prompts"]:
            self.prompt_pub.publish(prompt)
        want = len(frame["prompts"])
        wait_until(lambda: len(self.segmenter._book) == want)
        self.image_pub.publish(frame[TOPIC_IMAGE])
        wait_until(lambda: self.evaluator.session.evaluator.frames_evaluated > done_before)

    def write_report(self) -> Trigger.Response:
        assert self.write_client.wait_for_service(timeout_sec=5.0)
        future = self.write_client.call_async(Trigger.Request())
        wait_until(future.done)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5)
        for node in (self.segmenter, self.evaluator, self.client):
            node.destroy_node()
        rclpy.shutdown(context=self.context)


def per_instance(report: dict[str, Any]) -> dict[tuple[int, int], tuple[Any, ...]]:
    return {
        (i["stamp_ns"], i["object_id"]): (
            i["iou_crop"],
            i["iou_full"],
            i["status"],
            i["predicted_area"],
            i["category"],
            i["size"],
            i["crop"],
        )
        for i in report["instances"]
    }


def test_ros_path_equals_offline(box_bag: Path, colour_model: Path, tmp_path: Path) -> None:
    offline_dir, node_dir = tmp_path / "offline", tmp_path / "node"
    args = ["--bag", str(box_bag), "--model", str(colour_model), "--box-model", str(colour_model)]
    assert evaluate.main([*args, "--report", str(offline_dir), "--no-progress"]) == 0
    offline = json.loads((offline_dir / "report.json").read_text(encoding="utf-8"))

    info, frames = bag_frames(box_bag)
    graph = Graph(colour_model, node_dir, info)
    try:
        # expected_frames 0: the node takes the frame count from /dataset/info.
        wait_until(lambda: graph.evaluator.expected_frames == len(frames))
        graph.play(frames[0], 0)
        # A result for a stamp the evaluator never gets ground truth for.
        stray = Segmentation()
        stray.header.stamp.sec = 999
        stray.image_width, stray.image_height = 224, 176
        graph.result_pub.publish(stray)
        graph.play(frames[1], 1)
        resp = graph.write_report()
        assert resp.success, resp.message
        partial = json.loads((node_dir / "report.json").read_text(encoding="utf-8"))
        assert partial["final"] is False
        assert partial["counts"]["frames_without_result"] == 0
        for i, frame in enumerate(frames[2:], start=2):
            graph.play(frame, i)
        wait_until(graph.evaluator.done.done)
        values = wait_until(
            lambda: (
                {
                    kv.key: kv.value
                    for arr in graph.diagnostics[-1:]
                    for kv in arr.status[0].values
                    if arr.status[0].name.endswith("evaluation")
                }.get("frames_evaluated")
                == str(len(frames))
            )
        )
        assert values
    finally:
        graph.close()

    ros = json.loads((node_dir / "report.json").read_text(encoding="utf-8"))
    assert ros["final"] is True
    assert per_instance(ros) == per_instance(offline)
    assert len(ros["instances"]) == offline["counts"]["instances_evaluated"] > 0
    for key in ("summary", "by_size", "by_category", "histogram"):
        assert ros[key] == offline[key], key
    assert 0.3 < ros["summary"]["paper_crop"]["miou"] < 0.95  # box prompts: not trivial
    counts = ros["counts"]
    assert counts["results_for_unseen_stamps_frames"] == 1
    assert counts["instances_missing"] == 0
    assert counts["frames_evaluated"] == len(frames)
    assert ros["latency_ms"]["inference"]["count"] == len(frames) + 1  # + the stray one
    assert ros["latency_ms"]["pipeline_evaluator_clock"]["count"] == len(frames)
    assert (node_dir / "overlays.png").stat().st_size > 1000


def test_idle_timeout_writes_the_report_with_missing_frames(
    tiny_bag: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A segmenter that never answers: after idle_timeout_s the report is written,
    every instance counted missing, the node is done, and the log names the silent
    stream."""
    _, frames = bag_frames(tiny_bag)
    context = Context()
    rclpy.init(context=context)
    node = EvaluatorNode(
        context=context,
        parameter_overrides=[
            Parameter("report_dir", value=str(tmp_path / "idle")),
            Parameter("idle_timeout_s", value=0.5),
            Parameter("write_overlays", value=False),
        ],
    )
    client = rclpy.create_node("idle_client", context=context)
    pub = client.create_publisher(Segmentation, "ground_truth", RESULTS_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        wait_until(lambda: pub.get_subscription_count() > 0)
        for frame in frames[:2]:
            pub.publish(frame[TOPIC_GROUND_TRUTH])
        wait_until(node.done.done, timeout=10.0)
    finally:
        executor.shutdown()
        thread.join(timeout=5)
        node.destroy_node()
        client.destroy_node()
        rclpy.shutdown(context=context)
    report = json.loads((tmp_path / "idle" / "report.json").read_text(encoding="utf-8"))
    expected = sum(len(f["prompts"]) for f in frames[:2])
    assert report["counts"]["frames_without_result"] == 2
    assert report["counts"]["instances_missing"] == expected
    assert report["counts"]["instances_evaluated"] == 0
    assert len(report["listed"]["missing"]) == expected
    log = capfd.readouterr().err
    assert "received 2 frame(s) on '/ground_truth' but nothing on '/segmentation'" in log


def test_bad_parameter_fails_at_start(tmp_path: Path) -> None:
    context = Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(Exception, match="expected_frames"):
            EvaluatorNode(
                context=context, parameter_overrides=[Parameter("expected_frames", value=-1)]
            )
    finally:
        rclpy.shutdown(context=context)


def test_ground_truth_sent_before_the_evaluator_exists_is_still_scored(
    tiny_bag: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Transient-local inputs: ground truth published before the evaluator's
    subscription matched (the start-up gap between two processes' discovery) reaches it;
    a volatile-only publisher is reported as incompatible, naming the parameter."""
    _, frames = bag_frames(tiny_bag)
    context = Context()
    rclpy.init(context=context)
    client = rclpy.create_node("late_client", context=context)
    early = client.create_publisher(Segmentation, "ground_truth", RESULTS_QOS)
    for frame in frames[:2]:
        early.publish(frame[TOPIC_GROUND_TRUTH])
    volatile = client.create_publisher(Segmentation, "segmentation", 10)
    node = EvaluatorNode(
        context=context,
        parameter_overrides=[
            Parameter("report_dir", value=str(tmp_path / "late")),
            Parameter("idle_timeout_s", value=0.0),
            Parameter("write_overlays", value=False),
        ],
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        wait_until(lambda: node.session.evaluator.counts()["ground_truth_frames"] == 2)
        wait_until(lambda: node._bad["incompatible_publishers"] > 0)
        assert volatile.get_subscription_count() == 0
    finally:
        executor.shutdown()
        thread.join(timeout=5)
        node.destroy_node()
        client.destroy_node()
        rclpy.shutdown(context=context)
    assert "set input_durability:=volatile" in capfd.readouterr().err
