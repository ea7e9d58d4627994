"""The camera's per-frame thinking: which prompt a sensor output belongs to, what to
publish for the frame, and which ROI the sensor gets next.

One ROI per frame. The IMX500 runs the network on one region per frame, so standing
prompts take turns (``turn_frames`` attributed frames each, ascending object id). A
frame's output is attributed to a prompt only when that prompt's ROI was in force for
it: after an ROI change the next ``settle_frames`` frames belong to nobody (the settle
rule, ``scheduler``). A prompt replaced while its ROI is planned or in flight bumps its
revision: outputs of the old revision are dropped (counted as ``frames_stale_prompt``),
never attributed to the new prompt. Each object's result is its LATEST, kept with the
stamp of the frame it was computed on (0 = no result yet: reported SKIPPED, waiting for
its first turn). Tracked prompts are re-centred on each new mask and reported lost after
``lost_after`` empty masks of their own frames (``core.prompt_book``).

Segment everything (``configure_sweep``): a sweep of grid-point ROIs (``sweep``) takes
turns with the prompts as one more participant after them, one point per turn, under the
same settle rule; a frame that completes a sweep carries its result (``everything``).
Turns rather than priority: prompts of a robot usually stand for long (tracked objects),
so a sweep that waited for no prompt to stand might never run, while a turn costs each
prompt only one point's frames (``settle_frames`` + 1) per round.

Point -> whole object (``DecodeSettings.whole_object``): a single click runs the host's
search (``whole_object``): each of its up to three network runs is one turn of the
prompt, under the same settle rule, and only the finished search's mask is published
(the object keeps its previous result, or waits, meanwhile). Box and multi-point
prompts keep their one ROI.

Per frame, from the capture thread::

    frame = machine.read(metadata)      # stamp, outputs, KPIs, geometry (decode)
    outcome = machine.step(frame)       # attribute, decode the mask, plan and set the ROI

Prompts arrive from other threads through ``book`` and ``prompt_changed`` under
``lock``. The clock (ROS time and CLOCK_MONOTONIC) and the camera (picamera2's IMX500
object, or the emulator's) are injected, so the machine runs without ROS and without the
sensor. No rclpy here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

from picosam2_ros.camera.output import OutputError, mask_result, tensor_to_logits
from picosam2_ros.camera.scheduler import Attribution, RoiScheduler
from picosam2_ros.camera.sensor import StreamGeometry, prompt_to_roi, sensor_timestamp_to_ros_ns
from picosam2_ros.camera.sweep import SWEEP_ID, EverythingSweep, SweepResult
from picosam2_ros.camera.whole_object import WholeObjectSearches
from picosam2_ros.core.everything import EverythingSettings
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.pipeline import EMPTY_ROI, FrameResult, ObjectResult, ObjectStatus
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt, PromptError

#: Counters the machine keeps in ``counts``, in diagnostics order.
FRAME_COUNTERS = (
    "frames",
    "frames_without_output",
    "frames_settling",
    "frames_stale_prompt",
    "results",
    "bad_outputs",
    "everything_sweeps",
    "whole_object_runs",
    "whole_object_searches",
)


class SensorApi(Protocol):
    """The part of picamera2's ``IMX500`` the machine uses."""

    def get_outputs(
        self, metadata: Mapping[str, Any], add_batch: bool = False
    ) -> list[np.ndarray] | None: ...

    def get_kpi_info(self, metadata: Mapping[str, Any]) -> tuple[float, float] | None: ...

    def set_inference_roi_abs(self, roi: tuple[int, int, int, int]) -> None: ...


#: ``report(key, text)``: a problem for the log (once per key) and diagnostics.
Reporter = Callable[[str, str], None]


