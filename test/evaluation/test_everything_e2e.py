"""Segment everything through real nodes: bag -> replay_node (lock-step on the
segmenter's `everything` topic) -> segmenter_node (everything_rate_hz) -> evaluator_node
(mode everything), one real rclpy graph. The figures of everything.json equal
picosam2-evaluate --everything's on the same bag and model, frame by frame."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest
import rclpy
from picosam2_ros.msg import Segmentation
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from picosam2_ros.bags.layout import TOPIC_GROUND_TRUTH, TOPIC_IMAGE, TOPIC_INFO
from picosam2_ros.nodes.evaluator_node import EvaluatorNode
from picosam2_ros.nodes.qos import RESULTS_QOS
from picosam2_ros.nodes.replay_node import ReplayNode
from picosam2_ros.nodes.segmenter_node import SegmenterNode
from picosam2_ros.tools import evaluate

from ..node.harness import spinning, wait_until
from .conftest import TinySet
from .test_evaluator_node import bag_frames

POINTS_PER_SIDE = 32
EVERYTHING = "/segmenter/everything"


def test_replay_segmenter_everything_evaluator_equals_offline(
    tiny_set: TinySet, tiny_bag: Path, colour_model: Path, tmp_path: Path
) -> None:
    offline_dir, node_dir = tmp_path / "offline", tmp_path / "node"
    cli = ["--bag", str(tiny_bag), "--model", str(colour_model), "--report", str(offline_dir)]
    assert evaluate.main([*cli, "--everything", "--points-per-side", str(POINTS_PER_SIDE)]) == 0
    offline = json.loads((offline_dir / "everything.json").read_text(encoding="utf-8"))

    context = Context()
    rclpy.init(context=context)
    segmenter = SegmenterNode(
        context=context,
        parameter_overrides=[
            Parameter("point_model", value=str(colour_model)),
            Parameter("image_qos", value="reliable"),
            Parameter("everything_rate_hz", value=30.0),
            Parameter("everything_points_per_side", value=POINTS_PER_SIDE),
        ],
        cli_args=["--ros-args", "-r", f"image:={TOPIC_IMAGE}", "-r", "__ns:=/segmenter"],
    )
    evaluator = EvaluatorNode(
        context=context,
        parameter_overrides=[
            Parameter("mode", value="everything"),
            Parameter("report_dir", value=str(node_dir)),
            Parameter("idle_timeout_s", value=0.0),
        ],
        cli_args=[
            "--ros-args",
            "-r",
            f"ground_truth:={TOPIC_GROUND_TRUTH}",
            "-r",
            f"segmentation:={EVERYTHING}",
        ],
    )
    # The prompts stay in the bag: segment everything needs none.
    replay = ReplayNode(
        context=context,
        parameter_overrides=[
            Parameter("bag", value=str(tiny_bag)),
            Parameter("mode", value="lockstep"),
            Parameter("lockstep_topic", value=EVERYTHING),
            Parameter("lockstep_timeout_s", value=20.0),
            Parameter("clear_prompts_service", value=""),
            Parameter("prompt_barrier_service", value=""),
            Parameter("topics", value=[TOPIC_IMAGE, TOPIC_GROUND_TRUTH, TOPIC_INFO]),
            Parameter("require_subscribers", value=[TOPIC_IMAGE, TOPIC_GROUND_TRUTH]),
        ],
    )
    with spinning(context, segmenter, evaluator, replay):
        # The replay and the evaluator both listen to the everything topic.
        wait_until(lambda: segmenter._everything_pub.get_subscription_count() >= 2)
        summary = replay.run()
        wait_until(evaluator.done.done, timeout=20.0)

    assert summary.lockstep["timed_out"] == 0
    ros = json.loads((node_dir / "everything.json").read_text(encoding="utf-8"))
    assert ros["tool"] == "evaluator_node" and ros["mode"] == "everything"
    assert ros["final"] is True
    frames = len(tiny_set.object_ids)
    counts = ros["counts"]
    assert counts["frames_evaluated"] == frames
    assert counts["instances_evaluated"] == tiny_set.instances
    for key in (
        "frames_without_result",
        "results_for_unseen_stamps_frames",
        "duplicate_result_frames",
        "duplicate_ground_truth_frames",
        "image_size_mismatches",
    ):
        assert counts[key] == 0, key
    assert ros["summary"] == offline["summary"]
    assert ros["images"] == offline["images"]
    # The colour-match model finds each object of these flat scenes exactly, once.
    assert ros["summary"]["recall_75"] == 1.0
    assert ros["summary"]["false_masks_per_image"] == 0.0
    assert [im["image_id"] for im in ros["images"]] == list(range(1, frames + 1))


@pytest.mark.parametrize("order", ["results_first", "ground_truth_first"])
def test_everything_mode_scores_any_arrival_order_and_counts_strays(
    tiny_bag: Path, tmp_path: Path, order: str
) -> None:
    """Results and ground truth matched by stamp in either order; a result for a stamp
    without ground truth is counted, a malformed one rejected, and the node keeps
    serving."""
    _, frames = bag_frames(tiny_bag)
    context = Context()
    rclpy.init(context=context)
    node = EvaluatorNode(
        context=context,
        parameter_overrides=[
            Parameter("mode", value="everything"),
            Parameter("report_dir", value=str(tmp_path / order)),
            Parameter("idle_timeout_s", value=0.0),
            Parameter("expected_frames", value=2),
        ],
    )
    client = rclpy.create_node("everything_client", context=context)
    gt_pub = client.create_publisher(Segmentation, "ground_truth", RESULTS_QOS)
    result_pub = client.create_publisher(Segmentation, "segmentation", RESULTS_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        wait_until(lambda: gt_pub.get_subscription_count() > 0)
        wait_until(lambda: result_pub.get_subscription_count() > 0)
        # Ground truth republished as a result: every mask is exactly an instance.
        truths = [frame[TOPIC_GROUND_TRUTH] for frame in frames[:2]]
        broken = Segmentation()
        broken.header.stamp = truths[0].header.stamp
        broken.image_width, broken.image_height = 224, 176
        broken.objects = [copy.deepcopy(truths[0].objects[0])]
        broken.objects[0].crop.width = 9999  # its mask no longer fits its crop
        stray = Segmentation()
        stray.header.stamp.sec = 999
        stray.image_width, stray.image_height = 224, 176
        first, second = (truths, [broken, *truths, stray])
        if order == "results_first":
            first, second = second, first
        for msg in first:
            (gt_pub if first is truths else result_pub).publish(msg)
        for msg in second:
            (gt_pub if second is truths else result_pub).publish(msg)
        wait_until(node.done.done, timeout=10.0)
        wait_until(lambda: node.session.evaluator.counts()["results_for_unseen_stamps_frames"])
        wait_until(lambda: node._bad["bad_results"])
    finally:
        executor.shutdown()
        thread.join(timeout=5)
        node.destroy_node()
        client.destroy_node()
        rclpy.shutdown(context=context)
    report = json.loads((tmp_path / order / "everything.json").read_text(encoding="utf-8"))
    instances = sum(len(t.objects) for t in truths)
    assert report["counts"]["frames_evaluated"] == 2
    assert report["counts"]["instances_evaluated"] == instances
    assert report["counts"]["results_for_unseen_stamps_frames"] == 1
    assert report["rejected_messages"]["bad_results"] == 1
    assert report["summary"]["recall_75"] == 1.0 and report["summary"]["ar_100"] == 1.0
    assert report["summary"]["masks_per_image"] == instances / 2
