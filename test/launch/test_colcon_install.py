"""The colcon build the launch tests start from: it runs whether or not the ros2 command
is installed, and scripts/colcon_check.sh (its builder) already imported the messages and
a node from the install in a clean environment."""

from __future__ import annotations

import os
from pathlib import Path


def test_colcon_install_holds_executables_launch_files_config_and_shipped_models(
    colcon_install: Path,
) -> None:
    prefix = colcon_install / "picosam2_ros"
    for node in ("segmenter_node", "camera_node", "replay_node", "evaluator_node"):
        assert os.access(prefix / "lib" / "picosam2_ros" / node, os.X_OK), node
    share = prefix / "share" / "picosam2_ros"
    for launch_file in ("camera.launch.py", "replay.launch.py", "segmenter.launch.py"):
        assert (share / "launch" / launch_file).is_file(), launch_file
    assert (share / "config" / "segmenter.yaml").is_file()
    models = list(prefix.glob("lib/python3*/site-packages/picosam2_ros/models/*.onnx"))
    assert {"picosam2_point.onnx", "picosam2_box.onnx"} <= {m.name for m in models}
