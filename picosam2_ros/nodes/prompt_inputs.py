"""The prompt side shared by segmenter_node and camera_node: topics, services, problems.

Both nodes take prompts the same way (topic contract in the package README):

  in   prompts       picosam2_ros/Prompt (standing, by object_id)
  in   prompt_point  geometry_msgs/PointStamped (pixels; adds an object)
  in   click         geometry_msgs/Point (rqt_image_view `<image>_mouse_left`; adds an object)
  srv  clear_prompts (std_srvs/Trigger), remove_object (picosam2_ros/RemoveObject)

What differs is a node's own business, behind two hooks: ``_prompt_frame_size`` (the
camera knows its frame and rejects an outside prompt at once; the segmenter's frames can
change size, so it judges a prompt against each frame) and ``_prompt_changed`` (the
camera ends the object's turn on the sensor). A bad prompt never raises out of a
callback: it is counted, logged once per kind, and shown in diagnostics.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from geometry_msgs.msg import Point, PointStamped
from rclpy.node import Node
from std_srvs.srv import Trigger

from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt, PromptError, validate_prompt
from picosam2_ros.core.stats import RateMeter
from picosam2_ros.io.messages import prompt_from_msg
from picosam2_ros.msg import Prompt
from picosam2_ros.srv import RemoveObject

#: Counters this mixin keeps in the node's ``_counts``.
PROMPT_COUNTERS = ("prompts_received", "bad_prompts")


class PromptedNode(Node):
    """Base of a node with a ``PromptBook`` guarded by ``_lock``, a ``track_clicks``
    parameter in ``_p`` and counters in ``_counts``; call ``_init_prompt_inputs`` once
    those exist."""

    _lock: threading.Lock
    _book: PromptBook
    _p: dict[str, Any]
    _counts: dict[str, int]

    def _init_prompt_inputs(self) -> None:
        for name in PROMPT_COUNTERS:
            self._counts.setdefault(name, 0)
        self._rate_prompts = RateMeter()
        self._reported: set[str] = set()
        self._last_problem = ""
        self._last_problem_time = -1e9
        self.create_subscription(Prompt, "prompts", self._on_prompt, 50)
        self.create_subscription(PointStamped, "prompt_point", self._on_prompt_point, 10)
        self.create_subscription(Point, "click", self._on_click, 10)
        self.create_service(Trigger, "clear_prompts", self._on_clear)
        self.create_service(RemoveObject, "remove_object", self._on_remove)

    # ------------------------------------------------------------------ hooks
    def _prompt_frame_size(self) -> tuple[int, int] | None:
        """(width, height) a prompt must fit when it arrives; None = judged per frame."""
        return None

    def _prompt_changed(self, object_id: int) -> None:
        """A user set, replaced or removed this object's prompt (``_lock`` held)."""

    # --------------------------------------------------------------- problems
    def _problem(self, key: str, text: str, counter: str | None = None) -> None:
        """Count a bad input, log it the first time it happens, keep it for diagnostics."""
        if counter:
            self._counts[counter] += 1
        self._last_problem = text
        self._last_problem_time = time.monotonic()
        if key not in self._reported:
            self._reported.add(key)
            self.get_logger().warning(text + " (further occurrences are counted in /diagnostics)")

    def _recent_problem(self, seconds: float = 5.0) -> bool:
        return time.monotonic() - self._last_problem_time < seconds

    # ---------------------------------------------------------------- prompts
    def _received(self) -> tuple[int | None, int | None]:
        self._counts["prompts_received"] += 1
        self._rate_prompts.tick()
        return self._prompt_frame_size() or (None, None)

    def _on_prompt(self, msg: Prompt) -> None:
        width, height = self._received()
        try:
            prompt = prompt_from_msg(msg)
            validate_prompt(prompt, width, height)
            with self._lock:
                self._book.set(prompt)
                self._prompt_changed(prompt.object_id)
        except (PromptError, ValueError) as err:
            self._problem(f"prompt:{err}", f"prompt rejected: {err}", "bad_prompts")

    def _add_point(self, x: float, y: float) -> None:
        width, height = self._received()
        try:
            validate_prompt(ObjectPrompt.from_point(1, x, y), width, height)
            with self._lock:
                prompt = self._book.add_point(x, y, track=self._p["track_clicks"])
                self._prompt_changed(prompt.object_id)
        except PromptError as err:
            self._problem(f"point:{err}", f"point prompt rejected: {err}", "bad_prompts")
            return
        self.get_logger().info(f"object {prompt.object_id}: point ({x:.1f}, {y:.1f})")

    def _on_prompt_point(self, msg: PointStamped) -> None:
        self._add_point(msg.point.x, msg.point.y)

    def _on_click(self, msg: Point) -> None:
        self._add_point(msg.x, msg.y)

    def _on_clear(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            ids = [p.object_id for p in self._book.snapshot()]
            count = self._book.clear()
            for object_id in ids:
                self._prompt_changed(object_id)
        resp.success = True
        resp.message = f"cleared {count} prompt(s)"
        return resp

    def _on_remove(
        self, req: RemoveObject.Request, resp: RemoveObject.Response
    ) -> RemoveObject.Response:
        with self._lock:
            resp.success = self._book.remove(req.object_id)
            if resp.success:
                self._prompt_changed(req.object_id)
        resp.message = (
            f"removed object {req.object_id}"
            if resp.success
            else f"no standing prompt for object {req.object_id}"
        )
        return resp
