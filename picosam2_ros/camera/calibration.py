"""camera_info contents from a calibration file (the camera_calibration_parsers YAML).

The YAML that ROS's camera_calibration writes holds ``image_width``, ``image_height``,
``camera_name``, ``camera_matrix``, ``distortion_model``, ``distortion_coefficients``,
``rectification_matrix`` and ``projection_matrix`` (each matrix as rows, cols, data).
A calibration made at another resolution of the same aspect ratio is scaled to the main
stream (K and P scale with the image; distortion does not). Without a calibration the
node publishes the ROS convention for an uncalibrated camera: the size, and K, R, P all
zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Calibration:
    """The fields of sensor_msgs/CameraInfo, as plain lists."""

    width: int
    height: int
    distortion_model: str = "plumb_bob"
    d: list[float] = field(default_factory=list)
    k: list[float] = field(default_factory=lambda: [0.0] * 9)
    r: list[float] = field(default_factory=lambda: [0.0] * 9)
    p: list[float] = field(default_factory=lambda: [0.0] * 12)
    calibrated: bool = False


def uncalibrated(width: int, height: int) -> Calibration:
    return Calibration(width, height)


def _matrix(data: Mapping[str, Any], key: str, rows: int, cols: int) -> list[float]:
    entry = data.get(key)
    if not isinstance(entry, Mapping) or "data" not in entry:
        raise CalibrationError(f"{key} missing or without 'data'")
    values = entry["data"]
    if not isinstance(values, Sequence) or len(values) != rows * cols:
        raise CalibrationError(f"{key} needs {rows * cols} values")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{key} has a non-numeric value: {exc}") from exc


def calibration_from_dict(data: Mapping[str, Any], width: int, height: int) -> Calibration:
    """The calibration for a ``width`` x ``height`` stream from a parsed calibration YAML.

    Raises CalibrationError when a field is missing or malformed, or when the calibrated
    image has another aspect ratio than the stream (scaling would be wrong).
    """
    try:
        cal_w, cal_h = int(data["image_width"]), int(data["image_height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(
            f"image_width / image_height missing or not integers: {exc}"
        ) from exc
    if cal_w <= 0 or cal_h <= 0:
        raise CalibrationError(f"calibrated image size must be positive, got {cal_w}x{cal_h}")
    if abs(cal_w * height - cal_h * width) > max(cal_w, cal_h):
        raise CalibrationError(
            f"calibrated at {cal_w}x{cal_h}, another aspect ratio than the {width}x{height} "
            "stream; calibrate at this aspect ratio"
        )
    k = _matrix(data, "camera_matrix", 3, 3)
    r = _matrix(data, "rectification_matrix", 3, 3)
    p = _matrix(data, "projection_matrix", 3, 4)
    dist = data.get("distortion_coefficients", {"data": []})
    d_values = dist.get("data", []) if isinstance(dist, Mapping) else []
    try:
        d = [float(v) for v in d_values]
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"distortion_coefficients has a non-numeric value: {exc}") from exc
    sx, sy = width / cal_w, height / cal_h
    # fx, cx scale with x and fy, cy with y (K row-major: [fx 0 cx; 0 fy cy; 0 0 1]).
    for i, s in ((0, sx), (2, sx), (4, sy), (5, sy)):
        k[i] *= s
    for i, s in ((0, sx), (2, sx), (3, sx), (5, sy), (6, sy), (7, sy)):
        p[i] *= s
    return Calibration(
        width,
        height,
        str(data.get("distortion_model", "plumb_bob")),
        d,
        k,
        r,
        p,
        calibrated=True,
    )


def load_calibration_file(value: str, width: int, height: int) -> Calibration:
    """The calibration in a camera_calibration YAML file, for a ``width`` x ``height``
    main stream; ValueError naming the file and the problem otherwise."""
    import yaml

    path = Path(value).expanduser()
    try:
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise CalibrationError("not a YAML mapping")
        return calibration_from_dict(data, width, height)
    except (OSError, yaml.YAMLError, CalibrationError) as exc:
        raise ValueError(f"calibration_file {path}: {exc}") from None


#: Logged when a camera has no calibration file.
UNCALIBRATED_WARNING = (
    "no calibration_file: camera_info is uncalibrated (K, R, P all zero); "
    "calibrate with camera_calibration and set calibration_file"
)


def calibration_or_uncalibrated(value: str, width: int, height: int) -> tuple[Calibration, bool]:
    """``load_calibration_file(value, ...)``, or the uncalibrated all-zero calibration when
    ``value`` is empty; the flag says which (True: calibrated)."""
    if not value:
        return uncalibrated(width, height), False
    return load_calibration_file(value, width, height), True
