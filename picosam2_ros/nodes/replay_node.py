"""replay_node: plays a rosbag2 (mcap or sqlite3) into the ROS graph, timed or lock-step.

Wiring only; the grouping, lock-step bookkeeping and timing are in picosam2_ros.replay,
the bag reading is picosam2_ros.bags.reader.BagReader (any rosbag2, including bags
recorded by ``ros2 bag record``).

Every bag message goes out on its own topic name with its own type: the raw CDR is
deserialised with ``rclpy.serialization.deserialize_message`` into the rosidl class of
its type (``importlib.import_module("<pkg>.msg")``), so no per-type code is needed, but
every type must be importable (sourced). Topic names are the bag's; rename them with
ordinary ROS remapping, which applies to absolute names too:
``ros2 run picosam2_ros replay_node --ros-args -p bag:=B -r /camera/image_raw:=/image``
(in a launch file: ``remappings=[("/camera/image_raw", "/image")]``).

Topics:
  out  <every bag topic>  reliable, KEEP_LAST ``qos_depth``; image topics volatile, the
                      others TRANSIENT_LOCAL (late-matching readers still get them)
  out  /dataset/info      std_msgs/String, once at start, TRANSIENT_LOCAL (if in the bag)
  out  /clock             rosgraph_msgs/Clock from bag time (timed mode, publish_clock)
  in   segmentation       (``lockstep_topic``, lock-step mode) the result releasing a frame
  out  /diagnostics       diagnostic_msgs/DiagnosticArray
Clients: clear_prompts (std_srvs/Trigger, ``clear_prompts_service``); remove_object
(picosam2_ros/RemoveObject, ``prompt_barrier_service``, lock-step only).

Frames: consecutive messages sharing a header stamp form one frame group
(picosam2_ros.replay.groups); within a group the images go last.

Lock-step rule: for each group holding an image, (1) call ``clear_prompts`` and wait
for the answer, (2) publish the group's other messages (prompts, ground truth,
camera_info) and, with ``prompt_barrier_service``, wait until the segmenter has
applied the prompts (see ``ReplayNode._prompt_barrier``), (3) publish the image, (4) wait until a
``lockstep_topic`` message with the image's header stamp arrives, or
``lockstep_timeout_s`` passes (counted as timed out; a result arriving later is counted
as late). Then the next group. Groups without an image are published at once. Results
are checked against the frame's prompts: objects missing or unexpected are counted.

Timed: each group goes out at its bag time / ``rate`` after the start (the prompts of a
frame are cleared and published before its image there too), optionally with /clock,
and from the start again with ``loop``.

Exit codes of main(): 0 done; 2 bad parameters or a bag that cannot be played (missing,
unreadable, empty, missing topic, unknown type).
"""

from __future__ import annotations

import contextlib
import importlib
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.client import Client
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from std_srvs.srv import Trigger

from picosam2_ros.bags.layout import TOPIC_INFO
from picosam2_ros.bags.reader import (
    BagError,
    BagReader,
    UnknownTypeError,
)
from picosam2_ros.nodes.params import DIAGNOSTICS_PERIOD, ParamSpec, declare_all
from picosam2_ros.nodes.startup import STARTUP_ERRORS, create_or_exit
from picosam2_ros.replay.groups import (
    IMAGE_TYPES,
    PROMPT_TYPE,
    FrameGroup,
    GroupItem,
    group_by_stamp,
    parse_msgtype,
)
from picosam2_ros.replay.lockstep import LockstepLedger, ResultOutcome
from picosam2_ros.replay.timing import TimedSchedule
from picosam2_ros.srv import RemoveObject

MODES = ("timed", "lockstep")

