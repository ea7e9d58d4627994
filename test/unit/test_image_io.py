"""sensor_msgs/Image <-> numpy: zero-copy views, row padding, clear errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from std_msgs.msg import Header

from picosam2_ros.io.image import ImageError, array_to_image, image_to_array

CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


@dataclass
class FakeImage:
    """The attributes image_to_array reads (as rosbags' messages have them)."""

    height: int
    width: int
    encoding: str
    step: int
    data: object


def _padded(
    encoding: str, width: int = 7, height: int = 5, pad: int = 3
) -> tuple[FakeImage, np.ndarray]:
    c = CHANNELS[encoding]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width * c), dtype=np.uint8)
    rows = np.concatenate([pixels, np.full((height, pad), 0xEE, np.uint8)], axis=1)
    shape = (height, width) if c == 1 else (height, width, c)
    return FakeImage(height, width, encoding, width * c + pad, rows.tobytes()), pixels.reshape(
        shape
    )


@pytest.mark.parametrize("encoding", list(CHANNELS))
def test_each_encoding_with_padded_step(encoding: str) -> None:
    msg, expected = _padded(encoding)
    arr = image_to_array(msg)
    assert arr.shape == expected.shape and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, expected)
    assert np.shares_memory(arr, np.frombuffer(msg.data, np.uint8))  # type: ignore[call-overload]


@pytest.mark.parametrize("encoding", list(CHANNELS))
def test_round_trip_through_real_message(encoding: str) -> None:
    c = CHANNELS[encoding]
    shape = (4, 6) if c == 1 else (4, 6, c)
    array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    header = Header(frame_id="cam")
    msg = array_to_image(array, encoding, header)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 6, 6 * c, encoding)
    assert msg.header.frame_id == "cam" and len(msg.data) == array.size
    view = image_to_array(msg)
    np.testing.assert_array_equal(view, array)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


def test_non_contiguous_array_is_packed() -> None:
    big = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    view = big[2:6, 3:9]
    msg = array_to_image(view, "rgb8", Header())
    np.testing.assert_array_equal(image_to_array(msg), view)


def test_errors_name_the_problem() -> None:
    msg, _ = _padded("rgb8")
    with pytest.raises(ImageError, match="unsupported encoding '16UC1'"):
        image_to_array(FakeImage(5, 7, "16UC1", 14, msg.data))
    with pytest.raises(ImageError, match="zero size: 0x5"):
        image_to_array(FakeImage(5, 0, "rgb8", 24, msg.data))
    with pytest.raises(ImageError, match="zero size"):
        image_to_array(FakeImage(0, 7, "rgb8", 24, b""))
    with pytest.raises(ImageError, match="step 20 is smaller than width \\* channels"):
        image_to_array(FakeImage(5, 7, "rgb8", 20, msg.data))
    truncated = bytes(msg.data)[:-1]  # type: ignore[call-overload]
    with pytest.raises(ImageError, match=r"has 119 bytes.*needs 120"):
        image_to_array(FakeImage(5, 7, "rgb8", 24, truncated))
    with pytest.raises(ImageError, match="3 channel"):
        array_to_image(np.zeros((4, 4), np.uint8), "rgb8", Header())
    with pytest.raises(ImageError, match="uint8"):
        array_to_image(np.zeros((4, 4), np.float32), "mono8", Header())


def test_list_data_is_accepted() -> None:
    arr = image_to_array(FakeImage(2, 2, "mono8", 2, [1, 2, 3, 4]))
    np.testing.assert_array_equal(arr, [[1, 2], [3, 4]])
