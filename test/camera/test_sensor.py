"""Main stream <-> sensor mapping and prompt -> inference ROI (pure core)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from picosam2_ros.camera.calibration import CalibrationError, calibration_from_dict
from picosam2_ros.camera.sensor import (
    FULL_SENSOR,
    SENSOR_HEIGHT,
    SENSOR_WIDTH,
    StreamGeometry,
    prompt_to_roi,
    sensor_timestamp_to_ros_ns,
)
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.prompts import ObjectPrompt, PromptError

VGA = StreamGeometry((640, 480))
SCALE = SENSOR_WIDTH / 640  # 6.3375 sensor pixels per main-stream pixel
SIDE = round(96 * SCALE)  # 608


def point(x: float, y: float) -> ObjectPrompt:
    return ObjectPrompt.from_point(1, x, y)


def box(x0: float, y0: float, x1: float, y1: float) -> ObjectPrompt:
    return ObjectPrompt(1, np.empty((0, 2)), np.empty(0), box=(x0, y0, x1, y1))


def test_a_central_point_gives_a_square_centred_on_it_in_sensor_pixels() -> None:
    roi = prompt_to_roi(point(320, 240), VGA, side_px=96)
    assert roi.width == roi.height == SIDE
    assert abs(roi.x + roi.width / 2 - 320 * SCALE) <= 1
    assert abs(roi.y + roi.height / 2 - 240 * SCALE) <= 1


@pytest.mark.parametrize(
    ("x", "y", "expected_x", "expected_y"),
    [
        (0, 0, 0, 0),  # top-left corner
        (639.9, 479.9, SENSOR_WIDTH - SIDE, SENSOR_HEIGHT - SIDE),  # bottom-right corner
        (639.9, 0, SENSOR_WIDTH - SIDE, 0),  # top-right corner
        (0, 479.9, 0, SENSOR_HEIGHT - SIDE),  # bottom-left corner
        (5, 240, 0, None),  # left edge: shifted right, vertical centre kept
        (320, 476, None, SENSOR_HEIGHT - SIDE),  # bottom edge
    ],
)
def test_rois_at_edges_and_corners_are_translated_inside_the_sensor_not_clipped(
    x: float, y: float, expected_x: int | None, expected_y: int | None
) -> None:
    roi = prompt_to_roi(point(x, y), VGA, side_px=96)
    assert roi.width == roi.height == SIDE  # same size and aspect everywhere
    assert roi.x >= 0 and roi.x + roi.width <= SENSOR_WIDTH
    assert roi.y >= 0 and roi.y + roi.height <= SENSOR_HEIGHT
    if expected_x is not None:
        assert roi.x == expected_x
    else:
        assert abs(roi.x + SIDE / 2 - x * SCALE) <= 1
    if expected_y is not None:
        assert roi.y == expected_y
    else:
        assert abs(roi.y + SIDE / 2 - y * SCALE) <= 1


def test_a_box_becomes_a_square_of_the_margin_times_its_longer_side() -> None:
    roi = prompt_to_roi(box(100, 200, 220, 240), VGA, box_margin=1.1)  # 120 x 40
    side = math.ceil(1.1 * 120 * SCALE)
    assert roi.width == roi.height
    assert abs(roi.width - side) <= 1
    assert abs(roi.x + roi.width / 2 - 160 * SCALE) <= 1
    assert abs(roi.y + roi.height / 2 - 220 * SCALE) <= 1
    tall = prompt_to_roi(box(100, 100, 120, 300), VGA, box_margin=1.0)  # 20 x 200
    assert tall.width == tall.height and abs(tall.height - 200 * SCALE) <= 1


def test_a_box_larger_than_the_sensor_is_clamped_to_its_shorter_side_and_kept_inside() -> None:
    roi = prompt_to_roi(box(-50, -50, 700, 500), VGA, box_margin=1.1)
    assert roi == Roi(roi.x, 0, SENSOR_HEIGHT, SENSOR_HEIGHT)
    assert roi.x >= 0 and roi.x + roi.width <= SENSOR_WIDTH


def test_a_tiny_box_gets_at_least_the_network_input_size_and_points_frame_all_points() -> None:
    tiny = prompt_to_roi(box(300, 300, 302, 301), VGA)
    assert tiny.width == tiny.height == 96
    several = ObjectPrompt(1, np.array([[100.0, 100.0], [300.0, 160.0]]), np.array([1, 1]))
    roi = prompt_to_roi(several, VGA, side_px=96, box_margin=1.1)
    assert roi.width == roi.height >= math.ceil(1.1 * 200 * SCALE) - 1
    assert roi.x <= 100 * SCALE and roi.x + roi.width >= 300 * SCALE


def test_a_prompt_without_foreground_or_box_is_refused() -> None:
    only_background = ObjectPrompt(1, np.array([[10.0, 10.0]]), np.array([0]))
    with pytest.raises(PromptError):
        prompt_to_roi(only_background, VGA)


def test_sensor_roi_maps_back_to_the_main_stream_exactly_and_like_picamera2() -> None:
    assert VGA.sensor_roi_to_main(FULL_SENSOR) == Roi(0, 0, 640, 480)
    roi = prompt_to_roi(point(200, 100), VGA, side_px=96)
    back = VGA.sensor_roi_to_main(roi)
    assert abs(back.x - 152) <= 1 and abs(back.y - 52) <= 1 and back.width == back.height == 96
    # picamera2's get_roi_scaled floors twice through the 2028x1520 raw stream: close,
    # never larger.
    floored = VGA.picamera2_roi_scaled(roi)
    assert floored.x <= back.x and floored.width <= back.width
    assert back.x - floored.x <= 2 and back.width - floored.width <= 2
    assert VGA.picamera2_roi_scaled(FULL_SENSOR) == Roi(0, 0, 640, 480)


def test_a_scaler_crop_shifts_the_mapping_and_bounds_the_roi() -> None:
    # A 16:9 main stream showing the middle band of the sensor.
    crop = Roi(0, 380, 4056, 2281)
    wide = StreamGeometry((1280, 720), scaler_crop=crop)
    sx, sy = wide.main_to_sensor(0, 0)
    assert (sx, sy) == (0, 380)
    roi = prompt_to_roi(point(640, 2), wide, side_px=96)
    assert roi.y == 380  # translated into the visible band, not onto invisible rows
    assert wide.sensor_roi_to_main(roi).y == 0
    outside = Roi(0, 0, 500, 300)  # above the visible band
    assert wide.sensor_roi_to_main(outside).is_empty


def test_sensor_timestamps_become_ros_stamps_by_their_age() -> None:
    # Read out 5 ms ago on the monotonic clock -> 5 ms before ROS now.
    assert sensor_timestamp_to_ros_ns(1_000_000, 9_000_000_000, 6_000_000) == 8_995_000_000
    # Frames keep their spacing.
    a = sensor_timestamp_to_ros_ns(10_000_000, 50_000_000_000, 60_000_000)
    b = sensor_timestamp_to_ros_ns(43_333_333, 50_000_000_000, 60_000_000)
    assert b - a == 33_333_333
    # A timestamp ahead of the monotonic clock is never stamped in the future.
    assert sensor_timestamp_to_ros_ns(7_000, 1_000_000, 5_000) == 1_000_000


def test_calibration_is_scaled_to_the_stream_and_mismatched_aspect_rejected() -> None:
    data = {
        "image_width": 1280,
        "image_height": 960,
        "camera_matrix": {"rows": 3, "cols": 3, "data": [1000, 0, 640, 0, 1000, 480, 0, 0, 1]},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, -0.2, 0, 0, 0]},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        "projection_matrix": {
            "rows": 3,
            "cols": 4,
            "data": [1000, 0, 640, 0, 0, 1000, 480, 0, 0, 0, 1, 0],
        },
    }
    cal = calibration_from_dict(data, 640, 480)
    assert cal.calibrated and (cal.width, cal.height) == (640, 480)
    assert cal.k == [500, 0, 320, 0, 500, 240, 0, 0, 1]
    assert cal.p[:7] == [500, 0, 320, 0, 0, 500, 240]
    assert cal.d == [0.1, -0.2, 0, 0, 0]
    with pytest.raises(CalibrationError, match="aspect"):
        calibration_from_dict(data, 1280, 720)
    with pytest.raises(CalibrationError, match="camera_matrix"):
        calibration_from_dict({**data, "camera_matrix": {"data": [1, 2]}}, 640, 480)
