"""The pure packages stay pure: importing every module of them loads no rclpy (they run,
and are tested, without a ROS graph)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(len(names), "rclpy" in sys.modules)
"""


@pytest.mark.parametrize("package", ["picosam2_ros.camera", "picosam2_ros.replay"])
def test_importing_every_module_loads_no_rclpy(package: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, package], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) >= 5, out  # the modules were found and imported
    assert out[1] == "False", f"{package} imports rclpy"
