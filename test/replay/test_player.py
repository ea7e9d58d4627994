"""The lock-step and timed players without ROS, over a ReplayIO that behaves as the graph
around replay_node does: a segmenter that keeps the prompts it was sent since the last
clear_prompts and answers each image from its own thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from picosam2_ros.bags.reader import BagError
from picosam2_ros.replay import FrameGroup, GroupItem, ResultOutcome, group_by_stamp
from picosam2_ros.replay.groups import IMAGE_TYPES, PROMPT_TYPE
from picosam2_ros.replay.player import CallAnswer, PlayerSettings, ReplayIO, ReplayPlayer

IMAGE = sorted(IMAGE_TYPES)[0]
GT = "picosam2_ros/msg/Segmentation"
FRAME_NS = 100_000_000  # 10 frames per second of bag time


def bag(frames: int, prompts: tuple[int, ...] = (1, 2)) -> list[GroupItem]:
    """Per frame: its prompts, ground truth and image, all at the frame's stamp."""
    items = []
    for i in range(frames):
        stamp = (i + 1) * FRAME_NS
        items += [GroupItem("/prompts", PROMPT_TYPE, stamp, stamp, None, oid) for oid in prompts]
        items.append(GroupItem("/ground_truth", GT, stamp, stamp, None))
        items.append(GroupItem("/image", IMAGE, stamp, stamp, None))
    return items


class Graph(ReplayIO):
    """The graph as the player sees it; every event in ``events``, in order."""

    def __init__(
        self,
        answer: bool = True,
        answer_ids: slice = slice(None),
        clear: str = "ok",
        barrier: bool = True,
    ) -> None:
        self.player: ReplayPlayer | None = None
        self.events: list[tuple[Any, ...]] = []
        self.warnings: list[str] = []
        self.answer = answer
        self.answer_ids = answer_ids
        self.clear = clear
        self.barrier = barrier
        self.prompts: list[int] = []
        self.stop_after_images: int | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _event(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def publish(self, item: GroupItem) -> None:
        self._event("publish", item.topic, item.stamp_ns)
        if item.msgtype == PROMPT_TYPE and item.object_id is not None:
            self.prompts.append(item.object_id)
        if not item.is_image or self.player is None:
            return
        if self.answer and item.stamp_ns is not None:
            ids = self.prompts[self.answer_ids]
            thread = threading.Thread(target=self._answer, args=(item.stamp_ns, ids))
            self._threads.append(thread)
            thread.start()
        images = sum(1 for e in self.events if e[0] == "publish" and e[1] == "/image")
        if self.stop_after_images is not None and images >= self.stop_after_images:
            self.player.stop()

    def _answer(self, stamp: int, ids: list[int]) -> None:
        assert self.player is not None
        self._event("result", stamp)
        self.player.on_result(stamp, ids)

    def publish_clock(self, bag_ns: int) -> None:
        self._event("clock", bag_ns)

    def call(self, kind: str, timeout_s: float) -> CallAnswer | None:
        self._event("call", kind)
        if kind == "barrier":
            # remove_object for id 0 answers "no such object": success is not asked.
            return (
                CallAnswer("ok", "/remove_object", SimpleNamespace(success=False))
                if self.barrier
                else None
            )
        if self.clear in ("absent", "no answer"):
            return CallAnswer(self.clear, "/clear_prompts")
        self.prompts = []
        response = SimpleNamespace(success=self.clear == "ok", message="busy")
        return CallAnswer("ok", "/clear_prompts", response)

    def ok(self) -> bool:
        return True

    def info(self, text: str) -> None:
        self._event("info", text)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)


def player(graph: Graph, items: list[GroupItem], **settings: Any) -> ReplayPlayer:
    p = ReplayPlayer(
        graph,
        lambda: group_by_stamp(items),
        PlayerSettings(**{"lockstep_timeout_s": 5.0, **settings}),
        bag="test.mcap",
        frames_total=sum(1 for i in items if i.is_image),
        result_topic="/segmentation",
    )
    graph.player = p
    return p


