"""Prompts: which object to segment and where it is, as plain numpy data.

A prompt mirrors ``msg/Prompt.msg`` without depending on ROS: foreground points each
place one crop (PicoSAM2 segments the object at the centre of its input), a box places
one crop framing it, and background points erase the mask components containing them.

``validate_prompt`` is the single place that decides whether a prompt is usable, so
nodes, the prompt book and the pipeline all reject the same things with the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

LABEL_BACKGROUND = 0
LABEL_FOREGROUND = 1

Box = tuple[float, float, float, float]


class PromptError(ValueError):
    """A prompt that cannot be applied; the message says what is wrong with it."""


def _as_points(points: object) -> np.ndarray:
    """Points as a read-only float64 array; an empty input becomes shape (0, 2)."""
    try:
        arr = np.array(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"points must be numbers (x, y): {exc}") from exc
    if arr.size == 0:
        arr = arr.reshape(0, 2)
    arr.setflags(write=False)
    return arr


def _as_labels(labels: object) -> np.ndarray:
    """Labels as read-only uint8 when every value is 0 or 1; otherwise kept as given so
    that ``validate_prompt`` can name the bad value instead of a cast failing first."""
    arr = np.array(labels)
    if arr.size == 0:
        arr = arr.astype(np.uint8).reshape(0)
    elif arr.dtype.kind in "biuf" and bool(np.isin(arr, (0, 1)).all()):
        arr = arr.astype(np.uint8)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class ObjectPrompt:
    """One object's prompt, in pixels of the image being segmented (x = column, y = row).

    ``points`` is (N, 2) float64 and ``labels`` (N,) uint8 (1 = foreground,
    0 = background); both are stored as read-only copies so a prompt can be shared
    between threads. ``box`` is (x_min, y_min, x_max, y_max).
    """

    object_id: int
    points: np.ndarray
    labels: np.ndarray
    box: Box | None = None
    track: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _as_points(self.points))
        object.__setattr__(self, "labels", _as_labels(self.labels))
        # Split once: the pipeline asks for both on every frame.
        if self.points.ndim == 2 and self.labels.shape == self.points.shape[:1]:
            fg = self.points[self.labels == LABEL_FOREGROUND]
            bg = self.points[self.labels == LABEL_BACKGROUND]
        else:  # malformed; validate_prompt reports it
            fg = bg = np.empty((0, 2), dtype=np.float64)
        fg.setflags(write=False)
        bg.setflags(write=False)
        object.__setattr__(self, "_foreground", fg)
        object.__setattr__(self, "_background", bg)
        if self.box is not None:
            object.__setattr__(self, "box", tuple(float(v) for v in self.box))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectPrompt):
            return NotImplemented
        return (
            self.object_id == other.object_id
            and self.box == other.box
            and self.track == other.track
            and np.array_equal(self.points, other.points)
            and np.array_equal(self.labels, other.labels)
        )

    def __hash__(self) -> int:
        return hash((self.object_id, self.box, self.track, self.points.tobytes()))

    @property
    def foreground(self) -> np.ndarray:
        """Foreground points, (K, 2)."""
        fg: np.ndarray = self.__dict__["_foreground"]
        return fg

    @property
    def background(self) -> np.ndarray:
        """Background points, (M, 2)."""
        bg: np.ndarray = self.__dict__["_background"]
        return bg

    @classmethod
    def from_point(cls, object_id: int, x: float, y: float, track: bool = False) -> ObjectPrompt:
        """A prompt made of one foreground point (a click)."""
        return cls(object_id, np.array([[x, y]]), np.array([LABEL_FOREGROUND]), None, track)

    def moved_to(self, x: float, y: float) -> ObjectPrompt:
        """This prompt shifted so that its first foreground point lands on (x, y).

        Tracking re-centres the prompt on the object's new position; every other point
        (foreground or background) moves by the same offset, so a multi-point prompt
        keeps its shape as the object moves.
        """
        fg = np.flatnonzero(self.labels == LABEL_FOREGROUND)
        if fg.size == 0:
            raise PromptError(f"object {self.object_id}: no foreground point to move")
        offset = np.array([x, y], dtype=np.float64) - self.points[fg[0]]
        return replace(self, points=self.points + offset)

    def with_box(self, box: Box | None) -> ObjectPrompt:
        """This prompt with another box (tracking moves a box prompt's box)."""
        return replace(self, box=box)


def validate_prompt(
    prompt: ObjectPrompt, width: int | None = None, height: int | None = None
) -> None:
    """Raise PromptError naming the first problem found; return None for a usable prompt.

    Structural checks always run; with ``width`` and ``height`` the prompt must also fit
    the frame: every point inside [0, W) x [0, H) and the box overlapping the frame.
    """
    oid = prompt.object_id
    if oid < 1:
        raise PromptError(f"object_id must be >= 1, got {oid}")
    who = f"object {oid}"
    points, labels = prompt.points, prompt.labels
    if points.ndim != 2 or points.shape[1] != 2:
        raise PromptError(f"{who}: points must have shape (N, 2), got {points.shape}")
    n = points.shape[0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise PromptError(f"{who}: {n} points but {labels.size} labels; need one label each")
    for i, label in enumerate(labels.tolist()):
        if label not in (LABEL_BACKGROUND, LABEL_FOREGROUND):
            raise PromptError(
                f"{who}: label of point {i} is {label}; must be 0 (background) or 1 (foreground)"
            )
    for i, (x, y) in enumerate(points.tolist()):
        if math.isnan(x) or math.isnan(y):
            raise PromptError(f"{who}: point {i} has NaN coordinate ({x}, {y})")
        if math.isinf(x) or math.isinf(y):
            raise PromptError(f"{who}: point {i} has an infinite coordinate ({x}, {y})")
        if x < 0 or y < 0:
            raise PromptError(f"{who}: point {i} has a negative coordinate ({x}, {y})")
    has_fg = bool((labels == LABEL_FOREGROUND).any())
    if not has_fg and prompt.box is None:
        raise PromptError(f"{who}: needs at least one foreground point or a box")
    if prompt.box is not None:
        if len(prompt.box) != 4:
            raise PromptError(f"{who}: box must be (x_min, y_min, x_max, y_max)")
        x0, y0, x1, y1 = prompt.box
        if not all(math.isfinite(v) for v in prompt.box):
            raise PromptError(f"{who}: box has a NaN or infinite coordinate {prompt.box}")
        if not (x0 < x1 and y0 < y1):
            raise PromptError(f"{who}: box needs x_min < x_max and y_min < y_max, got {prompt.box}")
    if width is None or height is None:
        return
    for i, (x, y) in enumerate(points.tolist()):
        if not (x < width and y < height):
            raise PromptError(
                f"{who}: point {i} ({x:g}, {y:g}) is outside the {width}x{height} frame"
            )
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise PromptError(
                f"{who}: box {prompt.box} does not overlap the {width}x{height} frame"
            )
