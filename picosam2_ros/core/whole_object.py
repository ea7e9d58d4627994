"""Point -> whole object: find how large the clicked object is, in at most two point
network runs, and hand its extent to the box model for the final mask (run three).

PicoSAM2 sees a 96-pixel square around the click, so a larger object comes back cut
at that square. Here the point network looks through windows (``core.window``: square,
any size, the click exactly at the input's centre, filled outside the frame):

1. a first window of ``first_side_fraction`` x the frame's shorter side;
2. the mask's component under the click gives the object's extent around the click;
   if it touches the window's edge inside the frame the object is larger than the
   window, and the second window grows by ``grow``; otherwise the second window is
   sized so the extent fills it as the network saw objects in training
   (``fill``: extent / side), but never smaller than ``min_side`` pixels;
3. the second window's component's bounding box goes to the box model (the box
   protocol: a box framing the object is what that model segments best).

Each stage is one batch over all clicks of the frame. A click whose first or second
mask is empty keeps the native 96-pixel crop's answer instead (``WindowOutcome.found``
False); the caller decides. This module needs only numpy and OpenCV; the pipeline
(``core.pipeline``) wires it to the backends and the box stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, Roi
from picosam2_ros.core.preprocess import normalise
from picosam2_ros.core.window import Window, logits_to_frame, window_to_model_input

#: (N, 3, S, S) normalised crops -> (N, S, S) logits; one backend's ``infer``.
Infer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class WholeObjectSettings:
    """first_side_fraction: side of the first window, x the frame's shorter side;
    fill: the object's extent (longer side of its mask's box) / the second window's side;
    margin: the second window also covers the mask's farthest reach from the click
    times this (clicks are rarely at the object's centre); grow: the second window's
    side / the first's when the first mask reaches the window's edge; min_side: the
    smallest window, frame pixels; max_side_factor: the largest window, x the frame's
    longer side; box_refine: run 3 hands the found box to the box model (else the
    second window's mask is the answer); reuse_within: the second run is skipped (the
    first window stands) when the second window's side would be within this factor of
    the first's (1 = always run it)."""

    first_side_fraction: float = 0.6
    fill: float = 0.6
    margin: float = 1.2
    grow: float = 2.0
    min_side: float = 48.0
    max_side_factor: float = 1.5
    box_refine: bool = True
    reuse_within: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "first_side_fraction": 0.0 < self.first_side_fraction <= 2.0,
            "fill": 0.05 <= self.fill <= 1.0,
            "margin": 1.0 <= self.margin <= 4.0,
            "grow": 1.0 <= self.grow <= 8.0,
            "min_side": 8.0 <= self.min_side <= 4096.0,
            "max_side_factor": 0.25 <= self.max_side_factor <= 4.0,
            "reuse_within": 1.0 <= self.reuse_within <= 4.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"whole-object settings out of range: {', '.join(bad)} ({self})")


@dataclass(frozen=True)
class WindowOutcome:
    """The last window of one click: where it looked, its (S, S) logits, the click's
    component as a box in frame pixels ``(x_min, y_min, x_max, y_max)`` (continuous,
    exclusive max), and whether an object was found at all (False: the component under
    the click was empty in the first or the last window)."""

    window: Window
    logits: np.ndarray
    box: tuple[float, float, float, float] | None
    found: bool

    def on_frame(self, width: int, height: int) -> tuple[Roi, np.ndarray]:
        """The logits mapped onto the frame: the window's part inside it and the logits
        over that part (``window.logits_to_frame``)."""
        return logits_to_frame(self.logits, self.window, width, height)


@dataclass(frozen=True)
class _Component:
    box: tuple[float, float, float, float]  # frame pixels, continuous
    touches_edge: bool  # reaches the window's edge where that edge lies inside the frame


