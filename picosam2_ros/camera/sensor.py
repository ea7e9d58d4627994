"""Main stream <-> IMX500 sensor pixels, and prompts -> the sensor's inference ROI.

The IMX500 runs the network on a region of the FULL sensor (4056x3040 pixels) that
``IMX500.set_inference_roi_abs((left, top, width, height))`` selects, and resizes that
region to the network's 96x96 input. Prompts arrive in main-stream pixels (the image the
node publishes), so they are mapped to the sensor first:

    sensor_x = crop.x + x * crop.width / main_width      (crop = metadata "ScalerCrop")

A point prompt becomes a square of ``side`` main-stream pixels centred on the point; a
box prompt becomes a square of ``margin`` x the box's longer side centred on the box
(PicoSAM3's protocol). The square is TRANSLATED to lie inside the visible part of the
sensor, never clipped: picamera2 would clip an ROI that sticks out, which changes its
aspect and moves the prompt away from the model's input centre, and PicoSAM2 segments
whatever is at its input centre.

Back from the sensor, ``sensor_roi_to_main`` maps the ROI a frame was attributed to
(scaled once, rounded) instead of asking picamera2's ``get_roi_scaled``: that always
reports the LAST ROI set, which is not the ROI of a frame still in flight, and its
integer arithmetic through the raw stream size lands up to two pixels short
(``picamera2_roi_scaled`` reproduces it, for the emulator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, Roi, box_to_roi, point_to_roi
from picosam2_ros.core.prompts import ObjectPrompt, PromptError

#: IMX500 full sensor resolution (picamera2: IMX500 full sensor Rectangle(0, 0, 4056, 3040)).
SENSOR_WIDTH = 4056
SENSOR_HEIGHT = 3040
FULL_SENSOR = Roi(0, 0, SENSOR_WIDTH, SENSOR_HEIGHT)


def _scaled(value: int, numerator: int, denominator: int) -> int:
    """libcamera's ``value * numerator / denominator`` in 64-bit integers (floor for the
    non-negative values that occur here)."""
    return (value * numerator) // denominator


def _bounded(roi: Roi, bound: Roi) -> Roi:
    """libcamera ``Rectangle::boundedTo``: the intersection, zero-sized when disjoint."""
    x0, y0 = max(roi.x, bound.x), max(roi.y, bound.y)
    x1 = min(roi.x + roi.width, bound.x + bound.width)
    y1 = min(roi.y + roi.height, bound.y + bound.height)
    return Roi(x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))


@dataclass(frozen=True)
class StreamGeometry:
    """How the main stream sits on the sensor.

    ``main_size`` is the main stream's (width, height); ``raw_size`` the sensor mode's
    output (the 'raw' stream, e.g. 2028x1520 binned); ``scaler_crop`` the frame's
    "ScalerCrop" metadata in full-sensor pixels (the part of the sensor the main stream
    shows; the whole sensor unless a crop or a different aspect ratio was asked for).
    """

    main_size: tuple[int, int]
    raw_size: tuple[int, int] = (SENSOR_WIDTH // 2, SENSOR_HEIGHT // 2)
    scaler_crop: Roi = FULL_SENSOR

    def __post_init__(self) -> None:
        w, h = self.main_size
        if w <= 0 or h <= 0:
            raise ValueError(f"main stream size must be positive, got {w}x{h}")
        if self.scaler_crop.is_empty:
            raise ValueError(f"ScalerCrop must not be empty, got {self.scaler_crop}")

    @property
    def bounds(self) -> Roi:
        """Where an inference ROI may lie: the visible part of the sensor."""
        return _bounded(self.scaler_crop, FULL_SENSOR)

    @property
    def scale(self) -> tuple[float, float]:
        """Sensor pixels per main-stream pixel, (x, y)."""
        return (
            self.scaler_crop.width / self.main_size[0],
            self.scaler_crop.height / self.main_size[1],
        )

    def main_to_sensor(self, x: float, y: float) -> tuple[float, float]:
        """A main-stream pixel position in full-sensor pixels."""
        sx, sy = self.scale
        return self.scaler_crop.x + x * sx, self.scaler_crop.y + y * sy

    def sensor_roi_to_main(self, roi: Roi) -> Roi:
        """An inference ROI (full-sensor pixels) in main-stream pixels: its part inside the
        scaler crop, scaled once and rounded. Empty when it lies outside the visible
        region. (picamera2's ``get_roi_scaled``, see ``picamera2_roi_scaled``, floors
        twice through the raw stream size and lands up to two pixels short.)"""
        main_w, main_h = self.main_size
        crop = self.scaler_crop
        visible = _bounded(_bounded(roi, FULL_SENSOR), crop)
        if visible.is_empty:
            return Roi(0, 0, 0, 0)
        x0 = round((visible.x - crop.x) * main_w / crop.width)
        y0 = round((visible.y - crop.y) * main_h / crop.height)
        x1 = round((visible.x + visible.width - crop.x) * main_w / crop.width)
        y1 = round((visible.y + visible.height - crop.y) * main_h / crop.height)
        return Roi(x0, y0, max(x1 - x0, 1), max(y1 - y0, 1))

    def picamera2_roi_scaled(self, roi: Roi) -> Roi:
        """What picamera2's ``IMX500.get_roi_scaled`` reports for ``roi``: sensor -> raw
        -> bounded to the scaler crop -> translated -> scaled to the main stream, each
        step in libcamera's integer arithmetic (Rectangle ``scaledBy``, ``boundedTo``)."""
        raw_w, raw_h = self.raw_size
        main_w, main_h = self.main_size
        crop = self.scaler_crop
        sensor_crop = Roi(
            _scaled(crop.x, raw_w, SENSOR_WIDTH),
            _scaled(crop.y, raw_h, SENSOR_HEIGHT),
            _scaled(crop.width, raw_w, SENSOR_WIDTH),
            _scaled(crop.height, raw_h, SENSOR_HEIGHT),
        )
        obj = _bounded(roi, FULL_SENSOR)
        obj_raw = Roi(
            _scaled(obj.x, raw_w, SENSOR_WIDTH),
            _scaled(obj.y, raw_h, SENSOR_HEIGHT),
            _scaled(obj.width, raw_w, SENSOR_WIDTH),
            _scaled(obj.height, raw_h, SENSOR_HEIGHT),
        )
        bound = _bounded(obj_raw, sensor_crop)
        moved = Roi(
            max(bound.x - sensor_crop.x, 0),
            max(bound.y - sensor_crop.y, 0),
            bound.width,
            bound.height,
        )
        return Roi(
            _scaled(moved.x, main_w, sensor_crop.width),
            _scaled(moved.y, main_h, sensor_crop.height),
            _scaled(moved.width, main_w, sensor_crop.width),
            _scaled(moved.height, main_h, sensor_crop.height),
        )


