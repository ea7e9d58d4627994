"""Image crop -> PicoSAM2 input tensor.

Only the crop is ever converted: cutting the ROI out of the frame is a view, and the
resize, channel reorder and normalisation then touch 96x96 pixels instead of a whole
640x480 (or larger) frame. That keeps per-prompt cost far below the model's.
"""

from __future__ import annotations

import cv2
import numpy as np

from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, Roi

SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")

#: Channels per pixel of each supported encoding.
ENCODING_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}

#: ImageNet statistics PicoSAM2 was trained with, on [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# cvtColor code turning a (resized) crop of each encoding into RGB; None = already RGB.
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
}

# normalised = (v / 255 - mean) / std = v * _SCALE + _OFFSET, folded into one multiply-add
# per value; float32 throughout (what the model takes).
_SCALE = np.array([1.0 / (255.0 * s) for s in IMAGENET_STD], dtype=np.float32)[None, :, None, None]
_OFFSET = np.array(
    [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)], dtype=np.float32
)[None, :, None, None]


class EncodingError(ValueError):
    """An image encoding the segmenter does not handle, or an array that does not match
    its encoding."""


def check_image(image: np.ndarray, encoding: str) -> None:
    """Raise EncodingError unless ``image`` is an 8-bit array laid out as ``encoding``."""
    if encoding not in ENCODING_CHANNELS:
        raise EncodingError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if image.dtype != np.uint8:
        raise EncodingError(f"{encoding} image must be uint8, got {image.dtype}")
    channels = ENCODING_CHANNELS[encoding]
    ok = image.ndim == 2 if channels == 1 else image.ndim == 3 and image.shape[2] == channels
    if channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        ok = True
    if not ok:
        raise EncodingError(
            f"{encoding} image must have {channels} channel(s), got array shape {image.shape}"
        )


def model_input_buffer(out: np.ndarray | None, size: int) -> np.ndarray:
    """``out`` checked as a (size, size, 3) uint8 C-contiguous buffer, or a new one."""
    if out is None:
        return np.empty((size, size, 3), dtype=np.uint8)
    if out.shape != (size, size, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        # OpenCV would silently write into a new array instead.
        raise ValueError(f"out must be C-contiguous ({size}, {size}, 3) uint8, got {out.shape}")
    return out


def crop_to_model_input(
    image: np.ndarray,
    encoding: str,
    roi: Roi,
    size: int = MODEL_INPUT_SIZE,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Cut ``roi`` out of ``image`` and return it as a (size, size, 3) uint8 RGB crop,
    resized bilinearly (cv2.INTER_LINEAR) when the ROI is not already size x size.

    ``out``, a C-contiguous (size, size, 3) uint8 array (e.g. one slot of a batch),
    receives the crop instead of a new array.
    """
    check_image(image, encoding)
    if roi.is_empty or roi.x < 0 or roi.y < 0:
        raise ValueError(f"crop {roi} is empty or starts outside the image")
    if roi.x + roi.width > image.shape[1] or roi.y + roi.height > image.shape[0]:
        raise ValueError(f"crop {roi} exceeds the {image.shape[1]}x{image.shape[0]} image")
    out = model_input_buffer(out, size)
    crop = image[roi.slices]  # a view: OpenCV reads it with the frame's row stride
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    if roi.width != size or roi.height != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    code = _TO_RGB[encoding]
    if code is None:
        out[...] = crop
    else:
        cv2.cvtColor(crop, code, dst=out)
    return out


def normalise(crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB crops -> (N, 3, S, S) float32 C-contiguous model input,
    ImageNet-normalised on [0, 1] RGB."""
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected (N, S, S, 3) uint8 crops, got {crops.shape} {crops.dtype}")
    n, h, w, _ = crops.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    # Multiplying the channels-first view straight into `out` does the layout change,
    # the cast and the scaling in one pass.
    np.multiply(crops.transpose(0, 3, 1, 2), _SCALE, out=out)
    out += _OFFSET
    return out
