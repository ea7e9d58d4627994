"""The point and box crop protocols against hand-computed cases, including borders and
corners, and agreement between the training crop and the evaluation crop."""

from __future__ import annotations

import numpy as np
import pytest
from training_fixtures import make_coco_folder

from picosam2_ros.core.geometry import Roi
from training.augment import NO_AUGMENT, make_sample
from training.crops import box_roi, cut, normalise, point_roi, protocol_roi
from training.data import load_coco_folders
from training.evaluate import build_eval_set


def _mask(h: int, w: int, *rects: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in rects:
        m[y0:y1, x0:x1] = True
    return m


# Frame 200 x 150 (W x H). Paper crop: left = max(0, cx - 48), top = max(0, cy - 48),
# right = min(W, left + 96), bottom = min(H, top + 96).
@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((100, 75), Roi(52, 27, 96, 96)),  # interior
        ((10, 5), Roi(0, 0, 96, 96)),  # top-left corner: shifted by max(0, .)
        ((195, 145), Roi(147, 97, 53, 53)),  # bottom-right corner: clipped to 53 x 53
        ((199, 20), Roi(151, 0, 49, 96)),  # right border: narrower crop
        ((30, 149), Roi(0, 101, 96, 49)),  # bottom border: shorter crop
    ],
)
def test_point_crop_hand_computed(point, expected) -> None:
    assert point_roi(point, 200, 150) == expected


def test_point_prompt_is_bbox_centre_when_on_mask() -> None:
    m = _mask(150, 200, (60, 40, 101, 81))  # bbox x 60..100, y 40..80 -> centre (80, 60)
    assert protocol_roi("point", m) == Roi(32, 12, 96, 96)


def test_point_prompt_snaps_to_nearest_mask_pixel_when_centre_is_off_mask() -> None:
    # Two blobs: bbox x 10..89, y 10..19 -> centre (49, 14) is off the mask; nearest
    # mask pixel is (19, 14) (distance 30; the right blob starts at x = 80, distance 31).
    m = _mask(100, 100, (10, 10, 20, 20), (80, 10, 90, 20))
    assert protocol_roi("point", m) == Roi(0, 0, 96, 96)
    m2 = _mask(150, 200, (100, 100, 110, 110), (190, 100, 200, 110))
    # bbox x 100..199 -> centre (149, 104) off mask; nearest (109, 104): left 61, top 56,
    # right min(200, 157) = 157, bottom min(150, 152) = 150.
    assert protocol_roi("point", m2) == Roi(61, 56, 96, 94)


# Frame 640 x 480. Box crop: side = ceil(1.1 x longer side), >= 8, <= 480, centred,
# translated inside the frame.
@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((100, 101, 215, 150), Roi(94, 62, 127, 127)),  # 1.1 x 115 = 126.5 -> 127
        ((0, 0, 45, 30), Roi(0, 0, 50, 50)),  # top-left corner: translated, not clipped
        ((615, 455, 640, 480), Roi(612, 452, 28, 28)),  # bottom-right corner
        ((300, 200, 302, 203), Roi(297, 198, 8, 8)),  # tiny box -> 8 px minimum
        ((0, 0, 640, 480), Roi(80, 0, 480, 480)),  # larger than the frame -> shorter side
    ],
)
def test_box_crop_hand_computed(box, expected) -> None:
    assert box_roi(box, 640, 480) == expected


def test_box_protocol_uses_given_box_or_mask_box() -> None:
    m = _mask(480, 640, (100, 101, 215, 150))
    assert protocol_roi("box", m) == Roi(94, 62, 127, 127)
    assert protocol_roi("box", m, (0, 0, 45, 30)) == Roi(0, 0, 50, 50)


def test_clipped_crop_is_stretched_to_96() -> None:
    img = np.zeros((150, 200, 3), np.uint8)
    img[97:, 147:] = 255  # the 53 x 53 bottom-right corner
    crop = cut(img, Roi(147, 97, 53, 53))
    assert crop.shape == (96, 96, 3)
    assert crop.min() == 255
    mask = cut(np.ones((150, 200), bool), Roi(147, 97, 53, 53), nearest=True)
    assert mask.shape == (96, 96) and mask.dtype == bool and mask.all()


