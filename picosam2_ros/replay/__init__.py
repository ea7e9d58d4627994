"""Pure helpers of ``replay_node`` (no rclpy): frame grouping, lock-step bookkeeping and
the timed-playback schedule.

- ``groups``: bag messages -> frame groups (one header stamp each) in publishing order.
- ``lockstep``: ``LockstepLedger``, which frame waits for which result, and the counts.
- ``timing``: ``TimedSchedule``, bag time -> wall time at a rate factor.
"""

from picosam2_ros.replay.groups import FrameGroup, GroupItem, group_by_stamp, parse_msgtype
from picosam2_ros.replay.lockstep import LockstepLedger, LockstepStats, ResultOutcome
from picosam2_ros.replay.timing import TimedSchedule

__all__ = [
    "FrameGroup",
    "GroupItem",
    "LockstepLedger",
    "LockstepStats",
    "ResultOutcome",
    "TimedSchedule",
    "group_by_stamp",
    "parse_msgtype",
]