def prompt_to_roi(
    prompt: ObjectPrompt,
    geometry: StreamGeometry,
    side_px: int = MODEL_INPUT_SIZE,
    box_margin: float = 1.1,
    min_side: int = MODEL_INPUT_SIZE,
) -> Roi:
    """The square inference ROI, in full-sensor pixels, for a prompt in main-stream pixels.

    - a box: side = ``box_margin`` x the box's longer side (made square), centred on it;
    - one foreground point: side = ``side_px`` main-stream pixels, centred on the point;
    - several foreground points: the square framing all of them (with the box margin),
      at least ``side_px`` main-stream pixels, because the sensor runs one ROI per frame.
    The side is at least ``min_side`` sensor pixels (the network input: a smaller ROI
    would only be upsampled) and at most the visible region's shorter side; the square is
    translated, not clipped, to stay inside the visible region. Raises PromptError for a
    prompt with neither a box nor a foreground point.
    """
    bounds = geometry.bounds
    sx = geometry.scale[0]
    if prompt.box is not None:
        x0, y0 = geometry.main_to_sensor(prompt.box[0], prompt.box[1])
        x1, y1 = geometry.main_to_sensor(prompt.box[2], prompt.box[3])
        return _square_around((x0, y0, x1, y1), bounds, box_margin, min_side)
    fg = prompt.foreground
    if fg.shape[0] == 0:
        raise PromptError(f"object {prompt.object_id}: needs a foreground point or a box")
    side = max(min_side, round(side_px * sx))
    if fg.shape[0] == 1:
        cx, cy = geometry.main_to_sensor(float(fg[0, 0]), float(fg[0, 1]))
        side = min(side, bounds.width, bounds.height)
        local = point_to_roi(cx - bounds.x, cy - bounds.y, side, bounds.width, bounds.height)
        return Roi(local.x + bounds.x, local.y + bounds.y, local.width, local.height)
    lo = np.min(fg, axis=0)
    hi = np.max(fg, axis=0)
    x0, y0 = geometry.main_to_sensor(float(lo[0]), float(lo[1]))
    x1, y1 = geometry.main_to_sensor(float(hi[0]), float(hi[1]))
    return _square_around((x0, y0, x1, y1), bounds, box_margin, side)


def _square_around(
    box: tuple[float, float, float, float], bounds: Roi, margin: float, min_side: int
) -> Roi:
    x0, y0, x1, y1 = box
    local = box_to_roi(
        (x0 - bounds.x, y0 - bounds.y, x1 - bounds.x, y1 - bounds.y),
        bounds.width,
        bounds.height,
        margin,
        min(min_side, bounds.width, bounds.height),
    )
    return Roi(local.x + bounds.x, local.y + bounds.y, local.width, local.height)


def sensor_timestamp_to_ros_ns(sensor_ns: int, ros_now_ns: int, monotonic_now_ns: int) -> int:
    """A frame's ROS stamp from its "SensorTimestamp".

    SensorTimestamp is the start of the frame's readout in nanoseconds of the kernel's
    CLOCK_MONOTONIC (time since boot, not wall time). ROS stamps are in the node's clock
    (system time, or /clock under use_sim_time). Reading both clocks at the same moment
    gives how long ago the frame was read out; the stamp is "ROS now minus that age", so
    it keeps the sensor's precise spacing between frames and does not include the time
    the frame spent in buffers and in this process. Both clock reads are a few
    microseconds apart, which bounds the error.
    """
    age = monotonic_now_ns - sensor_ns
    if age < 0 or not math.isfinite(age):
        age = 0  # a timestamp from the future would be a clock mix-up; never stamp ahead
    return ros_now_ns - age
