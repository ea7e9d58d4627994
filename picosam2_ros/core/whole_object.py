"""Point -> whole object: find how large the clicked object is with the point network,
looking through up to three windows of growing size, the last one's mask the answer.
The settings also allow two windows and the box model on the extent they found
(``windows``, ``box_refine``).

PicoSAM2 sees a 96-pixel square around the click, so a larger object comes back cut
at that square. Here the point network looks through windows (``core.window``: square,
any size, the click exactly at the input's centre, filled outside the frame):

1. a first window of ``first_side_fraction`` x the frame's shorter side;
2. the mask's component under the click gives the object's extent around the click;
   if it touches the window's edge inside the frame the object is larger than the
   window, and the next window grows by ``grow``; otherwise the next window is
   sized so the extent fills it as the network saw objects in training
   (``fill``: extent / side), but never smaller than ``min_side`` pixels. From the
   second window on, the extent is that of the mask's confident core (logit above the
   threshold by ``extent_offset``): a large view's fringe bleeds into the background;
3. the third window is sized from the second's component the same way; a next window
   within ``reuse_within`` of the last one's side is not run (the last one stands).
   The last window's mask, the click's component, is the answer.

With ``box_refine`` (and two windows) the third run is the box model on the second
window's component's box instead (the box protocol), unless that component is still cut
by the window's edge (``edge_window``): a box around a cut object misleads the box
model, so the third run is then a point window ``edge_grow`` times larger.

The defaults were chosen on held-out training images (``training.whole_object_search``;
figures in the ``WholeObjectSettings`` docstring), never on the validation sample.
``ClickSearch`` is one click's search, one run at a time (``next_run`` says which: a
``PointRun`` window, a ``BoxRun`` box, or None when finished), so a caller can spread
the runs over camera frames; ``run_point_stages`` / ``find_objects`` batch the searches
of one frame, each stage one batch over all clicks. A click whose last mask is empty
keeps the native 96-pixel crop's answer instead (``WindowOutcome.found`` False); the
caller decides. This module needs only numpy and OpenCV; the pipeline
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
    fill: the object's extent (longer side of its mask's box) / the next window's side;
    margin: the next window also covers the mask's farthest reach from the click
    times this (clicks are rarely at the object's centre); grow: the next window's
    side / the last one's when the last mask reaches the window's edge; min_side: the
    smallest window, frame pixels; max_side_factor: the largest window, x the frame's
    longer side; windows: point-window runs (each next one sized from the last one's
    mask); box_refine: one more run hands the last window's box to the box model (else
    the last window's mask is the answer); windows + box_refine is at most 3 runs;
    reuse_within: a next window is skipped (the last one stands) when its side would be
    within this factor of the last one's (1 = always run it); edge_window: when the last
    window's mask still reaches its edge, the box run gives way to one more point window
    of ``edge_grow`` x the last side, whose mask is the answer (still at most 3 runs);
    box_extend: the box handed to the box model is pushed out by this x its size on each
    side where the mask reached the window's edge (0 = not); extent_offset: windows after
    the first take the click's component at logit > threshold + this for the extent, the
    edge contact and the box (the component at the threshold when that one is empty).

    Full-frame mIoU on the 144 held-out TRAINING instances (``training.whole_object_search
    --held-out 0.05``; the zoom model's stage 2, with which they were chosen; the blend
    shipped since gives 0.488 / 0.398 with the defaults), centre / random point (large
    objects):
    **three point windows, the last one's mask the answer (the defaults): 0.493 / 0.398
    (0.506 / 0.386)**, 1.99 network runs per click; two windows and the box model
    (``windows=2,box_refine=true``, the defaults before): 0.477 / 0.397 (0.470 / 0.381),
    2.67 runs. Around the defaults (paired differences within two bootstrap standard
    errors): fill 0.5 / 0.7, grow 3 / 5, extent_offset 0.5 / 1.5, first window 0.10 /
    0.15, margin 1.0 / 1.4, every window run (``reuse_within=1``). With the box model and
    the first zoom model: the edge window +0.012 / +0.013 and the confident-core extent
    +0.013 / +0.014 (both kept); box_extend 0.25 instead of the edge window, grow 5-8 and
    a first window of 0.5-1.2 x (coarse to fine) lost. Upper bounds: the second window
    sized from the TRUE extent, then the box model 0.511 / 0.453 (0.597 / 0.536), the box
    model on the TRUE box 0.681."""

    first_side_fraction: float = 0.12
    fill: float = 0.6
    margin: float = 1.2
    grow: float = 4.0
    min_side: float = 48.0
    max_side_factor: float = 1.5
    windows: int = 3
    box_refine: bool = False
    reuse_within: float = 1.3
    edge_window: bool = True
    edge_grow: float = 2.5
    box_extend: float = 0.0
    extent_offset: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "first_side_fraction": 0.0 < self.first_side_fraction <= 2.0,
            "fill": 0.05 <= self.fill <= 1.0,
            "margin": 1.0 <= self.margin <= 4.0,
            "grow": 1.0 <= self.grow <= 8.0,
            "min_side": 8.0 <= self.min_side <= 4096.0,
            "max_side_factor": 0.25 <= self.max_side_factor <= 4.0,
            "reuse_within": 1.0 <= self.reuse_within <= 4.0,
            "edge_grow": 1.0 <= self.edge_grow <= 8.0,
            "box_extend": 0.0 <= self.box_extend <= 2.0,
            "extent_offset": 0.0 <= self.extent_offset <= 8.0,
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
    # Reaches the window's (left, top, right, bottom) edge where it lies inside the frame.
    sides: tuple[bool, bool, bool, bool]

    @property
    def touches_edge(self) -> bool:
        return any(self.sides)


