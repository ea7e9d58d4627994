"""Prompts taking turns on the IMX500's single inference ROI, and which frame is whose.

The sensor runs the network on ONE region per frame, so several prompts share the
frames: each in turn gets its ROI for ``turn_frames`` attributed frames, in ascending
object id, wrapping around (round robin). A turn whose ROI equals the one already in
force (one prompt standing still, or the same ROI again) changes nothing on the sensor.

The settle rule. An ROI change is not applied to the very next frame: frames already
exposed or queued in the pipeline still carry the previous ROI, and picamera2 cannot
say which ROI a finished frame used (``get_roi_scaled`` reports the last ROI set). So a
frame is attributed to a prompt only when that prompt's ROI was certainly in force for
it: an ROI set while handling frame ``n`` is trusted from frame ``n + settle_frames + 1``
on; the ``settle_frames`` frames in between belong to nobody and are counted as
settling. Frames are counted as the node receives them; if the camera drops frames the
sensor has moved on further than the count says, so the rule only becomes more cautious.
``settle_frames`` must be at least the camera's ROI lag (the emulator's
``roi_lag_frames``).

Pure and not thread-safe: the node serialises access with its lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from picosam2_ros.core.geometry import Roi


@dataclass(frozen=True)
class Attribution:
    """Whose frame this is: ``object_id`` and the ROI in force, or None with the reason
    ("idle": no ROI was ever set; "settling": the last ROI may not be in force yet)."""

    object_id: int | None
    roi: Roi | None
    reason: str = ""


class RoiScheduler:
    """Round-robin ROI turns with the settle rule."""

    def __init__(self, turn_frames: int = 2, settle_frames: int = 2) -> None:
        if turn_frames < 1:
            raise ValueError(f"turn_frames must be >= 1, got {turn_frames}")
        if settle_frames < 0:
            raise ValueError(f"settle_frames must be >= 0, got {settle_frames}")
        self.turn_frames = turn_frames
        self.settle_frames = settle_frames
        self._current: int | None = None  # object whose turn it is
        self._roi: Roi | None = None  # the ROI last set on the sensor
        self._set_after: int = -1  # frame number after which it was set
        self._done = 0  # attributed frames of the current turn
        self._turn_over = False
        self.switches = 0  # ROI changes sent to the sensor
        self.turns = 0  # turns started

    @property
    def current(self) -> int | None:
        """The object whose turn it is (its ROI is set, possibly still settling)."""
        return self._current

    @property
    def roi(self) -> Roi | None:
        """The ROI last set on the sensor."""
        return self._roi

    def configure(self, turn_frames: int, settle_frames: int) -> None:
        """Change the turn length and settle count at run time (node parameters)."""
        if turn_frames < 1 or settle_frames < 0:
            raise ValueError(
                f"need turn_frames >= 1 and settle_frames >= 0, got {turn_frames}, {settle_frames}"
            )
        self.turn_frames = turn_frames
        self.settle_frames = settle_frames

    def attribute(self, frame: int) -> Attribution:
        """Whose result frame number ``frame`` carries, by the settle rule. Frame numbers
        count the frames the node received, increasing by one per frame."""
        if self._roi is None or self._current is None:
            return Attribution(None, None, "idle")
        if frame <= self._set_after + self.settle_frames:
            return Attribution(None, self._roi, "settling")
        return Attribution(self._current, self._roi, "")

    def end_turn(self, object_id: int) -> None:
        """End ``object_id``'s turn at the next ``advance`` (its prompt was replaced, so
        its ROI must be planned again)."""
        if object_id == self._current:
            self._turn_over = True

    def continues(self, object_id: int) -> bool:
        """Whether it is ``object_id``'s turn and nothing has ended it."""
        return object_id == self._current and not self._turn_over

    def retarget(self, frame: int, object_id: int, roi: Roi) -> Roi | None:
        """Keep ``object_id``'s turn but move its ROI after frame ``frame`` (the next run
        of a search that takes several ROIs in one turn): the settle rule starts again and
        the turn's count of attributed frames restarts. Returns the ROI to set, or None
        when it stays (or the turn is not ``object_id``'s, or it is ending)."""
        if not self.continues(object_id):
            return None
        self._done = 0
        if roi == self._roi:
            return None
        self._roi = roi
        self._set_after = frame
        self.switches += 1
        return roi

    def advance(self, frame: int, rois: Mapping[int, Roi], attributed: bool) -> Roi | None:
        """After frame ``frame`` was handled: count it towards the current turn when it
        was ``attributed``, start the next turn when this one is over or its object is
        gone, and return the ROI the sensor must be given now, or None when the ROI in
        force stays. ``rois`` holds the ROI of every standing prompt, planned from its
        current (possibly re-centred) position; ascending id decides the order."""
        if attributed:
            self._done += 1
        if not rois:
            self._current = None
            self._done = 0
            self._turn_over = False
            return None
        turn_over = self._current not in rois or self._turn_over or self._done >= self.turn_frames
        if not turn_over:
            return None
        order = sorted(rois)
        later = [oid for oid in order if self._current is not None and oid > self._current]
        following = later[0] if later else order[0]
        self._current = following
        self.turns += 1
        self._done = 0
        self._turn_over = False
        wanted = rois[following]
        if wanted == self._roi:
            return None  # same region: the sensor keeps it, nothing to settle
        self._roi = wanted
        self._set_after = frame
        self.switches += 1
        return wanted
