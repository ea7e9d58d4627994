"""The pure side of the replay: grouping, lock-step bookkeeping, timed schedule."""

from __future__ import annotations

import pytest

from picosam2_ros.replay import (
    GroupItem,
    LockstepLedger,
    ResultOutcome,
    TimedSchedule,
    group_by_stamp,
    parse_msgtype,
)

IMAGE = "sensor_msgs/msg/Image"
PROMPT = "picosam2_ros/msg/Prompt"
GT = "picosam2_ros/msg/Segmentation"
INFO = "sensor_msgs/msg/CameraInfo"


def item(topic: str, msgtype: str, stamp: int | None, t: int, oid: int | None = None) -> GroupItem:
    return GroupItem(topic, msgtype, t, stamp, message=None, object_id=oid)


def test_groups_follow_header_stamps_and_put_images_last() -> None:
    items = [
        # Frame 1: the image first in bag order, prompts after it at the same bag time.
        item("/img", IMAGE, 1, 10),
        item("/prompts", PROMPT, 1, 10, 7),
        item("/prompts", PROMPT, 1, 10, 8),
        item("/gt", GT, 1, 10),
        item("/tf", "tf2_msgs/msg/TFMessage", None, 11),  # headerless: joins frame 1
        item("/info", INFO, 2, 20),
        item("/img", IMAGE, 2, 20),
        item("/prompts", PROMPT, 2, 20, 9),
    ]
    groups = list(group_by_stamp(items))
    assert [(g.index, g.stamp_ns, len(g.items)) for g in groups] == [(0, 1, 5), (1, 2, 3)]
    first, second = groups
    assert [i.topic for i in first.before_images() + first.images()] == [
        "/prompts",
        "/prompts",
        "/gt",
        "/tf",
        "/img",
    ]
    assert first.prompt_ids == [7, 8] and first.has_image and first.first_time_ns == 10
    assert [i.topic for i in second.before_images() + second.images()] == [
        "/info",
        "/prompts",
        "/img",
    ]


def test_headerless_messages_first_take_the_next_stamp() -> None:
    groups = list(
        group_by_stamp([item("/s", "std_msgs/msg/String", None, 0), item("/img", IMAGE, 5, 1)])
    )
    assert len(groups) == 1 and groups[0].stamp_ns == 5


def test_ledger_classifies_every_result_once() -> None:
    ledger = LockstepLedger()
    ledger.send(1, [7, 8])
    with pytest.raises(RuntimeError):
        ledger.send(2)
    assert ledger.on_result(99, []) == ResultOutcome.UNEXPECTED
    assert ledger.on_result(1, [7]) == ResultOutcome.RELEASED
    assert ledger.pending is None
    assert ledger.on_result(1, [7, 8]) == ResultOutcome.DUPLICATE
    ledger.send(2, [9])
    assert ledger.time_out() == 2
    assert ledger.on_result(2, [9]) == ResultOutcome.LATE
    assert ledger.on_result(2, [9]) == ResultOutcome.DUPLICATE
    ledger.send(3, [])
    assert ledger.on_result(3, [4]) == ResultOutcome.RELEASED
    s = ledger.stats
    assert (s.frames_sent, s.results, s.timed_out, s.late_results) == (3, 2, 1, 1)
    assert (s.duplicate_results, s.unexpected_results) == (2, 1)
    assert (s.objects_expected, s.objects_answered, s.objects_missing) == (2, 1, 1)
    assert (s.objects_unexpected, s.frames_incomplete) == (1, 2)


def test_schedule_scales_bag_time_by_the_rate() -> None:
    schedule = TimedSchedule(rate=2.0)
    schedule.start(bag_ns=1_000_000_000, wall_s=50.0)
    assert schedule.due(1_000_000_000) == 50.0
    assert schedule.due(2_000_000_000) == pytest.approx(50.5)
    assert schedule.due(0) == 50.0  # before the anchor: at once
    assert schedule.wait_s(2_000_000_000, now_s=50.2) == pytest.approx(0.3)
    assert schedule.bag_time_at(50.25) == 1_500_000_000
    with pytest.raises(ValueError):
        TimedSchedule(rate=0.0)


def test_message_type_names() -> None:
    assert parse_msgtype("sensor_msgs/msg/Image") == ("sensor_msgs", "Image")
    assert parse_msgtype("std_msgs/String") == ("std_msgs", "String")
    for bad in ("Image", "a/srv/B", "a//B", ""):
        with pytest.raises(ValueError):
            parse_msgtype(bad)
