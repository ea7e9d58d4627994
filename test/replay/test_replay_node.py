"""replay_node on a real rclpy graph (real DDS, own domain, localhost), with real bags
written by picosam2_ros.bags and by an independent mcap writer, and the REAL
segmenter_node running the colour-match model."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

from rosgraph_msgs.msg import Clock

from picosam2_ros.bags import DatasetBag, coco_to_bag, read_dataset
from picosam2_ros.bags.layout import frame_stamp_ns, time_ns

from .conftest import TinySet, write_tiny_coco
from .graph import ReplayGraph


def expected_pairs(tiny_set: TinySet) -> set[tuple[int, int]]:
    return {
        (frame_stamp_ns(index), object_id)
        for index, ids in enumerate(tiny_set.object_ids)
        for object_id in ids
    }


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def test_lockstep_through_the_segmenter_answers_every_instance_exactly_once(
    tiny_bag: Path, tiny_set: TinySet, colour_model: Path
) -> None:
    # The replayer's image topic is renamed by ordinary ROS remapping.
    graph = ReplayGraph(
        {"bag": str(tiny_bag), "mode": "lockstep", "lockstep_timeout_s": 5.0},
        model=colour_model,
        replay_remaps=["/camera/image_raw:=/image"],
        image_topic="/image",
    )
    try:
        summary = graph.play()
        rec = graph.recorder
        wait_for(lambda: len(rec.results) >= summary.frames_published)
        wait_for(lambda: rec.replay_diagnostics().get("state") == "done")
        time.sleep(0.2)  # anything duplicated would arrive now
    finally:
        graph.close()

    frames = len(tiny_set.object_ids)
    assert summary.frames_total == summary.frames_published == frames
    ls = summary.lockstep
    assert ls["results"] == frames and ls["timed_out"] == 0
    assert ls["duplicate_results"] == ls["late_results"] == ls["unexpected_results"] == 0
    assert ls["objects_expected"] == ls["objects_answered"] == tiny_set.instances
    assert ls["objects_missing"] == ls["objects_unexpected"] == ls["frames_incomplete"] == 0
    calls = summary.calls
    assert (calls["clear_ok"], calls["clear_skipped"], calls["clear_failed"]) == (frames, 0, 0)
    # The barrier: one no-op call per prompt + 1 per frame.
    assert calls["barrier_ok"] == tiny_set.instances + frames
    # Every frame delivered once, in bag order; every instance answered once.
    stamps = [frame_stamp_ns(i) for i in range(frames)]
    assert rec.images == stamps
    assert rec.ground_truth == stamps
    pairs = rec.result_pairs()
    assert set(pairs) == expected_pairs(tiny_set)
    assert set(pairs.values()) == {1}
    assert [time_ns(r.header.stamp) for r in rec.results] == stamps
    # Prompts of a frame are on the wire once each, before its image.
    assert Counter(rec.prompts) == Counter(expected_pairs(tiny_set))
    # /dataset/info once, latched; final diagnostics say done.
    assert len(rec.info) == 1 and json.loads(rec.info[0])["format"] == "picosam2_ros/coco-bag"
    diag = rec.replay_diagnostics()
    assert diag["state"] == "done" and diag["frames_published"] == str(frames)
    assert diag["progress_percent"] == "100.0" and diag["bag"] == str(tiny_bag)


def test_lockstep_without_a_segmenter_times_out_each_frame_and_counts_it(
    tiny_bag: Path, tiny_set: TinySet
) -> None:
    graph = ReplayGraph(
        {
            "bag": str(tiny_bag),
            "mode": "lockstep",
            "lockstep_timeout_s": 0.15,
            "start_delay_s": 0.5,
        }
    )
    try:
        summary = graph.play()
        rec = graph.recorder
        wait_for(lambda: len(rec.images) >= summary.frames_published)
        wait_for(lambda: rec.replay_diagnostics().get("state") == "done")
    finally:
        graph.close()
    frames = len(tiny_set.object_ids)
    assert summary.frames_published == frames
    assert summary.lockstep["timed_out"] == frames and summary.lockstep["results"] == 0
    # Without the segmenter's services nothing is called, and that is counted.
    assert summary.calls["clear_ok"] == 0 and summary.calls["clear_skipped"] == frames
    assert rec.images == [frame_stamp_ns(i) for i in range(frames)]
    diag = rec.replay_diagnostics()
    assert diag["timed_out"] == str(frames)


def test_timed_mode_plays_in_order_at_the_rate_and_loops_with_clock(
    tiny_set: TinySet, tmp_path: Path
) -> None:
    bag = tmp_path / "tiny_sqlite"
    coco_to_bag(tiny_set.annotations, tiny_set.images, bag, storage="sqlite3", progress=False)
    frames = len(tiny_set.object_ids)
    stamps = [frame_stamp_ns(i) for i in range(frames)]

    # Rate 2: the 0.4 s between first and last frame take at least about 0.2 s.
    graph = ReplayGraph({"bag": str(bag), "mode": "timed", "rate": 2.0, "start_delay_s": 2.0})
    try:
        summary = graph.play()
        rec = graph.recorder
        wait_for(lambda: len(rec.images) >= frames)
    finally:
        graph.close()
    assert summary.frames_published == frames and summary.seconds >= 0.15
    assert rec.images == stamps and rec.ground_truth == stamps
    assert Counter(rec.prompts) == Counter(expected_pairs(tiny_set))

    # Loop at rate 10 with /clock: two passes and more, stopped from outside.
    graph = ReplayGraph(
        {
            "bag": str(bag),
            "mode": "timed",
            "rate": 10.0,
            "loop": True,
            "publish_clock": True,
            "start_delay_s": 2.0,
        }
    )
    clocks: list[int] = []
    graph.client.create_subscription(
        Clock, "/clock", lambda m: clocks.append(time_ns(m.clock)), 100
    )
    try:
        runner = threading.Thread(target=graph.play)
        runner.start()
        wait_for(lambda: len(graph.recorder.images) >= 2 * frames + 1, timeout=10)
        graph.replay.stop()
        runner.join(timeout=5)
        assert not runner.is_alive()
    finally:
        graph.close()
    images = graph.recorder.images
    assert images[: 2 * frames] == stamps + stamps
    assert clocks and min(clocks) >= stamps[0] - 100_000_000 and max(clocks) <= stamps[-1]
    assert stamps[-1] in clocks


def test_a_bag_from_an_independent_writer_replays(tmp_path: Path) -> None:
    from test.bags.test_independent_writer import write_independent_bag

    truth = write_independent_bag(tmp_path / "independent")
    graph = ReplayGraph(
        {"bag": str(tmp_path / "independent"), "mode": "timed", "rate": 20.0, "start_delay_s": 2.0}
    )
    try:
        summary = graph.play()
        rec = graph.recorder
        wait_for(lambda: len(rec.images) >= 2 and len(rec.info) == 1)
    finally:
        graph.close()
    stamps = [frame["stamp"] for frame in truth["frames"]]
    assert summary.frames_published == summary.frames_total == 2
    assert rec.images == stamps and rec.ground_truth == stamps
    want = {(f["stamp"], oid) for f in truth["frames"] for oid in f["prompts"]}
    assert Counter(rec.prompts) == Counter(want)
    assert json.loads(rec.info[0])["frames"][0]["image_id"] == 500
    with DatasetBag(tmp_path / "independent") as bag:
        assert bag.info is not None


def test_lockstep_with_frames_of_changing_size_answers_every_instance(
    tmp_path: Path, colour_model: Path
) -> None:
    """COCO mixes landscape and portrait images: a frame's prompts may lie outside the
    previous frame, and must still be answered (the segmenter judges prompt placement
    against the frame it segments)."""
    tiny = write_tiny_coco(tmp_path / "coco", [(400, 200), (200, 400)], [2, 2])
    bag = tmp_path / "mixed"
    coco_to_bag(tiny.annotations, tiny.images, bag, progress=False)
    _, frames, _ = read_dataset(bag, images=False)
    # The portrait frame has prompts below the landscape frame's last row.
    assert any(p.point and p.point[1] >= frames[0].height for p in frames[1].prompts.values())
    graph = ReplayGraph({"bag": str(bag), "mode": "lockstep"}, model=colour_model)
    try:
        summary = graph.play()
    finally:
        graph.close()
    assert summary.lockstep["timed_out"] == 0
    assert summary.lockstep["objects_missing"] == 0