PARAMS = (
    ParamSpec(
        "bag",
        "",
        "rosbag2 to play (required): a bag folder, its metadata.yaml, a .mcap or a .db3 file",
        read_only=True,
    ),
    ParamSpec(
        "mode",
        "timed",
        "timed: at bag time / rate; lockstep: the next frame when the result for this one "
        "arrived (or lockstep_timeout_s passed)",
        choices=MODES,
        read_only=True,
    ),
    ParamSpec(
        "rate",
        1.0,
        "timed: playback speed factor (2.0 = twice as fast as recorded)",
        float_range=(0.001, 1000.0),
        read_only=True,
    ),
    ParamSpec("loop", False, "timed: start again at the end of the bag", read_only=True),
    ParamSpec("publish_clock", False, "timed: publish /clock from the bag time", read_only=True),
    ParamSpec(
        "lockstep_topic",
        "segmentation",
        "lockstep: the result topic (remappable name); its message with a frame's header "
        "stamp releases the next frame",
        read_only=True,
    ),
    ParamSpec(
        "lockstep_type",
        "picosam2_ros/msg/Segmentation",
        "lockstep: message type of lockstep_topic (needs a header; an `objects` field with "
        "object_id is checked against the frame's prompts)",
        read_only=True,
    ),
    ParamSpec(
        "lockstep_timeout_s",
        5.0,
        "lockstep: seconds to wait for a frame's result; then the frame is counted as timed "
        "out and the replay moves on",
        float_range=(0.001, 3600.0),
        read_only=True,
    ),
    ParamSpec(
        "clear_prompts_service",
        "clear_prompts",
        "std_srvs/Trigger called (and answered) before each frame's prompts, so a segmenter "
        "starts every frame with that frame's prompts only; empty = do not call",
        read_only=True,
    ),
    ParamSpec(
        "prompt_barrier_service",
        "remove_object",
        "lockstep: picosam2_ros/RemoveObject service of the segmenter called with object_id "
        "0 (a no-op) once per prompt + 1 after a frame's prompts, so they are applied before "
        "its image arrives; empty = do not call",
        read_only=True,
    ),
    ParamSpec(
        "topics",
        Parameter.Type.STRING_ARRAY,
        "bag topics to play (names as in the bag); unset = all",
        read_only=True,
    ),
    ParamSpec(
        "require_subscribers",
        Parameter.Type.STRING_ARRAY,
        "bag topics that must have a subscriber before playback starts (at most "
        "start_delay_s); unset = the image topics",
        read_only=True,
    ),
    ParamSpec(
        "result_subscribers",
        1,
        "lockstep: subscriptions on the result topic, this node's own included, to wait "
        "for before the first frame (2 with an evaluator, so it sees the first results)",
        int_range=(1, 100),
        read_only=True,
    ),
    ParamSpec(
        "start_delay_s",
        5.0,
        "most seconds to wait for subscribers (require_subscribers; lockstep: also the "
        "result publisher and the clear_prompts service) before the first frame",
        float_range=(0.0, 3600.0),
        read_only=True,
    ),
    ParamSpec(
        "exit_when_done",
        True,
        "exit (code 0) when the bag has been played; false: keep running (diagnostics, "
        "/dataset/info) until shut down",
        read_only=True,
    ),
    ParamSpec(
        "qos_depth",
        200,
        "KEEP_LAST depth of every publisher: at least the most messages one frame has on one "
        "topic (prompts per image)",
        int_range=(1, 100000),
        read_only=True,
    ),
    ParamSpec(
        "prefetch",
        16,
        "frame groups read and deserialised ahead of publishing",
        int_range=(1, 10000),
        read_only=True,
    ),
    ParamSpec(
        "progress_period_s",
        5.0,
        "seconds between progress log lines",
        float_range=(0.1, 3600.0),
        read_only=True,
    ),
    DIAGNOSTICS_PERIOD,
)

#: A short pause after the required subscribers appear, so the other endpoints of the
#: same processes (discovered at about the same time) match too.
SETTLE_S = 0.3


class ReplayConfigError(ValueError):
    """A parameter makes the replay impossible; the message says which and why."""


def import_message_type(msgtype: str) -> type:
    """The rosidl Python class of ``pkg/msg/Name``.

    Raises ImportError (with the reason) when it cannot be imported.
    """
    try:
        package, name = parse_msgtype(msgtype)
    except ValueError as exc:
        raise ImportError(str(exc)) from None
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError as exc:
        raise ImportError(f"package {package!r} is not importable ({exc})") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise ImportError(f"{package}.msg has no message {name!r}")
    return cls


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header_stamp_ns(msg: Any) -> int | None:
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    return None if stamp is None else stamp_to_ns(stamp)


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


class _End:
    """Queue marker: one pass over the bag is complete."""

    def __init__(self, last: bool) -> None:
        self.last = last


class ReplayNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("replay", **kwargs)
        self._p = declare_all(self, PARAMS)
        self._mode: str = self._p["mode"]
        self._lockstep = self._mode == "lockstep"
        bag_param = str(self._p["bag"]).strip()
        if not bag_param:
            raise ReplayConfigError(
                "parameter 'bag' is required: the rosbag2 to play (-p bag:=/path/to/bag)"
            )
        self._bag_path = str(Path(bag_param).expanduser())
        self._bag = BagReader(self._bag_path)
        self._bag.open()  # BagOpenError / EmptyBagError / UnknownTypeError
        try:
            self._setup_topics()
            self._result_cls: type | None = None
            if self._lockstep:
                result_type = str(self._p["lockstep_type"])
                try:
                    self._result_cls = import_message_type(result_type)
                except ImportError as exc:
                    raise ReplayConfigError(f"lockstep_type {result_type}: {exc}") from None
        except BaseException:
            self._bag.close()
            raise
        for note in self._bag.notes:
            self.get_logger().warning(f"{self._bag_path}: {note}")

        self._cond = threading.Condition()
        self._ledger = LockstepLedger()
        self._stop = threading.Event()
        self._state = "starting"
        self._last_problem = ""
        self._frames_published = 0
        #: Frames published in the current pass over the bag (timed loop).
        self._pass_frames = 0
        self._messages_published = 0
        self._loops = 0
        #: Service calls per kind (clear, barrier): answered, skipped (service absent),
        #: failed (no answer in time, or refused).
        self._calls = {
            f"{kind}_{outcome}": 0
            for kind in ("clear", "barrier")
            for outcome in ("ok", "skipped", "failed")
        }
        self._started = 0.0
        self._finished = 0.0
        self._warned: set[str] = set()

        # A subscription can match this node's writer a moment after this node has
        # matched it (discovery is not symmetric in time); a volatile reader drops what
        # was sent in that gap. Transient-local writers resend it to late readers that ask
        # for it (the evaluator's ground truth). Images stay volatile: keeping
        # ``qos_depth`` frames per topic for late joiners would cost hundreds of MB, and
        # a lost frame shows as a lock-step timeout.
        def data_qos(topic: str) -> QoSProfile:
            return QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=self._p["qos_depth"],
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.VOLATILE
                if topic in self._image_topics
                else DurabilityPolicy.TRANSIENT_LOCAL,
            )

        self._pubs: dict[str, Publisher] = {
            topic: self.create_publisher(self._classes[topic], topic, data_qos(topic))
            for topic in self._play_topics
        }
        self._info_pub: Publisher | None = None
        if self._info_topic:
            latched = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=1,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            self._info_pub = self.create_publisher(
                self._classes[self._info_topic], self._info_topic, latched
            )
        self._clock_pub: Publisher | None = None
        if self._p["publish_clock"] and not self._lockstep:
            self._clock_pub = self.create_publisher(Clock, "/clock", 10)
        self._result_pub_topic = ""
        if self._result_cls is not None:
            sub = self.create_subscription(
                self._result_cls, str(self._p["lockstep_topic"]), self._on_result, 50
            )
            self._result_pub_topic = sub.topic_name
        self._clear_client: Client | None = None
        if self._p["clear_prompts_service"]:
            self._clear_client = self.create_client(Trigger, str(self._p["clear_prompts_service"]))
        self._barrier_client: Client | None = None
        if self._lockstep and self._p["prompt_barrier_service"]:
            self._barrier_client = self.create_client(
                RemoveObject, str(self._p["prompt_barrier_service"])
            )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self._p["diagnostics_period"], self._publish_diagnostics)
        self.get_logger().info(
            f"{self._mode} replay of {self._bag_path} ({self._bag.storage}): "
            f"{self._frames_total} frames, {len(self._play_topics)} topics"
            + (f", results on '{self._result_pub_topic}'" if self._lockstep else "")
        )

    # ------------------------------------------------------------------ set-up
    def _setup_topics(self) -> None:
        """Select the topics, check them and import their types (raises BagError)."""
        topics = self._bag.topics
        wanted = [t if t.startswith("/") else f"/{t}" for t in (self._p["topics"] or [])]
        if wanted:
            # require() names every missing topic and lists what the bag has.
            self._bag.require({t: topics[t].msgtype if t in topics else "" for t in wanted})
            selected = list(dict.fromkeys(wanted))
        else:
            # Topics the index lists without messages are left out (BagReader.open has
            # already refused a bag without any); all of them when the index has no counts.
            selected = [t for t, info in topics.items() if info.count > 0] or list(topics)
        self._classes: dict[str, type] = {}
        self._types: dict[str, str] = {}
        problems: list[str] = []
        for topic in selected:
            msgtype = topics[topic].msgtype
            self._types[topic] = msgtype
            try:
                self._classes[topic] = import_message_type(msgtype)
            except ImportError as exc:
                problems.append(f"{msgtype} (topic {topic}): {exc}")
        if problems:
            raise UnknownTypeError(
                f"bag {self._bag_path}: cannot publish message type(s) that are not "
                f"installed here: {'; '.join(problems)} (source the workspace that "
                "provides them, or leave the topics out with the `topics` parameter)"
            )
        self._info_topic = TOPIC_INFO if TOPIC_INFO in selected else ""
        self._play_topics = [t for t in selected if t != TOPIC_INFO]
        self._image_topics = [t for t in self._play_topics if self._types[t] in IMAGE_TYPES]
        self._frames_total = sum(topics[t].count for t in self._image_topics)
        required = [
            t if t.startswith("/") else f"/{t}" for t in (self._p["require_subscribers"] or [])
        ]
        unknown = [t for t in required if t not in self._play_topics]
        if unknown:
            raise ReplayConfigError(
                f"require_subscribers names topics that are not played: {', '.join(unknown)}"
            )
        self._required = required or list(self._image_topics)

    # ------------------------------------------------------------------ reading
    def _items(self) -> Iterator[GroupItem]:
        for record in self._bag.messages(self._play_topics):
            try:
                msg = deserialize_message(record.data, self._classes[record.topic])
            except Exception as exc:
                raise BagError(
                    f"bag {self._bag_path}: cannot decode a {record.msgtype} on "
                    f"{record.topic} at {record.timestamp} ns: {exc}"
                ) from exc
            object_id = int(msg.object_id) if record.msgtype == PROMPT_TYPE else None
            yield GroupItem(
                record.topic,
                record.msgtype,
                record.timestamp,
                header_stamp_ns(msg),
                msg,
                object_id,
            )

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

        loop = bool(self._p["loop"]) and not self._lockstep
        try:
            while True:
                for group in group_by_stamp(self._items()):
                    if not put(group):
                        return
                if not put(_End(last=not loop)) or not loop:
                    return
        except BaseException as exc:  # handed to the replay thread
            put(exc)

    # ------------------------------------------------------------------ results
    def _on_result(self, msg: Any) -> None:
        stamp = header_stamp_ns(msg)
        if stamp is None:
            return
        objects = getattr(msg, "objects", None)
        ids = None if objects is None else [int(o.object_id) for o in objects]
        with self._cond:
            outcome = self._ledger.on_result(stamp, ids)
            if outcome == ResultOutcome.RELEASED:
                self._cond.notify_all()
        if outcome != ResultOutcome.RELEASED:
            self._problem(
                f"result:{outcome.value}",
                f"{outcome.value} result for stamp {stamp} ns",
            )

    # ------------------------------------------------------------------ helpers
    def _problem(self, key: str, text: str) -> None:
        self._last_problem = text
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text + " (further ones are counted in /diagnostics)")

    def _stopping(self) -> bool:
        return self._stop.is_set() or not self.context.ok()

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; False when stopped."""
        return not self._stop.wait(seconds) and self.context.ok()

    def _wait_for_graph(self) -> None:
        """Wait (at most start_delay_s) for the subscribers and, lock-step, the result
        publisher and the clear_prompts service."""
        deadline = time.monotonic() + float(self._p["start_delay_s"])

        def missing() -> list[str]:
            lacking = [
                f"a subscriber on {t}"
                for t in self._required
                if self._pubs[t].get_subscription_count() == 0
            ]
            if self._lockstep and self.count_publishers(self._result_pub_topic) == 0:
                lacking.append(f"a publisher on {self._result_pub_topic}")
            wanted = int(self._p["result_subscribers"])
            if self._lockstep and self.count_subscribers(self._result_pub_topic) < wanted:
                lacking.append(f"{wanted} subscriptions on {self._result_pub_topic}")
            for client in (self._clear_client, self._barrier_client):
                if client is not None and not client.service_is_ready():
                    lacking.append(f"the service {client.srv_name}")
            return lacking

        while missing() and time.monotonic() < deadline:
            if not self._sleep(0.02):
                return
        lacking = missing()
        if lacking:
            self._problem("start", f"starting without {', '.join(lacking)} (start_delay_s ran out)")
        else:
            self._sleep(SETTLE_S)

    def _call(self, client: Client, request: Any, what: str) -> Any | None:
        """Call a service and wait (at most lockstep_timeout_s) for the answer; None when
        it is not there or does not answer (counted as skipped / failed)."""
        if not client.service_is_ready():
            self._calls[f"{what}_skipped"] += 1
            self._problem(f"{what}:absent", f"service {client.srv_name} not available")
            return None
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        timeout = float(self._p["lockstep_timeout_s"])
        deadline = time.monotonic() + timeout
        while not done.wait(0.05) and time.monotonic() < deadline and not self._stopping():
            pass
        if self._stopping() and not done.is_set():
            future.cancel()
            return None
        if not done.is_set() or future.result() is None:
            future.cancel()
            self._calls[f"{what}_failed"] += 1
            self._problem(
                f"{what}:failed", f"service {client.srv_name} did not answer within {timeout} s"
            )
            return None
        return future.result()

    def _clear_prompts(self) -> None:
        if self._clear_client is None:
            return
        result = self._call(self._clear_client, Trigger.Request(), "clear")
        if result is None:
            return
        if not result.success:
            self._calls["clear_failed"] += 1
            self._problem("clear:refused", f"clear_prompts refused: {result.message}")
            return
        self._calls["clear_ok"] += 1

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
        client = self._barrier_client
        if client is None or prompts == 0:
            return
        for _ in range(prompts + 1):
            if self._call(client, RemoveObject.Request(object_id=0), "barrier") is None:
                return
            self._calls["barrier_ok"] += 1

    def _publish(self, item: GroupItem) -> None:
        if self._stopping():  # shutting down: the publishers may be gone
            return
        self._pubs[item.topic].publish(item.message)
        self._messages_published += 1

    def _publish_info(self) -> None:
        if self._info_pub is None:
            return
        first = next(self._bag.messages([self._info_topic]), None)
        if first is not None:
            self._info_pub.publish(deserialize_message(first.data, self._classes[first.topic]))

    # ------------------------------------------------------------------ playing
    def stop(self) -> None:
        """Ask run() to return after the current frame."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def run(self) -> ReplaySummary:
        """Play the bag; blocks until done or stop(). Call it from a thread that is not
        spinning this node. Raises BagError when the bag fails while playing."""
        self._state = "waiting for subscribers"
        self._publish_info()
        self._wait_for_graph()
        self._state = "playing"
        self._started = time.monotonic()
        groups: queue.Queue[Any] = queue.Queue(maxsize=int(self._p["prefetch"]))
        reader = threading.Thread(target=self._prefetch, args=(groups,), daemon=True)
        reader.start()
        next_log = self._started + float(self._p["progress_period_s"])
        schedule = TimedSchedule(float(self._p["rate"]))
        anchored = False
        try:
            while not self._stop.is_set() and self.context.ok():
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
                    self._pass_frames = 0
                    continue
                if self._lockstep:
                    self._play_lockstep(item)
                else:
                    if not anchored:
                        schedule.start(item.first_time_ns, time.monotonic())
                        anchored = True
                    if not self._play_timed(item, schedule):
                        break
                if time.monotonic() >= next_log:
                    next_log = time.monotonic() + float(self._p["progress_period_s"])
                    self.get_logger().info(self._progress_line())
        except BagError as exc:
            self._state = "error"
            self._last_problem = str(exc)
            raise
        finally:
            stopped = self._stop.is_set() or not self.context.ok()
            self._stop.set()
            reader.join(timeout=2.0)
            self._finished = time.monotonic()
            if self._state != "error":
                self._state = "stopped" if stopped else "done"
        summary = self.summary()
        self.get_logger().info(f"replay {self._state}: {summary.line()}")
        self._publish_diagnostics()
        return summary

    def _play_lockstep(self, group: FrameGroup) -> None:
        images = group.images()
        if group.has_image or group.has_prompts:
            self._clear_prompts()
        before = group.before_images()
        for item in before:
            self._publish(item)
        if not images or group.stamp_ns is None:
            for item in images:
                self._publish(item)
            return
        self._prompt_barrier(sum(1 for item in before if item.msgtype == PROMPT_TYPE))
        stamp = group.stamp_ns
        with self._cond:
            self._ledger.send(stamp, group.prompt_ids)
        for item in images:
            self._publish(item)
        self._frames_published += 1
        self._pass_frames += 1
        timeout = float(self._p["lockstep_timeout_s"])
        deadline = time.monotonic() + timeout
        with self._cond:
            # In slices: a shutdown by signal does not notify the condition.
            while self._ledger.pending == stamp and not self._stopping():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.1))
            # Stopped while waiting: the frame is neither answered nor timed out.
            timed_out = (
                self._ledger.pending == stamp
                and not self._stopping()
                and self._ledger.time_out() is not None
            )
        if timed_out:
            self._problem(
                "timeout",
                f"no result on {self._result_pub_topic} for stamp {stamp} ns "
                f"within {timeout} s: frame counted as timed out",
            )

    def _play_timed(self, group: FrameGroup, schedule: TimedSchedule) -> bool:
        due = schedule.due(group.first_time_ns)
        while True:
            now = time.monotonic()
            if now >= due:
                break
            if self._clock_pub is not None:
                self._publish_clock(schedule, now)
            if not self._sleep(min(due - now, 0.025)):
                return False
        if self._clock_pub is not None:
            self._publish_clock(schedule, None, group.first_time_ns)
        if group.has_image or group.has_prompts:
            self._clear_prompts()
        for item in group.publish_order():
            self._publish(item)
        if group.has_image:
            self._frames_published += 1
            self._pass_frames += 1
        return True

    def _publish_clock(
        self, schedule: TimedSchedule, now: float | None, bag_ns: int | None = None
    ) -> None:
        assert self._clock_pub is not None
        if bag_ns is None:
            assert now is not None
            bag_ns = schedule.bag_time_at(now)
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
        self._clock_pub.publish(msg)

    # ------------------------------------------------------------------ reporting
    def summary(self) -> ReplaySummary:
        end = self._finished or time.monotonic()
        with self._cond:
            lockstep = self._ledger.stats.as_dict()
        return ReplaySummary(
            mode=self._mode,
            bag=self._bag_path,
            frames_total=self._frames_total,
            frames_published=self._frames_published,
            messages_published=self._messages_published,
            seconds=(end - self._started) if self._started else 0.0,
            loops=self._loops,
            lockstep=lockstep,
            calls=dict(self._calls),
            stopped=self._state == "stopped",
        )

    def _progress_line(self) -> str:
        s = self.summary()
        done = self._pass_frames
        pct = 100.0 * done / s.frames_total if s.frames_total else 0.0
        text = (
            f"frame {done}/{s.frames_total} ({pct:.0f}%)"
            + (f" of pass {s.loops + 1}" if s.loops else "")
            + f", {s.frames_per_second:.1f} frames/s"
        )
        if self._lockstep:
            text += f", {s.lockstep['timed_out']} timed out"
        return text

    def _publish_diagnostics(self) -> None:
        s = self.summary()
        ls = s.lockstep
        if self._state == "error":
            level, message = DiagnosticStatus.ERROR, self._last_problem
        elif ls["timed_out"] or ls["objects_missing"] or s.calls["clear_failed"]:
            level = DiagnosticStatus.WARN
            message = f"{self._state}: {ls['timed_out']} frame(s) timed out, " + (
                f"{ls['objects_missing']} object(s) missing"
            )
        else:
            level, message = DiagnosticStatus.OK, self._state
        progress = 100.0 * self._pass_frames / s.frames_total if s.frames_total else 0.0
        values = {
            "state": self._state,
            "mode": s.mode,
            "bag": s.bag,
            "frames_total": str(s.frames_total),
            "frames_published": str(s.frames_published),
            "messages_published": str(s.messages_published),
            "rate_fps": f"{s.frames_per_second:.2f}",
            "progress_percent": f"{min(progress, 100.0):.1f}",
            "passes": str(s.loops),
            **({k: str(v) for k, v in ls.items()} if self._lockstep else {}),
            **{f"calls_{k}": str(v) for k, v in s.calls.items()},
            "last_problem": self._last_problem,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: replay",
            message=message,
            hardware_id="rosbag2",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        if self.context.ok():
            self._diag_pub.publish(array)

    def destroy_node(self) -> None:
        self.stop()
        self._bag.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    # Bad parameters or a bag that cannot be played: one clear line, exit code 2.
    node = create_or_exit(ReplayNode, "replay_node", (*STARTUP_ERRORS, BagError))
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        with contextlib.suppress(ExternalShutdownException):
            executor.spin()

    spinner = threading.Thread(target=spin, name="replay-executor", daemon=True)
    spinner.start()
    code = 0
    try:
        node.run()
        if not node.get_parameter("exit_when_done").value:
            while rclpy.ok():
                time.sleep(0.2)
    except BagError as err:
        print(f"replay_node: error: {err}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
