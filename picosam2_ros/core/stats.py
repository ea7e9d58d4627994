"""Small thread-safe helpers for the node's frame handling and diagnostics.

The segmenter must always work on the newest frame: a camera at 30 Hz and a model at
20 Hz must not build a queue of stale frames. ``LatestFrameSlot`` keeps one frame and
counts the ones it replaced; ``RateMeter`` and ``LatencyWindow`` feed /diagnostics.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class LatestFrameSlot(Generic[T]):
    """Holds at most one item; a new item replaces an unconsumed one (which counts as
    dropped). One or more producers, one consumer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item = item
            self._full = True
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The stored item, removing it; waits up to ``timeout`` seconds (forever when
        None). Returns None on timeout or once the slot is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if self._closed:
                return None
            item = self._item
            self._item = None
            self._full = False
            return item

    def close(self) -> None:
        """Wake every waiting ``take`` and make all later ones return None (shutdown)."""
        with self._cond:
            self._closed = True
            self._item = None
            self._full = False
            self._cond.notify_all()


class RateMeter:
    """Event rate over the last ``window_s`` seconds (time.monotonic by default)."""

    def __init__(self, window_s: float = 5.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._ticks: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._ticks and self._ticks[0] < now - self.window_s:
            self._ticks.popleft()

    def tick(self, now: float | None = None) -> None:
        """Record one event."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._ticks.append(t)
            self._expire(t)

    def rate(self, now: float | None = None) -> float:
        """Events per second: intervals between the window's events over the time from
        the first of them to ``now``, so the rate decays once events stop; 0.0 with
        fewer than two events."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._expire(t)
            if len(self._ticks) < 2:
                return 0.0
            span = max(t, self._ticks[-1]) - self._ticks[0]
            return (len(self._ticks) - 1) / span if span > 0 else 0.0


class LatencyWindow:
    """The last ``size`` latencies in milliseconds, for percentiles."""

    def __init__(self, size: int = 300) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self._values.append(float(ms))

    @property
    def count(self) -> int:
        """Samples in the window."""
        with self._lock:
            return len(self._values)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100, linear interpolation); NaN when empty."""
        with self._lock:
            if not self._values:
                return math.nan
            values = np.fromiter(self._values, dtype=np.float64)
        return float(np.percentile(values, q))

    def mean(self) -> float:
        """Mean of the window; NaN when empty."""
        with self._lock:
            if not self._values:
                return math.nan
            return math.fsum(self._values) / len(self._values)


class Laps:
    """Milliseconds between successive ``lap`` calls, by name, and the thread's CPU time
    over all of them (wall time alone also counts waiting for a busy CPU)."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._cpu_start = time.thread_time()
        self._laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps[name] = (now - self._last) * 1000.0
        self._last = now

    def items(self) -> list[tuple[str, float]]:
        return list(self._laps.items())

    @property
    def total_ms(self) -> float:
        return (self._last - self._start) * 1000.0

    @property
    def total_cpu_ms(self) -> float:
        return (time.thread_time() - self._cpu_start) * 1000.0
