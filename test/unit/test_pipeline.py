"""segment_frame end to end through onnxruntime with the colour-match model.

The colour-match model segments the region whose colour matches its crop's centre, so
on flat synthetic scenes the right answer is known to the pixel: these tests catch
shifted, mirrored, transposed or mis-scaled paste-back.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.geometry import Roi, mask_bbox, paper_prompt_point
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import (
    CropSettings,
    ObjectStatus,
    plan_crops,
    segment_frame,
    union_mask,
)
from picosam2_ros.core.postprocess import resize_mask
from picosam2_ros.core.preprocess import EncodingError
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.testing.scenes import SceneObject, random_scene, render_scene

W, H = 640, 480
RED, GREEN = (220, 40, 40), (40, 200, 60)


class CountingBackend:
    """Passes through to a real backend and records the batch sizes it was given."""

    def __init__(self, inner: OnnxBackend) -> None:
        self.inner = inner
        self.batches: list[int] = []

    @property
    def name(self) -> str:
        return "counting"

    @property
    def input_size(self) -> int:
        return self.inner.input_size

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.shape[0])
        return self.inner.infer(batch)


class ConstantBackend:
    """Returns the same logit everywhere (a model that sees nothing)."""

    name = "constant"
    input_size = 96

    def __init__(self, value: float) -> None:
        self.value = value

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.full((batch.shape[0], 96, 96), self.value, dtype=np.float32)


def _to_encoding(rgb: np.ndarray, encoding: str) -> np.ndarray:
    codes = {
        "rgb8": None,
        "bgr8": cv2.COLOR_RGB2BGR,
        "rgba8": cv2.COLOR_RGB2RGBA,
        "bgra8": cv2.COLOR_RGB2BGRA,
        "mono8": cv2.COLOR_RGB2GRAY,
    }
    code = codes[encoding]
    return rgb if code is None else cv2.cvtColor(rgb, code)


def _only_border_differs(pred: np.ndarray, truth: np.ndarray, tolerance_px: int) -> bool:
    """True when every pixel where pred and truth differ lies within tolerance_px of the
    true mask's outline."""
    kernel = np.ones((2 * tolerance_px + 1, 2 * tolerance_px + 1), np.uint8)
    t = truth.astype(np.uint8)
    band = cv2.dilate(t, kernel) != cv2.erode(t, kernel)
    return not (pred ^ truth)[~band].any()


def _both(backend: object) -> dict[str, object]:
    return {"point": backend, "box": backend}