def _click_component(
    logits: np.ndarray, window: Window, width: int, height: int, threshold: float
) -> _Component | None:
    """The 8-connected component of logit > threshold under the input's centre (or the
    component nearest to it within a few input pixels), mapped to frame pixels."""
    size = logits.shape[-1]
    mask = np.ascontiguousarray(logits > threshold, dtype=np.uint8)
    if not mask.any():
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    c = size // 2
    # The four pixels around the centre point of an even-sided input; first the centre.
    near = labels[c - 2 : c + 2, c - 2 : c + 2]
    hit = near[near > 0]
    if hit.size == 0:
        return None
    label = int(np.bincount(hit).argmax())
    x, y, w, h = (int(v) for v in stats[label, :4])
    scale = window.side / size
    left, top = window.cx - window.side / 2.0, window.cy - window.side / 2.0
    x0, y0 = left + x * scale, top + y * scale
    x1, y1 = left + (x + w) * scale, top + (y + h) * scale
    # An edge of the window counts only where the frame continues past it.
    touches = (
        (x == 0 and left > 0.5)
        or (y == 0 and top > 0.5)
        or (x + w == size and left + window.side < width - 0.5)
        or (y + h == size and top + window.side < height - 0.5)
    )
    box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    return _Component(box, bool(touches))


def _run_windows(
    image: np.ndarray, encoding: str, windows: Sequence[Window], infer: Infer, size: int
) -> np.ndarray:
    crops = np.empty((len(windows), size, size, 3), dtype=np.uint8)
    for k, w in enumerate(windows):
        window_to_model_input(image, encoding, w, size, out=crops[k])
    logits = np.asarray(infer(normalise(crops)), dtype=np.float32)
    if logits.shape != (len(windows), size, size):
        raise RuntimeError(
            f"point backend returned logits of shape {logits.shape} for a batch of "
            f"{len(windows)}; expected ({len(windows)}, {size}, {size})"
        )
    return logits


def second_side(
    click: tuple[float, float],
    first: Window,
    component: _Component,
    settings: WholeObjectSettings,
    width: int,
    height: int,
) -> float:
    """The second window's side from the first window's component."""
    largest = settings.max_side_factor * max(width, height)
    if component.touches_edge:
        return min(largest, max(settings.min_side, first.side * settings.grow))
    x0, y0, x1, y1 = component.box
    cx, cy = click
    extent = max(x1 - x0, y1 - y0)
    reach = max(cx - x0, x1 - cx, cy - y0, y1 - cy)
    side = max(extent / settings.fill, 2.0 * reach * settings.margin, settings.min_side)
    return min(largest, side)


def find_objects(
    image: np.ndarray,
    encoding: str,
    clicks: Sequence[tuple[float, float]],
    infer: Infer,
    settings: WholeObjectSettings,
    threshold: float = 0.0,
    size: int = MODEL_INPUT_SIZE,
) -> list[WindowOutcome]:
    """Runs 1 and 2 for every click (x, y) of one frame: at most two batched
    point-network calls in total. The clicks must lie inside the frame."""
    height, width = image.shape[:2]
    if not clicks:
        return []
    first_side = max(settings.min_side, settings.first_side_fraction * min(width, height))
    first_side = min(first_side, settings.max_side_factor * max(width, height))
    firsts = [Window.around_pixel(x, y, first_side) for x, y in clicks]
    logits1 = _run_windows(image, encoding, firsts, infer, size)
    comps1 = [
        _click_component(lg, w, width, height, threshold)
        for lg, w in zip(logits1, firsts, strict=True)
    ]
    outcomes: list[WindowOutcome | None] = []
    rerun: list[int] = []
    seconds: list[Window] = []
    for k, ((x, y), w, comp) in enumerate(zip(clicks, firsts, comps1, strict=True)):
        if comp is None:  # nothing under the click: no second look
            outcomes.append(WindowOutcome(w, logits1[k], None, False))
            continue
        centre = (math.floor(x) + 0.5, math.floor(y) + 0.5)
        side = second_side(centre, w, comp, settings, width, height)
        if max(side / w.side, w.side / side) <= settings.reuse_within:
            outcomes.append(WindowOutcome(w, logits1[k], comp.box, True))
            continue
        outcomes.append(None)
        rerun.append(k)
        seconds.append(Window(centre[0], centre[1], side))
    if seconds:
        logits2 = _run_windows(image, encoding, seconds, infer, size)
        for k, w, logits in zip(rerun, seconds, logits2, strict=True):
            comp = _click_component(logits, w, width, height, threshold)
            box = comp.box if comp is not None else None
            outcomes[k] = WindowOutcome(w, logits, box, comp is not None)
    return [o for o in outcomes if o is not None]
