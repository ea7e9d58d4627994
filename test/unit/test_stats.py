"""Frame slot, rate and latency helpers."""

from __future__ import annotations

import math
import threading
import time

import pytest

from picosam2_ros.core.stats import LatencyWindow, LatestFrameSlot, RateMeter


def test_slot_keeps_latest_and_counts_replaced_items() -> None:
    slot: LatestFrameSlot[int] = LatestFrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.dropped == 2
    assert slot.take(timeout=0) == 3
    assert slot.take(timeout=0.01) is None
    assert slot.put(4) is False  # the previous item was taken: nothing dropped
    assert slot.dropped == 2


def test_slot_drop_count_across_threads() -> None:
    slot: LatestFrameSlot[int] = LatestFrameSlot()
    taken: list[int] = []
    n_producers, per_producer = 4, 2000

    def consume() -> None:
        while (item := slot.take(timeout=2.0)) is not None:
            taken.append(item)

    def produce(offset: int) -> None:
        for i in range(per_producer):
            slot.put(offset + i)

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [
        threading.Thread(target=produce, args=(k * per_producer,)) for k in range(n_producers)
    ]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    # Let the consumer drain the last item, then stop it.
    deadline = time.monotonic() + 2.0
    while len(taken) + slot.dropped < n_producers * per_producer and time.monotonic() < deadline:
        time.sleep(0.001)
    slot.close()
    consumer.join(timeout=2.0)
    assert not consumer.is_alive()
    # Every item was either consumed or counted as dropped, none twice.
    assert len(taken) + slot.dropped == n_producers * per_producer
    assert len(set(taken)) == len(taken)


def test_close_wakes_a_waiting_consumer() -> None:
    slot: LatestFrameSlot[str] = LatestFrameSlot()
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(slot.take(timeout=None)))
    t.start()
    time.sleep(0.05)
    slot.close()
    t.join(timeout=1.0)
    assert result == [None]
    slot.put("late")
    assert slot.take(timeout=0) is None


def test_rate_meter() -> None:
    meter = RateMeter(window_s=5.0)
    assert meter.rate(now=0.0) == 0.0
    for i in range(21):
        meter.tick(now=10.0 + i * 0.1)  # 10 Hz for 2 s
    assert meter.rate(now=12.0) == pytest.approx(10.0)
    assert meter.rate(now=14.0) == pytest.approx(5.0)  # stopped: decays
    assert meter.rate(now=30.0) == 0.0  # all expired


def test_latency_window() -> None:
    window = LatencyWindow(size=4)
    assert math.isnan(window.percentile(50)) and window.count == 0
    for ms in (10.0, 1.0, 2.0, 3.0, 4.0):  # 10.0 falls out of the window
        window.add(ms)
    assert window.count == 4
    assert window.percentile(50) == pytest.approx(2.5)
    assert window.percentile(100) == 4.0
    assert window.mean() == pytest.approx(2.5)
