"""Every node, run as `ros2 run` runs it (the colcon-installed executable), ends on
SIGINT, on a double SIGINT and on SIGTERM with exit code 0, printing nothing after the
signal but its own shutdown line: no traceback, no error from a thread that outlived its
context."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Ros2Process, needs_ros2_cli

pytestmark = [needs_ros2_cli, pytest.mark.slow]

SIGNALS = {
    "SIGINT": [signal.SIGINT],
    "double SIGINT": [signal.SIGINT, signal.SIGINT],
    "SIGTERM": [signal.SIGTERM],
}


def node_args(node: str, tmp_path: Path, bag: Path) -> tuple[list[str], str]:
    """The node's ROS arguments and the log text that says it is serving."""
    if node == "camera_node":
        network = tmp_path / "picosam2.rpk"
        network.write_bytes(b"network package stand-in" * 64)
        return ["-p", f"network:={network}", "-p", "emulator_source:=moving"], "streaming"
    if node == "replay_node":
        # Waits for its subscribers (nobody here) before the first frame.
        return ["-p", f"bag:={bag}", "-p", "start_delay_s:=60.0"], "replay of"
    if node == "evaluator_node":
        return ["-p", f"report_dir:={tmp_path / 'report'}"], "evaluating"
    return [], "segmenting"


@pytest.mark.parametrize("signals", sorted(SIGNALS))
@pytest.mark.parametrize("node", ["segmenter_node", "camera_node", "replay_node", "evaluator_node"])
def test_node_ends_with_code_0_and_only_its_shutdown_line(
    colcon_install: Path,
    ros2: Callable[..., Ros2Process],
    tiny_bag: tuple[Path, int],
    tmp_path: Path,
    node: str,
    signals: str,
) -> None:
    args, serving = node_args(node, tmp_path, tiny_bag[0])
    executable = colcon_install / "picosam2_ros" / "lib" / "picosam2_ros" / node
    run = ros2("--ros-args", *args, program=str(executable))
    run.wait_for_line(serving)
    before = len(run.lines)
    for sig in SIGNALS[signals]:
        run.signal(sig)
    assert run.wait(timeout=30.0) == 0, run.output
    after = run.lines[before:]
    name = signal.Signals(SIGNALS[signals][0]).name
    assert len(after) == 1 and after[0].endswith(f"{name}: shutting down"), run.output
