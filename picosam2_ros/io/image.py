"""sensor_msgs/Image <-> numpy without copying on the way in.

A 640x480 rgb8 frame is 900 KB; the segmenter only reads a few 96x96 crops of it, so
``image_to_array`` returns a view of the message's buffer (row padding handled with
strides) and the crops are cut from that view. Only 8-bit encodings exist here, so the
message's ``is_bigendian`` flag does not matter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from picosam2_ros.core.preprocess import ENCODING_CHANNELS, SUPPORTED_ENCODINGS

if TYPE_CHECKING:
    from sensor_msgs.msg import Image


class ImageError(ValueError):
    """An image message that cannot be read as a numpy array; the message says why."""


def image_to_array(msg: Any) -> np.ndarray:
    """(H, W, C) uint8 view of an image message's data ((H, W) for mono8).

    Duck-typed on ``height``, ``width``, ``encoding``, ``step`` and ``data``, so it
    also reads rosbags' message objects. No copy is made when ``data`` supports the
    buffer protocol (rclpy's array.array, bytes, numpy arrays).
    """
    encoding = str(msg.encoding)
    if encoding not in ENCODING_CHANNELS:
        raise ImageError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    channels = ENCODING_CHANNELS[encoding]
    if height <= 0 or width <= 0:
        raise ImageError(f"image has zero size: {width}x{height}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageError(
            f"step {step} is smaller than width * channels = {width} * {channels} = {row_bytes}"
        )
    try:
        buf = np.frombuffer(msg.data, dtype=np.uint8)
    except (TypeError, ValueError):
        buf = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    needed = step * height
    if buf.size < needed:
        raise ImageError(
            f"image data has {buf.size} bytes, {encoding} {width}x{height} with step {step} "
            f"needs {needed}"
        )
    rows = buf[:needed].reshape(height, step)[:, :row_bytes]
    if channels == 1:
        return rows
    return rows.reshape(height, width, channels)


def array_to_image(array: np.ndarray, encoding: str, header: Any) -> Image:
    """A sensor_msgs/Image holding a copy of ``array`` (tightly packed rows).

    ``data`` is assigned as bytes: rclpy converts bytes to its array type in one copy,
    while assigning an ndarray goes element by element (about 100x slower).
    """
    from sensor_msgs.msg import Image

    if encoding not in ENCODING_CHANNELS:
        raise ImageError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if array.dtype != np.uint8:
        raise ImageError(f"{encoding} image must be uint8, got {array.dtype}")
    channels = ENCODING_CHANNELS[encoding]
    if array.ndim == 3 and channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ImageError(f"{encoding} needs {channels} channel(s), got array shape {array.shape}")
    height, width = array.shape[:2]
    msg = Image()
    msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * channels
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg
