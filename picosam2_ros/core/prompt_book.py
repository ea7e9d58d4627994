"""The standing prompts: what the segmenter applies to every new frame.

Prompts stand until replaced, removed or cleared (msg/Prompt.msg). Clicks get fresh ids
and, when the book is full, push out the oldest click, so a user clicking around never
has to clear by hand; prompts set explicitly by other nodes are never evicted.

Tracking lives here because it changes the standing prompts: after each frame a tracked
prompt is re-centred on its object's mask, and an object whose mask stays empty for
``lost_after`` frames is reported lost.

Pure and not thread-safe: the node serialises access with its own lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from picosam2_ros.core.postprocess import recentre_point
from picosam2_ros.core.prompts import ObjectPrompt, PromptError, validate_prompt

if TYPE_CHECKING:
    from picosam2_ros.core.pipeline import ObjectResult


class PromptBook:
    """At most ``max_objects`` prompts, keyed by object id."""

    def __init__(self, max_objects: int, lost_after: int = 15) -> None:
        if max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {max_objects}")
        if lost_after < 1:
            raise ValueError(f"lost_after must be >= 1, got {lost_after}")
        self.max_objects = max_objects
        self.lost_after = lost_after
        self._prompts: dict[int, ObjectPrompt] = {}
        self._clicks: list[int] = []  # ids added by add_point, oldest first
        self._empty_frames: dict[int, int] = {}  # consecutive empty masks, tracked prompts
        self._bbox_centre: dict[int, tuple[float, float]] = {}  # last mask bbox centre

    def __len__(self) -> int:
        return len(self._prompts)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._prompts

    def _store(self, prompt: ObjectPrompt) -> None:
        """Add or replace, starting the object's tracking state afresh."""
        oid = prompt.object_id
        self._prompts[oid] = prompt
        self._empty_frames.pop(oid, None)
        self._bbox_centre.pop(oid, None)

    def set(self, prompt: ObjectPrompt) -> None:
        """Add a prompt or replace the one with the same id.

        Raises PromptError for a malformed prompt, or when the book is full and the id
        is new (explicit prompts never push others out).
        """
        validate_prompt(prompt)
        oid = prompt.object_id
        if oid not in self._prompts and len(self._prompts) >= self.max_objects:
            raise PromptError(
                f"object {oid}: cannot add, already holding the maximum of "
                f"{self.max_objects} prompts (remove one or raise max_objects)"
            )
        if oid in self._clicks:
            self._clicks.remove(oid)
        self._store(prompt)

    def add_point(self, x: float, y: float, track: bool = False) -> ObjectPrompt:
        """Add a one-point prompt (a click) under a new id, 1 + the largest id in use.

        When the book is full the oldest prompt added by a click is removed first;
        raises PromptError when there is none to remove.
        """
        new_id = max(self._prompts, default=0) + 1
        prompt = ObjectPrompt.from_point(new_id, x, y, track)
        validate_prompt(prompt)
        if len(self._prompts) >= self.max_objects:
            if not self._clicks:
                raise PromptError(
                    f"cannot add a point: all {self.max_objects} prompts were set "
                    "explicitly and none can be replaced"
                )
            self.remove(self._clicks[0])
        self._store(prompt)
        self._clicks.append(new_id)
        return prompt

    def remove(self, object_id: int) -> bool:
        """Forget one object; False if it was not there."""
        if self._prompts.pop(object_id, None) is None:
            return False
        if object_id in self._clicks:
            self._clicks.remove(object_id)
        self._empty_frames.pop(object_id, None)
        self._bbox_centre.pop(object_id, None)
        return True

    def clear(self) -> int:
        """Forget every object; returns how many there were."""
        n = len(self._prompts)
        self._prompts.clear()
        self._clicks.clear()
        self._empty_frames.clear()
        self._bbox_centre.clear()
        return n

    def resize(self, max_objects: int, lost_after: int) -> int:
        """Change the limits at run time (node parameters); returns how many prompts were
        removed. Shrinking removes the oldest clicks until the book fits; explicitly set
        prompts are kept even above the new limit (no new id is accepted until it fits).
        Lost counters keep counting and are judged against the new ``lost_after``."""
        if max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {max_objects}")
        if lost_after < 1:
            raise ValueError(f"lost_after must be >= 1, got {lost_after}")
        self.max_objects = max_objects
        self.lost_after = lost_after
        removed = 0
        while len(self._prompts) > max_objects and self._clicks:
            self.remove(self._clicks[0])
            removed += 1
        return removed

    def snapshot(self) -> list[ObjectPrompt]:
        """The standing prompts, ascending object id (prompts are immutable)."""
        return [self._prompts[oid] for oid in sorted(self._prompts)]

    def is_lost(self, object_id: int) -> bool:
        """True once a tracked object's mask has been empty ``lost_after`` frames in a row."""
        return self._empty_frames.get(object_id, 0) >= self.lost_after

    def update_tracking(self, results: Sequence[ObjectResult]) -> None:
        """Move tracked prompts after a frame.

        A non-empty mask moves the first foreground point to ``recentre_point`` of the
        mask and shifts a box by as much as the mask's bbox centre moved since the last
        frame with a mask (the box keeps its size); an empty mask counts towards losing
        the object. Results for prompts that changed since the frame was planned (a new
        prompt arrived meanwhile) and skipped objects are ignored.
        """
        for result in results:
            oid = result.object_id
            current = self._prompts.get(oid)
            if current is None or not current.track or current != result.prompt:
                continue
            if result.crop.is_empty or result.mask.size == 0:
                continue  # skipped: nothing was computed for this frame
            centre = recentre_point(result.mask) if result.bbox is not None else None
            if centre is None or result.bbox is None:
                self._empty_frames[oid] = self._empty_frames.get(oid, 0) + 1
                continue
            self._empty_frames[oid] = 0
            moved = current
            if current.foreground.shape[0]:
                moved = moved.moved_to(centre[0] + result.crop.x, centre[1] + result.crop.y)
            if current.box is not None:
                b = result.bbox
                now = (b.x + b.width / 2.0, b.y + b.height / 2.0)
                before = self._bbox_centre.get(oid)
                if before is not None:
                    dx, dy = now[0] - before[0], now[1] - before[1]
                    x0, y0, x1, y1 = current.box
                    moved = moved.with_box((x0 + dx, y0 + dy, x1 + dx, y1 + dy))
                self._bbox_centre[oid] = now
            self._prompts[oid] = moved