def test_normalise_is_imagenet_nchw() -> None:
    x = normalise(np.full((96, 96, 3), 255, np.uint8))
    assert x.shape == (1, 3, 96, 96) and x.dtype == np.float32
    np.testing.assert_allclose(
        x[0, :, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-6
    )


@pytest.mark.parametrize("protocol", ["point", "box"])
def test_training_crop_without_augmentation_equals_evaluation_crop(tmp_path, protocol) -> None:
    data = load_coco_folders([make_coco_folder(tmp_path / "d", n_images=3)])
    es = build_eval_set(data, protocol)
    rng = np.random.default_rng(0)
    for i in range(len(data)):
        crop, mask, box = make_sample(data, i, protocol, rng, NO_AUGMENT)
        np.testing.assert_array_equal(crop, es.crops[i])
        np.testing.assert_array_equal(mask, es.masks[i])
        assert mask[48, 48] or protocol == "box"
        if protocol == "box":
            np.testing.assert_allclose(box, es.boxes[i], atol=1e-9)
        else:
            np.testing.assert_array_equal(box, [0, 0, 96, 96])


def test_a_flipped_box_sample_mirrors_its_box_prompt_with_the_crop(tmp_path) -> None:
    from dataclasses import replace

    data = load_coco_folders([make_coco_folder(tmp_path / "d", n_images=3)])
    flip = replace(NO_AUGMENT, hflip=1.0)
    for i in range(len(data)):
        plain = make_sample(data, i, "box", np.random.default_rng(0), NO_AUGMENT)
        mirrored = make_sample(data, i, "box", np.random.default_rng(0), flip)
        np.testing.assert_array_equal(mirrored.crop, plain.crop[:, ::-1])
        np.testing.assert_array_equal(mirrored.mask, plain.mask[:, ::-1])
        x0, y0, x1, y1 = plain.box
        np.testing.assert_allclose(mirrored.box, [96 - x1, y0, 96 - x0, y1])
        # The mask stays inside its box prompt after the flip (annotation box, no jitter).
        _, xs = np.nonzero(mirrored.mask)
        assert xs.min() >= np.floor(mirrored.box[0]) - 1 and xs.max() < mirrored.box[2] + 1


def test_unknown_protocol(tmp_path) -> None:
    with pytest.raises(SystemExit, match="unknown protocol 'points'"):
        protocol_roi("points", np.ones((4, 4), bool))


def test_box_prior_calibration_picks_the_weight_that_helps() -> None:
    """Calibration on box crops: a predictor that fills the whole crop is much improved
    by the box prior (0 is not chosen); one that already predicts the truth keeps 0."""
    from training.evaluate import EvalSet, calibrate_box_prior

    n, s = 6, 96
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    boxes = np.array([[20.0, 30.0, 76.0, 66.0]] * n)
    truth = ((xx - 48) / 28) ** 2 + ((yy - 48) / 18) ** 2 <= 1
    es = EvalSet(
        "box",
        np.zeros((n, s, s, 3), np.uint8),
        np.broadcast_to(truth, (n, s, s)).copy(),
        boxes,
        ["c"] * n,
        ["medium"] * n,
    )
    everything = lambda x: np.full((len(x), 1, s, s), 0.5, np.float32)  # noqa: E731
    weight, scores = calibrate_box_prior(everything, es)
    assert weight > 0.0 and scores[weight] > scores[0.0] + 0.3
    exact = lambda x: np.where(truth, 5.0, -5.0)[None, None].repeat(len(x), 0)  # noqa: E731
    weight, scores = calibrate_box_prior(exact, es)
    assert weight == 0.0 and scores[0.0] == 1.0


def test_zoom_samples_put_a_mask_pixel_at_the_centre_at_any_scale(tmp_path) -> None:
    from training.augment import AugmentConfig

    data = load_coco_folders([make_coco_folder(tmp_path / "d", n_images=6)])
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(
        zoom=1.0, copy_paste=0, hflip=0, colour=0, blur=0, noise=0, jpeg=0, zoom_min_side=8
    )
    fractions = []
    for k in range(60):
        i = k % len(data)
        crop, mask, _ = make_sample(data, i, "point", rng, cfg)
        assert crop.shape == (96, 96, 3) and mask.shape == (96, 96)
        assert mask[47:49, 47:49].any()  # the prompt (on the mask) is the input's centre
        inst = data.instances[i]
        # The object's colour under its mask: image and target are aligned.
        mh, mw = inst.mask.shape
        region = data.images[inst.image_index][
            inst.mask_y : inst.mask_y + mh, inst.mask_x : inst.mask_x + mw
        ]
        colour = region[inst.mask].mean(0)
        inner = mask & np.roll(mask, 2, 0) & np.roll(mask, -2, 0) & np.roll(mask, 2, 1)
        if inner.sum() > 20:
            assert np.abs(crop[inner & np.roll(mask, -2, 1)].mean(0) - colour).max() < 12
        ys, xs = np.nonzero(mask)
        fractions.append(max(np.ptp(xs), np.ptp(ys)) / 96)
    # The object fills from about a tenth to most of the input.
    assert min(fractions) < 0.3 and max(fractions) > 0.7


def test_frame_windows_are_sized_from_the_frame_whatever_the_object(tmp_path) -> None:
    from training.augment import AugmentConfig, zoom_window

    data = load_coco_folders([make_coco_folder(tmp_path / "d", n_images=6)])
    rng = np.random.default_rng(1)
    frame = AugmentConfig(
        zoom=1.0, frame_windows=1.0, frame_min=0.1, frame_max=0.4, zoom_min_side=1.0
    )
    own = AugmentConfig(zoom=1.0, zoom_min=0.5, zoom_max=0.5, zoom_min_side=1.0)
    shares, ratios = [], []
    for k in range(200):
        inst = data.instances[k % len(data)]
        h, w = data.images[inst.image_index].shape[:2]
        extent = max(inst.mask.shape)
        window = zoom_window(inst, w, h, rng, frame)
        shares.append(window.side / min(w, h))
        ratios.append(window.side / extent)
        # Without frame windows the side follows the object: extent / fill.
        assert zoom_window(inst, w, h, rng, own).side == pytest.approx(2.0 * extent)
    assert 0.1 - 1e-9 <= min(shares) < 0.12 and 0.37 < max(shares) <= 0.4 + 1e-9
    # Log-uniform: the median share is near the geometric mean of the ends.
    assert np.median(shares) == pytest.approx(0.2, rel=0.15)
    # The same share for every object: objects overflow some windows, sit in others.
    assert min(ratios) < 1.0 < max(ratios)
