"""Timed playback: when a message of bag time ``t`` is due on the wall clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TimedSchedule:
    """Bag time -> wall time at ``rate`` x real time (2.0 = twice as fast).

    ``start(bag_ns, wall_s)`` anchors the schedule (again for each loop); ``due(bag_ns)``
    is the wall time (same clock as ``wall_s``, seconds) a message of bag time
    ``bag_ns`` goes out. Bag times before the anchor are due at once.
    """

    rate: float
    bag_start_ns: int = 0
    wall_start_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.rate > 0.0:
            raise ValueError(f"rate must be > 0, got {self.rate}")

    def start(self, bag_ns: int, wall_s: float) -> None:
        self.bag_start_ns = bag_ns
        self.wall_start_s = wall_s

    def due(self, bag_ns: int) -> float:
        offset = max(0, bag_ns - self.bag_start_ns)
        return self.wall_start_s + offset / 1e9 / self.rate

    def bag_time_at(self, wall_s: float) -> int:
        """The bag time (ns) playing at wall time ``wall_s``."""
        return self.bag_start_ns + int(max(0.0, wall_s - self.wall_start_s) * self.rate * 1e9)

    def wait_s(self, bag_ns: int, now_s: float) -> float:
        """Seconds to wait at ``now_s`` before a message of bag time ``bag_ns``."""
        return max(0.0, self.due(bag_ns) - now_s)
