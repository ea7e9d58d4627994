"""Segment everything on the sensor: a sweep of inference ROIs over consecutive frames.

The host segments everything with a grid of point crops run in batches
(``core.everything``). The IMX500 runs the network on ONE region per frame, so on the
camera the same grid becomes a sweep: each point of ``core.everything.grid_points``
(main-stream pixels, the same grid the host uses for the same image size) is visited in
turn, its inference ROI being the one a point prompt there would get
(``camera.sensor.prompt_to_roi``: ``roi_side_px`` square, translated inside the visible
sensor). The frame attributed to the point (the settle rule, as for prompts) gives its
mask, which becomes a candidate exactly as on the host
(``core.everything.candidate_from_result``: stability score, centre component, crop
fill); when every point has had its frame, ``core.everything.mask_nms`` deduplicates the
candidates and the kept ones are the sweep's result (object ids 1..N in decreasing
score). With ``hierarchical`` the sweep visits the sparse points first and then only the
dense points no confident first-pass mask covers, as ``segment_everything`` does. Then
the next sweep starts.

A sweep's masks come from different frames: each object keeps the stamp of the frame its
mask was computed on, and a sweep describes a still scene (a moving object may be found
twice, or missed). Cost: every point whose ROI differs from the previous one takes
``settle_frames`` frames before one is attributed to it, plus any frames without output.

Pure numpy, not thread-safe: ``camera.machine`` calls it under its lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from picosam2_ros.core.everything import (
    Candidate,
    EverythingSettings,
    candidate_from_result,
    candidate_to_object,
    first_pass_indices,
    grid_points,
    grid_shape,
    mask_nms,
    uncovered_points,
)
from picosam2_ros.core.pipeline import FrameResult, ObjectResult
from picosam2_ros.core.prompts import ObjectPrompt

#: The sweep's place among the prompts taking turns on the sensor (``RoiScheduler`` ids):
#: above every prompt's object id (uint32), so it comes after all of them in each round.
SWEEP_ID = 2**32


@dataclass(frozen=True)
class SweepResult:
    """One completed sweep: its objects as a frame (``inference_ms``: the sensor's DNN
    runtime summed over the frames the masks came from), each object's source stamp, and
    what it took."""

    result: FrameResult
    stamps_ns: list[int]
    first_pass_points: int
    second_pass_points: int
    skipped_points: int
    candidates: int
    #: Frames from the one the sweep's first ROI was set after to its last one.
    frames: int

    @property
    def points_run(self) -> int:
        return self.first_pass_points + self.second_pass_points


class EverythingSweep:
    """The grid points of one frame size visited one per turn (module docstring)."""

    def __init__(self, size: tuple[int, int], settings: EverythingSettings) -> None:
        """Raises EverythingError for settings out of range or a grid denser than the
        frame."""
        settings.check()
        self.width, self.height = size
        self.settings = settings
        self.columns, self.rows = grid_shape(self.width, self.height, settings.points_per_side)
        self.points = grid_points(self.width, self.height, settings.points_per_side)
        self.restart()

    def restart(self) -> None:
        """Drop what the current sweep collected and start again at the first point."""
        first = first_pass_indices(self.columns, self.rows, self.settings)
        self._queue: deque[int] = deque(int(i) for i in first)
        self._first_count = len(first)
        self._second: np.ndarray | None = None
        hierarchical = len(first) < len(self.points)
        self._rest = np.setdiff1d(np.arange(len(self.points)), first) if hierarchical else None
        self._covered = np.zeros((self.height, self.width), bool) if hierarchical else None
        self._candidates: list[Candidate] = []
        self._stamps: dict[int, int] = {}
        self._dnn_ms = 0.0
        self._started_frame: int | None = None

    @property
    def point(self) -> tuple[float, float] | None:
        """The grid point whose turn it is (main-stream pixels)."""
        if not self._queue:
            return None
        x, y = self.points[self._queue[0]]
        return float(x), float(y)

    def prompt(self) -> ObjectPrompt | None:
        """The current point as the point prompt whose ROI the sensor gets."""
        point = self.point
        return None if point is None else ObjectPrompt.from_point(SWEEP_ID, *point)

    def started(self, frame_number: int) -> None:
        """The sensor got the sweep's first ROI after frame ``frame_number``."""
        if self._started_frame is None:
            self._started_frame = frame_number

    def take(
        self, result: ObjectResult, frame_number: int, stamp_ns: int, dnn_ms: float = 0.0
    ) -> SweepResult | None:
        """The current point's result (its mask over its ROI in main-stream pixels);
        returns the sweep's result when this was its last point (and starts the next
        sweep), else None."""
        if not self._queue:
            raise RuntimeError("take() with no point waiting: the sweep is complete")
        index = self._queue.popleft()
        self._dnn_ms += dnn_ms
        cand = candidate_from_result(
            result, self.point_at(index), index, self.settings, self._covered
        )
        if cand is not None:
            self._candidates.append(cand)
            self._stamps[index] = stamp_ns
        if not self._queue and self._second is None and self._rest is not None:
            assert self._covered is not None
            self._second = uncovered_points(self.points, self._rest, self._covered)
            self._queue.extend(int(i) for i in self._second)
        if self._queue:
            return None
        done = self._finish(frame_number)
        self.restart()
        return done

    def point_at(self, index: int) -> tuple[float, float]:
        x, y = self.points[index]
        return float(x), float(y)

    def _finish(self, frame_number: int) -> SweepResult:
        s = self.settings
        kept = mask_nms(self._candidates, s.nms_iou, s.max_masks)
        objects = [candidate_to_object(k + 1, cand) for k, cand in enumerate(kept)]
        second = 0 if self._second is None else len(self._second)
        rest = 0 if self._rest is None else len(self._rest)
        started = self._started_frame if self._started_frame is not None else frame_number
        return SweepResult(
            FrameResult(self.width, self.height, objects, self._dnn_ms),
            [self._stamps[cand.order] for cand in kept],
            first_pass_points=self._first_count,
            second_pass_points=second,
            skipped_points=rest - second,
            candidates=len(self._candidates),
            frames=frame_number - started,
        )
