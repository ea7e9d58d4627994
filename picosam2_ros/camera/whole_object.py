"""Point -> whole object on the sensor: the host's search (``core.whole_object``), its
network runs as consecutive ROIs of one turn of the prompt.

On the host one click is up to three network runs on one image: point-network windows
of growing size centred on the click, the last one's mask the answer (or, under
settings that end with a box run, the box decoding on the extent they found;
``core.whole_object.ClickSearch``). The IMX500 runs the network on ONE region per
frame, so here each run is one ROI of the prompt's turn on the sensor's inference ROI
(``camera.machine``, ``RoiScheduler.retarget``): the ROI changes to the run's,
``settle_frames`` frames pass, and the next attributed frame's output is the run's
result; the next run's ROI follows at once in the same turn, and the turn ends with the
search. The whole search in one turn rather than a run per turn: its runs then look at
consecutive frames, the same moment of a moving scene, so the extent one run found
still holds for the next; other prompts wait one search (at most three runs). A
search costs ``runs x (settle_frames + 1)`` frames at best, plus frames without output
(a turn that runs out of ``turn_frames`` attributed frames without outputs hands the
search on to the prompt's next turn).

Windows -> ROIs. A host window is a square of any size, the click exactly at its
centre, filled with the ImageNet mean where it leaves the frame. The sensor's ROI must
lie inside the visible sensor, and PicoSAM2 segments what is at its input's centre, so
moving the ROI off the click (the rule for ordinary point prompts, ``prompt_to_roi``)
risks segmenting a neighbour. ``fit`` decides:

- ``centred`` (default): the largest square centred on the click that fits, up to the
  window's side; only when that would be under ``min_side`` sensor pixels (a click
  within a few pixels of the border) is the square translated inside instead;
- ``translated``: the window's side (at most the visible region's shorter side),
  translated inside, as ``prompt_to_roi`` does for a point prompt.

Either way the run's output covers only its ROI. It is resampled into the window's
grid with ``UNSEEN_LOGIT`` where the window reaches past the ROI (outside the frame,
as the host's mean fill mostly comes back, or inside it where the sensor did not
look), so ``ClickSearch`` reads the component under the click exactly as on the host.
A shrunk window hides an edge: the component then stops at the ROI's edge without
"touching" the window's, and the next window is sized from that extent (``fill``), not
grown by ``grow``. Measured (``bench/bench_camera_whole_object.py``) in MODEL_CARD.md.

The answer: with the defaults the search ends on a point window, whose mask, the
click's components only, is the answer. Under settings with a box run, that run is the
box the last window found as a box prompt's ROI (``prompt_to_roi``: ``box_margin`` x its
longer side, square, translated inside) on the same network, its output decoded with the
box (``core.box_prior``, ``box_prior_weight``) exactly as a box prompt's. A click where
the last window found nothing under it ends with the native point ROI's answer, as on
the host: one more run, the ordinary point prompt's.

What is published: only the finished search's mask, stamped with the frame of its
last run (the extent came from up to two runs earlier). Before its first search ends
an object is waiting (SKIPPED, no stamp); afterwards it keeps its previous result while
the next search runs. A window's mask is not published: it is cut at the window by
design, and tracking would re-centre on it. Tracked prompts are re-centred on each
finished mask and the next search starts from there. A replaced prompt (revision bump)
drops its search; outputs planned for the old one are dropped by the machine.

Pure numpy and OpenCV, not thread-safe: ``camera.machine`` calls it under its lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from picosam2_ros.camera.output import mask_result
from picosam2_ros.camera.sensor import StreamGeometry, prompt_to_roi
from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, Roi
from picosam2_ros.core.pipeline import ObjectResult
from picosam2_ros.core.postprocess import keep_components_at
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.core.whole_object import BoxRun, ClickSearch, PointRun, WholeObjectSettings
from picosam2_ros.core.window import Window

#: How a window becomes a sensor ROI (module docstring).
FIT_CHOICES = ("centred", "translated")
#: Logit of window pixels the sensor did not look at: below any threshold in range.
UNSEEN_LOGIT = -30.0


class Decoding(Protocol):
    """What decoding a run needs of the machine's ``DecodeSettings``."""

    roi_side_px: int
    box_margin: float
    mask_threshold: float
    min_score: float
    box_prior_weight: float
    whole_object_fit: str