@dataclass
class DecodeSettings:
    """How prompts become ROIs and outputs become masks (the node's parameters)."""

    roi_side_px: int = 96
    box_margin: float = 1.1
    mask_threshold: float = 0.0
    min_score: float = 0.0
    box_prior_weight: float = 0.0
    #: Single clicks search the whole object, one search per turn (``whole_object``).
    whole_object: bool = False
    whole_object_fit: str = "centred"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DecodeSettings:
        """From the node parameters of the same names."""
        return cls(**{f.name: params[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class LatestResult:
    """An object's newest result and the stamp (ns) of the frame it was computed on;
    0 when it has none yet."""

    result: ObjectResult
    stamp_ns: int


@dataclass(frozen=True)
class CapturedFrame:
    """One captured frame as the machine reads it from its metadata."""

    number: int
    stamp_ns: int
    outputs: list[np.ndarray] | None
    #: (DNN runtime, DSP runtime) in ms, when the frame carries them.
    kpi: tuple[float, float] | None
    geometry: StreamGeometry


@dataclass(frozen=True)
class FrameOutcome:
    """What one frame gives: ``fresh`` when an object got a new result on it (then its
    segmentation, mask and overlay are published); ``objects``: every standing object's
    latest result, in ascending id; ``lost``: the ids reported lost; ``next_roi``: the
    ROI just set on the sensor, or None when the ROI in force stays; ``result``: the
    objects' results as one frame (``inference_ms``: the sensor's DNN runtime);
    ``everything``: the segment-everything sweep this frame completed, if any."""

    frame: CapturedFrame
    fresh: bool
    objects: list[LatestResult]
    lost: frozenset[int]
    next_roi: Roi | None
    result: FrameResult
    everything: SweepResult | None = None


class CameraStateMachine:
    """Prompts in, per-frame results and sensor ROIs out (see the module docstring)."""

    def __init__(
        self,
        size: tuple[int, int],
        book: PromptBook,
        scheduler: RoiScheduler,
        settings: DecodeSettings,
        ros_now_ns: Callable[[], int],
        report: Reporter,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        attributions_kept: int = 2000,
    ) -> None:
        self.width, self.height = size
        self.book = book
        self.scheduler = scheduler
        self.settings = settings
        #: Guards ``book``, the scheduler and the results; held by prompt callbacks.
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(FRAME_COUNTERS, 0)
        #: Recent attributions (frame number, object id, sensor ROI), for inspection.
        self.attributions: deque[tuple[int, int, Roi]] = deque(maxlen=attributions_kept)
        self._ros_now_ns = ros_now_ns
        self._monotonic_ns = monotonic_ns
        self._report = report
        self._camera: SensorApi | None = None
        self._geometry = StreamGeometry(size)
        self._revisions: dict[int, int] = {}  # bumped whenever a user replaces a prompt
        self._turn_revision = 0
        self._turns_seen = 0
        self._latest: dict[int, LatestResult] = {}
        self._frame = 0
        self._attributed = False  # whether the frame being handled was attributed
        self.sweep: EverythingSweep | None = None
        self._swept: SweepResult | None = None  # a sweep completed by the current frame
        #: The whole-object searches in progress (used while ``settings.whole_object``).
        self.searches = WholeObjectSearches(size)
        #: The prompt whose search took a run and goes on in its turn (its next ROI).
        self._search_continues: int | None = None

    # ------------------------------------------------------------------ set-up
    def camera_opened(self, camera: SensorApi, raw_size: tuple[int, int]) -> None:
        """A (re)opened camera: its sensor starts from the full-sensor ROI, so the turns
        are planned afresh."""
        with self.lock:
            self._camera = camera
            self._geometry = StreamGeometry((self.width, self.height), raw_size)
            self.scheduler = RoiScheduler(self.scheduler.turn_frames, self.scheduler.settle_frames)
            self._turns_seen = 0
            if self.sweep is not None:
                self.sweep.restart()

    def configure_sweep(self, settings: EverythingSettings | None) -> None:
        """Segment everything with these settings from now on (None: stop); a sweep in
        progress starts again. Raises EverythingError for settings out of range or a
        grid denser than the frame (the sweep in force stays then)."""
        sweep = None if settings is None else EverythingSweep((self.width, self.height), settings)
        with self.lock:
            self.sweep = sweep
            self.prompt_changed(SWEEP_ID)  # outputs in flight belong to the old sweep

    def prompt_changed(self, object_id: int) -> None:
        """A user set, replaced or removed this prompt (caller holds ``lock``): outputs
        already on their way are of the old prompt, so bump its revision, drop its latest
        result and end its turn."""
        self._revisions[object_id] = self._revisions.get(object_id, 0) + 1
        self._latest.pop(object_id, None)
        self.searches.drop(object_id)
        self.scheduler.end_turn(object_id)

    # ------------------------------------------------------------------ frames
    def read(self, metadata: Mapping[str, Any]) -> CapturedFrame:
        """The frame's number, ROS stamp (from "SensorTimestamp"), outputs, KPIs and
        geometry ("ScalerCrop")."""
        camera = self._camera
        if camera is None:
            raise RuntimeError("no camera: call camera_opened first")
        self._frame += 1
        self.counts["frames"] += 1
        mono_ns = self._monotonic_ns()
        stamp_ns = sensor_timestamp_to_ros_ns(
            int(metadata.get("SensorTimestamp", mono_ns)), self._ros_now_ns(), mono_ns
        )
        kpi = camera.get_kpi_info(metadata)
        outputs = camera.get_outputs(metadata)
        if outputs is None:
            self.counts["frames_without_output"] += 1
        geometry = self._geometry
        if "ScalerCrop" in metadata:
            geometry = StreamGeometry(
                geometry.main_size, geometry.raw_size, Roi(*metadata["ScalerCrop"])
            )
        return CapturedFrame(self._frame, stamp_ns, outputs, kpi, geometry)

    def step(self, frame: CapturedFrame) -> FrameOutcome:
        """Attribute the frame's output, set the next ROI on the sensor, and say what the
        frame publishes."""
        self._swept = None
        fresh = self._attribute(frame)
        next_roi = self._plan_next(frame)
        camera = self._camera
        if next_roi is not None and camera is not None:
            camera.set_inference_roi_abs((next_roi.x, next_roi.y, next_roi.width, next_roi.height))
        with self.lock:
            standing = self.book.snapshot()
            latest = dict(self._latest)
            lost = frozenset(p.object_id for p in standing if self.book.is_lost(p.object_id))
        objects = [latest.get(p.object_id) or waiting_result(p) for p in standing]
        dnn_ms = frame.kpi[0] if frame.kpi else 0.0
        result = FrameResult(self.width, self.height, [o.result for o in objects], dnn_ms)
        if fresh:
            self.counts["results"] += 1
        return FrameOutcome(frame, fresh, objects, lost, next_roi, result, self._swept)

    def _attribute(self, frame: CapturedFrame) -> bool:
        """Give the frame's output to the prompt whose ROI was in force (settle rule);
        True when an object got a fresh result."""
        with self.lock:
            who = self.scheduler.attribute(frame.number)
            self._attributed = who.object_id is not None
            if who.object_id is None:
                if who.reason == "settling":
                    self.counts["frames_settling"] += 1
                return False
            if who.object_id == SWEEP_ID:
                self._attribute_sweep(frame, who)
                return False
            prompt = next((p for p in self.book.snapshot() if p.object_id == who.object_id), None)
            if prompt is None or self._revisions.get(who.object_id, 0) != self._turn_revision:
                # The prompt was replaced after its ROI was planned: this output is of the
                # old place.
                self.counts["frames_stale_prompt"] += 1
                return False
            if who.roi is not None:
                self.attributions.append((frame.number, who.object_id, who.roi))
        if not frame.outputs or who.roi is None:
            return False
        logits = self._logits(frame)
        if logits is None:
            return False
        s = self.settings
        roi_main = frame.geometry.sensor_roi_to_main(who.roi)
        if self._searching(prompt):
            found = self._take_run(prompt, who, frame, logits)
            if found is None:
                return False
            result = found
        else:
            result = mask_result(
                prompt, logits, roi_main, s.mask_threshold, s.min_score, s.box_prior_weight
            )
        with self.lock:
            if self._revisions.get(who.object_id, 0) != self._turn_revision:
                return False  # replaced while this frame was being decoded
            self.book.update_tracking([result])
            if who.object_id in self.book:
                self._latest[who.object_id] = LatestResult(result, frame.stamp_ns)
        return True

    def _searching(self, prompt: ObjectPrompt) -> bool:
        return self.settings.whole_object and self.searches.applies(prompt)

    def _take_run(
        self,
        prompt: ObjectPrompt,
        who: Attribution,
        frame: CapturedFrame,
        logits: np.ndarray,
    ) -> ObjectResult | None:
        """The output of a whole-object prompt's run (consecutive ROIs of its turn): its
        result when the search ended with it, else None (the next run's ROI follows)."""
        with self.lock:
            if self._revisions.get(prompt.object_id, 0) != self._turn_revision:
                return None
            rev = self._turn_revision
            planned = self.searches.roi(prompt, rev, frame.geometry, self.settings)
            if planned != who.roi:  # not this run's ROI: nothing to take
                self.counts["frames_stale_prompt"] += 1
                return None
            geometry = frame.geometry
            result = self.searches.take(prompt, rev, logits, who.roi, geometry, self.settings)
            self.counts["whole_object_runs"] = self.searches.runs
            self.counts["whole_object_searches"] = self.searches.finished
            if result is None:
                # The search goes on in the same turn: its next run's ROI next.
                self._search_continues = prompt.object_id
            else:
                self.scheduler.end_turn(prompt.object_id)  # one search per turn
            return result

    def _logits(self, frame: CapturedFrame) -> np.ndarray | None:
        """The frame's first output as logits, or None (reported) when it is not a mask."""
        try:
            return tensor_to_logits(frame.outputs[0]) if frame.outputs else None
        except OutputError as exc:
            self.counts["bad_outputs"] += 1
            self._report(f"output:{exc}", f"network output ignored: {exc}")
            return None

    def _attribute_sweep(self, frame: CapturedFrame, who: Attribution) -> None:
        """Give the frame's output to the sweep's current point (caller holds ``lock``);
        a frame without output leaves the point waiting for the turn's next frame."""
        sweep, prompt = self.sweep, self.sweep.prompt() if self.sweep else None
        if sweep is None or prompt is None or self._turn_revision != self._revisions.get(SWEEP_ID):
            self.counts["frames_stale_prompt"] += 1
            return
        if who.roi is None:
            return
        self.attributions.append((frame.number, SWEEP_ID, who.roi))
        logits = self._logits(frame)
        if logits is None:
            return
        roi_main = frame.geometry.sensor_roi_to_main(who.roi)
        result = mask_result(prompt, logits, roi_main, self.settings.mask_threshold)
        dnn_ms = frame.kpi[0] if frame.kpi else 0.0
        self._swept = sweep.take(result, frame.number, frame.stamp_ns, dnn_ms)
        if self._swept is not None:
            self.counts["everything_sweeps"] += 1
        self.scheduler.end_turn(SWEEP_ID)  # one attributed frame per point

    def _plan_next(self, frame: CapturedFrame) -> Roi | None:
        """The next turn's ROI, when the sensor must get a new one."""
        with self.lock:
            rois: dict[int, Roi] = {}
            standing = self.book.snapshot()
            self.searches.drop_missing({p.object_id for p in standing if self._searching(p)})
            for prompt in standing:
                try:
                    rois[prompt.object_id] = self._roi(prompt, frame.geometry)
                except (PromptError, ValueError) as exc:
                    self._report(f"roi:{exc}", f"no ROI for a prompt: {exc}")
            point = self.sweep.prompt() if self.sweep is not None else None
            if point is not None:
                s = self.settings
                rois[SWEEP_ID] = prompt_to_roi(point, frame.geometry, s.roi_side_px, s.box_margin)
            continuing, self._search_continues = self._search_continues, None
            if (
                continuing is not None
                and continuing in rois
                and self.scheduler.continues(continuing)
            ):
                self._attributed = False
                return self.scheduler.retarget(frame.number, continuing, rois[continuing])
            new_roi = self.scheduler.advance(frame.number, rois, self._attributed)
            self._attributed = False
            if self.scheduler.turns != self._turns_seen:
                # A new turn starts: outputs from now on belong to the prompt as it is now.
                current = self.scheduler.current
                self._turn_revision = self._revisions.get(current, 0) if current else 0
                self._turns_seen = self.scheduler.turns
                if current == SWEEP_ID and self.sweep is not None:
                    self.sweep.started(frame.number)
            return new_roi

    def _roi(self, prompt: ObjectPrompt, geometry: StreamGeometry) -> Roi:
        """The prompt's ROI: its next run's under the whole-object search, else its own."""
        s = self.settings
        if self._searching(prompt):
            rev = self._revisions.get(prompt.object_id, 0)
            return self.searches.roi(prompt, rev, geometry, s)
        return prompt_to_roi(prompt, geometry, s.roi_side_px, s.box_margin)


def waiting_result(prompt: ObjectPrompt) -> LatestResult:
    """The result of a standing prompt that has had no turn on the sensor yet."""
    waiting = ObjectResult(
        prompt.object_id,
        ObjectStatus.SKIPPED,
        0.0,
        EMPTY_ROI,
        np.zeros((0, 0), dtype=bool),
        None,
        prompt,
        "waiting for its first turn on the sensor",
    )
    return LatestResult(waiting, 0)
