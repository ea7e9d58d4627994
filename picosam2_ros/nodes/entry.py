"""The nodes' executables (``ros2 run picosam2_ros <node>``).

A node module takes a second or more to import (rclpy, onnxruntime, OpenCV,
matplotlib), and ``ros2 launch`` may send SIGINT while it does: with Python's default
handler that is a KeyboardInterrupt traceback from deep inside an import. So the handlers
go in first, here, before anything heavy is imported: a signal during start-up ends the
process quietly with code 0; once serving, the node's own handling takes over
(``startup.StopSignals``).
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType

_stopped_during_startup = False


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    global _stopped_during_startup
    _stopped_during_startup = True
    sys.exit(0)


def _run(module: str) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)
    try:
        node = importlib.import_module(f"picosam2_ros.nodes.{module}")
    except BaseException:
        # A SystemExit raised inside a C extension's initialisation (matplotlib's, for
        # one) comes out as an ImportError: a stop during start-up is still a quiet exit.
        if _stopped_during_startup:
            raise SystemExit(0) from None
        raise
    node.main()


def segmenter_node() -> None:
    _run("segmenter_node")


def camera_node() -> None:
    _run("camera_node")


def replay_node() -> None:
    _run("replay_node")


def evaluator_node() -> None:
    _run("evaluator_node")