# ----------------------------------------------------------------- geometry of paste-back
@pytest.mark.parametrize("side", [40, 64, 96, 150, 211])
def test_paste_back_round_trip_without_model(side: int) -> None:
    """Frame mask -> crop -> 96x96 (nearest) -> resize back lands on the same pixels."""
    truth = np.zeros((H, W), dtype=bool)
    truth[200 : 200 + side // 3, 300 : 300 + side // 2] = True
    roi = Roi(290, 190, side, side)
    crop_mask = truth[roi.slices]
    small = cv2.resize(crop_mask.view(np.uint8), (96, 96), interpolation=cv2.INTER_NEAREST_EXACT)
    back = resize_mask(small.view(bool), roi.width, roi.height)
    pasted = np.zeros_like(truth)
    pasted[roi.slices] = back
    tol = 1 if side <= 96 else 2
    assert _only_border_differs(pasted, truth, tol)
    assert mask_iou(pasted, truth) > 0.8


@pytest.mark.parametrize("side_px", [48, 96, 160, 240])
def test_paste_back_through_model_at_several_crop_scales(
    colour_backend: OnnxBackend, side_px: int
) -> None:
    obj = SceneObject("L", RED, 280, 200, side_px // 2, side_px // 3)
    image, (truth,) = render_scene(W, H, [obj])
    x, y = paper_prompt_point(truth)  # type: ignore[misc]
    frame = segment_frame(
        image,
        "rgb8",
        [ObjectPrompt.from_point(1, x, y)],
        _both(colour_backend),
        CropSettings(point_side_px=side_px),
    )
    (res,) = frame.objects
    assert res.status == ObjectStatus.OK
    assert (res.crop.width, res.crop.height) == (side_px, side_px)
    full = np.zeros((H, W), dtype=bool)
    full[res.crop.slices] = res.mask
    assert _only_border_differs(full, truth, 1 if side_px <= 96 else 2)


# --------------------------------------------------------------- asymmetric placement
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8", "bgra8"])
@pytest.mark.parametrize(("w", "h"), [(60, 20), (20, 60)])
def test_asymmetric_object_lands_in_the_right_place(
    colour_backend: OnnxBackend, encoding: str, w: int, h: int
) -> None:
    obj = SceneObject("rect", RED, 301, 177, w, h)
    rgb, (truth,) = render_scene(W, H, [obj])
    prompt = ObjectPrompt.from_point(4, 301 + w / 2, 177 + h / 2)
    frame = segment_frame(
        _to_encoding(rgb, encoding), encoding, [prompt], _both(colour_backend), CropSettings()
    )
    (res,) = frame.objects
    assert res.status == ObjectStatus.OK and res.object_id == 4
    assert res.mask.shape == (res.crop.height, res.crop.width) == (96, 96)
    assert mask_iou(res.mask, truth[res.crop.slices]) > 0.9
    assert res.bbox == Roi(301, 177, w, h)
    assert res.score > 0.9  # flat colour: a crisp mask
    assert frame.width == W and frame.height == H and frame.inference_ms > 0


def test_object_near_corner_uses_translated_crop(colour_backend: OnnxBackend) -> None:
    # The crop is shifted inside the frame, so the object is off the crop centre; the
    # prompt point is placed on the crop centre pixel to keep the colour model on it.
    obj = SceneObject("rect", GREEN, 0, 420, 70, 60)
    rgb, (truth,) = render_scene(W, H, [obj])
    frame = segment_frame(
        rgb,
        "rgb8",
        [ObjectPrompt.from_point(1, 10.0, 470.0)],
        _both(colour_backend),
        CropSettings(),
    )
    (res,) = frame.objects
    assert res.crop == Roi(0, 384, 96, 96)
    assert mask_iou(res.mask, truth[res.crop.slices]) > 0.9


# --------------------------------------------------------------------------- box prompts
def test_box_prompt_frames_the_whole_object(colour_backend: OnnxBackend) -> None:
    obj = SceneObject("ellipse", GREEN, 200, 150, 150, 70)
    rgb, (truth,) = render_scene(W, H, [obj])
    box = (200.0, 150.0, 350.0, 220.0)
    prompt = ObjectPrompt(2, np.empty((0, 2)), np.empty(0), box=box)
    frame = segment_frame(
        rgb, "rgb8", [prompt], _both(colour_backend), CropSettings(box_margin=1.1)
    )
    (res,) = frame.objects
    assert res.status == ObjectStatus.OK
    assert res.crop.width == res.crop.height >= 165  # 1.1 x 150, square
    assert res.crop.x <= 200 and res.crop.x + res.crop.width >= 350
    full = np.zeros((H, W), dtype=bool)
    full[res.crop.slices] = res.mask
    assert mask_iou(full, truth) > 0.9


def test_box_and_point_use_their_own_backends(colour_backend: OnnxBackend) -> None:
    rgb, _ = render_scene(W, H, [SceneObject("rect", RED, 100, 100, 50, 30)])
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    prompts = [
        ObjectPrompt.from_point(1, 120.0, 110.0),
        ObjectPrompt(2, np.empty((0, 2)), np.empty(0), box=(100.0, 100.0, 150.0, 130.0)),
        ObjectPrompt.from_point(3, 130.0, 120.0),
    ]
    segment_frame(rgb, "rgb8", prompts, {"point": point, "box": box}, CropSettings())
    assert point.batches == [2] and box.batches == [1]
    shared = CountingBackend(colour_backend)
    segment_frame(rgb, "rgb8", prompts, _both(shared), CropSettings())
    assert shared.batches == [3]


# ----------------------------------------------------------------- several prompts
def test_background_point_erases_its_component(colour_backend: OnnxBackend) -> None:
    # Two same-coloured blocks in one crop: the colour model finds both.
    objs = [SceneObject("rect", RED, 300, 200, 30, 20), SceneObject("rect", RED, 345, 230, 20, 30)]
    rgb, (left, right) = render_scene(W, H, objs)
    fg_only = ObjectPrompt.from_point(1, 315.0, 210.0)
    with_bg = ObjectPrompt(1, np.array([[315.0, 210.0], [355.0, 245.0]]), np.array([1, 0]))
    both = segment_frame(rgb, "rgb8", [fg_only], _both(colour_backend), CropSettings()).objects[0]
    erased = segment_frame(rgb, "rgb8", [with_bg], _both(colour_backend), CropSettings()).objects[0]
    crop = both.crop
    assert erased.crop == crop
    assert mask_iou(both.mask, (left | right)[crop.slices]) > 0.95
    assert mask_iou(erased.mask, left[crop.slices]) > 0.95
    assert erased.bbox == Roi(300, 200, 30, 20)


def test_two_foreground_points_union_their_crops(colour_backend: OnnxBackend) -> None:
    obj = SceneObject("rect", GREEN, 100, 200, 220, 24)  # longer than one crop
    rgb, (truth,) = render_scene(W, H, [obj])
    prompt = ObjectPrompt(5, np.array([[140.0, 212.0], [280.0, 212.0]]), np.array([1, 1]))
    (res,) = segment_frame(rgb, "rgb8", [prompt], _both(colour_backend), CropSettings()).objects
    assert res.crop == Roi(92, 164, 236, 96)
    assert res.mask.shape == (96, 236)
    # The model only saw the two crops (x 92..188 and 232..328), not the gap between.
    seen = np.zeros((H, W), dtype=bool)
    seen[164:260, 92:188] = seen[164:260, 232:328] = True
    assert mask_iou(res.mask, (truth & seen)[res.crop.slices]) > 0.95
    assert not res.mask[:, 188 - 92 : 232 - 92].any()


def test_batched_equals_one_by_one(colour_backend: OnnxBackend) -> None:
    image, _, masks = random_scene(W, H, 6, seed=11)
    prompts = [
        ObjectPrompt.from_point(i + 1, *paper_prompt_point(m))  # type: ignore[misc]
        for i, m in enumerate(masks)
    ]
    counting = CountingBackend(colour_backend)
    together = segment_frame(image, "rgb8", prompts[::-1], _both(counting), CropSettings())
    assert counting.batches == [6]
    assert [o.object_id for o in together.objects] == [1, 2, 3, 4, 5, 6]
    for prompt, res, truth in zip(prompts, together.objects, masks, strict=True):
        (alone,) = segment_frame(
            image, "rgb8", [prompt], _both(colour_backend), CropSettings()
        ).objects
        assert res.crop == alone.crop and res.bbox == alone.bbox
        assert res.score == alone.score
        np.testing.assert_array_equal(res.mask, alone.mask)
        assert mask_iou(res.mask, truth[res.crop.slices]) > 0.9
    union = union_mask(together)
    assert union.dtype == np.uint8 and set(np.unique(union)) == {0, 255}
    expected = np.zeros((H, W), dtype=bool)
    for res in together.objects:
        expected[res.crop.slices] |= res.mask
    np.testing.assert_array_equal(union == 255, expected)


def test_fixed_batch_model_is_run_one_by_one(
    colour_backend: OnnxBackend, fixed_batch_backend: OnnxBackend
) -> None:
    assert colour_backend.batch_dynamic and not fixed_batch_backend.batch_dynamic
    # The raw model really refuses a batch of 3.
    session = ort.InferenceSession(
        str(fixed_batch_backend.path), providers=["CPUExecutionProvider"]
    )
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session.run(None, {"image": np.zeros((3, 3, 96, 96), np.float32)})
    image, _, masks = random_scene(W, H, 3, seed=5)
    prompts = [
        ObjectPrompt.from_point(i + 1, *paper_prompt_point(m))  # type: ignore[misc]
        for i, m in enumerate(masks)
    ]
    fixed = segment_frame(image, "rgb8", prompts, _both(fixed_batch_backend), CropSettings())
    dynamic = segment_frame(image, "rgb8", prompts, _both(colour_backend), CropSettings())
    for a, b in zip(fixed.objects, dynamic.objects, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)


# ------------------------------------------------------------------ statuses and errors
def test_prompt_outside_frame_is_skipped_with_reason(colour_backend: OnnxBackend) -> None:
    rgb, _ = render_scene(W, H, [SceneObject("rect", RED, 100, 100, 50, 30)])
    prompts = [ObjectPrompt.from_point(2, 700.0, 10.0), ObjectPrompt.from_point(1, 120.0, 110.0)]
    frame = segment_frame(rgb, "rgb8", prompts, _both(colour_backend), CropSettings())
    ok, skipped = frame.objects
    assert ok.object_id == 1 and ok.status == ObjectStatus.OK
    assert skipped.object_id == 2 and skipped.status == ObjectStatus.SKIPPED
    assert skipped.crop == Roi(0, 0, 0, 0) and skipped.mask.shape == (0, 0)
    assert skipped.bbox is None and "outside the 640x480 frame" in skipped.reason
    assert union_mask(frame)[110, 120] == 255
    jobs, reasons = plan_crops(prompts, W, H, CropSettings())
    assert [j.object_id for j in jobs] == [1] and set(reasons) == {2}


def test_empty_model_output_gives_empty_status() -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    prompt = ObjectPrompt.from_point(1, 50.0, 50.0)
    (res,) = segment_frame(
        rgb, "rgb8", [prompt], _both(ConstantBackend(-4.0)), CropSettings()
    ).objects
    assert res.status == ObjectStatus.EMPTY and res.score == 0.0 and res.bbox is None
    assert res.mask.shape == (96, 96) and not res.mask.any()
    (full,) = segment_frame(
        rgb, "rgb8", [prompt], _both(ConstantBackend(4.0)), CropSettings()
    ).objects
    assert full.status == ObjectStatus.OK and full.score == 1.0 and full.bbox == full.crop


def test_unsupported_encoding_raises(colour_backend: OnnxBackend) -> None:
    with pytest.raises(EncodingError, match="16UC1"):
        segment_frame(
            np.zeros((H, W), np.uint16), "16UC1", [], _both(colour_backend), CropSettings()
        )


def test_mask_bbox_matches_result_bbox(colour_backend: OnnxBackend) -> None:
    image, _, masks = random_scene(W, H, 4, seed=2)
    prompts = [
        ObjectPrompt.from_point(i + 1, *paper_prompt_point(m))  # type: ignore[misc]
        for i, m in enumerate(masks)
    ]
    for res in segment_frame(image, "rgb8", prompts, _both(colour_backend), CropSettings()).objects:
        local = mask_bbox(res.mask)
        assert local is not None and res.bbox is not None
        assert (res.bbox.x, res.bbox.y) == (res.crop.x + local.x, res.crop.y + local.y)


def test_no_prompts_no_backend_call(colour_backend: OnnxBackend) -> None:
    counting = CountingBackend(colour_backend)
    frame = segment_frame(
        np.zeros((H, W, 3), np.uint8), "bgr8", [], _both(counting), CropSettings()
    )
    assert frame.objects == [] and frame.inference_ms == 0.0 and counting.batches == []
    assert not union_mask(frame).any()


def test_tracking_follows_a_moving_object_through_the_pipeline(
    colour_backend: OnnxBackend,
) -> None:
    book = PromptBook(max_objects=2, lost_after=2)
    book.add_point(130.0, 210.0, track=True)
    for step in range(12):  # 60x20 bar moving 9 px right and 4 px down per frame
        obj = SceneObject("rect", RED, 100 + 9 * step, 200 + 4 * step, 60, 20)
        rgb, (truth,) = render_scene(W, H, [obj])
        frame = segment_frame(rgb, "rgb8", book.snapshot(), _both(colour_backend), CropSettings())
        (res,) = frame.objects
        assert res.status == ObjectStatus.OK, step
        assert mask_iou(res.mask, truth[res.crop.slices]) > 0.9, step
        book.update_tracking(frame.objects)
        x, y = book.snapshot()[0].foreground[0]
        assert truth[int(y), int(x)], step  # the prompt is on the object
    assert not book.is_lost(1)
    # The object disappears: lost after `lost_after` frames (the colour model sees the
    # background colour, so feed an empty-model backend instead).
    for _ in range(2):
        frame = segment_frame(
            rgb, "rgb8", book.snapshot(), _both(ConstantBackend(-3.0)), CropSettings()
        )
        book.update_tracking(frame.objects)
    assert book.is_lost(1)


def _with_box_prior(source: Path, out: Path, value: str) -> Path:
    import onnx

    from picosam2_ros.core.box_prior import BOX_PRIOR_WEIGHT_KEY

    model = onnx.load(str(source))
    entry = model.metadata_props.add()
    entry.key, entry.value = BOX_PRIOR_WEIGHT_KEY, value
    onnx.save(model, str(out))
    return out


def test_box_model_with_a_prior_keeps_the_mask_inside_the_box(
    colour_model_path: Path, tmp_path: Path
) -> None:
    """A model carrying a box-prior weight is decoded with the box: the colour model
    would fill the whole rectangle across the crop; with the prior nothing outside the
    prompt box is kept. The plain model on the same prompt spills out of it."""
    rgb, _ = render_scene(W, H, [SceneObject("rect", GREEN, 200, 150, 150, 70)])
    box = (200.0, 150.0, 275.0, 220.0)  # the rectangle's left half
    prompt = ObjectPrompt(3, np.empty((0, 2)), np.empty(0), box=box)
    boxed = OnnxBackend(_with_box_prior(colour_model_path, tmp_path / "boxed.onnx", "2"))
    assert boxed.box_prior_weight == 2.0 and boxed.info["box_prior_weight"] == "2"
    plain = OnnxBackend(colour_model_path)
    assert plain.box_prior_weight == 0.0

    def outside_box(backend: OnnxBackend) -> tuple[int, int]:
        frame = segment_frame(
            rgb, "rgb8", [prompt], {"point": plain, "box": backend}, CropSettings()
        )
        full = np.zeros((H, W), dtype=bool)
        (res,) = frame.objects
        full[res.crop.slices] = res.mask
        inside = np.zeros((H, W), dtype=bool)
        inside[150:220, 200:275] = True
        return int((full & ~inside).sum()), int((full & inside).sum())

    spill_plain, _ = outside_box(plain)
    spill_boxed, kept = outside_box(boxed)
    assert spill_plain >= 4 * 70  # the crop reaches 4 columns past the box
    assert spill_boxed == 0
    assert kept > 0.9 * 75 * 70


@pytest.mark.parametrize("value", ["-1", "nan", "heavy"])
def test_bad_box_prior_metadata_is_refused(
    colour_model_path: Path, tmp_path: Path, value: str
) -> None:
    from picosam2_ros.backends.base import ModelLoadError

    path = _with_box_prior(colour_model_path, tmp_path / "bad.onnx", value)
    with pytest.raises(ModelLoadError, match=r"picosam2\.box_prior_weight"):
        OnnxBackend(path)