@dataclass(frozen=True)
class NativeRun:
    """The fallback run: the ordinary point prompt's ROI and decoding."""


Run = PointRun | BoxRun | NativeRun


def window_roi(
    window: Window, geometry: StreamGeometry, fit: str, min_side: int = MODEL_INPUT_SIZE
) -> Roi:
    """The square sensor ROI (full-sensor pixels) for a window in main-stream pixels."""
    if fit not in FIT_CHOICES:
        raise ValueError(f"fit must be one of {FIT_CHOICES}, got {fit!r}")
    b = geometry.bounds
    cx, cy = geometry.main_to_sensor(window.cx, window.cy)
    side = max(min_side, round(window.side * geometry.scale[0]))
    side = min(side, b.width, b.height)
    if fit == "centred":
        room = 2 * min(cx - b.x, b.x + b.width - cx, cy - b.y, b.y + b.height - cy)
        centred = min(side, math.floor(room))
        if centred >= min_side:
            side = centred
    left = min(max(round(cx - side / 2.0), b.x), b.x + b.width - side)
    top = min(max(round(cy - side / 2.0), b.y), b.y + b.height - side)
    return Roi(left, top, side, side)


def logits_in_window(
    logits: np.ndarray, roi: Roi, geometry: StreamGeometry, window: Window, size: int
) -> np.ndarray:
    """(S, S) logits of ``window`` (main-stream pixels) from the logits over the sensor
    ROI ``roi``, bilinear; ``UNSEEN_LOGIT`` where the window reaches more than one of its
    pixels past the ROI (the ROI is whole sensor pixels, the window is not: its border
    pixels count as seen)."""
    sr_y, sr_x = logits.shape
    sx, sy = geometry.scale
    crop = geometry.scaler_crop
    # The ROI in continuous main-stream pixels (not rounded as sensor_roi_to_main does).
    rx0, ry0 = (roi.x - crop.x) / sx, (roi.y - crop.y) / sy
    rw, rh = roi.width / sx, roi.height / sy
    step = window.side / size
    left = window.cx - window.side / 2.0
    top = window.cy - window.side / 2.0
    # Window input pixel u (its centre at frame coordinate left + (u + 0.5) * step) ->
    # ROI logit pixel (frame - rx0) * sr / rw - 0.5 (OpenCV: pixel centres at integers).
    ax, ay = step * sr_x / rw, step * sr_y / rh
    bx = (left + 0.5 * step - rx0) * sr_x / rw - 0.5
    by = (top + 0.5 * step - ry0) * sr_y / rh - 0.5
    m = np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)
    out = cv2.warpAffine(
        np.ascontiguousarray(logits, dtype=np.float32),
        m,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    centres = (np.arange(size) + 0.5) * step
    cols = np.abs(left + centres - (rx0 + rw / 2.0)) <= rw / 2.0 + step
    rows = np.abs(top + centres - (ry0 + rh / 2.0)) <= rh / 2.0 + step
    out[~(rows[:, None] & cols[None, :])] = UNSEEN_LOGIT
    return np.asarray(out, dtype=np.float32)


@dataclass
class _Search:
    revision: int
    search: ClickSearch
    native: bool = False  # the last window found nothing: the native run is next
    runs: int = 0


class WholeObjectSearches:
    """The searches in progress, one per whole-object prompt (module docstring)."""

    def __init__(self, size: tuple[int, int], settings: WholeObjectSettings | None = None):
        self.width, self.height = size
        self.settings = settings or WholeObjectSettings()
        self._searches: dict[int, _Search] = {}
        #: Network runs taken and searches finished, for diagnostics and benchmarks.
        self.runs = 0
        self.finished = 0

    @staticmethod
    def applies(prompt: ObjectPrompt) -> bool:
        """One foreground point and no box: the click the search is made for. Other
        prompts keep their one ROI."""
        return prompt.box is None and prompt.foreground.shape[0] == 1

    def drop(self, object_id: int) -> None:
        """The prompt changed or went: its search is over."""
        self._searches.pop(object_id, None)

    def drop_missing(self, standing: set[int]) -> None:
        for oid in [oid for oid in self._searches if oid not in standing]:
            del self._searches[oid]

    def _current(self, prompt: ObjectPrompt, revision: int, threshold: float) -> _Search:
        state = self._searches.get(prompt.object_id)
        if state is None or state.revision != revision:
            x, y = (float(v) for v in prompt.foreground[0])
            click = ClickSearch((x, y), self.width, self.height, self.settings, threshold)
            state = self._searches[prompt.object_id] = _Search(revision, click)
        return state

    def next_run(self, prompt: ObjectPrompt, revision: int, threshold: float) -> Run:
        state = self._current(prompt, revision, threshold)
        run = state.search.next_run()
        if state.native or run is None:
            return NativeRun()
        return run

    def roi(
        self, prompt: ObjectPrompt, revision: int, geometry: StreamGeometry, p: Decoding
    ) -> Roi:
        """The sensor ROI of the prompt's next run (starting a search when none runs)."""
        run = self.next_run(prompt, revision, p.mask_threshold)
        if isinstance(run, PointRun):
            return window_roi(run.window, geometry, p.whole_object_fit)
        if isinstance(run, BoxRun):
            box_prompt = _box_prompt(prompt, run.box)
            return prompt_to_roi(box_prompt, geometry, p.roi_side_px, p.box_margin)
        return prompt_to_roi(prompt, geometry, p.roi_side_px, p.box_margin)

    def take(
        self,
        prompt: ObjectPrompt,
        revision: int,
        logits: np.ndarray,
        roi: Roi,
        geometry: StreamGeometry,
        p: Decoding,
    ) -> ObjectResult | None:
        """The output of the prompt's current run over the sensor ROI ``roi``; the
        object's result when this run ended the search (the next search starts at the
        next ``roi``), else None."""
        state = self._current(prompt, revision, p.mask_threshold)
        run = self.next_run(prompt, revision, p.mask_threshold)
        self.runs += 1
        state.runs += 1
        search = state.search
        if isinstance(run, PointRun):
            window_logits = logits_in_window(logits, roi, geometry, run.window, logits.shape[0])
            search.take_point(window_logits)
            after = search.next_run()
            if after is not None:
                return None
            outcome = search.outcome()
            if not outcome.found:
                state.native = True  # the host keeps the native crop's answer
                return None
            return self._finish(prompt, self._window_result(prompt, p))
        roi_main = geometry.sensor_roi_to_main(roi)
        if isinstance(run, BoxRun):
            search.take_box()
            box_prompt = _box_prompt(prompt, run.box)
            result = mask_result(
                box_prompt, logits, roi_main, p.mask_threshold, p.min_score, p.box_prior_weight
            )
            return self._finish(prompt, result)
        result = mask_result(prompt, logits, roi_main, p.mask_threshold, p.min_score)
        return self._finish(prompt, result)

    def _window_result(self, prompt: ObjectPrompt, p: Decoding) -> ObjectResult:
        """Without the box run: the last window's mask, the click's components only (as
        the host's pipeline), decoded like any mask (``mask_result``)."""
        outcome = self._searches[prompt.object_id].search.outcome()
        roi, logits = outcome.on_frame(self.width, self.height)
        click = prompt.foreground[:1] - (roi.x, roi.y)
        kept = keep_components_at(logits > p.mask_threshold, click)
        logits = np.where(kept, logits, np.minimum(logits, p.mask_threshold))
        return mask_result(prompt, logits, roi, p.mask_threshold, p.min_score)

    def _finish(self, prompt: ObjectPrompt, result: ObjectResult) -> ObjectResult:
        self._searches.pop(prompt.object_id, None)
        self.finished += 1
        return replace(result, prompt=prompt)


def _box_prompt(prompt: ObjectPrompt, box: tuple[float, float, float, float]) -> ObjectPrompt:
    """The box run as a box prompt, keeping the click's background points (they erase
    their components from the mask, as on the host)."""
    background = prompt.background
    labels = np.zeros(background.shape[0], dtype=np.uint8)
    return ObjectPrompt(prompt.object_id, background, labels, box=box, track=prompt.track)
