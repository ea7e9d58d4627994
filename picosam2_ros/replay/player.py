"""The replay itself: frame groups read ahead, played lock-step or timed, and counted.

``ReplayPlayer.play()`` runs on the caller's thread until the bag is played (or
``stop()``); a reader thread reads and deserialises up to ``prefetch`` frame groups
ahead. What it needs from the ROS graph is behind ``ReplayIO`` (publish a message or
/clock, call a service, log), so the protocol runs and is tested without ROS.

Lock-step (``mode="lockstep"``), per group holding an image: (1) clear the prompts
(service ``clear``), (2) publish the group's other messages and pass the prompt barrier
(service ``barrier`` called ``prompts + 1`` times, see ``replay_node``), (3) publish
the image, (4) wait until ``on_result`` brings the result with the image's stamp, or
``timeout_s`` passes (counted as timed out; a later result counts as late). Groups
without an image are published at once.

Timed: each group goes out at its bag time / ``rate`` after the first, with /clock
while waiting when ``publish_clock``, and from the start again with ``loop``. Steps (1)
to (3) hold there too, so a frame is segmented with its own prompts however busy the
segmenter is; only the wait for the result is left out (a busy segmenter drops frames).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from picosam2_ros.bags.reader import BagError
from picosam2_ros.replay.groups import PROMPT_TYPE, FrameGroup, GroupItem
from picosam2_ros.replay.lockstep import LockstepLedger, ResultOutcome
from picosam2_ros.replay.timing import TimedSchedule

MODES = ("timed", "lockstep")
#: Service kinds a player calls: ``clear`` (clear_prompts) and ``barrier`` (the prompt
#: barrier).
SERVICE_KINDS = ("clear", "barrier")


@dataclass(frozen=True)
class CallAnswer:
    """How a service call ended: ``outcome`` "ok" (``response`` holds the answer),
    "absent" (the service is not there), "no answer" (none within the timeout) or
    "stopped" (the replay was stopped while waiting); ``service``: its name."""

    outcome: str
    service: str = ""
    response: Any = None


class ReplayIO(Protocol):
    """What a player needs from the graph."""

    def publish(self, item: GroupItem) -> None:
        """Publish one bag message on its topic."""

    def publish_clock(self, bag_ns: int) -> None:
        """Publish /clock at this bag time (timed mode, when the node publishes it)."""

    def call(self, kind: str, timeout_s: float) -> CallAnswer | None:
        """Call the service of ``kind`` and wait at most ``timeout_s`` for its answer;
        None when the node has no such service configured."""

    def ok(self) -> bool:
        """False once the graph shuts down."""

    def info(self, text: str) -> None: ...

    def warning(self, text: str) -> None: ...


@dataclass
class ReplaySummary:
    """What one replay did (also the final diagnostics)."""

    mode: str
    bag: str
    frames_total: int
    frames_published: int
    messages_published: int
    seconds: float
    loops: int
    lockstep: dict[str, int]
    #: Service calls: clear_ok/_skipped/_failed, barrier_ok/_skipped/_failed.
    calls: dict[str, int]
    stopped: bool

    @property
    def frames_per_second(self) -> float:
        return self.frames_published / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (
            f"{self.mode}: {self.frames_published}/{self.frames_total} frames, "
            f"{self.messages_published} messages in {self.seconds:.2f} s "
            f"({self.frames_per_second:.1f} frames/s)"
        )
        if self.mode == "lockstep":
            ls = self.lockstep
            text += (
                f"; results {ls['results']}, timed out {ls['timed_out']}, late "
                f"{ls['late_results']}, duplicate {ls['duplicate_results']}, unexpected "
                f"{ls['unexpected_results']}; objects missing {ls['objects_missing']} of "
                f"{ls['objects_expected']}, unexpected {ls['objects_unexpected']}"
            )
        if self.loops > 1:
            text += f"; {self.loops} passes"
        if self.stopped:
            text += " (stopped early)"
        return text


@dataclass(frozen=True)
class PlayerSettings:
    """The replay_node parameters a player uses (same names)."""

    mode: str = "timed"
    rate: float = 1.0
    loop: bool = False
    lockstep_timeout_s: float = 5.0
    prefetch: int = 16
    progress_period_s: float = 5.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PlayerSettings:
        """From the node parameters of the same names."""
        return cls(**{f.name: params[f.name] for f in fields(cls)})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")


class _End:
    """Queue marker: one pass over the bag is complete."""

    def __init__(self, last: bool) -> None:
        self.last = last


class ReplayPlayer:
    """Plays the frame groups of ``read_groups()`` (one pass per call) through ``io``."""

    def __init__(
        self,
        io: ReplayIO,
        read_groups: Callable[[], Iterable[FrameGroup]],
        settings: PlayerSettings,
        bag: str = "",
        frames_total: int = 0,
        result_topic: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._io = io
        self._read_groups = read_groups
        self.settings = settings
        self.lockstep = settings.mode == "lockstep"
        self._bag = bag
        self._frames_total = frames_total
        #: The result topic's name, for the log.
        self.result_topic = result_topic
        self._clock = clock
        self._cond = threading.Condition()
        self._ledger = LockstepLedger()
        self._stop = threading.Event()
        #: starting, waiting for subscribers, playing, done, stopped or error.
        self.state = "starting"
        self.last_problem = ""
        self._warned: set[str] = set()
        self._frames_published = 0
        #: Frames published in the current pass over the bag (timed loop).
        self.pass_frames = 0
        self._messages_published = 0
        self._loops = 0
        #: Service calls per kind (clear, barrier): answered, skipped (service absent),
        #: failed (no answer in time, or refused).
        self.calls = {
            f"{kind}_{outcome}": 0
            for kind in SERVICE_KINDS
            for outcome in ("ok", "skipped", "failed")
        }
        self._started = 0.0
        self._finished = 0.0

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask play() to return after the current frame."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stopping(self) -> bool:
        return self._stop.is_set() or not self._io.ok()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; False when stopped."""
        return not self._stop.wait(seconds) and self._io.ok()

    def problem(self, key: str, text: str) -> None:
        """Keep a problem for diagnostics; log it the first time its ``key`` occurs."""
        self.last_problem = text
        if key not in self._warned:
            self._warned.add(key)
            self._io.warning(text + " (further ones are counted in /diagnostics)")

    def on_result(self, stamp_ns: int, object_ids: Iterable[int] | None) -> ResultOutcome:
        """A result arrived (any thread); ``object_ids``: the objects it answers, or None
        when its type has no objects."""
        with self._cond:
            outcome = self._ledger.on_result(stamp_ns, object_ids)
            if outcome == ResultOutcome.RELEASED:
                self._cond.notify_all()
        if outcome != ResultOutcome.RELEASED:
            self.problem(
                f"result:{outcome.value}", f"{outcome.value} result for stamp {stamp_ns} ns"
            )
        return outcome

    # ------------------------------------------------------------------ playing
    def play(self) -> ReplaySummary:
        """Play every group; blocks until done or stop(). Raises BagError when the bag
        fails while playing (state "error")."""
        self.state = "playing"
        self._started = self._clock()
        groups: queue.Queue[Any] = queue.Queue(maxsize=self.settings.prefetch)
        reader = threading.Thread(target=self._prefetch, args=(groups,), daemon=True)
        reader.start()
        next_log = self._started + self.settings.progress_period_s
        schedule = TimedSchedule(self.settings.rate)
        anchored = False
        try:
            while not self._stop.is_set() and self._io.ok():
                try:
                    item = groups.get(timeout=0.1)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, _End):
                    self._loops += 1
                    anchored = False
                    if item.last:
                        break
                    self.pass_frames = 0
                    continue
                if self.lockstep:
                    self._play_lockstep(item)
                else:
                    if not anchored:
                        schedule.start(item.first_time_ns, self._clock())
                        anchored = True
                    if not self._play_timed(item, schedule):
                        break
                if self._clock() >= next_log:
                    next_log = self._clock() + self.settings.progress_period_s
                    self._io.info(self.progress_line())
        except BagError as exc:
            self.state = "error"
            self.last_problem = str(exc)
            raise
        finally:
            stopped = self._stop.is_set() or not self._io.ok()
            self._stop.set()
            reader.join(timeout=2.0)
            self._finished = self._clock()
            if self.state != "error":
                self.state = "stopped" if stopped else "done"
        return self.summary()

    def _prefetch(self, out: queue.Queue[Any]) -> None:
        """Reader thread: frame groups into ``out``, an ``_End`` after each pass, or the
        exception that stopped it."""

        def put(item: Any) -> bool:
            while not self._stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        loop = self.settings.loop and not self.lockstep
        try:
            while True:
                groups: Iterator[FrameGroup] = iter(self._read_groups())
                for group in groups:
                    if not put(group):
                        return
                if not put(_End(last=not loop)) or not loop:
                    return
        except BaseException as exc:  # handed to the replay thread
            put(exc)

    def _publish(self, item: GroupItem) -> None:
        if self.stopping():  # shutting down: the publishers may be gone
            return
        self._io.publish(item)
        self._messages_published += 1

    def _send_prompts(self, group: FrameGroup) -> None:
        """Steps (1) and (2) of both modes: clear the prompts, publish everything but the
        images and, when an image follows, pass the prompt barrier. Without the barrier
        a busy segmenter can take the image before the frame's prompts and answer it
        with the previous frame's objects."""
        if group.has_image or group.has_prompts:
            self._clear_prompts()
        before = group.before_images()
        for item in before:
            self._publish(item)
        if group.has_image:
            self._prompt_barrier(sum(1 for item in before if item.msgtype == PROMPT_TYPE))

    def _play_lockstep(self, group: FrameGroup) -> None:
        self._send_prompts(group)
        images = group.images()
        if not images or group.stamp_ns is None:
            for item in images:
                self._publish(item)
            return
        stamp = group.stamp_ns
        with self._cond:
            self._ledger.send(stamp, group.prompt_ids)
        for item in images:
            self._publish(item)
        self._frames_published += 1
        self.pass_frames += 1
        timeout = self.settings.lockstep_timeout_s
        deadline = self._clock() + timeout
        with self._cond:
            # In slices: a shutdown by signal does not notify the condition.
            while self._ledger.pending == stamp and not self.stopping():
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.1))
            # Stopped while waiting: the frame is neither answered nor timed out.
            timed_out = (
                self._ledger.pending == stamp
                and not self.stopping()
                and self._ledger.time_out() is not None
            )
        if timed_out:
            self.problem(
                "timeout",
                f"no result on {self.result_topic} for stamp {stamp} ns "
                f"within {timeout} s: frame counted as timed out",
            )

    def _play_timed(self, group: FrameGroup, schedule: TimedSchedule) -> bool:
        due = schedule.due(group.first_time_ns)
        while True:
            now = self._clock()
            if now >= due:
                break
            self._io.publish_clock(schedule.bag_time_at(now))
            if not self.sleep(min(due - now, 0.025)):
                return False
        self._io.publish_clock(group.first_time_ns)
        self._send_prompts(group)
        for item in group.images():
            self._publish(item)
        if group.has_image:
            self._frames_published += 1
            self.pass_frames += 1
        return True

    # ------------------------------------------------------------------ services
    def _call(self, kind: str) -> CallAnswer | None:
        """Call a service (counted as skipped / failed when it is not there or does not
        answer); the answer when it answered, None otherwise."""
        timeout = self.settings.lockstep_timeout_s
        answer = self._io.call(kind, timeout)
        if answer is None or answer.outcome == "stopped":
            return None
        if answer.outcome == "absent":
            self.calls[f"{kind}_skipped"] += 1
            self.problem(f"{kind}:absent", f"service {answer.service} not available")
            return None
        if answer.outcome != "ok":
            self.calls[f"{kind}_failed"] += 1
            self.problem(
                f"{kind}:failed", f"service {answer.service} did not answer within {timeout} s"
            )
            return None
        return answer

    def _clear_prompts(self) -> None:
        answer = self._call("clear")
        if answer is None:
            return
        if not answer.response.success:
            self.calls["clear_failed"] += 1
            self.problem("clear:refused", f"clear_prompts refused: {answer.response.message}")
            return
        self.calls["clear_ok"] += 1

    def _prompt_barrier(self, prompts: int) -> None:
        """Make sure the segmenter has applied a frame's ``prompts`` prompt messages
        before its image goes out.

        Published prompts reach the segmenter's queue within microseconds (shared memory
        or loopback) but are applied only when its executor takes them: an rclpy
        executor takes ONE message per ready subscription per wait, and handles
        subscriptions before services. So each answered no-op request (remove_object for
        id 0, which no prompt can have) is one executor pass that also applied one
        queued prompt; ``prompts + 1`` answered requests in a row leave none queued.
        (Waiting for DDS acknowledgements instead costs up to seconds per frame across
        processes: readers acknowledge on the writer's heartbeat.) Whatever still goes
        wrong shows in the result: objects missing from it are counted.
        """
        if prompts == 0:
            return
        for _ in range(prompts + 1):
            if self._call("barrier") is None:
                return
            self.calls["barrier_ok"] += 1

    # ------------------------------------------------------------------ reporting
    def summary(self) -> ReplaySummary:
        end = self._finished or self._clock()
        with self._cond:
            lockstep = self._ledger.stats.as_dict()
        return ReplaySummary(
            mode=self.settings.mode,
            bag=self._bag,
            frames_total=self._frames_total,
            frames_published=self._frames_published,
            messages_published=self._messages_published,
            seconds=(end - self._started) if self._started else 0.0,
            loops=self._loops,
            lockstep=lockstep,
            calls=dict(self.calls),
            stopped=self.state == "stopped",
        )

    def progress_line(self) -> str:
        s = self.summary()
        done = self.pass_frames
        pct = 100.0 * done / s.frames_total if s.frames_total else 0.0
        text = (
            f"frame {done}/{s.frames_total} ({pct:.0f}%)"
            + (f" of pass {s.loops + 1}" if s.loops else "")
            + f", {s.frames_per_second:.1f} frames/s"
        )
        if self.lockstep:
            text += f", {s.lockstep['timed_out']} timed out"
        return text

    def diagnostics(self) -> tuple[str, str, dict[str, str]]:
        """(level "OK", "WARN" or "ERROR", message, key/values) for /diagnostics."""
        s = self.summary()
        ls = s.lockstep
        if self.state == "error":
            level, message = "ERROR", self.last_problem
        elif ls["timed_out"] or ls["objects_missing"] or s.calls["clear_failed"]:
            level = "WARN"
            message = f"{self.state}: {ls['timed_out']} frame(s) timed out, " + (
                f"{ls['objects_missing']} object(s) missing"
            )
        else:
            level, message = "OK", self.state
        progress = 100.0 * self.pass_frames / s.frames_total if s.frames_total else 0.0
        values = {
            "state": self.state,
            "mode": s.mode,
            "bag": s.bag,
            "frames_total": str(s.frames_total),
            "frames_published": str(s.frames_published),
            "messages_published": str(s.messages_published),
            "rate_fps": f"{s.frames_per_second:.2f}",
            "progress_percent": f"{min(progress, 100.0):.1f}",
            "passes": str(s.loops),
            **({k: str(v) for k, v in ls.items()} if self.lockstep else {}),
            **{f"calls_{k}": str(v) for k, v in s.calls.items()},
            "last_problem": self.last_problem,
        }
        return level, message, values