def test_lockstep_sends_each_frame_after_the_previous_result_in_protocol_order() -> None:
    graph = Graph()
    summary = player(graph, bag(4), mode="lockstep").play()
    graph.join()
    assert summary.frames_published == 4 and not summary.stopped
    ls = summary.lockstep
    assert (ls["results"], ls["timed_out"], ls["late_results"]) == (4, 0, 0)
    assert (ls["objects_expected"], ls["objects_missing"], ls["frames_incomplete"]) == (8, 0, 0)
    # Per frame: clear, prompts, ground truth, prompts + 1 barrier calls, image, its result;
    # the next frame starts only after the result.
    per_frame = [
        ("call", "clear"),
        ("publish", "/prompts"),
        ("publish", "/prompts"),
        ("publish", "/ground_truth"),
        ("call", "barrier"),
        ("call", "barrier"),
        ("call", "barrier"),
        ("publish", "/image"),
        ("result",),
    ]
    shape = [e[:2] if e[0] != "result" else ("result",) for e in graph.events]
    assert shape == per_frame * 4
    results = [e[1] for e in graph.events if e[0] == "result"]
    assert results == [(i + 1) * FRAME_NS for i in range(4)]
    assert summary.calls == {
        "clear_ok": 4,
        "clear_skipped": 0,
        "clear_failed": 0,
        "barrier_ok": 12,
        "barrier_skipped": 0,
        "barrier_failed": 0,
    }
    assert summary.messages_published == 16
    level, _message, values = player(Graph(), []).diagnostics()
    assert level == "OK" and values["state"] == "starting"


def test_lockstep_counts_objects_a_result_leaves_out_and_warns() -> None:
    graph = Graph(answer_ids=slice(0, 1))  # answers only the first prompt
    p = player(graph, bag(3), mode="lockstep")
    summary = p.play()
    graph.join()
    ls = summary.lockstep
    assert (ls["results"], ls["objects_missing"], ls["frames_incomplete"]) == (3, 3, 3)
    level, message, values = p.diagnostics()
    assert level == "WARN" and "3 object(s) missing" in message
    assert values["objects_missing"] == "3" and values["progress_percent"] == "100.0"
    assert "objects missing 3 of 6" in summary.line()


def test_lockstep_without_results_times_out_and_accounts_for_late_ones() -> None:
    graph = Graph(answer=False)
    p = player(graph, bag(2), mode="lockstep", lockstep_timeout_s=0.05)
    summary = p.play()
    assert summary.lockstep["timed_out"] == 2 and summary.lockstep["results"] == 0
    # One warning per kind, however often it happens.
    assert len([w for w in graph.warnings if "no result on /segmentation" in w]) == 1
    assert p.on_result(FRAME_NS, [1, 2]) == ResultOutcome.LATE
    assert p.on_result(FRAME_NS, [1, 2]) == ResultOutcome.DUPLICATE
    assert p.on_result(7, None) == ResultOutcome.UNEXPECTED
    counts = p.summary().lockstep
    assert (counts["late_results"], counts["duplicate_results"]) == (1, 1)
    assert counts["unexpected_results"] == 1
    assert p.diagnostics()[0] == "WARN"


def test_stopping_while_waiting_neither_answers_nor_times_out_the_frame() -> None:
    graph = Graph(answer=False)
    graph.stop_after_images = 1
    p = player(graph, bag(3), mode="lockstep", lockstep_timeout_s=30.0)
    summary = p.play()
    assert summary.stopped and p.state == "stopped"
    assert summary.frames_published == 1
    assert summary.lockstep["timed_out"] == 0 and summary.lockstep["results"] == 0


