"""bag -> replay_node (lock-step) -> segmenter_node -> evaluator_node, all real nodes on
one real rclpy graph: every instance is evaluated exactly once, and the per-instance
IoUs equal picosam2-evaluate's on the same bag and model."""

from __future__ import annotations

import json
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from picosam2_ros.nodes.evaluator_node import EvaluatorNode
from picosam2_ros.nodes.replay_node import ReplayNode
from picosam2_ros.nodes.segmenter_node import SegmenterNode
from picosam2_ros.tools import evaluate

from ..node.harness import spinning, wait_until
from .conftest import TinySet
from .test_evaluator_node import per_instance


def test_replay_segmenter_evaluator_equals_offline(
    tiny_set: TinySet, box_bag: Path, colour_model: Path, tmp_path: Path
) -> None:
    offline_dir, node_dir = tmp_path / "offline", tmp_path / "node"
    args = ["--bag", str(box_bag), "--model", str(colour_model), "--box-model", str(colour_model)]
    assert evaluate.main([*args, "--report", str(offline_dir), "--no-progress"]) == 0
    offline = json.loads((offline_dir / "report.json").read_text(encoding="utf-8"))

    context = Context()
    rclpy.init(context=context)
    remaps = [
        "-r",
        "segmentation:=/segmentation",
        "-r",
        "clear_prompts:=/clear_prompts",
        "-r",
        "remove_object:=/remove_object",
    ]
    segmenter = SegmenterNode(
        context=context,
        parameter_overrides=[
            Parameter("point_model", value=str(colour_model)),
            Parameter("box_model", value=str(colour_model)),
            Parameter("image_qos", value="reliable"),
            Parameter("max_objects", value=255),
        ],
        cli_args=[
            "--ros-args",
            "-r",
            "image:=/camera/image_raw",
            "-r",
            "prompts:=/prompts",
            *remaps,
        ],
    )
    evaluator = EvaluatorNode(
        context=context,
        parameter_overrides=[
            Parameter("report_dir", value=str(node_dir)),
            Parameter("idle_timeout_s", value=0.0),
        ],
        cli_args=[
            "--ros-args",
            "-r",
            "ground_truth:=/ground_truth",
            "-r",
            "segmentation:=/segmentation",
            "-r",
            "image:=/camera/image_raw",
        ],
    )
    replay = ReplayNode(
        context=context,
        parameter_overrides=[
            Parameter("bag", value=str(box_bag)),
            Parameter("mode", value="lockstep"),
            Parameter("lockstep_timeout_s", value=5.0),
            Parameter("require_subscribers", value=["/camera/image_raw", "/ground_truth"]),
        ],
        cli_args=["--ros-args", *remaps],
    )
    with spinning(context, segmenter, evaluator, replay):
        # The segmenter's results must reach the evaluator from the first frame on.
        wait_until(lambda: segmenter._seg_pub.get_subscription_count() >= 2)
        summary = replay.run()
        wait_until(evaluator.done.done, timeout=10.0)

    assert summary.lockstep["timed_out"] == 0
    ros = json.loads((node_dir / "report.json").read_text(encoding="utf-8"))
    counts = ros["counts"]
    assert counts["instances_evaluated"] == tiny_set.instances
    assert counts["frames_evaluated"] == len(tiny_set.object_ids)
    for key in (
        "instances_missing",
        "instances_unmatched",
        "duplicate_result_frames",
        "duplicate_ground_truth_frames",
        "results_for_unseen_stamps_frames",
    ):
        assert counts[key] == 0, key
    assert per_instance(ros) == per_instance(offline)
    assert ros["summary"] == offline["summary"]
    assert ros["by_category"] == offline["by_category"]
