"""The package as a ROS 2 user runs it: built by colcon, started by the real `ros2 launch`
and `ros2 run` executables, as separate processes in this test process's ROS domain.

The colcon workspace is built once per test run (scripts/colcon_check.sh, which also
checks the install). `ros2` and launch_ros come from ROS 2 Jazzy's sources
(scripts/install_launch_tooling.sh); where those sources were not beside the project at
setup, the tests that need them are skipped with that reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from picosam2_ros.bags import coco_to_bag

from ..tiny_coco import write_tiny_coco

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HAS_ROS2_CLI = (VENV_BIN / "ros2").exists()

needs_ros2_cli = pytest.mark.skipif(
    not HAS_ROS2_CLI,
    reason="the ros2 command and launch_ros are not installed: make setup installs them from "
    "../shared/vendor/ros2-jazzy (scripts/install_launch_tooling.sh), which is absent here",
)


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built by colcon in a workspace of its own; its install/ folder."""
    ws = tmp_path_factory.mktemp("colcon_ws")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "colcon_check.sh")],
        env={**os.environ, "COLCON_WS": str(ws)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"colcon build failed:\n{done.stdout}\n{done.stderr}"
    return ws / "install"


@pytest.fixture(scope="session")
def tiny_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A bag from picosam2-make-bag's library: 4 frames, 8 instances."""
    data = write_tiny_coco(tmp_path_factory.mktemp("launch_coco"), [(224, 176)] * 4, [3, 1, 2, 2])
    out = tmp_path_factory.mktemp("launch_bags") / "tiny"
    coco_to_bag(data.annotations, data.images, out, progress=False)
    return out, data.instances


class Ros2Process:
    """`ros2 <args>` (or another ``program``) from a colcon install, in its own process
    group (as a terminal runs it: Ctrl-C reaches every process of the group), its output
    (stdout and stderr) collected line by line."""

    def __init__(self, install: Path, *args: str, program: str = "ros2") -> None:
        script = f'source "$0/setup.bash" && exec {program} "$@"'
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["bash", "-c", script, str(install), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, needle: str, timeout: float = 60.0) -> str:
        return wait_until(
            lambda: next((line for line in self.lines if needle in line), None),
            timeout,
            f"no line with {needle!r}; output so far:\n" + "\n".join(self.lines[-40:]),
        )

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """What Ctrl-C in a terminal does: the signal to the whole process group."""
        os.killpg(self.proc.pid, sig)

    def signal(self, sig: int) -> None:
        """The signal to this process only (what launch or a supervisor sends)."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Exit code; a run that does not end in time is killed and fails the test."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"did not end within {timeout} s:\n" + self.output)
        self._reader.join(timeout=5.0)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def ros2(colcon_install: Path) -> Iterator[Callable[..., Ros2Process]]:
    started: list[Ros2Process] = []

    def start(*args: str, program: str = "ros2") -> Ros2Process:
        started.append(Ros2Process(colcon_install, *args, program=program))
        return started[-1]

    yield start
    for run in started:
        run.kill()


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"after {timeout} s: {what}")