@pytest.mark.parametrize("clear", ["absent", "no answer", "refused"])
def test_a_missing_or_refusing_clear_prompts_service_is_counted(clear: str) -> None:
    graph = Graph(clear=clear)
    p = player(graph, bag(3), mode="lockstep")
    summary = p.play()
    graph.join()
    counts = {"absent": "clear_skipped", "no answer": "clear_failed", "refused": "clear_failed"}
    assert summary.calls[counts[clear]] == 3 and summary.calls["clear_ok"] == 0
    assert len(graph.warnings) == 1
    assert "/clear_prompts" in graph.warnings[0] or "busy" in graph.warnings[0]
    # The frames are still played and answered.
    assert summary.lockstep["results"] == 3


def test_lockstep_without_a_barrier_service_still_answers_every_frame() -> None:
    graph = Graph(barrier=False)
    summary = player(graph, bag(2), mode="lockstep").play()
    graph.join()
    assert summary.lockstep["results"] == 2 and summary.calls["barrier_ok"] == 0
    assert ("call", "barrier") in graph.events  # asked, but not configured: not counted
    assert summary.calls["barrier_skipped"] == 0


def test_timed_plays_in_bag_order_with_the_clock_and_loops() -> None:
    graph = Graph(answer=False)
    graph.stop_after_images = 7  # two passes of 3 frames and one more
    # 1000 x real time: the 100 ms between frames take 0.1 ms.
    p = player(graph, bag(3, prompts=(5,)), mode="timed", rate=1000.0, loop=True)
    summary = p.play()
    images = [e[2] for e in graph.events if e[:2] == ("publish", "/image")]
    assert images == [FRAME_NS, 2 * FRAME_NS, 3 * FRAME_NS] * 2 + [FRAME_NS]
    assert summary.loops == 2 and summary.stopped
    # /clock reaches each frame's bag time before any of its messages goes out.
    for index, event in enumerate(graph.events):
        if event[0] == "publish":
            clock = [e[1] for e in graph.events[:index] if e[0] == "clock"][-1]
            assert clock == event[2]
    # A frame's prompts are cleared, sent and applied (prompts + 1 barrier calls) before
    # its image, every pass.
    assert summary.calls["clear_ok"] == 7 and summary.calls["barrier_ok"] == 14
    first_frame = graph.events[: graph.events.index(("publish", "/image", FRAME_NS)) + 1]
    assert [e[:2] for e in first_frame if e[0] != "clock"] == [
        ("call", "clear"),
        ("publish", "/prompts"),
        ("publish", "/ground_truth"),
        ("call", "barrier"),
        ("call", "barrier"),
        ("publish", "/image"),
    ]
    assert "2 passes" in summary.line()


def test_timed_without_loop_plays_once_and_is_done() -> None:
    graph = Graph(answer=False)
    p = player(graph, bag(3), mode="timed", rate=1000.0)
    summary = p.play()
    assert p.state == "done" and not summary.stopped
    assert summary.frames_published == 3 and summary.loops == 1
    assert summary.lockstep["frames_sent"] == 0  # no waiting for results when timed


def test_a_bag_failing_while_playing_raises_and_reports_error() -> None:
    def groups() -> Iterator[FrameGroup]:
        yield from group_by_stamp(bag(1))
        raise BagError("bag test.mcap: cannot decode a message")

    graph = Graph()
    p = ReplayPlayer(graph, groups, PlayerSettings(mode="lockstep"))
    graph.player = p
    with pytest.raises(BagError, match="cannot decode"):
        p.play()
    graph.join()
    level, message, _values = p.diagnostics()
    assert p.state == "error" and level == "ERROR" and "cannot decode" in message


def test_settings_refuse_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        PlayerSettings(mode="fast")
    params = {"mode": "lockstep", "rate": 2.0, "loop": False, "lockstep_timeout_s": 1.0}
    params |= {"prefetch": 4, "progress_period_s": 1.0, "bag": "unused"}
    assert PlayerSettings.from_params(params).prefetch == 4
