"""replay_node: plays a rosbag2 (mcap or sqlite3) into the ROS graph, timed or lock-step.

Wiring only: the lock-step and timed players, prefetching and the summary are
picosam2_ros.replay.player (over this node as its ReplayIO), the grouping and lock-step
bookkeeping the rest of picosam2_ros.replay; the bag reading is
picosam2_ros.bags.reader.BagReader (any rosbag2, including ``ros2 bag record`` bags).

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
(picosam2_ros/RemoveObject, ``prompt_barrier_service``).

Frames: consecutive messages sharing a header stamp form one frame group
(picosam2_ros.replay.groups); within a group the images go last.

Lock-step rule: per group holding an image, (1) call ``clear_prompts`` and wait for
the answer, (2) publish the group's other messages (prompts, ground truth, camera_info)
and, with ``prompt_barrier_service``, wait until the segmenter has applied the prompts,
(3) publish the image, (4) wait until a ``lockstep_topic`` message with the image's
header stamp arrives, or ``lockstep_timeout_s`` passes (timed out; a result arriving
later is late). Results are checked against the frame's prompts: objects missing or
unexpected are counted. Timed: each group goes out at its bag time / ``rate`` after the
start, through steps (1) to (3) (no wait for the result: a busy segmenter drops frames,
but never answers one with another frame's prompts), optionally with /clock, and from
the start again with ``loop``. Details:
picosam2_ros.replay.player.

Exit codes of main(): 0 done; 2 bad parameters or a bag that cannot be played (missing,
unreadable, empty, missing topic, unknown type).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.client import Client
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from std_srvs.srv import Trigger

from picosam2_ros.bags.reader import BagError, BagReader
from picosam2_ros.nodes.params import declare_all
from picosam2_ros.nodes.replay_params import MODES, PARAMS
from picosam2_ros.nodes.startup import STARTUP_ERRORS, spin_until_shutdown
from picosam2_ros.replay.groups import (
    PROMPT_TYPE,
    GroupItem,
    group_by_stamp,
    header_stamp_ns,
    import_message_type,
)
from picosam2_ros.replay.player import CallAnswer, PlayerSettings, ReplayPlayer, ReplaySummary
from picosam2_ros.replay.topics import ReplayConfigError, plan_topics
from picosam2_ros.srv import RemoveObject

# Re-exported: the names this module has always offered.
__all__ = ["MODES", "PARAMS", "ReplayConfigError", "ReplayNode", "ReplaySummary"]

#: A short pause after the required subscribers appear, so the other endpoints of the
#: same processes (discovered at about the same time) match too.
SETTLE_S = 0.3


class ReplayNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("replay", **kwargs)
        self._playing: threading.Thread | None = None
        #: Why playing stopped early (start_playing); None while fine.
        self.failure: BagError | None = None
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
            plan = plan_topics(
                self._bag, self._bag_path, self._p["topics"], self._p["require_subscribers"]
            )
            self._classes, self._info_topic = plan.classes, plan.info_topic
            self._play_topics, self._image_topics = plan.play_topics, plan.image_topics
            self._frames_total, self._required = plan.frames_total, plan.required
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

        self._player = ReplayPlayer(
            self,
            lambda: group_by_stamp(self._items()),
            PlayerSettings.from_params(self._p),
            self._bag_path,
            self._frames_total,
        )

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
            self._player.result_topic = sub.topic_name
        #: Service clients by kind, with the request each call sends.
        self._service_clients: dict[str, tuple[Client, Any]] = {}
        if self._p["clear_prompts_service"]:
            client = self.create_client(Trigger, str(self._p["clear_prompts_service"]))
            self._service_clients["clear"] = (client, Trigger.Request())
        if self._p["prompt_barrier_service"]:
            client = self.create_client(RemoveObject, str(self._p["prompt_barrier_service"]))
            # Object id 0, which no prompt can have: a no-op (see ReplayPlayer._prompt_barrier).
            self._service_clients["barrier"] = (client, RemoveObject.Request(object_id=0))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self._p["diagnostics_period"], self._publish_diagnostics)
        self.get_logger().info(
            f"{self._mode} replay of {self._bag_path} ({self._bag.storage}): "
            f"{self._frames_total} frames, {len(self._play_topics)} topics"
            + (f", results on '{self._result_pub_topic}'" if self._lockstep else "")
        )

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

    # ------------------------------------------------------------------ results
    def _on_result(self, msg: Any) -> None:
        stamp = header_stamp_ns(msg)
        if stamp is None:
            return
        objects = getattr(msg, "objects", None)
        self._player.on_result(
            stamp, None if objects is None else [int(o.object_id) for o in objects]
        )

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
            for client, _request in self._service_clients.values():
                if not client.service_is_ready():
                    lacking.append(f"the service {client.srv_name}")
            return lacking

        while missing() and time.monotonic() < deadline:
            if not self._player.sleep(0.02):
                return
        lacking = missing()
        if lacking:
            self._player.problem(
                "start", f"starting without {', '.join(lacking)} (start_delay_s ran out)"
            )
        else:
            self._player.sleep(SETTLE_S)

    # ------------------------------------------------------------------ ReplayIO
    def call(self, kind: str, timeout_s: float) -> CallAnswer | None:
        if kind not in self._service_clients:
            return None
        client, request = self._service_clients[kind]
        if not client.service_is_ready():
            return CallAnswer("absent", client.srv_name)
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        deadline = time.monotonic() + timeout_s
        while not done.wait(0.05) and time.monotonic() < deadline and not self._player.stopping():
            pass
        if self._player.stopping() and not done.is_set():
            future.cancel()
            return CallAnswer("stopped", client.srv_name)
        if not done.is_set() or future.result() is None:
            future.cancel()
            return CallAnswer("no answer", client.srv_name)
        return CallAnswer("ok", client.srv_name, future.result())

    def publish(self, item: GroupItem) -> None:
        self._pubs[item.topic].publish(item.message)

    def publish_clock(self, bag_ns: int) -> None:
        if self._clock_pub is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
            self._clock_pub.publish(msg)

    def ok(self) -> bool:
        return bool(self.context.ok())

    def info(self, text: str) -> None:
        self.get_logger().info(text)

    def warning(self, text: str) -> None:
        self.get_logger().warning(text)

    def _publish_info(self) -> None:
        if self._info_pub is None:
            return
        first = next(self._bag.messages([self._info_topic]), None)
        if first is not None:
            self._info_pub.publish(deserialize_message(first.data, self._classes[first.topic]))

    # ------------------------------------------------------------------ playing
    def stop(self) -> None:
        """Ask run() to return after the current frame."""
        self._player.stop()

    def run(self) -> ReplaySummary:
        """Play the bag; blocks until done or stop(). Call it from a thread that is not
        spinning this node. Raises BagError when the bag fails while playing."""
        self._player.state = "waiting for subscribers"
        self._publish_info()
        self._wait_for_graph()
        summary = self._player.play()
        if not summary.stopped:
            # Stopped on request, the node's shutdown line says so; the counts stay in
            # the diagnostics.
            self.get_logger().info(f"replay {self._player.state}: {summary.line()}")
        self._publish_diagnostics()
        return summary

    def summary(self) -> ReplaySummary:
        return self._player.summary()

    def start_playing(self) -> None:
        """run() in a thread of its own, while the caller's executor serves the node (the
        lock-step results arrive through it); a BagError is kept as ``failure``."""

        def play() -> None:
            try:
                self.run()
            except BagError as err:
                self.failure = err

        self._playing = threading.Thread(target=play, name="replay-player", daemon=True)
        self._playing.start()

    def finished(self) -> bool:
        """The bag failed, or it was played and the node is to exit when done."""
        if self._playing is None or self._playing.is_alive():
            return False
        return self.failure is not None or bool(self.get_parameter("exit_when_done").value)

    def _publish_diagnostics(self) -> None:
        level, message, values = self._player.diagnostics()
        status = DiagnosticStatus(
            level=getattr(DiagnosticStatus, level),
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
        if self._playing is not None:
            self._playing.join(timeout=5.0)
        self._bag.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    # Bad parameters or a bag that cannot be played: one clear line, exit code 2.
    node = spin_until_shutdown(
        ReplayNode,
        "replay_node",
        args,
        (*STARTUP_ERRORS, BagError),
        serving=ReplayNode.start_playing,
        finished=ReplayNode.finished,
    )
    if node.failure is not None:
        print(f"replay_node: error: {node.failure}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
