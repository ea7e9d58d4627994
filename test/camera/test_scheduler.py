"""Round-robin ROI turns and the settle rule (pure core)."""

from __future__ import annotations

import pytest

from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.core.geometry import Roi

A, B, C = Roi(0, 0, 100, 100), Roi(500, 0, 100, 100), Roi(0, 500, 100, 100)


def run(
    scheduler: RoiScheduler, rois: dict[int, Roi], frames: range
) -> list[tuple[int | None, str]]:
    """Drive the scheduler like the node: attribute each frame, then advance."""
    seen = []
    for frame in frames:
        who = scheduler.attribute(frame)
        seen.append((who.object_id, who.reason))
        scheduler.advance(frame, rois, attributed=who.object_id is not None)
    return seen


def test_nothing_is_attributed_before_an_roi_is_set() -> None:
    s = RoiScheduler(turn_frames=2, settle_frames=1)
    assert s.attribute(1).reason == "idle"
    assert s.advance(1, {}, attributed=False) is None


def test_after_an_roi_change_the_settle_frames_belong_to_nobody() -> None:
    s = RoiScheduler(turn_frames=3, settle_frames=2)
    assert s.advance(0, {1: A}, attributed=False) == A  # set while handling frame 0
    assert [s.attribute(f).object_id for f in (1, 2)] == [None, None]
    assert s.attribute(1).reason == "settling" and s.attribute(1).roi == A
    assert s.attribute(3).object_id == 1 and s.attribute(3).roi == A


def test_two_prompts_alternate_with_turns_and_settle_gaps() -> None:
    s = RoiScheduler(turn_frames=2, settle_frames=1)
    s.advance(0, {1: A, 2: B}, attributed=False)
    seen = run(s, {1: A, 2: B}, range(1, 13))
    assert [oid for oid, _ in seen] == [None, 1, 1, None, 2, 2, None, 1, 1, None, 2, 2]
    assert s.switches == 5


def test_three_prompts_go_round_in_ascending_id_and_settle_zero_attributes_at_once() -> None:
    s = RoiScheduler(turn_frames=1, settle_frames=0)
    rois = {3: C, 1: A, 2: B}
    s.advance(0, rois, attributed=False)
    seen = run(s, rois, range(1, 7))
    assert [oid for oid, _ in seen] == [1, 2, 3, 1, 2, 3]


def test_one_prompt_standing_still_keeps_its_roi_without_settling_again() -> None:
    s = RoiScheduler(turn_frames=1, settle_frames=2)
    s.advance(0, {1: A}, attributed=False)
    seen = run(s, {1: A}, range(1, 8))
    assert [oid for oid, _ in seen] == [None, None, 1, 1, 1, 1, 1]
    assert s.switches == 1
    # When it moves (tracking re-planned its ROI), the next turn settles again.
    moved = Roi(10, 0, 100, 100)
    seen = run(s, {1: moved}, range(8, 12))
    assert [oid for oid, _ in seen] == [1, None, None, 1]


def test_frames_without_attribution_do_not_use_up_a_turn() -> None:
    s = RoiScheduler(turn_frames=2, settle_frames=0)
    s.advance(0, {1: A, 2: B}, attributed=False)
    assert s.attribute(1).object_id == 1
    s.advance(1, {1: A, 2: B}, attributed=False)  # e.g. the prompt was stale
    assert s.attribute(2).object_id == 1
    s.advance(2, {1: A, 2: B}, attributed=True)
    assert s.attribute(3).object_id == 1
    s.advance(3, {1: A, 2: B}, attributed=True)
    assert s.attribute(4).object_id == 2


def test_a_removed_or_replaced_prompt_ends_its_turn() -> None:
    s = RoiScheduler(turn_frames=10, settle_frames=0)
    s.advance(0, {1: A, 2: B}, attributed=False)
    assert s.advance(1, {2: B}, attributed=True) == B  # object 1 removed
    assert s.current == 2
    s.end_turn(2)  # replaced by a new prompt
    assert s.advance(2, {1: C, 2: B}, attributed=True) == C
    assert s.current == 1
    assert s.advance(3, {}, attributed=True) is None and s.current is None


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        RoiScheduler(turn_frames=0)
    with pytest.raises(ValueError):
        RoiScheduler(settle_frames=-1)
    s = RoiScheduler()
    s.configure(3, 0)
    assert (s.turn_frames, s.settle_frames) == (3, 0)


def test_a_turn_can_move_its_roi_and_settles_again() -> None:
    s = RoiScheduler(turn_frames=1, settle_frames=1)
    assert s.advance(0, {1: A, 2: B}, attributed=False) == A
    assert s.attribute(1).reason == "settling" and s.attribute(2).object_id == 1
    # Object 1's turn moves to C after frame 2: frame 3 settles, frame 4 is C's, and the
    # turn's attributed frame of A does not end it.
    assert s.continues(1) and not s.continues(2)
    assert s.retarget(2, 1, C) == C
    assert s.attribute(3).reason == "settling"
    assert s.attribute(4).object_id == 1 and s.attribute(4).roi == C
    assert s.retarget(4, 1, C) is None  # the same region: nothing to settle
    assert s.attribute(5).object_id == 1 and s.switches == 2 and s.turns == 1
    # Not object 2's turn, and an ended turn cannot be moved.
    assert s.retarget(5, 2, B) is None
    s.end_turn(1)
    assert not s.continues(1) and s.retarget(5, 1, B) is None
    assert s.advance(5, {1: A, 2: B}, attributed=True) == B and s.turns == 2
