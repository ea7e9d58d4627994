"""IMX500 output tensor -> PicoSAM2 logits -> mask in main-stream pixels.

picamera2's ``IMX500.get_outputs(metadata)`` reads the flat float32 "CnnOutputTensor"
and reshapes each tensor with the dimensions listed in "CnnOutputTensorInfo" and
``order='F'`` (column-major). The sensor lists a tensor's dimensions innermost first:
for PicoSAM2's 1x96x96 output (channel, row, column; the column index varies fastest in
the data) the list is (width 96, height 96, channels 1). Column-major reshaping with
that list yields an array indexed ``[x, y, c]``: the transpose of an image. So
``tensor_to_logits`` drops the channel axis and transposes back to ``[y, x]``. On square
objects a forgotten transpose is invisible; ``test/camera`` uses asymmetric ones.

The mask is then resized (nearest) to the ROI's size in the main stream and kept inside
it, as the host pipeline does (``picosam2_ros.core.pipeline.ObjectResult``), so messages,
overlay and tracking are shared with the segmenter.
"""

from __future__ import annotations

import cv2
import numpy as np

from picosam2_ros.core.box_prior import apply_box_prior, box_in_crop
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.pipeline import EMPTY_ROI, ObjectResult, ObjectStatus
from picosam2_ros.core.postprocess import erase_components_at, resize_mask, stability_score
from picosam2_ros.core.prompts import ObjectPrompt


class OutputError(ValueError):
    """An output tensor that is not a PicoSAM2 mask; the message says what it is."""


def tensor_to_logits(tensor: np.ndarray) -> np.ndarray:
    """The (height, width) float32 logits of one ``get_outputs`` tensor.

    Accepts (W, H), (W, H, 1) and, from ``get_outputs(..., add_batch=True)``,
    (1, W, H, 1) or (1, W, H); raises OutputError for anything else (several channels,
    a wrong rank).
    """
    arr = np.asarray(tensor, dtype=np.float32)
    if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[2] != 1):
        if arr.shape[0] != 1:
            raise OutputError(f"expected a batch of one, got tensor shape {arr.shape}")
        arr = arr[0]
    if arr.ndim == 3:
        if arr.shape[2] != 1:
            raise OutputError(
                f"expected one mask channel, got tensor shape {arr.shape} (width, height, channels)"
            )
        arr = arr[:, :, 0]
    if arr.ndim != 2 or arr.size == 0:
        raise OutputError(f"expected a (width, height) mask tensor, got shape {arr.shape}")
    return arr.T


def logits_to_tensor_data(logits: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The inverse, as the sensor produces it: (height, width) logits -> the flat float32
    data (column index fastest) and its dimension list, innermost first (W, H, 1)."""
    if logits.ndim != 2:
        raise OutputError(f"expected (height, width) logits, got shape {logits.shape}")
    height, width = logits.shape
    flat = np.ascontiguousarray(logits, dtype=np.float32).reshape(-1)
    return flat, (width, height, 1)


def mask_result(
    prompt: ObjectPrompt,
    logits: np.ndarray,
    roi_main: Roi,
    threshold: float = 0.0,
    min_score: float = 0.0,
    box_prior_weight: float = 0.0,
) -> ObjectResult:
    """One object's result from the logits of its ROI.

    ``roi_main`` is the ROI in main-stream pixels; the mask is the logits above
    ``threshold`` resized to it, with the components under background points removed.
    A box prompt's logits are first decoded with its box (``core.box_prior``: nothing
    outside the box, the inscribed ellipse favoured by ``box_prior_weight``), as the
    host pipeline decodes a box model's.
    A mask whose stability score is below ``min_score`` counts as empty (status EMPTY,
    no bbox), which is what tracking counts towards losing the object. An ROI outside
    the visible image gives SKIPPED.
    """
    if roi_main.is_empty:
        empty = np.zeros((0, 0), dtype=bool)
        reason = "its sensor ROI lies outside the main stream"
        return ObjectResult(
            prompt.object_id, ObjectStatus.SKIPPED, 0.0, EMPTY_ROI, empty, None, prompt, reason
        )
    if prompt.box is not None and box_prior_weight > 0.0 and logits.shape[0] == logits.shape[1]:
        box = box_in_crop(prompt.box, roi_main, logits.shape[0])
        logits = apply_box_prior(logits[None], box[None], box_prior_weight)[0]
    score = stability_score(logits, threshold)
    mask = resize_mask(logits > threshold, roi_main.width, roi_main.height)
    background = prompt.background
    if background.shape[0]:
        mask = erase_components_at(mask, background - (roi_main.x, roi_main.y))
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0 or score < min_score:
        mask[:] = False
        return ObjectResult(prompt.object_id, ObjectStatus.EMPTY, 0.0, roi_main, mask, None, prompt)
    bbox = Roi(roi_main.x + x, roi_main.y + y, w, h)
    return ObjectResult(prompt.object_id, ObjectStatus.OK, score, roi_main, mask, bbox, prompt)
