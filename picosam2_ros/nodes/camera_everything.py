"""camera_node's segment everything: the sweep's settings from the node's parameters and
each completed sweep on the topic `everything` (picosam2_ros/Segmentation, the results
QoS). Wiring only: the sweep is picosam2_ros.camera.sweep, driven frame by frame by the
camera's state machine (picosam2_ros.camera.machine)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from rclpy.node import Node
from std_msgs.msg import Header

from picosam2_ros.camera.machine import CameraStateMachine
from picosam2_ros.camera.sweep import SweepResult
from picosam2_ros.core.everything import EverythingError
from picosam2_ros.io.messages import frame_to_msg, stamp_from_ns
from picosam2_ros.msg import Segmentation
from picosam2_ros.nodes.everything import everything_settings
from picosam2_ros.nodes.qos import RESULTS_QOS

#: Parameters besides ``everything_*`` that change the sweep.
_SWEEP_INPUTS = frozenset({"roi_side_px", "mask_threshold"})


class SweepOutput:
    """The sweep's configuration and publisher for one camera node."""

    def __init__(
        self, node: Node, machine: CameraStateMachine, report: Callable[[str, str], None]
    ) -> None:
        self._machine = machine
        self._report = report
        self._pub = node.create_publisher(Segmentation, "everything", RESULTS_QOS)

    @staticmethod
    def affected(names: Collection[str]) -> bool:
        """Whether a change of these parameters changes the sweep."""
        return any(n.startswith("everything_") or n in _SWEEP_INPUTS for n in names)

    def configure(self, params: Mapping[str, Any]) -> None:
        """Sweep with the parameters' grid and filters (crop side ``roi_side_px``), or
        stop sweeping when ``everything_points_per_side`` is 0; settings the sweep cannot
        use are reported and the sweep in force stays."""
        settings = everything_settings(
            params, crop_side_px=params["roi_side_px"], threshold=params["mask_threshold"]
        )
        try:
            self._machine.configure_sweep(settings if settings.points_per_side > 0 else None)
        except EverythingError as exc:
            self._report(f"sweep:{exc}", f"segment everything left as it was: {exc}")

    def publish(self, swept: SweepResult | None, header: Header, backend: str) -> None:
        """A completed sweep, stamped with the frame that completed it; each object's
        source_stamp is the frame its mask came from."""
        if swept is None:
            return
        stamps = [stamp_from_ns(ns) for ns in swept.stamps_ns]
        self._pub.publish(frame_to_msg(swept.result, header, backend, (), stamps))
