"""Crop -> model input: channel order per encoding, resize, ImageNet normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.preprocess import (
    SUPPORTED_ENCODINGS,
    EncodingError,
    crop_to_model_input,
    normalise,
)

RNG = np.random.default_rng(7)
BASE_RGB = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (120, 160, 1), dtype=np.uint8)
GREY = RNG.integers(0, 256, (120, 160), dtype=np.uint8)
FRAMES = {
    "rgb8": BASE_RGB,
    "bgr8": np.ascontiguousarray(BASE_RGB[:, :, ::-1]),
    "rgba8": np.concatenate([BASE_RGB, ALPHA], axis=2),
    "bgra8": np.concatenate([BASE_RGB[:, :, ::-1], ALPHA], axis=2),
    "mono8": GREY,
}
ROI = Roi(40, 10, 96, 96)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_native_size_crop_is_rgb_pixel_for_pixel(encoding: str) -> None:
    crop = crop_to_model_input(FRAMES[encoding], encoding, ROI)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    # One pixel by hand: crop (u=17, v=5) is frame (x=57, y=15).
    # R, G, B whatever the memory order; mono8 repeats the grey value.
    expected = [GREY[15, 57]] * 3 if encoding == "mono8" else list(BASE_RGB[15, 57])
    assert list(crop[5, 17]) == expected


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_crop_is_resized_bilinearly(encoding: str) -> None:
    # A 2x larger ROI: bilinear 2:1 downscaling averages each 2x2 block.
    roi = Roi(10, 4, 112, 112)
    crop = crop_to_model_input(FRAMES[encoding], encoding, roi, size=56)
    assert crop.shape == (56, 56, 3)
    v, u = 9, 30
    if encoding == "mono8":
        block = GREY[4 + 2 * v : 6 + 2 * v, 10 + 2 * u : 12 + 2 * u].astype(float)
        expected = np.full(3, block.mean())
    else:
        block = BASE_RGB[4 + 2 * v : 6 + 2 * v, 10 + 2 * u : 12 + 2 * u].astype(float)
        expected = block.reshape(4, 3).mean(axis=0)
    np.testing.assert_allclose(crop[v, u], expected, atol=1.0)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_crop_written_into_batch_slot(encoding: str) -> None:
    batch = np.zeros((2, 96, 96, 3), dtype=np.uint8)
    returned = crop_to_model_input(FRAMES[encoding], encoding, Roi(3, 2, 150, 110), out=batch[1])
    assert np.shares_memory(returned, batch)
    np.testing.assert_array_equal(
        batch[1], crop_to_model_input(FRAMES[encoding], encoding, Roi(3, 2, 150, 110))
    )
    assert not batch[0].any()
    with pytest.raises(ValueError, match="C-contiguous"):
        crop_to_model_input(FRAMES[encoding], encoding, ROI, out=np.zeros((96, 96, 4), np.uint8))


def test_normalise_hand_computed_pixel() -> None:
    crops = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    crops[1, 2, 3] = (200, 17, 255)
    out = normalise(crops)
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32
    assert out.flags.c_contiguous
    expected = [
        (200 / 255 - 0.485) / 0.229,
        (17 / 255 - 0.456) / 0.224,
        (255 / 255 - 0.406) / 0.225,
    ]
    np.testing.assert_allclose(out[1, :, 2, 3], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        out[0, :, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], atol=1e-5
    )


def test_unsupported_encoding_and_mismatched_arrays() -> None:
    with pytest.raises(EncodingError, match="unsupported encoding 'yuv422'"):
        crop_to_model_input(BASE_RGB, "yuv422", ROI)
    with pytest.raises(EncodingError, match="4 channel"):
        crop_to_model_input(BASE_RGB, "rgba8", ROI)
    with pytest.raises(EncodingError, match="uint8"):
        crop_to_model_input(BASE_RGB.astype(np.float32), "rgb8", ROI)


def test_crop_must_lie_inside_the_image() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        crop_to_model_input(BASE_RGB, "rgb8", Roi(100, 0, 96, 96))
