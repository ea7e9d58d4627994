"""The replay of replay_node without rclpy: the players, frame grouping, lock-step
bookkeeping, the timed-playback schedule and topic selection.

- ``player``: ``ReplayPlayer``, the lock-step and timed players (prefetching, service
  calls, summary) over a ``ReplayIO`` that the node implements with rclpy.
- ``groups``: bag messages -> frame groups (one header stamp each) in publishing order.
- ``lockstep``: ``LockstepLedger``, which frame waits for which result, and the counts.
- ``timing``: ``TimedSchedule``, bag time -> wall time at a rate factor.
- ``topics``: which bag topics a replay plays, with their message classes.
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
