"""Lock-step bookkeeping: one frame in flight; its result (same header stamp) releases
the next, or a timeout does, and every result is accounted for exactly once.

Not thread-safe by itself: the node guards it with a lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import Enum


class ResultOutcome(str, Enum):
    """What a result message meant to the ledger."""

    #: The result for the frame in flight: the next frame may go.
    RELEASED = "released"
    #: A second result for a frame already answered.
    DUPLICATE = "duplicate"
    #: The result for a frame that had already timed out.
    LATE = "late"
    #: A stamp the replayer never sent (another publisher, or a corrupt stamp).
    UNEXPECTED = "unexpected"


@dataclass
class LockstepStats:
    frames_sent: int = 0
    results: int = 0
    timed_out: int = 0
    late_results: int = 0
    duplicate_results: int = 0
    unexpected_results: int = 0
    #: Prompts sent with frames that got their result in time.
    objects_expected: int = 0
    #: Of those, how many the result answered.
    objects_answered: int = 0
    #: Prompted objects the result did not contain.
    objects_missing: int = 0
    #: Objects in a result that were not prompted with its frame.
    objects_unexpected: int = 0
    #: Results that did not answer exactly the frame's prompts.
    frames_incomplete: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class LockstepLedger:
    """Tracks the frame in flight and classifies every result by its stamp."""

    def __init__(self) -> None:
        self.stats = LockstepStats()
        self._pending: int | None = None
        self._expected: tuple[int, ...] = ()
        self._sent: set[int] = set()
        self._answered: set[int] = set()
        self._timed_out: set[int] = set()

    @property
    def pending(self) -> int | None:
        """Stamp (ns) of the frame waiting for its result, or None."""
        return self._pending

    def send(self, stamp_ns: int, object_ids: Iterable[int] = ()) -> None:
        """A frame with this stamp (and these prompted objects) goes out now."""
        if self._pending is not None:
            raise RuntimeError(f"frame {self._pending} is still waiting for its result")
        self._pending = stamp_ns
        self._expected = tuple(dict.fromkeys(object_ids))
        self._sent.add(stamp_ns)
        self._answered.discard(stamp_ns)
        self._timed_out.discard(stamp_ns)
        self.stats.frames_sent += 1

    def on_result(self, stamp_ns: int, object_ids: Iterable[int] | None = None) -> ResultOutcome:
        """A result with this stamp arrived; ``object_ids``: the objects it answers
        (None when the result type has no objects: nothing is checked)."""
        if stamp_ns == self._pending:
            self._pending = None
            self._answered.add(stamp_ns)
            self.stats.results += 1
            if object_ids is not None:
                got = set(object_ids)
                want = set(self._expected)
                self.stats.objects_expected += len(want)
                self.stats.objects_answered += len(want & got)
                self.stats.objects_missing += len(want - got)
                self.stats.objects_unexpected += len(got - want)
                if got != want:
                    self.stats.frames_incomplete += 1
            return ResultOutcome.RELEASED
        if stamp_ns in self._answered:
            self.stats.duplicate_results += 1
            return ResultOutcome.DUPLICATE
        if stamp_ns in self._timed_out:
            self._timed_out.discard(stamp_ns)
            self._answered.add(stamp_ns)
            self.stats.late_results += 1
            return ResultOutcome.LATE
        self.stats.unexpected_results += 1
        return ResultOutcome.UNEXPECTED

    def time_out(self) -> int | None:
        """Give up on the frame in flight; returns its stamp (None if nothing waits)."""
        stamp, self._pending = self._pending, None
        if stamp is not None:
            self._timed_out.add(stamp)
            self.stats.timed_out += 1
        return stamp