def _click_component(
    logits: np.ndarray, window: Window, width: int, height: int, threshold: float
) -> _Component | None:
    """The 8-connected component of logit > threshold under the input's centre (or the
    component nearest to it within a few input pixels), mapped to frame pixels."""
    size = logits.shape[-1]
    mask = np.asarray(logits > threshold).view(np.uint8)  # a fresh array: filled below
    c = size // 2
    # The pixels around the centre point of an even-sided input.
    near = mask[c - 2 : c + 2, c - 2 : c + 2]
    rows, cols = np.nonzero(near)
    if rows.size == 0:
        return None
    # Flood the component of the first foreground pixel there (its bounding box comes
    # with it): a fraction of the cost of labelling every component of the input.
    seed = (c - 2 + int(cols[0]), c - 2 + int(rows[0]))
    _, _, _, rect = cv2.floodFill(mask, None, seed, 2, 0, 0, 8)
    if np.any(near == 1):
        # Another component also reaches the centre: the one with most pixels there wins
        # (ties: the first in OpenCV's label order), which needs the labelling.
        rect = _centre_component_rect(np.asarray(logits > threshold, dtype=np.uint8), c)
    return _component_in_frame(rect, size, window, width, height)


def _centre_component_rect(mask: np.ndarray, c: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the component with most pixels around the centre ``c`` (``mask``
    uint8 with foreground there)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    label = centre_label(labels, c)
    x, y, w, h = (int(v) for v in stats[label, :4])
    return x, y, w, h


def centre_label(labels: np.ndarray, c: int) -> int:
    """The component label (of a connected-components labelling, 0 = background) with
    most pixels among the 4x4 around the centre ``c``; 0 when none lies there."""
    near = labels[c - 2 : c + 2, c - 2 : c + 2]
    near = near[near > 0]
    return int(np.bincount(near).argmax()) if near.size else 0


def _component_in_frame(
    rect: Sequence[int], size: int, window: Window, width: int, height: int
) -> _Component:
    """A component's (x, y, w, h) in input pixels as a ``_Component`` in frame pixels."""
    x, y, w, h = (int(v) for v in rect)
    scale = window.side / size
    left, top = window.cx - window.side / 2.0, window.cy - window.side / 2.0
    x0, y0 = left + x * scale, top + y * scale
    x1, y1 = left + (x + w) * scale, top + (y + h) * scale
    # An edge of the window counts only where the frame continues past it.
    sides = (
        x == 0 and left > 0.5,
        y == 0 and top > 0.5,
        x + w == size and left + window.side < width - 0.5,
        y + h == size and top + window.side < height - 0.5,
    )
    box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    return _Component(box, sides)


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


@dataclass(frozen=True)
class PointRun:
    """Next run of a click's search: the point network on ``window``."""

    window: Window


@dataclass(frozen=True)
class BoxRun:
    """Next run of a click's search: the box model on the frame box ``box``
    ``(x_min, y_min, x_max, y_max)`` (continuous, exclusive max), its crop decoded with
    that box; the box model's mask is the click's answer. The search ends with it."""

    box: tuple[float, float, float, float]


class ClickSearch:
    """The whole-object search of one click, one network run at a time.

    ``next_run()`` says what to run next: a ``PointRun`` (run the point network on its
    window, then hand the (S, S) logits to ``take_point``), a ``BoxRun`` (run the box
    model on its box; the search keeps no part in it, call ``take_box()`` once it is
    scheduled) or None (finished: ``outcome()`` is the last point window's answer, the
    click's mask when ``box_refine`` is off; ``found`` False means keep the native crop).
    ``next_run`` has no side effect: it returns the same run until that run is taken.
    A caller may spread the runs over frames (one run per frame) or batch many searches
    per stage (``run_point_stages``). The click must lie inside the frame.
    """

    def __init__(
        self,
        click: tuple[float, float],
        width: int,
        height: int,
        settings: WholeObjectSettings,
        threshold: float = 0.0,
    ) -> None:
        self.click = click
        self.width, self.height = width, height
        self.settings = settings
        self.threshold = threshold
        # The window's centre: the clicked pixel's centre, so the input's centre is on it.
        self.centre = (math.floor(click[0]) + 0.5, math.floor(click[1]) + 0.5)
        self.point_runs = 0
        self._window: Window | None = None
        self._logits: np.ndarray | None = None
        self._component: _Component | None = None
        self._box_taken = False
        self._next: PointRun | BoxRun | None = self._plan()

    @property
    def finished(self) -> bool:
        return self._next is None

    def next_run(self) -> PointRun | BoxRun | None:
        """The run to do next, None when the search is over (see the class)."""
        return self._next

    def take_point(self, logits: np.ndarray) -> None:
        """The (S, S) logits of the ``PointRun`` that ``next_run`` returned."""
        run = self._next
        if not isinstance(run, PointRun):
            raise RuntimeError(f"take_point called while the next run is {run!r}")
        logits = np.asarray(logits, dtype=np.float32)
        if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
            raise ValueError(f"point logits must be (S, S), got {logits.shape}")
        self._window, self._logits = run.window, logits
        comp = None
        if self.point_runs > 0 and self.settings.extent_offset > 0.0:
            # Later windows see the object large, where the mask's fringe bleeds into
            # the background: the extent comes from its confident core.
            comp = _click_component(
                logits, run.window, self.width, self.height,
                self.threshold + self.settings.extent_offset,
            )  # fmt: skip
        if comp is None:
            comp = _click_component(logits, run.window, self.width, self.height, self.threshold)
        self._component = comp
        self.point_runs += 1
        self._next = self._plan()

    def take_box(self) -> None:
        """The ``BoxRun`` that ``next_run`` returned is the caller's now; the search ends."""
        if not isinstance(self._next, BoxRun):
            raise RuntimeError(f"take_box called while the next run is {self._next!r}")
        self._box_taken = True
        self._next = None

    def outcome(self) -> WindowOutcome:
        """The last point window's outcome (``found`` False when nothing lay under the
        click there). Needs at least one point run taken."""
        if self._window is None or self._logits is None:
            raise RuntimeError("no point run taken yet")
        comp = self._component
        return WindowOutcome(
            self._window, self._logits, comp.box if comp is not None else None, comp is not None
        )

    def _plan(self) -> PointRun | BoxRun | None:
        s = self.settings
        cx, cy = self.centre
        if self._window is None:
            return PointRun(Window(cx, cy, first_side(self.width, self.height, s)))
        comp = self._component
        if comp is None:  # nothing under the click ends the search
            return None
        if self.point_runs < s.windows:
            last = self._window
            side = second_side(self.centre, last, comp, s, self.width, self.height)
            if max(side / last.side, last.side / side) > s.reuse_within:
                return PointRun(Window(cx, cy, side))
        if self.point_runs > s.windows or self._box_taken or not s.box_refine:
            return None
        if s.edge_window and comp.touches_edge:
            # Still cut by the window: a box framing a cut object misleads the box model,
            # so the last run is a larger window whose mask is the answer.
            last = self._window
            largest = s.max_side_factor * max(self.width, self.height)
            side = min(largest, last.side * s.edge_grow)
            if side > last.side:
                return PointRun(Window(cx, cy, side))
        return BoxRun(self._box_for(comp))

    def _box_for(self, comp: _Component) -> tuple[float, float, float, float]:
        """The component's box, pushed out by ``box_extend`` x its size on each side where
        it reached the window's edge (the object goes on past it)."""
        x0, y0, x1, y1 = comp.box
        e = self.settings.box_extend
        if e <= 0.0 or not comp.touches_edge:
            return comp.box
        dx, dy = e * (x1 - x0), e * (y1 - y0)
        left, top, right, bottom = comp.sides
        return (
            max(0.0, x0 - dx) if left else x0,
            max(0.0, y0 - dy) if top else y0,
            min(float(self.width), x1 + dx) if right else x1,
            min(float(self.height), y1 + dy) if bottom else y1,
        )


def first_side(width: int, height: int, settings: WholeObjectSettings) -> float:
    """The first window's side, frame pixels."""
    side = max(settings.min_side, settings.first_side_fraction * min(width, height))
    return min(side, settings.max_side_factor * max(width, height))


def run_point_stages(
    image: np.ndarray,
    encoding: str,
    searches: Sequence[ClickSearch],
    infer: Infer,
    size: int = MODEL_INPUT_SIZE,
) -> None:
    """Run every search's point windows: one batched point-network call per stage over
    the searches whose next run is a ``PointRun``, until none is."""
    while True:
        pending = [(s, r) for s in searches if isinstance(r := s.next_run(), PointRun)]
        if not pending:
            return
        logits = _run_windows(image, encoding, [r.window for _, r in pending], infer, size)
        for (search, _), lg in zip(pending, logits, strict=True):
            search.take_point(lg)


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
    searches = [ClickSearch(c, width, height, settings, threshold) for c in clicks]
    run_point_stages(image, encoding, searches, infer, size)
    return [s.outcome() for s in searches]
