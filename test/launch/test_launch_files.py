"""Every launch file run for real with `ros2 launch` against the colcon install: its
arguments load, the replay evaluates a bag end to end, the segmenter and the emulated
camera answer a prompt, and Ctrl-C ends each launch with code 0 and no traceback."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import Point
from picosam2_ros.msg import Prompt, Segmentation
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_system_default
from sensor_msgs.msg import Image

from picosam2_ros.testing.scenes import SceneObject, render_scene

from ..node.harness import image_msg
from .conftest import Ros2Process, needs_ros2_cli, wait_until

pytestmark = [needs_ros2_cli, pytest.mark.slow]

LAUNCH_ARGS = {
    "replay.launch.py": {"bag", "report_dir", "mode", "rate", "require_subscribers"},
    "segmenter.launch.py": {"image", "params_file", "image_qos", "point_model"},
    "camera.launch.py": {"network", "emulator_source", "params_file", "click_topic"},
}
#: What must never appear in a launch's output: a Python traceback, an error log, or a
#: callback that failed while its node was torn down.
FAILURE = re.compile(
    r"Traceback|\[ERROR\]|KeyboardInterrupt|context is invalid|exception was never retrieved"
)


def assert_clean_end(run: Ros2Process) -> None:
    code = run.wait()
    assert code == 0, run.output
    bad = [line for line in run.lines if FAILURE.search(line)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("launch_file", sorted(LAUNCH_ARGS))
def test_every_launch_file_loads_and_lists_its_arguments(
    ros2: Callable[..., Ros2Process], launch_file: str
) -> None:
    run = ros2("launch", "picosam2_ros", launch_file, "--show-args")
    assert run.wait() == 0, run.output
    shown = set(re.findall(r"^\s+'(\w+)':", run.output, re.M))
    assert LAUNCH_ARGS[launch_file] <= shown, run.output


def report_counts(report_dir: Path) -> dict[str, int]:
    report = json.loads((report_dir / "report.json").read_text())
    return {k: int(v) for k, v in report["counts"].items() if isinstance(v, int)}


def test_replay_launch_evaluates_every_instance_of_a_bag(
    ros2: Callable[..., Ros2Process], tiny_bag: tuple[Path, int], tmp_path: Path
) -> None:
    bag, instances = tiny_bag
    run = ros2(
        "launch", "picosam2_ros", "replay.launch.py", f"bag:={bag}", f"report_dir:={tmp_path}"
    )
    assert_clean_end(run)
    counts = report_counts(tmp_path)
    assert counts["instances_evaluated"] == instances
    assert counts["ground_truth_instances"] == instances
    assert counts["instances_missing"] == 0


def test_replay_launch_takes_numbers_and_lists_as_typed_on_a_command_line(
    ros2: Callable[..., Ros2Process], tiny_bag: tuple[Path, int], tmp_path: Path
) -> None:
    """rate:=2 is a whole number for a float parameter, require_subscribers a YAML list."""
    bag, instances = tiny_bag
    run = ros2(
        "launch",
        "picosam2_ros",
        "replay.launch.py",
        f"bag:={bag}",
        f"report_dir:={tmp_path}",
        "mode:=timed",
        "rate:=2",
        "require_subscribers:=['/camera/image_raw', '/ground_truth']",
    )
    assert_clean_end(run)
    assert "timed replay" in run.output
    # Timed replay may drop frames the segmenter is still busy with, but every frame it
    # answers is answered with that frame's own prompts (none of another frame's objects).
    counts = report_counts(tmp_path)
    print(f"timed replay: {counts}")
    assert 0 < counts["instances_evaluated"] <= instances
    assert counts["instances_unmatched"] == 0
    assert counts["instances_missing_in_evaluated_frames"] == 0


def test_replay_launch_ends_at_once_with_the_reason_when_a_node_fails(
    ros2: Callable[..., Ros2Process], tmp_path: Path
) -> None:
    missing = tmp_path / "no_such.bag"
    run = ros2(
        "launch", "picosam2_ros", "replay.launch.py", f"bag:={missing}", f"report_dir:={tmp_path}"
    )
    code = run.wait(timeout=60.0)
    elapsed = time.monotonic() - run.started
    print(f"failed replay launch ended after {elapsed:.1f} s with code {code}")
    assert code != 0
    reasons = [line for line in run.lines if "replay_node: error:" in line]
    assert len(reasons) == 1 and str(missing) in reasons[0], run.output
    assert "replay_node-3 exited with code 2" in run.output
    # The other nodes were stopped cleanly: no traceback, no other failure.
    assert "Traceback" not in run.output
    assert run.output.count("Caught exception in launch") == 1, run.output
    assert not (tmp_path / "report.json").exists()


class Client:
    """A node in the test process: publishes images and prompts, records results."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("launch_test_client", context=self.context)
        self.results: list[Segmentation] = []
        latched = QoSProfile(depth=10, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(Segmentation, "/segmentation", self.results.append, latched)
        self.prompts = self.node.create_publisher(Prompt, "/prompts", 10)
        self.images = self.node.create_publisher(Image, "/test/image", qos_profile_system_default)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def masks_for(self, object_id: int) -> list[np.ndarray]:
        out = []
        for result in self.results:
            for obj in result.objects:
                if obj.object_id == object_id and obj.status == 0 and obj.mask.width:
                    mask = np.frombuffer(bytes(obj.mask.data), np.uint8)
                    out.append(mask.reshape(obj.mask.height, obj.mask.width))
        return out

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def point_prompt(object_id: int, x: float, y: float) -> Prompt:
    prompt = Prompt(object_id=object_id)
    prompt.points = [Point(x=x, y=y)]
    prompt.labels = bytes([1])
    return prompt


def test_segmenter_launch_answers_a_prompt_and_stops_cleanly_on_ctrl_c(
    ros2: Callable[..., Ros2Process],
) -> None:
    run = ros2(
        "launch", "picosam2_ros", "segmenter.launch.py", "image:=/test/image", "image_qos:=reliable"
    )
    run.wait_for_line("segmenting '/test/image'")
    scene, _ = render_scene(
        320, 240, [SceneObject("rect", (200, 40, 40), x=160, y=120, width=60, height=40)]
    )
    client = Client()
    try:
        wait_until(lambda: client.prompts.get_subscription_count() > 0, 20.0, "no prompt reader")
        client.prompts.publish(point_prompt(7, 160.0, 120.0))
        client.spin_for(0.5)
        for frame in range(200):
            client.images.publish(image_msg(scene, "rgb8", 1_000_000 * (frame + 1)))
            client.spin_for(0.1)
            if client.masks_for(7):
                break
        masks = client.masks_for(7)
        assert masks and masks[0].any(), run.output
    finally:
        client.close()
    run.interrupt()
    assert_clean_end(run)


def test_camera_launch_with_the_emulator_answers_a_prompt_and_stops_cleanly_on_ctrl_c(
    ros2: Callable[..., Ros2Process], tmp_path: Path
) -> None:
    network = tmp_path / "picosam2.rpk"
    network.write_bytes(b"network package stand-in" * 64)
    run = ros2(
        "launch",
        "picosam2_ros",
        "camera.launch.py",
        f"network:={network}",
        "emulator_source:=moving",
    )
    run.wait_for_line("streaming")
    client = Client()
    try:
        wait_until(lambda: client.prompts.get_subscription_count() > 0, 20.0, "no prompt reader")
        client.prompts.publish(point_prompt(3, 320.0, 240.0))
        wait_until(lambda: client.spin_for(0.1) or client.masks_for(3), 30.0, "no mask")
    finally:
        client.close()
    run.interrupt()
    assert_clean_end(run)
