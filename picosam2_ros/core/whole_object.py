"""Point -> whole object: find how large the clicked object is, in two point-network
runs, and hand its extent to the box model for the final mask (run three); the
settings also allow three point windows and no box model (``windows``, ``box_refine``).

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

The defaults were chosen on held-out training images (models/MODEL_CARD.md, "Zoom
model"). Each stage is one batch over all clicks of the frame. A click whose last
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
    longer side; windows: point-window runs (each next one sized from the last one's
    mask); box_refine: one more run hands the last window's box to the box model (else
    the last window's mask is the answer); windows + box_refine is at most 3 runs;
    reuse_within: a next window is skipped (the last one stands) when its side would be
    within this factor of the last one's (1 = always run it)."""

    first_side_fraction: float = 0.12
    fill: float = 0.6
    margin: float = 1.2
    grow: float = 4.0
    min_side: float = 48.0
    max_side_factor: float = 1.5
    windows: int = 2
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
            "windows": 1 <= self.windows <= (2 if self.box_refine else 3),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"whole-object settings out of range: {', '.join(bad)} ({self})")


@dataclass(frozen=True)
class WindowOutcome:
    """The last window of one click: where it looked, its (S, S) logits, the click's
    component as a box in frame pixels ``(x_min, y_min, x_max, y_max)`` (continuous,
    exclusive max), and whether an object was found (False: the component under the
    click was empty in the last window run)."""

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
    """The next window's side from the last window's component."""
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
    """The point-window runs (``settings.windows``) for every click (x, y) of one frame:
    one batched point-network call per stage. The clicks must lie inside the frame."""
    height, width = image.shape[:2]
    if not clicks:
        return []
    first_side = max(settings.min_side, settings.first_side_fraction * min(width, height))
    first_side = min(first_side, settings.max_side_factor * max(width, height))
    centres = [(math.floor(x) + 0.5, math.floor(y) + 0.5) for x, y in clicks]
    windows = [Window(cx, cy, first_side) for cx, cy in centres]
    logits = _run_windows(image, encoding, windows, infer, size)
    comps = [
        _click_component(lg, w, width, height, threshold)
        for lg, w in zip(logits, windows, strict=True)
    ]
    found = [c is not None for c in comps]
    # Clicks still looking: nothing under the click ends the search.
    active = [k for k, c in enumerate(comps) if c is not None]
    for _ in range(settings.windows - 1):
        rerun: list[int] = []
        nexts: list[Window] = []
        for k in active:
            comp, w = comps[k], windows[k]
            assert comp is not None
            side = second_side(centres[k], w, comp, settings, width, height)
            if max(side / w.side, w.side / side) > settings.reuse_within:
                rerun.append(k)
                nexts.append(Window(centres[k][0], centres[k][1], side))
        if not nexts:
            break
        new_logits = _run_windows(image, encoding, nexts, infer, size)
        logits = logits.copy()
        for k, w, lg in zip(rerun, nexts, new_logits, strict=True):
            windows[k], logits[k] = w, lg
            comps[k] = _click_component(lg, w, width, height, threshold)
            found[k] = comps[k] is not None
        active = [k for k in rerun if comps[k] is not None]
    return [
        WindowOutcome(w, lg, c.box if c is not None else None, ok)
        for w, lg, c, ok in zip(windows, logits, comps, found, strict=True)
    ]
