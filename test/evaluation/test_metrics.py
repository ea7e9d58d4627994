"""Per-instance IoUs against hand-computed cases: empty unions, the paper crop at the
image borders, box crops, the mask reconstruction, size classes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from picosam2_ros.bags.layout import PromptSpec
from picosam2_ros.core.geometry import Roi
from picosam2_ros.evaluation.masks import (
    CroppedMask,
    MaskFormatError,
    cropped_mask_from_msg,
    paste,
)
from picosam2_ros.evaluation.protocol import (
    CropProtocol,
    evaluation_crop,
    frame_ious,
    instance_ious,
    size_class,
)


def rect(width: int, height: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Full-frame mask, columns [x0, x1), rows [y0, y1)."""
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def both(pred: np.ndarray, truth: np.ndarray, crop: Roi) -> tuple[float, float]:
    """The windowed computation, checked against the full-frame reference."""
    h, w = pred.shape
    fast = instance_ious(CroppedMask.from_frame(pred), CroppedMask.from_frame(truth), crop, w, h)
    assert fast == frame_ious(pred, truth, crop)
    return fast


def test_overlap_hand_computed() -> None:
    # pred 4x1 at columns 10..13, truth 6x1 at columns 12..17: 2 common, union 8.
    pred, truth = rect(50, 40, 10, 5, 14, 6), rect(50, 40, 12, 5, 18, 6)
    crop = evaluation_crop(PromptSpec(point=(12, 5)), 50, 40)
    assert crop == Roi(0, 0, 50, 40)  # clipped to the small frame
    assert both(pred, truth, crop) == (0.25, 0.25)


def test_empty_unions_count_as_one() -> None:
    empty = np.zeros((30, 40), dtype=bool)
    assert both(empty, empty, Roi(0, 0, 20, 20)) == (1.0, 1.0)
    # Nothing inside the crop, disagreement outside it: crop 1.0, frame 0.0.
    pred, truth = rect(200, 120, 150, 100, 160, 110), rect(200, 120, 170, 100, 180, 110)
    assert both(pred, truth, Roi(0, 0, 96, 96)) == (0.0, 1.0)
    # Nothing predicted, something true.
    assert both(empty, rect(40, 30, 1, 1, 3, 3), Roi(0, 0, 40, 30)) == (0.0, 0.0)


def test_paper_crop_at_the_right_and_bottom_border() -> None:
    # 200x200 frame, point (190, 150): left 142, right min(200, 238) = 200 (58 wide),
    # top 102, bottom min(200, 198) = 198: the paper clips instead of translating.
    crop = evaluation_crop(PromptSpec(point=(190, 150)), 200, 200)
    assert crop == Roi(142, 102, 58, 96)
    truth = rect(200, 200, 130, 140, 200, 161)  # 70 x 21, starts left of the crop
    pred = rect(200, 200, 142, 140, 200, 161)  # 58 x 21: exactly the part inside
    assert both(pred, truth, crop) == (pytest.approx(58 / 70), 1.0)


def test_paper_crop_at_the_top_left_border() -> None:
    crop = evaluation_crop(PromptSpec(point=(10, 20)), 300, 200)
    assert crop == Roi(0, 0, 96, 96)
    truth = rect(300, 200, 0, 0, 100, 10)  # 100 x 10; 96 x 10 inside the crop
    pred = rect(300, 200, 0, 0, 48, 10)  # 48 x 10
    full, inside = both(pred, truth, crop)
    assert full == pytest.approx(48 / 100)
    assert inside == pytest.approx(48 / 96)


def test_box_prompt_uses_the_box_crop() -> None:
    # A 40 x 20 box: side ceil(1.1 * 40) = 44, centred on the box, inside the frame.
    crop = evaluation_crop(PromptSpec(box=(50.0, 60.0, 90.0, 80.0)), 200, 150)
    assert crop == Roi(48, 48, 44, 44)
    wide = CropProtocol(box_margin=2.0)
    assert evaluation_crop(PromptSpec(box=(50.0, 60.0, 90.0, 80.0)), 200, 150, wide) == Roi(
        30, 30, 80, 80
    )


def test_no_prompt_falls_back_to_the_papers_prompt_rule() -> None:
    truth = CroppedMask.from_frame(rect(300, 200, 100, 50, 121, 71))  # centre (110, 60)
    assert evaluation_crop(None, 300, 200, ground_truth=truth) == Roi(62, 12, 96, 96)
    assert evaluation_crop(None, 300, 200) == Roi(0, 0, 0, 0)


def test_point_side_is_configurable() -> None:
    crop = evaluation_crop(PromptSpec(point=(100, 100)), 300, 300, CropProtocol(point_side=64))
    assert crop == Roi(68, 68, 64, 64)


def test_windowed_ious_equal_full_frame_on_random_masks() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        pred = rng.random((60, 80)) < 0.3
        truth = rng.random((60, 80)) < 0.3
        pred[:, : rng.integers(0, 80)] = False
        x, y = int(rng.integers(0, 80)), int(rng.integers(0, 60))
        both(pred, truth, evaluation_crop(PromptSpec(point=(x, y)), 80, 60, CropProtocol(32)))


def test_cropped_mask_paste_clips_at_the_frame() -> None:
    mask = np.ones((4, 6), dtype=bool)
    full = paste(mask, Roi(8, 7, 6, 4), 10, 9)  # sticks out right and bottom
    assert full.shape == (9, 10)
    assert int(full.sum()) == 2 * 2
    assert full[7:9, 8:10].all()
    back = CroppedMask.from_frame(full)
    assert back.roi == Roi(8, 7, 2, 2)
    assert CroppedMask.from_frame(np.zeros((5, 5), bool)).roi.is_empty
    with pytest.raises(MaskFormatError):
        CroppedMask(Roi(0, 0, 3, 3), np.ones((3, 4), bool))


def _mono8(pixels: np.ndarray, step: int) -> SimpleNamespace:
    h, w = pixels.shape
    rows = np.zeros((h, step), np.uint8)
    rows[:, :w] = pixels
    return SimpleNamespace(height=h, width=w, step=step, encoding="mono8", data=rows.tobytes())


def test_object_mask_message_to_cropped_mask() -> None:
    pixels = np.array([[0, 255, 0], [255, 255, 0]], np.uint8)
    roi = SimpleNamespace(x_offset=5, y_offset=6, width=3, height=2)
    obj = SimpleNamespace(object_id=7, crop=roi, bbox=roi, mask=_mono8(pixels, step=4))
    got = cropped_mask_from_msg(obj)
    assert got.roi == Roi(5, 6, 3, 2)
    assert np.array_equal(got.mask, pixels > 0)
    skipped = SimpleNamespace(
        object_id=7,
        crop=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
        mask=_mono8(np.zeros((0, 0), np.uint8), step=0),
    )
    assert cropped_mask_from_msg(skipped).roi.is_empty
    wrong = SimpleNamespace(x_offset=0, y_offset=0, width=4, height=2)
    bad = SimpleNamespace(object_id=7, crop=wrong, mask=_mono8(pixels, 3))
    with pytest.raises(MaskFormatError, match="does not match"):
        cropped_mask_from_msg(bad)


@pytest.mark.parametrize(
    ("area", "size"),
    [(0, "small"), (1023, "small"), (1024, "medium"), (9215, "medium"), (9216, "large")],
)
def test_size_classes(area: int, size: str) -> None:
    assert size_class(area) == size
